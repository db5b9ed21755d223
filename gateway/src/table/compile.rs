//! Snapshot → [`RoutingTable`]: the fallible half of a config swap.

use super::{Backend, Route, RoutingTable};
use crate::auth::KeyTable;
use crate::metrics::Metrics;
use crate::upstream::{HttpClient, Upstream};
use std::collections::HashMap;
use std::sync::Arc;
use switchboard_config::{ConfigError, ConfigErrors, Snapshot};

/// What compiling needs from the running process: the shared connection pool (kept across
/// reloads so warm upstream connections survive) and the metrics registry.
#[derive(Clone)]
pub struct CompileContext {
    pub client: HttpClient,
    pub metrics: Arc<Metrics>,
}

/// Builds a routing table. Fails, with field paths, when something the validator cannot see is
/// wrong (an unset environment variable, an unreadable credential file).
pub fn compile(snapshot: &Snapshot, hash: &str, ctx: &CompileContext) -> Result<RoutingTable, ConfigErrors> {
    snapshot.validate()?;
    if !snapshot.limits.is_empty() {
        // Limits are part of the contract already so the operator can carry them, but this
        // gateway version does not enforce them yet: refusing beats silently not limiting.
        return Err(ConfigErrors::single(
            "limits",
            "rate limits are not enforced by this gateway version yet; remove them or upgrade the gateway",
        ));
    }
    let mut errors = Vec::new();
    let mut upstreams = Vec::with_capacity(snapshot.providers.len());
    let mut upstream_index = HashMap::new();
    for (i, provider) in snapshot.providers.iter().enumerate() {
        match Upstream::compile(provider, &ctx.client) {
            Ok(upstream) => {
                upstream_index.insert(provider.name(), upstreams.len());
                upstreams.push(upstream);
            }
            Err(err) => {
                errors.push(ConfigError { path: format!("providers[{i}].{}", err.path), reason: err.reason })
            }
        }
    }
    if !errors.is_empty() {
        return Err(ConfigErrors(errors));
    }

    let mut routes = Vec::with_capacity(snapshot.routes.len());
    let mut route_index = HashMap::with_capacity(snapshot.routes.len());
    for (index, route) in snapshot.routes.iter().enumerate() {
        let backends = route
            .backends
            .iter()
            .filter_map(|b| {
                let upstream = *upstream_index.get(b.provider.as_str())?;
                let model = Arc::from(b.model.as_deref().unwrap_or(&route.model));
                let metrics = ctx.metrics.provider(&b.provider);
                Some((b.priority, b.weight, Backend::new(upstream, model, &b.provider, metrics)))
            })
            .collect();
        let compiled = Route::new(&route.model, index, ctx.metrics.route(&route.model), backends);
        route_index.insert(compiled.model.clone(), index);
        routes.push(compiled);
    }
    let keys = KeyTable::compile(&snapshot.keys, &|m| route_index.get(m).copied(), routes.len());
    Ok(RoutingTable {
        generation: snapshot.generation,
        hash: hash.to_owned(),
        routes,
        route_index,
        keys,
        upstreams,
        created_unix: crate::unix_now(),
        credential_files: snapshot.credential_files().into_iter().map(str::to_owned).collect(),
    })
}
