//! Secure vault core: what WSO2's cipher tool does to a node, done natively and without files.
//!
//! Pure functions over bytes and strings (the caller reads and writes every file):
//! - [`cipher`]: encrypt a password with the primary (2.6) or internal (3.2+) key's certificate
//!   the way the product's cipher tool does, and decrypt it the way the product's secure vault
//!   runtime does (for `verify`'s `vault-undecryptable`);
//! - [`carbon26`]: API-M 2.6's aliases (which password field, which fixed alias) and
//!   `cipher-tool.properties`, as `ciphertool.sh -Dconfigure` uses them;
//! - [`secrets_toml`]: the `[secrets]` table of deployment.toml (3.2 and later) and its
//!   `$secret{alias}` references;
//! - [`cipher_text`]: `cipher-text.properties`, the runtime's secret repository;
//! - [`secret_conf`]: `secret-conf.properties`, which tells the runtime the key and scheme;
//! - [`javaprops`]: `java.util.Properties` escaping and parsing, for those files;
//! - [`startup`]: the `password-tmp` / `password-persist` file that gives the JVM the vault
//!   key's password.
//!
//! Every fact here is taken from WSO2's sources at the tags each [`Release`] ships; see
//! `docs/secure-vault.md` for the citations.

pub mod carbon26;
pub(crate) mod cipher;
pub mod cipher_text;
pub(crate) mod javaprops;
pub mod key;
pub mod secret_conf;
pub mod secrets_toml;
pub(crate) mod startup;

pub use cipher::{decrypt, encrypt, Ciphertext};
pub(crate) use key::{release_of, Sealed, VaultKey};

/// An API Manager release whose secure vault was read from WSO2's sources (at the tag named).
/// Releases in between (4.1–4.3, 4.5) were not read; from 3.2 on every release here behaves the
/// same for encryption, so a caller maps them to the nearest one.
///
/// The releases differ in where ciphertexts live (XML + `cipher-text.properties` for 2.6,
/// `[secrets]` in deployment.toml from 3.2 on) and in which keystore the cipher tool picks;
/// the cipher (RSA, PKCS#1 v1.5 or OAEP) and the encoding (base64) are the same in all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Release {
    /// 2.6.0: carbon-kernel 4.4.35, org.wso2.securevault 1.0.0-wso2v2, cipher-tool 1.0.0-wso2v8.
    Apim26,
    /// 3.2.0: carbon-kernel 4.6.0, org.wso2.securevault 1.1.3, cipher-tool 1.1.15.
    Apim32,
    /// 4.0.0: carbon-kernel 4.6.2, org.wso2.securevault 1.1.3, cipher-tool 1.1.15.
    Apim40,
    /// 4.4.0: carbon-kernel 4.9.27, org.wso2.securevault 1.1.7, cipher-tool 1.1.26.
    Apim44,
    /// 4.6.0 split distributions: carbon-kernel 4.9.33, org.wso2.securevault 1.1.7,
    /// cipher-tool 1.1.28.
    Apim46,
}

impl Release {
    /// Every release, oldest first.
    pub const ALL: [Release; 5] = [
        Release::Apim26,
        Release::Apim32,
        Release::Apim40,
        Release::Apim44,
        Release::Apim46,
    ];

    /// The release as users name it, e.g. `"API-M 4.4"`.
    pub fn name(self) -> &'static str {
        match self {
            Release::Apim26 => "API-M 2.6",
            Release::Apim32 => "API-M 3.2",
            Release::Apim40 => "API-M 4.0",
            Release::Apim44 => "API-M 4.4",
            Release::Apim46 => "API-M 4.6",
        }
    }

    /// Where this release keeps ciphertexts and how configuration points at them.
    pub fn config_form(self) -> ConfigForm {
        match self {
            Release::Apim26 => ConfigForm::XmlCipherText,
            _ => ConfigForm::DeploymentTomlSecrets,
        }
    }

    /// Which keystore's key the cipher tool encrypts with (and the runtime decrypts with).
    pub fn vault_keystore(self) -> VaultKeystore {
        match self {
            Release::Apim26 => VaultKeystore::Primary,
            _ => VaultKeystore::InternalElsePrimary,
        }
    }

    /// The schemes this release's runtime decrypts (each needs `secret-conf.properties` to name
    /// its transformation, except PKCS#1 v1.5, the runtime's default).
    pub fn schemes(self) -> &'static [Scheme] {
        // org.wso2.securevault's FileBaseSecretRepository passes
        // `secretRepositories.file.algorithm` (default "RSA") to Cipher.getInstance in every
        // release here; the AES-GCM self-contained form needs securevault 1.1.9+, which none
        // of these kernels ship.
        &[Scheme::RsaOaepSha1, Scheme::RsaPkcs1]
    }

    /// The scheme used when the topology names none: the strongest one the runtime decrypts.
    pub fn default_scheme(self) -> Scheme {
        Scheme::RsaOaepSha1
    }
}

/// Where ciphertexts live and how configuration refers to them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigForm {
    /// 2.6: `repository/conf/security/cipher-text.properties` holds `alias=ciphertext`; the XML
    /// value is the literal `password` with `svns:secretAlias="alias"`.
    XmlCipherText,
    /// 3.2+: deployment.toml `[secrets]` holds `alias = "ciphertext"`; fields say
    /// `$secret{alias}`; the server renders `cipher-text.properties` from `[secrets]` at start-up.
    DeploymentTomlSecrets,
}

/// Which keystore holds the vault key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VaultKeystore {
    /// carbon.xml `Security/KeyStore` (`KeyAlias`): cipher-tool 1.0.0-wso2v8 reads only this.
    Primary,
    /// carbon.xml `Security/InternalKeyStore` when present, else `Security/KeyStore`
    /// (cipher-tool 1.1.x). 3.2+ always render an InternalKeyStore block; its values default
    /// to `[keystore.primary]` through `$ref{}` in default.json unless `[keystore.internal]`
    /// is set.
    InternalElsePrimary,
}

/// An RSA encryption scheme the vault runtime decrypts, named by its JCE transformation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// `RSA/ECB/OAEPwithSHA1andMGF1Padding` (OAEP, SHA-1, MGF1 with SHA-1, empty label).
    RsaOaepSha1,
    /// `RSA` = `RSA/ECB/PKCS1Padding` in SunJCE: the cipher tool's and runtime's default.
    RsaPkcs1,
}

impl Scheme {
    /// The transformation string, as `secretRepositories.file.algorithm` and
    /// `-Dorg.wso2.CipherTransformation` spell it.
    pub fn transformation(self) -> &'static str {
        match self {
            Scheme::RsaOaepSha1 => "RSA/ECB/OAEPwithSHA1andMGF1Padding",
            Scheme::RsaPkcs1 => "RSA",
        }
    }

    /// The value `secret-conf.properties` must give `secretRepositories.file.algorithm`, or
    /// `None` when the runtime's default ("RSA") already is this scheme.
    pub fn secret_conf_algorithm(self) -> Option<&'static str> {
        match self {
            Scheme::RsaOaepSha1 => Some(self.transformation()),
            Scheme::RsaPkcs1 => None,
        }
    }

    /// The scheme the runtime uses for `secretRepositories.file.algorithm` = `value` (absent
    /// means the default "RSA"). Names are compared as SunJCE does: case-insensitively.
    pub fn from_algorithm(value: Option<&str>) -> Result<Scheme, VaultError> {
        let v = value.map(str::trim).unwrap_or("RSA");
        let lower = v.to_ascii_lowercase();
        match lower.as_str() {
            "rsa" | "rsa/ecb/pkcs1padding" | "rsa/none/pkcs1padding" => Ok(Scheme::RsaPkcs1),
            "rsa/ecb/oaepwithsha1andmgf1padding"
            | "rsa/ecb/oaepwithsha-1andmgf1padding"
            | "rsa/ecb/oaeppadding" => Ok(Scheme::RsaOaepSha1),
            _ => Err(VaultError::UnsupportedAlgorithm(v.to_string())),
        }
    }

    /// Every scheme, strongest first.
    pub const ALL: [Scheme; 2] = [Scheme::RsaOaepSha1, Scheme::RsaPkcs1];

    /// The scheme named `name` in the topology (`"oaep"`, `"pkcs1"`).
    pub fn parse(name: &str) -> Option<Scheme> {
        Scheme::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The topology name of the scheme (`"oaep"`, `"pkcs1"`).
    pub fn name(self) -> &'static str {
        match self {
            Scheme::RsaOaepSha1 => "oaep",
            Scheme::RsaPkcs1 => "pkcs1",
        }
    }
}

/// What went wrong in the vault core. Never contains a password or a plaintext.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VaultError {
    /// The vault key is not RSA.
    #[error("the secure vault key is {0}, but WSO2's cipher tool and secure vault encrypt only with RSA (Cipher \"RSA\" or RSA/ECB/OAEPwithSHA1andMGF1Padding); make the primary key an RSA key")]
    NotRsa(String),
    /// The certificate or key cannot be read.
    #[error("cannot read the secure vault {what}: {reason}")]
    BadKey {
        /// Which one (certificate or key).
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// A critical key usage without dataEncipherment: Java's Cipher.init refuses it.
    #[error("the secure vault certificate has a critical key usage without dataEncipherment; Java (and so WSO2's cipher tool) refuses to encrypt with it. Reissue the primary certificate with dataEncipherment")]
    NoDataEncipherment,
    /// The password does not fit in one RSA block.
    #[error("the password is {len} bytes long; {scheme} with a {bits}-bit key takes at most {max} bytes")]
    TooLong {
        /// Its length in bytes.
        len: usize,
        /// The most the scheme takes, in bytes.
        max: usize,
        /// The key size in bits.
        bits: usize,
        /// The scheme.
        scheme: &'static str,
    },
    /// Encryption failed inside the crypto library.
    #[error("RSA encryption failed")]
    EncryptFailed,
    /// The ciphertext is not base64.
    #[error("the ciphertext is not base64: {0}")]
    NotBase64(String),
    /// The ciphertext does not decrypt with this key and scheme.
    #[error("the ciphertext does not decrypt with this key using {scheme} (it was made with another key or scheme, or it is damaged)")]
    Undecryptable {
        /// The scheme.
        scheme: &'static str,
    },
    /// The plaintext is not UTF-8.
    #[error("the ciphertext decrypts to bytes that are not UTF-8 text")]
    NotText,
    /// `secretRepositories.file.algorithm` names a transformation apim-pki does not use.
    #[error("secure vault algorithm {0:?} is not one apim-pki supports (RSA, RSA/ECB/PKCS1Padding, RSA/ECB/OAEPwithSHA1andMGF1Padding)")]
    UnsupportedAlgorithm(String),
    /// The scheme is not decrypted by this release's runtime.
    #[error("{release} does not decrypt {scheme} ciphertexts")]
    SchemeNotSupported {
        /// The release.
        release: &'static str,
        /// The scheme.
        scheme: &'static str,
    },
    /// A secret alias that the configuration syntax cannot carry.
    #[error("secret alias {alias:?} is not valid: {reason}")]
    BadAlias {
        /// The alias.
        alias: String,
        /// Why.
        reason: &'static str,
    },
    /// An XML file cannot be read or edited as the vault needs.
    #[error("{file}: {reason}")]
    Xml {
        /// The file.
        file: &'static str,
        /// Why.
        reason: String,
    },
    /// A properties file with an escape `Properties.load` refuses.
    #[error("{file} line {line}: {problem}")]
    Escape {
        /// The file.
        file: &'static str,
        /// 1-based line.
        line: usize,
        /// The escape.
        #[source]
        problem: javaprops::BadEscape,
    },
    /// A file apim-pki parses is malformed.
    #[error("{file} line {line}: {reason}")]
    Parse {
        /// The file.
        file: &'static str,
        /// 1-based line.
        line: usize,
        /// Why.
        reason: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn algorithm_names_map_like_sunjce() {
        assert_eq!(Scheme::from_algorithm(None), Ok(Scheme::RsaPkcs1));
        assert_eq!(Scheme::from_algorithm(Some(" RSA ")), Ok(Scheme::RsaPkcs1));
        assert_eq!(
            Scheme::from_algorithm(Some("RSA/ECB/OAEPWithSHA1AndMGF1Padding")),
            Ok(Scheme::RsaOaepSha1)
        );
        // SunJCE's OAEPWithSHA-256AndMGF1Padding uses MGF1 with SHA-1: not a scheme we make.
        assert!(matches!(
            Scheme::from_algorithm(Some("RSA/ECB/OAEPWithSHA-256AndMGF1Padding")),
            Err(VaultError::UnsupportedAlgorithm(_))
        ));
        for s in [Scheme::RsaOaepSha1, Scheme::RsaPkcs1] {
            assert_eq!(Scheme::from_algorithm(Some(s.transformation())), Ok(s));
        }
    }

    #[test]
    fn releases_default_to_oaep_and_name_their_form() {
        for r in Release::ALL {
            assert_eq!(r.default_scheme(), Scheme::RsaOaepSha1);
            assert!(r.schemes().contains(&r.default_scheme()));
        }
        assert_eq!(Release::Apim26.config_form(), ConfigForm::XmlCipherText);
        assert_eq!(Release::Apim26.vault_keystore(), VaultKeystore::Primary);
        assert_eq!(
            Release::Apim46.config_form(),
            ConfigForm::DeploymentTomlSecrets
        );
        assert_eq!(Scheme::RsaPkcs1.secret_conf_algorithm(), None);
    }
}
