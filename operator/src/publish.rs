//! The operator's side of the snapshot stream (protocol in `docs/stream.md`).
//!
//! Every gateway replica holds one HTTP/2 request open: it says hello (name, the schema
//! versions it reads, what it serves), gets a welcome with the negotiated version, then the
//! current snapshot and every later one, and answers each with an ack or a nack. The
//! [`Publisher`] keeps the latest snapshot and what each replica last said, which is what
//! `Programmed` statuses are computed from.

use crate::metrics::ReplicaStats;
use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use serde::Serialize;
use serde_json::value::RawValue;
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::ops::RangeInclusive;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use subtle::ConstantTimeEq;
use switchboard_config::stream::{
    HEARTBEAT_EVERY_MS, Lines, OperatorMessage, PEER_DEAD_AFTER_MS, ReplicaMessage, Served, WireProblem,
    WireRejection, encode, negotiate,
};
use switchboard_config::{Document, SUPPORTED_SCHEMA_VERSIONS, Snapshot};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, sleep_until};
use tokio_stream::wrappers::ReceiverStream;

/// The path gateways open the stream on.
pub const STREAM_PATH: &str = "/v1/stream";

/// How long a replica whose stream ended still counts in `Programmed`: a gateway that restarts,
/// or reconnects to the next leader, is not a change of the fleet.
pub const DEFAULT_REPLICA_GRACE: Duration = Duration::from_secs(10);

/// A snapshot as published: its generation and content.
#[derive(Debug)]
pub struct Published {
    pub generation: u64,
    pub snapshot: Snapshot,
    /// When it was published; push latency is measured from here.
    pub at: Instant,
    /// The snapshot in the newest schema version, entry by entry: its text is the `snapshot`
    /// message's document, and the next publication's delta is computed from it.
    document: Document,
    /// The `snapshot` message in each schema version the operator writes (index: version minus
    /// the oldest), encoded once and shared by every replica on that version.
    messages: Vec<OnceLock<Result<Bytes, String>>>,
    /// The `delta` message from the previous publication (its generation, and the message), for
    /// replicas that were sent that one and read the newest schema version; `None` when the
    /// two documents cannot be compared entry by entry.
    delta: Option<(u64, Bytes)>,
}

impl Published {
    /// The `snapshot` message line in schema `version`, or why the snapshot cannot be written in
    /// it (`Snapshot::to_version`).
    fn message(&self, version: u32) -> Result<Bytes, String> {
        let index = version.saturating_sub(*SUPPORTED_SCHEMA_VERSIONS.start()) as usize;
        let Some(slot) = self.messages.get(index) else {
            return Err(format!("schema version {version} is not written by this operator"));
        };
        slot.get_or_init(|| {
            // The current version is the document's text, without the tree of values an older
            // version's rewrite needs (megabytes at 10,000 keys).
            let document = if version == *SUPPORTED_SCHEMA_VERSIONS.end() {
                RawValue::from_string(self.document.to_json())
            } else {
                let document = self.snapshot.to_version(version).map_err(|errors| errors.to_string())?;
                serde_json::value::to_raw_value(&document)
            }
            .map_err(|err| err.to_string())?;
            let message = OperatorMessage::Snapshot { generation: self.generation, document };
            Ok(Bytes::from(encode(&message)))
        })
        .clone()
    }
}

/// What one replica last said.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReplicaState {
    pub replica: String,
    pub connected: bool,
    /// The schema version negotiated with it.
    pub version: u32,
    /// The last snapshot it applied.
    pub applied: Option<Served>,
    /// Entries it left out of that snapshot.
    pub rejected: Vec<WireRejection>,
    /// The last snapshot it refused, and why.
    pub refused: Option<(u64, Vec<WireProblem>)>,
    /// When its stream ended, while it is disconnected: it still counts in `Programmed` until
    /// the grace period passes, then it is forgotten.
    #[serde(skip)]
    pub left_at: Option<Instant>,
}

/// The latest snapshot and the replicas following it.
pub struct Publisher {
    name: String,
    token: Option<String>,
    writes: RangeInclusive<u32>,
    current: watch::Sender<Option<Arc<Published>>>,
    /// By replica name. A watch channel: updated once per replica message, and whoever needs
    /// to follow the replicas (statuses, tests) is told of every change.
    replicas: watch::Sender<BTreeMap<String, ReplicaState>>,
    /// Per-replica stream figures for `/metrics`, apart from `replicas` so that counting bytes
    /// does not wake whoever follows the replicas.
    stats: watch::Sender<BTreeMap<String, Arc<ReplicaStats>>>,
    /// How long a disconnected replica still counts.
    grace: Duration,
    /// Snapshots replicas applied, and refused (for `/metrics`).
    pub acks: std::sync::atomic::AtomicU64,
    pub nacks: std::sync::atomic::AtomicU64,
    /// Deltas replicas could not apply, and deltas sent (for `/metrics`).
    pub resyncs: std::sync::atomic::AtomicU64,
    pub deltas_sent: std::sync::atomic::AtomicU64,
}

impl Publisher {
    /// `token`: the shared secret replicas must present (`None` only for tests and development).
    pub fn new(name: &str, token: Option<String>) -> Arc<Self> {
        Self::with_grace(name, token, DEFAULT_REPLICA_GRACE)
    }

    /// As [`Publisher::new`], with how long a disconnected replica still counts.
    pub fn with_grace(name: &str, token: Option<String>, grace: Duration) -> Arc<Self> {
        Arc::new(Publisher {
            name: name.to_owned(),
            token,
            writes: SUPPORTED_SCHEMA_VERSIONS,
            current: watch::channel(None).0,
            replicas: watch::channel(BTreeMap::new()).0,
            stats: watch::channel(BTreeMap::new()).0,
            grace,
            acks: Default::default(),
            nacks: Default::default(),
            resyncs: Default::default(),
            deltas_sent: Default::default(),
        })
    }

    /// Sends `snapshot` to every replica (and to every replica that connects later): as a
    /// delta from the previous publication to those that were sent it, whole to the others.
    pub fn publish(&self, snapshot: Snapshot) {
        let generation = snapshot.generation;
        let document = Document::from_snapshot(&snapshot);
        let previous = self.current.borrow().clone();
        let delta = previous.and_then(|previous| {
            let changes = previous.document.diff(&document)?;
            let hash = document.digest();
            let message = OperatorMessage::Delta {
                generation,
                base: previous.generation,
                hash,
                changes: Box::new(changes),
            };
            Some((previous.generation, Bytes::from(encode(&message))))
        });
        let messages = SUPPORTED_SCHEMA_VERSIONS.map(|_| OnceLock::new()).collect();
        let published = Published { generation, snapshot, at: Instant::now(), document, messages, delta };
        self.current.send_replace(Some(Arc::new(published)));
    }

    /// The snapshot being served to replicas, if any.
    pub fn published(&self) -> Option<Arc<Published>> {
        self.current.borrow().clone()
    }

    /// The size of the current snapshot's message in the newest schema version (encoding it
    /// now if no replica needed it yet; replicas then share that encoding).
    pub fn snapshot_bytes(&self) -> u64 {
        let current = self.current.borrow().clone();
        current.and_then(|p| p.message(*self.writes.end()).ok()).map_or(0, |m| m.len() as u64)
    }

    /// The replicas that count: connected, or disconnected less than the grace period ago.
    pub fn replicas(&self) -> Vec<ReplicaState> {
        self.replicas.borrow().values().cloned().collect()
    }

    /// Per-replica stream figures, by name.
    pub fn stats(&self) -> BTreeMap<String, Arc<ReplicaStats>> {
        self.stats.borrow().clone()
    }

    /// Forgets replicas disconnected for longer than the grace period (which changes
    /// [`Publisher::changes`]); returns when the next disconnected one will be forgotten.
    pub fn forget_departed(&self, now: Instant) -> Option<Instant> {
        let grace = self.grace;
        let mut forgotten = Vec::new();
        self.replicas.send_if_modified(|replicas| {
            replicas.retain(|name, state| {
                let keep = state.left_at.is_none_or(|left| now < left + grace);
                if !keep {
                    forgotten.push(name.clone());
                }
                keep
            });
            !forgotten.is_empty()
        });
        if !forgotten.is_empty() {
            tracing::info!(replicas = ?forgotten, grace_seconds = grace.as_secs(), "disconnected replicas no longer count");
            self.stats.send_modify(|stats| stats.retain(|name, _| !forgotten.contains(name)));
        }
        self.replicas.borrow().values().filter_map(|state| state.left_at).min().map(|left| left + grace)
    }

    /// Changes whenever a replica connects, disconnects, acks or nacks.
    pub fn changes(&self) -> watch::Receiver<BTreeMap<String, ReplicaState>> {
        self.replicas.subscribe()
    }

    fn update(&self, replica: &str, change: impl FnOnce(&mut ReplicaState)) {
        self.replicas.send_modify(|replicas| {
            if let Some(state) = replicas.get_mut(replica) {
                change(state);
            }
        });
    }

    fn authorized(&self, request: &Request<Incoming>) -> bool {
        let Some(expected) = &self.token else { return true };
        let presented = request.headers().get(AUTHORIZATION).map(HeaderValue::as_bytes).unwrap_or_default();
        let wanted = format!("Bearer {expected}");
        bool::from(presented.ct_eq(wanted.as_bytes()))
    }
}

type ResponseBody = BoxBody<Bytes, Infallible>;

/// Serves the stream on `listener` until `shutdown` flips to true. With `tls`, connections are
/// TLS (rustls, HTTP/2 by ALPN); without, plain-text HTTP/2 (tests and development only).
pub async fn serve(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    publisher: Arc<Publisher>,
    mut shutdown: watch::Receiver<bool>,
) {
    // Streams never end on their own; on shutdown they are cut (dropping the set aborts them)
    // and every replica reconnects, to the next leader.
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.wait_for(|stop| *stop) => return,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
        };
        let Ok((stream, peer)) = accepted else { continue };
        let _ = stream.set_nodelay(true);
        let (publisher, tls) = (publisher.clone(), tls.clone());
        connections.spawn(async move {
            let served = match tls {
                Some(tls) => match tls.accept(stream).await {
                    Ok(stream) => serve_connection(stream, publisher).await,
                    Err(err) => Err(format!("TLS: {err}")),
                },
                None => serve_connection(stream, publisher).await,
            };
            if let Err(err) = served {
                tracing::debug!(peer = %peer, error = %err, "stream connection ended");
            }
        });
    }
}

async fn serve_connection<T>(io: T, publisher: Arc<Publisher>) -> Result<(), String>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |request| {
        let publisher = publisher.clone();
        async move { Ok::<_, Infallible>(handle(request, publisher)) }
    });
    hyper::server::conn::http2::Builder::new(TokioExecutor::new())
        .timer(TokioTimer::new())
        .keep_alive_interval(Duration::from_millis(HEARTBEAT_EVERY_MS))
        .keep_alive_timeout(Duration::from_millis(PEER_DEAD_AFTER_MS))
        .serve_connection(TokioIo::new(io), service)
        .await
        .map_err(|e| e.to_string())
}

fn handle(request: Request<Incoming>, publisher: Arc<Publisher>) -> Response<ResponseBody> {
    if request.uri().path() != STREAM_PATH {
        return plain(StatusCode::NOT_FOUND, "not found\n");
    }
    if request.method() != Method::POST {
        return plain(StatusCode::METHOD_NOT_ALLOWED, "POST only\n");
    }
    if !publisher.authorized(&request) {
        tracing::warn!("a replica presented a wrong or no stream token; refused");
        return plain(StatusCode::UNAUTHORIZED, "a valid stream token is required\n");
    }
    let (outgoing, queue) = mpsc::channel(16);
    tokio::spawn(follow_replica(publisher, request.into_body(), outgoing));
    let mut response = Response::new(StreamBody::new(ReceiverStream::new(queue)).boxed());
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/x-ndjson"));
    response
}

fn plain(status: StatusCode, text: &'static str) -> Response<ResponseBody> {
    let mut response = Response::new(Full::new(Bytes::from_static(text.as_bytes())).boxed());
    *response.status_mut() = status;
    response
}

type Outgoing = mpsc::Sender<Result<Frame<Bytes>, Infallible>>;

/// Queues one message line on a replica's stream, counting its bytes once the replica is known.
async fn send(outgoing: &Outgoing, stats: Option<&ReplicaStats>, line: Bytes) -> Result<(), String> {
    if let Some(stats) = stats {
        stats.sent_bytes.fetch_add(line.len() as u64, Relaxed);
    }
    outgoing.send(Ok(Frame::data(line))).await.map_err(|_| "the replica went away".to_owned())
}

fn line(message: &OperatorMessage) -> Bytes {
    Bytes::from(encode(message))
}

/// One replica's stream, from hello to disconnect.
async fn follow_replica(publisher: Arc<Publisher>, mut incoming: Incoming, outgoing: Outgoing) {
    let mut lines = Lines::default();
    let mut replica: Option<(String, Arc<ReplicaStats>)> = None;
    let outcome = async {
        let mut silent_until = Instant::now() + Duration::from_millis(PEER_DEAD_AFTER_MS);
        let mut current = publisher.current.subscribe();
        let mut heartbeat = tokio::time::interval(Duration::from_millis(HEARTBEAT_EVERY_MS));
        let mut version = None;
        let mut takes_deltas = false;
        let mut connected_at = Instant::now();
        let mut sent = None;
        // The generation the replica serves: an older one would only be refused. The controller
        // numbers above it (it reads the same hello) and that one is sent.
        let mut floor = 0;
        // The snapshot sent and not yet answered, and when its push started.
        let mut awaiting: Option<(u64, Instant)> = None;
        loop {
            let stats = replica.as_ref().map(|(_, stats)| &**stats);
            tokio::select! {
                frame = incoming.frame() => {
                    let Some(frame) = frame else { return Ok(()) };
                    let frame = frame.map_err(|e| format!("reading: {e}"))?;
                    silent_until = Instant::now() + Duration::from_millis(PEER_DEAD_AFTER_MS);
                    let Ok(data) = frame.into_data() else { continue };
                    for line_read in lines.push(&data)? {
                        let message: ReplicaMessage = serde_json::from_slice(&line_read).map_err(|e| format!("a message does not parse: {e}"))?;
                        if let ReplicaMessage::Hello { replica: name, reads, serving, deltas, .. } = &message {
                            let Some(negotiated) = negotiate(publisher.writes.clone(), reads.0..=reads.1) else {
                                let reason = format!(
                                    "this operator writes schema versions {} to {}, the replica reads {} to {}",
                                    publisher.writes.start(), publisher.writes.end(), reads.0, reads.1
                                );
                                send(&outgoing, None, line(&OperatorMessage::Refused { reason: reason.clone() })).await?;
                                return Err(reason);
                            };
                            version = Some(negotiated);
                            takes_deltas = *deltas;
                            floor = serving.as_ref().map_or(0, |s| s.generation);
                            connected_at = Instant::now();
                            let stats = register(&publisher, name, negotiated, serving.clone());
                            let welcome = OperatorMessage::Welcome { operator: publisher.name.clone(), version: negotiated };
                            send(&outgoing, Some(&stats), line(&welcome)).await?;
                            replica = Some((name.clone(), stats));
                            current.mark_changed();
                        } else if let Some((name, stats)) = &replica {
                            if let ReplicaMessage::Resync { generation, reason } = &message {
                                // The next send is the whole snapshot.
                                tracing::warn!(replica = %name, generation, reason = %reason, "a replica could not apply a delta; sending the whole snapshot");
                                publisher.resyncs.fetch_add(1, Relaxed);
                                sent = None;
                                current.mark_changed();
                                continue;
                            }
                            if let ReplicaMessage::Ack { generation, .. } | ReplicaMessage::Nack { generation, .. } = &message
                                && let Some((pushed, started)) = awaiting
                                && pushed == *generation
                            {
                                if matches!(message, ReplicaMessage::Ack { .. }) {
                                    stats.push_latency.observe(started.elapsed());
                                }
                                awaiting = None;
                            }
                            record(&publisher, name, message);
                        } else {
                            return Err("the first message must be hello".into());
                        }
                    }
                }
                changed = current.changed(), if version.is_some() => {
                    if changed.is_err() { return Ok(()) }
                    let published = current.borrow_and_update().clone();
                    if let (Some(published), Some(version)) = (published, version)
                        && sent != Some(published.generation)
                        && published.generation >= floor
                    {
                        let message = match &published.delta {
                            Some((base, delta))
                                if takes_deltas && sent == Some(*base) && version == *publisher.writes.end() =>
                            {
                                publisher.deltas_sent.fetch_add(1, Relaxed);
                                Ok(delta.clone())
                            }
                            _ => published.message(version),
                        };
                        match message {
                            Ok(message) => {
                                awaiting = Some((published.generation, published.at.max(connected_at)));
                                send(&outgoing, stats, message).await?;
                                sent = Some(published.generation);
                            }
                            Err(errors) => tracing::error!(
                                replica = replica.as_ref().map(|(name, _)| name.as_str()).unwrap_or_default(), version, errors = %errors,
                                "this snapshot cannot be written in the version the replica reads; it keeps its previous one"
                            ),
                        }
                    }
                }
                _ = heartbeat.tick() => send(&outgoing, stats, line(&OperatorMessage::Heartbeat)).await?,
                () = sleep_until(silent_until) => return Err(format!("nothing for {PEER_DEAD_AFTER_MS} ms")),
            }
        }
    }
    .await;
    if let Some((name, _)) = &replica {
        publisher.update(name, |state| {
            state.connected = false;
            state.left_at = Some(Instant::now());
        });
    }
    if let Err(err) = outcome {
        let name = replica.as_ref().map(|(name, _)| name.as_str()).unwrap_or("?");
        tracing::info!(replica = name, error = %err, "replica stream ended");
    }
}

/// Marks a replica connected (known again, or new) and returns its stream figures.
fn register(publisher: &Publisher, name: &str, version: u32, serving: Option<Served>) -> Arc<ReplicaStats> {
    publisher.replicas.send_modify(|replicas| {
        let state = replicas.entry(name.to_owned()).or_insert_with(|| ReplicaState {
            replica: name.to_owned(),
            connected: true,
            version,
            applied: None,
            rejected: Vec::new(),
            refused: None,
            left_at: None,
        });
        state.connected = true;
        state.left_at = None;
        state.version = version;
        if state.applied.is_none() {
            state.applied = serving;
        }
    });
    tracing::info!(replica = name, schema_version = version, "replica connected");
    let mut stats = None;
    publisher.stats.send_modify(|all| stats = Some(all.entry(name.to_owned()).or_default().clone()));
    stats.unwrap_or_default()
}

fn record(publisher: &Publisher, name: &str, message: ReplicaMessage) {
    match message {
        ReplicaMessage::Ack { generation, hash, rejected } => publisher.update(name, |state| {
            publisher.acks.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            state.applied = Some(Served { generation, hash });
            state.rejected = rejected;
            state.refused = None;
        }),
        ReplicaMessage::Nack { generation, reasons } => {
            tracing::warn!(replica = name, generation, "replica refused a snapshot");
            publisher.nacks.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            publisher.update(name, |state| state.refused = Some((generation, reasons)));
        }
        ReplicaMessage::Heartbeat | ReplicaMessage::Hello { .. } | ReplicaMessage::Resync { .. } => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_disconnected_replica_counts_until_its_grace_period_ends() {
        let publisher = Publisher::with_grace("op", None, Duration::from_secs(10));
        register(&publisher, "gw-0", 2, None);
        register(&publisher, "gw-1", 2, None);
        let start = Instant::now();
        assert_eq!(publisher.forget_departed(start), None);

        let left = start + Duration::from_secs(1);
        publisher.update("gw-1", |state| {
            state.connected = false;
            state.left_at = Some(left);
        });
        let mut changes = publisher.changes();
        changes.mark_unchanged();
        assert_eq!(
            publisher.forget_departed(left + Duration::from_secs(9)),
            Some(left + Duration::from_secs(10))
        );
        assert_eq!(publisher.replicas().len(), 2);
        assert!(!changes.has_changed().unwrap());

        assert_eq!(publisher.forget_departed(left + Duration::from_secs(10)), None);
        let names: Vec<String> = publisher.replicas().into_iter().map(|r| r.replica).collect();
        assert_eq!(names, ["gw-0"]);
        assert!(changes.has_changed().unwrap(), "the controller is told to recount");
        assert_eq!(publisher.stats().keys().collect::<Vec<_>>(), ["gw-0"]);

        // Coming back within the grace period keeps it, connected again.
        register(&publisher, "gw-0", 2, None);
        assert!(publisher.replicas()[0].connected && publisher.replicas()[0].left_at.is_none());
    }

    #[test]
    fn a_snapshot_is_encoded_once_per_schema_version() {
        let publisher = Publisher::new("op", None);
        publisher.publish(Snapshot { generation: 7, ..Snapshot::default() });
        let published = publisher.current.borrow().clone().unwrap();
        let first = published.message(2).unwrap();
        assert_eq!(first.as_ptr(), published.message(2).unwrap().as_ptr(), "shared, not re-encoded");
        let message: serde_json::Value = serde_json::from_slice(&first).unwrap();
        assert_eq!((message["type"].as_str(), message["generation"].as_u64()), (Some("snapshot"), Some(7)));
        let snapshot = &published.snapshot;
        assert_eq!(message["document"], snapshot.to_version(2).unwrap(), "the same document as to_version");
        assert!(published.message(1).is_ok());
        assert!(published.message(9).is_err());
    }
}
