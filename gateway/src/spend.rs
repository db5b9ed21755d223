//! Tokens and cost by key, team, route and provider: the series a platform team bills from.
//!
//! A series is created the first time its label set settles a request and kept until the
//! process ends or its key or route leaves the config (label sets are bounded by config: keys ×
//! the routes each uses × their providers). `--no-key-metrics` drops the key label for fleets
//! with tens of thousands of keys. Requests only reach this after their last byte (settlement),
//! so the lookup, a hash of four names into a sharded copy-on-write map, is off the hot path.

use arc_swap::ArcSwap;
use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
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
    input: AtomicU64,
    output: AtomicU64,
    cache_read: AtomicU64,
    cache_write: AtomicU64,
    cost_nano_usd: AtomicU64,
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
                counter.fetch_add(value, Relaxed);
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

    pub fn render(&self, out: &mut String) {
        let mut all: Vec<Arc<Series>> =
            self.shards.iter().flat_map(|s| s.load().values().cloned().collect::<Vec<_>>()).collect();
        all.sort_by_cached_key(|series| label_text(&series.labels));
        let _ = writeln!(
            out,
            "# HELP switchboard_tokens_total Tokens by route, provider, team and key; type input counts every prompt token (cache_read and cache_write are parts of it), output every generated one. Streams cut short count what was relayed.\n# TYPE switchboard_tokens_total counter"
        );
        for series in &all {
            let labels = label_text(&series.labels);
            for (kind, counter) in [
                ("input", &series.input),
                ("output", &series.output),
                ("cache_read", &series.cache_read),
                ("cache_write", &series.cache_write),
            ] {
                let _ = writeln!(
                    out,
                    "switchboard_tokens_total{{{labels},type=\"{kind}\"}} {}",
                    counter.load(Relaxed)
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP switchboard_cost_usd_total Spend in US dollars from exact usage and the serving backend's prices.\n# TYPE switchboard_cost_usd_total counter"
        );
        for series in &all {
            let nano = series.cost_nano_usd.load(Relaxed);
            let dollars = nano / NANO_USD_PER_USD;
            let fraction = nano % NANO_USD_PER_USD;
            let _ = writeln!(
                out,
                "switchboard_cost_usd_total{{{}}} {dollars}.{fraction:09}",
                label_text(&series.labels)
            );
        }
    }
}

fn keep(series: &Series, keys: &HashSet<&str>, routes: &HashSet<&str>) -> bool {
    routes.contains(&*series.labels.route) && series.labels.key.as_deref().is_none_or(|k| keys.contains(k))
}

fn label_text(labels: &Labels) -> String {
    let mut text = format!(
        "route=\"{}\",provider=\"{}\",team=\"{}\"",
        crate::metrics::escape(&labels.route),
        crate::metrics::escape(&labels.provider),
        crate::metrics::escape(labels.team.as_deref().unwrap_or(""))
    );
    if let Some(key) = &labels.key {
        let _ = write!(text, ",key=\"{}\"", crate::metrics::escape(key));
    }
    text
}
