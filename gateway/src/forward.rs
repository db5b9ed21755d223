//! Forwarding, shared by every API: the route's backends tried in order until one answers, and
//! the answer turned into the client's response.

use crate::admission::Admitted;
use crate::body::GatewayBody;
use crate::error::GatewayError;
use crate::inbound::Inbound;
use crate::ledger::Ledger;
use crate::limits::reply;
use crate::table::RoutingTable;
use crate::upstream::{Call, Reply};
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderValue, Response};
use std::time::Duration;

static APPLICATION_JSON: HeaderValue = HeaderValue::from_static("application/json");

/// Sends `request` to the admitted route's backends: each one that has what the request needs
/// (`llm::capability`), in order; a retryable failure moves on to the next, until an answer
/// starts or `deadline` (for all attempts together) passes.
pub async fn forward(
    table: &RoutingTable,
    admitted: Admitted<'_>,
    request: &Inbound<'_>,
    request_id: &HeaderValue,
    deadline: Duration,
    ledger: &mut Ledger,
) -> Result<Response<GatewayBody>, GatewayError> {
    let route = admitted.route;
    let give_up_at = tokio::time::Instant::now() + deadline;
    let needs = request.needs();
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
            api: request.api(),
            model: &backend.model,
            request_id,
            default_max_tokens: route.default_max_tokens,
            client: request.client(),
        };
        let Ok(outcome) = tokio::time::timeout_at(give_up_at, upstream.send(call, request)).await else {
            return Err(GatewayError::DeadlineExceeded { deadline });
        };
        backend.metrics.record(outcome.as_ref().map(|_| ()));
        backend.record(outcome.as_ref().err().map(|err| err.is_retryable()));
        match outcome {
            Ok(reply) => {
                ledger.set_provider(upstream.name(), backend.price);
                let mut response = respond(reply, backend.provider_header.as_ref(), ledger);
                reply::write(&admitted.headroom, response.headers_mut());
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
            GatewayError::Unsupported { model: request.model().to_owned(), capability }
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
