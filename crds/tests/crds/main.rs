//! The CRDs as an apiserver would see them: generated YAML is fresh, schemas are structural,
//! examples pass schema and CEL, and each invalid fixture is rejected with the expected error.
//! One test binary for all of it, so the suite links once. The validator is
//! `switchboard_test_apiserver::validate`, which the test API server enforces too.

mod accepted;
mod examples;
mod fresh;
mod invalid;
mod structural;
