//! Snapshot → [`RoutingTable`]: the fallible half of a config swap.

use super::state::{BackendState, UsedState};
use super::{Backend, RetryRule, Route, RoutingTable};
use crate::auth::KeyTable;
use crate::limits::policy::{Policy, Price};
use crate::metrics::Metrics;
use crate::telemetry::BackendAttributes;
use crate::upstream::{HttpClients, Upstream};
use std::collections::HashMap;
use std::sync::Arc;
use switchboard_config::{
    Accepted, CapabilitiesConfig, ConfigError, ConfigErrors, Origin, PolicyMode, Snapshot,
};
use switchboard_llm::capability::Capabilities;

/// What compiling needs from the running process: the shared connection pools (kept across
/// reloads so warm upstream connections survive), the metrics registry and the backend state
/// that outlives tables.
#[derive(Clone)]
pub struct CompileContext {
    pub clients: HttpClients,
    pub metrics: Arc<Metrics>,
    pub state: Arc<BackendState>,
}

impl CompileContext {
    pub fn new(metrics: Arc<Metrics>) -> Self {
        CompileContext { clients: HttpClients::new(), metrics, state: Arc::default() }
    }
}

/// Builds a routing table from a snapshot that passed `validate(origin)` (checked again here:
/// compiling an unchecked snapshot is a bug, not a reason to crash). After validation the only
/// thing that can fail is reading a file's `env` or `file` credentials.
pub fn compile(
    snapshot: &Snapshot,
    origin: Origin,
    hash: &str,
    ctx: &CompileContext,
) -> Result<RoutingTable, ConfigErrors> {
    snapshot.validate(origin)?;
    compile_valid(snapshot, origin, hash, ctx)
}

/// Builds the table of a pushed snapshot that [`Snapshot::accept`] returned: accepting it
/// validated what it kept, so it is not validated a second time (a 10,000-key snapshot per push
/// on every replica).
pub fn compile_accepted(
    accepted: &Accepted,
    hash: &str,
    ctx: &CompileContext,
) -> Result<RoutingTable, ConfigErrors> {
    compile_valid(&accepted.snapshot, Origin::Pushed, hash, ctx)
}

fn compile_valid(
    snapshot: &Snapshot,
    origin: Origin,
    hash: &str,
    ctx: &CompileContext,
) -> Result<RoutingTable, ConfigErrors> {
    let mut errors = Vec::new();
    let mut upstreams = Vec::with_capacity(snapshot.providers.len());
    let mut upstream_index = HashMap::new();
    for (i, provider) in snapshot.providers.iter().enumerate() {
        match Upstream::compile(provider, origin, &snapshot.secrets, &ctx.clients) {
            Ok(upstream) => {
                upstream_index.insert(provider.name(), (upstreams.len(), provider));
                upstreams.push(upstream);
            }
            Err(err) => errors.push(ConfigError {
                path: format!("providers[{i}].{}", err.path),
                reason: err.reason,
                object: provider.source().cloned(),
                entry: None,
            }),
        }
    }
    if !errors.is_empty() {
        return Err(ConfigErrors(errors));
    }

    let policies: HashMap<&str, Arc<Policy>> =
        snapshot.policies.iter().map(|p| (p.name.as_str(), Arc::new(Policy::from_config(p)))).collect();
    let policy = |name: &str| policies.get(name).cloned();
    let mut used = UsedState::default();
    let mut routes = Vec::with_capacity(snapshot.routes.len());
    let mut route_index = HashMap::with_capacity(snapshot.routes.len());
    for (index, route) in snapshot.routes.iter().enumerate() {
        let route_metrics = ctx.metrics.route(&route.model);
        let backends = route
            .backends
            .iter()
            .filter_map(|b| {
                let &(upstream, provider) = upstream_index.get(b.provider.as_str())?;
                let model = b.model.as_deref().unwrap_or(&route.model);
                used.health(&b.provider, model);
                let health = ctx.state.health(&b.provider, model);
                let metrics = ctx.metrics.provider(&b.provider);
                let capabilities = narrowed(upstreams[upstream].capabilities(), b.capabilities.as_ref());
                let mut backend =
                    Backend::new(upstream, Arc::from(model), &b.provider, metrics, health, capabilities);
                backend.price = b.price.as_ref().map(Price::from_config);
                backend.stream_metrics = route_metrics.stream(&b.provider);
                backend.span_attributes = BackendAttributes::new(provider, model);
                Some((b.priority, b.weight, backend))
            })
            .collect();
        let mut cursor = |priority| {
            used.cursor(&route.model, priority);
            ctx.state.cursor(&route.model, priority)
        };
        let mut compiled = Route::new(&route.model, index, route_metrics, backends, &mut cursor)
            .with_balancing(route.balancing);
        compiled.default_max_tokens = route.default_max_tokens;
        compiled.retry = RetryRule::from_config(route.retries.as_ref(), route.backends.len());
        used.retry_budget(&route.model);
        compiled.retry_budget = ctx.state.retry_budget(&route.model);
        compiled.timeouts = route.timeouts.unwrap_or_default();
        compiled.policies = route.policies.iter().filter_map(|name| policy(name)).collect();
        route_index.insert(compiled.model.clone(), index);
        routes.push(compiled);
    }
    let keys = KeyTable::compile(&snapshot.keys, &|m| route_index.get(m).copied(), &policy);
    Ok(RoutingTable {
        generation: snapshot.generation,
        hash: hash.to_owned(),
        routes,
        route_index,
        keys,
        upstreams,
        policies: snapshot.policies.len() + snapshot.keys.iter().filter(|k| k.budget.is_some()).count(),
        redis_policies: snapshot.policies.iter().filter(|p| p.mode == PolicyMode::Redis).count()
            + snapshot
                .keys
                .iter()
                .filter(|k| k.budget.as_ref().is_some_and(|b| b.mode == PolicyMode::Redis))
                .count(),
        created_unix: crate::unix_now(),
        credential_files: snapshot.credential_files().into_iter().map(str::to_owned).collect(),
        used_state: used,
    })
}

/// A provider type's capabilities narrowed by a backend's config: config can take away what the
/// type has, never add what its API lacks.
fn narrowed(base: Capabilities, config: Option<&CapabilitiesConfig>) -> Capabilities {
    let Some(config) = config else { return base };
    let and = |has: bool, configured: Option<bool>| has && configured.unwrap_or(true);
    Capabilities {
        streaming: and(base.streaming, config.streaming),
        tools: and(base.tools, config.tools),
        vision: and(base.vision, config.vision),
        json_mode: and(base.json_mode, config.json_mode),
        embeddings: and(base.embeddings, config.embeddings),
        context_length: match (base.context_length, config.context_length) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        },
    }
}
