//! `apim-pki export kubernetes` on real sets, checked from outside:
//! - every manifest parses as YAML (PyYAML, an independent parser) and is a valid Kubernetes
//!   Secret (apiVersion v1, kind Secret, DNS-1123 name, type Opaque, `[-._a-zA-Z0-9]+` data keys,
//!   base64 values); `kubectl kustomize` builds each node's folder into exactly the two Secrets;
//! - the stores decode byte for byte to the set's files; keytool lists them, and a JVM opens
//!   them with type JKS (what the charts' deployment.toml says) and recovers every key, with the
//!   passwords taken from the passwords Secret;
//! - the values snippet names Secrets and keys that exist, and every
//!   `.Values.wso2.apim.configurations.security.*` key WSO2's real 4.2.x chart configuration
//!   reads is set by values.yaml + values-passwords.yaml;
//! - files 0600, folders 0700, no password or its base64 on stdout or stderr;
//! - exit 2: unknown node, unknown profile, a 2.6 set, a password variable that is not set
//!   (named), and nothing written then.

use crate::util;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::util::cli::{generate, run, write_topology};
use crate::util::files::{in_ci, s};
use crate::util::java;
use base64::Engine;
use serde_json::Value;

/// True when python3 with PyYAML runs; otherwise fails in CI, or says it skips.
fn have_pyyaml() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import yaml"])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        java::missing_tool("python3 with PyYAML");
    }
    ok
}

/// A YAML file as JSON, parsed by PyYAML's safe loader.
fn yaml(path: &Path) -> Value {
    let out = Command::new("python3")
        .args([
            "-c",
            "import sys, json, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))",
        ])
        .arg(path)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{} is not valid YAML: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

fn dns1123(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 253
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-' || *c == b'.')
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
}

/// Checks `doc` is a Kubernetes Secret by the API's rules; returns its name and decoded data.
fn secret(doc: &Value, file: &Path) -> (String, BTreeMap<String, Vec<u8>>) {
    let at = file.display();
    assert_eq!(doc["apiVersion"], "v1", "{at}");
    assert_eq!(doc["kind"], "Secret", "{at}");
    assert_eq!(doc["type"], "Opaque", "{at}");
    let name = doc["metadata"]["name"]
        .as_str()
        .expect("metadata.name")
        .to_string();
    assert!(
        dns1123(&name),
        "{at}: metadata.name `{name}` is not DNS-1123"
    );
    let obj = doc.as_object().expect("object");
    for key in obj.keys() {
        assert!(
            ["apiVersion", "kind", "metadata", "type", "data"].contains(&key.as_str()),
            "{at}: unexpected field {key}"
        );
    }
    let mut data = BTreeMap::new();
    for (k, v) in doc["data"].as_object().expect("data") {
        assert!(
            !k.is_empty()
                && k.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || b"-._".contains(&c)),
            "{at}: data key `{k}`"
        );
        let b = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().expect("string value"))
            .unwrap_or_else(|e| panic!("{at}: {k} is not base64: {e}"));
        data.insert(k.clone(), b);
    }
    (name, data)
}

/// A 4.x HA set (per-node TLS, PKCS#12) made once for the tests of this binary.
fn ha_set() -> &'static Path {
    static SET: OnceLock<PathBuf> = OnceLock::new();
    SET.get_or_init(|| {
        let tmp = tempfile::tempdir().expect("tempdir").keep();
        let init = run(&["init", "--product", "apim-4.x", "--ha"], &[]);
        assert_eq!(init.code, 0, "{}", init.stderr);
        let topo = write_topology(&tmp, &init.stdout);
        generate(&topo, &tmp.join("pki"), &[]);
        tmp.join("pki")
    })
}

fn export(args: &[&str], env: &[(&str, &str)]) -> util::cli::Run {
    let mut all = vec!["export", "kubernetes"];
    all.extend_from_slice(args);
    run(&all, env)
}

/// Everything about one exported node folder; the JVM checks (a few seconds) when `with_java`.
fn check_node_folder(set: &Path, folder: &Path, node: &str, with_java: bool) {
    let mode = |p: &Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode(folder), 0o700, "{}", folder.display());
    for entry in std::fs::read_dir(folder).expect("folder") {
        let p = entry.expect("entry").path();
        assert_eq!(mode(&p), 0o600, "{}", p.display());
    }
    let ks_file = folder.join("keystores-secret.yaml");
    let pw_file = folder.join("passwords-secret.yaml");
    let (ks_name, stores) = secret(&yaml(&ks_file), &ks_file);
    let (pw_name, passwords) = secret(&yaml(&pw_file), &pw_file);
    // The stores are the set's files, byte for byte.
    let security = set
        .join("nodes")
        .join(node)
        .join("repository/resources/security");
    for (file, bytes) in &stores {
        let original = std::fs::read(security.join(file)).expect("the set's file");
        assert!(&original == bytes, "{node}: {file} differs from the set's");
    }
    let kust = yaml(&folder.join("kustomization.yaml"));
    assert_eq!(kust["kind"], "Kustomization");
    let resources: Vec<&str> = kust["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .map(|r| r.as_str().expect("str"))
        .collect();
    assert_eq!(
        resources,
        ["keystores-secret.yaml", "passwords-secret.yaml"]
    );
    check_values(folder, &ks_name, &pw_name, &stores, &passwords);
    if !with_java {
        return;
    }
    check_with_java(
        folder,
        &stores,
        &passwords,
        &yaml(&folder.join("values.yaml")),
    );
}

/// values.yaml names the Secrets and keys that exist; values-passwords.yaml matches the Secret.
fn check_values(
    folder: &Path,
    ks_name: &str,
    pw_name: &str,
    stores: &BTreeMap<String, Vec<u8>>,
    passwords: &BTreeMap<String, Vec<u8>>,
) {
    let v = yaml(&folder.join("values.yaml"));
    let sec = &v["wso2"]["apim"]["configurations"]["security"];
    assert_eq!(sec["jksSecretName"], ks_name);
    let existing = &sec["jksExistingSecret"];
    assert_eq!(existing["secretName"], pw_name);
    for (field, key) in existing.as_object().expect("jksExistingSecret") {
        let key = key.as_str().expect("str");
        if field != "secretName" && !key.is_empty() {
            assert!(
                passwords.contains_key(key),
                "{field} names {key}, not in {pw_name}"
            );
        }
    }
    let mut mounted = vec![sec["truststore"]["name"]
        .as_str()
        .expect("truststore.name")
        .to_string()];
    for slot in ["primary", "tls", "internal"] {
        let ks = &sec["keystores"][slot];
        if ks["enabled"] == true {
            mounted.push(ks["name"].as_str().expect("name").to_string());
        }
    }
    let mut sorted = mounted.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(
        sorted.len(),
        mounted.len(),
        "two slots mount one path: {mounted:?}"
    );
    let keys: Vec<String> = stores.keys().cloned().collect();
    assert_eq!(sorted, keys, "mounted files and Secret keys differ");
    let vp = yaml(&folder.join("values-passwords.yaml"));
    let vsec = &vp["wso2"]["apim"]["configurations"]["security"];
    let pw = |k: &str| String::from_utf8(passwords[k].clone()).expect("utf-8");
    assert_eq!(vsec["truststore"]["password"], pw("truststore-password"));
    assert_eq!(
        vsec["keystores"]["primary"]["password"],
        pw("primary-keystore-password")
    );
    assert_eq!(
        vsec["keystores"]["primary"]["keyPassword"],
        pw("primary-key-password")
    );
    if sec["keystores"]["tls"]["enabled"] == true {
        assert_eq!(
            vsec["keystores"]["tls"]["password"],
            pw("tls-keystore-password")
        );
    }
}

/// keytool lists each store, and a JVM opens it as type JKS and recovers its keys, with the
/// passwords the Secret holds.
fn check_with_java(
    folder: &Path,
    stores: &BTreeMap<String, Vec<u8>>,
    passwords: &BTreeMap<String, Vec<u8>>,
    values: &Value,
) {
    if !java::require("keytool") || !java::require("java") {
        return;
    }
    let sec = &values["wso2"]["apim"]["configurations"]["security"];
    let tmp = tempfile::tempdir().expect("tempdir");
    for (file, bytes) in stores {
        let slot = ["primary", "tls"].into_iter().find(|s| {
            sec["keystores"][*s]["name"] == file.as_str() && sec["keystores"][*s]["enabled"] == true
        });
        let (store_key, key_key) = match slot {
            Some(s) => (
                format!("{s}-keystore-password"),
                format!("{s}-key-password"),
            ),
            None => (
                "truststore-password".to_string(),
                "truststore-password".to_string(),
            ),
        };
        let pass = String::from_utf8(passwords[&store_key].clone()).expect("utf-8");
        let key_pass = String::from_utf8(passwords[&key_key].clone()).expect("utf-8");
        let path = tmp.path().join(file);
        std::fs::write(&path, bytes).expect("write");
        let listing = java::keytool_list(&java::jdk17_keytool(), &path, &pass)
            .unwrap_or_else(|e| panic!("{}: keytool: {e}", folder.display()));
        assert!(listing.contains("Your keystore contains"), "{listing}");
        let dump = java::keystore_dump(&java::jdk17_java(), &path, "JKS", &key_pass)
            .unwrap_or_else(|e| panic!("{}: {file} as JKS: {e}", folder.display()));
        match slot {
            Some(s) => {
                let alias = sec["keystores"][s]["alias"].as_str().expect("alias");
                let want = format!("{alias} PrivateKeyEntry");
                let line = dump.lines().find(|l| l.starts_with(&want));
                assert!(
                    line.is_some_and(|l| !l.contains("key=null")),
                    "{file}: {dump}"
                );
            }
            None => assert!(
                dump.lines().any(|l| l.contains(" trustedCertEntry ")),
                "{file}: no trusted certificate as type JKS: {dump}"
            ),
        }
    }
}

#[test]
#[cfg_attr(
    not(all(apim_pki_jdk17, apim_pki_pyyaml)),
    ignore = "needs JDK 17: java, javac and keytool on PATH (apt-get install openjdk-17-jdk-headless); python3 with PyYAML (apt-get install python3-yaml); .ci/run installs it all"
)]
fn profile_export_validates_and_carries_the_set_byte_for_byte() {
    if !have_pyyaml() {
        return;
    }
    let set = ha_set();
    let out = set.parent().expect("parent").join("k8s-cp");
    let r = export(
        &[s(set), "--profile", "control-plane", "--out", s(&out)],
        &[],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let secrets = util::cli::secrets(set);
    for p in secrets.values() {
        let b64 = base64::engine::general_purpose::STANDARD.encode(p);
        for text in [&r.stdout, &r.stderr] {
            assert!(
                !text.contains(p.as_str()) && !text.contains(&b64),
                "a password was printed"
            );
        }
    }
    for node in ["cp1", "cp2"] {
        assert!(
            r.stdout.contains(&format!("{node}-keystores")),
            "{}",
            r.stdout
        );
        check_node_folder(set, &out.join(node), node, node == "cp1");
    }
    assert!(!out.join("gw1").exists(), "only the profile's nodes");
}

#[test]
#[cfg_attr(
    not(all(apim_pki_jdk17, apim_pki_kubectl, apim_pki_pyyaml)),
    ignore = "needs JDK 17: java, javac and keytool on PATH (apt-get install openjdk-17-jdk-headless); kubectl (apt-get install kubernetes-client); python3 with PyYAML (apt-get install python3-yaml); .ci/run installs it all"
)]
fn node_export_defaults_into_dir_kubernetes_and_kustomize_builds_it() {
    if !have_pyyaml() {
        return;
    }
    let set = ha_set();
    let r = export(&[s(set), "--node", "gw1"], &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let folder = set.join("kubernetes/gw1");
    check_node_folder(set, &folder, "gw1", false);
    let v = yaml(&folder.join("values.yaml"));
    assert_eq!(
        v["wso2"]["apim"]["configurations"]["security"]["keystores"]["tls"]["name"],
        "gw1-tls.p12"
    );
    if java::which("kubectl").is_none() {
        java::missing_tool("kubectl");
    }
    let out = Command::new("kubectl")
        .arg("kustomize")
        .arg(&folder)
        .output()
        .expect("kubectl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let built = String::from_utf8_lossy(&out.stdout);
    assert_eq!(built.matches("kind: Secret").count(), 2, "{built}");
    for name in ["gw1-keystores", "gw1-keystore-passwords"] {
        assert!(built.contains(&format!("name: {name}\n")), "{built}");
    }
}

/// Every values key WSO2's real 4.2.x chart configuration reads under `security` is set.
#[test]
#[cfg_attr(
    not(apim_pki_pyyaml),
    ignore = "needs python3 with PyYAML (apt-get install python3-yaml); .ci/run installs it all"
)]
fn values_set_every_security_key_wso2s_chart_reads() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/reference/wso2/samples/helm-4.2.x/distributed");
    if !root.is_dir() {
        assert!(!in_ci(), "{} is required in CI", root.display());
        eprintln!(
            "note: {} is absent; skipping the chart conformance check",
            root.display()
        );
        return;
    }
    if !have_pyyaml() {
        return;
    }
    let set = ha_set();
    let out = set.parent().expect("parent").join("k8s-tm");
    let r = export(&[s(set), "--node", "tm1", "--out", s(&out)], &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let values = yaml(&out.join("tm1/values.yaml"));
    let passwords = yaml(&out.join("tm1/values-passwords.yaml"));
    let prefix = ".Values.wso2.apim.configurations.security.";
    let mut seen = 0;
    for chart in [
        "control-plane/confs/instance-1",
        "gateway/confs",
        "traffic-manager/confs/instance-1",
    ] {
        let text = std::fs::read_to_string(root.join(chart).join("deployment.toml"))
            .expect("deployment.toml");
        for (i, _) in text.match_indices(prefix) {
            let rest = &text[i + prefix.len()..];
            let path: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '.')
                .collect();
            let parts: Vec<&str> = path.split('.').collect();
            let find = |doc: &Value| {
                let mut v = &doc["wso2"]["apim"]["configurations"]["security"];
                for p in &parts {
                    v = &v[*p];
                }
                !v.is_null()
            };
            // A disabled keystore's other keys are not read by the chart.
            let disabled = parts.len() == 3
                && parts[0] == "keystores"
                && values["wso2"]["apim"]["configurations"]["security"]["keystores"][parts[1]]
                    ["enabled"]
                    == false;
            assert!(
                disabled || find(&values) || find(&passwords),
                "{chart}: security.{path} is not set"
            );
            seen += 1;
        }
    }
    assert!(
        seen >= 30,
        "only {seen} security keys found in WSO2's files"
    );
}

#[test]
fn unknown_node_or_profile_exits_2_and_writes_nothing() {
    let set = ha_set();
    let out = set.parent().expect("parent").join("k8s-none");
    let r = export(&[s(set), "--node", "nope", "--out", s(&out)], &[]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("nope") && r.stderr.contains("cp1"),
        "{}",
        r.stderr
    );
    let r = export(&[s(set), "--profile", "publisher", "--out", s(&out)], &[]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("gateway-worker"), "{}", r.stderr);
    let r = export(&[s(set), "--out", s(&out)], &[]);
    assert_eq!(r.code, 2, "neither --node nor --profile: {}", r.stderr);
    assert!(!out.exists());
}

#[test]
#[cfg_attr(
    not(all(apim_pki_jdk17, apim_pki_pyyaml)),
    ignore = "needs JDK 17: java, javac and keytool on PATH (apt-get install openjdk-17-jdk-headless); python3 with PyYAML (apt-get install python3-yaml); .ci/run installs it all"
)]
fn shared_tls_with_env_passwords_and_a_missing_variable() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let init = run(&["init", "--product", "apim-4.x"], &[]);
    assert_eq!(init.code, 0, "{}", init.stderr);
    let text = init
        .stdout
        .replace("tls = \"per-node\"", "tls = \"shared\"")
        + "\n[passwords]\ntruststore = \"K8S_TEST_TRUST\"\n";
    assert!(
        text.contains("tls = \"shared\""),
        "init's [keystores] changed:\n{text}"
    );
    let topo = write_topology(tmp.path(), &text);
    let set = tmp.path().join("pki");
    let env = [("K8S_TEST_TRUST", "Trust-From-Env-1")];
    generate(&topo, &set, &env);
    let node = yaml_free_first_node(&set);
    let out = tmp.path().join("k8s");
    let r = export(&[s(&set), "--node", &node, "--out", s(&out)], &[]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("K8S_TEST_TRUST"), "{}", r.stderr);
    assert!(!out.exists(), "nothing written");
    let r = export(&[s(&set), "--node", &node, "--out", s(&out)], &env);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!r.stdout.contains("Trust-From-Env-1") && !r.stderr.contains("Trust-From-Env-1"));
    if !have_pyyaml() {
        return;
    }
    let folder = out.join(&node);
    let (_, pw) = secret(&yaml(&folder.join("passwords-secret.yaml")), &folder);
    assert_eq!(pw["truststore-password"], b"Trust-From-Env-1");
    assert!(!pw.contains_key("tls-keystore-password"));
    let v = yaml(&folder.join("values.yaml"));
    assert_eq!(
        v["wso2"]["apim"]["configurations"]["security"]["keystores"]["tls"]["enabled"],
        false
    );
    check_node_folder(&set, &folder, &node, true);
}

/// The first node's name in inventory.json.
fn yaml_free_first_node(set: &Path) -> String {
    let inv: Value =
        serde_json::from_slice(&std::fs::read(set.join("inventory.json")).expect("inventory"))
            .expect("json");
    inv["topology"]["nodes"][0]["name"]
        .as_str()
        .expect("name")
        .to_string()
}

#[test]
fn a_2_6_set_is_refused_naming_the_supported_products() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let topo = write_topology(tmp.path(), &util::cli::minimal_example());
    let set = tmp.path().join("pki");
    generate(&topo, &set, &[]);
    let node = yaml_free_first_node(&set);
    let r = export(&[s(&set), "--node", &node], &[]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("apim-2.6") && r.stderr.contains("apim-4.x"),
        "{}",
        r.stderr
    );
    assert!(!set.join("kubernetes").exists());
}
