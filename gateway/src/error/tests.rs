//! The error edge's tests (apart, to keep error.rs readable).

use super::*;
use std::sync::Arc;

fn upstream(status: u16, body: &str) -> GatewayError {
    GatewayError::Upstream(UpstreamError {
        provider: Arc::from("p"),
        kind: UpstreamErrorKind::Status {
            status: StatusCode::from_u16(status).unwrap(),
            body: Bytes::from(body.to_owned()),
            retry_after: None,
        },
    })
}

#[test]
fn statuses_follow_the_contract() {
    let cases: Vec<(GatewayError, u16)> = vec![
        (GatewayError::BadRequest { message: "x".into(), param: None }, 400),
        (GatewayError::MissingKey, 401),
        (GatewayError::InvalidKey, 401),
        (GatewayError::KeyExpired, 401),
        (GatewayError::ModelNotAllowed { model: "m".into() }, 403),
        (GatewayError::UnknownModel { model: "m".into() }, 404),
        (GatewayError::BodyTooLarge { limit: 1 }, 413),
        (upstream(503, "{}"), 502),
        (
            upstream(529, r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#),
            503,
        ),
        (upstream(401, r#"{"error":{"message":"bad key sk-..."}}"#), 502),
        (upstream(400, r#"{"error":{"message":"context too long"}}"#), 400),
        (upstream(400, r#"{"object":"error","message":"bad","type":"BadRequestError","code":400}"#), 400),
        (upstream(422, "not json"), 422),
        (
            upstream(
                503,
                r#"{"error":{"code":503,"message":"The model is overloaded.","status":"UNAVAILABLE"}}"#,
            ),
            503,
        ),
        (upstream(400, r#"{"error":{"code":400,"message":"bad","status":"INVALID_ARGUMENT"}}"#), 400),
        (upstream(429, "{}"), 429),
        (
            GatewayError::Upstream(UpstreamError {
                provider: Arc::from("p"),
                kind: UpstreamErrorKind::Timeout(Duration::from_secs(1)),
            }),
            504,
        ),
        (GatewayError::Overloaded(Overload::InFlight), 503),
        (GatewayError::Overloaded(Overload::BufferedBytes), 503),
        (GatewayError::DeadlineExceeded { deadline: Duration::from_secs(1) }, 504),
    ];
    for (err, status) in cases {
        let rendered = err.render();
        assert_eq!(rendered.status.as_u16(), status, "{err:?}");
        let body: serde_json::Value = serde_json::from_slice(&rendered.body(Dialect::OpenAi)).unwrap();
        let error = &body["error"];
        assert!(error["message"].is_string() && error["type"].is_string(), "{body}");
        assert!(error.get("param").is_some() && error.get("code").is_some(), "{body}");
    }
}

#[test]
fn clients_are_not_told_network_details() {
    let err = GatewayError::Upstream(UpstreamError {
        provider: Arc::from("p"),
        kind: UpstreamErrorKind::Connect("tcp connect error: 10.0.3.7:8000: Connection refused".into()),
    });
    let body = String::from_utf8(err.render().body(Dialect::OpenAi).to_vec()).unwrap();
    assert!(body.contains(r#"provider \"p\" is unreachable"#) && !body.contains("10.0.3.7"), "{body}");
    assert!(err.to_string().contains("10.0.3.7"), "the log line keeps the detail");
}

#[test]
fn log_lines_never_carry_upstream_bodies() {
    let err = upstream(401, r#"{"error":{"message":"Incorrect API key provided: sk-abc"}}"#);
    assert_eq!(err.to_string(), r#"provider "p" answered with status 401"#);
}

#[test]
fn upstream_credential_errors_are_not_forwarded() {
    let rendered = upstream(401, r#"{"error":{"message":"Incorrect API key provided: sk-abc"}}"#).render();
    assert!(!String::from_utf8_lossy(&rendered.body(Dialect::OpenAi)).contains("sk-abc"));
}
