//! Bedrock's instance of the conformance suite, against `tests/mock-bedrock/server.py` (a
//! subprocess: SigV4 is verified there by botocore, an implementation independent of the
//! `aws-sigv4` crate the gateway signs with), plus what only Bedrock has: the model id's
//! encoding in the path, web identity (IRSA) through STS, and a signature the service refuses.

use super::*;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

const ACCESS_KEY: &str = "AKIAMOCKBEDROCK00001";
const SECRET_KEY: &str = "mock/bedrock/secret/key/0000000000000000";
const REGION: &str = "eu-west-3";

/// The Python mock, killed when dropped (and, with `--exit-with-stdin`, gone if this process dies).
pub(super) struct BedrockMock {
    child: Child,
    pub(super) base_url: String,
}

impl Drop for BedrockMock {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[expect(clippy::unwrap_used, clippy::panic, reason = "test setup: a mock that cannot start fails the test")]
fn start_mock(extra: &[&str]) -> BedrockMock {
    let python = std::env::var("SWITCHBOARD_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let script = repo_root().join("tests/mock-bedrock/server.py");
    let mut child = Command::new(&python)
        .arg(&script)
        .args([
            "--exit-with-stdin",
            "--access-key",
            ACCESS_KEY,
            "--secret-key",
            SECRET_KEY,
            "--region",
            REGION,
        ])
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {python}: {e}; run scripts/test, which provisions boto3"));
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let Some(address) = line.trim().strip_prefix("listening bedrock=") else {
        panic!("the Bedrock mock did not start (SWITCHBOARD_PYTHON={python} needs botocore): {line:?}");
    };
    BedrockMock { base_url: format!("http://{address}"), child }
}

async fn start_bedrock() -> (BedrockMock, String) {
    let mock = start_mock(&[]);
    let base_url = mock.base_url.clone();
    (mock, base_url)
}

fn bedrock_provider(base_url: &str, credentials: &str) -> String {
    format!(
        "  - name: upstream\n    type: bedrock\n    region: {REGION}\n    base_url: {base_url}\n    credentials: {credentials}\n    allow_private_network: true\n    timeout_ms: 5000\n"
    )
}

fn static_credentials(secret: &str) -> String {
    format!("{{ access_key_id: {{ value: {ACCESS_KEY} }}, secret_access_key: {{ value: \"{secret}\" }} }}")
}

const BEDROCK: Dialect = Dialect {
    provider: |base_url| bedrock_provider(base_url, &static_credentials(SECRET_KEY)),
    // Model ids carry a `:` (`anthropic.claude-3-haiku-20240307-v1:0`), which the path encodes
    // and SigV4's canonical path encodes once more: every case goes through that.
    model: |behaviour| match behaviour {
        Behaviour::Text => "mock.claude-v1:0".into(),
        Behaviour::Tool => "mock.claude-v1:0-tool".into(),
        Behaviour::ParallelTools => "mock.claude-v1:0-parallel-tools".into(),
        Behaviour::Cache => "mock.claude-v1:0-cache".into(),
        Behaviour::Malformed => "mock.claude-v1:0-malformed".into(),
        Behaviour::MidstreamError => "mock.claude-v1:0-midstream-error".into(),
        Behaviour::Disconnect => "mock.claude-v1:0-disconnect".into(),
        // Bedrock has no 401: a key or signature it refuses is a 403 (`AccessDeniedException`,
        // `UnrecognizedClientException`), which the gateway reads as its own credential problem.
        Behaviour::Status(401) => "error-403".into(),
        // Nor 529: "overloaded, retry later" is 503 `ServiceUnavailableException`, which the
        // case's expectation (503 to the client) then covers.
        Behaviour::Status(529) => "error-503".into(),
        Behaviour::Status(status) => format!("error-{status}"),
    },
    // Tool input arrives in pieces of 3, 4, 5, 3... characters.
    argument_pieces: 3,
};

// The mock's `-cache` models read 2048 prompt tokens from the cache. Bedrock sends no
// `Retry-After` with a 429, so the client gets none.
conformance!(bedrock, BEDROCK, start_bedrock(), cache_read = 2048, retry_after = None);

#[tokio::test]
async fn the_model_id_is_one_encoded_path_segment_and_the_body_is_signed() {
    let (mock, base_url) = start_bedrock().await;
    let gateway = gateway(&BEDROCK, &base_url);
    let response = chat(&gateway, json!({"model": "text", "messages": user("hi"), "stream": true})).await;
    assert_eq!(response.status, 200, "{}", response.text());
    let (chunks, _) = chunks(&response);
    let id = chunks[0]["id"].as_str().unwrap_or_default();
    assert!(id.starts_with("chatcmpl-") && id.len() > "chatcmpl-".len() + 8, "AWS's request id: {id}");
    let seen = send("GET", &format!("{}/_mock/last-request", mock.base_url), &[], "").await.json();
    let whole = chat(&gateway, json!({"model": "text", "messages": user("hi")})).await.json();
    assert_eq!(whole["model"], "mock.claude-v1:0", "the model called: {whole}");
    assert_ne!(whole["id"].as_str(), Some(id), "one id per answer");
    assert_eq!(seen["path"], "/model/mock.claude-v1%3A0/converse-stream");
    let authorization = seen["headers"]["authorization"].as_str().unwrap_or_default();
    assert!(
        authorization.starts_with(&format!("AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/")),
        "{authorization}"
    );
    assert!(authorization.contains(&format!("/{REGION}/bedrock/aws4_request")), "{authorization}");
    assert!(!gateway.log().contains(SECRET_KEY), "the secret is never logged");
}

#[tokio::test]
async fn a_wrong_secret_is_an_upstream_auth_error() {
    let (_mock, base_url) = start_bedrock().await;
    let wrong = Dialect {
        provider: |base_url| {
            bedrock_provider(base_url, &static_credentials("not/the/secret/0000000000000000000000"))
        },
        ..BEDROCK
    };
    let gateway = gateway(&wrong, &base_url);
    let response = chat(&gateway, json!({"model": "text", "messages": user("hi")})).await;
    assert_eq!(response.status, 502, "{}", response.text());
    let error = response.error(502);
    let message = error["message"].as_str().unwrap_or_default();
    assert!(message.contains("refused the gateway's credentials"), "{error}");
    assert_eq!(error["code"], "upstream_auth_error");
    // AWS's message quotes the canonical request and string to sign: it stays upstream.
    assert!(!response.text().contains("canonical"), "{}", response.text());
}

const IRSA_TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.mock-service-account-token.sig";

/// A gateway whose provider takes web identity keys from the mock's STS, with `token` in the
/// token file its environment names (no environment at all with `None`).
fn irsa_gateway(mock: &BedrockMock, token: Option<&str>) -> (Gateway, TempDir) {
    let dir = TempDir::new();
    let token_file = dir.0.join("token");
    std::fs::write(&token_file, format!("{}\n", token.unwrap_or_default())).unwrap_or_default();
    let provider =
        bedrock_provider(&mock.base_url, &format!("{{ web_identity: {{ sts_url: {} }} }}", mock.base_url));
    let config = format!(
        "version: 2\nproviders:\n{provider}routes:\n  - model: text\n    backends: [{{ provider: upstream, model: \"mock.claude-v1:0\" }}]\nkeys:\n  - id: client\n    hash: {}\n",
        hash_key(KEY)
    );
    let token_path = token_file.display().to_string();
    let env = [
        ("AWS_WEB_IDENTITY_TOKEN_FILE", token_path.as_str()),
        ("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/switchboard"),
    ];
    let env: &[(&str, &str)] = if token.is_some() { &env } else { &[] };
    (Gateway::start_with_env(Some(&config), &[], env), dir)
}

#[tokio::test]
async fn web_identity_credentials_come_from_sts_once_and_sign_requests() {
    let mock = start_mock(&["--web-identity-token", IRSA_TOKEN]);
    let (gateway, _dir) = irsa_gateway(&mock, Some(IRSA_TOKEN));
    for stream in [false, true, false] {
        let response =
            chat(&gateway, json!({"model": "text", "messages": user("hi"), "stream": stream})).await;
        assert_eq!(response.status, 200, "{}\n{}", response.text(), gateway.log());
    }
    let requests = send("GET", &format!("{}/_mock/requests", mock.base_url), &[], "").await.json();
    assert_eq!(requests["sts"], 1, "one exchange, then the cached keys: {requests}");
    let seen = send("GET", &format!("{}/_mock/last-request", mock.base_url), &[], "").await.json();
    let authorization = seen["headers"]["authorization"].as_str().unwrap_or_default();
    assert!(authorization.contains("Credential=ASIA"), "temporary keys: {authorization}");
    assert!(seen["headers"]["x-amz-security-token"].is_string());
}

#[tokio::test]
async fn web_identity_failures_are_upstream_auth_errors_and_the_config_still_serves() {
    let mock = start_mock(&["--web-identity-token", IRSA_TOKEN]);
    // STS refuses the token; then a gateway without IRSA in its environment.
    for token in [Some("not-the-token"), None] {
        let (gateway, _dir) = irsa_gateway(&mock, token);
        let response = chat(&gateway, json!({"model": "text", "messages": user("hi")})).await;
        assert_eq!(response.status, 502, "{token:?}: {}", response.text());
        assert_eq!(response.error(502)["code"], "upstream_auth_error", "{token:?}");
        let expected = if token.is_some() { "InvalidIdentityToken" } else { "AWS_WEB_IDENTITY_TOKEN_FILE" };
        assert!(gateway.log().contains(expected), "{token:?}: the log says why:\n{}", gateway.log());
        assert!(!gateway.log().contains("not-the-token"), "the token is never logged");
    }
}

#[tokio::test]
async fn model_failures_are_the_gateways_and_a_missing_model_is_the_clients() {
    let (_mock, base_url) = start_bedrock().await;
    let routes: String = ["error-424", "error-408", "error-404"]
        .iter()
        .map(|m| format!("  - model: {m}\n    backends: [{{ provider: upstream, model: {m} }}]\n"))
        .collect();
    let config = format!(
        "version: 2\nproviders:\n{}routes:\n{routes}keys:\n  - id: client\n    hash: {}\n",
        (BEDROCK.provider)(&base_url),
        hash_key(KEY)
    );
    let gateway = Gateway::start(Some(&config), &[]);
    // ModelErrorException (424) and ModelTimeoutException (408): the model failed, not the request.
    for (model, status) in [("error-424", 502), ("error-408", 502), ("error-404", 404)] {
        let response = chat(&gateway, json!({"model": model, "messages": user("hi")})).await;
        assert_eq!(response.status, status, "{model}: {}", response.text());
    }
    let response = chat(&gateway, json!({"model": "error-404", "messages": user("hi")})).await;
    assert_eq!(response.error(404)["code"], "ResourceNotFoundException", "{}", response.text());
}

/// The acceptance check of `tests/py/translated_tool_calls.py` through Bedrock: the official
/// OpenAI Python SDK streams a tool call, gets parseable arguments, `tool_calls` and the usage of
/// the same request answered whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openai_python_sdk_streams_a_tool_call_through_bedrock() {
    let (_mock, base_url) = start_bedrock().await;
    let config = format!(
        "version: 2\nproviders:\n{}routes:\n  - model: bedrock\n    backends: [{{ provider: upstream, model: \"mock.claude-v1:0-tool\" }}]\nkeys:\n  - id: client\n    hash: {}\n",
        (BEDROCK.provider)(&base_url),
        hash_key(KEY)
    );
    let gateway = Gateway::start(Some(&config), &[]);
    let python = std::env::var("SWITCHBOARD_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let script = repo_root().join("tests/py/translated_tool_calls.py");
    let output = tokio::process::Command::new(&python)
        .arg(&script)
        .args(["--base-url", &gateway.url("/v1"), "--key", KEY, "--models", "bedrock"])
        .output()
        .await
        .unwrap_or_else(|e| panic!("cannot run {python}: {e}; run scripts/test"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("translated tool calls ok"),
        "{stdout}\n{}\ngateway log:\n{}",
        String::from_utf8_lossy(&output.stderr),
        gateway.log()
    );
}
