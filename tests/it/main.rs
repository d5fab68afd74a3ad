//! The integration tests: one test binary, one module per topic, one shared helper module
//! ([`util`]: running the built `apim-pki`, the Java interop harness). Run one topic with
//! `cargo test --test it <topic>::`, one test with `cargo test --test it <topic>::<name>`.
//!
//! Tests run as threads of this one process: none may change the process environment or the
//! current directory, and anything they start (JSSE servers, nginx, HAProxy) listens on a port
//! the kernel picked, never on a fixed one.

mod util;

mod apply;
mod apply_real26;
mod apply_toml;
mod apply_toml_edges;
mod cli_help;
mod cli_output;
mod corporate_ca;
mod crash;
mod docs_links;
mod errors;
mod export_kubernetes;
mod fuzz_sample;
mod hostile_input;
mod hostname_jsse;
mod interop;
mod java_harness;
mod jks_interop;
mod jsse_host_texts;
mod lb;
mod live_jsse;
mod openbao;
mod reconcile;
mod rotate;
mod topology_property;
mod vault_java;
mod vault_wiring;
mod verify;
mod verify_live;
