//! Azure OpenAI: OpenAI's bodies passed through (`openai.rs`), at an Azure resource's URLs, with
//! its key in `api-key` or a Microsoft Entra ID token. Two URL forms, chosen by `api_version`:
//!
//! - a dated version: `{endpoint}/openai/deployments/{deployment}/chat/completions?api-version=...`
//!   (and `/embeddings`), the backend's model being the deployment's name;
//! - `v1`: `{endpoint}/openai/v1/chat/completions`, the model in the body, no version.
//!
//! <https://learn.microsoft.com/azure/ai-foundry/openai/reference>,
//! <https://learn.microsoft.com/azure/ai-foundry/openai/api-version-lifecycle>. Errors are
//! OpenAI-shaped (`{"error":{"code","message"}}`), so the error edge reads them as it reads
//! OpenAI's (a 400 `content_filter` reaches the client as a 400 with that code).

use super::credentials::{Credentials, fixed_headers, resolve};
use super::exec::Executor;
use super::gemini::push_path_segment;
use super::oauth::{Grant, TokenSource, token_uri};
use super::{Call, CompileError, HttpClient, Provider, Reply, openai};
use crate::error::UpstreamError;
use crate::inbound::{Api, Inbound};
use http::{HeaderName, HeaderValue, Uri};
use std::sync::Arc;
use std::time::Duration;
use switchboard_config::{AddressRule, AzureOpenAiProviderConfig, EntraConfig, Secrets};
use switchboard_llm::openai::RequestError;

static API_KEY: HeaderName = HeaderName::from_static("api-key");

pub struct AzureOpenAiProvider {
    surface: Surface,
    stream_usage: bool,
    pub(super) exec: Executor,
}

enum Surface {
    /// `/openai/v1/`: fixed URLs.
    V1 { chat: Uri, embeddings: Uri },
    /// `{endpoint}/openai/deployments/` then the deployment, the endpoint and `query`.
    Deployments { prefix: String, query: String },
}

impl AzureOpenAiProvider {
    pub fn compile(
        config: &AzureOpenAiProviderConfig,
        secrets: &Secrets,
        client: HttpClient,
        rule: AddressRule,
    ) -> Result<Self, CompileError> {
        let base = config.base_url.trim_end_matches('/');
        let invalid = |err: http::uri::InvalidUri| CompileError {
            path: "base_url".into(),
            reason: format!("not a valid URL: {err}"),
        };
        let surface = if config.api_version == "v1" {
            Surface::V1 {
                chat: format!("{base}/openai/v1/chat/completions").parse().map_err(invalid)?,
                embeddings: format!("{base}/openai/v1/embeddings").parse().map_err(invalid)?,
            }
        } else {
            let prefix = format!("{base}/openai/deployments/");
            let query = format!("?api-version={}", config.api_version);
            format!("{prefix}d/chat/completions{query}").parse::<Uri>().map_err(invalid)?;
            Surface::Deployments { prefix, query }
        };
        let name: Arc<str> = Arc::from(config.name.as_str());
        let timeout = Duration::from_millis(config.timeout_ms);
        let fixed =
            fixed_headers(config.api_key.as_ref(), API_KEY.clone(), str::to_owned, &config.headers, secrets)?;
        let credentials = match &config.entra {
            Some(entra) => entra_credentials(entra, fixed, secrets, &name, &client, rule, timeout)?,
            None => Credentials::Static(fixed),
        };
        Ok(AzureOpenAiProvider {
            surface,
            stream_usage: config.stream_usage,
            exec: Executor::new(name, client, credentials, config.timeout_ms, &config.timeouts),
        })
    }

    fn uri(&self, call: &Call<'_>) -> Result<Uri, UpstreamError> {
        let method = match call.api {
            Api::ChatCompletions | Api::Messages | Api::Responses => "/chat/completions",
            Api::Embeddings => "/embeddings",
        };
        match &self.surface {
            Surface::V1 { chat, embeddings } => {
                Ok(if call.api == Api::Embeddings { embeddings.clone() } else { chat.clone() })
            }
            Surface::Deployments { prefix, query } => {
                let mut url = prefix.clone();
                // A deployment name is one path segment, whatever the route says.
                push_path_segment(&mut url, call.model);
                url.push_str(method);
                url.push_str(query);
                url.parse().map_err(|err| {
                    UpstreamError::bad_request(
                        self.exec.provider(),
                        RequestError::new(
                            format!("the deployment name does not form a valid URL: {err}"),
                            Some("model"),
                        ),
                    )
                })
            }
        }
    }
}

impl Provider for AzureOpenAiProvider {
    fn name(&self) -> &Arc<str> {
        self.exec.provider()
    }

    async fn send(&self, call: Call<'_>, request: &Inbound<'_>) -> Result<Reply, UpstreamError> {
        let uri = self.uri(&call)?;
        openai::passthrough(&self.exec, &uri, self.stream_usage, call, request).await
    }
}

/// Entra ID's client-credentials tokens as the provider's credentials (Azure OpenAI, and
/// Anthropic on Microsoft Foundry), next to its `fixed` headers.
pub(super) fn entra_credentials(
    entra: &EntraConfig,
    fixed: Vec<(HeaderName, HeaderValue)>,
    secrets: &Secrets,
    provider: &Arc<str>,
    client: &HttpClient,
    rule: AddressRule,
    timeout: Duration,
) -> Result<Credentials, CompileError> {
    let client_secret = resolve(&entra.client_secret, secrets)
        .map_err(|reason| CompileError { path: "entra.client_secret".into(), reason })?;
    let uri = token_uri(&entra.token_url(), rule)
        .map_err(|reason| CompileError { path: "entra.token_url".into(), reason })?;
    let grant = Grant::ClientCredentials {
        client_id: entra.client_id.clone(),
        client_secret,
        scope: entra.scope.clone(),
    };
    let token = TokenSource::new(provider.clone(), client.clone(), uri, grant, timeout);
    Ok(Credentials::OAuth { fixed, token: Arc::new(token) })
}
