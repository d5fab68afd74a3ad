//! The topology file: parsing, validation and the resolved model the rest of apim-pki trusts.
//!
//! Two stages, as in ripgrep's low-level and high-level arguments: `raw` holds what the file
//! says (with positions), [`Topology`] holds what it means after every rule of
//! docs/topology.md has been checked. Knows nothing of crypto or files beyond reading
//! the topology itself.

pub(crate) mod aliases;
pub(crate) mod names;
mod problem;
mod raw;
mod validate;

use std::net::IpAddr;
use std::path::{Path, PathBuf};

pub(crate) use names::HostName;
pub use problem::{Bounded, EngineKey, Form, ReservedFor, TakenBy, TopologyProblem};
use serde::Serialize;

/// The highest port a WSO2 node listens on before its offset: JMX's RMI server port (carbon.xml
/// `Ports/JMX/RMIServerPort` in 2.6, `monitoring.jmx.rmi_server_port` in 3.2 and 4.x, both
/// 11111), above Thrift (10397) and the embedded LDAP (10389). Every port plus the offset must
/// stay at or below 65535.
pub(crate) const HIGHEST_PORT: u32 = 11111;

/// A topology file that breaks a rule: the file, the line, the key and what to do.
#[derive(Debug, thiserror::Error)]
#[error("{}{}: {}{problem}", file.display(), line.map(|l| format!(":{l}")).unwrap_or_default(), if key.is_empty() { String::new() } else { format!("{key}: ") })]
#[non_exhaustive]
pub struct TopologyError {
    /// The topology file.
    pub file: PathBuf,
    /// 1-based line of the offending key, when known.
    pub line: Option<usize>,
    /// The key, e.g. `node[3].host`.
    pub key: String,
    /// What is wrong.
    #[source]
    pub problem: Box<TopologyProblem>,
    /// What to do about it.
    pub hint: Option<String>,
}

/// The WSO2 API-M release line a topology targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
pub enum Product {
    /// API-M 2.6: XML configuration, JDK 7/8.
    #[serde(rename = "apim-2.6")]
    Apim26,
    /// API-M 3.2: deployment.toml.
    #[serde(rename = "apim-3.2")]
    Apim32,
    /// API-M 4.0 to 4.4: deployment.toml, one distribution started with `api-manager.sh`.
    #[serde(rename = "apim-4.x")]
    Apim4x,
    /// API-M 4.5 and later: separate control-plane, universal-gateway and traffic-manager
    /// distributions, each with its own start script.
    #[serde(rename = "apim-4.5")]
    Apim45,
}

impl Product {
    /// Every product, in the order users see them.
    pub const ALL: [Product; 4] = [
        Product::Apim26,
        Product::Apim32,
        Product::Apim4x,
        Product::Apim45,
    ];

    /// The name used in topology files.
    pub fn as_str(self) -> &'static str {
        match self {
            Product::Apim26 => "apim-2.6",
            Product::Apim32 => "apim-3.2",
            Product::Apim4x => "apim-4.x",
            Product::Apim45 => "apim-4.5",
        }
    }

    /// Parses a product name as written in topology files.
    pub fn parse(text: &str) -> Option<Product> {
        Product::ALL.into_iter().find(|p| p.as_str() == text)
    }

    /// The profiles this product knows, and whether each is required.
    pub fn profiles(self) -> &'static [(Profile, bool)] {
        use Profile::*;
        match self {
            Product::Apim26 => &[
                (KeyManager, true),
                (Publisher, true),
                (Store, true),
                (TrafficManager, true),
                (GatewayManager, false),
                (GatewayWorker, true),
            ],
            Product::Apim32 => &[
                (KeyManager, true),
                (Publisher, true),
                (Devportal, true),
                (TrafficManager, true),
                (GatewayWorker, true),
            ],
            Product::Apim4x => &[
                (ControlPlane, true),
                (GatewayWorker, true),
                (TrafficManager, true),
                (KeyManager, false),
            ],
            Product::Apim45 => &[
                (ControlPlane, true),
                (UniversalGateway, true),
                (TrafficManager, true),
                (KeyManager, false),
            ],
        }
    }

    /// The command that starts a node of `profile` and keeps the deployment.toml apply wrote.
    ///
    /// 2.6 and 3.2 start with `wso2server.sh`, 4.0-4.4 with `api-manager.sh`, 4.5+ with the
    /// script of each distribution. In 3.2 and 4.0-4.4 `-Dprofile=X` runs `profileSetup.sh`,
    /// which replaces deployment.toml with the profile's template unless
    /// `--skipConfigOptimization` is given (apply already started from that template).
    pub fn start_command(self, profile: Profile) -> String {
        let script = match (self, profile) {
            (Product::Apim26 | Product::Apim32, _) => "wso2server.sh",
            (Product::Apim4x, _) => "api-manager.sh",
            (Product::Apim45, Profile::ControlPlane) => "api-cp.sh",
            (Product::Apim45, Profile::KeyManager) => "key-manager.sh",
            (Product::Apim45, Profile::TrafficManager) => "traffic-manager.sh",
            (Product::Apim45, _) => "gateway.sh",
        };
        match profile.start_profile(self) {
            None => format!("sh bin/{script}"),
            Some(p) if self == Product::Apim26 => format!("sh bin/{script} -Dprofile={p}"),
            Some(p) => format!("sh bin/{script} -Dprofile={p} --skipConfigOptimization"),
        }
    }

    /// True for the products configured through deployment.toml (3.2 and later).
    pub fn uses_deployment_toml(self) -> bool {
        self != Product::Apim26
    }

    /// The keystore format used when the topology does not name one.
    pub fn default_format(self) -> KeystoreFormat {
        match self {
            Product::Apim26 => KeystoreFormat::Jks,
            Product::Apim32 | Product::Apim4x | Product::Apim45 => KeystoreFormat::Pkcs12,
        }
    }
}

/// A WSO2 node profile.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Profile {
    /// Key manager (2.6, 3.2, 4.x).
    KeyManager,
    /// Publisher (2.6).
    Publisher,
    /// Store (2.6).
    Store,
    /// Developer portal (3.2).
    Devportal,
    /// Traffic manager.
    TrafficManager,
    /// Gateway manager (2.6).
    GatewayManager,
    /// Gateway worker.
    GatewayWorker,
    /// Control plane (4.x, 4.5+).
    ControlPlane,
    /// API-M 4.5+'s separate gateway distribution.
    UniversalGateway,
}

impl Profile {
    /// The name used in topology files.
    pub fn as_str(self) -> &'static str {
        match self {
            Profile::KeyManager => "key-manager",
            Profile::Publisher => "publisher",
            Profile::Store => "store",
            Profile::Devportal => "devportal",
            Profile::TrafficManager => "traffic-manager",
            Profile::GatewayManager => "gateway-manager",
            Profile::GatewayWorker => "gateway-worker",
            Profile::ControlPlane => "control-plane",
            Profile::UniversalGateway => "universal-gateway",
        }
    }

    /// Parses a profile name for `product` (`store` is 3.2's old name for `devportal`).
    pub fn parse(text: &str, product: Product) -> Option<Profile> {
        let known = product.profiles().iter().map(|(p, _)| *p);
        if product == Product::Apim32 && text == "store" {
            return Some(Profile::Devportal);
        }
        known.into_iter().find(|p| p.as_str() == text)
    }

    /// True for the profiles that serve API traffic (8280/8243).
    pub fn is_gateway(self) -> bool {
        matches!(
            self,
            Profile::GatewayWorker | Profile::GatewayManager | Profile::UniversalGateway
        )
    }

    /// The `-Dprofile=` value WSO2's start script takes, if the profile has one.
    pub fn start_profile(self, product: Product) -> Option<&'static str> {
        match (self, product) {
            // 4.5+: one distribution per profile, no profile switch (key manager aside).
            (Profile::KeyManager, Product::Apim45) => Some("key-manager"),
            (_, Product::Apim45) => None,
            (Profile::KeyManager, Product::Apim4x) => Some("api-key-manager-node"),
            (Profile::KeyManager, _) => Some("api-key-manager"),
            (Profile::Publisher, _) => Some("api-publisher"),
            (Profile::Store, _) => Some("api-store"),
            (Profile::Devportal, _) => Some("api-devportal"),
            (Profile::TrafficManager, _) => Some("traffic-manager"),
            (Profile::GatewayWorker, _) => Some("gateway-worker"),
            (Profile::ControlPlane, _) => Some("control-plane"),
            (Profile::GatewayManager | Profile::UniversalGateway, _) => None,
        }
    }
}

impl std::fmt::Display for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A key algorithm and size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
pub enum KeyType {
    /// RSA, 2048 bits.
    #[serde(rename = "rsa-2048")]
    Rsa2048,
    /// RSA, 3072 bits.
    #[serde(rename = "rsa-3072")]
    Rsa3072,
    /// RSA, 4096 bits.
    #[serde(rename = "rsa-4096")]
    Rsa4096,
    /// ECDSA on P-256.
    #[serde(rename = "ecdsa-p256")]
    EcdsaP256,
    /// ECDSA on P-384.
    #[serde(rename = "ecdsa-p384")]
    EcdsaP384,
}

impl KeyType {
    /// Every key type, in the order users see them.
    pub const ALL: [KeyType; 5] = [
        KeyType::Rsa2048,
        KeyType::Rsa3072,
        KeyType::Rsa4096,
        KeyType::EcdsaP256,
        KeyType::EcdsaP384,
    ];

    /// The name used in topology files.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyType::Rsa2048 => "rsa-2048",
            KeyType::Rsa3072 => "rsa-3072",
            KeyType::Rsa4096 => "rsa-4096",
            KeyType::EcdsaP256 => "ecdsa-p256",
            KeyType::EcdsaP384 => "ecdsa-p384",
        }
    }

    /// Parses a key type name.
    pub fn parse(text: &str) -> Option<KeyType> {
        KeyType::ALL.into_iter().find(|k| k.as_str() == text)
    }

    /// True for the RSA types.
    pub fn is_rsa(self) -> bool {
        matches!(self, KeyType::Rsa2048 | KeyType::Rsa3072 | KeyType::Rsa4096)
    }
}

impl std::fmt::Display for KeyType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

pub(crate) use crate::keystore::KeystoreFormat;

/// Whether each node has its own TLS keystore or the primary keystore serves TLS too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TlsMode {
    /// Each node has its own TLS keystore; the primary is shared.
    PerNode,
    /// The shared primary keystore also serves TLS; its certificate names every host.
    Shared,
}

/// PKI settings (`[pki]`).
#[derive(Debug, Clone, Serialize)]
pub struct PkiSettings {
    pub key: KeyType,
    pub validity_days: u32,
    pub renew_before_days: u32,
    pub organization: Option<String>,
    pub organizational_unit: Option<String>,
    pub country: Option<String>,
    pub include_localhost: bool,
    pub ca_validity_days: u32,
}

/// Where the issuing CA comes from.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum CaSource {
    /// apim-pki creates and keeps the CA in `DIR/ca/`.
    Generated,
    /// The user's CA: PEM certificate (intermediates after it) and key, resolved against the
    /// topology file's directory.
    External { cert: PathBuf, key: PathBuf },
    /// A corporate CA that signs CSRs elsewhere (`csr`, then `import-signed`).
    Imported,
    /// An OpenBao or HashiCorp Vault PKI secrets engine signs CSRs apim-pki makes
    /// (docs/openbao.md).
    Engine(EngineSettings),
}

/// Which PKI engine `[pki.ca] backend` names (they share the API).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EngineBackend {
    #[serde(rename = "openbao")]
    OpenBao,
    Vault,
}

impl EngineBackend {
    /// Every value, in the order users see them.
    pub const ALL: [EngineBackend; 2] = [EngineBackend::OpenBao, EngineBackend::Vault];

    /// The name used in topology files.
    pub fn as_str(self) -> &'static str {
        match self {
            EngineBackend::OpenBao => "openbao",
            EngineBackend::Vault => "vault",
        }
    }

    /// The product name, for messages.
    pub fn product_name(self) -> &'static str {
        match self {
            EngineBackend::OpenBao => "OpenBao",
            EngineBackend::Vault => "Vault",
        }
    }

    /// Parses a backend name.
    pub fn parse(text: &str) -> Option<EngineBackend> {
        EngineBackend::ALL.into_iter().find(|b| b.as_str() == text)
    }
}

/// `[pki.ca]` with a `backend`: where the engine is and how apim-pki authenticates to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EngineSettings {
    pub backend: EngineBackend,
    /// `https://host:port` (or `http://` to a loopback address), without a path.
    pub address: EngineAddress,
    /// The PKI secrets engine's mount path, e.g. `pki` or `pki/apim`.
    pub mount: String,
    /// The role that signs.
    pub role: String,
    /// The issuer reference (name or ID); `None`: the mount's default issuer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// The environment variable holding the token (never the token itself).
    pub token_env: String,
    /// Extra PEM roots for the engine's own TLS, resolved against the topology's directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_bundle: Option<PathBuf>,
}

/// A parsed engine address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineAddress {
    /// True for `https://`.
    pub tls: bool,
    /// Host name or IP literal (IPv6 without brackets).
    pub host: String,
    pub port: u16,
}

impl std::fmt::Display for EngineAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.tls { "https" } else { "http" };
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
}

impl Serialize for EngineAddress {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Keystore settings (`[keystores]`).
#[derive(Debug, Clone, Serialize)]
pub struct KeystoreSettings {
    pub format: KeystoreFormat,
    pub tls: TlsMode,
    pub primary_alias: String,
    pub primary_key: KeyType,
    pub primary_validity_days: u32,
}

/// `[secure_vault]`: whether apply and generate write passwords as WSO2's secure vault expects
/// (docs/secure-vault.md), with which scheme, and whether apply writes the start-up password file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SecureVaultSettings {
    /// On unless `enabled = false`.
    pub enabled: bool,
    /// `scheme = "oaep" | "pkcs1"` (default: the release's strongest, OAEP).
    #[serde(serialize_with = "ser_scheme")]
    pub scheme: crate::vault::Scheme,
    /// `password_file = "none" | "tmp" | "persist"` (default none): the file apply writes in
    /// the product home so the JVM gets the vault key's password without a console.
    #[serde(serialize_with = "ser_password_file")]
    pub password_file: Option<crate::vault::startup::PasswordFile>,
}

impl Default for SecureVaultSettings {
    fn default() -> Self {
        SecureVaultSettings {
            enabled: true,
            scheme: crate::vault::Scheme::RsaOaepSha1,
            password_file: None,
        }
    }
}

fn ser_scheme<S: serde::Serializer>(s: &crate::vault::Scheme, ser: S) -> Result<S::Ok, S::Error> {
    ser.serialize_str(s.name())
}

fn ser_password_file<S: serde::Serializer>(
    p: &Option<crate::vault::startup::PasswordFile>,
    ser: S,
) -> Result<S::Ok, S::Error> {
    ser.serialize_str(p.map_or("none", |p| p.name()))
}

/// The environment variables passwords come from (`[passwords]`); `None` means generated.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PasswordVariables {
    pub primary: Option<String>,
    pub tls: Option<String>,
    pub truststore: Option<String>,
}

/// One WSO2 node.
#[derive(Debug, Clone, Serialize)]
pub struct Node {
    /// Unique `[a-z0-9-]` name: directory name and TLS key alias.
    pub name: String,
    pub profile: Profile,
    /// The name peers use to reach the node.
    pub host: HostName,
    pub ip: Option<IpAddr>,
    pub offset: u16,
    pub extra_sans: Vec<String>,
}

/// A load balancer in front of one profile's nodes.
#[derive(Debug, Clone, Serialize)]
pub struct LoadBalancer {
    pub host: HostName,
    pub fronts: Profile,
    /// How requests stay on one node (docs/load-balancers.md).
    pub affinity: Affinity,
    /// The load balancer's own affinity cookie (with `affinity = "cookie"`).
    pub affinity_cookie: String,
    /// Where the load balancer's files live on the load-balancer host.
    pub files: LbPaths,
}

/// Session affinity of a load balancer (WSO2's distributed deployment guide: mandatory in front of publishers and stores).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Affinity {
    /// The load balancer's own cookie names the node.
    Cookie,
    /// The client's address picks the node (WSO2 servers calling admin services keep only
    /// JSESSIONID, not a load balancer's cookie).
    Source,
    /// Every request may go to any node.
    None,
}

impl Affinity {
    /// Every value, in the order users see them.
    pub const ALL: [Affinity; 3] = [Affinity::Cookie, Affinity::Source, Affinity::None];

    /// The name used in topology files.
    pub fn as_str(self) -> &'static str {
        match self {
            Affinity::Cookie => "cookie",
            Affinity::Source => "source",
            Affinity::None => "none",
        }
    }

    /// Parses an affinity name.
    pub fn parse(text: &str) -> Option<Affinity> {
        Affinity::ALL.into_iter().find(|a| a.as_str() == text)
    }
}

/// Absolute paths of a load balancer's files on its own host (what its configurations name).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct LbPaths {
    /// Certificate chain (`tls.crt`).
    pub cert: String,
    /// Private key (`tls.key`).
    pub key: String,
    /// The CA bundle it verifies the nodes with (`ca.crt`).
    pub ca: String,
    /// HAProxy's certificate plus key (`haproxy.pem`).
    pub haproxy_pem: String,
}

/// A validated topology: every rule of docs/topology.md holds.
#[derive(Debug, Clone, Serialize)]
pub struct Topology {
    /// The deployment's name (CA names, aliases).
    pub name: String,
    /// The API-M release line.
    pub product: Product,
    /// Key types, validity, renewal window.
    pub pki: PkiSettings,
    /// Where the issuing CA comes from.
    pub ca: CaSource,
    /// Keystore format, TLS mode, aliases.
    pub keystores: KeystoreSettings,
    /// The environment variables passwords come from.
    pub passwords: PasswordVariables,
    /// The `[secure_vault]` table: whether and how passwords are encrypted in node configuration.
    pub secure_vault: SecureVaultSettings,
    /// The nodes.
    pub nodes: Vec<Node>,
    /// The load balancers.
    pub load_balancers: Vec<LoadBalancer>,
}

impl Topology {
    /// Reads and validates a topology file.
    pub fn load(path: &Path) -> Result<Topology, TopologyError> {
        let text =
            crate::input::read_to_string(path, crate::input::Limit::Topology).map_err(|e| {
                TopologyError {
                    file: path.to_path_buf(),
                    line: None,
                    key: String::new(),
                    problem: Box::new(TopologyProblem::Unreadable(e)),
                    hint: Some(
                        "check the path; `apim-pki init > topology.toml` writes a starting point"
                            .into(),
                    ),
                }
            })?;
        Topology::parse(&text, path)
    }

    /// Validates topology text; `path` names the file in errors and anchors relative CA paths.
    pub fn parse(text: &str, path: &Path) -> Result<Topology, TopologyError> {
        validate::parse(text, path)
    }

    /// The load balancer fronting `profile`, if any.
    pub fn load_balancer_for(&self, profile: Profile) -> Option<&LoadBalancer> {
        self.load_balancers.iter().find(|lb| lb.fronts == profile)
    }

    /// The node named `name`.
    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.name == name)
    }
}

impl CaSource {
    /// True when apim-pki makes and keeps the CA.
    pub fn is_generated(&self) -> bool {
        matches!(self, CaSource::Generated)
    }

    /// The PKI engine that signs, when `[pki.ca]` names a backend.
    pub fn engine(&self) -> Option<&EngineSettings> {
        match self {
            CaSource::Engine(e) => Some(e),
            _ => None,
        }
    }
}
