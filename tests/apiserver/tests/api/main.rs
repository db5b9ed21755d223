//! The test API server driven by the clients that will use it: kube's own client and runtime
//! (what the operator is built on) and, in `kubectl.rs`, the real kubectl binary. One test
//! binary for all of it, so kube links once.

mod common;
mod crds;
mod crud;
mod kubectl;
mod lease;
mod lifecycle;
mod status;
mod validation;
mod watch;
