//! The key-bearing artifacts the topology asks for (the primary, each node's TLS key, each load
//! balancer's key), as one list: the only input `decide` takes from the topology. When the
//! topology becomes a typed plan, this is the one function to point at it.

use crate::resolve;
use crate::topology::Topology;

use super::model::{ArtifactSpec, Owner};

/// Every key-bearing artifact of `topology`, in the order reports list them: the primary, the
/// nodes' TLS keys (when the set has per-node TLS keystores), the load balancers' keys.
pub(super) fn artifact_specs(topology: &Topology) -> Vec<ArtifactSpec> {
    let mut specs = vec![ArtifactSpec {
        owner: Owner::Primary,
        cert: resolve::primary_cert(topology),
        key_type: topology.keystores.primary_key,
    }];
    if resolve::per_node_tls(topology) {
        specs.extend(topology.nodes.iter().map(|node| ArtifactSpec {
            owner: Owner::Node(node.name.clone()),
            cert: resolve::node_cert(topology, node),
            key_type: topology.pki.key,
        }));
    }
    specs.extend(topology.load_balancers.iter().map(|lb| ArtifactSpec {
        owner: Owner::Lb(lb.host.to_string()),
        cert: resolve::lb_cert(topology, &lb.host),
        key_type: topology.pki.key,
    }));
    specs
}
