//! Embeddings (embedContent, batchEmbedContents, Vertex's predict) and token counting.

use super::Rpc;
use super::proto::{Api, get};
use super::reply;
use super::validate::{self, Problem};
use crate::json::Json;

/// embedContent, batchEmbedContents (https://ai.google.dev/api/embeddings) and Vertex's
/// predict for text embeddings.
pub(crate) fn embed(body: &Json, rpc: Rpc, model: &str, dims: usize) -> Result<Json, Problem> {
    let mut problems = Vec::new();
    let values = |text: &str, d: usize| Json::obj([("values", reply::embedding(text, d))]);
    match rpc {
        Rpc::Embed => {
            let (text, d) = validate::embed_content(body, "", model, false, dims, &mut problems);
            if !problems.is_empty() {
                return Err(Problem::Fields("EmbedContentRequest", problems));
            }
            Ok(Json::obj([("embedding", values(&text, d))]))
        }
        Rpc::BatchEmbed => {
            let requests = get(body, "requests").and_then(Json::as_arr).unwrap_or_default();
            if requests.is_empty() {
                problems.push(("requests".into(), "requests is not specified".into()));
            }
            let mut out = Vec::new();
            for (i, r) in requests.iter().enumerate() {
                let (text, d) =
                    validate::embed_content(r, &format!("requests[{i}]"), model, true, dims, &mut problems);
                out.push(values(&text, d));
            }
            if !problems.is_empty() {
                return Err(Problem::Fields("BatchEmbedContentsRequest", problems));
            }
            Ok(Json::obj([("embeddings", Json::Arr(out))]))
        }
        _ => {
            // https://cloud.google.com/vertex-ai/generative-ai/docs/model-reference/text-embeddings-api
            let instances = get(body, "instances").and_then(Json::as_arr).unwrap_or_default();
            if instances.is_empty() {
                problems.push(("instances".into(), "instances is not specified".into()));
            }
            let mut d = dims;
            if let Some(p) = get(body, "parameters") {
                for (k, v) in p.as_obj().unwrap_or_default() {
                    match k.as_str() {
                        "autoTruncate" | "auto_truncate" if v.as_bool().is_some() => {}
                        "outputDimensionality" | "output_dimensionality" => {
                            match v.as_i64().map(usize::try_from) {
                                Some(Ok(n)) if (1..=dims).contains(&n) => d = n,
                                _ => problems.push((
                                    "parameters.output_dimensionality".into(),
                                    format!("must be in the range [1, {dims}]"),
                                )),
                            }
                        }
                        _ => {
                            problems.push((format!("parameters.{k}"), "unknown or invalid parameter".into()))
                        }
                    }
                }
            }
            let mut predictions = Vec::new();
            for (i, inst) in instances.iter().enumerate() {
                let mut content = "";
                for (k, v) in inst.as_obj().unwrap_or_default() {
                    match (k.as_str(), v) {
                        ("content", Json::Str(s)) => content = s,
                        ("task_type" | "title" | "mimeType", Json::Str(_)) => {}
                        _ => problems.push((
                            format!("instances[{i}].{k}"),
                            "unknown or invalid instance field".into(),
                        )),
                    }
                }
                if content.is_empty() {
                    problems.push((format!("instances[{i}].content"), "content is not specified".into()));
                }
                let stats = Json::obj([
                    ("truncated", Json::Bool(false)),
                    ("token_count", Json::int(crate::json::count_words(content))),
                ]);
                predictions.push(Json::obj([(
                    "embeddings",
                    Json::obj([("statistics", stats), ("values", reply::embedding(content, d))]),
                )]));
            }
            if !problems.is_empty() {
                return Err(Problem::Fields("PredictRequest", problems));
            }
            let chars: usize = instances
                .iter()
                .filter_map(|i| i.get("content").and_then(Json::as_str))
                .map(|s| s.chars().filter(|c| !c.is_whitespace()).count())
                .sum();
            Ok(Json::obj([
                ("predictions", Json::Arr(predictions)),
                ("metadata", Json::obj([("billableCharacterCount", Json::int(chars as u64))])),
            ]))
        }
    }
}

/// https://ai.google.dev/api/tokens: `contents` or a whole `generateContentRequest` (Gemini);
/// Vertex takes contents, systemInstruction, tools and generationConfig at the top level.
pub(crate) fn count_tokens(body: &Json, api: Api) -> Result<u64, Problem> {
    let nested = get(body, "generateContentRequest");
    if nested.is_some() && get(body, "contents").is_some() {
        return Err(Problem::Fields(
            "CountTokensRequest",
            vec![("contents".into(), "contents and generate_content_request cannot both be set".into())],
        ));
    }
    let checked = match (api, nested) {
        (Api::Gemini, Some(g)) => validate::generate(g, "CountTokensRequest.generate_content_request")?,
        _ => validate::generate(body, "CountTokensRequest")?,
    };
    Ok(checked.prompt_tokens)
}

pub(crate) fn count_tokens_reply(n: u64, api: Api) -> Json {
    let details = Json::Arr(vec![Json::obj([("modality", Json::str("TEXT")), ("tokenCount", Json::int(n))])]);
    match api {
        Api::Gemini => Json::obj([("totalTokens", Json::int(n)), ("promptTokensDetails", details)]),
        Api::Vertex => Json::obj([
            ("totalTokens", Json::int(n)),
            ("totalBillableCharacters", Json::int(n * 5)),
            ("promptTokensDetails", details),
        ]),
    }
}
