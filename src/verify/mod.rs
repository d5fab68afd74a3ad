//! Verify: read a generated set back with checks of its own, and probe live endpoints. Never
//! trusts the code that wrote the set.

pub mod findings;
pub mod hostname;
pub mod live;
pub mod offline;

use serde::Serialize;

use crate::inspect::{self, InspectError};
use crate::password::Password;
use hostname::{CertNames, Host, HostError};

/// One host's verdicts in `check-host`.
#[derive(Debug, Clone, Serialize)]
pub struct HostResult {
    pub host: String,
    pub java: bool,
    pub strict: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matched: Option<String>,
    pub reason: String,
}

/// The answer of `check-host`.
#[derive(Debug, Clone, Serialize)]
pub struct CheckHostReport {
    pub file: String,
    pub subject: String,
    pub hosts: Vec<HostResult>,
}

/// Why `check-host` could not answer (exit 2).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckHostError {
    #[error(transparent)]
    File(#[from] InspectError),
    #[error("the file holds no certificate to check (a keystore needs exactly one private-key entry, a PEM file a CERTIFICATE block)")]
    NoCertificate,
    #[error("the keystore holds {0} private-key entries; check-host needs exactly one")]
    SeveralKeys(usize),
    #[error("{0}")]
    Host(#[from] HostError),
}

/// What check-host says about a host written with a trailing dot (`gw.acme.internal.`).
///
/// Measured by `tests/jsse_host_texts.rs` with `SSLSocket` and `HttpsURLConnection`, both with
/// HTTPS host-name checking:
///
/// | JDK     | `gw.acme.internal.` against `DNS:gw.acme.internal`                       |
/// | ------- | ------------------------------------------------------------------------ |
/// | 17.0.15 | accepted: the trailing dot is dropped before SNI and host-name checking  |
/// | 11.0.10 | refused: `SSLHandshakeException: Illegal given domain name: <host>.`     |
///
/// check-host's `java` verdict is JDK 17's (cli.md), so it drops the dot, as curl does too, and
/// says in the reason that JDK 11.0.10 refuses the name.
pub const TRAILING_DOT_NOTE: &str = "the trailing dot is dropped, as JDK 17 and curl do; \
JDK 11.0.10 refuses a host name ending in a dot with \"Illegal given domain name\"";

/// `host` without one trailing dot (the DNS root), which JDK 17 ignores.
fn absolute_to_relative(host: &str) -> &str {
    match host.strip_suffix('.') {
        Some(h) if !h.is_empty() && !h.ends_with('.') => h,
        _ => host,
    }
}

/// Checks whether the certificate in `bytes` (PEM, or a keystore's single key entry) is valid
/// for each host, under JSSE's rules and under RFC 6125.
pub fn check_host(
    file: &str,
    bytes: &[u8],
    password: Option<&Password>,
    hosts: &[String],
) -> Result<CheckHostReport, CheckHostError> {
    // Validate every host before anything else: a bad host is an input error.
    let parsed: Vec<Host> = hosts
        .iter()
        .map(|h| Host::parse(absolute_to_relative(h)))
        .collect::<Result<_, _>>()?;
    let listing = inspect::inspect(bytes, password)?;
    let keys: Vec<_> = listing
        .entries
        .iter()
        .filter(|e| e.kind == "PrivateKeyEntry")
        .collect();
    let cert = match (listing.file_type.as_str(), keys.as_slice()) {
        ("PEM", _) => listing.entries.iter().find_map(|e| e.certificate.as_ref()),
        (_, [one]) => one.certificate.as_ref(),
        (_, []) => None,
        (_, many) => return Err(CheckHostError::SeveralKeys(many.len())),
    }
    .ok_or(CheckHostError::NoCertificate)?;
    let names = CertNames {
        common_names: cert.common_names.clone(),
        dns_sans: cert.dns_names.clone(),
        ip_sans: cert.ip_addresses.clone(),
    };
    let results = hosts
        .iter()
        .zip(&parsed)
        .map(|(text, host)| {
            let v = hostname::check(&names, host);
            let reason = if absolute_to_relative(text).len() < text.len() {
                format!("{} ({TRAILING_DOT_NOTE})", v.reason)
            } else {
                v.reason
            };
            HostResult {
                host: text.clone(),
                java: v.java,
                strict: v.strict,
                matched: v.matched,
                reason,
            }
        })
        .collect();
    Ok(CheckHostReport {
        file: file.to_string(),
        subject: cert.subject.clone(),
        hosts: results,
    })
}

/// Adds `--live` findings to an offline report: probes every endpoint of the set (cli.md),
/// concurrently but bounded, and checks that each serves a certificate the set holds for it.
pub fn with_live(
    set: &offline::OpenedSet,
    report: findings::Report,
    overrides: &[live::ConnectOverride],
    timeout: std::time::Duration,
) -> findings::Report {
    use findings::{Code, Finding, Report};
    let targets = offline::live_targets(set);
    let mut extra = Vec::new();
    let mut endpoints = Vec::new();
    let mut probed = Vec::new();
    for t in &targets {
        match live::resolve(&t.host, t.port, overrides) {
            Ok(addr) => {
                endpoints.push(live::Endpoint {
                    name: t.host.clone(),
                    port: t.port,
                    connect_to: addr,
                });
                probed.push(t);
            }
            Err(e) => extra.push(Finding::new(
                Code::LiveUnreachable,
                &t.owner,
                None,
                format!("{}:{}: {e}", t.host, t.port),
            )),
        }
    }
    for probe in live::probe_all(&endpoints, timeout, 64) {
        let (t, ep) = (
            probed[probe.endpoint_index],
            &endpoints[probe.endpoint_index],
        );
        let at = format!("{}:{} (at {})", t.host, t.port, ep.connect_to);
        match probe.result {
            Err(e) => extra.push(Finding::new(
                Code::LiveUnreachable,
                &t.owner,
                None,
                format!("{at}: {e}"),
            )),
            Ok(chain) => {
                let served = chain
                    .first()
                    .and_then(|c| crate::pki::CertInfo::from_der(c).ok());
                if !chain
                    .first()
                    .is_some_and(|leaf| t.acceptable.contains(leaf))
                {
                    let actual = served
                        .map(|i| format!("{} (SHA-256 {})", i.subject, i.sha256))
                        .unwrap_or_else(|| "no certificate".into());
                    extra.push(
                        Finding::new(Code::LiveCertDiffers, &t.owner, None, format!("{at} serves {actual}, not the certificate the set holds for it: the node runs other keystores than this set"))
                            .expected_actual("a certificate of this set", actual),
                    );
                }
            }
        }
    }
    let checked = report.summary.checked + targets.len();
    let mut all = report.findings;
    all.extend(extra);
    Report::new(report.ca_stage, all, checked)
}
