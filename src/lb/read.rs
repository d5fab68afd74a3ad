//! Reading load-balancer configurations back, for `verify`: which backend addresses each one
//! proxies to and how it verifies each of them (on or off, the CA file, the TLS name). Parses
//! the text itself rather than trusting the writer, so hand edits are seen.

use std::collections::BTreeMap;

/// How a configuration reaches one backend address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Route {
    /// `host:port` as written.
    pub address: String,
    /// Re-encrypted (https / `ssl`).
    pub tls: bool,
    /// Certificate verification on.
    pub verify: bool,
    /// The CA file it trusts, if any.
    pub ca_file: Option<String>,
    /// The name the node's certificate is checked against; `None` when it cannot be told.
    pub name: Option<String>,
}

/// A configuration that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub(crate) struct ReadError(pub String);

#[derive(Debug, Clone)]
struct Directive {
    name: String,
    args: Vec<String>,
    block: Option<Vec<Directive>>,
}

fn tokens(text: &str) -> Result<Vec<String>, ReadError> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            '#' => while chars.next().is_some_and(|c| c != '\n') {},
            c if c.is_whitespace() => {
                chars.next();
            }
            '{' | '}' | ';' => {
                out.push(c.to_string());
                chars.next();
            }
            '"' | '\'' => {
                chars.next();
                let mut word = String::new();
                loop {
                    match chars.next() {
                        Some(ch) if ch == c => break,
                        Some('\\') => word.extend(chars.next()),
                        Some(ch) => word.push(ch),
                        None => return Err(ReadError("unterminated quote".into())),
                    }
                }
                out.push(format!("\u{0}{word}"));
            }
            _ => {
                let mut word = String::new();
                while let Some(&ch) = chars.peek() {
                    if ch.is_whitespace() || ch == ';' || ch == '{' || ch == '}' {
                        // `${var}` keeps its braces.
                        if ch == '{' && word.ends_with('$') {
                            word.push(ch);
                            chars.next();
                            for ch in chars.by_ref() {
                                word.push(ch);
                                if ch == '}' {
                                    break;
                                }
                            }
                            continue;
                        }
                        break;
                    }
                    word.push(ch);
                    chars.next();
                }
                out.push(word);
            }
        }
    }
    Ok(out)
}

fn parse_block(
    tokens: &[String],
    at: &mut usize,
    nested: bool,
) -> Result<Vec<Directive>, ReadError> {
    let mut out = Vec::new();
    let mut words: Vec<String> = Vec::new();
    while *at < tokens.len() {
        let t = &tokens[*at];
        *at += 1;
        match t.as_str() {
            ";" | "{" => {
                if words.is_empty() {
                    return Err(ReadError(format!("unexpected `{t}`")));
                }
                let block = if t == "{" {
                    Some(parse_block(tokens, at, true)?)
                } else {
                    None
                };
                let mut it = words
                    .drain(..)
                    .map(|w| w.trim_start_matches('\u{0}').to_string());
                let name = it.next().unwrap_or_default();
                out.push(Directive {
                    name,
                    args: it.collect(),
                    block,
                });
            }
            "}" if nested && words.is_empty() => return Ok(out),
            "}" => return Err(ReadError("unexpected `}`".into())),
            _ => words.push(t.clone()),
        }
    }
    if nested || !words.is_empty() {
        return Err(ReadError(
            "unexpected end of file (missing `}` or `;`)".into(),
        ));
    }
    Ok(out)
}

fn first<'a>(ds: &'a [Directive], name: &str) -> Option<&'a Directive> {
    ds.iter().find(|d| d.name == name)
}

/// The value of `name` in the innermost of `levels` (location, server, http) that sets it.
fn inherited<'a>(levels: &[&'a [Directive]], name: &str) -> Option<&'a [String]> {
    levels
        .iter()
        .find_map(|l| first(l, name))
        .map(|d| d.args.as_slice())
}

/// The routes of an nginx configuration (an http-context include, as `generate` writes it).
pub(crate) fn nginx_routes(text: &str) -> Result<Vec<Route>, ReadError> {
    let toks = tokens(text)?;
    let top = parse_block(&toks, &mut 0, false)?;
    let mut upstreams: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    let mut maps: BTreeMap<String, (String, BTreeMap<&str, &str>)> = BTreeMap::new();
    for d in &top {
        match (d.name.as_str(), &d.block) {
            ("upstream", Some(b)) => {
                let servers = b
                    .iter()
                    .filter(|s| s.name == "server")
                    .filter_map(|s| s.args.first().map(String::as_str));
                upstreams.insert(d.args.first().map_or("", String::as_str), servers.collect());
            }
            ("map", Some(b)) if d.args.len() == 2 => {
                let entries = b
                    .iter()
                    .filter_map(|e| Some((e.name.as_str(), e.args.first()?.as_str())));
                maps.insert(
                    d.args[1].trim_start_matches('$').to_string(),
                    (
                        d.args[0].trim_start_matches('$').to_string(),
                        entries.collect(),
                    ),
                );
            }
            _ => {}
        }
    }
    let mut routes = Vec::new();
    for server in top.iter().filter(|d| d.name == "server") {
        let sblock = server.block.as_deref().unwrap_or_default();
        for loc in sblock.iter().filter(|d| d.name == "location") {
            let lblock = loc.block.as_deref().unwrap_or_default();
            let levels = [lblock, sblock, top.as_slice()];
            let Some(pass) = inherited(&levels, "proxy_pass").and_then(|a| a.first()) else {
                continue;
            };
            routes.extend(location_routes(pass, &levels, &upstreams, &maps));
        }
    }
    Ok(routes)
}

fn location_routes(
    pass: &str,
    levels: &[&[Directive]],
    upstreams: &BTreeMap<&str, Vec<&str>>,
    maps: &BTreeMap<String, (String, BTreeMap<&str, &str>)>,
) -> Vec<Route> {
    let tls = pass.starts_with("https://");
    let target = pass.split_once("://").map_or(pass, |(_, t)| t);
    let target = target.split('/').next().unwrap_or(target);
    let verify = inherited(levels, "proxy_ssl_verify")
        .is_some_and(|a| a.first().map(String::as_str) == Some("on"));
    let ca_file =
        inherited(levels, "proxy_ssl_trusted_certificate").and_then(|a| a.first().cloned());
    let ssl_name = inherited(levels, "proxy_ssl_name").and_then(|a| a.first().cloned());
    // Which upstreams the target names, and the value its variable (if any) takes for each.
    let (prefix, var, suffix) = match (target.find("${"), target.find('}')) {
        (Some(a), Some(b)) if b > a => (&target[..a], Some(&target[a + 2..b]), &target[b + 1..]),
        _ => (target, None, ""),
    };
    let mut out = Vec::new();
    let mut add = |group: &str, value: Option<&str>| {
        let name = match &ssl_name {
            None => Some(group.to_string()), // nginx's default: $proxy_host, the group's name
            Some(n) if !n.contains('$') => Some(n.clone()),
            Some(n) => {
                let v = n
                    .trim_start_matches('$')
                    .trim_start_matches('{')
                    .trim_end_matches('}');
                maps.get(v).and_then(|(input, entries)| {
                    (Some(input.as_str()) == var).then_some(())?;
                    entries.get(value?).map(|s| s.to_string())
                })
            }
        };
        let servers = upstreams.get(group).cloned().unwrap_or_else(|| vec![group]);
        for address in servers {
            out.push(Route {
                address: address.to_string(),
                tls,
                verify: tls && verify,
                ca_file: ca_file.clone(),
                name: name.clone(),
            });
        }
    };
    match var {
        None => add(target, None),
        Some(_) => {
            for group in upstreams.keys() {
                if let Some(v) = group
                    .strip_prefix(prefix)
                    .and_then(|g| g.strip_suffix(suffix))
                {
                    add(group, Some(v));
                }
            }
        }
    }
    out
}

/// The routes of a HAProxy configuration: every `server` of every backend.
pub(crate) fn haproxy_routes(text: &str) -> Result<Vec<Route>, ReadError> {
    let mut routes = Vec::new();
    let mut in_backend = false;
    let mut defaults: Vec<String> = Vec::new();
    let mut section_defaults: Vec<String> = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("");
        let words: Vec<String> = line.split_whitespace().map(str::to_string).collect();
        let Some(first) = words.first() else { continue };
        let indented = line.starts_with(char::is_whitespace);
        if !indented {
            in_backend = matches!(first.as_str(), "backend" | "listen");
            if first == "defaults" {
                defaults.clear();
            }
            section_defaults = defaults.clone();
            continue;
        }
        match first.as_str() {
            "default-server" => section_defaults.extend(words[1..].iter().cloned()),
            "server" if in_backend => {
                let address = words.get(2).cloned().ok_or_else(|| {
                    ReadError(format!("`{}`: a server without an address", line.trim()))
                })?;
                let mut params = section_defaults.clone();
                params.extend(words[3..].iter().cloned());
                routes.push(server_route(address, &params));
            }
            _ => {}
        }
    }
    Ok(routes)
}

fn server_route(address: String, params: &[String]) -> Route {
    let mut route = Route {
        address,
        tls: false,
        verify: false,
        ca_file: None,
        name: None,
    };
    let mut sni = None;
    let mut i = 0;
    while i < params.len() {
        let next = params.get(i + 1).cloned();
        match params[i].as_str() {
            "ssl" => route.tls = true,
            "no-ssl" => route.tls = false,
            "verify" => {
                route.verify = next.as_deref() == Some("required");
                i += 1;
            }
            "ca-file" => {
                route.ca_file = next;
                i += 1;
            }
            "verifyhost" => {
                route.name = next;
                i += 1;
            }
            "sni" => {
                sni = next.and_then(|s| {
                    s.strip_prefix("str(")
                        .and_then(|s| s.strip_suffix(')'))
                        .map(str::to_string)
                });
                i += 1;
            }
            _ => {}
        }
        i += 1;
    }
    // Without verifyhost, HAProxy checks the certificate against the SNI it sent.
    if route.name.is_none() {
        route.name = sni;
    }
    route.verify &= route.tls;
    route
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lb::tests::sample;
    use crate::lb::{haproxy, nginx};
    use crate::topology::{Affinity, Product, Profile};

    #[test]
    fn nginx_routes_of_a_generated_file() {
        let plan = sample(Affinity::Cookie, Profile::GatewayWorker, Product::Apim26);
        let routes = nginx_routes(&nginx::render(&plan)).unwrap();
        let r = routes
            .iter()
            .find(|r| r.address == "n2.example.test:9446")
            .unwrap();
        assert!(r.tls && r.verify);
        assert_eq!(r.name.as_deref(), Some("n2.example.test"));
        assert_eq!(r.ca_file.as_deref(), Some("/etc/lb/ca.crt"));
        let plain = routes
            .iter()
            .find(|r| r.address == "n1.example.test:8280")
            .unwrap();
        assert!(!plain.tls);
        // Main location and retry location: two routes per address; the retry's name comes
        // from the alt map and is still the node's own.
        let both: Vec<_> = routes
            .iter()
            .filter(|r| r.address == "n1.example.test:8243")
            .collect();
        assert_eq!(both.len(), 2);
        assert!(both
            .iter()
            .all(|r| r.name.as_deref() == Some("n1.example.test")));
    }

    #[test]
    fn nginx_hand_edits_are_seen() {
        let text = "upstream u { server a:1; server b:2; }\nserver { listen 1 ssl; location / { proxy_pass https://u; proxy_ssl_verify off; } }";
        let routes = nginx_routes(text).unwrap();
        assert_eq!(routes.len(), 2);
        assert!(routes[0].tls && !routes[0].verify);
        assert_eq!(
            routes[0].name.as_deref(),
            Some("u"),
            "nginx's default name is the group's"
        );
        let named = "upstream u { server a:1; }\nserver { proxy_ssl_verify on; proxy_ssl_name other.test; location / { proxy_pass https://u; } }";
        let r = &nginx_routes(named).unwrap()[0];
        assert!(r.verify);
        assert_eq!(r.name.as_deref(), Some("other.test"));
        assert!(nginx_routes("server { location / { ").is_err());
        assert!(nginx_routes("map $a $b { x \"y").is_err());
    }

    #[test]
    fn haproxy_routes_of_a_generated_file() {
        let plan = sample(Affinity::Cookie, Profile::Publisher, Product::Apim32);
        let routes = haproxy_routes(&haproxy::render(&plan)).unwrap();
        assert_eq!(routes.len(), 2);
        assert!(routes
            .iter()
            .all(|r| r.tls && r.verify && r.ca_file.as_deref() == Some("/etc/lb/ca.crt")));
        assert_eq!(routes[1].address, "n2.example.test:9446");
        assert_eq!(routes[1].name.as_deref(), Some("n2.example.test"));
        let off =
            haproxy_routes("backend b\n    server x h:1 ssl verify none sni str(h)\n").unwrap();
        assert!(off[0].tls && !off[0].verify);
        assert_eq!(off[0].name.as_deref(), Some("h"));
    }
}
