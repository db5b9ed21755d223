//! Azure OpenAI mode: the same chat and embeddings behaviours behind Azure's URLs and checks.
//!
//! - `POST /openai/deployments/{deployment}/chat/completions?api-version=V` (and `/embeddings`):
//!   `api-version` is required and must be one of [`AzureOptions::api_versions`]; a missing or
//!   unknown one gets Azure's 404 `{"error":{"code":"404","message":"Resource not found"}}`.
//! - `POST /openai/v1/chat/completions` (and `/embeddings`): the v1 API, no `api-version` (or
//!   `preview`), the model in the body.
//! - Authentication: `api-key: <key>` or `Authorization: Bearer <Entra token>`; otherwise 401
//!   with Azure's "Access denied due to invalid subscription key" envelope.
//! - A request whose model (the deployment's, or the body's on v1) is `content-filter` gets
//!   Azure's 400 `content_filter` error (with `innererror.code: ResponsibleAIPolicyViolation`);
//!   one ending in `-tool` calls the request's first tool (`{"city":"Paris"}`; streamed as the
//!   id and name, then the arguments in three pieces, `finish_reason: tool_calls`).
//!
//! <https://learn.microsoft.com/azure/ai-foundry/openai/reference>,
//! <https://learn.microsoft.com/azure/ai-foundry/openai/concepts/content-filter>

use hyper::header::{AUTHORIZATION, HeaderValue};
use hyper::{HeaderMap, Response, StatusCode};

use crate::behavior::json_response;
use crate::body::MockBody;

/// Azure mode's settings (see [`crate::Options::azure`]).
#[derive(Debug, Clone)]
pub struct AzureOptions {
    /// The `api-key` accepted. Default `azure-mock-key`.
    pub api_key: String,
    /// The Entra ID access token accepted as `Authorization: Bearer`. Default `entra.mock-access-token`.
    pub bearer_token: String,
    /// The dated API versions deployment URLs accept. Default `2024-10-21`, `2025-04-01-preview`.
    pub api_versions: Vec<String>,
}

impl Default for AzureOptions {
    fn default() -> Self {
        AzureOptions {
            api_key: "azure-mock-key".to_owned(),
            bearer_token: "entra.mock-access-token".to_owned(),
            api_versions: vec!["2024-10-21".to_owned(), "2025-04-01-preview".to_owned()],
        }
    }
}

/// The OpenAI path an Azure request stands for (`/v1/chat/completions`), and its deployment, or
/// the answer Azure gives instead.
pub(crate) fn route(
    options: &AzureOptions,
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
) -> Result<(&'static str, Option<String>), Box<Response<MockBody>>> {
    let version = query.into_iter().flat_map(|q| q.split('&')).find_map(|kv| kv.strip_prefix("api-version="));
    let (rest, deployment) = if let Some(rest) = path.strip_prefix("/openai/v1/") {
        if version.is_some_and(|v| v != "preview") {
            return Err(Box::new(not_found()));
        }
        (rest, None)
    } else {
        let refused = || Box::new(not_found());
        let rest = path.strip_prefix("/openai/deployments/").ok_or_else(refused)?;
        let (deployment, rest) = rest.split_once('/').ok_or_else(refused)?;
        if !version.is_some_and(|v| options.api_versions.iter().any(|known| known == v)) {
            return Err(refused());
        }
        (rest, Some(deployment.to_owned()))
    };
    let openai = match rest {
        "chat/completions" => "/v1/chat/completions",
        "embeddings" => "/v1/embeddings",
        _ => return Err(Box::new(not_found())),
    };
    let key = headers.get("api-key").is_some_and(|v| v.as_bytes() == options.api_key.as_bytes());
    let bearer = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| t == options.bearer_token);
    if !key && !bearer {
        return Err(Box::new(error(
            StatusCode::UNAUTHORIZED,
            r#"{"error":{"code":"401","message":"Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource."}}"#,
        )));
    }
    Ok((openai, deployment))
}

/// The answer for the models Azure mode adds (`content-filter`, `*-tool`), if `model` is one.
pub(crate) fn special(model: &str, body: &serde_json::Value) -> Option<Response<MockBody>> {
    if model == "content-filter" {
        return Some(content_filter());
    }
    if !model.ends_with("-tool") {
        return None;
    }
    let name = body["tools"][0]["function"]["name"].as_str().unwrap_or("none").to_owned();
    let arguments = r#"{"city":"Paris"}"#;
    let usage = serde_json::json!({"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17});
    let chunk = |delta: serde_json::Value, finish: Option<&str>| {
        serde_json::json!({"id": "chatcmpl-azure-tool", "object": "chat.completion.chunk", "created": 1_700_000_000,
            "model": model, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    };
    if body["stream"] != true {
        let reply = serde_json::json!({"id": "chatcmpl-azure-tool", "object": "chat.completion", "created": 1_700_000_000,
            "model": model, "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant",
            "content": null, "tool_calls": [{"id": "call_azure_1", "type": "function",
            "function": {"name": name, "arguments": arguments}}]}}], "usage": usage});
        return Some(json_response(MockBody::full(reply.to_string())));
    }
    let mut events = vec![chunk(
        serde_json::json!({"role": "assistant", "content": null, "tool_calls": [{"index": 0, "id": "call_azure_1",
            "type": "function", "function": {"name": name, "arguments": ""}}]}),
        None,
    )];
    for piece in [&arguments[..5], &arguments[5..11], &arguments[11..]] {
        events.push(chunk(
            serde_json::json!({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}),
            None,
        ));
    }
    events.push(chunk(serde_json::json!({}), Some("tool_calls")));
    if body["stream_options"]["include_usage"] == true {
        events.push(serde_json::json!({"id": "chatcmpl-azure-tool", "object": "chat.completion.chunk",
            "created": 1_700_000_000, "model": model, "choices": [], "usage": usage}));
    }
    let mut text: String = events.iter().map(|e| format!("data: {e}\n\n")).collect();
    text.push_str("data: [DONE]\n\n");
    let mut response = Response::new(MockBody::full(text));
    response.headers_mut().insert(hyper::header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    Some(response)
}

/// Azure's answer to a prompt its content filter blocks.
fn content_filter() -> Response<MockBody> {
    error(
        StatusCode::BAD_REQUEST,
        r#"{"error":{"message":"The response was filtered due to the prompt triggering Azure OpenAI's content management policy. Please modify your prompt and retry.","type":null,"param":"prompt","code":"content_filter","status":400,"innererror":{"code":"ResponsibleAIPolicyViolation","content_filter_result":{"hate":{"filtered":false,"severity":"safe"},"self_harm":{"filtered":false,"severity":"safe"},"sexual":{"filtered":false,"severity":"safe"},"violence":{"filtered":true,"severity":"medium"}}}}}"#,
    )
}

fn not_found() -> Response<MockBody> {
    error(StatusCode::NOT_FOUND, r#"{"error":{"code":"404","message":"Resource not found"}}"#)
}

fn error(status: StatusCode, body: &'static str) -> Response<MockBody> {
    let mut response = json_response(MockBody::full(body.as_bytes()));
    *response.status_mut() = status;
    response.headers_mut().insert("apim-request-id", HeaderValue::from_static("mock-apim-request"));
    response
}
