//! Stored responses on a standalone replica (no Redis: this replica's memory): a conversation
//! continues with `previous_response_id`, and one over `--responses-max-conversation-bytes` is
//! refused when continued, never cut silently.

pub mod support;

use support::*;

const DEV_KEY: &str = "sk-switchboard-dev";

#[tokio::test]
async fn a_conversation_over_the_size_limit_is_refused_when_continued() {
    let gateway = Gateway::start(None, &["--responses-max-conversation-bytes", "2000"]);
    let auth = [bearer(DEV_KEY)];
    let headers = [(auth[0].0, auth[0].1.as_str())];
    let post = |body: String| {
        let url = gateway.url("/v1/responses");
        async move { send("POST", &url, &headers, body).await }
    };
    let short = post(r#"{"model":"mock","input":"Hello there"}"#.to_owned()).await;
    assert_eq!(short.status, 200, "{}", short.text());
    let id = short.json()["id"].as_str().unwrap().to_owned();
    let next = post(format!(r#"{{"model":"mock","input":"Go on","previous_response_id":"{id}"}}"#)).await;
    assert_eq!(next.status, 200, "a short conversation continues in memory: {}", next.text());
    assert_eq!(next.json()["output"][0]["content"][0]["text"], "Mock response to: Go on");

    let long = post(format!(r#"{{"model":"mock","input":"{}"}}"#, "word ".repeat(500))).await;
    assert_eq!(long.status, 200, "{}", long.text());
    let id = long.json()["id"].as_str().unwrap().to_owned();
    let refused = post(format!(r#"{{"model":"mock","input":"Go on","previous_response_id":"{id}"}}"#)).await;
    let error = refused.error(400);
    assert_eq!(error["code"], "conversation_too_large", "{error}");
    assert_eq!(error["param"], "previous_response_id");
    let unknown =
        post(r#"{"model":"mock","input":"Go on","previous_response_id":"resp_nope"}"#.to_owned()).await;
    assert_eq!(unknown.error(400)["code"], "previous_response_not_found");
}
