//! The CA in an OpenBao or HashiCorp Vault PKI secrets engine (docs/openbao.md): apim-pki makes
//! each key and a CSR locally, the engine signs the CSR (`sign/:role`, or
//! `issuer/:ref/sign/:role`), and the CA chain comes from the engine's issuer. Private keys never
//! leave this process; the token is read from the environment variable the topology names and
//! goes only into the `X-Vault-Token` header (never into a message).
//!
//! reconcile's issue phase signs through [`Engine::sign`] instead of the local CA when
//! `[pki.ca]` names a backend.

mod http;

use std::net::IpAddr;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use serde_json::{json, Value};
use time::OffsetDateTime;
use zeroize::Zeroizing;

use super::info::CertParseError;
use super::{Ca, CertInfo, CertSpec, Key};
use crate::input::excerpt;
use crate::topology::EngineSettings;
use http::{Http, HttpError};

/// How long one request to the engine may take, connection and TLS included, unless
/// [`TIMEOUT_ENV`] says otherwise.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The environment variable that sets the per-request deadline in seconds (1 to 600).
pub(crate) const TIMEOUT_ENV: &str = "APIM_PKI_ENGINE_TIMEOUT";

/// The per-request deadline: [`TIMEOUT_ENV`] when set, else [`REQUEST_TIMEOUT`].
fn request_timeout() -> Result<Duration, EngineFault> {
    match std::env::var(TIMEOUT_ENV) {
        Err(_) => Ok(REQUEST_TIMEOUT),
        Ok(v) => match v.trim().parse::<u64>() {
            Ok(n @ 1..=600) => Ok(Duration::from_secs(n)),
            _ => Err(EngineFault::BadTimeout(crate::input::excerpt(&v))),
        },
    }
}

/// What went wrong with the engine: the engine, the request, and the fault.
#[derive(Debug, thiserror::Error)]
#[error("{engine}: {request}: {fault}")]
pub struct EngineError {
    /// `OpenBao at https://bao.example:8200`.
    pub engine: String,
    /// `POST /v1/pki/sign/apim (km1.acme.internal)`, or what was being prepared.
    pub request: String,
    pub fault: EngineFault,
}

/// Why the engine did not sign.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EngineFault {
    #[error("the token variable {0} is not set (or empty)")]
    NoToken(String),
    #[error("the token in {0} holds characters a token cannot have")]
    BadToken(String),
    #[error("{TIMEOUT_ENV} = `{0}` is not a number of seconds from 1 to 600")]
    BadTimeout(String),
    #[error("cannot read ca_bundle {path}: {reason}")]
    CaBundle { path: String, reason: String },
    #[error("cannot connect: {0}")]
    Connect(String),
    #[error("no answer within {0} seconds")]
    Timeout(u64),
    #[error("TLS failed: {0}")]
    Tls(String),
    #[error("the connection failed: {0}")]
    Protocol(String),
    #[error("permission denied (HTTP 403): the token in {variable} is wrong, expired, or its policy does not allow this path")]
    Denied { variable: String },
    #[error("refused (HTTP {status}): {message}")]
    Refused { status: u16, message: String },
    #[error("not found (HTTP 404): {message}")]
    NotFound { message: String },
    #[error("the engine failed (HTTP {status}): {message}")]
    Server { status: u16, message: String },
    #[error("unexpected answer: {0}")]
    BadResponse(String),
    #[error("the certificate it signed is not the one asked for: {0}")]
    Mismatch(#[source] Box<IssuedMismatch>),
}

/// How the certificate the engine signed differs from the one asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IssuedMismatch {
    /// It is not a certificate apim-pki can read.
    #[error("{0}")]
    Unreadable(#[source] CertParseError),
    /// It certifies another key.
    #[error("it certifies another public key than the CSR's")]
    OtherKey,
    /// Another CA signed it.
    #[error("it was signed by `{issuer}`, not by the issuer's CA `{ca}`")]
    OtherIssuer {
        /// Its issuer.
        issuer: String,
        /// The issuer's CA subject.
        ca: String,
    },
    /// Its SANs differ (each list lower-cased and sorted).
    #[error("its names are DNS {have_dns:?} IP {have_ip:?}, the CSR asked for DNS {want_dns:?} IP {want_ip:?}")]
    Names {
        /// Its DNS names.
        have_dns: Vec<String>,
        /// Its IP addresses.
        have_ip: Vec<IpAddr>,
        /// The DNS names asked for.
        want_dns: Vec<String>,
        /// The IP addresses asked for.
        want_ip: Vec<IpAddr>,
    },
    /// Its CN differs.
    #[error("its subject is `{subject}`, not CN={common_name}")]
    CommonName {
        /// Its subject.
        subject: String,
        /// The CN asked for.
        common_name: String,
    },
    /// A subject attribute the role sets (O, OU, C) differs from [pki]'s.
    #[error("its subject has {attr}={} where [pki] asks for {attr}={}: the role sets the subject's {attr} (set `{role_key}` on the role to match, or change [pki])", have.as_deref().unwrap_or("(none)"), want.as_deref().unwrap_or("(none)"))]
    SubjectAttribute {
        /// `O`, `OU` or `C`.
        attr: &'static str,
        /// The role's setting for it.
        role_key: &'static str,
        /// Its value in the certificate.
        have: Option<String>,
        /// [pki]'s value.
        want: Option<String>,
    },
    /// It expires well before the validity asked for (and before the CA does).
    #[error("it expires {not_after} instead of in {days} days: the role's max_ttl or the mount's max lease TTL caps it (raise them, e.g. `bao secrets tune -max-lease-ttl={}h MOUNT` and max_ttl on the role, or lower pki.validity_days)", u64::from(*days) * 24 + 24)]
    ShortValidity {
        /// The day it expires.
        not_after: time::Date,
        /// The validity asked for, in days.
        days: u32,
    },
}

impl EngineError {
    /// What the user can do about it.
    pub fn hint(&self) -> String {
        let nothing = "nothing was written; run the command again once fixed";
        match &self.fault {
            EngineFault::NoToken(v) | EngineFault::BadToken(v) => format!("export {v} with a token whose policy allows `update` on the role's sign path ({nothing})"),
            EngineFault::BadTimeout(_) => format!("set {TIMEOUT_ENV} to a whole number of seconds, or unset it for 30 ({nothing})"),
            EngineFault::CaBundle { .. } => format!("point [pki.ca] ca_bundle at the PEM of the CA that signed the engine's TLS certificate ({nothing})"),
            EngineFault::Connect(_) | EngineFault::Timeout(_) | EngineFault::Protocol(_) => format!("check that the engine runs and that [pki.ca] address reaches it ({nothing})"),
            EngineFault::Tls(_) => format!("the engine's TLS certificate must be trusted: set [pki.ca] ca_bundle to its CA ({nothing})"),
            EngineFault::Denied { variable } => format!("check the token in {variable} (`bao token lookup`) and that its policy allows `update` on the sign path ({nothing})"),
            EngineFault::Refused { .. } => format!("change the role (`bao write MOUNT/roles/ROLE allowed_domains=... allow_subdomains=true ...`) or the topology's names ({nothing})"),
            EngineFault::NotFound { .. } => format!("check [pki.ca] mount, role and issuer against `bao secrets list` and `bao list MOUNT/roles` ({nothing})"),
            EngineFault::Server { .. } | EngineFault::BadResponse(_) => format!("check the engine's logs ({nothing})"),
            EngineFault::Mismatch(_) => format!("set the role so that it signs what the CSR asks: docs/openbao.md lists the role's settings ({nothing})"),
        }
    }
}

/// A connection to the engine (settings, token, HTTP client).
pub(crate) struct Engine {
    settings: EngineSettings,
    http: Http,
    token: Zeroizing<String>,
    name: String,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Engine({}, mount {})", self.name, self.settings.mount)
    }
}

impl Engine {
    /// Reads the token and `ca_bundle`; no request yet.
    pub(crate) fn connect(settings: &EngineSettings) -> Result<Engine, EngineError> {
        let name = format!(
            "{} at {}",
            settings.backend.product_name(),
            settings.address
        );
        let fail = |fault| EngineError {
            engine: name.clone(),
            request: "preparing the requests".into(),
            fault,
        };
        let variable = settings.token_env.clone();
        let token = Zeroizing::new(
            std::env::var(&variable)
                .ok()
                .filter(|t| !t.trim().is_empty())
                .ok_or_else(|| fail(EngineFault::NoToken(variable.clone())))?,
        );
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(fail(EngineFault::BadToken(variable)));
        }
        let mut roots = Vec::new();
        if let Some(path) = &settings.ca_bundle {
            let bundle_fault = |reason: String| {
                fail(EngineFault::CaBundle {
                    path: path.display().to_string(),
                    reason,
                })
            };
            let bytes = crate::input::read(path, crate::input::Limit::Certificate)
                .map_err(|e| bundle_fault(e.to_string()))?;
            roots = CertificateDer::pem_slice_iter(&bytes)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| bundle_fault(format!("not PEM certificates ({e})")))?;
            if roots.is_empty() {
                return Err(bundle_fault("no CERTIFICATE block found".into()));
            }
        }
        let timeout = request_timeout().map_err(fail)?;
        let http = Http::new(&settings.address, roots, timeout)
            .map_err(|e| fail(EngineFault::Tls(e.to_string())))?;
        Ok(Engine {
            settings: settings.clone(),
            http,
            token: token.trim().to_string().into(),
            name,
        })
    }

    /// `OpenBao at https://…`.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// The issuing CA and the chain above it (DER, issuing CA first), from the issuer's
    /// endpoint (`issuer/:ref/json`; `default` without `issuer`).
    pub(crate) fn ca_chain(&self) -> Result<Vec<Vec<u8>>, EngineError> {
        let reference = self.settings.issuer.as_deref().unwrap_or("default");
        let path = format!("/v1/{}/issuer/{reference}/json", self.settings.mount);
        let request = format!("GET {path} (the issuer's CA chain)");
        let data = self.call("GET", &path, None, &request)?;
        let bad = |why: &str| self.error(&request, EngineFault::BadResponse(why.into()));
        let issuing = pem_certs(data["certificate"].as_str().unwrap_or_default())
            .into_iter()
            .next()
            .ok_or_else(|| bad("no `certificate` in the issuer's answer"))?;
        let mut chain = vec![issuing];
        for pem in data["ca_chain"].as_array().into_iter().flatten() {
            for der in pem_certs(pem.as_str().unwrap_or_default()) {
                if !chain.contains(&der) {
                    chain.push(der);
                }
            }
        }
        let info = CertInfo::from_der(&chain[0]).map_err(|e| bad(&e.to_string()))?;
        if !info.is_ca {
            return Err(bad("the issuer's certificate is not a CA certificate"));
        }
        Ok(chain)
    }

    /// Has the engine sign a CSR for `key` with `spec`'s names; returns the chain, leaf first,
    /// then `ca`'s chain. The leaf is checked against what was asked before it is accepted.
    pub(crate) fn sign(
        &self,
        spec: &CertSpec,
        key: &Key,
        ca: &Ca,
    ) -> Result<Vec<Vec<u8>>, EngineError> {
        let s = &self.settings;
        let path = match &s.issuer {
            Some(i) => format!("/v1/{}/issuer/{i}/sign/{}", s.mount, s.role),
            None => format!("/v1/{}/sign/{}", s.mount, s.role),
        };
        let request = format!("POST {path} ({})", spec.subject.common_name);
        let fail = |fault| self.error(&request, fault);
        let csr = super::csr_pem(spec, key).map_err(|e| {
            fail(EngineFault::BadResponse(format!(
                "cannot make the CSR: {e}"
            )))
        })?;
        let join = |items: Vec<String>| items.join(",");
        let body = json!({
            "csr": csr,
            "common_name": spec.subject.common_name,
            "alt_names": join(spec.dns_names.clone()),
            "ip_sans": join(spec.ip_addresses.iter().map(|i| i.to_string()).collect()),
            "ttl": format!("{}h", u64::from(spec.validity_days) * 24),
            "exclude_cn_from_sans": true,
            "format": "pem",
        });
        let data = self.call("POST", &path, Some(body.to_string().as_bytes()), &request)?;
        let leaf = pem_certs(data["certificate"].as_str().unwrap_or_default())
            .into_iter()
            .next()
            .ok_or_else(|| {
                fail(EngineFault::BadResponse(
                    "no `certificate` in the answer".into(),
                ))
            })?;
        check_issued(&leaf, spec, key, ca)
            .map_err(|why| fail(EngineFault::Mismatch(Box::new(why))))?;
        Ok(std::iter::once(leaf)
            .chain(std::iter::once(ca.cert_der().to_vec()))
            .chain(ca.parents().iter().cloned())
            .collect())
    }

    fn error(&self, request: &str, fault: EngineFault) -> EngineError {
        EngineError {
            engine: self.name.clone(),
            request: request.into(),
            fault,
        }
    }

    /// One request; the answer's `data` on 2xx, else the fault with the engine's `errors`.
    fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
        request: &str,
    ) -> Result<Value, EngineError> {
        let fail = |fault| self.error(request, fault);
        let response = self
            .http
            .send(method, path, &self.token, body)
            .map_err(|e| {
                fail(match e {
                    HttpError::Connect(m) => EngineFault::Connect(m),
                    HttpError::Timeout => EngineFault::Timeout(self.http.timeout().as_secs()),
                    HttpError::Tls(m) => EngineFault::Tls(m),
                    HttpError::Protocol(m) => EngineFault::Protocol(m),
                })
            })?;
        let value: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
        let message = self.redact(&engine_errors(&value, &response.body));
        match response.status {
            200..=299 => match value.get("data") {
                Some(data) if data.is_object() => Ok(data.clone()),
                _ => Err(fail(EngineFault::BadResponse(
                    "no `data` object in the answer".into(),
                ))),
            },
            403 => Err(fail(EngineFault::Denied {
                variable: self.settings.token_env.clone(),
            })),
            404 => Err(fail(EngineFault::NotFound { message })),
            status @ 400..=499 => Err(fail(EngineFault::Refused { status, message })),
            status => Err(fail(EngineFault::Server { status, message })),
        }
    }

    /// Removes the token from text the engine sent back (it never should contain it).
    fn redact(&self, text: &str) -> String {
        if self.token.is_empty() {
            return text.to_string();
        }
        text.replace(self.token.as_str(), "[token]")
    }
}

/// The engine's `errors` list (or a short excerpt of the body), as one line.
fn engine_errors(value: &Value, body: &[u8]) -> String {
    let listed: Vec<String> = value["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e.as_str())
        .map(|e| e.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    let text = if listed.is_empty() {
        String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned()
    } else {
        listed.join("; ")
    };
    let text = excerpt(text.trim());
    if text.is_empty() {
        "no message".into()
    } else {
        text
    }
}

fn pem_certs(text: &str) -> Vec<Vec<u8>> {
    CertificateDer::pem_slice_iter(text.as_bytes())
        .filter_map(Result::ok)
        .map(|c| c.to_vec())
        .collect()
}

/// The engine signed `key` with exactly `spec`'s names and subject, under `ca`, for about the
/// validity asked (or up to the CA's end); else why not.
fn check_issued(leaf: &[u8], spec: &CertSpec, key: &Key, ca: &Ca) -> Result<(), IssuedMismatch> {
    let info = CertInfo::from_der(leaf).map_err(IssuedMismatch::Unreadable)?;
    if info.public_key_der != key.public_key_der() {
        return Err(IssuedMismatch::OtherKey);
    }
    if !super::info::is_issued_by(leaf, ca.cert_der()) {
        return Err(IssuedMismatch::OtherIssuer {
            issuer: info.issuer,
            ca: ca.info().subject.clone(),
        });
    }
    if let Some(diff) = names_differ(spec, &info) {
        return Err(diff);
    }
    let wanted = OffsetDateTime::now_utc() + time::Duration::days(i64::from(spec.validity_days));
    let slack = time::Duration::days(1);
    if info.not_after < wanted - slack && info.not_after < ca.info().not_after - slack {
        return Err(IssuedMismatch::ShortValidity {
            not_after: info.not_after.date(),
            days: spec.validity_days,
        });
    }
    Ok(())
}

fn names_differ(spec: &CertSpec, info: &CertInfo) -> Option<IssuedMismatch> {
    let mut want_dns: Vec<String> = spec
        .dns_names
        .iter()
        .map(|d| d.to_ascii_lowercase())
        .collect();
    let mut have_dns: Vec<String> = info
        .dns_names
        .iter()
        .map(|d| d.to_ascii_lowercase())
        .collect();
    want_dns.sort();
    have_dns.sort();
    let mut want_ip = spec.ip_addresses.clone();
    let mut have_ip = info.ip_addresses.clone();
    want_ip.sort();
    have_ip.sort();
    if want_dns != have_dns || want_ip != have_ip {
        return Some(IssuedMismatch::Names {
            have_dns,
            have_ip,
            want_dns,
            want_ip,
        });
    }
    let s = &spec.subject;
    if info.common_names.first() != Some(&s.common_name) {
        return Some(IssuedMismatch::CommonName {
            subject: info.subject.clone(),
            common_name: s.common_name.clone(),
        });
    }
    for (attr, role_key, have, want) in [
        ("O", "organization", &info.organization, &s.organization),
        (
            "OU",
            "ou",
            &info.organizational_unit,
            &s.organizational_unit,
        ),
        ("C", "country", &info.country, &s.country),
    ] {
        if have != want {
            return Some(IssuedMismatch::SubjectAttribute {
                attr,
                role_key,
                have: have.clone(),
                want: want.clone(),
            });
        }
    }
    None
}

/// A serial as the engine lists it (`LIST MOUNT/certs`): lower-case hex pairs joined by `:`.
pub fn engine_serial(hex: &str) -> String {
    let hex = if hex.len() % 2 == 1 {
        format!("0{hex}")
    } else {
        hex.to_string()
    };
    hex.as_bytes()
        .chunks(2)
        .map(|p| String::from_utf8_lossy(p).to_ascii_lowercase())
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(cn: &str, org: Option<&str>, days: u32) -> CertSpec {
        CertSpec {
            subject: crate::pki::Subject {
                common_name: cn.into(),
                organization: org.map(str::to_string),
                organizational_unit: None,
                country: None,
            },
            dns_names: vec![cn.into(), "localhost".into()],
            ip_addresses: vec!["127.0.0.1".parse().unwrap()],
            role: crate::pki::Role::Tls,
            validity_days: days,
        }
    }

    #[test]
    fn a_leaf_unlike_the_request_is_refused() {
        use crate::topology::KeyType::EcdsaP256;
        let ca = Ca::create(
            &spec("Test CA", None, 3650),
            Key::generate(EcdsaP256).unwrap(),
        )
        .unwrap();
        let key = Key::generate(EcdsaP256).unwrap();
        let asked = spec("a.example", Some("Acme"), 30);
        let leaf = ca.issue(&asked, &key).unwrap();
        check_issued(&leaf, &asked, &key, &ca).unwrap();

        let other = Key::generate(EcdsaP256).unwrap();
        let e = check_issued(&leaf, &asked, &other, &ca)
            .unwrap_err()
            .to_string();
        assert!(e.contains("another public key"), "{e}");
        let mut more = asked.clone();
        more.dns_names.push("b.example".into());
        let e = check_issued(&leaf, &more, &key, &ca)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("its names are") && e.contains("b.example"),
            "{e}"
        );
        let e = check_issued(&leaf, &spec("a.example", None, 30), &key, &ca)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("its subject has O=Acme where [pki] asks for O=(none)"),
            "{e}"
        );
        let e = check_issued(&leaf, &spec("a.example", Some("Acme"), 397), &key, &ca)
            .unwrap_err()
            .to_string();
        assert!(e.contains("instead of in 397 days"), "{e}");
        let stranger = Ca::create(
            &spec("Other CA", None, 3650),
            Key::generate(EcdsaP256).unwrap(),
        )
        .unwrap();
        let e = check_issued(&leaf, &asked, &key, &stranger)
            .unwrap_err()
            .to_string();
        assert!(e.contains("not by the issuer's CA"), "{e}");
    }

    #[test]
    fn serials_read_as_the_engine_lists_them() {
        assert_eq!(engine_serial("4a0b"), "4a:0b");
        assert_eq!(engine_serial("A0B"), "0a:0b");
    }

    #[test]
    fn engine_errors_are_one_line() {
        let v: Value =
            serde_json::from_str(r#"{"errors":["common name x not allowed\nby this role", "y"]}"#)
                .unwrap();
        assert_eq!(
            engine_errors(&v, b""),
            "common name x not allowed by this role; y"
        );
        assert_eq!(engine_errors(&Value::Null, b"plain text"), "plain text");
    }

    #[test]
    fn a_missing_token_names_the_variable_only() {
        let settings = EngineSettings {
            backend: crate::topology::EngineBackend::OpenBao,
            address: crate::topology::EngineAddress {
                tls: false,
                host: "127.0.0.1".into(),
                port: 1,
            },
            mount: "pki".into(),
            role: "apim".into(),
            issuer: None,
            token_env: "APIM_PKI_TEST_TOKEN_NEVER_SET".into(),
            ca_bundle: None,
        };
        let e = Engine::connect(&settings).unwrap_err();
        assert_eq!(
            e.fault,
            EngineFault::NoToken("APIM_PKI_TEST_TOKEN_NEVER_SET".into())
        );
        assert!(
            e.to_string().starts_with("OpenBao at http://127.0.0.1:1: "),
            "{e}"
        );
        assert!(e.hint().contains("export APIM_PKI_TEST_TOKEN_NEVER_SET"));
    }
}
