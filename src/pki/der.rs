//! Just enough DER to splice an issuer name into a certificate and re-sign it. rcgen rebuilds an
//! issuer's name through a map keyed by attribute type, so a CA whose subject repeats a type
//! (`DC=corp,DC=example`) would come out wrong; we put the CA's exact subject bytes back.

/// One TLV: its tag, and the byte ranges of the whole element and of its content.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tlv {
    pub tag: u8,
    pub start: usize,
    pub content_start: usize,
    pub end: usize,
}

/// Reads the TLV starting at `pos`; `None` when the bytes are not well-formed DER.
pub(crate) fn read_tlv(bytes: &[u8], pos: usize) -> Option<Tlv> {
    let tag = *bytes.get(pos)?;
    let first = *bytes.get(pos + 1)? as usize;
    let (len, header) = if first < 0x80 {
        (first, 2)
    } else {
        let n = first & 0x7f;
        if n == 0 || n > 4 {
            return None;
        }
        let len = bytes
            .get(pos + 2..pos + 2 + n)?
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | *b as usize);
        (len, 2 + n)
    };
    let content_start = pos + header;
    let end = content_start.checked_add(len)?;
    (end <= bytes.len()).then_some(Tlv {
        tag,
        start: pos,
        content_start,
        end,
    })
}

/// The TLVs directly inside `outer`.
pub(crate) fn children(bytes: &[u8], outer: Tlv) -> Option<Vec<Tlv>> {
    let mut pos = outer.content_start;
    let mut out = Vec::new();
    while pos < outer.end {
        let tlv = read_tlv(bytes, pos)?;
        pos = tlv.end;
        out.push(tlv);
    }
    Some(out)
}

/// Encodes a DER length.
fn push_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let be = len.to_be_bytes();
        let skip = be.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (be.len() - skip) as u8);
        out.extend_from_slice(&be[skip..]);
    }
}

/// Wraps `content` in a TLV with `tag`.
pub(crate) fn wrap(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 6);
    out.push(tag);
    push_len(&mut out, content.len());
    out.extend_from_slice(content);
    out
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_round_trip() {
        for len in [0usize, 1, 127, 128, 255, 256, 70_000] {
            let content = vec![7u8; len];
            let tlv_bytes = wrap(0x04, &content);
            let tlv = read_tlv(&tlv_bytes, 0).expect("parses");
            assert_eq!(tlv.end, tlv_bytes.len());
            assert_eq!(tlv.end - tlv.content_start, len);
        }
    }

    #[test]
    fn truncated_is_none() {
        let bytes = wrap(0x30, &[1, 2, 3]);
        assert!(read_tlv(&bytes[..bytes.len() - 1], 0).is_none());
        assert!(read_tlv(&[0x30, 0x85, 0, 0, 0, 0, 1], 0).is_none());
    }
}
