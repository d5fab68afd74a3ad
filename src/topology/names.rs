//! Syntax of the names that go into certificates: DNS host names (RFC 1123), wildcard SANs and IP
//! addresses. Pure functions; the topology parser and the verifier both use them.

use std::net::IpAddr;

/// A host as peers reach it: a DNS name (lower-cased) or an IP address.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(untagged)]
pub enum HostName {
    /// A DNS name, lower case, no trailing dot.
    Dns(String),
    /// An IPv4 or IPv6 address.
    Ip(IpAddr),
}

impl HostName {
    /// Parses a DNS name or an IP address; `None` when it is neither.
    pub fn parse(text: &str) -> Option<HostName> {
        if let Ok(ip) = text.parse::<IpAddr>() {
            return Some(HostName::Ip(ip));
        }
        is_dns_name(text).then(|| HostName::Dns(text.to_ascii_lowercase()))
    }

    /// True for an IP address.
    pub fn is_ip(&self) -> bool {
        matches!(self, HostName::Ip(_))
    }
}

impl std::fmt::Display for HostName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HostName::Dns(name) => f.write_str(name),
            HostName::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

/// True when `name` is a DNS host name: labels of 1–63 letters, digits and inner hyphens,
/// at most 253 characters, no trailing dot, and not all-numeric (that would be an IP address).
pub(crate) fn is_dns_name(name: &str) -> bool {
    if name.is_empty() || name.len() > 253 {
        return false;
    }
    let labels_ok = name.split('.').all(is_label);
    let last_numeric = name
        .rsplit('.')
        .next()
        .is_some_and(|l| l.bytes().all(|b| b.is_ascii_digit()));
    labels_ok && !last_numeric
}

/// True when `name` is a DNS name, or a wildcard whose whole leftmost label is `*` followed by at
/// least two DNS labels (`*.apis.acme.internal`).
pub(crate) fn is_san_dns_name(name: &str) -> bool {
    match name.strip_prefix("*.") {
        Some(rest) => is_dns_name(rest) && rest.contains('.'),
        None => is_dns_name(name),
    }
}

fn is_label(label: &str) -> bool {
    let bytes = label.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
        && bytes[0] != b'-'
        && bytes[bytes.len() - 1] != b'-'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_names() {
        for good in [
            "a",
            "km1.acme.internal",
            "xn--bcher-kva.example",
            "a-b.c",
            "1a.example",
        ] {
            assert!(is_dns_name(good), "{good}");
        }
        let long_label = format!("{}.example", "a".repeat(64));
        for bad in [
            "",
            "a..b",
            "-a.b",
            "a-.b",
            "a.b.",
            "exa mple.com",
            "*.a.b",
            "1.2.3",
            &long_label,
        ] {
            assert!(!is_dns_name(bad), "{bad}");
        }
    }

    #[test]
    fn wildcard_sans() {
        assert!(is_san_dns_name("*.apis.acme.internal"));
        assert!(!is_san_dns_name("*.internal"));
        assert!(!is_san_dns_name("a.*.internal"));
        assert!(!is_san_dns_name("km*.acme.internal"));
    }

    #[test]
    fn hosts() {
        assert_eq!(
            HostName::parse("KM.Acme.Internal"),
            Some(HostName::Dns("km.acme.internal".into()))
        );
        assert!(HostName::parse("10.0.1.11").is_some_and(|h| h.is_ip()));
        assert!(HostName::parse("::1").is_some_and(|h| h.is_ip()));
        assert_eq!(HostName::parse("300.1.1.1"), None);
    }
}
