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

use crate::keystore::StoreType;
use crate::output::fsio::{self, Access, DirLock, FsError, LockError};
use crate::output::inventory::{Artifact, ArtifactEntry, ArtifactKind, PasswordSource};
use crate::output::journal::{Journal, Op, Staged};
use crate::output::layout::{self};
use crate::password::{Password, PasswordProblem};
use crate::pki::{self, Ca, CertInfo, CertSpec, Key, PkiError};
use crate::resolve;
use crate::topology::{KeyType, Topology};

mod decide;
mod files;
mod report;
mod state;

use decide::*;
use files::*;
pub use report::render_text;
use state::*;

/// What to do with DIR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Compute the actions, write nothing.
    Plan,
    /// Compute and write.
    Generate,
}

/// A step of the staged CA rollover (docs/runbooks/ca-rollover.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaStep {
    /// Create the next CA and trust it everywhere.
    Begin,
    /// Make the next CA the issuing one and re-certify every leaf under it.
    Finish,
    /// Stop trusting the previous CA.
    Retire,
}

/// Where a set is in a CA rollover; recorded in inventory.json.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaStage {
    Stable,
    /// `rotate --ca begin` ran: the next CA is trusted, leaves still come from the current one.
    Begun,
    /// `rotate --ca finish` ran: leaves come from the new CA, the previous one is still trusted.
    Finished,
}

impl CaStage {
    /// The name inventory.json and verify use.
    pub fn as_str(self) -> &'static str {
        match self {
            CaStage::Stable => "stable",
            CaStage::Begun => "rollover-begun",
            CaStage::Finished => "rollover-finished",
        }
    }

    fn parse(text: &str) -> Option<CaStage> {
        [CaStage::Stable, CaStage::Begun, CaStage::Finished]
            .into_iter()
            .find(|s| s.as_str() == text)
    }
}

/// What `rotate` forces after reconciling like generate.
#[derive(Debug, Clone, Default)]
pub struct Rotation {
    /// Nodes that get new keys.
    pub nodes: Vec<String>,
    /// Load balancers (by host) that get new keys.
    pub load_balancers: Vec<String>,
    /// Re-certify the primary key with a new validity (the key stays).
    pub primary_cert: bool,
    /// A CA rollover step.
    pub ca: Option<CaStep>,
    /// With none of the above: new keys for every node and load balancer.
    pub everything: bool,
}

impl Rotation {
    /// `rotate` with these options; with none, every node and load balancer is re-keyed.
    pub fn new(
        nodes: Vec<String>,
        load_balancers: Vec<String>,
        primary_cert: bool,
        ca: Option<CaStep>,
    ) -> Rotation {
        let everything =
            nodes.is_empty() && load_balancers.is_empty() && !primary_cert && ca.is_none();
        Rotation {
            nodes,
            load_balancers,
            primary_cert,
            ca,
            everything,
        }
    }

    fn rekeys_node(&self, name: &str) -> bool {
        self.everything || self.nodes.iter().any(|n| n == name)
    }

    fn rekeys_lb(&self, host: &str) -> bool {
        self.everything
            || self
                .load_balancers
                .iter()
                .any(|h| h.eq_ignore_ascii_case(host))
    }
}

/// Certificates a corporate CA signed, matched to the keys `csr` made (`import-signed`).
pub struct Imported {
    /// The issuing CA, then the certificates above it (intermediates, root), DER.
    pub ca_chain: Vec<Vec<u8>>,
    /// Per node name or load-balancer host: its key and its chain (leaf first).
    pub leaves: BTreeMap<String, (Key, Vec<Vec<u8>>)>,
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
    /// `rotate`: a new key and certificate in place of the file there (the old one goes to
    /// history/).
    Replace,
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
            ActionKind::Replace => "replace",
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
    /// What the run did, for the summary line: `Generated`, `Rotated` or `Imported`.
    pub verb: &'static str,
    /// The CA rollover step this run made, if any (for what to ship next).
    #[serde(skip)]
    pub ca_step: Option<CaStep>,
    /// True when the run first completed the writes of an interrupted run (its journal).
    pub recovered: bool,
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
    #[error("{message}")]
    Refused { message: String, hint: String },
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
    /// Only `rotate` can bring it in line (a changed key type or CA): `plan` lists it and
    /// leaves it as it is; `generate` refuses, naming every such artifact.
    NeedsRotate,
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
    run(topology, dir, mode, &Rotation::default(), None)
}

/// `rotate`: reconciles like generate, then forces what `rotation` asks (docs/commands.md).
pub fn rotate(
    topology: &Topology,
    dir: &Path,
    rotation: &Rotation,
    mode: Mode,
) -> Result<Outcome, GenerateError> {
    for name in &rotation.nodes {
        if topology.node(name).is_none() {
            let names: Vec<&str> = topology.nodes.iter().map(|n| n.name.as_str()).collect();
            return Err(GenerateError::Refused {
                message: format!("--node {name}: the topology has no such node"),
                hint: format!("nodes: {}", names.join(", ")),
            });
        }
    }
    for host in &rotation.load_balancers {
        if !topology
            .load_balancers
            .iter()
            .any(|lb| lb.host.to_string().eq_ignore_ascii_case(host))
        {
            let hosts: Vec<String> = topology
                .load_balancers
                .iter()
                .map(|lb| lb.host.to_string())
                .collect();
            return Err(GenerateError::Refused {
                message: format!("--load-balancer {host}: the topology has no such load balancer"),
                hint: format!(
                    "load balancers: {}",
                    if hosts.is_empty() {
                        "none".into()
                    } else {
                        hosts.join(", ")
                    }
                ),
            });
        }
    }
    if rotation.ca.is_some() && !topology.ca.is_generated() {
        return Err(GenerateError::Refused {
            message: "rotate --ca rolls over the CA apim-pki created; this topology brings its own ([pki.ca])".into(),
            hint: "point [pki.ca] at the new CA and run `apim-pki rotate` to re-key every node under it".into(),
        });
    }
    run(topology, dir, mode, rotation, None)
}

/// `import-signed`: assembles the set around certificates a corporate CA signed.
pub fn import(
    topology: &Topology,
    dir: &Path,
    imported: &Imported,
) -> Result<Outcome, GenerateError> {
    run(
        topology,
        dir,
        Mode::Generate,
        &Rotation::default(),
        Some(imported),
    )
}

/// The CAs of a set: the issuing one, and during a rollover the next or the previous one.
pub(super) struct Cas {
    current: Ca,
    generation: u32,
    stage: CaStage,
    next: Option<Ca>,
    previous: Option<Vec<u8>>,
}

/// `generate` stops before writing anything when an item needs `rotate`; the error names the
/// first such artifact and how many more there are (`plan` lists them all).
fn needs_rotate_error(items: &[Item]) -> Result<(), GenerateError> {
    let blocked: Vec<&Item> = items
        .iter()
        .filter(|i| i.decision == Decision::NeedsRotate)
        .collect();
    let Some(first) = blocked.first() else {
        return Ok(());
    };
    let path = first
        .existing
        .as_ref()
        .map_or_else(|| first.label.clone(), |e| e.path.clone());
    let mut reason = first.reason.clone();
    if blocked.len() > 1 {
        reason += &format!(
            "; {} more artifacts need rotate (`apim-pki plan` lists them all)",
            blocked.len() - 1
        );
    }
    Err(GenerateError::NeedsRotate { path, reason })
}

/// In a plan, shows the files of every item that needs `rotate` as `needs-rotate` (they are
/// left as they are): the TLS keystore of such a node, a load balancer's key, certificate and
/// bundle, every primary keystore.
fn mark_needs_rotate(files: &mut [FileOut], issued: &[(Item, Issued)]) {
    for (item, _) in issued
        .iter()
        .filter(|(i, _)| i.decision == Decision::NeedsRotate)
    {
        for f in files.iter_mut() {
            let ours = match (&item.node, &item.lb) {
                (Some(n), _) => f.kind == ArtifactKind::TlsKeystore && f.node.as_ref() == Some(n),
                (None, Some(h)) => {
                    f.lb.as_ref() == Some(h)
                        && matches!(
                            f.kind,
                            ArtifactKind::LbKey | ArtifactKind::LbCert | ArtifactKind::LbHaproxy
                        )
                }
                (None, None) => f.kind == ArtifactKind::PrimaryKeystore,
            };
            if ours {
                f.action = ActionKind::NeedsRotate;
                f.reason = item.reason.clone();
            }
        }
    }
}

/// Names the password (its role and its variable or secrets.toml) in a "does not open with
/// its password" error, and says what to do about it.
fn name_password_source(e: GenerateError, role: &str, r: &Resolved) -> GenerateError {
    match e {
        GenerateError::Input { path, message, .. } if message == state::WRONG_PASSWORD => {
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

fn refused(message: &str, hint: &str) -> GenerateError {
    GenerateError::Refused {
        message: message.into(),
        hint: hint.into(),
    }
}

fn run(
    topology: &Topology,
    dir: &Path,
    mode: Mode,
    rotation: &Rotation,
    imported: Option<&Imported>,
) -> Result<Outcome, GenerateError> {
    let command = Command::of(rotation, imported);
    let journal = Journal::new(dir, layout::JOURNAL);
    let (mut lock, recovered) = lock_existing(dir, mode, command.name(), &journal)?;
    let strays = std::sync::Mutex::new(Vec::new());
    let index = Dir::index(dir);
    let root = dir;
    let dir = Dir::new(root, &index);
    dir.check_sizes()?;
    let old = read_inventory(root)?;
    let secrets = read_secrets(root)?;
    let passwords = resolve_passwords(topology, old.as_ref(), &secrets)?;
    let now = OffsetDateTime::now_utc();
    let renew_window = Duration::days(i64::from(topology.pki.renew_before_days));

    // A set signed by a corporate CA is renewed through csr and import-signed, never here.
    let old_imported = old
        .as_ref()
        .is_some_and(|o| o.topology["ca"]["kind"] == "imported");
    if old_imported && imported.is_none() {
        return Err(refused(
            "this set's certificates are signed by your corporate CA; apim-pki cannot issue them",
            "renew or change them with `apim-pki csr TOPOLOGY --out DIR`, then `apim-pki import-signed DIR --certs SIGNED.pem`",
        ));
    }

    // The CA: loaded (with any rollover in progress), or created below; then the rollover step.
    let (mut ca, mut ca_item) = match imported {
        Some(imp) => {
            let (issuing, parents) = imp.ca_chain.split_first().ok_or_else(|| {
                input(dir, "no CA certificate among the signed certificates", None)
            })?;
            (
                Some(Ca::without_key(
                    issuing.clone(),
                    parents.to_vec(),
                    "the issuing CA",
                )?),
                None,
            )
        }
        None => load_ca(topology, dir, old.as_ref())?,
    };
    let mut stage = match old.as_ref() {
        Some(o) => CaStage::parse(&o.ca_stage).ok_or_else(|| {
            input(
                dir.join(layout::INVENTORY),
                format!("unknown ca_stage `{}`", o.ca_stage),
                None,
            )
        })?,
        None => CaStage::Stable,
    };
    let mut generation = old.as_ref().map_or(1, |o| o.ca_generation);
    let (mut next, mut previous) = load_rollover(root, stage)?;
    let mut recertify_all = None;
    match rotation.ca {
        None => {}
        Some(CaStep::Begin) => {
            if stage != CaStage::Stable || ca.is_none() {
                let (message, hint) = match (stage, ca.is_none()) {
                    (CaStage::Begun, _) => (
                        "rotate --ca begin: a CA rollover has already begun (ca_stage = rollover-begun in inventory.json)",
                        "ship every node's truststore, then run `rotate --ca finish`, then `rotate --ca retire`",
                    ),
                    (CaStage::Finished, _) => (
                        "rotate --ca begin: the last CA rollover is finished but the old CA is still trusted (ca_stage = rollover-finished in inventory.json)",
                        "run `rotate --ca retire` first; then a new rollover can begin",
                    ),
                    _ => (
                        "rotate --ca begin: the output directory has no CA yet",
                        "run `apim-pki generate TOPOLOGY --out DIR` first",
                    ),
                };
                return Err(refused(message, hint));
            }
            next = Some(Ca::create(
                &resolve::ca_cert(topology, generation + 1),
                Key::generate(topology.pki.key)?,
            )?);
            stage = CaStage::Begun;
        }
        Some(CaStep::Finish) => {
            let (Some(new_ca), Some(old_ca)) = (next.take(), ca.take()) else {
                return Err(refused(
                    "rotate --ca finish: no rollover has begun",
                    "run `rotate --ca begin` first, and ship the truststores to every node",
                ));
            };
            previous = Some(old_ca.cert_der().to_vec());
            ca = Some(new_ca);
            generation += 1;
            stage = CaStage::Finished;
            recertify_all = Some(format!(
                "CA rollover: re-certified under {}",
                resolve::ca_cert(topology, generation).subject.common_name
            ));
        }
        Some(CaStep::Retire) => {
            if stage != CaStage::Finished {
                let (message, hint) = if stage == CaStage::Begun {
                    (
                        "rotate --ca retire: the CA rollover has begun but is not finished (ca_stage = rollover-begun in inventory.json)",
                        "run `rotate --ca finish` first, ship every node's keystores, then retire",
                    )
                } else {
                    (
                        "rotate --ca retire: no CA rollover is in progress (ca_stage = stable in inventory.json)",
                        "a rollover starts with `rotate --ca begin`",
                    )
                };
                return Err(refused(message, hint));
            }
            previous = None;
            stage = CaStage::Stable;
        }
    }
    let cx = DecideCtx {
        ca: ca.as_ref(),
        now,
        renew_window,
    };
    let imported_leaf = |label: &str, path: String| -> Option<Existing> {
        let (key, chain) = imported?.leaves.get(label)?;
        let info = CertInfo::from_der(chain.first()?).ok()?;
        let key = Key::from_pkcs8_der(&key.pkcs8_der(), label).ok()?;
        Some(Existing {
            key,
            chain: chain.clone(),
            info,
            path,
            reusable: None,
        })
    };
    let force = |rekey: bool, recertify: bool| -> Option<Force> {
        if rekey {
            Some(Force::NewKey("rotate: new key and certificate".into()))
        } else if let Some(why) = &recertify_all {
            Some(Force::Recertify(why.clone()))
        } else if recertify {
            Some(Force::Recertify(
                "rotate --primary-cert: new validity, same key".into(),
            ))
        } else {
            None
        }
    };

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
        old.as_ref(),
        &strays,
    )
    .map_err(|e| name_password_source(e, "primary", &passwords.primary))?;
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
        Owner {
            label: "primary",
            node: None,
            lb: None,
        },
        resolve::primary_cert(topology),
        topology.keystores.primary_key,
        primary_existing,
        &cx,
        force(false, rotation.primary_cert),
    )?];
    if resolve::per_node_tls(topology) {
        let tls_resolved = passwords.tls.as_ref().unwrap_or(&passwords.primary);
        let tls_password = &tls_resolved.password;
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
                    old.as_ref(),
                    &strays,
                )
                .map_err(|e| name_password_source(e, "tls", tls_resolved))
            })
            .collect();
        for (node, existing) in topology.nodes.iter().zip(found) {
            items.push(decide(
                Owner {
                    label: &node.name,
                    node: Some(&node.name),
                    lb: None,
                },
                resolve::node_cert(topology, node),
                topology.pki.key,
                match imported_leaf(&node.name, format!("csr/{}.key", node.name)) {
                    Some(e) => Some(e),
                    None => existing?,
                },
                &cx,
                force(rotation.rekeys_node(&node.name), false),
            )?);
        }
    }
    for lb in &topology.load_balancers {
        let host = lb.host.to_string();
        let existing = match imported_leaf(&host, format!("csr/{host}.key")) {
            Some(e) => Some(e),
            None => read_lb_key(dir, &host)?,
        };
        items.push(decide(
            Owner {
                label: &host,
                node: None,
                lb: Some(&host),
            },
            resolve::lb_cert(topology, &lb.host),
            topology.pki.key,
            existing,
            &cx,
            force(rotation.rekeys_lb(&host), false),
        )?);
    }

    if mode != Mode::Plan {
        needs_rotate_error(&items)?;
    }
    // No key may be held twice (a keystore copied over another's name).
    let ca_keys: Vec<(&str, Vec<u8>)> = [
        (
            if topology.ca.is_generated() {
                layout::CA_KEY
            } else {
                "the key of [pki.ca]"
            },
            ca.as_ref().map(|c| c.info().public_key_der.clone()),
        ),
        (
            layout::CA_NEXT_KEY,
            next.as_ref().map(|c| c.info().public_key_der.clone()),
        ),
        (
            layout::CA_PREVIOUS_CERT,
            previous
                .as_deref()
                .and_then(|der| CertInfo::from_der(der).ok())
                .map(|i| i.public_key_der),
        ),
    ]
    .into_iter()
    .filter_map(|(path, spki)| spki.map(|k| (path, k)))
    .collect();
    refuse_shared_keys(&items, &ca_keys)?;

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
        ca = Some(Ca::create(&resolve::ca_cert(topology, generation), key)?);
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
    let cas = Cas {
        current: ca,
        generation,
        stage,
        next,
        previous,
    };

    // Files.
    let mut files = build_files(topology, dir, &cas, ca_item.as_ref(), &issued, &passwords)?;
    mark_needs_rotate(&mut files, &issued);
    let mut actions: Vec<Action> = files
        .iter()
        .map(|f| Action {
            action: if f.action == ActionKind::Create && dir.join(&f.path).exists() {
                ActionKind::Replace
            } else {
                f.action
            },
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

    let inventory = build_inventory(topology, &passwords, &files, &cas);
    let inventory_bytes = inventory.to_json();
    let inventory_changed =
        crate::input::read(dir.join(layout::INVENTORY), crate::input::Limit::SetFile)
            .ok()
            .as_deref()
            != Some(&inventory_bytes[..]);
    let certificates = summarize(&cas.current, &issued, topology);
    let generated_passwords = [
        ("primary", Some(&passwords.primary)),
        ("tls", passwords.tls.as_ref()),
        ("truststore", Some(&passwords.truststore)),
    ]
    .into_iter()
    .filter_map(|(role, r)| r.filter(|r| r.generated).map(|_| role.to_string()))
    .collect();

    let strays = strays.into_inner().unwrap_or_default();
    for path in &strays {
        actions.push(Action {
            action: ActionKind::Remove,
            path: path.clone(),
            node: None,
            load_balancer: None,
            reason: "does not open and inventory.json does not record it (left by an interrupted run); moved to history/".into(),
        });
    }

    if mode == Mode::Generate {
        if lock.is_none() {
            lock = Some(DirLock::acquire_new(root, layout::LOCK, command.name())?);
        }
        let stamp = fsio::unique_stamp(&root.join(layout::HISTORY), now);
        commit(
            dir,
            &journal,
            &stamp,
            &files,
            inventory_changed.then_some(&inventory_bytes[..]),
            &strays,
            &removed,
        )?;
        for a in &removed {
            remove_empty_parents(root, &a.path);
        }
    }
    Ok(Outcome {
        actions,
        certificates,
        generated_passwords,
        wrote: lock.is_some(),
        recovered,
        verb: command.verb(),
        ca_step: rotation.ca,
    })
}

fn store_type_of(format: crate::topology::KeystoreFormat) -> StoreType {
    format.container()
}

/// The writing command a run is, to name a lock holder and the summary's verb.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Command {
    Generate,
    Rotate,
    ImportSigned,
}

impl Command {
    fn of(rotation: &Rotation, imported: Option<&Imported>) -> Command {
        if imported.is_some() {
            Command::ImportSigned
        } else if rotation.ca.is_some()
            || rotation.primary_cert
            || rotation.everything
            || !rotation.nodes.is_empty()
            || !rotation.load_balancers.is_empty()
        {
            Command::Rotate
        } else {
            Command::Generate
        }
    }

    fn name(self) -> &'static str {
        match self {
            Command::Generate => "generate",
            Command::Rotate => "rotate",
            Command::ImportSigned => "import-signed",
        }
    }

    fn verb(self) -> &'static str {
        match self {
            Command::Generate => "Generated",
            Command::Rotate => "Rotated",
            Command::ImportSigned => "Imported",
        }
    }
}

/// Locks an existing DIR before reading it (generate), completes what an interrupted run left
/// (its journal, its temporaries), and refuses a symbolic link inside DIR. A new DIR is created
/// and locked only once every input checked out, so bad input never leaves a directory behind.
fn lock_existing(
    dir: &Path,
    mode: Mode,
    command: &str,
    journal: &Journal,
) -> Result<(Option<DirLock>, bool), GenerateError> {
    if !dir.is_dir() {
        return Ok((None, false));
    }
    let mut recovered = false;
    let lock = match mode {
        Mode::Generate => {
            let lock = DirLock::acquire(dir, layout::LOCK, command)?;
            recovered = journal.recover()?;
            fsio::remove_stale_temporaries(dir, true);
            Some(lock)
        }
        Mode::Plan if journal.path().exists() => {
            return Err(GenerateError::Refused {
                message: format!(
                    "{}: a run that was writing this set was interrupted (or is still running)",
                    journal.path().display()
                ),
                hint: "run `apim-pki generate` (or the interrupted command) again: it completes the interrupted run first".into(),
            });
        }
        Mode::Plan => None,
    };
    if let Some(link) = fsio::first_link_below(dir) {
        return Err(fsio::link_error(&link).into());
    }
    Ok((lock, recovered))
}

/// Writes the run's changes to DIR as one journaled commit: previous versions of replaced
/// files and files leaving the set go to history/STAMP/, then the new files take their place
/// (secrets.toml and the CA first, inventory.json last).
fn commit(
    dir: Dir,
    journal: &Journal,
    stamp: &str,
    files: &[FileOut],
    inventory: Option<&[u8]>,
    strays: &[String],
    removed: &[&Artifact],
) -> Result<(), GenerateError> {
    let history = |rel: &str| format!("{}/{stamp}/{rel}", layout::HISTORY);
    let mut ops: Vec<Op> = strays
        .iter()
        .map(String::as_str)
        .chain(removed.iter().map(|a| a.path.as_str()))
        .map(|rel| Op::Move {
            from: rel.to_string(),
            to: history(rel),
        })
        .collect();
    let rank = |f: &&FileOut| match f.kind {
        ArtifactKind::Secrets => 0,
        ArtifactKind::CaKey => 1,
        ArtifactKind::CaCert => 2,
        _ => 3,
    };
    let mut ordered: Vec<&FileOut> = files.iter().filter(|f| f.bytes.is_some()).collect();
    ordered.sort_by_key(rank);
    let staged: Vec<Result<(Option<Op>, Staged), FsError>> = ordered
        .par_iter()
        .map(|f| {
            let bytes = f.bytes.as_deref().unwrap_or_default();
            let copy = (dir.has(&f.path)
                && crate::input::read(dir.join(&f.path), crate::input::Limit::Keystore)
                    .is_ok_and(|previous| previous != bytes))
            .then(|| Op::Copy {
                from: f.path.clone(),
                to: history(&f.path),
            });
            Ok((copy, journal.stage(&f.path, bytes, f.access)?))
        })
        .chain(inventory.into_par_iter().map(|bytes| {
            Ok((
                None,
                journal.stage(layout::INVENTORY, bytes, Access::Public)?,
            ))
        }))
        .collect();
    let mut ok = Vec::with_capacity(staged.len());
    let mut failed = None;
    for s in staged {
        match s {
            Ok((copy, staged)) => {
                ops.extend(copy);
                ok.push(staged);
            }
            Err(e) => failed = failed.or(Some(e)),
        }
    }
    if let Some(e) = failed {
        journal.abandon(ok);
        return Err(e.into());
    }
    Ok(journal.commit(ok, ops)?)
}

fn remove_empty_parents(dir: &Path, rel: &str) {
    let mut path = dir.join(rel);
    while path.pop() && path != dir {
        if std::fs::remove_dir(&path).is_err() {
            break;
        }
    }
}
