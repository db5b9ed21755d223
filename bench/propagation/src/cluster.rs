//! The objects the bench writes, straight to the API server's REST paths (as kubectl would,
//! without kubectl's discovery round trips): one namespace, a mock LLMProvider, one ModelRoute,
//! and VirtualKeys each with its own Secret.

use crate::http::Http;
use http::{Method, StatusCode};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::task::JoinSet;

/// The public model name of the one route; every key may use it, so `GET /v1/models` with a
/// known key lists it.
pub const MODEL: &str = "bench-model";

const GROUP_VERSION: &str = "switchboard.dev/v1alpha1";

/// The API server and the namespace the bench owns.
#[derive(Clone)]
pub struct Api {
    http: Http,
    /// `http://127.0.0.1:PORT`
    base: String,
    namespace: String,
}

impl Api {
    pub fn new(http: Http, base: String, namespace: String) -> Api {
        Api { http, base, namespace }
    }

    pub async fn create_namespace(&self) -> Result<(), String> {
        let body = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": self.namespace}});
        self.create("/api/v1/namespaces".to_owned(), &body).await
    }

    /// The built-in mock provider and one route to it.
    pub async fn create_provider_and_route(&self) -> Result<(), String> {
        let provider = json!({
            "apiVersion": GROUP_VERSION,
            "kind": "LLMProvider",
            "metadata": {"name": "mock", "namespace": self.namespace},
            "spec": {"type": "mock"},
        });
        self.create(self.custom("llmproviders"), &provider).await?;
        let route = json!({
            "apiVersion": GROUP_VERSION,
            "kind": "ModelRoute",
            "metadata": {"name": MODEL, "namespace": self.namespace},
            "spec": {"model": MODEL, "backends": [{"providerRef": {"name": "mock"}}]},
        });
        self.create(self.custom("modelroutes"), &route).await
    }

    /// The Secret holding the key of VirtualKey `name` (same name, entry `key`).
    pub async fn create_secret(&self, name: &str) -> Result<(), String> {
        let body = json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, "namespace": self.namespace},
            "type": "Opaque",
            "stringData": {"key": key_value(name)},
        });
        self.create(format!("/api/v1/namespaces/{}/secrets", self.namespace), &body).await
    }

    /// VirtualKey `name`, reading its key from the Secret of the same name.
    pub async fn create_key(&self, name: &str) -> Result<(), String> {
        let body = json!({
            "apiVersion": GROUP_VERSION,
            "kind": "VirtualKey",
            "metadata": {"name": name, "namespace": self.namespace},
            "spec": {"secretRef": {"name": name}, "models": [MODEL], "team": "bench"},
        });
        self.create(self.custom("virtualkeys"), &body).await
    }

    pub async fn delete_key(&self, name: &str) -> Result<(), String> {
        let url = format!("{}{}/{name}", self.base, self.custom("virtualkeys"));
        let (status, body) = self.http.send(Method::DELETE, &url, None, None).await?;
        if !status.is_success() {
            return Err(format!("DELETE {url}: {status}: {}", String::from_utf8_lossy(&body)));
        }
        Ok(())
    }

    fn custom(&self, plural: &str) -> String {
        format!("/apis/{GROUP_VERSION}/namespaces/{}/{plural}", self.namespace)
    }

    async fn create(&self, path: String, body: &Value) -> Result<(), String> {
        let url = format!("{}{path}", self.base);
        let (status, answer) = self.http.send(Method::POST, &url, None, Some(body)).await?;
        if status != StatusCode::CREATED && status != StatusCode::OK {
            return Err(format!("POST {url}: {status}: {}", String::from_utf8_lossy(&answer)));
        }
        Ok(())
    }
}

/// The bearer key stored in VirtualKey `name`'s Secret. Predictable on purpose: a benchmark
/// cluster lives on loopback for minutes, and the bench must know every key to probe with it.
pub fn key_value(name: &str) -> String {
    format!("sk-propagation-{name}")
}

/// Name of the `index`th of the loaded keys.
pub fn loaded_key(index: usize) -> String {
    format!("vk-{index:05}")
}

/// Creates `count` VirtualKeys and their Secrets (each Secret first, so the operator never
/// generates one), with `concurrency` writes in flight. Stops at the first failure.
pub async fn load_keys(api: &Api, count: usize, concurrency: usize) -> Result<(), String> {
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = JoinSet::new();
    for _ in 0..concurrency.min(count.max(1)) {
        let (api, next) = (api.clone(), next.clone());
        workers.spawn(async move {
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index >= count {
                    return Ok::<(), String>(());
                }
                let name = loaded_key(index);
                api.create_secret(&name).await?;
                api.create_key(&name).await?;
            }
        });
    }
    while let Some(done) = workers.join_next().await {
        done.map_err(|e| format!("a load worker failed: {e}"))??;
    }
    Ok(())
}
