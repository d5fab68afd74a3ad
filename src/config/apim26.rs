//! `apply` for API-M 2.6: installs one node's keystores into an unpacked product and writes the
//! settings of docs/apply-2.6.md into its files, changing those values and nothing
//! else. Everything is computed and validated first, then backed up, then written.

mod edit;
mod files;
mod rules;
mod stores;
mod truststore;
mod vault;

pub(crate) use stores::check_set_passwords;
pub(crate) use truststore::same_certificates;
pub(crate) use vault::{startup_password_file, vault_key, SECRET_CONF};

/// True for a 2.6 file the secure vault cannot cover (docs/secure-vault.md), where apply
/// leaves a set password in clear.
pub fn vault_not_covered(rel: &str) -> bool {
    vault::NOT_COVERED.iter().any(|(f, _)| *f == rel) || SITE_JSON.contains(&rel)
}

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::install;
use super::jsonedit;
use super::properties::Properties;
use crate::error::{FileError, FileProblem};
use crate::output::fsio::{Access, DirLock};
use crate::output::layout;
use crate::password::Password;
use crate::plan::{ConfigFile, NodePlan};
use crate::set::OpenedSet;
use crate::topology::Product;
use edit::{decode_xml, plan_xml, shown, Planned, XmlFile, XmlSource};
use files::{Ctx, API_MANAGER, CARBON, CATALINA, JNDI};
use stores::{Store, Stores};

/// Options of `apply`.
#[derive(Debug, Clone, Default)]
pub(crate) struct ApplyOptions {
    /// Say what would change; write nothing.
    pub dry_run: bool,
    /// Opens the node's existing truststore when carbon.xml keeps its password in secure vault.
    pub existing_truststore_password: Option<Password>,
}

/// One value changed in a file. Passwords are never shown.
#[derive(Debug, Clone, Serialize)]
pub struct ValueChange {
    pub what: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old: Option<String>,
    pub new: String,
}

/// What apply does to one file.
#[derive(Debug, Clone, Serialize)]
pub struct FileChange {
    /// Relative to the product home.
    pub file: String,
    pub action: FileAction,
    pub changes: Vec<ValueChange>,
}

/// What apply does to a file; written `edit`, `install`, `merge`, `merge (from T)` or
/// `replace (from F)` in reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(into = "String")]
pub enum FileAction {
    /// Values changed in place.
    Edit,
    /// A keystore copied from the set.
    Install,
    /// Merged with what the node has (a truststore; deployment.toml, from a profile template
    /// when `from` is given).
    Merge { from: Option<String> },
    /// Replaced by another file of the product, which is removed (the traffic manager's
    /// axis2_TM.xml and registry_TM.xml).
    Replace { from: String },
}

impl std::fmt::Display for FileAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = match self {
            FileAction::Edit => "edit".to_string(),
            FileAction::Install => "install".to_string(),
            FileAction::Merge { from: None } => "merge".to_string(),
            FileAction::Merge { from: Some(from) } => format!("merge (from {from})"),
            FileAction::Replace { from } => format!("replace (from {from})"),
        };
        f.pad(&text)
    }
}

impl From<FileAction> for String {
    fn from(a: FileAction) -> String {
        a.to_string()
    }
}

/// The result of apply.
#[derive(Debug, Clone, Serialize)]
pub struct ApplyReport {
    pub node: String,
    pub apim_home: PathBuf,
    pub dry_run: bool,
    pub files: Vec<FileChange>,
    /// Where the originals were copied, when anything changed.
    pub backup: Option<PathBuf>,
    /// Files that hold passwords, now mode 0600.
    pub secret_files: Vec<String>,
    /// Password elements secure vault holds: apply left them; re-encrypt their aliases with
    /// WSO2's cipher tool to the set's passwords.
    pub secure_vault: Vec<String>,
    /// What the secure vault step did beyond the plan: passwords left in clear where the vault
    /// cannot reach, entries it does not manage (docs/secure-vault.md).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub vault_notes: Vec<String>,
    /// Things the user should know that do not stop apply.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

pub(crate) use super::ApplyError;

/// The product line apply's XML rules are for, in messages.
pub(super) const V26: &str = "2.6";

const AXIS2: &str = "repository/conf/axis2/axis2.xml";
const AXIS2_TM: &str = "repository/conf/axis2/axis2_TM.xml";
const REGISTRY: &str = "repository/conf/registry.xml";
const REGISTRY_TM: &str = "repository/conf/registry_TM.xml";
const SITE_JSON: [&str; 3] = [
    "repository/deployment/server/jaggeryapps/publisher/site/conf/site.json",
    "repository/deployment/server/jaggeryapps/store/site/conf/site.json",
    "repository/deployment/server/jaggeryapps/admin/site/conf/site.json",
];

/// The set's node named `name`, as generate planned it (node.toml), and the set.
fn open(dir: &Path, name: &str) -> Result<(OpenedSet, NodePlan), ApplyError> {
    let set = OpenedSet::open(dir)?;
    if !set.view.nodes.iter().any(|n| n.name == name) {
        return Err(ApplyError::UnknownNode {
            path: dir.join(layout::INVENTORY),
            node: name.to_string(),
            known: set.view.nodes.iter().map(|n| n.name.clone()).collect(),
        });
    }
    if set.inventory.product != Product::Apim26 {
        return Err(ApplyError::NotApim26 {
            path: dir.join(layout::INVENTORY),
            product: set.inventory.product.as_str().to_string(),
            repository: set.dir.join(layout::node_dir(name)).join("repository"),
        });
    }
    let plan = set.node_plan(name)?;
    Ok((set, plan))
}

/// One writer at a time: the lock on the home (an interrupted apply is completed first).
fn lock(home: &Path) -> Result<DirLock, ApplyError> {
    let known: Vec<&Path> = [
        CARBON,
        CATALINA,
        AXIS2,
        REGISTRY,
        API_MANAGER,
        files::DATA_BRIDGE,
        files::ENDPOINT_CONFIG,
        // The secure vault's files, and the start-up password file at the home's root.
        rules::CIPHER_TEXT,
        "password-tmp",
    ]
    .into_iter()
    .chain(SITE_JSON)
    .filter_map(|f| Path::new(f).parent())
    .chain([Path::new(layout::SECURITY_DIR)])
    .collect();
    Ok(install::lock_home(home, &known)?)
}

/// Installs `node`'s keystores into `apim_home` and writes its configuration.
pub(crate) fn apply(
    dir: &Path,
    node_name: &str,
    apim_home: &Path,
    options: &ApplyOptions,
) -> Result<ApplyReport, ApplyError> {
    let (set, plan) = open(dir, node_name)?;
    if !apim_home.join(CARBON).exists() {
        return Err(ApplyError::home(
            apim_home.join(CARBON),
            FileProblem::Missing,
            V26,
        ));
    }
    let _lock = if options.dry_run {
        None
    } else {
        Some(lock(apim_home)?)
    };
    let stores = Stores::new(&set, &plan.keystores)?;
    stores::check_passwords(&set, &plan.name, &stores)?;
    let format = plan.keystores.truststore.format;
    let cx = Ctx {
        plan: &plan,
        stores: &stores,
    };
    let vault = RefCell::new(Vec::new());
    let mut planned = plan_config(apim_home, &cx, &vault)?;
    // Secure vault: the covered fields become aliases, cipher-text.properties ciphertexts.
    let mut vault_list = vault.into_inner();
    let vault_notes = vault::secure(&set, &plan.name, apim_home, &stores, &mut planned)?;
    if vault_notes.is_some() {
        vault_list.retain(|v| !vault::covers(v));
    }
    plan_keystores(&set, &plan.name, apim_home, &stores, &mut planned)?;
    planned.extend(truststore::merge(
        &set, &plan.name, apim_home, &stores, format, options,
    )?);
    let mut report = ApplyReport {
        node: plan.name.clone(),
        apim_home: apim_home.to_path_buf(),
        dry_run: options.dry_run,
        files: planned.iter().map(|p| p.change.clone()).collect(),
        backup: None,
        secret_files: planned
            .iter()
            .filter(|p| p.secret)
            .map(|p| p.rel.clone())
            .collect(),
        secure_vault: vault_list,
        vault_notes: vault_notes.unwrap_or_default(),
        warnings: Vec::new(),
    };
    let untyped = rules::untyped_files(apim_home, &planned);
    report
        .warnings
        .extend(rules::untyped_warning(format, &untyped));
    if options.dry_run || planned.is_empty() {
        return Ok(report);
    }
    report.backup = Some(commit(apim_home, &planned)?);
    Ok(report)
}

/// Every configuration file's new content, in the order the report lists them.
fn plan_config(
    home: &Path,
    cx: &Ctx,
    vault: &RefCell<Vec<String>>,
) -> Result<Vec<Planned>, ApplyError> {
    let xml = |rel: &'static str,
               required: bool,
               rule: fn(&mut XmlFile, &Ctx) -> Result<(), ApplyError>| {
        plan_xml(XmlSource::at(home, rel, required), vault, |x| rule(x, cx))
    };
    let is_tm = cx.plan.profile == crate::topology::Profile::TrafficManager;
    let mut planned: Vec<Planned> = Vec::new();
    planned.extend(xml(CARBON, true, files::carbon)?);
    planned.extend(xml(CATALINA, true, files::catalina)?);
    // axis2.xml (on a traffic manager, axis2_TM.xml takes its place first).
    let axis2 = XmlSource {
        read_from: if is_tm && home.join(AXIS2_TM).exists() {
            AXIS2_TM
        } else {
            AXIS2
        },
        ..XmlSource::at(home, AXIS2, true)
    };
    planned.extend(plan_xml(axis2, vault, |x| {
        rules::axis2(x, cx.stores, is_tm)
    })?);
    planned.extend(xml(rules::SECURE_WEBSOCKET, false, |x, cx| {
        rules::secure_websocket(x, cx.stores)
    })?);
    planned.extend(xml(rules::SSL_PROFILES, false, |x, cx| {
        rules::ssl_profiles(x, cx.stores)
    })?);
    if is_tm {
        planned.extend(registry_tm(home)?);
    }
    planned.extend(xml(API_MANAGER, true, files::api_manager)?);
    planned.extend(jndi(home, cx.plan)?);
    planned.extend(xml(files::BROKER, false, files::broker)?);
    planned.extend(xml(files::DATA_BRIDGE, false, files::data_bridge)?);
    planned.extend(xml(files::DATA_AGENT, false, files::data_agent)?);
    planned.extend(xml(files::IDENTITY, false, files::identity)?);
    planned.extend(endpoint_config(home, cx)?);
    for rel in SITE_JSON {
        planned.extend(site_json(home, rel)?);
    }
    planned.extend(xml(
        rules::WORKFLOW_CALLBACK,
        false,
        files::workflow_callback,
    )?);
    planned.extend(rules::plan_cipher_text(home, cx.stores)?);
    Ok(planned)
}

/// A traffic manager's registry_TM.xml replaces registry.xml.
fn registry_tm(home: &Path) -> Result<Option<Planned>, ApplyError> {
    if !home.join(REGISTRY_TM).exists() {
        return Ok(None);
    }
    let bytes = crate::input::read(home.join(REGISTRY_TM), crate::input::Limit::Config)
        .map_err(|e| ApplyError::home(home.join(REGISTRY_TM), FileProblem::Read(e), V26))?;
    Ok(Some(Planned {
        rel: REGISTRY.into(),
        bytes,
        secret: false,
        change: FileChange {
            file: REGISTRY.into(),
            action: FileAction::Replace {
                from: REGISTRY_TM.into(),
            },
            changes: Vec::new(),
        },
        consumes: Some(REGISTRY_TM.into()),
    }))
}

/// jndi.properties, where the plan has settings for it (it must exist then).
fn jndi(home: &Path, plan: &NodePlan) -> Result<Option<Planned>, ApplyError> {
    if plan.settings_for(ConfigFile::Jndi).next().is_none() {
        return Ok(None);
    }
    let bytes = crate::input::read(home.join(JNDI), crate::input::Limit::Config)
        .map_err(|e| ApplyError::home(home.join(JNDI), FileProblem::Read(e), V26))?;
    let mut props = Properties::from_bytes(&bytes);
    let changes = files::properties_settings(&mut props, plan, ConfigFile::Jndi);
    Ok(Planned::edit(JNDI, props.to_bytes(), false, changes))
}

/// EndpointConfig.properties, where the node has one.
fn endpoint_config(home: &Path, cx: &Ctx) -> Result<Option<Planned>, ApplyError> {
    let rel = files::ENDPOINT_CONFIG;
    let Ok(bytes) = crate::input::read(home.join(rel), crate::input::Limit::Config) else {
        return Ok(None);
    };
    let mut props = Properties::from_bytes(&bytes);
    let changes = files::endpoint_config(&mut props, cx);
    Ok(Planned::edit(rel, props.to_bytes(), true, changes))
}

/// A jaggery app's site.json: the SSO keystore settings of [`rules::SITE_JSON_SSO`].
fn site_json(home: &Path, rel: &str) -> Result<Option<Planned>, ApplyError> {
    let Ok(bytes) = crate::input::read(home.join(rel), crate::input::Limit::Config) else {
        return Ok(None);
    };
    let mut text = String::from_utf8(bytes)
        .map_err(|_| ApplyError::home(home.join(rel), FileProblem::NotUtf8, V26))?;
    let mut changes = Vec::new();
    for (key, value) in rules::SITE_JSON_SSO {
        let old =
            jsonedit::set_string(&mut text, "ssoConfiguration", key, value).map_err(|source| {
                ApplyError::Json {
                    path: home.join(rel),
                    source,
                }
            })?;
        if let Some(old) = old {
            changes.push(ValueChange {
                what: format!("ssoConfiguration.{key}"),
                old: Some(shown(key, &old)),
                new: shown(key, value),
            });
        }
    }
    Ok(Planned::edit(rel, text.into_bytes(), false, changes))
}

/// The primary and TLS keystores, installed as generated where the home's copy differs.
fn plan_keystores(
    set: &OpenedSet,
    node: &str,
    home: &Path,
    stores: &Stores,
    planned: &mut Vec<Planned>,
) -> Result<(), ApplyError> {
    for store in [&stores.primary, &stores.tls] {
        let from = set.dir.join(layout::node_security(node, &store.file));
        let bytes = crate::input::read(&from, crate::input::Limit::Keystore)
            .map_err(|e| ApplyError::SetFile(FileError::read(&from, e)))?;
        let rel = format!("{}/{}", layout::SECURITY_DIR, store.file);
        let current = crate::input::read(home.join(&rel), crate::input::Limit::Keystore).ok();
        if current.as_deref() != Some(&bytes[..]) && !planned.iter().any(|p| p.rel == rel) {
            planned.push(Planned {
                rel: rel.clone(),
                bytes,
                secret: true,
                change: FileChange {
                    file: rel,
                    action: FileAction::Install,
                    changes: Vec::new(),
                },
                consumes: None,
            });
        }
    }
    Ok(())
}

/// Backs up every original, then writes: one journaled commit (config::install).
fn commit(home: &Path, planned: &[Planned]) -> Result<PathBuf, ApplyError> {
    let files: Vec<install::Install> = planned
        .iter()
        .map(|p| install::Install {
            rel: &p.rel,
            bytes: &p.bytes,
            access: if p.secret {
                Access::Secret
            } else {
                Access::Public
            },
            consumes: p.consumes.as_deref(),
        })
        .collect();
    Ok(install::install(home, &files)?)
}

/// Renders the report for people: per file, what changes.
pub(crate) fn render_text(
    report: &ApplyReport,
    out: &mut dyn std::io::Write,
) -> std::io::Result<()> {
    let files = BTreeMap::from_iter(report.files.iter().map(|f| (f.file.as_str(), f)));
    if files.is_empty() {
        for w in &report.warnings {
            writeln!(out, "warning: {w}")?;
        }
        for n in &report.vault_notes {
            writeln!(out, "vault: {n}")?;
        }
        return writeln!(
            out,
            "{}: {} is up to date; nothing to change",
            report.node,
            report.apim_home.display()
        );
    }
    writeln!(
        out,
        "{} {} → {}",
        if report.dry_run {
            "Would apply"
        } else {
            "Applied"
        },
        report.node,
        report.apim_home.display()
    )?;
    for f in report.files.iter() {
        writeln!(out, "  {:<8} {}", f.action, f.file)?;
        for c in &f.changes {
            match &c.old {
                Some(old) => writeln!(out, "             {}: {old} → {}", c.what, c.new)?,
                None => writeln!(out, "             {}: {}", c.what, c.new)?,
            }
        }
    }
    for w in &report.warnings {
        writeln!(out, "warning: {w}")?;
    }
    for n in &report.vault_notes {
        writeln!(out, "vault: {n}")?;
    }
    if !report.secure_vault.is_empty() {
        writeln!(out, "Secure vault holds these passwords; apply left them. Re-encrypt each alias with WSO2's cipher tool to the set's password:")?;
        for v in &report.secure_vault {
            writeln!(out, "  {v}")?;
        }
    }
    if report.dry_run {
        writeln!(out, "dry run: nothing written")?;
    } else if let Some(b) = &report.backup {
        writeln!(
            out,
            "Originals backed up to {}; {} files hold passwords and are mode 0600.",
            b.display(),
            report.secret_files.len()
        )?;
    }
    Ok(())
}
