//! ModelRoute and RateLimitPolicy → snapshot routes and policies.

use super::status::{Kind, Verdicts};
use super::{Existing, age_order, namespace, object_ref, qualified, resolve_policies};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use switchboard_config::{
    BackendConfig, Balancing, CapabilitiesConfig, FailureMode, PolicyConfig, PolicyMode, PolicyScope,
    PriceConfig, RetryConfig, RouteConfig, RouteTimeouts, Snapshot, parse_usd,
};
use switchboard_crds::condition::Reason;
use switchboard_crds::model_route::{self as crd_route, ModelRoute, Price};
use switchboard_crds::rate_limit_policy::{self as crd, RateLimitPolicy};

pub(super) fn compile_policies(
    policies: &[Arc<RateLimitPolicy>],
    snapshot: &mut Snapshot,
    verdicts: &mut Verdicts,
) {
    for policy in age_order(policies, |p| &p.metadata) {
        let meta = &policy.metadata;
        let spec = &policy.spec;
        let mut problems = Vec::new();
        let window_seconds = match &spec.window {
            None => None,
            Some(window) => match window.parse() {
                Ok(window) if window.subsec_millis() == 0 && window.as_secs() > 0 => Some(window.as_secs()),
                Ok(_) => {
                    problems
                        .push(("spec.window", "must be a whole number of seconds, at least 1s".to_owned()));
                    None
                }
                Err(err) => {
                    problems.push(("spec.window", err.to_string()));
                    None
                }
            },
        };
        let mut count = |field: &'static str, value: Option<i64>| match value {
            None => None,
            Some(n) if n >= 1 => Some(n as u64),
            Some(_) => {
                problems.push((field, "must be at least 1".to_owned()));
                None
            }
        };
        let limits = &spec.limits;
        let config = PolicyConfig {
            name: qualified(namespace(meta), meta.name.as_deref().unwrap_or_default()),
            scope: match spec.scope {
                crd::Scope::Key => PolicyScope::Key,
                crd::Scope::Team => PolicyScope::Team,
                crd::Scope::Route => PolicyScope::Route,
                crd::Scope::KeyRoute => PolicyScope::KeyRoute,
            },
            window_seconds,
            requests: count("spec.limits.requests", limits.requests),
            input_tokens: count("spec.limits.inputTokens", limits.input_tokens),
            output_tokens: count("spec.limits.outputTokens", limits.output_tokens),
            total_tokens: count("spec.limits.totalTokens", limits.total_tokens),
            concurrent_requests: count("spec.limits.concurrentRequests", limits.concurrent_requests),
            usd: limits.usd.clone(),
            // Amounts are checked by the contract (`Snapshot::accept`), which reports them at
            // `spec.limits.dailyUsd` and `spec.limits.monthlyUsd` (`status::spec_path`).
            daily_usd: limits.daily_usd.clone(),
            monthly_usd: limits.monthly_usd.clone(),
            mode: match spec.mode {
                crd::Mode::Local => PolicyMode::Local,
                crd::Mode::Redis => PolicyMode::Redis,
            },
            failure_mode: match spec.failure_mode {
                crd::FailureMode::Open => FailureMode::Open,
                crd::FailureMode::Closed => FailureMode::Closed,
            },
            source: Some(object_ref(Kind::RateLimitPolicy, meta)),
        };
        for (path, reason) in &problems {
            verdicts.invalid(Kind::RateLimitPolicy, meta, path, reason);
        }
        if problems.is_empty() {
            snapshot.policies.push(config);
        }
    }
}

/// Compiles routes onto the providers and policies already in `snapshot` (those that serve);
/// `existing` tells a reference to a missing object from one to an object that does not serve.
pub(super) fn compile_routes(
    routes: &[Arc<ModelRoute>],
    existing: &Existing,
    snapshot: &mut Snapshot,
    verdicts: &mut Verdicts,
) {
    let serving_providers: HashSet<String> = snapshot.providers.iter().map(|p| p.name().to_owned()).collect();
    let serving_policies: HashSet<String> = snapshot.policies.iter().map(|p| p.name.clone()).collect();
    let mut claimed: HashMap<String, String> = HashMap::new();
    for route in age_order(routes, |r| &r.metadata) {
        let meta = &route.metadata;
        let ns = namespace(meta);
        let this = qualified(ns, meta.name.as_deref().unwrap_or_default());
        let spec = &route.spec;

        let mut problems: Vec<(String, String)> = Vec::new();
        let mut backends = Vec::new();
        let mut unresolved = Vec::new();
        for (i, backend) in spec.backends.iter().enumerate() {
            let weight = u32::try_from(backend.weight).ok().filter(|w| (1..=10_000).contains(w));
            let priority = u32::try_from(backend.priority).ok();
            if weight.is_none() {
                problems.push((format!("spec.backends[{i}].weight"), "must be between 1 and 10000".into()));
            }
            if priority.is_none() {
                problems.push((format!("spec.backends[{i}].priority"), "must not be negative".into()));
            }
            let price = backend.price.as_ref().map(|price| compile_price(i, price, &mut problems));
            let provider = qualified(ns, &backend.provider_ref.name);
            if !serving_providers.contains(&provider) {
                unresolved.push(existing.describe("LLMProvider", &provider));
                continue;
            }
            let capabilities = backend.capabilities.as_ref().map(|c| CapabilitiesConfig {
                streaming: c.streaming,
                tools: c.tools,
                vision: c.vision,
                json_mode: c.json_mode,
                embeddings: c.embeddings,
                // The schema keeps it positive; anything else is left to the contract's check.
                context_length: c.context_length.map(|n| u32::try_from(n).unwrap_or(0)),
            });
            if let (Some(weight), Some(priority)) = (weight, priority) {
                let model = backend.model.clone();
                backends.push(BackendConfig { provider, model, weight, priority, capabilities, price });
            }
        }
        for (path, reason) in &problems {
            verdicts.invalid(Kind::ModelRoute, meta, path, reason);
        }
        if !problems.is_empty() {
            continue;
        }
        // The older route keeps the name, as Gateway API resolves conflicting routes. Only an
        // accepted route claims a name, so an invalid old route cannot block a valid new one.
        if let Some(owner) = claimed.get(&spec.model) {
            let message = format!("model {:?} is already served by the older ModelRoute {owner}", spec.model);
            verdicts.conflict(Kind::ModelRoute, meta, message);
            continue;
        }
        claimed.insert(spec.model.clone(), this);

        let (policies, missing) =
            resolve_policies(&spec.policy_refs, ns, &serving_policies, existing, "route");
        let missing_policy = !missing.is_empty();
        unresolved.extend(missing);
        if !unresolved.is_empty() {
            verdicts.unresolved(Kind::ModelRoute, meta, Reason::RefNotFound, unresolved.join("; "));
        }
        if backends.is_empty() || missing_policy {
            continue;
        }
        snapshot.routes.push(RouteConfig {
            model: spec.model.clone(),
            backends,
            policies,
            // The schema keeps it positive; a negative one (schema bypassed) becomes 0, which
            // the contract refuses by name.
            default_max_tokens: spec.default_max_tokens.map(|n| u32::try_from(n).unwrap_or(0)),
            balancing: match spec.balancing.unwrap_or_default() {
                crd_route::Balancing::Weighted => Balancing::Weighted,
                crd_route::Balancing::Latency => Balancing::Latency,
            },
            retries: spec.retries.map(|r| {
                // The schema bounds each value; one out of range (schema bypassed) becomes one
                // the contract refuses by name.
                let defaults = RetryConfig::default();
                RetryConfig {
                    max_attempts: r.max_attempts.map(|n| u32::try_from(n).unwrap_or(0)),
                    budget_percent: r
                        .budget_percent
                        .map_or(defaults.budget_percent, |n| u32::try_from(n).unwrap_or(u32::MAX)),
                    min_per_second: r
                        .min_per_second
                        .map_or(defaults.min_per_second, |n| u32::try_from(n).unwrap_or(u32::MAX)),
                }
            }),
            timeouts: spec.timeouts.map(|t| {
                let ms = |value: Option<i64>| value.map(|n| u64::try_from(n).unwrap_or(0));
                RouteTimeouts {
                    first_byte_ms: ms(t.first_byte_ms),
                    idle_ms: ms(t.idle_ms),
                    total_ms: ms(t.total_ms),
                }
            }),
            source: Some(object_ref(Kind::ModelRoute, meta)),
        });
    }
}

/// A backend's price, its amounts checked here rather than left to the contract: the snapshot
/// drops backends whose provider does not resolve, so a contract path `backends[1]` need not be
/// `spec.backends[1]`, and a price problem must name the field the user wrote.
fn compile_price(backend: usize, price: &Price, problems: &mut Vec<(String, String)>) -> PriceConfig {
    let Price { input, output, cache_read, cache_write } = price;
    for (field, amount) in
        [("input", input), ("output", output), ("cacheRead", cache_read), ("cacheWrite", cache_write)]
    {
        // Zero is a price (a free model): only the form is checked, as the contract does.
        if let Some(Err(reason)) = amount.as_deref().map(parse_usd) {
            problems.push((format!("spec.backends[{backend}].price.{field}"), reason));
        }
    }
    PriceConfig {
        input: input.clone(),
        output: output.clone(),
        cache_read: cache_read.clone(),
        cache_write: cache_write.clone(),
    }
}
