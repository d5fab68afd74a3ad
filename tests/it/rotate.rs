//! `apim-pki rotate` and renewal through the CLI.
//!
//! * The staged CA rollover on the seed's HA topology, checked the way a fleet lives through it:
//!   after every stage the set is copied aside, and every node still on the previous stage's
//!   files must complete a real JSSE handshake (host-name checking on) with every node already on
//!   the new stage's files, in both directions. Skipping a stage (S0 truststore, S2 certificate)
//!   must fail with a PKIX error: that is why the stages exist. All truststores of a stage are
//!   byte-identical (asserted), so one stands for every client of that stage, and each distinct
//!   (server keystore, client truststore, host) is one TlsProbe JVM (its own JSSE server and
//!   client): 66 JVMs cover the 660 ordered node pairs of the three transitions.
//! * Renewal by `generate` inside `renew_before_days`: same keys, new serials, nothing else.
//! * `--primary-cert`: data encrypted with the old primary certificate (RSA-OAEP, as WSO2 does)
//!   still decrypts with the new primary keystore (tests/java/OaepCheck.java).
//! * `--node`, `--load-balancer` and a bare `rotate` touch exactly what they name.
//! * Refused input exits 2 and leaves every file as it was; `--dry-run` writes nothing.
//!
//! The Java parts need `java` and `javac`: skipped without them, a failure when CI=true. Timings
//! are printed (run with `--nocapture`), never asserted.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::util::cli::{
    generate, ha_example, minimal_example, plan_json, run, secrets, snapshot, write_topology, Run,
};
use crate::util::files::{copy_files, s};
use crate::util::java;
use crate::util::set_paths::{primary, tls, truststore};
use apim_pki::CertInfo;
use apim_pki::Password;
use apim_pki::{pem, Entry, Keystore};
use serde_json::Value;
use sha2::{Digest, Sha256};

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

type Files = BTreeMap<String, Vec<u8>>;

/// `load-balancers/HOST/FILE`.
fn lb(host: &str, file: &str) -> String {
    format!("load-balancers/{host}/{file}")
}

/// The nodes (name, host) and load-balancer hosts of a topology.
struct Fleet {
    nodes: Vec<(String, String)>,
    lbs: Vec<String>,
}

impl Fleet {
    fn of(topology: &str) -> Fleet {
        let table: toml::Table = topology.parse().expect("topology parses as TOML");
        let nodes = table["node"]
            .as_array()
            .expect("[[node]]")
            .iter()
            .map(|n| {
                (
                    n["name"].as_str().expect("name").to_string(),
                    n["host"].as_str().expect("host").to_string(),
                )
            })
            .collect();
        let lbs = table
            .get("load_balancer")
            .and_then(|l| l.as_array())
            .map(|l| {
                l.iter()
                    .map(|b| b["host"].as_str().expect("host").to_string())
                    .collect()
            })
            .unwrap_or_default();
        Fleet { nodes, lbs }
    }

    fn names(&self) -> impl Iterator<Item = &str> {
        self.nodes.iter().map(|(n, _)| n.as_str())
    }
}

/// `apim-pki rotate TOPOLOGY --out OUT ARGS...`.
fn rotate(topology: &Path, out: &Path, args: &[&str]) -> Run {
    let mut all = vec!["rotate", s(topology), "--out", s(out)];
    all.extend_from_slice(args);
    let start = Instant::now();
    let r = run(&all, &[]);
    eprintln!(
        "timing: rotate {}: {:?} (exit {})",
        args.join(" "),
        start.elapsed(),
        r.code
    );
    r
}

/// [`rotate`], which must exit 0.
#[track_caller]
fn rotate_ok(topology: &Path, out: &Path, args: &[&str]) -> Run {
    let r = rotate(topology, out, args);
    assert_eq!(
        r.code,
        0,
        "rotate {} failed:\nstdout: {}\nstderr: {}",
        args.join(" "),
        r.stdout,
        r.stderr
    );
    r
}

/// `verify OUT --format json` must pass (exit 0, `ok`, no errors) and report `stage`.
#[track_caller]
fn verify_ok(out: &Path, stage: &str) {
    let r = run(&["verify", s(out), "--format", "json"], &[]);
    let json: Value = serde_json::from_str(&r.stdout).unwrap_or_else(|e| {
        panic!(
            "verify printed no JSON ({e}, exit {}):\nstdout: {}\nstderr: {}",
            r.code, r.stdout, r.stderr
        )
    });
    assert_eq!(
        (r.code, &json["ok"], json["summary"]["errors"].as_u64()),
        (0, &Value::Bool(true), Some(0)),
        "verify failed at stage {stage}:\n{}",
        r.stdout
    );
    assert_eq!(json["ca_stage"], stage, "verify's ca_stage:\n{}", r.stdout);
}

/// inventory.json of a set.
fn inventory(out: &Path) -> Value {
    let text = std::fs::read_to_string(out.join("inventory.json")).expect("inventory.json");
    serde_json::from_str(&text).expect("inventory.json parses")
}

#[track_caller]
fn assert_stage(out: &Path, stage: &str, generation: u64) {
    let inv = inventory(out);
    assert_eq!(
        (inv["ca_stage"].as_str(), inv["ca_generation"].as_u64()),
        (Some(stage), Some(generation)),
        "inventory.json ca_stage / ca_generation"
    );
}

/// `generate` at any stage of a rollover changes no file: the stage is state, not drift.
#[track_caller]
fn assert_generate_keeps(topology: &Path, out: &Path, stage: &str) {
    let before = snapshot(out);
    generate(topology, out, &[]);
    assert!(
        before == snapshot(out),
        "generate at stage {stage} changed {:?}",
        changed(&before, &snapshot(out))
    );
}

/// The permission bits of a file.
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[track_caller]
fn file<'a>(files: &'a Files, rel: &str) -> &'a [u8] {
    files.get(rel).unwrap_or_else(|| panic!("{rel} is missing"))
}

/// The paths whose bytes differ between two snapshots (added and removed included), ignoring
/// `history/`.
fn changed(before: &Files, after: &Files) -> BTreeSet<String> {
    before
        .keys()
        .chain(after.keys())
        .filter(|p| !p.starts_with("history/"))
        .filter(|p| before.get(*p) != after.get(*p))
        .cloned()
        .collect()
}

/// The timestamp directories below `history/`.
fn history_stamps(files: &Files) -> BTreeSet<String> {
    files
        .keys()
        .filter_map(|p| p.strip_prefix("history/"))
        .filter_map(|p| p.split_once('/'))
        .map(|(stamp, _)| stamp.to_string())
        .collect()
}

/// The one history stamp `after` has and `before` had not; checks its form
/// (`YYYYMMDDTHHMMSS.mmmZ`).
#[track_caller]
fn new_stamp(before: &Files, after: &Files) -> String {
    let new: Vec<String> = history_stamps(after)
        .difference(&history_stamps(before))
        .cloned()
        .collect();
    assert_eq!(new.len(), 1, "expected one new history/ directory: {new:?}");
    let stamp = new[0].clone();
    let b = stamp.as_bytes();
    assert!(
        b.len() == 20
            && b[8] == b'T'
            && b[15] == b'.'
            && b[19] == b'Z'
            && b.iter()
                .enumerate()
                .all(|(i, c)| [8, 15, 19].contains(&i) || c.is_ascii_digit()),
        "history stamp {stamp} is not YYYYMMDDTHHMMSS.mmmZ"
    );
    stamp
}

fn decode(bytes: &[u8], password: &str, what: &str) -> Keystore {
    Keystore::decode(bytes, &Password::new(password.to_string()))
        .unwrap_or_else(|e| panic!("{what}: {e}"))
        .0
}

/// The leaf certificate of a keystore's only private-key entry.
fn leaf(bytes: &[u8], password: &str, what: &str) -> Vec<u8> {
    let store = decode(bytes, password, what);
    let keys: Vec<&Entry> = store.key_entries().collect();
    assert_eq!(keys.len(), 1, "{what}: key entries {keys:?}");
    keys[0].cert().expect("leaf").to_vec()
}

/// The trusted-certificate entries of a truststore, by alias; it must hold no key.
fn trusted(bytes: &[u8], password: &str, what: &str) -> BTreeMap<String, Vec<u8>> {
    let store = decode(bytes, password, what);
    store
        .entries
        .iter()
        .map(|e| match e {
            Entry::Trusted { alias, cert } => (alias.clone(), cert.clone()),
            Entry::PrivateKey { alias, .. } => panic!("{what}: a key entry {alias}"),
        })
        .collect()
}

/// The certificates of a PEM file, DER.
fn pem_certs(bytes: &[u8], what: &str) -> Vec<Vec<u8>> {
    pem::certs_from_pem(bytes).unwrap_or_else(|e| panic!("{what}: {e}"))
}

fn pem_cert(bytes: &[u8], what: &str) -> Vec<u8> {
    let certs = pem_certs(bytes, what);
    assert_eq!(certs.len(), 1, "{what}: one certificate expected");
    certs.into_iter().next().expect("one")
}

/// A load balancer's certificate: the first of its `tls.crt` chain.
fn lb_leaf(files: &Files, host: &str) -> Vec<u8> {
    let rel = lb(host, "tls.crt");
    pem_certs(file(files, &rel), &rel)
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("{rel}: no certificate"))
}

fn info(der: &[u8]) -> CertInfo {
    CertInfo::from_der(der).expect("certificate parses")
}

/// The certificate's SubjectPublicKeyInfo, DER: equal exactly when the key is the same.
fn spki(der: &[u8]) -> Vec<u8> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).expect("certificate parses");
    cert.public_key().raw.to_vec()
}

fn set_of(certs: &[Vec<u8>]) -> BTreeSet<Vec<u8>> {
    certs.iter().cloned().collect()
}

/// Java is there (or: a failure in CI, a skip note elsewhere).
fn have_java() -> bool {
    java::require("java") && java::require("javac")
}

// ---------------------------------------------------------------------------------------------
// Mixed fleets: JSSE handshakes between nodes on different stages of a rollover
// ---------------------------------------------------------------------------------------------

/// A stage of the set, copied aside, so a fleet half on one stage and half on another can be
/// assembled from the copies.
struct Snap {
    label: &'static str,
    dir: PathBuf,
    files: Files,
    /// Every node's truststore is this file's bytes (asserted): one client truststore stands for
    /// every node on this stage.
    truststore: PathBuf,
    truststore_digest: [u8; 32],
}

impl Snap {
    fn take(label: &'static str, out: &Path, base: &Path, fleet: &Fleet) -> Snap {
        let dir = base.join(label);
        copy_files(out, &dir);
        let files = snapshot(&dir);
        let first = fleet.nodes[0].0.as_str();
        let reference = file(&files, &truststore(first));
        for node in fleet.names() {
            assert!(
                file(&files, &truststore(node)) == reference,
                "{label}: the truststore of {node} differs from that of {first}: a node's \
                 trust must not depend on which node it is"
            );
        }
        Snap {
            label,
            dir: dir.clone(),
            truststore_digest: Sha256::digest(reference).into(),
            truststore: dir.join(truststore(first)),
            files,
        }
    }
}

/// What one JVM run of TlsProbe checks: this server keystore, this client truststore, this host.
type ProbeKey = ([u8; 32], [u8; 32], String);

/// Runs JSSE handshakes through `tls_probe`, each distinct (keystore bytes, truststore bytes,
/// host) once, two JVMs at a time.
struct Handshakes {
    java: PathBuf,
    tls_password: String,
    truststore_password: String,
    results: BTreeMap<ProbeKey, Result<(), String>>,
    jvms: usize,
    time: Duration,
}

const PROBE_WORKERS: usize = 2;

impl Handshakes {
    fn new(tls_password: &str, truststore_password: &str) -> Handshakes {
        Handshakes {
            java: java::jdk17_java(),
            tls_password: tls_password.to_string(),
            truststore_password: truststore_password.to_string(),
            results: BTreeMap::new(),
            jvms: 0,
            time: Duration::ZERO,
        }
    }

    /// Runs the probes not run yet.
    fn run(&mut self, probes: Vec<(ProbeKey, PathBuf, PathBuf)>) {
        let mut todo: BTreeMap<ProbeKey, (PathBuf, PathBuf)> = BTreeMap::new();
        for (key, keystore, truststore) in probes {
            if !self.results.contains_key(&key) {
                todo.insert(key, (keystore, truststore));
            }
        }
        if todo.is_empty() {
            return;
        }
        let start = Instant::now();
        self.jvms += todo.len();
        let queue = Mutex::new(todo.into_iter().collect::<Vec<_>>());
        let done = Mutex::new(Vec::new());
        let (java, ks_pass, ts_pass) = (&self.java, &self.tls_password, &self.truststore_password);
        std::thread::scope(|scope| {
            for _ in 0..PROBE_WORKERS {
                scope.spawn(|| loop {
                    let Some((key, (keystore, truststore))) = queue.lock().expect("queue").pop()
                    else {
                        break;
                    };
                    let host = key.2.clone();
                    let mut result = java::tls_probe(
                        java,
                        &keystore,
                        "JKS",
                        ks_pass,
                        &truststore,
                        "JKS",
                        ts_pass,
                        &[&host],
                    );
                    let r = result.remove(&host).expect("a result for the host");
                    done.lock().expect("done").push((key, r));
                });
            }
        });
        self.results
            .extend(done.into_inner().expect("probe results"));
        self.time += start.elapsed();
    }

    /// One handshake: a server with `keystore`, a client trusting `truststore`, checking `host`.
    fn one(&mut self, keystore: &Path, truststore: &Path, host: &str) -> Result<(), String> {
        let key: ProbeKey = (
            Sha256::digest(std::fs::read(keystore).expect("keystore")).into(),
            Sha256::digest(std::fs::read(truststore).expect("truststore")).into(),
            host.to_string(),
        );
        self.run(vec![(
            key.clone(),
            keystore.to_path_buf(),
            truststore.to_path_buf(),
        )]);
        self.results[&key].clone()
    }

    /// Every ordered pair of nodes (a, b), a ≠ b, with a on `clients`' files and b on
    /// `servers`' files: a's truststore must accept b's TLS certificate for b's host. Returns
    /// the number of pairs and the failures.
    fn mixed(&mut self, fleet: &Fleet, servers: &Snap, clients: &Snap) -> (usize, Vec<String>) {
        let key_of = |node: &str, host: &str| -> ProbeKey {
            (
                Sha256::digest(file(&servers.files, &tls(node))).into(),
                clients.truststore_digest,
                host.to_string(),
            )
        };
        let probes = fleet
            .nodes
            .iter()
            .map(|(node, host)| {
                (
                    key_of(node, host),
                    servers.dir.join(tls(node)),
                    clients.truststore.clone(),
                )
            })
            .collect();
        self.run(probes);
        let mut pairs = 0;
        let mut failures = Vec::new();
        for (a, _) in &fleet.nodes {
            for (b, host) in &fleet.nodes {
                if a == b {
                    continue;
                }
                pairs += 1;
                if let Err(e) = &self.results[&key_of(b, host)] {
                    failures.push(format!(
                        "{a} on {} → {b} on {} ({host}): {e}",
                        clients.label, servers.label
                    ));
                }
            }
        }
        (pairs, failures)
    }

    /// [`Handshakes::mixed`] both ways between `x` and `y`; every pair must succeed.
    #[track_caller]
    fn assert_mixed_fleet(&mut self, fleet: &Fleet, x: &Snap, y: &Snap) {
        let jvms = self.jvms;
        let (p1, mut failures) = self.mixed(fleet, x, y);
        let (p2, f2) = self.mixed(fleet, y, x);
        failures.extend(f2);
        assert!(
            failures.is_empty(),
            "a fleet mixing {} and {} cannot talk ({} of {} ordered pairs fail):\n{}",
            x.label,
            y.label,
            failures.len(),
            p1 + p2,
            failures.join("\n")
        );
        eprintln!(
            "mixed fleet {}/{}: {} ordered node pairs shake hands ({} new JVMs)",
            x.label,
            y.label,
            p1 + p2,
            self.jvms - jvms
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 1. CA rollover, with a mixed fleet at every stage
// ---------------------------------------------------------------------------------------------

/// generate → begin → finish → retire on the seed's HA topology (11 nodes, 5 load balancers).
/// At every stage: verify passes and reports the stage, the files hold what cli.md says, and a
/// fleet with some nodes on the previous stage's files and the rest on the new stage's files
/// completes every JSSE handshake (host names checked), in both directions.
#[test]
#[cfg_attr(
    not(apim_pki_jdk17),
    ignore = "needs JDK 17: java, javac and keytool on PATH (apt-get install openjdk-17-jdk-headless); .ci/run installs it all"
)]
fn ca_rollover_keeps_a_mixed_fleet_talking() {
    let started = Instant::now();
    let tmp = tempfile::tempdir().expect("tempdir");
    let text = ha_example();
    let fleet = Fleet::of(&text);
    assert_eq!((fleet.nodes.len(), fleet.lbs.len()), (11, 5));
    let topo = write_topology(tmp.path(), &text);
    let out = tmp.path().join("out");
    generate(&topo, &out, &[]);
    let pw = secrets(&out);
    let (primary_pw, tls_pw, ts_pw) = (&pw["primary"], &pw["tls"], &pw["truststore"]);
    let java = have_java();
    let mut hs = Handshakes::new(tls_pw, ts_pw);

    // S0: stable, generation 1.
    let s0 = Snap::take("S0", &out, tmp.path(), &fleet);
    assert_stage(&out, "stable", 1);
    let g1 = pem_cert(file(&s0.files, "ca/ca.crt"), "S0 ca/ca.crt");
    assert!(
        info(&g1).subject.contains("CN=acme-prod CA G1"),
        "{}",
        info(&g1).subject
    );
    let primary0 = leaf(file(&s0.files, &primary("km1")), primary_pw, "S0 primary");

    // S1: begin. The next CA is trusted everywhere; no leaf changes.
    rotate_ok(&topo, &out, &["--ca", "begin"]);
    verify_ok(&out, "rollover-begun");
    assert_stage(&out, "rollover-begun", 1);
    let s1 = Snap::take("S1", &out, tmp.path(), &fleet);
    let g2 = pem_cert(file(&s1.files, "ca/next/ca.crt"), "S1 ca/next/ca.crt");
    assert!(
        info(&g2).subject.contains("CN=acme-prod CA G2"),
        "{}",
        info(&g2).subject
    );
    assert_eq!(
        mode(&out.join("ca/next/ca.key")),
        0o600,
        "ca/next/ca.key mode"
    );
    assert_eq!(file(&s1.files, "ca/ca.crt"), file(&s0.files, "ca/ca.crt"));
    assert_eq!(file(&s1.files, "ca/ca.key"), file(&s0.files, "ca/ca.key"));
    assert_eq!(
        set_of(&pem_certs(file(&s1.files, "ca/bundle.crt"), "bundle")),
        set_of(&[g1.clone(), g2.clone()]),
        "S1 ca/bundle.crt trusts G1 and G2"
    );
    let ts1 = trusted(file(&s1.files, &truststore("km1")), ts_pw, "S1 truststore");
    assert_eq!(ts1.get("acme-prod-ca"), Some(&g1), "S1 truststore: G1");
    assert_eq!(ts1.get("acme-prod-ca-g2"), Some(&g2), "S1 truststore: G2");
    for node in fleet.names() {
        for rel in [tls(node), primary(node)] {
            assert!(
                file(&s1.files, &rel) == file(&s0.files, &rel),
                "--ca begin rewrote {rel}"
            );
        }
    }
    for host in &fleet.lbs {
        for name in ["tls.crt", "tls.key", "haproxy.pem"] {
            let rel = lb(host, name);
            assert!(
                file(&s1.files, &rel) == file(&s0.files, &rel),
                "--ca begin rewrote {rel}"
            );
        }
        assert_eq!(
            set_of(&pem_certs(file(&s1.files, &lb(host, "ca.crt")), host)),
            set_of(&[g1.clone(), g2.clone()]),
            "S1 {host}/ca.crt trusts G1 and G2 (the load balancer re-encrypts to the nodes)"
        );
    }
    assert_eq!(
        file(&s1.files, "secrets.toml"),
        file(&s0.files, "secrets.toml")
    );
    let stamp = new_stamp(&s0.files, &s1.files);
    assert_eq!(
        file(&s1.files, &format!("history/{stamp}/{}", truststore("gw1"))),
        file(&s0.files, &truststore("gw1")),
        "the replaced truststore is kept under history/"
    );
    assert_generate_keeps(&topo, &out, "rollover-begun");
    if java {
        hs.assert_mixed_fleet(&fleet, &s0, &s1);
    }

    // S2: finish. G2 issues; every leaf is re-certified under it with its own key.
    rotate_ok(&topo, &out, &["--ca", "finish"]);
    verify_ok(&out, "rollover-finished");
    assert_stage(&out, "rollover-finished", 2);
    let s2 = Snap::take("S2", &out, tmp.path(), &fleet);
    assert_eq!(pem_cert(file(&s2.files, "ca/ca.crt"), "S2 ca.crt"), g2);
    assert_eq!(
        file(&s2.files, "ca/ca.key"),
        file(&s1.files, "ca/next/ca.key"),
        "the next CA's key becomes the issuing key"
    );
    assert_eq!(mode(&out.join("ca/ca.key")), 0o600, "ca/ca.key mode");
    assert_eq!(
        pem_cert(file(&s2.files, "ca/previous/ca.crt"), "S2 previous"),
        g1
    );
    assert!(
        !s2.files.keys().any(|p| p.starts_with("ca/next/")),
        "ca/next/ is gone after finish"
    );
    assert_eq!(
        set_of(&pem_certs(file(&s2.files, "ca/bundle.crt"), "bundle")),
        set_of(&[g1.clone(), g2.clone()]),
        "S2 ca/bundle.crt still trusts G1 and G2"
    );
    let issued_by_g2 = |der: &[u8], what: &str| {
        let i = info(der);
        assert!(
            i.issuer.contains("CN=acme-prod CA G2"),
            "{what}: issuer {}",
            i.issuer
        );
    };
    let primary2 = leaf(file(&s2.files, &primary("km1")), primary_pw, "S2 primary");
    issued_by_g2(&primary2, "S2 primary");
    assert_eq!(
        spki(&primary2),
        spki(&primary0),
        "finish must keep the primary key (WSO2's encrypted data)"
    );
    assert_ne!(info(&primary2).serial, info(&primary0).serial);
    for node in fleet.names() {
        assert!(
            file(&s2.files, &primary(node)) == file(&s2.files, &primary("km1")),
            "S2: the primary keystore of {node} differs from km1's"
        );
        let old = leaf(file(&s1.files, &tls(node)), tls_pw, node);
        let new = leaf(file(&s2.files, &tls(node)), tls_pw, node);
        issued_by_g2(&new, &tls(node));
        assert_eq!(
            spki(&new),
            spki(&old),
            "{node}: finish must keep the TLS key"
        );
        assert_ne!(info(&new).serial, info(&old).serial, "{node}: a new serial");
        let ts = trusted(file(&s2.files, &truststore(node)), ts_pw, node);
        assert_eq!(
            ts.get("acme-prod-ca"),
            Some(&g1),
            "{node}: G1 still trusted"
        );
        assert_eq!(ts.get("acme-prod-ca-g2"), Some(&g2), "{node}: G2 trusted");
        assert_eq!(ts.get("wso2carbon"), Some(&primary2), "{node}: new primary");
        assert_eq!(
            ts.get("gateway_certificate_alias"),
            Some(&primary2),
            "{node}: new primary as gateway_certificate_alias"
        );
    }
    for host in &fleet.lbs {
        let old = lb_leaf(&s1.files, host);
        let new = lb_leaf(&s2.files, host);
        issued_by_g2(&new, host);
        assert_eq!(
            pem_certs(file(&s2.files, &lb(host, "tls.crt")), host).get(1),
            Some(&g2),
            "{host}/tls.crt: the chain goes on to G2"
        );
        assert_eq!(spki(&new), spki(&old), "{host}: finish must keep the key");
        assert_eq!(
            file(&s2.files, &lb(host, "tls.key")),
            file(&s1.files, &lb(host, "tls.key"))
        );
    }
    let stamp = new_stamp(&s1.files, &s2.files);
    assert_eq!(
        file(&s2.files, &format!("history/{stamp}/ca/ca.crt")),
        file(&s1.files, "ca/ca.crt"),
        "the G1 certificate replaced by finish is kept under history/"
    );
    assert_generate_keeps(&topo, &out, "rollover-finished");
    if java {
        hs.assert_mixed_fleet(&fleet, &s1, &s2);
        // Skipping begin: a node still on S0 trusts only G1 and refuses an S2 (G2) leaf. The
        // other way works, since S2 still trusts G1.
        let refused = hs.one(
            &s2.dir.join(tls("gw1")),
            &s0.truststore,
            "gw1.acme.internal",
        );
        match refused {
            Err(e) => assert!(e.contains("PKIX"), "S0 client → S2 server: {e}"),
            Ok(()) => panic!("a node on S0's truststore accepted a G2 leaf"),
        }
        hs.one(
            &s0.dir.join(tls("gw1")),
            &s2.truststore,
            "gw1.acme.internal",
        )
        .expect("a node on S2's truststore accepts an S0 (G1) leaf");
    }

    // S3: retire. G1 is trusted nowhere; no leaf changes.
    rotate_ok(&topo, &out, &["--ca", "retire"]);
    verify_ok(&out, "stable");
    assert_stage(&out, "stable", 2);
    let s3 = Snap::take("S3", &out, tmp.path(), &fleet);
    assert!(
        !s3.files.keys().any(|p| p.starts_with("ca/previous/")),
        "ca/previous/ is gone after retire"
    );
    assert_eq!(pem_cert(file(&s3.files, "ca/ca.crt"), "S3 ca.crt"), g2);
    assert_eq!(
        pem_certs(file(&s3.files, "ca/bundle.crt"), "bundle"),
        vec![g2.clone()],
        "S3 ca/bundle.crt: G2 only"
    );
    for node in fleet.names() {
        for rel in [tls(node), primary(node)] {
            assert!(
                file(&s3.files, &rel) == file(&s2.files, &rel),
                "--ca retire rewrote {rel}"
            );
        }
        let ts = trusted(file(&s3.files, &truststore(node)), ts_pw, node);
        assert!(
            !ts.values().any(|c| *c == g1),
            "{node}: the truststore still holds G1: {:?}",
            ts.keys()
        );
        assert!(ts.values().any(|c| *c == g2), "{node}: G2 not trusted");
        assert_eq!(ts.get("wso2carbon"), Some(&primary2), "{node}: primary");
    }
    for host in &fleet.lbs {
        assert_eq!(
            pem_certs(file(&s3.files, &lb(host, "ca.crt")), host),
            vec![g2.clone()],
            "S3 {host}/ca.crt: G2 only"
        );
        assert_eq!(
            file(&s3.files, &lb(host, "tls.crt")),
            file(&s2.files, &lb(host, "tls.crt"))
        );
    }
    assert_generate_keeps(&topo, &out, "stable");
    if java {
        hs.assert_mixed_fleet(&fleet, &s2, &s3);
    }

    // The rollover repeats: the next one brings G3 next to G2.
    rotate_ok(&topo, &out, &["--ca", "begin"]);
    verify_ok(&out, "rollover-begun");
    assert_stage(&out, "rollover-begun", 2);
    let g3 = pem_cert(
        &std::fs::read(out.join("ca/next/ca.crt")).expect("ca/next/ca.crt"),
        "G3",
    );
    assert!(info(&g3).subject.contains("CN=acme-prod CA G3"));
    let ts = trusted(
        &std::fs::read(out.join(truststore("gw2"))).expect("truststore"),
        ts_pw,
        "gw2",
    );
    assert_eq!(
        (ts.get("acme-prod-ca-g2"), ts.get("acme-prod-ca-g3")),
        (Some(&g2), Some(&g3)),
        "second rollover: truststore aliases {:?}",
        ts.keys()
    );
    eprintln!(
        "timing: CA rollover test {:?}; {} TlsProbe JVMs in {:?}",
        started.elapsed(),
        hs.jvms,
        hs.time
    );
}

// ---------------------------------------------------------------------------------------------
// 2. Renewal
// ---------------------------------------------------------------------------------------------

const RENEWAL_LB: &str = "gateway.dev.acme.internal";

/// The minimal topology plus a second gateway and a load balancer in front of both.
fn renewal_topology(validity_days: u32, renew_before_days: u32) -> String {
    let base = minimal_example();
    let marker = "product = \"apim-2.6\"\n";
    assert!(base.contains(marker), "minimal example changed");
    let base = base.replacen(
        marker,
        &format!(
            "{marker}\n[pki]\nvalidity_days = {validity_days}\n\
             renew_before_days = {renew_before_days}\n"
        ),
        1,
    );
    format!(
        "{base}\n[[node]]\nname = \"gateway2\"\nprofile = \"gateway-worker\"\n\
         host = \"gw2.dev.acme.internal\"\n\n[[load_balancer]]\nhost = \"{RENEWAL_LB}\"\n\
         fronts = \"gateway-worker\"\n"
    )
}

/// Certificates made for 10 days are kept while the window is 9 days, and renewed once it is
/// 20 days (validity 30, so the topology stays valid): every node and load-balancer certificate
/// gets a new serial on the same key; the CA and the primary (3650 days) are not touched. An
/// unchanged re-run changes no byte.
#[test]
fn renewal_recertifies_the_same_keys_and_touches_nothing_else() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let short = renewal_topology(10, 9);
    let fleet = Fleet::of(&short);
    let topo = write_topology(tmp.path(), &short);
    let out = tmp.path().join("out");
    generate(&topo, &out, &[]);
    let pw = secrets(&out);
    let before = snapshot(&out);
    let first = leaf(file(&before, &tls("km")), &pw["tls"], "km");
    let days = (info(&first).not_after - info(&first).not_before).whole_days();
    assert!((9..=10).contains(&days), "km certificate: {days} days");

    generate(&topo, &out, &[]);
    assert_eq!(before, snapshot(&out), "an unchanged re-run changed files");

    // A wider window: now every 10-day certificate expires within it.
    write_topology(tmp.path(), &renewal_topology(30, 20));
    let (code, plan) = plan_json(&topo, &out);
    assert_eq!(code, 0, "plan: {plan}");
    let actions: BTreeMap<String, String> = plan["actions"]
        .as_array()
        .expect("actions")
        .iter()
        .map(|a| {
            (
                a["path"].as_str().expect("path").to_string(),
                a["action"].as_str().expect("action").to_string(),
            )
        })
        .collect();
    let action = |rel: &str| actions.get(rel).map(String::as_str).unwrap_or("(absent)");
    for node in fleet.names() {
        assert_eq!(action(&tls(node)), "renew", "{}", tls(node));
        assert_eq!(action(&primary(node)), "keep", "{}", primary(node));
    }
    assert_eq!(action(&lb(RENEWAL_LB, "tls.crt")), "renew");
    for rel in ["ca/ca.crt", "ca/ca.key"] {
        assert_eq!(action(rel), "keep", "{rel}");
    }
    assert!(
        !actions.values().any(|a| a == "create" || a == "reissue"),
        "renewal creates or reissues nothing: {actions:?}"
    );
    assert_eq!(before, snapshot(&out), "plan wrote files");

    generate(&topo, &out, &[]);
    verify_ok(&out, "stable");
    let after = snapshot(&out);
    for node in fleet.names() {
        let old = leaf(file(&before, &tls(node)), &pw["tls"], node);
        let new = leaf(file(&after, &tls(node)), &pw["tls"], node);
        assert_eq!(spki(&new), spki(&old), "{node}: renewal must keep the key");
        assert_ne!(info(&new).serial, info(&old).serial, "{node}: new serial");
        assert!(
            info(&new).not_after > info(&old).not_after + time::Duration::days(19),
            "{node}: renewed until {}",
            info(&new).not_after
        );
        assert!(
            file(&after, &primary(node)) == file(&before, &primary(node)),
            "renewal touched {}",
            primary(node)
        );
        assert!(
            file(&after, &truststore(node)) == file(&before, &truststore(node)),
            "renewal touched {}",
            truststore(node)
        );
    }
    let old = lb_leaf(&before, RENEWAL_LB);
    let new = lb_leaf(&after, RENEWAL_LB);
    assert_eq!(
        spki(&new),
        spki(&old),
        "load balancer: renewal keeps the key"
    );
    assert_ne!(
        info(&new).serial,
        info(&old).serial,
        "load balancer: new serial"
    );
    for rel in [
        "ca/ca.crt".to_string(),
        "ca/ca.key".to_string(),
        "ca/bundle.crt".to_string(),
        "secrets.toml".to_string(),
        lb(RENEWAL_LB, "tls.key"),
        lb(RENEWAL_LB, "ca.crt"),
    ] {
        assert!(
            file(&after, &rel) == file(&before, &rel),
            "renewal touched {rel}"
        );
    }

    // Renewed for 30 days with a 20-day window: an unchanged re-run keeps every byte.
    generate(&topo, &out, &[]);
    assert_eq!(
        after,
        snapshot(&out),
        "a re-run after renewal changed files"
    );
}

// ---------------------------------------------------------------------------------------------
// 3. Primary re-certification
// ---------------------------------------------------------------------------------------------

/// Runs OaepCheck: encrypt a random secret with OLD's certificate (alias `alias`), decrypt it
/// with NEW's private key. Returns the exit code and stdout.
fn oaep_check(
    old: &Path,
    old_type: &str,
    new: &Path,
    password: &str,
    alias: &str,
) -> (i32, String) {
    let out = Command::new(java::jdk17_java())
        .arg("-cp")
        .arg(java::helpers_dir())
        .arg("OaepCheck")
        .arg(old)
        .arg(old_type)
        .arg(new)
        .args(["JKS", "APIM_PKI_TEST_OAEP_PASS", alias])
        .env("APIM_PKI_TEST_OAEP_PASS", password)
        .env("LC_ALL", "C.UTF-8")
        .env_remove("JAVA_TOOL_OPTIONS")
        .env_remove("_JAVA_OPTIONS")
        .env_remove("JDK_JAVA_OPTIONS")
        .stdin(Stdio::null())
        .output()
        .expect("java runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let code = out.status.code().unwrap_or(-1);
    assert!(
        code == 0 || code == 1,
        "OaepCheck could not run (exit {code}):\n{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (code, stdout)
}

/// `serial` and `not_before` (epoch seconds) of OaepCheck's `old …` or `new …` line.
fn oaep_cert(stdout: &str, which: &str) -> (String, i64) {
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{which} ")))
        .unwrap_or_else(|| panic!("no `{which}` line:\n{stdout}"));
    let field = |name: &str| {
        line.split(' ')
            .find_map(|f| f.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("no {name} in {line}"))
            .to_string()
    };
    (
        field("serial"),
        field("not_before").parse().expect("epoch seconds"),
    )
}

/// `rotate --primary-cert` gives the primary key a new certificate (new serial, new validity)
/// and keeps the key: a secret WSO2 encrypted with the old certificate (RSA-OAEP with SHA-1 and
/// MGF1) decrypts with the new keystore. Every node gets the same new primary keystore, every
/// truststore the new certificate; nothing else changes.
#[test]
#[cfg_attr(
    not(apim_pki_jdk17),
    ignore = "needs JDK 17: java, javac and keytool on PATH (apt-get install openjdk-17-jdk-headless); .ci/run installs it all"
)]
fn primary_cert_rotation_keeps_encrypted_data_readable() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let text = minimal_example();
    let fleet = Fleet::of(&text);
    let topo = write_topology(tmp.path(), &text);
    let out = tmp.path().join("out");
    generate(&topo, &out, &[]);
    let pw = secrets(&out);
    let s0 = tmp.path().join("s0");
    copy_files(&out, &s0);
    let before = snapshot(&s0);
    // Certificate times have one-second resolution: make the new not_before observably later.
    std::thread::sleep(Duration::from_millis(1100));

    rotate_ok(&topo, &out, &["--primary-cert"]);
    verify_ok(&out, "stable");
    let after = snapshot(&out);
    let old = leaf(file(&before, &primary("km")), &pw["primary"], "old primary");
    let new = leaf(file(&after, &primary("km")), &pw["primary"], "new primary");
    assert_eq!(spki(&new), spki(&old), "--primary-cert must keep the key");
    assert_ne!(info(&new).serial, info(&old).serial, "a new serial");
    assert!(
        info(&new).not_before > info(&old).not_before,
        "a new validity: not_before {} → {}",
        info(&old).not_before,
        info(&new).not_before
    );
    assert_eq!(info(&new).subject, info(&old).subject);

    let new_store = file(&after, &primary("km"));
    assert!(
        new_store != file(&before, &primary("km")),
        "the primary keystore did not change"
    );
    let stamp = new_stamp(&before, &after);
    for node in fleet.names() {
        assert!(
            file(&after, &primary(node)) == new_store,
            "{node}: its primary keystore differs from km's"
        );
        assert_eq!(
            file(&after, &format!("history/{stamp}/{}", primary(node))),
            file(&before, &primary(node)),
            "{node}: the old primary keystore is kept under history/"
        );
        let ts = trusted(file(&after, &truststore(node)), &pw["truststore"], node);
        for alias in ["wso2carbon", "gateway_certificate_alias"] {
            assert_eq!(ts.get(alias), Some(&new), "{node}: truststore {alias}");
        }
    }
    let untouched: Vec<String> = changed(&before, &after)
        .into_iter()
        .filter(|p| {
            p != "inventory.json"
                && !p.ends_with("/wso2carbon.jks")
                && !p.ends_with("/client-truststore.jks")
        })
        .collect();
    assert!(
        untouched.is_empty(),
        "--primary-cert re-keys no node and keeps the CA, but changed {untouched:?}"
    );

    if !have_java() {
        return;
    }
    let (code, stdout) = oaep_check(
        &s0.join(primary("km")),
        "JKS",
        &out.join(primary("gateway")),
        &pw["primary"],
        "wso2carbon",
    );
    assert_eq!(
        (code, stdout.lines().next()),
        (0, Some("OK")),
        "data encrypted with the old primary certificate no longer decrypts:\n{stdout}"
    );
    let (old_serial, old_nb) = oaep_cert(&stdout, "old");
    let (new_serial, new_nb) = oaep_cert(&stdout, "new");
    let hex = |s: &str| s.trim_start_matches('0').to_ascii_lowercase();
    assert_eq!(
        hex(&old_serial),
        hex(&info(&old).serial),
        "Java's old serial"
    );
    assert_eq!(
        hex(&new_serial),
        hex(&info(&new).serial),
        "Java's new serial"
    );
    assert!(new_nb > old_nb, "Java sees the new not_before: {stdout}");
    assert_eq!(new_nb, info(&new).not_before.unix_timestamp());

    // The control: a secret sealed for another RSA key (the CA's) does not open, so the OK
    // above means the key really is the same.
    let (code, stdout) = oaep_check(
        &out.join("ca/ca.crt"),
        "PEM",
        &out.join(primary("gateway")),
        &pw["primary"],
        "wso2carbon",
    );
    assert!(
        code == 1 && stdout.starts_with("FAIL "),
        "OaepCheck cannot tell keys apart:\n{stdout}"
    );
}

// ---------------------------------------------------------------------------------------------
// 4. Re-keying nodes and load balancers
// ---------------------------------------------------------------------------------------------

/// The HA set, generated, with its passwords and fleet.
struct Ha {
    _tmp: tempfile::TempDir,
    topo: PathBuf,
    out: PathBuf,
    fleet: Fleet,
    pw: BTreeMap<String, String>,
}

impl Ha {
    fn new() -> Ha {
        let tmp = tempfile::tempdir().expect("tempdir");
        let text = ha_example();
        let topo = write_topology(tmp.path(), &text);
        let out = tmp.path().join("out");
        let start = Instant::now();
        generate(&topo, &out, &[]);
        eprintln!("timing: generate HA: {:?}", start.elapsed());
        let pw = secrets(&out);
        Ha {
            _tmp: tmp,
            topo,
            out,
            fleet: Fleet::of(&text),
            pw,
        }
    }

    fn tls_key(&self, files: &Files, node: &str) -> Vec<u8> {
        spki(&leaf(file(files, &tls(node)), &self.pw["tls"], node))
    }

    fn lb_key(&self, files: &Files, host: &str) -> Vec<u8> {
        spki(&lb_leaf(files, host))
    }
}

/// `rotate --node km1`: a new key for km1's TLS keystore, every other file as it was (the old
/// keystore kept under history/).
#[test]
fn rotate_node_rekeys_only_that_node() {
    let set = Ha::new();
    let before = snapshot(&set.out);
    rotate_ok(&set.topo, &set.out, &["--node", "km1"]);
    verify_ok(&set.out, "stable");
    let after = snapshot(&set.out);
    assert_ne!(
        set.tls_key(&after, "km1"),
        set.tls_key(&before, "km1"),
        "km1 got no new key"
    );
    let km1_cert = leaf(file(&after, &tls("km1")), &set.pw["tls"], "km1");
    assert!(
        info(&km1_cert)
            .dns_names
            .contains(&"km.acme.internal".to_string()),
        "the new km1 certificate still covers its load balancer"
    );
    let other: Vec<String> = changed(&before, &after)
        .into_iter()
        .filter(|p| *p != tls("km1") && p != "inventory.json")
        .collect();
    assert!(other.is_empty(), "--node km1 also changed {other:?}");
    let stamp = new_stamp(&before, &after);
    assert_eq!(
        file(&after, &format!("history/{stamp}/{}", tls("km1"))),
        file(&before, &tls("km1")),
        "the old km1 keystore is kept under history/{stamp}/"
    );
}

/// `rotate --load-balancer gw.acme.internal`: only that load balancer's key, certificate and
/// HAProxy bundle change.
#[test]
fn rotate_load_balancer_rekeys_only_that_load_balancer() {
    let set = Ha::new();
    let host = "gw.acme.internal";
    let before = snapshot(&set.out);
    rotate_ok(&set.topo, &set.out, &["--load-balancer", host]);
    verify_ok(&set.out, "stable");
    let after = snapshot(&set.out);
    assert_ne!(set.lb_key(&after, host), set.lb_key(&before, host));
    let allowed: BTreeSet<String> = ["tls.crt", "tls.key", "haproxy.pem"]
        .iter()
        .map(|f| lb(host, f))
        .collect();
    let changes = changed(&before, &after);
    let other: Vec<&String> = changes
        .iter()
        .filter(|p| !allowed.contains(*p) && *p != "inventory.json")
        .collect();
    assert!(
        other.is_empty(),
        "--load-balancer {host} also changed {other:?}"
    );
    for name in ["tls.crt", "tls.key"] {
        assert!(changes.contains(&lb(host, name)), "{name} unchanged");
    }
    let stamp = new_stamp(&before, &after);
    assert_eq!(
        file(&after, &format!("history/{stamp}/{}", lb(host, "tls.key"))),
        file(&before, &lb(host, "tls.key")),
        "the old key is kept under history/"
    );
}

/// A bare `rotate`: every node and load balancer gets a new key; the primary key and the CA
/// stay (byte for byte), and so do the truststores that hold them.
#[test]
fn rotate_without_options_rekeys_every_node_and_load_balancer() {
    let set = Ha::new();
    let before = snapshot(&set.out);
    rotate_ok(&set.topo, &set.out, &[]);
    verify_ok(&set.out, "stable");
    let after = snapshot(&set.out);
    for node in set.fleet.names() {
        assert_ne!(
            set.tls_key(&after, node),
            set.tls_key(&before, node),
            "{node}: no new key"
        );
        for rel in [primary(node), truststore(node)] {
            assert!(
                file(&after, &rel) == file(&before, &rel),
                "rotate changed {rel}"
            );
        }
    }
    for host in &set.fleet.lbs {
        assert_ne!(
            set.lb_key(&after, host),
            set.lb_key(&before, host),
            "{host}: no new key"
        );
        assert!(file(&after, &lb(host, "tls.key")) != file(&before, &lb(host, "tls.key")));
    }
    for rel in ["ca/ca.crt", "ca/ca.key", "ca/bundle.crt", "secrets.toml"] {
        assert!(
            file(&after, rel) == file(&before, rel),
            "rotate changed {rel}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 5. Refused input
// ---------------------------------------------------------------------------------------------

/// `rotate ARGS` must exit 2 with one clear message (`error: …` naming `mentions`), no panic,
/// and leave every file of `out` as it was.
#[track_caller]
fn assert_refused(topo: &Path, out: &Path, args: &[&str], mentions: &[&str]) {
    let before = snapshot(out);
    let had_history = out.join("history").exists();
    let r = rotate(topo, out, args);
    let what = format!("rotate {}", args.join(" "));
    assert_eq!(
        r.code, 2,
        "{what}: exit code\nstdout: {}\nstderr: {}",
        r.stdout, r.stderr
    );
    assert!(
        r.stderr.starts_with("error: ") && !r.stderr.contains("panicked"),
        "{what}: not one clear message:\n{}",
        r.stderr
    );
    for m in mentions {
        assert!(
            r.stderr.contains(m),
            "{what}: the message lacks `{m}`:\n{}",
            r.stderr
        );
    }
    assert_eq!(before, snapshot(out), "{what} changed files");
    assert_eq!(
        had_history,
        out.join("history").exists(),
        "{what} created history/"
    );
}

/// Unknown names, rollover stages out of order and a corrupt inventory.json: exit 2, nothing
/// changed.
#[test]
fn rotate_refuses_bad_input_and_changes_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let topo = write_topology(tmp.path(), &minimal_example());
    let out = tmp.path().join("out");
    generate(&topo, &out, &[]);

    assert_refused(
        &topo,
        &out,
        &["--node", "does-not-exist"],
        &["does-not-exist"],
    );
    assert_refused(
        &topo,
        &out,
        &["--node", "km", "--node", "does-not-exist"],
        &["does-not-exist"],
    );
    assert_refused(&topo, &out, &["--load-balancer", "nope"], &["nope"]);
    assert_refused(&topo, &out, &["--ca", "finish"], &["--ca finish", "begin"]);
    assert_refused(&topo, &out, &["--ca", "retire"], &["--ca retire", "begin"]);

    rotate_ok(&topo, &out, &["--ca", "begin"]);
    assert_refused(&topo, &out, &["--ca", "retire"], &["--ca retire", "finish"]);
    assert_refused(
        &topo,
        &out,
        &["--ca", "begin"],
        &["--ca begin", "rollover-begun"],
    );
    verify_ok(&out, "rollover-begun");

    // A corrupt inventory.json: whatever rotate is asked, it names the file and writes nothing.
    let corrupt = tmp.path().join("corrupt");
    copy_files(&out, &corrupt);
    std::fs::write(
        corrupt.join("inventory.json"),
        "{\"ca_stage\": \"rollover-beg",
    )
    .expect("write");
    for args in [
        &[][..],
        &["--ca", "finish"],
        &["--node", "km"],
        &["--primary-cert"],
    ] {
        assert_refused(&topo, &corrupt, args, &["inventory.json"]);
    }
    // Valid JSON, but a stage that does not exist.
    let mut inv = inventory(&out);
    inv["ca_stage"] = Value::from("half-done");
    std::fs::write(
        corrupt.join("inventory.json"),
        serde_json::to_vec_pretty(&inv).expect("json"),
    )
    .expect("write");
    assert_refused(
        &topo,
        &corrupt,
        &["--ca", "finish"],
        &["inventory.json", "half-done"],
    );
}

/// A CA you bring (`[pki.ca] cert/key`) is not apim-pki's to roll over: `--ca begin` exits 2.
#[test]
#[cfg_attr(
    not(apim_pki_openssl),
    ignore = "needs openssl (apt-get install openssl); .ci/run installs it all"
)]
fn rotate_ca_refuses_a_ca_you_bring() {
    if !java::require("openssl") {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let ok = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "corp-ca.key",
            "-out",
            "corp-ca.pem",
            "-subj",
            "/O=Corp/CN=Corp Issuing CA",
            "-days",
            "365",
            "-sha256",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ])
        .current_dir(tmp.path())
        .stdin(Stdio::null())
        .output()
        .expect("openssl runs");
    assert!(
        ok.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let text = format!(
        "{}\n[pki.ca]\ncert = \"corp-ca.pem\"\nkey = \"corp-ca.key\"\n",
        minimal_example()
    );
    let topo = write_topology(tmp.path(), &text);
    let out = tmp.path().join("out");
    generate(&topo, &out, &[]);
    assert!(!out.join("ca/ca.key").exists(), "the CA key was copied");
    for step in ["begin", "finish", "retire"] {
        assert_refused(&topo, &out, &["--ca", step], &["--ca", "[pki.ca]"]);
    }
    verify_ok(&out, "stable");
}

// ---------------------------------------------------------------------------------------------
// 6. --dry-run
// ---------------------------------------------------------------------------------------------

/// `--dry-run` lists what each option would do and writes nothing (no history/ either).
#[test]
fn dry_run_lists_the_actions_and_writes_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let text = minimal_example();
    let fleet = Fleet::of(&text);
    let topo = write_topology(tmp.path(), &text);
    let out = tmp.path().join("out");
    generate(&topo, &out, &[]);
    let before = snapshot(&out);

    let dry = |args: &[&str]| -> BTreeMap<String, (String, String)> {
        let mut all = args.to_vec();
        all.extend(["--dry-run", "--format", "json"]);
        let r = rotate_ok(&topo, &out, &all);
        assert_eq!(before, snapshot(&out), "rotate {all:?} wrote files");
        assert!(
            !out.join("history").exists(),
            "rotate {all:?} made history/"
        );
        let json: Value = serde_json::from_str(&r.stdout).expect("JSON");
        json["actions"]
            .as_array()
            .expect("actions")
            .iter()
            .map(|a| {
                (
                    a["path"].as_str().expect("path").to_string(),
                    (
                        a["action"].as_str().expect("action").to_string(),
                        a["reason"].as_str().unwrap_or_default().to_string(),
                    ),
                )
            })
            .collect()
    };
    let kind = |actions: &BTreeMap<String, (String, String)>, rel: &str| -> String {
        actions
            .get(rel)
            .map_or_else(|| "(absent)".into(), |(k, _)| k.clone())
    };

    let all = dry(&[]);
    for node in fleet.names() {
        assert_ne!(kind(&all, &tls(node)), "keep", "bare rotate: {}", tls(node));
        assert_eq!(
            kind(&all, &primary(node)),
            "keep",
            "bare rotate: {}",
            primary(node)
        );
    }
    let km = dry(&["--node", "km"]);
    for node in fleet.names() {
        let want_change = node == "km";
        assert_eq!(
            kind(&km, &tls(node)) != "keep",
            want_change,
            "--node km: {} is {}",
            tls(node),
            kind(&km, &tls(node))
        );
    }
    assert!(
        km[&tls("km")].1.contains("rotate"),
        "the reason says why: {:?}",
        km[&tls("km")]
    );
    let prim = dry(&["--primary-cert"]);
    for node in fleet.names() {
        assert_eq!(kind(&prim, &primary(node)), "reissue", "{}", primary(node));
        assert_eq!(kind(&prim, &tls(node)), "keep", "{}", tls(node));
    }
    let begin = dry(&["--ca", "begin"]);
    assert_eq!(kind(&begin, "ca/next/ca.crt"), "create");
    assert_eq!(kind(&begin, "ca/next/ca.key"), "create");
    for node in fleet.names() {
        assert_eq!(
            kind(&begin, &truststore(node)),
            "update",
            "{}",
            truststore(node)
        );
    }
    assert_eq!(inventory(&out)["ca_stage"], "stable");

    // Text: the listing names the artifact.
    let r = rotate_ok(&topo, &out, &["--node", "km", "--dry-run"]);
    assert!(r.stdout.contains(&tls("km")), "{}", r.stdout);
    assert_eq!(before, snapshot(&out), "rotate --dry-run wrote files");
}
