//! The node's three keystores as apply writes them into its files (file name, Java type,
//! password, alias), taken from the node's plan and the set's passwords, and the check that
//! each keystore of the set opens with the password apply would write.

use super::ApplyError;
use crate::error::FileError;
use crate::keystore::{Keystore, KeystoreError};
use crate::output::layout;
use crate::password::{Password, PasswordRole};
use crate::plan::{NodeKeystores, StoreRef};
use crate::set::{NodeView, OpenedSet};

/// A keystore as the node's files name it.
#[derive(Debug, Clone)]
pub(super) struct Store {
    /// The file name (in `repository/resources/security/`).
    pub(super) file: String,
    pub(super) java_type: &'static str,
    pub(super) password: Password,
    pub(super) alias: Option<String>,
    /// Which password it takes.
    pub(super) role: PasswordRole,
}

/// The node's three keystores.
pub(super) struct Stores {
    pub(super) primary: Store,
    pub(super) tls: Store,
    pub(super) trust: Store,
}

impl Stores {
    /// The keystores of `plan`, with the set's passwords.
    pub(super) fn new(set: &OpenedSet, plan: &NodeKeystores) -> Result<Stores, ApplyError> {
        let store = |r: &StoreRef| -> Result<Store, ApplyError> {
            let password =
                set.password(r.password)
                    .cloned()
                    .ok_or_else(|| ApplyError::NoPassword {
                        path: set.dir.join(layout::INVENTORY),
                        role: r.password.to_string(),
                    })?;
            Ok(Store {
                file: r.file_name().to_string(),
                java_type: r.format.java_type(),
                password,
                alias: r.alias.clone(),
                role: r.password,
            })
        };
        Ok(Stores {
            primary: store(&plan.primary)?,
            tls: store(&plan.tls)?,
            trust: store(&plan.truststore)?,
        })
    }
}

/// The keystores of `node` as the set's recorded topology says (for products whose apply does
/// not read node.toml).
fn from_view(set: &OpenedSet, node: &NodeView) -> Result<Stores, ApplyError> {
    let k = &set.view.keystores;
    let plan = NodeKeystores::new(k.format, k.tls, &k.primary_alias, &node.name, None);
    Stores::new(set, &plan)
}

/// Checks, before anything is written, that every keystore of `node` in the set opens with the
/// password a node's configuration will carry (shared by every product's apply). A password
/// variable that differs from the one the set was made with would otherwise leave a node that
/// cannot start; Tomcat and WSO2 use the store password as the key password, so each key entry
/// must open with it too.
pub(crate) fn check_set_passwords(set: &OpenedSet, node: &NodeView) -> Result<(), ApplyError> {
    check_passwords(set, &node.name, &from_view(set, node)?)
}

pub(super) fn check_passwords(
    set: &OpenedSet,
    node: &str,
    stores: &Stores,
) -> Result<(), ApplyError> {
    // In shared mode the TLS keystore is the primary: check it once.
    let shared = stores.tls.role == PasswordRole::Primary;
    let checked = [&stores.primary, &stores.tls, &stores.trust];
    for (i, store) in checked.into_iter().enumerate() {
        if i == 1 && shared {
            continue;
        }
        check_one(set, node, store)?;
    }
    Ok(())
}

fn check_one(set: &OpenedSet, node: &str, store: &Store) -> Result<(), ApplyError> {
    let role = store.role.as_str();
    let path = set.dir.join(layout::node_security(node, &store.file));
    let bytes = crate::input::read(&path, crate::input::Limit::Keystore)
        .map_err(|e| ApplyError::SetFile(FileError::read(&path, e)))?;
    let source = set
        .inventory
        .passwords
        .get(role)
        .or_else(|| set.inventory.passwords.get(PasswordRole::Primary.as_str()))
        .map_or_else(|| format!("the {role} password"), ToString::to_string);
    match Keystore::decode(&bytes, &store.password) {
        Ok(_) => Ok(()),
        Err(KeystoreError::WrongPassword) => {
            let store_opens =
                crate::keystore::jks::JksKeyStore::from_bytes(&bytes, store.password.expose())
                    .is_ok();
            Err(ApplyError::SetPassword {
                path,
                role: role.to_string(),
                source_name: source,
                key_only: store_opens,
            })
        }
        Err(source) => Err(ApplyError::SetKeystore { path, source }),
    }
}
