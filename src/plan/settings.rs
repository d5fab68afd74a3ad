//! The settings that tie an API-M 2.6 node to its peers (docs/apply-2.6.md, "Per
//! profile"): every value `apply` writes that depends on the topology, with the hosts and ports
//! each URL names and what serves them. `node.toml` records them; `verify` checks that each host
//! is covered by the certificate of what answers there.

use serde::{Deserialize, Serialize};

use super::{PeerGroup, PeerGroups};
use crate::topology::{Node, Product, Profile, Topology};

/// Ports, before offsets.
pub(crate) mod port {
    pub(crate) const MGMT_HTTPS: u16 = 9443;
    pub(crate) const GW_HTTP: u16 = 8280;
    pub(crate) const GW_HTTPS: u16 = 8243;
    pub(crate) const BINARY_TCP: u16 = 9611;
    pub(crate) const BINARY_SSL: u16 = 9711;
    pub(crate) const AMQP: u16 = 5672;
    pub(crate) const THRIFT: u16 = 10397;
    pub(crate) const WS: u16 = 9099;
    pub(crate) const WSS: u16 = 8099;
    pub(crate) const WEBSUB_HTTP: u16 = 9021;
    pub(crate) const WEBSUB_HTTPS: u16 = 8021;
}

/// A configuration file of an API-M 2.6 node that settings go to (node.toml names it by its
/// short name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ConfigFile {
    #[serde(rename = "carbon.xml")]
    Carbon,
    #[serde(rename = "api-manager.xml")]
    ApiManager,
    #[serde(rename = "jndi.properties")]
    Jndi,
    #[serde(rename = "identity.xml")]
    Identity,
    #[serde(rename = "WorkflowCallbackService.xml")]
    WorkflowCallback,
}

impl ConfigFile {
    /// Every file, in the order apply writes them.
    pub const ALL: [ConfigFile; 5] = [
        ConfigFile::Carbon,
        ConfigFile::ApiManager,
        ConfigFile::Jndi,
        ConfigFile::Identity,
        ConfigFile::WorkflowCallback,
    ];

    /// The file, relative to the product home.
    pub fn path(self) -> &'static str {
        match self {
            ConfigFile::Carbon => "repository/conf/carbon.xml",
            ConfigFile::ApiManager => "repository/conf/api-manager.xml",
            ConfigFile::Jndi => "repository/conf/jndi.properties",
            ConfigFile::Identity => "repository/conf/identity/identity.xml",
            ConfigFile::WorkflowCallback => {
                "repository/deployment/server/synapse-configs/default/proxy-services/WorkflowCallbackService.xml"
            }
        }
    }

    /// The short name used in node.toml's `setting`.
    pub fn name(self) -> &'static str {
        match self {
            ConfigFile::Carbon => "carbon.xml",
            ConfigFile::ApiManager => "api-manager.xml",
            ConfigFile::Jndi => "jndi.properties",
            ConfigFile::Identity => "identity.xml",
            ConfigFile::WorkflowCallback => "WorkflowCallbackService.xml",
        }
    }
}

/// What answers at a host and port; written `node NAME` or `load-balancer HOST`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum ServedBy {
    LoadBalancer(String),
    Node(String),
}

impl std::fmt::Display for ServedBy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServedBy::LoadBalancer(h) => write!(f, "load-balancer {h}"),
            ServedBy::Node(n) => write!(f, "node {n}"),
        }
    }
}

impl From<ServedBy> for String {
    fn from(s: ServedBy) -> String {
        s.to_string()
    }
}

/// A `served_by` value in node.toml that is neither `node NAME` nor `load-balancer HOST`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is neither `node NAME` nor `load-balancer HOST`")]
pub struct BadServedBy(pub String);

impl TryFrom<String> for ServedBy {
    type Error = BadServedBy;

    fn try_from(text: String) -> Result<ServedBy, BadServedBy> {
        if let Some(name) = text.strip_prefix("node ") {
            Ok(ServedBy::Node(name.to_string()))
        } else if let Some(host) = text.strip_prefix("load-balancer ") {
            Ok(ServedBy::LoadBalancer(host.to_string()))
        } else {
            Err(BadServedBy(text))
        }
    }
}

/// One URL inside a setting's value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    /// The URL as written.
    pub url: String,
    /// The host it names.
    pub host: String,
    /// The port it names (offset included).
    pub port: u16,
    /// What answers there.
    pub served_by: ServedBy,
}

impl Target {
    /// True when the URL's scheme is TLS (`https://`, `ssl://`).
    pub fn is_tls(&self) -> bool {
        self.url.starts_with("https://") || self.url.starts_with("ssl://")
    }
}

/// One value apply writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Setting {
    /// The file it goes to.
    pub file: ConfigFile,
    /// Element path below the root element (XML; `…/@attr` for an attribute), or the property
    /// key (jndi.properties).
    pub path: String,
    /// The value; empty when it is made from `group` ([`Setting::value`]).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub value: String,
    /// True when apply skips it where the node's file has no such element (WSO2 files of other
    /// 2.x releases, or trimmed files): the peer URLs config-2.6.md does not require.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub optional: bool,
    /// The URLs the value names, apart from those of `group`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<Target>,
    /// The peer group whose every member the value names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<GroupUrls>,
}

/// A URL per member of a peer group (`scheme://member:port+offset`), and how the value joins
/// them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupUrls {
    /// The group: the nodes of this profile.
    pub group: Profile,
    /// The URLs' scheme.
    pub scheme: String,
    /// The base port (each member adds its offset).
    pub port: u16,
    /// How the value joins the URLs.
    pub form: GroupForm,
}

/// How a setting's value names every member of its group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GroupForm {
    /// TM-GROUP: `url` for one member, `{url1}, {url2}` for several.
    UrlGroup,
    /// An AMQP connection URL naming every member's broker (round-robin failover for several);
    /// `USER:PASS` stands for the credentials apply keeps from the file.
    AmqpBrokers,
}

impl GroupForm {
    /// The value naming `urls`.
    pub fn render(self, urls: &[String]) -> String {
        match (self, urls) {
            (GroupForm::UrlGroup, [one]) => one.clone(),
            (GroupForm::UrlGroup, _) => urls
                .iter()
                .map(|u| format!("{{{u}}}"))
                .collect::<Vec<_>>()
                .join(", "),
            (GroupForm::AmqpBrokers, [one]) => {
                format!("amqp://{AMQP_CREDENTIALS}@clientid/carbon?brokerlist='{one}'")
            }
            (GroupForm::AmqpBrokers, _) => {
                let brokers: Vec<String> = urls
                    .iter()
                    .map(|u| format!("{u}?retries='5'%26connectdelay='50'"))
                    .collect();
                format!("amqp://{AMQP_CREDENTIALS}@clientID/carbon?failover='roundrobin'%26cyclecount='2'%26brokerlist='{}'", brokers.join(";"))
            }
        }
    }
}

impl Setting {
    /// `api-manager.xml: AuthManager/ServerURL`.
    pub fn label(&self) -> String {
        format!("{}: {}", self.file.name(), self.path)
    }
}

/// Where peers reach a profile (its load balancer, offset 0) or a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Address {
    host: String,
    offset: u16,
    served_by: ServedBy,
}

impl Address {
    /// `scheme://host:port+offset suffix`, an IPv6 host in brackets.
    pub fn url(&self, scheme: &str, port: u16, suffix: &str) -> String {
        let port = u32::from(port) + u32::from(self.offset);
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        format!("{scheme}://{host}:{port}{suffix}")
    }

    /// True when this is node `name` (not a load balancer).
    pub fn is_node(&self, name: &str) -> bool {
        matches!(&self.served_by, ServedBy::Node(n) if n == name)
    }

    /// The URL as a [`Target`].
    pub fn target(&self, scheme: &str, port: u16, suffix: &str) -> Target {
        Target {
            url: self.url(scheme, port, suffix),
            host: self.host.clone(),
            port: port + self.offset,
            served_by: self.served_by.clone(),
        }
    }
}

/// A node as its peers reach it.
pub(crate) fn node_address(node: &Node) -> Address {
    Address {
        host: node.host.to_string(),
        offset: node.offset,
        served_by: ServedBy::Node(node.name.clone()),
    }
}

/// A profile as its peers reach it: its load balancer (offset 0), else its first node.
pub(crate) fn address(topology: &Topology, profile: Profile) -> Option<Address> {
    if let Some(lb) = topology.load_balancer_for(profile) {
        return Some(Address {
            host: lb.host.to_string(),
            offset: 0,
            served_by: ServedBy::LoadBalancer(lb.host.to_string()),
        });
    }
    topology
        .nodes
        .iter()
        .find(|n| n.profile == profile)
        .map(node_address)
}

/// The nodes with `profile`.
pub(crate) fn nodes_of(topology: &Topology, profile: Profile) -> Vec<&Node> {
    topology
        .nodes
        .iter()
        .filter(|n| n.profile == profile)
        .collect()
}

/// Where the publisher, store and key manager reach gateway management.
fn gw_mgmt(topology: &Topology) -> Option<Address> {
    if let Some(manager) = nodes_of(topology, Profile::GatewayManager).first() {
        return Some(node_address(manager));
    }
    address(topology, Profile::GatewayWorker)
}

/// One setting per URL kind.
fn setting(file: ConfigFile, path: &str, targets: Vec<Target>, join: &str) -> Setting {
    let value = targets
        .iter()
        .map(|t| t.url.clone())
        .collect::<Vec<_>>()
        .join(join);
    Setting {
        targets,
        ..plain(file, path, value)
    }
}

fn plain(file: ConfigFile, path: &str, value: impl Into<String>) -> Setting {
    Setting {
        file,
        path: path.into(),
        value: value.into(),
        optional: OPTIONAL_PATHS.contains(&path),
        targets: Vec::new(),
        group: None,
    }
}

/// A setting whose value names every traffic manager (the `traffic-manager` peer group), in
/// `form`: its value is made from the group ([`Setting::value`]).
fn tm_setting(file: ConfigFile, path: &str, scheme: &str, port: u16, form: GroupForm) -> Setting {
    Setting {
        group: Some(GroupUrls {
            group: Profile::TrafficManager,
            scheme: scheme.into(),
            port,
            form,
        }),
        ..plain(file, path, String::new())
    }
}

/// TM-GROUP(scheme, port): `scheme://tm:port`, or `{scheme://tm1:port}, {scheme://tm2:port}`.
fn tm_group(path: &str, scheme: &str, port: u16) -> Setting {
    tm_setting(
        ConfigFile::ApiManager,
        path,
        scheme,
        port,
        GroupForm::UrlGroup,
    )
}

/// The broker part of AMQP-URL; apply keeps the user and password of the value it replaces
/// (`USER:PASS` below stands for them).
pub(crate) const AMQP_CREDENTIALS: &str = "USER:PASS";

/// The AMQP connection URL naming every traffic manager's broker, as a setting of `file`.
fn amqp_url(file: ConfigFile, path: &str) -> Setting {
    tm_setting(file, path, "tcp", port::AMQP, GroupForm::AmqpBrokers)
}

impl Setting {
    /// The value apply writes: its own, or the one made from its group's members in `groups`.
    pub fn value(&self, groups: &PeerGroups) -> String {
        let Some(g) = &self.group else {
            return self.value.clone();
        };
        let urls: Vec<String> = groups
            .get(&g.group)
            .map(|group| {
                group
                    .members
                    .iter()
                    .map(|m| m.url(&g.scheme, g.port, ""))
                    .collect()
            })
            .unwrap_or_default();
        g.form.render(&urls)
    }
}

/// The peer groups `settings` name, each listed once; taken from `shared` when there (and
/// added to it when not), so nodes of one plan share them.
pub(crate) fn peer_groups(
    topology: &Topology,
    named: impl IntoIterator<Item = Profile>,
    shared: &mut PeerGroups,
) -> PeerGroups {
    let mut out = PeerGroups::new();
    for profile in named {
        let group = shared.entry(profile).or_insert_with(|| {
            std::sync::Arc::new(PeerGroup {
                members: nodes_of(topology, profile)
                    .into_iter()
                    .map(node_address)
                    .collect(),
            })
        });
        out.entry(profile).or_insert_with(|| group.clone());
    }
    out
}

/// Every peer group some node's settings or deployment.toml peers name: the set's
/// peer-groups.toml. Empty when none does.
pub(crate) fn set_peer_groups(topology: &Topology) -> PeerGroups {
    let mut shared = PeerGroups::new();
    let mut seen = std::collections::BTreeSet::new();
    // Which groups a node's settings and peers name depends on its profile only (the node
    // itself gives hosts, offsets and `except`, never a group): one node of each profile.
    for node in topology.nodes.iter().filter(|n| seen.insert(n.profile)) {
        let settings = node_settings(topology, node);
        let peers = super::peers::node_peers(topology, node);
        peer_groups(
            topology,
            super::named_groups(&settings, &peers),
            &mut shared,
        );
    }
    shared
}

fn key_validation(topology: &Topology, out: &mut Vec<Setting>, client_side: bool) {
    let am = ConfigFile::ApiManager;
    let Some(km) = address(topology, Profile::KeyManager) else {
        return;
    };
    out.push(setting(
        am,
        "APIKeyValidator/ServerURL",
        vec![km.target("https", port::MGMT_HTTPS, "/services/")],
        "",
    ));
    let kms = nodes_of(topology, Profile::KeyManager);
    if kms.len() == 1 {
        let km_node = kms[0];
        out.push(plain(
            am,
            "APIKeyValidator/KeyValidatorClientType",
            "ThriftClient",
        ));
        out.push(plain(
            am,
            "APIKeyValidator/ThriftServerHost",
            km_node.host.to_string(),
        ));
        if client_side {
            out.push(plain(
                am,
                "APIKeyValidator/ThriftClientPort",
                (port::THRIFT + km_node.offset).to_string(),
            ));
        }
    } else {
        out.push(plain(
            am,
            "APIKeyValidator/KeyValidatorClientType",
            "WSClient",
        ));
    }
}

/// The gateway environment's management URL, and (for the publisher and store, which show it
/// to users) its endpoints.
fn gateway_environment(topology: &Topology, out: &mut Vec<Setting>, with_endpoints: bool) {
    let am = ConfigFile::ApiManager;
    if let Some(gw) = gw_mgmt(topology) {
        out.push(setting(
            am,
            "APIGateway/Environments/Environment/ServerURL",
            vec![gw.target("https", port::MGMT_HTTPS, "/services/")],
            "",
        ));
        if !with_endpoints {
            return;
        }
        out.push(setting(
            am,
            "APIGateway/Environments/Environment/GatewayEndpoint",
            vec![
                gw.target("http", port::GW_HTTP, ""),
                gw.target("https", port::GW_HTTPS, ""),
            ],
            ",",
        ));
    }
}

fn throttling_publisher(out: &mut Vec<Setting>) {
    let am = ConfigFile::ApiManager;
    out.push(plain(
        am,
        "ThrottlingConfigurations/EnableAdvanceThrottling",
        "true",
    ));
    out.push(plain(
        am,
        "ThrottlingConfigurations/DataPublisher/Enabled",
        "true",
    ));
    out.push(plain(
        am,
        "ThrottlingConfigurations/TrafficManager/Type",
        "Binary",
    ));
    out.push(tm_group(
        "ThrottlingConfigurations/TrafficManager/ReceiverUrlGroup",
        "tcp",
        port::BINARY_TCP,
    ));
    out.push(tm_group(
        "ThrottlingConfigurations/TrafficManager/AuthUrlGroup",
        "ssl",
        port::BINARY_SSL,
    ));
}

/// Whom a peer URL names: a profile's address, the gateway management address or the gateway
/// workers' address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Peer {
    Profile(Profile),
    GatewayMgmt,
    GatewayWorker,
}

impl Peer {
    fn address(self, topology: &Topology) -> Option<Address> {
        match self {
            Peer::Profile(p) => address(topology, p),
            Peer::GatewayMgmt => gw_mgmt(topology),
            Peer::GatewayWorker => address(topology, Profile::GatewayWorker),
        }
    }

    /// True when `profile`'s own nodes are what this URL names (the node keeps its local value).
    fn is_self(self, profile: Profile) -> bool {
        let gateway = matches!(profile, Profile::GatewayManager | Profile::GatewayWorker);
        match self {
            Peer::Profile(p) => p == profile,
            Peer::GatewayMgmt | Peer::GatewayWorker => gateway,
        }
    }
}

/// One URL of WSO2's 2.6 files that names another profile: file, element path, whom it names,
/// scheme, base port, path suffix, and whether it is set on the named profile's own nodes too.
struct PeerUrl {
    file: ConfigFile,
    path: &'static str,
    peer: Peer,
    urls: &'static [(&'static str, u16, &'static str)],
    on_self: bool,
}

/// Every peer URL of the shipped 2.6.0 files (api-manager.xml, identity.xml) that apply sets on
/// the nodes of other profiles, so no node names `localhost` for something placed elsewhere.
/// docs/apply-2.6.md lists the URLs deliberately left, with the reason for each.
const PEER_URLS: &[PeerUrl] = &[
    PeerUrl {
        file: ConfigFile::ApiManager,
        path: "AuthManager/ServerURL",
        peer: Peer::Profile(Profile::KeyManager),
        urls: &[("https", port::MGMT_HTTPS, "/services/")],
        on_self: false,
    },
    PeerUrl {
        file: ConfigFile::ApiManager,
        path: "APIKeyValidator/ServerURL",
        peer: Peer::Profile(Profile::KeyManager),
        urls: &[("https", port::MGMT_HTTPS, "/services/")],
        on_self: false,
    },
    PeerUrl {
        file: ConfigFile::ApiManager,
        path: "APIGateway/Environments/Environment/ServerURL",
        peer: Peer::GatewayMgmt,
        urls: &[("https", port::MGMT_HTTPS, "/services/")],
        on_self: false,
    },
    PeerUrl {
        file: ConfigFile::ApiManager,
        path: "APIGateway/Environments/Environment/GatewayEndpoint",
        peer: Peer::GatewayMgmt,
        urls: &[("http", port::GW_HTTP, ""), ("https", port::GW_HTTPS, "")],
        on_self: false,
    },
    PeerUrl {
        file: ConfigFile::ApiManager,
        path: "APIGateway/Environments/Environment/GatewayWSEndpoint",
        peer: Peer::GatewayMgmt,
        urls: &[("ws", port::WS, "")],
        on_self: false,
    },
    PeerUrl {
        file: ConfigFile::ApiManager,
        path: "OAuthConfigurations/RevokeAPIURL",
        peer: Peer::GatewayWorker,
        urls: &[("https", port::GW_HTTPS, "/revoke")],
        on_self: false,
    },
    PeerUrl {
        file: ConfigFile::ApiManager,
        path: "APIStore/URL",
        peer: Peer::Profile(Profile::Store),
        urls: &[("https", port::MGMT_HTTPS, "/store")],
        on_self: false,
    },
    PeerUrl {
        file: ConfigFile::ApiManager,
        path: "APIStore/ServerURL",
        peer: Peer::Profile(Profile::Store),
        urls: &[("https", port::MGMT_HTTPS, "/services/")],
        on_self: false,
    },
    PeerUrl {
        file: ConfigFile::ApiManager,
        path: "APIPublisher/URL",
        peer: Peer::Profile(Profile::Publisher),
        urls: &[("https", port::MGMT_HTTPS, "/publisher")],
        on_self: false,
    },
    PeerUrl {
        file: ConfigFile::ApiManager,
        path: "ThrottlingConfigurations/PolicyDeployer/ServiceURL",
        peer: Peer::Profile(Profile::TrafficManager),
        urls: &[("https", port::MGMT_HTTPS, "/services/")],
        on_self: false,
    },
    PeerUrl {
        file: ConfigFile::ApiManager,
        path: "WorkflowConfigurations/WorkflowCallbackAPI",
        peer: Peer::Profile(Profile::Publisher),
        urls: &[(
            "https",
            port::MGMT_HTTPS,
            "/api/am/publisher/v0.14/workflows/update-workflow-status",
        )],
        on_self: false,
    },
    PeerUrl {
        file: ConfigFile::ApiManager,
        path: "WorkflowConfigurations/TokenEndPoint",
        peer: Peer::GatewayWorker,
        urls: &[("https", port::GW_HTTPS, "/token")],
        on_self: false,
    },
    PeerUrl {
        file: ConfigFile::ApiManager,
        path: "WorkflowConfigurations/DCREndPoint",
        peer: Peer::Profile(Profile::KeyManager),
        urls: &[(
            "https",
            port::MGMT_HTTPS,
            "/client-registration/v0.14/register",
        )],
        on_self: false,
    },
    // The issuer clients see in ID tokens: the key manager's public name, on the key manager too.
    PeerUrl {
        file: ConfigFile::Identity,
        path: "OAuth/OpenIDConnect/IDTokenIssuerID",
        peer: Peer::Profile(Profile::KeyManager),
        urls: &[("https", port::MGMT_HTTPS, "/oauth2/token")],
        on_self: true,
    },
    // The gateway's BPS callback proxy posts workflow results to the store.
    PeerUrl {
        file: ConfigFile::WorkflowCallback,
        path: "target/inSequence/send/endpoint/address/@uri",
        peer: Peer::Profile(Profile::Store),
        urls: &[(
            "https",
            port::MGMT_HTTPS,
            "/store/site/blocks/workflow/workflow-listener/ajax/workflow-listener.jag",
        )],
        on_self: false,
    },
];

/// Settings that apply skips when the node's file has no such element (WSO2 files of other
/// 2.x releases, or trimmed files): the peer URLs config-2.6.md does not require.
pub(crate) const OPTIONAL_PATHS: &[&str] = &[
    "APIGateway/Environments/Environment/GatewayWSEndpoint",
    "APIStore/ServerURL",
    "APIPublisher/URL",
    "WorkflowConfigurations/WorkflowCallbackAPI",
    "WorkflowConfigurations/TokenEndPoint",
    "WorkflowConfigurations/DCREndPoint",
    "OAuth/OpenIDConnect/IDTokenIssuerID",
    "target/inSequence/send/endpoint/address/@uri",
];

/// The peer URLs of [`PEER_URLS`] for `profile` that `out` does not hold yet.
fn peer_urls(topology: &Topology, profile: Profile, out: &mut Vec<Setting>) {
    for p in PEER_URLS {
        if (p.peer.is_self(profile) && !p.on_self)
            || out.iter().any(|s| s.file == p.file && s.path == p.path)
        {
            continue;
        }
        let Some(addr) = p.peer.address(topology) else {
            continue;
        };
        let targets = p
            .urls
            .iter()
            .map(|(scheme, port, suffix)| addr.target(scheme, *port, suffix))
            .collect();
        out.push(setting(p.file, p.path, targets, ","));
    }
}

/// Every topology-derived setting of `node` (API-M 2.6); empty for other products, whose
/// deployment.toml carries its own peers.
pub(crate) fn node_settings(topology: &Topology, node: &Node) -> Vec<Setting> {
    if topology.product != Product::Apim26 {
        return Vec::new();
    }
    let carbon = ConfigFile::Carbon;
    let public_host = topology
        .load_balancer_for(node.profile)
        .map_or_else(|| node.host.to_string(), |lb| lb.host.to_string());
    let mut out = vec![
        plain(carbon, "HostName", public_host.clone()),
        plain(carbon, "MgtHostName", public_host),
        plain(carbon, "Ports/Offset", node.offset.to_string()),
    ];
    match node.profile {
        Profile::KeyManager => key_manager(topology, node, &mut out),
        Profile::Publisher => publisher(topology, &mut out),
        Profile::Store => store(topology, &mut out),
        Profile::TrafficManager => out.push(thrift_server(false)),
        Profile::GatewayManager | Profile::GatewayWorker => gateway(topology, &mut out),
        Profile::Devportal | Profile::ControlPlane | Profile::UniversalGateway => {}
    }
    peer_urls(topology, node.profile, &mut out);
    broker_everywhere(topology, node.profile, &mut out);
    out
}

fn thrift_server(enabled: bool) -> Setting {
    plain(
        ConfigFile::ApiManager,
        "APIKeyValidator/EnableThriftServer",
        enabled.to_string(),
    )
}

/// `path` = the key manager's `…/services/` URL, where there is a key manager.
fn km_services(topology: &Topology, path: &str, out: &mut Vec<Setting>) {
    if let Some(km) = address(topology, Profile::KeyManager) {
        out.push(setting(
            ConfigFile::ApiManager,
            path,
            vec![km.target("https", port::MGMT_HTTPS, "/services/")],
            "",
        ));
    }
}

/// `ThrottlingConfigurations/PolicyDeployer/ServiceURL`: the traffic managers' services.
fn policy_deployer(topology: &Topology, out: &mut Vec<Setting>) {
    if let Some(tm) = address(topology, Profile::TrafficManager) {
        out.push(setting(
            ConfigFile::ApiManager,
            "ThrottlingConfigurations/PolicyDeployer/ServiceURL",
            vec![tm.target("https", port::MGMT_HTTPS, "/services/")],
            "",
        ));
    }
}

/// Each `(path, value)` as a plain api-manager.xml setting.
fn switches(out: &mut Vec<Setting>, values: &[(&str, &str)]) {
    out.extend(
        values
            .iter()
            .map(|(path, value)| plain(ConfigFile::ApiManager, path, *value)),
    );
}

/// The key manager: the Thrift server with a single key manager, web services with several.
fn key_manager(topology: &Topology, node: &Node, out: &mut Vec<Setting>) {
    let am = ConfigFile::ApiManager;
    gateway_environment(topology, out, false);
    if nodes_of(topology, Profile::KeyManager).len() == 1 {
        out.push(plain(
            am,
            "APIKeyValidator/KeyValidatorClientType",
            "ThriftClient",
        ));
        out.push(thrift_server(true));
        out.push(plain(
            am,
            "APIKeyValidator/ThriftServerHost",
            node.host.to_string(),
        ));
        out.push(plain(
            am,
            "APIKeyValidator/ThriftServerPort",
            (port::THRIFT + node.offset).to_string(),
        ));
    } else {
        out.push(plain(
            am,
            "APIKeyValidator/KeyValidatorClientType",
            "WSClient",
        ));
        out.push(thrift_server(false));
    }
}

/// The publisher: throttling data to the traffic managers, the gateway environment and the
/// store's URL, and the throttle-data topic (jndi.properties).
fn publisher(topology: &Topology, out: &mut Vec<Setting>) {
    out.push(thrift_server(false));
    km_services(topology, "AuthManager/ServerURL", out);
    throttling_publisher(out);
    policy_deployer(topology, out);
    switches(
        out,
        &[
            ("ThrottlingConfigurations/BlockCondition/Enabled", "false"),
            (
                "ThrottlingConfigurations/JMSConnectionDetails/Enabled",
                "false",
            ),
        ],
    );
    gateway_environment(topology, out, true);
    out.push(plain(ConfigFile::ApiManager, "APIStore/DisplayURL", "true"));
    if let Some(store) = address(topology, Profile::Store) {
        out.push(setting(
            ConfigFile::ApiManager,
            "APIStore/URL",
            vec![store.target("https", port::MGMT_HTTPS, "/store")],
            "",
        ));
    }
    out.push(amqp_url(
        ConfigFile::Jndi,
        "connectionfactory.TopicConnectionFactory",
    ));
    out.push(plain(
        ConfigFile::Jndi,
        "topic.throttleData",
        "throttleData",
    ));
}

/// The store: key validation, the gateway environment and the gateways' revoke URL.
fn store(topology: &Topology, out: &mut Vec<Setting>) {
    out.push(thrift_server(false));
    key_validation(topology, out, true);
    km_services(topology, "AuthManager/ServerURL", out);
    switches(
        out,
        &[
            ("ThrottlingConfigurations/EnableAdvanceThrottling", "true"),
            ("ThrottlingConfigurations/DataPublisher/Enabled", "false"),
            ("ThrottlingConfigurations/BlockCondition/Enabled", "false"),
            (
                "ThrottlingConfigurations/JMSConnectionDetails/Enabled",
                "false",
            ),
        ],
    );
    gateway_environment(topology, out, true);
    if let Some(gw) = address(topology, Profile::GatewayWorker) {
        out.push(setting(
            ConfigFile::ApiManager,
            "OAuthConfigurations/RevokeAPIURL",
            vec![gw.target("https", port::GW_HTTPS, "/revoke")],
            "",
        ));
    }
}

/// Gateways: key validation, throttling data to and JMS events from the traffic managers.
fn gateway(topology: &Topology, out: &mut Vec<Setting>) {
    let am = ConfigFile::ApiManager;
    out.push(thrift_server(false));
    key_validation(topology, out, true);
    throttling_publisher(out);
    switches(
        out,
        &[("ThrottlingConfigurations/PolicyDeployer/Enabled", "false")],
    );
    policy_deployer(topology, out);
    switches(
        out,
        &[(
            "ThrottlingConfigurations/JMSConnectionDetails/Enabled",
            "true",
        )],
    );
    if let Some(first_tm) = nodes_of(topology, Profile::TrafficManager).first() {
        out.push(setting(
            am,
            "ThrottlingConfigurations/JMSConnectionDetails/ServiceURL",
            vec![node_address(first_tm).target("tcp", port::AMQP, "")],
            "",
        ));
    }
    out.push(amqp_url(
        am,
        "ThrottlingConfigurations/JMSConnectionDetails/JMSConnectionParameters/connectionfactory.TopicConnectionFactory",
    ));
}

/// jndi.properties' topic factory names the traffic managers' broker on every node that is not
/// one (the publisher's comes from config-2.6.md with `topic.throttleData`).
fn broker_everywhere(topology: &Topology, profile: Profile, out: &mut Vec<Setting>) {
    let path = "connectionfactory.TopicConnectionFactory";
    if profile == Profile::TrafficManager
        || nodes_of(topology, Profile::TrafficManager).is_empty()
        || out
            .iter()
            .any(|s| s.file == ConfigFile::Jndi && s.path == path)
    {
        return;
    }
    out.push(amqp_url(ConfigFile::Jndi, path));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn served_by_reads_back_what_it_writes_and_names_a_bad_value() {
        for s in [
            ServedBy::Node("km".into()),
            ServedBy::LoadBalancer("lb.example".into()),
        ] {
            assert_eq!(ServedBy::try_from(String::from(s.clone())), Ok(s));
        }
        let e = ServedBy::try_from("gateway gw1".to_string()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "`gateway gw1` is neither `node NAME` nor `load-balancer HOST`"
        );
    }

    const TOPOLOGY: &str = r#"
name = "t"
product = "apim-2.6"
[[node]]
name = "km"
profile = "key-manager"
host = "km.t.example"
offset = 5
[[node]]
name = "pub"
profile = "publisher"
host = "pub.t.example"
[[node]]
name = "store"
profile = "store"
host = "store.t.example"
[[node]]
name = "tm"
profile = "traffic-manager"
host = "tm.t.example"
[[node]]
name = "gw"
profile = "gateway-worker"
host = "gw.t.example"
offset = 2
"#;

    fn values(node: &str) -> Vec<(String, String)> {
        let t = Topology::parse(TOPOLOGY, std::path::Path::new("t.toml")).expect("valid");
        let n = t.nodes.iter().find(|n| n.name == node).expect("node");
        let settings = node_settings(&t, n);
        let groups = peer_groups(
            &t,
            crate::plan::named_groups(&settings, &[]),
            &mut PeerGroups::new(),
        );
        settings
            .iter()
            .map(|s| (s.label(), s.value(&groups)))
            .collect()
    }

    fn get<'a>(v: &'a [(String, String)], label: &str) -> Option<&'a str> {
        v.iter().find(|(l, _)| l == label).map(|(_, v)| v.as_str())
    }

    #[test]
    fn peer_urls_name_other_profiles_and_leave_the_nodes_own() {
        let km = values("km");
        assert_eq!(
            get(&km, "api-manager.xml: OAuthConfigurations/RevokeAPIURL"),
            Some("https://gw.t.example:8245/revoke")
        );
        assert_eq!(get(&km, "api-manager.xml: AuthManager/ServerURL"), None);
        assert_eq!(
            get(&km, "identity.xml: OAuth/OpenIDConnect/IDTokenIssuerID"),
            Some("https://km.t.example:9448/oauth2/token")
        );
        let store = values("store");
        assert_eq!(
            get(
                &store,
                "api-manager.xml: APIGateway/Environments/Environment/GatewayWSEndpoint"
            ),
            Some("ws://gw.t.example:9101")
        );
        assert_eq!(get(&store, "api-manager.xml: APIStore/URL"), None);
        let gw = values("gw");
        assert_eq!(
            get(&gw, "api-manager.xml: OAuthConfigurations/RevokeAPIURL"),
            None
        );
        assert_eq!(
            get(&gw, "api-manager.xml: APIStore/ServerURL"),
            Some("https://store.t.example:9443/services/")
        );
        assert_eq!(
            get(
                &gw,
                "jndi.properties: connectionfactory.TopicConnectionFactory"
            ),
            Some("amqp://USER:PASS@clientid/carbon?brokerlist='tcp://tm.t.example:5672'")
        );
        assert_eq!(
            get(
                &gw,
                "WorkflowCallbackService.xml: target/inSequence/send/endpoint/address/@uri"
            ),
            Some(
                "https://store.t.example:9443/store/site/blocks/workflow/workflow-listener/ajax/workflow-listener.jag"
            )
        );
        assert_eq!(
            get(
                &store,
                "WorkflowCallbackService.xml: target/inSequence/send/endpoint/address/@uri"
            ),
            None
        );
        let tm = values("tm");
        assert_eq!(
            get(
                &tm,
                "jndi.properties: connectionfactory.TopicConnectionFactory"
            ),
            None
        );
        assert_eq!(
            get(
                &tm,
                "api-manager.xml: ThrottlingConfigurations/PolicyDeployer/ServiceURL"
            ),
            None
        );
    }
}
