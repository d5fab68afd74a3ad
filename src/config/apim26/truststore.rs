//! The node's truststore: the set's trusted certificates merged into the one the node already
//! has (public CAs a gateway needs for its backends stay; WSO2's well-known default keys go),
//! opened with the password carbon.xml names.

use std::path::Path;

use super::edit::{read_xml, Planned};
use super::stores::Stores;
use super::{ApplyError, ApplyOptions, FileAction, FileChange, ValueChange};
use crate::error::{Bug, FileError};
use crate::keystore::{Entry, Keystore, KeystoreError, KeystoreFormat};
use crate::output::layout;
use crate::password::Password;
use crate::set::OpenedSet;

use super::files::CARBON;

const PASSWORD: &str = "Server/Security/TrustStore/Password";

/// The truststore the node uses today, as carbon.xml names it.
struct Current {
    /// Relative to the home.
    rel: String,
    bytes: Option<Vec<u8>>,
    /// True when carbon.xml keeps its password in secure vault.
    secured: bool,
    /// carbon.xml's password.
    password: Password,
}

fn current(home: &Path) -> Result<Current, ApplyError> {
    let (doc, _) = read_xml(home, CARBON)?;
    let location = doc
        .texts("Server/Security/TrustStore/Location")
        .into_iter()
        .next();
    let rel = location
        .as_deref()
        .and_then(|l| l.find("repository/").map(|i| l[i..].to_string()))
        .unwrap_or_else(|| format!("{}/client-truststore.jks", layout::SECURITY_DIR));
    let bytes = crate::input::read(home.join(&rel), crate::input::Limit::Keystore).ok();
    Ok(Current {
        rel,
        bytes,
        secured: doc.is_secured(PASSWORD),
        password: Password::new(doc.texts(PASSWORD).into_iter().next().unwrap_or_default()),
    })
}

/// Opens the node's current truststore: with `--existing-truststore-password-env` when given,
/// else with carbon.xml's password (refused when secure vault holds it).
fn open_current(
    home: &Path,
    cur: &Current,
    bytes: &[u8],
    options: &ApplyOptions,
) -> Result<Keystore, ApplyError> {
    let password = match (&options.existing_truststore_password, cur.secured) {
        (Some(p), _) => p.clone(),
        (None, true) => {
            return Err(ApplyError::VaultedTruststorePassword {
                path: home.join(CARBON),
            })
        }
        (None, false) => cur.password.clone(),
    };
    let (existing, _) = Keystore::decode(bytes, &password).map_err(|e| match e {
        KeystoreError::WrongPassword => ApplyError::ExistingTruststorePassword {
            path: home.join(&cur.rel),
            configured_in: "carbon.xml's TrustStore/Password",
        },
        source => ApplyError::ExistingTruststore {
            path: home.join(&cur.rel),
            configured_in: "carbon.xml",
            source,
        },
    })?;
    Ok(existing)
}

/// The trusted entries of `existing` that the set does not manage, and the WSO2 default keys
/// dropped (the backup keeps them).
fn foreign(existing: Keystore, managed: &[&str]) -> (Vec<Entry>, Vec<String>) {
    let (mut kept, mut removed) = (Vec::new(), Vec::new());
    for e in existing.entries {
        if !matches!(e, Entry::Trusted { .. }) || managed.contains(&e.alias()) {
            continue;
        }
        match e
            .cert()
            .and_then(crate::config::default_keys::wso2_default_key)
        {
            Some(key) => removed.push(format!("{} ({key})", e.alias())),
            None => kept.push(e),
        }
    }
    (kept, removed)
}

/// True when `a` and `b` hold the same certificates under the same aliases, in any order (key
/// entries count by their certificate).
pub(crate) fn same_certificates(a: &[Entry], b: &[Entry]) -> bool {
    fn key(k: &[Entry]) -> Vec<(&str, &[u8])> {
        let mut v: Vec<(&str, &[u8])> = k
            .iter()
            .filter_map(|e| e.cert().map(|c| (e.alias(), c)))
            .collect();
        v.sort();
        v
    }
    key(a) == key(b)
}

/// True when `bytes` already hold exactly `merged`'s certificates, with our password and type.
fn unchanged(bytes: &[u8], merged: &Keystore, password: &Password, format: KeystoreFormat) -> bool {
    let Ok((current, _)) = Keystore::decode(bytes, password) else {
        return false;
    };
    same_certificates(&current.entries, &merged.entries)
        && KeystoreFormat::detect(bytes).map(|t| t.java_type()) == Some(format.java_type())
}

/// The node's truststore as the set made it.
fn set_truststore(set: &OpenedSet, node: &str, stores: &Stores) -> Result<Keystore, ApplyError> {
    let trust = &stores.trust;
    let path = set.dir.join(layout::node_security(node, &trust.file));
    let bytes = crate::input::read(&path, crate::input::Limit::Keystore)
        .map_err(|e| ApplyError::SetFile(FileError::read(&path, e)))?;
    let (ours, _) = Keystore::decode(&bytes, &trust.password)
        .map_err(|source| ApplyError::SetKeystore { path, source })?;
    Ok(ours)
}

/// Merges the set's trusted certificates into the node's existing truststore; `None` when
/// nothing changes.
pub(super) fn merge(
    set: &OpenedSet,
    node: &str,
    home: &Path,
    stores: &Stores,
    format: KeystoreFormat,
    options: &ApplyOptions,
) -> Result<Option<Planned>, ApplyError> {
    let trust = &stores.trust;
    let ours = set_truststore(set, node, stores)?;
    let managed: Vec<&str> = ours.entries.iter().map(Entry::alias).collect();

    let cur = current(home)?;
    let target_rel = format!("{}/{}", layout::SECURITY_DIR, trust.file);
    let (mut entries, removed) = match &cur.bytes {
        Some(bytes) => {
            // A vault the set made: its truststore password decrypts with the primary key.
            let vaulted;
            let options = if cur.secured && options.existing_truststore_password.is_none() {
                vaulted = ApplyOptions {
                    existing_truststore_password: super::vault::secured_truststore_password(
                        set, node, home, stores, bytes,
                    ),
                    ..options.clone()
                };
                &vaulted
            } else {
                options
            };
            foreign(open_current(home, &cur, bytes, options)?, &managed)
        }
        None => (Vec::new(), Vec::new()),
    };
    let kept = entries.len();
    entries.extend(ours.entries.iter().cloned());
    let merged = Keystore { entries };
    if let Some(bytes) = cur.bytes.as_deref().filter(|_| cur.rel == target_rel) {
        if unchanged(bytes, &merged, &trust.password, format) {
            return Ok(None);
        }
    }
    let bytes = merged
        .encode(format, &trust.password)
        .map_err(|e| Bug::new(format!("encoding the merged truststore failed: {e}")))?;
    let mut changes = vec![ValueChange {
        what: "entries".into(),
        old: None,
        new: format!(
            "{kept} kept, {} from the set ({})",
            managed.len(),
            managed.join(", ")
        ),
    }];
    if !removed.is_empty() {
        changes.push(ValueChange {
            what: "removed WSO2 default keys".into(),
            old: None,
            new: removed.join(", "),
        });
    }
    Ok(Some(Planned {
        rel: target_rel.clone(),
        bytes,
        secret: true,
        change: FileChange {
            file: target_rel,
            action: FileAction::Merge { from: None },
            changes,
        },
        consumes: None,
    }))
}
