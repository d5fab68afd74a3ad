//! A corporate CA that signs elsewhere: `csr` writes a key and a CSR per node and load balancer,
//! `import-signed` takes the signed certificates back, checks each against its key and names,
//! and assembles the set through reconcile (the primary is self-signed: it is trusted through
//! the truststores' `wso2carbon` entries).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::Serialize;

use crate::keystore::pem;
use crate::output::fsio::{self, Access, DirLock};
use crate::output::journal::Journal;
use crate::output::layout;
use crate::pki::{self, info::is_issued_by, CertInfo, CertSpec, Key};
use crate::reconcile::{self, GenerateError, Imported, Outcome};
use crate::resolve;
use crate::topology::{CaSource, TlsMode, Topology};

/// Where `csr` keeps its files, relative to DIR.
pub(crate) const CSR_DIR: &str = "csr";
/// The topology `csr` ran with, kept for `import-signed`.
pub(crate) const CSR_TOPOLOGY: &str = "csr/topology.toml";

/// Why csr or import-signed stopped (exit 2).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CorporateError {
    /// A file or certificate that cannot be used.
    #[error("{}: {message}", path.display())]
    Input {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
        /// What to do.
        hint: Option<String>,
    },
    /// Assembling the set failed.
    #[error(transparent)]
    Generate(#[from] GenerateError),
}

impl CorporateError {
    /// What the user can do about it.
    pub fn hint(&self) -> Option<String> {
        match self {
            CorporateError::Input { hint, .. } => hint.clone(),
            CorporateError::Generate(e) => e.hint(),
        }
    }
}

fn input(
    path: impl Into<PathBuf>,
    message: impl Into<String>,
    hint: Option<&str>,
) -> CorporateError {
    CorporateError::Input {
        path: path.into(),
        message: message.into(),
        hint: hint.map(str::to_string),
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
        .map(|n| (n.name.clone(), resolve::node_cert(topology, n)));
    let lbs = topology
        .load_balancers
        .iter()
        .map(|lb| (lb.host.to_string(), resolve::lb_cert(topology, &lb.host)));
    nodes.chain(lbs).collect()
}

fn spec_names(spec: &CertSpec) -> Vec<String> {
    spec.dns_names
        .iter()
        .map(|d| format!("DNS:{d}"))
        .chain(spec.ip_addresses.iter().map(|ip| format!("IP:{ip}")))
        .collect()
}

/// `csr`: a key (0600, kept if it exists) and a CSR for every node and load balancer.
pub(crate) fn write_csrs(
    topology_path: &Path,
    topology: &Topology,
    dir: &Path,
) -> Result<Vec<CsrWritten>, CorporateError> {
    if let Some(e) = topology.ca.engine() {
        return Err(input(topology_path, format!("[pki.ca] names a PKI engine (backend = \"{}\"), which signs the CSRs itself during generate", e.backend.as_str()), Some("run `apim-pki generate` with this topology; the csr / import-signed flow is for a CA that signs by hand")));
    }
    if !matches!(topology.ca, CaSource::Generated) {
        return Err(input(topology_path, "[pki.ca] names a CA apim-pki can sign with; the CSR flow is for a CA that signs elsewhere", Some("remove [pki.ca] cert/key from the topology, or use `apim-pki generate` with it")));
    }
    if topology.keystores.tls == TlsMode::Shared {
        return Err(input(topology_path, "keystores.tls = \"shared\" serves TLS with the primary key, which stays self-signed in the CSR flow", Some("use tls = \"per-node\" with a corporate CA")));
    }
    let text = crate::input::read(topology_path, crate::input::Limit::Topology)
        .map_err(|e| input(topology_path, format!("cannot read: {e}"), None))?;
    let _lock = lock_for_csr(dir)?;
    let wanted = requests(topology);
    let keys: Vec<Result<(Key, bool), CorporateError>> = wanted
        .par_iter()
        .map(|(name, _)| {
            let path = dir.join(CSR_DIR).join(format!("{name}.key"));
            match crate::input::read(&path, crate::input::Limit::Certificate) {
                Ok(pem) => Key::from_pem(&pem, &path.display().to_string())
                    .map(|k| (k, false))
                    .map_err(|e| {
                        input(
                            &path,
                            e.to_string(),
                            Some("move the damaged key away; csr never overwrites a key"),
                        )
                    }),
                Err(_) => Key::generate(topology.pki.key)
                    .map(|k| (k, true))
                    .map_err(|e| input(&path, e.to_string(), None)),
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
        let csr =
            pki::csr_pem(spec, &key).map_err(|e| input(dir.join(&csr_rel), e.to_string(), None))?;
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
        fsio::write_atomic(&path, &bytes, access).map_err(|e| input(&path, e.to_string(), None))?;
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
            .map_err(|e| input(path, format!("cannot read: {e}"), None))?
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
            .map_err(|e| input(&file, format!("cannot read: {e}"), None))?;
        if !pem::is_pem(&bytes) {
            continue;
        }
        certs.extend(
            pem::certs_from_pem(&bytes)
                .map_err(|e| input(&file, format!("not a PEM certificate file: {e}"), None))?,
        );
    }
    if certs.is_empty() {
        return Err(input(
            path,
            "holds no PEM certificate",
            Some("pass the signed certificates (PEM, intermediates included)"),
        ));
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
                .map_err(|e| input(certs_path, e.to_string(), None))
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
            return Err(input(
                certs_path,
                format!(
                    "the certificate for `{}` matches no key in {}/: it was signed for another CSR",
                    info.subject,
                    dir.join(CSR_DIR).display()
                ),
                Some("import the certificates signed from this set's CSRs"),
            ));
        };
        check_names(certs_path, name, spec, info)?;
        let chain = chain_of(certs_path, der, info, &infos)?;
        let ca_chain = chain[1..].to_vec();
        match &issuing {
            Some(existing) if existing[0] != ca_chain[0] => {
                return Err(input(
                    certs_path,
                    format!(
                        "`{}` is signed by another CA than the other certificates",
                        info.subject
                    ),
                    Some("sign every CSR of a set with the same CA"),
                ));
            }
            _ => issuing = Some(ca_chain),
        }
        let key = Key::from_pkcs8_der(&key.pkcs8_der(), name)
            .map_err(|e| input(certs_path, e.to_string(), None))?;
        if leaves.insert(name.clone(), (key, chain)).is_some() {
            return Err(input(
                certs_path,
                format!("two certificates for {name}"),
                Some("import one certificate per CSR"),
            ));
        }
    }
    if let Some(name) = keys.keys().find(|n| !leaves.contains_key(*n)) {
        return Err(input(
            certs_path,
            format!("no signed certificate for {name} ({}/{name}.csr)", CSR_DIR),
            Some("have every CSR signed, then import them together"),
        ));
    }
    let ca_chain = issuing.ok_or_else(|| input(certs_path, "no leaf certificate", None))?;
    Ok(reconcile::import(
        &topology,
        dir,
        &Imported { ca_chain, leaves },
    )?)
}

/// The topology `csr` recorded in DIR, its CA marked as imported.
fn read_csr_topology(dir: &Path) -> Result<Topology, CorporateError> {
    let topo_path = dir.join(CSR_TOPOLOGY);
    let text =
        crate::input::read_to_string(&topo_path, crate::input::Limit::Topology).map_err(|e| {
            input(
                &topo_path,
                format!("cannot read: {e}"),
                Some("run `apim-pki csr TOPOLOGY --out DIR` first"),
            )
        })?;
    let mut topology =
        Topology::parse(&text, &topo_path).map_err(|e| input(&topo_path, e.to_string(), None))?;
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
        let pem = crate::input::read(&path, crate::input::Limit::Certificate).map_err(|e| {
            input(
                &path,
                format!("cannot read: {e}"),
                Some("run `apim-pki csr` for this topology first"),
            )
        })?;
        let key = Key::from_pem(&pem, &path.display().to_string())
            .map_err(|e| input(&path, e.to_string(), None))?;
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
    Err(input(
        certs_path,
        format!(
            "the certificate for {name} (`{}`) does not carry {}: {}",
            info.subject,
            if missing.is_empty() {
                format!("CN={}", spec.subject.common_name)
            } else {
                missing.join(", ")
            },
            if have.is_empty() {
                "it has no DNS or IP subject alternative name at all".to_string()
            } else {
                format!("its names are {}", have.join(", "))
            }
        ),
        Some(&format!(
            "have {}/{name}.csr signed as it is; the CA must keep its subject and SANs",
            CSR_DIR
        )),
    ))
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
        return Err(input(
            certs_path,
            format!(
                "no CA certificate that signed `{}` is among the imported certificates",
                info.subject
            ),
            Some("include the issuing CA and its chain (intermediates, root) in the PEM"),
        ));
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
