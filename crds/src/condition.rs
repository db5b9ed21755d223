//! Status conditions: the types every kind reports, the reasons the operator may give, and the
//! one rule for updating a list of conditions.
//!
//! The vocabulary follows Gateway API (`Accepted`, `ResolvedRefs`, `Programmed`) so people who
//! know Gateway, HTTPRoute or Envoy AI Gateway read our statuses without a manual. What each
//! reason means for the user is written in docs/crds.md; a test keeps that page complete.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

/// The condition types on every Switchboard object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConditionType {
    /// The spec is valid and the operator will use it (False: it is ignored; see the reason).
    Accepted,
    /// Every reference (LLMProvider, RateLimitPolicy, Secret) resolves.
    ResolvedRefs,
    /// The object is part of the config the gateways serve.
    Programmed,
}

impl ConditionType {
    /// Every condition type, in the order statuses list them.
    pub const ALL: [ConditionType; 3] =
        [ConditionType::Accepted, ConditionType::ResolvedRefs, ConditionType::Programmed];

    /// The `type` string in `status.conditions`.
    pub fn as_str(self) -> &'static str {
        match self {
            ConditionType::Accepted => "Accepted",
            ConditionType::ResolvedRefs => "ResolvedRefs",
            ConditionType::Programmed => "Programmed",
        }
    }
}

/// Why a condition has its status. One enum for all three types: Gateway API reuses reasons
/// across types too (`Invalid` explains both a False `Accepted` and a False `Programmed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// `Accepted=True`: the spec is valid.
    Accepted,
    /// `Accepted=False`: the spec passed the schema but not the operator's checks (the message
    /// names the field); `Programmed=False` because the object is not accepted.
    Invalid,
    /// `Accepted=False`: another object already claims the same thing (two ModelRoutes for one
    /// public model name, two VirtualKeys holding the same key). The oldest object wins.
    Conflict,
    /// `ResolvedRefs=True`: every reference resolves.
    ResolvedRefs,
    /// `ResolvedRefs=False`: a referenced LLMProvider or RateLimitPolicy does not exist in the
    /// namespace, or is not accepted.
    RefNotFound,
    /// `ResolvedRefs=False`: a referenced Secret, or the key inside it, does not exist.
    SecretNotFound,
    /// `Programmed=True`: the gateways serve the object.
    Programmed,
    /// `Programmed=False` or `Unknown`: accepted, not yet served by every gateway replica.
    Pending,
    /// `Programmed=False` (RateLimitPolicy): valid and sent to the gateways, but it limits nothing
    /// because no serving ModelRoute or VirtualKey references it. A referenced policy gets the
    /// fleet's `Programmed`, like every other kind.
    NotEnforced,
}

impl Reason {
    /// Every reason, so docs and tests can be checked against the full list.
    pub const ALL: [Reason; 9] = [
        Reason::Accepted,
        Reason::Invalid,
        Reason::Conflict,
        Reason::ResolvedRefs,
        Reason::RefNotFound,
        Reason::SecretNotFound,
        Reason::Programmed,
        Reason::Pending,
        Reason::NotEnforced,
    ];

    /// The `reason` string in `status.conditions`.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Accepted => "Accepted",
            Reason::Invalid => "Invalid",
            Reason::Conflict => "Conflict",
            Reason::ResolvedRefs => "ResolvedRefs",
            Reason::RefNotFound => "RefNotFound",
            Reason::SecretNotFound => "SecretNotFound",
            Reason::Programmed => "Programmed",
            Reason::Pending => "Pending",
            Reason::NotEnforced => "NotEnforced",
        }
    }
}

/// A condition's `status`: `True`, `False` or `Unknown`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// `True`
    True,
    /// `False`
    False,
    /// `Unknown`: the operator cannot tell yet (e.g. a gateway replica has not answered).
    Unknown,
}

impl Status {
    /// The `status` string in `status.conditions`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::True => "True",
            Status::False => "False",
            Status::Unknown => "Unknown",
        }
    }
}

/// Builds a condition observed at `generation` (the object's `metadata.generation`), stamped `now`.
pub fn condition(
    type_: ConditionType,
    status: Status,
    reason: Reason,
    message: impl Into<String>,
    generation: Option<i64>,
    now: Time,
) -> Condition {
    Condition {
        type_: type_.as_str().to_owned(),
        status: status.as_str().to_owned(),
        reason: reason.as_str().to_owned(),
        message: message.into(),
        observed_generation: generation,
        last_transition_time: now,
    }
}

/// Puts `new` into `conditions`, replacing the condition of the same type. As Kubernetes
/// conventions ask (and `meta.SetStatusCondition` does in Go), `lastTransitionTime` only moves
/// when the status changes: a new reason or message for the same status keeps the old time, so
/// "since when has this been False" stays answerable. Returns whether anything changed, so a
/// caller can skip a status write that would change nothing.
pub fn set_condition(conditions: &mut Vec<Condition>, new: Condition) -> bool {
    let Some(existing) = conditions.iter_mut().find(|c| c.type_ == new.type_) else {
        conditions.push(new);
        return true;
    };
    let last_transition_time = if existing.status == new.status {
        existing.last_transition_time.clone()
    } else {
        new.last_transition_time.clone()
    };
    let updated = Condition { last_transition_time, ..new };
    if *existing == updated {
        return false;
    }
    *existing = updated;
    true
}

#[cfg(test)]
mod tests {
    use super::{ConditionType, Reason, Status, condition, set_condition};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use k8s_openapi::jiff::Timestamp;

    fn at(seconds: i64) -> Result<Time, k8s_openapi::jiff::Error> {
        Ok(Time(Timestamp::from_second(seconds)?))
    }

    #[test]
    fn transition_time_moves_only_when_the_status_changes() -> Result<(), k8s_openapi::jiff::Error> {
        let accepted = |status, reason, message: &str, t| {
            condition(ConditionType::Accepted, status, reason, message, Some(1), t)
        };
        let mut conditions = Vec::new();
        assert!(set_condition(&mut conditions, accepted(Status::False, Reason::Invalid, "a", at(10)?)));

        // Same status, new message: the message changes, the time stays.
        assert!(set_condition(&mut conditions, accepted(Status::False, Reason::Invalid, "b", at(20)?)));
        assert_eq!(conditions.len(), 1);
        assert_eq!(conditions[0].message, "b");
        assert_eq!(conditions[0].last_transition_time, at(10)?);

        // Nothing new: reported as unchanged.
        assert!(!set_condition(&mut conditions, accepted(Status::False, Reason::Invalid, "b", at(30)?)));

        // A transition takes the new time.
        assert!(set_condition(&mut conditions, accepted(Status::True, Reason::Accepted, "", at(40)?)));
        assert_eq!(conditions[0].last_transition_time, at(40)?);
        assert_eq!(conditions[0].status, "True");

        // Another type is added beside it.
        let programmed =
            condition(ConditionType::Programmed, Status::Unknown, Reason::Pending, "", Some(1), at(50)?);
        assert!(set_condition(&mut conditions, programmed));
        assert_eq!(conditions.len(), 2);
        Ok(())
    }

    #[test]
    fn strings_are_unique_camel_case() {
        let mut seen = std::collections::HashSet::new();
        for reason in Reason::ALL {
            assert!(seen.insert(reason.as_str()), "{reason:?} repeats a string");
            assert!(reason.as_str().starts_with(|c: char| c.is_ascii_uppercase()));
        }
        for type_ in ConditionType::ALL {
            assert!(type_.as_str().chars().all(|c| c.is_ascii_alphabetic()));
        }
    }
}
