//! Stored responses of the Responses API (`store: true`), so a client can send only the new turn
//! with `previous_response_id`, and retrieve or delete a response by id.
//!
//! Each stored response holds the response object (what `GET /v1/responses/{id}` answers), the
//! whole conversation up to and including it as Responses items (what the next turn is built
//! from: earlier items, this turn's input, this answer's output), and the id of the virtual key
//! that created it: any other key is told it does not exist.
//!
//! Standalone, responses live in this replica's memory, bounded in bytes (oldest dropped first)
//! and in time. With `--redis-url` they live in Redis (`{prefix}:resp:{id}`, one key each, with
//! the same time to live), so a conversation continues on whichever replica the load balancer
//! picks. A conversation longer than `--responses-max-conversation-bytes` is refused when it is
//! continued, never truncated silently.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};
use switchboard_redis::RedisClient;
use tokio::sync::Mutex;

/// One stored response.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Stored {
    /// The id of the virtual key that created it.
    pub key: String,
    /// The response object, as the client received it.
    pub response: Value,
    /// The conversation so far, as Responses items, this response's output last.
    pub items: Vec<Value>,
}

/// The store's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreLimits {
    /// How long a response is kept.
    pub ttl: Duration,
    /// In memory: the most bytes all stored responses may take together.
    pub memory_bytes: usize,
    /// The most bytes one conversation may reach before continuing it is refused.
    pub max_conversation_bytes: usize,
}

/// The store could not be reached (Redis down or slow): the request is refused rather than
/// served without its conversation.
#[derive(Debug)]
pub struct Unavailable;

#[derive(Clone)]
pub struct Store {
    backend: Backend,
    pub limits: StoreLimits,
}

#[derive(Clone)]
enum Backend {
    Memory(Arc<Mutex<Memory>>),
    Redis { client: RedisClient, prefix: String, timeout: Duration },
}

impl Store {
    pub fn in_memory(limits: StoreLimits) -> Self {
        Store { backend: Backend::Memory(Arc::default()), limits }
    }

    pub fn in_redis(client: RedisClient, prefix: String, timeout: Duration, limits: StoreLimits) -> Self {
        Store { backend: Backend::Redis { client, prefix, timeout }, limits }
    }

    /// The stored response `id`, if `key` created it (another key's is not found either).
    pub async fn get(&self, key: &str, id: &str) -> Result<Option<Stored>, Unavailable> {
        let bytes = match &self.backend {
            Backend::Memory(memory) => memory.lock().await.get(id),
            Backend::Redis { client, prefix, timeout } => {
                let mut get = ::redis::cmd("GET");
                get.arg(redis_key(prefix, id));
                redis_call(client, *timeout, get).await?
            }
        };
        // A record that does not read is as good as absent (written by a newer version?).
        let stored = bytes.and_then(|bytes| serde_json::from_slice::<Stored>(&bytes).ok());
        Ok(stored.filter(|stored| stored.key == key))
    }

    pub async fn put(&self, id: &str, stored: &Stored) -> Result<(), Unavailable> {
        let bytes = serde_json::to_vec(stored).map_err(|_| Unavailable)?;
        match &self.backend {
            Backend::Memory(memory) => {
                memory.lock().await.put(id, bytes, self.limits);
                Ok(())
            }
            Backend::Redis { client, prefix, timeout } => {
                let mut set = ::redis::cmd("SET");
                set.arg(redis_key(prefix, id)).arg(bytes).arg("PX").arg(self.limits.ttl.as_millis() as u64);
                redis_call(client, *timeout, set).await
            }
        }
    }

    /// Deletes the response `id` if `key` created it; whether it did.
    pub async fn delete(&self, key: &str, id: &str) -> Result<bool, Unavailable> {
        if self.get(key, id).await?.is_none() {
            return Ok(false);
        }
        match &self.backend {
            Backend::Memory(memory) => Ok(memory.lock().await.remove(id)),
            Backend::Redis { client, prefix, timeout } => {
                let mut del = ::redis::cmd("DEL");
                del.arg(redis_key(prefix, id));
                Ok(redis_call::<u64>(client, *timeout, del).await? > 0)
            }
        }
    }
}

/// One command, bounded by the Redis timeout.
async fn redis_call<T: ::redis::FromRedisValue>(
    client: &RedisClient,
    timeout: Duration,
    command: ::redis::Cmd,
) -> Result<T, Unavailable> {
    let mut conn = client.connection().ok_or(Unavailable)?;
    match tokio::time::timeout(timeout, command.query_async::<T>(&mut conn)).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(err)) => {
            tracing::warn!(error = %err, "the response store (Redis) failed");
            Err(Unavailable)
        }
        Err(_) => {
            tracing::warn!(
                timeout_ms = timeout.as_millis() as u64,
                "the response store (Redis) did not answer in time"
            );
            Err(Unavailable)
        }
    }
}

fn redis_key(prefix: &str, id: &str) -> String {
    format!("{prefix}:resp:{id}")
}

/// Responses in this replica's memory: a map, and the order they were stored in, to drop the
/// oldest when the byte bound is reached. Expired entries go when met or when they are oldest.
#[derive(Default)]
struct Memory {
    entries: HashMap<String, Entry>,
    order: VecDeque<(String, u64)>,
    bytes: usize,
    next: u64,
}

struct Entry {
    bytes: Vec<u8>,
    expires: Instant,
    /// Which `order` entry is this one's (a replaced id leaves a stale one behind).
    seq: u64,
}

impl Memory {
    fn get(&mut self, id: &str) -> Option<Vec<u8>> {
        let entry = self.entries.get(id)?;
        if entry.expires <= Instant::now() {
            self.remove(id);
            return None;
        }
        Some(entry.bytes.clone())
    }

    fn put(&mut self, id: &str, bytes: Vec<u8>, limits: StoreLimits) {
        self.remove(id);
        let seq = self.next;
        self.next += 1;
        self.bytes += bytes.len();
        self.entries.insert(id.to_owned(), Entry { bytes, expires: Instant::now() + limits.ttl, seq });
        self.order.push_back((id.to_owned(), seq));
        let now = Instant::now();
        while let Some((oldest, seq)) = self.order.front().cloned() {
            let current = self.entries.get(&oldest).map(|entry| (entry.seq, entry.expires));
            match current {
                // Stale: the id was replaced or removed since.
                Some((entry_seq, _)) if entry_seq != seq => {}
                None => {}
                Some((_, expires)) if self.bytes > limits.memory_bytes || expires <= now => {
                    self.remove(&oldest);
                }
                Some(_) => break,
            }
            self.order.pop_front();
        }
    }

    fn remove(&mut self, id: &str) -> bool {
        match self.entries.remove(id) {
            Some(entry) => {
                self.bytes -= entry.bytes.len();
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(memory_bytes: usize) -> StoreLimits {
        StoreLimits { ttl: Duration::from_secs(60), memory_bytes, max_conversation_bytes: 1 << 20 }
    }

    fn stored(key: &str, text: &str) -> Stored {
        Stored { key: key.into(), response: serde_json::json!({"id": text}), items: vec![Value::from(text)] }
    }

    #[tokio::test]
    async fn a_response_belongs_to_the_key_that_stored_it() {
        let store = Store::in_memory(limits(1 << 20));
        store.put("resp_1", &stored("alice", "hello")).await.unwrap();
        assert_eq!(store.get("alice", "resp_1").await.unwrap(), Some(stored("alice", "hello")));
        assert_eq!(store.get("bob", "resp_1").await.unwrap(), None, "another key does not see it");
        assert!(!store.delete("bob", "resp_1").await.unwrap(), "nor deletes it");
        assert!(store.delete("alice", "resp_1").await.unwrap());
        assert_eq!(store.get("alice", "resp_1").await.unwrap(), None);
    }

    #[tokio::test]
    async fn memory_keeps_the_newest_within_its_bound() {
        let one = serde_json::to_vec(&stored("k", "r0")).unwrap().len();
        let store = Store::in_memory(limits(3 * one));
        for i in 0..5 {
            store.put(&format!("r{i}"), &stored("k", &format!("r{i}"))).await.unwrap();
        }
        for i in 0..2 {
            assert_eq!(store.get("k", &format!("r{i}")).await.unwrap(), None, "r{i} was dropped");
        }
        for i in 2..5 {
            assert!(store.get("k", &format!("r{i}")).await.unwrap().is_some(), "r{i} is kept");
        }
        let Backend::Memory(memory) = &store.backend else { unreachable!() };
        assert_eq!(memory.lock().await.bytes, 3 * one);
    }

    #[tokio::test]
    async fn expired_responses_are_gone() {
        let store = Store::in_memory(StoreLimits {
            ttl: Duration::ZERO,
            memory_bytes: 1 << 20,
            max_conversation_bytes: 1,
        });
        store.put("r", &stored("k", "r")).await.unwrap();
        assert_eq!(store.get("k", "r").await.unwrap(), None);
    }
}
