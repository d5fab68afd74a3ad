//! Every path of a generated set, in one place (docs/commands.md, "Output layout").
//! Paths are relative to DIR and use `/`, as inventory.json and plan report them.

use crate::topology::KeystoreFormat;

pub(crate) const CA_CERT: &str = "ca/ca.crt";
pub(crate) const CA_KEY: &str = "ca/ca.key";
pub(crate) const CA_BUNDLE: &str = "ca/bundle.crt";
/// The next CA during a rollover (between `rotate --ca begin` and `finish`).
pub(crate) const CA_NEXT_CERT: &str = "ca/next/ca.crt";
pub(crate) const CA_NEXT_KEY: &str = "ca/next/ca.key";
/// The previous CA during a rollover (between `rotate --ca finish` and `retire`).
pub(crate) const CA_PREVIOUS_CERT: &str = "ca/previous/ca.crt";
pub(crate) const SECRETS: &str = "secrets.toml";
/// The peer groups the nodes' node.toml name, each listed once per set (API-M 2.6).
pub(crate) const PEER_GROUPS: &str = "peer-groups.toml";
pub(crate) const INVENTORY: &str = "inventory.json";
pub(crate) const LOCK: &str = ".lock";
/// The commit journal of a run that is writing (or was interrupted while writing) the set.
pub(crate) const JOURNAL: &str = ".journal";
pub(crate) const HISTORY: &str = "history";

/// Where a node keeps keystores, relative to its product home.
pub(crate) const SECURITY_DIR: &str = "repository/resources/security";

/// The file name of the primary keystore.
pub(crate) fn primary_file(format: KeystoreFormat) -> String {
    format!("wso2carbon.{}", format.extension())
}

/// The file name of a node's TLS keystore.
pub(crate) fn tls_file(node: &str, format: KeystoreFormat) -> String {
    format!("{node}-tls.{}", format.extension())
}

/// The file name of the truststore.
pub(crate) fn truststore_file(format: KeystoreFormat) -> String {
    format!("client-truststore.{}", format.extension())
}

/// A node's directory (its product home as apim-pki lays it out).
pub(crate) fn node_dir(node: &str) -> String {
    format!("nodes/{node}")
}

/// A node's node.toml.
pub(crate) fn node_toml(node: &str) -> String {
    format!("nodes/{node}/node.toml")
}

/// A node's deployment.toml (API-M 3.2 and 4.x).
pub(crate) fn deployment_toml(node: &str) -> String {
    format!("nodes/{node}/repository/conf/deployment.toml")
}

/// A file in a node's security directory.
pub(crate) fn node_security(node: &str, file: &str) -> String {
    format!("nodes/{node}/{SECURITY_DIR}/{file}")
}

/// A load balancer's directory.
pub(crate) fn lb_dir(host: &str) -> String {
    format!("load-balancers/{host}")
}

/// The files of a load balancer: certificate chain, key, CA, HAProxy's combined PEM, and its
/// nginx and HAProxy configurations.
pub(crate) fn lb_file(host: &str, file: LbFile) -> String {
    format!("load-balancers/{host}/{}", file.name())
}

/// One of a load balancer's files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LbFile {
    Cert,
    Key,
    Ca,
    Haproxy,
    /// nginx server blocks and upstreams (an http-context include).
    NginxConf,
    /// HAProxy frontends and backends.
    HaproxyCfg,
}

impl LbFile {
    /// The file's name.
    pub(crate) fn name(self) -> &'static str {
        match self {
            LbFile::Cert => "tls.crt",
            LbFile::Key => "tls.key",
            LbFile::Ca => "ca.crt",
            LbFile::Haproxy => "haproxy.pem",
            LbFile::NginxConf => "nginx.conf",
            LbFile::HaproxyCfg => "haproxy.cfg",
        }
    }
}
