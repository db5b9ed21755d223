//! OAuth2 access tokens for Vertex AI (a service account's JWT bearer grant) and Entra ID
//! (client credentials), against the token mock (`tests/mock-providers/src/oauth.rs`): one
//! token for many requests, a refresh once it is due (the mock sets the lifetime, so nothing
//! sleeps), a refused key or secret as a clear 502 naming the provider, and neither the key nor a
//! token in the gateway's log.

pub mod support;

use serde_json::json;
use support::*;
use switchboard_mock_providers::oauth::{TEST_SERVICE_ACCOUNT, WRONG_SERVICE_ACCOUNT};
use switchboard_mock_providers::{
    AnthropicMock, AnthropicOptions, GeminiMock, GeminiOptions, TokenMock, TokenOptions,
};

const KEY: &str = "sk-cloud-client";

fn fixture(name: &str) -> String {
    repo_root().join("tests/mock-providers/fixtures").join(name).display().to_string()
}

fn vertex_gateway(gemini: &GeminiMock, token: &TokenMock, key_file: &str) -> Gateway {
    let config = format!(
        "version: 2
providers:
  - name: vertex-upstream
    type: vertex
    project: mock-project
    location: us-central1
    base_url: {}/v1
    token_url: {}/token
    service_account: {{ file: {} }}
    allow_private_network: true
    timeout_ms: 5000
routes:
  - model: chat
    backends: [{{ provider: vertex-upstream, model: gemini-mock }}]
keys:
  - id: client
    hash: {}
",
        gemini.vertex_base_url(),
        token.base_url(),
        fixture(key_file),
        hash_key(KEY)
    );
    Gateway::start(Some(&config), &["--log-level", "debug"])
}

async fn chat(gateway: &Gateway) -> TestResponse {
    let body = json!({"model": "chat", "messages": [{"role": "user", "content": "hi"}]});
    send(
        "POST",
        &gateway.url("/v1/chat/completions"),
        &[("authorization", &format!("Bearer {KEY}"))],
        body.to_string(),
    )
    .await
}

#[expect(clippy::unwrap_used, reason = "test setup")]
async fn mocks(tokens: TokenOptions) -> (GeminiMock, TokenMock) {
    let gemini = GeminiMock::start(([127, 0, 0, 1], 0).into(), GeminiOptions::default()).await.unwrap();
    let token = TokenMock::start(([127, 0, 0, 1], 0).into(), tokens).await.unwrap();
    (gemini, token)
}

#[tokio::test]
async fn one_token_serves_many_requests_even_concurrent_ones() {
    let (gemini, token) = mocks(TokenOptions::default()).await;
    let gateway = vertex_gateway(&gemini, &token, "test-only-service-account.json");
    let responses = futures_join(8, || chat(&gateway)).await;
    for response in &responses {
        assert_eq!(response.status, 200, "{}", response.text());
    }
    for _ in 0..4 {
        assert_eq!(chat(&gateway).await.status, 200);
    }
    assert_eq!(token.google_tokens_issued(), 1, "one refresh shared by concurrent requests, then cached");
    let request = gemini.last_request().unwrap_or_else(|| unreachable!("the mock saw requests"));
    assert_eq!(
        request.path,
        "/v1/projects/mock-project/locations/us-central1/publishers/google/models/gemini-mock:generateContent"
    );
    assert_eq!(request.header("authorization"), Some("Bearer ya29.mock-access-token"));
}

#[tokio::test]
async fn a_due_token_is_refreshed() {
    // Tokens that expire at once: every request needs a new one.
    let (gemini, token) = mocks(TokenOptions { expires_in: 0, ..TokenOptions::default() }).await;
    let gateway = vertex_gateway(&gemini, &token, "test-only-service-account.json");
    assert_eq!(chat(&gateway).await.status, 200);
    assert_eq!(chat(&gateway).await.status, 200);
    assert_eq!(token.google_tokens_issued(), 2);
    // An hour-long token: refreshed once more, then cached.
    token.set_expires_in(3599);
    for _ in 0..3 {
        assert_eq!(chat(&gateway).await.status, 200);
    }
    assert_eq!(token.google_tokens_issued(), 3);
}

#[tokio::test]
async fn a_refused_key_is_a_clear_502_and_secrets_stay_out_of_the_log() {
    let (gemini, token) = mocks(TokenOptions::default()).await;
    let gateway = vertex_gateway(&gemini, &token, "test-only-service-account-wrong.json");
    let response = chat(&gateway).await;
    assert_eq!(response.status, 502, "{}", response.text());
    let message = response.json()["error"]["message"].as_str().unwrap_or_default().to_owned();
    assert!(message.contains("vertex-upstream") && message.contains("access token"), "{message}");
    assert_eq!(gemini.requests(), 0, "no request went out without a token");
    assert_eq!(token.google_tokens_issued(), 0);
    let log = gateway.log();
    assert!(log.contains("invalid_grant"), "the log says why: {log}");

    // A good key: the token is fetched and used, and still never logged.
    let gateway = vertex_gateway(&gemini, &token, "test-only-service-account.json");
    assert_eq!(chat(&gateway).await.status, 200);
    let log = gateway.log();
    for (name, key) in [("good", TEST_SERVICE_ACCOUNT), ("wrong", WRONG_SERVICE_ACCOUNT)] {
        let value: serde_json::Value = serde_json::from_str(key).unwrap_or_default();
        let pem = value["private_key"].as_str().unwrap_or_default();
        // Any line of the key's base64 body.
        for line in pem.lines().filter(|l| !l.starts_with("-----")).take(5) {
            assert!(!log.contains(line), "the {name} key is in the log");
        }
    }
    assert!(!log.contains("ya29.mock-access-token"), "the token is in the log:\n{log}");
}

#[tokio::test]
async fn a_token_the_upstream_refuses_is_not_reused() {
    let gemini = GeminiMock::start(
        ([127, 0, 0, 1], 0).into(),
        GeminiOptions { access_token: "ya29.another-token".into(), ..GeminiOptions::default() },
    )
    .await
    .unwrap_or_else(|_| unreachable!());
    let token = TokenMock::start(([127, 0, 0, 1], 0).into(), TokenOptions::default())
        .await
        .unwrap_or_else(|_| unreachable!());
    let gateway = vertex_gateway(&gemini, &token, "test-only-service-account.json");
    assert_eq!(chat(&gateway).await.status, 502);
    assert_eq!(chat(&gateway).await.status, 502);
    assert_eq!(token.google_tokens_issued(), 2, "a 401 drops the cached token");
}

#[tokio::test]
async fn entra_client_credentials_for_foundry_and_a_wrong_secret() {
    let options = AnthropicOptions {
        azure_auth: true,
        path_prefix: "/anthropic".into(),
        ..AnthropicOptions::default()
    };
    let anthropic =
        AnthropicMock::start(([127, 0, 0, 1], 0).into(), options).await.unwrap_or_else(|_| unreachable!());
    let tokens =
        TokenOptions { entra_access_token: AnthropicOptions::default().api_key, ..TokenOptions::default() };
    let token =
        TokenMock::start(([127, 0, 0, 1], 0).into(), tokens.clone()).await.unwrap_or_else(|_| unreachable!());
    let gateway_with = |secret: &str| {
        let config = format!(
            "version: 2
providers:
  - name: foundry
    type: anthropic
    base_url: {}/v1
    entra:
      tenant_id: {tenant}
      client_id: {}
      client_secret: {{ value: {secret} }}
      token_url: {}/{tenant}/oauth2/v2.0/token
    allow_private_network: true
    timeout_ms: 5000
routes:
  - model: chat
    backends: [{{ provider: foundry, model: claude-mock }}]
keys:
  - id: client
    hash: {}
",
            anthropic.base_url(),
            tokens.client_id,
            token.base_url(),
            hash_key(KEY),
            tenant = tokens.tenant_id,
        );
        Gateway::start(Some(&config), &["--log-level", "debug"])
    };
    let gateway = gateway_with(&tokens.client_secret);
    for _ in 0..3 {
        let response = chat(&gateway).await;
        assert_eq!(response.status, 200, "{}", response.text());
    }
    assert_eq!(token.entra_tokens_issued(), 1);
    let request = anthropic.last_request().unwrap_or_else(|| unreachable!("the mock saw requests"));
    assert_eq!(request.path, "/anthropic/v1/messages");
    assert_eq!(request.header("x-api-key"), None, "no key: the token is the credential");
    let form = token.last_request().map(|r| r.body.to_string()).unwrap_or_default();
    assert!(form.contains("grant_type=client_credentials"), "{form}");
    assert!(form.contains("scope=https%3A%2F%2Fcognitiveservices.azure.com%2F.default"), "{form}");

    let gateway = gateway_with("not-the-secret");
    let response = chat(&gateway).await;
    assert_eq!(response.status, 502, "{}", response.text());
    assert!(response.text().contains("foundry"), "{}", response.text());
    assert!(!response.text().contains("not-the-secret"));
    let log = gateway.log();
    assert!(log.contains("invalid_client"), "{log}");
    assert!(!log.contains("not-the-secret") && !log.contains(&tokens.entra_access_token), "{log}");
}

/// `n` copies of a request, in flight at the same time (polled together on this task).
async fn futures_join<F: Future<Output = TestResponse>>(n: usize, make: impl Fn() -> F) -> Vec<TestResponse> {
    let mut pending: Vec<_> = (0..n).map(|_| Box::pin(make())).collect();
    let mut done: Vec<Option<TestResponse>> = (0..n).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        for (future, slot) in pending.iter_mut().zip(done.iter_mut()) {
            if slot.is_none()
                && let std::task::Poll::Ready(response) = future.as_mut().poll(cx)
            {
                *slot = Some(response);
            }
        }
        if done.iter().all(Option::is_some) { std::task::Poll::Ready(()) } else { std::task::Poll::Pending }
    })
    .await;
    done.into_iter().flatten().collect()
}
