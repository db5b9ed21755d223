//! Token usage as upstreams report it.

use serde::Deserialize;

/// Prompt and completion tokens of one request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub struct Usage {
    #[serde(default)]
    pub prompt_tokens: u64,
    #[serde(default)]
    pub completion_tokens: u64,
}

#[derive(Deserialize)]
struct WithUsage {
    #[serde(default)]
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct ChunkShape {
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(default)]
    choices: Option<Vec<serde::de::IgnoredAny>>,
}

impl Usage {
    pub fn total(&self) -> u64 {
        self.prompt_tokens + self.completion_tokens
    }

    /// Usage from a complete (non-streaming) OpenAI response body, if it reports one.
    pub fn from_response(body: &[u8]) -> Option<Usage> {
        serde_json::from_slice::<WithUsage>(body).ok().and_then(|w| w.usage)
    }

    /// Usage carried by one streaming chunk, and whether the chunk is usage-only (`choices: []`),
    /// i.e. the extra chunk `stream_options.include_usage` adds before `[DONE]`.
    pub fn from_chunk(data: &[u8]) -> Option<(Usage, bool)> {
        let chunk = serde_json::from_slice::<ChunkShape>(data).ok()?;
        let usage = chunk.usage?;
        Some((usage, chunk.choices.is_none_or(|c| c.is_empty())))
    }
}

#[cfg(test)]
mod tests {
    use super::Usage;

    #[test]
    fn reads_usage_from_responses_and_chunks() {
        let body = br#"{"id":"x","choices":[{"index":0}],"usage":{"prompt_tokens":3,"completion_tokens":5,"total_tokens":8}}"#;
        assert_eq!(Usage::from_response(body), Some(Usage { prompt_tokens: 3, completion_tokens: 5 }));
        assert_eq!(Usage::from_response(br#"{"usage":null}"#), None);
        let chunk = br#"{"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2}}"#;
        assert_eq!(Usage::from_chunk(chunk), Some((Usage { prompt_tokens: 1, completion_tokens: 2 }, true)));
        let chunk = br#"{"choices":[{"delta":{}}],"usage":{"prompt_tokens":1,"completion_tokens":2}}"#;
        assert_eq!(Usage::from_chunk(chunk).map(|(_, only)| only), Some(false));
        assert_eq!(Usage::from_chunk(br#"{"choices":[{}],"usage":null}"#), None);
    }
}
