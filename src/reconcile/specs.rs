//! The key-bearing artifacts the topology asks for (the primary, each node's TLS key, each load
//! balancer's key), as one list read from the plan: the only input `decide` takes from the
//! topology.

use crate::plan::{self, Deployment};
use crate::topology::Topology;

use super::model::{ArtifactSpec, Owner};

/// Every key-bearing artifact of `topology`, in the order reports list them: the primary, the
/// nodes' TLS keys (when the set has per-node TLS keystores), the load balancers' keys.
pub(super) fn artifact_specs(topology: &Topology) -> Vec<ArtifactSpec> {
    let primary = Deployment::build(topology).primary;
    let mut specs = vec![ArtifactSpec {
        owner: Owner::Primary,
        cert: primary.cert,
        key_type: primary.key,
    }];
    specs.extend(
        plan::node_tls_in_order(topology).map(|(name, tls)| ArtifactSpec {
            owner: Owner::Node(name),
            cert: tls.cert,
            key_type: tls.key,
        }),
    );
    specs.extend(plan::lb_plans(topology).into_iter().map(|lb| ArtifactSpec {
        owner: Owner::Lb(lb.host),
        cert: lb.cert,
        key_type: lb.key,
    }));
    specs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::certs;

    #[test]
    fn the_plan_gives_the_primary_its_own_key_type_and_every_node_its_tls_spec() {
        let t = super::super::testutil::topology();
        let specs = artifact_specs(&t);
        // [pki] key is ecdsa-p256; the primary keeps [keystores] primary_key (RSA).
        assert_eq!(specs[0].owner, Owner::Primary);
        assert_eq!(specs[0].key_type, t.keystores.primary_key);
        assert_ne!(specs[0].key_type, t.pki.key);
        assert_eq!(specs[0].cert, certs::primary_cert(&t));
        assert_eq!(specs.len(), 1 + t.nodes.len());
        for (spec, node) in specs[1..].iter().zip(&t.nodes) {
            assert_eq!(spec.owner, Owner::Node(node.name.clone()));
            assert_eq!(spec.cert, certs::node_cert(&t, node));
            assert_eq!(spec.key_type, t.pki.key);
        }
    }
}
