//! PKCS#12 through p12-keystore: modern (PBES2/AES-256, HmacSHA256, as keytool 17 writes) and
//! legacy (PBE-SHA1-3DES, HmacSHA1, for JDKs before 8u301 / 11.0.12). Trusted certificates carry
//! Oracle's trust attribute, so Java lists them as trustedCertEntry.

use p12_keystore::{
    Certificate, EncryptionAlgorithm, KeyStore, KeyStoreEntry, MacAlgorithm, Pkcs12ImportPolicy,
    PrivateKey, PrivateKeyChain,
};
use sha1::{Digest, Sha1};
use zeroize::Zeroizing;

use super::{Entry, Keystore, KeystoreError};
use crate::password::Password;

/// Iterations for key derivation and the MAC, as keytool 17 uses.
const ITERATIONS: u32 = 10_000;

pub(super) fn encode(
    store: &Keystore,
    password: &Password,
    legacy: bool,
) -> Result<Vec<u8>, KeystoreError> {
    let bad = |e: p12_keystore::error::Error| KeystoreError::Encode(e.to_string());
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

pub(super) fn decode(bytes: &[u8], password: &Password) -> Result<Keystore, KeystoreError> {
    let store = KeyStore::from_pkcs12(bytes, password.expose(), Pkcs12ImportPolicy::Relaxed)
        .map_err(|e| match e {
            p12_keystore::error::Error::MacError(_) => KeystoreError::WrongPassword,
            other => KeystoreError::Corrupt(other.to_string()),
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
