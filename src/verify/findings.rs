//! Findings: the stable codes users gate CI on (cli.md), and the report's text and JSON forms.

use serde::Serialize;

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// A stable finding code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Code {
    HostnameMismatch,
    JavaOnlyMatch,
    ConfigHostUncovered,
    KeyCertMismatch,
    UntrustedChain,
    TruststoreMissingCa,
    TruststoreMissingPrimary,
    PrimaryDiffers,
    Expired,
    NotYetValid,
    ExpiresSoon,
    WeakKey,
    WeakSignature,
    DefaultCertificate,
    WrongPassword,
    MissingFile,
    CorruptFile,
    WrongKeystoreType,
    AliasMismatch,
    LiveUnreachable,
    LiveCertDiffers,
    LbBackendMissing,
    LbNameUncovered,
    LbForeignTrust,
    LbVerifyOff,
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
            Code::WrongPassword => "wrong-password",
            Code::MissingFile => "missing-file",
            Code::CorruptFile => "corrupt-file",
            Code::WrongKeystoreType => "wrong-keystore-type",
            Code::AliasMismatch => "alias-mismatch",
            Code::LiveUnreachable => "live-unreachable",
            Code::LiveCertDiffers => "live-cert-differs",
            Code::LbBackendMissing => "lb-backend-missing",
            Code::LbNameUncovered => "lb-name-uncovered",
            Code::LbForeignTrust => "lb-foreign-trust",
            Code::LbVerifyOff => "lb-verify-off",
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
    Set,
    Node(String),
    LoadBalancer(String),
}

/// One finding.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub severity: Severity,
    pub code: Code,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load_balancer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actual: Option<String>,
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
    pub errors: usize,
    pub warnings: usize,
    pub checked: usize,
}

/// The whole verify report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub ok: bool,
    pub ca_stage: String,
    pub summary: Summary,
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

    /// One line per finding, then a summary line.
    pub fn render_text(&self, name: &str, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        for f in &self.findings {
            let who = f
                .node
                .as_deref()
                .or(f.load_balancer.as_deref())
                .unwrap_or("-");
            let sev = match f.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
            };
            write!(out, "{sev:<8}{:<28}{who:<12}", f.code.as_str())?;
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
