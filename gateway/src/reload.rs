//! Where configs come from and how a new one replaces the old.
//!
//! `prepare` parses, validates and compiles (fallible); `apply` swaps (infallible). A file source
//! is watched: every change is prepared, and a broken file is logged with every problem's field
//! path, counted in `switchboard_config_reload_failures_total`, and never reaches `apply`, so the
//! previous config keeps serving.

use crate::Gateway;
use crate::table::{CompileContext, RoutingTable, compile};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;
use switchboard_config::{ConfigErrors, EMBEDDED_DEFAULT_YAML, Format, Snapshot};

/// Quiet time after a file event before reading, so an editor's truncate-then-write is read once
/// complete rather than half-written.
const DEBOUNCE: Duration = Duration::from_millis(25);
/// A safety net for filesystems whose change events are unreliable (network mounts).
const POLL_EVERY: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
pub enum ConfigSource {
    Embedded,
    File(PathBuf),
}

impl ConfigSource {
    pub fn format(&self) -> Format {
        match self {
            ConfigSource::Embedded => Format::Yaml,
            ConfigSource::File(path) => Format::of_path(path),
        }
    }

    pub fn read(&self) -> Result<String, String> {
        match self {
            ConfigSource::Embedded => Ok(EMBEDDED_DEFAULT_YAML.to_owned()),
            ConfigSource::File(path) => {
                std::fs::read_to_string(path).map_err(|err| format!("cannot read {}: {err}", path.display()))
            }
        }
    }
}

/// A short hash that names one version of the config in logs and metrics: the document plus the
/// credential files it names, so a rotated Secret counts as a change even when the text did not.
pub fn fingerprint(text: &str, credential_files: &[impl AsRef<str>]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(text.as_bytes());
    for path in credential_files {
        hasher.update(path.as_ref().as_bytes());
        match std::fs::read(path.as_ref()) {
            Ok(contents) => hasher.update(&contents),
            Err(err) => hasher.update(err.kind().to_string().as_bytes()),
        }
    }
    hasher.finalize().iter().take(6).map(|b| format!("{b:02x}")).collect()
}

/// Parses, validates and compiles a config document. Blocking (it may read credential files):
/// call it from a blocking thread when on the runtime.
pub fn prepare(text: &str, format: Format, ctx: &CompileContext) -> Result<RoutingTable, ConfigErrors> {
    let snapshot = Snapshot::parse(text, format)?;
    compile(&snapshot, &fingerprint(text, &snapshot.credential_files()), ctx)
}

/// What one look at the config file found.
enum Change {
    Unchanged,
    Unreadable { marker: String, error: std::io::Error },
    Valid { fingerprint: String, table: Box<RoutingTable> },
    Invalid { fingerprint: String, errors: ConfigErrors },
}

/// One request to the config thread.
struct Look {
    last_seen: String,
    credential_files: Vec<String>,
    done: tokio::sync::oneshot::Sender<Change>,
}

/// Reading files and compiling a config (10,000 keys take milliseconds and megabytes) happen on
/// one long-lived thread: off the runtime's workers, and always in the same allocator arena, so
/// repeated reloads reuse memory instead of spreading it over per-thread arenas (measured:
/// 30 reloads of 10,000 keys grew RSS to 42 MiB on short-lived blocking threads).
fn spawn_looker(path: PathBuf, ctx: CompileContext) -> std::sync::mpsc::Sender<Look> {
    let (tx, rx) = std::sync::mpsc::channel::<Look>();
    let spawned = std::thread::Builder::new().name("config".into()).spawn(move || {
        for job in rx {
            let change = look(&path, &job.last_seen, &job.credential_files, &ctx);
            let compiled = matches!(change, Change::Valid { .. } | Change::Invalid { .. });
            let _ = job.done.send(change);
            if compiled {
                crate::memory::release_free_memory();
            }
        }
    });
    if let Err(err) = spawned {
        tracing::error!(error = %err, "cannot start the config thread; reloads are off");
    }
    tx
}

/// Reads the file and, if its fingerprint differs from `last_seen`, prepares it. The credential
/// files are those of the config being served (a new text is prepared anyway). Blocking.
fn look(path: &Path, last_seen: &str, credential_files: &[String], ctx: &CompileContext) -> Change {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) => {
            let marker = format!("unreadable: {}", error.kind());
            return if marker == last_seen {
                Change::Unchanged
            } else {
                Change::Unreadable { marker, error }
            };
        }
    };
    let fingerprint = fingerprint(&text, credential_files);
    if fingerprint == last_seen {
        return Change::Unchanged;
    }
    match prepare(&text, Format::of_path(path), ctx) {
        // The table's own fingerprint covers its (possibly new) credential files.
        Ok(table) => Change::Valid { fingerprint: table.hash.clone(), table: Box::new(table) },
        Err(errors) => Change::Invalid { fingerprint, errors },
    }
}

/// Publishes a compiled table.
pub fn apply(gateway: &Gateway, table: RoutingTable) {
    gateway.metrics.config_applied(table.generation, &table.hash);
    tracing::info!(
        generation = table.generation,
        hash = %table.hash,
        routes = table.routes.len(),
        keys = table.keys.len(),
        "config applied"
    );
    gateway.tables.swap(table);
}

/// Watches `path` and applies every valid change until the process ends.
pub async fn watch_file(
    path: PathBuf,
    gateway: std::sync::Arc<Gateway>,
    ctx: CompileContext,
    loaded_hash: String,
) {
    let (tx, mut events) = tokio::sync::mpsc::unbounded_channel();
    // Watch the directory, not the file: editors and Kubernetes ConfigMap mounts replace the file
    // (rename or symlink swap), which a watch on the old inode would never see.
    let directory = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_owned();
    let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        // Opening and reading files is reported too, our own reads included: reacting to those
        // would make every look trigger the next one.
        if let Ok(event) = &event
            && matches!(event.kind, notify::EventKind::Access(_))
        {
            return;
        }
        let _ = tx.send(());
    })
    .and_then(|mut watcher| {
        notify::Watcher::watch(&mut watcher, &directory, notify::RecursiveMode::NonRecursive)
            .map(|()| watcher)
    });
    let _watcher = match watcher {
        Ok(watcher) => Some(watcher),
        Err(err) => {
            tracing::warn!(path = %path.display(), error = %err, "cannot watch the config file; polling every 5 s instead");
            None
        }
    };
    let looker = spawn_looker(path.clone(), ctx);
    let mut last_seen = loaded_hash;
    // The first tick is immediate: it catches a change made between the initial load and the
    // watcher's registration (cheap when nothing changed: one read and one hash).
    let mut poll = tokio::time::interval(POLL_EVERY);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            Some(()) = events.recv() => {
                while let Ok(Some(())) = tokio::time::timeout(DEBOUNCE, events.recv()).await {}
            }
            _ = poll.tick() => {}
        }
        gateway.metrics.config_checks.fetch_add(1, Relaxed);
        let credential_files = gateway.tables.load().map(|t| t.credential_files.clone()).unwrap_or_default();
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let job = Look { last_seen: last_seen.clone(), credential_files, done: done_tx };
        if looker.send(job).is_err() {
            tracing::error!("the config thread is gone; reloads have stopped");
            return;
        }
        let Ok(change) = done_rx.await else {
            continue;
        };
        match change {
            Change::Unchanged => {}
            Change::Unreadable { marker, error } => {
                gateway.metrics.config_reload_failures.fetch_add(1, Relaxed);
                tracing::error!(path = %path.display(), error = %error, "config file unreadable; still serving the previous config");
                last_seen = marker;
            }
            Change::Valid { fingerprint, table } => {
                gateway.metrics.config_reloads.fetch_add(1, Relaxed);
                apply(&gateway, *table);
                last_seen = fingerprint;
            }
            Change::Invalid { fingerprint, errors } => {
                gateway.metrics.config_reload_failures.fetch_add(1, Relaxed);
                let serving = gateway.tables.load().map(|t| t.hash.clone()).unwrap_or_default();
                tracing::error!(
                    path = %path.display(),
                    rejected = %fingerprint,
                    serving = %serving,
                    errors = %errors,
                    "config rejected; still serving the previous config"
                );
                last_seen = fingerprint;
            }
        }
    }
}

/// Validates a config file exactly as the server would load it (parse, validate, compile), for
/// `switchboard-gateway check` and the examples test. Returns a one-line summary or every problem.
pub fn check_file(path: &Path) -> Result<String, Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(|err| vec![format!("cannot read: {err}")])?;
    let ctx = CompileContext {
        client: crate::upstream::new_http_client(),
        metrics: std::sync::Arc::new(crate::metrics::Metrics::default()),
    };
    let table = prepare(&text, Format::of_path(path), &ctx)
        .map_err(|errors| errors.iter().map(ToString::to_string).collect::<Vec<_>>())?;
    Ok(format!(
        "{} providers, {} routes, {} keys, generation {}",
        table.upstreams.len(),
        table.routes.len(),
        table.keys.len(),
        table.generation
    ))
}
