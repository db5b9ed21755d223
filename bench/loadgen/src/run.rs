//! The load loops.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HOST, HeaderMap, HeaderValue};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::Error;
use crate::args::{Args, Mode};
use crate::report::{Latency, Summary, micros, new_histogram};
use crate::schedule::{intended_offset, requests_within};

/// In fixed-rate mode, measured requests still queued this long after the end of the schedule
/// are abandoned and reported as `unsent`, so a stalled target cannot keep the run going forever.
const BACKLOG_GRACE: Duration = Duration::from_secs(5);

/// Pause after a failed connect before retrying (closed loop), so a dead target is not spun on.
const RECONNECT_PAUSE: Duration = Duration::from_millis(10);

/// Upper bound on how early the pacer thread releases a request to compensate for its own
/// wake-up lateness (see [`pacer`]).
const MAX_PACER_LEAD: Duration = Duration::from_micros(200);

type Sender = SendRequest<Full<Bytes>>;

/// Everything needed to build the request, prepared once.
struct Target {
    addr: SocketAddr,
    method: Method,
    path: Uri,
    headers: HeaderMap,
    body: Bytes,
}

impl Target {
    async fn new(args: &Args, body: Bytes) -> Result<Self, Error> {
        let host = args.url.host().ok_or("--url has no host")?;
        let port = args.url.port_u16().unwrap_or(80);
        let addr = tokio::net::lookup_host((host.trim_start_matches('[').trim_end_matches(']'), port))
            .await?
            .next()
            .ok_or_else(|| format!("{host} did not resolve"))?;
        let authority = args.url.authority().map_or(host, |a| a.as_str());
        let mut headers = HeaderMap::new();
        headers.insert(HOST, HeaderValue::from_str(authority)?);
        for (name, value) in &args.headers {
            headers.append(name.clone(), value.clone());
        }
        let path = args.url.path_and_query().map_or("/", |p| p.as_str()).parse()?;
        Ok(Self { addr, method: args.method.clone(), path, headers, body })
    }

    fn request(&self) -> Request<Full<Bytes>> {
        let mut req = Request::new(Full::new(self.body.clone()));
        *req.method_mut() = self.method.clone();
        *req.uri_mut() = self.path.clone();
        *req.headers_mut() = self.headers.clone();
        req
    }
}

/// A dedicated HTTP/1.1 keep-alive connection with TCP_NODELAY.
async fn connect(addr: SocketAddr) -> Result<Sender, Error> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        // Errors surface on the sender side as transport errors.
        let _ = conn.await;
    });
    Ok(sender)
}

/// Sends one request on a ready connection and reads the whole response body.
async fn exchange(sender: &mut Sender, req: Request<Full<Bytes>>) -> Result<StatusCode, Error> {
    let resp = sender.send_request(req).await?;
    let status = resp.status();
    let mut body = resp.into_body();
    while let Some(frame) = body.frame().await {
        frame?;
    }
    Ok(status)
}

/// Per-worker counters, merged at the end (no shared state on the hot path).
struct Stats {
    hist: Histogram<u64>,
    statuses: BTreeMap<u16, u64>,
    transport_errors: u64,
    unsent: u64,
    last_completion: Option<Instant>,
}

impl Stats {
    fn new() -> Result<Self, Error> {
        Ok(Self {
            hist: new_histogram()?,
            statuses: BTreeMap::new(),
            transport_errors: 0,
            unsent: 0,
            last_completion: None,
        })
    }

    fn record(&mut self, outcome: &Result<StatusCode, Error>, start: Instant, done: Instant) {
        match outcome {
            Ok(status) => {
                *self.statuses.entry(status.as_u16()).or_default() += 1;
                if status.is_success() {
                    self.hist.saturating_record(micros(done.saturating_duration_since(start)));
                }
            }
            Err(_) => self.transport_errors += 1,
        }
        self.last_completion = self.last_completion.max(Some(done));
    }

    fn merge(&mut self, other: Self) -> Result<(), Error> {
        self.hist.add(&other.hist)?;
        for (status, n) in other.statuses {
            *self.statuses.entry(status).or_default() += n;
        }
        self.transport_errors += other.transport_errors;
        self.unsent += other.unsent;
        self.last_completion = self.last_completion.max(other.last_completion);
        Ok(())
    }
}

/// One request with a timeout; on any failure the connection is dropped so the next request
/// reconnects. Returns the outcome and the completion time. `start_of` maps the actual send
/// time to the time latency is measured from.
async fn attempt(
    target: &Target,
    sender: &mut Option<Sender>,
    timeout: Duration,
    start_of: impl FnOnce(Instant) -> Instant,
) -> (Result<StatusCode, Error>, Instant, Instant) {
    let outcome = async {
        // Wait for keep-alive readiness before the clock starts. A connection the server closed
        // while idle (HTTP/1.0, `Connection: close`) is replaced without counting an error.
        let reusable = match sender.as_mut() {
            Some(conn) => conn.ready().await.is_ok(),
            None => false,
        };
        if !reusable {
            sender.insert(connect(target.addr).await?).ready().await?;
        }
        let conn = sender.as_mut().ok_or("connection vanished")?;
        let start = start_of(Instant::now());
        let status = tokio::time::timeout(timeout, exchange(conn, target.request()))
            .await
            .map_err(|_| format!("request timed out after {timeout:?}"))??;
        Ok::<_, Error>((status, start))
    }
    .await;
    let done = Instant::now();
    match outcome {
        Ok((status, start)) => (Ok(status), start, done),
        Err(e) => {
            *sender = None;
            (Err(e), done, done)
        }
    }
}

/// Closed loop: send back to back until `end`; record requests sent at or after `measure_start`.
async fn closed_worker(
    target: Arc<Target>,
    mut sender: Option<Sender>,
    measure_start: Instant,
    end: Instant,
    timeout: Duration,
) -> Result<Stats, Error> {
    let mut stats = Stats::new()?;
    while Instant::now() < end {
        let mut sent = None;
        let (outcome, start, done) = attempt(&target, &mut sender, timeout, |t| {
            sent = Some(t);
            t
        })
        .await;
        let failed_to_connect = sent.is_none();
        if sent.unwrap_or(start) >= measure_start {
            stats.record(&outcome, start, done);
        }
        if failed_to_connect {
            tokio::time::sleep(RECONNECT_PAUSE).await;
        }
    }
    Ok(stats)
}

/// Shared fixed-rate schedule.
struct Schedule {
    t0: Instant,
    rate: f64,
    /// Requests `0..first_measured` are warmup.
    first_measured: u64,
    total: u64,
    /// Next request index to hand out.
    next: AtomicU64,
    /// One permit per request whose start time has come (released by the pacer thread).
    due: Semaphore,
    /// Stop taking requests after this instant.
    give_up: Instant,
}

/// Fixed rate: take the next due request, send it, measure from its intended start time.
async fn rate_worker(
    target: Arc<Target>,
    mut sender: Option<Sender>,
    sched: Arc<Schedule>,
    timeout: Duration,
) -> Result<Stats, Error> {
    let mut stats = Stats::new()?;
    loop {
        match sched.due.acquire().await {
            Ok(permit) => permit.forget(),
            Err(_) => break,
        }
        let i = sched.next.fetch_add(1, Ordering::Relaxed);
        if i >= sched.total {
            break;
        }
        let measured = i >= sched.first_measured;
        if Instant::now() > sched.give_up {
            stats.unsent += u64::from(measured);
            break;
        }
        let intended = sched.t0 + intended_offset(i, sched.rate);
        // Coordinated-omission correction: latency runs from the *intended* start, so time spent
        // queued behind a slow response (or a busy generator) is charged to the request. The
        // pacer may release a request up to MAX_PACER_LEAD early; then the clock starts at the
        // actual send.
        let (outcome, start, done) = attempt(&target, &mut sender, timeout, |sent| sent.max(intended)).await;
        if measured {
            stats.record(&outcome, start, done);
        }
    }
    Ok(stats)
}

/// Releases one `due` permit per request at its intended time, from a plain OS thread:
/// tokio's timer has 1 ms granularity, far too coarse for 500 µs spacing. `thread::sleep` wakes a
/// little late (timer slack, scheduling), so the pacer aims early by a running estimate of its
/// own lateness, capped at [`MAX_PACER_LEAD`].
fn pacer(sched: &Schedule, workers: usize) {
    let t0 = sched.t0.into_std();
    let mut lead = Duration::ZERO;
    for i in 0..sched.total {
        let due = t0 + intended_offset(i, sched.rate);
        let aim = due.checked_sub(lead).unwrap_or(due);
        let now = std::time::Instant::now();
        if aim > now {
            std::thread::sleep(aim - now);
            let late = std::time::Instant::now().saturating_duration_since(aim);
            // EWMA with weight 1/8.
            lead = (lead * 7 + late.min(MAX_PACER_LEAD)) / 8;
        }
        sched.due.add_permits(1);
    }
    // Wake every worker once more so each sees the end of the schedule.
    sched.due.add_permits(workers);
}

async fn connect_all(addr: SocketAddr, n: usize) -> Result<Vec<Sender>, Error> {
    let handles: Vec<_> = (0..n).map(|_| tokio::spawn(connect(addr))).collect();
    let mut senders = Vec::with_capacity(n);
    for h in handles {
        senders.push(h.await?.map_err(|e| format!("connect to {addr}: {e}"))?);
    }
    Ok(senders)
}

/// Runs the load described by `args` against its URL with the given request body.
///
/// # Errors
/// If the target cannot be resolved or the initial connections fail; errors during the run are
/// counted, not returned.
pub async fn run(args: &Args, body: Bytes) -> Result<Summary, Error> {
    let target = Arc::new(Target::new(args, body).await?);
    let workers = match args.mode {
        Mode::Closed { concurrency } => concurrency,
        Mode::Rate { connections, .. } => connections,
    };
    let senders = connect_all(target.addr, workers).await?;

    let t0 = Instant::now();
    let measure_start = t0 + args.warmup;
    let end = measure_start + args.duration;

    let mut handles = Vec::with_capacity(workers);
    let mut pacer_thread = None;
    let mut sched_ref = None;
    match args.mode {
        Mode::Closed { .. } => {
            for s in senders {
                handles.push(tokio::spawn(closed_worker(
                    Arc::clone(&target),
                    Some(s),
                    measure_start,
                    end,
                    args.timeout,
                )));
            }
        }
        Mode::Rate { rate, .. } => {
            let sched = Arc::new(Schedule {
                t0,
                rate,
                first_measured: requests_within(args.warmup, rate),
                total: requests_within(args.warmup + args.duration, rate),
                next: AtomicU64::new(0),
                due: Semaphore::new(0),
                give_up: end + BACKLOG_GRACE,
            });
            let s = Arc::clone(&sched);
            pacer_thread = Some(
                std::thread::Builder::new().name("loadgen-pacer".into()).spawn(move || pacer(&s, workers))?,
            );
            for s in senders {
                handles.push(tokio::spawn(rate_worker(
                    Arc::clone(&target),
                    Some(s),
                    Arc::clone(&sched),
                    args.timeout,
                )));
            }
            sched_ref = Some(sched);
        }
    }

    let mut total = Stats::new()?;
    for h in handles {
        total.merge(h.await??)?;
    }
    if let Some(p) = pacer_thread {
        p.join().map_err(|_| "pacer thread panicked")?;
    }
    if let Some(sched) = &sched_ref {
        // Measured requests nobody took off the schedule.
        let taken = sched.next.load(Ordering::Relaxed).min(sched.total);
        total.unsent += sched.total - taken.max(sched.first_measured);
    }

    let requests = total.statuses.values().sum::<u64>() + total.transport_errors;
    let errors = total.statuses.iter().filter(|(s, _)| !(200..300).contains(*s)).map(|(_, n)| n).sum();
    let elapsed = total.last_completion.map_or(end, |l| l.max(end)).saturating_duration_since(measure_start);
    let duration_s = elapsed.as_secs_f64();
    Ok(Summary {
        mode: if sched_ref.is_some() { "rate" } else { "closed" },
        connections: workers,
        target_rps: match args.mode {
            Mode::Rate { rate, .. } => Some(rate),
            Mode::Closed { .. } => None,
        },
        requests,
        errors,
        transport_errors: total.transport_errors,
        unsent: total.unsent,
        duration_s,
        rps: if duration_s > 0.0 { requests as f64 / duration_s } else { 0.0 },
        latency: Latency::from_histogram(&total.hist),
        status_counts: total.statuses,
    })
}
