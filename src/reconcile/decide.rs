//! Per key-bearing item: keep, renew, reissue or create, and issuing what must be issued.

use std::collections::{BTreeMap, BTreeSet};

use time::{Duration, OffsetDateTime};

use crate::pki::{Ca, CertInfo, CertSpec, Key, PkiError};
use crate::topology::KeyType;

use super::*;

#[allow(clippy::too_many_arguments)]
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
}

/// Who an item belongs to.
pub(super) struct Owner<'a> {
    pub label: &'a str,
    pub node: Option<&'a str>,
    pub lb: Option<&'a str>,
}

pub(super) fn decide(
    owner: Owner,
    spec: CertSpec,
    key_type: KeyType,
    existing: Option<Existing>,
    cx: &DecideCtx,
    force: Option<Force>,
) -> Result<Item, GenerateError> {
    let Owner { label, node, lb } = owner;
    let (ca, now, renew_window) = (cx.ca, cx.now, cx.renew_window);
    let item = |decision, reason: String, existing| Item {
        label: label.into(),
        node: node.map(str::to_string),
        lb: lb.map(str::to_string),
        spec: spec.clone(),
        key_type,
        decision,
        reason,
        existing,
    };
    match (force, existing) {
        (Some(Force::NewKey(why)), _) => Ok(item(Decision::Create, why, None)),
        (Some(Force::Recertify(why)), Some(e)) => Ok(item(Decision::Reissue, why, Some(e))),
        (_, existing) => decide_by_topology(item, &spec, key_type, existing, ca, now, renew_window),
    }
}

#[allow(clippy::too_many_arguments)]
fn decide_by_topology(
    item: impl Fn(Decision, String, Option<Existing>) -> Item,
    spec: &CertSpec,
    key_type: KeyType,
    existing: Option<Existing>,
    ca: Option<&Ca>,
    now: OffsetDateTime,
    renew_window: Duration,
) -> Result<Item, GenerateError> {
    let (decision, reason) = match &existing {
        None => (Decision::Create, "new".to_string()),
        Some(e) => {
            if e.info.key_type != Some(key_type) {
                let reason = format!(
                    "its key is {}, the topology asks for {key_type}",
                    e.info.key
                );
                return Ok(item(Decision::NeedsRotate, reason, existing));
            }
            match ca {
                // With a CA that signs elsewhere, the primary is self-signed.
                Some(ca)
                    if ca.key().is_none()
                        && e.info.self_issued
                        && crate::pki::info::is_issued_by(&e.chain[0], &e.chain[0]) => {}
                Some(ca)
                    if e.chain.first().is_some_and(|leaf| {
                        crate::pki::info::is_issued_by(leaf, ca.cert_der())
                    }) => {}
                _ => {
                    let reason =
                        format!("it was issued by `{}`, not by the set's CA", e.info.issuer);
                    return Ok(item(Decision::NeedsRotate, reason, existing));
                }
            }
            if let Some(diff) = names_diff(spec, &e.info) {
                (Decision::Reissue, format!("names changed: {diff}"))
            } else if e.info.not_after - now < renew_window {
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
    };
    Ok(item(decision, reason, existing))
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

pub(super) fn issue(
    item: &mut Item,
    fresh_key: Option<Key>,
    ca: &Ca,
) -> Result<Issued, GenerateError> {
    let chain_tail = std::iter::once(ca.cert_der().to_vec()).chain(ca.parents().iter().cloned());
    // With a CA that signs elsewhere (corporate CSR flow), the primary is self-signed: it is
    // trusted through the truststores' wso2carbon entries, not through a chain.
    let self_signed_primary = ca.key().is_none() && item.node.is_none() && item.lb.is_none();
    let sign = |spec: &CertSpec, key: &Key| -> Result<Vec<Vec<u8>>, PkiError> {
        if self_signed_primary {
            return Ok(vec![crate::pki::self_signed(spec, key)?]);
        }
        Ok(std::iter::once(ca.issue(spec, key)?)
            .chain(chain_tail.clone())
            .collect())
    };
    match (item.decision.clone(), item.existing.take(), fresh_key) {
        (Decision::Keep | Decision::NeedsRotate, Some(e), _) => Ok(Issued {
            kept_bytes: e.reusable.map(|b| (e.path, b)),
            key: e.key,
            chain: e.chain,
            info: e.info,
        }),
        (Decision::Renew | Decision::Reissue, Some(e), _) => {
            let chain = sign(&item.spec, &e.key)?;
            let info = CertInfo::from_der(&chain[0]).map_err(|r| PkiError::BadCertificate {
                what: item.label.clone(),
                reason: r,
            })?;
            Ok(Issued {
                key: e.key,
                chain,
                info,
                kept_bytes: None,
            })
        }
        (_, _, Some(key)) => {
            let chain = sign(&item.spec, &key)?;
            let info = CertInfo::from_der(&chain[0]).map_err(|r| PkiError::BadCertificate {
                what: item.label.clone(),
                reason: r,
            })?;
            Ok(Issued {
                key,
                chain,
                info,
                kept_bytes: None,
            })
        }
        _ => Err(GenerateError::Pki(PkiError::Issue {
            subject: item.label.clone(),
            reason: "internal: no key".into(),
        })),
    }
}

pub(super) fn decision_action(d: &Decision) -> ActionKind {
    match d {
        Decision::Keep => ActionKind::Keep,
        Decision::Renew => ActionKind::Renew,
        Decision::Reissue => ActionKind::Reissue,
        Decision::Create => ActionKind::Create,
        Decision::NeedsRotate => ActionKind::NeedsRotate,
    }
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
    let paths: Vec<String> = group.iter().map(Holder::describe).collect();
    let rotate: Vec<String> = copies.iter().filter_map(|i| rotate_option(i)).collect();
    let hint = if rotate.is_empty() {
        "restore the primary keystore or the CA from a backup: it holds another artifact's key"
            .to_string()
    } else {
        let who: Vec<&str> = copies.iter().map(|i| i.label.as_str()).collect();
        format!(
            "run `apim-pki rotate TOPOLOGY --out DIR {}` to give {} a new key of its own; generate never replaces a key",
            rotate.join(" "),
            who.join(" and ")
        )
    };
    Err(GenerateError::Refused {
        message: format!(
            "{} hold the same private key; only the primary key is shared between nodes",
            paths.join(" and ")
        ),
        hint,
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
