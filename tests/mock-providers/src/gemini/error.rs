//! Google's error envelope (`{"error":{"code","message","status","details"}}`,
//! https://cloud.google.com/apis/design/errors) and the responses every route shares.

use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Response, StatusCode};

use super::proto::Api;
use super::validate::Problem;
use crate::body::MockBody;
use crate::json::Json;

pub(crate) const UNAUTHENTICATED_INVALID: &str = "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.";

/// The canonical status name of an HTTP code (google.rpc.Code mapping).
pub(crate) fn status_name(code: u16) -> &'static str {
    match code {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        405 => "UNIMPLEMENTED",
        409 => "ABORTED",
        429 => "RESOURCE_EXHAUSTED",
        499 => "CANCELLED",
        501 => "UNIMPLEMENTED",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        500..=599 => "INTERNAL",
        _ => "FAILED_PRECONDITION",
    }
}

/// `{"error":{"code","message","status"[,"details"]}}`
pub(crate) fn error_body(code: u16, message: &str, details: Vec<Json>) -> Json {
    let mut e = vec![
        ("code".to_owned(), Json::int(u64::from(code))),
        ("message".to_owned(), Json::str(message)),
        ("status".to_owned(), Json::str(status_name(code))),
    ];
    if !details.is_empty() {
        e.push(("details".to_owned(), Json::Arr(details)));
    }
    Json::obj([("error", Json::Obj(e))])
}

pub(crate) fn google_error(code: u16, message: &str, details: Vec<Json>) -> Response<MockBody> {
    respond(
        code,
        "application/json; charset=UTF-8",
        MockBody::full(error_body(code, message, details).to_text()),
    )
}

pub(crate) fn bad_request(violations: Vec<Json>) -> Json {
    Json::obj([
        ("@type", Json::str("type.googleapis.com/google.rpc.BadRequest")),
        ("fieldViolations", Json::Arr(violations)),
    ])
}

pub(crate) fn error_info(reason: &str, service: &str) -> Json {
    Json::obj([
        ("@type", Json::str("type.googleapis.com/google.rpc.ErrorInfo")),
        ("reason", Json::str(reason)),
        ("domain", Json::str("googleapis.com")),
        ("metadata", Json::obj([("service", Json::str(service))])),
    ])
}

pub(crate) fn invalid(p: &Problem) -> Response<MockBody> {
    let details = match p {
        Problem::Fields(request, list) => vec![bad_request(
            list.iter()
                .map(|(path, msg)| {
                    Json::obj([
                        ("field", Json::str(format!("{request}.{path}"))),
                        ("description", Json::str(msg)),
                    ])
                })
                .collect(),
        )],
        Problem::Plain(_) => Vec::new(),
    };
    google_error(400, &p.message(), details)
}

/// What an `error-<status>` model gets.
pub(crate) fn status_error(code: u16, api: Api, model: &str) -> Response<MockBody> {
    let vertex = api == Api::Vertex;
    let mut details = Vec::new();
    let message = match code {
        400 => "Request contains an invalid argument.".to_owned(),
        401 => UNAUTHENTICATED_INVALID.to_owned(),
        403 => "The caller does not have permission".to_owned(),
        404 if vertex => format!(
            "Publisher Model `projects/mock/locations/us-central1/publishers/google/models/{}` was not found or your project does not have access to it.",
            model
        ),
        404 => format!(
            "models/{} is not found for API version v1beta, or is not supported for generateContent. Call ListModels to see the list of available models and their supported methods.",
            model
        ),
        429 => {
            details.push(Json::obj([
                ("@type", Json::str("type.googleapis.com/google.rpc.RetryInfo")),
                ("retryDelay", Json::str("7s")),
            ]));
            if vertex {
                "Resource exhausted. Please try again later. Please refer to https://cloud.google.com/vertex-ai/generative-ai/docs/error-code-429 for more details.".to_owned()
            } else {
                "You exceeded your current quota, please check your plan and billing details. For more information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.".to_owned()
            }
        }
        503 => "The model is overloaded. Please try again later.".to_owned(),
        504 => "Deadline expired before operation could complete.".to_owned(),
        500..=599 => "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting".to_owned(),
        _ => format!("mock error-{code}"),
    };
    google_error(code, &message, details)
}

pub(crate) fn ok_json(json: Json) -> Response<MockBody> {
    respond(200, "application/json; charset=UTF-8", MockBody::full(json.to_text()))
}

pub(crate) fn respond(code: u16, content_type: &'static str, body: MockBody) -> Response<MockBody> {
    let mut resp = Response::new(body);
    *resp.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}
