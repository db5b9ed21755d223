//! The request path, top to bottom: load the table → authenticate → read the body → route →
//! check the key may use the route → try backends in order → respond.
//!
//! Every outcome, success or [`GatewayError`], leaves through [`handle`], which stamps
//! `x-request-id`, attaches the metrics guard and logs failures once.

use crate::Gateway;
use crate::body::GatewayBody;
use crate::error::GatewayError;
use crate::ledger::Ledger;
use crate::limits::policy::Demand;
use crate::limits::{Caller, estimate, reply};
use crate::request_id::RequestId;
use crate::table::RoutingTable;
use crate::upstream::{Call, Endpoint, Reply};
use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Incoming;
use std::sync::Arc;
use std::time::Duration;
use switchboard_llm::capability::Needs;
use switchboard_llm::openai::ModelRequest;

/// How long a client may take to send its request body.
const BODY_READ_TIMEOUT: Duration = Duration::from_secs(60);

static APPLICATION_JSON: HeaderValue = HeaderValue::from_static("application/json");

pub async fn handle(gateway: Arc<Gateway>, request: Request<Incoming>) -> Response<GatewayBody> {
    let request_id = RequestId::from_headers(request.headers());
    let mut ledger =
        Ledger::open(&gateway.metrics, request_id.header_ref(), request.method(), request.uri().path());
    // Loaded once: this request is served by this table from start to end, whatever reloads do.
    let table = gateway.tables.load();
    let outcome = match table {
        None => Err(GatewayError::NotReady),
        Some(table) => dispatch(&gateway, &table, request, request_id.header_ref(), &mut ledger).await,
    };
    let mut response = outcome.unwrap_or_else(|err| {
        let rendered = err.render();
        if rendered.status.is_server_error() {
            tracing::warn!(request_id = %request_id, status = rendered.status.as_u16(), error = %err, "request failed");
        } else {
            tracing::debug!(request_id = %request_id, status = rendered.status.as_u16(), error = %err, "request refused");
        }
        let mut response = Response::new(GatewayBody::full(rendered.body));
        *response.status_mut() = rendered.status;
        response.headers_mut().insert(CONTENT_TYPE, APPLICATION_JSON.clone());
        if let Some(retry_after) = rendered.retry_after {
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

async fn dispatch(
    gateway: &Gateway,
    table: &RoutingTable,
    request: Request<Incoming>,
    request_id: &HeaderValue,
    ledger: &mut Ledger,
) -> Result<Response<GatewayBody>, GatewayError> {
    let endpoint = match (request.method(), request.uri().path()) {
        (&Method::POST, "/v1/chat/completions") => Endpoint::ChatCompletions,
        (&Method::POST, "/v1/embeddings") => Endpoint::Embeddings,
        (&Method::GET, "/v1/models") => return list_models(table, &request),
        (&Method::GET, path) if path.starts_with("/v1/models/") => return get_model(table, &request),
        (_, "/v1/chat/completions" | "/v1/embeddings" | "/v1/models") => {
            return Err(GatewayError::MethodNotAllowed);
        }
        (_, path) => return Err(GatewayError::NotFound { path: path.to_owned() }),
    };
    let key = table.keys.authenticate(request.headers(), crate::unix_now())?;
    ledger.set_key(&key.id, key.team.as_ref());
    let body = read_body(request.into_body(), gateway.settings.max_body_bytes).await?;
    let mut model_request = ModelRequest::parse(&body)?;
    if endpoint == Endpoint::Embeddings {
        model_request.stream = false;
    }
    let route = table
        .route(&model_request.model)
        .ok_or_else(|| GatewayError::UnknownModel { model: model_request.model.clone() })?;
    ledger.set_route(&route.model, route.metrics.clone());
    if !key.may_use(route.index) {
        return Err(GatewayError::ModelNotAllowed { model: model_request.model.clone() });
    }

    // Admission: every policy of the key and the route charges its reservation, or refuses.
    let embeddings = endpoint == Endpoint::Embeddings;
    let policies = || key.policies.iter().chain(route.policies.iter());
    let mut headroom = Vec::new();
    if policies().next().is_none() {
        ledger.set_prompt_estimate(estimate::fallback(body.len()));
    } else {
        let counts_cost = policies().any(|p| p.counts_cost());
        let (input, output) = if counts_cost || policies().any(|p| p.counts_tokens()) {
            estimate::demand(&model_request, body.len(), embeddings, route.default_max_tokens)
        } else {
            (estimate::fallback(body.len()), 0)
        };
        let reserved_usage = switchboard_llm::Usage { input, output, ..Default::default() };
        let cost_nano_usd = if counts_cost { route.reserve_price.cost_nano_usd(&reserved_usage) } else { 0 };
        let demand = Demand { requests: 1, input, output, cost_nano_usd };
        let caller = Caller { key: &key.id, team: key.team.as_deref(), route: &route.model };
        let admitted = gateway
            .limits
            .admit(policies(), caller, demand, crate::unix_now_ms())
            .await
            .map_err(GatewayError::Limited)?;
        ledger.hold(&gateway.limits, admitted.charges, demand);
        ledger.set_prompt_estimate(input);
        headroom = admitted.headroom;
    }

    let needs = Needs::new(&model_request, embeddings);
    let mut last_error = None;
    let mut lacking = None;
    for backend in route.attempts() {
        // Not tried at all: the backend would refuse it with an error that rarely says why.
        if let Some(capability) = backend.capabilities.missing(&needs) {
            lacking.get_or_insert(capability);
            continue;
        }
        let upstream = &table.upstreams[backend.upstream];
        let call = Call {
            endpoint,
            model: &backend.model,
            request_id,
            default_max_tokens: route.default_max_tokens,
        };
        let outcome = upstream.send(call, &model_request).await;
        backend.metrics.record(outcome.as_ref().map(|_| ()));
        backend.record(outcome.as_ref().err().map(|err| err.is_retryable()));
        match outcome {
            Ok(reply) => {
                ledger.set_provider(upstream.name(), backend.price);
                let mut response = respond(reply, backend.provider_header.as_ref(), ledger);
                reply::write(&headroom, response.headers_mut());
                return Ok(response);
            }
            Err(err) if err.is_retryable() => {
                tracing::debug!(route = %route.model, provider = %upstream.name(), error = %err, "backend failed; trying the next one");
                last_error = Some(err);
            }
            Err(err) => return Err(err.into()),
        }
    }
    // A route always has at least one backend (validated), so there is an error to report:
    // the last backend's failure, or what every backend lacked.
    Err(match (last_error, lacking) {
        (Some(err), _) => GatewayError::Upstream(err),
        (None, Some(capability)) => {
            GatewayError::Unsupported { model: model_request.model.clone(), capability }
        }
        (None, None) => GatewayError::NotReady,
    })
}

fn respond(
    reply: Reply,
    provider_header: Option<&HeaderValue>,
    ledger: &mut Ledger,
) -> Response<GatewayBody> {
    let (body, content_type) = match reply {
        Reply::Full { body, usage } => {
            ledger.set_usage(usage);
            (GatewayBody::full(body), APPLICATION_JSON.clone())
        }
        Reply::Stream(relay) => (GatewayBody::relay(relay), HeaderValue::from_static("text/event-stream")),
    };
    let streaming = content_type != APPLICATION_JSON;
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, content_type);
    if streaming {
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    }
    if let Some(value) = provider_header {
        headers.insert("x-switchboard-provider", value.clone());
    }
    response
}

async fn read_body(body: Incoming, limit: usize) -> Result<Bytes, GatewayError> {
    use http_body::Body as _;
    if body.size_hint().lower() > limit as u64 {
        return Err(GatewayError::BodyTooLarge { limit });
    }
    match tokio::time::timeout(BODY_READ_TIMEOUT, Limited::new(body, limit).collect()).await {
        Err(_) => Err(GatewayError::BodyTimeout),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(err)) if err.downcast_ref::<LengthLimitError>().is_some() => {
            Err(GatewayError::BodyTooLarge { limit })
        }
        Ok(Err(err)) => Err(GatewayError::BadRequest {
            message: format!("could not read the request body: {err}"),
            param: None,
        }),
    }
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
