//! Exports of a generated set for other delivery channels. [`kubernetes`] renders Secret
//! manifests for WSO2's Helm charts (pure); this module reads the set, picks the nodes, checks
//! each store opens with its password and writes the files (0600, atomically).

pub(crate) mod kubernetes;

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::keystore::{Keystore, KeystoreError};
use crate::output::fsio::{self, Access};
use crate::output::layout;
use crate::password::PasswordRole;
use crate::set::{NodeView, OpenedSet, SetError};
use crate::topology::Product;
use kubernetes::{Chart, NodeInput, Slot, Store};

/// Which nodes to export.
#[derive(Debug, Clone)]
pub(crate) enum Selection {
    Node(String),
    Profile(String),
}

/// Why an export cannot be made (exit 2). Never holds a password or key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// The set does not open.
    #[error(transparent)]
    Set(#[from] SetError),
    /// DIR holds no inventory.json.
    #[error("{}: not found", path.display())]
    NoInventory {
        /// DIR/inventory.json.
        path: PathBuf,
    },
    /// A keystore of the set cannot be read.
    #[error("{}: cannot read", path.display())]
    Unreadable {
        /// The keystore.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The set records no password for a role.
    #[error("{}: records no `{role}` password", path.display())]
    NoPassword {
        /// DIR/inventory.json.
        path: PathBuf,
        /// The role.
        role: PasswordRole,
    },
    /// A keystore of the set that does not open with its password.
    #[error("{}: does not open with its {role} password: {source}", path.display())]
    WontOpen {
        /// The keystore.
        path: PathBuf,
        /// The role.
        role: PasswordRole,
        /// Why (quoted).
        source: KeystoreError,
    },
    /// A set for a product WSO2's charts do not deploy.
    #[error("this set is {}: WSO2's Helm charts (helm-apim distributed/, 4.2.x and later) deploy API Manager 4.x only", product.as_str())]
    UnsupportedProduct {
        /// The set's product.
        product: Product,
    },
    /// No node of that name (the set's nodes follow).
    #[error("no node named `{0}` in this set")]
    UnknownNode(String, Vec<String>),
    /// No node of that profile (the set's profiles follow).
    #[error("no node of profile `{0}` in this set")]
    UnknownProfile(String, Vec<String>),
    /// A profile no chart deploys.
    #[error("node {node}: WSO2's Helm charts deploy no `{profile}` profile")]
    NoChart {
        /// The node.
        node: String,
        /// Its profile.
        profile: String,
    },
    /// A manifest cannot be written for the node.
    #[error("node {node}: {source}")]
    Render {
        /// The node.
        node: String,
        /// Why.
        #[source]
        source: kubernetes::RenderError,
    },
    /// A file could not be written.
    #[error(transparent)]
    Fs(#[from] fsio::FsError),
}

impl ExportError {
    /// What the user can do about it.
    pub fn hint(&self) -> Option<String> {
        match self {
            ExportError::Set(e) => e.hint(),
            ExportError::NoInventory { .. } => {
                Some("point export at a directory made by `apim-pki generate`".into())
            }
            ExportError::Unreadable { .. } => {
                Some("run `apim-pki generate` (or `verify`) on the set first".into())
            }
            ExportError::WontOpen { .. } => Some("run `apim-pki verify` on the set".into()),
            ExportError::UnsupportedProduct { .. } => Some(
                "supported: apim-4.x sets (and later 4.x lines); deliver 2.6 and 3.2 sets with `apim-pki apply`".into(),
            ),
            ExportError::UnknownNode(_, names) => Some(format!("the nodes are: {}", names.join(", "))),
            ExportError::UnknownProfile(_, names) => {
                Some(format!("the profiles are: {}", names.join(", ")))
            }
            ExportError::NoChart { .. } => Some(
                "the charts are control-plane, gateway, traffic-manager and key-manager".into(),
            ),
            _ => None,
        }
    }
}

/// One node's exported folder.
#[derive(Debug, Clone, Serialize)]
pub struct ExportedNode {
    /// The node.
    pub node: String,
    /// The Helm chart that deploys it.
    pub chart: Chart,
    /// Its folder.
    pub dir: PathBuf,
    /// The files written, in the folder.
    pub files: Vec<String>,
    /// The Secrets' names.
    pub secrets: Vec<String>,
}

/// What `export kubernetes` says for people: each folder with its files, then how to use them.
pub(crate) fn render_text(
    exported: &[ExportedNode],
    w: &mut dyn std::io::Write,
) -> std::io::Result<()> {
    for e in exported {
        writeln!(
            w,
            "{}  ({} chart; Secrets {})",
            e.dir.display(),
            e.chart.as_str(),
            e.secrets.join(", ")
        )?;
        for f in &e.files {
            writeln!(w, "  {f}")?;
        }
    }
    writeln!(
        w,
        "\nFiles are 0600 and hold keys and passwords: keep them out of version control."
    )?;
    writeln!(
        w,
        "Apply with `kubectl apply -k <folder>`; install the chart with `-f <folder>/values.yaml`"
    )?;
    writeln!(
        w,
        "(charts 4.2.x-4.5.x: also `-f <folder>/values-passwords.yaml`). See docs/kubernetes.md."
    )
}

/// The folder `export kubernetes` writes into when `--out` is not given: `DIR/kubernetes`.
pub(crate) fn default_out(dir: &Path) -> PathBuf {
    dir.join("kubernetes")
}

/// Refuses products WSO2's Helm charts do not deploy.
pub(crate) fn check_product(product: Product) -> Result<(), ExportError> {
    match product {
        Product::Apim26 | Product::Apim32 => Err(ExportError::UnsupportedProduct { product }),
        // 4.0-4.4 and the later 4.x lines (4.5+: universal-gateway maps to the gateway chart).
        _ => Ok(()),
    }
}

/// Writes each selected node's Secrets, kustomization and values into `out/<node>/`. Reads DIR
/// without its lock, like verify: every file there is replaced atomically.
pub(crate) fn export_kubernetes(
    dir: &Path,
    selection: &Selection,
    out: &Path,
) -> Result<Vec<ExportedNode>, ExportError> {
    let inventory = dir.join(layout::INVENTORY);
    if !inventory.is_file() {
        return Err(ExportError::NoInventory { path: inventory });
    }
    let set = OpenedSet::open(dir)?;
    check_product(set.inventory.product)?;
    let nodes = select(&set, selection)?;
    let mut inputs = Vec::with_capacity(nodes.len());
    for node in &nodes {
        inputs.push(node_input(&set, node)?);
    }
    let mut exported = Vec::with_capacity(inputs.len());
    for input in &inputs {
        exported.push(write_node(input, out)?);
    }
    Ok(exported)
}

fn select<'a>(set: &'a OpenedSet, selection: &Selection) -> Result<Vec<&'a NodeView>, ExportError> {
    let nodes = &set.view.nodes;
    let picked: Vec<&NodeView> = match selection {
        Selection::Node(name) => nodes.iter().filter(|n| &n.name == name).collect(),
        Selection::Profile(p) => nodes.iter().filter(|n| n.profile.as_str() == p).collect(),
    };
    if !picked.is_empty() {
        return Ok(picked);
    }
    Err(match selection {
        Selection::Node(name) => {
            ExportError::UnknownNode(name.clone(), nodes.iter().map(|n| n.name.clone()).collect())
        }
        Selection::Profile(p) => {
            let mut profiles: Vec<String> = nodes.iter().map(|n| n.profile.to_string()).collect();
            profiles.sort();
            profiles.dedup();
            ExportError::UnknownProfile(p.clone(), profiles)
        }
    })
}

/// Reads a node's stores and checks each opens with its password.
fn node_input(set: &OpenedSet, node: &NodeView) -> Result<NodeInput, ExportError> {
    let chart = Chart::for_profile(node.profile).ok_or_else(|| ExportError::NoChart {
        node: node.name.clone(),
        profile: node.profile.to_string(),
    })?;
    let format = set.view.keystores.format;
    let mut wanted = vec![(
        Slot::Primary,
        layout::primary_file(format),
        Some(set.view.keystores.primary_alias.clone()),
        crate::password::PasswordRole::Primary,
    )];
    if set.view.per_node_tls() {
        let file = layout::tls_file(&node.name, format);
        wanted.push((
            Slot::Tls,
            file,
            Some(node.name.clone()),
            crate::password::PasswordRole::Tls,
        ));
    }
    wanted.push((
        Slot::Truststore,
        layout::truststore_file(format),
        None,
        crate::password::PasswordRole::Truststore,
    ));
    let mut stores = Vec::with_capacity(wanted.len());
    for (slot, file_name, alias, role) in wanted {
        let rel = layout::node_security(&node.name, &file_name);
        let path = set.dir.join(&rel);
        let bytes = crate::input::read(&path, crate::input::Limit::Keystore).map_err(|source| {
            ExportError::Unreadable {
                path: path.clone(),
                source,
            }
        })?;
        let password = set
            .password(role)
            .cloned()
            .ok_or_else(|| ExportError::NoPassword {
                path: set.dir.join(layout::INVENTORY),
                role,
            })?;
        Keystore::decode(&bytes, &password).map_err(|source| ExportError::WontOpen {
            path: path.clone(),
            role,
            source,
        })?;
        stores.push(Store {
            slot,
            file_name,
            alias,
            bytes,
            password,
        });
    }
    Ok(NodeInput {
        node: node.name.clone(),
        chart,
        stores,
    })
}

/// Creates `dir` and its missing parents 0700: they will hold keys and passwords.
fn private_dir(dir: &Path) -> Result<(), ExportError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| {
            ExportError::Fs(fsio::FsError {
                path: dir.to_path_buf(),
                action: "cannot create the directory",
                source,
            })
        })
}

fn write_node(input: &NodeInput, out: &Path) -> Result<ExportedNode, ExportError> {
    let files = kubernetes::render_node(input).map_err(|source| ExportError::Render {
        node: input.node.clone(),
        source,
    })?;
    let dir = out.join(&input.node);
    private_dir(&dir)?;
    for f in &files {
        fsio::write_atomic(&dir.join(f.name), f.text.as_bytes(), Access::Secret)?;
    }
    Ok(ExportedNode {
        node: input.node.clone(),
        chart: input.chart,
        dir,
        files: files.iter().map(|f| f.name.to_string()).collect(),
        secrets: vec![
            kubernetes::keystores_secret_name(&input.node),
            kubernetes::passwords_secret_name(&input.node),
        ],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_4x_sets_are_exported() {
        assert!(check_product(Product::Apim4x).is_ok());
        assert!(check_product(Product::Apim45).is_ok());
        for p in [Product::Apim26, Product::Apim32] {
            let e = check_product(p).expect_err(p.as_str());
            assert!(e.to_string().contains(p.as_str()), "{e}");
            assert!(e.hint().is_some_and(|h| h.contains("apim-4.x")));
        }
    }
}
