//! Wire formats the gateway speaks, kept apart from proxy plumbing.
//!
//! The rule here is "type only what you touch, carry the rest": a request is held as a
//! [`RawObject`] whose values stay unparsed JSON text, the gateway reads the few fields it acts on
//! (`model`, `stream`, `stream_options`) and rewrites only those, so a field OpenAI adds tomorrow
//! passes through untouched. Provider dialects that need full translation get typed modules of
//! their own next to [`openai`].

pub mod anthropic;
pub mod bedrock;
pub mod capability;
pub mod depth;
pub mod eventstream;
pub mod gemini;
pub mod hub;
pub mod openai;
mod raw;
pub mod responses;
pub mod sse;
pub mod stream;
mod turns;
mod usage;

pub use raw::{RawObject, RawObjectError};
pub use usage::Usage;
