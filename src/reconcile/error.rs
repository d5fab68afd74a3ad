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
    #[error(transparent)]
    Fs(#[from] FsError),
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error("{}: {message}", path.display())]
    Input {
        path: PathBuf,
        message: String,
        hint: Option<String>,
    },
    #[error("the {role} password variable {variable} is not set, but inventory.json records that the {role} password comes from it")]
    PasswordUnset { role: String, variable: String },
    #[error("the {role} password from {source_name} cannot be used: {problem}")]
    PasswordRefused {
        role: String,
        source_name: String,
        problem: PasswordProblem,
    },
    #[error("{path}: {reason}")]
    NeedsRotate { path: String, reason: String },
    #[error("{0}")]
    Pki(#[from] PkiError),
    #[error("{message}")]
    Refused { message: String, hint: String },
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
