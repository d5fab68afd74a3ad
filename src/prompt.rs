//! Keystore passwords for `inspect`, `check-host` and `apply`: from an environment variable
//! named on the command line, from a file, or typed at a terminal prompt. Never from the command
//! line itself; the errors name the variable or the file, never the value.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use crate::input::{self, Limit};
use crate::password::Password;

/// Where a keystore password comes from: `--password-env VAR`, `--password-file FILE`, or
/// (with neither) a prompt when stdin is a terminal.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PasswordInput {
    /// The variable holding the password.
    pub env: Option<String>,
    /// The file holding the password (one trailing newline stripped).
    pub file: Option<PathBuf>,
}

/// Why the password could not be had. Never holds the password.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PasswordInputError {
    /// The variable is unset (or not Unicode).
    #[error("{flag}: the variable {variable} is not set")]
    Unset {
        /// The option that named it (`--password-env`).
        flag: &'static str,
        /// The variable's name.
        variable: String,
    },
    /// The file cannot be read.
    #[error("{}: cannot read the password file", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The terminal prompt failed.
    #[error("cannot read the password")]
    Prompt(#[source] std::io::Error),
}

impl PasswordInputError {
    /// What the user can do about it.
    pub fn hint(&self) -> Option<String> {
        match self {
            PasswordInputError::Unset { variable, .. } => Some(format!("export {variable} first")),
            _ => None,
        }
    }
}

/// The value of the environment variable `variable`, which the option `flag` named.
pub(crate) fn from_env(flag: &'static str, variable: &str) -> Result<Password, PasswordInputError> {
    std::env::var(variable)
        .map(Password::new)
        .map_err(|_| PasswordInputError::Unset {
            flag,
            variable: variable.to_string(),
        })
}

/// The whole content of `path`, one trailing newline (`\n` or `\r\n`) stripped.
pub(crate) fn from_file(path: &Path) -> Result<Password, PasswordInputError> {
    let mut text = input::read_to_string(path, Limit::Password).map_err(|source| {
        PasswordInputError::File {
            path: path.to_path_buf(),
            source,
        }
    })?;
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    Ok(Password::new(text))
}

impl PasswordInput {
    /// The password: from the variable, else the file, else a prompt on the terminal
    /// (`Keystore password: `, no echo); `None` when none is given and stdin is no terminal.
    pub fn read(&self) -> Result<Option<Password>, PasswordInputError> {
        if let Some(var) = &self.env {
            return from_env("--password-env", var).map(Some);
        }
        if let Some(path) = &self.file {
            return from_file(path).map(Some);
        }
        if std::io::stdin().is_terminal() {
            let value = rpassword::prompt_password("Keystore password: ")
                .map_err(PasswordInputError::Prompt)?;
            return Ok(Some(Password::new(value)));
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_file_loses_one_trailing_newline_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        for (content, want) in [
            ("pw\n", "pw"),
            ("pw\r\n", "pw"),
            ("pw\n\n", "pw\n"),
            ("pw", "pw"),
        ] {
            let path = dir.path().join("pw.txt");
            std::fs::write(&path, content).expect("write");
            assert_eq!(
                from_file(&path).expect("reads").expose(),
                want,
                "{content:?}"
            );
        }
    }

    #[test]
    fn errors_name_the_variable_or_file_never_the_value() {
        let e = from_env("--password-env", "APIM_PKI_TEST_SURELY_UNSET_VARIABLE").unwrap_err();
        assert_eq!(
            e.to_string(),
            "--password-env: the variable APIM_PKI_TEST_SURELY_UNSET_VARIABLE is not set"
        );
        assert_eq!(
            e.hint().as_deref(),
            Some("export APIM_PKI_TEST_SURELY_UNSET_VARIABLE first")
        );
        let e = from_file(Path::new("/nonexistent/pw.txt")).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("/nonexistent/pw.txt: cannot read"),
            "{e}"
        );
    }
}
