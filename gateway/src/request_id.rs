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
        RequestId(written(*PREFIX, COUNTER.fetch_add(1, Relaxed)))
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

/// `prefix` in 16 hex digits, then `count` in at least 8.
fn written(prefix: u64, count: u64) -> HeaderValue {
    let mut text = [0u8; 32];
    crate::hex::write_lower(&mut text[..16], &prefix.to_be_bytes());
    crate::hex::write_lower(&mut text[16..], &count.to_be_bytes());
    // The counter's leading zero digits, beyond the eight it always shows.
    let skip = ((count.leading_zeros() / 4) as usize).min(8);
    text.copy_within(16 + skip.., 16);
    HeaderValue::from_bytes(&text[..32 - skip]).unwrap_or(HeaderValue::from_static("unknown"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_new_id_is_the_prefix_then_the_counter_in_hex() {
        let prefix = 0x0123_4567_89ab_cdef;
        for count in [0, 1, 0xabc, 0xffff_ffff, 0x1_0000_0000, 0x12_3456_789a, u64::MAX] {
            assert_eq!(
                super::written(prefix, count),
                format!("{prefix:016x}{count:08x}").as_str(),
                "{count:#x}"
            );
        }
    }
}
