//! One HTTP/1.1 client for everything the bench sends (API server writes, gateway probes,
//! operator `/metrics`): a keep-alive pool per address, so a probe never pays for a connect.

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::time::Duration;

/// No single request of the bench should take this long; one that does means a stuck process.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Clone)]
pub struct Http {
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Http {
    /// `idle_per_host`: connections kept open per address (at least the writes in flight).
    pub fn new(idle_per_host: usize) -> Http {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client =
            Client::builder(TokioExecutor::new()).pool_max_idle_per_host(idle_per_host).build(connector);
        Http { client }
    }

    /// Sends one request; returns the status and the whole body.
    pub async fn send(
        &self,
        method: Method,
        url: &str,
        bearer: Option<&str>,
        json: Option<&serde_json::Value>,
    ) -> Result<(StatusCode, Bytes), String> {
        let mut request = Request::builder().method(method.clone()).uri(url);
        if let Some(key) = bearer {
            request = request.header(AUTHORIZATION, format!("Bearer {key}"));
        }
        let body = match json {
            Some(value) => {
                request = request.header(CONTENT_TYPE, "application/json");
                Bytes::from(serde_json::to_vec(value).map_err(|e| format!("{method} {url}: {e}"))?)
            }
            None => Bytes::new(),
        };
        let request = request.body(Full::new(body)).map_err(|e| format!("{method} {url}: {e}"))?;
        let exchange = async {
            let response = self.client.request(request).await.map_err(|e| format!("{method} {url}: {e}"))?;
            let status = response.status();
            let body = response.into_body().collect().await.map_err(|e| format!("{method} {url}: {e}"))?;
            Ok((status, body.to_bytes()))
        };
        tokio::time::timeout(REQUEST_TIMEOUT, exchange)
            .await
            .map_err(|_| format!("{method} {url}: no answer within {REQUEST_TIMEOUT:?}"))?
    }

    /// GET that must answer 200; returns the body as text.
    pub async fn get_text(&self, url: &str) -> Result<String, String> {
        let (status, body) = self.send(Method::GET, url, None, None).await?;
        if status != StatusCode::OK {
            return Err(format!("GET {url}: {status}"));
        }
        Ok(String::from_utf8_lossy(&body).into_owned())
    }
}
