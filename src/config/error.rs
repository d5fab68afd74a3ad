//! Why `apply` stopped before writing anything: one variant per failure, each naming the file
//! (in the set or in the API-M home), the key or the node, with the hint users act on. Never
//! carries a password.

use std::path::PathBuf;

use crate::error::{Bug, FileError, FileProblem};
use crate::keystore::KeystoreError;
use crate::output::fsio::{FsError, LockError};
use crate::plan::node_toml::NodeTomlError;
use crate::set::SetError;
use crate::vault::key::VaultKeyError;
use crate::vault::VaultError;

use super::jsonedit::JsonEditError;
use super::tomledit::MergeError;
use super::xmledit::EditError;

/// Why apply stopped before writing anything (exit 2; 70 for a [`Bug`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApplyError {
    /// The set does not open.
    #[error(transparent)]
    Set(#[from] SetError),
    /// A file of the API-M home that cannot be used as it is.
    #[error("{source}")]
    Home {
        /// The file and what is wrong with it.
        #[source]
        source: FileError,
        /// The product line the home must be (`2.6`, `3.2`, `4.x`, `4.5`).
        product: &'static str,
    },
    /// A file of the set that cannot be used as it is.
    #[error(transparent)]
    SetFile(FileError),
    /// A setting in the node's node.toml that is not what apply reads.
    #[error("{}: setting `{key}` is not {expected}", path.display())]
    BadSetting {
        /// DIR/nodes/NODE/node.toml.
        path: PathBuf,
        /// The setting.
        key: String,
        /// What it must be.
        expected: &'static str,
    },
    /// The set records no password for a role.
    #[error("{}: no {role} password recorded", path.display())]
    NoPassword {
        /// DIR/inventory.json.
        path: PathBuf,
        /// The role.
        role: String,
    },
    /// A keystore of the set that does not open with the password apply would write.
    #[error("{}: {} the {role} password from {source_name}, which apply would write into the node's files: the node could not start", path.display(), if *key_only { "its key entry does not open with" } else { "does not open with" })]
    SetPassword {
        /// The keystore in the set.
        path: PathBuf,
        /// The role.
        role: String,
        /// Where the password comes from (a variable's name or secrets.toml).
        source_name: String,
        /// True when the store opens but its key entry does not.
        key_only: bool,
    },
    /// A keystore of the set that does not open for another reason.
    #[error("{}: {source}", path.display())]
    SetKeystore {
        /// The keystore in the set.
        path: PathBuf,
        /// Why (quoted).
        source: KeystoreError,
    },
    /// The set has no such node.
    #[error("{}: the set has no node `{node}`", path.display())]
    UnknownNode {
        /// DIR/inventory.json.
        path: PathBuf,
        /// The name given.
        node: String,
        /// The set's nodes.
        known: Vec<String>,
    },
    /// A set for another product than this apply edits.
    #[error("{}: apply edits API-M 2.6's XML files; this set is for {product}", path.display())]
    NotApim26 {
        /// DIR/inventory.json.
        path: PathBuf,
        /// The set's product.
        product: String,
        /// The node's folder in the set, to copy instead.
        repository: PathBuf,
    },
    /// A node whose profile the product does not have.
    #[error("{}: node `{node}` has profile `{profile}`, unknown for {product}", path.display())]
    UnknownProfile {
        /// DIR/inventory.json.
        path: PathBuf,
        /// The node.
        node: String,
        /// Its profile.
        profile: String,
        /// The product.
        product: &'static str,
    },
    /// An element apply edits is not where WSO2 ships it.
    #[error("{file}: {source}")]
    Element {
        /// The file, relative to the home.
        file: String,
        /// What is wrong (quoted).
        source: EditError,
    },
    /// A site.json without the object apply edits.
    #[error("{}: {source}", path.display())]
    Json {
        /// The site.json.
        path: PathBuf,
        /// What is missing (quoted).
        source: JsonEditError,
    },
    /// carbon.xml keeps the node's current truststore password in secure vault.
    #[error("{}: the truststore password is kept in secure vault", path.display())]
    VaultedTruststorePassword {
        /// The home's carbon.xml.
        path: PathBuf,
    },
    /// The node's current truststore does not open with the password it is configured with.
    #[error("{}: does not open with the password in {configured_in}", path.display())]
    ExistingTruststorePassword {
        /// The node's truststore.
        path: PathBuf,
        /// `carbon.xml's TrustStore/Password` or `deployment.toml`.
        configured_in: &'static str,
    },
    /// The node's current truststore does not open.
    #[error("{}: cannot open with the password {configured_in} gives: {source}", path.display())]
    ExistingTruststore {
        /// The node's truststore.
        path: PathBuf,
        /// Where its password comes from.
        configured_in: &'static str,
        /// Why (quoted).
        source: KeystoreError,
    },
    /// deployment.toml cannot take the set's tables.
    #[error("{}: {source}", path.display())]
    Merge {
        /// The base deployment.toml.
        path: PathBuf,
        /// Why (quoted).
        source: MergeError,
    },
    /// A file secure vault edits that cannot be edited (a cipher-text.properties that does
    /// not parse, an XML file whose password fields cannot be secured).
    #[error("{}: {source}", path.display())]
    VaultFile {
        /// The file.
        path: PathBuf,
        /// What is wrong (quoted).
        source: VaultError,
    },
    /// A password cannot be sealed with the set's vault key.
    #[error("{}: secure vault: {source}", path.display())]
    Seal {
        /// The file the ciphertext goes to.
        path: PathBuf,
        /// Why (quoted).
        source: VaultError,
    },
    /// The node's vault key cannot be had.
    #[error("{}: secure vault: {source}", path.display())]
    VaultKey {
        /// DIR/inventory.json.
        path: PathBuf,
        /// Why (quoted).
        source: VaultKeyError,
    },
    /// The primary password has a line break: the start-up password file cannot hold it.
    #[error("{}: the primary password has a line break: WSO2 reads only the first line of the password file", path.display())]
    PasswordLineBreak {
        /// DIR/inventory.json.
        path: PathBuf,
    },
    /// The node's node.toml cannot be read back.
    #[error(transparent)]
    NodeToml(#[from] NodeTomlError),
    /// A file could not be written.
    #[error(transparent)]
    Fs(#[from] FsError),
    /// The home is locked by another apply.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// A bug in apim-pki.
    #[error("{0}")]
    Bug(#[from] Bug),
}

impl ApplyError {
    /// A file of the API-M home of `product` (`2.6`, ...) with `problem`.
    pub(crate) fn home(
        path: impl Into<PathBuf>,
        problem: FileProblem,
        product: &'static str,
    ) -> ApplyError {
        ApplyError::Home {
            source: FileError::new(path, problem),
            product,
        }
    }

    /// An edit of `file` that cannot be made; an edit that broke the XML is a bug.
    pub(crate) fn element(file: &str, source: EditError) -> ApplyError {
        match source {
            EditError::Internal(e) => Bug::new(format!(
                "editing {file} made text that is not well-formed XML ({e}); nothing written"
            ))
            .into(),
            source => ApplyError::Element {
                file: file.to_string(),
                source,
            },
        }
    }

    /// What the user can do about it.
    pub fn hint(&self) -> Option<String> {
        use ApplyError as E;
        let hint = match self {
            E::Set(e) => return e.hint(),
            E::NodeToml(e) => return Some(e.hint().into()),
            E::Home {
                source:
                    FileError {
                        problem: FileProblem::Missing | FileProblem::Read(_),
                        ..
                    },
                product,
            } => {
                return Some(format!(
                    "--apim-home must be the root of an unpacked API-M {product} (the directory holding bin/ and repository/)"
                ))
            }
            E::SetFile(FileError {
                problem: FileProblem::Missing | FileProblem::Read(_),
                ..
            }) => "run `apim-pki generate` first",
            E::BadSetting { .. } => "run `apim-pki generate` again to write it",
            E::SetPassword { .. } => "set the variable to the password the set was made with (`apim-pki verify DIR` checks the same)",
            E::SetKeystore { .. } => "run `apim-pki verify` on the set",
            E::UnknownNode { known, .. } => return Some(format!("nodes: {}", known.join(", "))),
            E::NotApim26 { repository, .. } => {
                return Some(format!(
                    "copy {} into the product home: it holds deployment.toml and the keystores",
                    repository.display()
                ))
            }
            E::Element { .. } => "apply edits an unpacked API-M 2.6; is --apim-home the product's root, and is the file from 2.6?",
            E::VaultedTruststorePassword { .. } => {
                "pass --existing-truststore-password-env VAR with the current truststore password"
            }
            E::ExistingTruststorePassword { .. } => {
                "pass --existing-truststore-password-env VAR with its current password"
            }
            E::Merge { .. } => "fix the file and run apply again; nothing was written",
            E::VaultFile { .. } => "fix the file; nothing was written",
            E::Seal { .. } => "run `apim-pki generate` again: the node's files do not match the set's primary key",
            E::PasswordLineBreak { .. } => {
                "use password_file = \"none\" and give the password at the prompt"
            }
            E::Lock(LockError::Busy { .. }) => {
                "wait for the other apply to finish, then run this one again"
            }
            _ => return None,
        };
        Some(hint.to_string())
    }
}
