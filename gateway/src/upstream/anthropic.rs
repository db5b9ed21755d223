//! Anthropic's Messages API behind the OpenAI API: the request goes through the hub
//! (`switchboard_llm::anthropic` builds the body and reads the answers), the exchange through the
//! shared executor. API reference: <https://docs.anthropic.com/en/api/messages>.

use super::credentials::{Credentials, credential_header, extra_headers};
use super::exec::Executor;
use super::{Call, CompileError, Endpoint, HttpClient, Provider, Reply};
use crate::body::{Source, SseRelay};
use crate::error::{UpstreamError, UpstreamErrorKind};
use http::{HeaderMap, HeaderName, HeaderValue, Uri};
use std::sync::Arc;
use std::time::Duration;
use switchboard_config::{AnthropicProviderConfig, Secrets};
use switchboard_llm::anthropic::{self, AnthropicStream};
use switchboard_llm::openai::{ChunkRenderer, ModelRequest, RequestError, render_response};
use switchboard_llm::stream::HubTranslator;

static X_API_KEY: HeaderName = HeaderName::from_static("x-api-key");
static ANTHROPIC_VERSION: HeaderName = HeaderName::from_static("anthropic-version");

pub struct AnthropicProvider {
    messages_uri: Uri,
    version: HeaderValue,
    default_max_tokens: u32,
    exec: Executor,
}

impl AnthropicProvider {
    /// Builds the provider from a validated config (see `OpenAiProvider::compile`).
    pub fn compile(
        config: &AnthropicProviderConfig,
        secrets: &Secrets,
        client: HttpClient,
    ) -> Result<Self, CompileError> {
        let messages_uri =
            switchboard_config::endpoint_url(&config.base_url, "/messages").parse::<Uri>().map_err(
                |err| CompileError { path: "base_url".into(), reason: format!("not a valid URL: {err}") },
            )?;
        let version = HeaderValue::from_str(&config.version).map_err(|_| CompileError {
            path: "version".into(),
            reason: "not a valid header value".into(),
        })?;
        let mut headers = Vec::new();
        if let Some(credential) = &config.api_key {
            headers.push(credential_header(
                X_API_KEY.clone(),
                credential,
                str::to_owned,
                secrets,
                "api_key",
            )?);
        }
        headers.extend(extra_headers(&config.headers, secrets)?);
        let name = Arc::from(config.name.as_str());
        let timeout = Duration::from_millis(config.timeout_ms);
        Ok(AnthropicProvider {
            messages_uri,
            version,
            default_max_tokens: config.default_max_tokens,
            exec: Executor::new(name, client, Credentials::Static(headers), timeout),
        })
    }

    fn bad_request(&self, err: RequestError) -> UpstreamError {
        UpstreamError::bad_request(self.exec.provider(), err)
    }
}

impl Provider for AnthropicProvider {
    fn name(&self) -> &Arc<str> {
        self.exec.provider()
    }

    async fn send(&self, call: Call<'_>, request: &ModelRequest<'_>) -> Result<Reply, UpstreamError> {
        if call.endpoint == Endpoint::Embeddings {
            return Err(self.bad_request(RequestError::new(
                "this backend (Anthropic) has no embeddings endpoint; route embeddings to a provider that does",
                Some("model"),
            )));
        }
        let hub = request.to_hub(call.model).map_err(|err| self.bad_request(err))?;
        let options = anthropic::Options {
            default_max_tokens: call.default_max_tokens.unwrap_or(self.default_max_tokens),
        };
        let body = anthropic::build_request(&hub, options).map_err(|err| self.bad_request(err))?;
        let mut headers = HeaderMap::new();
        headers.insert(ANTHROPIC_VERSION.clone(), self.version.clone());
        headers.insert("x-request-id", call.request_id.clone());
        let answer = self.exec.post_json(&self.messages_uri, headers, body).await?;
        let created = crate::unix_now();
        if hub.stream {
            if !answer.is_event_stream() {
                return Err(self.exec.error(UpstreamErrorKind::InvalidResponse(
                    "asked for a stream, got a response that is not text/event-stream".into(),
                )));
            }
            let renderer = ChunkRenderer::new(call.model, created, hub.include_usage);
            let translator = Box::new(HubTranslator::new(AnthropicStream::new(), renderer));
            let source = Source::Http(answer.response.into_body());
            return Ok(Reply::Stream(SseRelay::new(source, translator, self.exec.timeout())));
        }
        let body = self.exec.read_body(answer).await?;
        let response = anthropic::parse_response(&body)
            .map_err(|reason| self.exec.error(UpstreamErrorKind::InvalidResponse(reason)))?;
        let usage = response.usage;
        Ok(Reply::Full { body: render_response(&response, created), usage })
    }
}
