//! The Anthropic Messages mock: `POST /v1/messages` (JSON and SSE) and
//! `POST /v1/messages/count_tokens`.
//!
//! Documents followed (each rule cites its section next to the code):
//! - Messages: <https://docs.anthropic.com/en/api/messages>
//! - Streaming: <https://docs.anthropic.com/en/api/messages-streaming>
//! - Errors: <https://docs.anthropic.com/en/api/errors>
//! - Versioning: <https://docs.anthropic.com/en/api/versioning>
//! - Tool use: <https://docs.anthropic.com/en/docs/build-with-claude/tool-use>
//! - Vision: <https://docs.anthropic.com/en/docs/build-with-claude/vision>
//! - Prompt caching: <https://docs.anthropic.com/en/docs/build-with-claude/prompt-caching>
//! - Field lists and types: the official SDK's `MessageCreateParams` / `MessageCountTokensParams`
//!   (github.com/anthropics/anthropic-sdk-python, `src/anthropic/types/`).
//!
//! # Requests
//! Headers: `x-api-key` must equal [`AnthropicOptions::api_key`] (with
//! [`AnthropicOptions::azure_auth`] also `api-key: <key>` or `Authorization: Bearer <key>`, as
//! Microsoft Foundry accepts), else 401 `authentication_error`; `anthropic-version` must be
//! `2023-06-01` (or the older `2023-01-01`), else 400. Bodies over
//! [`AnthropicOptions::max_body_bytes`] (32 MB, as documented) get 413 `request_too_large`.
//! Everything else is validated as the real API does and refused with 400
//! `invalid_request_error` naming the field (`max_tokens: Field required`,
//! `messages.1.content.0.image.source.base64.media_type: Input should be …`).
//!
//! # Replies (all derived from the request)
//! - Text: `You said: <heard>`, where *heard* is the last user turn summarised: its text, then
//!   `[image <media_type|url>]`, `[document]`, `[tool_result <id>: <text>]` (`tool_error` when
//!   `is_error`), space-joined; with a JSON output format (`output_config.format` or the beta
//!   `output_format`) the text is instead compact JSON built from the schema.
//! - Tool calls: input built from the tool's `input_schema` (enum → first value, string →
//!   `"<property> sample"`, integer → minimum or 42, number → minimum or 3.5, boolean → true,
//!   array → one item, object → every property); ids `toolu_mock_<len(messages)>_<n>`.
//! - `input_tokens`: whitespace-separated words of every text the model reads (system, text
//!   blocks, string contents, tool_result text) + 1 per other block (image, document, tool_use,
//!   tool_result, …) + 1 per tool definition. `output_tokens`: the number of
//!   `content_block_delta` events the streamed form has (text: one per word; tool input: one
//!   empty piece, then pieces of 3–5 characters), at least 1. Ids: `msg_mock_<n>`, request ids
//!   `req_mock_<n>` (n counts requests).
//! - Stream: exactly the documented events with `event:` lines; `message_delta.usage` carries
//!   the cumulative `output_tokens` and, as the API now sends, `input_tokens` and the cache counts.
//!
//! # Behaviours by model id (suffixes combine: `claude-tool-cache-disconnect`)
//! | model | reply |
//! |---|---|
//! | anything else | one text block, `end_turn` (`max_tokens` if the reply is longer than `max_tokens` words) |
//! | `*-tool` | one `tool_use` of the first tool (or the `tool_choice` one), `stop_reason: tool_use` |
//! | `*-parallel-tools` | two `tool_use` blocks (first and second tool; one with `disable_parallel_tool_use`) |
//! | `*-text-tool` | a text block `Let me call <name>.` then one `tool_use` |
//! | `*-max-tokens` | the first 3 words of the reply, `stop_reason: max_tokens` |
//! | `*-stop-sequence` | `stop_reason: stop_sequence`, `stop_sequence` = the request's first |
//! | `*-cache` | usage `cache_creation_input_tokens` 128 (5-minute), `cache_read_input_tokens` 2048 |
//! | `error-<status>` | that status with the error envelope; 429 adds `retry-after: 7`, 529 is `overloaded_error` |
//! | `*-malformed` | 200 whose body is not JSON (stream: `message_start`, then an event whose data is cut) |
//! | `*-midstream-error` | stream: 5 events, then `event: error` (`overloaded_error`); non-stream: as default |
//! | `*-disconnect` | stream: 5 events, then the connection is cut; non-stream: headers and half the body, then cut |
//!
//! `-thinking`, `-safety` and `-prompt-blocked` are Gemini keywords, ignored here.
//! `tool_choice` `any`/`tool` forces a tool call whatever the model; `none` forbids it. Every
//! error has the body `{"type":"error","error":{"type","message"},"request_id"}`, a
//! `request-id` header and `x-should-retry`.

mod fields;
mod reply;
mod turns;
mod validate;

use std::net::SocketAddr;
use std::time::Duration;

use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderName, HeaderValue, RETRY_AFTER};
use hyper::{Method, Response, StatusCode};

use crate::RecordedRequest;
use crate::behavior::{Failure, Mode};
use crate::body::{End, MockBody};
use crate::json::Json;
use crate::server::{Provider, Req, Running};
use reply::Plan;
use validate::Endpoint;

pub use reply::{CACHE_CREATION_TOKENS, CACHE_READ_TOKENS};

/// Options of an [`AnthropicMock`].
#[derive(Debug, Clone)]
pub struct AnthropicOptions {
    /// The key `x-api-key` must carry. Default `sk-ant-mock-key`.
    pub api_key: String,
    /// Also accept `api-key: <key>` and `Authorization: Bearer <key>` (Microsoft Foundry's
    /// Azure-hosted Anthropic endpoints). Default false.
    pub azure_auth: bool,
    /// Reject two consecutive messages with the same role and an assistant first message, the
    /// classic rule the gateway is required to satisfy by merging turns (default true). With
    /// false, consecutive turns are combined, as the current API documents.
    pub strict_turns: bool,
    /// A path prefix before `/v1/messages`, e.g. `/anthropic` for Foundry's
    /// `https://<resource>.services.ai.azure.com/anthropic/v1/messages`. Default empty.
    pub path_prefix: String,
    /// Delay between stream events. Default zero (no timer at all).
    pub pace: Duration,
    /// Largest accepted body (default 32 MB, the documented Messages limit).
    pub max_body_bytes: usize,
}

impl Default for AnthropicOptions {
    fn default() -> Self {
        Self {
            api_key: "sk-ant-mock-key".to_owned(),
            azure_auth: false,
            strict_turns: true,
            path_prefix: String::new(),
            pace: Duration::ZERO,
            max_body_bytes: 32 << 20,
        }
    }
}

/// A running Anthropic Messages mock; dropping it stops the server.
#[derive(Debug)]
pub struct AnthropicMock {
    running: Running,
    prefix: String,
}

impl AnthropicMock {
    /// Binds `bind` (port 0 for any free port) and serves on the current tokio runtime.
    pub async fn start(bind: SocketAddr, options: AnthropicOptions) -> std::io::Result<AnthropicMock> {
        let prefix = options.path_prefix.trim_end_matches('/').to_owned();
        let running = Running::start(bind, Anthropic { options }).await?;
        Ok(AnthropicMock { running, prefix })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.running.addr
    }

    /// `http://<addr><path_prefix>`: what the Anthropic SDKs call `base_url` (they append
    /// `/v1/messages`).
    pub fn base_url(&self) -> String {
        format!("{}{}", self.running.origin(), self.prefix)
    }

    /// The full `…/v1/messages` URL.
    pub fn messages_url(&self) -> String {
        format!("{}/v1/messages", self.base_url())
    }

    /// Requests received so far (every path, rejected ones included).
    pub fn requests(&self) -> u64 {
        self.running.requests()
    }

    /// The last request received.
    pub fn last_request(&self) -> Option<RecordedRequest> {
        self.running.last_request()
    }
}

#[derive(Debug)]
struct Anthropic {
    options: AnthropicOptions,
}

impl Provider for Anthropic {
    fn max_body_bytes(&self) -> usize {
        self.options.max_body_bytes
    }

    fn too_large(&self, number: u64) -> Response<MockBody> {
        // https://docs.anthropic.com/en/api/errors#request-size-limits
        error(StatusCode::PAYLOAD_TOO_LARGE, "Request exceeds the maximum allowed number of bytes.", number)
    }

    fn handle(&self, req: Req) -> Response<MockBody> {
        let n = req.number;
        let endpoint = match req.path.strip_prefix(self.options.path_prefix.trim_end_matches('/')) {
            Some("/v1/messages") => Endpoint::Messages,
            Some("/v1/messages/count_tokens") => Endpoint::CountTokens,
            _ => return error(StatusCode::NOT_FOUND, "Not Found", n),
        };
        if req.method != Method::POST {
            return error(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed", n);
        }
        if let Err(message) = self.authenticate(&req) {
            return error(StatusCode::UNAUTHORIZED, message, n);
        }
        // https://docs.anthropic.com/en/api/versioning: the header is required on every request.
        match req.header("anthropic-version") {
            None => return error(StatusCode::BAD_REQUEST, "anthropic-version: header is required", n),
            Some("2023-06-01" | "2023-01-01") => {}
            Some(other) => {
                let message = format!(
                    "anthropic-version: invalid version {other:?}; see https://docs.anthropic.com/en/api/versioning"
                );
                return error(StatusCode::BAD_REQUEST, &message, n);
            }
        }
        let body = match Json::parse(&req.body) {
            Ok(b) => b,
            Err(e) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    &format!("There was an issue with the format of your request: invalid JSON: {e}"),
                    n,
                );
            }
        };
        let checked = match validate::check(&body, endpoint, self.options.strict_turns) {
            Ok(c) => c,
            Err(message) => return error(StatusCode::BAD_REQUEST, &message, n),
        };
        let behavior = match Mode::from_model(checked.model) {
            Mode::Error(status) => return status_error(status, n),
            Mode::Reply(b) => b,
        };
        if endpoint == Endpoint::CountTokens {
            let body = Json::obj([("input_tokens", Json::int(checked.input_tokens))]).to_text();
            return respond(StatusCode::OK, "application/json", MockBody::full(body), n);
        }
        let plan = Plan::new(&checked, behavior, n);
        let pace = self.options.pace;
        if checked.stream {
            let sse = "text/event-stream; charset=utf-8";
            let mut events = plan.events();
            let body = match behavior.failure {
                Failure::None => MockBody::frames(events, pace, End::Complete),
                Failure::Malformed => {
                    events.truncate(1);
                    events.push(bytes::Bytes::from_static(
                        b"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"te\n\n",
                    ));
                    MockBody::frames(events, pace, End::Complete)
                }
                Failure::Midstream => {
                    events.truncate(reply::failure_point(&events));
                    // https://docs.anthropic.com/en/api/messages-streaming#error-events
                    let err = Json::obj([
                        ("type", Json::str("error")),
                        (
                            "error",
                            Json::obj([
                                ("type", Json::str("overloaded_error")),
                                ("message", Json::str("Overloaded")),
                            ]),
                        ),
                    ]);
                    events.push(reply::event("error", &err));
                    MockBody::frames(events, pace, End::Complete)
                }
                Failure::Disconnect => {
                    events.truncate(reply::failure_point(&events));
                    MockBody::frames(events, pace, End::Cut)
                }
            };
            let mut resp = respond(StatusCode::OK, sse, body, n);
            resp.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            return resp;
        }
        let json = plan.message_json();
        let body = match behavior.failure {
            Failure::Malformed => {
                let mut cut = json.into_bytes();
                cut.truncate(cut.len() / 2);
                cut.extend_from_slice(b"<!-- upstream proxy error -->");
                MockBody::full(cut)
            }
            Failure::Disconnect => {
                let whole = bytes::Bytes::from(json);
                MockBody::frames(vec![whole.slice(..whole.len() / 2)], pace, End::Cut)
            }
            Failure::None | Failure::Midstream => MockBody::full(json),
        };
        respond(StatusCode::OK, "application/json", body, n)
    }
}

impl Anthropic {
    /// https://docs.anthropic.com/en/api/overview#authentication (and Foundry's `api-key` /
    /// Entra bearer forms when enabled).
    fn authenticate(&self, req: &Req) -> Result<(), &'static str> {
        let key = self.options.api_key.as_str();
        let mut presented = req.header("x-api-key").map(|k| k == key);
        if self.options.azure_auth {
            let api_key = req.header("api-key").map(|k| k == key);
            let bearer = req.header("authorization").map(|a| a.strip_prefix("Bearer ") == Some(key));
            presented = match (presented, api_key, bearer) {
                (None, None, None) => None,
                (a, b, c) => Some(a == Some(true) || b == Some(true) || c == Some(true)),
            };
        }
        match presented {
            None => Err("x-api-key header is required"),
            Some(false) => Err("invalid x-api-key"),
            Some(true) => Ok(()),
        }
    }
}

/// A response with the headers every Anthropic response carries.
fn respond(
    status: StatusCode,
    content_type: &'static str,
    body: MockBody,
    number: u64,
) -> Response<MockBody> {
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(&format!("req_mock_{number}")) {
        h.insert(HeaderName::from_static("request-id"), v);
    }
    resp
}

/// https://docs.anthropic.com/en/api/errors#error-shapes: the error type follows the status.
fn error_type(status: u16) -> &'static str {
    match status {
        400 => "invalid_request_error",
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        500 => "api_error",
        504 => "timeout_error",
        529 => "overloaded_error",
        s if s >= 500 => "api_error",
        _ => "invalid_request_error",
    }
}

/// `{"type":"error","error":{"type":…,"message":…},"request_id":"req_…"}` with the status.
fn error(status: StatusCode, message: &str, number: u64) -> Response<MockBody> {
    let body = Json::obj([
        ("type", Json::str("error")),
        (
            "error",
            Json::obj([("type", Json::str(error_type(status.as_u16()))), ("message", Json::str(message))]),
        ),
        ("request_id", Json::str(format!("req_mock_{number}"))),
    ]);
    let mut resp = respond(status, "application/json", MockBody::full(body.to_text()), number);
    // The SDKs obey x-should-retry: true for 408, 409, 429 and 5xx.
    let retry = matches!(status.as_u16(), 408 | 409 | 429) || status.is_server_error();
    resp.headers_mut().insert(
        HeaderName::from_static("x-should-retry"),
        HeaderValue::from_static(if retry { "true" } else { "false" }),
    );
    if status == StatusCode::TOO_MANY_REQUESTS {
        resp.headers_mut().insert(RETRY_AFTER, HeaderValue::from_static("7"));
    }
    resp
}

/// What an `error-<status>` model gets.
fn status_error(status: u16, number: u64) -> Response<MockBody> {
    let message = match status {
        400 => "mock error-400: there was an issue with the format or content of your request",
        401 => "invalid x-api-key",
        403 => "Your API key does not have permission to use the specified resource.",
        404 => "model: error-404",
        413 => "Request exceeds the maximum allowed number of bytes.",
        429 => {
            "This request would exceed the rate limit for your organization of 50 requests per minute (mock error-429)."
        }
        529 => "Overloaded",
        _ if status >= 500 => "Internal server error",
        _ => "mock error",
    };
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    error(status, message, number)
}
