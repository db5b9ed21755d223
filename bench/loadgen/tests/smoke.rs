//! End-to-end runs against a tiny in-process keep-alive HTTP/1.1 server.

// A cfg(test) module so clippy applies its in-test allowances (unwrap in helpers).
#[cfg(test)]
mod smoke {
    use bytes::Bytes;
    use switchboard_loadgen::args::{Args, Command, parse_args};
    use switchboard_loadgen::run::run;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio::net::TcpListener;

    /// Answers every request (GET, or POST with Content-Length) with `status`, keeping the connection.
    async fn serve(status: u16) -> std::net::SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (mut sock, _) = listener.accept().await.unwrap();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    loop {
                        // Complete request = headers + Content-Length bytes of body.
                        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                            let len = head
                                .lines()
                                .find_map(|l| l.strip_prefix("content-length:"))
                                .map_or(0, |v| v.trim().parse::<usize>().unwrap());
                            if buf.len() < end + 4 + len {
                                break;
                            }
                            buf.drain(..end + 4 + len);
                            let resp = format!("HTTP/1.1 {status} X\r\ncontent-length: 2\r\n\r\nok");
                            if sock.write_all(resp.as_bytes()).await.is_err() {
                                return;
                            }
                        }
                        match sock.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                });
            }
        });
        addr
    }

    fn args(argv: &[&str]) -> Args {
        match parse_args(argv).unwrap() {
            Command::Run(a) => *a,
            Command::Help => unreachable!(),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn closed_loop_counts_requests() {
        let addr = serve(200).await;
        let url = format!("http://{addr}/v1/chat/completions");
        let a = args(&["--url", &url, "--concurrency", "2", "--duration", "300ms", "--warmup", "100ms"]);
        let s = run(&a, Bytes::from_static(b"{}")).await.unwrap();
        assert!(s.requests > 10, "{s:?}");
        assert_eq!(s.errors, 0);
        assert_eq!(s.transport_errors, 0);
        assert_eq!(s.status_counts.get(&200), Some(&s.requests));
        assert!(s.duration_s >= 0.3 && s.duration_s < 1.0, "{s:?}");
        assert!(s.latency.p50_us > 0 && s.latency.p50_us <= s.latency.p99_us);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn fixed_rate_sends_the_schedule() {
        let addr = serve(200).await;
        let url = format!("http://{addr}/");
        let a = args(&[
            "--url",
            &url,
            "--rate",
            "1000",
            "--connections",
            "4",
            "--duration",
            "500ms",
            "--warmup",
            "200ms",
            "--body",
            "{\"a\":1}",
        ]);
        let s = run(&a, Bytes::from_static(b"{\"a\":1}")).await.unwrap();
        // Exactly the measured part of the schedule: 500 ms at 1000/s.
        assert_eq!(s.requests, 500, "{s:?}");
        assert_eq!(s.unsent, 0);
        assert!((s.rps - 1000.0).abs() < 100.0, "{s:?}");
        assert!(s.latency.max_us > 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn non_2xx_are_errors_outside_the_histogram() {
        let addr = serve(503).await;
        let url = format!("http://{addr}/");
        let a = args(&["--url", &url, "--concurrency", "1", "--duration", "100ms"]);
        let s = run(&a, Bytes::new()).await.unwrap();
        assert!(s.requests > 0);
        assert_eq!(s.errors, s.requests);
        assert_eq!(s.latency.p50_us, 0, "errors are not in the latency histogram");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn unreachable_target_is_an_error() {
        // Bind then drop to get a port nobody listens on.
        let addr = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
        let url = format!("http://{addr}/");
        let a = args(&["--url", &url, "--concurrency", "1", "--duration", "100ms"]);
        assert!(run(&a, Bytes::new()).await.is_err());
    }
}
