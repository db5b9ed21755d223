//! Command-line flags.

use clap::Parser;
use std::path::PathBuf;
use std::time::Duration;

/// Measures how long a VirtualKey change takes to reach every gateway replica.
///
/// Starts the test API server, one operator and N gateways on loopback, loads --keys
/// VirtualKeys (each with its own Secret), then makes --changes one-key changes one at a time
/// (alternately creating a key and deleting the one just created) and times each from the API
/// write to the moment every replica serves it. See bench/README.md, "Propagation".
#[derive(Parser, Debug)]
#[command(name = "switchboard-propagation")]
pub struct Args {
    /// Gateway replicas following the operator.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub replicas: u16,
    /// VirtualKeys (and Secrets) loaded before the changes.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub keys: u32,
    /// One-key changes to time (alternately a create and a delete).
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u32).range(1..))]
    pub changes: u32,
    /// API writes in flight while loading the keys.
    #[arg(long, default_value_t = 24, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: u16,
    /// Directory holding switchboard-test-apiserver, switchboard-operator and
    /// switchboard-gateway [default: the directory of this executable].
    #[arg(long, value_name = "DIR")]
    pub bin_dir: Option<PathBuf>,
    /// Write the results as JSON to this file.
    #[arg(long, value_name = "PATH")]
    pub json: Option<PathBuf>,
    /// Keep every process's output here, each line prefixed with the bench's clock (ms)
    /// [default: a new directory under the system temporary directory].
    #[arg(long, value_name = "DIR")]
    pub log_dir: Option<PathBuf>,
    /// Namespace the bench creates its objects in.
    #[arg(long, default_value = "propagation-bench")]
    pub namespace: String,
    /// Seconds one change may take to reach every replica before the run aborts.
    #[arg(long, default_value_t = 30)]
    pub change_timeout: u64,
    /// Seconds loading the keys may take (writes and every replica serving them).
    #[arg(long, default_value_t = 1200)]
    pub load_timeout: u64,
    /// The operator counts as idle once its counters and CPU time stood still this long (ms).
    #[arg(long, default_value_t = 300)]
    pub quiet_ms: u64,
    /// Seconds the operator may stay busy before a change before the run aborts.
    #[arg(long, default_value_t = 900)]
    pub settle_timeout: u64,
}

impl Args {
    pub fn change_timeout(&self) -> Duration {
        Duration::from_secs(self.change_timeout)
    }

    pub fn load_timeout(&self) -> Duration {
        Duration::from_secs(self.load_timeout)
    }

    pub fn quiet(&self) -> Duration {
        Duration::from_millis(self.quiet_ms)
    }

    pub fn settle_timeout(&self) -> Duration {
        Duration::from_secs(self.settle_timeout)
    }
}
