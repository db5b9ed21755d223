//! `Programmed` from what the gateway replicas report: how many replicas run a snapshot that
//! includes the object's current generation, and why one refused it. The replicas counted are
//! the connected ones and those disconnected for less than the grace period (the publisher
//! forgets the others), so a restarting replica does not flip every status twice.

use crate::publish::ReplicaState;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;
use switchboard_config::ObjectRef;
use switchboard_crds::condition::{Reason, Status};

/// For each serving object (kind, namespace, name): its `metadata.generation` and the first
/// snapshot generation that carried it.
pub type ServedSince = HashMap<(String, String, String), (i64, u64)>;

/// What the controller knows about the fleet when it compiles.
#[derive(Debug, Clone, Default)]
pub struct Fleet {
    /// The replicas that count: connected, or disconnected within the grace period.
    pub replicas: Vec<ReplicaState>,
    /// For each serving object (kind, namespace, name): its `metadata.generation` and the first
    /// snapshot generation that carried it. A replica runs the object's current generation once
    /// it has applied that snapshot or a later one.
    pub served_since: Arc<ServedSince>,
}

impl Fleet {
    /// The `Programmed` condition of a serving object, or `None` when the fleet has not seen it
    /// yet (it is in the snapshot being published right now).
    pub(crate) fn programmed(&self, object: &ObjectRef) -> Option<(Status, Reason, String)> {
        let key = (object.kind.clone(), object.namespace.clone(), object.name.clone());
        let &(_, since) = self.served_since.get(&key)?;
        let counted = &self.replicas;
        if counted.is_empty() {
            let message = format!("in snapshot generation {since}; no gateway replica is connected");
            return Some((Status::Unknown, Reason::Pending, message));
        }
        let mut refusals = Vec::new();
        let mut running = 0;
        let mut away = Vec::new();
        for replica in counted {
            if !replica.connected {
                away.push(replica.replica.as_str());
            }
            let rejected =
                replica.rejected.iter().find(|r| r.object.as_ref().is_some_and(|o| same(o, object)));
            if let Some(rejection) = rejected {
                let reasons: Vec<String> =
                    rejection.reasons.iter().map(|p| format!("{}: {}", p.path, p.reason)).collect();
                refusals.push(format!("replica {} left it out: {}", replica.replica, reasons.join("; ")));
                continue;
            }
            if let Some((generation, reasons)) = &replica.refused
                && *generation >= since
            {
                let reasons: Vec<String> =
                    reasons.iter().map(|p| format!("{}: {}", p.path, p.reason)).collect();
                refusals.push(format!(
                    "replica {} refused generation {generation}: {}",
                    replica.replica,
                    reasons.join("; ")
                ));
                continue;
            }
            if replica.applied.as_ref().is_some_and(|a| a.generation >= since) {
                running += 1;
            }
        }
        let mut count = format!("{running}/{} replicas at generation {since}", counted.len());
        if !away.is_empty() {
            let _ = write!(
                count,
                " ({} disconnected, counted until it returns or the grace period ends)",
                away.join(", ")
            );
        }
        Some(if !refusals.is_empty() {
            (Status::False, Reason::Invalid, format!("{count}; {}", refusals.join("; ")))
        } else if running == counted.len() {
            (Status::True, Reason::Programmed, count)
        } else {
            (Status::Unknown, Reason::Pending, count)
        })
    }
}

fn same(a: &ObjectRef, b: &ObjectRef) -> bool {
    a.kind == b.kind && a.namespace == b.namespace && a.name == b.name
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_config::stream::{Served, WireProblem, WireRejection};

    fn object() -> ObjectRef {
        ObjectRef {
            kind: "ModelRoute".into(),
            namespace: "ns".into(),
            name: "chat".into(),
            uid: String::new(),
            generation: 2,
        }
    }

    fn replica(name: &str, applied: u64) -> ReplicaState {
        ReplicaState {
            replica: name.into(),
            connected: true,
            version: 2,
            applied: Some(Served { generation: applied, hash: "h".into() }),
            rejected: Vec::new(),
            refused: None,
            left_at: None,
        }
    }

    fn fleet(replicas: Vec<ReplicaState>) -> Fleet {
        let served_since = HashMap::from([(("ModelRoute".into(), "ns".into(), "chat".into()), (2, 10))]);
        Fleet { replicas, served_since: Arc::new(served_since) }
    }

    #[test]
    fn counts_connected_replicas_running_the_objects_generation() {
        let (status, _, message) =
            fleet(vec![replica("a", 10), replica("b", 11)]).programmed(&object()).unwrap();
        assert_eq!((status, message.as_str()), (Status::True, "2/2 replicas at generation 10"));
        let (status, reason, message) =
            fleet(vec![replica("a", 10), replica("b", 9)]).programmed(&object()).unwrap();
        assert_eq!(
            (status, reason, message.as_str()),
            (Status::Unknown, Reason::Pending, "1/2 replicas at generation 10")
        );
        let (status, _, message) = fleet(Vec::new()).programmed(&object()).unwrap();
        assert_eq!(status, Status::Unknown);
        assert!(message.contains("no gateway replica is connected"), "{message}");
    }

    #[test]
    fn a_disconnected_replica_still_counts_and_is_named() {
        let mut away = replica("c", 10);
        away.connected = false;
        let (status, _, message) = fleet(vec![replica("a", 10), away.clone()]).programmed(&object()).unwrap();
        assert_eq!(status, Status::True);
        assert_eq!(
            message,
            "2/2 replicas at generation 10 (c disconnected, counted until it returns or the grace period ends)"
        );
        away.applied = Some(Served { generation: 9, hash: "h".into() });
        let (status, _, message) = fleet(vec![replica("a", 10), away]).programmed(&object()).unwrap();
        assert_eq!(status, Status::Unknown);
        assert!(message.starts_with("1/2 replicas at generation 10 (c disconnected"), "{message}");
    }

    #[test]
    fn a_replica_that_left_the_object_out_says_why() {
        let mut refusing = replica("b", 10);
        refusing.rejected = vec![WireRejection {
            section: "routes".into(),
            name: "chat".into(),
            object: Some(object()),
            reasons: vec![WireProblem {
                path: "routes[0].model".into(),
                reason: "too long".into(),
                object: None,
            }],
        }];
        let (status, reason, message) =
            fleet(vec![replica("a", 10), refusing]).programmed(&object()).unwrap();
        assert_eq!((status, reason), (Status::False, Reason::Invalid));
        assert_eq!(
            message,
            "1/2 replicas at generation 10; replica b left it out: routes[0].model: too long"
        );
        assert!(fleet(vec![]).programmed(&ObjectRef { name: "other".into(), ..object() }).is_none());
    }
}
