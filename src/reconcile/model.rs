//! The values the phases hand each other: passwords, what DIR holds, decided items, issued
//! material and assembled files. No logic beyond small accessors.

use crate::keystore::StoreType;
use crate::output::fsio::Access;
use crate::output::inventory::{ArtifactEntry, ArtifactKind, PasswordSource};
use crate::password::Password;
use crate::pki::{Ca, CertInfo, CertSpec, Key};
use crate::topology::{KeyType, KeystoreFormat};

use super::types::{ActionKind, CaStage};

/// A password and where it came from.
pub(super) struct Resolved {
    pub password: Password,
    pub source: PasswordSource,
    pub generated: bool,
}

/// The passwords of the set's three roles.
pub(super) struct Passwords {
    pub primary: Resolved,
    pub tls: Option<Resolved>,
    pub truststore: Resolved,
    /// Old values to try when a keystore does not open with the current one.
    pub fallbacks: Vec<Password>,
}

impl Passwords {
    /// The TLS role's password (the primary's when the set has no per-node TLS keystores).
    pub(super) fn tls_or_primary(&self) -> &Resolved {
        self.tls.as_ref().unwrap_or(&self.primary)
    }

    /// Every role with its password, `tls` only when the set has per-node TLS keystores.
    pub(super) fn roles(&self) -> [(&'static str, Option<&Resolved>); 3] {
        [
            ("primary", Some(&self.primary)),
            ("tls", self.tls.as_ref()),
            ("truststore", Some(&self.truststore)),
        ]
    }
}

/// A key and certificate chain found in DIR.
pub(super) struct Existing {
    pub key: Key,
    pub chain: Vec<Vec<u8>>,
    pub info: CertInfo,
    /// Where it was found, and the raw bytes when they opened with the current password as the
    /// configured store type under the expected alias (so the file can stay untouched).
    pub path: String,
    pub reusable: Option<Vec<u8>>,
}

/// What reconcile does with one key-bearing item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Decision {
    Keep,
    Renew,
    Reissue,
    Create,
    /// Only `rotate` can bring it in line (a changed key type or CA): `plan` lists it and
    /// leaves it as it is; `generate` refuses, naming every such artifact.
    NeedsRotate,
}

impl Decision {
    /// The action users see for the item's own files.
    pub(super) fn action(&self) -> ActionKind {
        match self {
            Decision::Keep => ActionKind::Keep,
            Decision::Renew => ActionKind::Renew,
            Decision::Reissue => ActionKind::Reissue,
            Decision::Create => ActionKind::Create,
            Decision::NeedsRotate => ActionKind::NeedsRotate,
        }
    }

    /// True when the item's certificate stays as it is.
    pub(super) fn keeps_cert(&self) -> bool {
        matches!(self, Decision::Keep | Decision::NeedsRotate)
    }
}

/// Who owns a key-bearing artifact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Owner {
    /// The primary key, shared by every node.
    Primary,
    /// A node's own TLS key.
    Node(String),
    /// A load balancer's key, by host.
    Lb(String),
}

impl Owner {
    /// The name reports use: `primary`, the node's name or the load balancer's host.
    pub(super) fn label(&self) -> &str {
        match self {
            Owner::Primary => "primary",
            Owner::Node(n) | Owner::Lb(n) => n,
        }
    }
}

/// One key-bearing artifact the topology asks for, before looking at DIR.
#[derive(Debug, Clone)]
pub(super) struct ArtifactSpec {
    pub owner: Owner,
    pub cert: CertSpec,
    pub key_type: KeyType,
}

/// A key-bearing item: the CA, the primary, a node's TLS key, a load balancer's key.
pub(super) struct Item {
    pub label: String,
    pub node: Option<String>,
    pub lb: Option<String>,
    pub spec: CertSpec,
    pub key_type: KeyType,
    pub decision: Decision,
    pub reason: String,
    pub existing: Option<Existing>,
}

/// A certificate chain (leaf first) and its leaf's details.
pub(super) struct Chain {
    pub ders: Vec<Vec<u8>>,
    pub info: CertInfo,
}

/// The item after issuing. In a plan nothing is issued: an item that gets a new key has no
/// key here, and one that gets a new certificate has no chain (its files are new content).
pub(super) struct Issued {
    pub key: Option<Key>,
    pub cert: Option<Chain>,
    /// The keystore bytes it was read from, when they can stay as they are.
    pub kept_bytes: Option<(String, Vec<u8>)>,
}

/// One output file.
pub(super) struct FileOut {
    pub path: String,
    pub kind: ArtifactKind,
    pub node: Option<String>,
    pub lb: Option<String>,
    pub access: Access,
    /// The bytes to write; None for a file that stays, in a plan, or once staged.
    pub bytes: Option<Vec<u8>>,
    pub action: ActionKind,
    pub reason: String,
    pub store_type: Option<StoreType>,
    pub password: Option<&'static str>,
    pub entries: Vec<ArtifactEntry>,
}

/// The CAs of a set: the issuing one, and during a rollover the next or the previous one.
pub(super) struct Cas {
    /// The issuing CA; None in a plan for a set that has none yet.
    pub current: Option<Ca>,
    /// True when this run creates the CA.
    pub created: bool,
    pub generation: u32,
    pub stage: CaStage,
    pub next: Option<Ca>,
    /// A plan of `rotate --ca begin`: the next CA would be created here; it is not (deciding
    /// needs no key), so `next` is None and what trusts it is content the plan has not computed.
    pub next_planned: bool,
    pub previous: Option<Vec<u8>>,
}

/// The container (JKS or PKCS#12) a topology's format writes.
pub(super) fn store_type_of(format: KeystoreFormat) -> StoreType {
    format.container()
}
