//! Just enough DER to splice an issuer name into a certificate and re-sign it. rcgen rebuilds an
//! issuer's name through a map keyed by attribute type, so a CA whose subject repeats a type
//! (`DC=corp,DC=example`) would come out wrong; we put the CA's exact subject bytes back. The
//! TLV reader and writer are the keystore crate's (`keystore::der`).

pub(crate) use keystore::der::{children, read_tlv, wrap, Tlv};

/// The parts of a certificate: TBS, signature algorithm, and the issuer's position inside TBS.
pub(crate) struct CertParts {
    pub tbs: Tlv,
    pub sig_alg: Tlv,
    pub issuer: Tlv,
}

/// Splits a certificate into its parts.
pub(crate) fn cert_parts(cert: &[u8]) -> Option<CertParts> {
    let outer = read_tlv(cert, 0)?;
    let top = children(cert, outer)?;
    let (tbs, sig_alg) = (*top.first()?, *top.get(1)?);
    let fields = children(cert, tbs)?;
    // version [0] is optional; the issuer follows serial and signature algorithm.
    let skip = usize::from(fields.first()?.tag == 0xa0);
    let issuer = *fields.get(skip + 2)?;
    Some(CertParts {
        tbs,
        sig_alg,
        issuer,
    })
}

/// Rebuilds `cert` with `issuer_name` (a DER Name) in place of its issuer; `sign` signs the new
/// TBS. Returns `None` when the certificate is not well-formed.
pub(crate) fn replace_issuer<E>(
    cert: &[u8],
    issuer_name: &[u8],
    sign: impl FnOnce(&[u8]) -> Result<Vec<u8>, E>,
) -> Option<Result<Vec<u8>, E>> {
    let parts = cert_parts(cert)?;
    let mut tbs_content = Vec::with_capacity(parts.tbs.end - parts.tbs.start + issuer_name.len());
    tbs_content.extend_from_slice(&cert[parts.tbs.content_start..parts.issuer.start]);
    tbs_content.extend_from_slice(issuer_name);
    tbs_content.extend_from_slice(&cert[parts.issuer.end..parts.tbs.end]);
    let tbs = wrap(0x30, &tbs_content);
    Some(sign(&tbs).map(|signature| {
        let mut bits = Vec::with_capacity(signature.len() + 1);
        bits.push(0); // no unused bits
        bits.extend_from_slice(&signature);
        let mut body = tbs;
        body.extend_from_slice(&cert[parts.sig_alg.start..parts.sig_alg.end]);
        body.extend_from_slice(&wrap(0x03, &bits));
        wrap(0x30, &body)
    }))
}
