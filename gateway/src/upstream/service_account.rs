//! A Google service account key and the signed JWT it proves itself with (RFC 7523's JWT bearer
//! grant, as Google documents it:
//! <https://developers.google.com/identity/protocols/oauth2/service-account#authorizingrequests>).
//! About forty lines with `ring`, which rustls already brings, instead of an OAuth crate.

use ring::rand::SystemRandom;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use rustls_pki_types::PrivatePkcs8KeyDer;
use rustls_pki_types::pem::PemObject;
use std::fmt;

/// Google's token endpoint: the JWT's audience when the key names none.
const GOOGLE_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";
/// What Vertex AI needs (there is no narrower scope for it).
pub const CLOUD_PLATFORM_SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
/// The longest lifetime Google accepts for the assertion.
const ASSERTION_LIFETIME_SECS: u64 = 3600;

pub struct ServiceAccount {
    client_email: String,
    key: RsaKeyPair,
    token_uri: String,
    rng: SystemRandom,
}

/// Never the key: only who it belongs to.
impl fmt::Debug for ServiceAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceAccount").field("client_email", &self.client_email).finish_non_exhaustive()
    }
}

impl ServiceAccount {
    /// Reads the key file Google issues. Errors say what is wrong, never what the key holds.
    pub fn parse(json: &str) -> Result<Self, String> {
        let value: serde_json::Value =
            serde_json::from_str(json).map_err(|_| "is not a service account key (not JSON)".to_owned())?;
        let field = |name: &str| value.get(name).and_then(|v| v.as_str());
        let client_email = field("client_email").ok_or("the key has no \"client_email\"")?.to_owned();
        let pem = field("private_key").ok_or("the key has no \"private_key\"")?;
        let der = PrivatePkcs8KeyDer::from_pem_slice(pem.as_bytes())
            .map_err(|_| "the key's \"private_key\" is not a PEM PKCS#8 private key".to_owned())?;
        let key = RsaKeyPair::from_pkcs8(der.secret_pkcs8_der())
            .map_err(|err| format!("the key's \"private_key\" is not a usable RSA key ({err})"))?;
        let token_uri = field("token_uri").unwrap_or(GOOGLE_TOKEN_URI).to_owned();
        Ok(ServiceAccount { client_email, key, token_uri, rng: SystemRandom::new() })
    }

    /// Where the key says tokens come from; also the assertion's audience.
    pub fn token_uri(&self) -> &str {
        &self.token_uri
    }

    /// The signed assertion for `scope`, issued at `now` (seconds since the epoch), valid an hour.
    pub fn assertion(&self, scope: &str, now: u64) -> Result<String, String> {
        let header = base64url(br#"{"alg":"RS256","typ":"JWT"}"#);
        let claims = serde_json::json!({
            "iss": self.client_email,
            "scope": scope,
            "aud": self.token_uri,
            "iat": now,
            "exp": now + ASSERTION_LIFETIME_SECS,
        });
        let mut jwt = format!("{header}.{}", base64url(claims.to_string().as_bytes()));
        let mut signature = vec![0; self.key.public().modulus_len()];
        self.key
            .sign(&RSA_PKCS1_SHA256, &self.rng, jwt.as_bytes(), &mut signature)
            .map_err(|_| "could not sign the token request".to_owned())?;
        jwt.push('.');
        jwt.push_str(&base64url(&signature));
        Ok(jwt)
    }
}

/// Base64url without padding (RFC 7515 §2), as JWTs are written.
fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_matches_rfc4648_vectors() {
        // RFC 4648 §10, without padding, in the URL-safe alphabet.
        let cases =
            [("", ""), ("f", "Zg"), ("fo", "Zm8"), ("foo", "Zm9v"), ("foob", "Zm9vYg"), ("fooba", "Zm9vYmE")];
        for (input, expected) in cases {
            assert_eq!(base64url(input.as_bytes()), expected);
        }
        assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
    }

    #[test]
    fn errors_never_echo_the_key() {
        let json = r#"{"client_email":"a@b","private_key":"-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWtleS1ieXRlcw==\n-----END PRIVATE KEY-----\n"}"#;
        let err = ServiceAccount::parse(json).err().unwrap_or_default();
        assert!(err.contains("private_key") && !err.contains("c2VjcmV0"), "{err}");
    }
}
