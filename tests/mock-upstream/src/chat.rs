//! `POST /v1/chat/completions`: request parsing, the checks the real API makes that the
//! conformance suite relies on, the deterministic reply, the non-streaming `chat.completion`
//! body and the hand-off to the SSE stream (or to `answers.rs` for the less common answers).
//!
//! The reply echoes what the model was given: `mock reply to: <the last message's text, at most
//! 40 characters>`, then ` [image <media type or URL>]` per image of that message and
//! ` [tool_result <id>: <text>]` per `tool` message of the conversation. With `response_format`
//! it is JSON: `json_schema` gets an object of the schema's shape, `json_object` `{"reply": ..}`.
//!
//! Refused as OpenAI refuses them (400, `invalid_request_error`), from
//! <https://platform.openai.com/docs/api-reference/chat/create> and the API's answers:
//! a `tool` message that answers no tool call of the assistant message before it; an assistant
//! message with `tool_calls` not followed by a `tool` message for each; an `image_url` whose
//! `url` is neither `http(s)` nor a base64 `data:image/...` URL; `response_format: json_object`
//! without the word "json" in the messages.

use std::borrow::Cow;
use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hyper::Response;
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::Shared;
use crate::answers::{self, Answer};
use crate::behavior::{Behavior, bad_request, invalid, json_response, status_error};
use crate::body::{MockBody, SseStream, StreamPlan, push_usage};
use crate::fault::StreamShape;
use crate::json::{count_words, push_str, push_u64};

#[derive(Deserialize)]
struct ChatRequest<'a> {
    #[serde(borrow, default)]
    model: Option<Cow<'a, str>>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    stream_options: Option<StreamOptions>,
    #[serde(borrow, default)]
    messages: Vec<Message<'a>>,
    /// Kept raw: only requests that set them pay for reading them.
    #[serde(borrow, default)]
    response_format: Option<&'a RawValue>,
    #[serde(borrow, default)]
    tools: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct StreamOptions {
    #[serde(default)]
    include_usage: Option<bool>,
}

#[derive(Deserialize)]
struct Message<'a> {
    #[serde(borrow, default)]
    role: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    content: Option<&'a RawValue>,
    #[serde(borrow, default)]
    tool_call_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    tool_calls: Option<Vec<CallId<'a>>>,
}

#[derive(Deserialize)]
struct CallId<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
}

#[derive(Deserialize)]
struct Part<'a> {
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    image_url: Option<ImageUrl<'a>>,
}

#[derive(Deserialize)]
struct ImageUrl<'a> {
    #[serde(borrow)]
    url: Cow<'a, str>,
}

#[derive(Deserialize)]
struct ResponseFormat {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    json_schema: Option<JsonSchema>,
}

#[derive(Deserialize)]
struct JsonSchema {
    #[serde(default)]
    schema: serde_json::Value,
}

/// One piece of a message's content.
enum Piece<'p> {
    Text(&'p str),
    /// An `image_url` part's URL, with the part's index.
    Image(usize, &'p str),
}

/// Calls `f` with each piece of a message's `content` (a string or an array of parts).
fn for_each_piece<'a>(content: Option<&'a RawValue>, mut f: impl FnMut(Piece<'_>)) {
    let Some(raw) = content else { return };
    let s = raw.get();
    if s.starts_with('"') {
        if let Ok(text) = serde_json::from_str::<Cow<'a, str>>(s) {
            f(Piece::Text(&text));
        }
    } else if s.starts_with('[')
        && let Ok(parts) = serde_json::from_str::<Vec<Part<'a>>>(s)
    {
        for (i, part) in parts.iter().enumerate() {
            if let Some(text) = &part.text {
                f(Piece::Text(text));
            }
            if let Some(image) = &part.image_url {
                f(Piece::Image(i, &image.url));
            }
        }
    }
}

/// What OpenAI says of an `image_url` it cannot use, if `url` is one.
fn image_refusal(url: &str) -> Option<String> {
    const EXPECTED: &str = "Expected a base64-encoded data URL with an image MIME type (e.g. 'data:image/png;base64,aW1nIGJ5dGVzIGhlcmU='), but got";
    if url.starts_with("https://") || url.starts_with("http://") {
        return None;
    }
    let Some(data) = url.strip_prefix("data:") else {
        return Some(format!("{EXPECTED} a value without the 'data:' prefix."));
    };
    match data.split_once(";base64,") {
        Some((mime, _)) if mime.starts_with("image/") => None,
        Some((mime, _)) => Some(format!("{EXPECTED} unsupported MIME type '{mime}'.")),
        None => Some(format!("{EXPECTED} a value that is not base64-encoded.")),
    }
}

/// The tool-call pairing OpenAI enforces: every `tool` message answers a call of the assistant
/// message before it (other `tool` messages may come between), and every call is answered
/// before the conversation goes on.
fn check_tool_pairing(messages: &[Message<'_>]) -> Result<(), Box<Response<MockBody>>> {
    // The assistant message whose calls are being answered, and the ids still unanswered.
    let mut open: Option<usize> = None;
    let mut pending: Vec<&str> = Vec::new();
    let unanswered = |at: usize, pending: &[&str]| {
        invalid(
            &format!(
                "An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. The following tool_call_ids did not have response messages: {}",
                pending.join(", ")
            ),
            &format!("messages.[{at}].role"),
        )
    };
    for (i, m) in messages.iter().enumerate() {
        let role = m.role.as_deref().unwrap_or_default();
        if role == "tool" {
            let id = m.tool_call_id.as_deref().unwrap_or_default();
            if open.is_none() {
                return Err(invalid(
                    "Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'.",
                    &format!("messages.[{i}].role"),
                ));
            }
            let Some(at) = pending.iter().position(|p| *p == id) else {
                return Err(invalid(
                    &format!(
                        "Invalid parameter: 'tool_call_id' of '{id}' not found in 'tool_calls' of previous message."
                    ),
                    &format!("messages.[{i}].tool_call_id"),
                ));
            };
            pending.swap_remove(at);
            continue;
        }
        if let Some(at) = open.take()
            && !pending.is_empty()
        {
            return Err(unanswered(at, &pending));
        }
        if role == "assistant"
            && let Some(calls) = m.tool_calls.as_deref()
            && !calls.is_empty()
        {
            open = Some(i);
            pending = calls.iter().map(|c| c.id.as_ref()).collect();
        }
    }
    match open {
        Some(at) if !pending.is_empty() => Err(unanswered(at, &pending)),
        _ => Ok(()),
    }
}

pub(crate) fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// `shape`: how an injected fault bends a stream (ignored by plain answers).
pub(crate) async fn handle(shared: &Arc<Shared>, body: &[u8], shape: StreamShape) -> Response<MockBody> {
    let req: ChatRequest<'_> = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(e) => {
            let msg = format!("We could not parse the JSON body of your request: {e}");
            return bad_request(&msg);
        }
    };
    let Some(model) = req.model.as_deref() else {
        return bad_request("you must provide a model parameter");
    };
    let behavior = Behavior::from_model(model);
    if let Behavior::Error(status) = behavior {
        return status_error(status);
    }
    if let Err(refusal) = check_tool_pairing(&req.messages) {
        return *refusal;
    }
    let streaming = req.stream == Some(true);
    let include_usage = streaming && req.stream_options.as_ref().and_then(|o| o.include_usage) == Some(true);

    let mut prompt_tokens = 0;
    let mut refusal = None;
    for (i, m) in req.messages.iter().enumerate() {
        for_each_piece(m.content, |piece| match piece {
            Piece::Text(t) => prompt_tokens += count_words(t),
            Piece::Image(j, url) => {
                if refusal.is_none()
                    && let Some(why) = image_refusal(url)
                {
                    let param = format!("messages.[{i}].content.[{j}].image_url.url");
                    refusal = Some(invalid(&format!("Invalid '{param}'. {why}"), &param));
                }
            }
        });
    }
    if let Some(refusal) = refusal {
        return *refusal;
    }
    let prompt_tokens = prompt_tokens.max(1);
    let cached_tokens = (behavior == Behavior::Cache).then(|| prompt_tokens.div_ceil(2));

    let mut reply = match behavior {
        Behavior::Stream { words, .. } => {
            let mut r = String::with_capacity(words as usize * 7);
            for i in 1..=words {
                if i > 1 {
                    r.push(' ');
                }
                // Writing to a String cannot fail.
                let _ = write!(r, "tok{i}");
            }
            r
        }
        _ => echo(&req.messages),
    };
    if let Some(format) = req.response_format {
        match json_reply(format, &req.messages, &reply) {
            Ok(Some(json)) => reply = json,
            Ok(None) => {}
            Err(refusal) => return *refusal,
        }
    }
    let completion_tokens = count_words(&reply);
    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
    let created = now_secs();
    let answer = |reply| Answer { id, created, model, reply, prompt_tokens, include_usage, streaming };
    match behavior {
        Behavior::Tool | Behavior::ParallelTools => {
            if let Some(tools) = req.tools
                && let Some(response) =
                    answers::tool_calls(&answer(String::new()), tools, behavior == Behavior::ParallelTools)
            {
                return response;
            }
        }
        Behavior::Malformed => return answers::malformed(&answer(reply)),
        Behavior::Disconnect => return answers::disconnect(&answer(reply)),
        _ => {}
    }
    let mut model_json = Vec::with_capacity(model.len() + 2);
    push_str(&mut model_json, model);
    drop(req);

    match behavior {
        Behavior::Slow(d) => tokio::time::sleep(d).await,
        Behavior::Stream { words, gap } if !streaming => {
            tokio::time::sleep(gap.saturating_mul(words)).await;
        }
        _ => {}
    }

    if streaming {
        let plan = StreamPlan {
            id,
            created,
            model_json,
            reply,
            prompt_tokens,
            completion_tokens,
            cached_tokens,
            include_usage,
            continuous_usage: behavior == Behavior::ContinuousUsage,
            delay: match behavior {
                Behavior::Stream { gap, .. } if gap > Duration::ZERO => Some(gap),
                _ => None,
            },
            fail_after: (behavior == Behavior::Midstream).then_some(2),
            cut_after: shape.cut_after,
            first_delay: shape.first_delay,
        };
        let mut resp = Response::new(MockBody::Sse(Box::new(SseStream::new(Arc::clone(shared), plan))));
        let h = resp.headers_mut();
        h.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
        h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        return resp;
    }

    let mut buf = Vec::with_capacity(320 + model_json.len() + reply.len());
    buf.extend_from_slice(b"{\"id\":\"chatcmpl-mock-");
    push_u64(&mut buf, id);
    buf.extend_from_slice(b"\",\"object\":\"chat.completion\",\"created\":");
    push_u64(&mut buf, created);
    buf.extend_from_slice(b",\"model\":");
    buf.extend_from_slice(&model_json);
    buf.extend_from_slice(b",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":");
    push_str(&mut buf, &reply);
    buf.extend_from_slice(b",\"refusal\":null},\"logprobs\":null,\"finish_reason\":\"stop\"}],\"usage\":");
    push_usage(&mut buf, prompt_tokens, completion_tokens, cached_tokens);
    buf.extend_from_slice(b",\"system_fingerprint\":\"fp_mock\"}");
    json_response(MockBody::full(buf))
}

/// `mock reply to: ` and what the model was given (see the module docs).
fn echo(messages: &[Message<'_>]) -> String {
    let mut r = String::from("mock reply to: ");
    let mut budget = 40usize;
    if let Some(last) = messages.last() {
        let mut images = String::new();
        for_each_piece(last.content, |piece| match piece {
            Piece::Text(t) => {
                let take = t.char_indices().nth(budget).map_or(t.len(), |(i, _)| i);
                budget -= t[..take].chars().count();
                r.push_str(&t[..take]);
            }
            Piece::Image(_, url) => {
                let shown =
                    url.strip_prefix("data:").and_then(|d| d.split_once(';')).map_or(url, |(mime, _)| mime);
                let _ = write!(images, " [image {shown}]");
            }
        });
        r.push_str(&images);
    }
    for m in messages.iter().filter(|m| m.role.as_deref() == Some("tool")) {
        let _ = write!(r, " [tool_result {}:", m.tool_call_id.as_deref().unwrap_or_default());
        for_each_piece(m.content, |piece| {
            if let Piece::Text(t) = piece {
                let _ = write!(r, " {t}");
            }
        });
        r.push(']');
    }
    r
}

/// The reply `response_format` asks for: `Ok(None)` for plain text, or OpenAI's refusal of a
/// `json_object` request whose messages never say "json".
fn json_reply(
    format: &RawValue,
    messages: &[Message<'_>],
    reply: &str,
) -> Result<Option<String>, Box<Response<MockBody>>> {
    let format: ResponseFormat = serde_json::from_str(format.get())
        .map_err(|e| invalid(&format!("Invalid 'response_format': {e}"), "response_format"))?;
    match format.kind.as_str() {
        "json_schema" => {
            let schema = format.json_schema.map(|s| s.schema).unwrap_or_default();
            Ok(Some(answers::sample(&schema, "value").to_string()))
        }
        "json_object" => {
            let mut says_json = false;
            for m in messages {
                for_each_piece(m.content, |piece| {
                    if let Piece::Text(t) = piece {
                        says_json |= t.to_ascii_lowercase().contains("json");
                    }
                });
            }
            if !says_json {
                return Err(invalid(
                    "'messages' must contain the word 'json' in some form, to use 'response_format' of type 'json_object'.",
                    "messages",
                ));
            }
            Ok(Some(serde_json::json!({ "reply": reply }).to_string()))
        }
        _ => Ok(None),
    }
}
