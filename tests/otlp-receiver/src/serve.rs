//! The two transports: OTLP/gRPC over h2c and OTLP/HTTP over HTTP/1.1, both decoding the same
//! `ExportTraceServiceRequest`.

use crate::Store;
use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::net::TcpListener;
use tokio::sync::watch;

const GRPC_EXPORT: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
/// Larger than any batch the gateway sends (the SDK's batches are 512 spans).
const MAX_BODY: usize = 64 << 20;

pub(crate) async fn accept(
    listener: TcpListener,
    store: Arc<Store>,
    grpc: bool,
    mut stop: watch::Receiver<()>,
) {
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => continue,
            },
            _ = stop.changed() => return,
        };
        let store = store.clone();
        let service = service_fn(move |request| {
            let store = store.clone();
            async move {
                Ok::<_, Infallible>(if grpc {
                    export_grpc(&store, request).await
                } else {
                    export_http(&store, request).await
                })
            }
        });
        let io = TokioIo::new(stream);
        tokio::spawn(async move {
            // A connection error (the exporter went away) ends only that connection.
            if grpc {
                let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .serve_connection(io, service)
                    .await;
            } else {
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await;
            }
        });
    }
}

/// A unary gRPC answer: the response message then `grpc-status` trailers; or a plain body.
pub(crate) struct Answer {
    data: Option<Bytes>,
    trailers: Option<HeaderMap>,
}

impl Body for Answer {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        if let Some(data) = this.data.take() {
            return Poll::Ready(Some(Ok(Frame::data(data))));
        }
        Poll::Ready(this.trailers.take().map(|t| Ok(Frame::trailers(t))))
    }

    fn is_end_stream(&self) -> bool {
        self.data.is_none() && self.trailers.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

async fn read(request: Request<Incoming>) -> Option<Bytes> {
    Limited::new(request.into_body(), MAX_BODY).collect().await.ok().map(|c| c.to_bytes())
}

async fn export_grpc(store: &Store, request: Request<Incoming>) -> Response<Answer> {
    let headers = request.headers().clone();
    let status = if request.uri().path() != GRPC_EXPORT {
        12 // UNIMPLEMENTED
    } else {
        let accepted = match read(request).await.and_then(grpc_message) {
            Some(message) => store.add(message, true, headers).await,
            None => false,
        };
        if accepted { 0 } else { 3 } // INVALID_ARGUMENT
    };
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", HeaderValue::from(status));
    // An empty ExportTraceServiceResponse: uncompressed, zero length.
    let data = (status == 0).then(|| Bytes::from_static(&[0, 0, 0, 0, 0]));
    let mut response = Response::new(Answer { data, trailers: Some(trailers) });
    response.headers_mut().insert("content-type", HeaderValue::from_static("application/grpc"));
    response
}

/// The one message of a unary call: an uncompressed length-prefixed frame filling the body.
fn grpc_message(body: Bytes) -> Option<Bytes> {
    let (&[compressed, a, b, c, d], message) = body.split_first_chunk::<5>()?;
    let length = u32::from_be_bytes([a, b, c, d]) as usize;
    (compressed == 0 && message.len() == length).then(|| body.slice(5..))
}

async fn export_http(store: &Store, request: Request<Incoming>) -> Response<Answer> {
    if request.method() != Method::POST || request.uri().path() != "/v1/traces" {
        return plain(StatusCode::NOT_FOUND, Bytes::new());
    }
    let protobuf =
        request.headers().get("content-type").is_some_and(|v| v.as_bytes() == b"application/x-protobuf");
    if !protobuf {
        return plain(StatusCode::UNSUPPORTED_MEDIA_TYPE, Bytes::new());
    }
    let headers = request.headers().clone();
    let accepted = match read(request).await {
        Some(message) => store.add(message, false, headers).await,
        None => false,
    };
    if accepted {
        // An empty ExportTraceServiceResponse encodes to no bytes.
        plain(StatusCode::OK, BytesMut::new().freeze())
    } else {
        plain(StatusCode::BAD_REQUEST, Bytes::new())
    }
}

fn plain(status: StatusCode, body: Bytes) -> Response<Answer> {
    let mut response = Response::new(Answer { data: Some(body), trailers: None });
    *response.status_mut() = status;
    response.headers_mut().insert("content-type", HeaderValue::from_static("application/x-protobuf"));
    response
}
