//! `[secure_vault]` (docs/topology.md, docs/secure-vault.md): on by default; `enabled = false`
//! turns it off; `scheme` picks the RSA padding the product's runtime decrypts; `password_file`
//! asks apply to write the start-up password file. Each bad value names its key and line.

use super::super::raw::RawSecureVault;
use super::Ctx;
use crate::topology::{SecureVaultSettings, TopologyError};
use crate::vault::startup::PasswordFile;
use crate::vault::Scheme;

/// The `[secure_vault]` settings, defaults filled in.
pub(super) fn settings(
    cx: &Ctx,
    raw: &RawSecureVault,
) -> Result<SecureVaultSettings, TopologyError> {
    let mut out = SecureVaultSettings {
        enabled: raw.enabled.unwrap_or(true),
        ..SecureVaultSettings::default()
    };
    if let Some(v) = &raw.scheme {
        let names: Vec<&str> = Scheme::ALL.iter().map(|s| s.name()).collect();
        out.scheme = cx.choice(v, "secure_vault.scheme", Scheme::parse, &names)?;
    }
    if let Some(v) = &raw.password_file {
        out.password_file = if v.get_ref() == "none" {
            None
        } else {
            let parse = |n: &str| PasswordFile::parse(n).map(Some);
            cx.choice(
                v,
                "secure_vault.password_file",
                parse,
                &["none", "tmp", "persist"],
            )?
        };
    }
    if !out.enabled && (raw.scheme.is_some() || out.password_file.is_some()) {
        let at = raw
            .scheme
            .as_ref()
            .or(raw.password_file.as_ref())
            .map(|s| s.span().start);
        return Err(cx.error(
            at,
            "secure_vault",
            "`scheme` and `password_file` mean nothing with `enabled = false`",
            Some("remove them, or turn the vault on".into()),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use crate::topology::Topology;
    use crate::vault::startup::PasswordFile;
    use crate::vault::Scheme;
    use std::path::Path;

    const HEAD: &str = "name = \"t\"\nproduct = \"apim-4.x\"\n";
    const NODE: &str = "\n[[node]]\nname = \"cp\"\nprofile = \"control-plane\"\nhost = \"cp.example.com\"\n\n[[node]]\nname = \"gw\"\nprofile = \"gateway-worker\"\nhost = \"gw.example.com\"\n\n[[node]]\nname = \"tm\"\nprofile = \"traffic-manager\"\nhost = \"tm.example.com\"\n";

    fn parse(extra: &str) -> Result<Topology, crate::topology::TopologyError> {
        let text = format!("{HEAD}{extra}{NODE}");
        Topology::parse(&text, Path::new("t.toml"))
    }

    #[test]
    fn on_by_default_with_oaep_and_no_file() {
        let t = parse("").expect("valid");
        assert!(t.secure_vault.enabled);
        assert_eq!(t.secure_vault.scheme, Scheme::RsaOaepSha1);
        assert_eq!(t.secure_vault.password_file, None);
    }

    #[test]
    fn choices_are_read() {
        let t = parse("[secure_vault]\nscheme = \"pkcs1\"\npassword_file = \"persist\"\n")
            .expect("valid");
        assert_eq!(t.secure_vault.scheme, Scheme::RsaPkcs1);
        assert_eq!(t.secure_vault.password_file, Some(PasswordFile::Persist));
        let t = parse("[secure_vault]\nenabled = false\n").expect("valid");
        assert!(!t.secure_vault.enabled);
    }

    #[test]
    fn bad_values_name_key_and_line() {
        let e = parse("[secure_vault]\nscheme = \"aes\"\n").unwrap_err();
        assert_eq!((e.key.as_str(), e.line), ("secure_vault.scheme", Some(4)));
        assert!(e.problem.to_string().contains("oaep, pkcs1"), "{e}");
        let e = parse("[secure_vault]\n\npassword_file = \"yes\"\n").unwrap_err();
        assert_eq!(
            (e.key.as_str(), e.line),
            ("secure_vault.password_file", Some(5))
        );
        let e = parse("[secure_vault]\nenabled = false\nscheme = \"oaep\"\n").unwrap_err();
        assert_eq!((e.key.as_str(), e.line), ("secure_vault", Some(5)));
        let e = parse("[secure_vault]\nenable = false\n").unwrap_err();
        assert!(e.problem.to_string().contains("enable"), "{e}");
    }
}
