//! The CA part of the load phase: the issuing CA (loaded, imported, or to be created), where a
//! rollover stands, and the rollover step `rotate --ca` asks for.

use crate::output::inventory::Inventory;
use crate::output::layout;
use crate::pki::{Ca, Key};
use crate::resolve;
use crate::topology::Topology;

use super::dir::Dir;
use super::error::{input, refused, GenerateError};
use super::model::Cas;
use super::state::{load_ca, load_rollover};
use super::types::{CaStage, CaStep, Imported};

/// The set's CAs after the rollover step, and what the step asks of the leaves.
pub(super) struct CaPlan {
    /// `cas.current` is None when the set has no CA yet: it is created in the issue phase.
    pub cas: Cas,
    /// Set by `rotate --ca finish`: the reason every leaf is re-certified under the new CA.
    pub recertify_all: Option<String>,
}

/// Loads the CAs of DIR (or of the imported chain) and applies `step`.
pub(super) fn load_cas(
    topology: &Topology,
    dir: Dir,
    old: Option<&Inventory>,
    imported: Option<&Imported>,
    step: Option<CaStep>,
) -> Result<CaPlan, GenerateError> {
    let current = match imported {
        Some(imp) => {
            let (issuing, parents) = imp.ca_chain.split_first().ok_or_else(|| {
                input(dir, "no CA certificate among the signed certificates", None)
            })?;
            Some(Ca::without_key(
                issuing.clone(),
                parents.to_vec(),
                "the issuing CA",
            )?)
        }
        None => load_ca(topology, dir, old)?,
    };
    let stage = match old {
        Some(o) => CaStage::parse(&o.ca_stage).ok_or_else(|| {
            input(
                dir.join(layout::INVENTORY),
                format!("unknown ca_stage `{}`", o.ca_stage),
                None,
            )
        })?,
        None => CaStage::Stable,
    };
    let (next, previous) = load_rollover(dir.root, stage)?;
    let cas = Cas {
        created: current.is_none(),
        current,
        generation: old.map_or(1, |o| o.ca_generation),
        stage,
        next,
        previous,
    };
    match step {
        None => Ok(CaPlan {
            cas,
            recertify_all: None,
        }),
        Some(CaStep::Begin) => begin(topology, cas),
        Some(CaStep::Finish) => finish(topology, cas),
        Some(CaStep::Retire) => retire(cas),
    }
}

/// `rotate --ca begin`: creates the next CA; every truststore trusts it from now on.
fn begin(topology: &Topology, mut cas: Cas) -> Result<CaPlan, GenerateError> {
    if cas.stage != CaStage::Stable || cas.current.is_none() {
        let (message, hint) = match cas.stage {
            CaStage::Begun => (
                "rotate --ca begin: a CA rollover has already begun (ca_stage = rollover-begun in inventory.json)",
                "ship every node's truststore, then run `rotate --ca finish`, then `rotate --ca retire`",
            ),
            CaStage::Finished => (
                "rotate --ca begin: the last CA rollover is finished but the old CA is still trusted (ca_stage = rollover-finished in inventory.json)",
                "run `rotate --ca retire` first; then a new rollover can begin",
            ),
            CaStage::Stable => (
                "rotate --ca begin: the output directory has no CA yet",
                "run `apim-pki generate TOPOLOGY --out DIR` first",
            ),
        };
        return Err(refused(message, hint));
    }
    cas.next = Some(Ca::create(
        &resolve::ca_cert(topology, cas.generation + 1),
        Key::generate(topology.pki.key)?,
    )?);
    cas.stage = CaStage::Begun;
    Ok(CaPlan {
        cas,
        recertify_all: None,
    })
}

/// `rotate --ca finish`: the next CA becomes the issuing one; the previous one stays trusted.
fn finish(topology: &Topology, mut cas: Cas) -> Result<CaPlan, GenerateError> {
    let (Some(new_ca), Some(old_ca)) = (cas.next.take(), cas.current.take()) else {
        return Err(refused(
            "rotate --ca finish: no rollover has begun",
            "run `rotate --ca begin` first, and ship the truststores to every node",
        ));
    };
    cas.previous = Some(old_ca.cert_der().to_vec());
    cas.current = Some(new_ca);
    cas.generation += 1;
    cas.stage = CaStage::Finished;
    let recertify_all = Some(format!(
        "CA rollover: re-certified under {}",
        resolve::ca_cert(topology, cas.generation)
            .subject
            .common_name
    ));
    Ok(CaPlan { cas, recertify_all })
}

/// `rotate --ca retire`: the previous CA is no longer trusted.
fn retire(mut cas: Cas) -> Result<CaPlan, GenerateError> {
    if cas.stage != CaStage::Finished {
        let (message, hint) = if cas.stage == CaStage::Begun {
            (
                "rotate --ca retire: the CA rollover has begun but is not finished (ca_stage = rollover-begun in inventory.json)",
                "run `rotate --ca finish` first, ship every node's keystores, then retire",
            )
        } else {
            (
                "rotate --ca retire: no CA rollover is in progress (ca_stage = stable in inventory.json)",
                "a rollover starts with `rotate --ca begin`",
            )
        };
        return Err(refused(message, hint));
    }
    cas.previous = None;
    cas.stage = CaStage::Stable;
    Ok(CaPlan {
        cas,
        recertify_all: None,
    })
}

/// Creates the set's CA with `key` (the issue phase generates it with the leaves' keys).
pub(super) fn create_ca(topology: &Topology, cas: &mut Cas, key: Key) -> Result<(), GenerateError> {
    cas.current = Some(Ca::create(
        &resolve::ca_cert(topology, cas.generation),
        key,
    )?);
    Ok(())
}
