//! Just enough DER: read a TLV (single-byte tags, definite lengths up to 4 bytes), list the TLVs
//! inside one, and wrap content in a TLV. Used by [`crate::protection`] to look into PKCS#12
//! files, and by apim-pki to splice certificates. Never panics on malformed input: readers
//! return `None`.

/// One TLV: its tag, and the byte ranges of the whole element and of its content.
#[derive(Debug, Clone, Copy)]
pub struct Tlv {
    /// The tag byte (single-byte tags only).
    pub tag: u8,
    /// Offset of the tag.
    pub start: usize,
    /// Offset of the content, after the length.
    pub content_start: usize,
    /// Offset just past the content.
    pub end: usize,
}

/// Reads the TLV starting at `pos`; `None` when the bytes are not well-formed DER.
pub fn read_tlv(bytes: &[u8], pos: usize) -> Option<Tlv> {
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
pub fn children(bytes: &[u8], outer: Tlv) -> Option<Vec<Tlv>> {
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
pub fn wrap(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 6);
    out.push(tag);
    push_len(&mut out, content.len());
    out.extend_from_slice(content);
    out
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
