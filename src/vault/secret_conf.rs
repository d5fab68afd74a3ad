//! `repository/conf/security/secret-conf.properties`: how the secure vault runtime finds its key
//! and its ciphertexts, in every release.
//!
//! Carbon's `SecretManagerInitializer` loads it at start-up; without it the vault is off and
//! every alias resolves to itself. No API-M distribution ships it: `ciphertool.sh -Dconfigure`
//! writes it (`Utils.writeToSecureConfPropertyFile`), with the same keys in 2.6 and 3.2+ (and,
//! from cipher-tool 1.1.x, `secVault.enabled` and `secretRepositories.file.algorithm`).

use super::javaprops;
use super::{Release, Scheme, VaultError};

const FILE: &str = "secret-conf.properties";

/// The runtime's path to the secret repository file, relative to the product home (the start
/// scripts `cd "$CARBON_HOME"` before starting the JVM).
pub const CIPHER_TEXT_LOCATION: &str = "repository/conf/security/cipher-text.properties";

const SECRET_PROVIDER: &str =
    "org.wso2.securevault.secret.handler.SecretManagerSecretCallbackHandler";
const FILE_PROVIDER: &str =
    "org.wso2.securevault.secret.repository.FileBaseSecretRepositoryProvider";
const DEFAULT_CALLBACK: &str = "org.wso2.carbon.securevault.DefaultSecretCallbackHandler";

/// A keystore type as `org.wso2.securevault` accepts it: `KeyStoreType.valueOf(type)`, so the
/// exact upper-case names only (`jks` fails at start-up).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VaultStoreType {
    /// `JKS`.
    Jks,
    /// `PKCS12`.
    Pkcs12,
}

impl VaultStoreType {
    /// The name written to `keystore.identity.type`.
    pub fn as_str(self) -> &'static str {
        match self {
            VaultStoreType::Jks => "JKS",
            VaultStoreType::Pkcs12 => "PKCS12",
        }
    }
}

/// What `secret-conf.properties` tells the runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretConf {
    /// `keystore.identity.location`: absolute, or relative to the product home.
    pub keystore_location: String,
    /// `keystore.identity.type`.
    pub keystore_type: VaultStoreType,
    /// `keystore.identity.alias`: the key alias of the vault keystore.
    pub key_alias: String,
    /// From `secretRepositories.file.algorithm` (absent = PKCS#1 v1.5).
    pub scheme: Scheme,
    /// `secretRepositories.file.location` (the runtime's default is `cipher-text.properties`
    /// in the working directory).
    pub cipher_text_location: String,
    /// `secVault.enabled` (absent = true).
    pub enabled: bool,
}

impl From<crate::keystore::KeystoreFormat> for VaultStoreType {
    fn from(format: crate::keystore::KeystoreFormat) -> VaultStoreType {
        use crate::keystore::KeystoreFormat;
        match format {
            KeystoreFormat::Jks => VaultStoreType::Jks,
            KeystoreFormat::Pkcs12 | KeystoreFormat::Pkcs12Legacy => VaultStoreType::Pkcs12,
        }
    }
}

impl SecretConf {
    /// The set's primary keystore (`format`, key entry `alias`) as the vault keystore, at its
    /// place in the home (relative to it: the start scripts `cd` there), ciphertexts under
    /// `scheme` in repository/conf/security/cipher-text.properties.
    pub fn for_primary(
        format: crate::keystore::KeystoreFormat,
        alias: &str,
        scheme: Scheme,
    ) -> SecretConf {
        use crate::output::layout;
        SecretConf {
            keystore_location: format!("{}/{}", layout::SECURITY_DIR, layout::primary_file(format)),
            keystore_type: format.into(),
            key_alias: alias.to_string(),
            scheme,
            cipher_text_location: CIPHER_TEXT_LOCATION.into(),
            enabled: true,
        }
    }

    /// The file as WSO2's cipher tool of `release` writes it (keys sorted for a stable file;
    /// the order means nothing to `Properties.load`). The store and key passwords are never in
    /// it: they come from `DefaultSecretCallbackHandler` (password-tmp, password-persist, or a
    /// prompt).
    pub fn render(&self, release: Release) -> String {
        let mut pairs: Vec<(&str, &str)> = vec![
            ("carbon.secretProvider", SECRET_PROVIDER),
            ("keystore.identity.alias", &self.key_alias),
            ("keystore.identity.key.password", "identity.key.password"),
            ("keystore.identity.key.secretProvider", DEFAULT_CALLBACK),
            ("keystore.identity.location", &self.keystore_location),
            (
                "keystore.identity.store.password",
                "identity.store.password",
            ),
            ("keystore.identity.store.secretProvider", DEFAULT_CALLBACK),
            ("keystore.identity.type", self.keystore_type.as_str()),
            ("secretRepositories", "file"),
            (
                "secretRepositories.file.location",
                &self.cipher_text_location,
            ),
            ("secretRepositories.file.provider", FILE_PROVIDER),
        ];
        if let Some(algorithm) = self.scheme.secret_conf_algorithm() {
            pairs.push(("secretRepositories.file.algorithm", algorithm));
        }
        if release != Release::Apim26 || !self.enabled {
            pairs.push((
                "secVault.enabled",
                if self.enabled { "true" } else { "false" },
            ));
        }
        pairs.sort_by_key(|(k, _)| *k);
        let mut out = String::from(
            "# Secure vault configuration, as WSO2's ciphertool.sh -Dconfigure writes it.\n",
        );
        for (k, v) in pairs {
            out.push_str(&javaprops::line(k, v));
        }
        out
    }

    /// Reads the file as the runtime does; an error names the line or the missing key.
    pub fn parse(text: &str) -> Result<SecretConf, VaultError> {
        let entries = javaprops::parse(text).map_err(|(line, problem)| VaultError::Escape {
            file: FILE,
            line,
            problem,
        })?;
        // Properties.load keeps the last of repeated keys.
        let get = |key: &str| {
            entries
                .iter()
                .rev()
                .find(|e| e.key == key)
                .map(|e| (e.value.trim().to_string(), e.line))
        };
        let need = |key: &'static str| {
            get(key)
                .filter(|(v, _)| !v.is_empty())
                .ok_or_else(|| VaultError::Parse {
                    file: FILE,
                    line: 0,
                    reason: format!("{key} is missing; the runtime cannot open the vault key"),
                })
        };
        let (location, _) = need("keystore.identity.location")?;
        let (alias, _) = need("keystore.identity.alias")?;
        let (ty, ty_line) = need("keystore.identity.type")?;
        let keystore_type = match ty.as_str() {
            "JKS" => VaultStoreType::Jks,
            "PKCS12" => VaultStoreType::Pkcs12,
            other => {
                return Err(VaultError::Parse {
                    file: FILE,
                    line: ty_line,
                    reason: format!(
                        "keystore.identity.type {other:?} is refused at start-up \
                         (KeyStoreType.valueOf takes JKS or PKCS12, upper case)"
                    ),
                })
            }
        };
        let algorithm = get("secretRepositories.file.algorithm");
        let scheme = Scheme::from_algorithm(
            algorithm
                .as_ref()
                .map(|(v, _)| v.as_str())
                .filter(|v| !v.is_empty()),
        )?;
        Ok(SecretConf {
            keystore_location: location,
            keystore_type,
            key_alias: alias,
            scheme,
            cipher_text_location: get("secretRepositories.file.location")
                .map_or_else(|| "cipher-text.properties".into(), |(v, _)| v),
            enabled: get("secVault.enabled").is_none_or(|(v, _)| v.eq_ignore_ascii_case("true")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf(scheme: Scheme) -> SecretConf {
        SecretConf {
            keystore_location: "repository/resources/security/primary.jks".into(),
            keystore_type: VaultStoreType::Jks,
            key_alias: "wso2carbon".into(),
            scheme,
            cipher_text_location: CIPHER_TEXT_LOCATION.into(),
            enabled: true,
        }
    }

    #[test]
    fn renders_what_the_cipher_tool_writes_and_reads_back() {
        let text = conf(Scheme::RsaOaepSha1).render(Release::Apim44);
        for want in [
            "carbon.secretProvider=org.wso2.securevault.secret.handler.SecretManagerSecretCallbackHandler\n",
            "secretRepositories=file\n",
            "secretRepositories.file.provider=org.wso2.securevault.secret.repository.FileBaseSecretRepositoryProvider\n",
            "secretRepositories.file.location=repository/conf/security/cipher-text.properties\n",
            "keystore.identity.type=JKS\n",
            "keystore.identity.alias=wso2carbon\n",
            "keystore.identity.store.password=identity.store.password\n",
            "keystore.identity.store.secretProvider=org.wso2.carbon.securevault.DefaultSecretCallbackHandler\n",
            "keystore.identity.key.password=identity.key.password\n",
            "keystore.identity.key.secretProvider=org.wso2.carbon.securevault.DefaultSecretCallbackHandler\n",
            "secretRepositories.file.algorithm=RSA/ECB/OAEPwithSHA1andMGF1Padding\n",
            "secVault.enabled=true\n",
        ] {
            assert!(text.contains(want), "missing {want:?} in:\n{text}");
        }
        assert_eq!(SecretConf::parse(&text).unwrap(), conf(Scheme::RsaOaepSha1));
        let v26 = conf(Scheme::RsaPkcs1).render(Release::Apim26);
        assert!(
            !v26.contains("algorithm") && !v26.contains("secVault"),
            "{v26}"
        );
        assert_eq!(SecretConf::parse(&v26).unwrap(), conf(Scheme::RsaPkcs1));
    }

    #[test]
    fn refuses_lower_case_type_and_missing_keys() {
        let text = conf(Scheme::RsaPkcs1)
            .render(Release::Apim32)
            .replace("=JKS", "=jks");
        let err = SecretConf::parse(&text).unwrap_err().to_string();
        assert!(err.contains("KeyStoreType.valueOf"), "{err}");
        let err = SecretConf::parse("secretRepositories=file\n").unwrap_err();
        assert!(err
            .to_string()
            .contains("keystore.identity.location is missing"));
        let text = conf(Scheme::RsaPkcs1).render(Release::Apim32) + "secVault.enabled=false\n";
        assert!(!SecretConf::parse(&text).unwrap().enabled);
    }
}
