//! JKS codec: bytes in, bytes out. Never opens files.
//!
//! Reads and writes the Sun `JKS` keystore format (`KeyStore.getInstance("JKS")`,
//! `keytool -storetype JKS`), which WSO2 API Manager still uses by default.
//!
//! # Format (all integers big-endian)
//!
//! ```text
//! u32 magic 0xFEEDFEED | u32 version (2; 1 is read too) | u32 entry count
//! entry: u32 tag | UTF alias | u64 timestamp (ms since the Unix epoch)
//!   tag 1 (private key): u32 len + DER EncryptedPrivateKeyInfo | u32 chain count
//!                        | per cert: UTF "X.509" (version 2 only) | u32 len + DER
//!   tag 2 (trusted cert): UTF "X.509" (version 2 only) | u32 len + DER
//! trailer: SHA-1( UTF-16BE(store password) || "Mighty Aphrodite" || all bytes before it )
//! ```
//!
//! `UTF` is Java's `DataOutput.writeUTF`: a u16 byte length followed by "modified UTF-8"
//! (NUL as `C0 80`, characters outside the BMP as two 3-byte surrogates).
//!
//! The EncryptedPrivateKeyInfo uses Sun's proprietary `KeyProtector`
//! (OID 1.3.6.1.4.1.42.2.17.1.1, NULL parameters). Its OCTET STRING holds
//! `salt (20) || PKCS#8 XOR keystream || SHA-1(pw || PKCS#8) (20)` where `pw` is the
//! key password as UTF-16BE and the keystream is `d1 || d2 || …` with
//! `d1 = SHA-1(pw || salt)`, `d(i+1) = SHA-1(pw || d(i))`.
//!
//! # Aliases
//!
//! Java's JKS implementation lower-cases every alias when it loads a store and on every
//! lookup, so an upper-case alias in the file is only reachable under its lower-case
//! name. [`JksKeyStore::add_private_key`] and [`JksKeyStore::add_trusted_cert`]
//! therefore **lower-case** the alias they are given (and, like `KeyStore.setEntry`,
//! replace an existing entry with the same alias). Aliases read from a file are kept
//! exactly as stored.
//!
//! # De-risking notes
//!
//! * Every detail above was checked against real `keytool` (JDK 17) output by
//!   `tests/it/jks_interop.rs`: keytool-written stores (RSA and EC keys, key password
//!   different from the store password, non-ASCII passwords, trusted certs, a chain of 2)
//!   are read, verified, decrypted and re-encoded byte for byte; stores written here are
//!   listed by keytool and converted by it to PKCS#12, which requires keytool to decrypt
//!   our protected keys.
//! * Passwords are hashed as UTF-16 code units, exactly like Java's `char[]`, so
//!   non-ASCII passwords interoperate (keytool must read them with a UTF-8 locale).
//! * Parsing is bounds-checked throughout: every length is checked against the bytes that
//!   are actually left before anything is sliced or allocated, so a truncated or hostile
//!   file gives [`JksError::Truncated`] or [`JksError::Corrupt`] with a byte offset and
//!   never a panic or a huge allocation. The structure is parsed before the integrity
//!   trailer is checked, so a damaged file reports where it is damaged instead of a
//!   misleading "wrong password".
//! * Certificates are carried as opaque DER; they are not parsed here.
//! * Not supported: JCEKS (magic 0xCECECECE) and secret-key entries (tag 3), which are
//!   JCEKS-only; both give a clear error. Bytes after the trailer are rejected (Java
//!   ignores them) so appended data is noticed.
//! * JKS key protection is weak (SHA-1 keystream, no work factor); the format is used here
//!   only because WSO2 expects it.

use sha1::{Digest, Sha1};
use std::fmt;
use zeroize::{Zeroize, Zeroizing};

const MAGIC: [u8; 4] = [0xFE, 0xED, 0xFE, 0xED];
const JCEKS_MAGIC: [u8; 4] = [0xCE, 0xCE, 0xCE, 0xCE];
const VERSION: u32 = 2;
const TAG_PRIVATE_KEY: u32 = 1;
const TAG_TRUSTED_CERT: u32 = 2;
const TAG_SECRET_KEY: u32 = 3;
const CERT_TYPE: &str = "X.509";
const WHITENER: &[u8] = b"Mighty Aphrodite";
const SALT_LEN: usize = 20;
const DIGEST_LEN: usize = 20;
/// DER contents of OID 1.3.6.1.4.1.42.2.17.1.1 (Sun JKS KeyProtector).
const KEY_PROTECTOR_OID: [u8; 10] = [0x2B, 0x06, 0x01, 0x04, 0x01, 0x2A, 0x02, 0x11, 0x01, 0x01];

/// Errors from reading or writing a JKS keystore. No message contains a password.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JksError {
    /// The bytes are not a JKS keystore; the text says what they look like instead.
    #[error("not a JKS keystore: the data looks like {0}")]
    NotJks(String),
    /// A version other than 1 and 2.
    #[error("unsupported JKS version {0} (only versions 1 and 2 exist)")]
    UnsupportedVersion(u32),
    /// The data ends early.
    #[error("keystore data is truncated at byte offset {offset} (reading {what})")]
    Truncated {
        /// Where.
        offset: usize,
        /// What was being read.
        what: &'static str,
    },
    /// The data does not parse.
    #[error("keystore data is corrupt at byte offset {offset}: {reason}")]
    Corrupt {
        /// Where.
        offset: usize,
        /// Why.
        reason: JksDamage,
    },
    /// The store's integrity check failed.
    #[error("keystore password is incorrect, or the file was tampered with")]
    WrongPassword,
    /// A key's integrity check failed.
    #[error("key password is incorrect, or the protected key was tampered with")]
    WrongKeyPassword,
    /// The protected key uses an algorithm other than Sun's JKS KeyProtector.
    #[error("unsupported key protection algorithm (OID {0}); JKS uses 1.3.6.1.4.1.42.2.17.1.1")]
    UnsupportedKeyProtection(String),
    /// An entry cannot be written (bad key, empty chain, alias too long, duplicate alias…).
    #[error("invalid keystore entry: {0}")]
    InvalidEntry(EntryProblem),
    /// The OS random number generator failed.
    #[error("could not obtain random bytes for the key salt: {0}")]
    Random(getrandom::Error),
}

/// Why JKS data does not parse ([`JksError::Corrupt`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JksDamage {
    /// A secret-key entry: JCEKS, not JKS.
    #[error("secret-key entry (tag 3) exists only in JCEKS, which is not supported")]
    SecretKeyEntry,
    /// An entry tag other than 1 (private key), 2 (trusted certificate) or 3.
    #[error("unknown entry tag {0}")]
    UnknownEntryTag(u32),
    /// Bytes after the integrity digest.
    #[error("{0} unexpected bytes after the integrity digest")]
    AfterDigest(usize),
    /// A protected key too short to hold its salt and check digest.
    #[error("protected key is shorter than salt and check digest")]
    ShortProtectedKey,
    /// A string that is not Java's modified UTF-8.
    #[error("{what} is not valid modified UTF-8")]
    NotModifiedUtf8 {
        /// What was being read.
        what: &'static str,
    },
    /// A certificate type other than X.509.
    #[error("unsupported certificate type {0:?}")]
    CertificateType(String),
    /// Another DER tag than the structure needs.
    #[error("{what}: expected DER tag {expected:#04x}, found {found:#04x}")]
    DerTag {
        /// What was being read.
        what: &'static str,
        /// The tag needed.
        expected: u8,
        /// The tag found.
        found: u8,
    },
    /// A DER length form this reader does not take.
    #[error("{what}: unsupported DER length byte {first:#04x}")]
    DerLength {
        /// What was being read.
        what: &'static str,
        /// The first length byte.
        first: u8,
    },
    /// Bytes after the end of a DER structure.
    #[error("{extra} unexpected bytes at the end of {what}")]
    AfterDer {
        /// How many.
        extra: usize,
        /// The structure.
        what: &'static str,
    },
}

/// Why an entry cannot be written ([`JksError::InvalidEntry`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EntryProblem {
    /// A private key without certificates.
    #[error("private key {0:?} has an empty certificate chain")]
    EmptyChain(String),
    /// Two entries whose aliases differ only in case.
    #[error("duplicate alias {0:?} (JKS aliases are case-insensitive)")]
    DuplicateAlias(String),
    /// The private key is not PKCS#8 DER.
    #[error("private key is not a single DER SEQUENCE (PKCS#8)")]
    NotPkcs8,
    /// A count or length over JKS's 32-bit fields.
    #[error("{what} {n} exceeds 2^32-1")]
    TooLarge {
        /// What.
        what: String,
        /// Its size.
        n: usize,
    },
    /// An alias over 65,535 bytes (modified UTF-8).
    #[error("alias is {0} bytes; JKS allows 65535")]
    AliasTooLong(usize),
}

/// An in-memory JKS keystore. Entries are written in the order of `entries`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JksKeyStore {
    /// The entries.
    pub entries: Vec<JksEntry>,
}

/// One JKS entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JksEntry {
    /// A protected private key with its chain.
    PrivateKey {
        /// The alias.
        alias: String,
        /// Creation time, milliseconds since the epoch.
        timestamp_ms: u64,
        /// The encrypted private key; see [`ProtectedKey::decrypt`].
        key: ProtectedKey,
        /// DER certificates, leaf first.
        chain: Vec<Vec<u8>>,
    },
    /// A trusted certificate.
    TrustedCert {
        /// The alias.
        alias: String,
        /// Creation time, milliseconds since the epoch.
        timestamp_ms: u64,
        /// DER certificate.
        cert: Vec<u8>,
    },
}

/// A private key protected by Sun's JKS KeyProtector: the DER `EncryptedPrivateKeyInfo`
/// exactly as stored in the keystore.
#[derive(Clone, PartialEq, Eq)]
pub struct ProtectedKey {
    der: Vec<u8>,
}

impl JksEntry {
    /// The alias.
    pub fn alias(&self) -> &str {
        match self {
            JksEntry::PrivateKey { alias, .. } | JksEntry::TrustedCert { alias, .. } => alias,
        }
    }

    /// Creation time, milliseconds since the epoch.
    pub fn timestamp_ms(&self) -> u64 {
        match self {
            JksEntry::PrivateKey { timestamp_ms, .. }
            | JksEntry::TrustedCert { timestamp_ms, .. } => *timestamp_ms,
        }
    }
}

/// True if `bytes` starts with the JKS magic `FE ED FE ED`.
pub fn is_jks(bytes: &[u8]) -> bool {
    bytes.starts_with(&MAGIC)
}

impl JksKeyStore {
    /// An empty keystore.
    pub fn new() -> Self {
        Self::default()
    }

    /// The entry whose alias equals `alias` compared case-insensitively, as Java does.
    pub fn get(&self, alias: &str) -> Option<&JksEntry> {
        let alias = alias.to_lowercase();
        self.entries
            .iter()
            .find(|e| e.alias().to_lowercase() == alias)
    }

    /// Adds (or replaces) a private-key entry under the lower-cased `alias`, encrypting the
    /// PKCS#8 DER `pkcs8_der` under `key_password` with a fresh random salt. `chain` is
    /// DER certificates, leaf first, and must not be empty (Java refuses that).
    pub fn add_private_key(
        &mut self,
        alias: &str,
        timestamp_ms: u64,
        pkcs8_der: &[u8],
        key_password: &str,
        chain: Vec<Vec<u8>>,
    ) -> Result<(), JksError> {
        if chain.is_empty() {
            return Err(JksError::InvalidEntry(EntryProblem::EmptyChain(
                alias.to_string(),
            )));
        }
        let key = ProtectedKey::encrypt(pkcs8_der, key_password)?;
        let alias = alias.to_lowercase();
        self.put(JksEntry::PrivateKey {
            alias,
            timestamp_ms,
            key,
            chain,
        });
        Ok(())
    }

    /// Adds (or replaces) a trusted-certificate entry under the lower-cased `alias`.
    pub fn add_trusted_cert(&mut self, alias: &str, timestamp_ms: u64, cert_der: Vec<u8>) {
        let alias = alias.to_lowercase();
        self.put(JksEntry::TrustedCert {
            alias,
            timestamp_ms,
            cert: cert_der,
        });
    }

    fn put(&mut self, entry: JksEntry) {
        match self
            .entries
            .iter_mut()
            .find(|e| e.alias().to_lowercase() == entry.alias())
        {
            Some(slot) => *slot = entry,
            None => self.entries.push(entry),
        }
    }

    /// Serializes the keystore (version 2) with its integrity trailer keyed by
    /// `store_password`. Fails only if `entries` holds something JKS cannot express: an
    /// alias longer than 65535 bytes, two aliases equal ignoring case, or a count or
    /// length that does not fit in a u32.
    pub fn to_bytes(&self, store_password: &str) -> Result<Vec<u8>, JksError> {
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&VERSION.to_be_bytes());
        put_u32(&mut out, self.entries.len(), "entry count")?;
        for entry in &self.entries {
            if !seen.insert(entry.alias().to_lowercase()) {
                return Err(JksError::InvalidEntry(EntryProblem::DuplicateAlias(
                    entry.alias().to_string(),
                )));
            }
            match entry {
                JksEntry::PrivateKey {
                    alias,
                    timestamp_ms,
                    key,
                    chain,
                } => {
                    out.extend_from_slice(&TAG_PRIVATE_KEY.to_be_bytes());
                    put_utf(&mut out, alias)?;
                    out.extend_from_slice(&timestamp_ms.to_be_bytes());
                    put_bytes(&mut out, &key.der, "protected key")?;
                    put_u32(&mut out, chain.len(), "certificate chain length")?;
                    for cert in chain {
                        put_utf(&mut out, CERT_TYPE)?;
                        put_bytes(&mut out, cert, "certificate")?;
                    }
                }
                JksEntry::TrustedCert {
                    alias,
                    timestamp_ms,
                    cert,
                } => {
                    out.extend_from_slice(&TAG_TRUSTED_CERT.to_be_bytes());
                    put_utf(&mut out, alias)?;
                    out.extend_from_slice(&timestamp_ms.to_be_bytes());
                    put_utf(&mut out, CERT_TYPE)?;
                    put_bytes(&mut out, cert, "certificate")?;
                }
            }
        }
        let digest = store_digest(store_password, &out);
        out.extend_from_slice(&digest);
        Ok(out)
    }

    /// Parses a JKS keystore and verifies its integrity trailer with `store_password`.
    /// Protected keys stay encrypted; see [`ProtectedKey::decrypt`].
    pub fn from_bytes(bytes: &[u8], store_password: &str) -> Result<Self, JksError> {
        if !is_jks(bytes) {
            return Err(JksError::NotJks(describe_non_jks(bytes)));
        }
        let mut r = Reader::new(bytes, 0);
        r.take(MAGIC.len(), "magic")?;
        let version = r.u32("version")?;
        if version != 1 && version != 2 {
            return Err(JksError::UnsupportedVersion(version));
        }
        let count = r.u32("entry count")?;
        // No pre-allocation from `count`: every entry consumes input, so a hostile count
        // ends in `Truncated` after at most `bytes.len()` iterations.
        let mut entries = Vec::new();
        for _ in 0..count {
            let tag_offset = r.offset();
            let tag = r.u32("entry tag")?;
            let alias = r.utf("alias")?;
            let timestamp_ms = r.u64("timestamp")?;
            let entry = match tag {
                TAG_PRIVATE_KEY => {
                    let key_offset = r.offset() + 4;
                    let der = r.bytes("protected key")?;
                    parse_epki(der, key_offset)?;
                    let n = r.u32("certificate chain length")?;
                    let mut chain = Vec::new();
                    for _ in 0..n {
                        chain.push(r.cert(version)?);
                    }
                    JksEntry::PrivateKey {
                        alias,
                        timestamp_ms,
                        key: ProtectedKey { der: der.to_vec() },
                        chain,
                    }
                }
                TAG_TRUSTED_CERT => JksEntry::TrustedCert {
                    alias,
                    timestamp_ms,
                    cert: r.cert(version)?,
                },
                TAG_SECRET_KEY => return Err(corrupt(tag_offset, JksDamage::SecretKeyEntry)),
                other => return Err(corrupt(tag_offset, JksDamage::UnknownEntryTag(other))),
            };
            entries.push(entry);
        }
        let body_len = r.offset();
        let trailer = r.take(DIGEST_LEN, "integrity digest")?;
        if !r.rest().is_empty() {
            return Err(corrupt(r.offset(), JksDamage::AfterDigest(r.rest().len())));
        }
        let body = bytes.get(..body_len).unwrap_or_default();
        if !ct_eq(&store_digest(store_password, body), trailer) {
            return Err(JksError::WrongPassword);
        }
        Ok(Self { entries })
    }
}

impl ProtectedKey {
    /// Encrypts PKCS#8 DER (`PrivateKeyInfo`) under `key_password` with a fresh random salt.
    pub fn encrypt(pkcs8_der: &[u8], key_password: &str) -> Result<Self, JksError> {
        let mut r = Reader::new(pkcs8_der, 0);
        let is_sequence = r.der(0x30, "PKCS#8 PrivateKeyInfo").is_ok() && r.rest().is_empty();
        if !is_sequence {
            return Err(JksError::InvalidEntry(EntryProblem::NotPkcs8));
        }
        let mut salt = [0u8; SALT_LEN];
        getrandom::fill(&mut salt).map_err(JksError::Random)?;
        Ok(Self::encrypt_with_salt(pkcs8_der, key_password, salt))
    }

    fn encrypt_with_salt(plain: &[u8], key_password: &str, salt: [u8; SALT_LEN]) -> Self {
        let pw = password_bytes(key_password);
        let mut blob = Vec::with_capacity(SALT_LEN + plain.len() + DIGEST_LEN);
        blob.extend_from_slice(&salt);
        blob.extend_from_slice(plain);
        if let Some(body) = blob.get_mut(SALT_LEN..) {
            apply_keystream(&pw, &salt, body);
        }
        blob.extend_from_slice(&sha1_of(&[&pw, plain]));

        let mut alg = der_tlv(0x06, &KEY_PROTECTOR_OID);
        alg.extend_from_slice(&[0x05, 0x00]);
        let mut content = der_tlv(0x30, &alg);
        content.extend_from_slice(&der_tlv(0x04, &blob));
        Self {
            der: der_tlv(0x30, &content),
        }
    }

    /// Wraps a DER `EncryptedPrivateKeyInfo` taken from a JKS file.
    pub fn from_der(der: Vec<u8>) -> Self {
        Self { der }
    }

    /// The DER `EncryptedPrivateKeyInfo` as stored in the keystore.
    pub fn as_der(&self) -> &[u8] {
        &self.der
    }

    /// Decrypts the key, returning the PKCS#8 DER `PrivateKeyInfo`. Error offsets are
    /// relative to the start of [`Self::as_der`].
    pub fn decrypt(&self, key_password: &str) -> Result<Zeroizing<Vec<u8>>, JksError> {
        let (oid, blob) = parse_epki(&self.der, 0)?;
        if oid != KEY_PROTECTOR_OID {
            return Err(JksError::UnsupportedKeyProtection(oid_to_string(oid)));
        }
        let too_short = || corrupt(0, JksDamage::ShortProtectedKey);
        let (salt, rest) = blob.split_first_chunk::<SALT_LEN>().ok_or_else(too_short)?;
        let (encrypted, check) = rest
            .split_last_chunk::<DIGEST_LEN>()
            .ok_or_else(too_short)?;
        let pw = password_bytes(key_password);
        let mut plain = Zeroizing::new(encrypted.to_vec());
        apply_keystream(&pw, salt, &mut plain);
        if !ct_eq(&sha1_of(&[&pw, &plain]), check) {
            return Err(JksError::WrongKeyPassword);
        }
        Ok(plain)
    }
}

impl fmt::Debug for ProtectedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProtectedKey")
            .field("der_len", &self.der.len())
            .finish_non_exhaustive()
    }
}

/// Says what non-JKS bytes look like, for [`JksError::NotJks`].
fn describe_non_jks(bytes: &[u8]) -> String {
    match bytes {
        [] => "an empty file".into(),
        _ if bytes.starts_with(&JCEKS_MAGIC) => {
            "a JCEKS keystore (magic CECECECE), which is not supported; convert it with \
             `keytool -importkeystore -deststoretype JKS` (or PKCS12)"
                .into()
        }
        [0x30, ..] => "a PKCS#12 file (DER SEQUENCE, first byte 0x30)".into(),
        _ if bytes.starts_with(b"-----BEGIN") => "PEM text".into(),
        _ => {
            let head: Vec<String> = bytes.iter().take(4).map(|b| format!("{b:02X}")).collect();
            format!(
                "unknown data (first bytes {}, expected FE ED FE ED)",
                head.join(" ")
            )
        }
    }
}

/// Key/store password as Java hashes it: each UTF-16 code unit big-endian.
fn password_bytes(password: &str) -> Zeroizing<Vec<u8>> {
    Zeroizing::new(password.encode_utf16().flat_map(u16::to_be_bytes).collect())
}

fn store_digest(store_password: &str, body: &[u8]) -> [u8; DIGEST_LEN] {
    sha1_of(&[&password_bytes(store_password), WHITENER, body])
}

fn sha1_of(parts: &[&[u8]]) -> [u8; DIGEST_LEN] {
    let mut h = Sha1::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// XORs `data` with the KeyProtector keystream for `pw` and `salt`.
fn apply_keystream(pw: &[u8], salt: &[u8], data: &mut [u8]) {
    let mut block = sha1_of(&[pw, salt]);
    for chunk in data.chunks_mut(DIGEST_LEN) {
        chunk.iter_mut().zip(block).for_each(|(b, k)| *b ^= k);
        block = sha1_of(&[pw, &block]);
    }
    block.zeroize();
}

fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn corrupt(offset: usize, reason: JksDamage) -> JksError {
    JksError::Corrupt { offset, reason }
}

/// Parses `SEQUENCE { SEQUENCE { OID, NULL? }, OCTET STRING }` and returns the OID contents
/// and the octet string, which is checked to hold at least a salt and a digest.
fn parse_epki(der: &[u8], base: usize) -> Result<(&[u8], &[u8]), JksError> {
    let mut outer = Reader::new(der, base);
    let mut epki = outer.der(0x30, "EncryptedPrivateKeyInfo")?;
    outer.expect_end("EncryptedPrivateKeyInfo")?;
    let mut alg = epki.der(0x30, "AlgorithmIdentifier")?;
    let oid = alg.der(0x06, "algorithm OID")?.rest();
    if !alg.rest().is_empty() {
        let params = alg.der(0x05, "NULL algorithm parameters")?;
        params.expect_end("NULL algorithm parameters")?;
    }
    alg.expect_end("AlgorithmIdentifier")?;
    let data_offset = epki.offset();
    let data = epki.der(0x04, "encrypted key")?.rest();
    epki.expect_end("EncryptedPrivateKeyInfo")?;
    if data.len() < SALT_LEN + DIGEST_LEN {
        return Err(corrupt(data_offset, JksDamage::ShortProtectedKey));
    }
    Ok((oid, data))
}

fn oid_to_string(oid: &[u8]) -> String {
    let mut arcs: Vec<u64> = Vec::new();
    let mut value: u64 = 0;
    for &b in oid {
        if value > u64::MAX >> 7 {
            return format!("with DER bytes {oid:02X?}");
        }
        value = (value << 7) | u64::from(b & 0x7F);
        if b & 0x80 == 0 {
            if arcs.is_empty() {
                let first = (value / 40).min(2);
                arcs.extend([first, value - first * 40]);
            } else {
                arcs.push(value);
            }
            value = 0;
        }
    }
    arcs.iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(".")
}

/// A DER TLV with a definite length (short or long form).
fn der_tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let len = content.len();
    let len_bytes = len.to_be_bytes();
    let skip = len_bytes.iter().take_while(|&&b| b == 0).count();
    let mut out = vec![tag];
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let significant = len_bytes.get(skip..).unwrap_or_default();
        out.push(0x80 | significant.len() as u8);
        out.extend_from_slice(significant);
    }
    out.extend_from_slice(content);
    out
}

fn put_u32(out: &mut Vec<u8>, n: usize, what: &str) -> Result<(), JksError> {
    let n = u32::try_from(n).map_err(|_| {
        JksError::InvalidEntry(EntryProblem::TooLarge {
            what: what.to_string(),
            n,
        })
    })?;
    out.extend_from_slice(&n.to_be_bytes());
    Ok(())
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8], what: &'static str) -> Result<(), JksError> {
    put_u32(out, bytes.len(), &format!("{what} length"))?;
    out.extend_from_slice(bytes);
    Ok(())
}

/// Java `DataOutput.writeUTF`: u16 length + modified UTF-8.
fn put_utf(out: &mut Vec<u8>, s: &str) -> Result<(), JksError> {
    let mut enc = Vec::with_capacity(s.len());
    for unit in s.encode_utf16() {
        match unit {
            0x0001..=0x007F => enc.push(unit as u8),
            0x0000 | 0x0080..=0x07FF => {
                enc.extend([0xC0 | (unit >> 6) as u8, 0x80 | (unit & 0x3F) as u8])
            }
            _ => enc.extend([
                0xE0 | (unit >> 12) as u8,
                0x80 | ((unit >> 6) & 0x3F) as u8,
                0x80 | (unit & 0x3F) as u8,
            ]),
        }
    }
    let len = u16::try_from(enc.len())
        .map_err(|_| JksError::InvalidEntry(EntryProblem::AliasTooLong(enc.len())))?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&enc);
    Ok(())
}

/// Bounds-checked cursor; reported offsets are `base + position`.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    base: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8], base: usize) -> Self {
        Self { buf, pos: 0, base }
    }

    fn offset(&self) -> usize {
        self.base + self.pos
    }

    fn rest(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or_default()
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], JksError> {
        let slice = self
            .pos
            .checked_add(n)
            .and_then(|end| self.buf.get(self.pos..end));
        let slice = slice.ok_or(JksError::Truncated {
            offset: self.offset(),
            what,
        })?;
        self.pos += n;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], JksError> {
        let offset = self.offset();
        self.take(N, what)?
            .try_into()
            .map_err(|_| JksError::Truncated { offset, what })
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, JksError> {
        self.array(what).map(u32::from_be_bytes)
    }

    fn u64(&mut self, what: &'static str) -> Result<u64, JksError> {
        self.array(what).map(u64::from_be_bytes)
    }

    fn bytes(&mut self, what: &'static str) -> Result<&'a [u8], JksError> {
        let offset = self.offset();
        let len = usize::try_from(self.u32(what)?).ok();
        len.and_then(|len| self.take(len, what).ok())
            .ok_or(JksError::Truncated { offset, what })
    }

    /// Java `DataInput.readUTF` (modified UTF-8, as lenient as Java about overlong forms).
    fn utf(&mut self, what: &'static str) -> Result<String, JksError> {
        let offset = self.offset();
        let len = usize::from(u16::from_be_bytes(self.array(what)?));
        let raw = self.take(len, what)?;
        let bad = || corrupt(offset, JksDamage::NotModifiedUtf8 { what });
        let mut units = Vec::with_capacity(len);
        let mut it = raw.iter().copied();
        let cont = |it: &mut dyn Iterator<Item = u8>| match it.next() {
            Some(b @ 0x80..=0xBF) => Ok(u16::from(b & 0x3F)),
            _ => Err(bad()),
        };
        while let Some(b) = it.next() {
            let unit = match b {
                0x00..=0x7F => u16::from(b),
                0xC0..=0xDF => (u16::from(b & 0x1F) << 6) | cont(&mut it)?,
                0xE0..=0xEF => (u16::from(b & 0x0F) << 12) | (cont(&mut it)? << 6) | cont(&mut it)?,
                _ => return Err(bad()),
            };
            units.push(unit);
        }
        String::from_utf16(&units).map_err(|_| bad())
    }

    /// One certificate: type string (version 2 only) and length-prefixed DER.
    fn cert(&mut self, version: u32) -> Result<Vec<u8>, JksError> {
        if version == 2 {
            let offset = self.offset();
            let cert_type = self.utf("certificate type")?;
            if cert_type != CERT_TYPE {
                return Err(corrupt(offset, JksDamage::CertificateType(cert_type)));
            }
        }
        Ok(self.bytes("certificate")?.to_vec())
    }

    /// One DER TLV with the given tag; returns a reader over its contents.
    fn der(&mut self, tag: u8, what: &'static str) -> Result<Reader<'a>, JksError> {
        let offset = self.offset();
        let [found] = self.array::<1>(what)?;
        if found != tag {
            return Err(corrupt(
                offset,
                JksDamage::DerTag {
                    what,
                    expected: tag,
                    found,
                },
            ));
        }
        let [first] = self.array::<1>(what)?;
        let len = match first {
            0..=0x7F => usize::from(first),
            0x81..=0x84 => self
                .take(usize::from(first & 0x7F), what)?
                .iter()
                .fold(0usize, |acc, &b| (acc << 8) | usize::from(b)),
            _ => return Err(corrupt(offset, JksDamage::DerLength { what, first })),
        };
        let content_offset = self.offset();
        Ok(Reader::new(self.take(len, what)?, content_offset))
    }

    fn expect_end(&self, what: &'static str) -> Result<(), JksError> {
        match self.rest().len() {
            0 => Ok(()),
            n => Err(corrupt(
                self.offset(),
                JksDamage::AfterDer { extra: n, what },
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake PKCS#8 SEQUENCE of `len` content bytes (long-form length when >= 128).
    fn fake_pkcs8(len: usize) -> Vec<u8> {
        der_tlv(
            0x30,
            &(0..len).map(|i| (i * 7 + 3) as u8).collect::<Vec<_>>(),
        )
    }

    fn sample() -> JksKeyStore {
        let mut ks = JksKeyStore::new();
        let chain = vec![vec![0x30, 0x03, 1, 2, 3], vec![0x30, 0x01, 9]];
        ks.add_private_key(
            "Server-Key",
            1_700_000_000_123,
            &fake_pkcs8(300),
            "key-pw",
            chain,
        )
        .unwrap();
        ks.add_private_key(
            "k2",
            42,
            &fake_pkcs8(18),
            "pässwörd-ü😀",
            vec![vec![0x30, 0]],
        )
        .unwrap();
        ks.add_trusted_cert("CA\u{0}é中😀", 7, vec![0x30, 0x02, 5, 6]);
        ks
    }

    #[test]
    fn round_trip_is_exact() {
        let ks = sample();
        let bytes = ks.to_bytes("store-pw").unwrap();
        assert!(is_jks(&bytes));
        let back = JksKeyStore::from_bytes(&bytes, "store-pw").unwrap();
        assert_eq!(back, ks);
        assert_eq!(back.to_bytes("store-pw").unwrap(), bytes);
        let aliases: Vec<_> = back.entries.iter().map(JksEntry::alias).collect();
        assert_eq!(aliases, ["server-key", "k2", "ca\u{0}é中😀"]);
        assert!(back.get("SERVER-KEY").is_some());
        let JksEntry::PrivateKey {
            key,
            chain,
            timestamp_ms,
            ..
        } = &back.entries[0]
        else {
            panic!()
        };
        assert_eq!((chain.len(), *timestamp_ms), (2, 1_700_000_000_123));
        assert_eq!(*key.decrypt("key-pw").unwrap(), fake_pkcs8(300));
        let JksEntry::PrivateKey { key, .. } = &back.entries[1] else {
            panic!()
        };
        assert_eq!(*key.decrypt("pässwörd-ü😀").unwrap(), fake_pkcs8(18));
    }

    #[test]
    fn keystream_lengths_around_block_boundaries() {
        for len in [0, 1, 17, 18, 19, 20, 38, 120, 126, 127, 128, 1000] {
            let plain = fake_pkcs8(len);
            let key = ProtectedKey::encrypt(&plain, "pw").unwrap();
            assert_eq!(*key.decrypt("pw").unwrap(), plain, "len {len}");
            assert_ne!(
                key.as_der(),
                ProtectedKey::encrypt(&plain, "pw").unwrap().as_der(),
                "fresh salt"
            );
        }
    }

    #[test]
    fn modified_utf8_encoding() {
        let mut out = Vec::new();
        put_utf(&mut out, "a\u{0}é中😀").unwrap();
        let expected = [
            0, 14, b'a', 0xC0, 0x80, 0xC3, 0xA9, 0xE4, 0xB8, 0xAD, 0xED, 0xA0, 0xBD, 0xED, 0xB8,
            0x80,
        ];
        assert_eq!(out, expected);
        assert_eq!(Reader::new(&out, 0).utf("alias").unwrap(), "a\u{0}é中😀");
        assert!(put_utf(&mut Vec::new(), &"x".repeat(65536)).is_err());
    }

    #[test]
    fn reads_version_1_without_cert_type() {
        let mut v1 = MAGIC.to_vec();
        v1.extend(1u32.to_be_bytes());
        v1.extend(1u32.to_be_bytes());
        v1.extend(TAG_TRUSTED_CERT.to_be_bytes());
        put_utf(&mut v1, "old").unwrap();
        v1.extend(5u64.to_be_bytes());
        put_bytes(&mut v1, &[0x30, 0], "certificate").unwrap();
        let digest = store_digest("pw", &v1);
        v1.extend(digest);
        let ks = JksKeyStore::from_bytes(&v1, "pw").unwrap();
        let expected = JksEntry::TrustedCert {
            alias: "old".into(),
            timestamp_ms: 5,
            cert: vec![0x30, 0],
        };
        assert_eq!(ks.entries, [expected]);
    }

    #[test]
    fn every_truncation_is_an_error() {
        let bytes = sample().to_bytes("store-pw").unwrap();
        for len in 0..bytes.len() {
            assert!(
                JksKeyStore::from_bytes(&bytes[..len], "store-pw").is_err(),
                "prefix {len}"
            );
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(matches!(
            JksKeyStore::from_bytes(&longer, "store-pw"),
            Err(JksError::Corrupt { .. })
        ));
    }

    #[test]
    fn every_flipped_byte_is_an_error() {
        let bytes = sample().to_bytes("store-pw").unwrap();
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x01;
            assert!(
                JksKeyStore::from_bytes(&bad, "store-pw").is_err(),
                "byte {i}"
            );
        }
    }

    #[test]
    fn hostile_lengths_do_not_allocate_or_panic() {
        let mut head = MAGIC.to_vec();
        head.extend(2u32.to_be_bytes());
        let mut huge_count = head.clone();
        huge_count.extend(u32::MAX.to_be_bytes());
        assert!(matches!(
            JksKeyStore::from_bytes(&huge_count, "pw"),
            Err(JksError::Truncated { offset: 12, .. })
        ));
        let mut huge_cert = head.clone();
        huge_cert.extend(1u32.to_be_bytes());
        huge_cert.extend(TAG_TRUSTED_CERT.to_be_bytes());
        put_utf(&mut huge_cert, "a").unwrap();
        huge_cert.extend(0u64.to_be_bytes());
        put_utf(&mut huge_cert, CERT_TYPE).unwrap();
        huge_cert.extend(u32::MAX.to_be_bytes());
        let err = JksKeyStore::from_bytes(&huge_cert, "pw").unwrap_err();
        assert!(
            matches!(
                err,
                JksError::Truncated {
                    offset: 34,
                    what: "certificate"
                }
            ),
            "{err:?}"
        );
        let mut v3 = MAGIC.to_vec();
        v3.extend(3u32.to_be_bytes());
        assert!(matches!(
            JksKeyStore::from_bytes(&v3, "pw"),
            Err(JksError::UnsupportedVersion(3))
        ));
        let bad_key = ProtectedKey::from_der(vec![0x30, 0x84, 0xFF, 0xFF, 0xFF, 0xFF]);
        assert!(matches!(
            bad_key.decrypt("pw"),
            Err(JksError::Truncated { .. })
        ));
    }

    #[test]
    fn wrong_passwords() {
        let bytes = sample().to_bytes("store-pw").unwrap();
        let err = JksKeyStore::from_bytes(&bytes, "Store-pw").unwrap_err();
        assert!(matches!(err, JksError::WrongPassword));
        assert!(!format!("{err} {err:?}").contains("store-pw"));
        let ks = JksKeyStore::from_bytes(&bytes, "store-pw").unwrap();
        let JksEntry::PrivateKey { key, .. } = &ks.entries[0] else {
            panic!()
        };
        assert!(matches!(
            key.decrypt("store-pw"),
            Err(JksError::WrongKeyPassword)
        ));
        assert!(!format!("{key:?}").contains("0x") && format!("{key:?}").contains("der_len"));
    }

    #[test]
    fn not_jks() {
        let describe = |b: &[u8]| JksKeyStore::from_bytes(b, "pw").unwrap_err().to_string();
        assert!(describe(&[0x30, 0x82, 0x0A, 0x2B, 0x02, 0x01, 0x03]).contains("PKCS#12"));
        assert!(describe(&[0xCE, 0xCE, 0xCE, 0xCE, 0, 0, 0, 2]).contains("JCEKS"));
        assert!(describe(b"-----BEGIN CERTIFICATE-----").contains("PEM"));
        assert!(describe(b"").contains("empty"));
        assert!(describe(b"PK\x03\x04").contains("50 4B 03 04"));
        assert!(!is_jks(&[0xFE, 0xED, 0xFE]));
    }

    #[test]
    fn entry_rules() {
        let mut ks = sample();
        ks.add_trusted_cert("SERVER-key", 1, vec![0x30, 0]);
        assert_eq!(ks.entries.len(), 3, "same alias replaces");
        assert!(matches!(ks.entries[0], JksEntry::TrustedCert { .. }));
        assert!(ks
            .add_private_key("x", 0, &fake_pkcs8(5), "pw", vec![])
            .is_err());
        assert!(ks
            .add_private_key("x", 0, b"\x30\x00junk", "pw", vec![vec![0x30, 0]])
            .is_err());
        ks.entries.push(JksEntry::TrustedCert {
            alias: "CA\u{0}É中😀".into(),
            timestamp_ms: 0,
            cert: vec![],
        });
        assert!(matches!(ks.to_bytes("pw"), Err(JksError::InvalidEntry(_))));
    }

    #[test]
    fn foreign_protection_oid_is_named() {
        let mut der = ProtectedKey::encrypt(&fake_pkcs8(10), "pw").unwrap().der;
        let pos = der
            .windows(KEY_PROTECTOR_OID.len())
            .position(|w| w == KEY_PROTECTOR_OID)
            .unwrap();
        der[pos + 7] = 0x13; // 1.3.6.1.4.1.42.2.19.1 (JCEKS' PBEWithMD5AndTripleDES) with a trailing .1
        let err = ProtectedKey::from_der(der).decrypt("pw").unwrap_err();
        assert!(
            err.to_string().contains("(OID 1.3.6.1.4.1.42.2.19.1.1)"),
            "{err}"
        );
    }

    #[test]
    fn damage_and_entry_problems_are_typed_with_their_texts() {
        let mut bytes = vec![0xfe, 0xed, 0xfe, 0xed, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 99];
        bytes.extend([0u8; 20]);
        let err = JksKeyStore::from_bytes(&bytes, "pw").unwrap_err();
        let damage = JksDamage::UnknownEntryTag(99);
        assert!(matches!(&err, JksError::Corrupt { offset: 12, reason } if *reason == damage));
        let text = "keystore data is corrupt at byte offset 12: unknown entry tag 99";
        assert_eq!(err.to_string(), text);
        let mut ks = JksKeyStore::new();
        for alias in ["CA", "ca"] {
            let (alias, cert) = (alias.to_string(), fake_pkcs8(8));
            let timestamp_ms = 0;
            ks.entries.push(JksEntry::TrustedCert {
                alias,
                timestamp_ms,
                cert,
            });
        }
        let err = ks.to_bytes("pw").unwrap_err();
        let problem = EntryProblem::DuplicateAlias("ca".into());
        assert!(matches!(&err, JksError::InvalidEntry(p) if *p == problem));
        let text =
            "invalid keystore entry: duplicate alias \"ca\" (JKS aliases are case-insensitive)";
        assert_eq!(err.to_string(), text);
    }
}
