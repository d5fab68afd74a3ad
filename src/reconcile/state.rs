//! The load phase: what DIR already holds (inventory, secrets, passwords, the CA, the keys
//! and certificates of every artifact the topology asks for). Reads only.

use std::path::Path;
use std::sync::Mutex;

use rayon::prelude::*;

use crate::error::Bug;
use crate::keystore::{pem, Entry, Keystore, KeystoreError};
use crate::output::inventory::{ArtifactKind, Inventory, PasswordSource};
use crate::output::layout::{self, LbFile};
use crate::output::secrets::Secrets;
use crate::password::{Password, PasswordProblem, PasswordRole};
use crate::pki::{CertInfo, Key};
use crate::plan::certs;
use crate::topology::{KeystoreFormat, Topology};

use super::dir::Dir;
use super::error::GenerateError;
use super::model::{store_type_of, ArtifactSpec, Existing, Owner, Passwords, Resolved};
use super::types::Imported;

pub(super) fn read_inventory(dir: &Path) -> Result<Option<Inventory>, GenerateError> {
    let path = dir.join(layout::INVENTORY);
    match crate::input::read(&path, crate::input::Limit::SetFile) {
        Ok(bytes) => Inventory::from_json(&bytes)
            .map(Some)
            .map_err(|source| GenerateError::InventoryCorrupt { path, source }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(GenerateError::Unreadable { path, source }),
    }
}

pub(super) fn read_secrets(dir: &Path) -> Result<Secrets, GenerateError> {
    let path = dir.join(layout::SECRETS);
    match crate::input::read_to_string(&path, crate::input::Limit::SetFile) {
        Ok(text) => {
            Secrets::parse(&text).map_err(|source| GenerateError::SecretsCorrupt { path, source })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Secrets::default()),
        Err(source) => Err(GenerateError::Unreadable { path, source }),
    }
}

/// The password of each role: from its variable in `[passwords]`, else secrets.toml, else a new
/// one. Values recorded for an earlier source become fallbacks for opening old keystores.
pub(super) fn resolve_passwords(
    topology: &Topology,
    old: Option<&Inventory>,
    secrets: &Secrets,
) -> Result<Passwords, GenerateError> {
    let vars = &topology.passwords;
    let mut fallbacks = Vec::new();
    let mut one = |role: PasswordRole, var: Option<&String>| {
        let recorded = old.and_then(|o| o.passwords.get(role.as_str()));
        fallbacks.extend(recorded_value(recorded, role, secrets));
        resolve_role(role, var, recorded, secrets, topology.keystores.format)
    };
    let primary = one(PasswordRole::Primary, vars.primary.as_ref())?;
    let tls = if certs::per_node_tls(topology) {
        Some(one(PasswordRole::Tls, vars.tls.as_ref())?)
    } else {
        None
    };
    let truststore = one(PasswordRole::Truststore, vars.truststore.as_ref())?;
    Ok(Passwords {
        primary,
        tls,
        truststore,
        fallbacks,
    })
}

/// The value a role's recorded source gives today, to try on keystores made before the source
/// changed.
fn recorded_value(
    recorded: Option<&PasswordSource>,
    role: PasswordRole,
    secrets: &Secrets,
) -> Option<Password> {
    match recorded? {
        PasswordSource::Env { variable } => std::env::var(variable).ok().map(Password::new),
        PasswordSource::SecretsFile => secrets.passwords.get(role.as_str()).cloned(),
    }
}

/// One role's password (see [`resolve_passwords`]).
fn resolve_role(
    role: PasswordRole,
    var: Option<&String>,
    recorded: Option<&PasswordSource>,
    secrets: &Secrets,
    format: KeystoreFormat,
) -> Result<Resolved, GenerateError> {
    let refused = |source: &PasswordSource, problem| GenerateError::PasswordRefused {
        role,
        from: source.clone(),
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
                    role,
                    from: PasswordSource::Env {
                        variable: variable.clone(),
                    },
                    problem: PasswordProblem::ControlCharacter,
                })
            }
            Err(std::env::VarError::NotPresent) => {
                if matches!(recorded, Some(PasswordSource::Env { variable: v }) if v == variable) {
                    return Err(GenerateError::PasswordUnset {
                        role,
                        variable: variable.clone(),
                    });
                }
            }
        }
    }
    let source = PasswordSource::SecretsFile;
    if let Some(password) = secrets.passwords.get(role.as_str()) {
        password.check(format).map_err(|p| refused(&source, p))?;
        return Ok(Resolved {
            password: password.clone(),
            source,
            generated: false,
        });
    }
    let password = Password::generate().map_err(|error| GenerateError::Rng { error })?;
    Ok(Resolved {
        password,
        source,
        generated: true,
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

/// What looking for the existing keys of the set needs.
pub(super) struct Lookup<'a> {
    pub topology: &'a Topology,
    pub dir: Dir<'a>,
    pub old: Option<&'a Inventory>,
    pub passwords: &'a Passwords,
    pub imported: Option<&'a Imported>,
    /// Files that do not open and that inventory.json does not record (left by an interrupted
    /// first run): they move to history/ instead of stopping the run.
    pub strays: Mutex<Vec<String>>,
}

/// What DIR (or the imported certificates) holds for each of `specs`, in their order; looked
/// up in parallel.
pub(super) fn load_existing(
    lk: &Lookup,
    specs: &[ArtifactSpec],
) -> Result<Vec<Option<Existing>>, GenerateError> {
    let found: Vec<Result<Option<Existing>, GenerateError>> = specs
        .par_iter()
        .map(|spec| existing_for(lk, &spec.owner))
        .collect();
    found.into_iter().collect()
}

/// What DIR holds for one artifact.
fn existing_for(lk: &Lookup, owner: &Owner) -> Result<Option<Existing>, GenerateError> {
    let topology = lk.topology;
    let format = topology.keystores.format;
    match owner {
        Owner::Primary => {
            let paths: Vec<String> = old_paths(lk.old, ArtifactKind::PrimaryKeystore, None)
                .into_iter()
                .chain(
                    topology
                        .nodes
                        .iter()
                        .map(|n| layout::node_security(&n.name, &layout::primary_file(format))),
                )
                .collect();
            let primary = &lk.passwords.primary;
            let alias = &topology.keystores.primary_alias;
            let found = find_key_entry(lk, &paths, alias, (PasswordRole::Primary, primary))?;
            let recorded = lk.old.is_some_and(|o| {
                o.artifacts
                    .iter()
                    .any(|a| a.kind == ArtifactKind::PrimaryKeystore)
            });
            if found.is_none() && recorded {
                return Err(GenerateError::PrimaryMissing {
                    path: lk.dir.join(&paths[0]),
                });
            }
            Ok(found)
        }
        Owner::Node(name) => {
            let paths: Vec<String> = old_paths(lk.old, ArtifactKind::TlsKeystore, Some(name))
                .into_iter()
                .chain([layout::node_security(name, &layout::tls_file(name, format))])
                .collect();
            let tls = lk.passwords.tls_or_primary();
            let on_disk = find_key_entry(lk, &paths, name, (PasswordRole::Tls, tls));
            match imported_leaf(lk.imported, name) {
                Some(e) => Ok(Some(e)),
                None => on_disk,
            }
        }
        Owner::Lb(host) => match imported_leaf(lk.imported, host) {
            Some(e) => Ok(Some(e)),
            None => read_lb_key(lk.dir, host),
        },
    }
}

/// The key and chain `import-signed` brings for `label`, as if found in DIR (csr/LABEL.key).
fn imported_leaf(imported: Option<&Imported>, label: &str) -> Option<Existing> {
    let (key, chain) = imported?.leaves.get(label)?;
    let info = CertInfo::from_der(chain.first()?).ok()?;
    let key = Key::from_pkcs8_der(&key.pkcs8_der(), label).ok()?;
    Some(Existing {
        key,
        chain: chain.clone(),
        info,
        path: format!("csr/{label}.key"),
        reusable: None,
    })
}

/// Opens the first of `paths` that exists and returns its private-key entry, expected under
/// `alias`, opening with the `role`'s `password` (or a fallback). A file that does not open and
/// that inventory.json does not record is pushed to `lk.strays` and skipped.
fn find_key_entry(
    lk: &Lookup,
    paths: &[String],
    alias: &str,
    (role, resolved): (PasswordRole, &Resolved),
) -> Result<Option<Existing>, GenerateError> {
    let (dir, old) = (lk.dir, lk.old);
    let want = store_type_of(lk.topology.keystores.format);
    let (password, fallbacks) = (&resolved.password, &lk.passwords.fallbacks);
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
                if let Ok(mut s) = lk.strays.lock() {
                    s.push(rel.clone());
                }
                continue;
            }
            (None, Some(KeystoreError::WrongPassword)) => {
                let from = resolved.source.clone();
                return Err(GenerateError::WrongPassword { path, role, from });
            }
            (None, Some(source)) => return Err(GenerateError::KeystoreUnreadable { path, source }),
            (None, None) => {
                return Err(Bug::new("a keystore tried with no password").into());
            }
        };
        let entry = store.key_entries().next().cloned();
        let Some(Entry::PrivateKey {
            alias: found_alias,
            pkcs8,
            chain,
        }) = entry
        else {
            return Err(GenerateError::NoPrivateKey { path });
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
    let at = || full.to_path_buf();
    let leaf = chain
        .first()
        .ok_or_else(|| GenerateError::NoCertificate { path: at() })?;
    let info = CertInfo::from_der(leaf)
        .map_err(|source| GenerateError::BadCertificate { path: at(), source })?;
    if info.public_key_der != key.public_key_der() {
        return Err(GenerateError::KeyMismatch { path: at() });
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
    let key = Key::from_pem(&key_pem, &key_rel).map_err(|source| GenerateError::BadKey {
        path: dir.join(&key_rel),
        source: Box::new(source),
    })?;
    let chain = pem::certs_from_pem(&cert_pem).map_err(|source| GenerateError::BadPem {
        path: dir.join(&cert_rel),
        source,
    })?;
    Ok(Some(existing_from(
        key,
        chain,
        cert_rel,
        None,
        &dir.join(&key_rel),
    )?))
}
