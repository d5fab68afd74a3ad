//! The keystore consumers of API-M 2.6 that `apply` edits beyond carbon.xml and Tomcat, one small
//! rule per file, each checked on WSO2's real 2.6.0 files (tests/apply_real26.rs) and on small
//! fixtures of our own (below):
//!
//! - axis2.xml: the https receiver and sender keystores (absent on a traffic manager, whose
//!   axis2_TM.xml keeps them in comments) and the `wss` sender's trust store;
//! - SecureWebSocketInboundEndpoint.xml: the gateway's 8099 WSS listener;
//! - sslprofiles.xml: the https sender's dynamic SSL profile;
//! - site.json: the jaggery apps' SSO keystore settings, left empty so WSO2 falls back to
//!   carbon.xml's primary keystore;
//! - cipher-text.properties: the secure-vault aliases of the passwords apply writes;
//! - the start command that keeps apply's values (profileSetup.sh).

use std::path::Path;

use super::files::{BROKER, CARBON, DATA_AGENT, DATA_BRIDGE, ENDPOINT_CONFIG, IDENTITY};
use super::{
    decode_xml, shown, ApplyError, FileChange, Planned, Store, Stores, ValueChange, XmlFile, V26,
};
use crate::config::properties::Properties;
use crate::config::xmledit::XmlDoc;
use crate::error::FileProblem;
use crate::password::Password;

/// WSO2's 8099 WSS listener on gateways (a Synapse inbound endpoint).
pub(super) const SECURE_WEBSOCKET: &str =
    "repository/deployment/server/synapse-configs/default/inbound-endpoints/SecureWebSocketInboundEndpoint.xml";
/// The https sender's dynamic SSL profile (`dynamicSSLProfilesConfig` in axis2.xml).
pub(super) const SSL_PROFILES: &str = "repository/resources/security/sslprofiles.xml";
/// The gateway's BPS workflow callback proxy (a Synapse proxy service).
pub(super) const WORKFLOW_CALLBACK: &str =
    "repository/deployment/server/synapse-configs/default/proxy-services/WorkflowCallbackService.xml";
/// Secure vault's plain-text or encrypted secrets (alias=[plain] or alias=ciphertext).
pub(super) const CIPHER_TEXT: &str = "repository/conf/security/cipher-text.properties";

/// axis2.xml: `transportReceiver` and `transportSender` named https hold the TLS keystore and
/// the truststore. On a traffic manager the blocks exist only in comments, so they are optional
/// there (`keystores_optional`); everywhere else a missing block is an error. The `wss` sender's
/// `ws.trust.store` (WebSocket backends) holds the truststore where present.
pub(super) fn axis2(
    x: &mut XmlFile,
    stores: &Stores,
    keystores_optional: bool,
) -> Result<(), ApplyError> {
    for transport in ["transportReceiver", "transportSender"] {
        let base = format!("axisconfig/{transport}[@name='https']");
        let keystore = format!("{base}/parameter[@name='keystore']/KeyStore");
        if keystores_optional && x.doc.count(&keystore) == 0 {
            continue;
        }
        x.store(&keystore, &stores.tls, "Location", "Type", false)?;
        x.set(
            &format!("{keystore}/KeyPassword"),
            stores.tls.password.expose(),
        )?;
        x.store(
            &format!("{base}/parameter[@name='truststore']/TrustStore"),
            &stores.trust,
            "Location",
            "Type",
            false,
        )?;
    }
    let wss = "axisconfig/transportSender[@name='wss']/parameter[@name='ws.trust.store']";
    set_location_if_present(x, &format!("{wss}/ws.trust.store.location"), &stores.trust)?;
    set_if_present(
        x,
        &format!("{wss}/ws.trust.store.Password"),
        stores.trust.password.expose(),
    )
}

/// SecureWebSocketInboundEndpoint.xml: the WSS listener's key store (the TLS keystore, its key
/// protected by the same password) and trust store.
pub(super) fn secure_websocket(x: &mut XmlFile, stores: &Stores) -> Result<(), ApplyError> {
    let p = |name: &str| format!("inboundEndpoint/parameters/parameter[@name='{name}']");
    set_location_if_present(x, &p("wss.ssl.key.store.file"), &stores.tls)?;
    set_if_present(
        x,
        &p("wss.ssl.key.store.pass"),
        stores.tls.password.expose(),
    )?;
    set_if_present(x, &p("wss.ssl.cert.pass"), stores.tls.password.expose())?;
    set_location_if_present(x, &p("wss.ssl.trust.store.file"), &stores.trust)?;
    set_if_present(
        x,
        &p("wss.ssl.trust.store.pass"),
        stores.trust.password.expose(),
    )
}

/// sslprofiles.xml: each profile's KeyStore (the TLS keystore, as axis2's https sender) and
/// TrustStore.
pub(super) fn ssl_profiles(x: &mut XmlFile, stores: &Stores) -> Result<(), ApplyError> {
    if x.doc.count("parameter/profile/KeyStore") > 0 {
        x.store(
            "parameter/profile/KeyStore",
            &stores.tls,
            "Location",
            "Type",
            false,
        )?;
        x.set(
            "parameter/profile/KeyStore/KeyPassword",
            stores.tls.password.expose(),
        )?;
    }
    if x.doc.count("parameter/profile/TrustStore") > 0 {
        x.store(
            "parameter/profile/TrustStore",
            &stores.trust,
            "Location",
            "Type",
            false,
        )?;
    }
    Ok(())
}

fn set_if_present(x: &mut XmlFile, path: &str, value: &str) -> Result<(), ApplyError> {
    if x.doc.count(path) == 0 {
        return Ok(());
    }
    x.set(path, value)
}

fn set_location_if_present(x: &mut XmlFile, path: &str, store: &Store) -> Result<(), ApplyError> {
    let existing = x.doc.texts(path);
    let Some(first) = existing.first() else {
        return Ok(());
    };
    x.set(path, &super::edit::keystore_path(Some(first), &store.file))
}

/// site.json `ssoConfiguration` keys apply owns, and the value each gets: empty.
///
/// WSO2's jaggery code (carbon-apimgt 6.4.50, `jagg/jaggery_acs.jag` of publisher, store and
/// admin, and the publisher and store `sso/filter/template.jag`) replaces an empty
/// `keyStoreName`, `keyStorePassword` and `identityAlias` with carbon.xml's
/// `Security.KeyStore.Location`, `.Password` and `.KeyAlias` (read through ServerConfiguration,
/// which expands `${carbon.home}` and resolves secure vault). A non-empty name is opened as given
/// (`new FileInputStream(new File(keyStoreName))` in the SSO host object), relative to the working
/// directory: a bare file name then points at `<APIM_HOME>/wso2carbon.jks`, which does not exist.
/// Empty keeps SSO on the node's primary keystore and keeps its password out of site.json.
pub(super) const SITE_JSON_SSO: [(&str, &str); 3] = [
    ("keyStoreName", ""),
    ("keyStorePassword", ""),
    ("identityAlias", ""),
];

/// The secure-vault aliases of cipher-text.properties whose XML values apply writes, with the
/// file and element (or attribute) each protects (cipher-tool.properties) and the password it
/// must hold.
pub(super) fn cipher_text_aliases(stores: &Stores) -> [(&'static str, VaultTarget, &Password); 4] {
    [
        (
            "Carbon.Security.KeyStore.Password",
            VaultTarget::Element(CARBON, "Server/Security/KeyStore/Password"),
            &stores.primary.password,
        ),
        (
            "Carbon.Security.KeyStore.KeyPassword",
            VaultTarget::Element(CARBON, "Server/Security/KeyStore/KeyPassword"),
            &stores.primary.password,
        ),
        (
            "Carbon.Security.TrustStore.Password",
            VaultTarget::Element(CARBON, "Server/Security/TrustStore/Password"),
            &stores.trust.password,
        ),
        (
            "Server.Service.Connector.keystorePass",
            VaultTarget::ConnectorAttribute,
            &stores.tls.password,
        ),
    ]
}

/// What a secure-vault alias protects.
#[derive(Debug, Clone, Copy)]
pub(super) enum VaultTarget {
    /// An element's text; secured when it carries `svns:secretAlias`.
    Element(&'static str, &'static str),
    /// The HTTPS connector's `keystorePass` attribute, which apply always writes in plain text.
    ConnectorAttribute,
}

/// The value a cipher-text.properties entry must hold after apply, or `None` to leave it.
///
/// WSO2's cipher tool (`ciphertool.sh -Dconfigure`) encrypts every `alias=[plain]` entry and
/// then replaces the element cipher-tool.properties names with the alias. An entry still holding
/// `[wso2carbon]` would therefore put the old password back. Where apply wrote the password in
/// plain text, the entry gets `[new password]` (also replacing a ciphertext of an old password),
/// so running the tool encrypts what the XML holds; where the element is already secured, the
/// entry is the user's (apply reports the alias to re-encrypt) and stays.
pub(super) fn cipher_text_value(secured: bool, password: &Password) -> Option<String> {
    (!secured).then(|| format!("[{}]", password.expose()))
}

/// True when `target` is in secure vault in `home` (its element carries `svns:secretAlias`).
fn is_secured(home: &Path, target: VaultTarget) -> Result<bool, ApplyError> {
    let VaultTarget::Element(rel, path) = target else {
        return Ok(false);
    };
    let Ok(bytes) = crate::input::read(home.join(rel), crate::input::Limit::Config) else {
        return Ok(false);
    };
    let (text, _) = decode_xml(&bytes, rel, home)?;
    let doc = XmlDoc::parse(&text)
        .map_err(|e| ApplyError::home(home.join(rel), FileProblem::Xml(e.to_string()), V26))?;
    Ok(doc.is_secured(path))
}

/// cipher-text.properties made consistent with what apply writes; `None` when absent or
/// unchanged. Only aliases already in the file are touched.
pub(super) fn plan_cipher_text(
    home: &Path,
    stores: &Stores,
) -> Result<Option<Planned>, ApplyError> {
    let Ok(bytes) = crate::input::read(home.join(CIPHER_TEXT), crate::input::Limit::Config) else {
        return Ok(None);
    };
    let mut props = Properties::from_bytes(&bytes);
    let mut changes = Vec::new();
    for (alias, target, password) in cipher_text_aliases(stores) {
        if props.get(alias).is_none() {
            continue;
        }
        let Some(value) = cipher_text_value(is_secured(home, target)?, password) else {
            continue;
        };
        if let Some(c) = props.set(alias, &value) {
            changes.push(ValueChange {
                old: c.old.map(|o| shown(alias, &o)),
                new: shown(alias, &c.new),
                what: c.key,
            });
        }
    }
    if changes.is_empty() {
        return Ok(None);
    }
    Ok(Some(Planned {
        rel: CIPHER_TEXT.into(),
        bytes: props.to_bytes(),
        secret: true,
        change: FileChange {
            file: CIPHER_TEXT.into(),
            action: super::FileAction::Edit,
            changes,
        },
        consumes: None,
    }))
}

/// Files whose keystore settings carry no type: WSO2 opens the keystore there with
/// `KeyStore.getInstance("JKS")` (or the JDK default type), so a PKCS#12 file works only where the
/// JDK reads PKCS#12 through the JKS type (keystore.type.compat, JDK 8u60 and later).
pub(super) const UNTYPED_CONSUMERS: [&str; 8] = [
    IDENTITY,
    BROKER,
    DATA_BRIDGE,
    DATA_AGENT,
    ENDPOINT_CONFIG,
    SECURE_WEBSOCKET,
    "repository/deployment/server/jaggeryapps/publisher/site/conf/site.json",
    "repository/deployment/server/jaggeryapps/store/site/conf/site.json",
];

/// The files of [`UNTYPED_CONSUMERS`] that, once written, name a PKCS#12 keystore (site.json
/// always: its empty settings fall back to carbon.xml's primary keystore).
pub(super) fn untyped_files(home: &Path, planned: &[Planned]) -> Vec<&'static str> {
    UNTYPED_CONSUMERS
        .into_iter()
        .filter(|rel| {
            let bytes = planned
                .iter()
                .find(|p| p.rel == *rel)
                .map(|p| p.bytes.clone())
                .or_else(|| crate::input::read(home.join(rel), crate::input::Limit::Config).ok());
            bytes.is_some_and(|b| rel.ends_with("site.json") || b.windows(4).any(|w| w == b".p12"))
        })
        .collect()
}

/// The warning apply prints when a PKCS#12 set meets files that carry no keystore type.
pub(super) fn untyped_warning(
    format: crate::topology::KeystoreFormat,
    present: &[&str],
) -> Option<String> {
    if format == crate::topology::KeystoreFormat::Jks || present.is_empty() {
        return None;
    }
    Some(format!(
        "these files name a keystore without a type, so WSO2 opens the PKCS#12 file as JKS: that works only on JDK 8u60 or later (keystore.type.compat); on an older JDK use format = \"jks\": {}",
        present.join(", ")
    ))
}

/// The start command recorded in node.toml, and why.
///
/// WSO2's 2.6.0 `bin/wso2server.sh` runs `bin/profileSetup.sh` only when `--optimize` (or
/// `-optimize`, `optimize`) is given together with `-Dprofile=`; `-Dprofile=` alone only selects
/// the OSGi profile. profileSetup.sh rewrites api-manager.xml at every such start: on a
/// publisher it sets `DataPublisher/Enabled` and `JMSConnectionDetails/Enabled` to false, undoing
/// apply. So the recorded command never carries `--optimize`; to trim a node's webapps, run
/// `sh bin/profileSetup.sh -Dprofile=…` once before apply.
#[cfg(test)]
pub(crate) fn start_command_26(start_profile: Option<&str>) -> String {
    match start_profile {
        Some(p) => format!("sh bin/wso2server.sh -Dprofile={p}"),
        None => "sh bin/wso2server.sh".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Store, Stores, XmlFile};
    use super::*;
    use crate::config::xmledit::{Edits, XmlDoc};

    fn stores() -> Stores {
        use crate::password::PasswordRole;
        let s = |file: &str, pw: &str, alias: Option<&str>, role| Store {
            file: file.into(),
            java_type: "PKCS12",
            password: Password::new(pw.to_string()),
            alias: alias.map(str::to_string),
            role,
        };
        Stores {
            primary: s(
                "wso2carbon.p12",
                "prim-pw",
                Some("primary"),
                PasswordRole::Primary,
            ),
            tls: s("gw1-tls.p12", "tls-pw", Some("gw1"), PasswordRole::Tls),
            trust: s(
                "client-truststore.p12",
                "trust-pw",
                None,
                PasswordRole::Truststore,
            ),
        }
    }

    /// Runs `rule` over `text` and returns the new text.
    fn run(text: &str, rule: impl FnOnce(&mut XmlFile) -> Result<(), ApplyError>) -> String {
        let doc = XmlDoc::parse(text).expect("fixture parses");
        let mut x = XmlFile {
            rel: "test.xml",
            doc: &doc,
            edits: Edits::new(&doc),
            vault: Vec::new(),
        };
        rule(&mut x).expect("rule applies");
        x.edits.apply().expect("edits apply").0
    }

    const AXIS2_TM_LIKE: &str = "<axisconfig>\n  <!--transportReceiver name=\"https\" class=\"X\">\n    <parameter name=\"keystore\"><KeyStore><Location>repository/resources/security/wso2carbon.jks</Location><Type>JKS</Type><Password>wso2carbon</Password><KeyPassword>wso2carbon</KeyPassword></KeyStore></parameter>\n  </transportReceiver-->\n  <transportReceiver name=\"http\" class=\"Y\"/>\n</axisconfig>\n";

    #[test]
    fn a_keystore_block_only_in_a_comment_is_absent_on_a_traffic_manager() {
        let st = stores();
        assert_eq!(run(AXIS2_TM_LIKE, |x| axis2(x, &st, true)), AXIS2_TM_LIKE);
        let doc = XmlDoc::parse(AXIS2_TM_LIKE).expect("parses");
        let mut x = XmlFile {
            rel: "axis2.xml",
            doc: &doc,
            edits: Edits::new(&doc),
            vault: Vec::new(),
        };
        assert!(
            axis2(&mut x, &st, false).is_err(),
            "required elsewhere: exit 2"
        );
    }

    #[test]
    fn the_wss_sender_trust_store_gets_the_truststore() {
        let text = "<axisconfig>\n<transportSender name=\"wss\" class=\"W\">\n<parameter name=\"ws.trust.store\" locked=\"false\">\n<ws.trust.store.location>repository/resources/security/client-truststore.jks</ws.trust.store.location>\n<ws.trust.store.Password>wso2carbon</ws.trust.store.Password>\n</parameter>\n</transportSender>\n</axisconfig>\n";
        let st = stores();
        let out = run(text, |x| axis2(x, &st, true));
        assert!(out.contains("<ws.trust.store.location>repository/resources/security/client-truststore.p12</ws.trust.store.location>"));
        assert!(out.contains("<ws.trust.store.Password>trust-pw</ws.trust.store.Password>"));
        assert_eq!(out.lines().count(), text.lines().count());
    }

    #[test]
    fn the_wss_listener_serves_the_tls_keystore() {
        let text = "<inboundEndpoint xmlns=\"http://ws.apache.org/ns/synapse\" name=\"S\">\n<parameters>\n<parameter name=\"inbound.ws.port\">8099</parameter>\n<parameter name=\"wss.ssl.key.store.file\">repository/resources/security/wso2carbon.jks</parameter>\n<parameter name=\"wss.ssl.key.store.pass\">wso2carbon</parameter>\n<parameter name=\"wss.ssl.trust.store.file\">repository/resources/security/client-truststore.jks</parameter>\n<parameter name=\"wss.ssl.trust.store.pass\">wso2carbon</parameter>\n<parameter name=\"wss.ssl.cert.pass\">wso2carbon</parameter>\n</parameters>\n</inboundEndpoint>\n";
        let st = stores();
        let out = run(text, |x| secure_websocket(x, &st));
        let want = "<inboundEndpoint xmlns=\"http://ws.apache.org/ns/synapse\" name=\"S\">\n<parameters>\n<parameter name=\"inbound.ws.port\">8099</parameter>\n<parameter name=\"wss.ssl.key.store.file\">repository/resources/security/gw1-tls.p12</parameter>\n<parameter name=\"wss.ssl.key.store.pass\">tls-pw</parameter>\n<parameter name=\"wss.ssl.trust.store.file\">repository/resources/security/client-truststore.p12</parameter>\n<parameter name=\"wss.ssl.trust.store.pass\">trust-pw</parameter>\n<parameter name=\"wss.ssl.cert.pass\">tls-pw</parameter>\n</parameters>\n</inboundEndpoint>\n";
        assert_eq!(out, want);
    }

    #[test]
    fn ssl_profiles_get_the_tls_keystore_and_truststore() {
        let text = "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\n<parameter name=\"customSSLProfiles\">\n<profile>\n<servers>*</servers>\n<KeyStore>\n<Location>repository/resources/security/wso2carbon.jks</Location>\n<Type>JKS</Type>\n<Password>wso2carbon</Password>\n<KeyPassword>wso2carbon</KeyPassword>\n</KeyStore>\n<TrustStore>\n<Location>repository/resources/security/client-truststore.jks</Location>\n<Type>JKS</Type>\n<Password>wso2carbon</Password>\n</TrustStore>\n</profile>\n</parameter>\n";
        let st = stores();
        let out = run(text, |x| ssl_profiles(x, &st));
        for want in [
            "<Location>repository/resources/security/gw1-tls.p12</Location>\n<Type>PKCS12</Type>\n<Password>tls-pw</Password>\n<KeyPassword>tls-pw</KeyPassword>",
            "<Location>repository/resources/security/client-truststore.p12</Location>\n<Type>PKCS12</Type>\n<Password>trust-pw</Password>",
            "<servers>*</servers>",
        ] {
            assert!(out.contains(want), "{want} in {out}");
        }
    }

    #[test]
    fn cipher_text_follows_what_the_xml_holds() {
        let pw = Password::new("n3w".to_string());
        assert_eq!(cipher_text_value(false, &pw).as_deref(), Some("[n3w]"));
        assert_eq!(cipher_text_value(true, &pw), None);
        let st = stores();
        let aliases = cipher_text_aliases(&st);
        let names: Vec<&str> = aliases.iter().map(|a| a.0).collect();
        assert_eq!(
            names,
            [
                "Carbon.Security.KeyStore.Password",
                "Carbon.Security.KeyStore.KeyPassword",
                "Carbon.Security.TrustStore.Password",
                "Server.Service.Connector.keystorePass"
            ]
        );
        assert_eq!(aliases[2].2.expose(), "trust-pw");
        assert_eq!(aliases[3].2.expose(), "tls-pw");
    }

    #[test]
    fn cipher_text_entries_follow_plain_xml_and_leave_secured_ones() {
        let home = tempfile::tempdir().expect("tempdir");
        let write = |rel: &str, text: &str| {
            let p = home.path().join(rel);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            std::fs::write(p, text).expect("write");
        };
        write(
            super::CARBON,
            "<Server xmlns:svns=\"http://org.wso2.securevault/configuration\"><Security>\n<KeyStore><Password svns:secretAlias=\"Carbon.Security.KeyStore.Password\">password</Password><KeyPassword>prim-pw</KeyPassword></KeyStore>\n<TrustStore><Password>trust-pw</Password></TrustStore></Security></Server>\n",
        );
        write(
            CIPHER_TEXT,
            "# comment\nCarbon.Security.KeyStore.Password=cGxhaW4=\nCarbon.Security.KeyStore.KeyPassword=[wso2carbon]\nCarbon.Security.TrustStore.Password=[wso2carbon]\nUserManager.AdminUser.Password=[admin]\n",
        );
        let planned = plan_cipher_text(home.path(), &stores())
            .expect("plans")
            .expect("changes");
        assert!(planned.secret);
        assert_eq!(
            String::from_utf8(planned.bytes).expect("text"),
            "# comment\nCarbon.Security.KeyStore.Password=cGxhaW4=\nCarbon.Security.KeyStore.KeyPassword=[prim-pw]\nCarbon.Security.TrustStore.Password=[trust-pw]\nUserManager.AdminUser.Password=[admin]\n"
        );
        assert!(planned.change.changes.iter().all(|c| c.new == "********"));
    }

    #[test]
    fn the_start_command_never_optimizes() {
        assert_eq!(
            start_command_26(Some("api-publisher")),
            "sh bin/wso2server.sh -Dprofile=api-publisher"
        );
        assert_eq!(start_command_26(None), "sh bin/wso2server.sh");
        assert!(SITE_JSON_SSO.iter().all(|(_, v)| v.is_empty()));
    }

    #[test]
    fn pkcs12_with_untyped_files_warns_and_jks_does_not() {
        use crate::topology::KeystoreFormat;
        let files = [super::BROKER];
        assert_eq!(untyped_warning(KeystoreFormat::Jks, &files), None);
        assert_eq!(untyped_warning(KeystoreFormat::Pkcs12, &[]), None);
        for f in [KeystoreFormat::Pkcs12, KeystoreFormat::Pkcs12Legacy] {
            let w = untyped_warning(f, &files).expect("warns");
            assert!(w.contains("8u60") && w.contains("broker.xml"), "{w}");
        }
    }
}
