//! A request as its client sent it, in the API it called, and what the shared request path asks
//! of every such API: the public model, whether it streams, what it needs of a backend, what to
//! reserve for it, and how answers and errors are written back in its dialect.
//!
//! The admission and forwarding code (`handle.rs`) only talks to [`Inbound`]; a provider gets
//! the request in the client's own form, so a backend of the same dialect forwards it with only
//! `model` rewritten, and every other backend translates it through the hub
//! ([`Inbound::to_hub`]) and renders its answer with [`ClientApi`].

use crate::error::Dialect;
use crate::limits::estimate;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue};
use serde_json::Value;
use std::sync::{Arc, OnceLock};
use switchboard_llm::RawObject;
use switchboard_llm::anthropic::{
    self,
    inbound::{InboundError, InboundRequest, MessageStreamRenderer, MessagesHead},
};
use switchboard_llm::capability::Needs;
use switchboard_llm::hub::{ChatRequest, ChatResponse};
use switchboard_llm::openai::{self, ChunkRenderer, ModelRequest, RequestError};
use switchboard_llm::responses::{self, Rendered, ResponseContext, ResponsesRenderer, ResponsesRequest};
use switchboard_llm::stream::ClientRenderer;

/// The API a model request came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// `POST /v1/chat/completions`
    ChatCompletions,
    /// `POST /v1/embeddings`
    Embeddings,
    /// `POST /v1/messages` (Anthropic's Messages API)
    Messages,
    /// `POST /v1/responses` (OpenAI's Responses API)
    Responses,
}

impl Api {
    /// The envelope errors on this API are written in.
    pub fn dialect(self) -> Dialect {
        match self {
            Api::ChatCompletions | Api::Embeddings | Api::Responses => Dialect::OpenAi,
            Api::Messages => Dialect::Anthropic,
        }
    }
}

/// A parsed model request.
pub enum Inbound<'a> {
    /// Chat completions or embeddings, kept raw: OpenAI-compatible backends get the body with
    /// only `model` rewritten.
    OpenAi { request: ModelRequest<'a>, api: Api },
    /// Anthropic Messages: kept raw for Anthropic backends (only `model` rewritten), and in the
    /// hub's terms for the others.
    Messages(Box<Messages<'a>>),
    /// OpenAI Responses: through the hub to every backend; the conversation it continues is
    /// attached by the caller ([`Responses::history`]) before it is sent.
    Responses(Box<Responses<'a>>),
}

/// A Responses request, its answer's id and, once rendered, the answer (to store it).
pub struct Responses<'a> {
    /// The body as the client sent it, for backends that speak the Responses API.
    pub raw: RawObject<'a>,
    pub request: ResponsesRequest,
    /// The conversation `previous_response_id` continues, as Responses items (empty: none).
    pub history: Vec<Value>,
    pub context: ResponseContext,
    /// The answer as the client received it, set when it is rendered (whole or streamed).
    pub finished: Arc<OnceLock<Rendered>>,
    hub: OnceLock<Result<ChatRequest, RequestError>>,
}

impl Responses<'_> {
    fn hub(&self) -> Result<&ChatRequest, &RequestError> {
        self.hub.get_or_init(|| self.request.to_hub(&self.history, "")).as_ref()
    }
}

/// A Messages request: its head read at the edge (a request without `max_tokens` is refused
/// there), the rest translated once, when a backend or a capability check first needs it.
pub struct Messages<'a> {
    pub head: MessagesHead<'a>,
    /// `anthropic-beta`: passed on to Anthropic backends only (it names Anthropic features).
    pub beta: Option<HeaderValue>,
    hub: OnceLock<Result<InboundRequest, InboundError>>,
}

impl Messages<'_> {
    /// The request in the hub's terms (`model` left empty: each backend sets its own).
    fn hub(&self) -> Result<&InboundRequest, &InboundError> {
        self.hub.get_or_init(|| self.head.to_hub("")).as_ref()
    }
}

impl<'a> Inbound<'a> {
    /// Reads what the request path needs from `body`; the rest of it is read only by the
    /// backend that serves it.
    pub fn parse(api: Api, body: &'a [u8], headers: &HeaderMap) -> Result<Self, RequestError> {
        match api {
            Api::Messages => {
                let head = MessagesHead::parse(body).map_err(|err| RequestError::new(err.message, None))?;
                let beta = headers.get("anthropic-beta").cloned();
                Ok(Inbound::Messages(Box::new(Messages { head, beta, hub: OnceLock::new() })))
            }
            Api::Responses => {
                let request = responses::parse_request(body)?;
                let raw = RawObject::parse(body)?;
                let context = request.context(new_response_id(), crate::unix_now());
                Ok(Inbound::Responses(Box::new(Responses {
                    raw,
                    request,
                    history: Vec::new(),
                    context,
                    finished: Arc::default(),
                    hub: OnceLock::new(),
                })))
            }
            Api::ChatCompletions | Api::Embeddings => {
                let mut request = ModelRequest::parse(body)?;
                if api == Api::Embeddings {
                    request.stream = false;
                }
                Ok(Inbound::OpenAi { request, api })
            }
        }
    }

    pub fn api(&self) -> Api {
        match self {
            Inbound::OpenAi { api, .. } => *api,
            Inbound::Messages(_) => Api::Messages,
            Inbound::Responses(_) => Api::Responses,
        }
    }

    /// The public model name the client asked for.
    pub fn model(&self) -> &str {
        match self {
            Inbound::OpenAi { request, .. } => &request.model,
            Inbound::Messages(messages) => &messages.head.model,
            Inbound::Responses(responses) => &responses.request.model,
        }
    }

    pub fn stream(&self) -> bool {
        match self {
            Inbound::OpenAi { request, .. } => request.stream,
            Inbound::Messages(messages) => messages.head.stream,
            Inbound::Responses(responses) => responses.request.stream,
        }
    }

    /// (prompt tokens, completion tokens) to reserve at admission; `body_bytes` is the size of
    /// the body, the estimate of last resort.
    pub fn demand(&self, body_bytes: usize, route_default: Option<u32>) -> (u64, u64) {
        match self {
            Inbound::OpenAi { request, api } => {
                estimate::demand(request, body_bytes, *api == Api::Embeddings, route_default)
            }
            Inbound::Messages(messages) => match messages.hub() {
                Ok(inbound) => estimate::demand_of_hub(&inbound.chat, route_default),
                // Not translatable (an Anthropic-only field): the body's size, and max_tokens.
                Err(_) => (estimate::fallback(body_bytes), u64::from(messages.head.max_tokens)),
            },
            Inbound::Responses(responses) => match responses.hub() {
                Ok(hub) => estimate::demand_of_hub(hub, route_default),
                Err(_) => (estimate::fallback(body_bytes), estimate::DEFAULT_OUTPUT),
            },
        }
    }

    /// What a backend must be able to do to serve this request.
    pub fn needs(&self) -> Needs<'_, 'a> {
        match self {
            Inbound::OpenAi { request, api } => Needs::new(request, *api == Api::Embeddings),
            Inbound::Messages(messages) => {
                Needs::of_hub(messages.hub().ok().map(|inbound| &inbound.chat), messages.head.stream)
            }
            Inbound::Responses(responses) => Needs::of_hub(responses.hub().ok(), responses.request.stream),
        }
    }

    /// The request in the hub's terms, for `upstream_model`, for backends of another dialect.
    pub fn to_hub(&self, upstream_model: &str) -> Result<ChatRequest, RequestError> {
        match self {
            Inbound::OpenAi { request, .. } => request.to_hub(upstream_model),
            Inbound::Messages(messages) => match messages.hub() {
                Ok(inbound) => {
                    let mut chat = inbound.chat.clone();
                    upstream_model.clone_into(&mut chat.model);
                    Ok(chat)
                }
                Err(err) => Err(RequestError::new(err.message.clone(), None)),
            },
            Inbound::Responses(responses) => {
                let mut chat = responses.hub().map_err(RequestError::clone)?.clone();
                upstream_model.clone_into(&mut chat.model);
                Ok(chat)
            }
        }
    }

    /// How answers translated through the hub are written back to this client.
    pub fn client(&self) -> ClientApi<'_> {
        match self {
            Inbound::OpenAi { request, .. } => ClientApi::Chat { include_usage: request.include_usage },
            Inbound::Messages(messages) => ClientApi::Messages { model: &messages.head.model },
            Inbound::Responses(responses) => {
                ClientApi::Responses { context: &responses.context, finished: &responses.finished }
            }
        }
    }
}

/// A client dialect's writer for answers that came through the hub.
#[derive(Debug, Clone, Copy)]
pub enum ClientApi<'a> {
    /// OpenAI chat completions; `include_usage`: the client asked for the usage chunk.
    Chat { include_usage: bool },
    /// Anthropic Messages; answers name the `model` the client asked for.
    Messages { model: &'a str },
    /// OpenAI Responses: the answer's id and echoed fields, and where the rendered answer is
    /// left for the store.
    Responses { context: &'a ResponseContext, finished: &'a Arc<OnceLock<Rendered>> },
}

impl ClientApi<'_> {
    /// A complete answer, as this client's response body.
    pub fn render(&self, response: &ChatResponse, created: i64) -> Bytes {
        match self {
            ClientApi::Chat { .. } => openai::render_response(response, created),
            ClientApi::Messages { model } => anthropic::inbound::render_response(response, model),
            ClientApi::Responses { context, finished } => {
                let rendered = responses::render_response(response, context);
                let body = rendered.body();
                let _ = finished.set(rendered);
                body
            }
        }
    }

    /// The stream writer for this client; `model` names the answering model until the
    /// provider's first event says otherwise.
    pub fn renderer(&self, model: &str, created: i64) -> Box<dyn ClientRenderer> {
        match self {
            ClientApi::Chat { include_usage } => Box::new(ChunkRenderer::new(model, created, *include_usage)),
            ClientApi::Messages { model } => Box::new(MessageStreamRenderer::new(model)),
            ClientApi::Responses { context, finished } => {
                let finished = Arc::clone(finished);
                Box::new(ResponsesRenderer::new((*context).clone()).on_finished(move |rendered| {
                    let _ = finished.set(rendered.clone());
                }))
            }
        }
    }
}

/// A response id no replica will repeat: `resp_` and 24 random bytes in hex.
fn new_response_id() -> String {
    use ring::rand::SecureRandom as _;
    let mut bytes = [0u8; 24];
    // The system generator does not fail on Linux; were it to, the ids would still be distinct
    // from a counter's point of view only by time: take the time too.
    if ring::rand::SystemRandom::new().fill(&mut bytes).is_err() {
        bytes[..16].copy_from_slice(&(crate::unix_now_ms() as u128).to_le_bytes());
    }
    let mut id = String::with_capacity(53);
    id.push_str("resp_");
    for byte in bytes {
        id.push_str(&format!("{byte:02x}"));
    }
    id
}
