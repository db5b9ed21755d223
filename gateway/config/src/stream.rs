//! The messages of the snapshot stream between the operator and each gateway replica.
//!
//! One long-lived HTTP/2 request per replica (see `docs/stream.md`): the replica's request body
//! and the operator's response body are each a sequence of these messages, one JSON object per
//! line. They live in the contract crate because both sides must agree on them exactly, and
//! because the schema-version negotiation is part of the skew policy.

use crate::document::Changes;
use crate::{ConfigError, ObjectRef, Rejection, Section};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::ops::RangeInclusive;

/// How often each side sends a heartbeat when it has nothing else to say.
pub const HEARTBEAT_EVERY_MS: u64 = 2_000;
/// How long a side waits without hearing anything before it calls the peer dead (three missed
/// heartbeats): a replica then reconnects, the operator forgets the replica.
pub const PEER_DEAD_AFTER_MS: u64 = 3 * HEARTBEAT_EVERY_MS;

/// Replica → operator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ReplicaMessage {
    /// The first message: who the replica is and what it reads.
    Hello {
        /// Pod name (downward API), else the host name.
        replica: String,
        /// The gateway's release, for logs and statuses.
        build: String,
        /// The schema versions it reads (lowest, highest).
        reads: (u32, u32),
        /// What it serves now, if anything (from an earlier connection or its snapshot cache),
        /// so a new operator leader numbers its snapshots above it.
        serving: Option<Served>,
        /// Whether it applies `delta` messages (replicas of older releases do not say, and get
        /// whole snapshots only).
        #[serde(default)]
        deltas: bool,
    },
    /// A snapshot was applied: possibly with entries left out.
    Ack {
        generation: u64,
        hash: String,
        rejected: Vec<WireRejection>,
    },
    /// A snapshot was refused as a whole; the previous one keeps serving.
    Nack {
        generation: u64,
        reasons: Vec<WireProblem>,
    },
    /// A delta did not fit the document the replica holds (or led to another document than the
    /// operator's): send the whole snapshot. The replica keeps serving what it has meanwhile.
    Resync {
        generation: u64,
        reason: String,
    },
    Heartbeat,
}

/// Operator → replica.
///
/// Read through [`WireOperatorMessage`] so a snapshot's document stays raw JSON text: with
/// 10,000 keys it is megabytes, parsed once, entry by entry, on the replica's config thread
/// rather than into a `Value` on the stream's task first (serde cannot keep raw JSON inside an
/// internally tagged enum).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", try_from = "WireOperatorMessage")]
pub enum OperatorMessage {
    /// The answer to `hello`: the schema version every snapshot on this stream will have.
    Welcome {
        operator: String,
        version: u32,
    },
    /// The stream cannot go on (no schema version in common); the replica keeps serving what
    /// it has and retries later.
    Refused {
        reason: String,
    },
    /// A complete snapshot, written in the negotiated version.
    Snapshot {
        generation: u64,
        document: Box<RawValue>,
    },
    /// The changes from the snapshot of generation `base` (the last one sent on this stream) to
    /// generation `generation`, whose document's digest is `hash`.
    Delta {
        generation: u64,
        base: u64,
        hash: String,
        changes: Box<Changes>,
    },
    Heartbeat,
}

/// The fields of every [`OperatorMessage`] in one flat struct, which (unlike the tagged enum)
/// can hold a [`RawValue`]. Unknown fields are ignored, so a newer operator may add some.
#[derive(Deserialize)]
struct WireOperatorMessage {
    #[serde(rename = "type")]
    kind: String,
    operator: Option<String>,
    version: Option<u32>,
    reason: Option<String>,
    generation: Option<u64>,
    document: Option<Box<RawValue>>,
    base: Option<u64>,
    hash: Option<String>,
    changes: Option<Box<Changes>>,
}

impl TryFrom<WireOperatorMessage> for OperatorMessage {
    type Error = String;

    fn try_from(wire: WireOperatorMessage) -> Result<Self, String> {
        let missing = |field: &str| format!("a {} message without {field}", wire.kind);
        Ok(match wire.kind.as_str() {
            "welcome" => OperatorMessage::Welcome {
                operator: wire.operator.clone().ok_or_else(|| missing("operator"))?,
                version: wire.version.ok_or_else(|| missing("version"))?,
            },
            "refused" => {
                OperatorMessage::Refused { reason: wire.reason.clone().ok_or_else(|| missing("reason"))? }
            }
            "snapshot" => OperatorMessage::Snapshot {
                generation: wire.generation.ok_or_else(|| missing("generation"))?,
                document: wire.document.ok_or_else(|| missing("document"))?,
            },
            "delta" => OperatorMessage::Delta {
                generation: wire.generation.ok_or_else(|| missing("generation"))?,
                base: wire.base.ok_or_else(|| missing("base"))?,
                hash: wire.hash.clone().ok_or_else(|| missing("hash"))?,
                changes: wire.changes.ok_or_else(|| missing("changes"))?,
            },
            "heartbeat" => OperatorMessage::Heartbeat,
            other => return Err(format!("unknown message type {other:?}")),
        })
    }
}

/// A snapshot a replica serves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Served {
    pub generation: u64,
    pub hash: String,
}

/// A rejected entry as it travels in an ack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireRejection {
    pub section: String,
    pub name: String,
    pub object: Option<ObjectRef>,
    pub reasons: Vec<WireProblem>,
}

/// One problem as it travels in an ack or a nack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireProblem {
    pub path: String,
    pub reason: String,
    pub object: Option<ObjectRef>,
}

impl From<&ConfigError> for WireProblem {
    fn from(error: &ConfigError) -> Self {
        WireProblem { path: error.path.clone(), reason: error.reason.clone(), object: error.object.clone() }
    }
}

impl From<&Rejection> for WireRejection {
    fn from(rejection: &Rejection) -> Self {
        WireRejection {
            section: rejection.section.as_str().to_owned(),
            name: rejection.name.clone(),
            object: rejection.object.clone(),
            reasons: rejection.errors.iter().map(WireProblem::from).collect(),
        }
    }
}

impl WireRejection {
    /// The section this rejection is about, if it names a known one.
    pub fn section(&self) -> Option<Section> {
        [Section::Providers, Section::Routes, Section::Keys, Section::Policies]
            .into_iter()
            .find(|s| s.as_str() == self.section)
    }
}

/// The largest message either side accepts: a snapshot of 10,000 keys is a few megabytes.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// Splits a byte stream into messages, one per line (`\n`), however the bytes arrive.
#[derive(Debug, Default)]
pub struct Lines {
    pending: Vec<u8>,
}

impl Lines {
    /// Adds received bytes and returns every line they complete (without the `\n`). A line
    /// growing past [`MAX_MESSAGE_BYTES`] is an error: the peer is broken, not slow.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<Vec<u8>>, String> {
        let mut lines = Vec::new();
        let mut rest = bytes;
        while let Some(end) = rest.iter().position(|&b| b == b'\n') {
            self.pending.extend_from_slice(&rest[..end]);
            lines.push(std::mem::take(&mut self.pending));
            rest = &rest[end + 1..];
        }
        self.pending.extend_from_slice(rest);
        if self.pending.len() > MAX_MESSAGE_BYTES {
            return Err(format!("a message is longer than {MAX_MESSAGE_BYTES} bytes"));
        }
        Ok(lines.into_iter().filter(|line| !line.is_empty()).collect())
    }
}

/// One message as the bytes of a line.
pub fn encode<T: Serialize>(message: &T) -> Vec<u8> {
    // Plain data with string keys always serializes.
    let mut line = serde_json::to_vec(message).unwrap_or_default();
    line.push(b'\n');
    line
}

/// The schema version an operator writing `writes` sends to a replica reading `reads`: the
/// newest both know, or `None` when the ranges do not meet (the skew policy guarantees they do
/// for an operator of release N and replicas of N and N−1).
pub fn negotiate(writes: RangeInclusive<u32>, reads: RangeInclusive<u32>) -> Option<u32> {
    let newest = (*writes.end()).min(*reads.end());
    (newest >= *writes.start() && newest >= *reads.start()).then_some(newest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_common_version_is_chosen() {
        assert_eq!(negotiate(1..=2, 1..=2), Some(2));
        assert_eq!(negotiate(1..=3, 1..=2), Some(2), "an operator of N talks to a replica of N-1");
        assert_eq!(negotiate(2..=3, 3..=4), Some(3));
        assert_eq!(negotiate(3..=4, 1..=2), None);
        assert_eq!(negotiate(1..=1, 2..=3), None);
    }

    #[test]
    fn lines_are_split_however_the_bytes_arrive() {
        let text = b"{\"a\":1}\n\n{\"b\":2}\n{\"c\"";
        for split in 0..text.len() {
            let mut lines = Lines::default();
            let mut all = lines.push(&text[..split]).unwrap();
            all.extend(lines.push(&text[split..]).unwrap());
            assert_eq!(all, [b"{\"a\":1}".to_vec(), b"{\"b\":2}".to_vec()], "split at {split}");
        }
    }

    #[test]
    fn messages_are_tagged_json_lines() {
        let hello = ReplicaMessage::Hello {
            replica: "gw-0".into(),
            build: "0.1.0".into(),
            reads: (1, 2),
            serving: Some(Served { generation: 4, hash: "abc".into() }),
            deltas: true,
        };
        let line = serde_json::to_string(&hello).unwrap();
        assert!(line.starts_with(r#"{"type":"hello","replica":"gw-0""#), "{line}");
        assert!(!line.contains('\n'));
        assert_eq!(serde_json::from_str::<ReplicaMessage>(&line).unwrap(), hello);
        let heartbeat = serde_json::to_string(&OperatorMessage::Heartbeat).unwrap();
        assert_eq!(heartbeat, r#"{"type":"heartbeat"}"#);
    }

    #[test]
    fn a_snapshot_document_travels_as_raw_json_text() {
        let document = RawValue::from_string(r#"{"version":2,"generation":7}"#.into()).unwrap();
        let line = serde_json::to_string(&OperatorMessage::Snapshot { generation: 7, document }).unwrap();
        assert_eq!(line, r#"{"type":"snapshot","generation":7,"document":{"version":2,"generation":7}}"#);
        let OperatorMessage::Snapshot { generation, document } = serde_json::from_str(&line).unwrap() else {
            panic!("not a snapshot: {line}");
        };
        assert_eq!((generation, document.get()), (7, r#"{"version":2,"generation":7}"#));

        let welcome = r#"{"type":"welcome","operator":"op-0","version":2,"added_later":true}"#;
        assert!(matches!(
            serde_json::from_str(welcome).unwrap(),
            OperatorMessage::Welcome { version: 2, .. }
        ));
        for (line, error) in [
            (r#"{"type":"welcome","version":2}"#, "a welcome message without operator"),
            (r#"{"type":"snapshot","generation":1}"#, "a snapshot message without document"),
            (r#"{"type":"gossip"}"#, "unknown message type \"gossip\""),
        ] {
            let err = serde_json::from_str::<OperatorMessage>(line).unwrap_err().to_string();
            assert!(err.contains(error), "{line}: {err}");
        }
    }
}
