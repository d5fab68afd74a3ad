//! Interop of `apim_pki::jks` with the JDK's `keytool` (and OpenSSL):
//! keytool writes and we read; we write and keytool reads and decrypts.

use apim_pki::jks::{is_jks, JksEntry, JksError, JksKeyStore, ProtectedKey};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use std::path::Path;
use std::process::{Command, Stdio};

/// Runs `program` in `dir` with a UTF-8 locale (keytool reads password files in the
/// platform charset) and returns stdout + stderr, failing the test on a non-zero exit.
fn run(dir: &Path, program: &str, args: &[&str]) -> String {
    let mut cmd = Command::new(program);
    if program == "keytool" {
        cmd.args(["-J-Duser.language=en", "-J-Duser.country=US"]);
    }
    let out = cmd
        .args(args)
        .current_dir(dir)
        .env("LC_ALL", "C.UTF-8")
        .env("LANG", "C.UTF-8")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{program} {args:?} failed:\n{text}");
    text
}

/// Writes a password file (no newline) in `dir` and returns its file name.
fn secret<'a>(dir: &Path, name: &'a str, password: &str) -> &'a str {
    std::fs::write(dir.join(name), password).unwrap();
    name
}

fn now_ms() -> u64 {
    let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    since_epoch.unwrap().as_millis() as u64
}

/// The decrypted key must be a PKCS#8 DER SEQUENCE whose public key is the certificate's.
fn assert_key_matches_cert(pkcs8: &[u8], cert_der: &[u8]) {
    assert_eq!(
        pkcs8.first(),
        Some(&0x30),
        "PKCS#8 must start with a DER SEQUENCE"
    );
    let key = KeyPair::try_from(pkcs8).expect("decrypted PKCS#8 parses");
    let (_, cert) = x509_parser::parse_x509_certificate(cert_der).expect("certificate parses");
    assert_eq!(
        key.public_key_raw(),
        &cert.public_key().subject_public_key.data[..]
    );
}

fn spki_der(cert_der: &[u8]) -> Vec<u8> {
    let (_, cert) = x509_parser::parse_x509_certificate(cert_der).unwrap();
    cert.public_key().raw.to_vec()
}

fn private_key<'a>(ks: &'a JksKeyStore, alias: &str) -> (&'a ProtectedKey, &'a [Vec<u8>]) {
    match ks.get(alias) {
        Some(JksEntry::PrivateKey { key, chain, .. }) => (key, chain),
        other => panic!("{alias}: expected a private key entry, got {other:?}"),
    }
}

#[test]
#[cfg_attr(
    not(apim_pki_jdk17),
    ignore = "needs JDK 17: java, javac and keytool on PATH (apt-get install openjdk-17-jdk-headless); .ci/run installs it all"
)]
fn keytool_writes_we_read() {
    if !crate::util::java::require("keytool") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let sp = secret(d, "store.pw", "store-pass-1");
    let kp_rsa = secret(d, "rsa.pw", "rsa-key-pass");
    let kp_ec = secret(d, "ec.pw", "ec-key-pass");
    let kt = |args: &[&str]| run(d, "keytool", args);
    let jks = [
        "-storetype",
        "JKS",
        "-keystore",
        "ks.jks",
        "-storepass:file",
        sp,
    ];
    let ca = [
        "-storetype",
        "JKS",
        "-keystore",
        "ca.jks",
        "-storepass:file",
        sp,
        "-keypass:file",
        sp,
    ];
    let rsa = [&jks[..], &["-alias", "RSA-Key", "-keypass:file", kp_rsa]].concat();

    let ec = ["-keyalg", "EC", "-groupname", "secp256r1"];
    let ca_dn = ["-dname", "CN=Interop CA", "-ext", "bc:c"];
    kt(&[&ca[..], &["-genkeypair", "-alias", "ca"], &ec, &ca_dn].concat());
    let rsa_dn = ["-dname", "CN=rsa.example"];
    kt(&[
        &rsa[..],
        &["-genkeypair", "-keyalg", "RSA", "-keysize", "2048"],
        &rsa_dn,
    ]
    .concat());
    let ec_dn = ["-dname", "CN=ec.example"];
    kt(&[
        &jks[..],
        &["-genkeypair", "-alias", "ec-key", "-keypass:file", kp_ec],
        &ec,
        &ec_dn,
    ]
    .concat());
    kt(&[&rsa[..], &["-certreq", "-file", "rsa.csr"]].concat());
    kt(&[
        &ca[..],
        &[
            "-gencert", "-alias", "ca", "-infile", "rsa.csr", "-outfile", "rsa.pem", "-rfc",
        ],
    ]
    .concat());
    kt(&[&ca[..], &["-exportcert", "-alias", "ca", "-file", "ca.der"]].concat());
    kt(&[
        &jks[..],
        &[
            "-importcert",
            "-noprompt",
            "-alias",
            "Interop-CA",
            "-file",
            "ca.der",
        ],
    ]
    .concat());
    kt(&[&rsa[..], &["-importcert", "-file", "rsa.pem"]].concat());

    let bytes = std::fs::read(d.join("ks.jks")).unwrap();
    let ca_der = std::fs::read(d.join("ca.der")).unwrap();
    assert!(is_jks(&bytes));
    let ks = JksKeyStore::from_bytes(&bytes, "store-pass-1").unwrap();
    let mut aliases: Vec<_> = ks.entries.iter().map(JksEntry::alias).collect();
    aliases.sort_unstable();
    assert_eq!(aliases, ["ec-key", "interop-ca", "rsa-key"]);

    let (key, chain) = private_key(&ks, "rsa-key");
    assert_eq!(chain.len(), 2);
    assert_eq!(chain[1], ca_der);
    assert_key_matches_cert(&key.decrypt("rsa-key-pass").unwrap(), &chain[0]);
    assert!(matches!(
        key.decrypt("store-pass-1"),
        Err(JksError::WrongKeyPassword)
    ));

    let (key, chain) = private_key(&ks, "EC-KEY");
    assert_eq!(chain.len(), 1);
    assert_key_matches_cert(&key.decrypt("ec-key-pass").unwrap(), &chain[0]);

    assert!(
        matches!(ks.get("interop-ca"), Some(JksEntry::TrustedCert { cert, .. }) if *cert == ca_der)
    );
    assert_eq!(
        ks.to_bytes("store-pass-1").unwrap(),
        bytes,
        "re-encoding is byte-identical"
    );
    assert!(matches!(
        JksKeyStore::from_bytes(&bytes, "store-pass-2"),
        Err(JksError::WrongPassword)
    ));

    // Non-ASCII store and key passwords.
    let sp = secret(d, "store-u.pw", "pässwörd-ü");
    let kp = secret(d, "key-u.pw", "këy-pässwörd");
    kt(&[
        "-genkeypair",
        "-alias",
        "ec",
        "-keyalg",
        "EC",
        "-groupname",
        "secp256r1",
        "-dname",
        "CN=ü",
        "-storetype",
        "JKS",
        "-keystore",
        "u.jks",
        "-storepass:file",
        sp,
        "-keypass:file",
        kp,
    ]);
    let bytes = std::fs::read(d.join("u.jks")).unwrap();
    assert!(matches!(
        JksKeyStore::from_bytes(&bytes, "passwort-u"),
        Err(JksError::WrongPassword)
    ));
    let ks = JksKeyStore::from_bytes(&bytes, "pässwörd-ü").unwrap();
    let (key, chain) = private_key(&ks, "ec");
    assert_key_matches_cert(&key.decrypt("këy-pässwörd").unwrap(), &chain[0]);
}

struct Leaf {
    alias: &'static str,
    key_password: &'static str,
    pkcs8: Vec<u8>,
    chain: Vec<Vec<u8>>,
}

fn make_chain() -> (Vec<u8>, Vec<Leaf>) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "Interop Test CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_der = ca_params.self_signed(&ca_key).unwrap().der().to_vec();
    let issuer = Issuer::new(ca_params, &ca_key);
    let leaf = |alias, key_password, key: KeyPair| {
        let mut params = CertificateParams::new(vec![format!("{alias}.example")]).unwrap();
        params.distinguished_name.push(DnType::CommonName, alias);
        let cert = params.signed_by(&key, &issuer).unwrap().der().to_vec();
        Leaf {
            alias,
            key_password,
            pkcs8: key.serialize_der(),
            chain: vec![cert, ca_der.clone()],
        }
    };
    let rsa = KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
    let ec = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let leaves = vec![
        leaf("RSA-Leaf", "key-pass-rsa", rsa),
        leaf("ec-leaf", "këy-pässwörd-ec", ec),
    ];
    (ca_der, leaves)
}

#[test]
#[cfg_attr(
    not(all(apim_pki_jdk17, apim_pki_openssl)),
    ignore = "needs JDK 17: java, javac and keytool on PATH (apt-get install openjdk-17-jdk-headless); openssl (apt-get install openssl); .ci/run installs it all"
)]
fn we_write_keytool_reads() {
    if !crate::util::java::require("keytool") || !crate::util::java::require("openssl") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let (ca_der, leaves) = make_chain();
    let mut ks = JksKeyStore::new();
    for l in &leaves {
        ks.add_private_key(l.alias, now_ms(), &l.pkcs8, l.key_password, l.chain.clone())
            .unwrap();
    }
    ks.add_trusted_cert("Trusted-CA", now_ms(), ca_der.clone());
    let p12_pw = secret(d, "p12.pw", "p12-pass");

    for (i, store_password) in ["store-pass-1", "pässwörd-ü"].into_iter().enumerate() {
        let file = format!("ours-{i}.jks");
        let sp = secret(d, "store.pw", store_password);
        std::fs::write(d.join(&file), ks.to_bytes(store_password).unwrap()).unwrap();
        let store = ["-keystore", &file, "-storepass:file", sp];

        let listing = run(d, "keytool", &[&["-list", "-v"], &store[..]].concat());
        for needle in [
            "Keystore type: JKS",
            "Your keystore contains 3 entries",
            "Alias name: rsa-leaf",
            "Alias name: ec-leaf",
            "Alias name: trusted-ca",
            "Entry type: trustedCertEntry",
        ] {
            assert!(
                listing.contains(needle),
                "missing {needle:?} in:\n{listing}"
            );
        }
        assert_eq!(
            listing.matches("Entry type: PrivateKeyEntry").count(),
            2,
            "{listing}"
        );
        assert_eq!(
            listing.matches("Certificate chain length: 2").count(),
            2,
            "{listing}"
        );

        let exported = format!("rsa-{i}.der");
        run(
            d,
            "keytool",
            &[
                &["-exportcert", "-alias", "rsa-leaf", "-file", &exported],
                &store[..],
            ]
            .concat(),
        );
        assert_eq!(
            std::fs::read(d.join(&exported)).unwrap(),
            leaves[0].chain[0]
        );

        // Converting to PKCS#12 makes keytool decrypt our protected key.
        for l in &leaves {
            let alias = l.alias.to_lowercase();
            let kp = secret(d, "key.pw", l.key_password);
            let p12 = format!("{alias}-{i}.p12");
            run(
                d,
                "keytool",
                &[
                    "-importkeystore",
                    "-noprompt",
                    "-srckeystore",
                    &file,
                    "-srcstoretype",
                    "JKS",
                    "-srcstorepass:file",
                    sp,
                    "-srcalias",
                    &alias,
                    "-srckeypass:file",
                    kp,
                    "-destkeystore",
                    &p12,
                    "-deststoretype",
                    "PKCS12",
                    "-deststorepass:file",
                    p12_pw,
                ],
            );
            let pem = format!("{alias}-{i}.pem");
            let passin = format!("file:{p12_pw}");
            run(
                d,
                "openssl",
                &[
                    "pkcs12", "-in", &p12, "-nodes", "-passin", &passin, "-out", &pem,
                ],
            );
            let text = std::fs::read_to_string(d.join(&pem)).unwrap();
            assert!(text.contains("-----BEGIN PRIVATE KEY-----"), "{text}");
            let spki = format!("{alias}-{i}.spki");
            run(
                d,
                "openssl",
                &[
                    "pkey", "-in", &pem, "-pubout", "-outform", "DER", "-out", &spki,
                ],
            );
            assert_eq!(
                std::fs::read(d.join(&spki)).unwrap(),
                spki_der(&l.chain[0]),
                "{alias}"
            );
        }
    }
}
