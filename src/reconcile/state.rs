//! What DIR already holds: inventory, secrets, passwords, the CA and existing keys.

use std::path::Path;

use crate::keystore::{pem, Entry, Keystore, KeystoreError, StoreType};
use crate::output::inventory::{ArtifactKind, Inventory, PasswordSource};
use crate::output::layout::{self, LbFile};
use crate::output::secrets::Secrets;
use crate::password::{Password, PasswordProblem};
use crate::pki::{Ca, CertInfo, Key, PkiError};
use crate::resolve;
use crate::topology::{CaSource, Topology};

use super::*;

/// DIR, with the list of files it held when the run started: checking a file that is not
/// there costs no system call (on big sets, metadata calls dominate).
#[derive(Clone, Copy)]
pub(super) struct Dir<'a> {
    pub root: &'a Path,
    files: &'a std::collections::HashSet<String>,
}

impl<'a> Dir<'a> {
    /// Lists every file below `root` (history/ aside), relative, with `/`.
    pub fn index(root: &Path) -> std::collections::HashSet<String> {
        fn walk(root: &Path, dir: &Path, out: &mut std::collections::HashSet<String>) {
            let Ok(entries) = std::fs::read_dir(dir) else {
                return;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                match entry.file_type() {
                    Ok(t) if t.is_dir() && path != root.join(layout::HISTORY) => {
                        walk(root, &path, out)
                    }
                    Ok(t) if t.is_file() => {
                        if let Ok(rel) = path.strip_prefix(root) {
                            out.insert(rel.to_string_lossy().replace('\\', "/"));
                        }
                    }
                    _ => {}
                }
            }
        }
        let mut out = std::collections::HashSet::new();
        walk(root, root, &mut out);
        out
    }

    pub fn new(root: &'a Path, files: &'a std::collections::HashSet<String>) -> Dir<'a> {
        Dir { root, files }
    }

    /// The full path of `rel`.
    pub fn join(&self, rel: impl AsRef<Path>) -> std::path::PathBuf {
        self.root.join(rel)
    }

    /// The bytes of `rel`, when it existed at the start and still reads.
    pub fn read(&self, rel: &str) -> Option<Vec<u8>> {
        if !self.files.contains(rel) {
            return None;
        }
        crate::input::read(self.root.join(rel), crate::input::Limit::Keystore).ok()
    }

    /// Refuses a set holding a file larger than apim-pki reads: [`Dir::read`] would see it as
    /// missing and replace it. One metadata call per file, none of them per key.
    pub fn check_sizes(&self) -> Result<(), GenerateError> {
        let limit = crate::input::Limit::Keystore;
        for rel in self.files {
            let path = self.root.join(rel);
            if std::fs::symlink_metadata(&path).is_ok_and(|m| m.len() > limit.bytes()) {
                let too_large = crate::input::read(&path, limit).err();
                return Err(input(
                    path,
                    format!("cannot read: {}", too_large.map(|e| e.to_string()).unwrap_or_default()),
                    Some("apim-pki never writes a file that large: move it out of the set or restore it from a backup"),
                ));
            }
        }
        Ok(())
    }

    /// True when `rel` existed at the start.
    pub fn has(&self, rel: &str) -> bool {
        self.files.contains(rel)
    }
}

impl From<Dir<'_>> for std::path::PathBuf {
    fn from(dir: Dir<'_>) -> std::path::PathBuf {
        dir.root.to_path_buf()
    }
}

pub(super) fn read_inventory(dir: &Path) -> Result<Option<Inventory>, GenerateError> {
    let path = dir.join(layout::INVENTORY);
    match crate::input::read(&path, crate::input::Limit::SetFile) {
        Ok(bytes) => Inventory::from_json(&bytes).map(Some).map_err(|e| {
            input(
                path,
                format!("inventory.json is corrupt: {e}"),
                Some("restore it from a backup, or generate into a new directory"),
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(input(path, format!("cannot read: {e}"), None)),
    }
}

pub(super) fn read_secrets(dir: &Path) -> Result<Secrets, GenerateError> {
    let path = dir.join(layout::SECRETS);
    match crate::input::read_to_string(&path, crate::input::Limit::SetFile) {
        Ok(text) => Secrets::parse(&text).map_err(|e| {
            input(
                path,
                format!("secrets.toml is corrupt: {e}"),
                Some("restore it from a backup; the keystores cannot be opened without it"),
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Secrets::default()),
        Err(e) => Err(input(path, format!("cannot read: {e}"), None)),
    }
}

pub(super) fn resolve_passwords(
    topology: &Topology,
    old: Option<&Inventory>,
    secrets: &Secrets,
) -> Result<Passwords, GenerateError> {
    let format = topology.keystores.format;
    let vars = &topology.passwords;
    let mut fallbacks = Vec::new();
    let mut one = |role: &str, var: Option<&String>| -> Result<Resolved, GenerateError> {
        let recorded = old.and_then(|o| o.passwords.get(role));
        // Old values, for keystores made before a password source changed.
        match recorded {
            Some(PasswordSource::Env { variable }) => {
                if let Ok(v) = std::env::var(variable) {
                    fallbacks.push(Password::new(v));
                }
            }
            Some(PasswordSource::SecretsFile) => {
                fallbacks.extend(secrets.passwords.get(role).cloned())
            }
            None => {}
        }
        let refused = |source: &PasswordSource, problem| GenerateError::PasswordRefused {
            role: role.into(),
            source_name: source.to_string(),
            problem,
        };
        if let Some(variable) = var {
            match std::env::var(variable) {
                Ok(value) => {
                    let source = PasswordSource::Env {
                        variable: variable.clone(),
                    };
                    let password = Password::new(value);
                    password.check(format).map_err(|p| refused(&source, p))?;
                    return Ok(Resolved {
                        password,
                        source,
                        generated: false,
                    });
                }
                Err(std::env::VarError::NotUnicode(_)) => {
                    return Err(GenerateError::PasswordRefused {
                        role: role.into(),
                        source_name: format!("environment variable {variable}"),
                        problem: PasswordProblem::ControlCharacter,
                    })
                }
                Err(std::env::VarError::NotPresent) => {
                    if matches!(recorded, Some(PasswordSource::Env { variable: v }) if v == variable)
                    {
                        return Err(GenerateError::PasswordUnset {
                            role: role.into(),
                            variable: variable.clone(),
                        });
                    }
                }
            }
        }
        let source = PasswordSource::SecretsFile;
        if let Some(password) = secrets.passwords.get(role) {
            password.check(format).map_err(|p| refused(&source, p))?;
            return Ok(Resolved {
                password: password.clone(),
                source,
                generated: false,
            });
        }
        let password = Password::generate().map_err(|e| {
            input(
                layout::SECRETS,
                format!("the OS random number generator failed: {e}"),
                None,
            )
        })?;
        Ok(Resolved {
            password,
            source,
            generated: true,
        })
    };
    let primary = one("primary", vars.primary.as_ref())?;
    let tls = if resolve::per_node_tls(topology) {
        Some(one("tls", vars.tls.as_ref())?)
    } else {
        None
    };
    let truststore = one("truststore", vars.truststore.as_ref())?;
    Ok(Passwords {
        primary,
        tls,
        truststore,
        fallbacks,
    })
}

/// Paths the old inventory records for `kind` (and `node`).
pub(super) fn old_paths(
    old: Option<&Inventory>,
    kind: ArtifactKind,
    node: Option<&str>,
) -> Vec<String> {
    old.map(|o| {
        o.artifacts
            .iter()
            .filter(|a| a.kind == kind && (node.is_none() || a.node.as_deref() == node))
            .map(|a| a.path.clone())
            .collect()
    })
    .unwrap_or_default()
}

pub(super) fn load_ca(
    topology: &Topology,
    dir: Dir,
    old: Option<&Inventory>,
) -> Result<(Option<Ca>, Option<Item>), GenerateError> {
    let read = |path: &Path, what: &str| {
        crate::input::read(path, crate::input::Limit::Certificate).map_err(|e| input(path, format!("cannot read the {what}: {e}"), Some("check the path in [pki.ca]; relative paths start at the topology file's directory")))
    };
    let spec = resolve::ca_cert(topology, 1);
    let existing_cert = dir.read(layout::CA_CERT);
    match &topology.ca {
        CaSource::Imported => Err(input(
            dir.join(layout::CA_CERT),
            "this set is signed by a corporate CA",
            Some("use `apim-pki import-signed` to change it"),
        )),
        CaSource::External { cert, key } => {
            let cert_pem = read(cert, "CA certificate")?;
            let key_pem = read(key, "CA key")?;
            let ca = Ca::from_pem(&cert_pem, &key_pem, &cert.display().to_string(), &key.display().to_string()).map_err(|e| {
                input(if matches!(e, PkiError::BadKey { .. }) { key } else { cert }, e.to_string(), Some("[pki.ca] needs the CA certificate (PEM, intermediates after it) and its unencrypted key"))
            })?;
            if let Some(existing) = existing_cert
                .as_ref()
                .and_then(|b| pem::certs_from_pem(b).ok())
                .and_then(|c| c.into_iter().next())
            {
                if existing != ca.cert_der() {
                    return Err(GenerateError::NeedsRotate {
                        path: layout::CA_CERT.into(),
                        reason: format!("the set was issued by another CA than {}", cert.display()),
                    });
                }
            }
            Ok((Some(ca), None))
        }
        CaSource::Generated => match (existing_cert, dir.read(layout::CA_KEY)) {
            (Some(cert_pem), Some(key_pem)) => {
                let ca = Ca::from_pem(&cert_pem, &key_pem, layout::CA_CERT, layout::CA_KEY)
                    .map_err(|e| {
                        input(
                            dir.join(layout::CA_CERT),
                            e.to_string(),
                            Some("restore ca/ca.crt and ca/ca.key from a backup"),
                        )
                    })?;
                Ok((Some(ca), None))
            }
            (None, None)
                if old
                    .is_none_or(|o| o.artifacts.iter().all(|a| a.kind != ArtifactKind::CaKey)) =>
            {
                let item = Item {
                    label: "CA".into(),
                    node: None,
                    lb: None,
                    key_type: topology.pki.key,
                    spec,
                    decision: Decision::Create,
                    reason: "new CA".into(),
                    existing: None,
                };
                Ok((None, Some(item)))
            }
            (cert, _) => {
                let missing = if cert.is_none() {
                    layout::CA_CERT
                } else {
                    layout::CA_KEY
                };
                Err(input(dir.join(missing), "the CA is incomplete: this file is missing", Some("restore ca/ca.crt and ca/ca.key from a backup; a new CA needs `apim-pki rotate --ca begin`")))
            }
        },
    }
}

/// The message of a keystore that does not open with its password; the caller names the
/// password and where it comes from (`name_password_source` in reconcile).
pub(super) const WRONG_PASSWORD: &str =
    "the keystore does not open with its password (from secrets.toml or the environment variable in [passwords])";

/// Opens the first of `paths` that exists and returns its private-key entry. A file that does
/// not open and that inventory.json does not record (left by an interrupted first run) is
/// pushed to `strays` and skipped instead of stopping the run.
#[allow(clippy::too_many_arguments)]
pub(super) fn find_key_entry(
    dir: Dir,
    paths: &[String],
    alias: &str,
    want: StoreType,
    password: &Password,
    fallbacks: &[Password],
    old: Option<&Inventory>,
    strays: &std::sync::Mutex<Vec<String>>,
) -> Result<Option<Existing>, GenerateError> {
    for rel in paths {
        let path = dir.join(rel);
        let Some(bytes) = dir.read(rel) else {
            continue;
        };
        let mut opened = None;
        let mut last_err = None;
        for (i, candidate) in std::iter::once(password).chain(fallbacks).enumerate() {
            match Keystore::decode(&bytes, candidate) {
                Ok(ok) => {
                    opened = Some((ok, i == 0));
                    break;
                }
                Err(e) => last_err = Some(e),
            }
        }
        let recorded = old.is_some_and(|o| o.artifact(rel).is_some());
        let ((store, store_type), current_password) = match (opened, last_err) {
            (Some(o), _) => o,
            (None, _) if !recorded => {
                if let Ok(mut s) = strays.lock() {
                    s.push(rel.clone());
                }
                continue;
            }
            (None, Some(KeystoreError::WrongPassword)) => {
                return Err(input(path, WRONG_PASSWORD, Some("set the variable to the password the set was made with")))
            }
            (None, e) => {
                return Err(input(path, format!("cannot open the keystore: {}", e.map(|e| e.to_string()).unwrap_or_default()), Some("restore the file from a backup, or run `apim-pki rotate` for this node to replace its key")))
            }
        };
        let entry = store.key_entries().next().cloned();
        let Some(Entry::PrivateKey {
            alias: found_alias,
            pkcs8,
            chain,
        }) = entry
        else {
            return Err(input(
                path,
                "the keystore holds no private key entry",
                Some("restore the file from a backup, or run `apim-pki rotate` for this node"),
            ));
        };
        let key = Key::from_pkcs8_der(&pkcs8, rel)?;
        // A PKCS#12 file without MAC or with a clear key is re-encoded (same key), never kept.
        let reusable = (current_password
            && store_type == want
            && found_alias == alias
            && store.entries.len() == 1
            && crate::keystore::protection::pkcs12_weaknesses(&bytes).is_empty())
        .then_some(bytes);
        return Ok(Some(existing_from(
            key,
            chain,
            rel.clone(),
            reusable,
            &path,
        )?));
    }
    Ok(None)
}

pub(super) fn existing_from(
    key: Key,
    chain: Vec<Vec<u8>>,
    path: String,
    reusable: Option<Vec<u8>>,
    full: &Path,
) -> Result<Existing, GenerateError> {
    let leaf = chain
        .first()
        .ok_or_else(|| input(full, "the key entry has no certificate", None))?;
    let info = CertInfo::from_der(leaf).map_err(|e| input(full, e, None))?;
    if info.public_key_der != key.public_key_der() {
        return Err(input(
            full,
            "the private key does not belong to its certificate",
            Some("restore the file from a backup, or rotate its key"),
        ));
    }
    Ok(Existing {
        key,
        chain,
        info,
        path,
        reusable,
    })
}

pub(super) fn read_lb_key(dir: Dir, host: &str) -> Result<Option<Existing>, GenerateError> {
    let key_rel = layout::lb_file(host, LbFile::Key);
    let cert_rel = layout::lb_file(host, LbFile::Cert);
    let (Ok(key_pem), Ok(cert_pem)) = (dir.read(&key_rel).ok_or(()), dir.read(&cert_rel).ok_or(()))
    else {
        return Ok(None);
    };
    let key = Key::from_pem(&key_pem, &key_rel)
        .map_err(|e| input(dir.join(&key_rel), e.to_string(), None))?;
    let chain = pem::certs_from_pem(&cert_pem).map_err(|e| input(dir.join(&cert_rel), e, None))?;
    Ok(Some(existing_from(
        key,
        chain,
        cert_rel,
        None,
        &dir.join(&key_rel),
    )?))
}

/// The rollover CAs of `stage`: the next CA (cert and key) once begun, the previous CA's
/// certificate once finished.
pub(super) fn load_rollover(
    dir: &Path,
    stage: CaStage,
) -> Result<(Option<Ca>, Option<Vec<u8>>), GenerateError> {
    let hint = Some("restore the ca/ directory from a backup (history/ holds earlier versions)");
    match stage {
        CaStage::Stable => Ok((None, None)),
        CaStage::Begun => {
            let read = |rel: &str| {
                crate::input::read(dir.join(rel), crate::input::Limit::Certificate).map_err(|e| {
                    input(
                        dir.join(rel),
                        format!("the rollover has begun but this file cannot be read: {e}"),
                        hint,
                    )
                })
            };
            let (cert, key) = (read(layout::CA_NEXT_CERT)?, read(layout::CA_NEXT_KEY)?);
            let next = Ca::from_pem(&cert, &key, layout::CA_NEXT_CERT, layout::CA_NEXT_KEY)
                .map_err(|e| input(dir.join(layout::CA_NEXT_CERT), e.to_string(), hint))?;
            Ok((Some(next), None))
        }
        CaStage::Finished => {
            let rel = layout::CA_PREVIOUS_CERT;
            let bytes = crate::input::read(dir.join(rel), crate::input::Limit::Certificate)
                .map_err(|e| {
                    input(
                        dir.join(rel),
                        format!("the rollover has finished but this file cannot be read: {e}"),
                        hint,
                    )
                })?;
            let cert = pem::certs_from_pem(&bytes)
                .ok()
                .and_then(|c| c.into_iter().next())
                .ok_or_else(|| input(dir.join(rel), "not a PEM certificate", hint))?;
            Ok((None, Some(cert)))
        }
    }
}
