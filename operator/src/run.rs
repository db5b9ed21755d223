//! `switchboard-operator run`: the controller and the snapshot stream, until SIGTERM.

use crate::controller::Controller;
use crate::elect::Election;
use crate::publish::{Publisher, serve};
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::rustls;

/// Settings of `run`.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Namespaces to watch (empty: all).
    pub namespaces: Vec<String>,
    pub stream_listen: SocketAddr,
    /// Address of /healthz, /readyz and /metrics.
    pub admin_listen: SocketAddr,
    pub stream_token_file: Option<PathBuf>,
    pub tls_cert_file: Option<PathBuf>,
    pub tls_key_file: Option<PathBuf>,
    /// Plain-text stream without a token (tests and development).
    pub stream_insecure: bool,
    /// This operator's name in logs, in the Lease and in what replicas see.
    pub identity: String,
    /// Where the leader-election Lease lives.
    pub lease_namespace: String,
    pub lease_name: String,
    pub lease_timing: crate::lease::Timing,
    /// How long a disconnected gateway replica still counts in `Programmed`.
    pub replica_grace: std::time::Duration,
    /// Where to read VirtualKeys' spend (`--redis-url`); `None`: statuses show no spend.
    pub spend: Option<crate::spend::SpendSettings>,
}

pub async fn run(options: RunOptions) -> Result<(), String> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| format!("cannot listen for SIGTERM: {e}"))?;
    let tls = match (&options.tls_cert_file, &options.tls_key_file, options.stream_insecure) {
        (Some(cert), Some(key), _) => Some(server_tls(cert, key)?),
        (None, None, true) => None,
        _ => return Err("the stream needs --tls-cert-file and --tls-key-file (or --stream-insecure for tests and development)".into()),
    };
    let token = match &options.stream_token_file {
        Some(file) => Some(
            std::fs::read_to_string(file)
                .map_err(|e| format!("reading {}: {e}", file.display()))?
                .trim()
                .to_owned(),
        ),
        None if options.stream_insecure => None,
        None => {
            return Err(
                "the stream needs --stream-token-file (or --stream-insecure for tests and development)"
                    .into(),
            );
        }
    };
    // Checked now (a malformed URL is a configuration error); a Redis that is down is waited for
    // at most the Redis timeout, then retried: it must not keep the operator from serving.
    let spend = match &options.spend {
        Some(settings) => Some(crate::spend::SpendReader::connect(settings).await?),
        None => None,
    };
    let client =
        kube::Client::try_default().await.map_err(|e| format!("connecting to the API server: {e}"))?;
    let metrics = Arc::new(crate::metrics::OperatorMetrics::default());
    let admin = TcpListener::bind(options.admin_listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", options.admin_listen))?;
    announce(&format!("admin listening admin={}", admin.local_addr().map_err(|e| e.to_string())?));
    tokio::spawn(crate::admin::serve(admin, metrics.clone()));
    let (stop, mut stopped) = watch::channel(false);
    tokio::spawn(async move {
        tokio::select! {
            _ = terminate.recv() => tracing::info!("SIGTERM: stopping"),
            _ = tokio::signal::ctrl_c() => tracing::info!("interrupted: stopping"),
        }
        let _ = stop.send(true);
    });

    // Only the leader compiles, writes statuses and serves the stream: a standby waits here, and
    // its stream port stays closed, so replicas (through the Service) reach the leader.
    let election = Election {
        api: kube::Api::namespaced(client.clone(), &options.lease_namespace),
        name: options.lease_name.clone(),
        identity: options.identity.clone(),
        timing: options.lease_timing,
    };
    if !election.acquire(&mut stopped).await {
        return Ok(());
    }
    let publisher = Publisher::with_grace(&options.identity, token, options.replica_grace);
    let _ = metrics.publisher.set(publisher.clone());
    let listener = TcpListener::bind(options.stream_listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", options.stream_listen))?;
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    // Ready before the announcement: whoever reads "listening" may ask /readyz at once.
    metrics.leading.store(1, std::sync::atomic::Ordering::Relaxed);
    announce(&format!("listening stream={address}"));
    tracing::info!(stream = %address, tls = tls.is_some(), namespaces = ?options.namespaces, "leading: serving the stream");

    // Everything below stops when the process is asked to, or when leadership is lost.
    let (halt, halted) = watch::channel(false);
    let stream = tokio::spawn(serve(listener, tls, publisher.clone(), halted.clone()));
    let reporter = kube::runtime::events::Reporter {
        controller: "switchboard-operator".into(),
        instance: Some(options.identity.clone()),
    };
    let recorder = kube::runtime::events::Recorder::new(client.clone(), reporter);
    let controller = Controller {
        client,
        namespaces: options.namespaces.clone(),
        publisher,
        metrics: metrics.clone(),
        recorder,
        spend,
    };
    let controlling = tokio::spawn(controller.run(halted));
    let held = election.hold(&mut stopped).await;
    metrics.leading.store(0, std::sync::atomic::Ordering::Relaxed);
    let _ = halt.send(true);
    let _ = stream.await;
    let controlled = controlling.await.map_err(|err| format!("the controller task failed: {err}"))?;
    // Losing the lease ends the process (as client-go's leader election does): the next
    // incarnation starts as a candidate with nothing left over from its time as leader.
    held.map_err(|lost| format!("stopped leading: {lost}"))?;
    controlled
}

fn server_tls(cert: &std::path::Path, key: &std::path::Path) -> Result<tokio_rustls::TlsAcceptor, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{}: {e}", cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("{}: {e}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("TLS: {e}"))?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// One machine-readable line on stdout with the bound address (useful with port 0).
fn announce(line: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{line}");
    let _ = stdout.flush();
}
