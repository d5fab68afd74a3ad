//! apim-pki: certificates, keystores and configuration for distributed WSO2 API Manager.
//!
//! The `apim-pki` command line is a thin layer over this library: everything it does, the
//! library does too. The command reference and the topology format are in the project's
//! `docs/` directory (`docs/commands.md`, `docs/topology.md`).
//!
//! # Data flow
//!
//! The data flows one way: the topology module parses and validates the topology file
//! ([`Topology`]), plan says what every certificate and node setting must be, reconcile
//! decides per artifact (create, keep, renew, reissue, update, needs-rotate, remove; see
//! [`reconcile()`]) using pki for keys and certificates and keystore to encode them for Java,
//! and output writes the set atomically. verify reads a set back with its own checks
//! ([`verify_set`] on an [`OpenedSet`]); config ties it into each node's configuration;
//! corporate handles a CA that signs elsewhere. Those modules are private: this page lists
//! what they export. [`commands`] holds each command of the binary as one library call.
//!
//! # Errors
//!
//! Every failure is a typed error naming the file, key or line, with a `hint()` saying what to
//! do; [`commands::Error`] gathers them for the binary. A broken internal invariant is a
//! [`Bug`] (exit code [`EXIT_BUG`], 70), never confused with bad input ([`EXIT_INPUT`], 2).
//! [`commands::Error::render`] prints the cause chain as users see it. A [`TopologyError`]
//! says where (file, line, key) and, as a [`TopologyProblem`], what: a value outside a closed
//! set, a malformed value, a name another entry has, a reserved name, ...
//!
//! # Plan, generate and verify a set
//!
//! ```
//! use apim_pki::{reconcile, verify_set, ActionKind, Mode, OpenedSet, Topology, VerifyOptions};
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
//! let plan = reconcile(&topology, &dir, Mode::Plan)?;
//! assert!(plan.actions.iter().all(|a| a.action == ActionKind::Create));
//! assert!(!dir.exists());
//!
//! // Generate: passwords are generated into secrets.toml (no [passwords] table).
//! let made = reconcile(&topology, &dir, Mode::Generate)?;
//! assert!(dir.join("nodes/gw/repository/resources/security/gw-tls.jks").exists());
//! assert_eq!(made.generated_passwords, ["primary", "tls", "truststore"]);
//!
//! // A second run keeps everything.
//! let again = reconcile(&topology, &dir, Mode::Generate)?;
//! assert!(again.actions.iter().all(|a| a.action == ActionKind::Keep));
//!
//! // Verify: read the set back with independent checks.
//! let set = OpenedSet::open(&dir)?;
//! let report = verify_set(&set, &VerifyOptions { warn_days: None });
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
#![warn(unreachable_pub)]

// Every module is private: the API is what this file re-exports. Two walls are crates of their
// own, kept by the compiler: the keystore codecs (crates/keystore, lib `keystore`) and the
// lossless editors (crates/confedit, lib `confedit`) depend on nothing of apim-pki and know no
// WSO2 rule. The other walls between modules (the data flow above: parsing knows no crypto,
// verify never issues) hold inside the crate by convention and review; outside it, only these
// items exist.
pub mod commands;
mod config;
mod corporate;
mod error;
mod export;
#[doc(hidden)]
pub mod fuzzing;
mod init;
mod input;
mod inspect;
mod lb;
mod output;
mod password;
mod pki;
mod plan;
mod prompt;
mod reconcile;
mod set;
mod topology;
mod vault;
mod verify;
#[cfg(test)]
mod walls;

// The keystore codecs are the keystore crate (crates/keystore), which knows nothing of WSO2; the
// alias keeps the `crate::keystore::...` paths of the modules that use them.
pub(crate) use ::keystore;

// The topology file.
pub use topology::{
    Bounded, EngineKey, Form, KeyType, Product, Profile, ReservedFor, TakenBy, Topology,
    TopologyError, TopologyProblem,
};

// Plan, generate, rotate: bring a set in line with the topology.
pub use plan::{NodePlan, Plan};

/// node.toml, the serialised form of a node's plan: written by generate, read by apply and
/// verify.
pub mod node_toml {
    pub use crate::plan::node_toml::{parse, read, render, NodeTomlError};
    pub use crate::plan::{GroupPeer, NamedTarget, PeerEntry};
}
pub use reconcile::{
    reconcile, rotate, Action, ActionKind, CaStage, CaStep, CertSummary, GenerateError, Mode,
    Outcome, Rotation,
};

// A set read back, and its verification.
pub use set::{OpenedSet, SetError};
pub use verify::findings::{Code, Finding, Report, Severity, Summary};
pub use verify::offline::{live_targets, verify_set, Options as VerifyOptions};
pub use verify::{check_host, CheckHostError, CheckHostReport, HostResult, HostRules};

/// Host-name rules (JSSE's and RFC 6125's) and the table of cases both are tested on.
pub mod hostname {
    pub use crate::verify::hostname::{check, jsse_refusal, CertNames, Host, HostError, Verdict};
    #[doc(hidden)]
    pub use crate::verify::hostname::{Case, CASES};
}

/// Live TLS probes of running endpoints.
pub mod live {
    pub use crate::verify::live::{probe_all, Endpoint, Probe, ProbeError};
}

// Keys, certificates and Java keystores.
pub use keystore::{
    jks, pem, Damage, Entry, Keystore, KeystoreError, KeystoreFormat, StorePassword, StoreType,
    Unrecognised,
};
pub use password::Password;
pub use pki::info::CertParseError;
pub use pki::{self_signed, CertInfo, CertSpec, Key, PkiError, Role, Subject};

// apply, csr / import-signed, export, inspect.
pub use config::ApplyError;
pub use corporate::CorporateError;
pub use export::ExportError;
pub use inspect::{InspectError, Listing};

// What errors share; keystore passwords for the commands that open files.
pub use error::{Bug, FileError, FileProblem, EXIT_BUG, EXIT_INPUT};
pub use prompt::{PasswordInput, PasswordInputError};

/// Lossless editing of XML files: every byte an edit does not touch stays as it was.
pub mod xml {
    pub use crate::config::xmledit::{EditError, Edits, Malformed, PathProblem, XmlDoc, XmlError};
}

/// The private keys WSO2 ships in its products, which no deployment should keep.
pub mod default_keys {
    pub use crate::config::default_keys::{spki_sha256, wso2_default_key, WSO2_DEFAULT_KEYS};
}

/// WSO2 secure vault: passwords encrypted with the primary key for cipher-text.properties
/// (2.6) and deployment.toml's `[secrets]` (3.2, 4.x), as WSO2's cipher tool does.
pub mod secure_vault {
    pub use crate::config::apim26::vault_not_covered;
    pub use crate::vault::{carbon26, cipher_text, key, secret_conf, secrets_toml};
    pub use crate::vault::{decrypt, encrypt, Ciphertext, ConfigForm, Release, Scheme, VaultError};
}

/// The OpenBao / HashiCorp Vault PKI engine as a CA backend.
pub mod engine {
    pub use crate::pki::engine::engine_serial;
}
