//! nginx: one file per load balancer, included from the `http {}` context of the main
//! nginx.conf. nginx OSS verifies an upstream with one TLS name per location, not per server,
//! and has no sticky cookie, so the node is chosen before proxying: `split_clients` spreads
//! requests (by a random request id, or by client address with `affinity = "source"`), a `map`
//! on the affinity cookie pins them, each node has its own upstream per port, and
//! `proxy_ssl_name` is that node's host. A node that refuses, times out or fails verification
//! gets the request retried once on the next node (`error_page` to a named location): nginx
//! OSS's passive health check here. Every name defined starts with the plan's slug, so several
//! load balancers can share one nginx.

use std::fmt::Write;

use super::{LbPlan, LbPort, Scheme};
use crate::topology::Affinity;

/// Connect, read and send timeouts (the gateway's own endpoint timeout is 180 s).
pub(crate) const CONNECT_TIMEOUT: &str = "5s";
pub(crate) const READ_TIMEOUT: &str = "180s";
/// WebSocket connections stay open while idle up to this long.
pub(crate) const TUNNEL_TIMEOUT: &str = "3600s";

/// The whole nginx.conf of `plan`.
pub(crate) fn render(plan: &LbPlan) -> String {
    let mut out = String::new();
    header(plan, &mut out);
    selection(plan, &mut out);
    for port in &plan.ports {
        upstreams(plan, port, &mut out);
    }
    for port in &plan.ports {
        server(plan, port, &mut out);
    }
    out
}

fn header(plan: &LbPlan, out: &mut String) {
    let _ = writeln!(
        out,
        "# nginx configuration of load balancer {} (fronts {}), deployment {}.",
        plan.host, plan.fronts, plan.deployment
    );
    let _ = writeln!(
        out,
        "# Written by apim-pki generate; do not edit: regenerate instead (docs/load-balancers.md)."
    );
    let _ = writeln!(
        out,
        "# Include it inside http {{ }} of the main nginx.conf: include {}/nginx.conf;",
        dir_of(&plan.files.cert)
    );
    let _ = writeln!(
        out,
        "# Files on this host: {} {} {} (the CA bundle of the set; it follows CA rollovers).",
        plan.files.cert, plan.files.key, plan.files.ca
    );
    let nodes: Vec<&str> = plan.backends.iter().map(|b| b.name.as_str()).collect();
    let _ = writeln!(
        out,
        "# Nodes: {}. Affinity: {}.",
        nodes.join(", "),
        affinity_text(plan)
    );
    out.push('\n');
}

fn dir_of(path: &str) -> &str {
    path.rsplit_once('/').map_or(path, |(d, _)| d)
}

fn affinity_text(plan: &LbPlan) -> String {
    match plan.affinity {
        Affinity::Cookie => format!(
            "cookie {} (this load balancer's own; its value is the node's name)",
            plan.cookie
        ),
        Affinity::Source => "client address".into(),
        Affinity::None => "none".into(),
    }
}

/// `$slug_node` (the chosen node), `$slug_host` (its host), `$slug_alt` / `$slug_alt_host` (the
/// next node, for the retry), the Set-Cookie value and the WebSocket Connection header.
fn selection(plan: &LbPlan, out: &mut String) {
    let s = plan.slug();
    let key = match plan.affinity {
        Affinity::Source => "${remote_addr}",
        Affinity::Cookie | Affinity::None => "${request_id}",
    };
    let _ = writeln!(out, "split_clients \"{key}\" ${s}_spread {{");
    let n = plan.backends.len();
    let share = 10_000_usize.checked_div(n).unwrap_or(0);
    for (i, b) in plan.backends.iter().enumerate() {
        if i + 1 == n {
            let _ = writeln!(out, "    * {};", b.name);
        } else {
            let _ = writeln!(out, "    {}.{:02}% {};", share / 100, share % 100, b.name);
        }
    }
    out.push_str("}\n");
    let pick = if plan.affinity == Affinity::Cookie {
        let _ = writeln!(out, "map $cookie_{} ${s}_node {{", plan.cookie);
        let _ = writeln!(out, "    default ${s}_spread;");
        for b in &plan.backends {
            let _ = writeln!(out, "    {} {};", b.name, b.name);
        }
        out.push_str("}\n");
        // Set when the cookie is absent or names no node; `Secure` only on TLS ports (a
        // browser drops a Secure cookie from plain HTTP).
        for (suffix, tls) in [("", true), ("_plain", false)] {
            let _ = writeln!(
                out,
                "map $cookie_{} ${s}_set_cookie{suffix} {{",
                plan.cookie
            );
            let value = cookie_value(plan, &format!("${{{s}_node}}"), tls);
            let _ = writeln!(out, "    default \"{value}\";");
            for b in &plan.backends {
                let _ = writeln!(out, "    {} \"\";", b.name);
            }
            out.push_str("}\n");
        }
        format!("{s}_node")
    } else {
        format!("{s}_spread")
    };
    let mut map = |from: &str, to: &str, value: &dyn Fn(usize) -> String| {
        let _ = writeln!(out, "map ${from} ${to} {{");
        for (i, b) in plan.backends.iter().enumerate() {
            let _ = writeln!(out, "    {} {};", b.name, value(i));
        }
        out.push_str("}\n");
    };
    let hosts = |i: usize| plan.backends[i].tls_name(&plan.host).to_string();
    let next = |i: usize| plan.backends[(i + 1) % n].name.clone();
    map(&pick, &format!("{s}_host"), &hosts);
    map(&pick, &format!("{s}_alt"), &next);
    map(&format!("{s}_alt"), &format!("{s}_alt_host"), &hosts);
    let _ = writeln!(
        out,
        "map $http_upgrade ${s}_connection {{\n    default upgrade;\n    \"\" \"\";\n}}"
    );
    out.push('\n');
}

fn cookie_value(plan: &LbPlan, node: &str, tls: bool) -> String {
    let secure = if tls { " Secure;" } else { "" };
    format!(
        "{}={node}; Path=/;{secure} HttpOnly; SameSite=Lax",
        plan.cookie
    )
}

/// The variable holding the chosen node in the main location.
fn node_var(plan: &LbPlan) -> String {
    match plan.affinity {
        Affinity::Cookie => format!("{}_node", plan.slug()),
        Affinity::Source | Affinity::None => format!("{}_spread", plan.slug()),
    }
}

/// The upstream of one node on one port.
pub(crate) fn upstream_name(plan: &LbPlan, node: &str, port: u16) -> String {
    format!("{}_{node}_{port}", plan.slug())
}

fn upstreams(plan: &LbPlan, port: &LbPort, out: &mut String) {
    let _ = writeln!(out, "# Port {}: {}.", port.port, port.purpose);
    for b in &plan.backends {
        let _ = writeln!(
            out,
            "upstream {} {{",
            upstream_name(plan, &b.name, port.port)
        );
        let _ = writeln!(out, "    server {};", b.address(port.port));
        out.push_str("    keepalive 16;\n}\n");
    }
}

fn server(plan: &LbPlan, port: &LbPort, out: &mut String) {
    let tls = port.scheme == Scheme::Https;
    let f = &plan.files;
    out.push_str("\nserver {\n");
    let _ = writeln!(
        out,
        "    listen {}{};",
        port.port,
        if tls { " ssl" } else { "" }
    );
    let _ = writeln!(out, "    server_name {};", plan.host);
    if tls {
        let _ = writeln!(out, "    ssl_certificate {};", f.cert);
        let _ = writeln!(out, "    ssl_certificate_key {};", f.key);
        out.push_str("    ssl_protocols TLSv1.2 TLSv1.3;\n");
        out.push_str("    # Re-encryption: every node is verified against the set's CA bundle and its own host.\n");
        out.push_str("    proxy_ssl_verify on;\n    proxy_ssl_verify_depth 4;\n");
        let _ = writeln!(out, "    proxy_ssl_trusted_certificate {};", f.ca);
        out.push_str("    proxy_ssl_server_name on;\n    proxy_ssl_protocols TLSv1.2 TLSv1.3;\n    proxy_ssl_session_reuse on;\n");
    }
    let idle = if port.websocket {
        TUNNEL_TIMEOUT
    } else {
        READ_TIMEOUT
    };
    let _ = writeln!(out, "    proxy_connect_timeout {CONNECT_TIMEOUT};\n    proxy_read_timeout {idle};\n    proxy_send_timeout {idle};");
    out.push_str("    client_max_body_size 100m;\n    proxy_http_version 1.1;\n");
    out.push_str("    proxy_set_header Host $http_host;\n    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n    proxy_set_header X-Forwarded-Proto $scheme;\n");
    let s = plan.slug();
    let _ = writeln!(out, "    proxy_set_header Upgrade $http_upgrade;\n    proxy_set_header Connection ${s}_connection;");
    let retry = format!("@{s}_{}_retry", port.port);
    let tls = port.scheme == Scheme::Https;
    let plain = if tls { "" } else { "_plain" };
    let cookie = (plan.affinity == Affinity::Cookie).then(|| format!("${s}_set_cookie{plain}"));
    location(
        plan,
        port,
        "location /",
        &node_var(plan),
        &format!("{s}_host"),
        cookie.as_deref(),
        Some(&retry),
        out,
    );
    let alt_cookie = (plan.affinity == Affinity::Cookie)
        .then(|| format!("\"{}\"", cookie_value(plan, &format!("${{{s}_alt}}"), tls)));
    let alt = format!("{s}_alt");
    location(
        plan,
        port,
        &format!("location {retry}"),
        &alt,
        &format!("{s}_alt_host"),
        alt_cookie.as_deref(),
        None,
        out,
    );
    out.push_str("}\n");
}

#[allow(clippy::too_many_arguments)]
fn location(
    plan: &LbPlan,
    port: &LbPort,
    head: &str,
    node: &str,
    host: &str,
    cookie: Option<&str>,
    retry: Option<&str>,
    out: &mut String,
) {
    let tls = port.scheme == Scheme::Https;
    let scheme = if tls { "https" } else { "http" };
    let _ = writeln!(out, "    {head} {{");
    let _ = writeln!(
        out,
        "        proxy_pass {scheme}://{}_${{{node}}}_{};",
        plan.slug(),
        port.port
    );
    if tls {
        let _ = writeln!(out, "        proxy_ssl_name ${host};");
    }
    if let Some(c) = cookie {
        let _ = writeln!(out, "        add_header Set-Cookie {c} always;");
    }
    if let Some(r) = retry {
        let _ = writeln!(out, "        error_page 502 504 = {r};");
    }
    out.push_str("    }\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lb::tests::sample;
    use crate::topology::{Product, Profile};

    #[test]
    fn publisher_with_cookie() {
        let text = render(&sample(
            Affinity::Cookie,
            Profile::Publisher,
            Product::Apim26,
        ));
        assert!(text
            .contains("upstream apim_lb_example_test_n1_9443 {\n    server n1.example.test:9443;"));
        assert!(
            text.contains("server n2.example.test:9446;"),
            "offset applied"
        );
        assert!(text.contains("listen 9443 ssl;"));
        assert!(text.contains("proxy_ssl_verify on;"));
        assert!(text.contains("proxy_ssl_trusted_certificate /etc/lb/ca.crt;"));
        assert!(text.contains("ssl_certificate /etc/lb/tls.crt;"));
        assert!(text.contains("proxy_ssl_name $apim_lb_example_test_host;"));
        assert!(text.contains("map $apim_lb_example_test_node $apim_lb_example_test_host {\n    n1 n1.example.test;\n    n2 n2.example.test;"));
        assert!(text.contains("map $cookie_APIMLB $apim_lb_example_test_node {"));
        assert!(text.contains("split_clients \"${request_id}\""));
        assert!(text.contains("    50.00% n1;\n    * n2;"));
        assert!(text.contains(
            "proxy_pass https://apim_lb_example_test_${apim_lb_example_test_node}_9443;"
        ));
        assert!(
            text.contains("add_header Set-Cookie \"APIMLB=${apim_lb_example_test_alt}; Path=/;")
        );
        assert!(!text.contains("8243"));
        assert!(text.contains("add_header Set-Cookie $apim_lb_example_test_set_cookie always;"));
    }

    #[test]
    fn plain_ports_set_the_cookie_without_secure() {
        let text = render(&sample(
            Affinity::Cookie,
            Profile::GatewayManager,
            Product::Apim26,
        ));
        let plain = text.split("listen 8280;").nth(1).unwrap();
        let plain = plain.split("\nserver {").next().unwrap();
        assert!(
            plain.contains("add_header Set-Cookie $apim_lb_example_test_set_cookie_plain always;")
        );
        assert!(plain
            .contains("\"APIMLB=${apim_lb_example_test_alt}; Path=/; HttpOnly; SameSite=Lax\""));
        assert!(text.contains("map $cookie_APIMLB $apim_lb_example_test_set_cookie_plain {\n    default \"APIMLB=${apim_lb_example_test_node}; Path=/; HttpOnly;"));
    }

    #[test]
    fn gateway_ports_and_source_affinity() {
        let text = render(&sample(
            Affinity::Source,
            Profile::GatewayWorker,
            Product::Apim4x,
        ));
        for p in [9443, 8243, 8099, 8021] {
            assert!(text.contains(&format!("listen {p} ssl;")), "{p}");
        }
        for p in [8280, 9099, 9021] {
            assert!(text.contains(&format!("listen {p};")), "{p}");
            assert!(text.contains(&format!(
                "proxy_pass http://apim_lb_example_test_${{apim_lb_example_test_spread}}_{p};"
            )));
        }
        assert!(text.contains("split_clients \"${remote_addr}\""));
        assert!(!text.contains("cookie"));
        assert!(
            text.contains("proxy_read_timeout 3600s;"),
            "websocket ports stay open"
        );
    }

    #[test]
    fn three_nodes_split_evenly() {
        let mut plan = sample(Affinity::None, Profile::KeyManager, Product::Apim32);
        let mut third = plan.backends[0].clone();
        third.name = "n3".into();
        plan.backends.push(third);
        let text = render(&plan);
        assert!(text.contains("    33.33% n1;\n    33.33% n2;\n    * n3;"));
        assert!(text.contains("map $apim_lb_example_test_spread $apim_lb_example_test_alt {\n    n1 n2;\n    n2 n3;\n    n3 n1;"));
    }
}
