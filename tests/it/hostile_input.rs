//! Hostile input through the CLI (issue 8, items 9 and 11): endless or huge files in every place
//! apim-pki reads one are a clear exit-2 error naming the file and the limit, with memory
//! bounded; huge values are quoted as short excerpts; a stdout that is closed (EPIPE) ends the
//! output quietly with the command's own status, and a full one is an exit-2 error, never a
//! panic.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use crate::util::cli::{apim_pki, generate, run, write_topology, Run};
use crate::util::files::s;

/// A small apim-2.6 set (ECDSA nodes), generated once for the tests that need one.
fn shared_set() -> &'static Path {
    static SET: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &SET.get_or_init(|| {
        let tmp = tempfile::tempdir().expect("tempdir");
        let topo = write_topology(tmp.path(), &small_topology());
        let out = tmp.path().join("set");
        generate(&topo, &out, &[]);
        (tmp, out)
    })
    .1
}

fn small_topology() -> String {
    let mut t =
        String::from("name = \"hostile\"\nproduct = \"apim-2.6\"\n[pki]\nkey = \"ecdsa-p256\"\n");
    for (name, profile) in [
        ("km", "key-manager"),
        ("pub", "publisher"),
        ("store", "store"),
        ("tm", "traffic-manager"),
        ("gw", "gateway-worker"),
    ] {
        t += &format!(
            "[[node]]\nname = \"{name}\"\nprofile = \"{profile}\"\nhost = \"{name}.acme.internal\"\n"
        );
    }
    t
}

/// A sparse file of `len` bytes: huge on paper, no disk used.
fn sparse(dir: &Path, name: &str, len: u64) -> PathBuf {
    let path = dir.join(name);
    File::create(&path)
        .and_then(|f| f.set_len(len))
        .expect("sparse file");
    path
}

/// Exit 2, no panic, one `error:` line naming each of `names`, stdout empty.
#[track_caller]
fn assert_refused(r: &Run, names: &[&str]) {
    let ctx = format!(
        "exit {}\nstdout: {}\nstderr: {}",
        r.code, r.stdout, r.stderr
    );
    assert_eq!(r.code, 2, "{ctx}");
    assert!(r.stderr.starts_with("error: "), "{ctx}");
    assert!(!r.stderr.contains("panicked"), "{ctx}");
    assert!(r.stdout.is_empty(), "{ctx}");
    for name in names {
        assert!(r.stderr.contains(name), "must name `{name}`: {ctx}");
    }
}

/// Runs apim-pki with a limit on its address space, so that an unbounded read fails the test
/// instead of the machine.
fn run_bounded(args: &[&str]) -> Run {
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg("ulimit -v 1500000; exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_apim-pki"))
        .args(args)
        .env_remove("APIM_PRIMARY_PASSWORD")
        .env_remove("APIM_TLS_PASSWORD")
        .env_remove("APIM_TRUSTSTORE_PASSWORD");
    cmd.output().expect("apim-pki runs").into()
}

// ---------------------------------------------------------------------------------------------
// Item 9: bounded reads
// ---------------------------------------------------------------------------------------------

#[test]
fn endless_or_huge_topology_is_refused_naming_the_limit() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = tmp.path().join("out");
    let huge = sparse(tmp.path(), "huge.toml", 8 << 30);
    for topo in [Path::new("/dev/zero"), &huge] {
        for cmd in ["plan", "generate", "csr"] {
            let r = run_bounded(&[cmd, s(topo), "--out", s(&out)]);
            assert_refused(&r, &[s(topo), "1 MiB", "topology"]);
        }
    }
    assert!(!out.exists(), "nothing may be written");
}

#[test]
fn endless_or_huge_keystore_and_password_file_are_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let huge = sparse(tmp.path(), "huge.p12", 17 << 20);
    let pw = tmp.path().join("pw");
    std::fs::write(&pw, "changeit\n").expect("write");
    for file in [Path::new("/dev/zero"), &huge] {
        for cmd in ["inspect", "check-host"] {
            let mut args = vec![cmd, s(file)];
            if cmd == "check-host" {
                args.push("km.acme.internal");
            }
            args.extend(["--password-file", s(&pw)]);
            assert_refused(&run_bounded(&args), &[s(file), "16 MiB"]);
        }
    }
    // A real keystore, with an endless password file.
    let ks = shared_set().join("nodes/km/repository/resources/security/km-tls.jks");
    let r = run_bounded(&["inspect", s(&ks), "--password-file", "/dev/zero"]);
    assert_refused(&r, &["/dev/zero", "64 KiB", "password file"]);
}

#[test]
fn endless_ca_files_in_the_topology_are_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let text = small_topology().replace(
        "key = \"ecdsa-p256\"\n",
        "key = \"ecdsa-p256\"\n[pki.ca]\ncert = \"/dev/zero\"\nkey = \"/dev/zero\"\n",
    );
    let topo = write_topology(tmp.path(), &text);
    let out = tmp.path().join("out");
    let r = run_bounded(&["generate", s(&topo), "--out", s(&out)]);
    assert_refused(&r, &["/dev/zero", "16 MiB"]);
    assert!(!out.exists());
}

#[test]
fn endless_connect_file_is_refused() {
    let r = run_bounded(&[
        "verify",
        s(shared_set()),
        "--live",
        "--connect-file",
        "/dev/zero",
    ]);
    assert_refused(&r, &["/dev/zero", "1 MiB", "connect file"]);
    // A 900,000-character line is quoted as an excerpt.
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = tmp.path().join("connect");
    std::fs::write(&file, format!("km:9443={}\n", "9".repeat(900_000))).expect("write");
    let r = run(
        &[
            "verify",
            s(shared_set()),
            "--live",
            "--connect-file",
            s(&file),
        ],
        &[],
    );
    assert_refused(&r, &[s(&file), "line 1"]);
    assert!(r.stderr.len() < 2_000, "{} bytes of stderr", r.stderr.len());
}

#[test]
fn huge_file_in_a_set_is_refused_not_replaced() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let topo = write_topology(tmp.path(), &small_topology());
    let out = tmp.path().join("set");
    generate(&topo, &out, &[]);
    // A keystore grown past the limit must not be taken for a missing one and replaced.
    let rel = "nodes/km/repository/resources/security/km-tls.jks";
    File::options()
        .write(true)
        .open(out.join(rel))
        .and_then(|f| f.set_len(17 << 20))
        .expect("grow");
    let r = run_bounded(&["generate", s(&topo), "--out", s(&out)]);
    assert_refused(&r, &[rel, "16 MiB"]);
    assert_eq!(
        std::fs::metadata(out.join(rel)).expect("kept").len(),
        17 << 20
    );
    // inventory.json and secrets.toml likewise.
    for name in ["inventory.json", "secrets.toml"] {
        let tmp = tempfile::tempdir().expect("tempdir");
        let out = tmp.path().join("set");
        generate(&topo, &out, &[]);
        File::options()
            .append(true)
            .open(out.join(name))
            .and_then(|f| f.set_len(17 << 20))
            .expect("grow");
        assert_refused(
            &run_bounded(&["generate", s(&topo), "--out", s(&out)]),
            &[name, "16 MiB"],
        );
        assert_refused(&run_bounded(&["verify", s(&out)]), &[name, "16 MiB"]);
    }
}

#[test]
fn huge_values_are_quoted_as_short_excerpts() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let value = "x".repeat(900_000);
    let cases = [
        small_topology().replace(
            "host = \"km.acme.internal\"",
            &format!("host = \"{value}\""),
        ),
        small_topology().replace("name = \"km\"", &format!("name = \"{value}\"")),
        small_topology().replace("key = \"ecdsa-p256\"", &format!("key = \"{value}\"")),
        small_topology().replace("key = \"ecdsa-p256\"", &format!("country = \"{value}\"")),
        // Wrong type: the parser's own message quotes the value.
        small_topology().replace(
            "host = \"km.acme.internal\"",
            &format!("host = \"km\"\noffset = \"{value}\""),
        ),
        // An unknown key 900,000 characters long.
        small_topology().replace(
            "host = \"km.acme.internal\"",
            &format!("host = \"km\"\n{value} = 1"),
        ),
    ];
    for (i, text) in cases.iter().enumerate() {
        let topo = write_topology(tmp.path(), text);
        let r = run(
            &["plan", s(&topo), "--out", s(&tmp.path().join("out"))],
            &[],
        );
        assert_refused(&r, &[s(&topo)]);
        assert!(
            r.stderr.len() < 2_000,
            "case {i}: the message must quote an excerpt, not {} bytes: {}…",
            r.stderr.len(),
            &r.stderr[..300]
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Item 11: stdout closed or full
// ---------------------------------------------------------------------------------------------

/// Runs apim-pki with stdout on /dev/full.
fn run_to_full(args: &[&str]) -> Run {
    let mut cmd = apim_pki();
    cmd.args(args).stdout(
        File::options()
            .write(true)
            .open("/dev/full")
            .expect("/dev/full"),
    );
    cmd.output().expect("apim-pki runs").into()
}

/// Runs apim-pki with stdout a pipe whose reader is already gone (EPIPE on the first write).
fn run_to_closed_pipe(args: &[&str]) -> Run {
    let mut child = apim_pki()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    drop(child.stdout.take());
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .expect("read stderr");
    let status = child.wait().expect("wait");
    Run {
        code: status.code().unwrap_or(-1),
        stdout: String::new(),
        stderr,
    }
}

#[test]
fn init_to_a_full_device_is_an_error_not_a_panic() {
    for args in [
        &["init"][..],
        &["init", "--ha"],
        &["--help"],
        &["--version"],
    ] {
        let r = run_to_full(args);
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert!(
            r.stderr.starts_with("error: cannot write to stdout")
                && r.stderr.contains("No space left"),
            "{args:?}: {}",
            r.stderr
        );
    }
}

#[test]
fn init_to_a_closed_pipe_ends_quietly() {
    for _ in 0..20 {
        let r = run_to_closed_pipe(&["init", "--ha"]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert!(r.stderr.is_empty(), "{}", r.stderr);
    }
    // `init | head -1`, as a shell runs it.
    let out = Command::new("/bin/sh")
        .arg("-c")
        .arg("\"$0\" init --ha | head -1")
        .arg(env!("CARGO_BIN_EXE_apim-pki"))
        .output()
        .expect("sh");
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
}

#[test]
fn generate_to_a_closed_pipe_finishes_the_set_and_exits_0() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let topo = write_topology(tmp.path(), &small_topology());
    let out = tmp.path().join("set");
    let r = run_to_closed_pipe(&["generate", s(&topo), "--out", s(&out)]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.is_empty(), "{}", r.stderr);
    let v = run(&["verify", s(&out)], &[]);
    assert_eq!(v.code, 0, "the set is complete: {}", v.stdout);
    // verify keeps its own status (1 on findings) when its reader goes away.
    std::fs::write(out.join("ca/ca.crt"), "garbage").expect("corrupt");
    let r = run_to_closed_pipe(&["verify", s(&out)]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    for format in ["text", "json"] {
        let r = run_to_full(&["verify", s(&out), "--format", format]);
        assert_eq!(r.code, 2, "{}", r.stderr);
        assert!(r.stderr.contains("cannot write to stdout"), "{}", r.stderr);
    }
}

#[test]
fn every_reporting_command_survives_a_closed_or_full_stdout() {
    let set = shared_set();
    let ca = set.join("ca/ca.crt");
    let tmp = tempfile::tempdir().expect("tempdir");
    let topo = write_topology(tmp.path(), &small_topology());
    let plan_out = tmp.path().join("plan-out");
    let commands: Vec<Vec<&str>> = vec![
        vec!["plan", s(&topo), "--out", s(&plan_out)],
        vec!["verify", s(set)],
        vec!["inspect", s(&ca)],
        vec!["check-host", s(&ca), "km.acme.internal"],
        vec!["rotate", s(&topo), "--out", s(set), "--dry-run"],
    ];
    for args in &commands {
        let closed = run_to_closed_pipe(args);
        assert!(
            closed.code == 0 || closed.code == 1,
            "{args:?} to a closed pipe: exit {}: {}",
            closed.code,
            closed.stderr
        );
        assert!(!closed.stderr.contains("panicked"), "{}", closed.stderr);
        let full = run_to_full(args);
        assert_eq!(full.code, 2, "{args:?} to /dev/full: {}", full.stderr);
        assert!(
            full.stderr.contains("cannot write to stdout"),
            "{}",
            full.stderr
        );
    }
}
