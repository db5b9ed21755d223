//! The checks of `routes`: names, backends and their references, prices, retries and time limits.

use super::{Collector, check_policy_refs, check_time_limits, validate_name, validate_price};
use crate::error::Section;
use std::collections::{HashMap, HashSet};

/// Checks every route; returns the names of those that may be referenced.
pub(super) fn validate_routes<'a>(
    errs: &mut Collector<'a>,
    providers: &HashSet<&str>,
    policies: &HashSet<&str>,
) -> HashSet<&'a str> {
    let snapshot = errs.snapshot;
    let mut seen = HashMap::new();
    for (i, route) in snapshot.routes.iter().enumerate() {
        validate_name(
            errs,
            Some((Section::Routes, i)),
            format!("routes[{i}].model"),
            &route.model,
            "model name",
        );
        if route.default_max_tokens == Some(0) {
            errs.entry(
                Section::Routes,
                i,
                format!("routes[{i}].default_max_tokens"),
                "must be greater than 0",
            );
        }
        validate_resilience(errs, i, route);
        if let Some(first) = seen.get(route.model.as_str()) {
            errs.entry(
                Section::Routes,
                i,
                format!("routes[{i}].model"),
                format!("duplicate route {:?} (also routes[{first}])", route.model),
            );
            continue;
        }
        seen.insert(route.model.as_str(), i);
        if route.backends.is_empty() {
            errs.entry(Section::Routes, i, format!("routes[{i}].backends"), "must list at least one backend");
        }
        for (b, backend) in route.backends.iter().enumerate() {
            let path = format!("routes[{i}].backends[{b}]");
            if !providers.contains(backend.provider.as_str()) {
                let reason = errs.missing(Section::Providers, "provider", &backend.provider);
                errs.entry(Section::Routes, i, format!("{path}.provider"), reason);
            }
            if let Some(model) = &backend.model {
                validate_name(
                    errs,
                    Some((Section::Routes, i)),
                    format!("{path}.model"),
                    model,
                    "upstream model id",
                );
            }
            if backend.weight == 0 {
                errs.entry(
                    Section::Routes,
                    i,
                    format!("{path}.weight"),
                    "must be at least 1 (remove the backend to stop sending it traffic)",
                );
            } else if backend.weight > 10_000 {
                errs.entry(Section::Routes, i, format!("{path}.weight"), "must be at most 10000");
            }
            if backend.capabilities.as_ref().is_some_and(|c| c.context_length == Some(0)) {
                errs.entry(
                    Section::Routes,
                    i,
                    format!("{path}.capabilities.context_length"),
                    "must be at least 1 (leave it out when the context window is not known)",
                );
            }
            if let Some(price) = &backend.price {
                validate_price(errs, i, &path, price);
            }
        }
        check_policy_refs(errs, Section::Routes, i, &route.policies, policies);
    }
    seen.into_keys().collect()
}

/// A route's retries and time limits.
fn validate_resilience(errs: &mut Collector<'_>, i: usize, route: &crate::RouteConfig) {
    if let Some(retries) = &route.retries {
        if retries.max_attempts.is_some_and(|n| !(1..=10).contains(&n)) {
            errs.entry(
                Section::Routes,
                i,
                format!("routes[{i}].retries.max_attempts"),
                "must be from 1 to 10",
            );
        }
        if retries.budget_percent > 100 {
            errs.entry(
                Section::Routes,
                i,
                format!("routes[{i}].retries.budget_percent"),
                "must be at most 100",
            );
        }
        if retries.min_per_second > 1000 {
            errs.entry(
                Section::Routes,
                i,
                format!("routes[{i}].retries.min_per_second"),
                "must be at most 1000",
            );
        }
    }
    if let Some(timeouts) = &route.timeouts {
        let limits = [
            ("first_byte_ms", timeouts.first_byte_ms),
            ("idle_ms", timeouts.idle_ms),
            ("total_ms", timeouts.total_ms),
        ];
        check_time_limits(errs, Section::Routes, i, &format!("routes[{i}].timeouts"), limits);
    }
}
