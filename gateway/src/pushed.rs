//! The replica's copy of the operator's document, and how a push becomes a table.
//!
//! A whole snapshot replaces the copy; a delta changes it (only the changed entries parse again)
//! and must lead to the document the operator has, which the digests prove. When a delta does
//! not fit (another base, a digest that differs), the copy is dropped and the replica asks for
//! the whole snapshot; it keeps serving its table meanwhile. Runs on the config thread.

use crate::reload::Prepared;
use crate::table::{CompileContext, compile_accepted};
use switchboard_config::document::Changes;
use switchboard_config::{ConfigErrors, Document};

/// What the operator pushed.
#[derive(Debug)]
pub enum Push {
    /// A whole snapshot (JSON text), from the stream or the snapshot cache.
    Whole(String),
    /// Changes to the document of generation `base`, leading to one whose digest is `hash`.
    Delta { generation: u64, base: u64, hash: String, changes: Box<Changes> },
}

/// Why a push did not become a table.
#[derive(Debug)]
pub enum PushError {
    /// The document itself is unusable (syntax, schema version): answered with a nack.
    Refused(ConfigErrors),
    /// A delta that does not fit the copy held: answered by asking for the whole snapshot.
    Resync(String),
}

/// A table to swap in, and the document's text when it was asked for (the snapshot cache).
pub struct PushPrepared {
    pub prepared: Prepared,
    pub text: Option<String>,
}

/// The document last pushed, if any.
#[derive(Default)]
pub struct Held(Option<Document>);

impl Held {
    /// Turns a push into a table, updating the copy held. `keep_text`: also return the
    /// document's text (the snapshot cache wants it; writing it out costs a copy).
    pub fn prepare(
        &mut self,
        push: Push,
        keep_text: bool,
        ctx: &CompileContext,
    ) -> Result<PushPrepared, PushError> {
        let (document, expected) = match push {
            Push::Whole(text) => {
                self.0 = None;
                (Document::from_json(&text).map_err(PushError::Refused)?, None)
            }
            Push::Delta { generation, base, hash, changes } => {
                let held = self.0.take().ok_or_else(|| {
                    PushError::Resync(format!("a delta from generation {base}, but no document is held"))
                })?;
                if held.generation != base {
                    return Err(PushError::Resync(format!(
                        "a delta from generation {base}, but the document held is generation {}",
                        held.generation
                    )));
                }
                (held.apply(generation, *changes).map_err(PushError::Resync)?, Some(hash))
            }
        };
        // The acks name the document by the digest of its text, so the text is written out
        // anyway (the cache reuses it).
        let text = document.to_json();
        let hash = switchboard_config::document::digest(&text);
        if let Some(expected) = expected
            && expected != hash
        {
            return Err(PushError::Resync(format!(
                "the delta led to document {hash}, the operator's is {expected}"
            )));
        }
        let accepted = document.accept().map_err(PushError::Refused)?;
        let table = compile_accepted(&accepted, &hash, ctx).map_err(PushError::Refused)?;
        self.0 = Some(document);
        Ok(PushPrepared {
            prepared: Prepared { table, rejected: accepted.rejected },
            text: keep_text.then_some(text),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use switchboard_config::Snapshot;

    fn snapshot(generation: u64, keys: &[&str]) -> Snapshot {
        let keys: Vec<serde_json::Value> = keys
            .iter()
            .enumerate()
            .map(|(i, id)| serde_json::json!({ "id": id, "hash": format!("sha256:{}", format!("{:02x}", i + 1).repeat(32)) }))
            .collect();
        serde_json::from_value(serde_json::json!({
            "version": 2, "generation": generation,
            "providers": [{ "type": "mock", "name": "ns/mock" }],
            "routes": [{ "model": "chat", "backends": [{ "provider": "ns/mock" }] }],
            "keys": keys,
        }))
        .unwrap()
    }

    fn delta(base: &Snapshot, next: &Snapshot) -> Push {
        let next_document = Document::from_snapshot(next);
        let changes = Document::from_snapshot(base).diff(&next_document).unwrap();
        Push::Delta {
            generation: next.generation,
            base: base.generation,
            hash: next_document.digest(),
            changes: Box::new(changes),
        }
    }

    fn keys(prepared: &PushPrepared) -> usize {
        prepared.prepared.table.keys.len()
    }

    #[test]
    fn deltas_apply_to_the_document_held_and_anything_else_asks_for_the_whole() {
        let ctx = CompileContext::new(Arc::new(crate::metrics::Metrics::default()));
        let mut held = Held::default();
        let (one, two, three) =
            (snapshot(1, &["ns/a"]), snapshot(2, &["ns/a", "ns/b"]), snapshot(3, &["ns/b"]));

        let resync = |result: Result<PushPrepared, PushError>| match result {
            Err(PushError::Resync(reason)) => reason,
            Err(PushError::Refused(errors)) => panic!("refused: {errors}"),
            Ok(_) => panic!("applied"),
        };
        let reason = resync(held.prepare(delta(&one, &two), false, &ctx));
        assert!(reason.contains("no document is held"), "{reason}");

        let whole = held.prepare(Push::Whole(one.to_json()), true, &ctx).unwrap();
        assert_eq!((keys(&whole), whole.text.as_deref()), (1, Some(one.to_json().as_str())));
        assert_eq!(whole.prepared.table.hash, Document::from_snapshot(&one).digest());

        let applied = held.prepare(delta(&one, &two), true, &ctx).unwrap();
        assert_eq!((keys(&applied), applied.prepared.table.generation), (2, 2));
        assert_eq!(
            applied.text.as_deref(),
            Some(two.to_json().as_str()),
            "the cache gets the whole document"
        );
        let applied = held.prepare(delta(&two, &three), false, &ctx).unwrap();
        assert_eq!((keys(&applied), applied.text), (1, None));

        // A delta from another base, or one leading elsewhere, drops the copy: only a whole
        // snapshot is taken after that.
        let reason = resync(held.prepare(delta(&one, &two), false, &ctx));
        assert!(
            reason.contains("a delta from generation 1, but the document held is generation 3"),
            "{reason}"
        );
        assert!(resync(held.prepare(delta(&three, &snapshot(4, &[])), false, &ctx)).contains("no document"));
        held.prepare(Push::Whole(three.to_json()), false, &ctx).unwrap();
        let Push::Delta { generation, base, changes, .. } = delta(&three, &snapshot(4, &[])) else {
            unreachable!()
        };
        let wrong = Push::Delta { generation, base, hash: "000000000000".into(), changes };
        let reason = resync(held.prepare(wrong, false, &ctx));
        assert!(reason.contains("the operator's is 000000000000"), "{reason}");

        assert!(matches!(held.prepare(Push::Whole("{".into()), false, &ctx), Err(PushError::Refused(_))));
    }
}
