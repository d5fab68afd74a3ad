//! Host-name rules: which names a certificate is valid for, under JSSE's rules and under RFC 6125. Pure functions; never opens files.
//!
//! Two verdicts per (certificate, host):
//!
//! * `java`: what a JDK 17 JSSE HTTPS client (`SSLParameters.setEndpointIdentificationAlgorithm("HTTPS")`,
//!   i.e. `sun.security.util.HostnameChecker` TYPE_TLS) accepts for a certificate that does *not*
//!   chain to a root of the JDK's `cacerts` (the WSO2 case: private CA or self-signed). Measured
//!   against JSSE itself by `tests/hostname_jsse.rs` for every row of [`CASES`]:
//!   - IP host: only iPAddress SANs count (never the CN, never a dNSName holding the IP text);
//!     addresses compare by value, and an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) equals the IPv4 one.
//!   - DNS host: if the certificate has any dNSName SAN (even an unusable one such as `example.com.`),
//!     only dNSName SANs count; otherwise the *last* (most specific) subject CN is used, also when
//!     the certificate has IP SANs.
//!   - Both sides are IDN-normalised (`xn--` A-labels decoded to Unicode, lower-cased) before comparing.
//!   - The template must be a legal SNI host name once each `*` is replaced by `z` (so no trailing dot,
//!     empty label, `_`, label over 63 characters) and its last `*` must be followed by a dot.
//!   - Labels are matched one by one (same label count); `*` can appear in *any* label, several times,
//!     and matches any run of characters (also none) within one label: `km*`, `*km`, `k*m`, `gw.*.x`,
//!     `*.com` all work. The public-suffix refusal of `*.com` applies only to public-CA certificates.
//! * `strict`: RFC 6125 / CA/Browser Forum rules, what a modern non-Java client (browsers, Go, rustls)
//!   accepts: dNSName SANs only; one `*` that is the whole leftmost label, covering exactly one label,
//!   never the bare parent and never directly under fewer than two labels (`*.com` refused; without a
//!   public-suffix list `*.co.uk` passes); IPs only against iPAddress SANs of the same family, byte
//!   for byte; ASCII case-insensitive; no trailing dots. The subject CN is never used, even when the
//!   certificate has no SAN at all: RFC 6125 only tolerates that fallback, the CA/B Baseline
//!   Requirements mandate SANs, and Chrome (since 58), Go (since 1.15) and rustls ignore the CN, so a
//!   CN-only certificate is a deployment that breaks as soon as a non-Java client connects.
use serde::Serialize;
use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer;

/// A host a client connects to: a lower-cased DNS name or an IP address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// A DNS name, lower-cased.
    Dns(String),
    /// An IPv4 or IPv6 address.
    Ip(IpAddr),
}

/// A host or certificate the rules cannot check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    /// Not a valid DNS name or IP address.
    #[error("invalid host {host:?}: {why}")]
    InvalidHost {
        /// The host as given.
        host: String,
        /// Why.
        why: &'static str,
    },
    /// The certificate does not parse.
    #[error("cannot parse certificate: {0}")]
    Certificate(String),
}

impl Host {
    /// Parses an IPv4/IPv6 address (IPv6 optionally in brackets) or an RFC 1123 DNS name
    /// (≤ 253 characters, labels of 1–63 letters/digits/hyphens not starting or ending with a hyphen,
    /// no trailing dot, last label not all-numeric), lower-cased.
    pub fn parse(s: &str) -> Result<Host, HostError> {
        let bad = |why| {
            Err(HostError::InvalidHost {
                host: s.to_owned(),
                why,
            })
        };
        if let Some(inner) = s.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            return match inner.parse::<Ipv6Addr>() {
                Ok(a) => Ok(Host::Ip(IpAddr::V6(a))),
                Err(_) => bad("not an IPv6 address inside brackets"),
            };
        }
        if let Ok(ip) = s.parse() {
            return Ok(Host::Ip(ip));
        }
        if s.contains('*') {
            return bad("a wildcard is not a host name");
        }
        if let Some(why) = dns_syntax_error(s) {
            return bad(why);
        }
        if s.rsplit('.')
            .next()
            .is_some_and(|l| l.bytes().all(|b| b.is_ascii_digit()))
        {
            return bad("all-numeric last label: neither a host name nor a valid IP address");
        }
        Ok(Host::Dns(s.to_ascii_lowercase()))
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Dns(d) => f.write_str(d),
            Host::Ip(ip) => ip.fmt(f),
        }
    }
}

/// The names in a certificate that host-name checks look at.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CertNames {
    /// Subject CNs in DER order (JSSE uses the last one).
    pub common_names: Vec<String>,
    /// DNS subject alternative names.
    pub dns_sans: Vec<String>,
    /// IP subject alternative names.
    pub ip_sans: Vec<IpAddr>,
}

impl CertNames {
    /// The names of a DER certificate.
    pub fn from_der(der: &[u8]) -> Result<Self, HostError> {
        let (_, cert) =
            X509Certificate::from_der(der).map_err(|e| HostError::Certificate(e.to_string()))?;
        Ok(Self::from_x509(&cert))
    }

    /// The names of a parsed certificate.
    pub fn from_x509(cert: &X509Certificate) -> Self {
        let mut names = CertNames {
            common_names: (cert.subject().iter_common_name())
                .filter_map(|a| a.as_str().ok().map(str::to_owned))
                .collect(),
            ..Self::default()
        };
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for name in &san.value.general_names {
                match name {
                    GeneralName::DNSName(d) => names.dns_sans.push((*d).to_owned()),
                    GeneralName::IPAddress(b) => names.ip_sans.extend(ip_from_bytes(b)),
                    _ => {}
                }
            }
        }
        names
    }
}

fn ip_from_bytes(b: &[u8]) -> Option<IpAddr> {
    match b.len() {
        4 => <[u8; 4]>::try_from(b).ok().map(IpAddr::from),
        16 => <[u8; 16]>::try_from(b).ok().map(IpAddr::from),
        _ => None,
    }
}

/// The verdicts for one host against one certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    /// A JDK 17 HTTPS client (JSSE) accepts the certificate for the host.
    pub java: bool,
    /// RFC 6125 / CA/B rules accept it.
    pub strict: bool,
    /// The name that satisfied the strictest passing verdict: "DNS:…", "IP:…" or "CN:…".
    pub matched: Option<String>,
    /// A short sentence explaining the verdicts.
    pub reason: String,
}

/// The message of the `CertificateException` JSSE (`sun.security.util.HostnameChecker`, JDK 11
/// and 17 alike) throws when `names` do not cover `host`, as a client's log shows it after
/// `javax.net.ssl.SSLHandshakeException: `. Checked against both JDKs by
/// `tests/jsse_host_texts.rs`.
pub fn jsse_refusal(names: &CertNames, host: &Host) -> String {
    match host {
        Host::Ip(_) if names.dns_sans.is_empty() && names.ip_sans.is_empty() => {
            "No subject alternative names present".into()
        }
        Host::Ip(ip) => format!("No subject alternative names matching IP address {ip} found"),
        Host::Dns(h) if names.dns_sans.is_empty() => format!("No name matching {h} found"),
        Host::Dns(h) => format!("No subject alternative DNS name matching {h} found."),
    }
}

/// Both verdicts, the name that matched and a reason, for `host` against `names`.
pub fn check(names: &CertNames, host: &Host) -> Verdict {
    let java = java_match(names, host);
    let strict = strict_match(names, host);
    let reason = reason(names, host, java.as_deref(), strict.as_deref());
    Verdict {
        java: java.is_some(),
        strict: strict.is_some(),
        matched: strict.or(java),
        reason,
    }
}

fn java_match(names: &CertNames, host: &Host) -> Option<String> {
    match host {
        Host::Ip(ip) => (names.ip_sans.iter())
            .find(|s| s.to_canonical() == ip.to_canonical())
            .map(|s| format!("IP:{s}")),
        Host::Dns(h) if !names.dns_sans.is_empty() => (names.dns_sans.iter())
            .find(|t| java_dns_match(h, t))
            .map(|t| format!("DNS:{t}")),
        Host::Dns(h) => (names.common_names.last())
            .filter(|cn| java_dns_match(h, cn))
            .map(|cn| format!("CN:{cn}")),
    }
}

fn strict_match(names: &CertNames, host: &Host) -> Option<String> {
    match host {
        Host::Ip(ip) => names
            .ip_sans
            .iter()
            .find(|s| *s == ip)
            .map(|s| format!("IP:{s}")),
        Host::Dns(h) => (names.dns_sans.iter())
            .find(|t| strict_dns_match(h, t))
            .map(|t| format!("DNS:{t}")),
    }
}

/// RFC 6125 §6.4.3 with CA/B restrictions; `host` is a lower-case legal DNS name.
fn strict_dns_match(host: &str, template: &str) -> bool {
    let t = template.to_ascii_lowercase();
    match t.strip_prefix("*.") {
        Some(parent) => {
            dns_syntax_error(parent).is_none()
                && parent.contains('.')
                && host.split_once('.').is_some_and(|(_, rest)| rest == parent)
        }
        None => dns_syntax_error(&t).is_none() && t == host,
    }
}

/// `HostnameChecker.isMatched` for TYPE_TLS with `chainsToPublicCA == false`.
fn java_dns_match(host: &str, template: &str) -> bool {
    let (Some(name), Some(tmpl)) = (idn_to_unicode(host), idn_to_unicode(template)) else {
        return false;
    };
    // hasIllegalWildcard: the last '*' must be followed by a '.'
    if tmpl.rfind('*').is_some_and(|i| !tmpl[i..].contains('.')) {
        return false;
    }
    if !java_sni_valid(&tmpl.replace('*', "z")) {
        return false;
    }
    let (n, t): (Vec<&str>, Vec<&str>) = (name.split('.').collect(), tmpl.split('.').collect());
    n.len() == t.len() && n.iter().zip(&t).all(|(n, t)| match_wildcards(n, t))
}

/// `IDN.toUnicode(IDN.toASCII(s))`, lower-cased; `None` where `IDN.toASCII` throws.
/// Approximation: no nameprep/NFKC beyond lower-casing, and A-labels are decoded only when they
/// decode to lower-case non-ASCII text (which is what survives Java's round-trip check).
fn idn_to_unicode(s: &str) -> Option<String> {
    let mut labels = Vec::new();
    for label in s.split('.') {
        if label.is_empty() || (label.is_ascii() && label.len() > 63) {
            return None;
        }
        let decoded = (label.get(..4))
            .filter(|p| p.eq_ignore_ascii_case("xn--"))
            .and_then(|_| punycode_decode(&label[4..]))
            .filter(|u| {
                !u.is_ascii() && u.chars().all(|c| c.is_ascii() || c.to_lowercase().eq([c]))
            });
        labels.push(decoded.unwrap_or_else(|| label.to_owned()).to_lowercase());
    }
    Some(labels.join("."))
}

/// `new SNIHostName(s)` succeeds: IDN STD3 rules, no empty label, no trailing dot.
fn java_sni_valid(s: &str) -> bool {
    !s.is_empty()
        && !s.ends_with('.')
        && s.split('.').all(|l| {
            !l.is_empty()
                && !l.starts_with('-')
                && !l.ends_with('-')
                && (!l.is_ascii() || l.len() <= 63)
                && l.chars()
                    .all(|c| !c.is_ascii() || c.is_ascii_alphanumeric() || c == '-')
        })
}

/// `HostnameChecker.matchWildCards`: `*` matches any run of characters (also none) in one label.
fn match_wildcards(name: &str, template: &str) -> bool {
    let Some(mut idx) = template.find('*') else {
        return name == template;
    };
    let (mut name, mut after, mut first) = (name, template, true);
    loop {
        let before = &after[..idx];
        after = &after[idx + 1..];
        match name.find(before) {
            Some(p) if !first || p == 0 => name = &name[p + before.len()..],
            _ => return false,
        }
        first = false;
        match after.find('*') {
            Some(i) => idx = i,
            None => return name.ends_with(after),
        }
    }
}

/// RFC 3492 decoding of the part after "xn--".
fn punycode_decode(input: &str) -> Option<String> {
    const BASE: u32 = 36;
    let (basic, extended) = input.rsplit_once('-').unwrap_or(("", input));
    let mut out: Vec<char> = basic.chars().collect();
    let (mut n, mut i, mut bias) = (128u32, 0u32, 72u32);
    let mut digits = extended.as_bytes().iter();
    let mut first = true;
    while !digits.as_slice().is_empty() {
        let (old_i, mut w, mut k) = (i, 1u32, BASE);
        loop {
            let d = match *digits.next()? {
                b @ b'a'..=b'z' => b - b'a',
                b @ b'A'..=b'Z' => b - b'A',
                b @ b'0'..=b'9' => b - b'0' + 26,
                _ => return None,
            } as u32;
            i = i.checked_add(d.checked_mul(w)?)?;
            let t = k.saturating_sub(bias).clamp(1, 26);
            if d < t {
                break;
            }
            w = w.checked_mul(BASE - t)?;
            k += BASE;
        }
        let len = out.len() as u32 + 1;
        let mut delta = (i - old_i) / if first { 700 } else { 2 };
        delta += delta / len;
        let mut k = 0;
        while delta > 455 {
            delta /= 35;
            k += BASE;
        }
        (bias, first) = (k + 36 * delta / (delta + 38), false);
        n = n.checked_add(i / len)?;
        i %= len;
        out.insert(i as usize, char::from_u32(n)?);
        i += 1;
    }
    Some(out.into_iter().collect())
}

/// Why `name` is not an RFC 1123 host name (no trailing dot), if it is not.
fn dns_syntax_error(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        return Some("empty");
    }
    if name.len() > 253 {
        return Some("longer than 253 characters");
    }
    if name.ends_with('.') {
        return Some("trailing dot, which JSSE refuses");
    }
    name.split('.').find_map(|l| {
        if l.is_empty() {
            Some("empty label")
        } else if l.len() > 63 {
            Some("label longer than 63 characters")
        } else if !l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            Some("character other than a letter, digit, hyphen or dot")
        } else if l.starts_with('-') || l.ends_with('-') {
            Some("label starts or ends with a hyphen")
        } else {
            None
        }
    })
}

fn reason(names: &CertNames, host: &Host, java: Option<&str>, strict: Option<&str>) -> String {
    let wild = |m: &str| m.starts_with("DNS:") && m.contains('*');
    match (java, strict) {
        (_, Some(m)) if wild(m) => format!("{m} covers {host} under both JSSE and RFC 6125 rules"),
        (_, Some(m)) => format!("{m} equals {host}"),
        (Some(m), None) if m.starts_with("CN:") => format!(
            "only the subject {m} matches: JSSE falls back to the CN when there is no DNS SAN, \
             RFC 6125 clients do not"
        ),
        (Some(m), None) if m.starts_with("IP:") => {
            format!("{m} matches {host} only as an IPv4-mapped IPv6 address, which JSSE equates with IPv4")
        }
        (Some(m), None) if wild(m) && (!m.starts_with("DNS:*.") || m[5..].contains('*')) => {
            format!(
                "JSSE accepts the wildcard {m}; RFC 6125 allows only a whole leftmost \"*\" label"
            )
        }
        (Some(m), None) if wild(m) => {
            format!("JSSE accepts {m} for a private CA; RFC 6125 refuses a wildcard over a top-level domain")
        }
        (Some(m), None) => format!("JSSE accepts {m} after IDN normalisation; RFC 6125 does not"),
        (None, None) => match host {
            Host::Ip(ip) => {
                let as_text = |s: &String| s.parse::<IpAddr>().is_ok_and(|a| a == *ip);
                if names
                    .dns_sans
                    .iter()
                    .chain(&names.common_names)
                    .any(as_text)
                {
                    format!("no IP SAN equals {ip}; an IP written in a DNS SAN or the CN does not count")
                } else if names.ip_sans.is_empty() {
                    format!("the certificate has no IP SAN, and IP host {ip} matches only IP SANs")
                } else {
                    format!("no IP SAN equals {ip}")
                }
            }
            Host::Dns(h) if !names.dns_sans.is_empty() => {
                let mut r = format!("no DNS SAN matches {h}");
                let bad = (names.dns_sans.iter())
                    .find_map(|s| dns_syntax_error(&s.replace('*', "z")).map(|w| (s, w)));
                if let Some((san, why)) = bad {
                    r += &format!("; DNS:{san} is not a valid name ({why})");
                }
                if names
                    .common_names
                    .last()
                    .is_some_and(|cn| java_dns_match(h, cn))
                {
                    r += "; the CN matches but is ignored because DNS SANs exist";
                }
                r
            }
            Host::Dns(h) => {
                match names.common_names.last() {
                    Some(cn) => format!("no DNS SAN, and the CN {cn:?} does not match {h}"),
                    None if !names.ip_sans.is_empty() => {
                        format!("the certificate has only IP SANs and no CN, none of which can match {h}")
                    }
                    None => "the certificate has neither a DNS SAN nor a CN".to_owned(),
                }
            }
        },
    }
}

/// One row of the shared host-name table: `sans` are "DNS:…"/"IP:…", `cns` the subject CNs in
/// DER order, `java`/`strict` the expected verdicts (`java` measured with JDK 17 JSSE).
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub struct Case {
    /// What the case shows.
    pub what: &'static str,
    /// The certificate's SANs (`DNS:...`, `IP:...`).
    pub sans: &'static [&'static str],
    /// The certificate's CNs.
    pub cns: &'static [&'static str],
    /// The host checked.
    pub host: &'static str,
    /// JSSE's verdict.
    pub java: bool,
    /// RFC 6125's verdict.
    pub strict: bool,
}

impl Case {
    /// The certificate names of the case.
    pub fn names(&self) -> CertNames {
        let mut names = CertNames {
            common_names: self.cns.iter().map(|s| s.to_string()).collect(),
            ..CertNames::default()
        };
        for san in self.sans {
            if let Some(d) = san.strip_prefix("DNS:") {
                names.dns_sans.push(d.to_owned());
            } else if let Some(ip) = san.strip_prefix("IP:").and_then(|s| s.parse().ok()) {
                names.ip_sans.push(ip);
            }
        }
        names
    }
}

const fn c(
    what: &'static str,
    sans: &'static [&'static str],
    cns: &'static [&'static str],
    host: &'static str,
    java: bool,
    strict: bool,
) -> Case {
    Case {
        what,
        sans,
        cns,
        host,
        java,
        strict,
    }
}

const T: bool = true;
const F: bool = false;
const GW: &[&str] = &["DNS:gw.acme.internal"];
const WILD: &[&str] = &["DNS:*.acme.internal"];

#[doc(hidden)]
#[rustfmt::skip]
pub const CASES: &[Case] = &[
    c("exact", GW, &[], "gw.acme.internal", T, T),
    c("other name", GW, &[], "km.acme.internal", F, F),
    c("case-insensitive", &["DNS:GW.Acme.Internal"], &[], "gw.ACME.internal", T, T),
    c("second of several SANs", &["DNS:a.acme.internal", "IP:10.0.0.1", "DNS:gw.acme.internal"], &[], "gw.acme.internal", T, T),
    c("single-label host", &["DNS:localhost"], &[], "localhost", T, T),
    c("wildcard leftmost", WILD, &[], "gw.acme.internal", T, T),
    c("wildcard upper-case", &["DNS:*.ACME.internal"], &[], "gw.acme.internal", T, T),
    c("wildcard vs two labels", WILD, &[], "a.gw.acme.internal", F, F),
    c("wildcard vs parent", WILD, &[], "acme.internal", F, F),
    c("partial km*", &["DNS:km*.acme.internal"], &[], "km1.acme.internal", T, F),
    c("partial km* matches empty", &["DNS:km*.acme.internal"], &[], "km.acme.internal", T, F),
    c("partial km* other", &["DNS:km*.acme.internal"], &[], "gw.acme.internal", F, F),
    c("partial *km", &["DNS:*km.acme.internal"], &[], "wso2km.acme.internal", T, F),
    c("partial k*m", &["DNS:k*m.acme.internal"], &[], "k1m.acme.internal", T, F),
    c("two wildcards in a label", &["DNS:k*-*m.acme.internal"], &[], "key-man-km.acme.internal", T, F),
    c("wildcard middle label", &["DNS:gw.*.internal"], &[], "gw.acme.internal", T, F),
    c("wildcard in two labels", &["DNS:*.*.internal"], &[], "gw.acme.internal", T, F),
    c("wildcard last label", &["DNS:acme.*"], &[], "acme.internal", F, F),
    c("bare *", &["DNS:*"], &[], "localhost", F, F),
    c("*.com (private CA)", &["DNS:*.com"], &[], "acme.com", T, F),
    c("*.co.uk passes the 2-label rule", &["DNS:*.co.uk"], &[], "acme.co.uk", T, T),
    c("CN only", &[], &["gw.acme.internal"], "gw.acme.internal", T, F),
    c("CN only, other host", &[], &["gw.acme.internal"], "km.acme.internal", F, F),
    c("CN only, wildcard", &[], &["*.acme.internal"], "gw.acme.internal", T, F),
    c("CN only, last CN wins", &[], &["gw.acme.internal", "km.acme.internal"], "km.acme.internal", T, F),
    c("CN only, first CN ignored", &[], &["gw.acme.internal", "km.acme.internal"], "gw.acme.internal", F, F),
    c("CN ignored with DNS SAN", &["DNS:km.acme.internal"], &["gw.acme.internal"], "gw.acme.internal", F, F),
    c("CN used with only an IP SAN", &["IP:10.0.0.1"], &["gw.acme.internal"], "gw.acme.internal", T, F),
    c("DNS host vs IP SAN only", &["IP:10.0.0.1"], &[], "gw.acme.internal", F, F),
    c("IPv4 SAN", &["IP:10.0.0.1"], &[], "10.0.0.1", T, T),
    c("IPv4 SAN, other IP", &["IP:10.0.0.1"], &[], "10.0.0.2", F, F),
    c("IPv6 SAN, full-form host", &["IP:2001:db8::1"], &[], "2001:0db8:0000:0000:0000:0000:0000:0001", T, T),
    c("IPv6 SAN, compressed host", &["IP:2001:db8:0:0:0:0:0:1"], &[], "2001:DB8::1", T, T),
    c("IPv6 host in brackets", &["IP:::1"], &[], "[::1]", T, T),
    c("IPv4 host vs IPv4-mapped SAN", &["IP:::ffff:10.0.0.1"], &[], "10.0.0.1", T, F),
    c("IPv4-mapped host vs IPv4 SAN", &["IP:10.0.0.1"], &[], "::ffff:10.0.0.1", T, F),
    c("IP host vs IP text in DNS SAN", &["DNS:10.0.0.1"], &[], "10.0.0.1", F, F),
    c("IP host vs IP in CN only", &[], &["10.0.0.1"], "10.0.0.1", F, F),
    c("punycode exact", &["DNS:xn--bcher-kva.acme.example"], &[], "xn--bcher-kva.acme.example", T, T),
    c("punycode upper-case SAN", &["DNS:XN--BCHER-KVA.acme.example"], &[], "xn--bcher-kva.acme.example", T, T),
    c("wildcard over A-label", &["DNS:*.acme.example"], &[], "xn--bcher-kva.acme.example", T, T),
    c("partial wildcard vs A-label text", &["DNS:x*.acme.example"], &[], "xn--bcher-kva.acme.example", F, F),
    c("partial wildcard vs U-label", &["DNS:b*r.acme.example"], &[], "xn--bcher-kva.acme.example", T, F),
    c("Unicode CN vs A-label host", &[], &["bücher.acme.example"], "xn--bcher-kva.acme.example", T, F),
    c("invalid punycode compared as text", &["DNS:xn--zz.acme.example"], &[], "xn--zz.acme.example", T, T),
    c("trailing dot in SAN", &["DNS:gw.acme.internal."], &[], "gw.acme.internal", F, F),
    c("trailing-dot SAN hides the CN", &["DNS:gw.acme.internal."], &["gw.acme.internal"], "gw.acme.internal", F, F),
    c("empty label in SAN", &["DNS:gw..acme.internal"], &[], "gw.acme.internal", F, F),
    c("underscore in SAN", &["DNS:_gw.acme.internal"], &[], "gw.acme.internal", F, F),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let mut bad = Vec::new();
        for case in CASES {
            let host = Host::parse(case.host).unwrap();
            let v = check(&case.names(), &host);
            assert!(!v.reason.is_empty());
            assert_eq!(v.matched.is_some(), v.java || v.strict, "{case:?} {v:?}");
            if (v.java, v.strict) != (case.java, case.strict) {
                bad.push(format!("{case:?} -> {v:?}"));
            }
        }
        assert!(bad.is_empty(), "mismatches:\n{}", bad.join("\n"));
    }

    #[test]
    fn host_parse() {
        for s in [
            "a..b",
            "example.com.",
            "-a.b",
            "a-.b",
            "exa mple.com",
            "*.x.y",
            "",
            "a_b.c",
            "1.2.3",
            "[gw]",
        ] {
            assert!(Host::parse(s).is_err(), "{s:?} accepted");
        }
        assert!(Host::parse(&format!("{}.b", "a".repeat(64))).is_err());
        assert!(Host::parse(&format!("{}.b", "a".repeat(63))).is_ok());
        assert!(Host::parse(&["a"; 128].join(".")).is_err()); // 255 characters
        assert_eq!(
            Host::parse("GW.Acme.internal"),
            Ok(Host::Dns("gw.acme.internal".into()))
        );
        let v6 = Host::parse("[2001:DB8::1]").unwrap();
        assert_eq!(v6, Host::parse("2001:db8:0:0:0:0:0:1").unwrap());
        assert_eq!(v6.to_string(), "2001:db8::1");
        assert_eq!(Host::parse("10.0.0.1").unwrap().to_string(), "10.0.0.1");
    }

    #[test]
    fn punycode() {
        assert_eq!(punycode_decode("bcher-kva").as_deref(), Some("bücher"));
        assert_eq!(punycode_decode("mnchen-3ya").as_deref(), Some("münchen"));
        assert_eq!(punycode_decode("zz"), None);
        assert_eq!(
            idn_to_unicode("XN--BCHER-KVA.Example").as_deref(),
            Some("bücher.example")
        );
    }

    #[test]
    fn jsse_refusal_texts() {
        let sans = CertNames {
            common_names: vec!["gw1.acme.internal".into()],
            dns_sans: vec!["gw1.acme.internal".into()],
            ip_sans: vec!["10.0.0.1".parse().unwrap()],
        };
        let dns = Host::parse("gw2.acme.internal").unwrap();
        let ip = Host::parse("10.0.0.2").unwrap();
        assert_eq!(
            jsse_refusal(&sans, &dns),
            "No subject alternative DNS name matching gw2.acme.internal found."
        );
        assert_eq!(
            jsse_refusal(&sans, &ip),
            "No subject alternative names matching IP address 10.0.0.2 found"
        );
        let cn_only = CertNames {
            common_names: vec!["gw1.acme.internal".into()],
            ..Default::default()
        };
        assert_eq!(
            jsse_refusal(&cn_only, &dns),
            "No name matching gw2.acme.internal found"
        );
        assert_eq!(
            jsse_refusal(&cn_only, &ip),
            "No subject alternative names present"
        );
    }

    #[test]
    fn verdict_details() {
        let names = CertNames {
            common_names: vec!["gw.acme.internal".into()],
            ..Default::default()
        };
        let v = check(&names, &Host::parse("gw.acme.internal").unwrap());
        assert_eq!(v.matched.as_deref(), Some("CN:gw.acme.internal"));
        assert!(v.reason.contains("CN"), "{}", v.reason);
    }
}
