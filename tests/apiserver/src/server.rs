//! HTTP/1.1 serving and request dispatch: one thread, one current-thread runtime, every
//! connection a local task. The store is a `RefCell` borrowed for one synchronous step per
//! request (never across an await), so writes and the watch events they cause are ordered
//! without locks.

use std::cell::RefCell;
use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::pin::{Pin, pin};
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderValue};
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::time::Sleep;

use crate::discovery;
use crate::lifecycle::DeleteOptions;
use crate::patch::PatchType;
use crate::route::{self, Route, Target};
use crate::select::Selector;
use crate::status::ApiError;
use crate::store::{Part, Store, WriteOptions, Written};
use crate::table::{self, Include};
use crate::watch::WatchRequest;

const MAX_BODY: usize = 16 << 20;

pub(crate) struct Shared {
    pub store: RefCell<Store>,
    pub address: String,
    pub log_requests: bool,
}

/// A response body: one buffer, or a watch's events until it ends or times out.
pub(crate) enum Body {
    Full(Option<Bytes>),
    Watch { events: mpsc::UnboundedReceiver<Bytes>, deadline: Pin<Box<Sleep>> },
}

impl HttpBody for Body {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            Self::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Self::Watch { events, deadline } => {
                if let Poll::Ready(event) = events.poll_recv(cx) {
                    return Poll::Ready(event.map(|b| Ok(Frame::data(b))));
                }
                // `timeoutSeconds`: the watch ends normally and the client watches again.
                deadline.as_mut().poll(cx).map(|()| None)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, Self::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            Self::Watch { .. } => SizeHint::default(),
        }
    }
}

pub(crate) async fn accept_loop(
    listener: TcpListener,
    shared: Rc<Shared>,
    mut shutdown: watch::Receiver<bool>,
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
        let _ = stream.set_nodelay(true);
        let shared = Rc::clone(&shared);
        let builder = builder.clone();
        tokio::task::spawn_local(async move {
            let service = service_fn(move |req| handle(Rc::clone(&shared), req));
            let _ = pin!(builder.serve_connection(TokioIo::new(stream), service)).await;
        });
    }
}

fn json_response(status: u16, value: &Value, warnings: &[String]) -> Response<Body> {
    let bytes = serde_json::to_vec(value).unwrap_or_default();
    let mut response = Response::new(Body::Full(Some(Bytes::from(bytes))));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    for warning in warnings {
        let text = format!("299 - {:?}", warning);
        if let Ok(value) = HeaderValue::from_str(&text) {
            response.headers_mut().append("warning", value);
        }
    }
    response
}

fn error_response(error: &ApiError) -> Response<Body> {
    json_response(error.code, &error.to_status(), &[])
}

async fn handle(shared: Rc<Shared>, request: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = match dispatch(&shared, request).await {
        Ok(response) => response,
        Err(error) => error_response(&error),
    };
    if shared.log_requests {
        eprintln!("{method} {path} -> {}", response.status().as_u16());
    }
    Ok(response)
}

/// The parts of a request the handlers read.
struct Call {
    method: Method,
    query: HashMap<String, String>,
    accept: String,
    content_type: String,
    body: Bytes,
}

impl Call {
    fn param(&self, name: &str) -> Option<&str> {
        self.query.get(name).map(String::as_str).filter(|v| !v.is_empty())
    }

    fn flag(&self, name: &str) -> bool {
        matches!(self.param(name), Some("true" | "1"))
    }

    fn write_options(&self) -> WriteOptions {
        WriteOptions {
            dry_run: self.param("dryRun") == Some("All"),
            strict: self.param("fieldValidation") == Some("Strict"),
            field_manager: self.param("fieldManager").map(str::to_owned),
        }
    }

    fn json_body(&self) -> Result<Value, ApiError> {
        let media = self.content_type.split(';').next().unwrap_or_default().trim();
        match media {
            "" | "application/json" | "*/*" => serde_json::from_slice(&self.body)
                .map_err(|e| ApiError::bad_request(format!("the request body is not valid JSON: {e}"))),
            "application/yaml" | "application/apply-patch+yaml" => {
                let text =
                    std::str::from_utf8(&self.body).map_err(|e| ApiError::bad_request(e.to_string()))?;
                serde_yaml_ng::from_str(text)
                    .map_err(|e| ApiError::bad_request(format!("the request body is not valid YAML: {e}")))
            }
            _ if PatchType::from_content_type(media).is_some() => serde_json::from_slice(&self.body)
                .map_err(|e| ApiError::bad_request(format!("the request body is not valid JSON: {e}"))),
            other => Err(ApiError::unsupported_media_type(other)),
        }
    }
}

async fn dispatch(shared: &Shared, request: Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let (parts, body) = request.into_parts();
    let header = |name: http::HeaderName| {
        parts.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
    };
    let body = Limited::new(body, MAX_BODY)
        .collect()
        .await
        .map_err(|_| ApiError::bad_request("could not read the request body"))?
        .to_bytes();
    let call = Call {
        method: parts.method.clone(),
        query: route::query(parts.uri.query()),
        accept: header(http::header::ACCEPT),
        content_type: header(CONTENT_TYPE),
        body,
    };
    let get = call.method == Method::GET;
    let kinds = shared.store.borrow().kinds.clone();
    let ok = |value: Value| Ok(json_response(200, &value, &[]));
    match route::route(&kinds, parts.uri.path()) {
        Route::Version if get => ok(discovery::version()),
        Route::Health if get => Ok(Response::new(Body::Full(Some(Bytes::from_static(b"ok"))))),
        Route::CoreVersions if get => ok(discovery::core_versions(&shared.address)),
        Route::Groups if get => ok(discovery::groups(&kinds)),
        Route::Group(group) if get => discovery::group(&kinds, &group).map_or_else(|| not_found(&parts), ok),
        Route::Resources(group, version) if get => {
            discovery::resources(&kinds, &group, &version).map_or_else(|| not_found(&parts), ok)
        }
        Route::OpenApiRoot if get => ok(shared.store.borrow().openapi.root.clone()),
        Route::OpenApiDocument(path) if get => {
            let document = shared.store.borrow().openapi.documents.get(&path).cloned();
            document.map_or_else(|| not_found(&parts), ok)
        }
        Route::Resource(target) => resource(shared, &call, target),
        Route::NotFound => not_found(&parts),
        _ => Err(ApiError::method_not_allowed(format!("{} is not supported here", call.method))),
    }
}

fn not_found(parts: &http::request::Parts) -> Result<Response<Body>, ApiError> {
    Err(ApiError::not_found_path(parts.uri.path()))
}

fn written(result: Written) -> Response<Body> {
    json_response(if result.created { 201 } else { 200 }, &result.object, &result.warnings)
}

fn resource(shared: &Shared, call: &Call, target: Target) -> Result<Response<Body>, ApiError> {
    let mut store = shared.store.borrow_mut();
    let kind = store.kinds[target.kind].clone();
    let part = match target.subresource.as_deref() {
        None => Part::Main,
        Some("status") if kind.status => Part::Status,
        Some(other) => {
            return Err(ApiError::not_found_path(&format!("{}/{other}", kind.plural)));
        }
    };
    let namespace = target.namespace.clone().unwrap_or_default();
    let Some(name) = target.name.clone() else {
        return match call.method {
            Method::GET if call.flag("watch") => watch(&mut store, call, &target),
            Method::GET => list(&store, call, &target),
            Method::POST if kind.namespaced && target.namespace.is_none() => {
                Err(ApiError::method_not_allowed(format!("create {} needs a namespace", kind.plural)))
            }
            Method::POST => Ok(written(store.create(
                target.kind,
                &namespace,
                call.json_body()?,
                &call.write_options(),
            )?)),
            _ => {
                Err(ApiError::method_not_allowed(format!("{} is not supported on a collection", call.method)))
            }
        };
    };
    match call.method {
        Method::GET => {
            let object = store.get(target.kind, &namespace, &name)?;
            Ok(json_response(
                200,
                &shape(&kind, call, &[object], &store.resource_version().to_string(), false),
                &[],
            ))
        }
        Method::PUT => Ok(written(store.update(
            target.kind,
            &namespace,
            &name,
            call.json_body()?,
            part,
            &call.write_options(),
        )?)),
        Method::PATCH => {
            let patch_type = PatchType::from_content_type(&call.content_type)
                .ok_or_else(|| ApiError::unsupported_media_type(&call.content_type))?;
            let mut options = call.write_options();
            if patch_type == PatchType::Apply {
                // A server-side apply is strict unless told otherwise, as on a real apiserver.
                options.strict = call.param("fieldValidation").is_none_or(|v| v == "Strict");
            }
            let patch = call.json_body()?;
            Ok(written(store.patch(target.kind, &namespace, &name, patch_type, &patch, part, &options)?))
        }
        Method::DELETE => {
            let body: Value = if call.body.is_empty() { Value::Null } else { call.json_body()? };
            let mut options = DeleteOptions::parse(&body, call.param("propagationPolicy"))?;
            options.dry_run |= call.param("dryRun") == Some("All");
            Ok(json_response(200, &store.delete(target.kind, &namespace, &name, &options)?, &[]))
        }
        _ => Err(ApiError::method_not_allowed(format!("{} is not supported", call.method))),
    }
}

/// An object or a list in the representation the `Accept` header asks for: as is, as a Table
/// (`kubectl get`) or as PartialObjectMetadata (kube's metadata API).
fn shape(kind: &crate::kinds::Kind, call: &Call, objects: &[&Value], rv: &str, list: bool) -> Value {
    if call.accept.contains("as=Table") {
        let include = match call.param("includeObject") {
            Some("None") => Include::None,
            Some("Object") => Include::Object,
            _ => Include::Metadata,
        };
        return table::table(kind, objects, rv, include);
    }
    let metadata_only = call.accept.contains("as=PartialObjectMetadata");
    if !list {
        let object = objects.first().map_or(Value::Null, |o| (*o).clone());
        return if metadata_only { table::partial_metadata(&object) } else { object };
    }
    let items: Vec<Value> = objects
        .iter()
        .map(|o| if metadata_only { table::partial_metadata(o) } else { (*o).clone() })
        .collect();
    let (api_version, list_kind) = if metadata_only {
        ("meta.k8s.io/v1".to_owned(), "PartialObjectMetadataList".to_owned())
    } else {
        (kind.api_version(), format!("{}List", kind.kind))
    };
    serde_json::json!({"kind": list_kind, "apiVersion": api_version, "metadata": {"resourceVersion": rv}, "items": items})
}

fn list(store: &Store, call: &Call, target: &Target) -> Result<Response<Body>, ApiError> {
    let selector = Selector::parse(call.param("labelSelector"), call.param("fieldSelector"))?;
    let current = store.resource_version();
    // Lists are always served from the current state: an older exact resourceVersion cannot be.
    if let Some(rv) = call.param("resourceVersion").and_then(|rv| rv.parse::<u64>().ok()) {
        if rv > current {
            return Err(ApiError::too_large_resource_version(rv, current));
        }
        if call.param("resourceVersionMatch") == Some("Exact") && rv != current {
            return Err(ApiError::expired(format!("too old resource version: {rv} ({current})")));
        }
    }
    let objects: Vec<&Value> = store
        .list(target.kind, target.namespace.as_deref())
        .into_iter()
        .filter(|o| selector.matches(o))
        .collect();
    let kind = &store.kinds[target.kind];
    Ok(json_response(200, &shape(kind, call, &objects, &current.to_string(), true), &[]))
}

fn watch(store: &mut Store, call: &Call, target: &Target) -> Result<Response<Body>, ApiError> {
    let request = WatchRequest {
        kind: target.kind,
        namespace: target.namespace.clone(),
        selector: Selector::parse(call.param("labelSelector"), call.param("fieldSelector"))?,
        resource_version: call.param("resourceVersion").map(str::to_owned),
        send_initial_events: call.param("sendInitialEvents").map(|v| v == "true"),
        bookmarks: call.flag("allowWatchBookmarks"),
        metadata_only: call.accept.contains("as=PartialObjectMetadata"),
    };
    let timeout = call.param("timeoutSeconds").and_then(|t| t.parse::<u64>().ok()).unwrap_or(1800);
    let events = store.watch(request)?;
    let deadline = Box::pin(tokio::time::sleep(Duration::from_secs(timeout)));
    let mut response = Response::new(Body::Watch { events, deadline });
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(response)
}
