//! The reconcile side of a PKI engine (docs/openbao.md): the issuing CA a run works with, the
//! engine's [`Signer`] for the issue phase, and what inventory.json records about the engine.
//! `generate` and `rotate` fetch the CA chain from the engine and have it sign; `plan` asks
//! nothing of it and works from the chain recorded in DIR.

use crate::keystore::pem;
use crate::output::inventory::{EngineRecord, EngineSigned, Inventory};
use crate::output::layout;
use crate::pki::engine::{self, Engine};
use crate::pki::{self, Ca, Key, PkiError};
use crate::topology::Topology;

use super::dir::Dir;
use super::error::GenerateError;
use super::issue::Signer;
use super::model::{Issued, Item};
use super::types::Mode;

/// The engine of a writing run with a backend (`None` for plan, an import and the local CA):
/// its token and client, no request yet.
pub(super) fn connect(
    topology: &Topology,
    mode: Mode,
    importing: bool,
) -> Result<Option<Engine>, GenerateError> {
    match (topology.ca.engine(), mode) {
        (Some(settings), Mode::Generate) if !importing => {
            Ok(Some(Engine::connect(settings).map_err(PkiError::from)?))
        }
        _ => Ok(None),
    }
}

/// The issuing CA with a backend: the engine's issuer chain, or for `plan` the chain recorded in
/// DIR (ca/ca.crt, then the bundle's certificates above it); None on a first plan.
pub(super) fn issuing_ca(engine: Option<&Engine>, dir: Dir) -> Result<Option<Ca>, GenerateError> {
    if let Some(engine) = engine {
        let chain = engine.ca_chain().map_err(PkiError::from)?;
        let Some((issuing, parents)) = chain.split_first() else {
            return Ok(None);
        };
        return Ok(Some(Ca::without_key(
            issuing.clone(),
            parents.to_vec(),
            engine.name(),
        )?));
    }
    let recorded = |rel: &str| dir.read(rel).and_then(|b| pem::certs_from_pem(&b).ok());
    let Some(current) = recorded(layout::CA_CERT).and_then(|c| c.into_iter().next()) else {
        return Ok(None);
    };
    let parents: Vec<Vec<u8>> = recorded(layout::CA_BUNDLE)
        .unwrap_or_default()
        .into_iter()
        .skip_while(|c| *c != current)
        .skip(1)
        .collect();
    Ok(Some(Ca::without_key(current, parents, layout::CA_CERT)?))
}

/// The engine signs every node and load-balancer certificate; the primary stays self-signed.
pub(super) struct EngineCa<'a> {
    pub engine: &'a Engine,
    pub ca: &'a Ca,
}

impl Signer for EngineCa<'_> {
    fn sign(&self, item: &Item, key: &Key) -> Result<Vec<Vec<u8>>, PkiError> {
        if item.node.is_none() && item.lb.is_none() {
            return Ok(vec![pki::self_signed(&item.spec, key)?]);
        }
        Ok(self.engine.sign(&item.spec, key, self.ca)?)
    }
}

/// A set a PKI engine signed, with a topology that no longer names one: refused (the local CA
/// would need a key the set never had).
pub(super) fn refuse_leaving_engine(
    topology: &Topology,
    old: Option<&Inventory>,
) -> Result<(), GenerateError> {
    match (old.and_then(|o| o.engine.as_ref()), topology.ca.engine()) {
        (Some(e), None) => Err(GenerateError::EngineLeft {
            address: e.address.clone(),
            mount: e.mount.clone(),
        }),
        _ => Ok(()),
    }
}

/// `rotate --ca` with a backend: refused, with how to roll over in the engine.
pub(super) fn refuse_ca_rollover(topology: &Topology) -> Result<(), GenerateError> {
    let Some(e) = topology.ca.engine() else {
        return Ok(());
    };
    Err(GenerateError::EngineCaRollover {
        backend: e.backend.as_str(),
        mount: e.mount.clone(),
    })
}

/// What inventory.json records about the engine: where it is, and the serial of every node
/// and load-balancer certificate of the set it signed.
pub(super) fn record(
    topology: &Topology,
    issued: &[(Item, Issued)],
    ca: Option<&Ca>,
) -> Option<EngineRecord> {
    let (e, ca) = (topology.ca.engine()?, ca?);
    let mut signed: Vec<EngineSigned> = issued
        .iter()
        .filter(|(item, _)| item.node.is_some() || item.lb.is_some())
        .filter_map(|(item, issued)| {
            let chain = issued.cert.as_ref()?;
            pki::info::is_issued_by(chain.ders.first()?, ca.cert_der()).then(|| EngineSigned {
                label: item.label.clone(),
                serial: engine::engine_serial(&chain.info.serial),
            })
        })
        .collect();
    signed.sort_by(|a, b| a.label.cmp(&b.label));
    Some(EngineRecord {
        backend: e.backend.as_str().into(),
        address: e.address.to_string(),
        mount: e.mount.clone(),
        role: e.role.clone(),
        issuer: e.issuer.clone(),
        ca_subject: ca.info().subject.clone(),
        signed,
    })
}
