//! What a valid request gets back: the planned candidate (text, thoughts, function calls), the
//! `GenerateContentResponse` JSON (https://ai.google.dev/api/generate-content#generatecontentresponse),
//! its stream chunks, and embeddings.

use bytes::Bytes;

use super::proto::Api;
use super::validate::Checked;
use crate::behavior::{Behavior, Content, Safety, Stop};
use crate::json::{Json, example_from_schema, word_pieces};

/// `thoughtsTokenCount` of a `*-thinking` model.
pub const THOUGHTS_TOKENS: u64 = 24;

/// The `thoughtSignature` a `*-thinking` model puts on its first function call part (base64 of
/// `mock-thought-signature`); Gemini 3 expects it echoed back in the next request.
pub const THOUGHT_SIGNATURE: &str = "bW9jay10aG91Z2h0LXNpZ25hdHVyZQ==";

/// Text pieces per stream chunk.
const WORDS_PER_CHUNK: usize = 2;

#[derive(Debug)]
enum Part {
    Thought(String),
    Text(String),
    Call { name: String, args: Json },
}

/// The reply, decided once and rendered whole or as chunks.
#[derive(Debug)]
pub(crate) struct Plan {
    api: Api,
    model: String,
    response_id: String,
    parts: Vec<Part>,
    finish: &'static str,
    safety: Safety,
    signature: bool,
    prompt: u64,
    cached: u64,
    thoughts: u64,
}

impl Plan {
    pub(crate) fn new(req: &Checked<'_>, b: Behavior, model: &str, api: Api, number: u64) -> Plan {
        let mut parts = Vec::new();
        let mut finish = "STOP";
        if b.thinking && req.include_thoughts {
            parts.push(Part::Thought("Thinking about the request.".into()));
        }
        let callable: Vec<_> = if req.allowed.is_empty() {
            req.functions.iter().collect()
        } else {
            req.functions.iter().filter(|f| req.allowed.contains(&f.name)).collect()
        };
        // https://ai.google.dev/gemini-api/docs/function-calling#function_calling_modes
        let wants_calls = match req.mode.as_str() {
            "NONE" => false,
            "ANY" => true,
            _ => b.content != Content::Text,
        } && !callable.is_empty();
        if wants_calls {
            let mut picks = vec![0];
            if b.content == Content::ParallelTools {
                picks.push(1 % callable.len());
            }
            if b.content == Content::TextThenTool {
                parts.push(Part::Text(format!("Let me call {}.", callable[0].name)));
            }
            for i in picks {
                let f = callable[i];
                let args =
                    f.schema.map_or_else(|| Json::obj::<&str>([]), |s| example_from_schema(s, f.name, 0));
                parts.push(Part::Call { name: f.name.to_owned(), args });
            }
        } else {
            let said = if req.heard.is_empty() {
                "You said nothing.".to_owned()
            } else {
                format!("You said: {}", req.heard)
            };
            let text = match (req.response_mime, req.response_schema) {
                (Some("application/json"), Some(schema)) => example_from_schema(schema, "value", 0).to_text(),
                (Some("application/json"), None) => Json::obj([("text", Json::str(said))]).to_text(),
                (Some("text/x.enum"), Some(schema)) => match example_from_schema(schema, "value", 0) {
                    Json::Str(s) => s,
                    other => other.to_text(),
                },
                _ => said,
            };
            let pieces = word_pieces(&text);
            let mut keep = pieces.len();
            if let Some(max) = req.max_output_tokens {
                keep = keep.min(usize::try_from(max).unwrap_or(usize::MAX));
            }
            if b.stop == Stop::MaxTokens {
                keep = keep.min(3);
            }
            if keep < pieces.len() || b.stop == Stop::MaxTokens {
                finish = "MAX_TOKENS";
            }
            parts.push(Part::Text(pieces[..keep].concat()));
        }
        Plan {
            api,
            model: model.to_owned(),
            response_id: format!("mock-response-{number}"),
            parts,
            finish,
            safety: b.safety,
            signature: b.thinking,
            prompt: req.prompt_tokens,
            cached: if b.cache { req.prompt_tokens.div_ceil(2) } else { 0 },
            thoughts: if b.thinking { THOUGHTS_TOKENS } else { 0 },
        }
    }

    /// Output tokens of the parts: one per text word, one per function call (thoughts are
    /// counted separately).
    fn tokens(parts: &[&Part]) -> u64 {
        parts
            .iter()
            .map(|p| match p {
                Part::Thought(_) => 0,
                Part::Text(t) => word_pieces(t).len() as u64,
                Part::Call { .. } => 1,
            })
            .sum()
    }

    fn part_json(&self, p: &Part, first_call: bool) -> Json {
        match p {
            Part::Thought(t) => Json::obj([("text", Json::str(t)), ("thought", Json::Bool(true))]),
            Part::Text(t) => Json::obj([("text", Json::str(t))]),
            Part::Call { name, args } => {
                let call = Json::obj([("name", Json::str(name)), ("args", args.clone())]);
                let mut entries = vec![("functionCall".to_owned(), call)];
                if self.signature && first_call {
                    entries.push(("thoughtSignature".to_owned(), Json::str(THOUGHT_SIGNATURE)));
                }
                Json::Obj(entries)
            }
        }
    }

    /// `usageMetadata` with `candidates` output tokens so far.
    fn usage(&self, candidates: Option<u64>) -> Json {
        let mut u = vec![("promptTokenCount".to_owned(), Json::int(self.prompt))];
        if let Some(c) = candidates {
            u.push(("candidatesTokenCount".to_owned(), Json::int(c)));
        }
        u.push((
            "totalTokenCount".to_owned(),
            Json::int(self.prompt + candidates.unwrap_or(0) + self.thoughts),
        ));
        if self.cached > 0 {
            u.push(("cachedContentTokenCount".to_owned(), Json::int(self.cached)));
        }
        let details = |n: u64| {
            Json::Arr(vec![Json::obj([("modality", Json::str("TEXT")), ("tokenCount", Json::int(n))])])
        };
        u.push(("promptTokensDetails".to_owned(), details(self.prompt)));
        if self.cached > 0 {
            u.push(("cacheTokensDetails".to_owned(), details(self.cached)));
        }
        if self.thoughts > 0 {
            u.push(("thoughtsTokenCount".to_owned(), Json::int(self.thoughts)));
        }
        if self.api == Api::Vertex {
            u.push(("trafficType".to_owned(), Json::str("ON_DEMAND")));
        }
        Json::Obj(u)
    }

    fn safety_ratings(blocked: bool) -> Json {
        let rating = |cat: &str, prob: &str, block: bool| {
            let mut r =
                vec![("category".to_owned(), Json::str(cat)), ("probability".to_owned(), Json::str(prob))];
            if block {
                r.push(("blocked".to_owned(), Json::Bool(true)));
            }
            Json::Obj(r)
        };
        Json::Arr(vec![
            rating("HARM_CATEGORY_SEXUALLY_EXPLICIT", "NEGLIGIBLE", false),
            rating("HARM_CATEGORY_HATE_SPEECH", "NEGLIGIBLE", false),
            rating("HARM_CATEGORY_HARASSMENT", "NEGLIGIBLE", false),
            rating("HARM_CATEGORY_DANGEROUS_CONTENT", "HIGH", blocked),
        ])
    }

    /// One `GenerateContentResponse` holding `parts` (all of them when final).
    fn response(&self, parts: &[&Part], candidates_so_far: u64, last: bool) -> Json {
        let mut out = Vec::new();
        match self.safety {
            // https://ai.google.dev/api/generate-content#PromptFeedback: no candidates at all.
            Safety::Prompt => {
                out.push((
                    "promptFeedback".to_owned(),
                    Json::obj([
                        ("blockReason", Json::str("SAFETY")),
                        ("safetyRatings", Self::safety_ratings(true)),
                    ]),
                ));
                out.push(("usageMetadata".to_owned(), self.usage(None)));
            }
            // https://ai.google.dev/api/generate-content#FinishReason: SAFETY, content withheld.
            Safety::Response => {
                let cand = Json::obj([
                    ("finishReason", Json::str("SAFETY")),
                    ("index", Json::int(0)),
                    ("safetyRatings", Self::safety_ratings(true)),
                ]);
                out.push(("candidates".to_owned(), Json::Arr(vec![cand])));
                out.push(("usageMetadata".to_owned(), self.usage(None)));
            }
            Safety::None => {
                let mut first_call = true;
                let parts_json = parts
                    .iter()
                    .map(|p| {
                        let j = self.part_json(p, first_call);
                        first_call &= !matches!(p, Part::Call { .. });
                        j
                    })
                    .collect();
                let mut cand = vec![(
                    "content".to_owned(),
                    Json::obj([("parts", Json::Arr(parts_json)), ("role", Json::str("model"))]),
                )];
                if last {
                    cand.push(("finishReason".to_owned(), Json::str(self.finish)));
                }
                cand.push(("index".to_owned(), Json::int(0)));
                out.push(("candidates".to_owned(), Json::Arr(vec![Json::Obj(cand)])));
                out.push(("usageMetadata".to_owned(), self.usage(Some(candidates_so_far))));
            }
        }
        out.push(("modelVersion".to_owned(), Json::str(&self.model)));
        if self.api == Api::Vertex {
            out.push(("createTime".to_owned(), Json::str("2025-01-01T00:00:00.000000Z")));
        }
        out.push(("responseId".to_owned(), Json::str(&self.response_id)));
        Json::Obj(out)
    }

    /// The whole response (non-streaming).
    pub(crate) fn full(&self) -> String {
        let parts: Vec<&Part> = self.parts.iter().collect();
        self.response(&parts, Self::tokens(&parts), true).to_text()
    }

    /// The stream chunks: a thought chunk, text in chunks of two words, all function calls in
    /// one chunk; the last chunk has `finishReason`. Every chunk carries `usageMetadata` with the
    /// cumulative `candidatesTokenCount` so far (set, never add). Safety blocks are one chunk.
    pub(crate) fn chunks(&self) -> Vec<Json> {
        if self.safety != Safety::None {
            return vec![self.response(&[], 0, true)];
        }
        let mut groups: Vec<Vec<Part>> = Vec::new();
        for p in &self.parts {
            match p {
                Part::Thought(t) => groups.push(vec![Part::Thought(t.clone())]),
                Part::Text(t) => {
                    for chunk in word_pieces(t).chunks(WORDS_PER_CHUNK) {
                        groups.push(vec![Part::Text(chunk.concat())]);
                    }
                }
                Part::Call { name, args } => match groups.last_mut() {
                    Some(g) if matches!(g.first(), Some(Part::Call { .. })) => {
                        g.push(Part::Call { name: name.clone(), args: args.clone() })
                    }
                    _ => groups.push(vec![Part::Call { name: name.clone(), args: args.clone() }]),
                },
            }
        }
        if groups.is_empty() {
            groups.push(vec![Part::Text(String::new())]);
        }
        let n = groups.len();
        let mut so_far = 0;
        groups
            .iter()
            .enumerate()
            .map(|(i, g)| {
                let refs: Vec<&Part> = g.iter().collect();
                so_far += Self::tokens(&refs);
                self.response(&refs, so_far, i + 1 == n)
            })
            .collect()
    }
}

/// `data: <json>\r\n\r\n`: the Gemini API frames SSE with CRLF line ends.
pub(crate) fn sse(data: &str) -> Bytes {
    Bytes::from(format!("data: {data}\r\n\r\n"))
}

/// How many chunks a failing stream sends first: two, but never the last one.
pub(crate) fn failure_point(chunks: usize) -> usize {
    2.min(chunks.saturating_sub(1))
}

/// A deterministic vector for `text`: FNV-1a of the text and the index, mapped into [-1, 1]
/// with four decimals.
pub(crate) fn embedding(text: &str, dims: usize) -> Json {
    let values = (0..dims)
        .map(|i| {
            let mut h: u64 = 0xcbf2_9ce4_8422_2325;
            for b in text.bytes().chain((i as u64).to_le_bytes()) {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0000_0100_0000_01b3);
            }
            let v = f64::from(u32::try_from(h % 20_001).unwrap_or(0)) / 10_000.0 - 1.0;
            serde_json::Number::from_f64(v).map_or(Json::Null, Json::Num)
        })
        .collect();
    Json::Arr(values)
}
