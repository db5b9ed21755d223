//! Command-line parsing (hand-rolled: the workspace has no CLI crate).

use std::path::PathBuf;
use std::time::Duration;

use hyper::Method;
use hyper::Uri;
use hyper::header::{HeaderName, HeaderValue};

/// Usage text for `--help` and argument errors.
pub const USAGE: &str = "\
usage: switchboard-loadgen --url URL [--method METHOD] [--body-file F | --body STRING]
                           [-H 'Name: value']... (--concurrency N | --rate R [--connections C])
                           [--duration 10s] [--warmup 0s] [--timeout 30s] [--threads 1] [--json]

  --url URL            target, http:// only (HTTP/1.1, keep-alive)
  --method METHOD      default: POST if a body is given, otherwise GET
  --body STRING        request body
  --body-file F        request body read from a file
  -H, --header 'N: V'  extra request header (repeatable); Content-Type defaults to
                       application/json when a body is given
  --concurrency N      closed loop: N connections sending back to back
  --rate R             fixed rate: R requests/s; latency measured from the intended start time
  --connections C      connections used by --rate (default 64)
  --duration D         measured duration (default 10s); units us, ms, s, m, h
  --warmup D           same load for D before measuring, not recorded (default 0s)
  --timeout D          per-request timeout, counted as a transport error (default 30s)
  --threads N          tokio worker threads (default 1)
  --json               print one JSON object instead of a table
  -h, --help           this text";

/// Load model.
#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    /// `concurrency` workers, each sending back to back on its own connection.
    Closed { concurrency: usize },
    /// Requests scheduled at `rate` per second, served by `connections` connections.
    Rate { rate: f64, connections: usize },
}

/// Where the request body comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodySpec {
    None,
    Inline(String),
    File(PathBuf),
}

/// Parsed arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct Args {
    pub url: Uri,
    pub method: Method,
    pub body: BodySpec,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub mode: Mode,
    pub duration: Duration,
    pub warmup: Duration,
    pub timeout: Duration,
    pub threads: usize,
    pub json: bool,
}

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Run(Box<Args>),
    Help,
}

/// Default number of connections in fixed-rate mode.
pub const DEFAULT_CONNECTIONS: usize = 64;

/// Parses the arguments (without the program name).
///
/// # Errors
/// A human-readable message for unknown flags, missing or malformed values and conflicting modes.
pub fn parse_args<S: AsRef<str>>(argv: &[S]) -> Result<Command, String> {
    let mut url = None;
    let mut method = None;
    let mut body = BodySpec::None;
    let mut headers = Vec::new();
    let mut concurrency = None;
    let mut rate = None;
    let mut connections = None;
    let mut duration = Duration::from_secs(10);
    let mut warmup = Duration::ZERO;
    let mut timeout = Duration::from_secs(30);
    let mut threads = 1;
    let mut json = false;

    let mut it = argv.iter().map(AsRef::as_ref);
    while let Some(arg) = it.next() {
        // Accept both `--flag value` and `--flag=value`.
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v)),
            _ => (arg, None),
        };
        let mut value = || -> Result<String, String> {
            match inline {
                Some(v) => Ok(v.to_owned()),
                None => it.next().map(str::to_owned).ok_or_else(|| format!("{flag} needs a value")),
            }
        };
        match flag {
            "-h" | "--help" => return Ok(Command::Help),
            "--json" => json = true,
            "--url" => {
                let v = value()?;
                url = Some(parse_url(&v)?);
            }
            "--method" | "-X" => {
                let v = value()?;
                method = Some(
                    Method::from_bytes(v.to_ascii_uppercase().as_bytes())
                        .map_err(|_| format!("invalid method {v:?}"))?,
                );
            }
            "--body" => {
                if body != BodySpec::None {
                    return Err("give at most one of --body and --body-file".into());
                }
                body = BodySpec::Inline(value()?);
            }
            "--body-file" => {
                if body != BodySpec::None {
                    return Err("give at most one of --body and --body-file".into());
                }
                body = BodySpec::File(PathBuf::from(value()?));
            }
            "-H" | "--header" => headers.push(parse_header(&value()?)?),
            "--concurrency" | "-c" => concurrency = Some(parse_positive(flag, &value()?)?),
            "--rate" | "-r" => {
                let v = value()?;
                let r: f64 = v.parse().map_err(|_| format!("--rate: not a number: {v:?}"))?;
                if !(r.is_finite() && r > 0.0) {
                    return Err(format!("--rate must be a positive number, got {v:?}"));
                }
                rate = Some(r);
            }
            "--connections" => connections = Some(parse_positive(flag, &value()?)?),
            "--duration" => duration = parse_duration(&value()?)?,
            "--warmup" => warmup = parse_duration(&value()?)?,
            "--timeout" => timeout = parse_duration(&value()?)?,
            "--threads" => threads = parse_positive(flag, &value()?)?,
            _ => return Err(format!("unknown argument {arg:?}")),
        }
    }

    let url = url.ok_or("--url is required")?;
    let mode = match (concurrency, rate) {
        (Some(_), Some(_)) => return Err("give either --concurrency or --rate, not both".into()),
        (None, None) => return Err("give one of --concurrency N or --rate R".into()),
        (Some(concurrency), None) => {
            if connections.is_some() {
                return Err("--connections only applies to --rate (use --concurrency)".into());
            }
            Mode::Closed { concurrency }
        }
        (None, Some(rate)) => Mode::Rate { rate, connections: connections.unwrap_or(DEFAULT_CONNECTIONS) },
    };
    if duration.is_zero() {
        return Err("--duration must be positive".into());
    }
    if timeout.is_zero() {
        return Err("--timeout must be positive".into());
    }
    let method = method.unwrap_or(if body == BodySpec::None { Method::GET } else { Method::POST });
    if body != BodySpec::None && !headers.iter().any(|(n, _)| n == hyper::header::CONTENT_TYPE) {
        headers.push((hyper::header::CONTENT_TYPE, HeaderValue::from_static("application/json")));
    }
    Ok(Command::Run(Box::new(Args {
        url,
        method,
        body,
        headers,
        mode,
        duration,
        warmup,
        timeout,
        threads,
        json,
    })))
}

fn parse_url(v: &str) -> Result<Uri, String> {
    let uri: Uri = v.parse().map_err(|e| format!("invalid --url {v:?}: {e}"))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some(other) => return Err(format!("--url: only http:// is supported, got {other}://")),
        None => return Err(format!("--url must be absolute (http://host:port/path), got {v:?}")),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(format!("--url has no host: {v:?}"));
    }
    Ok(uri)
}

fn parse_header(v: &str) -> Result<(HeaderName, HeaderValue), String> {
    let (name, value) =
        v.split_once(':').ok_or_else(|| format!("header must be 'Name: value', got {v:?}"))?;
    let name = HeaderName::from_bytes(name.trim().as_bytes())
        .map_err(|_| format!("invalid header name in {v:?}"))?;
    let value = HeaderValue::from_str(value.trim()).map_err(|_| format!("invalid header value in {v:?}"))?;
    Ok((name, value))
}

fn parse_positive(flag: &str, v: &str) -> Result<usize, String> {
    match v.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("{flag} must be a positive integer, got {v:?}")),
    }
}

/// Parses a duration like `10s`, `500ms`, `2m`, `1.5s`, `250us`, `1h`; a bare number is seconds.
///
/// # Errors
/// A message if the number or the unit is not understood.
pub fn parse_duration(v: &str) -> Result<Duration, String> {
    let s = v.trim();
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().map_err(|_| format!("invalid duration {v:?} (try 10s, 500ms, 2m)"))?;
    let scale = match unit.trim() {
        "" | "s" | "sec" | "secs" => 1.0,
        "ms" => 1e-3,
        "us" | "µs" => 1e-6,
        "ns" => 1e-9,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        u => return Err(format!("invalid duration unit {u:?} in {v:?} (use us, ms, s, m, h)")),
    };
    Duration::try_from_secs_f64(n * scale).map_err(|_| format!("duration out of range: {v:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(argv: &[&str]) -> Args {
        match parse_args(argv) {
            Ok(Command::Run(a)) => *a,
            other => panic!("expected Run, got {other:?}"),
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("250us"), Ok(Duration::from_micros(250)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert!(parse_duration("").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("10x").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn closed_loop_post_with_headers() {
        let a = run(&[
            "--url",
            "http://127.0.0.1:8080/v1/chat/completions",
            "--body",
            "{}",
            "-H",
            "Authorization: Bearer sk-bench-4242",
            "--concurrency",
            "1",
            "--duration",
            "5s",
            "--warmup=2s",
            "--json",
        ]);
        assert_eq!(a.url.port_u16(), Some(8080));
        assert_eq!(a.url.path(), "/v1/chat/completions");
        assert_eq!(a.method, Method::POST);
        assert_eq!(a.body, BodySpec::Inline("{}".into()));
        assert_eq!(a.mode, Mode::Closed { concurrency: 1 });
        assert_eq!(a.duration, Duration::from_secs(5));
        assert_eq!(a.warmup, Duration::from_secs(2));
        assert_eq!(a.threads, 1);
        assert!(a.json);
        assert_eq!(a.headers.len(), 2);
        assert_eq!(a.headers[0].0, hyper::header::AUTHORIZATION);
        assert_eq!(a.headers[0].1, "Bearer sk-bench-4242");
        assert_eq!(a.headers[1].0, hyper::header::CONTENT_TYPE);
    }

    #[test]
    fn fixed_rate_defaults() {
        let a = run(&["--url", "http://localhost/", "--rate", "2000"]);
        assert_eq!(a.mode, Mode::Rate { rate: 2000.0, connections: DEFAULT_CONNECTIONS });
        assert_eq!(a.method, Method::GET);
        assert_eq!(a.body, BodySpec::None);
        assert!(a.headers.is_empty());
        assert_eq!(a.duration, Duration::from_secs(10));
        assert_eq!(a.warmup, Duration::ZERO);
        assert!(!a.json);

        let a = run(&[
            "--url=http://h:1/x?y=1",
            "--rate=0.5",
            "--connections",
            "8",
            "--method",
            "put",
            "--body-file",
            "/tmp/b.json",
            "-H",
            "content-type: text/plain",
            "--threads",
            "2",
        ]);
        assert_eq!(a.mode, Mode::Rate { rate: 0.5, connections: 8 });
        assert_eq!(a.method, Method::PUT);
        assert_eq!(a.body, BodySpec::File("/tmp/b.json".into()));
        assert_eq!(a.headers.len(), 1, "explicit Content-Type is not duplicated");
        assert_eq!(a.threads, 2);
    }

    #[test]
    fn rejects_bad_arguments() {
        let bad: &[&[&str]] = &[
            &["--concurrency", "1"],
            &["--url", "http://h/"],
            &["--url", "http://h/", "--concurrency", "1", "--rate", "10"],
            &["--url", "http://h/", "--concurrency", "0"],
            &["--url", "http://h/", "--concurrency", "1", "--connections", "4"],
            &["--url", "http://h/", "--rate", "0"],
            &["--url", "http://h/", "--rate", "nan"],
            &["--url", "https://h/", "--rate", "10"],
            &["--url", "/relative", "--rate", "10"],
            &["--url", "http://h/", "--rate", "10", "--duration", "0s"],
            &["--url", "http://h/", "--rate", "10", "-H", "no-colon"],
            &["--url", "http://h/", "--rate", "10", "--body", "a", "--body-file", "b"],
            &["--url", "http://h/", "--rate"],
            &["--url", "http://h/", "--rate", "10", "--bogus"],
        ];
        for argv in bad {
            assert!(parse_args(argv).is_err(), "accepted {argv:?}");
        }
        assert_eq!(parse_args(&["--help"]), Ok(Command::Help));
    }
}
