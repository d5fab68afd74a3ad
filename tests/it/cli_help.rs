//! The CLI documents itself: `--help` of every command has a purpose, a description for every
//! argument, examples and exit codes; `completions SHELL` and `man [COMMAND]` print what the
//! shells and `man` read; `init` lists what a topology may use.

use crate::util;

use crate::util::cli::run;

/// Every command of the CLI.
const COMMANDS: &[&str] = &[
    "init",
    "plan",
    "generate",
    "rotate",
    "csr",
    "import-signed",
    "verify",
    "check-host",
    "apply",
    "inspect",
    "export",
    "export kubernetes",
    "completions",
    "man",
];

/// The argument lines of a `--help` text ("  -x, --long <V>" / "  <ARG>") and the text under
/// each, for a check that none is blank.
fn arguments(help: &str) -> Vec<(String, String)> {
    let lines: Vec<&str> = help.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let t = line.trim_start();
        let indent = line.len() - t.len();
        if indent == 2 && (t.starts_with('-') || t.starts_with('<')) {
            // Short help puts the description on the same line after two spaces; long help
            // on the next, more indented line.
            let (spec, same_line) = t.split_once("  ").unwrap_or((t, ""));
            let next = lines
                .get(i + 1)
                .filter(|next| next.len() - next.trim_start().len() > 2)
                .map(|d| d.trim().to_string())
                .unwrap_or_default();
            let desc = if same_line.trim().is_empty() {
                next
            } else {
                same_line.trim().to_string()
            };
            out.push((spec.to_string(), desc));
        }
    }
    out
}

#[test]
fn every_command_has_purpose_arguments_examples_and_exit_codes() {
    let top = run(&["--help"], &[]);
    assert_eq!(top.code, 0, "{}", top.stderr);
    for code in [
        "  0  done",
        "  1  a check failed",
        "  2  bad input",
        "  70 a bug in apim-pki",
    ] {
        assert!(
            top.stdout.contains(code),
            "--help lists exit code {code:?}:\n{}",
            top.stdout
        );
    }
    for cmd in COMMANDS {
        assert!(
            // A nested command (`export kubernetes`) is listed by its first word.
            top.stdout
                .contains(&format!("  {}", cmd.split(' ').next().unwrap_or(cmd))),
            "top-level help lists {cmd}:\n{}",
            top.stdout
        );
        let mut argv: Vec<&str> = cmd.split(' ').collect();
        argv.push("--help");
        let r = run(&argv, &[]);
        assert_eq!(r.code, 0, "{cmd} --help: {}", r.stderr);
        let help = &r.stdout;
        let purpose = help.lines().next().unwrap_or("");
        assert!(
            purpose.len() > 20 && !purpose.starts_with("Usage"),
            "{cmd}: one-line purpose first: {purpose:?}"
        );
        assert!(help.contains("Examples:"), "{cmd} has examples:\n{help}");
        let examples = help
            .lines()
            .filter(|l| l.trim_start().starts_with("apim-pki "))
            .count();
        assert!(examples >= 2, "{cmd}: at least two examples:\n{help}");
        assert!(
            help.contains("Exit codes:"),
            "{cmd} has exit codes:\n{help}"
        );
        let args = arguments(help);
        assert!(!args.is_empty(), "{cmd}: no arguments found:\n{help}");
        for (arg, desc) in args {
            assert!(!desc.is_empty(), "{cmd}: {arg} has no description:\n{help}");
        }
    }
}

#[test]
fn rotate_help_says_no_selector_rekeys_everything() {
    let r = run(&["rotate", "--help"], &[]);
    assert!(
        r.stdout
            .contains("new keys and certificates for EVERY node and load balancer"),
        "{}",
        r.stdout
    );
    let short = run(&["rotate", "-h"], &[]);
    assert!(
        short
            .stdout
            .contains("With no selector, re-keys EVERY node"),
        "{}",
        short.stdout
    );
}

#[test]
fn completions_for_every_shell() {
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef apim-pki"),
        ("fish", "complete -c apim-pki"),
        ("powershell", "Register-ArgumentCompleter"),
    ] {
        let r = run(&["completions", shell], &[]);
        assert_eq!(r.code, 0, "{shell}: {}", r.stderr);
        assert!(r.stdout.contains(marker), "{shell}: {marker} missing");
        for cmd in ["generate", "check-host", "import-signed"] {
            assert!(r.stdout.contains(cmd), "{shell} completes {cmd}");
        }
    }
    let r = run(&["completions", "tcsh"], &[]);
    assert_eq!(r.code, 2, "{}", r.stderr);
}

#[test]
fn man_pages_for_the_tool_and_each_command() {
    let r = run(&["man"], &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains(".TH apim-pki 1"), "{}", r.stdout);
    assert!(r.stdout.contains(".SH NAME"), "{}", r.stdout);
    assert!(r.stdout.contains("verify"), "the main page lists commands");
    let r = run(&["man", "verify"], &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains(".TH apim-pki-verify 1"), "{}", r.stdout);
    assert!(r.stdout.contains("connect"), "{}", r.stdout);
    let r = run(&["man", "nonsense"], &[]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr
            .contains("man nonsense: apim-pki has no such command")
            && r.stderr.contains("verify"),
        "{}",
        r.stderr
    );
    // man(1) can render it, where it is installed.
    if util::java::which("groff").is_some() {
        let dir = tempfile::tempdir().unwrap();
        let page = dir.path().join("apim-pki.1");
        std::fs::write(&page, run(&["man"], &[]).stdout).unwrap();
        let out = std::process::Command::new("groff")
            .args(["-man", "-Tutf8", "-ww"])
            .arg(&page)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn plain_init_lists_products_profiles_and_keys() {
    let r = run(&["init"], &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    for product in apim_pki::Product::ALL {
        assert!(r.stdout.contains(product.as_str()), "{}", r.stdout);
        for (profile, _) in product.profiles() {
            assert!(r.stdout.contains(profile.as_str()), "{profile}");
        }
    }
    for key in apim_pki::KeyType::ALL {
        assert!(r.stdout.contains(key.as_str()), "{key:?}");
    }
    assert!(r.stdout.contains("pkcs12-legacy"));
    // Still a topology generate accepts.
    let tmp = tempfile::tempdir().unwrap();
    let topo = util::cli::write_topology(tmp.path(), &r.stdout);
    let plan = run(
        &[
            "plan",
            topo.to_str().unwrap(),
            "--out",
            tmp.path().join("pki").to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    let bad = run(&["init", "--product", "apim-9"], &[]);
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("apim-2.6"), "{}", bad.stderr);
}
