//! A generated set read back from DIR: inventory.json (the recorded topology, the files, where
//! passwords come from) and the passwords themselves. Used by verify and apply; writes nothing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{FileError, FileProblem};
use crate::output::inventory::{Inventory, InventoryError, PasswordSource};
use crate::output::layout;
use crate::output::secrets::{Secrets, SecretsError};
use crate::password::{Password, PasswordRole};
use crate::plan::node_toml::{self, NodeTomlError};
use crate::plan::{NodePlan, PeerGroups};
use crate::topology::{KeystoreFormat, Profile, TlsMode};

/// Why a set could not be opened (exit 2). Problems inside DIR that verify checks are findings
/// instead.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SetError {
    /// DIR has no inventory.json apim-pki can read.
    #[error("{}: cannot read", path.display())]
    NoInventory {
        /// DIR/inventory.json.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// inventory.json does not parse.
    #[error("{}: inventory.json is corrupt: {source}", path.display())]
    InventoryCorrupt {
        /// DIR/inventory.json.
        path: PathBuf,
        /// Why (quoted).
        source: InventoryError,
    },
    /// inventory.json's recorded topology lacks what readers need.
    #[error("{}: inventory.json has no usable topology: {source}", path.display())]
    InventoryTopology {
        /// DIR/inventory.json.
        path: PathBuf,
        /// Why (quoted).
        source: serde_json::Error,
    },
    /// A password variable the inventory names is unset.
    #[error("the {role} password variable {variable} is not set (inventory.json records the {role} password comes from it)")]
    PasswordUnset {
        /// `primary`, `tls` or `truststore`.
        role: String,
        /// The variable.
        variable: String,
    },
    /// secrets.toml, which the inventory names, cannot be read.
    #[error("{}: cannot read", path.display())]
    SecretsUnreadable {
        /// DIR/secrets.toml.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// secrets.toml does not parse.
    #[error("{}: {source}", path.display())]
    SecretsCorrupt {
        /// DIR/secrets.toml.
        path: PathBuf,
        /// Why (quoted; never the file's content).
        source: SecretsError,
    },
    /// secrets.toml lacks a password the inventory says it holds.
    #[error("{}: has no `{role}` password, which inventory.json says it holds", path.display())]
    SecretsMissing {
        /// DIR/secrets.toml.
        path: PathBuf,
        /// The role.
        role: String,
    },
    /// The set has no node of that name.
    #[error("{}: the set has no node `{node}`", path.display())]
    UnknownNode {
        /// DIR/inventory.json.
        path: PathBuf,
        /// The name asked for.
        node: String,
        /// The nodes the set has.
        known: Vec<String>,
    },
    /// An applied home's deployment.toml cannot be read.
    #[error(transparent)]
    HomeConfig(FileError),
    /// The set's peer-groups.toml, which inventory.json lists, cannot be read back.
    #[error(transparent)]
    PeerGroups(NodeTomlError),
}

impl SetError {
    /// What the user can do about it.
    pub fn hint(&self) -> Option<String> {
        match self {
            SetError::NoInventory { .. } => {
                Some("point verify at a directory made by `apim-pki generate`".into())
            }
            SetError::InventoryCorrupt { .. } | SetError::InventoryTopology { .. } => Some(
                "restore inventory.json from a backup, or run `apim-pki generate` again".into(),
            ),
            SetError::PasswordUnset { variable, .. } => Some(format!(
                "export {variable} with the password the set was made with"
            )),
            SetError::SecretsUnreadable { .. } | SetError::SecretsMissing { .. } => Some(
                "inventory.json records generated passwords here; restore it from a backup".into(),
            ),
            SetError::SecretsCorrupt { .. } => Some("restore secrets.toml from a backup".into()),
            SetError::UnknownNode { known, .. } => {
                Some(format!("the set's nodes are: {}", known.join(", ")))
            }
            SetError::HomeConfig(FileError {
                problem: FileProblem::Read(_) | FileProblem::Missing,
                ..
            }) => Some("--apim-home must be the root of the node's API-M".into()),
            SetError::HomeConfig(_) => None,
            SetError::PeerGroups(e) => Some(e.hint().into()),
        }
    }
}

/// The parts of the recorded topology that readers of a set need (their own view, not the
/// generator's types).
#[derive(Debug, Clone, Deserialize)]
pub struct SetView {
    pub name: String,
    pub pki: PkiView,
    pub keystores: KeystoresView,
    pub nodes: Vec<NodeView>,
    pub load_balancers: Vec<LbView>,
    /// `[secure_vault]` as generated (sets older than the vault have none: on, defaults).
    #[serde(default)]
    pub secure_vault: SecureVaultView,
}

/// The set's `[secure_vault]` settings (docs/secure-vault.md).
#[derive(Debug, Clone, Deserialize)]
pub struct SecureVaultView {
    pub enabled: bool,
    pub scheme: String,
    pub password_file: String,
}

impl Default for SecureVaultView {
    fn default() -> Self {
        SecureVaultView {
            enabled: true,
            scheme: "oaep".into(),
            password_file: "none".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct PkiView {
    pub renew_before_days: u32,
}

#[derive(Debug, Clone, Deserialize)]
pub struct KeystoresView {
    pub format: KeystoreFormat,
    pub tls: TlsMode,
    pub primary_alias: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct NodeView {
    pub name: String,
    pub profile: Profile,
    pub host: String,
    #[serde(default)]
    pub offset: u16,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LbView {
    pub host: String,
    pub fronts: Profile,
    /// Where its files live on the load-balancer host (absent in sets made before the
    /// load-balancer configurations were).
    #[serde(default)]
    pub files: Option<crate::topology::LbPaths>,
}

impl SetView {
    /// True when each node has its own TLS keystore.
    pub fn per_node_tls(&self) -> bool {
        self.keystores.tls == TlsMode::PerNode
    }

    /// The load balancer fronting `profile`.
    pub fn lb_for(&self, profile: Profile) -> Option<&LbView> {
        self.load_balancers.iter().find(|lb| lb.fronts == profile)
    }

    /// Where a node's TLS keystore is, and the alias Tomcat should find in it.
    pub fn tls_file(&self, node: &str) -> (String, String) {
        let format = self.keystores.format;
        if self.per_node_tls() {
            (
                layout::node_security(node, &layout::tls_file(node, format)),
                node.to_string(),
            )
        } else {
            (
                layout::node_security(node, &layout::primary_file(format)),
                self.keystores.primary_alias.clone(),
            )
        }
    }
}

/// A set opened for verification: its view, inventory, passwords and peer groups.
pub struct OpenedSet {
    /// The set's directory.
    pub dir: PathBuf,
    /// What the recorded topology says.
    pub view: SetView,
    /// inventory.json.
    pub inventory: Inventory,
    passwords: BTreeMap<String, Password>,
    /// peer-groups.toml, read once (empty when the inventory lists none).
    peer_groups: PeerGroups,
}

impl OpenedSet {
    /// Reads inventory.json and the passwords it names; exit-2 errors only.
    pub fn open(dir: &Path) -> Result<OpenedSet, SetError> {
        let path = dir.join(layout::INVENTORY);
        let bytes = crate::input::read(&path, crate::input::Limit::SetFile).map_err(|source| {
            SetError::NoInventory {
                path: path.clone(),
                source,
            }
        })?;
        let inventory =
            Inventory::from_json(&bytes).map_err(|source| SetError::InventoryCorrupt {
                path: path.clone(),
                source,
            })?;
        let view: SetView =
            serde_json::from_value(inventory.topology.clone()).map_err(|source| {
                SetError::InventoryTopology {
                    path: path.clone(),
                    source,
                }
            })?;
        let passwords = passwords(dir, &inventory)?;
        let listed = inventory
            .artifacts
            .iter()
            .any(|a| a.path == layout::PEER_GROUPS);
        let peer_groups = match listed {
            true => node_toml::read_groups(dir).map_err(SetError::PeerGroups)?,
            false => PeerGroups::new(),
        };
        Ok(OpenedSet {
            dir: dir.to_path_buf(),
            view,
            inventory,
            passwords,
            peer_groups,
        })
    }

    /// The password for `role`; the primary's when absent.
    pub fn password(&self, role: PasswordRole) -> Option<&Password> {
        self.passwords
            .get(role.as_str())
            .or_else(|| self.passwords.get(PasswordRole::Primary.as_str()))
    }

    /// Node `node`'s plan, read back from its node.toml with the set's peer groups.
    pub fn node_plan(&self, node: &str) -> Result<NodePlan, NodeTomlError> {
        node_toml::read_with(
            &self.dir.join(layout::node_toml(node)),
            &self.peer_groups,
            &self.dir.join(layout::PEER_GROUPS),
        )
    }
}

/// The passwords `inventory` names, from their variables or secrets.toml.
fn passwords(dir: &Path, inventory: &Inventory) -> Result<BTreeMap<String, Password>, SetError> {
    let mut secrets: Option<Secrets> = None;
    let mut passwords = BTreeMap::new();
    for (role, source) in &inventory.passwords {
        let password = match source {
            PasswordSource::Env { variable } => match std::env::var(variable) {
                Ok(v) => Password::new(v),
                Err(_) => {
                    return Err(SetError::PasswordUnset {
                        role: role.clone(),
                        variable: variable.clone(),
                    })
                }
            },
            PasswordSource::SecretsFile => {
                if secrets.is_none() {
                    let spath = dir.join(layout::SECRETS);
                    let text = crate::input::read_to_string(&spath, crate::input::Limit::SetFile)
                        .map_err(|source| SetError::SecretsUnreadable {
                        path: spath.clone(),
                        source,
                    })?;
                    secrets =
                        Some(
                            Secrets::parse(&text).map_err(|source| SetError::SecretsCorrupt {
                                path: spath,
                                source,
                            })?,
                        );
                }
                match secrets.as_ref().and_then(|s| s.passwords.get(role)) {
                    Some(p) => p.clone(),
                    None => {
                        return Err(SetError::SecretsMissing {
                            path: dir.join(layout::SECRETS),
                            role: role.clone(),
                        })
                    }
                }
            }
        };
        passwords.insert(role.clone(), password);
    }
    Ok(passwords)
}
