//! OAuth2 access tokens for providers that take them instead of a fixed key: Vertex AI (a
//! Google service account's JWT bearer grant, RFC 7523) and Azure (Microsoft Entra ID's
//! client-credentials grant). One [`TokenSource`] per provider caches the current token and
//! refreshes it before it expires.
//!
//! A request with a fresh token takes no lock: the token is an [`ArcSwapOption`] load. Only a
//! refresh takes the mutex, so requests that find the token due wait for one refresh together
//! instead of each asking the endpoint. Neither the secret nor a token ever reaches a log, an
//! error or a `Debug` output: header values are marked sensitive and errors name the provider.

use super::HttpClient;
use super::exec::describe_client_error;
use super::service_account::{CLOUD_PLATFORM_SCOPE, ServiceAccount};
use crate::error::{UpstreamError, UpstreamErrorKind};
use arc_swap::ArcSwapOption;
use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE};
use http::{HeaderValue, Method, Request, Uri};
use http_body_util::{BodyExt, Full, Limited};
use std::fmt::Write;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;
use tokio::time::{Instant, timeout};

/// Refresh this long before the token expires (or at half its lifetime, if that is shorter), so
/// a request never sets out with a token that lapses on the way.
const REFRESH_EARLY: Duration = Duration::from_secs(300);
/// A token endpoint's answer is a few hundred bytes.
const MAX_TOKEN_RESPONSE_BYTES: usize = 64 * 1024;

/// How the gateway proves who it is to the token endpoint.
pub enum Grant {
    /// A JWT signed with the service account's key (Google).
    JwtBearer(Box<ServiceAccount>),
    /// The application's id and secret (Microsoft Entra ID).
    ClientCredentials { client_id: String, client_secret: String, scope: String },
}

pub struct TokenSource {
    provider: Arc<str>,
    client: HttpClient,
    token_uri: Uri,
    grant: Grant,
    timeout: Duration,
    current: ArcSwapOption<Token>,
    /// Held only while fetching a token: one refresh at a time, shared by whoever waits.
    refresh: Mutex<()>,
    /// Tokens fetched so far, for the log line that says a refresh happened.
    fetched: std::sync::atomic::AtomicU64,
}

struct Token {
    /// `Bearer <token>`, marked sensitive.
    authorization: HeaderValue,
    refresh_at: Instant,
    expires_at: Instant,
}

impl TokenSource {
    pub fn new(
        provider: Arc<str>,
        client: HttpClient,
        token_uri: Uri,
        grant: Grant,
        timeout: Duration,
    ) -> Self {
        TokenSource {
            provider,
            client,
            token_uri,
            grant,
            timeout,
            current: ArcSwapOption::empty(),
            refresh: Mutex::new(()),
            fetched: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// The `Authorization` value for a request now: the cached token while it is fresh, else a
    /// new one. A failed refresh falls back to the old token while it has not expired.
    pub async fn authorization(&self) -> Result<HeaderValue, UpstreamError> {
        if let Some(token) = self.current.load().as_deref()
            && Instant::now() < token.refresh_at
        {
            return Ok(token.authorization.clone());
        }
        let _refreshing = self.refresh.lock().await;
        // Whoever held the lock before may have just refreshed it.
        let current = self.current.load_full();
        let now = Instant::now();
        if let Some(token) = current.as_deref()
            && now < token.refresh_at
        {
            return Ok(token.authorization.clone());
        }
        match self.fetch().await {
            Ok(token) => {
                let authorization = token.authorization.clone();
                self.current.store(Some(Arc::new(token)));
                let n = self.fetched.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                tracing::debug!(provider = %self.provider, tokens = n, "fetched an access token");
                Ok(authorization)
            }
            Err(reason) => match current.as_deref() {
                Some(token) if now < token.expires_at => {
                    tracing::warn!(provider = %self.provider, %reason, "token refresh failed; the current token is still valid");
                    Ok(token.authorization.clone())
                }
                _ => Err(UpstreamError {
                    provider: self.provider.clone(),
                    kind: UpstreamErrorKind::Token(reason),
                }),
            },
        }
    }

    /// Drops the cached token (the upstream refused it).
    pub fn forget(&self) {
        self.current.store(None);
    }

    /// One exchange with the token endpoint. The error is log-safe: the endpoint's error code and
    /// description, never the request (which holds the secret) or a token.
    async fn fetch(&self) -> Result<Token, String> {
        let form = match &self.grant {
            Grant::JwtBearer(account) => {
                let now = u64::try_from(crate::unix_now()).unwrap_or(0);
                let assertion = account.assertion(CLOUD_PLATFORM_SCOPE, now)?;
                form(&[
                    ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                    ("assertion", &assertion),
                ])
            }
            Grant::ClientCredentials { client_id, client_secret, scope } => form(&[
                ("grant_type", "client_credentials"),
                ("client_id", client_id),
                ("client_secret", client_secret),
                ("scope", scope),
            ]),
        };
        let mut request = Request::new(Full::new(Bytes::from(form)));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = self.token_uri.clone();
        let headers = request.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/x-www-form-urlencoded"));
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        let started = Instant::now();
        let exchange = async {
            let response = self.client.request(request).await.map_err(|err| {
                format!("the token endpoint is unreachable: {}", describe_client_error(&err))
            })?;
            let status = response.status();
            let body = Limited::new(response.into_body(), MAX_TOKEN_RESPONSE_BYTES)
                .collect()
                .await
                .map_err(|err| format!("reading the token endpoint's answer: {err}"))?
                .to_bytes();
            Ok::<_, String>((status, body))
        };
        let (status, body) = timeout(self.timeout, exchange).await.map_err(|_| {
            format!("the token endpoint did not answer within {} ms", self.timeout.as_millis())
        })??;
        let value: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        if !status.is_success() {
            return Err(refusal(status.as_u16(), &value));
        }
        let Some(token) = value.get("access_token").and_then(|v| v.as_str()).filter(|t| !t.is_empty()) else {
            return Err("the token endpoint's answer has no access_token".into());
        };
        // Entra's v1 endpoint writes the number as a string; an answer without one gets an hour.
        let lifetime = match value.get("expires_in") {
            Some(serde_json::Value::Number(n)) => n.as_u64(),
            Some(serde_json::Value::String(s)) => s.parse().ok(),
            _ => None,
        }
        .unwrap_or(3600);
        let lifetime = Duration::from_secs(lifetime.min(24 * 3600));
        let mut authorization = HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| "the access token is not a valid header value".to_owned())?;
        authorization.set_sensitive(true);
        Ok(Token {
            authorization,
            refresh_at: started + lifetime - REFRESH_EARLY.min(lifetime / 2),
            expires_at: started + lifetime,
        })
    }
}

/// What a token endpoint's refusal says, in RFC 6749 §5.2's terms (`error`,
/// `error_description`), cut short: enough to fix the configuration, and never the request.
fn refusal(status: u16, value: &serde_json::Value) -> String {
    let code = value.get("error").and_then(|v| v.as_str()).unwrap_or("no error code");
    let mut message = format!("the token endpoint refused the credentials ({status} {code})");
    if let Some(description) = value.get("error_description").and_then(|v| v.as_str()) {
        let cut: String = description.chars().filter(|c| !c.is_control()).take(200).collect();
        let _ = write!(message, ": {cut}");
    }
    message
}

/// `application/x-www-form-urlencoded` (the WHATWG form encoding: unreserved bytes kept, the
/// rest percent-encoded).
fn form(fields: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (name, value) in fields {
        if !out.is_empty() {
            out.push('&');
        }
        for (i, text) in [name, value].into_iter().enumerate() {
            if i == 1 {
                out.push('=');
            }
            for byte in text.bytes() {
                if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'*') {
                    out.push(char::from(byte));
                } else {
                    let _ = write!(out, "%{byte:02X}");
                }
            }
        }
    }
    out
}

/// A token endpoint URL, checked against the provider's address rule (the validator did so for
/// URLs it could see; a key read from a file at load time names its own).
pub fn token_uri(url: &str, rule: switchboard_config::AddressRule) -> Result<Uri, String> {
    let uri: Uri = url.parse().map_err(|err| format!("not a valid URL: {err}"))?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) {
        return Err("must start with http:// or https://".into());
    }
    let host = uri.host().ok_or("has no host")?;
    rule.check_host(host)?;
    Ok(uri)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_are_encoded() {
        assert_eq!(form(&[("a", "x y/z"), ("b", "é&=")]), "a=x%20y%2Fz&b=%C3%A9%26%3D");
    }

    #[test]
    fn refusals_are_short_and_name_the_code() {
        let value =
            serde_json::json!({"error": "invalid_grant", "error_description": "Invalid JWT Signature."});
        assert_eq!(
            refusal(400, &value),
            "the token endpoint refused the credentials (400 invalid_grant): Invalid JWT Signature."
        );
    }
}
