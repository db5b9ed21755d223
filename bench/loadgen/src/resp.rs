//! RESP, as the Redis probes write and read it from a blocking socket: commands as arrays of
//! bulk strings, replies read whole (their content is not needed, only where they end).

use std::io::{BufRead as _, BufReader, Read as _};
use std::net::TcpStream;

/// A command as RESP: an array of bulk strings.
pub fn encode(args: &[String]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Commands given on a command line, one after another with `;` between them
/// (`MULTI ; INCR k ; EXEC`): none for no arguments.
pub fn commands(args: &[String]) -> Vec<&[String]> {
    match args {
        [] => Vec::new(),
        _ => args.split(|arg| arg == ";").collect(),
    }
}

/// `commands` as one pipeline, written in a single send.
pub fn encode_all(commands: &[&[String]]) -> Vec<u8> {
    commands.iter().flat_map(|args| encode(args)).collect()
}

/// Reads one whole reply; an error reply fails.
pub fn read_reply(reader: &mut BufReader<TcpStream>, line: &mut String) -> Result<(), String> {
    line.clear();
    reader.read_line(line).map_err(|e| e.to_string())?;
    let (kind, rest) = line.split_at_checked(1).ok_or("connection closed")?;
    let count = || rest.trim_end().parse::<i64>().map_err(|e| format!("bad reply {line:?}: {e}"));
    match kind {
        "+" | ":" => Ok(()),
        "-" => Err(format!("Redis answered {}", line.trim_end())),
        "$" => {
            let len = count()?;
            if len >= 0 {
                // The bulk string and its CRLF.
                let mut skip = vec![0u8; len as usize + 2];
                reader.read_exact(&mut skip).map_err(|e| e.to_string())?;
            }
            Ok(())
        }
        "*" => {
            for _ in 0..count()?.max(0) {
                read_reply(reader, &mut String::new())?;
            }
            Ok(())
        }
        _ => Err(format!("unexpected reply {line:?}")),
    }
}

/// One connection to Redis that sends a pipeline and reads its replies.
pub struct Probe {
    writer: TcpStream,
    reader: BufReader<TcpStream>,
    line: String,
}

impl Probe {
    pub fn connect(addr: &str) -> Result<Self, String> {
        let stream = TcpStream::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        let writer = stream.try_clone().map_err(|e| e.to_string())?;
        Ok(Probe { writer, reader: BufReader::new(stream), line: String::new() })
    }

    /// Sends `pipeline` and reads its `replies` replies: one round trip.
    pub fn call(&mut self, pipeline: &[u8], replies: usize) -> Result<(), String> {
        std::io::Write::write_all(&mut self.writer, pipeline).map_err(|e| e.to_string())?;
        for _ in 0..replies {
            read_reply(&mut self.reader, &mut self.line)?;
        }
        Ok(())
    }
}
