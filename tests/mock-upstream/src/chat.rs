//! `POST /v1/chat/completions`: request parsing, the deterministic reply, the non-streaming
//! `chat.completion` body and the hand-off to the SSE stream.

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
use crate::behavior::{Behavior, bad_request, json_response, status_error};
use crate::body::{MockBody, SseStream, StreamPlan};
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
}

#[derive(Deserialize)]
struct StreamOptions {
    #[serde(default)]
    include_usage: Option<bool>,
}

#[derive(Deserialize)]
struct Message<'a> {
    #[serde(borrow, default)]
    content: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Part<'a> {
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
}

/// Calls `f` with each text piece of a message's `content` (a string or an array of parts).
fn for_each_text<'a>(content: Option<&'a RawValue>, mut f: impl FnMut(&str)) {
    let Some(raw) = content else { return };
    let s = raw.get();
    if s.starts_with('"') {
        if let Ok(text) = serde_json::from_str::<Cow<'a, str>>(s) {
            f(&text);
        }
    } else if s.starts_with('[')
        && let Ok(parts) = serde_json::from_str::<Vec<Part<'a>>>(s)
    {
        parts.iter().filter_map(|p| p.text.as_deref()).for_each(f);
    }
}

pub(crate) fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

pub(crate) async fn handle(shared: &Arc<Shared>, body: &[u8]) -> Response<MockBody> {
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
    let streaming = req.stream == Some(true);
    let include_usage = streaming && req.stream_options.as_ref().and_then(|o| o.include_usage) == Some(true);

    let mut prompt_tokens = 0;
    for m in &req.messages {
        for_each_text(m.content, |t| prompt_tokens += count_words(t));
    }
    let prompt_tokens = prompt_tokens.max(1);

    let reply = match behavior {
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
        _ => {
            let mut r = String::from("mock reply to: ");
            let mut budget = 40usize;
            if let Some(last) = req.messages.last() {
                for_each_text(last.content, |t| {
                    let take = t.char_indices().nth(budget).map_or(t.len(), |(i, _)| i);
                    budget -= t[..take].chars().count();
                    r.push_str(&t[..take]);
                });
            }
            r
        }
    };
    let completion_tokens = count_words(&reply);
    let mut model_json = Vec::with_capacity(model.len() + 2);
    push_str(&mut model_json, model);
    drop(req);

    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
    let created = now_secs();
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
            include_usage,
            continuous_usage: behavior == Behavior::ContinuousUsage,
            delay: match behavior {
                Behavior::Stream { gap, .. } if gap > Duration::ZERO => Some(gap),
                _ => None,
            },
            fail_after: (behavior == Behavior::Midstream).then_some(2),
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
    buf.extend_from_slice(
        b",\"refusal\":null},\"logprobs\":null,\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":",
    );
    push_u64(&mut buf, prompt_tokens);
    buf.extend_from_slice(b",\"completion_tokens\":");
    push_u64(&mut buf, completion_tokens);
    buf.extend_from_slice(b",\"total_tokens\":");
    push_u64(&mut buf, prompt_tokens + completion_tokens);
    buf.extend_from_slice(b"},\"system_fingerprint\":\"fp_mock\"}");
    json_response(MockBody::full(buf))
}
