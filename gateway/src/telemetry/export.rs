//! Batched export off the request path. A finished span (already encoded, [`super::otlp`]) is
//! copied, on the request's own thread, into that thread's chunk of spans, and its buffer is
//! kept there for the thread's next span; a tokio task gathers chunks into batches and sends
//! each as one OTLP export request ([`super::transport`]).
//!
//! Why chunks per thread: the span and the chunk's tail are in the request thread's cache when
//! the span is copied, and the span's buffer is reused while still warm. Before, every span
//! went through the queue on its own and its buffer came back only after its batch was sent,
//! through a 512-deep queue: each span was written into a buffer last touched ~100 ms before,
//! ~600 KB of buffers cycling through the cache (bench/results.md "Tracing on vs off").
//!
//! A thread's chunk sits in a slot (a one-place lock-free queue) between its spans, so the
//! export task can take it when its schedule comes or a flush asks: a thread that stops
//! serving requests never holds spans back.

use super::otlp::{Envelope, put_span};
use crossbeam_queue::ArrayQueue;
use prometheus_client::metrics::counter::Counter;
use std::cell::{Cell, RefCell};
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
    /// Full chunks, for the export task: bounded by `queued`, which counts their spans.
    chunks: mpsc::UnboundedSender<Chunk>,
    /// Each thread's chunk being filled, between its spans.
    slots: Arc<[ArrayQueue<Chunk>]>,
    /// Spans in chunks not yet exported: the queue's bound (`Limits::queue`), and how a full
    /// batch is announced without waking the export task for every span (a cross-thread
    /// wake-up per span costs more than the span itself).
    queued: Arc<AtomicUsize>,
    full: Arc<Notify>,
    limits: Limits,
    /// Spans lost: the queue was full. (`switchboard_trace_spans_dropped_total`.)
    dropped: Counter,
    /// Buffers of exported chunks, empty, for new chunks.
    free: Arc<ArrayQueue<Vec<u8>>>,
}

/// Encoded spans, each framed as a `ScopeSpans.spans` field, ready to be embedded in a batch.
#[derive(Debug)]
struct Chunk {
    bytes: Vec<u8>,
    spans: usize,
}

/// Slots for threads' chunks; threads beyond this share them (a shared slot is still safe: a
/// chunk is taken out of its slot while a span is added).
const SLOTS: usize = 64;

/// A chunk this large goes to the export task without waiting for its batch to fill.
const CHUNK_BYTES: usize = 32 * 1024;

/// A span buffer larger than this (a span with captured content) is freed, not kept for reuse.
const REUSED_CAPACITY: usize = 4096;

/// Span buffers a thread keeps for its next spans (a request holds two at once).
const SPARE_BUFFERS: usize = 8;

static NEXT_SLOT: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// This thread's slot.
    static SLOT: Cell<Option<usize>> = const { Cell::new(None) };
    /// Empty span buffers, last used on this thread.
    static SPARE: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

fn this_threads_slot() -> usize {
    SLOT.with(|slot| match slot.get() {
        Some(index) => index,
        None => {
            let index = NEXT_SLOT.fetch_add(1, Relaxed) % SLOTS;
            slot.set(Some(index));
            index
        }
    })
}

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
        let (chunks, queue) = mpsc::unbounded_channel();
        let (requests, flushes) = mpsc::channel(4);
        let batcher = Batcher {
            chunks,
            slots: (0..SLOTS).map(|_| ArrayQueue::new(1)).collect(),
            queued: Arc::default(),
            full: Arc::default(),
            limits,
            dropped,
            // What one batch's chunks give back (spans are ~1 KB), and a few more.
            free: Arc::new(ArrayQueue::new((limits.batch * 1024 / CHUNK_BYTES).max(4))),
        };
        let task = Task {
            queue,
            slots: batcher.slots.clone(),
            flushes,
            queued: batcher.queued.clone(),
            dropped: batcher.dropped.clone(),
            full: batcher.full.clone(),
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
    /// An empty buffer for a new span, with room for at least `capacity` bytes: one this thread
    /// used for an earlier span when it has one.
    pub fn buffer(&self, capacity: usize) -> Vec<u8> {
        match SPARE.with(|spare| spare.borrow_mut().pop()) {
            Some(mut buf) => {
                buf.reserve(capacity);
                buf
            }
            None => Vec::with_capacity(capacity),
        }
    }

    /// Queues a finished span (an encoded `Span` message): copied into this thread's chunk, its
    /// buffer kept for the thread's next span. Never waits: a collector that cannot keep up
    /// costs spans, not requests.
    pub fn push(&self, mut span: Vec<u8>) {
        let queued = self.queued.fetch_add(1, Relaxed);
        if queued >= self.limits.queue {
            self.queued.fetch_sub(1, Relaxed);
            self.dropped.inc();
            return;
        }
        let slot = &self.slots[this_threads_slot()];
        let mut chunk = slot.pop().unwrap_or_else(|| Chunk {
            bytes: self.free.pop().unwrap_or_else(|| Vec::with_capacity(CHUNK_BYTES)),
            spans: 0,
        });
        put_span(&mut chunk.bytes, &span);
        chunk.spans += 1;
        if span.capacity() <= REUSED_CAPACITY {
            span.clear();
            SPARE.with(|spare| {
                let mut spare = spare.borrow_mut();
                if spare.len() < SPARE_BUFFERS {
                    spare.push(span);
                }
            });
        }
        // A chunk never holds more than a batch, so batches can be made of whole chunks.
        let chunk = if chunk.spans >= self.limits.batch || chunk.bytes.len() >= CHUNK_BYTES {
            Some(chunk)
        } else {
            // Another thread sharing the slot put its chunk back meanwhile: this one goes on.
            slot.push(chunk).err()
        };
        if let Some(chunk) = chunk {
            // The task holds the receiver until the batcher is gone: this cannot fail.
            let _ = self.chunks.send(chunk);
        }
        if (queued + 1).is_multiple_of(self.limits.batch) {
            self.full.notify_one();
        }
    }
}

/// The export task's side of the queue.
struct Task {
    queue: mpsc::UnboundedReceiver<Chunk>,
    slots: Arc<[ArrayQueue<Chunk>]>,
    flushes: mpsc::Receiver<oneshot::Sender<()>>,
    queued: Arc<AtomicUsize>,
    dropped: Counter,
    full: Arc<Notify>,
    free: Arc<ArrayQueue<Vec<u8>>>,
    limits: Limits,
}

impl Task {
    /// Every `delay` (or when a batch is full, or a flush asks), exports what is queued in
    /// batches; ends when the processor is gone and everything queued is sent.
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
            // Full chunks first, then what threads are still filling.
            let mut chunks = Vec::new();
            let closed = loop {
                match self.queue.try_recv() {
                    Ok(chunk) => chunks.push(chunk),
                    Err(TryRecvError::Empty) => break false,
                    Err(TryRecvError::Disconnected) => break true,
                }
            };
            chunks.extend(self.slots.iter().filter_map(ArrayQueue::pop));
            let mut batch: Vec<Chunk> = Vec::new();
            let mut spans = 0;
            for chunk in chunks {
                if spans + chunk.spans > self.limits.batch && !batch.is_empty() {
                    failing = self.export(&sink, &envelope, &mut batch, failing).await;
                    spans = 0;
                }
                spans += chunk.spans;
                batch.push(chunk);
            }
            if !batch.is_empty() {
                failing = self.export(&sink, &envelope, &mut batch, failing).await;
            }
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

    /// Sends `batch` as one request under the export timeout and gives its chunks' buffers
    /// back, emptied; returns whether export is failing (logged once per outage).
    async fn export<S: Sink>(
        &self,
        sink: &S,
        envelope: &Envelope,
        batch: &mut Vec<Chunk>,
        failing: bool,
    ) -> bool {
        let framed: Vec<&[u8]> = batch.iter().map(|chunk| &chunk.bytes[..]).collect();
        let spans: usize = batch.iter().map(|chunk| chunk.spans).sum();
        let request = envelope.request(&framed, S::PREFIX);
        let limit = self.limits.export_timeout;
        let failure = match timeout(limit, sink.send(request)).await {
            Ok(Ok(())) => None,
            Ok(Err(err)) => Some(err),
            Err(_) => Some(format!("no answer within {} ms", limit.as_millis())),
        };
        self.queued.fetch_sub(spans, Relaxed);
        for mut chunk in batch.drain(..).filter(|chunk| chunk.bytes.capacity() <= 2 * CHUNK_BYTES) {
            chunk.bytes.clear();
            // Full: enough kept; this one is freed.
            let _ = self.free.push(chunk.bytes);
        }
        match failure {
            None if failing => {
                tracing::info!("trace export recovered");
                false
            }
            None => false,
            Some(error) => {
                if failing {
                    tracing::debug!(spans, error = %error, "trace export failed");
                } else {
                    tracing::warn!(spans, error = %error, "trace export failed; spans dropped until the collector answers");
                }
                true
            }
        }
    }
}
