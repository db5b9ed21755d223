//! OpenAI and every OpenAI-compatible server (vLLM, Ollama, xAI, Groq, ...): passthrough.
//!
//! The body goes upstream as the client sent it with only `model` rewritten (and, for streams,
//! `stream_options.include_usage` switched on so tokens can be counted; see [`SseRelay`]).
//! API reference: <https://platform.openai.com/docs/api-reference/chat/create>.

use super::credentials::{Credentials, fixed_headers};
use super::exec::Executor;
use super::{Call, CompileError, HttpClient, Provider, Reply, translated};
use crate::body::{Source, SseRelay};
use crate::error::{UpstreamError, UpstreamErrorKind};
use crate::inbound::{Api, Inbound, Responses};
use http::header::AUTHORIZATION;
use http::{HeaderMap, Uri};
use std::sync::Arc;
use switchboard_config::{OpenAiProviderConfig, Secrets};
use switchboard_llm::Usage;
use switchboard_llm::openai::{self, MaxTokensField, OpenAiStream};
use switchboard_llm::responses::{self, ForwardedResponses};
use switchboard_llm::stream::OpenAiPassthrough;

pub struct OpenAiProvider {
    chat_uri: Uri,
    /// `{base}/responses`, for a server that speaks the Responses API (`responses_api`).
    responses_uri: Option<Uri>,
    embeddings_uri: Uri,
    /// Whether streams ask for `stream_options.include_usage`.
    stream_usage: bool,
    pub(super) exec: Executor,
}

impl OpenAiProvider {
    /// Builds the provider from a validated config: the URLs and header values were checked
    /// by the validator, so only reading an `env` or `file` credential can fail here.
    pub fn compile(
        config: &OpenAiProviderConfig,
        secrets: &Secrets,
        client: HttpClient,
    ) -> Result<Self, CompileError> {
        let uri = |endpoint: &str| {
            switchboard_config::endpoint_url(&config.base_url, endpoint).parse::<Uri>().map_err(|err| {
                CompileError { path: "base_url".into(), reason: format!("not a valid URL: {err}") }
            })
        };
        let bearer = |key: &str| format!("Bearer {key}");
        let headers =
            fixed_headers(config.api_key.as_ref(), AUTHORIZATION, bearer, &config.headers, secrets)?;
        let name = Arc::from(config.name.as_str());
        Ok(OpenAiProvider {
            chat_uri: uri("/chat/completions")?,
            responses_uri: if config.responses_api { Some(uri("/responses")?) } else { None },
            embeddings_uri: uri("/embeddings")?,
            stream_usage: config.stream_usage,
            exec: Executor::new(
                name,
                client,
                Credentials::Static(headers),
                config.timeout_ms,
                &config.timeouts,
            ),
        })
    }
}

impl Provider for OpenAiProvider {
    fn name(&self) -> &Arc<str> {
        self.exec.provider()
    }

    async fn send(&self, call: Call<'_>, request: &Inbound<'_>) -> Result<Reply, UpstreamError> {
        match call.api {
            Api::ChatCompletions => {
                passthrough(&self.exec, &self.chat_uri, self.stream_usage, call, request).await
            }
            Api::Embeddings => {
                passthrough(&self.exec, &self.embeddings_uri, self.stream_usage, call, request).await
            }
            Api::Responses
                if let (Some(uri), Inbound::Responses(responses)) = (&self.responses_uri, request) =>
            {
                forward_responses(&self.exec, uri, call, responses).await
            }
            Api::Messages | Api::Responses => {
                via_hub(&self.exec, &self.chat_uri, self.stream_usage, call, request).await
            }
        }
    }
}

/// One passthrough exchange at `uri`: OpenAI's and Azure OpenAI's (`azure.rs`) whole request path.
pub(super) async fn passthrough(
    exec: &Executor,
    uri: &Uri,
    stream_usage: bool,
    call: Call<'_>,
    request: &Inbound<'_>,
) -> Result<Reply, UpstreamError> {
    let Inbound::OpenAi { request, .. } = request else {
        return via_hub(exec, uri, stream_usage, call, request).await;
    };
    let body = request
        .to_upstream_body(call.model, stream_usage)
        .map_err(|err| UpstreamError::bad_request(exec.provider(), err))?;
    let answer = exec.post_json(uri, HeaderMap::new(), body, call.correlation()).await?;
    if request.stream && answer.is_event_stream() {
        // The provider timeout also bounds the silence between two events.
        // A usage chunk only needs stripping if the gateway asked for one the caller did not.
        let translator = Box::new(OpenAiPassthrough::new(stream_usage && !request.include_usage));
        let source = Source::Http(answer.response.into_body());
        return Ok(Reply::Stream(SseRelay::new(source, translator, exec.idle_timeout())));
    }
    let body = exec.read_body(answer).await?;
    if request.stream {
        return Err(exec.error(UpstreamErrorKind::InvalidResponse(
            "asked for a stream, got a response that is not text/event-stream".into(),
        )));
    }
    // The usage parse reads the whole body anyway: one that is not JSON (cut off, an HTML
    // page from a proxy) is the provider's failure, not an answer to forward.
    let usage = Usage::read_openai_response(&body)
        .map_err(|err| exec.error(UpstreamErrorKind::InvalidResponse(format!("not JSON: {err}"))))?
        .unwrap_or_default();
    Ok(Reply::Full { body, usage })
}

/// A request of another API (Anthropic Messages) to an OpenAI-compatible backend at `uri` (its
/// chat completions): translated through the hub, the answer rendered in the client's API.
pub(super) async fn via_hub(
    exec: &Executor,
    uri: &Uri,
    stream_usage: bool,
    call: Call<'_>,
    request: &Inbound<'_>,
) -> Result<Reply, UpstreamError> {
    let hub = translated::hub_request(exec, &call, request, "OpenAI")?;
    // `max_completion_tokens`: OpenAI's reasoning models refuse the older `max_tokens`, and vLLM,
    // Ollama and Azure read it too.
    let options = openai::Options { max_tokens_field: MaxTokensField::MaxCompletionTokens, stream_usage };
    let body = openai::build_request(&hub, options).map_err(|err| translated::bad_request(exec, err))?;
    let answer = exec.post_json(uri, HeaderMap::new(), body, call.correlation()).await?;
    translated::reply(exec, answer, &call, &hub, OpenAiStream::new, openai::parse_response).await
}

/// The Responses API to a server that speaks it: the body as the client sent it with `model`
/// rewritten and, when it continues a stored conversation, `previous_response_id` replaced by
/// the stored items ahead of `input` (the conversation is the gateway's, so any backend of the
/// route can continue it). The answer is relayed as it is, read for its usage and for the
/// object the store keeps.
async fn forward_responses(
    exec: &Executor,
    uri: &Uri,
    call: Call<'_>,
    request: &Responses<'_>,
) -> Result<Reply, UpstreamError> {
    let mut body = request.raw.clone();
    body.set_string("model", call.model);
    if !request.history.is_empty() {
        body.remove("previous_response_id");
        let input: Vec<&serde_json::Value> = request.history.iter().chain(&request.request.input).collect();
        let input = serde_json::value::to_raw_value(&input)
            .map_err(|err| exec.error(UpstreamErrorKind::InvalidResponse(err.to_string())))?;
        body.set("input", input);
    }
    let answer = exec.post_json(uri, HeaderMap::new(), body.to_vec(), call.correlation()).await?;
    if request.request.stream {
        if !answer.is_event_stream() {
            return Err(exec.error(UpstreamErrorKind::InvalidResponse(
                "asked for a stream, got a response that is not text/event-stream".into(),
            )));
        }
        let finished = request.finished.clone();
        let translator = Box::new(ForwardedResponses::new(move |rendered| {
            let _ = finished.set(rendered.clone());
        }));
        let source = Source::Http(answer.response.into_body());
        return Ok(Reply::Stream(SseRelay::new(source, translator, exec.idle_timeout())));
    }
    let body = exec.read_body(answer).await?;
    let (rendered, usage) = responses::read_answer(&body)
        .map_err(|reason| exec.error(UpstreamErrorKind::InvalidResponse(reason)))?;
    let _ = request.finished.set(rendered);
    Ok(Reply::Full { body, usage })
}
