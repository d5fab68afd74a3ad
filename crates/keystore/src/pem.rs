//! PEM certificates and keys (for load balancers, the CA and `inspect`).

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

/// Encodes DER certificates as concatenated PEM blocks.
pub fn certs_to_pem<'a>(certs: impl IntoIterator<Item = &'a [u8]>) -> String {
    certs
        .into_iter()
        .map(|der| {
            pem::encode_config(
                &pem::Pem::new("CERTIFICATE", der),
                pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
            )
        })
        .collect()
}

/// PEM text that does not decode: what is wrong with it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PemError(#[from] rustls_pki_types::pem::Error);

/// Reads every certificate of a PEM file, DER; an error names what is wrong.
pub fn certs_from_pem(bytes: &[u8]) -> Result<Vec<Vec<u8>>, PemError> {
    CertificateDer::pem_slice_iter(bytes)
        .map(|c| c.map(|c| c.to_vec()).map_err(PemError::from))
        .collect()
}

/// True when the bytes look like PEM text.
pub fn is_pem(bytes: &[u8]) -> bool {
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(0);
    bytes[start..].starts_with(b"-----BEGIN ")
}
