//! `x-request-id`: the caller's, when it sent a sane one, or a new one.

use http::{HeaderMap, HeaderValue};
use std::fmt;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// A per-process random prefix plus a counter: unique across replicas and restarts without a
/// random number generator on the request path.
static PREFIX: LazyLock<u64> = LazyLock::new(|| {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos(),
    );
    hasher.write_u32(std::process::id());
    hasher.finish()
});
static COUNTER: AtomicU64 = AtomicU64::new(0);

pub struct RequestId(HeaderValue);

impl RequestId {
    pub fn from_headers(headers: &HeaderMap) -> Self {
        if let Some(value) = headers.get("x-request-id") {
            let bytes = value.as_bytes();
            if !bytes.is_empty() && bytes.len() <= 128 && bytes.iter().all(|b| b.is_ascii_graphic()) {
                return RequestId(value.clone());
            }
        }
        Self::generate()
    }

    pub fn generate() -> Self {
        let text = format!("{:016x}{:08x}", *PREFIX, COUNTER.fetch_add(1, Relaxed));
        RequestId(HeaderValue::from_str(&text).unwrap_or(HeaderValue::from_static("unknown")))
    }

    pub fn header_ref(&self) -> &HeaderValue {
        &self.0
    }

    pub fn header_value(&self) -> HeaderValue {
        self.0.clone()
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.to_str().unwrap_or("?"))
    }
}
