//! Child processes: spawned with piped output and killed when dropped. A dedicated thread per
//! pipe reads each line, timestamps it the moment it arrives (before anything else is done with
//! it, so a busy runtime cannot delay the timestamp), hands it on, and copies it to a log file.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

/// One line of a child's output and when the bench read it.
#[derive(Debug)]
pub struct Line {
    pub at: Instant,
    pub text: String,
}

/// A running child process. Dropping it kills it (SIGKILL) and reaps it.
pub struct Process {
    name: String,
    child: Child,
    stdout: UnboundedReceiver<Line>,
    log: PathBuf,
}

impl Process {
    /// Spawns `command` with its stdout and stderr piped. Stdout lines are kept for
    /// [`Process::wait_line`]; stderr lines go to `stderr` (and both to `LOG_DIR/NAME.log`).
    pub fn spawn(
        name: &str,
        mut command: Command,
        log_dir: &Path,
        clock: Instant,
        stderr: UnboundedSender<Line>,
    ) -> Result<Process, String> {
        let log = log_dir.join(format!("{name}.log"));
        let file = File::create(&log).map_err(|e| format!("creating {}: {e}", log.display()))?;
        let program = command.get_program().to_string_lossy().into_owned();
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("starting {name} ({program}): {e}"))?;
        // From here on `process` owns the child, so an early return below still kills it.
        let (stdout_lines, stdout) = unbounded_channel();
        let mut process = Process { name: name.to_owned(), child, stdout, log };
        let out = process.child.stdout.take().ok_or("stdout was not piped")?;
        let err = process.child.stderr.take().ok_or("stderr was not piped")?;
        let copy = file.try_clone().map_err(|e| format!("{}: {e}", process.log.display()))?;
        read_lines(&format!("{name}-stdout"), out, copy, clock, stdout_lines)?;
        read_lines(&format!("{name}-stderr"), err, file, clock, stderr)?;
        Ok(process)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The rest of the first stdout line starting with `prefix`, waiting up to `timeout`.
    pub async fn wait_line(&mut self, prefix: &str, timeout: Duration) -> Result<String, String> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let line = match tokio::time::timeout_at(deadline, self.stdout.recv()).await {
                Ok(Some(line)) => line,
                Ok(None) => {
                    return Err(format!(
                        "{} exited before printing {prefix:?}; {}",
                        self.name,
                        self.see_log()
                    ));
                }
                Err(_) => {
                    return Err(format!(
                        "{} did not print {prefix:?} within {timeout:?}; {}",
                        self.name,
                        self.see_log()
                    ));
                }
            };
            if let Some(rest) = line.text.strip_prefix(prefix) {
                return Ok(rest.trim().to_owned());
            }
        }
    }

    /// Where this process's output is, for error messages.
    pub fn see_log(&self) -> String {
        format!("see {}", self.log.display())
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads `stream` line by line on its own thread until it closes.
fn read_lines(
    thread: &str,
    stream: impl Read + Send + 'static,
    mut log: File,
    clock: Instant,
    lines: UnboundedSender<Line>,
) -> Result<(), String> {
    let spawned = std::thread::Builder::new().name(thread.to_owned()).spawn(move || {
        let mut reader = BufReader::new(stream);
        let mut buffer = Vec::new();
        loop {
            buffer.clear();
            match reader.read_until(b'\n', &mut buffer) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            let at = Instant::now();
            let text = strip_ansi(String::from_utf8_lossy(&buffer).trim_end());
            let stamp = at.duration_since(clock).as_secs_f64() * 1e3;
            let _ = writeln!(log, "[{stamp:>12.3}] {text}");
            // A closed receiver only means nobody listens to this pipe any more: keep draining
            // it so the child never blocks on a full pipe.
            let _ = lines.send(Line { at, text });
        }
    });
    spawned.map(drop).map_err(|e| format!("starting the {thread} reader thread: {e}"))
}

/// `text` without ANSI escape sequences (`ESC [ ... letter`): the operator colours its log even
/// into a pipe, which would hide `keys=` behind colour codes.
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.next() == Some('[') {
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// `generation=` and `keys=` of a log line containing `marker` (the gateway's `config applied`,
/// the operator's `snapshot published`; tracing's `key=value` fields).
pub fn parse_event(line: &str, marker: &str) -> Option<(u64, u64)> {
    if !line.contains(marker) {
        return None;
    }
    let field = |name: &str| line.split_whitespace().find_map(|word| word.strip_prefix(name)?.parse().ok());
    Some((field("generation=")?, field("keys=")?))
}

/// CPU time a process used so far (utime + stime, all threads), in clock ticks.
pub fn cpu_ticks(pid: u32) -> Result<u64, String> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    // The command name (field 2) may contain spaces; the fields after its closing parenthesis
    // start at field 3, so utime (14) and stime (15) are the 12th and 13th.
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).ok_or_else(|| format!("{path}: no ')'"))?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let tick = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
    match (tick(11), tick(12)) {
        (Some(utime), Some(stime)) => Ok(utime + stime),
        _ => Err(format!("{path}: unexpected format")),
    }
}

/// CPU time the whole machine spent running processes so far (every CPU's user, nice and
/// system time, from the first line of `/proc/stat`), in clock ticks. Interrupt time is left
/// out: the kernel does not charge it to any process, and much of it is the bench's own
/// loopback traffic.
pub fn machine_busy_ticks() -> Result<u64, String> {
    let stat = std::fs::read_to_string("/proc/stat").map_err(|e| format!("/proc/stat: {e}"))?;
    let line = stat.lines().next().filter(|l| l.starts_with("cpu ")).ok_or("/proc/stat: no cpu line")?;
    let ticks: Vec<u64> = line.split_whitespace().skip(1).map_while(|v| v.parse().ok()).collect();
    // The fields: user nice system idle iowait irq softirq steal ...
    let busy = ticks.iter().take(3).sum();
    Ok(busy)
}

/// Peak resident set size (`VmHWM`) in KiB.
pub fn peak_rss_kib(pid: u32) -> Result<u64, String> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| format!("{path}: no VmHWM"))
}

/// Clock ticks per second (`getconf CLK_TCK`; 100, the Linux default, if that fails).
pub fn clock_ticks_per_second() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8_lossy(&out.stdout).trim().parse().ok())
        .unwrap_or(100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_generation_and_keys_from_tracing_lines() {
        let line = "2026-12-02T01:20:00.123456Z  INFO config applied generation=1764 hash=ab12cd \
                    routes=1 keys=10001 rejected=0";
        assert_eq!(parse_event(line, "config applied"), Some((1764, 10001)));
        assert_eq!(parse_event(line, "snapshot published"), None);
        assert_eq!(parse_event("INFO config applied generation=3", "config applied"), None);
    }

    #[test]
    fn colour_codes_are_removed() {
        let coloured = "\u{1b}[32m INFO\u{1b}[0m snapshot published \u{1b}[3mgeneration\u{1b}[0m\u{1b}[2m=\u{1b}[0m7 \
                        \u{1b}[3mkeys\u{1b}[0m\u{1b}[2m=\u{1b}[0m501";
        let plain = strip_ansi(coloured);
        assert_eq!(plain, " INFO snapshot published generation=7 keys=501");
        assert_eq!(parse_event(&plain, "snapshot published"), Some((7, 501)));
    }

    #[test]
    fn reads_this_process_cpu_and_peak_rss() {
        let pid = std::process::id();
        assert!(cpu_ticks(pid).is_ok());
        assert!(peak_rss_kib(pid).unwrap() > 0);
        assert!(machine_busy_ticks().unwrap() >= cpu_ticks(pid).unwrap());
    }
}
