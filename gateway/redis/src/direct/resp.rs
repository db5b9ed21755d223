//! Replies read off a direct connection: where each one ends in what has been read, and its
//! value (RESP2, the protocol these connections speak). [`crate::Commands`] reads its own bytes
//! back with it too, for connections that take a redis-rs pipeline.
//!
//! The replies an admission gets (simple strings, integers, bulk strings, arrays of them) are
//! parsed here. Anything else (an error reply, a type these connections never ask for) goes to
//! redis-rs's parser, which knows every kind of error Redis sends. It is not the first choice
//! because it zero-fills an 8 KiB read buffer for every value: 7 replies to one admission
//! transaction made it ~80,000 instructions per request, more than all the rest of the gateway's
//! code for that request (bench/governed-2.md, "The reply parser").

use super::io_error;
use redis::{RedisResult, Value};

/// Deeper than any reply the gateway asks for; a deeper one is refused, not recursed into.
const MAX_DEPTH: usize = 16;

/// The replies to one exchange, parsed as they are read: each read parses only what it added.
pub(super) struct Replies {
    wanted: usize,
    pub(super) values: Vec<Value>,
    /// Where the next reply starts in what has been read.
    at: usize,
}

impl Replies {
    pub(super) fn new(wanted: usize) -> Self {
        Replies { wanted, values: Vec::with_capacity(wanted), at: 0 }
    }

    /// Parses the replies completed in `read` (everything read so far); true once all of them
    /// are there, an error if more than that was read.
    pub(super) fn parse(&mut self, read: &[u8]) -> RedisResult<bool> {
        while self.values.len() < self.wanted {
            let Some((value, end)) = reply(read, self.at, 0)? else {
                return Ok(false);
            };
            self.values.push(value);
            self.at = end;
        }
        if self.at != read.len() {
            return Err(io_error("Redis sent more than the replies asked for"));
        }
        Ok(true)
    }
}

/// The reply starting at `at` and where it ends, once all of it has been read (`None` before).
pub(crate) fn reply(read: &[u8], at: usize, depth: usize) -> RedisResult<Option<(Value, usize)>> {
    let Some(line) = read.get(at..).and_then(|rest| rest.windows(2).position(|pair| pair == b"\r\n")) else {
        return Ok(None);
    };
    let (kind, text) = (read[at], &read[at + 1..at + line]);
    let next = at + line + 2;
    let number = || std::str::from_utf8(text).ok()?.parse::<i64>().ok();
    let value = match (kind, number()) {
        (b'+', _) if text == b"OK" => Value::Okay,
        (b'+', _) => Value::SimpleString(String::from_utf8_lossy(text).into_owned()),
        (b':', Some(n)) => Value::Int(n),
        (b'$' | b'*', Some(-1)) => Value::Nil,
        (b'$', Some(len)) if len >= 0 => {
            let end = usize::try_from(len).ok().and_then(|len| next.checked_add(len));
            let Some(end) = end else { return Err(io_error("a bulk string longer than memory")) };
            return match read.get(end..end + 2) {
                None => Ok(None),
                Some(b"\r\n") => Ok(Some((Value::BulkString(read[next..end].to_vec()), end + 2))),
                Some(_) => Err(io_error("a bulk string longer than its length said")),
            };
        }
        (b'*', Some(count)) if count >= 0 && depth < MAX_DEPTH => {
            // Not more than the bytes read can hold: a count is no reason to allocate.
            let mut items = Vec::with_capacity((count as usize).min(read.len() - next));
            let mut end = next;
            for _ in 0..count {
                let Some((item, after)) = reply(read, end, depth + 1)? else { return Ok(None) };
                items.push(item);
                end = after;
            }
            return Ok(Some((Value::Array(items), end)));
        }
        // An error reply, or what these connections never ask for: one line, to redis-rs's parser.
        _ => redis::parse_redis_value(&read[at..next])?,
    };
    Ok(Some((value, next)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whole(read: &[u8]) -> Option<(Value, usize)> {
        reply(read, 0, 0).unwrap()
    }

    #[test]
    fn replies_parse_as_redis_rs_parses_them() {
        let samples: [&[u8]; 9] = [
            b"+OK\r\n",
            b"+QUEUED\r\n",
            b":42\r\n",
            b":-7\r\n",
            b"$3\r\nabc\r\n",
            b"$0\r\n\r\n",
            b"$-1\r\n",
            b"*-1\r\n",
            // A transaction's EXEC: an array holding an MGET array and integers.
            b"*3\r\n*2\r\n$1\r\n7\r\n$-1\r\n:1\r\n:5\r\n",
        ];
        for sample in samples {
            let expected = redis::parse_redis_value(sample).unwrap();
            assert_eq!(whole(sample), Some((expected, sample.len())), "{}", String::from_utf8_lossy(sample));
            for cut in 0..sample.len() {
                assert_eq!(reply(&sample[..cut], 0, 0).unwrap(), None, "cut at {cut}");
            }
        }
    }

    #[test]
    fn an_error_reply_keeps_the_kind_redis_rs_gives_it() {
        let (value, end) = whole(b"-EXECABORT Transaction discarded\r\n+OK\r\n").unwrap();
        assert_eq!(end, 34);
        let Value::ServerError(err) = value else { panic!("{value:?}") };
        assert_eq!(err.code(), "EXECABORT");
        assert_eq!(err.details(), Some("Transaction discarded"));
    }

    #[test]
    fn replies_follow_each_other_and_nothing_may_be_left_over() {
        let mut replies = Replies::new(2);
        assert!(!replies.parse(b":1\r\n").unwrap());
        assert!(replies.parse(b":1\r\n$2\r\nhi\r\n").unwrap());
        assert_eq!(replies.values, [Value::Int(1), Value::BulkString(b"hi".to_vec())]);
        assert!(Replies::new(1).parse(b":1\r\n:2\r\n").is_err(), "more than was asked for");
    }

    #[test]
    fn what_is_not_resp2_is_refused() {
        assert!(reply(b"?junk\r\n", 0, 0).is_err());
        assert!(reply(b":forty\r\n", 0, 0).is_err());
        assert!(reply(b"$2\r\nabc\r\n", 0, 0).is_err(), "longer than its length");
        let deep = "*1\r\n".repeat(MAX_DEPTH + 1) + ":1\r\n";
        assert!(reply(deep.as_bytes(), 0, 0).is_err());
        assert!(
            reply(b"*3000000000\r\n", 0, 0).unwrap().is_none(),
            "incomplete, and nothing allocated for it"
        );
    }
}
