//! Reconcile: bring DIR in line with the topology (`generate`), or say what that would do
//! (`plan`). Per artifact: create, keep, renew, reissue, update, or needs-rotate, with a reason.
//!
//! Keys are never replaced here: renew and reissue re-certify the existing key, a missing key is
//! created, and a changed key type or CA stops the run with a hint to use `rotate`. Derived files
//! (truststores, node.toml, inventory.json) are rewritten only when their content changes, so an
//! unchanged topology changes no file at all.
//!
//! A run is five phases, each a function of its own module, called in order by [`run`]:
//! load what DIR holds (`state`, `cas`) → decide per artifact (`decide`, from `specs`) →
//! issue (`issue`, through a [`issue::Signer`]; skipped by a plan) → assemble the files
//! (`files`, each staged as soon as it is made) → commit (`commit`: journal, history,
//! inventory). Phases depend on `model`, `types`, `error` and `dir`, never on each other.

use std::collections::BTreeSet;
use std::path::Path;

use time::{Duration, OffsetDateTime};

use crate::output::fsio::{self, DirLock};
use crate::output::inventory::{Artifact, Inventory};
use crate::output::journal::Journal;
use crate::output::layout;
use crate::topology::Topology;

mod cas;
mod commit;
mod decide;
mod dir;
mod engine;
mod error;
mod files;
mod issue;
mod model;
mod report;
mod specs;
mod state;
#[cfg(test)]
mod testutil;
mod types;

use cas::{create_ca, load_cas, CaPlan};
use commit::{build_inventory, remove_empty_parents, Stager};
use decide::{ca_keys, decide_all, needs_rotate_error, refuse_shared_keys, DecideCtx};
use dir::Dir;
use files::{assemble, Assembly};
use issue::{issue_all, new_keys, unissued, LocalCa};
use model::{ArtifactSpec, Existing, FileOut, Issued, Item, Passwords};
use state::{load_existing, read_inventory, read_secrets, resolve_passwords, Lookup};

pub use error::GenerateError;
pub(crate) use report::render_text;
pub(crate) use types::Imported;
pub use types::{Action, ActionKind, CaStage, CaStep, CertSummary, Mode, Outcome, Rotation};

/// Brings `dir` in line with `topology` (or, in [`Mode::Plan`], says what that would do).
pub fn reconcile(topology: &Topology, dir: &Path, mode: Mode) -> Result<Outcome, GenerateError> {
    run(topology, dir, mode, &Rotation::default(), None)
}

/// `rotate`: reconciles like generate, then forces what `rotation` asks (docs/commands.md).
pub fn rotate(
    topology: &Topology,
    dir: &Path,
    rotation: &Rotation,
    mode: Mode,
) -> Result<Outcome, GenerateError> {
    for name in &rotation.nodes {
        if topology.node(name).is_none() {
            return Err(GenerateError::UnknownNode {
                name: name.clone(),
                known: topology.nodes.iter().map(|n| n.name.clone()).collect(),
            });
        }
    }
    for host in &rotation.load_balancers {
        if !topology
            .load_balancers
            .iter()
            .any(|lb| lb.host.to_string().eq_ignore_ascii_case(host))
        {
            return Err(GenerateError::UnknownLoadBalancer {
                host: host.clone(),
                known: topology
                    .load_balancers
                    .iter()
                    .map(|lb| lb.host.to_string())
                    .collect(),
            });
        }
    }
    if rotation.ca.is_some() {
        engine::refuse_ca_rollover(topology)?;
    }
    if rotation.ca.is_some() && !topology.ca.is_generated() {
        return Err(GenerateError::CaNotGenerated);
    }
    run(topology, dir, mode, rotation, None)
}

/// `import-signed`: assembles the set around certificates a corporate CA signed.
pub(crate) fn import(
    topology: &Topology,
    dir: &Path,
    imported: &Imported,
) -> Result<Outcome, GenerateError> {
    run(
        topology,
        dir,
        Mode::Generate,
        &Rotation::default(),
        Some(imported),
    )
}

/// What the load phase found in DIR.
struct Loaded {
    old: Option<Inventory>,
    passwords: Passwords,
    ca: CaPlan,
    specs: Vec<ArtifactSpec>,
    /// What DIR holds for each of `specs`.
    existing: Vec<Option<Existing>>,
    /// Files that do not open and that inventory.json does not record.
    strays: Vec<String>,
    /// The PKI engine that signs (generate and rotate with `[pki.ca] backend`).
    engine: Option<crate::pki::engine::Engine>,
}

/// The load phase: inventory, secrets, passwords, CAs (after the rollover step), and what DIR
/// holds for every artifact the topology asks for.
fn load(
    topology: &Topology,
    dir: Dir,
    rotation: &Rotation,
    imported: Option<&Imported>,
    engine: Option<crate::pki::engine::Engine>,
    mode: Mode,
) -> Result<Loaded, GenerateError> {
    dir.check_sizes()?;
    let old = read_inventory(dir.root)?;
    let secrets = read_secrets(dir.root)?;
    let passwords = resolve_passwords(topology, old.as_ref(), &secrets)?;
    // A set signed by a corporate CA is renewed through csr and import-signed, never here.
    let old_imported = old
        .as_ref()
        .is_some_and(|o| o.topology["ca"]["kind"] == "imported");
    if old_imported && imported.is_none() {
        return Err(GenerateError::CorporateSigned);
    }
    engine::refuse_leaving_engine(topology, old.as_ref())?;
    let ca = load_cas(
        topology,
        dir,
        old.as_ref(),
        imported,
        rotation.ca,
        engine.as_ref(),
        mode,
    )?;
    let specs = specs::artifact_specs(topology);
    let lookup = Lookup {
        topology,
        dir,
        old: old.as_ref(),
        passwords: &passwords,
        imported,
        strays: std::sync::Mutex::new(Vec::new()),
    };
    let existing = load_existing(&lookup, &specs)?;
    let strays = lookup.strays.into_inner().unwrap_or_default();
    Ok(Loaded {
        old,
        passwords,
        ca,
        specs,
        existing,
        strays,
        engine,
    })
}

/// The decide phase, with the checks that stop generate before anything is made: an item that
/// needs `rotate`, a key held twice.
fn decide_phase(
    topology: &Topology,
    loaded: &mut Loaded,
    rotation: &Rotation,
    mode: Mode,
) -> Result<Vec<Item>, GenerateError> {
    let cx = DecideCtx {
        ca: loaded.ca.cas.current.as_ref(),
        now: OffsetDateTime::now_utc(),
        renew_window: Duration::days(i64::from(topology.pki.renew_before_days)),
        rotation,
        recertify_all: loaded.ca.recertify_all.clone(),
    };
    let specs = std::mem::take(&mut loaded.specs);
    let existing = std::mem::take(&mut loaded.existing);
    let items = decide_all(specs, existing, &cx);
    if mode != Mode::Plan {
        needs_rotate_error(&items)?;
    }
    // No key may be held twice (a keystore copied over another's name).
    refuse_shared_keys(&items, &ca_keys(&loaded.ca.cas, topology.ca.is_generated()))?;
    Ok(items)
}

/// The issue phase: new keys (the CA's too when the set has none), then every certificate from
/// the signer. A plan issues nothing.
fn issue_phase(
    topology: &Topology,
    _dir: Dir,
    ca: &mut CaPlan,
    engine: Option<&crate::pki::engine::Engine>,
    items: Vec<Item>,
    mode: Mode,
) -> Result<Vec<(Item, Issued)>, GenerateError> {
    if mode == Mode::Plan {
        return Ok(unissued(items));
    }
    let cas = &mut ca.cas;
    let (keys, ca_key) = new_keys(&items, cas.current.is_none().then_some(topology.pki.key))?;
    if let Some(key) = ca_key {
        create_ca(topology, cas, key)?;
    }
    let ca = cas
        .current
        .as_ref()
        .ok_or_else(|| crate::error::Bug::new("no CA after loading or creating it"))?;
    // Every certificate is signed before anything is staged: a refused request leaves DIR as
    // it was, and the keys made for it are dropped with this run.
    match engine {
        Some(engine) => issue_all(items, keys, &engine::EngineCa { engine, ca }),
        None => issue_all(items, keys, &LocalCa(ca)),
    }
}

fn run(
    topology: &Topology,
    root: &Path,
    mode: Mode,
    rotation: &Rotation,
    imported: Option<&Imported>,
) -> Result<Outcome, GenerateError> {
    let command = Command::of(rotation, imported);
    let journal = Journal::new(root, layout::JOURNAL);
    let (mut lock, recovered) = lock_existing(root, mode, command.name(), &journal)?;
    let index = Dir::index(root);
    let dir = Dir::new(root, &index);
    let engine = engine::connect(topology, mode, imported.is_some())?;
    let mut loaded = load(topology, dir, rotation, imported, engine, mode)?;
    let items = decide_phase(topology, &mut loaded, rotation, mode)?;
    let new_dir = mode == Mode::Generate && lock.is_none();
    if new_dir {
        lock = Some(DirLock::acquire_new(root, layout::LOCK, command.name())?);
    }
    let written = issue_and_write(topology, dir, &journal, &mut loaded, items, mode);
    // Before the commit point (the journal) a failed run leaves nothing in a directory it made.
    if written.is_err() && new_dir && !journal.path().exists() {
        drop(lock.take());
        discard_new_dir(root);
    }
    let (actions, issued) = written?;
    Ok(Outcome {
        actions,
        certificates: report::summarize(&loaded.ca.cas, &issued, topology),
        generated_passwords: loaded
            .passwords
            .roles()
            .into_iter()
            .filter_map(|(role, r)| r.filter(|r| r.generated).map(|_| role.to_string()))
            .collect(),
        wrote: lock.is_some(),
        recovered,
        verb: command.verb(),
        ca_step: rotation.ca,
    })
}

/// The actions of a run and the items it issued (or, in a plan, would issue).
type Written = (Vec<Action>, Vec<(Item, Issued)>);

/// Issue, assemble and (generate) commit.
fn issue_and_write(
    topology: &Topology,
    dir: Dir,
    journal: &Journal,
    loaded: &mut Loaded,
    items: Vec<Item>,
    mode: Mode,
) -> Result<Written, GenerateError> {
    let issued = issue_phase(
        topology,
        dir,
        &mut loaded.ca,
        loaded.engine.as_ref(),
        items,
        mode,
    )?;
    let stager = (mode == Mode::Generate).then(|| {
        let stamp = fsio::unique_stamp(&dir.join(layout::HISTORY), OffsetDateTime::now_utc());
        Stager::new(dir, journal, stamp)
    });
    let assembled = {
        let sink = |f: &mut FileOut| stager.as_ref().map_or(Ok(()), |s| s.stage(f));
        let a = Assembly {
            topology,
            dir,
            cas: &loaded.ca.cas,
            passwords: &loaded.passwords,
            writing: stager.is_some(),
            sink: &sink,
        };
        assemble(&a, &issued)
    };
    let files = match assembled {
        Ok(files) => files,
        Err(e) => {
            if let Some(stager) = stager {
                stager.abandon();
            }
            return Err(e);
        }
    };
    let removed = removed_artifacts(dir, loaded.old.as_ref(), &files);
    let actions = actions_of(dir, &files, &removed, &loaded.strays);
    if let Some(stager) = stager {
        let mut inventory = build_inventory(topology, &loaded.passwords, &files, &loaded.ca.cas);
        inventory.engine = engine::record(topology, &issued, loaded.ca.cas.current.as_ref());
        let bytes = inventory.to_json();
        let current = dir.read(layout::INVENTORY);
        let changed = current.as_deref() != Some(&bytes[..]);
        stager.commit(changed.then_some(&bytes[..]), &loaded.strays, &removed)?;
        for a in &removed {
            remove_empty_parents(dir.root, &a.path);
        }
    }
    Ok((actions, issued))
}

/// Artifacts of the old inventory that the new set no longer has: they move to history/.
fn removed_artifacts<'o>(
    dir: Dir,
    old: Option<&'o Inventory>,
    files: &[FileOut],
) -> Vec<&'o Artifact> {
    let new_paths: BTreeSet<&str> = files.iter().map(|f| f.path.as_str()).collect();
    old.map(|o| {
        o.artifacts
            .iter()
            .filter(|a| {
                !new_paths.contains(a.path.as_str())
                    && a.path != layout::INVENTORY
                    && dir.join(&a.path).exists()
            })
            .collect()
    })
    .unwrap_or_default()
}

/// What the run does to each file, then the files leaving the set and the strays.
fn actions_of(
    dir: Dir,
    files: &[FileOut],
    removed: &[&Artifact],
    strays: &[String],
) -> Vec<Action> {
    let mut actions: Vec<Action> = files
        .iter()
        .map(|f| Action {
            action: if f.action == ActionKind::Create && dir.has(&f.path) {
                ActionKind::Replace
            } else {
                f.action
            },
            path: f.path.clone(),
            node: f.node.clone(),
            load_balancer: f.lb.clone(),
            reason: f.reason.clone(),
        })
        .collect();
    actions.extend(removed.iter().map(|a| Action {
        action: ActionKind::Remove,
        path: a.path.clone(),
        node: a.node.clone(),
        load_balancer: a.load_balancer.clone(),
        reason: "no longer in the topology or format; moved to history/".into(),
    }));
    actions.extend(strays.iter().map(|path| Action {
        action: ActionKind::Remove,
        path: path.clone(),
        node: None,
        load_balancer: None,
        reason: "does not open and inventory.json does not record it (left by an interrupted run); moved to history/".into(),
    }));
    actions
}

/// Removes what a failed run left in a directory it created: the lock file, staged
/// temporaries, empty directories (never another file).
fn discard_new_dir(root: &Path) {
    fsio::remove_stale_temporaries(root, true);
    let _ = std::fs::remove_file(root.join(layout::LOCK));
    fn prune(dir: &Path) {
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    prune(&e.path());
                }
            }
        }
        let _ = std::fs::remove_dir(dir);
    }
    prune(root);
}

/// The writing command a run is, to name a lock holder and the summary's verb.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Command {
    Generate,
    Rotate,
    ImportSigned,
}

impl Command {
    fn of(rotation: &Rotation, imported: Option<&Imported>) -> Command {
        if imported.is_some() {
            Command::ImportSigned
        } else if rotation.ca.is_some()
            || rotation.primary_cert
            || rotation.everything
            || !rotation.nodes.is_empty()
            || !rotation.load_balancers.is_empty()
        {
            Command::Rotate
        } else {
            Command::Generate
        }
    }

    fn name(self) -> &'static str {
        match self {
            Command::Generate => "generate",
            Command::Rotate => "rotate",
            Command::ImportSigned => "import-signed",
        }
    }

    fn verb(self) -> &'static str {
        match self {
            Command::Generate => "Generated",
            Command::Rotate => "Rotated",
            Command::ImportSigned => "Imported",
        }
    }
}

/// Locks an existing DIR before reading it (generate), completes what an interrupted run left
/// (its journal, its temporaries), and refuses a symbolic link inside DIR. A new DIR is created
/// and locked only once every input checked out, so bad input never leaves a directory behind.
fn lock_existing(
    dir: &Path,
    mode: Mode,
    command: &str,
    journal: &Journal,
) -> Result<(Option<DirLock>, bool), GenerateError> {
    if !dir.is_dir() {
        return Ok((None, false));
    }
    let mut recovered = false;
    let lock = match mode {
        Mode::Generate => {
            let lock = DirLock::acquire(dir, layout::LOCK, command)?;
            recovered = journal.recover()?;
            fsio::remove_stale_temporaries(dir, true);
            Some(lock)
        }
        Mode::Plan if journal.path().exists() => {
            return Err(GenerateError::Interrupted {
                journal: journal.path().to_path_buf(),
            });
        }
        Mode::Plan => None,
    };
    if let Some(link) = fsio::first_link_below(dir) {
        return Err(fsio::link_error(&link).into());
    }
    Ok((lock, recovered))
}
