//! API-M 4.0-4.4 and 4.5+: which peer tables each profile gets, after WSO2's own distributed
//! samples (helm-apim 4.2.x distributed, kubernetes-apim 4.2.x pattern 4). The control plane is
//! the event hub and, without a key-manager node, the key manager; 4.5+ differs only in its
//! gateway profile (universal-gateway) and in keeping the shipped `server_role`.

use super::tables::*;
use super::Doc;
use crate::resolve::settings::{address, nodes_of, Address};
use crate::topology::{Node, Product, Profile, Topology};

/// The profile that serves API traffic in `product`.
fn gateway_profile(product: Product) -> Profile {
    match product {
        Product::Apim45 => Profile::UniversalGateway,
        _ => Profile::GatewayWorker,
    }
}

/// Writes `node`'s peer tables.
pub(super) fn peers(out: &mut Doc, topology: &Topology, node: &Node) {
    let product = topology.product;
    let cp = address(topology, Profile::ControlPlane);
    let cps = nodes_of(topology, Profile::ControlPlane);
    let separate_km = !nodes_of(topology, Profile::KeyManager).is_empty();
    // The key manager: a key-manager node if there is one, else the control plane.
    let km: Option<Address> = address(topology, Profile::KeyManager).or_else(|| cp.clone());
    // Throttling: the traffic managers, else the control plane (which embeds one).
    let tm_profile = if nodes_of(topology, Profile::TrafficManager).is_empty() {
        Profile::ControlPlane
    } else {
        Profile::TrafficManager
    };
    let tm = address(topology, tm_profile);
    let tms = nodes_of(topology, tm_profile);
    let hub = |out: &mut Doc, duplicate: bool| {
        if let Some(cp) = &cp {
            let dup = duplicate.then(|| duplicates(&cps, node));
            event_hub(out, cp, &cps, dup);
        }
    };
    match node.profile {
        Profile::ControlPlane => {
            if let (true, Some(km)) = (separate_km, &km) {
                key_manager(out, km);
            }
            if let Some(km) = &km {
                revoke_endpoint(out, km, "Token revocation: the key manager's endpoint.");
            }
            if let Some(gw) = address(topology, gateway_profile(product)) {
                gateway_environment(out, &gw, product);
            }
            hub(out, true);
            event_hub_publish(out, &cps);
            if let Some(cp) = &cp {
                devportal_url(out, cp);
            }
        }
        p if p == gateway_profile(product) => {
            if let Some(km) = &km {
                key_manager(out, km);
            }
            throttling(out, tm.as_ref(), &tms);
            throttling_url_groups(out, &tms);
            hub(out, false);
            out.table(
                "apim.sync_runtime_artifacts.gateway",
                "Deploy the APIs of the \"Default\" environment.",
            );
            out.list("gateway_labels", &[environment_name(product).to_owned()]);
        }
        Profile::TrafficManager => {
            if let Some(km) = &km {
                key_manager(out, km);
                revoke_endpoint(out, km, "Token revocation: the key manager's endpoint.");
            }
            hub(out, false);
            let dup = duplicates(&tms, node);
            if !dup.is_empty() {
                out.table(
                    "apim.throttling",
                    "Share throttle decisions with the other traffic managers.",
                );
                out.urls("event_duplicate_url", dup);
            }
        }
        Profile::KeyManager => {
            hub(out, false);
            event_hub_publish(out, &cps);
        }
        _ => {}
    }
}
