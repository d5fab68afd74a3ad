//! The peer tables of an API-M 3.2 / 4.x node's deployment.toml, as data: which tables each
//! profile gets (after WSO2's own distributed samples: kubernetes-apim 3.2.x pattern 3,
//! helm-apim 4.2.x distributed, kubernetes-apim 4.2.x pattern 4) and the URLs each names.
//! `config::deployment_toml` renders them; [`super::NodePlan::peers`] lists their URLs.
//!
//! A peer profile's address follows the 2.6 rule ([`super::settings`]): its load balancer's
//! host (offset 0) when it has one, else its single node's host and offset. Endpoints that are
//! not balanced (AMQP 5672, binary 9611/9711) name every node with its own offset.

use super::settings::{address, node_address, nodes_of, port, Address, Target};
use super::{GroupPeer, NamedTarget, PeerEntry};
use crate::topology::{Node, Product, Profile, Topology};

/// One deployment.toml table wiring a node to its peers, with the URLs it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PeerTable {
    /// `[apim.key_manager]`: the key manager's admin services.
    KeyManager { service_url: Target },
    /// `[apim.oauth_config]`: where token revocations go.
    RevokeEndpoint { revoke_endpoint: Target },
    /// `[[apim.gateway.environment]]`: where APIs deploy and the URLs shown to consumers.
    GatewayEnvironment(Box<GatewayEndpoints>),
    /// `[apim.throttling]`: the traffic manager's admin services (when used) and every
    /// traffic manager's decision (AMQP) endpoint.
    Throttling {
        service_url: Option<Target>,
        throttle_decision_endpoints: Vec<Target>,
        deciders: Profile,
    },
    /// `[[apim.throttling.url_group]]`: throttle events to one traffic manager.
    ThrottlingUrlGroup {
        node: String,
        traffic_manager_url: Target,
        traffic_manager_auth_url: Target,
        receivers: Profile,
    },
    /// `[apim.throttling] event_duplicate_url` of a traffic manager: the other ones.
    ThrottleDuplicates {
        event_duplicate_url: Vec<Target>,
        tms: Profile,
    },
    /// `[apim.event_hub]`: the hub's services, every hub node's AMQP port and, on a hub node
    /// in HA, the other hub nodes'.
    EventHub {
        service_url: Target,
        event_listening_endpoints: Vec<Target>,
        event_duplicate_url: Vec<Target>,
        hubs: Profile,
    },
    /// `[[apim.event_hub.publish.url_group]]`: publish events to one hub node.
    EventHubPublish {
        node: String,
        url: Target,
        auth_url: Target,
        hubs: Profile,
    },
    /// The key manager's token-revocation `[[event_listener]]`, notifying the traffic manager.
    RevocationListener { notification_endpoint: Target },
    /// `[apim.devportal] url`: the developer portal (the publisher's "view in portal").
    Devportal { url: Target },
    /// `[apim.sync_runtime_artifacts.gateway]`: the gateway deploys the default environment's
    /// APIs (no URL).
    SyncRuntimeArtifacts,
}

/// The URLs of a `[[apim.gateway.environment]]`: the gateway's services and endpoints, and
/// its WebSub receivers (`http`, `https`) from 4.0 on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GatewayEndpoints {
    pub service_url: Target,
    pub http_endpoint: Target,
    pub https_endpoint: Target,
    pub ws_endpoint: Target,
    pub wss_endpoint: Target,
    pub websub: Option<(Target, Target)>,
}

impl GatewayEndpoints {
    fn urls(&self) -> Vec<(&'static str, &Target)> {
        let mut out = vec![
            ("apim.gateway.environment.service_url", &self.service_url),
            (
                "apim.gateway.environment.http_endpoint",
                &self.http_endpoint,
            ),
            (
                "apim.gateway.environment.https_endpoint",
                &self.https_endpoint,
            ),
            ("apim.gateway.environment.ws_endpoint", &self.ws_endpoint),
            ("apim.gateway.environment.wss_endpoint", &self.wss_endpoint),
        ];
        if let Some((http, https)) = &self.websub {
            out.push((
                "apim.gateway.environment.websub_event_receiver_http_endpoint",
                http,
            ));
            out.push((
                "apim.gateway.environment.websub_event_receiver_https_endpoint",
                https,
            ));
        }
        out
    }
}

/// Each of `targets` under `key`.
fn keyed<'t>(
    key: &'static str,
    targets: impl IntoIterator<Item = &'t Target>,
) -> impl Iterator<Item = (&'static str, &'t Target)> {
    targets.into_iter().map(move |t| (key, t))
}

impl PeerTable {
    /// Every URL the table names, each with `table.key` (the table without brackets), in the
    /// order deployment.toml writes them.
    pub(crate) fn urls(&self) -> Vec<(&'static str, &Target)> {
        use PeerTable::*;
        match self {
            KeyManager { service_url } => vec![("apim.key_manager.service_url", service_url)],
            RevokeEndpoint { revoke_endpoint } => {
                vec![("apim.oauth_config.revoke_endpoint", revoke_endpoint)]
            }
            GatewayEnvironment(gw) => gw.urls(),
            Throttling {
                service_url,
                throttle_decision_endpoints,
                ..
            } => keyed("apim.throttling.service_url", service_url)
                .chain(keyed(
                    "apim.throttling.throttle_decision_endpoints",
                    throttle_decision_endpoints,
                ))
                .collect(),
            ThrottlingUrlGroup {
                traffic_manager_url: tcp,
                traffic_manager_auth_url: ssl,
                ..
            } => vec![
                ("apim.throttling.url_group.traffic_manager_urls", tcp),
                ("apim.throttling.url_group.traffic_manager_auth_urls", ssl),
            ],
            ThrottleDuplicates {
                event_duplicate_url,
                ..
            } => keyed("apim.throttling.event_duplicate_url", event_duplicate_url).collect(),
            EventHub {
                service_url,
                event_listening_endpoints,
                event_duplicate_url,
                ..
            } => keyed("apim.event_hub.service_url", [service_url])
                .chain(keyed(
                    "apim.event_hub.event_listening_endpoints",
                    event_listening_endpoints,
                ))
                .chain(keyed(
                    "apim.event_hub.event_duplicate_url",
                    event_duplicate_url,
                ))
                .collect(),
            EventHubPublish { url, auth_url, .. } => vec![
                ("apim.event_hub.publish.url_group.urls", url),
                ("apim.event_hub.publish.url_group.auth_urls", auth_url),
            ],
            RevocationListener {
                notification_endpoint,
            } => {
                let key = "event_listener.properties.notification_endpoint";
                vec![(key, notification_endpoint)]
            }
            Devportal { url } => vec![("apim.devportal.url", url)],
            SyncRuntimeArtifacts => Vec::new(),
        }
    }
}

/// `deployment.toml: key`, the label node.toml gives a peer URL.
fn label(key: &str) -> String {
    format!("deployment.toml: {key}")
}

/// One node.toml peer per URL.
fn each_one(urls: Vec<(&'static str, &Target)>) -> Vec<PeerEntry> {
    urls.into_iter()
        .map(|(key, t)| {
            PeerEntry::One(NamedTarget {
                setting: label(key),
                target: t.clone(),
            })
        })
        .collect()
}

/// Every member of `group` (but `except`) under `key`, as `scheme://member:port+offset`.
fn group(key: &str, group: Profile, scheme: &str, port: u16, except: Option<&str>) -> PeerEntry {
    PeerEntry::Group(GroupPeer {
        setting: label(key),
        group,
        scheme: scheme.into(),
        port,
        except: except.map(String::from),
    })
}

impl PeerTable {
    /// What node.toml says of the table's URLs on node `me`: one entry per URL, except lists
    /// naming every node of a profile (but `me`), which name that peer group once.
    fn entries(&self, me: &str) -> Vec<PeerEntry> {
        use PeerTable::*;
        let (tcp, ssl) = (port::BINARY_TCP, port::BINARY_SSL);
        match self {
            Throttling {
                service_url,
                throttle_decision_endpoints: all,
                deciders,
            } => {
                let mut out = each_one(keyed("apim.throttling.service_url", service_url).collect());
                let key = "apim.throttling.throttle_decision_endpoints";
                out.extend(
                    (!all.is_empty()).then(|| group(key, *deciders, "tcp", port::AMQP, None)),
                );
                out
            }
            ThrottlingUrlGroup { receivers: g, .. } => vec![
                group(
                    "apim.throttling.url_group.traffic_manager_urls",
                    *g,
                    "tcp",
                    tcp,
                    None,
                ),
                group(
                    "apim.throttling.url_group.traffic_manager_auth_urls",
                    *g,
                    "ssl",
                    ssl,
                    None,
                ),
            ],
            ThrottleDuplicates { tms, .. } => {
                let key = "apim.throttling.event_duplicate_url";
                vec![group(key, *tms, "tcp", port::AMQP, Some(me))]
            }
            EventHub {
                service_url,
                event_listening_endpoints: all,
                event_duplicate_url: dup,
                hubs,
            } => {
                let mut out = each_one(vec![("apim.event_hub.service_url", service_url)]);
                let (listen, copies) = (
                    "apim.event_hub.event_listening_endpoints",
                    "apim.event_hub.event_duplicate_url",
                );
                out.extend(
                    (!all.is_empty()).then(|| group(listen, *hubs, "tcp", port::AMQP, None)),
                );
                out.extend(
                    (!dup.is_empty()).then(|| group(copies, *hubs, "tcp", port::AMQP, Some(me))),
                );
                out
            }
            EventHubPublish { hubs: g, .. } => vec![
                group(
                    "apim.event_hub.publish.url_group.urls",
                    *g,
                    "tcp",
                    tcp,
                    None,
                ),
                group(
                    "apim.event_hub.publish.url_group.auth_urls",
                    *g,
                    "ssl",
                    ssl,
                    None,
                ),
            ],
            _ => each_one(self.urls()),
        }
    }
}

/// node.toml's peers of `node`: its deployment.toml's URLs, each list naming every node of a
/// profile as that peer group, once.
pub(crate) fn node_peers(topology: &Topology, node: &Node) -> Vec<PeerEntry> {
    let mut out: Vec<PeerEntry> = Vec::new();
    for entry in peer_tables(topology, node)
        .iter()
        .flat_map(|t| t.entries(&node.name))
    {
        if matches!(entry, PeerEntry::One(_)) || !out.contains(&entry) {
            out.push(entry);
        }
    }
    out
}

/// The peer tables of `node`'s deployment.toml, in the order they are written; empty for
/// API-M 2.6 (XML configuration, see [`super::settings`]).
pub(crate) fn peer_tables(topology: &Topology, node: &Node) -> Vec<PeerTable> {
    match topology.product {
        Product::Apim32 => apim32(topology, node),
        Product::Apim4x | Product::Apim45 => apim4x(topology, node),
        Product::Apim26 => Vec::new(),
    }
}

fn key_manager(km: &Address) -> PeerTable {
    PeerTable::KeyManager {
        service_url: km.target("https", port::MGMT_HTTPS, "/services/"),
    }
}

fn revoke_endpoint(at: &Address) -> PeerTable {
    PeerTable::RevokeEndpoint {
        revoke_endpoint: at.target("https", port::MGMT_HTTPS, "/oauth2/revoke"),
    }
}

fn gateway_environment(gw: &Address, product: Product) -> PeerTable {
    PeerTable::GatewayEnvironment(Box::new(GatewayEndpoints {
        service_url: gw.target("https", port::MGMT_HTTPS, "/services/"),
        http_endpoint: gw.target("http", port::GW_HTTP, ""),
        https_endpoint: gw.target("https", port::GW_HTTPS, ""),
        ws_endpoint: gw.target("ws", port::WS, ""),
        wss_endpoint: gw.target("wss", port::WSS, ""),
        websub: (product != Product::Apim32).then(|| {
            (
                gw.target("http", port::WEBSUB_HTTP, ""),
                gw.target("https", port::WEBSUB_HTTPS, ""),
            )
        }),
    }))
}

fn each(nodes: &[&Node], scheme: &str, port: u16) -> Vec<Target> {
    nodes
        .iter()
        .map(|n| node_address(n).target(scheme, port, ""))
        .collect()
}

/// The nodes of one profile, which node.toml names as a peer group.
pub(crate) struct Members<'t> {
    profile: Profile,
    nodes: Vec<&'t Node>,
}

impl<'t> Members<'t> {
    fn of(topology: &'t Topology, profile: Profile) -> Members<'t> {
        Members {
            profile,
            nodes: nodes_of(topology, profile),
        }
    }
}

fn throttling(service: Option<&Address>, deciders: &Members) -> PeerTable {
    PeerTable::Throttling {
        service_url: service.map(|s| s.target("https", port::MGMT_HTTPS, "/services/")),
        throttle_decision_endpoints: each(&deciders.nodes, "tcp", port::AMQP),
        deciders: deciders.profile,
    }
}

/// One url group per traffic manager: every one receives every event.
fn throttling_url_groups(receivers: &Members) -> Vec<PeerTable> {
    receivers
        .nodes
        .iter()
        .map(|n| {
            let a = node_address(n);
            PeerTable::ThrottlingUrlGroup {
                node: n.name.clone(),
                traffic_manager_url: a.target("tcp", port::BINARY_TCP, ""),
                traffic_manager_auth_url: a.target("ssl", port::BINARY_SSL, ""),
                receivers: receivers.profile,
            }
        })
        .collect()
}

/// The AMQP endpoints of the nodes other than `me`: where a traffic manager or event hub
/// copies its events in HA.
fn duplicates(nodes: &[&Node], me: &Node) -> Vec<Target> {
    let others: Vec<&Node> = nodes
        .iter()
        .copied()
        .filter(|n| n.name != me.name)
        .collect();
    each(&others, "tcp", port::AMQP)
}

/// A traffic manager's copies of its throttle decisions to the others, when there are others.
fn throttle_duplicates(tms: &Members, me: &Node) -> Option<PeerTable> {
    let dup = duplicates(&tms.nodes, me);
    (!dup.is_empty()).then_some(PeerTable::ThrottleDuplicates {
        event_duplicate_url: dup,
        tms: tms.profile,
    })
}

fn event_hub(service: &Address, hubs: &Members, duplicate: Vec<Target>) -> PeerTable {
    PeerTable::EventHub {
        service_url: service.target("https", port::MGMT_HTTPS, "/services/"),
        event_listening_endpoints: each(&hubs.nodes, "tcp", port::AMQP),
        event_duplicate_url: duplicate,
        hubs: hubs.profile,
    }
}

/// One publish url group per hub node.
fn event_hub_publish(hubs: &Members) -> Vec<PeerTable> {
    hubs.nodes
        .iter()
        .map(|n| {
            let a = node_address(n);
            PeerTable::EventHubPublish {
                node: n.name.clone(),
                url: a.target("tcp", port::BINARY_TCP, ""),
                auth_url: a.target("ssl", port::BINARY_SSL, ""),
                hubs: hubs.profile,
            }
        })
        .collect()
}

fn revocation_listener(tm: &Address) -> PeerTable {
    PeerTable::RevocationListener {
        notification_endpoint: tm.target("https", port::MGMT_HTTPS, "/internal/data/v1/notify"),
    }
}

fn devportal(dp: &Address) -> PeerTable {
    PeerTable::Devportal {
        url: dp.target("https", port::MGMT_HTTPS, "/devportal"),
    }
}

/// API-M 3.2: the traffic managers are the event hub; the key manager notifies them of
/// revoked tokens.
fn apim32(topology: &Topology, node: &Node) -> Vec<PeerTable> {
    let km = address(topology, Profile::KeyManager);
    let gw = address(topology, Profile::GatewayWorker);
    let tm = address(topology, Profile::TrafficManager);
    let tms = Members::of(topology, Profile::TrafficManager);
    let product = Product::Apim32;
    let mut out = Vec::new();
    match node.profile {
        Profile::KeyManager => {
            out.push(throttling(None, &tms));
            out.extend(throttling_url_groups(&tms));
            if let Some(tm) = &tm {
                out.push(event_hub(tm, &tms, Vec::new()));
                out.extend(event_hub_publish(&tms));
                out.push(revocation_listener(tm));
            }
        }
        Profile::Publisher => {
            out.extend(km.as_ref().map(key_manager));
            out.extend(gw.as_ref().map(|gw| gateway_environment(gw, product)));
            out.push(throttling(tm.as_ref(), &tms));
            out.extend(throttling_url_groups(&tms));
            out.extend(
                address(topology, Profile::Devportal)
                    .as_ref()
                    .map(devportal),
            );
        }
        Profile::Devportal | Profile::Store => {
            out.extend(km.as_ref().map(key_manager));
            out.extend(gw.as_ref().map(|gw| gateway_environment(gw, product)));
            out.push(throttling(None, &tms));
            out.extend(throttling_url_groups(&tms));
        }
        Profile::TrafficManager => {
            if let Some(km) = &km {
                out.push(key_manager(km));
                out.push(revoke_endpoint(km));
            }
            out.extend(throttle_duplicates(&tms, node));
        }
        Profile::GatewayWorker => {
            out.extend(km.as_ref().map(key_manager));
            out.push(throttling(tm.as_ref(), &tms));
            out.extend(throttling_url_groups(&tms));
            out.extend(tm.as_ref().map(|tm| event_hub(tm, &tms, Vec::new())));
        }
        _ => {}
    }
    out
}

/// The profile that serves API traffic in `product`.
fn gateway_profile(product: Product) -> Profile {
    match product {
        Product::Apim45 => Profile::UniversalGateway,
        _ => Profile::GatewayWorker,
    }
}

/// API-M 4.0-4.4 and 4.5+: the control plane is the event hub and, without a key-manager
/// node, the key manager; 4.5+ differs only in its gateway profile (universal-gateway).
fn apim4x(topology: &Topology, node: &Node) -> Vec<PeerTable> {
    let product = topology.product;
    let cp = address(topology, Profile::ControlPlane);
    let cps = Members::of(topology, Profile::ControlPlane);
    let separate_km = !nodes_of(topology, Profile::KeyManager).is_empty();
    // The key manager: a key-manager node if there is one, else the control plane.
    let km: Option<Address> = address(topology, Profile::KeyManager).or_else(|| cp.clone());
    // Throttling: the traffic managers, else the control plane (which embeds one).
    let tm_profile = if nodes_of(topology, Profile::TrafficManager).is_empty() {
        Profile::ControlPlane
    } else {
        Profile::TrafficManager
    };
    let tm = address(topology, tm_profile);
    let tms = Members::of(topology, tm_profile);
    let hub = |duplicate: bool| {
        let dup = if duplicate {
            duplicates(&cps.nodes, node)
        } else {
            Vec::new()
        };
        cp.as_ref().map(|cp| event_hub(cp, &cps, dup))
    };
    let mut out = Vec::new();
    match node.profile {
        Profile::ControlPlane => {
            if separate_km {
                out.extend(km.as_ref().map(key_manager));
            }
            out.extend(km.as_ref().map(revoke_endpoint));
            let gw = address(topology, gateway_profile(product));
            out.extend(gw.as_ref().map(|gw| gateway_environment(gw, product)));
            out.extend(hub(true));
            out.extend(event_hub_publish(&cps));
            out.extend(cp.as_ref().map(devportal));
        }
        p if p == gateway_profile(product) => {
            out.extend(km.as_ref().map(key_manager));
            out.push(throttling(tm.as_ref(), &tms));
            out.extend(throttling_url_groups(&tms));
            out.extend(hub(false));
            out.push(PeerTable::SyncRuntimeArtifacts);
        }
        Profile::TrafficManager => {
            if let Some(km) = &km {
                out.push(key_manager(km));
                out.push(revoke_endpoint(km));
            }
            out.extend(hub(false));
            out.extend(throttle_duplicates(&tms, node));
        }
        Profile::KeyManager => {
            out.extend(hub(false));
            out.extend(event_hub_publish(&cps));
        }
        _ => {}
    }
    out
}
