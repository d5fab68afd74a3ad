//! Why reconcile stops, and the helpers that build its errors.

use std::path::PathBuf;

use crate::output::fsio::{FsError, LockError};
use crate::output::inventory::PasswordSource;
use crate::password::PasswordProblem;
use crate::pki::PkiError;

use super::model::Resolved;

/// The message of a keystore that does not open with its password; [`name_password_source`]
/// names the password and where it comes from.
pub(super) const WRONG_PASSWORD: &str =
    "the keystore does not open with its password (from secrets.toml or the environment variable in [passwords])";

/// Why reconcile stopped. Each message names the file or variable and what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GenerateError {
    /// A file could not be written.
    #[error(transparent)]
    Fs(#[from] FsError),
    /// DIR is locked by another command, or was made by one meanwhile.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// A file of the set (or one the topology names) that cannot be used.
    #[error("{}: {message}", path.display())]
    Input {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
        /// What to do.
        hint: Option<String>,
    },
    /// A password variable the inventory names is unset.
    #[error("the {role} password variable {variable} is not set, but inventory.json records that the {role} password comes from it")]
    PasswordUnset {
        /// The role.
        role: String,
        /// The variable.
        variable: String,
    },
    /// A password Java or Carbon cannot use.
    #[error("the {role} password from {source_name} cannot be used: {problem}")]
    PasswordRefused {
        /// The role.
        role: String,
        /// Where it came from.
        source_name: String,
        /// What is wrong with it (never the value).
        problem: PasswordProblem,
    },
    /// An artifact only `rotate` can bring in line.
    #[error("{path}: {reason}")]
    NeedsRotate {
        /// The artifact, relative to DIR.
        path: String,
        /// What changed.
        reason: String,
    },
    /// Key or certificate work failed.
    #[error("{0}")]
    Pki(#[from] PkiError),
    /// A refused operation (a rollover stage out of order, an unknown node).
    #[error("{message}")]
    Refused {
        /// What is refused.
        message: String,
        /// What to do.
        hint: String,
    },
    /// A bug in apim-pki (exit 70).
    #[error("{0}")]
    Bug(#[from] crate::error::Bug),
}

impl GenerateError {
    /// What the user can do about it, when there is something to say.
    pub fn hint(&self) -> Option<String> {
        match self {
            GenerateError::Input { hint, .. } => hint.clone(),
            GenerateError::PasswordUnset { variable, .. } => Some(format!(
                "export {variable} with the password the keystores were made with"
            )),
            GenerateError::PasswordRefused { .. } => Some(
                "choose another password: at least 6 printable ASCII characters, without `${`"
                    .into(),
            ),
            GenerateError::NeedsRotate { .. } => Some(
                "run `apim-pki rotate` to replace keys on purpose; generate never replaces a key"
                    .into(),
            ),
            GenerateError::Lock(LockError::Busy { .. }) => {
                Some("wait for the other command to finish, then run this one again".into())
            }
            GenerateError::Lock(LockError::Raced { .. }) => Some(
                "run the command again: it will take the directory as the other command left it"
                    .into(),
            ),
            GenerateError::Refused { hint, .. } => Some(hint.clone()),
            GenerateError::Pki(crate::pki::PkiError::Engine(e)) => Some(e.hint()),
            _ => None,
        }
    }
}

pub(super) fn input(
    path: impl Into<PathBuf>,
    message: impl Into<String>,
    hint: Option<&str>,
) -> GenerateError {
    GenerateError::Input {
        path: path.into(),
        message: message.into(),
        hint: hint.map(str::to_string),
    }
}

/// Names the password (its role and its variable or secrets.toml) in a "does not open with
/// its password" error, and says what to do about it.
pub(super) fn name_password_source(e: GenerateError, role: &str, r: &Resolved) -> GenerateError {
    match e {
        GenerateError::Input { path, message, .. } if message == WRONG_PASSWORD => {
            let hint = match &r.source {
                PasswordSource::Env { variable } => format!(
                    "set {variable} to the {role} password the set was made with, or restore the keystore from a backup"
                ),
                PasswordSource::SecretsFile => format!(
                    "secrets.toml holds another {role} password than this keystore's: restore the keystore or secrets.toml from a backup"
                ),
            };
            GenerateError::Input {
                path,
                message: format!(
                    "the keystore does not open with the {role} password from {}",
                    r.source
                ),
                hint: Some(hint),
            }
        }
        e => e,
    }
}

pub(super) fn refused(message: &str, hint: &str) -> GenerateError {
    GenerateError::Refused {
        message: message.into(),
        hint: hint.into(),
    }
}
