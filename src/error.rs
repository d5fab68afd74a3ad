//! What every failure has in common: its kind (the user's input, or a bug in apim-pki), the exit
//! code the kind maps to, the hint, and the cause chain rendered for people.
//!
//! Each module owns its error enum with typed variants (the file, key or line, what was found,
//! what was expected); this module owns what they share: [`Bug`] for a broken internal
//! invariant, [`FileError`] for a file that cannot be used as it is, [`exit_code`] and
//! [`render`]. It never prints or exits: the binary does.

use std::error::Error as StdError;
use std::fmt::Write as _;
use std::io;
use std::panic::Location;
use std::path::PathBuf;

/// Exit code of a bug in apim-pki (an internal invariant broken): sysexits' `EX_SOFTWARE`.
pub const EXIT_BUG: u8 = 70;
/// Exit code of bad input: a wrong topology, argument or file, a refused operation.
pub const EXIT_INPUT: u8 = 2;

/// An internal invariant that did not hold: a bug in apim-pki, never the user's input. It names
/// the broken invariant and where in the source it was found; it exits with [`EXIT_BUG`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "internal error: {what} (at {location}); this is a bug in apim-pki, please report it with \
     the command you ran and this message"
)]
pub struct Bug {
    /// The invariant that did not hold.
    pub what: String,
    /// Where it was found (file:line:column of the source).
    pub location: String,
}

impl Bug {
    /// A bug found here: the caller's source location is recorded.
    #[track_caller]
    pub fn new(what: impl Into<String>) -> Bug {
        let at = Location::caller();
        Bug {
            what: what.into(),
            location: format!("{}:{}", at.file(), at.line()),
        }
    }
}

/// What is wrong with a file apim-pki was given or reads back.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileProblem {
    /// The file is absent.
    #[error("not found")]
    Missing,
    /// Reading failed (absent, unreadable, over its size limit).
    #[error("cannot read")]
    Read(#[source] io::Error),
    /// The file is not UTF-8 text.
    #[error("is not UTF-8 text")]
    NotUtf8,
    /// The file is not valid TOML.
    #[error("not valid TOML: {0}")]
    Toml(String),
    /// The file is not well-formed XML.
    #[error("not well-formed XML: {0}")]
    Xml(String),
    /// The file is not valid JSON, or not of the expected shape.
    #[error("not valid JSON: {0}")]
    Json(String),
}

/// A file that cannot be used as it is: which file, and what is wrong with it.
#[derive(Debug, thiserror::Error)]
#[error("{}: {problem}", path.display())]
pub struct FileError {
    /// The file.
    pub path: PathBuf,
    /// What is wrong with it.
    #[source]
    pub problem: FileProblem,
}

impl FileError {
    /// `path` with `problem`.
    pub fn new(path: impl Into<PathBuf>, problem: FileProblem) -> FileError {
        FileError {
            path: path.into(),
            problem,
        }
    }

    /// `path` could not be read.
    pub fn read(path: impl Into<PathBuf>, source: io::Error) -> FileError {
        FileError::new(path, FileProblem::Read(source))
    }
}

/// Whether `error` or any error in its cause chain is a [`Bug`].
pub(crate) fn is_bug(error: &(dyn StdError + 'static)) -> bool {
    chain(error).any(|e| e.downcast_ref::<Bug>().is_some())
}

/// The exit code for `error`: [`EXIT_BUG`] when a [`Bug`] is in its chain, else
/// [`EXIT_INPUT`].
pub(crate) fn exit_code(error: &(dyn StdError + 'static)) -> u8 {
    if is_bug(error) {
        EXIT_BUG
    } else {
        EXIT_INPUT
    }
}

/// `error`, then each of its sources.
pub(crate) fn chain<'a>(
    error: &'a (dyn StdError + 'static),
) -> impl Iterator<Item = &'a (dyn StdError + 'static)> {
    std::iter::successors(Some(error), |e: &&'a (dyn StdError + 'static)| {
        (*e).source()
    })
}

/// The lines people read: `error: ...`, then `  caused by: ...` for each source whose text the
/// line above does not already hold (a variant that quotes its source is not repeated), then
/// `hint: ...`.
pub(crate) fn render(error: &(dyn StdError + 'static), hint: Option<&str>) -> String {
    let mut out = String::new();
    let mut above = String::new();
    for (i, e) in chain(error).enumerate() {
        let text = e.to_string();
        if i == 0 {
            let _ = writeln!(out, "error: {text}");
        } else if !above.contains(&text) {
            let _ = writeln!(out, "  caused by: {text}");
        }
        above = text;
    }
    if let Some(h) = hint {
        let _ = writeln!(out, "hint: {h}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    enum Outer {
        #[error("{0}")]
        Bug(#[from] Bug),
        #[error(transparent)]
        File(#[from] FileError),
        #[error("while doing it: {0}")]
        Quoting(#[source] FileError),
    }

    #[test]
    fn a_bug_anywhere_in_the_chain_exits_70_and_says_report_it() {
        let e = Outer::from(Bug::new("no CA"));
        assert_eq!(exit_code(&e), EXIT_BUG);
        let text = render(&e, None);
        assert!(
            text.starts_with("error: internal error: no CA (at src/error.rs:"),
            "{text}"
        );
        assert!(text.contains("please report it"), "{text}");
        // The variant quotes the bug: no second line.
        assert_eq!(text.lines().count(), 1, "{text}");
    }

    #[test]
    fn input_errors_exit_2_with_their_causes_on_their_own_lines() {
        let io = io::Error::new(io::ErrorKind::NotFound, "No such file or directory");
        let e = Outer::from(FileError::read("/x/topology.toml", io));
        assert_eq!(exit_code(&e), EXIT_INPUT);
        assert_eq!(
            render(&e, Some("check the path")),
            "error: /x/topology.toml: cannot read\n  caused by: No such file or directory\nhint: check the path\n"
        );
    }

    #[test]
    fn a_source_the_message_already_quotes_is_not_repeated() {
        let e = Outer::Quoting(FileError::new("a.xml", FileProblem::NotUtf8));
        assert_eq!(
            render(&e, None),
            "error: while doing it: a.xml: is not UTF-8 text\n"
        );
    }
}
