//! `verify DIR --apim-home PATH --node NAME`: checks an applied API-M 3.2/4.x/4.5+ node as it
//! really is, not the set's copies: the keystores and truststore its deployment.toml names (open
//! with the password it gives, of the type it says, the primary the set's, the TLS certificate
//! covering the node's names, the truststore trusting the CA and the primary), and every
//! `https://` / `ssl://` URL it names that the set serves (covered by what answers there).

use crate::error::{FileError, FileProblem};
use crate::input::{self, Limit};
use std::path::Path;

use crate::keystore::{pem, Entry, Keystore, KeystoreError, KeystoreFormat};
use crate::output::layout::{self, LbFile};
use crate::password::Password;
use crate::set::{NodeView, OpenedSet, SetError};
use crate::verify::findings::{Code, Finding, Owner, Report};
use crate::verify::hostname::{self, CertNames, Host};

const CONF: &str = "repository/conf/deployment.toml";

/// One store as deployment.toml configures it.
struct Store {
    section: &'static str,
    rel: String,
    java_type: String,
    password: Option<Password>,
}

/// Reads `[section]` (falling back to `fallback`'s table, as WSO2 does, then WSO2's defaults).
fn store(
    doc: &toml::Table,
    section: &'static str,
    fallback: Option<&str>,
    default_file: &str,
) -> Store {
    let table = |name: &str| {
        let mut t = Some(doc);
        for part in name.split('.') {
            t = t.and_then(|t| t.get(part)).and_then(|v| v.as_table());
        }
        t
    };
    let own = table(section).or_else(|| fallback.and_then(table));
    let get = |k: &str| own.and_then(|t| t.get(k)).and_then(|v| v.as_str());
    let file = get("file_name").unwrap_or(default_file);
    let password = get("password").unwrap_or("wso2carbon");
    Store {
        section,
        rel: format!("{}/{file}", layout::SECURITY_DIR),
        java_type: get("type").unwrap_or("JKS").to_string(),
        password: resolve(doc, password),
    }
}

/// A password value: literal, a plain `[secrets]` value, or `$env{}`; `None` when encrypted.
fn resolve(doc: &toml::Table, value: &str) -> Option<Password> {
    if let Some(alias) = value
        .strip_prefix("$secret{")
        .and_then(|r| r.strip_suffix('}'))
    {
        let v = doc.get("secrets")?.get(alias)?.as_str()?;
        return crate::config::deployment_toml::merge::is_plain_secret(v)
            .then(|| Password::new(v[1..v.len() - 1].to_string()));
    }
    if let Some(var) = value
        .strip_prefix("$env{")
        .and_then(|r| r.strip_suffix('}'))
    {
        return std::env::var(var).ok().map(Password::new);
    }
    Some(Password::new(value.to_string()))
}

struct Ctx<'a> {
    set: &'a OpenedSet,
    owner: Owner,
    findings: Vec<Finding>,
    checked: usize,
}

impl Ctx<'_> {
    fn check(&mut self, ok: bool, f: impl FnOnce() -> Finding) {
        self.checked += 1;
        if !ok {
            self.findings.push(f());
        }
    }

    /// Opens a store with the password deployment.toml gives (the set's for `role` when it is
    /// encrypted); a finding and `None` when it cannot.
    fn open(
        &mut self,
        home: &Path,
        s: &Store,
        role: crate::password::PasswordRole,
    ) -> Option<Keystore> {
        let owner = self.owner.clone();
        let file = Some(s.rel.as_str());
        let Ok(bytes) = input::read(home.join(&s.rel), Limit::Keystore) else {
            self.check(false, || {
                Finding::new(
                    Code::MissingFile,
                    &owner,
                    file,
                    format!("[{}] names it; it is not in the home", s.section),
                )
            });
            return None;
        };
        let detected = KeystoreFormat::detect(&bytes).map(|t| t.java_type());
        self.check(
            detected.is_none_or(|t| t.eq_ignore_ascii_case(&s.java_type)),
            || {
                Finding::new(
                    Code::WrongKeystoreType,
                    &owner,
                    file,
                    format!(
                        "[{}] says {}; the file is {}",
                        s.section,
                        s.java_type,
                        detected.unwrap_or("?")
                    ),
                )
            },
        );
        let password = s
            .password
            .clone()
            .or_else(|| self.set.password(role).cloned())?;
        match Keystore::decode(&bytes, &password) {
            Ok((k, _)) => Some(k),
            Err(e) => {
                let code = match e {
                    KeystoreError::WrongPassword => Code::WrongPassword,
                    _ => Code::CorruptFile,
                };
                self.check(false, || {
                    Finding::new(
                        code,
                        &owner,
                        file,
                        format!("does not open with the password [{}] gives: {e}", s.section),
                    )
                });
                None
            }
        }
    }
}

fn leaf(k: &Keystore) -> Option<Vec<u8>> {
    k.key_entries()
        .next()
        .and_then(|e| e.cert())
        .map(<[u8]>::to_vec)
}

/// Verifies `node`'s applied home.
pub(crate) fn verify_home(set: &OpenedSet, node: &str, home: &Path) -> Result<Report, SetError> {
    let view = set
        .view
        .nodes
        .iter()
        .find(|n| n.name == node)
        .ok_or_else(|| SetError::UnknownNode {
            path: set.dir.join(layout::INVENTORY),
            node: node.to_string(),
            known: set.view.nodes.iter().map(|n| n.name.clone()).collect(),
        })?;
    if set.inventory.product == crate::topology::Product::Apim26 {
        // 2.6 keeps its configuration in XML: the secure vault checks only.
        if !home.join("repository/conf/carbon.xml").is_file() {
            let carbon = home.join("repository/conf/carbon.xml");
            let missing = FileError::new(carbon, FileProblem::Missing);
            return Err(SetError::HomeConfig(missing));
        }
        let (findings, checked) = crate::verify::vault::verify_home(set, node, home);
        return Ok(Report::new(
            set.inventory.ca_stage.clone(),
            findings,
            checked,
        ));
    }
    let conf = home.join(CONF);
    let text = input::read_to_string(&conf, Limit::Config)
        .map_err(|e| SetError::HomeConfig(FileError::read(&conf, e)))?;
    let doc: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        let problem = FileProblem::Toml(e.message().to_string());
        SetError::HomeConfig(FileError::new(&conf, problem))
    })?;
    let mut c = Ctx {
        set,
        owner: Owner::Node(node.to_string()),
        findings: Vec::new(),
        checked: 0,
    };
    stores(&mut c, view, home, &doc);
    peers(&mut c, &doc);
    let (vault_findings, vault_checked) = crate::verify::vault::verify_home(set, node, home);
    c.findings.extend(vault_findings);
    c.checked += vault_checked;
    Ok(Report::new(
        set.inventory.ca_stage.clone(),
        c.findings,
        c.checked,
    ))
}

/// The set's primary certificate and CA certificate, to compare the home's stores with.
fn set_certs(set: &OpenedSet, node: &str) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
    let file = layout::primary_file(set.view.keystores.format);
    let primary = input::read(
        set.dir.join(layout::node_security(node, &file)),
        Limit::Keystore,
    )
    .ok()
    .zip(set.password(crate::password::PasswordRole::Primary))
    .and_then(|(b, pw)| Keystore::decode(&b, pw).ok())
    .and_then(|(k, _)| leaf(&k));
    let ca = input::read(set.dir.join(layout::CA_CERT), Limit::Certificate)
        .ok()
        .and_then(|b| pem::certs_from_pem(&b).ok())
        .and_then(|v| v.into_iter().next());
    (primary, ca)
}

/// The keystores and truststore deployment.toml names.
fn stores(c: &mut Ctx, view: &NodeView, home: &Path, doc: &toml::Table) {
    let (set_primary, ca) = set_certs(c.set, &view.name);
    let primary = store(doc, "keystore.primary", None, "wso2carbon.jks");
    let internal = store(
        doc,
        "keystore.internal",
        Some("keystore.primary"),
        "wso2carbon.jks",
    );
    let tls = store(
        doc,
        "keystore.tls",
        Some("keystore.primary"),
        "wso2carbon.jks",
    );
    let trust = store(doc, "truststore", None, "client-truststore.jks");
    let owner = c.owner.clone();
    for s in [&primary, &internal] {
        if let Some(k) = c.open(home, s, crate::password::PasswordRole::Primary) {
            let got = leaf(&k);
            c.check(got.is_some() && got == set_primary, || {
                let msg = format!(
                    "[{}]'s key entry is not the set's primary certificate",
                    s.section
                );
                Finding::new(Code::PrimaryDiffers, &owner, Some(&s.rel), msg)
            });
        }
    }
    if let Some(k) = c.open(home, &tls, crate::password::PasswordRole::Tls) {
        let mut names = vec![view.host.clone()];
        names.extend(c.set.view.lb_for(view.profile).map(|lb| lb.host.clone()));
        if let Some(cert) = leaf(&k).and_then(|d| CertNames::from_der(&d).ok()) {
            for h in names {
                let Ok(host) = Host::parse(&h) else { continue };
                c.check(hostname::check(&cert, &host).java, || {
                    let msg =
                        format!("the TLS certificate [keystore.tls] names does not cover {h}");
                    Finding::new(Code::HostnameMismatch, &owner, Some(&tls.rel), msg)
                });
            }
        }
    }
    if let Some(k) = c.open(home, &trust, crate::password::PasswordRole::Truststore) {
        let has = |der: &Option<Vec<u8>>| {
            der.as_ref().is_some_and(|d| {
                k.entries
                    .iter()
                    .any(|e| matches!(e, Entry::Trusted { cert, .. } if cert == d))
            })
        };
        let file = Some(trust.rel.as_str());
        c.check(has(&ca), || {
            Finding::new(
                Code::TruststoreMissingCa,
                &owner,
                file,
                "does not trust the set's CA",
            )
        });
        c.check(has(&set_primary), || {
            let msg = "does not hold the primary certificate (gateways verify tokens with it)";
            Finding::new(Code::TruststoreMissingPrimary, &owner, file, msg)
        });
    }
}

/// Every TLS URL deployment.toml names, in any table, checked against what the set serves there.
fn peers(c: &mut Ctx, doc: &toml::Table) {
    let mut urls = Vec::new();
    collect(&toml::Value::Table(doc.clone()), "", &mut urls);
    let owner = c.owner.clone();
    for (setting, url) in urls {
        let Some(rest) = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("ssl://"))
        else {
            continue;
        };
        let authority = rest.split('/').next().unwrap_or_default();
        let host_text = match authority.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or_default(),
            None => authority.split(':').next().unwrap_or_default(),
        };
        let Ok(host) = Host::parse(host_text) else {
            continue;
        };
        for (who, der) in servers(c.set, host_text) {
            let Ok(names) = CertNames::from_der(&der) else {
                continue;
            };
            c.check(hostname::check(&names, &host).java, || {
                Finding::new(Code::ConfigHostUncovered, &owner, Some(CONF), format!("{setting} names {url}, but the certificate of {who} does not cover {host_text}"))
                    .expected_actual(host_text.to_string(), who.clone())
            });
        }
    }
}

/// The certificates that may answer at `host`: a load balancer's own and its nodes', or the
/// nodes with that host. Empty for hosts the set does not serve.
fn servers(set: &OpenedSet, host: &str) -> Vec<(String, Vec<u8>)> {
    let tls_cert = |n: &str| -> Option<Vec<u8>> {
        let (file, _) = set.view.tls_file(n);
        let bytes = input::read(set.dir.join(file), Limit::Keystore).ok()?;
        let role = if set.view.per_node_tls() {
            crate::password::PasswordRole::Tls
        } else {
            crate::password::PasswordRole::Primary
        };
        let (k, _) = Keystore::decode(&bytes, set.password(role)?).ok()?;
        leaf(&k)
    };
    let mut out = Vec::new();
    if let Some(lb) = set
        .view
        .load_balancers
        .iter()
        .find(|l| l.host.eq_ignore_ascii_case(host))
    {
        if let Some(c) = input::read(
            set.dir.join(layout::lb_file(&lb.host, LbFile::Cert)),
            Limit::Certificate,
        )
        .ok()
        .and_then(|b| pem::certs_from_pem(&b).ok())
        .and_then(|v| v.into_iter().next())
        {
            out.push((format!("load balancer {}", lb.host), c));
        }
        for n in set.view.nodes.iter().filter(|n| n.profile == lb.fronts) {
            out.extend(tls_cert(&n.name).map(|c| (format!("node {}", n.name), c)));
        }
    }
    for n in set
        .view
        .nodes
        .iter()
        .filter(|n| n.host.eq_ignore_ascii_case(host))
    {
        out.extend(tls_cert(&n.name).map(|c| (format!("node {}", n.name), c)));
    }
    out
}

fn collect(v: &toml::Value, path: &str, out: &mut Vec<(String, String)>) {
    match v {
        toml::Value::String(s) if s.contains("://") => out.push((path.to_string(), s.clone())),
        toml::Value::Table(t) => {
            for (k, v) in t {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                collect(v, &p, out);
            }
        }
        toml::Value::Array(a) => a.iter().for_each(|v| collect(v, path, out)),
        _ => {}
    }
}
