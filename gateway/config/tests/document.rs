//! Snapshot documents and the changes between them: a replica that applies the operator's
//! changes to its copy holds exactly the operator's document, byte for byte, and parses only
//! what changed.

#![expect(clippy::unwrap_used, reason = "tests: a failed step fails the test")]

use serde_json::{Value, json};
use switchboard_config::document::Changes;
use switchboard_config::{Document, Section, Snapshot};

fn hash(n: u8) -> String {
    format!("sha256:{}", format!("{n:02x}").repeat(32))
}

fn object(kind: &str, name: &str) -> Value {
    json!({ "kind": kind, "namespace": "ns", "name": name, "uid": format!("uid-{name}"), "generation": 1 })
}

fn key(id: &str, n: u8) -> Value {
    json!({ "id": id, "hashes": [{ "hash": hash(n) }], "models": ["chat"], "source": object("VirtualKey", id) })
}

/// A snapshot as the operator writes it: sections sorted by name.
fn snapshot(generation: u64, keys: &[(&str, u8)], secret: &str) -> Snapshot {
    serde_json::from_value(json!({
        "version": 2,
        "generation": generation,
        "providers": [
            { "type": "openai", "name": "ns/openai", "base_url": "https://api.openai.com/v1",
              "api_key": { "secret": "openai-key" }, "source": object("LLMProvider", "openai") },
        ],
        "routes": [{ "model": "chat", "backends": [{ "provider": "ns/openai" }] }],
        "keys": keys.iter().map(|(id, n)| key(id, *n)).collect::<Vec<_>>(),
        "policies": [{ "name": "ns/per-minute", "scope": "key", "window_seconds": 60, "requests": 100 }],
        "secrets": { "openai-key": secret },
    }))
    .unwrap()
}

/// What a replica does: its copy (from the text it was sent), the operator's changes applied.
fn replica_applies(old: &Snapshot, new: &Snapshot) -> Document {
    let changes = Document::from_snapshot(old).diff(&Document::from_snapshot(new)).unwrap();
    // Through the wire format, as the stream carries it.
    let changes: Changes = serde_json::from_str(&serde_json::to_string(&changes).unwrap()).unwrap();
    let copy = Document::from_json(&old.to_json()).unwrap();
    copy.apply(new.generation, changes).unwrap()
}

#[test]
fn a_document_writes_the_snapshot_byte_for_byte() {
    let snapshot = snapshot(3, &[("ns/a", 1), ("ns/b", 2)], "sk-1");
    let document = Document::from_snapshot(&snapshot);
    assert_eq!(document.to_json(), snapshot.to_json());
    let read = Document::from_json(&snapshot.to_json()).unwrap();
    assert_eq!(read.to_json(), snapshot.to_json());
    assert_eq!(read.digest(), document.digest());
    assert_eq!(read.digest().len(), 12);

    let empty = Snapshot::default();
    assert_eq!(Document::from_snapshot(&empty).to_json(), empty.to_json());
}

#[test]
fn changes_lead_to_the_operators_document() {
    let old = snapshot(3, &[("ns/b", 2), ("ns/d", 4), ("ns/f", 6)], "sk-1");
    let cases: [(&str, Snapshot); 6] = [
        ("nothing changed but the generation", snapshot(4, &[("ns/b", 2), ("ns/d", 4), ("ns/f", 6)], "sk-1")),
        (
            "a key added first, between and last",
            snapshot(
                4,
                &[("ns/a", 1), ("ns/b", 2), ("ns/c", 3), ("ns/d", 4), ("ns/f", 6), ("ns/g", 7)],
                "sk-1",
            ),
        ),
        ("a key changed", snapshot(4, &[("ns/b", 2), ("ns/d", 9), ("ns/f", 6)], "sk-1")),
        ("keys removed", snapshot(4, &[("ns/d", 4)], "sk-1")),
        ("every key removed", snapshot(4, &[], "sk-1")),
        ("a rotated secret", snapshot(4, &[("ns/b", 2), ("ns/d", 4), ("ns/f", 6)], "sk-2")),
    ];
    for (case, new) in cases {
        let applied = replica_applies(&old, &new);
        assert_eq!(applied.to_json(), new.to_json(), "{case}");
        assert_eq!(applied.digest(), Document::from_snapshot(&new).digest(), "{case}");
        assert_eq!(applied.generation, 4);
        assert_eq!(applied.accept().unwrap().snapshot, new, "{case}: it serves the new snapshot");
    }

    let mut without_secret = snapshot(4, &[], "unused");
    without_secret.secrets.clear();
    without_secret.providers[0] =
        serde_json::from_value(json!({ "type": "mock", "name": "ns/openai" })).unwrap();
    assert_eq!(replica_applies(&old, &without_secret).to_json(), without_secret.to_json());
}

#[test]
fn a_one_key_change_carries_one_key() {
    let keys: Vec<(String, u8)> = (0..200).map(|i| (format!("ns/key-{i:03}"), (i % 250) as u8)).collect();
    let refs: Vec<(&str, u8)> = keys.iter().map(|(id, n)| (id.as_str(), *n)).collect();
    let old = snapshot(3, &refs, "sk-1");
    let mut more = refs.clone();
    more.push(("ns/key-new", 251));
    let new = snapshot(4, &more, "sk-1");
    let changes = Document::from_snapshot(&old).diff(&Document::from_snapshot(&new)).unwrap();
    assert_eq!(changes.len(), 1);
    let wire = serde_json::to_string(&changes).unwrap();
    assert!(wire.len() < 400 && wire.starts_with(r#"{"keys":{"upsert":[{"id":"ns/key-new""#), "{wire}");
    assert!(new.to_json().len() > 100 * wire.len());
}

#[test]
fn changes_that_do_not_fit_the_copy_are_refused() {
    let old = Document::from_snapshot(&snapshot(3, &[("ns/a", 1)], "sk-1"));
    let parse = |changes: Value| -> Changes { serde_json::from_value(changes).unwrap() };
    let fresh = || Document::from_snapshot(&snapshot(3, &[("ns/a", 1)], "sk-1"));
    for (changes, error) in [
        (
            json!({ "keys": { "remove": ["ns/zz"] } }),
            "keys \"ns/zz\" is removed but the document held has none",
        ),
        (
            json!({ "keys": { "upsert": [key("ns/b", 2), key("ns/b", 3)] } }),
            "keys \"ns/b\" is upserted twice",
        ),
        (json!({ "keys": { "upsert": [key("ns/b", 2)], "remove": ["ns/b"] } }), "both upserted and removed"),
        (json!({ "keys": { "upsert": [{ "hashes": [] }] } }), "an upserted entry of keys has no name"),
        (json!({ "secrets": { "remove": ["nope"] } }), "secret \"nope\" is removed"),
    ] {
        let err = fresh().apply(4, parse(changes.clone())).unwrap_err();
        assert!(err.contains(error), "{changes}: {err}");
    }
    assert!(old.apply(4, parse(json!({ "routes": {} }))).is_ok(), "empty changes fit anything");
    assert!(serde_json::from_value::<Changes>(json!({ "keys": { "replace": [] } })).is_err());

    // A document whose entries cannot be addressed by name (not written by the operator: out
    // of order) is compared and changed only whole.
    let unordered =
        Document::from_json(&json!({ "version": 2, "keys": [key("ns/b", 2), key("ns/a", 1)] }).to_string())
            .unwrap();
    let err = unordered.apply(4, parse(json!({ "keys": { "remove": ["ns/a"] } }))).unwrap_err();
    assert!(err.contains("not addressable by name"), "{err}");
    let unordered =
        Document::from_json(&json!({ "version": 2, "keys": [key("ns/b", 2), key("ns/a", 1)] }).to_string())
            .unwrap();
    assert!(unordered.diff(&Document::from_snapshot(&snapshot(4, &[], "s"))).is_none());
}

#[test]
fn an_entry_that_does_not_parse_is_reported_where_it_is_now() {
    let broken = json!({ "id": "ns/c", "hashes": [{ "hash": hash(3) }], "colour": "blue",
                         "source": object("VirtualKey", "c") });
    let document = Document::from_json(
        &json!({ "version": 2, "generation": 3, "keys": [key("ns/a", 1), broken] }).to_string(),
    )
    .unwrap();
    let rejected = document.accept().unwrap().rejected;
    assert_eq!((rejected[0].section, rejected[0].name.as_str()), (Section::Keys, "ns/c"));
    assert!(rejected[0].errors[0].path.starts_with("keys[1]"), "{:?}", rejected[0].errors);

    // A key added before it moves it; its (kept) parse failure names its new place.
    let changes: Changes = serde_json::from_value(json!({ "keys": { "upsert": [key("ns/b", 2)] } })).unwrap();
    let document = document.apply(4, changes).unwrap();
    let rejected = document.accept().unwrap().rejected;
    assert_eq!(rejected.len(), 1);
    assert!(rejected[0].errors[0].path.starts_with("keys[2]"), "{:?}", rejected[0].errors);
    assert_eq!(rejected[0].object.as_ref().unwrap().name, "c");
}
