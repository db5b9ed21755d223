//! A connection whose call parks its task until the reply wakes it: a tokio socket.

use super::{Connection, Replies, Shared, io_error, open_tcp};
use redis::Value;
use std::time::Instant;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

pub(super) struct Parked {
    stream: TcpStream,
    /// Read but not yet parsed.
    read: Vec<u8>,
}

impl Connection for Parked {
    async fn open(shared: &Shared) -> redis::RedisResult<Self> {
        Ok(Parked { stream: open_tcp(shared).await?, read: Vec::with_capacity(512) })
    }

    /// The caller's timeout bounds the wait: this future is dropped when it runs out.
    async fn exchange(
        mut self,
        _shared: &Shared,
        packed: &[u8],
        replies: usize,
        _deadline: Instant,
    ) -> redis::RedisResult<(Self, Vec<Value>)> {
        self.stream.write_all(packed).await?;
        let mut replies = Replies::new(replies);
        loop {
            if replies.parse(&self.read)? {
                self.read.clear();
                return Ok((self, replies.values));
            }
            if self.stream.read_buf(&mut self.read).await? == 0 {
                return Err(io_error("Redis closed the connection"));
            }
        }
    }
}
