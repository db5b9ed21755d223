//! Provider credentials: read from the config when it is compiled, applied to every request.

use super::CompileError;
use super::oauth::TokenSource;
use crate::error::UpstreamError;
use http::header::AUTHORIZATION;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};
use std::sync::Arc;
use switchboard_config::{Credential, HeaderConfig, Secrets};

/// How a provider's requests are authenticated.
pub enum Credentials {
    /// Headers fixed when the config was compiled (API keys, configured extra headers), values
    /// marked sensitive.
    Static(Vec<(HeaderName, HeaderValue)>),
    /// Fixed headers plus an OAuth2 access token as `Authorization: Bearer`, cached and
    /// refreshed by `token` (Vertex AI, Entra ID); see `oauth.rs`.
    OAuth { fixed: Vec<(HeaderName, HeaderValue)>, token: Arc<TokenSource> },
    /// Fixed headers, then a SigV4 signature computed for each request (Bedrock): the headers
    /// are signed with the method, URI and body, so this runs last, just before sending.
    SigV4(Vec<(HeaderName, HeaderValue)>, super::sigv4::Signer),
}

/// Why a request could not be authenticated.
pub(super) enum CredentialFailure {
    /// No access token could be had (already an error naming the provider, never the secret).
    Token(UpstreamError),
    /// No signing key could be had (STS refused or unreachable); the reason names no secret.
    Signing(String),
}

impl Credentials {
    /// Authenticates one request: `method`, `uri` and `body` are what a signature covers.
    pub(super) async fn apply(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &mut HeaderMap,
        body: &[u8],
    ) -> Result<(), CredentialFailure> {
        let fixed = match self {
            Credentials::Static(fixed) | Credentials::OAuth { fixed, .. } | Credentials::SigV4(fixed, _) => {
                fixed
            }
        };
        for (name, value) in fixed {
            headers.insert(name.clone(), value.clone());
        }
        match self {
            Credentials::Static(_) => Ok(()),
            Credentials::OAuth { token, .. } => {
                headers.insert(AUTHORIZATION, token.authorization().await.map_err(CredentialFailure::Token)?);
                Ok(())
            }
            Credentials::SigV4(_, signer) => {
                signer.sign(method, uri, headers, body).await.map_err(CredentialFailure::Signing)
            }
        }
    }

    /// The upstream refused the credentials (401): a cached access token is dropped, so the next
    /// request gets a new one instead of retrying a revoked token for the rest of its life.
    pub(super) fn refused(&self) {
        if let Credentials::OAuth { token, .. } = self {
            token.forget();
        }
    }
}

/// Reads a credential now, so a missing one fails the reload rather than a request later.
pub(crate) fn resolve(credential: &Credential, secrets: &Secrets) -> Result<String, String> {
    match credential {
        Credential::Value(value) => Ok(value.expose().to_owned()),
        Credential::Secret(name) => secrets
            .get(name)
            .map(|value| value.expose().to_owned())
            .ok_or_else(|| format!("no entry {name:?} in `secrets`")),
        Credential::Env(name) => match std::env::var(name) {
            Ok(value) if !value.trim().is_empty() => Ok(value.trim().to_owned()),
            _ => Err(format!("environment variable {name:?} is not set")),
        },
        Credential::File(path) => match std::fs::read_to_string(path) {
            Ok(value) if !value.trim().is_empty() => Ok(value.trim().to_owned()),
            Ok(_) => Err(format!("file {path:?} is empty")),
            Err(err) => Err(format!("cannot read {path:?}: {err}")),
        },
    }
}

/// `name: <credential>` as a header, read now; `path` names the config field in errors.
pub(super) fn credential_header(
    name: HeaderName,
    credential: &Credential,
    format: impl FnOnce(&str) -> String,
    secrets: &Secrets,
    path: &str,
) -> Result<(HeaderName, HeaderValue), CompileError> {
    let value =
        resolve(credential, secrets).map_err(|reason| CompileError { path: path.to_owned(), reason })?;
    Ok((name, sensitive(&format(&value), path)?))
}

/// What a provider sends with every request: its key (`api_key`) as `key_header`, written by
/// `format` (`Bearer {key}` for OpenAI), then its configured extra headers; values read now.
pub(super) fn fixed_headers(
    key: Option<&Credential>,
    key_header: HeaderName,
    format: impl FnOnce(&str) -> String,
    headers: &[HeaderConfig],
    secrets: &Secrets,
) -> Result<Vec<(HeaderName, HeaderValue)>, CompileError> {
    let mut fixed = Vec::with_capacity(headers.len() + 1);
    if let Some(key) = key {
        fixed.push(credential_header(key_header, key, format, secrets, "api_key")?);
    }
    fixed.extend(extra_headers(headers, secrets)?);
    Ok(fixed)
}

/// The provider's configured extra headers (`headers[i]`), values read now.
pub(super) fn extra_headers(
    headers: &[HeaderConfig],
    secrets: &Secrets,
) -> Result<Vec<(HeaderName, HeaderValue)>, CompileError> {
    let mut out = Vec::with_capacity(headers.len());
    for (i, header) in headers.iter().enumerate() {
        let path = format!("headers[{i}]");
        let name = HeaderName::from_bytes(header.name.as_bytes()).map_err(|_| CompileError {
            path: format!("{path}.name"),
            reason: "invalid header name".into(),
        })?;
        out.push(credential_header(name, &header.value, str::to_owned, secrets, &format!("{path}.value"))?);
    }
    Ok(out)
}

fn sensitive(value: &str, path: &str) -> Result<HeaderValue, CompileError> {
    let mut value = HeaderValue::from_str(value).map_err(|_| CompileError {
        path: path.to_owned(),
        reason: "contains characters not allowed in an HTTP header".into(),
    })?;
    // hyper and our logs then never print it.
    value.set_sensitive(true);
    Ok(value)
}
