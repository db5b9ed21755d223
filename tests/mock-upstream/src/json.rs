//! Infallible hand-rolled JSON/text writers used on the hot path: string escaping, integers,
//! word counting and a tiny base64 encoder.

/// Appends `s` as a JSON string literal (with quotes) to `buf`.
pub(crate) fn push_str(buf: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    buf.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => b"",
            _ => continue,
        };
        buf.extend_from_slice(&bytes[start..i]);
        if esc.is_empty() {
            buf.extend_from_slice(b"\\u00");
            buf.push(HEX[usize::from(b >> 4)]);
            buf.push(HEX[usize::from(b & 0xf)]);
        } else {
            buf.extend_from_slice(esc);
        }
        start = i + 1;
    }
    buf.extend_from_slice(&bytes[start..]);
    buf.push(b'"');
}

/// Appends the decimal form of `n` to `buf`.
pub(crate) fn push_u64(buf: &mut Vec<u8>, mut n: u64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    loop {
        i -= 1;
        // `n % 10` is < 10, so the cast cannot truncate.
        tmp[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    buf.extend_from_slice(&tmp[i..]);
}

/// Number of whitespace-separated words in `s`.
pub(crate) fn count_words(s: &str) -> u64 {
    s.split_whitespace().count() as u64
}

/// Appends the standard (padded) base64 encoding of `input` to `buf`.
pub(crate) fn push_base64(buf: &mut Vec<u8>, input: &[u8]) {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let sym = |v: u32| ALPHABET[(v & 63) as usize];
    let mut chunks = input.chunks_exact(3);
    for c in &mut chunks {
        let v = u32::from(c[0]) << 16 | u32::from(c[1]) << 8 | u32::from(c[2]);
        buf.extend_from_slice(&[sym(v >> 18), sym(v >> 12), sym(v >> 6), sym(v)]);
    }
    match *chunks.remainder() {
        [a] => {
            let v = u32::from(a) << 16;
            buf.extend_from_slice(&[sym(v >> 18), sym(v >> 12), b'=', b'=']);
        }
        [a, b] => {
            let v = u32::from(a) << 16 | u32::from(b) << 8;
            buf.extend_from_slice(&[sym(v >> 18), sym(v >> 12), sym(v >> 6), b'=']);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_encodes() {
        let mut b = Vec::new();
        push_str(&mut b, "a\"b\\c\nd\u{1}é");
        let parsed: String = serde_json::from_slice(&b).unwrap();
        assert_eq!(parsed, "a\"b\\c\nd\u{1}é");

        let mut n = Vec::new();
        push_u64(&mut n, 0);
        n.push(b',');
        push_u64(&mut n, u64::MAX);
        assert_eq!(n, format!("0,{}", u64::MAX).as_bytes());

        for (input, want) in
            [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foobar", "Zm9vYmFy")]
        {
            let mut out = Vec::new();
            push_base64(&mut out, input.as_bytes());
            assert_eq!(out, want.as_bytes());
        }
        assert_eq!(count_words("  a b\n c  "), 3);
    }
}
