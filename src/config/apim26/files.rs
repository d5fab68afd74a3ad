//! What apply writes into each API-M 2.6 file, one small rule per file: which elements or keys,
//! which value from the node's plan, and when the rule applies. Each rule edits an [`XmlFile`]
//! (or a properties / JSON text) in memory; `apim26::apply` reads and writes the files.
//!
//! The plan's settings reach their file through [`settings_at`], an exhaustive match on
//! [`ConfigFile`]: a file added to the plan does not compile until apply knows where its values
//! go.

use super::edit::{keystore_path, with_amqp_credentials, XmlFile};
use super::stores::Stores;
use super::{ApplyError, ValueChange};
use crate::config::properties::Properties;
use crate::config::xmledit::EditError;
use crate::plan::{ConfigFile, NodePlan};

/// What a file rule reads: the node's plan and its keystores with their passwords.
pub(super) struct Ctx<'a> {
    pub(super) plan: &'a NodePlan,
    pub(super) stores: &'a Stores,
}

pub(super) const CARBON: &str = "repository/conf/carbon.xml";
pub(super) const CATALINA: &str = "repository/conf/tomcat/catalina-server.xml";
pub(super) const API_MANAGER: &str = "repository/conf/api-manager.xml";
pub(super) const JNDI: &str = "repository/conf/jndi.properties";
pub(super) const BROKER: &str = "repository/conf/broker.xml";
pub(super) const DATA_BRIDGE: &str = "repository/conf/data-bridge/data-bridge-config.xml";
pub(super) const DATA_AGENT: &str = "repository/conf/data-bridge/data-agent-config.xml";
pub(super) const ENDPOINT_CONFIG: &str = "repository/conf/identity/EndpointConfig.properties";
pub(super) const IDENTITY: &str = "repository/conf/identity/identity.xml";

/// How a file's settings are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SettingsAt {
    /// Element texts below the root element `root` (`path` = `A/B/C`).
    Elements { root: &'static str },
    /// Attributes below the root element (`path` = `A/B/@attr`); skipped where the element is
    /// absent.
    Attributes { root: &'static str },
    /// Keys of a `.properties` file.
    Properties,
}

/// Where the plan's settings for `file` go. Exhaustive on purpose.
pub(super) fn settings_at(file: ConfigFile) -> SettingsAt {
    match file {
        ConfigFile::Carbon | ConfigFile::Identity => SettingsAt::Elements { root: "Server" },
        ConfigFile::ApiManager => SettingsAt::Elements { root: "APIManager" },
        ConfigFile::WorkflowCallback => SettingsAt::Attributes { root: "proxy" },
        ConfigFile::Jndi => SettingsAt::Properties,
    }
}

/// The element a setting's `path` names in `x`: `root/path`, or, in api-manager.xml files of
/// the older layout, the URL groups inside `DataPublisher`.
fn element(x: &XmlFile, file: ConfigFile, root: &str, path: &str) -> String {
    let full = format!("{root}/{path}");
    if file == ConfigFile::ApiManager {
        if let Some(rest) = path.strip_prefix("ThrottlingConfigurations/TrafficManager/") {
            let old_layout = format!("{root}/ThrottlingConfigurations/DataPublisher/{rest}");
            if x.doc.count(&full) == 0 && x.doc.count(&old_layout) > 0 {
                return old_layout;
            }
        }
    }
    full
}

/// Writes the plan's settings for the XML file `file` into `x`.
pub(super) fn xml_settings(
    x: &mut XmlFile,
    plan: &NodePlan,
    file: ConfigFile,
) -> Result<(), ApplyError> {
    let at = settings_at(file);
    for s in plan.settings_for(file) {
        match at {
            SettingsAt::Elements { root } => {
                let full = element(x, file, root, &s.path);
                if s.optional && x.doc.count(&full) == 0 {
                    continue;
                }
                let existing = x.text(&full);
                x.set(
                    &full,
                    &with_amqp_credentials(&plan.value(s), existing.as_deref()),
                )?;
            }
            SettingsAt::Attributes { root } => {
                let Some((elem, attr)) = s.path.rsplit_once("/@") else {
                    continue;
                };
                let full = format!("{root}/{elem}");
                if x.doc.count(&full) > 0 {
                    x.set_attr(&full, attr, &plan.value(s))?;
                }
            }
            SettingsAt::Properties => {}
        }
    }
    Ok(())
}

/// Writes the plan's settings for the properties file `file` into `props`.
pub(super) fn properties_settings(
    props: &mut Properties,
    plan: &NodePlan,
    file: ConfigFile,
) -> Vec<ValueChange> {
    let mut changes = Vec::new();
    if settings_at(file) != SettingsAt::Properties {
        return changes;
    }
    for s in plan.settings_for(file) {
        let value = with_amqp_credentials(&plan.value(s), props.get(&s.path));
        if let Some(c) = props.set(&s.path, &value) {
            changes.push(ValueChange {
                what: c.key,
                old: c.old,
                new: c.new,
            });
        }
    }
    changes
}

/// carbon.xml: the primary keystore (and the internal keystore where the file has one), the
/// truststore, and the node's host names and port offset.
pub(super) fn carbon(x: &mut XmlFile, cx: &Ctx) -> Result<(), ApplyError> {
    let st = cx.stores;
    x.store(
        "Server/Security/KeyStore",
        &st.primary,
        "Location",
        "Type",
        true,
    )?;
    if x.doc.count("Server/Security/InternalKeyStore") > 0 {
        x.store(
            "Server/Security/InternalKeyStore",
            &st.primary,
            "Location",
            "Type",
            true,
        )?;
    }
    x.store(
        "Server/Security/TrustStore",
        &st.trust,
        "Location",
        "Type",
        false,
    )?;
    xml_settings(x, cx.plan, ConfigFile::Carbon)
}

/// catalina-server.xml: the HTTPS connector (9443) serves the TLS keystore.
pub(super) fn catalina(x: &mut XmlFile, cx: &Ctx) -> Result<(), ApplyError> {
    let tls = &cx.stores.tls;
    let connector = "Server/Service/Connector[@port='9443']";
    if x.doc.count(connector) == 0 {
        return Err(x.err(EditError::NotFound {
            path: connector.into(),
        }));
    }
    let existing = x.doc.attrs(connector, "keystoreFile");
    x.set_attr(
        connector,
        "keystoreFile",
        &keystore_path(existing.first().map(String::as_str), &tls.file),
    )?;
    x.set_attr(connector, "keystorePass", tls.password.expose())?;
    x.set_attr(connector, "keystoreType", tls.java_type)
}

/// api-manager.xml: the profile's peers and switches.
pub(super) fn api_manager(x: &mut XmlFile, cx: &Ctx) -> Result<(), ApplyError> {
    xml_settings(x, cx.plan, ConfigFile::ApiManager)
}

/// identity.xml: the Thrift entitlement keystore (the primary) and the ID token issuer.
pub(super) fn identity(x: &mut XmlFile, cx: &Ctx) -> Result<(), ApplyError> {
    let primary = &cx.stores.primary;
    for p in x.doc.paths_named("ThirftBasedEntitlementConfig") {
        x.set_location(&format!("{p}/KeyStore/Location"), primary)?;
        x.set(&format!("{p}/KeyStore/Password"), primary.password.expose())?;
    }
    xml_settings(x, cx.plan, ConfigFile::Identity)
}

/// WorkflowCallbackService.xml: the store's workflow listener the callback proxy posts to.
pub(super) fn workflow_callback(x: &mut XmlFile, cx: &Ctx) -> Result<(), ApplyError> {
    xml_settings(x, cx.plan, ConfigFile::WorkflowCallback)
}

/// broker.xml: each `sslConnection` serves the TLS keystore and trusts the truststore.
pub(super) fn broker(x: &mut XmlFile, cx: &Ctx) -> Result<(), ApplyError> {
    let st = cx.stores;
    for ssl in x.doc.paths_named("sslConnection") {
        x.set_location(&format!("{ssl}/keyStore/location"), &st.tls)?;
        x.set(
            &format!("{ssl}/keyStore/password"),
            st.tls.password.expose(),
        )?;
        x.set_location(&format!("{ssl}/trustStore/location"), &st.trust)?;
        x.set(
            &format!("{ssl}/trustStore/password"),
            st.trust.password.expose(),
        )?;
    }
    Ok(())
}

/// data-bridge-config.xml: the receiver's keystore is the TLS keystore.
pub(super) fn data_bridge(x: &mut XmlFile, cx: &Ctx) -> Result<(), ApplyError> {
    let tls = &cx.stores.tls;
    for p in x.doc.paths_named("keyStoreLocation") {
        x.set_location(&p, tls)?;
    }
    for p in x.doc.paths_named("keyStorePassword") {
        x.set(&p, tls.password.expose())?;
    }
    Ok(())
}

/// data-agent-config.xml: the publishers' trust store. WSO2's file spells the elements
/// `TrustSore` / `TrustSorePassword`; both spellings are accepted.
pub(super) fn data_agent(x: &mut XmlFile, cx: &Ctx) -> Result<(), ApplyError> {
    let trust = &cx.stores.trust;
    let named = |x: &XmlFile, a: &str, b: &str| {
        let mut v = x.doc.paths_named(a);
        v.extend(x.doc.paths_named(b));
        v
    };
    for p in named(x, "TrustSore", "TrustStore") {
        x.set_location(&p, trust)?;
    }
    for p in named(x, "TrustSorePassword", "TrustStorePassword") {
        x.set(&p, trust.password.expose())?;
    }
    Ok(())
}

/// EndpointConfig.properties: the identity endpoints' client keystore (TLS) and truststore.
pub(super) fn endpoint_config(props: &mut Properties, cx: &Ctx) -> Vec<ValueChange> {
    let st = cx.stores;
    let location = |p: &Properties, key: &str, file: &str| keystore_path(p.get(key), file);
    let values = [
        (
            "client.keyStore",
            location(props, "client.keyStore", &st.tls.file),
        ),
        (
            "Carbon.Security.KeyStore.Password",
            st.tls.password.expose().to_string(),
        ),
        (
            "client.trustStore",
            location(props, "client.trustStore", &st.trust.file),
        ),
        (
            "Carbon.Security.TrustStore.Password",
            st.trust.password.expose().to_string(),
        ),
    ];
    let mut changes = Vec::new();
    for (key, value) in values {
        if let Some(c) = props.set(key, &value) {
            changes.push(ValueChange {
                old: c.old.map(|o| super::edit::shown(key, &o)),
                new: super::edit::shown(key, &c.new),
                what: c.key,
            });
        }
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::super::stores::Store;
    use super::*;
    use crate::config::xmledit::XmlDoc;
    use crate::password::{Password, PasswordRole};
    use crate::plan::Plan;
    use crate::topology::Topology;

    fn plan(node: &str) -> NodePlan {
        let t = Topology::parse(crate::plan::tests::TOPOLOGY, std::path::Path::new("t.toml"))
            .expect("valid");
        Plan::build(&t).node(node).expect("node").clone()
    }

    fn stores() -> Stores {
        let s = |file: &str, pw: &str, alias: Option<&str>, role| Store {
            file: file.into(),
            java_type: "JKS",
            password: Password::new(pw.to_string()),
            alias: alias.map(str::to_string),
            role,
        };
        Stores {
            primary: s(
                "wso2carbon.jks",
                "prim-pw",
                Some("wso2carbon"),
                PasswordRole::Primary,
            ),
            tls: s("gw-tls.jks", "tls-pw", Some("gw"), PasswordRole::Tls),
            trust: s(
                "client-truststore.jks",
                "trust-pw",
                None,
                PasswordRole::Truststore,
            ),
        }
    }

    /// Runs `rule` for node `node` over `text` and returns the new text.
    fn run(
        node: &str,
        text: &str,
        rule: fn(&mut XmlFile, &Ctx) -> Result<(), ApplyError>,
    ) -> String {
        let (p, st) = (plan(node), stores());
        let doc = XmlDoc::parse(text).expect("fixture parses");
        let mut x = XmlFile::new("test.xml", &doc);
        rule(
            &mut x,
            &Ctx {
                plan: &p,
                stores: &st,
            },
        )
        .expect("rule applies");
        x.edits.apply().expect("edits apply").0
    }

    #[test]
    fn carbon_gets_the_keystores_the_public_host_and_the_offset() {
        let text = "<Server>\n<Ports><Offset>0</Offset></Ports>\n<Security>\n<KeyStore><Location>${carbon.home}/repository/resources/security/wso2carbon.jks</Location><Type>JKS</Type><Password>wso2carbon</Password><KeyAlias>wso2carbon</KeyAlias><KeyPassword>wso2carbon</KeyPassword></KeyStore>\n<TrustStore><Location>${carbon.home}/repository/resources/security/client-truststore.jks</Location><Type>JKS</Type><Password>wso2carbon</Password></TrustStore>\n</Security>\n</Server>\n";
        let out = run("tm2", text, carbon);
        for want in [
            "<HostName>tm.t.example</HostName>",
            "<MgtHostName>tm.t.example</MgtHostName>",
            "<Offset>1</Offset>",
            "<Password>prim-pw</Password><KeyAlias>wso2carbon</KeyAlias><KeyPassword>prim-pw</KeyPassword>",
            "client-truststore.jks</Location><Type>JKS</Type><Password>trust-pw</Password>",
        ] {
            assert!(out.contains(want), "{want} in {out}");
        }
    }

    #[test]
    fn catalina_serves_the_tls_keystore_and_needs_the_connector() {
        let text = "<Server><Service><Connector port=\"9443\" keystoreFile=\"${carbon.home}/repository/resources/security/wso2carbon.jks\" keystorePass=\"wso2carbon\"/></Service></Server>";
        let out = run("gw", text, catalina);
        assert!(
            out.contains(
                "keystoreFile=\"${carbon.home}/repository/resources/security/gw-tls.jks\""
            ),
            "{out}"
        );
        assert!(
            out.contains("keystorePass=\"tls-pw\"") && out.contains("keystoreType=\"JKS\""),
            "{out}"
        );
        let (p, st) = (plan("gw"), stores());
        let doc = XmlDoc::parse("<Server><Service/></Server>").expect("parses");
        let mut x = XmlFile::new("catalina-server.xml", &doc);
        assert!(catalina(
            &mut x,
            &Ctx {
                plan: &p,
                stores: &st
            }
        )
        .is_err());
    }

    #[test]
    fn api_manager_keeps_amqp_credentials_and_the_older_layout() {
        let text = "<APIManager>\n<ThrottlingConfigurations><DataPublisher><Enabled>false</Enabled><ReceiverUrlGroup>tcp://localhost:9611</ReceiverUrlGroup></DataPublisher>\n<JMSConnectionDetails><JMSConnectionParameters><connectionfactory.TopicConnectionFactory>amqp://bob:pw@clientid/carbon?brokerlist='tcp://localhost:5672'</connectionfactory.TopicConnectionFactory></JMSConnectionParameters></JMSConnectionDetails></ThrottlingConfigurations>\n</APIManager>\n";
        let p = plan("gw");
        let present: Vec<_> = p
            .settings_for(ConfigFile::ApiManager)
            .filter(|s| !s.optional)
            .collect();
        assert!(!present.is_empty());
        let doc = XmlDoc::parse(text).expect("parses");
        let st = stores();
        let mut x = XmlFile::new("api-manager.xml", &doc);
        // Required elements missing from this trimmed file stop apply; the ones present change.
        assert!(api_manager(
            &mut x,
            &Ctx {
                plan: &p,
                stores: &st
            }
        )
        .is_err());
        let mut only = p.clone();
        only.settings.retain(|s| {
            s.path.ends_with("ReceiverUrlGroup") || s.path.ends_with("TopicConnectionFactory")
        });
        let mut x = XmlFile::new("api-manager.xml", &doc);
        api_manager(
            &mut x,
            &Ctx {
                plan: &only,
                stores: &st,
            },
        )
        .expect("applies");
        let out = x.edits.apply().expect("edits").0;
        assert!(out.contains("<ReceiverUrlGroup>{tcp://tm1.t.example:9611}, {tcp://tm2.t.example:9612}</ReceiverUrlGroup>"), "{out}");
        assert!(
            out.contains("amqp://bob:pw@clientID/carbon?failover="),
            "{out}"
        );
    }

    #[test]
    fn optional_settings_skip_absent_elements() {
        let text = "<Server><OAuth/></Server>";
        let out = run("gw", text, identity);
        assert_eq!(out, text, "IDTokenIssuerID is optional");
        let text = "<Server><OAuth><OpenIDConnect><IDTokenIssuerID>https://localhost:9443/oauth2/token</IDTokenIssuerID></OpenIDConnect></OAuth></Server>";
        let out = run("gw", text, identity);
        assert!(
            out.contains("https://km.t.example:9443/oauth2/token"),
            "{out}"
        );
    }

    #[test]
    fn broker_bridge_and_agent_name_the_tls_keystore_and_truststore() {
        let text = "<broker><transports><amqp><sslConnection><keyStore><location>repository/resources/security/wso2carbon.jks</location><password>wso2carbon</password></keyStore><trustStore><location>repository/resources/security/client-truststore.jks</location><password>wso2carbon</password></trustStore></sslConnection></amqp></transports></broker>";
        let out = run("tm1", text, broker);
        assert_eq!(
            out,
            text.replace(
                "wso2carbon.jks</location><password>wso2carbon",
                "gw-tls.jks</location><password>tls-pw"
            )
            .replace(
                "client-truststore.jks</location><password>wso2carbon",
                "client-truststore.jks</location><password>trust-pw"
            )
        );
        let bridge = "<dataBridgeConfiguration><keyStoreLocation>${carbon.home}/repository/resources/security/wso2carbon.jks</keyStoreLocation><keyStorePassword>wso2carbon</keyStorePassword></dataBridgeConfiguration>";
        let out = run("tm1", bridge, data_bridge);
        assert!(
            out.contains("security/gw-tls.jks</keyStoreLocation><keyStorePassword>tls-pw<"),
            "{out}"
        );
        let agent = "<DataAgentsConfiguration><Agent><TrustSore>repository/resources/security/client-truststore.jks</TrustSore><TrustSorePassword>wso2carbon</TrustSorePassword></Agent></DataAgentsConfiguration>";
        let out = run("gw", agent, data_agent);
        assert!(
            out.contains("<TrustSorePassword>trust-pw</TrustSorePassword>"),
            "{out}"
        );
    }

    #[test]
    fn jndi_and_endpoint_config_are_properties() {
        let p = plan("pub");
        let st = stores();
        let mut props = Properties::from_bytes(b"connectionfactory.TopicConnectionFactory = amqp://admin:admin@clientid/carbon?brokerlist='tcp://localhost:5672'\ntopic.throttleData = throttleData\n");
        let changes = properties_settings(&mut props, &p, ConfigFile::Jndi);
        assert_eq!(changes.len(), 1, "topic.throttleData is already right");
        let text = String::from_utf8(props.to_bytes()).expect("utf8");
        assert!(
            text.contains("amqp://admin:admin@clientID/carbon?failover='roundrobin'"),
            "{text}"
        );
        let mut props = Properties::from_bytes(b"client.keyStore=./repository/resources/security/wso2carbon.jks\nCarbon.Security.KeyStore.Password=wso2carbon\n");
        let changes = endpoint_config(
            &mut props,
            &Ctx {
                plan: &p,
                stores: &st,
            },
        );
        assert_eq!(changes.len(), 4, "missing keys are added");
        assert_eq!(changes.iter().filter(|c| c.new == "********").count(), 2);
        let text = String::from_utf8(props.to_bytes()).expect("utf8");
        assert!(
            text.contains("client.keyStore=./repository/resources/security/gw-tls.jks"),
            "{text}"
        );
    }

    #[test]
    fn the_workflow_callback_posts_to_the_store_where_the_address_exists() {
        let text = "<proxy xmlns=\"http://ws.apache.org/ns/synapse\" name=\"W\">\n<target><inSequence><send><endpoint>\n<address uri=\"https://localhost:9443/store/x.jag\"\n format=\"rest\"/>\n</endpoint></send></inSequence></target>\n</proxy>\n";
        let out = run("gw", text, workflow_callback);
        assert_eq!(
            out,
            text.replace(
                "https://localhost:9443/store/x.jag",
                "https://store.t.example:9443/store/site/blocks/workflow/workflow-listener/ajax/workflow-listener.jag"
            )
        );
        let trimmed = "<proxy name=\"W\"><target/></proxy>";
        assert_eq!(run("gw", trimmed, workflow_callback), trimmed);
        // The store's own callback is not rewritten (the setting is the gateway's).
        assert_eq!(run("store", text, workflow_callback), text);
    }

    #[test]
    fn every_config_file_of_the_plan_has_a_destination() {
        for file in ConfigFile::ALL {
            let at = settings_at(file);
            assert_eq!(
                at == SettingsAt::Properties,
                file.path().ends_with(".properties"),
                "{file:?}"
            );
        }
    }
}
