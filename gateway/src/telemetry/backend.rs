//! What a backend's spans always say, encoded once when the config compiles: every attempt at
//! the backend, and the request it answers, copies these bytes instead of writing each
//! attribute again (they were a fifth of tracing's instructions per request).

use super::otlp::Value;
use super::span::attribute;
use http::Uri;
use switchboard_config::ProviderConfig;

/// A backend's span attributes, as encoded `KeyValue` fields of a `Span`.
#[derive(Debug, Default)]
pub struct BackendAttributes {
    /// The attempt's CLIENT span: `gen_ai.provider.name`, `server.address`, `server.port`,
    /// `switchboard.backend` and `gen_ai.request.model`.
    attempt: Box<[u8]>,
    /// The request's SERVER span once this backend answered: all but the model.
    answered: Box<[u8]>,
}

impl BackendAttributes {
    /// For `model` at the provider `config` describes (the backend is named after it). The
    /// server is the host and port of the provider's base URL, which every request to it
    /// starts with; the built-in mock has none.
    pub fn new(config: &ProviderConfig, model: &str) -> Self {
        let mut answered = Vec::new();
        attribute(&mut answered, "gen_ai.provider.name", Value::Str(provider_name(config)));
        if let Some((address, port)) = config.base_url().and_then(|url| server(&url)) {
            attribute(&mut answered, "server.address", Value::Str(&address));
            attribute(&mut answered, "server.port", Value::Int(i64::from(port)));
        }
        attribute(&mut answered, "switchboard.backend", Value::Str(config.name()));
        let mut attempt = answered.clone();
        attribute(&mut attempt, "gen_ai.request.model", Value::Str(model));
        BackendAttributes { attempt: attempt.into(), answered: answered.into() }
    }

    pub(super) fn attempt(&self) -> &[u8] {
        &self.attempt
    }

    pub(super) fn answered(&self) -> &[u8] {
        &self.answered
    }
}

/// The host and port a URL reaches (the scheme's default port when it names none); an IPv6
/// address without the brackets a URL puts around it, as `server.address` wants it.
fn server(url: &str) -> Option<(String, u16)> {
    let uri = url.parse::<Uri>().ok()?;
    let host = uri.host()?;
    let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host).to_owned();
    let port = uri.port_u16().unwrap_or(if uri.scheme_str() == Some("http") { 80 } else { 443 });
    Some((host, port))
}

/// The conventions' well-known `gen_ai.provider.name` for each provider type. The built-in mock
/// speaks OpenAI's API but is no OpenAI service: `switchboard.mock`, in our own namespace.
fn provider_name(config: &ProviderConfig) -> &'static str {
    match config {
        ProviderConfig::OpenAi(_) => "openai",
        ProviderConfig::Anthropic(_) => "anthropic",
        ProviderConfig::Gemini(_) => "gcp.gemini",
        ProviderConfig::Vertex(_) => "gcp.vertex_ai",
        ProviderConfig::AzureOpenAi(_) => "azure.ai.openai",
        ProviderConfig::Bedrock(_) => "aws.bedrock",
        ProviderConfig::Mock(_) => "switchboard.mock",
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_server_is_the_base_urls_host_and_port() {
        assert_eq!(super::server("http://127.0.0.1:8080/v1"), Some(("127.0.0.1".into(), 8080)));
        assert_eq!(super::server("https://api.openai.com/v1"), Some(("api.openai.com".into(), 443)));
        assert_eq!(super::server("http://vllm.internal/v1"), Some(("vllm.internal".into(), 80)));
        assert_eq!(super::server("http://[::1]:11434/v1"), Some(("::1".into(), 11434)));
        assert_eq!(super::server("not a url"), None);
    }
}
