//! OpenAI embeddings ↔ Gemini `batchEmbedContents` (<https://ai.google.dev/api/embeddings>):
//! one request per input text, each naming the model again (`models/{model}`, as the API
//! requires), `dimensions` as `outputDimensionality`; the answer's `embeddings[i].values` in
//! input order. The API reports no token usage for embeddings.

use serde::{Deserialize, Serialize};

#[derive(Serialize)]
struct Batch<'a> {
    requests: Vec<EmbedRequest<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EmbedRequest<'a> {
    model: &'a str,
    content: Content<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    output_dimensionality: Option<u32>,
}

#[derive(Serialize)]
struct Content<'a> {
    parts: [TextPart<'a>; 1],
}

#[derive(Serialize)]
struct TextPart<'a> {
    text: &'a str,
}

#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    embeddings: Vec<Embedding>,
}

#[derive(Deserialize)]
struct Embedding {
    values: Vec<f32>,
}

/// The `batchEmbedContents` body for `inputs` (the model id without `models/`).
pub fn build_embed_request(model: &str, inputs: &[String], dimensions: Option<u32>) -> Vec<u8> {
    let name = format!("models/{model}");
    let requests = inputs
        .iter()
        .map(|text| EmbedRequest {
            model: &name,
            content: Content { parts: [TextPart { text }] },
            output_dimensionality: dimensions,
        })
        .collect();
    // Serializing these types cannot fail: strings and numbers only.
    serde_json::to_vec(&Batch { requests }).unwrap_or_default()
}

/// The vectors of a `batchEmbedContents` answer, which must have one per input.
pub fn parse_embed_response(body: &[u8], inputs: usize) -> Result<Vec<Vec<f32>>, String> {
    let answer: Answer =
        serde_json::from_slice(body).map_err(|err| format!("not a Gemini embeddings response: {err}"))?;
    if answer.embeddings.len() != inputs {
        return Err(format!("{} embeddings for {inputs} inputs", answer.embeddings.len()));
    }
    Ok(answer.embeddings.into_iter().map(|e| e.values).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_and_its_answer() {
        let body = build_embed_request("text-embedding-004", &["a b".into(), "c".into()], Some(8));
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"requests": [
                {"model": "models/text-embedding-004", "content": {"parts": [{"text": "a b"}]}, "outputDimensionality": 8},
                {"model": "models/text-embedding-004", "content": {"parts": [{"text": "c"}]}, "outputDimensionality": 8}
            ]})
        );
        let plain = build_embed_request("m", &["x".into()], None);
        assert!(!String::from_utf8_lossy(&plain).contains("outputDimensionality"));
        let answer = br#"{"embeddings":[{"values":[0.5,-1]},{"values":[0.25,1]}]}"#;
        assert_eq!(parse_embed_response(answer, 2).unwrap(), vec![vec![0.5, -1.0], vec![0.25, 1.0]]);
        assert!(parse_embed_response(answer, 3).unwrap_err().contains("2 embeddings for 3 inputs"));
        assert!(parse_embed_response(b"{", 1).is_err());
    }
}
