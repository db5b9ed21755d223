//! Hub stream events rendered as Responses API streaming events.
//!
//! Reference: <https://platform.openai.com/docs/api-reference/responses-streaming> and the
//! streaming guide, <https://platform.openai.com/docs/guides/streaming-responses>. The order:
//! `response.created`, `response.in_progress`; per output item `response.output_item.added`,
//! its content (for a message `response.content_part.added`, `response.output_text.delta`s,
//! `response.output_text.done`, `response.content_part.done`; for a function call
//! `response.function_call_arguments.delta`s and `.done`), `response.output_item.done`; last
//! `response.completed` (or `response.incomplete`) with the whole response object. Every event
//! carries `type` and a `sequence_number` counting from 0, and is framed
//! `event: <type>\ndata: <json>\n\n`.
//!
//! An item is finished when the next one begins or the answer finishes: providers send a call's
//! arguments before the next call starts. The completion waits for [`ClientRenderer::end`],
//! since usage may arrive after the finish reason.

use super::response::{
    Rendered, ResponseContext, failed, finished, function_call_item, message_item, output_text,
    response_object,
};
use crate::Usage;
use crate::hub::{FinishReason, StreamError, StreamEvent, ToolCall};
use crate::stream::{ClientRenderer, StreamFailure};
use bytes::{Bytes, BytesMut};
use serde_json::{Value, json};

/// Renders one response's hub stream for a Responses client, and keeps the finished response
/// for the conversation store ([`ResponsesRenderer::finished`]; or, once the renderer is boxed
/// into the relay, handed to [`ResponsesRenderer::on_finished`]'s hook).
pub struct ResponsesRenderer {
    ctx: ResponseContext,
    sequence: u64,
    /// `response.created` and `response.in_progress` were sent.
    started: bool,
    /// A terminal event was sent: nothing more may follow.
    closed: bool,
    /// Finished output items, in order.
    output: Vec<Value>,
    open: Option<OpenItem>,
    finish: Option<FinishReason>,
    usage: Usage,
    result: Option<Rendered>,
    on_finished: Option<FinishedHook>,
}

/// Called once with the finished response.
pub(super) type FinishedHook = Box<dyn FnOnce(&Rendered) + Send>;

impl std::fmt::Debug for ResponsesRenderer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponsesRenderer")
            .field("id", &self.ctx.id)
            .field("sequence", &self.sequence)
            .field("closed", &self.closed)
            .field("output_items", &self.output.len())
            .field("finish", &self.finish)
            .field("usage", &self.usage)
            .finish_non_exhaustive()
    }
}

/// The output item being streamed.
#[derive(Debug)]
enum OpenItem {
    Message {
        id: String,
        text: String,
    },
    /// `index` is the hub's numbering of the answer's calls.
    Call {
        id: String,
        index: u32,
        call: ToolCall,
    },
}

impl ResponsesRenderer {
    pub fn new(ctx: ResponseContext) -> Self {
        ResponsesRenderer {
            ctx,
            sequence: 0,
            started: false,
            closed: false,
            output: Vec::new(),
            open: None,
            finish: None,
            usage: Usage::default(),
            result: None,
            on_finished: None,
        }
    }

    /// Calls `hook` once, with the finished response (completed, incomplete or failed), when
    /// the stream ends: how the gateway stores a streamed response, since the relay owns the
    /// renderer by then.
    pub fn on_finished(mut self, hook: impl FnOnce(&Rendered) + Send + 'static) -> Self {
        self.on_finished = Some(Box::new(hook));
        self
    }

    /// The finished response (completed, incomplete or failed), once the stream has ended.
    pub fn finished(&self) -> Option<&Rendered> {
        self.result.as_ref()
    }

    /// Takes the finished response out, once the stream has ended.
    pub fn take_finished(&mut self) -> Option<Rendered> {
        self.result.take()
    }

    /// One event: `fields` gets `type` and the next sequence number.
    fn emit(&mut self, kind: &str, mut fields: Value, out: &mut Vec<Bytes>) {
        fields["type"] = Value::from(kind);
        fields["sequence_number"] = Value::from(self.sequence);
        self.sequence += 1;
        let data = fields.to_string();
        let mut event = BytesMut::with_capacity(kind.len() + data.len() + 16);
        event.extend_from_slice(b"event: ");
        event.extend_from_slice(kind.as_bytes());
        event.extend_from_slice(b"\ndata: ");
        event.extend_from_slice(data.as_bytes());
        event.extend_from_slice(b"\n\n");
        out.push(event.freeze());
    }

    /// `response.created` and `response.in_progress`, before anything else.
    fn start(&mut self, out: &mut Vec<Bytes>) {
        if self.started {
            return;
        }
        self.started = true;
        let response = response_object(&self.ctx, "in_progress", &[]);
        self.emit("response.created", json!({"response": response}), out);
        self.emit("response.in_progress", json!({"response": response}), out);
    }

    fn text(&mut self, delta: &str, out: &mut Vec<Bytes>) {
        if delta.is_empty() {
            return;
        }
        if !matches!(self.open, Some(OpenItem::Message { .. })) {
            // Text after a call begins a new message item.
            self.close_item("completed", out);
            self.open_message(out);
        }
        let output_index = self.output.len();
        let Some(OpenItem::Message { id, text }) = &mut self.open else { return };
        text.push_str(delta);
        let id = id.clone();
        self.emit(
            "response.output_text.delta",
            json!({"item_id": id, "output_index": output_index, "content_index": 0, "delta": delta, "logprobs": []}),
            out,
        );
    }

    /// A message item and its one text part begin.
    fn open_message(&mut self, out: &mut Vec<Bytes>) {
        let output_index = self.output.len();
        let id = self.ctx.item_id("msg", output_index);
        let mut item = message_item(&id, "", "in_progress");
        item["content"] = json!([]);
        self.emit("response.output_item.added", json!({"output_index": output_index, "item": item}), out);
        self.emit(
            "response.content_part.added",
            json!({"item_id": id, "output_index": output_index, "content_index": 0, "part": output_text("")}),
            out,
        );
        self.open = Some(OpenItem::Message { id, text: String::new() });
    }

    fn call_start(&mut self, index: u32, call_id: &str, name: &str, out: &mut Vec<Bytes>) {
        self.close_item("completed", out);
        let output_index = self.output.len();
        let id = self.ctx.item_id("fc", output_index);
        let call = ToolCall { id: call_id.to_owned(), name: name.to_owned(), arguments: String::new() };
        let item = function_call_item(&id, &call, "in_progress");
        self.emit("response.output_item.added", json!({"output_index": output_index, "item": item}), out);
        self.open = Some(OpenItem::Call { id, index, call });
    }

    fn call_arguments(&mut self, index: u32, fragment: &str, out: &mut Vec<Bytes>) {
        if fragment.is_empty() {
            return;
        }
        let output_index = self.output.len();
        let Some(OpenItem::Call { id, index: open_index, call }) = &mut self.open else {
            let message = "the provider sent tool-call arguments outside a tool call";
            return self.error(INVALID_UPSTREAM, "server_error", message, out);
        };
        if *open_index != index {
            // Events of one item cannot follow the next item's: the client has closed it.
            let message = "the provider interleaved the arguments of two tool calls";
            return self.error(INVALID_UPSTREAM, "server_error", message, out);
        }
        call.arguments.push_str(fragment);
        let id = id.clone();
        self.emit(
            "response.function_call_arguments.delta",
            json!({"item_id": id, "output_index": output_index, "delta": fragment}),
            out,
        );
    }

    /// Finishes the open item, if any, with `status`.
    fn close_item(&mut self, status: &str, out: &mut Vec<Bytes>) {
        let output_index = self.output.len();
        let item = match self.open.take() {
            None => return,
            Some(OpenItem::Message { id, text }) => {
                let at = json!({"item_id": id, "output_index": output_index, "content_index": 0});
                let mut done = at.clone();
                done["text"] = Value::from(text.as_str());
                done["logprobs"] = json!([]);
                self.emit("response.output_text.done", done, out);
                let mut part = at;
                part["part"] = output_text(&text);
                self.emit("response.content_part.done", part, out);
                message_item(&id, &text, status)
            }
            Some(OpenItem::Call { id, call, .. }) => {
                self.emit(
                    "response.function_call_arguments.done",
                    json!({"item_id": id, "output_index": output_index, "name": call.name, "arguments": call.arguments}),
                    out,
                );
                function_call_item(&id, &call, status)
            }
        };
        self.emit("response.output_item.done", json!({"output_index": output_index, "item": item}), out);
        self.output.push(item);
    }

    /// An `error` event with `event_code`, then `response.failed` with what was produced so
    /// far and `response_code`, one of the object's error codes; nothing after.
    fn error(&mut self, event_code: &str, response_code: &str, message: &str, out: &mut Vec<Bytes>) {
        self.start(out);
        self.closed = true;
        self.emit("error", json!({"code": event_code, "message": message, "param": null}), out);
        let mut output = std::mem::take(&mut self.output);
        // An item still open was cut off.
        match self.open.take() {
            Some(OpenItem::Message { id, text }) => output.push(message_item(&id, &text, "incomplete")),
            Some(OpenItem::Call { id, call, .. }) => {
                output.push(function_call_item(&id, &call, "incomplete"))
            }
            None => {}
        }
        let result =
            failed(&self.ctx, output, &self.usage, json!({"code": response_code, "message": message}));
        self.emit("response.failed", json!({"response": result.response}), out);
        self.keep(result);
    }

    fn keep(&mut self, result: Rendered) {
        if let Some(hook) = self.on_finished.take() {
            hook(&result);
        }
        self.result = Some(result);
    }

    fn provider_error(&mut self, error: &StreamError, out: &mut Vec<Bytes>) {
        let message = format!("the provider reported an error: {}", error.message);
        // The event says what the provider said; the object's code is one of its own.
        self.error(&error.kind, response_error_code(&error.kind), &message, out);
    }
}

/// The `error` event's code for a provider stream that broke the hub's rules.
const INVALID_UPSTREAM: &str = "invalid_upstream_event";

/// The response object's error code for a provider's error type: the object allows only its own
/// codes, and of those only two describe a provider's failure.
fn response_error_code(kind: &str) -> &'static str {
    let kind = kind.to_ascii_lowercase();
    if kind.contains("rate_limit") || kind.contains("resource_exhausted") || kind.contains("throttl") {
        "rate_limit_exceeded"
    } else {
        "server_error"
    }
}

impl ClientRenderer for ResponsesRenderer {
    fn render(&mut self, event: &StreamEvent, out: &mut Vec<Bytes>) {
        if self.closed {
            return;
        }
        self.start(out);
        match event {
            // The client sees the gateway's id and the model name it asked for.
            StreamEvent::Start { .. } => {}
            StreamEvent::Text(text) => self.text(text, out),
            StreamEvent::ToolCallStart { index, id, name } => self.call_start(*index, id, name, out),
            StreamEvent::ToolCallArguments { index, fragment } => self.call_arguments(*index, fragment, out),
            StreamEvent::Finish(reason) => {
                let cut = matches!(reason, FinishReason::Length | FinishReason::ContentFilter);
                self.close_item(if cut { "incomplete" } else { "completed" }, out);
                self.finish = Some(*reason);
            }
            StreamEvent::Usage(usage) => self.usage = *usage,
            StreamEvent::Error(error) => self.provider_error(error, out),
        }
    }

    /// `response.completed` (or `response.incomplete`) with the whole response.
    fn end(&mut self, out: &mut Vec<Bytes>) {
        if self.closed {
            return;
        }
        self.start(out);
        self.close_item("completed", out);
        if self.output.is_empty() {
            // An answer with neither text nor calls is still one (empty) message, as the
            // whole-answer rendering has it.
            let cut = matches!(self.finish, Some(FinishReason::Length | FinishReason::ContentFilter));
            self.open_message(out);
            self.close_item(if cut { "incomplete" } else { "completed" }, out);
        }
        self.closed = true;
        let result = finished(&self.ctx, std::mem::take(&mut self.output), self.finish, &self.usage);
        let kind = match result.status {
            super::ResponseStatus::Incomplete => "response.incomplete",
            _ => "response.completed",
        };
        self.emit(kind, json!({"response": result.response}), out);
        self.keep(result);
    }

    fn fail(&mut self, failure: StreamFailure, out: &mut Vec<Bytes>) {
        if !self.closed {
            self.error("upstream_stream_error", "server_error", failure.message(), out);
        }
    }
}
