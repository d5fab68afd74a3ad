//! API-M 2.6: which password fields secure vault covers in the files apim-pki manages, under
//! which alias, and `cipher-tool.properties` (alias → `file//XPath,attribute-flag`).
//!
//! In 2.6 the alias is not free: each consumer looks its value up under a fixed name.
//! Carbon's `ServerConfiguration` resolves `"Carbon." + element path` (so carbon.xml
//! `Security/KeyStore/Password` is `Carbon.Security.KeyStore.Password`); Tomcat's `ServerManager`
//! resolves `element path + "." + attribute` (`Server.Service.Connector.keystorePass`); Synapse's
//! HTTPS transports read the alias named by the element's own `svns:secretAlias`, so the axis2.xml
//! aliases below are WSO2's (from the shipped, commented cipher-tool.properties lines).
//! A secured value is the literal text `password` plus `svns:secretAlias="alias"` on the element,
//! and `xmlns:svns="http://org.wso2.securevault/configuration"` on the root element.

use super::VaultError;
use crate::config::xmledit::{Edits, XmlDoc};

/// The namespace declared on the root element of a secured XML file.
pub const SVNS_NAMESPACE: &str = "http://org.wso2.securevault/configuration";
/// The attribute that names an element's alias.
pub const SECRET_ALIAS_ATTRIBUTE: &str = "svns:secretAlias";
/// The text the cipher tool puts in place of the password (element text or attribute value).
pub const PLACEHOLDER: &str = "password";

const FILE: &str = "cipher-tool.properties";

/// Where WSO2's files name an alias.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AliasSource {
    /// An active line of the shipped 2.6.0 `cipher-tool.properties`.
    ShippedActive,
    /// A commented line of the shipped file (`-Dconfigure` skips it until uncommented).
    ShippedCommented,
    /// Not in the shipped file; the consumer's naming rule gives it (carbon.xml's
    /// `"Carbon." + path`).
    ConsumerRule,
}

/// Which secret a field holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Secret {
    /// The keystore's password.
    StorePassword,
    /// The key entry's password.
    KeyPassword,
}

/// The keystore a field belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    /// carbon.xml `Security/KeyStore`: the primary keystore.
    CarbonPrimary,
    /// carbon.xml `Security/InternalKeyStore`.
    CarbonInternal,
    /// carbon.xml `Security/TrustStore`.
    CarbonTrust,
    /// catalina-server.xml HTTPS connector (9443): the node's TLS keystore.
    TomcatConnector,
    /// axis2.xml PassThrough HTTPS listener (8243) keystore.
    Axis2ListenerKey,
    /// axis2.xml PassThrough HTTPS listener truststore.
    Axis2ListenerTrust,
    /// axis2.xml PassThrough HTTPS sender keystore.
    Axis2SenderKey,
    /// axis2.xml PassThrough HTTPS sender truststore.
    Axis2SenderTrust,
}

/// One password field secure vault covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AliasSpec {
    /// The secret alias (as in cipher-text.properties).
    pub alias: &'static str,
    /// Relative to the product home.
    pub file: &'static str,
    /// The cipher tool's XPath (as in cipher-tool.properties, starting with `//`).
    pub xpath: &'static str,
    /// `Some(name)`: the value is that attribute of the selected element (flag `true`).
    pub attribute: Option<&'static str>,
    /// The keystore the field belongs to.
    pub store: Store,
    /// Which secret it holds.
    pub secret: Secret,
    /// Where the alias name comes from.
    pub source: AliasSource,
}

const CARBON: &str = "repository/conf/carbon.xml";
const CATALINA: &str = "repository/conf/tomcat/catalina-server.xml";
const AXIS2: &str = "repository/conf/axis2/axis2.xml";

const fn spec(
    alias: &'static str,
    file: &'static str,
    xpath: &'static str,
    store: Store,
    secret: Secret,
    source: AliasSource,
) -> AliasSpec {
    AliasSpec {
        alias,
        file,
        xpath,
        attribute: None,
        store,
        secret,
        source,
    }
}

use AliasSource::{ConsumerRule, ShippedActive, ShippedCommented};
use Secret::{KeyPassword, StorePassword};

/// The keystore, key and truststore password fields of the 2.6 files apim-pki edits.
///
/// Not covered, and why (see docs/secure-vault.md): site.json (Jaggery reads it as JSON, no
/// vault), broker.xml (the Andes configuration reader of this line has its vault lookup
/// commented out), data-bridge and thrift files (not in WSO2's alias list).
pub const ALIASES_26: [AliasSpec; 12] = [
    spec(
        "Carbon.Security.KeyStore.Password",
        CARBON,
        "//Server/Security/KeyStore/Password",
        Store::CarbonPrimary,
        StorePassword,
        ShippedActive,
    ),
    spec(
        "Carbon.Security.KeyStore.KeyPassword",
        CARBON,
        "//Server/Security/KeyStore/KeyPassword",
        Store::CarbonPrimary,
        KeyPassword,
        ShippedActive,
    ),
    spec(
        "Carbon.Security.InternalKeyStore.Password",
        CARBON,
        "//Server/Security/InternalKeyStore/Password",
        Store::CarbonInternal,
        StorePassword,
        ConsumerRule,
    ),
    spec(
        "Carbon.Security.InternalKeyStore.KeyPassword",
        CARBON,
        "//Server/Security/InternalKeyStore/KeyPassword",
        Store::CarbonInternal,
        KeyPassword,
        ConsumerRule,
    ),
    spec(
        "Carbon.Security.TrustStore.Password",
        CARBON,
        "//Server/Security/TrustStore/Password",
        Store::CarbonTrust,
        StorePassword,
        ShippedActive,
    ),
    AliasSpec {
        alias: "Server.Service.Connector.keystorePass",
        file: CATALINA,
        xpath: "//Server/Service/Connector[@keystorePass]",
        attribute: Some("keystorePass"),
        store: Store::TomcatConnector,
        secret: StorePassword,
        source: ShippedActive,
    },
    spec(
        "Axis2.Https.Listener.TrustStore.Password",
        AXIS2,
        "//axisconfig/transportReceiver[@name='https']/parameter[@name='truststore']/TrustStore/Password",
        Store::Axis2ListenerTrust,
        StorePassword,
        ShippedCommented,
    ),
    spec(
        "Axis2.Https.Listener.KeyStore.Password",
        AXIS2,
        "//axisconfig/transportReceiver[@name='https']/parameter[@name='keystore']/KeyStore/Password",
        Store::Axis2ListenerKey,
        StorePassword,
        ShippedCommented,
    ),
    spec(
        "Axis2.Https.Listener.KeyStore.KeyPassword",
        AXIS2,
        "//axisconfig/transportReceiver[@name='https']/parameter[@name='keystore']/KeyStore/KeyPassword",
        Store::Axis2ListenerKey,
        KeyPassword,
        ShippedCommented,
    ),
    spec(
        "Axis2.Https.Sender.TrustStore.Password",
        AXIS2,
        "//axisconfig/transportSender[@name='https']/parameter[@name='truststore']/TrustStore/Password",
        Store::Axis2SenderTrust,
        StorePassword,
        ShippedCommented,
    ),
    spec(
        "Axis2.Https.Sender.KeyStore.Password",
        AXIS2,
        "//axisconfig/transportSender[@name='https']/parameter[@name='keystore']/KeyStore/Password",
        Store::Axis2SenderKey,
        StorePassword,
        ShippedCommented,
    ),
    spec(
        "Axis2.Https.Sender.KeyStore.KeyPassword",
        AXIS2,
        "//axisconfig/transportSender[@name='https']/parameter[@name='keystore']/KeyStore/KeyPassword",
        Store::Axis2SenderKey,
        KeyPassword,
        ShippedCommented,
    ),
];

/// The spec of `alias`, if apim-pki covers it.
pub fn alias_spec(alias: &str) -> Option<&'static AliasSpec> {
    ALIASES_26.iter().find(|s| s.alias == alias)
}

impl AliasSpec {
    /// The `cipher-tool.properties` line (without newline): `alias=file//xpath,flag`.
    pub fn cipher_tool_line(&self) -> String {
        format!(
            "{}={}{},{}",
            self.alias,
            self.file,
            self.xpath,
            self.attribute.is_some()
        )
    }

    /// The path for apim-pki's XML editor (`config::xmledit`): the XPath without `//`; its
    /// `[@attr]` and `[@name='v']` predicates mean the same there.
    pub fn edit_path(&self) -> &'static str {
        self.xpath.trim_start_matches('/')
    }

    /// The element path the XPath selects, without `//` or a trailing `[@attr]` predicate
    /// (`Server/Security/KeyStore/Password`), for apim-pki's XML editor.
    pub fn element_path(&self) -> &'static str {
        let p = self.xpath.trim_start_matches('/');
        match self.attribute {
            Some(_) => p.rfind('[').map_or(p, |i| &p[..i]),
            None => p,
        }
    }
}

/// What a covered field of a 2.6 XML file holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldState {
    /// A password in clear (the value as written).
    Plain(String),
    /// In the vault under `alias` (the element carries `svns:secretAlias`).
    Secured {
        /// The alias.
        alias: String,
    },
    /// The file has no such field (nothing to secure).
    Missing,
}

fn xml_error(file: &'static str, e: impl std::fmt::Display) -> VaultError {
    VaultError::Xml {
        file,
        reason: e.to_string(),
    }
}

/// The state of every field of [`ALIASES_26`] that lives in `file` (a path relative to the
/// home, as in the table), read from its `text`. For `verify`: `Plain` is a
/// `plaintext-password`, `Secured` under another alias than the table's will not resolve.
pub fn field_states(
    file: &str,
    text: &str,
) -> Result<Vec<(&'static AliasSpec, FieldState)>, VaultError> {
    let specs: Vec<&'static AliasSpec> = ALIASES_26.iter().filter(|s| s.file == file).collect();
    let Some(first) = specs.first() else {
        return Ok(Vec::new());
    };
    let doc = XmlDoc::parse(text).map_err(|e| xml_error(first.file, e))?;
    Ok(specs
        .into_iter()
        .map(|spec| {
            let path = spec.edit_path();
            let state = if doc.count(path) == 0 {
                FieldState::Missing
            } else if doc.is_secured(path) {
                let alias = doc.attrs(path, "secretAlias").into_iter().next();
                FieldState::Secured {
                    alias: alias.unwrap_or_default(),
                }
            } else {
                let values = match spec.attribute {
                    Some(attr) => doc.attrs(path, attr),
                    None => doc.texts(path),
                };
                FieldState::Plain(values.into_iter().next().unwrap_or_default())
            };
            (spec, state)
        })
        .collect())
}

/// `text` of `file` with the fields of `aliases` secured as `ciphertool.sh -Dconfigure` leaves
/// them: value `password`, `svns:secretAlias="alias"` on the element, `xmlns:svns` on the root.
/// Every other byte stays (apim-pki's lossless editor; the cipher tool re-serialises the whole
/// document instead). Running it again changes nothing. An alias of another file, or a field
/// the file does not have, is an error.
pub fn secure_xml(file: &str, text: &str, aliases: &[&str]) -> Result<String, VaultError> {
    let mut specs = Vec::with_capacity(aliases.len());
    for alias in aliases {
        let spec = alias_spec(alias)
            .filter(|s| s.file == file)
            .ok_or_else(|| VaultError::BadAlias {
                alias: alias.to_string(),
                reason: "it is not a 2.6 vault alias of this file",
            })?;
        specs.push(spec);
    }
    let Some(first) = specs.first() else {
        return Ok(text.to_string());
    };
    let doc = XmlDoc::parse(text).map_err(|e| xml_error(first.file, e))?;
    let mut edits = Edits::new(&doc);
    for spec in &specs {
        let path = spec.edit_path();
        match spec.attribute {
            Some(attr) => edits.set_attr(path, attr, PLACEHOLDER),
            None => edits.set_text(path, PLACEHOLDER),
        }
        .and_then(|()| edits.set_attr(path, SECRET_ALIAS_ATTRIBUTE, spec.alias))
        .map_err(|e| xml_error(spec.file, e))?;
    }
    let root = first.edit_path().split('/').next().unwrap_or_default();
    edits
        .set_attr(root, "xmlns:svns", SVNS_NAMESPACE)
        .map_err(|e| xml_error(first.file, e))?;
    let (out, _) = edits.apply().map_err(|e| xml_error(first.file, e))?;
    Ok(out)
}

/// One active line of `cipher-tool.properties`, parsed as `CipherTool.secureVaultConfigTokens`
/// does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolEntry {
    /// The alias.
    pub alias: String,
    /// The file, relative to the product home.
    pub file: String,
    /// The XPath.
    pub xpath: String,
    /// The attribute holding the value, if not the element text.
    pub attribute: Option<String>,
    /// 1-based line.
    pub line: usize,
}

/// Reads the active entries. An entry without `//` is an error, as it is for the cipher tool
/// ("XPath is not defined for ...").
pub fn parse_cipher_tool(text: &str) -> Result<Vec<ToolEntry>, VaultError> {
    let entries = super::javaprops::parse(text).map_err(|(line, problem)| VaultError::Escape {
        file: FILE,
        line,
        problem,
    })?;
    entries
        .into_iter()
        .map(|e| {
            let v = e.value.as_str();
            let end_of_file = v.find("//").ok_or_else(|| VaultError::Parse {
                file: FILE,
                line: e.line,
                reason: format!("XPath is not defined for {}", e.key),
            })?;
            let (xpath, attribute) = match v.find(',') {
                Some(comma) if comma < end_of_file => {
                    return Err(VaultError::Parse {
                        file: FILE,
                        line: e.line,
                        reason: format!("{}: a comma comes before the XPath", e.key),
                    })
                }
                Some(comma) => {
                    let head = &v[..comma];
                    let flag = v[comma + 1..].trim() == "true";
                    let attr = if flag && head.ends_with(']') {
                        head.rfind("[@")
                            .map(|o| head[o + 2..head.len() - 1].to_string())
                    } else {
                        None
                    };
                    (&v[end_of_file..comma], attr)
                }
                None => (&v[end_of_file..], None),
            };
            Ok(ToolEntry {
                alias: e.key,
                file: v[..end_of_file].to_string(),
                xpath: xpath.to_string(),
                attribute,
                line: e.line,
            })
        })
        .collect()
}

/// `text` with an active line for every spec in `specs`: a commented `#alias=` line becomes
/// the active line in place, a missing one is appended, a matching active line is kept; every
/// other byte stays. Returns the text unchanged when nothing was missing.
pub fn ensure_cipher_tool_entries(text: &str, specs: &[&AliasSpec]) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    for spec in specs {
        let want = spec.cipher_tool_line();
        let active = |l: &str| {
            let t = l.trim_start();
            !t.starts_with('#') && t.split(['=', ':']).next().map(str::trim) == Some(spec.alias)
        };
        if let Some(i) = lines.iter().position(|l| active(l)) {
            lines[i] = want;
            continue;
        }
        let commented = |l: &str| {
            let t = l.trim_start().trim_start_matches('#').trim_start();
            l.trim_start().starts_with('#')
                && t.split(['=', ':']).next().map(str::trim) == Some(spec.alias)
        };
        match lines.iter().position(|l| commented(l)) {
            Some(i) => lines[i] = want,
            None => lines.push(want),
        }
    }
    let mut out = lines.join("\n");
    if text.ends_with('\n') || text.is_empty() {
        out.push('\n');
    }
    out
}

/// Reads a file of WSO2's real 2.6.0 tree from `../shared/reference/wso2/` for a test. Says so
/// visibly and returns `None` when the tree is absent; panics when `CI=true`.
#[cfg(test)]
pub(crate) fn reference_file(rel: &str) -> Option<String> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/reference/wso2/apim-2.6.0/wso2am-2.6.0")
        .join(rel);
    match std::fs::read(&path) {
        Ok(bytes) => Some(bytes.iter().map(|b| char::from(*b)).collect()),
        Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!(
                "WSO2 reference file {} is required in CI: {e}",
                path.display()
            )
        }
        Err(e) => {
            eprintln!(
                "note: WSO2 reference file {} is absent ({e}); skipping this check (CI=true makes it fail)",
                path.display()
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every alias WSO2 ships (active or commented) is spelt, pathed and flagged exactly as in
    /// the real 2.6.0 cipher-tool.properties.
    #[test]
    fn shipped_aliases_match_wso2s_cipher_tool_properties() {
        let Some(text) = reference_file("repository/conf/security/cipher-tool.properties") else {
            return;
        };
        let active = parse_cipher_tool(&text).unwrap();
        let uncommented: String = text
            .lines()
            .map(|l| l.strip_prefix('#').unwrap_or(l))
            .filter(|l| l.contains("//") && !l.starts_with(' ') && !l.contains(' '))
            .map(|l| format!("{l}\n"))
            .collect();
        let all = parse_cipher_tool(&uncommented).unwrap();
        for spec in &ALIASES_26 {
            let found_active = active.iter().any(|e| e.alias == spec.alias);
            let line = all.iter().find(|e| e.alias == spec.alias);
            match spec.source {
                AliasSource::ConsumerRule => assert!(line.is_none(), "{}", spec.alias),
                src => {
                    let e = line.unwrap_or_else(|| panic!("{} not shipped", spec.alias));
                    assert_eq!(
                        found_active,
                        src == AliasSource::ShippedActive,
                        "{}",
                        spec.alias
                    );
                    assert_eq!(e.file, spec.file, "{}", spec.alias);
                    assert_eq!(e.xpath, spec.xpath, "{}", spec.alias);
                    assert_eq!(e.attribute.as_deref(), spec.attribute, "{}", spec.alias);
                    let raw = uncommented
                        .lines()
                        .find(|l| l.starts_with(&format!("{}=", spec.alias)))
                        .unwrap();
                    assert_eq!(raw.trim_end(), spec.cipher_tool_line());
                }
            }
        }
    }

    /// carbon.xml aliases follow ServerConfiguration's "Carbon." + element path rule.
    #[test]
    fn carbon_aliases_follow_the_runtime_rule() {
        for spec in ALIASES_26.iter().filter(|s| s.file == CARBON) {
            let path = spec.element_path().trim_start_matches("Server/");
            assert_eq!(spec.alias, format!("Carbon.{}", path.replace('/', ".")));
        }
        let tomcat = alias_spec("Server.Service.Connector.keystorePass").unwrap();
        assert_eq!(tomcat.element_path(), "Server/Service/Connector");
    }

    /// Each field exists once in WSO2's real 2.6.0 file and holds the stock password there.
    #[test]
    fn every_alias_selects_one_field_of_the_real_2_6_files() {
        use crate::config::xmledit::XmlDoc;
        for spec in &ALIASES_26 {
            let Some(text) = reference_file(spec.file) else {
                return;
            };
            let doc = XmlDoc::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", spec.file));
            assert_eq!(doc.count(spec.edit_path()), 1, "{}", spec.alias);
            let values = match spec.attribute {
                Some(attr) => doc.attrs(spec.edit_path(), attr),
                None => doc.texts(spec.edit_path()),
            };
            assert_eq!(values, ["wso2carbon"], "{}", spec.alias);
            assert!(!doc.is_secured(spec.edit_path()), "{}", spec.alias);
        }
    }

    /// Securing WSO2's real carbon.xml, catalina-server.xml and axis2.xml: every field ends up
    /// in the vault under its alias, nothing else changes, and a second run is a no-op.
    #[test]
    fn secure_xml_on_the_real_2_6_files() {
        for file in [CARBON, CATALINA, AXIS2] {
            let Some(text) = reference_file(file) else {
                return;
            };
            let aliases: Vec<&str> = ALIASES_26
                .iter()
                .filter(|s| s.file == file)
                .map(|s| s.alias)
                .collect();
            let before = field_states(file, &text).unwrap();
            assert!(before
                .iter()
                .all(|(_, st)| *st == FieldState::Plain("wso2carbon".into())));
            let out = secure_xml(file, &text, &aliases).unwrap();
            for (spec, st) in field_states(file, &out).unwrap() {
                assert_eq!(
                    st,
                    FieldState::Secured {
                        alias: spec.alias.into()
                    },
                    "{file}"
                );
            }
            assert!(out.contains(&format!("xmlns:svns=\"{SVNS_NAMESPACE}\"")));
            assert_eq!(
                secure_xml(file, &out, &aliases).unwrap(),
                out,
                "{file}: idempotent"
            );
            let changed = text
                .lines()
                .zip(out.lines())
                .filter(|(a, b)| a != b)
                .count();
            // Each field's line (a multi-line tag may gain the alias on its last attribute's
            // line) and the root's: nothing else.
            let n = aliases.len();
            assert!(
                (n + 1..=2 * n + 1).contains(&changed),
                "{file}: {changed} lines changed for {n} fields"
            );
            assert_eq!(text.lines().count(), out.lines().count(), "{file}");
        }
    }

    #[test]
    fn secure_xml_refuses_foreign_aliases_and_missing_fields() {
        let err = secure_xml(
            CARBON,
            "<Server/>",
            &["Server.Service.Connector.keystorePass"],
        );
        assert!(matches!(err, Err(VaultError::BadAlias { .. })));
        let err = secure_xml(CARBON, "<Server/>", &["Carbon.Security.KeyStore.Password"]);
        assert!(matches!(err, Err(VaultError::Xml { .. })), "{err:?}");
        let states = field_states(CARBON, "<Server><Security/></Server>").unwrap();
        assert!(states.iter().all(|(_, s)| *s == FieldState::Missing));
    }

    #[test]
    fn ensure_entries_uncomments_in_place_and_appends() {
        let text = "# head\nCarbon.Security.KeyStore.Password=x//y,false\n#Axis2.Https.Listener.KeyStore.Password=old\nother=f.xml//A,false\n";
        let specs: Vec<&AliasSpec> = [
            "Carbon.Security.KeyStore.Password",
            "Axis2.Https.Listener.KeyStore.Password",
            "Carbon.Security.InternalKeyStore.Password",
        ]
        .iter()
        .map(|a| alias_spec(a).unwrap())
        .collect();
        let out = ensure_cipher_tool_entries(text, &specs);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "# head");
        assert_eq!(lines[1], specs[0].cipher_tool_line());
        assert_eq!(lines[2], specs[1].cipher_tool_line());
        assert_eq!(lines[3], "other=f.xml//A,false");
        assert_eq!(lines[4], specs[2].cipher_tool_line());
        assert!(out.ends_with('\n'));
        assert_eq!(ensure_cipher_tool_entries(&out, &specs), out, "idempotent");
        let parsed = parse_cipher_tool(&out).unwrap();
        assert_eq!(parsed.len(), 4);
    }

    #[test]
    fn parse_rejects_an_entry_without_xpath() {
        let err = parse_cipher_tool("a=repository/conf/carbon.xml\n").unwrap_err();
        assert!(err.to_string().contains("XPath is not defined for a"));
        let err = parse_cipher_tool("a=x,y//z,true\n").unwrap_err();
        assert!(err.to_string().contains("comma"), "{err}");
        // A flag without an attribute predicate selects the element, as in the cipher tool.
        let e = &parse_cipher_tool("a=f.xml//A/B,true\nb=f.xml//A[@k],true\n").unwrap();
        assert_eq!(e[0].attribute, None);
        assert_eq!(e[1].attribute.as_deref(), Some("k"));
    }
}
