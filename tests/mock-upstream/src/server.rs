//! The accept loop, per-connection hyper http1 serving (keep-alive, graceful shutdown),
//! request routing and where injected faults take effect.

use std::io;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::behavior::{bad_request, error_response, json_response, not_found, unauthorized};
use crate::body::MockBody;
use crate::fault::{Dropped, Injection, ResetFlag, StreamShape};
use crate::stats::bump;
use crate::{Recorded, Shared, chat, embeddings, fault, responses};

/// Largest request body accepted (bigger ones get a 413).
const MAX_BODY: usize = 64 << 20;

const MODELS: &[u8] = br#"{"object":"list","data":[{"id":"mock-upstream-model","object":"model","created":1700000000,"owned_by":"switchboard-mock"}]}"#;

pub(crate) async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<()>,
) {
    let mut builder = http1::Builder::new();
    builder.timer(TokioTimer::new()).keep_alive(true);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(_) => {
                    // EMFILE and friends: back off briefly instead of spinning.
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        bump(&shared.stats.connections_opened);
        let loopback = peer.ip().is_loopback();
        tokio::spawn(serve_connection(
            stream,
            loopback,
            builder.clone(),
            Arc::clone(&shared),
            shutdown.clone(),
        ));
    }
}

/// The accepted socket, closed with RST instead of FIN when its flag is set by the time it is
/// dropped: a `Reset` fault sets the flag and fails the service, so hyper drops the connection
/// without writing anything.
struct Socket {
    stream: TcpStream,
    reset: ResetFlag,
}

impl Drop for Socket {
    fn drop(&mut self) {
        if self.reset.load(Ordering::Relaxed) {
            // SO_LINGER 0: close() discards the socket and sends RST.
            let _ = self.stream.set_zero_linger();
        }
    }
}

impl AsyncRead for Socket {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Socket {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

async fn serve_connection(
    stream: TcpStream,
    loopback: bool,
    builder: http1::Builder,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<()>,
) {
    let _ = stream.set_nodelay(true);
    let reset = ResetFlag::new(AtomicBool::new(false));
    let conn_info = Conn { loopback, reset: Arc::clone(&reset) };
    let svc_shared = Arc::clone(&shared);
    let svc = service_fn(move |req| handle(Arc::clone(&svc_shared), conn_info.clone(), req));
    let mut conn = pin!(builder.serve_connection(TokioIo::new(Socket { stream, reset }), svc));
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = shutdown.changed() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
    bump(&shared.stats.connections_closed);
}

/// What a request's handler knows of its connection.
#[derive(Clone)]
struct Conn {
    /// The peer is on loopback (the fault control endpoint answers only such peers).
    loopback: bool,
    reset: ResetFlag,
}

#[derive(Clone, Copy)]
enum Route {
    Chat,
    Embeddings,
    Responses,
}

async fn handle(
    shared: Arc<Shared>,
    conn: Conn,
    req: Request<Incoming>,
) -> Result<Response<MockBody>, Dropped> {
    bump(&shared.stats.requests);
    let (parts, body) = req.into_parts();
    let mut path = parts.uri.path();
    let mut azure_deployment = None;
    if let Some(azure) = &shared.azure {
        let uri = parts.uri.path_and_query().map_or(path, |pq| pq.as_str());
        shared.last_azure_uri.store(Some(Arc::new(uri.to_owned())));
        match crate::azure::route(azure, path, parts.uri.query(), &parts.headers) {
            Ok((openai, deployment)) => (path, azure_deployment) = (openai, deployment),
            Err(refusal) => return Ok(*refusal),
        }
    }
    let route = match (&parts.method, path) {
        (&Method::POST, "/v1/chat/completions") => Route::Chat,
        (&Method::POST, "/v1/embeddings") => Route::Embeddings,
        (&Method::POST, "/v1/responses") => Route::Responses,
        (&Method::GET, "/v1/models") => {
            if !shared.authorized(&parts.headers) {
                return Ok(unauthorized());
            }
            return Ok(json_response(MockBody::full(MODELS)));
        }
        (&Method::GET, "/_mock/stats") => {
            return Ok(match serde_json::to_vec(&shared.stats.snapshot()) {
                Ok(v) => json_response(MockBody::full(v)),
                Err(e) => error_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &e.to_string(),
                    "server_error",
                    "server_error",
                ),
            });
        }
        (&Method::POST, "/_mock/fault") => {
            if !conn.loopback {
                let message = "The fault control endpoint answers loopback peers only.";
                return Ok(error_response(StatusCode::FORBIDDEN, message, "permission_error", "forbidden"));
            }
            return Ok(match Limited::new(body, 64 << 10).collect().await {
                Ok(collected) => fault::control(&shared.faults, &collected.to_bytes()),
                Err(_) => bad_request("Could not read the request body."),
            });
        }
        (_, path) => return Ok(not_found(path)),
    };
    let path = match route {
        Route::Chat => {
            bump(&shared.stats.chat_requests);
            "/v1/chat/completions"
        }
        Route::Embeddings => {
            bump(&shared.stats.embeddings_requests);
            "/v1/embeddings"
        }
        Route::Responses => {
            bump(&shared.stats.responses_requests);
            "/v1/responses"
        }
    };
    if !shared.authorized(&parts.headers) {
        return Ok(unauthorized());
    }
    let bytes = match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            return Ok(error_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                "Request body too large.",
                "invalid_request_error",
                "request_too_large",
            ));
        }
        Err(_) => return Ok(bad_request("Could not read the request body.")),
    };
    shared.last.store(Some(Arc::new(Recorded { path, headers: parts.headers, body: bytes.clone() })));
    if shared.azure.is_some() {
        let json = serde_json::from_slice::<serde_json::Value>(&bytes).unwrap_or_default();
        let model =
            azure_deployment.or_else(|| json["model"].as_str().map(str::to_owned)).unwrap_or_default();
        if let Some(answer) = crate::azure::special(&model, &json) {
            return Ok(answer);
        }
    }
    let mut shape = StreamShape::default();
    if let Some(fault) = shared.faults.pick(&shared.stats) {
        match fault.inject(!matches!(route, Route::Embeddings), &bytes) {
            Injection::Respond(response) => return Ok(*response),
            Injection::Drop { reset } => {
                conn.reset.store(reset, Ordering::Relaxed);
                return Err(Dropped);
            }
            Injection::Wait(delay) => tokio::time::sleep(delay).await,
            Injection::Shape(bent) => shape = bent,
        }
    }
    Ok(match route {
        Route::Chat => chat::handle(&shared, &bytes, shape).await,
        Route::Embeddings => embeddings::handle(&bytes).await,
        Route::Responses => responses::handle(&shared, &bytes, shape).await,
    })
}
