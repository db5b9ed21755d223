//! `switchboard-redis-rtt`: one Redis `PING` round trip, sampled at a set interval instead of
//! back to back, so Redis (and the CPU it runs on) is as idle between calls as it is between a
//! gateway's admissions at the same request rate. `redis-benchmark` measures the back-to-back
//! round trip, which on a VM whose idle vCPUs halt is several times shorter than a round trip
//! that has to wake Redis (bench/README.md "Governed requests").
//!
//! usage: switchboard-redis-rtt ADDR INTERVAL_US DURATION_S
//! prints: {"samples":N,"p50_us":..,"mean_us":..,"p99_us":..}

use hdrhistogram::Histogram;
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::process::ExitCode;
use std::time::{Duration, Instant};

const PING: &[u8] = b"*1\r\n$4\r\nPING\r\n";
const PONG: &[u8] = b"+PONG\r\n";

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let parsed = match argv.as_slice() {
        [addr, interval, duration] => {
            interval.parse::<u64>().ok().zip(duration.parse::<f64>().ok()).map(|(interval, duration)| {
                (addr.clone(), Duration::from_micros(interval), Duration::from_secs_f64(duration))
            })
        }
        _ => None,
    };
    let Some((addr, interval, duration)) = parsed else {
        eprintln!("usage: switchboard-redis-rtt ADDR INTERVAL_US DURATION_S");
        return ExitCode::from(2);
    };
    match sample(&addr, interval, duration) {
        Ok(line) => match writeln!(std::io::stdout().lock(), "{line}") {
            Ok(()) => ExitCode::SUCCESS,
            Err(_) => ExitCode::FAILURE,
        },
        Err(err) => {
            eprintln!("switchboard-redis-rtt: {err}");
            ExitCode::FAILURE
        }
    }
}

fn sample(addr: &str, interval: Duration, duration: Duration) -> Result<String, String> {
    let mut stream = TcpStream::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let mut histogram = Histogram::<u64>::new(3).map_err(|e| e.to_string())?;
    let mut reply = [0u8; PONG.len()];
    let end = Instant::now() + duration;
    while Instant::now() < end {
        // The pause is the point: Redis goes idle between samples, as between admissions.
        std::thread::sleep(interval);
        let started = Instant::now();
        stream.write_all(PING).map_err(|e| e.to_string())?;
        stream.read_exact(&mut reply).map_err(|e| e.to_string())?;
        let elapsed = started.elapsed();
        if reply != PONG {
            return Err(format!("unexpected reply {:?}", String::from_utf8_lossy(&reply)));
        }
        histogram.record(elapsed.as_micros() as u64).map_err(|e| e.to_string())?;
    }
    Ok(format!(
        r#"{{"samples":{},"p50_us":{},"mean_us":{:.1},"p99_us":{}}}"#,
        histogram.len(),
        histogram.value_at_quantile(0.5),
        histogram.mean(),
        histogram.value_at_quantile(0.99)
    ))
}
