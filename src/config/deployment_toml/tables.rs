//! The deployment.toml tables that wire a node to its peers, shared by every version: one
//! function per table, each writing exactly the keys WSO2's config model reads from it. Which
//! node gets which table, and the URLs each names, is the plan's
//! ([`crate::plan::peers::peer_tables`]).

use super::Doc;
use crate::plan::peers::{GatewayEndpoints, PeerTable};
use crate::plan::Target;
use crate::topology::Product;

/// Writes `table` for a node of `product`.
pub(super) fn write(out: &mut Doc, table: &PeerTable, product: Product) {
    match table {
        PeerTable::KeyManager { service_url } => key_manager(out, service_url),
        PeerTable::RevokeEndpoint { revoke_endpoint } => {
            out.table(
                "apim.oauth_config",
                "Token revocation: the key manager's endpoint.",
            );
            out.url("revoke_endpoint", revoke_endpoint);
        }
        PeerTable::GatewayEnvironment(gw) => gateway_environment(out, gw, product),
        PeerTable::Throttling {
            service_url,
            throttle_decision_endpoints,
            ..
        } => throttling(out, service_url.as_ref(), throttle_decision_endpoints),
        PeerTable::ThrottlingUrlGroup {
            node,
            traffic_manager_url,
            traffic_manager_auth_url,
            ..
        } => {
            out.table(
                "[apim.throttling.url_group]",
                &format!("Throttle events to {node} (binary tcp + ssl auth)."),
            );
            out.urls("traffic_manager_urls", [traffic_manager_url]);
            out.urls("traffic_manager_auth_urls", [traffic_manager_auth_url]);
        }
        PeerTable::ThrottleDuplicates {
            event_duplicate_url,
            ..
        } => throttle_duplicates(out, event_duplicate_url),
        PeerTable::EventHub {
            service_url,
            event_listening_endpoints,
            event_duplicate_url,
            ..
        } => event_hub(
            out,
            service_url,
            event_listening_endpoints,
            event_duplicate_url,
        ),
        PeerTable::EventHubPublish {
            node,
            url,
            auth_url,
            ..
        } => {
            out.table(
                "[apim.event_hub.publish.url_group]",
                &format!("Publish events to {node} (binary tcp + ssl auth)."),
            );
            out.urls("urls", [url]);
            out.urls("auth_urls", [auth_url]);
        }
        PeerTable::RevocationListener {
            notification_endpoint,
        } => revocation_listener(out, notification_endpoint),
        PeerTable::Devportal { url } => {
            out.table(
                "apim.devportal",
                "Developer portal URL shown in the publisher.",
            );
            out.url("url", url);
        }
        PeerTable::SyncRuntimeArtifacts => {
            out.table(
                "apim.sync_runtime_artifacts.gateway",
                "Deploy the APIs of the \"Default\" environment.",
            );
            out.list("gateway_labels", &[environment_name(product).to_owned()]);
        }
    }
}

/// `[apim.throttling] event_duplicate_url` of a traffic manager: the other ones.
fn throttle_duplicates(out: &mut Doc, event_duplicate_url: &[Target]) {
    out.table(
        "apim.throttling",
        "Share throttle decisions with the other traffic managers.",
    );
    out.urls("event_duplicate_url", event_duplicate_url);
}

/// `[apim.key_manager] service_url`, with the admin credentials as WSO2's samples reference them.
fn key_manager(out: &mut Doc, service_url: &Target) {
    out.table(
        "apim.key_manager",
        "Key manager: validates tokens and keys.",
    );
    out.url("service_url", service_url);
    out.str("username", "$ref{super_admin.username}");
    out.str("password", "$ref{super_admin.password}");
}

/// The environment's name in the shipped file (3.2 names it "Production and Sandbox").
fn environment_name(product: Product) -> &'static str {
    match product {
        Product::Apim32 => "Production and Sandbox",
        _ => "Default",
    }
}

/// `[[apim.gateway.environment]]` pointing at the gateway's address, every field the template
/// reads written (an array entry gets no defaults): credentials as the shipped file references
/// them (`${admin.username}`, `${admin.password}`), never a password.
fn gateway_environment(out: &mut Doc, gw: &GatewayEndpoints, product: Product) {
    out.table(
        "[apim.gateway.environment]",
        "Gateway environment: where APIs deploy and the URLs shown to consumers.",
    );
    out.str("name", environment_name(product));
    out.str("display_name", environment_name(product));
    out.str("type", "hybrid");
    if product != Product::Apim32 {
        out.str("gateway_type", "Regular");
        out.str("provider", "wso2");
    }
    out.kv("display_in_api_console", "true");
    out.str(
        "description",
        "This is a hybrid gateway that handles both production and sandbox token traffic.",
    );
    out.kv("show_as_token_endpoint_url", "true");
    out.url("service_url", &gw.service_url);
    out.str("username", "${admin.username}");
    out.str("password", "${admin.password}");
    out.url("http_endpoint", &gw.http_endpoint);
    out.url("https_endpoint", &gw.https_endpoint);
    out.url("ws_endpoint", &gw.ws_endpoint);
    out.url("wss_endpoint", &gw.wss_endpoint);
    if let Some((http, https)) = &gw.websub {
        out.url("websub_event_receiver_http_endpoint", http);
        out.url("websub_event_receiver_https_endpoint", https);
    }
}

/// `[apim.throttling]`: the admin services (when `service` is given) and the decision (AMQP)
/// endpoints of every traffic manager.
fn throttling(out: &mut Doc, service: Option<&Target>, deciders: &[Target]) {
    out.table(
        "apim.throttling",
        "Throttling: the traffic manager's admin services and its decision (AMQP) endpoints.",
    );
    out.str("username", "$ref{super_admin.username}");
    out.str("password", "$ref{super_admin.password}");
    if let Some(service) = service {
        out.url("service_url", service);
    }
    out.urls("throttle_decision_endpoints", deciders);
}

/// `[apim.event_hub]`: the hub's services and every hub node's AMQP port; the other hub
/// nodes' when there are any (HA).
fn event_hub(out: &mut Doc, service: &Target, hubs: &[Target], duplicate: &[Target]) {
    out.table(
        "apim.event_hub",
        "Event hub: API, policy, key and revocation events.",
    );
    out.kv("enable", "true");
    out.str("username", "$ref{super_admin.username}");
    out.str("password", "$ref{super_admin.password}");
    out.url("service_url", service);
    out.urls("event_listening_endpoints", hubs);
    if !duplicate.is_empty() {
        out.urls("event_duplicate_url", duplicate);
    }
}

/// The key manager's token-revocation `[[event_listener]]`, notifying the traffic manager.
fn revocation_listener(out: &mut Doc, notification_endpoint: &Target) {
    out.table(
        "[event_listener]",
        "Token revocation: the key manager notifies the traffic manager.",
    );
    out.str("id", "token_revocation");
    out.str(
        "type",
        "org.wso2.carbon.identity.core.handler.AbstractIdentityHandler",
    );
    out.str("name", "org.wso2.is.notification.ApimOauthEventInterceptor");
    out.kv("order", "1");
    out.table("event_listener.properties", "Where revocations are sent.");
    out.url("notification_endpoint", notification_endpoint);
    out.str("username", "${admin.username}");
    out.str("password", "${admin.password}");
    out.kv("'header.X-WSO2-KEY-MANAGER'", "\"default\"");
}
