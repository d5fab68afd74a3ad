//! apply's secure vault step for deployment.toml products (3.2, 4.0-4.4, 4.5+): `[secrets]`
//! sealed with the set's primary key (a home value that still decrypts to the set's password is
//! kept, so a second apply changes nothing), `secret-conf.properties` installed from the set, and
//! the start-up password file where the topology asks for it (docs/secure-vault.md).

use std::path::Path;

use super::{read, FileChange, Planned, Side};
use crate::config::apim26::{ApplyError, FileAction};
use crate::config::deployment_toml::secrets::{seal_merged, secret_conf_path, SecretOutcome};
use crate::input::Limit;
use crate::set::OpenedSet;
use crate::vault::startup::PasswordFile;

/// `secret-conf.properties` in the home.
pub(super) const SECRET_CONF: &str = "repository/conf/security/secret-conf.properties";

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
    let inventory = set.dir.join(crate::output::layout::INVENTORY);
    let Some(key) =
        crate::vault::key::for_set_node(set, node).map_err(|source| ApplyError::VaultKey {
            path: inventory.clone(),
            source,
        })?
    else {
        return Ok(None);
    };
    let patch_path = set.dir.join(crate::output::layout::deployment_toml(node));
    let (text, outcomes) =
        seal_merged(merged, patch, current, &key).map_err(|source| ApplyError::Seal {
            path: patch_path.clone(),
            source,
        })?;
    let mut notes = Vec::new();
    let mut sealed = Vec::new();
    for (alias, outcome) in outcomes {
        match outcome {
            SecretOutcome::Replaced => notes.push(format!(
                "[secrets] {alias}: the home's ciphertext did not decrypt to the set's password with the set's primary key (re-keyed primary, changed password, or a vault made under another key): re-encrypted; the old file is in the backup"
            )),
            SecretOutcome::EncryptedForeign => notes.push(format!(
                "[secrets] {alias}: not a password of the set, in plain text or under the other padding: encrypted with the primary key as ciphertool.sh -Dconfigure would (its value is unchanged; `verify` reports it if it is a WSO2 default)"
            )),
            SecretOutcome::UndecryptableForeign => notes.push(format!(
                "[secrets] {alias}: not a password of the set, and the set's primary key cannot decrypt it: the server will resolve it to the alias name. Re-encrypt it (put \"[value]\" and run apply again)"
            )),
            SecretOutcome::Kept | SecretOutcome::Written => {}
        }
        sealed.push(format!("secrets.{alias}"));
    }
    let mut files = Vec::new();
    let conf_from = set.dir.join(secret_conf_path(node));
    let conf = read(&conf_from, Side::Set)?;
    files.extend(install_if_changed(
        home,
        SECRET_CONF,
        conf,
        FileAction::Install,
    ));
    if let Some(which) = PasswordFile::parse(&set.view.secure_vault.password_file) {
        let password = set
            .password(crate::password::PasswordRole::Primary)
            .ok_or_else(|| ApplyError::NoPassword {
                path: inventory.clone(),
                role: "primary".into(),
            })?;
        let bytes = which
            .contents(password.expose())
            .ok_or_else(|| ApplyError::PasswordLineBreak {
                path: inventory.clone(),
            })?
            .as_bytes()
            .to_vec();
        let rel = which.file_name(false);
        files.extend(install_if_changed(home, rel, bytes, FileAction::Install));
        notes.push(format!(
            "{rel}: the primary keystore password for the secure vault at start-up ({})",
            match which {
                PasswordFile::Tmp =>
                    "the server deletes it after reading it; apply writes it again",
                PasswordFile::Persist =>
                    "kept across restarts: it is the key to the vault, keep it 0600",
            }
        ));
    }
    Ok(Some(VaultStep {
        text,
        sealed,
        notes,
        files,
    }))
}

fn install_if_changed(
    home: &Path,
    rel: &str,
    bytes: Vec<u8>,
    action: FileAction,
) -> Option<Planned> {
    let now = crate::input::read(home.join(rel), Limit::Config).ok();
    (now.as_deref() != Some(&bytes[..])).then(|| Planned {
        rel: rel.to_string(),
        bytes,
        change: FileChange {
            file: rel.to_string(),
            action,
            changes: Vec::new(),
        },
    })
}
