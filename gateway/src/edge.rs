//! The hardened edge: the bounds that keep one replica serving when requests are hostile or
//! simply too many. Each refusal is cheap and happens before anything is routed or forwarded.
//!
//! - **Request head size**: `--max-header-bytes`, enforced by hyper while it parses the head
//!   (431 Request Header Fields Too Large; see `server.rs`).
//! - **Requests in flight**: `--max-in-flight`, counted by the ledger's in-flight gauge (one
//!   atomic the request path pays for anyway) from arrival until the response body ends, so a
//!   long stream counts for as long as it runs. Over the bound: 503 `overloaded`.
//! - **Buffered request bodies**: `--max-buffered-body-bytes` in total, charged chunk by chunk
//!   as a body is read and given back when the request path is done with it. Over the budget:
//!   503 `overloaded`, never an out-of-memory kill.
//! - **Nesting depth**: bodies nested deeper than [`MAX_DEPTH`] levels are refused (400) before
//!   they are parsed, routed or forwarded.
//! - **Total deadline**: `--request-deadline-ms` bounds all attempts of a request together, so
//!   a route with N backends cannot take N times a provider's timeout (504 `timeout`).
//!
//! Both counters are plain atomics, kept with the metrics (`switchboard_in_flight_requests`,
//! `switchboard_buffered_request_body_bytes`) so operators see how close a replica runs to its
//! bounds: an overloaded replica refuses at once instead of queueing (a queue would hold the
//! very memory the bound protects), so a semaphore's waiter list, and the lock it takes on
//! release, would bring nothing.
//!
//! The budget counts the bytes received; joining a body that arrived in several chunks briefly
//! needs as much again, so keep the budget well under the pod's memory limit.

use crate::error::{GatewayError, Overload};
use crate::metrics::Metrics;
use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use std::sync::Arc;
use std::time::Duration;
use switchboard_llm::depth::{MAX_DEPTH, nests_deeper_than};

/// How long a client may take to send its request body.
const BODY_READ_TIMEOUT: Duration = Duration::from_secs(60);

/// The edge's bounds, from the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EdgeLimits {
    /// Largest request body (413 above).
    pub max_body_bytes: usize,
    /// Requests in flight on this replica, streams included (503 above).
    pub max_in_flight: usize,
    /// Request-body bytes buffered at once on this replica (503 above).
    pub max_buffered_body_bytes: usize,
    /// The longest a request may wait for its answer to start, over all attempts (504 after).
    pub request_deadline: Duration,
}

pub struct Edge {
    pub limits: EdgeLimits,
    /// Where the counters are: requests in flight, request-body bytes held.
    metrics: Arc<Metrics>,
}

impl Edge {
    pub fn new(limits: EdgeLimits, metrics: Arc<Metrics>) -> Self {
        Edge { limits, metrics }
    }

    /// Whether one more request may run. The count includes this request (its ledger is
    /// open), so two requests arriving together at the bound may both be refused; the bound
    /// itself is never exceeded.
    pub fn admit(&self) -> Result<(), GatewayError> {
        let in_flight = usize::try_from(self.metrics.in_flight.get()).unwrap_or(0);
        if in_flight > self.limits.max_in_flight {
            return Err(GatewayError::Overloaded(Overload::InFlight));
        }
        Ok(())
    }

    /// Reads a request body within the size limit, the read timeout and the replica's buffer
    /// budget. The returned [`BufferedBody`] holds its share of the budget until dropped.
    pub async fn read_body(&self, body: Incoming) -> Result<BufferedBody<'_>, GatewayError> {
        use http_body::Body as _;
        let limit = self.limits.max_body_bytes;
        if body.size_hint().lower() > limit as u64 {
            return Err(GatewayError::BodyTooLarge { limit });
        }
        match tokio::time::timeout(BODY_READ_TIMEOUT, self.collect(body)).await {
            Err(_) => Err(GatewayError::BodyTimeout),
            Ok(read) => read,
        }
    }

    async fn collect(&self, mut body: Incoming) -> Result<BufferedBody<'_>, GatewayError> {
        let limit = self.limits.max_body_bytes;
        // A Content-Length makes this exact: a joined body is allocated once.
        let expected = usize::try_from(http_body::Body::size_hint(&body).lower()).unwrap_or(0);
        let mut buffered = BufferedBody { bytes: Bytes::new(), edge: self, held: 0 };
        // Most bodies arrive in one chunk and are kept as they are; later chunks are joined.
        let mut joined: Option<BytesMut> = None;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|err| GatewayError::BadRequest {
                message: format!("could not read the request body: {err}"),
                param: None,
            })?;
            let Ok(chunk) = frame.into_data() else { continue };
            if buffered.held + chunk.len() > limit {
                return Err(GatewayError::BodyTooLarge { limit });
            }
            self.charge(&mut buffered, chunk.len())?;
            if buffered.bytes.is_empty() && joined.is_none() {
                buffered.bytes = chunk;
            } else {
                let joined = joined.get_or_insert_with(|| {
                    let first = std::mem::take(&mut buffered.bytes);
                    let mut joined = BytesMut::with_capacity(expected.max(first.len() + chunk.len()));
                    joined.extend_from_slice(&first);
                    joined
                });
                joined.extend_from_slice(&chunk);
            }
        }
        if let Some(joined) = joined {
            buffered.bytes = joined.freeze();
        }
        Ok(buffered)
    }

    /// Takes `bytes` more of the buffer budget for `body`, or refuses the request.
    fn charge(&self, body: &mut BufferedBody<'_>, bytes: usize) -> Result<(), GatewayError> {
        let buffered = &self.metrics.buffered_body_bytes;
        let charged = i64::try_from(bytes).unwrap_or(i64::MAX);
        let before = usize::try_from(buffered.inc_by(charged)).unwrap_or(0);
        if before.saturating_add(bytes) > self.limits.max_buffered_body_bytes {
            buffered.dec_by(charged);
            return Err(GatewayError::Overloaded(Overload::BufferedBytes));
        }
        body.held += bytes;
        Ok(())
    }
}

/// A request body read into memory, charged to the replica's buffer budget until dropped.
pub struct BufferedBody<'a> {
    pub bytes: Bytes,
    edge: &'a Edge,
    held: usize,
}

impl BufferedBody<'_> {
    /// Refuses a body nested deeper than [`MAX_DEPTH`]: one pass over the bytes, before any
    /// parser, router or provider sees it.
    pub fn check_depth(&self) -> Result<&Bytes, GatewayError> {
        if nests_deeper_than(&self.bytes, MAX_DEPTH) {
            return Err(GatewayError::BadRequest {
                message: format!(
                    "The request body is nested more than {MAX_DEPTH} levels deep; no API request needs that many."
                ),
                param: None,
            });
        }
        Ok(&self.bytes)
    }
}

impl Drop for BufferedBody<'_> {
    fn drop(&mut self) {
        self.edge.metrics.buffered_body_bytes.dec_by(i64::try_from(self.held).unwrap_or(i64::MAX));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edge(max_buffered_body_bytes: usize) -> Edge {
        let limits = EdgeLimits {
            max_body_bytes: 100,
            max_in_flight: 2,
            max_buffered_body_bytes,
            request_deadline: Duration::from_secs(1),
        };
        Edge::new(limits, Arc::new(Metrics::default()))
    }

    #[test]
    fn the_buffer_budget_is_charged_and_given_back() {
        let edge = edge(10);
        let mut first = BufferedBody { bytes: Bytes::new(), edge: &edge, held: 0 };
        edge.charge(&mut first, 6).unwrap();
        let mut second = BufferedBody { bytes: Bytes::new(), edge: &edge, held: 0 };
        assert!(matches!(
            edge.charge(&mut second, 5),
            Err(GatewayError::Overloaded(Overload::BufferedBytes))
        ));
        let buffered = || edge.metrics.buffered_body_bytes.get();
        assert_eq!(buffered(), 6, "a refused charge takes nothing");
        edge.charge(&mut second, 4).unwrap();
        drop(first);
        assert_eq!(buffered(), 4);
        drop(second);
        assert_eq!(buffered(), 0);
    }

    #[test]
    fn in_flight_requests_are_bounded() {
        let edge = edge(10);
        edge.metrics.in_flight.set(2);
        assert!(edge.admit().is_ok());
        edge.metrics.in_flight.set(3);
        assert!(matches!(edge.admit(), Err(GatewayError::Overloaded(Overload::InFlight))));
    }

    #[test]
    fn deep_bodies_are_refused_without_a_parameter() {
        let edge = edge(10);
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        let body = BufferedBody { bytes: Bytes::from(deep), edge: &edge, held: 0 };
        let Err(GatewayError::BadRequest { message, param }) = body.check_depth() else {
            panic!("a body nested {} deep passed", MAX_DEPTH + 1);
        };
        assert!(message.contains("128 levels") && param.is_none(), "{message}");
        let fine = BufferedBody { bytes: Bytes::from_static(br#"{"a":[[1]]}"#), edge: &edge, held: 0 };
        assert!(fine.check_depth().is_ok());
    }
}
