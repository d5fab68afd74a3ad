//! Bounded reads of the files users hand apim-pki, and bounded quotes of their values.
//!
//! Every read of a user-supplied or set file goes through [`read`] or [`read_to_string`] with a
//! [`Limit`]: a file larger than its limit (or an endless one such as `/dev/zero`) is an error
//! naming the limit, read no further than one byte past it, so memory never grows with the
//! input. Each limit is far above anything real: see [`Limit::bytes`]. Error messages quote
//! user values through [`excerpt`], so a 10 MB value costs at most a line of the message.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

/// The kinds of files apim-pki reads, each with its own size limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Limit {
    /// A topology file.
    Topology,
    /// A JKS or PKCS#12 keystore or truststore.
    Keystore,
    /// PEM or DER certificates and keys: a CA, a bundle, signed certificates, a load balancer's
    /// files, or any file given to `inspect` or `check-host`.
    Certificate,
    /// A password file.
    Password,
    /// A `--connect-file`.
    ConnectFile,
    /// A WSO2 configuration file (XML, .properties, site.json, deployment.toml).
    Config,
    /// A file apim-pki writes into a set and reads back (node.toml, inventory.json,
    /// secrets.toml).
    SetFile,
}

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;

impl Limit {
    /// The largest file accepted, in bytes.
    ///
    /// - topology: 1 MiB. The full HA example is 3 KB; a 1,000-node topology is about 150 KB.
    /// - keystore and certificate: 16 MiB. A truststore holding every CA of the JDK's cacerts
    ///   is about 200 KB, as is Mozilla's CA bundle in PEM; 16 MiB holds tens of thousands of
    ///   certificates.
    /// - password: 64 KiB; no tool takes a password near that long.
    /// - connect file: 1 MiB, a line per endpoint.
    /// - WSO2 configuration: 32 MiB. The largest file WSO2 ships (identity.xml, default.json)
    ///   is under 60 KB; 500 times that leaves room for any hand-grown file.
    /// - set files: 16 MiB; inventory.json of a 10,000-node set is a few MB.
    pub(crate) const fn bytes(self) -> u64 {
        match self {
            Limit::Topology | Limit::ConnectFile => MIB,
            Limit::Keystore | Limit::Certificate | Limit::SetFile => 16 * MIB,
            Limit::Password => 64 * KIB,
            Limit::Config => 32 * MIB,
        }
    }

    /// What the file is, for messages.
    pub(crate) fn what(self) -> &'static str {
        match self {
            Limit::Topology => "a topology file",
            Limit::Keystore => "a keystore",
            Limit::Certificate => "a certificate or key file",
            Limit::Password => "a password file",
            Limit::ConnectFile => "a connect file",
            Limit::Config => "a WSO2 configuration file",
            Limit::SetFile => "a file of the set",
        }
    }

    fn too_large(self) -> io::Error {
        let size = self.bytes();
        let size = if size >= MIB {
            format!("{} MiB", size / MIB)
        } else {
            format!("{} KiB", size / KIB)
        };
        io::Error::new(
            io::ErrorKind::FileTooLarge,
            format!(
                "larger than {size}, the most apim-pki reads from {} (is it the right file?)",
                self.what()
            ),
        )
    }
}

/// Reads the whole file, or fails once it is past `limit` (also for devices and pipes, which
/// have no size).
pub(crate) fn read(path: impl AsRef<Path>, limit: Limit) -> io::Result<Vec<u8>> {
    let file = File::open(path.as_ref())?;
    let cap = limit.bytes();
    let size = file
        .metadata()
        .ok()
        .filter(|m| m.is_file())
        .map(|m| m.len());
    if size.is_some_and(|len| len > cap) {
        return Err(limit.too_large());
    }
    let mut bytes = Vec::with_capacity(size.unwrap_or(0) as usize);
    file.take(cap + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > cap {
        return Err(limit.too_large());
    }
    Ok(bytes)
}

/// [`read`], as UTF-8 text.
pub(crate) fn read_to_string(path: impl AsRef<Path>, limit: Limit) -> io::Result<String> {
    String::from_utf8(read(path, limit)?).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            "stream did not contain valid UTF-8",
        )
    })
}

/// The longest user value quoted whole in a message, in characters.
pub(crate) const EXCERPT_CHARS: usize = 80;

/// `value` for an error message: whole when short, else its start and how long it is; control
/// characters are escaped so a value cannot forge lines of the message.
pub(crate) fn excerpt(value: &str) -> String {
    excerpt_within(value, EXCERPT_CHARS)
}

/// [`excerpt`] with another bound: values longer than `max` characters show their first half.
pub(crate) fn excerpt_within(value: &str, max: usize) -> String {
    let total = value.chars().count();
    let shown: String = value
        .chars()
        .take(if total > max { max / 2 } else { total })
        .flat_map(|c| match c {
            c if c.is_control() => c.escape_default().collect::<Vec<_>>(),
            c => vec![c],
        })
        .collect();
    if total > max {
        format!("{shown}… ({total} characters)")
    } else {
        shown
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_past_its_limit_is_refused_without_reading_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("big");
        let file = File::create(&path).expect("create");
        file.set_len(Limit::Password.bytes() + 1)
            .expect("sparse file");
        let err = read(&path, Limit::Password).expect_err("too large");
        assert_eq!(err.kind(), io::ErrorKind::FileTooLarge);
        assert!(
            err.to_string().contains("64 KiB") && err.to_string().contains("a password file"),
            "{err}"
        );
        file.set_len(Limit::Password.bytes()).expect("truncate");
        assert_eq!(
            read(&path, Limit::Password).expect("at the limit").len(),
            65536
        );
    }

    #[test]
    fn an_endless_device_stops_at_the_limit() {
        let err = read(Path::new("/dev/zero"), Limit::Topology).expect_err("endless");
        assert!(err.to_string().contains("1 MiB"), "{err}");
        assert!(read_to_string(Path::new("/dev/null"), Limit::Topology)
            .expect("empty")
            .is_empty());
    }

    #[test]
    fn excerpts_are_bounded_and_escaped() {
        assert_eq!(excerpt("km1.acme.internal"), "km1.acme.internal");
        assert_eq!(excerpt("a\nb"), "a\\nb");
        let long = excerpt(&"x".repeat(10_000_000));
        assert!(
            long.len() < 100 && long.ends_with("(10000000 characters)"),
            "{long}"
        );
    }
}
