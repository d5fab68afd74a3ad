//! The topology file as written: serde structs that keep each value's position, so that rules
//! checked after parsing can still name the line. Nothing here is trusted by the rest of the code.

use serde::Deserialize;
use serde_spanned::Spanned;

pub(super) type S<T> = Spanned<T>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTopology {
    pub name: S<String>,
    pub product: S<String>,
    #[serde(default)]
    pub pki: RawPki,
    #[serde(default)]
    pub keystores: RawKeystores,
    pub passwords: Option<RawPasswords>,
    #[serde(default)]
    pub secure_vault: RawSecureVault,
    #[serde(default)]
    pub node: Vec<RawNode>,
    #[serde(default)]
    pub load_balancer: Vec<RawLoadBalancer>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPki {
    pub key: Option<S<String>>,
    pub validity_days: Option<S<i64>>,
    pub renew_before_days: Option<S<i64>>,
    pub organization: Option<S<String>>,
    pub organizational_unit: Option<S<String>>,
    pub country: Option<S<String>>,
    pub include_localhost: Option<bool>,
    #[serde(default)]
    pub ca: RawCa,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCa {
    pub validity_days: Option<S<i64>>,
    pub cert: Option<S<String>>,
    pub key: Option<S<String>>,
    /// A PKI engine that signs instead of a local CA (docs/openbao.md).
    pub backend: Option<S<String>>,
    pub address: Option<S<String>>,
    pub mount: Option<S<String>>,
    pub role: Option<S<String>>,
    pub issuer: Option<S<String>>,
    pub token_env: Option<S<String>>,
    pub ca_bundle: Option<S<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawKeystores {
    pub format: Option<S<String>>,
    pub tls: Option<S<String>>,
    pub primary_alias: Option<S<String>>,
    pub primary_key: Option<S<String>>,
    pub primary_validity_days: Option<S<i64>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSecureVault {
    pub enabled: Option<bool>,
    pub scheme: Option<S<String>>,
    pub password_file: Option<S<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPasswords {
    pub primary: Option<S<String>>,
    pub tls: Option<S<String>>,
    pub truststore: Option<S<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNode {
    pub name: S<String>,
    pub profile: S<String>,
    pub host: S<String>,
    pub ip: Option<S<String>>,
    pub offset: Option<S<i64>>,
    #[serde(default)]
    pub extra_sans: Vec<S<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLoadBalancer {
    pub host: S<String>,
    pub fronts: S<String>,
    pub affinity: Option<S<String>>,
    pub affinity_cookie: Option<S<String>>,
    pub cert_dir: Option<S<String>>,
    pub cert_file: Option<S<String>>,
    pub key_file: Option<S<String>>,
    pub ca_file: Option<S<String>>,
    pub haproxy_pem_file: Option<S<String>>,
}
