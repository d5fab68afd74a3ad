//! apim-pki: certificates, keystores and configuration for distributed WSO2 API Manager.
//!
//! The `apim-pki` command line is a thin layer over this library: everything it does, the
//! library does too. The command reference and the topology format are in the project's
//! `docs/` directory (`docs/commands.md`, `docs/topology.md`).
//!
//! # Data flow
//!
//! The data flows one way: [`topology`] parses and validates the topology file, [`resolve`]
//! says what every certificate and node setting must be, [`reconcile`] decides per artifact
//! (create, keep, renew, reissue, update, needs-rotate, remove) using [`pki`] for keys and
//! certificates and [`keystore`] to encode them for Java, and [`output`] writes the set
//! atomically. [`verify`] reads a set back with its own checks (through [`set`]); [`config`]
//! ties it into each node's configuration; [`corporate`] handles a CA that signs elsewhere.
//!
//! # Plan, generate and verify a set
//!
//! ```
//! use apim_pki::reconcile::{self, ActionKind, Mode};
//! use apim_pki::topology::Topology;
//! use apim_pki::verify::offline::{verify_set, OpenedSet, Options};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // One node per required API-M 2.6 profile; ECDSA keys keep the example fast.
//! let text = r#"
//!     name = "acme-dev"
//!     product = "apim-2.6"
//!     [pki]
//!     key = "ecdsa-p256"
//!     [[node]]
//!     name = "km"
//!     profile = "key-manager"
//!     host = "km.dev.acme.internal"
//!     [[node]]
//!     name = "publisher"
//!     profile = "publisher"
//!     host = "publisher.dev.acme.internal"
//!     [[node]]
//!     name = "store"
//!     profile = "store"
//!     host = "store.dev.acme.internal"
//!     [[node]]
//!     name = "tm"
//!     profile = "traffic-manager"
//!     host = "tm.dev.acme.internal"
//!     [[node]]
//!     name = "gw"
//!     profile = "gateway-worker"
//!     host = "gw.dev.acme.internal"
//! "#;
//! // The path names the file in error messages and anchors relative [pki.ca] paths.
//! let topology = Topology::parse(text, std::path::Path::new("topology.toml"))?;
//!
//! let tmp = tempfile::tempdir()?;
//! let dir = tmp.path().join("pki");
//!
//! // Plan: every artifact would be created; nothing is written.
//! let plan = reconcile::reconcile(&topology, &dir, Mode::Plan)?;
//! assert!(plan.actions.iter().all(|a| a.action == ActionKind::Create));
//! assert!(!dir.exists());
//!
//! // Generate: passwords are generated into secrets.toml (no [passwords] table).
//! let made = reconcile::reconcile(&topology, &dir, Mode::Generate)?;
//! assert!(dir.join("nodes/gw/repository/resources/security/gw-tls.jks").exists());
//! assert_eq!(made.generated_passwords, ["primary", "tls", "truststore"]);
//!
//! // A second run keeps everything.
//! let again = reconcile::reconcile(&topology, &dir, Mode::Generate)?;
//! assert!(again.actions.iter().all(|a| a.action == ActionKind::Keep));
//!
//! // Verify: read the set back with independent checks.
//! let set = OpenedSet::open(&dir)?;
//! let report = verify_set(&set, &Options { warn_days: None });
//! assert!(report.ok, "{:?}", report.findings);
//! assert_eq!(report.ca_stage, "stable");
//! # Ok(())
//! # }
//! ```
//!
//! `examples/generate_and_verify.rs` does the same for any topology file:
//! `cargo run --example generate_and_verify -- examples/ha.toml /tmp/pki`.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod commands;
#[allow(missing_docs)] // Items without docs yet; the curated API documents all it exports.
pub mod config;
#[allow(missing_docs)] // Items without docs yet; the curated API documents all it exports.
pub mod corporate;
pub mod error;
#[allow(missing_docs)] // Items without docs yet; the curated API documents all it exports.
pub mod export;
#[doc(hidden)]
pub mod fuzzing;
pub mod init;
pub mod input;
#[allow(missing_docs)] // Items without docs yet; the curated API documents all it exports.
pub mod inspect;
#[allow(missing_docs)] // Items without docs yet; the curated API documents all it exports.
pub mod keystore;
#[allow(missing_docs)] // Items without docs yet; the curated API documents all it exports.
pub mod lb;
#[allow(missing_docs)] // Items without docs yet; the curated API documents all it exports.
pub mod output;
#[allow(missing_docs)] // Items without docs yet; the curated API documents all it exports.
pub mod password;
#[allow(missing_docs)] // Items without docs yet; the curated API documents all it exports.
pub mod pki;
#[allow(missing_docs)] // Items without docs yet; the curated API documents all it exports.
pub mod plan;
pub mod prompt;
#[allow(missing_docs)] // Items without docs yet; the curated API documents all it exports.
pub mod reconcile;
#[allow(missing_docs)] // Items without docs yet; the curated API documents all it exports.
pub mod resolve;
#[allow(missing_docs)] // Items without docs yet; the curated API documents all it exports.
pub mod set;
#[allow(missing_docs)] // Items without docs yet; the curated API documents all it exports.
pub mod topology;
#[allow(missing_docs)] // Items without docs yet; the curated API documents all it exports.
pub mod vault;
#[allow(missing_docs)] // Items without docs yet; the curated API documents all it exports.
pub mod verify;
