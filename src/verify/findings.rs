//! Findings: the stable codes users gate CI on (docs/commands.md), and the report's text and JSON forms.

use serde::Serialize;

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The set is wrong: verify exits 1.
    Error,
    /// Worth knowing; verify still passes.
    Warning,
}

/// A stable finding code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Code {
    /// A node's TLS certificate does not cover its host or its load balancer's.
    HostnameMismatch,
    /// A name matches only under JSSE's looser wildcard rules.
    JavaOnlyMatch,
    /// A URL in some node's settings names a host the certificate serving it does not cover.
    ConfigHostUncovered,
    /// A key entry's private key does not belong to its certificate.
    KeyCertMismatch,
    /// A certificate does not chain to a CA in the node's truststore.
    UntrustedChain,
    /// A truststore lacks the set's CA.
    TruststoreMissingCa,
    /// A truststore lacks the primary certificate.
    TruststoreMissingPrimary,
    /// The primary key is not the same on every node.
    PrimaryDiffers,
    /// A certificate has expired.
    Expired,
    /// A certificate is not valid yet.
    NotYetValid,
    /// A certificate expires within the warning window.
    ExpiresSoon,
    /// A key is shorter than the minimum.
    WeakKey,
    /// A certificate is signed with a weak algorithm.
    WeakSignature,
    /// WSO2's shipped `CN=localhost` certificate.
    DefaultCertificate,
    /// A truststore trusts one of WSO2's well-known default keys.
    TrustsDefaultKey,
    /// A keystore does not open with its password.
    WrongPassword,
    /// A file the inventory records is missing.
    MissingFile,
    /// A file does not parse.
    CorruptFile,
    /// A keystore's bytes are not the type its name and configuration say.
    WrongKeystoreType,
    /// A TLS keystore's key entry has another alias than expected.
    AliasMismatch,
    /// Two artifacts (nodes' TLS keys, load balancers' keys, the primary, the CA) hold one
    /// private key: only the primary is shared, between nodes, by design.
    SharedKey,
    /// A PKCS#12 file without an integrity MAC, or with a private key stored unencrypted.
    UnprotectedKeystore,
    /// `--live`: the endpoint does not answer, refuses, or does not resolve.
    LiveUnreachable,
    /// `--live`: the endpoint serves another certificate than the set holds for it.
    LiveCertDiffers,
    /// A load balancer's port does not reach a node.
    LbBackendMissing,
    /// The name a load balancer verifies a node as is not on the node's certificate.
    LbNameUncovered,
    /// A load balancer verifies a node against another CA than the set's.
    LbForeignTrust,
    /// A re-encrypted load-balancer port reaches a node without certificate verification.
    LbVerifyOff,
    /// A run that was writing the set was interrupted: DIR/.journal is pending.
    InterruptedWrite,
    /// A password of the set in clear where secure vault could hold it.
    PlaintextPassword,
    /// A WSO2 default password (`wso2carbon`, `admin`), in clear or decrypted.
    DefaultPassword,
    /// A ciphertext the set's primary key cannot decrypt (or whose plaintext does not open its
    /// keystore), a secured field without a ciphertext, or no usable secret-conf.properties.
    VaultUndecryptable,
}

impl Code {
    /// The code as users see it.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::HostnameMismatch => "hostname-mismatch",
            Code::JavaOnlyMatch => "java-only-match",
            Code::ConfigHostUncovered => "config-host-uncovered",
            Code::KeyCertMismatch => "key-cert-mismatch",
            Code::UntrustedChain => "untrusted-chain",
            Code::TruststoreMissingCa => "truststore-missing-ca",
            Code::TruststoreMissingPrimary => "truststore-missing-primary",
            Code::PrimaryDiffers => "primary-differs",
            Code::Expired => "expired",
            Code::NotYetValid => "not-yet-valid",
            Code::ExpiresSoon => "expires-soon",
            Code::WeakKey => "weak-key",
            Code::WeakSignature => "weak-signature",
            Code::DefaultCertificate => "default-certificate",
            Code::TrustsDefaultKey => "trusts-default-key",
            Code::WrongPassword => "wrong-password",
            Code::MissingFile => "missing-file",
            Code::CorruptFile => "corrupt-file",
            Code::WrongKeystoreType => "wrong-keystore-type",
            Code::AliasMismatch => "alias-mismatch",
            Code::SharedKey => "shared-key",
            Code::UnprotectedKeystore => "unprotected-keystore",
            Code::LiveUnreachable => "live-unreachable",
            Code::LiveCertDiffers => "live-cert-differs",
            Code::LbBackendMissing => "lb-backend-missing",
            Code::LbNameUncovered => "lb-name-uncovered",
            Code::LbForeignTrust => "lb-foreign-trust",
            Code::LbVerifyOff => "lb-verify-off",
            Code::InterruptedWrite => "interrupted-write",
            Code::PlaintextPassword => "plaintext-password",
            Code::DefaultPassword => "default-password",
            Code::VaultUndecryptable => "vault-undecryptable",
        }
    }

    /// The severity a finding with this code has.
    pub fn severity(self) -> Severity {
        match self {
            Code::JavaOnlyMatch | Code::ExpiresSoon | Code::AliasMismatch => Severity::Warning,
            _ => Severity::Error,
        }
    }
}

/// Who a finding is about.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Owner {
    /// The set as a whole.
    Set,
    /// A node, by name.
    Node(String),
    /// A load balancer, by host.
    LoadBalancer(String),
}

/// One finding.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// Error or warning (from the code).
    pub severity: Severity,
    /// The stable code.
    pub code: Code,
    /// The node it is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// The load balancer it is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load_balancer: Option<String>,
    /// The file, relative to DIR.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// The certificate subject it is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// What was expected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<String>,
    /// What was found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actual: Option<String>,
    /// What is wrong, for people.
    pub message: String,
}

impl Finding {
    /// A finding with `code` about `owner`.
    pub fn new(
        code: Code,
        owner: &Owner,
        file: Option<&str>,
        message: impl Into<String>,
    ) -> Finding {
        let (node, load_balancer) = match owner {
            Owner::Set => (None, None),
            Owner::Node(n) => (Some(n.clone()), None),
            Owner::LoadBalancer(h) => (None, Some(h.clone())),
        };
        Finding {
            severity: code.severity(),
            code,
            node,
            load_balancer,
            file: file.map(str::to_string),
            subject: None,
            expected: None,
            actual: None,
            message: message.into(),
        }
    }

    /// Adds the certificate subject the finding is about.
    pub fn subject(mut self, subject: impl Into<String>) -> Finding {
        self.subject = Some(subject.into());
        self
    }

    /// Adds what was expected and what was found.
    pub fn expected_actual(
        mut self,
        expected: impl Into<String>,
        actual: impl Into<String>,
    ) -> Finding {
        self.expected = Some(expected.into());
        self.actual = Some(actual.into());
        self
    }
}

/// Counts for the summary line.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    /// Error findings.
    pub errors: usize,
    /// Warning findings.
    pub warnings: usize,
    /// Checks made.
    pub checked: usize,
}

/// The whole verify report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// True when no finding is an error.
    pub ok: bool,
    /// Where the set is in a CA rollover (`stable`, `rollover-begun`, `rollover-finished`).
    pub ca_stage: String,
    /// The counts.
    pub summary: Summary,
    /// Every finding, errors first.
    pub findings: Vec<Finding>,
}

impl Report {
    /// Builds a report from findings (sorted: errors first, then by node, code and file).
    pub fn new(ca_stage: String, mut findings: Vec<Finding>, checked: usize) -> Report {
        findings.sort_by(|a, b| {
            (a.severity, &a.node, &a.load_balancer, a.code, &a.file).cmp(&(
                b.severity,
                &b.node,
                &b.load_balancer,
                b.code,
                &b.file,
            ))
        });
        let errors = findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .count();
        let warnings = findings.len() - errors;
        Report {
            ok: errors == 0,
            ca_stage,
            summary: Summary {
                errors,
                warnings,
                checked,
            },
            findings,
        }
    }

    /// One line per finding, then a summary line. The code and owner columns are as wide as
    /// their longest value, so a long node name or a load balancer's host never runs into the
    /// file; a load balancer is shown as `lb:HOST`.
    pub fn render_text(&self, name: &str, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        let who = |f: &Finding| match (&f.node, &f.load_balancer) {
            (Some(n), _) => n.clone(),
            (None, Some(h)) => format!("lb:{h}"),
            (None, None) => "-".into(),
        };
        let code_width = self.findings.iter().map(|f| f.code.as_str().len()).max();
        let who_width = self.findings.iter().map(|f| who(f).len()).max();
        for f in &self.findings {
            let sev = match f.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
            };
            let (code, owner) = (f.code.as_str(), who(f));
            let (cw, ww) = (code_width.unwrap_or(0), who_width.unwrap_or(0));
            write!(out, "{sev:<7}  {code:<cw$}  {owner:<ww$}  ")?;
            if let Some(file) = &f.file {
                write!(out, "{file}: ")?;
            }
            writeln!(out, "{}", f.message)?;
        }
        let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
        if self.ok && self.findings.is_empty() {
            writeln!(
                out,
                "ok: {name}: {} passed, no findings (CA stage: {})",
                plural(self.summary.checked, "check"),
                self.ca_stage
            )
        } else {
            writeln!(
                out,
                "{}: {name}: {}, {}, {} (CA stage: {})",
                if self.ok { "ok" } else { "FAILED" },
                plural(self.summary.errors, "error"),
                plural(self.summary.warnings, "warning"),
                plural(self.summary.checked, "check"),
                self.ca_stage
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(findings: Vec<Finding>) -> String {
        let mut out = Vec::new();
        Report::new("stable".into(), findings, 10)
            .render_text("acme", &mut out)
            .unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn columns_never_run_into_each_other() {
        let lb = Owner::LoadBalancer("gw.acme.internal".into());
        let long = Owner::Node("gateway-worker-12".into());
        let short = Owner::Node("km1".into());
        let text = render(vec![
            Finding::new(
                Code::HostnameMismatch,
                &lb,
                Some("load-balancers/gw.acme.internal/tls.crt"),
                "m1",
            ),
            Finding::new(
                Code::Expired,
                &long,
                Some("nodes/gateway-worker-12/x.jks"),
                "m2",
            ),
            Finding::new(Code::AliasMismatch, &short, Some("nodes/km1/x.jks"), "m3"),
        ]);
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].contains("lb:gw.acme.internal  load-balancers/"),
            "{text}"
        );
        let owners: Vec<&str> = lines[..3]
            .iter()
            .map(|l| l.split_whitespace().nth(2).unwrap())
            .collect();
        assert_eq!(owners, ["lb:gw.acme.internal", "gateway-worker-12", "km1"]);
        // Every file starts in the same column.
        let cols: Vec<usize> = lines[..3]
            .iter()
            .map(|l| l.find(" load-balancers/").or(l.find(" nodes/")).unwrap())
            .collect();
        assert!(cols.windows(2).all(|w| w[0] == w[1]), "{text}");
        for l in &lines[..3] {
            let words: Vec<&str> = l.split_whitespace().collect();
            assert!(words.len() >= 4, "{l}");
        }
        assert!(
            lines[3].starts_with("FAILED: acme: 2 errors, 1 warning"),
            "{text}"
        );
    }
}
