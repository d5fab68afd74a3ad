//! Load-balancer configurations: what each `[[load_balancer]]` serves (ports per product and
//! profile, the nodes behind it, session affinity, the files it reads on its own host), and
//! renderers for nginx ([`nginx`]) and HAProxy ([`haproxy`]) that turn that plan into text.
//! [`read`] parses generated configurations back for `verify`. docs/load-balancers.md explains
//! every choice.

pub(crate) mod haproxy;
pub(crate) mod nginx;
pub(crate) mod read;

use crate::plan::settings::port;
use crate::topology::{Affinity, LbPaths, LoadBalancer, Product, Profile, Topology};

/// The load balancer's own affinity cookie when the topology names none.
pub(crate) const DEFAULT_COOKIE: &str = "APIMLB";

/// Where a load balancer's files live on its host when the topology does not say.
pub(crate) fn default_cert_dir(host: &str) -> String {
    format!("/etc/apim-pki/{host}")
}

/// The default paths of a load balancer's files under `dir` (same names as in DIR).
pub(crate) fn paths_in(dir: &str) -> LbPaths {
    let dir = dir.trim_end_matches('/');
    LbPaths {
        cert: format!("{dir}/tls.crt"),
        key: format!("{dir}/tls.key"),
        ca: format!("{dir}/ca.crt"),
        haproxy_pem: format!("{dir}/haproxy.pem"),
    }
}

/// What a port carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scheme {
    /// TLS terminated with the load balancer's certificate and re-encrypted to the node.
    Https,
    /// Plain HTTP on both sides (the gateway's 8280, 9099, 9021).
    Http,
}

/// One port a load balancer listens on; the nodes serve it at `port` plus their offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LbPort {
    pub port: u16,
    pub scheme: Scheme,
    /// Carries WebSocket upgrades (long-lived tunnels).
    pub websocket: bool,
    /// What the port is, for comments.
    pub purpose: &'static str,
}

const fn https(port: u16, websocket: bool, purpose: &'static str) -> LbPort {
    LbPort {
        port,
        scheme: Scheme::Https,
        websocket,
        purpose,
    }
}

const fn http(port: u16, websocket: bool, purpose: &'static str) -> LbPort {
    LbPort {
        port,
        scheme: Scheme::Http,
        websocket,
        purpose,
    }
}

/// WebSub receivers of API-M 4.x gateways (default.json `apim.webhooks.*.port`).
pub(crate) const WEBSUB_HTTP: u16 = 9021;
pub(crate) const WEBSUB_HTTPS: u16 = 8021;

/// The ports a load balancer fronting `profile` serves (before offsets). Every profile serves
/// its management console and admin services on 9443; gateways also serve API traffic (8243,
/// 8280), WebSocket APIs (8099 wss, 9099 ws) and, from 4.0, WebSub (8021, 9021). Binary (9611,
/// 9711), AMQP (5672) and Thrift (10397) are not load-balanced: WSO2's clients list every traffic
/// manager themselves and Thrift is only used without a key-manager load balancer.
pub(crate) fn ports(product: Product, profile: Profile) -> Vec<LbPort> {
    let mut out = vec![https(
        port::MGMT_HTTPS,
        false,
        "management console and admin services",
    )];
    if profile.is_gateway() {
        out.push(https(port::GW_HTTPS, false, "API traffic (HTTPS)"));
        out.push(http(port::GW_HTTP, false, "API traffic (HTTP)"));
        out.push(https(port::WSS, true, "WebSocket APIs (wss)"));
        out.push(http(port::WS, true, "WebSocket APIs (ws)"));
        if matches!(product, Product::Apim4x | Product::Apim45) {
            out.push(https(WEBSUB_HTTPS, false, "WebSub/WebHook APIs (HTTPS)"));
            out.push(http(WEBSUB_HTTP, false, "WebSub/WebHook APIs (HTTP)"));
        }
    }
    out
}

/// True when the gateway workers are also each other's managers in HA: API-M 2.6 and 3.2 deploy
/// APIs through admin services on the gateway's address, and with no gateway-manager node and
/// several workers that address is the load balancer (WSO2's distributed deployment guide: "multiple Gateway Managers").
pub(crate) fn gateway_managers_in_ha(
    product: Product,
    gateway_workers: usize,
    has_manager: bool,
) -> bool {
    product != Product::Apim4x && !has_manager && gateway_workers >= 2
}

/// Why session affinity may not be switched off in front of `profile`, if it may not.
pub(crate) fn affinity_required(profile: Profile, managers_in_ha: bool) -> Option<&'static str> {
    match profile {
        Profile::Publisher | Profile::Store | Profile::Devportal | Profile::ControlPlane => Some(
            "WSO2's distributed deployment guide makes session affinity mandatory in front of publisher and store (devportal, control plane) clusters: their web apps keep sessions per node",
        ),
        Profile::GatewayWorker if managers_in_ha => Some(
            "the gateway workers are gateway managers in HA here (no gateway-manager node), and WSO2's distributed deployment guide needs session affinity for their admin-service sessions",
        ),
        _ => None,
    }
}

/// The affinity a load balancer gets when the topology does not say.
pub(crate) fn default_affinity(profile: Profile, managers_in_ha: bool) -> Affinity {
    match profile {
        Profile::Publisher
        | Profile::Store
        | Profile::Devportal
        | Profile::ControlPlane
        | Profile::GatewayManager => Affinity::Cookie,
        // Their clients are WSO2 servers, which return JSESSIONID only: stick by address.
        Profile::GatewayWorker if managers_in_ha => Affinity::Source,
        _ => Affinity::None,
    }
}

/// A node behind a load balancer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Backend {
    /// The node's name (cookie value, server name).
    pub name: String,
    /// The node's host: its address and the name its certificate is verified against.
    pub host: String,
    pub offset: u16,
}

impl Backend {
    /// The name the load balancer verifies this node's certificate against: its host, or, for a
    /// node whose host is an IP address, the load balancer's host (nginx and HAProxy match DNS
    /// names only; every node certificate carries its load balancer's host as a DNS SAN).
    pub(crate) fn tls_name<'a>(&'a self, lb_host: &'a str) -> &'a str {
        if self.host.parse::<std::net::IpAddr>().is_ok() {
            lb_host
        } else {
            &self.host
        }
    }

    /// `host:port` of this node for a load-balancer port (IPv6 bracketed).
    pub(crate) fn address(&self, port: u16) -> String {
        let port = u32::from(port) + u32::from(self.offset);
        if self.host.contains(':') {
            format!("[{}]:{port}", self.host)
        } else {
            format!("{}:{port}", self.host)
        }
    }
}

/// Everything a renderer needs for one load balancer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LbPlan {
    /// The topology's name, for comments.
    pub deployment: String,
    pub host: String,
    pub fronts: Profile,
    pub affinity: Affinity,
    pub cookie: String,
    pub files: LbPaths,
    pub ports: Vec<LbPort>,
    pub backends: Vec<Backend>,
}

impl LbPlan {
    /// The prefix of every name the configurations define (`apim_` + host, `_` for non-alnum),
    /// unique per load balancer so that several can share one nginx.
    pub(crate) fn slug(&self) -> String {
        let host: String = self
            .host
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        format!("apim_{host}")
    }
}

/// The plan of `lb` in `topology`.
pub(crate) fn plan(topology: &Topology, lb: &LoadBalancer) -> LbPlan {
    LbPlan {
        deployment: topology.name.clone(),
        host: lb.host.to_string(),
        fronts: lb.fronts,
        affinity: lb.affinity,
        cookie: lb.affinity_cookie.clone(),
        files: lb.files.clone(),
        ports: ports(topology.product, lb.fronts),
        backends: topology
            .nodes
            .iter()
            .filter(|n| n.profile == lb.fronts)
            .map(|n| Backend {
                name: n.name.clone(),
                host: n.host.to_string(),
                offset: n.offset,
            })
            .collect(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A two-node publisher load balancer, for the renderers' tests.
    pub(crate) fn sample(affinity: Affinity, profile: Profile, product: Product) -> LbPlan {
        LbPlan {
            deployment: "t".into(),
            host: "lb.example.test".into(),
            fronts: profile,
            affinity,
            cookie: DEFAULT_COOKIE.into(),
            files: paths_in("/etc/lb"),
            ports: ports(product, profile),
            backends: vec![
                Backend {
                    name: "n1".into(),
                    host: "n1.example.test".into(),
                    offset: 0,
                },
                Backend {
                    name: "n2".into(),
                    host: "n2.example.test".into(),
                    offset: 3,
                },
            ],
        }
    }

    #[test]
    fn ports_per_product_and_profile() {
        let list = |product, profile| -> Vec<u16> {
            ports(product, profile).iter().map(|p| p.port).collect()
        };
        assert_eq!(list(Product::Apim26, Profile::Publisher), [9443]);
        assert_eq!(list(Product::Apim4x, Profile::ControlPlane), [9443]);
        assert_eq!(list(Product::Apim32, Profile::TrafficManager), [9443]);
        assert_eq!(
            list(Product::Apim26, Profile::GatewayWorker),
            [9443, 8243, 8280, 8099, 9099]
        );
        assert_eq!(
            list(Product::Apim4x, Profile::GatewayWorker),
            [9443, 8243, 8280, 8099, 9099, 8021, 9021]
        );
        let gw = ports(Product::Apim32, Profile::GatewayWorker);
        assert_eq!(gw[2].scheme, Scheme::Http);
        assert!(gw[3].websocket && gw[3].scheme == Scheme::Https);
    }

    #[test]
    fn affinity_rules_follow_the_seed() {
        assert!(affinity_required(Profile::Publisher, false).is_some());
        assert!(affinity_required(Profile::Store, false).is_some());
        assert!(affinity_required(Profile::KeyManager, false).is_none());
        assert!(affinity_required(Profile::GatewayWorker, false).is_none());
        assert!(affinity_required(Profile::GatewayWorker, true).is_some());
        assert!(gateway_managers_in_ha(Product::Apim26, 2, false));
        assert!(!gateway_managers_in_ha(Product::Apim26, 2, true));
        assert!(!gateway_managers_in_ha(Product::Apim4x, 3, false));
        assert_eq!(default_affinity(Profile::Store, false), Affinity::Cookie);
        assert_eq!(
            default_affinity(Profile::GatewayWorker, true),
            Affinity::Source
        );
        assert_eq!(default_affinity(Profile::KeyManager, false), Affinity::None);
    }

    #[test]
    fn slug_and_addresses() {
        let p = sample(Affinity::None, Profile::Publisher, Product::Apim26);
        assert_eq!(p.slug(), "apim_lb_example_test");
        assert_eq!(p.backends[1].address(9443), "n2.example.test:9446");
        let v6 = Backend {
            name: "x".into(),
            host: "fd00::1".into(),
            offset: 1,
        };
        assert_eq!(v6.address(8243), "[fd00::1]:8244");
        assert_eq!(
            v6.tls_name("lb.test"),
            "lb.test",
            "IP hosts are verified by the LB's name"
        );
        assert_eq!(p.backends[0].tls_name("lb.test"), "n1.example.test");
        assert_eq!(paths_in("/x/").ca, "/x/ca.crt");
    }
}
