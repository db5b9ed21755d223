//! Watches: newline-delimited JSON events (`{"type":"ADDED","object":{…}}`) over a chunked
//! response, as kube's client and kubectl read them.
//!
//! Every change is recorded once, in resourceVersion order, into a bounded history (what a
//! watch from an older resourceVersion replays) and sent to each open watch it matches. A watch
//! from a resourceVersion older than the history gets one `ERROR` event with a 410 `Expired`
//! Status, as the apiserver's watch cache does; kube-runtime's watcher then lists again.
//! Bookmarks carry the current resourceVersion to watches that asked for them
//! (`allowWatchBookmarks=true`): periodically, on demand, and after the initial events of a
//! `sendInitialEvents=true` watch (annotated `k8s.io/initial-events-end`).

use std::collections::VecDeque;
use std::rc::Rc;

use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::select::Selector;
use crate::status::ApiError;
use crate::store::Store;
use crate::table::partial_metadata;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    fn as_str(self) -> &'static str {
        match self {
            Self::Added => "ADDED",
            Self::Modified => "MODIFIED",
            Self::Deleted => "DELETED",
        }
    }
}

struct Change {
    rv: u64,
    kind: usize,
    type_: EventType,
    object: Rc<Value>,
}

/// What a watch wants to see and how.
#[derive(Debug, Clone)]
pub(crate) struct WatchRequest {
    pub kind: usize,
    /// `None`: every namespace.
    pub namespace: Option<String>,
    pub selector: Selector,
    /// `resourceVersion`: `None` or `"0"` start with the current objects as ADDED events.
    pub resource_version: Option<String>,
    pub send_initial_events: Option<bool>,
    pub bookmarks: bool,
    /// Objects as `PartialObjectMetadata` (kube's `metadata_watcher`).
    pub metadata_only: bool,
}

struct Watcher {
    request: WatchRequest,
    api_version: String,
    kind_name: String,
    tx: mpsc::UnboundedSender<Bytes>,
}

impl Watcher {
    fn wants(&self, kind: usize, object: &Value) -> bool {
        let namespace = object.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or_default();
        kind == self.request.kind
            && self.request.namespace.as_deref().is_none_or(|n| n == namespace)
            && self.request.selector.matches(object)
    }

    fn send(&self, type_: &str, object: &Value) {
        let object = if self.request.metadata_only { partial_metadata(object) } else { object.clone() };
        let _ = self.tx.send(line(&json!({"type": type_, "object": object})));
    }

    fn bookmark(&self, rv: u64, initial_end: bool) {
        let mut metadata = json!({"resourceVersion": rv.to_string()});
        if initial_end {
            metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let object = json!({"kind": self.kind_name, "apiVersion": self.api_version, "metadata": metadata});
        let _ = self.tx.send(line(&json!({"type": "BOOKMARK", "object": object})));
    }
}

fn line(event: &Value) -> Bytes {
    let mut bytes = serde_json::to_vec(event).unwrap_or_default();
    bytes.push(b'\n');
    Bytes::from(bytes)
}

fn expired_event(requested: u64, oldest: u64) -> Bytes {
    let status = ApiError::expired(format!("too old resource version: {requested} ({oldest})")).to_status();
    line(&json!({"type": "ERROR", "object": status}))
}

/// The history and the open watches.
pub(crate) struct Hub {
    history: VecDeque<Change>,
    limit: usize,
    /// The newest resourceVersion dropped from the history: watches must start at or after it.
    compacted: u64,
    watchers: Vec<Watcher>,
}

impl Hub {
    pub fn new(limit: usize) -> Self {
        Self { history: VecDeque::new(), limit: limit.max(1), compacted: 0, watchers: Vec::new() }
    }

    /// Records one change and sends it to every open watch it matches.
    pub fn record(&mut self, rv: u64, kind: usize, type_: EventType, object: &Value) {
        let object = Rc::new(object.clone());
        self.watchers.retain(|w| !w.tx.is_closed());
        for watcher in self.watchers.iter().filter(|w| w.wants(kind, &object)) {
            watcher.send(type_.as_str(), &object);
        }
        self.history.push_back(Change { rv, kind, type_, object });
        while self.history.len() > self.limit {
            if let Some(dropped) = self.history.pop_front() {
                self.compacted = dropped.rv;
            }
        }
    }

    /// A bookmark at `rv` to every watch that allows them.
    pub fn bookmark_all(&mut self, rv: u64) {
        self.watchers.retain(|w| !w.tx.is_closed());
        for watcher in self.watchers.iter().filter(|w| w.request.bookmarks) {
            watcher.bookmark(rv, false);
        }
    }

    /// Compacts the whole history (as etcd compaction would) and ends every open watch with a
    /// 410 `Expired` error event: each watcher must list again.
    pub fn expire_all(&mut self, rv: u64) {
        self.history.clear();
        self.compacted = rv;
        for watcher in self.watchers.drain(..) {
            let _ = watcher.tx.send(expired_event(watcher.request.resource_version_number(), rv));
        }
    }

    /// Ends every open watch normally, as the apiserver does when `timeoutSeconds` runs out.
    pub fn close_all(&mut self) {
        self.watchers.clear();
    }

    pub fn open_watches(&self) -> usize {
        self.watchers.iter().filter(|w| !w.tx.is_closed()).count()
    }
}

impl WatchRequest {
    fn resource_version_number(&self) -> u64 {
        self.resource_version.as_deref().and_then(|rv| rv.parse().ok()).unwrap_or(0)
    }
}

impl Store {
    /// Opens a watch: the events it must see first (current objects, or history after its
    /// resourceVersion) are queued before it is registered, in the same step, so nothing is
    /// missed or duplicated.
    pub fn watch(&mut self, request: WatchRequest) -> Result<mpsc::UnboundedReceiver<Bytes>, ApiError> {
        let (tx, rx) = mpsc::unbounded_channel();
        let kind = &self.kinds[request.kind];
        let watcher = Watcher {
            api_version: if request.metadata_only { "meta.k8s.io/v1".to_owned() } else { kind.api_version() },
            kind_name: if request.metadata_only {
                "PartialObjectMetadata".to_owned()
            } else {
                kind.kind.clone()
            },
            request,
            tx,
        };
        let current = self.resource_version();
        let from = match watcher.request.resource_version.as_deref() {
            None | Some("") | Some("0") => None,
            Some(rv) => Some(
                rv.parse::<u64>()
                    .map_err(|_| ApiError::bad_request(format!("invalid resource version {rv:?}")))?,
            ),
        };
        let initial = watcher.request.send_initial_events.unwrap_or(from.is_none());
        if initial {
            for object in self.list(watcher.request.kind, watcher.request.namespace.as_deref()) {
                if watcher.request.selector.matches(object) {
                    watcher.send("ADDED", object);
                }
            }
            if watcher.request.send_initial_events == Some(true) && watcher.request.bookmarks {
                watcher.bookmark(current, true);
            }
        } else if let Some(from) = from {
            if from > current {
                return Err(ApiError::too_large_resource_version(from, current));
            }
            if from < self.hub.compacted {
                let _ = watcher.tx.send(expired_event(from, self.hub.compacted));
                return Ok(rx);
            }
            for change in self.hub.history.iter().filter(|c| c.rv > from) {
                if watcher.wants(change.kind, &change.object) {
                    watcher.send(change.type_.as_str(), &change.object);
                }
            }
        }
        self.hub.watchers.push(watcher);
        Ok(rx)
    }
}
