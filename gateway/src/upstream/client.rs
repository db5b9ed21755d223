//! The pooled HTTP client every HTTP provider shares.
//!
//! One client for the whole process: its connection pool (keyed by scheme, host and port) outlives
//! config reloads, so a reload does not cost a round of TLS handshakes.

use bytes::Bytes;
use http_body_util::Full;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use std::time::Duration;

pub type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// Builds the client: TCP_NODELAY, keep-alive, rustls with the system's root certificates
/// (Mozilla's built-in roots when the system has none).
pub fn new_http_client() -> HttpClient {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_keepalive(Some(Duration::from_secs(60)));
    http.set_connect_timeout(Some(Duration::from_secs(10)));
    let builder = hyper_rustls::HttpsConnectorBuilder::new();
    let builder = match builder.with_native_roots() {
        Ok(builder) => builder,
        Err(err) => {
            // Minimal images (distroless, scratch) often ship no CA bundle; Mozilla's roots,
            // compiled in, are the expected behaviour there rather than every HTTPS call failing.
            tracing::info!(error = %err, "no system root certificates; using the built-in Mozilla roots");
            hyper_rustls::HttpsConnectorBuilder::new().with_webpki_roots()
        }
    };
    let connector = builder.https_or_http().enable_http1().wrap_connector(http);
    Client::builder(TokioExecutor::new())
        .timer(TokioTimer::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(512)
        .build(connector)
}
