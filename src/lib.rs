//! apim-pki: certificates, keystores and configuration for distributed WSO2 API Manager.
//!
//! The data flows one way: [`topology`] parses and validates the topology file, [`plan`]
//! resolves what every node needs, [`pki`] makes keys and certificates, [`keystore`] encodes
//! them for Java, [`output`] writes the set atomically, and [`verify`] reads it back with its
//! own checks.

pub mod config;
pub mod corporate;
pub mod init;
pub mod inspect;
pub mod keystore;
pub mod output;
pub mod password;
pub mod pki;
pub mod reconcile;
pub mod resolve;
pub mod set;
pub mod topology;
pub mod verify;
