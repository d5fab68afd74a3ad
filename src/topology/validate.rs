//! From raw TOML to a [`Topology`]: every rule of docs/topology.md, each failure naming
//! the key and its line.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::Path;

use super::aliases;
use super::names::{is_san_dns_name, HostName};
use crate::input::{excerpt, excerpt_within};

/// The longest parser message quoted whole (it may quote a value of the file).
const MESSAGE_CHARS: usize = 300;
use super::raw::{RawTopology, S};
use super::*;

mod engine_keys;
mod lb_keys;
mod secure_vault;

/// Turns byte offsets into 1-based line numbers and builds errors.
struct Ctx<'a> {
    file: &'a Path,
    line_starts: Vec<usize>,
}

impl Ctx<'_> {
    fn line(&self, offset: usize) -> usize {
        self.line_starts.partition_point(|&start| start <= offset)
    }

    fn err<T>(
        &self,
        at: &S<T>,
        key: impl Into<String>,
        problem: impl Into<TopologyProblem>,
    ) -> TopologyError {
        self.error(Some(at.span().start), key, problem, None)
    }

    fn error(
        &self,
        offset: Option<usize>,
        key: impl Into<String>,
        problem: impl Into<TopologyProblem>,
        hint: Option<String>,
    ) -> TopologyError {
        TopologyError {
            file: self.file.to_path_buf(),
            line: offset.map(|o| self.line(o)),
            key: excerpt(&key.into()),
            problem: Box::new(problem.into()),
            hint,
        }
    }

    fn choice<T: Copy>(
        &self,
        value: &S<String>,
        key: &str,
        parse: impl Fn(&str) -> Option<T>,
        allowed: &[&'static str],
    ) -> Result<T, TopologyError> {
        parse(value.get_ref()).ok_or_else(|| {
            self.err(
                value,
                key,
                TopologyProblem::NotOneOf {
                    value: excerpt(value.get_ref()),
                    allowed: allowed.to_vec(),
                },
            )
        })
    }

    fn days(&self, value: &Option<S<i64>>, key: &str, default: u32) -> Result<u32, TopologyError> {
        match value {
            None => Ok(default),
            Some(v) if (1..=36_500).contains(v.get_ref()) => Ok(*v.get_ref() as u32),
            Some(v) => Err(self.err(v, key, TopologyProblem::DaysOutOfRange(*v.get_ref()))),
        }
    }
}

pub(super) fn parse(text: &str, file: &Path) -> Result<Topology, TopologyError> {
    let line_starts = std::iter::once(0)
        .chain(text.match_indices('\n').map(|(i, _)| i + 1))
        .collect();
    let cx = Ctx { file, line_starts };
    let raw: RawTopology = toml::from_str(text).map_err(|e| {
        let message = excerpt_within(&plain_toml_message(e.message()), MESSAGE_CHARS);
        cx.error(
            e.span().map(|s| s.start),
            key_at(text, e.span().map(|s| s.start), e.message()),
            TopologyProblem::Syntax(message),
            Some(
                "`apim-pki init` prints a commented example topology; `apim-pki init --ha` the full HA one".into(),
            ),
        )
    })?;
    build(&cx, raw)
}

/// A TOML or serde message in the topology's words: keys, not fields; "a whole number", not
/// `i64`; "a list", not "a sequence".
fn plain_toml_message(message: &str) -> String {
    let mut m = message.trim().to_string();
    for (from, to) in [
        ("unknown field", "unknown key"),
        ("missing field", "missing key"),
        ("expected i64", "expected a whole number (no quotes)"),
        ("expected u64", "expected a whole number (no quotes)"),
        ("expected u32", "expected a whole number (no quotes)"),
        ("expected u16", "expected a whole number (no quotes)"),
        ("expected a boolean", "expected true or false (no quotes)"),
        ("expected a string", "expected a text in quotes"),
        (
            "expected a sequence",
            "expected a list, e.g. [\"a\", \"b\"]",
        ),
        ("invalid type: ", "wrong type: "),
        ("floating point", "the decimal number"),
    ] {
        m = m.replace(from, to);
    }
    m
}

/// The key a parse error is about, as `table.key` (`node[2].hots`, `pki.kye`, `name`): the
/// field the message names (missing or unknown), else the key on the error's line, inside the
/// table that holds `offset`.
fn key_at(text: &str, offset: Option<usize>, message: &str) -> String {
    let Some(offset) = offset.map(|o| o.min(text.len())) else {
        return String::new();
    };
    // The innermost table header at or before the error, numbering arrays of tables.
    let mut table = String::new();
    let mut counts: HashMap<String, usize> = HashMap::new();
    let mut pos = 0;
    let mut line_at_error = "";
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim();
        if pos > offset {
            break;
        }
        line_at_error = trimmed;
        if let Some(name) = trimmed
            .strip_prefix("[[")
            .and_then(|t| t.split("]]").next())
        {
            // `[[node]` (unclosed) must still read as `node`.
            let name = name.trim().trim_end_matches(']').trim().to_string();
            let n = counts.entry(name.clone()).or_insert(0);
            *n += 1;
            table = format!("{name}[{n}]");
        } else if let Some(name) = trimmed.strip_prefix('[').and_then(|t| t.split(']').next()) {
            table = name.trim().to_string();
        }
        pos += line.len();
    }
    let named = ["missing field `", "unknown field `", "duplicate key `"]
        .iter()
        .find_map(|p| {
            message
                .split(p)
                .nth(1)
                .and_then(|rest| rest.split('`').next())
        });
    let field = match named {
        Some(f) => f.to_string(),
        None if !line_at_error.starts_with('[') && !line_at_error.starts_with('#') => line_at_error
            .split_once('=')
            .map(|(k, _)| k.trim().to_string())
            .unwrap_or_default(),
        None => String::new(),
    };
    match (table.is_empty(), field.is_empty()) {
        (true, true) => String::new(),
        (true, false) => field,
        (false, true) => table,
        (false, false) => format!("{table}.{field}"),
    }
}

fn build(cx: &Ctx, raw: RawTopology) -> Result<Topology, TopologyError> {
    let name = raw.name.get_ref().trim().to_string();
    if name.is_empty() || name.chars().any(|c| c.is_control()) {
        return Err(cx.err(
            &raw.name,
            "name",
            "the deployment name must be a non-empty line of text",
        ));
    }
    if name.chars().count() > MAX_DEPLOYMENT_NAME {
        return Err(cx.err(
            &raw.name,
            "name",
            TopologyProblem::TooLong {
                what: Bounded::DeploymentName,
                length: name.chars().count(),
                max: MAX_DEPLOYMENT_NAME,
            },
        ));
    }
    let products: Vec<_> = Product::ALL.iter().map(|p| p.as_str()).collect();
    let product = cx.choice(&raw.product, "product", Product::parse, &products)?;

    let pki = pki_settings(cx, &raw)?;
    let ca = ca_source(cx, &raw)?;
    let keystores = keystore_settings(cx, &raw, product)?;
    if let (CaSource::Engine(e), TlsMode::Shared) = (&ca, keystores.tls) {
        return Err(cx.error(
            raw.keystores.tls.as_ref().map(|t| t.span().start),
            "keystores.tls",
            format!("tls = \"shared\" serves TLS with the primary key, which stays self-signed with backend = \"{}\"", e.backend.as_str()),
            Some("use tls = \"per-node\": each node's TLS certificate is then signed by the engine".into()),
        ));
    }
    let passwords = password_variables(cx, &raw)?;
    let secure_vault = secure_vault::settings(cx, &raw.secure_vault)?;
    let nodes = nodes(cx, &raw, product)?;
    let load_balancers = load_balancers(cx, &raw, product, &nodes)?;
    check_profiles(cx, &raw, product, &nodes, &load_balancers)?;
    reserved_aliases(cx, &raw, &name, &keystores.primary_alias, &nodes)?;

    Ok(Topology {
        name,
        product,
        pki,
        ca,
        keystores,
        passwords,
        secure_vault,
        nodes,
        load_balancers,
    })
}

fn key_names() -> Vec<&'static str> {
    KeyType::ALL.iter().map(|k| k.as_str()).collect()
}

fn pki_settings(cx: &Ctx, raw: &RawTopology) -> Result<PkiSettings, TopologyError> {
    let p = &raw.pki;
    let key = match &p.key {
        Some(k) => cx.choice(k, "pki.key", KeyType::parse, &key_names())?,
        None => KeyType::Rsa2048,
    };
    let validity_days = cx.days(&p.validity_days, "pki.validity_days", 397)?;
    let renew_before_days = match &p.renew_before_days {
        Some(v) if !(0..=36_500).contains(v.get_ref()) => {
            return Err(cx.err(v, "pki.renew_before_days", "must be between 0 and 36500"))
        }
        Some(v) => *v.get_ref() as u32,
        None => 30.min(validity_days.saturating_sub(1)),
    };
    if renew_before_days >= validity_days {
        let at = p.renew_before_days.as_ref().map(|v| v.span().start);
        return Err(cx.error(
            at,
            "pki.renew_before_days",
            format!("{renew_before_days} must be less than pki.validity_days ({validity_days})"),
            Some("otherwise every run would renew every certificate".into()),
        ));
    }
    let country = match &p.country {
        Some(c)
            if c.get_ref().len() != 2 || !c.get_ref().chars().all(|ch| ch.is_ascii_uppercase()) =>
        {
            return Err(cx.err(
                c,
                "pki.country",
                TopologyProblem::Malformed {
                    value: excerpt(c.get_ref()),
                    form: Form::CountryCode,
                },
            ))
        }
        c => c.as_ref().map(|c| c.get_ref().clone()),
    };
    let text = |v: &Option<S<String>>, key: &str| -> Result<Option<String>, TopologyError> {
        match v {
            Some(s)
                if s.get_ref().trim().is_empty() || s.get_ref().chars().any(char::is_control) =>
            {
                Err(cx.err(s, key, "must be a non-empty line of text"))
            }
            Some(s) if s.get_ref().trim().chars().count() > MAX_SUBJECT_ATTRIBUTE => Err(cx.err(
                s,
                key,
                TopologyProblem::TooLong {
                    what: Bounded::SubjectAttribute,
                    length: s.get_ref().trim().chars().count(),
                    max: MAX_SUBJECT_ATTRIBUTE,
                },
            )),
            s => Ok(s.as_ref().map(|s| s.get_ref().trim().to_string())),
        }
    };
    Ok(PkiSettings {
        key,
        validity_days,
        renew_before_days,
        organization: text(&p.organization, "pki.organization")?,
        organizational_unit: text(&p.organizational_unit, "pki.organizational_unit")?,
        country,
        include_localhost: p.include_localhost.unwrap_or(true),
        ca_validity_days: cx.days(&p.ca.validity_days, "pki.ca.validity_days", 3650)?,
    })
}

fn ca_source(cx: &Ctx, raw: &RawTopology) -> Result<CaSource, TopologyError> {
    let base = cx.file.parent().unwrap_or(Path::new("."));
    if let Some(engine) = engine_keys::engine_settings(cx, &raw.pki.ca, base)? {
        return Ok(CaSource::Engine(engine));
    }
    match (&raw.pki.ca.cert, &raw.pki.ca.key) {
        (None, None) => Ok(CaSource::Generated),
        (Some(cert), Some(key)) => Ok(CaSource::External {
            cert: base.join(cert.get_ref()),
            key: base.join(key.get_ref()),
        }),
        (Some(at), None) | (None, Some(at)) => {
            Err(cx.err(at, "pki.ca", "a CA you bring needs both `cert` and `key`"))
        }
    }
}

fn keystore_settings(
    cx: &Ctx,
    raw: &RawTopology,
    product: Product,
) -> Result<KeystoreSettings, TopologyError> {
    let k = &raw.keystores;
    let formats: Vec<_> = KeystoreFormat::ALL.iter().map(|f| f.as_str()).collect();
    let format = match &k.format {
        Some(f) => cx.choice(f, "keystores.format", KeystoreFormat::parse, &formats)?,
        None => product.default_format(),
    };
    let tls = match &k.tls {
        Some(t) => cx.choice(
            t,
            "keystores.tls",
            |s| match s {
                "per-node" => Some(TlsMode::PerNode),
                "shared" => Some(TlsMode::Shared),
                _ => None,
            },
            &["per-node", "shared"],
        )?,
        None => TlsMode::PerNode,
    };
    let primary_alias = match &k.primary_alias {
        Some(a) if !is_alias(a.get_ref()) => {
            return Err(cx.err(
                a,
                "keystores.primary_alias",
                TopologyProblem::Malformed {
                    value: excerpt(a.get_ref()),
                    form: Form::Alias,
                },
            ))
        }
        Some(a) if a.get_ref().len() > MAX_NAME => {
            return Err(cx.err(
                a,
                "keystores.primary_alias",
                TopologyProblem::TooLong {
                    what: Bounded::Alias,
                    length: a.get_ref().len(),
                    max: MAX_NAME,
                },
            ))
        }
        Some(a) => a.get_ref().clone(),
        None => "wso2carbon".into(),
    };
    let primary_key = match &k.primary_key {
        Some(pk) => {
            let key = cx.choice(pk, "keystores.primary_key", KeyType::parse, &key_names())?;
            if !key.is_rsa() {
                return Err(cx.err(pk, "keystores.primary_key", format!("`{key}` is not RSA: WSO2 encrypts data with the primary key, so it must be rsa-2048, rsa-3072 or rsa-4096")));
            }
            key
        }
        None => KeyType::Rsa2048,
    };
    Ok(KeystoreSettings {
        format,
        tls,
        primary_alias,
        primary_key,
        primary_validity_days: cx.days(
            &k.primary_validity_days,
            "keystores.primary_validity_days",
            3650,
        )?,
    })
}

fn password_variables(cx: &Ctx, raw: &RawTopology) -> Result<PasswordVariables, TopologyError> {
    let Some(p) = &raw.passwords else {
        return Ok(PasswordVariables::default());
    };
    let var = |v: &Option<S<String>>, key: &str| -> Result<Option<String>, TopologyError> {
        match v {
            Some(s)
                if s.get_ref().is_empty()
                    || !s
                        .get_ref()
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_')
                    || s.get_ref().starts_with(|c: char| c.is_ascii_digit()) =>
            {
                Err(cx.error(
                    Some(s.span().start),
                    key,
                    TopologyProblem::Malformed {
                        value: excerpt(s.get_ref()),
                        form: Form::Variable,
                    },
                    Some(
                        "name the variable that holds the password, never the password itself"
                            .into(),
                    ),
                ))
            }
            s => Ok(s.as_ref().map(|s| s.get_ref().clone())),
        }
    };
    Ok(PasswordVariables {
        primary: var(&p.primary, "passwords.primary")?,
        tls: var(&p.tls, "passwords.tls")?,
        truststore: var(&p.truststore, "passwords.truststore")?,
    })
}

fn is_alias(alias: &str) -> bool {
    !alias.is_empty()
        && alias
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
}

fn profile_names(product: Product) -> Vec<&'static str> {
    product.profiles().iter().map(|(p, _)| p.as_str()).collect()
}

/// A node name: `[a-z0-9-]`, 1 to [`MAX_NAME`] characters.
fn node_name<'a>(cx: &Ctx, at: &'a S<String>, key: &str) -> Result<&'a String, TopologyError> {
    let name = at.get_ref();
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(cx.err(
            at,
            key,
            TopologyProblem::Malformed {
                value: excerpt(name),
                form: Form::NodeName,
            },
        ));
    }
    if name.len() > MAX_NAME {
        return Err(cx.err(
            at,
            key,
            TopologyProblem::TooLong {
                what: Bounded::NodeName,
                length: name.len(),
                max: MAX_NAME,
            },
        ));
    }
    Ok(name)
}

/// A node's host: a DNS name or an IP address; `localhost` only with `include_localhost`.
fn node_host(
    cx: &Ctx,
    at: &S<String>,
    key: &str,
    include_localhost: Option<bool>,
) -> Result<HostName, TopologyError> {
    let host = HostName::parse(at.get_ref().trim()).ok_or_else(|| {
        cx.err(
            at,
            key,
            TopologyProblem::Malformed {
                value: excerpt(at.get_ref()),
                form: Form::Host,
            },
        )
    })?;
    if host == HostName::Dns("localhost".into()) && include_localhost == Some(false) {
        return Err(cx.error(
            Some(at.span().start),
            key,
            "`localhost` as a node's host needs pki.include_localhost = true: otherwise its certificate names only localhost and looks like WSO2's shipped default (CN=localhost)",
            Some("give the node the name its peers resolve, or drop include_localhost = false".into()),
        ));
    }
    Ok(host)
}

/// Node `i`'s (0-based) extra SANs, lower-cased, without repeats.
fn extra_sans(cx: &Ctx, sans: &[S<String>], i: usize) -> Result<Vec<String>, TopologyError> {
    let mut extra_sans = Vec::new();
    for (j, san) in sans.iter().enumerate() {
        let value = san.get_ref().trim().to_ascii_lowercase();
        if !is_san_dns_name(&value) {
            return Err(cx.err(
                san,
                format!("node[{}].extra_sans[{}]", i + 1, j + 1),
                TopologyProblem::Malformed {
                    value: excerpt(san.get_ref()),
                    form: Form::SanDnsName,
                },
            ));
        }
        if !extra_sans.contains(&value) {
            extra_sans.push(value);
        }
    }
    Ok(extra_sans)
}

fn nodes(cx: &Ctx, raw: &RawTopology, product: Product) -> Result<Vec<Node>, TopologyError> {
    let mut nodes = Vec::with_capacity(raw.node.len());
    let mut names: HashMap<String, usize> = HashMap::new();
    let mut hosts: HashMap<(HostName, u16), usize> = HashMap::new();
    for (i, n) in raw.node.iter().enumerate() {
        let key = |field: &str| format!("node[{}].{field}", i + 1);
        let name = node_name(cx, &n.name, &key("name"))?;
        if let Some(first) = names.insert(name.clone(), i) {
            return Err(cx.err(
                &n.name,
                key("name"),
                TopologyProblem::Taken {
                    value: name.clone(),
                    by: TakenBy::NodeName(first + 1),
                },
            ));
        }
        let profile = cx.choice(
            &n.profile,
            &key("profile"),
            |s| Profile::parse(s, product),
            &profile_names(product),
        )?;
        let host = node_host(cx, &n.host, &key("host"), raw.pki.include_localhost)?;
        let ip = match &n.ip {
            Some(ip) => Some(ip.get_ref().trim().parse::<IpAddr>().map_err(|_| {
                cx.err(
                    ip,
                    key("ip"),
                    TopologyProblem::Malformed {
                        value: excerpt(ip.get_ref()),
                        form: Form::IpAddress,
                    },
                )
            })?),
            None => None,
        };
        let offset = match &n.offset {
            Some(o) => offset(cx, o, &key("offset"))?,
            None => 0,
        };
        if let Some(first) = hosts.insert((host.clone(), offset), i) {
            return Err(cx.error(
                Some(n.host.span().start),
                key("host"),
                TopologyProblem::Taken {
                    value: host.to_string(),
                    by: TakenBy::NodeHostAndOffset {
                        node: first + 1,
                        offset,
                    },
                },
                Some("two nodes may share a host only with different port offsets".into()),
            ));
        }
        let extra_sans = extra_sans(cx, &n.extra_sans, i)?;
        nodes.push(Node {
            name: name.clone(),
            profile,
            host,
            ip,
            offset,
            extra_sans,
        });
    }
    Ok(nodes)
}

/// The longest deployment name: the CA's common name is `NAME CA G<n>`, and a common name holds
/// at most 64 characters (RFC 5280's ub-common-name).
const MAX_DEPLOYMENT_NAME: usize = 48;
/// The longest organization or organizational unit (RFC 5280's ub-organization-name).
const MAX_SUBJECT_ATTRIBUTE: usize = 64;
/// The longest node name or key alias: a DNS label's length, far below the 255 bytes a file
/// name may hold once apim-pki adds `-tls.jks` and its temporary-file decoration.
const MAX_NAME: usize = 63;
/// The longest load-balancer host: it names the `csr/HOST.key` and `csr/HOST.csr` files, and
/// an atomic write first creates `.NAME.tmp-PID-N` beside them; 255 bytes (the usual file-name
/// limit) minus that decoration and the extension leaves 200 with room to spare.
const MAX_LB_HOST: usize = 200;

/// A load balancer's host must name files (so it has a length limit) and must not be
/// `localhost`: its certificate would be one `verify` cannot tell from WSO2's shipped default
/// (CN=localhost), and peers on other machines could not reach it.
fn lb_host_fits(cx: &Ctx, at: &S<String>, host: &HostName, key: &str) -> Result<(), TopologyError> {
    let text = host.to_string();
    if text == "localhost" {
        return Err(cx.error(
            Some(at.span().start),
            key,
            "`localhost` cannot be a load balancer's host: peers on other machines cannot reach it, and its certificate would look like WSO2's shipped default (CN=localhost)",
            Some("use the name clients and peers resolve to the load balancer".into()),
        ));
    }
    if text.len() > MAX_LB_HOST {
        return Err(cx.err(
            at,
            key,
            TopologyProblem::TooLong {
                what: Bounded::LoadBalancerHost,
                length: text.len(),
                max: MAX_LB_HOST,
            },
        ));
    }
    Ok(())
}

/// A node's port offset: every port the node listens on, plus it, stays at or below 65535.
fn offset(cx: &Ctx, o: &S<i64>, key: &str) -> Result<u16, TopologyError> {
    let highest = 65_535 - HIGHEST_PORT;
    match u16::try_from(*o.get_ref()) {
        Ok(offset) if u32::from(offset) <= highest => Ok(offset),
        _ => Err(cx.error(
            Some(o.span().start),
            key,
            format!(
                "offset {} is out of range: the highest port a node listens on ({HIGHEST_PORT}, JMX RMI) plus the offset must stay at or below 65535",
                o.get_ref()
            ),
            Some(format!("use an offset from 0 to {highest}")),
        )),
    }
}

fn load_balancers(
    cx: &Ctx,
    raw: &RawTopology,
    product: Product,
    nodes: &[Node],
) -> Result<Vec<LoadBalancer>, TopologyError> {
    let mut lbs: Vec<LoadBalancer> = Vec::new();
    for (i, lb) in raw.load_balancer.iter().enumerate() {
        let key = |field: &str| format!("load_balancer[{}].{field}", i + 1);
        let host = HostName::parse(lb.host.get_ref().trim()).ok_or_else(|| {
            cx.err(
                &lb.host,
                key("host"),
                TopologyProblem::Malformed {
                    value: excerpt(lb.host.get_ref()),
                    form: Form::Host,
                },
            )
        })?;
        lb_host_fits(cx, &lb.host, &host, &key("host"))?;
        if let Some(node) = nodes.iter().find(|n| n.host == host) {
            return Err(cx.err(
                &lb.host,
                key("host"),
                TopologyProblem::Taken {
                    value: host.to_string(),
                    by: TakenBy::NodeHost(node.name.clone()),
                },
            ));
        }
        if lbs.iter().any(|other| other.host == host) {
            return Err(cx.err(
                &lb.host,
                key("host"),
                TopologyProblem::Taken {
                    value: host.to_string(),
                    by: TakenBy::LoadBalancerHost,
                },
            ));
        }
        let fronts = cx.choice(
            &lb.fronts,
            &key("fronts"),
            |s| Profile::parse(s, product),
            &profile_names(product),
        )?;
        if !nodes.iter().any(|n| n.profile == fronts) {
            return Err(cx.err(
                &lb.fronts,
                key("fronts"),
                format!("no node has the profile `{fronts}`"),
            ));
        }
        if lbs.iter().any(|other| other.fronts == fronts) {
            return Err(cx.err(
                &lb.fronts,
                key("fronts"),
                TopologyProblem::Taken {
                    value: fronts.to_string(),
                    by: TakenBy::Fronted,
                },
            ));
        }
        let (affinity, affinity_cookie, files) =
            lb_keys::lb_settings(cx, lb, i, &host.to_string(), fronts, product, nodes)?;
        lbs.push(LoadBalancer {
            host,
            fronts,
            affinity,
            affinity_cookie,
            files,
        });
    }
    Ok(lbs)
}

/// No two things of the set under one alias (or one csr/ file name): the CAs' aliases (every
/// rollover generation), the primary's, each node's TLS key alias (its name) and each load
/// balancer's host are reserved for what they name.
fn reserved_aliases(
    cx: &Ctx,
    raw: &RawTopology,
    name: &str,
    primary_alias: &str,
    nodes: &[Node],
) -> Result<(), TopologyError> {
    let ca_hint = || {
        Some(format!(
            "`{}`, `{}`, … (one per CA rollover) are the aliases of the set's CA in every truststore; the other entry would replace it there",
            aliases::ca_alias(name, 1),
            aliases::ca_alias(name, 2)
        ))
    };
    if let Some(a) = &raw.keystores.primary_alias {
        if aliases::is_ca_alias(name, a.get_ref()) {
            return Err(cx.error(
                Some(a.span().start),
                "keystores.primary_alias",
                TopologyProblem::Reserved {
                    value: a.get_ref().clone(),
                    owner: ReservedFor::Ca,
                },
                ca_hint(),
            ));
        }
    }
    for (i, node) in nodes.iter().enumerate() {
        let at = Some(raw.node[i].name.span().start);
        let key = format!("node[{}].name", i + 1);
        if aliases::is_ca_alias(name, &node.name) {
            let problem = TopologyProblem::Reserved {
                value: node.name.clone(),
                owner: ReservedFor::Ca,
            };
            return Err(cx.error(at, key, problem, ca_hint()));
        }
        if node.name == primary_alias || aliases::PRIMARY_TRUST_ALIASES.contains(&&*node.name) {
            return Err(cx.error(
                at,
                key,
                TopologyProblem::Reserved {
                    value: node.name.clone(),
                    owner: ReservedFor::PrimaryAlias,
                },
                Some("a node's name is its TLS key alias; name the node otherwise".into()),
            ));
        }
    }
    for (i, lb) in raw.load_balancer.iter().enumerate() {
        let host = lb.host.get_ref().trim().to_ascii_lowercase();
        if let Some(j) = nodes.iter().position(|n| n.name == host) {
            return Err(cx.error(
                Some(lb.host.span().start),
                format!("load_balancer[{}].host", i + 1),
                TopologyProblem::Reserved {
                    value: host,
                    owner: ReservedFor::Node(j + 1),
                },
                Some("node names and load-balancer hosts name keys and files (csr/NAME.key); rename the node".into()),
            ));
        }
    }
    Ok(())
}

fn check_profiles(
    cx: &Ctx,
    raw: &RawTopology,
    product: Product,
    nodes: &[Node],
    lbs: &[LoadBalancer],
) -> Result<(), TopologyError> {
    let mut count: BTreeMap<Profile, Vec<usize>> = BTreeMap::new();
    for (i, n) in nodes.iter().enumerate() {
        count.entry(n.profile).or_default().push(i);
    }
    for (profile, required) in product.profiles() {
        if *required && !count.contains_key(profile) {
            return Err(cx.error(
                Some(raw.product.span().start),
                "node",
                format!(
                    "{} needs at least one node with profile `{profile}`",
                    product.as_str()
                ),
                Some(format!("add a [[node]] with profile = \"{profile}\"")),
            ));
        }
    }
    for (profile, members) in &count {
        if members.len() > 1 && !lbs.iter().any(|lb| lb.fronts == *profile) {
            let second = &raw.node[members[1]];
            return Err(cx.error(
                Some(second.profile.span().start),
                format!("node[{}].profile", members[1] + 1),
                format!("{} nodes have profile `{profile}` but no load balancer fronts it", members.len()),
                Some(format!("add a [[load_balancer]] with fronts = \"{profile}\": peers reach an HA profile through it")),
            ));
        }
    }
    if let Some(managers) = count.get(&Profile::GatewayManager) {
        let at = Some(raw.node[managers[0]].profile.span().start);
        let key = format!("node[{}].profile", managers[0] + 1);
        if managers.len() > 1 {
            return Err(cx.error(at, key, "at most one gateway-manager", None));
        }
        if count.get(&Profile::GatewayWorker).map_or(0, Vec::len) < 2 {
            return Err(cx.error(
                at,
                key,
                "a gateway-manager needs two or more gateway-workers to sync",
                Some("with a single gateway, drop the gateway-manager node".into()),
            ));
        }
    }
    Ok(())
}
