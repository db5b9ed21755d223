//! The connection whose call waits for its reply on the calling thread, in a blocking `read`,
//! as a blocking client does, instead of parking its task; while round trips are short, it first
//! reads without blocking, yielding the thread between tries, for up to
//! [`super::yielding::YIELD_WAIT`], so that a halted vCPU need not be woken for the reply.
//!
//! That holds a tokio worker for the round trip, so it is bounded three ways: only a call that is
//! the only one on the pool's connections, which also makes it one call at a time
//! ([`super::DirectPool::lease`]); only on a runtime with another worker to run the rest
//! meanwhile ([`super::DirectPool::new`]); and for at most [`INLINE_WAIT`], after which the
//! pool stops waiting inline for a while ([`super::INLINE_PAUSE`]). A loopback round trip takes
//! 20–80 µs at p50 on the benchmark VM, within tokio's guidance of 10–100 µs between two awaits;
//! a reply that takes longer (a busy or stalled Redis) is waited for on tokio's blocking pool
//! until the call's deadline, and the worker goes back to its other tasks.
//!
//! The wait's bound is the socket's own receive timeout (`SO_RCVTIMEO`), which the kernel counts
//! in scheduler ticks, not a `poll` with a deadline: a deadline finer than a tick arms a
//! high-resolution timer and cancels it on every call, which on the benchmark VM (where
//! programming the timer leaves the guest) made one round trip 35–49 µs at p50 against 16–25 µs
//! for a plain blocking read, measured side by side (bench/governed-2.md). A tick-counted timeout
//! costs nothing measurable; the price is its coarseness, hence the pause after a late reply.

use super::{Connection, Replies, Shared, io_error, open_tcp};
use redis::Value;
use std::io::{ErrorKind, Read as _, Write as _};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// How long a call may hold its worker waiting, as asked of the kernel: it counts whole ticks,
/// so this lasts 4–8 ms at the usual 250 Hz (10–20 ms at 100 Hz). Never reached by a round trip
/// to a Redis that answers; asked in ticks, and well above one, so that a tick falling during a
/// round trip never cuts it short.
pub(super) const INLINE_WAIT: Duration = Duration::from_millis(5);

pub(super) struct Inline {
    /// Blocking, with [`INLINE_WAIT`] as its send and receive timeouts.
    stream: TcpStream,
    /// Read but not yet parsed.
    read: Vec<u8>,
    /// What each `read` fills: zeroed once, not on every call (4,096 bytes zeroed per admission
    /// were ~4,000 instructions of it).
    chunk: Box<[u8]>,
}

impl Connection for Inline {
    async fn open(shared: &Shared) -> redis::RedisResult<Self> {
        // Connecting is rare and may take long: done the tokio way, then taken out of tokio's
        // hands.
        let stream = open_tcp(shared).await?.into_std()?;
        stream.set_nonblocking(false)?;
        stream.set_read_timeout(Some(INLINE_WAIT))?;
        stream.set_write_timeout(Some(INLINE_WAIT))?;
        Ok(Inline { stream, read: Vec::with_capacity(512), chunk: vec![0; 4096].into_boxed_slice() })
    }

    async fn exchange(
        mut self,
        shared: &Shared,
        packed: &[u8],
        replies: usize,
        deadline: Instant,
    ) -> redis::RedisResult<(Self, Vec<Value>)> {
        let started = Instant::now();
        self.write_all(packed)?;
        let mut replies = Replies::new(replies);
        // First without blocking, yielding the thread, while round trips are short
        // (`yielding.rs`); then blocking, for at most one wait.
        let answered = match shared.yielding.window() {
            Some(window) => self.yield_for_replies(&mut replies, started + window)?,
            None => false,
        };
        if answered || self.read_replies(&mut replies, None)? {
            shared.yielding.observe(started.elapsed());
            return Ok((self, replies.values));
        }
        // Slower than a round trip should be: the rest of the wait leaves the worker, and the
        // calls of the next while do not wait inline at all. If the
        // call is cut short meanwhile, the blocking task still ends (within one wait after the
        // deadline) and drops the connection.
        shared.pause_inline();
        let waited = tokio::task::spawn_blocking(move || {
            while Instant::now() < deadline {
                if self.read_replies(&mut replies, None)? {
                    return Ok::<_, redis::RedisError>(Some((self, replies.values)));
                }
            }
            Ok(None)
        })
        .await
        .map_err(|_| io_error("the wait for Redis's reply was lost"))?;
        waited?.ok_or_else(|| std::io::Error::from(ErrorKind::TimedOut).into())
    }
}

impl Inline {
    /// Writes all of `packed`. A send buffer still full after one wait means Redis has stopped
    /// reading: the call fails (and the connection goes) rather than hold the worker longer.
    fn write_all(&self, mut packed: &[u8]) -> std::io::Result<()> {
        while !packed.is_empty() {
            match (&self.stream).write(packed) {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(n) => packed = &packed[n..],
                Err(err) if err.kind() == ErrorKind::Interrupted => {}
                Err(err) if err.kind() == ErrorKind::WouldBlock => return Err(ErrorKind::TimedOut.into()),
                Err(err) => return Err(err),
            }
        }
        Ok(())
    }

    /// Reads without blocking until `replies` are all there (true) or `until` passes (false),
    /// yielding the thread between tries.
    fn yield_for_replies(&mut self, replies: &mut Replies, until: Instant) -> redis::RedisResult<bool> {
        // Two `ioctl`s per call: std's `read` takes no `MSG_DONTWAIT`, and socket2's flagged
        // `recv` fills an uninitialised buffer, which safe code cannot read back.
        self.stream.set_nonblocking(true)?;
        let answered = self.read_replies(replies, Some(until));
        // Blocking again for the wait that follows (a failure to switch fails the call, and the
        // connection goes, rather than leave it with reads that do not wait).
        self.stream.set_nonblocking(false)?;
        answered
    }

    /// Reads until `replies` are all there (true) or the wait ends with nothing to read (false;
    /// what has been read and parsed is kept for the next try). The wait: on the blocking socket,
    /// its receive timeout; made non-blocking, until `yield_until`, yielding between tries.
    fn read_replies(
        &mut self,
        replies: &mut Replies,
        yield_until: Option<Instant>,
    ) -> redis::RedisResult<bool> {
        loop {
            if replies.parse(&self.read)? {
                self.read.clear();
                return Ok(true);
            }
            match (&self.stream).read(&mut self.chunk) {
                Ok(0) => return Err(io_error("Redis closed the connection")),
                Ok(n) => self.read.extend_from_slice(&self.chunk[..n]),
                Err(err) if err.kind() == ErrorKind::Interrupted => {}
                Err(err) if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    match yield_until {
                        Some(until) if Instant::now() < until => std::thread::yield_now(),
                        _ => return Ok(false),
                    }
                }
                Err(err) => return Err(err.into()),
            }
        }
    }
}
