//! The certificates of a deployment: the names each one covers (docs/topology.md, "The names
//! each certificate covers"), its subject, role and validity, and the truststore aliases.
//! Knows nothing of files or crypto libraries.

use std::net::{IpAddr, Ipv4Addr};

use crate::pki::{CertSpec, Role, Subject};
use crate::topology::{HostName, Node, TlsMode, Topology};

/// The certificate a node's TLS keystore must hold.
pub(crate) fn node_cert(topology: &Topology, node: &Node) -> CertSpec {
    let mut dns = Vec::new();
    let mut ips = Vec::new();
    push_host(&node.host, &mut dns, &mut ips);
    if let Some(lb) = topology.load_balancer_for(node.profile) {
        push_host(&lb.host, &mut dns, &mut ips);
    }
    for san in &node.extra_sans {
        push_unique(&mut dns, san.clone());
    }
    if let Some(ip) = node.ip {
        push_unique(&mut ips, ip);
    }
    add_localhost(topology, &mut dns, &mut ips);
    CertSpec {
        subject: Subject::new(node.host.to_string(), &topology.pki),
        dns_names: dns,
        ip_addresses: ips,
        role: Role::Tls,
        validity_days: topology.pki.validity_days,
    }
}

/// The certificate of a load balancer (TLS termination).
pub(crate) fn lb_cert(topology: &Topology, host: &HostName) -> CertSpec {
    let mut dns = Vec::new();
    let mut ips = Vec::new();
    push_host(host, &mut dns, &mut ips);
    CertSpec {
        subject: Subject::new(host.to_string(), &topology.pki),
        dns_names: dns,
        ip_addresses: ips,
        role: Role::Tls,
        validity_days: topology.pki.validity_days,
    }
}

/// The primary certificate: no names with per-node TLS; every host with shared TLS.
pub(crate) fn primary_cert(topology: &Topology) -> CertSpec {
    let mut dns = Vec::new();
    let mut ips = Vec::new();
    if topology.keystores.tls == TlsMode::Shared {
        for node in &topology.nodes {
            push_host(&node.host, &mut dns, &mut ips);
            for san in &node.extra_sans {
                push_unique(&mut dns, san.clone());
            }
            if let Some(ip) = node.ip {
                push_unique(&mut ips, ip);
            }
        }
        for lb in &topology.load_balancers {
            push_host(&lb.host, &mut dns, &mut ips);
        }
        add_localhost(topology, &mut dns, &mut ips);
    }
    CertSpec {
        subject: Subject::new(format!("{} primary", topology.name), &topology.pki),
        dns_names: dns,
        ip_addresses: ips,
        role: Role::Primary,
        validity_days: topology.keystores.primary_validity_days,
    }
}

/// The CA certificate of generation `generation` (1 for the first).
pub(crate) fn ca_cert(topology: &Topology, generation: u32) -> CertSpec {
    CertSpec {
        subject: Subject::new(ca_common_name(&topology.name, generation), &topology.pki),
        dns_names: Vec::new(),
        ip_addresses: Vec::new(),
        role: Role::Ca,
        validity_days: topology.pki.ca_validity_days,
    }
}

/// The common name of CA generation `generation` of deployment `name`.
pub(crate) fn ca_common_name(name: &str, generation: u32) -> String {
    format!("{name} CA G{generation}")
}

/// The truststore alias of the CA of `generation` (`<name>-ca`, then `<name>-ca-g2`, …).
pub(crate) fn ca_alias(topology: &Topology, generation: u32) -> String {
    crate::topology::aliases::ca_alias(&topology.name, generation)
}

/// The aliases under which truststores hold the primary certificate.
pub(crate) fn primary_trust_aliases(topology: &Topology) -> Vec<String> {
    let mut aliases: Vec<String> = crate::topology::aliases::PRIMARY_TRUST_ALIASES
        .iter()
        .map(|a| a.to_string())
        .collect();
    push_unique(&mut aliases, topology.keystores.primary_alias.clone());
    aliases
}

/// Whether nodes get their own TLS keystore.
pub(crate) fn per_node_tls(topology: &Topology) -> bool {
    topology.keystores.tls == TlsMode::PerNode
}

fn push_host(host: &HostName, dns: &mut Vec<String>, ips: &mut Vec<IpAddr>) {
    match host {
        HostName::Dns(name) => push_unique(dns, name.clone()),
        HostName::Ip(ip) => push_unique(ips, *ip),
    }
}

fn add_localhost(topology: &Topology, dns: &mut Vec<String>, ips: &mut Vec<IpAddr>) {
    if topology.pki.include_localhost {
        push_unique(dns, "localhost".to_string());
        push_unique(ips, IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
}

fn push_unique<T: PartialEq>(list: &mut Vec<T>, item: T) {
    if !list.contains(&item) {
        list.push(item);
    }
}
