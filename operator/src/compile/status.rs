//! Verdicts gathered while compiling, turned into each object's conditions.
//!
//! Every object gets the same three conditions (Kubernetes conventions: type, status, reason,
//! message, observedGeneration, lastTransitionTime): `Accepted` (is the spec usable),
//! `ResolvedRefs` (does everything it names exist and serve), `Programmed` (is it in the snapshot
//! the gateways serve; the controller turns `Unknown` into `True` once replicas ack).

use super::{namespace, object_ref};
use crate::Inputs;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, ObjectMeta, Time};
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use switchboard_config::{ObjectRef, Snapshot};
use switchboard_crds::condition::{ConditionType, Reason, Status, condition, set_condition};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Kind {
    LlmProvider,
    ModelRoute,
    VirtualKey,
    RateLimitPolicy,
}

impl Kind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Kind::LlmProvider => "LLMProvider",
            Kind::ModelRoute => "ModelRoute",
            Kind::VirtualKey => "VirtualKey",
            Kind::RateLimitPolicy => "RateLimitPolicy",
        }
    }

    fn parse(kind: &str) -> Option<Kind> {
        [Kind::LlmProvider, Kind::ModelRoute, Kind::VirtualKey, Kind::RateLimitPolicy]
            .into_iter()
            .find(|k| k.as_str() == kind)
    }
}

/// What the compile found about one object.
#[derive(Debug, Default)]
pub(crate) struct Verdict {
    /// `Accepted=False, reason Invalid`: `field path: reason` each.
    invalid: Vec<String>,
    /// `Accepted=False, reason Conflict`.
    conflict: Option<String>,
    /// `ResolvedRefs=False`: what does not resolve, and why.
    unresolved: Vec<(Reason, String)>,
    /// Not serving yet for a reason that resolves itself (a key Secret being generated).
    pending: Option<String>,
}

type ObjectKey = (Kind, String, String);

#[derive(Debug, Default)]
pub(crate) struct Verdicts {
    by_object: HashMap<ObjectKey, Verdict>,
    /// Problems with the whole snapshot (a bug in the compile if ever non-empty).
    pub(crate) document_errors: Vec<String>,
}

impl Verdicts {
    fn entry(&mut self, kind: Kind, meta: &ObjectMeta) -> &mut Verdict {
        let key = (kind, namespace(meta).to_owned(), meta.name.clone().unwrap_or_default());
        self.by_object.entry(key).or_default()
    }

    pub(crate) fn invalid(&mut self, kind: Kind, meta: &ObjectMeta, path: &str, reason: impl AsRef<str>) {
        self.entry(kind, meta).invalid.push(format!("{path}: {}", reason.as_ref()));
    }

    pub(crate) fn conflict(&mut self, kind: Kind, meta: &ObjectMeta, message: String) {
        self.entry(kind, meta).conflict = Some(message);
    }

    pub(crate) fn unresolved(&mut self, kind: Kind, meta: &ObjectMeta, reason: Reason, message: String) {
        self.entry(kind, meta).unresolved.push((reason, message));
    }

    pub(crate) fn pending(&mut self, kind: Kind, meta: &ObjectMeta, message: String) {
        self.entry(kind, meta).pending = Some(message);
    }

    /// Records a problem the contract's validator found in an entry, with its snapshot path
    /// (`providers[3].base_url`) translated to the object's field path (`spec.baseURL`).
    pub(crate) fn invalid_from_contract(&mut self, object: &ObjectRef, path: &str, reason: &str) {
        let Some(kind) = Kind::parse(&object.kind) else { return };
        let within_entry = path.split_once(']').map_or("", |(_, rest)| rest.trim_start_matches('.'));
        let key = (kind, object.namespace.clone(), object.name.clone());
        let field = spec_path(kind, within_entry);
        // The contract names its own fields in some messages; say what the object calls them.
        let reason = reason
            .replace("allow_private_network", "allowPrivateNetwork")
            .replace("in api_key or headers", "in apiKey or headers[].valueFrom");
        self.by_object.entry(key).or_default().invalid.push(format!("{field}: {reason}"));
    }
}

/// The field of the object that a path inside a snapshot entry comes from.
fn spec_path(kind: Kind, path: &str) -> String {
    let (head, tail) = match path.find(['.', '[']) {
        Some(at) => path.split_at(at),
        None => (path, ""),
    };
    let mapped = match (kind, head) {
        (_, "") => return "spec".to_owned(),
        (Kind::LlmProvider, "base_url") => "spec.baseURL",
        (Kind::LlmProvider, "api_key") => return "spec.apiKey".to_owned(),
        (Kind::LlmProvider, "timeout_ms") => "spec.timeouts.request",
        (Kind::LlmProvider, "latency_ms") => "spec.mock.latency",
        (Kind::LlmProvider, "embedding_dimensions") => "spec.mock.embeddingDimensions",
        // The token-authenticated providers' settings (`compile/provider/cloud.rs`).
        (Kind::LlmProvider, "service_account") => "spec.vertex.serviceAccountKey",
        (Kind::LlmProvider, "token_url") => "spec.vertex.tokenURL",
        (Kind::LlmProvider, "project" | "location") => return format!("spec.vertex.{head}"),
        (Kind::LlmProvider, "api_version") => "spec.azure.apiVersion",
        (Kind::LlmProvider, "entra") => {
            let field = tail.trim_start_matches('.').split(['.', '[']).next().unwrap_or("");
            return match field {
                "" => "spec.entra".to_owned(),
                "tenant_id" => "spec.entra.tenantID".to_owned(),
                "client_id" => "spec.entra.clientID".to_owned(),
                "token_url" => "spec.entra.tokenURL".to_owned(),
                "client_secret" => "spec.entra.clientSecret".to_owned(),
                other => format!("spec.entra.{}", camel(other)),
            };
        }
        (Kind::LlmProvider, "region") => "spec.bedrock.region",
        (Kind::LlmProvider, "credentials") => {
            let tail = tail.strip_suffix(".secret").unwrap_or(tail);
            let tail = [
                ("web_identity", "webIdentity"),
                ("sts_url", "stsURL"),
                ("access_key_id", "accessKeyId"),
                ("secret_access_key", "secretAccessKey"),
                ("session_token", "sessionToken"),
            ]
            .iter()
            .fold(tail.to_owned(), |tail, (from, to)| tail.replace(from, to));
            return format!("spec.bedrock.credentials{tail}");
        }
        (Kind::LlmProvider, "headers") => {
            // `headers[0].value.secret` is the header's value, whichever way it was given.
            let index = tail.split_once(']').map_or("", |(index, _)| index);
            return format!("spec.headers{index}]");
        }
        (Kind::ModelRoute, "backends") => {
            // `backends[0].price.cache_read`: the price's fields are camelCase on the object.
            return format!("spec.backends{}", camel(&tail.replace(".provider", ".providerRef")));
        }
        (Kind::ModelRoute | Kind::VirtualKey, "policies") => return format!("spec.policyRefs{tail}"),
        (Kind::VirtualKey, "hash" | "hashes") => return "spec.secretRef".to_owned(),
        (Kind::VirtualKey, "labels") => "spec.team",
        (Kind::VirtualKey, "budget") => return format!("spec.budget{}", camel(tail)),
        (Kind::RateLimitPolicy, "window_seconds") => "spec.window",
        (Kind::RateLimitPolicy, "requests" | "input_tokens" | "output_tokens" | "total_tokens")
        | (Kind::RateLimitPolicy, "concurrent_requests" | "usd" | "daily_usd" | "monthly_usd") => {
            return format!("spec.limits.{}", camel(head));
        }
        (_, "name" | "id") => "metadata.name",
        _ => return format!("spec.{}{tail}", camel(head)),
    };
    format!("{mapped}{tail}")
}

fn camel(snake: &str) -> String {
    let mut out = String::with_capacity(snake.len());
    let mut upper = false;
    for c in snake.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// The status one object should have.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectStatus {
    pub object: ObjectRef,
    /// VirtualKeys: the public key id the gateway shows (never the key).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    pub observed_generation: Option<i64>,
    pub conditions: Vec<Condition>,
    /// Whether this differs from the object's current status, i.e. whether a status write is
    /// needed (writing only changes keeps 10,000 unchanged keys from costing 10,000 writes).
    pub changed: bool,
}

/// Builds every input object's status, keeping `lastTransitionTime` where a condition's status
/// did not change.
pub(crate) fn render(
    inputs: &Inputs,
    snapshot: &Snapshot,
    verdicts: &Verdicts,
    now: &Time,
) -> Vec<ObjectStatus> {
    let serving: HashSet<(&str, &str, &str)> = snapshot
        .providers
        .iter()
        .filter_map(|p| p.source())
        .chain(snapshot.routes.iter().filter_map(|r| r.source.as_ref()))
        .chain(snapshot.keys.iter().filter_map(|k| k.source.as_ref()))
        .chain(snapshot.policies.iter().filter_map(|p| p.source.as_ref()))
        .map(|o| (o.kind.as_str(), o.namespace.as_str(), o.name.as_str()))
        .collect();
    // Policies something serving binds; the gateways enforce those, and only those.
    let referenced: HashSet<&str> = snapshot
        .routes
        .iter()
        .flat_map(|r| &r.policies)
        .chain(snapshot.keys.iter().flat_map(|k| &k.policies))
        .map(String::as_str)
        .collect();
    let context = Context {
        snapshot,
        verdicts,
        serving: &serving,
        referenced: &referenced,
        now,
        fleet: inputs.fleet.as_ref(),
    };
    let mut statuses = Vec::new();
    for p in &inputs.providers {
        let current = p.status.as_ref().map(|s| (&s.conditions[..], s.observed_generation, None));
        statuses.push(context.status(Kind::LlmProvider, &p.metadata, current));
    }
    for r in &inputs.routes {
        let current = r.status.as_ref().map(|s| (&s.conditions[..], s.observed_generation, None));
        statuses.push(context.status(Kind::ModelRoute, &r.metadata, current));
    }
    for k in &inputs.keys {
        let current =
            k.status.as_ref().map(|s| (&s.conditions[..], s.observed_generation, s.key_id.as_deref()));
        statuses.push(context.status(Kind::VirtualKey, &k.metadata, current));
    }
    for p in &inputs.policies {
        let current = p.status.as_ref().map(|s| (&s.conditions[..], s.observed_generation, None));
        statuses.push(context.status(Kind::RateLimitPolicy, &p.metadata, current));
    }
    statuses.sort_by(|a, b| {
        let key = |s: &ObjectStatus| {
            (Kind::parse(&s.object.kind), s.object.namespace.clone(), s.object.name.clone())
        };
        key(a).cmp(&key(b))
    });
    statuses
}

struct Context<'a> {
    fleet: Option<&'a super::Fleet>,
    snapshot: &'a Snapshot,
    verdicts: &'a Verdicts,
    serving: &'a HashSet<(&'a str, &'a str, &'a str)>,
    /// Snapshot names of the policies a serving route or key references.
    referenced: &'a HashSet<&'a str>,
    now: &'a Time,
}

impl Context<'_> {
    fn status(
        &self,
        kind: Kind,
        meta: &ObjectMeta,
        current: Option<(&[Condition], Option<i64>, Option<&str>)>,
    ) -> ObjectStatus {
        let object = object_ref(kind, meta);
        let empty = Verdict::default();
        let key = (kind, object.namespace.clone(), object.name.clone());
        let verdict = self.verdicts.by_object.get(&key).unwrap_or(&empty);
        let serving =
            self.serving.contains(&(kind.as_str(), object.namespace.as_str(), object.name.as_str()));
        let generation = meta.generation;
        let at = |type_, status, reason, message: String| {
            condition(type_, status, reason, message, generation, self.now.clone())
        };

        let accepted = if !verdict.invalid.is_empty() {
            at(ConditionType::Accepted, Status::False, Reason::Invalid, verdict.invalid.join("; "))
        } else if let Some(conflict) = &verdict.conflict {
            at(ConditionType::Accepted, Status::False, Reason::Conflict, conflict.clone())
        } else {
            at(ConditionType::Accepted, Status::True, Reason::Accepted, "the spec is valid".into())
        };
        let resolved = match verdict.unresolved.first() {
            Some((reason, _)) => {
                let messages: Vec<&str> = verdict.unresolved.iter().map(|(_, m)| m.as_str()).collect();
                at(ConditionType::ResolvedRefs, Status::False, *reason, messages.join("; "))
            }
            None => at(
                ConditionType::ResolvedRefs,
                Status::True,
                Reason::ResolvedRefs,
                "every reference resolves".into(),
            ),
        };
        let generation_note = self.snapshot.generation;
        let unreferenced_policy = kind == Kind::RateLimitPolicy
            && !self.referenced.contains(super::qualified(&object.namespace, &object.name).as_str());
        let programmed = if serving && unreferenced_policy {
            // Sent to the gateways, but a policy limits only the requests of what binds it.
            at(
                ConditionType::Programmed,
                Status::False,
                Reason::NotEnforced,
                "no ModelRoute or VirtualKey references it".into(),
            )
        } else if serving {
            match self.fleet.and_then(|fleet| fleet.programmed(&object)) {
                Some((status, reason, message)) => at(ConditionType::Programmed, status, reason, message),
                None => at(
                    ConditionType::Programmed,
                    Status::Unknown,
                    Reason::Pending,
                    format!(
                        "in snapshot generation {generation_note}; waiting for the gateway replicas to apply it"
                    ),
                ),
            }
        } else {
            let (reason, why) = if !verdict.invalid.is_empty() {
                (Reason::Invalid, "the spec is invalid".to_owned())
            } else if verdict.conflict.is_some() {
                (Reason::Conflict, "another object already claims it".to_owned())
            } else if let Some(pending) = &verdict.pending {
                (Reason::Pending, pending.clone())
            } else if let Some((reason, message)) = verdict.unresolved.first() {
                (*reason, message.clone())
            } else {
                (Reason::Invalid, self.verdicts.document_errors.join("; "))
            };
            at(ConditionType::Programmed, Status::False, reason, format!("not served: {why}"))
        };

        let (existing, observed, key_id) = current.unwrap_or((&[], None, None));
        let mut conditions = existing.to_vec();
        // Our three conditions, in a fixed order; conditions others added stay after them.
        conditions.retain(|c| !ConditionType::ALL.iter().any(|t| t.as_str() == c.type_));
        let mut merged: Vec<Condition> = existing
            .iter()
            .filter(|c| ConditionType::ALL.iter().any(|t| t.as_str() == c.type_))
            .cloned()
            .collect();
        for new in [accepted, resolved, programmed] {
            set_condition(&mut merged, new);
        }
        merged.sort_by_key(|c| ConditionType::ALL.iter().position(|t| t.as_str() == c.type_));
        merged.extend(conditions);
        let new_key_id =
            (kind == Kind::VirtualKey).then(|| super::qualified(&object.namespace, &object.name));
        let changed = merged != existing || observed != generation || key_id != new_key_id.as_deref();
        ObjectStatus {
            object,
            key_id: new_key_id,
            observed_generation: generation,
            conditions: merged,
            changed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Kind, spec_path};

    #[test]
    fn contract_paths_map_to_object_fields() {
        let cases = [
            (Kind::LlmProvider, "base_url", "spec.baseURL"),
            (Kind::LlmProvider, "headers[2].value.secret", "spec.headers[2]"),
            (Kind::LlmProvider, "api_key.secret", "spec.apiKey"),
            (Kind::LlmProvider, "stream_usage", "spec.streamUsage"),
            (Kind::ModelRoute, "backends[1].provider", "spec.backends[1].providerRef"),
            (Kind::ModelRoute, "backends[0].weight", "spec.backends[0].weight"),
            (Kind::ModelRoute, "policies[0]", "spec.policyRefs[0]"),
            (Kind::VirtualKey, "hashes[1].expires_at", "spec.secretRef"),
            (Kind::RateLimitPolicy, "window_seconds", "spec.window"),
            (Kind::RateLimitPolicy, "input_tokens", "spec.limits.inputTokens"),
            (Kind::RateLimitPolicy, "daily_usd", "spec.limits.dailyUsd"),
            (Kind::RateLimitPolicy, "monthly_usd", "spec.limits.monthlyUsd"),
            (Kind::ModelRoute, "backends[2].price.cache_read", "spec.backends[2].price.cacheRead"),
            (Kind::VirtualKey, "budget.monthly_usd", "spec.budget.monthlyUsd"),
            (Kind::VirtualKey, "budget", "spec.budget"),
            (Kind::RateLimitPolicy, "", "spec"),
        ];
        for (kind, path, expected) in cases {
            assert_eq!(spec_path(kind, path), expected, "{kind:?} {path}");
        }
    }
}
