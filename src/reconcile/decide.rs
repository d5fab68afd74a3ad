//! The decide phase: per key-bearing artifact, keep, renew, reissue, create or needs-rotate,
//! from what the topology asks for and what DIR holds. Pure: no key is made, nothing is signed.

use std::collections::{BTreeMap, BTreeSet};

use time::{Duration, OffsetDateTime};

use crate::output::layout;
use crate::pki::{Ca, CertInfo, CertSpec};
use crate::topology::KeyType;

use super::error::GenerateError;
use super::model::{ArtifactSpec, Cas, Decision, Existing, Item, Owner};
use super::types::Rotation;

/// What `rotate` forces on an item, whatever the topology says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Force {
    /// A new key and certificate (the old files go to history/).
    NewKey(String),
    /// A new certificate for the same key (new validity, or a new issuing CA).
    Recertify(String),
}

/// What every decision needs to know.
pub(super) struct DecideCtx<'a> {
    /// The issuing CA (after any rollover step), when it exists yet.
    pub ca: Option<&'a Ca>,
    pub now: OffsetDateTime,
    pub renew_window: Duration,
    /// What `rotate` asks for (the default for generate).
    pub rotation: &'a Rotation,
    /// Set by `rotate --ca finish`: every leaf is re-certified under the new CA, with this reason.
    pub recertify_all: Option<String>,
}

impl DecideCtx<'_> {
    /// What rotation forces on `owner`'s artifact.
    fn force(&self, owner: &Owner) -> Option<Force> {
        let (rekey, recertify) = match owner {
            Owner::Primary => (false, self.rotation.primary_cert),
            Owner::Node(n) => (self.rotation.rekeys_node(n), false),
            Owner::Lb(h) => (self.rotation.rekeys_lb(h), false),
        };
        if rekey {
            Some(Force::NewKey("rotate: new key and certificate".into()))
        } else if let Some(why) = &self.recertify_all {
            Some(Force::Recertify(why.clone()))
        } else if recertify {
            Some(Force::Recertify(
                "rotate --primary-cert: new validity, same key".into(),
            ))
        } else {
            None
        }
    }
}

/// Decides every artifact: `existing[i]` is what DIR holds for `specs[i]`.
pub(super) fn decide_all(
    specs: Vec<ArtifactSpec>,
    existing: Vec<Option<Existing>>,
    cx: &DecideCtx,
) -> Vec<Item> {
    specs
        .into_iter()
        .zip(existing)
        .map(|(spec, existing)| decide(spec, existing, cx))
        .collect()
}

/// Decides one artifact.
pub(super) fn decide(spec: ArtifactSpec, existing: Option<Existing>, cx: &DecideCtx) -> Item {
    let (decision, reason, existing) = match (cx.force(&spec.owner), existing) {
        (Some(Force::NewKey(why)), _) => (Decision::Create, why, None),
        (_, Some(e)) if primary_to_self_sign(&spec, &e, cx.ca) => {
            let why = format!(
                "self-signed now (same key): the CA signs elsewhere; it was issued by `{}`",
                e.info.issuer
            );
            (Decision::Reissue, why, Some(e))
        }
        (Some(Force::Recertify(why)), Some(e)) => (Decision::Reissue, why, Some(e)),
        (_, existing) => {
            let (decision, reason) = decide_by_topology(&spec, existing.as_ref(), cx);
            (decision, reason, existing)
        }
    };
    let (node, lb) = match &spec.owner {
        Owner::Primary => (None, None),
        Owner::Node(n) => (Some(n.clone()), None),
        Owner::Lb(h) => (None, Some(h.clone())),
    };
    Item {
        label: spec.owner.label().to_string(),
        node,
        lb,
        spec: spec.cert,
        key_type: spec.key_type,
        decision,
        reason,
        existing,
    }
}

/// The decision the topology alone makes for what DIR holds.
fn decide_by_topology(
    spec: &ArtifactSpec,
    existing: Option<&Existing>,
    cx: &DecideCtx,
) -> (Decision, String) {
    let Some(e) = existing else {
        return (Decision::Create, "new".to_string());
    };
    let key_type: KeyType = spec.key_type;
    if e.info.key_type != Some(key_type) {
        let reason = format!(
            "its key is {}, the topology asks for {key_type}",
            e.info.key
        );
        return (Decision::NeedsRotate, reason);
    }
    if !issued_by_set_ca(e, cx.ca) {
        let reason = format!("it was issued by `{}`, not by the set's CA", e.info.issuer);
        return (Decision::NeedsRotate, reason);
    }
    if let Some(diff) = names_diff(&spec.cert, &e.info) {
        (Decision::Reissue, format!("names changed: {diff}"))
    } else if e.info.not_after - cx.now < cx.renew_window {
        (
            Decision::Renew,
            format!(
                "expires {} (within renew_before_days)",
                date(e.info.not_after)
            ),
        )
    } else {
        (
            Decision::Keep,
            format!("matches the topology; expires {}", date(e.info.not_after)),
        )
    }
}

/// A CA that signs elsewhere (a PKI engine, the corporate flow) leaves the primary
/// self-signed: a primary the set's former CA signed is re-certified, same key.
fn primary_to_self_sign(spec: &ArtifactSpec, e: &Existing, ca: Option<&Ca>) -> bool {
    spec.owner == Owner::Primary
        && ca.is_some_and(|ca| ca.key().is_none())
        && !e.info.self_issued
        && e.info.key_type == Some(spec.key_type)
}

/// True when the set's CA issued `e` (or, with a CA that signs elsewhere, `e` is the primary's
/// self-signed certificate).
fn issued_by_set_ca(e: &Existing, ca: Option<&Ca>) -> bool {
    let Some(ca) = ca else {
        return false;
    };
    let self_signed = || {
        e.info.self_issued
            && e.chain
                .first()
                .is_some_and(|c| crate::pki::info::is_issued_by(c, c))
    };
    (ca.key().is_none() && self_signed())
        || e.chain
            .first()
            .is_some_and(|leaf| crate::pki::info::is_issued_by(leaf, ca.cert_der()))
}

pub(super) fn date(t: OffsetDateTime) -> String {
    let d = t.date();
    format!("{:04}-{:02}-{:02}", d.year(), d.month() as u8, d.day())
}

/// What differs between the names a spec asks for and those a certificate has.
pub(super) fn names_diff(spec: &CertSpec, info: &CertInfo) -> Option<String> {
    let mut diffs = Vec::new();
    let want: BTreeSet<String> = spec
        .dns_names
        .iter()
        .map(|d| format!("DNS:{d}"))
        .chain(spec.ip_addresses.iter().map(|ip| format!("IP:{ip}")))
        .collect();
    let have: BTreeSet<String> = info
        .dns_names
        .iter()
        .map(|d| format!("DNS:{}", d.to_ascii_lowercase()))
        .chain(info.ip_addresses.iter().map(|ip| format!("IP:{ip}")))
        .collect();
    diffs.extend(want.difference(&have).map(|s| format!("+{s}")));
    diffs.extend(have.difference(&want).map(|s| format!("-{s}")));
    let s = &spec.subject;
    if info.common_names.first() != Some(&s.common_name)
        || info.organization != s.organization
        || info.organizational_unit != s.organizational_unit
        || info.country != s.country
    {
        diffs.push(format!("subject is now {}", s.common_name));
    }
    (!diffs.is_empty()).then(|| diffs.join(", "))
}

/// `generate` stops before writing anything when an item needs `rotate`; the error names the
/// first such artifact and how many more there are (`plan` lists them all).
pub(super) fn needs_rotate_error(items: &[Item]) -> Result<(), GenerateError> {
    let blocked: Vec<&Item> = items
        .iter()
        .filter(|i| i.decision == Decision::NeedsRotate)
        .collect();
    let Some(first) = blocked.first() else {
        return Ok(());
    };
    let path = first
        .existing
        .as_ref()
        .map_or_else(|| first.label.clone(), |e| e.path.clone());
    let mut reason = first.reason.clone();
    if blocked.len() > 1 {
        reason += &format!(
            "; {} more artifacts need rotate (`apim-pki plan` lists them all)",
            blocked.len() - 1
        );
    }
    Err(GenerateError::NeedsRotate { path, reason })
}

/// The CA certificates of the set, as (path, SubjectPublicKeyInfo): no leaf may hold their key.
pub(super) fn ca_keys(cas: &Cas, generated: bool) -> Vec<(&'static str, Vec<u8>)> {
    let current = if generated {
        layout::CA_KEY
    } else {
        "the key of [pki.ca]"
    };
    [
        (
            current,
            cas.current
                .as_ref()
                .map(|c| c.info().public_key_der.clone()),
        ),
        (
            layout::CA_NEXT_KEY,
            cas.next.as_ref().map(|c| c.info().public_key_der.clone()),
        ),
        (
            layout::CA_PREVIOUS_CERT,
            cas.previous
                .as_deref()
                .and_then(|der| CertInfo::from_der(der).ok())
                .map(|i| i.public_key_der),
        ),
    ]
    .into_iter()
    .filter_map(|(path, spki)| spki.map(|k| (path, k)))
    .collect()
}

/// Refuses a set where two artifacts hold one private key (only the primary is shared by
/// design, and it is one item): a keystore copied over another's name would otherwise be
/// re-certified for its new owner, two nodes would share a key, and the overwritten key would
/// be gone. `cas` are the CA certificates of the set (path, SubjectPublicKeyInfo). The hint names
/// the `rotate` that gives the copy a key of its own.
pub(super) fn refuse_shared_keys(
    items: &[Item],
    cas: &[(&str, Vec<u8>)],
) -> Result<(), GenerateError> {
    let mut groups: BTreeMap<Vec<u8>, Vec<Holder>> = BTreeMap::new();
    for (path, spki) in cas {
        groups
            .entry(spki.clone())
            .or_default()
            .push(Holder::Ca(path));
    }
    for item in items {
        if let Some(e) = &item.existing {
            groups
                .entry(e.key.public_key_der())
                .or_default()
                .push(Holder::Item(item));
        }
    }
    let Some(group) = groups.into_values().find(|g| g.len() > 1) else {
        return Ok(());
    };
    let copies = copies_in(&group);
    Err(GenerateError::SharedKey {
        holders: group.iter().map(Holder::describe).collect(),
        rotate: copies.iter().filter_map(|i| rotate_option(i)).collect(),
        copies: copies.iter().map(|i| i.label.clone()).collect(),
    })
}

/// Who holds a key: a CA (by its certificate's path) or a key-bearing item.
enum Holder<'a> {
    Ca(&'a str),
    Item(&'a Item),
}

impl Holder<'_> {
    fn describe(&self) -> String {
        match self {
            Holder::Ca(path) => format!("{path} (the CA)"),
            Holder::Item(i) => {
                let path = i.existing.as_ref().map_or("", |e| e.path.as_str());
                match (&i.node, &i.lb) {
                    (Some(n), _) => format!("{path} (node {n})"),
                    (_, Some(h)) => format!("{path} (load balancer {h})"),
                    _ => format!("{path} (the primary)"),
                }
            }
        }
    }
}

/// The holders of a shared key that are copies: every node or load balancer when the key is the
/// CA's or the primary's; else those whose certificate names another owner (the file was copied
/// over theirs), or all but the first when each certificate names its holder (a set re-certified
/// by an earlier version).
fn copies_in<'a>(group: &[Holder<'a>]) -> Vec<&'a Item> {
    let leaves: Vec<&Item> = group
        .iter()
        .filter_map(|h| match h {
            Holder::Item(i) if i.node.is_some() || i.lb.is_some() => Some(*i),
            _ => None,
        })
        .collect();
    if leaves.len() < group.len() {
        return leaves;
    }
    let renamed: Vec<&Item> = leaves
        .iter()
        .copied()
        .filter(|i| {
            i.existing
                .as_ref()
                .is_some_and(|e| names_diff(&i.spec, &e.info).is_some())
        })
        .collect();
    if renamed.is_empty() {
        leaves.into_iter().skip(1).collect()
    } else {
        renamed
    }
}

/// The `rotate` option that re-keys `item`.
fn rotate_option(item: &Item) -> Option<String> {
    match (&item.node, &item.lb) {
        (Some(n), _) => Some(format!("--node {n}")),
        (_, Some(h)) => Some(format!("--load-balancer {h}")),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::Key;
    use crate::plan::certs;

    use super::super::testutil::topology;
    use crate::topology::Topology;

    fn node_spec(t: &Topology) -> ArtifactSpec {
        ArtifactSpec {
            owner: Owner::Node("a".into()),
            cert: certs::node_cert(t, &t.nodes[0]),
            key_type: KeyType::EcdsaP256,
        }
    }

    fn cx<'a>(ca: Option<&'a Ca>, rotation: &'a Rotation) -> DecideCtx<'a> {
        DecideCtx {
            ca,
            now: OffsetDateTime::now_utc(),
            renew_window: Duration::days(30),
            rotation,
            recertify_all: None,
        }
    }

    fn ca(t: &Topology) -> Ca {
        Ca::create(
            &certs::ca_cert(t, 1),
            Key::generate(KeyType::EcdsaP256).expect("key"),
        )
        .expect("ca")
    }

    /// What DIR would hold for `spec` if `ca` had issued it.
    fn existing(ca: &Ca, spec: &CertSpec) -> Existing {
        let key = Key::generate(KeyType::EcdsaP256).expect("key");
        let chain = vec![ca.issue(spec, &key).expect("issue")];
        let info = CertInfo::from_der(&chain[0]).expect("info");
        Existing {
            key,
            chain,
            info,
            path: "nodes/a/a-tls.jks".into(),
            reusable: None,
        }
    }

    #[test]
    fn a_missing_artifact_is_created_without_a_ca_or_a_key() {
        let t = topology();
        let rotation = Rotation::default();
        let items = decide_all(vec![node_spec(&t)], vec![None], &cx(None, &rotation));
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].decision, Decision::Create);
        assert_eq!(items[0].reason, "new");
        assert_eq!(items[0].node.as_deref(), Some("a"));
        assert!(needs_rotate_error(&items).is_ok());
    }

    #[test]
    fn a_matching_certificate_is_kept_and_a_changed_name_reissued() {
        let t = topology();
        let ca = ca(&t);
        let rotation = Rotation::default();
        let spec = node_spec(&t);
        let kept = decide(
            spec.clone(),
            Some(existing(&ca, &spec.cert)),
            &cx(Some(&ca), &rotation),
        );
        assert_eq!(kept.decision, Decision::Keep, "{}", kept.reason);
        let mut renamed = spec.clone();
        renamed.cert.dns_names.push("new.example.internal".into());
        let item = decide(
            renamed,
            Some(existing(&ca, &spec.cert)),
            &cx(Some(&ca), &rotation),
        );
        assert_eq!(item.decision, Decision::Reissue);
        assert!(
            item.reason.contains("+DNS:new.example.internal"),
            "{}",
            item.reason
        );
    }

    #[test]
    fn expiring_is_renewed_and_another_ca_or_key_type_needs_rotate() {
        let t = topology();
        let (ca, other) = (ca(&t), ca(&t));
        let rotation = Rotation::default();
        let spec = node_spec(&t);
        let mut late = cx(Some(&ca), &rotation);
        late.now = existing(&ca, &spec.cert).info.not_after - Duration::days(1);
        let renewed = decide(spec.clone(), Some(existing(&ca, &spec.cert)), &late);
        assert_eq!(renewed.decision, Decision::Renew);
        let foreign = decide(
            spec.clone(),
            Some(existing(&other, &spec.cert)),
            &cx(Some(&ca), &rotation),
        );
        assert_eq!(foreign.decision, Decision::NeedsRotate);
        let mut rsa = spec.clone();
        rsa.key_type = KeyType::Rsa2048;
        let retyped = decide(
            rsa,
            Some(existing(&ca, &spec.cert)),
            &cx(Some(&ca), &rotation),
        );
        assert_eq!(retyped.decision, Decision::NeedsRotate);
        let err = needs_rotate_error(&[foreign, retyped]).expect_err("refused");
        assert!(
            err.to_string().contains("1 more artifacts need rotate"),
            "{err}"
        );
    }

    #[test]
    fn rotation_forces_a_new_key_or_a_new_certificate() {
        let t = topology();
        let ca = ca(&t);
        let spec = node_spec(&t);
        let rekey = Rotation::new(vec!["a".into()], Vec::new(), false, None);
        let item = decide(
            spec.clone(),
            Some(existing(&ca, &spec.cert)),
            &cx(Some(&ca), &rekey),
        );
        assert_eq!(item.decision, Decision::Create);
        assert!(item.existing.is_none(), "a new key leaves the old one out");
        let rotation = Rotation::default();
        let mut finish = cx(Some(&ca), &rotation);
        finish.recertify_all = Some("CA rollover".into());
        let item = decide(spec.clone(), Some(existing(&ca, &spec.cert)), &finish);
        assert_eq!(
            (item.decision, item.reason.as_str()),
            (Decision::Reissue, "CA rollover")
        );
    }
}
