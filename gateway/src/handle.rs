//! The request path's edge: which API a request calls, then load the table → authenticate →
//! read the body → parse it in the API's dialect (`inbound.rs`) → admission (`admission.rs`:
//! route, key may use it, limits) → forwarding (`forward.rs`: backends in order) → respond.
//!
//! Every outcome, success or [`GatewayError`], leaves through [`handle`], which writes errors in
//! the caller's dialect, stamps `x-request-id`, attaches the request's ledger and logs failures
//! once.

use crate::body::GatewayBody;
use crate::error::{Dialect, GatewayError};
use crate::inbound::{Api, Inbound};
use crate::ledger::Ledger;
use crate::limits::reply;
use crate::metrics::ErrorType;
use crate::request_id::RequestId;
use crate::table::RoutingTable;
use crate::{Gateway, admission, count_tokens, forward, responses};
use bytes::Bytes;
use http::header::{CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use std::sync::Arc;

static APPLICATION_JSON: HeaderValue = HeaderValue::from_static("application/json");

pub async fn handle(gateway: Arc<Gateway>, request: Request<Incoming>) -> Response<GatewayBody> {
    let request_id = RequestId::from_headers(request.headers());
    let mut ledger =
        Ledger::open(&gateway.metrics, request_id.header_ref(), request.method(), request.uri().path());
    if let Some(telemetry) = &gateway.telemetry {
        ledger.trace(telemetry.request(request.method(), request.headers()));
    }
    // Loaded once: this request is served by this table from start to end, whatever reloads do.
    let table = gateway.tables.load();
    let target = target(request.method(), request.uri().path());
    // Errors are written in the envelope of the API called (OpenAI's where it is unknown).
    let dialect = match &target {
        Ok(Target::Model(api)) => api.dialect(),
        Ok(Target::CountTokens) => Dialect::Anthropic,
        _ => Dialect::OpenAi,
    };
    let outcome = match (gateway.edge.admit(), table, target) {
        (Err(overloaded), _, _) => Err(overloaded),
        (Ok(()), None, _) => Err(GatewayError::NotReady),
        (Ok(()), _, Err(err)) => Err(err),
        (Ok(()), Some(table), Ok(target)) => {
            dispatch(&gateway, &table, target, request, request_id.header_ref(), &mut ledger).await
        }
    };
    let mut response = outcome.unwrap_or_else(|err| {
        ledger.set_error(ErrorType::of(&err));
        let rendered = err.render();
        if let Some(trace) = ledger.trace_mut() {
            trace.failed(rendered.code.as_deref().unwrap_or(&rendered.kind));
        }
        if rendered.status.is_server_error() {
            tracing::warn!(request_id = %request_id, status = rendered.status.as_u16(), error = %err, "request failed");
        } else {
            tracing::debug!(request_id = %request_id, status = rendered.status.as_u16(), error = %err, "request refused");
        }
        let mut response = Response::new(GatewayBody::full(rendered.body(dialect)));
        *response.status_mut() = rendered.status;
        response.headers_mut().insert(CONTENT_TYPE, APPLICATION_JSON.clone());
        if let Some(retry_after) = rendered.retry_after.clone() {
            response.headers_mut().insert(RETRY_AFTER, retry_after);
        }
        if let GatewayError::Limited(refusal) = &err {
            reply::write_refusal(refusal, response.headers_mut());
        }
        response
    });
    ledger.set_status(response.status().as_u16());
    response.headers_mut().insert("x-request-id", request_id.header_value());
    response.body_mut().attach(ledger);
    response
}

/// The API a path and method name, or the error for one that is not served.
enum Target {
    Model(Api),
    ListModels,
    GetModel,
    /// `GET /v1/responses/{id}`
    GetResponse(String),
    /// `DELETE /v1/responses/{id}`
    DeleteResponse(String),
    /// `POST /v1/messages/count_tokens`
    CountTokens,
}

fn target(method: &Method, path: &str) -> Result<Target, GatewayError> {
    Ok(match (method, path) {
        (&Method::POST, "/v1/chat/completions") => Target::Model(Api::ChatCompletions),
        (&Method::POST, "/v1/embeddings") => Target::Model(Api::Embeddings),
        (&Method::POST, "/v1/messages") => Target::Model(Api::Messages),
        (&Method::POST, "/v1/messages/count_tokens") => Target::CountTokens,
        (&Method::POST, "/v1/responses") => Target::Model(Api::Responses),
        (method, path) if path.starts_with("/v1/responses/") => {
            let id = &path["/v1/responses/".len()..];
            // Ids are ours (`resp_` and hex): anything else, such as `/input_items`, is no endpoint.
            if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return Err(GatewayError::NotFound { path: path.to_owned() });
            }
            match *method {
                Method::GET => Target::GetResponse(id.to_owned()),
                Method::DELETE => Target::DeleteResponse(id.to_owned()),
                _ => return Err(GatewayError::MethodNotAllowed),
            }
        }
        (&Method::GET, "/v1/models") => Target::ListModels,
        (&Method::GET, path) if path.starts_with("/v1/models/") => Target::GetModel,
        (
            _,
            "/v1/chat/completions"
            | "/v1/embeddings"
            | "/v1/messages"
            | "/v1/messages/count_tokens"
            | "/v1/responses"
            | "/v1/models",
        ) => {
            return Err(GatewayError::MethodNotAllowed);
        }
        (_, path) => return Err(GatewayError::NotFound { path: path.to_owned() }),
    })
}

async fn dispatch(
    gateway: &Gateway,
    table: &RoutingTable,
    target: Target,
    request: Request<Incoming>,
    request_id: &HeaderValue,
    ledger: &mut Ledger,
) -> Result<Response<GatewayBody>, GatewayError> {
    let api = match target {
        Target::Model(api) => api,
        Target::ListModels => return list_models(table, &request),
        Target::GetModel => return get_model(table, &request),
        Target::CountTokens => return count_tokens::count_tokens(gateway, table, request, request_id).await,
        Target::GetResponse(id) => {
            let key = table.keys.authenticate(request.headers(), crate::unix_now())?;
            return responses::retrieve(&gateway.conversations, key, &id).await;
        }
        Target::DeleteResponse(id) => {
            let key = table.keys.authenticate(request.headers(), crate::unix_now())?;
            return responses::delete(&gateway.conversations, key, &id).await;
        }
    };
    let key = table.keys.authenticate(request.headers(), crate::unix_now())?;
    ledger.set_key(&key.id, key.team.as_ref());
    let (parts, body) = request.into_parts();
    // The budget of buffered bytes is held until the body is dropped, at this function's end.
    let buffered = gateway.edge.read_body(body).await?;
    let body = buffered.check_depth()?;
    let mut inbound = Inbound::parse(api, body, &parts.headers)?;
    if let Some(trace) = ledger.trace_mut() {
        trace.request(&inbound, body);
    }
    if let Inbound::Responses(request) = &mut inbound {
        responses::continue_conversation(&gateway.conversations, key, request).await?;
    }
    let admitted = admission::admit(gateway, table, key, &inbound, body.len(), ledger).await?;
    // One deadline for every attempt together (the edge's `--request-deadline-ms`).
    let deadline = gateway.edge.limits.request_deadline;
    let mut response = forward::forward(table, admitted, &inbound, request_id, deadline, ledger).await?;
    if let Inbound::Responses(request) = &inbound {
        responses::save_when_rendered(&gateway.conversations, key, request, &mut response).await;
    }
    Ok(response)
}

/// `GET /v1/models`: the models the caller's key may use.
fn list_models(
    table: &RoutingTable,
    request: &Request<Incoming>,
) -> Result<Response<GatewayBody>, GatewayError> {
    let key = table.keys.authenticate(request.headers(), crate::unix_now())?;
    let data: Vec<_> =
        table.routes.iter().filter(|r| key.may_use(r.index)).map(|r| model_object(&r.model, table)).collect();
    Ok(json_response(serde_json::json!({ "object": "list", "data": data })))
}

/// `GET /v1/models/{model}`: one model, if the key may use it.
fn get_model(
    table: &RoutingTable,
    request: &Request<Incoming>,
) -> Result<Response<GatewayBody>, GatewayError> {
    let key = table.keys.authenticate(request.headers(), crate::unix_now())?;
    let raw = request.uri().path().trim_start_matches("/v1/models/");
    // SDKs percent-encode the id (`meta-llama/Llama-3.1-8B` arrives as `meta-llama%2FLlama-3.1-8B`).
    let name = percent_decode(raw).unwrap_or_else(|| raw.to_owned());
    match table.route(&name) {
        Some(route) if key.may_use(route.index) => Ok(json_response(model_object(&route.model, table))),
        _ => Err(GatewayError::UnknownModel { model: name }),
    }
}

/// Decodes `%XX` escapes; `None` if an escape is malformed or the result is not UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn model_object(model: &str, table: &RoutingTable) -> serde_json::Value {
    serde_json::json!({ "id": model, "object": "model", "created": table.created_unix, "owned_by": "switchboard" })
}

fn json_response(value: serde_json::Value) -> Response<GatewayBody> {
    let mut response = Response::new(GatewayBody::full(Bytes::from(value.to_string())));
    response.headers_mut().insert(CONTENT_TYPE, APPLICATION_JSON.clone());
    *response.status_mut() = StatusCode::OK;
    response
}

#[cfg(test)]
mod tests {
    use super::percent_decode;

    #[test]
    fn model_ids_are_percent_decoded() {
        assert_eq!(percent_decode("meta-llama%2FLlama-3.1-8B").as_deref(), Some("meta-llama/Llama-3.1-8B"));
        assert_eq!(percent_decode("llama3.1:8b").as_deref(), Some("llama3.1:8b"));
        assert_eq!(percent_decode("bad%2"), None);
        assert_eq!(percent_decode("bad%zz"), None);
    }
}
