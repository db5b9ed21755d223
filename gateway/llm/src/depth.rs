//! How deeply a JSON text nests, measured without parsing it.
//!
//! The gateway reads a request as a [`crate::RawObject`] whose values stay unparsed text, and
//! serde_json skips such values without its recursion limit; so a body nested 100,000 levels
//! deep would be routed and forwarded, and fail later in a translator or at the provider. This
//! scanner answers "deeper than the limit?" in one pass over the bytes, with no allocation and
//! no recursion, so it can run on every request before anything else reads the body.
//!
//! It only counts brackets and skips strings (escapes included); whether the text is valid JSON
//! is the parser's business afterwards.

/// The deepest nesting the gateway accepts: serde_json's own recursion limit, so every body the
/// gateway accepts is one its typed translators can parse too. Real requests nest far less
/// (a chat request with tools and a JSON schema stays under 20 levels; each level of a nested
/// schema adds two).
pub const MAX_DEPTH: usize = 128;

/// Whether `json` opens more than `limit` arrays and objects inside one another.
/// Brackets inside strings do not count; `\"` and `\\` inside strings are handled.
pub fn nests_deeper_than(json: &[u8], limit: usize) -> bool {
    let mut depth = 0usize;
    let mut at = 0;
    while let Some(found) = memchr::memchr3(b'"', b'[', b'{', &json[at..]).map(|i| at + i) {
        // Closing brackets between two openers lower the depth: count them in the skipped run.
        depth = depth.saturating_sub(closers(&json[at..found]));
        match json[found] {
            b'"' => match string_end(json, found + 1) {
                Some(end) => at = end,
                // An unterminated string: nothing after it can open a level.
                None => return false,
            },
            _ => {
                depth += 1;
                if depth > limit {
                    return true;
                }
                at = found + 1;
            }
        }
    }
    false
}

/// The number of `]` and `}` in a run of bytes that holds no string.
fn closers(run: &[u8]) -> usize {
    memchr::memchr2_iter(b']', b'}', run).count()
}

/// The index just past the quote that closes the string whose content starts at `from`.
fn string_end(json: &[u8], from: usize) -> Option<usize> {
    let mut at = from;
    loop {
        let found = at + memchr::memchr2(b'"', b'\\', json.get(at..)?)?;
        if json[found] == b'"' {
            return Some(found + 1);
        }
        // A backslash escapes the next byte, whatever it is (`\"`, `\\`, `\u`...).
        at = found + 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(levels: usize) -> String {
        format!("{}{}", "[".repeat(levels), "]".repeat(levels))
    }

    #[test]
    fn counts_arrays_and_objects() {
        assert!(!nests_deeper_than(b"{}", 1));
        assert!(nests_deeper_than(b"{}", 0));
        assert!(!nests_deeper_than(br#"{"a":[1,{"b":2}]}"#, 3));
        assert!(nests_deeper_than(br#"{"a":[1,{"b":2}]}"#, 2));
        assert!(!nests_deeper_than(nested(MAX_DEPTH).as_bytes(), MAX_DEPTH));
        assert!(nests_deeper_than(nested(MAX_DEPTH + 1).as_bytes(), MAX_DEPTH));
        assert!(nests_deeper_than(nested(100_000).as_bytes(), MAX_DEPTH));
        assert!(!nests_deeper_than(b"", 0) && !nests_deeper_than(b"42", 0));
    }

    #[test]
    fn siblings_do_not_add_up() {
        // Closing brackets lower the depth, also when they sit next to the next opener.
        let siblings = format!(r#"{{"a":[{}]}}"#, vec!["[[1]]"; 1000].join(","));
        assert!(!nests_deeper_than(siblings.as_bytes(), 4));
        assert!(nests_deeper_than(siblings.as_bytes(), 3));
        assert!(!nests_deeper_than(b"[][][][][]", 1));
        assert!(!nests_deeper_than(b"[{}],[{}],[{}]", 2));
    }

    #[test]
    fn brackets_inside_strings_do_not_count() {
        let text = format!(r#"{{"content":"{}{}"}}"#, "[{".repeat(500), "]}".repeat(10));
        assert!(!nests_deeper_than(text.as_bytes(), 1));
        // The closers inside a string must not lower the depth either.
        assert!(nests_deeper_than(br#"[[{"a":"]]]]]]"}]]"#, 2));
    }

    #[test]
    fn escaped_quotes_and_backslashes_are_skipped() {
        // `\"` does not end the string, so the brackets after it are still text.
        assert!(!nests_deeper_than(br#"{"a":"say \"[[[[\" now"}"#, 1));
        // `\\` ends in a real quote: the brackets after it count.
        assert!(nests_deeper_than(br#"{"a":"dir\\","b":[[1]]}"#, 2));
        assert!(!nests_deeper_than(br#"{"a":"dir\\","b":[[1]]}"#, 3));
        // `\\\"`: an escaped backslash, then an escaped quote; the string goes on.
        assert!(!nests_deeper_than(br#"{"a":"x\\\"[[[","b":1}"#, 1));
        // A unicode escape is plain text.
        assert!(!nests_deeper_than(br#"{"a":"\u005b\u005b"}"#, 1));
    }

    #[test]
    fn malformed_text_does_not_confuse_the_count() {
        // An unterminated string ends the scan; the parser refuses the body afterwards.
        assert!(!nests_deeper_than(br#"{"a":"[[[["#, 1));
        // A trailing backslash at the very end.
        assert!(!nests_deeper_than(br#"{"a":"\"#, 1));
        // More closers than openers never underflow.
        assert!(!nests_deeper_than(b"]]]]}}}}[", 1));
        assert!(nests_deeper_than(b"]]]]}}}}[[", 1));
    }
}
