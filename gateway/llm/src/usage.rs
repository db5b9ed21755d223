//! Token usage: one model for every dialect.
//!
//! Limits, budgets and cost are computed from these counts, so each dialect's report is mapped
//! onto the same meaning:
//! - `input` counts every prompt token, cached or not (OpenAI's `prompt_tokens`); `cache_read`
//!   and `cache_write` are the parts of it read from and written to a provider's prompt cache
//!   (Anthropic reports those apart from `input_tokens`, so its mapping adds them in);
//! - `output` counts every generated token, reasoning included (OpenAI's `completion_tokens`);
//!   `reasoning` is the part spent thinking (Gemini reports it apart, so its mapping adds it in).
//!
//! Streams report usage as running totals, sometimes on every chunk (vLLM's
//! `continuous_usage_stats`, Anthropic's `message_delta`): a report *replaces* what was known,
//! it is never added to it. Translators keep the running total; the relay reads it.

use serde::Deserialize;

/// Tokens of one request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Every prompt token, cached ones included.
    pub input: u64,
    /// Every generated token, reasoning included.
    pub output: u64,
    /// Part of `input` read from the provider's prompt cache.
    pub cache_read: u64,
    /// Part of `input` written to the provider's prompt cache.
    pub cache_write: u64,
    /// Part of `output` spent on reasoning.
    pub reasoning: u64,
}

/// OpenAI's `usage` object (chat completions, embeddings, stream chunks).
/// <https://platform.openai.com/docs/api-reference/chat/object#chat/object-usage>
#[derive(Deserialize)]
struct OpenAiUsage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
    #[serde(default)]
    prompt_tokens_details: Option<PromptDetails>,
    #[serde(default)]
    completion_tokens_details: Option<CompletionDetails>,
}

#[derive(Deserialize)]
struct PromptDetails {
    #[serde(default)]
    cached_tokens: Option<u64>,
}

#[derive(Deserialize)]
struct CompletionDetails {
    #[serde(default)]
    reasoning_tokens: Option<u64>,
}

impl From<OpenAiUsage> for Usage {
    fn from(usage: OpenAiUsage) -> Self {
        Usage {
            input: usage.prompt_tokens,
            output: usage.completion_tokens,
            cache_read: usage.prompt_tokens_details.and_then(|d| d.cached_tokens).unwrap_or(0),
            cache_write: 0,
            reasoning: usage.completion_tokens_details.and_then(|d| d.reasoning_tokens).unwrap_or(0),
        }
    }
}

#[derive(Deserialize)]
struct WithUsage {
    #[serde(default)]
    usage: Option<OpenAiUsage>,
}

#[derive(Deserialize)]
struct ChunkShape {
    #[serde(default)]
    usage: Option<OpenAiUsage>,
    #[serde(default)]
    choices: Option<Vec<serde::de::IgnoredAny>>,
}

impl Usage {
    pub fn total(&self) -> u64 {
        // Counts come from upstreams, which may send anything up to u64::MAX: saturate, never
        // overflow (a panic in debug builds, a tiny wrapped total in release).
        self.input.saturating_add(self.output)
    }

    /// Usage from a complete (non-streaming) OpenAI response body, if it reports one.
    pub fn from_openai_response(body: &[u8]) -> Option<Usage> {
        Self::read_openai_response(body).ok().flatten()
    }

    /// Like [`Usage::from_openai_response`], but a body that is not JSON at all (a truncated or
    /// mangled answer) is an error. A JSON body with a usage of an unexpected shape is not: it
    /// is still an answer the client can read, with no usage to count. The second parse only
    /// happens on that rare path.
    pub fn read_openai_response(body: &[u8]) -> Result<Option<Usage>, serde_json::Error> {
        match serde_json::from_slice::<WithUsage>(body) {
            Ok(with) => Ok(with.usage.map(Usage::from)),
            Err(err) => serde_json::from_slice::<serde::de::IgnoredAny>(body).map(|_| None).map_err(|_| err),
        }
    }

    /// The running total one OpenAI streaming chunk carries, and whether the chunk is usage-only
    /// (`choices: []`), i.e. the extra chunk `stream_options.include_usage` adds before `[DONE]`.
    pub fn from_openai_chunk(data: &[u8]) -> Option<(Usage, bool)> {
        let chunk = serde_json::from_slice::<ChunkShape>(data).ok()?;
        let usage = chunk.usage?;
        Some((usage.into(), chunk.choices.is_none_or(|c| c.is_empty())))
    }

    /// An OpenAI `usage` object on its own (its JSON text), for readers that parse the rest of
    /// the response themselves. `None` when it is not one.
    pub fn from_openai_usage(usage: &[u8]) -> Option<Usage> {
        serde_json::from_slice::<OpenAiUsage>(usage).ok().map(Usage::from)
    }
}

#[cfg(test)]
mod tests {
    use super::Usage;

    #[test]
    fn reads_openai_usage_from_responses_and_chunks() {
        let body = br#"{"id":"x","choices":[{"index":0}],"usage":{"prompt_tokens":3,"completion_tokens":5,"total_tokens":8}}"#;
        assert_eq!(
            Usage::from_openai_response(body),
            Some(Usage { input: 3, output: 5, ..Usage::default() })
        );
        assert_eq!(Usage::from_openai_response(br#"{"usage":null}"#), None);
        let chunk = br#"{"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2}}"#;
        assert_eq!(
            Usage::from_openai_chunk(chunk),
            Some((Usage { input: 1, output: 2, ..Usage::default() }, true))
        );
        let chunk = br#"{"choices":[{"delta":{}}],"usage":{"prompt_tokens":1,"completion_tokens":2}}"#;
        assert_eq!(Usage::from_openai_chunk(chunk).map(|(_, only)| only), Some(false));
        assert_eq!(Usage::from_openai_chunk(br#"{"choices":[{}],"usage":null}"#), None);
    }

    #[test]
    fn cached_and_reasoning_tokens_are_parts_of_input_and_output() {
        let body = br#"{"usage":{"prompt_tokens":2006,"completion_tokens":300,"total_tokens":2306,
            "prompt_tokens_details":{"cached_tokens":1920,"audio_tokens":0},
            "completion_tokens_details":{"reasoning_tokens":256,"accepted_prediction_tokens":0}}}"#;
        let usage = Usage::from_openai_response(body).unwrap();
        assert_eq!(
            usage,
            Usage { input: 2006, output: 300, cache_read: 1920, cache_write: 0, reasoning: 256 }
        );
        assert_eq!(usage.total(), 2306);
    }
}
