//! The Google Gemini mock, in both URL forms:
//!
//! - Gemini API: `POST /v1beta/models/{model}:generateContent`, `:streamGenerateContent`
//!   (`?alt=sse` for SSE, otherwise a streamed JSON array), `:countTokens`, `:embedContent`,
//!   `:batchEmbedContents`; key in `x-goog-api-key` or `?key=`.
//! - Vertex AI: `POST /v1/projects/{project}/locations/{location}/publishers/google/models/{model}:`
//!   `generateContent`, `streamGenerateContent`, `countTokens`, and `predict` (text embeddings);
//!   `Authorization: Bearer <access token>`. `/v1beta1/…` is accepted too.
//!
//! Documents followed (each rule cites its section next to the code):
//! - <https://ai.google.dev/api/generate-content> (request, `GenerationConfig`, response,
//!   `FinishReason`, `SafetySetting`)
//! - <https://ai.google.dev/api/caching#Content>, `#Part`, `#Tool`, `#FunctionDeclaration`,
//!   `#ToolConfig`, and the `Schema` object <https://ai.google.dev/api/caching#Schema>
//! - <https://ai.google.dev/api/embeddings>, <https://ai.google.dev/api/tokens>
//! - <https://ai.google.dev/gemini-api/docs/function-calling>
//! - Vertex: <https://cloud.google.com/vertex-ai/generative-ai/docs/reference/rest/v1/projects.locations.publishers.models/generateContent>
//!   and its `Schema` (which adds `additionalProperties`, `$ref`, `$defs`)
//! - field names per API: the `google-genai` SDK's `_to_mldev` / `_to_vertex` converters
//!   (github.com/googleapis/python-genai, `google/genai/models.py`)
//!
//! # Validation (400 `INVALID_ARGUMENT`)
//! Two layers, as Google's front end: parsing into the protos reports every unknown field
//! (`Invalid JSON payload received. Unknown name "additionalProperties" at
//! 'tools[0].function_declarations[0].parameters': Cannot find field.`) and every wrongly typed
//! value; then the semantic rules report `* GenerateContentRequest.<path>: <problem>` lines or one
//! sentence (roles, function call/response turn order). Both camelCase and snake_case field names
//! are accepted, as proto JSON parsing does. Bodies over [`GeminiOptions::max_body_bytes`]
//! (20 MB) are refused with 400.
//!
//! # Authentication
//! Gemini form: a wrong key is 400 `INVALID_ARGUMENT` "API key not valid" with an `ErrorInfo`
//! reason `API_KEY_INVALID` (as the real API answers, not 401), no key is 403
//! `PERMISSION_DENIED`; `Authorization: Bearer <access_token>` is accepted instead of a key.
//! Vertex form: no token is 401 `UNAUTHENTICATED` (`CREDENTIALS_MISSING`), a wrong one 401,
//! a project other than [`GeminiOptions::project`] 403 `PERMISSION_DENIED`.
//!
//! # Replies (all derived from the request)
//! - Text: `You said: <heard>`, *heard* being the last user turn: text parts, `[inlineData
//!   <mime>]`, `[fileData <uri>]`, `[functionResponse <name>: <response JSON>]`, space-joined.
//!   `responseMimeType: application/json` answers JSON built from `responseSchema` /
//!   `responseJsonSchema` (or `{"text": …}` without one); `text/x.enum` the first enum value.
//! - Function calls: `{"functionCall": {"name", "args"}}` with args built from `parameters`
//!   (or `parametersJsonSchema`) like the Anthropic mock's tool input; no `id` (the Gemini API
//!   sends none); `finishReason` stays `STOP`, as Gemini reports for calls. Mode `ANY` forces a
//!   call (among `allowedFunctionNames`), `NONE` forbids it.
//! - `usageMetadata`: `promptTokenCount` = words of every text part (system instruction
//!   included) + 1 per other part + 1 per function declaration; `candidatesTokenCount` = words
//!   of the reply text + 1 per function call; `totalTokenCount` = prompt + candidates + thoughts;
//!   `promptTokensDetails` one TEXT entry. `modelVersion` = the model in the URL, `responseId`
//!   `mock-response-<n>`.
//! - Stream (`alt=sse`): `data: <GenerateContentResponse>\r\n\r\n` chunks, no `event:` lines;
//!   two words per chunk, all function calls together in one chunk, `finishReason` on the last
//!   chunk only, and `usageMetadata` on **every** chunk with the **cumulative**
//!   `candidatesTokenCount` so far (a translator must set usage, not add it up).
//! - Embeddings: deterministic vectors of [`GeminiOptions::embedding_dimensions`] values in
//!   [-1, 1] (FNV-1a of text and index), cut to `outputDimensionality`.
//!
//! # Behaviours by model id (suffixes combine: `gemini-tool-thinking-disconnect`)
//! | model | reply |
//! |---|---|
//! | anything else | text, `finishReason: STOP` (`MAX_TOKENS` if longer than `maxOutputTokens` words) |
//! | `*-tool` | one `functionCall` of the first declared function |
//! | `*-parallel-tools` | two `functionCall` parts (first and second function) |
//! | `*-text-tool` | a text part `Let me call <name>.` then one `functionCall` |
//! | `*-max-tokens` | the first 3 words, `finishReason: MAX_TOKENS` |
//! | `*-cache` | `cachedContentTokenCount` = half the prompt (rounded up), plus `cacheTokensDetails` |
//! | `*-thinking` | `thoughtsTokenCount` 24; a `thought: true` part when `thinkingConfig.includeThoughts`; `thoughtSignature` on the first function call |
//! | `*-safety` | one candidate with `finishReason: SAFETY`, blocked `safetyRatings`, no content |
//! | `*-prompt-blocked` | no candidates; `promptFeedback.blockReason: SAFETY` |
//! | `error-<status>` | Google's envelope: 400 `INVALID_ARGUMENT`, 401 `UNAUTHENTICATED`, 403 `PERMISSION_DENIED`, 404 `NOT_FOUND`, 429 `RESOURCE_EXHAUSTED` (with a `RetryInfo` of 7s, no `retry-after` header), 500 `INTERNAL`, 503 `UNAVAILABLE`, 504 `DEADLINE_EXCEEDED` |
//! | `*-malformed` | 200 whose body is not JSON (stream: one chunk, then a cut `data:` line) |
//! | `*-midstream-error` | stream: 2 chunks, then `data: {"error":{"code":503,…,"status":"UNAVAILABLE"}}`; non-stream: as default |
//! | `*-disconnect` | stream: 2 chunks, then the connection is cut; non-stream: half the body, then cut |
//!
//! `-stop-sequence` has no Gemini equivalent (Gemini reports `STOP`) and is ignored.

mod embed;
mod error;
mod proto;
mod reply;
mod shape;
mod validate;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use hyper::{Method, Response};

use crate::RecordedRequest;
use crate::behavior::{Failure, Mode};
use crate::body::{End, MockBody};
use crate::json::Json;
use crate::server::{Provider, Req, Running};
use error::{
    UNAUTHENTICATED_INVALID, bad_request, error_body, error_info, google_error, invalid, ok_json, respond,
    status_error,
};
use proto::Api;
use reply::Plan;
use validate::Problem;

pub use reply::{THOUGHT_SIGNATURE, THOUGHTS_TOKENS};

/// Options of a [`GeminiMock`].
#[derive(Debug, Clone)]
pub struct GeminiOptions {
    /// The Gemini API key (`x-goog-api-key` or `?key=`). Default `gemini-mock-key`.
    pub api_key: String,
    /// The OAuth2 access token Vertex requests must bear (also accepted on the Gemini form).
    /// Default `ya29.mock-access-token`.
    pub access_token: String,
    /// The only Vertex project the token may use; `None` (default) allows any.
    pub project: Option<String>,
    /// Length of embedding vectors (before `outputDimensionality`). Default 768.
    pub embedding_dimensions: usize,
    /// Delay between stream chunks. Default zero (no timer at all).
    pub pace: Duration,
    /// Largest accepted body (default 20 MB, the Gemini API's request limit).
    pub max_body_bytes: usize,
}

impl Default for GeminiOptions {
    fn default() -> Self {
        Self {
            api_key: "gemini-mock-key".to_owned(),
            access_token: "ya29.mock-access-token".to_owned(),
            project: None,
            embedding_dimensions: 768,
            pace: Duration::ZERO,
            max_body_bytes: 20 << 20,
        }
    }
}

/// A running Gemini / Vertex AI mock; dropping it stops the server.
#[derive(Debug)]
pub struct GeminiMock {
    running: Running,
}

impl GeminiMock {
    /// Binds `bind` (port 0 for any free port) and serves on the current tokio runtime.
    pub async fn start(bind: SocketAddr, options: GeminiOptions) -> std::io::Result<GeminiMock> {
        Ok(GeminiMock { running: Running::start(bind, Gemini { options }).await? })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.running.addr
    }

    /// `http://<addr>`: the Gemini API's base URL (requests go to `<base>/v1beta/models/…`).
    pub fn base_url(&self) -> String {
        self.running.origin()
    }

    /// `http://<addr>`: Vertex AI's base URL (requests go to `<base>/v1/projects/…`).
    pub fn vertex_base_url(&self) -> String {
        self.running.origin()
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
struct Gemini {
    options: GeminiOptions,
}

/// An authentication failure, rendered by [`google_error`].
#[derive(Debug)]
struct Reject {
    code: u16,
    message: String,
    details: Vec<Json>,
}

fn reject(code: u16, message: &str, details: Vec<Json>) -> Reject {
    Reject { code, message: message.to_owned(), details }
}

/// The RPC a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rpc {
    Generate,
    Stream,
    CountTokens,
    Embed,
    BatchEmbed,
    Predict,
}

#[derive(Debug)]
struct Target<'a> {
    api: Api,
    model: &'a str,
    rpc: Rpc,
    /// Vertex: (project, location).
    scope: Option<(&'a str, &'a str)>,
}

fn route(path: &str) -> Option<Target<'_>> {
    let (api, scope, rest) = if let Some(rest) = path.strip_prefix("/v1beta/models/") {
        (Api::Gemini, None, rest)
    } else {
        let rest = path.strip_prefix("/v1/projects/").or_else(|| path.strip_prefix("/v1beta1/projects/"))?;
        let (project, rest) = rest.split_once("/locations/")?;
        let (location, rest) = rest.split_once("/publishers/google/models/")?;
        (Api::Vertex, Some((project, location)), rest)
    };
    let (model, method) = rest.rsplit_once(':')?;
    if model.is_empty() || model.contains('/') {
        return None;
    }
    let rpc = match (api, method) {
        (_, "generateContent") => Rpc::Generate,
        (_, "streamGenerateContent") => Rpc::Stream,
        (_, "countTokens") => Rpc::CountTokens,
        (Api::Gemini, "embedContent") => Rpc::Embed,
        (Api::Gemini, "batchEmbedContents") => Rpc::BatchEmbed,
        (Api::Vertex, "predict") => Rpc::Predict,
        _ => return None,
    };
    Some(Target { api, model, rpc, scope })
}

impl Provider for Gemini {
    fn max_body_bytes(&self) -> usize {
        self.options.max_body_bytes
    }

    fn too_large(&self, _number: u64) -> Response<MockBody> {
        let message =
            format!("Request payload size exceeds the limit: {} bytes.", self.options.max_body_bytes);
        google_error(400, &message, Vec::new())
    }

    fn handle(&self, req: Req) -> Response<MockBody> {
        let Some(target) = route(&req.path) else {
            return google_error(404, &format!("Method not found: {}", req.path), Vec::new());
        };
        if req.method != Method::POST {
            return google_error(405, "Method not allowed: only POST is served.", Vec::new());
        }
        if let Err(Reject { code, message, details }) = self.authenticate(&req, &target) {
            return google_error(code, &message, details);
        }
        let body = match Json::parse(&req.body) {
            Ok(b) => b,
            Err(e) => return google_error(400, &format!("Invalid JSON payload received. {e}"), Vec::new()),
        };
        let msg = match target.rpc {
            Rpc::Generate | Rpc::Stream => &proto::GENERATE_CONTENT_REQUEST,
            Rpc::CountTokens => &proto::COUNT_TOKENS_REQUEST,
            Rpc::Embed => &proto::EMBED_CONTENT_REQUEST,
            Rpc::BatchEmbed => &proto::BATCH_EMBED_CONTENTS_REQUEST,
            Rpc::Predict => &proto::PREDICT_REQUEST,
        };
        let violations = proto::check(&body, msg, target.api);
        if !violations.is_empty() {
            let message = violations.iter().map(|v| v.description.as_str()).collect::<Vec<_>>().join("\n");
            let details = violations
                .into_iter()
                .map(|v| {
                    Json::obj([("field", Json::str(v.field)), ("description", Json::str(v.description))])
                })
                .collect();
            return google_error(400, &message, vec![bad_request(details)]);
        }
        let behavior = match Mode::from_model(target.model) {
            Mode::Error(status) => {
                // The request is validated first: an invalid one is a 400 whatever the model.
                return match self.validate_only(&body, &target) {
                    Err(p) => invalid(&p),
                    Ok(()) => status_error(status, target.api, target.model),
                };
            }
            Mode::Reply(b) => b,
        };
        match target.rpc {
            Rpc::Generate | Rpc::Stream => self.generate(&req, &body, &target, behavior),
            Rpc::CountTokens => match embed::count_tokens(&body, target.api) {
                Ok(n) => ok_json(embed::count_tokens_reply(n, target.api)),
                Err(p) => invalid(&p),
            },
            Rpc::Embed | Rpc::BatchEmbed | Rpc::Predict => {
                match embed::embed(&body, target.rpc, target.model, self.options.embedding_dimensions) {
                    Ok(json) => ok_json(json),
                    Err(p) => invalid(&p),
                }
            }
        }
    }
}

impl Gemini {
    /// https://ai.google.dev/gemini-api/docs/api-key and Vertex's OAuth2 bearer tokens.
    fn authenticate(&self, req: &Req, target: &Target<'_>) -> Result<(), Reject> {
        let bearer = req.header("authorization").map(|a| a.strip_prefix("Bearer ").unwrap_or(""));
        let token_ok = bearer == Some(self.options.access_token.as_str());
        match target.api {
            Api::Gemini => {
                let key = req.header("x-goog-api-key").or_else(|| req.query_param("key"));
                match (key, bearer) {
                    (Some(k), _) if k == self.options.api_key => Ok(()),
                    (Some(_), _) => Err(reject(
                        400,
                        "API key not valid. Please pass a valid API key.",
                        vec![error_info("API_KEY_INVALID", "generativelanguage.googleapis.com")],
                    )),
                    (None, Some(_)) if token_ok => Ok(()),
                    (None, Some(_)) => Err(reject(401, UNAUTHENTICATED_INVALID, Vec::new())),
                    (None, None) => Err(reject(
                        403,
                        "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.",
                        Vec::new(),
                    )),
                }
            }
            Api::Vertex => {
                match bearer {
                    None => {
                        return Err(reject(
                            401,
                            "Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.",
                            vec![error_info("CREDENTIALS_MISSING", "googleapis.com")],
                        ));
                    }
                    Some(_) if !token_ok => return Err(reject(401, UNAUTHENTICATED_INVALID, Vec::new())),
                    Some(_) => {}
                }
                if let (Some(want), Some((project, location))) = (&self.options.project, target.scope)
                    && want != project
                {
                    let message = format!(
                        "Permission 'aiplatform.endpoints.predict' denied on resource '//aiplatform.googleapis.com/projects/{project}/locations/{location}/publishers/google/models/{}' (or it may not exist).",
                        target.model
                    );
                    return Err(reject(
                        403,
                        &message,
                        vec![error_info("IAM_PERMISSION_DENIED", "aiplatform.googleapis.com")],
                    ));
                }
                Ok(())
            }
        }
    }

    /// The semantic checks of `target`'s RPC, without replying.
    fn validate_only(&self, body: &Json, target: &Target<'_>) -> Result<(), Problem> {
        match target.rpc {
            Rpc::Generate | Rpc::Stream => validate::generate(body, "GenerateContentRequest").map(|_| ()),
            Rpc::CountTokens => embed::count_tokens(body, target.api).map(|_| ()),
            Rpc::Embed | Rpc::BatchEmbed | Rpc::Predict => {
                embed::embed(body, target.rpc, target.model, self.options.embedding_dimensions).map(|_| ())
            }
        }
    }

    fn generate(
        &self,
        req: &Req,
        body: &Json,
        target: &Target<'_>,
        behavior: crate::behavior::Behavior,
    ) -> Response<MockBody> {
        let checked = match validate::generate(body, "GenerateContentRequest") {
            Ok(c) => c,
            Err(p) => return invalid(&p),
        };
        let plan = Plan::new(&checked, behavior, target.model, target.api, req.number);
        let pace = self.options.pace;
        if target.rpc == Rpc::Generate {
            let json = plan.full();
            let body = match behavior.failure {
                Failure::Malformed => {
                    let mut cut = json.into_bytes();
                    cut.truncate(cut.len() / 2);
                    cut.extend_from_slice(b"\n<html><title>502 Bad Gateway</title></html>");
                    MockBody::full(cut)
                }
                Failure::Disconnect => {
                    let whole = Bytes::from(json);
                    MockBody::frames(vec![whole.slice(..whole.len() / 2)], pace, End::Cut)
                }
                Failure::None | Failure::Midstream => MockBody::full(json),
            };
            return respond(200, "application/json; charset=UTF-8", body);
        }
        // https://ai.google.dev/api/generate-content#method:-models.streamgeneratecontent
        let sse = req.query_param("alt") == Some("sse");
        let chunks: Vec<String> = plan.chunks().iter().map(Json::to_text).collect();
        let keep = reply::failure_point(chunks.len());
        let (mut texts, tail, end): (Vec<String>, Option<String>, End) = match behavior.failure {
            Failure::None => (chunks, None, End::Complete),
            Failure::Malformed => {
                let mut c = chunks;
                c.truncate(1);
                (c, Some(r#"{"candidates": [{"content": {"parts": [{"text": "cu"#.to_owned()), End::Complete)
            }
            Failure::Midstream => {
                let mut c = chunks;
                c.truncate(keep);
                let err = error_body(503, "The model is overloaded. Please try again later.", Vec::new());
                (c, Some(err.to_text()), End::Complete)
            }
            Failure::Disconnect => {
                let mut c = chunks;
                c.truncate(keep);
                (c, None, End::Cut)
            }
        };
        texts.extend(tail);
        let frames: Vec<Bytes> = if sse {
            texts.iter().map(|t| reply::sse(t)).collect()
        } else {
            // Without alt=sse the stream is one JSON array, written element by element.
            let mut frames: Vec<Bytes> = texts
                .iter()
                .enumerate()
                .map(|(i, t)| Bytes::from(format!("{}{t}", if i == 0 { "[" } else { ",\r\n" })))
                .collect();
            if end == End::Complete && behavior.failure != Failure::Malformed {
                frames.push(Bytes::from_static(b"]"));
            }
            frames
        };
        let content_type = if sse { "text/event-stream" } else { "application/json; charset=UTF-8" };
        respond(200, content_type, MockBody::frames(frames, pace, end))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        let t = route("/v1beta/models/gemini-2.5-flash:streamGenerateContent").unwrap();
        assert_eq!((t.api, t.model, t.rpc, t.scope), (Api::Gemini, "gemini-2.5-flash", Rpc::Stream, None));
        let t =
            route("/v1/projects/p1/locations/us-central1/publishers/google/models/gemini-x:predict").unwrap();
        assert_eq!(
            (t.api, t.model, t.rpc, t.scope),
            (Api::Vertex, "gemini-x", Rpc::Predict, Some(("p1", "us-central1")))
        );
        assert!(route("/v1beta/models/g:predict").is_none());
        assert!(route("/v1/projects/p/locations/l/publishers/google/models/g:embedContent").is_none());
        assert!(route("/v1beta/models/:generateContent").is_none());
        assert!(route("/v1/models/g:generateContent").is_none());
    }
}
