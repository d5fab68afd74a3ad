//! The project carries its own documentation: every relative link in a Markdown file, and in the
//! comments of Rust and TOML files, names a file that exists in the project (and, for a
//! `file.md#anchor` link, a heading of that file). The user-facing documents name no design
//! file the project does not ship.

use std::path::{Path, PathBuf};

/// Files to check: every .md, .rs and .toml of the project, outside build output and VCS data.
fn project_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if path.is_dir() {
            if !matches!(name.as_str(), "target" | ".git" | "node_modules")
                && !name.starts_with('.')
            {
                project_files(&path, out);
            }
        } else if [".md", ".rs", ".toml"].iter().any(|x| name.ends_with(x)) {
            out.push(path);
        }
    }
}

/// The text in which links are looked for: all of a Markdown file outside fenced code, the
/// comment lines of Rust and TOML files.
fn linkable_text(path: &Path, text: &str) -> String {
    let md = path.extension().is_some_and(|x| x == "md");
    let mut out = String::new();
    let mut fenced = false;
    for line in text.lines() {
        let t = line.trim_start();
        if md {
            if t.starts_with("```") {
                fenced = !fenced;
                continue;
            }
            if !fenced {
                out += line;
            }
        } else if t.starts_with("//") || t.starts_with('#') {
            out += line;
        }
        out.push('\n');
    }
    out
}

/// The target of every Markdown link (text in brackets, target in parentheses) in `text`.
fn links(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("](") {
        rest = &rest[i + 2..];
        if let Some(end) = rest.find(')') {
            let target = rest[..end].trim();
            if !target.contains(char::is_whitespace) && !target.is_empty() {
                found.push(target.to_string());
            }
        }
    }
    found
}

/// GitHub's anchor for a Markdown heading.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn anchors(md: &str) -> Vec<String> {
    let mut fenced = false;
    md.lines()
        .filter(|l| {
            if l.trim_start().starts_with("```") {
                fenced = !fenced;
            }
            !fenced
        })
        .filter_map(|l| l.strip_prefix('#'))
        .map(|h| slug(h.trim_start_matches('#')))
        .collect()
}

/// Broken relative links in `file`, as "file: target (why)".
fn broken_links(root: &Path, file: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    let rel = file
        .strip_prefix(root)
        .unwrap_or(file)
        .display()
        .to_string();
    let mut bad = Vec::new();
    for target in links(&linkable_text(file, &text)) {
        if target.contains("://") || target.starts_with("mailto:") || target.starts_with('<') {
            continue;
        }
        let (path, anchor) = target.split_once('#').unwrap_or((&target, ""));
        let dest = if path.is_empty() {
            file.to_path_buf()
        } else {
            file.parent().unwrap_or(root).join(path)
        };
        if !dest.exists() {
            bad.push(format!("{rel}: {target} (no such file)"));
            continue;
        }
        let inside = dest
            .canonicalize()
            .is_ok_and(|d| d.starts_with(root.canonicalize().unwrap()));
        if !inside {
            bad.push(format!("{rel}: {target} (outside the project)"));
            continue;
        }
        if !anchor.is_empty() && dest.extension().is_some_and(|x| x == "md") {
            let md = std::fs::read_to_string(&dest).unwrap_or_default();
            if !anchors(&md).iter().any(|a| a == anchor) {
                bad.push(format!("{rel}: {target} (no such heading)"));
            }
        }
    }
    bad
}

#[test]
fn every_relative_link_resolves_inside_the_project() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    project_files(root, &mut files);
    assert!(files.len() > 50, "found only {} files", files.len());
    let bad: Vec<String> = files.iter().flat_map(|f| broken_links(root, f)).collect();
    assert!(bad.is_empty(), "broken links:\n{}", bad.join("\n"));
}

#[test]
fn the_checker_catches_a_broken_link_and_a_missing_heading() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::write(root.join("a.md"), "# A title\n\n## Second `part`\n").unwrap();
    std::fs::write(
        root.join("b.md"),
        "[ok](a.md) [ok](a.md#second-part) [bad](c.md) [bad](a.md#third)\n\
         ```\n[in code](nowhere.md)\n```\n[web](https://example.com/x.md)\n",
    )
    .unwrap();
    std::fs::write(
        root.join("c.rs"),
        "//! See [docs](missing/x.md).\nlet x = v[0](y);\n",
    )
    .unwrap();
    let mut bad = broken_links(root, &root.join("b.md"));
    bad.extend(broken_links(root, &root.join("c.rs")));
    assert_eq!(
        bad,
        [
            "b.md: c.md (no such file)",
            "b.md: a.md#third (no such heading)",
            "c.rs: missing/x.md (no such file)",
        ]
    );
}

/// The documents users read name only what the project ships: no `shared/` design files, no
/// "seed".
#[test]
fn user_documents_cite_no_outside_design_file() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![root.join("README.md"), root.join("SECURITY.md")];
    project_files(&root.join("docs"), &mut files);
    project_files(&root.join("examples"), &mut files);
    project_files(&root.join("src"), &mut files);
    let mut bad = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap_or_default();
        for needle in [
            "shared/design",
            "shared/seed",
            "(cli.md",
            " cli.md",
            "the seed",
        ] {
            if text.contains(needle) {
                bad.push(format!(
                    "{}: `{needle}`",
                    f.strip_prefix(root).unwrap().display()
                ));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "outside documents cited:\n{}",
        bad.join("\n")
    );
}

/// Every `verify` finding code (from `Code::as_str` in src/verify/findings.rs) is documented in
/// docs/commands.md, so users can look up what they gate CI on.
#[test]
fn every_finding_code_is_documented() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let src = std::fs::read_to_string(root.join("src/verify/findings.rs")).unwrap();
    let docs = std::fs::read_to_string(root.join("docs/commands.md")).unwrap();
    let codes: Vec<&str> = src
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Code::"))
        .filter_map(|l| {
            l.split_once("=> \"")
                .map(|(_, r)| r.trim_end_matches("\","))
        })
        .collect();
    assert!(codes.len() >= 20, "found only {codes:?}");
    let missing: Vec<&&str> = codes
        .iter()
        .filter(|c| !docs.contains(&format!("`{c}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "add these finding codes to the table in docs/commands.md: {missing:?}"
    );
}
