//! `POST /v1/messages/count_tokens` (Anthropic's token counting): the route's first Anthropic
//! backend answers it, with only `model` rewritten; a route without one cannot (other
//! providers' counts are for other tokenizers, and a guess would be passed off as a count).
//! Nothing is charged to limits: counting generates nothing.

use crate::Gateway;
use crate::body::GatewayBody;
use crate::error::GatewayError;
use crate::table::RoutingTable;
use crate::upstream::Upstream;
use http::header::CONTENT_TYPE;
use http::{HeaderValue, Request, Response};
use hyper::body::Incoming;
use switchboard_llm::RawObject;

pub async fn count_tokens(
    gateway: &Gateway,
    table: &RoutingTable,
    request: Request<Incoming>,
    request_id: &HeaderValue,
) -> Result<Response<GatewayBody>, GatewayError> {
    let key = table.keys.authenticate(request.headers(), crate::unix_now())?;
    let (parts, body) = request.into_parts();
    let buffered = gateway.edge.read_body(body).await?;
    let body = RawObject::parse(buffered.check_depth()?)
        .map_err(|err| GatewayError::BadRequest { message: err.0, param: None })?;
    let model = match body.get_as::<String>("model") {
        Ok(Some(model)) if !model.is_empty() => model,
        _ => return Err(GatewayError::BadRequest { message: "model: Field required".into(), param: None }),
    };
    let route = table.route(&model).ok_or_else(|| GatewayError::UnknownModel { model: model.clone() })?;
    if !key.may_use(route.index) {
        return Err(GatewayError::ModelNotAllowed { model });
    }
    let beta = parts.headers.get("anthropic-beta");
    for backend in route.attempts(crate::table::now_ms()).order {
        if let Upstream::Anthropic(provider) = &table.upstreams[backend.upstream] {
            let answer = provider.count_tokens(&backend.model, &body, beta, request_id).await?;
            let mut response = Response::new(GatewayBody::full(answer));
            response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            return Ok(response);
        }
    }
    Err(GatewayError::BadRequest {
        message: format!(
            "The model '{model}' cannot count tokens: only Anthropic backends answer /v1/messages/count_tokens, and this model has none."
        ),
        param: None,
    })
}
