//! The gateway's source seam, as the operator's stream will use it: a pushed snapshot value goes
//! through `prepare` (per-object acceptance, compile) and `apply`, which reports what it applied
//! (generation, hash, rejected entries with their objects) or refuses an older generation.

#![expect(clippy::unwrap_used, reason = "tests: a failed step fails the test")]

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;
use switchboard_config::{Origin, Snapshot};
use switchboard_gateway::edge::{Edge, EdgeLimits};
use switchboard_gateway::metrics::Metrics;
use switchboard_gateway::reload::{Input, apply, prepare};
use switchboard_gateway::table::{CompileContext, TableHolder};
use switchboard_gateway::{Gateway, Settings};

const PLANTED: &str = "sk-upstream-planted-93c1";

fn gateway(ctx: &CompileContext) -> Gateway {
    Gateway {
        tables: TableHolder::default(),
        metrics: ctx.metrics.clone(),
        state: ctx.state.clone(),
        settings: Settings { follows_operator: true },
        edge: Edge::new(
            EdgeLimits {
                max_body_bytes: 1024,
                max_in_flight: 10,
                max_buffered_body_bytes: 10 * 1024,
                request_deadline: Duration::from_secs(10),
            },
            ctx.metrics.clone(),
        ),
        limits: Default::default(),
        conversations: switchboard_gateway::conversations::Store::in_memory(
            switchboard_gateway::conversations::StoreLimits {
                ttl: Duration::from_secs(60),
                memory_bytes: 1 << 20,
                max_conversation_bytes: 1 << 20,
            },
        ),
        telemetry: None,
        draining: AtomicBool::new(false),
    }
}

/// Two providers, one refused (the metadata endpoint), each with a route.
fn pushed(generation: u64) -> Snapshot {
    let source = |kind: &str, name: &str| serde_json::json!({ "kind": kind, "namespace": "ns", "name": name, "generation": 1 });
    serde_json::from_value(serde_json::json!({
        "version": 2,
        "generation": generation,
        "secrets": { "ns/openai/key": PLANTED },
        "providers": [
            { "type": "openai", "name": "ns/openai", "api_key": { "secret": "ns/openai/key" }, "source": source("LLMProvider", "openai") },
            { "type": "openai", "name": "ns/imds", "base_url": "http://169.254.169.254/v1", "source": source("LLMProvider", "imds") },
            { "type": "mock", "name": "ns/mock", "source": source("LLMProvider", "mock") },
        ],
        "routes": [
            { "model": "gpt-4o", "backends": [{ "provider": "ns/openai" }, { "provider": "ns/mock", "priority": 1 }], "source": source("ModelRoute", "gpt") },
            { "model": "steal-credentials", "backends": [{ "provider": "ns/imds" }], "source": source("ModelRoute", "imds") },
        ],
    }))
    .unwrap()
}

fn input(snapshot: Snapshot) -> Input {
    Input::Snapshot { snapshot: Box::new(snapshot), origin: Origin::Pushed }
}

#[test]
fn a_pushed_snapshot_serves_what_is_valid_and_reports_the_rest_by_object() {
    let ctx = CompileContext::new(Arc::new(Metrics::default()));
    let gateway = gateway(&ctx);
    let applied = apply(&gateway, prepare(input(pushed(3)), &ctx).unwrap()).unwrap();
    assert_eq!(applied.generation, 3);
    assert_eq!(applied.hash.len(), 12);
    let rejected: Vec<String> =
        applied.rejected.iter().map(|r| format!("{} {}", r.object.as_ref().unwrap(), r)).collect();
    assert_eq!(rejected.len(), 2, "{rejected:#?}");
    assert!(rejected[0].starts_with("LLMProvider ns/imds providers[1].base_url (LLMProvider ns/imds): host \"169.254.169.254\" is refused"), "{}", rejected[0]);
    assert!(rejected[1].starts_with("ModelRoute ns/imds routes[1].backends[0].provider"), "{}", rejected[1]);

    let table = gateway.tables.load().unwrap();
    assert!(table.route("gpt-4o").is_some(), "the route that does not use the refused provider serves");
    assert!(table.route("steal-credentials").is_none());
    assert!(!format!("{applied:?}").contains(PLANTED), "an ack never carries a secret");
}

#[test]
fn an_older_generation_is_refused_and_the_served_one_stays() {
    let ctx = CompileContext::new(Arc::new(Metrics::default()));
    let gateway = gateway(&ctx);
    apply(&gateway, prepare(input(pushed(5)), &ctx).unwrap()).unwrap();
    let stale = apply(&gateway, prepare(input(pushed(4)), &ctx).unwrap()).unwrap_err();
    assert_eq!((stale.served, stale.offered), (5, 4));
    assert_eq!(gateway.tables.load().unwrap().generation, 5);
    // The same generation again (a replayed push after a reconnect) is fine.
    assert!(apply(&gateway, prepare(input(pushed(5)), &ctx).unwrap()).is_ok());
}

#[test]
fn a_pushed_snapshot_cannot_make_the_gateway_read_its_environment_or_files() {
    let ctx = CompileContext::new(Arc::new(Metrics::default()));
    for credential in [serde_json::json!({ "env": "HOME" }), serde_json::json!({ "file": "/etc/hostname" })] {
        let mut snapshot = serde_json::to_value(pushed(1)).unwrap();
        snapshot["providers"][0]["api_key"] = credential;
        let snapshot: Snapshot = serde_json::from_value(snapshot).unwrap();
        let prepared = prepare(input(snapshot), &ctx).unwrap();
        let reasons: Vec<String> = prepared.rejected.iter().map(ToString::to_string).collect();
        assert!(reasons[0].contains("not allowed in a pushed snapshot"), "{reasons:?}");
        assert!(prepared.table.upstreams.iter().all(|u| &**u.name() != "ns/openai"));
        assert!(
            prepared.table.route("gpt-4o").is_none(),
            "a route on a rejected provider is left out with it"
        );
    }
}

#[tokio::test]
async fn snapshot_values_are_prepared_on_the_config_thread() {
    let ctx = CompileContext::new(Arc::new(Metrics::default()));
    let gateway = gateway(&ctx);
    let config_thread = switchboard_gateway::reload::ConfigThread::spawn(ctx).unwrap();
    let prepared = config_thread.prepare(input(pushed(9))).await.unwrap();
    assert_eq!(prepared.rejected.len(), 2);
    let applied = apply(&gateway, prepared).unwrap();
    assert_eq!(applied.generation, 9);
    // A document-level problem comes back as an error, and nothing is applied.
    let mut newer = pushed(10);
    newer.version = 3;
    assert!(config_thread.prepare(input(newer)).await.is_err());
    assert_eq!(gateway.tables.load().unwrap().generation, 9);
}
