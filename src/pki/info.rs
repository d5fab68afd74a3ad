//! Facts read back from a DER certificate with x509-parser: names, validity, key, fingerprint.
//! Used by inventory, inspect and verify; never trusts what the issuing code intended.

use std::net::IpAddr;

use ::time::OffsetDateTime;
use serde::Serialize;
use sha2::{Digest, Sha256};
use x509_parser::prelude::*;

use crate::topology::KeyType;

/// What a certificate says about itself.
#[derive(Debug, Clone, Serialize)]
pub struct CertInfo {
    /// Subject, RFC 4514 style (`CN=km1.acme.internal, O=Acme Corp`).
    pub subject: String,
    /// Issuer, same style.
    pub issuer: String,
    /// The CN attributes of the subject.
    pub common_names: Vec<String>,
    /// The subject's O, OU and C, when present (first of each).
    pub organization: Option<String>,
    /// The subject's OU.
    pub organizational_unit: Option<String>,
    /// The subject's C.
    pub country: Option<String>,
    /// DNS subject alternative names.
    pub dns_names: Vec<String>,
    /// IP subject alternative names.
    pub ip_addresses: Vec<IpAddr>,
    /// Serial number, lower-case hex.
    pub serial: String,
    /// SHA-256 fingerprint as keytool prints it (upper-case hex, colon separated).
    pub sha256: String,
    /// Start of validity.
    #[serde(with = "::time::serde::rfc3339")]
    pub not_before: OffsetDateTime,
    /// End of validity.
    #[serde(with = "::time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
    /// `RSA 2048`, `EC P-256`, …
    pub key: String,
    /// The key as one of apim-pki's key types, when it is one.
    pub key_type: Option<KeyType>,
    /// RSA modulus or EC field size in bits.
    pub key_bits: usize,
    /// The signature algorithm, e.g. `sha256WithRSAEncryption`.
    pub signature: String,
    /// True when basicConstraints says CA:TRUE.
    pub is_ca: bool,
    /// True when subject and issuer are the same name.
    pub self_issued: bool,
    /// The subject, DER.
    #[serde(skip)]
    pub subject_der: Vec<u8>,
    /// The issuer, DER.
    #[serde(skip)]
    pub issuer_der: Vec<u8>,
    /// The SubjectPublicKeyInfo, DER.
    #[serde(skip)]
    pub public_key_der: Vec<u8>,
}

/// Why bytes are not a certificate [`CertInfo::from_der`] can read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CertParseError {
    /// The DER does not parse as an X.509 certificate.
    #[error("not a valid X.509 certificate ({0})")]
    NotX509(String),
    /// A certificate parsed, with more bytes after it.
    #[error("trailing bytes after the certificate")]
    TrailingBytes,
}

impl CertInfo {
    /// Parses a DER certificate.
    pub fn from_der(der: &[u8]) -> Result<CertInfo, CertParseError> {
        let (rest, cert) =
            X509Certificate::from_der(der).map_err(|e| CertParseError::NotX509(e.to_string()))?;
        if !rest.is_empty() {
            return Err(CertParseError::TrailingBytes);
        }
        let tbs = &cert.tbs_certificate;
        let mut dns_names = Vec::new();
        let mut ip_addresses = Vec::new();
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for name in &san.value.general_names {
                match name {
                    GeneralName::DNSName(d) => dns_names.push(d.to_string()),
                    GeneralName::IPAddress(bytes) => {
                        if let Some(ip) = ip_from_bytes(bytes) {
                            ip_addresses.push(ip);
                        }
                    }
                    _ => {}
                }
            }
        }
        let common_names = tbs
            .subject
            .iter_common_name()
            .filter_map(|cn| cn.as_str().ok().map(str::to_string))
            .collect();
        let first = |it: &mut dyn Iterator<Item = &AttributeTypeAndValue>| {
            it.next().and_then(|a| a.as_str().ok()).map(str::to_string)
        };
        let organization = first(&mut tbs.subject.iter_organization());
        let organizational_unit = first(&mut tbs.subject.iter_organizational_unit());
        let country = first(&mut tbs.subject.iter_country());
        let (key, key_type, key_bits) = describe_key(cert.public_key());
        let is_ca = cert
            .basic_constraints()
            .ok()
            .flatten()
            .is_some_and(|bc| bc.value.ca);
        Ok(CertInfo {
            subject: tbs.subject.to_string(),
            issuer: tbs.issuer.to_string(),
            common_names,
            organization,
            organizational_unit,
            country,
            dns_names,
            ip_addresses,
            serial: hex(tbs.raw_serial()).trim_start_matches("00").to_string(),
            sha256: fingerprint(der),
            not_before: tbs.validity.not_before.to_datetime(),
            not_after: tbs.validity.not_after.to_datetime(),
            key,
            key_type,
            key_bits,
            signature: signature_name(&cert.signature_algorithm.algorithm),
            is_ca,
            self_issued: tbs.subject.as_raw() == tbs.issuer.as_raw(),
            subject_der: tbs.subject.as_raw().to_vec(),
            issuer_der: tbs.issuer.as_raw().to_vec(),
            public_key_der: tbs.subject_pki.raw.to_vec(),
        })
    }

    /// The names a peer can use: DNS SANs then IP SANs, as `DNS:x` / `IP:y`.
    pub fn san_strings(&self) -> Vec<String> {
        self.dns_names
            .iter()
            .map(|d| format!("DNS:{d}"))
            .chain(self.ip_addresses.iter().map(|ip| format!("IP:{ip}")))
            .collect()
    }
}

/// SHA-256 fingerprint of `der` as keytool prints it.
pub(crate) fn fingerprint(der: &[u8]) -> String {
    Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn ip_from_bytes(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes).ok().map(IpAddr::from),
        16 => <[u8; 16]>::try_from(bytes).ok().map(IpAddr::from),
        _ => None,
    }
}

fn describe_key(spki: &SubjectPublicKeyInfo) -> (String, Option<KeyType>, usize) {
    match spki.parsed() {
        Ok(x509_parser::public_key::PublicKey::RSA(rsa)) => {
            let bits = rsa.key_size();
            let key_type = match bits {
                2048 => Some(KeyType::Rsa2048),
                3072 => Some(KeyType::Rsa3072),
                4096 => Some(KeyType::Rsa4096),
                _ => None,
            };
            (format!("RSA {bits}"), key_type, bits)
        }
        Ok(x509_parser::public_key::PublicKey::EC(ec)) => {
            let bits = ec.key_size();
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|oid| oid.to_id_string());
            match curve.as_deref() {
                Some("1.2.840.10045.3.1.7") => ("EC P-256".into(), Some(KeyType::EcdsaP256), 256),
                Some("1.3.132.0.34") => ("EC P-384".into(), Some(KeyType::EcdsaP384), 384),
                Some(other) => (format!("EC {other}"), None, bits),
                None => ("EC".into(), None, bits),
            }
        }
        _ => (spki.algorithm.algorithm.to_id_string(), None, 0),
    }
}

fn signature_name(oid: &x509_parser::der_parser::oid::Oid) -> String {
    match oid.to_id_string().as_str() {
        "1.2.840.113549.1.1.11" => "sha256WithRSAEncryption".into(),
        "1.2.840.113549.1.1.12" => "sha384WithRSAEncryption".into(),
        "1.2.840.113549.1.1.13" => "sha512WithRSAEncryption".into(),
        "1.2.840.113549.1.1.5" => "sha1WithRSAEncryption".into(),
        "1.2.840.113549.1.1.4" => "md5WithRSAEncryption".into(),
        "1.2.840.10045.4.3.2" => "ecdsa-with-SHA256".into(),
        "1.2.840.10045.4.3.3" => "ecdsa-with-SHA384".into(),
        "1.2.840.10045.4.3.4" => "ecdsa-with-SHA512".into(),
        "1.2.840.10045.4.1" => "ecdsa-with-SHA1".into(),
        other => other.to_string(),
    }
}

/// Bits of an RSA modulus, from a DER RSAPublicKey (`SEQUENCE { modulus, exponent }`).
pub(crate) fn rsa_modulus_bits(rsa_public_key: &[u8]) -> Option<usize> {
    let outer = super::der::read_tlv(rsa_public_key, 0)?;
    let modulus = super::der::read_tlv(rsa_public_key, outer.content_start)?;
    let bytes = &rsa_public_key[modulus.content_start..modulus.end];
    let first = bytes.iter().position(|b| *b != 0)?;
    Some((bytes.len() - first) * 8 - bytes[first].leading_zeros() as usize)
}

/// True when `cert` names `issuer` as its issuer and carries a valid signature by its key.
pub(crate) fn is_issued_by(cert: &[u8], issuer: &[u8]) -> bool {
    let (Ok((_, c)), Ok((_, i))) = (
        X509Certificate::from_der(cert),
        X509Certificate::from_der(issuer),
    ) else {
        return false;
    };
    c.issuer().as_raw() == i.subject().as_raw() && c.verify_signature(Some(i.public_key())).is_ok()
}
