//! What `generate` and `plan` print: short, exact, mkcert-style.

use std::io::Write;
use std::path::Path;

use super::{ActionKind, Mode, Outcome};
use crate::topology::Topology;

fn date(t: time::OffsetDateTime) -> String {
    let d = t.date();
    format!("{:04}-{:02}-{:02}", d.year(), d.month() as u8, d.day())
}

/// Renders an outcome for people.
pub fn render_text(
    w: &mut dyn Write,
    topology: &Topology,
    out: &Path,
    outcome: &Outcome,
    mode: Mode,
    seconds: f64,
) -> std::io::Result<()> {
    let counts = outcome.counts();
    let summary = |past: bool| -> String {
        counts
            .iter()
            .map(|(k, n)| {
                let word = match (past, k) {
                    (false, k) => k.as_str(),
                    (true, ActionKind::Create) => "created",
                    (true, ActionKind::Keep) => "kept",
                    (true, ActionKind::Renew) => "renewed",
                    (true, ActionKind::Reissue) => "reissued",
                    (true, ActionKind::Update) => "updated",
                    (true, ActionKind::Remove) => "moved to history",
                    (true, ActionKind::NeedsRotate) => "need rotate",
                };
                format!("{n} {word}")
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    if mode == Mode::Plan {
        let width = outcome
            .actions
            .iter()
            .map(|a| a.path.len())
            .max()
            .unwrap_or(0);
        for a in &outcome.actions {
            writeln!(
                w,
                "{:<12} {:<width$}  {}",
                a.action.as_str(),
                a.path,
                a.reason
            )?;
        }
        return writeln!(
            w,
            "\nplan for {}: {}; nothing written",
            out.display(),
            summary(false)
        );
    }
    let changed = outcome.actions.iter().any(|a| a.action != ActionKind::Keep);
    if !changed {
        return writeln!(
            w,
            "{} is up to date: {} files checked, none changed",
            out.display(),
            outcome.actions.len()
        );
    }
    writeln!(
        w,
        "{} {} ({}: {} nodes, {} load balancers) in {} in {seconds:.2} s\n",
        outcome.verb,
        topology.name,
        topology.product.as_str(),
        topology.nodes.len(),
        topology.load_balancers.len(),
        out.display()
    )?;
    let width = outcome
        .certificates
        .iter()
        .map(|c| c.label.len())
        .max()
        .unwrap_or(0);
    for c in &outcome.certificates {
        let names = if c.label == "CA" {
            c.subject
                .rsplit("CN=")
                .next()
                .unwrap_or(&c.subject)
                .to_string()
        } else if c.path.starts_with("load-balancers/") {
            "load balancer (PEM for nginx, HAProxy)".to_string()
        } else if c.label == "primary" {
            format!(
                "the shared primary key, on all {} nodes",
                topology.nodes.len()
            )
        } else {
            c.names
                .iter()
                .map(|n| n.trim_start_matches("DNS:").trim_start_matches("IP:"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        writeln!(
            w,
            "  {:<width$}  {names}  (until {})",
            c.label,
            date(c.not_after)
        )?;
    }
    writeln!(w, "\nFiles: {}.", summary(true))?;
    if !outcome.generated_passwords.is_empty() {
        writeln!(
            w,
            "Generated passwords ({}) are in {}/secrets.toml (mode 0600): keep it out of version control.",
            outcome.generated_passwords.join(", "),
            out.display()
        )?;
    }
    writeln!(w, "Next: `apim-pki verify {0}`, then on each node `apim-pki apply {0} --node NAME --apim-home PATH`.", out.display())
}
