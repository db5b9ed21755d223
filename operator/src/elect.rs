//! Leader election against the API server: the decisions of [`crate::lease`], written with
//! optimistic concurrency (every update carries the Lease's `resourceVersion`, so of two
//! candidates racing for an expired Lease exactly one write succeeds).

use crate::lease::{Step, Timing, decide, released};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::PostParams;
use tokio::sync::watch;
use tokio::time::{Instant, sleep};

/// One candidate for one Lease.
pub struct Election {
    pub api: Api<Lease>,
    pub name: String,
    pub identity: String,
    pub timing: Timing,
}

impl Election {
    /// Waits until this candidate holds the Lease (false: shut down first).
    pub async fn acquire(&self, shutdown: &mut watch::Receiver<bool>) -> bool {
        let mut announced_leader = None;
        loop {
            match self.attempt().await {
                Ok(None) => {
                    tracing::info!(lease = %self.name, identity = %self.identity, "leading");
                    return true;
                }
                Ok(Some(leader)) => {
                    if announced_leader.as_ref() != Some(&leader) {
                        tracing::info!(lease = %self.name, leader = %leader, "standing by");
                        announced_leader = Some(leader);
                    }
                }
                Err(err) => {
                    tracing::warn!(lease = %self.name, error = %err, "leader election failed; retrying")
                }
            }
            tokio::select! {
                () = sleep(self.timing.retry_period) => {}
                _ = shutdown.wait_for(|stop| *stop) => return false,
            }
        }
    }

    /// Renews the Lease every retry period. Returns an error once renewing has failed for
    /// longer than the renew deadline (the Lease may be someone else's by then: stop leading),
    /// and `Ok` on shutdown after releasing the Lease so the standby takes over at once.
    pub async fn hold(&self, shutdown: &mut watch::Receiver<bool>) -> Result<(), String> {
        let mut renewed = Instant::now();
        loop {
            tokio::select! {
                () = sleep(self.timing.retry_period) => {}
                _ = shutdown.wait_for(|stop| *stop) => {
                    self.release().await;
                    return Ok(());
                }
            }
            match self.attempt().await {
                Ok(None) => renewed = Instant::now(),
                Ok(Some(leader)) => return Err(format!("lease {} is now held by {leader}", self.name)),
                Err(err) => {
                    tracing::warn!(lease = %self.name, error = %err, "cannot renew the lease");
                    if renewed.elapsed() > self.timing.renew_deadline {
                        return Err(format!(
                            "could not renew lease {} for {:?}",
                            self.name, self.timing.renew_deadline
                        ));
                    }
                }
            }
        }
    }

    /// One look and one write: `Ok(None)` when we hold the Lease afterwards, `Ok(Some(leader))`
    /// when someone else does.
    async fn attempt(&self) -> Result<Option<String>, String> {
        let current = self.api.get_opt(&self.name).await.map_err(|e| e.to_string())?;
        let spec = current.as_ref().and_then(|lease| lease.spec.as_ref());
        let outcome = match decide(spec, &self.identity, Timestamp::now(), self.timing) {
            Step::Follow { leader } => return Ok(Some(leader)),
            Step::Create(spec) => {
                let lease = Lease {
                    metadata: ObjectMeta { name: Some(self.name.clone()), ..ObjectMeta::default() },
                    spec: Some(spec),
                };
                self.api.create(&PostParams::default(), &lease).await.map(drop)
            }
            Step::Renew(spec) | Step::TakeOver(spec) => {
                let Some(mut lease) = current else { return Err("the lease vanished".into()) };
                lease.spec = Some(spec);
                self.api.replace(&self.name, &PostParams::default(), &lease).await.map(drop)
            }
        };
        match outcome {
            Ok(()) => Ok(None),
            // Another candidate wrote first (409 on the resourceVersion, or it created the Lease).
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(Some("another candidate".into())),
            Err(err) => Err(err.to_string()),
        }
    }

    async fn release(&self) {
        let Ok(Some(mut lease)) = self.api.get_opt(&self.name).await else { return };
        let Some(spec) = lease.spec.as_ref() else { return };
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            return;
        }
        lease.spec = Some(released(spec));
        match self.api.replace(&self.name, &PostParams::default(), &lease).await {
            Ok(_) => tracing::info!(lease = %self.name, "lease released"),
            Err(err) => {
                tracing::warn!(lease = %self.name, error = %err, "cannot release the lease; the standby waits for it to expire")
            }
        }
    }
}
