//! apply's secure vault step for API-M 2.6 (docs/secure-vault.md): after the normal edits, the
//! password fields WSO2's vault covers in carbon.xml, catalina-server.xml and axis2.xml become
//! the placeholder with `svns:secretAlias`, `cipher-text.properties` holds their ciphertexts
//! (a ciphertext that still decrypts to the set's password is kept, so a second apply changes
//! nothing), `cipher-tool.properties` names every secured field, and `secret-conf.properties`
//! points the runtime at the primary key, as `ciphertool.sh -Dconfigure` leaves a node.
//!
//! Entries of `cipher-text.properties` the set does not manage (`UserManager.AdminUser.Password`,
//! `Datasources.WSO2_CARBON_DB.Configuration.Password`, ...) that are still `[plain]` are
//! encrypted as the cipher tool would (their value unchanged), so the runtime never meets a
//! plain value; the XML fields they name are left as they are and reported.

use std::path::Path;

use super::edit::encode_xml;
use super::files::{BROKER, DATA_AGENT, DATA_BRIDGE, ENDPOINT_CONFIG, IDENTITY};
use super::rules::{CIPHER_TEXT, SECURE_WEBSOCKET, SSL_PROFILES};
use super::{decode_xml, FileAction, FileChange, Planned, Stores, ValueChange};
use super::{ApplyError, AXIS2, CARBON, CATALINA, SITE_JSON};
use crate::config::properties::Properties;
use crate::input::Limit;
use crate::password::Password;
use crate::set::OpenedSet;
use crate::vault::carbon26::{self, AliasSpec, FieldState, Store, ALIASES_26};
use crate::vault::cipher_text::SecretValue;
use crate::vault::secret_conf::SecretConf;
use crate::vault::startup::PasswordFile;
use crate::vault::{Release, Sealed, VaultKey};

const CIPHER_TOOL: &str = "repository/conf/security/cipher-tool.properties";
/// `secret-conf.properties` in the home (every release).
pub(crate) const SECRET_CONF: &str = "repository/conf/security/secret-conf.properties";

/// Files apply writes set passwords into that WSO2's secure vault does not read through an
/// alias, and why (apply lists those that hold one).
pub(crate) const NOT_COVERED: [(&str, &str); 8] = [
    (
        BROKER,
        "Andes reads broker.xml without a vault lookup in this release",
    ),
    (
        DATA_BRIDGE,
        "the data bridge has no secure vault alias in WSO2's list",
    ),
    (
        DATA_AGENT,
        "the data agent has no secure vault alias in WSO2's list",
    ),
    (
        IDENTITY,
        "the entitlement thrift keystore password has no vault alias",
    ),
    (
        ENDPOINT_CONFIG,
        "a .properties file read by the identity endpoints, not through the vault",
    ),
    (
        SECURE_WEBSOCKET,
        "a Synapse inbound endpoint parameter, read without the vault",
    ),
    (
        SSL_PROFILES,
        "the dynamic SSL profile file is read without the vault",
    ),
    (
        AXIS2,
        "the wss sender's ws.trust.store.Password parameter is read without the vault",
    ),
];

fn password_of(stores: &Stores, store: Store) -> &Password {
    match store {
        Store::CarbonPrimary | Store::CarbonInternal => &stores.primary.password,
        Store::CarbonTrust | Store::Axis2ListenerTrust | Store::Axis2SenderTrust => {
            &stores.trust.password
        }
        Store::TomcatConnector | Store::Axis2ListenerKey | Store::Axis2SenderKey => {
            &stores.tls.password
        }
    }
}

/// The text of `rel` as apply will leave it: its planned bytes, else the home's file.
fn current_text(
    home: &Path,
    rel: &str,
    planned: &[Planned],
) -> Result<Option<(String, bool)>, ApplyError> {
    let bytes = match planned.iter().find(|p| p.rel == rel) {
        Some(p) => p.bytes.clone(),
        None => match crate::input::read(home.join(rel), Limit::Config) {
            Ok(b) => b,
            Err(_) => return Ok(None),
        },
    };
    decode_xml(&bytes, rel, home).map(Some)
}

/// Puts `bytes` for `rel` into the plan (replacing a planned version), unless the home already
/// holds exactly them.
fn plan(home: &Path, planned: &mut Vec<Planned>, rel: &str, bytes: Vec<u8>, what: &str) {
    let unchanged = crate::input::read(home.join(rel), Limit::Config)
        .ok()
        .as_deref()
        == Some(&bytes[..]);
    if unchanged {
        // The normal edits put a clear password where the vault placeholder already was.
        planned.retain(|p| p.rel != rel || p.consumes.is_some());
    }
    if let Some(p) = planned.iter_mut().find(|p| p.rel == rel) {
        p.bytes = bytes;
        p.change.changes.push(ValueChange {
            what: "secure vault".into(),
            old: None,
            new: what.into(),
        });
        return;
    }
    if unchanged {
        return;
    }
    planned.push(Planned {
        rel: rel.into(),
        bytes,
        secret: true,
        change: FileChange {
            file: rel.into(),
            action: FileAction::Edit,
            changes: vec![ValueChange {
                what: "secure vault".into(),
                old: None,
                new: what.into(),
            }],
        },
        consumes: None,
    });
}

/// Secures the covered fields of the three XML files; returns each secured alias with the
/// password it must hold.
fn secure_files<'s>(
    home: &Path,
    stores: &'s Stores,
    planned: &mut Vec<Planned>,
) -> Result<Vec<(&'static AliasSpec, &'s Password)>, ApplyError> {
    let mut secured = Vec::new();
    for rel in [CARBON, CATALINA, AXIS2] {
        let Some((text, latin1)) = current_text(home, rel, planned)? else {
            continue;
        };
        let vault_file = |source| ApplyError::VaultFile {
            path: home.join(rel),
            source,
        };
        let states = carbon26::field_states(rel, &text).map_err(vault_file)?;
        let specs: Vec<&'static AliasSpec> = states
            .iter()
            .filter(|(_, s)| *s != FieldState::Missing)
            .map(|(spec, _)| *spec)
            .collect();
        let aliases: Vec<&str> = specs.iter().map(|s| s.alias).collect();
        let out = carbon26::secure_xml(rel, &text, &aliases).map_err(vault_file)?;
        if aliases.is_empty() {
            continue;
        }
        let what = format!("{} password fields → svns:secretAlias", aliases.len());
        plan(home, planned, rel, encode_xml(&out, latin1), &what);
        secured.extend(specs.into_iter().map(|s| (s, password_of(stores, s.store))));
    }
    Ok(secured)
}

/// `cipher-text.properties` with every secured alias sealed and every other plain entry
/// encrypted; notes for what the set does not manage.
fn seal_cipher_text(
    home: &Path,
    key: &VaultKey,
    secured: &[(&'static AliasSpec, &Password)],
    planned: &mut Vec<Planned>,
    notes: &mut Vec<String>,
) -> Result<(), ApplyError> {
    let path = home.join(CIPHER_TEXT);
    let bytes = crate::input::read(&path, Limit::Config).unwrap_or_default();
    let text: String = bytes.iter().map(|b| char::from(*b)).collect();
    let entries =
        crate::vault::cipher_text::parse(&text).map_err(|source| ApplyError::VaultFile {
            path: path.clone(),
            source,
        })?;
    let mut props = Properties::from_bytes(&bytes);
    let seal_err = |source| ApplyError::Seal {
        path: path.clone(),
        source,
    };
    for (spec, password) in secured {
        let existing = entries.iter().find(|e| e.alias == spec.alias);
        let old = match existing.map(|e| &e.value) {
            Some(SecretValue::Encrypted(c)) => Some(c.as_str()),
            _ => None,
        };
        let sealed = key.seal(old, password.expose()).map_err(seal_err)?;
        if let (Sealed::Fresh(_), Some(_)) = (&sealed, old) {
            notes.push(format!("{CIPHER_TEXT}: {} did not decrypt to the set's password with the set's primary key (re-keyed primary, changed password, or a vault made under another key): re-encrypted; the old file is in the backup", spec.alias));
        }
        props.set(spec.alias, sealed.text());
    }
    for e in &entries {
        if secured.iter().any(|(s, _)| s.alias == e.alias) {
            continue;
        }
        match &e.value {
            SecretValue::Plain(value) => {
                let sealed = key.seal(None, value).map_err(seal_err)?;
                props.set(&e.alias, sealed.text());
                notes.push(format!("{CIPHER_TEXT}: {} is not a password of the set: encrypted as ciphertool.sh -Dconfigure would, value unchanged; the field it protects stays as it is (secure it with the cipher tool, after changing it if it is a WSO2 default)", e.alias));
            }
            SecretValue::Encrypted(c) if key.open(c).is_err() => match key.open_any_scheme(c) {
                // The same key with the other padding (an earlier cipher tool run): the runtime
                // will use this key's scheme, so re-encrypt it, value unchanged.
                Some(value) => {
                    let sealed = key.seal(None, &value).map_err(seal_err)?;
                    props.set(&e.alias, sealed.text());
                    notes.push(format!("{CIPHER_TEXT}: {} was encrypted with the other padding: re-encrypted with {}, value unchanged", e.alias, key.scheme.transformation()));
                }
                None => notes.push(format!(
                    "{CIPHER_TEXT}: {} (line {}) does not decrypt with the set's primary key: the server resolves it to its alias name; put its value as [value] and run apply again",
                    e.alias, e.line
                )),
            },
            _ => {}
        }
    }
    plan(home, planned, CIPHER_TEXT, props.to_bytes(), "ciphertexts");
    Ok(())
}

/// `secret-conf.properties` for the set's primary keystore, as 2.6's cipher tool writes it
/// (plus the algorithm for OAEP).
fn secret_conf(set: &OpenedSet, key: &VaultKey) -> String {
    let keystores = &set.view.keystores;
    SecretConf::for_primary(keystores.format, &keystores.primary_alias, key.scheme)
        .render(Release::Apim26)
}

/// The node's secure vault key; `None` when the set's vault is off. A key that cannot be had is
/// reported against DIR/inventory.json.
pub(crate) fn vault_key(set: &OpenedSet, node: &str) -> Result<Option<VaultKey>, ApplyError> {
    crate::vault::key::for_set_node(set, node).map_err(|source| ApplyError::VaultKey {
        path: set.dir.join(crate::output::layout::INVENTORY),
        source,
    })
}

/// The start-up password file the topology asks for (`password-tmp` or `password-persist`) and
/// its bytes: the set's primary keystore password; `None` when it asks for none.
pub(crate) fn startup_password_file(
    set: &OpenedSet,
) -> Result<Option<(PasswordFile, Vec<u8>)>, ApplyError> {
    let Some(which) = PasswordFile::parse(&set.view.secure_vault.password_file) else {
        return Ok(None);
    };
    let inventory = set.dir.join(crate::output::layout::INVENTORY);
    let password = set
        .password(crate::password::PasswordRole::Primary)
        .ok_or_else(|| ApplyError::NoPassword {
            path: inventory.clone(),
            role: "primary".into(),
        })?;
    let contents = which
        .contents(password.expose())
        .ok_or(ApplyError::PasswordLineBreak { path: inventory })?;
    Ok(Some((which, contents.as_bytes().to_vec())))
}

/// The vault step; `Ok(None)` with the vault off (apply then writes passwords as before).
pub(super) fn secure(
    set: &OpenedSet,
    node: &str,
    home: &Path,
    stores: &Stores,
    planned: &mut Vec<Planned>,
) -> Result<Option<Vec<String>>, ApplyError> {
    let Some(key) = vault_key(set, node)? else {
        return Ok(None);
    };
    let mut notes = Vec::new();
    planned.retain(|p| p.rel != CIPHER_TEXT);
    let secured = secure_files(home, stores, planned)?;
    seal_cipher_text(home, &key, &secured, planned, &mut notes)?;
    let tool_path = home.join(CIPHER_TOOL);
    let tool = crate::input::read(&tool_path, Limit::Config)
        .map(|b| b.iter().map(|c| char::from(*c)).collect::<String>())
        .unwrap_or_default();
    let specs: Vec<&AliasSpec> = secured.iter().map(|(s, _)| *s).collect();
    let tool_out = carbon26::ensure_cipher_tool_entries(&tool, &specs);
    let tool_bytes: Vec<u8> = tool_out.chars().map(|c| c as u32 as u8).collect();
    plan(
        home,
        planned,
        CIPHER_TOOL,
        tool_bytes,
        "every secured field listed",
    );
    plan(
        home,
        planned,
        SECRET_CONF,
        secret_conf(set, &key).into_bytes(),
        "primary key, scheme",
    );
    if let Some((which, contents)) = startup_password_file(set)? {
        plan(
            home,
            planned,
            which.file_name(false),
            contents,
            "start-up password (0600)",
        );
    }
    notes.extend(not_covered(home, stores, planned));
    Ok(Some(notes))
}

/// The files apply leaves a set password in clear in, with why and what to do.
fn not_covered(home: &Path, stores: &Stores, planned: &[Planned]) -> Vec<String> {
    let passwords = [
        &stores.primary.password,
        &stores.tls.password,
        &stores.trust.password,
    ];
    let files = NOT_COVERED.iter().copied().chain(
        SITE_JSON
            .iter()
            .map(|f| (*f, "Jaggery reads site.json as JSON, without the vault")),
    );
    files
        .filter(|(rel, _)| {
            let bytes = planned
                .iter()
                .find(|p| p.rel == *rel)
                .map(|p| p.bytes.clone())
                .or_else(|| crate::input::read(home.join(rel), Limit::Config).ok())
                .unwrap_or_default();
            passwords.iter().any(|p| contains(&bytes, p.expose()))
        })
        .map(|(rel, why)| format!("{rel} holds a password of the set in clear: {why}. It is mode 0600 and readable by the server's user only; `verify --apim-home` does not report it (docs/secure-vault.md)"))
        .collect()
}

/// True when `haystack` holds `needle` as bytes (XML escaping aside: generated passwords are
/// alphanumeric).
pub(crate) fn contains(haystack: &[u8], needle: &str) -> bool {
    !needle.is_empty()
        && haystack
            .windows(needle.len())
            .any(|w| w == needle.as_bytes())
}

/// True when an entry of apply's "secure vault holds these" list (`file: path (alias a)`) is a
/// field this step secures itself.
pub(super) fn covers(entry: &str) -> bool {
    ALIASES_26.iter().any(|s| {
        entry.starts_with(&format!("{}: ", s.file))
            && entry.contains(&format!("{} (alias", s.edit_path()))
    })
}

/// The password of the home's truststore (`bytes`) when carbon.xml keeps it in the vault: the
/// home's `Carbon.Security.TrustStore.Password` decrypted with the set's primary key, or the
/// set's truststore password; `None` when neither opens it.
pub(super) fn secured_truststore_password(
    set: &OpenedSet,
    node: &str,
    home: &Path,
    stores: &Stores,
    bytes: &[u8],
) -> Option<Password> {
    let opens = |p: &Password| crate::keystore::Keystore::decode(bytes, p).is_ok();
    let from_vault = crate::vault::key::for_set_node(set, node)
        .ok()
        .flatten()
        .and_then(|key| {
            let text = crate::input::read_to_string(home.join(CIPHER_TEXT), Limit::Config).ok()?;
            let entries = crate::vault::cipher_text::parse(&text).ok()?;
            let e = entries
                .iter()
                .find(|e| e.alias == "Carbon.Security.TrustStore.Password")?;
            match &e.value {
                SecretValue::Encrypted(c) => key.open(c).ok().map(|p| Password::new(p.to_string())),
                _ => None,
            }
        });
    from_vault
        .filter(opens)
        .or_else(|| Some(stores.trust.password.clone()).filter(opens))
}
