//! Secure vault for deployment.toml (API-M 3.2 and later): the `[secrets]` table holds
//! ciphertexts, as `ciphertool.sh -Dconfigure` leaves it, made natively with the set's primary
//! key (docs/secure-vault.md).
//!
//! - [`seal_generated`]: generate's node file: every `"[plain]"` value becomes its ciphertext,
//!   reusing the one the node's previous file holds for the alias when it still decrypts to the
//!   same password (a re-run writes the same bytes).
//! - [`seal_merged`]: apply: the home's value is kept when it decrypts to the password the set's
//!   file holds, else replaced (and reported); every other `[plain]` entry of the home is
//!   encrypted too, as the cipher tool does.

use toml_edit::{DocumentMut, Value};

use crate::vault::cipher_text::SecretValue;
use crate::vault::{Sealed, VaultError, VaultKey};

const FILE: &str = "deployment.toml";

fn parse(text: &str) -> Result<DocumentMut, VaultError> {
    text.parse::<DocumentMut>().map_err(|e| VaultError::Parse {
        file: FILE,
        line: e
            .span()
            .map_or(0, |s| text[..s.start].matches('\n').count() + 1),
        reason: e.message().to_string(),
    })
}

/// The `[secrets]` string values of `doc`, in file order.
fn secrets(doc: &DocumentMut) -> Vec<(String, String)> {
    doc.get("secrets")
        .and_then(|s| s.as_table_like())
        .map(|t| {
            t.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.to_string(), s.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// The password a `"[plain]"` value holds (everything between the outer brackets, as
/// apim-pki writes it), or `None` for a ciphertext.
fn plain(value: &str) -> Option<&str> {
    let v = value.trim();
    (v.len() >= 2 && v.starts_with('[') && v.ends_with(']')).then(|| &v[1..v.len() - 1])
}

fn set_value(doc: &mut DocumentMut, alias: &str, value: &str) {
    if let Some(item) = doc
        .get_mut("secrets")
        .and_then(|s| s.as_table_like_mut())
        .and_then(|t| t.get_mut(alias))
        .and_then(|i| i.as_value_mut())
    {
        let decor = item.decor().clone();
        *item = Value::from(value);
        *item.decor_mut() = decor;
    }
}

/// `generated` (a node's deployment.toml as rendered, `[secrets]` in plain) with every plain
/// value sealed under `key`; `previous` is the node's file as the set holds it now.
pub(crate) fn seal_generated(
    generated: &str,
    previous: Option<&str>,
    key: &VaultKey,
) -> Result<String, VaultError> {
    let mut doc = parse(generated)?;
    let before: Vec<(String, String)> = previous
        .and_then(|p| parse(p).ok())
        .map(|d| secrets(&d))
        .unwrap_or_default();
    for (alias, value) in secrets(&doc) {
        let Some(password) = plain(&value) else {
            continue;
        };
        let old = before
            .iter()
            .find(|(a, _)| *a == alias)
            .map(|(_, v)| v.as_str());
        let sealed = key.seal(old, password)?;
        set_value(&mut doc, &alias, sealed.text());
    }
    Ok(doc.to_string())
}

/// What [`seal_merged`] did to one alias.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SecretOutcome {
    /// The home's ciphertext decrypts to the set's password: kept.
    Kept,
    /// Written from the set (the home had none, or a plain value).
    Written,
    /// The home's ciphertext did not decrypt to the set's password under the set's key (a
    /// re-keyed primary, a changed password, or a vault made under another key): replaced.
    Replaced,
    /// An entry the set does not manage, `[plain]` in the home: encrypted as the cipher tool
    /// would (its references stay as they are).
    EncryptedForeign,
    /// An entry the set does not manage whose ciphertext the set's key cannot decrypt: left,
    /// and reported (`verify` reports it as `vault-undecryptable`).
    UndecryptableForeign,
}

/// `merged` (the home's deployment.toml after the merge) with `[secrets]` sealed: the aliases
/// of `patch` (the set's node file, already sealed) hold ciphertexts of the set's passwords,
/// every other plain entry is encrypted. Errors when the set's own file does not decrypt
/// (generate was not re-run after a re-key).
pub(crate) fn seal_merged(
    merged: &str,
    patch: &str,
    current: &str,
    key: &VaultKey,
) -> Result<(String, Vec<(String, SecretOutcome)>), VaultError> {
    let mut doc = parse(merged)?;
    let ours = secrets(&parse(patch)?);
    let home = parse(current).map(|d| secrets(&d)).unwrap_or_default();
    let mut out = Vec::new();
    for (alias, value) in secrets(&doc) {
        let theirs = home
            .iter()
            .find(|(a, _)| *a == alias)
            .map(|(_, v)| v.as_str());
        let outcome = match ours.iter().find(|(a, _)| *a == alias) {
            Some((_, set_value_text)) => {
                let password = match plain(set_value_text) {
                    Some(p) => zeroize::Zeroizing::new(p.to_string()),
                    None => key.open(set_value_text)?,
                };
                let sealed = key.seal(theirs, &password)?;
                let outcome = match (&sealed, theirs.and_then(plain)) {
                    (Sealed::Kept(_), _) => SecretOutcome::Kept,
                    (Sealed::Fresh(_), _) if theirs.is_none() => SecretOutcome::Written,
                    (Sealed::Fresh(_), Some(_)) => SecretOutcome::Written,
                    (Sealed::Fresh(_), None) => SecretOutcome::Replaced,
                };
                // A fresh seal takes the set's ciphertext, so the home matches the set's file.
                let text = match &sealed {
                    Sealed::Kept(t) => t.clone(),
                    Sealed::Fresh(_) if plain(set_value_text).is_none() => set_value_text.clone(),
                    Sealed::Fresh(t) => t.clone(),
                };
                set_value(&mut doc, &alias, &text);
                outcome
            }
            None => match SecretValue::classify(&value) {
                SecretValue::Plain(_) => {
                    let password = plain(&value).unwrap_or_default().to_string();
                    let sealed = key.seal(None, &password)?;
                    set_value(&mut doc, &alias, sealed.text());
                    SecretOutcome::EncryptedForeign
                }
                SecretValue::Encrypted(c) if key.open(&c).is_err() => {
                    match key.open_any_scheme(&c) {
                        // The same key, the other padding: re-encrypted for the runtime's.
                        Some(value) => {
                            let sealed = key.seal(None, &value)?;
                            set_value(&mut doc, &alias, sealed.text());
                            SecretOutcome::EncryptedForeign
                        }
                        None => SecretOutcome::UndecryptableForeign,
                    }
                }
                _ => continue,
            },
        };
        out.push((alias, outcome));
    }
    Ok((same_line_ends(merged, doc.to_string()), out))
}

/// `text` with CRLF line ends when `like` has them (toml_edit writes LF for the values it
/// replaces).
fn same_line_ends(like: &str, text: String) -> String {
    if like.contains("\r\n") {
        text.replace("\r\n", "\n").replace('\n', "\r\n")
    } else {
        text
    }
}

/// Where generate puts a node's `secret-conf.properties` (copied into the home with the rest of
/// `nodes/<n>/repository`; the server never writes it, and without it every `$secret{}`
/// resolves to its own alias name).
pub(crate) fn secret_conf_path(node: &str) -> String {
    format!(
        "{}/repository/conf/security/secret-conf.properties",
        crate::output::layout::node_dir(node)
    )
}

/// The vault key generate seals a 3.2+ node's `[secrets]` with: the primary key entry (3.2+
/// render `[keystore.internal]` as the primary, and the cipher tool and runtime take the
/// internal keystore). `None` for API-M 2.6 (apply writes its vault) and with the vault off.
pub(crate) fn generate_key(
    topology: &crate::topology::Topology,
    primary: &crate::keystore::Keystore,
) -> Result<Option<VaultKey>, VaultError> {
    let sv = topology.secure_vault;
    if !sv.enabled || topology.product == crate::topology::Product::Apim26 {
        return Ok(None);
    }
    let release = crate::vault::release_of(topology.product);
    VaultKey::from_keystore(
        primary,
        &topology.keystores.primary_alias,
        release,
        sv.scheme,
    )
    .map(Some)
}

/// `secret-conf.properties` for a 3.2+ node: the primary keystore in the home, relative to it
/// (the start scripts `cd` to the home), the key alias and the scheme.
pub(crate) fn secret_conf(topology: &crate::topology::Topology, key: &VaultKey) -> String {
    use crate::vault::secret_conf::SecretConf;
    let keystores = &topology.keystores;
    SecretConf::for_primary(keystores.format, &keystores.primary_alias, key.scheme)
        .render(key.release)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vault::Scheme;

    fn test_key() -> VaultKey {
        crate::vault::key::test_key(Scheme::RsaOaepSha1)
    }

    const GEN: &str = "[keystore.primary]\npassword = \"$secret{keystore_password}\"\n\n# c\n[secrets]\nkeystore_password = \"[a]b]\"\ntruststore_password = \"[t]\"\n";

    #[test]
    fn generated_secrets_are_sealed_and_stable() {
        let key = test_key();
        let first = seal_generated(GEN, None, &key).unwrap();
        assert!(
            !first.contains("[a]b]") && !first.contains("\"[t]\""),
            "{first}"
        );
        let s = secrets(&parse(&first).unwrap());
        assert_eq!(key.open(&s[0].1).unwrap().as_str(), "a]b");
        assert_eq!(key.open(&s[1].1).unwrap().as_str(), "t");
        assert_eq!(seal_generated(GEN, Some(&first), &key).unwrap(), first);
        let changed = GEN.replace("[t]", "[t2]");
        let second = seal_generated(&changed, Some(&first), &key).unwrap();
        let s2 = secrets(&parse(&second).unwrap());
        assert_eq!(s2[0].1, s[0].1, "unchanged password keeps its ciphertext");
        assert_ne!(s2[1].1, s[1].1);
        assert!(crate::vault::secrets_toml::check_layout(&second).is_ok());
    }

    #[test]
    fn merged_keeps_replaces_and_encrypts_foreign_plain() {
        let key = test_key();
        let patch = seal_generated(GEN, None, &key).unwrap();
        let other = test_key();
        let foreign = other.seal(None, "t").unwrap();
        let current = format!(
            "[secrets]\nkeystore_password = \"{}\"\ntruststore_password = \"{}\"\nadmin_password = \"[admin]\"\n",
            key.seal(None, "a]b").unwrap().text(),
            foreign.text()
        );
        let (out, outcomes) = seal_merged(&current, &patch, &current, &key).unwrap();
        assert_eq!(
            outcomes,
            [
                ("keystore_password".to_string(), SecretOutcome::Kept),
                ("truststore_password".to_string(), SecretOutcome::Replaced),
                (
                    "admin_password".to_string(),
                    SecretOutcome::EncryptedForeign
                ),
            ]
        );
        let s = secrets(&parse(&out).unwrap());
        assert_eq!(key.open(&s[2].1).unwrap().as_str(), "admin");
        let (again, _) = seal_merged(&out, &patch, &out, &key).unwrap();
        assert_eq!(again, out, "second run changes nothing");
        // The operator's entry under the same key but PKCS#1 (a cipher tool run without the
        // OAEP flag): re-encrypted for the runtime's scheme, value unchanged.
        let pkcs1 = key
            .clone()
            .with_scheme(Scheme::RsaPkcs1)
            .seal(None, "db")
            .unwrap();
        let current2 = format!("[secrets]\ndb_password = \"{}\"\n", pkcs1.text());
        let (out2, o2) = seal_merged(&current2, &patch, &current2, &key).unwrap();
        assert_eq!(
            o2,
            [("db_password".to_string(), SecretOutcome::EncryptedForeign)]
        );
        assert_eq!(
            key.open(&secrets(&parse(&out2).unwrap())[0].1)
                .unwrap()
                .as_str(),
            "db"
        );
        let bad = format!("[secrets]\nkeystore_password = \"{}\"\n", foreign.text());
        assert!(
            seal_merged(&bad, &bad, &bad, &key).is_err(),
            "the set's own file must decrypt"
        );
    }
}
