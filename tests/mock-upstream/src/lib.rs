//! `switchboard-mock-upstream`: a fast fake OpenAI-compatible upstream (chat completions incl.
//! SSE streaming, embeddings, the Responses API incl. its event stream (`responses.rs`), models,
//! error envelopes). This file owns the public API:
//! [`MockUpstream`], [`Options`], [`RecordedRequest`] and the shared server state.
//!
//! Behaviour is selected by the request's `model` string:
//! `error-<status>`, `slow-<ms>`, `stream-<n>-<ms>`, `midstream-error`, `continuous-usage` (the
//! running usage total on every stream chunk, as vLLM's `continuous_usage_stats`), or a suffix
//! named as `tests/mock-providers` names it: `<model>-tool`, `-parallel-tools`, `-cache`
//! (`prompt_tokens_details.cached_tokens`: half the prompt, rounded up), `-malformed`,
//! `-midstream-error`, `-disconnect`; anything else = default. The reply echoes the request
//! and the mock refuses what OpenAI refuses where the conformance suite relies on it (`chat.rs`).
//!
//! A [`Fault`] set at run time ([`MockUpstream::set_fault`], [`MockUpstream::set_fault_ratio`],
//! or `POST /_mock/fault` from loopback) overrides the model string for chat completions,
//! Responses and embeddings requests until cleared: an error status with or without
//! `Retry-After`, a delay before the head, a TCP reset, a stream cut after N content chunks, or a
//! slow first token (module `fault`). Requests it hits are counted in
//! [`StatsSnapshot::faults_injected`].
//!
//! [`Options::azure`] switches to Azure OpenAI's URLs, `api-version`, `api-key` / Entra bearer
//! authentication and error bodies (module `azure`).

mod answers;
mod azure;
mod behavior;
mod body;
mod chat;
mod embeddings;
mod fault;
mod json;
mod responses;
mod server;
mod stats;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use bytes::Bytes;
use hyper::header::{AUTHORIZATION, HeaderMap};
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use azure::AzureOptions;
pub use fault::Fault;
pub use stats::StatsSnapshot;

/// Server options.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// If set, `/v1/*` requests without `Authorization: Bearer <api_key>` get a 401
    /// `invalid_api_key` error.
    pub api_key: Option<String>,
    /// Azure OpenAI mode (`azure.rs`): Azure's URLs, `api-version`, `api-key` or Entra bearer
    /// token, and error bodies, instead of `/v1/*` and `api_key`.
    pub azure: Option<AzureOptions>,
}

/// The most recent request received on `/v1/chat/completions`, `/v1/embeddings` or
/// `/v1/responses`.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedRequest {
    /// The request path, e.g. `/v1/chat/completions`.
    pub path: String,
    /// Request headers in arrival order, names lowercased.
    pub headers: Vec<(String, String)>,
    /// The parsed body; a JSON string holding the raw text if the body was not valid JSON.
    pub body: serde_json::Value,
}

impl RecordedRequest {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Raw form of a recorded request, stored cheaply on the hot path and parsed on demand.
#[derive(Debug)]
pub(crate) struct Recorded {
    pub(crate) path: &'static str,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

/// State shared by the accept loop, every connection and every response body.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) stats: stats::Stats,
    pub(crate) last: ArcSwapOption<Recorded>,
    /// `Bearer <key>` when an API key is required.
    pub(crate) expected_auth: Option<Vec<u8>>,
    pub(crate) next_id: AtomicU64,
    pub(crate) azure: Option<AzureOptions>,
    /// Azure mode: the path and query of the last request, as sent.
    pub(crate) last_azure_uri: ArcSwapOption<String>,
    pub(crate) faults: fault::Faults,
}

impl Shared {
    fn new(options: Options) -> Self {
        Self {
            stats: stats::Stats::default(),
            last: ArcSwapOption::empty(),
            expected_auth: options.api_key.map(|k| format!("Bearer {k}").into_bytes()),
            next_id: AtomicU64::new(1),
            azure: options.azure,
            last_azure_uri: ArcSwapOption::empty(),
            faults: fault::Faults::default(),
        }
    }

    pub(crate) fn authorized(&self, headers: &HeaderMap) -> bool {
        match &self.expected_auth {
            None => true,
            Some(want) => headers.get(AUTHORIZATION).is_some_and(|v| v.as_bytes() == want.as_slice()),
        }
    }
}

/// A running mock upstream. Dropping it stops accepting connections and gracefully closes the
/// open ones (in-flight responses finish first).
#[derive(Debug)]
pub struct MockUpstream {
    addr: SocketAddr,
    shared: Arc<Shared>,
    /// Dropping the sender is the shutdown signal.
    _shutdown: watch::Sender<()>,
}

impl MockUpstream {
    /// Binds and serves on the current tokio runtime (spawned tasks). Port 0 allowed.
    pub async fn start(bind: SocketAddr) -> std::io::Result<MockUpstream> {
        Self::start_with(bind, Options::default()).await
    }

    /// Like [`MockUpstream::start`], with options.
    pub async fn start_with(bind: SocketAddr, options: Options) -> std::io::Result<MockUpstream> {
        let listener = TcpListener::bind(bind).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::new(options));
        let (tx, rx) = watch::channel(());
        tokio::spawn(server::accept_loop(listener, Arc::clone(&shared), rx));
        Ok(MockUpstream { addr, shared, _shutdown: tx })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr>/v1`, with an unspecified bind IP replaced by loopback.
    pub fn base_url(&self) -> String {
        let mut addr = self.addr;
        if addr.ip().is_unspecified() {
            addr.set_ip(match addr {
                SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            });
        }
        format!("http://{addr}/v1")
    }

    /// Current counters.
    pub fn stats(&self) -> StatsSnapshot {
        self.shared.stats.snapshot()
    }

    /// The most recent request received on `/v1/chat/completions`, `/v1/embeddings` or
    /// `/v1/responses`.
    pub fn last_request(&self) -> Option<RecordedRequest> {
        let rec = self.shared.last.load_full()?;
        let body = serde_json::from_slice(&rec.body)
            .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(&rec.body).into_owned()));
        let headers = rec
            .headers
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect();
        Some(RecordedRequest { path: rec.path.to_owned(), headers, body })
    }

    /// Azure mode: the path and query of the last request (`/openai/deployments/d/chat/completions?api-version=…`).
    pub fn last_azure_uri(&self) -> Option<String> {
        self.shared.last_azure_uri.load_full().map(|uri| uri.as_ref().clone())
    }

    /// Injects `fault` into every chat completions, Responses and embeddings request from now
    /// on, whatever its model; `None` restores the model-string behaviours.
    pub fn set_fault(&self, fault: Option<Fault>) {
        self.shared.faults.set(fault, 1);
    }

    /// Injects `fault` into one request in `one_in` from now on: the 1st, the `one_in + 1`-th,
    /// and so on (deterministic, so a test knows how many were hit; `one_in` 0 counts as 1).
    pub fn set_fault_ratio(&self, fault: Fault, one_in: u32) {
        self.shared.faults.set(Some(fault), one_in);
    }

    /// Polls (every ~5 ms) until `pred(&stats)` holds or `timeout` passes; returns the last
    /// stats either way.
    pub async fn wait_for(&self, timeout: Duration, pred: impl Fn(&StatsSnapshot) -> bool) -> StatsSnapshot {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let snap = self.stats();
            if pred(&snap) || tokio::time::Instant::now() >= deadline {
                return snap;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}
