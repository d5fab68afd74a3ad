//! The issue phase: new keys for the items that need one, and a certificate from a signer for
//! every item decided renew, reissue or create. A plan skips it ([`unissued`]): deciding needs
//! no key.

use rayon::prelude::*;

use crate::pki::{self, Ca, CertInfo, Key, PkiError};
use crate::topology::KeyType;

use super::error::GenerateError;
use super::model::{Chain, Decision, Issued, Item};

/// What signs the set's leaf certificates. The local CA today; a PKI engine (OpenBao / Vault)
/// signing CSRs plugs in here.
pub(super) trait Signer: Sync {
    /// The chain (leaf first, then the CA certificates above it) certifying `key` for `item`.
    fn sign(&self, item: &Item, key: &Key) -> Result<Vec<Vec<u8>>, PkiError>;
}

/// The set's own CA (generated, or the one `[pki.ca]` brings), signing locally.
pub(super) struct LocalCa<'a>(pub &'a Ca);

impl Signer for LocalCa<'_> {
    fn sign(&self, item: &Item, key: &Key) -> Result<Vec<Vec<u8>>, PkiError> {
        let ca = self.0;
        // With a CA that signs elsewhere (corporate CSR flow), the primary is self-signed: it is
        // trusted through the truststores' wso2carbon entries, not through a chain.
        if ca.key().is_none() && item.node.is_none() && item.lb.is_none() {
            return Ok(vec![pki::self_signed(&item.spec, key)?]);
        }
        Ok(std::iter::once(ca.issue(&item.spec, key)?)
            .chain(std::iter::once(ca.cert_der().to_vec()))
            .chain(ca.parents().iter().cloned())
            .collect())
    }
}

/// New keys for the items decided `create`, in their order, plus one of `extra` (the CA's, when
/// the set has none yet) last: all generated in parallel.
pub(super) fn new_keys(
    items: &[Item],
    extra: Option<KeyType>,
) -> Result<(Vec<Key>, Option<Key>), GenerateError> {
    let mut wanted: Vec<KeyType> = items
        .iter()
        .filter(|i| i.decision == Decision::Create)
        .map(|i| i.key_type)
        .collect();
    wanted.extend(extra);
    let mut keys = pki::generate_keys(&wanted)?;
    let extra_key = match extra {
        Some(_) => keys.pop(),
        None => None,
    };
    Ok((keys, extra_key))
}

/// Issues every item: keeps what stays, re-certifies the existing key on renew and reissue,
/// certifies `fresh` keys (one per `create`, in order) on create. Signs in parallel.
pub(super) fn issue_all(
    items: Vec<Item>,
    fresh: Vec<Key>,
    signer: &dyn Signer,
) -> Result<Vec<(Item, Issued)>, GenerateError> {
    let mut fresh = fresh.into_iter();
    let work: Vec<(Item, Option<Key>)> = items
        .into_iter()
        .map(|item| {
            let key = (item.decision == Decision::Create)
                .then(|| fresh.next())
                .flatten();
            (item, key)
        })
        .collect();
    work.into_par_iter()
        .map(|(mut item, key)| {
            let issued = issue(&mut item, key, signer)?;
            Ok((item, issued))
        })
        .collect()
}

/// Issues one item (see [`issue_all`]).
pub(super) fn issue(
    item: &mut Item,
    fresh_key: Option<Key>,
    signer: &dyn Signer,
) -> Result<Issued, GenerateError> {
    let chain = |ders: Vec<Vec<u8>>, label: &str| -> Result<Chain, PkiError> {
        let info = CertInfo::from_der(&ders[0]).map_err(|r| PkiError::BadCertificate {
            what: label.to_string(),
            reason: r.to_string(),
        })?;
        Ok(Chain { ders, info })
    };
    let (key, cert) = match (item.decision.clone(), item.existing.take(), fresh_key) {
        (Decision::Keep | Decision::NeedsRotate, Some(e), _) => {
            let kept_bytes = e.reusable.map(|b| (e.path, b));
            let cert = Chain {
                ders: e.chain,
                info: e.info,
            };
            return Ok(Issued {
                key: Some(e.key),
                cert: Some(cert),
                kept_bytes,
            });
        }
        (Decision::Renew | Decision::Reissue, Some(e), _) => {
            let ders = signer.sign(item, &e.key)?;
            (e.key, chain(ders, &item.label)?)
        }
        (_, _, Some(key)) => {
            let ders = signer.sign(item, &key)?;
            (key, chain(ders, &item.label)?)
        }
        _ => {
            let what = format!("no key to issue {}'s certificate with", item.label);
            return Err(crate::error::Bug::new(what).into());
        }
    };
    Ok(Issued {
        key: Some(key),
        cert: Some(cert),
        kept_bytes: None,
    })
}

/// What a plan knows without issuing: kept items keep their key and chain, renewed and
/// reissued ones their key (their certificate will be new), created ones nothing.
pub(super) fn unissued(items: Vec<Item>) -> Vec<(Item, Issued)> {
    items
        .into_iter()
        .map(|mut item| {
            let issued = match item.existing.take() {
                Some(e) if item.decision.keeps_cert() => Issued {
                    kept_bytes: e.reusable.map(|b| (e.path, b)),
                    key: Some(e.key),
                    cert: Some(Chain {
                        ders: e.chain,
                        info: e.info,
                    }),
                },
                Some(e) if item.decision != Decision::Create => Issued {
                    key: Some(e.key),
                    cert: None,
                    kept_bytes: None,
                },
                _ => Issued {
                    key: None,
                    cert: None,
                    kept_bytes: None,
                },
            };
            (item, issued)
        })
        .collect()
}
