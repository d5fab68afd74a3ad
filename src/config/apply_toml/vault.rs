//! apply's secure vault step for deployment.toml products (3.2, 4.0-4.4, 4.5+): `[secrets]`
//! sealed with the set's primary key (a home value that still decrypts to the set's password is
//! kept, so a second apply changes nothing), `secret-conf.properties` installed from the set, and
//! the start-up password file where the topology asks for it (docs/secure-vault.md).

use std::path::Path;

use super::{read, FileChange, Planned, Side};
use crate::config::apim26::{
    startup_password_file, vault_key, ApplyError, FileAction, SECRET_CONF,
};
use crate::config::deployment_toml::secrets::{seal_merged, secret_conf_path, SecretOutcome};
use crate::input::Limit;
use crate::set::OpenedSet;
use crate::vault::startup::PasswordFile;

/// What the vault step decided.
pub(super) struct VaultStep {
    /// deployment.toml with `[secrets]` sealed.
    pub text: String,
    /// Aliases the step sealed (apply no longer reports them as "kept").
    pub sealed: Vec<String>,
    pub notes: Vec<String>,
    pub files: Vec<Planned>,
}

/// Seals `merged`'s `[secrets]`; `None` when the set's vault is off.
pub(super) fn seal(
    set: &OpenedSet,
    node: &str,
    home: &Path,
    merged: &str,
    patch: &str,
    current: &str,
) -> Result<Option<VaultStep>, ApplyError> {
    let Some(key) = vault_key(set, node)? else {
        return Ok(None);
    };
    let patch_path = set.dir.join(crate::output::layout::deployment_toml(node));
    let (text, outcomes) =
        seal_merged(merged, patch, current, &key).map_err(|source| ApplyError::Seal {
            path: patch_path.clone(),
            source,
        })?;
    let mut notes: Vec<String> = outcomes
        .iter()
        .filter_map(|(alias, outcome)| outcome_note(alias, outcome))
        .collect();
    let sealed = outcomes
        .iter()
        .map(|(alias, _)| format!("secrets.{alias}"))
        .collect();
    let conf = read(&set.dir.join(secret_conf_path(node)), Side::Set)?;
    let mut files: Vec<Planned> = install_if_changed(home, SECRET_CONF, conf)
        .into_iter()
        .collect();
    if let Some((file, note)) = startup_file(set, home)? {
        files.extend(file);
        notes.push(note);
    }
    Ok(Some(VaultStep {
        text,
        sealed,
        notes,
        files,
    }))
}

/// What apply tells about a `[secrets]` value it did not simply write or keep.
fn outcome_note(alias: &str, outcome: &SecretOutcome) -> Option<String> {
    match outcome {
        SecretOutcome::Replaced => Some(format!(
            "[secrets] {alias}: the home's ciphertext did not decrypt to the set's password with the set's primary key (re-keyed primary, changed password, or a vault made under another key): re-encrypted; the old file is in the backup"
        )),
        SecretOutcome::EncryptedForeign => Some(format!(
            "[secrets] {alias}: not a password of the set, in plain text or under the other padding: encrypted with the primary key as ciphertool.sh -Dconfigure would (its value is unchanged; `verify` reports it if it is a WSO2 default)"
        )),
        SecretOutcome::UndecryptableForeign => Some(format!(
            "[secrets] {alias}: not a password of the set, and the set's primary key cannot decrypt it: the server will resolve it to the alias name. Re-encrypt it (put \"[value]\" and run apply again)"
        )),
        SecretOutcome::Kept | SecretOutcome::Written => None,
    }
}

/// The start-up password file the topology asks for (`None` when none), planned only when it
/// differs from the home's, with the note that says what it is.
fn startup_file(
    set: &OpenedSet,
    home: &Path,
) -> Result<Option<(Option<Planned>, String)>, ApplyError> {
    let Some((which, bytes)) = startup_password_file(set)? else {
        return Ok(None);
    };
    let rel = which.file_name(false);
    let note = format!(
        "{rel}: the primary keystore password for the secure vault at start-up ({})",
        match which {
            PasswordFile::Tmp => "the server deletes it after reading it; apply writes it again",
            PasswordFile::Persist =>
                "kept across restarts: it is the key to the vault, keep it 0600",
        }
    );
    Ok(Some((install_if_changed(home, rel, bytes), note)))
}

/// `bytes` to install at `rel`, unless the home holds them already.
fn install_if_changed(home: &Path, rel: &str, bytes: Vec<u8>) -> Option<Planned> {
    let now = crate::input::read(home.join(rel), Limit::Config).ok();
    (now.as_deref() != Some(&bytes[..])).then(|| Planned {
        rel: rel.to_string(),
        bytes,
        change: FileChange {
            file: rel.to_string(),
            action: FileAction::Install,
            changes: Vec::new(),
        },
    })
}
