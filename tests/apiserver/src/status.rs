//! Errors as the apiserver reports them: a `Status` object (`kind: Status`, `status: Failure`)
//! with the HTTP code, a machine-readable `reason`, a message in the apiserver's words, and for
//! validation errors `details.causes[]` naming each field. kube's client and kubectl both read
//! these: kube turns them into `Error::Api(Status)`, kubectl prints `Error from server
//! (<reason>): <message>`.

use serde_json::{Value, json};

use crate::kinds::Kind;

#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    pub details: Option<Value>,
}

/// One invalid field: its path and what is wrong, already worded
/// (`Invalid value: 0: must be greater than or equal to 1`).
#[derive(Debug, Clone)]
pub(crate) struct Cause {
    pub field: String,
    pub reason: &'static str,
    pub message: String,
}

impl ApiError {
    fn new(code: u16, reason: &'static str, message: String) -> Self {
        Self { code, reason, message, details: None }
    }

    fn with_details(mut self, kind: &Kind, name: &str) -> Self {
        // The apiserver's details.kind is the resource (plural) for these, the kind for Invalid.
        self.details = Some(json!({"name": name, "group": kind.group, "kind": kind.plural}));
        self
    }

    pub fn not_found(kind: &Kind, name: &str) -> Self {
        Self::new(404, "NotFound", format!("{} \"{name}\" not found", kind.group_resource()))
            .with_details(kind, name)
    }

    pub fn namespace_not_found(namespace: &str) -> Self {
        let mut e = Self::new(404, "NotFound", format!("namespaces \"{namespace}\" not found"));
        e.details = Some(json!({"name": namespace, "kind": "namespaces"}));
        e
    }

    pub fn namespace_terminating(namespace: &str) -> Self {
        let message =
            format!("unable to create new content in namespace {namespace} because it is being terminated");
        Self::new(403, "Forbidden", message)
    }

    pub fn already_exists(kind: &Kind, name: &str) -> Self {
        Self::new(409, "AlreadyExists", format!("{} \"{name}\" already exists", kind.group_resource()))
            .with_details(kind, name)
    }

    /// A write based on a stale `resourceVersion` (or failed delete preconditions).
    pub fn conflict(kind: &Kind, name: &str, why: &str) -> Self {
        let message = format!("Operation cannot be fulfilled on {} \"{name}\": {why}", kind.group_resource());
        Self::new(409, "Conflict", message).with_details(kind, name)
    }

    pub fn modified(kind: &Kind, name: &str) -> Self {
        Self::conflict(
            kind,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// 422 with one cause per field, worded like `field.ErrorList.ToAggregate()`: one error is
    /// `Kind.group "name" is invalid: path: message`, several are bracketed and comma-separated.
    pub fn invalid(kind: &Kind, name: &str, causes: Vec<Cause>) -> Self {
        let errors: Vec<String> = causes.iter().map(|c| format!("{}: {}", c.field, c.message)).collect();
        let joined = if errors.len() == 1 { errors.join("") } else { format!("[{}]", errors.join(", ")) };
        let message = format!("{} \"{name}\" is invalid: {joined}", kind.group_kind());
        let causes: Vec<Value> = causes
            .iter()
            .map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field}))
            .collect();
        let mut e = Self::new(422, "Invalid", message);
        e.details = Some(json!({"name": name, "group": kind.group, "kind": kind.kind, "causes": causes}));
        e
    }

    /// 422 without a kind (a JSON patch `test` that failed, as the apiserver reports it).
    pub fn unprocessable(message: String) -> Self {
        Self::new(422, "Invalid", message)
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message.into())
    }

    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        Self::new(405, "MethodNotAllowed", message.into())
    }

    pub fn unsupported_media_type(content_type: &str) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml; got {content_type:?}"
            ),
        )
    }

    /// A resourceVersion older than the retained history: watchers must list again.
    pub fn expired(message: String) -> Self {
        Self::new(410, "Expired", message)
    }

    pub fn not_found_path(path: &str) -> Self {
        Self::new(404, "NotFound", format!("the server could not find the requested resource ({path})"))
    }

    pub fn too_large_resource_version(requested: u64, current: u64) -> Self {
        let message = format!("Too large resource version: {requested}, current: {current}");
        let mut e = Self::new(504, "Timeout", message);
        e.details = Some(
            json!({"causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}], "retryAfterSeconds": 1}),
        );
        e
    }

    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(details) = &self.details {
            status["details"] = details.clone();
        }
        status
    }
}

/// The `Status` a successful delete of a gone object returns.
pub(crate) fn success(kind: &Kind, name: &str, uid: &str) -> Value {
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": {"name": name, "group": kind.group, "kind": kind.plural, "uid": uid},
    })
}
