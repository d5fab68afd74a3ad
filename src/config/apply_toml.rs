//! `apply` for API-M 3.2, 4.0-4.4 and 4.5+: merges one node's generated deployment.toml into the
//! product's own `repository/conf/deployment.toml` (losslessly, `config::tomledit`), installs its
//! keystores and merges its truststore. On a home whose deployment.toml is still the one WSO2
//! ships, it starts from the profile's template first, as `profileSetup.sh -Dprofile=X` does.
//! Everything is read, merged and checked first; then the originals are backed up; then written.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::apim26::{same_certificates, ApplyError, FileAction, FileChange, ValueChange};
use super::deployment_toml::merge as rules;
use super::install;
use super::tomledit;
use crate::error::{Bug, FileError, FileProblem};
use crate::input::Limit;
use crate::keystore::{Entry, Keystore};
use crate::output::fsio::Access;
use crate::output::layout;
use crate::password::Password;
use crate::set::OpenedSet;
use crate::topology::{Product, Profile};

mod vault;

const CONF: &str = "repository/conf/deployment.toml";

/// The result of apply on a deployment.toml product.
#[derive(Debug, Clone, Serialize)]
pub struct TomlApplyReport {
    pub node: String,
    pub product: String,
    pub apim_home: PathBuf,
    pub dry_run: bool,
    /// What the merge started from: `deployment.toml`, or the profile template's path.
    pub base: String,
    pub files: Vec<FileChange>,
    /// The deployment.toml diff, `[secrets]` values masked.
    pub diff: String,
    /// Values apply left as they were (secrets the cipher tool already encrypted).
    pub kept: Vec<String>,
    /// `[secrets]` aliases still in plain text: the server refuses to start until WSO2's cipher
    /// tool encrypts them (`sh bin/ciphertool.sh -Dconfigure`).
    pub plain_secrets: Vec<String>,
    /// The command that starts the node and keeps this deployment.toml.
    pub start: String,
    /// True when nothing is left to do before `start`.
    pub ready: bool,
    pub notes: Vec<String>,
    pub backup: Option<PathBuf>,
}

/// The product a set was generated for.
pub(crate) fn set_product(set: &OpenedSet) -> Result<Product, ApplyError> {
    Ok(set.inventory.product)
}

/// One file to write.
struct Planned {
    rel: String,
    bytes: Vec<u8>,
    change: FileChange,
}

/// Where a file apply reads lives: in the set, or in the API-M home of a product line.
#[derive(Clone, Copy)]
enum Side {
    Set,
    Home(Product),
}

impl Side {
    fn error(self, path: &Path, problem: FileProblem) -> ApplyError {
        match self {
            Side::Set => ApplyError::SetFile(FileError::new(path, problem)),
            Side::Home(p) => ApplyError::home(path, problem, line(p)),
        }
    }
}

/// `3.2`, `4.x`, `4.5`: the product line in messages.
fn line(product: Product) -> &'static str {
    product.as_str().trim_start_matches("apim-")
}

fn read(path: &Path, side: Side) -> Result<Vec<u8>, ApplyError> {
    crate::input::read(path, Limit::Config).map_err(|e| side.error(path, FileProblem::Read(e)))
}

fn text(path: &Path, bytes: Vec<u8>, side: Side) -> Result<String, ApplyError> {
    String::from_utf8(bytes).map_err(|_| side.error(path, FileProblem::NotUtf8))
}

/// The node named `name` in the set, and its profile.
fn find_node(
    set: &OpenedSet,
    product: Product,
    name: &str,
) -> Result<(crate::set::NodeView, Profile), ApplyError> {
    let inventory = set.dir.join(layout::INVENTORY);
    let node = set
        .view
        .nodes
        .iter()
        .find(|n| n.name == name)
        .cloned()
        .ok_or_else(|| ApplyError::UnknownNode {
            path: inventory.clone(),
            node: name.to_string(),
            known: set.view.nodes.iter().map(|n| n.name.clone()).collect(),
        })?;
    let profile = node.profile;
    if !product.profiles().iter().any(|(p, _)| *p == profile) {
        return Err(ApplyError::UnknownProfile {
            path: inventory.clone(),
            node: name.to_string(),
            profile: profile.as_str().to_string(),
            product: product.as_str(),
        });
    }
    Ok((node, profile))
}

/// Merges `node_name`'s deployment.toml into `apim_home` and installs its keystores.
pub(crate) fn apply(
    dir: &Path,
    node_name: &str,
    apim_home: &Path,
    dry_run: bool,
) -> Result<TomlApplyReport, ApplyError> {
    let set = OpenedSet::open(dir)?;
    let product = set_product(&set)?;
    let (node, profile) = find_node(&set, product, node_name)?;
    let conf = apim_home.join(CONF);
    let home = Side::Home(product);
    if !conf.is_file() {
        return Err(home.error(&conf, FileProblem::Missing));
    }
    let _lock = if dry_run {
        None
    } else {
        Some(lock(apim_home)?)
    };
    super::apim26::check_set_passwords(&set, &node)?;
    let patch_path = dir.join(layout::deployment_toml(node_name));
    let patch = text(&patch_path, read(&patch_path, Side::Set)?, Side::Set)?;
    let current = text(&conf, read(&conf, home)?, home)?;
    let mut notes = Vec::new();
    let (base_name, base) = base_text(apim_home, product, profile, &current, &mut notes)?;
    let mut merged = merge(&base, &patch, &apim_home.join(&base_name), &conf)?;
    let vault = vault::seal(&set, &node.name, apim_home, &merged.text, &patch, &current)?;
    if let Some(v) = &vault {
        merged.text.clone_from(&v.text);
        merged.kept.retain(|k| !v.sealed.contains(k));
        notes.extend(v.notes.iter().cloned());
    }
    let mut planned = Vec::new();
    if merged.text != current {
        planned.push(conf_change(&merged, &base_name));
    }
    planned.extend(keystores(
        &set, &node.name, apim_home, &current, &mut notes,
    )?);
    planned.extend(vault.map(|v| v.files).unwrap_or_default());

    if let Err(e) = crate::vault::secrets_toml::check_layout(&merged.text) {
        notes.push(format!(
            "WSO2's cipher tool would damage this file ({e}): fix [secrets] before running it"
        ));
    }
    let plain = rules::plain_secrets(&merged.text);
    let mut report = TomlApplyReport {
        node: node.name.clone(),
        product: product.as_str().into(),
        apim_home: apim_home.to_path_buf(),
        dry_run,
        base: base_name,
        files: planned.iter().map(|p| p.change.clone()).collect(),
        diff: tomledit::diff(&masked(&current), &masked(&merged.text)),
        kept: merged.kept.clone(),
        ready: plain.is_empty(),
        plain_secrets: plain,
        start: product.start_command(profile),
        notes,
        backup: None,
    };
    if !dry_run && !planned.is_empty() {
        report.backup = Some(write(apim_home, &planned)?);
    }
    Ok(report)
}

/// `patch` (the node's generated deployment.toml) merged into `base` (read from `base_path`),
/// checked to be TOML still before anything is written to `conf`.
fn merge(
    base: &str,
    patch: &str,
    base_path: &Path,
    conf: &Path,
) -> Result<tomledit::Merged, ApplyError> {
    let merged =
        tomledit::merge(base, patch, &rules::rules()).map_err(|source| ApplyError::Merge {
            path: base_path.to_path_buf(),
            source,
        })?;
    toml::from_str::<toml::Table>(&merged.text).map_err(|e| {
        Bug::new(format!(
            "merging into {} made a file that is not valid TOML ({}); nothing was written",
            conf.display(),
            e.message()
        ))
    })?;
    Ok(merged)
}

/// One writer per home; completes what an interrupted apply left (config::install).
fn lock(apim_home: &Path) -> Result<crate::output::fsio::DirLock, ApplyError> {
    let known = [
        Path::new(CONF).parent().unwrap_or(Path::new(".")),
        Path::new(layout::SECURITY_DIR),
        Path::new(super::apim26::SECRET_CONF)
            .parent()
            .unwrap_or(Path::new(".")),
        // The start-up password file (password-tmp / password-persist) sits at the root.
        Path::new(""),
    ];
    Ok(install::lock_home(apim_home, &known)?)
}

/// deployment.toml as merged (from `base_name`: the file itself or a profile template), with
/// each key set or array entry dropped.
fn conf_change(merged: &tomledit::Merged, base_name: &str) -> Planned {
    let value = |what: &String, new: &str| ValueChange {
        what: what.clone(),
        old: None,
        new: new.into(),
    };
    let set = merged.changed.iter().map(|c| value(c, "set"));
    let removed = merged.dropped.iter().map(|d| value(d, "removed"));
    Planned {
        rel: CONF.into(),
        bytes: merged.text.clone().into_bytes(),
        change: FileChange {
            file: CONF.into(),
            action: FileAction::Merge {
                from: (base_name != CONF).then(|| base_name.to_string()),
            },
            changes: set.chain(removed).collect(),
        },
    }
}

/// The text to merge into: the profile template on a home whose deployment.toml is still WSO2's
/// shipped one (what `profileSetup.sh -Dprofile=X` would copy there), else the file itself.
fn base_text(
    home: &Path,
    product: Product,
    profile: Profile,
    current: &str,
    notes: &mut Vec<String>,
) -> Result<(String, String), ApplyError> {
    let Some(template) = rules::template(product, profile) else {
        return Ok((CONF.into(), current.to_string()));
    };
    if !rules::is_shipped(current.as_bytes()) {
        return Ok((CONF.into(), current.to_string()));
    }
    let path = home.join(&template);
    if !path.is_file() {
        notes.push(format!(
            "{template} is missing: merged into the shipped deployment.toml instead"
        ));
        return Ok((CONF.into(), current.to_string()));
    }
    notes.push(format!(
        "deployment.toml was WSO2's shipped file: started from {template}, as profileSetup.sh does"
    ));
    let side = Side::Home(product);
    Ok((template.clone(), text(&path, read(&path, side)?, side)?))
}

/// Masks `[secrets]` values, so a diff never shows a password.
fn masked(text: &str) -> String {
    let Ok(mut doc) = text.parse::<toml_edit::DocumentMut>() else {
        return text.to_string();
    };
    if let Some(secrets) = doc.get_mut("secrets").and_then(|s| s.as_table_like_mut()) {
        for (_, item) in secrets.iter_mut() {
            if let Some(v) = item.as_value_mut() {
                let decor = v.decor().clone();
                let shown = match v.as_str() {
                    Some(s) if rules::is_plain_secret(s) => {
                        format!("[plain text, {} characters]", s.len() - 2)
                    }
                    _ => "(encrypted)".to_string(),
                };
                *v = toml_edit::Value::from(shown);
                *v.decor_mut() = decor;
            }
        }
    }
    doc.to_string()
}

/// The node's primary and TLS keystores as generated, and its truststore merged into the one the
/// home's deployment.toml names now (the operator's other CAs stay).
fn keystores(
    set: &OpenedSet,
    node: &str,
    home: &Path,
    current: &str,
    notes: &mut Vec<String>,
) -> Result<Vec<Planned>, ApplyError> {
    let format = set.view.keystores.format;
    let (tls_file, _) = set.view.tls_file(node);
    let tls_file = tls_file.rsplit('/').next().unwrap_or_default().to_string();
    let mut files = vec![layout::primary_file(format)];
    if !files.contains(&tls_file) {
        files.push(tls_file);
    }
    let mut out = Vec::new();
    for file in files {
        let from = set.dir.join(layout::node_security(node, &file));
        let bytes = read(&from, Side::Set)?;
        let rel = format!("{}/{file}", layout::SECURITY_DIR);
        if crate::input::read(home.join(&rel), Limit::Keystore)
            .ok()
            .as_deref()
            != Some(&bytes[..])
        {
            out.push(Planned {
                rel: rel.clone(),
                bytes,
                change: FileChange {
                    file: rel,
                    action: FileAction::Install,
                    changes: Vec::new(),
                },
            });
        }
    }
    out.extend(truststore(set, node, home, current, notes)?);
    Ok(out)
}

/// The home's current `[truststore]` file and password (WSO2's defaults when absent), the
/// password resolved from a plain `[secrets]` value or an `$env{}` variable; `None` when apply
/// cannot read it (an encrypted secret).
fn current_truststore(current: &str) -> (String, Option<String>) {
    let table: Option<toml::Table> = current.parse().ok();
    let section = |name: &str| {
        table
            .as_ref()
            .and_then(|t| t.get(name))
            .and_then(|t| t.as_table())
    };
    let get = |t: &str, k: &str| {
        section(t)
            .and_then(|t| t.get(k))
            .and_then(|v| v.as_str())
            .map(str::to_string)
    };
    let file = get("truststore", "file_name").unwrap_or_else(|| "client-truststore.jks".into());
    let password = get("truststore", "password").unwrap_or_else(|| "wso2carbon".into());
    let password = if let Some(alias) = password
        .strip_prefix("$secret{")
        .and_then(|r| r.strip_suffix('}'))
    {
        get("secrets", alias)
            .filter(|v| rules::is_plain_secret(v))
            .map(|v| v[1..v.len() - 1].to_string())
    } else if let Some(var) = password
        .strip_prefix("$env{")
        .and_then(|r| r.strip_suffix('}'))
    {
        std::env::var(var).ok()
    } else {
        Some(password)
    };
    (file, password)
}

/// The node's truststore as the set made it.
struct SetTruststore {
    /// Its file name.
    file: String,
    password: Password,
    store: Keystore,
}

fn set_truststore(set: &OpenedSet, node: &str) -> Result<SetTruststore, ApplyError> {
    let file = layout::truststore_file(set.view.keystores.format);
    let from = set.dir.join(layout::node_security(node, &file));
    let bytes = read(&from, Side::Set)?;
    let password = set
        .password(crate::password::PasswordRole::Truststore)
        .cloned()
        .ok_or_else(|| ApplyError::NoPassword {
            path: set.dir.join(layout::INVENTORY),
            role: "truststore".into(),
        })?;
    let (store, _) =
        Keystore::decode(&bytes, &password).map_err(|source| ApplyError::SetKeystore {
            path: from.clone(),
            source,
        })?;
    Ok(SetTruststore {
        file,
        password,
        store,
    })
}

/// The home's current truststore's file name (as deployment.toml names it) and its trusted
/// certificates the set does not manage (`managed`): the operator's other CAs, which stay. None
/// when it is absent; none, with a note, when its password is a reference apply cannot read.
fn carried_over(
    home: &Path,
    current: &str,
    ours: &SetTruststore,
    managed: &[String],
    notes: &mut Vec<String>,
) -> Result<(String, Vec<Entry>), ApplyError> {
    let (old_file, old_password) = current_truststore(current);
    let old_path = home.join(layout::SECURITY_DIR).join(&old_file);
    let old_password = old_password
        .or_else(|| (old_file == ours.file).then(|| ours.password.expose().to_string()));
    let mut entries = Vec::new();
    match (crate::input::read(&old_path, Limit::Keystore), old_password) {
        (Ok(bytes), Some(pw)) => {
            let (old, _) = Keystore::decode(&bytes, &Password::new(pw)).map_err(|source| {
                ApplyError::ExistingTruststore {
                    path: old_path.clone(),
                    configured_in: "deployment.toml",
                    source,
                }
            })?;
            entries.extend(old.entries.into_iter().filter(|e| {
                matches!(e, Entry::Trusted { .. }) && !managed.iter().any(|m| m == e.alias())
            }));
        }
        (Ok(_), None) => notes.push(format!(
            "{old_file}: its password is a reference apply cannot read; its other CAs were not carried over"
        )),
        (Err(_), _) => {}
    }
    Ok((old_file, entries))
}

/// The set's truststore merged into the one the home's deployment.toml names now; `None` when
/// the home's copy already holds exactly those certificates.
fn truststore(
    set: &OpenedSet,
    node: &str,
    home: &Path,
    current: &str,
    notes: &mut Vec<String>,
) -> Result<Option<Planned>, ApplyError> {
    let ours = set_truststore(set, node)?;
    let managed: Vec<String> = ours
        .store
        .entries
        .iter()
        .map(|e| e.alias().to_string())
        .collect();
    let (old_file, mut entries) = carried_over(home, current, &ours, &managed, notes)?;
    let kept = entries.len();
    entries.extend(ours.store.entries.iter().cloned());
    let rel = format!("{}/{}", layout::SECURITY_DIR, ours.file);
    if let Ok(existing) = crate::input::read(home.join(&rel), Limit::Keystore) {
        if let Ok((now, _)) = Keystore::decode(&existing, &ours.password) {
            if same_certificates(&now.entries, &entries) {
                return Ok(None);
            }
        }
    }
    let bytes = Keystore { entries }
        .encode(set.view.keystores.format, &ours.password)
        .map_err(|e| Bug::new(format!("encoding the merged truststore failed: {e}")))?;
    Ok(Some(Planned {
        rel: rel.clone(),
        bytes,
        change: FileChange {
            file: rel,
            action: FileAction::Merge { from: None },
            changes: vec![ValueChange {
                what: "entries".into(),
                old: None,
                new: format!(
                    "{kept} kept from {old_file}, {} from the set",
                    managed.len()
                ),
            }],
        },
    }))
}

/// Backs up every original, then writes each file atomically (0600, owner kept).
fn write(home: &Path, planned: &[Planned]) -> Result<PathBuf, ApplyError> {
    let files: Vec<install::Install> = planned
        .iter()
        .map(|p| install::Install {
            rel: &p.rel,
            bytes: &p.bytes,
            access: Access::Secret,
            consumes: None,
        })
        .collect();
    Ok(install::install(home, &files)?)
}

/// Renders the report for people.
pub(crate) fn render_text(
    r: &TomlApplyReport,
    out: &mut dyn std::io::Write,
) -> std::io::Result<()> {
    if r.files.is_empty() {
        writeln!(
            out,
            "{}: {} is up to date; nothing to change",
            r.node,
            r.apim_home.display()
        )?;
    } else {
        let verb = if r.dry_run { "Would apply" } else { "Applied" };
        writeln!(
            out,
            "{verb} {} ({}) → {}",
            r.node,
            r.product,
            r.apim_home.display()
        )?;
        for f in &r.files {
            writeln!(out, "  {:<8} {}", f.action, f.file)?;
        }
    }
    for n in &r.notes {
        writeln!(out, "note: {n}")?;
    }
    if r.dry_run && !r.diff.is_empty() {
        writeln!(out, "--- {CONF}\n+++ {CONF} (merged)\n{}", r.diff)?;
    }
    for k in &r.kept {
        writeln!(out, "kept {k}: already encrypted; if it does not hold the set's password, re-encrypt it with the cipher tool")?;
    }
    if r.dry_run {
        writeln!(out, "dry run: nothing written")?;
    } else if let Some(b) = &r.backup {
        writeln!(out, "originals backed up to {}", b.display())?;
    }
    if r.ready {
        writeln!(out, "start with: {}", r.start)
    } else {
        writeln!(
            out,
            "NOT READY: [secrets] holds plain-text passwords ({}). WSO2 refuses to start until the cipher tool encrypts them:\n  sh bin/ciphertool.sh -Dconfigure\nthen start with: {}",
            r.plain_secrets.join(", "),
            r.start
        )
    }
}
