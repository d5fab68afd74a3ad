//! Entry points for the fuzz targets: the parsers that read what users and attackers can hand
//! apim-pki (topology, JKS, PKCS#12, PEM) and the editors that rewrite WSO2's files (XML,
//! `.properties`, `site.json`, TOML). Each takes arbitrary bytes and must return: no panic, no
//! hang, no allocation beyond a small multiple of the input.
//!
//! `fuzz/` (a separate Cargo project, run by `scripts/fuzz.sh TARGET SECONDS`) drives them under
//! libFuzzer; `tests/it/fuzz_sample.rs` replays a seed corpus and a few thousand mutations of it
//! through the same functions on every `cargo test`. Where an edit succeeds, the targets also
//! check what must hold of its output (it parses again, the value reads back).

use std::path::Path;

use crate::config::{jsonedit, properties::Properties, xmledit};
use crate::keystore::{jks, Keystore};
use crate::password::Password;

/// The password the keystore seeds are made with, so mutations get past decryption.
pub const SEED_PASSWORD: &str = "changeit";

/// A fuzz target: takes any bytes, returns (panics only on a bug).
pub type Target = fn(&[u8]);

/// The fuzz targets, by the name `scripts/fuzz.sh` takes.
pub const TARGETS: [(&str, Target); 8] = [
    ("topology", topology),
    ("jks", jks),
    ("pkcs12", pkcs12),
    ("pem", pem),
    ("xml", xml),
    ("properties", properties),
    ("site_json", site_json),
    ("toml", toml),
];

/// The topology parser and validator.
pub fn topology(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = crate::topology::Topology::parse(text, Path::new("fuzz/topology.toml"));
    }
}

/// The JKS reader: structure, integrity trailer, and each key's decryption.
pub fn jks(data: &[u8]) {
    if let Ok(store) = jks::JksKeyStore::from_bytes(data, SEED_PASSWORD) {
        for entry in &store.entries {
            if let jks::JksEntry::PrivateKey { key, .. } = entry {
                let _ = key.decrypt(SEED_PASSWORD);
            }
        }
    }
    let _ = Keystore::decode(data, &Password::new(SEED_PASSWORD.into()));
}

/// The PKCS#12 reader (through [`Keystore::decode`] and `inspect`).
pub fn pkcs12(data: &[u8]) {
    let password = Password::new(SEED_PASSWORD.into());
    let _ = Keystore::decode(data, &password);
    let _ = crate::inspect::inspect(data, Some(&password));
}

/// The PEM reader: certificate lists, and `inspect`'s listing of each certificate.
pub fn pem(data: &[u8]) {
    let _ = crate::keystore::pem::certs_from_pem(data);
    if crate::keystore::pem::is_pem(data) {
        let _ = crate::inspect::inspect(data, None);
    }
}

/// The XML editor: parse, query, edit, and the edited text must parse again.
pub fn xml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(doc) = xmledit::XmlDoc::parse(text) else {
        return;
    };
    let _ = doc.declared_encoding();
    let names = doc.paths_named("Password");
    let mut edits = xmledit::Edits::new(&doc);
    for path in names.iter().take(4) {
        let _ = doc.texts(path);
        let _ = doc.is_secured(path);
        let _ = edits.set_text(path, "new<&>\"value\u{e9}");
    }
    let _ = edits.set_attr("*/*", "port", "9443");
    let _ = edits.ensure_text("*/Security/KeyStore/Location", "x.p12");
    if let Ok((edited, _)) = edits.apply() {
        if let Err(e) = xmledit::XmlDoc::parse(&edited) {
            panic!("edited XML no longer parses: {e}");
        }
    }
}

/// The `.properties` editor: a value set reads back, and the rest of the file stays.
pub fn properties(data: &[u8]) {
    let mut props = Properties::from_bytes(data);
    let value = "amqp://u:p@tcp://h:5672?x='1'\u{e9}\u{263a}";
    let _ = props.set("connectionfactory.TopicConnectionFactory", value);
    let again = Properties::from_bytes(&props.to_bytes());
    let _ = again.get("connectionfactory.TopicConnectionFactory");
}

/// The `site.json` editor: no panic on any text; on well-formed JSON, a string set in place
/// keeps the document well-formed and reads back unchanged on a second set. (The editor works
/// on text and does not judge malformed JSON, which WSO2 itself would refuse.)
pub fn site_json(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let well_formed = serde_json::from_str::<serde_json::Value>(text).is_ok();
    let mut text = text.to_string();
    let value = "wso2carbon.p12\"\\\u{1}";
    let set = jsonedit::set_string(&mut text, "ssoConfiguration", "keyStoreName", value);
    if well_formed && matches!(set, Ok(Some(_))) {
        if let Err(e) = serde_json::from_str::<serde_json::Value>(&text) {
            panic!("the edit broke well-formed JSON: {e}");
        }
        let again = jsonedit::set_string(&mut text, "ssoConfiguration", "keyStoreName", value);
        assert_eq!(again, Ok(None), "a value just set must read back");
    }
}

/// The TOML readers: secrets.toml and plain tables (node.toml, deployment.toml).
pub fn toml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = crate::output::secrets::Secrets::parse(text);
    let _ = text.parse::<::toml::Table>();
}
