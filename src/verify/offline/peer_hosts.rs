//! config-host-uncovered: every host a TLS URL in a node's node.toml names is covered by the
//! certificate of what answers there (the node, or the load balancer and the nodes behind it).
//!
//! The cost grows with the set, not with nodes × peers: who answers where is indexed once
//! ([`PeerIndex`]); checking a host against what answers at a place is done once per (place,
//! host) for the whole set, and a setting naming a whole peer group (every traffic manager) is
//! checked once per (group, scheme, port): each node then adds the counts and the findings
//! ([`Memo`]). Findings and counts are those of checking every URL of every node.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use rayon::prelude::*;

use super::{memoized, Collector};
use crate::keystore::pem;
use crate::output::layout::{self, LbFile};
use crate::plan::{GroupForm, GroupPeer, GroupUrls, NodePlan, PeerEntry, ServedBy, Target};
use crate::set::{NodeView, OpenedSet};
use crate::topology::Profile;
use crate::verify::findings::{Code, Finding, Owner};
use crate::verify::hostname::{self, CertNames, Host};

/// A certificate that may answer a peer URL, parsed once for the whole set.
struct Answerer {
    /// `node NAME` or `load balancer HOST`.
    who: String,
    /// None when the certificate's names do not parse (its own checks report it).
    names: Option<CertNames>,
    /// The hosts its own checks already cover (a mismatch there is reported once, as
    /// hostname-mismatch: the root cause).
    own: Vec<String>,
}

impl Answerer {
    fn new(who: String, der: &[u8], own: Vec<String>) -> Answerer {
        Answerer {
            who,
            names: CertNames::from_der(der).ok(),
            own,
        }
    }
}

/// Who answers where, indexed once: a peer check then costs what it checks, not a scan of the
/// set (gateways name every traffic manager: scanning the nodes per peer made verify quadratic).
struct PeerIndex<'a> {
    nodes: HashMap<&'a str, Answerer>,
    /// Node names per profile, in the set's order (a handful of profiles).
    by_profile: Vec<(Profile, Vec<&'a str>)>,
    /// Per load balancer host: its own certificate and the profile it fronts.
    lbs: HashMap<&'a str, (Option<Answerer>, Profile)>,
}

impl<'a> PeerIndex<'a> {
    fn new(set: &'a OpenedSet, tls_leaves: &BTreeMap<&str, Vec<u8>>) -> PeerIndex<'a> {
        let view = &set.view;
        let mut by_profile: Vec<(Profile, Vec<&str>)> = Vec::new();
        for n in &view.nodes {
            match by_profile.iter_mut().find(|(p, _)| *p == n.profile) {
                Some((_, names)) => names.push(&n.name),
                None => by_profile.push((n.profile, vec![&n.name])),
            }
        }
        let nodes = view
            .nodes
            .iter()
            .filter_map(|n| {
                let leaf = tls_leaves.get(n.name.as_str())?;
                let mut own = vec![n.host.clone()];
                own.extend(view.lb_for(n.profile).map(|lb| lb.host.clone()));
                let who = format!("node {}", n.name);
                Some((n.name.as_str(), Answerer::new(who, leaf, own)))
            })
            .collect();
        let lbs = view
            .load_balancers
            .iter()
            .map(|lb| {
                let own = lb_leaf(set, &lb.host).map(|c| {
                    let who = format!("load balancer {}", lb.host);
                    Answerer::new(who, &c, vec![lb.host.clone()])
                });
                (lb.host.as_str(), (own, lb.fronts))
            })
            .collect();
        PeerIndex {
            nodes,
            by_profile,
            lbs,
        }
    }

    /// The certificates that may answer for `served_by`, in the order findings list them: the
    /// load balancer's own, then the nodes behind it; or the one node.
    fn answerers(&self, served_by: &ServedBy) -> Vec<&Answerer> {
        let mut out = Vec::new();
        match served_by {
            ServedBy::LoadBalancer(host) => {
                if let Some((own, fronts)) = self.lbs.get(host.as_str()) {
                    out.extend(own.as_ref());
                    let behind = self
                        .by_profile
                        .iter()
                        .find(|(p, _)| p == fronts)
                        .map(|(_, names)| names.as_slice())
                        .unwrap_or_default();
                    out.extend(behind.iter().filter_map(|n| self.nodes.get(n)));
                }
            }
            ServedBy::Node(name) => out.extend(self.nodes.get(name.as_str())),
        }
        out
    }
}

/// A load balancer's certificate (the leaf of its cert.pem), when it reads.
fn lb_leaf(set: &OpenedSet, host: &str) -> Option<Vec<u8>> {
    crate::input::read(
        set.dir.join(layout::lb_file(host, LbFile::Cert)),
        crate::input::Limit::Certificate,
    )
    .ok()
    .and_then(|b| pem::certs_from_pem(&b).ok())
    .and_then(|v| v.into_iter().next())
}

/// What checking one host against every certificate answering at one place found.
#[derive(Default)]
struct Verdict {
    /// How many certificates were checked.
    checks: usize,
    /// (who, host) for each certificate that does not cover the host, in answerer order.
    uncovered: Vec<(String, String)>,
}

/// What checking every TLS URL of one group setting (one per member) found.
#[derive(Default)]
struct GroupVerdict {
    checks: usize,
    /// The members whose URL is not covered, with what was found, in member order.
    uncovered: Vec<(Target, Arc<Verdict>)>,
}

/// (what answers, the host the URL names).
type HostKey = (ServedBy, String);
/// (group, scheme, port).
type GroupKey = (Profile, String, u16);

/// The checks done so far, shared by the nodes checked in parallel.
struct Memo<'a> {
    index: PeerIndex<'a>,
    hosts: Mutex<HashMap<HostKey, Arc<Verdict>>>,
    groups: Mutex<HashMap<GroupKey, Arc<GroupVerdict>>>,
}

impl Memo<'_> {
    /// The verdict on `target`'s host; none when the URL names no host that parses.
    fn target(&self, target: &Target) -> Option<Arc<Verdict>> {
        // The host the URL really names, not the record's `host` field.
        let host_text = url_host(&target.url).unwrap_or(&target.host);
        let host = Host::parse(host_text).ok()?;
        let key = (target.served_by.clone(), host_text.to_string());
        Some(memoized(&self.hosts, key, || {
            Arc::new(self.check(&target.served_by, host_text, &host))
        }))
    }

    /// Checks `host` (written `host_text` in the URL) against what answers for `served_by`.
    fn check(&self, served_by: &ServedBy, host_text: &str, host: &Host) -> Verdict {
        let mut v = Verdict::default();
        for answerer in self.index.answerers(served_by) {
            if answerer
                .own
                .iter()
                .any(|h| h.eq_ignore_ascii_case(host_text))
            {
                continue;
            }
            let Some(names) = &answerer.names else {
                continue;
            };
            v.checks += 1;
            if !hostname::check(names, host).java {
                v.uncovered.push((answerer.who.clone(), host.to_string()));
            }
        }
        v
    }

    /// The verdict on every TLS URL `g` names in `plan`'s group.
    fn group(&self, plan: &NodePlan, g: &GroupUrls) -> Arc<GroupVerdict> {
        let key = (g.group, g.scheme.clone(), g.port);
        memoized(&self.groups, key, || Arc::new(self.check_group(plan, g)))
    }

    /// Checks every TLS URL `g` names in `plan`'s group.
    fn check_group(&self, plan: &NodePlan, g: &GroupUrls) -> GroupVerdict {
        let mut out = GroupVerdict::default();
        let Some(group) = plan.peer_groups.get(&g.group) else {
            return out;
        };
        for member in &group.members {
            let target = member.target(&g.scheme, g.port, "");
            let Some(v) = target.is_tls().then(|| self.target(&target)).flatten() else {
                continue;
            };
            out.checks += v.checks;
            if !v.uncovered.is_empty() {
                out.uncovered.push((target, v));
            }
        }
        out
    }
}

/// Where findings of one node.toml go.
struct At<'c> {
    owner: Owner,
    rel: String,
    c: &'c mut Collector,
}

impl At<'_> {
    /// Counts `v`'s checks and adds its findings.
    fn add(&mut self, setting: &str, target: &Target, v: &Verdict) {
        self.c.checked += v.checks;
        self.findings(setting, target, &v.uncovered);
    }

    /// A finding per certificate (`who`) not covering `target`'s host.
    fn findings(&mut self, setting: &str, target: &Target, uncovered: &[(String, String)]) {
        for (who, host) in uncovered {
            let message = format!(
                "{setting} names {} ({}), but the certificate of {who} does not cover {host}",
                target.url, target.served_by
            );
            let finding = Finding::new(
                Code::ConfigHostUncovered,
                &self.owner,
                Some(&self.rel),
                message,
            )
            .expected_actual(host.clone(), who.clone());
            self.c.push(finding);
        }
    }
}

/// config-host-uncovered for every node's node.toml, read back as the plan generate wrote
/// (with the set's peer groups). Nodes are checked in parallel against one index and one
/// memo; findings keep the set's order.
pub(super) fn verify_peer_hosts(
    set: &OpenedSet,
    tls_leaves: &BTreeMap<&str, Vec<u8>>,
    c: &mut Collector,
) {
    let memo = Memo {
        index: PeerIndex::new(set, tls_leaves),
        hosts: Mutex::default(),
        groups: Mutex::default(),
    };
    let per_node: Vec<Collector> = set
        .view
        .nodes
        .par_iter()
        .map(|node| {
            let mut c = Collector::default();
            node_peer_hosts(set, &memo, node, &mut c);
            c
        })
        .collect();
    for node in per_node {
        c.merge(node);
    }
}

/// config-host-uncovered for one node's node.toml: each setting's URLs in order (its own, then
/// its group's), then the deployment.toml peers.
fn node_peer_hosts(set: &OpenedSet, memo: &Memo, node: &NodeView, c: &mut Collector) {
    let rel = layout::node_toml(&node.name);
    let owner = Owner::Node(node.name.clone());
    let plan = match set.node_plan(&node.name) {
        Ok(plan) => plan,
        Err(crate::plan::node_toml::NodeTomlError::Read { .. }) => {
            c.check(false, || {
                Finding::new(Code::MissingFile, &owner, Some(&rel), "missing")
            });
            return;
        }
        Err(e) => {
            let message = format!("{e}; {}", e.hint());
            c.push(Finding::new(Code::CorruptFile, &owner, Some(&rel), message));
            return;
        }
    };
    let mut at = At { owner, rel, c };
    for s in &plan.settings {
        let label = s.label();
        for t in s.targets.iter().filter(|t| t.is_tls()) {
            if let Some(v) = memo.target(t) {
                at.add(&label, t, &v);
            }
        }
        if let Some(g) = &s.group {
            let v = memo.group(&plan, g);
            at.c.checked += v.checks;
            for (t, v) in &v.uncovered {
                at.findings(&label, t, &v.uncovered);
            }
        }
    }
    for p in &plan.peers {
        match p {
            PeerEntry::One(p) if p.target.is_tls() => {
                if let Some(v) = memo.target(&p.target) {
                    at.add(&p.setting, &p.target, &v);
                }
            }
            PeerEntry::One(_) => {}
            PeerEntry::Group(g) => group_peer(&plan, memo, g, &mut at),
        }
    }
}

/// The checks of a peer naming every member of a group (but one: then member by member).
fn group_peer(plan: &NodePlan, memo: &Memo, g: &GroupPeer, at: &mut At) {
    if g.except.is_none() {
        let urls = GroupUrls {
            group: g.group,
            scheme: g.scheme.clone(),
            port: g.port,
            form: GroupForm::UrlGroup,
        };
        let v = memo.group(plan, &urls);
        at.c.checked += v.checks;
        for (t, v) in &v.uncovered {
            at.findings(&g.setting, t, &v.uncovered);
        }
        return;
    }
    let Some(group) = plan.peer_groups.get(&g.group) else {
        return;
    };
    for t in g.targets(group).filter(Target::is_tls) {
        if let Some(v) = memo.target(&t) {
            at.add(&g.setting, &t, &v);
        }
    }
}

/// The host part of `scheme://host:port/…` (IPv6 in brackets).
fn url_host(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    if let Some(v6) = rest.strip_prefix('[') {
        return v6.split_once(']').map(|(h, _)| h);
    }
    rest.split([':', '/', '?']).next().filter(|h| !h.is_empty())
}
