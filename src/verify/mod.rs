//! Verify: read a generated set back with checks of its own, and probe live endpoints. Never
//! trusts the code that wrote the set.

pub(crate) mod findings;
pub(crate) mod home;
pub(crate) mod hostname;
pub(crate) mod live;
pub(crate) mod offline;
pub(crate) mod vault;

use serde::Serialize;

use crate::inspect::{self, InspectError};
use crate::password::Password;
use hostname::{CertNames, Host, HostError};

/// One host's verdicts in `check-host`.
#[derive(Debug, Clone, Serialize)]
pub struct HostResult {
    /// The host as given.
    pub host: String,
    /// Accepted by a JDK 17 JSSE HTTPS client.
    pub java: bool,
    /// Accepted under RFC 6125.
    pub strict: bool,
    /// The name that matched (`DNS:...`, `IP:...`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matched: Option<String>,
    /// Why, for people.
    pub reason: String,
}

/// The answer of `check-host`.
#[derive(Debug, Clone, Serialize)]
pub struct CheckHostReport {
    /// The file checked.
    pub file: String,
    /// Its certificate's subject.
    pub subject: String,
    /// One verdict per host.
    pub hosts: Vec<HostResult>,
}

/// Which verdict of `check-host` decides whether a host passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostRules {
    /// What a JDK 17 JSSE HTTPS client accepts.
    Java,
    /// RFC 6125 / CA/Browser Forum rules.
    Strict,
}

impl CheckHostReport {
    /// True when every host passes under `rules`.
    pub fn passes(&self, rules: HostRules) -> bool {
        self.hosts.iter().all(|h| match rules {
            HostRules::Java => h.java,
            HostRules::Strict => h.strict,
        })
    }

    /// The report for people: the file and subject, then one line per host.
    pub fn render_text(&self, w: &mut dyn std::io::Write) -> std::io::Result<()> {
        writeln!(w, "{}  {}", self.file, self.subject)?;
        let width = self
            .hosts
            .iter()
            .map(|h| h.host.len())
            .max()
            .unwrap_or(0)
            .max(32);
        for h in &self.hosts {
            let yes = |b: bool| if b { "yes" } else { "no " };
            writeln!(
                w,
                "  {:<width$} java: {}  strict: {}  {}",
                h.host,
                yes(h.java),
                yes(h.strict),
                h.reason
            )?;
        }
        Ok(())
    }
}

/// Why `check-host` could not answer (exit 2).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckHostError {
    /// The file does not open.
    #[error(transparent)]
    File(#[from] InspectError),
    /// No certificate in it.
    #[error("the file holds no certificate to check (a keystore needs exactly one private-key entry, a PEM file a CERTIFICATE block)")]
    NoCertificate,
    /// Several key entries: which one serves is unclear.
    #[error("the keystore holds {0} private-key entries; check-host needs exactly one")]
    SeveralKeys(usize),
    /// A host that is not a valid name or address.
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
/// check-host's `java` verdict is JDK 17's (docs/commands.md), so it drops the dot, as curl does too, and
/// says in the reason that JDK 11.0.10 refuses the name.
pub(crate) const TRAILING_DOT_NOTE: &str = "the trailing dot is dropped, as JDK 17 and curl do; \
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

/// Names the certificate of this set whose SHA-256 fingerprint is `sha256`, if the set holds
/// it as a key entry's or a load balancer's certificate: "node gw2's TLS certificate
/// (nodes/gw2/…/gw2-tls.jks)".
pub(crate) fn held_certificate(
    inventory: &crate::output::inventory::Inventory,
    sha256: &str,
) -> Option<String> {
    use crate::output::inventory::ArtifactKind;
    inventory.artifacts.iter().find_map(|a| {
        let is_leaf = |e: &&crate::output::inventory::ArtifactEntry| {
            e.sha256 == sha256 && (e.entry == "private-key" || a.kind == ArtifactKind::LbCert)
        };
        a.entries.iter().find(is_leaf)?;
        let what = match (a.kind, &a.node, &a.load_balancer) {
            (ArtifactKind::PrimaryKeystore, _, _) => "the primary certificate".to_string(),
            (ArtifactKind::TlsKeystore, Some(n), _) => format!("node {n}'s TLS certificate"),
            (ArtifactKind::LbCert, _, Some(h)) => format!("load balancer {h}'s certificate"),
            _ => "a certificate of this set".to_string(),
        };
        Some(format!("{what} ({})", a.path))
    })
}

/// The message of a `live-cert-differs` finding: what `at` served (`actual`), which
/// certificate of the set that is when the set holds it (`known`), and what to do.
pub(crate) fn live_differs_message(
    owner: &findings::Owner,
    at: &str,
    actual: &str,
    known: Option<&str>,
) -> String {
    let who = match owner {
        findings::Owner::LoadBalancer(_) => "the load balancer",
        _ => "the node",
    };
    let own = match owner {
        findings::Owner::LoadBalancer(_) => "its own PEM files (or TLS passthrough to its nodes)",
        _ => "its own keystores",
    };
    match known {
        Some(held) => format!(
            "{at} serves {held}, not its own: {who} runs files meant for another; ship it {own} and restart it"
        ),
        None => format!(
            "{at} serves {actual}, which this set does not hold: {who} runs other files than this set (an older set, or WSO2's defaults); ship it {own} and restart it"
        ),
    }
}

/// Says in every `wrong-password` finding which password should open the file and where it
/// comes from (an environment variable by name, or secrets.toml), and what to do.
pub(crate) fn name_password_sources(
    set: &offline::OpenedSet,
    mut report: findings::Report,
) -> findings::Report {
    for f in &mut report.findings {
        if f.code != findings::Code::WrongPassword {
            continue;
        }
        let Some(artifact) = f.file.as_deref().and_then(|p| set.inventory.artifact(p)) else {
            continue;
        };
        let Some(role) = artifact.password.as_deref() else {
            continue;
        };
        let Some(source) = set
            .inventory
            .passwords
            .get(role)
            .or(set.inventory.passwords.get("primary"))
        else {
            continue;
        };
        let todo = match source {
            crate::output::inventory::PasswordSource::Env { variable } => {
                format!("set {variable} to the password the set was made with")
            }
            crate::output::inventory::PasswordSource::SecretsFile => {
                "restore the file (or secrets.toml) from a backup".to_string()
            }
        };
        f.message = if f
            .message
            .starts_with("does not open with its recorded password")
        {
            format!("does not open with the {role} password from {source} (or the file was tampered with): {todo}")
        } else {
            format!(
                "{} (the {role} password comes from {source}): {todo}",
                f.message
            )
        };
    }
    report
}

/// Adds `--live` findings to an offline report: probes every endpoint of the set (docs/commands.md),
/// concurrently but bounded, and checks that each serves a certificate the set holds for it.
pub(crate) fn with_live(
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
                        .as_ref()
                        .map(|i| format!("{} (SHA-256 {})", i.subject, i.sha256))
                        .unwrap_or_else(|| "no certificate".into());
                    let known = served
                        .as_ref()
                        .and_then(|i| held_certificate(&set.inventory, &i.sha256));
                    let message = live_differs_message(&t.owner, &at, &actual, known.as_deref());
                    extra.push(
                        Finding::new(Code::LiveCertDiffers, &t.owner, None, message)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::inventory::{Artifact, ArtifactEntry, ArtifactKind, Inventory};

    fn artifact(
        path: &str,
        kind: ArtifactKind,
        node: Option<&str>,
        lb: Option<&str>,
        entry: &str,
        sha: &str,
    ) -> Artifact {
        Artifact {
            path: path.into(),
            kind,
            node: node.map(Into::into),
            load_balancer: lb.map(Into::into),
            store_type: None,
            password: None,
            entries: vec![ArtifactEntry {
                alias: None,
                entry: entry.into(),
                subject: "CN=x".into(),
                issuer: "CN=ca".into(),
                sans: vec![],
                serial: "01".into(),
                sha256: sha.into(),
                not_before: String::new(),
                not_after: String::new(),
                key: "EC".into(),
            }],
        }
    }

    fn inventory() -> Inventory {
        Inventory {
            format_version: 1,
            name: "acme".into(),
            product: crate::topology::Product::Apim26,
            ca_stage: "stable".into(),
            ca_generation: 1,
            passwords: Default::default(),
            artifacts: vec![
                artifact(
                    "nodes/gw1/client-truststore.jks",
                    ArtifactKind::Truststore,
                    Some("gw1"),
                    None,
                    "trusted-cert",
                    "AA",
                ),
                artifact(
                    "nodes/gw2/gw2-tls.jks",
                    ArtifactKind::TlsKeystore,
                    Some("gw2"),
                    None,
                    "private-key",
                    "AA",
                ),
                artifact(
                    "nodes/gw2/wso2carbon.jks",
                    ArtifactKind::PrimaryKeystore,
                    Some("gw2"),
                    None,
                    "private-key",
                    "BB",
                ),
                artifact(
                    "load-balancers/gw.acme.internal/tls.crt",
                    ArtifactKind::LbCert,
                    None,
                    Some("gw.acme.internal"),
                    "certificate",
                    "CC",
                ),
            ],
            topology: serde_json::Value::Null,
            engine: None,
        }
    }

    #[test]
    fn names_the_served_certificate_when_the_set_holds_it() {
        let inv = inventory();
        assert_eq!(
            held_certificate(&inv, "AA").as_deref(),
            Some("node gw2's TLS certificate (nodes/gw2/gw2-tls.jks)")
        );
        assert_eq!(
            held_certificate(&inv, "BB").as_deref(),
            Some("the primary certificate (nodes/gw2/wso2carbon.jks)")
        );
        assert_eq!(
            held_certificate(&inv, "CC").as_deref(),
            Some("load balancer gw.acme.internal's certificate (load-balancers/gw.acme.internal/tls.crt)")
        );
        assert_eq!(held_certificate(&inv, "DD"), None);
    }

    #[test]
    fn says_load_balancer_for_a_load_balancer() {
        let lb = findings::Owner::LoadBalancer("gw.acme.internal".into());
        let node = findings::Owner::Node("gw1".into());
        let m = live_differs_message(&lb, "gw.acme.internal:9443", "CN=x", None);
        assert!(
            m.contains("the load balancer runs") && !m.contains("the node"),
            "{m}"
        );
        let m = live_differs_message(
            &node,
            "gw1:9443",
            "CN=x",
            Some("node gw2's TLS certificate (p)"),
        );
        assert!(
            m.starts_with("gw1:9443 serves node gw2's TLS certificate (p), not its own"),
            "{m}"
        );
        assert!(m.contains("the node runs"), "{m}");
    }
}
