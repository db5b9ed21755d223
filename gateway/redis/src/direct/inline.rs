//! The connection whose call waits for its reply on the calling thread, in `poll(2)`, as a
//! blocking client does, instead of parking its task.
//!
//! That holds a tokio worker for the round trip, so it is bounded three ways: only a call that is
//! the only one on the pool's connections, which also makes it one call at a time
//! ([`super::DirectPool::lease`]); only on a runtime with another worker to run the rest
//! meanwhile ([`super::DirectPool::new`]); and for at most [`INLINE_WAIT`]. A loopback round
//! trip takes 30–80 µs at p50 on the benchmark VM, within tokio's guidance of 10–100 µs between
//! two awaits; only a reply already late holds the worker longer, up to 200 µs. A reply that
//! takes longer still (a busy or stalled Redis) is waited for on tokio's blocking pool until the
//! call's deadline, and the worker goes back to its other tasks.

use super::{Connection, Replies, Shared, io_error, open_tcp};
use redis::Value;
use rustix::event::{PollFd, PollFlags, Timespec, poll};
use std::io::{ErrorKind, Read as _, Write as _};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// The longest a call holds its worker waiting for the reply.
const INLINE_WAIT: Duration = Duration::from_micros(200);

pub(super) struct Inline {
    /// Non-blocking: every wait is a `poll` with a deadline.
    stream: TcpStream,
    /// Read but not yet parsed.
    read: Vec<u8>,
}

impl Connection for Inline {
    async fn open(shared: &Shared) -> redis::RedisResult<Self> {
        // Connecting is rare and may take long: done the tokio way, then taken out of tokio's
        // hands (the socket stays non-blocking).
        let stream = open_tcp(shared).await?.into_std()?;
        Ok(Inline { stream, read: Vec::with_capacity(512) })
    }

    async fn exchange(
        mut self,
        packed: &[u8],
        replies: usize,
        deadline: Instant,
    ) -> redis::RedisResult<(Self, Vec<Value>)> {
        self.write_all(packed, deadline)?;
        let held_until = deadline.min(Instant::now() + INLINE_WAIT);
        let mut replies = Replies::new(replies);
        if self.read_replies(&mut replies, held_until)? {
            return Ok((self, replies.values));
        }
        // Slower than a round trip should be: the rest of the wait leaves the worker. If the
        // call is cut short meanwhile, the blocking task still ends by the deadline and drops
        // the connection.
        let waited = tokio::task::spawn_blocking(move || {
            let complete = self.read_replies(&mut replies, deadline)?;
            Ok::<_, redis::RedisError>((self, complete.then_some(replies.values)))
        })
        .await
        .map_err(|_| io_error("the wait for Redis's reply was lost"))?;
        match waited? {
            (inline, Some(values)) => Ok((inline, values)),
            (_, None) => Err(std::io::Error::from(ErrorKind::TimedOut).into()),
        }
    }
}

impl Inline {
    fn write_all(&self, mut packed: &[u8], deadline: Instant) -> std::io::Result<()> {
        while !packed.is_empty() {
            match (&self.stream).write(packed) {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(n) => packed = &packed[n..],
                Err(err) if err.kind() == ErrorKind::WouldBlock => {
                    if !self.wait(PollFlags::OUT, deadline)? {
                        return Err(ErrorKind::TimedOut.into());
                    }
                }
                Err(err) if err.kind() == ErrorKind::Interrupted => {}
                Err(err) => return Err(err),
            }
        }
        Ok(())
    }

    /// Reads until `replies` are all there (true) or `until` comes (false; what has been read
    /// and parsed is kept for the next try).
    fn read_replies(&mut self, replies: &mut Replies, until: Instant) -> redis::RedisResult<bool> {
        let mut chunk = [0u8; 4096];
        loop {
            if replies.parse(&self.read)? {
                self.read.clear();
                return Ok(true);
            }
            // Waiting first: right after a write the reply is never there yet, and a `read`
            // that says so would be a system call for nothing.
            if !self.wait(PollFlags::IN, until)? {
                return Ok(false);
            }
            match (&self.stream).read(&mut chunk) {
                Ok(0) => return Err(io_error("Redis closed the connection")),
                Ok(n) => self.read.extend_from_slice(&chunk[..n]),
                Err(err) if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {}
                Err(err) => return Err(err.into()),
            }
        }
    }

    /// Waits until the socket is ready for `flags` (true) or `until` passes (false).
    fn wait(&self, flags: PollFlags, until: Instant) -> std::io::Result<bool> {
        loop {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(false);
            }
            let timeout = Timespec { tv_sec: left.as_secs() as i64, tv_nsec: i64::from(left.subsec_nanos()) };
            match poll(&mut [PollFd::new(&self.stream, flags)], Some(&timeout)) {
                Ok(0) => return Ok(false),
                Ok(_) => return Ok(true),
                Err(rustix::io::Errno::INTR) => {}
                Err(err) => return Err(err.into()),
            }
        }
    }
}
