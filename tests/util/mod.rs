//! Shared helpers for the integration tests; include with `mod util;`.
pub mod cli;
pub mod java;
