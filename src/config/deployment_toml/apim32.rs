//! API-M 3.2: which peer tables each profile gets, after WSO2's own distributed sample
//! (kubernetes-apim 3.2.x pattern 3) and the profile templates. The traffic managers are the
//! event hub; the key manager notifies them of revoked tokens.

use super::tables::*;
use super::Doc;
use crate::resolve::settings::{address, nodes_of};
use crate::topology::{Node, Product, Profile, Topology};

/// Writes `node`'s peer tables.
pub(super) fn peers(out: &mut Doc, topology: &Topology, node: &Node) {
    let km = address(topology, Profile::KeyManager);
    let gw = address(topology, Profile::GatewayWorker);
    let tm = address(topology, Profile::TrafficManager);
    let tms = nodes_of(topology, Profile::TrafficManager);
    let product = Product::Apim32;
    match node.profile {
        Profile::KeyManager => {
            throttling(out, None, &tms);
            throttling_url_groups(out, &tms);
            if let Some(tm) = &tm {
                event_hub(out, tm, &tms, None);
                event_hub_publish(out, &tms);
                revocation_listener(out, tm);
            }
        }
        Profile::Publisher => {
            if let Some(km) = &km {
                key_manager(out, km);
            }
            if let Some(gw) = &gw {
                gateway_environment(out, gw, product);
            }
            throttling(out, tm.as_ref(), &tms);
            throttling_url_groups(out, &tms);
            if let Some(dp) = address(topology, Profile::Devportal) {
                devportal_url(out, &dp);
            }
        }
        Profile::Devportal | Profile::Store => {
            if let Some(km) = &km {
                key_manager(out, km);
            }
            if let Some(gw) = &gw {
                gateway_environment(out, gw, product);
            }
            throttling(out, None, &tms);
            throttling_url_groups(out, &tms);
        }
        Profile::TrafficManager => {
            if let Some(km) = &km {
                key_manager(out, km);
                revoke_endpoint(out, km, "Token revocation: the key manager's endpoint.");
            }
            let dup = duplicates(&tms, node);
            if !dup.is_empty() {
                out.table(
                    "apim.throttling",
                    "Share throttle decisions with the other traffic managers.",
                );
                out.urls("event_duplicate_url", dup);
            }
        }
        Profile::GatewayWorker => {
            if let Some(km) = &km {
                key_manager(out, km);
            }
            throttling(out, tm.as_ref(), &tms);
            throttling_url_groups(out, &tms);
            if let Some(tm) = &tm {
                event_hub(out, tm, &tms, None);
            }
        }
        _ => {}
    }
}
