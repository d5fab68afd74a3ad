//! What protects a PKCS#12 file: readers (ours, and Java's with a MAC-less file) accept one
//! without an integrity MAC, or with a private key in a plain `keyBag`, although its password
//! then protects nothing. Read from the DER structure (RFC 7292), without the password.

use crate::der::{children, read_tlv, Tlv};

/// A way a PKCS#12 file is not protected by its password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Weakness {
    /// No `macData`: anyone can change its entries without the password.
    NoMac,
    /// A private key in a `keyBag` outside any encrypted content: readable without the
    /// password (and invisible to Java, which reads keys only from shrouded key bags).
    ClearKey,
}

/// id-data, 1.2.840.113549.1.7.1.
const DATA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01];
/// keyBag, 1.2.840.113549.1.12.10.1.1.
const KEY_BAG: &[u8] = &[
    0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x0c, 0x0a, 0x01, 0x01,
];

/// The weaknesses of PKCS#12 `bytes`; empty when it has a MAC and no clear key, or when the
/// bytes are not DER PKCS#12 (the decoder reports that).
pub fn pkcs12_weaknesses(bytes: &[u8]) -> Vec<Weakness> {
    let Some(pfx) = read_tlv(bytes, 0) else {
        return Vec::new();
    };
    let Some(fields) = children(bytes, pfx) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if fields.len() == 2 {
        out.push(Weakness::NoMac);
    }
    let clear_key = fields
        .get(1)
        .and_then(|auth_safe| data_content(bytes, *auth_safe))
        .and_then(|safes| children(bytes, safes))
        .is_some_and(|safes| {
            safes.into_iter().any(|ci| {
                data_content(bytes, ci)
                    .and_then(|bags| children(bytes, bags))
                    .is_some_and(|bags| bags.into_iter().any(|bag| is_key_bag(bytes, bag)))
            })
        });
    if clear_key {
        out.push(Weakness::ClearKey);
    }
    out
}

/// The TLV inside the OCTET STRING of a ContentInfo of type id-data.
fn data_content(bytes: &[u8], content_info: Tlv) -> Option<Tlv> {
    let parts = children(bytes, content_info)?;
    let (oid, explicit) = (parts.first()?, parts.get(1)?);
    if oid.tag != 0x06 || &bytes[oid.content_start..oid.end] != DATA || explicit.tag != 0xa0 {
        return None;
    }
    let octets = read_tlv(bytes, explicit.content_start)?;
    if octets.tag != 0x04 {
        return None;
    }
    read_tlv(bytes, octets.content_start).filter(|t| t.end <= octets.end)
}

fn is_key_bag(bytes: &[u8], bag: Tlv) -> bool {
    children(bytes, bag)
        .and_then(|parts| parts.first().copied())
        .is_some_and(|oid| oid.tag == 0x06 && &bytes[oid.content_start..oid.end] == KEY_BAG)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::der::wrap;
    use crate::{Entry, Keystore, KeystoreFormat, StorePassword};

    #[test]
    fn what_apim_pki_writes_is_protected() {
        // A real ECDSA key and self-signed certificate, made by rcgen (a dev-dependency).
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let cert = rcgen::CertificateParams::new(vec!["t".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap()
            .der()
            .to_vec();
        let store = Keystore {
            entries: vec![Entry::PrivateKey {
                alias: "t".into(),
                pkcs8: zeroize::Zeroizing::new(key.serialize_der()),
                chain: vec![cert],
            }],
        };
        for format in [KeystoreFormat::Pkcs12, KeystoreFormat::Pkcs12Legacy] {
            let bytes = store
                .encode(format, &StorePassword::new("secret".into()))
                .unwrap();
            assert_eq!(pkcs12_weaknesses(&bytes), Vec::new(), "{format:?}");
            // The same file without its MAC.
            let pfx = read_tlv(&bytes, 0).unwrap();
            let fields = children(&bytes, pfx).unwrap();
            let body: Vec<u8> = bytes[fields[0].start..fields[1].end].to_vec();
            let no_mac = wrap(0x30, &body);
            assert_eq!(pkcs12_weaknesses(&no_mac), vec![Weakness::NoMac]);
        }
        assert_eq!(pkcs12_weaknesses(b"garbage"), Vec::new());
    }

    /// PFX { 3, data { [ data { [ keyBag { … } ] } ] } }, no MAC: both weaknesses.
    #[test]
    fn a_clear_key_bag_without_mac_is_seen() {
        let data_info = |inner: Vec<u8>| {
            let mut body = wrap(0x06, DATA);
            body.extend(wrap(0xa0, &wrap(0x04, &inner)));
            wrap(0x30, &body)
        };
        let mut bag = wrap(0x06, KEY_BAG);
        bag.extend(wrap(0xa0, &wrap(0x30, &[0x02, 0x01, 0x00])));
        let safe_contents = wrap(0x30, &wrap(0x30, &bag));
        let auth_safe = wrap(0x30, &data_info(safe_contents));
        let mut pfx = vec![0x02, 0x01, 0x03];
        pfx.extend(data_info(auth_safe));
        let pfx = wrap(0x30, &pfx);
        assert_eq!(
            pkcs12_weaknesses(&pfx),
            vec![Weakness::NoMac, Weakness::ClearKey]
        );
    }
}
