//! Kubernetes Secrets for WSO2's Helm charts (wso2/helm-apim, `distributed/*`, 4.2.x and later):
//! pure rendering, no file system.
//!
//! What the charts expect (read in their templates, identical for control plane, gateway, traffic
//! manager and, from 4.3.x, key manager):
//! - one Secret named by `wso2.apim.configurations.security.jksSecretName`, mounted with
//!   `subPath` = each file name at `repository/resources/security/<name>`: the truststore
//!   (`security.truststore.name`, always) and each enabled keystore
//!   (`security.keystores.{primary,tls,internal}.name`). So the Secret's keys ARE file names.
//! - the deployment.toml the charts render writes `type = "JKS"` for every store; JDK 11+ opens
//!   PKCS#12 files under that type too (keystore.type.compat).
//! - passwords: 4.6.x and later read them from `security.jksExistingSecret` (a Secret name and
//!   one key per password, handed to the server as `WSO2_*_PASSWORD` environment variables);
//!   4.2.x to 4.5.x only from the values (`keystores.*.password`, `keyPassword`,
//!   `truststore.password`), hence the separate, secret, `values-passwords.yaml`.
//! - two volume mounts on one path are refused by Kubernetes, so a file is enabled in one slot
//!   only: the internal keystore stays disabled (WSO2 then uses the primary, as apim-pki's own
//!   deployment.toml says), and with `tls = "shared"` the tls slot too.

use base64::Engine;
use zeroize::Zeroizing;

use crate::password::Password;
use crate::topology::Profile;

/// One of WSO2's distributed Helm charts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Chart {
    ControlPlane,
    Gateway,
    TrafficManager,
    KeyManager,
}

impl Chart {
    /// The chart for a node profile; `None` for profiles the charts do not deploy.
    pub fn for_profile(profile: Profile) -> Option<Chart> {
        match profile {
            Profile::ControlPlane => Some(Chart::ControlPlane),
            Profile::GatewayWorker | Profile::UniversalGateway => Some(Chart::Gateway),
            Profile::TrafficManager => Some(Chart::TrafficManager),
            Profile::KeyManager => Some(Chart::KeyManager),
            Profile::Publisher | Profile::Store | Profile::Devportal | Profile::GatewayManager => {
                None
            }
        }
    }

    /// The chart's folder name in wso2/helm-apim `distributed/`.
    pub fn as_str(self) -> &'static str {
        match self {
            Chart::ControlPlane => "control-plane",
            Chart::Gateway => "gateway",
            Chart::TrafficManager => "traffic-manager",
            Chart::KeyManager => "key-manager",
        }
    }

    /// Where the chart is in wso2/helm-apim, and its names (Chart.yaml) by release line.
    pub fn describe(self) -> &'static str {
        match self {
            Chart::ControlPlane => "distributed/control-plane (wso2am-cp; wso2am-acp from 4.6.x)",
            Chart::Gateway => {
                "distributed/gateway (wso2am-gateway; wso2am-universal-gw from 4.6.x)"
            }
            Chart::TrafficManager => "distributed/traffic-manager (wso2am-tm)",
            Chart::KeyManager => "distributed/key-manager (wso2am-km, 4.3.x and later)",
        }
    }
}

/// A keystore slot of the charts' values (`security.keystores.*` or `security.truststore`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Slot {
    Primary,
    Tls,
    Truststore,
}

impl Slot {
    /// The values key under `security.keystores` (the truststore has its own).
    fn values_key(self) -> &'static str {
        match self {
            Slot::Primary => "primary",
            Slot::Tls => "tls",
            Slot::Truststore => "truststore",
        }
    }

    /// Keys of the password Secret: store password, and key password for keystores.
    fn password_keys(self) -> (&'static str, Option<&'static str>) {
        match self {
            Slot::Primary => ("primary-keystore-password", Some("primary-key-password")),
            Slot::Tls => ("tls-keystore-password", Some("tls-key-password")),
            Slot::Truststore => ("truststore-password", None),
        }
    }

    /// The `jksExistingSecret` fields (4.6.x charts) naming those keys.
    fn existing_secret_fields(self) -> (&'static str, Option<&'static str>) {
        match self {
            Slot::Primary => (
                "primaryKeystorePasswordKey",
                Some("primaryKeystoreKeyPasswordKey"),
            ),
            Slot::Tls => ("tlsKeystorePasswordKey", Some("tlsKeystoreKeyPasswordKey")),
            Slot::Truststore => ("truststorePasswordKey", None),
        }
    }
}

/// One store of a node, as the set holds it.
pub(crate) struct Store {
    pub slot: Slot,
    /// The file name in the node's security directory; the Secret key and the values `name`.
    pub file_name: String,
    /// The private-key entry's alias (keystores only).
    pub alias: Option<String>,
    pub bytes: Vec<u8>,
    /// Store and key password alike.
    pub password: Password,
}

/// Everything one node's manifests are made from.
pub(crate) struct NodeInput {
    pub node: String,
    pub chart: Chart,
    /// The primary, the TLS keystore when it is a file of its own, and the truststore.
    pub stores: Vec<Store>,
}

/// Why manifests cannot be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RenderError {
    #[error("`{0}` is not a valid Kubernetes object name (DNS-1123: lower-case letters, digits, `-` and `.`, starting and ending with a letter or digit, at most 253 characters)")]
    ObjectName(String),
    #[error("`{0}` cannot be a Secret key (only letters, digits, `-`, `_` and `.`)")]
    SecretKey(String),
    #[error("node {node}: no {slot} store")]
    MissingStore { node: String, slot: &'static str },
}

/// One rendered file: its name inside the node's folder and its content.
pub(crate) struct Rendered {
    pub name: &'static str,
    pub text: Zeroizing<String>,
}

/// The files of a node's folder, in the order they are listed.
pub(crate) const KEYSTORES_FILE: &str = "keystores-secret.yaml";
pub(crate) const PASSWORDS_FILE: &str = "passwords-secret.yaml";
pub(crate) const KUSTOMIZATION_FILE: &str = "kustomization.yaml";
pub(crate) const VALUES_FILE: &str = "values.yaml";
pub(crate) const VALUES_PASSWORDS_FILE: &str = "values-passwords.yaml";

/// The Secret holding the node's stores (`jksSecretName`).
pub(crate) fn keystores_secret_name(node: &str) -> String {
    format!("{node}-keystores")
}

/// The Secret holding the node's passwords (`jksExistingSecret.secretName`).
pub(crate) fn passwords_secret_name(node: &str) -> String {
    format!("{node}-keystore-passwords")
}

/// True for a DNS-1123 subdomain, the rule for Secret names.
pub(crate) fn is_dns1123_subdomain(name: &str) -> bool {
    let ok_char = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.';
    let alnum = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    !name.is_empty()
        && name.len() <= 253
        && name.bytes().all(ok_char)
        && alnum(name.as_bytes().first())
        && alnum(name.as_bytes().last())
}

/// True for a valid Secret data key (`[-._a-zA-Z0-9]+`, at most 253, not `.` or `..`).
pub(crate) fn is_secret_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 253
        && key != "."
        && key != ".."
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// A YAML double-quoted scalar (JSON string syntax, which YAML reads alike).
fn quote(text: &str) -> String {
    serde_json::Value::String(text.to_string()).to_string()
}

fn b64(bytes: &[u8]) -> Zeroizing<String> {
    Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// A Secret of type Opaque with `data` (base64) entries, keys validated.
pub(crate) fn secret_yaml(
    name: &str,
    comment: &str,
    data: &[(String, &[u8])],
) -> Result<Zeroizing<String>, RenderError> {
    if !is_dns1123_subdomain(name) {
        return Err(RenderError::ObjectName(name.to_string()));
    }
    let mut out = Zeroizing::new(format!(
        "# {comment}\n# Written by apim-pki export kubernetes. Holds secrets: keep it out of version control.\napiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\n  labels:\n    app.kubernetes.io/managed-by: apim-pki\ntype: Opaque\ndata:\n"
    ));
    for (key, bytes) in data {
        if !is_secret_key(key) {
            return Err(RenderError::SecretKey(key.clone()));
        }
        out.push_str("  ");
        out.push_str(&quote(key));
        out.push_str(": ");
        out.push_str(&b64(bytes));
        out.push('\n');
    }
    Ok(out)
}

impl NodeInput {
    fn store(&self, slot: Slot) -> Option<&Store> {
        self.stores.iter().find(|s| s.slot == slot)
    }

    fn require(&self, slot: Slot) -> Result<&Store, RenderError> {
        self.store(slot).ok_or_else(|| RenderError::MissingStore {
            node: self.node.clone(),
            slot: slot.values_key(),
        })
    }
}

/// Renders every file of a node's folder: the two Secrets, the kustomization listing them, the
/// values snippet and the values passwords for 4.2.x-4.5.x charts.
pub(crate) fn render_node(input: &NodeInput) -> Result<Vec<Rendered>, RenderError> {
    input.require(Slot::Primary)?;
    input.require(Slot::Truststore)?;
    let stores: Vec<(String, &[u8])> = input
        .stores
        .iter()
        .map(|s| (s.file_name.clone(), s.bytes.as_slice()))
        .collect();
    let keystores = secret_yaml(
        &keystores_secret_name(&input.node),
        &format!(
            "Node {}: its keystores and truststore, keyed by file name (jksSecretName).",
            input.node
        ),
        &stores,
    )?;
    let passwords = passwords_secret(input)?;
    Ok(vec![
        Rendered {
            name: KEYSTORES_FILE,
            text: keystores,
        },
        Rendered {
            name: PASSWORDS_FILE,
            text: passwords,
        },
        Rendered {
            name: KUSTOMIZATION_FILE,
            text: Zeroizing::new(kustomization()),
        },
        Rendered {
            name: VALUES_FILE,
            text: Zeroizing::new(values(input)),
        },
        Rendered {
            name: VALUES_PASSWORDS_FILE,
            text: values_passwords(input),
        },
    ])
}

fn passwords_secret(input: &NodeInput) -> Result<Zeroizing<String>, RenderError> {
    let mut data: Vec<(String, &[u8])> = Vec::new();
    for store in &input.stores {
        let (store_key, key_key) = store.slot.password_keys();
        let bytes = store.password.expose().as_bytes();
        data.push((store_key.to_string(), bytes));
        if let Some(k) = key_key {
            data.push((k.to_string(), bytes));
        }
    }
    secret_yaml(
        &passwords_secret_name(&input.node),
        &format!(
            "Node {}: its keystore passwords (jksExistingSecret, Helm charts 4.6.x and later).",
            input.node
        ),
        &data,
    )
}

fn kustomization() -> String {
    format!(
        "# Written by apim-pki export kubernetes: `kubectl apply -k .` creates both Secrets.\napiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - {KEYSTORES_FILE}\n  - {PASSWORDS_FILE}\n"
    )
}

/// The values snippet: which Secret, which files, which aliases; no password.
pub(crate) fn values(input: &NodeInput) -> String {
    let mut out = format!(
        "# Helm values for node {} with WSO2's chart {}.\n# Written by apim-pki export kubernetes. No password here: charts 4.6.x and later read them\n# from the Secret {} (jksExistingSecret); for 4.2.x-4.5.x add -f {VALUES_PASSWORDS_FILE}.\n",
        input.node,
        input.chart.describe(),
        passwords_secret_name(&input.node),
    );
    out.push_str("wso2:\n  apim:\n    configurations:\n      security:\n");
    out.push_str(&format!(
        "        jksSecretName: {}\n        jksExistingSecret:\n          secretName: {}\n",
        quote(&keystores_secret_name(&input.node)),
        quote(&passwords_secret_name(&input.node))
    ));
    for slot in [Slot::Primary, Slot::Tls, Slot::Truststore] {
        let (store_field, key_field) = slot.existing_secret_fields();
        let (store_key, key_key) = slot.password_keys();
        let present = input.store(slot).is_some();
        let value = |k: &str| quote(if present { k } else { "" });
        out.push_str(&format!("          {store_field}: {}\n", value(store_key)));
        if let (Some(f), Some(k)) = (key_field, key_key) {
            out.push_str(&format!("          {f}: {}\n", value(k)));
        }
    }
    out.push_str("        keystores:\n");
    for slot in [Slot::Primary, Slot::Tls] {
        out.push_str(&format!("          {}:\n", slot.values_key()));
        match input.store(slot) {
            Some(s) => out.push_str(&format!(
                "            enabled: true\n            name: {}\n            alias: {}\n",
                quote(&s.file_name),
                quote(s.alias.as_deref().unwrap_or_default())
            )),
            None => out.push_str(
                "            enabled: false   # TLS uses the primary (tls = \"shared\")\n",
            ),
        }
    }
    out.push_str(
        "          internal:\n            enabled: false   # WSO2 uses the primary keystore\n",
    );
    if let Some(t) = input.store(Slot::Truststore) {
        out.push_str(&format!(
            "        truststore:\n          name: {}\n",
            quote(&t.file_name)
        ));
    }
    out
}

/// The passwords as values, for charts 4.2.x-4.5.x (which read them from values only).
pub(crate) fn values_passwords(input: &NodeInput) -> Zeroizing<String> {
    let mut out = Zeroizing::new(format!(
        "# Keystore passwords of node {} as Helm values, for WSO2's charts 4.2.x-4.5.x, which read\n# them from values only (4.6.x and later read the Secret {} instead).\n# Written by apim-pki export kubernetes. SECRET: keep it out of version control.\n",
        input.node,
        passwords_secret_name(&input.node)
    ));
    out.push_str("wso2:\n  apim:\n    configurations:\n      security:\n        keystores:\n");
    for slot in [Slot::Primary, Slot::Tls] {
        if let Some(s) = input.store(slot) {
            let p = Zeroizing::new(quote(s.password.expose()));
            out.push_str("          ");
            out.push_str(slot.values_key());
            out.push_str(":\n            password: ");
            out.push_str(&p);
            out.push_str("\n            keyPassword: ");
            out.push_str(&p);
            out.push('\n');
        }
    }
    if let Some(t) = input.store(Slot::Truststore) {
        let p = Zeroizing::new(quote(t.password.expose()));
        out.push_str("        truststore:\n          password: ");
        out.push_str(&p);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(slot: Slot, file: &str, alias: Option<&str>, bytes: &[u8], pw: &str) -> Store {
        Store {
            slot,
            file_name: file.into(),
            alias: alias.map(str::to_string),
            bytes: bytes.to_vec(),
            password: Password::new(pw.into()),
        }
    }

    fn input(per_node: bool) -> NodeInput {
        let mut stores = vec![store(
            Slot::Primary,
            "wso2carbon.p12",
            Some("wso2carbon"),
            b"\x30\x82primary\x00\xff",
            "Prim-S3cret",
        )];
        if per_node {
            stores.push(store(
                Slot::Tls,
                "gw1-tls.p12",
                Some("gw1"),
                b"tls",
                "Tls-S3cret\"q",
            ));
        }
        stores.push(store(
            Slot::Truststore,
            "client-truststore.p12",
            None,
            b"ts",
            "Trust-S3cret",
        ));
        NodeInput {
            node: "gw1".into(),
            chart: Chart::Gateway,
            stores,
        }
    }

    /// `key: value` pairs under a Secret's `data:`, base64-decoded.
    fn data(yaml: &str) -> Vec<(String, Vec<u8>)> {
        let body = yaml.split("\ndata:\n").nth(1).expect("data section");
        body.lines()
            .map(|l| {
                let (k, v) = l.trim().split_once(": ").expect("key: value");
                let k: String = serde_json::from_str(k).expect("quoted key");
                let v = base64::engine::general_purpose::STANDARD
                    .decode(v)
                    .expect("base64");
                (k, v)
            })
            .collect()
    }

    #[test]
    fn dns1123_and_secret_keys() {
        for ok in ["gw1-keystores", "a", "a.b-c", "0x"] {
            assert!(is_dns1123_subdomain(ok), "{ok}");
        }
        for bad in ["", "-gw", "gw-", "GW", "gw_1", "gw.", &"a".repeat(254)] {
            assert!(!is_dns1123_subdomain(bad), "{bad}");
        }
        for ok in ["wso2carbon.p12", "gw1-tls.jks", "a_b", "X"] {
            assert!(is_secret_key(ok), "{ok}");
        }
        for bad in ["", ".", "..", "a/b", "a b", "ä"] {
            assert!(!is_secret_key(bad), "{bad}");
        }
    }

    #[test]
    fn keystores_secret_carries_every_store_byte_for_byte() {
        let input = input(true);
        let files = render_node(&input).expect("renders");
        let names: Vec<&str> = files.iter().map(|f| f.name).collect();
        assert_eq!(
            names,
            [
                KEYSTORES_FILE,
                PASSWORDS_FILE,
                KUSTOMIZATION_FILE,
                VALUES_FILE,
                VALUES_PASSWORDS_FILE
            ]
        );
        let ks = &files[0].text;
        assert!(ks.contains("\nkind: Secret\n") && ks.contains("\ntype: Opaque\n"));
        assert!(ks.contains("\n  name: gw1-keystores\n"));
        let got = data(ks);
        let want: Vec<(String, Vec<u8>)> = input
            .stores
            .iter()
            .map(|s| (s.file_name.clone(), s.bytes.clone()))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn passwords_secret_has_store_and_key_passwords() {
        let files = render_node(&input(true)).expect("renders");
        let got = data(&files[1].text);
        let keys: Vec<&str> = got.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "primary-keystore-password",
                "primary-key-password",
                "tls-keystore-password",
                "tls-key-password",
                "truststore-password"
            ]
        );
        assert_eq!(got[2].1, b"Tls-S3cret\"q");
        assert_eq!(got[4].1, b"Trust-S3cret");
    }

    #[test]
    fn values_name_the_secrets_and_hold_no_password() {
        let input = input(true);
        let v = values(&input);
        assert!(v.contains("jksSecretName: \"gw1-keystores\""));
        assert!(v.contains("secretName: \"gw1-keystore-passwords\""));
        assert!(v.contains("name: \"gw1-tls.p12\"\n            alias: \"gw1\""));
        for s in &input.stores {
            assert!(
                !v.contains(s.password.expose()),
                "password leaked into values.yaml"
            );
        }
        let p = values_passwords(&input);
        assert!(
            p.contains("password: \"Tls-S3cret\\\"q\""),
            "{}",
            p.as_str()
        );
        assert!(p.contains("truststore:\n          password: \"Trust-S3cret\""));
    }

    #[test]
    fn shared_tls_disables_the_tls_slot_so_no_path_is_mounted_twice() {
        let input = input(false);
        let v = values(&input);
        assert!(v.contains("tls:\n            enabled: false"));
        assert!(v.contains("tlsKeystorePasswordKey: \"\""));
        assert!(v.contains("internal:\n            enabled: false"));
        let files = render_node(&input).expect("renders");
        assert_eq!(data(&files[0].text).len(), 2);
        assert!(!data(&files[1].text)
            .iter()
            .any(|(k, _)| k.starts_with("tls")));
    }

    #[test]
    fn bad_names_are_refused() {
        let mut bad = input(true);
        bad.node = "-gw".into();
        assert!(matches!(render_node(&bad), Err(RenderError::ObjectName(_))));
        let mut bad = input(true);
        bad.stores[0].file_name = "a/b".into();
        assert!(matches!(render_node(&bad), Err(RenderError::SecretKey(_))));
        let mut bad = input(true);
        bad.stores.retain(|s| s.slot != Slot::Truststore);
        assert!(matches!(
            render_node(&bad),
            Err(RenderError::MissingStore { .. })
        ));
    }

    #[test]
    fn charts_by_profile() {
        assert_eq!(
            Chart::for_profile(Profile::GatewayWorker),
            Some(Chart::Gateway)
        );
        assert_eq!(
            Chart::for_profile(Profile::ControlPlane),
            Some(Chart::ControlPlane)
        );
        assert_eq!(
            Chart::for_profile(Profile::TrafficManager),
            Some(Chart::TrafficManager)
        );
        assert_eq!(
            Chart::for_profile(Profile::KeyManager),
            Some(Chart::KeyManager)
        );
        assert_eq!(
            Chart::for_profile(Profile::UniversalGateway),
            Some(Chart::Gateway)
        );
        assert_eq!(Chart::for_profile(Profile::Publisher), None);
    }
}
