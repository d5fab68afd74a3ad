//! The load-balancer keys beyond `host` and `fronts` (docs/load-balancers.md): session affinity,
//! its cookie, and where the load balancer's files live on its host. Each bad value names its key
//! and line.

use super::super::raw::{RawLoadBalancer, S};
use super::Ctx;
use crate::lb;
use crate::topology::{
    Affinity, Form, LbPaths, Node, Product, Profile, TopologyError, TopologyProblem,
};

/// Affinity, cookie and file paths of `[[load_balancer]]` number `i` (0-based).
pub(super) fn lb_settings(
    cx: &Ctx,
    raw: &RawLoadBalancer,
    i: usize,
    host: &str,
    fronts: Profile,
    product: Product,
    nodes: &[Node],
) -> Result<(Affinity, String, LbPaths), TopologyError> {
    let key = |field: &str| format!("load_balancer[{}].{field}", i + 1);
    let workers = nodes
        .iter()
        .filter(|n| n.profile == Profile::GatewayWorker)
        .count();
    let has_manager = nodes.iter().any(|n| n.profile == Profile::GatewayManager);
    let in_ha = lb::gateway_managers_in_ha(product, workers, has_manager);
    let affinity = match &raw.affinity {
        None => lb::default_affinity(fronts, in_ha),
        Some(v) => {
            let names: Vec<&str> = Affinity::ALL.iter().map(|a| a.as_str()).collect();
            let a = cx.choice(v, &key("affinity"), Affinity::parse, &names)?;
            if let (Affinity::None, Some(why)) = (a, lb::affinity_required(fronts, in_ha)) {
                return Err(cx.error(
                    Some(v.span().start),
                    key("affinity"),
                    format!("`none` is not allowed in front of `{fronts}`: {why}"),
                    Some("use \"cookie\" (browsers) or \"source\" (WSO2 servers as clients), or leave the key out".into()),
                ));
            }
            a
        }
    };
    let cookie = match &raw.affinity_cookie {
        None => lb::DEFAULT_COOKIE.to_string(),
        Some(v) => cookie_name(cx, v, &key("affinity_cookie"))?,
    };
    let dir = match &raw.cert_dir {
        None => lb::default_cert_dir(host),
        Some(v) => lb_path(cx, v, &key("cert_dir"))?,
    };
    let mut files = lb::paths_in(&dir);
    for (value, field, slot) in [
        (&raw.cert_file, "cert_file", &mut files.cert),
        (&raw.key_file, "key_file", &mut files.key),
        (&raw.ca_file, "ca_file", &mut files.ca),
        (
            &raw.haproxy_pem_file,
            "haproxy_pem_file",
            &mut files.haproxy_pem,
        ),
    ] {
        if let Some(v) = value {
            *slot = lb_path(cx, v, &key(field))?;
        }
    }
    Ok((affinity, cookie, files))
}

/// A cookie name nginx can read as `$cookie_NAME` and HAProxy can insert: `[A-Za-z0-9_]`, not
/// WSO2's own session cookie.
fn cookie_name(cx: &Ctx, v: &S<String>, key: &str) -> Result<String, TopologyError> {
    let name = v.get_ref().trim();
    if name.is_empty()
        || name.len() > 64
        || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return Err(cx.err(
            v,
            key,
            TopologyProblem::Malformed {
                value: name.to_string(),
                form: Form::CookieName,
            },
        ));
    }
    if name.eq_ignore_ascii_case("JSESSIONID") {
        return Err(cx.error(
            Some(v.span().start),
            key,
            "JSESSIONID is WSO2's own session cookie; the load balancer's cookie needs another name",
            Some(format!("leave the key out (default {})", lb::DEFAULT_COOKIE)),
        ));
    }
    Ok(name.to_string())
}

/// An absolute path on the load-balancer host that both nginx and HAProxy read unquoted.
fn lb_path(cx: &Ctx, v: &S<String>, key: &str) -> Result<String, TopologyError> {
    let path = v.get_ref();
    let bad = path
        .chars()
        .find(|c| c.is_whitespace() || c.is_control() || "\"'`;{}#$\\".contains(*c));
    if !path.starts_with('/') || path.len() > 1024 || bad.is_some() || path == "/" {
        return Err(cx.err(
            v,
            key,
            TopologyProblem::Malformed {
                value: path.clone(),
                form: Form::LoadBalancerPath(bad),
            },
        ));
    }
    Ok(path.trim_end_matches('/').to_string())
}

#[cfg(test)]
mod tests {
    use crate::topology::{Affinity, Topology, TopologyError};
    use std::path::Path;

    const BASE: &str = "name = \"t\"\nproduct = \"apim-2.6\"\n\
        [[node]]\nname = \"km\"\nprofile = \"key-manager\"\nhost = \"km.test\"\n\
        [[node]]\nname = \"p1\"\nprofile = \"publisher\"\nhost = \"p1.test\"\n\
        [[node]]\nname = \"p2\"\nprofile = \"publisher\"\nhost = \"p2.test\"\n\
        [[node]]\nname = \"s\"\nprofile = \"store\"\nhost = \"s.test\"\n\
        [[node]]\nname = \"tm\"\nprofile = \"traffic-manager\"\nhost = \"tm.test\"\n\
        [[node]]\nname = \"g1\"\nprofile = \"gateway-worker\"\nhost = \"g1.test\"\n\
        [[node]]\nname = \"g2\"\nprofile = \"gateway-worker\"\nhost = \"g2.test\"\n\
        [[load_balancer]]\nhost = \"gw.test\"\nfronts = \"gateway-worker\"\n\
        [[load_balancer]]\nhost = \"pub.test\"\nfronts = \"publisher\"\n";

    fn parse(extra: &str) -> Result<Topology, TopologyError> {
        Topology::parse(&format!("{BASE}{extra}"), Path::new("t.toml"))
    }

    fn err(extra: &str) -> TopologyError {
        parse(extra).expect_err("must be refused")
    }

    #[test]
    fn defaults() {
        let t = parse("").unwrap();
        let pubs = t
            .load_balancers
            .iter()
            .find(|l| l.host.to_string() == "pub.test")
            .unwrap();
        assert_eq!(pubs.affinity, Affinity::Cookie);
        assert_eq!(pubs.affinity_cookie, "APIMLB");
        assert_eq!(pubs.files.ca, "/etc/apim-pki/pub.test/ca.crt");
        assert_eq!(pubs.files.haproxy_pem, "/etc/apim-pki/pub.test/haproxy.pem");
        // Two gateway workers, no gateway manager: managers in HA, stick by address.
        assert_eq!(t.load_balancers[0].affinity, Affinity::Source);
    }

    #[test]
    fn overrides() {
        let t = parse("affinity_cookie = \"PUB_1\"\ncert_dir = \"/srv/lb/\"\nca_file = \"/srv/ca/bundle.pem\"\n").unwrap();
        let lb = &t.load_balancers[1];
        assert_eq!(lb.affinity_cookie, "PUB_1");
        assert_eq!(lb.files.cert, "/srv/lb/tls.crt");
        assert_eq!(lb.files.ca, "/srv/ca/bundle.pem");
    }

    #[test]
    fn bad_values_name_key_and_line() {
        let line = BASE.lines().count() + 1;
        for (extra, key, words) in [
            (
                "affinity = \"none\"\n",
                "load_balancer[2].affinity",
                "mandatory",
            ),
            (
                "affinity = \"sticky\"\n",
                "load_balancer[2].affinity",
                "not one of",
            ),
            (
                "affinity_cookie = \"a-b\"\n",
                "load_balancer[2].affinity_cookie",
                "cookie name",
            ),
            (
                "affinity_cookie = \"jsessionid\"\n",
                "load_balancer[2].affinity_cookie",
                "WSO2's own",
            ),
            (
                "cert_dir = \"etc/lb\"\n",
                "load_balancer[2].cert_dir",
                "absolute",
            ),
            (
                "key_file = \"/etc/my lb/k\"\n",
                "load_balancer[2].key_file",
                "misread",
            ),
            (
                "ca_file = \"/etc/x;y\"\n",
                "load_balancer[2].ca_file",
                "misread",
            ),
        ] {
            let e = err(extra);
            assert_eq!(e.key, key, "{extra}");
            assert_eq!(e.line, Some(line), "{extra}");
            assert!(e.to_string().contains(words), "{extra}: {e}");
        }
        let e = err("unknown_key = 1\n");
        assert!(e.to_string().contains("unknown_key"), "{e}");
    }

    #[test]
    fn gateway_managers_in_ha_need_affinity() {
        let text = BASE.replace(
            "fronts = \"gateway-worker\"\n",
            "fronts = \"gateway-worker\"\naffinity = \"none\"\n",
        );
        let e = Topology::parse(&text, Path::new("t.toml")).unwrap_err();
        assert_eq!(e.key, "load_balancer[1].affinity");
        assert!(e.to_string().contains("gateway managers in HA"), "{e}");
    }
}
