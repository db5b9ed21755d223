//! Where configs come from and how a new one replaces the old.
//!
//! Every source hands the config thread an [`Input`]: a file's text, or a snapshot value (what
//! the operator's stream will deliver). [`prepare`] parses, validates and compiles (fallible);
//! [`apply`] swaps (infallible, except that it refuses a generation older than the one served)
//! and reports what it applied, so a stream can ack or nack. A file source is watched: a broken
//! file is logged with every problem's field path, counted in
//! `switchboard_config_reload_failures_total`, and never reaches `apply`.

use crate::Gateway;
use crate::pushed::{Held, Push, PushError, PushPrepared};
use crate::table::{CompileContext, RoutingTable, compile, compile_accepted};
use sha2::{Digest, Sha256};
use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use switchboard_config::{ConfigErrors, EMBEDDED_DEFAULT_YAML, Format, Origin, Rejection, Snapshot};

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

/// A config to turn into a routing table.
#[derive(Debug)]
pub enum Input {
    /// A document as text (a file): all or nothing.
    Text { text: String, format: Format },
    /// A snapshot value. A pushed one is accepted entry by entry: what is invalid is left out
    /// and reported, the rest serves.
    Snapshot { snapshot: Box<Snapshot>, origin: Origin },
}

/// A compiled table ready to swap in, and what was left out of it.
pub struct Prepared {
    pub table: RoutingTable,
    pub rejected: Vec<Rejection>,
}

/// What [`apply`] put into service: enough for a stream to ack.
#[derive(Debug, Clone)]
pub struct Applied {
    pub generation: u64,
    pub hash: String,
    pub rejected: Vec<Rejection>,
}

/// Why [`apply`] refused a prepared table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stale {
    pub served: u64,
    pub offered: u64,
}

impl std::fmt::Display for Stale {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "generation {} is older than the served generation {}", self.offered, self.served)
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
    short_hex(&hasher.finalize())
}

fn short_hex(digest: &[u8]) -> String {
    digest.iter().take(6).map(|b| format!("{b:02x}")).collect()
}

/// Parses, validates and compiles a config. Blocking (it may read credential files): run it on
/// the config thread, or before the server starts.
pub fn prepare(input: Input, ctx: &CompileContext) -> Result<Prepared, ConfigErrors> {
    match input {
        Input::Text { text, format } => {
            let snapshot = Snapshot::parse(&text, format)?;
            let hash = fingerprint(&text, &snapshot.credential_files());
            Ok(Prepared { table: compile(&snapshot, Origin::File, &hash, ctx)?, rejected: Vec::new() })
        }
        Input::Snapshot { snapshot, origin: Origin::File } => {
            snapshot.validate(Origin::File)?;
            let hash = fingerprint(&snapshot.to_json(), &snapshot.credential_files());
            Ok(Prepared { table: compile(&snapshot, Origin::File, &hash, ctx)?, rejected: Vec::new() })
        }
        Input::Snapshot { snapshot, origin: Origin::Pushed } => {
            // The hash covers what was received, secrets included (a rotated Secret is a new
            // version), so an ack names exactly what the operator sent.
            let hash = short_hex(&Sha256::digest(snapshot.to_json().as_bytes()));
            let accepted = snapshot.accept()?;
            let table = compile_accepted(&accepted, &hash, ctx)?;
            Ok(Prepared { table, rejected: accepted.rejected })
        }
    }
}

/// Publishes a prepared table, unless it is older than the one being served (a reordered or
/// replayed push must never roll the fleet back). Generation 0 means unversioned and is always
/// applied. Then drops shared state and metric series the new table no longer uses.
pub fn apply(gateway: &Gateway, prepared: Prepared) -> Result<Applied, Stale> {
    let Prepared { table, rejected } = prepared;
    let served = gateway.tables.load().map_or(0, |t| t.generation);
    if table.generation != 0 && table.generation < served {
        return Err(Stale { served, offered: table.generation });
    }
    let applied = Applied { generation: table.generation, hash: table.hash.clone(), rejected };
    gateway.metrics.config_applied(table.generation, &table.hash);
    let counted_locally = if gateway.limits.redis().is_none() { table.redis_policies } else { 0 };
    gateway.metrics.policies_counted_locally.set(counted_locally as u64);
    let routes: HashSet<&str> = table.routes.iter().map(|r| &*r.model).collect();
    let providers: HashSet<&str> = table.upstreams.iter().map(|u| &**u.name()).collect();
    gateway.metrics.retain(&routes, &providers);
    gateway.metrics.spend.retain(&table.keys.ids(), &routes);
    gateway.state.retain(&table.used_state);
    let (generation, route_count, key_count, policies) =
        (table.generation, table.routes.len(), table.keys.len(), table.policies);
    gateway.tables.swap(table);
    // Logged once serving, so the line's time is when the change took effect.
    tracing::info!(
        generation,
        hash = %applied.hash,
        routes = route_count,
        keys = key_count,
        policies,
        rejected = applied.rejected.len(),
        "config applied"
    );
    for rejection in &applied.rejected {
        let object = rejection.object.as_ref().map(ToString::to_string).unwrap_or_default();
        tracing::warn!(section = %rejection.section, name = %rejection.name, object = %object, reason = %rejection, "config entry rejected; the rest serves");
    }
    if counted_locally > 0 {
        tracing::warn!(
            policies = counted_locally,
            "redis-mode policies and budgets are counted in this replica only: the gateway has no --redis-url"
        );
    }
    Ok(applied)
}

/// What one look at the config file found.
enum Change {
    Unchanged,
    Unreadable { marker: String, error: std::io::Error },
    Valid { fingerprint: String, prepared: Box<Prepared> },
    Invalid { fingerprint: String, errors: ConfigErrors },
}

/// Work for the config thread.
enum Job {
    /// Read the file and prepare it if it changed.
    Look {
        path: PathBuf,
        last_seen: String,
        credential_files: Vec<String>,
        done: tokio::sync::oneshot::Sender<Change>,
    },
    /// Prepare a config value.
    Prepare { input: Input, done: tokio::sync::oneshot::Sender<Result<Prepared, ConfigErrors>> },
    /// Prepare what the operator pushed, against the document held from earlier pushes.
    Push { push: Push, keep_text: bool, done: tokio::sync::oneshot::Sender<Result<PushPrepared, PushError>> },
}

/// The one long-lived thread that reads files and compiles configs (10,000 keys take
/// milliseconds and megabytes): off the runtime's workers, and always in the same allocator
/// arena, so repeated reloads reuse memory instead of spreading it over per-thread arenas
/// (measured: 30 reloads of 10,000 keys grew RSS to 42 MiB on short-lived blocking threads).
#[derive(Clone)]
pub struct ConfigThread {
    jobs: std::sync::mpsc::Sender<Job>,
}

impl ConfigThread {
    pub fn spawn(ctx: CompileContext) -> Result<Self, String> {
        let (jobs, rx) = std::sync::mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("config".into())
            .spawn(move || {
                let mut held = Held::default();
                for job in rx {
                    let compiled = match job {
                        Job::Look { path, last_seen, credential_files, done } => {
                            let change = look(&path, &last_seen, &credential_files, &ctx);
                            let compiled = matches!(change, Change::Valid { .. } | Change::Invalid { .. });
                            let _ = done.send(change);
                            compiled
                        }
                        Job::Prepare { input, done } => {
                            let _ = done.send(prepare(input, &ctx));
                            true
                        }
                        Job::Push { push, keep_text, done } => {
                            let _ = done.send(held.prepare(push, keep_text, &ctx));
                            true
                        }
                    };
                    if compiled {
                        crate::memory::release_free_memory();
                    }
                }
            })
            .map_err(|err| format!("cannot start the config thread: {err}"))?;
        Ok(ConfigThread { jobs })
    }

    /// Prepares `input` on the config thread.
    pub async fn prepare(&self, input: Input) -> Result<Prepared, ConfigErrors> {
        let (done, result) = tokio::sync::oneshot::channel();
        let gone = || ConfigErrors::single("", "the config thread has stopped");
        self.jobs.send(Job::Prepare { input, done }).map_err(|_| gone())?;
        result.await.map_err(|_| gone())?
    }

    /// Prepares a push on the config thread (which holds the document pushed before).
    pub async fn push(&self, push: Push, keep_text: bool) -> Result<PushPrepared, PushError> {
        let (done, result) = tokio::sync::oneshot::channel();
        let gone = || PushError::Refused(ConfigErrors::single("", "the config thread has stopped"));
        self.jobs.send(Job::Push { push, keep_text, done }).map_err(|_| gone())?;
        result.await.map_err(|_| gone())?
    }

    async fn look(&self, path: &Path, last_seen: &str, credential_files: Vec<String>) -> Option<Change> {
        let (done, result) = tokio::sync::oneshot::channel();
        let job =
            Job::Look { path: path.to_owned(), last_seen: last_seen.to_owned(), credential_files, done };
        self.jobs.send(job).ok()?;
        result.await.ok()
    }
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
    match prepare(Input::Text { text, format: Format::of_path(path) }, ctx) {
        // The table's own fingerprint covers its (possibly new) credential files.
        Ok(prepared) => {
            Change::Valid { fingerprint: prepared.table.hash.clone(), prepared: Box::new(prepared) }
        }
        Err(errors) => Change::Invalid { fingerprint, errors },
    }
}

/// Watches `path`, and the directories of the credential files the served config names, and
/// applies every valid change until the process ends.
pub async fn watch_file(
    path: PathBuf,
    gateway: Arc<Gateway>,
    config_thread: ConfigThread,
    loaded_hash: String,
) {
    let (tx, mut events) = tokio::sync::mpsc::unbounded_channel();
    // Watch the directory, not the file: editors and Kubernetes ConfigMap mounts replace the file
    // (rename or symlink swap), which a watch on the old inode would never see.
    let directory = parent_directory(&path);
    let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if may_be_change(&event) {
            let _ = tx.send(());
        }
    })
    .and_then(|mut watcher| {
        notify::Watcher::watch(&mut watcher, &directory, notify::RecursiveMode::NonRecursive)
            .map(|()| watcher)
    });
    let mut watcher = match watcher {
        Ok(watcher) => Some(watcher),
        Err(err) => {
            tracing::warn!(path = %path.display(), error = %err, "cannot watch the config file; polling every 5 s instead");
            None
        }
    };
    let served_credential_files =
        || gateway.tables.load().map(|t| t.credential_files.clone()).unwrap_or_default();
    let mut credential_dirs = CredentialDirs::new(&directory);
    if let Some(watcher) = &mut watcher {
        credential_dirs.follow(watcher, &served_credential_files());
    }
    let mut last_seen = loaded_hash;
    // The first tick is immediate: it catches a change made between the initial load and the
    // watcher's registration (cheap when nothing changed: one read and one hash). After that the
    // poll is a safety net for filesystems whose events are unreliable: it looks when 5 s have
    // passed without a look.
    let mut poll = tokio::time::interval(POLL_EVERY);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            Some(()) = events.recv() => {
                while let Ok(Some(())) = tokio::time::timeout(DEBOUNCE, events.recv()).await {}
            }
            _ = poll.tick() => {}
        }
        let credential_files = served_credential_files();
        let Some(change) = config_thread.look(&path, &last_seen, credential_files).await else {
            tracing::error!("the config thread is gone; reloads have stopped");
            return;
        };
        // Counted once the files were read: whoever sees the count knows what the look saw.
        gateway.metrics.config_checks.inc();
        match change {
            Change::Unchanged => {}
            Change::Unreadable { marker, error } => {
                gateway.metrics.config_reload_failures.inc();
                tracing::error!(path = %path.display(), error = %error, "config file unreadable; still serving the previous config");
                last_seen = marker;
            }
            Change::Valid { fingerprint, prepared } => match apply(&gateway, *prepared) {
                Ok(_) => {
                    gateway.metrics.config_reloads.inc();
                    last_seen = fingerprint;
                }
                Err(stale) => {
                    gateway.metrics.config_reload_failures.inc();
                    tracing::error!(path = %path.display(), error = %stale, "config rejected; still serving the previous config");
                    last_seen = fingerprint;
                }
            },
            Change::Invalid { fingerprint, errors } => {
                gateway.metrics.config_reload_failures.inc();
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
        let watching_more =
            watcher.as_mut().is_some_and(|w| credential_dirs.follow(w, &served_credential_files()));
        if watching_more {
            // A credential file in a directory watched only from now on may have changed since
            // the new config read it: look once more, as at the start.
            poll.reset_immediately();
        } else {
            poll.reset();
        }
    }
}

/// Whether a watcher event may mean a change. Opening and reading files is reported too, our
/// own reads included: reacting to those would make every look trigger the next one.
fn may_be_change(event: &notify::Result<notify::Event>) -> bool {
    !matches!(event, Ok(event) if matches!(event.kind, notify::EventKind::Access(_)))
}

/// The directory holding `path` (`.` for a bare file name).
fn parent_directory(path: &Path) -> PathBuf {
    path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_owned()
}

/// The directories of the served config's credential files, watched like the config file's own:
/// a mounted Kubernetes Secret is rotated by swapping a `..data` symlink in its directory (as a
/// ConfigMap is), so the rotation is a directory event there, not a change of the config file.
struct CredentialDirs {
    /// The config file's directory (canonical when it exists), watched anyway. Watching it a
    /// second time under another spelling would share one inotify watch, and unwatching that
    /// spelling later would silently end the config file's watch too.
    config_directory: PathBuf,
    /// The credential files the watched directories were derived from.
    files: Vec<String>,
    /// Canonical paths of the directories watched for them.
    watched: BTreeSet<PathBuf>,
}

impl CredentialDirs {
    fn new(config_directory: &Path) -> Self {
        CredentialDirs {
            config_directory: canonical(config_directory),
            files: Vec::new(),
            watched: BTreeSet::new(),
        }
    }

    /// Watches the directories of `files` and stops watching those no longer needed; does
    /// nothing when `files` is what it was. Returns whether a directory was added.
    fn follow(&mut self, watcher: &mut impl notify::Watcher, files: &[String]) -> bool {
        if self.files == files {
            return false;
        }
        files.clone_into(&mut self.files);
        let wanted: BTreeSet<PathBuf> = files
            .iter()
            .map(|file| canonical(&parent_directory(Path::new(file))))
            .filter(|dir| *dir != self.config_directory)
            .collect();
        for dir in self.watched.difference(&wanted) {
            let _ = watcher.unwatch(dir);
        }
        let mut added = false;
        let mut watched = BTreeSet::new();
        for dir in wanted {
            if !self.watched.contains(&dir) {
                if let Err(err) = watcher.watch(&dir, notify::RecursiveMode::NonRecursive) {
                    tracing::warn!(directory = %dir.display(), error = %err, "cannot watch a credential file's directory; changes there are found by the 5 s look");
                    continue;
                }
                added = true;
            }
            watched.insert(dir);
        }
        self.watched = watched;
        added
    }
}

/// `path` with symlinks and `.`/`..` resolved, or as given when that fails (it may not exist yet).
fn canonical(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned())
}

/// Validates a config file exactly as the server would load it (parse, validate, compile), for
/// `switchboard-gateway check` and the examples test. Returns a one-line summary or every problem.
pub fn check_file(path: &Path) -> Result<String, Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(|err| vec![format!("cannot read: {err}")])?;
    let ctx = CompileContext::new(Arc::new(crate::metrics::Metrics::default()));
    let Prepared { table, .. } = prepare(Input::Text { text, format: Format::of_path(path) }, &ctx)
        .map_err(|errors| errors.iter().map(ToString::to_string).collect::<Vec<_>>())?;
    let policies = match table.policies {
        0 => String::new(),
        n => format!(", {n} rate-limit policies and budgets"),
    };
    Ok(format!(
        "{} providers, {} routes, {} keys{policies}, generation {}",
        table.upstreams.len(),
        table.routes.len(),
        table.keys.len(),
        table.generation
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// With real inotify: a look's own file accesses are reported (opens), and none of them may
    /// count as a change, or every look would trigger the next one forever. Events of one inotify
    /// instance arrive in order, so a marker made after the look bounds what the look caused,
    /// without waiting for anything not to happen. (An end-to-end count cannot show this: the
    /// 25 ms debounce merges a looping watcher's next look with whatever the test does next.)
    #[test]
    fn a_looks_own_reads_are_not_changes() {
        let dir = std::env::temp_dir().join(format!("switchboard-reload-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let (config, key, marker) = (dir.join("gateway.yaml"), dir.join("key"), dir.join("marker"));
        std::fs::write(&key, "sk-test\n").unwrap();
        let text = format!(
            "version: 2\nproviders:\n  - {{ name: up, type: openai, base_url: https://example.test/v1, api_key: {{ file: {} }} }}\n",
            key.display()
        );
        std::fs::write(&config, text).unwrap();
        let (tx, events) = std::sync::mpsc::channel();
        let mut watcher = notify::recommended_watcher(tx).unwrap();
        notify::Watcher::watch(&mut watcher, &dir, notify::RecursiveMode::NonRecursive).unwrap();

        // A look at a changed file: it reads the config and the credential file, then compiles.
        let ctx = CompileContext::new(Arc::new(crate::metrics::Metrics::default()));
        let change = look(&config, "", &[key.display().to_string()], &ctx);
        assert!(matches!(change, Change::Valid { .. }), "the look read and compiled the config");
        std::fs::create_dir(&marker).unwrap();

        let mut caused_by_the_look = Vec::new();
        let marker_event = loop {
            let event = events.recv_timeout(Duration::from_secs(10)).expect("the marker's event");
            if event.as_ref().is_ok_and(|e| e.paths.contains(&marker)) {
                break event;
            }
            caused_by_the_look.push(event);
        };
        let _ = std::fs::remove_dir_all(&dir);
        assert!(may_be_change(&marker_event), "{marker_event:?}");
        assert!(!caused_by_the_look.is_empty(), "reads are reported, else this proves nothing");
        let changes: Vec<_> = caused_by_the_look.iter().filter(|e| may_be_change(e)).collect();
        assert!(changes.is_empty(), "a look's own reads count as changes: {changes:?}");
    }
}
