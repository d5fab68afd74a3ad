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
    NotAKeystore(String),
    /// The integrity check failed: wrong password or a tampered file.
    #[error("the password is wrong, or the file was tampered with")]
    WrongPassword,
    /// The file is damaged.
    #[error("the keystore is corrupt: {0}")]
    Corrupt(String),
    /// Encoding failed.
    #[error("could not encode the keystore: {0}")]
    Encode(String),
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
                            .map_err(|e| KeystoreError::Encode(e.to_string()))?,
                        Entry::Trusted { alias, cert } => {
                            store.add_trusted_cert(alias, now, cert.clone())
                        }
                    }
                }
                store
                    .to_bytes(password.expose())
                    .map_err(|e| KeystoreError::Encode(e.to_string()))
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
            None => Err(KeystoreError::NotAKeystore(describe_start(bytes))),
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
        other => KeystoreError::Corrupt(other.to_string()),
    }
}

fn describe_start(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "the file is empty".into();
    }
    if bytes.starts_with(b"-----BEGIN") {
        return "it is a PEM file".into();
    }
    let head: Vec<String> = bytes.iter().take(4).map(|b| format!("{b:02X}")).collect();
    format!("it starts with {}", head.join(" "))
}
