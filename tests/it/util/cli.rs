//! Running the built `apim-pki` binary the way a user does, and reading what it made.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A `Command` for the built binary, with no password variables inherited.
pub fn apim_pki() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_apim-pki"));
    for var in [
        "APIM_PRIMARY_PASSWORD",
        "APIM_TLS_PASSWORD",
        "APIM_TRUSTSTORE_PASSWORD",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

/// What a finished command printed, and its exit code.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Run {
    /// The JSON document of a `--format json` command that exited 0; else the exit code and
    /// what it printed.
    pub fn ok_json(&self) -> Result<serde_json::Value, String> {
        if self.code != 0 {
            return Err(format!(
                "exit {}: {}{}",
                self.code, self.stdout, self.stderr
            ));
        }
        serde_json::from_str(&self.stdout)
            .map_err(|e| format!("report is not JSON ({e}): {}", self.stdout))
    }

    /// The exit code and the JSON document of a `--format json` command that ran to a verdict
    /// (exit 0 or 1); panics with its output (naming `what` ran) otherwise.
    #[track_caller]
    pub fn json(&self, what: &str) -> (i32, serde_json::Value) {
        assert!(
            self.code == 0 || self.code == 1,
            "{what} could not run (exit {}):\nstdout: {}\nstderr: {}",
            self.code,
            self.stdout,
            self.stderr
        );
        let json = serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("{what} printed no JSON ({e}):\n{}", self.stdout));
        (self.code, json)
    }
}

/// Runs `apim-pki ARGS` with extra environment variables.
pub fn run(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = apim_pki();
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("apim-pki runs").into()
}

/// `apim-pki apply SET --node NODE --apim-home HOME ARGS...` with extra environment variables.
pub fn apply(set: &Path, node: &str, home: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut all = vec![
        "apply",
        set.to_str().expect("utf-8 path"),
        "--node",
        node,
        "--apim-home",
        home.to_str().expect("utf-8 path"),
    ];
    all.extend_from_slice(args);
    run(&all, env)
}

/// `apim-pki plan TOPOLOGY --out OUT --format json`: the exit code and the plan (see
/// [`Run::json`]).
#[track_caller]
pub fn plan_json(topology: &Path, out: &Path) -> (i32, serde_json::Value) {
    let args = [
        "plan",
        topology.to_str().expect("utf-8 path"),
        "--out",
        out.to_str().expect("utf-8 path"),
        "--format",
        "json",
    ];
    run(&args, &[]).json("plan")
}

/// `apim-pki verify SET --apim-home HOME --node NODE --format json`: the exit code and the
/// report (see [`Run::json`]).
#[track_caller]
pub fn verify_home(set: &Path, node: &str, home: &Path) -> (i32, serde_json::Value) {
    let args = [
        "verify",
        set.to_str().expect("utf-8 path"),
        "--apim-home",
        home.to_str().expect("utf-8 path"),
        "--node",
        node,
        "--format",
        "json",
    ];
    run(&args, &[]).json("verify --apim-home")
}

/// Writes `text` as `topology.toml` in `dir` and returns its path.
pub fn write_topology(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("topology.toml");
    std::fs::write(&path, text).expect("write topology");
    path
}

/// `generate TOPOLOGY --out OUT`; panics with the output unless it exits 0.
pub fn generate(topology: &Path, out: &Path, env: &[(&str, &str)]) -> Run {
    let r = run(
        &[
            "generate",
            topology.to_str().expect("utf-8 path"),
            "--out",
            out.to_str().expect("utf-8 path"),
        ],
        env,
    );
    assert_eq!(
        r.code, 0,
        "generate failed:\nstdout: {}\nstderr: {}",
        r.stdout, r.stderr
    );
    r
}

/// Runs `act`, a command that must be refused: exit 2 and `dir` left exactly as it was (no
/// half-written file). Returns its output for the checks on the message; `what` names the case.
#[track_caller]
pub fn refused_unchanged(dir: &Path, what: &str, act: impl FnOnce() -> Run) -> Run {
    let before = snapshot(dir);
    let r = act();
    assert_eq!(r.code, 2, "{what}: {}{}", r.stdout, r.stderr);
    assert!(
        snapshot(dir) == before,
        "{what}: a refused command changed {}",
        dir.display()
    );
    r
}

/// The generated passwords of a set (secrets.toml), by role.
pub fn secrets(out: &Path) -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(out.join("secrets.toml")).expect("secrets.toml");
    let table: toml::Table = text.parse().expect("secrets.toml parses");
    table
        .into_iter()
        .map(|(k, v)| (k, v.as_str().expect("string").to_string()))
        .collect()
}

/// Every file below `dir` (relative path → bytes), skipping `.lock`.
pub fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).expect("read dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                walk(root, &path, out);
            } else if path.file_name().is_some_and(|n| n != ".lock") {
                let rel = path
                    .strip_prefix(root)
                    .expect("prefix")
                    .to_string_lossy()
                    .into_owned();
                out.insert(rel, std::fs::read(&path).expect("read"));
            }
        }
    }
    let mut out = BTreeMap::new();
    if dir.exists() {
        walk(dir, dir, &mut out);
    }
    out
}

/// The seed's HA example topology.
pub fn ha_example() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/ha.toml"))
        .expect("examples/ha.toml")
}

/// The load balancers of the HA example (examples/ha.toml).
pub const HA_LOAD_BALANCERS: [&str; 5] = [
    "km.acme.internal",
    "publisher.acme.internal",
    "store.acme.internal",
    "tm.acme.internal",
    "gw.acme.internal",
];

/// The minimal example topology.
pub fn minimal_example() -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/minimal.toml"
    ))
    .expect("examples/minimal.toml")
}

/// `topology` with `[secure_vault] enabled = (on)` set (inserted after the top-level keys, so
/// before the first table). Tests of apply's XML values run with the vault off and prove the
/// vault separately: the vault changes how a password is written, not which one.
pub fn with_vault(topology: &str, on: bool) -> String {
    let table = format!("[secure_vault]\nenabled = {on}\n\n");
    let at = topology
        .lines()
        .scan(0, |pos, l| {
            let start = *pos;
            *pos += l.len() + 1;
            Some((start, l))
        })
        .find(|(_, l)| l.trim_start().starts_with('['))
        .map_or(topology.len(), |(start, _)| start);
    format!("{}{table}{}", &topology[..at], &topology[at..])
}
