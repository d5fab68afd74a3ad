//! The WSO2 rules for merging a node's generated deployment.toml into the product's own file:
//! which arrays of tables apply owns, which existing values it keeps, and where a fresh home's
//! profile template is. The merge itself is `config::tomledit`, which knows nothing of WSO2.

use sha2::{Digest, Sha256};

use crate::config::tomledit::{ArrayRule, Rules};
use crate::topology::{Product, Profile};

/// The arrays of tables apply writes. Gateway environments are matched by name and the set is
/// ours (the shipped `localhost` one is replaced); URL groups are ours and matched by position;
/// event listeners are matched by `id` and the operator's other listeners stay.
pub(crate) fn rules() -> Rules {
    Rules {
        arrays: vec![
            ArrayRule {
                path: "apim.gateway.environment",
                key: Some("name"),
                keep_others: false,
            },
            ArrayRule {
                path: "apim.throttling.url_group",
                key: None,
                keep_others: false,
            },
            ArrayRule {
                path: "apim.event_hub.publish.url_group",
                key: None,
                keep_others: false,
            },
            ArrayRule {
                path: "event_listener",
                key: Some("id"),
                keep_others: true,
            },
        ],
        keep: Some(keep_encrypted_secret),
        // WSO2's cipher tool (1.1.26, 1.1.28) rewrites the lines after [secrets] to "null".
        last: Some("secrets"),
    }
}

/// A `[secrets]` value the cipher tool already encrypted stays: apply cannot tell which password
/// it holds, and replacing it with plain text would undo the operator's work.
fn keep_encrypted_secret(path: &str, _key: &str, existing: &toml_edit::Value) -> bool {
    path == "secrets" && !existing.as_str().is_some_and(is_plain_secret)
}

/// `"[text]"`: a `[secrets]` value the cipher tool has not encrypted yet.
pub(crate) fn is_plain_secret(value: &str) -> bool {
    value.len() >= 2 && value.starts_with('[') && value.ends_with(']')
}

/// The aliases in `text`'s `[secrets]` whose values are still plain text.
pub(crate) fn plain_secrets(text: &str) -> Vec<String> {
    let Ok(table) = text.parse::<toml::Table>() else {
        return Vec::new();
    };
    table
        .get("secrets")
        .and_then(|s| s.as_table())
        .map(|s| {
            s.iter()
                .filter(|(_, v)| v.as_str().is_some_and(is_plain_secret))
                .map(|(k, _)| k.clone())
                .collect()
        })
        .unwrap_or_default()
}

/// The profile template `profileSetup.sh -Dprofile=X` copies over deployment.toml, relative to
/// the product home (3.2 and 4.0-4.4; in 4.5+, whose distributions are one per profile, only the
/// control-plane distribution's key-manager profile has one).
pub(crate) fn template(product: Product, profile: Profile) -> Option<String> {
    let name = match (product, profile) {
        (Product::Apim32 | Product::Apim4x, _) => profile.start_profile(product)?,
        (Product::Apim45, Profile::KeyManager) => "key-manager",
        (Product::Apim26 | Product::Apim45, _) => return None,
    };
    Some(format!(
        "repository/resources/conf/deployment-templates/{name}.toml"
    ))
}

/// SHA-256 of the deployment.toml WSO2 ships in 3.2.0, 4.0.0, 4.4.0 and 4.6.0's control-plane
/// distribution (checked against the real distributions in ../shared/reference/wso2).
const SHIPPED: [&str; 4] = [
    "69cb727c5ccd4fde39573a976cfde72c8ad805cf83314841466fa8cc2c9f3c99",
    "32260fed8bb67a8806ff206a41fc90ef5ce7f2fbc67d5c5d40aa175c079dd291",
    "2424f4de155b7f63b7d409d998187b8e9a8ac589277df287279fb0adc913bb56",
    "b57da53f43c72d1084256cd0e6ad33851092120271a09d8179a3faf295f3751c",
];

/// True when `bytes` is a deployment.toml exactly as WSO2 ships it: nobody has configured this
/// home yet, so apply starts from the profile template, as `profileSetup.sh` would.
pub(crate) fn is_shipped(bytes: &[u8]) -> bool {
    let digest = Sha256::digest(bytes);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    SHIPPED.contains(&hex.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tomledit::merge;

    #[test]
    fn plain_and_encrypted_secrets() {
        assert!(is_plain_secret("[abc]"));
        assert!(!is_plain_secret("bXljaXBoZXI="));
        assert!(!is_plain_secret("["));
        let text = "[secrets]\na = \"[x]\"\nb = \"Y2lwaGVy\"\n";
        assert_eq!(plain_secrets(text), ["a"]);
        let patch = "[secrets]\na = \"[new]\"\nb = \"[new]\"\n";
        let m = merge(text, patch, &rules()).expect("merged");
        assert_eq!(m.text, "[secrets]\na = \"[new]\"\nb = \"Y2lwaGVy\"\n");
        assert_eq!(m.kept, ["secrets.b"]);
    }

    #[test]
    fn templates_per_version() {
        assert_eq!(
            template(Product::Apim4x, Profile::GatewayWorker).as_deref(),
            Some("repository/resources/conf/deployment-templates/gateway-worker.toml")
        );
        assert_eq!(
            template(Product::Apim32, Profile::Devportal).as_deref(),
            Some("repository/resources/conf/deployment-templates/api-devportal.toml")
        );
        assert_eq!(
            template(Product::Apim4x, Profile::KeyManager).as_deref(),
            Some("repository/resources/conf/deployment-templates/api-key-manager-node.toml")
        );
        assert!(template(Product::Apim45, Profile::ControlPlane).is_none());
        assert!(template(Product::Apim45, Profile::UniversalGateway).is_none());
        assert_eq!(
            template(Product::Apim45, Profile::KeyManager).as_deref(),
            Some("repository/resources/conf/deployment-templates/key-manager.toml")
        );
        assert!(!is_shipped(b"[server]\n"));
    }

    #[test]
    fn shipped_environment_replaced_operator_listener_kept() {
        let base = "[[apim.gateway.environment]]\nname = \"Default\"\nservice_url = \"https://localhost:9443/services/\"\n\n[[apim.gateway.environment]]\nname = \"Other\"\n\n[[event_listener]]\nid = \"mine\"\n";
        let patch = "[[apim.gateway.environment]]\nname = \"Default\"\nservice_url = \"https://gw:9443/services/\"\n\n[[event_listener]]\nid = \"token_revocation\"\n[event_listener.properties]\nnotification_endpoint = \"https://tm:9443/internal/data/v1/notify\"\n";
        let m = merge(base, patch, &rules()).expect("merged");
        let t: toml::Table = toml::from_str(&m.text).expect("valid");
        let envs = t["apim"]["gateway"]["environment"]
            .as_array()
            .expect("envs");
        assert_eq!(envs.len(), 1);
        let listeners = t["event_listener"].as_array().expect("listeners");
        assert_eq!(listeners.len(), 2);
        assert_eq!(
            listeners[1]["properties"]["notification_endpoint"].as_str(),
            Some("https://tm:9443/internal/data/v1/notify")
        );
    }
}
