//! `inspect`: list the entries of a JKS, PKCS#12 or PEM file.

use serde::Serialize;

use crate::keystore::{pem, Entry, Keystore, KeystoreError, KeystoreFormat, Unrecognised};
use crate::password::Password;
use crate::pki::{CertInfo, Key};

/// One listed entry.
#[derive(Debug, Clone, Serialize)]
pub struct Listed {
    /// The alias (keystores) or `#n` (PEM blocks).
    pub alias: String,
    /// `PrivateKeyEntry`, `trustedCertEntry`, `certificate` or `private-key`.
    pub kind: String,
    /// Length of a key entry's chain.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chain_length: Option<usize>,
    /// The first certificate of the entry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate: Option<CertInfo>,
    /// A PEM private key's algorithm.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// What a file holds.
#[derive(Debug, Clone, Serialize)]
pub struct Listing {
    /// `JKS`, `PKCS12` or `PEM`.
    pub file_type: String,
    /// Its entries, in file order.
    pub entries: Vec<Listed>,
}

/// Why a file could not be listed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InspectError {
    /// The keystore does not open.
    #[error("{0}")]
    Keystore(#[from] KeystoreError),
    /// A keystore and no password.
    #[error("a password is needed to open this {0} keystore: use --password-env VAR or --password-file FILE")]
    NeedsPassword(&'static str),
    /// PEM that does not decode.
    #[error("not a certificate file: {0}")]
    BadPem(#[from] pem::PemError),
    /// PEM without a certificate or key.
    #[error("not a certificate file: no CERTIFICATE or PRIVATE KEY block")]
    EmptyPem,
}

/// Tells whether `bytes` need a password to be listed.
pub(crate) fn needs_password(bytes: &[u8]) -> bool {
    !pem::is_pem(bytes)
}

/// Lists a keystore or PEM file. `password` opens keystores.
pub(crate) fn inspect(bytes: &[u8], password: Option<&Password>) -> Result<Listing, InspectError> {
    if pem::is_pem(bytes) {
        return inspect_pem(bytes);
    }
    let store_type = KeystoreFormat::detect(bytes).ok_or(KeystoreError::NotAKeystore(
        Unrecognised::NeitherKeystoreNorPem,
    ))?;
    let password = password.ok_or(InspectError::NeedsPassword(store_type.java_type()))?;
    let (store, store_type) = Keystore::decode(bytes, password)?;
    let entries = store
        .entries
        .iter()
        .map(|e| {
            let (kind, chain_length) = match e {
                Entry::PrivateKey { chain, .. } => ("PrivateKeyEntry", Some(chain.len())),
                Entry::Trusted { .. } => ("trustedCertEntry", None),
            };
            Listed {
                alias: e.alias().to_string(),
                kind: kind.into(),
                chain_length,
                certificate: e.cert().and_then(|c| CertInfo::from_der(c).ok()),
                key: None,
            }
        })
        .collect();
    Ok(Listing {
        file_type: store_type.java_type().into(),
        entries,
    })
}

fn inspect_pem(bytes: &[u8]) -> Result<Listing, InspectError> {
    let mut entries: Vec<Listed> = pem::certs_from_pem(bytes)?
        .iter()
        .enumerate()
        .map(|(i, der)| Listed {
            alias: format!("#{}", i + 1),
            kind: "certificate".into(),
            chain_length: None,
            certificate: CertInfo::from_der(der).ok(),
            key: None,
        })
        .collect();
    let text = String::from_utf8_lossy(bytes);
    if text.contains("PRIVATE KEY-----") {
        let key = match Key::from_pem(bytes, "key") {
            Ok(k) => k.key_type().to_string(),
            Err(_) if text.contains("ENCRYPTED") => "encrypted".into(),
            Err(_) => "unreadable".into(),
        };
        entries.push(Listed {
            alias: format!("#{}", entries.len() + 1),
            kind: "private-key".into(),
            chain_length: None,
            certificate: None,
            key: Some(key),
        });
    }
    if entries.is_empty() {
        return Err(InspectError::EmptyPem);
    }
    Ok(Listing {
        file_type: "PEM".into(),
        entries,
    })
}

impl Listing {
    /// The listing for people: one block per entry.
    pub fn render_text(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        render_text(self, out)
    }
}

/// The listing for people: one block per entry.
pub(crate) fn render_text(listing: &Listing, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    writeln!(
        out,
        "{} file, {} entr{}",
        listing.file_type,
        listing.entries.len(),
        if listing.entries.len() == 1 {
            "y"
        } else {
            "ies"
        }
    )?;
    for e in &listing.entries {
        writeln!(out)?;
        let chain = e
            .chain_length
            .map(|n| format!(", chain of {n}"))
            .unwrap_or_default();
        writeln!(out, "{}  {}{chain}", e.alias, e.kind)?;
        if let Some(k) = &e.key {
            writeln!(out, "  key:         {k}")?;
        }
        if let Some(c) = &e.certificate {
            writeln!(out, "  subject:     {}", c.subject)?;
            writeln!(out, "  issuer:      {}", c.issuer)?;
            if !c.san_strings().is_empty() {
                writeln!(out, "  names:       {}", c.san_strings().join(", "))?;
            }
            writeln!(out, "  serial:      {}", c.serial)?;
            writeln!(
                out,
                "  valid:       {} to {}",
                c.not_before.date(),
                c.not_after.date()
            )?;
            writeln!(
                out,
                "  key:         {}{}",
                c.key,
                if c.is_ca { " (CA)" } else { "" }
            )?;
            writeln!(out, "  signature:   {}", c.signature)?;
            writeln!(out, "  SHA-256:     {}", c.sha256)?;
        }
    }
    Ok(())
}
