//! What a backend can do, and what a request needs from it.
//!
//! A request with an image sent to a text-only model, tools to a server started without tool
//! parsing, or 20,000 tokens to an 8,192-token model gets an upstream error that rarely says
//! which of those it was (vLLM answers 400 with a template error, Ollama silently drops the
//! image). The gateway knows both sides: each backend's capabilities (its provider type's,
//! narrowed by config per model) and what the request uses. A backend that lacks something the
//! request needs is not tried; when no backend of the route can serve it, the caller gets a 400
//! that names the capability.
//!
//! What a request needs is read lazily, and only for the capabilities a backend lacks: a backend
//! that can do everything (the default) costs nothing on the passthrough path.

use crate::hub::{ChatRequest, Part, ResponseFormat, ToolChoice};
use crate::openai::{ModelRequest, embedding_inputs};
use std::cell::OnceCell;

/// One thing a backend may or may not do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capability {
    Streaming,
    Tools,
    /// Images in the input.
    Vision,
    /// `response_format` `json_object` or `json_schema`.
    JsonMode,
    Embeddings,
    /// Prompt plus requested output within the model's context window.
    ContextLength,
}

impl Capability {
    /// How the capability is named in config and errors.
    pub fn as_str(self) -> &'static str {
        match self {
            Capability::Streaming => "streaming",
            Capability::Tools => "tools",
            Capability::Vision => "vision",
            Capability::JsonMode => "json_mode",
            Capability::Embeddings => "embeddings",
            Capability::ContextLength => "context_length",
        }
    }

    /// The request field that needs it, for the error's `param`.
    pub fn param(self) -> &'static str {
        match self {
            Capability::Streaming => "stream",
            Capability::Tools => "tools",
            Capability::Vision | Capability::ContextLength => "messages",
            Capability::JsonMode => "response_format",
            Capability::Embeddings => "model",
        }
    }
}

/// What a backend can do. Everything by default: a provider type narrows it where its API
/// lacks something, and config narrows it per model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    pub streaming: bool,
    pub tools: bool,
    pub vision: bool,
    pub json_mode: bool,
    pub embeddings: bool,
    /// The context window in tokens, when known.
    pub context_length: Option<u32>,
}

impl Default for Capabilities {
    fn default() -> Self {
        Capabilities {
            streaming: true,
            tools: true,
            vision: true,
            json_mode: true,
            embeddings: true,
            context_length: None,
        }
    }
}

impl Capabilities {
    /// The first capability `needs` calls for that this backend lacks, if any.
    pub fn missing(&self, needs: &Needs<'_, '_>) -> Option<Capability> {
        if needs.embeddings {
            if !self.embeddings {
                return Some(Capability::Embeddings);
            }
            let too_long =
                self.context_length.is_some_and(|limit| needs.longest_input_tokens() > u64::from(limit));
            return too_long.then_some(Capability::ContextLength);
        }
        if !self.streaming && needs.stream {
            return Some(Capability::Streaming);
        }
        if !self.tools && needs.tools() {
            return Some(Capability::Tools);
        }
        if !self.vision && needs.images() {
            return Some(Capability::Vision);
        }
        if !self.json_mode && needs.json_mode() {
            return Some(Capability::JsonMode);
        }
        let too_long = self.context_length.is_some_and(|limit| needs.context_tokens() > u64::from(limit));
        too_long.then_some(Capability::ContextLength)
    }
}

/// What one request needs, read on demand (see the module docs).
pub struct Needs<'r, 'b> {
    source: Source<'r, 'b>,
    stream: bool,
    embeddings: bool,
    /// The request in the hub's terms; `None` when it does not translate, and then nothing is
    /// refused on its account: the backend decides.
    hub: OnceCell<Option<ChatRequest>>,
}

/// Where what a request needs is read from.
enum Source<'r, 'b> {
    /// An OpenAI request, translated to the hub only if a backend lacks something.
    OpenAi(&'r ModelRequest<'b>),
    /// A request of another API, already in the hub's terms (`None`: it does not translate).
    Hub(Option<&'r ChatRequest>),
}

/// Tokens are estimated from UTF-8 bytes with a divisor no tokenizer in use stays under (English
/// averages about 4 bytes per token, code 3, CJK text 1 to 3), so an estimate is a lower bound
/// and a request is refused only when it cannot fit.
const BYTES_PER_TOKEN_AT_MOST: u64 = 6;

impl<'r, 'b> Needs<'r, 'b> {
    /// `embeddings`: the request came in on `/v1/embeddings`.
    pub fn new(request: &'r ModelRequest<'b>, embeddings: bool) -> Self {
        Needs { source: Source::OpenAi(request), stream: request.stream, embeddings, hub: OnceCell::new() }
    }

    /// A chat request of another API, in the hub's terms (`None` when it does not translate).
    pub fn of_hub(hub: Option<&'r ChatRequest>, stream: bool) -> Self {
        Needs { source: Source::Hub(hub), stream, embeddings: false, hub: OnceCell::new() }
    }

    fn hub(&self) -> Option<&ChatRequest> {
        match self.source {
            Source::OpenAi(request) => self.hub.get_or_init(|| request.to_hub("").ok()).as_ref(),
            Source::Hub(hub) => hub,
        }
    }

    fn tools(&self) -> bool {
        self.hub().is_some_and(|hub| {
            let calls_allowed = !matches!(hub.tool_choice, Some(ToolChoice::None));
            let history = hub.messages.iter().any(|m| !m.tool_calls.is_empty() || m.tool_call_id.is_some());
            (!hub.tools.is_empty() && calls_allowed) || history
        })
    }

    fn images(&self) -> bool {
        self.hub().is_some_and(|hub| {
            hub.messages.iter().flat_map(|m| &m.content).any(|part| matches!(part, Part::Image(_)))
        })
    }

    fn json_mode(&self) -> bool {
        self.hub().is_some_and(|hub| !matches!(hub.response_format, ResponseFormat::Text))
    }

    /// A lower bound of the prompt's tokens plus the output asked for.
    fn context_tokens(&self) -> u64 {
        let Some(hub) = self.hub() else { return 0 };
        let text: usize = hub.system.iter().map(|t| t.text.len()).sum::<usize>()
            + hub
                .messages
                .iter()
                .flat_map(|m| &m.content)
                .map(|part| match part {
                    Part::Text(text) => text.text.len(),
                    Part::Image(_) => 0,
                })
                .sum::<usize>();
        text as u64 / BYTES_PER_TOKEN_AT_MOST + u64::from(hub.max_tokens.unwrap_or(0))
    }

    /// A lower bound of the tokens of the longest embeddings input.
    fn longest_input_tokens(&self) -> u64 {
        let Source::OpenAi(request) = self.source else { return 0 };
        let inputs = embedding_inputs(&request.body).unwrap_or_default();
        inputs.iter().map(String::len).max().unwrap_or(0) as u64 / BYTES_PER_TOKEN_AT_MOST
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn missing(capabilities: Capabilities, body: &str, embeddings: bool) -> Option<Capability> {
        let request = ModelRequest::parse(body.as_bytes()).unwrap();
        capabilities.missing(&Needs::new(&request, embeddings))
    }

    const PLAIN: &str = r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#;

    #[test]
    fn a_backend_is_refused_only_what_it_lacks_and_the_request_uses() {
        let none = Capabilities {
            streaming: false,
            tools: false,
            vision: false,
            json_mode: false,
            embeddings: false,
            context_length: Some(100),
        };
        assert_eq!(missing(none, PLAIN, false), None, "a plain request needs nothing");
        assert_eq!(missing(Capabilities::default(), PLAIN, true), None);

        let image = r#"{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"what is this"},
            {"type":"image_url","image_url":{"url":"https://example.com/cat.png"}}]}]}"#;
        let tools = r#"{"model":"m","messages":[{"role":"user","content":"weather?"}],
            "tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}}]}"#;
        let tools_off = r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"tool_choice":"none",
            "tools":[{"type":"function","function":{"name":"get_weather"}}]}"#;
        let json = r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"response_format":{"type":"json_object"}}"#;
        let stream = r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true}"#;
        for (body, capability) in [
            (image, Capability::Vision),
            (tools, Capability::Tools),
            (json, Capability::JsonMode),
            (stream, Capability::Streaming),
        ] {
            assert_eq!(missing(none, body, false), Some(capability), "{body}");
            assert_eq!(missing(Capabilities::default(), body, false), None, "{body}");
        }
        assert_eq!(missing(none, tools_off, false), None, "tools offered but not callable");
        assert_eq!(missing(none, r#"{"model":"m","input":"hi"}"#, true), Some(Capability::Embeddings));
    }

    #[test]
    fn the_context_is_refused_only_when_the_request_cannot_fit() {
        let limited = Capabilities { context_length: Some(1000), ..Capabilities::default() };
        let body = |text_bytes: usize, max_tokens: u32| {
            format!(
                r#"{{"model":"m","max_tokens":{max_tokens},"messages":[{{"role":"user","content":"{}"}}]}}"#,
                "a".repeat(text_bytes)
            )
        };
        assert_eq!(missing(limited, &body(5_000, 100), false), None, "~833 tokens at most 6 bytes each");
        assert_eq!(missing(limited, &body(5_000, 200), false), Some(Capability::ContextLength));
        assert_eq!(missing(limited, &body(10, 1001), false), Some(Capability::ContextLength));
        let input = format!(r#"{{"model":"m","input":["short","{}"]}}"#, "a".repeat(7_000));
        assert_eq!(missing(limited, &input, true), Some(Capability::ContextLength));
        assert_eq!(missing(limited, r#"{"model":"m","input":"short"}"#, true), None);
    }

    #[test]
    fn a_request_that_does_not_translate_is_left_to_the_backend() {
        let none = Capabilities { tools: false, vision: false, ..Capabilities::default() };
        let odd = r#"{"model":"m","messages":"not a list","tools":[1]}"#;
        assert_eq!(missing(none, odd, false), None);
    }
}
