//! Checks for rate-limit policies, key budgets and backend prices: the numbers limits, budgets
//! and cost are computed from.

use super::{Collector, validate_name};
use crate::error::Section;
use crate::{BudgetConfig, PolicyConfig, PriceConfig, parse_usd};
use std::collections::{HashMap, HashSet};

pub(super) fn validate_policies<'a>(errs: &mut Collector<'a>) -> HashSet<&'a str> {
    let snapshot = errs.snapshot;
    let mut seen = HashMap::new();
    for (i, policy) in snapshot.policies.iter().enumerate() {
        validate_name(
            errs,
            Some((Section::Policies, i)),
            format!("policies[{i}].name"),
            &policy.name,
            "policy name",
        );
        if let Some(first) = seen.get(policy.name.as_str()) {
            errs.entry(
                Section::Policies,
                i,
                format!("policies[{i}].name"),
                format!("duplicate policy {:?} (also policies[{first}])", policy.name),
            );
            continue;
        }
        seen.insert(policy.name.as_str(), i);
        validate_policy(errs, i, policy);
    }
    seen.into_keys().collect()
}

fn validate_policy(errs: &mut Collector<'_>, i: usize, policy: &PolicyConfig) {
    let mut problem = |field: &str, reason: &str| {
        let path = if field.is_empty() { format!("policies[{i}]") } else { format!("policies[{i}].{field}") };
        errs.entry(Section::Policies, i, path, reason);
    };
    let counts = [
        ("requests", policy.requests),
        ("input_tokens", policy.input_tokens),
        ("output_tokens", policy.output_tokens),
        ("total_tokens", policy.total_tokens),
        ("concurrent_requests", policy.concurrent_requests),
    ];
    for (field, value) in counts {
        if value == Some(0) {
            problem(field, "must be at least 1 (remove the limit to lift it)");
        }
    }
    for (field, amount) in
        [("usd", &policy.usd), ("daily_usd", &policy.daily_usd), ("monthly_usd", &policy.monthly_usd)]
    {
        if let Some(reason) = amount.as_deref().and_then(positive_usd_problem) {
            problem(field, &reason);
        }
    }
    if !policy.has_windowed_limit() && !policy.has_budget() && policy.concurrent_requests.is_none() {
        problem(
            "",
            "sets no limit: set requests, input_tokens, output_tokens, total_tokens, usd, daily_usd, \
             monthly_usd or concurrent_requests",
        );
    }
    match policy.window_seconds {
        None if policy.has_windowed_limit() => {
            problem("window_seconds", "is required for requests, token and usd limits")
        }
        Some(window) if window == 0 || window > 31 * 86_400 => {
            problem("window_seconds", "must be between 1 and 2678400 (31 days)")
        }
        _ => {}
    }
}

pub(super) fn validate_budget(errs: &mut Collector<'_>, i: usize, budget: &BudgetConfig) {
    if budget.daily_usd.is_none() && budget.monthly_usd.is_none() {
        errs.entry(Section::Keys, i, format!("keys[{i}].budget"), "set daily_usd, monthly_usd or both");
    }
    for (field, amount) in [("daily_usd", &budget.daily_usd), ("monthly_usd", &budget.monthly_usd)] {
        if let Some(reason) = amount.as_deref().and_then(positive_usd_problem) {
            errs.entry(Section::Keys, i, format!("keys[{i}].budget.{field}"), reason);
        }
    }
}

/// `backend` is the backend's path, `routes[i].backends[b]`.
pub(super) fn validate_price(errs: &mut Collector<'_>, i: usize, backend: &str, price: &PriceConfig) {
    let PriceConfig { input, output, cache_read, cache_write } = price;
    for (field, amount) in
        [("input", input), ("output", output), ("cache_read", cache_read), ("cache_write", cache_write)]
    {
        // Zero is a price (a free model); only the form is checked.
        if let Some(Err(reason)) = amount.as_deref().map(parse_usd) {
            errs.entry(Section::Routes, i, format!("{backend}.price.{field}"), reason);
        }
    }
}

/// Why an amount that must be positive is not one.
fn positive_usd_problem(amount: &str) -> Option<String> {
    match parse_usd(amount) {
        Ok(0) => Some("must be more than 0".to_owned()),
        Ok(_) => None,
        Err(reason) => Some(reason),
    }
}
