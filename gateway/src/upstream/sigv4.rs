//! AWS Signature Version 4 for Bedrock: every request is signed, just before it is sent, with
//! keys from the provider's credential source (static keys from Secrets, or temporary keys from
//! STS for web identity, see `sts.rs`). The signing itself is the `aws-sigv4` crate's.
//! <https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv.html>

use super::sts::WebIdentity;
use aws_credential_types::Credentials as AwsKeys;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};
use std::sync::Arc;
use std::time::SystemTime;

/// The signing name of Bedrock Runtime (the credential scope's service).
const SERVICE: &str = "bedrock";

/// Where a signer's keys come from.
pub enum KeySource {
    /// Keys read from the config when it was compiled. `aws_credential_types::Credentials`
    /// redacts its Debug output and zeroes its memory on drop.
    Static(AwsKeys),
    /// Temporary keys for a role, from STS, cached and refreshed before they expire.
    WebIdentity(Arc<WebIdentity>),
}

/// Signs a provider's requests for one region.
pub struct Signer {
    region: String,
    keys: KeySource,
}

impl Signer {
    pub fn new(region: String, keys: KeySource) -> Self {
        Signer { region, keys }
    }

    /// Adds `authorization`, `x-amz-date` and (temporary keys) `x-amz-security-token` to
    /// `headers`, signing the method, URI, every header in `headers` (and `host`) and the body.
    /// Errors name what failed, never a key.
    pub async fn sign(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &mut HeaderMap,
        body: &[u8],
    ) -> Result<(), String> {
        let identity: Identity = match &self.keys {
            KeySource::Static(keys) => keys.clone().into(),
            KeySource::WebIdentity(source) => source.keys().await?.into(),
        };
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name(SERVICE)
            .time(SystemTime::now())
            // The defaults are Bedrock's: the path is percent-encoded once more for the canonical
            // request (the model id's `:` is `%3A` on the wire, `%253A` there), no
            // `x-amz-content-sha256` header, the session token signed.
            .settings(SigningSettings::default())
            .build()
            .map_err(|err| format!("SigV4 parameters: {err}"))?
            .into();
        let uri_text = uri.to_string();
        let signable_headers: Vec<(&str, &str)> =
            headers.iter().filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?))).collect();
        let request = SignableRequest::new(
            method.as_str(),
            uri_text.as_str(),
            signable_headers.into_iter(),
            SignableBody::Bytes(body),
        )
        .map_err(|err| format!("SigV4 request: {err}"))?;
        let (instructions, _signature) =
            sign(request, &params).map_err(|err| format!("SigV4 signing: {err}"))?.into_parts();
        let (signed_headers, _params) = instructions.into_parts();
        for header in signed_headers {
            let name = HeaderName::from_bytes(header.name().as_bytes())
                .map_err(|_| format!("SigV4 produced an invalid header name {:?}", header.name()))?;
            let mut value = HeaderValue::from_str(header.value())
                .map_err(|_| format!("SigV4 produced an invalid {} header", header.name()))?;
            // The signature and the session token stay out of hyper's and our Debug output.
            value.set_sensitive(header.sensitive() || name == http::header::AUTHORIZATION);
            headers.insert(name, value);
        }
        Ok(())
    }
}

/// Static keys as the signer holds them.
pub fn static_keys(
    access_key_id: String,
    secret_access_key: String,
    session_token: Option<String>,
) -> AwsKeys {
    AwsKeys::new(access_key_id, secret_access_key, session_token, None, "switchboard-config")
}
