//! What is wrong in a topology file, typed by class: the classes that recur across the rules
//! (a value outside a closed set, a host that is no host, a reserved name, ...) are variants
//! with their values; a rule checked in one place only says its own sentence
//! ([`TopologyProblem::Rule`]). The texts are the ones users read after `FILE:LINE: KEY: `.

use std::io;

use super::EngineBackend;

/// What is wrong with a topology file, at the key a [`super::TopologyError`] names.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TopologyProblem {
    /// The file cannot be read.
    #[error("cannot read the topology file: {0}")]
    Unreadable(#[source] io::Error),
    /// Not TOML, or not of a topology's shape: the parser's message in the topology's words
    /// (keys, not fields), cut to a readable length.
    #[error("{0}")]
    Syntax(String),
    /// A value outside a closed set.
    #[error("`{value}` is not one of: {}", allowed.join(", "))]
    NotOneOf {
        /// The value (an excerpt).
        value: String,
        /// Every value allowed.
        allowed: Vec<&'static str>,
    },
    /// A number of days outside 1 to 36500.
    #[error("{0} days is out of range (1 to 36500)")]
    DaysOutOfRange(i64),
    /// A value not of the form its key needs (a host, an address, a name, a path, ...).
    #[error("`{value}`{form}")]
    Malformed {
        /// The value (an excerpt).
        value: String,
        /// The form it needs.
        form: Form,
    },
    /// A name or host that something else of the set owns.
    #[error("`{value}` is reserved{owner}")]
    Reserved {
        /// The name or host.
        value: String,
        /// What owns it.
        owner: ReservedFor,
    },
    /// A name or host longer than what it names allows.
    #[error("{}", too_long(*what, *length, *max))]
    TooLong {
        /// What is too long.
        what: Bounded,
        /// Its length (characters for names people read, bytes for file and alias names).
        length: usize,
        /// The most allowed.
        max: usize,
    },
    /// A name or host another entry of the topology already has.
    #[error("{}", taken(value, by))]
    Taken {
        /// The name, host or profile.
        value: String,
        /// Who has it.
        by: TakenBy,
    },
    /// A key the PKI engine backend needs is absent.
    #[error("backend = \"{}\" needs `{}` ({})", backend.as_str(), key.as_str(), key.what())]
    EngineKeyMissing {
        /// The backend.
        backend: EngineBackend,
        /// The key of `[pki.ca]`.
        key: EngineKey,
    },
    /// A rule checked in one place only, in its own words.
    #[error("{0}")]
    Rule(String),
}

/// The form a value must have; renders as what follows the quoted value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Form {
    /// A node's or load balancer's host.
    #[error(" is neither a valid DNS name (RFC 1123) nor an IP address")]
    Host,
    /// A node's `ip`.
    #[error(" is not an IPv4 or IPv6 address")]
    IpAddress,
    /// An environment variable name.
    #[error(" is not an environment variable name")]
    Variable,
    /// `pki.country`.
    #[error(" is not a two-letter country code such as \"US\"")]
    CountryCode,
    /// `keystores.primary_alias`.
    #[error(" is not a lower-case alias of [a-z0-9._-]")]
    Alias,
    /// A node's name.
    #[error(" must be lower case [a-z0-9-]: it names a directory and a key alias")]
    NodeName,
    /// A node's `extra_sans` entry.
    #[error(" is not a DNS name or a `*.` wildcard over at least two labels")]
    SanDnsName,
    /// A load balancer's `affinity_cookie`.
    #[error(" is not a cookie name of 1 to 64 letters, digits or `_`")]
    CookieName,
    /// A load balancer's file path, with the character nginx or HAProxy would misread.
    #[error("{}: it names a file on the load-balancer host", match .0 { Some(c) => format!(" contains {c:?}, which nginx or HAProxy would misread"), None => " is not an absolute path".to_string() })]
    LoadBalancerPath(Option<char>),
    /// The engine's `mount` (segments joined by `/`), or its `role` or `issuer`.
    #[error(" is not a valid name here: use {}", if *.0 { "letters, digits, `_`, `-`, `.` and `/` between segments" } else { "letters, digits, `_`, `-` and `.`" })]
    EnginePathName(bool),
    /// The engine's address, without `https://` or `http://`.
    #[error(" does not start with https://")]
    EngineScheme,
    /// The engine's address, with a path, query or user.
    #[error(": only a scheme, a host and a port are allowed (no path, query or user)")]
    EngineOnlyHostPort,
    /// The engine's address, without a usable host and port.
    #[error(" has no valid host and port")]
    EngineHostPort,
    /// The engine's host.
    #[error(" is not a valid host name")]
    EngineHost,
    /// The engine's address, plain http to another machine.
    #[error(" is plain http to a host other than this machine: the token would travel in clear")]
    EnginePlainHttp,
}

/// A value with a length limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bounded {
    /// The deployment name (it starts the CA's and the primary's common names).
    DeploymentName,
    /// `pki.organization` or `pki.organizational_unit`.
    SubjectAttribute,
    /// `keystores.primary_alias`.
    Alias,
    /// A node's name (its directory, keystore file and key alias).
    NodeName,
    /// A load balancer's host (it names the load balancer's files).
    LoadBalancerHost,
}

fn too_long(what: Bounded, n: usize, max: usize) -> String {
    match what {
        Bounded::DeploymentName => format!("the deployment name has {n} characters; at most {max}: it starts the common name of the CA and primary certificates (64 characters at most, RFC 5280)"),
        Bounded::SubjectAttribute => format!("has {n} characters; at most {max} (RFC 5280's bound for O and OU)"),
        Bounded::Alias => format!("the alias has {n} characters; at most {max}"),
        Bounded::NodeName => format!("the name has {n} characters; at most {max}: it names the node's directory, its TLS keystore file and its key alias"),
        Bounded::LoadBalancerHost => format!("the host has {n} characters; a load balancer's host may have at most {max}: it names the load balancer's files"),
    }
}

/// Who already has a name, host or profile (node indexes are 1-based, as in `node[N]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TakenBy {
    /// The name of an earlier node.
    NodeName(usize),
    /// The host of an earlier node, at the same port offset.
    NodeHostAndOffset {
        /// The earlier node.
        node: usize,
        /// The offset both have.
        offset: u16,
    },
    /// A node's host, wanted by a load balancer.
    NodeHost(String),
    /// The host of another load balancer.
    LoadBalancerHost,
    /// The profile another load balancer fronts.
    Fronted,
}

fn taken(value: &str, by: &TakenBy) -> String {
    match by {
        TakenBy::NodeName(first) => format!("`{value}` is already the name of node[{first}]"),
        TakenBy::NodeHostAndOffset { node, offset } => {
            format!("`{value}` is also the host of node[{node}] with the same offset {offset}")
        }
        TakenBy::NodeHost(node) => format!(
            "`{value}` is the host of node `{node}`; a load balancer needs a host of its own"
        ),
        TakenBy::LoadBalancerHost => {
            format!("`{value}` is already the host of another load balancer")
        }
        TakenBy::Fronted => {
            format!("another load balancer already fronts `{value}`; a profile has at most one")
        }
    }
}

/// What owns a reserved name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReservedFor {
    /// The set's CA aliases (every rollover generation).
    #[error(" for the set's CA")]
    Ca,
    /// The primary key's aliases.
    #[error(" for the primary key's alias")]
    PrimaryAlias,
    /// A node's name (1-based index).
    #[error(": it is the name of node[{0}]")]
    Node(usize),
}

/// A key of `[pki.ca]` every PKI engine backend needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineKey {
    /// The engine's URL.
    Address,
    /// The PKI secrets engine's mount.
    Mount,
    /// The role that signs.
    Role,
    /// The variable holding the token.
    TokenEnv,
}

impl EngineKey {
    /// The key as written in `[pki.ca]`.
    pub fn as_str(self) -> &'static str {
        match self {
            EngineKey::Address => "address",
            EngineKey::Mount => "mount",
            EngineKey::Role => "role",
            EngineKey::TokenEnv => "token_env",
        }
    }

    /// What the key holds, for people.
    pub fn what(self) -> &'static str {
        match self {
            EngineKey::Address => "the engine's URL, e.g. \"https://bao.example:8200\"",
            EngineKey::Mount => "the PKI secrets engine's mount, e.g. \"pki\"",
            EngineKey::Role => "the role that signs",
            EngineKey::TokenEnv => "the environment variable holding the token",
        }
    }
}

impl From<String> for TopologyProblem {
    fn from(sentence: String) -> TopologyProblem {
        TopologyProblem::Rule(sentence)
    }
}

impl From<&str> for TopologyProblem {
    fn from(sentence: &str) -> TopologyProblem {
        TopologyProblem::Rule(sentence.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_class_reads_as_before() {
        let cases: [(TopologyProblem, &str); 8] = [
            (
                TopologyProblem::NotOneOf {
                    value: "jks2".into(),
                    allowed: vec!["jks", "pkcs12"],
                },
                "`jks2` is not one of: jks, pkcs12",
            ),
            (
                TopologyProblem::DaysOutOfRange(0),
                "0 days is out of range (1 to 36500)",
            ),
            (
                TopologyProblem::Reserved {
                    value: "wso2carbon".into(),
                    owner: ReservedFor::PrimaryAlias,
                },
                "`wso2carbon` is reserved for the primary key's alias",
            ),
            (
                TopologyProblem::Reserved {
                    value: "km".into(),
                    owner: ReservedFor::Node(2),
                },
                "`km` is reserved: it is the name of node[2]",
            ),
            (
                TopologyProblem::EngineKeyMissing {
                    backend: EngineBackend::Vault,
                    key: EngineKey::Role,
                },
                "backend = \"vault\" needs `role` (the role that signs)",
            ),
            (
                TopologyProblem::Malformed {
                    value: "1X".into(),
                    form: Form::Variable,
                },
                "`1X` is not an environment variable name",
            ),
            (
                TopologyProblem::Malformed {
                    value: "/etc/x;y".into(),
                    form: Form::LoadBalancerPath(Some(';')),
                },
                "`/etc/x;y` contains ';', which nginx or HAProxy would misread: it names a file on the load-balancer host",
            ),
            (
                TopologyProblem::Malformed {
                    value: "pki/".into(),
                    form: Form::EnginePathName(false),
                },
                "`pki/` is not a valid name here: use letters, digits, `_`, `-` and `.`",
            ),
        ];
        for (problem, text) in cases {
            assert_eq!(problem.to_string(), text);
        }
    }

    #[test]
    fn lengths_and_taken_names_read_as_before() {
        let long = TopologyProblem::TooLong {
            what: Bounded::Alias,
            length: 70,
            max: 63,
        };
        assert_eq!(long.to_string(), "the alias has 70 characters; at most 63");
        let taken = TopologyProblem::Taken {
            value: "gw.example".into(),
            by: TakenBy::NodeHostAndOffset { node: 1, offset: 0 },
        };
        assert_eq!(
            taken.to_string(),
            "`gw.example` is also the host of node[1] with the same offset 0"
        );
    }

    #[test]
    fn validation_reports_the_class_not_only_the_text() {
        let text = "name = \"t\"\nproduct = \"apim-4.x\"\n\
                    [[node]]\nname = \"a\"\nprofile = \"control-plane\"\nhost = \"a.example\"\n\
                    [[node]]\nname = \"a\"\nprofile = \"control-plane\"\nhost = \"b.example\"\n";
        let e = super::super::Topology::parse(text, std::path::Path::new("t.toml")).unwrap_err();
        assert!(
            matches!(
                &*e.problem,
                TopologyProblem::Taken { value, by: TakenBy::NodeName(1) } if value == "a"
            ),
            "{e:?}"
        );
        assert_eq!(
            e.to_string(),
            "t.toml:8: node[2].name: `a` is already the name of node[1]"
        );
        let e = super::super::Topology::parse(
            &text.replace("apim-4.x", "apim-9"),
            std::path::Path::new("t.toml"),
        )
        .unwrap_err();
        assert!(
            matches!(&*e.problem, TopologyProblem::NotOneOf { value, .. } if value == "apim-9"),
            "{e:?}"
        );
    }
}
