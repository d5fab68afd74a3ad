//! The keystore aliases a set uses, in one place: the CA's in every truststore (`<name>-ca`,
//! `<name>-ca-g2`, … after each rollover, `…-parent-N` for the chain above a CA you bring), the
//! primary's (its own alias, plus `wso2carbon` and `gateway_certificate_alias` in truststores)
//! and each node's TLS key alias (its name). The topology parser refuses any name that would
//! make two of them the same alias: a truststore holds one entry per alias, so the second would
//! silently replace the first.

/// The aliases under which truststores hold the primary certificate, besides its own alias.
pub(crate) const PRIMARY_TRUST_ALIASES: [&str; 2] = ["wso2carbon", "gateway_certificate_alias"];

/// The deployment name as an alias stem: lower case, anything outside `[a-z0-9._-]` as `-`.
pub(crate) fn ca_alias_base(name: &str) -> String {
    name.to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// The truststore alias of the CA of `generation` (`<name>-ca`, then `<name>-ca-g2`, …).
pub(crate) fn ca_alias(name: &str, generation: u32) -> String {
    let base = ca_alias_base(name);
    if generation <= 1 {
        format!("{base}-ca")
    } else {
        format!("{base}-ca-g{generation}")
    }
}

/// True when `alias` is, or may become, the alias of one of the set's CAs: any generation, or a
/// certificate of the chain above it (`<ca alias>-parent-N`).
pub(crate) fn is_ca_alias(name: &str, alias: &str) -> bool {
    let alias = alias.to_ascii_lowercase();
    let Some(rest) = alias.strip_prefix(&format!("{}-ca", ca_alias_base(name))) else {
        return false;
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let (generation, parent) = match rest.split_once("-parent-") {
        Some((g, p)) => (g, Some(p)),
        None => (rest, None),
    };
    let generation_ok = generation.is_empty() || generation.strip_prefix("-g").is_some_and(digits);
    generation_ok && parent.is_none_or(digits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ca_aliases_of_every_generation_and_parent_are_recognised() {
        for alias in [
            "acme-prod-ca",
            "acme-prod-ca-g2",
            "acme-prod-ca-g17",
            "acme-prod-ca-parent-1",
            "acme-prod-ca-g3-parent-2",
            "ACME-PROD-CA",
        ] {
            assert!(is_ca_alias("acme-prod", alias), "{alias}");
        }
        for alias in [
            "acme-prod",
            "acme-prod-cab",
            "acme-prod-ca-g",
            "acme-prod-ca-gx",
            "acme-prod-ca-parent-",
            "acme-prod-ca-2",
            "other-ca",
            "wso2carbon",
        ] {
            assert!(!is_ca_alias("acme-prod", alias), "{alias}");
        }
        assert!(is_ca_alias("Acme Prod", "acme-prod-ca"));
        assert_eq!(ca_alias("Acme Prod", 1), "acme-prod-ca");
        assert_eq!(ca_alias("acme", 3), "acme-ca-g3");
        assert!(is_ca_alias("acme", &ca_alias("acme", 3)));
    }
}
