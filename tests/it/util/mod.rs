//! Shared helpers for the integration tests (`tests/it/`): `use crate::util;` from a topic module.
pub mod cli;
pub mod files;
pub mod java;
