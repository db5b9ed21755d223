//! Sending an encoded export request to the collector: OTLP/HTTP (a protobuf `POST`) or OTLP/gRPC
//! (the unary `TraceService/Export` call over HTTP/2), both on the hyper client the providers
//! use, so plain and TLS endpoints work alike.
//!
//! OTLP/gRPC is a single unary method: a 5-byte message prefix, `application/grpc`, and the
//! outcome in the `grpc-status` trailer (or header, for a trailers-only answer). That is all the
//! gRPC this needs; a gRPC framework would add a second HTTP stack to the gateway for it
//! (<https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md>).

use super::{Protocol, Settings};
use crate::upstream::{CollectorClient, collector_client};
use bytes::Bytes;
use http::header::{CONTENT_TYPE, USER_AGENT};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Uri};
use http_body_util::{BodyExt as _, Full};
use std::time::Duration;

/// gRPC's message prefix: a compression flag and the message's length.
const GRPC_PREFIX: usize = 5;

/// The gRPC method an OTLP trace export calls.
const GRPC_EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

pub struct Exporter {
    client: CollectorClient,
    protocol: Protocol,
    uri: Uri,
    /// `OTEL_EXPORTER_OTLP_*HEADERS` (a collector's credentials, often), then ours.
    headers: HeaderMap,
    timeout: Duration,
}

impl Exporter {
    pub fn new(settings: &Settings) -> Result<Exporter, String> {
        let url = match settings.protocol {
            Protocol::Grpc => format!("{}{GRPC_EXPORT_PATH}", settings.endpoint.trim_end_matches('/')),
            Protocol::HttpProtobuf => settings.endpoint.clone(),
        };
        let uri: Uri = url.parse().map_err(|err| format!("OTLP endpoint {:?}: {err}", settings.endpoint))?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
            return Err(format!(
                "OTLP endpoint {:?}: expected an http:// or https:// URL",
                settings.endpoint
            ));
        }
        let mut headers = HeaderMap::new();
        for (name, value) in settings.headers.iter() {
            let name = HeaderName::try_from(name.as_str())
                .map_err(|_| format!("OTLP header {name:?}: not a valid header name"))?;
            // The value is never echoed: it is usually a credential.
            let value = HeaderValue::try_from(value.as_str())
                .map_err(|_| format!("OTLP header {name}: the value is not a valid header value"))?;
            headers.insert(name, value);
        }
        let content_type = match settings.protocol {
            Protocol::Grpc => {
                headers.insert("te", HeaderValue::from_static("trailers"));
                "application/grpc"
            }
            Protocol::HttpProtobuf => "application/x-protobuf",
        };
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        headers.insert(
            USER_AGENT,
            HeaderValue::from_static(concat!("switchboard-gateway/", env!("CARGO_PKG_VERSION"))),
        );
        Ok(Exporter {
            client: collector_client(settings.protocol == Protocol::Grpc),
            protocol: settings.protocol,
            uri,
            headers,
            timeout: settings.timeout,
        })
    }

    /// `request_bytes` is the export message after [`GRPC_PREFIX`] free bytes.
    async fn send_once(&self, mut request_bytes: Vec<u8>) -> Result<(), String> {
        let body = match self.protocol {
            Protocol::HttpProtobuf => Bytes::from(request_bytes).slice(GRPC_PREFIX..),
            Protocol::Grpc => {
                // Length-prefixed message: not compressed (0), then the length, big-endian.
                let len = u32::try_from(request_bytes.len() - GRPC_PREFIX)
                    .map_err(|_| "export request over 4 GiB".to_owned())?;
                request_bytes[0] = 0;
                request_bytes[1..GRPC_PREFIX].copy_from_slice(&len.to_be_bytes());
                Bytes::from(request_bytes)
            }
        };
        let mut request = Request::new(Full::new(body));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = self.uri.clone();
        *request.headers_mut() = self.headers.clone();
        let response = self.client.request(request).await.map_err(|err| format!("{err:#}"))?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("the collector answered HTTP {}", status.as_u16()));
        }
        if self.protocol == Protocol::HttpProtobuf {
            // The body is an ExportTraceServiceResponse; read it so the connection is reused.
            let _ = response.into_body().collect().await;
            return Ok(());
        }
        // A trailers-only answer carries the status in its headers.
        if let Some(outcome) = grpc_outcome(response.headers()) {
            return outcome;
        }
        let collected = response.into_body().collect().await.map_err(|err| format!("{err:#}"))?;
        match collected.trailers().and_then(grpc_outcome) {
            Some(outcome) => outcome,
            None => Err("the collector's answer has no grpc-status".to_owned()),
        }
    }
}

impl super::export::Sink for Exporter {
    // Left for the gRPC prefix whatever the protocol: HTTP sends the bytes after it.
    const PREFIX: usize = GRPC_PREFIX;

    async fn send(&self, message: Vec<u8>) -> Result<(), String> {
        match tokio::time::timeout(self.timeout, self.send_once(message)).await {
            Ok(outcome) => outcome,
            Err(_) => Err(format!("no answer within {} ms", self.timeout.as_millis())),
        }
    }
}

/// `grpc-status` 0 is success; anything else fails with its `grpc-message`.
fn grpc_outcome(headers: &HeaderMap) -> Option<Result<(), String>> {
    let status = headers.get("grpc-status")?.to_str().unwrap_or("?").trim();
    Some(if status == "0" {
        Ok(())
    } else {
        let message = headers.get("grpc-message").and_then(|m| m.to_str().ok()).unwrap_or("");
        let message = percent_encoding::percent_decode_str(message).decode_utf8_lossy();
        Err(format!("gRPC status {status}: {message}"))
    })
}

#[cfg(test)]
mod tests {
    use super::{Exporter, grpc_outcome};
    use crate::telemetry::{ExportHeaders, Protocol, Settings};
    use http::HeaderMap;

    fn settings(endpoint: &str, headers: &str) -> Settings {
        Settings {
            endpoint: endpoint.to_owned(),
            protocol: Protocol::Grpc,
            headers: ExportHeaders::parse(headers).unwrap(),
            timeout: std::time::Duration::from_secs(1),
            sampler: Default::default(),
            capture_content: false,
        }
    }

    #[test]
    fn a_bad_endpoint_or_header_is_refused_at_start_without_echoing_the_value() {
        assert!(Exporter::new(&settings("http://collector:4317", "authorization=Bearer x")).is_ok());
        assert!(Exporter::new(&settings("https://collector:4317/", "")).is_ok(), "TLS, a trailing slash");
        for endpoint in ["collector:4317", "ftp://collector", "http://"] {
            let err =
                Exporter::new(&settings(endpoint, "")).err().unwrap_or_else(|| panic!("{endpoint} accepted"));
            assert!(err.contains("OTLP endpoint"), "{err}");
        }
        let err = Exporter::new(&settings("http://c:4317", "bad name=v")).err().unwrap();
        assert!(err.contains("not a valid header name"), "{err}");
        let err = Exporter::new(&settings("http://c:4317", "x-key=secret%0A")).err().unwrap();
        assert!(err.contains("x-key") && !err.contains("secret"), "{err}");
    }

    #[test]
    fn grpc_status_and_message() {
        let mut headers = HeaderMap::new();
        assert_eq!(grpc_outcome(&headers), None);
        headers.insert("grpc-status", "0".parse().unwrap());
        assert_eq!(grpc_outcome(&headers), Some(Ok(())));
        headers.insert("grpc-status", "14".parse().unwrap());
        headers.insert("grpc-message", "collector%20overloaded".parse().unwrap());
        assert_eq!(grpc_outcome(&headers), Some(Err("gRPC status 14: collector overloaded".into())));
    }
}
