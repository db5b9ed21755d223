//! Switchboard's data plane.
//!
//! `main.rs` parses flags and calls [`run`]. The request path is [`handle`]; the config path is
//! [`reload`] → [`table`]; the error edge is [`error`]. See `docs/architecture.md`.

pub mod access_log;
pub mod admin;
pub mod admission;
pub mod auth;
pub mod body;
pub mod cli;
pub mod conversations;
pub mod count_tokens;
pub mod edge;
pub mod error;
pub mod forward;
pub mod handle;
mod hex;
pub mod inbound;
pub mod ledger;
pub mod limits;
pub mod memory;
pub mod metrics;
pub mod pushed;
pub mod registry;
pub mod reload;
pub mod request_id;
pub mod responses;
pub mod server;
pub mod spend;
pub mod sync;
pub mod table;
pub mod telemetry;
pub mod upstream;

use metrics::Metrics;
use reload::ConfigSource;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use table::{BackendState, CompileContext, TableHolder};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Process-wide settings that are not part of the config snapshot.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Whether configs come from the operator's stream (`--operator`).
    pub follows_operator: bool,
}

/// State shared by every connection.
pub struct Gateway {
    pub tables: TableHolder,
    pub metrics: Arc<Metrics>,
    /// Backend health and balancing cursors, kept across config swaps.
    pub state: Arc<BackendState>,
    pub settings: Settings,
    /// The bounds that keep this replica serving under hostile or excessive load.
    pub edge: edge::Edge,
    /// Rate-limit and budget counters (local ones, and the Redis store if configured).
    pub limits: Arc<limits::Limits>,
    /// Stored responses of the Responses API (in memory, or in Redis with `--redis-url`).
    pub conversations: conversations::Store,
    /// Set on SIGTERM: `/readyz` fails so load balancers stop sending new work.
    pub draining: AtomicBool,
    /// OpenTelemetry traces; `None` (the default) when no OTLP endpoint is configured.
    pub telemetry: Option<telemetry::Telemetry>,
}

pub fn unix_now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

pub fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// Loads the config, serves until SIGTERM or Ctrl-C, then drains.
pub async fn run(options: cli::ServeOptions) -> Result<(), String> {
    // Registered first: once the listening line is out, SIGTERM must mean "drain", never the
    // default action (instant death), however the threads happen to be scheduled.
    let terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| format!("cannot listen for SIGTERM: {e}"))?;
    let source = options.config.clone().map_or(ConfigSource::Embedded, ConfigSource::File);
    let metrics = Arc::new(Metrics::new(
        match options.access_log {
            Some(rate) => access_log::Sampler::new(rate),
            None => access_log::Sampler::off(),
        },
        options.key_metrics,
    ));
    let ctx = CompileContext::new(metrics.clone());
    let redis = match &options.redis {
        Some(settings) => Some(limits::redis::RedisStore::connect(settings).await?),
        None => None,
    };
    let conversations = match &options.redis {
        Some(settings) => {
            let client = switchboard_redis::RedisClient::connect(settings).await?;
            conversations::Store::in_redis(
                client,
                settings.prefix.clone(),
                settings.timeout,
                options.responses,
            )
        }
        None => conversations::Store::in_memory(options.responses),
    };
    let limits = Arc::new(limits::Limits::new(redis));
    metrics.watch_limits(limits.clone());
    metrics.watch_backends(ctx.state.clone());
    tokio::spawn(sweep_local_limits(limits.clone()));
    let edge_limits = edge::EdgeLimits {
        max_body_bytes: options.max_body_bytes,
        max_in_flight: options.max_in_flight,
        max_buffered_body_bytes: options.max_buffered_body_bytes,
        request_deadline: options.request_deadline,
    };
    let edge = edge::Edge::new(edge_limits, metrics.clone());
    let telemetry = telemetry::Telemetry::start(&options.traces, metrics.trace_spans_dropped.clone())?;
    let gateway = Arc::new(Gateway {
        tables: TableHolder::default(),
        metrics,
        state: ctx.state.clone(),
        settings: Settings { follows_operator: options.operator.is_some() },
        edge,
        limits,
        conversations,
        draining: AtomicBool::new(false),
        telemetry,
    });
    // With an operator the first table arrives on its stream (until then /readyz says so and
    // requests get 503); never the embedded default, whose development key would then open a
    // production gateway.
    let mut loaded_hash = String::new();
    if options.operator.is_none() {
        let text = source.read()?;
        let input = reload::Input::Text { text, format: source.format() };
        let prepared = reload::prepare(input, &ctx).map_err(|errors| {
            let lines: Vec<String> = errors.iter().map(|e| format!("  {e}")).collect();
            format!("invalid config ({}):\n{}", describe(&source), lines.join("\n"))
        })?;
        loaded_hash = prepared.table.hash.clone();
        reload::apply(&gateway, prepared).map_err(|stale| stale.to_string())?;
        // Parsing a big config leaves megabytes of freed memory behind; give it back before serving.
        memory::release_free_memory();
    }

    let api = TcpListener::bind(options.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", options.listen))?;
    let admin = TcpListener::bind(options.admin_listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", options.admin_listen))?;
    let (api_addr, admin_addr) = (local_addr(&api)?, local_addr(&admin)?);
    announce(&format!("listening api={api_addr} admin={admin_addr}"));
    let config = match &options.operator {
        Some(operator) => format!("operator {}", operator.url),
        None => describe(&source),
    };
    tracing::info!(api = %api_addr, admin = %admin_addr, config = %config, "serving");

    if let Some(operator) = &options.operator {
        let tls = match operator.url.scheme_str() {
            Some("https") => Some(sync::client_tls(operator.ca_file.as_deref())?),
            _ => None,
        };
        let link = sync::OperatorLink {
            url: operator.url.clone(),
            token_file: operator.token_file.clone(),
            tls,
            replica: operator.replica.clone().unwrap_or_else(sync::replica_name),
            snapshot_cache: operator.snapshot_cache.clone(),
        };
        let config_thread = reload::ConfigThread::spawn(ctx)?;
        // Static stability: serve the last snapshot this replica applied until the operator
        // answers, so a restart during an operator outage does not take the replica down.
        if let Some(text) = operator.snapshot_cache.as_deref().and_then(sync::read_cache) {
            match config_thread.push(pushed::Push::Whole(text), false).await {
                Ok(pushed::PushPrepared { prepared, .. }) => {
                    let generation = prepared.table.generation;
                    if reload::apply(&gateway, prepared).is_ok() {
                        tracing::info!(generation, "serving the cached snapshot until the operator answers");
                    }
                }
                Err(error) => {
                    tracing::warn!(error = ?error, "the cached snapshot is unusable; waiting for the operator")
                }
            }
        }
        tokio::spawn(sync::follow(link, gateway.clone(), config_thread));
    } else if let ConfigSource::File(path) = &source {
        let config_thread = reload::ConfigThread::spawn(ctx)?;
        tokio::spawn(reload::watch_file(path.clone(), gateway.clone(), config_thread, loaded_hash));
    }
    let (stop_tx, stop_rx) = watch::channel(false);
    // The admin listener outlives the API drain so `/readyz` can report it.
    let (stop_admin_tx, stop_admin_rx) = watch::channel(false);
    let admin_gateway = gateway.clone();
    let admin_task = tokio::spawn(server::serve(
        admin,
        move |request| admin::handle(admin_gateway.clone(), request),
        stop_admin_rx,
        std::time::Duration::from_secs(1),
        options.max_header_bytes,
    ));
    let api_gateway = gateway.clone();
    let api_task = tokio::spawn(server::serve(
        api,
        move |request| handle::handle(api_gateway.clone(), request),
        stop_rx,
        options.drain_timeout,
        options.max_header_bytes,
    ));

    shutdown_signal(terminate).await;
    tracing::info!(
        deadline_secs = options.drain_timeout.as_secs(),
        "shutting down: draining in-flight requests"
    );
    gateway.draining.store(true, Relaxed);
    let _ = stop_tx.send(true);
    let drained = api_task.await.unwrap_or(false);
    let _ = stop_admin_tx.send(true);
    let _ = admin_task.await;
    if let Some(telemetry) = &gateway.telemetry {
        // The last requests' spans; a collector that does not answer does not hold the exit.
        telemetry.flush(std::time::Duration::from_secs(2)).await;
    }
    if drained {
        tracing::info!("drained; exiting");
    } else {
        tracing::warn!("drain deadline passed with requests still running; exiting");
    }
    Ok(())
}

/// Once a minute, drops local limit counters that no key, team or route needs any more.
async fn sweep_local_limits(limits: Arc<limits::Limits>) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(60));
    loop {
        every.tick().await;
        let dropped = limits.sweep_local(unix_now_ms());
        if dropped > 0 {
            tracing::debug!(dropped, "idle local limit counters dropped");
        }
    }
}

fn describe(source: &ConfigSource) -> String {
    match source {
        ConfigSource::Embedded => "embedded default".to_owned(),
        ConfigSource::File(path) => path.display().to_string(),
    }
}

fn local_addr(listener: &TcpListener) -> Result<std::net::SocketAddr, String> {
    listener.local_addr().map_err(|e| format!("cannot read the bound address: {e}"))
}

/// One machine-readable line on stdout with the bound addresses (useful with port 0).
fn announce(line: &str) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{line}");
    let _ = stdout.flush();
}

async fn shutdown_signal(mut terminate: tokio::signal::unix::Signal) {
    tokio::select! {
        _ = terminate.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
