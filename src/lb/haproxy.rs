//! HAProxy: one frontend and one backend per port of a load balancer. TLS terminates with
//! haproxy.pem; each server re-encrypts with `ssl verify required ca-file <bundle>`,
//! `verifyhost <node host>` and `sni str(<node host>)`, so every node is verified against its
//! own name. Affinity: `cookie NAME insert indirect nocache` (the load balancer's own cookie,
//! value = node name), or `balance source`. Active health checks (`option httpchk`, over TLS
//! with the same verification) take a node out after three failures.

use std::fmt::Write;

use super::{LbPlan, LbPort, Scheme};
use crate::topology::Affinity;

/// The name of the frontend and backend of one port.
pub(crate) fn section_name(plan: &LbPlan, port: u16) -> String {
    format!("{}_{port}", plan.slug())
}

/// The whole haproxy.cfg of `plan` (frontends and backends; add `global` and `defaults` of your
/// own in another file, or use it alone: it sets its own timeouts).
pub(crate) fn render(plan: &LbPlan) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# HAProxy configuration of load balancer {} (fronts {}), deployment {}.",
        plan.host, plan.fronts, plan.deployment
    );
    out.push_str("# Written by apim-pki generate; do not edit: regenerate instead (docs/load-balancers.md).\n");
    let _ = writeln!(
        out,
        "# Files on this host: {} (certificate + key) and {} (the set's CA bundle; it follows CA rollovers).",
        plan.files.haproxy_pem, plan.files.ca
    );
    let _ = writeln!(
        out,
        "# Use: haproxy -f {} (with your global/defaults file first, if any).",
        plan.files
            .haproxy_pem
            .rsplit_once('/')
            .map_or("", |(d, _)| d)
            .to_string()
            + "/haproxy.cfg"
    );
    for port in &plan.ports {
        frontend(plan, port, &mut out);
        backend(plan, port, &mut out);
    }
    out
}

fn frontend(plan: &LbPlan, port: &LbPort, out: &mut String) {
    let name = section_name(plan, port.port);
    let tls = port.scheme == Scheme::Https;
    let _ = writeln!(out, "\n# Port {}: {}.", port.port, port.purpose);
    let _ = writeln!(out, "frontend {name}");
    out.push_str("    mode http\n");
    if tls {
        let _ = writeln!(
            out,
            "    bind :{} ssl crt {} ssl-min-ver TLSv1.2",
            port.port, plan.files.haproxy_pem
        );
    } else {
        let _ = writeln!(out, "    bind :{}", port.port);
    }
    out.push_str(
        "    timeout client 180s\n    timeout http-request 10s\n    timeout http-keep-alive 10s\n",
    );
    out.push_str("    option forwardfor\n");
    let proto = if tls { "https" } else { "http" };
    let _ = writeln!(out, "    http-request set-header X-Forwarded-Proto {proto}");
    let _ = writeln!(out, "    default_backend {name}");
}

fn backend(plan: &LbPlan, port: &LbPort, out: &mut String) {
    let tls = port.scheme == Scheme::Https;
    let _ = writeln!(out, "\nbackend {}", section_name(plan, port.port));
    out.push_str("    mode http\n");
    match plan.affinity {
        Affinity::Source => out.push_str("    balance source\n    hash-type consistent\n"),
        Affinity::Cookie | Affinity::None => out.push_str("    balance roundrobin\n"),
    }
    if plan.affinity == Affinity::Cookie {
        let secure = if tls { " secure" } else { "" };
        let _ = writeln!(
            out,
            "    cookie {} insert indirect nocache httponly{secure}",
            plan.cookie
        );
    }
    out.push_str("    option redispatch\n    retries 2\n");
    out.push_str("    timeout connect 5s\n    timeout server 180s\n");
    if port.websocket {
        out.push_str("    timeout tunnel 3600s\n");
    }
    out.push_str("    option httpchk GET /\n    http-check expect rstatus ^[1-4]\n");
    out.push_str("    default-server check inter 5s fall 3 rise 2");
    if tls {
        let _ = write!(
            out,
            " ssl verify required ca-file {} ssl-min-ver TLSv1.2",
            plan.files.ca
        );
    }
    out.push('\n');
    for b in &plan.backends {
        let _ = write!(out, "    server {} {}", b.name, b.address(port.port));
        if plan.affinity == Affinity::Cookie {
            let _ = write!(out, " cookie {}", b.name);
        }
        if tls {
            let name = b.tls_name(&plan.host);
            let _ = write!(out, " verifyhost {name} sni str({name})");
        }
        out.push('\n');
    }
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
        assert!(text.contains("frontend apim_lb_example_test_9443\n"));
        assert!(text.contains("bind :9443 ssl crt /etc/lb/haproxy.pem ssl-min-ver TLSv1.2"));
        assert!(text.contains("cookie APIMLB insert indirect nocache httponly secure"));
        assert!(text.contains("default-server check inter 5s fall 3 rise 2 ssl verify required ca-file /etc/lb/ca.crt"));
        assert!(text.contains("server n1 n1.example.test:9443 cookie n1 verifyhost n1.example.test sni str(n1.example.test)"));
        assert!(
            text.contains("server n2 n2.example.test:9446 cookie n2 verifyhost n2.example.test")
        );
        assert!(!text.contains("8280"));
    }

    #[test]
    fn gateway_plain_ports_have_no_tls() {
        let text = render(&sample(
            Affinity::None,
            Profile::GatewayWorker,
            Product::Apim32,
        ));
        assert!(text.contains("bind :8280\n"));
        let plain = text
            .split("\nbackend apim_lb_example_test_8280\n")
            .nth(1)
            .unwrap();
        let plain = plain.split("frontend").next().unwrap();
        assert!(
            plain.contains("server n1 n1.example.test:8280\n"),
            "{plain}"
        );
        assert!(!plain.contains("ssl"));
        assert!(!text.contains("cookie"));
        assert!(text.contains("timeout tunnel 3600s"));
        assert!(!text.contains("8021"), "WebSub is 4.x only");
    }

    #[test]
    fn source_affinity_hashes_the_address() {
        let text = render(&sample(
            Affinity::Source,
            Profile::GatewayWorker,
            Product::Apim26,
        ));
        assert!(text.contains("balance source\n    hash-type consistent"));
    }
}
