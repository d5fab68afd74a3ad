//! Shared helpers for the integration tests (`tests/it/`): `use crate::util;` from a topic module.
pub mod cli;
pub mod files;
pub mod java;
pub mod openssl;
pub mod set_paths;

/// Fails the test listing every problem a sweep collected (all of them, not the first).
#[track_caller]
pub fn assert_no_problems(label: &str, fails: &[String]) {
    assert!(
        fails.is_empty(),
        "{label}: {} problem(s):\n{}",
        fails.len(),
        fails.join("\n")
    );
}
