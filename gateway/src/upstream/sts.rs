//! Web identity (IRSA) credentials: the pod's service-account token exchanged at STS
//! (`AssumeRoleWithWebIdentity`) for temporary keys, cached and refreshed before they expire.
//! <https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRoleWithWebIdentity.html>
//!
//! The token file and the role come from the gateway's own environment (`AWS_WEB_IDENTITY_TOKEN_FILE`,
//! `AWS_ROLE_ARN`, `AWS_ROLE_SESSION_NAME`, as EKS sets them), never from the config: whoever
//! writes a provider must not be able to make the gateway read a file. The file is read at every
//! exchange, since the kubelet rotates the token.
//!
//! Fresh keys are an `ArcSwap` load (no lock on the request path). Within [`REFRESH_BEFORE`] of
//! their expiry, one request refreshes them while the others go on with the current keys; once
//! they have expired, requests wait for that one refresh instead of each asking STS.

use super::HttpClient;
use super::exec::describe_client_error;
use arc_swap::ArcSwapOption;
use aws_credential_types::Credentials as AwsKeys;
use bytes::Bytes;
use http::{Method, Request, Uri};
use http_body_util::{BodyExt, Full, Limited};
use std::fmt::Write;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Refresh this long before the keys expire (the AWS SDKs' window is 5 minutes too).
const REFRESH_BEFORE: Duration = Duration::from_secs(300);
/// The most of an STS answer read.
const MAX_ANSWER_BYTES: usize = 64 * 1024;
const DEFAULT_SESSION_NAME: &str = "switchboard-gateway";

/// The role and token file of the gateway's environment.
pub struct WebIdentityEnv {
    pub token_file: String,
    pub role_arn: String,
    pub session_name: String,
}

impl WebIdentityEnv {
    /// Reads the variables EKS sets for a pod with IRSA.
    pub fn from_process() -> Result<Self, String> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let token_file = var("AWS_WEB_IDENTITY_TOKEN_FILE")
            .ok_or("web_identity needs AWS_WEB_IDENTITY_TOKEN_FILE in the gateway's environment")?;
        let role_arn =
            var("AWS_ROLE_ARN").ok_or("web_identity needs AWS_ROLE_ARN in the gateway's environment")?;
        let session_name = var("AWS_ROLE_SESSION_NAME").unwrap_or_else(|| DEFAULT_SESSION_NAME.to_owned());
        Ok(WebIdentityEnv { token_file, role_arn, session_name })
    }
}

struct Cached {
    keys: AwsKeys,
    expires: SystemTime,
}

pub struct WebIdentity {
    /// Missing variables are reported by each request that needs keys, not by the config's
    /// compile: a pushed snapshot that every replica validates must not be refused whole by
    /// the one replica that runs without IRSA.
    env: Result<WebIdentityEnv, String>,
    sts: Uri,
    client: HttpClient,
    timeout: Duration,
    current: ArcSwapOption<Cached>,
    /// Held by the one refresh in flight.
    refreshing: tokio::sync::Mutex<()>,
}

impl WebIdentity {
    pub fn new(env: Result<WebIdentityEnv, String>, sts: Uri, client: HttpClient, timeout: Duration) -> Self {
        WebIdentity {
            env,
            sts,
            client,
            timeout,
            current: ArcSwapOption::empty(),
            refreshing: tokio::sync::Mutex::new(()),
        }
    }

    /// Keys valid now, from the cache or from STS.
    pub async fn keys(&self) -> Result<AwsKeys, String> {
        let now = SystemTime::now();
        if let Some(cached) = self.current.load_full() {
            if cached.expires > now + REFRESH_BEFORE {
                return Ok(cached.keys.clone());
            }
            if cached.expires > now {
                // Due for a refresh but still valid: one request refreshes, the rest go on.
                let Ok(_refreshing) = self.refreshing.try_lock() else { return Ok(cached.keys.clone()) };
                return match self.exchange().await {
                    Ok(fresh) => Ok(fresh),
                    Err(err) => {
                        tracing::warn!(error = %err, "refreshing web identity credentials failed; the current ones are still valid");
                        Ok(cached.keys.clone())
                    }
                };
            }
        }
        let _refreshing = self.refreshing.lock().await;
        // Another request may have refreshed while this one waited.
        if let Some(cached) = self.current.load_full()
            && cached.expires > SystemTime::now() + REFRESH_BEFORE
        {
            return Ok(cached.keys.clone());
        }
        self.exchange().await
    }

    /// One `AssumeRoleWithWebIdentity` call; the keys are cached.
    async fn exchange(&self) -> Result<AwsKeys, String> {
        let env = self.env.as_ref().map_err(Clone::clone)?;
        let token = tokio::fs::read_to_string(&env.token_file)
            .await
            .map_err(|err| format!("reading the web identity token file: {err}"))?;
        let mut form = String::from("Action=AssumeRoleWithWebIdentity&Version=2011-06-15");
        for (name, value) in [
            ("RoleArn", env.role_arn.as_str()),
            ("RoleSessionName", env.session_name.as_str()),
            ("WebIdentityToken", token.trim()),
        ] {
            form.push('&');
            form.push_str(name);
            form.push('=');
            form_encode(&mut form, value);
        }
        let mut request = Request::new(Full::new(Bytes::from(form)));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = self.sts.clone();
        request.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        let exchange = async {
            let response = self.client.request(request).await.map_err(|err| describe_client_error(&err))?;
            let status = response.status();
            let body = Limited::new(response.into_body(), MAX_ANSWER_BYTES)
                .collect()
                .await
                .map_err(|err| format!("reading the answer: {err}"))?
                .to_bytes();
            Ok::<_, String>((status, body))
        };
        let (status, body) = tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| "STS did not answer in time".to_owned())?
            .map_err(|err| format!("STS: {err}"))?;
        let text = String::from_utf8_lossy(&body);
        if !status.is_success() {
            // STS's error code and message say what is wrong (an expired token, a role that does
            // not trust the provider); they hold no secret.
            let code = xml_field(&text, "Code").unwrap_or_default();
            let message = xml_field(&text, "Message").unwrap_or_default();
            return Err(format!("STS refused AssumeRoleWithWebIdentity ({status}): {code} {message}"));
        }
        let cached = parse_credentials(&text)?;
        let keys = cached.keys.clone();
        self.current.store(Some(Arc::new(cached)));
        Ok(keys)
    }
}

/// The temporary keys of an `AssumeRoleWithWebIdentityResponse`.
fn parse_credentials(xml: &str) -> Result<Cached, String> {
    let field = |name: &str| xml_field(xml, name).ok_or_else(|| format!("STS answer without {name}"));
    let expiration = field("Expiration")?;
    let expires = switchboard_config::parse_rfc3339(&expiration)
        .ok()
        .and_then(|secs| u64::try_from(secs).ok())
        .map(|secs| UNIX_EPOCH + Duration::from_secs(secs))
        .ok_or_else(|| format!("STS answer with an unreadable Expiration {expiration:?}"))?;
    let keys = AwsKeys::new(
        field("AccessKeyId")?,
        field("SecretAccessKey")?,
        Some(field("SessionToken")?),
        Some(expires),
        "switchboard-web-identity",
    );
    Ok(Cached { keys, expires })
}

/// The text of the first `<name>…</name>` element, entities decoded. STS's answers are small,
/// flat and fixed in shape (`Credentials` holds four leaf elements), so a search for the element
/// is enough; an XML library would bring a parser for what these few fields need.
fn xml_field(xml: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let start = xml.find(&open)? + open.len();
    let end = start + xml[start..].find(&format!("</{name}>"))?;
    let raw = xml[start..end].trim();
    Some(
        raw.replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&amp;", "&"),
    )
}

/// Appends `value` form-encoded (`application/x-www-form-urlencoded`: unreserved characters
/// kept, everything else percent-encoded).
fn form_encode(out: &mut String, value: &str) {
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_documented_answer() {
        let xml = "<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">
          <AssumeRoleWithWebIdentityResult><Credentials>
            <SessionToken>AQoDYXdzE&amp;Pa</SessionToken><SecretAccessKey>wJalrXUtnFEMI/K7MDENG</SecretAccessKey>
            <Expiration>2014-10-24T23:00:23Z</Expiration><AccessKeyId>ASgeIAIOSFODNN7EXAMPLE</AccessKeyId>
          </Credentials></AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>";
        let cached = parse_credentials(xml).unwrap();
        assert_eq!(cached.keys.access_key_id(), "ASgeIAIOSFODNN7EXAMPLE");
        assert_eq!(cached.keys.session_token(), Some("AQoDYXdzE&Pa"));
        assert_eq!(cached.expires, UNIX_EPOCH + Duration::from_secs(1_414_191_623));
        assert!(!format!("{:?}", cached.keys).contains("wJalr"), "keys are redacted in Debug output");
        assert!(parse_credentials("<Error><Code>InvalidIdentityToken</Code></Error>").is_err());
        let mut form = String::new();
        form_encode(&mut form, "arn:aws:iam::1:role/a b+");
        assert_eq!(form, "arn%3Aaws%3Aiam%3A%3A1%3Arole%2Fa%20b%2B");
    }
}
