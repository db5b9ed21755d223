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

#[tokio::test]
async fn a_kubernetes_configmap_update_is_followed() {
    // A ConfigMap volume: gateway.yaml -> ..data/gateway.yaml, ..data -> ..<timestamp>/; an
    // update writes a new timestamped directory and renames a new ..data symlink over the old.
    let dir = TempDir::new();
    let mount = &dir.0;
    let write_version = |n: usize| {
        let version_dir = mount.join(format!("..2026_11_24_{n}"));
        std::fs::create_dir(&version_dir).unwrap();
        std::fs::write(version_dir.join("gateway.yaml"), valid(n)).unwrap();
        let tmp_link = mount.join("..data_tmp");
        std::os::unix::fs::symlink(version_dir.file_name().unwrap(), &tmp_link).unwrap();
        std::fs::rename(&tmp_link, mount.join("..data")).unwrap();
    };
    write_version(1);
    std::os::unix::fs::symlink("..data/gateway.yaml", mount.join("gateway.yaml")).unwrap();

    let gateway = Gateway::start(None, &["--config", mount.join("gateway.yaml").to_str().unwrap()]);
    let reply = async || {
        let body = r#"{"model":"m","messages":[{"role":"user","content":"?"}]}"#;
        let response = send("POST", &gateway.url("/v1/chat/completions"), &[("x-api-key", KEY)], body).await;
        response.json()["choices"][0]["message"]["content"].as_str().unwrap().to_owned()
    };
    assert_eq!(reply().await, "version-1");
    write_version(2);
    assert!(eventually(Duration::from_secs(5), async || reply().await == "version-2").await);
    assert_eq!(gateway.metric("switchboard_config_generation").await, 2.0);
}

#[tokio::test]
async fn a_rotated_credential_file_is_picked_up_without_a_config_change() {
    let mock = switchboard_mock_upstream::MockUpstream::start(([127, 0, 0, 1], 0).into()).await.unwrap();
    // The key lives elsewhere, as a mounted Secret does: only the periodic look notices it.
    let secrets = TempDir::new();
    let key_file = secrets.0.join("openai-key");
    std::fs::write(&key_file, "sk-first\n").unwrap();
    let config = format!(
        "version: 1\nproviders:\n  - name: up\n    type: openai\n    base_url: {}\n    api_key: {{ file: {} }}\nroutes:\n  - model: m\n    backends: [{{provider: up}}]\nkeys:\n  - name: k\n    hash: {}\n",
        mock.base_url(),
        key_file.display(),
        hash_key(KEY)
    );
    let gateway = Gateway::start(Some(&config), &[]);
    let body = r#"{"model":"m","messages":[{"role":"user","content":"?"}]}"#;
    let upstream_auth = async || {
        let response = send("POST", &gateway.url("/v1/chat/completions"), &[("x-api-key", KEY)], body).await;
        assert_eq!(response.status, 200, "{}", response.text());
        mock.last_request().unwrap().header("authorization").unwrap_or_default().to_owned()
    };
    assert_eq!(upstream_auth().await, "Bearer sk-first");
    // Past the watcher's first look, so the change is found by a periodic one.
    tokio::time::sleep(Duration::from_millis(300)).await;
    std::fs::write(&key_file, "sk-second\n").unwrap();
    assert!(eventually(Duration::from_secs(8), async || upstream_auth().await == "Bearer sk-second").await);
    assert_eq!(gateway.metric("switchboard_config_reloads_total").await, 1.0);
}

#[tokio::test]
async fn an_unchanged_file_is_not_reread_in_a_loop() {
    // Reading the file is itself a filesystem event; the watcher must not react to its own reads.
    let gateway = Gateway::start(Some(&valid(1)), &[]);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let before = gateway.metric("switchboard_config_checks_total").await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let after = gateway.metric("switchboard_config_checks_total").await;
    assert!(after - before <= 1.0, "{} looks at an unchanged file in one second", after - before);
}
