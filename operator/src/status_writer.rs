//! Writes statuses in the background, so a reconcile (and the push of the next snapshot) never
//! waits on the API server: after 10,000 VirtualKeys are applied, their first statuses take
//! seconds to write, and the gateways must not wait for them.
//!
//! The controller hands over statuses that changed ([`StatusWriter::submit`]); the writer keeps
//! the newest one per object and writes up to [`IN_FLIGHT`] at a time (merge patches of the
//! status subresource). A failed write is retried after [`RETRY_AFTER`] unless a newer status
//! for that object arrived meanwhile; a write to an object that is gone is dropped.
//!
//! A VirtualKey's `status.spend` (read from Redis, `crate::spend`) goes through the same writer
//! ([`StatusWriter::submit_spend`]) as a part of its own: its patch names `spend` only, the
//! compile's patches never name it, and the two are queued under different keys, so neither
//! replaces nor overwrites the other.

use crate::compile::ObjectStatus;
use crate::metrics::OperatorMetrics;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client, Resource};
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;
use switchboard_crds::virtual_key::Spend;
use switchboard_crds::{LlmProvider, ModelRoute, RateLimitPolicy, VirtualKey};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

/// Status writes in flight at once: enough to write 10,000 first statuses in seconds, few
/// enough not to crowd the API server's priority and fairness queues.
pub const IN_FLIGHT: usize = 8;

/// How long before a failed write is tried again.
pub const RETRY_AFTER: Duration = Duration::from_secs(1);

/// What a queued write is addressed by: kind, namespace, name, and the part of the status it
/// sets (an object's conditions and its spend are written independently).
type ObjectKey = (String, String, String, Part);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Part {
    /// `conditions`, `observedGeneration`, `keyId`: the compile's.
    Conditions,
    /// A VirtualKey's `spend`: read from Redis.
    Spend,
}

/// What one write sets.
enum StatusPatch {
    Conditions(ObjectStatus),
    /// `None` removes `status.spend` (the key no longer has a budget counted in Redis).
    Spend {
        namespace: String,
        name: String,
        spend: Option<Spend>,
    },
}

impl StatusPatch {
    fn key(&self) -> ObjectKey {
        match self {
            StatusPatch::Conditions(status) => {
                let object = &status.object;
                (object.kind.clone(), object.namespace.clone(), object.name.clone(), Part::Conditions)
            }
            StatusPatch::Spend { namespace, name, .. } => {
                ("VirtualKey".to_owned(), namespace.clone(), name.clone(), Part::Spend)
            }
        }
    }
}

/// A status to write, numbered so that a retry never overwrites a newer status.
struct Submission {
    sequence: u64,
    patch: StatusPatch,
}

/// A handle on the writer task: the controller's, and a clone for the spend reader.
#[derive(Clone)]
pub struct StatusWriter {
    queue: mpsc::UnboundedSender<Submission>,
    /// Shared by the clones: a sequence only orders submissions of one key, and each key is
    /// submitted through one handle, but a shared counter keeps that true by construction.
    sequence: Arc<AtomicU64>,
}

impl StatusWriter {
    /// Starts the writer task; it ends when every handle is dropped and the queue is written.
    pub fn start(client: Client, metrics: Arc<OperatorMetrics>) -> StatusWriter {
        let (queue, submissions) = mpsc::unbounded_channel();
        let retries = queue.downgrade();
        tokio::spawn(write_all(client, metrics, submissions, retries));
        StatusWriter { queue, sequence: Arc::new(AtomicU64::new(0)) }
    }

    /// Queues `status` for writing; it replaces a queued status of the same object.
    pub fn submit(&self, status: ObjectStatus) {
        self.send(StatusPatch::Conditions(status));
    }

    /// Queues a VirtualKey's `status.spend` (`None`: remove it); it replaces a queued spend of
    /// the same key, never its conditions.
    pub fn submit_spend(&self, namespace: &str, name: &str, spend: Option<Spend>) {
        self.send(StatusPatch::Spend { namespace: namespace.to_owned(), name: name.to_owned(), spend });
    }

    fn send(&self, patch: StatusPatch) {
        let sequence = self.sequence.fetch_add(1, Relaxed) + 1;
        let _ = self.queue.send(Submission { sequence, patch });
    }
}

async fn write_all(
    client: Client,
    metrics: Arc<OperatorMetrics>,
    mut submissions: mpsc::UnboundedReceiver<Submission>,
    retries: mpsc::WeakUnboundedSender<Submission>,
) {
    let mut pending: BTreeMap<ObjectKey, Submission> = BTreeMap::new();
    let mut writing: HashSet<ObjectKey> = HashSet::new();
    let mut writes = JoinSet::new();
    loop {
        tokio::select! {
            submission = submissions.recv() => {
                let Some(submission) = submission else { break };
                let key = submission.patch.key();
                // Newest wins: a retry of an older status yields to what came after it.
                if pending.get(&key).is_none_or(|queued| queued.sequence < submission.sequence) {
                    pending.insert(key, submission);
                }
            }
            Some(done) = writes.join_next(), if !writes.is_empty() => {
                let Ok((key, outcome)) = done else { continue };
                writing.remove(&key);
                match outcome {
                    Outcome::Written => {
                        metrics.status_writes.fetch_add(1, Relaxed);
                    }
                    Outcome::Gone => {}
                    Outcome::Refused(message) => {
                        metrics.status_write_errors.fetch_add(1, Relaxed);
                        tracing::error!(kind = %key.0, namespace = %key.1, name = %key.2, error = %message, "the API server refused a status write");
                    }
                    Outcome::Failed(failed) => {
                        let (submission, err) = *failed;
                        metrics.status_write_errors.fetch_add(1, Relaxed);
                        tracing::warn!(kind = %key.0, namespace = %key.1, name = %key.2, error = %err, "cannot write status; retrying");
                        let retries = retries.clone();
                        tokio::spawn(async move {
                            tokio::time::sleep(RETRY_AFTER).await;
                            if let Some(queue) = retries.upgrade() {
                                let _ = queue.send(submission);
                            }
                        });
                    }
                }
            }
        }
        // Start writes for queued objects not being written right now (one write per object
        // at a time keeps them in order).
        while writes.len() < IN_FLIGHT {
            let Some(key) = pending.keys().find(|key| !writing.contains(*key)).cloned() else { break };
            let Some(submission) = pending.remove(&key) else { break };
            writing.insert(key.clone());
            let client = client.clone();
            writes.spawn(async move { (key, write(&client, submission).await) });
        }
    }
    while writes.join_next().await.is_some() {}
}

enum Outcome {
    Written,
    /// The object was deleted meanwhile: nothing to write.
    Gone,
    Refused(String),
    Failed(Box<(Submission, kube::Error)>),
}

/// The merge patch of a write: only the fields its part owns, so a conditions patch leaves
/// `spend` as it is and a spend patch leaves the conditions (a merge patch keeps what it does
/// not name).
fn body(patch: &StatusPatch) -> serde_json::Value {
    match patch {
        StatusPatch::Conditions(status) => {
            let mut body = serde_json::json!({
                "status": { "conditions": status.conditions, "observedGeneration": status.observed_generation }
            });
            if let Some(key_id) = &status.key_id {
                body["status"]["keyId"] = serde_json::Value::from(key_id.clone());
            }
            body
        }
        // `null` deletes the field in a merge patch.
        StatusPatch::Spend { spend, .. } => serde_json::json!({ "status": { "spend": spend } }),
    }
}

async fn write(client: &Client, submission: Submission) -> Outcome {
    let body = body(&submission.patch);
    let (kind, namespace, name, _) = submission.patch.key();
    let (namespace, name) = (namespace.as_str(), name.as_str());
    let written = match kind.as_str() {
        "LLMProvider" => patch_status::<LlmProvider>(client, namespace, name, &body).await,
        "ModelRoute" => patch_status::<ModelRoute>(client, namespace, name, &body).await,
        "VirtualKey" => patch_status::<VirtualKey>(client, namespace, name, &body).await,
        "RateLimitPolicy" => patch_status::<RateLimitPolicy>(client, namespace, name, &body).await,
        _ => Ok(()),
    };
    match written {
        Ok(()) => Outcome::Written,
        Err(kube::Error::Api(response)) if response.code == 404 => Outcome::Gone,
        // Any other refusal of the request itself (a status the schema refuses) would be refused
        // again: reported, not retried.
        Err(kube::Error::Api(response))
            if response.code / 100 == 4 && ![409, 429].contains(&response.code) =>
        {
            Outcome::Refused(response.message)
        }
        Err(err) => Outcome::Failed(Box::new((submission, err))),
    }
}

async fn patch_status<K>(
    client: &Client,
    namespace: &str,
    name: &str,
    body: &serde_json::Value,
) -> kube::Result<()>
where
    K: Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(body)).await.map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spend_and_conditions_patches_name_disjoint_fields_and_queue_apart() {
        let status = ObjectStatus {
            object: switchboard_config::ObjectRef {
                kind: "VirtualKey".into(),
                namespace: "ns".into(),
                name: "k".into(),
                uid: String::new(),
                generation: 1,
            },
            key_id: Some("ns/k".into()),
            observed_generation: Some(1),
            conditions: Vec::new(),
            changed: true,
        };
        let conditions = StatusPatch::Conditions(status);
        let spend = StatusPatch::Spend {
            namespace: "ns".into(),
            name: "k".into(),
            spend: Some(Spend { day: "2026-12-02".into(), today: "0.42".into(), ..Default::default() }),
        };
        let conditions_body = body(&conditions);
        assert!(conditions_body["status"].get("spend").is_none(), "{conditions_body}");
        let spend_body = body(&spend);
        let fields: Vec<&String> =
            spend_body["status"].as_object().into_iter().flatten().map(|(k, _)| k).collect();
        assert_eq!(fields, ["spend"]);
        assert_eq!(spend_body["status"]["spend"]["today"], "0.42");
        let removal = StatusPatch::Spend { namespace: "ns".into(), name: "k".into(), spend: None };
        assert_eq!(body(&removal), serde_json::json!({"status": {"spend": null}}));
        assert_ne!(conditions.key(), spend.key());
        assert_eq!(spend.key(), removal.key());
    }
}
