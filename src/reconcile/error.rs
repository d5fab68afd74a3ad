//! Why reconcile stops: one variant per kind of failure, carrying the file, node, role or stage
//! it is about; the message and the hint are derived from the variant. A broken internal
//! invariant is a [`crate::error::Bug`] (exit 70), never the user's input (exit 2).

use std::io;
use std::path::PathBuf;

use crate::keystore::pem::PemError;
use crate::keystore::KeystoreError;
use crate::output::fsio::{FsError, LockError};
use crate::output::inventory::{InventoryError, PasswordSource};
use crate::output::layout;
use crate::output::secrets::SecretsError;
use crate::password::{PasswordProblem, PasswordRole};
use crate::pki::info::CertParseError;
use crate::pki::PkiError;
use crate::vault::VaultError;

use super::types::{CaStage, CaStep};

/// The hint of a keystore or key file that holds something unusable.
const RESTORE_OR_ROTATE: &str =
    "restore the file from a backup, or run `apim-pki rotate` for this node";
/// The hint of a rollover CA file that cannot be used.
const RESTORE_CA_DIR: &str =
    "restore the ca/ directory from a backup (history/ holds earlier versions)";

/// Which file of `[pki.ca]` (a CA you bring).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaFile {
    /// `[pki.ca] cert`.
    Cert,
    /// `[pki.ca] key`.
    Key,
}

impl std::fmt::Display for CaFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CaFile::Cert => "CA certificate",
            CaFile::Key => "CA key",
        })
    }
}

/// Why reconcile stopped. Each message names the file, node, variable or stage and what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GenerateError {
    /// A file could not be written.
    #[error(transparent)]
    Fs(#[from] FsError),
    /// DIR is locked by another command, or was made by one meanwhile.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// A file of the set cannot be read.
    #[error("{}: cannot read: {source}", path.display())]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A file of the set is larger than apim-pki reads (it would be taken as missing).
    #[error("{}: cannot read: {source}", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The size limit it breaks.
        source: io::Error,
    },
    /// inventory.json does not parse.
    #[error("{}: inventory.json is corrupt: {source}", path.display())]
    InventoryCorrupt {
        /// The file.
        path: PathBuf,
        /// Why.
        source: InventoryError,
    },
    /// inventory.json records a rollover stage apim-pki does not know.
    #[error("{}: unknown ca_stage `{stage}`", path.display())]
    UnknownCaStage {
        /// inventory.json.
        path: PathBuf,
        /// What it records.
        stage: String,
    },
    /// secrets.toml does not parse.
    #[error("{}: secrets.toml is corrupt: {source}", path.display())]
    SecretsCorrupt {
        /// The file.
        path: PathBuf,
        /// Why.
        source: SecretsError,
    },
    /// The OS random number generator failed while making a password.
    #[error("{}: the OS random number generator failed: {error}", layout::SECRETS)]
    Rng {
        /// What the OS said (getrandom's error is no `std::error::Error` without its `std`
        /// feature, so it is quoted, not chained).
        error: getrandom::Error,
    },
    /// A password variable the inventory names is unset.
    #[error("the {role} password variable {variable} is not set, but inventory.json records that the {role} password comes from it")]
    PasswordUnset {
        /// The role.
        role: PasswordRole,
        /// The variable.
        variable: String,
    },
    /// A password Java or Carbon cannot use.
    #[error("the {role} password from {from} cannot be used: {problem}")]
    PasswordRefused {
        /// The role.
        role: PasswordRole,
        /// Where it came from.
        from: PasswordSource,
        /// What is wrong with it (never the value).
        problem: PasswordProblem,
    },
    /// A keystore inventory.json records does not open with its role's password.
    #[error("{}: the keystore does not open with the {role} password from {from}", path.display())]
    WrongPassword {
        /// The keystore.
        path: PathBuf,
        /// Its password's role.
        role: PasswordRole,
        /// Where the password came from.
        from: PasswordSource,
    },
    /// A keystore inventory.json records does not open (damaged, not a keystore).
    #[error("{}: cannot open the keystore: {source}", path.display())]
    KeystoreUnreadable {
        /// The keystore.
        path: PathBuf,
        /// Why.
        source: KeystoreError,
    },
    /// A keystore without a private-key entry.
    #[error("{}: the keystore holds no private key entry", path.display())]
    NoPrivateKey {
        /// The keystore.
        path: PathBuf,
    },
    /// inventory.json records a primary keystore and no node holds one.
    #[error("{}: the primary keystore is missing on every node", path.display())]
    PrimaryMissing {
        /// Where the first node keeps it.
        path: PathBuf,
    },
    /// A key entry without its certificate.
    #[error("{}: the key entry has no certificate", path.display())]
    NoCertificate {
        /// The keystore or key file.
        path: PathBuf,
    },
    /// A certificate of the set that does not parse.
    #[error("{}: {source}", path.display())]
    BadCertificate {
        /// The file.
        path: PathBuf,
        /// Why.
        source: CertParseError,
    },
    /// A PEM file of the set that does not parse.
    #[error("{}: {source}", path.display())]
    BadPem {
        /// The file.
        path: PathBuf,
        /// Why.
        source: PemError,
    },
    /// A key file of the set that does not parse.
    #[error("{}: {source}", path.display())]
    BadKey {
        /// The file.
        path: PathBuf,
        /// Why.
        source: Box<PkiError>,
    },
    /// A private key and the certificate beside it that do not match.
    #[error("{}: the private key does not belong to its certificate", path.display())]
    KeyMismatch {
        /// The keystore or key file.
        path: PathBuf,
    },
    /// A keystore could not be encoded (a certificate or key its codec refuses).
    #[error("{}: {source}", path.display())]
    KeystoreEncode {
        /// The set's directory.
        path: PathBuf,
        /// Why.
        source: KeystoreError,
    },
    /// The secure vault cannot seal with the primary key (not RSA, a password too long, ...).
    #[error("{}: {source}", path.display())]
    Vault {
        /// The set's directory.
        path: PathBuf,
        /// Why.
        source: VaultError,
    },
    /// A file of `[pki.ca]` cannot be read.
    #[error("{}: cannot read the {file}: {source}", path.display())]
    CaFileUnreadable {
        /// The file.
        path: PathBuf,
        /// Which one.
        file: CaFile,
        /// Why.
        source: io::Error,
    },
    /// The CA of `[pki.ca]` cannot be used.
    #[error("{}: {source}", path.display())]
    ExternalCaInvalid {
        /// The certificate or key file.
        path: PathBuf,
        /// Why.
        source: Box<PkiError>,
    },
    /// The set's own CA (ca/ca.crt, ca/ca.key) does not load.
    #[error("{}: {source}", path.display())]
    CaCorrupt {
        /// ca/ca.crt.
        path: PathBuf,
        /// Why.
        source: Box<PkiError>,
    },
    /// One of ca/ca.crt and ca/ca.key is missing.
    #[error("{}: the CA is incomplete: this file is missing", path.display())]
    CaIncomplete {
        /// The missing file.
        path: PathBuf,
    },
    /// A file of the rollover in progress (ca/next/, ca/previous/) cannot be read.
    #[error("{}: the rollover has {} but this file cannot be read: {source}", path.display(), if *stage == CaStage::Finished { "finished" } else { "begun" })]
    RolloverFileUnreadable {
        /// The file.
        path: PathBuf,
        /// The stage inventory.json records.
        stage: CaStage,
        /// Why.
        source: io::Error,
    },
    /// The next CA (ca/next/) does not load.
    #[error("{}: {source}", path.display())]
    NextCaCorrupt {
        /// ca/next/ca.crt.
        path: PathBuf,
        /// Why.
        source: Box<PkiError>,
    },
    /// The previous CA's certificate (ca/previous/ca.crt) is not PEM.
    #[error("{}: not a PEM certificate", path.display())]
    PreviousCaNotPem {
        /// The file.
        path: PathBuf,
    },
    /// A CA rollover step that does not follow the stage inventory.json records.
    #[error("{}", rollover_refusal(*.step, *.stage).0)]
    RolloverOutOfOrder {
        /// The step asked for.
        step: CaStep,
        /// Where the set stands (`begin` at `stable`: the set has no CA yet).
        stage: CaStage,
    },
    /// `rotate --ca` with a CA the topology brings.
    #[error(
        "rotate --ca rolls over the CA apim-pki created; this topology brings its own ([pki.ca])"
    )]
    CaNotGenerated,
    /// `rotate --ca` with a PKI engine.
    #[error("rotate --ca: with backend = \"{backend}\" the CA lives in the engine; apim-pki does not roll it over")]
    EngineCaRollover {
        /// The backend of `[pki.ca]`.
        backend: &'static str,
        /// Its mount.
        mount: String,
    },
    /// A set an engine signed, with a topology that names none.
    #[error("this set is signed by the PKI engine at {address} (mount `{mount}`, inventory.json), but [pki.ca] names no backend")]
    EngineLeft {
        /// The engine's address inventory.json records.
        address: String,
        /// Its mount.
        mount: String,
    },
    /// A set a corporate CA signed: only csr and import-signed change it.
    #[error("this set's certificates are signed by your corporate CA; apim-pki cannot issue them")]
    CorporateSigned,
    /// `rotate --node` names no node of the topology.
    #[error("--node {name}: the topology has no such node")]
    UnknownNode {
        /// The name given.
        name: String,
        /// The topology's nodes.
        known: Vec<String>,
    },
    /// `rotate --load-balancer` names no load balancer of the topology.
    #[error("--load-balancer {host}: the topology has no such load balancer")]
    UnknownLoadBalancer {
        /// The host given.
        host: String,
        /// The topology's load balancers.
        known: Vec<String>,
    },
    /// A plan of a set whose last writing run did not complete.
    #[error("{}: a run that was writing this set was interrupted (or is still running)", journal.display())]
    Interrupted {
        /// The journal it left.
        journal: PathBuf,
    },
    /// Two artifacts (or an artifact and a CA) hold one private key.
    #[error("{} hold the same private key; only the primary key is shared between nodes", holders.join(" and "))]
    SharedKey {
        /// Who holds it (paths, the CA named as such).
        holders: Vec<String>,
        /// The `rotate` options that give the copies keys of their own (none: a CA's key).
        rotate: Vec<String>,
        /// The copies' labels (node names, load-balancer hosts, primary).
        copies: Vec<String>,
    },
    /// An artifact only `rotate` can bring in line.
    #[error("{path}: {reason}")]
    NeedsRotate {
        /// The artifact, relative to DIR.
        path: String,
        /// What changed.
        reason: String,
    },
    /// Key or certificate work failed.
    #[error("{0}")]
    Pki(#[from] PkiError),
    /// A bug in apim-pki (exit 70).
    #[error("{0}")]
    Bug(#[from] crate::error::Bug),
}

/// The message and the hint of a rollover step out of order.
fn rollover_refusal(step: CaStep, stage: CaStage) -> (&'static str, &'static str) {
    match (step, stage) {
        (CaStep::Begin, CaStage::Begun) => (
            "rotate --ca begin: a CA rollover has already begun (ca_stage = rollover-begun in inventory.json)",
            "ship every node's truststore, then run `rotate --ca finish`, then `rotate --ca retire`",
        ),
        (CaStep::Begin, CaStage::Finished) => (
            "rotate --ca begin: the last CA rollover is finished but the old CA is still trusted (ca_stage = rollover-finished in inventory.json)",
            "run `rotate --ca retire` first; then a new rollover can begin",
        ),
        (CaStep::Begin, CaStage::Stable) => (
            "rotate --ca begin: the output directory has no CA yet",
            "run `apim-pki generate TOPOLOGY --out DIR` first",
        ),
        (CaStep::Finish, _) => (
            "rotate --ca finish: no rollover has begun",
            "run `rotate --ca begin` first, and ship the truststores to every node",
        ),
        (CaStep::Retire, CaStage::Begun) => (
            "rotate --ca retire: the CA rollover has begun but is not finished (ca_stage = rollover-begun in inventory.json)",
            "run `rotate --ca finish` first, ship every node's keystores, then retire",
        ),
        (CaStep::Retire, _) => (
            "rotate --ca retire: no CA rollover is in progress (ca_stage = stable in inventory.json)",
            "a rollover starts with `rotate --ca begin`",
        ),
    }
}

impl GenerateError {
    /// What the user can do about it, when there is something to say.
    pub fn hint(&self) -> Option<String> {
        self.file_hint()
            .map(str::to_string)
            .or_else(|| self.password_hint())
            .or_else(|| self.refusal_hint())
    }

    /// The hint of a file of the set (or of `[pki.ca]`) that cannot be used.
    fn file_hint(&self) -> Option<&'static str> {
        use GenerateError as E;
        Some(match self {
            E::TooLarge { .. } => "apim-pki never writes a file that large: move it out of the set or restore it from a backup",
            E::InventoryCorrupt { .. } => "restore it from a backup, or generate into a new directory",
            E::SecretsCorrupt { .. } => "restore it from a backup; the keystores cannot be opened without it",
            E::KeystoreUnreadable { .. } => "restore the file from a backup, or run `apim-pki rotate` for this node to replace its key",
            E::NoPrivateKey { .. } => RESTORE_OR_ROTATE,
            E::PrimaryMissing { .. } => "restore wso2carbon keystore from a node or a backup: a new primary key would make data WSO2 encrypted with the old one unreadable",
            E::KeyMismatch { .. } => "restore the file from a backup, or rotate its key",
            E::CaFileUnreadable { .. } => "check the path in [pki.ca]; relative paths start at the topology file's directory",
            E::ExternalCaInvalid { .. } => "[pki.ca] needs the CA certificate (PEM, intermediates after it) and its unencrypted key",
            E::CaCorrupt { .. } => "restore ca/ca.crt and ca/ca.key from a backup",
            E::CaIncomplete { .. } => "restore ca/ca.crt and ca/ca.key from a backup; a new CA needs `apim-pki rotate --ca begin`",
            E::RolloverFileUnreadable { .. } | E::NextCaCorrupt { .. } | E::PreviousCaNotPem { .. } => RESTORE_CA_DIR,
            _ => return None,
        })
    }

    /// The hint of a password that cannot be used.
    fn password_hint(&self) -> Option<String> {
        match self {
            GenerateError::PasswordUnset { variable, .. } => Some(format!(
                "export {variable} with the password the keystores were made with"
            )),
            GenerateError::PasswordRefused { .. } => Some(
                "choose another password: at least 6 printable ASCII characters, without `${`"
                    .into(),
            ),
            GenerateError::WrongPassword { role, from, .. } => Some(match from {
                PasswordSource::Env { variable } => format!(
                    "set {variable} to the {role} password the set was made with, or restore the keystore from a backup"
                ),
                PasswordSource::SecretsFile => format!(
                    "secrets.toml holds another {role} password than this keystore's: restore the keystore or secrets.toml from a backup"
                ),
            }),
            _ => None,
        }
    }

    /// The hint of a refused operation, a lock or an engine.
    fn refusal_hint(&self) -> Option<String> {
        use GenerateError as E;
        Some(match self {
            E::RolloverOutOfOrder { step, stage } => rollover_refusal(*step, *stage).1.into(),
            E::CaNotGenerated => "point [pki.ca] at the new CA and run `apim-pki rotate` to re-key every node under it".into(),
            E::EngineCaRollover { mount, .. } => format!(
                "roll over in the engine under the same root: make a new intermediate issuer in mount `{mount}`, set [pki.ca] issuer to it, then run `apim-pki rotate` (docs/openbao.md, \"CA rollover\")"
            ),
            E::EngineLeft { .. } => "put the backend keys back into [pki.ca], or generate a set with a local CA into a new directory (docs/openbao.md)".into(),
            E::CorporateSigned => "renew or change them with `apim-pki csr TOPOLOGY --out DIR`, then `apim-pki import-signed DIR --certs SIGNED.pem`".into(),
            E::UnknownNode { known, .. } => format!("nodes: {}", known.join(", ")),
            E::UnknownLoadBalancer { known, .. } if known.is_empty() => "load balancers: none".into(),
            E::UnknownLoadBalancer { known, .. } => format!("load balancers: {}", known.join(", ")),
            E::Interrupted { .. } => "run `apim-pki generate` (or the interrupted command) again: it completes the interrupted run first".into(),
            E::SharedKey { rotate, .. } if rotate.is_empty() => {
                "restore the primary keystore or the CA from a backup: it holds another artifact's key".into()
            }
            E::SharedKey { rotate, copies, .. } => format!(
                "run `apim-pki rotate TOPOLOGY --out DIR {}` to give {} a new key of its own; generate never replaces a key",
                rotate.join(" "),
                copies.join(" and ")
            ),
            E::NeedsRotate { .. } => "run `apim-pki rotate` to replace keys on purpose; generate never replaces a key".into(),
            E::Lock(LockError::Busy { .. }) => "wait for the other command to finish, then run this one again".into(),
            E::Lock(LockError::Raced { .. }) => "run the command again: it will take the directory as the other command left it".into(),
            E::Pki(PkiError::Engine(e)) => e.hint(),
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{exit_code, render, Bug, EXIT_BUG, EXIT_INPUT};

    fn shown(e: &GenerateError) -> String {
        render(e, e.hint().as_deref())
    }

    #[test]
    fn a_wrong_password_names_its_role_and_source_and_says_what_to_set() {
        let env = GenerateError::WrongPassword {
            path: "/s/nodes/a/tls.jks".into(),
            role: PasswordRole::Tls,
            from: PasswordSource::Env {
                variable: "MY_TLS_PW".into(),
            },
        };
        assert_eq!(
            shown(&env),
            "error: /s/nodes/a/tls.jks: the keystore does not open with the tls password from environment variable MY_TLS_PW\n\
             hint: set MY_TLS_PW to the tls password the set was made with, or restore the keystore from a backup\n"
        );
        let file = GenerateError::WrongPassword {
            path: "/s/p.jks".into(),
            role: PasswordRole::Primary,
            from: PasswordSource::SecretsFile,
        };
        assert!(file
            .hint()
            .is_some_and(|h| h
                .starts_with("secrets.toml holds another primary password than this keystore's")));
        assert_eq!(exit_code(&env), EXIT_INPUT);
    }

    #[test]
    fn each_rollover_step_out_of_order_has_its_own_message_and_hint() {
        let cases = [
            (
                CaStep::Begin,
                CaStage::Begun,
                "already begun",
                "rotate --ca finish",
            ),
            (
                CaStep::Begin,
                CaStage::Finished,
                "still trusted",
                "rotate --ca retire",
            ),
            (
                CaStep::Begin,
                CaStage::Stable,
                "no CA yet",
                "apim-pki generate",
            ),
            (
                CaStep::Finish,
                CaStage::Stable,
                "no rollover has begun",
                "rotate --ca begin",
            ),
            (
                CaStep::Retire,
                CaStage::Begun,
                "not finished",
                "rotate --ca finish",
            ),
            (
                CaStep::Retire,
                CaStage::Stable,
                "no CA rollover is in progress",
                "begin",
            ),
        ];
        for (step, stage, message, hint) in cases {
            let e = GenerateError::RolloverOutOfOrder { step, stage };
            let text = e.to_string();
            assert!(text.contains(message), "{step:?} at {stage:?}: {text}");
            assert!(
                e.hint().is_some_and(|h| h.contains(hint)),
                "{step:?} at {stage:?}"
            );
            assert_eq!(exit_code(&e), EXIT_INPUT);
        }
    }

    #[test]
    fn file_errors_keep_their_cause_and_hint() {
        let io = io::Error::new(io::ErrorKind::PermissionDenied, "Permission denied");
        let e = GenerateError::CaFileUnreadable {
            path: "/t/ca.pem".into(),
            file: CaFile::Key,
            source: io,
        };
        assert_eq!(
            shown(&e),
            "error: /t/ca.pem: cannot read the CA key: Permission denied\n\
             hint: check the path in [pki.ca]; relative paths start at the topology file's directory\n"
        );
        assert!(
            std::error::Error::source(&e).is_some(),
            "the io error is chained"
        );
        let e = GenerateError::RolloverFileUnreadable {
            path: "/s/ca/previous/ca.crt".into(),
            stage: CaStage::Finished,
            source: io::Error::new(io::ErrorKind::NotFound, "gone"),
        };
        assert!(
            e.to_string().contains("the rollover has finished but"),
            "{e}"
        );
        assert_eq!(e.hint().as_deref(), Some(RESTORE_CA_DIR));
        let missing = GenerateError::CaIncomplete { path: "x".into() };
        assert!(missing
            .hint()
            .is_some_and(|h| h.contains("rotate --ca begin")));
    }

    #[test]
    fn refusals_list_what_the_topology_has() {
        let node = GenerateError::UnknownNode {
            name: "nope".into(),
            known: vec!["a".into(), "km".into()],
        };
        assert_eq!(
            node.to_string(),
            "--node nope: the topology has no such node"
        );
        assert_eq!(node.hint().as_deref(), Some("nodes: a, km"));
        let lb = GenerateError::UnknownLoadBalancer {
            host: "lb.x".into(),
            known: vec![],
        };
        assert_eq!(lb.hint().as_deref(), Some("load balancers: none"));
        let shared = GenerateError::SharedKey {
            holders: vec!["a.jks".into(), "b.jks".into()],
            rotate: vec!["--node b".into()],
            copies: vec!["b".into()],
        };
        assert!(shared
            .to_string()
            .starts_with("a.jks and b.jks hold the same private key"));
        assert!(shared
            .hint()
            .is_some_and(|h| h.contains("--node b` to give b a new key")));
        let ca_copy = GenerateError::SharedKey {
            holders: vec!["ca/ca.crt (the CA)".into(), "p.jks".into()],
            rotate: vec![],
            copies: vec!["primary".into()],
        };
        assert!(ca_copy
            .hint()
            .is_some_and(|h| h.starts_with("restore the primary keystore")));
    }

    #[test]
    fn bugs_exit_70_and_every_other_variant_exits_2() {
        let bug = GenerateError::from(Bug::new("no CA"));
        assert_eq!(exit_code(&bug), EXIT_BUG);
        assert_eq!(bug.hint(), None);
        for input in [
            GenerateError::CorporateSigned,
            GenerateError::CaNotGenerated,
            GenerateError::Interrupted {
                journal: "/s/.journal".into(),
            },
            GenerateError::PrimaryMissing { path: "p".into() },
        ] {
            assert_eq!(exit_code(&input), EXIT_INPUT, "{input}");
            assert!(input.hint().is_some(), "{input} has a hint");
        }
    }
}
