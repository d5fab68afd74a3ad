//! Bad input through the CLI: every rule of shared/design/topology.md and every enum-valued key
//! is a clear exit-2 error naming the file, the line and the key; bad files around the topology
//! (CA files, the output directory, a damaged set, wrong passwords, a second writer) are exit 2
//! with one message naming the file or variable, and nothing is written or changed; an
//! interrupted `generate` leaves only complete files and a re-run recovers.

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::util::cli::{
    apim_pki, generate, minimal_example, run, secrets, snapshot, write_topology, Run,
};
use crate::util::files::{copy_files, s};
use apim_pki::Password;
use apim_pki::Topology;
use apim_pki::{Keystore, KeystoreError};

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn generate_args<'a>(topology: &'a Path, out: &'a Path) -> [&'a str; 4] {
    ["generate", s(topology), "--out", s(out)]
}

/// What is wrong with `r` as a bad-input failure: exit 2, one `error: ` line (optionally followed
/// by `  caused by: ` lines, then `hint: ` lines), no panic or backtrace, nothing on stdout, and each of `names` in stderr.
fn input_error_problem(r: &Run, names: &[&str]) -> Option<String> {
    let ctx = format!(
        "exit {}\nstdout: {}\nstderr: {}",
        r.code, r.stdout, r.stderr
    );
    let lines: Vec<&str> = r.stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    let problem = if r.code != 2 {
        "expected exit 2 (bad input)".to_string()
    } else if !r.stderr.starts_with("error: ") {
        "stderr must start with `error: `".to_string()
    } else if let Some(bad) = ["panicked", "RUST_BACKTRACE", "stack backtrace"]
        .into_iter()
        .find(|b| r.stderr.contains(b))
    {
        format!("stderr shows a panic ({bad})")
    } else if !r.stdout.is_empty() {
        "stdout must be empty on bad input".to_string()
    } else if lines.iter().filter(|l| l.starts_with("error: ")).count() != 1
        || !lines[1..]
            .iter()
            .skip_while(|l| l.starts_with("  caused by: "))
            .all(|l| l.starts_with("hint: "))
    {
        "expected one `error: ` line, its `  caused by: ` lines, then only `hint: ` lines"
            .to_string()
    } else if let Some(name) = names.iter().find(|n| !r.stderr.contains(**n)) {
        format!("the message must name `{name}`")
    } else {
        return None;
    };
    Some(format!("{problem}:\n{ctx}"))
}

#[track_caller]
fn assert_input_error(r: &Run, names: &[&str]) {
    if let Some(problem) = input_error_problem(r, names) {
        panic!("{problem}");
    }
}

/// Every path below `dir`, directories included, dot files included (relative, sorted).
fn all_paths(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).expect("read dir") {
            let path = entry.expect("entry").path();
            out.push(
                path.strip_prefix(root)
                    .expect("prefix")
                    .to_string_lossy()
                    .into_owned(),
            );
            if path.is_dir() && !path.is_symlink() {
                walk(root, &path, out);
            }
        }
    }
    let mut out = Vec::new();
    if dir.is_dir() {
        walk(dir, dir, &mut out);
    }
    out.sort();
    out
}

/// A topology with one node per required 2.6 profile plus `workers` gateway workers behind a
/// load balancer, all ECDSA P-256 (fast keys, many files).
fn big_topology(workers: usize) -> String {
    let mut t =
        String::from("name = \"big\"\nproduct = \"apim-2.6\"\n\n[pki]\nkey = \"ecdsa-p256\"\n\n");
    for p in ["key-manager", "publisher", "store", "traffic-manager"] {
        t += &format!(
            "[[node]]\nname = \"{p}\"\nprofile = \"{p}\"\nhost = \"{p}.big.internal\"\n\n"
        );
    }
    for i in 0..workers {
        t += &format!(
            "[[node]]\nname = \"gw{i}\"\nprofile = \"gateway-worker\"\nhost = \"gw{i}.big.internal\"\n\n"
        );
    }
    t += "[[load_balancer]]\nhost = \"gw.big.internal\"\nfronts = \"gateway-worker\"\n";
    t
}

fn spawn_generate(topology: &Path, out: &Path) -> Child {
    apim_pki()
        .args(generate_args(topology, out))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn apim-pki generate")
}

const TLS_JKS: &str = "nodes/km/repository/resources/security/km-tls.jks";

// ---------------------------------------------------------------------------------------------
// Building topology text from examples/minimal.toml
// ---------------------------------------------------------------------------------------------

/// `text` with the single occurrence of `from` replaced by `to`.
#[track_caller]
fn edit(text: &str, from: &str, to: &str) -> String {
    assert_eq!(
        text.matches(from).count(),
        1,
        "`{from}` must occur exactly once in:\n{text}"
    );
    text.replacen(from, to, 1)
}

/// `text` with `lines` inserted after the single line equal to `anchor`.
#[track_caller]
fn after(text: &str, anchor: &str, lines: &str) -> String {
    let with_nl = format!("{anchor}\n");
    edit(text, &with_nl, &format!("{with_nl}{}\n", lines.trim_end()))
}

/// `text` with `tables` inserted before the first `[[node]]` (where `[pki]`, `[keystores]` and
/// `[passwords]` go).
#[track_caller]
fn tables(text: &str, tables: &str) -> String {
    let at = text.find("[[node]]").expect("a [[node]] table");
    format!("{}{}\n\n{}", &text[..at], tables.trim_end(), &text[at..])
}

fn append(text: &str, extra: &str) -> String {
    format!("{}\n{}\n", text.trim_end(), extra.trim_end())
}

/// The 1-based line of the `nth` (1-based) line of `text` containing `needle`.
#[track_caller]
fn line_of(text: &str, needle: &str, nth: usize) -> usize {
    text.lines()
        .enumerate()
        .filter(|(_, l)| l.contains(needle))
        .nth(nth - 1)
        .map(|(i, _)| i + 1)
        .unwrap_or_else(|| panic!("no {nth}. line containing `{needle}` in:\n{text}"))
}

const KM_NAME: &str = "name = \"km\"";
const KM_HOST: &str = "host = \"km.dev.acme.internal\"";
const PUB_HOST: &str = "host = \"publisher.dev.acme.internal\"";
const PRODUCT: &str = "product = \"apim-2.6\"";
const STORE_NODE: &str =
    "[[node]]\nname = \"store\"\nprofile = \"store\"\nhost = \"store.dev.acme.internal\"\n";

/// A 4.x topology: its required profiles, one node each.
fn apim4x() -> String {
    "name = \"acme-4\"\nproduct = \"apim-4.x\"\n\n\
     [[node]]\nname = \"cp\"\nprofile = \"control-plane\"\nhost = \"cp.acme.internal\"\n\n\
     [[node]]\nname = \"gw\"\nprofile = \"gateway-worker\"\nhost = \"gw.acme.internal\"\n\n\
     [[node]]\nname = \"tm\"\nprofile = \"traffic-manager\"\nhost = \"tm.acme.internal\"\n"
        .to_string()
}

/// One bad topology and the error it must give.
struct Row {
    what: String,
    text: String,
    /// A substring of the reported key.
    key: &'static str,
    /// The acceptable lines (usually one).
    lines: Vec<usize>,
    /// A substring of the message after the key ("" for any).
    message: &'static str,
}

/// A row whose line is that of the `nth` line containing `needle`.
fn row(
    what: impl Into<String>,
    text: String,
    key: &'static str,
    needle: &str,
    nth: usize,
    message: &'static str,
) -> Row {
    let lines = vec![line_of(&text, needle, nth)];
    Row {
        what: what.into(),
        text,
        key,
        lines,
        message,
    }
}

fn rows() -> Vec<Row> {
    let base = minimal_example();
    let b = base.as_str();
    let mut rows = Vec::new();

    // --- Every required profile of the product has at least one node. ---
    rows.push(row(
        "missing required profile store (2.6)",
        edit(b, STORE_NODE, ""),
        "node",
        PRODUCT,
        1,
        "store",
    ));
    rows.push(row(
        "missing required profile control-plane (4.x)",
        edit(
            &apim4x(),
            "[[node]]\nname = \"cp\"\nprofile = \"control-plane\"\nhost = \"cp.acme.internal\"\n",
            "",
        ),
        "node",
        "product = \"apim-4.x\"",
        1,
        "control-plane",
    ));
    rows.push(row(
        "missing required profile devportal (3.2)",
        edit(&edit(b, STORE_NODE, ""), PRODUCT, "product = \"apim-3.2\""),
        "node",
        "product = \"apim-3.2\"",
        1,
        "devportal",
    ));

    // --- Node names unique, lower case [a-z0-9-]. ---
    let t = edit(b, "name = \"store\"", KM_NAME);
    rows.push(row(
        "duplicate node name",
        t,
        "node[3].name",
        KM_NAME,
        2,
        "",
    ));
    for bad in ["KM", "km_1", "km.1", "km 1", ""] {
        let t = edit(b, KM_NAME, &format!("name = \"{bad}\""));
        rows.push(row(
            format!("node name {bad:?}"),
            t,
            "node[1].name",
            &format!("name = \"{bad}\""),
            1,
            "",
        ));
    }

    // --- Aliases lower case [a-z0-9._-]. ---
    for bad in ["WSO2", "wso2 carbon", "wso2carbon!", ""] {
        let t = tables(b, &format!("[keystores]\nprimary_alias = \"{bad}\""));
        rows.push(row(
            format!("primary_alias {bad:?}"),
            t,
            "keystores.primary_alias",
            "primary_alias",
            1,
            "",
        ));
    }

    // --- A host is a valid DNS name or an IP address. ---
    let long_label = format!("{}.acme.internal", "k".repeat(64));
    for bad in [
        "km..x",
        "-km.x",
        "km-.x",
        "km_1.x",
        long_label.as_str(),
        "km.x.",
        "km x.y",
        "",
        "300.1.1.1",
        "km.*.x",
    ] {
        let t = edit(b, KM_HOST, &format!("host = \"{bad}\""));
        rows.push(row(
            format!("node host {bad:?}"),
            t,
            "node[1].host",
            &format!("host = \"{bad}\""),
            1,
            "",
        ));
    }
    let t = edit(b, PUB_HOST, KM_HOST);
    rows.push(row(
        "two nodes share a host with the same (default) offset",
        t,
        "node[2].host",
        KM_HOST,
        2,
        "",
    ));
    let t = after(
        &after(&edit(b, PUB_HOST, KM_HOST), KM_NAME, "offset = 3"),
        "name = \"publisher\"",
        "offset = 3",
    );
    rows.push(row(
        "two nodes share a host with the same explicit offset",
        t,
        "node[2].host",
        KM_HOST,
        2,
        "",
    ));

    // --- A load balancer's host is no node's host; load balancer hosts are unique. ---
    let t = append(
        b,
        "[[load_balancer]]\nhost = \"gw.dev.acme.internal\"\nfronts = \"gateway-worker\"",
    );
    rows.push(row(
        "load balancer host equals a node host",
        t,
        "load_balancer[1].host",
        "host = \"gw.dev.acme.internal\"",
        2,
        "",
    ));
    let t = append(
        b,
        "[[load_balancer]]\nhost = \"lb.dev.acme.internal\"\nfronts = \"gateway-worker\"\n\n\
         [[load_balancer]]\nhost = \"lb.dev.acme.internal\"\nfronts = \"key-manager\"",
    );
    rows.push(row(
        "two load balancers with the same host",
        t,
        "load_balancer[2].host",
        "host = \"lb.dev.acme.internal\"",
        2,
        "",
    ));
    let t = append(
        b,
        "[[load_balancer]]\nhost = \"lb..dev.acme.internal\"\nfronts = \"gateway-worker\"",
    );
    rows.push(row(
        "load balancer host invalid",
        t,
        "load_balancer[1].host",
        "lb..dev",
        1,
        "",
    ));

    // --- A load balancer fronts a profile that exists; at most one per profile. ---
    for (what, fronts) in [
        ("a profile no node has", "gateway-manager"),
        ("an unknown profile", "gateway"),
        ("a profile of another product", "control-plane"),
    ] {
        let t = append(
            b,
            &format!("[[load_balancer]]\nhost = \"lb.dev.acme.internal\"\nfronts = \"{fronts}\""),
        );
        rows.push(row(
            format!("load balancer fronts {what}"),
            t,
            "load_balancer[1].fronts",
            "fronts =",
            1,
            "",
        ));
    }
    let t = append(
        b,
        "[[load_balancer]]\nhost = \"lb1.dev.acme.internal\"\nfronts = \"gateway-worker\"\n\n\
         [[load_balancer]]\nhost = \"lb2.dev.acme.internal\"\nfronts = \"gateway-worker\"",
    );
    rows.push(row(
        "two load balancers front the same profile",
        t,
        "load_balancer[2].fronts",
        "fronts = \"gateway-worker\"",
        2,
        "",
    ));

    // --- A profile with more than one node needs a load balancer. ---
    let t = append(
        b,
        "[[node]]\nname = \"gateway2\"\nprofile = \"gateway-worker\"\nhost = \"gw2.dev.acme.internal\"",
    );
    rows.push(row(
        "two gateway workers and no load balancer",
        t,
        "node[6].profile",
        "profile = \"gateway-worker\"",
        2,
        "load balancer",
    ));

    // --- At most one gateway-manager, and only with two or more gateway-workers. ---
    let t = append(
        b,
        "[[node]]\nname = \"gwm\"\nprofile = \"gateway-manager\"\nhost = \"gwm.dev.acme.internal\"",
    );
    rows.push(row(
        "gateway-manager with a single gateway-worker",
        t,
        "node[6].profile",
        "profile = \"gateway-manager\"",
        1,
        "gateway-worker",
    ));
    let workers = append(
        b,
        "[[node]]\nname = \"gateway2\"\nprofile = \"gateway-worker\"\nhost = \"gw2.dev.acme.internal\"\n\n\
         [[node]]\nname = \"gwm1\"\nprofile = \"gateway-manager\"\nhost = \"gwm1.dev.acme.internal\"\n\n\
         [[node]]\nname = \"gwm2\"\nprofile = \"gateway-manager\"\nhost = \"gwm2.dev.acme.internal\"\n\n\
         [[load_balancer]]\nhost = \"gw.lb.acme.internal\"\nfronts = \"gateway-worker\"",
    );
    for (what, text) in [
        (
            "two gateway-managers (behind a load balancer)",
            append(
                &workers,
                "[[load_balancer]]\nhost = \"gwm.lb.acme.internal\"\nfronts = \"gateway-manager\"",
            ),
        ),
        ("two gateway-managers", workers.clone()),
    ] {
        let lines = vec![
            line_of(&text, "profile = \"gateway-manager\"", 1),
            line_of(&text, "profile = \"gateway-manager\"", 2),
        ];
        rows.push(Row {
            what: what.into(),
            text,
            key: "profile",
            lines,
            message: "gateway-manager",
        });
    }

    // --- An ip is IPv4 or IPv6. ---
    for bad in ["10.0.1.256", "10.0.1", "km.acme.internal", "fd00::1::2", ""] {
        let t = after(b, KM_HOST, &format!("ip = \"{bad}\""));
        rows.push(row(format!("ip {bad:?}"), t, "node[1].ip", "ip = ", 1, ""));
    }

    // --- An extra_sans entry is a DNS name or a whole-leftmost-label wildcard. ---
    // An IP address is not a DNS SAN (it belongs in `ip`).
    for (bad, key) in [
        ("[\"*.com\"]", "node[1].extra_sans[1]"),
        ("[\"a.*.b\"]", "node[1].extra_sans[1]"),
        ("[\"km*.x.y\"]", "node[1].extra_sans[1]"),
        ("[\"*\"]", "node[1].extra_sans[1]"),
        ("[\"10.0.0.1\"]", "node[1].extra_sans[1]"),
        (
            "[\"ok.acme.internal\", \"*.*.acme.internal\"]",
            "node[1].extra_sans[2]",
        ),
    ] {
        let t = after(b, KM_HOST, &format!("extra_sans = {bad}"));
        rows.push(row(
            format!("extra_sans {bad}"),
            t,
            key,
            "extra_sans",
            1,
            "",
        ));
    }

    // --- Every port plus its offset stays at or below 65535 (JMX RMI 11111, the highest). ---
    // 4294967296 and 4294967297 would wrap to 0 and 1 in 32 bits, 65536 to 0 in 16.
    for bad in [
        "54425",
        "-1",
        "65536",
        "70000",
        "4294967296",
        "4294967297",
        "9223372036854775807",
    ] {
        let t = after(b, KM_HOST, &format!("offset = {bad}"));
        rows.push(row(
            format!("offset {bad}"),
            t,
            "node[1].offset",
            "offset = ",
            1,
            "",
        ));
    }

    // --- renew_before_days < validity_days; days in range. ---
    for (validity, renew) in [(30, 30), (30, 31), (397, 397)] {
        let t = tables(
            b,
            &format!("[pki]\nvalidity_days = {validity}\nrenew_before_days = {renew}"),
        );
        rows.push(row(
            format!("renew_before_days {renew} >= validity_days {validity}"),
            t,
            "pki.renew_before_days",
            "renew_before_days",
            1,
            "",
        ));
    }
    for (table, key, full) in [
        (
            "[pki]\nvalidity_days = 0",
            "validity_days",
            "pki.validity_days",
        ),
        (
            "[pki]\nrenew_before_days = -1",
            "renew_before_days",
            "pki.renew_before_days",
        ),
        (
            "[pki.ca]\nvalidity_days = 0",
            "validity_days",
            "pki.ca.validity_days",
        ),
        (
            "[keystores]\nprimary_validity_days = 0",
            "primary_validity_days",
            "keystores.primary_validity_days",
        ),
    ] {
        let t = tables(b, table);
        rows.push(row(format!("{full} out of range"), t, full, key, 1, ""));
    }

    // --- Lengths: names become file names, certificate names and aliases (issue 8 item 10). ---
    let long_name = format!("name = \"{}\"", "n".repeat(250));
    let t = edit(b, KM_NAME, &long_name);
    rows.push(row(
        "250-character node name",
        t,
        "node[1].name",
        &long_name,
        1,
        "at most 63",
    ));
    let t = edit(b, KM_NAME, &format!("name = \"{}\"", "n".repeat(64)));
    rows.push(row(
        "64-character node name",
        t,
        "node[1].name",
        "nnnn",
        1,
        "at most 63",
    ));
    let t = edit(
        b,
        "name = \"acme-dev\"",
        &format!("name = \"{}\"", "d".repeat(49)),
    );
    rows.push(row(
        "49-character deployment name",
        t,
        "name",
        "dddd",
        1,
        "at most 48",
    ));
    let t = tables(b, &format!("[pki]\norganization = \"{}\"", "O".repeat(65)));
    rows.push(row(
        "65-character organization",
        t,
        "pki.organization",
        "OOOO",
        1,
        "at most 64",
    ));
    let t = tables(
        b,
        &format!("[keystores]\nprimary_alias = \"{}\"", "a".repeat(64)),
    );
    rows.push(row(
        "64-character alias",
        t,
        "keystores.primary_alias",
        "aaaa",
        1,
        "at most 63",
    ));
    // A valid 217-character DNS name, too long to name the load balancer's files.
    let long_host = [
        "h".repeat(63),
        "h".repeat(63),
        "h".repeat(63),
        "acme.internal".into(),
    ]
    .join(".");
    let t = append(
        b,
        &format!("[[load_balancer]]\nhost = \"{long_host}\"\nfronts = \"key-manager\""),
    );
    rows.push(row(
        "217-character load balancer host",
        t,
        "load_balancer[1].host",
        &long_host,
        1,
        "at most 200",
    ));
    // --- Hosts whose certificates verify cannot tell from WSO2's default (CN=localhost). ---
    let t = append(
        b,
        "[[load_balancer]]\nhost = \"LocalHost\"\nfronts = \"key-manager\"",
    );
    rows.push(row(
        "load balancer host localhost",
        t,
        "load_balancer[1].host",
        "LocalHost",
        1,
        "localhost",
    ));
    let t = tables(
        &edit(b, KM_HOST, "host = \"localhost\""),
        "[pki]\ninclude_localhost = false",
    );
    rows.push(row(
        "node host localhost without include_localhost",
        t,
        "node[1].host",
        "host = \"localhost\"",
        1,
        "include_localhost",
    ));

    // --- primary_key is an RSA type; every enum-valued key. ---
    for bad in ["ecdsa-p256", "ecdsa-p384", "rsa-1024"] {
        let t = tables(b, &format!("[keystores]\nprimary_key = \"{bad}\""));
        rows.push(row(
            format!("primary_key {bad}"),
            t,
            "keystores.primary_key",
            "primary_key",
            1,
            "",
        ));
    }
    for bad in ["rsa-1024", "ed25519", "RSA-2048"] {
        let t = tables(b, &format!("[pki]\nkey = \"{bad}\""));
        rows.push(row(format!("pki.key {bad}"), t, "pki.key", "key = ", 1, ""));
    }
    for bad in ["jceks", "p12", "pkcs11"] {
        let t = tables(b, &format!("[keystores]\nformat = \"{bad}\""));
        rows.push(row(
            format!("keystores.format {bad}"),
            t,
            "keystores.format",
            "format = ",
            1,
            "",
        ));
    }
    for bad in ["mutual", "per_node", "none"] {
        let t = tables(b, &format!("[keystores]\ntls = \"{bad}\""));
        rows.push(row(
            format!("keystores.tls {bad}"),
            t,
            "keystores.tls",
            "tls = ",
            1,
            "",
        ));
    }
    for bad in ["apim-5.0", "apim-2.6.0", "APIM-2.6", "am-4.x"] {
        let t = edit(b, PRODUCT, &format!("product = \"{bad}\""));
        rows.push(row(
            format!("product {bad}"),
            t,
            "product",
            "product = ",
            1,
            "",
        ));
    }
    // A profile that is not valid for the product.
    for (product, profile) in [
        ("apim-2.6", "control-plane"),
        ("apim-2.6", "devportal"),
        ("apim-2.6", "keymanager"),
    ] {
        let t = edit(
            b,
            "profile = \"key-manager\"",
            &format!("profile = \"{profile}\""),
        );
        rows.push(row(
            format!("profile {profile} in {product}"),
            t,
            "node[1].profile",
            &format!("profile = \"{profile}\""),
            1,
            "",
        ));
    }
    for profile in ["publisher", "store", "gateway-manager"] {
        let t = append(
            &apim4x(),
            &format!("[[node]]\nname = \"x\"\nprofile = \"{profile}\"\nhost = \"x.acme.internal\""),
        );
        rows.push(row(
            format!("profile {profile} in apim-4.x"),
            t,
            "node[4].profile",
            &format!("profile = \"{profile}\""),
            1,
            "",
        ));
    }

    // --- Subject fields. ---
    for bad in ["USA", "U", "1A", ""] {
        let t = tables(b, &format!("[pki]\ncountry = \"{bad}\""));
        rows.push(row(
            format!("country {bad:?}"),
            t,
            "pki.country",
            "country",
            1,
            "",
        ));
    }
    let t = tables(b, "[pki]\norganization = \"\"");
    rows.push(row(
        "empty organization",
        t,
        "pki.organization",
        "organization",
        1,
        "",
    ));
    let t = edit(b, "name = \"acme-dev\"", "name = \"\"");
    rows.push(row(
        "empty deployment name",
        t,
        "name",
        "name = \"\"",
        1,
        "",
    ));

    // --- Unknown keys are errors. ---
    let t = after(b, "name = \"acme-dev\"", "nmae = \"acme\"");
    rows.push(row("unknown top-level key", t, "nmae", "nmae", 1, "nmae"));
    let t = tables(b, "[pky]\nkey = \"rsa-2048\"");
    rows.push(row("unknown top-level table", t, "pky", "[pky]", 1, "pky"));
    let t = tables(b, "[pki]\nkye = \"rsa-2048\"");
    rows.push(row("unknown key in [pki]", t, "kye", "kye", 1, "kye"));
    let t = tables(b, "[pki.ca]\nvalidity = 3650");
    rows.push(row(
        "unknown key in [pki.ca]",
        t,
        "validity",
        "validity",
        1,
        "validity",
    ));
    let t = tables(b, "[keystores]\nfromat = \"jks\"");
    rows.push(row(
        "unknown key in [keystores]",
        t,
        "fromat",
        "fromat",
        1,
        "fromat",
    ));
    let t = tables(b, "[passwords]\ntsl = \"APIM_TLS_PASSWORD\"");
    rows.push(row("unknown key in [passwords]", t, "tsl", "tsl", 1, "tsl"));
    let t = after(b, KM_HOST, "hots = \"km2.dev.acme.internal\"");
    rows.push(row("unknown key in [[node]]", t, "hots", "hots", 1, "hots"));
    let t = append(
        b,
        "[[load_balancer]]\nhost = \"lb.dev.acme.internal\"\nfronts = \"gateway-worker\"\nhots = \"x\"",
    );
    rows.push(row(
        "unknown key in [[load_balancer]]",
        t,
        "hots",
        "hots",
        1,
        "hots",
    ));

    // --- Missing required keys. ---
    let t = edit(b, KM_HOST, "");
    rows.push(row("node without host", t, "node", "[[node]]", 1, "host"));
    let t = edit(b, "name = \"acme-dev\"\n", "");
    let lines = vec![1, line_of(&t, PRODUCT, 1)];
    rows.push(Row {
        what: "no deployment name".into(),
        text: t,
        key: "name",
        lines,
        message: "name",
    });
    let t = edit(b, "product = \"apim-2.6\"\n", "");
    let lines = vec![1, line_of(&t, "name = \"acme-dev\"", 1)];
    rows.push(Row {
        what: "no product".into(),
        text: t,
        key: "product",
        lines,
        message: "product",
    });
    let t = append(b, "[[load_balancer]]\nhost = \"lb.dev.acme.internal\"");
    rows.push(row(
        "load balancer without fronts",
        t,
        "load_balancer",
        "[[load_balancer]]",
        1,
        "fronts",
    ));

    // --- Wrong types. ---
    let t = after(b, KM_HOST, "offset = \"1\"");
    rows.push(row("offset as a string", t, "offset", "offset", 1, ""));
    let t = tables(b, "[pki]\ninclude_localhost = \"yes\"");
    rows.push(row(
        "include_localhost as a string",
        t,
        "include_localhost",
        "include_localhost",
        1,
        "",
    ));
    let t = tables(b, "[pki]\nvalidity_days = \"397\"");
    rows.push(row(
        "validity_days as a string",
        t,
        "validity_days",
        "validity_days",
        1,
        "",
    ));
    let t = after(b, KM_HOST, "extra_sans = \"km.acme.internal\"");
    rows.push(row(
        "extra_sans as a string",
        t,
        "extra_sans",
        "extra_sans",
        1,
        "",
    ));

    // --- TOML syntax errors. ---
    let t = edit(b, KM_HOST, "host = \"km.dev.acme.internal");
    rows.push(row(
        "unterminated string",
        t,
        "host",
        "host = \"km.dev",
        1,
        "",
    ));
    let t = after(b, KM_HOST, "host = \"km2.dev.acme.internal\"");
    rows.push(row("duplicate key", t, "host", "km2.dev", 1, ""));
    let t = edit(b, KM_HOST, "host = ");
    rows.push(row("missing value", t, "host", "host = ", 1, ""));

    // --- [pki.ca]: a CA you bring needs both cert and key. ---
    let t = tables(b, "[pki.ca]\ncert = \"corp.pem\"");
    rows.push(row(
        "[pki.ca] cert without key",
        t,
        "pki.ca",
        "cert = ",
        1,
        "",
    ));
    let t = tables(b, "[pki.ca]\nkey = \"corp.key\"");
    rows.push(row(
        "[pki.ca] key without cert",
        t,
        "pki.ca",
        "key = ",
        1,
        "",
    ));

    // --- [passwords] names environment variables. ---
    for (role, bad) in [
        ("tls", "my-password"),
        ("primary", "1ABC"),
        ("truststore", ""),
        ("tls", "APIM TLS"),
        ("primary", "${APIM_PW}"),
    ] {
        let t = tables(b, &format!("[passwords]\n{role} = \"{bad}\""));
        let key = match role {
            "tls" => "passwords.tls",
            "primary" => "passwords.primary",
            _ => "passwords.truststore",
        };
        rows.push(row(
            format!("password variable {role} = {bad:?}"),
            t,
            key,
            &format!("{role} = "),
            1,
            "",
        ));
    }
    rows
}

/// The parts of `error: <file>:<line>: <key>: <message>`.
fn parse_topology_error(stderr: &str, file: &str) -> Option<(usize, String, String)> {
    let first = stderr.lines().next()?;
    let rest = first.strip_prefix("error: ")?.strip_prefix(file)?;
    let rest = rest.strip_prefix(':')?;
    let (line, rest) = rest.split_once(':')?;
    let line = line.parse().ok()?;
    let (key, message) = rest.strip_prefix(' ')?.split_once(": ")?;
    Some((line, key.to_string(), message.to_string()))
}

#[test]
fn every_topology_rule_is_an_exit_2_error_naming_file_line_and_key() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut failures = Vec::new();
    let rows = rows();
    for (i, row) in rows.iter().enumerate() {
        let dir = tmp.path().join(format!("row{i}"));
        std::fs::create_dir(&dir).expect("mkdir");
        let topo = write_topology(&dir, &row.text);
        let out = dir.join("out");
        let r = run(&generate_args(&topo, &out), &[]);
        let problem = (|| -> Option<String> {
            if let Some(p) = input_error_problem(&r, &[s(&topo)]) {
                return Some(p);
            }
            if out.exists() {
                return Some(format!("{} was created", out.display()));
            }
            let Some((line, key, message)) = parse_topology_error(&r.stderr, s(&topo)) else {
                return Some(format!(
                    "not `error: {}:<line>: <key>: <message>`: {}",
                    topo.display(),
                    r.stderr
                ));
            };
            if !row.lines.contains(&line) {
                return Some(format!(
                    "line {line}, expected {:?}: {}",
                    row.lines, r.stderr
                ));
            }
            if !key.contains(row.key) {
                return Some(format!(
                    "key `{key}` does not contain `{}`: {}",
                    row.key, r.stderr
                ));
            }
            if !message.contains(row.message) {
                return Some(format!(
                    "message does not mention `{}`: {}",
                    row.message, r.stderr
                ));
            }
            None
        })();
        if let Some(p) = problem {
            failures.push(format!("[{}] {}\n    {}", i, row.what, p.trim()));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} rows failed:\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n")
    );
}

/// Near misses of the rules that are valid.
#[test]
fn valid_edge_cases_are_accepted() {
    let base = minimal_example();
    let b = base.as_str();
    let long63 = format!("host = \"{}.dev.acme.internal\"", "k".repeat(63));
    let cases: Vec<(&str, String)> = vec![
        ("host is an IPv4 address", edit(b, KM_HOST, "host = \"10.0.1.11\"")),
        ("host is an IPv6 address", edit(b, KM_HOST, "host = \"fd00::11\"")),
        ("host with a 63-character label", edit(b, KM_HOST, &long63)),
        (
            "upper-case host (lower-cased on read)",
            edit(b, KM_HOST, "host = \"KM.Dev.Acme.Internal\""),
        ),
        (
            "two nodes share a host with different offsets",
            after(&edit(b, PUB_HOST, KM_HOST), "name = \"publisher\"", "offset = 1"),
        ),
        (
            "wildcard extra SAN over the whole leftmost label",
            after(b, KM_HOST, "extra_sans = [\"*.apis.acme.internal\", \"km.acme.internal\"]"),
        ),
        ("largest offset 54424", after(b, KM_HOST, "offset = 54424")),
        ("63-character node name", edit(b, KM_NAME, &format!("name = \"{}\"", "n".repeat(63)))),
        (
            "48-character deployment name",
            edit(b, "name = \"acme-dev\"", &format!("name = \"{}\"", "d".repeat(48))),
        ),
        (
            "node host localhost with include_localhost (the default)",
            edit(b, KM_HOST, "host = \"localhost\""),
        ),
        ("ip IPv6", after(b, KM_HOST, "ip = \"fd00::1\"")),
        (
            "renew_before_days one below validity_days",
            tables(b, "[pki]\nvalidity_days = 30\nrenew_before_days = 29"),
        ),
        (
            "a load balancer in front of a single node",
            append(b, "[[load_balancer]]\nhost = \"km.lb.acme.internal\"\nfronts = \"key-manager\""),
        ),
        (
            "gateway-manager with two workers behind a load balancer",
            append(
                b,
                "[[node]]\nname = \"gateway2\"\nprofile = \"gateway-worker\"\nhost = \"gw2.dev.acme.internal\"\n\n\
                 [[node]]\nname = \"gwm\"\nprofile = \"gateway-manager\"\nhost = \"gwm.dev.acme.internal\"\n\n\
                 [[load_balancer]]\nhost = \"gw.lb.acme.internal\"\nfronts = \"gateway-worker\"",
            ),
        ),
        (
            "apim-3.2 accepts store as devportal's old name",
            edit(b, PRODUCT, "product = \"apim-3.2\""),
        ),
        ("apim-4.x without the optional key-manager", apim4x()),
        (
            "every enum value at once",
            tables(
                b,
                "[pki]\nkey = \"ecdsa-p384\"\ncountry = \"DE\"\n\n[keystores]\nformat = \"pkcs12-legacy\"\ntls = \"shared\"\nprimary_alias = \"wso2.carbon_1-a\"\nprimary_key = \"rsa-4096\"\n\n[passwords]\ntls = \"TLS_PW_1\"\nprimary = \"_PRIMARY\"",
            ),
        ),
    ];
    // Validation only (the library's parser, which every command runs first): `plan` would also
    // make keys, seconds per case in a debug build.
    let mut failures = Vec::new();
    for (what, text) in &cases {
        if let Err(e) = Topology::parse(text, Path::new("/topologies/topology.toml")) {
            failures.push(format!("{what}: {e}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn inspect_json(file: &Path, password: &str) -> serde_json::Value {
    let r = run(
        &[
            "inspect",
            s(file),
            "--password-env",
            "INSPECT_PW",
            "--format",
            "json",
        ],
        &[("INSPECT_PW", password)],
    );
    assert_eq!(r.code, 0, "inspect {}: {}", file.display(), r.stderr);
    serde_json::from_str(&r.stdout).expect("inspect json")
}

/// A host that is an IP address gets it as CN and IP SAN; a wildcard extra SAN is issued as is.
#[test]
fn ip_host_gets_cn_and_ip_san_and_wildcard_san_is_issued() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let text = after(
        &edit(&minimal_example(), KM_HOST, "host = \"10.0.1.11\""),
        "host = \"gw.dev.acme.internal\"",
        "extra_sans = [\"*.apis.acme.internal\"]",
    );
    let topo = write_topology(tmp.path(), &text);
    let out = tmp.path().join("out");
    generate(&topo, &out, &[]);
    let tls = secrets(&out)["tls"].clone();

    let km = inspect_json(&out.join(TLS_JKS), &tls);
    let cert = &km["entries"][0]["certificate"];
    assert_eq!(
        cert["common_names"],
        serde_json::json!(["10.0.1.11"]),
        "{cert}"
    );
    let ips = cert["ip_addresses"].as_array().expect("ip_addresses");
    assert!(ips.contains(&serde_json::json!("10.0.1.11")), "{cert}");
    let dns = cert["dns_names"].as_array().expect("dns_names");
    assert!(
        !dns.contains(&serde_json::json!("10.0.1.11")),
        "an IP must not be a DNS SAN: {cert}"
    );

    let gw = inspect_json(
        &out.join("nodes/gateway/repository/resources/security/gateway-tls.jks"),
        &tls,
    );
    let dns = gw["entries"][0]["certificate"]["dns_names"].to_string();
    assert!(dns.contains("\"*.apis.acme.internal\""), "{dns}");
}

// ---------------------------------------------------------------------------------------------
// Other bad input
// ---------------------------------------------------------------------------------------------

#[test]
fn topology_that_does_not_exist_or_is_a_directory() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = tmp.path().join("out");
    let missing = tmp.path().join("nope.toml");
    for cmd in ["generate", "plan"] {
        let r = run(&[cmd, s(&missing), "--out", s(&out)], &[]);
        assert_input_error(&r, &[s(&missing)]);
        assert!(!out.exists(), "{cmd} created {}", out.display());
    }
    let dir = tmp.path().join("topology.toml");
    std::fs::create_dir(&dir).expect("mkdir");
    let r = run(&generate_args(&dir, &out), &[]);
    assert_input_error(&r, &[s(&dir)]);
    assert!(!out.exists());
}

#[test]
fn an_error_shows_its_cause_on_its_own_line_then_the_hint() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let r = run(&["verify", s(tmp.path())], &[]);
    assert_input_error(&r, &["inventory.json"]);
    let lines: Vec<&str> = r.stderr.lines().collect();
    let inventory = tmp.path().join("inventory.json");
    assert_eq!(
        lines[0],
        format!("error: {}: cannot read", inventory.display()),
        "{}",
        r.stderr
    );
    assert!(
        lines[1].starts_with("  caused by: No such file or directory"),
        "the OS error is the cause, on its own line:\n{}",
        r.stderr
    );
    assert_eq!(
        lines[2..],
        ["hint: point verify at a directory made by `apim-pki generate`"],
        "{}",
        r.stderr
    );
}

/// Makes a set whose CA and load-balancer files serve as "corporate" CA files: returns
/// (ca.crt, ca.key, a leaf cert (chain) and its key).
fn ca_material(tmp: &Path) -> (Vec<u8>, Vec<u8>, Vec<u8>, Vec<u8>) {
    let src = tmp.join("source");
    std::fs::create_dir(&src).expect("mkdir");
    let text = append(
        &minimal_example(),
        "[[load_balancer]]\nhost = \"gw.lb.acme.internal\"\nfronts = \"gateway-worker\"",
    );
    let topo = write_topology(&src, &text);
    let out = src.join("out");
    generate(&topo, &out, &[]);
    let read = |rel: &str| std::fs::read(out.join(rel)).expect(rel);
    (
        read("ca/ca.crt"),
        read("ca/ca.key"),
        read("load-balancers/gw.lb.acme.internal/tls.crt"),
        read("load-balancers/gw.lb.acme.internal/tls.key"),
    )
}

/// A topology in `dir` that brings `cert` / `key` (written next to it unless `None`).
fn corporate_topology(dir: &Path, cert: Option<&[u8]>, key: Option<&[u8]>) -> PathBuf {
    std::fs::create_dir_all(dir).expect("mkdir");
    if let Some(c) = cert {
        std::fs::write(dir.join("corp.pem"), c).expect("write cert");
    }
    if let Some(k) = key {
        std::fs::write(dir.join("corp.key"), k).expect("write key");
    }
    let text = tables(
        &minimal_example(),
        "[pki.ca]\ncert = \"corp.pem\"\nkey = \"corp.key\"",
    );
    write_topology(dir, &text)
}

#[test]
fn bad_ca_files_are_exit_2_naming_the_file_and_write_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (ca_crt, ca_key, leaf_crt, leaf_key) = ca_material(tmp.path());
    // (what, cert file, key file, the file the message names, another word it must contain)
    type Case<'a> = (&'a str, Option<Vec<u8>>, Option<Vec<u8>>, &'a str, &'a str);
    let cases: Vec<Case> = vec![
        (
            "missing cert file",
            None,
            Some(ca_key.clone()),
            "corp.pem",
            "",
        ),
        (
            "missing key file",
            Some(ca_crt.clone()),
            None,
            "corp.key",
            "",
        ),
        (
            "cert that is not PEM",
            Some(b"this is not a certificate\n".to_vec()),
            Some(ca_key.clone()),
            "corp.pem",
            "",
        ),
        (
            "cert that is DER, not PEM",
            Some(apim_pki::pem::certs_from_pem(&ca_crt).expect("pem")[0].clone()),
            Some(ca_key.clone()),
            "corp.pem",
            "",
        ),
        (
            "key that is not PEM",
            Some(ca_crt.clone()),
            Some(b"garbage\n".to_vec()),
            "corp.key",
            "",
        ),
        (
            "key that does not match the cert",
            Some(ca_crt.clone()),
            Some(leaf_key.clone()),
            "corp.key",
            "",
        ),
        (
            "cert that is not a CA",
            Some(leaf_crt.clone()),
            Some(leaf_key.clone()),
            "corp.pem",
            "CA",
        ),
    ];
    let mut failures = Vec::new();
    for (i, (what, cert, key, names, mentions)) in cases.iter().enumerate() {
        let dir = tmp.path().join(format!("case{i}"));
        let topo = corporate_topology(&dir, cert.as_deref(), key.as_deref());
        let out = dir.join("out");
        let r = run(&generate_args(&topo, &out), &[]);
        let problem = input_error_problem(&r, &[names, mentions]).or_else(|| {
            (!snapshot(&out).is_empty())
                .then(|| format!("files were written into {}", out.display()))
        });
        if let Some(p) = problem {
            failures.push(format!("{what}: {p}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// An input error found after the topology parsed (a CA file, a password) must not create the
/// output directory either: "nothing written" (cli.md, exit code 2).
#[test]
fn input_errors_after_parsing_create_no_output_directory() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let topo = corporate_topology(&tmp.path().join("ca"), None, None);
    let out = tmp.path().join("ca/out");
    let r = run(&generate_args(&topo, &out), &[]);
    assert_input_error(&r, &["corp.pem"]);
    let pw_dir = tmp.path().join("pw");
    std::fs::create_dir(&pw_dir).expect("mkdir");
    let topo2 = write_topology(
        &pw_dir,
        &tables(&minimal_example(), "[passwords]\ntls = \"TLS_PW\""),
    );
    let out2 = pw_dir.join("out");
    let r2 = run(
        &generate_args(&topo2, &out2),
        &[("TLS_PW", "has-${x}-inside")],
    );
    assert_input_error(&r2, &["TLS_PW"]);
    assert!(
        !out.exists() && !out2.exists(),
        "an input error created the output directory: {:?} {:?}",
        all_paths(&out),
        all_paths(&out2)
    );
}

#[test]
fn output_directory_that_cannot_be_written() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let topo = write_topology(tmp.path(), &minimal_example());

    // Always: --out below a regular file.
    let file = tmp.path().join("regular-file");
    std::fs::write(&file, b"not a directory\n").expect("write");
    let out = file.join("sub");
    let r = run(&generate_args(&topo, &out), &[]);
    assert_input_error(&r, &[s(&file)]);
    assert_eq!(std::fs::read(&file).expect("read"), b"not a directory\n");

    // Only when not root (root ignores permissions): a read-only directory.
    use std::os::unix::fs::PermissionsExt;
    let ro = tmp.path().join("read-only");
    std::fs::create_dir(&ro).expect("mkdir");
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).expect("chmod");
    let probe = ro.join("probe");
    let root = std::fs::write(&probe, b"x").is_ok();
    if root {
        let _ = std::fs::remove_file(&probe);
        eprintln!("note: running as root, which ignores mode 0555; skipping the read-only case");
    } else {
        let r = run(&generate_args(&topo, &ro), &[]);
        assert_input_error(&r, &[s(&ro)]);
        assert!(all_paths(&ro).is_empty(), "{:?}", all_paths(&ro));
        let sub = ro.join("sub");
        let r = run(&generate_args(&topo, &sub), &[]);
        assert_input_error(&r, &[s(&ro)]);
        assert!(!sub.exists());
    }
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o755)).expect("chmod back");
}

#[test]
fn corrupt_keystore_in_dir_is_exit_2_and_changes_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let text = tables(&minimal_example(), "[passwords]\ntls = \"TLS_PW\"");
    let env = [("TLS_PW", "first-password-1")];
    let topo = write_topology(tmp.path(), &text);
    let out = tmp.path().join("out");
    generate(&topo, &out, &env);
    let ks = out.join(TLS_JKS);
    let good = std::fs::read(&ks).expect("read");

    // Truncated to 100 bytes.
    std::fs::write(&ks, &good[..100]).expect("truncate");
    let before = snapshot(&out);
    let r = run(&generate_args(&topo, &out), &env);
    assert_input_error(&r, &[TLS_JKS]);
    assert!(before == snapshot(&out), "a failed generate changed files");

    // Empty.
    std::fs::write(&ks, b"").expect("empty");
    let before = snapshot(&out);
    let r = run(&generate_args(&topo, &out), &env);
    assert_input_error(&r, &[TLS_JKS]);
    assert!(before == snapshot(&out), "a failed generate changed files");

    // Restored: the set is whole again.
    std::fs::write(&ks, &good).expect("restore");
    let r = generate(&topo, &out, &env);
    assert!(r.stdout.contains("up to date"), "{}", r.stdout);
}

/// Generates the minimal set (TLS password from TLS_PW) into `dir/out`, and another set named
/// `other_name` with keystore format `other_format` into `dir/other/out`; copies the other set's
/// km TLS keystore over this set's km-tls.jks and runs generate again.
fn foreign_keystore_rerun(dir: &Path, other_name: &str, other_format: &str) -> (PathBuf, Run) {
    let env = [("TLS_PW", "first-password-1")];
    let text = tables(&minimal_example(), "[passwords]\ntls = \"TLS_PW\"");
    let topo = write_topology(dir, &text);
    let out = dir.join("out");
    generate(&topo, &out, &env);

    let other_dir = dir.join("other");
    std::fs::create_dir(&other_dir).expect("mkdir");
    let other_text = tables(
        &edit(
            &minimal_example(),
            "name = \"acme-dev\"",
            &format!("name = \"{other_name}\""),
        ),
        &format!("[keystores]\nformat = \"{other_format}\"\n\n[passwords]\ntls = \"TLS_PW\""),
    );
    let other_topo = write_topology(&other_dir, &other_text);
    let other_out = other_dir.join("out");
    generate(&other_topo, &other_out, &env);
    let ext = if other_format == "jks" { "jks" } else { "p12" };
    let foreign = std::fs::read(other_out.join(format!(
        "nodes/km/repository/resources/security/km-tls.{ext}"
    )))
    .expect("the other set's km TLS keystore");
    std::fs::write(out.join(TLS_JKS), &foreign).expect("copy");

    let before = snapshot(&out);
    let r = run(&generate_args(&topo, &out), &env);
    let after = snapshot(&out);
    let changed: Vec<&String> = after
        .iter()
        .filter(|(k, v)| before.get(*k) != Some(*v))
        .map(|(k, _)| k)
        .collect();
    assert!(
        changed.is_empty() || r.code == 0,
        "a failed generate changed {changed:?}"
    );
    assert!(!r.stderr.contains("first-password-1"));
    (out, r)
}

/// A PKCS#12 keystore of another deployment (same password) copied over the .jks name.
#[test]
fn pkcs12_from_another_set_over_the_jks_name_is_exit_2() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (_, r) = foreign_keystore_rerun(tmp.path(), "acme-other", "pkcs12");
    assert_input_error(&r, &[TLS_JKS]);
}

/// The same, from a set that has the same deployment name, so its CA has the same subject
/// (another environment of one deployment, or the set before it was regenerated from scratch):
/// the keystore's certificate is not signed by this set's CA, so generate must not keep it.
#[test]
#[cfg_attr(
    not(apim_pki_openssl),
    ignore = "needs openssl (apt-get install openssl); .ci/run installs it all"
)]
fn keystore_issued_by_another_ca_with_the_same_name_is_not_kept() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (out, r) = foreign_keystore_rerun(tmp.path(), "acme-dev", "jks");
    let chain_ok = std::process::Command::new("openssl")
        .arg("version")
        .output()
        .is_ok()
        .then(|| {
            let pw = Password::new("first-password-1".into());
            let bytes = std::fs::read(out.join(TLS_JKS)).expect("read");
            let (ks, _) = Keystore::decode(&bytes, &pw).expect("decode");
            let leaf = ks.entries[0].cert().expect("leaf").to_vec();
            let leaf_pem = out.join("leaf-check.pem");
            std::fs::write(&leaf_pem, apim_pki::pem::certs_to_pem([leaf.as_slice()]))
                .expect("write");
            let v = std::process::Command::new("openssl")
                .args(["verify", "-CAfile"])
                .arg(out.join("ca/ca.crt"))
                .arg(&leaf_pem)
                .output()
                .expect("openssl verify");
            std::fs::remove_file(&leaf_pem).expect("rm");
            v.status.success()
        });
    assert!(
        input_error_problem(&r, &[TLS_JKS]).is_none(),
        "generate accepted a TLS keystore whose certificate is not signed by the set's CA \
         (it only has the CA's subject as issuer); exit {}, leaf verifies against ca/ca.crt: \
         {chain_ok:?}\nstdout: {}\nstderr: {}",
        r.code,
        r.stdout,
        r.stderr
    );
}

#[test]
fn wrong_or_missing_password_on_rerun_is_exit_2_and_changes_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let text = tables(&minimal_example(), "[passwords]\ntls = \"TLS_PW\"");
    let topo = write_topology(tmp.path(), &text);
    let out = tmp.path().join("out");
    generate(&topo, &out, &[("TLS_PW", "first-password-1")]);
    let before = snapshot(&out);

    let r = run(
        &generate_args(&topo, &out),
        &[("TLS_PW", "other-password-2")],
    );
    assert_input_error(&r, &["-tls.jks"]);
    for pw in ["first-password-1", "other-password-2"] {
        assert!(!r.stderr.contains(pw), "a password leaked: {}", r.stderr);
    }
    assert!(before == snapshot(&out), "a failed generate changed files");

    let r = run(&generate_args(&topo, &out), &[]);
    assert_input_error(&r, &["TLS_PW"]);
    assert!(before == snapshot(&out), "a failed generate changed files");

    // The right password: nothing to do.
    let r = generate(&topo, &out, &[("TLS_PW", "first-password-1")]);
    assert!(r.stdout.contains("up to date"), "{}", r.stdout);
}

#[test]
fn corrupt_inventory_is_exit_2_and_changes_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let topo = write_topology(tmp.path(), &minimal_example());
    let out = tmp.path().join("out");
    generate(&topo, &out, &[]);
    let inventory = out.join("inventory.json");
    let good = std::fs::read(&inventory).expect("read");
    for bad in [
        b"{ not json".to_vec(),
        good[..good.len() / 2].to_vec(),
        b"{}".to_vec(),
        b"[]".to_vec(),
    ] {
        std::fs::write(&inventory, &bad).expect("corrupt");
        let before = snapshot(&out);
        for cmd in ["generate", "plan"] {
            let r = run(&[cmd, s(&topo), "--out", s(&out)], &[]);
            assert_input_error(&r, &["inventory.json"]);
            assert!(before == snapshot(&out), "{cmd} changed files");
        }
    }
}

#[test]
fn password_with_carbon_expansion_is_refused_without_showing_it() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let text = tables(
        &minimal_example(),
        "[passwords]\ntls = \"TLS_PW\"\nprimary = \"PRIMARY_PW\"",
    );
    let topo = write_topology(tmp.path(), &text);
    let out = tmp.path().join("out");
    for (var, value) in [
        ("TLS_PW", "s3cret${carbon.home}zz"),
        ("PRIMARY_PW", "${PASSWORD}-Xy9"),
    ] {
        let env = [
            ("TLS_PW", "tls-is-fine-1"),
            ("PRIMARY_PW", "primary-is-fine-1"),
        ];
        let env: Vec<(&str, &str)> = env
            .iter()
            .map(|&(k, v)| if k == var { (k, value) } else { (k, v) })
            .collect();
        let r = run(&generate_args(&topo, &out), &env);
        assert_input_error(&r, &[var]);
        assert!(
            !r.stderr.contains(value) && !r.stdout.contains(value),
            "the password itself was printed: {}",
            r.stderr
        );
        assert!(snapshot(&out).is_empty(), "files were written");
    }
}

#[test]
fn inspect_bad_files_are_exit_2() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let topo = write_topology(tmp.path(), &minimal_example());
    let out = tmp.path().join("out");
    generate(&topo, &out, &[]);
    let tls = secrets(&out)["tls"].clone();
    let inspect = |file: &Path, pw: &str| {
        run(
            &["inspect", s(file), "--password-env", "INSPECT_PW"],
            &[("INSPECT_PW", pw)],
        )
    };

    let missing = tmp.path().join("nope.jks");
    assert_input_error(&inspect(&missing, &tls), &[s(&missing)]);

    let good = std::fs::read(out.join(TLS_JKS)).expect("read");
    let truncated = tmp.path().join("truncated.jks");
    std::fs::write(&truncated, &good[..100]).expect("write");
    assert_input_error(&inspect(&truncated, &tls), &[s(&truncated)]);

    let r = inspect(&out.join(TLS_JKS), "wrong-password-9");
    assert_input_error(&r, &[TLS_JKS, "password"]);
    assert!(!r.stderr.contains("wrong-password-9"));

    let garbage = tmp.path().join("garbage.bin");
    std::fs::write(&garbage, b"\x01\x02\x03garbage").expect("write");
    assert_input_error(&inspect(&garbage, &tls), &[s(&garbage)]);

    let r = run(
        &[
            "inspect",
            s(&out.join(TLS_JKS)),
            "--password-env",
            "UNSET_PW_VAR",
        ],
        &[],
    );
    assert_input_error(&r, &["UNSET_PW_VAR"]);

    // The right password works.
    let r = inspect(&out.join(TLS_JKS), &tls);
    assert_eq!(r.code, 0, "{}", r.stderr);
}

const BUSY: &str = "another apim-pki command is writing";

/// Two `generate` processes on one DIR: the second exits 2 while the first holds the lock.
#[test]
fn second_writer_is_refused_while_the_first_runs() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let topo = write_topology(tmp.path(), &big_topology(300));
    let mut observed = false;
    for attempt in 0..5 {
        let out = tmp.path().join(format!("out{attempt}"));
        let mut first = spawn_generate(&topo, &out);
        let deadline = Instant::now() + Duration::from_secs(30);
        while !out.join(".lock").exists()
            && first.try_wait().expect("try_wait").is_none()
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(1));
        }
        // The lock file is created just before it is locked.
        std::thread::sleep(Duration::from_millis(20));
        let first_running = first.try_wait().expect("try_wait").is_none();
        let second = run(&generate_args(&topo, &out), &[]);
        let first_out = first.wait_with_output().expect("wait");
        assert!(
            first_out.status.success(),
            "the first generate failed: {}",
            String::from_utf8_lossy(&first_out.stderr)
        );
        if second.code == 2 {
            assert_input_error(&second, &[BUSY, s(&out)]);
            observed = true;
            // The first run's set is whole: a third run has nothing to do.
            let third = generate(&topo, &out, &[]);
            assert!(third.stdout.contains("up to date"), "{}", third.stdout);
            break;
        }
        assert_eq!(
            second.code, 0,
            "second generate: {}\n{}",
            second.stdout, second.stderr
        );
        eprintln!(
            "note: attempt {attempt}: the first generate was {} when the second started; retrying",
            if first_running {
                "still running (but finished before the second locked)"
            } else {
                "already done"
            }
        );
    }
    if !observed {
        eprintln!("note: could not observe two concurrent generates in 5 tries; see held_lock_refuses_a_writer");
        held_lock_refuses_a_writer();
    }
}

/// Deterministic version: the test holds DIR/.lock itself.
#[test]
fn held_lock_refuses_a_writer() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let topo = write_topology(tmp.path(), &minimal_example());
    let out = tmp.path().join("out");
    generate(&topo, &out, &[]);
    let before = snapshot(&out);
    let lock = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(out.join(".lock"))
        .expect("open .lock");
    lock.try_lock().expect("the test takes the lock");
    // A change the writer would have to make.
    let grown = append(
        &minimal_example(),
        "[[load_balancer]]\nhost = \"km.lb.acme.internal\"\nfronts = \"key-manager\"",
    );
    write_topology(tmp.path(), &grown);
    let r = run(&generate_args(&topo, &out), &[]);
    assert_input_error(&r, &[BUSY, s(&out)]);
    assert!(before == snapshot(&out), "a refused writer changed files");
    // plan does not write, so it does not need the lock.
    let plan = run(&["plan", s(&topo), "--out", s(&out)], &[]);
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    drop(lock);
    generate(&topo, &out, &[]);
}

// ---------------------------------------------------------------------------------------------
// Interrupted writes
// ---------------------------------------------------------------------------------------------

/// Checks that every non-dot file below `out` is complete. Returns the number of keystores.
fn assert_complete_files(out: &Path, passwords: &[Password]) -> usize {
    let mut keystores = 0;
    let mut problems = Vec::new();
    for rel in all_paths(out) {
        let path = out.join(&rel);
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if path.is_dir() || name.starts_with('.') {
            continue;
        }
        let bytes = std::fs::read(&path).expect("read");
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        let problem: Option<String> = match ext {
            "jks" | "p12" => {
                keystores += 1;
                if passwords.is_empty() {
                    // Without passwords the integrity check fails, but only after the whole
                    // structure parsed: a truncated file is Corrupt, not WrongPassword.
                    match Keystore::decode(&bytes, &Password::new("no-password-known".into())) {
                        Ok(_) | Err(KeystoreError::WrongPassword) => None,
                        Err(e) => Some(e.to_string()),
                    }
                } else if passwords
                    .iter()
                    .any(|p| Keystore::decode(&bytes, p).is_ok())
                {
                    None
                } else {
                    Some("does not open with any password of secrets.toml".into())
                }
            }
            "crt" | "pem" => {
                let text = String::from_utf8_lossy(&bytes);
                let begins = text.matches("-----BEGIN ").count();
                let ends = text.matches("-----END ").count();
                match apim_pki::pem::certs_from_pem(&bytes) {
                    Ok(c) if !c.is_empty() && begins == ends && text.ends_with("-----\n") => None,
                    other => Some(format!(
                        "incomplete PEM ({begins} BEGIN, {ends} END): {other:?}"
                    )),
                }
            }
            "key" => apim_pki::Key::from_pem(&bytes, &rel)
                .err()
                .map(|e| e.to_string()),
            "toml" => std::str::from_utf8(&bytes)
                .ok()
                .and_then(|t| t.parse::<toml::Table>().ok())
                .is_none()
                .then(|| "not TOML".to_string()),
            "json" => serde_json::from_slice::<serde_json::Value>(&bytes)
                .err()
                .map(|e| e.to_string()),
            _ => bytes.is_empty().then(|| "empty".to_string()),
        };
        if let Some(p) = problem {
            problems.push(format!("{rel}: {p}"));
        }
    }
    assert!(
        problems.is_empty(),
        "incomplete files after an interrupted generate:\n{}",
        problems.join("\n")
    );
    keystores
}

fn temporaries(out: &Path) -> Vec<String> {
    all_paths(out)
        .into_iter()
        .filter(|p| {
            let name = p.rsplit('/').next().unwrap_or(p);
            name.starts_with('.') && name.contains(".tmp-")
        })
        .collect()
}

/// Kills a 1000-node `generate` (at `when`), then checks the files and that a re-run recovers.
fn interrupted_generate(when: &str) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let topo = write_topology(tmp.path(), &big_topology(996));
    let out = tmp.path().join("out");
    let mut child = spawn_generate(&topo, &out);
    let started = Instant::now();
    match when {
        "150ms" => std::thread::sleep(Duration::from_millis(150)),
        "writing" => {
            // As soon as the first keystore exists (gw0 sorts first, its truststore first): in
            // the middle of the writes, well before the last file.
            let first = out.join("nodes/gw0/repository/resources/security/client-truststore.jks");
            while !first.exists()
                && child.try_wait().expect("try_wait").is_none()
                && started.elapsed() < Duration::from_secs(60)
            {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        _ => unreachable!(),
    }
    let finished_already = child.try_wait().expect("try_wait").is_some();
    let _ = child.kill(); // SIGKILL
    let status = child.wait().expect("wait");
    eprintln!(
        "note: killed after {:?} (finished already: {finished_already}, {status})",
        started.elapsed()
    );

    let passwords: Vec<Password> = if out.join("secrets.toml").exists() {
        secrets(&out).into_values().map(Password::new).collect()
    } else {
        Vec::new()
    };
    let files = all_paths(&out);
    let keystores = assert_complete_files(&out, &passwords);
    eprintln!(
        "note: {} paths, {keystores} keystores, secrets.toml: {}, inventory.json: {}, temporaries: {}",
        files.len(),
        !passwords.is_empty(),
        out.join("inventory.json").exists(),
        temporaries(&out).len()
    );

    // A re-run finishes the job and leaves no temporary file behind.
    let r = run(&generate_args(&topo, &out), &[]);
    assert_eq!(
        r.code,
        0,
        "generate after an interrupted generate ({} keystores were written, secrets.toml {}):\n{}",
        keystores,
        if passwords.is_empty() {
            "was not"
        } else {
            "was"
        },
        r.stderr
    );
    let left = temporaries(&out);
    assert!(
        left.is_empty(),
        "temporary files left behind after the re-run: {} (e.g. {:?})",
        left.len(),
        &left[..left.len().min(3)]
    );
    // "up to date" means the tool opened every keystore with its password and found it whole.
    let again = generate(&topo, &out, &[]);
    assert!(again.stdout.contains("up to date"), "{}", again.stdout);
}

#[test]
fn interrupted_generate_at_150ms_leaves_no_partial_file() {
    interrupted_generate("150ms");
}

#[test]
fn interrupted_generate_while_writing_leaves_no_partial_file() {
    interrupted_generate("writing");
}

// ---------------------------------------------------------------------------------------------
// Reserved aliases (issue 8, item 6)
// ---------------------------------------------------------------------------------------------

/// An alias the set already uses for something else is refused when the topology is read, by
/// `plan` and `generate` alike, naming the file, the line and the key: a truststore holds one
/// entry per alias, so `primary_alias = "<name>-ca"` used to drop the CA from every truststore.
#[test]
fn aliases_the_set_uses_are_reserved() {
    let base = minimal_example();
    let b = base.as_str();
    let lb = "[[load_balancer]]\nhost = \"km\"\nfronts = \"key-manager\"\n";
    let cases: Vec<(&str, String, &str, &str)> = vec![
        (
            "primary alias = the CA's alias",
            tables(b, "[keystores]\nprimary_alias = \"acme-dev-ca\""),
            "keystores.primary_alias",
            "primary_alias = ",
        ),
        (
            "primary alias = the CA's alias after a rollover",
            tables(b, "[keystores]\nprimary_alias = \"acme-dev-ca-g2\""),
            "keystores.primary_alias",
            "primary_alias = ",
        ),
        (
            "primary alias = the alias of the chain above a CA you bring",
            tables(b, "[keystores]\nprimary_alias = \"acme-dev-ca-parent-1\""),
            "keystores.primary_alias",
            "primary_alias = ",
        ),
        (
            "a node named like the CA",
            edit(b, KM_NAME, "name = \"acme-dev-ca\""),
            "node[1].name",
            "name = \"acme-dev-ca\"",
        ),
        (
            "a node named like the primary alias",
            tables(b, "[keystores]\nprimary_alias = \"km\""),
            "node[1].name",
            KM_NAME,
        ),
        (
            "a node named wso2carbon (the primary's truststore alias)",
            edit(b, KM_NAME, "name = \"wso2carbon\""),
            "node[1].name",
            "name = \"wso2carbon\"",
        ),
        (
            "a load balancer host equal to a node name",
            append(b, lb),
            "load_balancer[1].host",
            "host = \"km\"",
        ),
    ];
    let tmp = tempfile::tempdir().expect("tempdir");
    for (i, (what, text, key, needle)) in cases.iter().enumerate() {
        let dir = tmp.path().join(format!("case{i}"));
        std::fs::create_dir(&dir).expect("mkdir");
        let topo = write_topology(&dir, text);
        let out = dir.join("out");
        for cmd in ["plan", "generate"] {
            let r = run(&[cmd, s(&topo), "--out", s(&out)], &[]);
            assert_input_error(&r, &[s(&topo), "reserved"]);
            let (line, got_key, _) = parse_topology_error(&r.stderr, s(&topo))
                .unwrap_or_else(|| panic!("{what} ({cmd}): not file:line: key: {}", r.stderr));
            assert_eq!(
                line,
                line_of(text, needle, 1),
                "{what} ({cmd}): {}",
                r.stderr
            );
            assert_eq!(got_key, *key, "{what} ({cmd}): {}", r.stderr);
            assert!(
                !out.exists(),
                "{what} ({cmd}): {} was created",
                out.display()
            );
        }
    }
    // Near misses stay valid.
    for alias in ["acme-dev-ca2", "acme-dev-cab", "acme-dev", "my-ca"] {
        let text = tables(b, &format!("[keystores]\nprimary_alias = \"{alias}\""));
        Topology::parse(&text, Path::new("t.toml"))
            .unwrap_or_else(|e| panic!("primary_alias = {alias:?} must be accepted: {e}"));
    }
}

// ---------------------------------------------------------------------------------------------
// A key held twice (issue 8, item 2)
// ---------------------------------------------------------------------------------------------

const SEC: &str = "repository/resources/security";

/// A set with a load balancer in front of km, its TLS password from TLS_PW.
fn shared_key_base(dir: &Path) -> (PathBuf, PathBuf) {
    let text = append(
        &tables(&minimal_example(), "[passwords]\ntls = \"TLS_PW\""),
        "[[load_balancer]]\nhost = \"km-lb.dev.acme.internal\"\nfronts = \"key-manager\"\n",
    );
    let topo = write_topology(dir, &text);
    let out = dir.join("base");
    generate(&topo, &out, &[("TLS_PW", "first-password-1")]);
    (topo, out)
}

fn tls_keystore(out: &Path, node: &str) -> PathBuf {
    out.join(format!("nodes/{node}/{SEC}/{node}-tls.jks"))
}

/// Writes a TLS keystore for `node` holding `pkcs8` under `chain`, with the TLS password.
fn write_tls_entry(out: &Path, node: &str, pkcs8: Vec<u8>, chain: Vec<Vec<u8>>) {
    let store = Keystore {
        entries: vec![apim_pki::Entry::PrivateKey {
            alias: node.into(),
            pkcs8: zeroize::Zeroizing::new(pkcs8),
            chain,
        }],
    };
    let bytes = store
        .encode(
            apim_pki::KeystoreFormat::Jks,
            &Password::new("first-password-1".into()),
        )
        .expect("encode");
    std::fs::write(tls_keystore(out, node), bytes).expect("write keystore");
}

fn read_key_entry(path: &Path, password: &str) -> (Vec<u8>, Vec<Vec<u8>>) {
    let bytes = std::fs::read(path).expect("read keystore");
    let (store, _) = Keystore::decode(&bytes, &Password::new(password.into())).expect("opens");
    let entry = store.key_entries().next().cloned();
    match entry {
        Some(apim_pki::Entry::PrivateKey { pkcs8, chain, .. }) => (pkcs8.to_vec(), chain),
        _ => panic!("{}: no key entry", path.display()),
    }
}

fn pem_key(path: &Path) -> Vec<u8> {
    pem::parse(std::fs::read(path).expect("read key"))
        .expect("PEM key")
        .contents()
        .to_vec()
}

fn pem_certs(path: &Path) -> Vec<Vec<u8>> {
    apim_pki::pem::certs_from_pem(&std::fs::read(path).expect("read")).expect("PEM")
}

/// One way to make two artifacts hold one key, the option `rotate` must be given to repair it,
/// and an option that leaves the copy alone.
type Copy = (&'static str, fn(&Path, &str), &'static str, &'static str);

fn copies() -> Vec<Copy> {
    vec![
        (
            // The README's mistake: another node's TLS keystore copied over this one's.
            "publisher's TLS keystore copied over km's",
            |out, pw| {
                let from = tls_keystore(out, "publisher");
                std::fs::copy(from, tls_keystore(out, "km")).expect("copy");
                let _ = pw;
            },
            "--node km",
            "--node store",
        ),
        (
            "the load balancer's key and certificate copied from km",
            |out, pw| {
                let (pkcs8, chain) = read_key_entry(&tls_keystore(out, "km"), pw);
                let lb = out.join("load-balancers/km-lb.dev.acme.internal");
                let key = pem::encode(&pem::Pem::new("PRIVATE KEY", pkcs8));
                std::fs::write(lb.join("tls.key"), key).expect("write key");
                let certs = apim_pki::pem::certs_to_pem(chain.iter().map(Vec::as_slice));
                std::fs::write(lb.join("tls.crt"), certs).expect("write cert");
            },
            "--load-balancer km-lb.dev.acme.internal",
            "--node store",
        ),
        (
            "the primary key and certificate in km's TLS keystore",
            |out, _| {
                let primary = out.join(format!("nodes/km/{SEC}/wso2carbon.jks"));
                let pw = secrets(out)["primary"].clone();
                let (pkcs8, chain) = read_key_entry(&primary, &pw);
                write_tls_entry(out, "km", pkcs8, chain);
            },
            "--node km",
            "--node store",
        ),
        (
            "the CA's key and certificate in km's TLS keystore",
            |out, _| {
                let pkcs8 = pem_key(&out.join("ca/ca.key"));
                write_tls_entry(out, "km", pkcs8, pem_certs(&out.join("ca/ca.crt")));
            },
            "--node km",
            "--node store",
        ),
    ]
}

/// generate, plan and a rotate of something else refuse a set where two artifacts hold one key
/// (exit 2, naming the `rotate` that repairs it, changing nothing); that rotate repairs it.
#[test]
fn a_key_held_twice_is_refused_naming_the_rotate_that_repairs_it() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (topo, base) = shared_key_base(tmp.path());
    let env = [("TLS_PW", "first-password-1")];
    for (i, (what, break_it, repair, other)) in copies().into_iter().enumerate() {
        let out = tmp.path().join(format!("case{i}"));
        copy_files(&base, &out);
        break_it(&out, "first-password-1");
        let before = snapshot(&out);
        let runs = [
            vec!["generate", s(&topo), "--out", s(&out)],
            vec!["plan", s(&topo), "--out", s(&out)],
            ["rotate", s(&topo), "--out", s(&out)]
                .into_iter()
                .chain(other.split(' '))
                .collect(),
        ];
        for args in &runs {
            let r = run(args, &env);
            if let Some(p) = input_error_problem(&r, &["same private key", repair]) {
                panic!("{what}: {}: {p}", args[0]);
            }
            assert!(
                !r.stderr.contains("first-password-1"),
                "{what}: password shown"
            );
            assert!(
                before == snapshot(&out),
                "{what}: {} changed files",
                args[0]
            );
        }
        let args: Vec<&str> = ["rotate", s(&topo), "--out", s(&out)]
            .into_iter()
            .chain(repair.split(' '))
            .collect();
        let r = run(&args, &env);
        assert_eq!(
            r.code, 0,
            "{what}: rotate {repair}: {}{}",
            r.stdout, r.stderr
        );
        let r = run(&["verify", s(&out)], &env);
        assert_eq!(
            r.code, 0,
            "{what}: verify after the repair: {}{}",
            r.stdout, r.stderr
        );
    }
}

/// A node may be named `primary`: it is not taken for the primary key (whose item has that
/// label) in the summary.
#[test]
fn a_node_named_primary_is_not_the_primary_key() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let text = edit(&minimal_example(), KM_NAME, "name = \"primary\"");
    let topo = write_topology(tmp.path(), &text);
    let r = generate(&topo, &tmp.path().join("out"), &[]);
    let line = r
        .stdout
        .lines()
        .find(|l| l.contains("km.dev.acme.internal"))
        .unwrap_or_else(|| panic!("the node `primary` is not in the summary:\n{}", r.stdout));
    assert!(line.trim_start().starts_with("primary "), "{line}");
    assert_eq!(
        r.stdout.matches("the shared primary key").count(),
        1,
        "{}",
        r.stdout
    );
}

/// With `keystores.tls = "shared"` every node serves TLS with the one primary key, by design:
/// generate, plan and rotate go through on such a set.
#[test]
fn the_primary_shared_for_tls_is_not_a_key_held_twice() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let text = tables(&minimal_example(), "[keystores]\ntls = \"shared\"");
    let topo = write_topology(tmp.path(), &text);
    let out = tmp.path().join("out");
    generate(&topo, &out, &[]);
    for args in [
        vec!["plan", s(&topo), "--out", s(&out)],
        vec!["generate", s(&topo), "--out", s(&out)],
        vec!["rotate", s(&topo), "--out", s(&out), "--node", "km"],
    ] {
        let r = run(&args, &[]);
        assert_eq!(r.code, 0, "{}: {}{}", args[0], r.stdout, r.stderr);
    }
    let r = run(&["verify", s(&out)], &[]);
    assert_eq!(r.code, 0, "verify: {}{}", r.stdout, r.stderr);
}
