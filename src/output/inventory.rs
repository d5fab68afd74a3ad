//! inventory.json: every artifact of a set with what its certificates say, the resolved topology,
//! where each password comes from (never the value) and the CA stage. Written deterministically
//! (sorted, no timestamps but certificate validity), so an unchanged topology changes nothing.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::pki::CertInfo;
use crate::topology::Product;

/// The version of the inventory format this build writes and reads.
pub(crate) const FORMAT_VERSION: u32 = 1;

/// The whole inventory.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Inventory {
    pub format_version: u32,
    pub name: String,
    /// The product line the set was made for (`apim-2.6`, … in JSON).
    pub product: Product,
    /// `stable`, or a CA rollover stage (`rollover-begun`, `rollover-finished`).
    pub ca_stage: String,
    /// The generation of the issuing CA: 1, then 2 after the first rollover, …
    #[serde(default = "first_generation")]
    pub ca_generation: u32,
    /// Where each password (`primary`, `tls`, `truststore`) comes from.
    pub passwords: BTreeMap<String, PasswordSource>,
    /// Every file of the set, sorted by path.
    pub artifacts: Vec<Artifact>,
    /// The resolved topology the set was made from.
    pub topology: serde_json::Value,
    /// The PKI engine that signs the set's certificates, with `[pki.ca] backend`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<EngineRecord>,
}

/// The PKI engine that signed a set (docs/openbao.md): where it is, and what it signed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct EngineRecord {
    /// `openbao` or `vault`.
    pub backend: String,
    pub address: String,
    pub mount: String,
    pub role: String,
    /// The issuer reference of `[pki.ca] issuer`; absent: the mount's default issuer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// The subject of the issuing CA the engine's issuer holds.
    pub ca_subject: String,
    /// Each node's and load balancer's certificate the engine signed, sorted by label.
    pub signed: Vec<EngineSigned>,
}

/// One certificate an engine signed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct EngineSigned {
    /// The node name or load-balancer host.
    pub label: String,
    /// The serial as the engine lists it (`LIST MOUNT/certs`): `4a:0b:…`.
    pub serial: String,
}

fn first_generation() -> u32 {
    1
}

/// Where a password comes from.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "source", rename_all = "kebab-case")]
pub enum PasswordSource {
    /// An environment variable, by name.
    Env { variable: String },
    /// Generated and recorded in secrets.toml.
    SecretsFile,
}

impl std::fmt::Display for PasswordSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PasswordSource::Env { variable } => write!(f, "environment variable {variable}"),
            PasswordSource::SecretsFile => f.write_str("secrets.toml"),
        }
    }
}

/// One file of the set.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Artifact {
    pub path: String,
    pub kind: ArtifactKind,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub node: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub load_balancer: Option<String>,
    /// `JKS` or `PKCS12` for keystores.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub store_type: Option<String>,
    /// Which password opens it: `primary`, `tls` or `truststore`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub password: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub entries: Vec<ArtifactEntry>,
}

/// What kind of file an artifact is.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum ArtifactKind {
    CaCert,
    CaKey,
    CaBundle,
    CaNextCert,
    CaNextKey,
    CaPreviousCert,
    PrimaryKeystore,
    TlsKeystore,
    Truststore,
    LbCert,
    LbKey,
    LbCa,
    LbHaproxy,
    LbNginxConf,
    LbHaproxyCfg,
    NodeConfig,
    /// peer-groups.toml: the peer groups node.toml files name, once per set.
    PeerGroups,
    DeploymentConfig,
    Secrets,
}

/// One certificate inside an artifact.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ArtifactEntry {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub alias: Option<String>,
    /// `private-key`, `trusted-cert` or `certificate`.
    pub entry: String,
    pub subject: String,
    pub issuer: String,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub sans: Vec<String>,
    pub serial: String,
    pub sha256: String,
    pub not_before: String,
    pub not_after: String,
    pub key: String,
}

impl ArtifactEntry {
    /// Describes a certificate for the inventory.
    pub fn new(alias: Option<&str>, entry: &str, info: &CertInfo) -> ArtifactEntry {
        let date = |t: time::OffsetDateTime| {
            t.format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default()
        };
        ArtifactEntry {
            alias: alias.map(str::to_string),
            entry: entry.into(),
            subject: info.subject.clone(),
            issuer: info.issuer.clone(),
            sans: info.san_strings(),
            serial: info.serial.clone(),
            sha256: info.sha256.clone(),
            not_before: date(info.not_before),
            not_after: date(info.not_after),
            key: info.key.clone(),
        }
    }
}

/// Why inventory.json cannot be read back.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InventoryError {
    /// Not JSON of the inventory's shape.
    #[error("{0}")]
    Json(#[from] serde_json::Error),
    /// Written by another version of the format.
    #[error("format_version {found} is not {FORMAT_VERSION}, the version this apim-pki reads")]
    Version {
        /// The version the file says.
        found: u32,
    },
}

impl Inventory {
    /// Parses inventory.json.
    pub fn from_json(bytes: &[u8]) -> Result<Inventory, InventoryError> {
        let inv: Inventory = serde_json::from_slice(bytes)?;
        if inv.format_version != FORMAT_VERSION {
            return Err(InventoryError::Version {
                found: inv.format_version,
            });
        }
        Ok(inv)
    }

    /// Serialises the inventory, pretty, with a trailing newline.
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec_pretty(self).unwrap_or_default();
        out.push(b'\n');
        out
    }

    /// The artifact at `path`.
    pub fn artifact(&self, path: &str) -> Option<&Artifact> {
        self.artifacts.iter().find(|a| a.path == path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The smallest inventory.json this build reads, for `product`.
    fn json(product: &str) -> String {
        format!(
            "{{\n  \"format_version\": {FORMAT_VERSION},\n  \"name\": \"acme\",\n  \"product\": \"{product}\",\n  \"ca_stage\": \"stable\",\n  \"ca_generation\": 1,\n  \"passwords\": {{}},\n  \"artifacts\": [],\n  \"topology\": null\n}}\n"
        )
    }

    #[test]
    fn product_is_typed_and_keeps_its_json_text() {
        for product in Product::ALL {
            let text = json(product.as_str());
            let inv = Inventory::from_json(text.as_bytes()).expect("valid inventory");
            assert_eq!(inv.product, product);
            assert_eq!(String::from_utf8(inv.to_json()).expect("utf-8"), text);
        }
    }

    #[test]
    fn unknown_product_is_refused_by_name() {
        let e = Inventory::from_json(json("apim-9").as_bytes()).expect_err("unknown product");
        assert!(e.to_string().contains("apim-9"), "{e}");
    }
}
