//! The error edge: every failure the API returns is classified once, by [`GatewayError::render`],
//! into an [`ErrorReply`] (status, OpenAI `type`, `code`, `param`, message), which is then written
//! in the caller's dialect: OpenAI's envelope `{"error":{"message","type","param","code"}}`, or
//! Anthropic's `{"type":"error","error":{"type","message"}}` on the Messages API.
//!
//! Modules return their own small errors (auth, body, upstream); this is the one exhaustive
//! mapping to HTTP. Messages say what was wrong and how to fix it, and never echo a key.

use crate::limits::Refusal;
use bytes::Bytes;
use http::{HeaderValue, StatusCode};
use std::fmt;
use std::time::Duration;
use switchboard_llm::capability::Capability;

/// Everything the API can answer with instead of a model response.
#[derive(Debug)]
pub enum GatewayError {
    /// The body is not what the endpoint takes (bad JSON, missing or mistyped parameter).
    BadRequest {
        message: String,
        param: Option<String>,
    },
    /// No `Authorization: Bearer` or `x-api-key` header.
    MissingKey,
    /// A key was presented but is not known.
    InvalidKey,
    KeyDisabled,
    KeyExpired,
    /// The key exists but may not use this model.
    ModelNotAllowed {
        model: String,
    },
    /// No route serves this model name.
    UnknownModel {
        model: String,
    },
    /// The request needs something no backend of its route can do (images, tools, a longer
    /// context...), so it was sent nowhere.
    Unsupported {
        model: String,
        capability: Capability,
    },
    /// No such endpoint.
    NotFound {
        path: String,
    },
    MethodNotAllowed,
    BodyTooLarge {
        limit: usize,
    },
    /// The client was too slow to send its body.
    BodyTimeout,
    /// No config has been loaded yet (the gateway is not ready).
    NotReady,
    /// A rate limit, concurrency limit or budget refused the request.
    Limited(Refusal),
    /// `GET`/`DELETE /v1/responses/{id}`: no such stored response for this key.
    ResponseNotFound {
        id: String,
    },
    /// `previous_response_id` names no stored response of this key.
    PreviousResponseNotFound {
        id: String,
    },
    /// The conversation `previous_response_id` continues is over the configured size.
    ConversationTooLarge {
        limit: usize,
    },
    /// The response store (Redis) cannot be reached.
    StoreUnavailable,
    /// Every backend of the route failed; this is the last failure.
    Upstream(UpstreamError),
    /// This replica is at one of its bounds (`edge.rs`); another replica, or this one shortly,
    /// can serve the request.
    Overloaded(Overload),
    /// The request's attempts together took longer than the gateway's request deadline.
    DeadlineExceeded {
        deadline: Duration,
    },
}

/// Which bound of the edge an overloaded replica is at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overload {
    /// `--max-in-flight` requests are running.
    InFlight,
    /// `--max-buffered-body-bytes` of request bodies are in memory.
    BufferedBytes,
}

/// A one-line, log-safe description: never a key, never an upstream body (a provider's error
/// text may echo a masked credential).
impl fmt::Display for GatewayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GatewayError::BadRequest { message, param } => match param {
                Some(param) => write!(f, "bad request ({param}): {message}"),
                None => write!(f, "bad request: {message}"),
            },
            GatewayError::MissingKey => f.write_str("no API key"),
            GatewayError::InvalidKey => f.write_str("unknown API key"),
            GatewayError::KeyDisabled => f.write_str("disabled API key"),
            GatewayError::KeyExpired => f.write_str("expired API key"),
            GatewayError::ModelNotAllowed { model } => write!(f, "key may not use model {model:?}"),
            GatewayError::UnknownModel { model } => write!(f, "unknown model {model:?}"),
            GatewayError::Unsupported { model, capability } => {
                write!(f, "no backend of model {model:?} has {}", capability.as_str())
            }
            GatewayError::NotFound { path } => write!(f, "no endpoint {path:?}"),
            GatewayError::MethodNotAllowed => f.write_str("method not allowed"),
            GatewayError::BodyTooLarge { limit } => write!(f, "body over {limit} bytes"),
            GatewayError::BodyTimeout => f.write_str("body not received in time"),
            GatewayError::NotReady => f.write_str("no config loaded"),
            GatewayError::Limited(refusal) => {
                write!(f, "refused by policy {:?}: {:?}", refusal.policy, refusal.reason)
            }
            GatewayError::ResponseNotFound { id } => write!(f, "no stored response {id:?}"),
            GatewayError::PreviousResponseNotFound { id } => write!(f, "no stored previous response {id:?}"),
            GatewayError::ConversationTooLarge { limit } => write!(f, "conversation over {limit} bytes"),
            GatewayError::StoreUnavailable => f.write_str("response store unreachable"),
            GatewayError::Upstream(err) => err.fmt(f),
            GatewayError::Overloaded(Overload::InFlight) => f.write_str("too many requests in flight"),
            GatewayError::Overloaded(Overload::BufferedBytes) => {
                f.write_str("request-body buffer budget exhausted")
            }
            GatewayError::DeadlineExceeded { deadline } => {
                write!(f, "no answer within the request deadline of {} ms", deadline.as_millis())
            }
        }
    }
}

impl From<UpstreamError> for GatewayError {
    fn from(err: UpstreamError) -> Self {
        GatewayError::Upstream(err)
    }
}

impl From<switchboard_llm::openai::RequestError> for GatewayError {
    fn from(err: switchboard_llm::openai::RequestError) -> Self {
        GatewayError::BadRequest { message: err.message, param: err.param }
    }
}

/// An error, classified: what every dialect's envelope is written from.
#[derive(Debug, Clone)]
pub struct ErrorReply {
    pub status: StatusCode,
    /// OpenAI's `type` (`invalid_request_error`, `server_error`, ...).
    pub kind: String,
    pub code: Option<String>,
    pub param: Option<String>,
    pub message: String,
    pub retry_after: Option<HeaderValue>,
}

/// The error envelope a client understands: the API it called decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    OpenAi,
    Anthropic,
}

impl ErrorReply {
    pub fn new(
        status: StatusCode,
        kind: &str,
        code: Option<&str>,
        message: String,
        param: Option<&str>,
    ) -> Self {
        ErrorReply {
            status,
            kind: kind.to_owned(),
            code: code.map(str::to_owned),
            param: param.map(str::to_owned),
            message,
            retry_after: None,
        }
    }

    /// The response body in `dialect`'s envelope.
    pub fn body(&self, dialect: Dialect) -> Bytes {
        match dialect {
            Dialect::OpenAi => {
                envelope(&self.message, &self.kind, self.param.as_deref(), self.code.as_deref())
            }
            Dialect::Anthropic => {
                switchboard_llm::anthropic::inbound::error_body(self.status.as_u16(), &self.message)
            }
        }
    }
}

impl GatewayError {
    /// The one mapping from failure to status, OpenAI `type`, `code` and message.
    pub fn render(&self) -> ErrorReply {
        use GatewayError as E;
        let (status, kind, code, message, param): (StatusCode, &str, Option<&str>, String, Option<&str>) = match self {
            E::BadRequest { message, param } => {
                (StatusCode::BAD_REQUEST, "invalid_request_error", None, message.clone(), param.as_deref())
            }
            E::MissingKey => (
                StatusCode::UNAUTHORIZED,
                "invalid_request_error",
                Some("missing_api_key"),
                "You didn't provide an API key. Send it as 'Authorization: Bearer <key>' or 'x-api-key: <key>'."
                    .to_owned(),
                None,
            ),
            E::InvalidKey => (
                StatusCode::UNAUTHORIZED,
                "invalid_request_error",
                Some("invalid_api_key"),
                "Incorrect API key provided.".to_owned(),
                None,
            ),
            E::KeyDisabled => (
                StatusCode::UNAUTHORIZED,
                "invalid_request_error",
                Some("invalid_api_key"),
                "This API key has been disabled.".to_owned(),
                None,
            ),
            E::KeyExpired => (
                StatusCode::UNAUTHORIZED,
                "invalid_request_error",
                Some("invalid_api_key"),
                "This API key has expired.".to_owned(),
                None,
            ),
            E::ModelNotAllowed { model } => (
                StatusCode::FORBIDDEN,
                "invalid_request_error",
                Some("model_not_allowed"),
                format!("This API key is not allowed to use the model '{model}'."),
                Some("model"),
            ),
            E::UnknownModel { model } => (
                StatusCode::NOT_FOUND,
                "invalid_request_error",
                Some("model_not_found"),
                format!("The model '{model}' does not exist or you do not have access to it."),
                Some("model"),
            ),
            E::Unsupported { model, capability } => {
                let (code, message) = match capability {
                    Capability::ContextLength => (
                        "context_length_exceeded",
                        format!(
                            "This request does not fit the context window of the model '{model}': the prompt \
                             and max_tokens add up to more tokens than any of its backends takes."
                        ),
                    ),
                    other => (
                        "unsupported_capability",
                        format!(
                            "The model '{model}' does not support {}: none of its backends has the `{}` capability.",
                            describe(*other),
                            other.as_str()
                        ),
                    ),
                };
                (StatusCode::BAD_REQUEST, "invalid_request_error", Some(code), message, Some(capability.param()))
            }
            E::NotFound { path } => (
                StatusCode::NOT_FOUND,
                "invalid_request_error",
                Some("unknown_url"),
                format!("Unknown request URL: {path}. Endpoints: /v1/chat/completions, /v1/embeddings, /v1/models."),
                None,
            ),
            E::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "invalid_request_error",
                Some("method_not_allowed"),
                "This endpoint does not support this HTTP method.".to_owned(),
                None,
            ),
            E::BodyTooLarge { limit } => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "invalid_request_error",
                Some("request_too_large"),
                format!("The request body is larger than the gateway's limit of {limit} bytes."),
                None,
            ),
            E::BodyTimeout => (
                StatusCode::REQUEST_TIMEOUT,
                "invalid_request_error",
                Some("request_timeout"),
                "The request body was not received in time.".to_owned(),
                None,
            ),
            E::NotReady => (
                StatusCode::SERVICE_UNAVAILABLE,
                "server_error",
                Some("not_ready"),
                "The gateway has no configuration loaded yet.".to_owned(),
                None,
            ),
            E::Overloaded(overload) => {
                let message = match overload {
                    Overload::InFlight => "This gateway replica is handling too many requests; retry shortly.",
                    Overload::BufferedBytes => {
                        "This gateway replica is holding too many request bodies in memory; retry shortly."
                    }
                };
                return ErrorReply {
                    // Bounds free up as requests finish: a second is long for a request to wait,
                    // short for a load balancer to move it elsewhere.
                    retry_after: Some(HeaderValue::from_static("1")),
                    ..ErrorReply::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "server_error",
                        Some("overloaded"),
                        message.to_owned(),
                        None,
                    )
                };
            }
            E::DeadlineExceeded { deadline } => (
                StatusCode::GATEWAY_TIMEOUT,
                "server_error",
                Some("timeout"),
                format!(
                    "No backend answered within the gateway's request deadline of {} ms.",
                    deadline.as_millis()
                ),
                None,
            ),
            E::ResponseNotFound { id } => (
                StatusCode::NOT_FOUND,
                "invalid_request_error",
                Some("response_not_found"),
                format!("Response with id '{id}' not found."),
                None,
            ),
            E::PreviousResponseNotFound { id } => (
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                Some("previous_response_not_found"),
                format!("Previous response with id '{id}' not found."),
                Some("previous_response_id"),
            ),
            E::ConversationTooLarge { limit } => (
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                Some("conversation_too_large"),
                format!(
                    "The conversation this request continues is larger than the gateway's limit of {limit} bytes; start a new one (send the turns it needs in `input`)."
                ),
                Some("previous_response_id"),
            ),
            E::StoreUnavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "server_error",
                Some("store_unavailable"),
                "Stored responses cannot be reached right now. Please try again shortly.".to_owned(),
                None,
            ),
            E::Upstream(err) => return render_upstream(err),
            E::Limited(refusal) => return crate::limits::reply::render_refusal(refusal),
        };
        ErrorReply::new(status, kind, code, message, param)
    }
}

/// What a capability lets a request do, in the words of an error message.
fn describe(capability: Capability) -> &'static str {
    match capability {
        Capability::Streaming => "streamed answers",
        Capability::Tools => "tool calls",
        Capability::Vision => "image input",
        Capability::JsonMode => "JSON mode (response_format)",
        Capability::Embeddings => "embeddings",
        Capability::ContextLength => "a prompt this long",
    }
}

/// OpenAI's error envelope, defined with the rest of its wire format.
pub use switchboard_llm::openai::error_envelope as envelope;

mod upstream;

use upstream::render_upstream;
pub use upstream::{UpstreamError, UpstreamErrorKind};

#[cfg(test)]
mod tests;
