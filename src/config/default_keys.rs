//! WSO2's well-known default keys: the key pairs whose private keys ship in every WSO2 download
//! (CN=localhost). A truststore that trusts one of them trusts anyone, so `apply` drops them when
//! it merges a node's truststore and `verify` reports them (`trusts-default-key`).
//!
//! Matched by the SHA-256 of the certificate's SubjectPublicKeyInfo, so a certificate re-issued
//! for the same default key is caught too. The fingerprints were computed from the certificates
//! in WSO2's shipped 2.6.0 `client-truststore.jks` (carbon-kernel 4.4.35); tests/it/apply_real26.rs
//! recomputes them from that file.

use sha2::{Digest, Sha256};
use x509_parser::prelude::{FromDer, X509Certificate};

/// (what WSO2 calls the key, SHA-256 of its SubjectPublicKeyInfo, hex).
pub const WSO2_DEFAULT_KEYS: [(&str, &str); 4] = [
    (
        "Carbon 4.4 `wso2carbon`",
        "ad874c42382e2a464a3dba787fb3a0b5e2de30100545742758a6fbf0cb6aca5e",
    ),
    (
        "Carbon `wso2carbon.old`",
        "eb479350c27268ca7197f6b928677f9bebb333e62f10ca49db07e56a73b2c961",
    ),
    (
        "Carbon `wso2carbon.oldcert`, also shipped as `localhost`",
        "da909c62b1bdd210c5c70382b15c9aef0a5b423aa1072dce3ec172c93fbbd74f",
    ),
    (
        "Carbon 5 `wso2carbonv5`",
        "85c9aa36100b3d93aa1aefd2ea84c9a10935afd7a9a931c11d8bc8a82d002834",
    ),
];

/// SHA-256 (hex) of a DER certificate's SubjectPublicKeyInfo.
pub fn spki_sha256(cert_der: &[u8]) -> Option<String> {
    let (_, cert) = X509Certificate::from_der(cert_der).ok()?;
    let digest = Sha256::digest(cert.public_key().raw);
    Some(digest.iter().map(|b| format!("{b:02x}")).collect())
}

/// The name of the WSO2 default key `cert_der` certifies, if it is one.
pub fn wso2_default_key(cert_der: &[u8]) -> Option<&'static str> {
    let fp = spki_sha256(cert_der)?;
    WSO2_DEFAULT_KEYS
        .iter()
        .find(|(_, known)| *known == fp)
        .map(|(name, _)| *name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_certificate_of_another_key_is_not_a_default() {
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = rcgen::CertificateParams::new(vec!["localhost".into()])
            .expect("params")
            .self_signed(&key)
            .expect("cert");
        let der = cert.der().to_vec();
        assert_eq!(wso2_default_key(&der), None);
        let fp = spki_sha256(&der).expect("parses");
        assert_eq!(fp.len(), 64);
        assert_eq!(
            fp,
            Sha256::digest(rcgen::PublicKeyData::subject_public_key_info(&key))
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        );
        assert_eq!(spki_sha256(b"not a certificate"), None);
    }
}
