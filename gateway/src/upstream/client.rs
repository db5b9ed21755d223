//! The pooled HTTP clients every HTTP provider shares.
//!
//! One client per [`AddressRule`] for the whole process: their connection pools (keyed by scheme,
//! host and port) outlive config reloads, so a reload does not cost a round of TLS handshakes.
//! Each rule gets its own client, and so its own pool, because the rule is enforced when a
//! connection is made (in the resolver): a connection opened for an `allow_private_network`
//! provider must never be handed to a provider that is not allowed to reach that address.

use super::resolve::GuardedResolver;
use arc_swap::ArcSwap;
use bytes::Bytes;
use http_body_util::Full;
use hyper_rustls::HttpsConnector;
use hyper_rustls::builderstates::WantsSchemes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::dns::{GaiResolver, Name};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use switchboard_config::AddressRule;
use tower_service::Service;

/// The client a provider sends with: DNS answers filtered by its address rule, then TCP, then TLS.
pub type HttpClient = Client<HttpsConnector<HttpConnector<GuardedResolver>>, Full<Bytes>>;

/// One pooled client per address rule (each with its own pool), built once per process, and
/// more for providers with their own connect timeout, built when a config first asks.
#[derive(Clone)]
pub struct HttpClients {
    allow_all: HttpClient,
    no_link_local: HttpClient,
    no_local: HttpClient,
    /// Clients by rule and connect timeout in milliseconds, for providers whose connect timeout
    /// is not [`DEFAULT_CONNECT_TIMEOUT`]. Grown by compiles (the config thread), never per
    /// request, and kept for the process: their pools outlive reloads as the others' do.
    custom: Arc<ArcSwap<HashMap<(AddressRule, u64), HttpClient>>>,
    roots: Roots,
}

/// How long opening a connection (TCP and TLS) may take, unless a provider says otherwise.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

impl HttpClients {
    /// Builds the three clients: TCP_NODELAY, keep-alive, rustls with the system's root
    /// certificates (Mozilla's built-in roots when the system has none), HTTP/1.1.
    pub fn new() -> Self {
        let mut roots = Roots::Native;
        let mut build = |rule| {
            build_client(GuardedResolver::new(GaiResolver::new(), rule), &mut roots, DEFAULT_CONNECT_TIMEOUT)
        };
        HttpClients {
            allow_all: build(AddressRule::AllowAll),
            no_link_local: build(AddressRule::NoLinkLocal),
            no_local: build(AddressRule::NoLocal),
            custom: Arc::default(),
            roots,
        }
    }

    pub fn for_rule(&self, rule: AddressRule) -> &HttpClient {
        match rule {
            AddressRule::AllowAll => &self.allow_all,
            AddressRule::NoLinkLocal => &self.no_link_local,
            AddressRule::NoLocal => &self.no_local,
        }
    }

    /// The client for `rule` whose connections time out after `connect`.
    pub fn with_connect_timeout(&self, rule: AddressRule, connect: Duration) -> HttpClient {
        if connect == DEFAULT_CONNECT_TIMEOUT {
            return self.for_rule(rule).clone();
        }
        let key = (rule, connect.as_millis() as u64);
        if let Some(client) = self.custom.load().get(&key) {
            return client.clone();
        }
        let mut roots = self.roots;
        let client = build_client(GuardedResolver::new(GaiResolver::new(), rule), &mut roots, connect);
        self.custom.rcu(|clients| {
            let mut clients = HashMap::clone(clients);
            clients.entry(key).or_insert_with(|| client.clone());
            clients
        });
        self.custom.load().get(&key).cloned().unwrap_or(client)
    }
}

impl Default for HttpClients {
    fn default() -> Self {
        Self::new()
    }
}

/// Where TLS trust comes from; decided by the first client built, so the fallback is logged once.
#[derive(Clone, Copy, PartialEq)]
enum Roots {
    Native,
    Mozilla,
}

fn tls(roots: &mut Roots) -> hyper_rustls::HttpsConnectorBuilder<WantsSchemes> {
    if *roots == Roots::Native {
        match hyper_rustls::HttpsConnectorBuilder::new().with_native_roots() {
            Ok(builder) => return builder,
            Err(err) => {
                // Minimal images (distroless, scratch) often ship no CA bundle; Mozilla's roots,
                // compiled in, are the expected behaviour there rather than every HTTPS call failing.
                tracing::info!(error = %err, "no system root certificates; using the built-in Mozilla roots");
                *roots = Roots::Mozilla;
            }
        }
    }
    hyper_rustls::HttpsConnectorBuilder::new().with_webpki_roots()
}

/// The client trace export uses ([`crate::telemetry`]): the collector is the operator's own
/// endpoint (a flag or `OTEL_*` variable, never a custom resource), so no address rule applies.
pub type CollectorClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// HTTP/1.1 for OTLP/HTTP; HTTP/2 only for OTLP/gRPC (prior knowledge over plain TCP, ALPN `h2`
/// over TLS).
pub fn collector_client(http2_only: bool) -> CollectorClient {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(DEFAULT_CONNECT_TIMEOUT));
    let builder = tls(&mut Roots::Native).https_or_http();
    let connector = if http2_only {
        builder.enable_http2().wrap_connector(http)
    } else {
        builder.enable_http1().wrap_connector(http)
    };
    Client::builder(TokioExecutor::new())
        .timer(TokioTimer::new())
        .pool_timer(TokioTimer::new())
        .http2_only(http2_only)
        .build(connector)
}

/// Generic over the inner resolver so tests can put a fixed name → address map under the guard.
fn build_client<R>(
    resolver: GuardedResolver<R>,
    roots: &mut Roots,
    connect_timeout: Duration,
) -> Client<HttpsConnector<HttpConnector<GuardedResolver<R>>>, Full<Bytes>>
where
    R: Service<Name> + Clone + Send + Sync + 'static,
    R::Response: Iterator<Item = SocketAddr>,
    R::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    R::Future: Send + 'static,
{
    let mut http = HttpConnector::new_with_resolver(resolver);
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_keepalive(Some(Duration::from_secs(60)));
    http.set_connect_timeout(Some(connect_timeout));
    let connector = tls(roots).https_or_http().enable_http1().wrap_connector(http);
    Client::builder(TokioExecutor::new())
        .timer(TokioTimer::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(512)
        .build(connector)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn providers_with_their_own_connect_timeout_get_their_own_client() {
        let clients = HttpClients::new();
        let _ = clients.with_connect_timeout(AddressRule::NoLocal, DEFAULT_CONNECT_TIMEOUT);
        assert!(clients.custom.load().is_empty(), "the default timeout uses the shared client");
        let _ = clients.with_connect_timeout(AddressRule::NoLocal, Duration::from_secs(2));
        let _ = clients.with_connect_timeout(AddressRule::NoLocal, Duration::from_secs(2));
        let _ = clients.with_connect_timeout(AddressRule::AllowAll, Duration::from_secs(2));
        assert_eq!(clients.custom.load().len(), 2, "one per rule and timeout, built once");
    }
    use crate::upstream::resolve::testing::FakeDns;
    use http::{Request, StatusCode};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// A loopback HTTP server answering every request with 200 and closing the connection.
    async fn listener() -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let response = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok";
                let _ = stream.write_all(response).await;
            }
        });
        port
    }

    fn get(url: &str) -> Request<Full<Bytes>> {
        Request::get(url).body(Full::new(Bytes::new())).unwrap()
    }

    /// The error and its causes, as the gateway reports them.
    fn chain(err: &hyper_util::client::legacy::Error) -> String {
        crate::upstream::exec::describe_client_error(err)
    }

    #[tokio::test]
    async fn localhost_is_refused_for_pushed_configs_and_reached_by_files() {
        let port = listener().await;
        let url = format!("http://localhost:{port}/");
        let clients = HttpClients::new();

        let err = clients.for_rule(AddressRule::NoLocal).request(get(&url)).await.unwrap_err();
        let message = chain(&err);
        assert!(err.is_connect(), "{message}");
        assert!(
            message.starts_with(
                "client error (Connect): dns error: upstream host \"localhost\" resolves only to refused \
                 addresses (127.0.0.1: loopback address"
            ),
            "{message}"
        );
        assert!(message.ends_with("; set allow_private_network: true to allow them"), "{message}");

        for rule in [AddressRule::NoLinkLocal, AddressRule::AllowAll] {
            let response = clients.for_rule(rule).request(get(&url)).await.unwrap();
            assert_eq!(response.status(), StatusCode::OK, "{rule:?}");
        }
    }

    #[tokio::test]
    async fn a_name_resolving_to_metadata_fails_with_the_reason() {
        let dns =
            FakeDns::new(&[("metadata.internal", &["169.254.169.254"]), ("models.internal", &["127.0.0.1"])]);
        let client = build_client(
            GuardedResolver::new(dns, AddressRule::NoLinkLocal),
            &mut Roots::Mozilla,
            DEFAULT_CONNECT_TIMEOUT,
        );
        let err = client.request(get("http://metadata.internal/latest/meta-data/")).await.unwrap_err();
        assert_eq!(
            chain(&err),
            "client error (Connect): dns error: upstream host \"metadata.internal\" resolves only to refused \
             addresses (169.254.169.254: link-local address (cloud metadata endpoint)); set \
             allow_private_network: true to allow them"
        );

        // The same client still reaches names that resolve to allowed addresses.
        let port = listener().await;
        let response = client.request(get(&format!("http://models.internal:{port}/"))).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
}
