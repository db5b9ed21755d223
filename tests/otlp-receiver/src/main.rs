//! `switchboard-otlp-receiver`: the test receiver as a process, for the benchmark. Spans are
//! counted, not kept. Prints `grpc http://IP:PORT` and `http http://IP:PORT` on stdout once bound;
//! on SIGTERM or SIGINT prints `spans N` and exits.

use std::io::Write;
use std::process::ExitCode;
use switchboard_otlp_receiver::Receiver;
use tokio::signal::unix::{SignalKind, signal};

fn main() -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("switchboard-otlp-receiver: {err}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let receiver = match Receiver::start_with(false).await {
            Ok(receiver) => receiver,
            Err(err) => {
                eprintln!("switchboard-otlp-receiver: {err}");
                return ExitCode::FAILURE;
            }
        };
        let mut stdout = std::io::stdout();
        let _ = writeln!(stdout, "grpc {}\nhttp {}", receiver.grpc_endpoint(), receiver.http_endpoint());
        let _ = stdout.flush();
        let (Ok(mut terminate), Ok(mut interrupt)) =
            (signal(SignalKind::terminate()), signal(SignalKind::interrupt()))
        else {
            return ExitCode::FAILURE;
        };
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
        let _ = writeln!(stdout, "spans {}", receiver.count());
        ExitCode::SUCCESS
    })
}
