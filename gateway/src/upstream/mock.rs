//! The built-in `mock` provider: a product feature, not a test double.
//!
//! It answers chat and embeddings requests in OpenAI's format without any network: replies are
//! deterministic (a fixed `reply`, or derived from the last message), latency and streaming pace
//! are configurable, and usage is reported like a real provider's. Demos, CI pipelines and load
//! tests use it; the README's first command serves it.
//!
//! Offered tools, it calls one (`tool_call.rs` has the rules): the forced tool or the first, with
//! arguments built from the tool's JSON Schema, and after the tool's result it answers text
//! derived from that result, so a client's tool loop runs one round trip. OpenAI chat requests
//! without tools take a fast path that reads only the messages' text (the benchmark's path);
//! those with tools, and every request of another API, are read into the hub and answered
//! through the client's renderer. Either way a stream is OpenAI chunks (`stream.rs`) read by the
//! same relay and translators as a real upstream's.

mod stream;
mod tool_call;

pub use stream::MockStream;

use super::embeddings::EmbeddingsRequest;
use super::{Call, Provider, Reply};
use crate::body::{Source, SseRelay};
use crate::error::UpstreamError;
use crate::inbound::{Api, Inbound};
use bytes::Bytes;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;
use stream::{Answer, StreamHead};
use switchboard_config::MockProviderConfig;
use switchboard_llm::hub::{ChatRequest, ChatResponse, FinishReason, Part, ResponseFormat};
use switchboard_llm::openai::{ModelRequest, OpenAiStream, RequestError, messages_text};
use switchboard_llm::stream::{HubTranslator, OpenAiPassthrough};
use switchboard_llm::{RawObject, Usage};

pub struct MockProvider {
    name: Arc<str>,
    latency: Duration,
    /// Pause between streamed tokens; zero streams as fast as the client reads.
    token_interval: Duration,
    reply: Option<Arc<str>>,
    embedding_dimensions: u32,
}

/// Numbers the mock's answers: `chatcmpl-mock-<n>`, and `call_mock_<n>` for a tool call.
static RESPONSE_IDS: AtomicU64 = AtomicU64::new(1);

/// The relay's stall limit for mock streams: they never stall, but the relay needs a bound
/// (an hour, far above any `tokens_per_second` pace).
const MOCK_IDLE_TIMEOUT: Duration = Duration::from_secs(3600);

impl MockProvider {
    pub fn compile(config: &MockProviderConfig) -> Self {
        MockProvider {
            name: Arc::from(config.name.as_str()),
            latency: Duration::from_millis(config.latency_ms),
            token_interval: match config.tokens_per_second {
                0 => Duration::ZERO,
                tps => Duration::from_secs(1) / tps,
            },
            reply: config.reply.as_deref().map(Arc::from),
            embedding_dimensions: config.embedding_dimensions,
        }
    }

    fn bad_request(&self, err: RequestError) -> UpstreamError {
        UpstreamError::bad_request(&self.name, err)
    }

    /// An OpenAI chat request without tools: only the messages' text is read.
    fn chat(&self, request: &ModelRequest<'_>, model: &str) -> Result<Reply, UpstreamError> {
        check_chat(&request.body).map_err(|e| self.bad_request(e))?;
        let text = messages_text(&request.body).map_err(|e| self.bad_request(e))?;
        let reply = self.reply_to(&text.last);
        let usage =
            Usage { input: text.words, output: reply.split_whitespace().count() as u64, ..Usage::default() };
        let id = format!("chatcmpl-mock-{}", RESPONSE_IDS.fetch_add(1, Relaxed));
        let created = crate::unix_now();
        if request.stream {
            // Emitted as an OpenAI upstream would stream it (usage chunk included, as the gateway
            // asks every upstream), through the same relay and translator as a real one.
            let head = self.stream_head(id, created, model, request.include_usage, usage);
            let stream = MockStream::new(head, Answer::Text(reply));
            let translator = Box::new(OpenAiPassthrough::new(!request.include_usage));
            return Ok(Reply::Stream(SseRelay::new(Source::Mock(stream), translator, MOCK_IDLE_TIMEOUT)));
        }
        let body = serde_json::json!({
            "id": id,
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": [{
                "index": 0,
                "message": { "role": "assistant", "content": &*reply, "refusal": null },
                "logprobs": null,
                "finish_reason": "stop",
            }],
            "usage": usage_json(usage),
            "system_fingerprint": "fp_switchboard_mock",
        });
        Ok(Reply::Full { body: Bytes::from(body.to_string()), usage })
    }

    /// A request read into the hub (another API's, or an OpenAI chat request with tools):
    /// answered with a tool call or text, and rendered in the client's API (a stream is the
    /// same OpenAI chunks, read back by the OpenAI stream parser).
    fn chat_via_hub(&self, hub: &ChatRequest, call: &Call<'_>) -> Result<Reply, RequestError> {
        let number = RESPONSE_IDS.fetch_add(1, Relaxed);
        let answer = match tool_call::planned(hub, number)? {
            Some(tool_call) => Answer::ToolCall(Box::new(tool_call)),
            None => {
                // After a tool result this is the result's text: the client sees it arrived.
                let last = hub.messages.last().map(|message| message.text()).unwrap_or_default();
                let reply = self.reply_to(&last);
                // JSON asked for: JSON it gets, of the schema's shape (as a tool's arguments
                // are built), or the reply in an object.
                Answer::Text(match &hub.response_format {
                    ResponseFormat::Text => reply,
                    ResponseFormat::JsonObject => {
                        Arc::from(serde_json::json!({ "reply": &*reply }).to_string())
                    }
                    ResponseFormat::JsonSchema { schema, .. } => {
                        Arc::from(tool_call::arguments_for(schema).to_string())
                    }
                })
            }
        };
        let words =
            hub.system.iter().map(|text| text.text.as_str()).chain(hub.messages.iter().flat_map(|m| {
                m.content.iter().filter_map(|part| match part {
                    Part::Text(text) => Some(text.text.as_str()),
                    Part::Image(_) => None,
                })
            }));
        let input = words.map(|text| text.split_whitespace().count() as u64).sum();
        let output = match &answer {
            Answer::Text(reply) => reply.split_whitespace().count() as u64,
            Answer::ToolCall(tool_call) => tool_call::piece_count(&tool_call.arguments),
        };
        let usage = Usage { input, output, ..Usage::default() };
        let id = format!("chatcmpl-mock-{number}");
        let created = crate::unix_now();
        if hub.stream {
            let stream = MockStream::new(self.stream_head(id, created, call.model, true, usage), answer);
            let translator =
                Box::new(HubTranslator::new(OpenAiStream::new(), call.client.renderer(call.model, created)));
            return Ok(Reply::Stream(SseRelay::new(Source::Mock(stream), translator, MOCK_IDLE_TIMEOUT)));
        }
        let (text, tool_calls, finish) = match answer {
            Answer::Text(reply) => (reply.to_string(), Vec::new(), FinishReason::Stop),
            Answer::ToolCall(tool_call) => (String::new(), vec![*tool_call], FinishReason::ToolCalls),
        };
        let response = ChatResponse { id, model: call.model.to_owned(), text, tool_calls, finish, usage };
        Ok(Reply::Full { body: call.client.render(&response, created), usage })
    }

    /// The configured reply, or one derived from the last message.
    fn reply_to(&self, last: &str) -> Arc<str> {
        match &self.reply {
            Some(reply) => reply.clone(),
            None => Arc::from(format!("Mock response to: {}", truncate(last, 200))),
        }
    }

    /// A stream's id, model and pace; `usage_fields`: chunks carry `"usage": null`.
    fn stream_head(
        &self,
        id: String,
        created: i64,
        model: &str,
        usage_fields: bool,
        usage: Usage,
    ) -> StreamHead {
        StreamHead {
            id,
            created,
            model: Arc::from(model),
            usage_fields,
            usage,
            token_interval: self.token_interval,
        }
    }

    fn embeddings(&self, request: &Inbound<'_>, model: &str) -> Result<Reply, UpstreamError> {
        // text-embedding-3-small's native size, or a larger one the config chose for the mock.
        let max_dimensions = self.embedding_dimensions.max(OPENAI_SMALL_DIMENSIONS);
        if let Inbound::OpenAi { request, .. } = request {
            check_embeddings(&request.body, max_dimensions).map_err(|e| self.bad_request(e))?;
        }
        let request = EmbeddingsRequest::parse(request).map_err(|e| self.bad_request(e))?;
        let dimensions = request.dimensions.unwrap_or(self.embedding_dimensions);
        let tokens = request.inputs.iter().map(|text| text.split_whitespace().count().max(1) as u64).sum();
        let vectors: Vec<Vec<f32>> = request.inputs.iter().map(|text| embed(text, dimensions)).collect();
        Ok(request.reply(model, &vectors, tokens))
    }
}

impl Provider for MockProvider {
    fn name(&self) -> &Arc<str> {
        &self.name
    }

    async fn send(&self, call: Call<'_>, request: &Inbound<'_>) -> Result<Reply, UpstreamError> {
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
        match (call.api, request) {
            (Api::Embeddings, _) => self.embeddings(request, call.model),
            (_, Inbound::OpenAi { request, .. }) if !answered_through_the_hub(&request.body) => {
                self.chat(request, call.model)
            }
            (_, request) => {
                if let Inbound::OpenAi { request, .. } = request {
                    check_chat(&request.body).map_err(|e| self.bad_request(e))?;
                }
                let hub = request.to_hub(call.model).map_err(|e| self.bad_request(e))?;
                self.chat_via_hub(&hub, &call).map_err(|e| self.bad_request(e))
            }
        }
    }
}

// The mock refuses what OpenAI refuses among the fields it reads, with a 400 naming the field, so
// a client tested against it does not meet its first validation error in production. Limits
// and wording follow OpenAI's OpenAPI spec (https://github.com/openai/openai-openapi,
// `CreateChatCompletionRequest` and `CreateEmbeddingRequest`) and the API's JSON-schema style
// messages ("[] is too short - 'messages'").

/// text-embedding-3-small's vector length, the most `dimensions` it can shorten to
/// (<https://platform.openai.com/docs/guides/embeddings#embedding-models>).
const OPENAI_SMALL_DIMENSIONS: u32 = 1536;
/// The most entries an embeddings `input` array takes (strings, tokens or token arrays).
const MAX_INPUT_ITEMS: usize = 2048;
/// The most tokens one embeddings input takes ("8192 tokens for all embedding models").
const MAX_INPUT_TOKENS: usize = 8192;

/// Whether an OpenAI chat request offers tools or asks for JSON (`tools` or `response_format`
/// present and not `null`): those are answered through the hub, the rest on the fast path.
fn answered_through_the_hub(body: &RawObject<'_>) -> bool {
    let set = |field: &str| body.get(field).is_some_and(|raw| raw.get().trim_ascii() != "null");
    set("tools") || set("response_format")
}

/// `messages` has `minItems: 1`.
fn check_chat(body: &RawObject<'_>) -> Result<(), RequestError> {
    let empty = body
        .get("messages")
        .is_some_and(|raw| raw.get().bytes().filter(|b| !b.is_ascii_whitespace()).eq(*b"[]"));
    if empty {
        return Err(RequestError::new("[] is too short - 'messages'", Some("messages")));
    }
    Ok(())
}

/// `input` (not empty, at most 2048 entries, token arrays within the model's input),
/// `dimensions` (1 to the model's size) and `encoding_format` (`float` or `base64`).
fn check_embeddings(body: &RawObject<'_>, max_dimensions: u32) -> Result<(), RequestError> {
    let invalid = |param: &str, message: String| RequestError::new(message, Some(param));
    match body.get_as::<serde_json::Value>("encoding_format") {
        Ok(None | Some(serde_json::Value::Null)) => {}
        Ok(Some(serde_json::Value::String(format))) if format == "float" || format == "base64" => {}
        Ok(Some(other)) => {
            // Quoted as the API's JSON-schema messages quote values (Python's repr).
            let shown = match &other {
                serde_json::Value::String(text) => format!("'{text}'"),
                value => value.to_string(),
            };
            return Err(invalid(
                "encoding_format",
                format!("{shown} is not one of ['float', 'base64'] - 'encoding_format'"),
            ));
        }
        Err(e) => return Err(invalid("encoding_format", e.0)),
    }
    match body.get_as::<serde_json::Value>("dimensions") {
        Ok(None | Some(serde_json::Value::Null)) => {}
        Ok(Some(value)) => match value.as_i64() {
            Some(d) if d < 1 => {
                return Err(invalid(
                    "dimensions",
                    format!("{d} is less than the minimum of 1 - 'dimensions'"),
                ));
            }
            Some(d) if d > i64::from(max_dimensions) => {
                return Err(invalid(
                    "dimensions",
                    format!("{d} is greater than the maximum of {max_dimensions} - 'dimensions'"),
                ));
            }
            Some(_) => {}
            None => {
                return Err(invalid(
                    "dimensions",
                    format!("{value} is not of type 'integer' - 'dimensions'"),
                ));
            }
        },
        Err(e) => return Err(invalid("dimensions", e.0)),
    }
    // The shapes themselves (string, strings, tokens, token arrays) are checked when read.
    let Ok(Some(input)) = body.get_as::<serde_json::Value>("input") else { return Ok(()) };
    match &input {
        serde_json::Value::String(text) if text.is_empty() => Err(invalid(
            "input",
            "'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference."
                .to_owned(),
        )),
        serde_json::Value::Array(items) if items.is_empty() => {
            Err(invalid("input", "[] is too short - 'input'".to_owned()))
        }
        serde_json::Value::Array(items) if items.len() > MAX_INPUT_ITEMS => Err(invalid(
            "input",
            format!("'input' has {} entries, more than the maximum of {MAX_INPUT_ITEMS} - 'input'", items.len()),
        )),
        serde_json::Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                match item {
                    serde_json::Value::Array(tokens) if tokens.is_empty() => {
                        return Err(invalid("input", format!("[] is too short - 'input.{index}'")));
                    }
                    serde_json::Value::Array(tokens) if tokens.len() > MAX_INPUT_TOKENS => {
                        return Err(invalid(
                            "input",
                            format!(
                                "This model's maximum context length is {MAX_INPUT_TOKENS} tokens, however you \
                                 requested {} tokens in 'input.{index}'. Please reduce your input.",
                                tokens.len()
                            ),
                        ));
                    }
                    _ => {}
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn truncate(text: &str, max_chars: usize) -> &str {
    text.char_indices().nth(max_chars).map_or(text, |(at, _)| &text[..at])
}

fn usage_json(usage: Usage) -> serde_json::Value {
    serde_json::json!({
        "prompt_tokens": usage.input,
        "completion_tokens": usage.output,
        "total_tokens": usage.total(),
    })
}

/// A deterministic unit-length vector derived from the text (FNV-1a seeded xorshift).
fn embed(text: &str, dimensions: u32) -> Vec<f32> {
    let mut state =
        text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    let mut vector: Vec<f32> = (0..dimensions)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect();
    let norm = vector.iter().map(|v| v * v).sum::<f32>().sqrt().max(f32::EPSILON);
    vector.iter_mut().for_each(|v| *v /= norm);
    vector
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embeddings_are_deterministic_unit_vectors() {
        let a = embed("hello", 16);
        assert_eq!(a, embed("hello", 16));
        assert_ne!(a, embed("hellp", 16));
        let norm: f32 = a.iter().map(|v| v * v).sum();
        assert!((norm - 1.0).abs() < 1e-4);
    }
}
