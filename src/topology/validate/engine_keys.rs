//! `[pki.ca]` with a `backend` (docs/openbao.md): an OpenBao or Vault PKI engine signs instead
//! of a local CA. Each bad value names its key and line; the token itself never appears here
//! (only the name of the variable that holds it).

use std::net::IpAddr;
use std::path::Path;

use super::super::raw::{RawCa, S};
use super::Ctx;
use crate::input::excerpt;
use crate::topology::{
    EngineAddress, EngineBackend, EngineKey, EngineSettings, Form, TopologyError, TopologyProblem,
};

/// The engine settings of `[pki.ca]`, or `None` when it names no backend (then no engine key
/// may be present).
pub(super) fn engine_settings(
    cx: &Ctx,
    ca: &RawCa,
    base: &Path,
) -> Result<Option<EngineSettings>, TopologyError> {
    let Some(backend) = &ca.backend else {
        no_engine_keys(cx, ca)?;
        return Ok(None);
    };
    let names: Vec<&str> = EngineBackend::ALL.iter().map(|b| b.as_str()).collect();
    let kind = cx.choice(backend, "pki.ca.backend", EngineBackend::parse, &names)?;
    no_local_ca_keys(cx, ca, kind)?;
    let required = |value, key| required_key(cx, backend, kind, value, key);
    let address = required(&ca.address, EngineKey::Address)?;
    let mount = required(&ca.mount, EngineKey::Mount)?;
    let role = required(&ca.role, EngineKey::Role)?;
    let token_env = required(&ca.token_env, EngineKey::TokenEnv)?;
    Ok(Some(EngineSettings {
        backend: kind,
        address: engine_address(cx, address)?,
        mount: path_name(cx, mount, "pki.ca.mount", true)?,
        role: path_name(cx, role, "pki.ca.role", false)?,
        issuer: ca
            .issuer
            .as_ref()
            .map(|i| path_name(cx, i, "pki.ca.issuer", false))
            .transpose()?,
        token_env: variable_name(cx, token_env)?,
        ca_bundle: ca.ca_bundle.as_ref().map(|b| base.join(b.get_ref())),
    }))
}

/// Without `backend`, no engine key may appear.
fn no_engine_keys(cx: &Ctx, ca: &RawCa) -> Result<(), TopologyError> {
    let engine_keys = [
        (&ca.address, "address"),
        (&ca.mount, "mount"),
        (&ca.role, "role"),
        (&ca.issuer, "issuer"),
        (&ca.token_env, "token_env"),
        (&ca.ca_bundle, "ca_bundle"),
    ];
    match engine_keys
        .iter()
        .find_map(|(v, k)| v.as_ref().map(|v| (v, *k)))
    {
        Some((at, key)) => Err(cx.error(
            Some(at.span().start),
            format!("pki.ca.{key}"),
            format!("`{key}` configures a PKI engine, but [pki.ca] names no `backend`"),
            Some("add backend = \"openbao\" (or \"vault\"), or remove the engine keys to keep the local CA".into()),
        )),
        None => Ok(()),
    }
}

/// With `backend`, the local CA's keys (`cert`, `key`, `validity_days`) are refused.
fn no_local_ca_keys(cx: &Ctx, ca: &RawCa, kind: EngineBackend) -> Result<(), TopologyError> {
    for (value, key) in [(&ca.cert, "cert"), (&ca.key, "key")] {
        if let Some(v) = value {
            return Err(cx.error(
                Some(v.span().start),
                format!("pki.ca.{key}"),
                format!("`{key}` (a CA you bring) cannot be combined with backend = \"{}\": the engine holds the CA", kind.as_str()),
                Some("remove `cert` and `key` to sign through the engine, or remove `backend` to sign with your CA locally".into()),
            ));
        }
    }
    match &ca.validity_days {
        Some(v) => Err(cx.error(
            Some(v.span().start),
            "pki.ca.validity_days",
            format!(
                "the CA's validity is the engine's business with backend = \"{}\"",
                kind.as_str()
            ),
            Some(
                "remove pki.ca.validity_days; the engine's issuer decides how long the CA lives"
                    .into(),
            ),
        )),
        None => Ok(()),
    }
}

fn required_key<'a>(
    cx: &Ctx,
    backend: &S<String>,
    kind: EngineBackend,
    value: &'a Option<S<String>>,
    key: EngineKey,
) -> Result<&'a S<String>, TopologyError> {
    value.as_ref().ok_or_else(|| {
        let name = key.as_str();
        cx.error(
            Some(backend.span().start),
            format!("pki.ca.{name}"),
            TopologyProblem::EngineKeyMissing { backend: kind, key },
            Some(format!(
                "add {name} = ... to [pki.ca]; docs/openbao.md shows a complete table"
            )),
        )
    })
}

/// `https://host[:port]` or `http://` to a loopback host; no path, query or credentials.
fn engine_address(cx: &Ctx, at: &S<String>) -> Result<EngineAddress, TopologyError> {
    let key = "pki.ca.address";
    let bad = |value: &str, form: Form| {
        cx.error(
            Some(at.span().start),
            key,
            TopologyProblem::Malformed {
                value: excerpt(value),
                form,
            },
            Some("write it as \"https://bao.example:8200\" (scheme, host and port only)".into()),
        )
    };
    let text = at.get_ref().trim().trim_end_matches('/');
    let (tls, rest) = if let Some(rest) = text.strip_prefix("https://") {
        (true, rest)
    } else if let Some(rest) = text.strip_prefix("http://") {
        (false, rest)
    } else {
        return Err(bad(text, Form::EngineScheme));
    };
    if rest.contains(['/', '?', '#', '@'])
        || rest.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(bad(text, Form::EngineOnlyHostPort));
    }
    let (host, port) = split_host_port(rest).ok_or_else(|| bad(text, Form::EngineHostPort))?;
    let port = port.unwrap_or(8200);
    let host_ok =
        host.parse::<IpAddr>().is_ok() || crate::topology::names::HostName::parse(&host).is_some();
    if !host_ok {
        return Err(bad(&host, Form::EngineHost));
    }
    if !tls && !is_loopback(&host) {
        return Err(cx.error(
            Some(at.span().start),
            key,
TopologyProblem::Malformed {
 value: excerpt(text),
 form: Form::EnginePlainHttp,
 },
            Some("use https:// (with ca_bundle for a private CA); plain http is accepted only to localhost, 127.0.0.0/8 or ::1".into()),
        ));
    }
    Ok(EngineAddress { tls, host, port })
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`.
fn split_host_port(text: &str) -> Option<(String, Option<u16>)> {
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        host.parse::<std::net::Ipv6Addr>().ok()?;
        match after {
            "" => (host, None),
            p => (host, Some(p.strip_prefix(':')?)),
        }
    } else {
        match text.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (text, None),
        }
    };
    if host.is_empty() {
        return None;
    }
    let port = match port {
        None => None,
        Some(p) => Some(p.parse::<u16>().ok().filter(|p| *p != 0)?),
    };
    Some((host.to_ascii_lowercase(), port))
}

/// True for `localhost`, 127.0.0.0/8 and ::1.
pub(crate) fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// A mount path (segments of `[A-Za-z0-9_.-]` joined by `/` when `slashes`), a role or an issuer
/// name: it goes into request paths, so nothing that could escape them.
fn path_name(cx: &Ctx, at: &S<String>, key: &str, slashes: bool) -> Result<String, TopologyError> {
    let text = at.get_ref().trim();
    let text = if slashes {
        text.trim_matches('/')
    } else {
        text
    };
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.');
    let segments_ok = !text.is_empty()
        && text.len() <= 128
        && text
            .split('/')
            .all(|s| !s.is_empty() && s != "." && s != ".." && s.chars().all(ok_char))
        && (slashes || !text.contains('/'));
    if !segments_ok {
        return Err(cx.err(
            at,
            key,
            TopologyProblem::Malformed {
                value: excerpt(text),
                form: Form::EnginePathName(slashes),
            },
        ));
    }
    Ok(text.to_string())
}

/// An environment variable name: `[A-Za-z_][A-Za-z0-9_]*`.
fn variable_name(cx: &Ctx, at: &S<String>) -> Result<String, TopologyError> {
    let text = at.get_ref();
    let ok = text
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !ok {
        return Err(cx.error(
            Some(at.span().start),
            "pki.ca.token_env",
            TopologyProblem::Malformed {
 value: excerpt(text),
 form: Form::Variable,
 },
            Some("name the variable that holds the token, e.g. token_env = \"BAO_TOKEN\"; never put the token itself in the topology".into()),
        ));
    }
    Ok(text.clone())
}

#[cfg(test)]
mod tests {
    use crate::topology::{CaSource, EngineBackend, Topology};

    fn parse(ca: &str) -> Result<Topology, String> {
        let nodes: String = [
            "key-manager",
            "publisher",
            "store",
            "traffic-manager",
            "gateway-worker",
        ]
        .iter()
        .map(|p| format!("[[node]]\nname = \"{p}\"\nprofile = \"{p}\"\nhost = \"{p}.example\"\n"))
        .collect();
        let text = format!("name = \"t\"\nproduct = \"apim-2.6\"\n[pki.ca]\n{ca}\n{nodes}");
        Topology::parse(&text, std::path::Path::new("/topo/t.toml")).map_err(|e| e.to_string())
    }

    const OK: &str = "backend = \"openbao\"\naddress = \"https://bao.example:8200\"\nmount = \"pki\"\nrole = \"apim\"\ntoken_env = \"BAO_TOKEN\"";

    #[test]
    fn a_complete_table_parses() {
        let t = parse(&format!(
            "{OK}\nissuer = \"next\"\nca_bundle = \"bao-ca.pem\""
        ))
        .unwrap();
        let CaSource::Engine(e) = &t.ca else {
            panic!("{:?}", t.ca)
        };
        assert_eq!(e.backend, EngineBackend::OpenBao);
        assert_eq!(e.address.to_string(), "https://bao.example:8200");
        assert_eq!(e.issuer.as_deref(), Some("next"));
        assert_eq!(
            e.ca_bundle.as_deref(),
            Some(std::path::Path::new("/topo/bao-ca.pem"))
        );
        let v = parse(&OK.replace("openbao", "vault")).unwrap();
        assert_eq!(v.ca.engine().unwrap().backend, EngineBackend::Vault);
    }

    #[test]
    fn each_missing_key_is_named_with_its_line() {
        for key in ["address", "mount", "role", "token_env"] {
            let ca: String = OK
                .lines()
                .filter(|l| !l.starts_with(key))
                .collect::<Vec<_>>()
                .join("\n");
            let e = parse(&ca).unwrap_err();
            assert!(
                e.contains(&format!(
                    "t.toml:4: pki.ca.{key}: backend = \"openbao\" needs `{key}`"
                )),
                "{e}"
            );
        }
    }

    #[test]
    fn bad_values_are_refused() {
        for (from, to, want) in [
            (
                "openbao",
                "bao",
                "pki.ca.backend: `bao` is not one of: openbao, vault",
            ),
            (
                "https://bao.example:8200",
                "http://bao.example:8200",
                "the token would travel in clear",
            ),
            (
                "https://bao.example:8200",
                "ftp://bao.example",
                "does not start with https://",
            ),
            (
                "https://bao.example:8200",
                "https://bao.example:8200/v1",
                "no path",
            ),
            (
                "https://bao.example:8200",
                "https://u@bao.example",
                "no path, query or user",
            ),
            (
                "https://bao.example:8200",
                "https://bao.example:0",
                "no valid host and port",
            ),
            (
                "\"pki\"",
                "\"../sys\"",
                "pki.ca.mount: `../sys` is not a valid name",
            ),
            (
                "\"apim\"",
                "\"a/b\"",
                "pki.ca.role: `a/b` is not a valid name",
            ),
            (
                "BAO_TOKEN",
                "hvs.secret-token",
                "is not an environment variable name",
            ),
        ] {
            let e = parse(&OK.replace(from, to)).unwrap_err();
            assert!(e.contains(want), "{to}: {e}");
        }
    }

    #[test]
    fn plain_http_is_accepted_to_loopback_only() {
        for addr in [
            "http://127.0.0.1:8200",
            "http://localhost",
            "http://[::1]:8200",
        ] {
            let t = parse(&OK.replace("https://bao.example:8200", addr)).unwrap();
            assert!(!t.ca.engine().unwrap().address.tls, "{addr}");
        }
        assert_eq!(
            parse(&OK.replace("https://bao.example:8200", "http://localhost"))
                .unwrap()
                .ca
                .engine()
                .unwrap()
                .address
                .port,
            8200
        );
    }

    #[test]
    fn local_ca_keys_and_engine_keys_do_not_mix() {
        let e = parse(&format!("{OK}\ncert = \"ca.pem\"")).unwrap_err();
        assert!(
            e.contains("pki.ca.cert: `cert` (a CA you bring) cannot be combined"),
            "{e}"
        );
        let e = parse(&format!("{OK}\nvalidity_days = 3650")).unwrap_err();
        assert!(e.contains("pki.ca.validity_days"), "{e}");
        let e = parse("mount = \"pki\"").unwrap_err();
        assert!(e.contains("t.toml:4: pki.ca.mount: `mount` configures a PKI engine, but [pki.ca] names no `backend`"), "{e}");
        let e = parse(&format!("{OK}\ntoken = \"x\"")).unwrap_err();
        assert!(e.contains("unknown key"), "{e}");
    }

    #[test]
    fn shared_tls_is_refused_with_a_backend() {
        let e = parse(&format!("{OK}\n[keystores]\ntls = \"shared\"")).unwrap_err();
        assert!(e.contains("t.toml:10: keystores.tls: tls = \"shared\" serves TLS with the primary key, which stays self-signed"), "{e}");
    }

    #[test]
    fn the_token_variable_value_is_never_read_here() {
        // Validation names the variable only; its value is read at signing time.
        let t = parse(OK).unwrap();
        let json = serde_json::to_string(&t.ca).unwrap();
        assert!(json.contains("\"token_env\":\"BAO_TOKEN\""), "{json}");
        assert!(json.contains("\"kind\":\"engine\""), "{json}");
    }
}
