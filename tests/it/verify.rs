//! `apim-pki verify` and `apim-pki check-host` through the CLI.
//!
//! Every verify test starts from a freshly generated set, breaks exactly one thing (with the
//! library's keystore codec, or with OpenSSL for certificates made for the purpose) and asserts
//! the exact findings: the code, who it is about (node or load balancer), the file, the severity,
//! the exit code, `ok` and the summary. Root causes only: a broken thing must not cascade into
//! other error codes.
//!
//! Timings of generate and verify are printed (run with `--nocapture`), never asserted.

use crate::util;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::util::cli::{
    apim_pki, ha_example, minimal_example, secrets, write_topology, Run, HA_LOAD_BALANCERS,
};
use crate::util::files::s;
use crate::util::openssl::{openssl, self_signed};
use crate::util::set_paths::{primary, sec, tls, truststore};
use apim_pki::KeystoreFormat;
use apim_pki::Password;
use apim_pki::{pem as kpem, Entry, Keystore, StoreType};
use serde_json::Value;

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// A freshly generated set in its own temporary directory.
struct Set {
    tmp: tempfile::TempDir,
    out: PathBuf,
}

impl Set {
    fn new(topology: &str) -> Set {
        Set::with_env(topology, &[])
    }

    fn with_env(topology: &str, env: &[(&str, &str)]) -> Set {
        let tmp = tempfile::tempdir().expect("tempdir");
        let topo = write_topology(tmp.path(), topology);
        let out = tmp.path().join("out");
        let start = Instant::now();
        util::cli::generate(&topo, &out, env);
        eprintln!(
            "timing: generate {} ({} nodes): {:?}",
            out.display(),
            std::fs::read_dir(out.join("nodes")).map_or(0, |d| d.count()),
            start.elapsed()
        );
        Set { tmp, out }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.out.join(rel)
    }

    /// A generated password (`primary`, `tls`, `truststore`) from secrets.toml.
    fn password(&self, role: &str) -> Password {
        Password::new(secrets(&self.out)[role].clone())
    }

    /// A scratch directory next to the set (not inside it).
    fn scratch(&self, name: &str) -> PathBuf {
        let dir = self.tmp.path().join(name);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        dir
    }

    /// Opens a keystore of the set with the password of `role`.
    fn read_store(&self, rel: &str, role: &str) -> Keystore {
        let bytes = std::fs::read(self.path(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
        Keystore::decode(&bytes, &self.password(role))
            .unwrap_or_else(|e| panic!("{rel}: {e}"))
            .0
    }

    /// Removes the entry `alias` (which must be there) from `node`'s truststore (JKS set).
    fn drop_trusted(&self, node: &str, alias: &str) {
        let mut store = self.read_store(&truststore(node), "truststore");
        let before = store.entries.len();
        store.entries.retain(|e| e.alias() != alias);
        assert_eq!(
            store.entries.len(),
            before - 1,
            "{node}'s truststore has no {alias}"
        );
        self.write_store(&truststore(node), &store, KeystoreFormat::Jks, "truststore");
    }

    /// Writes `store` over `rel`, encoded as `format` with the password of `role`.
    fn write_store(&self, rel: &str, store: &Keystore, format: KeystoreFormat, role: &str) {
        let bytes = store
            .encode(format, &self.password(role))
            .unwrap_or_else(|e| panic!("{rel}: {e}"));
        std::fs::write(self.path(rel), bytes).unwrap_or_else(|e| panic!("{rel}: {e}"));
    }
}

/// `apim-pki verify DIR ARGS...` with extra variables set and others removed; prints its time.
fn verify_run(dir: &Path, args: &[&str], env: &[(&str, &str)], unset: &[&str]) -> Run {
    let mut cmd = apim_pki();
    cmd.arg("verify").arg(dir).args(args);
    for var in unset {
        cmd.env_remove(var);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let start = Instant::now();
    let r: Run = cmd.output().expect("apim-pki runs").into();
    eprintln!(
        "timing: verify {} {}: {:?} (exit {})",
        dir.display(),
        args.join(" "),
        start.elapsed(),
        r.code
    );
    r
}

/// `verify DIR --format json ARGS...`: the exit code and the report.
fn verify_json(set: &Set, args: &[&str]) -> (i32, Value) {
    let mut all = vec!["--format", "json"];
    all.extend_from_slice(args);
    verify_run(&set.out, &all, &[], &[]).json("verify")
}

/// (severity, code, who, file): who is the node, `lb:HOST` for a load balancer, or `set`.
type Key = (String, String, String, String);

fn finding_keys(report: &Value) -> Vec<Key> {
    let mut keys: Vec<Key> = report["findings"]
        .as_array()
        .expect("findings array")
        .iter()
        .map(|f| {
            let who = match (f["node"].as_str(), f["load_balancer"].as_str()) {
                (Some(n), None) => n.to_string(),
                (None, Some(h)) => format!("lb:{h}"),
                (None, None) => "set".to_string(),
                (Some(n), Some(h)) => panic!("a finding names node {n} and load balancer {h}"),
            };
            (
                f["severity"].as_str().expect("severity").to_string(),
                f["code"].as_str().expect("code").to_string(),
                who,
                f["file"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    keys.sort();
    keys
}

fn err(code: &str, who: &str, file: &str) -> Key {
    ("error".into(), code.into(), who.into(), file.into())
}

fn warn(code: &str, who: &str, file: &str) -> Key {
    ("warning".into(), code.into(), who.into(), file.into())
}

/// The report holds exactly `expected` (as a multiset), and the exit code, `ok` and the summary
/// agree with it: exit 1 with an error, else exit 0.
#[track_caller]
fn assert_findings(code: i32, report: &Value, expected: &[Key]) {
    let pretty = serde_json::to_string_pretty(report).expect("json");
    let mut want = expected.to_vec();
    want.sort();
    assert_eq!(
        finding_keys(report),
        want,
        "findings differ from the expected ones; report:\n{pretty}"
    );
    let errors = want.iter().filter(|k| k.0 == "error").count();
    let warnings = want.len() - errors;
    assert_eq!(
        code,
        if errors > 0 { 1 } else { 0 },
        "exit code; report:\n{pretty}"
    );
    assert_eq!(report["ok"], errors == 0, "ok; report:\n{pretty}");
    assert_eq!(report["summary"]["errors"], errors, "summary; {pretty}");
    assert_eq!(report["summary"]["warnings"], warnings, "summary; {pretty}");
    assert!(
        report["summary"]["checked"].as_u64().is_some_and(|n| n > 0),
        "checked must be positive; report:\n{pretty}"
    );
    for f in report["findings"].as_array().expect("findings") {
        assert!(
            f["message"].as_str().is_some_and(|m| !m.is_empty()),
            "a finding without a message: {f}"
        );
    }
}

/// The findings whose code is `code`.
fn with_code<'a>(report: &'a Value, code: &str) -> Vec<&'a Value> {
    report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["code"] == code)
        .collect()
}

/// A clean set: no findings at all, exit 0, ok, something checked.
#[track_caller]
fn assert_clean(set: &Set) {
    let (code, report) = verify_json(set, &[]);
    assert_findings(code, &report, &[]);
    assert_eq!(report["ca_stage"], "stable");
}

/// A new RSA key (`key.pem`, PKCS#8) and a CSR for `CN=cn` (`csr.pem`) in `dir`.
fn key_and_csr(dir: &Path, bits: u32, cn: &str) {
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-newkey",
            &format!("rsa:{bits}"),
            "-nodes",
            "-keyout",
            "key.pem",
            "-out",
            "csr.pem",
            "-subj",
            &format!("/CN={cn}"),
        ],
    );
}

/// `ext.cnf` with an `[ext]` section: a leaf with these DNS SANs.
fn write_ext(dir: &Path, dns: &[&str]) {
    let sans: Vec<String> = dns.iter().map(|d| format!("DNS:{d}")).collect();
    std::fs::write(
        dir.join("ext.cnf"),
        format!(
            "[ext]\nbasicConstraints = CA:FALSE\nkeyUsage = digitalSignature, keyEncipherment\n\
             extendedKeyUsage = serverAuth, clientAuth\nsubjectAltName = {}\n",
            sans.join(", ")
        ),
    )
    .expect("write ext.cnf");
}

/// Signs `csr.pem` with the set's CA (ca/ca.crt, ca/ca.key) into `cert.pem`, with `ext.cnf`.
fn ca_sign(set: &Set, dir: &Path, digest: &str) {
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "csr.pem",
            "-CA",
            s(&set.path("ca/ca.crt")),
            "-CAkey",
            s(&set.path("ca/ca.key")),
            "-CAcreateserial",
            "-CAserial",
            "ca.srl",
            "-days",
            "365",
            digest,
            "-extfile",
            "ext.cnf",
            "-extensions",
            "ext",
            "-out",
            "cert.pem",
        ],
    );
}

/// A key entry from `key.pem` and `cert.pem` in `dir`.
fn pem_entry(dir: &Path, alias: &str) -> Entry {
    let key = pem::parse(std::fs::read(dir.join("key.pem")).expect("key.pem")).expect("key PEM");
    assert_eq!(key.tag(), "PRIVATE KEY", "OpenSSL 3 writes PKCS#8");
    let chain =
        kpem::certs_from_pem(&std::fs::read(dir.join("cert.pem")).expect("cert.pem")).unwrap();
    assert!(!chain.is_empty(), "cert.pem holds no certificate");
    Entry::PrivateKey {
        alias: alias.to_string(),
        pkcs8: zeroize::Zeroizing::new(key.contents().to_vec()),
        chain,
    }
}

/// The private key (PKCS#8) and the chain of `node`'s TLS key entry (JKS set).
fn tls_key(set: &Set, node: &str) -> (zeroize::Zeroizing<Vec<u8>>, Vec<Vec<u8>>) {
    let store = set.read_store(&tls(node), "tls");
    let Some(Entry::PrivateKey { pkcs8, chain, .. }) = store.key_entries().next().cloned() else {
        panic!("{node} has no key entry")
    };
    (pkcs8, chain)
}

/// Replaces a node's TLS keystore (JKS set) with one holding just `entry`.
fn replace_tls_entry(set: &Set, node: &str, entry: Entry) {
    set.write_store(
        &tls(node),
        &Keystore {
            entries: vec![entry],
        },
        KeystoreFormat::Jks,
        "tls",
    );
}

/// The error codes of the report about `who`.
fn error_codes_of(report: &Value, who: &str) -> Vec<String> {
    finding_keys(report)
        .into_iter()
        .filter(|k| k.0 == "error" && k.2 == who)
        .map(|k| k.1)
        .collect()
}

/// Prints the findings, for the record.
fn show(report: &Value) {
    for k in finding_keys(report) {
        eprintln!("finding: {k:?}");
    }
}

// The minimal example's node we break, and its host (no load balancer in front of it).
const KM: &str = "km";
const KM_HOST: &str = "km.dev.acme.internal";

// ---------------------------------------------------------------------------------------------
// Fresh sets verify clean
// ---------------------------------------------------------------------------------------------

#[test]
fn fresh_ha_set_verifies_clean() {
    let set = Set::new(&ha_example());
    assert_clean(&set);
    // A second run (warm cache), for the timing record.
    let r = verify_run(&set.out, &[], &[], &[]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
}

#[test]
fn fresh_minimal_set_verifies_clean() {
    assert_clean(&Set::new(&minimal_example()));
}

#[test]
fn fresh_pkcs12_set_verifies_clean() {
    let topology = format!("{}\n[keystores]\nformat = \"pkcs12\"\n", minimal_example());
    let set = Set::new(&topology);
    let tls = sec(KM, "km-tls.p12");
    let bytes = std::fs::read(set.path(&tls)).expect("a .p12 TLS keystore");
    assert_eq!(StoreType::detect(&bytes), Some(StoreType::Pkcs12));
    assert_clean(&set);
}

#[test]
fn fresh_shared_tls_set_verifies_clean() {
    let topology = ha_example().replace("tls = \"per-node\"", "tls = \"shared\"");
    assert!(topology.contains("tls = \"shared\""));
    let set = Set::new(&topology);
    assert!(
        !set.path(&tls("gw1")).exists(),
        "shared mode writes no per-node TLS keystore"
    );
    assert_clean(&set);
}

// ---------------------------------------------------------------------------------------------
// One broken thing, one root cause
// ---------------------------------------------------------------------------------------------

#[test]
fn swapped_tls_keystores_are_hostname_mismatches() {
    let set = Set::new(&ha_example());
    let (a, b) = (set.path(&tls("gw1")), set.path(&tls("gw2")));
    let (bytes_a, bytes_b) = (std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    std::fs::write(&a, bytes_b).unwrap();
    std::fs::write(&b, bytes_a).unwrap();
    let (code, report) = verify_json(&set, &[]);
    assert_findings(
        code,
        &report,
        &[
            err("hostname-mismatch", "gw1", &tls("gw1")),
            err("hostname-mismatch", "gw2", &tls("gw2")),
            warn("alias-mismatch", "gw1", &tls("gw1")),
            warn("alias-mismatch", "gw2", &tls("gw2")),
        ],
    );
    let gw1 = with_code(&report, "hostname-mismatch")
        .into_iter()
        .find(|f| f["node"] == "gw1")
        .unwrap();
    assert_eq!(gw1["expected"], "gw1.acme.internal", "{gw1}");
    assert!(
        gw1["actual"]
            .as_str()
            .is_some_and(|a| a.contains("gw2.acme.internal")),
        "{gw1}"
    );
    let alias = with_code(&report, "alias-mismatch")
        .into_iter()
        .find(|f| f["node"] == "gw1")
        .unwrap();
    assert_eq!(
        (&alias["expected"], &alias["actual"]),
        (&Value::from("gw1"), &Value::from("gw2"))
    );
}

/// km's own chain with the publisher's key: only the key does not belong.
#[test]
fn foreign_key_under_own_chain_is_key_cert_mismatch() {
    let set = Set::new(&minimal_example());
    let (_, km_chain) = tls_key(&set, KM);
    let (publisher_key, _) = tls_key(&set, "publisher");
    replace_tls_entry(
        &set,
        KM,
        Entry::PrivateKey {
            alias: KM.into(),
            pkcs8: publisher_key,
            chain: km_chain,
        },
    );
    let (code, report) = verify_json(&set, &[]);
    // km's keystore now holds the publisher's private key: a key held twice (the copy is km's,
    // whose certificate the key does not belong to).
    assert_findings(
        code,
        &report,
        &[
            err("key-cert-mismatch", KM, &tls(KM)),
            err("shared-key", KM, &tls(KM)),
        ],
    );
}

/// The brief's literal variant: km's key with the publisher's chain, in km's keystore. The
/// certificate then also fails to name km's host: both facts are reported, for km only.
#[test]
fn own_key_under_foreign_chain_is_key_cert_and_hostname_mismatch() {
    let set = Set::new(&minimal_example());
    let (km_key, _) = tls_key(&set, KM);
    let (_, publisher_chain) = tls_key(&set, "publisher");
    replace_tls_entry(
        &set,
        KM,
        Entry::PrivateKey {
            alias: KM.into(),
            pkcs8: km_key,
            chain: publisher_chain,
        },
    );
    let (code, report) = verify_json(&set, &[]);
    assert_findings(
        code,
        &report,
        &[
            err("key-cert-mismatch", KM, &tls(KM)),
            err("hostname-mismatch", KM, &tls(KM)),
        ],
    );
}

#[test]
fn tls_keystore_from_another_ca_is_untrusted_chain() {
    let set = Set::new(&minimal_example());
    let other = Set::new(&minimal_example());
    let foreign = other.read_store(&tls(KM), "tls");
    set.write_store(&tls(KM), &foreign, KeystoreFormat::Jks, "tls");
    let (code, report) = verify_json(&set, &[]);
    assert_findings(code, &report, &[err("untrusted-chain", KM, &tls(KM))]);
}

#[test]
fn truststore_without_ca_is_one_root_cause() {
    let set = Set::new(&minimal_example());
    set.drop_trusted(KM, "acme-dev-ca");
    let (code, report) = verify_json(&set, &[]);
    assert_findings(
        code,
        &report,
        &[err("truststore-missing-ca", KM, &truststore(KM))],
    );
}

#[test]
fn truststore_without_gateway_certificate_alias_is_missing_primary() {
    let set = Set::new(&minimal_example());
    set.drop_trusted("gateway", "gateway_certificate_alias");
    let (code, report) = verify_json(&set, &[]);
    assert_findings(
        code,
        &report,
        &[err(
            "truststore-missing-primary",
            "gateway",
            &truststore("gateway"),
        )],
    );
    let f = with_code(&report, "truststore-missing-primary")[0];
    assert_eq!(f["expected"], "gateway_certificate_alias", "{f}");
}

/// Another set's primary keystore on one node: `primary-differs`, and since that primary is
/// issued by the other set's CA, also `untrusted-chain` for the same file. Both are facts a user
/// needs (the next test shows `untrusted-chain` is not a mere consequence of `primary-differs`).
#[test]
fn primary_of_another_set_is_primary_differs_and_untrusted() {
    let set = Set::new(&minimal_example());
    let other = Set::new(&minimal_example());
    let foreign = other.read_store(&primary(KM), "primary");
    set.write_store(&primary(KM), &foreign, KeystoreFormat::Jks, "primary");
    let (code, report) = verify_json(&set, &[]);
    show(&report);
    assert_findings(
        code,
        &report,
        &[
            err("primary-differs", KM, &primary(KM)),
            err("untrusted-chain", KM, &primary(KM)),
        ],
    );
}

/// A different primary key issued by the set's own CA: `primary-differs` alone.
#[test]
#[cfg_attr(
    not(apim_pki_openssl),
    ignore = "needs openssl (apt-get install openssl); .ci/run installs it all"
)]
fn primary_with_another_key_from_the_same_ca_is_primary_differs() {
    if !util::java::require("openssl") {
        return;
    }
    let set = Set::new(&minimal_example());
    let dir = set.scratch("primary");
    key_and_csr(&dir, 2048, "acme-dev primary");
    std::fs::write(
        dir.join("ext.cnf"),
        "[ext]\nbasicConstraints = CA:FALSE\nkeyUsage = digitalSignature, keyEncipherment\n",
    )
    .unwrap();
    ca_sign(&set, &dir, "-sha256");
    set.write_store(
        &primary(KM),
        &Keystore {
            entries: vec![pem_entry(&dir, "wso2carbon")],
        },
        KeystoreFormat::Jks,
        "primary",
    );
    let (code, report) = verify_json(&set, &[]);
    assert_findings(code, &report, &[err("primary-differs", KM, &primary(KM))]);
}

#[test]
#[cfg_attr(
    not(apim_pki_openssl),
    ignore = "needs openssl (apt-get install openssl); .ci/run installs it all"
)]
fn expired_certificate_is_expired() {
    if !util::java::require("openssl") {
        return;
    }
    let set = Set::new(&minimal_example());
    let dir = set.scratch("expired");
    key_and_csr(&dir, 2048, KM_HOST);
    std::fs::write(dir.join("index.txt"), "").unwrap();
    std::fs::write(dir.join("serial.txt"), "1000\n").unwrap();
    std::fs::write(
        dir.join("ca.cnf"),
        format!(
            "[ca]\ndefault_ca = own\n\n[own]\ndatabase = index.txt\nnew_certs_dir = .\n\
             serial = serial.txt\ndefault_md = sha256\npolicy = any\nunique_subject = no\n\
             copy_extensions = none\n\n[any]\ncommonName = supplied\n\n[ext]\n\
             basicConstraints = CA:FALSE\nkeyUsage = digitalSignature, keyEncipherment\n\
             extendedKeyUsage = serverAuth, clientAuth\nsubjectAltName = DNS:{KM_HOST}\n"
        ),
    )
    .unwrap();
    openssl(
        &dir,
        &[
            "ca",
            "-batch",
            "-config",
            "ca.cnf",
            "-cert",
            s(&set.path("ca/ca.crt")),
            "-keyfile",
            s(&set.path("ca/ca.key")),
            "-in",
            "csr.pem",
            "-out",
            "cert.pem",
            "-startdate",
            "20200101000000Z",
            "-enddate",
            "20210101000000Z",
            "-extensions",
            "ext",
            "-notext",
        ],
    );
    replace_tls_entry(&set, KM, pem_entry(&dir, KM));
    let (code, report) = verify_json(&set, &[]);
    assert_findings(code, &report, &[err("expired", KM, &tls(KM))]);
    let f = with_code(&report, "expired")[0];
    assert!(
        f["subject"].as_str().is_some_and(|s| s.contains(KM_HOST)),
        "{f}"
    );
}

#[test]
#[cfg_attr(
    not(apim_pki_openssl),
    ignore = "needs openssl (apt-get install openssl); .ci/run installs it all"
)]
fn sha1_signed_certificate_is_weak_signature() {
    if !util::java::require("openssl") {
        return;
    }
    assert_weak_km_certificate("sha1", 2048, "-sha1", "weak-signature");
}

#[test]
#[cfg_attr(
    not(apim_pki_openssl),
    ignore = "needs openssl (apt-get install openssl); .ci/run installs it all"
)]
fn rsa_1024_certificate_is_weak_key() {
    if !util::java::require("openssl") {
        return;
    }
    assert_weak_km_certificate("rsa1024", 1024, "-sha256", "weak-key");
}

/// km's TLS certificate replaced by one the set's CA signs over a new RSA key of `bits` with
/// `digest`, naming km's host: `code` on km's TLS keystore, and nothing else.
fn assert_weak_km_certificate(scratch: &str, bits: u32, digest: &str, code: &str) {
    let set = Set::new(&minimal_example());
    let dir = set.scratch(scratch);
    key_and_csr(&dir, bits, KM_HOST);
    write_ext(&dir, &[KM_HOST]);
    ca_sign(&set, &dir, digest);
    replace_tls_entry(&set, KM, pem_entry(&dir, KM));
    let (exit, report) = verify_json(&set, &[]);
    show(&report);
    assert!(error_codes_of(&report, KM).contains(&code.to_string()));
    assert_findings(exit, &report, &[err(code, KM, &tls(KM))]);
}

/// WSO2's shipped default: self-signed, CN=localhost, no SAN. It is also not trusted and does not
/// name km's host, so `hostname-mismatch` and `untrusted-chain` on the same file are accepted;
/// findings elsewhere (peers whose URLs name km's host) would be consequences, not root causes.
#[test]
#[cfg_attr(
    not(apim_pki_openssl),
    ignore = "needs openssl (apt-get install openssl); .ci/run installs it all"
)]
fn wso2_default_certificate_is_default_certificate() {
    if !util::java::require("openssl") {
        return;
    }
    let set = Set::new(&minimal_example());
    let dir = set.scratch("default");
    self_signed(
        &dir,
        3650,
        "/C=US/ST=CA/L=Mountain View/O=WSO2/CN=localhost",
        &["-sha256"],
    );
    replace_tls_entry(&set, KM, pem_entry(&dir, KM));
    let (code, report) = verify_json(&set, &[]);
    show(&report);
    assert_eq!(code, 1);
    let codes = error_codes_of(&report, KM);
    assert!(
        codes.contains(&"default-certificate".to_string()),
        "{codes:?}"
    );
    let f = with_code(&report, "default-certificate")[0];
    assert_eq!(f["file"], tls(KM).as_str(), "{f}");
    // Nothing but km's TLS keystore is reported, and only codes that describe this certificate.
    for k in finding_keys(&report) {
        assert_eq!(
            (k.2.as_str(), k.3.as_str()),
            (KM, tls(KM).as_str()),
            "{k:?}"
        );
        assert!(
            [
                "default-certificate",
                "hostname-mismatch",
                "untrusted-chain"
            ]
            .contains(&k.1.as_str()),
            "{k:?}"
        );
    }
}

#[test]
fn short_validity_warns_expires_soon_only_within_warn_days() {
    let topology = ha_example()
        .replace("validity_days = 397", "validity_days = 20")
        .replace("renew_before_days = 30", "renew_before_days = 5");
    assert!(topology.contains("validity_days = 20") && topology.contains("renew_before_days = 5"));
    let set = Set::new(&topology);
    // The default window is renew_before_days (5): nothing to say.
    assert_clean(&set);

    let (code, report) = verify_json(&set, &["--warn-days", "30"]);
    let mut expected: Vec<Key> = [
        "km1", "km2", "pub1", "pub2", "store1", "store2", "tm1", "tm2", "gwm", "gw1", "gw2",
    ]
    .iter()
    .map(|n| warn("expires-soon", n, &tls(n)))
    .collect();
    for lb in HA_LOAD_BALANCERS {
        expected.push(warn(
            "expires-soon",
            &format!("lb:{lb}"),
            &format!("load-balancers/{lb}/tls.crt"),
        ));
    }
    assert_findings(code, &report, &expected);
    assert_eq!(code, 0);
    assert_eq!(report["ok"], true);
}

#[test]
fn truststore_with_another_password_is_wrong_password() {
    let set = Set::new(&minimal_example());
    let store = set.read_store(&truststore(KM), "truststore");
    let bytes = store
        .encode(
            KeystoreFormat::Jks,
            &Password::new("not-the-recorded-one-42".into()),
        )
        .unwrap();
    std::fs::write(set.path(&truststore(KM)), bytes).unwrap();
    let (code, report) = verify_json(&set, &[]);
    assert_findings(code, &report, &[err("wrong-password", KM, &truststore(KM))]);
    assert!(
        !report.to_string().contains("not-the-recorded-one-42"),
        "a password in the report"
    );
}

#[test]
fn truncated_tls_keystore_is_corrupt_file() {
    let set = Set::new(&minimal_example());
    let path = set.path(&tls(KM));
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..100]).unwrap();
    let (code, report) = verify_json(&set, &[]);
    assert_findings(code, &report, &[err("corrupt-file", KM, &tls(KM))]);
}

#[test]
fn deleted_primary_keystore_is_missing_file() {
    let set = Set::new(&minimal_example());
    std::fs::remove_file(set.path(&primary(KM))).unwrap();
    let (code, report) = verify_json(&set, &[]);
    assert_findings(code, &report, &[err("missing-file", KM, &primary(KM))]);
}

#[test]
fn pkcs12_bytes_in_a_jks_file_are_wrong_keystore_type() {
    let set = Set::new(&minimal_example());
    let store = set.read_store(&tls(KM), "tls");
    set.write_store(&tls(KM), &store, KeystoreFormat::Pkcs12, "tls");
    let bytes = std::fs::read(set.path(&tls(KM))).unwrap();
    assert_eq!(StoreType::detect(&bytes), Some(StoreType::Pkcs12));
    let (code, report) = verify_json(&set, &[]);
    assert_findings(code, &report, &[err("wrong-keystore-type", KM, &tls(KM))]);
    let f = with_code(&report, "wrong-keystore-type")[0];
    assert_eq!(
        (&f["expected"], &f["actual"]),
        (&"JKS".into(), &"PKCS12".into())
    );
}

#[test]
fn another_alias_is_only_a_warning() {
    let set = Set::new(&minimal_example());
    let store = set.read_store(&tls(KM), "tls");
    let entries = store
        .entries
        .into_iter()
        .map(|e| match e {
            Entry::PrivateKey { pkcs8, chain, .. } => Entry::PrivateKey {
                alias: "other".into(),
                pkcs8,
                chain,
            },
            trusted => trusted,
        })
        .collect();
    set.write_store(&tls(KM), &Keystore { entries }, KeystoreFormat::Jks, "tls");
    let (code, report) = verify_json(&set, &[]);
    assert_findings(code, &report, &[warn("alias-mismatch", KM, &tls(KM))]);
    let f = with_code(&report, "alias-mismatch")[0];
    assert_eq!(
        (&f["expected"], &f["actual"]),
        (&"km".into(), &"other".into())
    );
}

#[test]
fn load_balancer_serving_another_cert_is_reported_for_the_load_balancer() {
    let set = Set::new(&ha_example());
    let gw = "load-balancers/gw.acme.internal";
    std::fs::copy(
        set.path("load-balancers/km.acme.internal/tls.crt"),
        set.path(&format!("{gw}/tls.crt")),
    )
    .unwrap();
    let (code, report) = verify_json(&set, &[]);
    let who = "lb:gw.acme.internal";
    assert_findings(
        code,
        &report,
        &[
            err("hostname-mismatch", who, &format!("{gw}/tls.crt")),
            err("key-cert-mismatch", who, &format!("{gw}/tls.key")),
        ],
    );
    for f in report["findings"].as_array().unwrap() {
        assert_eq!(f["load_balancer"], "gw.acme.internal", "{f}");
        assert!(f.get("node").is_none(), "{f}");
    }
}

// ---------------------------------------------------------------------------------------------
// Exit 2: verify cannot run
// ---------------------------------------------------------------------------------------------

#[track_caller]
fn assert_cannot_run(r: &Run, names: &[&str]) {
    let ctx = format!(
        "exit {}\nstdout: {}\nstderr: {}",
        r.code, r.stdout, r.stderr
    );
    assert_eq!(r.code, 2, "{ctx}");
    assert!(r.stdout.is_empty(), "nothing on stdout: {ctx}");
    assert!(!r.stderr.contains("panicked"), "{ctx}");
    for name in names {
        assert!(r.stderr.contains(name), "stderr must name {name}: {ctx}");
    }
}

#[test]
fn directory_without_inventory_cannot_be_verified() {
    let tmp = tempfile::tempdir().unwrap();
    let r = verify_run(tmp.path(), &["--format", "json"], &[], &[]);
    assert_cannot_run(&r, &["inventory.json"]);
    let missing = tmp.path().join("no-such-dir");
    let r = verify_run(&missing, &[], &[], &[]);
    assert_cannot_run(&r, &["inventory.json"]);
}

#[test]
fn corrupt_inventory_cannot_be_verified() {
    let set = Set::new(&minimal_example());
    std::fs::write(set.path("inventory.json"), "{\"format\": 1, \"nodes\": [").unwrap();
    let r = verify_run(&set.out, &["--format", "json"], &[], &[]);
    assert_cannot_run(&r, &["inventory.json"]);
}

/// A peer group's member is checked once per set but reported for every node whose setting
/// names it: a traffic manager that peer-groups.toml puts on a host its certificate does not
/// cover is one config-host-uncovered finding per TLS setting naming the group, in each such
/// node.toml, and one more check each (the URL no longer names the node's own host). The same
/// for an API-M 4.x set, whose deployment.toml `[[peer]]` entries name the group.
#[test]
fn a_group_member_nobody_covers_is_reported_for_every_node_naming_it() {
    group_member_nobody_covers(
        &minimal_example(),
        &["km", "publisher", "store", "tm", "gateway"],
        2,
    );
    let example = util::cli::run(&["init", "--product", "apim-4.x"], &[]);
    assert_eq!(example.code, 0, "{}", example.stderr);
    let topology = example.stdout.replace("\"rsa-2048\"", "\"ecdsa-p256\"");
    let nodes: Vec<String> = topology
        .lines()
        .filter_map(|l| l.strip_prefix("name = \""))
        .filter_map(|l| l.split('"').next())
        .skip(1)
        .map(str::to_owned)
        .collect();
    let nodes: Vec<&str> = nodes.iter().map(String::as_str).collect();
    // Only the gateway names the traffic managers over TLS (url_group auth_urls).
    group_member_nobody_covers(&topology, &nodes, 1);
}

/// Moves the first member of `topology`'s peer-groups.toml elsewhere: `at_least` findings.
fn group_member_nobody_covers(topology: &str, nodes: &[&str], at_least: usize) {
    let set = Set::new(topology);
    let (code, clean) = verify_json(&set, &[]);
    assert_eq!(code, 0, "{clean}");
    let groups = set.path("peer-groups.toml");
    let text = std::fs::read_to_string(&groups).unwrap();
    let member = text
        .lines()
        .find(|l| l.starts_with("host = "))
        .expect("a member");
    let moved = text.replace(member, "host = \"elsewhere.example\"");
    std::fs::write(&groups, moved).unwrap();
    let mut expected = Vec::new();
    for &node in nodes {
        let rel = format!("nodes/{node}/node.toml");
        let t = std::fs::read_to_string(set.path(&rel)).unwrap();
        let tls = ["ssl", "https"]
            .iter()
            .map(|s| {
                t.matches(&format!("group = \"traffic-manager\"\nscheme = \"{s}\""))
                    .count()
            })
            .sum();
        expected.extend(std::iter::repeat_n(
            err("config-host-uncovered", node, &rel),
            tls,
        ));
    }
    assert!(
        expected.len() >= at_least,
        "nodes name the group over TLS: {expected:?}"
    );
    let (code, report) = verify_json(&set, &[]);
    assert_findings(code, &report, &expected);
    let checked = |r: &Value| r["summary"]["checked"].as_u64().expect("checked");
    assert_eq!(checked(&report), checked(&clean) + expected.len() as u64);
    assert!(report.to_string().contains("elsewhere.example"));
}

/// peer-groups.toml holds every traffic manager once for the whole set: without it (or with a
/// broken one) no node.toml naming the group reads, so verify stops with one message naming
/// the file and what to do, not one finding per node.
#[test]
fn deleted_or_corrupt_peer_groups_cannot_be_verified() {
    let set = Set::new(&minimal_example());
    let groups = set.path("peer-groups.toml");
    let text = std::fs::read_to_string(&groups).expect("a 2.6 set names its traffic managers once");
    assert!(
        text.contains("[[peer_group.traffic-manager.members]]"),
        "{text}"
    );
    std::fs::write(
        &groups,
        "schema = 4\n[[peer_group.traffic-manager.members]]\nhost = 7\n",
    )
    .unwrap();
    let r = verify_run(&set.out, &[], &[], &[]);
    assert_cannot_run(
        &r,
        &[
            "peer-groups.toml: not a valid peer-groups.toml",
            "apim-pki generate",
        ],
    );
    assert_eq!(r.stderr.matches("error:").count(), 1, "{}", r.stderr);
    std::fs::remove_file(&groups).unwrap();
    let r = verify_run(&set.out, &[], &[], &[]);
    assert_cannot_run(&r, &["peer-groups.toml: cannot read", "apim-pki generate"]);
    assert_eq!(r.stderr.matches("error:").count(), 1, "{}", r.stderr);
}

#[test]
fn password_variable_named_by_inventory_must_be_set() {
    let topology = format!("{}\n[passwords]\ntls = \"TLS_PW\"\n", minimal_example());
    let pw = "Tls-Password-From-Env-1";
    let set = Set::with_env(&topology, &[("TLS_PW", pw)]);
    assert!(
        !std::fs::read_to_string(set.path("secrets.toml"))
            .unwrap()
            .contains(pw),
        "a password from the environment was written to disk"
    );
    let r = verify_run(&set.out, &[], &[], &["TLS_PW"]);
    assert_cannot_run(&r, &["TLS_PW"]);
    assert!(!r.stderr.contains(pw));

    let r = verify_run(&set.out, &[], &[("TLS_PW", pw)], &[]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r
        .stdout
        .trim_end()
        .lines()
        .last()
        .unwrap()
        .starts_with("ok:"));

    // Set, but to another value: the TLS keystores do not open; findings, not exit 2.
    let r = verify_run(
        &set.out,
        &["--format", "json"],
        &[("TLS_PW", "another-value-77")],
        &[],
    );
    let report: Value = serde_json::from_str(&r.stdout).expect("json");
    let expected: Vec<Key> = ["km", "publisher", "store", "tm", "gateway"]
        .iter()
        .map(|n| err("wrong-password", n, &tls(n)))
        .collect();
    assert_findings(r.code, &report, &expected);
}

// ---------------------------------------------------------------------------------------------
// Text output
// ---------------------------------------------------------------------------------------------

#[test]
fn text_output_has_a_line_per_finding_and_a_summary() {
    let set = Set::new(&minimal_example());
    let r = verify_run(&set.out, &[], &[], &[]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let lines: Vec<&str> = r.stdout.trim_end().lines().collect();
    assert_eq!(lines.len(), 1, "{}", r.stdout);
    assert!(lines[0].starts_with("ok:"), "{}", r.stdout);
    assert!(lines[0].contains("acme-dev"), "{}", r.stdout);

    // Two errors and a warning.
    std::fs::remove_file(set.path(&primary("store"))).unwrap();
    let path = set.path(&tls("tm"));
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..100]).unwrap();
    let mut store = set.read_store(&tls(KM), "tls");
    if let Some(Entry::PrivateKey { alias, .. }) = store.entries.first_mut() {
        *alias = "other".into();
    }
    set.write_store(&tls(KM), &store, KeystoreFormat::Jks, "tls");

    let (_, report) = verify_json(&set, &[]);
    let n = report["findings"].as_array().unwrap().len();
    assert_eq!(n, 3, "{report}");
    let r = verify_run(&set.out, &[], &[], &[]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    let lines: Vec<&str> = r.stdout.trim_end().lines().collect();
    assert_eq!(
        lines.len(),
        n + 1,
        "one line per finding and a summary:\n{}",
        r.stdout
    );
    for f in report["findings"].as_array().unwrap() {
        let code = f["code"].as_str().unwrap();
        let file = f["file"].as_str().unwrap();
        assert!(
            lines[..n]
                .iter()
                .any(|l| l.contains(code) && l.contains(file)),
            "no line for {code} {file}:\n{}",
            r.stdout
        );
    }
    let summary = lines[n];
    assert!(summary.starts_with("FAILED:"), "{summary}");
    assert!(
        summary.contains("2 errors") && summary.contains("1 warning"),
        "{summary}"
    );
}

// ---------------------------------------------------------------------------------------------
// check-host
// ---------------------------------------------------------------------------------------------

fn check_host(file: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = apim_pki();
    cmd.arg("check-host").arg(file).args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("apim-pki runs").into()
}

/// check-host --format json: exit code and verdicts by host.
fn check_host_json(
    file: &Path,
    hosts: &[&str],
    extra: &[&str],
    env: &[(&str, &str)],
) -> (i32, Value, BTreeMap<String, (bool, bool)>) {
    let mut args = hosts.to_vec();
    args.extend_from_slice(&["--format", "json"]);
    args.extend_from_slice(extra);
    let (code, json) = check_host(file, &args, env).json("check-host");
    let verdicts = json["hosts"]
        .as_array()
        .expect("hosts")
        .iter()
        .map(|h| {
            assert!(h["reason"].as_str().is_some_and(|r| !r.is_empty()), "{h}");
            (
                h["host"].as_str().unwrap().to_string(),
                (h["java"].as_bool().unwrap(), h["strict"].as_bool().unwrap()),
            )
        })
        .collect();
    (code, json, verdicts)
}

fn v(pairs: &[(&str, bool, bool)]) -> BTreeMap<String, (bool, bool)> {
    pairs
        .iter()
        .map(|(h, j, s)| (h.to_string(), (*j, *s)))
        .collect()
}

#[test]
fn check_host_on_a_generated_node_certificate() {
    let set = Set::new(&ha_example());
    let store = set.read_store(&tls("gw1"), "tls");
    let leaf = store.key_entries().next().and_then(Entry::cert).unwrap();
    let pem_path = set.scratch("pem").join("gw1.pem");
    std::fs::write(&pem_path, kpem::certs_to_pem([leaf])).unwrap();

    // The PEM certificate: its own host, its load balancer's, localhost.
    let (code, json, verdicts) = check_host_json(
        &pem_path,
        &["gw1.acme.internal", "gw.acme.internal", "localhost"],
        &[],
        &[],
    );
    assert_eq!(code, 0, "{json}");
    assert_eq!(
        verdicts,
        v(&[
            ("gw1.acme.internal", true, true),
            ("gw.acme.internal", true, true),
            ("localhost", true, true),
        ])
    );
    assert!(
        json["subject"]
            .as_str()
            .is_some_and(|s| s.contains("gw1.acme.internal")),
        "{json}"
    );
    assert_eq!(json["file"], s(&pem_path));
    let gw1 = &json["hosts"][0];
    assert_eq!(gw1["matched"], "DNS:gw1.acme.internal", "{gw1}");

    // Another node's host fails, under either rules.
    let (code, _, verdicts) = check_host_json(&pem_path, &["gw2.acme.internal"], &[], &[]);
    assert_eq!(code, 1);
    assert_eq!(verdicts, v(&[("gw2.acme.internal", false, false)]));
    let (code, _, _) = check_host_json(
        &pem_path,
        &["gw1.acme.internal", "km1.acme.internal"],
        &[],
        &[],
    );
    assert_eq!(code, 1, "one failing host fails the run");

    // The keystore itself, opened with --password-env.
    let pw = secrets(&set.out)["tls"].clone();
    let ks = set.path(&tls("gw1"));
    let env = [("GW1_PW", pw.as_str())];
    let (code, json, verdicts) = check_host_json(
        &ks,
        &["gw1.acme.internal", "localhost"],
        &["--password-env", "GW1_PW"],
        &env,
    );
    assert_eq!(code, 0, "{json}");
    assert_eq!(
        verdicts,
        v(&[("gw1.acme.internal", true, true), ("localhost", true, true)])
    );
    assert!(!json.to_string().contains(&pw));
    let (code, _, _) = check_host_json(
        &ks,
        &["gw2.acme.internal"],
        &["--password-env", "GW1_PW"],
        &env,
    );
    assert_eq!(code, 1);

    // An IP SAN (km1 has ip = "10.0.1.11").
    let km1 = set.read_store(&tls("km1"), "tls");
    let leaf = km1.key_entries().next().and_then(Entry::cert).unwrap();
    let km1_pem = set.scratch("pem").join("km1.pem");
    std::fs::write(&km1_pem, kpem::certs_to_pem([leaf])).unwrap();
    let (code, _, verdicts) = check_host_json(&km1_pem, &["10.0.1.11", "10.0.1.12"], &[], &[]);
    assert_eq!(code, 1);
    assert_eq!(
        verdicts,
        v(&[("10.0.1.11", true, true), ("10.0.1.12", false, false)])
    );
}

#[test]
fn check_host_input_errors_exit_2() {
    let set = Set::new(&minimal_example());
    let store = set.read_store(&tls(KM), "tls");
    let leaf = store.key_entries().next().and_then(Entry::cert).unwrap();
    let pem_path = set.scratch("pem").join("km.pem");
    std::fs::write(&pem_path, kpem::certs_to_pem([leaf])).unwrap();

    for bad in ["a..b", "km.dev.acme.internal..", "."] {
        let r = check_host(&pem_path, &[KM_HOST, bad], &[]);
        assert_eq!(r.code, 2, "{bad}: {}{}", r.stdout, r.stderr);
        assert!(
            r.stderr.contains(bad),
            "the message names {bad}: {}",
            r.stderr
        );
        assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    }
    let r = check_host(&set.scratch("pem").join("absent.pem"), &[KM_HOST], &[]);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("absent.pem"), "{}", r.stderr);
}

/// `host.` (one trailing dot): JDK 17 drops the dot and accepts, JDK 11.0.10 refuses the name
/// (`tests/jsse_host_texts.rs` measures both); check-host follows JDK 17 and says so.
#[test]
fn check_host_drops_one_trailing_dot_as_jdk17_does() {
    let set = Set::new(&minimal_example());
    let store = set.read_store(&tls(KM), "tls");
    let leaf = store.key_entries().next().and_then(Entry::cert).unwrap();
    let pem_path = set.scratch("pem").join("km.pem");
    std::fs::write(&pem_path, kpem::certs_to_pem([leaf])).unwrap();
    let dotted = format!("{KM_HOST}.");
    let (code, json, verdicts) =
        check_host_json(&pem_path, &[&dotted, "other.dev.acme.internal."], &[], &[]);
    assert_eq!(code, 1, "{json}");
    assert_eq!(
        verdicts,
        v(&[
            (&dotted, true, true),
            ("other.dev.acme.internal.", false, false)
        ])
    );
    let reason = json["hosts"][0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("JDK 11.0.10 refuses") && reason.contains("trailing dot"),
        "{reason}"
    );
}

#[test]
#[cfg_attr(
    not(apim_pki_openssl),
    ignore = "needs openssl (apt-get install openssl); .ci/run installs it all"
)]
fn check_host_partial_wildcard_is_java_only() {
    if !util::java::require("openssl") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    self_signed(
        tmp.path(),
        30,
        "/CN=legacy.acme.internal",
        &["-addext", "subjectAltName=DNS:km*.acme.internal"],
    );
    let cert = tmp.path().join("cert.pem");
    let (code, json, verdicts) = check_host_json(&cert, &["km1.acme.internal"], &[], &[]);
    assert_eq!(code, 0, "{json}");
    assert_eq!(verdicts, v(&[("km1.acme.internal", true, false)]));
    let (code, _, _) = check_host_json(&cert, &["km1.acme.internal"], &["--rules", "strict"], &[]);
    assert_eq!(code, 1, "strict rules refuse a partial wildcard");
    let (code, _, _) = check_host_json(&cert, &["km1.acme.internal"], &["--rules", "java"], &[]);
    assert_eq!(code, 0);
    // JSSE lets `*` match nothing too (checked against JDK 17): km*.acme.internal covers
    // km.acme.internal. A SAN exists, so the CN does not count; other labels are not covered.
    let (code, _, verdicts) = check_host_json(
        &cert,
        &[
            "km.acme.internal",
            "legacy.acme.internal",
            "x.acme.internal",
        ],
        &[],
        &[],
    );
    assert_eq!(code, 1);
    assert_eq!(
        verdicts,
        v(&[
            ("km.acme.internal", true, false),
            ("legacy.acme.internal", false, false),
            ("x.acme.internal", false, false),
        ])
    );
}

#[test]
#[cfg_attr(
    not(apim_pki_openssl),
    ignore = "needs openssl (apt-get install openssl); .ci/run installs it all"
)]
fn check_host_cn_only_certificate_is_java_only() {
    if !util::java::require("openssl") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    self_signed(tmp.path(), 30, "/O=Acme Corp/CN=legacy.acme.internal", &[]);
    let cert = tmp.path().join("cert.pem");
    let (code, json, verdicts) = check_host_json(
        &cert,
        &["legacy.acme.internal", "other.acme.internal"],
        &[],
        &[],
    );
    assert_eq!(code, 1, "other.acme.internal is not covered: {json}");
    assert_eq!(
        verdicts,
        v(&[
            ("legacy.acme.internal", true, false),
            ("other.acme.internal", false, false),
        ])
    );
    let (code, _, _) = check_host_json(&cert, &["legacy.acme.internal"], &[], &[]);
    assert_eq!(code, 0);
    let (code, _, _) = check_host_json(
        &cert,
        &["legacy.acme.internal"],
        &["--rules", "strict"],
        &[],
    );
    assert_eq!(code, 1);
}

// ---------------------------------------------------------------------------------------------
// A key held twice (issue 8, item 2) and unusable files (item 12)
// ---------------------------------------------------------------------------------------------

/// The minimal topology with a load balancer in front of the store.
fn with_lb() -> String {
    format!(
        "{}\n[[load_balancer]]\nhost = \"lb.dev.acme.internal\"\nfronts = \"store\"\n",
        minimal_example()
    )
}

const LB_DIR: &str = "load-balancers/lb.dev.acme.internal";
const LB_WHO: &str = "lb:lb.dev.acme.internal";

fn lb(file: &str) -> String {
    format!("{LB_DIR}/{file}")
}

/// A copy of `base` in a temporary directory of its own.
fn copy_of(base: &Set) -> Set {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = tmp.path().join("out");
    for (rel, bytes) in util::cli::snapshot(&base.out) {
        let target = out.join(rel);
        std::fs::create_dir_all(target.parent().expect("parent")).expect("mkdir");
        std::fs::write(target, bytes).expect("write");
    }
    Set { tmp, out }
}

/// The key entry of a keystore of the set: (PKCS#8, chain).
fn key_entry_of(set: &Set, rel: &str, role: &str) -> (Vec<u8>, Vec<Vec<u8>>) {
    match set.read_store(rel, role).key_entries().next().cloned() {
        Some(Entry::PrivateKey { pkcs8, chain, .. }) => (pkcs8.to_vec(), chain),
        _ => panic!("{rel}: no key entry"),
    }
}

fn key_pem(pkcs8: &[u8]) -> String {
    pem::encode(&pem::Pem::new("PRIVATE KEY", pkcs8.to_vec()))
}

/// A JKS TLS or primary keystore of km whose key entry has `chain`, keeping its key and alias.
fn with_chain(set: &Set, rel: &str, role: &str, chain: impl Fn(Vec<Vec<u8>>) -> Vec<Vec<u8>>) {
    use apim_pki::jks::{JksEntry, JksKeyStore};
    let pw = set.password(role);
    let bytes = std::fs::read(set.path(rel)).expect("read");
    let mut store = JksKeyStore::from_bytes(&bytes, pw.expose()).expect("opens");
    for entry in &mut store.entries {
        if let JksEntry::PrivateKey { chain: c, .. } = entry {
            *c = chain(std::mem::take(c));
        }
    }
    let bytes = store.to_bytes(pw.expose()).expect("encode");
    std::fs::write(set.path(rel), bytes).expect("write");
}

/// Valid DER (`SEQUENCE { INTEGER 0 }`) that is no certificate.
const GARBAGE_DER: &[u8] = &[0x30, 0x03, 0x02, 0x01, 0x00];

fn garbage_cert_pem() -> String {
    pem::encode(&pem::Pem::new("CERTIFICATE", GARBAGE_DER.to_vec()))
}

/// What the old `generate` left after gw2's keystore was copied over gw1's: gw1's names
/// re-certified on gw2's key. Both nodes hold one private key, and each certificate names its
/// node, so both are reported.
#[test]
#[cfg_attr(
    not(apim_pki_openssl),
    ignore = "needs openssl (apt-get install openssl); .ci/run installs it all"
)]
fn a_copied_key_recertified_for_its_new_node_is_shared_key() {
    if !util::java::require("openssl") {
        return;
    }
    let set = Set::new(&minimal_example());
    let (pkcs8, _) = key_entry_of(&set, &tls("publisher"), "tls");
    let dir = set.scratch("recertified");
    std::fs::write(dir.join("key.pem"), key_pem(&pkcs8)).unwrap();
    openssl(
        &dir,
        &[
            "req",
            "-new",
            "-key",
            "key.pem",
            "-out",
            "csr.pem",
            "-subj",
            &format!("/CN={KM_HOST}"),
        ],
    );
    write_ext(&dir, &[KM_HOST, "localhost"]);
    ca_sign(&set, &dir, "-sha256");
    replace_tls_entry(&set, KM, pem_entry(&dir, KM));
    let (code, report) = verify_json(&set, &[]);
    assert_findings(
        code,
        &report,
        &[
            err("shared-key", KM, &tls(KM)),
            err("shared-key", "publisher", &tls("publisher")),
        ],
    );
    let f = with_code(&report, "shared-key")[0];
    assert!(
        f["message"].as_str().unwrap().contains("rotate --node"),
        "{f}"
    );
}

/// The README's mistake: the publisher's TLS keystore copied over km's. km's certificate names
/// the publisher, so km holds the copy.
#[test]
fn a_copied_tls_keystore_is_shared_key_on_the_copy() {
    let set = Set::new(&minimal_example());
    std::fs::copy(set.path(&tls("publisher")), set.path(&tls(KM))).unwrap();
    let (code, report) = verify_json(&set, &[]);
    assert_findings(
        code,
        &report,
        &[
            err("hostname-mismatch", KM, &tls(KM)),
            warn("alias-mismatch", KM, &tls(KM)),
            err("shared-key", KM, &tls(KM)),
        ],
    );
}

type Break = fn(&Set, &Path);

/// One corruption per file kind: what to do to a fresh set, and the exact findings.
fn corruptions() -> Vec<(&'static str, Break, Vec<Key>)> {
    vec![
        // --- keys held twice ---
        (
            "the load balancer's key, certificate and haproxy.pem copied from km",
            |set, _| {
                let (pkcs8, chain) = key_entry_of(set, &tls(KM), "tls");
                let certs = kpem::certs_to_pem(chain.iter().map(Vec::as_slice));
                std::fs::write(set.path(&lb("tls.key")), key_pem(&pkcs8)).unwrap();
                std::fs::write(set.path(&lb("tls.crt")), &certs).unwrap();
                let haproxy = format!("{certs}{}", key_pem(&pkcs8));
                std::fs::write(set.path(&lb("haproxy.pem")), haproxy).unwrap();
            },
            vec![
                err("hostname-mismatch", LB_WHO, &lb("tls.crt")),
                err("shared-key", LB_WHO, &lb("tls.key")),
            ],
        ),
        (
            "the primary key and certificate in km's TLS keystore",
            |set, _| {
                let (pkcs8, chain) = key_entry_of(set, &primary(KM), "primary");
                replace_tls_entry(set, KM, tls_entry(pkcs8, chain));
            },
            vec![
                err("hostname-mismatch", KM, &tls(KM)),
                err("shared-key", KM, &tls(KM)),
            ],
        ),
        (
            "the CA's key and certificate in km's TLS keystore",
            |set, _| {
                let key = pem::parse(std::fs::read(set.path("ca/ca.key")).unwrap()).unwrap();
                let ca = kpem::certs_from_pem(&std::fs::read(set.path("ca/ca.crt")).unwrap());
                replace_tls_entry(set, KM, tls_entry(key.contents().to_vec(), ca.unwrap()));
            },
            vec![
                err("hostname-mismatch", KM, &tls(KM)),
                err("shared-key", KM, &tls(KM)),
            ],
        ),
        // --- keystores ---
        (
            "a TLS key entry with an empty certificate chain",
            |set, _| with_chain(set, &tls(KM), "tls", |_| Vec::new()),
            vec![err("corrupt-file", KM, &tls(KM))],
        ),
        (
            "a primary key entry with an empty certificate chain",
            |set, _| with_chain(set, &primary(KM), "primary", |_| Vec::new()),
            vec![err("corrupt-file", KM, &primary(KM))],
        ),
        (
            "a TLS leaf certificate replaced by garbage DER",
            |set, _| {
                with_chain(set, &tls(KM), "tls", |mut c| {
                    c[0] = GARBAGE_DER.to_vec();
                    c
                })
            },
            vec![err("corrupt-file", KM, &tls(KM))],
        ),
        (
            "a primary leaf certificate replaced by garbage DER",
            |set, _| {
                with_chain(set, &primary(KM), "primary", |mut c| {
                    c[0] = GARBAGE_DER.to_vec();
                    c
                })
            },
            vec![err("corrupt-file", KM, &primary(KM))],
        ),
        (
            "a trusted entry of garbage DER in a truststore",
            |set, _| {
                let mut store = set.read_store(&truststore(KM), "truststore");
                store.entries.push(Entry::Trusted {
                    alias: "junk".into(),
                    cert: GARBAGE_DER.to_vec(),
                });
                set.write_store(&truststore(KM), &store, KeystoreFormat::Jks, "truststore");
            },
            vec![err("corrupt-file", KM, &truststore(KM))],
        ),
        // --- load balancer files ---
        (
            "haproxy.pem that is garbage",
            |set, _| std::fs::write(set.path(&lb("haproxy.pem")), "garbage\n").unwrap(),
            vec![err("corrupt-file", LB_WHO, &lb("haproxy.pem"))],
        ),
        (
            "haproxy.pem without its key",
            |set, _| {
                let certs = std::fs::read(set.path(&lb("tls.crt"))).unwrap();
                std::fs::write(set.path(&lb("haproxy.pem")), certs).unwrap();
            },
            vec![err("corrupt-file", LB_WHO, &lb("haproxy.pem"))],
        ),
        (
            "ca.crt that is garbage",
            |set, _| std::fs::write(set.path(&lb("ca.crt")), "garbage\n").unwrap(),
            vec![err("truststore-missing-ca", LB_WHO, &lb("ca.crt"))],
        ),
        (
            "ca.crt holding a certificate of garbage DER",
            |set, _| std::fs::write(set.path(&lb("ca.crt")), garbage_cert_pem()).unwrap(),
            vec![
                err("lb-foreign-trust", LB_WHO, &lb("ca.crt")),
                err("truststore-missing-ca", LB_WHO, &lb("ca.crt")),
            ],
        ),
        (
            "tls.crt holding a certificate of garbage DER",
            |set, _| std::fs::write(set.path(&lb("tls.crt")), garbage_cert_pem()).unwrap(),
            vec![err("corrupt-file", LB_WHO, &lb("tls.crt"))],
        ),
        // --- the CA ---
        (
            "ca/ca.key that is garbage",
            |set, _| std::fs::write(set.path("ca/ca.key"), "garbage\n").unwrap(),
            vec![err("corrupt-file", "set", "ca/ca.key")],
        ),
        (
            "ca/ca.key that is another key",
            |set, scratch| {
                openssl(
                    scratch,
                    &[
                        "genpkey",
                        "-algorithm",
                        "RSA",
                        "-pkeyopt",
                        "rsa_keygen_bits:2048",
                        "-out",
                        "other.key",
                    ],
                );
                std::fs::copy(scratch.join("other.key"), set.path("ca/ca.key")).unwrap();
            },
            vec![err("key-cert-mismatch", "set", "ca/ca.key")],
        ),
        (
            "ca/bundle.crt with a certificate of garbage DER after the CA",
            |set, _| {
                let mut bundle = std::fs::read_to_string(set.path("ca/bundle.crt")).unwrap();
                bundle.push_str(&garbage_cert_pem());
                std::fs::write(set.path("ca/bundle.crt"), bundle).unwrap();
            },
            vec![err("corrupt-file", "set", "ca/bundle.crt")],
        ),
    ]
}

fn tls_entry(pkcs8: Vec<u8>, chain: Vec<Vec<u8>>) -> Entry {
    Entry::PrivateKey {
        alias: KM.into(),
        pkcs8: zeroize::Zeroizing::new(pkcs8),
        chain,
    }
}

/// Every file verify reads passes every check or produces a finding: one corruption per file
/// kind, each with its exact findings (no "ok", no checks silently skipped).
#[test]
#[cfg_attr(
    not(apim_pki_openssl),
    ignore = "needs openssl (apt-get install openssl); .ci/run installs it all"
)]
fn every_unusable_file_is_a_finding() {
    if !util::java::require("openssl") {
        return;
    }
    let base = Set::new(&with_lb());
    assert_clean(&base);
    let mut failures = Vec::new();
    for (what, break_it, expected) in corruptions() {
        let set = copy_of(&base);
        let scratch = set.scratch("work");
        break_it(&set, &scratch);
        let (code, report) = verify_json(&set, &[]);
        let mut want = expected.clone();
        want.sort();
        if finding_keys(&report) != want || code != 1 {
            failures.push(format!(
                "{what}: exit {code}, expected {want:?}, got {:?}",
                finding_keys(&report)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A TLS keystore replaced by a MAC-less PKCS#12 holding the key in a plain key bag (OpenSSL
/// `-nomac -keypbe NONE`): it opens with any password, the key is readable by anyone, and Java
/// finds no key in it.
#[test]
#[cfg_attr(
    not(apim_pki_openssl),
    ignore = "needs openssl (apt-get install openssl); .ci/run installs it all"
)]
fn a_pkcs12_without_mac_and_with_a_clear_key_is_unprotected_keystore() {
    if !util::java::require("openssl") {
        return;
    }
    let topology = format!("{}\n[keystores]\nformat = \"pkcs12\"\n", minimal_example());
    let set = Set::new(&topology);
    let rel = sec(KM, "km-tls.p12");
    let (pkcs8, chain) = key_entry_of(&set, &rel, "tls");
    let dir = set.scratch("clear");
    std::fs::write(dir.join("key.pem"), key_pem(&pkcs8)).unwrap();
    std::fs::write(
        dir.join("cert.pem"),
        kpem::certs_to_pem(chain.iter().map(Vec::as_slice)),
    )
    .unwrap();
    openssl(
        &dir,
        &[
            "pkcs12",
            "-export",
            "-nomac",
            "-keypbe",
            "NONE",
            "-certpbe",
            "NONE",
            "-in",
            "cert.pem",
            "-inkey",
            "key.pem",
            "-name",
            KM,
            "-out",
            "clear.p12",
            "-passout",
            "pass:",
        ],
    );
    std::fs::copy(dir.join("clear.p12"), set.path(&rel)).unwrap();
    let (code, report) = verify_json(&set, &[]);
    assert_findings(
        code,
        &report,
        &[
            err("unprotected-keystore", KM, &rel),
            err("unprotected-keystore", KM, &rel),
        ],
    );
    // generate re-encodes it, protected, with the same key.
    let topo = set.tmp.path().join("topology.toml");
    util::cli::generate(&topo, &set.out, &[]);
    assert_clean(&set);
    assert_eq!(
        key_entry_of(&set, &rel, "tls").0,
        pkcs8,
        "generate kept km's key"
    );
}
