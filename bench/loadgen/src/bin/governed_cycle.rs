//! `switchboard-governed-cycle`: what a Redis admission adds to a request, measured request by
//! request so that a noisy machine's drift falls on both sides alike. Each cycle, one after
//! another from one blocking client: a request through the Redis-limited route, one through the
//! local-limited route, a `PING` to the same Redis, another local request, the admission's own
//! transaction replayed to Redis from a plain socket, a third local request. Every step that
//! touches Redis follows a local request, so Redis has idled for as long before each of them.
//! Settlements (sent by the gateway a millisecond after each Redis-route request) land on
//! whichever steps follow, on all kinds alike.
//!
//! usage: switchboard-governed-cycle GATEWAY_ADDR KEY LOCAL_BODY_FILE REDIS_BODY_FILE REDIS_ADDR DURATION_S [COMMAND ARG... [';' COMMAND ARG...]...]
//! (the commands are the admission's transaction, as bench/governed.sh captures it; without
//! them only the `PING` is sampled)
//! prints: {"cycles":N,"local":{"p50_us":..,"mean_us":..,"p99_us":..},"redis":{..},"ping":{..},"admission":{..}}

use hdrhistogram::Histogram;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::process::ExitCode;
use std::time::{Duration, Instant};
use switchboard_loadgen::report::exit_with_line;
use switchboard_loadgen::resp::{self, Probe};

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let [gateway, key, local, redis, redis_addr, duration, admission @ ..] = argv.as_slice() else {
        eprintln!(
            "usage: switchboard-governed-cycle GATEWAY_ADDR KEY LOCAL_BODY_FILE REDIS_BODY_FILE REDIS_ADDR DURATION_S [COMMAND ARG... [';' COMMAND ARG...]...]"
        );
        return ExitCode::from(2);
    };
    let admission = resp::commands(admission);
    let result = duration.parse::<f64>().map_err(|e| format!("duration: {e}")).and_then(|seconds| {
        cycles(gateway, key, [local, redis], redis_addr, Duration::from_secs_f64(seconds), &admission)
    });
    exit_with_line("switchboard-governed-cycle", result)
}

fn cycles(
    gateway: &str,
    key: &str,
    [local_body, redis_body]: [&String; 2],
    redis_addr: &str,
    duration: Duration,
    admission: &[&[String]],
) -> Result<String, String> {
    let request = |file: &String| -> Result<Vec<u8>, String> {
        let body = std::fs::read(file).map_err(|e| format!("{file}: {e}"))?;
        let mut request = format!(
            "POST /v1/chat/completions HTTP/1.1\r\nhost: {gateway}\r\nauthorization: Bearer {key}\r\n\
             content-type: application/json\r\ncontent-length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        request.extend_from_slice(&body);
        Ok(request)
    };
    let (local, redis) = (request(local_body)?, request(redis_body)?);
    let ping = resp::encode(&["PING".to_owned()]);
    let replayed = resp::encode_all(admission);
    let mut http = Http::connect(gateway)?;
    let mut probe = Probe::connect(redis_addr)?;
    let new = || Histogram::<u64>::new(3).map_err(|e| e.to_string());
    let (mut local_us, mut redis_us, mut ping_us, mut admission_us) = (new()?, new()?, new()?, new()?);
    let timed = |histogram: &mut Histogram<u64>, step: &mut dyn FnMut() -> Result<(), String>| {
        let started = Instant::now();
        step()?;
        histogram.record(started.elapsed().as_micros() as u64).map_err(|e| e.to_string())
    };
    let end = Instant::now() + duration;
    let mut count = 0u64;
    while Instant::now() < end {
        timed(&mut redis_us, &mut || http.post(&redis))?;
        timed(&mut local_us, &mut || http.post(&local))?;
        timed(&mut ping_us, &mut || probe.call(&ping, 1))?;
        timed(&mut local_us, &mut || http.post(&local))?;
        if !admission.is_empty() {
            timed(&mut admission_us, &mut || probe.call(&replayed, admission.len()))?;
        }
        timed(&mut local_us, &mut || http.post(&local))?;
        count += 1;
    }
    let summary = |h: &Histogram<u64>| {
        format!(
            r#"{{"p50_us":{},"mean_us":{:.1},"p99_us":{}}}"#,
            h.value_at_quantile(0.5),
            h.mean(),
            h.value_at_quantile(0.99)
        )
    };
    Ok(format!(
        r#"{{"cycles":{count},"local":{},"redis":{},"ping":{},"admission":{}}}"#,
        summary(&local_us),
        summary(&redis_us),
        summary(&ping_us),
        summary(&admission_us)
    ))
}

/// One keep-alive HTTP/1.1 connection, used by one request at a time.
struct Http {
    writer: TcpStream,
    reader: BufReader<TcpStream>,
    line: String,
}

impl Http {
    fn connect(addr: &str) -> Result<Self, String> {
        let stream = TcpStream::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        let writer = stream.try_clone().map_err(|e| e.to_string())?;
        Ok(Http { writer, reader: BufReader::new(stream), line: String::new() })
    }

    /// Sends `request` and reads the whole response; anything but a 200 fails.
    fn post(&mut self, request: &[u8]) -> Result<(), String> {
        self.writer.write_all(request).map_err(|e| e.to_string())?;
        let status = self.read_line()?;
        if status.split(' ').nth(1) != Some("200") {
            return Err(format!("the gateway answered {}", status.trim_end()));
        }
        let (mut length, mut chunked) = (0usize, false);
        loop {
            let header = self.read_line()?.to_ascii_lowercase();
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some(value) = header.strip_prefix("content-length:") {
                length = value.trim().parse().map_err(|e| format!("content-length: {e}"))?;
            } else if header.starts_with("transfer-encoding:") && header.ends_with("chunked") {
                chunked = true;
            }
        }
        if !chunked {
            return self.skip(length);
        }
        loop {
            let size = self.read_line()?;
            let size = usize::from_str_radix(size.trim_end(), 16).map_err(|e| format!("chunk size: {e}"))?;
            if size == 0 {
                // No trailers from the gateway: the last chunk's CRLF ends the response.
                return self.read_line().map(|_| ());
            }
            self.skip(size + 2)?;
        }
    }

    fn read_line(&mut self) -> Result<String, String> {
        self.line.clear();
        match self.reader.read_line(&mut self.line) {
            Ok(0) => Err("the gateway closed the connection".into()),
            Ok(_) => Ok(self.line.clone()),
            Err(e) => Err(e.to_string()),
        }
    }

    fn skip(&mut self, bytes: usize) -> Result<(), String> {
        let mut skipped = vec![0u8; bytes];
        self.reader.read_exact(&mut skipped).map_err(|e| e.to_string())
    }
}
