//! `switchboard-redis-rtt`: one Redis round trip (a `PING`, or any pipeline of commands sent in
//! one write), sampled at a set interval instead of back to back, so Redis (and the CPU it runs
//! on) is as idle between calls as it is between a gateway's admissions at the same request
//! rate. A back-to-back round trip (interval 0, or `redis-benchmark`) is, on a VM whose idle
//! vCPUs halt, several times shorter than one that has to wake Redis
//! (bench/governed.md).
//!
//! With `--gateway-client` the calls go through the gateway's own Redis client instead of a
//! blocking socket: `switchboard_redis::RedisClient`, on the connection an admission takes
//! (`own_connection`), on a two-worker tokio runtime, each call started by a wake-up from outside
//! the runtime as a request's arrival starts an admission. That is one round trip as the
//! gateway's runtime and client make it, the baseline for what an admission adds beyond it.
//!
//! usage: switchboard-redis-rtt [--gateway-client] ADDR INTERVAL_US DURATION_S [COMMAND ARG... [';' COMMAND ARG...]...]
//! (the command defaults to `PING`; bench/governed.sh also replays the gateway's admission
//! transaction, `MULTI ; … ; EXEC`)
//! prints: {"samples":N,"p50_us":..,"mean_us":..,"p99_us":..}

use hdrhistogram::Histogram;
use std::process::ExitCode;
use std::time::{Duration, Instant};
use switchboard_loadgen::report::exit_with_line;
use switchboard_loadgen::resp::{self, Probe};
use switchboard_redis::{RedisClient, RedisSettings};

fn main() -> ExitCode {
    let mut argv: Vec<String> = std::env::args().skip(1).collect();
    let via_gateway_client = argv.first().is_some_and(|arg| arg == "--gateway-client");
    if via_gateway_client {
        argv.remove(0);
    }
    let parsed = match argv.as_slice() {
        [addr, interval, duration, command @ ..] => {
            interval.parse::<u64>().ok().zip(duration.parse::<f64>().ok()).map(|(interval, duration)| {
                (addr.clone(), Duration::from_micros(interval), Duration::from_secs_f64(duration), command)
            })
        }
        _ => None,
    };
    let Some((addr, interval, duration, command)) = parsed else {
        eprintln!(
            "usage: switchboard-redis-rtt [--gateway-client] ADDR INTERVAL_US DURATION_S [COMMAND ARG... [';' COMMAND ARG...]...]"
        );
        return ExitCode::from(2);
    };
    let commands = resp::commands(command);
    let ping = ["PING".to_owned()];
    let commands = if commands.is_empty() { vec![&ping[..]] } else { commands };
    let sampled = if via_gateway_client {
        sample_via_gateway_client(&addr, interval, duration, &commands)
    } else {
        let pipeline = resp::encode_all(&commands);
        sample(&addr, interval, duration, &pipeline, commands.len())
    };
    exit_with_line("switchboard-redis-rtt", sampled.map(|histogram| summary(&histogram)))
}

/// Sends `pipeline` (`replies` commands) every `interval` for `duration`; the round trip ends
/// with the last reply.
fn sample(
    addr: &str,
    interval: Duration,
    duration: Duration,
    pipeline: &[u8],
    replies: usize,
) -> Result<Histogram<u64>, String> {
    let mut probe = Probe::connect(addr)?;
    let mut histogram = Histogram::<u64>::new(3).map_err(|e| e.to_string())?;
    let end = Instant::now() + duration;
    while Instant::now() < end {
        // The pause is the point: Redis goes idle between samples, as between admissions.
        if !interval.is_zero() {
            std::thread::sleep(interval);
        }
        let started = Instant::now();
        probe.call(pipeline, replies)?;
        histogram.record(started.elapsed().as_micros() as u64).map_err(|e| e.to_string())?;
    }
    Ok(histogram)
}

/// The same calls through the gateway's Redis client (see the module's documentation).
fn sample_via_gateway_client(
    addr: &str,
    interval: Duration,
    duration: Duration,
    commands: &[&[String]],
) -> Result<Histogram<u64>, String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let settings = RedisSettings {
        urls: vec![format!("redis://{addr}")],
        cluster: false,
        password: None,
        timeout: Duration::from_secs(1),
        prefix: String::new(),
    };
    let mut pipeline = redis::pipe();
    for args in commands {
        let command = pipeline.cmd(&args[0]);
        for arg in &args[1..] {
            command.arg(arg);
        }
    }
    let (go, mut started) = tokio::sync::mpsc::channel::<()>(1);
    let calls = runtime.spawn(async move {
        let client = RedisClient::connect(&settings).await?;
        let mut histogram = Histogram::<u64>::new(3).map_err(|e| e.to_string())?;
        while started.recv().await.is_some() {
            let mut connection = client.own_connection().ok_or("no connection")?;
            let call = Instant::now();
            pipeline.query_async::<Vec<redis::Value>>(&mut connection).await.map_err(|e| e.to_string())?;
            histogram.record(call.elapsed().as_micros() as u64).map_err(|e| e.to_string())?;
        }
        Ok::<_, String>(histogram)
    });
    let end = Instant::now() + duration;
    while Instant::now() < end {
        std::thread::sleep(interval);
        if go.blocking_send(()).is_err() {
            break;
        }
    }
    drop(go);
    runtime.block_on(calls).map_err(|e| e.to_string())?
}

fn summary(histogram: &Histogram<u64>) -> String {
    format!(
        r#"{{"samples":{},"p50_us":{},"mean_us":{:.1},"p99_us":{}}}"#,
        histogram.len(),
        histogram.value_at_quantile(0.5),
        histogram.mean(),
        histogram.value_at_quantile(0.99)
    )
}
