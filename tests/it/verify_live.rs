//! `verify --live` through the CLI: a node's own keystore served by JSSE on loopback gives no
//! live finding; another node's keystore there gives live-cert-differs; a closed port and a
//! listener that never answers give live-unreachable within the timeout.

use std::net::TcpListener;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::util::cli::{generate, minimal_example, run, secrets, write_topology};
use crate::util::java;

/// The minimal set's endpoints (cli.md): every node's 9443, the gateway's 8243, the traffic
/// manager's 9711.
const ENDPOINTS: &[(&str, &str, u16)] = &[
    ("km", "km.dev.acme.internal", 9443),
    ("publisher", "publisher.dev.acme.internal", 9443),
    ("store", "store.dev.acme.internal", 9443),
    ("tm", "tm.dev.acme.internal", 9443),
    ("tm", "tm.dev.acme.internal", 9711),
    ("gateway", "gw.dev.acme.internal", 9443),
    ("gateway", "gw.dev.acme.internal", 8243),
];

fn verify_live(
    out: &Path,
    connects: &[String],
    timeout: &str,
) -> (i32, serde_json::Value, Duration) {
    let mut args = vec![
        "verify".to_string(),
        out.display().to_string(),
        "--live".into(),
        "--timeout".into(),
        timeout.into(),
        "--format".into(),
        "json".into(),
    ];
    for c in connects {
        args.push("--connect".into());
        args.push(c.clone());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let started = Instant::now();
    let r = run(&args, &[]);
    let took = started.elapsed();
    assert!(
        r.code == 0 || r.code == 1,
        "verify --live: {} {}",
        r.code,
        r.stderr
    );
    (
        r.code,
        serde_json::from_str(&r.stdout).expect("json report"),
        took,
    )
}

/// The live findings of a report, as (code, node or load balancer).
fn live_findings(report: &serde_json::Value) -> Vec<(String, String)> {
    report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["code"].as_str().is_some_and(|c| c.starts_with("live-")))
        .map(|f| {
            (
                f["code"].as_str().unwrap_or("").to_string(),
                f["node"]
                    .as_str()
                    .or(f["load_balancer"].as_str())
                    .unwrap_or("")
                    .to_string(),
            )
        })
        .collect()
}

#[test]
#[cfg_attr(
    not(apim_pki_jdk17),
    ignore = "needs JDK 17: java, javac and keytool on PATH (apt-get install openjdk-17-jdk-headless); .ci/run installs it all"
)]
fn live_probe_finds_the_served_certificate_and_the_dead_endpoints() {
    if !java::require("java") || !java::require("javac") {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let topo = write_topology(tmp.path(), &minimal_example());
    let out = tmp.path().join("out");
    generate(&topo, &out, &[]);
    let tls_pw = secrets(&out)["tls"].clone();
    let keystore = |node: &str| {
        out.join(format!(
            "nodes/{node}/repository/resources/security/{node}-tls.jks"
        ))
    };

    // km's own keystore on one port, publisher's keystore impersonating the store, a closed
    // port for the traffic manager's 9443, a silent listener for everything else.
    let km = java::TlsServer::start(&java::jdk17_java(), &keystore("km"), "JKS", &tls_pw, None);
    let impostor = java::TlsServer::start(
        &java::jdk17_java(),
        &keystore("publisher"),
        "JKS",
        &tls_pw,
        None,
    );
    let closed = TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr"); // dropped: closed
    let silent = TcpListener::bind("127.0.0.1:0").expect("bind");
    let silent_addr = silent.local_addr().expect("addr");

    let connects: Vec<String> = ENDPOINTS
        .iter()
        .map(|(node, host, port)| {
            let to = match (*node, *port) {
                ("km", 9443) => km.addr(),
                ("store", _) => impostor.addr(),
                ("tm", 9443) => closed,
                _ => silent_addr,
            };
            format!("{host}:{port}={to}")
        })
        .collect();
    let (code, report, took) = verify_live(&out, &connects, "3");
    let findings = live_findings(&report);
    eprintln!("verify --live took {took:?}: {findings:?}");
    assert_eq!(code, 1, "{report}");
    assert!(
        !findings.iter().any(|(_, who)| who == "km"),
        "km serves its own certificate: {findings:?}"
    );
    assert!(
        findings.contains(&("live-cert-differs".into(), "store".into())),
        "{findings:?}"
    );
    // The impostor's certificate is one of this set's: the finding names it.
    let differs = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .find(|f| f["code"] == "live-cert-differs")
        .expect("live-cert-differs");
    let message = differs["message"].as_str().unwrap_or("");
    assert!(
        message.contains("serves node publisher's TLS certificate (nodes/publisher/")
            && message.contains("the node runs files meant for another"),
        "{message}"
    );
    assert_eq!(
        findings
            .iter()
            .filter(|(c, w)| c == "live-unreachable" && w == "tm")
            .count(),
        2,
        "closed 9443 and silent 9711: {findings:?}"
    );
    assert_eq!(
        findings
            .iter()
            .filter(|(c, w)| c == "live-unreachable" && w == "gateway")
            .count(),
        2,
        "{findings:?}"
    );
    // Load balancers: the minimal topology has none, so nothing else is probed.
    assert_eq!(findings.len(), 1 + 2 + 1 + 2, "{findings:?}");
    // Seven endpoints, probed concurrently with a 3 s timeout each (1 s was too tight for a cold
    // JVM on a loaded 2-core machine): the silent ones end together, well within 12 s.
    assert!(took < Duration::from_secs(12), "took {took:?}");
    // The offline part of the report is still clean.
    assert!(
        report["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .all(|f| f["code"].as_str().is_some_and(|c| c.starts_with("live-"))),
        "{report}"
    );
    drop(silent);
    km.stop();
    impostor.stop();
}

#[test]
fn bad_connect_arguments_are_input_errors() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let topo = write_topology(tmp.path(), &minimal_example());
    let out = tmp.path().join("out");
    generate(&topo, &out, &[]);
    for bad in [
        "km.dev.acme.internal=127.0.0.1:1",
        "km.dev.acme.internal:9443=nowhere",
        "km.dev.acme.internal:0=127.0.0.1:1",
    ] {
        let r = run(
            &["verify", out.to_str().unwrap(), "--live", "--connect", bad],
            &[],
        );
        assert_eq!(r.code, 2, "{bad}: {}", r.stderr);
        assert!(
            r.stderr.starts_with("error: --connect"),
            "{bad}: {}",
            r.stderr
        );
    }
    let file = tmp.path().join("connect.txt");
    std::fs::write(
        &file,
        "# comment\nkm.dev.acme.internal:9443=127.0.0.1:1\nnot a line\n",
    )
    .expect("write");
    let r = run(
        &[
            "verify",
            out.to_str().unwrap(),
            "--live",
            "--connect-file",
            file.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("connect.txt") && r.stderr.contains('3'),
        "names the file and line: {}",
        r.stderr
    );
}
