//! The gateway's side of the snapshot stream (`--operator URL`; protocol in `docs/stream.md`).
//!
//! One HTTP/2 request per connection: the request body carries this replica's messages (hello,
//! acks, nacks, heartbeats), the response body the operator's (welcome, snapshots, heartbeats),
//! one JSON object per line. Each snapshot goes through the same prepare/apply pair as a file
//! (accepted entry by entry, on the config thread), and is answered with an ack or a nack. When
//! the stream breaks, the replica keeps serving what it has and reconnects with capped
//! exponential backoff and jitter.

use crate::Gateway;
use crate::pushed::{Push, PushError, PushPrepared};
use crate::reload::{ConfigThread, apply};
use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderValue, Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use switchboard_config::SUPPORTED_SCHEMA_VERSIONS;
use switchboard_config::stream::{
    HEARTBEAT_EVERY_MS, Lines, OperatorMessage, PEER_DEAD_AFTER_MS, ReplicaMessage, Served, WireProblem,
    WireRejection, encode,
};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep, sleep_until};
use tokio_rustls::rustls;
use tokio_stream::wrappers::ReceiverStream;

/// The path the operator serves the stream on.
pub const STREAM_PATH: &str = "/v1/stream";

/// Where the operator is and how to prove who we are.
#[derive(Clone)]
pub struct OperatorLink {
    /// `https://operator:8443` (or `http://` with the insecure flag, for tests and development).
    pub url: Uri,
    /// File holding the shared stream token (a mounted Secret), read at every connect so a
    /// rotated token is used from the next connection on; sent as `Authorization: Bearer`.
    pub token_file: Option<std::path::PathBuf>,
    /// TLS settings for `https` URLs (the operator's CA); `None` for plain text.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// This replica's name (pod name, else host name).
    pub replica: String,
    /// Where the last applied snapshot is kept (static stability).
    pub snapshot_cache: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for OperatorLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OperatorLink")
            .field("url", &self.url)
            .field("replica", &self.replica)
            .finish_non_exhaustive()
    }
}

/// Follows the operator until the process ends: connect, apply what it sends, reconnect.
pub async fn follow(link: OperatorLink, gateway: Arc<Gateway>, config_thread: ConfigThread) {
    let mut backoff = Backoff::default();
    loop {
        let started = Instant::now();
        let outcome = session(&link, &gateway, &config_thread).await;
        gateway.metrics.operator_connected.set(0);
        match outcome {
            Ok(()) => tracing::info!(operator = %link.url, "the operator closed the stream; reconnecting"),
            Err(err) => {
                tracing::warn!(operator = %link.url, error = %err, "operator stream failed; still serving the last snapshot")
            }
        }
        // A connection that lived a while resets the backoff: the next failure is a new outage.
        if started.elapsed() > Duration::from_secs(30) {
            backoff = Backoff::default();
        }
        sleep(backoff.next_delay()).await;
    }
}

type Outgoing = mpsc::Sender<Result<Frame<Bytes>, Infallible>>;

async fn session(link: &OperatorLink, gateway: &Gateway, config_thread: &ConfigThread) -> Result<(), String> {
    let mut sender = match &link.tls {
        Some(tls) => start(connect_tls(link, tls.clone()).await?).await?,
        None => start(connect_tcp(link).await?).await?,
    };

    let (outgoing, queue) = mpsc::channel(16);
    let serving = gateway.tables.load().map(|t| Served { generation: t.generation, hash: t.hash.clone() });
    let versions = SUPPORTED_SCHEMA_VERSIONS;
    let hello = ReplicaMessage::Hello {
        replica: link.replica.clone(),
        build: env!("CARGO_PKG_VERSION").to_owned(),
        reads: (*versions.start(), *versions.end()),
        serving,
        deltas: true,
    };
    send(&outgoing, &hello).await?;
    let uri = Uri::builder()
        .scheme(link.url.scheme_str().unwrap_or("https"))
        .authority(link.url.authority().map(|a| a.as_str()).unwrap_or_default())
        .path_and_query(STREAM_PATH)
        .build()
        .map_err(|e| format!("operator URL: {e}"))?;
    let mut request = Request::new(StreamBody::new(ReceiverStream::new(queue)));
    *request.method_mut() = Method::POST;
    *request.uri_mut() = uri;
    request.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/x-ndjson"));
    if let Some(file) = &link.token_file {
        let token = std::fs::read_to_string(file)
            .map_err(|e| format!("reading the stream token {}: {e}", file.display()))?;
        let mut value = HeaderValue::from_str(&format!("Bearer {}", token.trim()))
            .map_err(|_| "the stream token is not a valid header value")?;
        value.set_sensitive(true);
        request.headers_mut().insert(AUTHORIZATION, value);
    }
    let response = sender.send_request(request).await.map_err(|e| format!("opening the stream: {e}"))?;
    match response.status() {
        StatusCode::OK => {}
        StatusCode::UNAUTHORIZED => return Err("the operator refused our stream token".into()),
        other => return Err(format!("the operator answered {other}")),
    }
    let mut body = response.into_body();
    let mut lines = Lines::default();
    let mut heartbeat = tokio::time::interval(Duration::from_millis(HEARTBEAT_EVERY_MS));
    let mut silent_until = Instant::now() + Duration::from_millis(PEER_DEAD_AFTER_MS);
    loop {
        tokio::select! {
            frame = body.frame() => {
                let Some(frame) = frame else { return Ok(()) };
                let frame = frame.map_err(|e| format!("reading the stream: {e}"))?;
                silent_until = Instant::now() + Duration::from_millis(PEER_DEAD_AFTER_MS);
                gateway.metrics.operator_last_contact_unix.set(crate::unix_now() as u64);
                let Ok(data) = frame.into_data() else { continue };
                for line in lines.push(&data)? {
                    let message: OperatorMessage =
                        serde_json::from_slice(&line).map_err(|e| format!("a message from the operator does not parse: {e}"))?;
                    handle(message, link, gateway, config_thread, &outgoing).await?;
                }
            }
            _ = heartbeat.tick() => send(&outgoing, &ReplicaMessage::Heartbeat).await?,
            () = sleep_until(silent_until) => {
                return Err(format!("nothing from the operator for {} ms", PEER_DEAD_AFTER_MS));
            }
        }
    }
}

async fn handle(
    message: OperatorMessage,
    link: &OperatorLink,
    gateway: &Gateway,
    config_thread: &ConfigThread,
    outgoing: &Outgoing,
) -> Result<(), String> {
    match message {
        OperatorMessage::Welcome { operator, version } => {
            gateway.metrics.operator_connected.set(1);
            tracing::info!(operator = %operator, schema_version = version, "following the operator");
        }
        OperatorMessage::Refused { reason } => {
            return Err(format!("the operator refused this replica: {reason}"));
        }
        OperatorMessage::Heartbeat => {}
        OperatorMessage::Snapshot { generation, document } => {
            let text = String::from(Box::<str>::from(document));
            push(Push::Whole(text), generation, link, gateway, config_thread, outgoing).await?;
        }
        OperatorMessage::Delta { generation, base, hash, changes } => {
            let delta = Push::Delta { generation, base, hash, changes };
            push(delta, generation, link, gateway, config_thread, outgoing).await?;
        }
    }
    Ok(())
}

/// Prepares and applies what the operator pushed, answers it, then keeps the document for a
/// restart without the operator (after the answer: the operator is waiting for it, and writing
/// megabytes to disk is not part of serving the change).
async fn push(
    push: Push,
    generation: u64,
    link: &OperatorLink,
    gateway: &Gateway,
    config_thread: &ConfigThread,
    outgoing: &Outgoing,
) -> Result<(), String> {
    let mut cached = None;
    let reply = match config_thread.push(push, link.snapshot_cache.is_some()).await {
        Ok(PushPrepared { prepared, text }) => match apply(gateway, prepared) {
            Ok(applied) => {
                gateway.metrics.config_reloads.inc();
                cached = text;
                let rejected = applied.rejected.iter().map(WireRejection::from).collect();
                ReplicaMessage::Ack { generation: applied.generation, hash: applied.hash, rejected }
            }
            Err(stale) => nack(gateway, generation, vec![problem("generation", &stale.to_string())]),
        },
        Err(PushError::Refused(errors)) => {
            nack(gateway, generation, errors.iter().map(WireProblem::from).collect())
        }
        Err(PushError::Resync(reason)) => {
            tracing::warn!(generation, reason = %reason, "a delta does not fit the document held; asking for the whole snapshot");
            ReplicaMessage::Resync { generation, reason }
        }
    };
    send(outgoing, &reply).await?;
    if let (Some(path), Some(text)) = (link.snapshot_cache.clone(), cached) {
        let written = tokio::task::spawn_blocking(move || write_cache(&path, &text)).await;
        if let Ok(Err(err)) = written {
            tracing::warn!(error = %err, "cannot keep the snapshot for a restart without the operator");
        }
    }
    Ok(())
}

/// Writes the snapshot atomically (a temporary file, then a rename), readable by this user only:
/// it holds provider credentials.
pub fn write_cache(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let temporary = path.with_extension("tmp");
    let mut file =
        std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&temporary)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&temporary, path)
}

/// The snapshot kept by [`write_cache`], if any.
pub fn read_cache(path: &std::path::Path) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

fn nack(gateway: &Gateway, generation: u64, reasons: Vec<WireProblem>) -> ReplicaMessage {
    gateway.metrics.config_reload_failures.inc();
    let shown: Vec<String> = reasons.iter().map(|r| format!("{}: {}", r.path, r.reason)).collect();
    tracing::error!(generation, reasons = %shown.join("; "), "pushed snapshot refused; still serving the previous one");
    ReplicaMessage::Nack { generation, reasons }
}

fn problem(path: &str, reason: &str) -> WireProblem {
    WireProblem { path: path.to_owned(), reason: reason.to_owned(), object: None }
}

async fn send(outgoing: &Outgoing, message: &ReplicaMessage) -> Result<(), String> {
    let frame = Frame::data(Bytes::from(encode(message)));
    outgoing.send(Ok(frame)).await.map_err(|_| "the stream request ended".to_owned())
}

type RequestBody = StreamBody<ReceiverStream<Result<Frame<Bytes>, Infallible>>>;

/// The HTTP/2 handshake; the connection is driven by its own task until either side closes it.
async fn start<T>(io: T) -> Result<hyper::client::conn::http2::SendRequest<RequestBody>, String>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sender, connection) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .timer(TokioTimer::new())
        // HTTP/2 pings notice a half-open TCP connection even when both sides are quiet.
        .keep_alive_interval(Duration::from_millis(HEARTBEAT_EVERY_MS))
        .keep_alive_timeout(Duration::from_millis(PEER_DEAD_AFTER_MS))
        .handshake::<_, RequestBody>(TokioIo::new(io))
        .await
        .map_err(|e| format!("HTTP/2 handshake: {e}"))?;
    tokio::spawn(async move {
        if let Err(err) = connection.await {
            tracing::debug!(error = %err, "operator connection ended");
        }
    });
    Ok(sender)
}

fn host_port(link: &OperatorLink) -> Result<(String, u16), String> {
    let host = link.url.host().ok_or("the operator URL has no host")?;
    let default = if link.url.scheme_str() == Some("http") { 80 } else { 443 };
    Ok((
        host.trim_start_matches('[').trim_end_matches(']').to_owned(),
        link.url.port_u16().unwrap_or(default),
    ))
}

async fn connect_tcp(link: &OperatorLink) -> Result<TcpStream, String> {
    let (host, port) = host_port(link)?;
    let stream = tokio::time::timeout(Duration::from_secs(10), TcpStream::connect((host.as_str(), port)))
        .await
        .map_err(|_| "connecting timed out".to_owned())?
        .map_err(|e| format!("connecting: {e}"))?;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

async fn connect_tls(
    link: &OperatorLink,
    tls: Arc<rustls::ClientConfig>,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, String> {
    let (host, _) = host_port(link)?;
    let stream = connect_tcp(link).await?;
    let name = rustls::pki_types::ServerName::try_from(host).map_err(|e| format!("operator host: {e}"))?;
    tokio_rustls::TlsConnector::from(tls).connect(name, stream).await.map_err(|e| format!("TLS: {e}"))
}

/// TLS to the operator: its CA (PEM) when given, else the system roots; HTTP/2 by ALPN.
pub fn client_tls(ca_file: Option<&std::path::Path>) -> Result<Arc<rustls::ClientConfig>, String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let certs =
                CertificateDer::pem_file_iter(path).map_err(|e| format!("{}: {e}", path.display()))?;
            for cert in certs {
                let cert = cert.map_err(|e| format!("{}: {e}", path.display()))?;
                roots.add(cert).map_err(|e| format!("{}: {e}", path.display()))?;
            }
        }
        None => {
            let native = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(native.certs);
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

/// This replica's name: `POD_NAME` (the downward API), else the host name.
pub fn replica_name() -> String {
    std::env::var("POD_NAME")
        .ok()
        .filter(|n| !n.is_empty())
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok().map(|h| h.trim().to_owned()))
        .unwrap_or_else(|| "unknown".to_owned())
}

/// Capped exponential backoff with full jitter: 0.2 s doubling to 30 s, each delay uniform in
/// [cap/2, cap], so a fleet that lost its operator does not reconnect in lockstep.
#[derive(Debug)]
struct Backoff {
    cap: Duration,
    seed: u64,
}

impl Default for Backoff {
    fn default() -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
        Backoff { cap: Duration::from_millis(200), seed: nanos ^ u64::from(std::process::id()) | 1 }
    }
}

impl Backoff {
    fn next_delay(&mut self) -> Duration {
        // xorshift64: jitter needs spread, not unpredictability.
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        let cap = self.cap.as_millis() as u64;
        let delay = cap / 2 + self.seed % (cap / 2 + 1);
        self.cap = (self.cap * 2).min(Duration::from_secs(30));
        Duration::from_millis(delay)
    }
}

#[cfg(test)]
mod tests {
    use super::Backoff;
    use std::time::Duration;

    #[test]
    fn backoff_doubles_to_a_cap_with_jitter() {
        let mut backoff = Backoff::default();
        let delays: Vec<Duration> = (0..12).map(|_| backoff.next_delay()).collect();
        assert!(delays[0] >= Duration::from_millis(100) && delays[0] <= Duration::from_millis(200));
        assert!(delays.iter().all(|d| *d <= Duration::from_secs(30)));
        assert!(delays[11] >= Duration::from_secs(15), "capped at 30 s, at least half of it: {delays:?}");
        let mut other = Backoff { seed: 12345, ..Backoff::default() };
        let mut same = Backoff { seed: 12345, ..Backoff::default() };
        assert_eq!(other.next_delay(), same.next_delay());
    }
}
