//! Shared helpers for the integration tests; include with `mod util;`.
pub mod java;
