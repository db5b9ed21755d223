//! `POST /v1/embeddings`: input decoding (string | [string] | [int] | [[int]]), deterministic
//! hash-seeded vectors, and float or base64 (little-endian f32) encoding.

use std::borrow::Cow;
use std::io::Write;

use hyper::Response;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::behavior::{Behavior, bad_request, json_response, status_error};
use crate::body::MockBody;
use crate::json::{count_words, push_base64, push_str, push_u64};

const DEFAULT_DIMENSIONS: u32 = 8;
const MAX_DIMENSIONS: u32 = 65_536;

#[derive(Deserialize)]
struct EmbeddingsRequest<'a> {
    #[serde(borrow, default)]
    model: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    input: Option<&'a RawValue>,
    #[serde(default)]
    dimensions: Option<u32>,
    #[serde(borrow, default)]
    encoding_format: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Text<'a>(#[serde(borrow)] Cow<'a, str>);

enum Inputs<'a> {
    Texts(Vec<Text<'a>>),
    Tokens(Vec<Vec<i64>>),
}

fn parse_inputs(raw: &RawValue) -> Option<Inputs<'_>> {
    let s = raw.get();
    if s.starts_with('"') {
        return serde_json::from_str(s).ok().map(|t| Inputs::Texts(vec![t]));
    }
    if let Ok(v) = serde_json::from_str::<Vec<Text<'_>>>(s) {
        return Some(Inputs::Texts(v));
    }
    if let Ok(v) = serde_json::from_str::<Vec<i64>>(s) {
        return Some(Inputs::Tokens(vec![v]));
    }
    serde_json::from_str::<Vec<Vec<i64>>>(s).ok().map(Inputs::Tokens)
}

/// FNV-1a over `bytes`, continuing from `h`.
fn fnv1a(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Component `i` of the vector for an input hashing to `seed`, in [-1, 1).
fn component(seed: u64, i: u32) -> f32 {
    // 24 random bits are exactly representable in an f32.
    let bits = (splitmix64(seed ^ u64::from(i).wrapping_mul(0x2545_f491_4f6c_dd1d)) >> 40) as u32;
    (bits as f32) / 8_388_608.0 - 1.0
}

pub(crate) async fn handle(body: &[u8]) -> Response<MockBody> {
    let req: EmbeddingsRequest<'_> = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(e) => {
            let msg = format!("We could not parse the JSON body of your request: {e}");
            return bad_request(&msg);
        }
    };
    let Some(model) = req.model.as_deref() else {
        return bad_request("you must provide a model parameter");
    };
    let behavior = Behavior::from_model(model);
    if let Behavior::Error(status) = behavior {
        return status_error(status);
    }
    let Some(inputs) = req.input.and_then(parse_inputs) else {
        return bad_request(
            "'input' must be a string, an array of strings, an array of integers, or an array of integer arrays",
        );
    };
    let dims = req.dimensions.unwrap_or(DEFAULT_DIMENSIONS);
    if dims == 0 || dims > MAX_DIMENSIONS {
        return bad_request("'dimensions' must be between 1 and 65536");
    }
    let base64 = match req.encoding_format.as_deref() {
        None | Some("float") => false,
        Some("base64") => true,
        Some(_) => return bad_request("'encoding_format' must be 'float' or 'base64'"),
    };
    let seeds: Vec<(u64, u64)> = match &inputs {
        Inputs::Texts(v) => {
            v.iter().map(|t| (fnv1a(FNV_OFFSET, t.0.as_bytes()), count_words(&t.0).max(1))).collect()
        }
        Inputs::Tokens(v) => v
            .iter()
            .map(|toks| {
                let h = toks.iter().fold(FNV_OFFSET, |h, t| fnv1a(h, &t.to_le_bytes()));
                (h, toks.len() as u64)
            })
            .collect(),
    };
    if seeds.is_empty() {
        return bad_request("'input' cannot be an empty array");
    }
    let mut model_json = Vec::with_capacity(model.len() + 2);
    push_str(&mut model_json, model);
    drop(req);

    if let Behavior::Slow(d) = behavior {
        tokio::time::sleep(d).await;
    }

    let per_vec = if base64 { dims as usize * 4 / 3 + 8 } else { dims as usize * 12 };
    let mut buf = Vec::with_capacity(96 + model_json.len() + seeds.len() * (per_vec + 48));
    let mut raw = Vec::with_capacity(if base64 { dims as usize * 4 } else { 0 });
    buf.extend_from_slice(b"{\"object\":\"list\",\"data\":[");
    let mut tokens = 0u64;
    for (index, &(seed, n)) in seeds.iter().enumerate() {
        tokens += n;
        if index > 0 {
            buf.push(b',');
        }
        buf.extend_from_slice(b"{\"object\":\"embedding\",\"index\":");
        push_u64(&mut buf, index as u64);
        buf.extend_from_slice(b",\"embedding\":");
        if base64 {
            raw.clear();
            for i in 0..dims {
                raw.extend_from_slice(&component(seed, i).to_le_bytes());
            }
            buf.push(b'"');
            push_base64(&mut buf, &raw);
            buf.push(b'"');
        } else {
            buf.push(b'[');
            for i in 0..dims {
                if i > 0 {
                    buf.push(b',');
                }
                // Writing to a Vec cannot fail; f32 Display is valid JSON (no exponent, finite).
                let _ = write!(buf, "{}", component(seed, i));
            }
            buf.push(b']');
        }
        buf.push(b'}');
    }
    buf.extend_from_slice(b"],\"model\":");
    buf.extend_from_slice(&model_json);
    buf.extend_from_slice(b",\"usage\":{\"prompt_tokens\":");
    push_u64(&mut buf, tokens);
    buf.extend_from_slice(b",\"total_tokens\":");
    push_u64(&mut buf, tokens);
    buf.extend_from_slice(b"}}");
    json_response(MockBody::full(buf))
}
