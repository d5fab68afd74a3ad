//! A generated set read back from DIR: inventory.json (the recorded topology, the files, where
//! passwords come from) and the passwords themselves. Used by verify and apply; writes nothing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::output::inventory::{Inventory, PasswordSource};
use crate::output::layout;
use crate::output::secrets::Secrets;
use crate::password::{Password, PasswordRole};
use crate::topology::{KeystoreFormat, Profile, TlsMode};

/// Why a set could not be opened (exit 2). Problems inside DIR that verify checks are findings
/// instead.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SetError {
    #[error("{}: {message}", path.display())]
    Input {
        path: PathBuf,
        message: String,
        hint: Option<String>,
    },
    #[error("the {role} password variable {variable} is not set (inventory.json records the {role} password comes from it)")]
    PasswordUnset { role: String, variable: String },
}

impl SetError {
    /// What the user can do about it.
    pub fn hint(&self) -> Option<String> {
        match self {
            SetError::Input { hint, .. } => hint.clone(),
            SetError::PasswordUnset { variable, .. } => Some(format!(
                "export {variable} with the password the set was made with"
            )),
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

/// A set opened for verification: its view, inventory and passwords.
pub struct OpenedSet {
    pub dir: PathBuf,
    pub view: SetView,
    pub inventory: Inventory,
    passwords: BTreeMap<String, Password>,
}

impl OpenedSet {
    /// Reads inventory.json and the passwords it names; exit-2 errors only.
    pub fn open(dir: &Path) -> Result<OpenedSet, SetError> {
        let path = dir.join(layout::INVENTORY);
        let bytes = crate::input::read(&path, crate::input::Limit::SetFile).map_err(|e| {
            SetError::Input {
                path: path.clone(),
                message: format!("cannot read: {e}"),
                hint: Some("point verify at a directory made by `apim-pki generate`".into()),
            }
        })?;
        let inventory = Inventory::from_json(&bytes).map_err(|e| SetError::Input {
            path: path.clone(),
            message: format!("inventory.json is corrupt: {e}"),
            hint: None,
        })?;
        let view: SetView =
            serde_json::from_value(inventory.topology.clone()).map_err(|e| SetError::Input {
                path: path.clone(),
                message: format!("inventory.json has no usable topology: {e}"),
                hint: None,
            })?;
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
                        let text = crate::input::read_to_string(&spath, crate::input::Limit::SetFile).map_err(|e| SetError::Input {
                            path: spath.clone(),
                            message: format!("cannot read: {e}"),
                            hint: Some("inventory.json records generated passwords here; restore it from a backup".into()),
                        })?;
                        secrets = Some(Secrets::parse(&text).map_err(|e| SetError::Input {
                            path: spath,
                            message: e,
                            hint: None,
                        })?);
                    }
                    match secrets.as_ref().and_then(|s| s.passwords.get(role)) {
                        Some(p) => p.clone(),
                        None => {
                            return Err(SetError::Input {
                                path: dir.join(layout::SECRETS),
                                message: format!(
                                    "has no `{role}` password, which inventory.json says it holds"
                                ),
                                hint: None,
                            })
                        }
                    }
                }
            };
            passwords.insert(role.clone(), password);
        }
        Ok(OpenedSet {
            dir: dir.to_path_buf(),
            view,
            inventory,
            passwords,
        })
    }

    /// The password for `role`; the primary's when absent.
    pub fn password(&self, role: PasswordRole) -> Option<&Password> {
        self.passwords
            .get(role.as_str())
            .or_else(|| self.passwords.get(PasswordRole::Primary.as_str()))
    }
}
