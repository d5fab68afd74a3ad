//! deployment.toml `[secrets]` (API-M 3.2 and later) and its `$secret{alias}` references.
//!
//! `ciphertool.sh -Dconfigure` reads `[secrets]` (`Utils.getSecreteFromConfiguration`), encrypts
//! every `[plain]` value and rewrites the line as `alias = "base64"`. At start-up the config
//! mapper (`ReferenceResolver.resolveStringWithSecretPlaceHolders`) refuses a referenced secret
//! whose value is still `[plain]`, fails on a reference with no `[secrets]` entry, and renders
//! `cipher-text.properties` from the table; the XML then carries `$secret{alias}`, which the
//! runtime resolves through the vault.

use super::cipher_text::SecretValue;
use super::VaultError;

const FILE: &str = "deployment.toml";

/// Checks that `alias` can be a `[secrets]` key and a `$secret{alias}` reference: a TOML bare
/// key without dots (the cipher tool reads `dottedKeySet()`), no `}`.
pub fn validate_alias(alias: &str) -> Result<(), VaultError> {
    let bad = |reason| {
        Err(VaultError::BadAlias {
            alias: alias.to_string(),
            reason,
        })
    };
    if alias.is_empty() {
        return bad("it is empty");
    }
    if !alias
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return bad("use letters, digits, `_` and `-` only (a TOML bare key without dots)");
    }
    Ok(())
}

/// `$secret{alias}`: what a password field says instead of the password.
pub fn reference(alias: &str) -> String {
    format!("$secret{{{alias}}}")
}

/// The aliases referenced in `value`, as the config mapper finds them
/// (`StringUtils.substringsBetween(value, "$secret{", "}")`).
pub fn references_in(value: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = value;
    while let Some(start) = rest.find("$secret{") {
        let after = &rest[start + "$secret{".len()..];
        let Some(end) = after.find('}') else { break };
        out.push(&after[..end]);
        rest = &after[end + 1..];
    }
    out
}

/// One `[secrets]` line as the cipher tool leaves it: `alias = "base64"`.
pub fn entry_line(alias: &str, ciphertext: &str) -> Result<String, VaultError> {
    validate_alias(alias)?;
    if ciphertext
        .bytes()
        .any(|b| !(b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'='))
    {
        return Err(VaultError::NotBase64(format!(
            "the value for {alias} has characters outside the base64 alphabet"
        )));
    }
    Ok(format!("{alias} = \"{ciphertext}\""))
}

/// A whole `[secrets]` table (header and one line per entry, in the order given).
pub fn render_table(entries: &[(String, String)]) -> Result<String, VaultError> {
    let mut out = String::from("[secrets]\n");
    for (alias, ciphertext) in entries {
        out.push_str(&entry_line(alias, ciphertext)?);
        out.push('\n');
    }
    Ok(out)
}

/// The `[secrets]` entries of a deployment.toml, in file order, classified as the cipher tool
/// classifies them. No `[secrets]` table gives an empty list.
pub fn parse(deployment_toml: &str) -> Result<Vec<(String, SecretValue)>, VaultError> {
    let doc: toml::Table = deployment_toml.parse().map_err(|e: toml::de::Error| {
        let line = e
            .span()
            .map_or(0, |s| deployment_toml[..s.start].matches('\n').count() + 1);
        VaultError::Parse {
            file: FILE,
            line,
            reason: e.message().to_string(),
        }
    })?;
    let Some(secrets) = doc.get("secrets") else {
        return Ok(Vec::new());
    };
    let table = secrets.as_table().ok_or_else(|| VaultError::Parse {
        file: FILE,
        line: 0,
        reason: "`secrets` is not a table".into(),
    })?;
    let mut out = Vec::with_capacity(table.len());
    for (alias, value) in table {
        let text = value.as_str().ok_or_else(|| VaultError::Parse {
            file: FILE,
            line: 0,
            reason: format!("[secrets] {alias} is not a string"),
        })?;
        out.push((alias.clone(), SecretValue::classify(text)));
    }
    // toml::Table keeps keys sorted; restore file order for stable reports.
    out.sort_by_key(|(alias, _)| deployment_toml.find(&format!("\n{alias}")).unwrap_or(0));
    Ok(out)
}

/// Checks that `[secrets]` survives a later manual `ciphertool.sh -Dconfigure`: the header is
/// exactly `[secrets]` (the tool compares the trimmed line) and nothing but `alias = "value"`
/// lines and blank lines follow it. cipher-tool 1.1.26 and 1.1.28 (API-M 4.4, 4.6) end the
/// section on `line.matches("[.+]")`, which no table header matches, so they rewrite every later
/// non-blank line, comments and other tables included, to `key = "null"`. `Ok` when there is
/// no `[secrets]`; the error names the first offending line.
pub fn check_layout(deployment_toml: &str) -> Result<(), VaultError> {
    let mut lines = deployment_toml.lines().enumerate();
    let header = lines.by_ref().find(|(_, l)| {
        let t = l.trim();
        t == "[secrets]" || (t.starts_with("[secrets]") && !t.starts_with("[secrets."))
    });
    let Some((header_no, header)) = header else {
        return Ok(());
    };
    if header.trim() != "[secrets]" {
        return Err(VaultError::Parse {
            file: FILE,
            line: header_no + 1,
            reason: "the [secrets] header must be alone on its line; WSO2's cipher tool \
                     compares the whole line"
                .into(),
        });
    }
    for (no, line) in lines {
        let t = line.trim();
        if t.is_empty() {
            continue;
        }
        let reason = if t.starts_with('[') {
            "a table follows [secrets]; keep [secrets] last"
        } else if t.starts_with('#') {
            "a comment inside [secrets]; keep comments above the table"
        } else if !t.contains('=') {
            "a line of [secrets] that is not `alias = \"value\"`"
        } else {
            continue;
        };
        return Err(VaultError::Parse {
            file: FILE,
            line: no + 1,
            reason: format!(
                "{reason} (WSO2's cipher tool 1.1.26/1.1.28, shipped with API-M 4.4/4.6, \
                 rewrites every line after the [secrets] header to key = \"null\")"
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_and_references() {
        assert!(validate_alias("keystore_password").is_ok());
        assert!(validate_alias("tls-password2").is_ok());
        for bad in ["", "a.b", "a}b", "a b", "pässword"] {
            assert!(validate_alias(bad).is_err(), "{bad}");
        }
        assert_eq!(reference("x"), "$secret{x}");
        assert_eq!(
            references_in("u$secret{a}mid$secret{b}end$secret{open"),
            ["a", "b"]
        );
    }

    #[test]
    fn table_round_trips_through_toml() {
        let table = render_table(&[
            ("keystore_password".into(), "QUJD+/==".into()),
            ("admin_password".into(), "REVG".into()),
        ])
        .unwrap();
        let doc = format!("[server]\nhostname = \"h\"\n\n{table}");
        let parsed = parse(&doc).unwrap();
        assert_eq!(
            parsed,
            [
                (
                    "keystore_password".to_string(),
                    SecretValue::Encrypted("QUJD+/==".into())
                ),
                (
                    "admin_password".to_string(),
                    SecretValue::Encrypted("REVG".into())
                ),
            ]
        );
        assert!(entry_line("a", "not base64\"").is_err());
    }

    #[test]
    fn layout_survives_the_cipher_tool() {
        assert!(check_layout("[server]\nx = 1\n").is_ok());
        assert!(check_layout("[server]\nx = 1\n\n[secrets]\na = \"QUJD==\"\n\n").is_ok());
        let err = check_layout("[secrets]\na = \"x\"\n[server]\nb = 1\n").unwrap_err();
        assert!(err.to_string().contains("line 3") && err.to_string().contains("last"));
        let err = check_layout("[secrets]\n# note\na = \"x\"\n").unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
        let err = check_layout("[secrets] # x\na = \"x\"\n").unwrap_err();
        assert!(err.to_string().contains("alone"), "{err}");
        assert!(
            check_layout("[secrets.x]\n").is_ok(),
            "not the [secrets] table"
        );
    }

    #[test]
    fn plain_values_are_seen_as_plain() {
        let doc = "[secrets]\nadmin_password = \"[admin]\"\nempty = \"\"\n";
        let parsed = parse(doc).unwrap();
        assert_eq!(parsed[0].1, SecretValue::Plain("admin".into()));
        assert_eq!(parsed[1].1, SecretValue::Empty);
        assert!(parse("[server]\n").unwrap().is_empty());
        let err = parse("[secrets]\na = 1\n").unwrap_err();
        assert!(err.to_string().contains("not a string"));
    }
}
