//! Server-sent events framing: split a byte stream into events without buffering more than one.
//!
//! Spec: <https://html.spec.whatwg.org/multipage/server-sent-events.html>. Upstream bodies arrive in
//! arbitrary pieces; [`EventSplitter`] holds at most one incomplete event, capped in size.

use bytes::{Bytes, BytesMut};

/// The cap on one event's size: a larger event is a broken or hostile upstream.
pub const MAX_EVENT_BYTES: usize = 4 * 1024 * 1024;

/// An event exceeded [`MAX_EVENT_BYTES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventTooLarge;

/// Accumulates bytes and yields complete events (each including its terminating blank line).
#[derive(Debug, Default)]
pub struct EventSplitter {
    pending: BytesMut,
}

impl EventSplitter {
    /// Feeds one chunk and returns the complete events it finished, in order.
    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<Bytes>, EventTooLarge> {
        // Search only the new bytes (plus 3 bytes of overlap for a boundary split across chunks).
        let search_from = self.pending.len().saturating_sub(3);
        self.pending.extend_from_slice(chunk);
        let mut events = Vec::new();
        let mut from = search_from;
        while let Some(end) = find_event_end(&self.pending[from..]) {
            let event = self.pending.split_to(from + end).freeze();
            events.push(event);
            from = 0;
        }
        if self.pending.len() > MAX_EVENT_BYTES {
            return Err(EventTooLarge);
        }
        Ok(events)
    }

    /// Bytes of an incomplete event, returned when the stream ends.
    pub fn finish(&mut self) -> Option<Bytes> {
        (!self.pending.is_empty()).then(|| self.pending.split().freeze())
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }
}

/// Index just past the first blank line (`\n\n`, `\r\n\r\n` or `\r\r`) in `buf`.
fn find_event_end(buf: &[u8]) -> Option<usize> {
    let mut i = 0;
    while let Some(pos) = memchr::memchr2(b'\n', b'\r', &buf[i..]) {
        let at = i + pos;
        let rest = &buf[at..];
        if rest.starts_with(b"\n\n") || rest.starts_with(b"\r\r") {
            return Some(at + 2);
        }
        if rest.starts_with(b"\r\n\r\n") {
            return Some(at + 4);
        }
        if rest.starts_with(b"\n\r\n") {
            return Some(at + 3);
        }
        i = at + 1;
    }
    None
}

/// The `data` of one event (multiple `data:` lines joined by `\n`), or `None` without data.
pub fn event_data(event: &[u8]) -> Option<std::borrow::Cow<'_, [u8]>> {
    let mut lines = event.split(|&b| b == b'\n').map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let mut data: Option<std::borrow::Cow<'_, [u8]>> = None;
    for line in lines.by_ref() {
        let Some(value) = line.strip_prefix(b"data:") else { continue };
        let value = value.strip_prefix(b" ").unwrap_or(value);
        data = Some(match data {
            None => std::borrow::Cow::Borrowed(value),
            Some(prev) => {
                let mut joined = prev.into_owned();
                joined.push(b'\n');
                joined.extend_from_slice(value);
                std::borrow::Cow::Owned(joined)
            }
        });
    }
    data
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_events_across_arbitrary_chunk_boundaries() {
        let stream = b"data: {\"a\":1}\n\ndata: {\"b\":2}\r\n\r\n: comment\n\ndata: [DONE]\n\n";
        for cut in 0..stream.len() {
            let mut splitter = EventSplitter::default();
            let mut events = splitter.push(&stream[..cut]).unwrap();
            events.extend(splitter.push(&stream[cut..]).unwrap());
            assert!(splitter.is_empty(), "cut at {cut}");
            let joined: Vec<u8> = events.iter().flat_map(|e| e.to_vec()).collect();
            assert_eq!(joined, stream.to_vec(), "cut at {cut}");
            assert_eq!(events.len(), 4, "cut at {cut}");
        }
    }

    #[test]
    fn reads_data_lines() {
        assert_eq!(event_data(b"data: {\"a\":1}\n\n").as_deref(), Some(&b"{\"a\":1}"[..]));
        assert_eq!(event_data(b"event: x\r\ndata:1\r\ndata: 2\r\n\r\n").as_deref(), Some(&b"1\n2"[..]));
        assert_eq!(event_data(b": keep-alive\n\n"), None);
    }

    #[test]
    fn caps_an_unterminated_event() {
        let mut splitter = EventSplitter::default();
        let big = vec![b'x'; MAX_EVENT_BYTES + 1];
        assert_eq!(splitter.push(&big), Err(EventTooLarge));
    }
}
