//! JSSE oracle: for every row of `verify::hostname::CASES`, a self-signed certificate (made with
//! rcgen, which accepts the odd SANs OpenSSL refuses) is served on loopback to a JDK HTTPS client
//! (`tests/java/HostnameOracle.java`, one JVM for all rows) that trusts exactly that certificate;
//! our `java` verdict must equal the handshake's outcome. Needs `java` and `javac` (JDK 11+):
//! skipped without them, a failure when CI=true.
use apim_pki::hostname::{check, Case, CertNames, Host, CASES};
use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, SanType};
use std::collections::HashMap;
use std::process::Command;

fn has(tool: &str) -> bool {
    Command::new(tool)
        .arg("-version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn certificate(case: &Case, key: &KeyPair) -> rcgen::Certificate {
    let mut p = CertificateParams::default();
    p.distinguished_name = DistinguishedName::new();
    p.distinguished_name
        .push(DnType::OrganizationName, "apim-pki hostname oracle");
    assert!(
        case.cns.len() <= 2,
        "the generator supports at most two CNs"
    );
    for (i, cn) in case.cns.iter().enumerate() {
        // rcgen keeps one value per type: the second CN goes in under the raw CN OID.
        let ty = if i == 0 {
            DnType::CommonName
        } else {
            DnType::CustomDnType(vec![2, 5, 4, 3])
        };
        p.distinguished_name.push(ty, *cn);
    }
    p.subject_alt_names = (case.sans.iter())
        .map(|s| match s.split_once(':') {
            Some(("DNS", d)) => SanType::DnsName(d.try_into().unwrap()),
            Some(("IP", ip)) => SanType::IpAddress(ip.parse().unwrap()),
            _ => panic!("bad SAN {s:?} in the table"),
        })
        .collect();
    p.self_signed(key).unwrap()
}

#[test]
#[cfg_attr(
    not(apim_pki_jdk17),
    ignore = "needs JDK 17: java, javac and keytool on PATH (apt-get install openjdk-17-jdk-headless); .ci/run installs it all"
)]
fn java_verdicts_match_jsse() {
    if !has("java") || !has("javac") {
        crate::util::java::missing_tool("java/javac (JDK 17) for the JSSE host-name oracle");
    }
    let dir = tempfile::tempdir().unwrap();
    let src = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/java/HostnameOracle.java"
    );
    let javac = Command::new("javac")
        .args(["--release", "11", "-d"])
        .arg(dir.path())
        .arg(src)
        .status();
    assert!(javac.unwrap().success(), "javac failed on {src}");

    let key = KeyPair::generate().unwrap();
    let key_path = dir.path().join("key.pem");
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    let mut manifest = String::new();
    for (i, case) in CASES.iter().enumerate() {
        let cert_path = dir.path().join(format!("case{i}.pem"));
        let cert = certificate(case, &key);
        assert_eq!(
            CertNames::from_der(cert.der()).unwrap(),
            case.names(),
            "{case:?}"
        );
        std::fs::write(&cert_path, cert.pem()).unwrap();
        let (c, k) = (cert_path.display(), key_path.display());
        manifest += &format!("{i}\t{}\t{c}\t{k}\n", case.host);
    }
    let manifest_path = dir.path().join("cases.tsv");
    std::fs::write(&manifest_path, manifest).unwrap();

    let out = Command::new("java")
        .arg("-cp")
        .arg(dir.path())
        .arg("HostnameOracle")
        .arg(&manifest_path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "oracle failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let jsse: HashMap<usize, (&str, &str)> = (stdout.lines())
        .filter_map(|l| {
            let mut f = l.splitn(3, '\t');
            Some((f.next()?.parse().ok()?, (f.next()?, f.next().unwrap_or(""))))
        })
        .collect();

    let mut bad = Vec::new();
    for (i, case) in CASES.iter().enumerate() {
        let ours = check(&case.names(), &Host::parse(case.host).unwrap()).java;
        let (outcome, detail) = jsse.get(&i).copied().unwrap_or(("MISSING", ""));
        let accepted = match outcome {
            "ACCEPT" => true,
            "REJECT" => false,
            _ => {
                bad.push(format!(
                    "{i:>3} {:<36} oracle {outcome}: {detail}",
                    case.what
                ));
                continue;
            }
        };
        let cut: String = detail.chars().take(110).collect();
        println!(
            "{i:>3} {:<36} JSSE={accepted:<5} ours={ours:<5} {cut}",
            case.what
        );
        if accepted != ours || accepted != case.java {
            bad.push(format!(
                "{i:>3} {:<36} sans={:?} cns={:?} host={} table={} ours={ours} JSSE={accepted} {detail}",
                case.what, case.sans, case.cns, case.host, case.java
            ));
        }
    }
    let jdk = stdout
        .lines()
        .find_map(|l| l.strip_prefix("#\t"))
        .unwrap_or("unknown JDK");
    println!("JSSE oracle ({jdk}): {} rows checked", CASES.len());
    assert!(
        bad.is_empty(),
        "java verdicts differing from JDK JSSE:\n{}",
        bad.join("\n")
    );
}
