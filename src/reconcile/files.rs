//! The assemble phase: every file of the set, with its action (keep, create, update, or the
//! item's renew / reissue / needs-rotate) and, when it is to be written, its bytes. File
//! contents are computed only when they are compared with DIR or written: a plan of a new
//! directory renders nothing. Each file goes to a sink as soon as it is assembled (generate
//! stages it to a temporary file and drops its bytes), so memory holds one node's files at a time.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use rayon::prelude::*;

use crate::config::deployment_toml::secrets;
use crate::keystore::{pem, Entry, Keystore, StoreType};
use crate::output::fsio::Access;
use crate::output::inventory::{ArtifactEntry, ArtifactKind, PasswordSource};
use crate::output::layout::{self, LbFile};
use crate::output::secrets::Secrets;
use crate::password::Password;
use crate::pki::{Ca, CertInfo, Key};
use crate::plan::certs;
use crate::topology::{Node, Topology};
use crate::vault::VaultKey;

use super::dir::Dir;
use super::error::GenerateError;
use super::model::{store_type_of, Cas, Decision, FileOut, Issued, Item, Passwords, Resolved};
use super::types::ActionKind;

/// Where an assembled file goes: generate stages it (and drops its bytes), a plan keeps it.
pub(super) type Sink<'a> = dyn Fn(&mut FileOut) -> Result<(), GenerateError> + Sync + 'a;

/// What assembling the files needs.
pub(super) struct Assembly<'a> {
    pub topology: &'a Topology,
    pub dir: Dir<'a>,
    pub cas: &'a Cas,
    pub passwords: &'a Passwords,
    /// False in a plan: contents are computed only to compare them with DIR.
    pub writing: bool,
    pub sink: &'a Sink<'a>,
}

/// The inventory entries of a keystore's certificates.
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
    pub(super) fn new(store: Keystore) -> Desired {
        let entries = entries_of(&store);
        Desired { store, entries }
    }
}

/// False for a PKCS#12 file without MAC or with a clear key: never kept as it is.
fn protected(bytes: &[u8]) -> bool {
    crate::keystore::protection::pkcs12_weaknesses(bytes).is_empty()
}

/// Bytes that may stand for a keystore as they are.
#[derive(Clone, Copy)]
pub(super) enum Reuse<'x> {
    /// None: the file stays when it already holds the wanted entries.
    None,
    /// These bytes (an existing file that says the right thing, or the one encoding shared by
    /// every node).
    Bytes(&'x [u8]),
    /// A new encoding, equal to no file on disk (a plan does not compute it).
    Fresh,
}

/// One keystore file of a node.
pub(super) struct StoreFile<'x> {
    pub path: String,
    pub kind: ArtifactKind,
    pub node: &'x str,
    /// The wanted content; None when it holds a certificate a plan has not issued.
    pub desired: Option<&'x Desired>,
    pub reuse: Reuse<'x>,
    pub fresh: &'x (dyn Fn() -> Result<Vec<u8>, GenerateError> + Sync),
    pub password: &'x Password,
    pub role: &'static str,
    /// The item's action and reason (keep for a file that only follows its content).
    pub action_if_changed: (ActionKind, String),
}

/// A keystore file: kept when DIR holds the same bytes or (for a file that only follows its
/// content) the same entries; else created or rewritten.
pub(super) fn keystore_file(a: &Assembly, f: StoreFile) -> Result<FileOut, GenerateError> {
    let want_type = store_type_of(a.topology.keystores.format);
    let (follows, why) = (
        f.action_if_changed.0 == ActionKind::Keep,
        f.action_if_changed.1,
    );
    let current = a.dir.read(&f.path);
    let same_content = |cur: &[u8]| {
        f.desired.is_some_and(|d| {
            StoreType::detect(cur) == Some(want_type)
                && protected(cur)
                && Keystore::decode(cur, f.password).is_ok_and(|(k, _)| same_entries(&k, &d.store))
        })
    };
    let (action, reason) = match (&current, f.reuse) {
        (Some(cur), Reuse::Bytes(r)) if cur == r => (ActionKind::Keep, why),
        (Some(cur), Reuse::None) if follows && same_content(cur) => (ActionKind::Keep, why),
        (None, _) if follows => (ActionKind::Create, "new on this node".into()),
        (None, _) => (ActionKind::Create, why),
        (Some(_), _) if follows => (
            ActionKind::Update,
            "re-encoded (format, password or entries changed)".to_string(),
        ),
        (Some(_), _) => (f.action_if_changed.0, why),
    };
    let bytes = match (action, f.reuse) {
        (ActionKind::Keep, _) => None,
        _ if !a.writing => None,
        (_, Reuse::Bytes(r)) => Some(r.to_vec()),
        _ => Some((f.fresh)()?),
    };
    Ok(FileOut {
        path: f.path,
        kind: f.kind,
        node: Some(f.node.to_string()),
        lb: None,
        access: Access::Secret,
        bytes,
        action,
        reason,
        store_type: Some(want_type),
        password: Some(f.role),
        entries: f.desired.map(|d| d.entries.clone()).unwrap_or_default(),
    })
}

/// A file that follows its content: kept when DIR holds the same bytes. `content` is called
/// only to compare or to write; None is content a plan has not computed (new certificates).
pub(super) fn simple_file(
    a: &Assembly,
    path: String,
    kind: ArtifactKind,
    access: Access,
    content: impl FnOnce() -> Option<Vec<u8>>,
    reason_new: &str,
    entries: Vec<ArtifactEntry>,
) -> FileOut {
    let changed = "content changed".to_string();
    let (action, reason, bytes) = match a.dir.read(&path) {
        None if !a.writing => (ActionKind::Create, reason_new.to_string(), None),
        None => (ActionKind::Create, reason_new.to_string(), content()),
        Some(cur) => match content() {
            Some(b) if b == cur => (ActionKind::Keep, "unchanged".to_string(), None),
            Some(b) => (ActionKind::Update, changed, a.writing.then_some(b)),
            None => (ActionKind::Update, changed, None),
        },
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

/// A certificate file (PEM); `der` is None for a certificate a plan has not issued.
fn cert_file(
    a: &Assembly,
    rel: &str,
    kind: ArtifactKind,
    der: Option<&[u8]>,
    why: &str,
) -> FileOut {
    let entries = der
        .and_then(|d| CertInfo::from_der(d).ok())
        .map(|i| vec![ArtifactEntry::new(None, "certificate", &i)])
        .unwrap_or_default();
    let content = || der.map(|d| pem::certs_to_pem([d]).into_bytes());
    simple_file(a, rel.into(), kind, Access::Public, content, why, entries)
}

/// A key file (PKCS#8 PEM), rewritten only when it holds another key: its PEM form is not ours
/// to normalise. `key` is None for a key a plan has not generated.
fn key_file(a: &Assembly, rel: &str, kind: ArtifactKind, key: Option<&Key>, why: &str) -> FileOut {
    let content = || key.map(|k| k.pkcs8_pem().as_bytes().to_vec());
    let mut f = simple_file(
        a,
        rel.into(),
        kind,
        Access::Secret,
        content,
        why,
        Vec::new(),
    );
    let same = key.is_some_and(|key| {
        a.dir
            .read(rel)
            .and_then(|b| Key::from_pem(&b, rel).ok())
            .is_some_and(|k| k.public_key_der() == key.public_key_der())
    });
    if same {
        (f.action, f.reason, f.bytes) = (ActionKind::Keep, "unchanged".into(), None);
    }
    f
}

/// Every CA the truststores trust, with its alias: the issuing CA (and the chain above a CA you
/// bring), then the next or previous generation during a rollover. None when the issuing CA or
/// the next one is one a plan has not created.
fn trusted_cas<'c>(topology: &Topology, cas: &'c Cas) -> Option<Vec<(String, &'c [u8])>> {
    let ca = cas.current.as_ref().filter(|_| !cas.next_planned)?;
    let current_alias = certs::ca_alias(topology, cas.generation);
    let mut trusted: Vec<(String, &[u8])> = vec![(current_alias.clone(), ca.cert_der())];
    trusted.extend(
        ca.parents()
            .iter()
            .enumerate()
            .map(|(i, p)| (format!("{current_alias}-parent-{}", i + 1), p.as_slice())),
    );
    if let Some(next) = &cas.next {
        trusted.push((
            certs::ca_alias(topology, cas.generation + 1),
            next.cert_der(),
        ));
    }
    if let Some(previous) = &cas.previous {
        trusted.push((
            certs::ca_alias(topology, cas.generation.saturating_sub(1)),
            previous.as_slice(),
        ));
    }
    Some(trusted)
}

/// The CA bundle (PEM) and its inventory entries.
struct Bundle {
    pem: Option<String>,
    entries: Vec<ArtifactEntry>,
}

impl Bundle {
    fn new(trusted: Option<&[(String, &[u8])]>) -> Bundle {
        let Some(trusted) = trusted else {
            return Bundle {
                pem: None,
                entries: Vec::new(),
            };
        };
        Bundle {
            pem: Some(pem::certs_to_pem(trusted.iter().map(|(_, c)| *c))),
            entries: trusted
                .iter()
                .filter_map(|(_, c)| CertInfo::from_der(c).ok())
                .map(|i| ArtifactEntry::new(None, "certificate", &i))
                .collect(),
        }
    }

    fn bytes(&self) -> Option<Vec<u8>> {
        self.pem.as_ref().map(|p| p.clone().into_bytes())
    }
}

/// The CA's files: its certificate and key, the rollover's next and previous CA, the bundle.
fn ca_files(a: &Assembly, bundle: &Bundle) -> Vec<FileOut> {
    let cas = a.cas;
    let current = cas.current.as_ref();
    let mut files = Vec::new();
    let mut ca_cert = cert_file(
        a,
        layout::CA_CERT,
        ArtifactKind::CaCert,
        current.map(|c| c.cert_der()),
        "new CA",
    );
    if cas.created {
        ca_cert.action = ActionKind::Create;
    }
    files.push(ca_cert);
    let key = current.and_then(|c| c.key());
    if a.topology.ca.is_generated() && (key.is_some() || current.is_none()) {
        files.push(key_file(
            a,
            layout::CA_KEY,
            ArtifactKind::CaKey,
            key,
            "new CA key",
        ));
    }
    if cas.next.is_some() || cas.next_planned {
        let next = cas.next.as_ref();
        let why = "CA rollover: the next CA, trusted everywhere";
        files.push(cert_file(
            a,
            layout::CA_NEXT_CERT,
            ArtifactKind::CaNextCert,
            next.map(Ca::cert_der),
            why,
        ));
        let key = next.and_then(Ca::key);
        if key.is_some() || cas.next_planned {
            let why = "CA rollover: the next CA's key";
            files.push(key_file(
                a,
                layout::CA_NEXT_KEY,
                ArtifactKind::CaNextKey,
                key,
                why,
            ));
        }
    }
    if let Some(previous) = &cas.previous {
        let why = "CA rollover: the previous CA, trusted until retire";
        files.push(cert_file(
            a,
            layout::CA_PREVIOUS_CERT,
            ArtifactKind::CaPreviousCert,
            Some(previous),
            why,
        ));
    }
    files.push(simple_file(
        a,
        layout::CA_BUNDLE.into(),
        ArtifactKind::CaBundle,
        Access::Public,
        || bundle.bytes(),
        "new",
        bundle.entries.clone(),
    ));
    files
}

/// A keystore every node holds a copy of (the primary keystore, the truststore): its wanted
/// content, and the bytes every copy gets.
struct SharedStore<'x> {
    /// None when it holds a certificate a plan has not issued.
    desired: Option<Desired>,
    password: &'x Password,
    /// Bytes of an existing copy that already says the right thing, else [`Reuse::Fresh`] (in
    /// a plan) or the one new encoding (generate).
    canonical: Option<Vec<u8>>,
    encoded: OnceLock<Vec<u8>>,
}

impl<'x> SharedStore<'x> {
    /// Every node holds copies of the same file: look at the first one found, decode it once,
    /// and reuse its bytes when it already says the right thing.
    fn new(
        a: &Assembly,
        file: &str,
        desired: Option<Desired>,
        password: &'x Password,
        look: bool,
    ) -> Result<SharedStore<'x>, GenerateError> {
        let want_type = store_type_of(a.topology.keystores.format);
        let existing = (look && desired.is_some())
            .then(|| {
                a.topology
                    .nodes
                    .iter()
                    .map(|n| layout::node_security(&n.name, file))
                    .find(|rel| a.dir.has(rel))
                    .and_then(|rel| a.dir.read(&rel))
            })
            .flatten();
        let canonical = existing.filter(|b| {
            desired.as_ref().is_some_and(|d| {
                StoreType::detect(b) == Some(want_type)
                    && protected(b)
                    && Keystore::decode(b, password).is_ok_and(|(k, _)| same_entries(&k, &d.store))
            })
        });
        let store = SharedStore {
            desired,
            password,
            canonical,
            encoded: OnceLock::new(),
        };
        if a.writing && store.canonical.is_none() {
            store.fresh(a)?;
        }
        Ok(store)
    }

    /// The one new encoding (made once, copied to every node).
    fn fresh(&self, a: &Assembly) -> Result<Vec<u8>, GenerateError> {
        if let Some(b) = self.encoded.get() {
            return Ok(b.clone());
        }
        let desired = self.desired.as_ref().ok_or_else(|| {
            crate::error::Bug::new("a keystore to write holds a certificate not issued")
        })?;
        let b = desired
            .store
            .encode(a.topology.keystores.format, self.password)
            .map_err(|source| GenerateError::KeystoreEncode {
                path: a.dir.into(),
                source,
            })?;
        Ok(self.encoded.get_or_init(|| b).clone())
    }

    fn reuse(&self) -> Reuse<'_> {
        match (&self.canonical, self.encoded.get()) {
            (Some(b), _) | (None, Some(b)) => Reuse::Bytes(b),
            (None, None) => Reuse::Fresh,
        }
    }
}

/// What every node's files share: the primary keystore and the truststore.
struct NodeShared<'x> {
    primary: SharedStore<'x>,
    primary_action: (ActionKind, String),
    trust: SharedStore<'x>,
    /// API-M 3.2+ with the secure vault on: the primary key that seals `[secrets]`. None when
    /// the vault is off, on 2.6, or in a plan whose primary is not issued yet.
    vault: Option<VaultKey>,
    /// The peer groups the nodes' settings name (peer-groups.toml), built once for the set.
    peer_groups: crate::plan::PeerGroups,
}

fn node_shared<'x>(
    a: &'x Assembly,
    primary: &(Item, Issued),
    trusted: Option<&[(String, &[u8])]>,
) -> Result<NodeShared<'x>, GenerateError> {
    let topology = a.topology;
    let format = topology.keystores.format;
    let (primary_item, primary) = primary;
    let primary_store = match (&primary.key, &primary.cert) {
        (Some(key), Some(cert)) => Some(Keystore {
            entries: vec![Entry::PrivateKey {
                alias: topology.keystores.primary_alias.clone(),
                pkcs8: key.pkcs8_der(),
                chain: cert.ders.clone(),
            }],
        }),
        _ => None,
    };
    let truststore = match (trusted, &primary.cert) {
        (Some(trusted), Some(cert)) => {
            let mut entries: Vec<Entry> = trusted
                .iter()
                .map(|(alias, cert)| Entry::Trusted {
                    alias: alias.clone(),
                    cert: cert.to_vec(),
                })
                .collect();
            entries.extend(
                certs::primary_trust_aliases(topology)
                    .into_iter()
                    .map(|alias| Entry::Trusted {
                        alias,
                        cert: cert.ders[0].clone(),
                    }),
            );
            Some(Keystore { entries })
        }
        _ => None,
    };
    let vault = match &primary_store {
        Some(store) => {
            secrets::generate_key(topology, store).map_err(|source| GenerateError::Vault {
                path: a.dir.into(),
                source,
            })?
        }
        None => None,
    };
    let passwords = a.passwords;
    let look = primary_item.decision.keeps_cert();
    Ok(NodeShared {
        vault,
        peer_groups: crate::plan::set_peer_groups(topology),
        primary: SharedStore::new(
            a,
            &layout::primary_file(format),
            primary_store.map(Desired::new),
            &passwords.primary.password,
            look,
        )?,
        primary_action: (primary_item.decision.action(), primary_item.reason.clone()),
        trust: SharedStore::new(
            a,
            &layout::truststore_file(format),
            truststore.map(Desired::new),
            &passwords.truststore.password,
            true,
        )?,
    })
}

/// One node's files: its primary keystore, TLS keystore, truststore, node.toml and (API-M 3.2
/// and 4.x) deployment.toml.
fn node_files(
    a: &Assembly,
    shared: &NodeShared,
    tls: Option<&(Item, Issued)>,
    node: &Node,
) -> Result<Vec<FileOut>, GenerateError> {
    let format = a.topology.keystores.format;
    let passwords = a.passwords;
    let name = node.name.as_str();
    let mut out = Vec::new();
    let primary_fresh = || shared.primary.fresh(a);
    out.push(keystore_file(
        a,
        StoreFile {
            path: layout::node_security(name, &layout::primary_file(format)),
            kind: ArtifactKind::PrimaryKeystore,
            node: name,
            desired: shared.primary.desired.as_ref(),
            reuse: shared.primary.reuse(),
            fresh: &primary_fresh,
            password: &passwords.primary.password,
            role: "primary",
            action_if_changed: shared.primary_action.clone(),
        },
    )?);
    if let (Some(tls), Some(tls_pw)) = (tls, passwords.tls.as_ref()) {
        out.push(tls_keystore(a, tls, &tls_pw.password, name)?);
    }
    let trust_fresh = || shared.trust.fresh(a);
    let mut t = keystore_file(
        a,
        StoreFile {
            path: layout::node_security(name, &layout::truststore_file(format)),
            kind: ArtifactKind::Truststore,
            node: name,
            desired: shared.trust.desired.as_ref(),
            reuse: shared.trust.reuse(),
            fresh: &trust_fresh,
            password: &passwords.truststore.password,
            role: "truststore",
            action_if_changed: (ActionKind::Keep, "unchanged".to_string()),
        },
    )?;
    if t.action == ActionKind::Update {
        t.reason = "trusted certificates changed".into();
    }
    out.push(t);
    out.extend(node_configs(a, shared, node)?);
    Ok(out)
}

/// A node's own TLS keystore.
fn tls_keystore(
    a: &Assembly,
    (item, tls): &(Item, Issued),
    password: &Password,
    name: &str,
) -> Result<FileOut, GenerateError> {
    let format = a.topology.keystores.format;
    let desired = match (&tls.key, &tls.cert) {
        (Some(key), Some(cert)) => Some(Desired::new(Keystore {
            entries: vec![Entry::PrivateKey {
                alias: name.to_string(),
                pkcs8: key.pkcs8_der(),
                chain: cert.ders.clone(),
            }],
        })),
        _ => None,
    };
    let path = layout::node_security(name, &layout::tls_file(name, format));
    let fresh = || {
        let d = desired.as_ref().ok_or_else(|| {
            crate::error::Bug::new("a TLS keystore to write holds a certificate not issued")
        })?;
        d.store
            .encode(format, password)
            .map_err(|source| GenerateError::KeystoreEncode {
                path: a.dir.into(),
                source,
            })
    };
    let reuse = match tls.kept_bytes.as_ref().filter(|(p, _)| *p == path) {
        Some((_, b)) => Reuse::Bytes(b),
        None => Reuse::None,
    };
    keystore_file(
        a,
        StoreFile {
            path,
            kind: ArtifactKind::TlsKeystore,
            node: name,
            desired: desired.as_ref(),
            reuse,
            fresh: &fresh,
            password,
            role: "tls",
            action_if_changed: (item.decision.action(), item.reason.clone()),
        },
    )
}

/// A node's node.toml and (API-M 3.2 and 4.x) deployment.toml, whose [secrets] hold passwords
/// (sealed under the primary key when the secure vault is on, with the node's
/// secret-conf.properties beside it).
fn node_configs(
    a: &Assembly,
    shared: &NodeShared,
    node: &Node,
) -> Result<Vec<FileOut>, GenerateError> {
    let topology = a.topology;
    let mut out = Vec::new();
    let render = || {
        let text = crate::output::node_toml::render(topology, node, &shared.peer_groups);
        Some(text.into_bytes())
    };
    let mut toml = simple_file(
        a,
        layout::node_toml(&node.name),
        ArtifactKind::NodeConfig,
        Access::Public,
        render,
        "new node",
        Vec::new(),
    );
    toml.node = Some(node.name.clone());
    out.push(toml);
    // deployment_toml::render says None for API-M 2.6 (XML configuration): no file.
    if topology.product == crate::topology::Product::Apim26 {
        return Ok(out);
    }
    let vaulted = topology.secure_vault.enabled;
    if vaulted {
        let conf = || {
            shared
                .vault
                .as_ref()
                .map(|k| secrets::secret_conf(topology, k))
        };
        let conf = || conf().map(String::into_bytes);
        let path = secrets::secret_conf_path(&node.name);
        let kind = ArtifactKind::DeploymentConfig;
        let mut f = simple_file(a, path, kind, Access::Public, conf, "new node", Vec::new());
        f.node = Some(node.name.clone());
        out.push(f);
    }
    let rel = layout::deployment_toml(&node.name);
    let text = deployment_toml_text(a, shared, node, &rel)?;
    let mut f = simple_file(
        a,
        rel,
        ArtifactKind::DeploymentConfig,
        Access::Secret,
        || text.map(String::into_bytes),
        "new node",
        Vec::new(),
    );
    f.node = Some(node.name.clone());
    out.push(f);
    Ok(out)
}

/// A 3.2+ node's deployment.toml as it must be: rendered with the set's passwords, `[secrets]`
/// sealed under the primary key when the vault is on (a ciphertext of the file in DIR that
/// still decrypts to the password is kept, so a re-run writes the same bytes). None when it
/// cannot be computed yet (a plan whose primary key is not issued).
fn deployment_toml_text(
    a: &Assembly,
    shared: &NodeShared,
    node: &Node,
    rel: &str,
) -> Result<Option<String>, GenerateError> {
    use crate::config::deployment_toml::{Passwords as DtPasswords, Secret};
    fn secret(r: &Resolved) -> Secret<'_> {
        match &r.source {
            PasswordSource::Env { variable } => Secret::Env(variable),
            PasswordSource::SecretsFile => Secret::Value(r.password.expose()),
        }
    }
    let pw = DtPasswords {
        primary: secret(&a.passwords.primary),
        tls: secret(a.passwords.tls_or_primary()),
        truststore: secret(&a.passwords.truststore),
    };
    let Some(text) = crate::config::deployment_toml::render(a.topology, node, &pw) else {
        return Ok(None);
    };
    if !a.topology.secure_vault.enabled {
        return Ok(Some(text));
    }
    let Some(key) = shared.vault.as_ref() else {
        return Ok(None);
    };
    let previous = a.dir.read(rel).and_then(|b| String::from_utf8(b).ok());
    secrets::seal_generated(&text, previous.as_deref(), key)
        .map(Some)
        .map_err(|source| GenerateError::Vault {
            path: a.dir.into(),
            source,
        })
}

/// A load balancer's files: key, certificate, CA bundle, HAProxy PEM, nginx.conf, haproxy.cfg.
fn lb_files(a: &Assembly, (item, lb): &(Item, Issued), bundle: &Bundle) -> Vec<FileOut> {
    let host = item.lb.clone().unwrap_or_default();
    let cert_pem = lb
        .cert
        .as_ref()
        .map(|c| pem::certs_to_pem(c.ders.iter().map(Vec::as_slice)));
    let key_pem = lb.key.as_ref().map(Key::pkcs8_pem);
    let entry: Vec<ArtifactEntry> = lb
        .cert
        .iter()
        .map(|c| ArtifactEntry::new(None, "certificate", &c.info))
        .collect();
    let action = item.decision.action();
    let file = |file: LbFile, kind, access, bytes: Option<Vec<u8>>, entries| {
        let rel = layout::lb_file(&host, file);
        let mut f = simple_file(a, rel, kind, access, || bytes, &item.reason, entries);
        f.lb = Some(host.clone());
        if f.action != ActionKind::Keep && action != ActionKind::Keep {
            f.action = action;
            f.reason = item.reason.clone();
        }
        f
    };
    let key_bytes = key_pem.as_ref().map(|k| k.as_bytes().to_vec());
    let mut key = file(
        LbFile::Key,
        ArtifactKind::LbKey,
        Access::Secret,
        key_bytes,
        Vec::new(),
    );
    if item.decision.keeps_cert() && key.action == ActionKind::Update {
        // Never rewrite a key file that holds this key: its PEM form is not ours to normalise.
        (key.action, key.reason, key.bytes) = (ActionKind::Keep, "unchanged".into(), None);
    }
    let cert_bytes = cert_pem.as_ref().map(|c| c.clone().into_bytes());
    let haproxy = match (&cert_pem, &key_pem) {
        (Some(c), Some(k)) => Some([c.as_bytes(), k.as_bytes()].concat()),
        _ => None,
    };
    let mut files = vec![
        key,
        file(
            LbFile::Cert,
            ArtifactKind::LbCert,
            Access::Public,
            cert_bytes,
            entry.clone(),
        ),
        file(
            LbFile::Ca,
            ArtifactKind::LbCa,
            Access::Public,
            bundle.bytes(),
            bundle.entries.clone(),
        ),
        file(
            LbFile::Haproxy,
            ArtifactKind::LbHaproxy,
            Access::Secret,
            haproxy,
            entry,
        ),
    ];
    files.extend(lb_configs(a, &host));
    files
}

/// A load balancer's nginx.conf and haproxy.cfg: they name files by path, so a new key or a CA
/// rollover changes their content only when the topology changes.
fn lb_configs(a: &Assembly, host: &str) -> Vec<FileOut> {
    let topology = a.topology;
    let Some(lb) = topology
        .load_balancers
        .iter()
        .find(|l| l.host.to_string() == host)
    else {
        return Vec::new();
    };
    let plan = std::sync::LazyLock::new(|| crate::lb::plan(topology, lb));
    type Render = fn(&crate::lb::LbPlan) -> String;
    let configs: [(LbFile, ArtifactKind, Render); 2] = [
        (
            LbFile::NginxConf,
            ArtifactKind::LbNginxConf,
            crate::lb::nginx::render,
        ),
        (
            LbFile::HaproxyCfg,
            ArtifactKind::LbHaproxyCfg,
            crate::lb::haproxy::render,
        ),
    ];
    configs
        .into_iter()
        .map(|(file, kind, render)| {
            let rel = layout::lb_file(host, file);
            let why = "new load balancer configuration";
            let text = || Some(render(&plan).into_bytes());
            let mut f = simple_file(a, rel, kind, Access::Public, text, why, Vec::new());
            f.lb = Some(host.to_string());
            f
        })
        .collect()
}

/// secrets.toml, with every password that comes from it (none when every role has a variable).
fn secrets_file(a: &Assembly) -> Option<FileOut> {
    let generated: BTreeMap<String, Password> = a
        .passwords
        .roles()
        .into_iter()
        .filter_map(|(role, r)| {
            r.filter(|r| r.source == PasswordSource::SecretsFile)
                .map(|r| (role.to_string(), r.password.clone()))
        })
        .collect();
    if generated.is_empty() {
        return None;
    }
    let text = || {
        let secrets = Secrets {
            passwords: generated,
        };
        Some(secrets.to_toml().as_bytes().to_vec())
    };
    let why = "generated passwords";
    Some(simple_file(
        a,
        layout::SECRETS.into(),
        ArtifactKind::Secrets,
        Access::Secret,
        text,
        why,
        Vec::new(),
    ))
}

/// peer-groups.toml, the peer groups the nodes' node.toml name, each once; none when no
/// setting names a group.
fn peer_groups_file(a: &Assembly, groups: &crate::plan::PeerGroups) -> Option<FileOut> {
    if groups.is_empty() {
        return None;
    }
    let text = || Some(crate::plan::node_toml::render_groups(groups).into_bytes());
    Some(simple_file(
        a,
        layout::PEER_GROUPS.into(),
        ArtifactKind::PeerGroups,
        Access::Public,
        text,
        "peer groups",
        Vec::new(),
    ))
}

/// Assembles every file of the set from the issued items (sorted by path). Each file goes to
/// the sink as soon as it is made; nodes are assembled in parallel.
pub(super) fn assemble(
    a: &Assembly,
    issued: &[(Item, Issued)],
) -> Result<Vec<FileOut>, GenerateError> {
    let sink = |mut f: FileOut| -> Result<FileOut, GenerateError> {
        (a.sink)(&mut f)?;
        Ok(f)
    };
    let trusted = trusted_cas(a.topology, a.cas);
    let bundle = Bundle::new(trusted.as_deref());
    let mut files: Vec<FileOut> = ca_files(a, &bundle)
        .into_iter()
        .map(sink)
        .collect::<Result<_, _>>()?;
    let primary = issued
        .iter()
        .find(|(i, _)| i.node.is_none() && i.lb.is_none())
        .ok_or_else(|| crate::error::Bug::new("no primary among the issued items"))?;
    let shared = node_shared(a, primary, trusted.as_deref())?;
    let tls: BTreeMap<&str, &(Item, Issued)> = issued
        .iter()
        .filter_map(|x| x.0.node.as_deref().map(|n| (n, x)))
        .collect();
    let per_node: Vec<Result<Vec<FileOut>, GenerateError>> = a
        .topology
        .nodes
        .par_iter()
        .map(|node| {
            let files = node_files(a, &shared, tls.get(node.name.as_str()).copied(), node)?;
            files.into_iter().map(sink).collect()
        })
        .collect();
    for f in per_node {
        files.extend(f?);
    }
    for lb in issued.iter().filter(|(i, _)| i.lb.is_some()) {
        for f in lb_files(a, lb, &bundle) {
            files.push(sink(f)?);
        }
    }
    if let Some(f) = secrets_file(a) {
        files.push(sink(f)?);
    }
    if let Some(f) = peer_groups_file(a, &shared.peer_groups) {
        files.push(sink(f)?);
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    mark_needs_rotate(&mut files, issued);
    Ok(files)
}

/// In a plan, shows the files of every item that needs `rotate` as `needs-rotate` (they are
/// left as they are): the TLS keystore of such a node, a load balancer's key, certificate and
/// HAProxy PEM, every primary keystore. One pass over the files.
fn mark_needs_rotate(files: &mut [FileOut], issued: &[(Item, Issued)]) {
    let blocked: Vec<&Item> = issued
        .iter()
        .map(|(i, _)| i)
        .filter(|i| i.decision == Decision::NeedsRotate)
        .collect();
    if blocked.is_empty() {
        return;
    }
    let primary = blocked.iter().find(|i| i.node.is_none() && i.lb.is_none());
    let nodes: BTreeMap<&str, &Item> = blocked
        .iter()
        .filter_map(|i| i.node.as_deref().map(|n| (n, *i)))
        .collect();
    let lbs: BTreeMap<&str, &Item> = blocked
        .iter()
        .filter_map(|i| i.lb.as_deref().map(|h| (h, *i)))
        .collect();
    for f in files.iter_mut() {
        let owner = match f.kind {
            ArtifactKind::PrimaryKeystore => primary.copied(),
            ArtifactKind::TlsKeystore => f.node.as_deref().and_then(|n| nodes.get(n).copied()),
            ArtifactKind::LbKey | ArtifactKind::LbCert | ArtifactKind::LbHaproxy => {
                f.lb.as_deref().and_then(|h| lbs.get(h).copied())
            }
            _ => None,
        };
        if let Some(item) = owner {
            f.action = ActionKind::NeedsRotate;
            f.reason = item.reason.clone();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::sync::Mutex;

    use super::super::issue::unissued;
    use super::super::model::{ArtifactSpec, Owner};
    use super::super::testutil::topology;
    use super::super::types::CaStage;
    use super::*;

    fn resolved(value: &str) -> Resolved {
        Resolved {
            password: Password::new(value.to_string()),
            source: PasswordSource::SecretsFile,
            generated: true,
        }
    }

    fn passwords() -> Passwords {
        Passwords {
            primary: resolved("primary-pw"),
            tls: Some(resolved("tls-pw")),
            truststore: resolved("trust-pw"),
            fallbacks: Vec::new(),
        }
    }

    fn no_ca() -> Cas {
        Cas {
            current: None,
            created: true,
            generation: 1,
            stage: CaStage::Stable,
            next: None,
            next_planned: false,
            previous: None,
        }
    }

    /// Items as a plan of an empty directory has them: every one to create, nothing issued.
    fn created_items(t: &Topology) -> Vec<(Item, Issued)> {
        let specs = super::super::specs::artifact_specs(t);
        let items = specs
            .into_iter()
            .map(|s: ArtifactSpec| Item {
                label: s.owner.label().to_string(),
                node: matches!(&s.owner, Owner::Node(_)).then(|| s.owner.label().to_string()),
                lb: None,
                spec: s.cert,
                key_type: s.key_type,
                decision: Decision::Create,
                reason: "new".into(),
                existing: None,
            })
            .collect();
        unissued(items)
    }

    #[test]
    fn a_plan_of_a_new_directory_assembles_every_file_without_a_key_or_rendering() {
        let t = topology();
        let tmp = tempfile::tempdir().expect("tempdir");
        let index = HashSet::new();
        let (cas, passwords) = (no_ca(), passwords());
        let seen = Mutex::new(0usize);
        let sink = |f: &mut FileOut| {
            assert!(f.bytes.is_none(), "a plan computes no content: {}", f.path);
            *seen.lock().expect("count") += 1;
            Ok(())
        };
        let a = Assembly {
            topology: &t,
            dir: Dir::new(tmp.path(), &index),
            cas: &cas,
            passwords: &passwords,
            writing: false,
            sink: &sink,
        };
        let issued = created_items(&t);
        assert!(issued
            .iter()
            .all(|(_, i)| i.key.is_none() && i.cert.is_none()));
        let files = assemble(&a, &issued).expect("assemble");
        // ca.crt, ca.key, ca-bundle, secrets.toml, peer-groups.toml; per node: primary, TLS,
        // truststore, node.toml.
        assert_eq!(files.len(), 5 + 4 * t.nodes.len());
        assert_eq!(*seen.lock().expect("count"), files.len());
        assert!(
            files.iter().all(|f| f.action == ActionKind::Create),
            "all new"
        );
        assert!(
            files.windows(2).all(|w| w[0].path < w[1].path),
            "sorted by path"
        );
    }

    #[test]
    fn a_file_is_kept_when_its_content_is_the_same_and_compared_only_when_present() {
        let tmp = tempfile::tempdir().expect("tempdir");
        std::fs::write(tmp.path().join("same.txt"), b"one").expect("write");
        std::fs::write(tmp.path().join("other.txt"), b"one").expect("write");
        let index: HashSet<String> = ["same.txt", "other.txt"].map(String::from).into();
        let t = topology();
        let (cas, passwords) = (no_ca(), passwords());
        let sink = |_: &mut FileOut| Ok(());
        for writing in [false, true] {
            let a = Assembly {
                topology: &t,
                dir: Dir::new(tmp.path(), &index),
                cas: &cas,
                passwords: &passwords,
                writing,
                sink: &sink,
            };
            let file = |rel: &str, content: Option<&[u8]>| {
                let content = || content.map(<[u8]>::to_vec);
                simple_file(
                    &a,
                    rel.into(),
                    ArtifactKind::NodeConfig,
                    Access::Public,
                    content,
                    "new",
                    Vec::new(),
                )
            };
            let same = file("same.txt", Some(b"one"));
            assert_eq!((same.action, same.bytes), (ActionKind::Keep, None));
            let other = file("other.txt", Some(b"two"));
            assert_eq!(other.action, ActionKind::Update);
            assert_eq!(other.bytes.is_some(), writing, "bytes only to write");
            let unknown = file("other.txt", None);
            assert_eq!((unknown.action, unknown.bytes), (ActionKind::Update, None));
            let new = file("new.txt", Some(b"x"));
            assert_eq!(
                (new.action, new.bytes.is_some()),
                (ActionKind::Create, writing)
            );
        }
        let a = Assembly {
            topology: &t,
            dir: Dir::new(tmp.path(), &index),
            cas: &cas,
            passwords: &passwords,
            writing: false,
            sink: &sink,
        };
        let content = || -> Option<Vec<u8>> { panic!("a plan renders no missing file") };
        let f = simple_file(
            &a,
            "missing.txt".into(),
            ArtifactKind::NodeConfig,
            Access::Public,
            content,
            "new",
            Vec::new(),
        );
        assert_eq!(f.action, ActionKind::Create);
    }

    #[test]
    fn needs_rotate_marks_only_the_files_of_the_blocked_items() {
        let t = topology();
        let mut issued = created_items(&t);
        let blocked = issued
            .iter_mut()
            .find(|(i, _)| i.node.as_deref() == Some("km"))
            .expect("km");
        blocked.0.decision = Decision::NeedsRotate;
        blocked.0.reason = "its key is RSA".into();
        let file = |path: &str, kind, node: &str| FileOut {
            path: path.into(),
            kind,
            node: Some(node.into()),
            lb: None,
            access: Access::Secret,
            bytes: None,
            action: ActionKind::Keep,
            reason: String::new(),
            store_type: None,
            password: None,
            entries: Vec::new(),
        };
        let mut files = vec![
            file("km-tls", ArtifactKind::TlsKeystore, "km"),
            file("km-trust", ArtifactKind::Truststore, "km"),
            file("a-tls", ArtifactKind::TlsKeystore, "a"),
        ];
        mark_needs_rotate(&mut files, &issued);
        let actions: Vec<ActionKind> = files.iter().map(|f| f.action).collect();
        assert_eq!(
            actions,
            [ActionKind::NeedsRotate, ActionKind::Keep, ActionKind::Keep]
        );
        assert_eq!(files[0].reason, "its key is RSA");
    }
}
