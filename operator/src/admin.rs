//! The operator's admin port: `/healthz`, `/readyz` (ready only while leading, so a Service
//! selecting ready pods sends gateways to the leader) and Prometheus `/metrics`.

use crate::metrics::OperatorMetrics;
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use tokio::net::TcpListener;

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
