//! The controller: watch the four kinds and Secrets, compile on every change (debounced),
//! publish the snapshot to the gateway fleet, write statuses that changed, create the Secrets of
//! VirtualKeys that have none.
//!
//! Gather, compile, write (style.md rule 2): the watch caches are the gathered state, [`compile`]
//! is pure, and this file only moves values between the API server, the compile and the
//! publisher.

use crate::compile::{Draft, Fleet, KeySecretToGenerate, ObjectStatus, ServedSince, compile_snapshot};
use crate::generate::new_key;
use crate::inputs::Inputs;
use crate::publish::Publisher;
use crate::status_writer::StatusWriter;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::api::PostParams;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use std::collections::{HashMap, HashSet};
use std::fmt::Debug;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;
use switchboard_config::Snapshot;
use switchboard_crds::{LlmProvider, ModelRoute, RateLimitPolicy, VirtualKey};
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

/// How long the controller waits for more changes before compiling (a `kubectl apply -f dir/`
/// arrives as a burst of events: one compile, not fifty).
pub const DEBOUNCE: Duration = Duration::from_millis(50);

/// The longest a burst is waited for: a steady stream of changes less than [`DEBOUNCE`] apart
/// (a 10,000-key apply) must not postpone every push until it stops.
pub const MAX_BATCH_DELAY: Duration = Duration::from_millis(250);

/// How long replica reports (acks, connections) are gathered before statuses are rendered
/// again: after a push, acks of a whole fleet arrive over some hundreds of milliseconds, and
/// rendering 10,000 statuses once per ack would compete with the replicas for CPU.
pub const REPORT_BATCH_DELAY: Duration = Duration::from_millis(200);

/// What the controller watches and where it publishes.
pub struct Controller {
    pub client: Client,
    /// Namespaces to watch; empty means every namespace.
    pub namespaces: Vec<String>,
    pub publisher: Arc<Publisher>,
    pub metrics: Arc<crate::metrics::OperatorMetrics>,
    /// Posts Kubernetes Events (`kubectl describe` shows them) when an object is refused.
    pub recorder: kube::runtime::events::Recorder,
    /// Reads VirtualKeys' spend from Redis into their statuses (`--redis-url`); `None`: no
    /// spend in statuses.
    pub spend: Option<crate::spend::SpendReader>,
}

/// One watch cache per namespace watched (or one for all).
struct Stores {
    providers: Vec<Store<LlmProvider>>,
    routes: Vec<Store<ModelRoute>>,
    keys: Vec<Store<VirtualKey>>,
    policies: Vec<Store<RateLimitPolicy>>,
    secrets: Vec<Store<Secret>>,
}

impl Stores {
    fn inputs(&self, generation: u64, now: Time, fleet: Option<Fleet>) -> Inputs {
        fn all<K: Clone + kube::Resource<DynamicType = ()> + 'static>(stores: &[Store<K>]) -> Vec<Arc<K>> {
            stores.iter().flat_map(|s| s.state()).collect()
        }
        Inputs {
            providers: all(&self.providers),
            routes: all(&self.routes),
            keys: all(&self.keys),
            policies: all(&self.policies),
            secrets: all(&self.secrets),
            generation,
            now: Some(now),
            fleet,
        }
    }

    async fn wait_until_ready(&self) {
        for store in &self.providers {
            let _ = store.wait_until_ready().await;
        }
        for store in &self.routes {
            let _ = store.wait_until_ready().await;
        }
        for store in &self.keys {
            let _ = store.wait_until_ready().await;
        }
        for store in &self.policies {
            let _ = store.wait_until_ready().await;
        }
        for store in &self.secrets {
            let _ = store.wait_until_ready().await;
        }
    }
}

impl Controller {
    /// Runs until `shutdown` flips to true.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) -> Result<(), String> {
        let changed = Arc::new(Notify::new());
        let mut watches = JoinSet::new();
        let stores = Stores {
            providers: self.watch(&mut watches, &changed),
            routes: self.watch(&mut watches, &changed),
            keys: self.watch(&mut watches, &changed),
            policies: self.watch(&mut watches, &changed),
            secrets: self.watch(&mut watches, &changed),
        };
        tokio::select! {
            () = stores.wait_until_ready() => {}
            _ = shutdown.wait_for(|stop| *stop) => return Ok(()),
        }
        tracing::info!(namespaces = ?self.namespaces, "watch caches ready; compiling");
        let mut generation = first_generation(&self.publisher);
        // The last snapshot compile; the publisher's snapshot decides whether the next compile
        // is a new generation.
        let mut draft: Option<Draft> = None;
        let mut served_since = Arc::new(HashMap::new());
        let mut replicas = self.publisher.changes();
        let mut writer = StatusWriter::start(self.client.clone(), self.metrics.clone());
        if let Some(reader) = self.spend.take() {
            // Its own task: a slow or unreachable Redis never delays a compile or a push.
            let keys = stores.keys.clone();
            let spend =
                crate::spend::run(reader, keys, writer.clone(), self.metrics.clone(), shutdown.clone());
            tokio::spawn(spend);
        }
        let mut submitted = HashMap::new();
        let mut objects_changed = true;
        loop {
            let started = Instant::now();
            // Replicas gone longer than the grace period leave the counts now; the next one
            // to go wakes this loop.
            let next_departure = self.publisher.forget_departed(started);
            let now = Time(k8s_openapi::jiff::Timestamp::now());
            // A replica serving a generation above ours (a previous leader's clock ran ahead, or
            // it numbered faster than one a second) would refuse ours as older: number above it,
            // and send the current content again under that number.
            let reported = highest_served(&self.publisher);
            let renumber = reported > generation;
            if renumber {
                tracing::info!(
                    generation,
                    reported,
                    "a replica serves a higher generation; numbering above it"
                );
                generation = reported;
            }

            // The snapshot is compiled again only when objects changed; replica reports (acks,
            // connections) change statuses only.
            let compiled_now = objects_changed || renumber || draft.is_none();
            if compiled_now {
                let mut next = compile_snapshot(&stores.inputs(generation, now.clone(), None));
                let published = self.publisher.published();
                let changed = published.is_none_or(|last| !same_content(&last.snapshot, &next.snapshot));
                if changed || renumber {
                    generation += 1;
                    next.snapshot.generation = generation;
                    self.metrics.snapshot_generation.store(generation, Relaxed);
                    self.publisher.publish(next.snapshot.clone());
                    // Let the replicas' stream tasks just woken run before this task goes on
                    // rendering statuses: the last one woken sits in this worker's LIFO slot,
                    // which other workers cannot take it from.
                    tokio::task::yield_now().await;
                    self.metrics.snapshot_bytes.store(self.publisher.snapshot_bytes(), Relaxed);
                    tracing::info!(
                        generation,
                        providers = next.snapshot.providers.len(),
                        routes = next.snapshot.routes.len(),
                        keys = next.snapshot.keys.len(),
                        "snapshot published"
                    );
                } else {
                    // Nothing new to serve: statuses speak of the generation being served.
                    next.snapshot.generation = generation;
                }
                track_served(&mut served_since, &next.snapshot);
                draft = Some(next);
            }
            let Some(current) = &draft else { continue };
            // A new VirtualKey serves once its generated Secret is back through the watch:
            // create it before rendering 10,000 statuses, which can wait.
            if compiled_now {
                self.generate_key_secrets(&current.generate).await;
            }
            let fleet = Fleet { replicas: self.publisher.replicas(), served_since: served_since.clone() };
            let inputs = stores.inputs(generation, now.clone(), Some(fleet));
            let statuses = current.statuses(&inputs);
            let fresh = queue_statuses(&statuses, &mut submitted, &mut writer);
            self.metrics.reconcile.observe(started.elapsed());
            self.record_refusals(&fresh, &now).await;

            // Recompile on a change to the objects, to what replicas report (Programmed), or
            // when a departed replica's grace period ends.
            let departure = async {
                match next_departure {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            objects_changed = false;
            tokio::select! {
                () = changed.notified() => objects_changed = true,
                result = replicas.changed() => if result.is_err() { return Ok(()) },
                () = departure => {}
                _ = shutdown.wait_for(|stop| *stop) => return Ok(()),
            }
            // Let the rest of a burst arrive: object changes until DEBOUNCE passes without one
            // (at most MAX_BATCH_DELAY), replica reports for REPORT_BATCH_DELAY.
            let burst = Instant::now();
            loop {
                let quiet = if objects_changed { DEBOUNCE } else { REPORT_BATCH_DELAY };
                let limit = burst + if objects_changed { MAX_BATCH_DELAY } else { REPORT_BATCH_DELAY };
                let wake = (Instant::now() + quiet).min(limit);
                tokio::select! {
                    () = changed.notified() => objects_changed = true,
                    _ = replicas.changed() => {}
                    () = tokio::time::sleep_until(wake) => break,
                }
                if Instant::now() >= limit {
                    break;
                }
            }
        }
    }

    /// Starts watch caches for kind `K`, notifying `changed` on every event.
    fn watch<K>(&self, watches: &mut JoinSet<()>, changed: &Arc<Notify>) -> Vec<Store<K>>
    where
        K: Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
            + Clone
            + DeserializeOwned
            + Debug
            + Send
            + Sync
            + 'static,
    {
        let apis: Vec<Api<K>> = if self.namespaces.is_empty() {
            vec![Api::all(self.client.clone())]
        } else {
            self.namespaces.iter().map(|ns| Api::namespaced(self.client.clone(), ns)).collect()
        };
        apis.into_iter()
            .map(|api| {
                let (store, writer) = reflector::store();
                let changed = changed.clone();
                let stream =
                    reflector::reflector(writer, watcher(api, watcher::Config::default()).default_backoff());
                watches.spawn(async move {
                    let mut stream = std::pin::pin!(stream);
                    let mut seen = SpecVersions::default();
                    while let Some(event) = stream.next().await {
                        match event {
                            Ok(event) => {
                                if seen.changes_what_is_served(&event) {
                                    changed.notify_one();
                                }
                            }
                            Err(err) => {
                                tracing::warn!(kind = %K::kind(&()), error = %err, "watch failed; retrying")
                            }
                        }
                    }
                });
                store
            })
            .collect()
    }

    /// Posts a Warning Event for each object newly refused: by its spec (`Accepted` turned
    /// False) or by a replica (`Programmed` turned False while accepted).
    async fn record_refusals(&self, fresh: &[Fresh<'_>], now: &Time) {
        for Fresh { status, previous } in fresh {
            let condition = |type_: &str| status.conditions.iter().find(|c| c.type_ == type_);
            let (Some(accepted), Some(programmed)) = (condition("Accepted"), condition("Programmed")) else {
                continue;
            };
            let newly = |condition: &Condition| became(condition, previous.as_ref(), now);
            let refused = if accepted.status == "False" && newly(accepted) {
                Some((accepted, "Compile"))
            } else if accepted.status == "True"
                && programmed.status == "False"
                && programmed.reason == "Invalid"
                && newly(programmed)
            {
                Some((programmed, "Apply"))
            } else {
                None
            };
            let Some((condition, action)) = refused else { continue };
            let event = kube::runtime::events::Event {
                type_: kube::runtime::events::EventType::Warning,
                reason: condition.reason.clone(),
                // Events cap their note at 1 kB.
                note: Some(condition.message.chars().take(1000).collect()),
                action: action.to_owned(),
                secondary: None,
            };
            let reference = k8s_openapi::api::core::v1::ObjectReference {
                api_version: Some(format!("{}/{}", switchboard_crds::GROUP, switchboard_crds::VERSION)),
                kind: Some(status.object.kind.clone()),
                namespace: Some(status.object.namespace.clone()),
                name: Some(status.object.name.clone()),
                uid: Some(status.object.uid.clone()).filter(|u| !u.is_empty()),
                ..Default::default()
            };
            if let Err(err) = self.recorder.publish(&event, &reference).await {
                tracing::warn!(object = %status.object, error = %err, "cannot post an event");
            }
        }
    }

    /// Creates the Secrets of VirtualKeys that have none, each with a new random key.
    async fn generate_key_secrets(&self, generate: &[KeySecretToGenerate]) {
        for wanted in generate {
            let key = match new_key() {
                Ok(key) => key,
                Err(err) => {
                    tracing::error!(error = %err, "no random numbers from the operating system; cannot generate keys");
                    return;
                }
            };
            let secrets: Api<Secret> = self.api(&wanted.namespace);
            match secrets.create(&PostParams::default(), &wanted.to_secret(&key)).await {
                Ok(_) => {
                    tracing::info!(virtual_key = %wanted.owner, secret = %wanted.name, "generated a key")
                }
                // Someone created it meanwhile: the next compile reads it.
                Err(kube::Error::Api(status)) if status.code == 409 => {}
                Err(err) => {
                    tracing::warn!(virtual_key = %wanted.owner, error = %err, "cannot create the key Secret")
                }
            }
        }
    }

    fn api<K>(&self, namespace: &str) -> Api<K>
    where
        K: Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>,
    {
        Api::namespaced(self.client.clone(), namespace)
    }
}

/// The `metadata.generation` last seen of each object of one watch, by uid, to tell a change of
/// spec from a change of status only. The API server bumps the generation on spec changes alone
/// (the custom resources have a status subresource); this operator's own status writes, 10,000
/// of them after a bulk apply, must not each trigger a compile. Objects without a generation
/// (Secrets) count every change.
#[derive(Default)]
struct SpecVersions(HashMap<String, i64>);

impl SpecVersions {
    fn changes_what_is_served<K: Resource>(&mut self, event: &watcher::Event<K>) -> bool {
        match event {
            watcher::Event::Apply(object) | watcher::Event::InitApply(object) => {
                let meta = object.meta();
                match (&meta.uid, meta.generation) {
                    (Some(uid), Some(generation)) => {
                        self.0.insert(uid.clone(), generation) != Some(generation)
                    }
                    _ => true,
                }
            }
            watcher::Event::Delete(object) => {
                if let Some(uid) = &object.meta().uid {
                    self.0.remove(uid);
                }
                true
            }
            // A relist is complete: whatever it changed is in the cache now.
            watcher::Event::InitDone => true,
            watcher::Event::Init => false,
        }
    }
}

/// A status handed to the writer by this reconcile, and the one handed over before it (whose
/// write may not have reached the watch cache yet).
struct Fresh<'a> {
    status: &'a ObjectStatus,
    previous: Option<ObjectStatus>,
}

/// Hands the statuses that differ from the objects' to the writer, unless the same status is
/// already on its way (the watch cache shows a write only once it lands, and reconciles come
/// faster than that). Returns what was handed over.
fn queue_statuses<'a>(
    statuses: &'a [ObjectStatus],
    submitted: &mut HashMap<(String, String, String), ObjectStatus>,
    writer: &mut StatusWriter,
) -> Vec<Fresh<'a>> {
    let mut fresh = Vec::new();
    let mut changing = HashSet::new();
    for status in statuses.iter().filter(|s| s.changed) {
        let key = (status.object.kind.clone(), status.object.namespace.clone(), status.object.name.clone());
        if submitted.get(&key).is_some_and(|queued| same_intent(queued, status)) {
            changing.insert(key);
            continue;
        }
        writer.submit(status.clone());
        let previous = submitted.insert(key.clone(), status.clone());
        changing.insert(key);
        fresh.push(Fresh { status, previous });
    }
    // What the objects show now needs no write, and deleted objects none either.
    submitted.retain(|key, _| changing.contains(key));
    fresh
}

/// Equal statuses but for `lastTransitionTime`: a status recomputed before the previous write
/// reached the cache shows the same transition at a later time.
fn same_intent(a: &ObjectStatus, b: &ObjectStatus) -> bool {
    let conditions = |s: &ObjectStatus| -> Vec<(String, String, String, String, Option<i64>)> {
        s.conditions
            .iter()
            .map(|c| {
                (
                    c.type_.clone(),
                    c.status.clone(),
                    c.reason.clone(),
                    c.message.clone(),
                    c.observed_generation,
                )
            })
            .collect()
    };
    a.key_id == b.key_id && a.observed_generation == b.observed_generation && conditions(a) == conditions(b)
}

/// Whether `condition` is a change: from the status handed over before, when there is one, else
/// from the object (a condition that changed there carries this reconcile's time).
fn became(condition: &Condition, previous: Option<&ObjectStatus>, now: &Time) -> bool {
    match previous.and_then(|p| p.conditions.iter().find(|c| c.type_ == condition.type_)) {
        Some(before) => before.status != condition.status || before.reason != condition.reason,
        None => condition.last_transition_time == *now,
    }
}

/// The generation before the first one this operator publishes: the clock in seconds, so an
/// operator that starts before any replica reconnected usually numbers above its predecessor.
/// When it does not (clocks apart, or a predecessor that published faster than once a second),
/// the replicas say so when they connect and the loop numbers above them ([`highest_served`]).
fn first_generation(publisher: &Publisher) -> u64 {
    let clock = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    highest_served(publisher).max(clock)
}

/// The highest generation a counted replica serves (reported in its hello, or acked).
fn highest_served(publisher: &Publisher) -> u64 {
    publisher.replicas().iter().filter_map(|r| r.applied.as_ref()).map(|a| a.generation).max().unwrap_or(0)
}

/// Records, for each serving object, the first snapshot generation carrying its current
/// `metadata.generation`; forgets objects that stopped serving.
fn track_served(served_since: &mut Arc<ServedSince>, snapshot: &Snapshot) {
    let sources = snapshot
        .providers
        .iter()
        .filter_map(|p| p.source())
        .chain(snapshot.routes.iter().filter_map(|r| r.source.as_ref()))
        .chain(snapshot.keys.iter().filter_map(|k| k.source.as_ref()))
        .chain(snapshot.policies.iter().filter_map(|p| p.source.as_ref()));
    let mut current = HashMap::with_capacity(served_since.len());
    for source in sources {
        let key = (source.kind.clone(), source.namespace.clone(), source.name.clone());
        let since = match served_since.get(&key) {
            Some(&(generation, since)) if generation == source.generation => since,
            _ => snapshot.generation,
        };
        current.insert(key, (source.generation, since));
    }
    *served_since = Arc::new(current);
}

/// Whether two snapshots serve the same (their generation numbers aside).
fn same_content(a: &Snapshot, b: &Snapshot) -> bool {
    let Snapshot { version, generation: _, providers, routes, keys, policies, secrets, limits } = a;
    *version == b.version
        && *providers == b.providers
        && *routes == b.routes
        && *keys == b.keys
        && *policies == b.policies
        && *secrets == b.secrets
        && *limits == b.limits
}
