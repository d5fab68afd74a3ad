//! Java keystores: one in-memory model ([`Keystore`] of [`Entry`]s), encoded as JKS (our own
//! codec, [`jks`]), PKCS#12 or legacy PKCS#12 (through p12-keystore), plus PEM ([`pem`]). Bytes
//! in, bytes out: never opens a file, knows nothing of WSO2 or of apim-pki.
//!
//! - [`KeystoreFormat`]: the formats, their file extension, Java type name, and what a file's
//!   first bytes say it is (serde names `jks`, `pkcs12`, `pkcs12-legacy` with the `serde`
//!   feature).
//! - [`Keystore::encode`] / [`Keystore::decode`]: the store password is the key password too
//!   (a [`StorePassword`], wiped when dropped, never printed).
//! - [`protection`]: whether a PKCS#12 file is really protected by its password (MAC, no clear
//!   key), read from its DER without the password; [`der`]: the small DER reader it uses.
//!
//! ```
//! use keystore::{Entry, Keystore, KeystoreFormat, StorePassword};
//!
//! let password = StorePassword::new("changeit".to_string());
//! let cert = vec![0x30, 0x03, 0x02, 0x01, 0x01]; // any DER bytes, for the example
//! let store = Keystore {
//!     entries: vec![Entry::Trusted { alias: "ca".into(), cert: cert.clone() }],
//! };
//! let bytes = store.encode(KeystoreFormat::Jks, &password).unwrap();
//! assert_eq!(KeystoreFormat::detect(&bytes), Some(KeystoreFormat::Jks));
//! let (back, format) = Keystore::decode(&bytes, &password).unwrap();
//! assert_eq!((back.entries[0].cert(), format), (Some(&cert[..]), KeystoreFormat::Jks));
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![warn(unreachable_pub)]

pub mod der;
mod format;
pub mod jks;
pub mod pem;
mod pkcs12;
pub mod protection;

pub use format::KeystoreFormat;

use zeroize::Zeroizing;

/// A keystore's password (store and key password alike). Wiped from memory when dropped; never
/// printed (`Debug` shows `[elided]`). Which passwords are acceptable is the caller's rule.
#[derive(Clone, PartialEq, Eq)]
pub struct StorePassword(Zeroizing<String>);

impl StorePassword {
    /// Wraps a password.
    pub fn new(value: String) -> StorePassword {
        StorePassword(Zeroizing::new(value))
    }

    /// The password text, for encoders only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<Zeroizing<String>> for StorePassword {
    fn from(value: Zeroizing<String>) -> StorePassword {
        StorePassword(value)
    }
}

impl std::fmt::Debug for StorePassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StorePassword([elided])")
    }
}

/// What went wrong opening or writing a keystore. Never contains a password.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeystoreError {
    /// The bytes are neither JKS nor PKCS#12.
    #[error("not a JKS or PKCS#12 keystore ({0})")]
    NotAKeystore(Unrecognised),
    /// The integrity check failed: wrong password or a tampered file.
    #[error("the password is wrong, or the file was tampered with")]
    WrongPassword,
    /// The file is damaged.
    #[error("the keystore is corrupt: {0}")]
    Corrupt(Damage),
    /// Encoding failed.
    #[error("could not encode the keystore: {0}")]
    Encode(Damage),
}

/// What bytes that are no keystore look like ([`KeystoreError::NotAKeystore`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Unrecognised {
    /// No bytes at all.
    #[error("the file is empty")]
    Empty,
    /// A PEM file (`-----BEGIN`).
    #[error("it is a PEM file")]
    Pem,
    /// Anything else: its first bytes (up to 4).
    #[error("it starts with {}", hex(.0))]
    Start(Vec<u8>),
    /// Neither a keystore nor PEM (for readers that take PEM too).
    #[error("neither JKS, PKCS#12 nor PEM")]
    NeitherKeystoreNorPem,
}

impl Unrecognised {
    /// What `bytes` (no keystore) look like.
    pub fn of(bytes: &[u8]) -> Unrecognised {
        if bytes.is_empty() {
            Unrecognised::Empty
        } else if bytes.starts_with(b"-----BEGIN") {
            Unrecognised::Pem
        } else {
            Unrecognised::Start(bytes.iter().take(4).copied().collect())
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    let head: Vec<String> = bytes.iter().map(|b| format!("{b:02X}")).collect();
    head.join(" ")
}

/// What went wrong inside a codec ([`KeystoreError::Corrupt`], [`KeystoreError::Encode`]): the
/// codec's own error, kept typed. Its text is the codec's; it is not a `source` (the message
/// already holds it).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Damage {
    /// From the JKS codec.
    #[error("{0}")]
    Jks(jks::JksError),
    /// From p12-keystore.
    #[error("{0}")]
    Pkcs12(p12_keystore::error::Error),
    /// A PKCS#12 file asks for more key-derivation work than any real keystore (a denial of
    /// service): refused before any derivation.
    #[error(
        "it asks for more than {limit} key-derivation iterations in all; keytool writes 10,000 per key"
    )]
    TooManyKdfIterations {
        /// The limit, in iterations summed over the file.
        limit: u64,
    },
}

/// The container of a keystore's bytes (what [`KeystoreFormat::detect`] reports): the same enum
/// as the format, never `Pkcs12Legacy`. Kept as a name for the readers that compare containers.
pub type StoreType = KeystoreFormat;

/// One keystore entry.
#[derive(Clone)]
pub enum Entry {
    /// A private key (PKCS#8 DER) with its certificate chain, leaf first.
    PrivateKey {
        /// The alias.
        alias: String,
        /// The key, PKCS#8 DER (wiped when dropped).
        pkcs8: Zeroizing<Vec<u8>>,
        /// DER certificates, leaf first.
        chain: Vec<Vec<u8>>,
    },
    /// A trusted certificate (DER).
    Trusted {
        /// The alias.
        alias: String,
        /// The certificate, DER.
        cert: Vec<u8>,
    },
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Entry::PrivateKey { alias, chain, .. } => write!(
                f,
                "PrivateKey({alias}, chain of {}, key [elided])",
                chain.len()
            ),
            Entry::Trusted { alias, .. } => write!(f, "Trusted({alias})"),
        }
    }
}

impl Entry {
    /// The entry's alias.
    pub fn alias(&self) -> &str {
        match self {
            Entry::PrivateKey { alias, .. } | Entry::Trusted { alias, .. } => alias,
        }
    }

    /// The entry's first certificate: the leaf of a key entry, or the trusted certificate.
    pub fn cert(&self) -> Option<&[u8]> {
        match self {
            Entry::PrivateKey { chain, .. } => chain.first().map(Vec::as_slice),
            Entry::Trusted { cert, .. } => Some(cert),
        }
    }
}

/// A keystore's entries, in the order they are written.
#[derive(Debug, Clone, Default)]
pub struct Keystore {
    /// The entries.
    pub entries: Vec<Entry>,
}

impl Keystore {
    /// Encodes the keystore; the key password equals the store password (WSO2 requires it).
    pub fn encode(
        &self,
        format: KeystoreFormat,
        password: &StorePassword,
    ) -> Result<Vec<u8>, KeystoreError> {
        match format {
            KeystoreFormat::Jks => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as u64);
                let mut store = jks::JksKeyStore::new();
                for entry in &self.entries {
                    match entry {
                        Entry::PrivateKey {
                            alias,
                            pkcs8,
                            chain,
                        } => store
                            .add_private_key(alias, now, pkcs8, password.expose(), chain.clone())
                            .map_err(|e| KeystoreError::Encode(Damage::Jks(e)))?,
                        Entry::Trusted { alias, cert } => {
                            store.add_trusted_cert(alias, now, cert.clone())
                        }
                    }
                }
                store
                    .to_bytes(password.expose())
                    .map_err(|e| KeystoreError::Encode(Damage::Jks(e)))
            }
            KeystoreFormat::Pkcs12 => pkcs12::encode(self, password, false),
            KeystoreFormat::Pkcs12Legacy => pkcs12::encode(self, password, true),
        }
    }

    /// Opens keystore bytes of either type with `password` (store and key password alike).
    pub fn decode(
        bytes: &[u8],
        password: &StorePassword,
    ) -> Result<(Keystore, KeystoreFormat), KeystoreError> {
        match KeystoreFormat::detect(bytes).map(KeystoreFormat::container) {
            Some(KeystoreFormat::Jks) => {
                let store =
                    jks::JksKeyStore::from_bytes(bytes, password.expose()).map_err(jks_error)?;
                let mut entries = Vec::with_capacity(store.entries.len());
                for entry in store.entries {
                    entries.push(match entry {
                        jks::JksEntry::PrivateKey {
                            alias, key, chain, ..
                        } => Entry::PrivateKey {
                            alias,
                            pkcs8: key.decrypt(password.expose()).map_err(jks_error)?,
                            chain,
                        },
                        jks::JksEntry::TrustedCert { alias, cert, .. } => {
                            Entry::Trusted { alias, cert }
                        }
                    });
                }
                Ok((Keystore { entries }, KeystoreFormat::Jks))
            }
            Some(KeystoreFormat::Pkcs12 | KeystoreFormat::Pkcs12Legacy) => {
                Ok((pkcs12::decode(bytes, password)?, KeystoreFormat::Pkcs12))
            }
            None => Err(KeystoreError::NotAKeystore(Unrecognised::of(bytes))),
        }
    }

    /// The private-key entries.
    pub fn key_entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries
            .iter()
            .filter(|e| matches!(e, Entry::PrivateKey { .. }))
    }

    /// The entry with `alias`.
    pub fn entry(&self, alias: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.alias() == alias)
    }
}

fn jks_error(e: jks::JksError) -> KeystoreError {
    match e {
        jks::JksError::WrongPassword | jks::JksError::WrongKeyPassword => {
            KeystoreError::WrongPassword
        }
        other => KeystoreError::Corrupt(Damage::Jks(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_that_are_no_keystore_are_described() {
        let pw = StorePassword::new("changeit".into());
        let text = |bytes: &[u8]| Keystore::decode(bytes, &pw).unwrap_err().to_string();
        assert_eq!(
            text(b""),
            "not a JKS or PKCS#12 keystore (the file is empty)"
        );
        let pem = "not a JKS or PKCS#12 keystore (it is a PEM file)";
        assert_eq!(text(b"-----BEGIN CERTIFICATE-----"), pem);
        let start = "not a JKS or PKCS#12 keystore (it starts with 50 4B 03 04)";
        assert_eq!(text(b"PK\x03\x04rest"), start);
        assert!(matches!(
            Keystore::decode(b"x", &pw),
            Err(KeystoreError::NotAKeystore(Unrecognised::Start(b))) if b == b"x"
        ));
    }

    #[test]
    fn a_damaged_jks_names_the_codec_error_and_a_wrong_password_is_told_apart() {
        let pw = StorePassword::new("changeit".into());
        let cert = vec![0x30, 0x03, 0x02, 0x01, 0x01];
        let store = Keystore {
            entries: vec![Entry::Trusted {
                alias: "ca".into(),
                cert,
            }],
        };
        let mut bytes = store.encode(KeystoreFormat::Jks, &pw).unwrap();
        let other = StorePassword::new("other-password".into());
        let wrong = Keystore::decode(&bytes, &other).unwrap_err();
        assert!(matches!(wrong, KeystoreError::WrongPassword), "{wrong}");
        bytes.truncate(12);
        let err = Keystore::decode(&bytes, &pw).unwrap_err();
        assert!(
            matches!(err, KeystoreError::Corrupt(Damage::Jks(_))),
            "{err:?}"
        );
        assert!(
            err.to_string().starts_with("the keystore is corrupt: "),
            "{err}"
        );
    }
}
