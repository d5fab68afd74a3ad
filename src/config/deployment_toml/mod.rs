//! deployment.toml for API-M 3.2 and 4.x: the node's keystores, host, offset, and the URLs of its
//! peers, rendered deterministically.
//!
//! Plain string building: every value goes through `toml_str` so it is escaped, and the same
//! topology always gives the same bytes. Passwords never appear in the sections that use them:
//! those hold `$secret{alias}` references, and a `[secrets]` table at the end holds the values as
//! `alias = "[plain-text]"`, which WSO2's cipher tool encrypts in place.
//!
//! Which peer tables a node gets and the URLs they name come from the plan
//! ([`crate::plan::peers`]); this module writes them.

use std::fmt::Write as _;

use crate::output::layout;
use crate::plan::peers::peer_tables;
use crate::plan::Target;
use crate::topology::{Node, Product, Profile, TlsMode, Topology};

pub(crate) mod merge;
pub(crate) mod secrets;
mod tables;

/// Where a password comes from, as deployment.toml refers to it.
#[derive(Clone, Copy)]
pub(crate) enum Secret<'a> {
    /// A generated password: written to `[secrets]` for WSO2's cipher tool.
    Value(&'a str),
    /// A password from an environment variable: referred to as `$env{VAR}`, never written.
    Env(&'a str),
}

impl std::fmt::Debug for Secret<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Secret::Value(_) => f.write_str("Value([elided])"),
            Secret::Env(v) => write!(f, "Env({v})"),
        }
    }
}

/// The three passwords a node's deployment.toml needs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Passwords<'a> {
    /// The shared primary (and internal) keystore's store and key password.
    pub primary: Secret<'a>,
    /// The node's TLS keystore's password (unused with `tls = "shared"`).
    pub tls: Secret<'a>,
    /// The truststore's password.
    pub truststore: Secret<'a>,
}

/// How a keystore section refers to a password: `$env{VAR}` or `$secret{alias}`.
fn reference(alias: &str, secret: Secret) -> String {
    match secret {
        Secret::Env(var) => format!("$env{{{var}}}"),
        Secret::Value(_) => secret_ref(alias),
    }
}

/// Secret aliases used in `$secret{…}` references and the `[secrets]` table.
const PRIMARY_SECRET: &str = "keystore_password";
const TLS_SECRET: &str = "tls_password";
const TRUSTSTORE_SECRET: &str = "truststore_password";

/// Renders `node`'s deployment.toml; `None` for API-M 2.6 (XML configuration).
pub(crate) fn render(topology: &Topology, node: &Node, passwords: &Passwords) -> Option<String> {
    build(topology, node, passwords).map(|d| d.text)
}

fn build(topology: &Topology, node: &Node, passwords: &Passwords) -> Option<Doc> {
    if topology.product == Product::Apim26 {
        return None;
    }
    let mut out = Doc::default();
    out.line(&format!(
        "# deployment.toml for node {} ({}, {}) of deployment {}.",
        node.name,
        node.profile,
        topology.product.as_str(),
        topology.name
    ));
    out.line("# Written by apim-pki: keystores, host, offset and peer URLs. Merge the rest");
    out.line("# (databases, user store, ...) from your own configuration. Passwords are");
    out.line("# $env{} references when they come from the environment, else $secret{}");
    out.line("# references to the [secrets] table at the end, which holds them until");
    out.line("# ciphertool.sh -Dconfigure encrypts it in place.");

    server(&mut out, topology, node);
    keystores(&mut out, topology, node, passwords);
    for table in peer_tables(topology, node) {
        tables::write(&mut out, &table, topology.product);
    }

    let mut secrets = vec![(PRIMARY_SECRET, passwords.primary)];
    if topology.keystores.tls == TlsMode::PerNode {
        secrets.push((TLS_SECRET, passwords.tls));
    }
    secrets.push((TRUSTSTORE_SECRET, passwords.truststore));
    if secrets.iter().any(|(_, s)| matches!(s, Secret::Value(_))) {
        out.table(
            "secrets",
            if topology.secure_vault.enabled {
                "Secure vault ciphertexts (docs/secure-vault.md); keep this table last."
            } else {
                "Plain-text passwords: run ciphertool.sh -Dconfigure to encrypt them."
            },
        );
    }
    for (alias, secret) in secrets {
        if let Secret::Value(value) = secret {
            out.kv(alias, &toml_str(&format!("[{value}]")));
        }
    }
    Some(out)
}

/// The output, built line by line.
#[derive(Default)]
struct Doc {
    text: String,
}

impl Doc {
    fn line(&mut self, line: &str) {
        self.text.push_str(line);
        self.text.push('\n');
    }

    /// A `[name]` header (or `[[name]]` when `name` starts with `[`), preceded by a blank line and
    /// a one-line comment.
    fn table(&mut self, name: &str, comment: &str) {
        let _ = write!(self.text, "\n# {comment}\n[{name}]\n");
    }

    /// `key = "url"`.
    fn url(&mut self, key: &str, target: &Target) {
        self.str(key, &target.url);
    }

    /// `key = ["url", ...]`.
    fn urls<'t>(&mut self, key: &str, targets: impl IntoIterator<Item = &'t Target>) {
        let values: Vec<String> = targets.into_iter().map(|t| t.url.clone()).collect();
        self.list(key, &values);
    }

    /// `key = value`, the value already rendered as TOML.
    fn kv(&mut self, key: &str, value: &str) {
        let _ = writeln!(self.text, "{key} = {value}");
    }

    fn str(&mut self, key: &str, value: &str) {
        self.kv(key, &toml_str(value));
    }

    fn list(&mut self, key: &str, values: &[String]) {
        let items: Vec<String> = values.iter().map(|v| toml_str(v)).collect();
        self.kv(key, &format!("[{}]", items.join(", ")));
    }
}

/// A TOML basic string, escaped.
fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

/// `$secret{alias}`.
fn secret_ref(alias: &str) -> String {
    format!("$secret{{{alias}}}")
}

/// The `server_role` WSO2's profile templates and samples set; none for 4.5+, whose separate
/// distributions ship `server_role = "default"`.
fn server_role(product: Product, profile: Profile) -> Option<&'static str> {
    match (product, profile) {
        (Product::Apim45 | Product::Apim26, _) => None,
        // 4.4's api-key-manager-node.toml: a key manager node runs the control-plane role.
        (Product::Apim4x, Profile::KeyManager) => Some("control-plane"),
        _ => profile.start_profile(product),
    }
}

fn server(out: &mut Doc, topology: &Topology, node: &Node) {
    let hostname = topology
        .load_balancer_for(node.profile)
        .map(|lb| lb.host.to_string())
        .unwrap_or_else(|| node.host.to_string());
    out.table(
        "server",
        "The name clients use (the profile's load balancer, else this node) and the port offset.",
    );
    out.str("hostname", &hostname);
    if let Some(ip) = node.ip {
        out.str("node_ip", &ip.to_string());
    }
    if let Some(role) = server_role(topology.product, node.profile) {
        out.str("server_role", role);
    }
    out.kv("offset", &node.offset.to_string());
}

fn keystores(out: &mut Doc, topology: &Topology, node: &Node, passwords: &Passwords) {
    let ks = &topology.keystores;
    let format = ks.format;
    let primary = layout::primary_file(format);
    for (name, comment) in [
        (
            "keystore.primary",
            "Primary keystore, shared by every node: signs tokens, decrypts the registry.",
        ),
        (
            "keystore.internal",
            "Internal keystore (encrypts internal data): the primary, written out explicitly.",
        ),
    ] {
        out.table(name, comment);
        keystore(
            out,
            &primary,
            format.java_type(),
            &ks.primary_alias,
            &reference(PRIMARY_SECRET, passwords.primary),
        );
    }
    match ks.tls {
        TlsMode::PerNode => {
            out.table(
                "keystore.tls",
                "This node's own TLS keystore (HTTPS and binary transports).",
            );
            keystore(
                out,
                &layout::tls_file(&node.name, format),
                format.java_type(),
                &node.name,
                &reference(TLS_SECRET, passwords.tls),
            );
        }
        TlsMode::Shared => {
            out.table(
                "keystore.tls",
                "TLS uses the shared primary keystore (tls = \"shared\").",
            );
            keystore(
                out,
                &primary,
                format.java_type(),
                &ks.primary_alias,
                &reference(PRIMARY_SECRET, passwords.primary),
            );
        }
    }
    out.table(
        "truststore",
        "Truststore: the CA, and the primary certificate for tokens.",
    );
    out.str("file_name", &layout::truststore_file(format));
    out.str("type", format.java_type());
    out.str(
        "password",
        &reference(TRUSTSTORE_SECRET, passwords.truststore),
    );
}

fn keystore(out: &mut Doc, file: &str, java_type: &str, alias: &str, password: &str) {
    out.str("file_name", file);
    out.str("type", java_type);
    out.str("password", password);
    out.str("alias", alias);
    out.str("key_password", password);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const PW: Passwords<'static> = Passwords {
        primary: Secret::Value("Pr1mary-S3cret"),
        tls: Secret::Value("Tls-S3cret\"q"),
        truststore: Secret::Value("Trust-S3cret"),
    };

    const HA_4X: &str = r#"
name = "acme"
product = "apim-4.x"

[[node]]
name = "cp1"
profile = "control-plane"
host = "cp1.acme.internal"
ip = "10.0.0.1"

[[node]]
name = "cp2"
profile = "control-plane"
host = "cp2.acme.internal"

[[node]]
name = "gw1"
profile = "gateway-worker"
host = "gw1.acme.internal"

[[node]]
name = "gw2"
profile = "gateway-worker"
host = "gw2.acme.internal"

[[node]]
name = "tm1"
profile = "traffic-manager"
host = "tm1.acme.internal"

[[node]]
name = "tm2"
profile = "traffic-manager"
host = "tm2.acme.internal"

[[load_balancer]]
host = "cp.acme.internal"
fronts = "control-plane"

[[load_balancer]]
host = "gw.acme.internal"
fronts = "gateway-worker"

[[load_balancer]]
host = "tm.acme.internal"
fronts = "traffic-manager"
"#;

    const SINGLE_32: &str = r#"
name = "small"
product = "apim-3.2"

[keystores]
format = "jks"

[[node]]
name = "km"
profile = "key-manager"
host = "apim.acme.internal"

[[node]]
name = "pub"
profile = "publisher"
host = "apim.acme.internal"
offset = 1

[[node]]
name = "dp"
profile = "devportal"
host = "apim.acme.internal"
offset = 2

[[node]]
name = "tm"
profile = "traffic-manager"
host = "apim.acme.internal"
offset = 3

[[node]]
name = "gw"
profile = "gateway-worker"
host = "apim.acme.internal"
offset = 4
"#;

    fn parse(text: &str) -> Topology {
        Topology::parse(text, Path::new("t.toml")).expect("valid topology")
    }

    fn table<'a>(t: &'a toml::Table, path: &str) -> &'a toml::Table {
        let mut cur = t;
        for key in path.split('.') {
            cur = cur
                .get(key)
                .and_then(|v| v.as_table())
                .unwrap_or_else(|| panic!("missing table {path}"));
        }
        cur
    }

    fn s<'a>(t: &'a toml::Table, path: &str) -> &'a str {
        let (tbl, key) = path.rsplit_once('.').expect("dotted path");
        table(t, tbl)
            .get(key)
            .and_then(|v| v.as_str())
            .unwrap_or_else(|| panic!("missing string {path}"))
    }

    fn strs(v: &toml::Value) -> Vec<String> {
        v.as_array()
            .expect("array")
            .iter()
            .map(|x| x.as_str().expect("string").to_owned())
            .collect()
    }

    fn array<'a>(t: &'a toml::Table, path: &str) -> &'a Vec<toml::Value> {
        let (tbl, key) = path.rsplit_once('.').expect("dotted path");
        table(t, tbl)
            .get(key)
            .and_then(|v| v.as_array())
            .unwrap_or_else(|| panic!("missing array {path}"))
    }

    /// Renders, parses and runs the checks common to every node.
    fn check_common(topology: &Topology, node: &Node) -> (String, toml::Table) {
        let text = render(topology, node, &PW).expect("rendered");
        let doc: toml::Table = toml::from_str(&text).expect("valid TOML");
        let fmt = topology.keystores.format;
        let primary = layout::primary_file(fmt);
        for ks in ["primary", "internal"] {
            let t = table(&doc, &format!("keystore.{ks}"));
            assert_eq!(t["file_name"].as_str(), Some(primary.as_str()));
            assert_eq!(t["type"].as_str(), Some(fmt.java_type()));
            assert_eq!(t["alias"].as_str(), Some("wso2carbon"));
            assert_eq!(t["password"].as_str(), Some("$secret{keystore_password}"));
            assert_eq!(
                t["key_password"].as_str(),
                Some("$secret{keystore_password}")
            );
        }
        let tls = table(&doc, "keystore.tls");
        assert_eq!(
            tls["file_name"].as_str(),
            Some(layout::tls_file(&node.name, fmt).as_str())
        );
        assert_eq!(tls["alias"].as_str(), Some(node.name.as_str()));
        assert_eq!(tls["type"].as_str(), Some(fmt.java_type()));
        assert_eq!(tls["password"].as_str(), Some("$secret{tls_password}"));
        assert_eq!(
            s(&doc, "truststore.file_name"),
            layout::truststore_file(fmt)
        );
        assert_eq!(s(&doc, "truststore.type"), fmt.java_type());
        assert_eq!(
            s(&doc, "truststore.password"),
            "$secret{truststore_password}"
        );
        assert_eq!(
            table(&doc, "server")["offset"].as_integer(),
            Some(i64::from(node.offset))
        );

        // Secrets: the plain values live only in the last table.
        let secrets = table(&doc, "secrets");
        assert_eq!(
            secrets["keystore_password"].as_str(),
            Some("[Pr1mary-S3cret]")
        );
        assert_eq!(secrets["tls_password"].as_str(), Some("[Tls-S3cret\"q]"));
        assert_eq!(
            secrets["truststore_password"].as_str(),
            Some("[Trust-S3cret]")
        );
        let (before, after) = text.split_once("\n[secrets]\n").expect("[secrets] header");
        for pw in ["Pr1mary-S3cret", "Tls-S3cret", "Trust-S3cret"] {
            assert!(
                !before.contains(pw),
                "{pw} outside [secrets] for {}",
                node.name
            );
            assert_eq!(after.matches(pw).count(), 1);
        }
        assert!(!after.contains("\n["), "[secrets] is the last table");
        // Deterministic.
        assert_eq!(render(topology, node, &PW).as_deref(), Some(text.as_str()));
        (text, doc)
    }

    #[test]
    fn ha_4x_every_node() {
        let t = parse(HA_4X);
        for node in &t.nodes {
            let (_, doc) = check_common(&t, node);
            let lb = t
                .load_balancer_for(node.profile)
                .expect("lb")
                .host
                .to_string();
            assert_eq!(s(&doc, "server.hostname"), lb);
            assert_eq!(
                table(&doc, "server")
                    .get("node_ip")
                    .and_then(|v| v.as_str()),
                node.ip.map(|ip| ip.to_string()).as_deref()
            );
            assert_eq!(s(&doc, "apim.event_hub.service_url"), HA_4X_CP_SERVICES);
            assert_eq!(
                strs(&table(&doc, "apim.event_hub")["event_listening_endpoints"]),
                [
                    "tcp://cp1.acme.internal:5672",
                    "tcp://cp2.acme.internal:5672"
                ]
            );
            match node.profile {
                Profile::GatewayWorker => check_ha_4x_gateway(&doc),
                Profile::ControlPlane => check_ha_4x_control_plane(&doc),
                Profile::TrafficManager => check_ha_4x_traffic_manager(&doc, &node.name),
                p => panic!("unexpected profile {p}"),
            }
        }
    }

    /// The control planes' services URL behind their load balancer in `HA_4X`.
    const HA_4X_CP_SERVICES: &str = "https://cp.acme.internal:9443/services/";

    /// A gateway of `HA_4X`: key manager on the control planes, both traffic managers.
    fn check_ha_4x_gateway(doc: &toml::Table) {
        assert_eq!(s(doc, "server.server_role"), "gateway-worker");
        assert_eq!(s(doc, "apim.key_manager.service_url"), HA_4X_CP_SERVICES);
        assert_eq!(
            s(doc, "apim.throttling.service_url"),
            "https://tm.acme.internal:9443/services/"
        );
        assert_eq!(
            strs(&table(doc, "apim.throttling")["throttle_decision_endpoints"]),
            [
                "tcp://tm1.acme.internal:5672",
                "tcp://tm2.acme.internal:5672"
            ]
        );
        let groups = array(doc, "apim.throttling.url_group");
        assert_eq!(groups.len(), 2);
        check_tm_group(&groups[1], "tm2.acme.internal", 0);
        assert!(table(doc, "apim").get("gateway").is_none());
    }

    /// A control plane of `HA_4X`: the gateway environment and both event hub publishers.
    fn check_ha_4x_control_plane(doc: &toml::Table) {
        assert_eq!(s(doc, "server.server_role"), "control-plane");
        check_gateway_env(doc, "gw.acme.internal", 0);
        let groups = array(doc, "apim.event_hub.publish.url_group");
        assert_eq!(strs(&groups[0]["urls"]), ["tcp://cp1.acme.internal:9611"]);
        assert_eq!(
            strs(&groups[1]["auth_urls"]),
            ["ssl://cp2.acme.internal:9711"]
        );
        assert!(table(doc, "apim").get("key_manager").is_none());
    }

    /// A traffic manager of `HA_4X`: duplicates its events to the other one.
    fn check_ha_4x_traffic_manager(doc: &toml::Table, name: &str) {
        assert_eq!(s(doc, "server.server_role"), "traffic-manager");
        let other = if name == "tm1" { "tm2" } else { "tm1" };
        assert_eq!(
            strs(&table(doc, "apim.throttling")["event_duplicate_url"]),
            [format!("tcp://{other}.acme.internal:5672")]
        );
    }

    #[test]
    fn single_32_with_offsets() {
        let t = parse(SINGLE_32);
        assert_eq!(t.keystores.format.java_type(), "JKS");
        for node in &t.nodes {
            let (_, doc) = check_common(&t, node);
            assert_eq!(s(&doc, "server.hostname"), "apim.acme.internal");
            assert!(table(&doc, "server").get("node_ip").is_none());
            match node.name.as_str() {
                "km" => check_single_32_key_manager(&doc),
                "pub" => check_single_32_publisher(&doc),
                "dp" => check_single_32_devportal(&doc),
                "gw" => check_single_32_gateway(&doc),
                "tm" => check_single_32_traffic_manager(&doc),
                other => panic!("unexpected node {other}"),
            }
        }
    }

    /// The key manager's services URL in `SINGLE_32` (offset 0).
    const SINGLE_32_KM: &str = "https://apim.acme.internal:9443/services/";

    /// `SINGLE_32`'s gateway environment: the gateway at offset 4.
    fn check_single_32_gateway_env(doc: &toml::Table) {
        let env = &array(doc, "apim.gateway.environment")[0];
        assert_eq!(env["name"].as_str(), Some("Production and Sandbox"));
        assert_eq!(env["type"].as_str(), Some("hybrid"));
        check_gateway_env(doc, "apim.acme.internal", 4);
    }

    /// The first gateway environment's three URLs: the gateway at `host`, ports offset by
    /// `offset`.
    fn check_gateway_env(doc: &toml::Table, host: &str, offset: u16) {
        let env = &array(doc, "apim.gateway.environment")[0];
        let url = |scheme: &str, port: u16, path: &str| {
            format!("{scheme}://{host}:{}{path}", port + offset)
        };
        assert_eq!(
            env["service_url"].as_str(),
            Some(url("https", 9443, "/services/").as_str())
        );
        assert_eq!(
            env["https_endpoint"].as_str(),
            Some(url("https", 8243, "").as_str())
        );
        assert_eq!(
            env["http_endpoint"].as_str(),
            Some(url("http", 8280, "").as_str())
        );
    }

    /// `SINGLE_32`'s one traffic manager URL group: the traffic manager at offset 3.
    fn check_single_32_tm_groups(doc: &toml::Table) {
        let groups = array(doc, "apim.throttling.url_group");
        assert_eq!(groups.len(), 1);
        check_tm_group(&groups[0], "apim.acme.internal", 3);
    }

    /// A traffic manager URL group: the one at `host`, ports offset by `offset`.
    fn check_tm_group(group: &toml::Value, host: &str, offset: u16) {
        assert_eq!(
            strs(&group["traffic_manager_urls"]),
            [format!("tcp://{host}:{}", 9611 + offset)]
        );
        assert_eq!(
            strs(&group["traffic_manager_auth_urls"]),
            [format!("ssl://{host}:{}", 9711 + offset)]
        );
    }

    /// `SINGLE_32`'s throttling service and decision endpoint: the traffic manager (offset 3).
    fn check_single_32_throttling(doc: &toml::Table) {
        assert_eq!(
            s(doc, "apim.throttling.service_url"),
            "https://apim.acme.internal:9446/services/"
        );
        assert_eq!(
            strs(&table(doc, "apim.throttling")["throttle_decision_endpoints"]),
            ["tcp://apim.acme.internal:5675"]
        );
    }

    fn check_single_32_key_manager(doc: &toml::Table) {
        assert_eq!(s(doc, "server.server_role"), "api-key-manager");
        check_single_32_tm_groups(doc);
        assert_eq!(
            s(doc, "apim.event_hub.service_url"),
            "https://apim.acme.internal:9446/services/"
        );
        let l = &doc["event_listener"].as_array().expect("listeners")[0];
        assert_eq!(l["id"].as_str(), Some("token_revocation"));
        assert_eq!(
            l["properties"]["notification_endpoint"].as_str(),
            Some("https://apim.acme.internal:9446/internal/data/v1/notify")
        );
        let groups = array(doc, "apim.event_hub.publish.url_group");
        assert_eq!(strs(&groups[0]["urls"]), ["tcp://apim.acme.internal:9614"]);
    }

    fn check_single_32_publisher(doc: &toml::Table) {
        assert_eq!(s(doc, "server.server_role"), "api-publisher");
        assert_eq!(s(doc, "apim.key_manager.service_url"), SINGLE_32_KM);
        check_single_32_gateway_env(doc);
        check_single_32_throttling(doc);
        check_single_32_tm_groups(doc);
        assert_eq!(
            s(doc, "apim.devportal.url"),
            "https://apim.acme.internal:9445/devportal"
        );
    }

    fn check_single_32_devportal(doc: &toml::Table) {
        assert_eq!(s(doc, "server.server_role"), "api-devportal");
        assert_eq!(s(doc, "apim.key_manager.service_url"), SINGLE_32_KM);
        check_single_32_gateway_env(doc);
        check_single_32_tm_groups(doc);
        assert_eq!(
            strs(&table(doc, "apim.throttling")["throttle_decision_endpoints"]),
            ["tcp://apim.acme.internal:5675"]
        );
    }

    fn check_single_32_gateway(doc: &toml::Table) {
        assert_eq!(s(doc, "server.server_role"), "gateway-worker");
        assert_eq!(s(doc, "apim.key_manager.service_url"), SINGLE_32_KM);
        check_single_32_throttling(doc);
        check_single_32_tm_groups(doc);
        assert!(table(doc, "apim").get("gateway").is_none());
    }

    fn check_single_32_traffic_manager(doc: &toml::Table) {
        let apim = doc.get("apim").and_then(|v| v.as_table());
        assert_eq!(s(doc, "apim.key_manager.service_url"), SINGLE_32_KM);
        assert_eq!(
            s(doc, "apim.oauth_config.revoke_endpoint"),
            "https://apim.acme.internal:9443/oauth2/revoke"
        );
        assert!(apim.is_some_and(|a| a.get("throttling").is_none()));
    }

    #[test]
    fn shared_tls_uses_primary_and_omits_tls_secret() {
        let text = SINGLE_32.replace("format = \"jks\"", "tls = \"shared\"");
        let t = parse(&text);
        let out = render(&t, &t.nodes[0], &PW).expect("rendered");
        let doc: toml::Table = toml::from_str(&out).expect("valid TOML");
        assert_eq!(s(&doc, "keystore.tls.file_name"), "wso2carbon.p12");
        assert_eq!(s(&doc, "keystore.tls.alias"), "wso2carbon");
        assert_eq!(
            s(&doc, "keystore.tls.password"),
            "$secret{keystore_password}"
        );
        assert!(table(&doc, "secrets").get("tls_password").is_none());
        assert!(!out.contains("Tls-S3cret"));
    }

    #[test]
    fn apim26_is_none() {
        let text = r#"
name = "old"
product = "apim-2.6"
[[node]]
name = "km"
profile = "key-manager"
host = "km.acme.internal"
[[node]]
name = "pub"
profile = "publisher"
host = "pub.acme.internal"
[[node]]
name = "store"
profile = "store"
host = "store.acme.internal"
[[node]]
name = "tm"
profile = "traffic-manager"
host = "tm.acme.internal"
[[node]]
name = "gw"
profile = "gateway-worker"
host = "gw.acme.internal"
"#;
        let t = parse(text);
        assert!(t.nodes.iter().all(|n| render(&t, n, &PW).is_none()));
    }

    /// Every `key = "scheme://…"` string in `value`, with its dotted path (array entries
    /// unindexed), sorted.
    fn written_urls(value: &toml::Value, path: &str, out: &mut Vec<(String, String)>) {
        match value {
            toml::Value::String(s) if s.contains("://") => out.push((path.to_owned(), s.clone())),
            toml::Value::Array(items) => items.iter().for_each(|v| written_urls(v, path, out)),
            toml::Value::Table(t) => {
                for (k, v) in t {
                    let sub = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    written_urls(v, &sub, out);
                }
            }
            _ => {}
        }
    }

    #[test]
    fn every_url_written_is_a_plan_peer_under_its_key() {
        let mut topologies = vec![parse(HA_4X), parse(SINGLE_32)];
        for product in [Product::Apim32, Product::Apim4x, Product::Apim45] {
            for ha in [false, true] {
                topologies.push(parse(&crate::init::example(product, ha)));
            }
        }
        for t in &topologies {
            for node in &t.nodes {
                let text = render(t, node, &PW).expect("rendered");
                let doc: toml::Value = toml::from_str(&text).expect("valid TOML");
                let mut written = Vec::new();
                written_urls(&doc, "", &mut written);
                written.sort();
                let plan = crate::plan::NodePlan::build(t, node);
                let mut planned: Vec<(String, String)> = plan
                    .peer_targets()
                    .iter()
                    .map(|p| {
                        let key = p.setting.strip_prefix("deployment.toml: ");
                        (
                            key.expect("deployment.toml label").to_owned(),
                            p.target.url.clone(),
                        )
                    })
                    .collect();
                planned.sort();
                assert!(!planned.is_empty(), "{} has peers", node.name);
                assert_eq!(written, planned, "{} ({})", node.name, t.product.as_str());
            }
        }
    }
}
