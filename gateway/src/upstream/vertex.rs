//! Google's Vertex AI: Gemini's request and response bodies (the Gemini provider does all of it,
//! `gemini.rs`) at Vertex's URLs,
//! `{base}/projects/{project}/locations/{location}/publishers/google/models/{model}:generateContent`,
//! with a service account's OAuth2 access token instead of an API key.
//! <https://cloud.google.com/vertex-ai/generative-ai/docs/reference/rest/v1/projects.locations.publishers.models/generateContent>

use super::credentials::{Credentials, extra_headers, resolve};
use super::exec::Executor;
use super::gemini::GeminiProvider;
use super::oauth::{Grant, TokenSource, token_uri};
use super::service_account::ServiceAccount;
use super::{CompileError, HttpClient};
use http::Uri;
use std::sync::Arc;
use std::time::Duration;
use switchboard_config::{AddressRule, Secrets, VertexProviderConfig};

/// Builds the provider from a validated config; reading the key (it may be a file) and parsing
/// it can fail here, with errors that never quote it.
pub fn compile(
    config: &VertexProviderConfig,
    secrets: &Secrets,
    client: HttpClient,
    rule: AddressRule,
) -> Result<GeminiProvider, CompileError> {
    fn invalid(path: &'static str) -> impl Fn(String) -> CompileError {
        move |reason| CompileError { path: path.to_owned(), reason }
    }
    let key = resolve(&config.service_account, secrets).map_err(invalid("service_account"))?;
    let account = ServiceAccount::parse(&key).map_err(invalid("service_account"))?;
    let (path, url) = match &config.token_url {
        Some(url) => ("token_url", url.clone()),
        None => ("service_account.token_uri", account.token_uri().to_owned()),
    };
    let token_uri = token_uri(&url, rule).map_err(invalid(path))?;
    let models_url = format!(
        "{}/projects/{}/locations/{}/publishers/google/models/",
        config.base_url.trim_end_matches('/'),
        config.project,
        config.location
    );
    format!("{models_url}m:generateContent")
        .parse::<Uri>()
        .map_err(|err| CompileError { path: "base_url".into(), reason: format!("not a valid URL: {err}") })?;
    let name: Arc<str> = Arc::from(config.name.as_str());
    let timeout = Duration::from_millis(config.timeout_ms);
    let token = TokenSource::new(
        name.clone(),
        client.clone(),
        token_uri,
        Grant::JwtBearer(Box::new(account)),
        timeout,
    );
    let credentials =
        Credentials::OAuth { fixed: extra_headers(&config.headers, secrets)?, token: Arc::new(token) };
    Ok(GeminiProvider::with_url(
        models_url,
        Executor::new(name, client, credentials, config.timeout_ms, &config.timeouts),
        "Vertex AI",
    ))
}
