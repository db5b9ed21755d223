//! The token mock: Google's JWT bearer grant (signature, issuer, audience, scope, lifetime) and
//! Entra ID's client-credentials grant, each refused the way the real service refuses.

use crate::client::send;
use ring::rand::SystemRandom;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use rustls_pki_types::PrivatePkcs8KeyDer;
use rustls_pki_types::pem::PemObject;
use serde_json::{Value, json};
use switchboard_mock_providers::oauth::{TEST_SERVICE_ACCOUNT, WRONG_SERVICE_ACCOUNT};
use switchboard_mock_providers::{TokenMock, TokenOptions};

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

fn b64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(char::from(A[(n >> (18 - 6 * i) & 63) as usize]));
        }
    }
    out
}

/// A JWT with `claims`, signed by the key in the service account JSON `key`.
fn jwt(key: &str, claims: &Value) -> String {
    let key: Value = serde_json::from_str(key).unwrap();
    let der = PrivatePkcs8KeyDer::from_pem_slice(key["private_key"].as_str().unwrap().as_bytes()).unwrap();
    let pair = RsaKeyPair::from_pkcs8(der.secret_pkcs8_der()).unwrap();
    let signed = format!("{}.{}", b64(br#"{"alg":"RS256","typ":"JWT"}"#), b64(claims.to_string().as_bytes()));
    let mut signature = vec![0; pair.public().modulus_len()];
    pair.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), signed.as_bytes(), &mut signature).unwrap();
    format!("{signed}.{}", b64(&signature))
}

fn claims() -> Value {
    let o = TokenOptions::default();
    json!({"iss": o.client_email, "scope": "https://www.googleapis.com/auth/cloud-platform",
        "aud": o.audience, "iat": now(), "exp": now() + 3600})
}

async fn google(mock: &TokenMock, assertion: &str) -> (u16, Value) {
    let body =
        format!("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion={assertion}");
    let resp = send(
        mock.addr(),
        "POST",
        "/token",
        &[("content-type", "application/x-www-form-urlencoded")],
        body.as_bytes(),
    )
    .await;
    (resp.status.as_u16(), resp.json())
}

#[tokio::test]
async fn the_jwt_bearer_grant_checks_what_google_checks() {
    let mock = TokenMock::start(([127, 0, 0, 1], 0).into(), TokenOptions::default()).await.unwrap();
    let (status, body) = google(&mock, &jwt(TEST_SERVICE_ACCOUNT, &claims())).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["access_token"], "ya29.mock-access-token");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3599);
    mock.set_expires_in(0);
    assert_eq!(google(&mock, &jwt(TEST_SERVICE_ACCOUNT, &claims())).await.1["expires_in"], 0);
    assert_eq!(mock.google_tokens_issued(), 2);

    let refused = |mut changed: Value, field: &str, value: Value| {
        changed[field] = value;
        changed
    };
    let cases = [
        (jwt(WRONG_SERVICE_ACCOUNT, &claims()), "Invalid JWT Signature."),
        (
            jwt(TEST_SERVICE_ACCOUNT, &refused(claims(), "aud", json!("https://elsewhere/token"))),
            "Failed audience check",
        ),
        (jwt(TEST_SERVICE_ACCOUNT, &refused(claims(), "iss", json!("someone@else"))), "issuer"),
        (
            jwt(
                TEST_SERVICE_ACCOUNT,
                &refused(claims(), "scope", json!("https://www.googleapis.com/auth/drive")),
            ),
            "scope",
        ),
        (jwt(TEST_SERVICE_ACCOUNT, &refused(claims(), "exp", json!(now() - 10))), "short-lived"),
        (jwt(TEST_SERVICE_ACCOUNT, &refused(claims(), "exp", json!(now() + 7200))), "short-lived"),
        ("not.a-jwt".to_owned(), "Invalid JWT"),
    ];
    for (assertion, fragment) in cases {
        let (status, body) = google(&mock, &assertion).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["error"], "invalid_grant", "{body}");
        assert!(body["error_description"].as_str().unwrap().contains(fragment), "{fragment}: {body}");
    }
    assert_eq!(mock.google_tokens_issued(), 2);
}

#[tokio::test]
async fn the_client_credentials_grant_checks_what_entra_checks() {
    let o = TokenOptions::default();
    let mock = TokenMock::start(([127, 0, 0, 1], 0).into(), o.clone()).await.unwrap();
    let form = |tenant: &str, secret: &str, scope: &str| {
        let body = format!(
            "grant_type=client_credentials&client_id={}&client_secret={secret}&scope={scope}",
            o.client_id
        );
        (format!("/{tenant}/oauth2/v2.0/token"), body)
    };
    let scope = "https%3A%2F%2Fcognitiveservices.azure.com%2F.default";
    let cases = [
        (form(&o.tenant_id, &o.client_secret, scope), 200, ""),
        (form(&o.tenant_id, "wrong", scope), 401, "invalid_client"),
        (form("other-tenant", &o.client_secret, scope), 400, "invalid_request"),
        (
            form(&o.tenant_id, &o.client_secret, "https%3A%2F%2Fcognitiveservices.azure.com"),
            400,
            "invalid_scope",
        ),
    ];
    for ((path, body), status, error) in cases {
        let resp = send(
            mock.addr(),
            "POST",
            &path,
            &[("content-type", "application/x-www-form-urlencoded")],
            body.as_bytes(),
        )
        .await;
        assert_eq!(resp.status.as_u16(), status, "{}", resp.text());
        if status == 200 {
            assert_eq!(resp.json()["access_token"], "entra.mock-access-token");
        } else {
            assert_eq!(resp.json()["error"], error, "{}", resp.text());
        }
    }
    assert_eq!(mock.entra_tokens_issued(), 1);
}
