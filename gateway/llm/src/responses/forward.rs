//! A Responses API answer from a backend that speaks the API itself, forwarded to the client as
//! it is: read only for its usage and for the finished response object the conversation store
//! keeps (<https://platform.openai.com/docs/api-reference/responses/object>,
//! <https://platform.openai.com/docs/api-reference/responses-streaming>).

use super::response::{Rendered, ResponseStatus};
use super::stream::FinishedHook;
use crate::Usage;
use crate::sse::event_data;
use crate::stream::{StreamFailure, StreamTranslator};
use bytes::Bytes;
use serde_json::{Value, json};

/// A whole answer: the response object as the backend wrote it, and its usage.
pub fn read_answer(body: &[u8]) -> Result<(Rendered, Usage), String> {
    let response: Value = serde_json::from_slice(body).map_err(|err| format!("not JSON: {err}"))?;
    finished(response)
}

/// The finished object (`response.completed`, `.incomplete`, `.failed`, or a whole answer).
fn finished(response: Value) -> Result<(Rendered, Usage), String> {
    if response.get("object").and_then(Value::as_str) != Some("response") {
        return Err("not a response object".into());
    }
    let status = match response.get("status").and_then(Value::as_str) {
        Some("completed") => ResponseStatus::Completed,
        Some("incomplete") => ResponseStatus::Incomplete,
        _ => ResponseStatus::Failed,
    };
    let usage = read_usage(response.get("usage"));
    let output = response.get("output").and_then(Value::as_array).cloned().unwrap_or_default();
    Ok((Rendered { status, response, output }, usage))
}

/// The Responses API's `usage` in the one usage model (`input_tokens` counts cached ones too,
/// `output_tokens` reasoning ones, as OpenAI's chat usage does).
fn read_usage(usage: Option<&Value>) -> Usage {
    let Some(usage) = usage else { return Usage::default() };
    let count = |path: &[&str]| {
        path.iter().try_fold(usage, |value, key| value.get(key)).and_then(Value::as_u64).unwrap_or(0)
    };
    Usage {
        input: count(&["input_tokens"]),
        output: count(&["output_tokens"]),
        cache_read: count(&["input_tokens_details", "cached_tokens"]),
        reasoning: count(&["output_tokens_details", "reasoning_tokens"]),
        ..Usage::default()
    }
}

/// The terminal events, whose `response` is the finished object.
const TERMINAL: [&[u8]; 3] =
    [b"event: response.completed", b"event: response.incomplete", b"event: response.failed"];

/// A Responses stream relayed byte for byte; the terminal event's response is read (usage, and
/// the object handed to `on_finished` for the store). A stream that breaks off or ends without
/// a terminal event gets an `error` event numbered after the last one relayed.
pub struct ForwardedResponses {
    on_finished: Option<FinishedHook>,
    usage: Usage,
    /// Events relayed: the next `sequence_number` (the API numbers them from 0).
    relayed: u64,
    done: bool,
}

impl ForwardedResponses {
    pub fn new(on_finished: impl FnOnce(&Rendered) + Send + 'static) -> Self {
        ForwardedResponses {
            on_finished: Some(Box::new(on_finished)),
            usage: Usage::default(),
            relayed: 0,
            done: false,
        }
    }

    fn error_event(&self, message: &str) -> Bytes {
        let event = json!({
            "type": "error", "code": "upstream_stream_error", "message": message, "param": null,
            "sequence_number": self.relayed,
        });
        Bytes::from(format!("event: error\ndata: {event}\n\n"))
    }
}

impl StreamTranslator for ForwardedResponses {
    fn event(&mut self, frame: Bytes, out: &mut Vec<Bytes>) {
        if self.done {
            return;
        }
        let start = frame.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(0);
        if TERMINAL.iter().any(|name| frame[start..].starts_with(name)) {
            self.done = true;
            let object = event_data(&frame)
                .and_then(|data| serde_json::from_slice::<Value>(&data).ok())
                .and_then(|mut event| event.get_mut("response").map(Value::take));
            if let Some(Ok((rendered, usage))) = object.map(finished) {
                self.usage = usage;
                if let Some(hook) = self.on_finished.take() {
                    hook(&rendered);
                }
            }
        }
        if event_data(&frame).is_some() {
            self.relayed += 1;
        }
        out.push(frame);
    }

    fn end(&mut self, out: &mut Vec<Bytes>) {
        if !self.done {
            self.done = true;
            out.push(self.error_event("the upstream stream ended before the response was finished"));
        }
    }

    fn fail(&mut self, failure: StreamFailure, out: &mut Vec<Bytes>) {
        if !self.done {
            self.done = true;
            out.push(self.error_event(failure.message()));
        }
    }

    fn usage(&self) -> Usage {
        self.usage
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, OnceLock};

    /// The response object's shape and a stream's terminal event, from the API reference
    /// (<https://platform.openai.com/docs/api-reference/responses/object>), shortened.
    const DONE: &str = r#"{"id":"resp_1","object":"response","status":"completed","output":[{"type":"message","id":"msg_1","status":"completed","role":"assistant","content":[{"type":"output_text","text":"Hi","annotations":[]}]}],"usage":{"input_tokens":36,"input_tokens_details":{"cached_tokens":4},"output_tokens":87,"output_tokens_details":{"reasoning_tokens":5},"total_tokens":123}}"#;

    #[test]
    fn a_whole_answer_is_read_for_its_usage_and_output() {
        let (rendered, usage) = read_answer(DONE.as_bytes()).unwrap();
        assert_eq!(rendered.status, ResponseStatus::Completed);
        assert_eq!(rendered.output.len(), 1);
        assert_eq!(usage, Usage { input: 36, output: 87, cache_read: 4, reasoning: 5, ..Usage::default() });
        assert!(read_answer(b"{\"object\":\"chat.completion\"}").is_err());
    }

    #[test]
    fn a_stream_is_relayed_as_it_is_and_its_last_object_kept() {
        let kept = Arc::new(OnceLock::new());
        let slot = kept.clone();
        let mut relay = ForwardedResponses::new(move |rendered| {
            let _ = slot.set(rendered.clone());
        });
        let events = [
            "event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0}\n\n".to_owned(),
            "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"delta\":\"Hi\",\"sequence_number\":1}\n\n".to_owned(),
            format!("event: response.completed\ndata: {{\"type\":\"response.completed\",\"sequence_number\":2,\"response\":{DONE}}}\n\n"),
        ];
        let mut out = Vec::new();
        for event in &events {
            relay.event(Bytes::from(event.clone()), &mut out);
        }
        relay.end(&mut out);
        assert_eq!(out.iter().map(|b| String::from_utf8_lossy(b).into_owned()).collect::<Vec<_>>(), events);
        assert_eq!(relay.usage().output, 87);
        assert_eq!(kept.get().map(|r| r.response["id"].clone()), Some(Value::from("resp_1")));
    }

    #[test]
    fn a_stream_without_its_terminal_event_ends_with_an_error_numbered_next() {
        let mut relay = ForwardedResponses::new(|_| {});
        let mut out = Vec::new();
        relay.event(
            Bytes::from_static(b"event: response.created\ndata: {\"sequence_number\":0}\n\n"),
            &mut out,
        );
        relay.fail(StreamFailure::BrokenOff, &mut out);
        let error = String::from_utf8_lossy(&out[1]).into_owned();
        assert!(error.starts_with("event: error\n") && error.contains("\"sequence_number\":1"), "{error}");
        relay.end(&mut out);
        assert_eq!(out.len(), 2, "one error");
    }
}
