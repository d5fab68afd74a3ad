//! Test fixtures for the phases' unit tests: a small topology (ecdsa-p256 keys, which are fast).

use crate::topology::Topology;

/// API-M 2.6, one node per profile; node `a` is the gateway.
pub(super) fn topology() -> Topology {
    let mut text =
        String::from("name = \"t\"\nproduct = \"apim-2.6\"\n[pki]\nkey = \"ecdsa-p256\"\n");
    for (name, profile) in [
        ("a", "gateway-worker"),
        ("km", "key-manager"),
        ("pub", "publisher"),
        ("store", "store"),
        ("tm", "traffic-manager"),
    ] {
        text += &format!(
            "[[node]]\nname = \"{name}\"\nprofile = \"{profile}\"\nhost = \"{name}.example.internal\"\n"
        );
    }
    Topology::parse(&text, std::path::Path::new("t.toml")).expect("the test topology parses")
}
