//! The plumbing both mocks share: the accept loop, one hyper HTTP/1 connection per socket
//! (keep-alive, graceful shutdown), reading the bounded body, counting and recording every
//! request, and the running-server handle that stops everything on drop.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{HeaderMap, Method, Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::RecordedRequest;
use crate::body::MockBody;

/// One request as a provider handler sees it: the whole body already read.
#[derive(Debug)]
pub(crate) struct Req {
    pub(crate) method: Method,
    pub(crate) path: String,
    pub(crate) query: Option<String>,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
    /// 1 for the first request this server received.
    pub(crate) number: u64,
}

impl Req {
    /// The header's value as text (`None` when absent or not visible ASCII).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The first value of a query parameter (no percent-decoding: the mocks' values need none).
    pub(crate) fn query_param(&self, name: &str) -> Option<&str> {
        self.query.as_deref()?.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k == name).then_some(v)
        })
    }
}

/// A provider: turns a request into a response. Handlers are synchronous; pacing and
/// disconnects live in the response body.
pub(crate) trait Provider: Send + Sync + 'static {
    /// The largest body accepted; a bigger one gets [`Provider::too_large`].
    fn max_body_bytes(&self) -> usize;
    fn too_large(&self, number: u64) -> Response<MockBody>;
    fn handle(&self, req: Req) -> Response<MockBody>;
}

/// State shared by the accept loop and every connection.
#[derive(Debug, Default)]
pub(crate) struct Common {
    pub(crate) requests: AtomicU64,
    pub(crate) last: ArcSwapOption<Recorded>,
}

/// A request as stored: parsed into a [`RecordedRequest`] only when a test asks for it.
#[derive(Debug)]
pub(crate) struct Recorded {
    method: Method,
    path: String,
    query: Option<String>,
    headers: HeaderMap,
    body: Bytes,
}

impl Recorded {
    pub(crate) fn to_public(&self) -> RecordedRequest {
        let body = serde_json::from_slice(&self.body)
            .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(&self.body).into_owned()));
        let headers = self
            .headers
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect();
        RecordedRequest {
            method: self.method.to_string(),
            path: self.path.clone(),
            query: self.query.clone(),
            headers,
            body,
        }
    }
}

/// A running server; dropping it stops accepting and gracefully closes open connections
/// (responses in flight finish first).
#[derive(Debug)]
pub(crate) struct Running {
    pub(crate) addr: SocketAddr,
    pub(crate) common: Arc<Common>,
    _shutdown: watch::Sender<()>,
}

impl Running {
    pub(crate) async fn start<P: Provider>(bind: SocketAddr, provider: P) -> std::io::Result<Running> {
        let listener = TcpListener::bind(bind).await?;
        let addr = listener.local_addr()?;
        let common = Arc::new(Common::default());
        let (tx, rx) = watch::channel(());
        tokio::spawn(accept_loop(listener, Arc::new(provider), Arc::clone(&common), rx));
        Ok(Running { addr, common, _shutdown: tx })
    }

    /// `http://<addr>`, with an unspecified bind IP replaced by loopback.
    pub(crate) fn origin(&self) -> String {
        let mut addr = self.addr;
        if addr.ip().is_unspecified() {
            addr.set_ip(match addr {
                SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            });
        }
        format!("http://{addr}")
    }

    pub(crate) fn requests(&self) -> u64 {
        self.common.requests.load(Ordering::Relaxed)
    }

    pub(crate) fn last_request(&self) -> Option<RecordedRequest> {
        self.common.last.load_full().map(|r| r.to_public())
    }
}

async fn accept_loop<P: Provider>(
    listener: TcpListener,
    provider: Arc<P>,
    common: Arc<Common>,
    mut shutdown: watch::Receiver<()>,
) {
    let mut builder = http1::Builder::new();
    builder.timer(TokioTimer::new()).keep_alive(true);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => {
                    // EMFILE and friends: back off briefly instead of spinning.
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        tokio::spawn(serve_connection(
            stream,
            builder.clone(),
            Arc::clone(&provider),
            Arc::clone(&common),
            shutdown.clone(),
        ));
    }
}

async fn serve_connection<P: Provider>(
    stream: TcpStream,
    builder: http1::Builder,
    provider: Arc<P>,
    common: Arc<Common>,
    mut shutdown: watch::Receiver<()>,
) {
    let _ = stream.set_nodelay(true);
    let svc = service_fn(move |req| handle(Arc::clone(&provider), Arc::clone(&common), req));
    let mut conn = pin!(builder.serve_connection(TokioIo::new(stream), svc));
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = shutdown.changed() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

async fn handle<P: Provider>(
    provider: Arc<P>,
    common: Arc<Common>,
    req: Request<Incoming>,
) -> Result<Response<MockBody>, Infallible> {
    let number = common.requests.fetch_add(1, Ordering::Relaxed) + 1;
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, provider.max_body_bytes()).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            // Too large, or the client went away mid-body: either way there is nothing to parse.
            return Ok(provider.too_large(number));
        }
    };
    let path = parts.uri.path().to_owned();
    let query = parts.uri.query().map(str::to_owned);
    common.last.store(Some(Arc::new(Recorded {
        method: parts.method.clone(),
        path: path.clone(),
        query: query.clone(),
        headers: parts.headers.clone(),
        body: body.clone(),
    })));
    Ok(provider.handle(Req { method: parts.method, path, query, headers: parts.headers, body, number }))
}
