//! Switchboard's operator.
//!
//! Today: the pure compile (`compile`): the four custom resources and the Secrets they reference
//! in, one config snapshot (the contract in `switchboard-config`) and every object's status out,
//! with no cluster involved. The controller that gathers those inputs from the API server,
//! pushes snapshots to the gateway fleet and writes statuses is the next step (see
//! `operator/README.md`).

pub mod admin;
pub mod compile;
pub mod controller;
pub mod elect;
pub mod generate;
pub mod inputs;
pub mod lease;
pub mod metrics;
pub mod publish;
pub mod run;
pub mod status_writer;

pub use compile::{Compiled, Draft, KeySecretToGenerate, ObjectStatus, compile, compile_snapshot};
pub use inputs::Inputs;
