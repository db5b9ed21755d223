//! Chaos: steady load for 60 s (`SWITCHBOARD_CHAOS_SECONDS` changes it) on a route of three
//! backends while a controller makes them fail and recover at random, always leaving at least
//! one healthy. Every request must succeed; the test prints the success rate, p50/p99 and what
//! the controller did.
//!
//! The faults are the ones a gateway can hide: refused or reset connections, 5xx, 429 with
//! `Retry-After`, a 529 overload, answers or first tokens slower than the route's
//! `first_byte_ms`. A stream that breaks after its first event reached the client cannot be
//! hidden by design (no retry after the first byte): `resilience.rs` checks that it ends with an
//! error event instead.

pub mod support;

use std::time::{Duration, Instant};
use support::*;
use switchboard_mock_upstream::{Fault, MockUpstream};

const KEY: &str = "sk-chaos";
const BACKENDS: usize = 3;
const CONCURRENCY: usize = 8;

/// A small deterministic generator: the same seed gives the same fault schedule.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn random_fault(rng: &mut XorShift) -> Fault {
    match rng.below(6) {
        0 => Fault::Status { status: 503, retry_after: None },
        1 => Fault::Status { status: 500, retry_after: None },
        2 => Fault::Status { status: 529, retry_after: None },
        3 => Fault::Status { status: 429, retry_after: Some(1) },
        4 => Fault::Reset,
        _ => Fault::Delay(Duration::from_millis(1_500)),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steady_load_survives_backends_failing_and_recovering_at_random() {
    let seconds: u64 =
        std::env::var("SWITCHBOARD_CHAOS_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(60);
    let mut mocks = Vec::new();
    let mut providers = String::new();
    for i in 0..BACKENDS {
        let mock = MockUpstream::start(std::net::SocketAddr::from(([127, 0, 0, 1], 0))).await.unwrap();
        providers.push_str(&format!("  - {{ name: p{i}, type: openai, base_url: {} }}\n", mock.base_url()));
        mocks.push(mock);
    }
    let config = format!(
        "version: 1\nproviders:\n{providers}routes:\n  - model: m\n    backends: [{{ provider: p0 }}, {{ provider: p1 }}, {{ provider: p2 }}]\n    timeouts: {{ first_byte_ms: 500 }}\nkeys:\n  - {{ id: client, hash: {} }}\n",
        hash_key(KEY)
    );
    let gateway = Gateway::start(Some(&config), &[]);
    let url = gateway.url("/v1/chat/completions");
    let until = Instant::now() + Duration::from_secs(seconds);

    // The controller: every 200-700 ms one backend changes; at least one stays healthy.
    let mocks = std::sync::Arc::new(mocks);
    let controller = {
        let mocks = mocks.clone();
        tokio::spawn(async move {
            let mut rng = XorShift(0x5eed_cafe_f00d_d00d);
            let mut faulty = [false; BACKENDS];
            let mut changes = 0u32;
            while Instant::now() < until {
                let i = rng.below(BACKENDS as u64) as usize;
                let healthy_others = (0..BACKENDS).filter(|&j| j != i && !faulty[j]).count();
                if faulty[i] || healthy_others == 0 {
                    mocks[i].set_fault(None);
                    faulty[i] = false;
                } else {
                    mocks[i].set_fault(Some(random_fault(&mut rng)));
                    faulty[i] = true;
                }
                changes += 1;
                // Pacing the schedule, not waiting for something to happen.
                tokio::time::sleep(Duration::from_millis(200 + rng.below(500))).await;
            }
            for mock in mocks.iter() {
                mock.set_fault(None);
            }
            changes
        })
    };

    let client = client();
    let mut workers = tokio::task::JoinSet::new();
    for worker in 0..CONCURRENCY {
        let (client, url) = (client.clone(), url.clone());
        workers.spawn(async move {
            let mut results = Vec::new();
            let mut n = 0u64;
            while Instant::now() < until {
                let stream = (n + worker as u64).is_multiple_of(4);
                n += 1;
                let body = format!(
                    r#"{{"model":"m","messages":[{{"role":"user","content":"hello"}}],"stream":{stream}}}"#
                );
                let started = Instant::now();
                let response = send_with(&client, "POST", &url, &[("x-api-key", KEY)], body).await;
                let ok = response.status == 200 && (!stream || response.text().ends_with("data: [DONE]\n\n"));
                results.push((ok, started.elapsed(), response.status.as_u16()));
            }
            results
        });
    }
    let mut results = Vec::new();
    while let Some(done) = workers.join_next().await {
        results.extend(done.unwrap());
    }
    let changes = controller.await.unwrap();

    let total = results.len();
    let failed: Vec<u16> = results.iter().filter(|(ok, _, _)| !ok).map(|(_, _, s)| *s).collect();
    let mut latencies: Vec<Duration> = results.iter().map(|(_, d, _)| *d).collect();
    latencies.sort();
    let at = |p: f64| latencies[((p * total as f64).ceil() as usize).clamp(1, total) - 1];
    let faults: u64 = mocks.iter().map(|m| m.stats().faults_injected).sum();
    println!(
        "chaos: {seconds} s, {total} requests, {} ok ({:.3} %), p50 {:?}, p99 {:?}, max {:?}; {changes} backend changes, {faults} faults injected",
        total - failed.len(),
        100.0 * (total - failed.len()) as f64 / total as f64,
        at(0.50),
        at(0.99),
        latencies[total - 1],
    );
    assert!(faults > 0, "the controller injected faults");
    assert!(failed.is_empty(), "{} of {total} requests failed: statuses {failed:?}", failed.len());
}
