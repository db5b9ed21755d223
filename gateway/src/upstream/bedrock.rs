//! AWS Bedrock Runtime behind the OpenAI API: the request goes through the hub
//! (`switchboard_llm::bedrock` builds the Converse body and reads the answers), the exchange
//! through the shared executor with a SigV4 signature per request (`sigv4.rs`; keys from the
//! config's Secrets or from STS web identity, `sts.rs`). The model is in the path:
//! `{base}/model/{modelId}/converse`, or `/converse-stream`, whose answer is AWS event-stream
//! binary frames, not SSE. API reference:
//! <https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html>.

use super::credentials::{Credentials, extra_headers, resolve};
use super::exec::{Answer, Executor};
use super::sigv4::{KeySource, Signer, static_keys};
use super::sts::{WebIdentity, WebIdentityEnv};
use super::{Call, CompileError, HttpClient, Provider, Reply, translated};
use crate::body::{Framing, Source, SseRelay};
use crate::error::{UpstreamError, UpstreamErrorKind};
use crate::inbound::Inbound;
use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderMap, StatusCode, Uri};
use std::fmt::Write;
use std::sync::Arc;
use std::time::Duration;
use switchboard_config::{BedrockProviderConfig, Credential, Secrets};
use switchboard_llm::bedrock::{self, BedrockStream};
use switchboard_llm::openai::RequestError;
use switchboard_llm::stream::HubTranslator;

/// The error code header of every Bedrock error answer.
static X_AMZN_ERROR_TYPE: &str = "x-amzn-errortype";
static X_AMZN_REQUEST_ID: &str = "x-amzn-requestid";

pub struct BedrockProvider {
    /// `{base}/model/`: the model id and the operation follow.
    model_url: String,
    pub(super) exec: Executor,
}

impl BedrockProvider {
    /// Builds the provider from a validated config (see `OpenAiProvider::compile`).
    pub fn compile(
        config: &BedrockProviderConfig,
        secrets: &Secrets,
        client: HttpClient,
    ) -> Result<Self, CompileError> {
        let model_url = switchboard_config::endpoint_url(&config.base_url(), "/model/");
        format!("{model_url}m/converse").parse::<Uri>().map_err(|err| CompileError {
            path: "base_url".into(),
            reason: format!("not a valid URL: {err}"),
        })?;
        let timeout = Duration::from_millis(config.timeout_ms);
        let keys = &config.credentials;
        let source = match (&keys.access_key_id, &keys.secret_access_key, config.sts_url()) {
            (Some(id), Some(secret), None) => {
                let read = |credential: &Credential, field: &str| {
                    resolve(credential, secrets)
                        .map_err(|reason| CompileError { path: format!("credentials.{field}"), reason })
                };
                let token = keys.session_token.as_ref().map(|t| read(t, "session_token")).transpose()?;
                KeySource::Static(static_keys(
                    read(id, "access_key_id")?,
                    read(secret, "secret_access_key")?,
                    token,
                ))
            }
            (None, None, Some(sts_url)) => {
                let env = WebIdentityEnv::from_process();
                if let Err(reason) = &env {
                    tracing::warn!(provider = %config.name, "{reason}; its requests will fail until it is set");
                }
                let sts = sts_url.parse::<Uri>().map_err(|err| CompileError {
                    path: "credentials.web_identity.sts_url".into(),
                    reason: format!("not a valid URL: {err}"),
                })?;
                KeySource::WebIdentity(Arc::new(WebIdentity::new(env, sts, client.clone(), timeout)))
            }
            _ => {
                return Err(CompileError {
                    path: "credentials".into(),
                    reason: "needs access_key_id and secret_access_key, or web_identity".into(),
                });
            }
        };
        let headers = extra_headers(&config.headers, secrets)?;
        let signer = Signer::new(config.region.clone(), source);
        let name = Arc::from(config.name.as_str());
        Ok(BedrockProvider {
            model_url,
            exec: Executor::new(
                name,
                client,
                Credentials::SigV4(headers, signer),
                config.timeout_ms,
                &config.timeouts,
            ),
        })
    }

    /// `{base}/model/{modelId}/{operation}`, the model id one percent-encoded path segment
    /// (`anthropic.claude-3-haiku-20240307-v1:0` → `...-v1%3A0`), as the AWS SDKs send it.
    fn uri(&self, model: &str, operation: &str) -> Result<Uri, UpstreamError> {
        let mut url = self.model_url.clone();
        push_path_segment(&mut url, model);
        url.push('/');
        url.push_str(operation);
        url.parse::<Uri>().map_err(|err| {
            translated::bad_request(
                &self.exec,
                RequestError::new(format!("the model id does not form a valid URL: {err}"), Some("model")),
            )
        })
    }

    /// Bedrock's errors in the gateway's terms (the code is in `x-amzn-ErrorType`): a refused
    /// signature or key is the gateway's credential problem (401: the next backend is tried,
    /// the client sees a 502), `ServiceUnavailableException` is "overloaded, retry" (the error
    /// edge's 529), a model that failed or timed out is a 502, and the message becomes an
    /// OpenAI envelope.
    fn upstream_error(&self, err: UpstreamError, error_type: Option<&str>) -> UpstreamError {
        let UpstreamError { provider, kind } = err;
        let kind = match kind {
            UpstreamErrorKind::Status { status, body, retry_after } => {
                let details = bedrock::error_details(error_type, &body);
                let status = if details.auth {
                    StatusCode::UNAUTHORIZED
                } else if details.code == "ServiceUnavailableException" {
                    StatusCode::from_u16(529).unwrap_or(status)
                } else if matches!(details.code.as_str(), "ModelErrorException" | "ModelTimeoutException") {
                    // 424 and 408: the model failed or took too long, not the client's request;
                    // the next backend may do better.
                    StatusCode::BAD_GATEWAY
                } else {
                    status
                };
                let body = if details.message.is_empty() || details.auth {
                    // An auth failure's message may quote the canonical request: kept out.
                    Bytes::new()
                } else {
                    let envelope = serde_json::json!({"error": {"message": details.message,
                        "type": "invalid_request_error", "param": null, "code": details.code}});
                    Bytes::from(envelope.to_string())
                };
                UpstreamErrorKind::Status { status, body, retry_after }
            }
            other => other,
        };
        UpstreamError { provider, kind }
    }

    async fn post(&self, uri: &Uri, body: Vec<u8>, call: &Call<'_>) -> Result<Answer, UpstreamError> {
        let answer = self
            .exec
            .exchange_json(uri, HeaderMap::new(), body, call.correlation())
            .await
            .map_err(|err| self.upstream_error(err, None))?;
        if answer.response.status().is_success() {
            return Ok(answer);
        }
        let error_type =
            answer.response.headers().get(X_AMZN_ERROR_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let err = self.exec.status_error(answer).await;
        Err(self.upstream_error(err, error_type.as_deref()))
    }
}

impl Provider for BedrockProvider {
    fn name(&self) -> &Arc<str> {
        self.exec.provider()
    }

    async fn send(&self, call: Call<'_>, request: &Inbound<'_>) -> Result<Reply, UpstreamError> {
        let hub = translated::hub_request(&self.exec, &call, request, "Bedrock")?;
        let options = bedrock::Options { default_max_tokens: call.default_max_tokens };
        let body =
            bedrock::build_request(&hub, options).map_err(|err| translated::bad_request(&self.exec, err))?;
        let operation = if hub.stream { "converse-stream" } else { "converse" };
        let uri = self.uri(call.model, operation)?;
        let answer = self.post(&uri, body, &call).await?;
        // Converse answers carry no id in the body: AWS's request id names the answer.
        let id = answer
            .response
            .headers()
            .get(X_AMZN_REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty() && v.len() <= 128)
            .map_or_else(|| bedrock::RESPONSE_ID.to_owned(), |v| format!("chatcmpl-{v}"));
        if !hub.stream {
            let body = self.exec.read_body(answer).await?;
            let mut response = bedrock::parse_response(&body)
                .map_err(|reason| self.exec.error(UpstreamErrorKind::InvalidResponse(reason)))?;
            // Nor the model: it is the one called.
            call.model.clone_into(&mut response.model);
            response.id = id;
            let usage = response.usage;
            return Ok(Reply::Full { body: call.client.render(&response, crate::unix_now()), usage });
        }
        let is_event_stream = answer
            .response
            .headers()
            .get(CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"application/vnd.amazon.eventstream"));
        if !is_event_stream {
            return Err(self.exec.error(UpstreamErrorKind::InvalidResponse(
                "asked for a stream, got a response that is not application/vnd.amazon.eventstream".into(),
            )));
        }
        let renderer = call.client.renderer(call.model, crate::unix_now());
        let translator = Box::new(HubTranslator::new(BedrockStream::with_id(id), renderer));
        let source = Source::Http(answer.response.into_body());
        Ok(Reply::Stream(SseRelay::with_framing(
            source,
            Framing::AwsEventStream,
            translator,
            self.exec.idle_timeout(),
        )))
    }
}

/// Appends `segment` percent-encoded (RFC 3986: everything but unreserved characters), so a
/// model id cannot add path segments, a query or a fragment to the URL.
fn push_path_segment(url: &mut String, segment: &str) {
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
        let mut url = String::new();
        push_path_segment(&mut url, "anthropic.claude-3-haiku-20240307-v1:0");
        assert_eq!(url, "anthropic.claude-3-haiku-20240307-v1%3A0");
        let mut url = String::new();
        push_path_segment(&mut url, "arn:aws:bedrock:us-east-1:1:inference-profile/x");
        assert_eq!(url, "arn%3Aaws%3Abedrock%3Aus-east-1%3A1%3Ainference-profile%2Fx");
    }
}
