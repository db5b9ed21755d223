//! Hot reload under load: the config file is replaced 200 times, valid and invalid alternating,
//! while clients keep sending requests.

pub mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use support::*;

const KEY: &str = "sk-reload";

/// Version `n` answers every request with the reply `version-<n>`.
fn valid(n: usize) -> String {
    format!(
        "version: 1\ngeneration: {n}\nproviders:\n  - name: mock\n    type: mock\n    reply: version-{n}\nroutes:\n  - model: m\n    backends: [{{provider: mock}}]\nkeys:\n  - name: k\n    hash: {}\n",
        hash_key(KEY)
    )
}

/// Three kinds of broken file: bad YAML, an unknown field, a dangling reference.
fn invalid(n: usize) -> String {
    match n % 3 {
        0 => format!("version: 1\nproviders: [ {{ name: mock, type: mock \n# broken {n}\n"),
        1 => format!("{}wieght: {n}\n", valid(n)),
        _ => valid(n).replace("{provider: mock}", "{provider: opnai}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_reloads_under_load_drop_nothing() {
    let gateway = Gateway::start(Some(&valid(1000)), &[]);
    let url = gateway.url("/v1/chat/completions");
    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(AtomicU64::new(0));
    let requests = Arc::new(AtomicU64::new(0));
    // The highest version any client has seen answer (versions only go up).
    let newest_seen = Arc::new(AtomicU64::new(0));
    let mut clients = Vec::new();
    for _ in 0..3 {
        let (url, stop, failures, requests, newest_seen) =
            (url.clone(), stop.clone(), failures.clone(), requests.clone(), newest_seen.clone());
        clients.push(tokio::spawn(async move {
            let client = client();
            let body = r#"{"model":"m","messages":[{"role":"user","content":"which version?"}]}"#;
            while !stop.load(Ordering::Relaxed) {
                let response = send_with(&client, "POST", &url, &[("x-api-key", KEY)], body).await;
                requests.fetch_add(1, Ordering::Relaxed);
                if response.status != 200 {
                    failures.fetch_add(1, Ordering::Relaxed);
                    eprintln!("failed: {} {}", response.status, response.text());
                    continue;
                }
                let reply = response.json()["choices"][0]["message"]["content"].as_str().unwrap().to_owned();
                let version: u64 = reply.strip_prefix("version-").unwrap().parse().unwrap();
                newest_seen.fetch_max(version, Ordering::Relaxed);
            }
        }));
    }

    let mut observed_valid = 0;
    for step in 0..200 {
        let n = 1001 + step / 2;
        if step % 2 == 0 {
            gateway.replace_config(&valid(n));
            let seen =
                eventually(Duration::from_secs(5), async || newest_seen.load(Ordering::Relaxed) == n as u64)
                    .await;
            assert!(
                seen,
                "version {n} was never observed serving (newest {})",
                newest_seen.load(Ordering::Relaxed)
            );
            observed_valid += 1;
        } else {
            gateway.replace_config(&invalid(n));
            let expected = (step / 2 + 1) as f64;
            let rejected = eventually(Duration::from_secs(5), async || {
                gateway.metric("switchboard_config_reload_failures_total").await >= expected
            })
            .await;
            assert!(rejected, "invalid version {n} was not rejected");
            // The broken file changed nothing: the last valid version still answers.
            assert_eq!(newest_seen.load(Ordering::Relaxed), n as u64);
        }
    }
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.await.unwrap();
    }

    assert_eq!(observed_valid, 100);
    assert_eq!(failures.load(Ordering::Relaxed), 0, "requests failed during reloads");
    assert!(requests.load(Ordering::Relaxed) > 200, "the clients kept sending");
    assert_eq!(gateway.metric("switchboard_config_reloads_total").await, 100.0);
    assert_eq!(gateway.metric("switchboard_config_reload_failures_total").await, 100.0);
    assert_eq!(gateway.metric("switchboard_config_generation").await, 1100.0);
    let log = gateway.log();
    assert!(log.contains(r#"routes[0].backends[0].provider: unknown provider "opnai""#), "{log}");
    assert!(log.contains("wieght"), "unknown fields are named in the log");
}

/// How long an event-driven reload may take: well under the 5 s safety-net poll, so a change
/// that only the poll would find fails the test instead of passing late.
const EVENT_BOUND: Duration = Duration::from_secs(3);

/// Generous bounds for what must happen (a failure, not a pass, costs the wait).
const STARTUP_BOUND: Duration = Duration::from_secs(10);

const CHECKS: &str = "switchboard_config_checks_total";
const RELOADS: &str = "switchboard_config_reloads_total";

/// Waits for the watcher's first look: from then on, its directory watches are in place.
async fn watching(gateway: &Gateway) {
    let looked = gateway.metric_reaches(CHECKS, 1.0, STARTUP_BOUND).await;
    assert!(looked.is_some(), "the watcher never looked:\n{}", gateway.log());
}

#[tokio::test]
async fn a_kubernetes_configmap_update_is_followed() {
    let volume = KubeVolume::new(&[("gateway.yaml", &valid(1))]);
    let config = volume.path("gateway.yaml");
    let gateway = Gateway::start(None, &["--config", config.to_str().unwrap()]);
    let reply = async || {
        let body = r#"{"model":"m","messages":[{"role":"user","content":"?"}]}"#;
        let response = send("POST", &gateway.url("/v1/chat/completions"), &[("x-api-key", KEY)], body).await;
        response.json()["choices"][0]["message"]["content"].as_str().unwrap().to_owned()
    };
    assert_eq!(reply().await, "version-1");
    watching(&gateway).await;
    volume.update(&[("gateway.yaml", &valid(2))]);
    let reloaded = gateway.metric_reaches(RELOADS, 1.0, EVENT_BOUND).await;
    assert!(reloaded.is_some(), "the ..data swap was not followed:\n{}", gateway.log());
    assert_eq!(reply().await, "version-2");
    assert_eq!(gateway.metric("switchboard_config_generation").await, 2.0);
}

/// A config whose provider reads its key from `key_file`.
fn with_key_file(base_url: &str, key_file: &std::path::Path) -> String {
    format!(
        "version: 1\nproviders:\n  - name: up\n    type: openai\n    base_url: {base_url}\n    api_key: {{ file: {} }}\nroutes:\n  - model: m\n    backends: [{{provider: up}}]\nkeys:\n  - name: k\n    hash: {}\n",
        key_file.display(),
        hash_key(KEY)
    )
}

/// The `authorization` header the upstream received for one chat request.
#[expect(clippy::unwrap_used, reason = "test helper: no request recorded fails the test")]
async fn upstream_auth(gateway: &Gateway, mock: &switchboard_mock_upstream::MockUpstream) -> String {
    let body = r#"{"model":"m","messages":[{"role":"user","content":"?"}]}"#;
    let response = send("POST", &gateway.url("/v1/chat/completions"), &[("x-api-key", KEY)], body).await;
    assert_eq!(response.status, 200, "{}", response.text());
    mock.last_request().unwrap().header("authorization").unwrap_or_default().to_owned()
}

#[tokio::test]
async fn a_rotated_credential_file_is_picked_up_without_a_config_change() {
    let mock = switchboard_mock_upstream::MockUpstream::start(([127, 0, 0, 1], 0).into()).await.unwrap();
    // The key is a mounted Secret in a directory of its own: a rotation swaps `..data` there,
    // and the config file does not change.
    let secret = KubeVolume::new(&[("openai-key", "sk-first\n")]);
    let gateway = Gateway::start(Some(&with_key_file(&mock.base_url(), &secret.path("openai-key"))), &[]);
    assert_eq!(upstream_auth(&gateway, &mock).await, "Bearer sk-first");
    watching(&gateway).await;
    secret.update(&[("openai-key", "sk-second\n")]);
    let reloaded = gateway.metric_reaches(RELOADS, 1.0, EVENT_BOUND).await;
    assert_eq!(reloaded, Some(1.0), "the rotation was not noticed at once:\n{}", gateway.log());
    assert_eq!(upstream_auth(&gateway, &mock).await, "Bearer sk-second");
}

#[tokio::test]
async fn a_credential_directory_named_by_a_reloaded_config_is_watched_too() {
    let mock = switchboard_mock_upstream::MockUpstream::start(([127, 0, 0, 1], 0).into()).await.unwrap();
    let first = KubeVolume::new(&[("openai-key", "sk-first\n")]);
    let second = KubeVolume::new(&[("openai-key", "sk-second\n")]);
    let gateway = Gateway::start(Some(&with_key_file(&mock.base_url(), &first.path("openai-key"))), &[]);
    watching(&gateway).await;
    gateway.replace_config(&with_key_file(&mock.base_url(), &second.path("openai-key")));
    let reloaded = gateway.metric_reaches(RELOADS, 1.0, EVENT_BOUND).await;
    assert_eq!(reloaded, Some(1.0), "the new config was not applied:\n{}", gateway.log());
    assert_eq!(upstream_auth(&gateway, &mock).await, "Bearer sk-second");
    second.update(&[("openai-key", "sk-rotated\n")]);
    let rotated = gateway.metric_reaches(RELOADS, 2.0, EVENT_BOUND).await;
    assert_eq!(rotated, Some(2.0), "a rotation in the new directory was not noticed:\n{}", gateway.log());
    assert_eq!(upstream_auth(&gateway, &mock).await, "Bearer sk-rotated");
}

/// Each directory event costs one look (not zero, not two), and a change no event announces is
/// found by the safety-net poll. That the gateway's own reads never count as events (a looping
/// watcher) is `reload::tests::a_looks_own_reads_are_not_changes`: a count here cannot show it,
/// since the 25 ms debounce merges a looping watcher's next look with the test's next event.
#[tokio::test]
async fn directory_events_cost_one_look_each_and_the_poll_finds_the_rest() {
    // The config sits alone in its directory (the gateway's log is written elsewhere), so the
    // only events there are the test's.
    let watched = TempDir::new();
    let elsewhere = TempDir::new();
    let config = watched.0.join("gateway.yaml");
    std::fs::write(&config, valid(1)).unwrap();
    // A second name for the config in a directory nobody watches: writing through it changes the
    // file without an event the gateway sees.
    let hidden_name = elsewhere.0.join("gateway.yaml");
    std::fs::hard_link(&config, &hidden_name).unwrap();
    let gateway = Gateway::start(None, &["--config", config.to_str().unwrap()]);

    let mut looks = 1.0;
    assert_eq!(gateway.metric_reaches(CHECKS, looks, STARTUP_BOUND).await, Some(looks), "the first look");
    for n in 0..3 {
        // One directory event per step (a file renamed in: a single inotify event, so the
        // debounce cannot split it into two looks), and each look is waited for (the counter
        // moves once the look has read the files) before the next event.
        let staged = elsewhere.0.join("unrelated");
        std::fs::write(&staged, "not the config").unwrap();
        std::fs::rename(&staged, watched.0.join(format!("unrelated-{n}"))).unwrap();
        looks += 1.0;
        assert_eq!(gateway.metric_reaches(CHECKS, looks, EVENT_BOUND).await, Some(looks), "step {n}");
    }
    // Nothing will announce this change: only the poll, 5 s after the last look, can find it.
    std::fs::write(&hidden_name, valid(2)).unwrap();
    let polled = gateway.metric_reaches(RELOADS, 1.0, Duration::from_secs(20)).await;
    assert_eq!(polled, Some(1.0), "the safety-net poll did not find the change:\n{}", gateway.log());
    assert_eq!(gateway.metric(CHECKS).await, looks + 1.0, "one look for the poll");
    assert_eq!(gateway.metric("switchboard_config_generation").await, 2.0);
}
