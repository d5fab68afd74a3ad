//! Topology → Plan: one typed value that says, for the deployment and for each node and load
//! balancer, every artifact (file, format, alias, names covered, key type, validity), every
//! password role and every setting with the file it goes to. Built once from a validated
//! [`Topology`]; generate, apply and verify read it instead of asking the topology again.
//!
//! The plan is pure data: it generates no key, opens no file and knows no crypto library. A
//! node's part ([`NodePlan`]) is what `nodes/<node>/node.toml` holds: its serde form is the
//! file (see [`node_toml`]), so apply and verify read back the very types generate wrote.

pub(crate) mod certs;
pub(crate) mod node_toml;
pub(crate) mod peers;
pub(crate) mod settings;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::keystore::KeystoreFormat;
use crate::output::layout;
use crate::password::PasswordRole;
use crate::pki::CertSpec;
use crate::topology::{KeyType, Node, Product, Profile, TlsMode, Topology};

pub(crate) use settings::{
    set_peer_groups, Address, ConfigFile, GroupForm, GroupUrls, ServedBy, Setting, Target,
};

/// The schema of node.toml (and of the set's peer-groups.toml) this build writes and reads; an
/// older or newer file is refused (re-run `generate` to rewrite it). 1 was the hand-rendered
/// file with `[settings]` and one `[[peer]]` per URL; 2 was [`NodePlan`]'s serde form with its
/// peer groups listed in every node.toml; 3 lists each peer group once per set, in
/// peer-groups.toml, and node.toml names it (`group = "traffic-manager"` in a setting); 4 names
/// groups in 3.2 / 4.x / 4.5+ `[[peer]]` entries too, instead of one `[[peer]]` per member.
pub(crate) const NODE_TOML_SCHEMA: u32 = 4;

/// Everything a deployment needs, as data.
#[derive(Debug, Clone)]
pub struct Plan {
    /// What every node shares.
    pub deployment: Deployment,
    /// Each node, in topology order.
    pub nodes: Vec<NodePlan>,
    /// Each node's own TLS keystore (per-node TLS only), by node name, with its certificate.
    pub node_tls: BTreeMap<String, Artifact>,
    /// Each load balancer, in topology order.
    pub load_balancers: Vec<LbPlan>,
    /// The peer groups the nodes' settings name, each once (the set's peer-groups.toml).
    pub peer_groups: PeerGroups,
}

/// What every node shares: the CA, the primary keystore, the truststore and the passwords.
#[derive(Debug, Clone)]
pub struct Deployment {
    /// The topology's `name`.
    pub name: String,
    /// The API-M release line.
    pub product: Product,
    /// The format of every keystore.
    pub format: KeystoreFormat,
    /// Per-node TLS keystores, or the primary serving TLS.
    pub tls: TlsMode,
    /// The key type of every key the deployment holds.
    pub key: KeyType,
    /// The first CA generation's certificate.
    pub ca: CertSpec,
    /// The shared primary keystore: file name, alias and certificate.
    pub primary: Artifact,
    /// The truststore's file name.
    pub truststore_file: String,
    /// The aliases under which truststores hold the primary certificate.
    pub primary_trust_aliases: Vec<String>,
    /// The password roles the deployment uses (`tls` only with per-node TLS keystores).
    pub passwords: Vec<PasswordRole>,
}

/// A keystore holding one key: its file name (in the node's security directory), alias,
/// format, password role and the certificate it carries.
#[derive(Debug, Clone)]
pub struct Artifact {
    /// The file name.
    pub file: String,
    /// The key entry's alias.
    pub alias: String,
    /// The keystore format.
    pub format: KeystoreFormat,
    /// Which password opens it.
    pub password: PasswordRole,
    /// The key's type.
    pub key: KeyType,
    /// The certificate: names covered, subject, role, validity.
    pub cert: CertSpec,
}

/// A load balancer terminating TLS: its host, the profile it fronts and its certificate.
#[derive(Debug, Clone)]
pub struct LbPlan {
    /// The host clients use.
    pub host: String,
    /// The profile it fronts.
    pub fronts: Profile,
    /// The key's type.
    pub key: KeyType,
    /// Its certificate.
    pub cert: CertSpec,
}

/// One node's plan; its serde form is node.toml.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodePlan {
    /// `NODE_TOML_SCHEMA`.
    pub schema: u32,
    /// The node's name in the topology.
    pub name: String,
    /// Its profile.
    pub profile: Profile,
    /// The host its peers use.
    pub host: String,
    /// Its IP address, when the topology gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<IpAddr>,
    /// Its port offset.
    pub offset: u16,
    /// The command that starts the node and keeps what apply wrote.
    pub start: String,
    /// Its keystores: files, formats, aliases, password roles.
    pub keystores: NodeKeystores,
    /// Every value apply writes that depends on the topology (API-M 2.6).
    #[serde(default, rename = "setting", skip_serializing_if = "Vec::is_empty")]
    pub settings: Vec<Setting>,
    /// The URLs the node's deployment.toml names (3.2 and later), with the key holding each:
    /// a list naming every node of a profile names that peer group once
    /// ([`NodePlan::peer_targets`] lists every URL).
    #[serde(default, rename = "peer", skip_serializing_if = "Vec::is_empty")]
    pub peers: Vec<PeerEntry>,
    /// The groups of nodes that settings name together (every traffic manager). Not in
    /// node.toml: the set's peer-groups.toml lists each group once, and the node.toml reader
    /// ([`node_toml`]) binds the groups its settings name.
    #[serde(skip)]
    pub peer_groups: PeerGroups,
}

/// The peer groups a node's settings name, by profile. Shared between the nodes of a [`Plan`]:
/// 600 traffic managers are held once, not once per node.
pub(crate) type PeerGroups = BTreeMap<Profile, Arc<PeerGroup>>;

/// The node's three keystores, as its files name them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeKeystores {
    /// The shared primary keystore.
    pub primary: StoreRef,
    /// The keystore the HTTPS connector serves: the node's own, or the primary when shared.
    pub tls: StoreRef,
    /// The truststore.
    pub truststore: StoreRef,
}

/// A keystore as a node's configuration names it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoreRef {
    /// Relative to the product home (`repository/resources/security/…`).
    pub file: String,
    /// Its format.
    pub format: KeystoreFormat,
    /// The key entry's alias; none for a truststore.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
    /// Which password opens it.
    pub password: PasswordRole,
    /// The names the node's own TLS certificate covers (per-node TLS only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub covers: Option<Covers>,
}

impl StoreRef {
    /// The file name without its directory.
    pub fn file_name(&self) -> &str {
        self.file.rsplit('/').next().unwrap_or(&self.file)
    }
}

/// What a TLS certificate covers, its key type and validity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Covers {
    /// DNS names, in the certificate's order.
    pub dns_names: Vec<String>,
    /// IP addresses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ip_addresses: Vec<IpAddr>,
    /// The key's type.
    pub key: KeyType,
    /// How long a certificate issued now is valid.
    pub validity_days: u32,
}

/// A URL deployment.toml names and the key holding it (`deployment.toml: apim.x.service_url`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamedTarget {
    /// The file and key holding the URL.
    pub setting: String,
    /// The URL and what serves it.
    #[serde(flatten)]
    pub target: Target,
}

/// A node.toml `[[peer]]`: one URL, or a URL per member of a peer group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PeerEntry {
    /// Every member of a group (the set's peer-groups.toml lists them).
    Group(GroupPeer),
    /// One URL.
    One(NamedTarget),
}

/// A URL per member of a peer group under one deployment.toml key:
/// `scheme://member:port+offset`, leaving out the node `except` (the node itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupPeer {
    /// The file and key holding the URLs.
    pub setting: String,
    /// The group: the nodes of this profile.
    pub group: Profile,
    /// The URLs' scheme.
    pub scheme: String,
    /// The base port (each member adds its offset).
    pub port: u16,
    /// The member left out (the node whose file this is).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub except: Option<String>,
}

impl GroupPeer {
    /// The URL of each member of `group` but `except`.
    pub fn targets<'g>(&'g self, group: &'g PeerGroup) -> impl Iterator<Item = Target> + 'g {
        group
            .members
            .iter()
            .filter(|m| self.except.as_deref().is_none_or(|e| !m.is_node(e)))
            .map(|m| m.target(&self.scheme, self.port, ""))
    }
}

/// Nodes that settings name together, each as its peers reach it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerGroup {
    /// Each member as its peers reach it.
    pub members: Vec<Address>,
}

impl Plan {
    /// The plan of `topology`: every node and load balancer.
    pub fn build(topology: &Topology) -> Plan {
        let mut groups = PeerGroups::new();
        let nodes = topology
            .nodes
            .iter()
            .map(|n| NodePlan::build_with(topology, n, &mut groups))
            .collect();
        Plan {
            deployment: Deployment::build(topology),
            nodes,
            node_tls: node_tls(topology),
            load_balancers: lb_plans(topology),
            peer_groups: groups,
        }
    }

    /// The node named `name`.
    pub fn node(&self, name: &str) -> Option<&NodePlan> {
        self.nodes.iter().find(|n| n.name == name)
    }
}

/// The TLS keystore of each node, with per-node TLS.
fn node_tls(topology: &Topology) -> BTreeMap<String, Artifact> {
    node_tls_in_order(topology).collect()
}

/// Each node's TLS keystore in the topology's node order (none with a shared TLS keystore).
pub(crate) fn node_tls_in_order(
    topology: &Topology,
) -> impl Iterator<Item = (String, Artifact)> + '_ {
    let per_node = topology.keystores.tls == TlsMode::PerNode;
    let format = topology.keystores.format;
    topology
        .nodes
        .iter()
        .filter(move |_| per_node)
        .map(move |n| {
            let artifact = Artifact {
                file: layout::tls_file(&n.name, format),
                alias: n.name.clone(),
                format,
                password: PasswordRole::Tls,
                key: topology.pki.key,
                cert: certs::node_cert(topology, n),
            };
            (n.name.clone(), artifact)
        })
}

/// Each load balancer's key and certificate, in the topology's order.
pub(crate) fn lb_plans(topology: &Topology) -> Vec<LbPlan> {
    topology
        .load_balancers
        .iter()
        .map(|lb| LbPlan {
            host: lb.host.to_string(),
            fronts: lb.fronts,
            key: topology.pki.key,
            cert: certs::lb_cert(topology, &lb.host),
        })
        .collect()
}

impl Deployment {
    /// The certificate of CA generation `generation` (1 for the first).
    pub fn ca_cert(&self, generation: u32) -> CertSpec {
        let mut spec = self.ca.clone();
        spec.subject.common_name = certs::ca_common_name(&self.name, generation);
        spec
    }

    /// The truststore alias of CA generation `generation` (`<name>-ca`, then `<name>-ca-g2`, …).
    pub fn ca_alias(&self, generation: u32) -> String {
        crate::topology::aliases::ca_alias(&self.name, generation)
    }

    /// The deployment-wide part of `topology`'s plan.
    pub fn build(topology: &Topology) -> Deployment {
        let format = topology.keystores.format;
        let mut passwords = vec![PasswordRole::Primary];
        if topology.keystores.tls == TlsMode::PerNode {
            passwords.push(PasswordRole::Tls);
        }
        passwords.push(PasswordRole::Truststore);
        Deployment {
            name: topology.name.clone(),
            product: topology.product,
            format,
            tls: topology.keystores.tls,
            key: topology.pki.key,
            ca: certs::ca_cert(topology, 1),
            primary: Artifact {
                file: layout::primary_file(format),
                alias: topology.keystores.primary_alias.clone(),
                format,
                password: PasswordRole::Primary,
                key: topology.keystores.primary_key,
                cert: certs::primary_cert(topology),
            },
            truststore_file: layout::truststore_file(format),
            primary_trust_aliases: certs::primary_trust_aliases(topology),
            passwords,
        }
    }
}

impl NodePlan {
    /// `node`'s plan. Costs what one node's settings cost: callers that handle one node at a
    /// time (node.toml rendering) build only that node's.
    pub fn build(topology: &Topology, node: &Node) -> NodePlan {
        NodePlan::build_with(topology, node, &mut PeerGroups::new())
    }

    /// `node`'s plan, taking the peer groups it names from `shared` (and adding those missing).
    pub fn build_with(topology: &Topology, node: &Node, shared: &mut PeerGroups) -> NodePlan {
        let settings = settings::node_settings(topology, node);
        let peers = peers::node_peers(topology, node);
        let named = named_groups(&settings, &peers);
        let peer_groups = settings::peer_groups(topology, named, shared);
        NodePlan {
            schema: NODE_TOML_SCHEMA,
            name: node.name.clone(),
            profile: node.profile,
            host: node.host.to_string(),
            ip: node.ip,
            offset: node.offset,
            start: topology.product.start_command(node.profile),
            keystores: NodeKeystores::build(topology, node),
            settings,
            peers,
            peer_groups,
        }
    }

    /// The settings that go to `file`.
    pub fn settings_for(&self, file: ConfigFile) -> impl Iterator<Item = &Setting> {
        self.settings.iter().filter(move |s| s.file == file)
    }

    /// The value `setting` gives its element or key.
    pub fn value(&self, setting: &Setting) -> String {
        setting.value(&self.peer_groups)
    }

    /// The URLs `setting` names: its own targets and those of the group it names.
    pub fn targets(&self, setting: &Setting) -> Vec<Target> {
        let mut out = setting.targets.clone();
        if let Some(g) = &setting.group {
            if let Some(group) = self.peer_groups.get(&g.group) {
                out.extend(
                    group
                        .members
                        .iter()
                        .map(|m| m.target(&g.scheme, g.port, "")),
                );
            }
        }
        out
    }

    /// Every URL the node's files name, with the label of the setting holding it.
    pub fn all_targets(&self) -> Vec<(String, Target)> {
        let mut out: Vec<(String, Target)> = Vec::new();
        for s in &self.settings {
            let label = s.label();
            out.extend(self.targets(s).into_iter().map(|t| (label.clone(), t)));
        }
        out.extend(
            self.peer_targets()
                .into_iter()
                .map(|p| (p.setting, p.target)),
        );
        out
    }

    /// Every URL of the node's deployment.toml, with the key holding it: its peers, each
    /// group expanded to its members.
    pub fn peer_targets(&self) -> Vec<NamedTarget> {
        let mut out = Vec::new();
        for p in &self.peers {
            match p {
                PeerEntry::One(t) => out.push(t.clone()),
                PeerEntry::Group(g) => {
                    let Some(group) = self.peer_groups.get(&g.group) else {
                        continue;
                    };
                    out.extend(g.targets(group).map(|target| NamedTarget {
                        setting: g.setting.clone(),
                        target,
                    }));
                }
            }
        }
        out
    }
}

/// The peer groups `settings` and `peers` name, repeats included.
pub(crate) fn named_groups<'a>(
    settings: &'a [Setting],
    peers: &'a [PeerEntry],
) -> impl Iterator<Item = Profile> + 'a {
    let of_settings = settings
        .iter()
        .filter_map(|s| s.group.as_ref().map(|g| g.group));
    let of_peers = peers.iter().filter_map(|p| match p {
        PeerEntry::Group(g) => Some(g.group),
        PeerEntry::One(_) => None,
    });
    of_settings.chain(of_peers)
}

impl NodeKeystores {
    fn build(topology: &Topology, node: &Node) -> NodeKeystores {
        let per_node = topology.keystores.tls == TlsMode::PerNode;
        let covers = per_node.then(|| {
            let cert = certs::node_cert(topology, node);
            Covers {
                dns_names: cert.dns_names,
                ip_addresses: cert.ip_addresses,
                key: topology.pki.key,
                validity_days: cert.validity_days,
            }
        });
        NodeKeystores::new(
            topology.keystores.format,
            topology.keystores.tls,
            &topology.keystores.primary_alias,
            &node.name,
            covers,
        )
    }

    /// The keystores of node `node` in a deployment of `format` and `tls` mode whose primary
    /// key is `primary_alias`: one rule for generate's plan and for readers of a set.
    pub fn new(
        format: KeystoreFormat,
        tls: TlsMode,
        primary_alias: &str,
        node: &str,
        covers: Option<Covers>,
    ) -> NodeKeystores {
        let sec = |file: String| format!("{}/{file}", layout::SECURITY_DIR);
        let primary = StoreRef {
            file: sec(layout::primary_file(format)),
            format,
            alias: Some(primary_alias.to_string()),
            password: PasswordRole::Primary,
            covers: None,
        };
        let tls = match tls {
            TlsMode::PerNode => StoreRef {
                file: sec(layout::tls_file(node, format)),
                format,
                alias: Some(node.to_string()),
                password: PasswordRole::Tls,
                covers,
            },
            TlsMode::Shared => primary.clone(),
        };
        NodeKeystores {
            primary,
            tls,
            truststore: StoreRef {
                file: sec(layout::truststore_file(format)),
                format,
                alias: None,
                password: PasswordRole::Truststore,
                covers: None,
            },
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) const TOPOLOGY: &str = r#"
name = "t"
product = "apim-2.6"
[[node]]
name = "km"
profile = "key-manager"
host = "km.t.example"
[[node]]
name = "pub"
profile = "publisher"
host = "pub.t.example"
[[node]]
name = "store"
profile = "store"
host = "store.t.example"
[[node]]
name = "tm1"
profile = "traffic-manager"
host = "tm1.t.example"
[[node]]
name = "tm2"
profile = "traffic-manager"
host = "tm2.t.example"
offset = 1
[[node]]
name = "gw"
profile = "gateway-worker"
host = "gw.t.example"
ip = "10.0.0.7"
[[load_balancer]]
host = "tm.t.example"
fronts = "traffic-manager"
"#;

    fn plan(text: &str) -> Plan {
        let t = Topology::parse(text, std::path::Path::new("t.toml")).expect("valid");
        Plan::build(&t)
    }

    #[test]
    fn every_node_names_its_keystores_and_password_roles() {
        let p = plan(TOPOLOGY);
        assert_eq!(
            p.deployment.passwords,
            [
                PasswordRole::Primary,
                PasswordRole::Tls,
                PasswordRole::Truststore
            ]
        );
        let gw = p.node("gw").expect("gw");
        assert_eq!(
            gw.keystores.tls.file,
            "repository/resources/security/gw-tls.jks"
        );
        assert_eq!(gw.keystores.tls.password, PasswordRole::Tls);
        assert_eq!(gw.keystores.tls.alias.as_deref(), Some("gw"));
        let covers = gw
            .keystores
            .tls
            .covers
            .as_ref()
            .expect("per-node TLS covers");
        assert_eq!(covers.dns_names, ["gw.t.example", "localhost"]);
        assert!(covers
            .ip_addresses
            .contains(&"10.0.0.7".parse().expect("ip")));
        assert_eq!(gw.keystores.truststore.password, PasswordRole::Truststore);
        assert_eq!(gw.start, "sh bin/wso2server.sh -Dprofile=gateway-worker");
    }

    #[test]
    fn shared_tls_serves_the_primary_and_uses_its_password() {
        let text = format!("{TOPOLOGY}[keystores]\ntls = \"shared\"\n");
        let p = plan(&text);
        assert_eq!(
            p.deployment.passwords,
            [PasswordRole::Primary, PasswordRole::Truststore]
        );
        let gw = p.node("gw").expect("gw");
        assert_eq!(gw.keystores.tls, gw.keystores.primary);
        assert!(p.node_tls.is_empty());
        assert!(p
            .deployment
            .primary
            .cert
            .dns_names
            .contains(&"tm2.t.example".into()));
    }

    #[test]
    fn the_sets_peer_groups_are_those_its_nodes_name() {
        // set_peer_groups looks at one node per profile: it must find what every node names.
        for product in [
            Product::Apim26,
            Product::Apim32,
            Product::Apim4x,
            Product::Apim45,
        ] {
            for ha in [false, true] {
                let t = Topology::parse(&crate::init::example(product, ha), "t.toml".as_ref())
                    .expect("valid");
                let p = Plan::build(&t);
                let named: PeerGroups =
                    p.nodes.iter().flat_map(|n| n.peer_groups.clone()).collect();
                assert_eq!(set_peer_groups(&t), named, "{product:?} ha={ha}");
                assert_eq!(p.peer_groups, named, "{product:?} ha={ha}");
            }
        }
    }

    #[test]
    fn a_gateway_names_the_traffic_managers_once_as_a_group() {
        let p = plan(TOPOLOGY);
        let gw = p.node("gw").expect("gw");
        let group = &gw.peer_groups[&Profile::TrafficManager];
        assert_eq!(group.members.len(), 2);
        let receiver = gw
            .settings
            .iter()
            .find(|s| s.path == "ThrottlingConfigurations/TrafficManager/ReceiverUrlGroup")
            .expect("receiver group");
        assert!(receiver.targets.is_empty(), "the group holds the members");
        let urls: Vec<String> = gw.targets(receiver).into_iter().map(|t| t.url).collect();
        assert_eq!(
            urls,
            ["tcp://tm1.t.example:9611", "tcp://tm2.t.example:9612"]
        );
        assert_eq!(
            gw.value(receiver),
            "{tcp://tm1.t.example:9611}, {tcp://tm2.t.example:9612}"
        );
        // The nodes of one plan share the group.
        let pub_group = &p.node("pub").expect("pub").peer_groups[&Profile::TrafficManager];
        assert!(Arc::ptr_eq(group, pub_group));
        // A traffic manager names no traffic-manager group.
        assert!(p.node("tm1").expect("tm1").peer_groups.is_empty());
    }

    #[test]
    fn every_ca_generation_is_planned_as_resolve_said() {
        let t = Topology::parse(TOPOLOGY, std::path::Path::new("t.toml")).expect("valid");
        let p = Plan::build(&t);
        for g in 1..4 {
            assert_eq!(p.deployment.ca_cert(g), certs::ca_cert(&t, g));
            assert_eq!(p.deployment.ca_alias(g), certs::ca_alias(&t, g));
        }
        assert_eq!(p.deployment.primary.cert, certs::primary_cert(&t));
        assert_eq!(
            p.load_balancers[0].cert,
            certs::lb_cert(&t, &t.load_balancers[0].host)
        );
    }
}
