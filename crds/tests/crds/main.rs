//! The CRDs as an apiserver would see them: generated YAML is fresh, schemas are structural,
//! examples pass schema and CEL, and each invalid fixture is rejected with the expected error.
//! One test binary for all of it, so the suite links once.

mod apiserver;
mod examples;
mod fresh;
mod invalid;
mod structural;
