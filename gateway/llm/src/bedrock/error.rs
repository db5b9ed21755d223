//! Bedrock's error answers: the error code in the `x-amzn-ErrorType` header
//! (`ThrottlingException:http://internal.amazon.com/coral/...`), the message in `{"message"}`.
//! <https://docs.aws.amazon.com/bedrock/latest/APIReference/CommonErrors.html>

use serde::Deserialize;

/// What the gateway reads from an error answer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ErrorDetails {
    /// The error code (`ThrottlingException`), without the namespace after `:`.
    pub code: String,
    pub message: String,
    /// The gateway's credentials were refused (unknown key, bad signature, expired token, no
    /// permission): the gateway's problem, not the client's request.
    pub auth: bool,
}

#[derive(Deserialize)]
struct WireError {
    #[serde(default, alias = "Message")]
    message: String,
}

/// Codes that mean the gateway's credentials or signature were refused.
const AUTH_CODES: [&str; 7] = [
    "AccessDeniedException",
    "UnrecognizedClientException",
    "InvalidSignatureException",
    "IncompleteSignatureException",
    "MissingAuthenticationTokenException",
    "ExpiredTokenException",
    "InvalidClientTokenId",
];

/// The code (from the `x-amzn-ErrorType` header value, when there is one) and message of an
/// error answer.
pub fn error_details(error_type: Option<&str>, body: &[u8]) -> ErrorDetails {
    let code =
        error_type.map(|t| t.split(':').next().unwrap_or_default().trim().to_owned()).unwrap_or_default();
    let message = serde_json::from_slice::<WireError>(body).map(|e| e.message).unwrap_or_default();
    let auth = AUTH_CODES.contains(&code.as_str());
    ErrorDetails { code, message, auth }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_code_and_message() {
        let details = error_details(
            Some("ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/"),
            br#"{"message":"Too many requests, please wait before trying again."}"#,
        );
        assert_eq!(details.code, "ThrottlingException");
        assert!(details.message.starts_with("Too many"));
        assert!(!details.auth);
        assert!(error_details(Some("UnrecognizedClientException"), b"<html>").auth);
        assert_eq!(error_details(None, b"").code, "");
    }
}
