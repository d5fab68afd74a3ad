//! RSA encryption of a password as WSO2's cipher tool does it, and decryption as the secure vault
//! runtime does it.
//!
//! Cipher tool (`Utils.doEncryption`): `Cipher.getInstance(transformation)`, `init(ENCRYPT_MODE,
//! certificate)`, `doFinal(password.getBytes("UTF-8"))`, then `printBase64Binary` (standard
//! alphabet, padded, one line). Runtime (`FileBaseSecretRepository` → `BaseCipher`): base64
//! decode (whitespace ignored), `Cipher.getInstance(secretRepositories.file.algorithm or "RSA")`
//! with the private key of `keystore.identity.alias`, then `new String(bytes)`.

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use x509_parser::prelude::*;
use zeroize::Zeroizing;

use aws_lc_rs::rsa::{
    OaepPrivateDecryptingKey, OaepPublicEncryptingKey, Pkcs1PrivateDecryptingKey,
    Pkcs1PublicEncryptingKey, PrivateDecryptingKey, PublicEncryptingKey, OAEP_SHA1_MGF1SHA1,
};

use super::{Release, Scheme, VaultError};

const RSA_ENCRYPTION_OID: &str = "1.2.840.113549.1.1.1";
const EC_PUBLIC_KEY_OID: &str = "1.2.840.10045.2.1";

/// A password encrypted for the vault: base64 of the raw RSA ciphertext.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ciphertext {
    /// The scheme it was made with (the runtime must be told it, see
    /// [`Scheme::secret_conf_algorithm`]).
    pub scheme: Scheme,
    /// Standard base64 with padding, no line breaks (what the cipher tool prints).
    pub text: String,
}

/// Encrypts `password` for `release` with `scheme` under the public key of `cert_der` (the
/// vault keystore's certificate under its key alias), refusing what WSO2 refuses: a non-RSA
/// key, a critical key usage without dataEncipherment, a password longer than one block.
pub fn encrypt(
    release: Release,
    scheme: Scheme,
    cert_der: &[u8],
    password: &str,
) -> Result<Ciphertext, VaultError> {
    if !release.schemes().contains(&scheme) {
        return Err(VaultError::SchemeNotSupported {
            release: release.name(),
            scheme: scheme.transformation(),
        });
    }
    let spki = rsa_spki_of_certificate(cert_der)?;
    let key = PublicEncryptingKey::from_der(&spki).map_err(|e| VaultError::BadKey {
        what: "certificate's public key",
        reason: e.to_string(),
    })?;
    let plain = password.as_bytes();
    let bits = key.key_size_bits();
    let max = max_plaintext(scheme, key.key_size_bytes());
    if plain.len() > max {
        return Err(VaultError::TooLong {
            len: plain.len(),
            max,
            bits,
            scheme: scheme.transformation(),
        });
    }
    let mut out = vec![0u8; key.key_size_bytes()];
    let sealed = match scheme {
        Scheme::RsaOaepSha1 => OaepPublicEncryptingKey::new(key)
            .and_then(|k| k.encrypt(&OAEP_SHA1_MGF1SHA1, plain, &mut out, None))
            .map(|c| c.len()),
        Scheme::RsaPkcs1 => Pkcs1PublicEncryptingKey::new(key)
            .and_then(|k| k.encrypt(plain, &mut out))
            .map(|c| c.len()),
    }
    .map_err(|_| VaultError::EncryptFailed)?;
    out.truncate(sealed);
    Ok(Ciphertext {
        scheme,
        text: STANDARD.encode(&out),
    })
}

/// Decrypts a vault ciphertext with the PKCS#8 private key of the vault keystore, the way the
/// runtime does for `scheme` (the one `secret-conf.properties` names).
pub fn decrypt(
    scheme: Scheme,
    pkcs8_der: &[u8],
    ciphertext: &str,
) -> Result<Zeroizing<String>, VaultError> {
    let sealed = decode_base64(ciphertext)?;
    let key = PrivateDecryptingKey::from_pkcs8(pkcs8_der).map_err(|e| {
        if pkcs8_is_ec(pkcs8_der) {
            VaultError::NotRsa("an EC key".into())
        } else {
            VaultError::BadKey {
                what: "private key",
                reason: e.to_string(),
            }
        }
    })?;
    let mut out = Zeroizing::new(vec![0u8; key.key_size_bytes()]);
    let undecryptable = |_| VaultError::Undecryptable {
        scheme: scheme.transformation(),
    };
    let len = match scheme {
        Scheme::RsaOaepSha1 => OaepPrivateDecryptingKey::new(key)
            .map_err(undecryptable)?
            .decrypt(&OAEP_SHA1_MGF1SHA1, &sealed, &mut out, None)
            .map_err(undecryptable)?
            .len(),
        Scheme::RsaPkcs1 => Pkcs1PrivateDecryptingKey::new(key)
            .map_err(undecryptable)?
            .decrypt(&sealed, &mut out)
            .map_err(undecryptable)?
            .len(),
    };
    out.truncate(len);
    let text = std::str::from_utf8(&out).map_err(|_| VaultError::NotText)?;
    Ok(Zeroizing::new(text.to_string()))
}

/// The longest password (in UTF-8 bytes) `scheme` encrypts with a key of `modulus_bytes`.
pub(crate) fn max_plaintext(scheme: Scheme, modulus_bytes: usize) -> usize {
    match scheme {
        // PKCS#1 v1.5: k - 11. OAEP with SHA-1: k - 2*20 - 2.
        Scheme::RsaPkcs1 => modulus_bytes.saturating_sub(11),
        Scheme::RsaOaepSha1 => modulus_bytes.saturating_sub(42),
    }
}

/// Base64 as Axiom's `Base64Utils.decode` accepts it: whitespace anywhere is ignored.
fn decode_base64(text: &str) -> Result<Vec<u8>, VaultError> {
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    if compact.is_empty() {
        return Err(VaultError::NotBase64("it is empty".into()));
    }
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    LENIENT
        .decode(compact.as_bytes())
        .map_err(|e| VaultError::NotBase64(e.to_string()))
}

/// The RSA SubjectPublicKeyInfo of a certificate, after Java's key-usage check for
/// `Cipher.init(ENCRYPT_MODE, certificate)`: a critical keyUsage must allow dataEncipherment.
fn rsa_spki_of_certificate(cert_der: &[u8]) -> Result<Vec<u8>, VaultError> {
    let (_, cert) = X509Certificate::from_der(cert_der).map_err(|e| VaultError::BadKey {
        what: "certificate",
        reason: e.to_string(),
    })?;
    let spki = cert.public_key();
    let oid = spki.algorithm.algorithm.to_id_string();
    if oid != RSA_ENCRYPTION_OID {
        let name = if oid == EC_PUBLIC_KEY_OID {
            "an EC key".to_string()
        } else {
            format!("a key of algorithm {oid}")
        };
        return Err(VaultError::NotRsa(name));
    }
    if let Ok(Some(ku)) = cert.key_usage() {
        if ku.critical && !ku.value.data_encipherment() {
            return Err(VaultError::NoDataEncipherment);
        }
    }
    Ok(spki.raw.to_vec())
}

/// True when a PKCS#8 blob carries an EC key (for a clear refusal instead of a parse error).
fn pkcs8_is_ec(pkcs8_der: &[u8]) -> bool {
    // id-ecPublicKey as DER: 06 07 2A 86 48 CE 3D 02 01.
    const EC_OID_DER: [u8; 9] = [0x06, 0x07, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01];
    pkcs8_der.windows(EC_OID_DER.len()).any(|w| w == EC_OID_DER)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::{self, CertSpec, Key, Role};
    use crate::topology::KeyType;

    fn spec(role: Role) -> CertSpec {
        CertSpec {
            subject: pki::Subject {
                common_name: "vault test".into(),
                organization: None,
                organizational_unit: None,
                country: None,
            },
            dns_names: Vec::new(),
            ip_addresses: Vec::new(),
            role,
            validity_days: 30,
        }
    }

    fn primary(key_type: KeyType) -> (Key, Vec<u8>) {
        let key = Key::generate(key_type).expect("key");
        let cert = pki::self_signed(&spec(Role::Primary), &key).expect("cert");
        (key, cert)
    }

    #[test]
    fn round_trip_both_schemes_every_release() {
        let (key, cert) = primary(KeyType::Rsa2048);
        for release in Release::ALL {
            for scheme in release.schemes() {
                let c = encrypt(release, *scheme, &cert, "s3cret-Pässword").expect("encrypt");
                assert_eq!(
                    c.text.len(),
                    344,
                    "2048-bit ciphertext is 256 bytes = 344 base64"
                );
                let back = decrypt(*scheme, &key.pkcs8_der(), &c.text).expect("decrypt");
                assert_eq!(back.as_str(), "s3cret-Pässword");
            }
        }
    }

    #[test]
    fn randomised_and_scheme_bound() {
        let (key, cert) = primary(KeyType::Rsa2048);
        let a = encrypt(Release::Apim44, Scheme::RsaOaepSha1, &cert, "pw123456").unwrap();
        let b = encrypt(Release::Apim44, Scheme::RsaOaepSha1, &cert, "pw123456").unwrap();
        assert_ne!(a.text, b.text, "RSA encryption must be randomised");
        let wrong = decrypt(Scheme::RsaPkcs1, &key.pkcs8_der(), &a.text);
        assert!(matches!(wrong, Err(VaultError::Undecryptable { .. })));
    }

    #[test]
    fn another_key_cannot_decrypt() {
        let (_, cert) = primary(KeyType::Rsa2048);
        let (other, _) = primary(KeyType::Rsa2048);
        let c = encrypt(Release::Apim26, Scheme::RsaPkcs1, &cert, "pw123456").unwrap();
        let err = decrypt(Scheme::RsaPkcs1, &other.pkcs8_der(), &c.text).unwrap_err();
        assert!(matches!(err, VaultError::Undecryptable { .. }), "{err}");
        assert!(err.to_string().contains("another key"));
    }

    #[test]
    fn ec_keys_are_refused_clearly() {
        let (key, cert) = primary(KeyType::EcdsaP256);
        let err = encrypt(Release::Apim46, Scheme::RsaOaepSha1, &cert, "pw123456").unwrap_err();
        assert_eq!(err, VaultError::NotRsa("an EC key".into()));
        assert!(err.to_string().contains("only with RSA"));
        let err = decrypt(Scheme::RsaOaepSha1, &key.pkcs8_der(), "AAAA").unwrap_err();
        assert_eq!(err, VaultError::NotRsa("an EC key".into()));
    }

    #[test]
    fn critical_key_usage_without_data_encipherment_is_refused() {
        let key = Key::generate(KeyType::Rsa2048).unwrap();
        // A TLS node certificate: critical keyUsage digitalSignature + keyEncipherment.
        let cert = pki::self_signed(&spec(Role::Tls), &key).unwrap();
        let err = encrypt(Release::Apim32, Scheme::RsaPkcs1, &cert, "pw123456").unwrap_err();
        assert_eq!(err, VaultError::NoDataEncipherment);
    }

    #[test]
    fn too_long_and_bad_base64() {
        let (key, cert) = primary(KeyType::Rsa2048);
        let long = "x".repeat(215);
        let err = encrypt(Release::Apim40, Scheme::RsaOaepSha1, &cert, &long).unwrap_err();
        assert!(matches!(err, VaultError::TooLong { max: 214, .. }), "{err}");
        assert!(encrypt(Release::Apim40, Scheme::RsaPkcs1, &cert, &long).is_ok());
        let err = decrypt(Scheme::RsaPkcs1, &key.pkcs8_der(), "not base64!").unwrap_err();
        assert!(matches!(err, VaultError::NotBase64(_)));
        assert!(matches!(
            decrypt(Scheme::RsaPkcs1, &key.pkcs8_der(), "  "),
            Err(VaultError::NotBase64(_))
        ));
    }

    #[test]
    fn base64_with_line_breaks_decrypts_like_axiom() {
        let (key, cert) = primary(KeyType::Rsa2048);
        let c = encrypt(Release::Apim26, Scheme::RsaPkcs1, &cert, "pw123456").unwrap();
        let wrapped: String = c
            .text
            .as_bytes()
            .chunks(76)
            .map(|l| format!("{}\r\n", std::str::from_utf8(l).unwrap()))
            .collect();
        let back = decrypt(Scheme::RsaPkcs1, &key.pkcs8_der(), &wrapped).unwrap();
        assert_eq!(back.as_str(), "pw123456");
    }
}
