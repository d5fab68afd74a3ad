//! What each command of the `apim-pki` binary does, as library calls: parsed arguments in, a
//! report value out (data, with its text rendering and whether every check passed), or an
//! [`Error`] that says what went wrong, what to do, and which exit code it maps to.
//!
//! Never prints to stdout or exits: the binary writes the reports and the errors. The one
//! interaction is the keystore password prompt of [`PasswordInput`], on the terminal only.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::config::{apim26, apply_toml, ApplyError};
use crate::corporate::{self, CorporateError, CsrWritten};
use crate::error::{self, Bug};
use crate::export::{self, ExportError, ExportedNode, Selection};
use crate::input::{self, Limit};
use crate::inspect::{self, InspectError, Listing};
use crate::output::layout;
use crate::prompt::{PasswordInput, PasswordInputError};
use crate::reconcile::{self, ActionKind, GenerateError, Mode, Outcome, Rotation};
use crate::set::{OpenedSet, SetError};
use crate::topology::{Product, Topology, TopologyError};
use crate::verify::findings::Report;
use crate::verify::live::{self, ConnectError, ConnectOverride};
use crate::verify::{self, CheckHostError, CheckHostReport};

/// Why a command stopped: the user's input (exit 2) or a bug in apim-pki (exit 70). Never holds
/// a password.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The topology breaks a rule.
    #[error(transparent)]
    Topology(#[from] TopologyError),
    /// generate, plan or rotate stopped.
    #[error(transparent)]
    Generate(#[from] GenerateError),
    /// The set does not open.
    #[error(transparent)]
    Set(#[from] SetError),
    /// apply stopped.
    #[error(transparent)]
    Apply(#[from] ApplyError),
    /// csr or import-signed stopped.
    #[error(transparent)]
    Corporate(#[from] CorporateError),
    /// export stopped.
    #[error(transparent)]
    Export(#[from] ExportError),
    /// A keystore password could not be had.
    #[error(transparent)]
    Password(#[from] PasswordInputError),
    /// A file given on the command line cannot be read.
    #[error("{}: cannot read", path.display())]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// `inspect` cannot list the file.
    #[error("{}: {source}", path.display())]
    Inspect {
        /// The file.
        path: PathBuf,
        /// Why (quoted).
        source: InspectError,
    },
    /// `check-host` cannot answer.
    #[error("{}: {source}", path.display())]
    CheckHost {
        /// The file.
        path: PathBuf,
        /// Why (quoted).
        source: CheckHostError,
    },
    /// A `--connect` value that cannot be used.
    #[error("--connect {spec}: {source}")]
    Connect {
        /// The value given.
        spec: String,
        /// What is wrong (quoted).
        source: Box<ConnectError>,
    },
    /// Two mappings for one endpoint.
    #[error("{0}")]
    ConnectConflict(Box<ConnectError>),
    /// The `--connect-file` cannot be read.
    #[error("--connect-file {}: cannot read it", path.display())]
    ConnectFileUnreadable {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A line of the `--connect-file` that cannot be used.
    #[error("{}: {source}", path.display())]
    ConnectFile {
        /// The file.
        path: PathBuf,
        /// The line and what is wrong with it (quoted).
        source: Box<ConnectError>,
    },
    /// `--timeout` out of range.
    #[error("--timeout must be between 0 and 600 seconds")]
    Timeout,
    /// `--out DIR` or a DIR argument that is not a directory.
    #[error("{arg} {}: {}", path.display(), if *exists { "is a file, not a directory" } else { "does not exist" })]
    NotADirectory {
        /// `--out` or `DIR`.
        arg: &'static str,
        /// The path given.
        path: PathBuf,
        /// True when it exists (as a file).
        exists: bool,
        /// True when the command reads a set there (it must exist).
        must_exist: bool,
    },
    /// `init --product` names no product.
    #[error("--product `{given}` is not one of {}", Product::ALL.map(Product::as_str).join(", "))]
    UnknownProduct {
        /// The value given.
        given: String,
    },
    /// `man COMMAND` names no command.
    #[error("man {name}: apim-pki has no such command")]
    UnknownCommand {
        /// The name given.
        name: String,
        /// The commands.
        known: Vec<String>,
    },
    /// stdout could not be written (a full device; a closed pipe is not an error).
    #[error("cannot write to stdout")]
    Stdout(#[source] std::io::Error),
    /// A bug in apim-pki.
    #[error("{0}")]
    Bug(#[from] Bug),
}

impl Error {
    /// What the user can do about it, when there is something to say.
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::Topology(e) => e.hint.clone(),
            Error::Generate(e) => e.hint(),
            Error::Set(e) => e.hint(),
            Error::Apply(e) => e.hint(),
            Error::Corporate(e) => e.hint(),
            Error::Export(e) => e.hint(),
            Error::Password(e) => e.hint(),
            Error::Connect { .. } => {
                Some("write HOST:PORT=ADDR:PORT, e.g. km.acme.internal:9443=127.0.0.1:19443".into())
            }
            Error::NotADirectory { must_exist, .. } => Some(if *must_exist {
                "give the directory `apim-pki generate` wrote (it holds inventory.json)".into()
            } else {
                "give a directory: it is created when missing".into()
            }),
            Error::UnknownCommand { known, .. } => Some(format!("commands: {}", known.join(", "))),
            _ => None,
        }
    }

    /// The exit code: 70 ([`error::EXIT_BUG`]) for a bug in apim-pki, else 2
    /// ([`error::EXIT_INPUT`]).
    pub fn exit_code(&self) -> u8 {
        error::exit_code(self)
    }

    /// What users read on stderr: `error: ...`, its causes, `hint: ...`.
    pub fn render(&self) -> String {
        error::render(self, self.hint().as_deref())
    }
}

/// `--out DIR` (or a DIR argument) must be a directory when it exists; `must_exist` for a set.
/// One look at the path: a second one races with a concurrent run creating the directory
/// (which must not read as "is a file").
pub fn dir_arg(arg: &'static str, path: &Path, must_exist: bool) -> Result<(), Error> {
    let exists = match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => return Ok(()),
        Ok(_) => true,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !must_exist => return Ok(()),
        Err(_) => false,
    };
    Err(Error::NotADirectory {
        arg,
        path: path.to_path_buf(),
        exists,
        must_exist,
    })
}

/// `init`: the example topology for `product`, then what a topology may use.
pub fn init(product: &str, ha: bool) -> Result<String, Error> {
    let product = Product::parse(product).ok_or_else(|| Error::UnknownProduct {
        given: product.to_string(),
    })?;
    Ok(format!(
        "{}\n{}",
        crate::init::example(product, ha),
        crate::init::reference()
    ))
}

/// What `plan`, `generate`, `rotate` and `import-signed` did (or would do).
#[derive(Debug)]
pub struct Reconciled {
    /// The topology it ran with.
    pub topology: Topology,
    /// The set's directory.
    pub dir: PathBuf,
    /// Every artifact's action.
    pub outcome: Outcome,
    /// Plan (nothing written) or generate.
    pub mode: Mode,
    /// How long it took.
    pub seconds: f64,
}

/// The JSON form of [`Reconciled`]: `{"actions": [...]}`.
#[derive(Serialize)]
pub struct ActionsJson<'a> {
    /// Every artifact's action.
    pub actions: &'a [reconcile::Action],
}

impl Reconciled {
    /// The JSON document scripts read.
    pub fn json(&self) -> ActionsJson<'_> {
        ActionsJson {
            actions: &self.outcome.actions,
        }
    }

    /// The report for people.
    pub fn render_text(&self, w: &mut dyn std::io::Write) -> std::io::Result<()> {
        reconcile::render_text(
            w,
            &self.topology,
            &self.dir,
            &self.outcome,
            self.mode,
            self.seconds,
        )
    }

    /// False for a plan in which some artifact needs `rotate` (generate would refuse).
    pub fn passed(&self) -> bool {
        let blocked = self
            .outcome
            .actions
            .iter()
            .any(|a| a.action == ActionKind::NeedsRotate);
        !(self.mode == Mode::Plan && blocked)
    }

    /// A note for stderr when the run first completed an interrupted one.
    pub fn note(&self) -> Option<String> {
        self.outcome.recovered.then(|| {
            format!(
                "note: first completed the writes of an interrupted run ({})",
                self.dir.join(layout::JOURNAL).display()
            )
        })
    }
}

/// `plan`, `generate` and `rotate`: loads the topology and reconciles `out` with it.
pub fn reconcile(
    topology_path: &Path,
    out: &Path,
    mode: Mode,
    rotation: Option<&Rotation>,
) -> Result<Reconciled, Error> {
    let started = Instant::now();
    let topology = Topology::load(topology_path)?;
    dir_arg("--out", out, false)?;
    let outcome = match rotation {
        Some(r) => reconcile::rotate(&topology, out, r, mode)?,
        None => reconcile::reconcile(&topology, out, mode)?,
    };
    Ok(Reconciled {
        topology,
        dir: out.to_path_buf(),
        outcome,
        mode,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// What `csr` wrote; JSON: the list of CSRs.
#[derive(Debug, Serialize)]
#[serde(transparent)]
pub struct Csrs {
    /// Each CSR and its key.
    pub written: Vec<CsrWritten>,
    /// The set's directory.
    #[serde(skip)]
    pub dir: PathBuf,
}

impl Csrs {
    /// The report for people.
    pub fn render_text(&self, w: &mut dyn std::io::Write) -> std::io::Result<()> {
        corporate::render_text(&self.written, &self.dir, w)
    }
}

/// `csr`: a key and a CSR for every node and load balancer, in `out/csr/`.
pub fn csr(topology_path: &Path, out: &Path) -> Result<Csrs, Error> {
    let topology = Topology::load(topology_path)?;
    dir_arg("--out", out, false)?;
    Ok(Csrs {
        written: corporate::write_csrs(topology_path, &topology, out)?,
        dir: out.to_path_buf(),
    })
}

/// `import-signed`: the signed certificates back into the set `dir`.
pub fn import_signed(dir: &Path, certs: &Path) -> Result<Reconciled, Error> {
    let started = Instant::now();
    dir_arg("DIR", dir, true)?;
    let outcome = corporate::import_signed(dir, certs)?;
    let topology = Topology::load(&dir.join(corporate::CSR_TOPOLOGY))?;
    Ok(Reconciled {
        topology,
        dir: dir.to_path_buf(),
        outcome,
        mode: Mode::Generate,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Reads a file given on the command line, and its password when it is a keystore.
fn read_with_password(
    file: &Path,
    password: &PasswordInput,
) -> Result<(Vec<u8>, Option<crate::password::Password>), Error> {
    let bytes = input::read(file, Limit::Certificate).map_err(|source| Error::Unreadable {
        path: file.to_path_buf(),
        source,
    })?;
    let password = if inspect::needs_password(&bytes) {
        password.read()?
    } else {
        None
    };
    Ok((bytes, password))
}

/// `inspect`: the entries of a keystore or PEM file.
pub fn inspect(file: &Path, password: &PasswordInput) -> Result<Listing, Error> {
    let (bytes, password) = read_with_password(file, password)?;
    inspect::inspect(&bytes, password.as_ref()).map_err(|source| Error::Inspect {
        path: file.to_path_buf(),
        source,
    })
}

/// `check-host`: whether the certificate in `file` is valid for each of `hosts`.
pub fn check_host(
    file: &Path,
    hosts: &[String],
    password: &PasswordInput,
) -> Result<CheckHostReport, Error> {
    let (bytes, password) = read_with_password(file, password)?;
    let name = file.display().to_string();
    verify::check_host(&name, &bytes, password.as_ref(), hosts).map_err(|source| Error::CheckHost {
        path: file.to_path_buf(),
        source,
    })
}

/// `verify --live` and its options.
#[derive(Debug, Clone, Default)]
pub struct LiveOptions {
    /// `--connect HOST:PORT=ADDR:PORT` values.
    pub connect: Vec<String>,
    /// `--connect-file`.
    pub connect_file: Option<PathBuf>,
    /// Seconds each probe may take.
    pub timeout: f64,
}

/// A verify report with the name of the set it is about.
#[derive(Debug)]
pub struct Verified {
    /// The findings.
    pub report: Report,
    /// The deployment's name.
    pub name: String,
}

impl Verified {
    /// The report for people.
    pub fn render_text(&self, w: &mut dyn std::io::Write) -> std::io::Result<()> {
        self.report.render_text(&self.name, w)
    }
}

/// `verify DIR`: the set's offline checks, and with `live` the running endpoints.
pub fn verify(
    dir: &Path,
    live: Option<&LiveOptions>,
    warn_days: Option<u32>,
) -> Result<Verified, Error> {
    use crate::verify::offline::{verify_set, OpenedSet, Options};
    dir_arg("DIR", dir, true)?;
    let set = OpenedSet::open(dir)?;
    let mut report = verify::name_password_sources(&set, verify_set(&set, &Options { warn_days }));
    if let Some(live) = live {
        let overrides = connect_overrides(live)?;
        if !(live.timeout > 0.0 && live.timeout <= 600.0) {
            return Err(Error::Timeout);
        }
        let timeout = Duration::from_secs_f64(live.timeout);
        report = verify::with_live(&set, report, &overrides, timeout);
    }
    Ok(Verified {
        report,
        name: set.view.name.clone(),
    })
}

/// `verify DIR --apim-home PATH --node NAME`: an applied 3.2/4.x/4.5+ home.
pub fn verify_home(dir: &Path, node: &str, home: &Path) -> Result<Verified, Error> {
    let set = OpenedSet::open(dir)?;
    let report = verify::home::verify_home(&set, node, home)?;
    Ok(Verified {
        report,
        name: set.view.name.clone(),
    })
}

/// The `--connect` and `--connect-file` overrides, merged; one endpoint mapped twice is refused.
fn connect_overrides(live: &LiveOptions) -> Result<Vec<ConnectOverride>, Error> {
    let mut overrides = Vec::new();
    for spec in &live.connect {
        let one = live::parse_connect(spec).map_err(|source| Error::Connect {
            spec: spec.clone(),
            source: Box::new(source),
        })?;
        live::merge_overrides(&mut overrides, vec![one], &format!("--connect {spec}"))
            .map_err(|e| Error::ConnectConflict(Box::new(e)))?;
    }
    if let Some(path) = &live.connect_file {
        let text = input::read_to_string(path, Limit::ConnectFile).map_err(|source| {
            Error::ConnectFileUnreadable {
                path: path.clone(),
                source,
            }
        })?;
        let lines = live::parse_connect_file(&text).map_err(|source| Error::ConnectFile {
            path: path.clone(),
            source: Box::new(source),
        })?;
        live::merge_overrides(&mut overrides, lines, &path.display().to_string())
            .map_err(|e| Error::ConnectConflict(Box::new(e)))?;
    }
    Ok(overrides)
}

/// What `apply` did: to a 2.6 home's XML files, or to a deployment.toml.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Applied {
    /// API-M 2.6.
    Xml(apim26::ApplyReport),
    /// API-M 3.2, 4.x, 4.5+.
    Toml(apply_toml::TomlApplyReport),
}

impl Applied {
    /// The report for people.
    pub fn render_text(&self, w: &mut dyn std::io::Write) -> std::io::Result<()> {
        match self {
            Applied::Xml(r) => apim26::render_text(r, w),
            Applied::Toml(r) => apply_toml::render_text(r, w),
        }
    }
}

/// `apply`: one node's keystores and configuration into an unpacked API-M home.
/// `truststore_env` names the variable holding the node's current truststore password (2.6,
/// when carbon.xml keeps it in secure vault).
pub fn apply(
    dir: &Path,
    node: &str,
    home: &Path,
    dry_run: bool,
    truststore_env: Option<&str>,
) -> Result<Applied, Error> {
    dir_arg("DIR", dir, true)?;
    let set = OpenedSet::open(dir)?;
    if apply_toml::set_product(&set)?.uses_deployment_toml() {
        let report = apply_toml::apply(dir, node, home, dry_run)?;
        return Ok(Applied::Toml(report));
    }
    let existing_truststore_password = truststore_env
        .map(|var| crate::prompt::from_env("--existing-truststore-password-env", var))
        .transpose()?;
    let options = apim26::ApplyOptions {
        dry_run,
        existing_truststore_password,
    };
    Ok(Applied::Xml(apim26::apply(dir, node, home, &options)?))
}

/// What `export` wrote; JSON: the list of folders.
#[derive(Debug, Serialize)]
#[serde(transparent)]
pub struct Exported(pub Vec<ExportedNode>);

impl Exported {
    /// The report for people.
    pub fn render_text(&self, w: &mut dyn std::io::Write) -> std::io::Result<()> {
        export::render_text(&self.0, w)
    }
}

/// `export kubernetes`: Secret manifests and Helm values for the selected nodes, into `out`
/// (`DIR/kubernetes` when `None`). `node` wins over `profile`; one of them is required.
pub fn export_kubernetes(
    dir: &Path,
    node: Option<String>,
    profile: Option<String>,
    out: Option<&Path>,
) -> Result<Exported, Error> {
    let selection = match (node, profile) {
        (Some(n), _) => Selection::Node(n),
        (None, Some(p)) => Selection::Profile(p),
        (None, None) => return Err(Bug::new("export without --node or --profile").into()),
    };
    let out = out.map_or_else(|| export::default_out(dir), Path::to_path_buf);
    Ok(Exported(export::export_kubernetes(dir, &selection, &out)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_errors_exit_2_and_bugs_exit_70() {
        let input = Error::UnknownProduct {
            given: "apim-9".into(),
        };
        assert_eq!(input.exit_code(), 2);
        assert_eq!(
            input.render(),
            "error: --product `apim-9` is not one of apim-2.6, apim-3.2, apim-4.x, apim-4.5\n"
        );
        let bug = Error::from(GenerateError::from(Bug::new("no CA")));
        assert_eq!(bug.exit_code(), 70);
        let text = bug.render();
        assert!(
            text.starts_with("error: internal error: no CA (at src/commands.rs:"),
            "{text}"
        );
        assert_eq!(text.lines().count(), 1, "{text}");
        let deep = Error::from(CorporateError::from(GenerateError::from(Bug::new("x"))));
        assert_eq!(deep.exit_code(), 70);
    }

    #[test]
    fn a_missing_set_says_so_with_its_cause_and_a_hint() {
        let dir = tempfile::tempdir().expect("tempdir");
        let e = verify(&dir.path().join("nope"), None, None).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.render().ends_with(
            ": does not exist\nhint: give the directory `apim-pki generate` wrote (it holds inventory.json)\n"
        ));
        let e = verify(dir.path(), None, None).unwrap_err();
        let text = e.render();
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].starts_with("error: ") && lines[0].ends_with("inventory.json: cannot read"),
            "{text}"
        );
        assert!(lines[1].starts_with("  caused by: "), "{text}");
        assert!(lines[2].starts_with("hint: "), "{text}");
    }
}
