//! Admission, shared by every API: the model's route, whether the key may use it, and the
//! reservation every policy of the key and the route charges (or refuses).

use crate::Gateway;
use crate::auth::Key;
use crate::error::GatewayError;
use crate::inbound::Inbound;
use crate::ledger::Ledger;
use crate::limits::policy::Demand;
use crate::limits::{Caller, Headroom, estimate};
use crate::table::{Route, RoutingTable};

/// A request let in: the route that serves it and what its limits have left (for the
/// `x-ratelimit-*` headers).
pub struct Admitted<'t> {
    pub route: &'t Route,
    pub headroom: Vec<Headroom>,
}

/// Routes `request` for `key` and charges its reservation; `body_bytes` is the body's size (the
/// estimate of last resort).
pub async fn admit<'t>(
    gateway: &Gateway,
    table: &'t RoutingTable,
    key: &Key,
    request: &Inbound<'_>,
    body_bytes: usize,
    ledger: &mut Ledger,
) -> Result<Admitted<'t>, GatewayError> {
    let model = request.model();
    let route = table.route(model).ok_or_else(|| GatewayError::UnknownModel { model: model.to_owned() })?;
    ledger.set_route(&route.model, route.metrics.clone());
    if !key.may_use(route.index) {
        return Err(GatewayError::ModelNotAllowed { model: model.to_owned() });
    }

    let policies = || key.policies.iter().chain(route.policies.iter());
    if policies().next().is_none() {
        ledger.set_prompt_estimate(estimate::fallback(body_bytes));
        return Ok(Admitted { route, headroom: Vec::new() });
    }
    let counts_cost = policies().any(|p| p.counts_cost());
    let (input, output) = if counts_cost || policies().any(|p| p.counts_tokens()) {
        request.demand(body_bytes, route.default_max_tokens)
    } else {
        (estimate::fallback(body_bytes), 0)
    };
    let reserved_usage = switchboard_llm::Usage { input, output, ..Default::default() };
    let cost_nano_usd = if counts_cost { route.reserve_price.cost_nano_usd(&reserved_usage) } else { 0 };
    let demand = Demand { requests: 1, input, output, cost_nano_usd };
    let caller = Caller { key: &key.id, team: key.team.as_deref(), route: &route.model };
    let admitted = gateway
        .limits
        .admit(policies(), caller, demand, crate::unix_now_ms())
        .await
        .map_err(GatewayError::Limited)?;
    ledger.hold(&gateway.limits, admitted.charges, demand);
    ledger.set_prompt_estimate(input);
    Ok(Admitted { route, headroom: admitted.headroom })
}
