//! Commands written straight into the bytes Redis reads: the form an admission and a batch of
//! settlements are built in, every request.
//!
//! redis-rs's `Pipeline` builds each command as its own vectors (one per argument, reallocated
//! as numbers are written) and then packs them all into a third: ~16,000 instructions per
//! admission transaction on the benchmark VM, a tenth of all the gateway does for a governed
//! request (bench/governed-2.md). Here every argument is written once, in place, and a counter's
//! name is written from its parts without being joined into a `String` first. A connection of
//! the gateway's own ([`crate::direct`]) sends the bytes as they are; the shared and cluster
//! connections, which take redis-rs's pipelines, get one rebuilt from them
//! ([`Commands::to_pipeline`]).

use crate::direct::resp::reply;
use redis::{Pipeline, RedisResult, Value};

/// One argument of a command.
#[derive(Clone, Copy)]
pub enum Arg<'a> {
    Text(&'a str),
    Int(i64),
    /// One argument made of these parts end to end (a counter's name).
    Joined(&'a [&'a str]),
}

/// Commands to send together: a pipeline, or a transaction (`MULTI` … `EXEC`).
pub struct Commands {
    /// RESP2 arrays of bulk strings, one per command; a transaction's starts with `MULTI`, and
    /// its `EXEC` is written when it is sent ([`Commands::seal`]).
    packed: Vec<u8>,
    /// Commands written, `MULTI` and `EXEC` included.
    count: usize,
    /// How many of them were carried ([`Commands::transaction_after`]): written first, answered
    /// apart.
    carried: usize,
    atomic: bool,
    sealed: bool,
}

impl Commands {
    /// A transaction: Redis runs its commands with nothing in between, and answers them as one
    /// array ([`Commands::values`]).
    pub fn transaction() -> Self {
        Commands::transaction_after(Commands::pipeline())
    }

    /// Commands sent at once, each answered on its own.
    pub fn pipeline() -> Self {
        Commands { packed: Vec::with_capacity(512), count: 0, carried: 0, atomic: false, sealed: false }
    }

    /// A transaction whose write starts with `carried`: another caller's commands (a pipeline)
    /// that ride along, outside the transaction. What they answer comes first in
    /// [`Commands::values`], as it is: an error among them fails nothing of this caller's. For
    /// the connections of the gateway's own ([`crate::direct`]); a redis-rs pipeline
    /// ([`Commands::to_pipeline`]) would put them inside the transaction.
    pub fn transaction_after(carried: Commands) -> Self {
        let mut commands = Commands::after(carried, true);
        commands.push(&[Arg::Text("MULTI")]);
        commands
    }

    /// A pipeline whose write starts with `carried`, answered apart as in
    /// [`Commands::transaction_after`].
    pub fn pipeline_after(carried: Commands) -> Self {
        Commands::after(carried, false)
    }

    fn after(carried: Commands, atomic: bool) -> Self {
        let Commands { packed, count, .. } = carried;
        Commands { packed, count, carried: count, atomic, sealed: false }
    }

    /// Appends one command: its name first, then its arguments.
    pub fn push(&mut self, args: &[Arg<'_>]) -> &mut Self {
        let mut digits = itoa::Buffer::new();
        self.header(b'*', args.len());
        for arg in args {
            match *arg {
                Arg::Text(text) => self.bulk(&[text]),
                Arg::Int(n) => {
                    let n = digits.format(n);
                    self.bulk(&[n]);
                }
                Arg::Joined(parts) => self.bulk(parts),
            }
        }
        self.count += 1;
        self
    }

    fn header(&mut self, kind: u8, len: usize) {
        let mut digits = itoa::Buffer::new();
        self.packed.push(kind);
        self.packed.extend_from_slice(digits.format(len).as_bytes());
        self.packed.extend_from_slice(b"\r\n");
    }

    fn bulk(&mut self, parts: &[&str]) {
        self.header(b'$', parts.iter().map(|part| part.len()).sum());
        for part in parts {
            self.packed.extend_from_slice(part.as_bytes());
        }
        self.packed.extend_from_slice(b"\r\n");
    }

    /// Whether no command of the caller's own was added (a transaction's `MULTI` aside).
    pub fn is_empty(&self) -> bool {
        self.count == self.carried + usize::from(self.atomic)
    }

    /// How many replies the commands written so far get (`MULTI` and carried ones included).
    pub fn replies(&self) -> usize {
        self.count
    }

    /// Ends a transaction with its `EXEC`; once, before the bytes are sent.
    pub(crate) fn seal(&mut self) {
        if self.atomic && !self.sealed {
            self.push(&[Arg::Text("EXEC")]);
        }
        self.sealed = true;
    }

    /// The bytes to send and how many replies they get; after [`Commands::seal`].
    pub(crate) fn packed(&self) -> (&[u8], usize) {
        (&self.packed, self.count)
    }

    /// What the caller gets from every reply: the carried commands' replies as they are, then a
    /// transaction's results (the array `EXEC` answers) or a pipeline's replies. An error reply
    /// to any command of the caller's own fails the whole call.
    pub(crate) fn values(&self, mut replies: Vec<Value>) -> RedisResult<Vec<Value>> {
        let own = replies.get(self.carried..).unwrap_or_default();
        if let Some(Value::ServerError(err)) = own.iter().find(|value| matches!(value, Value::ServerError(_)))
        {
            return Err(err.clone().into());
        }
        if !self.atomic {
            return Ok(replies);
        }
        match replies.pop() {
            Some(Value::Array(results)) if self.carried == 0 => Ok(results),
            Some(Value::Array(results)) => {
                replies.truncate(self.carried);
                replies.extend(results);
                Ok(replies)
            }
            Some(Value::Nil) => Err(crate::io_error("the transaction was aborted")),
            _ => Err(crate::io_error("a transaction's reply that is not an array")),
        }
    }

    /// The same commands as a redis-rs pipeline, for connections that take one: `MULTI` and
    /// `EXEC` become the pipeline's `atomic()`, which a cluster connection needs to route the
    /// transaction to its slot's node. What it answers is what [`Commands::values`] gives. The
    /// bytes are read back with the reply reader ([`crate::direct::resp`]): a command is an
    /// array of bulk strings there too.
    pub fn to_pipeline(&self) -> Pipeline {
        let mut pipeline = redis::pipe();
        if self.atomic {
            pipeline.atomic();
        }
        let mut at = 0;
        while let Ok(Some((Value::Array(command), end))) = reply(&self.packed, at, 0) {
            at = end;
            let mut args = command.into_iter().filter_map(|arg| match arg {
                Value::BulkString(bytes) => Some(bytes),
                _ => None,
            });
            let Some(name) = args.next() else { continue };
            if self.atomic && matches!(name.as_slice(), b"MULTI" | b"EXEC") {
                continue;
            }
            let cmd = pipeline.cmd(&String::from_utf8_lossy(&name));
            for arg in args {
                cmd.arg(arg);
            }
        }
        pipeline
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_packed_as_redis_rs_packs_them() {
        let mut ours = Commands::pipeline();
        ours.push(&[Arg::Text("INCRBY"), Arg::Joined(&["sb:{", "k p", "}:tot:", "7"]), Arg::Int(-480)]);
        ours.push(&[Arg::Text("PEXPIREAT"), Arg::Text("sb:{k p}:tot:7"), Arg::Int(600_000)]);
        ours.push(&[Arg::Text("SET"), Arg::Text(""), Arg::Text("é")]);
        ours.seal();
        let mut theirs = redis::pipe();
        theirs.cmd("INCRBY").arg("sb:{k p}:tot:7").arg(-480i64);
        theirs.cmd("PEXPIREAT").arg("sb:{k p}:tot:7").arg(600_000);
        theirs.cmd("SET").arg("").arg("é");
        assert_eq!(ours.packed(), (theirs.get_packed_pipeline().as_slice(), 3));
        assert_eq!(ours.to_pipeline().get_packed_pipeline(), theirs.get_packed_pipeline());
        assert!(!ours.is_empty());
        assert!(Commands::pipeline().is_empty());
    }

    #[test]
    fn a_transaction_is_multi_then_exec_or_an_atomic_pipeline() {
        let mut ours = Commands::transaction();
        assert!(ours.is_empty());
        ours.push(&[Arg::Text("MGET"), Arg::Text("a"), Arg::Text("b")]);
        ours.push(&[Arg::Text("INCRBY"), Arg::Text("a"), Arg::Int(1)]);
        let mut theirs = redis::pipe();
        theirs.atomic().cmd("MGET").arg("a").arg("b").cmd("INCRBY").arg("a").arg(1);
        assert_eq!(ours.to_pipeline().get_packed_pipeline(), theirs.get_packed_pipeline());
        ours.seal();
        ours.seal();
        assert_eq!(ours.packed(), (theirs.get_packed_pipeline().as_slice(), 4), "MULTI, 2 commands, EXEC");

        let queued = || Value::SimpleString("QUEUED".into());
        let results = vec![Value::Array(vec![Value::Nil, Value::Nil]), Value::Int(1)];
        let replies = vec![Value::Okay, queued(), queued(), Value::Array(results.clone())];
        assert_eq!(ours.values(replies).unwrap(), results);
        let aborted = vec![Value::Okay, queued(), queued(), Value::Nil];
        assert!(ours.values(aborted).is_err());
        let refused = redis::parse_redis_value(b"-ERR wrong number of arguments\r\n").unwrap();
        assert!(ours.values(vec![Value::Okay, refused, queued(), Value::Nil]).is_err());
    }

    #[test]
    fn carried_commands_go_first_and_are_answered_apart() {
        let refused = || redis::parse_redis_value(b"-WRONGTYPE not a number\r\n").unwrap();
        let carried = || {
            let mut carried = Commands::pipeline();
            carried.push(&[Arg::Text("INCRBY"), Arg::Text("a"), Arg::Int(-3)]);
            carried.push(&[Arg::Text("ZREM"), Arg::Text("f"), Arg::Text("m")]);
            carried
        };
        let mut tx = Commands::transaction_after(carried());
        assert!(tx.is_empty(), "carried commands are not the caller's own");
        tx.push(&[Arg::Text("INCRBY"), Arg::Text("b"), Arg::Int(1)]);
        tx.seal();
        let mut theirs = redis::pipe();
        theirs.cmd("INCRBY").arg("a").arg(-3).cmd("ZREM").arg("f").arg("m");
        theirs.cmd("MULTI").cmd("INCRBY").arg("b").arg(1).cmd("EXEC");
        assert_eq!(tx.packed(), (theirs.get_packed_pipeline().as_slice(), 5), "ahead of MULTI, in one write");
        let queued = Value::SimpleString("QUEUED".into());
        let replies = vec![refused(), Value::Int(1), Value::Okay, queued, Value::Array(vec![Value::Int(7)])];
        assert_eq!(
            tx.values(replies).unwrap(),
            [refused(), Value::Int(1), Value::Int(7)],
            "a carried error is handed back, not raised"
        );

        let mut pipeline = Commands::pipeline_after(carried());
        pipeline.push(&[Arg::Text("INCRBY"), Arg::Text("b"), Arg::Int(1)]);
        pipeline.seal();
        assert_eq!(pipeline.replies(), 3);
        assert_eq!(pipeline.values(vec![refused(), Value::Int(0), Value::Int(7)]).unwrap().len(), 3);
        assert!(
            pipeline.values(vec![Value::Int(1), Value::Int(0), refused()]).is_err(),
            "its own error fails it"
        );
    }
}
