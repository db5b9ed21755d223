//! The controller: watch the four kinds and Secrets, compile on every change (debounced),
//! publish the snapshot to the gateway fleet, write statuses that changed, create the Secrets of
//! VirtualKeys that have none.
//!
//! Gather, compile, write (style.md rule 2): the watch caches are the gathered state, [`compile`]
//! is pure, and this file only moves values between the API server, the compile and the
//! publisher.

use crate::compile::{Compiled, Fleet, ObjectStatus, compile};
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
use switchboard_crds::{LlmProvider, ModelRoute, RateLimitPolicy, VirtualKey};
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

/// How long the controller waits for more changes before compiling (a `kubectl apply -f dir/`
/// arrives as a burst of events: one compile, not fifty).
pub const DEBOUNCE: Duration = Duration::from_millis(50);

/// What the controller watches and where it publishes.
pub struct Controller {
    pub client: Client,
    /// Namespaces to watch; empty means every namespace.
    pub namespaces: Vec<String>,
    pub publisher: Arc<Publisher>,
    pub metrics: Arc<crate::metrics::OperatorMetrics>,
    /// Posts Kubernetes Events (`kubectl describe` shows them) when an object is refused.
    pub recorder: kube::runtime::events::Recorder,
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
    fn inputs(&self, generation: u64, now: Time, fleet: Fleet) -> Inputs {
        fn all<K: Clone + kube::Resource<DynamicType = ()> + 'static>(stores: &[Store<K>]) -> Vec<K> {
            stores.iter().flat_map(|s| s.state()).map(|o| (*o).clone()).collect()
        }
        Inputs {
            providers: all(&self.providers),
            routes: all(&self.routes),
            keys: all(&self.keys),
            policies: all(&self.policies),
            secrets: all(&self.secrets),
            generation,
            now: Some(now),
            fleet: Some(fleet),
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
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) -> Result<(), String> {
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
        let mut published: Option<String> = None;
        let mut generation = first_generation(&self.publisher);
        let mut served_since = HashMap::new();
        let mut replicas = self.publisher.changes();
        let mut writer = StatusWriter::start(self.client.clone(), self.metrics.clone());
        let mut submitted = HashMap::new();
        loop {
            let started = Instant::now();
            // Replicas gone longer than the grace period leave the counts now; the next one
            // to go wakes this loop.
            let next_departure = self.publisher.forget_departed(started);
            let now = Time(k8s_openapi::jiff::Timestamp::now());
            let fleet = |served_since: &HashMap<_, _>| Fleet {
                replicas: self.publisher.replicas(),
                served_since: served_since.clone(),
            };
            // A replica serving a generation above ours (a previous leader's clock ran ahead, or
            // it numbered faster than one a second) would refuse ours as older: number above it,
            // and send the current content again under that number.
            let reported = highest_served(&self.publisher);
            if reported > generation {
                tracing::info!(
                    generation,
                    reported,
                    "a replica serves a higher generation; numbering above it"
                );
                generation = reported;
                published = None;
            }
            let mut compiled = compile(&stores.inputs(generation + 1, now.clone(), fleet(&served_since)));
            // A new generation only when what the gateways serve changed; the comparison leaves
            // the generation number itself out.
            let content = without_generation(&compiled);
            if published.as_deref() != Some(content.as_str()) {
                generation += 1;
                self.metrics.snapshot_generation.store(generation, Relaxed);
                self.metrics.snapshot_bytes.store(content.len() as u64, Relaxed);
                self.publisher.publish(compiled.snapshot.clone());
                tracing::info!(
                    generation,
                    providers = compiled.snapshot.providers.len(),
                    routes = compiled.snapshot.routes.len(),
                    keys = compiled.snapshot.keys.len(),
                    "snapshot published"
                );
                published = Some(content);
            } else {
                // Nothing new to serve: statuses speak of the generation being served.
                compiled = compile(&stores.inputs(generation, now.clone(), fleet(&served_since)));
            }
            if track_served(&mut served_since, &compiled) {
                compiled = compile(&stores.inputs(generation, now.clone(), fleet(&served_since)));
            }
            let fresh = queue_statuses(&compiled.statuses, &mut submitted, &mut writer);
            self.metrics.reconcile.observe(started.elapsed());
            self.record_refusals(&fresh, &now).await;
            self.generate_key_secrets(&compiled).await;

            // Recompile on a change to the objects, to what replicas report (Programmed), or
            // when a departed replica's grace period ends.
            let departure = async {
                match next_departure {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = changed.notified() => {}
                result = replicas.changed() => if result.is_err() { return Ok(()) },
                () = departure => {}
                _ = shutdown.wait_for(|stop| *stop) => return Ok(()),
            }
            // Let the rest of a burst arrive.
            loop {
                tokio::select! {
                    () = changed.notified() => {}
                    _ = replicas.changed() => {}
                    () = tokio::time::sleep(DEBOUNCE) => break,
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
                    while let Some(event) = stream.next().await {
                        match event {
                            Ok(_) => changed.notify_one(),
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
    async fn generate_key_secrets(&self, compiled: &Compiled) {
        for wanted in &compiled.generate {
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
/// `metadata.generation`; forgets objects that stopped serving. Returns whether anything changed.
fn track_served(
    served_since: &mut HashMap<(String, String, String), (i64, u64)>,
    compiled: &Compiled,
) -> bool {
    let snapshot = &compiled.snapshot;
    let sources = snapshot
        .providers
        .iter()
        .filter_map(|p| p.source())
        .chain(snapshot.routes.iter().filter_map(|r| r.source.as_ref()))
        .chain(snapshot.keys.iter().filter_map(|k| k.source.as_ref()))
        .chain(snapshot.policies.iter().filter_map(|p| p.source.as_ref()));
    let mut current = HashMap::new();
    for source in sources {
        let key = (source.kind.clone(), source.namespace.clone(), source.name.clone());
        let since = match served_since.get(&key) {
            Some(&(generation, since)) if generation == source.generation => since,
            _ => snapshot.generation,
        };
        current.insert(key, (source.generation, since));
    }
    let changed = current != *served_since;
    *served_since = current;
    changed
}

fn without_generation(compiled: &Compiled) -> String {
    let mut snapshot = compiled.snapshot.clone();
    snapshot.generation = 0;
    snapshot.to_json()
}
