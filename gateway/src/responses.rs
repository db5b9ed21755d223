//! The Responses API's state, around the shared request path: the conversation a request
//! continues (`previous_response_id`), the answer saved once rendered (`store`, on by default),
//! and `GET`/`DELETE /v1/responses/{id}`. Every stored response belongs to the key that created
//! it (`conversations.rs`).

use crate::auth::Key;
use crate::body::GatewayBody;
use crate::conversations::{Store, Stored};
use crate::error::GatewayError;
use crate::inbound::Responses;
use bytes::Bytes;
use http::HeaderValue;
use http::Response;
use http::header::CONTENT_TYPE;
use serde_json::Value;

/// Attaches the conversation `previous_response_id` names, if the caller's key created it.
pub async fn continue_conversation(
    store: &Store,
    key: &Key,
    responses: &mut Responses<'_>,
) -> Result<(), GatewayError> {
    let Some(previous) = responses.request.previous_response_id().map(str::to_owned) else {
        return Ok(());
    };
    let stored = store.get(&key.id, &previous).await.map_err(|_| GatewayError::StoreUnavailable)?;
    let Some(stored) = stored else {
        return Err(GatewayError::PreviousResponseNotFound { id: previous });
    };
    let bytes: usize = stored.items.iter().map(|item| item.to_string().len()).sum();
    if bytes > store.limits.max_conversation_bytes {
        return Err(GatewayError::ConversationTooLarge { limit: store.limits.max_conversation_bytes });
    }
    responses.history = stored.items;
    Ok(())
}

/// Saves the answer once it is rendered: a whole answer before it is returned, a stream before
/// its last events go out, so a client that continues the conversation at once finds it,
/// whichever replica it reaches. A store that fails is logged; the answer is still delivered.
pub async fn save_when_rendered(
    store: &Store,
    key: &Key,
    responses: &Responses<'_>,
    response: &mut Response<GatewayBody>,
) {
    if !responses.request.store() || !response.status().is_success() {
        return;
    }
    let save = Save {
        store: store.clone(),
        key: key.id.to_string(),
        id: responses.context.id.clone(),
        items: responses.history.iter().chain(&responses.request.input).cloned().collect(),
        finished: responses.finished.clone(),
    };
    if responses.request.stream {
        let hook =
            Box::new(move || Box::pin(save.run()) as std::pin::Pin<Box<dyn Future<Output = ()> + Send>>);
        response.body_mut().before_end(hook);
    } else {
        save.run().await;
    }
}

struct Save {
    store: Store,
    key: String,
    id: String,
    items: Vec<Value>,
    finished: std::sync::Arc<std::sync::OnceLock<switchboard_llm::responses::Rendered>>,
}

impl Save {
    async fn run(self) {
        let Some(rendered) = self.finished.get() else { return };
        let mut items = self.items;
        items.extend(rendered.output.iter().cloned());
        // A backend that speaks the Responses API names its answer; the gateway names the others.
        let id = rendered.response.get("id").and_then(Value::as_str).unwrap_or(&self.id).to_owned();
        let stored = Stored { key: self.key, response: rendered.response.clone(), items };
        if self.store.put(&id, &stored).await.is_err() {
            tracing::warn!(response = %id, "could not store the response; previous_response_id will not find it");
        }
    }
}

/// `GET /v1/responses/{id}`: the stored response, if the caller's key created it.
pub async fn retrieve(store: &Store, key: &Key, id: &str) -> Result<Response<GatewayBody>, GatewayError> {
    let stored = store.get(&key.id, id).await.map_err(|_| GatewayError::StoreUnavailable)?;
    let stored = stored.ok_or_else(|| GatewayError::ResponseNotFound { id: id.to_owned() })?;
    Ok(json(Bytes::from(stored.response.to_string())))
}

/// `DELETE /v1/responses/{id}`: deletes it, if the caller's key created it.
pub async fn delete(store: &Store, key: &Key, id: &str) -> Result<Response<GatewayBody>, GatewayError> {
    if !store.delete(&key.id, id).await.map_err(|_| GatewayError::StoreUnavailable)? {
        return Err(GatewayError::ResponseNotFound { id: id.to_owned() });
    }
    let body = serde_json::json!({ "id": id, "object": "response", "deleted": true });
    Ok(json(Bytes::from(body.to_string())))
}

fn json(body: Bytes) -> Response<GatewayBody> {
    let mut response = Response::new(GatewayBody::full(body));
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}
