//! Tokens and cost by key, team, route and provider: the series a platform team bills from.
//!
//! A series is created the first time its label set settles a request and kept until the
//! process ends or its key or route leaves the config (label sets are bounded by config: keys ×
//! the routes each uses × their providers). `--no-key-metrics` drops the key label for fleets
//! with tens of thousands of keys. Requests only reach this after their last byte (settlement),
//! so the lookup, a hash of four names into a sharded copy-on-write map, is off the hot path.

use arc_swap::ArcSwap;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use switchboard_config::counters::NANO_USD_PER_USD;
use switchboard_llm::Usage;

/// Who used the tokens.
#[derive(Debug, Clone, Default)]
pub struct Labels {
    pub key: Option<Arc<str>>,
    pub team: Option<Arc<str>>,
    pub route: Arc<str>,
    pub provider: Arc<str>,
}

#[derive(Default)]
struct Series {
    labels: Labels,
    input: Counter,
    output: Counter,
    cache_read: Counter,
    cache_write: Counter,
    /// Nano-dollars: integer adds, exact; a float only when written.
    cost_nano_usd: Counter,
}

const SHARDS: usize = 16;

pub struct SpendMetrics {
    shards: [ArcSwap<HashMap<u64, Arc<Series>>>; SHARDS],
    with_key: bool,
}

impl SpendMetrics {
    pub fn new(with_key: bool) -> Self {
        SpendMetrics { shards: std::array::from_fn(|_| ArcSwap::default()), with_key }
    }

    /// Adds one request's usage and cost.
    pub fn record(&self, labels: &Labels, usage: &Usage, cost_nano_usd: u64) {
        let key = if self.with_key { labels.key.as_deref() } else { None };
        let mut hasher = std::hash::DefaultHasher::new();
        (key, labels.team.as_deref(), &*labels.route, &*labels.provider).hash(&mut hasher);
        let id = hasher.finish();
        let shard = &self.shards[(id % SHARDS as u64) as usize];
        let series = match shard.load().get(&id) {
            Some(series) => series.clone(),
            None => {
                let mut found = None;
                shard.rcu(|map| {
                    let mut map = HashMap::clone(map);
                    let series = map.entry(id).or_insert_with(|| {
                        let mut labels = labels.clone();
                        if !self.with_key {
                            labels.key = None;
                        }
                        Arc::new(Series { labels, ..Series::default() })
                    });
                    found = Some(series.clone());
                    map
                });
                found.unwrap_or_default()
            }
        };
        for (counter, value) in [
            (&series.input, usage.input),
            (&series.output, usage.output),
            (&series.cache_read, usage.cache_read),
            (&series.cache_write, usage.cache_write),
            (&series.cost_nano_usd, cost_nano_usd),
        ] {
            if value > 0 {
                counter.inc_by(value);
            }
        }
    }

    /// Drops the series of keys and routes the served config no longer has.
    pub fn retain(&self, keys: &HashSet<&str>, routes: &HashSet<&str>) {
        for shard in &self.shards {
            let stale = shard.load().values().any(|s| !keep(s, keys, routes));
            if stale {
                shard.rcu(|map| {
                    let mut map = HashMap::clone(map);
                    map.retain(|_, series| keep(series, keys, routes));
                    map
                });
            }
        }
    }

    /// Writes `switchboard_tokens_total` and `switchboard_cost_usd_total`.
    pub fn encode(&self, encoder: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut all: Vec<Arc<Series>> =
            self.shards.iter().flat_map(|s| s.load().values().cloned().collect::<Vec<_>>()).collect();
        all.sort_by(|a, b| label_order(&a.labels).cmp(&label_order(&b.labels)));
        let mut family = encoder.encode_descriptor(
            "switchboard_tokens",
            "Tokens by route, provider, team and key; type input counts every prompt token (cache_read and cache_write are parts of it), output every generated one. Streams cut short count what was relayed.",
            None,
            MetricType::Counter,
        )?;
        for series in &all {
            for (kind, counter) in [
                ("input", &series.input),
                ("output", &series.output),
                ("cache_read", &series.cache_read),
                ("cache_write", &series.cache_write),
            ] {
                let mut labels = label_set(&series.labels);
                labels.push(("type", kind));
                counter.encode(family.encode_family(&labels)?)?;
            }
        }
        let mut family = encoder.encode_descriptor(
            "switchboard_cost_usd",
            "Spend in US dollars from exact usage and the serving backend's prices.",
            None,
            MetricType::Counter,
        )?;
        for series in &all {
            let dollars = series.cost_nano_usd.get() as f64 / NANO_USD_PER_USD as f64;
            ConstCounter::new(dollars).encode(family.encode_family(&label_set(&series.labels))?)?;
        }
        Ok(())
    }
}

fn keep(series: &Series, keys: &HashSet<&str>, routes: &HashSet<&str>) -> bool {
    routes.contains(&*series.labels.route) && series.labels.key.as_deref().is_none_or(|k| keys.contains(k))
}

/// The series' labels in exposition order: route, provider, team, and the key when kept.
fn label_set(labels: &Labels) -> Vec<(&'static str, &str)> {
    let mut set = vec![
        ("route", &*labels.route),
        ("provider", &*labels.provider),
        ("team", labels.team.as_deref().unwrap_or("")),
    ];
    if let Some(key) = &labels.key {
        set.push(("key", key));
    }
    set
}

fn label_order(labels: &Labels) -> (&str, &str, &str, &str) {
    (
        &labels.route,
        &labels.provider,
        labels.team.as_deref().unwrap_or(""),
        labels.key.as_deref().unwrap_or(""),
    )
}
