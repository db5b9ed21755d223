//! Request/stream/connection counters (atomics) and their plain serializable snapshot.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

/// Live counters, bumped with relaxed atomics on the request path.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub(crate) requests: AtomicU64,
    pub(crate) chat_requests: AtomicU64,
    pub(crate) embeddings_requests: AtomicU64,
    pub(crate) responses_requests: AtomicU64,
    pub(crate) streams_started: AtomicU64,
    pub(crate) streams_completed: AtomicU64,
    pub(crate) streams_aborted: AtomicU64,
    pub(crate) connections_opened: AtomicU64,
    pub(crate) connections_closed: AtomicU64,
    pub(crate) faults_injected: AtomicU64,
}

/// Adds one to a counter.
pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// A point-in-time copy of the mock's counters (also served as JSON on `GET /_mock/stats`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsSnapshot {
    /// Every HTTP request received, on any path.
    pub requests: u64,
    /// Requests to `POST /v1/chat/completions`.
    pub chat_requests: u64,
    /// Requests to `POST /v1/embeddings`.
    pub embeddings_requests: u64,
    /// Requests to `POST /v1/responses` (absent from older snapshots' JSON: 0).
    #[serde(default)]
    pub responses_requests: u64,
    /// Streaming (SSE) chat responses created.
    pub streams_started: u64,
    /// Streams whose final frame (`data: [DONE]`, or the mid-stream error event) was handed to hyper.
    pub streams_completed: u64,
    /// Streams whose body was dropped before the final frame (the client went away mid-stream).
    pub streams_aborted: u64,
    /// TCP connections accepted.
    pub connections_opened: u64,
    /// Connections whose serve future returned.
    pub connections_closed: u64,
    /// `connections_opened - connections_closed`.
    pub open_connections: u64,
    /// Requests that got an injected fault (`MockUpstream::set_fault`; absent from older
    /// snapshots' JSON: 0).
    #[serde(default)]
    pub faults_injected: u64,
}

impl Stats {
    pub(crate) fn snapshot(&self) -> StatsSnapshot {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        // Read `closed` before `opened` so `open_connections` never underflows.
        let connections_closed = load(&self.connections_closed);
        let connections_opened = load(&self.connections_opened);
        StatsSnapshot {
            requests: load(&self.requests),
            chat_requests: load(&self.chat_requests),
            embeddings_requests: load(&self.embeddings_requests),
            responses_requests: load(&self.responses_requests),
            streams_started: load(&self.streams_started),
            streams_completed: load(&self.streams_completed),
            streams_aborted: load(&self.streams_aborted),
            connections_opened,
            connections_closed,
            open_connections: connections_opened.saturating_sub(connections_closed),
            faults_injected: load(&self.faults_injected),
        }
    }
}
