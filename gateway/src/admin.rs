//! The admin listener: liveness, readiness, Prometheus metrics and the backends' state
//! (`/backends`, JSON), on its own port so it can stay private while the API port is exposed.

use crate::Gateway;
use crate::body::GatewayBody;
use crate::request_id::RequestId;
use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderValue, Request, Response, StatusCode};
use hyper::body::Incoming;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

/// What `/readyz` says when ready: with an operator, whether the stream is up, so a replica
/// serving its last snapshot through an operator outage says so (it stays ready: that is the
/// point of static stability).
fn ready_detail(gateway: &Gateway, generation: u64) -> String {
    if !gateway.settings.follows_operator || gateway.metrics.operator_connected.get() == 1 {
        return "ready\n".to_owned();
    }
    match gateway.metrics.operator_last_contact_unix.get() {
        0 => format!(
            "ready: serving the cached snapshot (generation {generation}); the operator has not answered yet\n"
        ),
        last => format!(
            "ready: serving generation {generation}; the operator is unreachable (last contact {} s ago)\n",
            (crate::unix_now() as u64).saturating_sub(last)
        ),
    }
}

pub async fn handle(gateway: Arc<Gateway>, request: Request<Incoming>) -> Response<GatewayBody> {
    let (status, content_type, body) = match request.uri().path() {
        "/healthz" => (StatusCode::OK, "text/plain", Bytes::from_static(b"ok\n")),
        "/readyz" => {
            if gateway.draining.load(Relaxed) {
                (StatusCode::SERVICE_UNAVAILABLE, "text/plain", Bytes::from_static(b"draining\n"))
            } else if let Some(table) = gateway.tables.load() {
                (StatusCode::OK, "text/plain", Bytes::from(ready_detail(&gateway, table.generation)))
            } else {
                (StatusCode::SERVICE_UNAVAILABLE, "text/plain", Bytes::from_static(b"no config loaded\n"))
            }
        }
        "/metrics" => (StatusCode::OK, crate::metrics::CONTENT_TYPE, Bytes::from(gateway.metrics.render())),
        "/backends" => match gateway.tables.load() {
            Some(table) => {
                let json = crate::table::backends_json(&table, crate::table::now_ms());
                (StatusCode::OK, "application/json", Bytes::from(json))
            }
            None => {
                (StatusCode::SERVICE_UNAVAILABLE, "text/plain", Bytes::from_static(b"no config loaded\n"))
            }
        },
        _ => (
            StatusCode::NOT_FOUND,
            "text/plain",
            Bytes::from_static(b"not found: try /healthz, /readyz, /metrics, /backends\n"),
        ),
    };
    let mut response = Response::new(GatewayBody::full(body));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response.headers_mut().insert("x-request-id", RequestId::from_headers(request.headers()).header_value());
    response
}
