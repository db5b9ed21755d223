//! Switchboard's operator.
//!
//! The pure compile (`compile`): the four custom resources and the Secrets they reference in, one
//! config snapshot (the contract in `switchboard-config`) and every object's status out, with no
//! cluster involved. Around it: the controller that gathers those inputs from the API server
//! (`controller`), the snapshot stream to the gateway fleet (`publish`), status writes
//! (`status_writer`), VirtualKeys' spend read from Redis (`spend`), leader election (`elect`, `lease`) and `/metrics` (see `operator/README.md`).

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
pub mod spend;
pub mod status_writer;

pub use compile::{Compiled, Draft, KeySecretToGenerate, ObjectStatus, compile, compile_snapshot};
pub use inputs::Inputs;
