//! Resilience against fault-injecting upstreams (tests/mock-upstream `Fault`): failover with zero
//! client errors, priority order, weights, circuits that open and close again, Retry-After
//! cooldowns, the retry budget in a total outage, no retry after a stream's first event, time
//! limits, latency-aware balancing, and the admin port's `/backends`.

pub mod support;

use std::time::Duration;
use support::*;
use switchboard_mock_upstream::{Fault, MockUpstream};

const KEY: &str = "sk-resilience";

/// Backends `a`, `b`, ... each on its own mock upstream, and a gateway whose routes are `routes`
/// (YAML list items, indented by two spaces).
struct Fleet {
    mocks: Vec<MockUpstream>,
    gateway: Gateway,
}

#[expect(clippy::unwrap_used, reason = "test helpers: a failure fails the test")]
impl Fleet {
    async fn start(backends: usize, routes: &str) -> Fleet {
        Self::start_with(backends, "", routes).await
    }

    /// As [`Fleet::start`], with `provider_extra` (`, key: value`) added to every provider.
    async fn start_with(backends: usize, provider_extra: &str, routes: &str) -> Fleet {
        let mut mocks = Vec::new();
        let mut providers = String::new();
        for i in 0..backends {
            let mock = MockUpstream::start(std::net::SocketAddr::from(([127, 0, 0, 1], 0))).await.unwrap();
            let name = provider_name(i);
            providers.push_str(&format!(
                "  - {{ name: {name}, type: openai, base_url: {}, timeout_ms: 5000{provider_extra} }}\n",
                mock.base_url()
            ));
            mocks.push(mock);
        }
        let config = format!(
            "version: 1\nproviders:\n{providers}routes:\n{routes}\nkeys:\n  - {{ id: client, hash: {} }}\n",
            hash_key(KEY)
        );
        let gateway = Gateway::start(Some(&config), &[]);
        Fleet { mocks, gateway }
    }

    /// Chat completions received by each backend.
    fn calls(&self) -> Vec<u64> {
        self.mocks.iter().map(|m| m.stats().chat_requests).collect()
    }

    async fn ask(&self, client: &TestClient, model: &str, stream: bool) -> TestResponse {
        let body = format!(
            r#"{{"model":"{model}","messages":[{{"role":"user","content":"hello"}}],"stream":{stream}}}"#
        );
        send_with(client, "POST", &self.gateway.url("/v1/chat/completions"), &[("x-api-key", KEY)], body)
            .await
    }

    /// `n` requests, `concurrency` at a time; the statuses in order of completion.
    async fn load(&self, model: &str, n: usize, concurrency: usize) -> Vec<u16> {
        let client = client();
        let mut statuses = Vec::with_capacity(n);
        let mut started = 0;
        let mut running = tokio::task::JoinSet::new();
        while statuses.len() < n {
            while started < n && running.len() < concurrency {
                let (client, url, model) =
                    (client.clone(), self.gateway.url("/v1/chat/completions"), model.to_owned());
                running.spawn(async move {
                    let body =
                        format!(r#"{{"model":"{model}","messages":[{{"role":"user","content":"hello"}}]}}"#);
                    send_with(&client, "POST", &url, &[("x-api-key", KEY)], body).await.status.as_u16()
                });
                started += 1;
            }
            statuses.push(running.join_next().await.unwrap().unwrap());
        }
        statuses
    }

    async fn backends(&self) -> serde_json::Value {
        send("GET", &self.gateway.admin_url("/backends"), &[], "").await.json()
    }
}

fn provider_name(i: usize) -> String {
    char::from(b'a' + i as u8).to_string()
}

fn status_503() -> Fault {
    Fault::Status { status: 503, retry_after: None }
}

/// The state `/backends` reports for `provider`'s backend on the first route.
#[expect(clippy::unwrap_used, reason = "test helper: a missing backend fails the test")]
fn backend<'a>(report: &'a serde_json::Value, provider: &str) -> &'a serde_json::Value {
    report["routes"][0]["backends"].as_array().unwrap().iter().find(|b| b["provider"] == provider).unwrap()
}

#[tokio::test]
async fn one_failing_backend_is_invisible_to_clients() {
    let fleet = Fleet::start(2, "  - { model: m, backends: [{ provider: a }, { provider: b }] }").await;
    fleet.mocks[0].set_fault(Some(status_503()));
    let statuses = fleet.load("m", 200, 8).await;
    assert!(statuses.iter().all(|&s| s == 200), "{statuses:?}");
    let calls = fleet.calls();
    assert_eq!(calls[1], 200, "b answered every request");
    // a failed until its circuit opened (3 in a row; concurrent requests may add a few), and
    // then only gets a probe every few seconds.
    assert!(calls[0] >= 3 && calls[0] <= 12, "a was called {} times", calls[0]);
    let report = fleet.backends().await;
    assert_eq!(backend(&report, "a")["circuit"], "open", "{report}");
    assert_eq!(backend(&report, "b")["circuit"], "closed");
    let circuit = |provider: &str, state: &str| {
        format!(r#"switchboard_backend_circuit_state{{provider="{provider}",backend="m",state="{state}"}}"#)
    };
    assert_eq!(fleet.gateway.metric(&circuit("a", "open")).await, 1.0);
    assert_eq!(fleet.gateway.metric(&circuit("a", "closed")).await, 0.0);
    assert_eq!(fleet.gateway.metric(&circuit("b", "closed")).await, 1.0);
    let retried = r#"switchboard_retries_total{route="m",outcome="retried"}"#;
    assert_eq!(fleet.gateway.metric(retried).await, calls[0] as f64, "each failure of a was retried on b");
}

#[tokio::test]
async fn a_connection_reset_fails_over() {
    let fleet = Fleet::start(
        2,
        "  - { model: m, backends: [{ provider: a, priority: 0 }, { provider: b, priority: 1 }] }",
    )
    .await;
    fleet.mocks[0].set_fault(Some(Fault::Reset));
    let statuses = fleet.load("m", 20, 2).await;
    assert!(statuses.iter().all(|&s| s == 200), "{statuses:?}");
    assert_eq!(fleet.calls()[1], 20);
}

#[tokio::test]
async fn priority_order_is_respected() {
    let fleet = Fleet::start(
        3,
        "  - { model: m, backends: [{ provider: a, priority: 0 }, { provider: b, priority: 0 }, { provider: c, priority: 1 }] }",
    )
    .await;
    fleet.load("m", 40, 4).await;
    assert_eq!(fleet.calls(), vec![20, 20, 0], "the fallback tier gets nothing while the first serves");
    // The fallback tier only after every backend of the first has failed.
    fleet.mocks[0].set_fault(Some(status_503()));
    fleet.mocks[1].set_fault(Some(status_503()));
    let statuses = fleet.load("m", 20, 1).await;
    assert!(statuses.iter().all(|&s| s == 200), "{statuses:?}");
    assert_eq!(fleet.calls()[2], 20);
}

#[tokio::test]
async fn weights_converge_to_their_ratios() {
    let fleet = Fleet::start(
        2,
        "  - { model: m, backends: [{ provider: a, weight: 3 }, { provider: b, weight: 1 }] }",
    )
    .await;
    let statuses = fleet.load("m", 10_000, 32).await;
    assert!(statuses.iter().all(|&s| s == 200));
    let calls = fleet.calls();
    let share = calls[0] as f64 / 10_000.0;
    assert!((share - 0.75).abs() <= 0.75 * 0.05, "a got {share} of the traffic ({calls:?})");
}

#[tokio::test]
async fn an_open_circuit_closes_after_the_backend_recovers() {
    let fleet = Fleet::start(
        2,
        "  - { model: m, backends: [{ provider: a, priority: 0 }, { provider: b, priority: 1 }] }",
    )
    .await;
    fleet.mocks[0].set_fault(Some(status_503()));
    fleet.load("m", 5, 1).await;
    assert_eq!(backend(&fleet.backends().await, "a")["circuit"], "open");
    let before = fleet.calls();
    fleet.load("m", 5, 1).await;
    assert_eq!(fleet.calls()[0], before[0], "an open circuit gets no traffic");
    fleet.mocks[0].set_fault(None);
    // After the open period (5 s) the next request probes a, succeeds, and closes the circuit.
    let client = client();
    let closed = eventually(Duration::from_secs(15), async || {
        fleet.ask(&client, "m", false).await;
        backend(&fleet.backends().await, "a")["circuit"] == "closed"
    })
    .await;
    assert!(closed, "{}", fleet.backends().await);
    let before = fleet.calls();
    fleet.load("m", 10, 1).await;
    assert_eq!(fleet.calls()[0] - before[0], 10, "a serves again");
}

#[tokio::test]
async fn retry_after_cools_the_backend_down() {
    let fleet = Fleet::start(2, "  - { model: m, backends: [{ provider: a }, { provider: b }] }").await;
    fleet.mocks[0].set_fault(Some(Fault::Status { status: 429, retry_after: Some(30) }));
    let statuses = fleet.load("m", 30, 1).await;
    assert!(statuses.iter().all(|&s| s == 200), "{statuses:?}");
    assert_eq!(fleet.calls()[0], 1, "after its 429, a is left alone for 30 s");
    let report = fleet.backends().await;
    let a = backend(&report, "a");
    assert_eq!(a["circuit"], "closed", "a Retry-After is not the backend failing: {report}");
    let left = a["cooldown_ms_left"].as_u64().unwrap();
    assert!(left > 20_000 && left <= 30_000, "{report}");
    assert_eq!(report["routes"][0]["retries"], 1);
}

#[tokio::test]
async fn a_total_outage_costs_at_most_the_retry_budget() {
    let routes = "  - model: m\n    backends: [{ provider: a }, { provider: b }]\n    retries: { max_attempts: 5, budget_percent: 20, min_per_second: 1 }";
    let fleet = Fleet::start(2, routes).await;
    for mock in &fleet.mocks {
        mock.set_fault(Some(status_503()));
    }
    let requests = 200;
    let statuses = fleet.load("m", requests, 16).await;
    assert!(statuses.iter().all(|&s| s == 502), "the providers' 503, as a gateway error: {statuses:?}");
    let attempts: u64 = fleet.calls().iter().sum();
    // 20 % of 200 requests plus 1 per second over the 10 s window; requests that start in the
    // same instant may each take the budget's last retry, so allow one round of concurrency.
    let budget = 200 * 20 / 100 + 10 + 16;
    assert!(attempts >= requests as u64, "every request made an attempt: {attempts}");
    assert!(attempts <= requests as u64 + budget, "{attempts} attempts for {requests} requests");
}

#[tokio::test]
async fn other_client_errors_are_not_retried() {
    let fleet = Fleet::start(
        2,
        "  - { model: m, backends: [{ provider: a, priority: 0 }, { provider: b, priority: 1 }] }",
    )
    .await;
    fleet.mocks[0].set_fault(Some(Fault::Status { status: 400, retry_after: None }));
    let response = fleet.ask(&client(), "m", false).await;
    assert_eq!(response.status, 400);
    assert_eq!(fleet.calls(), vec![1, 0]);
    assert_eq!(backend(&fleet.backends().await, "a")["consecutive_failures"], 0, "not the backend's fault");
}

#[tokio::test]
async fn a_stream_is_not_retried_after_its_first_event() {
    let fleet = Fleet::start(
        2,
        "  - { model: m, backends: [{ provider: a, priority: 0 }, { provider: b, priority: 1 }] }",
    )
    .await;
    fleet.mocks[0].set_fault(Some(Fault::StreamCut { after_chunks: 2 }));
    let response = fleet.ask(&client(), "m", true).await;
    assert_eq!(response.status, 200);
    let events = sse_data(&response.text());
    let last: serde_json::Value = serde_json::from_str(events.last().unwrap()).unwrap();
    assert_eq!(last["error"]["code"], "upstream_stream_error", "{events:?}");
    assert!(events.len() >= 3, "the role chunk and two content chunks came first: {events:?}");
    assert_eq!(fleet.calls(), vec![1, 0], "b was never asked: the client already had the stream");
    // The status said 200, but the request failed: its error is counted.
    let broken = [("route", "m"), ("type", "upstream_unreachable")];
    assert_eq!(fleet.gateway.metric_sum("switchboard_errors_total", &broken).await, 1.0);
}

#[tokio::test]
async fn a_stream_that_fails_before_its_first_event_moves_on() {
    let routes = "  - model: m\n    backends: [{ provider: a, priority: 0 }, { provider: b, priority: 1 }]\n    timeouts: { first_byte_ms: 300 }";
    let fleet = Fleet::start(2, routes).await;
    // a answers the head at once and its first token after 3 s: past the route's first_byte_ms.
    fleet.mocks[0].set_fault(Some(Fault::SlowFirstToken(Duration::from_secs(3))));
    let response = fleet.ask(&client(), "m", true).await;
    assert_eq!(response.status, 200);
    let events = sse_data(&response.text());
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"), "{events:?}");
    assert_eq!(response.headers["x-switchboard-provider"], "b");
    assert_eq!(fleet.calls(), vec![1, 1]);
}

#[tokio::test]
async fn a_slow_answer_times_out_and_moves_on() {
    let routes = "  - model: m\n    backends: [{ provider: a, priority: 0 }, { provider: b, priority: 1 }]\n    timeouts: { first_byte_ms: 300 }";
    let fleet = Fleet::start(2, routes).await;
    fleet.mocks[0].set_fault(Some(Fault::Delay(Duration::from_secs(3))));
    let response = fleet.ask(&client(), "m", false).await;
    assert_eq!(response.status, 200);
    assert_eq!(response.headers["x-switchboard-provider"], "b");
}

#[tokio::test]
async fn the_route_total_limit_ends_the_request() {
    let routes = "  - model: m\n    backends: [{ provider: a }]\n    timeouts: { total_ms: 300 }";
    let fleet = Fleet::start(1, routes).await;
    fleet.mocks[0].set_fault(Some(Fault::Delay(Duration::from_secs(3))));
    let response = fleet.ask(&client(), "m", false).await;
    assert_eq!(response.status, 504, "{}", response.text());
    assert_eq!(response.json()["error"]["code"], "timeout");
}

#[tokio::test]
async fn latency_aware_selection_shifts_traffic_away_from_a_slow_backend() {
    let routes =
        "  - { model: m, balancing: latency, backends: [{ provider: a }, { provider: b }, { provider: c }] }";
    let fleet = Fleet::start(3, routes).await;
    fleet.mocks[0].set_fault(Some(Fault::Delay(Duration::from_millis(100))));
    let statuses = fleet.load("m", 300, 4).await;
    assert!(statuses.iter().all(|&s| s == 200));
    let calls = fleet.calls();
    // Weighted round-robin would give each a third (100); the slow one keeps only what
    // exploration and the moments both fast ones were busy give it.
    assert!(calls[0] < 40, "the slow backend got {calls:?}");
    let report = fleet.backends().await;
    assert_eq!(report["routes"][0]["balancing"], "latency");
    assert!(backend(&report, "a")["latency_ms"].as_f64().unwrap() >= 100.0, "{report}");
}

#[tokio::test]
async fn a_provider_idle_limit_ends_a_silent_stream() {
    // The mock's `stream-5-1000`: five words a second apart; the provider allows 300 ms of silence.
    let routes = "  - { model: m, backends: [{ provider: a, model: stream-5-1000 }] }";
    let fleet = Fleet::start_with(1, ", timeouts: { idle_ms: 300 }", routes).await;
    let response = fleet.ask(&client(), "m", true).await;
    let events = sse_data(&response.text());
    let last: serde_json::Value = serde_json::from_str(events.last().unwrap()).unwrap();
    assert!(last["error"]["message"].as_str().unwrap().contains("stalled"), "{events:?}");
}

#[tokio::test]
async fn a_provider_total_limit_cuts_a_long_stream() {
    // Twenty words 100 ms apart take 2 s; the provider allows an attempt 500 ms in all.
    let routes = "  - { model: m, backends: [{ provider: a, model: stream-20-100 }] }";
    let fleet = Fleet::start_with(1, ", timeouts: { total_ms: 500 }", routes).await;
    let response = fleet.ask(&client(), "m", true).await;
    let events = sse_data(&response.text());
    let last: serde_json::Value = serde_json::from_str(events.last().unwrap()).unwrap();
    assert!(last["error"]["message"].as_str().unwrap().contains("time limit"), "{events:?}");
    assert!(events.len() > 2, "the stream had started: {events:?}");
}
