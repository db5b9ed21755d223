//! `switchboard-loadgen`: a small HTTP/1.1 load generator with correct percentiles.
//!
//! Two modes:
//! - closed loop (`--concurrency N`): N workers, one keep-alive connection each, back to back;
//! - fixed rate (`--rate R`): request `i` is due at `t0 + i/R`; its latency is measured from that
//!   intended time, which corrects coordinated omission (see [`schedule`]).
//!
//! The binary is a thin wrapper around [`args::parse_args`], [`run::run`] and [`report`].

pub mod args;
pub mod report;
pub mod resp;
pub mod run;
pub mod schedule;

/// Error type used throughout the crate.
pub type Error = Box<dyn std::error::Error + Send + Sync>;
