//! The built-in `mock` provider: a product feature, not a test double.
//!
//! It answers chat and embeddings requests in OpenAI's format without any network: replies are
//! deterministic (a fixed `reply`, or derived from the last message), latency and streaming pace
//! are configurable, and usage is reported like a real provider's. Demos, CI pipelines and load
//! tests use it; the README's first command serves it.

use super::embeddings::EmbeddingsRequest;
use super::{Call, Provider, Reply};
use crate::body::{Source, SseRelay};
use crate::error::UpstreamError;
use crate::inbound::{Api, Inbound};
use bytes::Bytes;
use serde::Serialize;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::task::{Context, Poll, ready};
use std::time::Duration;
use switchboard_config::MockProviderConfig;
use switchboard_llm::hub::{ChatRequest, ChatResponse, FinishReason, Part};
use switchboard_llm::openai::{ModelRequest, OpenAiStream, RequestError, messages_text};
use switchboard_llm::stream::{HubTranslator, OpenAiPassthrough};
use switchboard_llm::{RawObject, Usage};
use tokio::time::Sleep;

pub struct MockProvider {
    name: Arc<str>,
    latency: Duration,
    /// Pause between streamed tokens; zero streams as fast as the client reads.
    token_interval: Duration,
    reply: Option<Arc<str>>,
    embedding_dimensions: u32,
}

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
            let stream = self.stream(id, created, model, reply, request.include_usage, usage);
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

    /// A request of another API: answered as for chat, and rendered in the client's API through
    /// the hub (a stream is the same OpenAI chunks, read back by the OpenAI stream parser).
    fn chat_via_hub(&self, hub: &ChatRequest, call: &Call<'_>) -> Reply {
        let last = hub.messages.last().map(|message| message.text()).unwrap_or_default();
        let words =
            hub.system.iter().map(|text| text.text.as_str()).chain(hub.messages.iter().flat_map(|m| {
                m.content.iter().filter_map(|part| match part {
                    Part::Text(text) => Some(text.text.as_str()),
                    Part::Image(_) => None,
                })
            }));
        let input = words.map(|text| text.split_whitespace().count() as u64).sum();
        let reply = self.reply_to(&last);
        let usage = Usage { input, output: reply.split_whitespace().count() as u64, ..Usage::default() };
        let id = format!("chatcmpl-mock-{}", RESPONSE_IDS.fetch_add(1, Relaxed));
        let created = crate::unix_now();
        if hub.stream {
            let stream = self.stream(id, created, call.model, reply, true, usage);
            let translator =
                Box::new(HubTranslator::new(OpenAiStream::new(), call.client.renderer(call.model, created)));
            return Reply::Stream(SseRelay::new(Source::Mock(stream), translator, MOCK_IDLE_TIMEOUT));
        }
        let response = ChatResponse {
            id,
            model: call.model.to_owned(),
            text: reply.to_string(),
            tool_calls: Vec::new(),
            finish: FinishReason::Stop,
            usage,
        };
        Reply::Full { body: call.client.render(&response, created), usage }
    }

    /// The configured reply, or one derived from the last message.
    fn reply_to(&self, last: &str) -> Arc<str> {
        match &self.reply {
            Some(reply) => reply.clone(),
            None => Arc::from(format!("Mock response to: {}", truncate(last, 200))),
        }
    }

    /// A stream of `reply` as OpenAI chunks; `usage_fields`: chunks carry `"usage": null` and
    /// the usage chunk follows.
    fn stream(
        &self,
        id: String,
        created: i64,
        model: &str,
        reply: Arc<str>,
        usage_fields: bool,
        usage: Usage,
    ) -> MockStream {
        MockStream {
            id,
            created,
            model: Arc::from(model),
            reply,
            offset: 0,
            state: State::Role,
            usage_fields,
            usage,
            token_interval: self.token_interval,
            sleep: None,
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
            (_, Inbound::OpenAi { request, .. }) => self.chat(request, call.model),
            (_, request) => {
                let hub = request.to_hub(call.model).map_err(|e| self.bad_request(e))?;
                Ok(self.chat_via_hub(&hub, &call))
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

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Role,
    Content,
    Finish,
    Usage,
    Done,
    End,
}

/// A streamed mock reply: OpenAI `chat.completion.chunk` events, one per word, paced by
/// `tokens_per_second`, then the usage chunk and `[DONE]`. Dropping it (client gone) simply
/// stops generating.
pub struct MockStream {
    id: String,
    created: i64,
    model: Arc<str>,
    reply: Arc<str>,
    /// Byte offset of the next word in `reply`.
    offset: usize,
    state: State,
    /// Whether chunks carry `"usage": null` (OpenAI's shape when the caller asked for usage).
    usage_fields: bool,
    usage: Usage,
    token_interval: Duration,
    sleep: Option<Pin<Box<Sleep>>>,
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
    /// The next SSE event, `None` at the end.
    pub fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        let choice = |delta: serde_json::Value, finish: Option<&str>| {
            vec![serde_json::json!({ "index": 0, "delta": delta, "logprobs": null, "finish_reason": finish })]
        };
        let (choices, usage) = match self.state {
            State::Role => {
                self.state = State::Content;
                (choice(serde_json::json!({ "role": "assistant", "content": "" }), None), None)
            }
            State::Content => {
                if let Some(sleep) = &mut self.sleep {
                    ready!(sleep.as_mut().poll(cx));
                }
                let Some(word) = next_word(&self.reply, &mut self.offset) else {
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
                (choice(serde_json::json!({ "content": word }), None), None)
            }
            State::Finish => {
                self.state = State::Usage;
                (choice(serde_json::json!({}), Some("stop")), None)
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

    #[test]
    fn embeddings_are_deterministic_unit_vectors() {
        let a = embed("hello", 16);
        assert_eq!(a, embed("hello", 16));
        assert_ne!(a, embed("hellp", 16));
        let norm: f32 = a.iter().map(|v| v * v).sum();
        assert!((norm - 1.0).abs() < 1e-4);
    }
}
