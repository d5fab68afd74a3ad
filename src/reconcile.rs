//! Reconcile: bring DIR in line with the topology (`generate`), or say what that would do
//! (`plan`). Per artifact: create, keep, renew, reissue, update, or needs-rotate, with a reason.
//!
//! Keys are never replaced here: renew and reissue re-certify the existing key, a missing key is
//! created, and a changed key type or CA stops the run with a hint to use `rotate`. Derived files
//! (truststores, node.toml, inventory.json) are rewritten only when their content changes, so an
//! unchanged topology changes no file at all.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::Serialize;
use time::{Duration, OffsetDateTime};

use crate::keystore::{pem, Entry, Keystore, KeystoreError, StoreType};
use crate::output::fsio::{self, Access, DirLock, FsError, LockError};
use crate::output::inventory::{
    Artifact, ArtifactEntry, ArtifactKind, Inventory, PasswordSource, FORMAT_VERSION,
};
use crate::output::layout::{self, LbFile};
use crate::output::secrets::Secrets;
use crate::password::{Password, PasswordProblem};
use crate::pki::{self, Ca, CertInfo, CertSpec, Key, PkiError};
use crate::resolve;
use crate::topology::{CaSource, KeyType, Node, Topology};

/// What to do with DIR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Compute the actions, write nothing.
    Plan,
    /// Compute and write.
    Generate,
}

/// What reconcile does (or would do) to one artifact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ActionKind {
    Create,
    Keep,
    Renew,
    Reissue,
    Update,
    NeedsRotate,
    Remove,
}

impl ActionKind {
    /// The word users see.
    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::Create => "create",
            ActionKind::Keep => "keep",
            ActionKind::Renew => "renew",
            ActionKind::Reissue => "reissue",
            ActionKind::Update => "update",
            ActionKind::NeedsRotate => "needs-rotate",
            ActionKind::Remove => "remove",
        }
    }
}

/// One artifact's action.
#[derive(Debug, Clone, Serialize)]
pub struct Action {
    pub action: ActionKind,
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load_balancer: Option<String>,
    pub reason: String,
}

/// A certificate the run produced or kept, for the summary users see.
#[derive(Debug, Clone, Serialize)]
pub struct CertSummary {
    /// `CA`, `primary`, a node name or a load balancer host.
    pub label: String,
    pub path: String,
    pub names: Vec<String>,
    pub subject: String,
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
}

/// The result of a reconcile.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub actions: Vec<Action>,
    /// Certificates of the set after the run.
    pub certificates: Vec<CertSummary>,
    /// Roles whose password was generated in this run (recorded in secrets.toml).
    pub generated_passwords: Vec<String>,
    /// True when files were written.
    pub wrote: bool,
}

impl Outcome {
    /// How many artifacts got each action.
    pub fn counts(&self) -> BTreeMap<ActionKind, usize> {
        let mut counts = BTreeMap::new();
        for a in &self.actions {
            *counts.entry(a.action).or_insert(0) += 1;
        }
        counts
    }
}

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
            GenerateError::Lock(LockError::Busy(_)) => {
                Some("wait for the other command to finish".into())
            }
            _ => None,
        }
    }
}

fn input(
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

/// A password and where it came from.
struct Resolved {
    password: Password,
    source: PasswordSource,
    generated: bool,
}

struct Passwords {
    primary: Resolved,
    tls: Option<Resolved>,
    truststore: Resolved,
    /// Old values to try when a keystore does not open with the current one.
    fallbacks: Vec<Password>,
}

/// A key and certificate chain found in DIR.
struct Existing {
    key: Key,
    chain: Vec<Vec<u8>>,
    info: CertInfo,
    /// Where it was found, and the raw bytes when they opened with the current password as the
    /// configured store type under the expected alias (so the file can stay untouched).
    path: String,
    reusable: Option<Vec<u8>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Decision {
    Keep,
    Renew,
    Reissue,
    Create,
}

/// A key-bearing item: the CA, the primary, a node's TLS key, a load balancer's key.
struct Item {
    label: String,
    node: Option<String>,
    lb: Option<String>,
    spec: CertSpec,
    key_type: KeyType,
    decision: Decision,
    reason: String,
    existing: Option<Existing>,
}

/// The item after issuing: its key and chain (leaf first).
struct Issued {
    key: Key,
    chain: Vec<Vec<u8>>,
    info: CertInfo,
    /// The keystore bytes it was read from, when they can stay as they are.
    kept_bytes: Option<(String, Vec<u8>)>,
}

/// One output file.
struct FileOut {
    path: String,
    kind: ArtifactKind,
    node: Option<String>,
    lb: Option<String>,
    access: Access,
    bytes: Option<Vec<u8>>,
    action: ActionKind,
    reason: String,
    store_type: Option<StoreType>,
    password: Option<&'static str>,
    entries: Vec<ArtifactEntry>,
}

/// Brings `dir` in line with `topology` (or, in [`Mode::Plan`], says what that would do).
pub fn reconcile(topology: &Topology, dir: &Path, mode: Mode) -> Result<Outcome, GenerateError> {
    let _lock = match mode {
        Mode::Generate => Some(DirLock::acquire(dir)?),
        Mode::Plan => None,
    };
    let old = read_inventory(dir)?;
    let secrets = read_secrets(dir)?;
    let passwords = resolve_passwords(topology, old.as_ref(), &secrets)?;
    let now = OffsetDateTime::now_utc();
    let renew_window = Duration::days(i64::from(topology.pki.renew_before_days));

    // The CA: loaded, or created below.
    let (mut ca, mut ca_item) = load_ca(topology, dir, old.as_ref())?;

    // Every key-bearing item and its decision.
    let primary_path = old_paths(old.as_ref(), ArtifactKind::PrimaryKeystore, None)
        .into_iter()
        .chain(topology.nodes.iter().map(|n| {
            layout::node_security(&n.name, &layout::primary_file(topology.keystores.format))
        }))
        .collect::<Vec<_>>();
    let want_type = store_type_of(topology.keystores.format);
    let primary_existing = find_key_entry(
        dir,
        &primary_path,
        &topology.keystores.primary_alias,
        want_type,
        &passwords.primary.password,
        &passwords.fallbacks,
    )?;
    if primary_existing.is_none()
        && old.as_ref().is_some_and(|o| {
            o.artifacts
                .iter()
                .any(|a| a.kind == ArtifactKind::PrimaryKeystore)
        })
    {
        return Err(input(dir.join(&primary_path[0]), "the primary keystore is missing on every node", Some("restore wso2carbon keystore from a node or a backup: a new primary key would make data WSO2 encrypted with the old one unreadable")));
    }
    let mut items = vec![decide(
        "primary",
        None,
        None,
        resolve::primary_cert(topology),
        topology.keystores.primary_key,
        primary_existing,
        ca.as_ref(),
        now,
        renew_window,
    )?];
    if resolve::per_node_tls(topology) {
        let tls_password = passwords
            .tls
            .as_ref()
            .map_or(&passwords.primary.password, |t| &t.password);
        let found: Vec<Result<Option<Existing>, GenerateError>> = topology
            .nodes
            .par_iter()
            .map(|node| {
                let paths: Vec<String> =
                    old_paths(old.as_ref(), ArtifactKind::TlsKeystore, Some(&node.name))
                        .into_iter()
                        .chain([layout::node_security(
                            &node.name,
                            &layout::tls_file(&node.name, topology.keystores.format),
                        )])
                        .collect();
                find_key_entry(
                    dir,
                    &paths,
                    &node.name,
                    want_type,
                    tls_password,
                    &passwords.fallbacks,
                )
            })
            .collect();
        for (node, existing) in topology.nodes.iter().zip(found) {
            items.push(decide(
                &node.name,
                Some(&node.name),
                None,
                resolve::node_cert(topology, node),
                topology.pki.key,
                existing?,
                ca.as_ref(),
                now,
                renew_window,
            )?);
        }
    }
    for lb in &topology.load_balancers {
        let host = lb.host.to_string();
        let existing = read_lb_key(dir, &host)?;
        items.push(decide(
            &host,
            None,
            Some(&host),
            resolve::lb_cert(topology, &lb.host),
            topology.pki.key,
            existing,
            ca.as_ref(),
            now,
            renew_window,
        )?);
    }

    // Keys: generate every missing one in parallel, the CA's included.
    let mut wanted: Vec<KeyType> = items
        .iter()
        .filter(|i| i.decision == Decision::Create)
        .map(|i| i.key_type)
        .collect();
    let ca_needs_key = ca.is_none();
    if ca_needs_key {
        wanted.push(topology.pki.key);
    }
    let mut fresh_keys = pki::generate_keys(&wanted)?;
    if ca_needs_key {
        let key = fresh_keys
            .pop()
            .ok_or_else(|| input(dir, "internal: no CA key generated", None))?;
        ca = Some(Ca::create(&resolve::ca_cert(topology, 1), key)?);
        if let Some(item) = ca_item.as_mut() {
            item.decision = Decision::Create;
        }
    }
    let ca = ca.ok_or_else(|| input(dir, "internal: no CA", None))?;
    let mut fresh_keys = fresh_keys.into_iter();
    let work: Vec<(Item, Option<Key>)> = items
        .into_iter()
        .map(|item| {
            let key = (item.decision == Decision::Create)
                .then(|| fresh_keys.next())
                .flatten();
            (item, key)
        })
        .collect();
    let issued: Vec<(Item, Issued)> = work
        .into_par_iter()
        .map(|(mut item, key)| {
            let issued = issue(&mut item, key, &ca)?;
            Ok((item, issued))
        })
        .collect::<Result<_, GenerateError>>()?;

    // Files.
    let files = build_files(topology, dir, &ca, ca_item.as_ref(), &issued, &passwords)?;
    let mut actions: Vec<Action> = files
        .iter()
        .map(|f| Action {
            action: f.action,
            path: f.path.clone(),
            node: f.node.clone(),
            load_balancer: f.lb.clone(),
            reason: f.reason.clone(),
        })
        .collect();

    // Artifacts of the old inventory that the new set no longer has move to history/.
    let new_paths: BTreeSet<&str> = files.iter().map(|f| f.path.as_str()).collect();
    let removed: Vec<&Artifact> = old
        .as_ref()
        .map(|o| {
            o.artifacts
                .iter()
                .filter(|a| {
                    !new_paths.contains(a.path.as_str())
                        && a.path != layout::INVENTORY
                        && dir.join(&a.path).exists()
                })
                .collect()
        })
        .unwrap_or_default();
    for a in &removed {
        actions.push(Action {
            action: ActionKind::Remove,
            path: a.path.clone(),
            node: a.node.clone(),
            load_balancer: a.load_balancer.clone(),
            reason: "no longer in the topology or format; moved to history/".into(),
        });
    }

    let inventory = build_inventory(topology, &passwords, &files);
    let inventory_bytes = inventory.to_json();
    let inventory_changed =
        std::fs::read(dir.join(layout::INVENTORY)).ok().as_deref() != Some(&inventory_bytes[..]);
    let certificates = summarize(&ca, &issued, topology);
    let generated_passwords = [
        ("primary", Some(&passwords.primary)),
        ("tls", passwords.tls.as_ref()),
        ("truststore", Some(&passwords.truststore)),
    ]
    .into_iter()
    .filter_map(|(role, r)| r.filter(|r| r.generated).map(|_| role.to_string()))
    .collect();

    if mode == Mode::Generate {
        if !removed.is_empty() {
            let stamp = history_stamp(now);
            for a in &removed {
                let to = dir.join(layout::HISTORY).join(&stamp).join(&a.path);
                fsio::move_file(&dir.join(&a.path), &to)?;
                remove_empty_parents(dir, &a.path);
            }
        }
        for f in &files {
            if let Some(bytes) = &f.bytes {
                fsio::write_atomic(&dir.join(&f.path), bytes, f.access)?;
            }
        }
        if inventory_changed {
            fsio::write_atomic(
                &dir.join(layout::INVENTORY),
                &inventory_bytes,
                Access::Public,
            )?;
        }
    }
    Ok(Outcome {
        actions,
        certificates,
        generated_passwords,
        wrote: mode == Mode::Generate,
    })
}

fn store_type_of(format: crate::topology::KeystoreFormat) -> StoreType {
    if format == crate::topology::KeystoreFormat::Jks {
        StoreType::Jks
    } else {
        StoreType::Pkcs12
    }
}

fn history_stamp(now: OffsetDateTime) -> String {
    let format = time::macros::format_description!(
        "[year][month][day]T[hour][minute][second].[subsecond digits:3]Z"
    );
    now.format(&format)
        .unwrap_or_else(|_| now.unix_timestamp().to_string())
}

fn remove_empty_parents(dir: &Path, rel: &str) {
    let mut path = dir.join(rel);
    while path.pop() && path != dir {
        if std::fs::remove_dir(&path).is_err() {
            break;
        }
    }
}

fn read_inventory(dir: &Path) -> Result<Option<Inventory>, GenerateError> {
    let path = dir.join(layout::INVENTORY);
    match std::fs::read(&path) {
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

fn read_secrets(dir: &Path) -> Result<Secrets, GenerateError> {
    let path = dir.join(layout::SECRETS);
    match std::fs::read_to_string(&path) {
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

fn resolve_passwords(
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
fn old_paths(old: Option<&Inventory>, kind: ArtifactKind, node: Option<&str>) -> Vec<String> {
    old.map(|o| {
        o.artifacts
            .iter()
            .filter(|a| a.kind == kind && (node.is_none() || a.node.as_deref() == node))
            .map(|a| a.path.clone())
            .collect()
    })
    .unwrap_or_default()
}

fn load_ca(
    topology: &Topology,
    dir: &Path,
    old: Option<&Inventory>,
) -> Result<(Option<Ca>, Option<Item>), GenerateError> {
    let read = |path: &Path, what: &str| {
        std::fs::read(path).map_err(|e| input(path, format!("cannot read the {what}: {e}"), Some("check the path in [pki.ca]; relative paths start at the topology file's directory")))
    };
    let spec = resolve::ca_cert(topology, 1);
    let existing_cert = std::fs::read(dir.join(layout::CA_CERT)).ok();
    match &topology.ca {
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
        CaSource::Generated => {
            let key_path = dir.join(layout::CA_KEY);
            match (existing_cert, std::fs::read(&key_path).ok()) {
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
                    if old.is_none_or(|o| {
                        o.artifacts.iter().all(|a| a.kind != ArtifactKind::CaKey)
                    }) =>
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
            }
        }
    }
}

/// Opens the first of `paths` that exists and returns its private-key entry.
fn find_key_entry(
    dir: &Path,
    paths: &[String],
    alias: &str,
    want: StoreType,
    password: &Password,
    fallbacks: &[Password],
) -> Result<Option<Existing>, GenerateError> {
    for rel in paths {
        let path = dir.join(rel);
        let Ok(bytes) = std::fs::read(&path) else {
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
        let ((store, store_type), current_password) = match (opened, last_err) {
            (Some(o), _) => o,
            (None, Some(KeystoreError::WrongPassword)) => {
                return Err(input(path, "the keystore does not open with its password (from secrets.toml or the environment variable in [passwords])", Some("set the variable to the password the set was made with")))
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
        let reusable = (current_password
            && store_type == want
            && found_alias == alias
            && store.entries.len() == 1)
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

fn existing_from(
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

fn read_lb_key(dir: &Path, host: &str) -> Result<Option<Existing>, GenerateError> {
    let key_rel = layout::lb_file(host, LbFile::Key);
    let cert_rel = layout::lb_file(host, LbFile::Cert);
    let (Ok(key_pem), Ok(cert_pem)) = (
        std::fs::read(dir.join(&key_rel)),
        std::fs::read(dir.join(&cert_rel)),
    ) else {
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

#[allow(clippy::too_many_arguments)]
fn decide(
    label: &str,
    node: Option<&str>,
    lb: Option<&str>,
    spec: CertSpec,
    key_type: KeyType,
    existing: Option<Existing>,
    ca: Option<&Ca>,
    now: OffsetDateTime,
    renew_window: Duration,
) -> Result<Item, GenerateError> {
    let (decision, reason) = match &existing {
        None => (Decision::Create, "new".to_string()),
        Some(e) => {
            if e.info.key_type != Some(key_type) {
                return Err(GenerateError::NeedsRotate {
                    path: e.path.clone(),
                    reason: format!(
                        "its key is {}, the topology asks for {key_type}",
                        e.info.key
                    ),
                });
            }
            match ca {
                Some(ca) if e.info.issuer_der == ca.info().subject_der => {}
                _ => {
                    return Err(GenerateError::NeedsRotate {
                        path: e.path.clone(),
                        reason: format!(
                            "it was issued by `{}`, not by the set's CA",
                            e.info.issuer
                        ),
                    })
                }
            }
            if let Some(diff) = names_diff(&spec, &e.info) {
                (Decision::Reissue, format!("names changed: {diff}"))
            } else if e.info.not_after - now < renew_window {
                (
                    Decision::Renew,
                    format!(
                        "expires {} (within renew_before_days)",
                        date(e.info.not_after)
                    ),
                )
            } else {
                (
                    Decision::Keep,
                    format!("matches the topology; expires {}", date(e.info.not_after)),
                )
            }
        }
    };
    Ok(Item {
        label: label.into(),
        node: node.map(str::to_string),
        lb: lb.map(str::to_string),
        spec,
        key_type,
        decision,
        reason,
        existing,
    })
}

fn date(t: OffsetDateTime) -> String {
    let d = t.date();
    format!("{:04}-{:02}-{:02}", d.year(), d.month() as u8, d.day())
}

/// What differs between the names a spec asks for and those a certificate has.
fn names_diff(spec: &CertSpec, info: &CertInfo) -> Option<String> {
    let mut diffs = Vec::new();
    let want: BTreeSet<String> = spec
        .dns_names
        .iter()
        .map(|d| format!("DNS:{d}"))
        .chain(spec.ip_addresses.iter().map(|ip| format!("IP:{ip}")))
        .collect();
    let have: BTreeSet<String> = info
        .dns_names
        .iter()
        .map(|d| format!("DNS:{}", d.to_ascii_lowercase()))
        .chain(info.ip_addresses.iter().map(|ip| format!("IP:{ip}")))
        .collect();
    diffs.extend(want.difference(&have).map(|s| format!("+{s}")));
    diffs.extend(have.difference(&want).map(|s| format!("-{s}")));
    let s = &spec.subject;
    if info.common_names.first() != Some(&s.common_name)
        || info.organization != s.organization
        || info.organizational_unit != s.organizational_unit
        || info.country != s.country
    {
        diffs.push(format!("subject is now {}", s.common_name));
    }
    (!diffs.is_empty()).then(|| diffs.join(", "))
}

fn issue(item: &mut Item, fresh_key: Option<Key>, ca: &Ca) -> Result<Issued, GenerateError> {
    let chain_tail = std::iter::once(ca.cert_der().to_vec()).chain(ca.parents().iter().cloned());
    match (item.decision.clone(), item.existing.take(), fresh_key) {
        (Decision::Keep, Some(e), _) => Ok(Issued {
            kept_bytes: e.reusable.map(|b| (e.path, b)),
            key: e.key,
            chain: e.chain,
            info: e.info,
        }),
        (Decision::Renew | Decision::Reissue, Some(e), _) => {
            let der = ca.issue(&item.spec, &e.key)?;
            let info = CertInfo::from_der(&der).map_err(|r| PkiError::BadCertificate {
                what: item.label.clone(),
                reason: r,
            })?;
            Ok(Issued {
                key: e.key,
                chain: std::iter::once(der).chain(chain_tail).collect(),
                info,
                kept_bytes: None,
            })
        }
        (_, _, Some(key)) => {
            let der = ca.issue(&item.spec, &key)?;
            let info = CertInfo::from_der(&der).map_err(|r| PkiError::BadCertificate {
                what: item.label.clone(),
                reason: r,
            })?;
            Ok(Issued {
                key,
                chain: std::iter::once(der).chain(chain_tail).collect(),
                info,
                kept_bytes: None,
            })
        }
        _ => Err(GenerateError::Pki(PkiError::Issue {
            subject: item.label.clone(),
            reason: "internal: no key".into(),
        })),
    }
}

fn decision_action(d: &Decision) -> ActionKind {
    match d {
        Decision::Keep => ActionKind::Keep,
        Decision::Renew => ActionKind::Renew,
        Decision::Reissue => ActionKind::Reissue,
        Decision::Create => ActionKind::Create,
    }
}

fn entries_of(store: &Keystore) -> Vec<ArtifactEntry> {
    store
        .entries
        .iter()
        .filter_map(|e| {
            let info = CertInfo::from_der(e.cert()?).ok()?;
            let kind = if matches!(e, Entry::PrivateKey { .. }) {
                "private-key"
            } else {
                "trusted-cert"
            };
            Some(ArtifactEntry::new(Some(e.alias()), kind, &info))
        })
        .collect()
}

/// Same entries (alias and certificates), in any order.
fn same_entries(a: &Keystore, b: &Keystore) -> bool {
    let key = |k: &Keystore| {
        let mut v: Vec<(String, Vec<Vec<u8>>)> = k
            .entries
            .iter()
            .map(|e| match e {
                Entry::PrivateKey { alias, chain, .. } => (alias.clone(), chain.clone()),
                Entry::Trusted { alias, cert } => (alias.clone(), vec![cert.clone()]),
            })
            .collect();
        v.sort();
        v
    };
    key(a) == key(b)
}

#[allow(clippy::too_many_arguments)]
fn keystore_file(
    dir: &Path,
    path: String,
    kind: ArtifactKind,
    node: &Node,
    desired: &Keystore,
    reuse: Option<&[u8]>,
    fresh: &dyn Fn() -> Result<Vec<u8>, GenerateError>,
    password: &Password,
    role: &'static str,
    action_if_changed: (ActionKind, String),
    format: crate::topology::KeystoreFormat,
) -> Result<FileOut, GenerateError> {
    let current = std::fs::read(dir.join(&path)).ok();
    let want_type = store_type_of(format);
    let (action, reason, bytes) = match (&current, reuse) {
        (Some(cur), Some(reuse)) if cur == reuse => {
            (ActionKind::Keep, action_if_changed.1.clone(), None)
        }
        (Some(cur), None)
            if action_if_changed.0 == ActionKind::Keep
                && StoreType::detect(cur) == Some(want_type)
                && Keystore::decode(cur, password)
                    .is_ok_and(|(k, _)| same_entries(&k, desired)) =>
        {
            (ActionKind::Keep, action_if_changed.1.clone(), None)
        }
        (None, _) => (
            ActionKind::Create,
            if action_if_changed.0 == ActionKind::Keep {
                "new on this node".into()
            } else {
                action_if_changed.1.clone()
            },
            Some(reuse.map_or_else(fresh, |r| Ok(r.to_vec()))?),
        ),
        (Some(_), _) => {
            let (a, r) = if action_if_changed.0 == ActionKind::Keep {
                (
                    ActionKind::Update,
                    "re-encoded (format, password or entries changed)".to_string(),
                )
            } else {
                action_if_changed.clone()
            };
            (a, r, Some(reuse.map_or_else(fresh, |r| Ok(r.to_vec()))?))
        }
    };
    Ok(FileOut {
        path,
        kind,
        node: Some(node.name.clone()),
        lb: None,
        access: Access::Secret,
        bytes,
        action,
        reason,
        store_type: Some(want_type),
        password: Some(role),
        entries: entries_of(desired),
    })
}

fn simple_file(
    dir: &Path,
    path: String,
    kind: ArtifactKind,
    access: Access,
    bytes: Vec<u8>,
    reason_new: &str,
    entries: Vec<ArtifactEntry>,
) -> FileOut {
    let current = std::fs::read(dir.join(&path)).ok();
    let (action, reason, bytes) = match current {
        Some(cur) if cur == bytes => (ActionKind::Keep, "unchanged".to_string(), None),
        Some(_) => (
            ActionKind::Update,
            "content changed".to_string(),
            Some(bytes),
        ),
        None => (ActionKind::Create, reason_new.to_string(), Some(bytes)),
    };
    FileOut {
        path,
        kind,
        node: None,
        lb: None,
        access,
        bytes,
        action,
        reason,
        store_type: None,
        password: None,
        entries,
    }
}

fn build_files(
    topology: &Topology,
    dir: &Path,
    ca: &Ca,
    ca_item: Option<&Item>,
    issued: &[(Item, Issued)],
    passwords: &Passwords,
) -> Result<Vec<FileOut>, GenerateError> {
    let format = topology.keystores.format;
    let mut files = Vec::new();
    let ca_info = ca.info();
    let ca_entry = ArtifactEntry::new(None, "certificate", ca_info);
    let ca_pem = pem::certs_to_pem([ca.cert_der()]);
    let ca_created = ca_item.is_some_and(|i| i.decision == Decision::Create);
    let mut ca_cert = simple_file(
        dir,
        layout::CA_CERT.into(),
        ArtifactKind::CaCert,
        Access::Public,
        ca_pem.clone().into_bytes(),
        "new CA",
        vec![ca_entry.clone()],
    );
    if ca_created {
        ca_cert.action = ActionKind::Create;
    }
    files.push(ca_cert);
    if topology.ca.is_generated() {
        let mut key = simple_file(
            dir,
            layout::CA_KEY.into(),
            ArtifactKind::CaKey,
            Access::Secret,
            ca.key().pkcs8_pem().as_bytes().to_vec(),
            "new CA key",
            Vec::new(),
        );
        if !ca_created && dir.join(layout::CA_KEY).exists() {
            // Never rewrite a key file that exists: its PEM form is not ours to normalise.
            key.action = ActionKind::Keep;
            key.reason = "unchanged".into();
            key.bytes = None;
        }
        files.push(key);
    }
    let trusted_cas: Vec<&[u8]> = std::iter::once(ca.cert_der())
        .chain(ca.parents().iter().map(Vec::as_slice))
        .collect();
    let bundle_entries = trusted_cas
        .iter()
        .filter_map(|c| CertInfo::from_der(c).ok())
        .map(|i| ArtifactEntry::new(None, "certificate", &i))
        .collect();
    files.push(simple_file(
        dir,
        layout::CA_BUNDLE.into(),
        ArtifactKind::CaBundle,
        Access::Public,
        pem::certs_to_pem(trusted_cas.iter().copied()).into_bytes(),
        "new",
        bundle_entries,
    ));

    let (primary_item, primary) = issued
        .iter()
        .find(|(i, _)| i.label == "primary")
        .ok_or_else(|| input(dir, "internal: no primary", None))?;
    let primary_alias = topology.keystores.primary_alias.clone();
    let primary_store = Keystore {
        entries: vec![Entry::PrivateKey {
            alias: primary_alias.clone(),
            pkcs8: primary.key.pkcs8_der(),
            chain: primary.chain.clone(),
        }],
    };
    // The primary keystore is the same file on every node: encode it once, copy the bytes.
    let primary_bytes = std::sync::OnceLock::new();
    let fresh_primary = || -> Result<Vec<u8>, GenerateError> {
        if let Some(b) = primary_bytes.get() {
            return Ok(Clone::clone(b));
        }
        let b = primary_store
            .encode(format, &passwords.primary.password)
            .map_err(|e| input(dir, e.to_string(), None))?;
        Ok(primary_bytes.get_or_init(|| b).clone())
    };

    let mut truststore_entries = Vec::new();
    for (i, cert) in trusted_cas.iter().enumerate() {
        let alias = if i == 0 {
            resolve::ca_alias(topology, 1)
        } else {
            format!("{}-parent-{i}", resolve::ca_alias(topology, 1))
        };
        truststore_entries.push(Entry::Trusted {
            alias,
            cert: cert.to_vec(),
        });
    }
    for alias in resolve::primary_trust_aliases(topology) {
        truststore_entries.push(Entry::Trusted {
            alias,
            cert: primary.chain[0].clone(),
        });
    }
    let truststore = Keystore {
        entries: truststore_entries,
    };
    let trust_bytes = std::sync::OnceLock::new();
    let fresh_trust = || -> Result<Vec<u8>, GenerateError> {
        if let Some(b) = trust_bytes.get() {
            return Ok(Clone::clone(b));
        }
        let b = truststore
            .encode(format, &passwords.truststore.password)
            .map_err(|e| input(dir, e.to_string(), None))?;
        Ok(trust_bytes.get_or_init(|| b).clone())
    };
    // Bytes of an existing primary keystore / truststore that already say the right thing.
    let primary_keep = primary_item.decision == Decision::Keep;
    let mut primary_canonical: Option<Vec<u8>> = None;
    let mut trust_canonical: Option<Vec<u8>> = None;
    let want_type = store_type_of(format);
    for node in &topology.nodes {
        if primary_keep && primary_canonical.is_none() {
            let p = dir.join(layout::node_security(
                &node.name,
                &layout::primary_file(format),
            ));
            if let Ok(b) = std::fs::read(&p) {
                if StoreType::detect(&b) == Some(want_type)
                    && Keystore::decode(&b, &passwords.primary.password)
                        .is_ok_and(|(k, _)| same_entries(&k, &primary_store))
                {
                    primary_canonical = Some(b);
                }
            }
        }
        if trust_canonical.is_none() {
            let p = dir.join(layout::node_security(
                &node.name,
                &layout::truststore_file(format),
            ));
            if let Ok(b) = std::fs::read(&p) {
                if StoreType::detect(&b) == Some(want_type)
                    && Keystore::decode(&b, &passwords.truststore.password)
                        .is_ok_and(|(k, _)| same_entries(&k, &truststore))
                {
                    trust_canonical = Some(b);
                }
            }
        }
    }
    if primary_canonical.is_none() {
        primary_canonical = Some(fresh_primary()?);
    }
    if trust_canonical.is_none() {
        trust_canonical = Some(fresh_trust()?);
    }
    let primary_action = (
        decision_action(&primary_item.decision),
        primary_item.reason.clone(),
    );
    let tls_items: BTreeMap<&str, &(Item, Issued)> = issued
        .iter()
        .filter_map(|x| x.0.node.as_deref().map(|n| (n, x)))
        .collect();

    let node_files: Vec<Result<Vec<FileOut>, GenerateError>> = topology
        .nodes
        .par_iter()
        .map(|node| {
            let mut out = Vec::new();
            out.push(keystore_file(
                dir,
                layout::node_security(&node.name, &layout::primary_file(format)),
                ArtifactKind::PrimaryKeystore,
                node,
                &primary_store,
                primary_canonical.as_deref(),
                &fresh_primary,
                &passwords.primary.password,
                "primary",
                primary_action.clone(),
                format,
            )?);
            if let (Some((item, tls)), Some(tls_pw)) =
                (tls_items.get(node.name.as_str()), passwords.tls.as_ref())
            {
                let store = Keystore {
                    entries: vec![Entry::PrivateKey {
                        alias: node.name.clone(),
                        pkcs8: tls.key.pkcs8_der(),
                        chain: tls.chain.clone(),
                    }],
                };
                let path = layout::node_security(&node.name, &layout::tls_file(&node.name, format));
                let fresh = || {
                    store
                        .encode(format, &tls_pw.password)
                        .map_err(|e| input(dir, e.to_string(), None))
                };
                let reuse = tls
                    .kept_bytes
                    .as_ref()
                    .filter(|(p, _)| *p == path)
                    .map(|(_, b)| b.as_slice());
                out.push(keystore_file(
                    dir,
                    path.clone(),
                    ArtifactKind::TlsKeystore,
                    node,
                    &store,
                    reuse,
                    &fresh,
                    &tls_pw.password,
                    "tls",
                    (decision_action(&item.decision), item.reason.clone()),
                    format,
                )?);
            }
            let trust_action = (ActionKind::Keep, "unchanged".to_string());
            let mut t = keystore_file(
                dir,
                layout::node_security(&node.name, &layout::truststore_file(format)),
                ArtifactKind::Truststore,
                node,
                &truststore,
                trust_canonical.as_deref(),
                &fresh_trust,
                &passwords.truststore.password,
                "truststore",
                trust_action,
                format,
            )?;
            if t.action == ActionKind::Update {
                t.reason = "trusted certificates changed".into();
            }
            out.push(t);
            let mut toml = simple_file(
                dir,
                layout::node_toml(&node.name),
                ArtifactKind::NodeConfig,
                Access::Public,
                node_toml(topology, node).into_bytes(),
                "new node",
                Vec::new(),
            );
            toml.node = Some(node.name.clone());
            out.push(toml);
            Ok(out)
        })
        .collect();
    for f in node_files {
        files.extend(f?);
    }

    for (item, lb) in issued.iter().filter(|(i, _)| i.lb.is_some()) {
        let host = item.lb.clone().unwrap_or_default();
        let cert_pem = pem::certs_to_pem(lb.chain.iter().map(Vec::as_slice));
        let key_pem = lb.key.pkcs8_pem();
        let entry = vec![ArtifactEntry::new(None, "certificate", &lb.info)];
        let action = decision_action(&item.decision);
        let file = |file: LbFile, kind, access, bytes: Vec<u8>, entries| {
            let mut f = simple_file(
                dir,
                layout::lb_file(&host, file),
                kind,
                access,
                bytes,
                &item.reason,
                entries,
            );
            f.lb = Some(host.clone());
            if f.action != ActionKind::Keep && action != ActionKind::Keep {
                f.action = action;
                f.reason = item.reason.clone();
            }
            f
        };
        let mut key = file(
            LbFile::Key,
            ArtifactKind::LbKey,
            Access::Secret,
            key_pem.as_bytes().to_vec(),
            Vec::new(),
        );
        if item.decision == Decision::Keep && key.action == ActionKind::Update {
            // Never rewrite a key file that holds this key: its PEM form is not ours to normalise.
            (key.action, key.reason, key.bytes) = (ActionKind::Keep, "unchanged".into(), None);
        }
        files.push(key);
        files.push(file(
            LbFile::Cert,
            ArtifactKind::LbCert,
            Access::Public,
            cert_pem.clone().into_bytes(),
            entry.clone(),
        ));
        files.push(file(
            LbFile::Ca,
            ArtifactKind::LbCa,
            Access::Public,
            ca_pem.clone().into_bytes(),
            vec![ca_entry.clone()],
        ));
        let mut haproxy = cert_pem.into_bytes();
        haproxy.extend_from_slice(key_pem.as_bytes());
        files.push(file(
            LbFile::Haproxy,
            ArtifactKind::LbHaproxy,
            Access::Secret,
            haproxy,
            entry,
        ));
    }

    let generated: BTreeMap<String, Password> = [
        ("primary", Some(&passwords.primary)),
        ("tls", passwords.tls.as_ref()),
        ("truststore", Some(&passwords.truststore)),
    ]
    .into_iter()
    .filter_map(|(role, r)| {
        r.filter(|r| r.source == PasswordSource::SecretsFile)
            .map(|r| (role.to_string(), r.password.clone()))
    })
    .collect();
    if !generated.is_empty() {
        let text = Secrets {
            passwords: generated,
        }
        .to_toml();
        files.push(simple_file(
            dir,
            layout::SECRETS.into(),
            ArtifactKind::Secrets,
            Access::Secret,
            text.as_bytes().to_vec(),
            "generated passwords",
            Vec::new(),
        ));
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// The node's resolved settings (cli.md, node.toml).
pub fn node_toml(topology: &Topology, node: &Node) -> String {
    let format = topology.keystores.format;
    let ty = format.java_type();
    let sec = |file: &str| format!("{}/{file}", layout::SECURITY_DIR);
    let start = match node.profile.start_profile(topology.product) {
        Some(p) => format!("sh bin/wso2server.sh -Dprofile={p}"),
        None => "sh bin/wso2server.sh".into(),
    };
    let (tls_file, tls_alias) = if resolve::per_node_tls(topology) {
        (
            sec(&layout::tls_file(&node.name, format)),
            node.name.clone(),
        )
    } else {
        (
            sec(&layout::primary_file(format)),
            topology.keystores.primary_alias.clone(),
        )
    };
    let mut out = format!(
        "# Generated by apim-pki: the resolved settings of node {}.\n",
        node.name
    );
    out += &format!(
        "name = {}\nprofile = {}\nhost = {}\n",
        toml_str(&node.name),
        toml_str(node.profile.as_str()),
        toml_str(&node.host.to_string())
    );
    if let Some(ip) = node.ip {
        out += &format!("ip = {}\n", toml_str(&ip.to_string()));
    }
    out += &format!(
        "offset = {}\nstart = {}\n\n[keystores]\n",
        node.offset,
        toml_str(&start)
    );
    out += &format!(
        "primary = {{ file = {}, type = {}, alias = {} }}\n",
        toml_str(&sec(&layout::primary_file(format))),
        toml_str(ty),
        toml_str(&topology.keystores.primary_alias)
    );
    out += &format!(
        "tls = {{ file = {}, type = {}, alias = {} }}\n",
        toml_str(&tls_file),
        toml_str(ty),
        toml_str(&tls_alias)
    );
    out += &format!(
        "truststore = {{ file = {}, type = {} }}\n",
        toml_str(&sec(&layout::truststore_file(format))),
        toml_str(ty)
    );
    out
}

fn build_inventory(topology: &Topology, passwords: &Passwords, files: &[FileOut]) -> Inventory {
    let mut pw = BTreeMap::new();
    pw.insert("primary".to_string(), passwords.primary.source.clone());
    if let Some(t) = &passwords.tls {
        pw.insert("tls".to_string(), t.source.clone());
    }
    pw.insert(
        "truststore".to_string(),
        passwords.truststore.source.clone(),
    );
    let artifacts = files
        .iter()
        .map(|f| Artifact {
            path: f.path.clone(),
            kind: f.kind,
            node: f.node.clone(),
            load_balancer: f.lb.clone(),
            store_type: f.store_type.map(|t| t.java_type().to_string()),
            password: f.password.map(str::to_string),
            entries: f.entries.clone(),
        })
        .collect();
    Inventory {
        format_version: FORMAT_VERSION,
        name: topology.name.clone(),
        product: topology.product.as_str().into(),
        ca_stage: "stable".into(),
        passwords: pw,
        artifacts,
        topology: serde_json::to_value(topology).unwrap_or(serde_json::Value::Null),
    }
}

fn summarize(ca: &Ca, issued: &[(Item, Issued)], topology: &Topology) -> Vec<CertSummary> {
    let format = topology.keystores.format;
    let mut out = vec![CertSummary {
        label: "CA".into(),
        path: layout::CA_CERT.into(),
        names: Vec::new(),
        subject: ca.info().subject.clone(),
        not_after: ca.info().not_after,
    }];
    for (item, cert) in issued {
        let path = if item.label == "primary" {
            format!(
                "nodes/*/{}/{}",
                layout::SECURITY_DIR,
                layout::primary_file(format)
            )
        } else if let Some(n) = &item.node {
            layout::node_security(n, &layout::tls_file(n, format))
        } else {
            layout::lb_dir(&item.label)
        };
        out.push(CertSummary {
            label: item.label.clone(),
            path,
            names: cert.info.san_strings(),
            subject: cert.info.subject.clone(),
            not_after: cert.info.not_after,
        });
    }
    out
}
