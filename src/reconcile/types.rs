//! The public values of reconcile: what to do (mode, rotation, imported certificates) and what
//! was done (actions, certificates, outcome).

use std::collections::BTreeMap;

use serde::Serialize;
use time::OffsetDateTime;

use crate::pki::Key;

/// What to do with DIR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Compute the actions, write nothing.
    Plan,
    /// Compute and write.
    Generate,
}

/// A step of the staged CA rollover (docs/runbooks/ca-rollover.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaStep {
    /// Create the next CA and trust it everywhere.
    Begin,
    /// Make the next CA the issuing one and re-certify every leaf under it.
    Finish,
    /// Stop trusting the previous CA.
    Retire,
}

/// Where a set is in a CA rollover; recorded in inventory.json.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaStage {
    /// No rollover in progress.
    Stable,
    /// `rotate --ca begin` ran: the next CA is trusted, leaves still come from the current one.
    Begun,
    /// `rotate --ca finish` ran: leaves come from the new CA, the previous one is still trusted.
    Finished,
}

impl CaStage {
    /// The name inventory.json and verify use.
    pub fn as_str(self) -> &'static str {
        match self {
            CaStage::Stable => "stable",
            CaStage::Begun => "rollover-begun",
            CaStage::Finished => "rollover-finished",
        }
    }

    pub(super) fn parse(text: &str) -> Option<CaStage> {
        [CaStage::Stable, CaStage::Begun, CaStage::Finished]
            .into_iter()
            .find(|s| s.as_str() == text)
    }
}

/// What `rotate` forces after reconciling like generate.
#[derive(Debug, Clone, Default)]
pub struct Rotation {
    /// Nodes that get new keys.
    pub nodes: Vec<String>,
    /// Load balancers (by host) that get new keys.
    pub load_balancers: Vec<String>,
    /// Re-certify the primary key with a new validity (the key stays).
    pub primary_cert: bool,
    /// A CA rollover step.
    pub ca: Option<CaStep>,
    /// With none of the above: new keys for every node and load balancer.
    pub everything: bool,
}

impl Rotation {
    /// `rotate` with these options; with none, every node and load balancer is re-keyed.
    pub fn new(
        nodes: Vec<String>,
        load_balancers: Vec<String>,
        primary_cert: bool,
        ca: Option<CaStep>,
    ) -> Rotation {
        let everything =
            nodes.is_empty() && load_balancers.is_empty() && !primary_cert && ca.is_none();
        Rotation {
            nodes,
            load_balancers,
            primary_cert,
            ca,
            everything,
        }
    }

    pub(super) fn rekeys_node(&self, name: &str) -> bool {
        self.everything || self.nodes.iter().any(|n| n == name)
    }

    pub(super) fn rekeys_lb(&self, host: &str) -> bool {
        self.everything
            || self
                .load_balancers
                .iter()
                .any(|h| h.eq_ignore_ascii_case(host))
    }
}

/// Certificates a corporate CA signed, matched to the keys `csr` made (`import-signed`).
pub(crate) struct Imported {
    /// The issuing CA, then the certificates above it (intermediates, root), DER.
    pub ca_chain: Vec<Vec<u8>>,
    /// Per node name or load-balancer host: its key and its chain (leaf first).
    pub leaves: BTreeMap<String, (Key, Vec<Vec<u8>>)>,
}

/// What reconcile does (or would do) to one artifact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ActionKind {
    /// The file does not exist yet.
    Create,
    /// Exists, opens, matches the topology; not touched.
    Keep,
    /// Expires within `renew_before_days`: re-certified with the same key.
    Renew,
    /// Its names changed: re-certified with the same key.
    Reissue,
    /// A derived file whose inputs changed (node.toml, a truststore, a re-encrypted keystore).
    Update,
    /// Only `rotate` can bring it in line (its key type or CA changed).
    NeedsRotate,
    /// No longer in the topology: moved to history/.
    Remove,
    /// `rotate`: a new key and certificate in place of the file there (the old one goes to
    /// history/).
    Replace,
}

impl ActionKind {
    /// The word users see.
    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::Create => "create",
            ActionKind::Keep => "keep",
            ActionKind::Renew => "renew",
            ActionKind::Reissue => "reissue",
            ActionKind::Update => "update",
            ActionKind::NeedsRotate => "needs-rotate",
            ActionKind::Remove => "remove",
            ActionKind::Replace => "replace",
        }
    }
}

/// One artifact's action.
#[derive(Debug, Clone, Serialize)]
pub struct Action {
    /// What happens to it.
    pub action: ActionKind,
    /// The file, relative to DIR.
    pub path: String,
    /// The node it belongs to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// The load balancer it belongs to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load_balancer: Option<String>,
    /// Why, for people.
    pub reason: String,
}

/// A certificate the run produced or kept, for the summary users see.
#[derive(Debug, Clone, Serialize)]
pub struct CertSummary {
    /// `CA`, `primary`, a node name or a load balancer host.
    pub label: String,
    /// The file, relative to DIR.
    pub path: String,
    /// The names it covers (`DNS:...`, `IP:...`).
    pub names: Vec<String>,
    /// Its subject.
    pub subject: String,
    /// When it expires.
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
}

/// The result of a reconcile.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// Every artifact's action.
    pub actions: Vec<Action>,
    /// Certificates of the set after the run.
    pub certificates: Vec<CertSummary>,
    /// Roles whose password was generated in this run (recorded in secrets.toml).
    pub generated_passwords: Vec<String>,
    /// True when files were written.
    pub wrote: bool,
    /// What the run did, for the summary line: `Generated`, `Rotated` or `Imported`.
    pub verb: &'static str,
    /// The CA rollover step this run made, if any (for what to ship next).
    #[serde(skip)]
    pub ca_step: Option<CaStep>,
    /// True when the run first completed the writes of an interrupted run (its journal).
    pub recovered: bool,
}

impl Outcome {
    /// How many artifacts got each action.
    pub fn counts(&self) -> BTreeMap<ActionKind, usize> {
        let mut counts = BTreeMap::new();
        for a in &self.actions {
            *counts.entry(a.action).or_insert(0) += 1;
        }
        counts
    }
}
