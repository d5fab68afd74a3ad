//! The files of the set: which to keep, create or update, and their bytes.

use std::collections::BTreeMap;

use rayon::prelude::*;

use crate::keystore::{pem, Entry, Keystore, StoreType};
use crate::output::fsio::Access;
use crate::output::inventory::{
    Artifact, ArtifactEntry, ArtifactKind, Inventory, PasswordSource, FORMAT_VERSION,
};
use crate::output::layout::{self, LbFile};
use crate::output::secrets::Secrets;
use crate::password::Password;
use crate::pki::{Ca, CertInfo};
use crate::resolve;
use crate::topology::{Node, Topology};

use super::*;

pub(super) fn entries_of(store: &Keystore) -> Vec<ArtifactEntry> {
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
pub(super) fn same_entries(a: &Keystore, b: &Keystore) -> bool {
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

/// A keystore's wanted content, with its inventory entries parsed once (the primary keystore
/// and the truststore are the same on every node).
pub(super) struct Desired {
    store: Keystore,
    entries: Vec<ArtifactEntry>,
}

impl Desired {
    pub fn new(store: Keystore) -> Desired {
        let entries = entries_of(&store);
        Desired { store, entries }
    }
}

/// False for a PKCS#12 file without MAC or with a clear key: never kept as it is.
fn protected(bytes: &[u8]) -> bool {
    crate::keystore::protection::pkcs12_weaknesses(bytes).is_empty()
}

#[allow(clippy::too_many_arguments)]
pub(super) fn keystore_file(
    dir: Dir,
    path: String,
    kind: ArtifactKind,
    node: &Node,
    desired: &Desired,
    reuse: Option<&[u8]>,
    fresh: &dyn Fn() -> Result<Vec<u8>, GenerateError>,
    password: &Password,
    role: &'static str,
    action_if_changed: (ActionKind, String),
    format: crate::topology::KeystoreFormat,
) -> Result<FileOut, GenerateError> {
    let current = dir.read(&path);
    let want_type = store_type_of(format);
    let (action, reason, bytes) = match (&current, reuse) {
        (Some(cur), Some(reuse)) if cur == reuse => {
            (ActionKind::Keep, action_if_changed.1.clone(), None)
        }
        (Some(cur), None)
            if action_if_changed.0 == ActionKind::Keep
                && StoreType::detect(cur) == Some(want_type)
                && protected(cur)
                && Keystore::decode(cur, password)
                    .is_ok_and(|(k, _)| same_entries(&k, &desired.store)) =>
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
        entries: desired.entries.clone(),
    })
}

pub(super) fn simple_file(
    dir: Dir,
    path: String,
    kind: ArtifactKind,
    access: Access,
    bytes: Vec<u8>,
    reason_new: &str,
    entries: Vec<ArtifactEntry>,
) -> FileOut {
    let current = dir.read(&path);
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

pub(super) fn build_files(
    topology: &Topology,
    dir: Dir,
    cas: &Cas,
    ca_item: Option<&Item>,
    issued: &[(Item, Issued)],
    passwords: &Passwords,
) -> Result<Vec<FileOut>, GenerateError> {
    let format = topology.keystores.format;
    let mut files = Vec::new();
    let ca = &cas.current;
    let ca_created = ca_item.is_some_and(|i| i.decision == Decision::Create);
    let cert_file = |rel: &str, kind, der: &[u8], why: &str| {
        let entries = CertInfo::from_der(der)
            .map(|i| vec![ArtifactEntry::new(None, "certificate", &i)])
            .unwrap_or_default();
        simple_file(
            dir,
            rel.into(),
            kind,
            Access::Public,
            pem::certs_to_pem([der]).into_bytes(),
            why,
            entries,
        )
    };
    // A key file is rewritten only when it holds another key: its PEM form is not ours to
    // normalise.
    let key_file = |rel: &str, kind, key: &Key, why: &str| {
        let mut f = simple_file(
            dir,
            rel.into(),
            kind,
            Access::Secret,
            key.pkcs8_pem().as_bytes().to_vec(),
            why,
            Vec::new(),
        );
        let same = dir
            .read(rel)
            .and_then(|b| Key::from_pem(&b, rel).ok())
            .is_some_and(|k| k.public_key_der() == key.public_key_der());
        if same {
            (f.action, f.reason, f.bytes) = (ActionKind::Keep, "unchanged".into(), None);
        }
        f
    };
    let mut ca_cert = cert_file(
        layout::CA_CERT,
        ArtifactKind::CaCert,
        ca.cert_der(),
        "new CA",
    );
    if ca_created {
        ca_cert.action = ActionKind::Create;
    }
    files.push(ca_cert);
    if let (true, Some(key)) = (topology.ca.is_generated(), ca.key()) {
        files.push(key_file(
            layout::CA_KEY,
            ArtifactKind::CaKey,
            key,
            "new CA key",
        ));
    }
    if let Some(next) = &cas.next {
        files.push(cert_file(
            layout::CA_NEXT_CERT,
            ArtifactKind::CaNextCert,
            next.cert_der(),
            "CA rollover: the next CA, trusted everywhere",
        ));
        if let Some(key) = next.key() {
            files.push(key_file(
                layout::CA_NEXT_KEY,
                ArtifactKind::CaNextKey,
                key,
                "CA rollover: the next CA's key",
            ));
        }
    }
    if let Some(previous) = &cas.previous {
        files.push(cert_file(
            layout::CA_PREVIOUS_CERT,
            ArtifactKind::CaPreviousCert,
            previous,
            "CA rollover: the previous CA, trusted until retire",
        ));
    }
    // Every CA the truststores trust, with its alias: the issuing CA (and the chain above a CA
    // you bring), then the next or previous generation during a rollover.
    let current_alias = resolve::ca_alias(topology, cas.generation);
    let mut trusted_cas: Vec<(String, &[u8])> = vec![(current_alias.clone(), ca.cert_der())];
    trusted_cas.extend(
        ca.parents()
            .iter()
            .enumerate()
            .map(|(i, p)| (format!("{current_alias}-parent-{}", i + 1), p.as_slice())),
    );
    if let Some(next) = &cas.next {
        trusted_cas.push((
            resolve::ca_alias(topology, cas.generation + 1),
            next.cert_der(),
        ));
    }
    if let Some(previous) = &cas.previous {
        trusted_cas.push((
            resolve::ca_alias(topology, cas.generation.saturating_sub(1)),
            previous.as_slice(),
        ));
    }
    let bundle_pem = pem::certs_to_pem(trusted_cas.iter().map(|(_, c)| *c));
    let bundle_entries = trusted_cas
        .iter()
        .filter_map(|(_, c)| CertInfo::from_der(c).ok())
        .map(|i| ArtifactEntry::new(None, "certificate", &i))
        .collect();
    files.push(simple_file(
        dir,
        layout::CA_BUNDLE.into(),
        ArtifactKind::CaBundle,
        Access::Public,
        bundle_pem.clone().into_bytes(),
        "new",
        bundle_entries,
    ));
    // A load balancer re-encrypting to the nodes trusts what they trust.
    let bundle_entries_lb: Vec<ArtifactEntry> = trusted_cas
        .iter()
        .filter_map(|(_, c)| CertInfo::from_der(c).ok())
        .map(|i| ArtifactEntry::new(None, "certificate", &i))
        .collect();

    let (primary_item, primary) = issued
        .iter()
        .find(|(i, _)| i.node.is_none() && i.lb.is_none())
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

    let mut truststore_entries: Vec<Entry> = trusted_cas
        .iter()
        .map(|(alias, cert)| Entry::Trusted {
            alias: alias.clone(),
            cert: cert.to_vec(),
        })
        .collect();
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
    let primary_keep = matches!(
        primary_item.decision,
        Decision::Keep | Decision::NeedsRotate
    );
    let mut primary_canonical: Option<Vec<u8>> = None;
    let mut trust_canonical: Option<Vec<u8>>;
    let want_type = store_type_of(format);
    // Every node holds copies of the same two files: look at the first one found, decode it
    // once, and reuse its bytes when it already says the right thing.
    let first_existing = |file: &str| {
        topology
            .nodes
            .iter()
            .map(|n| layout::node_security(&n.name, file))
            .find(|rel| dir.has(rel))
            .and_then(|rel| dir.read(&rel))
    };
    if primary_keep {
        primary_canonical = first_existing(&layout::primary_file(format)).filter(|b| {
            StoreType::detect(b) == Some(want_type)
                && protected(b)
                && Keystore::decode(b, &passwords.primary.password)
                    .is_ok_and(|(k, _)| same_entries(&k, &primary_store))
        });
    }
    trust_canonical = first_existing(&layout::truststore_file(format)).filter(|b| {
        StoreType::detect(b) == Some(want_type)
            && protected(b)
            && Keystore::decode(b, &passwords.truststore.password)
                .is_ok_and(|(k, _)| same_entries(&k, &truststore))
    });
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
    let primary_desired = Desired::new(primary_store.clone());
    let trust_desired = Desired::new(truststore.clone());
    let tls_items: BTreeMap<&str, &(Item, Issued)> = issued
        .iter()
        .filter_map(|x| x.0.node.as_deref().map(|n| (n, x)))
        .collect();

    use crate::config::deployment_toml::secrets as vault;
    let vault_key = vault::generate_key(topology, &primary_store)
        .map_err(|e| input(dir, e.to_string(), None))?;
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
                &primary_desired,
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
                let desired = Desired::new(Keystore {
                    entries: vec![Entry::PrivateKey {
                        alias: node.name.clone(),
                        pkcs8: tls.key.pkcs8_der(),
                        chain: tls.chain.clone(),
                    }],
                });
                let path = layout::node_security(&node.name, &layout::tls_file(&node.name, format));
                let fresh = || {
                    desired
                        .store
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
                    &desired,
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
                &trust_desired,
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
                crate::output::node_toml::render(topology, node).into_bytes(),
                "new node",
                Vec::new(),
            );
            toml.node = Some(node.name.clone());
            out.push(toml);
            // API-M 3.2 and 4.x: the node's deployment.toml (its [secrets] hold passwords).
            use crate::config::deployment_toml::{Passwords as DtPasswords, Secret};
            fn secret(r: &Resolved) -> Secret<'_> {
                match &r.source {
                    PasswordSource::Env { variable } => Secret::Env(variable),
                    PasswordSource::SecretsFile => Secret::Value(r.password.expose()),
                }
            }
            let pw = DtPasswords {
                primary: secret(&passwords.primary),
                tls: secret(passwords.tls.as_ref().unwrap_or(&passwords.primary)),
                truststore: secret(&passwords.truststore),
            };
            if let Some(text) = crate::config::deployment_toml::render(topology, node, &pw) {
                // Secure vault: [secrets] sealed with the primary key, secret-conf.properties.
                let text = match &vault_key {
                    Some(key) => {
                        let previous = dir.read(&layout::deployment_toml(&node.name));
                        let previous = previous.and_then(|b| String::from_utf8(b).ok());
                        let conf = vault::secret_conf(topology, key);
                        let mut f = simple_file(
                            dir,
                            vault::secret_conf_path(&node.name),
                            ArtifactKind::DeploymentConfig,
                            Access::Public,
                            conf.into_bytes(),
                            "new node",
                            Vec::new(),
                        );
                        f.node = Some(node.name.clone());
                        out.push(f);
                        vault::seal_generated(&text, previous.as_deref(), key)
                            .map_err(|e| input(dir, e.to_string(), None))?
                    }
                    None => text,
                };
                let mut f = simple_file(
                    dir,
                    layout::deployment_toml(&node.name),
                    ArtifactKind::DeploymentConfig,
                    Access::Secret,
                    text.into_bytes(),
                    "new node",
                    Vec::new(),
                );
                f.node = Some(node.name.clone());
                out.push(f);
            }
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
        if matches!(item.decision, Decision::Keep | Decision::NeedsRotate)
            && key.action == ActionKind::Update
        {
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
            bundle_pem.clone().into_bytes(),
            bundle_entries_lb.clone(),
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
        files.extend(lb_configs(topology, dir, &host));
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

/// A load balancer's nginx.conf and haproxy.cfg: they name files by path, so a new key or a CA
/// rollover changes their content only when the topology changes.
fn lb_configs(topology: &Topology, dir: Dir, host: &str) -> Vec<FileOut> {
    let Some(lb) = topology
        .load_balancers
        .iter()
        .find(|l| l.host.to_string() == host)
    else {
        return Vec::new();
    };
    let plan = crate::lb::plan(topology, lb);
    [
        (
            LbFile::NginxConf,
            ArtifactKind::LbNginxConf,
            crate::lb::nginx::render(&plan),
        ),
        (
            LbFile::HaproxyCfg,
            ArtifactKind::LbHaproxyCfg,
            crate::lb::haproxy::render(&plan),
        ),
    ]
    .into_iter()
    .map(|(file, kind, text)| {
        let mut f = simple_file(
            dir,
            layout::lb_file(host, file),
            kind,
            Access::Public,
            text.into_bytes(),
            "new load balancer configuration",
            Vec::new(),
        );
        f.lb = Some(host.to_string());
        f
    })
    .collect()
}

pub(super) fn build_inventory(
    topology: &Topology,
    passwords: &Passwords,
    files: &[FileOut],
    cas: &Cas,
) -> Inventory {
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
        ca_stage: cas.stage.as_str().into(),
        ca_generation: cas.generation,
        passwords: pw,
        artifacts,
        topology: serde_json::to_value(topology).unwrap_or(serde_json::Value::Null),
    }
}

pub(super) fn summarize(
    ca: &Ca,
    issued: &[(Item, Issued)],
    topology: &Topology,
) -> Vec<CertSummary> {
    let format = topology.keystores.format;
    let mut out = vec![CertSummary {
        label: "CA".into(),
        path: layout::CA_CERT.into(),
        names: Vec::new(),
        subject: ca.info().subject.clone(),
        not_after: ca.info().not_after,
    }];
    for (item, cert) in issued {
        let path = if item.node.is_none() && item.lb.is_none() {
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
