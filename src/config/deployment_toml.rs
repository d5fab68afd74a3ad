//! deployment.toml for API-M 3.2 and 4.x: the node's keystores, host, offset, and the URLs of its
//! peers, rendered deterministically.
//!
//! Plain string building: every value goes through `toml_str` so it is escaped, and the same
//! topology always gives the same bytes. Passwords never appear in the sections that use them:
//! those hold `$secret{alias}` references, and a `[secrets]` table at the end holds the values as
//! `alias = "[plain-text]"`, which WSO2's cipher tool encrypts in place.
//!
//! A peer profile's address follows the rules of `resolve::settings` (2.6): its load balancer's
//! host (offset 0) when it has one, else its single node's host and offset. Endpoints that are
//! not balanced (AMQP 5672, binary 9611/9711) name every node with its own offset.

use std::fmt::Write as _;

use crate::output::layout;
use crate::resolve::settings::{address, node_address, nodes_of, port, Address};
use crate::topology::{Node, Product, Profile, TlsMode, Topology};

/// Where a password comes from, as deployment.toml refers to it.
#[derive(Clone, Copy)]
pub enum Secret<'a> {
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
pub struct Passwords<'a> {
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
pub fn render(topology: &Topology, node: &Node, passwords: &Passwords) -> Option<String> {
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
    match topology.product {
        Product::Apim32 => peers_32(&mut out, topology, node),
        Product::Apim4x => peers_4x(&mut out, topology, node),
        Product::Apim26 => {}
    }

    let mut secrets = vec![(PRIMARY_SECRET, passwords.primary)];
    if topology.keystores.tls == TlsMode::PerNode {
        secrets.push((TLS_SECRET, passwords.tls));
    }
    secrets.push((TRUSTSTORE_SECRET, passwords.truststore));
    if secrets.iter().any(|(_, s)| matches!(s, Secret::Value(_))) {
        out.table(
            "secrets",
            "Plain-text passwords: run ciphertool.sh -Dconfigure to encrypt them.",
        );
    }
    for (alias, secret) in secrets {
        if let Secret::Value(value) = secret {
            out.kv(alias, &toml_str(&format!("[{value}]")));
        }
    }
    Some(out.text)
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

fn has(topology: &Topology, profile: Profile) -> bool {
    topology.nodes.iter().any(|n| n.profile == profile)
}

/// The `server_role` WSO2's samples use; none for 3.2's devportal, whose samples disagree.
fn server_role(product: Product, profile: Profile) -> Option<&'static str> {
    match (product, profile) {
        (Product::Apim32, Profile::Devportal) => None,
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

/// `[apim.key_manager] service_url`.
fn key_manager(out: &mut Doc, km: &Address) {
    out.table(
        "apim.key_manager",
        "Key manager: validates tokens and keys.",
    );
    out.str("service_url", &km.services());
}

/// `[[apim.gateway.environment]]` pointing at the gateway's address.
fn gateway_environment(out: &mut Doc, gw: &Address, name: &str) {
    out.table(
        "[apim.gateway.environment]",
        "Gateway environment: where APIs deploy and the URLs shown to consumers.",
    );
    out.str("name", name);
    out.str("type", "hybrid");
    out.str("service_url", &gw.services());
    out.str("http_endpoint", &gw.url("http", port::GW_HTTP, ""));
    out.str("https_endpoint", &gw.url("https", port::GW_HTTPS, ""));
    out.str("ws_endpoint", &gw.url("ws", port::WS, ""));
    out.str("wss_endpoint", &gw.url("wss", port::WSS, ""));
}

/// `[apim.throttling]`: service URL and the decision endpoints (every TM's AMQP port).
fn throttling(out: &mut Doc, service: &Address, deciders: &[&Node]) {
    out.table(
        "apim.throttling",
        "Throttling: the traffic manager's admin services and its decision (AMQP) endpoints.",
    );
    out.str("service_url", &service.services());
    let decisions: Vec<String> = deciders
        .iter()
        .map(|n| node_address(n).url("tcp", port::AMQP, ""))
        .collect();
    out.list("throttle_decision_endpoints", &decisions);
}

/// One `[[apim.throttling.url_group]]` per traffic manager: every one receives every event.
fn throttling_url_groups(out: &mut Doc, receivers: &[&Node]) {
    for n in receivers {
        let a = node_address(n);
        out.table(
            "[apim.throttling.url_group]",
            &format!("Throttle events to {} (binary tcp + ssl auth).", n.name),
        );
        out.list(
            "traffic_manager_urls",
            &[a.url("tcp", port::BINARY_TCP, "")],
        );
        out.list(
            "traffic_manager_auth_urls",
            &[a.url("ssl", port::BINARY_SSL, "")],
        );
    }
}

fn peers_32(out: &mut Doc, topology: &Topology, node: &Node) {
    let km = address(topology, Profile::KeyManager);
    let gw = address(topology, Profile::GatewayWorker);
    let tm = address(topology, Profile::TrafficManager);
    let tms = nodes_of(topology, Profile::TrafficManager);
    const ENV: &str = "Production and Sandbox";
    match node.profile {
        Profile::KeyManager => {
            if let Some(gw) = &gw {
                gateway_environment(out, gw, ENV);
            }
            throttling_url_groups(out, &tms);
        }
        Profile::Publisher => {
            if let Some(km) = &km {
                key_manager(out, km);
            }
            if let Some(gw) = &gw {
                gateway_environment(out, gw, ENV);
            }
            if let Some(tm) = &tm {
                throttling(out, tm, &tms);
            }
            throttling_url_groups(out, &tms);
            if let Some(dp) = address(topology, Profile::Devportal) {
                out.table(
                    "apim.devportal",
                    "Developer portal URL shown in the publisher.",
                );
                out.str("url", &dp.url("https", port::MGMT_HTTPS, "/devportal"));
            }
        }
        Profile::Devportal | Profile::Store => {
            if let Some(km) = &km {
                key_manager(out, km);
            }
            if let Some(gw) = &gw {
                gateway_environment(out, gw, ENV);
                out.table(
                    "apim.oauth_config",
                    "Token revocation goes through the gateway.",
                );
                out.str(
                    "revoke_endpoint",
                    &gw.url("https", port::GW_HTTPS, "/revoke"),
                );
            }
        }
        Profile::GatewayWorker => {
            if let Some(km) = &km {
                key_manager(out, km);
            }
            if let Some(tm) = &tm {
                throttling(out, tm, &tms);
            }
            throttling_url_groups(out, &tms);
        }
        _ => {}
    }
}

/// `[apim.event_hub]`: the control plane's services and every control plane's AMQP port.
fn event_hub(out: &mut Doc, topology: &Topology) {
    let Some(cp) = address(topology, Profile::ControlPlane) else {
        return;
    };
    let listen: Vec<String> = nodes_of(topology, Profile::ControlPlane)
        .iter()
        .map(|n| node_address(n).url("tcp", port::AMQP, ""))
        .collect();
    out.table(
        "apim.event_hub",
        "Event hub (the control plane): API, policy and key events.",
    );
    out.kv("enable", "true");
    out.str("service_url", &cp.services());
    out.list("event_listening_endpoints", &listen);
}

/// One `[[apim.event_hub.publish.url_group]]` per control plane.
fn event_hub_publish(out: &mut Doc, topology: &Topology) {
    for n in nodes_of(topology, Profile::ControlPlane) {
        let a = node_address(n);
        out.table(
            "[apim.event_hub.publish.url_group]",
            &format!(
                "Publish events to control plane {} (binary tcp + ssl auth).",
                n.name
            ),
        );
        out.list("urls", &[a.url("tcp", port::BINARY_TCP, "")]);
        out.list("auth_urls", &[a.url("ssl", port::BINARY_SSL, "")]);
    }
}

fn peers_4x(out: &mut Doc, topology: &Topology, node: &Node) {
    let cp = address(topology, Profile::ControlPlane);
    // The key manager: a separate key-manager profile if there is one, else the control plane.
    let km = address(topology, Profile::KeyManager).or_else(|| cp.clone());
    // Throttling: the traffic managers, else the control plane (which embeds one).
    let tm_profile = if has(topology, Profile::TrafficManager) {
        Profile::TrafficManager
    } else {
        Profile::ControlPlane
    };
    let tm = address(topology, tm_profile);
    let tms = nodes_of(topology, tm_profile);
    match node.profile {
        Profile::ControlPlane => {
            if has(topology, Profile::KeyManager) {
                if let Some(km) = &km {
                    key_manager(out, km);
                }
            }
            if let Some(gw) = address(topology, Profile::GatewayWorker) {
                gateway_environment(out, &gw, "Default");
            }
            event_hub(out, topology);
            event_hub_publish(out, topology);
        }
        Profile::GatewayWorker => {
            if let Some(km) = &km {
                key_manager(out, km);
            }
            if let Some(tm) = &tm {
                throttling(out, tm, &tms);
            }
            throttling_url_groups(out, &tms);
            event_hub(out, topology);
            out.table(
                "apim.sync_runtime_artifacts.gateway",
                "Deploy the APIs of the \"Default\" environment.",
            );
            out.list("gateway_labels", &["Default".to_owned()]);
        }
        Profile::TrafficManager => {
            event_hub(out, topology);
            let others: Vec<String> = tms
                .iter()
                .filter(|n| n.name != node.name)
                .map(|n| node_address(n).url("tcp", port::AMQP, ""))
                .collect();
            if !others.is_empty() {
                out.table(
                    "apim.throttling",
                    "Share throttle decisions with the other traffic managers.",
                );
                out.list("event_duplicate_url", &others);
            }
        }
        Profile::KeyManager => {
            event_hub(out, topology);
            event_hub_publish(out, topology);
        }
        _ => {}
    }
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
            let cp_services = "https://cp.acme.internal:9443/services/";
            assert_eq!(s(&doc, "apim.event_hub.service_url"), cp_services);
            assert_eq!(
                strs(&table(&doc, "apim.event_hub")["event_listening_endpoints"]),
                [
                    "tcp://cp1.acme.internal:5672",
                    "tcp://cp2.acme.internal:5672"
                ]
            );
            match node.profile {
                Profile::GatewayWorker => {
                    assert_eq!(s(&doc, "server.server_role"), "gateway-worker");
                    assert_eq!(s(&doc, "apim.key_manager.service_url"), cp_services);
                    assert_eq!(
                        s(&doc, "apim.throttling.service_url"),
                        "https://tm.acme.internal:9443/services/"
                    );
                    assert_eq!(
                        strs(&table(&doc, "apim.throttling")["throttle_decision_endpoints"]),
                        [
                            "tcp://tm1.acme.internal:5672",
                            "tcp://tm2.acme.internal:5672"
                        ]
                    );
                    let groups = array(&doc, "apim.throttling.url_group");
                    assert_eq!(groups.len(), 2);
                    assert_eq!(
                        strs(&groups[1]["traffic_manager_urls"]),
                        ["tcp://tm2.acme.internal:9611"]
                    );
                    assert_eq!(
                        strs(&groups[1]["traffic_manager_auth_urls"]),
                        ["ssl://tm2.acme.internal:9711"]
                    );
                    assert!(table(&doc, "apim").get("gateway").is_none());
                }
                Profile::ControlPlane => {
                    assert_eq!(s(&doc, "server.server_role"), "control-plane");
                    let env = &array(&doc, "apim.gateway.environment")[0];
                    assert_eq!(
                        env["service_url"].as_str(),
                        Some("https://gw.acme.internal:9443/services/")
                    );
                    assert_eq!(
                        env["https_endpoint"].as_str(),
                        Some("https://gw.acme.internal:8243")
                    );
                    assert_eq!(
                        env["http_endpoint"].as_str(),
                        Some("http://gw.acme.internal:8280")
                    );
                    let groups = array(&doc, "apim.event_hub.publish.url_group");
                    assert_eq!(strs(&groups[0]["urls"]), ["tcp://cp1.acme.internal:9611"]);
                    assert_eq!(
                        strs(&groups[1]["auth_urls"]),
                        ["ssl://cp2.acme.internal:9711"]
                    );
                    assert!(table(&doc, "apim").get("key_manager").is_none());
                }
                Profile::TrafficManager => {
                    assert_eq!(s(&doc, "server.server_role"), "traffic-manager");
                    let other = if node.name == "tm1" { "tm2" } else { "tm1" };
                    assert_eq!(
                        strs(&table(&doc, "apim.throttling")["event_duplicate_url"]),
                        [format!("tcp://{other}.acme.internal:5672")]
                    );
                }
                p => panic!("unexpected profile {p}"),
            }
        }
    }

    #[test]
    fn single_32_with_offsets() {
        let t = parse(SINGLE_32);
        assert_eq!(t.keystores.format.java_type(), "JKS");
        for node in &t.nodes {
            let (_, doc) = check_common(&t, node);
            assert_eq!(s(&doc, "server.hostname"), "apim.acme.internal");
            assert!(table(&doc, "server").get("node_ip").is_none());
            let apim = doc.get("apim").and_then(|v| v.as_table());
            let km = "https://apim.acme.internal:9443/services/";
            let gw_env = |doc: &toml::Table| {
                let env = &array(doc, "apim.gateway.environment")[0];
                assert_eq!(env["name"].as_str(), Some("Production and Sandbox"));
                assert_eq!(env["type"].as_str(), Some("hybrid"));
                assert_eq!(
                    env["service_url"].as_str(),
                    Some("https://apim.acme.internal:9447/services/")
                );
                assert_eq!(
                    env["http_endpoint"].as_str(),
                    Some("http://apim.acme.internal:8284")
                );
                assert_eq!(
                    env["https_endpoint"].as_str(),
                    Some("https://apim.acme.internal:8247")
                );
            };
            let tm_groups = |doc: &toml::Table| {
                let groups = array(doc, "apim.throttling.url_group");
                assert_eq!(groups.len(), 1);
                assert_eq!(
                    strs(&groups[0]["traffic_manager_urls"]),
                    ["tcp://apim.acme.internal:9614"]
                );
                assert_eq!(
                    strs(&groups[0]["traffic_manager_auth_urls"]),
                    ["ssl://apim.acme.internal:9714"]
                );
            };
            let throttling = |doc: &toml::Table| {
                assert_eq!(
                    s(doc, "apim.throttling.service_url"),
                    "https://apim.acme.internal:9446/services/"
                );
                assert_eq!(
                    strs(&table(doc, "apim.throttling")["throttle_decision_endpoints"]),
                    ["tcp://apim.acme.internal:5675"]
                );
            };
            match node.name.as_str() {
                "km" => {
                    assert_eq!(s(&doc, "server.server_role"), "api-key-manager");
                    gw_env(&doc);
                    tm_groups(&doc);
                }
                "pub" => {
                    assert_eq!(s(&doc, "server.server_role"), "api-publisher");
                    assert_eq!(s(&doc, "apim.key_manager.service_url"), km);
                    gw_env(&doc);
                    throttling(&doc);
                    tm_groups(&doc);
                    assert_eq!(
                        s(&doc, "apim.devportal.url"),
                        "https://apim.acme.internal:9445/devportal"
                    );
                }
                "dp" => {
                    assert_eq!(s(&doc, "apim.key_manager.service_url"), km);
                    gw_env(&doc);
                    assert_eq!(
                        s(&doc, "apim.oauth_config.revoke_endpoint"),
                        "https://apim.acme.internal:8247/revoke"
                    );
                }
                "gw" => {
                    assert_eq!(s(&doc, "server.server_role"), "gateway-worker");
                    assert_eq!(s(&doc, "apim.key_manager.service_url"), km);
                    throttling(&doc);
                    tm_groups(&doc);
                    assert!(table(&doc, "apim").get("gateway").is_none());
                }
                "tm" => assert!(apim.is_none()),
                other => panic!("unexpected node {other}"),
            }
        }
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
}
