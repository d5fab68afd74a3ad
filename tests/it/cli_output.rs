//! What the commands print, as an operator reads it: plan lists every artifact (all the
//! needs-rotate ones included), rotate labels replaced files and says what to ship, verify's
//! options that need --live say so, and error messages name the file, key or variable and
//! what to do.

use crate::util;

use crate::util::cli::{generate, minimal_example, run, write_topology};
use crate::util::files::s;

/// The minimal topology with `[pki] key = KEY`.
fn with_key(key: &str) -> String {
    minimal_example().replacen(
        "product = \"apim-2.6\"",
        &format!("product = \"apim-2.6\"\n\n[pki]\nkey = \"{key}\"\n"),
        1,
    )
}

#[test]
fn plan_lists_every_artifact_that_needs_rotate_and_generate_names_how_many() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("pki");
    let topo = write_topology(tmp.path(), &minimal_example());
    generate(&topo, &out, &[]);
    let topo = write_topology(tmp.path(), &with_key("ecdsa-p256"));

    let plan = run(
        &["plan", s(&topo), "--out", s(&out), "--format", "json"],
        &[],
    );
    assert_eq!(
        plan.code, 1,
        "needs-rotate makes plan exit 1: {}",
        plan.stderr
    );
    let json: serde_json::Value = serde_json::from_str(&plan.stdout).unwrap();
    let actions = json["actions"].as_array().unwrap();
    let blocked: Vec<&str> = actions
        .iter()
        .filter(|a| a["action"] == "needs-rotate")
        .map(|a| a["path"].as_str().unwrap())
        .collect();
    assert_eq!(blocked.len(), 5, "every node's TLS keystore: {blocked:?}");
    assert!(
        blocked.iter().all(|p| p.ends_with("-tls.jks")),
        "{blocked:?}"
    );
    assert!(
        actions.len() > blocked.len() + 10,
        "the other artifacts are listed too"
    );
    let text = run(&["plan", s(&topo), "--out", s(&out)], &[]);
    assert_eq!(text.code, 1);
    assert!(text.stdout.contains("5 needs-rotate"), "{}", text.stdout);
    assert!(
        text.stdout.contains("run `apim-pki rotate`"),
        "{}",
        text.stdout
    );

    let gen = run(&["generate", s(&topo), "--out", s(&out)], &[]);
    assert_eq!(gen.code, 2);
    assert!(
        gen.stderr
            .contains("4 more artifacts need rotate (`apim-pki plan` lists them all)"),
        "{}",
        gen.stderr
    );
    // A bare rotate re-keys them all; then plan is clean again.
    let rot = run(&["rotate", s(&topo), "--out", s(&out)], &[]);
    assert_eq!(rot.code, 0, "{}", rot.stderr);
    let again = run(&["plan", s(&topo), "--out", s(&out)], &[]);
    assert_eq!(again.code, 0, "{}", again.stdout);
}

#[test]
fn plan_shows_remove_for_a_node_left_out() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("pki");
    let ha = util::cli::ha_example();
    let topo = write_topology(tmp.path(), &ha);
    generate(&topo, &out, &[]);
    // Drop store2 (the store keeps store1 and its load balancer).
    let cut = ha.replace(
        "[[node]]\nname = \"store2\"\nprofile = \"store\"\nhost = \"store2.acme.internal\"\n",
        "",
    );
    assert_ne!(cut, ha, "the example changed: update this test");
    let topo = write_topology(tmp.path(), &cut);
    let plan = run(&["plan", s(&topo), "--out", s(&out)], &[]);
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    assert!(
        plan.stdout
            .lines()
            .any(|l| l.starts_with("remove") && l.contains("nodes/store2/")),
        "{}",
        plan.stdout
    );
}

#[test]
fn rotate_labels_replaced_files_and_says_what_to_ship() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("pki");
    let topo = write_topology(tmp.path(), &minimal_example());
    generate(&topo, &out, &[]);

    let r = run(
        &[
            "rotate",
            s(&topo),
            "--out",
            s(&out),
            "--node",
            "km",
            "--format",
            "json",
        ],
        &[],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let json: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let km: Vec<&serde_json::Value> = json["actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["path"].as_str().unwrap().ends_with("km-tls.jks"))
        .collect();
    assert_eq!(km.len(), 1);
    assert_eq!(km[0]["action"], "replace", "{}", km[0]);

    let r = run(&["rotate", s(&topo), "--out", s(&out), "--node", "km"], &[]);
    assert!(r.stdout.contains("1 replaced"), "{}", r.stdout);
    assert!(!r.stdout.contains("created"), "{}", r.stdout);
    assert!(r.stdout.contains("  node km: km-tls.jks"), "{}", r.stdout);

    let begin = run(
        &["rotate", s(&topo), "--out", s(&out), "--ca", "begin"],
        &[],
    );
    assert_eq!(begin.code, 0, "{}", begin.stderr);
    assert!(
        begin.stdout.contains("CA stage: rollover-begun")
            && begin.stdout.contains("client-truststore")
            && begin.stdout.contains("--ca finish"),
        "{}",
        begin.stdout
    );
    let again = run(
        &["rotate", s(&topo), "--out", s(&out), "--ca", "begin"],
        &[],
    );
    assert_eq!(again.code, 2);
    assert!(
        again.stderr.contains("a CA rollover has already begun")
            && !again.stderr.contains("already rollover-begun"),
        "{}",
        again.stderr
    );
    let finish = run(
        &["rotate", s(&topo), "--out", s(&out), "--ca", "finish"],
        &[],
    );
    assert!(
        finish.stdout.contains("CA stage: rollover-finished")
            && finish.stdout.contains("--ca retire"),
        "{}",
        finish.stdout
    );
    let retire = run(
        &["rotate", s(&topo), "--out", s(&out), "--ca", "retire"],
        &[],
    );
    assert!(
        retire.stdout.contains("CA stage: stable"),
        "{}",
        retire.stdout
    );
    let retire = run(
        &["rotate", s(&topo), "--out", s(&out), "--ca", "retire"],
        &[],
    );
    assert_eq!(retire.code, 2);
    assert!(
        retire.stderr.contains("no CA rollover is in progress"),
        "{}",
        retire.stderr
    );
}

#[test]
fn connect_options_need_live_and_one_address_per_endpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("pki");
    let topo = write_topology(tmp.path(), &minimal_example());
    generate(&topo, &out, &[]);
    let r = run(
        &[
            "verify",
            s(&out),
            "--connect",
            "km.dev.acme.internal:9443=127.0.0.1:1",
        ],
        &[],
    );
    assert_eq!(r.code, 2, "{}", r.stdout);
    assert!(r.stderr.contains("--live"), "{}", r.stderr);
    let file = tmp.path().join("connect.txt");
    std::fs::write(&file, "km.dev.acme.internal:9443=127.0.0.1:2\n").unwrap();
    let r = run(&["verify", s(&out), "--connect-file", s(&file)], &[]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("--live"), "{}", r.stderr);
    let r = run(&["verify", s(&out), "--timeout", "5"], &[]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("--live"), "{}", r.stderr);
    let r = run(
        &[
            "verify",
            s(&out),
            "--live",
            "--connect",
            "km.dev.acme.internal:9443=127.0.0.1:1",
            "--connect-file",
            s(&file),
        ],
        &[],
    );
    assert_eq!(r.code, 2, "{}", r.stdout);
    assert!(
        r.stderr
            .contains("connect.txt sends km.dev.acme.internal:9443 to 127.0.0.1:2")
            && r.stderr.contains("127.0.0.1:1"),
        "{}",
        r.stderr
    );
}

#[test]
fn error_messages_read_as_sentences() {
    let tmp = tempfile::tempdir().unwrap();
    let base = minimal_example();
    let bad = |name: &str, text: &str| {
        let path = tmp.path().join(name);
        std::fs::write(&path, text).unwrap();
        let r = run(&["plan", s(&path), "--out", s(&tmp.path().join("o"))], &[]);
        assert_eq!(r.code, 2, "{name}: {}", r.stdout);
        r.stderr
    };
    let missing = run(
        &["plan", s(&tmp.path().join("absent.toml")), "--out", "o"],
        &[],
    );
    assert!(
        missing.stderr.starts_with("error: ")
            && missing
                .stderr
                .contains("absent.toml: cannot read the topology file")
            && !missing.stderr.contains("(file)"),
        "{}",
        missing.stderr
    );
    let e = bad("unclosed.toml", &base.replacen("[[node]]", "[[node]", 1));
    assert!(!e.contains("]["), "{e}");
    let e = bad(
        "offset.toml",
        &base.replacen(
            "profile = \"key-manager\"",
            "profile = \"key-manager\"\noffset = \"1\"",
            1,
        ),
    );
    assert!(
        e.contains("node[1].offset") && e.contains("whole number") && !e.contains("i64"),
        "{e}"
    );
    let e = bad(
        "nohost.toml",
        &base.replacen("host = \"km.dev.acme.internal\"\n", "", 1),
    );
    assert!(
        e.contains("missing key `host`") && !e.contains("field"),
        "{e}"
    );

    // --out naming a file is about --out, not inventory.json.
    let file = tmp.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let topo = write_topology(tmp.path(), &base);
    let r = run(&["generate", s(&topo), "--out", s(&file)], &[]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("--out")
            && r.stderr.contains("is a file, not a directory")
            && !r.stderr.contains("inventory.json"),
        "{}",
        r.stderr
    );
    let r = run(&["verify", s(&file)], &[]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("is a file, not a directory"),
        "{}",
        r.stderr
    );
}

#[test]
fn a_wrong_password_names_its_variable() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("pki");
    let text = minimal_example().replacen(
        "product = \"apim-2.6\"",
        "product = \"apim-2.6\"\n\n[passwords]\ntls = \"MY_TLS_PW\"\n",
        1,
    );
    let topo = write_topology(tmp.path(), &text);
    generate(&topo, &out, &[("MY_TLS_PW", "first-password")]);
    let r = run(
        &["generate", s(&topo), "--out", s(&out)],
        &[("MY_TLS_PW", "another-password")],
    );
    assert_eq!(r.code, 2);
    assert!(
        r.stderr
            .contains("tls password from environment variable MY_TLS_PW")
            && r.stderr.contains("hint: set MY_TLS_PW"),
        "{}",
        r.stderr
    );
    let v = run(&["verify", s(&out)], &[("MY_TLS_PW", "another-password")]);
    assert_eq!(v.code, 1, "{}{}", v.stdout, v.stderr);
    assert!(
        v.stdout.contains("wrong-password") && v.stdout.contains("set MY_TLS_PW to the password"),
        "{}",
        v.stdout
    );
}
