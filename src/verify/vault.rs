//! Secure vault findings (docs/secure-vault.md, docs/commands.md): `plaintext-password` (a
//! password of the set in clear in a node's files or an applied home, outside the files the
//! docs name as beyond the vault's reach), `default-password` (`wso2carbon` or `admin`, in clear
//! or decrypted), `vault-undecryptable` (a ciphertext the set's primary key cannot decrypt with
//! the scheme `secret-conf.properties` names, a secured field or `$secret{}` with no ciphertext,
//! a missing or unreadable `secret-conf.properties`, or a plaintext that does not open the
//! keystore it belongs to).
//!
//! The same checks run on `nodes/<n>/` of the set (which mirrors a home's `repository/` layout)
//! and on an applied home.

use std::path::Path;

use rayon::prelude::*;

use crate::config::xmledit::XmlDoc;
use crate::input::{self, Limit};
use crate::keystore::Keystore;
use crate::output::layout;
use crate::password::{Password, PasswordRole};
use crate::set::OpenedSet;
use crate::vault::carbon26::{self, FieldState, Store, ALIASES_26};
use crate::vault::cipher_text::{self, SecretValue};
use crate::vault::secret_conf::SecretConf;
use crate::vault::secrets_toml;
use crate::vault::VaultKey;
use crate::verify::findings::{Code, Finding, Owner};

/// The passwords WSO2 ships with: keystores (`wso2carbon`) and the admin user (`admin`).
pub(crate) const DEFAULT_PASSWORDS: [&str; 2] = ["wso2carbon", "admin"];

/// Passwords shorter than this are not searched for in clear (too many chance matches).
const MIN_SEARCHED: usize = 8;
const CONF: &str = "repository/conf/deployment.toml";
const SECRET_CONF: &str = "repository/conf/security/secret-conf.properties";
const CIPHER_TEXT: &str = "repository/conf/security/cipher-text.properties";
const USER_MGT: &str = "repository/conf/user-mgt.xml";
/// Where a home's configuration lives (the rest is jars and web apps).
const SCANNED: [&str; 3] = [
    "repository/conf",
    "repository/resources/security",
    "repository/deployment/server",
];
const TEXT_EXTENSIONS: [&str; 8] = [
    "xml",
    "toml",
    "properties",
    "json",
    "yaml",
    "yml",
    "conf",
    "j2",
];

/// A tree being checked: a node's files in the set, or an applied home.
struct Tree<'a> {
    set: &'a OpenedSet,
    node: &'a str,
    root: &'a Path,
    /// Prefix of file names in findings (`nodes/<n>/` for the set, empty for a home).
    prefix: String,
    owner: Owner,
    key: Option<&'a VaultKey>,
    findings: Vec<Finding>,
    checked: usize,
}

impl Tree<'_> {
    fn check(&mut self, ok: bool, code: Code, file: &str, message: impl FnOnce() -> String) {
        self.checked += 1;
        if !ok {
            let file = format!("{}{file}", self.prefix);
            self.findings
                .push(Finding::new(code, &self.owner, Some(&file), message()));
        }
    }

    /// The set's passwords worth searching for: a WSO2 default is `default-password`'s (and
    /// names files, `wso2carbon.jks`), and a very short one would match unrelated text.
    fn roles(&self) -> Vec<(&'static str, &Password)> {
        PasswordRole::ALL
            .into_iter()
            .filter_map(|r| self.set.password(r).map(|p| (r.as_str(), p)))
            .filter(|(_, p)| {
                p.expose().len() >= MIN_SEARCHED && !DEFAULT_PASSWORDS.contains(&p.expose())
            })
            .collect()
    }

    /// The roles whose password `bytes` hold in clear (XML-escaped forms too).
    fn in_clear(&self, bytes: &[u8]) -> Vec<&'static str> {
        let has = |s: &str| !s.is_empty() && memchr::memmem::find(bytes, s.as_bytes()).is_some();
        self.roles()
            .into_iter()
            .filter(|(_, p)| has(p.expose()) || has(&xml_escape(p.expose())))
            .map(|(r, _)| r)
            .collect()
    }

    fn read(&self, rel: &str) -> Option<String> {
        input::read_to_string(self.root.join(rel), Limit::Config).ok()
    }

    /// The store file (relative to the tree) a 2.6 vault field belongs to, as the set names it.
    fn store_file(&self, store: Store) -> String {
        let format = self.set.view.keystores.format;
        let file = match store {
            Store::CarbonPrimary | Store::CarbonInternal => layout::primary_file(format),
            Store::CarbonTrust | Store::Axis2ListenerTrust | Store::Axis2SenderTrust => {
                layout::truststore_file(format)
            }
            _ => {
                let (path, _) = self.set.view.tls_file(self.node);
                path.rsplit('/').next().unwrap_or_default().to_string()
            }
        };
        format!("{}/{file}", layout::SECURITY_DIR)
    }

    /// `vault-undecryptable` unless `password` opens `store_rel` (when the tree has it).
    fn opens(&mut self, alias: &str, password: &str, store_rel: &str, file: &str) {
        // In the set, offline verify opens every keystore with the set's passwords already: a
        // plaintext equal to that password opens it (no second PKCS#12 derivation per node).
        let format = self.set.view.keystores.format;
        let role = match store_rel.rsplit('/').next().unwrap_or_default() {
            f if f == layout::primary_file(format) => PasswordRole::Primary,
            f if f == layout::truststore_file(format) => PasswordRole::Truststore,
            _ => PasswordRole::Tls,
        };
        let known = self
            .set
            .password(role)
            .is_some_and(|p| p.expose() == password);
        if !self.prefix.is_empty() && known {
            self.checked += 1;
            return;
        }
        let Ok(bytes) = input::read(self.root.join(store_rel), Limit::Keystore) else {
            return;
        };
        let ok = Keystore::decode(&bytes, &Password::new(password.to_string())).is_ok();
        self.check(ok, Code::VaultUndecryptable, file, || {
            format!("{alias} decrypts to a password that does not open {store_rel}, the keystore it belongs to")
        });
    }
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('"', "&quot;")
}

/// Checks `nodes/<n>/` of the set for every node, and the set's own passwords.
pub(crate) fn verify_node_files(set: &OpenedSet) -> (Vec<Finding>, usize) {
    let mut findings = Vec::new();
    let mut checked = 0;
    for (role, p) in PasswordRole::ALL
        .into_iter()
        .filter_map(|r| set.password(r).map(|p| (r.as_str(), p)))
    {
        checked += 1;
        if DEFAULT_PASSWORDS.contains(&p.expose()) {
            findings.push(Finding::new(
                Code::DefaultPassword,
                &Owner::Set,
                Some(layout::INVENTORY),
                format!("the {role} password is a WSO2 default: anyone who knows WSO2 opens these keystores; set another (or let generate make one) and run `apim-pki rotate`"),
            ));
        }
    }
    // Every node holds a copy of the same primary keystore: open it once per distinct file.
    let mut keys: Vec<(Vec<u8>, Option<VaultKey>)> = Vec::new();
    let format = set.view.keystores.format;
    let files: Vec<Option<Vec<u8>>> = set
        .view
        .nodes
        .par_iter()
        .map(|node| {
            let rel = layout::node_security(&node.name, &layout::primary_file(format));
            input::read(set.dir.join(rel), Limit::Keystore).ok()
        })
        .collect();
    let key_index: Vec<Option<usize>> = set
        .view
        .nodes
        .iter()
        .zip(files)
        .map(|(node, bytes)| {
            let bytes = bytes?;
            if let Some(i) = keys.iter().position(|(b, _)| *b == bytes) {
                return Some(i);
            }
            let key = crate::vault::key::for_set_node(set, &node.name)
                .ok()
                .flatten();
            keys.push((bytes, key));
            Some(keys.len() - 1)
        })
        .collect();
    let per_node: Vec<(Vec<Finding>, usize)> = set
        .view
        .nodes
        .par_iter()
        .zip(key_index.par_iter())
        .map(|(node, ki)| {
            let key = ki.and_then(|i| keys[i].1.as_ref());
            let root = set.dir.join(layout::node_dir(&node.name));
            let prefix = format!("{}/", layout::node_dir(&node.name));
            check(set, &node.name, &root, prefix, key)
        })
        .collect();
    for (f, n) in per_node {
        findings.extend(f);
        checked += n;
    }
    (findings, checked)
}

/// Checks an applied home of `node`.
pub(crate) fn verify_home(set: &OpenedSet, node: &str, home: &Path) -> (Vec<Finding>, usize) {
    let key = crate::vault::key::for_set_node(set, node).ok().flatten();
    check(set, node, home, String::new(), key.as_ref())
}

fn check(
    set: &OpenedSet,
    node: &str,
    root: &Path,
    prefix: String,
    key: Option<&VaultKey>,
) -> (Vec<Finding>, usize) {
    let mut t = Tree {
        set,
        node,
        root,
        prefix,
        owner: Owner::Node(node.to_string()),
        key,
        findings: Vec::new(),
        checked: 0,
    };
    let is_26 = set.inventory.product == crate::topology::Product::Apim26;
    if is_26 {
        xml_26(&mut t);
    } else {
        deployment_toml(&mut t);
    }
    defaults_26(&mut t);
    if t.key.is_some() {
        scan(&mut t, is_26);
    }
    (t.findings, t.checked)
}

/// The scheme the tree's secret-conf.properties names (a finding and `None` when it is
/// missing or unreadable).
fn runtime_key(t: &mut Tree, needed: bool) -> Option<VaultKey> {
    let text = t.read(SECRET_CONF);
    let conf = text.as_deref().map(SecretConf::parse);
    let key = t.key?.clone();
    match conf {
        None => {
            t.check(!needed, Code::VaultUndecryptable, SECRET_CONF, || {
                "missing: the server never writes it, and without it the vault is off and every alias resolves to its own name; run `apim-pki apply` (or copy it from the set)".into()
            });
            None
        }
        Some(Err(e)) => {
            t.check(false, Code::VaultUndecryptable, SECRET_CONF, || {
                format!("{e}")
            });
            None
        }
        Some(Ok(c)) => {
            let alias_ok = c.key_alias == t.set.view.keystores.primary_alias;
            t.check(alias_ok, Code::VaultUndecryptable, SECRET_CONF, || {
                format!(
                    "keystore.identity.alias is `{}`, not the set's primary key `{}`",
                    c.key_alias, t.set.view.keystores.primary_alias
                )
            });
            Some(key.with_scheme(c.scheme))
        }
    }
}

/// A value of the secret repository: decrypts with the set's key and the runtime's scheme,
/// is no default, and opens `store` when given.
fn check_secret(
    t: &mut Tree,
    key: Option<&VaultKey>,
    alias: &str,
    value: &SecretValue,
    file: &str,
    store: Option<String>,
) {
    let plain = match value {
        SecretValue::Empty => return,
        SecretValue::Plain(p) => {
            let theirs = t.in_clear(p.as_bytes());
            t.check(theirs.is_empty() || key.is_none(), Code::PlaintextPassword, file, || {
                format!("{alias} holds the {} password in plain text ([...]): run `apim-pki apply` to encrypt it", theirs.join(" and "))
            });
            zeroize::Zeroizing::new(p.clone())
        }
        SecretValue::Encrypted(c) => {
            let Some(key) = key else { return };
            match key.open(c) {
                Ok(p) => p,
                Err(e) => {
                    t.check(false, Code::VaultUndecryptable, file, || format!("{alias}: {e}; the server would resolve it to the alias name. Run `apim-pki apply` to re-encrypt it with the set's primary key"));
                    return;
                }
            }
        }
    };
    t.check(
        !DEFAULT_PASSWORDS.contains(&plain.as_str()),
        Code::DefaultPassword,
        file,
        || format!("{alias} holds a WSO2 default password: change it (then secure it again)"),
    );
    if let (Some(store), SecretValue::Encrypted(_)) = (store, value) {
        t.opens(alias, &plain, &store, file);
    }
}

/// API-M 2.6: the covered XML fields, cipher-text.properties and secret-conf.properties.
fn xml_26(t: &mut Tree) {
    let mut secured_any = false;
    let mut secured: Vec<(&'static carbon26::AliasSpec, String)> = Vec::new();
    for rel in [
        "repository/conf/carbon.xml",
        "repository/conf/tomcat/catalina-server.xml",
        "repository/conf/axis2/axis2.xml",
    ] {
        let Some(text) = t.read(rel) else { continue };
        let Ok(states) = carbon26::field_states(rel, &text) else {
            continue;
        };
        for (spec, state) in states {
            match state {
                FieldState::Plain(v) => {
                    let theirs = t.in_clear(v.as_bytes());
                    let vault_on = t.key.is_some();
                    t.check(theirs.is_empty() || !vault_on, Code::PlaintextPassword, rel, || {
                        format!("{} holds the {} password in clear; secure vault covers it (alias {}): run `apim-pki apply`", spec.edit_path(), theirs.join(" and "), spec.alias)
                    });
                    t.check(
                        !DEFAULT_PASSWORDS.contains(&v.as_str()),
                        Code::DefaultPassword,
                        rel,
                        || format!("{} holds a WSO2 default password", spec.edit_path()),
                    );
                }
                FieldState::Secured { alias } => {
                    secured_any = true;
                    t.check(alias == spec.alias, Code::VaultUndecryptable, rel, || {
                        format!("{} is secured under alias `{alias}`, but the server looks it up under `{}`", spec.edit_path(), spec.alias)
                    });
                    secured.push((spec, alias));
                }
                FieldState::Missing => {}
            }
        }
    }
    let key = runtime_key(t, secured_any);
    let entries = match t.read(CIPHER_TEXT).map(|s| cipher_text::parse(&s)) {
        Some(Ok(e)) => e,
        Some(Err(e)) => {
            t.check(false, Code::VaultUndecryptable, CIPHER_TEXT, || {
                e.to_string()
            });
            return;
        }
        None => Vec::new(),
    };
    for (spec, alias) in &secured {
        let has = entries
            .iter()
            .any(|e| &e.alias == alias && e.value != SecretValue::Empty);
        t.check(has, Code::VaultUndecryptable, CIPHER_TEXT, || {
            format!("{} is secured under `{alias}` but has no ciphertext here (a half-vaulted node): the server would use the alias name as the password", spec.edit_path())
        });
    }
    for e in &entries {
        let store = carbon26::alias_spec(&e.alias).map(|s| t.store_file(s.store));
        check_secret(t, key.as_ref(), &e.alias, &e.value, CIPHER_TEXT, store);
    }
}

/// 3.2+: `[secrets]`, its references, and the literal passwords of deployment.toml.
fn deployment_toml(t: &mut Tree) {
    let Some(text) = t.read(CONF) else { return };
    let Ok(doc) = text.parse::<toml::Table>() else {
        return;
    };
    let secrets = match secrets_toml::parse(&text) {
        Ok(s) => s,
        Err(e) => {
            t.check(false, Code::VaultUndecryptable, CONF, || e.to_string());
            return;
        }
    };
    let mut refs = Vec::new();
    collect(&toml::Value::Table(doc.clone()), "", &mut refs);
    let referenced = refs
        .iter()
        .any(|(_, v)| !secrets_toml::references_in(v).is_empty());
    let key = runtime_key(t, referenced && t.key.is_some());
    for (path, value) in &refs {
        for alias in secrets_toml::references_in(value) {
            let has = secrets.iter().any(|(a, _)| a == alias);
            t.check(has, Code::VaultUndecryptable, CONF, || {
                format!("{path} refers to $secret{{{alias}}}, which [secrets] does not hold: the server refuses to start")
            });
        }
        let literal = path
            .rsplit('.')
            .next()
            .is_some_and(|k| k.contains("password"))
            && !value.contains("${")
            && !value.contains("$secret{")
            && !value.contains("$env{");
        if literal {
            t.check(
                !DEFAULT_PASSWORDS.contains(&value.as_str()),
                Code::DefaultPassword,
                CONF,
                || format!("{path} is a WSO2 default password"),
            );
            let theirs = t.in_clear(value.as_bytes());
            let vault_on = t.key.is_some();
            t.check(
                theirs.is_empty() || !vault_on,
                Code::PlaintextPassword,
                CONF,
                || {
                    format!(
                        "{path} holds the {} password in clear: refer to it as $secret{{alias}}",
                        theirs.join(" and ")
                    )
                },
            );
        }
    }
    for (alias, value) in &secrets {
        let store = refs
            .iter()
            .find(|(p, v)| {
                p.ends_with(".password") && secrets_toml::references_in(v).contains(&alias.as_str())
            })
            .and_then(|(p, _)| {
                let section = p.trim_end_matches(".password");
                let file = refs
                    .iter()
                    .find(|(q, _)| *q == format!("{section}.file_name"))?;
                Some(format!("{}/{}", layout::SECURITY_DIR, file.1))
            });
        check_secret(t, key.as_ref(), alias, value, CONF, store);
    }
}

/// Every string leaf of `v` outside `[secrets]`, with its dotted path.
fn collect(v: &toml::Value, path: &str, out: &mut Vec<(String, String)>) {
    match v {
        toml::Value::String(s) => out.push((path.to_string(), s.clone())),
        toml::Value::Table(t) => {
            for (k, v) in t {
                if path.is_empty() && k == "secrets" {
                    continue;
                }
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                collect(v, &p, out);
            }
        }
        toml::Value::Array(a) => {
            for v in a {
                collect(v, path, out);
            }
        }
        _ => {}
    }
}

/// The admin password of 2.6's user-mgt.xml (3.2+ keep it in deployment.toml).
fn defaults_26(t: &mut Tree) {
    let Some(text) = t.read(USER_MGT) else { return };
    let Ok(doc) = XmlDoc::parse(&text) else {
        return;
    };
    let path = "UserManager/Realm/Configuration/AdminUser/Password";
    let plain = !doc.is_secured(path) && doc.texts(path).iter().any(|v| v == "admin");
    t.check(!plain, Code::DefaultPassword, USER_MGT, || {
        "the admin user's password is WSO2's default `admin`: change it before the node is reachable".into()
    });
}

/// `plaintext-password` for every other configuration file holding a password of the set,
/// except those the vault cannot cover (docs/secure-vault.md) and the start-up password file.
fn scan(t: &mut Tree, is_26: bool) {
    let mut files = Vec::new();
    let mut dirs: Vec<std::path::PathBuf> = SCANNED.iter().map(|d| t.root.join(d)).collect();
    if let Ok(rd) = std::fs::read_dir(t.root) {
        files.extend(rd.flatten().map(|e| e.path()).filter(|p| p.is_file()));
    }
    while let Some(dir) = dirs.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            match e.file_type() {
                Ok(ft) if ft.is_dir() => dirs.push(p),
                Ok(ft) if ft.is_file() => files.push(p),
                _ => {}
            }
        }
    }
    files.sort();
    let handled: Vec<&str> = ALIASES_26
        .iter()
        .map(|s| s.file)
        .chain([CONF, CIPHER_TEXT])
        .collect();
    for path in files {
        let Ok(rel) = path.strip_prefix(t.root) else {
            continue;
        };
        let rel = rel.to_string_lossy().replace('\\', "/");
        let ext = rel.rsplit('.').next().unwrap_or_default();
        if !TEXT_EXTENSIONS.contains(&ext) || handled.contains(&rel.as_str()) {
            continue;
        }
        if is_26 && crate::config::apim26::vault_not_covered(&rel) {
            continue;
        }
        let Ok(bytes) = input::read(&path, Limit::Config) else {
            continue;
        };
        let theirs = t.in_clear(&bytes);
        t.check(theirs.is_empty(), Code::PlaintextPassword, &rel, || {
            format!("holds the {} password in clear, outside secure vault: remove it, or refer to the vault", theirs.join(" and "))
        });
    }
}
