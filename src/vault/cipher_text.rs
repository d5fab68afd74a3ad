//! `repository/conf/security/cipher-text.properties`: the runtime's secret repository
//! (`alias=base64 ciphertext`).
//!
//! 2.6: the file is the source of truth; the shipped file lists plain values as `[value]`, and
//! `ciphertool.sh -Dconfigure` replaces each with its ciphertext through `Properties.store`
//! (so `=` padding is written `\=`). 3.2+: the server renders the file at every start from
//! deployment.toml `[secrets]` with `{{secret_name}}={{secret_value}}` (no escaping).

use super::javaprops;
use super::VaultError;

const FILE: &str = "cipher-text.properties";

/// A value of the secret repository, as the cipher tool classifies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretValue {
    /// A ciphertext (anything that is not `[plain]`).
    Encrypted(String),
    /// `[plain]`: not yet encrypted. The runtime would try to base64-decode it and fail; the
    /// 3.2+ config mapper refuses to start ("Secret references can't be plain text").
    Plain(String),
    /// Empty: the runtime skips the alias (it resolves to the alias name itself).
    Empty,
}

impl SecretValue {
    /// Classifies a value the way cipher-tool's `-Dconfigure` does: text between the first `[`
    /// and the first `]` after it is plain.
    pub fn classify(value: &str) -> SecretValue {
        let v = value.trim();
        if v.is_empty() {
            return SecretValue::Empty;
        }
        if let Some(open) = v.find('[') {
            if let Some(close) = v[open + 1..].find(']') {
                return SecretValue::Plain(v[open + 1..open + 1 + close].to_string());
            }
        }
        SecretValue::Encrypted(v.to_string())
    }
}

/// One alias of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CipherTextEntry {
    /// The alias.
    pub alias: String,
    /// Its value, encrypted or plain.
    pub value: SecretValue,
    /// 1-based line.
    pub line: usize,
}

/// Renders a 2.6 `cipher-text.properties` holding `entries` (alias, base64 ciphertext), sorted by
/// alias, escaped as `Properties.store` escapes them.
pub fn render(entries: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = entries.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = String::from(
        "# Secure vault secret repository: alias=ciphertext, as WSO2's ciphertool.sh -Dconfigure writes it.\n",
    );
    for (alias, ciphertext) in sorted {
        out.push_str(&javaprops::line(alias, ciphertext));
    }
    out
}

/// Renders the file as a 3.2+ server does from `[secrets]` at start-up
/// (`cipher-text.properties.j2`: one `name=value` line per secret, values verbatim).
pub fn render_from_secrets(secrets: &[(String, String)]) -> String {
    let mut out = String::from(
        "# By default, This file contains the secret alias names and the plain text passwords enclosed with '[]' brackets\n\
         # In Production environments, It is recommend to replace these plain text password by the encrypted values. CipherTool can be used for it.\n\n",
    );
    for (name, value) in secrets {
        out.push_str(&format!("{name}={value}\n"));
    }
    out
}

/// Reads the file as `Properties.load` does and classifies each value. A repeated alias is an
/// error (Java would silently keep the last one).
pub fn parse(text: &str) -> Result<Vec<CipherTextEntry>, VaultError> {
    let entries = javaprops::parse(text).map_err(|(line, problem)| VaultError::Escape {
        file: FILE,
        line,
        problem,
    })?;
    let mut out: Vec<CipherTextEntry> = Vec::with_capacity(entries.len());
    for e in entries {
        if let Some(first) = out.iter().find(|o| o.alias == e.key) {
            return Err(VaultError::Parse {
                file: FILE,
                line: e.line,
                reason: format!(
                    "alias {} is repeated (first on line {}); the runtime keeps only the last",
                    e.key, first.line
                ),
            });
        }
        out.push(CipherTextEntry {
            alias: e.key,
            value: SecretValue::classify(&e.value),
            line: e.line,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_like_the_cipher_tool() {
        assert_eq!(
            SecretValue::classify("[wso2carbon]"),
            SecretValue::Plain("wso2carbon".into())
        );
        assert_eq!(SecretValue::classify("  "), SecretValue::Empty);
        assert_eq!(
            SecretValue::classify("ab+/cd=="),
            SecretValue::Encrypted("ab+/cd==".into())
        );
    }

    #[test]
    fn render_parse_round_trip_with_padding_escaped() {
        let entries = vec![
            (
                "Server.Service.Connector.keystorePass".to_string(),
                "Zm9v+/==".to_string(),
            ),
            (
                "Carbon.Security.KeyStore.Password".to_string(),
                "YmFy".to_string(),
            ),
        ];
        let text = render(&entries);
        assert!(text.contains("Server.Service.Connector.keystorePass=Zm9v+/\\=\\=\n"));
        let parsed = parse(&text).unwrap();
        assert_eq!(
            parsed[0].alias, "Carbon.Security.KeyStore.Password",
            "sorted"
        );
        assert_eq!(parsed[1].value, SecretValue::Encrypted("Zm9v+/==".into()));
    }

    #[test]
    fn server_rendering_is_verbatim_and_parses() {
        let text = render_from_secrets(&[("keystore_password".into(), "QUJD==".into())]);
        assert!(text.ends_with("keystore_password=QUJD==\n"));
        let parsed = parse(&text).unwrap();
        assert_eq!(parsed[0].value, SecretValue::Encrypted("QUJD==".into()));
    }

    #[test]
    fn repeated_alias_is_an_error_with_its_line() {
        let err = parse("a=[x]\nb=y\na=z\n").unwrap_err().to_string();
        assert!(
            err.contains("line 3") && err.contains("first on line 1"),
            "{err}"
        );
    }

    /// The shipped 2.6.0 file: six active aliases, all plain, as `-Dconfigure` expects them.
    #[test]
    fn reads_wso2s_shipped_2_6_file() {
        let Some(text) = crate::vault::carbon26::reference_file(
            "repository/conf/security/cipher-text.properties",
        ) else {
            return;
        };
        let parsed = parse(&text).unwrap();
        let aliases: Vec<&str> = parsed.iter().map(|e| e.alias.as_str()).collect();
        assert_eq!(
            aliases,
            [
                "Carbon.Security.KeyStore.Password",
                "Carbon.Security.KeyStore.KeyPassword",
                "Carbon.Security.TrustStore.Password",
                "UserManager.AdminUser.Password",
                "Datasources.WSO2_CARBON_DB.Configuration.Password",
                "Server.Service.Connector.keystorePass",
            ]
        );
        assert!(parsed
            .iter()
            .all(|e| matches!(e.value, SecretValue::Plain(_))));
    }
}
