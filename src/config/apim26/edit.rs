//! The editing machinery every 2.6 file rule shares: an XML file read, edited through
//! [`XmlFile`] and planned; a properties or JSON file planned from its changes; values shown
//! with passwords masked; keystore paths in the form the file already uses. Knows which values
//! are secret, nothing of which file holds what (that is in `files` and `rules`).

use std::cell::RefCell;
use std::path::Path;

use super::{ApplyError, FileAction, FileChange, ValueChange, V26};
use crate::config::xmledit::{EditError, Edits, XmlDoc};
use crate::error::FileProblem;
use crate::plan::settings::AMQP_CREDENTIALS;

use super::stores::Store;

/// Elements stock files ship commented out or leave out: created when missing.
const CREATED_WHEN_MISSING: [&str; 5] = [
    "HostName",
    "MgtHostName",
    "ThriftClientPort",
    "ThriftServerPort",
    "JMSConnectionDetails/ServiceURL",
];

/// A file apply will write: its new bytes, whether it holds passwords, and what changed.
pub(super) struct Planned {
    pub(super) rel: String,
    pub(super) bytes: Vec<u8>,
    pub(super) secret: bool,
    pub(super) change: FileChange,
    /// A file this one replaces and that is removed afterwards (axis2_TM.xml → axis2.xml).
    pub(super) consumes: Option<String>,
}

impl Planned {
    /// An edited file; `None` when nothing changed.
    pub(super) fn edit(
        rel: &str,
        bytes: Vec<u8>,
        secret: bool,
        changes: Vec<ValueChange>,
    ) -> Option<Planned> {
        (!changes.is_empty()).then(|| Planned {
            rel: rel.into(),
            bytes,
            secret,
            change: FileChange {
                file: rel.into(),
                action: FileAction::Edit,
                changes,
            },
            consumes: None,
        })
    }
}

/// True for a setting whose value is a password (never shown).
pub(super) fn is_secret(what: &str) -> bool {
    let lower = what.to_ascii_lowercase();
    lower.contains("password")
        || lower.ends_with("keystorepass")
        || lower.contains(".pass'")
        || lower.starts_with("carbon.security.")
        || lower.starts_with("server.service.connector.")
}

/// `value` as the report shows it: passwords masked, an AMQP URL's credentials hidden.
pub(super) fn shown(what: &str, value: &str) -> String {
    if is_secret(what) {
        return "********".into();
    }
    match value
        .find("amqp://")
        .and_then(|i| value[i..].find('@').map(|j| (i + 7, i + j)))
    {
        Some((start, end)) if start <= end => {
            format!("{}****:****{}", &value[..start], &value[end..])
        }
        _ => value.to_string(),
    }
}

/// The path in the form the file already uses, with `file` as the last component.
pub(super) fn keystore_path(existing: Option<&str>, file: &str) -> String {
    const DIR: &str = "repository/resources/security/";
    match existing.and_then(|e| e.find(DIR).map(|i| &e[..i + DIR.len()])) {
        Some(prefix) => format!("{prefix}{file}"),
        None => format!("${{carbon.home}}/{DIR}{file}"),
    }
}

/// Replaces the `USER:PASS` placeholder with the credentials of the AMQP URL being replaced.
pub(super) fn with_amqp_credentials(value: &str, existing: Option<&str>) -> String {
    if !value.contains(AMQP_CREDENTIALS) {
        return value.to_string();
    }
    let creds = existing
        .and_then(|e| e.strip_prefix("amqp://"))
        .and_then(|rest| rest.split_once('@'))
        .map(|(c, _)| c.to_string())
        .unwrap_or_else(|| "${admin.username}:${admin.password}".into());
    value.replacen(AMQP_CREDENTIALS, &creds, 1)
}

/// Decodes a file's bytes as its XML declaration says (UTF-8 or ISO-8859-1).
pub(super) fn decode_xml(
    bytes: &[u8],
    rel: &str,
    home: &Path,
) -> Result<(String, bool), ApplyError> {
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).to_ascii_lowercase();
    if head.contains("encoding=\"iso-8859-1\"") || head.contains("encoding='iso-8859-1'") {
        return Ok((bytes.iter().map(|b| char::from(*b)).collect(), true));
    }
    String::from_utf8(bytes.to_vec())
        .map(|s| (s, false))
        .map_err(|_| ApplyError::home(home.join(rel), FileProblem::NotUtf8, V26))
}

pub(super) fn encode_xml(text: &str, latin1: bool) -> Vec<u8> {
    if latin1 {
        // xmledit writes characters outside the declared encoding as &#N; references.
        text.chars()
            .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?'))
            .collect()
    } else {
        text.as_bytes().to_vec()
    }
}

/// Reads and parses the XML file `rel` of `home`.
pub(super) fn read_xml(home: &Path, rel: &str) -> Result<(XmlDoc, bool), ApplyError> {
    let bytes = crate::input::read(home.join(rel), crate::input::Limit::Config)
        .map_err(|e| ApplyError::home(home.join(rel), FileProblem::Read(e), V26))?;
    parse_xml(&bytes, rel, home)
}

fn parse_xml(bytes: &[u8], rel: &str, home: &Path) -> Result<(XmlDoc, bool), ApplyError> {
    let (text, latin1) = decode_xml(bytes, rel, home)?;
    let doc = XmlDoc::parse(&text)
        .map_err(|e| ApplyError::home(home.join(rel), FileProblem::Xml(e.to_string()), V26))?;
    Ok((doc, latin1))
}

/// The edits of one XML file, collected and then applied.
pub(super) struct XmlFile<'d> {
    pub(super) rel: &'static str,
    pub(super) doc: &'d XmlDoc,
    pub(super) edits: Edits<'d>,
    /// Password elements left alone because secure vault holds them.
    pub(super) vault: Vec<String>,
}

impl<'d> XmlFile<'d> {
    /// Edits of `doc`, known as `rel`.
    pub(super) fn new(rel: &'static str, doc: &'d XmlDoc) -> XmlFile<'d> {
        XmlFile {
            rel,
            doc,
            edits: Edits::new(doc),
            vault: Vec::new(),
        }
    }

    pub(super) fn err(&self, source: EditError) -> ApplyError {
        ApplyError::element(self.rel, source)
    }

    /// The first text at `path`.
    pub(super) fn text(&self, path: &str) -> Option<String> {
        self.doc.texts(path).into_iter().next()
    }

    pub(super) fn set(&mut self, path: &str, value: &str) -> Result<(), ApplyError> {
        // A password in secure vault stays there: the element holds an alias, and the value
        // must be re-encrypted with WSO2's cipher tool.
        if is_secret(path) && self.doc.is_secured(path) {
            let alias = self
                .doc
                .attrs(path, "secretAlias")
                .into_iter()
                .next()
                .unwrap_or_default();
            self.vault
                .push(format!("{}: {path} (alias {alias})", self.rel));
            return Ok(());
        }
        let created = CREATED_WHEN_MISSING.iter().any(|c| path.ends_with(c));
        let result = if created {
            self.edits.ensure_text(path, value)
        } else {
            self.edits.set_text(path, value)
        };
        result.map_err(|e| self.err(e))
    }

    pub(super) fn set_attr(
        &mut self,
        path: &str,
        attr: &str,
        value: &str,
    ) -> Result<(), ApplyError> {
        self.edits
            .set_attr(path, attr, value)
            .map_err(|e| self.err(e))
    }

    /// The element at `path` names `store`'s file, in the form the element already uses.
    pub(super) fn set_location(&mut self, path: &str, store: &Store) -> Result<(), ApplyError> {
        let existing = self.text(path);
        self.set(path, &keystore_path(existing.as_deref(), &store.file))
    }

    /// Location, Type, Password (and KeyAlias / KeyPassword) of a keystore element.
    pub(super) fn store(
        &mut self,
        base: &str,
        store: &Store,
        location: &str,
        type_: &str,
        key_elements: bool,
    ) -> Result<(), ApplyError> {
        self.set_location(&format!("{base}/{location}"), store)?;
        self.set(&format!("{base}/{type_}"), store.java_type)?;
        self.set(&format!("{base}/Password"), store.password.expose())?;
        if key_elements {
            if let Some(alias) = &store.alias {
                self.set(&format!("{base}/KeyAlias"), alias)?;
            }
            self.set(&format!("{base}/KeyPassword"), store.password.expose())?;
        }
        Ok(())
    }
}

/// Where an XML rule reads its file and whether the file must exist.
pub(super) struct XmlSource<'a> {
    pub(super) home: &'a Path,
    /// The file written.
    pub(super) rel: &'static str,
    /// The file read (`rel`, or the traffic manager's `axis2_TM.xml` that replaces it).
    pub(super) read_from: &'a str,
    pub(super) required: bool,
}

impl<'a> XmlSource<'a> {
    /// `rel`, read from itself.
    pub(super) fn at(home: &'a Path, rel: &'static str, required: bool) -> XmlSource<'a> {
        XmlSource {
            home,
            rel,
            read_from: rel,
            required,
        }
    }
}

/// Reads, edits and plans one XML file; `None` when it is absent and optional, or unchanged.
pub(super) fn plan_xml(
    src: XmlSource,
    vault: &RefCell<Vec<String>>,
    edit: impl FnOnce(&mut XmlFile) -> Result<(), ApplyError>,
) -> Result<Option<Planned>, ApplyError> {
    let (home, rel, read_from) = (src.home, src.rel, src.read_from);
    let bytes = match crate::input::read(home.join(read_from), crate::input::Limit::Config) {
        Ok(b) => b,
        Err(_) if !src.required => return Ok(None),
        Err(e) => {
            return Err(ApplyError::home(
                home.join(read_from),
                FileProblem::Read(e),
                V26,
            ))
        }
    };
    let (doc, latin1) = parse_xml(&bytes, read_from, home)?;
    let mut file = XmlFile::new(rel, &doc);
    edit(&mut file)?;
    vault.borrow_mut().extend(std::mem::take(&mut file.vault));
    let (new_text, changes) = file
        .edits
        .apply()
        .map_err(|e| ApplyError::element(rel, e))?;
    let consumes = (read_from != rel).then(|| read_from.to_string());
    if changes.is_empty() && consumes.is_none() {
        return Ok(None);
    }
    let changes = changes
        .into_iter()
        .map(|c| ValueChange {
            old: c.old.map(|o| shown(&c.path, &o)),
            new: shown(&c.path, &c.new),
            what: c.path,
        })
        .collect();
    let action = match &consumes {
        Some(from) => FileAction::Replace { from: from.clone() },
        None => FileAction::Edit,
    };
    Ok(Some(Planned {
        rel: rel.to_string(),
        bytes: encode_xml(&new_text, latin1),
        secret: true,
        change: FileChange {
            file: rel.into(),
            action,
            changes,
        },
        consumes,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keystore_paths_keep_the_files_form() {
        assert_eq!(
            keystore_path(
                Some("${carbon.home}/repository/resources/security/wso2carbon.jks"),
                "x.p12"
            ),
            "${carbon.home}/repository/resources/security/x.p12"
        );
        assert_eq!(
            keystore_path(Some("repository/resources/security/a.jks"), "b.jks"),
            "repository/resources/security/b.jks"
        );
        assert_eq!(
            keystore_path(None, "b.jks"),
            "${carbon.home}/repository/resources/security/b.jks"
        );
    }

    #[test]
    fn passwords_and_amqp_credentials_are_never_shown() {
        assert_eq!(
            shown("Server/Security/KeyStore/Password", "s3cret"),
            "********"
        );
        assert_eq!(shown("keystorePass", "s3cret"), "********");
        assert_eq!(
            shown(
                "x",
                "amqp://admin:pw@clientid/carbon?brokerlist='tcp://tm:5672'"
            ),
            "amqp://****:****@clientid/carbon?brokerlist='tcp://tm:5672'"
        );
        assert_eq!(shown("HostName", "gw.example"), "gw.example");
    }

    #[test]
    fn amqp_credentials_are_kept_from_the_value_replaced() {
        let v = "amqp://USER:PASS@clientid/carbon?brokerlist='tcp://tm:5672'";
        assert_eq!(
            with_amqp_credentials(v, Some("amqp://bob:pw@clientid/carbon?x")),
            "amqp://bob:pw@clientid/carbon?brokerlist='tcp://tm:5672'"
        );
        assert_eq!(
            with_amqp_credentials(v, None),
            "amqp://${admin.username}:${admin.password}@clientid/carbon?brokerlist='tcp://tm:5672'"
        );
        assert_eq!(
            with_amqp_credentials("plain", Some("amqp://a:b@c")),
            "plain"
        );
    }
}
