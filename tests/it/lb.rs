//! Load-balancer configurations (issue 15): `nginx -t` and `haproxy -c` accept every generated
//! configuration of several topologies, and nginx and HAProxy started with them, in front of
//! JSSE servers that serve each node's own keystore, are reached by a Java client that trusts
//! the set's truststore (HTTPS host-name check on), re-encrypt with per-node verification
//! (swapped node certificates are refused), keep a client with the affinity cookie on one node
//! and spread clients without it.
//!
//! Host names stay as the topology says: the configurations' backend addresses and listen ports
//! are remapped to loopback ports by `remap` (test-only), and the Java client resolves the
//! load-balancer hosts through its own `jdk.net.hosts.file`.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::util::{cli, java};

/// A child process killed (and reaped) when dropped: no server outlives its test.
struct Guard {
    child: Child,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(mut cmd: Command, what: &str) -> Guard {
    let child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    Guard { child }
}

/// Starts a helper with piped stdin and stdout: the process (killed on drop), its stdin, and
/// its stdout's lines as they come.
fn spawn_piped(mut cmd: Command, what: &str) -> (Guard, ChildStdin, mpsc::Receiver<String>) {
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped());
    let mut guard = spawn(cmd, what);
    let stdin = guard.child.stdin.take().expect("piped stdin");
    let stdout = guard.child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (guard, stdin, rx)
}

/// nginx or haproxy: on PATH, else where Debian puts them (/usr/sbin is not on every user's PATH).
fn tool(name: &str) -> PathBuf {
    java::which(name).unwrap_or_else(|| Path::new("/usr/sbin").join(name))
}

fn tools_present() -> bool {
    java::require(tool("nginx").to_str().unwrap())
        && java::require(tool("haproxy").to_str().unwrap())
}

/// Topologies the configuration checks run on: every product, HA everywhere, offsets, an IPv6
/// node, a 3.2 `store` load balancer, every affinity, custom cookie and file paths.
fn topologies(set: &Path) -> Vec<(&'static str, String)> {
    let dir = |host: &str| set.join("load-balancers").join(host).display().to_string();
    let head = |product: &str| {
        // JKS: quick to write in a debug build; the format does not change the configurations.
        format!("name = \"t\"\nproduct = \"{product}\"\n[pki]\nkey = \"ecdsa-p256\"\n[keystores]\nformat = \"jks\"\n")
    };
    let node = |name: &str, profile: &str, offset: u16| {
        format!("[[node]]\nname = \"{name}\"\nprofile = \"{profile}\"\nhost = \"{name}.nodes.test\"\noffset = {offset}\n")
    };
    let lb = |host: &str, fronts: &str, extra: &str| {
        format!("[[load_balancer]]\nhost = \"{host}\"\nfronts = \"{fronts}\"\ncert_dir = \"{}\"\n{extra}", dir(host))
    };
    let v26 = [
        head("apim-2.6"),
        node("km1", "key-manager", 0),
        node("km2", "key-manager", 1),
        node("pub1", "publisher", 0),
        node("pub2", "publisher", 2),
        node("store1", "store", 0),
        node("store2", "store", 0),
        node("tm1", "traffic-manager", 0),
        node("gw1", "gateway-worker", 0),
        node("gw2", "gateway-worker", 5),
        lb("km.lb.test", "key-manager", "affinity = \"source\"\n"),
        lb(
            "pub.lb.test",
            "publisher",
            "affinity_cookie = \"PUBROUTE\"\n",
        ),
        lb("store.lb.test", "store", ""),
        lb("gw.lb.test", "gateway-worker", ""),
    ]
    .concat();
    let v32 = [
        head("apim-3.2"),
        node("km1", "key-manager", 0),
        node("pub1", "publisher", 0),
        node("dp1", "devportal", 0),
        node("dp2", "devportal", 0),
        node("tm1", "traffic-manager", 0),
        node("tm2", "traffic-manager", 0),
        node("gw1", "gateway-worker", 0),
        node("gw2", "gateway-worker", 0),
        node("gw3", "gateway-worker", 0),
        lb("store.lb.test", "store", ""),
        lb("tm.lb.test", "traffic-manager", ""),
        lb("gw.lb.test", "gateway-worker", "affinity = \"cookie\"\n"),
        lb("km.lb.test", "key-manager", ""),
    ]
    .concat();
    let v4x = [
        head("apim-4.x"),
        node("cp1", "control-plane", 0),
        node("cp2", "control-plane", 0),
        node("tm1", "traffic-manager", 0),
        node("gw1", "gateway-worker", 0),
        node("gw2", "gateway-worker", 0),
        "[[node]]\nname = \"km1\"\nprofile = \"key-manager\"\nhost = \"fd00::11\"\n".to_string(),
        node("km2", "key-manager", 0),
        lb("cp.lb.test", "control-plane", ""),
        lb("gw.lb.test", "gateway-worker", ""),
        lb("km.lb.test", "key-manager", "affinity = \"none\"\n"),
    ]
    .concat();
    vec![("apim-2.6", v26), ("apim-3.2", v32), ("apim-4.x", v4x)]
}

/// Rewrites a generated configuration for a loopback test: every `from` → `to` (backend
/// addresses `host:port`, listen ports), each of which must occur.
fn remap(text: &str, pairs: &[(String, String)]) -> String {
    let mut out = text.to_string();
    for (from, to) in pairs {
        assert!(
            out.contains(from.as_str()),
            "remap: `{from}` is not in the configuration:\n{text}"
        );
        out = out.replace(from.as_str(), to);
    }
    out
}

/// Every `server` address of an nginx or HAProxy configuration, mapped to 127.0.0.1 on the same
/// port (nginx and HAProxy resolve backend names when they load a configuration).
fn loopback_backends(text: &str) -> Vec<(String, String)> {
    let mut seen = BTreeSet::new();
    for line in text.lines().map(str::trim) {
        let Some(rest) = line.strip_prefix("server ") else {
            continue;
        };
        if rest.starts_with('{') {
            continue; // an nginx server block
        }
        let words: Vec<&str> = rest.trim_end_matches(';').split_whitespace().collect();
        let addr = if line.ends_with(';') {
            words[0]
        } else {
            words[1]
        };
        seen.insert(addr.to_string());
    }
    seen.into_iter()
        .map(|a| {
            let port = a.rsplit(':').next().unwrap().to_string();
            (a, format!("127.0.0.1:{port}"))
        })
        .collect()
}

fn nginx_main(dir: &Path, includes: &[PathBuf], daemon_off: bool) -> PathBuf {
    let temp = |name: &str| {
        let p = dir.join(name);
        std::fs::create_dir_all(&p).unwrap();
        p.display().to_string()
    };
    let mut text = format!(
        "pid {};\nerror_log {} info;\n{}events {{ worker_connections 256; }}\nhttp {{\n    access_log off;\n    variables_hash_max_size 2048;\n    client_body_temp_path {};\n    proxy_temp_path {};\n    fastcgi_temp_path {};\n    uwsgi_temp_path {};\n    scgi_temp_path {};\n",
        dir.join("nginx.pid").display(),
        dir.join("error.log").display(),
        if daemon_off { "daemon off;\nmaster_process off;\n" } else { "" },
        temp("body"), temp("proxy"), temp("fastcgi"), temp("uwsgi"), temp("scgi"),
    );
    for inc in includes {
        text.push_str(&format!("    include {};\n", inc.display()));
    }
    text.push_str("}\n");
    let path = dir.join("main.conf");
    std::fs::write(&path, text).unwrap();
    path
}

fn check(cmd: &mut Command, what: &str) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    assert!(
        out.status.success(),
        "{what} refused the generated configuration:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
#[cfg_attr(
    not(all(apim_pki_nginx, apim_pki_haproxy)),
    ignore = "needs nginx (apt-get install nginx); haproxy (apt-get install haproxy); .ci/run installs it all"
)]
fn nginx_t_and_haproxy_c_accept_every_generated_configuration() {
    if !tools_present() {
        return;
    }
    for (label, _) in topologies(Path::new("/")) {
        let tmp = tempfile::tempdir().unwrap();
        let set = tmp.path().join("set");
        let text = topologies(&set)
            .into_iter()
            .find(|(l, _)| *l == label)
            .unwrap()
            .1;
        let topo = cli::write_topology(tmp.path(), &text);
        cli::generate(&topo, &set, &[]);
        assert_eq!(
            verify_codes(&set),
            (0, vec![]),
            "{label}: verify reads its configurations back clean"
        );
        let mut includes = Vec::new();
        let mut cfgs = Vec::new();
        let lbs: Vec<PathBuf> = std::fs::read_dir(set.join("load-balancers"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert!(
            lbs.len() >= 3,
            "{label}: every load balancer has a directory"
        );
        for lb in &lbs {
            let host = lb.file_name().unwrap().to_string_lossy().to_string();
            for (file, list) in [("nginx.conf", &mut includes), ("haproxy.cfg", &mut cfgs)] {
                let text = std::fs::read_to_string(lb.join(file))
                    .unwrap_or_else(|e| panic!("{label}: {host}/{file}: {e}"));
                let path = tmp.path().join(format!("{host}.{file}"));
                std::fs::write(&path, remap(&text, &loopback_backends(&text))).unwrap();
                list.push(path);
            }
        }
        // Every load balancer of the set in one nginx: their names do not collide.
        let main = nginx_main(tmp.path(), &includes, false);
        check(
            Command::new(tool("nginx"))
                .args(["-t", "-q", "-e", "stderr", "-c"])
                .arg(&main),
            &format!("nginx -t ({label})"),
        );
        for cfg in &cfgs {
            check(
                Command::new(tool("haproxy"))
                    .arg("-c")
                    .arg("-q")
                    .arg("-f")
                    .arg(cfg),
                &format!("haproxy -c ({label}, {})", cfg.display()),
            );
        }
    }
}

/// Stand-in nodes: one `HttpServe` JVM serving each node's own keystore (or another's).
struct Backends {
    _guard: Guard,
    _stdin: ChildStdin,
    /// Per group, its ports (HTTPS first).
    ports: Vec<Vec<u16>>,
}

fn start_backends(password: &str, groups: &[(&str, PathBuf, usize, usize)]) -> Backends {
    let mut cmd = Command::new(java::jdk17_java());
    cmd.arg("-cp")
        .arg(java::helpers_dir())
        .args(["HttpServe", "JKS", "APIM_PKI_TEST_SERVE_PASS"]);
    for (body, keystore, https, http) in groups {
        cmd.arg(keystore)
            .arg(body)
            .args([https.to_string(), http.to_string()]);
    }
    cmd.env("APIM_PKI_TEST_SERVE_PASS", password)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let (guard, stdin, rx) = spawn_piped(cmd, "HttpServe");
    let ports = groups
        .iter()
        .map(|(_, _, https, http)| {
            let line = rx
                .recv_timeout(Duration::from_secs(60))
                .expect("HttpServe prints its ports within 60 s");
            let ports: Vec<u16> = line
                .strip_prefix("PORTS")
                .unwrap_or_else(|| panic!("HttpServe: {line:?}"))
                .split_whitespace()
                .map(|p| p.parse().unwrap())
                .collect();
            assert_eq!(ports.len(), https + http);
            ports
        })
        .collect();
    Backends {
        _guard: guard,
        _stdin: stdin,
        ports,
    }
}

/// A loopback port nothing listens on now and that this process has not handed out before
/// (two listeners of one test on the same port would mix a TLS and a plain frontend).
fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<BTreeSet<u16>> = std::sync::Mutex::new(BTreeSet::new());
    let mut given = GIVEN.lock().unwrap();
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if given.insert(port) {
            return port;
        }
    }
}

fn wait_listening(ports: &[u16], what: &str, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(15);
    for port in ports {
        while TcpStream::connect(("127.0.0.1", *port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "{what} does not listen on {port}: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The Java client: one JVM, one request per line.
struct Fetch {
    _guard: Guard,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
}

impl Fetch {
    fn start(hosts: &Path, truststore: &Path, password: &str) -> Fetch {
        let mut cmd = Command::new(java::jdk17_java());
        cmd.arg(format!("-Djdk.net.hosts.file={}", hosts.display()))
            .arg("-cp")
            .arg(java::helpers_dir())
            .arg("HttpFetch")
            .arg(truststore)
            .args(["JKS", "APIM_PKI_TEST_TS_PASS"])
            .env("APIM_PKI_TEST_TS_PASS", password)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let (guard, stdin, lines) = spawn_piped(cmd, "HttpFetch");
        Fetch {
            _guard: guard,
            stdin,
            lines,
        }
    }

    /// `(status, body, set-cookie)` of one GET.
    fn get(&mut self, url: &str, cookie: Option<&str>) -> (String, String, String) {
        writeln!(self.stdin, "{url} {}", cookie.unwrap_or("")).unwrap();
        self.stdin.flush().unwrap();
        let line = self
            .lines
            .recv_timeout(Duration::from_secs(30))
            .expect("HttpFetch answers within 30 s");
        let mut w = line.splitn(3, ' ').map(str::to_string);
        let (a, b, c) = (
            w.next().unwrap_or_default(),
            w.next().unwrap_or_default(),
            w.next().unwrap_or_default(),
        );
        (a, b, c)
    }
}

const NODE_PASS_NOTE: &str = "node TLS keystores use the generated tls password";

fn e2e_topology(set: &Path) -> String {
    let dir = |host: &str| set.join("load-balancers").join(host).display().to_string();
    // JKS: quick to write in a debug build (PKCS#12's PBKDF2 is not).
    let mut t = String::from("name = \"e2e\"\nproduct = \"apim-4.x\"\n[pki]\nkey = \"ecdsa-p256\"\n[keystores]\nformat = \"jks\"\n");
    for (name, profile) in [
        ("cp1", "control-plane"),
        ("cp2", "control-plane"),
        ("gw1", "gateway-worker"),
        ("gw2", "gateway-worker"),
        ("tm1", "traffic-manager"),
    ] {
        t.push_str(&format!(
            "[[node]]\nname = \"{name}\"\nprofile = \"{profile}\"\nhost = \"{name}.nodes.test\"\n"
        ));
    }
    for (host, fronts) in [
        ("cp.lb.test", "control-plane"),
        ("gw.lb.test", "gateway-worker"),
    ] {
        t.push_str(&format!(
            "[[load_balancer]]\nhost = \"{host}\"\nfronts = \"{fronts}\"\ncert_dir = \"{}\"\n",
            dir(host)
        ));
    }
    t
}

/// The gateway's load-balanced ports (4.x), HTTPS first, in HttpServe's port order.
const GW_HTTPS: [u16; 4] = [9443, 8243, 8099, 8021];
const GW_HTTP: [u16; 3] = [8280, 9099, 9021];

/// One load balancer's remapping: node `host:port` → loopback backend port, listen port → LB port.
struct Wiring {
    backends: Vec<(String, u16, u16)>,
    listens: Vec<(u16, bool, u16)>,
}

impl Wiring {
    fn nginx(&self, text: &str) -> String {
        let mut pairs = Vec::new();
        for (host, port, to) in &self.backends {
            pairs.push((
                format!("server {host}:{port};"),
                format!("server 127.0.0.1:{to};"),
            ));
        }
        for (port, tls, to) in &self.listens {
            let ssl = if *tls { " ssl" } else { "" };
            pairs.push((
                format!("listen {port}{ssl};"),
                format!("listen 127.0.0.1:{to}{ssl};"),
            ));
        }
        remap(text, &pairs)
    }

    fn haproxy(&self, text: &str) -> String {
        let mut pairs = Vec::new();
        for (host, port, to) in &self.backends {
            pairs.push((format!(" {host}:{port}"), format!(" 127.0.0.1:{to}")));
        }
        for (port, tls, to) in &self.listens {
            let end = if *tls { " " } else { "\n" };
            pairs.push((
                format!("bind :{port}{end}"),
                format!("bind 127.0.0.1:{to}{end}"),
            ));
        }
        remap(text, &pairs)
    }
}

fn start_nginx(dir: &Path, confs: &[(String, String)]) -> Guard {
    std::fs::create_dir_all(dir).unwrap();
    let includes: Vec<PathBuf> = confs
        .iter()
        .map(|(name, text)| {
            let p = dir.join(name);
            std::fs::write(&p, text).unwrap();
            p
        })
        .collect();
    let main = nginx_main(dir, &includes, true);
    let mut cmd = Command::new(tool("nginx"));
    cmd.args(["-e", "stderr", "-c"])
        .arg(&main)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    spawn(cmd, "nginx")
}

fn start_haproxy(dir: &Path, confs: &[(String, String)]) -> Guard {
    std::fs::create_dir_all(dir).unwrap();
    let mut cmd = Command::new(tool("haproxy"));
    cmd.arg("-db");
    for (name, text) in confs {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        cmd.arg("-f").arg(p);
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(
            std::fs::File::create(dir.join("error.log")).unwrap(),
        ));
    spawn(cmd, "haproxy")
}

/// Requests without a cookie: all answered by the set's nodes, more than one of them. Up to 48
/// requests, stopping once two nodes answered: under load a balancer may take a slow node out
/// for a while (its health check or `max_fails`), which is not what this checks.
fn spreads(fetch: &mut Fetch, url: &str, nodes: &[&str]) -> String {
    let mut seen = BTreeSet::new();
    let mut cookie = String::new();
    for i in 0..48 {
        if seen.len() >= 2 && i >= 12 {
            break;
        }
        if i > 0 && i % 12 == 0 {
            std::thread::sleep(std::time::Duration::from_secs(1));
        }
        let (status, body, set) = fetch.get(url, None);
        assert_eq!(status, "200", "{url}: {status} {body}");
        assert!(nodes.contains(&body.as_str()), "{url} answered by {body}");
        if cookie.is_empty() && set != "-" {
            cookie = format!("{set}|{body}");
        }
        seen.insert(body);
    }
    assert!(seen.len() >= 2, "{url}: every request went to {seen:?}");
    cookie
}

#[test]
#[cfg_attr(
    not(all(apim_pki_jdk17, apim_pki_nginx, apim_pki_haproxy)),
    ignore = "needs JDK 17: java, javac and keytool on PATH (apt-get install openjdk-17-jdk-headless); nginx (apt-get install nginx); haproxy (apt-get install haproxy); .ci/run installs it all"
)]
fn nginx_and_haproxy_reencrypt_verify_and_stick_in_front_of_jsse_nodes() {
    if !tools_present() || !java::require("javac") || !java::require("java") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let set = tmp.path().join("set");
    let topo = cli::write_topology(tmp.path(), &e2e_topology(&set));
    cli::generate(&topo, &set, &[]);
    let secrets = cli::secrets(&set);
    let tls_pass = secrets.get("tls").expect(NODE_PASS_NOTE).clone();
    let keystore = |node: &str| {
        set.join(format!(
            "nodes/{node}/repository/resources/security/{node}-tls.jks"
        ))
    };
    let lb_file = |host: &str, f: &str| {
        std::fs::read_to_string(set.join("load-balancers").join(host).join(f)).unwrap()
    };

    // Nodes (and two impostors serving the other control plane's certificate), in parallel.
    let specs: Vec<(&str, PathBuf, usize, usize)> = vec![
        ("cp1", keystore("cp1"), 1, 0),
        ("cp2", keystore("cp2"), 1, 0),
        ("gw1", keystore("gw1"), GW_HTTPS.len(), GW_HTTP.len()),
        ("gw2", keystore("gw2"), GW_HTTPS.len(), GW_HTTP.len()),
        ("cp1", keystore("cp2"), 1, 0),
        ("cp2", keystore("cp1"), 1, 0),
    ];
    let servers = start_backends(&tls_pass, &specs);
    let backends = &servers.ports;
    let cp_wiring = |first: usize| Wiring {
        backends: vec![
            ("cp1.nodes.test".into(), 9443, backends[first][0]),
            ("cp2.nodes.test".into(), 9443, backends[first + 1][0]),
        ],
        listens: vec![(9443, true, free_port())],
    };
    let gw_wiring = || {
        let all: Vec<(u16, bool)> = GW_HTTPS
            .iter()
            .map(|p| (*p, true))
            .chain(GW_HTTP.iter().map(|p| (*p, false)))
            .collect();
        let mut backends_ = Vec::new();
        for (i, node) in ["gw1", "gw2"].iter().enumerate() {
            for (j, (port, _)) in all.iter().enumerate() {
                backends_.push((format!("{node}.nodes.test"), *port, backends[2 + i][j]));
            }
        }
        Wiring {
            backends: backends_,
            listens: all.iter().map(|(p, tls)| (*p, *tls, free_port())).collect(),
        }
    };

    let hosts = tmp.path().join("hosts");
    std::fs::write(&hosts, "127.0.0.1 cp.lb.test gw.lb.test\n").unwrap();
    let truststore = set.join("nodes/cp1/repository/resources/security/client-truststore.jks");
    let mut fetch = Fetch::start(&hosts, &truststore, &secrets["truststore"]);

    for kind in ["nginx", "haproxy"] {
        let (cp, gw, bad) = (cp_wiring(0), gw_wiring(), cp_wiring(4));
        let file = if kind == "nginx" {
            "nginx.conf"
        } else {
            "haproxy.cfg"
        };
        let render = |w: &Wiring, text: &str| {
            if kind == "nginx" {
                w.nginx(text)
            } else {
                w.haproxy(text)
            }
        };
        let good = vec![
            (
                format!("cp.{file}"),
                render(&cp, &lb_file("cp.lb.test", file)),
            ),
            (
                format!("gw.{file}"),
                render(&gw, &lb_file("gw.lb.test", file)),
            ),
        ];
        let swapped = vec![(
            format!("cp.{file}"),
            render(&bad, &lb_file("cp.lb.test", file)),
        )];
        // cp2 down (nothing listens where it should be): pinned clients move to cp1.
        let mut down = cp_wiring(0);
        down.backends[1].2 = free_port();
        let down_conf = vec![(
            format!("cp.{file}"),
            render(&down, &lb_file("cp.lb.test", file)),
        )];
        let start = if kind == "nginx" {
            start_nginx
        } else {
            start_haproxy
        };
        let dir_a = tmp.path().join(format!("{kind}-a"));
        let dir_b = tmp.path().join(format!("{kind}-b"));
        let _a = start(&dir_a, &good);
        let _b = start(&dir_b, &swapped);
        let _c = start(&tmp.path().join(format!("{kind}-c")), &down_conf);
        let ports: Vec<u16> = cp
            .listens
            .iter()
            .chain(&gw.listens)
            .chain(&bad.listens)
            .chain(&down.listens)
            .map(|l| l.2)
            .collect();
        wait_listening(&ports, kind, &dir_a.join("error.log"));

        // The control plane: spread without the cookie, stuck with it.
        let cp_url = format!("https://cp.lb.test:{}/publisher", cp.listens[0].2);
        let first = spreads(&mut fetch, &cp_url, &["cp1", "cp2"]);
        let (cookie, node) = first
            .split_once('|')
            .unwrap_or_else(|| panic!("{kind}: no affinity cookie set"));
        assert!(cookie.starts_with("APIMLB="), "{kind}: {cookie}");
        for _ in 0..10 {
            let (status, body, _) = fetch.get(&cp_url, Some(cookie));
            assert_eq!(
                (status.as_str(), body.as_str()),
                ("200", node),
                "{kind}: {cookie} must stay on {node}"
            );
        }
        // Every gateway port, TLS or not: no cookie, spread over both nodes.
        // (the spread is measured on 8243 and 8280; every other port must answer from a node).
        for (port, tls, lb_port) in &gw.listens {
            let scheme = if *tls { "https" } else { "http" };
            let url = format!("{scheme}://gw.lb.test:{lb_port}/");
            if [8243, 8280].contains(port) {
                let cookie = spreads(&mut fetch, &url, &["gw1", "gw2"]);
                assert!(
                    cookie.is_empty(),
                    "{kind} {port}: no affinity on the gateway, got {cookie}"
                );
            } else {
                let (status, body, set) = fetch.get(&url, None);
                assert_eq!(status, "200", "{kind} {url}: {status} {body} {set}");
                assert!(
                    ["gw1", "gw2"].contains(&body.as_str()) && set == "-",
                    "{kind} {url}: {body} {set}"
                );
            }
        }
        // Swapped node certificates: each is a valid certificate of the set, with the load
        // balancer's name in it, but not the node's own: refused.
        let (status, body, _) =
            fetch.get(&format!("https://cp.lb.test:{}/", bad.listens[0].2), None);
        assert!(status == "502" || status == "503", "{kind}: a node serving another node's certificate must be refused, got {status} {body}");
        // Passive (nginx: retry on the next node) or active (HAProxy: redispatch) failover.
        let down_url = format!("https://cp.lb.test:{}/", down.listens[0].2);
        for _ in 0..3 {
            let (status, body, set) = fetch.get(&down_url, Some("APIMLB=cp2"));
            assert_eq!(
                (status.as_str(), body.as_str()),
                ("200", "cp1"),
                "{kind}: a client pinned to a dead node must reach the other ({set})"
            );
        }
    }
    drop(fetch);
    drop(servers);
}

/// A small 2.6 set with publisher and key-manager load balancers (JKS, P-256: quick).
fn small_set(tmp: &Path) -> (PathBuf, PathBuf) {
    let set = tmp.join("set");
    let mut t = String::from("name = \"v\"\nproduct = \"apim-2.6\"\n[pki]\nkey = \"ecdsa-p256\"\n");
    for (name, profile) in [
        ("km1", "key-manager"),
        ("km2", "key-manager"),
        ("pub1", "publisher"),
        ("pub2", "publisher"),
        ("store1", "store"),
        ("tm1", "traffic-manager"),
        ("gw1", "gateway-worker"),
    ] {
        t.push_str(&format!(
            "[[node]]\nname = \"{name}\"\nprofile = \"{profile}\"\nhost = \"{name}.nodes.test\"\n"
        ));
    }
    t.push_str("[[load_balancer]]\nhost = \"km.lb.test\"\nfronts = \"key-manager\"\n");
    t.push_str("[[load_balancer]]\nhost = \"pub.lb.test\"\nfronts = \"publisher\"\n");
    let topo = cli::write_topology(tmp, &t);
    cli::generate(&topo, &set, &[]);
    (topo, set)
}

/// `verify --format json`: exit code and finding codes.
fn verify_codes(set: &Path) -> (i32, Vec<String>) {
    let r = cli::run(&["verify", set.to_str().unwrap(), "--format", "json"], &[]);
    let json: serde_json::Value = serde_json::from_str(&r.stdout)
        .unwrap_or_else(|e| panic!("verify json: {e}\n{}{}", r.stdout, r.stderr));
    let codes = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap().to_string())
        .collect();
    (r.code, codes)
}

fn edit(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{}: no `{from}`", path.display());
    std::fs::write(path, text.replacen(from, to, 1)).unwrap();
}

#[test]
fn verify_reads_the_configurations_back() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, set) = small_set(tmp.path());
    assert_eq!(verify_codes(&set), (0, vec![]), "a fresh set is clean");
    let lbs = set.join("load-balancers");
    let cases: Vec<(&str, PathBuf, &str, &str)> = vec![
        (
            "lb-backend-missing",
            lbs.join("pub.lb.test/nginx.conf"),
            "server pub2.nodes.test:9443;",
            "server pub3.nodes.test:9443;",
        ),
        (
            "lb-backend-missing",
            lbs.join("km.lb.test/haproxy.cfg"),
            "server km1 km1.nodes.test:9443",
            "server km1 km1.nodes.test:9444",
        ),
        (
            "lb-name-uncovered",
            lbs.join("pub.lb.test/nginx.conf"),
            "    pub1 pub1.nodes.test;",
            "    pub1 pub2.nodes.test;",
        ),
        (
            "lb-name-uncovered",
            lbs.join("km.lb.test/haproxy.cfg"),
            "verifyhost km2.nodes.test",
            "verifyhost km1.nodes.test",
        ),
        (
            "lb-foreign-trust",
            lbs.join("pub.lb.test/haproxy.cfg"),
            "ca-file /etc/apim-pki/pub.lb.test/ca.crt",
            "ca-file /etc/ssl/certs/ca-certificates.crt",
        ),
        (
            "lb-verify-off",
            lbs.join("km.lb.test/nginx.conf"),
            "proxy_ssl_verify on;",
            "proxy_ssl_verify off;",
        ),
        (
            "corrupt-file",
            lbs.join("km.lb.test/nginx.conf"),
            "upstream",
            "upstream {",
        ),
    ];
    for (code, file, from, to) in cases {
        let saved = std::fs::read(&file).unwrap();
        edit(&file, from, to);
        let (exit, codes) = verify_codes(&set);
        assert_eq!(exit, 1, "{code}: {codes:?}");
        assert!(
            codes.iter().all(|c| c == code),
            "{} `{from}` → `{to}`: want only {code}, got {codes:?}",
            file.display()
        );
        assert!(
            !codes.is_empty(),
            "{}: `{from}` → `{to}` not found",
            file.display()
        );
        std::fs::write(&file, saved).unwrap();
    }
    // A CA bundle with a CA from outside the set; then one without the set's CA.
    let bundle = lbs.join("pub.lb.test/ca.crt");
    let saved = std::fs::read(&bundle).unwrap();
    // The key manager load balancer's own certificate (the first of its chain): not a CA.
    let chain = std::fs::read_to_string(set.join("load-balancers/km.lb.test/tls.crt")).unwrap();
    let end = "-----END CERTIFICATE-----\n";
    let foreign = chain.as_bytes()[..chain.find(end).unwrap() + end.len()].to_vec();
    std::fs::write(&bundle, [saved.clone(), foreign.clone()].concat()).unwrap();
    assert_eq!(
        verify_codes(&set),
        (1, vec!["lb-foreign-trust".to_string()])
    );
    std::fs::write(&bundle, &foreign).unwrap();
    let (_, codes) = verify_codes(&set);
    assert!(
        codes.contains(&"truststore-missing-ca".to_string()),
        "{codes:?}"
    );
    std::fs::write(&bundle, saved).unwrap();
    std::fs::remove_file(lbs.join("km.lb.test/haproxy.cfg")).unwrap();
    assert_eq!(verify_codes(&set), (1, vec!["missing-file".to_string()]));
}

#[test]
fn rotation_and_ca_rollover_keep_the_configurations_right() {
    let tmp = tempfile::tempdir().unwrap();
    let (topo, set) = small_set(tmp.path());
    let conf = |f: &str| std::fs::read(set.join("load-balancers/pub.lb.test").join(f)).unwrap();
    let configs = (conf("nginx.conf"), conf("haproxy.cfg"));
    let ca_count = || {
        let text = String::from_utf8(conf("ca.crt")).unwrap();
        text.matches("BEGIN CERTIFICATE").count()
    };
    assert_eq!(ca_count(), 1);
    let rotate = |args: &[&str]| {
        let mut all = vec![
            "rotate",
            topo.to_str().unwrap(),
            "--out",
            set.to_str().unwrap(),
        ];
        all.extend_from_slice(args);
        let r = cli::run(&all, &[]);
        assert_eq!(r.code, 0, "rotate {args:?}: {}{}", r.stdout, r.stderr);
    };
    // Stages: the bundle the configurations name follows them; the configurations stay.
    for (step, cas) in [("begin", 2), ("finish", 2), ("retire", 1)] {
        rotate(&["--ca", step]);
        assert_eq!(ca_count(), cas, "after --ca {step}");
        assert_eq!(
            std::fs::read(set.join("load-balancers/pub.lb.test/ca.crt")).unwrap(),
            std::fs::read(set.join("ca/bundle.crt")).unwrap()
        );
        assert_eq!(
            (conf("nginx.conf"), conf("haproxy.cfg")),
            configs,
            "after --ca {step}"
        );
        assert_eq!(verify_codes(&set), (0, vec![]), "after --ca {step}");
    }
    rotate(&["--load-balancer", "pub.lb.test", "--node", "pub1"]);
    assert_eq!((conf("nginx.conf"), conf("haproxy.cfg")), configs);
    assert_eq!(verify_codes(&set), (0, vec![]));
}
