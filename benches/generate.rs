//! `cargo bench --bench generate`: how fast `apim-pki generate` is, against
//! what it cannot beat and against what operators do by hand.
//!
//! - floor: 18 RSA-2048 key generations (what `examples/ha.toml` needs: CA,
//!   primary, 11 nodes, 5 load balancers) spread over all cores with rayon and
//!   nothing else;
//! - `apim-pki generate examples/ha.toml` into a fresh empty directory;
//! - `scripts/bench/keytool-ha.sh` and `scripts/bench/openssl-ha.sh`, the
//!   keytool-only and openssl-only baselines for the same 11 nodes (no load
//!   balancers, so 13 RSA-2048 keys);
//! - 1,000- and 3,000-node topologies (ecdsa-p256, jks): wall time and peak RSS (targets:
//!   < 3 s each, < 200 MB and < 300 MB).
//!
//! RSA key generation is very noisy (it searches for primes), so every figure
//! is a median of several runs. `BENCH_QUICK=1` runs each once and skips
//! keytool (a smoke test). The binary measured is the one cargo builds for
//! this bench (bench profile = release: `target/release/apim-pki`), or the one
//! named by `APIM_PKI_BENCH_BIN`.
//!
//! Run without cargo's `--bench` flag (`cargo test --benches`, `cargo test
//! --all-targets`) it does nothing unless `BENCH_QUICK=1` is set, so that test
//! runs are not slowed down by it.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use aws_lc_rs::rsa::{KeyPair, KeySize};
use rayon::prelude::*;

/// The binary cargo built for this bench; `APIM_PKI_BENCH_BIN` overrides it
/// (to measure another build, e.g. a saved copy, against the same baselines).
const CARGO_BIN: &str = env!("CARGO_BIN_EXE_apim-pki");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");
/// The password variables of examples/ha.toml and of the 1,000-node topology:
/// removed from the children's environment so that passwords are generated.
const PASSWORD_VARS: [&str; 3] = [
    "APIM_PRIMARY_PASSWORD",
    "APIM_TLS_PASSWORD",
    "APIM_TRUSTSTORE_PASSWORD",
];
const HA_RSA_KEYS: usize = 18;
/// The big topologies: node count and the peak-RSS target in MB (generate < 3 s for both).
const BIG_NODES: [(usize, f64); 2] = [(1000, 200.0), (3000, 300.0)];
const BIG_PROFILES: [&str; 5] = [
    "key-manager",
    "publisher",
    "store",
    "traffic-manager",
    "gateway-worker",
];

struct Config {
    quick: bool,
    floor_reps: usize,
    generate_reps: usize,
    keytool_reps: usize,
    openssl_reps: usize,
    big_reps: usize,
}

/// Several timings of one thing.
#[derive(Default)]
struct Sample(Vec<Duration>);

impl Sample {
    fn median(&self) -> Option<Duration> {
        let mut v = self.0.clone();
        v.sort();
        match v.len() {
            0 => None,
            n if n % 2 == 1 => Some(v[n / 2]),
            n => Some((v[n / 2 - 1] + v[n / 2]) / 2),
        }
    }

    fn spread(&self) -> String {
        match (self.0.iter().min(), self.0.iter().max()) {
            (Some(lo), Some(hi)) if self.0.len() > 1 => {
                format!("{:.2}..{:.2}", lo.as_secs_f64(), hi.as_secs_f64())
            }
            _ => String::new(),
        }
    }
}

/// One line of the results table: a sample, or why there is none.
struct Row {
    label: String,
    sample: Sample,
    note: Option<String>,
}

impl Row {
    fn median_secs(&self) -> Option<f64> {
        self.sample.median().map(|d| d.as_secs_f64())
    }
}

fn main() {
    let quick = std::env::var("BENCH_QUICK").is_ok_and(|v| v == "1");
    let benching = std::env::args().any(|a| a == "--bench");
    if !benching && !quick {
        println!(
            "generate bench: skipped (run `cargo bench --bench generate`, or set BENCH_QUICK=1)"
        );
        return;
    }
    let cfg = if quick {
        Config {
            quick,
            floor_reps: 1,
            generate_reps: 1,
            keytool_reps: 0,
            openssl_reps: 1,
            big_reps: 1,
        }
    } else {
        Config {
            quick,
            floor_reps: 7,
            generate_reps: 7,
            keytool_reps: 2,
            openssl_reps: 3,
            big_reps: 3,
        }
    };
    let bin = std::env::var_os("APIM_PKI_BENCH_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(CARGO_BIN));
    let bin = bin.as_path();
    let root = Path::new(ROOT);
    let load_start = load_average();
    let threads = rayon::current_num_threads();
    eprintln!(
        "generate bench: {} cores, binary {}{}",
        threads,
        bin.display(),
        if cfg.quick { ", BENCH_QUICK=1" } else { "" }
    );

    // Floor.
    eprintln!(
        "floor: {HA_RSA_KEYS} RSA-2048 keys on {threads} threads x{}",
        cfg.floor_reps
    );
    // Warm-up: starts rayon's pool and touches aws-lc's code once.
    KeyPair::generate(KeySize::Rsa2048).expect("RSA-2048 key generation");
    let floor = Row {
        label: format!("floor: {HA_RSA_KEYS} RSA-2048 keygens, rayon"),
        sample: Sample(
            (0..cfg.floor_reps)
                .map(|_| {
                    let t = Instant::now();
                    (0..HA_RSA_KEYS).into_par_iter().for_each(|_| {
                        KeyPair::generate(KeySize::Rsa2048).expect("RSA-2048 key generation");
                    });
                    t.elapsed()
                })
                .collect(),
        ),
        note: None,
    };

    // apim-pki generate examples/ha.toml.
    let ha = root.join("examples/ha.toml");
    eprintln!("apim-pki generate {} x{}", ha.display(), cfg.generate_reps);
    let generate = time_runs(
        "apim-pki generate ha.toml (18 RSA-2048)",
        cfg.generate_reps,
        |out| apim_generate(bin, &ha, out),
    );

    // Baselines.
    let keytool = if cfg.keytool_reps == 0 {
        skipped(
            "keytool-ha.sh (13 RSA-2048, serial)",
            "skipped (BENCH_QUICK=1)",
        )
    } else if !on_path("keytool") {
        skipped(
            "keytool-ha.sh (13 RSA-2048, serial)",
            "skipped: keytool not found",
        )
    } else {
        eprintln!("scripts/bench/keytool-ha.sh x{} (slow)", cfg.keytool_reps);
        let script = root.join("scripts/bench/keytool-ha.sh");
        time_runs(
            "keytool-ha.sh (13 RSA-2048, serial)",
            cfg.keytool_reps,
            |out| run_script(&script, out),
        )
    };
    let openssl = if !on_path("openssl") {
        skipped(
            "openssl-ha.sh (13 RSA-2048, serial)",
            "skipped: openssl not found",
        )
    } else {
        eprintln!("scripts/bench/openssl-ha.sh x{}", cfg.openssl_reps);
        let script = root.join("scripts/bench/openssl-ha.sh");
        time_runs(
            "openssl-ha.sh (13 RSA-2048, serial)",
            cfg.openssl_reps,
            |out| run_script(&script, out),
        )
    };

    // 1,000 and 3,000 nodes: time and peak RSS.
    let gnu_time = Path::new("/usr/bin/time");
    let gnu_time = gnu_time.is_file().then_some(gnu_time);
    let bigs: Vec<Big> = BIG_NODES
        .iter()
        .map(|&(nodes, max_mb)| big_run(bin, nodes, max_mb, cfg.big_reps, gnu_time))
        .collect();
    println!(
        "\n1-min load average at start {}, at end {} (above ~0.5 the figures are noisy)",
        load_start.as_deref().unwrap_or("n/a"),
        load_average().as_deref().unwrap_or("n/a")
    );
    print_report(&floor, &generate, &keytool, &openssl, &bigs, threads);
    let failed = [&generate, &keytool, &openssl]
        .into_iter()
        .chain(bigs.iter().map(|b| &b.row))
        .any(|r| r.note.as_deref().is_some_and(|n| n.starts_with("FAILED")));
    // Now delete every run's output.
    if let Ok(mut kept) = KEPT.lock() {
        kept.clear();
    }
    if failed {
        std::process::exit(1);
    }
}

/// The 1-minute load average (Linux), to tell a quiet run from a busy one.
fn load_average() -> Option<String> {
    let s = std::fs::read_to_string("/proc/loadavg").ok()?;
    s.split_whitespace().next().map(str::to_owned)
}

fn skipped(label: &str, why: &str) -> Row {
    Row {
        label: label.to_owned(),
        sample: Sample::default(),
        note: Some(why.to_owned()),
    }
}

/// Outputs of every run, deleted when the bench ends.
static KEPT: std::sync::Mutex<Vec<tempfile::TempDir>> = std::sync::Mutex::new(Vec::new());

/// A run's output directory.
struct Dir(std::path::PathBuf);

impl Dir {
    fn path(&self) -> &Path {
        &self.0
    }
}

/// Runs `f` `reps` times, each time into a fresh empty directory, and times it.
/// The first failure ends the series; the row then says why.
fn time_runs(label: &str, reps: usize, mut f: impl FnMut(&Path) -> Result<(), String>) -> Row {
    let mut sample = Sample::default();
    let mut note = None;
    for _ in 0..reps {
        let dir = tempfile::tempdir().expect("temp dir");
        // Deleting a big tree makes the filesystem busy for a while (ext4 discards): keep every
        // output until the whole bench is done, so no run pays for the previous one's cleanup.
        let dir = KEPT
            .lock()
            .map(|mut kept| {
                kept.push(dir);
                kept.last()
                    .map(|d| d.path().to_path_buf())
                    .unwrap_or_default()
            })
            .expect("bench dirs");
        let dir = Dir(dir);
        let t = Instant::now();
        let result = f(dir.path());
        let elapsed = t.elapsed();
        let result = result.and_then(|()| expect_keystores(dir.path()));
        match result {
            Ok(()) => sample.0.push(elapsed),
            Err(e) => {
                eprintln!("{label}: FAILED: {e}");
                note = Some("FAILED (see above)".to_owned());
                break;
            }
        }
    }
    Row {
        label: label.to_owned(),
        sample,
        note,
    }
}

/// A run that exited 0 must have left at least one keystore (`*.jks` or
/// `*.p12`) behind: a stub binary would otherwise look very fast.
fn expect_keystores(dir: &Path) -> Result<(), String> {
    fn count(dir: &Path) -> usize {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return 0;
        };
        entries
            .flatten()
            .map(|e| {
                let path = e.path();
                if path.is_dir() {
                    count(&path)
                } else {
                    usize::from(matches!(
                        path.extension().and_then(|x| x.to_str()),
                        Some("jks" | "p12")
                    ))
                }
            })
            .sum()
    }
    match count(dir) {
        0 => Err(format!(
            "exited 0 but wrote no keystore in {}",
            dir.display()
        )),
        _ => Ok(()),
    }
}

fn apim_command(bin: &Path, topology: &Path, out: &Path) -> Command {
    let mut cmd = Command::new(bin);
    cmd.arg("generate").arg(topology).arg("--out").arg(out);
    for var in PASSWORD_VARS {
        cmd.env_remove(var);
    }
    cmd.current_dir(ROOT).stdin(Stdio::null());
    cmd
}

fn apim_generate(bin: &Path, topology: &Path, out: &Path) -> Result<(), String> {
    let what = bin.display().to_string();
    let output = apim_command(bin, topology, out)
        .output()
        .map_err(|e| format!("cannot run {what}: {e}"))?;
    check(&output, &what)
}

/// Runs `apim-pki generate`, under GNU time when there is one, and returns its
/// peak RSS in KiB: from `/usr/bin/time -v`, or else from the child's VmHWM
/// polled in /proc (Linux), or None.
fn apim_generate_rss(
    bin: &Path,
    topology: &Path,
    out: &Path,
    gnu_time: Option<&Path>,
) -> Result<Option<u64>, String> {
    let what = bin.display().to_string();
    if let Some(time) = gnu_time {
        let inner = apim_command(bin, topology, out);
        let mut cmd = Command::new(time);
        cmd.arg("-v")
            .arg(inner.get_program())
            .args(inner.get_args());
        for var in PASSWORD_VARS {
            cmd.env_remove(var);
        }
        let output = cmd
            .current_dir(ROOT)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run {}: {e}", time.display()))?;
        check(&output, &what)?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Ok(stderr.lines().find_map(|l| {
            l.trim()
                .strip_prefix("Maximum resident set size (kbytes):")
                .and_then(|v| v.trim().parse().ok())
        }));
    }
    let mut child = apim_command(bin, topology, out)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {what}: {e}"))?;
    let status_file = PathBuf::from(format!("/proc/{}/status", child.id()));
    let mut hwm = None;
    let status = loop {
        if let Some(kib) = std::fs::read_to_string(&status_file)
            .ok()
            .and_then(|s| vm_hwm(&s))
        {
            hwm = Some(kib);
        }
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            break status;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let output = std::process::Output {
        status,
        stdout: Vec::new(),
        stderr: child
            .stderr
            .take()
            .map(|mut e| {
                let mut v = Vec::new();
                let _ = std::io::Read::read_to_end(&mut e, &mut v);
                v
            })
            .unwrap_or_default(),
    };
    check(&output, &what)?;
    Ok(hwm)
}

fn vm_hwm(status: &str) -> Option<u64> {
    status.lines().find_map(|l| {
        l.strip_prefix("VmHWM:")
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    })
}

fn run_script(script: &Path, out: &Path) -> Result<(), String> {
    let output = Command::new("bash")
        .arg(script)
        .arg(out)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    check(&output, &script.display().to_string())
}

fn check(output: &std::process::Output, what: &str) -> Result<(), String> {
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let tail: Vec<&str> = stderr.lines().rev().take(15).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    Err(format!(
        "{what} exited with {}:\n{}",
        output.status,
        tail.join("\n")
    ))
}

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(tool).is_file()))
}

/// One big topology's generate runs: its row and the peak RSS of its runs.
struct Big {
    nodes: usize,
    row: Row,
    max_rss_kib: Option<u64>,
    max_mb: f64,
}

fn big_run(bin: &Path, nodes: usize, max_mb: f64, reps: usize, gnu_time: Option<&Path>) -> Big {
    let dir = tempfile::tempdir().expect("temp dir");
    let toml = dir.path().join(format!("bench-{nodes}.toml"));
    std::fs::write(&toml, big_topology(nodes)).expect("write the big topology");
    eprintln!("apim-pki generate {nodes} nodes x{reps}");
    let mut max_rss_kib: Option<u64> = None;
    let row = time_runs(
        &format!("apim-pki generate {nodes} nodes (p256, jks)"),
        reps,
        |out| {
            let rss = apim_generate_rss(bin, &toml, out, gnu_time)?;
            if let Some(kib) = rss {
                max_rss_kib = Some(max_rss_kib.map_or(kib, |m| m.max(kib)));
            }
            Ok(())
        },
    );
    if row.note.is_some() {
        max_rss_kib = None;
    }
    Big {
        nodes,
        row,
        max_rss_kib,
        max_mb,
    }
}

/// A topology of `n` nodes spread round-robin over five profiles, with one load
/// balancer per profile (a profile with more than one node needs exactly one).
fn big_topology(n: usize) -> String {
    let mut s = String::from(
        "name = \"bench\"\nproduct = \"apim-2.6\"\n\n\
         [pki]\nkey = \"ecdsa-p256\"\n\n\
         [keystores]\nformat = \"jks\"\n\n\
         [passwords]\n\
         primary = \"APIM_PRIMARY_PASSWORD\"\n\
         tls = \"APIM_TLS_PASSWORD\"\n\
         truststore = \"APIM_TRUSTSTORE_PASSWORD\"\n",
    );
    for i in 1..=n {
        let profile = BIG_PROFILES[(i - 1) % BIG_PROFILES.len()];
        let _ = write!(
            s,
            "\n[[node]]\nname = \"n{i:04}\"\nprofile = \"{profile}\"\nhost = \"n{i:04}.bench.internal\"\n"
        );
    }
    for profile in BIG_PROFILES {
        let _ = write!(
            s,
            "\n[[load_balancer]]\nhost = \"{profile}.bench.internal\"\nfronts = \"{profile}\"\n"
        );
    }
    s
}

fn print_report(
    floor: &Row,
    generate: &Row,
    keytool: &Row,
    openssl: &Row,
    bigs: &[Big],
    threads: usize,
) {
    println!();
    println!("apim-pki generate benchmark ({threads} cores; seconds, median of n runs)");
    println!("{:<44} {:>9} {:>3}  min..max", "measurement", "median", "n");
    for row in [floor, generate, keytool, openssl]
        .into_iter()
        .chain(bigs.iter().map(|b| &b.row))
    {
        match (row.median_secs(), &row.note) {
            (Some(m), None) => println!(
                "{:<44} {:>8.3}s {:>3}  {}",
                row.label,
                m,
                row.sample.0.len(),
                row.sample.spread()
            ),
            (Some(m), Some(note)) => println!(
                "{:<44} {:>8.3}s {:>3}  {} {note}",
                row.label,
                m,
                row.sample.0.len(),
                row.sample.spread()
            ),
            (None, note) => println!(
                "{:<44} {:>9} {:>3}  {}",
                row.label,
                "n/a",
                0,
                note.as_deref().unwrap_or("")
            ),
        }
    }
    for big in bigs {
        let rss_mb = big.max_rss_kib.map(|k| k as f64 / 1024.0);
        println!(
            "{:<44} {:>9}",
            format!("peak RSS, {} nodes (max of runs)", big.nodes),
            rss_mb.map_or("n/a".to_owned(), |m| format!("{m:.1} MB"))
        );
    }
    println!();
    println!("{:<44} {:>9}  target", "ratio / figure", "value");
    let ratio = |a: &Row, b: &Row| Some(a.median_secs()? / b.median_secs()?);
    let line = |label: &str, value: Option<f64>, unit: &str, target: &str, ok: Option<bool>| {
        let v = value.map_or("n/a".to_owned(), |v| format!("{v:.2}{unit}"));
        let verdict = match ok {
            Some(true) => "  ok",
            Some(false) => "  MISSED",
            None => "",
        };
        println!("{label:<44} {v:>9}  {target}{verdict}");
    };
    let g_f = ratio(generate, floor);
    line(
        "generate / floor",
        g_f,
        "x",
        "<= 1.5",
        g_f.map(|r| r <= 1.5),
    );
    line(
        "keytool / generate",
        ratio(keytool, generate),
        "x",
        "",
        None,
    );
    line(
        "openssl / generate",
        ratio(openssl, generate),
        "x",
        "",
        None,
    );
    for big in bigs {
        let secs = big.row.median_secs();
        line(
            &format!("{}-node generate", big.nodes),
            secs,
            " s",
            "< 3 s",
            secs.map(|s| s < 3.0),
        );
        let rss_mb = big.max_rss_kib.map(|k| k as f64 / 1024.0);
        line(
            &format!("{}-node peak RSS", big.nodes),
            rss_mb,
            " MB",
            &format!("< {:.0} MB", big.max_mb),
            rss_mb.map(|m| m < big.max_mb),
        );
    }
}
