//! Keystore passwords: generated from the OS RNG or taken from the environment, checked against
//! what Java and Carbon can use, and never shown (`Debug` and `Display` print `[elided]`).

use std::fmt;

use keystore::{KeystoreFormat, StorePassword};
use zeroize::Zeroizing;

/// Which password a keystore takes: the roles of `[passwords]`, inventory.json and secrets.toml.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum PasswordRole {
    /// The shared primary keystore (and the TLS keystore with `tls = "shared"`).
    Primary,
    /// Each node's own TLS keystore.
    Tls,
    /// The truststores.
    Truststore,
}

impl PasswordRole {
    /// Every role, in the order files list them.
    pub const ALL: [PasswordRole; 3] = [
        PasswordRole::Primary,
        PasswordRole::Tls,
        PasswordRole::Truststore,
    ];

    /// The name in topology files, inventory.json and secrets.toml.
    pub fn as_str(self) -> &'static str {
        match self {
            PasswordRole::Primary => "primary",
            PasswordRole::Tls => "tls",
            PasswordRole::Truststore => "truststore",
        }
    }

    /// Parses a role name.
    pub fn parse(text: &str) -> Option<PasswordRole> {
        PasswordRole::ALL.into_iter().find(|r| r.as_str() == text)
    }
}

impl fmt::Display for PasswordRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A keystore password. Wiped from memory when dropped; never printed.
///
/// It is the keystore crate's [`StorePassword`] (what the codecs take: `&Password` coerces to
/// `&StorePassword` through `Deref`) plus apim-pki's rules: generation from the OS RNG and
/// [`Password::check`] (what Java and Carbon accept for a format).
#[derive(Clone, PartialEq, Eq)]
pub struct Password(StorePassword);

impl std::ops::Deref for Password {
    type Target = StorePassword;

    fn deref(&self) -> &StorePassword {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password([elided])")
    }
}

/// Why a password cannot be used. Never contains the password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PasswordProblem {
    #[error("it is shorter than 6 characters (keytool refuses such keystores)")]
    TooShort,
    #[error("it contains `${{`, which Carbon would expand as a variable")]
    CarbonExpansion,
    #[error("it is not printable ASCII, which Java cannot use for {0} keystores (use jks, or an ASCII password)")]
    NotAsciiForPkcs12(&'static str),
    #[error("it contains a control character")]
    ControlCharacter,
}

impl Password {
    /// Wraps a password taken from the environment or a file.
    pub fn new(value: String) -> Password {
        Password(StorePassword::new(value))
    }

    /// 24 characters of `[A-Za-z0-9]` from the OS RNG.
    pub fn generate() -> Result<Password, getrandom::Error> {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        let mut out = Zeroizing::new(String::with_capacity(24));
        let mut byte = [0u8; 1];
        while out.len() < 24 {
            getrandom::fill(&mut byte)?;
            // 248 = 4 * 62: reject the tail so every character is equally likely.
            if byte[0] < 248 {
                out.push(ALPHABET[(byte[0] % 62) as usize] as char);
            }
        }
        Ok(Password(StorePassword::from(out)))
    }

    /// The password text, for encoders only.
    pub fn expose(&self) -> &str {
        self.0.expose()
    }

    /// Checks that Java and Carbon can use this password for `format` keystores.
    pub fn check(&self, format: KeystoreFormat) -> Result<(), PasswordProblem> {
        let p = self.expose();
        if p.chars().count() < 6 {
            return Err(PasswordProblem::TooShort);
        }
        if p.contains("${") {
            return Err(PasswordProblem::CarbonExpansion);
        }
        if p.chars().any(char::is_control) {
            return Err(PasswordProblem::ControlCharacter);
        }
        if format != KeystoreFormat::Jks && !p.bytes().all(|b| (0x20..0x7f).contains(&b)) {
            return Err(PasswordProblem::NotAsciiForPkcs12(format.as_str()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_passwords_are_24_alphanumerics_and_differ() {
        let a = Password::generate().expect("rng");
        let b = Password::generate().expect("rng");
        assert_eq!(a.expose().len(), 24);
        assert!(a.expose().bytes().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
        assert_eq!(format!("{a:?}"), "Password([elided])");
    }

    #[test]
    fn checks() {
        let p = |s: &str| Password::new(s.into());
        assert_eq!(
            p("abc").check(KeystoreFormat::Jks),
            Err(PasswordProblem::TooShort)
        );
        assert_eq!(
            p("abc${x}def").check(KeystoreFormat::Jks),
            Err(PasswordProblem::CarbonExpansion)
        );
        assert!(p("pässwörd").check(KeystoreFormat::Jks).is_ok());
        assert!(matches!(
            p("pässwörd").check(KeystoreFormat::Pkcs12),
            Err(PasswordProblem::NotAsciiForPkcs12(_))
        ));
        assert!(matches!(
            p("pässwörd").check(KeystoreFormat::Pkcs12Legacy),
            Err(PasswordProblem::NotAsciiForPkcs12(_))
        ));
        assert!(p("plain-ascii!").check(KeystoreFormat::Pkcs12).is_ok());
    }
}
