//! The deployment.toml tables that wire a node to its peers, shared by every version: one
//! function per table, each writing exactly the keys WSO2's config model reads from it. The
//! per-version units (`apim32`, `apim4x`) decide which node gets which table.

use super::Doc;
use crate::resolve::settings::{node_address, port, Address, Target};
use crate::topology::{Node, Product};

/// `[apim.key_manager] service_url`, with the admin credentials as WSO2's samples reference them.
pub(super) fn key_manager(out: &mut Doc, km: &Address) {
    out.table(
        "apim.key_manager",
        "Key manager: validates tokens and keys.",
    );
    out.url(
        "service_url",
        km.target("https", port::MGMT_HTTPS, "/services/"),
    );
    out.str("username", "$ref{super_admin.username}");
    out.str("password", "$ref{super_admin.password}");
}

/// `[apim.oauth_config] revoke_endpoint`: where token revocations go.
pub(super) fn revoke_endpoint(out: &mut Doc, at: &Address, comment: &str) {
    out.table("apim.oauth_config", comment);
    out.url(
        "revoke_endpoint",
        at.target("https", port::MGMT_HTTPS, "/oauth2/revoke"),
    );
}

/// The environment's name in the shipped file (3.2 names it "Production and Sandbox").
pub(super) fn environment_name(product: Product) -> &'static str {
    match product {
        Product::Apim32 => "Production and Sandbox",
        _ => "Default",
    }
}

/// `[[apim.gateway.environment]]` pointing at the gateway's address, every field the template
/// reads written (an array entry gets no defaults): credentials as the shipped file references
/// them (`${admin.username}`, `${admin.password}`), never a password.
pub(super) fn gateway_environment(out: &mut Doc, gw: &Address, product: Product) {
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
    out.url(
        "service_url",
        gw.target("https", port::MGMT_HTTPS, "/services/"),
    );
    out.str("username", "${admin.username}");
    out.str("password", "${admin.password}");
    out.url("http_endpoint", gw.target("http", port::GW_HTTP, ""));
    out.url("https_endpoint", gw.target("https", port::GW_HTTPS, ""));
    out.url("ws_endpoint", gw.target("ws", port::WS, ""));
    out.url("wss_endpoint", gw.target("wss", port::WSS, ""));
    if product != Product::Apim32 {
        out.url(
            "websub_event_receiver_http_endpoint",
            gw.target("http", port::WEBSUB_HTTP, ""),
        );
        out.url(
            "websub_event_receiver_https_endpoint",
            gw.target("https", port::WEBSUB_HTTPS, ""),
        );
    }
}

fn each(nodes: &[&Node], scheme: &str, port: u16) -> Vec<Target> {
    nodes
        .iter()
        .map(|n| node_address(n).target(scheme, port, ""))
        .collect()
}

/// `[apim.throttling]`: the admin services (when `service` is given) and the decision (AMQP)
/// endpoints of every traffic manager.
pub(super) fn throttling(out: &mut Doc, service: Option<&Address>, deciders: &[&Node]) {
    out.table(
        "apim.throttling",
        "Throttling: the traffic manager's admin services and its decision (AMQP) endpoints.",
    );
    out.str("username", "$ref{super_admin.username}");
    out.str("password", "$ref{super_admin.password}");
    if let Some(service) = service {
        out.url(
            "service_url",
            service.target("https", port::MGMT_HTTPS, "/services/"),
        );
    }
    out.urls(
        "throttle_decision_endpoints",
        each(deciders, "tcp", port::AMQP),
    );
}

/// One `[[apim.throttling.url_group]]` per traffic manager: every one receives every event.
pub(super) fn throttling_url_groups(out: &mut Doc, receivers: &[&Node]) {
    for n in receivers {
        let a = node_address(n);
        out.table(
            "[apim.throttling.url_group]",
            &format!("Throttle events to {} (binary tcp + ssl auth).", n.name),
        );
        out.urls(
            "traffic_manager_urls",
            vec![a.target("tcp", port::BINARY_TCP, "")],
        );
        out.urls(
            "traffic_manager_auth_urls",
            vec![a.target("ssl", port::BINARY_SSL, "")],
        );
    }
}

/// The AMQP endpoints of the nodes other than `me`: where a traffic manager or event hub copies
/// its events in HA.
pub(super) fn duplicates(nodes: &[&Node], me: &Node) -> Vec<Target> {
    let others: Vec<&Node> = nodes
        .iter()
        .copied()
        .filter(|n| n.name != me.name)
        .collect();
    each(&others, "tcp", port::AMQP)
}

/// `[apim.event_hub]`: the hub's services and every hub node's AMQP port; with `duplicate`, the
/// other hub nodes' (HA).
pub(super) fn event_hub(
    out: &mut Doc,
    service: &Address,
    hubs: &[&Node],
    duplicate: Option<Vec<Target>>,
) {
    out.table(
        "apim.event_hub",
        "Event hub: API, policy, key and revocation events.",
    );
    out.kv("enable", "true");
    out.str("username", "$ref{super_admin.username}");
    out.str("password", "$ref{super_admin.password}");
    out.url(
        "service_url",
        service.target("https", port::MGMT_HTTPS, "/services/"),
    );
    out.urls("event_listening_endpoints", each(hubs, "tcp", port::AMQP));
    if let Some(d) = duplicate.filter(|d| !d.is_empty()) {
        out.urls("event_duplicate_url", d);
    }
}

/// One `[[apim.event_hub.publish.url_group]]` per hub node.
pub(super) fn event_hub_publish(out: &mut Doc, hubs: &[&Node]) {
    for n in hubs {
        let a = node_address(n);
        out.table(
            "[apim.event_hub.publish.url_group]",
            &format!("Publish events to {} (binary tcp + ssl auth).", n.name),
        );
        out.urls("urls", vec![a.target("tcp", port::BINARY_TCP, "")]);
        out.urls("auth_urls", vec![a.target("ssl", port::BINARY_SSL, "")]);
    }
}

/// The key manager's token-revocation `[[event_listener]]`, notifying the traffic manager.
pub(super) fn revocation_listener(out: &mut Doc, tm: &Address) {
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
    out.url(
        "notification_endpoint",
        tm.target("https", port::MGMT_HTTPS, "/internal/data/v1/notify"),
    );
    out.str("username", "${admin.username}");
    out.str("password", "${admin.password}");
    out.kv("'header.X-WSO2-KEY-MANAGER'", "\"default\"");
}

/// `[apim.devportal] url`: the developer portal's address (the publisher's "view in portal").
pub(super) fn devportal_url(out: &mut Doc, dp: &Address) {
    out.table(
        "apim.devportal",
        "Developer portal URL shown in the publisher.",
    );
    out.url("url", dp.target("https", port::MGMT_HTTPS, "/devportal"));
}
