//! node.toml: a node's plan (docs/commands.md, "node.toml"), so a person can read who talks to
//! whom before anything is applied. The file is the [`crate::plan::NodePlan`]'s serde form
//! ([`crate::plan::node_toml`]); written deterministically.

use crate::plan::{node_toml, NodePlan, PeerGroups};
use crate::topology::{Node, Topology};

/// Renders `node`'s node.toml; `groups` are the set's peer groups (peer-groups.toml), which
/// the node's settings name without listing them.
pub(crate) fn render(topology: &Topology, node: &Node, groups: &PeerGroups) -> String {
    let plan = NodePlan::build_with(topology, node, &mut groups.clone());
    let text = node_toml::render(&plan, topology.product);
    // After the header line: how this node's start gets the secure vault's password.
    let vault = crate::vault::startup::node_toml_comment(&topology.secure_vault);
    match text.split_once('\n') {
        Some((head, rest)) => format!("{head}\n{vault}{rest}"),
        None => text,
    }
}
