//! apim-pki: certificates, keystores and configuration for distributed WSO2 API Manager.
//!
//! The data flows one way: [`topology`] parses and validates the topology file, [`resolve`]
//! says what every certificate and node setting must be, [`reconcile`] decides per artifact
//! (create, keep, renew, reissue, update) using [`pki`] for keys and certificates and
//! [`keystore`] to encode them for Java, and [`output`] writes the set atomically. [`verify`]
//! reads a set back with its own checks (through [`set`]); [`config`] ties it into each node's
//! configuration; [`corporate`] handles a CA that signs elsewhere.

pub mod config;
pub mod corporate;
#[doc(hidden)]
pub mod fuzzing;
pub mod init;
pub mod input;
pub mod inspect;
pub mod keystore;
pub mod lb;
pub mod output;
pub mod password;
pub mod pki;
pub mod reconcile;
pub mod resolve;
pub mod set;
pub mod topology;
pub mod vault;
pub mod verify;
