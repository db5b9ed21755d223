//! Writes statuses in the background, so a reconcile (and the push of the next snapshot) never
//! waits on the API server: after 10,000 VirtualKeys are applied, their first statuses take
//! seconds to write, and the gateways must not wait for them.
//!
//! The controller hands over statuses that changed ([`StatusWriter::submit`]); the writer keeps
//! the newest one per object and writes up to [`IN_FLIGHT`] at a time (merge patches of the
//! status subresource). A failed write is retried after [`RETRY_AFTER`] unless a newer status
//! for that object arrived meanwhile; a write to an object that is gone is dropped.

use crate::compile::ObjectStatus;
use crate::metrics::OperatorMetrics;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client, Resource};
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;
use switchboard_crds::{LlmProvider, ModelRoute, RateLimitPolicy, VirtualKey};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

/// Status writes in flight at once: enough to write 10,000 first statuses in seconds, few
/// enough not to crowd the API server's priority and fairness queues.
pub const IN_FLIGHT: usize = 8;

/// How long before a failed write is tried again.
pub const RETRY_AFTER: Duration = Duration::from_secs(1);

/// An object, as statuses are addressed: kind, namespace, name.
type ObjectKey = (String, String, String);

fn key_of(status: &ObjectStatus) -> ObjectKey {
    let object = &status.object;
    (object.kind.clone(), object.namespace.clone(), object.name.clone())
}

/// A status to write, numbered so that a retry never overwrites a newer status.
struct Submission {
    sequence: u64,
    status: ObjectStatus,
}

/// The controller's handle on the writer task.
pub struct StatusWriter {
    queue: mpsc::UnboundedSender<Submission>,
    sequence: u64,
}

impl StatusWriter {
    /// Starts the writer task; it ends when the handle is dropped and the queue is written.
    pub fn start(client: Client, metrics: Arc<OperatorMetrics>) -> StatusWriter {
        let (queue, submissions) = mpsc::unbounded_channel();
        let retries = queue.downgrade();
        tokio::spawn(write_all(client, metrics, submissions, retries));
        StatusWriter { queue, sequence: 0 }
    }

    /// Queues `status` for writing; it replaces a queued status of the same object.
    pub fn submit(&mut self, status: ObjectStatus) {
        self.sequence += 1;
        let _ = self.queue.send(Submission { sequence: self.sequence, status });
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
                let key = key_of(&submission.status);
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
                        tracing::warn!(object = %submission.status.object, error = %err, "cannot write status; retrying");
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

async fn write(client: &Client, submission: Submission) -> Outcome {
    let status = &submission.status;
    let mut body = serde_json::json!({
        "status": { "conditions": status.conditions, "observedGeneration": status.observed_generation }
    });
    if let Some(key_id) = &status.key_id {
        body["status"]["keyId"] = serde_json::Value::from(key_id.clone());
    }
    let (namespace, name) = (status.object.namespace.as_str(), status.object.name.as_str());
    let written = match status.object.kind.as_str() {
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
