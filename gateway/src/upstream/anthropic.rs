//! Anthropic's Messages API behind every other API: the request goes through the hub
//! (`switchboard_llm::anthropic` builds the body and reads the answers), the exchange through the
//! shared executor. A Messages client's request is forwarded as it is (`forward`). API reference: <https://docs.anthropic.com/en/api/messages>.

use super::credentials::{Credentials, fixed_headers};
use super::exec::Executor;
use super::{Call, CompileError, Correlation, HttpClient, Provider, Reply, azure, translated};
use crate::body::{Source, SseRelay};
use crate::error::UpstreamError;
use crate::error::UpstreamErrorKind;
use crate::inbound::{Inbound, Messages};
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Uri};
use std::sync::Arc;
use std::time::Duration;
use switchboard_config::{AnthropicProviderConfig, Secrets};
use switchboard_llm::RawObject;
use switchboard_llm::anthropic::{self, AnthropicStream, inbound};
use switchboard_llm::stream::Forwarded;

static X_API_KEY: HeaderName = HeaderName::from_static("x-api-key");
static ANTHROPIC_VERSION: HeaderName = HeaderName::from_static("anthropic-version");
static ANTHROPIC_BETA: HeaderName = HeaderName::from_static("anthropic-beta");

pub struct AnthropicProvider {
    messages_uri: Uri,
    count_tokens_uri: Uri,
    version: HeaderValue,
    default_max_tokens: u32,
    pub(super) exec: Executor,
}

impl AnthropicProvider {
    /// Builds the provider from a validated config (see `OpenAiProvider::compile`).
    pub fn compile(
        config: &AnthropicProviderConfig,
        secrets: &Secrets,
        client: HttpClient,
        rule: switchboard_config::AddressRule,
    ) -> Result<Self, CompileError> {
        let uri = |endpoint: &str| {
            switchboard_config::endpoint_url(&config.base_url, endpoint).parse::<Uri>().map_err(|err| {
                CompileError { path: "base_url".into(), reason: format!("not a valid URL: {err}") }
            })
        };
        let (messages_uri, count_tokens_uri) = (uri("/messages")?, uri("/messages/count_tokens")?);
        let version = HeaderValue::from_str(&config.version).map_err(|_| CompileError {
            path: "version".into(),
            reason: "not a valid header value".into(),
        })?;
        let headers = fixed_headers(
            config.api_key.as_ref(),
            X_API_KEY.clone(),
            str::to_owned,
            &config.headers,
            secrets,
        )?;
        let name = Arc::from(config.name.as_str());
        let timeout = Duration::from_millis(config.timeout_ms);
        // Claude on Microsoft Foundry takes an Entra ID token instead of the key.
        let credentials = match &config.entra {
            Some(entra) => azure::entra_credentials(entra, headers, secrets, &name, &client, rule, timeout)?,
            None => Credentials::Static(headers),
        };
        Ok(AnthropicProvider {
            messages_uri,
            count_tokens_uri,
            version,
            default_max_tokens: config.default_max_tokens,
            exec: Executor::new(name, client, credentials, config.timeout_ms, &config.timeouts),
        })
    }
}

impl Provider for AnthropicProvider {
    fn name(&self) -> &Arc<str> {
        self.exec.provider()
    }

    async fn send(&self, call: Call<'_>, request: &Inbound<'_>) -> Result<Reply, UpstreamError> {
        if let Inbound::Messages(messages) = request {
            return self.forward(call, messages).await;
        }
        let hub = translated::hub_request(&self.exec, &call, request, "Anthropic")?;
        let options = anthropic::Options {
            default_max_tokens: call.default_max_tokens.unwrap_or(self.default_max_tokens),
        };
        let body = anthropic::build_request(&hub, options)
            .map_err(|err| translated::bad_request(&self.exec, err))?;
        let mut headers = HeaderMap::new();
        headers.insert(ANTHROPIC_VERSION.clone(), self.version.clone());
        let answer = self.exec.post_json(&self.messages_uri, headers, body, call.correlation()).await?;
        translated::reply(&self.exec, answer, &call, &hub, AnthropicStream::new, anthropic::parse_response)
            .await
    }
}

impl AnthropicProvider {
    /// The Messages API to a Messages backend: the body as the client sent it with only `model`
    /// rewritten (unknown fields, thinking, server tools and all), `anthropic-beta` passed on,
    /// and the answer relayed as it comes, read only for its usage.
    async fn forward(&self, call: Call<'_>, messages: &Messages<'_>) -> Result<Reply, UpstreamError> {
        let body = messages.head.to_upstream_body(call.model);
        let mut headers = HeaderMap::new();
        headers.insert(ANTHROPIC_VERSION.clone(), self.version.clone());
        if let Some(beta) = &messages.beta {
            headers.insert(ANTHROPIC_BETA.clone(), beta.clone());
        }
        let answer = self.exec.post_json(&self.messages_uri, headers, body, call.correlation()).await?;
        if messages.head.stream {
            if !answer.is_event_stream() {
                return Err(self.exec.error(UpstreamErrorKind::InvalidResponse(
                    "asked for a stream, got a response that is not text/event-stream".into(),
                )));
            }
            let translator = Box::new(Forwarded::new(AnthropicStream::new(), |message| {
                inbound::stream_error_event("api_error", message)
            }));
            let source = Source::Http(answer.response.into_body());
            return Ok(Reply::Stream(SseRelay::new(source, translator, self.exec.idle_timeout())));
        }
        let body = self.exec.read_body(answer).await?;
        // Read for its usage; an answer that does not read is the provider's failure.
        let usage = anthropic::parse_response(&body)
            .map_err(|reason| self.exec.error(UpstreamErrorKind::InvalidResponse(reason)))?
            .usage;
        Ok(Reply::Full { body, usage })
    }
}

impl AnthropicProvider {
    /// `POST /v1/messages/count_tokens`, forwarded with only `model` rewritten: Anthropic's own
    /// count, for the model the route names. The answer is returned as it is.
    pub async fn count_tokens(
        &self,
        model: &str,
        body: &RawObject<'_>,
        beta: Option<&HeaderValue>,
        request_id: &HeaderValue,
    ) -> Result<Bytes, UpstreamError> {
        let mut body = body.clone();
        body.set_string("model", model);
        let mut headers = HeaderMap::new();
        headers.insert(ANTHROPIC_VERSION.clone(), self.version.clone());
        if let Some(beta) = beta {
            headers.insert(ANTHROPIC_BETA.clone(), beta.clone());
        }
        let answer = self
            .exec
            .post_json(
                &self.count_tokens_uri,
                headers,
                body.to_vec(),
                Correlation { request_id, trace: None },
            )
            .await?;
        self.exec.read_body(answer).await
    }
}
