//! `apply` for API-M 2.6: installs one node's keystores into an unpacked product and writes the
//! settings of docs/apply-2.6.md into its files, changing those values and nothing
//! else. Everything is computed and validated first, then backed up, then written.

mod rules;

pub use rules::start_command_26;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::install;
use super::jsonedit;
use super::properties::Properties;
use super::xmledit::{EditError, Edits, XmlDoc};
use crate::keystore::{Entry, Keystore, KeystoreError};
use crate::output::fsio::{Access, FsError, LockError};
use crate::output::layout;
use crate::password::Password;
use crate::resolve::settings::{AMQP_CREDENTIALS, OPTIONAL_PATHS};
use crate::set::{NodeView, OpenedSet, SetError};
use crate::topology::KeystoreFormat;

/// Options of `apply`.
#[derive(Debug, Clone, Default)]
pub struct ApplyOptions {
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
    /// `edit`, `install`, `merge` or `replace` (the traffic manager's swapped files).
    pub action: String,
    pub changes: Vec<ValueChange>,
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
    /// Things the user should know that do not stop apply.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// Why apply stopped before writing anything (exit 2).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApplyError {
    #[error(transparent)]
    Set(#[from] SetError),
    #[error("{}: {message}", path.display())]
    Input {
        path: PathBuf,
        message: String,
        hint: Option<String>,
    },
    #[error("{file}: {source}")]
    Element { file: String, source: EditError },
    #[error(transparent)]
    Fs(#[from] FsError),
    #[error(transparent)]
    Lock(#[from] LockError),
}

impl ApplyError {
    /// What the user can do about it.
    pub fn hint(&self) -> Option<String> {
        match self {
            ApplyError::Set(e) => e.hint(),
            ApplyError::Input { hint, .. } => hint.clone(),
            ApplyError::Element { .. } => Some("apply edits an unpacked API-M 2.6; is --apim-home the product's root, and is the file from 2.6?".into()),
            ApplyError::Fs(_) => None,
            ApplyError::Lock(LockError::Busy { .. }) => {
                Some("wait for the other apply to finish, then run this one again".into())
            }
            ApplyError::Lock(_) => None,
        }
    }
}

pub(super) fn input(
    path: impl Into<PathBuf>,
    message: impl Into<String>,
    hint: Option<&str>,
) -> ApplyError {
    ApplyError::Input {
        path: path.into(),
        message: message.into(),
        hint: hint.map(str::to_string),
    }
}

const CARBON: &str = "repository/conf/carbon.xml";
const CATALINA: &str = "repository/conf/tomcat/catalina-server.xml";
const AXIS2: &str = "repository/conf/axis2/axis2.xml";
const AXIS2_TM: &str = "repository/conf/axis2/axis2_TM.xml";
const REGISTRY: &str = "repository/conf/registry.xml";
const REGISTRY_TM: &str = "repository/conf/registry_TM.xml";
const API_MANAGER: &str = "repository/conf/api-manager.xml";
const JNDI: &str = "repository/conf/jndi.properties";
const BROKER: &str = "repository/conf/broker.xml";
const DATA_BRIDGE: &str = "repository/conf/data-bridge/data-bridge-config.xml";
const DATA_AGENT: &str = "repository/conf/data-bridge/data-agent-config.xml";
const ENDPOINT_CONFIG: &str = "repository/conf/identity/EndpointConfig.properties";
const IDENTITY: &str = "repository/conf/identity/identity.xml";
const SITE_JSON: [&str; 3] = [
    "repository/deployment/server/jaggeryapps/publisher/site/conf/site.json",
    "repository/deployment/server/jaggeryapps/store/site/conf/site.json",
    "repository/deployment/server/jaggeryapps/admin/site/conf/site.json",
];
/// Elements stock files ship commented out or leave out: created when missing.
const CREATED_WHEN_MISSING: [&str; 5] = [
    "HostName",
    "MgtHostName",
    "ThriftClientPort",
    "ThriftServerPort",
    "JMSConnectionDetails/ServiceURL",
];

/// A keystore as the node's files name it.
#[derive(Debug, Clone)]
struct Store {
    file: String,
    java_type: &'static str,
    password: Password,
    alias: Option<String>,
}

/// The node's three keystores.
struct Stores {
    primary: Store,
    tls: Store,
    trust: Store,
}

/// A file apply will write: its new bytes, whether it holds passwords, and what changed.
struct Planned {
    rel: String,
    bytes: Vec<u8>,
    secret: bool,
    change: FileChange,
    /// A file this one replaces and that is removed afterwards (axis2_TM.xml → axis2.xml).
    consumes: Option<String>,
}

/// True for a setting whose value is a password (never shown).
fn is_secret(what: &str) -> bool {
    let lower = what.to_ascii_lowercase();
    lower.contains("password")
        || lower.ends_with("keystorepass")
        || lower.contains(".pass'")
        || lower.starts_with("carbon.security.")
        || lower.starts_with("server.service.connector.")
}

fn shown(what: &str, value: &str) -> String {
    if is_secret(what) {
        return "********".into();
    }
    // An AMQP URL carries the broker's user and password: never show them.
    match value
        .find("amqp://")
        .and_then(|i| value[i..].find('@').map(|j| (i + 7, i + j)))
    {
        Some((start, end)) if start <= end => {
            format!("{}****:****{}", &value[..start], &value[end..])
        }
        _ => value.to_string(),
    }
}

/// The path in the form the file already uses, with `file` as the last component.
fn keystore_path(existing: Option<&str>, file: &str) -> String {
    const DIR: &str = "repository/resources/security/";
    match existing.and_then(|e| e.find(DIR).map(|i| &e[..i + DIR.len()])) {
        Some(prefix) => format!("{prefix}{file}"),
        None => format!("${{carbon.home}}/{DIR}{file}"),
    }
}

/// Decodes a file's bytes as its XML declaration says (UTF-8 or ISO-8859-1).
fn decode_xml(bytes: &[u8], rel: &str, home: &Path) -> Result<(String, bool), ApplyError> {
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).to_ascii_lowercase();
    if head.contains("encoding=\"iso-8859-1\"") || head.contains("encoding='iso-8859-1'") {
        return Ok((bytes.iter().map(|b| char::from(*b)).collect(), true));
    }
    String::from_utf8(bytes.to_vec())
        .map(|s| (s, false))
        .map_err(|_| input(home.join(rel), "is not UTF-8 text", None))
}

fn encode_xml(text: &str, latin1: bool) -> Vec<u8> {
    if latin1 {
        // xmledit writes characters outside the declared encoding as &#N; references.
        text.chars()
            .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?'))
            .collect()
    } else {
        text.as_bytes().to_vec()
    }
}

/// The edits of one XML file, collected and then applied.
struct XmlFile<'d> {
    rel: &'static str,
    doc: &'d XmlDoc,
    edits: Edits<'d>,
    /// Password elements left alone because secure vault holds them.
    vault: Vec<String>,
}

impl XmlFile<'_> {
    fn err(&self, source: EditError) -> ApplyError {
        ApplyError::Element {
            file: self.rel.to_string(),
            source,
        }
    }

    fn set(&mut self, path: &str, value: &str) -> Result<(), ApplyError> {
        // A password in secure vault stays there: the element holds an alias, and the value
        // must be re-encrypted with WSO2's cipher tool.
        if is_secret(path) && self.doc.is_secured(path) {
            let alias = self
                .doc
                .attrs(path, "secretAlias")
                .into_iter()
                .next()
                .unwrap_or_default();
            self.vault
                .push(format!("{}: {path} (alias {alias})", self.rel));
            return Ok(());
        }
        let created = CREATED_WHEN_MISSING.iter().any(|c| path.ends_with(c));
        let result = if created {
            self.edits.ensure_text(path, value)
        } else {
            self.edits.set_text(path, value)
        };
        result.map_err(|e| self.err(e))
    }

    fn set_attr(&mut self, path: &str, attr: &str, value: &str) -> Result<(), ApplyError> {
        self.edits
            .set_attr(path, attr, value)
            .map_err(|e| self.err(e))
    }

    /// Location, Type, Password (and KeyAlias / KeyPassword) of a keystore element.
    fn store(
        &mut self,
        base: &str,
        store: &Store,
        location: &str,
        type_: &str,
        key_elements: bool,
    ) -> Result<(), ApplyError> {
        let existing = self.doc.texts(&format!("{base}/{location}"));
        self.set(
            &format!("{base}/{location}"),
            &keystore_path(existing.first().map(String::as_str), &store.file),
        )?;
        self.set(&format!("{base}/{type_}"), store.java_type)?;
        self.set(&format!("{base}/Password"), store.password.expose())?;
        if key_elements {
            if let Some(alias) = &store.alias {
                self.set(&format!("{base}/KeyAlias"), alias)?;
            }
            self.set(&format!("{base}/KeyPassword"), store.password.expose())?;
        }
        Ok(())
    }
}

/// Reads, edits and plans one XML file; `None` when it is absent and optional, or unchanged.
fn plan_xml(
    home: &Path,
    rel: &'static str,
    read_from: &str,
    required: bool,
    vault: &std::cell::RefCell<Vec<String>>,
    edit: impl FnOnce(&mut XmlFile) -> Result<(), ApplyError>,
) -> Result<Option<Planned>, ApplyError> {
    let bytes = match crate::input::read(home.join(read_from), crate::input::Limit::Config) {
        Ok(b) => b,
        Err(_) if !required => return Ok(None),
        Err(e) => {
            return Err(input(
                home.join(read_from),
                format!("cannot read: {e}"),
                Some("is --apim-home an unpacked API-M 2.6?"),
            ))
        }
    };
    let (text, latin1) = decode_xml(&bytes, read_from, home)?;
    let doc = XmlDoc::parse(&text).map_err(|e| {
        input(
            home.join(read_from),
            format!("not well-formed XML: {e}"),
            None,
        )
    })?;
    let mut file = XmlFile {
        rel,
        doc: &doc,
        edits: Edits::new(&doc),
        vault: Vec::new(),
    };
    edit(&mut file)?;
    vault.borrow_mut().extend(std::mem::take(&mut file.vault));
    let (new_text, changes) = file.edits.apply().map_err(|e| ApplyError::Element {
        file: rel.to_string(),
        source: e,
    })?;
    let consumes = (read_from != rel).then(|| read_from.to_string());
    if changes.is_empty() && consumes.is_none() {
        return Ok(None);
    }
    let changes = changes
        .into_iter()
        .map(|c| ValueChange {
            old: c.old.map(|o| shown(&c.path, &o)),
            new: shown(&c.path, &c.new),
            what: c.path,
        })
        .collect();
    let action = if consumes.is_some() {
        format!("replace (from {read_from})")
    } else {
        "edit".into()
    };
    Ok(Some(Planned {
        rel: rel.to_string(),
        bytes: encode_xml(&new_text, latin1),
        secret: true,
        change: FileChange {
            file: rel.into(),
            action,
            changes,
        },
        consumes,
    }))
}

/// Replaces the `USER:PASS` placeholder with the credentials of the AMQP URL being replaced.
fn with_amqp_credentials(value: &str, existing: Option<&str>) -> String {
    if !value.contains(AMQP_CREDENTIALS) {
        return value.to_string();
    }
    let creds = existing
        .and_then(|e| e.strip_prefix("amqp://"))
        .and_then(|rest| rest.split_once('@'))
        .map(|(c, _)| c.to_string())
        .unwrap_or_else(|| "${admin.username}:${admin.password}".into());
    value.replacen(AMQP_CREDENTIALS, &creds, 1)
}

/// Reads node.toml's `[settings]`: `"file: path" → value`.
fn node_settings(set: &OpenedSet, node: &str) -> Result<Vec<(String, String, String)>, ApplyError> {
    let rel = layout::node_toml(node);
    let path = set.dir.join(&rel);
    let text = crate::input::read_to_string(&path, crate::input::Limit::SetFile).map_err(|e| {
        input(
            &path,
            format!("cannot read: {e}"),
            Some("run `apim-pki generate` again to write it"),
        )
    })?;
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        input(&path, format!("not valid TOML: {}", e.message()), None)
    })?;
    let mut out = Vec::new();
    if let Some(settings) = table.get("settings").and_then(|s| s.as_table()) {
        for (key, value) in settings {
            let (file, setting) = key.split_once(": ").ok_or_else(|| {
                input(&path, format!("setting `{key}` is not `file: path`"), None)
            })?;
            let value = value
                .as_str()
                .ok_or_else(|| input(&path, format!("setting `{key}` is not a string"), None))?;
            out.push((file.to_string(), setting.to_string(), value.to_string()));
        }
    }
    Ok(out)
}

fn stores(set: &OpenedSet, node: &NodeView) -> Result<Stores, ApplyError> {
    let view = &set.view;
    let format = view.keystores.format;
    let pw = |role: &str| {
        set.password(role).cloned().ok_or_else(|| {
            input(
                set.dir.join(layout::INVENTORY),
                format!("no {role} password recorded"),
                None,
            )
        })
    };
    let primary = Store {
        file: layout::primary_file(format),
        java_type: format.java_type(),
        password: pw("primary")?,
        alias: Some(view.keystores.primary_alias.clone()),
    };
    let tls = if view.per_node_tls() {
        Store {
            file: layout::tls_file(&node.name, format),
            java_type: format.java_type(),
            password: pw("tls")?,
            alias: Some(node.name.clone()),
        }
    } else {
        primary.clone()
    };
    let trust = Store {
        file: layout::truststore_file(format),
        java_type: format.java_type(),
        password: pw("truststore")?,
        alias: None,
    };
    Ok(Stores {
        primary,
        tls,
        trust,
    })
}

/// Before anything is written: every keystore of the set that apply installs or merges opens
/// with the password apply writes into the node's files, and so does each key entry (Tomcat and
/// WSO2 use the store password as the key password). A password variable that differs from the
/// one the set was made with would otherwise leave a node that cannot start.
/// Checks, before anything is written, that every keystore of `node` in the set opens with the
/// password a node's configuration will carry (shared by every product's apply).
pub(crate) fn check_set_passwords(set: &OpenedSet, node: &NodeView) -> Result<(), ApplyError> {
    check_passwords(set, node, &stores(set, node)?)
}

fn check_passwords(set: &OpenedSet, node: &NodeView, stores: &Stores) -> Result<(), ApplyError> {
    let tls_role = if set.view.per_node_tls() {
        "tls"
    } else {
        "primary"
    };
    let checked = [
        ("primary", &stores.primary),
        (tls_role, &stores.tls),
        ("truststore", &stores.trust),
    ];
    // In shared mode the TLS keystore is the primary: check it once.
    for (i, (role, store)) in checked.into_iter().enumerate() {
        if i == 1 && tls_role == "primary" {
            continue;
        }
        let path = set.dir.join(layout::node_security(&node.name, &store.file));
        let bytes = crate::input::read(&path, crate::input::Limit::Keystore)
            .map_err(|e| input(&path, format!("cannot read: {e}"), None))?;
        let source = set
            .inventory
            .passwords
            .get(role)
            .or_else(|| set.inventory.passwords.get("primary"))
            .map_or_else(|| format!("the {role} password"), ToString::to_string);
        let hint = Some(
            "set the variable to the password the set was made with (`apim-pki verify DIR` checks the same)",
        );
        match Keystore::decode(&bytes, &store.password) {
            Ok(_) => {}
            Err(KeystoreError::WrongPassword) => {
                let store_opens =
                    crate::keystore::jks::JksKeyStore::from_bytes(&bytes, store.password.expose())
                        .is_ok();
                let what = if store_opens {
                    "its key entry does not open with"
                } else {
                    "does not open with"
                };
                return Err(input(
                    &path,
                    format!("{what} the {role} password from {source}, which apply would write into the node's files: the node could not start"),
                    hint,
                ));
            }
            Err(e) => {
                return Err(input(
                    &path,
                    e.to_string(),
                    Some("run `apim-pki verify` on the set"),
                ))
            }
        }
    }
    Ok(())
}

/// Installs `node`'s keystores into `apim_home` and writes its configuration.
pub fn apply(
    dir: &Path,
    node_name: &str,
    apim_home: &Path,
    options: &ApplyOptions,
) -> Result<ApplyReport, ApplyError> {
    let set = OpenedSet::open(dir)?;
    let node = set
        .view
        .nodes
        .iter()
        .find(|n| n.name == node_name)
        .cloned()
        .ok_or_else(|| {
            let names: Vec<&str> = set.view.nodes.iter().map(|n| n.name.as_str()).collect();
            input(
                dir.join(layout::INVENTORY),
                format!("the set has no node `{node_name}`"),
                Some(&format!("nodes: {}", names.join(", "))),
            )
        })?;
    if set.inventory.product != "apim-2.6" {
        return Err(input(
            dir.join(layout::INVENTORY),
            format!(
                "apply edits API-M 2.6's XML files; this set is for {}",
                set.inventory.product
            ),
            Some(&format!(
                "copy {} into the product home: it holds deployment.toml and the keystores",
                set.dir
                    .join(layout::node_dir(node_name))
                    .join("repository")
                    .display()
            )),
        ));
    }
    if !apim_home.join(CARBON).exists() {
        return Err(input(apim_home.join(CARBON), "not found", Some("--apim-home must be the root of an unpacked API-M 2.6 (the directory holding bin/ and repository/)")));
    }
    // One writer at a time; an interrupted apply is completed first.
    let _lock = if options.dry_run {
        None
    } else {
        let known: Vec<&Path> = [
            CARBON,
            CATALINA,
            AXIS2,
            REGISTRY,
            API_MANAGER,
            DATA_BRIDGE,
            ENDPOINT_CONFIG,
        ]
        .into_iter()
        .chain(SITE_JSON)
        .filter_map(|f| Path::new(f).parent())
        .chain([Path::new(layout::SECURITY_DIR)])
        .collect();
        Some(install::lock_home(apim_home, &known)?)
    };
    let stores = stores(&set, &node)?;
    check_passwords(&set, &node, &stores)?;
    let settings = node_settings(&set, &node.name)?;
    let format = set.view.keystores.format;
    let mut planned: Vec<Planned> = Vec::new();
    let vault = std::cell::RefCell::new(Vec::new());

    // carbon.xml
    let carbon_settings: Vec<&(String, String, String)> = settings
        .iter()
        .filter(|(f, _, _)| f == "carbon.xml")
        .collect();
    planned.extend(plan_xml(apim_home, CARBON, CARBON, true, &vault, |x| {
        x.store(
            "Server/Security/KeyStore",
            &stores.primary,
            "Location",
            "Type",
            true,
        )?;
        if x.doc.count("Server/Security/InternalKeyStore") > 0 {
            x.store(
                "Server/Security/InternalKeyStore",
                &stores.primary,
                "Location",
                "Type",
                true,
            )?;
        }
        x.store(
            "Server/Security/TrustStore",
            &stores.trust,
            "Location",
            "Type",
            false,
        )?;
        for (_, path, value) in &carbon_settings {
            x.set(&format!("Server/{path}"), value)?;
        }
        Ok(())
    })?);

    // catalina-server.xml: the HTTPS connector serves the TLS keystore.
    planned.extend(plan_xml(
        apim_home,
        CATALINA,
        CATALINA,
        true,
        &vault,
        |x| {
            let connector = "Server/Service/Connector[@port='9443']";
            if x.doc.count(connector) == 0 {
                return Err(x.err(EditError::NotFound {
                    path: connector.into(),
                }));
            }
            let existing = x.doc.attrs(connector, "keystoreFile");
            x.set_attr(
                connector,
                "keystoreFile",
                &keystore_path(existing.first().map(String::as_str), &stores.tls.file),
            )?;
            x.set_attr(connector, "keystorePass", stores.tls.password.expose())?;
            x.set_attr(connector, "keystoreType", stores.tls.java_type)
        },
    )?);

    // axis2.xml (on a traffic manager, axis2_TM.xml takes its place first).
    let is_tm = node.profile == "traffic-manager";
    let axis2_source = if is_tm && apim_home.join(AXIS2_TM).exists() {
        AXIS2_TM
    } else {
        AXIS2
    };
    planned.extend(plan_xml(
        apim_home,
        AXIS2,
        axis2_source,
        true,
        &vault,
        |x| rules::axis2(x, &stores, is_tm),
    )?);
    planned.extend(plan_xml(
        apim_home,
        rules::SECURE_WEBSOCKET,
        rules::SECURE_WEBSOCKET,
        false,
        &vault,
        |x| rules::secure_websocket(x, &stores),
    )?);
    planned.extend(plan_xml(
        apim_home,
        rules::SSL_PROFILES,
        rules::SSL_PROFILES,
        false,
        &vault,
        |x| rules::ssl_profiles(x, &stores),
    )?);
    if is_tm && apim_home.join(REGISTRY_TM).exists() {
        let bytes = crate::input::read(apim_home.join(REGISTRY_TM), crate::input::Limit::Config)
            .map_err(|e| {
                input(
                    apim_home.join(REGISTRY_TM),
                    format!("cannot read: {e}"),
                    None,
                )
            })?;
        planned.push(Planned {
            rel: REGISTRY.into(),
            bytes,
            secret: false,
            change: FileChange {
                file: REGISTRY.into(),
                action: format!("replace (from {REGISTRY_TM})"),
                changes: Vec::new(),
            },
            consumes: Some(REGISTRY_TM.into()),
        });
    }

    // api-manager.xml: the profile's peers and switches.
    let am_settings: Vec<&(String, String, String)> = settings
        .iter()
        .filter(|(f, _, _)| f == "api-manager.xml")
        .collect();
    planned.extend(plan_xml(
        apim_home,
        API_MANAGER,
        API_MANAGER,
        true,
        &vault,
        |x| {
            for (_, path, value) in &am_settings {
                let mut full = format!("APIManager/{path}");
                // Older files keep the URL groups inside DataPublisher.
                if let Some(rest) = path.strip_prefix("ThrottlingConfigurations/TrafficManager/") {
                    let old_layout =
                        format!("APIManager/ThrottlingConfigurations/DataPublisher/{rest}");
                    if x.doc.count(&full) == 0 && x.doc.count(&old_layout) > 0 {
                        full = old_layout;
                    }
                }
                if OPTIONAL_PATHS.contains(&path.as_str()) && x.doc.count(&full) == 0 {
                    continue;
                }
                let existing = x.doc.texts(&full);
                x.set(
                    &full,
                    &with_amqp_credentials(value, existing.first().map(String::as_str)),
                )?;
            }
            Ok(())
        },
    )?);

    // jndi.properties (publisher).
    let jndi_settings: Vec<&(String, String, String)> = settings
        .iter()
        .filter(|(f, _, _)| f == "jndi.properties")
        .collect();
    if !jndi_settings.is_empty() {
        let bytes = crate::input::read(apim_home.join(JNDI), crate::input::Limit::Config)
            .map_err(|e| input(apim_home.join(JNDI), format!("cannot read: {e}"), None))?;
        let mut props = Properties::from_bytes(&bytes);
        let mut changes = Vec::new();
        for (_, key, value) in jndi_settings {
            let value = with_amqp_credentials(value, props.get(key));
            if let Some(c) = props.set(key, &value) {
                changes.push(ValueChange {
                    what: c.key,
                    old: c.old,
                    new: c.new,
                });
            }
        }
        if !changes.is_empty() {
            planned.push(Planned {
                rel: JNDI.into(),
                bytes: props.to_bytes(),
                secret: false,
                change: FileChange {
                    file: JNDI.into(),
                    action: "edit".into(),
                    changes,
                },
                consumes: None,
            });
        }
    }

    // Other files that hold keystore passwords, where the profile left them.
    planned.extend(plan_xml(apim_home, BROKER, BROKER, false, &vault, |x| {
        for ssl in x.doc.paths_named("sslConnection") {
            let existing = x.doc.texts(&format!("{ssl}/keyStore/location"));
            x.set(
                &format!("{ssl}/keyStore/location"),
                &keystore_path(existing.first().map(String::as_str), &stores.tls.file),
            )?;
            x.set(
                &format!("{ssl}/keyStore/password"),
                stores.tls.password.expose(),
            )?;
            let existing = x.doc.texts(&format!("{ssl}/trustStore/location"));
            x.set(
                &format!("{ssl}/trustStore/location"),
                &keystore_path(existing.first().map(String::as_str), &stores.trust.file),
            )?;
            x.set(
                &format!("{ssl}/trustStore/password"),
                stores.trust.password.expose(),
            )?;
        }
        Ok(())
    })?);
    planned.extend(plan_xml(
        apim_home,
        DATA_BRIDGE,
        DATA_BRIDGE,
        false,
        &vault,
        |x| {
            for p in x.doc.paths_named("keyStoreLocation") {
                let existing = x.doc.texts(&p);
                x.set(
                    &p,
                    &keystore_path(existing.first().map(String::as_str), &stores.tls.file),
                )?;
            }
            for p in x.doc.paths_named("keyStorePassword") {
                x.set(&p, stores.tls.password.expose())?;
            }
            Ok(())
        },
    )?);
    planned.extend(plan_xml(
        apim_home,
        DATA_AGENT,
        DATA_AGENT,
        false,
        &vault,
        |x| {
            // WSO2's data agent spells these `TrustSore` / `TrustSorePassword`; accept both.
            for p in x
                .doc
                .paths_named("TrustSore")
                .into_iter()
                .chain(x.doc.paths_named("TrustStore"))
            {
                let existing = x.doc.texts(&p);
                x.set(
                    &p,
                    &keystore_path(existing.first().map(String::as_str), &stores.trust.file),
                )?;
            }
            for p in x
                .doc
                .paths_named("TrustSorePassword")
                .into_iter()
                .chain(x.doc.paths_named("TrustStorePassword"))
            {
                x.set(&p, stores.trust.password.expose())?;
            }
            Ok(())
        },
    )?);
    planned.extend(plan_xml(
        apim_home,
        IDENTITY,
        IDENTITY,
        false,
        &vault,
        |x| {
            for p in x.doc.paths_named("ThirftBasedEntitlementConfig") {
                let existing = x.doc.texts(&format!("{p}/KeyStore/Location"));
                x.set(
                    &format!("{p}/KeyStore/Location"),
                    &keystore_path(existing.first().map(String::as_str), &stores.primary.file),
                )?;
                x.set(
                    &format!("{p}/KeyStore/Password"),
                    stores.primary.password.expose(),
                )?;
            }
            for (_, path, value) in settings.iter().filter(|(f, _, _)| f == "identity.xml") {
                let full = format!("Server/{path}");
                if OPTIONAL_PATHS.contains(&path.as_str()) && x.doc.count(&full) == 0 {
                    continue;
                }
                x.set(&full, value)?;
            }
            Ok(())
        },
    )?);
    if let Ok(bytes) =
        crate::input::read(apim_home.join(ENDPOINT_CONFIG), crate::input::Limit::Config)
    {
        let mut props = Properties::from_bytes(&bytes);
        let mut changes = Vec::new();
        let location = |p: &Properties, key: &str, file: &str| keystore_path(p.get(key), file);
        let values = [
            (
                "client.keyStore",
                location(&props, "client.keyStore", &stores.tls.file),
            ),
            (
                "Carbon.Security.KeyStore.Password",
                stores.tls.password.expose().to_string(),
            ),
            (
                "client.trustStore",
                location(&props, "client.trustStore", &stores.trust.file),
            ),
            (
                "Carbon.Security.TrustStore.Password",
                stores.trust.password.expose().to_string(),
            ),
        ];
        for (key, value) in values {
            if let Some(c) = props.set(key, &value) {
                changes.push(ValueChange {
                    old: c.old.map(|o| shown(key, &o)),
                    new: shown(key, &c.new),
                    what: c.key,
                });
            }
        }
        if !changes.is_empty() {
            planned.push(Planned {
                rel: ENDPOINT_CONFIG.into(),
                bytes: props.to_bytes(),
                secret: true,
                change: FileChange {
                    file: ENDPOINT_CONFIG.into(),
                    action: "edit".into(),
                    changes,
                },
                consumes: None,
            });
        }
    }
    for rel in SITE_JSON {
        let Ok(bytes) = crate::input::read(apim_home.join(rel), crate::input::Limit::Config) else {
            continue;
        };
        let mut text = String::from_utf8(bytes)
            .map_err(|_| input(apim_home.join(rel), "is not UTF-8 text", None))?;
        let mut changes = Vec::new();
        for (key, value) in rules::SITE_JSON_SSO {
            let old = jsonedit::set_string(&mut text, "ssoConfiguration", key, value)
                .map_err(|e| input(apim_home.join(rel), e, None))?;
            if let Some(old) = old {
                changes.push(ValueChange {
                    what: format!("ssoConfiguration.{key}"),
                    old: Some(shown(key, &old)),
                    new: shown(key, value),
                });
            }
        }
        if !changes.is_empty() {
            planned.push(Planned {
                rel: rel.into(),
                bytes: text.into_bytes(),
                secret: false,
                change: FileChange {
                    file: rel.into(),
                    action: "edit".into(),
                    changes,
                },
                consumes: None,
            });
        }
    }

    planned.extend(plan_xml(
        apim_home,
        rules::WORKFLOW_CALLBACK,
        rules::WORKFLOW_CALLBACK,
        false,
        &vault,
        |x| rules::attribute_settings(x, "proxy", &settings, "WorkflowCallbackService.xml"),
    )?);
    planned.extend(rules::plan_cipher_text(apim_home, &stores)?);

    // Keystores: the primary and TLS keystores are installed as generated; the truststore is
    // merged into the node's existing one.
    let security = |file: &str| format!("{}/{file}", layout::SECURITY_DIR);
    for store in [&stores.primary, &stores.tls] {
        let from = set.dir.join(layout::node_security(&node.name, &store.file));
        let bytes = crate::input::read(&from, crate::input::Limit::Keystore).map_err(|e| {
            input(
                &from,
                format!("cannot read: {e}"),
                Some("run `apim-pki generate` first"),
            )
        })?;
        let rel = security(&store.file);
        if crate::input::read(apim_home.join(&rel), crate::input::Limit::Keystore)
            .ok()
            .as_deref()
            != Some(&bytes[..])
            && !planned.iter().any(|p| p.rel == rel)
        {
            planned.push(Planned {
                rel: rel.clone(),
                bytes,
                secret: true,
                change: FileChange {
                    file: rel,
                    action: "install".into(),
                    changes: Vec::new(),
                },
                consumes: None,
            });
        }
    }
    if let Some(p) = merge_truststore(&set, &node, apim_home, &stores, format, options)? {
        planned.push(p);
    }

    let mut report = ApplyReport {
        node: node.name.clone(),
        apim_home: apim_home.to_path_buf(),
        dry_run: options.dry_run,
        files: planned.iter().map(|p| p.change.clone()).collect(),
        backup: None,
        secret_files: planned
            .iter()
            .filter(|p| p.secret)
            .map(|p| p.rel.clone())
            .collect(),
        secure_vault: vault.into_inner(),
        warnings: Vec::new(),
    };
    let untyped = rules::untyped_files(apim_home, &planned);
    report
        .warnings
        .extend(rules::untyped_warning(format, &untyped));
    if options.dry_run || planned.is_empty() {
        return Ok(report);
    }

    // Back up every original, then write: one journaled commit (config::install).
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
    let backup = install::install(apim_home, &files)?;
    report.backup = Some(backup);
    Ok(report)
}

/// Merges the set's trusted certificates into the node's existing truststore (public CAs a
/// gateway needs for backends stay); `None` when nothing changes.
fn merge_truststore(
    set: &OpenedSet,
    node: &NodeView,
    home: &Path,
    stores: &Stores,
    format: KeystoreFormat,
    options: &ApplyOptions,
) -> Result<Option<Planned>, ApplyError> {
    let ours_path = set
        .dir
        .join(layout::node_security(&node.name, &stores.trust.file));
    let ours_bytes = crate::input::read(&ours_path, crate::input::Limit::Keystore)
        .map_err(|e| input(&ours_path, format!("cannot read: {e}"), None))?;
    let (ours, _) = Keystore::decode(&ours_bytes, &stores.trust.password)
        .map_err(|e| input(&ours_path, e.to_string(), None))?;
    let managed: Vec<&str> = ours.entries.iter().map(Entry::alias).collect();

    // The node's current truststore, as carbon.xml names it, with carbon.xml's password.
    let carbon_bytes = crate::input::read(home.join(CARBON), crate::input::Limit::Config)
        .map_err(|e| input(home.join(CARBON), format!("cannot read: {e}"), None))?;
    let (carbon, _) = decode_xml(&carbon_bytes, CARBON, home)?;
    let doc = XmlDoc::parse(&carbon)
        .map_err(|e| input(home.join(CARBON), format!("not well-formed XML: {e}"), None))?;
    let location = doc
        .texts("Server/Security/TrustStore/Location")
        .into_iter()
        .next();
    let current_rel = location
        .as_deref()
        .and_then(|l| l.find("repository/").map(|i| l[i..].to_string()))
        .unwrap_or_else(|| format!("{}/client-truststore.jks", layout::SECURITY_DIR));
    let target_rel = format!("{}/{}", layout::SECURITY_DIR, stores.trust.file);
    let mut entries: Vec<Entry> = Vec::new();
    let mut existing_same_file: Option<Vec<u8>> = None;
    // WSO2's well-known default keys the node trusted: dropped (the backup keeps them).
    let mut removed: Vec<String> = Vec::new();
    if let Ok(bytes) = crate::input::read(home.join(&current_rel), crate::input::Limit::Keystore) {
        let password = if doc.is_secured("Server/Security/TrustStore/Password") {
            options.existing_truststore_password.clone().ok_or_else(|| {
                input(home.join(CARBON), "the truststore password is kept in secure vault", Some("pass --existing-truststore-password-env VAR with the current truststore password"))
            })?
        } else {
            Password::new(
                doc.texts("Server/Security/TrustStore/Password")
                    .into_iter()
                    .next()
                    .unwrap_or_default(),
            )
        };
        let password = options
            .existing_truststore_password
            .clone()
            .unwrap_or(password);
        let (existing, _) = Keystore::decode(&bytes, &password).map_err(|e| match e {
            KeystoreError::WrongPassword => input(
                home.join(&current_rel),
                "does not open with the password in carbon.xml's TrustStore/Password",
                Some("pass --existing-truststore-password-env VAR with its current password"),
            ),
            other => input(home.join(&current_rel), other.to_string(), None),
        })?;
        for e in existing.entries {
            if !matches!(e, Entry::Trusted { .. }) || managed.contains(&e.alias()) {
                continue;
            }
            match e.cert().and_then(super::default_keys::wso2_default_key) {
                Some(key) => removed.push(format!("{} ({key})", e.alias())),
                None => entries.push(e),
            }
        }
        if current_rel == target_rel {
            existing_same_file = Some(bytes);
        }
    }
    let kept = entries.len();
    entries.extend(ours.entries.iter().cloned());
    let merged = Keystore { entries };
    // Unchanged when the file already holds exactly these entries with our password and type.
    if let Some(bytes) = &existing_same_file {
        if let Ok((current, _)) = Keystore::decode(bytes, &stores.trust.password) {
            let key = |k: &Keystore| {
                let mut v: Vec<(String, Vec<u8>)> = k
                    .entries
                    .iter()
                    .filter_map(|e| e.cert().map(|c| (e.alias().to_string(), c.to_vec())))
                    .collect();
                v.sort();
                v
            };
            if key(&current) == key(&merged)
                && crate::keystore::KeystoreFormat::detect(bytes).map(|t| t.java_type())
                    == Some(format.java_type())
            {
                return Ok(None);
            }
        }
    }
    let bytes = merged
        .encode(format, &stores.trust.password)
        .map_err(|e| input(home.join(&target_rel), e.to_string(), None))?;
    Ok(Some(Planned {
        rel: target_rel.clone(),
        bytes,
        secret: true,
        change: FileChange {
            file: target_rel,
            action: "merge".into(),
            changes: std::iter::once(ValueChange {
                what: "entries".into(),
                old: None,
                new: format!(
                    "{kept} kept, {} from the set ({})",
                    managed.len(),
                    managed.join(", ")
                ),
            })
            .chain((!removed.is_empty()).then(|| ValueChange {
                what: "removed WSO2 default keys".into(),
                old: None,
                new: removed.join(", "),
            }))
            .collect(),
        },
        consumes: None,
    }))
}

/// Renders the report for people: per file, what changes.
pub fn render_text(report: &ApplyReport, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    let files = BTreeMap::from_iter(report.files.iter().map(|f| (f.file.as_str(), f)));
    if files.is_empty() {
        for w in &report.warnings {
            writeln!(out, "warning: {w}")?;
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
