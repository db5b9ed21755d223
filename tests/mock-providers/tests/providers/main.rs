//! Tests of both mock providers over real TCP: every validation rule (a request the real API
//! rejects is rejected with its status, envelope and message; a valid one is accepted), every
//! model-id behaviour, and the stream event sequences event by event.
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers outside #[test] fns: a failed unwrap is a failed test"
)]

mod anthropic;
mod client;
mod gemini;
mod oauth;
