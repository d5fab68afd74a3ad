//! Keys, the CA and certificate issuance: the only module that calls rcgen.
//!
//! Every certificate gets a random positive 128-bit serial, a SHA-256 (or stronger) signature,
//! a not_before five minutes in the past and a not_after capped at the issuer's. Knows nothing of
//! files or keystores.

pub(crate) mod der;
pub(crate) mod engine;
pub(crate) mod info;

use std::fmt;
use std::net::IpAddr;

use rayon::prelude::*;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyUsagePurpose, SanType, SerialNumber,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use time::{Duration, OffsetDateTime};
use zeroize::Zeroizing;

use crate::topology::{KeyType, PkiSettings};
pub use info::CertInfo;

/// Why a key or certificate could not be made or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PkiError {
    /// Key generation failed in the crypto library.
    #[error("could not generate a {key_type} key: {source}")]
    KeyGeneration {
        /// The key type asked for.
        key_type: KeyType,
        /// What the crypto library said.
        #[source]
        source: rcgen::Error,
    },
    /// A private key could not be used.
    #[error("{what}: {problem}")]
    BadKey {
        /// Which key (a file or a role).
        what: String,
        /// Why.
        #[source]
        problem: KeyProblem,
    },
    /// A certificate could not be parsed.
    #[error("{what}: {reason}")]
    BadCertificate {
        /// Which certificate (a file or a role).
        what: String,
        /// Why.
        reason: String,
    },
    /// Signing a certificate failed.
    #[error("could not issue the certificate for {subject}: {problem}")]
    Issue {
        /// The certificate's subject.
        subject: String,
        /// Why.
        #[source]
        problem: IssueProblem,
    },
    /// The PKI engine did not sign (unreachable, refused, ...).
    #[error(transparent)]
    Engine(#[from] engine::EngineError),
    /// A bug in apim-pki (exit 70).
    #[error("{0}")]
    Bug(#[from] crate::error::Bug),
}

/// Why a private key cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyProblem {
    /// A passphrase protects it.
    #[error("the key is protected by a passphrase; apim-pki needs it unencrypted. Decrypt a copy with `openssl pkey -in KEY -out plain.key` (keep it mode 0600) and point pki.ca.key at it")]
    Encrypted,
    /// DER that is no PKCS#8 key.
    #[error("{0}")]
    NotPkcs8(&'static str),
    /// PEM without a private key block.
    #[error("no PEM private key found ({0}); expected PKCS#8, PKCS#1 (RSA) or SEC1 (EC)")]
    NoPemKey(#[source] rustls_pki_types::pem::Error),
    /// The crypto library cannot read it.
    #[error(
        "unsupported or corrupt private key ({0}); apim-pki reads RSA and ECDSA P-256/P-384 keys"
    )]
    Unreadable(#[source] rcgen::Error),
    /// A key type apim-pki does not use.
    #[error(
        "unsupported key type; apim-pki reads RSA (2048–4096 bits) and ECDSA P-256/P-384 keys"
    )]
    UnsupportedType,
    /// The CA key and the CA certificate do not belong together.
    #[error("the CA key does not belong to the CA certificate")]
    NotTheCaKey,
}

/// Why a certificate could not be issued.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IssueProblem {
    /// No serial number: the OS RNG failed.
    #[error("the OS random number generator failed: {0}")]
    Random(getrandom::Error),
    /// The crypto library refused.
    #[error("{0}")]
    Crypto(#[source] rcgen::Error),
    /// The CA has no key here: it signs elsewhere.
    #[error("`{ca}` signs elsewhere: send a CSR (`apim-pki csr`) and import the signed certificate (`apim-pki import-signed`)")]
    SignsElsewhere {
        /// The CA's subject.
        ca: String,
    },
}

/// A private key and the type it was made as. `Debug` never shows key material.
pub struct Key {
    pair: rcgen::KeyPair,
    key_type: KeyType,
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({}, [elided])", self.key_type)
    }
}

impl Key {
    /// Generates a new key from the OS RNG.
    pub fn generate(key_type: KeyType) -> Result<Key, PkiError> {
        #[cfg(test)]
        KEYS_GENERATED.with(|n| n.set(n.get() + 1));
        let err = |source: rcgen::Error| PkiError::KeyGeneration { key_type, source };
        let pair = match key_type {
            KeyType::Rsa2048 => {
                rcgen::KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)
            }
            KeyType::Rsa3072 => {
                rcgen::KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_3072)
            }
            KeyType::Rsa4096 => {
                rcgen::KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_4096)
            }
            KeyType::EcdsaP256 => rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256),
            KeyType::EcdsaP384 => rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384),
        }
        .map_err(err)?;
        Ok(Key { pair, key_type })
    }

    /// Reads a PKCS#8 DER key (as keystores hold them). `what` names it in errors.
    pub fn from_pkcs8_der(der: &[u8], what: &str) -> Result<Key, PkiError> {
        let key = PrivateKeyDer::try_from(der).map_err(|e| PkiError::BadKey {
            what: what.into(),
            problem: KeyProblem::NotPkcs8(e),
        })?;
        Key::from_private_key_der(&key, what)
    }

    /// Reads a PEM key: PKCS#8, PKCS#1 or SEC1. Encrypted keys get a clear error.
    pub fn from_pem(pem: &[u8], what: &str) -> Result<Key, PkiError> {
        let text = String::from_utf8_lossy(pem);
        if text.contains("ENCRYPTED PRIVATE KEY") || text.contains("Proc-Type: 4,ENCRYPTED") {
            return Err(PkiError::BadKey {
                what: what.into(),
                problem: KeyProblem::Encrypted,
            });
        }
        let key = PrivateKeyDer::from_pem_slice(pem).map_err(|e| PkiError::BadKey {
            what: what.into(),
            problem: KeyProblem::NoPemKey(e),
        })?;
        Key::from_private_key_der(&key, what)
    }

    fn from_private_key_der(key: &PrivateKeyDer<'_>, what: &str) -> Result<Key, PkiError> {
        let pair = rcgen::KeyPair::try_from(key).map_err(|e| PkiError::BadKey {
            what: what.into(),
            problem: KeyProblem::Unreadable(e),
        })?;
        let key_type = key_type_of(&pair).ok_or_else(|| PkiError::BadKey {
            what: what.into(),
            problem: KeyProblem::UnsupportedType,
        })?;
        Ok(Key { pair, key_type })
    }

    /// The key's type.
    pub fn key_type(&self) -> KeyType {
        self.key_type
    }

    /// The key as PKCS#8 DER (wiped from memory when dropped).
    pub fn pkcs8_der(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(self.pair.serialize_der())
    }

    /// The key as a PKCS#8 PEM file.
    pub fn pkcs8_pem(&self) -> Zeroizing<String> {
        Zeroizing::new(self.pair.serialize_pem())
    }

    /// The DER SubjectPublicKeyInfo of this key.
    pub fn public_key_der(&self) -> Vec<u8> {
        rcgen::PublicKeyData::subject_public_key_info(&self.pair)
    }
}

fn key_type_of(pair: &rcgen::KeyPair) -> Option<KeyType> {
    let alg = pair.algorithm();
    if alg == &rcgen::PKCS_ECDSA_P256_SHA256 {
        Some(KeyType::EcdsaP256)
    } else if alg == &rcgen::PKCS_ECDSA_P384_SHA384 {
        Some(KeyType::EcdsaP384)
    } else if alg == &rcgen::PKCS_RSA_SHA256
        || alg == &rcgen::PKCS_RSA_SHA384
        || alg == &rcgen::PKCS_RSA_SHA512
    {
        match info::rsa_modulus_bits(pair.public_key_raw())? {
            2048 => Some(KeyType::Rsa2048),
            3072 => Some(KeyType::Rsa3072),
            4096 => Some(KeyType::Rsa4096),
            _ => None,
        }
    } else {
        None
    }
}

#[cfg(test)]
thread_local! {
    /// Keys [`Key::generate`] made on this thread (unit tests prove a plan generates none).
    static KEYS_GENERATED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Keys generated on the calling thread so far (unit tests only; rayon's workers count apart).
#[cfg(test)]
pub(crate) fn keys_generated_on_this_thread() -> usize {
    KEYS_GENERATED.with(std::cell::Cell::get)
}

/// Generates keys in parallel on every core (key generation dominates a run).
pub(crate) fn generate_keys(types: &[KeyType]) -> Result<Vec<Key>, PkiError> {
    types.par_iter().map(|t| Key::generate(*t)).collect()
}

/// The subject of a certificate: CN plus the O / OU / C of `[pki]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    /// The CN.
    pub common_name: String,
    /// The O.
    pub organization: Option<String>,
    /// The OU.
    pub organizational_unit: Option<String>,
    /// The C.
    pub country: Option<String>,
}

impl Subject {
    /// A subject with `common_name` and the organisation fields of `pki`.
    pub fn new(common_name: impl Into<String>, pki: &PkiSettings) -> Subject {
        Subject {
            common_name: common_name.into(),
            organization: pki.organization.clone(),
            organizational_unit: pki.organizational_unit.clone(),
            country: pki.country.clone(),
        }
    }

    fn to_dn(&self) -> DistinguishedName {
        let mut dn = DistinguishedName::new();
        if let Some(c) = &self.country {
            dn.push(DnType::CountryName, c.as_str());
        }
        if let Some(o) = &self.organization {
            dn.push(DnType::OrganizationName, o.as_str());
        }
        if let Some(ou) = &self.organizational_unit {
            dn.push(DnType::OrganizationalUnitName, ou.as_str());
        }
        dn.push(DnType::CommonName, self.common_name.as_str());
        dn
    }
}

/// What a certificate is for: decides key usages and extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A CA: basicConstraints CA:TRUE (critical), keyCertSign + cRLSign.
    Ca,
    /// A node's or load balancer's TLS certificate.
    Tls,
    /// The primary certificate: adds dataEncipherment (WSO2's cipher tool needs it).
    Primary,
}

/// Everything that decides a certificate's content apart from its key and issuer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertSpec {
    /// Its subject.
    pub subject: Subject,
    /// DNS subject alternative names.
    pub dns_names: Vec<String>,
    /// IP subject alternative names.
    pub ip_addresses: Vec<IpAddr>,
    /// What it is for.
    pub role: Role,
    /// Days from now until it expires.
    pub validity_days: u32,
}

impl CertSpec {
    fn params(
        &self,
        now: OffsetDateTime,
        cap: Option<OffsetDateTime>,
    ) -> Result<CertificateParams, PkiError> {
        let mut params = CertificateParams::default();
        params.distinguished_name = self.subject.to_dn();
        params.serial_number = Some(random_serial().map_err(|e| PkiError::Issue {
            subject: self.subject.common_name.clone(),
            problem: IssueProblem::Random(e),
        })?);
        params.not_before = now - Duration::minutes(5);
        let not_after = now + Duration::days(i64::from(self.validity_days));
        params.not_after = cap.map_or(not_after, |cap| not_after.min(cap));
        let mut sans: Vec<SanType> = Vec::new();
        for name in &self.dns_names {
            if let Ok(dns) = name.clone().try_into() {
                sans.push(SanType::DnsName(dns));
            }
        }
        sans.extend(self.ip_addresses.iter().map(|ip| SanType::IpAddress(*ip)));
        params.subject_alt_names = sans;
        match self.role {
            Role::Ca => {
                params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
                params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
            }
            Role::Tls | Role::Primary => {
                params.key_usages = vec![
                    KeyUsagePurpose::DigitalSignature,
                    KeyUsagePurpose::KeyEncipherment,
                ];
                if self.role == Role::Primary {
                    params.key_usages.push(KeyUsagePurpose::DataEncipherment);
                }
                params.extended_key_usages = vec![
                    ExtendedKeyUsagePurpose::ServerAuth,
                    ExtendedKeyUsagePurpose::ClientAuth,
                ];
                params.use_authority_key_identifier_extension = true;
            }
        }
        Ok(params)
    }
}

/// 16 random bytes from the OS RNG, positive and always 16 bytes long.
fn random_serial() -> Result<SerialNumber, getrandom::Error> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)?;
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    Ok(SerialNumber::from_slice(&bytes))
}

/// A CA that issues certificates: its certificate, key, and the chain above it (for a CA you
/// bring, e.g. a corporate intermediate). A corporate CA that signs CSRs elsewhere has no key
/// here: it anchors chains but issues nothing.
pub(crate) struct Ca {
    cert_der: Vec<u8>,
    key: Option<Key>,
    parents: Vec<Vec<u8>>,
    info: CertInfo,
}

impl fmt::Debug for Ca {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Ca({})", self.info.subject)
    }
}

impl Ca {
    /// Creates a self-signed CA from `spec` (its role is forced to [`Role::Ca`]).
    pub(crate) fn create(spec: &CertSpec, key: Key) -> Result<Ca, PkiError> {
        let spec = CertSpec {
            role: Role::Ca,
            ..spec.clone()
        };
        let params = spec.params(OffsetDateTime::now_utc(), None)?;
        let cert = params.self_signed(&key.pair).map_err(|e| PkiError::Issue {
            subject: spec.subject.common_name.clone(),
            problem: IssueProblem::Crypto(e),
        })?;
        Ca::from_parts(cert.der().to_vec(), key, Vec::new(), "the new CA")
    }

    /// Reads a CA from PEM: the certificate (first) with any intermediates after it, and its key.
    pub(crate) fn from_pem(
        cert_pem: &[u8],
        key_pem: &[u8],
        cert_what: &str,
        key_what: &str,
    ) -> Result<Ca, PkiError> {
        let certs: Vec<Vec<u8>> = CertificateDer::pem_slice_iter(cert_pem)
            .map(|c| c.map(|c| c.to_vec()))
            .collect::<Result<_, _>>()
            .map_err(|e| PkiError::BadCertificate {
                what: cert_what.into(),
                reason: format!("not a PEM certificate file ({e})"),
            })?;
        let mut certs = certs.into_iter();
        let cert = certs.next().ok_or_else(|| PkiError::BadCertificate {
            what: cert_what.into(),
            reason: "no CERTIFICATE block found".into(),
        })?;
        let key = Key::from_pem(key_pem, key_what)?;
        Ca::from_parts(cert, key, certs.collect(), cert_what)
    }

    /// Builds a CA from a DER certificate, its key and the chain above it, checking that they fit.
    pub(crate) fn from_parts(
        cert_der: Vec<u8>,
        key: Key,
        parents: Vec<Vec<u8>>,
        what: &str,
    ) -> Result<Ca, PkiError> {
        let info = CertInfo::from_der(&cert_der).map_err(|e| PkiError::BadCertificate {
            what: what.into(),
            reason: e.to_string(),
        })?;
        if !info.is_ca {
            return Err(PkiError::BadCertificate {
                what: what.into(),
                reason: format!(
                    "`{}` is not a CA certificate (no basicConstraints CA:TRUE)",
                    info.subject
                ),
            });
        }
        if info.public_key_der != key.public_key_der() {
            return Err(PkiError::BadKey {
                what: what.into(),
                problem: KeyProblem::NotTheCaKey,
            });
        }
        Ok(Ca {
            cert_der,
            key: Some(key),
            parents,
            info,
        })
    }

    /// A CA known only by its certificate (and the chain above it): it signs elsewhere.
    pub(crate) fn without_key(
        cert_der: Vec<u8>,
        parents: Vec<Vec<u8>>,
        what: &str,
    ) -> Result<Ca, PkiError> {
        let info = CertInfo::from_der(&cert_der).map_err(|e| PkiError::BadCertificate {
            what: what.into(),
            reason: e.to_string(),
        })?;
        Ok(Ca {
            cert_der,
            key: None,
            parents,
            info,
        })
    }

    /// The CA certificate, DER.
    pub(crate) fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// The certificates above this CA (intermediates, then maybe a root), DER.
    pub(crate) fn parents(&self) -> &[Vec<u8>] {
        &self.parents
    }

    /// The CA's key, when apim-pki holds it.
    pub(crate) fn key(&self) -> Option<&Key> {
        self.key.as_ref()
    }

    /// Parsed facts about the CA certificate.
    pub(crate) fn info(&self) -> &CertInfo {
        &self.info
    }

    /// Issues a certificate for `public_key` (the holder's key) under this CA.
    pub(crate) fn issue(&self, spec: &CertSpec, holder: &Key) -> Result<Vec<u8>, PkiError> {
        let err = |problem: IssueProblem| PkiError::Issue {
            subject: spec.subject.common_name.clone(),
            problem,
        };
        let Some(ca_key) = &self.key else {
            return Err(err(IssueProblem::SignsElsewhere {
                ca: self.info.subject.clone(),
            }));
        };
        let params = spec.params(OffsetDateTime::now_utc(), Some(self.info.not_after))?;
        let issuer = rcgen::Issuer::from_ca_cert_der(
            &CertificateDer::from(self.cert_der.as_slice()),
            &ca_key.pair,
        )
        .map_err(|e| err(IssueProblem::Crypto(e)))?;
        let cert = params
            .signed_by(&holder.pair, &issuer)
            .map_err(|e| err(IssueProblem::Crypto(e)))?;
        let der = cert.der().to_vec();
        // rcgen rebuilds the issuer name from a map; put the CA's exact subject bytes back.
        let malformed = || PkiError::Bug(crate::error::Bug::new("rcgen produced malformed DER"));
        let parts = der::cert_parts(&der).ok_or_else(malformed)?;
        if der[parts.issuer.start..parts.issuer.end] == self.info.subject_der[..] {
            return Ok(der);
        }
        der::replace_issuer(&der, &self.info.subject_der, |tbs| {
            rcgen::SigningKey::sign(&ca_key.pair, tbs).map_err(|e| err(IssueProblem::Crypto(e)))
        })
        .ok_or_else(malformed)?
    }
}

/// A self-signed certificate for `key` (the primary, when the CA signs elsewhere).
pub fn self_signed(spec: &CertSpec, key: &Key) -> Result<Vec<u8>, PkiError> {
    let params = spec.params(OffsetDateTime::now_utc(), None)?;
    params
        .self_signed(&key.pair)
        .map(|c| c.der().to_vec())
        .map_err(|e| PkiError::Issue {
            subject: spec.subject.common_name.clone(),
            problem: IssueProblem::Crypto(e),
        })
}

/// A certificate signing request for `key` with `spec`'s subject and names, PEM.
pub(crate) fn csr_pem(spec: &CertSpec, key: &Key) -> Result<String, PkiError> {
    let err = |e: rcgen::Error| PkiError::Issue {
        subject: spec.subject.common_name.clone(),
        problem: IssueProblem::Crypto(e),
    };
    let mut params = spec.params(OffsetDateTime::now_utc(), None)?;
    // The CA chooses serial and validity, and adds its own key identifier.
    params.serial_number = None;
    params.use_authority_key_identifier_extension = false;
    params
        .serialize_request(&key.pair)
        .map_err(err)?
        .pem()
        .map_err(err)
}

#[cfg(test)]
mod error_tests {
    use super::*;

    #[test]
    fn a_key_that_cannot_be_used_says_why_and_keeps_its_cause() {
        let e = Key::from_pem(b"-----BEGIN ENCRYPTED PRIVATE KEY-----\n", "ca.key")
            .expect_err("refused");
        assert!(matches!(
            e,
            PkiError::BadKey {
                problem: KeyProblem::Encrypted,
                ..
            }
        ));
        assert!(e
            .to_string()
            .starts_with("ca.key: the key is protected by a passphrase"));
        let e = Key::from_pem(b"junk", "ca.key").expect_err("refused");
        assert!(
            matches!(
                e,
                PkiError::BadKey {
                    problem: KeyProblem::NoPemKey(_),
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(e.to_string().contains("no PEM private key found ("), "{e}");
        let cause = std::error::Error::source(&e).and_then(std::error::Error::source);
        assert!(
            cause.is_some(),
            "the PEM parser's error is kept as the cause"
        );
        assert_eq!(crate::error::exit_code(&e), crate::error::EXIT_INPUT);
    }
}
