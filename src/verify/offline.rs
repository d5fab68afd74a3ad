//! Offline verification of a generated set: reads DIR back (inventory.json tells the topology,
//! the files and where passwords come from) and checks every certificate against the names used
//! to reach it, its key, its chain and each truststore. Reports root causes only.

mod lb_configs;
mod peer_hosts;

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::path::Path;
use std::sync::{Mutex, PoisonError};

use rayon::prelude::*;
use time::{Duration, OffsetDateTime};
use x509_parser::prelude::{FromDer, X509Certificate};

use super::findings::{Code, Finding, Owner, Report};
use super::hostname::{self, CertNames, Host};
use crate::keystore::{pem, Entry, Keystore, KeystoreError};
use crate::output::layout::{self, LbFile};
use crate::password::Password;
use crate::pki::info::is_issued_by;
use crate::pki::CertInfo;
pub(crate) use crate::set::{LbView, NodeView, OpenedSet};
use crate::topology::KeystoreFormat;

/// Options of `verify`.
#[derive(Debug, Clone)]
pub struct Options {
    /// Warn about certificates expiring within this many days (default: renew_before_days).
    pub warn_days: Option<u32>,
}

/// One certificate parsed for checking.
struct Cert {
    der: Vec<u8>,
    info: CertInfo,
}

impl Cert {
    fn parse(der: &[u8]) -> Option<Cert> {
        CertInfo::from_der(der).ok().map(|info| Cert {
            der: der.to_vec(),
            info,
        })
    }
}

/// Collects findings and counts checks.
#[derive(Default)]
struct Collector {
    findings: Vec<Finding>,
    checked: usize,
}

impl Collector {
    fn check(&mut self, ok: bool, finding: impl FnOnce() -> Finding) -> bool {
        self.checked += 1;
        if !ok {
            self.findings.push(finding());
        }
        ok
    }

    fn push(&mut self, f: Finding) {
        self.findings.push(f);
    }

    fn merge(&mut self, other: Collector) {
        self.findings.extend(other.findings);
        self.checked += other.checked;
    }
}

/// Opens a keystore file for checking; on failure pushes the finding and returns None.
fn open_store(
    dir: &Path,
    rel: &str,
    format: KeystoreFormat,
    password: Option<&Password>,
    owner: &Owner,
    c: &mut Collector,
) -> Option<Keystore> {
    let bytes = match crate::input::read(dir.join(rel), crate::input::Limit::Keystore) {
        Ok(b) => b,
        Err(e) => {
            c.check(false, || {
                Finding::new(
                    Code::MissingFile,
                    owner,
                    Some(rel),
                    format!("cannot read the keystore: {e}"),
                )
            });
            return None;
        }
    };
    c.checked += 1;
    let want = format.container();
    let detected = KeystoreFormat::detect(&bytes);
    if let Some(found) = detected {
        c.check(found == want, || {
            Finding::new(Code::WrongKeystoreType, owner, Some(rel), format!("the file is {} but its name and configuration say {}; JDKs before 8u60 and non-Java readers refuse it", found.java_type(), want.java_type()))
                .expected_actual(want.java_type(), found.java_type())
        });
    }
    let Some(password) = password else {
        c.push(Finding::new(
            Code::WrongPassword,
            owner,
            Some(rel),
            "no password is recorded for this keystore",
        ));
        return None;
    };
    match Keystore::decode(&bytes, password) {
        Ok((store, found)) => {
            if found == KeystoreFormat::Pkcs12 {
                check_protection(&bytes, owner, rel, c);
            }
            Some(store)
        }
        Err(KeystoreError::WrongPassword) => {
            c.push(Finding::new(
                Code::WrongPassword,
                owner,
                Some(rel),
                "does not open with its recorded password (or the file was tampered with)",
            ));
            None
        }
        Err(e) => {
            c.push(Finding::new(
                Code::CorruptFile,
                owner,
                Some(rel),
                e.to_string(),
            ));
            None
        }
    }
}

/// unprotected-keystore: a PKCS#12 file opens without its password proving anything when it
/// has no MAC, and gives its key away when the key is in a plain key bag.
fn check_protection(bytes: &[u8], owner: &Owner, rel: &str, c: &mut Collector) {
    use crate::keystore::protection::{pkcs12_weaknesses, Weakness};
    let weaknesses = pkcs12_weaknesses(bytes);
    for w in &weaknesses {
        let message = match w {
            Weakness::NoMac => "has no integrity MAC: its password protects nothing, and anyone who can write the file can change its entries unnoticed",
            Weakness::ClearKey => "holds a private key unencrypted (a plain key bag): anyone who can read the file has the key, and Java's PKCS12 reader skips such a key, so Tomcat finds none",
        };
        c.push(Finding::new(
            Code::UnprotectedKeystore,
            owner,
            Some(rel),
            message,
        ));
    }
    c.checked += 1;
}

/// The raw public key bits of a PKCS#8 private key, as in a certificate's SubjectPublicKeyInfo.
fn public_key_of_pkcs8(pkcs8: &[u8]) -> Option<Vec<u8>> {
    use aws_lc_rs::signature::{
        EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P384_SHA384_ASN1_SIGNING,
    };
    if let Some(rsa) = rsa_public_key_of_pkcs8(pkcs8) {
        return Some(rsa);
    }
    for alg in [
        &ECDSA_P256_SHA256_ASN1_SIGNING,
        &ECDSA_P384_SHA384_ASN1_SIGNING,
    ] {
        if let Ok(k) = EcdsaKeyPair::from_pkcs8(alg, pkcs8) {
            return Some(k.public_key().as_ref().to_vec());
        }
    }
    None
}

/// The RSAPublicKey DER (`SEQUENCE { n, e }`) of an RSA PKCS#8 key of any size, read from its
/// structure (crypto libraries refuse keys below 2048 bits, which verify must still judge).
fn rsa_public_key_of_pkcs8(pkcs8: &[u8]) -> Option<Vec<u8>> {
    use crate::pki::der::{children, read_tlv, wrap};
    let outer = read_tlv(pkcs8, 0)?;
    let fields = children(pkcs8, outer)?;
    let (alg, key) = (fields.get(1)?, fields.get(2)?);
    let alg_oid = read_tlv(pkcs8, alg.content_start)?;
    // 1.2.840.113549.1.1.1 rsaEncryption
    if pkcs8[alg_oid.content_start..alg_oid.end]
        != [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01]
    {
        return None;
    }
    let rsa = read_tlv(pkcs8, key.content_start)?;
    let parts = children(pkcs8, rsa)?;
    let (n, e) = (parts.get(1)?, parts.get(2)?);
    let mut body = pkcs8[n.start..n.end].to_vec();
    body.extend_from_slice(&pkcs8[e.start..e.end]);
    Some(wrap(0x30, &body))
}

/// Looks `key` up in `map`, computing it (outside the lock) and keeping it when absent.
fn memoized<K: Eq + Hash, V: Clone>(
    map: &Mutex<HashMap<K, V>>,
    key: K,
    compute: impl FnOnce() -> V,
) -> V {
    let lock = || map.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(v) = lock().get(&key) {
        return v.clone();
    }
    let v = compute();
    lock().entry(key).or_insert(v).clone()
}

/// Work one verify run would otherwise repeat per node, done once: the primary keystore's key
/// is on every node, and a certificate is checked against the same issuer by every truststore
/// (the primary) or from two sides (a node's, by its truststore and its load balancer's bundle).
#[derive(Default)]
struct Shared {
    /// The public key of each private key seen, by the SHA-256 of its PKCS#8 (no key is kept).
    public_keys: Mutex<HashMap<[u8; 32], Option<Vec<u8>>>>,
    /// Whether a certificate is issued by (and verifies under) another, by (certificate, issuer).
    issued: Mutex<HashMap<CertPair, bool>>,
}

/// (certificate, issuer), DER.
type CertPair = (Vec<u8>, Vec<u8>);

impl Shared {
    /// [`public_key_of_pkcs8`], once per distinct key.
    fn public_key(&self, pkcs8: &[u8]) -> Option<Vec<u8>> {
        use sha2::Digest;
        let digest: [u8; 32] = sha2::Sha256::digest(pkcs8).into();
        memoized(&self.public_keys, digest, || public_key_of_pkcs8(pkcs8))
    }

    /// [`is_issued_by`], once per (certificate, issuer).
    fn issued_by(&self, cert: &[u8], issuer: &[u8]) -> bool {
        let key = (cert.to_vec(), issuer.to_vec());
        memoized(&self.issued, key, || is_issued_by(cert, issuer))
    }

    /// True when `leaf` chains, through `intermediates`, to one of `anchors`.
    fn chains_to(&self, leaf: &[u8], intermediates: &[Vec<u8>], anchors: &[&[u8]]) -> bool {
        let mut current = leaf.to_vec();
        for _ in 0..8 {
            if anchors
                .iter()
                .any(|a| *a == current.as_slice() || self.issued_by(&current, a))
            {
                return true;
            }
            match intermediates
                .iter()
                .find(|i| **i != current && self.issued_by(&current, i))
            {
                Some(next) => current = next.clone(),
                None => return false,
            }
        }
        false
    }
}

/// Checks that apply to every certificate: validity, key strength, signature, WSO2's default.
fn cert_health(
    cert: &Cert,
    owner: &Owner,
    file: &str,
    now: OffsetDateTime,
    warn: Duration,
    c: &mut Collector,
) {
    let i = &cert.info;
    let subject = || i.subject.clone();
    c.check(i.not_after >= now, || {
        Finding::new(
            Code::Expired,
            owner,
            Some(file),
            format!("`{}` expired on {}", i.subject, i.not_after.date()),
        )
        .subject(subject())
    });
    c.check(i.not_before <= now, || {
        Finding::new(
            Code::NotYetValid,
            owner,
            Some(file),
            format!("`{}` is not valid before {}", i.subject, i.not_before),
        )
        .subject(subject())
    });
    if i.not_after >= now {
        c.check(i.not_after - now > warn, || {
            Finding::new(
                Code::ExpiresSoon,
                owner,
                Some(file),
                format!("`{}` expires on {}", i.subject, i.not_after.date()),
            )
            .subject(subject())
        });
    }
    let weak_key = i.key.starts_with("RSA") && i.key_bits < 2048;
    c.check(!weak_key, || {
        Finding::new(
            Code::WeakKey,
            owner,
            Some(file),
            format!(
                "`{}` has a {}-bit RSA key; use 2048 bits or more",
                i.subject, i.key_bits
            ),
        )
        .subject(subject())
    });
    let weak_sig = !i.self_issued
        && (i.signature.contains("sha1")
            || i.signature.contains("SHA1")
            || i.signature.contains("md5"));
    c.check(!weak_sig, || {
        Finding::new(
            Code::WeakSignature,
            owner,
            Some(file),
            format!(
                "`{}` is signed with {}; reissue it with SHA-256",
                i.subject, i.signature
            ),
        )
        .subject(subject())
    });
    let default = i
        .common_names
        .iter()
        .all(|cn| cn.eq_ignore_ascii_case("localhost"))
        && !i.common_names.is_empty()
        && i.dns_names
            .iter()
            .all(|d| d.eq_ignore_ascii_case("localhost"))
        && i.ip_addresses.is_empty();
    c.check(!default, || Finding::new(Code::DefaultCertificate, owner, Some(file), "this is WSO2's shipped default certificate (CN=localhost): replace it with the set's keystores").subject(subject()));
}

/// Flags a trusted entry holding one of WSO2's well-known default keys (their private keys ship
/// in every WSO2 download, so trusting one lets anyone impersonate a peer).
fn trusts_default_key(alias: &str, cert: &[u8], owner: &Owner, file: &str, c: &mut Collector) {
    let known = crate::config::default_keys::wso2_default_key(cert);
    c.check(known.is_none(), || {
        Finding::new(
            Code::TrustsDefaultKey,
            owner,
            Some(file),
            format!(
                "trusts `{alias}`, WSO2's well-known default key {}: its private key ships with every WSO2 download, so anyone can impersonate a peer; remove the entry",
                known.unwrap_or_default()
            ),
        )
    });
}

/// Checks that a key entry's key (`public`: its public key, [`public_key_of_pkcs8`]) belongs
/// to its certificate.
fn key_matches(
    public: Option<&[u8]>,
    cert: &Cert,
    owner: &Owner,
    file: &str,
    c: &mut Collector,
) -> bool {
    let cert_key = X509Certificate::from_der(&cert.der)
        .ok()
        .map(|(_, x)| x.public_key().subject_public_key.data.to_vec());
    let ok = public.is_some() && public == cert_key.as_deref();
    c.check(ok, || {
        Finding::new(
            Code::KeyCertMismatch,
            owner,
            Some(file),
            format!("the private key does not belong to `{}`", cert.info.subject),
        )
        .subject(cert.info.subject.clone())
    })
}

/// Checks that `cert` is valid for each of `hosts` under JSSE's rules (and warns when only Java's
/// looser rules accept it).
fn names_cover(
    cert: &Cert,
    hosts: &[String],
    owner: &Owner,
    file: &str,
    c: &mut Collector,
) -> bool {
    let Ok(names) = CertNames::from_der(&cert.der) else {
        return c.check(false, || {
            Finding::new(
                Code::CorruptFile,
                owner,
                Some(file),
                "the certificate's names do not parse",
            )
        });
    };
    let mut all = true;
    for host in hosts {
        let Ok(parsed) = Host::parse(host) else {
            continue;
        };
        let v = hostname::check(&names, &parsed);
        let covered = cert.info.san_strings().join(", ");
        all &= c.check(v.java, || {
            let refusal = hostname::jsse_refusal(&names, &parsed);
            Finding::new(Code::HostnameMismatch, owner, Some(file), format!("does not cover {host} (it covers {covered}): Java peers reaching it as {host} fail with \"{refusal}\""))
                .subject(cert.info.subject.clone())
                .expected_actual(host.clone(), covered.clone())
        });
        if v.java {
            c.check(v.strict, || Finding::new(Code::JavaOnlyMatch, owner, Some(file), format!("{host} matches only under JSSE's looser rules ({}); strict clients refuse it", v.reason)).subject(cert.info.subject.clone()));
        }
    }
    all
}

/// Verifies a generated set offline.
pub fn verify_set(set: &OpenedSet, options: &Options) -> Report {
    let now = OffsetDateTime::now_utc();
    let warn = Duration::days(i64::from(
        options.warn_days.unwrap_or(set.view.pki.renew_before_days),
    ));
    let dir = &set.dir;
    let view = &set.view;
    let format = view.keystores.format;
    let mut c = Collector::default();

    // A run killed while writing the set leaves its journal: the files may mix old and new.
    c.check(!dir.join(layout::JOURNAL).exists(), || {
        Finding::new(
            Code::InterruptedWrite,
            &Owner::Set,
            Some(layout::JOURNAL),
            "a run that was writing this set was interrupted (or is running now): its files may mix the old and the new set; run `apim-pki generate` (or the interrupted command) to complete it",
        )
    });

    // The CAs the set trusts.
    let anchors = read_anchors(dir, now, warn, &mut c);
    let anchor_refs: Vec<&[u8]> = anchors.iter().map(Vec::as_slice).collect();

    // Per node, in parallel: open and check its keystores.
    let shared = Shared::default();
    let nodes: Vec<NodeResult> = view
        .nodes
        .par_iter()
        .map(|node| verify_node(set, &shared, node, &anchor_refs, now, warn))
        .collect();
    let majority = majority_primary(&nodes);
    let tls_leaves: BTreeMap<&str, Vec<u8>> = view
        .nodes
        .iter()
        .zip(&nodes)
        .filter_map(|(n, r)| r.tls_leaf.clone().map(|l| (n.name.as_str(), l)))
        .collect();
    let mut keys = ca_keys(set, &mut c);
    for (node, result) in view.nodes.iter().zip(nodes) {
        let NodeResult {
            findings: collector,
            primary,
            trusted,
            keys: node_keys,
            ..
        } = result;
        keys.extend(node_keys);
        c.merge(collector);
        if let (Some(p), Some(m)) = (&primary, &majority) {
            let owner = Owner::Node(node.name.clone());
            let file = layout::node_security(&node.name, &layout::primary_file(format));
            c.check(p == m, || Finding::new(Code::PrimaryDiffers, &owner, Some(&file), "this node's primary key is not the one the other nodes share: data encrypted elsewhere will not decrypt here, and tokens it signs fail at the gateway"));
        }
        // Truststore must hold the set's primary under both aliases.
        if let (Some(m), Some(trusted)) = (&majority, &trusted) {
            verify_truststore_primary(set, node, trusted, m, &mut c);
        }
    }

    for lb in &view.load_balancers {
        keys.extend(verify_lb(set, &shared, lb, &anchor_refs, now, warn, &mut c));
        let cx = lb_configs::Cx {
            set,
            shared: &shared,
            anchors: &anchor_refs,
            leaves: &tls_leaves,
        };
        lb_configs::verify_lb_configs(&cx, lb, &mut c);
    }
    shared_keys(&keys, &mut c);
    peer_hosts::verify_peer_hosts(set, &tls_leaves, &mut c);
    let (vault_findings, vault_checked) = super::vault::verify_node_files(set);
    c.findings.extend(vault_findings);
    c.checked += vault_checked;
    Report::new(set.inventory.ca_stage.clone(), c.findings, c.checked)
}

/// The primary certificate most nodes hold: the set's (the others differ).
fn majority_primary(nodes: &[NodeResult]) -> Option<Vec<u8>> {
    let mut counts: BTreeMap<&Vec<u8>, usize> = BTreeMap::new();
    for p in nodes.iter().filter_map(|r| r.primary.as_ref()) {
        *counts.entry(p).or_insert(0) += 1;
    }
    counts
        .into_iter()
        .max_by_key(|(_, n)| *n)
        .map(|(p, _)| p.clone())
}

/// Who holds a private key, for shared-key.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Holder {
    Ca,
    Primary,
    Node(String),
    LoadBalancer(String),
}

/// A private key found in the set: its holder, the file and its public key.
struct Held {
    holder: Holder,
    file: String,
    key: Vec<u8>,
    /// True when the key belongs to the holder's certificate and that names the holder: the
    /// holder is then the key's likely owner, not a copy.
    own: bool,
}

impl Held {
    fn owner(&self) -> Owner {
        match &self.holder {
            Holder::Node(n) => Owner::Node(n.clone()),
            Holder::LoadBalancer(h) => Owner::LoadBalancer(h.clone()),
            Holder::Ca | Holder::Primary => Owner::Set,
        }
    }

    fn describe(&self) -> String {
        match &self.holder {
            Holder::Ca => format!("the CA ({})", self.file),
            Holder::Primary => format!("the primary ({})", self.file),
            Holder::Node(n) => format!("node {n} ({})", self.file),
            Holder::LoadBalancer(h) => format!("load balancer {h} ({})", self.file),
        }
    }
}

/// shared-key: no two holders share a private key (the primary keystores of all nodes are one
/// holder). Reported for each node or load balancer in a group, else once for the primary.
fn shared_keys(keys: &[Held], c: &mut Collector) {
    let mut groups: BTreeMap<&[u8], Vec<&Held>> = BTreeMap::new();
    for held in keys {
        let group = groups.entry(held.key.as_slice()).or_default();
        if !group.iter().any(|h| h.holder == held.holder) {
            group.push(held);
        }
    }
    for group in groups.values() {
        let leaves: Vec<&&Held> = group
            .iter()
            .filter(|h| matches!(h.holder, Holder::Node(_) | Holder::LoadBalancer(_)))
            .collect();
        // The copies, when the certificates tell (a key that does not belong to its holder's
        // certificate, or a certificate for someone else); else every node and load balancer.
        let copies: Vec<&&Held> = group.iter().filter(|h| !h.own).collect();
        let reported: Vec<&&Held> = match (group.len(), copies.is_empty(), leaves.is_empty()) {
            (0 | 1, _, _) => Vec::new(),
            (_, false, _) => copies,
            (_, true, false) => leaves,
            (_, true, true) => group
                .iter()
                .filter(|h| h.holder == Holder::Primary)
                .collect(),
        };
        c.checked += group.len();
        for held in reported {
            let others: Vec<String> = group
                .iter()
                .filter(|h| h.holder != held.holder)
                .map(|h| h.describe())
                .collect();
            let rotate = match &held.holder {
                Holder::Node(n) => format!("`apim-pki rotate --node {n}`"),
                Holder::LoadBalancer(h) => format!("`apim-pki rotate --load-balancer {h}`"),
                _ => "restoring the file from a backup".into(),
            };
            c.push(
                Finding::new(Code::SharedKey, &held.owner(), Some(&held.file), format!("holds the same private key as {}: a copied key is exposed on both, and one cannot be replaced without the other; give it its own with {rotate}", others.join(", ")))
                    .expected_actual("a private key of its own", others.join(", ")),
            );
        }
    }
}

/// The CA keys the set holds (ca/ca.key, and ca/next/ca.key during a rollover): each must be a
/// PKCS#8 PEM key belonging to its certificate. Returns them for shared-key.
fn ca_keys(set: &OpenedSet, c: &mut Collector) -> Vec<Held> {
    use crate::output::inventory::ArtifactKind;
    let pairs = [
        (ArtifactKind::CaKey, layout::CA_KEY, layout::CA_CERT),
        (
            ArtifactKind::CaNextKey,
            layout::CA_NEXT_KEY,
            layout::CA_NEXT_CERT,
        ),
    ];
    let mut out = Vec::new();
    for (kind, key_rel, cert_rel) in pairs {
        if !set.inventory.artifacts.iter().any(|a| a.kind == kind) {
            continue;
        }
        let Some(pkcs8) = read_pem_key(&set.dir, key_rel, &Owner::Set, c) else {
            continue;
        };
        let cert = crate::input::read(set.dir.join(cert_rel), crate::input::Limit::Certificate)
            .ok()
            .and_then(|b| pem::certs_from_pem(&b).ok())
            .and_then(|v| v.into_iter().next())
            .and_then(|der| Cert::parse(&der));
        if cert_rel != layout::CA_CERT {
            // ca/ca.crt is read (and reported) with the anchors.
            c.check(cert.is_some(), || {
                let why = "missing, or not a PEM certificate that parses";
                Finding::new(Code::CorruptFile, &Owner::Set, Some(cert_rel), why)
            });
        }
        let public = public_key_of_pkcs8(&pkcs8);
        let own =
            cert.is_some_and(|cert| key_matches(public.as_deref(), &cert, &Owner::Set, key_rel, c));
        out.extend(public.map(|key| Held {
            holder: Holder::Ca,
            file: key_rel.to_string(),
            key,
            own,
        }));
    }
    out
}

/// A PKCS#8 PEM private key file; a finding (and `None`) when it is missing or not such a key.
fn read_pem_key(
    dir: &Path,
    rel: &str,
    owner: &Owner,
    c: &mut Collector,
) -> Option<zeroize::Zeroizing<Vec<u8>>> {
    use rustls_pki_types::pem::PemObject;
    let Ok(bytes) = crate::input::read(dir.join(rel), crate::input::Limit::Certificate) else {
        c.check(false, || {
            Finding::new(Code::MissingFile, owner, Some(rel), "missing")
        });
        return None;
    };
    let key = rustls_pki_types::PrivatePkcs8KeyDer::from_pem_slice(&bytes)
        .ok()
        .map(|k| zeroize::Zeroizing::new(k.secret_pkcs8_der().to_vec()))
        .filter(|k| public_key_of_pkcs8(k).is_some());
    c.check(key.is_some(), || {
        Finding::new(
            Code::CorruptFile,
            owner,
            Some(rel),
            "not a PKCS#8 PEM private key of a supported type (RSA, EC P-256/P-384)",
        )
    });
    key
}

/// The CAs of ca/bundle.crt and ca/ca.crt: each certificate parses and is healthy.
fn read_anchors(
    dir: &Path,
    now: OffsetDateTime,
    warn: Duration,
    c: &mut Collector,
) -> Vec<Vec<u8>> {
    let mut anchors: Vec<Vec<u8>> = Vec::new();
    let set = &Owner::Set;
    for rel in [layout::CA_BUNDLE, layout::CA_CERT] {
        let Ok(bytes) = crate::input::read(dir.join(rel), crate::input::Limit::Certificate) else {
            c.check(false, || {
                Finding::new(Code::MissingFile, set, Some(rel), "missing")
            });
            continue;
        };
        let Some(certs) = pem::certs_from_pem(&bytes).ok().filter(|v| !v.is_empty()) else {
            let why = "not a PEM certificate file";
            c.check(false, || {
                Finding::new(Code::CorruptFile, set, Some(rel), why)
            });
            continue;
        };
        for der in certs {
            match CertInfo::from_der(&der) {
                Ok(info) => {
                    let cert = Cert {
                        der: der.clone(),
                        info,
                    };
                    cert_health(&cert, set, rel, now, warn, c);
                }
                Err(e) => {
                    let why = format!("a certificate in it does not parse ({e})");
                    c.check(false, || {
                        Finding::new(Code::CorruptFile, set, Some(rel), why)
                    });
                }
            }
            if !anchors.contains(&der) {
                anchors.push(der);
            }
        }
    }
    anchors
}

fn verify_truststore_primary(
    set: &OpenedSet,
    node: &NodeView,
    trusted: &[(String, Vec<u8>)],
    primary: &[u8],
    c: &mut Collector,
) {
    let rel = layout::node_security(
        &node.name,
        &layout::truststore_file(set.view.keystores.format),
    );
    let owner = Owner::Node(node.name.clone());
    for alias in ["wso2carbon", "gateway_certificate_alias"] {
        let found = trusted
            .iter()
            .any(|(a, cert)| a == alias && cert == primary);
        c.check(found, || {
            Finding::new(Code::TruststoreMissingPrimary, &owner, Some(&rel), format!("has no trusted entry `{alias}` holding the primary certificate: gateways then reject JWTs and API keys the key manager signs"))
                .expected_actual(alias, "absent or another certificate")
        });
    }
}

/// What checking one node found, and what the set-wide checks need from it.
struct NodeResult {
    findings: Collector,
    /// The node's primary certificate.
    primary: Option<Vec<u8>>,
    /// The truststore's trusted entries (alias, certificate), when it opened.
    trusted: Option<Vec<(String, Vec<u8>)>>,
    /// The certificate the node serves TLS with.
    tls_leaf: Option<Vec<u8>>,
    /// The private keys its keystores hold.
    keys: Vec<Held>,
}

/// Checks one node.
fn verify_node(
    set: &OpenedSet,
    shared: &Shared,
    node: &NodeView,
    anchors: &[&[u8]],
    now: OffsetDateTime,
    warn: Duration,
) -> NodeResult {
    let mut c = Collector::default();
    let cx = NodeCx {
        set,
        shared,
        node,
        owner: Owner::Node(node.name.clone()),
        format: set.view.keystores.format,
        now,
        warn,
    };
    // Truststore first: a missing CA there is the root cause of every chain failure below.
    let (trust, trusted) = node_truststore(&cx, anchors, &mut c);
    let mut keys = Vec::new();
    let primary = node_primary(&cx, &trust, &mut keys, &mut c);
    let tls_leaf = node_tls(&cx, &trust, &mut keys, &mut c);
    NodeResult {
        findings: c,
        primary,
        trusted,
        tls_leaf,
        keys,
    }
}

/// What every check of one node needs.
struct NodeCx<'a> {
    set: &'a OpenedSet,
    shared: &'a Shared,
    node: &'a NodeView,
    owner: Owner,
    format: KeystoreFormat,
    now: OffsetDateTime,
    warn: Duration,
}

/// A node's truststore as the chain checks need it.
struct Trust {
    /// True when the truststore opened and trusts the set's CA (else that is the root cause).
    usable: bool,
    certs: Vec<Vec<u8>>,
}

impl Trust {
    /// untrusted-chain: `chain` builds to a CA of the truststore.
    fn check_chain(
        &self,
        shared: &Shared,
        chain: &[Vec<u8>],
        owner: &Owner,
        rel: &str,
        c: &mut Collector,
    ) {
        if !self.usable {
            return; // root cause already reported
        }
        if let Some(leaf) = chain.first() {
            let refs: Vec<&[u8]> = self.certs.iter().map(Vec::as_slice).collect();
            let ok = shared.chains_to(leaf, &chain[1..], &refs);
            c.check(ok, || Finding::new(Code::UntrustedChain, owner, Some(rel), "the certificate does not chain to a CA in this node's truststore (\"PKIX path building failed\")"));
        }
    }
}

/// Opens the node's truststore: every trusted entry parses, and the set's CA is among them.
/// Returns the chain checker and the trusted entries (alias, certificate) when it opened.
#[allow(clippy::type_complexity)]
fn node_truststore(
    cx: &NodeCx,
    anchors: &[&[u8]],
    c: &mut Collector,
) -> (Trust, Option<Vec<(String, Vec<u8>)>>) {
    let (set, owner) = (cx.set, &cx.owner);
    let rel = layout::node_security(&cx.node.name, &layout::truststore_file(cx.format));
    let password = set.password(crate::password::PasswordRole::Truststore);
    let Some(store) = open_store(&set.dir, &rel, cx.format, password, owner, c) else {
        return (
            Trust {
                usable: false,
                certs: Vec::new(),
            },
            None,
        );
    };
    let entries: Vec<(String, Vec<u8>)> = store
        .entries
        .iter()
        .filter_map(|e| match e {
            Entry::Trusted { alias, cert } => Some((alias.clone(), cert.clone())),
            Entry::PrivateKey { .. } => None,
        })
        .collect();
    for (alias, cert) in &entries {
        let parsed = CertInfo::from_der(cert);
        c.check(parsed.is_ok(), || Finding::new(Code::CorruptFile, owner, Some(&rel), format!("its trusted entry `{alias}` is not a certificate that parses ({}): Java refuses to load the truststore", parsed.as_ref().err().map(ToString::to_string).unwrap_or_default())));
    }
    for (alias, cert) in &entries {
        trusts_default_key(alias, cert, owner, &rel, c);
    }
    let certs: Vec<Vec<u8>> = entries.iter().map(|(_, cert)| cert.clone()).collect();
    let has_ca = anchors
        .iter()
        .any(|a| certs.iter().any(|t| t.as_slice() == *a));
    c.check(has_ca, || Finding::new(Code::TruststoreMissingCa, owner, Some(&rel), "does not trust the set's CA: every TLS connection from this node fails with \"PKIX path building failed\"").expected_actual("the CA of ca/bundle.crt", format!("{} trusted entries, none of them the CA", certs.len())));
    (
        Trust {
            usable: has_ca,
            certs,
        },
        Some(entries),
    )
}

/// The node's primary keystore; returns its certificate.
fn node_primary(
    cx: &NodeCx,
    trust: &Trust,
    keys: &mut Vec<Held>,
    c: &mut Collector,
) -> Option<Vec<u8>> {
    let (set, owner) = (cx.set, &cx.owner);
    let rel = layout::node_security(&cx.node.name, &layout::primary_file(cx.format));
    let password = set.password(crate::password::PasswordRole::Primary);
    let store = open_store(&set.dir, &rel, cx.format, password, owner, c)?;
    let alias = &set.view.keystores.primary_alias;
    let (pkcs8, chain) = key_entry(&store, alias, owner, &rel, c)?;
    let mut own = false;
    let mut primary = None;
    let public = cx.shared.public_key(pkcs8);
    if let Some(cert) = chain_leaf(chain, owner, &rel, c) {
        own = key_matches(public.as_deref(), &cert, owner, &rel, c);
        cert_health(&cert, owner, &rel, cx.now, cx.warn, c);
        trust.check_chain(cx.shared, chain, owner, &rel, c);
        primary = Some(cert.der);
    }
    keys.extend(public.map(|k| Held {
        holder: Holder::Primary,
        file: rel.clone(),
        key: k,
        own,
    }));
    primary
}

/// The keystore Tomcat serves TLS with: per-node, or the primary in shared mode (whose own
/// checks ran above; here only its names). Returns the certificate it serves.
fn node_tls(
    cx: &NodeCx,
    trust: &Trust,
    keys: &mut Vec<Held>,
    c: &mut Collector,
) -> Option<Vec<u8>> {
    let (set, owner, view) = (cx.set, &cx.owner, &cx.set.view);
    let (rel, alias) = view.tls_file(&cx.node.name);
    let mut hosts = vec![cx.node.host.clone()];
    hosts.extend(view.lb_for(cx.node.profile).map(|lb| lb.host.clone()));
    let per_node = view.per_node_tls();
    let store = if per_node {
        open_store(
            &set.dir,
            &rel,
            cx.format,
            set.password(crate::password::PasswordRole::Tls),
            owner,
            c,
        )?
    } else {
        let bytes = crate::input::read(set.dir.join(&rel), crate::input::Limit::Keystore).ok()?;
        Keystore::decode(
            &bytes,
            set.password(crate::password::PasswordRole::Primary)?,
        )
        .ok()?
        .0
    };
    let (pkcs8, chain) = key_entry(&store, &alias, owner, &rel, c)?;
    let leaf = if per_node {
        chain_leaf(chain, owner, &rel, c)
    } else {
        chain.first().and_then(|d| Cert::parse(d))
    };
    let mut own = false;
    let mut served = None;
    let public = per_node.then(|| public_key_of_pkcs8(pkcs8)).flatten();
    if let Some(cert) = leaf {
        if per_node {
            own = key_matches(public.as_deref(), &cert, owner, &rel, c);
            cert_health(&cert, owner, &rel, cx.now, cx.warn, c);
            trust.check_chain(cx.shared, chain, owner, &rel, c);
        }
        own &= names_cover(&cert, &hosts, owner, &rel, c);
        served = Some(cert.der);
    }
    if per_node {
        keys.extend(public.map(|k| Held {
            holder: Holder::Node(cx.node.name.clone()),
            file: rel.clone(),
            key: k,
            own,
        }));
    }
    served
}

/// The leaf of a key entry's chain, parsed; a finding (and `None`) when the chain is empty or
/// one of its certificates does not parse: no server can use such an entry.
fn chain_leaf(chain: &[Vec<u8>], owner: &Owner, rel: &str, c: &mut Collector) -> Option<Cert> {
    let Some(first) = chain.first() else {
        c.check(false, || {
            Finding::new(
                Code::CorruptFile,
                owner,
                Some(rel),
                "its key entry has no certificate chain: Tomcat and WSO2 cannot use the key",
            )
        });
        return None;
    };
    for (i, der) in chain.iter().enumerate() {
        let parsed = CertInfo::from_der(der);
        c.check(parsed.is_ok(), || {
            let which = if i == 0 {
                "the certificate".to_string()
            } else {
                format!("certificate {} of the chain", i + 1)
            };
            Finding::new(
                Code::CorruptFile,
                owner,
                Some(rel),
                format!(
                    "{which} of its key entry does not parse ({}): Tomcat and WSO2 cannot load it",
                    parsed
                        .as_ref()
                        .err()
                        .map(ToString::to_string)
                        .unwrap_or_default()
                ),
            )
        });
    }
    Cert::parse(first)
}

/// The single private-key entry of a keystore, as Tomcat takes it whatever its alias.
fn key_entry<'a>(
    store: &'a Keystore,
    alias: &str,
    owner: &Owner,
    rel: &str,
    c: &mut Collector,
) -> Option<(&'a [u8], &'a [Vec<u8>])> {
    let keys: Vec<&Entry> = store.key_entries().collect();
    match keys.as_slice() {
        [] => {
            c.push(Finding::new(
                Code::CorruptFile,
                owner,
                Some(rel),
                "holds no private key entry",
            ));
            None
        }
        [Entry::PrivateKey {
            alias: found,
            pkcs8,
            chain,
        }] => {
            c.check(found == alias, || {
                Finding::new(
                    Code::AliasMismatch,
                    owner,
                    Some(rel),
                    format!("its key entry is `{found}`, expected `{alias}`"),
                )
                .expected_actual(alias, found.clone())
            });
            Some((pkcs8.as_slice(), chain.as_slice()))
        }
        many => {
            c.push(Finding::new(
                Code::CorruptFile,
                owner,
                Some(rel),
                format!(
                    "holds {} private key entries; Tomcat needs exactly one",
                    many.len()
                ),
            ));
            None
        }
    }
}

/// Checks a load balancer's files: tls.crt and tls.key (nginx), haproxy.pem (the same chain and
/// key in one file); ca.crt is checked with the load balancer's configuration (lb_configs).
/// Returns its key for shared-key.
fn verify_lb(
    set: &OpenedSet,
    shared: &Shared,
    lb: &LbView,
    anchors: &[&[u8]],
    now: OffsetDateTime,
    warn: Duration,
    c: &mut Collector,
) -> Option<Held> {
    let owner = Owner::LoadBalancer(lb.host.clone());
    let cert_rel = layout::lb_file(&lb.host, LbFile::Cert);
    let key_rel = layout::lb_file(&lb.host, LbFile::Key);
    let chain = read_pem_chain(&set.dir, &cert_rel, &owner, c);
    let key = read_pem_key(&set.dir, &key_rel, &owner, c);
    let cert = chain.as_ref().and_then(|ch| Cert::parse(&ch[0]));
    let public = key.as_ref().and_then(|k| public_key_of_pkcs8(k));
    let pair_ok = match (&key, &cert) {
        (Some(_), Some(cert)) => key_matches(public.as_deref(), cert, &owner, &key_rel, c),
        _ => false,
    };
    let names_ok = cert.as_ref().is_some_and(|cert| {
        names_cover(cert, std::slice::from_ref(&lb.host), &owner, &cert_rel, c)
    });
    verify_haproxy(set, lb, chain.as_deref().filter(|_| pair_ok), c);
    let held = public.map(|k| Held {
        holder: Holder::LoadBalancer(lb.host.clone()),
        file: key_rel.clone(),
        key: k,
        own: pair_ok && names_ok,
    });
    let (chain, cert) = (chain?, cert?);
    cert_health(&cert, &owner, &cert_rel, now, warn, c);
    let ok = shared.chains_to(&chain[0], &chain[1..], anchors);
    c.check(ok, || {
        Finding::new(
            Code::UntrustedChain,
            &owner,
            Some(&cert_rel),
            "does not chain to the set's CA",
        )
    });
    held
}

/// A PEM file of certificates, each of which parses; a finding (and `None`) otherwise.
fn read_pem_chain(dir: &Path, rel: &str, owner: &Owner, c: &mut Collector) -> Option<Vec<Vec<u8>>> {
    let Ok(bytes) = crate::input::read(dir.join(rel), crate::input::Limit::Certificate) else {
        c.check(false, || {
            Finding::new(Code::MissingFile, owner, Some(rel), "missing")
        });
        return None;
    };
    let chain = pem::certs_from_pem(&bytes).ok().filter(|v| !v.is_empty());
    let bad = chain
        .iter()
        .flatten()
        .find_map(|der| CertInfo::from_der(der).err());
    let ok = chain.is_some() && bad.is_none();
    c.check(ok, || {
        let why = bad.map_or("not a PEM certificate file".into(), |e| {
            format!("a certificate in it does not parse ({e})")
        });
        Finding::new(
            Code::CorruptFile,
            owner,
            Some(rel),
            format!("{why}: the load balancer cannot start with it"),
        )
    });
    chain.filter(|_| ok)
}

/// haproxy.pem: a certificate chain and the key of its leaf, in one file; and, when tls.crt and
/// tls.key belong together (`tls_chain`), the same chain as tls.crt (else that is the root cause).
fn verify_haproxy(set: &OpenedSet, lb: &LbView, tls_chain: Option<&[Vec<u8>]>, c: &mut Collector) {
    let owner = Owner::LoadBalancer(lb.host.clone());
    let rel = layout::lb_file(&lb.host, LbFile::Haproxy);
    let Some(certs) = read_pem_chain(&set.dir, &rel, &owner, c) else {
        return;
    };
    let Some(key) = read_pem_key(&set.dir, &rel, &owner, c) else {
        return;
    };
    if let Some(cert) = Cert::parse(&certs[0]) {
        key_matches(public_key_of_pkcs8(&key).as_deref(), &cert, &owner, &rel, c);
    }
    if let Some(tls_chain) = tls_chain {
        c.check(certs == tls_chain, || {
            Finding::new(Code::CorruptFile, &owner, Some(&rel), "its certificates are not those of tls.crt: HAProxy would serve another certificate than nginx")
        });
    }
}

/// A host and port `--live` probes, and what may answer there.
#[derive(Debug, Clone)]
pub struct LiveTarget {
    pub owner: Owner,
    pub host: String,
    pub port: u16,
    /// Leaf certificates acceptable at this endpoint.
    pub acceptable: Vec<Vec<u8>>,
}

/// The endpoints `--live` probes (docs/commands.md): each node's 9443, gateways' 8243, traffic managers'
/// 9711 (plus offsets), each load balancer's 9443 (and 8243 for the gateway's).
pub fn live_targets(set: &OpenedSet) -> Vec<LiveTarget> {
    let view = &set.view;
    let leaf_of = |node: &NodeView| -> Option<Vec<u8>> {
        let (rel, _) = view.tls_file(&node.name);
        let role = if view.per_node_tls() {
            crate::password::PasswordRole::Tls
        } else {
            crate::password::PasswordRole::Primary
        };
        let bytes = crate::input::read(set.dir.join(rel), crate::input::Limit::Keystore).ok()?;
        let (store, _) = Keystore::decode(&bytes, set.password(role)?).ok()?;
        let leaf = store
            .key_entries()
            .next()
            .and_then(|e| e.cert())
            .map(<[u8]>::to_vec);
        leaf
    };
    let leaves: Vec<Option<Vec<u8>>> = view.nodes.par_iter().map(leaf_of).collect();
    let mut targets = Vec::new();
    for (node, leaf) in view.nodes.iter().zip(&leaves) {
        let acceptable: Vec<Vec<u8>> = leaf.iter().cloned().collect();
        let mut ports = vec![9443];
        if node.profile.is_gateway() {
            ports.push(8243);
        }
        if node.profile == crate::topology::Profile::TrafficManager {
            ports.push(9711);
        }
        for port in ports {
            targets.push(LiveTarget {
                owner: Owner::Node(node.name.clone()),
                host: node.host.clone(),
                port: port + node.offset,
                acceptable: acceptable.clone(),
            });
        }
    }
    for lb in &view.load_balancers {
        let own = crate::input::read(
            set.dir.join(layout::lb_file(&lb.host, LbFile::Cert)),
            crate::input::Limit::Certificate,
        )
        .ok()
        .and_then(|b| pem::certs_from_pem(&b).ok())
        .and_then(|c| c.into_iter().next());
        let mut acceptable: Vec<Vec<u8>> = own.into_iter().collect();
        for (node, leaf) in view.nodes.iter().zip(&leaves) {
            if node.profile == lb.fronts {
                acceptable.extend(leaf.iter().cloned());
            }
        }
        let mut ports = vec![9443];
        if matches!(
            lb.fronts,
            crate::topology::Profile::GatewayWorker | crate::topology::Profile::UniversalGateway
        ) {
            ports.push(8243);
        }
        for port in ports {
            targets.push(LiveTarget {
                owner: Owner::LoadBalancer(lb.host.clone()),
                host: lb.host.clone(),
                port,
                acceptable: acceptable.clone(),
            });
        }
    }
    targets
}
