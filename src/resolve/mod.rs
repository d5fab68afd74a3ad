//! The query functions consumers called before the plan existed, kept as thin wrappers over
//! [`crate::plan`] so callers that still take `&Topology` keep working. New code reads the
//! [`crate::plan::Plan`] instead.

pub(crate) use crate::plan::certs::{
    ca_alias, ca_cert, lb_cert, node_cert, per_node_tls, primary_trust_aliases,
};

/// The 2.6 settings and peer addresses (see [`crate::plan::settings`]).
pub(crate) mod settings {
    pub(crate) use crate::plan::settings::*;
}
