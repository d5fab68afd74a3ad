//! `apim-pki apply` on API-M 2.6 homes made from tests/fixtures/apim26/ (hand-written files
//! shaped like the product's; the two keystores are made with keytool at test time).
//!
//! For three topologies (every profile on one machine with offsets 0..4; the seed's HA example
//! with a gateway manager; HA gateways on a shared file system with an offset on every node, one
//! key manager and PKCS#12), every node gets a fresh home, then:
//! - `--dry-run` writes nothing and reports the same files as the real run;
//! - every value shared/design/config-2.6.md gives for the node's profile is read back from the
//!   files. The expected values are computed here from the topology, independently of the
//!   node.toml that `generate` wrote;
//! - apply changed nothing it did not report (`check_untouched` explains the method), touched
//!   no other file, and no setting outside the profile's list;
//! - created elements sit right after their commented-out twin, else last in their parent;
//! - files that hold passwords, and every backup, are 0600; no password is ever printed;
//! - a second apply is a no-op, and the backup restores the pristine home byte for byte;
//! - the merged truststore holds the fixture's public CA plus exactly the set's entries;
//! - (both HA topologies) a JSSE client with the node's configured truststore reaches each TLS
//!   peer URL's host served with the peer's configured keystore.
//!
//! Plus: exit 2 and nothing written on a missing file or element, the older DataPublisher
//! layout, WSO2's own `TrustSore` element names in data-agent-config.xml, and a carbon.xml with
//! Latin-1 bytes.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Instant;

use crate::util::cli;
use crate::util::cli::{
    generate, ha_example, refused_unchanged, run, secrets, snapshot, write_topology, Run,
};
use crate::util::files::{copy_tree, decode};
use crate::util::java;
use apim_pki::xml::XmlDoc;
use serde_json::Value;
use sha2::{Digest, Sha256};

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/apim26");
/// The stock password of the fixture's files and keystores.
const FIXTURE_PASSWORD: &str = "wso2carbon";
const SECURITY: &str = "repository/resources/security";
const BACKUP_DIR: &str = ".apim-pki-backup";

const CARBON: &str = "repository/conf/carbon.xml";
const CATALINA: &str = "repository/conf/tomcat/catalina-server.xml";
const AXIS2: &str = "repository/conf/axis2/axis2.xml";
const AXIS2_TM: &str = "repository/conf/axis2/axis2_TM.xml";
const REGISTRY: &str = "repository/conf/registry.xml";
const REGISTRY_TM: &str = "repository/conf/registry_TM.xml";
const API_MANAGER: &str = "repository/conf/api-manager.xml";
const JNDI: &str = "repository/conf/jndi.properties";
const BROKER: &str = "repository/conf/broker.xml";
const DATA_BRIDGE: &str = "repository/conf/data-bridge/data-bridge-config.xml";
const DATA_AGENT: &str = "repository/conf/data-bridge/data-agent-config.xml";
const ENDPOINT_CONFIG: &str = "repository/conf/identity/EndpointConfig.properties";
const IDENTITY: &str = "repository/conf/identity/identity.xml";
const SITE_JSON: [&str; 3] = [
    "repository/deployment/server/jaggeryapps/publisher/site/conf/site.json",
    "repository/deployment/server/jaggeryapps/store/site/conf/site.json",
    "repository/deployment/server/jaggeryapps/admin/site/conf/site.json",
];

/// Every profile on one machine: one host, a different offset per profile.
const ONE_MACHINE: &str = r#"
name = "onebox"
product = "apim-2.6"

[[node]]
name = "km"
profile = "key-manager"
host = "apim.onebox.example"
offset = 0

[[node]]
name = "publisher"
profile = "publisher"
host = "apim.onebox.example"
offset = 1

[[node]]
name = "store"
profile = "store"
host = "apim.onebox.example"
offset = 2

[[node]]
name = "tm"
profile = "traffic-manager"
host = "apim.onebox.example"
offset = 3

[[node]]
name = "gw"
profile = "gateway-worker"
host = "apim.onebox.example"
offset = 4
"#;

/// HA gateways without a manager (shared file system), an offset on every node, one key manager
/// (so the Thrift ports matter), two traffic managers, PKCS#12 keystores.
const HA_GATEWAYS: &str = r#"
name = "hagw"
product = "apim-2.6"

[keystores]
format = "pkcs12"

[[node]]
name = "km"
profile = "key-manager"
host = "km.hagw.example"
offset = 5

[[node]]
name = "pub"
profile = "publisher"
host = "pub.hagw.example"
offset = 1

[[node]]
name = "store"
profile = "store"
host = "store.hagw.example"
offset = 2

[[node]]
name = "tm1"
profile = "traffic-manager"
host = "tm1.hagw.example"
offset = 3

[[node]]
name = "tm2"
profile = "traffic-manager"
host = "tm2.hagw.example"
offset = 4

[[node]]
name = "gw1"
profile = "gateway-worker"
host = "gw1.hagw.example"
offset = 6

[[node]]
name = "gw2"
profile = "gateway-worker"
host = "gw2.hagw.example"
offset = 7

[[load_balancer]]
host = "tm.hagw.example"
fronts = "traffic-manager"

[[load_balancer]]
host = "gw.hagw.example"
fronts = "gateway-worker"
"#;

// ---------------------------------------------------------------------------------------------
// The fixture home
// ---------------------------------------------------------------------------------------------

/// The fixture's two keystores, made once per test process with keytool: `wso2carbon.jks`
/// (stock-like self-signed `wso2carbon` key) and `client-truststore.jks` holding a "public CA"
/// (`publicca`, what a gateway needs for backends) plus the old primary certificate as
/// `wso2carbon` and `gateway_certificate_alias`, all with password wso2carbon.
struct FixtureStores {
    primary: Vec<u8>,
    truststore: Vec<u8>,
    /// SHA-256 of the `publicca` certificate, keytool style.
    public_ca_sha256: String,
}

/// `None` (with a note) where keytool is missing outside CI.
fn fixture_stores() -> Option<&'static FixtureStores> {
    static STORES: OnceLock<Option<FixtureStores>> = OnceLock::new();
    STORES
        .get_or_init(|| java::require("keytool").then(make_fixture_stores))
        .as_ref()
}

const FIXTURE_PASS_ENV: &str = "APIM_PKI_TEST_FIXTURE_PASS";

/// `keytool WORDS... EXTRA... -storepass:env VAR` in `dir`; the password comes from the
/// environment, as for every Java process of the tests.
fn keytool(dir: &Path, words: &str, extra: &[&str]) {
    let out = Command::new(java::jdk17_keytool())
        .current_dir(dir)
        .args(words.split_whitespace())
        .args(extra)
        .args(["-storepass:env", FIXTURE_PASS_ENV])
        .env(FIXTURE_PASS_ENV, FIXTURE_PASSWORD)
        .env("LC_ALL", "C.UTF-8")
        .env_remove("JAVA_TOOL_OPTIONS")
        .env_remove("_JAVA_OPTIONS")
        .env_remove("JDK_JAVA_OPTIONS")
        .stdin(Stdio::null())
        .output()
        .expect("keytool runs");
    assert!(
        out.status.success(),
        "keytool {words} {extra:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn make_fixture_stores() -> FixtureStores {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    // The two key pairs are independent: make them in parallel (one JVM each).
    std::thread::scope(|s| {
        s.spawn(|| {
            keytool(
                dir,
                "-genkeypair -alias wso2carbon -keyalg RSA -keysize 2048 -validity 3650 \
                 -keystore wso2carbon.jks -storetype JKS",
                &[
                    "-dname",
                    "CN=localhost,O=WSO2,L=Mountain View,ST=CA,C=US",
                    "-keypass:env",
                    FIXTURE_PASS_ENV,
                ],
            );
            keytool(
                dir,
                "-exportcert -rfc -alias wso2carbon -keystore wso2carbon.jks -file wso2carbon.pem",
                &[],
            );
        });
        s.spawn(|| {
            keytool(
                dir,
                "-genkeypair -alias publicca -keyalg EC -groupname secp256r1 -validity 3650 \
                 -ext bc:c -keystore publicca.p12 -storetype PKCS12",
                &[
                    "-dname",
                    "CN=Example Public Root CA,O=Example Trust Services,C=US",
                ],
            );
            keytool(
                dir,
                "-exportcert -rfc -alias publicca -keystore publicca.p12 -file publicca.pem",
                &[],
            );
        });
    });
    for (alias, file) in [
        ("publicca", "publicca.pem"),
        ("wso2carbon", "wso2carbon.pem"),
        ("gateway_certificate_alias", "wso2carbon.pem"),
    ] {
        keytool(
            dir,
            "-importcert -noprompt -keystore client-truststore.jks -storetype JKS",
            &["-alias", alias, "-file", file],
        );
    }
    let ca_pem = std::fs::read_to_string(dir.join("publicca.pem")).expect("publicca.pem");
    let der = pem::parse(ca_pem).expect("publicca.pem parses");
    FixtureStores {
        primary: std::fs::read(dir.join("wso2carbon.jks")).expect("wso2carbon.jks"),
        truststore: std::fs::read(dir.join("client-truststore.jks")).expect("truststore"),
        public_ca_sha256: keytool_fingerprint(der.contents()),
    }
}

/// SHA-256 as keytool prints it: upper-case hex pairs separated by colons.
fn keytool_fingerprint(der: &[u8]) -> String {
    Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// A fresh "unpacked API-M 2.6" at `root/name`: the fixture's repository/ plus its keystores.
fn fresh_home(fx: &FixtureStores, root: &Path, name: &str) -> PathBuf {
    let home = root.join("homes").join(name);
    copy_tree(
        &Path::new(FIXTURE).join("repository"),
        &home.join("repository"),
    );
    let security = home.join(SECURITY);
    std::fs::create_dir_all(&security).expect("security dir");
    std::fs::write(security.join("wso2carbon.jks"), &fx.primary).expect("write keystore");
    std::fs::write(security.join("client-truststore.jks"), &fx.truststore).expect("truststore");
    home
}

/// Snapshot of a home without the backup directory.
fn home_files(home: &Path) -> BTreeMap<String, Vec<u8>> {
    snapshot(home)
        .into_iter()
        .filter(|(k, _)| !k.starts_with(BACKUP_DIR))
        .collect()
}

fn read_text(path: &Path) -> Option<String> {
    std::fs::read(path).ok().map(|b| decode(&b))
}

fn parse_xml(text: &str, what: &str) -> XmlDoc {
    XmlDoc::parse(text).unwrap_or_else(|e| panic!("{what} is not well-formed: {e}"))
}

/// `key = value` pairs of a .properties file (no continuation lines in the fixtures).
fn properties(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| {
            let t = l.trim_start();
            if t.is_empty() || t.starts_with('#') || t.starts_with('!') {
                return None;
            }
            let sep = t.find(['=', ':'])?;
            Some((
                t[..sep].trim_end().to_string(),
                t[sep + 1..].trim().to_string(),
            ))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The topology, as this test reads it
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct TNode {
    name: String,
    profile: String,
    host: String,
    offset: u16,
}

struct Topo {
    name: String,
    nodes: Vec<TNode>,
    /// (load balancer host, profile it fronts)
    lbs: Vec<(String, String)>,
    ext: &'static str,
    store_type: &'static str,
}

/// Where peers reach something: a host and the offset its ports carry.
struct Addr {
    host: String,
    offset: u16,
}

impl Addr {
    fn url(&self, scheme: &str, port: u16, suffix: &str) -> String {
        format!("{scheme}://{}:{}{suffix}", self.host, port + self.offset)
    }
}

impl Topo {
    fn parse(text: &str) -> Topo {
        let t: toml::Table = text.parse().expect("topology parses");
        let format = t
            .get("keystores")
            .and_then(|k| k.get("format"))
            .and_then(|f| f.as_str())
            .unwrap_or("jks");
        let (ext, store_type) = match format {
            "jks" => ("jks", "JKS"),
            _ => ("p12", "PKCS12"),
        };
        let s = |v: &toml::Value, k: &str| v[k].as_str().expect(k).to_string();
        let nodes = t["node"]
            .as_array()
            .expect("nodes")
            .iter()
            .map(|n| TNode {
                name: s(n, "name"),
                profile: s(n, "profile"),
                host: s(n, "host"),
                offset: n
                    .get("offset")
                    .and_then(|o| o.as_integer())
                    .map_or(0, |o| u16::try_from(o).expect("offset")),
            })
            .collect();
        let lbs = t
            .get("load_balancer")
            .and_then(|l| l.as_array())
            .map(|l| l.iter().map(|b| (s(b, "host"), s(b, "fronts"))).collect())
            .unwrap_or_default();
        Topo {
            name: t["name"].as_str().expect("name").to_string(),
            nodes,
            lbs,
            ext,
            store_type,
        }
    }

    fn of(&self, profile: &str) -> Vec<&TNode> {
        self.nodes.iter().filter(|n| n.profile == profile).collect()
    }

    fn node(&self, name: &str) -> &TNode {
        self.nodes.iter().find(|n| n.name == name).expect("node")
    }

    fn lb_for(&self, profile: &str) -> Option<&str> {
        self.lbs
            .iter()
            .find(|(_, p)| p == profile)
            .map(|(h, _)| h.as_str())
    }

    /// A profile's address: its load balancer (offset 0), or its only node.
    fn addr(&self, profile: &str) -> Addr {
        if let Some(lb) = self.lb_for(profile) {
            return Addr {
                host: lb.to_string(),
                offset: 0,
            };
        }
        let nodes = self.of(profile);
        assert_eq!(
            nodes.len(),
            1,
            "{profile}: several nodes and no load balancer"
        );
        node_addr(nodes[0])
    }

    /// GW-MGMT: the gateway manager if there is one, else the gateway workers' address.
    fn gw_mgmt(&self) -> Addr {
        match self.of("gateway-manager").first() {
            Some(m) => node_addr(m),
            None => self.addr("gateway-worker"),
        }
    }

    /// carbon.xml HostName: the load balancer fronting the node's profile, else its host.
    fn public_host(&self, n: &TNode) -> String {
        self.lb_for(&n.profile)
            .map_or_else(|| n.host.clone(), str::to_string)
    }

    /// TM-GROUP(scheme, port).
    fn tm_group(&self, scheme: &str, port: u16) -> String {
        let tms = self.of("traffic-manager");
        let urls: Vec<String> = tms
            .iter()
            .map(|n| node_addr(n).url(scheme, port, ""))
            .collect();
        if urls.len() == 1 {
            urls[0].clone()
        } else {
            urls.iter()
                .map(|u| format!("{{{u}}}"))
                .collect::<Vec<_>>()
                .join(", ")
        }
    }

    /// AMQP-URL with the credentials kept from the value it replaces.
    fn amqp(&self, creds: &str) -> String {
        let tms = self.of("traffic-manager");
        if tms.len() == 1 {
            let tm = node_addr(tms[0]);
            format!(
                "amqp://{creds}@clientid/carbon?brokerlist='{}'",
                tm.url("tcp", 5672, "")
            )
        } else {
            let brokers: Vec<String> = tms
                .iter()
                .map(|n| {
                    format!(
                        "{}?retries='5'%26connectdelay='50'",
                        node_addr(n).url("tcp", 5672, "")
                    )
                })
                .collect();
            format!(
                "amqp://{creds}@clientID/carbon?failover='roundrobin'%26cyclecount='2'%26brokerlist='{}'",
                brokers.join(";")
            )
        }
    }

    fn single_km(&self) -> Option<&TNode> {
        let kms = self.of("key-manager");
        (kms.len() == 1).then(|| kms[0])
    }
}

fn node_addr(n: &TNode) -> Addr {
    Addr {
        host: n.host.clone(),
        offset: n.offset,
    }
}

/// A generated set.
struct Set {
    dir: PathBuf,
    topo: Topo,
    primary_pw: String,
    tls_pw: String,
    trust_pw: String,
    inventory: Value,
}

impl Set {
    fn generate(root: &Path, topology: &str) -> Set {
        let topo_file = write_topology(root, &crate::util::cli::with_vault(topology, false));
        let dir = root.join("set");
        generate(&topo_file, &dir, &[]);
        let pw = secrets(&dir);
        let inventory = serde_json::from_str(
            &std::fs::read_to_string(dir.join("inventory.json")).expect("inventory.json"),
        )
        .expect("inventory.json parses");
        Set {
            dir,
            topo: Topo::parse(topology),
            primary_pw: pw["primary"].clone(),
            tls_pw: pw["tls"].clone(),
            trust_pw: pw["truststore"].clone(),
            inventory,
        }
    }

    fn passwords(&self) -> [&str; 3] {
        [&self.primary_pw, &self.tls_pw, &self.trust_pw]
    }

    fn primary_file(&self) -> String {
        format!("wso2carbon.{}", self.topo.ext)
    }

    fn tls_file(&self, node: &str) -> String {
        format!("{node}-tls.{}", self.topo.ext)
    }

    fn trust_file(&self) -> String {
        format!("client-truststore.{}", self.topo.ext)
    }

    /// alias → SHA-256 of the set's truststore for `node`, from inventory.json.
    fn truststore_entries(&self, node: &str) -> BTreeMap<String, String> {
        let path = format!("nodes/{node}/{SECURITY}/{}", self.trust_file());
        let artifact = self.inventory["artifacts"]
            .as_array()
            .expect("artifacts")
            .iter()
            .find(|a| a["path"] == path.as_str())
            .unwrap_or_else(|| panic!("inventory.json has no {path}"));
        artifact["entries"]
            .as_array()
            .expect("entries")
            .iter()
            .map(|e| {
                (
                    e["alias"].as_str().expect("alias").to_string(),
                    e["sha256"].as_str().expect("sha256").to_string(),
                )
            })
            .collect()
    }
}

/// `apim-pki apply SET --node NODE --apim-home HOME --format json [extra]`.
fn apply(set: &Path, node: &str, home: &Path, extra: &[&str]) -> Run {
    let mut args = vec!["--format", "json"];
    args.extend_from_slice(extra);
    cli::apply(set, node, home, &args, &[])
}

fn report_of(r: &Run) -> Result<Value, String> {
    r.ok_json()
}

fn report_files(report: &Value) -> Vec<Value> {
    report["files"].as_array().cloned().unwrap_or_default()
}

/// `file action: what, what, ...` per file, to compare two reports.
fn file_summary(report: &Value) -> Vec<String> {
    report_files(report)
        .iter()
        .map(|f| {
            let whats: Vec<&str> = f["changes"]
                .as_array()
                .map(|c| c.iter().filter_map(|c| c["what"].as_str()).collect())
                .unwrap_or_default();
            format!(
                "{} {}: {}",
                f["file"].as_str().unwrap_or("?"),
                f["action"].as_str().unwrap_or("?"),
                whats.join(", ")
            )
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Expected values (config-2.6.md)
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Loc {
    /// Element path; every match holds the value, and there are `n` matches.
    Xml(String, usize),
    /// Attribute of the element at the path.
    Attr(String, &'static str),
    /// Key of a .properties file.
    Prop(&'static str),
    /// `ssoConfiguration.<key>` of a site.json.
    Sso(&'static str),
}

#[derive(Debug, Clone)]
struct Want {
    file: String,
    loc: Loc,
    value: String,
}

impl Want {
    fn xml(file: &str, path: impl Into<String>, value: impl Into<String>) -> Want {
        Want {
            file: file.into(),
            loc: Loc::Xml(path.into(), 1),
            value: value.into(),
        }
    }

    /// What the report calls this setting.
    fn what(&self) -> String {
        match &self.loc {
            Loc::Xml(p, _) => p.clone(),
            Loc::Attr(p, a) => format!("{p}/@{a}"),
            Loc::Prop(k) => (*k).to_string(),
            Loc::Sso(k) => format!("ssoConfiguration.{k}"),
        }
    }
}

/// Every value apply must leave in `node`'s home (the data-agent file is checked on its own).
fn expectations(set: &Set, n: &TNode) -> Vec<Want> {
    let t = &set.topo;
    let st = t.store_type;
    let (primary, tls, trust) = (set.primary_file(), set.tls_file(&n.name), set.trust_file());
    let carbon_home = |file: &str| format!("${{carbon.home}}/{SECURITY}/{file}");
    let relative = |file: &str| format!("{SECURITY}/{file}");
    let mut w = Vec::new();

    // carbon.xml
    for ks in ["KeyStore", "InternalKeyStore"] {
        let b = format!("Server/Security/{ks}");
        w.push(Want::xml(
            CARBON,
            format!("{b}/Location"),
            carbon_home(&primary),
        ));
        w.push(Want::xml(CARBON, format!("{b}/Type"), st));
        w.push(Want::xml(CARBON, format!("{b}/Password"), &set.primary_pw));
        w.push(Want::xml(CARBON, format!("{b}/KeyAlias"), "wso2carbon"));
        w.push(Want::xml(
            CARBON,
            format!("{b}/KeyPassword"),
            &set.primary_pw,
        ));
    }
    w.push(Want::xml(
        CARBON,
        "Server/Security/TrustStore/Location",
        carbon_home(&trust),
    ));
    w.push(Want::xml(CARBON, "Server/Security/TrustStore/Type", st));
    w.push(Want::xml(
        CARBON,
        "Server/Security/TrustStore/Password",
        &set.trust_pw,
    ));
    w.push(Want::xml(CARBON, "Server/HostName", t.public_host(n)));
    w.push(Want::xml(CARBON, "Server/MgtHostName", t.public_host(n)));
    w.push(Want::xml(
        CARBON,
        "Server/Ports/Offset",
        n.offset.to_string(),
    ));

    // catalina-server.xml
    let connector = "Server/Service/Connector[@port='9443']".to_string();
    for (attr, value) in [
        ("keystoreFile", carbon_home(&tls)),
        ("keystorePass", set.tls_pw.clone()),
        ("keystoreType", st.to_string()),
    ] {
        w.push(Want {
            file: CATALINA.into(),
            loc: Loc::Attr(connector.clone(), attr),
            value,
        });
    }

    // axis2.xml (on the traffic manager: the former axis2_TM.xml)
    for transport in ["transportReceiver", "transportSender"] {
        let k =
            format!("axisconfig/{transport}[@name='https']/parameter[@name='keystore']/KeyStore");
        w.push(Want::xml(AXIS2, format!("{k}/Location"), relative(&tls)));
        w.push(Want::xml(AXIS2, format!("{k}/Type"), st));
        w.push(Want::xml(AXIS2, format!("{k}/Password"), &set.tls_pw));
        w.push(Want::xml(AXIS2, format!("{k}/KeyPassword"), &set.tls_pw));
        let ts = format!(
            "axisconfig/{transport}[@name='https']/parameter[@name='truststore']/TrustStore"
        );
        w.push(Want::xml(AXIS2, format!("{ts}/Location"), relative(&trust)));
        w.push(Want::xml(AXIS2, format!("{ts}/Type"), st));
        w.push(Want::xml(AXIS2, format!("{ts}/Password"), &set.trust_pw));
    }

    // broker.xml: both sslConnection elements (AMQP and MQTT), form of the path kept.
    for transport in ["amqp", "mqtt"] {
        let b = format!("broker/transports/{transport}/sslConnection");
        w.push(Want::xml(
            BROKER,
            format!("{b}/keyStore/location"),
            relative(&tls),
        ));
        w.push(Want::xml(
            BROKER,
            format!("{b}/keyStore/password"),
            &set.tls_pw,
        ));
        w.push(Want::xml(
            BROKER,
            format!("{b}/trustStore/location"),
            relative(&trust),
        ));
        w.push(Want::xml(
            BROKER,
            format!("{b}/trustStore/password"),
            &set.trust_pw,
        ));
    }

    // data-bridge-config.xml: the 9711 receiver serves the node's own certificate.
    w.push(Want::xml(
        DATA_BRIDGE,
        "dataBridgeConfiguration/keyStoreLocation",
        carbon_home(&tls),
    ));
    w.push(Want::xml(
        DATA_BRIDGE,
        "dataBridgeConfiguration/keyStorePassword",
        &set.tls_pw,
    ));

    // identity.xml: the entitlement Thrift keystore is the primary.
    let e = "Server/EntitlementSettings/ThirftBasedEntitlementConfig/KeyStore";
    w.push(Want::xml(
        IDENTITY,
        format!("{e}/Location"),
        carbon_home(&primary),
    ));
    w.push(Want::xml(
        IDENTITY,
        format!("{e}/Password"),
        &set.primary_pw,
    ));

    // EndpointConfig.properties: `./repository/...` form kept.
    for (key, value) in [
        ("client.keyStore", format!("./{}", relative(&tls))),
        ("Carbon.Security.KeyStore.Password", set.tls_pw.clone()),
        ("client.trustStore", format!("./{}", relative(&trust))),
        ("Carbon.Security.TrustStore.Password", set.trust_pw.clone()),
    ] {
        w.push(Want {
            file: ENDPOINT_CONFIG.into(),
            loc: Loc::Prop(key),
            value,
        });
    }

    // site.json of the three jaggery apps: empty, so WSO2 falls back to carbon.xml's primary
    // keystore (docs/apply-2.6.md, "site.json").
    for site in SITE_JSON {
        for (key, value) in [
            ("keyStoreName", String::new()),
            ("keyStorePassword", String::new()),
            ("identityAlias", String::new()),
        ] {
            w.push(Want {
                file: site.into(),
                loc: Loc::Sso(key),
                value,
            });
        }
    }

    api_manager_expectations(t, n, &mut w);
    w
}

fn api_manager_expectations(t: &Topo, n: &TNode, w: &mut Vec<Want>) {
    let am = |w: &mut Vec<Want>, path: &str, value: String| {
        w.push(Want::xml(API_MANAGER, format!("APIManager/{path}"), value));
    };
    // Both Environment elements of the fixture.
    let env = |w: &mut Vec<Want>, leaf: &str, value: String| {
        w.push(Want {
            file: API_MANAGER.into(),
            loc: Loc::Xml(
                format!("APIManager/APIGateway/Environments/Environment/{leaf}"),
                2,
            ),
            value,
        });
    };
    let gwm = t.gw_mgmt();
    let km = t.addr("key-manager");
    let services = |a: &Addr| a.url("https", 9443, "/services/");
    let single_km = t.single_km();
    let environments = |w: &mut Vec<Want>| {
        env(w, "ServerURL", services(&gwm));
        env(
            w,
            "GatewayEndpoint",
            format!(
                "{},{}",
                gwm.url("http", 8280, ""),
                gwm.url("https", 8243, "")
            ),
        );
    };
    // Key validation from a store or gateway.
    let key_validation = |w: &mut Vec<Want>| {
        am(w, "APIKeyValidator/ServerURL", services(&km));
        match single_km {
            Some(k) => {
                am(
                    w,
                    "APIKeyValidator/KeyValidatorClientType",
                    "ThriftClient".into(),
                );
                am(w, "APIKeyValidator/ThriftServerHost", k.host.clone());
                am(
                    w,
                    "APIKeyValidator/ThriftClientPort",
                    (10397 + k.offset).to_string(),
                );
            }
            None => am(
                w,
                "APIKeyValidator/KeyValidatorClientType",
                "WSClient".into(),
            ),
        }
    };
    let throttling_publisher = |w: &mut Vec<Want>| {
        am(
            w,
            "ThrottlingConfigurations/EnableAdvanceThrottling",
            "true".into(),
        );
        am(
            w,
            "ThrottlingConfigurations/DataPublisher/Enabled",
            "true".into(),
        );
        am(
            w,
            "ThrottlingConfigurations/TrafficManager/Type",
            "Binary".into(),
        );
        am(
            w,
            "ThrottlingConfigurations/TrafficManager/ReceiverUrlGroup",
            t.tm_group("tcp", 9611),
        );
        am(
            w,
            "ThrottlingConfigurations/TrafficManager/AuthUrlGroup",
            t.tm_group("ssl", 9711),
        );
    };
    let tm = t.addr("traffic-manager");
    let single_km_here = single_km.is_some() && n.profile == "key-manager";
    am(
        w,
        "APIKeyValidator/EnableThriftServer",
        single_km_here.to_string(),
    );
    match n.profile.as_str() {
        "key-manager" => {
            env(w, "ServerURL", services(&gwm));
            if single_km.is_some() {
                am(
                    w,
                    "APIKeyValidator/KeyValidatorClientType",
                    "ThriftClient".into(),
                );
                am(w, "APIKeyValidator/ThriftServerHost", n.host.clone());
                am(
                    w,
                    "APIKeyValidator/ThriftServerPort",
                    (10397 + n.offset).to_string(),
                );
            } else {
                am(
                    w,
                    "APIKeyValidator/KeyValidatorClientType",
                    "WSClient".into(),
                );
            }
        }
        "publisher" => {
            am(w, "AuthManager/ServerURL", services(&km));
            throttling_publisher(w);
            am(
                w,
                "ThrottlingConfigurations/PolicyDeployer/ServiceURL",
                services(&tm),
            );
            am(
                w,
                "ThrottlingConfigurations/BlockCondition/Enabled",
                "false".into(),
            );
            am(
                w,
                "ThrottlingConfigurations/JMSConnectionDetails/Enabled",
                "false".into(),
            );
            environments(w);
            am(w, "APIStore/DisplayURL", "true".into());
            am(
                w,
                "APIStore/URL",
                t.addr("store").url("https", 9443, "/store"),
            );
            // jndi.properties: the fixture's admin:admin stays in the broker URL.
            w.push(Want {
                file: JNDI.into(),
                loc: Loc::Prop("connectionfactory.TopicConnectionFactory"),
                value: t.amqp("admin:admin"),
            });
            w.push(Want {
                file: JNDI.into(),
                loc: Loc::Prop("topic.throttleData"),
                value: "throttleData".into(),
            });
        }
        "store" => {
            key_validation(w);
            am(w, "AuthManager/ServerURL", services(&km));
            am(
                w,
                "ThrottlingConfigurations/EnableAdvanceThrottling",
                "true".into(),
            );
            am(
                w,
                "ThrottlingConfigurations/DataPublisher/Enabled",
                "false".into(),
            );
            am(
                w,
                "ThrottlingConfigurations/BlockCondition/Enabled",
                "false".into(),
            );
            am(
                w,
                "ThrottlingConfigurations/JMSConnectionDetails/Enabled",
                "false".into(),
            );
            environments(w);
            am(
                w,
                "OAuthConfigurations/RevokeAPIURL",
                t.addr("gateway-worker").url("https", 8243, "/revoke"),
            );
        }
        "traffic-manager" => {}
        "gateway-manager" | "gateway-worker" => {
            key_validation(w);
            throttling_publisher(w);
            am(
                w,
                "ThrottlingConfigurations/PolicyDeployer/Enabled",
                "false".into(),
            );
            am(
                w,
                "ThrottlingConfigurations/PolicyDeployer/ServiceURL",
                services(&tm),
            );
            am(
                w,
                "ThrottlingConfigurations/JMSConnectionDetails/Enabled",
                "true".into(),
            );
            let tm1 = node_addr(t.of("traffic-manager")[0]);
            am(
                w,
                "ThrottlingConfigurations/JMSConnectionDetails/ServiceURL",
                tm1.url("tcp", 5672, ""),
            );
            // The fixture's ${admin.username}:${admin.password} stays in the broker URL.
            am(
                w,
                "ThrottlingConfigurations/JMSConnectionDetails/JMSConnectionParameters/connectionfactory.TopicConnectionFactory",
                t.amqp("${admin.username}:${admin.password}"),
            );
        }
        other => panic!("unexpected profile {other}"),
    }
    peer_url_expectations(t, n, w);
}

/// The peer URLs apply writes on every node whose profile is not the one they name (those the
/// fixture's api-manager.xml holds), and the broker URL of jndi.properties on every node but a
/// traffic manager.
fn peer_url_expectations(t: &Topo, n: &TNode, w: &mut Vec<Want>) {
    let gateway = n.profile.starts_with("gateway-");
    let services = |a: &Addr| a.url("https", 9443, "/services/");
    let (km, gwm, gww) = (t.addr("key-manager"), t.gw_mgmt(), t.addr("gateway-worker"));
    let (store, publisher, tm) = (
        t.addr("store"),
        t.addr("publisher"),
        t.addr("traffic-manager"),
    );
    let mut wants: Vec<(bool, Want)> = vec![
        (
            n.profile == "key-manager",
            Want::xml(
                API_MANAGER,
                "APIManager/AuthManager/ServerURL",
                services(&km),
            ),
        ),
        (
            n.profile == "key-manager",
            Want::xml(
                API_MANAGER,
                "APIManager/APIKeyValidator/ServerURL",
                services(&km),
            ),
        ),
        (
            gateway,
            Want::xml(
                API_MANAGER,
                "APIManager/OAuthConfigurations/RevokeAPIURL",
                gww.url("https", 8243, "/revoke"),
            ),
        ),
        (
            n.profile == "store",
            Want::xml(
                API_MANAGER,
                "APIManager/APIStore/URL",
                store.url("https", 9443, "/store"),
            ),
        ),
        (
            n.profile == "publisher",
            Want::xml(
                API_MANAGER,
                "APIManager/APIPublisher/URL",
                publisher.url("https", 9443, "/publisher"),
            ),
        ),
        (
            n.profile == "traffic-manager",
            Want::xml(
                API_MANAGER,
                "APIManager/ThrottlingConfigurations/PolicyDeployer/ServiceURL",
                services(&tm),
            ),
        ),
        (
            n.profile == "publisher",
            Want::xml(
                API_MANAGER,
                "APIManager/WorkflowConfigurations/WorkflowCallbackAPI",
                publisher.url(
                    "https",
                    9443,
                    "/api/am/publisher/v0.14/workflows/update-workflow-status",
                ),
            ),
        ),
        (
            n.profile == "traffic-manager",
            Want {
                file: JNDI.into(),
                loc: Loc::Prop("connectionfactory.TopicConnectionFactory"),
                value: t.amqp("admin:admin"),
            },
        ),
    ];
    let env = |leaf: &str, value: String| Want {
        file: API_MANAGER.into(),
        loc: Loc::Xml(
            format!("APIManager/APIGateway/Environments/Environment/{leaf}"),
            2,
        ),
        value,
    };
    wants.push((gateway, env("ServerURL", services(&gwm))));
    wants.push((
        gateway,
        env(
            "GatewayEndpoint",
            format!(
                "{},{}",
                gwm.url("http", 8280, ""),
                gwm.url("https", 8243, "")
            ),
        ),
    ));
    wants.push((gateway, env("GatewayWSEndpoint", gwm.url("ws", 9099, ""))));
    for (is_self, want) in wants {
        if !is_self
            && !w
                .iter()
                .any(|x| x.file == want.file && x.what() == want.what())
        {
            w.push(want);
        }
    }
}

/// Reads every wanted value back from the files of `home`.
fn check_values(home: &Path, wants: &[Want]) -> Vec<String> {
    let mut fails = Vec::new();
    let mut texts: BTreeMap<&str, Option<String>> = BTreeMap::new();
    for want in wants {
        let text = texts
            .entry(want.file.as_str())
            .or_insert_with(|| read_text(&home.join(&want.file)));
        let Some(text) = text else {
            fails.push(format!("{}: missing", want.file));
            continue;
        };
        let found: Vec<String> = match &want.loc {
            Loc::Xml(path, _) => parse_xml(text, &want.file).texts(path),
            Loc::Attr(path, attr) => parse_xml(text, &want.file).attrs(path, attr),
            Loc::Prop(key) => properties(text).get(*key).cloned().into_iter().collect(),
            Loc::Sso(key) => serde_json::from_str::<Value>(text)
                .ok()
                .and_then(|j| j["ssoConfiguration"][key].as_str().map(str::to_string))
                .into_iter()
                .collect(),
        };
        let n = match want.loc {
            Loc::Xml(_, n) => n,
            _ => 1,
        };
        if found.len() != n || found.iter().any(|f| f != &want.value) {
            fails.push(format!(
                "{} {}: expected {n} x {:?}, found {:?}",
                want.file,
                want.what(),
                want.value,
                found
            ));
        }
    }
    fails
}

/// The line after the first line containing `needle`.
fn line_after<'t>(text: &'t str, needle: &str) -> Option<&'t str> {
    let mut lines = text.lines().skip_while(|l| !l.contains(needle));
    lines.next()?;
    lines.next()
}

/// Created elements: right after their commented-out twin, else as the parent's last child
/// element, indented like their siblings.
fn check_placement(t: &Topo, n: &TNode, home: &Path) -> Vec<String> {
    let mut fails = Vec::new();
    let mut expect_after = |file: &str, needle: &str, want: String| {
        let text = read_text(&home.join(file)).unwrap_or_default();
        let got = line_after(&text, needle);
        if got != Some(want.as_str()) {
            fails.push(format!(
                "{file}: after {needle:?} expected {want:?}, found {got:?}"
            ));
        }
    };
    let host = t.public_host(n);
    expect_after(
        CARBON,
        "<!--HostName>www.wso2.org</HostName-->",
        format!("    <HostName>{host}</HostName>"),
    );
    expect_after(
        CARBON,
        "<!--MgtHostName>mgt.wso2.org</MgtHostName-->",
        format!("    <MgtHostName>{host}</MgtHostName>"),
    );
    let km = t.single_km();
    match n.profile.as_str() {
        "store" | "gateway-worker" | "gateway-manager" => {
            if let Some(k) = km {
                expect_after(
                    API_MANAGER,
                    "<!--ThriftClientPort>10397</ThriftClientPort-->",
                    format!(
                        "        <ThriftClientPort>{}</ThriftClientPort>",
                        10397 + k.offset
                    ),
                );
            }
        }
        "key-manager" if km.is_some() => {
            // No twin in the fixture: last child of APIKeyValidator.
            expect_after(
                API_MANAGER,
                "<KeyValidationHandlerClassName>",
                format!(
                    "        <ThriftServerPort>{}</ThriftServerPort>",
                    10397 + n.offset
                ),
            );
            expect_after(
                API_MANAGER,
                "<ThriftServerPort>",
                "    </APIKeyValidator>".into(),
            );
        }
        _ => {}
    }
    if n.profile.starts_with("gateway") {
        // No twin: the last child of JMSConnectionDetails (after its trailing comment).
        let tm1 = node_addr(t.of("traffic-manager")[0]);
        expect_after(
            API_MANAGER,
            "</JMSTaskManager-->",
            format!(
                "            <ServiceURL>{}</ServiceURL>",
                tm1.url("tcp", 5672, "")
            ),
        );
        expect_after(
            API_MANAGER,
            "<ServiceURL>tcp://",
            "        </JMSConnectionDetails>".into(),
        );
    }
    fails
}

// ---------------------------------------------------------------------------------------------
// Nothing changed but what the report says
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Syntax {
    Xml,
    Properties,
    Json,
}

fn syntax_of(rel: &str) -> Option<Syntax> {
    if rel.ends_with(".xml") {
        Some(Syntax::Xml)
    } else if rel.ends_with(".properties") {
        Some(Syntax::Properties)
    } else if rel.ends_with(".json") {
        Some(Syntax::Json)
    } else {
        None
    }
}

/// `a/b[@x='y']/c` → `a/b/c`.
fn strip_predicates(path: &str) -> String {
    let mut out = String::new();
    let mut depth = 0;
    for c in path.chars() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

/// What one file's report entry says changed, in the terms the line check needs.
#[derive(Default)]
struct Reported {
    /// Local names of changed elements (XML), keys (properties, site.json).
    names: BTreeSet<String>,
    /// Those created (no old value), with the value they were created with.
    created: BTreeSet<(String, String)>,
    attrs: BTreeSet<String>,
    created_attrs: BTreeSet<String>,
    /// Changed element paths without predicates (XML).
    paths: Vec<String>,
}

fn reported(changes: &[Value]) -> Reported {
    let mut r = Reported::default();
    for c in changes {
        let what = c["what"].as_str().unwrap_or_default();
        let created = c.get("old").is_none_or(Value::is_null);
        if let Some((path, attr)) = what.split_once("/@") {
            r.attrs.insert(attr.to_string());
            if created {
                r.created_attrs.insert(attr.to_string());
            }
            r.paths.push(strip_predicates(path));
        } else {
            let stripped = strip_predicates(what);
            let name = stripped.rsplit('/').next().unwrap_or_default();
            let name = name
                .strip_prefix("ssoConfiguration.")
                .unwrap_or(name)
                .to_string();
            if created {
                let new = c["new"].as_str().unwrap_or_default().to_string();
                r.created.insert((name.clone(), new));
            }
            r.names.insert(name);
            r.paths.push(stripped);
        }
    }
    r
}

const BLANK: &str = "\u{2591}";

/// `line` with the values of the reported settings replaced by a placeholder: the text between
/// `<name>` and `</name>` (XML), `attr="…"` (XML), the value of `key =` (properties), the string
/// after `"key" :` (JSON).
fn blank(line: &str, syntax: Syntax, r: &Reported) -> String {
    let mut s = line.to_string();
    match syntax {
        Syntax::Xml => {
            for name in &r.names {
                s = blank_between(&s, &format!("<{name}>"), &format!("</{name}>"));
            }
            for attr in &r.attrs {
                s = blank_between(&s, &format!(" {attr}=\""), "\"");
            }
        }
        Syntax::Properties => {
            let t = s.trim_start();
            if let Some(sep) = t.find(['=', ':']) {
                if r.names.contains(t[..sep].trim_end()) {
                    let lead = s.len() - t.len();
                    let end = s.trim_end_matches(['\n', '\r']).len();
                    s = format!("{}{BLANK}{}", &s[..lead + sep + 1], &s[end..]);
                }
            }
        }
        Syntax::Json => {
            for key in &r.names {
                let open = format!("\"{key}\"");
                if let Some(i) = s.find(&open) {
                    let rest = &s[i + open.len()..];
                    let colon = rest.trim_start();
                    if let Some(after) = colon.strip_prefix(':') {
                        let value = after.trim_start();
                        if let Some(v) = value.strip_prefix('"') {
                            if let Some(close) = v.find('"') {
                                let start = s.len() - v.len();
                                s = format!("{}{BLANK}{}", &s[..start], &s[start + close..]);
                            }
                        }
                    }
                }
            }
        }
    }
    s
}

fn blank_between(s: &str, open: &str, close: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find(open) {
        let after = &rest[i + open.len()..];
        let Some(j) = after.find(close) else { break };
        out.push_str(&rest[..i + open.len()]);
        out.push_str(BLANK);
        rest = &after[j..];
    }
    out.push_str(rest);
    out
}

/// A whole line that is a created element (`<Name>value</Name>` with the reported value, only
/// whitespace before it) or an appended property.
fn is_created_line(line: &str, syntax: Syntax, r: &Reported) -> bool {
    let body = line.trim_end_matches(['\n', '\r']);
    let t = body.trim_start_matches([' ', '\t']);
    match syntax {
        Syntax::Xml => r
            .created
            .iter()
            .any(|(n, v)| t == format!("<{n}>{}</{n}>", xml_escape(v))),
        Syntax::Properties => r.created.iter().any(|(k, v)| t == format!("{k}={v}")),
        Syntax::Json => false,
    }
}

fn xml_escape(v: &str) -> String {
    v.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Removes created attributes (` attr="…"`) from a line.
fn without_created_attrs(line: &str, r: &Reported) -> String {
    let mut s = line.to_string();
    for attr in &r.created_attrs {
        let open = format!(" {attr}=\"");
        if let Some(i) = s.find(&open) {
            if let Some(j) = s[i + open.len()..].find('"') {
                s.replace_range(i..i + open.len() + j + 1, "");
            }
        }
    }
    s
}

/// Line hunks (old range, new range) between the longest common subsequence of lines.
fn hunks(a: &[&str], b: &[&str]) -> Vec<(Range<usize>, Range<usize>)> {
    let (n, m) = (a.len(), b.len());
    let mut lcs = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut open: Option<(usize, usize)> = None;
    let mut out = Vec::new();
    while i < n || j < m {
        if i < n && j < m && a[i] == b[j] {
            if let Some((si, sj)) = open.take() {
                out.push((si..i, sj..j));
            }
            i += 1;
            j += 1;
        } else {
            open.get_or_insert((i, j));
            if j < m && (i == n || lcs[i][j + 1] >= lcs[i + 1][j]) {
                j += 1;
            } else {
                i += 1;
            }
        }
    }
    if let Some((si, sj)) = open {
        out.push((si..n, sj..m));
    }
    out
}

/// Element local names that occur in `text` (a generous scan: comments included).
fn element_names(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for part in text.split('<').skip(1) {
        let name: String = part
            .chars()
            .take_while(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'))
            .collect();
        let local = name.rsplit(':').next().unwrap_or_default();
        if local.starts_with(|c: char| c.is_alphabetic() || c == '_') {
            out.insert(local.to_string());
        }
    }
    out
}

/// Proves that `new` is `old` with only the reported values changed.
///
/// The method, in two independent halves:
/// 1. Lines: a longest-common-subsequence diff of the two files' lines (endings included). In
///    every hunk, the added lines that are whole created elements (`<Name>new</Name>` with the
///    new value of a change reported without an old one) are set aside; the rest pair one to one with
///    the removed lines, and each pair must be equal once the values of the reported settings
///    are blanked in both (text between `<Name>` and `</Name>`, `attr="…"`, a property's value,
///    a JSON string after `"key" :`) and created attributes are removed from the new line. So
///    every byte outside the reported values (comments, whitespace, other elements and
///    attributes, line endings) is the same.
/// 2. Values: for XML, every element path of either file (predicates aside) has the same text
///    in both unless it is a reported path or an ancestor of one; for properties and JSON,
///    every other key keeps its value. This catches an unreported change hiding on a line that
///    half 1 blanked for a reported one.
fn check_untouched(
    label: &str,
    old: &str,
    new: &str,
    syntax: Syntax,
    changes: &[Value],
) -> Vec<String> {
    let r = reported(changes);
    let mut fails = Vec::new();
    let a: Vec<&str> = old.split_inclusive('\n').collect();
    let b: Vec<&str> = new.split_inclusive('\n').collect();
    for (dr, ir) in hunks(&a, &b) {
        let removed = &a[dr.clone()];
        let added: Vec<&str> = b[ir.clone()]
            .iter()
            .copied()
            .filter(|l| !is_created_line(l, syntax, &r))
            .collect();
        let hunk = || format!("-{:?}\n+{:?}", removed, &b[ir.clone()]);
        if removed.len() != added.len() {
            fails.push(format!(
                "{label}: lines {}..{} changed beyond the reported values:\n{}",
                dr.start + 1,
                dr.end + 1,
                hunk()
            ));
            continue;
        }
        for (d, i) in removed.iter().zip(&added) {
            if blank(d, syntax, &r) != blank(&without_created_attrs(i, &r), syntax, &r) {
                fails.push(format!(
                    "{label}: a line changed beyond the reported values:\n-{d:?}\n+{i:?}"
                ));
            }
        }
    }
    match syntax {
        Syntax::Xml => {
            let (od, nd) = (parse_xml(old, label), parse_xml(new, label));
            let covered = |p: &str| {
                r.paths
                    .iter()
                    .any(|c| c == p || c.starts_with(&format!("{p}/")))
            };
            let names: BTreeSet<String> = element_names(old)
                .into_iter()
                .chain(element_names(new))
                .collect();
            for name in names {
                let mut paths = od.paths_named(&name);
                paths.extend(nd.paths_named(&name));
                for p in paths {
                    if !covered(&p) && od.texts(&p) != nd.texts(&p) {
                        fails.push(format!(
                            "{label}: unreported change at {p}: {:?} → {:?}",
                            od.texts(&p),
                            nd.texts(&p)
                        ));
                    }
                }
            }
        }
        Syntax::Properties => {
            let (mut op, mut np) = (properties(old), properties(new));
            for k in &r.names {
                op.remove(k);
                np.remove(k);
            }
            if op != np {
                fails.push(format!("{label}: unreported property changes"));
            }
        }
        Syntax::Json => {
            let parse = |t: &str| {
                let mut v: Value = serde_json::from_str(t).unwrap_or(Value::Null);
                if let Some(sso) = v.get_mut("ssoConfiguration").and_then(Value::as_object_mut) {
                    for k in &r.names {
                        sso.remove(k);
                    }
                }
                v
            };
            if parse(old) != parse(new) {
                fails.push(format!("{label}: unreported JSON changes"));
            }
        }
    }
    fails
}

// ---------------------------------------------------------------------------------------------
// One node
// ---------------------------------------------------------------------------------------------

/// Files that hold a keystore password or key after apply.
fn password_files(set: &Set, node: &str) -> Vec<String> {
    // site.json no longer holds a password: its SSO keystore settings are left empty.
    let mut files: Vec<String> = [
        CARBON,
        CATALINA,
        AXIS2,
        BROKER,
        DATA_BRIDGE,
        IDENTITY,
        ENDPOINT_CONFIG,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for f in [set.primary_file(), set.tls_file(node), set.trust_file()] {
        files.push(format!("{SECURITY}/{f}"));
    }
    files
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).map_or(0, |m| m.permissions().mode() & 0o777)
}

/// Applies `n` to a fresh home and checks everything about that one run; returns the home.
fn check_node(
    set: &Set,
    fx: &FixtureStores,
    root: &Path,
    n: &TNode,
    fails: &mut Vec<String>,
) -> PathBuf {
    let mut f = Vec::new();
    let home = fresh_home(fx, root, &n.name);
    let pristine = snapshot(&home);
    let is_tm = n.profile == "traffic-manager";

    // --dry-run writes nothing.
    let dry = apply(&set.dir, &n.name, &home, &["--dry-run"]);
    let dry_report = report_of(&dry);
    if snapshot(&home) != pristine {
        f.push("--dry-run changed the home".to_string());
    }

    let real = apply(&set.dir, &n.name, &home, &[]);
    let report = match report_of(&real) {
        Ok(r) => r,
        Err(e) => {
            fails.push(format!("{}: apply failed: {e}", n.name));
            return home;
        }
    };
    match &dry_report {
        Ok(d) if d["dry_run"] == true && file_summary(d) == file_summary(&report) => {}
        Ok(d) => f.push(format!(
            "--dry-run reported other files:\n  dry:  {:?}\n  real: {:?}",
            file_summary(d),
            file_summary(&report)
        )),
        Err(e) => f.push(format!("--dry-run failed: {e}")),
    }
    let after = snapshot(&home);

    // No password in any output; password settings shown as ********.
    for r in [&dry, &real] {
        for pw in set.passwords() {
            if r.stdout.contains(pw) || r.stderr.contains(pw) {
                f.push(format!(
                    "a password ({}…) appears in apply's output",
                    &pw[..3]
                ));
            }
        }
    }
    for file in report_files(&report) {
        for c in file["changes"].as_array().into_iter().flatten() {
            let what = c["what"].as_str().unwrap_or_default().to_ascii_lowercase();
            if what.contains("password") || what.ends_with("keystorepass") {
                for side in ["old", "new"] {
                    if c.get(side).is_some_and(|v| v != "********") {
                        f.push(format!("{what}: {side} value shown as {}", c[side]));
                    }
                }
            }
        }
    }

    // Every value of config-2.6.md for the profile, and nothing else of api-manager.xml.
    let wants = expectations(set, n);
    f.extend(check_values(&home, &wants));
    f.extend(check_placement(&set.topo, n, &home));
    let mut allowed: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for w in &wants {
        allowed.entry(w.file.as_str()).or_default().insert(w.what());
    }

    // The traffic manager's swapped files.
    if is_tm {
        let axis2 = read_text(&home.join(AXIS2)).unwrap_or_default();
        if !axis2.contains("AXIS2-TM-VARIANT") {
            f.push("axis2.xml does not hold the axis2_TM.xml content".into());
        }
        for gone in [AXIS2_TM, REGISTRY_TM] {
            if home.join(gone).exists() {
                f.push(format!("{gone} still exists"));
            }
        }
        if after.get(REGISTRY) != pristine.get(REGISTRY_TM) {
            f.push("registry.xml is not the former registry_TM.xml byte for byte".into());
        }
    }

    // Only reported files changed; each edited file changed only its reported values.
    let before_files = home_files_of(&pristine);
    let after_files = home_files_of(&after);
    let mut consumed = BTreeSet::new();
    let mut reported_files = BTreeSet::new();
    for file in report_files(&report) {
        let rel = file["file"].as_str().unwrap_or_default().to_string();
        let action = file["action"].as_str().unwrap_or_default();
        let source = action
            .strip_prefix("replace (from ")
            .and_then(|s| s.strip_suffix(')'))
            .map(str::to_string);
        if let Some(s) = &source {
            consumed.insert(s.clone());
        }
        let changes = file["changes"].as_array().cloned().unwrap_or_default();
        if let Some(ok) = allowed.get(rel.as_str()) {
            for c in &changes {
                let what = c["what"].as_str().unwrap_or_default();
                if !ok.contains(what) {
                    f.push(format!(
                        "{rel}: changed {what}, which is not in config-2.6.md for {}",
                        n.profile
                    ));
                }
            }
        }
        let old_rel = source.clone().unwrap_or_else(|| rel.clone());
        match (
            before_files.get(&old_rel),
            after_files.get(&rel),
            syntax_of(&rel),
        ) {
            (Some(old), Some(new), Some(syntax)) if rel != REGISTRY => {
                f.extend(check_untouched(
                    &rel,
                    &decode(old),
                    &decode(new),
                    syntax,
                    &changes,
                ));
            }
            (_, None, _) => f.push(format!("{rel} is reported but absent")),
            _ => {}
        }
        if before_files.get(&rel) == after_files.get(&rel) && source.is_none() {
            f.push(format!("{rel} is reported ({action}) but did not change"));
        }
        reported_files.insert(rel);
    }
    let keys: BTreeSet<&String> = before_files.keys().chain(after_files.keys()).collect();
    for k in keys {
        if before_files.get(k) != after_files.get(k)
            && !reported_files.contains(k)
            && !consumed.contains(k)
        {
            f.push(format!("{k} changed but is not in the report"));
        }
    }

    // Modes: password files and every backup are 0600 and listed.
    let secret_files: BTreeSet<String> = report["secret_files"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    for rel in password_files(set, &n.name) {
        let m = mode(&home.join(&rel));
        if m != 0o600 {
            f.push(format!("{rel} has mode {m:o}, not 600"));
        }
        if !secret_files.contains(&rel) {
            f.push(format!("{rel} holds a password but is not in secret_files"));
        }
    }
    let backup = report["backup"].as_str().map(PathBuf::from);
    match &backup {
        Some(b) => {
            for rel in snapshot(b).keys() {
                let m = mode(&b.join(rel));
                if m != 0o600 {
                    f.push(format!("backup {rel} has mode {m:o}, not 600"));
                }
            }
        }
        None => f.push("no backup recorded".into()),
    }

    // A second apply changes nothing: no file, no new backup.
    let second = apply(&set.dir, &n.name, &home, &[]);
    match report_of(&second) {
        Ok(r2) => {
            if !report_files(&r2).is_empty() || !r2["backup"].is_null() {
                f.push(format!(
                    "second apply is not a no-op: {:?}",
                    file_summary(&r2)
                ));
            }
        }
        Err(e) => f.push(format!("second apply failed: {e}")),
    }
    if snapshot(&home) != after {
        f.push("second apply changed the home".into());
    }

    // Restoring the backup gives back the pristine home (in a copy; the applied home is kept).
    if let Some(b) = &backup {
        let restored = root.join("restored").join(&n.name);
        copy_tree(&home, &restored);
        let backup_rel = b.strip_prefix(&home).expect("backup inside the home");
        let backup_copy = restored.join(backup_rel);
        for (rel, bytes) in snapshot(&backup_copy) {
            let target = restored.join(&rel);
            std::fs::create_dir_all(target.parent().expect("parent")).expect("mkdir");
            std::fs::write(&target, bytes).expect("restore");
        }
        let now = home_files(&restored);
        for (rel, bytes) in &before_files {
            if now.get(rel) != Some(bytes) {
                f.push(format!("restoring the backup does not give back {rel}"));
            }
        }
        for rel in now.keys().filter(|k| !before_files.contains_key(*k)) {
            // Files apply created (a new TLS keystore) have no original to restore.
            if !reported_files.contains(rel) {
                f.push(format!(
                    "{rel} exists after restoring but was neither original nor installed"
                ));
            }
        }
    }

    let mut seen = BTreeSet::new();
    fails.extend(
        f.into_iter()
            .filter(|m| seen.insert(m.clone()))
            .map(|m| format!("{}: {m}", n.name)),
    );
    home
}

fn home_files_of(snap: &BTreeMap<String, Vec<u8>>) -> BTreeMap<String, Vec<u8>> {
    snap.iter()
        .filter(|(k, _)| !k.starts_with(BACKUP_DIR))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// After every node: truststores (keytool) and TLS between peers (JSSE)
// ---------------------------------------------------------------------------------------------

/// A path from a config file, resolved in `home` (`${carbon.home}/…`, `./…` or relative).
fn resolve(home: &Path, location: &str) -> PathBuf {
    let rel = location
        .strip_prefix("${carbon.home}/")
        .or_else(|| location.strip_prefix("./"))
        .unwrap_or(location);
    home.join(rel)
}

/// The truststore carbon.xml names now: (file, type, password).
fn configured_truststore(home: &Path) -> (PathBuf, String, String) {
    let doc = parse_xml(&read_text(&home.join(CARBON)).unwrap_or_default(), CARBON);
    let one = |p: &str| doc.texts(p).into_iter().next().unwrap_or_default();
    (
        resolve(home, &one("Server/Security/TrustStore/Location")),
        one("Server/Security/TrustStore/Type"),
        one("Server/Security/TrustStore/Password"),
    )
}

/// alias → SHA-256 from `keytool -list -v`.
fn keytool_entries(listing: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut alias: Option<String> = None;
    for line in listing.lines() {
        if let Some(a) = line.strip_prefix("Alias name: ") {
            alias = Some(a.trim().to_string());
        } else if let Some(fp) = line.trim().strip_prefix("SHA256: ") {
            if let Some(a) = alias.take() {
                out.insert(a, fp.trim().to_string());
            }
        }
    }
    out
}

/// `f` over `items` on as many threads as there are cores (Java tools are slow to start).
fn parallel_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let workers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(1, 4);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: Vec<std::sync::Mutex<Option<R>>> =
        items.iter().map(|_| std::sync::Mutex::new(None)).collect();
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(item) = items.get(i) else { break };
                *results[i].lock().expect("lock") = Some(f(item));
            });
        }
    });
    results
        .into_iter()
        .map(|r| r.into_inner().expect("lock").expect("result"))
        .collect()
}

/// What keytool lists in each node's configured truststore (alias → SHA-256).
type Listings = BTreeMap<String, BTreeMap<String, String>>;

/// The configured truststore of every node: its bytes are the configured type, and keytool
/// lists the fixture's public CA plus exactly the set's entries (the fixture's old wso2carbon
/// and gateway_certificate_alias replaced). keytool runs once per distinct (file bytes,
/// password): the same bytes and password list the same.
fn check_truststores(
    set: &Set,
    fx: &FixtureStores,
    homes: &BTreeMap<String, PathBuf>,
    fails: &mut Vec<String>,
) -> Listings {
    let mut distinct: BTreeMap<(Vec<u8>, String), PathBuf> = BTreeMap::new();
    let mut of_node = BTreeMap::new();
    for (name, home) in homes {
        let (file, ty, pass) = configured_truststore(home);
        let Ok(bytes) = std::fs::read(&file) else {
            fails.push(format!(
                "{name}: configured truststore {} is missing",
                file.display()
            ));
            continue;
        };
        let is_p12 = bytes.first() == Some(&0x30);
        let is_jks = bytes.starts_with(&[0xFE, 0xED, 0xFE, 0xED]);
        if (ty == "JKS" && !is_jks) || (ty == "PKCS12" && !is_p12) {
            fails.push(format!("{name}: truststore bytes are not {ty}"));
        }
        let key = (bytes, pass);
        distinct.entry(key.clone()).or_insert(file);
        of_node.insert(name.clone(), key);
    }
    let jobs: Vec<(&(Vec<u8>, String), &PathBuf)> = distinct.iter().collect();
    let listed: BTreeMap<&(Vec<u8>, String), Result<String, String>> = jobs
        .iter()
        .map(|(k, _)| *k)
        .zip(parallel_map(&jobs, |(k, file)| {
            java::keytool_list(&java::jdk17_keytool(), file, &k.1)
        }))
        .collect();
    let mut listings = Listings::new();
    for (name, key) in &of_node {
        let mut expected = set.truststore_entries(name);
        expected.insert("publicca".into(), fx.public_ca_sha256.clone());
        if !expected.contains_key(&format!("{}-ca", set.topo.name)) {
            fails.push(format!(
                "{name}: the set's truststore has no {}-ca",
                set.topo.name
            ));
        }
        match &listed[key] {
            Ok(text) => {
                let got = keytool_entries(text);
                if got != expected {
                    fails.push(format!(
                        "{name}: truststore entries {got:?}, expected {expected:?}"
                    ));
                }
                listings.insert(name.clone(), got);
            }
            Err(e) => fails.push(format!("{name}: keytool cannot list the truststore: {e}")),
        }
    }
    listings
}

/// What serves `base_port` in a home: (keystore file, type, password), from the home's files.
fn serving_keystore(home: &Path, base_port: u16) -> Result<(PathBuf, String, String), String> {
    let doc = |rel: &str| parse_xml(&read_text(&home.join(rel)).unwrap_or_default(), rel);
    let first = |v: Vec<String>| v.into_iter().next().unwrap_or_default();
    let type_of = |p: &Path| {
        if p.extension().is_some_and(|e| e == "p12") {
            "PKCS12"
        } else {
            "JKS"
        }
        .to_string()
    };
    match base_port {
        9443 => {
            let d = doc(CATALINA);
            let c = "Server/Service/Connector[@port='9443']";
            Ok((
                resolve(home, &first(d.attrs(c, "keystoreFile"))),
                first(d.attrs(c, "keystoreType")),
                first(d.attrs(c, "keystorePass")),
            ))
        }
        8243 => {
            let d = doc(AXIS2);
            let k =
                "axisconfig/transportReceiver[@name='https']/parameter[@name='keystore']/KeyStore";
            Ok((
                resolve(home, &first(d.texts(&format!("{k}/Location")))),
                first(d.texts(&format!("{k}/Type"))),
                first(d.texts(&format!("{k}/Password"))),
            ))
        }
        9711 => {
            let d = doc(DATA_BRIDGE);
            let file = resolve(
                home,
                &first(d.texts("dataBridgeConfiguration/keyStoreLocation")),
            );
            let ty = type_of(&file);
            Ok((
                file,
                ty,
                first(d.texts("dataBridgeConfiguration/keyStorePassword")),
            ))
        }
        other => Err(format!("no TLS listener known on base port {other}")),
    }
}

/// For every node and every `https://` / `ssl://` peer URL in its node.toml: a JSSE client with
/// the node's configured truststore connects to the URL's host, served with the keystore the
/// serving node's applied files configure for that port (for a URL served by a load balancer,
/// TLS passthrough: the first node behind it, serving its own keystore).
///
/// One JVM per distinct (keystore bytes, truststore content, types, passwords), several hosts
/// each. Truststores are compared by content, the alias → SHA-256 list keytool printed for each
/// node's own file in `check_truststores`: trust anchors are the certificates, so two files that
/// list the same certificates decide a handshake alike (the bytes differ by entry timestamps).
fn probe_peers(set: &Set, homes: &BTreeMap<String, PathBuf>, listings: &Listings) -> Vec<String> {
    type Key = (
        Vec<u8>,
        String,
        String,
        BTreeMap<String, String>,
        String,
        String,
    );
    let mut fails = Vec::new();
    let mut groups: BTreeMap<Key, (PathBuf, PathBuf, BTreeSet<String>, Vec<String>)> =
        BTreeMap::new();
    for (name, home) in homes {
        // node.toml read back through the library's own types, as apply and verify read it.
        let plan = apim_pki::node_toml::read(&set.dir.join(format!("nodes/{name}/node.toml")))
            .expect("node.toml");
        let (ts_file, ts_type, ts_pass) = configured_truststore(home);
        let Some(ts_listing) = listings.get(name) else {
            fails.push(format!("{name}: no truststore listing; TLS not probed"));
            continue;
        };
        for (_, peer) in plan.all_targets() {
            let url = peer.url.as_str();
            if !peer.is_tls() {
                continue;
            }
            let host = peer.host.clone();
            let port = peer.port;
            let served_by = peer.served_by.to_string();
            let served_by = served_by.as_str();
            let (server, base_port) = if let Some(node) = served_by.strip_prefix("node ") {
                let s = set.topo.node(node);
                (s.name.clone(), port - s.offset)
            } else if let Some(lb) = served_by.strip_prefix("load-balancer ") {
                let fronts = &set
                    .topo
                    .lbs
                    .iter()
                    .find(|(h, _)| h == lb)
                    .expect("load balancer")
                    .1;
                (set.topo.of(fronts)[0].name.clone(), port)
            } else {
                fails.push(format!("{name}: {url}: unknown served_by {served_by:?}"));
                continue;
            };
            let (ks_file, ks_type, ks_pass) = match serving_keystore(&homes[&server], base_port) {
                Ok(k) => k,
                Err(e) => {
                    fails.push(format!("{name}: {url} ({served_by}): {e}"));
                    continue;
                }
            };
            let Ok(ks_bytes) = std::fs::read(&ks_file) else {
                fails.push(format!(
                    "{name}: {url}: {server} has no keystore at {}",
                    ks_file.display()
                ));
                continue;
            };
            let key = (
                ks_bytes,
                ks_type.clone(),
                ks_pass.clone(),
                ts_listing.clone(),
                ts_type.clone(),
                ts_pass.clone(),
            );
            let g = groups.entry(key).or_insert_with(|| {
                (
                    ks_file.clone(),
                    ts_file.clone(),
                    BTreeSet::new(),
                    Vec::new(),
                )
            });
            g.2.insert(host.clone());
            g.3.push(format!(
                "{name} → {url} ({served_by}, {server}'s port {base_port} keystore)"
            ));
        }
    }
    assert!(!groups.is_empty(), "no TLS peer URL to probe");
    let java = java::jdk17_java();
    let jobs: Vec<_> = groups.iter().collect();
    let all = parallel_map(
        &jobs,
        |((_, ks_type, ks_pass, _, ts_type, ts_pass), (ks_file, ts_file, hosts, _))| {
            let hosts: Vec<&str> = hosts.iter().map(String::as_str).collect();
            java::tls_probe(
                &java, ks_file, ks_type, ks_pass, ts_file, ts_type, ts_pass, &hosts,
            )
        },
    );
    for ((_, (_, _, _, uses)), results) in jobs.iter().zip(all) {
        for (host, result) in results {
            if let Err(e) = result {
                fails.push(format!(
                    "JSSE to {host} failed ({e}) for: {}",
                    uses.join("; ")
                ));
            }
        }
    }
    eprintln!(
        "probed {} TLS peer URLs in {} JVM runs",
        groups.values().map(|g| g.3.len()).sum::<usize>(),
        groups.len()
    );
    fails
}

// ---------------------------------------------------------------------------------------------
// The topologies
// ---------------------------------------------------------------------------------------------

fn check_topology(label: &str, topology: &str, probe_tls: bool) {
    let Some(fx) = fixture_stores() else { return };
    let start = Instant::now();
    let tmp = tempfile::tempdir().expect("tempdir");
    let set = Set::generate(tmp.path(), topology);
    let generated = start.elapsed();
    let mut fails = Vec::new();
    let mut homes = BTreeMap::new();
    for n in &set.topo.nodes {
        let home = check_node(&set, fx, tmp.path(), n, &mut fails);
        homes.insert(n.name.clone(), home);
    }
    let applied = start.elapsed();
    let listings = check_truststores(&set, fx, &homes, &mut fails);
    let listed = start.elapsed();
    if probe_tls && java::require("java") && java::require("javac") {
        fails.extend(probe_peers(&set, &homes, &listings));
    }
    eprintln!(
        "{label}: generate {generated:.1?}, apply checks {:.1?}, keytool {:.1?}, TLS {:.1?}",
        applied - generated,
        listed - applied,
        start.elapsed() - listed
    );
    crate::util::assert_no_problems(label, &fails);
}

#[test]
#[cfg_attr(
    not(apim_pki_jdk17),
    ignore = "needs JDK 17: java, javac and keytool on PATH (apt-get install openjdk-17-jdk-headless); .ci/run installs it all"
)]
fn every_profile_on_one_machine_with_offsets() {
    check_topology("one machine", ONE_MACHINE, false);
}

#[test]
#[cfg_attr(
    not(apim_pki_jdk17),
    ignore = "needs JDK 17: java, javac and keytool on PATH (apt-get install openjdk-17-jdk-headless); .ci/run installs it all"
)]
fn seed_ha_with_a_gateway_manager() {
    check_topology("seed HA", &ha_example(), true);
}

#[test]
#[cfg_attr(
    not(apim_pki_jdk17),
    ignore = "needs JDK 17: java, javac and keytool on PATH (apt-get install openjdk-17-jdk-headless); .ci/run installs it all"
)]
fn ha_gateways_on_a_shared_file_system_with_offsets_everywhere() {
    check_topology("HA gateways", HA_GATEWAYS, true);
}

// ---------------------------------------------------------------------------------------------
// Refusals and variants
// ---------------------------------------------------------------------------------------------

#[test]
#[cfg_attr(
    not(apim_pki_jdk17),
    ignore = "needs JDK 17: java, javac and keytool on PATH (apt-get install openjdk-17-jdk-headless); .ci/run installs it all"
)]
fn a_missing_file_exits_2_naming_it_and_writes_nothing() {
    let Some(fx) = fixture_stores() else { return };
    let tmp = tempfile::tempdir().expect("tempdir");
    let set = Set::generate(tmp.path(), ONE_MACHINE);
    for node in ["publisher", "gw"] {
        let home = fresh_home(fx, tmp.path(), node);
        std::fs::remove_file(home.join(API_MANAGER)).expect("remove api-manager.xml");
        let r = refused_unchanged(&home, node, || apply(&set.dir, node, &home, &[]));
        assert!(
            r.stderr.contains(API_MANAGER),
            "{node}: the message does not name the file: {}",
            r.stderr
        );
    }
}

#[test]
#[cfg_attr(
    not(apim_pki_jdk17),
    ignore = "needs JDK 17: java, javac and keytool on PATH (apt-get install openjdk-17-jdk-headless); .ci/run installs it all"
)]
fn a_missing_element_exits_2_naming_it_and_writes_nothing() {
    let Some(fx) = fixture_stores() else { return };
    let tmp = tempfile::tempdir().expect("tempdir");
    let set = Set::generate(tmp.path(), ONE_MACHINE);
    for node in ["km", "tm"] {
        let home = fresh_home(fx, tmp.path(), node);
        let carbon = read_text(&home.join(CARBON)).expect("carbon.xml");
        let start = carbon
            .find("        <TrustStore>")
            .expect("TrustStore in the fixture");
        let end =
            carbon.find("</TrustStore>\n").expect("end of TrustStore") + "</TrustStore>\n".len();
        std::fs::write(
            home.join(CARBON),
            format!("{}{}", &carbon[..start], &carbon[end..]),
        )
        .expect("write");
        let r = refused_unchanged(&home, node, || apply(&set.dir, node, &home, &[]));
        assert!(
            r.stderr.contains("Server/Security/TrustStore") && r.stderr.contains("carbon.xml"),
            "{node}: the message does not name the element and the file: {}",
            r.stderr
        );
    }
}

#[test]
#[cfg_attr(
    not(apim_pki_jdk17),
    ignore = "needs JDK 17: java, javac and keytool on PATH (apt-get install openjdk-17-jdk-headless); .ci/run installs it all"
)]
fn the_older_layout_gets_the_url_groups_inside_data_publisher() {
    let Some(fx) = fixture_stores() else { return };
    let tmp = tempfile::tempdir().expect("tempdir");
    let set = Set::generate(tmp.path(), HA_GATEWAYS);
    let old_layout =
        std::fs::read(Path::new(FIXTURE).join("api-manager-old-layout.xml")).expect("variant");
    let dp = "APIManager/ThrottlingConfigurations/DataPublisher";
    let mut fails = Vec::new();
    for node in ["pub", "gw1"] {
        let home = fresh_home(fx, tmp.path(), node);
        std::fs::write(home.join(API_MANAGER), &old_layout).expect("write variant");
        let r = apply(&set.dir, node, &home, &[]);
        let report = report_of(&r).unwrap_or_else(|e| panic!("{node}: {e}"));
        let text = read_text(&home.join(API_MANAGER)).expect("api-manager.xml");
        let doc = parse_xml(&text, API_MANAGER);
        for (path, want) in [
            (
                format!("{dp}/ReceiverUrlGroup"),
                "{tcp://tm1.hagw.example:9614}, {tcp://tm2.hagw.example:9615}",
            ),
            (
                format!("{dp}/AuthUrlGroup"),
                "{ssl://tm1.hagw.example:9714}, {ssl://tm2.hagw.example:9715}",
            ),
            (format!("{dp}/Type"), "Binary"),
            (format!("{dp}/Enabled"), "true"),
        ] {
            if doc.texts(&path) != [want] {
                fails.push(format!(
                    "{node}: {path} = {:?}, expected {want:?}",
                    doc.texts(&path)
                ));
            }
        }
        if doc.count("APIManager/ThrottlingConfigurations/TrafficManager") != 0 {
            fails.push(format!("{node}: a TrafficManager element was created"));
        }
        let am = report_files(&report)
            .into_iter()
            .find(|f| f["file"] == API_MANAGER)
            .expect("api-manager.xml in the report");
        let changes = am["changes"].as_array().cloned().unwrap_or_default();
        fails.extend(check_untouched(
            &format!("{node} {API_MANAGER}"),
            &decode(&old_layout),
            &text,
            Syntax::Xml,
            &changes,
        ));
    }
    assert!(fails.is_empty(), "{}", fails.join("\n"));
}

/// WSO2's data bridge agent (carbon-analytics-common `AgentConfiguration`) binds the elements
/// `TrustSore` and `TrustSorePassword` (sic); the stock file ships them commented out, and an
/// operator who pins the publishing client's truststore uncomments them. config-2.6.md: "each
/// agent's truststore path and password = the truststore". After apply the Binary agent must
/// name the node's truststore (PKCS#12 here: a new file name) with its password; otherwise the
/// gateway's throttling publisher opens the old file with a stale password.
#[test]
#[cfg_attr(
    not(apim_pki_jdk17),
    ignore = "needs JDK 17: java, javac and keytool on PATH (apt-get install openjdk-17-jdk-headless); .ci/run installs it all"
)]
fn data_agent_truststore_uses_wso2s_element_names() {
    let Some(fx) = fixture_stores() else { return };
    let tmp = tempfile::tempdir().expect("tempdir");
    let set = Set::generate(tmp.path(), HA_GATEWAYS);
    let home = fresh_home(fx, tmp.path(), "gw1");
    let r = apply(&set.dir, "gw1", &home, &[]);
    report_of(&r).unwrap_or_else(|e| panic!("{e}"));
    let text = read_text(&home.join(DATA_AGENT)).expect("data-agent-config.xml");
    let doc = parse_xml(&text, DATA_AGENT);
    let agent = "DataAgentsConfiguration/Agent";
    let want_location = format!("${{carbon.home}}/{SECURITY}/{}", set.trust_file());
    let location = doc.texts(&format!("{agent}/TrustSore"));
    let password = doc.texts(&format!("{agent}/TrustSorePassword"));
    assert!(
        location == [want_location.as_str()] && password == [set.trust_pw.as_str()],
        "data-agent-config.xml: TrustSore = {location:?} (expected {want_location:?}), TrustSorePassword \
         is {} the truststore password",
        if password == [set.trust_pw.as_str()] { "" } else { "not" }
    );
    assert_eq!(
        mode(&home.join(DATA_AGENT)),
        0o600,
        "data-agent-config.xml holds a password"
    );
}

/// The product's carbon.xml declares ISO-8859-1. Latin-1 bytes in it (an operator's comment)
/// must neither stop apply nor be altered.
#[test]
#[cfg_attr(
    not(apim_pki_jdk17),
    ignore = "needs JDK 17: java, javac and keytool on PATH (apt-get install openjdk-17-jdk-headless); .ci/run installs it all"
)]
fn a_latin1_carbon_xml_is_edited_in_its_encoding() {
    let Some(fx) = fixture_stores() else { return };
    let tmp = tempfile::tempdir().expect("tempdir");
    let set = Set::generate(tmp.path(), ONE_MACHINE);
    let home = fresh_home(fx, tmp.path(), "km");
    let original = std::fs::read(home.join(CARBON)).expect("carbon.xml");
    let needle = b"<Server xmlns=";
    let at = original
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("root element");
    let mut latin1 = original[..at].to_vec();
    latin1.extend_from_slice(b"<!-- Betrieb: M\xfcnchen, \xa9 Acme -->\n");
    latin1.extend_from_slice(&original[at..]);
    std::fs::write(home.join(CARBON), &latin1).expect("write carbon.xml");
    let r = apply(&set.dir, "km", &home, &[]);
    let report =
        report_of(&r).unwrap_or_else(|e| panic!("apply refused a Latin-1 carbon.xml: {e}"));
    let after = std::fs::read(home.join(CARBON)).expect("carbon.xml");
    assert!(
        after.windows(10).any(|w| w == b"M\xfcnchen, \xa9"),
        "the Latin-1 bytes did not survive"
    );
    let carbon = report_files(&report)
        .into_iter()
        .find(|f| f["file"] == CARBON)
        .expect("carbon.xml reported");
    let changes = carbon["changes"].as_array().cloned().unwrap_or_default();
    let fails = check_untouched(
        CARBON,
        &decode(&latin1),
        &decode(&after),
        Syntax::Xml,
        &changes,
    );
    assert!(fails.is_empty(), "{}", fails.join("\n"));
    let km = set.topo.node("km").clone();
    let wants: Vec<Want> = expectations(&set, &km)
        .into_iter()
        .filter(|w| w.file == CARBON)
        .collect();
    let fails = check_values(&home, &wants);
    assert!(fails.is_empty(), "{}", fails.join("\n"));
}

/// The line-and-value check itself: it accepts the reported edits and catches every other kind.
#[test]
fn the_untouched_check_catches_stray_edits() {
    let old = "<?xml version=\"1.0\"?>\n<R>\n  <!-- c -->\n  <A><P>x</P></A>\n  <B><P>y</P><Q>q</Q></B>\n  <C>c</C>\n</R>\n";
    let ch = |what: &str, old: Option<&str>, new: &str| {
        let mut v = serde_json::json!({"what": what, "new": new});
        if let Some(o) = old {
            v["old"] = Value::String(o.into());
        }
        v
    };
    let a_p = [ch("R/A/P", Some("x"), "X")];
    // a. legit
    let new = old.replace("<A><P>x</P></A>", "<A><P>X</P></A>");
    assert!(check_untouched("a", old, &new, Syntax::Xml, &a_p).is_empty());
    // b. comment changed
    let bad = new.replace("<!-- c -->", "<!-- d -->");
    assert!(!check_untouched("b", old, &bad, Syntax::Xml, &a_p).is_empty());
    // c. unreported element on a reported leaf name elsewhere
    let bad = new.replace("<B><P>y</P>", "<B><P>Y</P>");
    let f = check_untouched("c", old, &bad, Syntax::Xml, &a_p);
    assert!(!f.is_empty());
    // d. same line, other element
    let bad = new.replace("<Q>q</Q>", "<Q>Q</Q>");
    assert!(!check_untouched("d", old, &bad, Syntax::Xml, &a_p).is_empty());
    // e. extra line
    let bad = new.replace("  <C>c</C>\n", "  <C>c</C>\n  <D>d</D>\n");
    assert!(!check_untouched("e", old, &bad, Syntax::Xml, &a_p).is_empty());
    // f. created element: right value ok, wrong value not
    let cr = [ch("R/D", None, "d")];
    let good = old.replace("  <C>c</C>\n", "  <C>c</C>\n  <D>d</D>\n");
    assert!(check_untouched("f", old, &good, Syntax::Xml, &cr).is_empty());
    let bad = old.replace("  <C>c</C>\n", "  <C>c</C>\n  <D>e</D>\n");
    assert!(!check_untouched("f2", old, &bad, Syntax::Xml, &cr).is_empty());
    // g. line ending changed
    let bad = new.replace("  <C>c</C>\n", "  <C>c</C>\r\n");
    assert!(!check_untouched("g", old, &bad, Syntax::Xml, &a_p).is_empty());
    // h. properties: other key changed
    let po = "# x\na = 1\nb=2\n";
    let pc = [ch("a", Some("1"), "3")];
    assert!(check_untouched("h", po, "# x\na = 3\nb=2\n", Syntax::Properties, &pc).is_empty());
    assert!(!check_untouched("h2", po, "# x\na = 3\nb=3\n", Syntax::Properties, &pc).is_empty());
    assert!(!check_untouched("h3", po, "# x\na=3\nb=2\n", Syntax::Properties, &pc).is_empty());
    // i. json
    let jo = "{\n  \"ssoConfiguration\" : {\n    \"k\" : \"v\",\n    \"o\" : \"w\"\n  },\n  \"x\" : { \"k\" : \"v\" }\n}\n";
    let jc = [ch("ssoConfiguration.k", Some("********"), "********")];
    assert!(check_untouched(
        "i",
        jo,
        &jo.replacen("\"v\"", "\"z\"", 1),
        Syntax::Json,
        &jc
    )
    .is_empty());
    assert!(
        !check_untouched("i2", jo, &jo.replace("\"v\"", "\"z\""), Syntax::Json, &jc).is_empty()
    );
    // j. created attribute
    let ao = "<R>\n  <E a=\"1\"/>\n</R>\n";
    let ac = [ch("R/E/@b", None, "2")];
    assert!(check_untouched(
        "j",
        ao,
        "<R>\n  <E a=\"1\" b=\"2\"/>\n</R>\n",
        Syntax::Xml,
        &ac
    )
    .is_empty());
    assert!(!check_untouched(
        "j2",
        ao,
        "<R>\n  <E a=\"9\" b=\"2\"/>\n</R>\n",
        Syntax::Xml,
        &ac
    )
    .is_empty());
}

/// config-2.6.md: "where [TrustStore/Password] is a secure-vault alias, apply exits 2 and asks
/// for `--existing-truststore-password-env VAR`". And nothing is written.
#[test]
#[cfg_attr(
    not(apim_pki_jdk17),
    ignore = "needs JDK 17: java, javac and keytool on PATH (apt-get install openjdk-17-jdk-headless); .ci/run installs it all"
)]
fn a_secure_vault_truststore_password_asks_for_the_env_option() {
    let Some(fx) = fixture_stores() else { return };
    let tmp = tempfile::tempdir().expect("tempdir");
    let set = Set::generate(tmp.path(), ONE_MACHINE);
    let home = fresh_home(fx, tmp.path(), "gw");
    let carbon = read_text(&home.join(CARBON)).expect("carbon.xml");
    let carbon = carbon.replacen(
        "<Server xmlns=\"http://wso2.org/projects/carbon/carbon.xml\">",
        "<Server xmlns=\"http://wso2.org/projects/carbon/carbon.xml\" \
         xmlns:svns=\"http://org.wso2.securevault/configuration\">",
        1,
    );
    let at = carbon.find("<TrustStore>").expect("TrustStore");
    let pw = at
        + carbon[at..]
            .find("<Password>wso2carbon</Password>")
            .expect("password");
    let carbon = format!(
        "{}<Password svns:secretAlias=\"Carbon.Security.TrustStore.Password\">password</Password>{}",
        &carbon[..pw],
        &carbon[pw + "<Password>wso2carbon</Password>".len()..]
    );
    std::fs::write(home.join(CARBON), carbon).expect("write carbon.xml");
    let r = refused_unchanged(&home, "gw", || apply(&set.dir, "gw", &home, &[]));
    assert!(
        r.stderr.contains("--existing-truststore-password-env"),
        "the message does not ask for --existing-truststore-password-env: {}",
        r.stderr
    );
}

// ---------------------------------------------------------------------------------------------
// Passwords that do not open the set (issue 8, item 5)
// ---------------------------------------------------------------------------------------------

/// `ONE_MACHINE` with every password taken from these variables.
fn with_password_vars(vars: [(&str, &str); 3]) -> String {
    let at = ONE_MACHINE.find("[[node]]").expect("a node");
    let table: String = vars
        .iter()
        .map(|(role, var)| format!("{role} = \"{var}\"\n"))
        .collect();
    format!(
        "{}[passwords]\n{table}\n{}",
        &ONE_MACHINE[..at],
        &ONE_MACHINE[at..]
    )
}

/// apply writes the password it takes from the environment into the node's files: when that
/// is not the password the set was made with (or a key entry has another key password), the
/// node could not start. Exit 2 naming the variable and the keystore, never the password, and
/// nothing written.
#[test]
#[cfg_attr(
    not(apim_pki_jdk17),
    ignore = "needs JDK 17: java, javac and keytool on PATH (apt-get install openjdk-17-jdk-headless); .ci/run installs it all"
)]
fn a_password_that_does_not_open_the_set_is_exit_2_and_writes_nothing() {
    let Some(fx) = fixture_stores() else { return };
    let tmp = tempfile::tempdir().expect("tempdir");
    let vars = [
        ("primary", "APIM_PKI_T5_PRIMARY"),
        ("tls", "APIM_PKI_T5_TLS"),
        ("truststore", "APIM_PKI_T5_TRUST"),
    ];
    let made_with = [
        ("APIM_PKI_T5_PRIMARY", "primary-pw-one"),
        ("APIM_PKI_T5_TLS", "tls-pw-one"),
        ("APIM_PKI_T5_TRUST", "trust-pw-one"),
    ];
    let topo = write_topology(tmp.path(), &with_password_vars(vars));
    let set = tmp.path().join("set");
    generate(&topo, &set, &made_with);
    let apply_with = |home: &Path, env: &[(&str, &str)]| cli::apply(&set, "gw", home, &[], env);
    let file = |name: &str| format!("nodes/gw/{SECURITY}/{name}");
    for (i, (var, _)) in made_with.iter().enumerate() {
        let mut env = made_with.to_vec();
        env[i].1 = "another-password";
        let home = fresh_home(fx, tmp.path(), &format!("wrong-{var}"));
        let r = refused_unchanged(&home, var, || apply_with(&home, &env));
        let keystore = ["wso2carbon.jks", "gw-tls.jks", "client-truststore.jks"][i];
        assert!(
            r.stderr.contains(var) && r.stderr.contains(&file(keystore)),
            "{var}: the message must name the variable and {keystore}: {}",
            r.stderr
        );
        for (_, secret) in &env {
            assert!(!r.stderr.contains(secret), "{var}: a password is shown");
        }
    }

    // The store opens, but its key entry has another key password.
    let tls_path = set.join(file("gw-tls.jks"));
    let original = std::fs::read(&tls_path).expect("gw-tls.jks");
    let store = apim_pki::jks::JksKeyStore::from_bytes(&original, "tls-pw-one")
        .expect("the TLS keystore opens");
    let apim_pki::jks::JksEntry::PrivateKey { key, chain, .. } = &store.entries[0] else {
        panic!("gw-tls.jks holds no key entry first")
    };
    let pkcs8 = key.decrypt("tls-pw-one").expect("key password");
    let mut other = apim_pki::jks::JksKeyStore::new();
    other
        .add_private_key("gw", 0, &pkcs8, "another-key-password", chain.clone())
        .expect("add key");
    std::fs::write(&tls_path, other.to_bytes("tls-pw-one").expect("encode")).expect("write");
    let home = fresh_home(fx, tmp.path(), "key-password");
    let r = refused_unchanged(&home, "key password", || apply_with(&home, &made_with));
    assert!(
        r.stderr.contains("key entry") && r.stderr.contains("APIM_PKI_T5_TLS"),
        "key password: {}",
        r.stderr
    );

    // With the set's own passwords, apply goes through.
    std::fs::write(&tls_path, &original).expect("restore");
    let r = apply_with(&home, &made_with);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
}

/// node.toml is read back through the plan's own types: one an older apim-pki wrote (no
/// `schema`, or schema 2) is refused by apply (exit 2, naming the file and what to do) and reported by
/// verify; `generate` rewrites it and changes nothing else.
#[test]
fn an_older_node_toml_is_refused_until_generate_rewrites_it() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let text = crate::util::cli::minimal_example() + "\n[pki]\nkey = \"ecdsa-p256\"\n";
    let topo = write_topology(tmp.path(), &text);
    let set = tmp.path().join("set");
    generate(&topo, &set, &[]);
    let dir = set.to_str().expect("utf-8");
    let node_toml = set.join("nodes/gateway/node.toml");
    let before = snapshot(&set);
    std::fs::write(
        &node_toml,
        "name = \"gateway\"\n[settings]\n\"carbon.xml: HostName\" = \"gw.dev.acme.internal\"\n",
    )
    .expect("write");
    let home = tmp.path().join("home");
    let home_arg = home.to_str().expect("utf-8");
    let refused = |says: &str| {
        let r = run(
            &["apply", dir, "--node", "gateway", "--apim-home", home_arg],
            &[],
        );
        assert_eq!(r.code, 2, "{}", r.stderr);
        assert!(
            r.stderr.contains(says) && r.stderr.contains("run `apim-pki generate` again"),
            "{}",
            r.stderr
        );
    };
    refused("nodes/gateway/node.toml: written by an older apim-pki");
    let v = run(&["verify", dir, "--format", "json"], &[]);
    assert_eq!(v.code, 1, "{}", v.stdout);
    assert!(
        v.stdout.contains("corrupt-file") && v.stdout.contains("apim-pki generate"),
        "{}",
        v.stdout
    );
    // Schema 2 listed the peer groups in every node.toml: refused the same way.
    let two = "schema = 2\nname = \"gateway\"\n[[peer_group.traffic-manager.members]]\n";
    std::fs::write(&node_toml, two).expect("write");
    refused("node.toml: written by an older apim-pki (schema 2), but this apim-pki reads node.toml schema 4");
    generate(&topo, &set, &[]);
    let after = snapshot(&set);
    let rewritten = std::fs::read_to_string(&node_toml).expect("read");
    assert!(rewritten.contains("\nschema = 4\n"), "{rewritten}");
    let differs: Vec<&String> = after
        .iter()
        .filter(|(k, v)| !k.starts_with("history/") && before.get(*k) != Some(v))
        .map(|(k, _)| k)
        .collect();
    assert!(
        differs.is_empty(),
        "only node.toml was rewritten: {differs:?}"
    );
    assert_eq!(run(&["verify", dir], &[]).code, 0);
}
