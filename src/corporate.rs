//! A corporate CA that signs elsewhere: `csr` writes a key and a CSR per node and load balancer,
//! `import-signed` takes the signed certificates back, checks each against its key and names,
//! and assembles the set through reconcile (the primary is self-signed: it is trusted through
//! the truststores' `wso2carbon` entries).

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::Serialize;

use crate::error::Bug;
use crate::keystore::pem;
use crate::output::fsio::{self, Access, DirLock};
use crate::output::journal::Journal;
use crate::output::layout;
use crate::pki::info::{is_issued_by, CertParseError};
use crate::pki::{self, CertInfo, CertSpec, Key, PkiError};
use crate::plan::certs;
use crate::reconcile::{self, GenerateError, Imported, Outcome};
use crate::topology::{CaSource, EngineBackend, TlsMode, Topology, TopologyError};

/// Where `csr` keeps its files, relative to DIR.
pub(crate) const CSR_DIR: &str = "csr";
/// The topology `csr` ran with, kept for `import-signed`.
pub(crate) const CSR_TOPOLOGY: &str = "csr/topology.toml";

/// Why csr or import-signed stopped: the user's input (exit 2), or a bug (exit 70). Each
/// variant names the file and says what is wrong; [`CorporateError::hint`] says what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CorporateError {
    /// The topology's CA is a PKI engine, which signs during generate.
    #[error("{}: [pki.ca] names a PKI engine (backend = \"{}\"), which signs the CSRs itself during generate", topology.display(), backend.as_str())]
    EngineCa {
        /// The topology file.
        topology: PathBuf,
        /// The engine named.
        backend: EngineBackend,
    },
    /// The topology names a CA key apim-pki signs with itself.
    #[error("{}: [pki.ca] names a CA apim-pki can sign with; the CSR flow is for a CA that signs elsewhere", topology.display())]
    SigningCa {
        /// The topology file.
        topology: PathBuf,
    },
    /// `tls = "shared"`: TLS would be served with the self-signed primary key.
    #[error("{}: keystores.tls = \"shared\" serves TLS with the primary key, which stays self-signed in the CSR flow", topology.display())]
    SharedTls {
        /// The topology file.
        topology: PathBuf,
    },
    /// A file or directory given cannot be read.
    #[error("{}: cannot read: {source}", path.display())]
    Unreadable {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A file `csr` writes (its topology copy, a key) is absent or unreadable at import.
    #[error("{}: cannot read: {source}", path.display())]
    CsrFileMissing {
        /// The file.
        path: PathBuf,
        /// The topology copy (else a key).
        topology: bool,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The topology copy `csr` kept no longer parses.
    #[error("{}: {source}", path.display())]
    CsrTopology {
        /// The copy, DIR/csr/topology.toml.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        source: Box<TopologyError>,
    },
    /// A key in DIR/csr/ that does not parse.
    #[error("{}: {source}", path.display())]
    DamagedKey {
        /// The key file.
        path: PathBuf,
        /// True in `csr` (which never overwrites it), false in `import-signed`.
        at_csr: bool,
        /// What is wrong with it.
        #[source]
        source: Box<PkiError>,
    },
    /// The crypto library could not make a key or a CSR.
    #[error("{}: {source}", path.display())]
    Crypto {
        /// The key or CSR file it was for.
        path: PathBuf,
        /// What failed.
        #[source]
        source: Box<PkiError>,
    },
    /// A certificate file that is PEM but does not decode.
    #[error("{}: not a PEM certificate file: {source}", path.display())]
    NotPem {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        source: pem::PemError,
    },
    /// `--certs` holds no PEM certificate at all.
    #[error("{}: holds no PEM certificate", path.display())]
    NoCertificates {
        /// The file or directory given.
        path: PathBuf,
    },
    /// A PEM block that is not an X.509 certificate.
    #[error("{}: {source}", path.display())]
    NotX509 {
        /// The file or directory given.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        source: CertParseError,
    },
    /// A signed certificate whose public key is none of the CSR keys.
    #[error("{}: the certificate for `{subject}` matches no key in {}/: it was signed for another CSR", path.display(), keys.display())]
    ForeignCertificate {
        /// The file or directory given.
        path: PathBuf,
        /// The certificate's subject.
        subject: String,
        /// DIR/csr.
        keys: PathBuf,
    },
    /// The certificate does not carry the names its CSR asked for.
    #[error("{}: the certificate for {name} (`{subject}`) does not carry {}: {}", path.display(), lacking.join(", "), names_it_has(has))]
    WrongNames {
        /// The file or directory given.
        path: PathBuf,
        /// The node or load balancer.
        name: String,
        /// The certificate's subject.
        subject: String,
        /// What it lacks: `CN=...`, or the SANs (`DNS:...`, `IP:...`) it lacks.
        lacking: Box<[String]>,
        /// Its SANs.
        has: Box<[String]>,
    },
    /// The issuing CA certificate is not among those imported.
    #[error("{}: no CA certificate that signed `{subject}` is among the imported certificates", path.display())]
    ChainIncomplete {
        /// The file or directory given.
        path: PathBuf,
        /// The leaf's subject.
        subject: String,
    },
    /// The certificates come from more than one CA.
    #[error("{}: `{subject}` is signed by another CA than the other certificates", path.display())]
    MixedCas {
        /// The file or directory given.
        path: PathBuf,
        /// The subject of the first certificate from another CA.
        subject: String,
    },
    /// Two certificates for one CSR.
    #[error("{}: two certificates for {name}", path.display())]
    Duplicate {
        /// The file or directory given.
        path: PathBuf,
        /// The node or load balancer.
        name: String,
    },
    /// A CSR without its signed certificate.
    #[error("{}: no signed certificate for {name} ({CSR_DIR}/{name}.csr)", path.display())]
    Unsigned {
        /// The file or directory given.
        path: PathBuf,
        /// The node or load balancer.
        name: String,
    },
    /// Assembling the set failed.
    #[error(transparent)]
    Generate(#[from] GenerateError),
    /// A bug in apim-pki (exit 70).
    #[error("{0}")]
    Bug(#[from] Bug),
}

/// [`CorporateError::Unreadable`] for `path`, from the I/O error.
fn unreadable(path: &Path) -> impl FnOnce(io::Error) -> CorporateError + '_ {
    move |source| CorporateError::Unreadable {
        path: path.to_path_buf(),
        source,
    }
}

/// The end of a [`CorporateError::WrongNames`] message: the SANs the certificate has.
fn names_it_has(has: &[String]) -> String {
    if has.is_empty() {
        "it has no DNS or IP subject alternative name at all".to_string()
    } else {
        format!("its names are {}", has.join(", "))
    }
}

impl CorporateError {
    /// What the user can do about it.
    pub fn hint(&self) -> Option<String> {
        let hint = match self {
            CorporateError::EngineCa { .. } => "run `apim-pki generate` with this topology; the csr / import-signed flow is for a CA that signs by hand",
            CorporateError::SigningCa { .. } => "remove [pki.ca] cert/key from the topology, or use `apim-pki generate` with it",
            CorporateError::SharedTls { .. } => "use tls = \"per-node\" with a corporate CA",
            CorporateError::CsrFileMissing { topology: true, .. } => "run `apim-pki csr TOPOLOGY --out DIR` first",
            CorporateError::CsrFileMissing { topology: false, .. } => "run `apim-pki csr` for this topology first",
            CorporateError::DamagedKey { at_csr: true, .. } => "move the damaged key away; csr never overwrites a key",
            CorporateError::NoCertificates { .. } => "pass the signed certificates (PEM, intermediates included)",
            CorporateError::ForeignCertificate { .. } => "import the certificates signed from this set's CSRs",
            CorporateError::WrongNames { name, .. } => return Some(format!(
                "have {CSR_DIR}/{name}.csr signed as it is; the CA must keep its subject and SANs"
            )),
            CorporateError::ChainIncomplete { .. } => "include the issuing CA and its chain (intermediates, root) in the PEM",
            CorporateError::MixedCas { .. } => "sign every CSR of a set with the same CA",
            CorporateError::Duplicate { .. } => "import one certificate per CSR",
            CorporateError::Unsigned { .. } => "have every CSR signed, then import them together",
            CorporateError::Generate(e) => return e.hint(),
            _ => return None,
        };
        Some(hint.to_string())
    }
}

/// One CSR written.
#[derive(Debug, Clone, Serialize)]
pub struct CsrWritten {
    pub name: String,
    pub key: String,
    pub csr: String,
    pub subject: String,
    pub names: Vec<String>,
    /// False when the key already existed and was reused.
    pub new_key: bool,
}

/// Who needs a certificate from the corporate CA, and what it must say.
fn requests(topology: &Topology) -> Vec<(String, CertSpec)> {
    let nodes = topology
        .nodes
        .iter()
        .map(|n| (n.name.clone(), certs::node_cert(topology, n)));
    let lbs = topology
        .load_balancers
        .iter()
        .map(|lb| (lb.host.to_string(), certs::lb_cert(topology, &lb.host)));
    nodes.chain(lbs).collect()
}

fn spec_names(spec: &CertSpec) -> Vec<String> {
    spec.dns_names
        .iter()
        .map(|d| format!("DNS:{d}"))
        .chain(spec.ip_addresses.iter().map(|ip| format!("IP:{ip}")))
        .collect()
}

/// Refuses a topology the CSR flow cannot serve: a CA apim-pki signs with (an engine or a key
/// it holds), or TLS served with the primary key.
fn refuse_for_csr(topology_path: &Path, topology: &Topology) -> Result<(), CorporateError> {
    let topology_path = topology_path.to_path_buf();
    if let Some(e) = topology.ca.engine() {
        return Err(CorporateError::EngineCa {
            topology: topology_path,
            backend: e.backend,
        });
    }
    if !matches!(topology.ca, CaSource::Generated) {
        return Err(CorporateError::SigningCa {
            topology: topology_path,
        });
    }
    if topology.keystores.tls == TlsMode::Shared {
        return Err(CorporateError::SharedTls {
            topology: topology_path,
        });
    }
    Ok(())
}

/// `csr`: a key (0600, kept if it exists) and a CSR for every node and load balancer.
pub(crate) fn write_csrs(
    topology_path: &Path,
    topology: &Topology,
    dir: &Path,
) -> Result<Vec<CsrWritten>, CorporateError> {
    refuse_for_csr(topology_path, topology)?;
    let text = crate::input::read(topology_path, crate::input::Limit::Topology)
        .map_err(unreadable(topology_path))?;
    let _lock = lock_for_csr(dir)?;
    let wanted = requests(topology);
    let keys: Vec<Result<(Key, bool), CorporateError>> = wanted
        .par_iter()
        .map(|(name, _)| {
            let path = dir.join(CSR_DIR).join(format!("{name}.key"));
            match crate::input::read(&path, crate::input::Limit::Certificate) {
                Ok(pem) => Key::from_pem(&pem, &path.display().to_string())
                    .map(|k| (k, false))
                    .map_err(|source| CorporateError::DamagedKey {
                        path,
                        at_csr: true,
                        source: Box::new(source),
                    }),
                Err(_) => Key::generate(topology.pki.key)
                    .map(|k| (k, true))
                    .map_err(|source| CorporateError::Crypto {
                        path,
                        source: Box::new(source),
                    }),
            }
        })
        .collect();
    let mut out = Vec::new();
    let mut writes: Vec<(PathBuf, Vec<u8>, Access)> =
        vec![(dir.join(CSR_TOPOLOGY), text, Access::Public)];
    for ((name, spec), key) in wanted.iter().zip(keys) {
        let (key, new_key) = key?;
        let key_rel = format!("{CSR_DIR}/{name}.key");
        let csr_rel = format!("{CSR_DIR}/{name}.csr");
        let csr = pki::csr_pem(spec, &key).map_err(|source| CorporateError::Crypto {
            path: dir.join(&csr_rel),
            source: Box::new(source),
        })?;
        if new_key {
            writes.push((
                dir.join(&key_rel),
                key.pkcs8_pem().as_bytes().to_vec(),
                Access::Secret,
            ));
        }
        writes.push((dir.join(&csr_rel), csr.into_bytes(), Access::Public));
        out.push(CsrWritten {
            name: name.clone(),
            key: key_rel,
            csr: csr_rel,
            subject: spec.subject.common_name.clone(),
            names: spec_names(spec),
            new_key,
        });
    }
    for (path, bytes, access) in writes {
        let rel = path.strip_prefix(dir).unwrap_or(&path);
        fsio::refuse_links(dir, rel).map_err(GenerateError::from)?;
        fsio::write_atomic(&path, &bytes, access).map_err(GenerateError::from)?;
    }
    Ok(out)
}

/// Locks DIR for `csr` (creating it, 0700), completes an interrupted commit and removes the
/// temporaries an interrupted csr left in DIR/csr/.
fn lock_for_csr(dir: &Path) -> Result<DirLock, CorporateError> {
    let lock = DirLock::acquire(dir, layout::LOCK, "csr").map_err(GenerateError::from)?;
    Journal::new(dir, layout::JOURNAL)
        .recover()
        .map_err(GenerateError::from)?;
    fsio::refuse_links(dir, Path::new(CSR_DIR)).map_err(GenerateError::from)?;
    fsio::remove_stale_temporaries(&dir.join(CSR_DIR), false);
    Ok(lock)
}

/// Reads every certificate of a PEM file, or of every file in a directory.
fn read_certs(path: &Path) -> Result<Vec<Vec<u8>>, CorporateError> {
    let files: Vec<PathBuf> = if path.is_dir() {
        let mut v: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(unreadable(path))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .collect();
        v.sort();
        v
    } else {
        vec![path.to_path_buf()]
    };
    let mut certs = Vec::new();
    for file in files {
        let bytes = crate::input::read(&file, crate::input::Limit::Certificate)
            .map_err(unreadable(&file))?;
        if !pem::is_pem(&bytes) {
            continue;
        }
        certs.extend(
            pem::certs_from_pem(&bytes)
                .map_err(|source| CorporateError::NotPem { path: file, source })?,
        );
    }
    if certs.is_empty() {
        return Err(CorporateError::NoCertificates {
            path: path.to_path_buf(),
        });
    }
    Ok(certs)
}

/// `import-signed`: matches each signed certificate to its key by public key, refuses one whose
/// names do not match its node, and assembles keystores and truststores.
pub(crate) fn import_signed(dir: &Path, certs_path: &Path) -> Result<Outcome, CorporateError> {
    let topology = read_csr_topology(dir)?;
    let certs = read_certs(certs_path)?;
    let infos: Vec<(Vec<u8>, CertInfo)> = certs
        .into_iter()
        .map(|der| {
            CertInfo::from_der(&der)
                .map(|i| (der, i))
                .map_err(|source| CorporateError::NotX509 {
                    path: certs_path.to_path_buf(),
                    source,
                })
        })
        .collect::<Result<_, _>>()?;
    let keys = csr_keys(dir, &topology)?;
    let mut leaves: BTreeMap<String, (Key, Vec<Vec<u8>>)> = BTreeMap::new();
    let mut issuing: Option<Vec<Vec<u8>>> = None;
    for (der, info) in infos.iter().filter(|(_, i)| !i.is_ca) {
        let Some((name, (key, spec))) = keys
            .iter()
            .find(|(_, (k, _))| k.public_key_der() == info.public_key_der)
        else {
            return Err(CorporateError::ForeignCertificate {
                path: certs_path.to_path_buf(),
                subject: info.subject.clone(),
                keys: dir.join(CSR_DIR),
            });
        };
        check_names(certs_path, name, spec, info)?;
        let chain = chain_of(certs_path, der, info, &infos)?;
        let ca_chain = chain[1..].to_vec();
        match &issuing {
            Some(existing) if existing[0] != ca_chain[0] => {
                return Err(CorporateError::MixedCas {
                    path: certs_path.to_path_buf(),
                    subject: info.subject.clone(),
                });
            }
            _ => issuing = Some(ca_chain),
        }
        let key = Key::from_pkcs8_der(&key.pkcs8_der(), name)
            .map_err(|e| Bug::new(format!("the key of {name} does not read back: {e}")))?;
        if leaves.insert(name.clone(), (key, chain)).is_some() {
            return Err(CorporateError::Duplicate {
                path: certs_path.to_path_buf(),
                name: name.clone(),
            });
        }
    }
    if let Some(name) = keys.keys().find(|n| !leaves.contains_key(*n)) {
        return Err(CorporateError::Unsigned {
            path: certs_path.to_path_buf(),
            name: name.clone(),
        });
    }
    // Every request has its leaf (checked above), and a topology has at least one node.
    let ca_chain = issuing.ok_or_else(|| Bug::new("import-signed found no leaf certificate"))?;
    Ok(reconcile::import(
        &topology,
        dir,
        &Imported { ca_chain, leaves },
    )?)
}

/// The topology `csr` recorded in DIR, its CA marked as imported.
fn read_csr_topology(dir: &Path) -> Result<Topology, CorporateError> {
    let topo_path = dir.join(CSR_TOPOLOGY);
    let text = crate::input::read_to_string(&topo_path, crate::input::Limit::Topology).map_err(
        |source| CorporateError::CsrFileMissing {
            path: topo_path.clone(),
            topology: true,
            source,
        },
    )?;
    let mut topology =
        Topology::parse(&text, &topo_path).map_err(|source| CorporateError::CsrTopology {
            path: topo_path.clone(),
            source: Box::new(source),
        })?;
    topology.ca = CaSource::Imported;
    Ok(topology)
}

/// The key `csr` made for each request, with the spec its certificate must match.
fn csr_keys(
    dir: &Path,
    topology: &Topology,
) -> Result<BTreeMap<String, (Key, CertSpec)>, CorporateError> {
    let mut keys = BTreeMap::new();
    for (name, spec) in requests(topology) {
        let path = dir.join(CSR_DIR).join(format!("{name}.key"));
        let pem =
            crate::input::read(&path, crate::input::Limit::Certificate).map_err(|source| {
                CorporateError::CsrFileMissing {
                    path: path.clone(),
                    topology: false,
                    source,
                }
            })?;
        let key = Key::from_pem(&pem, &path.display().to_string()).map_err(|source| {
            CorporateError::DamagedKey {
                path,
                at_csr: false,
                source: Box::new(source),
            }
        })?;
        keys.insert(name, (key, spec));
    }
    Ok(keys)
}

/// Refuses a signed certificate that lacks a name or the CN its request asked for.
fn check_names(
    certs_path: &Path,
    name: &str,
    spec: &CertSpec,
    info: &CertInfo,
) -> Result<(), CorporateError> {
    let have: Vec<String> = info
        .dns_names
        .iter()
        .map(|d| format!("DNS:{}", d.to_ascii_lowercase()))
        .chain(info.ip_addresses.iter().map(|ip| format!("IP:{ip}")))
        .collect();
    let missing: Vec<String> = spec_names(spec)
        .into_iter()
        .filter(|n| !have.contains(n))
        .collect();
    if missing.is_empty() && info.common_names.first() == Some(&spec.subject.common_name) {
        return Ok(());
    }
    Err(CorporateError::WrongNames {
        path: certs_path.to_path_buf(),
        name: name.to_string(),
        subject: info.subject.clone(),
        lacking: if missing.is_empty() {
            Box::new([format!("CN={}", spec.subject.common_name)])
        } else {
            missing.into()
        },
        has: have.into(),
    })
}

/// A leaf's chain: the CA certificates among the imported ones, up to a self-signed root.
fn chain_of(
    certs_path: &Path,
    der: &[u8],
    info: &CertInfo,
    infos: &[(Vec<u8>, CertInfo)],
) -> Result<Vec<Vec<u8>>, CorporateError> {
    let mut chain = vec![der.to_vec()];
    while let Some((ca, _)) = infos.iter().find(|(c, ci)| {
        ci.is_ca && !chain.contains(c) && chain.last().is_some_and(|last| is_issued_by(last, c))
    }) {
        chain.push(ca.clone());
    }
    if chain.len() < 2 {
        return Err(CorporateError::ChainIncomplete {
            path: certs_path.to_path_buf(),
            subject: info.subject.clone(),
        });
    }
    Ok(chain)
}
/// What `csr` says for people: each CSR with its names, then what to do next.
pub(crate) fn render_text(
    written: &[CsrWritten],
    dir: &Path,
    w: &mut dyn std::io::Write,
) -> std::io::Result<()> {
    let width = written.iter().map(|c| c.csr.len()).max().unwrap_or(0);
    for c in written {
        let key = if c.new_key { "new key" } else { "key kept" };
        writeln!(w, "  {:<width$}  {}  ({key})", c.csr, c.names.join(" "))?;
    }
    writeln!(
        w,
        "\n{} CSRs in {}/csr. Have your CA sign them (keep subject and SANs), then:",
        written.len(),
        dir.display()
    )?;
    writeln!(
        w,
        "  apim-pki import-signed {} --certs SIGNED.pem   (leaf certificates plus the CA chain)",
        dir.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wrong_names(has: &[&str]) -> CorporateError {
        CorporateError::WrongNames {
            path: PathBuf::from("signed.pem"),
            name: "km".into(),
            subject: "CN=km".into(),
            lacking: Box::new(["DNS:km.acme.internal".into(), "IP:10.0.0.1".into()]),
            has: has.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn wrong_names_says_what_is_lacking_and_what_is_there() {
        assert_eq!(
            wrong_names(&["DNS:other"]).to_string(),
            "signed.pem: the certificate for km (`CN=km`) does not carry DNS:km.acme.internal, \
             IP:10.0.0.1: its names are DNS:other"
        );
        assert!(wrong_names(&[])
            .to_string()
            .ends_with(": it has no DNS or IP subject alternative name at all"));
        assert_eq!(
            wrong_names(&[]).hint().as_deref(),
            Some("have csr/km.csr signed as it is; the CA must keep its subject and SANs")
        );
    }

    #[test]
    fn an_unreadable_file_keeps_its_cause_and_exits_2() {
        let e = CorporateError::CsrFileMissing {
            path: PathBuf::from("d/csr/topology.toml"),
            topology: true,
            source: io::Error::new(io::ErrorKind::NotFound, "No such file or directory"),
        };
        assert_eq!(
            crate::error::render(&e, e.hint().as_deref()),
            "error: d/csr/topology.toml: cannot read: No such file or directory\n\
             hint: run `apim-pki csr TOPOLOGY --out DIR` first\n"
        );
        assert!(std::error::Error::source(&e).is_some());
        assert_eq!(crate::error::exit_code(&e), crate::error::EXIT_INPUT);
    }

    #[test]
    fn a_broken_invariant_is_a_bug_not_bad_input() {
        let e = CorporateError::from(Bug::new("import-signed found no leaf certificate"));
        assert_eq!(crate::error::exit_code(&e), crate::error::EXIT_BUG);
        assert_eq!(e.hint(), None);
    }

    #[test]
    fn each_refusal_of_the_topology_says_what_to_use_instead() {
        let t = PathBuf::from("t.toml");
        let e = CorporateError::EngineCa {
            topology: t.clone(),
            backend: EngineBackend::OpenBao,
        };
        assert_eq!(e.to_string(), "t.toml: [pki.ca] names a PKI engine (backend = \"openbao\"), which signs the CSRs itself during generate");
        assert!(e.hint().unwrap().starts_with("run `apim-pki generate`"));
        let e = CorporateError::SharedTls { topology: t };
        assert_eq!(
            e.hint().as_deref(),
            Some("use tls = \"per-node\" with a corporate CA")
        );
    }
}
