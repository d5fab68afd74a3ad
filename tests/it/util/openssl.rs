//! OpenSSL as the topic modules run it: one command in a directory, failing the test with its
//! output unless it succeeds.

use std::path::Path;
use std::process::Command;

/// Runs `openssl ARGS` in `dir`; panics with its output unless it succeeds. Returns stdout.
#[track_caller]
pub fn openssl(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl {}:\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A self-signed RSA 2048 certificate (`cert.pem`) and its key (`key.pem`, PKCS#8) in `dir`,
/// valid for `days`, with subject `subj` and the further `req` arguments `extra`.
pub fn self_signed(dir: &Path, days: u32, subj: &str, extra: &[&str]) {
    let days = days.to_string();
    let mut args = vec![
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "key.pem", "-out", "cert.pem",
        "-days", &days, "-subj", subj,
    ];
    args.extend_from_slice(extra);
    openssl(dir, &args);
}
