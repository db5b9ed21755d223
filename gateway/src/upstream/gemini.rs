//! Google's Gemini API behind the OpenAI API: the request goes through the hub
//! (`switchboard_llm::gemini` builds the body and reads the answers), the exchange through the
//! shared executor. The model is in the URL: `{base}/models/{model}:generateContent`, or
//! `:streamGenerateContent?alt=sse` for a stream (without `alt=sse` Google streams one JSON array,
//! not events), and `:batchEmbedContents` for embeddings. API reference:
//! <https://ai.google.dev/api/generate-content>, <https://ai.google.dev/api/embeddings>.

use super::credentials::{Credentials, fixed_headers};
use super::embeddings::EmbeddingsRequest;
use super::exec::{Answer, Executor};
use super::{Call, CompileError, HttpClient, Provider, Reply, translated};
use crate::error::{UpstreamError, UpstreamErrorKind};
use crate::inbound::{Api, Inbound};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Uri};
use std::fmt::Write;
use std::sync::Arc;
use switchboard_config::{GeminiProviderConfig, Secrets};
use switchboard_llm::gemini::{self, GeminiStream};
use switchboard_llm::openai::RequestError;

/// The key goes in this header, never in the `?key=` query parameter Google also reads: a URL
/// is what proxies and access logs write down.
static X_GOOG_API_KEY: HeaderName = HeaderName::from_static("x-goog-api-key");

pub struct GeminiProvider {
    /// `{base}/models/`: the model and the method follow.
    models_url: String,
    pub(super) exec: Executor,
    /// The API's name in messages: `Gemini`, or `Vertex AI`, which serves the same bodies.
    dialect: &'static str,
    /// Whether `:batchEmbedContents` exists (Vertex AI embeds through `:predict` instead).
    embeddings: bool,
}

impl GeminiProvider {
    /// Builds the provider from a validated config (see `OpenAiProvider::compile`).
    pub fn compile(
        config: &GeminiProviderConfig,
        secrets: &Secrets,
        client: HttpClient,
    ) -> Result<Self, CompileError> {
        let models_url = switchboard_config::endpoint_url(&config.base_url, "/models/");
        // A model id is percent-encoded into one path segment, so the prefix decides validity.
        format!("{models_url}m:generateContent").parse::<Uri>().map_err(|err| CompileError {
            path: "base_url".into(),
            reason: format!("not a valid URL: {err}"),
        })?;
        let headers = fixed_headers(
            config.api_key.as_ref(),
            X_GOOG_API_KEY.clone(),
            str::to_owned,
            &config.headers,
            secrets,
        )?;
        let name = Arc::from(config.name.as_str());
        Ok(GeminiProvider {
            models_url,
            exec: Executor::new(
                name,
                client,
                Credentials::Static(headers),
                config.timeout_ms,
                &config.timeouts,
            ),
            dialect: "Gemini",
            embeddings: true,
        })
    }

    /// Gemini's bodies at another API's URLs with its own credentials (Vertex AI, `vertex.rs`):
    /// `models_url` ends in `/models/`.
    pub(super) fn with_url(models_url: String, exec: Executor, dialect: &'static str) -> Self {
        GeminiProvider { models_url, exec, dialect, embeddings: false }
    }

    /// `{base}/models/{model}{method}`, `method` being `:generateContent` or the like.
    fn uri(&self, model: &str, method: &str) -> Result<Uri, UpstreamError> {
        let mut url = self.models_url.clone();
        push_path_segment(&mut url, model);
        url.push_str(method);
        url.parse::<Uri>().map_err(|err| {
            translated::bad_request(
                &self.exec,
                RequestError::new(format!("the model id does not form a valid URL: {err}"), Some("model")),
            )
        })
    }

    async fn post(&self, uri: &Uri, body: Vec<u8>, call: &Call<'_>) -> Result<Answer, UpstreamError> {
        self.exec
            .post_json(uri, HeaderMap::new(), body, call.correlation())
            .await
            .map_err(|err| self.upstream_error(err))
    }

    /// Google's errors in the gateway's terms, where its statuses say something else than what
    /// the error edge reads from a status (`error.rs`); see [`gemini::error_details`].
    fn upstream_error(&self, err: UpstreamError) -> UpstreamError {
        let UpstreamError { provider, kind } = err;
        let kind = match kind {
            UpstreamErrorKind::Status { status, body, retry_after } => {
                let details = gemini::error_details(&body);
                // A refused key is the gateway's problem, as a 401 from Anthropic is: the next
                // backend is tried and the client sees a 502, not a 400 about its request.
                let status = if details.invalid_api_key { StatusCode::UNAUTHORIZED } else { status };
                // Google says when to retry in the body, not in a header; clients read the header.
                let retry_after = retry_after.or_else(|| details.retry_after_secs.map(HeaderValue::from));
                UpstreamErrorKind::Status { status, body, retry_after }
            }
            other => other,
        };
        UpstreamError { provider, kind }
    }

    async fn embeddings(&self, call: Call<'_>, request: &Inbound<'_>) -> Result<Reply, UpstreamError> {
        let request =
            EmbeddingsRequest::parse(request).map_err(|err| translated::bad_request(&self.exec, err))?;
        let body = gemini::build_embed_request(call.model, &request.inputs, request.dimensions);
        let uri = self.uri(call.model, ":batchEmbedContents")?;
        let answer = self.post(&uri, body, &call).await?;
        let body = self.exec.read_body(answer).await?;
        let vectors = gemini::parse_embed_response(&body, request.inputs.len())
            .map_err(|reason| self.exec.error(UpstreamErrorKind::InvalidResponse(reason)))?;
        // Google reports no tokens for embeddings: usage says 0 rather than a guess.
        Ok(request.reply(call.model, &vectors, 0))
    }
}

impl Provider for GeminiProvider {
    fn name(&self) -> &Arc<str> {
        self.exec.provider()
    }

    async fn send(&self, call: Call<'_>, request: &Inbound<'_>) -> Result<Reply, UpstreamError> {
        if call.api == Api::Embeddings && self.embeddings {
            return self.embeddings(call, request).await;
        }
        let hub = translated::hub_request(&self.exec, &call, request, self.dialect)?;
        // Gemini needs no output limit: without one from the client or the route, the model's own.
        let options = gemini::Options { default_max_tokens: call.default_max_tokens };
        let body =
            gemini::build_request(&hub, options).map_err(|err| translated::bad_request(&self.exec, err))?;
        let method = if hub.stream { ":streamGenerateContent?alt=sse" } else { ":generateContent" };
        let uri = self.uri(call.model, method)?;
        let answer = self.post(&uri, body, &call).await?;
        translated::reply(&self.exec, answer, &call, &hub, GeminiStream::new, gemini::parse_response).await
    }
}

/// Appends `segment` percent-encoded (RFC 3986: everything but unreserved characters), so a
/// model id cannot add path segments, a query or a fragment to the URL.
pub(super) fn push_path_segment(url: &mut String, segment: &str) {
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            url.push(char::from(byte));
        } else {
            let _ = write!(url, "%{byte:02X}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_ids_stay_one_path_segment() {
        let mut url = String::from("https://h/v1beta/models/");
        push_path_segment(&mut url, "gemini-2.5-flash");
        assert_eq!(url, "https://h/v1beta/models/gemini-2.5-flash");
        let mut url = String::new();
        push_path_segment(&mut url, "../x?key=1#f é");
        assert_eq!(url, "..%2Fx%3Fkey%3D1%23f%20%C3%A9");
    }
}
