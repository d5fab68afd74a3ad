//! Verify benchmark: `verify` on the seed's HA set and on 1,000- and 3,000-node sets, and a
//! `--live` sweep of 1,000 endpoints on loopback (one in-process TLS server answers for every
//! name via `--connect-file`). Run with `cargo bench --bench verify`; prints medians and the
//! targets (HA < 100 ms, 1,000 nodes < 2 s, 3,000 nodes < 2 s, live sweep of 1,000 endpoints
//! < 5 s).

use std::fmt::Write as _;
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_apim-pki");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn run(args: &[&str]) -> (bool, Duration) {
    let t = Instant::now();
    let out = Command::new(BIN)
        .args(args)
        .env_remove("APIM_PRIMARY_PASSWORD")
        .env_remove("APIM_TLS_PASSWORD")
        .env_remove("APIM_TRUSTSTORE_PASSWORD")
        .output()
        .expect("apim-pki runs");
    let took = t.elapsed();
    let code = out.status.code().unwrap_or(-1);
    if code == 2 {
        eprintln!(
            "apim-pki {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    (code != 2, took)
}

fn median(reps: usize, mut f: impl FnMut() -> Duration) -> Duration {
    let mut v: Vec<Duration> = (0..reps).map(|_| f()).collect();
    v.sort();
    v[v.len() / 2]
}

fn big_topology(n: usize) -> String {
    let profiles = [
        "key-manager",
        "publisher",
        "store",
        "traffic-manager",
        "gateway-worker",
    ];
    let mut s = String::from("name = \"bench\"\nproduct = \"apim-2.6\"\n[pki]\nkey = \"ecdsa-p256\"\n[keystores]\nformat = \"jks\"\n");
    for i in 1..=n {
        let _ = write!(
            s,
            "\n[[node]]\nname = \"n{i:04}\"\nprofile = \"{}\"\nhost = \"n{i:04}.bench.internal\"\n",
            profiles[(i - 1) % 5]
        );
    }
    for p in profiles {
        let _ = write!(
            s,
            "\n[[load_balancer]]\nhost = \"{p}.bench.internal\"\nfronts = \"{p}\"\n"
        );
    }
    s
}

/// A TLS server on loopback answering every connection with one self-signed certificate.
fn serve() -> std::net::SocketAddr {
    let cert =
        rcgen::generate_simple_self_signed(vec!["bench.internal".to_string()]).expect("cert");
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(cert.signing_key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocols")
        .with_no_client_auth()
        .with_single_cert(vec![cert.cert.der().clone()], key)
        .expect("server config");
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let config = config.clone();
            std::thread::spawn(move || {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                if let Ok(conn) = rustls::ServerConnection::new(config) {
                    let mut tls = rustls::StreamOwned::new(conn, stream);
                    let mut buf = [0u8; 1];
                    let _ = std::io::Read::read(&mut tls, &mut buf);
                }
            });
        }
    });
    addr
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("verify bench: skipped (run `cargo bench --bench verify`)");
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let ha = tmp.path().join("ha");
    let ha_topology = Path::new(ROOT).join("examples/ha.toml");
    assert!(
        run(&[
            "generate",
            ha_topology.to_str().expect("utf-8"),
            "--out",
            ha.to_str().expect("utf-8")
        ])
        .0
    );
    let ha_time = median(7, || run(&["verify", ha.to_str().expect("utf-8")]).1);

    let big_toml = tmp.path().join("big.toml");
    std::fs::write(&big_toml, big_topology(1000)).expect("write");
    let big = tmp.path().join("big");
    assert!(
        run(&[
            "generate",
            big_toml.to_str().expect("utf-8"),
            "--out",
            big.to_str().expect("utf-8")
        ])
        .0
    );
    let big_time = median(3, || run(&["verify", big.to_str().expect("utf-8")]).1);

    // 3,000 nodes: the cost must grow with the topology, not faster (per-peer checks indexed).
    let huge_toml = tmp.path().join("huge.toml");
    std::fs::write(&huge_toml, big_topology(3000)).expect("write");
    let huge = tmp.path().join("huge");
    assert!(
        run(&[
            "generate",
            huge_toml.to_str().expect("utf-8"),
            "--out",
            huge.to_str().expect("utf-8")
        ])
        .0
    );
    let huge_time = median(3, || run(&["verify", huge.to_str().expect("utf-8")]).1);

    // Live: every endpoint of the set (cli.md) sent to one loopback server.
    let set = apim_pki::OpenedSet::open(&big).expect("open the set");
    let targets = apim_pki::live_targets(&set);
    let addr = serve();
    let lines: String = targets
        .iter()
        .map(|t| format!("{}:{}={addr}\n", t.host, t.port))
        .collect();
    let connect = tmp.path().join("connect.txt");
    std::fs::write(&connect, &lines).expect("write");
    let live_time = median(3, || {
        run(&[
            "verify",
            big.to_str().expect("utf-8"),
            "--live",
            "--connect-file",
            connect.to_str().expect("utf-8"),
            "--timeout",
            "3",
        ])
        .1
    });

    println!("\napim-pki verify benchmark (2 cores; median wall time)");
    println!("{:<58}{:>10}  target", "measurement", "median");
    let row = |label: &str, d: Duration, target: Duration| {
        let ok = if d <= target { "ok" } else { "MISSED" };
        println!(
            "{label:<58}{:>9.3}s  < {:.1} s  {ok}",
            d.as_secs_f64(),
            target.as_secs_f64()
        );
    };
    row(
        "verify seed HA set (11 nodes, 5 LBs), offline",
        ha_time,
        Duration::from_millis(100),
    );
    row(
        "verify 1,000-node set, offline",
        big_time,
        Duration::from_secs(2),
    );
    row(
        "verify 3,000-node set, offline",
        huge_time,
        Duration::from_secs(2),
    );
    row(
        &format!(
            "verify 1,000-node set --live ({} endpoints, loopback)",
            targets.len()
        ),
        live_time,
        Duration::from_secs(5),
    );
    println!("(the --live figure includes the offline checks)");
}
