//! The operator's admin port: `/healthz`, `/readyz` (ready only while leading, so a Service
//! selecting ready pods sends gateways to the leader) and Prometheus `/metrics`.

use crate::publish::Publisher;
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use tokio::net::TcpListener;

/// Counters the controller and the stream update; rendered on `/metrics`.
#[derive(Default)]
pub struct OperatorMetrics {
    /// 1 while this replica holds the Lease.
    pub leading: AtomicU64,
    pub compiles: AtomicU64,
    /// Total compile time in microseconds (with `compiles`, the mean).
    pub compile_micros: AtomicU64,
    pub snapshot_generation: AtomicU64,
    /// Size of the last published snapshot as JSON.
    pub snapshot_bytes: AtomicU64,
    pub status_writes: AtomicU64,
    /// The publisher, once leading (replica counts, acks and nacks).
    pub publisher: OnceLock<Arc<Publisher>>,
}

impl OperatorMetrics {
    fn render(&self) -> String {
        let mut out = String::new();
        let mut series = |name: &str, kind: &str, help: &str, value: u64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}");
        };
        series(
            "switchboard_operator_leading",
            "gauge",
            "1 while this replica holds the leader Lease.",
            self.leading.load(Relaxed),
        );
        series(
            "switchboard_operator_compiles_total",
            "counter",
            "Compiles of the resources into a snapshot.",
            self.compiles.load(Relaxed),
        );
        series(
            "switchboard_operator_compile_seconds_total",
            "counter",
            "Time spent compiling, in seconds (divide by compiles_total for the mean).",
            self.compile_micros.load(Relaxed) / 1_000_000,
        );
        series(
            "switchboard_operator_snapshot_generation",
            "gauge",
            "Generation of the last published snapshot.",
            self.snapshot_generation.load(Relaxed),
        );
        series(
            "switchboard_operator_snapshot_bytes",
            "gauge",
            "Size of the last published snapshot (JSON).",
            self.snapshot_bytes.load(Relaxed),
        );
        series(
            "switchboard_operator_status_writes_total",
            "counter",
            "Status patches written (only changed statuses are written).",
            self.status_writes.load(Relaxed),
        );
        let (connected, acks, nacks) = match self.publisher.get() {
            Some(publisher) => {
                let connected = publisher.replicas().iter().filter(|r| r.connected).count() as u64;
                (connected, publisher.acks.load(Relaxed), publisher.nacks.load(Relaxed))
            }
            None => (0, 0, 0),
        };
        series(
            "switchboard_operator_replicas_connected",
            "gauge",
            "Gateway replicas connected to the snapshot stream.",
            connected,
        );
        series("switchboard_operator_acks_total", "counter", "Snapshots gateway replicas applied.", acks);
        series("switchboard_operator_nacks_total", "counter", "Snapshots gateway replicas refused.", nacks);
        out
    }
}

/// Serves the admin endpoints until the process ends.
pub async fn serve(listener: TcpListener, metrics: Arc<OperatorMetrics>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let metrics = metrics.clone();
                async move { Ok::<_, Infallible>(handle(&request, &metrics)) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn handle(request: &Request<Incoming>, metrics: &OperatorMetrics) -> Response<Full<Bytes>> {
    let (status, body) = match request.uri().path() {
        "/healthz" => (StatusCode::OK, "ok\n".to_owned()),
        "/readyz" if metrics.leading.load(Relaxed) == 1 => (StatusCode::OK, "leading\n".to_owned()),
        "/readyz" => (StatusCode::SERVICE_UNAVAILABLE, "standing by\n".to_owned()),
        "/metrics" => (StatusCode::OK, metrics.render()),
        _ => (StatusCode::NOT_FOUND, "not found: try /healthz, /readyz, /metrics\n".to_owned()),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
}
