//! OpenAI's `/v1/embeddings` for providers that compute embeddings themselves (the built-in
//! mock) or speak another API (Gemini): the request's fields read once, and OpenAI's response
//! written from plain vectors. <https://platform.openai.com/docs/api-reference/embeddings>

use super::Reply;
use crate::inbound::Inbound;
use bytes::Bytes;
use switchboard_llm::Usage;
use switchboard_llm::openai::{RequestError, embedding_inputs};

/// What an embeddings request asks for.
pub(super) struct EmbeddingsRequest {
    /// The texts, in order (token arrays rendered as numbers).
    pub inputs: Vec<String>,
    /// `dimensions`, if set.
    pub dimensions: Option<u32>,
    /// `encoding_format: "base64"`: vectors as base64 of little-endian f32s.
    pub base64: bool,
}

impl EmbeddingsRequest {
    pub(super) fn parse(request: &Inbound<'_>) -> Result<Self, RequestError> {
        let Inbound::OpenAi { request, .. } = request else {
            return Err(RequestError::new("this is not an embeddings request", None));
        };
        let inputs = embedding_inputs(&request.body)?;
        let dimensions = request
            .body
            .get_as::<u32>("dimensions")
            .map_err(|e| RequestError::new(e.0, Some("dimensions")))?;
        let base64 =
            request.body.get_as::<String>("encoding_format").ok().flatten().as_deref() == Some("base64");
        Ok(EmbeddingsRequest { inputs, dimensions, base64 })
    }

    /// OpenAI's answer for `vectors` (one per input, in order), with `input_tokens` as usage.
    pub(super) fn reply(&self, model: &str, vectors: &[Vec<f32>], input_tokens: u64) -> Reply {
        let data: Vec<_> = vectors
            .iter()
            .enumerate()
            .map(|(index, vector)| {
                let embedding = if self.base64 {
                    serde_json::Value::String(encode_base64(vector))
                } else {
                    serde_json::json!(vector)
                };
                serde_json::json!({ "object": "embedding", "index": index, "embedding": embedding })
            })
            .collect();
        let usage = Usage { input: input_tokens, ..Usage::default() };
        let body = serde_json::json!({
            "object": "list",
            "data": data,
            "model": model,
            "usage": { "prompt_tokens": input_tokens, "total_tokens": input_tokens },
        });
        Reply::Full { body: Bytes::from(body.to_string()), usage }
    }
}

/// Standard padded base64 of the little-endian f32s, as OpenAI's `encoding_format: "base64"`.
pub(super) fn encode_base64(vector: &[f32]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes: Vec<u8> = vector.iter().flat_map(|v| v.to_le_bytes()).collect();
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(chunk.get(1).copied().unwrap_or(0)) << 8)
            | u32::from(chunk.get(2).copied().unwrap_or(0));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_standard_alphabet_and_padding() {
        assert_eq!(encode_base64(&[1.0]), "AACAPw==");
        assert_eq!(encode_base64(&[]), "");
    }
}
