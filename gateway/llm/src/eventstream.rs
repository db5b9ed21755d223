//! AWS event-stream framing (`application/vnd.amazon.eventstream`, Bedrock's ConverseStream):
//! split a byte stream into whole messages without buffering more than one.
//!
//! A message is a 12-byte prelude (total length, headers length, prelude CRC32), headers, payload
//! and a message CRC32 (<https://docs.aws.amazon.com/transcribe/latest/dg/streaming-setting-up.html>
//! describes the encoding). This splitter only reads the total length to find each message's end
//! and caps it; the message itself (both CRCs, headers) is decoded by `aws-smithy-eventstream` in
//! the stream translator ([`crate::bedrock::BedrockStream`]), so a corrupt message is reported in
//! the client's dialect like any other upstream error.

use crate::sse::MAX_EVENT_BYTES;
use bytes::{Bytes, BytesMut};

/// The smallest message: prelude (12 bytes) and message CRC (4), no headers, no payload.
const MIN_MESSAGE_BYTES: usize = 16;

/// Why the byte stream cannot be split into messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// A message longer than [`MAX_EVENT_BYTES`].
    TooLarge,
    /// A prelude whose length cannot be a message.
    Invalid,
}

/// Accumulates bytes and yields complete messages, each exactly as it arrived.
#[derive(Debug, Default)]
pub struct MessageSplitter {
    pending: BytesMut,
}

impl MessageSplitter {
    /// Feeds one chunk and returns the complete messages it finished, in order.
    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<Bytes>, FrameError> {
        self.pending.extend_from_slice(chunk);
        let mut messages = Vec::new();
        while let Some(prelude) = self.pending.first_chunk::<4>() {
            let total = u32::from_be_bytes(*prelude) as usize;
            if total < MIN_MESSAGE_BYTES {
                return Err(FrameError::Invalid);
            }
            if total > MAX_EVENT_BYTES {
                return Err(FrameError::TooLarge);
            }
            if self.pending.len() < total {
                break;
            }
            messages.push(self.pending.split_to(total).freeze());
        }
        Ok(messages)
    }

    /// Bytes of an incomplete message, returned when the stream ends.
    pub fn finish(&mut self) -> Option<Bytes> {
        (!self.pending.is_empty()).then(|| self.pending.split().freeze())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bedrock::encode_event;

    #[test]
    fn splits_messages_across_arbitrary_chunk_boundaries() {
        let mut stream = encode_event("event", (":event-type", "messageStart"), br#"{"role":"assistant"}"#);
        stream.extend(encode_event("event", (":event-type", "messageStop"), br#"{"stopReason":"end_turn"}"#));
        for cut in 0..stream.len() {
            let mut splitter = MessageSplitter::default();
            let mut messages = splitter.push(&stream[..cut]).unwrap();
            messages.extend(splitter.push(&stream[cut..]).unwrap());
            assert_eq!(messages.len(), 2, "cut at {cut}");
            assert_eq!(messages.concat(), stream, "cut at {cut}");
            assert_eq!(splitter.finish(), None);
        }
    }

    #[test]
    fn refuses_impossible_and_oversized_lengths() {
        assert_eq!(MessageSplitter::default().push(&[0, 0, 0, 3]), Err(FrameError::Invalid));
        assert_eq!(MessageSplitter::default().push(&[0xff, 0, 0, 0]), Err(FrameError::TooLarge));
        let mut splitter = MessageSplitter::default();
        assert_eq!(splitter.push(&[0, 0, 0, 20, 1]), Ok(Vec::new()));
        assert_eq!(splitter.finish().map(|b| b.len()), Some(5));
    }
}
