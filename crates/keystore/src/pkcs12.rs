//! PKCS#12 through p12-keystore: modern (PBES2/AES-256, HmacSHA256, as keytool 17 writes) and
//! legacy (PBE-SHA1-3DES, HmacSHA1, for JDKs before 8u301 / 11.0.12). Trusted certificates carry
//! Oracle's trust attribute, so Java lists them as trustedCertEntry.

use p12_keystore::{
    Certificate, EncryptionAlgorithm, KeyStore, KeyStoreEntry, MacAlgorithm, Pkcs12ImportPolicy,
    PrivateKey, PrivateKeyChain,
};
use sha1::{Digest, Sha1};
use zeroize::Zeroizing;

use super::{Damage, Entry, Keystore, KeystoreError, StorePassword};

/// Iterations for key derivation and the MAC, as keytool 17 uses.
const ITERATIONS: u32 = 10_000;

pub(super) fn encode(
    store: &Keystore,
    password: &StorePassword,
    legacy: bool,
) -> Result<Vec<u8>, KeystoreError> {
    let bad = |e: p12_keystore::error::Error| KeystoreError::Encode(Damage::Pkcs12(e));
    let mut out = KeyStore::new();
    for entry in &store.entries {
        match entry {
            Entry::PrivateKey {
                alias,
                pkcs8,
                chain,
            } => {
                let certs = chain
                    .iter()
                    .map(|c| Certificate::from_der(c))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(bad)?;
                let local_key_id =
                    Sha1::digest(chain.first().map_or(&[][..], Vec::as_slice)).to_vec();
                let key = PrivateKey::from_der(pkcs8).map_err(bad)?;
                out.add_entry(
                    alias,
                    KeyStoreEntry::PrivateKeyChain(PrivateKeyChain::new(local_key_id, key, certs)),
                );
            }
            Entry::Trusted { alias, cert } => {
                out.add_entry(
                    alias,
                    KeyStoreEntry::Certificate(Certificate::from_der(cert).map_err(bad)?),
                );
            }
        }
    }
    let writer = out
        .writer(password.expose())
        .encryption_iterations(ITERATIONS)
        .mac_iterations(ITERATIONS);
    let writer = if legacy {
        writer
            .encryption_algorithm(EncryptionAlgorithm::PbeWithShaAnd3KeyTripleDesCbc)
            .mac_algorithm(MacAlgorithm::HmacSha1)
    } else {
        writer
            .encryption_algorithm(EncryptionAlgorithm::PbeWithHmacSha256AndAes256)
            .mac_algorithm(MacAlgorithm::HmacSha256)
    };
    writer.write().map_err(bad)
}

/// The most key-derivation iterations a PKCS#12 file may ask for, summed over its MAC and every
/// encryption whose parameters are visible before decryption. keytool asks 10,000 per KDF (one
/// for the MAC, one per key, one for the certificates), OpenSSL 2,048: a keystore of 500 keys
/// stays under. p12-keystore caps each KDF at 1,000,000, but not their number, so without this a
/// small hostile file could keep `inspect` or `verify` busy for hours.
const MAX_KDF_ITERATIONS: u64 = 5_000_000;

/// Sums the iteration counts of `der`: every INTEGER that directly follows an OCTET STRING in
/// a constructed value (PBES1 and PBKDF2 parameters, MacData), descending into OCTET STRINGs
/// that hold DER (PKCS#12 wraps its SafeContents so). `None` once past the budget.
fn kdf_iterations(der: &[u8], depth: u8, total: &mut u64) -> Option<()> {
    let mut rest = der;
    let mut after_octets = false;
    while let Some((tag, content, next)) = tlv(rest) {
        rest = next;
        if tag == 0x02 && after_octets {
            let value = content.iter().fold(0u64, |v, b| {
                v.saturating_mul(256).saturating_add(u64::from(*b))
            });
            *total = total.saturating_add(if content.len() > 8 { u64::MAX } else { value });
        } else if depth < 32 && (tag & 0x20 != 0 || (tag == 0x04 && content.first() == Some(&0x30)))
        {
            kdf_iterations(content, depth + 1, total)?;
        }
        if *total > MAX_KDF_ITERATIONS {
            return None;
        }
        after_octets = tag == 0x04;
    }
    Some(())
}

/// One DER tag-length-value at the start of `der`: (tag, content, what follows). `None` when
/// malformed (then p12-keystore reports it).
fn tlv(der: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = der.split_first()?;
    if tag & 0x1F == 0x1F {
        return None;
    }
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = match first {
        0..=0x7F => (usize::from(first), rest),
        0x81..=0x84 => {
            let n = usize::from(first & 0x7F);
            let bytes = rest.get(..n)?;
            let len = bytes.iter().fold(0usize, |v, b| (v << 8) | usize::from(*b));
            (len, &rest[n..])
        }
        _ => return None,
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

pub(super) fn decode(bytes: &[u8], password: &StorePassword) -> Result<Keystore, KeystoreError> {
    let mut iterations = 0;
    if kdf_iterations(bytes, 0, &mut iterations).is_none() {
        return Err(KeystoreError::Corrupt(Damage::TooManyKdfIterations {
            limit: MAX_KDF_ITERATIONS,
        }));
    }
    let store = KeyStore::from_pkcs12(bytes, password.expose(), Pkcs12ImportPolicy::Relaxed)
        .map_err(|e| match e {
            p12_keystore::error::Error::MacError(_) => KeystoreError::WrongPassword,
            other => KeystoreError::Corrupt(Damage::Pkcs12(other)),
        })?;
    let entries = store
        .entries()
        .filter_map(|(alias, entry)| match entry {
            KeyStoreEntry::PrivateKeyChain(chain) => Some(Entry::PrivateKey {
                alias: alias.clone(),
                pkcs8: Zeroizing::new(chain.key().as_der().to_vec()),
                chain: chain.certs().iter().map(|c| c.as_der().to_vec()).collect(),
            }),
            KeyStoreEntry::Certificate(cert) => Some(Entry::Trusted {
                alias: alias.clone(),
                cert: cert.as_der().to_vec(),
            }),
            KeyStoreEntry::Secret(_) => None,
        })
        .collect();
    Ok(Keystore { entries })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn der(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        match content.len() {
            n @ 0..=0x7F => out.push(n as u8),
            n => out.extend([0x82, (n >> 8) as u8, n as u8]),
        }
        out.extend_from_slice(content);
        out
    }

    #[test]
    fn real_keystores_stay_within_the_kdf_budget_and_open() {
        // keytool-made PKCS#12 files, the fuzz seeds of the workspace (fuzz/seeds/pkcs12).
        let seeds = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fuzz/seeds/pkcs12");
        let mut seen = 0;
        for entry in std::fs::read_dir(seeds).expect("fuzz/seeds/pkcs12") {
            let bytes = std::fs::read(entry.expect("entry").path()).expect("read");
            let mut total = 0;
            assert!(kdf_iterations(&bytes, 0, &mut total).is_some());
            // The MAC and at least one encryption are found, at keytool's 10,000 each.
            assert!(total >= 20_000, "{total}");
            if seen == 0 {
                decode(&bytes, &StorePassword::new("changeit".into())).expect("opens");
            }
            seen += 1;
        }
        assert!(seen > 0);
    }

    #[test]
    fn a_file_asking_for_too_many_kdf_iterations_is_refused_before_any() {
        // Six PBE parameter sets of 1,000,000 iterations each, nested in an OCTET STRING.
        let params = der(
            0x30,
            &[der(0x04, &[7; 8]), der(0x02, &[0x0F, 0x42, 0x40])].concat(),
        );
        let inner = der(0x30, &params.repeat(6));
        let file = der(0x30, &[der(0x02, &[3]), der(0x04, &inner)].concat());
        let started = std::time::Instant::now();
        let err = decode(&file, &StorePassword::new("changeit".into())).expect_err("refused");
        assert!(
            err.to_string().contains("key-derivation iterations"),
            "{err}"
        );
        assert!(started.elapsed() < std::time::Duration::from_millis(100));
        let mut total = 0;
        assert!(kdf_iterations(&der(0x30, &params.repeat(5)), 0, &mut total).is_some());
        assert_eq!(total, 5_000_000);
    }
}
