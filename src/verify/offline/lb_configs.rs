//! Load-balancer configurations, read back (not trusted from the writer): every node of the
//! fronted profile is proxied on every port its profile serves, each re-encrypted port verifies
//! the node against the set's CA bundle and a name the node's certificate covers, and the CA
//! bundle the load balancer is given holds the set's CAs and nothing else.

use std::collections::{BTreeMap, HashMap};

use super::{Collector, Shared};
use crate::input::{self, Limit};
use crate::keystore::pem;
use crate::lb::{self, read, Backend, Scheme};
use crate::output::inventory::ArtifactKind;
use crate::output::layout::{self, LbFile};
use crate::set::{LbView, OpenedSet};
use crate::topology::LbPaths;
use crate::verify::findings::{Code, Finding, Owner};
use crate::verify::hostname::{self, CertNames, Host};

/// Parses a configuration into its routes.
type Reader = fn(&str) -> Result<Vec<read::Route>, read::ReadError>;

/// What checking a load balancer's configuration needs from the set's checks.
pub(super) struct Cx<'a> {
    pub(super) set: &'a OpenedSet,
    pub(super) shared: &'a Shared,
    /// The set's CAs.
    pub(super) anchors: &'a [&'a [u8]],
    /// Each node's TLS certificate, by node name.
    pub(super) leaves: &'a BTreeMap<&'a str, Vec<u8>>,
}

/// Checks `lb`'s nginx.conf, haproxy.cfg and CA bundle.
pub(super) fn verify_lb_configs(cx: &Cx, lb: &LbView, c: &mut Collector) {
    let (set, leaves) = (cx.set, cx.leaves);
    let owner = Owner::LoadBalancer(lb.host.clone());
    let product = set.inventory.product;
    let Some(files) = &lb.files else {
        return; // a set made before load-balancer configurations existed
    };
    let profile = lb.fronts;
    verify_bundle(cx, lb, &owner, c);
    let backends: Vec<Backend> = set
        .view
        .nodes
        .iter()
        .filter(|n| n.profile == lb.fronts)
        .map(|n| Backend {
            name: n.name.clone(),
            host: n.host.clone(),
            offset: n.offset,
        })
        .collect();
    let readers: [(LbFile, ArtifactKind, Reader); 2] = [
        (
            LbFile::NginxConf,
            ArtifactKind::LbNginxConf,
            read::nginx_routes,
        ),
        (
            LbFile::HaproxyCfg,
            ArtifactKind::LbHaproxyCfg,
            read::haproxy_routes,
        ),
    ];
    for (file, kind, reader) in readers {
        let rel = layout::lb_file(&lb.host, file);
        let recorded = set
            .inventory
            .artifacts
            .iter()
            .any(|a| a.kind == kind && a.path == rel);
        if !recorded {
            continue;
        }
        let text = match read_lb_file(set, &rel, Limit::Config, &owner, c) {
            Some(b) => String::from_utf8_lossy(&b).into_owned(),
            None => continue,
        };
        match reader(&text) {
            Ok(routes) => {
                let cx = Config {
                    rel: &rel,
                    owner: &owner,
                    lb_host: &lb.host,
                    files,
                    leaves,
                    routes: by_address(&routes),
                };
                for port in lb::ports(product, profile) {
                    for b in &backends {
                        cx.check_backend(b, port.port, port.scheme, c);
                    }
                }
            }
            Err(e) => c.push(Finding::new(
                Code::CorruptFile,
                &owner,
                Some(&rel),
                format!("does not parse: {e}"),
            )),
        }
    }
}

/// `routes` by address, each address's in their order.
fn by_address(routes: &[read::Route]) -> HashMap<&str, Vec<&read::Route>> {
    let mut out: HashMap<&str, Vec<&read::Route>> = HashMap::new();
    for r in routes {
        out.entry(r.address.as_str()).or_default().push(r);
    }
    out
}

/// One configuration read back.
struct Config<'a> {
    rel: &'a str,
    owner: &'a Owner,
    lb_host: &'a str,
    files: &'a LbPaths,
    leaves: &'a BTreeMap<&'a str, Vec<u8>>,
    /// The configuration's routes by backend address, in the file's order: a backend's
    /// routes are found without scanning every route (600 backends x 1,800 routes).
    routes: HashMap<&'a str, Vec<&'a read::Route>>,
}

impl Config<'_> {
    fn check_backend(&self, b: &Backend, port: u16, scheme: Scheme, c: &mut Collector) {
        let addr = b.address(port);
        let mut found: Vec<&read::Route> =
            self.routes.get(addr.as_str()).cloned().unwrap_or_default();
        found.dedup();
        let (rel, owner) = (self.rel, self.owner);
        c.check(!found.is_empty(), || {
            Finding::new(Code::LbBackendMissing, owner, Some(rel), format!("port {port} does not reach node {} at {addr}: requests never go there, and the node's share lands on the others", b.name))
                .expected_actual(addr.clone(), String::new())
        });
        if scheme != Scheme::Https {
            return;
        }
        for r in found {
            let verified = c.check(r.tls && r.verify, || {
                Finding::new(Code::LbVerifyOff, owner, Some(rel), format!("node {} at {addr} is reached without certificate verification: anyone on the path can stand in for it", b.name))
            });
            if !verified {
                continue;
            }
            let ca = r.ca_file.as_deref().unwrap_or("(the system's default CAs)");
            c.check(ca == self.files.ca, || {
                Finding::new(
                    Code::LbForeignTrust,
                    owner,
                    Some(rel),
                    format!(
                        "node {} at {addr} is verified against {ca}, not the set's CA bundle {}",
                        b.name, self.files.ca
                    ),
                )
                .expected_actual(self.files.ca.clone(), ca.to_string())
            });
            self.check_name(b, &addr, r.name.as_deref(), c);
        }
    }

    /// The name must be one the node's certificate covers. The name `generate` writes is right
    /// by definition: a certificate that does not cover it is the node's finding (root causes
    /// only).
    fn check_name(&self, b: &Backend, addr: &str, name: Option<&str>, c: &mut Collector) {
        let expected = b.tls_name(self.lb_host);
        if name.is_some_and(|n| n.eq_ignore_ascii_case(expected)) {
            c.checked += 1;
            return;
        }
        let Some(leaf) = self.leaves.get(b.name.as_str()) else {
            return; // the node's keystore has its own finding
        };
        let covered = match (name, CertNames::from_der(leaf)) {
            (Some(n), Ok(names)) => {
                Host::parse(n).is_ok_and(|h| hostname::check(&names, &h).strict)
            }
            _ => false,
        };
        let shown = name.unwrap_or("(a name the configuration does not tell)");
        c.check(covered, || {
            Finding::new(Code::LbNameUncovered, self.owner, Some(self.rel), format!("node {} at {addr} is verified as {shown}, which its certificate does not cover: the load balancer refuses the node (502/503)", b.name))
                .expected_actual(expected.to_string(), shown.to_string())
        });
    }
}

/// The CA bundle a load balancer verifies nodes with: only the set's CAs, and every node chains
/// to it.
fn verify_bundle(cx: &Cx, lb: &LbView, owner: &Owner, c: &mut Collector) {
    let (set, anchors, leaves) = (cx.set, cx.anchors, cx.leaves);
    let rel = layout::lb_file(&lb.host, LbFile::Ca);
    let Some(bytes) = read_lb_file(set, &rel, Limit::Certificate, owner, c) else {
        return;
    };
    let Ok(certs) = pem::certs_from_pem(&bytes) else {
        c.push(Finding::new(
            Code::CorruptFile,
            owner,
            Some(&rel),
            "not a PEM certificate file",
        ));
        return;
    };
    for der in &certs {
        let subject = crate::pki::CertInfo::from_der(der)
            .map(|i| i.subject)
            .unwrap_or_default();
        c.check(anchors.contains(&der.as_slice()), || {
            Finding::new(Code::LbForeignTrust, owner, Some(&rel), format!("trusts {subject}, which is not a CA of the set: a node certificate from it would be accepted"))
                .subject(subject.clone())
        });
    }
    let bundle: Vec<&[u8]> = certs.iter().map(Vec::as_slice).collect();
    for n in set.view.nodes.iter().filter(|n| n.profile == lb.fronts) {
        if let Some(leaf) = leaves.get(n.name.as_str()) {
            c.check(cx.shared.chains_to(leaf, &[], &bundle), || {
                Finding::new(Code::TruststoreMissingCa, owner, Some(&rel), format!("does not hold the CA that issued node {}'s certificate: the load balancer refuses it", n.name))
            });
        }
    }
}

/// Reads one of a load balancer's files with the size cap of its kind. A file that is absent
/// is `missing-file`; one that cannot be read (too large, unreadable) is `corrupt-file`.
fn read_lb_file(
    set: &OpenedSet,
    rel: &str,
    limit: Limit,
    owner: &Owner,
    c: &mut Collector,
) -> Option<Vec<u8>> {
    match input::read(set.dir.join(rel), limit) {
        Ok(bytes) => Some(bytes),
        Err(e) => {
            let (code, detail) = if e.kind() == std::io::ErrorKind::NotFound {
                (Code::MissingFile, "missing".to_string())
            } else {
                (Code::CorruptFile, format!("cannot be read: {e}"))
            };
            c.push(Finding::new(code, owner, Some(rel), &detail));
            None
        }
    }
}
