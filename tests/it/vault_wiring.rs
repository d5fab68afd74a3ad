//! Secure vault wired into generate, apply, rotate and verify for API-M 4.x (docs/secure-vault.md),
//! on a set's own node files and on a home made from them (the documented 3.2+ route: copy
//! `nodes/<n>/repository` into the product home). Fast: no WSO2 tree, no Java (the real trees and
//! the Java decryption are in apply_toml.rs and apply_real26.rs).
//!
//! Each vault finding has a test that breaks a good set or home in one way and asserts that
//! exactly that finding appears: `plaintext-password`, `default-password`, `vault-undecryptable`.
//! Apply never overwrites silently: a home ciphertext the set's key cannot decrypt is re-encrypted
//! and reported; a set whose own ciphertext does not decrypt stops apply with exit 2.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::util::cli::{generate, run, secrets, snapshot, write_topology};
use crate::util::files::{copy_tree, s};
use apim_pki::secure_vault::key::for_set_node;
use apim_pki::OpenedSet;

const TOPOLOGY: &str = r#"
name = "vault"
product = "apim-4.x"

[[node]]
name = "cp"
profile = "control-plane"
host = "cp.example.com"

[[node]]
name = "gw"
profile = "gateway-worker"
host = "gw.example.com"

[[node]]
name = "tm"
profile = "traffic-manager"
host = "tm.example.com"
"#;

const CONF: &str = "repository/conf/deployment.toml";
const SECRET_CONF: &str = "repository/conf/security/secret-conf.properties";

fn make_set(dir: &Path, topology: &str) -> PathBuf {
    std::fs::create_dir_all(dir).expect("mkdir");
    let set = dir.join("set");
    generate(&write_topology(dir, topology), &set, &[]);
    set
}

/// The finding codes `verify` reports (on the set, or on `home` for node cp).
fn codes(set: &Path, home: Option<&Path>, env: &[(&str, &str)]) -> BTreeSet<String> {
    let mut args = vec!["verify", s(set), "--format", "json"];
    if let Some(h) = home {
        args.extend(["--apim-home", s(h), "--node", "cp"]);
    }
    let r = run(&args, env);
    let report: serde_json::Value =
        serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {}{}", r.stdout, r.stderr));
    let found: BTreeSet<String> = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| f["code"].as_str().expect("code").to_string())
        .collect();
    assert_eq!(r.code, i32::from(!found.is_empty()), "{}", r.stdout);
    found
}

fn one(code: &str) -> BTreeSet<String> {
    BTreeSet::from([code.to_string()])
}

/// Replaces `[secrets] alias`'s value in the deployment.toml at `path`.
fn set_secret(path: &Path, alias: &str, value: &str) {
    let text = std::fs::read_to_string(path).expect("read");
    let mut doc: toml_edit::DocumentMut = text.parse().expect("toml");
    doc["secrets"][alias] = toml_edit::value(value);
    std::fs::write(path, doc.to_string()).expect("write");
}

fn secret(path: &Path, alias: &str) -> String {
    secret_in(&std::fs::read_to_string(path).expect("read"), alias)
}

fn secret_in(text: &str, alias: &str) -> String {
    let t: toml::Table = toml::from_str(text).expect("toml");
    t["secrets"][alias].as_str().expect("secret").to_string()
}

/// A home for node cp: the set's `nodes/cp/repository` copied in, as the guides say.
fn home_from_set(set: &Path, dir: &Path) -> PathBuf {
    let home = dir.join("home");
    copy_tree(&set.join("nodes/cp/repository"), &home.join("repository"));
    home
}

/// A ciphertext of `password` under another set's primary key.
fn foreign_ciphertext(dir: &Path, password: &str) -> String {
    let other = make_set(&dir.join("other"), TOPOLOGY);
    let opened = OpenedSet::open(&other).expect("set");
    let key = for_set_node(&opened, "cp").expect("key").expect("vault on");
    key.seal(None, password).expect("seal").text().to_string()
}

#[test]
fn generate_seals_secrets_and_a_rerun_and_primary_recertification_keep_them() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let set = make_set(tmp.path(), TOPOLOGY);
    let conf = set.join("nodes/cp").join(CONF);
    let text = std::fs::read_to_string(&conf).expect("deployment.toml");
    assert!(!text.contains("\"["), "no plain [secrets]: {text}");
    let pw = secrets(&set);
    for p in pw.values() {
        assert!(!text.contains(p.as_str()), "a password in clear");
    }
    let opened = OpenedSet::open(&set).expect("set");
    let key = for_set_node(&opened, "cp").expect("key").expect("on");
    for (alias, role) in [
        ("keystore_password", "primary"),
        ("tls_password", "tls"),
        ("truststore_password", "truststore"),
    ] {
        assert_eq!(
            key.open(&secret(&conf, alias)).expect("decrypts").as_str(),
            pw[role]
        );
    }
    assert!(set.join("nodes/cp").join(SECRET_CONF).is_file());
    assert!(codes(&set, None, &[]).is_empty());
    let before = snapshot(&set.join("nodes"));
    generate(&set.parent().expect("dir").join("topology.toml"), &set, &[]);
    assert_eq!(
        before,
        snapshot(&set.join("nodes")),
        "a re-run changes no node file"
    );
    // A re-certified primary keeps its key: every ciphertext still decrypts, none is rewritten.
    let r = run(
        &[
            "rotate",
            s(&set.parent().expect("dir").join("topology.toml")),
            "--out",
            s(&set),
            "--primary-cert",
        ],
        &[],
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    for alias in ["keystore_password", "tls_password", "truststore_password"] {
        let old = String::from_utf8(before[&format!("cp/{CONF}")].clone()).expect("utf-8");
        assert_eq!(secret(&conf, alias), secret_in(&old, alias), "{alias} kept");
    }
    assert!(codes(&set, None, &[]).is_empty());
}

#[test]
fn vault_off_writes_plain_secrets_for_the_cipher_tool() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let set = make_set(tmp.path(), &crate::util::cli::with_vault(TOPOLOGY, false));
    let conf = set.join("nodes/cp").join(CONF);
    let pw = secrets(&set);
    assert_eq!(
        secret(&conf, "keystore_password"),
        format!("[{}]", pw["primary"])
    );
    assert!(!set.join("nodes/cp").join(SECRET_CONF).exists());
    assert!(
        codes(&set, None, &[]).is_empty(),
        "the user turned it off: no vault finding"
    );
}

#[test]
fn verify_set_plaintext_password() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let set = make_set(tmp.path(), TOPOLOGY);
    let pw = secrets(&set);
    set_secret(
        &set.join("nodes/gw").join(CONF),
        "tls_password",
        &format!("[{}]", pw["tls"]),
    );
    assert_eq!(codes(&set, None, &[]), one("plaintext-password"));
}

#[test]
fn verify_set_vault_undecryptable() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let set = make_set(tmp.path(), TOPOLOGY);
    let pw = secrets(&set);
    let conf = set.join("nodes/gw").join(CONF);
    let good = secret(&conf, "truststore_password");
    set_secret(
        &conf,
        "truststore_password",
        &foreign_ciphertext(tmp.path(), &pw["truststore"]),
    );
    assert_eq!(
        codes(&set, None, &[]),
        one("vault-undecryptable"),
        "foreign key"
    );
    set_secret(&conf, "truststore_password", "bm90IGEgY2lwaGVydGV4dA==");
    assert_eq!(
        codes(&set, None, &[]),
        one("vault-undecryptable"),
        "corrupt"
    );
    set_secret(&conf, "truststore_password", &good);
    assert!(codes(&set, None, &[]).is_empty());
    std::fs::remove_file(set.join("nodes/gw").join(SECRET_CONF)).expect("rm");
    assert_eq!(
        codes(&set, None, &[]),
        one("vault-undecryptable"),
        "no secret-conf"
    );
}

#[test]
fn verify_set_default_password() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let topology = TOPOLOGY.replace(
        "[[node]]\nname = \"cp\"",
        "[passwords]\nprimary = \"VAULT_PW\"\n\n[[node]]\nname = \"cp\"",
    );
    let env = [("VAULT_PW", "wso2carbon")];
    let set = tmp.path().join("set");
    crate::util::cli::generate(&write_topology(tmp.path(), &topology), &set, &env);
    assert_eq!(codes(&set, None, &env), one("default-password"));
}

#[test]
fn verify_home_each_finding_alone() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let set = make_set(tmp.path(), TOPOLOGY);
    let pw = secrets(&set);
    let home = home_from_set(&set, tmp.path());
    let conf = home.join(CONF);
    assert!(
        codes(&set, Some(&home), &[]).is_empty(),
        "the copied node files are a good home"
    );
    let good = std::fs::read(&conf).expect("read");
    let reset = || std::fs::write(&conf, &good).expect("reset");

    set_secret(&conf, "keystore_password", &format!("[{}]", pw["primary"]));
    assert_eq!(codes(&set, Some(&home), &[]), one("plaintext-password"));
    reset();

    let text = String::from_utf8(good.clone()).expect("utf-8");
    std::fs::write(
        &conf,
        format!("[super_admin]\nusername = \"admin\"\npassword = \"admin\"\n\n{text}"),
    )
    .expect("write");
    assert_eq!(codes(&set, Some(&home), &[]), one("default-password"));
    reset();

    set_secret(
        &conf,
        "keystore_password",
        &foreign_ciphertext(tmp.path(), &pw["primary"]),
    );
    assert_eq!(
        codes(&set, Some(&home), &[]),
        one("vault-undecryptable"),
        "another primary key"
    );
    reset();

    // Decrypts, but to the TLS password, which does not open the truststore.
    let opened = OpenedSet::open(&set).expect("set");
    let key = for_set_node(&opened, "cp").expect("key").expect("on");
    set_secret(
        &conf,
        "truststore_password",
        key.seal(None, &pw["tls"]).expect("seal").text(),
    );
    assert_eq!(
        codes(&set, Some(&home), &[]),
        one("vault-undecryptable"),
        "wrong keystore"
    );
    reset();

    // A half-vaulted file: a reference without its [secrets] entry.
    let mut doc: toml_edit::DocumentMut = text.parse().expect("toml");
    doc["secrets"]
        .as_table_mut()
        .expect("table")
        .remove("tls_password");
    std::fs::write(&conf, doc.to_string()).expect("write");
    assert!(
        codes(&set, Some(&home), &[]).contains("vault-undecryptable"),
        "half-vaulted"
    );
    reset();

    // OAEP ciphertexts under a secret-conf.properties that names no algorithm (what a later
    // `ciphertool.sh -Dconfigure` without -Dorg.wso2.CipherTransformation writes).
    let sc = home.join(SECRET_CONF);
    let conf_text = std::fs::read_to_string(&sc).expect("secret-conf");
    let stripped: String = conf_text
        .lines()
        .filter(|l| !l.starts_with("secretRepositories.file.algorithm"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&sc, stripped).expect("write");
    assert_eq!(
        codes(&set, Some(&home), &[]),
        one("vault-undecryptable"),
        "scheme"
    );
    std::fs::write(&sc, &conf_text).expect("reset");
    assert!(codes(&set, Some(&home), &[]).is_empty());
}

#[test]
fn apply_reencrypts_a_foreign_ciphertext_loudly_and_refuses_a_bad_set() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let set = make_set(tmp.path(), TOPOLOGY);
    let pw = secrets(&set);
    let home = home_from_set(&set, tmp.path());
    let conf = home.join(CONF);
    let apply = |home: &Path| {
        run(
            &["apply", s(&set), "--node", "cp", "--apim-home", s(home)],
            &[],
        )
    };
    let first = apply(&home);
    assert_eq!(first.code, 0, "{}{}", first.stdout, first.stderr);
    let again = apply(&home);
    assert!(again.stdout.contains("up to date"), "{}", again.stdout);

    set_secret(
        &conf,
        "keystore_password",
        &foreign_ciphertext(tmp.path(), &pw["primary"]),
    );
    assert_eq!(codes(&set, Some(&home), &[]), one("vault-undecryptable"));
    let r = apply(&home);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("keystore_password") && r.stdout.contains("re-encrypted"),
        "not silent: {}",
        r.stdout
    );
    assert!(codes(&set, Some(&home), &[]).is_empty());

    // The set's own file under another key: exit 2, nothing written.
    set_secret(
        &set.join("nodes/cp").join(CONF),
        "tls_password",
        &foreign_ciphertext(tmp.path(), &pw["tls"]),
    );
    let before = snapshot(&home);
    let r = apply(&home);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("generate"), "{}", r.stderr);
    assert_eq!(before, snapshot(&home), "nothing written");
}

#[test]
fn apply_writes_the_startup_password_file_only_when_asked() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let topology = TOPOLOGY.replace(
        "[[node]]\nname = \"cp\"",
        "[secure_vault]\npassword_file = \"persist\"\n\n[[node]]\nname = \"cp\"",
    );
    let set = make_set(tmp.path(), &topology);
    let home = home_from_set(&set, tmp.path());
    let r = run(
        &["apply", s(&set), "--node", "cp", "--apim-home", s(&home)],
        &[],
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let file = home.join("password-persist");
    assert_eq!(
        std::fs::read_to_string(&file).expect("written"),
        format!("{}\n", secrets(&set)["primary"])
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&file).expect("meta").permissions().mode() & 0o777,
            0o600
        );
    }
    assert!(!home.join("password-tmp").exists());
    let plain = make_set(&tmp.path().join("default"), TOPOLOGY);
    let home2 = home_from_set(&plain, &tmp.path().join("default"));
    let r = run(
        &["apply", s(&plain), "--node", "cp", "--apim-home", s(&home2)],
        &[],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!home2.join("password-persist").exists() && !home2.join("password-tmp").exists());
}

#[test]
fn apply_with_the_vault_keeps_crlf_and_encrypts_the_operators_plain_entries() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let set = make_set(tmp.path(), TOPOLOGY);
    let home = home_from_set(&set, tmp.path());
    let conf = home.join(CONF);
    let text = std::fs::read_to_string(&conf).expect("read");
    let text = text.replace(
        "[secrets]\n",
        "[secrets]\nadmin_password = \"[s3cret-admin]\"\n",
    );
    std::fs::write(&conf, text.replace('\n', "\r\n")).expect("write");
    let r = run(
        &["apply", s(&set), "--node", "cp", "--apim-home", s(&home)],
        &[],
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("admin_password"), "named: {}", r.stdout);
    let after = std::fs::read_to_string(&conf).expect("read");
    assert!(
        !after.replace("\r\n", "").contains('\n'),
        "a bare LF in a CRLF file"
    );
    let value = secret(&conf, "admin_password");
    let opened = OpenedSet::open(&set).expect("set");
    let key = for_set_node(&opened, "cp").expect("key").expect("on");
    assert_eq!(key.open(&value).expect("decrypts").as_str(), "s3cret-admin");
    let again = run(
        &["apply", s(&set), "--node", "cp", "--apim-home", s(&home)],
        &[],
    );
    assert!(again.stdout.contains("up to date"), "{}", again.stdout);
}
