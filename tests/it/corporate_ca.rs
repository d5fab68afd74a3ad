//! A CA you bring (`[pki.ca] cert = … key = …`): a corporate root and an issuing intermediate
//! made with OpenSSL, with subjects that repeat DC attributes, keys in PKCS#8, PKCS#1 and SEC1
//! form. The set must chain leaf → intermediate → root for OpenSSL and JSSE, with the
//! intermediate's subject copied byte for byte into every issuer, and the CA key never copied.
//! A passphrase-protected key is a clear exit-2 error.
//!
//! Needs `openssl`, `java`, `javac` and `keytool`: skipped without them, a failure when CI=true.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::cli::{
    generate, minimal_example, refused_unchanged, run, secrets, snapshot, write_topology,
};
use crate::util::files::{copy_tree, s};
use crate::util::java;
use crate::util::openssl::openssl;
use apim_pki::CertInfo;
use apim_pki::Password;
use apim_pki::{pem, Entry, Keystore};

const ROOT_SUBJECT: &str = "/DC=com/DC=example/DC=corp/O=Corp/CN=Corp Root";
const INT_SUBJECT: &str = "/DC=com/DC=example/DC=corp/CN=Corp Issuing CA 1";
const INT_SUBJECT_RFC2253: &str = "CN=Corp Issuing CA 1,DC=corp,DC=example,DC=com";
const LB_HOST: &str = "gw.lb.acme.internal";
const KM_HOST: &str = "km.dev.acme.internal";
const KM_TLS: &str = "nodes/km/repository/resources/security/km-tls.jks";
const KM_TRUSTSTORE: &str = "nodes/km/repository/resources/security/client-truststore.jks";

const OPENSSL_CNF: &str = "\
[req]
distinguished_name = dn
prompt = no
[dn]
[v3_root]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[v3_int]
basicConstraints = critical,CA:TRUE,pathlen:0
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
";

/// The tools these tests run: a missing one fails the test (`java::missing_tool`).
fn require_tools() {
    for tool in ["openssl", "keytool", "java", "javac"] {
        java::require(tool);
    }
}

/// The common set-up: the tools, a temporary folder, and a corporate root and intermediate
/// in it whose key is written in `form`.
fn corporate(form: KeyForm) -> (tempfile::TempDir, Corp) {
    require_tools();
    let tmp = tempfile::tempdir().expect("tempdir");
    let corp = Corp::new(tmp.path(), form);
    (tmp, corp)
}

/// The form of the intermediate's key file.
#[derive(Clone, Copy, Debug, PartialEq)]
enum KeyForm {
    /// RSA 2048, `-----BEGIN PRIVATE KEY-----`.
    RsaPkcs8,
    /// RSA 2048, `-----BEGIN RSA PRIVATE KEY-----` (`openssl rsa -traditional`).
    RsaPkcs1,
    /// ECDSA P-256, `-----BEGIN EC PRIVATE KEY-----` after an `EC PARAMETERS` block, as
    /// `openssl ecparam -genkey` writes it.
    EcSec1,
}

/// A corporate PKI in `dir/corp/`: `root.pem`, `int.pem`, `chain.pem` (intermediate then root)
/// and the intermediate's key `int.key` in the requested form.
struct Corp {
    dir: PathBuf,
}

impl Corp {
    fn new(base: &Path, form: KeyForm) -> Corp {
        let dir = base.join("corp");
        std::fs::create_dir_all(&dir).expect("mkdir corp");
        std::fs::write(dir.join("openssl.cnf"), OPENSSL_CNF).expect("write openssl.cnf");
        let o = |args: &[&str]| openssl(&dir, args);
        o(&[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            "root.key",
        ]);
        o(&[
            "req",
            "-new",
            "-x509",
            "-config",
            "openssl.cnf",
            "-extensions",
            "v3_root",
            "-key",
            "root.key",
            "-subj",
            ROOT_SUBJECT,
            "-days",
            "3650",
            "-sha256",
            "-out",
            "root.pem",
        ]);
        match form {
            KeyForm::RsaPkcs8 | KeyForm::RsaPkcs1 => {
                o(&[
                    "genpkey",
                    "-algorithm",
                    "RSA",
                    "-pkeyopt",
                    "rsa_keygen_bits:2048",
                    "-out",
                    "int.pkcs8.key",
                ]);
                if form == KeyForm::RsaPkcs1 {
                    o(&[
                        "rsa",
                        "-in",
                        "int.pkcs8.key",
                        "-traditional",
                        "-out",
                        "int.key",
                    ]);
                } else {
                    std::fs::copy(dir.join("int.pkcs8.key"), dir.join("int.key")).expect("cp");
                }
            }
            KeyForm::EcSec1 => {
                o(&[
                    "ecparam",
                    "-name",
                    "prime256v1",
                    "-genkey",
                    "-out",
                    "int.key",
                ]);
            }
        }
        let key_text = std::fs::read_to_string(dir.join("int.key")).expect("int.key");
        let marker = match form {
            KeyForm::RsaPkcs8 => "-----BEGIN PRIVATE KEY-----",
            KeyForm::RsaPkcs1 => "-----BEGIN RSA PRIVATE KEY-----",
            KeyForm::EcSec1 => "-----BEGIN EC PRIVATE KEY-----",
        };
        assert!(key_text.contains(marker), "{form:?} key:\n{key_text}");
        o(&[
            "req",
            "-new",
            "-config",
            "openssl.cnf",
            "-key",
            "int.key",
            "-subj",
            INT_SUBJECT,
            "-out",
            "int.csr",
        ]);
        o(&[
            "x509",
            "-req",
            "-in",
            "int.csr",
            "-CA",
            "root.pem",
            "-CAkey",
            "root.key",
            "-set_serial",
            "0x5eed0000c0ffee01",
            "-days",
            "1825",
            "-sha256",
            "-extfile",
            "openssl.cnf",
            "-extensions",
            "v3_int",
            "-out",
            "int.pem",
        ]);
        let chain = [
            std::fs::read_to_string(dir.join("int.pem")).expect("int.pem"),
            std::fs::read_to_string(dir.join("root.pem")).expect("root.pem"),
        ]
        .concat();
        std::fs::write(dir.join("chain.pem"), chain).expect("chain.pem");
        Corp { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn der(&self, name: &str) -> Vec<u8> {
        let bytes = std::fs::read(self.path(name)).expect(name);
        pem::certs_from_pem(&bytes).expect("PEM")[0].clone()
    }
}

/// The minimal example plus a load balancer, bringing `corp/chain.pem` and `corp/<key>`
/// (relative to the topology file's directory).
fn topology_text(key: &str) -> String {
    let base = minimal_example();
    let at = base.find("[[node]]").expect("[[node]]");
    format!(
        "{}[pki.ca]\ncert = \"corp/chain.pem\"\nkey = \"corp/{key}\"\n\n{}\n[[load_balancer]]\nhost = \"{LB_HOST}\"\nfronts = \"gateway-worker\"\n",
        &base[..at],
        &base[at..]
    )
}

/// `openssl x509 -noout -<what> -nameopt RFC2253` of a PEM file, without the `what=` prefix.
fn rfc2253(dir: &Path, file: &Path, what: &str) -> String {
    let out = openssl(
        dir,
        &[
            "x509",
            "-noout",
            &format!("-{what}"),
            "-nameopt",
            "RFC2253",
            "-in",
            s(file),
        ],
    );
    out.trim()
        .strip_prefix(&format!("{what}="))
        .unwrap_or(out.trim())
        .trim()
        .to_string()
}

/// Checks one leaf (DER) against the corporate chain; `label` names it in messages.
fn check_leaf(corp: &Corp, work: &Path, label: &str, leaf: &[u8]) {
    let leaf_pem = work.join(format!("{label}.leaf.pem"));
    std::fs::write(&leaf_pem, pem::certs_to_pem([leaf])).expect("write leaf");

    // The issuer, as OpenSSL prints it and byte for byte.
    let issuer = rfc2253(&corp.dir, &leaf_pem, "issuer");
    let int_subject = rfc2253(&corp.dir, &corp.path("int.pem"), "subject");
    assert_eq!(int_subject, INT_SUBJECT_RFC2253);
    assert_eq!(
        issuer, int_subject,
        "{label}: issuer differs from the intermediate's subject"
    );
    let leaf_info = CertInfo::from_der(leaf).expect("leaf parses");
    let int_info = CertInfo::from_der(&corp.der("int.pem")).expect("intermediate parses");
    assert!(
        leaf_info.issuer_der == int_info.subject_der,
        "{label}: the issuer is not the intermediate's subject byte for byte:\n  {:02x?}\n  {:02x?}",
        leaf_info.issuer_der,
        int_info.subject_der
    );

    // OpenSSL builds leaf → intermediate → root.
    let out = Command::new("openssl")
        .args(["verify", "-purpose", "sslserver", "-CAfile"])
        .arg(corp.path("root.pem"))
        .arg("-untrusted")
        .arg(corp.path("int.pem"))
        .arg(&leaf_pem)
        .output()
        .expect("openssl verify");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && text.contains(": OK"),
        "{label}: openssl verify failed:\n{text}"
    );
}

fn brought_ca_makes_a_chain_to_the_corporate_root(form: KeyForm) {
    let (tmp, corp) = corporate(form);
    let topo = write_topology(tmp.path(), &topology_text("int.key"));
    let out = tmp.path().join("out");
    generate(&topo, &out, &[]);

    // The CA you bring is never copied; ca.crt is the intermediate.
    assert!(
        !out.join("ca/ca.key").exists(),
        "ca/ca.key exists: a CA key you bring must not be copied into the set"
    );
    let ca_certs =
        pem::certs_from_pem(&std::fs::read(out.join("ca/ca.crt")).expect("ca/ca.crt")).unwrap();
    assert_eq!(ca_certs.len(), 1, "ca/ca.crt holds the issuing CA only");
    assert!(
        ca_certs[0] == corp.der("int.pem"),
        "ca/ca.crt is not the intermediate"
    );
    // Nor is the key file copied anywhere else (64 bytes from the middle of its base64 body).
    let key_pem = std::fs::read(corp.path("int.key")).expect("int.key");
    let needle = &key_pem[200..264];
    for (path, bytes) in snapshot(&out) {
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle),
            "{path} contains the CA key file"
        );
    }

    // The load balancer's chain, leaf first.
    let lb_chain = pem::certs_from_pem(
        &std::fs::read(out.join(format!("load-balancers/{LB_HOST}/tls.crt"))).expect("tls.crt"),
    )
    .expect("PEM");
    check_leaf(&corp, tmp.path(), "load-balancer", &lb_chain[0]);

    // The node's TLS keystore: leaf + intermediate + root.
    let pw = secrets(&out);
    let (tls, truststore) = (pw["tls"].clone(), pw["truststore"].clone());
    let ks_bytes = std::fs::read(out.join(KM_TLS)).expect("km-tls.jks");
    let (ks, _) = Keystore::decode(&ks_bytes, &Password::new(tls.clone())).expect("km-tls opens");
    let leaf = ks.entries[0].cert().expect("leaf").to_vec();
    check_leaf(&corp, tmp.path(), "km", &leaf);

    // Every node's TLS certificate and the primary certificate: issued by the intermediate,
    // stored with the whole chain.
    let int_info = CertInfo::from_der(&corp.der("int.pem")).expect("intermediate parses");
    let root_der = corp.der("root.pem");
    let mut stores: Vec<(String, String)> = ["km", "publisher", "store", "tm", "gateway"]
        .iter()
        .map(|n| {
            (
                format!("nodes/{n}/repository/resources/security/{n}-tls.jks"),
                tls.clone(),
            )
        })
        .collect();
    stores.push((
        "nodes/km/repository/resources/security/wso2carbon.jks".into(),
        pw["primary"].clone(),
    ));
    for (rel, password) in &stores {
        let bytes = std::fs::read(out.join(rel)).expect(rel);
        let (ks, _) = Keystore::decode(&bytes, &Password::new(password.clone())).expect(rel);
        let Some(Entry::PrivateKey { chain, .. }) = ks.key_entries().next() else {
            panic!("{rel}: no key entry");
        };
        let leaf = CertInfo::from_der(&chain[0]).expect("leaf parses");
        assert!(
            leaf.issuer_der == int_info.subject_der,
            "{rel}: issuer `{}` is not the intermediate's subject byte for byte",
            leaf.issuer
        );
        assert_eq!(
            chain.len(),
            3,
            "{rel}: chain must be leaf + intermediate + root"
        );
        assert!(
            chain[1] == corp.der("int.pem"),
            "{rel}: chain[1] is not the intermediate"
        );
        assert!(chain[2] == root_der, "{rel}: chain[2] is not the root");
    }

    let listing =
        java::keytool_list(&java::jdk17_keytool(), &out.join(KM_TLS), &tls).expect("keytool -list");
    assert!(
        listing.contains("Certificate chain length: 3"),
        "keytool must show leaf + intermediate + root:\n{listing}"
    );

    let probe = java::tls_probe(
        &java::jdk17_java(),
        &out.join(KM_TLS),
        "JKS",
        &tls,
        &out.join(KM_TRUSTSTORE),
        "JKS",
        &truststore,
        &[KM_HOST],
    );
    assert_eq!(
        probe[KM_HOST],
        Ok(()),
        "JSSE handshake to {KM_HOST} with km's keystore and truststore"
    );

    // Nothing changes on a second run.
    let before = snapshot(&out);
    let again = generate(&topo, &out, &[]);
    assert!(again.stdout.contains("up to date"), "{}", again.stdout);
    assert!(before == snapshot(&out), "a second generate changed files");
}

#[test]
#[cfg_attr(
    not(all(apim_pki_jdk17, apim_pki_openssl)),
    ignore = "needs JDK 17: java, javac and keytool on PATH (apt-get install openjdk-17-jdk-headless); openssl (apt-get install openssl); .ci/run installs it all"
)]
fn rsa_intermediate_with_pkcs8_key() {
    brought_ca_makes_a_chain_to_the_corporate_root(KeyForm::RsaPkcs8);
}

#[test]
#[cfg_attr(
    not(all(apim_pki_jdk17, apim_pki_openssl)),
    ignore = "needs JDK 17: java, javac and keytool on PATH (apt-get install openjdk-17-jdk-headless); openssl (apt-get install openssl); .ci/run installs it all"
)]
fn rsa_intermediate_with_pkcs1_key() {
    brought_ca_makes_a_chain_to_the_corporate_root(KeyForm::RsaPkcs1);
}

#[test]
#[cfg_attr(
    not(all(apim_pki_jdk17, apim_pki_openssl)),
    ignore = "needs JDK 17: java, javac and keytool on PATH (apt-get install openjdk-17-jdk-headless); openssl (apt-get install openssl); .ci/run installs it all"
)]
fn ecdsa_p256_intermediate_with_sec1_key() {
    brought_ca_makes_a_chain_to_the_corporate_root(KeyForm::EcSec1);
}

#[test]
#[cfg_attr(
    not(all(apim_pki_jdk17, apim_pki_openssl)),
    ignore = "needs JDK 17: java, javac and keytool on PATH (apt-get install openjdk-17-jdk-headless); openssl (apt-get install openssl); .ci/run installs it all"
)]
fn passphrase_protected_ca_key_is_exit_2_and_writes_nothing() {
    let (tmp, corp) = corporate(KeyForm::RsaPkcs8);
    // PKCS#8 encrypted (`ENCRYPTED PRIVATE KEY`) and traditional (`Proc-Type: 4,ENCRYPTED`).
    openssl(
        &corp.dir,
        &[
            "pkey",
            "-in",
            "int.key",
            "-aes256",
            "-passout",
            "pass:x",
            "-out",
            "int.enc.key",
        ],
    );
    openssl(
        &corp.dir,
        &[
            "rsa",
            "-in",
            "int.key",
            "-traditional",
            "-aes256",
            "-passout",
            "pass:x",
            "-out",
            "int.enc-traditional.key",
        ],
    );
    let enc = std::fs::read_to_string(corp.path("int.enc.key")).expect("read");
    assert!(
        enc.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----"),
        "{enc}"
    );
    let trad = std::fs::read_to_string(corp.path("int.enc-traditional.key")).expect("read");
    assert!(trad.contains("Proc-Type: 4,ENCRYPTED"), "{trad}");

    for key in ["int.enc.key", "int.enc-traditional.key"] {
        let topo = write_topology(tmp.path(), &topology_text(key));
        let out = tmp.path().join(format!("out-{key}"));
        let r = run(&["generate", s(&topo), "--out", s(&out)], &[]);
        let ctx = format!(
            "{key}: exit {}\nstdout: {}\nstderr: {}",
            r.code, r.stdout, r.stderr
        );
        assert_eq!(r.code, 2, "{ctx}");
        assert!(r.stderr.starts_with("error: "), "{ctx}");
        assert!(!r.stderr.contains("panicked"), "{ctx}");
        assert!(r.stdout.is_empty(), "{ctx}");
        assert!(
            r.stderr.contains(key),
            "the message must name the key file: {ctx}"
        );
        assert!(
            r.stderr.contains("passphrase"),
            "the message must say why: {ctx}"
        );
        assert!(
            snapshot(&out).is_empty(),
            "files were written: {:?}",
            snapshot(&out).keys().collect::<Vec<_>>()
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The CSR flow: a corporate CA that signs elsewhere (`csr`, then `import-signed`).

/// The minimal example plus a load balancer, without `[pki.ca]`.
fn csr_topology_text() -> String {
    format!(
        "{}\n[[load_balancer]]\nhost = \"{LB_HOST}\"\nfronts = \"gateway-worker\"\n",
        minimal_example()
    )
}

/// Signs `csr` with the corporate intermediate for 30 days into `out`, with the CSR's
/// extensions when `copy_extensions`.
fn int_sign(corp: &Corp, csr: &str, serial: u32, copy_extensions: bool, out: &str) {
    let serial = serial.to_string();
    let mut args = vec![
        "x509",
        "-req",
        "-in",
        csr,
        "-CA",
        "int.pem",
        "-CAkey",
        "int.key",
        "-set_serial",
        &serial,
        "-days",
        "30",
    ];
    if copy_extensions {
        args.extend_from_slice(&["-copy_extensions", "copyall"]);
    }
    args.extend_from_slice(&["-out", out]);
    openssl(&corp.dir, &args);
}

/// Signs every CSR in `out/csr/` with the corporate intermediate into `signed/`, plus the chain.
fn sign_all(corp: &Corp, out: &Path, signed: &Path) {
    std::fs::create_dir_all(signed).expect("mkdir signed");
    for entry in std::fs::read_dir(out.join("csr")).expect("csr dir") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "csr") {
            let name = path
                .file_stem()
                .expect("stem")
                .to_string_lossy()
                .into_owned();
            openssl(
                &corp.dir,
                &[
                    "x509",
                    "-req",
                    "-in",
                    s(&path),
                    "-CA",
                    "int.pem",
                    "-CAkey",
                    "int.key",
                    "-set_serial",
                    "0x1234",
                    "-days",
                    "365",
                    "-sha256",
                    "-copy_extensions",
                    "copyall",
                    "-out",
                    s(&signed.join(format!("{name}.pem"))),
                ],
            );
        }
    }
    std::fs::copy(corp.path("chain.pem"), signed.join("chain.pem")).expect("copy chain");
}

#[test]
#[cfg_attr(
    not(all(apim_pki_jdk17, apim_pki_openssl)),
    ignore = "needs JDK 17: java, javac and keytool on PATH (apt-get install openjdk-17-jdk-headless); openssl (apt-get install openssl); .ci/run installs it all"
)]
fn csr_flow_assembles_a_set_that_chains_to_the_corporate_root() {
    let (tmp, corp) = corporate(KeyForm::RsaPkcs8);
    let topo = write_topology(tmp.path(), &csr_topology_text());
    let out = tmp.path().join("out");
    let r = run(&["csr", s(&topo), "--out", s(&out)], &[]);
    assert_eq!(r.code, 0, "csr: {}", r.stderr);
    // A key (0600) and a CSR per node and load balancer, with the node's subject and names.
    for name in ["km", "publisher", "store", "tm", "gateway", LB_HOST] {
        let key = out.join(format!("csr/{name}.key"));
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&key).expect("key").permissions(),
        ) & 0o777;
        assert_eq!(mode, 0o600, "{name}.key");
        let text = openssl(
            &corp.dir,
            &[
                "req",
                "-in",
                s(&out.join(format!("csr/{name}.csr"))),
                "-noout",
                "-text",
                "-verify",
            ],
        );
        assert!(text.contains("DNS:"), "{name}.csr has SANs:\n{text}");
    }
    let km_req = openssl(
        &corp.dir,
        &["req", "-in", s(&out.join("csr/km.csr")), "-noout", "-text"],
    );
    assert!(
        km_req.contains(&format!("CN = {KM_HOST}")) || km_req.contains(&format!("CN={KM_HOST}")),
        "{km_req}"
    );
    assert!(km_req.contains(&format!("DNS:{KM_HOST}")), "{km_req}");
    // A second csr keeps every key.
    let key_before = std::fs::read(out.join("csr/km.key")).expect("key");
    assert_eq!(run(&["csr", s(&topo), "--out", s(&out)], &[]).code, 0);
    assert_eq!(
        std::fs::read(out.join("csr/km.key")).expect("key"),
        key_before,
        "csr replaced a key"
    );

    let signed = tmp.path().join("signed");
    sign_all(&corp, &out, &signed);
    let r = run(&["import-signed", s(&out), "--certs", s(&signed)], &[]);
    assert_eq!(r.code, 0, "import-signed: {}\n{}", r.stdout, r.stderr);

    // Keystores hold leaf + intermediate + root; keytool and JSSE accept them.
    let pw = secrets(&out);
    let listing = java::keytool_list(&java::jdk17_keytool(), &out.join(KM_TLS), &pw["tls"])
        .expect("keytool lists km");
    assert!(listing.contains("Certificate chain length: 3"), "{listing}");
    let (store, _) = Keystore::decode(
        &std::fs::read(out.join(KM_TLS)).expect("km"),
        &Password::new(pw["tls"].clone()),
    )
    .expect("opens");
    let Some(Entry::PrivateKey { chain, .. }) = store.key_entries().next() else {
        panic!("no key entry")
    };
    assert_eq!(chain[1], corp.der("int.pem"));
    assert_eq!(chain[2], corp.der("root.pem"));
    check_leaf(&corp, tmp.path(), "km", &chain[0]);
    let results = java::tls_probe(
        &java::jdk17_java(),
        &out.join(KM_TLS),
        "JKS",
        &pw["tls"],
        &out.join(KM_TRUSTSTORE),
        "JKS",
        &pw["truststore"],
        &[KM_HOST, "publisher.dev.acme.internal"],
    );
    assert!(results[KM_HOST].is_ok(), "JSSE handshake: {results:?}");
    assert!(
        results["publisher.dev.acme.internal"].is_err(),
        "{results:?}"
    );
    // The set verifies, and generate refuses to re-issue it.
    let v = run(&["verify", s(&out)], &[]);
    assert_eq!(v.code, 0, "verify: {}", v.stdout);
    let g = run(&["generate", s(&topo), "--out", s(&out)], &[]);
    assert_eq!(g.code, 2, "{}", g.stderr);
    assert!(g.stderr.contains("import-signed"), "{}", g.stderr);
    // Importing again changes nothing.
    let before = snapshot(&out);
    assert_eq!(
        run(&["import-signed", s(&out), "--certs", s(&signed)], &[]).code,
        0
    );
    assert_eq!(before, snapshot(&out));
}

#[test]
#[cfg_attr(
    not(all(apim_pki_jdk17, apim_pki_openssl)),
    ignore = "needs JDK 17: java, javac and keytool on PATH (apt-get install openjdk-17-jdk-headless); openssl (apt-get install openssl); .ci/run installs it all"
)]
fn import_refuses_a_certificate_for_the_wrong_key_or_names() {
    let (tmp, corp) = corporate(KeyForm::RsaPkcs8);
    let topo = write_topology(tmp.path(), &csr_topology_text());
    let out = tmp.path().join("out");
    assert_eq!(run(&["csr", s(&topo), "--out", s(&out)], &[]).code, 0);
    let signed = tmp.path().join("signed");
    sign_all(&corp, &out, &signed);

    // km's key, but the publisher's names.
    let wrong_names = tmp.path().join("wrong-names");
    copy_tree(&signed, &wrong_names);
    openssl(
        &corp.dir,
        &[
            "req",
            "-new",
            "-key",
            s(&out.join("csr/km.key")),
            "-subj",
            "/CN=publisher.dev.acme.internal",
            "-addext",
            "subjectAltName=DNS:publisher.dev.acme.internal",
            "-out",
            "km-wrong.csr",
        ],
    );
    int_sign(
        &corp,
        "km-wrong.csr",
        7,
        true,
        s(&wrong_names.join("km.pem")),
    );
    let import = |certs: &Path| {
        refused_unchanged(&out, "import-signed", || {
            run(&["import-signed", s(&out), "--certs", s(certs)], &[])
        })
    };
    let r = import(&wrong_names);
    assert!(
        r.stderr.contains("km") && r.stderr.contains(&format!("DNS:{KM_HOST}")),
        "names the node and the missing name: {}",
        r.stderr
    );

    // km's own CSR signed without its extensions: no SAN at all, and the message says so
    // instead of listing an empty set of names.
    int_sign(
        &corp,
        s(&out.join("csr/km.csr")),
        8,
        false,
        s(&wrong_names.join("km.pem")),
    );
    let r = import(&wrong_names);
    assert!(
        r.stderr
            .contains("it has no DNS or IP subject alternative name at all")
            && !r.stderr.contains("its names are \n")
            && !r.stderr.contains("its names are ,"),
        "{}",
        r.stderr
    );

    // A certificate for a key no CSR of this set holds.
    let foreign = tmp.path().join("foreign");
    copy_tree(&signed, &foreign);
    openssl(
        &corp.dir,
        &[
            "req",
            "-new",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "foreign.key",
            "-subj",
            &format!("/CN={KM_HOST}"),
            "-addext",
            &format!("subjectAltName=DNS:{KM_HOST}"),
            "-out",
            "foreign.csr",
        ],
    );
    int_sign(&corp, "foreign.csr", 8, true, s(&foreign.join("km.pem")));
    let r = import(&foreign);
    assert!(r.stderr.contains("matches no key"), "{}", r.stderr);

    // A certificate missing for one CSR.
    std::fs::remove_file(signed.join("tm.pem")).expect("rm");
    let r = import(&signed);
    assert!(
        r.stderr.contains("no signed certificate for tm"),
        "{}",
        r.stderr
    );
}

/// The csr / import-signed refusals that need no CA tool: each exits 2 naming the file, what is
/// wrong and what to do (`hint:`), and changes nothing in DIR.
#[test]
fn csr_and_import_refusals_name_the_file_and_what_to_do() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = tmp.path().join("out");
    std::fs::create_dir(&out).expect("mkdir out");
    let junk = tmp.path().join("signed.txt");
    std::fs::write(&junk, "not a certificate\n").expect("write junk");
    let refused = |args: &[&str], texts: [&str; 2]| {
        let r = refused_unchanged(&out, &args.join(" "), || run(args, &[]));
        for text in texts {
            assert!(r.stderr.contains(text), "{text:?} in:\n{}", r.stderr);
        }
    };
    let import = ["import-signed", s(&out), "--certs", s(&junk)];

    // import-signed before csr: the topology copy csr keeps is missing.
    refused(
        &import,
        [
            "csr/topology.toml: cannot read: ",
            "hint: run `apim-pki csr TOPOLOGY --out DIR` first",
        ],
    );
    // tls = "shared" serves TLS with the self-signed primary: refused before any key is made.
    let text = csr_topology_text();
    let (head, tables) = text.split_at(text.find("[[node]]").expect("a node"));
    let shared = write_topology(
        tmp.path(),
        &format!("{head}[keystores]\ntls = \"shared\"\n\n{tables}"),
    );
    refused(
        &["csr", s(&shared), "--out", s(&out)],
        [
            "keystores.tls = \"shared\" serves TLS with the primary key",
            "hint: use tls = \"per-node\" with a corporate CA",
        ],
    );
    // After csr, a --certs file without a PEM certificate.
    let topo = write_topology(tmp.path(), &csr_topology_text());
    assert_eq!(run(&["csr", s(&topo), "--out", s(&out)], &[]).code, 0);
    refused(
        &import,
        [
            "signed.txt: holds no PEM certificate",
            "hint: pass the signed certificates (PEM, intermediates included)",
        ],
    );
}
