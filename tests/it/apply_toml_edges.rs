//! `apply` on deployment.toml files an operator has shaped by hand (our own small fixtures, not
//! WSO2's): comments and blank lines, an operator's own table, an owned table written as an
//! inline table or with dotted keys, CRLF line ends, invalid TOML, secrets the cipher tool has
//! already encrypted, and `--dry-run`.

use std::path::{Path, PathBuf};

use crate::util::cli;

const TOPOLOGY: &str = r#"
name = "edge"
product = "apim-4.x"
[pki]
key = "ecdsa-p256"

[[node]]
name = "cp"
profile = "control-plane"
host = "cp.edge.example"

[[node]]
name = "gw"
profile = "gateway-worker"
host = "gw.edge.example"

[[node]]
name = "tm"
profile = "traffic-manager"
host = "tm.edge.example"
"#;

/// An operator's file: comments, blank lines, their own tables, an inline `[keystore] tls`, a
/// dotted-key truststore, an encrypted secret.
const OPERATOR: &str = r#"# Operator's header comment
truststore.file_name = "old-trust.jks"
truststore.type = "JKS"
truststore.password = "wso2carbon"

[server]
hostname = "old.edge.example"   # trailing comment
# offset = 5

[database.apim_db]
type = "mysql"
url = "jdbc:mysql://db.edge.example:3306/apim"   # keep me
username = "apim"
password = "$secret{db_password}"

[keystore]
tls = { file_name = "old.jks", type = "JKS", password = "x", alias = "old", key_password = "x" }

[operator.custom]
flag = true

[secrets]
db_password = "b3BlcmF0b3ItZW5jcnlwdGVk"
keystore_password = "RU5DUllQVEVELUJZLUNJUEhFUlRPT0w="
"#;

struct Env {
    _tmp: tempfile::TempDir,
    set: PathBuf,
    home: PathBuf,
}

fn setup(conf: &[u8]) -> Env {
    let tmp = tempfile::tempdir().expect("tempdir");
    // The merge's edges, with the vault off: the operator's hand-made "ciphertexts" are kept
    // as the cipher tool left them (tests/vault_wiring.rs covers the vault on such files).
    let topo = cli::write_topology(tmp.path(), &cli::with_vault(TOPOLOGY, false));
    let set = tmp.path().join("set");
    cli::generate(&topo, &set, &[]);
    let home = tmp.path().join("home");
    std::fs::create_dir_all(home.join("repository/conf")).expect("mkdir");
    std::fs::write(home.join("repository/conf/deployment.toml"), conf).expect("write");
    Env {
        _tmp: tmp,
        set,
        home,
    }
}

fn apply(env: &Env, extra: &[&str]) -> cli::Run {
    cli::apply(&env.set, "gw", &env.home, extra, &[])
}

fn conf(home: &Path) -> String {
    std::fs::read_to_string(home.join("repository/conf/deployment.toml")).expect("read")
}

#[test]
fn operator_file_kept_owned_forms_edited_in_place() {
    let env = setup(OPERATOR.as_bytes());
    let r = apply(&env, &[]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let text = conf(&env.home);
    let t: toml::Table = toml::from_str(&text).expect("valid TOML, no duplicate table");
    // Comments, blank lines and the operator's tables, byte for byte.
    for kept in [
        "# Operator's header comment\ntruststore.file_name",
        "\n\n[server]\nhostname = \"gw.edge.example\"   # trailing comment\n",
        "\n# offset = 5\n",
        "[database.apim_db]\ntype = \"mysql\"\nurl = \"jdbc:mysql://db.edge.example:3306/apim\"   # keep me\nusername = \"apim\"\npassword = \"$secret{db_password}\"\n",
        "[operator.custom]\nflag = true\n",
    ] {
        assert!(text.contains(kept), "lost {kept:?} in:\n{text}");
    }
    assert_eq!(t["server"]["hostname"].as_str(), Some("gw.edge.example"));
    // [secrets] stays the last table: WSO2's cipher tool rewrites what follows it.
    let last = text.rfind("\n[").expect("a table header");
    assert!(text[last..].starts_with("\n[secrets]\n"), "{text}");
    // The inline table and the dotted keys were edited in their own form, not duplicated.
    assert!(
        text.contains("tls = { file_name = \"gw-tls.p12\""),
        "{text}"
    );
    assert!(!text.contains("[keystore.tls]"));
    assert!(
        text.contains("truststore.file_name = \"client-truststore.p12\""),
        "{text}"
    );
    assert!(!text.contains("[truststore]"));
    assert_eq!(t["keystore"]["tls"]["alias"].as_str(), Some("gw"));
    // The encrypted secrets stay; the missing plain ones are added.
    let secrets = t["secrets"].as_table().expect("secrets");
    assert_eq!(
        secrets["keystore_password"].as_str(),
        Some("RU5DUllQVEVELUJZLUNJUEhFUlRPT0w=")
    );
    assert_eq!(
        secrets["db_password"].as_str(),
        Some("b3BlcmF0b3ItZW5jcnlwdGVk")
    );
    assert!(secrets["tls_password"]
        .as_str()
        .is_some_and(|v| v.starts_with('[')));
    assert!(
        r.stdout.contains("kept secrets.keystore_password"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("NOT READY"), "{}", r.stdout);
    assert!(
        !r.stdout.contains("cipher tool would damage"),
        "{}",
        r.stdout
    );
    // Second run: nothing changes.
    let before = cli::snapshot(&env.home);
    let again = apply(&env, &[]);
    assert_eq!(again.code, 0);
    assert!(again.stdout.contains("up to date"), "{}", again.stdout);
    assert_eq!(before, cli::snapshot(&env.home));
}

#[test]
fn crlf_file_stays_crlf() {
    let env = setup(OPERATOR.replace('\n', "\r\n").as_bytes());
    let r = apply(&env, &[]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let text = conf(&env.home);
    assert!(
        !text.replace("\r\n", "").contains('\n'),
        "a bare LF in a CRLF file"
    );
    assert!(text.contains("[apim.key_manager]\r\n"));
    toml::from_str::<toml::Table>(&text).expect("valid");
    let again = apply(&env, &[]);
    assert!(again.stdout.contains("up to date"), "{}", again.stdout);
}

#[test]
fn invalid_toml_exit_2_nothing_written() {
    let bad = "[server]\nhostname = \"a\"\n\n[keystore.tls]\nfile_name = \n";
    let env = setup(bad.as_bytes());
    let before = cli::snapshot(&env.home);
    let r = apply(&env, &[]);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("deployment.toml"), "{}", r.stderr);
    assert!(r.stderr.contains("line 5"), "{}", r.stderr);
    assert_eq!(before, cli::snapshot(&env.home), "nothing written");
    // A duplicated table is invalid TOML too.
    let dup = "[server]\nhostname = \"a\"\n[server]\noffset = 1\n";
    let env = setup(dup.as_bytes());
    let r = apply(&env, &[]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert_eq!(conf(&env.home), dup);
    // A value where apply needs a table.
    let shape = "keystore = \"x\"\n";
    let env = setup(shape.as_bytes());
    let r = apply(&env, &[]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("`keystore`"), "{}", r.stderr);
    assert_eq!(conf(&env.home), shape);
}

#[test]
fn dry_run_prints_diff_writes_nothing_shows_no_password() {
    let env = setup(OPERATOR.as_bytes());
    let before = cli::snapshot(&env.home);
    let r = apply(&env, &["--dry-run"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("-hostname = \"old.edge.example\""),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("+[apim.key_manager]"), "{}", r.stdout);
    assert!(r.stdout.contains("dry run: nothing written"));
    assert_eq!(before, cli::snapshot(&env.home));
    for (_, pw) in cli::secrets(&env.set) {
        assert!(
            !r.stdout.contains(&pw) && !r.stderr.contains(&pw),
            "password printed"
        );
    }
}

#[test]
fn missing_home_file_is_exit_2() {
    let env = setup(b"");
    std::fs::remove_file(env.home.join("repository/conf/deployment.toml")).expect("rm");
    let r = apply(&env, &[]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("--apim-home"), "{}", r.stderr);
}

/// verify reads the peers node.toml records for deployment.toml products: a clean set passes,
/// and a peer URL naming a host its server's certificate does not cover is
/// `config-host-uncovered`.
#[test]
fn verify_checks_deployment_toml_peers() {
    for product in ["apim-3.2", "apim-4.x", "apim-4.5"] {
        let tmp = tempfile::tempdir().expect("tempdir");
        let example = cli::run(&["init", "--product", product], &[]);
        assert_eq!(example.code, 0, "{}", example.stderr);
        let topo = cli::write_topology(
            tmp.path(),
            &example
                .stdout
                .replace("key = \"rsa-2048\"", "key = \"ecdsa-p256\""),
        );
        let set = tmp.path().join("set");
        cli::generate(&topo, &set, &[]);
        let dir = set.to_str().expect("utf-8");
        let ok = cli::run(&["verify", dir, "--format", "json"], &[]);
        assert_eq!(ok.code, 0, "{product}: {}", ok.stdout);
        // Point one TLS peer URL of the first node at a host nobody's certificate covers.
        let first = std::fs::read_dir(set.join("nodes"))
            .expect("nodes")
            .flatten()
            .map(|e| e.path().join("node.toml"))
            .find(|p| std::fs::read_to_string(p).is_ok_and(|t| t.contains("url = \"https://")))
            .expect("a node with a TLS peer");
        let text = std::fs::read_to_string(&first).expect("read");
        let start = text.find("url = \"https://").expect("https peer") + "url = \"https://".len();
        let end = start + text[start..].find(':').expect("port");
        let host = text[start..end].to_string();
        let bad = format!("{}elsewhere.example{}", &text[..start], &text[end..]);
        std::fs::write(&first, bad).expect("write");
        let r = cli::run(&["verify", dir, "--format", "json"], &[]);
        assert_eq!(r.code, 1, "{product}: {}", r.stdout);
        assert!(
            r.stdout.contains("config-host-uncovered") && r.stdout.contains("elsewhere.example"),
            "{product} (was {host}): {}",
            r.stdout
        );
    }
}

/// `verify --apim-home PATH --node NAME` checks what the applied home's deployment.toml names:
/// clean after apply; a wrong password, a swapped TLS keystore and a peer URL naming an
/// uncovered host are findings (exit 1).
#[test]
fn verify_applied_home() {
    let env = setup(OPERATOR.as_bytes());
    assert_eq!(apply(&env, &[]).code, 0);
    let verify = || cli::verify_home(&env.set, "gw", &env.home);
    let (code, v) = verify();
    assert_eq!(code, 0, "{v}");
    assert!(v["summary"]["checked"].as_u64().unwrap_or(0) > 5, "{v}");

    let conf_path = env.home.join("repository/conf/deployment.toml");
    let good = conf(&env.home);
    // The gateway names tm's services; make tm's certificate one that does not cover it.
    let set_tm = env
        .set
        .join("nodes/tm/repository/resources/security/tm-tls.p12");
    let set_cp = env
        .set
        .join("nodes/cp/repository/resources/security/cp-tls.p12");
    let saved_tm = std::fs::read(&set_tm).expect("read");
    std::fs::copy(&set_cp, &set_tm).expect("copy");
    let (code, v) = verify();
    assert_eq!(code, 1, "{v}");
    assert!(
        v.to_string().contains("config-host-uncovered")
            && v.to_string().contains("tm.edge.example"),
        "{v}"
    );
    std::fs::write(&set_tm, saved_tm).expect("restore");
    // The TLS keystore swapped for the control plane's: hostname-mismatch.
    let cp_tls = env
        .set
        .join("nodes/cp/repository/resources/security/cp-tls.p12");
    let gw_tls = env.home.join("repository/resources/security/gw-tls.p12");
    let saved = std::fs::read(&gw_tls).expect("read");
    std::fs::copy(&cp_tls, &gw_tls).expect("copy");
    let (code, v) = verify();
    assert_eq!(code, 1);
    assert!(v.to_string().contains("hostname-mismatch"), "{v}");
    std::fs::write(&gw_tls, saved).expect("restore");
    // A truststore password that does not open the file.
    let wrong = good.replace(
        "password = \"$secret{truststore_password}\"",
        "password = \"not-the-password\"",
    );
    assert_ne!(wrong, good);
    std::fs::write(&conf_path, wrong).expect("write");
    let (code, v) = verify();
    assert_eq!(code, 1);
    assert!(v.to_string().contains("wrong-password"), "{v}");
}

/// The truststore deployment.toml names before apply (WSO2's `client-truststore.jks`, password
/// `wso2carbon`) keeps the operator's CAs: they are merged into the set's truststore; the
/// entries the set owns are the set's.
#[test]
fn operator_cas_carried_into_the_new_truststore() {
    use apim_pki::KeystoreFormat;
    use apim_pki::Password;
    use apim_pki::{Entry, Keystore};
    let shipped = "[server]\nhostname = \"localhost\"\n\n[truststore]\nfile_name = \"client-truststore.jks\"\ntype = \"JKS\"\npassword = \"wso2carbon\"\n";
    let env = setup(shipped.as_bytes());
    // Any certificate will do as the operator's CA: the set's own CA certificate.
    let ca_pem = std::fs::read(env.set.join("ca/ca.crt")).expect("ca");
    let der = pem_der(&ca_pem);
    let old = Keystore {
        entries: vec![
            Entry::Trusted {
                alias: "corp-root".into(),
                cert: der.clone(),
            },
            Entry::Trusted {
                alias: "wso2carbon".into(),
                cert: der.clone(),
            },
        ],
    };
    let sec = env.home.join("repository/resources/security");
    std::fs::create_dir_all(&sec).expect("mkdir");
    let bytes = old
        .encode(KeystoreFormat::Jks, &Password::new("wso2carbon".into()))
        .expect("encode");
    std::fs::write(sec.join("client-truststore.jks"), &bytes).expect("write");
    let r = apply(&env, &[]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let pw = cli::secrets(&env.set)["truststore"].clone();
    let (merged, _) = Keystore::decode(
        &std::fs::read(sec.join("client-truststore.p12")).expect("installed"),
        &Password::new(pw),
    )
    .expect("opens with the set's password");
    let aliases: Vec<&str> = merged.entries.iter().map(Entry::alias).collect();
    assert!(aliases.contains(&"corp-root"), "{aliases:?}");
    assert_eq!(
        aliases.iter().filter(|a| **a == "wso2carbon").count(),
        1,
        "{aliases:?}"
    );
    let primary = merged
        .entry("wso2carbon")
        .and_then(Entry::cert)
        .expect("primary");
    assert_ne!(
        primary,
        &der[..],
        "wso2carbon is the set's primary, not the old entry"
    );
    // The old file stays where it was (deployment.toml no longer names it).
    assert_eq!(
        std::fs::read(sec.join("client-truststore.jks")).expect("old"),
        bytes
    );
}

fn pem_der(pem: &[u8]) -> Vec<u8> {
    apim_pki::pem::certs_from_pem(pem).expect("PEM").remove(0)
}

/// A comment inside the operator's `[secrets]` would be rewritten by WSO2's cipher tool: apply
/// keeps it (the table is not apply's to reformat) and says so.
#[test]
fn comment_inside_secrets_is_called_out() {
    let text = OPERATOR.replace("[secrets]\n", "[secrets]\n# the operator's note\n");
    let env = setup(text.as_bytes());
    let r = apply(&env, &[]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("cipher tool would damage"),
        "{}",
        r.stdout
    );
    assert!(conf(&env.home).contains("# the operator's note"));
}
