//! Using apim-pki as a library: load a topology file, plan, generate the set, and verify it.
//!
//! ```sh
//! cargo run --example generate_and_verify -- examples/minimal.toml /tmp/pki
//! ```
//!
//! With no arguments it uses `examples/minimal.toml` and a temporary directory. `cargo test`
//! runs it once as a test (`test = true` in Cargo.toml).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use apim_pki::{reconcile, verify_set, ActionKind, Mode, OpenedSet, Topology, VerifyOptions};

/// Plans, generates and verifies the set of `topology_file` in `out`; prints what it did and
/// returns whether verify found no error.
fn run(topology_file: &Path, out: &Path) -> Result<bool, Box<dyn std::error::Error>> {
    // Every rule of docs/topology.md is checked here; an error names the file, line and key.
    let topology = Topology::load(topology_file)?;
    println!(
        "{}: {} ({} nodes, {} load balancers)",
        topology_file.display(),
        topology.name,
        topology.nodes.len(),
        topology.load_balancers.len()
    );

    // What generate would do, per artifact; nothing is written.
    let plan = reconcile(&topology, out, Mode::Plan)?;
    for (action, count) in plan.counts() {
        println!("  plan: {count} {}", action.as_str());
    }
    if plan
        .actions
        .iter()
        .any(|a| a.action == ActionKind::NeedsRotate)
    {
        println!("  some artifacts need `apim-pki rotate`; stopping");
        return Ok(false);
    }

    // Bring the directory in line with the topology.
    let made = reconcile(&topology, out, Mode::Generate)?;
    for c in &made.certificates {
        println!("  {:<24} {}", c.label, c.names.join(" "));
    }

    // Read the set back with verify's own checks.
    let set = OpenedSet::open(out)?;
    let report = verify_set(&set, &VerifyOptions { warn_days: None });
    let mut text = Vec::new();
    report.render_text(&set.view.name, &mut text)?;
    print!("{}", String::from_utf8_lossy(&text));
    Ok(report.ok)
}

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let topology = args.next().map_or_else(
        || {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/examples/minimal.toml"
            ))
        },
        PathBuf::from,
    );
    let tmp;
    let out = match args.next() {
        Some(dir) => PathBuf::from(dir),
        None => {
            tmp = match tempfile::tempdir() {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("error: cannot make a temporary directory: {e}");
                    return ExitCode::from(2);
                }
            };
            tmp.path().join("pki")
        }
    };
    match run(&topology, &out) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    /// The example end to end on the minimal topology, as `cargo test` runs it.
    #[test]
    fn minimal_topology_generates_and_verifies() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("pki");
        let topology = std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/examples/minimal.toml"
        ));
        assert!(super::run(topology, &out).unwrap());
        assert!(out.join("inventory.json").exists());
        // Idempotent: a second run verifies the same set.
        assert!(super::run(topology, &out).unwrap());
    }
}
