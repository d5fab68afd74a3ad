//! Reconcile through the CLI: a second run changes nothing, a new node changes only what derives
//! from it, plan writes nothing and agrees with generate.

use crate::util;

use crate::util::cli::{
    generate, ha_example, minimal_example, plan_json, run, snapshot, write_topology,
};

#[test]
fn second_generate_changes_no_file() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let topo = write_topology(tmp.path(), &minimal_example());
    let out = tmp.path().join("out");
    generate(&topo, &out, &[]);
    let before = snapshot(&out);
    let second = generate(&topo, &out, &[]);
    assert!(second.stdout.contains("up to date"), "{}", second.stdout);
    assert_eq!(before, snapshot(&out), "a second generate changed files");
}

#[test]
fn plan_writes_nothing_and_lists_creates() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let topo = write_topology(tmp.path(), &minimal_example());
    let out = tmp.path().join("out");
    let (code, json) = plan_json(&topo, &out);
    assert_eq!(code, 0, "{json}");
    assert!(!out.exists(), "plan created the output directory");
    let actions = json["actions"].as_array().expect("actions");
    assert!(
        actions.iter().all(|a| a["action"] == "create"),
        "{actions:?}"
    );
    assert!(actions.iter().any(|a| a["path"]
        == "nodes/km/repository/resources/security/km-tls.jks"
        && a["node"] == "km"));
    assert!(actions.iter().any(|a| a["path"] == "ca/ca.key"));
}

#[test]
fn adding_an_ha_node_touches_only_what_derives_from_it() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let base = ha_example();
    let topo = write_topology(tmp.path(), &base);
    let out = tmp.path().join("out");
    generate(&topo, &out, &[]);
    let before = snapshot(&out);

    // A third gateway worker behind the existing gateway load balancer.
    let grown = format!("{base}\n[[node]]\nname = \"gw3\"\nprofile = \"gateway-worker\"\nhost = \"gw3.acme.internal\"\n");
    write_topology(tmp.path(), &grown);
    let (_, json) = plan_json(&topo, &out);
    let changed: Vec<String> = json["actions"]
        .as_array()
        .expect("actions")
        .iter()
        .filter(|a| a["action"] != "keep")
        .map(|a| {
            format!(
                "{} {}",
                a["action"].as_str().unwrap(),
                a["path"].as_str().unwrap()
            )
        })
        .collect();
    // The gateway load balancer's configurations gain gw3 as a backend.
    let lb_configs = [
        "load-balancers/gw.acme.internal/haproxy.cfg",
        "load-balancers/gw.acme.internal/nginx.conf",
    ];
    assert!(
        changed
            .iter()
            .all(|c| c.contains("nodes/gw3/")
                || lb_configs.iter().any(|l| *c == format!("update {l}"))),
        "plan wants more than gw3's files and its load balancer's configurations: {changed:?}"
    );
    assert_eq!(
        changed.len(),
        6,
        "gw3 needs primary, tls, truststore, node.toml; its load balancer two configurations: {changed:?}"
    );

    generate(&topo, &out, &[]);
    let after = snapshot(&out);
    for (path, bytes) in &before {
        if path != "inventory.json" && !lb_configs.contains(&path.as_str()) {
            assert_eq!(after.get(path), Some(bytes), "{path} changed");
        }
    }
    let new: Vec<&String> = after.keys().filter(|p| !before.contains_key(*p)).collect();
    // (history/ keeps the load balancer's previous configurations.)
    assert!(
        new.iter()
            .all(|p| p.starts_with("nodes/gw3/") || p.starts_with("history/")),
        "{new:?}"
    );
    // The new node's primary keystore is the very same file as everyone else's.
    let primary = "nodes/gw1/repository/resources/security/wso2carbon.jks";
    assert_eq!(
        after[primary],
        after["nodes/gw3/repository/resources/security/wso2carbon.jks"]
    );
}

#[test]
fn a_new_load_balancer_reissues_the_nodes_behind_it_with_the_same_keys() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let base = minimal_example();
    let topo = write_topology(tmp.path(), &base);
    let out = tmp.path().join("out");
    generate(&topo, &out, &[]);
    let grown = format!("{base}\n[[node]]\nname = \"gateway2\"\nprofile = \"gateway-worker\"\nhost = \"gw2.dev.acme.internal\"\n\n[[load_balancer]]\nhost = \"gw.lb.acme.internal\"\nfronts = \"gateway-worker\"\n");
    write_topology(tmp.path(), &grown);
    let r = generate(&topo, &out, &[]);
    assert!(r.stdout.contains("reissue"), "{}", r.stdout);
    let inspect = |file: &str| {
        let pw = util::cli::secrets(&out)["tls"].clone();
        let r = run(
            &[
                "inspect",
                out.join(file).to_str().unwrap(),
                "--password-env",
                "PW",
                "--format",
                "json",
            ],
            &[("PW", &pw)],
        );
        assert_eq!(r.code, 0, "{}", r.stderr);
        serde_json::from_str::<serde_json::Value>(&r.stdout).expect("json")
    };
    let gw = inspect("nodes/gateway/repository/resources/security/gateway-tls.jks");
    let names = gw["entries"][0]["certificate"]["dns_names"].to_string();
    assert!(names.contains("gw.lb.acme.internal"), "{names}");
    assert!(out
        .join("load-balancers/gw.lb.acme.internal/haproxy.pem")
        .exists());
}

#[test]
fn every_init_example_generates_and_verifies() {
    for product in ["apim-2.6", "apim-3.2", "apim-4.x", "apim-4.5"] {
        for ha in [false, true] {
            let tmp = tempfile::tempdir().expect("tempdir");
            let mut args = vec!["init", "--product", product];
            if ha {
                args.push("--ha");
            }
            let init = run(&args, &[]);
            assert_eq!(init.code, 0, "init {args:?}: {}", init.stderr);
            assert!(
                init.stdout.contains(product),
                "init {args:?} names its product"
            );
            let topo = write_topology(tmp.path(), &init.stdout);
            let out = tmp.path().join("out");
            generate(&topo, &out, &[]);
            let v = run(&["verify", out.to_str().unwrap()], &[]);
            assert_eq!(v.code, 0, "verify after init {args:?}: {}", v.stdout);
        }
    }
}

#[test]
fn apim_4x_nodes_get_a_deployment_toml_that_names_their_keystores_and_peers() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let init = run(&["init", "--product", "apim-4.x", "--ha"], &[]);
    // Name the password variables, so deployment.toml must refer to them, never hold them.
    let text = format!(
        "{}\n[passwords]\nprimary = \"APIM_PRIMARY_PASSWORD\"\ntls = \"APIM_TLS_PASSWORD\"\ntruststore = \"APIM_TRUSTSTORE_PASSWORD\"\n",
        init.stdout.replace("# [passwords]", "# (passwords below)")
    );
    let topo = write_topology(tmp.path(), &text);
    let out = tmp.path().join("out");
    let env = [
        ("APIM_PRIMARY_PASSWORD", "primary-from-env-1"),
        ("APIM_TLS_PASSWORD", "tls-from-env-22"),
        ("APIM_TRUSTSTORE_PASSWORD", "trust-from-env-3"),
    ];
    generate(&topo, &out, &env);
    let file = out.join("nodes/gw1/repository/conf/deployment.toml");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&file)
            .expect("deployment.toml")
            .permissions(),
    ) & 0o777;
    assert_eq!(mode, 0o600);
    let doc: toml::Table = std::fs::read_to_string(&file)
        .expect("read")
        .parse()
        .expect("valid TOML");
    let tls = &doc["keystore"]["tls"];
    assert_eq!(tls["file_name"].as_str(), Some("gw1-tls.p12"));
    assert_eq!(tls["alias"].as_str(), Some("gw1"));
    assert_eq!(tls["password"].as_str(), Some("$env{APIM_TLS_PASSWORD}"));
    assert_eq!(
        doc["truststore"]["file_name"].as_str(),
        Some("client-truststore.p12")
    );
    assert_eq!(
        doc["server"]["hostname"].as_str(),
        Some("gw.acme.internal"),
        "the gateway's load balancer"
    );
    assert!(
        doc["apim"]["key_manager"]["service_url"]
            .as_str()
            .is_some_and(|u| u.starts_with("https://cp.acme.internal:9443/")),
        "{doc:#?}"
    );
    assert!(
        !doc.contains_key("secrets"),
        "no [secrets] when every password comes from the environment"
    );
    for (path, bytes) in snapshot(&out) {
        for (_, pw) in env {
            assert!(
                !String::from_utf8_lossy(&bytes).contains(pw),
                "{path} holds a password from the environment"
            );
        }
    }
    let v = run(&["verify", out.to_str().unwrap()], &env);
    assert_eq!(v.code, 0, "{}", v.stdout);
}
