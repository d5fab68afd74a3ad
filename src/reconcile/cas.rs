//! The CA part of the load phase: the issuing CA (loaded, imported, or to be created), where a
//! rollover stands, and the rollover step `rotate --ca` asks for.

use std::path::Path;

use crate::error::Bug;
use crate::keystore::pem;
use crate::output::inventory::{ArtifactKind, Inventory};
use crate::output::layout;
use crate::pki::{Ca, Key, PkiError};
use crate::plan::certs;
use crate::topology::{CaSource, Topology};

use super::dir::Dir;
use super::error::{CaFile, GenerateError};
use super::model::Cas;
use super::types::{CaStage, CaStep, Imported, Mode};

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
    engine: Option<&crate::pki::engine::Engine>,
    mode: Mode,
) -> Result<CaPlan, GenerateError> {
    let current = match imported {
        Some(imp) => {
            let (issuing, parents) = imp
                .ca_chain
                .split_first()
                // import-signed builds each chain with at least the leaf's issuer.
                .ok_or_else(|| Bug::new("an import without the issuing CA"))?;
            Some(Ca::without_key(
                issuing.clone(),
                parents.to_vec(),
                "the issuing CA",
            )?)
        }
        None if topology.ca.engine().is_some() => super::engine::issuing_ca(engine, dir)?,
        None => load_ca(topology, dir, old)?,
    };
    let stage = match old {
        Some(o) => CaStage::parse(&o.ca_stage).ok_or_else(|| GenerateError::UnknownCaStage {
            path: dir.join(layout::INVENTORY),
            stage: o.ca_stage.clone(),
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
        next_planned: false,
        previous,
    };
    match step {
        None => Ok(CaPlan {
            cas,
            recertify_all: None,
        }),
        Some(CaStep::Begin) => begin(topology, cas, mode),
        Some(CaStep::Finish) => finish(topology, cas),
        Some(CaStep::Retire) => retire(cas),
    }
}

/// `rotate --ca begin`: creates the next CA; every truststore trusts it from now on. A plan only
/// marks it planned: deciding needs no key.
fn begin(topology: &Topology, mut cas: Cas, mode: Mode) -> Result<CaPlan, GenerateError> {
    if cas.stage != CaStage::Stable || cas.current.is_none() {
        return Err(GenerateError::RolloverOutOfOrder {
            step: CaStep::Begin,
            stage: cas.stage,
        });
    }
    match mode {
        Mode::Plan => cas.next_planned = true,
        Mode::Generate => {
            cas.next = Some(Ca::create(
                &certs::ca_cert(topology, cas.generation + 1),
                Key::generate(topology.pki.key)?,
            )?);
        }
    }
    cas.stage = CaStage::Begun;
    Ok(CaPlan {
        cas,
        recertify_all: None,
    })
}

/// `rotate --ca finish`: the next CA becomes the issuing one; the previous one stays trusted.
fn finish(topology: &Topology, mut cas: Cas) -> Result<CaPlan, GenerateError> {
    let (Some(new_ca), Some(old_ca)) = (cas.next.take(), cas.current.take()) else {
        return Err(GenerateError::RolloverOutOfOrder {
            step: CaStep::Finish,
            stage: cas.stage,
        });
    };
    cas.previous = Some(old_ca.cert_der().to_vec());
    cas.current = Some(new_ca);
    cas.generation += 1;
    cas.stage = CaStage::Finished;
    let recertify_all = Some(format!(
        "CA rollover: re-certified under {}",
        certs::ca_cert(topology, cas.generation).subject.common_name
    ));
    Ok(CaPlan { cas, recertify_all })
}

/// `rotate --ca retire`: the previous CA is no longer trusted.
fn retire(mut cas: Cas) -> Result<CaPlan, GenerateError> {
    if cas.stage != CaStage::Finished {
        return Err(GenerateError::RolloverOutOfOrder {
            step: CaStep::Retire,
            stage: cas.stage,
        });
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
    cas.current = Some(Ca::create(&certs::ca_cert(topology, cas.generation), key)?);
    Ok(())
}

/// The set's CA: from `[pki.ca]`, or the one DIR holds; None when the set has none yet (the
/// issue phase creates it).
fn load_ca(
    topology: &Topology,
    dir: Dir,
    old: Option<&Inventory>,
) -> Result<Option<Ca>, GenerateError> {
    let read = |path: &Path, file: CaFile| {
        crate::input::read(path, crate::input::Limit::Certificate).map_err(|source| {
            GenerateError::CaFileUnreadable {
                path: path.into(),
                file,
                source,
            }
        })
    };
    let existing_cert = dir.read(layout::CA_CERT);
    match &topology.ca {
        CaSource::Engine(_) => {
            Err(Bug::new("the engine's CA is loaded by reconcile::engine, not load_ca").into())
        }
        // Only import-signed sets it, and an import brings its CA chain.
        CaSource::Imported => {
            Err(Bug::new("an imported CA without the certificates of import-signed").into())
        }
        CaSource::External { cert, key } => {
            let cert_pem = read(cert, CaFile::Cert)?;
            let key_pem = read(key, CaFile::Key)?;
            let (cert_name, key_name) = (cert.display().to_string(), key.display().to_string());
            let ca = Ca::from_pem(&cert_pem, &key_pem, &cert_name, &key_name).map_err(|e| {
                let path = if matches!(e, PkiError::BadKey { .. }) {
                    key
                } else {
                    cert
                };
                GenerateError::ExternalCaInvalid {
                    path: path.clone(),
                    source: Box::new(e),
                }
            })?;
            if let Some(existing) = existing_cert
                .as_ref()
                .and_then(|b| pem::certs_from_pem(b).ok())
                .and_then(|c| c.into_iter().next())
            {
                if existing != ca.cert_der() {
                    return Err(GenerateError::NeedsRotate {
                        path: layout::CA_CERT.into(),
                        reason: format!("the set was issued by another CA than {}", cert.display()),
                    });
                }
            }
            Ok(Some(ca))
        }
        CaSource::Generated => match (existing_cert, dir.read(layout::CA_KEY)) {
            (Some(cert_pem), Some(key_pem)) => {
                let ca = Ca::from_pem(&cert_pem, &key_pem, layout::CA_CERT, layout::CA_KEY)
                    .map_err(|source| GenerateError::CaCorrupt {
                        path: dir.join(layout::CA_CERT),
                        source: Box::new(source),
                    })?;
                Ok(Some(ca))
            }
            (None, None)
                if old
                    .is_none_or(|o| o.artifacts.iter().all(|a| a.kind != ArtifactKind::CaKey)) =>
            {
                Ok(None)
            }
            (cert, _) => {
                let missing = if cert.is_none() {
                    layout::CA_CERT
                } else {
                    layout::CA_KEY
                };
                Err(GenerateError::CaIncomplete {
                    path: dir.join(missing),
                })
            }
        },
    }
}

/// The rollover CAs of `stage`: the next CA (cert and key) once begun, the previous CA's
/// certificate once finished.
fn load_rollover(
    dir: &Path,
    stage: CaStage,
) -> Result<(Option<Ca>, Option<Vec<u8>>), GenerateError> {
    let read = |rel: &str| {
        crate::input::read(dir.join(rel), crate::input::Limit::Certificate).map_err(|source| {
            GenerateError::RolloverFileUnreadable {
                path: dir.join(rel),
                stage,
                source,
            }
        })
    };
    match stage {
        CaStage::Stable => Ok((None, None)),
        CaStage::Begun => {
            let (cert, key) = (read(layout::CA_NEXT_CERT)?, read(layout::CA_NEXT_KEY)?);
            let next = Ca::from_pem(&cert, &key, layout::CA_NEXT_CERT, layout::CA_NEXT_KEY)
                .map_err(|source| GenerateError::NextCaCorrupt {
                    path: dir.join(layout::CA_NEXT_CERT),
                    source: Box::new(source),
                })?;
            Ok((Some(next), None))
        }
        CaStage::Finished => {
            let rel = layout::CA_PREVIOUS_CERT;
            let cert = pem::certs_from_pem(&read(rel)?)
                .ok()
                .and_then(|c| c.into_iter().next())
                .ok_or_else(|| GenerateError::PreviousCaNotPem {
                    path: dir.join(rel),
                })?;
            Ok((None, Some(cert)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::topology;
    use super::super::types::{ActionKind, Rotation};
    use super::*;
    use crate::pki::keys_generated_on_this_thread;

    /// One worker thread: every key the run makes (rayon's included) is counted on it.
    fn on_one_thread<T: Send>(f: impl FnOnce() -> T + Send) -> T {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build();
        pool.expect("a one-thread pool").install(f)
    }

    fn action(outcome: &super::super::Outcome, path: &str) -> Option<ActionKind> {
        outcome
            .actions
            .iter()
            .find(|a| a.path == path)
            .map(|a| a.action)
    }

    #[test]
    fn an_imported_ca_without_its_chain_is_a_bug_not_bad_input() {
        let mut topology = topology();
        topology.ca = CaSource::Imported;
        let tmp = tempfile::tempdir().expect("tempdir");
        let index = Dir::index(tmp.path());
        let dir = Dir::new(tmp.path(), &index);
        let e = load_cas(&topology, dir, None, None, None, None, Mode::Plan)
            .err()
            .expect("refused");
        assert_eq!(crate::error::exit_code(&e), crate::error::EXIT_BUG, "{e}");
        let empty = Imported {
            ca_chain: Vec::new(),
            leaves: Default::default(),
        };
        let e = load_cas(&topology, dir, None, Some(&empty), None, None, Mode::Plan)
            .err()
            .expect("refused");
        assert_eq!(crate::error::exit_code(&e), crate::error::EXIT_BUG, "{e}");
    }

    #[test]
    fn plans_generate_no_key_and_rotate_ca_begin_says_what_it_would_do() {
        let topology = topology();
        let dir = tempfile::tempdir().expect("tempdir");
        let begin = Rotation::new(vec![], vec![], false, Some(CaStep::Begin));
        on_one_thread(|| {
            let first = super::super::reconcile(&topology, dir.path(), Mode::Plan).expect("plan");
            assert_eq!(
                keys_generated_on_this_thread(),
                0,
                "a first plan generated a key"
            );
            assert_eq!(action(&first, layout::CA_KEY), Some(ActionKind::Create));
            super::super::reconcile(&topology, dir.path(), Mode::Generate).expect("generate");
            let made = keys_generated_on_this_thread();
            assert!(made >= 7, "the counter sees generate's keys: {made}");
            let plan = super::super::rotate(&topology, dir.path(), &begin, Mode::Plan)
                .expect("rotate --ca begin --dry-run");
            assert_eq!(
                keys_generated_on_this_thread(),
                made,
                "the plan generated a key"
            );
            assert!(!plan.wrote && !dir.path().join(layout::CA_NEXT_CERT).exists());
            for rel in [layout::CA_NEXT_CERT, layout::CA_NEXT_KEY] {
                assert_eq!(action(&plan, rel), Some(ActionKind::Create), "{rel}");
            }
            let truststore =
                layout::node_security("a", &layout::truststore_file(topology.keystores.format));
            assert_eq!(action(&plan, &truststore), Some(ActionKind::Update));
            assert_eq!(action(&plan, layout::CA_BUNDLE), Some(ActionKind::Update));
            let done = super::super::rotate(&topology, dir.path(), &begin, Mode::Generate)
                .expect("rotate --ca begin");
            assert_eq!(
                keys_generated_on_this_thread(),
                made + 1,
                "begin makes one key"
            );
            assert_eq!(action(&done, layout::CA_NEXT_KEY), Some(ActionKind::Create));
            assert!(dir.path().join(layout::CA_NEXT_KEY).exists());
        });
    }
}
