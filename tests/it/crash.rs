//! Races, crashes, links and modes (issue 8 items 1, 3, 4, 7, 8):
//! - N runs of every writing command at once (generate on a new and an existing folder, rotate,
//!   csr, import-signed, apply): at most one writes, every other one exits 2 naming the holder
//!   (or, started after the writer finished, finds nothing to do);
//! - a symbolic link where apim-pki would write (a TLS keystore, ca/, nodes/, history/, .lock,
//!   a configuration file or .apim-pki-backup in an API-M home) is refused with exit 2 naming
//!   it, and nothing is written through it;
//! - under umask 000 every directory apim-pki creates is 0700 and key files 0600;
//! - crash safety: `kill -9` (the `APIM_PKI_TEST_KILL_AT=N` hook: SIGKILL right before the Nth
//!   file replacement) of generate, each rotate selector and CA stage, and apply; after every
//!   kill a re-run succeeds, `verify` passes, no temporary or journal is left, and every key
//!   that existed before is still in the set (in place or under history/, or for apply under
//!   .apim-pki-backup/). Here a sample of kill points per command; `scripts/crash-sweep.sh` runs
//!   `crash_sweep_every_replacement` (ignored here) over every point.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::time::Instant;

use crate::util::cli::{apim_pki, generate, run, secrets, snapshot, write_topology, Run};
use crate::util::files::{copy_tree, s};
use apim_pki::Key;
use apim_pki::KeystoreFormat;
use apim_pki::Password;
use apim_pki::{Entry, Keystore};

/// Six nodes of every 2.6 profile and two load balancers, ECDSA leaves (fast keys), RSA primary.
const TOPOLOGY: &str = r#"
name = "crash"
product = "apim-2.6"

[pki]
key = "ecdsa-p256"

[[node]]
name = "km"
profile = "key-manager"
host = "km.crash.internal"

[[node]]
name = "publisher"
profile = "publisher"
host = "publisher.crash.internal"

[[node]]
name = "store"
profile = "store"
host = "store.crash.internal"

[[node]]
name = "tm"
profile = "traffic-manager"
host = "tm.crash.internal"

[[node]]
name = "gw1"
profile = "gateway-worker"
host = "gw1.crash.internal"

[[node]]
name = "gw2"
profile = "gateway-worker"
host = "gw2.crash.internal"

[[load_balancer]]
host = "gw.lb.crash.internal"
fronts = "gateway-worker"

[[load_balancer]]
host = "km.lb.crash.internal"
fronts = "key-manager"
"#;

const GW1_TLS: &str = "nodes/gw1/repository/resources/security/gw1-tls.jks";
const BUSY: &str = "another apim-pki command";
const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/apim26");
const FIXTURE_PASSWORD: &str = "wso2carbon";

/// A temporary folder with [`TOPOLOGY`] written in it and generated into `tmp/<set>`: the
/// folder (removed on drop), the topology file and the set.
fn generated(set: &str) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let topo = write_topology(tmp.path(), TOPOLOGY);
    let out = tmp.path().join(set);
    generate(&topo, &out, &[]);
    (tmp, topo, out)
}

fn verify_ok(out: &Path) -> Result<(), String> {
    let r = run(&["verify", s(out)], &[]);
    if r.code == 0 {
        Ok(())
    } else {
        Err(format!("verify exit {}: {}{}", r.code, r.stdout, r.stderr))
    }
}

fn spawn(args: &[String], env: &[(&str, String)]) -> Child {
    let mut cmd = apim_pki();
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().expect("apim-pki starts")
}

/// Starts `n` copies of `args` at once and returns what each printed.
fn race(n: usize, args: &[String]) -> Vec<Run> {
    let children: Vec<Child> = (0..n).map(|_| spawn(args, &[])).collect();
    children
        .into_iter()
        .map(|c| Run::from(c.wait_with_output().expect("wait")))
        .collect()
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| a.to_string()).collect()
}

/// Every regular file below `dir` (symbolic links aside), relative.
fn files_below(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let t = e.file_type().expect("file type");
            if t.is_dir() {
                walk(root, &e.path(), out);
            } else if t.is_file() {
                let rel = e.path().strip_prefix(root).expect("prefix").to_path_buf();
                out.push(rel.to_string_lossy().into_owned());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

fn leftovers(dir: &Path) -> Vec<String> {
    files_below(dir)
        .into_iter()
        .filter(|p| {
            let name = p.rsplit('/').next().unwrap_or(p);
            name.contains(".tmp-") || name == ".journal"
        })
        .collect()
}

/// The public key of every private key found below `dir` (history/ and backups included):
/// PEM key files, and key entries of keystores that open with one of `passwords`.
fn public_keys(dir: &Path, passwords: &[Password]) -> BTreeSet<Vec<u8>> {
    let mut keys = BTreeSet::new();
    for rel in files_below(dir) {
        let path = dir.join(&rel);
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        if rel.ends_with(".key") || rel.ends_with(".pem") {
            if let Ok(k) = Key::from_pem(&bytes, &rel) {
                keys.insert(k.public_key_der());
            }
        } else if rel.ends_with(".jks") || rel.ends_with(".p12") {
            for p in passwords {
                if let Ok((store, _)) = Keystore::decode(&bytes, p) {
                    for e in store.key_entries() {
                        if let Entry::PrivateKey { pkcs8, .. } = e {
                            if let Ok(k) = Key::from_pkcs8_der(pkcs8, &rel) {
                                keys.insert(k.public_key_der());
                            }
                        }
                    }
                    break;
                }
            }
        }
    }
    keys
}

fn set_passwords(out: &Path) -> Vec<Password> {
    if !out.join("secrets.toml").exists() {
        return Vec::new();
    }
    secrets(out).into_values().map(Password::new).collect()
}

fn ca_stage(out: &Path) -> String {
    let bytes = std::fs::read(out.join("inventory.json")).unwrap_or_default();
    serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| v["ca_stage"].as_str().map(str::to_string))
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// API-M 2.6 homes for apply
// ---------------------------------------------------------------------------------------------

/// A self-signed key entry under `alias` (ECDSA: the fixture's key type does not matter here).
fn fixture_entry(alias: &str) -> Entry {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
        .expect("params")
        .self_signed(&key)
        .expect("self-signed");
    Entry::PrivateKey {
        alias: alias.into(),
        pkcs8: zeroize::Zeroizing::new(key.serialize_der()),
        chain: vec![cert.der().to_vec()],
    }
}

/// An "unpacked API-M 2.6": the fixture's repository/ plus a primary keystore and truststore
/// with the stock password.
fn fresh_home(home: &Path) {
    copy_tree(
        &Path::new(FIXTURE).join("repository"),
        &home.join("repository"),
    );
    let security = home.join("repository/resources/security");
    std::fs::create_dir_all(&security).expect("security dir");
    let password = Password::new(FIXTURE_PASSWORD.into());
    let primary = fixture_entry("wso2carbon");
    let Some(cert) = primary.cert().map(<[u8]>::to_vec) else {
        unreachable!()
    };
    let store = |entries| {
        Keystore { entries }
            .encode(KeystoreFormat::Jks, &password)
            .expect("encode")
    };
    std::fs::write(security.join("wso2carbon.jks"), store(vec![primary])).expect("write");
    let trust = vec![Entry::Trusted {
        alias: "wso2carbon".into(),
        cert,
    }];
    std::fs::write(security.join("client-truststore.jks"), store(trust)).expect("write");
}

fn apply_args(set: &Path, node: &str, home: &Path) -> Vec<String> {
    strings(&[
        "apply",
        s(set),
        "--node",
        node,
        "--apim-home",
        s(home),
        "--format",
        "json",
    ])
}

// ---------------------------------------------------------------------------------------------
// Concurrency
// ---------------------------------------------------------------------------------------------

/// Every run either exited 2 naming the holder, or exited 0; returns the successful ones.
fn check_race(results: &[Run], what: &str) -> Vec<usize> {
    let mut ok = Vec::new();
    for (i, r) in results.iter().enumerate() {
        match r.code {
            0 => ok.push(i),
            2 => assert!(
                r.stderr.contains(BUSY) && r.stderr.contains("pid "),
                "{what}: run {i} exited 2 without naming the holder: {}",
                r.stderr
            ),
            c => panic!("{what}: run {i} exited {c}: {}{}", r.stdout, r.stderr),
        }
    }
    assert!(!ok.is_empty(), "{what}: no run succeeded");
    ok
}

#[test]
fn concurrent_generates_into_a_new_folder_make_one_ca() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let topo = write_topology(tmp.path(), TOPOLOGY);
    for attempt in 0..2 {
        let out = tmp.path().join(format!("out{attempt}"));
        let args = strings(&["generate", s(&topo), "--out", s(&out)]);
        let results = race(4, &args);
        let ok = check_race(&results, "generate into a new folder");
        // Exactly one run created the set; any other success started after it and found
        // nothing to do.
        let creators: Vec<&usize> = ok
            .iter()
            .filter(|i| !results[**i].stdout.contains("up to date"))
            .collect();
        assert_eq!(
            creators.len(),
            1,
            "{} runs wrote a set: {:?}",
            creators.len(),
            ok.iter().map(|i| &results[*i].stdout).collect::<Vec<_>>()
        );
        assert!(
            !out.join("history").exists(),
            "a run replaced another's files"
        );
        verify_ok(&out).expect("the set verifies");
        let again = generate(&topo, &out, &[]);
        assert!(again.stdout.contains("up to date"), "{}", again.stdout);
    }
}

#[test]
fn concurrent_writers_on_an_existing_set_one_at_a_time() {
    let (tmp, topo, out) = generated("out");
    let o = s(&out);
    let t = s(&topo);
    // rotate --node gw1 four times at once: each success archives gw1's previous key.
    let results = race(4, &strings(&["rotate", t, "--out", o, "--node", "gw1"]));
    let ok = check_race(&results, "rotate --node");
    let stamps = std::fs::read_dir(out.join("history"))
        .expect("history")
        .count();
    assert_eq!(
        stamps,
        ok.len(),
        "each successful rotate keeps one history entry"
    );
    verify_ok(&out).expect("verifies after concurrent rotates");
    // rotate --ca begin: exactly one begins; the others are busy or find it begun.
    let results = race(3, &strings(&["rotate", t, "--out", o, "--ca", "begin"]));
    let begun = results.iter().filter(|r| r.code == 0).count();
    for r in &results {
        assert!(
            r.code == 0
                || (r.code == 2 && (r.stderr.contains(BUSY) || r.stderr.contains("already"))),
            "{}",
            r.stderr
        );
    }
    assert_eq!(begun, 1, "rotate --ca begin succeeded {begun} times");
    assert_eq!(ca_stage(&out), "rollover-begun");
    verify_ok(&out).expect("verifies after concurrent begins");
    // generate with a change: at most one applies it.
    let grown = format!(
        "{TOPOLOGY}\n[[load_balancer]]\nhost = \"pub.lb.crash.internal\"\nfronts = \"publisher\"\n"
    );
    write_topology(tmp.path(), &grown);
    let results = race(4, &strings(&["generate", t, "--out", o]));
    let ok = check_race(&results, "generate on an existing set");
    let writers = ok
        .iter()
        .filter(|i| !results[**i].stdout.contains("up to date"))
        .count();
    assert_eq!(writers, 1, "{writers} generates changed the set");
    verify_ok(&out).expect("verifies");
}

/// Signs every CSR of `out/csr/` with a throw-away corporate CA; returns the PEM to import.
fn sign_csrs(out: &Path) -> String {
    let ca_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Crash Corp CA");
    let ca = params.self_signed(&ca_key).expect("ca");
    let issuer = rcgen::Issuer::new(params, &ca_key);
    let mut pem = String::new();
    for rel in files_below(&out.join("csr")) {
        if !rel.ends_with(".csr") {
            continue;
        }
        let text = std::fs::read_to_string(out.join("csr").join(&rel)).expect("csr");
        let csr = rcgen::CertificateSigningRequestParams::from_pem(&text).expect("csr parses");
        pem.push_str(&csr.signed_by(&issuer).expect("sign").pem());
    }
    pem.push_str(&ca.pem());
    pem
}

#[test]
fn concurrent_csr_and_import_signed_one_at_a_time() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let topo = write_topology(tmp.path(), TOPOLOGY);
    let out = tmp.path().join("out");
    let results = race(4, &strings(&["csr", s(&topo), "--out", s(&out)]));
    let ok = check_race(&results, "csr into a new folder");
    let makers = ok
        .iter()
        .filter(|i| results[**i].stdout.contains("(new key)"))
        .count();
    assert_eq!(makers, 1, "{makers} csr runs made keys");
    let again = run(&["csr", s(&topo), "--out", s(&out)], &[]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(!again.stdout.contains("(new key)"), "{}", again.stdout);

    let signed = tmp.path().join("signed.pem");
    std::fs::write(&signed, sign_csrs(&out)).expect("write");
    let args = strings(&["import-signed", s(&out), "--certs", s(&signed)]);
    let results = race(3, &args);
    let ok = check_race(&results, "import-signed");
    assert!(!ok.is_empty());
    verify_ok(&out).expect("the imported set verifies");
}

#[test]
fn concurrent_applies_on_one_home_one_writes() {
    let (tmp, _, set) = generated("set");
    let home = tmp.path().join("home");
    fresh_home(&home);
    let results = race(4, &apply_args(&set, "gw1", &home));
    let ok = check_race(&results, "apply");
    let writers: Vec<&usize> = ok
        .iter()
        .filter(|i| {
            let v: serde_json::Value =
                serde_json::from_str(&results[**i].stdout).expect("json report");
            !v["backup"].is_null()
        })
        .collect();
    assert_eq!(writers.len(), 1, "{} applies wrote", writers.len());
    let backups = std::fs::read_dir(home.join(".apim-pki-backup"))
        .expect("backups")
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .count();
    assert_eq!(backups, 1);
    assert!(leftovers(&home).is_empty(), "{:?}", leftovers(&home));
}

/// Temporaries a killed apply left (before its commit) are removed by the next apply.
#[test]
fn apply_removes_the_temporaries_of_a_killed_apply() {
    let (tmp, _, set) = generated("set");
    let home = tmp.path().join("home");
    fresh_home(&home);
    let stale = [
        "repository/conf/.carbon.xml.tmp-999999-0",
        "repository/resources/security/.wso2carbon.jks.tmp-999999-1",
        ".apim-pki-backup/..journal.tmp-999999-2",
    ];
    std::fs::create_dir_all(home.join(".apim-pki-backup")).expect("mkdir");
    for rel in stale {
        std::fs::write(home.join(rel), b"half").expect("write");
    }
    let r = run_args(&apply_args(&set, "gw1", &home));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(leftovers(&home).is_empty(), "{:?}", leftovers(&home));
}

// ---------------------------------------------------------------------------------------------
// Links and modes
// ---------------------------------------------------------------------------------------------

/// A file's bytes, or every file below a directory.
fn contents(path: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    if path.is_dir() {
        snapshot(path)
    } else {
        [(String::new(), std::fs::read(path).expect("read"))].into()
    }
}

fn assert_link_refused(r: &Run, link: &Path) {
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains(s(link)) && r.stderr.contains("symbolic link"),
        "the error does not name the link {}: {}",
        link.display(),
        r.stderr
    );
}

#[test]
fn a_symlinked_tls_keystore_is_refused_not_replaced() {
    let (tmp, topo, out) = generated("out");
    let keystore = out.join(GW1_TLS);
    let elsewhere = tmp.path().join("gw1-tls.jks");
    std::fs::rename(&keystore, &elsewhere).expect("move");
    std::os::unix::fs::symlink(&elsewhere, &keystore).expect("symlink");
    let before = std::fs::read(&elsewhere).expect("read");
    for args in [
        strings(&["generate", s(&topo), "--out", s(&out)]),
        strings(&["plan", s(&topo), "--out", s(&out)]),
        strings(&["rotate", s(&topo), "--out", s(&out), "--node", "gw1"]),
    ] {
        let r = run(&args.iter().map(String::as_str).collect::<Vec<_>>(), &[]);
        assert_link_refused(&r, &keystore);
        assert!(keystore.is_symlink(), "{args:?} replaced the link");
        assert_eq!(std::fs::read(&elsewhere).expect("read"), before);
        assert!(!out.join("history").exists());
    }
}

#[test]
fn links_inside_the_set_are_refused() {
    let (tmp, topo, base) = generated("base");
    for (i, rel) in ["ca", "nodes", "history", ".lock", "load-balancers"]
        .into_iter()
        .enumerate()
    {
        let out = tmp.path().join(format!("out{i}"));
        copy_tree(&base, &out);
        let outside = tmp.path().join(format!("outside{i}"));
        let link = out.join(rel);
        if link.exists() {
            std::fs::rename(&link, &outside).expect("move out");
        } else {
            std::fs::create_dir_all(&outside).expect("mkdir");
        }
        std::os::unix::fs::symlink(&outside, &link).expect("symlink");
        let before = contents(&outside);
        let r = run(&["rotate", s(&topo), "--out", s(&out)], &[]);
        assert_link_refused(&r, &link);
        assert_eq!(
            contents(&outside),
            before,
            "{rel}: written through the link"
        );
    }
    // csr refuses a linked csr/ directory.
    let out = tmp.path().join("csr-out");
    std::fs::create_dir_all(&out).expect("mkdir");
    let outside = tmp.path().join("csr-outside");
    std::fs::create_dir_all(&outside).expect("mkdir");
    std::os::unix::fs::symlink(&outside, out.join("csr")).expect("symlink");
    let r = run(&["csr", s(&topo), "--out", s(&out)], &[]);
    assert_link_refused(&r, &out.join("csr"));
    assert!(snapshot(&outside).is_empty());
}

#[test]
fn apply_refuses_linked_config_files_and_backup_dir() {
    let (tmp, _, set) = generated("set");
    for rel in ["repository/conf/carbon.xml", ".apim-pki-backup"] {
        let home = tmp.path().join(format!("home-{}", rel.replace('/', "_")));
        fresh_home(&home);
        let link = home.join(rel);
        let outside = tmp
            .path()
            .join(format!("outside-{}", rel.replace('/', "_")));
        if link.exists() {
            std::fs::rename(&link, &outside).expect("move");
        } else {
            std::fs::create_dir_all(&outside).expect("mkdir");
        }
        std::os::unix::fs::symlink(&outside, &link).expect("symlink");
        let before = contents(&outside);
        let r = run(
            &apply_args(&set, "gw1", &home)
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
            &[],
        );
        assert_link_refused(&r, &link);
        assert!(link.is_symlink(), "{rel}: the link was replaced");
        let after = contents(&outside);
        assert_eq!(after, before, "{rel}: written through the link");
        assert!(leftovers(&home).is_empty(), "{:?}", leftovers(&home));
    }
}

/// Runs apim-pki with `args` under umask 000.
fn with_umask_000(args: &[&str]) -> Run {
    let mut cmd = apim_pki();
    cmd.args(args);
    // SAFETY: umask(2) is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            libc::umask(0);
            Ok(())
        });
    }
    Run::from(cmd.output().expect("runs"))
}

#[test]
fn umask_000_leaves_directories_0700() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let topo = write_topology(tmp.path(), TOPOLOGY);
    let out = tmp.path().join("new/out");
    let r = with_umask_000(&["generate", s(&topo), "--out", s(&out)]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let rot = with_umask_000(&["rotate", s(&topo), "--out", s(&out), "--node", "gw1"]);
    assert_eq!(rot.code, 0, "{}", rot.stderr);
    let mut bad = Vec::new();
    let mut dirs = vec![tmp.path().join("new")];
    while let Some(d) = dirs.pop() {
        let mode = std::fs::metadata(&d).expect("meta").permissions().mode() & 0o7777;
        if mode != 0o700 {
            bad.push(format!("{} is {mode:o}", d.display()));
        }
        for e in std::fs::read_dir(&d).expect("read").flatten() {
            let path = e.path();
            let mode = e.metadata().expect("meta").permissions().mode() & 0o7777;
            if e.file_type().expect("type").is_dir() {
                dirs.push(path);
            } else if mode & 0o022 != 0 {
                bad.push(format!("{} is {mode:o}", path.display()));
            } else if (path.extension().is_some_and(|x| x == "jks" || x == "key")
                || path.ends_with("secrets.toml"))
                && mode != 0o600
            {
                bad.push(format!(
                    "{} holds a key or password and is {mode:o}",
                    path.display()
                ));
            }
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

// ---------------------------------------------------------------------------------------------
// Crash safety: kill -9 at file replacements
// ---------------------------------------------------------------------------------------------

/// One interruptible command, and the state it starts from.
#[derive(Clone, Copy, Debug)]
enum Scenario {
    GenerateNew,
    GenerateChange,
    RotateNode,
    RotateLoadBalancer,
    RotatePrimaryCert,
    RotateAll,
    CaBegin,
    CaFinish,
    CaRetire,
    Apply,
}

const ALL: [Scenario; 10] = [
    Scenario::GenerateNew,
    Scenario::GenerateChange,
    Scenario::RotateNode,
    Scenario::RotateLoadBalancer,
    Scenario::RotatePrimaryCert,
    Scenario::RotateAll,
    Scenario::CaBegin,
    Scenario::CaFinish,
    Scenario::CaRetire,
    Scenario::Apply,
];

struct Bench {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    topo: PathBuf,
    /// The last good state (a set, or for apply a home) each kill starts from.
    base: PathBuf,
    /// apply: the set it installs.
    set: PathBuf,
    stage_before: String,
}

impl Scenario {
    fn prepare(self) -> Bench {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path().to_path_buf();
        let topo = write_topology(&root, TOPOLOGY);
        let base = root.join("base");
        let set = root.join("set");
        let t = s(&topo).to_string();
        let b = s(&base).to_string();
        let rotate = |extra: &[&str]| {
            let mut args = vec!["rotate", &t, "--out", &b];
            args.extend(extra);
            let r = run(&args, &[]);
            assert_eq!(r.code, 0, "{args:?}: {}", r.stderr);
        };
        match self {
            Scenario::GenerateNew => {}
            Scenario::Apply => {
                generate(&topo, &set, &[]);
                fresh_home(&base);
            }
            _ => {
                generate(&topo, &base, &[]);
            }
        }
        match self {
            Scenario::CaFinish => rotate(&["--ca", "begin"]),
            Scenario::CaRetire => {
                rotate(&["--ca", "begin"]);
                rotate(&["--ca", "finish"]);
            }
            Scenario::GenerateChange => {
                let grown = format!(
                    "{TOPOLOGY}\n[[node]]\nname = \"gw3\"\nprofile = \"gateway-worker\"\nhost = \"gw3.crash.internal\"\n\n[[load_balancer]]\nhost = \"pub.lb.crash.internal\"\nfronts = \"publisher\"\n"
                );
                write_topology(&root, &grown);
            }
            _ => {}
        }
        let stage_before = ca_stage(&base);
        Bench {
            _tmp: tmp,
            root,
            topo,
            base,
            set,
            stage_before,
        }
    }

    fn args(self, bench: &Bench, target: &Path) -> Vec<String> {
        let t = s(&bench.topo);
        let o = s(target);
        let rotate = |extra: &[&str]| {
            let mut v = strings(&["rotate", t, "--out", o]);
            v.extend(strings(extra));
            v
        };
        match self {
            Scenario::GenerateNew | Scenario::GenerateChange => {
                strings(&["generate", t, "--out", o])
            }
            Scenario::RotateNode => rotate(&["--node", "gw1"]),
            Scenario::RotateLoadBalancer => rotate(&["--load-balancer", "gw.lb.crash.internal"]),
            Scenario::RotatePrimaryCert => rotate(&["--primary-cert"]),
            Scenario::RotateAll => rotate(&[]),
            Scenario::CaBegin => rotate(&["--ca", "begin"]),
            Scenario::CaFinish => rotate(&["--ca", "finish"]),
            Scenario::CaRetire => rotate(&["--ca", "retire"]),
            Scenario::Apply => apply_args(&bench.set, "gw1", target),
        }
    }

    fn is_ca_step(self) -> bool {
        matches!(
            self,
            Scenario::CaBegin | Scenario::CaFinish | Scenario::CaRetire
        )
    }
}

fn output_of(args: &[String], env: &[(&str, String)]) -> Output {
    spawn(args, env).wait_with_output().expect("wait")
}

fn run_args(args: &[String]) -> Run {
    Run::from(output_of(args, &[]))
}

/// Kills the command right before its `n`th file replacement on a copy of the last good state,
/// then checks the recovery. Returns false when the command finished before replacing `n`
/// files (nothing left to interrupt).
fn kill_at(scenario: Scenario, bench: &Bench, n: u64) -> Result<bool, String> {
    let target = bench.root.join(format!("kill-{n}"));
    if bench.base.exists() {
        copy_tree(&bench.base, &target);
    }
    let passwords = |dir: &Path| {
        let mut p = set_passwords(dir);
        p.extend(set_passwords(&bench.set));
        p.push(Password::new(FIXTURE_PASSWORD.into()));
        p
    };
    let keys_before = public_keys(&target, &passwords(&target));
    let args = scenario.args(bench, &target);
    let killed = output_of(&args, &[("APIM_PKI_TEST_KILL_AT", n.to_string())]);
    if killed.status.signal() != Some(libc::SIGKILL) {
        let r = Run::from(killed);
        let _ = std::fs::remove_dir_all(&target);
        return if r.code == 0 {
            Ok(false)
        } else {
            Err(format!(
                "{scenario:?} at {n}: exit {}: {}",
                r.code, r.stderr
            ))
        };
    }
    let fail = |what: String| {
        Err(format!(
            "{scenario:?}, killed before replacement {n}: {what}"
        ))
    };
    // The next run completes or rolls back.
    let recovery = if matches!(scenario, Scenario::Apply) {
        run_args(&args)
    } else {
        run(&["generate", s(&bench.topo), "--out", s(&target)], &[])
    };
    if recovery.code != 0 {
        return fail(format!("the re-run failed: {}", recovery.stderr));
    }
    let left = leftovers(&target);
    if !left.is_empty() {
        return fail(format!("left behind: {left:?}"));
    }
    let keys_after = public_keys(&target, &passwords(&target));
    let lost = keys_before.difference(&keys_after).count();
    if lost > 0 {
        return fail(format!("{lost} keys that existed before are gone"));
    }
    if matches!(scenario, Scenario::Apply) {
        let second = run_args(&args);
        let v: serde_json::Value = serde_json::from_str(&second.stdout).unwrap_or_default();
        if second.code != 0 || !v["backup"].is_null() {
            return fail(format!(
                "a second apply is not a no-op: {}{}",
                second.stdout, second.stderr
            ));
        }
        for file in ["wso2carbon.jks", "gw1-tls.jks"] {
            let ours = std::fs::read(
                bench
                    .set
                    .join("nodes/gw1/repository/resources/security")
                    .join(file),
            );
            let theirs = std::fs::read(target.join("repository/resources/security").join(file));
            if ours.ok() != theirs.ok() {
                return fail(format!("{file} in the home is not the set's"));
            }
        }
    } else {
        if let Err(e) = verify_ok(&target) {
            return fail(e);
        }
        // The interrupted command itself can run again (a CA step that already took effect
        // is refused as done, rightly).
        let advanced = scenario.is_ca_step() && ca_stage(&target) != bench.stage_before;
        if !advanced {
            let again = run_args(&args);
            if again.code != 0 {
                return fail(format!("re-running the command failed: {}", again.stderr));
            }
            if let Err(e) = verify_ok(&target) {
                return fail(e);
            }
        }
    }
    let _ = std::fs::remove_dir_all(&target);
    Ok(true)
}

/// The steps of the journal `scenario` writes, as (op, target): the command killed right
/// after writing its journal (before replacement 2) leaves it in place. Step `i` (0-based) is
/// file replacement `i + 2`; removing the journal is replacement `steps + 2`.
fn journal_steps(scenario: Scenario, bench: &Bench) -> Vec<(String, String)> {
    let target = bench.root.join("journal-probe");
    if bench.base.exists() {
        copy_tree(&bench.base, &target);
    }
    let killed = output_of(
        &scenario.args(bench, &target),
        &[("APIM_PKI_TEST_KILL_AT", "2".into())],
    );
    assert_eq!(
        killed.status.signal(),
        Some(libc::SIGKILL),
        "{scenario:?}: not killed at 2"
    );
    let journal = [".journal", ".apim-pki-backup/.journal"]
        .iter()
        .find_map(|j| std::fs::read(target.join(j)).ok())
        .expect("the journal is in place");
    let ops: Vec<serde_json::Value> = serde_json::from_slice(&journal).expect("journal JSON");
    let _ = std::fs::remove_dir_all(&target);
    ops.iter()
        .map(|op| {
            let to = op["to"]
                .as_str()
                .or(op["path"].as_str())
                .unwrap_or_default();
            (
                op["op"].as_str().unwrap_or_default().to_string(),
                to.to_string(),
            )
        })
        .collect()
}

/// The kill point right before the journal step that replaces `to`.
fn before_replacing(steps: &[(String, String)], to: &str) -> u64 {
    let i = steps
        .iter()
        .position(|(op, t)| op == "replace" && t == to)
        .unwrap_or_else(|| panic!("no replacement of {to} in {steps:?}"));
    i as u64 + 2
}

type Pick<'a> = &'a dyn Fn(&[(String, String)]) -> Vec<u64>;

/// Kills `scenario` at the points `pick` chooses from its journal (or at every replacement
/// until the command completes) and returns how many kill points were checked.
fn sweep(scenario: Scenario, pick: Option<Pick>) -> usize {
    let bench = scenario.prepare();
    let mut checked = 0;
    let mut failures = Vec::new();
    let all: Vec<u64> = match pick {
        Some(pick) => pick(&journal_steps(scenario, &bench)),
        None => (1..10_000).collect(),
    };
    for n in all {
        match kill_at(scenario, &bench, n) {
            Ok(true) => checked += 1,
            // The command completed before replacement n: nothing left to interrupt.
            Ok(false) => break,
            Err(e) => failures.push(e),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(
        checked >= 2,
        "{scenario:?}: only {checked} kill points reached"
    );
    checked
}

#[test]
fn killed_first_generate_is_completed_by_the_next_run() {
    // Before the journal is in place (nothing committed); after ca/ca.key, before ca/ca.crt
    // (issue 8 item 4); before removing the journal (every file in place).
    sweep(
        Scenario::GenerateNew,
        Some(&|steps| {
            vec![
                1,
                before_replacing(steps, "ca/ca.crt"),
                steps.len() as u64 + 2,
            ]
        }),
    );
}

#[test]
fn killed_rotate_ca_finish_never_leaves_a_mismatched_ca() {
    // The new CA key is in place, its certificate not yet; then mid-way through the leaves.
    sweep(
        Scenario::CaFinish,
        Some(&|steps| {
            vec![
                before_replacing(steps, "ca/ca.crt"),
                before_replacing(steps, GW1_TLS),
            ]
        }),
    );
}

#[test]
fn killed_rotate_of_a_load_balancer_leaves_a_matching_pair() {
    // Between the load balancer's tls.key and tls.crt, whichever comes second.
    let lb = "load-balancers/gw.lb.crash.internal";
    sweep(
        Scenario::RotateLoadBalancer,
        Some(&|steps| {
            let key = before_replacing(steps, &format!("{lb}/tls.key"));
            let crt = before_replacing(steps, &format!("{lb}/tls.crt"));
            vec![2, key.max(crt)]
        }),
    );
}

#[test]
fn killed_apply_is_completed_by_the_next_apply() {
    // While backing up, and between two installed files.
    sweep(
        Scenario::Apply,
        Some(&|steps| {
            vec![
                3,
                before_replacing(steps, "repository/resources/security/gw1-tls.jks"),
            ]
        }),
    );
}

/// A set with a pending journal: plan says to complete it, verify reports `interrupted-write`;
/// the next generate completes it.
#[test]
fn plan_on_an_interrupted_set_says_to_complete_it() {
    let bench = Scenario::RotateNode.prepare();
    let target = &bench.base;
    let before = public_keys(target, &set_passwords(target));
    let killed = output_of(
        &Scenario::RotateNode.args(&bench, target),
        &[("APIM_PKI_TEST_KILL_AT", "3".into())],
    );
    assert_eq!(killed.status.signal(), Some(libc::SIGKILL));
    assert!(target.join(".journal").exists());
    let plan = run(&["plan", s(&bench.topo), "--out", s(target)], &[]);
    assert_eq!(plan.code, 2, "{}{}", plan.stdout, plan.stderr);
    assert!(
        plan.stderr.contains(".journal") && plan.stderr.contains("interrupted"),
        "{}",
        plan.stderr
    );
    let v = run(&["verify", s(target)], &[]);
    assert_eq!(v.code, 1, "{}{}", v.stdout, v.stderr);
    assert!(v.stdout.contains("interrupted-write"), "{}", v.stdout);
    let r = generate(&bench.topo, target, &[]);
    assert!(
        r.stderr
            .contains("completed the writes of an interrupted run"),
        "{}",
        r.stderr
    );
    assert!(leftovers(target).is_empty(), "{:?}", leftovers(target));
    verify_ok(target).expect("verifies");
    let after = public_keys(target, &set_passwords(target));
    assert!(before.is_subset(&after), "a key was lost");
    let gw1 = std::fs::read(target.join(GW1_TLS)).expect("gw1's keystore");
    let key = set_passwords(target)
        .iter()
        .find_map(|p| Keystore::decode(&gw1, p).ok())
        .and_then(|(store, _)| match store.key_entries().next() {
            Some(Entry::PrivateKey { pkcs8, .. }) => Key::from_pkcs8_der(pkcs8, "gw1").ok(),
            _ => None,
        })
        .expect("gw1's key");
    assert!(
        !before.contains(&key.public_key_der()),
        "the committed rotation was not completed"
    );
}

/// A tmpfs mounted for the duration of a test (needs root; unmounted on drop).
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path) -> Option<Tmpfs> {
        std::fs::create_dir_all(at).expect("mkdir");
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=4m", "tmpfs", s(at)])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|st| st.success());
        ok.then(|| Tmpfs(at.to_path_buf()))
    }

    fn resize(&self, kb: u64) {
        let st = std::process::Command::new("mount")
            .args(["-o", &format!("remount,size={kb}k"), s(&self.0)])
            .status()
            .expect("mount");
        assert!(st.success(), "remount");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

fn used_kb(dir: &Path) -> u64 {
    let out = std::process::Command::new("du")
        .args(["-sk", s(dir)])
        .output()
        .expect("du");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .expect("du output")
}

/// A full disk (ENOSPC) at any point of a rotate: exit 2 naming the file, the set unchanged or
/// its commit pending, no key lost; once space is back, the next run completes and verifies.
#[test]
#[cfg_attr(
    not(apim_pki_root),
    ignore = "needs root (the full-disk case mounts a tmpfs); .ci/run installs it all"
)]
fn a_full_disk_during_rotate_loses_nothing_and_the_next_run_completes() {
    let (tmp, topo, base) = generated("base");
    let Some(fs) = Tmpfs::mount(&tmp.path().join("small")) else {
        crate::util::java::missing_tool("a tmpfs mount (the full-disk test needs root)");
    };
    let out = fs.0.join("out");
    let passwords = set_passwords(&base);
    let before = public_keys(&base, &passwords);
    let (mut refused, mut pending) = (0, 0);
    // tmpfs counts whole pages: the rotation stages 15 files (about 90k), then copies 14 to
    // history/ (about 60k). 40k fills up while staging, 110k while copying (after the commit
    // point), 400k is enough.
    for extra in [40, 110, 400] {
        fs.resize(4096);
        let _ = std::fs::remove_dir_all(&out);
        copy_tree(&base, &out);
        fs.resize(used_kb(&fs.0) + extra);
        let r = run(&["rotate", s(&topo), "--out", s(&out)], &[]);
        if r.code == 0 {
            break;
        }
        assert_eq!(r.code, 2, "{}", r.stderr);
        assert!(r.stderr.contains("No space left"), "{}", r.stderr);
        refused += 1;
        pending += usize::from(out.join(".journal").exists());
        let kept = public_keys(&out, &passwords);
        assert!(before.is_subset(&kept), "extra {extra}k: a key was lost");
        fs.resize(4096);
        let again = run(&["generate", s(&topo), "--out", s(&out)], &[]);
        assert_eq!(again.code, 0, "extra {extra}k: {}", again.stderr);
        assert!(leftovers(&out).is_empty(), "{:?}", leftovers(&out));
        verify_ok(&out).expect("verifies after the disk filled");
    }
    eprintln!("note: {refused} full-disk refusals, {pending} of them after the commit point");
    assert_eq!(refused, 2, "the disk did not fill twice");
    assert_eq!(pending, 1, "no full disk after the commit point");
}

/// The exhaustive sweep: every replacement of every scenario (minutes; run by
/// scripts/crash-sweep.sh).
#[test]
#[ignore = "minutes: the exhaustive crash sweep (scripts/crash-sweep.sh runs it)"]
fn crash_sweep_every_replacement() {
    let only = std::env::var("CRASH_SWEEP_ONLY").unwrap_or_default();
    let mut total = 0;
    for scenario in ALL {
        if !only.is_empty() && !format!("{scenario:?}").eq_ignore_ascii_case(&only) {
            continue;
        }
        let started = Instant::now();
        let n = sweep(scenario, None);
        eprintln!(
            "crash-sweep: {scenario:?}: {n} kill points, each recovered, verified, no key lost ({:.1}s)",
            started.elapsed().as_secs_f64()
        );
        assert!(n > 0, "{scenario:?}: no kill point");
        total += n;
    }
    eprintln!("crash-sweep: {total} kill points in all");
}
