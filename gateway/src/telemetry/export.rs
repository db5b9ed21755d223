//! Batched export off the request path: a finished span (already encoded, [`super::otlp`]) is
//! one `try_send` into a bounded queue, and a tokio task gathers spans into batches and sends
//! each as one OTLP export request ([`super::transport`]).
//!
//! A span's buffer comes back once its batch is sent, for another span to be written into
//! ([`Batcher::buffer`]): a batch frees hundreds of buffers at once, more than the allocator's
//! per-thread cache keeps, so without it every span paid for a trip into the allocator's
//! arena on both ends (~1,000 instructions per request, bench/README.md "Tracing on vs off").

use super::otlp::Envelope;
use crossbeam_queue::ArrayQueue;
use prometheus_client::metrics::counter::Counter;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::Duration;
use tokio::sync::mpsc::error::TryRecvError;
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::time::timeout;

/// Where an export request goes: the collector ([`super::transport::Exporter`]), or a test's
/// recorder.
pub trait Sink: Send + Sync + 'static {
    /// Bytes to leave free before the message for the sink to fill (gRPC's message prefix).
    const PREFIX: usize = 0;

    /// Sends one encoded `ExportTraceServiceRequest`, after [`Sink::PREFIX`] free bytes.
    fn send(&self, request: Vec<u8>) -> impl Future<Output = Result<(), String>> + Send;
}

/// The queue's and batches' bounds, from the SDK's standard `OTEL_BSP_*` variables.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Spans waiting for export; beyond it new spans are dropped (`OTEL_BSP_MAX_QUEUE_SIZE`).
    pub queue: usize,
    /// Spans per export request (`OTEL_BSP_MAX_EXPORT_BATCH_SIZE`).
    pub batch: usize,
    /// The interval between two exports of what is queued (`OTEL_BSP_SCHEDULE_DELAY`, ms); a
    /// full batch goes at once.
    pub delay: Duration,
    /// One export's limit (`OTEL_BSP_EXPORT_TIMEOUT`, ms).
    pub export_timeout: Duration,
}

impl Limits {
    pub fn from_env() -> Limits {
        let number = |name: &str, default: u64| {
            std::env::var(name)
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .filter(|&n| n > 0)
                .unwrap_or(default)
        };
        let queue = number("OTEL_BSP_MAX_QUEUE_SIZE", 2048) as usize;
        Limits {
            queue,
            batch: (number("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 512) as usize).min(queue),
            delay: Duration::from_millis(number("OTEL_BSP_SCHEDULE_DELAY", 1000)),
            export_timeout: Duration::from_millis(number("OTEL_BSP_EXPORT_TIMEOUT", 10_000)),
        }
    }
}

/// The request path's end of the queue.
#[derive(Debug)]
pub struct Batcher {
    spans: mpsc::Sender<Vec<u8>>,
    /// Spans in the queue, so a full batch can be announced without waking the export task for
    /// every span: a cross-thread wake-up per span costs more than the span itself.
    queued: Arc<AtomicUsize>,
    full: Arc<Notify>,
    batch: usize,
    /// Spans lost: the queue was full. (`switchboard_trace_spans_dropped_total`.)
    dropped: Counter,
    /// Buffers of exported spans, empty, for new spans.
    free: Arc<ArrayQueue<Vec<u8>>>,
}

/// A buffer larger than this (a span with captured content) is freed, not kept for reuse.
const REUSED_CAPACITY: usize = 4096;

/// Asks the export task to send what is queued now.
pub struct Flush {
    requests: mpsc::Sender<oneshot::Sender<()>>,
}

impl Flush {
    pub async fn flush(&self, limit: Duration) {
        let (done, exported) = oneshot::channel();
        if self.requests.send(done).await.is_ok() {
            let _ = timeout(limit, exported).await;
        }
    }
}

impl Batcher {
    /// Spawns the export task (inside the runtime) and returns the processor and its flush handle.
    /// `dropped` counts spans lost to a full queue (it is a `/metrics` counter).
    pub fn start<S: Sink>(sink: S, envelope: Envelope, limits: Limits, dropped: Counter) -> (Batcher, Flush) {
        let (spans, queue) = mpsc::channel(limits.queue);
        let (requests, flushes) = mpsc::channel(4);
        let batcher = Batcher {
            spans,
            queued: Arc::default(),
            full: Arc::default(),
            batch: limits.batch,
            dropped,
            // One batch's worth: what one export gives back.
            free: Arc::new(ArrayQueue::new(limits.batch.max(1))),
        };
        let task = Task {
            queue,
            flushes,
            queued: batcher.queued.clone(),
            full: batcher.full.clone(),
            dropped: batcher.dropped.clone(),
            free: batcher.free.clone(),
            limits,
        };
        tokio::spawn(task.run(sink, envelope));
        (batcher, Flush { requests })
    }
}

#[cfg(test)]
impl Batcher {
    /// Spans dropped on a full queue so far (the export task logs them as they happen).
    pub fn dropped(&self) -> u64 {
        self.dropped.get()
    }
}

impl Batcher {
    /// An empty buffer for a new span, with room for at least `capacity` bytes: an exported
    /// span's when there is one.
    pub fn buffer(&self, capacity: usize) -> Vec<u8> {
        match self.free.pop() {
            Some(mut buf) => {
                buf.reserve(capacity);
                buf
            }
            None => Vec::with_capacity(capacity),
        }
    }

    /// Queues a finished span (an encoded `Span` message).
    pub fn push(&self, span: Vec<u8>) {
        // Never waits: a collector that cannot keep up costs spans, not requests. The export
        // task does not listen on the queue (that would wake it for every span: a cross-thread
        // wake-up costs more than the span itself); it wakes on its schedule, or here when a
        // batch is full.
        if self.spans.try_send(span).is_err() {
            self.dropped.inc();
        } else if (self.queued.fetch_add(1, Relaxed) + 1).is_multiple_of(self.batch) {
            self.full.notify_one();
        }
    }
}

/// The export task's side of the queue.
struct Task {
    queue: mpsc::Receiver<Vec<u8>>,
    flushes: mpsc::Receiver<oneshot::Sender<()>>,
    queued: Arc<AtomicUsize>,
    full: Arc<Notify>,
    dropped: Counter,
    free: Arc<ArrayQueue<Vec<u8>>>,
    limits: Limits,
}

impl Task {
    /// Every `delay` (or when a batch is full, or a flush asks), exports what is queued in
    /// batches; ends when the processor is gone and the queue is empty.
    async fn run<S: Sink>(mut self, sink: S, envelope: Envelope) {
        let mut failing = false;
        let mut reported_drops = 0;
        loop {
            let mut flushed = None;
            tokio::select! {
                _ = tokio::time::sleep(self.limits.delay) => {}
                _ = self.full.notified() => {}
                Some(done) = self.flushes.recv() => flushed = Some(done),
            }
            let closed = loop {
                let mut batch = Vec::with_capacity(self.limits.batch);
                let closed = loop {
                    if batch.len() >= self.limits.batch {
                        break false;
                    }
                    match self.queue.try_recv() {
                        Ok(span) => batch.push(span),
                        Err(TryRecvError::Empty) => break false,
                        Err(TryRecvError::Disconnected) => break true,
                    }
                };
                self.queued.fetch_sub(batch.len(), Relaxed);
                let full = batch.len() >= self.limits.batch;
                if !batch.is_empty() {
                    failing = export(&sink, &envelope, &batch, self.limits, failing).await;
                }
                for mut span in batch.drain(..).filter(|span| span.capacity() <= REUSED_CAPACITY) {
                    span.clear();
                    // Full: the request path has all it can use; this one is freed.
                    let _ = self.free.push(span);
                }
                if closed || !full {
                    break closed;
                }
            };
            let drops = self.dropped.get();
            if drops > reported_drops {
                tracing::warn!(
                    dropped = drops - reported_drops,
                    total = drops,
                    "trace export queue full: spans dropped"
                );
                reported_drops = drops;
            }
            if let Some(done) = flushed {
                let _ = done.send(());
            }
            if closed {
                return;
            }
        }
    }
}

/// Exports `spans` as one request; returns whether export is failing (logged once per outage).
async fn export<S: Sink>(
    sink: &S,
    envelope: &Envelope,
    spans: &[Vec<u8>],
    limits: Limits,
    failing: bool,
) -> bool {
    let failure = match timeout(limits.export_timeout, sink.send(envelope.request(spans, S::PREFIX))).await {
        Ok(Ok(())) => None,
        Ok(Err(err)) => Some(err),
        Err(_) => Some(format!("no answer within {} ms", limits.export_timeout.as_millis())),
    };
    match failure {
        None if failing => {
            tracing::info!("trace export recovered");
            false
        }
        None => false,
        Some(error) => {
            if failing {
                tracing::debug!(spans = spans.len(), error = %error, "trace export failed");
            } else {
                tracing::warn!(spans = spans.len(), error = %error, "trace export failed; spans dropped until the collector answers");
            }
            true
        }
    }
}
