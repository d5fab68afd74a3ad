//! `init`: a commented topology to start from, for each product, single-node or HA.

use crate::topology::{KeyType, KeystoreFormat, Product, Profile};

/// The full HA topology for API-M 2.6 of WSO2's distributed deployment guide.
const APIM26_HA: &str = include_str!("../examples/ha.toml");
/// The smallest API-M 2.6 topology.
const APIM26_MINIMAL: &str = include_str!("../examples/minimal.toml");

/// What a topology may say, as TOML comments: every product with its profiles (required ones
/// marked), the key types and the keystore formats. `init` prints it after the example.
pub(crate) fn reference() -> String {
    let mut out = String::from(
        "# ---------------------------------------------------------------------------------\n\
         # What a topology may use (docs/topology.md describes every key and rule):\n#\n\
         # product = profiles (* = at least one node required)\n",
    );
    for product in Product::ALL {
        let profiles: Vec<String> = product
            .profiles()
            .iter()
            .map(|(p, required)| format!("{p}{}", if *required { "*" } else { "" }))
            .collect();
        out += &format!("#   {:<9} {}\n", product.as_str(), profiles.join(", "));
    }
    let keys: Vec<&str> = KeyType::ALL.iter().map(|k| k.as_str()).collect();
    let formats: Vec<&str> = KeystoreFormat::ALL.iter().map(|f| f.as_str()).collect();
    out += &format!(
        "#\n# [pki] key, and [keystores] primary_key (RSA only): {}\n\
         # [keystores] format: {} (default: jks for apim-2.6, pkcs12 otherwise)\n\
         # [keystores] tls: per-node (default) | shared\n\
         # [pki]: validity_days, renew_before_days, organization, organizational_unit, country,\n\
         #        include_localhost; [pki.ca]: validity_days, cert, key\n\
         # [keystores]: primary_alias, primary_validity_days; [passwords]: primary, tls, truststore\n\
         # [secure_vault] (on when absent; docs/secure-vault.md): enabled = true | false,\n\
         #                scheme = oaep (default) | pkcs1, password_file = none (default) | tmp | persist\n\
         # [[node]]: name, profile, host, ip, offset, extra_sans; [[load_balancer]]: host, fronts\n",
        keys.join(" | "),
        formats.join(" | ")
    );
    out
}

/// A commented example topology for `product`; with `ha`, two nodes per profile behind load
/// balancers.
pub(crate) fn example(product: Product, ha: bool) -> String {
    match (product, ha) {
        (Product::Apim26, true) => APIM26_HA.to_string(),
        (Product::Apim26, false) => APIM26_MINIMAL.to_string(),
        _ => generic(product, ha),
    }
}

fn generic(product: Product, ha: bool) -> String {
    let mut out = format!(
        "# apim-pki topology for WSO2 API Manager ({}). Edit the hosts, then run:\n#   apim-pki generate topology.toml --out pki\n\
         name = \"acme\"                  # appears in the CA's CN\nproduct = \"{}\"\n\n\
         [pki]\nkey = \"rsa-2048\"               # rsa-2048 | rsa-3072 | rsa-4096 | ecdsa-p256 | ecdsa-p384\nvalidity_days = 397\n\
         renew_before_days = 30\n# organization = \"Acme Corp\"\n# country = \"US\"\n\n\
         [keystores]\nformat = \"pkcs12\"              # jks | pkcs12 | pkcs12-legacy\ntls = \"per-node\"               # per-node | shared\n\n\
         # [passwords] names environment variables; unset ones are generated into secrets.toml.\n\
         # [passwords]\n# primary = \"APIM_PRIMARY_PASSWORD\"\n# tls = \"APIM_TLS_PASSWORD\"\n# truststore = \"APIM_TRUSTSTORE_PASSWORD\"\n\n\
         # Secure vault (on by default): passwords in the node files are ciphertexts under the primary key.\n\
         # [secure_vault]\n# enabled = true\n# scheme = \"oaep\"             # oaep | pkcs1\n# password_file = \"none\"       # none | tmp | persist (apply writes it, 0600)\n",
        product.as_str(),
        product.as_str()
    );
    let short = |p: Profile| match p {
        Profile::KeyManager => "km",
        Profile::Publisher => "pub",
        Profile::Store => "store",
        Profile::Devportal => "devportal",
        Profile::TrafficManager => "tm",
        Profile::GatewayManager => "gwm",
        Profile::GatewayWorker | Profile::UniversalGateway => "gw",
        Profile::ControlPlane => "cp",
    };
    for (profile, required) in product.profiles() {
        if !required {
            continue;
        }
        let count = if ha { 2 } else { 1 };
        for i in 1..=count {
            let name = if ha {
                format!("{}{i}", short(*profile))
            } else {
                short(*profile).to_string()
            };
            out += &format!("\n[[node]]\nname = \"{name}\"\nprofile = \"{profile}\"\nhost = \"{name}.acme.internal\"\n");
        }
    }
    if ha {
        for (profile, required) in product.profiles() {
            if *required {
                out += &format!(
                    "\n[[load_balancer]]\nhost = \"{}.acme.internal\"\nfronts = \"{profile}\"\n",
                    short(*profile)
                );
            }
        }
    }
    out
}
