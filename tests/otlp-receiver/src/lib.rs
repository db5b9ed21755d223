//! A minimal OTLP trace receiver on loopback, for tests and the benchmark: what a collector
//! (Tempo, Jaeger, the OpenTelemetry Collector) would receive from the gateway.
//!
//! Two listeners on port 0, one per OTLP transport:
//! - gRPC: `TraceService/Export` over HTTP/2 without TLS (h2c), the length-prefixed protobuf
//!   message in, an empty `ExportTraceServiceResponse` and `grpc-status: 0` trailers out. No
//!   gRPC framework: one unary method is a frame prefix and two trailers.
//! - HTTP: `POST /v1/traces` with an `application/x-protobuf` body.
//!
//! Every span received is kept, flattened with its resource's attributes; [`Receiver::wait_for`]
//! waits until enough have arrived (woken by each export, bounded by a deadline).

mod decode;
mod serve;

pub use decode::{ReceivedSpan, SpanKind, StatusCode, Value};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{Mutex, Notify, watch};

/// What both listeners share.
#[derive(Default)]
pub(crate) struct Store {
    spans: Mutex<Vec<ReceivedSpan>>,
    /// Spans received, readable without the lock (the benchmark's sink counts only).
    count: AtomicU64,
    /// When false, spans are counted but not kept (a long benchmark run).
    keep: bool,
    grpc_exports: AtomicU64,
    http_exports: AtomicU64,
    arrived: Notify,
    /// The headers of the last export request (collector credentials, user agent).
    headers: Mutex<Option<http::HeaderMap>>,
}

impl Store {
    /// Takes one export request's message: its spans decoded and kept, or (`keep` false) only
    /// counted. `false` if it is not an `ExportTraceServiceRequest`.
    pub(crate) async fn add(&self, message: bytes::Bytes, grpc: bool, headers: http::HeaderMap) -> bool {
        use prost::Message as _;
        let count = if self.keep {
            let Ok(request) = ExportTraceServiceRequest::decode(message) else { return false };
            let spans = decode::spans(request);
            let count = spans.len();
            self.spans.lock().await.extend(spans);
            count
        } else {
            let Ok(count) = decode::count(message) else { return false };
            count
        };
        *self.headers.lock().await = Some(headers);
        let exports = if grpc { &self.grpc_exports } else { &self.http_exports };
        exports.fetch_add(1, Relaxed);
        self.count.fetch_add(count as u64, Relaxed);
        self.arrived.notify_waiters();
        true
    }
}

/// A running receiver; it stops when dropped.
pub struct Receiver {
    grpc: SocketAddr,
    http: SocketAddr,
    store: Arc<Store>,
    _stop: watch::Sender<()>,
}

impl Receiver {
    /// Binds both listeners on 127.0.0.1:0 and serves until dropped; every span is kept.
    pub async fn start() -> std::io::Result<Receiver> {
        Self::start_with(true).await
    }

    /// As [`Receiver::start`]; with `keep` false spans are only counted.
    pub async fn start_with(keep: bool) -> std::io::Result<Receiver> {
        let grpc_listener = TcpListener::bind("127.0.0.1:0").await?;
        let http_listener = TcpListener::bind("127.0.0.1:0").await?;
        let store = Arc::new(Store { keep, ..Store::default() });
        let (stop, stopped) = watch::channel(());
        let receiver = Receiver {
            grpc: grpc_listener.local_addr()?,
            http: http_listener.local_addr()?,
            store: store.clone(),
            _stop: stop,
        };
        tokio::spawn(serve::accept(grpc_listener, store.clone(), true, stopped.clone()));
        tokio::spawn(serve::accept(http_listener, store, false, stopped));
        Ok(receiver)
    }

    /// The OTLP/gRPC endpoint, as `OTEL_EXPORTER_OTLP_ENDPOINT` takes it.
    pub fn grpc_endpoint(&self) -> String {
        format!("http://{}", self.grpc)
    }

    /// The OTLP/HTTP base endpoint (`/v1/traces` is appended by exporters).
    pub fn http_endpoint(&self) -> String {
        format!("http://{}", self.http)
    }

    /// Spans received so far (all of them, counted even when not kept).
    pub fn count(&self) -> u64 {
        self.store.count.load(Relaxed)
    }

    /// Export requests received over gRPC and over HTTP.
    pub fn exports(&self) -> (u64, u64) {
        (self.store.grpc_exports.load(Relaxed), self.store.http_exports.load(Relaxed))
    }

    /// The headers the last export request came with.
    pub async fn last_headers(&self) -> Option<http::HeaderMap> {
        self.store.headers.lock().await.clone()
    }

    /// The spans kept so far.
    pub async fn spans(&self) -> Vec<ReceivedSpan> {
        self.store.spans.lock().await.clone()
    }

    /// Waits until at least `n` spans have been received or `timeout` passes, and returns the
    /// spans kept by then (fewer than `n` on a timeout: the caller's assertion says what is
    /// missing).
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<ReceivedSpan> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            // Registered before the check, so an export between the check and the wait wakes it.
            let arrived = self.store.arrived.notified();
            if self.count() >= n as u64 {
                return self.spans().await;
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                return self.spans().await;
            }
        }
    }
}
