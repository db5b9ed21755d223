//! An OAuth2 token endpoint mock for the two grants cloud providers use:
//!
//! - **Google's JWT bearer grant** (RFC 7523), `POST /token`: `grant_type=
//!   urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=<JWT>`. The JWT must be RS256, signed
//!   by [`TokenOptions::google_key`] (its public half verifies; a key signed by any other key is
//!   refused), with `iss` = [`TokenOptions::client_email`], `aud` = [`TokenOptions::audience`],
//!   a `scope` containing `cloud-platform`, `exp` in the future and at most one hour after `iat`.
//!   <https://developers.google.com/identity/protocols/oauth2/service-account#authorizingrequests>
//!   Refusals are Google's: 400 `{"error":"invalid_grant","error_description":…}`.
//! - **Microsoft Entra ID's client-credentials grant**, `POST /{tenant}/oauth2/v2.0/token`:
//!   `grant_type=client_credentials&client_id&client_secret&scope` (`scope` ending in
//!   `/.default`). <https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow>
//!   Refusals are Entra's: 401 `invalid_client` (AADSTS7000215), 400 `invalid_request` for an
//!   unknown tenant (AADSTS90002), 400 `invalid_scope` (AADSTS1002012).
//!
//! Answers are `{"access_token","expires_in","token_type":"Bearer"}`; `expires_in` can be
//! changed while the mock runs ([`TokenMock::set_expires_in`]), so a test makes a token due for
//! refresh without sleeping. Each grant's issued tokens are counted.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use hyper::Response;
use ring::signature::{KeyPair, RSA_PKCS1_2048_8192_SHA256, RsaKeyPair, UnparsedPublicKey};
use rustls_pki_types::PrivatePkcs8KeyDer;
use rustls_pki_types::pem::PemObject;

use crate::RecordedRequest;
use crate::body::MockBody;
use crate::server::{Provider, Req, Running};

/// The test-only service account key the mock accepts by default (`fixtures/`).
pub const TEST_SERVICE_ACCOUNT: &str = include_str!("../fixtures/test-only-service-account.json");
/// Another test-only key: JWTs it signs are refused by a default mock.
pub const WRONG_SERVICE_ACCOUNT: &str = include_str!("../fixtures/test-only-service-account-wrong.json");

/// Options of a [`TokenMock`].
#[derive(Debug, Clone)]
pub struct TokenOptions {
    /// The service account key (Google's JSON) whose signatures are accepted. Default
    /// [`TEST_SERVICE_ACCOUNT`].
    pub google_key: String,
    /// The JWT's required `iss`. Default: the key's `client_email`.
    pub client_email: String,
    /// The JWT's required `aud`. Default `https://oauth2.googleapis.com/token` (the key's `token_uri`).
    pub audience: String,
    /// The token Google's grant returns. Default `ya29.mock-access-token` (what the Vertex mock takes).
    pub google_access_token: String,
    /// Entra: the only tenant, client and secret accepted.
    pub tenant_id: String,
    pub client_id: String,
    pub client_secret: String,
    /// The token Entra's grant returns. Default `entra.mock-access-token`.
    pub entra_access_token: String,
    /// `expires_in` of the first answers (seconds). Default 3599, as both services answer.
    pub expires_in: u64,
}

impl Default for TokenOptions {
    fn default() -> Self {
        let email = serde_json::from_str::<serde_json::Value>(TEST_SERVICE_ACCOUNT)
            .ok()
            .and_then(|v| v["client_email"].as_str().map(str::to_owned))
            .unwrap_or_default();
        TokenOptions {
            google_key: TEST_SERVICE_ACCOUNT.to_owned(),
            client_email: email,
            audience: "https://oauth2.googleapis.com/token".to_owned(),
            google_access_token: "ya29.mock-access-token".to_owned(),
            tenant_id: "00000000-0000-4000-8000-000000000001".to_owned(),
            client_id: "00000000-0000-4000-8000-000000000002".to_owned(),
            client_secret: "entra-mock-client-secret".to_owned(),
            entra_access_token: "entra.mock-access-token".to_owned(),
            expires_in: 3599,
        }
    }
}

/// A running token endpoint; dropping it stops the server.
#[derive(Debug)]
pub struct TokenMock {
    running: Running,
    state: Arc<State>,
}

#[derive(Debug)]
struct State {
    expires_in: AtomicU64,
    google_issued: AtomicU64,
    entra_issued: AtomicU64,
}

impl TokenMock {
    /// Binds `bind` (port 0 for any free port) and serves on the current tokio runtime.
    pub async fn start(bind: SocketAddr, options: TokenOptions) -> std::io::Result<TokenMock> {
        let public_key = public_key(&options.google_key)
            .ok_or_else(|| std::io::Error::other("TokenOptions::google_key holds no RSA PKCS#8 key"))?;
        let state = Arc::new(State {
            expires_in: AtomicU64::new(options.expires_in),
            google_issued: AtomicU64::new(0),
            entra_issued: AtomicU64::new(0),
        });
        let endpoint = Endpoint { options, public_key, state: Arc::clone(&state) };
        Ok(TokenMock { running: Running::start(bind, endpoint).await?, state })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.running.addr
    }

    /// `http://<addr>`: Google's endpoint is `<base>/token`, Entra's `<base>/{tenant}/oauth2/v2.0/token`.
    pub fn base_url(&self) -> String {
        self.running.origin()
    }

    /// The `expires_in` of the next answers (0 makes every token due for refresh at once).
    pub fn set_expires_in(&self, seconds: u64) {
        self.state.expires_in.store(seconds, Ordering::Relaxed);
    }

    /// Tokens issued through Google's grant so far.
    pub fn google_tokens_issued(&self) -> u64 {
        self.state.google_issued.load(Ordering::Relaxed)
    }

    /// Tokens issued through Entra's grant so far.
    pub fn entra_tokens_issued(&self) -> u64 {
        self.state.entra_issued.load(Ordering::Relaxed)
    }

    /// Requests received so far, refused ones included.
    pub fn requests(&self) -> u64 {
        self.running.requests()
    }

    /// The last request received (its body is the form as a JSON string).
    pub fn last_request(&self) -> Option<RecordedRequest> {
        self.running.last_request()
    }
}

/// The public half of a service account key, as ring verifies with it (PKCS#1 RSAPublicKey).
fn public_key(key_json: &str) -> Option<Vec<u8>> {
    let value: serde_json::Value = serde_json::from_str(key_json).ok()?;
    let der = PrivatePkcs8KeyDer::from_pem_slice(value["private_key"].as_str()?.as_bytes()).ok()?;
    let pair = RsaKeyPair::from_pkcs8(der.secret_pkcs8_der()).ok()?;
    Some(pair.public_key().as_ref().to_vec())
}

#[derive(Debug)]
struct Endpoint {
    options: TokenOptions,
    public_key: Vec<u8>,
    state: Arc<State>,
}

impl Provider for Endpoint {
    fn max_body_bytes(&self) -> usize {
        64 * 1024
    }

    fn too_large(&self, _number: u64) -> Response<MockBody> {
        oauth_error(413, "invalid_request", "Request too large.")
    }

    fn handle(&self, req: Req) -> Response<MockBody> {
        if req.method != hyper::Method::POST {
            return oauth_error(405, "invalid_request", "Only POST is served.");
        }
        if !req.header("content-type").is_some_and(|t| t.starts_with("application/x-www-form-urlencoded")) {
            return oauth_error(
                400,
                "invalid_request",
                "The request body must be application/x-www-form-urlencoded.",
            );
        }
        let form = parse_form(&req.body);
        let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        if req.path == "/token" {
            return self.google(field("grant_type"), field("assertion"));
        }
        let tenant = req.path.strip_prefix('/').and_then(|p| p.strip_suffix("/oauth2/v2.0/token"));
        match tenant {
            Some(tenant) => self.entra(tenant, &field),
            None => oauth_error(404, "invalid_request", "Not found."),
        }
    }
}

impl Endpoint {
    fn google(&self, grant_type: Option<&str>, assertion: Option<&str>) -> Response<MockBody> {
        if grant_type != Some("urn:ietf:params:oauth:grant-type:jwt-bearer") {
            let shown = grant_type.unwrap_or("");
            return oauth_error(400, "unsupported_grant_type", &format!("Invalid grant_type: {shown}"));
        }
        let Some(assertion) = assertion else {
            return oauth_error(400, "invalid_request", "Missing required parameter: assertion");
        };
        if let Err(description) = self.verify(assertion) {
            return oauth_error(400, "invalid_grant", description);
        }
        self.state.google_issued.fetch_add(1, Ordering::Relaxed);
        self.issue(&self.options.google_access_token)
    }

    /// Google's checks, with its descriptions.
    fn verify(&self, jwt: &str) -> Result<(), &'static str> {
        let mut parts = jwt.split('.');
        let (Some(header), Some(claims), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err("Invalid JWT: Token must be a short-lived token and in a reasonable timeframe");
        };
        let decode = |part: &str| base64url_decode(part).ok_or("Invalid JWT: bad base64url encoding");
        let header: serde_json::Value =
            serde_json::from_slice(&decode(header)?).map_err(|_| "Invalid JWT header")?;
        if header["alg"] != "RS256" {
            return Err("Invalid JWT: the algorithm must be RS256");
        }
        let signed = &jwt[..jwt.rfind('.').unwrap_or(0)];
        UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, &self.public_key)
            .verify(signed.as_bytes(), &decode(signature)?)
            .map_err(|_| "Invalid JWT Signature.")?;
        let claims: serde_json::Value =
            serde_json::from_slice(&decode(claims)?).map_err(|_| "Invalid JWT claims")?;
        if claims["iss"].as_str() != Some(self.options.client_email.as_str()) {
            return Err("Invalid JWT: the issuer is not the service account");
        }
        if claims["aud"].as_str() != Some(self.options.audience.as_str()) {
            return Err("Invalid JWT: Failed audience check.");
        }
        if !claims["scope"]
            .as_str()
            .is_some_and(|s| s.split(' ').any(|s| s.ends_with("/auth/cloud-platform")))
        {
            return Err("Invalid OAuth scope or ID token audience provided.");
        }
        let now =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let (Some(iat), Some(exp)) = (claims["iat"].as_u64(), claims["exp"].as_u64()) else {
            return Err("Invalid JWT: iat and exp are required");
        };
        if exp <= now || iat > now + 60 || exp.saturating_sub(iat) > 3600 {
            return Err(
                "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.",
            );
        }
        Ok(())
    }

    fn entra<'a>(&self, tenant: &str, field: &impl Fn(&str) -> Option<&'a str>) -> Response<MockBody> {
        let o = &self.options;
        if tenant != o.tenant_id {
            return oauth_error(
                400,
                "invalid_request",
                &format!(
                    "AADSTS90002: Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID."
                ),
            );
        }
        if field("grant_type") != Some("client_credentials") {
            return oauth_error(
                400,
                "unsupported_grant_type",
                "AADSTS70003: The app requested an unsupported grant type.",
            );
        }
        if field("client_id") != Some(o.client_id.as_str()) {
            return oauth_error(
                400,
                "unauthorized_client",
                "AADSTS700016: Application not found in the directory.",
            );
        }
        if field("client_secret") != Some(o.client_secret.as_str()) {
            return oauth_error(
                401,
                "invalid_client",
                "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.",
            );
        }
        if !field("scope").is_some_and(|s| s.ends_with("/.default")) {
            return oauth_error(
                400,
                "invalid_scope",
                "AADSTS1002012: The provided value for scope is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier.",
            );
        }
        self.state.entra_issued.fetch_add(1, Ordering::Relaxed);
        self.issue(&o.entra_access_token)
    }

    fn issue(&self, token: &str) -> Response<MockBody> {
        let expires_in = self.state.expires_in.load(Ordering::Relaxed);
        let body =
            serde_json::json!({"access_token": token, "expires_in": expires_in, "token_type": "Bearer"});
        respond(200, &body)
    }
}

/// RFC 6749 §5.2's error answer.
fn oauth_error(code: u16, error: &str, description: &str) -> Response<MockBody> {
    respond(code, &serde_json::json!({"error": error, "error_description": description}))
}

fn respond(code: u16, body: &serde_json::Value) -> Response<MockBody> {
    let mut response = Response::new(MockBody::full(body.to_string()));
    *response.status_mut() = hyper::StatusCode::from_u16(code).unwrap_or(hyper::StatusCode::BAD_REQUEST);
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json; charset=utf-8"),
    );
    response
}

/// `application/x-www-form-urlencoded` fields, percent- and `+`-decoded.
fn parse_form(body: &[u8]) -> Vec<(String, String)> {
    let decode = |text: &str| {
        let bytes = text.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
            match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
                (b'+', _) => out.push(b' '),
                (b'%', Some(byte)) => {
                    out.push(byte);
                    i += 2;
                }
                (byte, _) => out.push(byte),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    String::from_utf8_lossy(body)
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (decode(k), decode(v))
        })
        .collect()
}

/// Base64url with or without padding.
fn base64url_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.trim_end_matches('=').bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        };
        acc = acc << 6 | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes() {
        assert_eq!(base64url_decode("Zm9vYmE").as_deref(), Some(&b"fooba"[..]));
        assert_eq!(base64url_decode("-_8").as_deref(), Some(&[0xfb, 0xff][..]));
        assert_eq!(
            parse_form(b"a=x%20y+z&b=%2F"),
            vec![("a".into(), "x y z".into()), ("b".into(), "/".into())]
        );
    }
}
