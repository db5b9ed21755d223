//! The mock's streamed answer: OpenAI `chat.completion.chunk` events, written as an OpenAI
//! server writes them (<https://platform.openai.com/docs/api-reference/chat-streaming>, and for
//! tool calls the streaming section of <https://platform.openai.com/docs/guides/function-calling>),
//! so they go through the same relay and translators as a real upstream's.

use super::tool_call::next_piece;
use super::usage_json;
use bytes::Bytes;
use serde::Serialize;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;
use switchboard_llm::Usage;
use switchboard_llm::hub::ToolCall;
use tokio::time::Sleep;

/// What the mock answers: text, or one tool call (boxed: a stream answering text, the
/// benchmark's, stays as small as before tool calls).
pub(super) enum Answer {
    Text(Arc<str>),
    ToolCall(Box<ToolCall>),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Role,
    Content,
    Finish,
    Usage,
    Done,
    End,
}

/// A streamed mock answer: a first chunk with the role (and, for a tool call, the call's id and
/// name with empty arguments), then one chunk per word of the text or per piece of the call's
/// arguments, paced by `tokens_per_second`, then the finish reason, the usage chunk and
/// `[DONE]`. Dropping it (client gone) simply stops generating.
pub struct MockStream {
    id: String,
    created: i64,
    model: Arc<str>,
    answer: Answer,
    /// Byte offset of the next word (or argument piece) in the answer.
    offset: usize,
    state: State,
    /// Whether chunks carry `"usage": null` (OpenAI's shape when the caller asked for usage).
    usage_fields: bool,
    usage: Usage,
    token_interval: Duration,
    sleep: Option<Pin<Box<Sleep>>>,
}

/// What [`MockStream::new`] needs besides the answer.
pub(super) struct StreamHead {
    pub id: String,
    pub created: i64,
    pub model: Arc<str>,
    /// Chunks carry `"usage": null`, as OpenAI's do when usage was asked for.
    pub usage_fields: bool,
    pub usage: Usage,
    pub token_interval: Duration,
}

#[derive(Serialize)]
struct Chunk<'a> {
    id: &'a str,
    object: &'static str,
    created: i64,
    model: &'a str,
    system_fingerprint: &'static str,
    choices: Vec<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<serde_json::Value>,
}

impl MockStream {
    pub(super) fn new(head: StreamHead, answer: Answer) -> Self {
        MockStream {
            id: head.id,
            created: head.created,
            model: head.model,
            answer,
            offset: 0,
            state: State::Role,
            usage_fields: head.usage_fields,
            usage: head.usage,
            token_interval: head.token_interval,
            sleep: None,
        }
    }

    /// The next SSE event, `None` at the end.
    pub fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        let choice = |delta: serde_json::Value, finish: Option<&str>| {
            vec![serde_json::json!({ "index": 0, "delta": delta, "logprobs": null, "finish_reason": finish })]
        };
        let (choices, usage) = match self.state {
            State::Role => {
                self.state = State::Content;
                let delta = match &self.answer {
                    Answer::Text(_) => serde_json::json!({ "role": "assistant", "content": "" }),
                    // OpenAI announces a call in the first chunk, with the role: its id, type and
                    // name, and empty arguments.
                    Answer::ToolCall(call) => serde_json::json!({
                        "role": "assistant",
                        "content": null,
                        "tool_calls": [{
                            "index": 0,
                            "id": call.id,
                            "type": "function",
                            "function": { "name": call.name, "arguments": "" },
                        }],
                        "refusal": null,
                    }),
                };
                (choice(delta, None), None)
            }
            State::Content => {
                if let Some(sleep) = &mut self.sleep {
                    ready!(sleep.as_mut().poll(cx));
                }
                let delta = match &self.answer {
                    Answer::Text(reply) => {
                        next_word(reply, &mut self.offset).map(|word| serde_json::json!({ "content": word }))
                    }
                    Answer::ToolCall(call) => next_piece(&call.arguments, &mut self.offset).map(|piece| {
                        serde_json::json!({ "tool_calls": [{ "index": 0, "function": { "arguments": piece } }] })
                    }),
                };
                let Some(delta) = delta else {
                    self.state = State::Finish;
                    return self.poll_event(cx);
                };
                if !self.token_interval.is_zero() {
                    let deadline = tokio::time::Instant::now() + self.token_interval;
                    match &mut self.sleep {
                        Some(sleep) => sleep.as_mut().reset(deadline),
                        None => self.sleep = Some(Box::pin(tokio::time::sleep_until(deadline))),
                    }
                }
                (choice(delta, None), None)
            }
            State::Finish => {
                self.state = State::Usage;
                let reason = match self.answer {
                    Answer::Text(_) => "stop",
                    Answer::ToolCall(_) => "tool_calls",
                };
                (choice(serde_json::json!({}), Some(reason)), None)
            }
            State::Usage => {
                self.state = State::Done;
                (Vec::new(), Some(usage_json(self.usage)))
            }
            State::Done => {
                self.state = State::End;
                return Poll::Ready(Some(Bytes::from_static(b"data: [DONE]\n\n")));
            }
            State::End => return Poll::Ready(None),
        };
        let usage = match (self.usage_fields, usage) {
            (true, None) => Some(serde_json::Value::Null),
            (_, usage) => usage,
        };
        let chunk = Chunk {
            id: &self.id,
            object: "chat.completion.chunk",
            created: self.created,
            model: &self.model,
            system_fingerprint: "fp_switchboard_mock",
            choices,
            usage,
        };
        let mut event = b"data: ".to_vec();
        event.extend(serde_json::to_vec(&chunk).unwrap_or_default());
        event.extend_from_slice(b"\n\n");
        Poll::Ready(Some(Bytes::from(event)))
    }
}

/// The next word of `text` from `offset`, with the whitespace that follows it, so the streamed
/// pieces concatenate to exactly the non-streamed reply.
fn next_word<'a>(text: &'a str, offset: &mut usize) -> Option<&'a str> {
    let rest = &text[*offset..];
    if rest.is_empty() {
        return None;
    }
    let word_end = rest.find(char::is_whitespace).unwrap_or(rest.len());
    let end = rest[word_end..].find(|c: char| !c.is_whitespace()).map_or(rest.len(), |i| word_end + i);
    *offset += end;
    Some(&rest[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::task::Waker;

    #[test]
    fn words_concatenate_to_the_reply() {
        let text = "Mock  response to: hi there ";
        let mut offset = 0;
        let mut words = Vec::new();
        while let Some(w) = next_word(text, &mut offset) {
            words.push(w);
        }
        assert_eq!(words, vec!["Mock  ", "response ", "to: ", "hi ", "there "]);
        assert_eq!(words.concat(), text);
    }

    /// Every event's JSON (`[DONE]` as the string), polled to the end.
    fn events(mut stream: MockStream) -> Vec<serde_json::Value> {
        let mut cx = Context::from_waker(Waker::noop());
        let mut events = Vec::new();
        while let Poll::Ready(Some(event)) = stream.poll_event(&mut cx) {
            let text = std::str::from_utf8(&event).unwrap();
            let data = text.strip_prefix("data: ").unwrap().trim_end();
            events.push(serde_json::from_str(data).unwrap_or_else(|_| serde_json::Value::from(data)));
        }
        events
    }

    #[test]
    fn a_tool_call_streams_as_openai_writes_one() {
        let head = StreamHead {
            id: "chatcmpl-mock-7".into(),
            created: 1,
            model: Arc::from("mock"),
            usage_fields: true,
            usage: Usage { input: 3, output: 4, ..Usage::default() },
            token_interval: Duration::ZERO,
        };
        let call = ToolCall {
            id: "call_mock_7".into(),
            name: "get_weather".into(),
            arguments: r#"{"city":"mock"}"#.into(),
        };
        let events = events(MockStream::new(head, Answer::ToolCall(Box::new(call))));
        let deltas: Vec<&serde_json::Value> =
            events.iter().filter_map(|e| e["choices"].get(0).map(|c| &c["delta"])).collect();
        assert_eq!(
            deltas[0]["tool_calls"][0],
            serde_json::json!({"index": 0, "id": "call_mock_7", "type": "function",
                "function": {"name": "get_weather", "arguments": ""}})
        );
        assert_eq!(deltas[0]["role"], "assistant");
        let pieces: Vec<&str> =
            deltas[1..].iter().filter_map(|d| d["tool_calls"][0]["function"]["arguments"].as_str()).collect();
        assert_eq!(pieces, ["{", "\"", "city", "\":\"", "mock", "\"}"]);
        assert!(deltas[1..].iter().all(|d| d["tool_calls"][0].get("id").is_none()), "{deltas:?}");
        let finish = &events[events.len() - 3];
        assert_eq!(finish["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(events[events.len() - 2]["usage"]["completion_tokens"], 4);
        assert_eq!(events[events.len() - 1], "[DONE]");
        assert!(events[..events.len() - 2].iter().all(|e| e["usage"].is_null()), "usage: null on each chunk");
    }
}
