//! What `generate` and `plan` print: short, exact, mkcert-style.

use std::io::Write;
use std::path::Path;

use crate::output::layout;
use crate::topology::Topology;

use super::model::{Cas, Issued, Item};
use super::types::{ActionKind, CaStep, CertSummary, Mode, Outcome};

fn date(t: time::OffsetDateTime) -> String {
    let d = t.date();
    format!("{:04}-{:02}-{:02}", d.year(), d.month() as u8, d.day())
}

/// Renders an outcome for people.
pub(crate) fn render_text(
    w: &mut dyn Write,
    topology: &Topology,
    out: &Path,
    outcome: &Outcome,
    mode: Mode,
    seconds: f64,
) -> std::io::Result<()> {
    if mode == Mode::Plan {
        return render_plan(w, out, outcome);
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
    render_certificates(w, topology, outcome)?;
    writeln!(w, "\nFiles: {}.", summary(outcome, true))?;
    if !outcome.generated_passwords.is_empty() {
        writeln!(
            w,
            "Generated passwords ({}) are in {}/secrets.toml (mode 0600): keep it out of version control.",
            outcome.generated_passwords.join(", "),
            out.display()
        )?;
    }
    next_steps(w, outcome, out)
}

/// How many files get each action: `3 create, 2 keep` (or, once done, `3 created, 2 kept`).
fn summary(outcome: &Outcome, past: bool) -> String {
    outcome
        .counts()
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
                (true, ActionKind::Replace) => "replaced (old ones in history/)",
            };
            format!("{n} {word}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A plan: one line per artifact, then the counts.
fn render_plan(w: &mut dyn Write, out: &Path, outcome: &Outcome) -> std::io::Result<()> {
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
    writeln!(
        w,
        "\nplan for {}: {}; nothing written",
        out.display(),
        summary(outcome, false)
    )?;
    if let Some(n) = outcome.counts().get(&ActionKind::NeedsRotate) {
        writeln!(w, "{n} artifacts need a new key or CA, which generate never makes: run `apim-pki rotate` for them (see `apim-pki rotate --help`)")?;
    }
    Ok(())
}

/// One line per certificate of the set: its label, names and expiry.
fn render_certificates(
    w: &mut dyn Write,
    topology: &Topology,
    outcome: &Outcome,
) -> std::io::Result<()> {
    let width = outcome
        .certificates
        .iter()
        .map(|c| c.label.len())
        .max()
        .unwrap_or(0);
    for c in &outcome.certificates {
        let names = if c.path == layout::CA_CERT {
            c.subject
                .rsplit("CN=")
                .next()
                .unwrap_or(&c.subject)
                .to_string()
        } else if c.path.starts_with("load-balancers/") {
            "load balancer (PEM for nginx, HAProxy)".to_string()
        } else if c.path.starts_with("nodes/*/") {
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
    Ok(())
}

/// The closing lines: for a rotation, what to ship where (and at a CA rollover stage, when to
/// go on); otherwise the next commands.
fn next_steps(w: &mut dyn Write, outcome: &Outcome, out: &Path) -> std::io::Result<()> {
    let dir = out.display();
    let verify_live = format!("`apim-pki verify {dir} --live`");
    match outcome.ca_step {
        Some(CaStep::Begin) => writeln!(w, "CA stage: rollover-begun. Ship every node's client-truststore.* and every load balancer's ca.crt, and restart the nodes one by one.\nWhen {verify_live} shows no finding, run `apim-pki rotate TOPOLOGY --out {dir} --ca finish`."),
        Some(CaStep::Finish) => writeln!(w, "CA stage: rollover-finished. Ship every node's keystores (wso2carbon.*, *-tls.*, client-truststore.*) and every load balancer's PEM files, and restart the nodes one by one.\nWhen {verify_live} shows no finding, run `apim-pki rotate TOPOLOGY --out {dir} --ca retire`."),
        Some(CaStep::Retire) => writeln!(w, "CA stage: stable (the previous CA is no longer trusted). Ship every node's client-truststore.* and every load balancer's ca.crt, restart the nodes one by one, then run {verify_live}."),
        None if outcome.verb == "Rotated" => {
            writeln!(w, "Ship the changed files and restart what received them, one at a time:")?;
            for line in shipping(&outcome.actions) {
                writeln!(w, "  {line}")?;
            }
            writeln!(w, "Then run {verify_live}.")
        }
        None => writeln!(w, "Next: `apim-pki verify {dir}`, then on each node `apim-pki apply {dir} --node NAME --apim-home PATH`."),
    }
}

/// "gw1: gw1-tls.jks" per node or load balancer whose files changed; owners whose changed files
/// are the same (a node's own name written as NAME) share one line.
fn shipping(actions: &[super::Action]) -> Vec<String> {
    use std::collections::BTreeMap;
    let mut by_owner: BTreeMap<(bool, String), Vec<String>> = BTreeMap::new();
    for a in actions {
        if matches!(a.action, ActionKind::Keep | ActionKind::NeedsRotate)
            || a.path.ends_with("node.toml")
        {
            continue;
        }
        let (is_lb, owner) = match (&a.node, &a.load_balancer) {
            (Some(n), _) => (false, n.clone()),
            (None, Some(h)) => (true, h.clone()),
            _ => continue,
        };
        let file = a.path.rsplit('/').next().unwrap_or(&a.path);
        let generic = if is_lb {
            file.to_string()
        } else {
            file.replacen(&format!("{owner}-"), "NAME-", 1)
        };
        by_owner.entry((is_lb, owner)).or_default().push(generic);
    }
    let mut by_files: BTreeMap<(bool, Vec<String>), Vec<String>> = BTreeMap::new();
    for ((is_lb, owner), mut files) in by_owner {
        files.sort();
        files.dedup();
        by_files.entry((is_lb, files)).or_default().push(owner);
    }
    by_files
        .into_iter()
        .map(|((is_lb, files), owners)| {
            let who = if is_lb { "load balancer" } else { "node" };
            let plural = if owners.len() == 1 { "" } else { "s" };
            let files = if owners.len() == 1 && !is_lb {
                files
                    .iter()
                    .map(|f| f.replacen("NAME-", &format!("{}-", owners[0]), 1))
                    .collect()
            } else {
                files
            };
            format!("{who}{plural} {}: {}", owners.join(", "), files.join(", "))
        })
        .collect()
}

/// The certificates of the set after the run, for the summary: the CA, then each item (in a
/// plan, only those whose certificate exists already).
pub(super) fn summarize(
    cas: &Cas,
    issued: &[(Item, Issued)],
    topology: &Topology,
) -> Vec<CertSummary> {
    let format = topology.keystores.format;
    let ca = cas.current.as_ref().map(|ca| CertSummary {
        label: "CA".into(),
        path: layout::CA_CERT.into(),
        names: Vec::new(),
        subject: ca.info().subject.clone(),
        not_after: ca.info().not_after,
    });
    let items = issued.iter().filter_map(|(item, issued)| {
        let info = &issued.cert.as_ref()?.info;
        let path = if item.node.is_none() && item.lb.is_none() {
            format!(
                "nodes/*/{}/{}",
                layout::SECURITY_DIR,
                layout::primary_file(format)
            )
        } else if let Some(n) = &item.node {
            layout::node_security(n, &layout::tls_file(n, format))
        } else {
            layout::lb_dir(&item.label)
        };
        Some(CertSummary {
            label: item.label.clone(),
            path,
            names: info.san_strings(),
            subject: info.subject.clone(),
            not_after: info.not_after,
        })
    });
    ca.into_iter().chain(items).collect()
}
