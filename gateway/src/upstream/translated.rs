//! What every translated dialect (Anthropic, Gemini) does the same way around its own request
//! building: turn the OpenAI request into the hub's, and turn the upstream's answer (a complete
//! body or an event stream) back into OpenAI's through the dialect's pure readers. The exchange
//! itself is the [`Executor`]'s.

use super::exec::{Answer, Executor};
use super::{Call, Reply};
use crate::body::{Source, SseRelay};
use crate::error::{UpstreamError, UpstreamErrorKind};
use crate::inbound::{Api, Inbound};
use switchboard_llm::hub::{ChatRequest, ChatResponse};
use switchboard_llm::openai::RequestError;
use switchboard_llm::stream::{HubTranslator, ProviderStream};

/// The request in the hub's terms, or a 400 for what the dialect cannot carry. `dialect` names
/// the API in the message (`Anthropic`).
pub(super) fn hub_request(
    exec: &Executor,
    call: &Call<'_>,
    request: &Inbound<'_>,
    dialect: &str,
) -> Result<ChatRequest, UpstreamError> {
    if call.api == Api::Embeddings {
        return Err(bad_request(
            exec,
            RequestError::new(
                format!(
                    "this backend ({dialect}) has no embeddings endpoint; route embeddings to a provider that does"
                ),
                Some("model"),
            ),
        ));
    }
    request.to_hub(call.model).map_err(|err| bad_request(exec, err))
}

pub(super) fn bad_request(exec: &Executor, err: RequestError) -> UpstreamError {
    UpstreamError::bad_request(exec.provider(), err)
}

/// The reply to relay for a successful `answer`: a stream translated event by event through
/// `stream`, or a complete body read and parsed by `parse`.
pub(super) async fn reply<P: ProviderStream + 'static>(
    exec: &Executor,
    answer: Answer,
    call: &Call<'_>,
    hub: &ChatRequest,
    stream: impl FnOnce() -> P,
    parse: fn(&[u8]) -> Result<ChatResponse, String>,
) -> Result<Reply, UpstreamError> {
    let created = crate::unix_now();
    if hub.stream {
        if !answer.is_event_stream() {
            return Err(exec.error(UpstreamErrorKind::InvalidResponse(
                "asked for a stream, got a response that is not text/event-stream".into(),
            )));
        }
        let renderer = call.client.renderer(call.model, created);
        let translator = Box::new(HubTranslator::new(stream(), renderer));
        let source = Source::Http(answer.response.into_body());
        return Ok(Reply::Stream(SseRelay::new(source, translator, exec.idle_timeout())));
    }
    let body = exec.read_body(answer).await?;
    let response = parse(&body).map_err(|reason| exec.error(UpstreamErrorKind::InvalidResponse(reason)))?;
    let usage = response.usage;
    Ok(Reply::Full { body: call.client.render(&response, created), usage })
}
