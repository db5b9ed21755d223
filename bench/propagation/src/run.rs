//! One run: start everything, load the keys, time the changes one at a time.

use crate::args::Args;
use crate::change::{Expect, Served, probe, wait_all};
use crate::cluster::{Api, key_value, load_keys, loaded_key};
use crate::http::Http;
use crate::metrics::{Operator, PUSH_LATENCY, RECONCILE, SNAPSHOT_BYTES, Scrape};
use crate::process::{clock_ticks_per_second, cpu_ticks, machine_busy_ticks, peak_rss_kib};
use crate::report::{Change, Load, PeakRss, ReplicaChange, Report, SecretWrite, Settings};
use crate::stack::{Event, Replica, Stack};
use http::StatusCode;
use std::path::Path;
use std::time::Instant;
use tokio::time::timeout_at;

/// CPU time of every process, this one and the whole machine, in clock ticks.
struct Cpu {
    at: Instant,
    operator: u64,
    apiserver: u64,
    gateways: Vec<u64>,
    bench: u64,
    machine: u64,
}

/// What a change does to its VirtualKey.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Create,
    Delete,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Create => "create",
            Kind::Delete => "delete",
        }
    }
}

/// Everything a run holds on to.
struct Bench<'a> {
    args: &'a Args,
    http: Http,
    api: Api,
    stack: Stack,
    operator: Operator,
    replicas: Vec<Replica>,
    ticks_per_second: u64,
}

pub async fn run(args: &Args, bin_dir: &Path, log_dir: &Path, clock: Instant) -> Result<Report, String> {
    let mut bench = Bench::start(args, bin_dir, log_dir, clock).await?;
    let load = bench.load().await?;
    let mut changes = Vec::new();
    let mut created: Option<String> = None;
    let cpu = bench.cpu()?;
    for index in 0..args.changes {
        // Alternately: create a key, then delete the key just created.
        let (kind, name) = match created.take() {
            Some(name) => (Kind::Delete, name),
            None => {
                let name = format!("vk-change-{index:04}");
                created = Some(name.clone());
                (Kind::Create, name)
            }
        };
        let change = bench.change(index, name, kind, load.keys_served).await?;
        if (index + 1) % 10 == 0 || index + 1 == args.changes {
            eprintln!(
                "switchboard-propagation: change {}/{}: {:.0} ms",
                index + 1,
                args.changes,
                change.propagation_ms
            );
        }
        changes.push(change);
    }
    let others_cores = bench.cpu_since(&cpu)?.others_cores;
    bench.report(load, changes, others_cores).await
}

impl<'a> Bench<'a> {
    /// The API server, the operator, the namespace, provider and route, then the replicas,
    /// each serving its first snapshot before the keys are loaded.
    async fn start(
        args: &'a Args,
        bin_dir: &Path,
        log_dir: &Path,
        clock: Instant,
    ) -> Result<Bench<'a>, String> {
        let http = Http::new(usize::from(args.concurrency) + 4);
        let mut stack = Stack::start(bin_dir, log_dir, clock).await?;
        let api = Api::new(http.clone(), stack.apiserver_url.clone(), args.namespace.clone());
        api.create_namespace().await?;
        api.create_provider_and_route().await?;
        let operator =
            Operator { http: http.clone(), admin: stack.operator_admin.clone(), pid: stack.operator.pid() };
        operator.settle(args.quiet(), args.settle_timeout()).await?;
        let mut replicas = Vec::new();
        for index in 0..usize::from(args.replicas) {
            replicas.push(stack.start_gateway(index).await?);
        }
        let deadline = Instant::now() + args.change_timeout();
        for replica in &mut replicas {
            next_event(replica, deadline).await?;
        }
        operator.settle(args.quiet(), args.settle_timeout()).await?;
        let ticks_per_second = clock_ticks_per_second();
        Ok(Bench { args, http, api, stack, operator, replicas, ticks_per_second })
    }

    /// Writes the keys, waits for every replica to serve all of them and for the operator to go
    /// idle.
    async fn load(&mut self) -> Result<Load, String> {
        let count = self.args.keys as usize;
        let before = self.operator.scrape().await?;
        let cpu = self.cpu()?;
        let started = Instant::now();
        load_keys(&self.api, count, usize::from(self.args.concurrency)).await?;
        let api_writes = started.elapsed();
        let deadline = started + self.args.load_timeout();
        let mut served = Vec::new();
        let mut snapshots = Vec::new();
        for replica in &mut self.replicas {
            let (event, applied) = wait_for_keys(replica, count as u64, deadline).await?;
            served.push(event);
            snapshots.push(applied);
        }
        let keys_served = served.first().map_or(0, |e| e.keys);
        if let Some(odd) = served.iter().find(|e| e.keys != keys_served) {
            return Err(format!("replicas serve different key counts: {keys_served} and {}", odd.keys));
        }
        self.check_keys_serve(count).await?;
        eprintln!(
            "switchboard-propagation: {count} keys written in {:.1} s, served by every replica after {:.1} s",
            api_writes.as_secs_f64(),
            served.iter().map(|e| secs(started, e.at)).fold(0.0, f64::max)
        );
        let after = self.operator.scrape().await?;
        let (_, idle) = self.operator.settle(self.args.quiet(), self.args.settle_timeout()).await?;
        let used = self.cpu_since(&cpu)?;
        let all_served = served.iter().map(|e| e.at).max().unwrap_or(started);
        Ok(Load {
            api_writes_s: api_writes.as_secs_f64(),
            replica_served_s: served.iter().map(|e| secs(started, e.at)).collect(),
            all_served_s: secs(started, all_served),
            operator_idle_s: secs(started, idle),
            replica_snapshots: snapshots,
            replica_sent_bytes: self.sent_bytes(&before, &after),
            operator_cpu_s: used.operator / 1e3,
            gateway_cpu_s: used.gateways.iter().map(|ms| ms / 1e3).collect(),
            apiserver_cpu_s: used.apiserver / 1e3,
            others_cores: used.others_cores,
            keys_served,
        })
    }

    /// The first and last loaded keys work on every replica, and an unknown one does not.
    async fn check_keys_serve(&self, count: usize) -> Result<(), String> {
        for replica in &self.replicas {
            for (key, expected) in [
                (key_value(&loaded_key(0)), StatusCode::OK),
                (key_value(&loaded_key(count.saturating_sub(1))), StatusCode::OK),
                (key_value("not-a-key"), StatusCode::UNAUTHORIZED),
            ] {
                let status = probe(&self.http, replica, &key).await?;
                if status != expected {
                    return Err(format!(
                        "{}: GET /v1/models with {key} answered {status}, not {expected}",
                        replica.name
                    ));
                }
            }
        }
        Ok(())
    }

    /// One timed change: create VirtualKey `name` (its Secret written and settled first) or
    /// delete it. `loaded`: keys served before the change.
    async fn change(&mut self, index: u32, name: String, kind: Kind, loaded: u64) -> Result<Change, String> {
        let secret = if kind == Kind::Create { Some(self.write_secret(&name).await?) } else { None };
        let expect = Expect {
            key: key_value(&name),
            status: if kind == Kind::Create { StatusCode::OK } else { StatusCode::UNAUTHORIZED },
            keys: if kind == Kind::Create { loaded + 1 } else { loaded },
        };
        for replica in &mut self.replicas {
            replica.forget_pending();
        }
        while self.stack.operator_published.try_recv().is_ok() {}
        let before = self.operator.scrape().await?;
        let cpu = self.cpu()?;

        let t0 = Instant::now();
        match kind {
            Kind::Create => self.api.create_key(&name).await?,
            Kind::Delete => self.api.delete_key(&name).await?,
        }
        let api_write = t0.elapsed();
        let replicas = std::mem::take(&mut self.replicas);
        let (replicas, served) =
            wait_all(replicas, &self.http, &expect, t0 + self.args.change_timeout()).await?;
        self.replicas = replicas;
        // Bytes are read as soon as every replica serves: the snapshot is on the wire by then,
        // and fewer heartbeats fall in the window.
        let served_scrape = self.operator.scrape().await?;
        let published = self.published(expect.keys, t0);
        let (settled, idle) = self.operator.settle(self.args.quiet(), self.args.settle_timeout()).await?;
        let used = self.cpu_since(&cpu)?;

        let sent = self.sent_bytes(&before, &served_scrape);
        let replicas = self.replica_changes(t0, &served, &sent, &used.gateways, (&before, &settled));
        let reconciles = histogram_delta(&before, &settled, RECONCILE, "");
        let last = served.iter().map(|s| s.at).max().unwrap_or(t0);
        Ok(Change {
            index,
            kind: kind.name(),
            virtual_key: name,
            propagation_ms: millis(t0, last),
            operator_published_ms: published.map(|at| millis(t0, at)),
            operator_busy_ms: millis(t0, idle),
            api_write_ms: api_write.as_secs_f64() * 1e3,
            replicas,
            operator_cpu_ms: used.operator,
            operator_reconciles: reconciles.map(|(_, count)| count),
            operator_reconcile_ms: reconciles.map(|(ms, _)| ms),
            apiserver_cpu_ms: used.apiserver,
            others_cores: used.others_cores,
            secret,
        })
    }

    /// Each replica's part of a change; `scrapes`: the operator's metrics before the write and
    /// once it was idle again (its push latency histogram).
    fn replica_changes(
        &self,
        t0: Instant,
        served: &[Served],
        sent: &[Option<u64>],
        cpu_ms: &[f64],
        (before, after): (&Scrape, &Scrape),
    ) -> Vec<ReplicaChange> {
        let replicas = self.replicas.iter().zip(served).zip(sent).zip(cpu_ms);
        replicas
            .map(|(((replica, served), &sent_bytes), &cpu_ms)| {
                let labels = format!("{{replica=\"{}\"}}", replica.name);
                let push = histogram_delta(before, after, PUSH_LATENCY, &labels);
                ReplicaChange {
                    name: replica.name.clone(),
                    ms: millis(t0, served.at),
                    generation: served.generation,
                    lines: served.lines,
                    reprobes: served.reprobes,
                    sent_bytes,
                    push_ms: push.and_then(|(ms, count)| (count > 0).then(|| ms / count as f64)),
                    cpu_ms,
                }
            })
            .collect()
    }

    /// Writes the Secret a new key will read, outside the clock, and waits for what it sets
    /// off in the operator (every Secret event is an input change, so it compiles) to finish.
    async fn write_secret(&mut self, name: &str) -> Result<SecretWrite, String> {
        let before = self.operator.scrape().await?;
        let cpu = self.cpu()?;
        let started = Instant::now();
        self.api.create_secret(name).await?;
        let (after, idle) = self.operator.settle(self.args.quiet(), self.args.settle_timeout()).await?;
        let used = self.cpu_since(&cpu)?;
        let generation =
            |s: &Scrape| s.value("switchboard_operator_snapshot_generation").unwrap_or(0.0) as u64;
        Ok(SecretWrite {
            compiles: after.compiles().zip(before.compiles()).map(|(a, b)| a.saturating_sub(b)),
            generations: generation(&after).saturating_sub(generation(&before)),
            operator_cpu_ms: used.operator,
            operator_busy_ms: millis(started, idle),
        })
    }

    /// When the operator logged publishing the snapshot with `keys` keys, after `t0`.
    fn published(&mut self, keys: u64, t0: Instant) -> Option<Instant> {
        let mut found = None;
        while let Ok(event) = self.stack.operator_published.try_recv() {
            if found.is_none() && event.keys == keys && event.at >= t0 {
                found = Some(event.at);
            }
        }
        found
    }

    /// Bytes sent to each replica between two scrapes.
    fn sent_bytes(&self, before: &Scrape, after: &Scrape) -> Vec<Option<u64>> {
        self.replicas
            .iter()
            .map(|r| Some(after.sent_bytes(&r.name)?.saturating_sub(before.sent_bytes(&r.name)?)))
            .collect()
    }

    fn cpu(&self) -> Result<Cpu, String> {
        Ok(Cpu {
            at: Instant::now(),
            operator: cpu_ticks(self.stack.operator.pid())?,
            apiserver: cpu_ticks(self.stack.apiserver.pid())?,
            gateways: self.stack.gateways.iter().map(|g| cpu_ticks(g.pid())).collect::<Result<_, _>>()?,
            bench: cpu_ticks(std::process::id())?,
            machine: machine_busy_ticks()?,
        })
    }

    /// CPU used since `before`, in milliseconds.
    fn cpu_since(&self, before: &Cpu) -> Result<CpuMs, String> {
        let now = self.cpu()?;
        let ms = |ticks: u64, was: u64| ticks.saturating_sub(was) as f64 * 1e3 / self.ticks_per_second as f64;
        let gateways: Vec<f64> = now.gateways.iter().zip(&before.gateways).map(|(&n, &b)| ms(n, b)).collect();
        let (operator, apiserver) = (ms(now.operator, before.operator), ms(now.apiserver, before.apiserver));
        let ours = operator + apiserver + gateways.iter().sum::<f64>() + ms(now.bench, before.bench);
        let elapsed_ms = now.at.duration_since(before.at).as_secs_f64() * 1e3;
        let others = (ms(now.machine, before.machine) - ours).max(0.0);
        Ok(CpuMs { operator, apiserver, gateways, others_cores: others / elapsed_ms.max(1.0) })
    }

    async fn report(self, load: Load, changes: Vec<Change>, others_cores: f64) -> Result<Report, String> {
        let peak_rss = PeakRss {
            operator_kib: peak_rss_kib(self.stack.operator.pid())?,
            apiserver_kib: peak_rss_kib(self.stack.apiserver.pid())?,
            gateways_kib: self
                .stack
                .gateways
                .iter()
                .map(|g| peak_rss_kib(g.pid()))
                .collect::<Result<_, _>>()?,
        };
        let snapshot_bytes = self.operator.scrape().await?.value(SNAPSHOT_BYTES).map(|b| b as u64);
        let settings = Settings {
            replicas: self.replicas.len(),
            keys: self.args.keys as usize,
            changes: self.args.changes,
            concurrency: self.args.concurrency,
            quiet_ms: self.args.quiet_ms,
            clock_ticks_per_second: self.ticks_per_second,
        };
        let mut report = Report::new(settings, load, changes, peak_rss);
        report.snapshot_bytes = snapshot_bytes;
        report.others_cores_during_changes = others_cores;
        Ok(report)
    }
}

/// CPU used over a span, in milliseconds.
struct CpuMs {
    operator: f64,
    apiserver: f64,
    gateways: Vec<f64>,
    /// Cores' worth of CPU the rest of the machine used meanwhile (other work competing with
    /// the system under test; ideally 0).
    others_cores: f64,
}

/// How much a histogram grew between two scrapes: (sum in ms, count).
fn histogram_delta(before: &Scrape, after: &Scrape, name: &str, labels: &str) -> Option<(f64, u64)> {
    let (sum_before, count_before) = before.histogram(name, labels).unwrap_or((0.0, 0));
    let (sum, count) = after.histogram(name, labels)?;
    Some(((sum - sum_before) * 1e3, count.saturating_sub(count_before)))
}

/// The next `config applied` line of `replica`, by `deadline`.
async fn next_event(replica: &mut Replica, deadline: Instant) -> Result<Event, String> {
    match timeout_at(deadline.into(), replica.applied.recv()).await {
        Ok(Some(event)) => Ok(event),
        Ok(None) => Err(format!("{} exited (its log is in the log directory)", replica.name)),
        Err(_) => Err(format!("{} applied no snapshot in time", replica.name)),
    }
}

/// Reads `replica`'s `config applied` lines until one has at least `keys` keys; returns it and
/// how many lines were read.
async fn wait_for_keys(replica: &mut Replica, keys: u64, deadline: Instant) -> Result<(Event, u32), String> {
    let mut lines = 0;
    loop {
        let event = next_event(replica, deadline).await.map_err(|e| format!("loading {keys} keys: {e}"))?;
        lines += 1;
        if event.keys >= keys {
            return Ok((event, lines));
        }
    }
}

fn millis(from: Instant, to: Instant) -> f64 {
    to.saturating_duration_since(from).as_secs_f64() * 1e3
}

fn secs(from: Instant, to: Instant) -> f64 {
    to.saturating_duration_since(from).as_secs_f64()
}
