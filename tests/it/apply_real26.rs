//! `apim-pki apply` on WSO2's REAL API-M 2.6.0 files (../shared/reference/wso2/apim-2.6.0, never
//! copied into the project): each test generates a set, copies the real tree once per node into a
//! temporary directory and applies the node to it. Without that folder the tests print a visible
//! note and pass; under `CI=true` they fail.
//!
//! Topologies: the seed's HA example (JKS, gateway manager, load balancers); HA gateways on a
//! shared file system with an offset on every node and two traffic managers (PKCS#12); IPv6
//! hosts with one shared TLS keystore (pkcs12-legacy); every profile on one host with offsets.
//!
//! For every node:
//! - apply exits 0 and a second apply changes nothing;
//! - every changed line differs only inside a value apply owns (`owned`); lines it adds are the
//!   elements config-2.6.md creates; the traffic manager's swapped files are WSO2's `_TM` files;
//! - a scan of EVERY file of the applied tree (comments skipped) finds no active setting naming
//!   WSO2's default keystores (by content), the password `wso2carbon`, or `localhost` for a peer
//!   the topology places elsewhere, except the documented allow-list (`localhost_role`, mirrored
//!   in docs/apply-2.6.md);
//! - the merged truststore no longer trusts WSO2's well-known default keys (fingerprints
//!   recomputed here from the shipped client-truststore.jks), and `verify` reports a truststore
//!   that does (`trusts-default-key`).
//!
//! Then JSSE (JDK 17): from each node's configured truststore, a handshake with HTTPS host-name
//! checking succeeds to every TLS peer URL in its node.toml, served by the keystore the peer's
//! applied files configure for that port, and fails against WSO2's default keystore.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::util::cli::{generate, ha_example, run, secrets, snapshot, write_topology};
use crate::util::files::{copy_tree, decode, in_ci};
use crate::util::java;
use apim_pki::xml::XmlDoc;
use serde_json::Value;

const REAL: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/reference/wso2/apim-2.6.0/wso2am-2.6.0"
);
const BACKUP_DIR: &str = ".apim-pki-backup";
const SECURITY: &str = "repository/resources/security";

/// The real tree, or `None` after a visible note (a failure under `CI=true`).
fn real_tree() -> Option<PathBuf> {
    let p = PathBuf::from(REAL);
    if p.join("repository/conf/carbon.xml").is_file() {
        return Some(p);
    }
    if in_ci() {
        panic!(
            "{REAL} is missing: CI must provide ../shared/reference/wso2 (WSO2's real 2.6.0 files)"
        );
    }
    eprintln!("note: {REAL} is absent: the checks on WSO2's real 2.6.0 files are SKIPPED (CI=true makes this a failure)");
    None
}

const HA_P12: &str = r#"
name = "hap12"
product = "apim-2.6"
[keystores]
format = "pkcs12"
[[node]]
name = "km"
profile = "key-manager"
host = "km.hap12.example"
offset = 5
[[node]]
name = "pub"
profile = "publisher"
host = "pub.hap12.example"
offset = 1
[[node]]
name = "store"
profile = "store"
host = "store.hap12.example"
offset = 2
[[node]]
name = "tm1"
profile = "traffic-manager"
host = "tm1.hap12.example"
offset = 3
[[node]]
name = "tm2"
profile = "traffic-manager"
host = "tm2.hap12.example"
offset = 4
[[node]]
name = "gw1"
profile = "gateway-worker"
host = "gw1.hap12.example"
offset = 6
[[node]]
name = "gw2"
profile = "gateway-worker"
host = "gw2.hap12.example"
offset = 7
[[load_balancer]]
host = "tm.hap12.example"
fronts = "traffic-manager"
[[load_balancer]]
host = "gw.hap12.example"
fronts = "gateway-worker"
"#;

const IPV6_SHARED_LEGACY: &str = r#"
name = "v6"
product = "apim-2.6"
[keystores]
format = "pkcs12-legacy"
tls = "shared"
[[node]]
name = "km"
profile = "key-manager"
host = "fd00::11"
[[node]]
name = "pub"
profile = "publisher"
host = "fd00::12"
[[node]]
name = "store"
profile = "store"
host = "fd00::13"
[[node]]
name = "tm"
profile = "traffic-manager"
host = "fd00::14"
[[node]]
name = "gw"
profile = "gateway-worker"
host = "fd00::15"
"#;

const ONE_HOST: &str = r#"
name = "onehost"
product = "apim-2.6"
[[node]]
name = "km"
profile = "key-manager"
host = "apim.onehost.example"
[[node]]
name = "pub"
profile = "publisher"
host = "apim.onehost.example"
offset = 1
[[node]]
name = "store"
profile = "store"
host = "apim.onehost.example"
offset = 2
[[node]]
name = "tm"
profile = "traffic-manager"
host = "apim.onehost.example"
offset = 3
[[node]]
name = "gw"
profile = "gateway-worker"
host = "apim.onehost.example"
offset = 4
"#;

// ---------------------------------------------------------------------------------------------
// Files and text
// ---------------------------------------------------------------------------------------------

fn without_backup(snap: BTreeMap<String, Vec<u8>>) -> BTreeMap<String, Vec<u8>> {
    snap.into_iter()
        .filter(|(k, _)| !k.starts_with(BACKUP_DIR))
        .collect()
}

fn is_keystore(rel: &str) -> bool {
    rel.ends_with(".jks") || rel.ends_with(".p12")
}

fn base(rel: &str) -> &str {
    rel.rsplit('/').next().unwrap_or(rel)
}

/// The text with comments blanked (same length, newlines kept): XML comments, `#`/`!` lines of
/// .properties and shell files, `//` comments of site.json outside strings.
fn active_text(rel: &str, text: &str) -> String {
    let blank = |s: &str| -> String {
        s.chars()
            .map(|c| if c == '\n' { '\n' } else { ' ' })
            .collect()
    };
    if rel.ends_with(".xml") {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(i) = rest.find("<!--") {
            out.push_str(&rest[..i]);
            let end = rest[i..].find("-->").map_or(rest.len(), |j| i + j + 3);
            out.push_str(&blank(&rest[i..end]));
            rest = &rest[end..];
        }
        out.push_str(rest);
        return out;
    }
    let line_comment = |line: &str| -> usize {
        if rel.ends_with(".json") {
            let (mut in_str, mut esc) = (false, false);
            let b = line.as_bytes();
            for i in 0..b.len() {
                match (in_str, esc, b[i]) {
                    (true, true, _) => esc = false,
                    (true, false, b'\\') => esc = true,
                    (true, false, b'"') => in_str = false,
                    (false, _, b'"') => in_str = true,
                    (false, _, b'/') if b.get(i + 1) == Some(&b'/') => return i,
                    _ => {}
                }
            }
            line.len()
        } else {
            let t = line.trim_start();
            if t.starts_with('#') || t.starts_with('!') {
                0
            } else {
                line.len()
            }
        }
    };
    text.split_inclusive('\n')
        .map(|line| {
            let cut = line_comment(line);
            format!("{}{}", &line[..cut], blank(&line[cut..]))
        })
        .collect()
}

/// The element path at `pos` of XML text whose comments are blanked.
fn xml_path_at(text: &str, pos: usize) -> String {
    let local = |n: &str| n.rsplit(':').next().unwrap_or(n).to_string();
    let mut stack: Vec<String> = Vec::new();
    let mut i = 0;
    let bytes = text.as_bytes();
    while let Some(off) = text[i..pos].find('<') {
        let lt = i + off;
        let Some(gt_off) = text[lt..].find('>') else {
            break;
        };
        let gt = lt + gt_off;
        let tag = &text[lt + 1..gt];
        if gt >= pos {
            // Inside this tag: an attribute value.
            let name: String = tag.chars().take_while(|c| !c.is_whitespace()).collect();
            let upto = &text[lt..pos];
            let attr = upto[..upto.rfind("=\"").unwrap_or(0)]
                .rsplit(|c: char| c.is_whitespace())
                .next()
                .unwrap_or("");
            stack.push(format!("{}@{attr}", local(&name)));
            return stack.join("/");
        }
        if tag.starts_with('?') || tag.starts_with('!') {
        } else if let Some(close) = tag.strip_prefix('/') {
            let _ = close;
            stack.pop();
        } else if bytes[gt - 1] != b'/' {
            let name: String = tag.chars().take_while(|c| !c.is_whitespace()).collect();
            let label = match tag.find("name=\"") {
                Some(k) => {
                    let v = &tag[k + 6..];
                    format!("{}[{}]", local(&name), &v[..v.find('"').unwrap_or(v.len())])
                }
                None => local(&name),
            };
            stack.push(label);
        }
        i = gt + 1;
    }
    stack.join("/")
}

/// What a position of an active text belongs to: for XML the element path from the root (local
/// names; the last step as `Name[value of its name attribute]` when it has one, `Name@attr` inside
/// a tag), for .properties the key, for site.json the key.
fn context_at(rel: &str, text: &str, pos: usize) -> String {
    let before = &text[..pos];
    if rel.ends_with(".xml") {
        return xml_path_at(text, pos);
    }
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = &before[line_start..];
    if rel.ends_with(".json") {
        // The last "key" followed by ':' before pos.
        let mut key = String::new();
        let mut rest = before;
        while let Some(colon) = rest.rfind(':') {
            let head = rest[..colon].trim_end();
            if let Some(h) = head.strip_suffix('"') {
                if let Some(q) = h.rfind('"') {
                    key = h[q + 1..].to_string();
                    break;
                }
            }
            rest = &rest[..colon];
        }
        return key;
    }
    line.split(['=', ':'])
        .next()
        .unwrap_or("")
        .trim()
        .to_string()
}

// ---------------------------------------------------------------------------------------------
// Owned values
// ---------------------------------------------------------------------------------------------

/// The element names (`Name`), attributes (`@attr`) and keys apply may change in a file.
fn owned(rel: &str) -> &'static [&'static str] {
    match base(rel) {
        "carbon.xml" => &[
            "Location",
            "Type",
            "Password",
            "KeyAlias",
            "KeyPassword",
            "HostName",
            "MgtHostName",
            "Offset",
        ],
        "catalina-server.xml" => &["@keystoreFile", "@keystorePass", "@keystoreType"],
        "axis2.xml" | "sslprofiles.xml" => &[
            "Location",
            "Type",
            "Password",
            "KeyPassword",
            "ws.trust.store.location",
            "ws.trust.store.Password",
        ],
        "api-manager.xml" => &[
            "ServerURL",
            "GatewayEndpoint",
            "GatewayWSEndpoint",
            "RevokeAPIURL",
            "URL",
            "DisplayURL",
            "KeyValidatorClientType",
            "EnableThriftServer",
            "ThriftServerHost",
            "ThriftServerPort",
            "ThriftClientPort",
            "EnableAdvanceThrottling",
            "Enabled",
            "Type",
            "ReceiverUrlGroup",
            "AuthUrlGroup",
            "ServiceURL",
            "connectionfactory.TopicConnectionFactory",
            "WorkflowCallbackAPI",
            "TokenEndPoint",
            "DCREndPoint",
        ],
        "jndi.properties" => &[
            "connectionfactory.TopicConnectionFactory",
            "topic.throttleData",
        ],
        "broker.xml" => &["location", "password"],
        "data-bridge-config.xml" => &["keyStoreLocation", "keyStorePassword"],
        "data-agent-config.xml" => &[
            "TrustSore",
            "TrustSorePassword",
            "TrustStore",
            "TrustStorePassword",
        ],
        "EndpointConfig.properties" => &[
            "client.keyStore",
            "Carbon.Security.KeyStore.Password",
            "client.trustStore",
            "Carbon.Security.TrustStore.Password",
        ],
        "identity.xml" => &["Location", "Password", "IDTokenIssuerID"],
        "site.json" => &["keyStoreName", "keyStorePassword", "identityAlias"],
        "SecureWebSocketInboundEndpoint.xml" => &[
            "parameter[wss.ssl.key.store.file]",
            "parameter[wss.ssl.key.store.pass]",
            "parameter[wss.ssl.cert.pass]",
            "parameter[wss.ssl.trust.store.file]",
            "parameter[wss.ssl.trust.store.pass]",
        ],
        "WorkflowCallbackService.xml" => &["@uri"],
        "cipher-text.properties" => &[
            "Carbon.Security.KeyStore.Password",
            "Carbon.Security.KeyStore.KeyPassword",
            "Carbon.Security.TrustStore.Password",
            "Server.Service.Connector.keystorePass",
        ],
        _ => &[],
    }
}

/// Lines apply may add: the elements config-2.6.md creates, and Tomcat's keystoreType.
fn is_created_line(rel: &str, line: &str) -> bool {
    let t = line.trim();
    if base(rel) == "catalina-server.xml" {
        return t.starts_with("keystoreType=\"");
    }
    [
        "HostName",
        "MgtHostName",
        "ThriftClientPort",
        "ThriftServerPort",
        "ServiceURL",
    ]
    .iter()
    .any(|n| t.starts_with(&format!("<{n}>")) && t.ends_with(&format!("</{n}>")))
}

/// Longest-common-subsequence line diff: (removed, added) runs between common lines.
fn diff_runs<'a>(a: &[&'a str], b: &[&'a str]) -> Vec<(Vec<&'a str>, Vec<&'a str>)> {
    let (n, m) = (a.len(), b.len());
    let mut lcs = vec![0u32; (n + 1) * (m + 1)];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i * (m + 1) + j] = if a[i] == b[j] {
                lcs[(i + 1) * (m + 1) + j + 1] + 1
            } else {
                lcs[(i + 1) * (m + 1) + j].max(lcs[i * (m + 1) + j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut runs = Vec::new();
    let (mut del, mut add) = (Vec::new(), Vec::new());
    while i < n || j < m {
        if i < n && j < m && a[i] == b[j] {
            if !del.is_empty() || !add.is_empty() {
                runs.push((std::mem::take(&mut del), std::mem::take(&mut add)));
            }
            i += 1;
            j += 1;
        } else if j < m && (i == n || lcs[i * (m + 1) + j + 1] >= lcs[(i + 1) * (m + 1) + j]) {
            add.push(b[j]);
            j += 1;
        } else {
            del.push(a[i]);
            i += 1;
        }
    }
    if !del.is_empty() || !add.is_empty() {
        runs.push((del, add));
    }
    runs
}

/// Whether `old` → `new` changes only one owned value of `rel`.
fn line_change_owned(rel: &str, old: &str, new: &str) -> Result<(), String> {
    let p = old
        .char_indices()
        .zip(new.chars())
        .find(|((_, a), b)| a != b)
        .map_or(old.len().min(new.len()), |((i, _), _)| i);
    let s = old[p..]
        .chars()
        .rev()
        .zip(new[p..].chars().rev())
        .take_while(|(a, b)| a == b)
        .map(|(a, _)| a.len_utf8())
        .sum::<usize>();
    let (om, nm) = (&old[p..old.len() - s], &new[p..new.len() - s]);
    if base(rel) == "catalina-server.xml" && om.is_empty() {
        let t = nm.trim();
        if t.starts_with("keystoreType=\"") && t.ends_with('"') && t.matches('"').count() == 2 {
            return Ok(());
        }
    }
    if [om, nm].iter().any(|m| m.contains(['<', '>', '\n'])) {
        return Err(format!("markup changed: {old:?} → {new:?}"));
    }
    let ctx = context_at(rel, old, p);
    let last = ctx.rsplit('/').next().unwrap_or(&ctx).to_string();
    let name = match last.split_once('@') {
        Some((_, attr)) => format!("@{attr}"),
        None if last.is_empty() && old[..p].contains("=\"") => {
            let b = &old[..p];
            let attr = b[..b.rfind("=\"").unwrap_or(0)].trim();
            format!(
                "@{}",
                attr.rsplit(char::is_whitespace).next().unwrap_or(attr)
            )
        }
        None => last,
    };
    let plain = name.split('[').next().unwrap_or(&name);
    let own = owned(rel);
    if own.contains(&name.as_str()) || (plain != "parameter" && own.contains(&plain)) {
        Ok(())
    } else {
        Err(format!(
            "{name} is not a value apply owns: {old:?} → {new:?}"
        ))
    }
}

/// Every changed line of `rel` changes only owned values.
fn check_owned_changes(rel: &str, old: &str, new: &str) -> Vec<String> {
    let a: Vec<&str> = old.split_inclusive('\n').collect();
    let b: Vec<&str> = new.split_inclusive('\n').collect();
    let mut fails = Vec::new();
    for (del, add) in diff_runs(&a, &b) {
        let add: Vec<&str> = if add.len() > del.len() {
            add.into_iter()
                .filter(|l| !is_created_line(rel, l))
                .collect()
        } else {
            add
        };
        if del.len() != add.len() {
            fails.push(format!(
                "{rel}: lines changed beyond owned values:\n-{del:?}\n+{add:?}"
            ));
            continue;
        }
        for (o, n) in del.iter().zip(&add) {
            if let Err(e) = line_change_owned(rel, o, n) {
                fails.push(format!("{rel}: {e}"));
            }
        }
    }
    fails
}

// ---------------------------------------------------------------------------------------------
// The scan of an applied tree
// ---------------------------------------------------------------------------------------------

/// What a `localhost` (or 127.0.0.1) at (file, context) names.
#[derive(Debug)]
enum Role {
    /// A peer of these profiles: a finding on a node of any other profile.
    Peer(&'static [&'static str]),
    /// Allowed on every node, for the reason given (docs/apply-2.6.md).
    #[allow(dead_code)] // the reason is for people reading the table
    Allowed(&'static str),
}

const KM: &[&str] = &["key-manager"];
const GW: &[&str] = &["gateway-worker", "gateway-manager"];

/// The documented decision for every active `localhost` of WSO2's 2.6.0 files after apply, by
/// file and element path (suffix); docs/apply-2.6.md gives the same list.
fn localhost_role(file: &str, ctx: &str) -> Option<Role> {
    use Role::*;
    const PUB: &[&str] = &["publisher"];
    const STORE: &[&str] = &["store"];
    const TM: &[&str] = &["traffic-manager"];
    let table: &[(&str, &str, Role)] = &[
        ("api-manager.xml", "AuthManager/ServerURL", Peer(KM)),
        ("api-manager.xml", "APIKeyValidator/ServerURL", Peer(KM)),
        ("api-manager.xml", "APIGateway/Environments/Environment/ServerURL", Peer(GW)),
        ("api-manager.xml", "OAuthConfigurations/RevokeAPIURL", Peer(GW)),
        ("api-manager.xml", "APIStore/URL", Peer(STORE)),
        ("api-manager.xml", "APIStore/ServerURL", Peer(STORE)),
        ("api-manager.xml", "APIPublisher/URL", Peer(PUB)),
        ("api-manager.xml", "PolicyDeployer/ServiceURL", Peer(TM)),
        ("api-manager.xml", "WorkflowConfigurations/WorkflowCallbackAPI", Peer(PUB)),
        ("api-manager.xml", "WorkflowConfigurations/TokenEndPoint", Peer(GW)),
        ("api-manager.xml", "WorkflowConfigurations/DCREndPoint", Peer(KM)),
        ("api-manager.xml", "WorkflowConfigurations/ServerUrl", Allowed("WSO2 BPS, not part of the topology; workflows ship disabled")),
        ("api-manager.xml", "APIKeyValidator/ThriftServerHost", Allowed("left only where Thrift is unused: the node is no Thrift client (WSClient with several key managers, or publisher, traffic manager) or is the key manager itself")),
        ("api-manager.xml", "Analytics/StreamProcessorServerURL", Allowed("API-M Analytics is not part of the topology and ships disabled")),
        ("api-manager.xml", "Analytics/StreamProcessorRestApiURL", Allowed("API-M Analytics is not part of the topology and ships disabled")),
        ("identity.xml", "OpenIDConnect/IDTokenIssuerID", Peer(&[])),
        ("identity.xml", "EventPublisher/ReceiverURL", Allowed("adaptive authentication's analytics receiver, not part of the topology")),
        ("axis2.xml", "parameter[SynapseConfig.ServerName]", Allowed("a server name Synapse reports, not a URL")),
        ("axis2_TM.xml", "parameter[SynapseConfig.ServerName]", Allowed("a server name Synapse reports, not a URL")),
        ("axis2.xml", "parameter[mcastBindAddress]", Allowed("Hazelcast clustering of the node itself; clustering ships disabled")),
        ("axis2_TM.xml", "parameter[mcastBindAddress]", Allowed("Hazelcast clustering of the node itself; clustering ships disabled")),
        ("axis2.xml", "parameter[localMemberHost]", Allowed("Hazelcast clustering of the node itself; clustering ships disabled")),
        ("axis2_TM.xml", "parameter[localMemberHost]", Allowed("Hazelcast clustering of the node itself; clustering ships disabled")),
        ("axis2.xml", "parameter[localMemberBindAddress]", Allowed("Hazelcast clustering of the node itself; clustering ships disabled")),
        ("axis2_TM.xml", "parameter[localMemberBindAddress]", Allowed("Hazelcast clustering of the node itself; clustering ships disabled")),
        ("axis2.xml", "member/hostName", Allowed("a static Hazelcast member of the clustering sample; clustering ships disabled")),
        ("axis2_TM.xml", "member/hostName", Allowed("a static Hazelcast member of the clustering sample; clustering ships disabled")),
        ("broker.xml", "coordination/thriftServerHost", Allowed("the broker's own slot-coordination Thrift server (standalone mode)")),
        ("catalina-server.xml", "Engine@defaultHost", Allowed("Tomcat's virtual host name, not a URL")),
        ("catalina-server.xml", "Host@name", Allowed("Tomcat's virtual host name, not a URL")),
        ("jndi.properties", "connectionfactory.QueueConnectionFactory", Allowed("WSO2's sample queue factory (virtual host `test`); API-M 2.6 uses only the topic factory, which apply sets on the publisher")),
        ("jndi.properties", "connectionfactory.TopicConnectionFactory", Peer(TM)),
        ("authenticators.xml", "Parameter[IdentityProviderSSOServiceURL]", Allowed("the SAML2SSOAuthenticator ships disabled; enabling SSO is outside apply")),
        ("authenticators.xml", "Parameter[AssertionConsumerServiceURL]", Allowed("the SAML2SSOAuthenticator ships disabled; enabling SSO is outside apply")),
        ("WorkflowCallbackService.xml", "address@uri", Peer(STORE)),
        ("WorkflowCallbackService.xml", "@location", Allowed("the WSDL's own endpoint addresses of the gateway serving it")),
        ("site.json", "", Allowed("SSO/OIDC ship disabled (`enabled: false`); enabling SSO is outside apply")),
    ];
    table
        .iter()
        .find(|(f, suffix, _)| *f == file && (ctx.ends_with(suffix) || (file == "site.json")))
        .map(|(_, _, r)| match r {
            Peer(p) => Peer(p),
            Allowed(why) => Allowed(why),
        })
}

/// Scans every file of an applied home; `profile` is the node's.
fn scan_tree(home: &Path, real: &Path, profile: &str) -> Vec<String> {
    let defaults: Vec<Vec<u8>> = ["wso2carbon.jks", "client-truststore.jks"]
        .iter()
        .map(|f| std::fs::read(real.join(SECURITY).join(f)).expect("default keystore"))
        .collect();
    let mut fails = Vec::new();
    for (rel, bytes) in without_backup(snapshot(home)) {
        if is_keystore(&rel) {
            continue;
        }
        let text = active_text(&rel, &decode(&bytes));
        let file = base(&rel);
        // Keystore files named by active settings: none may be WSO2's default one.
        for (i, _) in text.match_indices(".jks").chain(text.match_indices(".p12")) {
            let start = text[..i]
                .rfind(|c: char| c.is_whitespace() || "<>\"'=[,".contains(c))
                .map_or(0, |s| s + 1);
            let path = &text[start..i + 4];
            let resolved = home.join(
                path.trim_start_matches("${carbon.home}/")
                    .trim_start_matches("./"),
            );
            match std::fs::read(&resolved) {
                Ok(b) if defaults.contains(&b) => {
                    fails.push(format!("{rel}: {path} is WSO2's default keystore"))
                }
                Ok(_) => {}
                Err(_) => fails.push(format!(
                    "{rel}: {path} names a keystore that does not exist"
                )),
            }
        }
        // The password wso2carbon as a value.
        for (i, _) in text.match_indices("wso2carbon") {
            let prev = text[..i].chars().next_back().unwrap_or(' ');
            let next = text[i + 10..].chars().next().unwrap_or(' ');
            let part_of_a_word = |c: char, extra: &str| c.is_alphanumeric() || extra.contains(c);
            let value = !part_of_a_word(prev, "/._-$") && !part_of_a_word(next, "._-@");
            let ctx = context_at(&rel, &text, i);
            let allowed = [
                ("carbon.xml", "KeyAlias"),
                ("identity.xml", "XMPPConfig/XMPPPassword"),
                (
                    "cipher-text.properties",
                    "Datasources.WSO2_CARBON_DB.Configuration.Password",
                ),
            ]
            .iter()
            .any(|(f, c)| *f == file && ctx.ends_with(c));
            if value && !allowed {
                fails.push(format!("{rel}: {ctx} still holds wso2carbon"));
            }
        }
        // localhost naming a peer placed elsewhere.
        for needle in ["localhost", "127.0.0.1"] {
            for (i, _) in text.match_indices(needle) {
                let ctx = context_at(&rel, &text, i);
                match localhost_role(file, &ctx) {
                    Some(Role::Allowed(_)) => {}
                    Some(Role::Peer(p)) if p.contains(&profile) => {}
                    Some(Role::Peer(_)) => fails.push(format!(
                        "{rel}: {ctx} names {needle} for a peer placed elsewhere"
                    )),
                    None => fails.push(format!(
                        "{rel}: {ctx}: {needle} with no documented decision"
                    )),
                }
            }
        }
    }
    fails
}

// ---------------------------------------------------------------------------------------------
// One node
// ---------------------------------------------------------------------------------------------

fn apply(set: &Path, node: &str, home: &Path) -> Result<Value, String> {
    crate::util::cli::apply(set, node, home, &["--format", "json"], &[]).ok_json()
}

/// Applies `node` to a fresh copy of the real tree and checks that one run.
fn check_node(
    set: &Path,
    real: &Path,
    root: &Path,
    (node, profile): (&str, &str),
    pkcs12: bool,
) -> (PathBuf, Vec<String>) {
    let home = root.join("homes").join(node);
    copy_tree(real, &home);
    let before = without_backup(snapshot(&home));
    let mut f = Vec::new();
    let report = match apply(set, node, &home) {
        Ok(r) => r,
        Err(e) => return (home, vec![format!("{node}: apply failed: {e}")]),
    };
    let after = without_backup(snapshot(&home));
    let is_tm = profile == "traffic-manager";
    // PKCS#12 with files that carry no keystore type: a warning naming JDK 8u60; JKS: none.
    let warned = report["warnings"].as_array().is_some_and(|w| {
        w.iter().any(|m| {
            m.as_str()
                .is_some_and(|m| m.contains("8u60") && m.contains("broker.xml"))
        })
    });
    if warned != pkcs12 {
        f.push(format!(
            "untyped-keystore warning {warned}, expected {pkcs12}: {}",
            report["warnings"]
        ));
    }
    for (rel, new) in &after {
        let old_rel = match rel.as_str() {
            "repository/conf/axis2/axis2.xml" if is_tm => "repository/conf/axis2/axis2_TM.xml",
            "repository/conf/registry.xml" if is_tm => "repository/conf/registry_TM.xml",
            r => r,
        };
        let Some(old) = before.get(old_rel) else {
            if !is_keystore(rel) {
                f.push(format!("{rel} is new"));
            }
            continue;
        };
        if old == new || is_keystore(rel) {
            continue;
        }
        if rel.ends_with("registry.xml") {
            f.push(format!("{rel} is not WSO2's registry_TM.xml byte for byte"));
            continue;
        }
        f.extend(check_owned_changes(rel, &decode(old), &decode(new)));
    }
    for rel in before.keys().filter(|k| !after.contains_key(*k)) {
        let swapped = is_tm && (rel.ends_with("axis2_TM.xml") || rel.ends_with("registry_TM.xml"));
        if !swapped {
            f.push(format!("{rel} was removed"));
        }
    }
    f.extend(scan_tree(&home, real, profile));
    // A second apply changes nothing.
    match apply(set, node, &home) {
        Ok(r2) if r2["files"].as_array().is_some_and(|a| a.is_empty()) => {}
        Ok(r2) => f.push(format!("second apply is not a no-op: {}", r2["files"])),
        Err(e) => f.push(format!("second apply failed: {e}")),
    }
    if without_backup(snapshot(&home)) != after {
        f.push("second apply changed the home".into());
    }
    let removed: Vec<&str> = report["files"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|file| file["changes"].as_array().into_iter().flatten())
        .filter(|c| c["what"] == "removed WSO2 default keys")
        .filter_map(|c| c["new"].as_str())
        .collect();
    // The original truststore, with the default keys, survives: in the backup, or untouched in
    // place when the set's truststore has another file name (PKCS#12).
    let ts_rel = format!("{SECURITY}/client-truststore.jks");
    let original = &before[&ts_rel];
    let backup = report["backup"].as_str().map(PathBuf::from);
    let kept = after.get(&ts_rel) == Some(original)
        || backup.is_some_and(|b| std::fs::read(b.join(&ts_rel)).ok().as_ref() == Some(original));
    if !kept {
        f.push("the original client-truststore.jks is neither in place nor in the backup".into());
    }
    if !removed
        .iter()
        .any(|r| r.contains("wso2carbon.old") && r.contains("wso2carbonv5"))
    {
        f.push(format!(
            "the merge did not list the default keys it removed: {removed:?}"
        ));
    }
    (
        home,
        f.into_iter().map(|m| format!("{node}: {m}")).collect(),
    )
}

// ---------------------------------------------------------------------------------------------
// Truststores and JSSE
// ---------------------------------------------------------------------------------------------

fn read_doc(home: &Path, rel: &str) -> XmlDoc {
    let text = decode(&std::fs::read(home.join(rel)).unwrap_or_default());
    XmlDoc::parse(&text).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn first(v: Vec<String>) -> String {
    v.into_iter().next().unwrap_or_default()
}

fn resolve(home: &Path, location: &str) -> PathBuf {
    home.join(
        location
            .trim_start_matches("${carbon.home}/")
            .trim_start_matches("./"),
    )
}

/// (file, type, password) of the truststore carbon.xml configures.
fn configured_truststore(home: &Path) -> (PathBuf, String, String) {
    let d = read_doc(home, "repository/conf/carbon.xml");
    (
        resolve(home, &first(d.texts("Server/Security/TrustStore/Location"))),
        first(d.texts("Server/Security/TrustStore/Type")),
        first(d.texts("Server/Security/TrustStore/Password")),
    )
}

/// What serves `base_port` in a home, from its applied files.
fn serving_keystore(home: &Path, base_port: u16) -> Option<(PathBuf, String, String)> {
    match base_port {
        9443 => {
            let d = read_doc(home, "repository/conf/tomcat/catalina-server.xml");
            let c = "Server/Service/Connector[@port='9443']";
            Some((
                resolve(home, &first(d.attrs(c, "keystoreFile"))),
                first(d.attrs(c, "keystoreType")),
                first(d.attrs(c, "keystorePass")),
            ))
        }
        8243 => {
            let d = read_doc(home, "repository/conf/axis2/axis2.xml");
            let k =
                "axisconfig/transportReceiver[@name='https']/parameter[@name='keystore']/KeyStore";
            Some((
                resolve(home, &first(d.texts(&format!("{k}/Location")))),
                first(d.texts(&format!("{k}/Type"))),
                first(d.texts(&format!("{k}/Password"))),
            ))
        }
        9711 => {
            let d = read_doc(home, "repository/conf/data-bridge/data-bridge-config.xml");
            let file = resolve(
                home,
                &first(d.texts("dataBridgeConfiguration/keyStoreLocation")),
            );
            let ty = if file.extension().is_some_and(|e| e == "p12") {
                "PKCS12"
            } else {
                "JKS"
            };
            Some((
                file,
                ty.into(),
                first(d.texts("dataBridgeConfiguration/keyStorePassword")),
            ))
        }
        _ => None,
    }
}

struct Topo {
    nodes: Vec<(String, String, u16)>,
    lbs: Vec<(String, String)>,
}

fn topo(text: &str) -> Topo {
    let t: toml::Table = text.parse().expect("topology");
    let s = |v: &toml::Value, k: &str| v[k].as_str().expect(k).to_string();
    Topo {
        nodes: t["node"]
            .as_array()
            .expect("nodes")
            .iter()
            .map(|n| {
                let off = n.get("offset").and_then(|o| o.as_integer()).unwrap_or(0);
                (
                    s(n, "name"),
                    s(n, "profile"),
                    u16::try_from(off).expect("offset"),
                )
            })
            .collect(),
        lbs: t
            .get("load_balancer")
            .and_then(|l| l.as_array())
            .map(|l| l.iter().map(|b| (s(b, "host"), s(b, "fronts"))).collect())
            .unwrap_or_default(),
    }
}

/// The certificates a truststore trusts, sorted: two files with the same list decide a
/// handshake alike (their bytes differ by entry timestamps).
fn trusted_certs(file: &Path, pass: &str) -> Vec<Vec<u8>> {
    let pw = apim_pki::Password::new(pass.to_string());
    let bytes = std::fs::read(file).unwrap_or_default();
    let mut certs: Vec<Vec<u8>> = apim_pki::Keystore::decode(&bytes, &pw)
        .map(|(k, _)| {
            k.entries
                .iter()
                .filter_map(|e| e.cert().map(<[u8]>::to_vec))
                .collect()
        })
        .unwrap_or_default();
    certs.sort();
    certs
}

/// One JVM run: a server keystore, a client truststore, and the hosts to check.
#[derive(Default)]
struct Group {
    files: Option<(PathBuf, PathBuf)>,
    hosts: BTreeSet<String>,
    uses: Vec<String>,
}

/// JSSE from every node's truststore to every TLS peer URL of its node.toml, and against WSO2's
/// default keystore. One JVM per distinct (keystore bytes, truststore certificates, types,
/// passwords).
fn probe(set: &Path, t: &Topo, homes: &BTreeMap<String, PathBuf>, real: &Path) -> Vec<String> {
    type Key = (Vec<u8>, String, String, Vec<Vec<u8>>, String, String);
    let mut groups: BTreeMap<Key, Group> = BTreeMap::new();
    let mut fails = Vec::new();
    let mut add = |ks: PathBuf,
                   kt: String,
                   kp: String,
                   ts: &(PathBuf, String, String),
                   host: Option<String>,
                   use_: String| {
        let key = (
            std::fs::read(&ks).unwrap_or_default(),
            kt,
            kp,
            trusted_certs(&ts.0, &ts.2),
            ts.1.clone(),
            ts.2.clone(),
        );
        let g = groups.entry(key).or_default();
        g.files.get_or_insert((ks, ts.0.clone()));
        g.hosts.extend(host);
        g.uses.push(use_);
    };
    for (name, home) in homes {
        // node.toml read back through the library's own types, as apply and verify read it.
        let plan = apim_pki::node_toml::read(&set.join(format!("nodes/{name}/node.toml")))
            .expect("node.toml");
        let ts = configured_truststore(home);
        let default_ks = real.join(SECURITY).join("wso2carbon.jks");
        add(
            default_ks,
            "JKS".into(),
            "wso2carbon".into(),
            &ts,
            None,
            format!("{name}'s truststore"),
        );
        for (_, peer) in plan.all_targets() {
            let url = peer.url.as_str();
            if !peer.is_tls() {
                continue;
            }
            let host = peer.host.clone();
            let port = peer.port;
            let served = peer.served_by.to_string();
            let served = served.as_str();
            let (server, base_port) = if let Some(n) = served.strip_prefix("node ") {
                let off = t.nodes.iter().find(|x| x.0 == n).map_or(0, |x| x.2);
                (n.to_string(), port - off)
            } else {
                let lb = served.trim_start_matches("load-balancer ");
                let fronts = &t.lbs.iter().find(|(h, _)| h == lb).expect("lb").1;
                let n = t
                    .nodes
                    .iter()
                    .find(|x| &x.1 == fronts)
                    .expect("node behind lb");
                (n.0.clone(), port)
            };
            let Some((ks, kt, kp)) = serving_keystore(&homes[&server], base_port) else {
                fails.push(format!(
                    "{name}: {url}: nothing known serves base port {base_port}"
                ));
                continue;
            };
            add(
                ks,
                kt,
                kp,
                &ts,
                Some(host),
                format!("{name} → {url} ({served})"),
            );
        }
    }
    let java = java::jdk17_java();
    let jobs: Vec<(Key, Group)> = groups.into_iter().collect();
    let run_job = |((_, kt, kp, _, tt, tp), g): &(Key, Group)| {
        let (ks, ts) = g.files.as_ref().expect("files");
        let negative = g.hosts.is_empty();
        let hosts: Vec<&str> = if negative {
            vec!["localhost"]
        } else {
            g.hosts.iter().map(String::as_str).collect()
        };
        (
            negative,
            g.uses.clone(),
            java::tls_probe(&java, ks, kt, kp, ts, tt, tp, &hosts),
        )
    };
    let results: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = jobs
            .chunks(jobs.len().div_ceil(2).max(1))
            .map(|chunk| s.spawn(|| chunk.iter().map(run_job).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("probe thread"))
            .collect()
    });
    let mut urls = 0;
    for (negative, uses, res) in results {
        for (host, r) in res {
            match (negative, r) {
                (false, Err(e)) => fails.push(format!(
                    "JSSE to {host} failed ({e}) for {}",
                    uses.join("; ")
                )),
                (true, Ok(())) => fails.push(format!(
                    "{}: a server with WSO2's default keystore is trusted",
                    uses.join(", ")
                )),
                (false, Ok(())) => urls += 1,
                (true, Err(_)) => {}
            }
        }
    }
    eprintln!("JSSE: {} JVM runs, {urls} hosts reached", jobs.len());
    assert!(urls > 0, "no TLS peer URL was probed");
    fails
}

// ---------------------------------------------------------------------------------------------
// The topologies
// ---------------------------------------------------------------------------------------------

fn check_topology(label: &str, topology: &str) {
    let Some(real) = real_tree() else { return };
    let start = std::time::Instant::now();
    let tmp = tempfile::tempdir().expect("tempdir");
    let set = tmp.path().join("set");
    generate(
        &write_topology(tmp.path(), &crate::util::cli::with_vault(topology, false)),
        &set,
        &[],
    );
    let t = topo(topology);
    let mut fails = Vec::new();
    let mut homes = BTreeMap::new();
    for (name, profile, _) in &t.nodes {
        let pkcs12 = topology.contains("format = \"pkcs12");
        let (home, f) = check_node(&set, &real, tmp.path(), (name, profile), pkcs12);
        fails.extend(f);
        homes.insert(name.clone(), home);
    }
    let applied = start.elapsed();
    if java::require("java") && java::require("javac") {
        fails.extend(probe(&set, &t, &homes, &real));
    }
    eprintln!(
        "{label}: {} nodes applied and scanned in {applied:.1?}, JSSE {:.1?}",
        t.nodes.len(),
        start.elapsed() - applied
    );
    crate::util::assert_no_problems(label, &fails);
}

#[test]
#[cfg_attr(
    not(apim_pki_jdk17),
    ignore = "needs JDK 17: java, javac and keytool on PATH (apt-get install openjdk-17-jdk-headless); .ci/run installs it all"
)]
fn seed_ha_example_on_the_real_files() {
    check_topology("seed HA", &ha_example());
}

#[test]
#[cfg_attr(
    not(apim_pki_jdk17),
    ignore = "needs JDK 17: java, javac and keytool on PATH (apt-get install openjdk-17-jdk-headless); .ci/run installs it all"
)]
fn pkcs12_ha_gateways_with_offsets_on_the_real_files() {
    check_topology("HA PKCS#12 with offsets", HA_P12);
}

#[test]
#[cfg_attr(
    not(apim_pki_jdk17),
    ignore = "needs JDK 17: java, javac and keytool on PATH (apt-get install openjdk-17-jdk-headless); .ci/run installs it all"
)]
fn ipv6_hosts_with_shared_tls_and_legacy_pkcs12_on_the_real_files() {
    check_topology("IPv6 shared TLS pkcs12-legacy", IPV6_SHARED_LEGACY);
}

#[test]
#[cfg_attr(
    not(apim_pki_jdk17),
    ignore = "needs JDK 17: java, javac and keytool on PATH (apt-get install openjdk-17-jdk-headless); .ci/run installs it all"
)]
fn every_profile_on_one_host_on_the_real_files() {
    check_topology("one host", ONE_HOST);
}

/// The fingerprints apim-pki embeds are those of the default keys in WSO2's shipped truststore,
/// and every WSO2 CN=localhost certificate there is one of them.
#[test]
fn embedded_default_key_fingerprints_match_the_shipped_truststore() {
    let Some(real) = real_tree() else { return };
    let bytes =
        std::fs::read(real.join(SECURITY).join("client-truststore.jks")).expect("truststore");
    let pw = apim_pki::Password::new("wso2carbon".to_string());
    let (store, _) = apim_pki::Keystore::decode(&bytes, &pw).expect("opens");
    let mut seen = BTreeSet::new();
    for e in &store.entries {
        let Some(cert) = e.cert() else { continue };
        let subject = apim_pki::CertInfo::from_der(cert)
            .map(|i| i.subject)
            .unwrap_or_default();
        let known = apim_pki::default_keys::wso2_default_key(cert);
        if subject.contains("CN=localhost") {
            assert!(
                known.is_some(),
                "{} ({subject}) is not recognised",
                e.alias()
            );
            seen.insert(apim_pki::default_keys::spki_sha256(cert).expect("spki"));
        } else {
            assert!(
                known.is_none(),
                "{} is flagged but is not a WSO2 default",
                e.alias()
            );
        }
    }
    let embedded: BTreeSet<String> = apim_pki::default_keys::WSO2_DEFAULT_KEYS
        .iter()
        .map(|(_, fp)| fp.to_string())
        .collect();
    assert_eq!(seen, embedded);
}

/// `verify` reports a set truststore that trusts a WSO2 default key, naming the code.
#[test]
fn verify_flags_a_truststore_that_trusts_a_default_key() {
    let Some(real) = real_tree() else { return };
    let tmp = tempfile::tempdir().expect("tempdir");
    let set = tmp.path().join("set");
    generate(
        &write_topology(tmp.path(), &crate::util::cli::with_vault(ONE_HOST, false)),
        &set,
        &[],
    );
    let clean = run(
        &["verify", set.to_str().expect("utf-8"), "--format", "json"],
        &[],
    );
    assert!(
        !clean.stdout.contains("trusts-default-key"),
        "{}",
        clean.stdout
    );
    let pw = apim_pki::Password::new(secrets(&set)["truststore"].clone());
    let ts_path = set.join(format!("nodes/gw/{SECURITY}/client-truststore.jks"));
    let (mut ours, _) =
        apim_pki::Keystore::decode(&std::fs::read(&ts_path).expect("ts"), &pw).expect("opens");
    let wso2 = std::fs::read(real.join(SECURITY).join("client-truststore.jks")).expect("wso2 ts");
    let (theirs, _) =
        apim_pki::Keystore::decode(&wso2, &apim_pki::Password::new("wso2carbon".to_string()))
            .expect("opens");
    let old = theirs
        .entries
        .into_iter()
        .find(|e| e.alias() == "wso2carbon.old")
        .expect("wso2carbon.old");
    ours.entries.push(old);
    let bytes = ours
        .encode(apim_pki::KeystoreFormat::Jks, &pw)
        .expect("encode");
    std::fs::write(&ts_path, bytes).expect("write");
    let r = run(
        &["verify", set.to_str().expect("utf-8"), "--format", "json"],
        &[],
    );
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("trusts-default-key") && r.stdout.contains("wso2carbon.old"),
        "{}",
        r.stdout
    );
}

/// The checks above can fail: on the pristine tree the scan finds WSO2's default keystores, the
/// password `wso2carbon` and localhost peers; a stray edit is not an owned change.
#[test]
fn the_scan_and_the_owned_check_catch_the_stock_tree_and_stray_edits() {
    let Some(real) = real_tree() else { return };
    let fails = scan_tree(&real, &real, "gateway-worker");
    for want in [
        "repository/conf/carbon.xml: ${carbon.home}/repository/resources/security/wso2carbon.jks is WSO2's default keystore",
        "repository/conf/carbon.xml: Server/Security/KeyStore/Password still holds wso2carbon",
        "repository/conf/security/cipher-text.properties: Carbon.Security.TrustStore.Password still holds wso2carbon",
        "repository/conf/api-manager.xml: APIManager/AuthManager/ServerURL names localhost for a peer placed elsewhere",
        "repository/conf/identity/identity.xml: Server/OAuth/OpenIDConnect/IDTokenIssuerID names localhost for a peer placed elsewhere",
    ] {
        assert!(fails.iter().any(|f| f == want), "{want} not in {fails:#?}");
    }
    let api = std::fs::read_to_string(real.join("repository/conf/api-manager.xml")).expect("read");
    let stray = api.replacen(
        "<EnableUnlimitedTier>true</EnableUnlimitedTier>",
        "<EnableUnlimitedTier>false</EnableUnlimitedTier>",
        1,
    );
    let owned_edit = api.replacen(
        "<DisplayURL>false</DisplayURL>",
        "<DisplayURL>true</DisplayURL>",
        1,
    );
    let rel = "repository/conf/api-manager.xml";
    assert_eq!(check_owned_changes(rel, &api, &stray).len(), 1);
    assert!(check_owned_changes(rel, &api, &owned_edit).is_empty());
    let dropped = api.replacen(
        "        <EnableUnlimitedTier>true</EnableUnlimitedTier>\n",
        "",
        1,
    );
    assert_eq!(check_owned_changes(rel, &api, &dropped).len(), 1);
}

// ---------------------------------------------------------------------------------------------
// Secure vault on the real 2.6.0 files (docs/secure-vault.md)
// ---------------------------------------------------------------------------------------------

const CIPHER_TEXT: &str = "repository/conf/security/cipher-text.properties";
const CIPHER_TOOL: &str = "repository/conf/security/cipher-tool.properties";
const SECRET_CONF: &str = "repository/conf/security/secret-conf.properties";

/// `text` with every vault placeholder put back to the password it stands for (decrypted from
/// the home's cipher-text.properties with the set's primary key) and the `svns` namespace and
/// aliases removed: what apply writes with the vault off.
fn unvault(text: &str, secrets: &BTreeMap<String, String>) -> String {
    let mut s = text.replace(
        " xmlns:svns=\"http://org.wso2.securevault/configuration\"",
        "",
    );
    while let Some(at) = s.find(" svns:secretAlias=\"") {
        let start = at + " svns:secretAlias=\"".len();
        let end = start + s[start..].find('"').expect("alias ends");
        let alias = s[start..end].to_string();
        let value = secrets
            .get(&alias)
            .unwrap_or_else(|| panic!("{alias} has no ciphertext"));
        s.replace_range(at..=end, "");
        let tag_start = s[..at].rfind('<').expect("tag");
        let tag_end = at + s[at..].find('>').expect("tag end");
        match apim_pki::secure_vault::carbon26::alias_spec(&alias).and_then(|sp| sp.attribute) {
            Some(attr) => {
                let tag = s[tag_start..tag_end].replacen(
                    &format!("{attr}=\"password\""),
                    &format!("{attr}=\"{value}\""),
                    1,
                );
                s.replace_range(tag_start..tag_end, &tag);
            }
            None => {
                let rest = &s[tag_end + 1..];
                assert!(rest.starts_with("password</"), "{alias}: placeholder");
                s.replace_range(tag_end + 1..tag_end + 1 + "password".len(), value);
            }
        }
    }
    s
}

/// The home's cipher-text.properties decrypted with the set's primary key.
fn decrypted(set: &Path, node: &str, home: &Path) -> BTreeMap<String, String> {
    let opened = apim_pki::OpenedSet::open(set).expect("set");
    let key = apim_pki::secure_vault::key::for_set_node(&opened, node)
        .expect("key")
        .expect("vault on");
    let text = std::fs::read_to_string(home.join(CIPHER_TEXT)).expect("cipher-text");
    apim_pki::secure_vault::cipher_text::parse(&text)
        .expect("parses")
        .into_iter()
        .map(|e| match e.value {
            apim_pki::secure_vault::cipher_text::SecretValue::Encrypted(c) => {
                (e.alias, key.open(&c).expect("decrypts").to_string())
            }
            other => panic!("{}: not encrypted: {other:?}", e.alias),
        })
        .collect()
}

/// Applied with the vault on, every node of the seed's HA example is exactly the vault-off
/// result once each placeholder is replaced by what the set's primary key decrypts from
/// cipher-text.properties; Java decrypts every ciphertext as WSO2's runtime does, to the set's
/// password for that field (WSO2's own `admin` / `wso2carbon` for the entries the set does not
/// manage); cipher-tool.properties lists exactly the aliases cipher-text.properties holds; no
/// password of the set is in clear outside the files docs/secure-vault.md names; a second apply
/// changes nothing; `verify --apim-home` reports only the WSO2 defaults the set does not manage.
#[test]
#[cfg_attr(
    not(apim_pki_jdk17),
    ignore = "needs JDK 17: java, javac and keytool on PATH (apt-get install openjdk-17-jdk-headless); .ci/run installs it all"
)]
fn secure_vault_on_the_real_2_6_files_is_the_plain_result_encrypted() {
    let Some(real) = real_tree() else { return };
    let tmp = tempfile::tempdir().expect("tempdir");
    let set = tmp.path().join("set");
    let topology = ha_example();
    generate(
        &write_topology(tmp.path(), &crate::util::cli::with_vault(&topology, false)),
        &set,
        &[],
    );
    let t = topo(&topology);
    let mut off = BTreeMap::new();
    for (name, _, _) in &t.nodes {
        let home = tmp.path().join(format!("off-{name}"));
        copy_tree(&real, &home);
        apply(&set, name, &home).unwrap_or_else(|e| panic!("{name}: {e}"));
        off.insert(name.clone(), home);
    }
    generate(&write_topology(tmp.path(), &topology), &set, &[]);
    let pw = secrets(&set);
    let mut cases = Vec::new();
    for (name, _, _) in &t.nodes {
        let home = tmp.path().join(format!("on-{name}"));
        copy_tree(&real, &home);
        apply(&set, name, &home).unwrap_or_else(|e| panic!("{name}: {e}"));
        let before = without_backup(snapshot(&home));
        apply(&set, name, &home).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            before,
            without_backup(snapshot(&home)),
            "{name}: second apply changed files"
        );
        let plain = decrypted(&set, name, &home);
        let plain_off = without_backup(snapshot(&off[name]));
        for (rel, bytes) in &before {
            let vault_file = [CIPHER_TEXT, CIPHER_TOOL, SECRET_CONF].contains(&rel.as_str());
            if is_keystore(rel) || vault_file {
                continue;
            }
            let want = plain_off
                .get(rel)
                .unwrap_or_else(|| panic!("{name}: {rel} only with the vault"));
            let got = unvault(&decode(bytes), &plain);
            assert!(
                got == decode(want),
                "{name}: {rel} differs from the vault-off result beyond the vault"
            );
            if !apim_pki::secure_vault::vault_not_covered(rel) {
                for p in pw.values() {
                    assert!(
                        !decode(bytes).contains(p.as_str()),
                        "{name}: {rel} holds a set password in clear"
                    );
                }
            }
        }
        // axis2.xml: the only password left in clear is the wss sender's trust store.
        let axis2 = decode(&before["repository/conf/axis2/axis2.xml"]);
        for line in axis2
            .lines()
            .filter(|l| pw.values().any(|p| l.contains(p.as_str())))
        {
            assert!(line.contains("ws.trust.store.Password"), "{name}: {line}");
        }
        // The managed aliases hold the set's passwords; WSO2's others keep their values.
        let want = |alias: &str| -> Option<&str> {
            Some(match alias {
                a if a.starts_with("Carbon.Security.KeyStore")
                    || a.starts_with("Carbon.Security.InternalKeyStore") =>
                {
                    pw["primary"].as_str()
                }
                a if a.contains("TrustStore") => pw["truststore"].as_str(),
                "UserManager.AdminUser.Password" => "admin",
                "Datasources.WSO2_CARBON_DB.Configuration.Password" => "wso2carbon",
                a if a.contains("KeyStore") || a.ends_with("keystorePass") => pw["tls"].as_str(),
                _ => return None,
            })
        };
        for (alias, value) in &plain {
            assert_eq!(Some(value.as_str()), want(alias), "{name}: {alias}");
        }
        let tool = apim_pki::secure_vault::carbon26::parse_cipher_tool(
            &std::fs::read_to_string(home.join(CIPHER_TOOL)).expect("cipher-tool"),
        )
        .expect("parses");
        let tool_aliases: BTreeSet<&str> = tool.iter().map(|e| e.alias.as_str()).collect();
        let text_aliases: BTreeSet<&str> = plain.keys().map(String::as_str).collect();
        assert_eq!(
            tool_aliases, text_aliases,
            "{name}: cipher-tool vs cipher-text"
        );
        let (_, report) = crate::util::cli::verify_home(&set, name, &home);
        for f in report["findings"].as_array().expect("findings") {
            assert_eq!(f["code"], "default-password", "{name}: {f}");
        }
        cases.push((name.clone(), home, plain));
    }
    java_decrypts_26(&cases, &pw);
}

/// VaultDecrypt (tests/java) on each home: the runtime's path decrypts every alias to the value
/// Rust decrypted, and the primary's opens the vault keystore.
fn java_decrypts_26(
    cases: &[(String, PathBuf, BTreeMap<String, String>)],
    pw: &BTreeMap<String, String>,
) {
    use sha2::Digest;
    if !java::require("java") || !java::require("javac") {
        return;
    }
    let hex = |p: &str| -> String {
        sha2::Sha256::digest(p.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    let mut total = 0;
    for (name, home, plain) in cases {
        let got = java::vault_decrypt(
            &java::jdk17_java(),
            home,
            &[(name.clone(), home.join(SECRET_CONF), home.join(CIPHER_TEXT))],
            &pw["primary"],
        );
        let results = got[name].as_ref().unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(results.len(), plain.len(), "{name}");
        for (alias, r) in results {
            match r {
                java::VaultAlias::Ok { sha256, opens } => {
                    assert_eq!(*sha256, hex(&plain[alias]), "{name}: {alias}");
                    assert_eq!(
                        *opens,
                        plain[alias] == pw["primary"],
                        "{name}: {alias} opens"
                    );
                }
                other => panic!("{name}: {alias}: {other:?}"),
            }
            total += 1;
        }
    }
    eprintln!(
        "secure vault 2.6: {total} ciphertexts over {} homes decrypted by Java as the runtime does",
        cases.len()
    );
}

/// The finding codes `verify --apim-home` reports for `node`.
fn home_codes(set: &Path, node: &str, home: &Path) -> BTreeSet<String> {
    let (_, report) = crate::util::cli::verify_home(set, node, home);
    report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| f["code"].as_str().expect("code").to_string())
        .collect()
}

/// On a vaulted real 2.6.0 home, each break gives its finding: a secured field put back in
/// clear (`plaintext-password`), a damaged ciphertext and a secured field whose alias has no
/// ciphertext (a half-vaulted node) (`vault-undecryptable`); the untouched home reports only
/// `default-password` (WSO2's `admin` and `wso2carbon`, which the set does not manage).
#[test]
fn secure_vault_findings_on_a_real_2_6_home() {
    let Some(real) = real_tree() else { return };
    let tmp = tempfile::tempdir().expect("tempdir");
    let set = tmp.path().join("set");
    generate(&write_topology(tmp.path(), ONE_HOST), &set, &[]);
    let home = tmp.path().join("home");
    copy_tree(&real, &home);
    apply(&set, "gw", &home).expect("apply");
    let baseline = home_codes(&set, "gw", &home);
    assert_eq!(baseline, BTreeSet::from(["default-password".to_string()]));
    let pw = secrets(&set);
    let carbon = home.join("repository/conf/carbon.xml");
    let ct = home.join(CIPHER_TEXT);
    let (carbon0, ct0) = (
        std::fs::read(&carbon).expect("carbon"),
        std::fs::read(&ct).expect("ct"),
    );
    let with = |code: &str| {
        let mut b = baseline.clone();
        b.insert(code.to_string());
        b
    };

    let text = decode(&carbon0).replacen(
        "<Password svns:secretAlias=\"Carbon.Security.TrustStore.Password\">password</Password>",
        &format!("<Password>{}</Password>", pw["truststore"]),
        1,
    );
    assert_ne!(text, decode(&carbon0));
    std::fs::write(&carbon, text).expect("write");
    assert_eq!(home_codes(&set, "gw", &home), with("plaintext-password"));
    std::fs::write(&carbon, &carbon0).expect("reset");

    let damaged: String = decode(&ct0)
        .lines()
        .map(|l| match l.split_once('=') {
            Some((k, _)) if k == "Carbon.Security.KeyStore.Password" => {
                format!("{k}=QUJDREVGR0g=\n")
            }
            _ => format!("{l}\n"),
        })
        .collect();
    std::fs::write(&ct, damaged).expect("write");
    assert_eq!(
        home_codes(&set, "gw", &home),
        with("vault-undecryptable"),
        "damaged"
    );
    let half: String = decode(&ct0)
        .lines()
        .filter(|l| !l.starts_with("Server.Service.Connector.keystorePass="))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&ct, half).expect("write");
    assert_eq!(
        home_codes(&set, "gw", &home),
        with("vault-undecryptable"),
        "half-vaulted"
    );
    std::fs::write(&ct, &ct0).expect("reset");
    assert_eq!(home_codes(&set, "gw", &home), baseline);

    // WSO2's admin user with its shipped password (user-mgt.xml is not in the reference tree:
    // a minimal one with WSO2's element path).
    let user_mgt = home.join("repository/conf/user-mgt.xml");
    std::fs::write(&user_mgt, "<UserManager><Realm><Configuration><AdminUser><UserName>admin</UserName><Password>admin</Password></AdminUser></Configuration></Realm></UserManager>\n").expect("write");
    let (_, report) = crate::util::cli::verify_home(&set, "gw", &home);
    assert!(
        report["findings"].as_array().expect("findings").iter().any(|f| f["code"] == "default-password" && f["file"] == "repository/conf/user-mgt.xml"),
        "{report}"
    );
    std::fs::remove_file(&user_mgt).expect("rm");

    // A value that decrypts, but to the TLS password, which does not open the truststore.
    let opened = apim_pki::OpenedSet::open(&set).expect("set");
    let key = apim_pki::secure_vault::key::for_set_node(&opened, "gw")
        .expect("key")
        .expect("vault on");
    let replace = |alias: &str, value: &str| -> String {
        decode(&ct0)
            .lines()
            .map(|l| match l.split_once('=') {
                Some((k, _)) if k == alias => format!("{k}={value}\n"),
                _ => format!("{l}\n"),
            })
            .collect()
    };
    let tls = key.seal(None, &pw["tls"]).expect("seal");
    std::fs::write(
        &ct,
        replace("Carbon.Security.TrustStore.Password", tls.text()),
    )
    .expect("w");
    assert_eq!(
        home_codes(&set, "gw", &home),
        with("vault-undecryptable"),
        "wrong keystore"
    );

    // The primary password under PKCS#1 while secret-conf.properties names OAEP (a cipher tool
    // run without the OAEP flag): undecryptable for the runtime; apply re-encrypts it, says so.
    let pkcs1 = key
        .clone()
        .with_scheme(apim_pki::secure_vault::Scheme::RsaPkcs1)
        .seal(None, &pw["primary"])
        .expect("seal");
    std::fs::write(
        &ct,
        replace("Carbon.Security.KeyStore.Password", pkcs1.text()),
    )
    .expect("w");
    assert_eq!(
        home_codes(&set, "gw", &home),
        with("vault-undecryptable"),
        "padding"
    );
    let r = crate::util::cli::apply(&set, "gw", &home, &[], &[]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("Carbon.Security.KeyStore.Password") && r.stdout.contains("re-encrypted"),
        "not silent: {}",
        r.stdout
    );
    assert_eq!(home_codes(&set, "gw", &home), baseline);
}
