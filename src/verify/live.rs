//! Live probe: connect to TLS endpoints and record the certificate chain each one serves. Accepts any certificate (the caller compares it with the set); never sends application data.
//!
//! Each probe is one TCP connection and one TLS handshake (TLS 1.2 or 1.3, no session
//! resumption, so the chain is always the one served on that connection). The handshake
//! signature is still checked against the served leaf certificate, so a server that presents
//! a certificate without holding its private key fails with [`ProbeError::Handshake`].
//! After the handshake the probe sends `close_notify` and closes the connection.

use std::io::{ErrorKind, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::Resumption;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, SignatureScheme};

/// One TLS endpoint to probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Host name for SNI and reporting: a DNS name or an IP literal (IPv6 with or without
    /// brackets). IP literals are sent without SNI.
    pub name: String,
    /// Port, for reporting (the connection goes to `connect_to`).
    pub port: u16,
    /// Where to actually connect (after `--connect` overrides or DNS resolution by the caller).
    pub connect_to: SocketAddr,
}

/// Why a probe did not yield a certificate chain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProbeError {
    /// The TCP connection could not be made (refused, unreachable, ...).
    #[error("cannot connect: {0}")]
    Connect(String),
    /// The connection and handshake did not complete within the timeout.
    #[error("timed out before the TLS handshake completed")]
    Timeout,
    /// The TLS handshake failed (alert, protocol error, bad handshake signature, the server
    /// closed the connection, ...).
    #[error("TLS handshake failed: {0}")]
    Handshake(String),
}

/// The outcome of probing `endpoints[endpoint_index]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// Index into the slice given to [`probe_all`].
    pub endpoint_index: usize,
    /// The DER certificate chain as served, leaf first, or why there is none.
    pub result: Result<Vec<Vec<u8>>, ProbeError>,
}

/// Probes every endpoint: at most `max_concurrent` (at least 1) connections are open at once,
/// and each endpoint's probe (connect and handshake) finishes within `timeout`. Results are in
/// endpoint order, one per endpoint.
pub fn probe_all(endpoints: &[Endpoint], timeout: Duration, max_concurrent: usize) -> Vec<Probe> {
    if endpoints.is_empty() {
        return Vec::new();
    }
    let config = match client_config() {
        Ok(config) => config,
        Err(e) => {
            let err = ProbeError::Handshake(format!("cannot set up TLS: {e}"));
            return (0..endpoints.len())
                .map(|endpoint_index| Probe {
                    endpoint_index,
                    result: Err(err.clone()),
                })
                .collect();
        }
    };

    let workers = max_concurrent.max(1).min(endpoints.len());
    let next = AtomicUsize::new(0);
    let mut slots: Vec<Option<Result<Vec<Vec<u8>>, ProbeError>>> =
        (0..endpoints.len()).map(|_| None).collect();

    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(endpoint) = endpoints.get(i) else {
                            break;
                        };
                        done.push((i, probe_one(&config, endpoint, timeout)));
                    }
                    done
                })
            })
            .collect();
        for handle in handles {
            match handle.join() {
                Ok(done) => {
                    for (i, result) in done {
                        if let Some(slot) = slots.get_mut(i) {
                            *slot = Some(result);
                        }
                    }
                }
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
    });

    slots
        .into_iter()
        .enumerate()
        .map(|(endpoint_index, result)| Probe {
            endpoint_index,
            result: result.unwrap_or_else(|| {
                Err(ProbeError::Handshake("the endpoint was not probed".into()))
            }),
        })
        .collect()
}

/// One `--connect` override: `((host, port), address to connect to)`.
pub(crate) type ConnectOverride = ((String, u16), SocketAddr);

/// A `--connect` value or `--connect-file` line that cannot be used: what is wrong, quoting the
/// text (an excerpt of a long one).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// No `=` between the endpoint and the address.
    #[error("expected HOST:PORT=ADDR:PORT, got `{spec}`")]
    NoEquals {
        /// The text given.
        spec: String,
    },
    /// More than one `=`.
    #[error("expected HOST:PORT=ADDR:PORT with a single `=`, got `{spec}`")]
    SeveralEquals {
        /// The text given.
        spec: String,
    },
    /// `[` without `]`.
    #[error("`{text}`: missing `]` after the IPv6 address")]
    MissingBracket {
        /// The HOST:PORT or ADDR:PORT part.
        text: String,
    },
    /// `]` not followed by `:PORT`.
    #[error("`{text}`: expected `:PORT` after `]`")]
    NoPortAfterBracket {
        /// The HOST:PORT or ADDR:PORT part.
        text: String,
    },
    /// Brackets around something that is not an IPv6 address.
    #[error("`{text}`: `{inside}` is not an IPv6 address")]
    NotIpv6 {
        /// The HOST:PORT or ADDR:PORT part.
        text: String,
        /// What the brackets hold.
        inside: String,
    },
    /// No `:PORT`.
    #[error("`{text}`: expected HOST:PORT")]
    NoPort {
        /// The HOST:PORT or ADDR:PORT part.
        text: String,
    },
    /// An IPv6 address without brackets.
    #[error("`{text}`: put an IPv6 address in brackets, like [::1]:9443")]
    UnbracketedIpv6 {
        /// The HOST:PORT or ADDR:PORT part.
        text: String,
    },
    /// Nothing before `:PORT`.
    #[error("`{text}`: the host is empty")]
    EmptyHost {
        /// The HOST:PORT or ADDR:PORT part.
        text: String,
    },
    /// Not a host name or an IP address.
    #[error("`{text}`: `{host}` is not a valid host name or IP address")]
    BadHost {
        /// The HOST:PORT or ADDR:PORT part.
        text: String,
        /// The host.
        host: String,
    },
    /// The port is not a number.
    #[error("`{text}`: `{port}` is not a port number")]
    NotAPort {
        /// The HOST:PORT or ADDR:PORT part.
        text: String,
        /// The port as written.
        port: String,
    },
    /// The port is 0 or above 65535.
    #[error("`{text}`: port must be 1-65535, got {port}")]
    PortRange {
        /// The HOST:PORT or ADDR:PORT part.
        text: String,
        /// The port as written.
        port: String,
    },
    /// The address to connect to is a name.
    #[error("`{text}`: the address to connect to must be an IP address, not `{host}`")]
    AddrNotIp {
        /// The ADDR:PORT part.
        text: String,
        /// The name given.
        host: String,
    },
    /// Not an ADDR:PORT for another reason.
    #[error("`{text}` is not a valid ADDR:PORT (port {port})")]
    BadAddr {
        /// The ADDR:PORT part.
        text: String,
        /// The port.
        port: u16,
    },
    /// A line of a connect file that is wrong (the message quotes at most 300 characters).
    #[error("line {line}: {}", crate::input::excerpt_within(&.problem.to_string(), 300))]
    Line {
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        problem: Box<ConnectError>,
    },
    /// A connect file maps one endpoint to two addresses.
    #[error("line {line}: {endpoint} is already mapped to {earlier} on line {first}")]
    FileConflict {
        /// The line of the second mapping.
        line: usize,
        /// HOST:PORT.
        endpoint: String,
        /// The address the first mapping gave.
        earlier: SocketAddr,
        /// The line of the first mapping.
        first: usize,
    },
    /// A `--connect` (or a connect file) maps an endpoint another mapping already maps.
    #[error(
        "{source_name} sends {endpoint} to {addr}, but an earlier --connect sends it to {earlier}: \
         keep one mapping per endpoint"
    )]
    Conflict {
        /// Where the second mapping came from (`--connect SPEC` or the file).
        source_name: String,
        /// HOST:PORT.
        endpoint: String,
        /// The second mapping's address.
        addr: SocketAddr,
        /// The first mapping's address.
        earlier: SocketAddr,
    },
}

/// Why an endpoint's address is not known.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum ResolveError {
    /// The host name is empty.
    #[error("cannot resolve an empty host name")]
    EmptyHost,
    /// The system resolver failed.
    #[error("cannot resolve {endpoint}: {source}")]
    Lookup {
        /// HOST:PORT.
        endpoint: String,
        /// What the resolver said (quoted in the message).
        source: std::io::Error,
    },
    /// The name resolved to nothing.
    #[error("{endpoint} resolved to no address")]
    NoAddress {
        /// HOST:PORT.
        endpoint: String,
    },
}

/// Parses `HOST:PORT=ADDR:PORT` (IPv6 in brackets: `[::1]:9443`), as `--connect` takes it.
///
/// HOST is a DNS name or an IP literal (returned without brackets); ADDR must be an IP
/// literal. Ports must be 1-65535.
pub(crate) fn parse_connect(spec: &str) -> Result<ConnectOverride, ConnectError> {
    let spec = spec.trim();
    let Some((left, right)) = spec.split_once('=') else {
        return Err(ConnectError::NoEquals { spec: spec.into() });
    };
    if right.contains('=') {
        return Err(ConnectError::SeveralEquals { spec: spec.into() });
    }
    let (host, port) = parse_host_port(left.trim())?;
    let addr = parse_addr_port(right.trim())?;
    Ok(((host, port), addr))
}

/// Parses a --connect-file: one HOST:PORT=ADDR:PORT per line, `#` comments and blank lines allowed; errors name the line number.
///
/// A comment runs from `#` to the end of the line. The same HOST:PORT given twice with the
/// same address is kept once; with different addresses it is an error.
pub(crate) fn parse_connect_file(text: &str) -> Result<Vec<ConnectOverride>, ConnectError> {
    let mut out: Vec<ConnectOverride> = Vec::new();
    let mut lines_of: Vec<usize> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let content = raw.split('#').next().unwrap_or_default().trim();
        if content.is_empty() {
            continue;
        }
        let ((host, port), addr) = parse_connect(content).map_err(|e| ConnectError::Line {
            line: line_no,
            problem: Box::new(e),
        })?;
        let earlier = out
            .iter()
            .zip(&lines_of)
            .find(|(((h, p), _), _)| *p == port && same_host(h, &host));
        match earlier {
            Some(((_, a), _)) if *a == addr => continue,
            Some(((_, a), first)) => {
                return Err(ConnectError::FileConflict {
                    line: line_no,
                    endpoint: host_port(&host, port),
                    earlier: *a,
                    first: *first,
                });
            }
            None => {
                out.push(((host, port), addr));
                lines_of.push(line_no);
            }
        }
    }
    Ok(out)
}

/// Adds `more` (from `source`, e.g. `connect.txt`) to `overrides`: the same HOST:PORT mapped
/// to the same address is kept once; mapped to another address it is an error naming both, so
/// a `--connect` never silently overrides a `--connect-file` line (or another `--connect`).
pub(crate) fn merge_overrides(
    overrides: &mut Vec<ConnectOverride>,
    more: Vec<ConnectOverride>,
    source: &str,
) -> Result<(), ConnectError> {
    for ((host, port), addr) in more {
        let earlier = overrides
            .iter()
            .find(|((h, p), _)| *p == port && same_host(h, &host));
        match earlier {
            Some((_, a)) if *a == addr => {}
            Some((_, a)) => {
                return Err(ConnectError::Conflict {
                    source_name: source.to_string(),
                    endpoint: host_port(&host, port),
                    addr,
                    earlier: *a,
                });
            }
            None => overrides.push(((host, port), addr)),
        }
    }
    Ok(())
}

/// Resolves an endpoint's address: an override if one matches (host, port), else the system resolver (std::net::ToSocketAddrs) — error if it does not resolve.
///
/// Host names match case-insensitively (and IP literals by value). An IP literal host
/// resolves to itself; a name that resolves to several addresses gives the first one.
pub(crate) fn resolve(
    host: &str,
    port: u16,
    overrides: &[ConnectOverride],
) -> Result<SocketAddr, ResolveError> {
    if let Some((_, addr)) = overrides
        .iter()
        .find(|((h, p), _)| *p == port && same_host(h, host))
    {
        return Ok(*addr);
    }
    let bare = strip_brackets(host);
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    if bare.is_empty() {
        return Err(ResolveError::EmptyHost);
    }
    let endpoint = || host_port(bare, port);
    let mut addrs = (bare, port)
        .to_socket_addrs()
        .map_err(|source| ResolveError::Lookup {
            endpoint: endpoint(),
            source,
        })?;
    addrs.next().ok_or_else(|| ResolveError::NoAddress {
        endpoint: endpoint(),
    })
}

// ---------------------------------------------------------------------------------------------
// Parsing helpers

fn strip_brackets(host: &str) -> &str {
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

/// `host:port`, with brackets around IPv6 literals.
fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Same endpoint host: IP literals by value, names case-insensitively (a trailing dot ignored).
fn same_host(a: &str, b: &str) -> bool {
    let (a, b) = (strip_brackets(a), strip_brackets(b));
    match (a.parse::<IpAddr>(), b.parse::<IpAddr>()) {
        (Ok(x), Ok(y)) => x == y,
        (Ok(_), Err(_)) | (Err(_), Ok(_)) => false,
        (Err(_), Err(_)) => {
            let trim = |s: &str| s.strip_suffix('.').unwrap_or(s).to_string();
            trim(a).eq_ignore_ascii_case(&trim(b))
        }
    }
}

fn parse_port(port: &str, whole: &str) -> Result<u16, ConnectError> {
    let (text, port) = (whole.to_string(), port.to_string());
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ConnectError::NotAPort { text, port });
    }
    match port.parse::<u16>() {
        Ok(0) | Err(_) => Err(ConnectError::PortRange { text, port }),
        Ok(p) => Ok(p),
    }
}

/// `HOST:PORT` with HOST a DNS name, an IPv4 literal or a bracketed IPv6 literal.
fn parse_host_port(text: &str) -> Result<(String, u16), ConnectError> {
    let t = || text.to_string();
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let Some((inside, after)) = rest.split_once(']') else {
            return Err(ConnectError::MissingBracket { text: t() });
        };
        let Some(port) = after.strip_prefix(':') else {
            return Err(ConnectError::NoPortAfterBracket { text: t() });
        };
        if inside.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(ConnectError::NotIpv6 {
                text: t(),
                inside: inside.into(),
            });
        }
        (inside, port)
    } else {
        let Some((host, port)) = text.rsplit_once(':') else {
            return Err(ConnectError::NoPort { text: t() });
        };
        if host.contains(':') {
            return Err(ConnectError::UnbracketedIpv6 { text: t() });
        }
        (host, port)
    };
    if host.is_empty() {
        return Err(ConnectError::EmptyHost { text: t() });
    }
    if ServerName::try_from(host).is_err() {
        return Err(ConnectError::BadHost {
            text: t(),
            host: host.into(),
        });
    }
    let port = parse_port(port, text)?;
    Ok((host.to_string(), port))
}

/// `ADDR:PORT` with ADDR an IP literal (IPv6 in brackets).
fn parse_addr_port(text: &str) -> Result<SocketAddr, ConnectError> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        if addr.port() == 0 {
            return Err(ConnectError::PortRange {
                text: text.into(),
                port: "0".into(),
            });
        }
        return Ok(addr);
    }
    // Not a socket address: find out why, for a useful message.
    let (host, port) = parse_host_port(text)?;
    if host.parse::<IpAddr>().is_err() {
        return Err(ConnectError::AddrNotIp {
            text: text.into(),
            host,
        });
    }
    Err(ConnectError::BadAddr {
        text: text.into(),
        port,
    })
}

// ---------------------------------------------------------------------------------------------
// TLS

/// Accepts any certificate chain, but checks handshake signatures against the served leaf
/// certificate with the provider's algorithms.
#[derive(Debug)]
struct AcceptAnyCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

fn client_config() -> Result<Arc<ClientConfig>, rustls::Error> {
    let provider: CryptoProvider = rustls::crypto::aws_lc_rs::default_provider();
    let verifier = Arc::new(AcceptAnyCertificate {
        algorithms: provider.signature_verification_algorithms,
    });
    let mut config = ClientConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    // Every probe must see the chain actually served, never one restored from a session.
    config.resumption = Resumption::disabled();
    config.enable_sni = true;
    Ok(Arc::new(config))
}

/// The SNI name for `name`: a DNS name, or an IP literal (which rustls sends without SNI).
fn server_name(name: &str) -> Result<ServerName<'static>, ProbeError> {
    let bare = strip_brackets(name);
    ServerName::try_from(bare.to_string()).map_err(|_| {
        ProbeError::Handshake(format!("`{name}` is not a valid host name or IP address"))
    })
}

/// Time left until `deadline`, or `None` when it has passed (or less than 1 ms is left).
fn time_left(deadline: Instant) -> Option<Duration> {
    let left = deadline.saturating_duration_since(Instant::now());
    (left >= Duration::from_millis(1)).then_some(left)
}

fn is_timeout(kind: ErrorKind) -> bool {
    matches!(kind, ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

/// Sets both socket timeouts to the time left; `Err(Timeout)` when none is left.
fn arm(sock: &TcpStream, deadline: Instant) -> Result<(), ProbeError> {
    let left = time_left(deadline).ok_or(ProbeError::Timeout)?;
    sock.set_read_timeout(Some(left))
        .and_then(|()| sock.set_write_timeout(Some(left)))
        .map_err(|e| ProbeError::Connect(format!("cannot set socket timeouts: {e}")))
}

fn probe_one(
    config: &Arc<ClientConfig>,
    endpoint: &Endpoint,
    timeout: Duration,
) -> Result<Vec<Vec<u8>>, ProbeError> {
    let deadline = Instant::now() + timeout;
    let name = server_name(&endpoint.name)?;
    let mut conn = ClientConnection::new(Arc::clone(config), name)
        .map_err(|e| ProbeError::Handshake(e.to_string()))?;

    let left = time_left(deadline).ok_or(ProbeError::Timeout)?;
    let mut sock = TcpStream::connect_timeout(&endpoint.connect_to, left).map_err(|e| {
        if is_timeout(e.kind()) {
            ProbeError::Timeout
        } else {
            ProbeError::Connect(e.to_string())
        }
    })?;
    // The handshake is a few small flights: send each at once.
    let _ = sock.set_nodelay(true);

    let result = handshake(&mut conn, &mut sock, deadline);
    if result.is_ok() {
        // Be polite: finish our side (the TLS 1.3 client Finished is still queued) and say
        // goodbye. Failures here do not matter: the chain is already known.
        conn.send_close_notify();
        let _ = flush(&mut conn, &mut sock, deadline);
    }
    let _ = sock.shutdown(Shutdown::Both);
    result
}

/// Drives the handshake to completion and returns the served chain.
fn handshake(
    conn: &mut ClientConnection,
    sock: &mut TcpStream,
    deadline: Instant,
) -> Result<Vec<Vec<u8>>, ProbeError> {
    while conn.is_handshaking() {
        arm(sock, deadline)?;
        if conn.wants_write() {
            match conn.write_tls(sock) {
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if is_timeout(e.kind()) => {
                    if time_left(deadline).is_none() {
                        return Err(ProbeError::Timeout);
                    }
                }
                Err(e) => return Err(ProbeError::Handshake(format!("cannot send: {e}"))),
            }
            continue;
        }
        match conn.read_tls(sock) {
            Ok(0) => {
                return Err(ProbeError::Handshake(
                    "the server closed the connection".to_string(),
                ))
            }
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) if is_timeout(e.kind()) => {
                if time_left(deadline).is_none() {
                    return Err(ProbeError::Timeout);
                }
                continue;
            }
            Err(e) => return Err(ProbeError::Handshake(format!("cannot receive: {e}"))),
        }
        if let Err(e) = conn.process_new_packets() {
            // Send the alert rustls queued, if the socket takes it.
            let _ = conn.write_tls(sock);
            return Err(ProbeError::Handshake(e.to_string()));
        }
    }
    let chain = conn
        .peer_certificates()
        .filter(|chain| !chain.is_empty())
        .ok_or_else(|| ProbeError::Handshake("the server sent no certificate".to_string()))?;
    Ok(chain.iter().map(|c| c.as_ref().to_vec()).collect())
}

/// Writes whatever rustls has queued, within the deadline.
fn flush(
    conn: &mut ClientConnection,
    sock: &mut TcpStream,
    deadline: Instant,
) -> Result<(), ProbeError> {
    while conn.wants_write() {
        arm(sock, deadline)?;
        match conn.write_tls(sock) {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(ProbeError::Handshake(e.to_string())),
        }
    }
    sock.flush()
        .map_err(|e| ProbeError::Handshake(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::net::TcpListener;
    use std::sync::mpsc;

    // ---- parse_connect -----------------------------------------------------------------------

    #[test]
    fn parse_connect_accepts_names_and_ip_literals() {
        let ((host, port), addr) = parse_connect("gw.example.com:9443=10.1.2.3:8243").unwrap();
        assert_eq!((host.as_str(), port), ("gw.example.com", 9443));
        assert_eq!(addr, "10.1.2.3:8243".parse().unwrap());

        let ((host, port), addr) = parse_connect("  km_1.internal:443=[::1]:9443 ").unwrap();
        assert_eq!((host.as_str(), port), ("km_1.internal", 443));
        assert_eq!(addr, "[::1]:9443".parse().unwrap());

        let ((host, port), addr) = parse_connect("[fe80::1]:443=[2001:db8::7]:8443").unwrap();
        assert_eq!((host.as_str(), port), ("fe80::1", 443));
        assert_eq!(addr, "[2001:db8::7]:8443".parse().unwrap());

        let ((host, port), addr) = parse_connect("192.0.2.9:9443=127.0.0.1:1").unwrap();
        assert_eq!((host.as_str(), port), ("192.0.2.9", 9443));
        assert_eq!(addr, "127.0.0.1:1".parse().unwrap());
    }

    #[test]
    fn parse_connect_rejects_bad_forms() {
        for (bad, needle) in [
            ("", "expected HOST:PORT=ADDR:PORT"),
            ("gw:9443", "expected HOST:PORT=ADDR:PORT"),
            ("gw:9443=127.0.0.1:1=x", "single `=`"),
            ("gw=127.0.0.1:9443", "expected HOST:PORT"),
            (":9443=127.0.0.1:9443", "host is empty"),
            ("gw:=127.0.0.1:9443", "not a port number"),
            ("gw:+443=127.0.0.1:9443", "not a port number"),
            ("gw:0=127.0.0.1:9443", "1-65535"),
            ("gw:65536=127.0.0.1:9443", "1-65535"),
            ("gw:9443=127.0.0.1:0", "1-65535"),
            ("gw:9443=127.0.0.1", "expected HOST:PORT"),
            ("gw:9443=localhost:9443", "must be an IP address"),
            ("gw:9443=::1:9443", "brackets"),
            ("::1:9443=127.0.0.1:9443", "brackets"),
            ("[::1:9443=127.0.0.1:9443", "missing `]`"),
            ("[::1]9443=127.0.0.1:9443", "expected `:PORT`"),
            ("[gw]:9443=127.0.0.1:9443", "not an IPv6 address"),
            ("bad host:9443=127.0.0.1:9443", "not a valid host name"),
            ("gw:9443=[127.0.0.1]:9443", "not an IPv6 address"),
        ] {
            let err = parse_connect(bad).expect_err(bad).to_string();
            assert!(err.contains(needle), "{bad:?}: {err:?} lacks {needle:?}");
        }
    }

    #[test]
    fn parse_connect_file_skips_comments_and_names_lines() {
        let text = "# overrides\n\ngw.example.com:9443=127.0.0.1:19443\n  \n\
                    km.example.com:9443 = [::1]:29443  # the key manager\n\
                    GW.example.com:9443=127.0.0.1:19443\n";
        let got = parse_connect_file(text).unwrap();
        assert_eq!(
            got,
            vec![
                (
                    ("gw.example.com".to_string(), 9443),
                    "127.0.0.1:19443".parse().unwrap()
                ),
                (
                    ("km.example.com".to_string(), 9443),
                    "[::1]:29443".parse().unwrap()
                ),
            ]
        );
        assert_eq!(parse_connect_file("# nothing\n\n").unwrap(), vec![]);

        let err = parse_connect_file("# one\n\na:1=127.0.0.1:1\nb:2=nowhere\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("line 4: "), "{err}");
        let err = parse_connect_file("a:1=127.0.0.1:1\r\n\r\nA:1=127.0.0.2:1\r\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("line 3: "), "{err}");
        assert!(err.contains("on line 1"), "{err}");
    }

    #[test]
    fn merge_refuses_two_addresses_for_one_endpoint() {
        let mut all = vec![parse_connect("km.acme.internal:9443=127.0.0.1:1").unwrap()];
        let same = vec![parse_connect("KM.acme.internal:9443=127.0.0.1:1").unwrap()];
        merge_overrides(&mut all, same, "connect.txt").unwrap();
        assert_eq!(all.len(), 1);
        let other = vec![parse_connect("km.acme.internal:9443=127.0.0.1:2").unwrap()];
        let e = merge_overrides(&mut all, other, "connect.txt")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("connect.txt sends km.acme.internal:9443 to 127.0.0.1:2")
                && e.contains("127.0.0.1:1"),
            "{e}"
        );
        let port = vec![parse_connect("km.acme.internal:8243=127.0.0.1:2").unwrap()];
        merge_overrides(&mut all, port, "connect.txt").unwrap();
        assert_eq!(all.len(), 2);
    }

    #[test]
    fn resolve_prefers_overrides() {
        let overrides = parse_connect_file("gw.example.test:9443=127.0.0.5:1234\n").unwrap();
        assert_eq!(
            resolve("GW.example.test", 9443, &overrides).unwrap(),
            "127.0.0.5:1234".parse().unwrap()
        );
        // IP literals need no resolver.
        assert_eq!(
            resolve("127.0.0.9", 443, &overrides).unwrap(),
            "127.0.0.9:443".parse().unwrap()
        );
        assert_eq!(
            resolve("[::1]", 443, &[]).unwrap(),
            "[::1]:443".parse().unwrap()
        );
        // `localhost` comes from /etc/hosts, never from the network.
        assert!(resolve("localhost", 443, &[]).unwrap().ip().is_loopback());
        let err = resolve("", 443, &[]).unwrap_err();
        assert!(err.to_string().contains("empty"), "{err}");
    }

    // ---- probing -----------------------------------------------------------------------------

    /// Serializes the tests that measure time against the one that loads both cores, so a
    /// timing bound never fails because a sibling test starves it.
    static CPU_HEAVY: std::sync::Mutex<()> = std::sync::Mutex::new(());

    fn exclusive() -> std::sync::MutexGuard<'static, ()> {
        CPU_HEAVY.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn endpoint(name: &str, addr: SocketAddr) -> Endpoint {
        Endpoint {
            name: name.to_string(),
            port: addr.port(),
            connect_to: addr,
        }
    }

    #[test]
    fn closed_port_is_a_quick_connect_error() {
        let _serial = exclusive();
        let addr = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let start = Instant::now();
        let probes = probe_all(&[endpoint("closed.test", addr)], Duration::from_secs(5), 4);
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "{:?}",
            start.elapsed()
        );
        assert_eq!(probes.len(), 1);
        match &probes[0].result {
            Err(ProbeError::Connect(msg)) => assert!(!msg.is_empty()),
            other => panic!("expected a connect error, got {other:?}"),
        }
    }

    #[test]
    fn silent_listener_times_out() {
        let _serial = exclusive();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        // Accept and hold the connections without ever writing.
        let holder = std::thread::spawn(move || {
            let mut held = Vec::new();
            listener.set_nonblocking(true).unwrap();
            let until = Instant::now() + Duration::from_secs(3);
            while Instant::now() < until && held.len() < 2 {
                match listener.accept() {
                    Ok((s, _)) => held.push(s),
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
            std::thread::sleep(Duration::from_millis(800));
            held.len()
        });
        let timeout = Duration::from_millis(300);
        let start = Instant::now();
        let probes = probe_all(
            &[endpoint("silent.test", addr), endpoint("127.0.0.1", addr)],
            timeout,
            2,
        );
        let elapsed = start.elapsed();
        assert!(
            elapsed < timeout + Duration::from_millis(200),
            "took {elapsed:?}"
        );
        assert!(
            elapsed + Duration::from_millis(5) >= timeout,
            "took only {elapsed:?}"
        );
        for p in &probes {
            assert_eq!(p.result, Err(ProbeError::Timeout), "{p:?}");
        }
        assert_eq!(holder.join().unwrap(), 2);
    }

    #[test]
    fn zero_timeout_and_no_endpoints() {
        assert!(probe_all(&[], Duration::from_secs(1), 8).is_empty());
        let addr: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let probes = probe_all(&[endpoint("x.test", addr)], Duration::ZERO, 0);
        assert_eq!(probes[0].result, Err(ProbeError::Timeout));
    }

    // ---- an in-process rustls server ---------------------------------------------------------

    struct Identity {
        cert_der: Vec<u8>,
        key_der: Vec<u8>,
    }

    fn self_signed(name: &str) -> Identity {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let params = rcgen::CertificateParams::new(vec![name.to_string()]).unwrap();
        let cert = params.self_signed(&key).unwrap();
        Identity {
            cert_der: cert.der().to_vec(),
            key_der: key.serialize_der(),
        }
    }

    /// Always presents `key` with `chain`, whether or not they match.
    #[derive(Debug)]
    struct Fixed(Arc<rustls::sign::CertifiedKey>);

    impl rustls::server::ResolvesServerCert for Fixed {
        fn resolve(
            &self,
            _hello: rustls::server::ClientHello<'_>,
        ) -> Option<Arc<rustls::sign::CertifiedKey>> {
            Some(Arc::clone(&self.0))
        }
    }

    fn server_config(
        chain: &[Vec<u8>],
        key_der: &[u8],
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> Arc<rustls::ServerConfig> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let key = rustls::pki_types::PrivateKeyDer::try_from(key_der.to_vec()).unwrap();
        let signer = provider.key_provider.load_private_key(key).unwrap();
        let chain = chain
            .iter()
            .map(|c| CertificateDer::from(c.clone()))
            .collect();
        let certified = rustls::sign::CertifiedKey::new(chain, signer);
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .unwrap()
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(Fixed(Arc::new(certified))));
        Arc::new(config)
    }

    /// What the server saw of one connection: the negotiated version and the SNI name.
    type Seen = (Option<rustls::ProtocolVersion>, Option<String>);

    /// Set when a probe sent application data to a test server (it never must).
    static APP_DATA_SEEN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

    /// Serves `config` on 127.0.0.1:0 until the test process ends, one thread per connection.
    fn serve(config: Arc<rustls::ServerConfig>) -> (SocketAddr, mpsc::Receiver<Seen>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let config = Arc::clone(&config);
                let tx = tx.clone();
                std::thread::spawn(move || {
                    stream
                        .set_read_timeout(Some(Duration::from_secs(10)))
                        .unwrap();
                    let mut conn = rustls::ServerConnection::new(config).unwrap();
                    while conn.is_handshaking() {
                        if conn.complete_io(&mut stream).is_err() {
                            break;
                        }
                    }
                    let _ = tx.send((
                        conn.protocol_version(),
                        conn.server_name().map(str::to_string),
                    ));
                    // Read until the client goes away; it must never send application data.
                    let mut tls = rustls::Stream::new(&mut conn, &mut stream);
                    let mut buf = [0u8; 64];
                    if matches!(tls.read(&mut buf), Ok(n) if n > 0) {
                        APP_DATA_SEEN.store(true, Ordering::SeqCst);
                    }
                });
            }
        });
        (addr, rx)
    }

    fn check_served(versions: &[&'static rustls::SupportedProtocolVersion]) {
        let id = self_signed("svc.example.test");
        let (addr, seen) = serve(server_config(
            std::slice::from_ref(&id.cert_der),
            &id.key_der,
            versions,
        ));
        let probes = probe_all(
            &[
                endpoint("svc.example.test", addr),
                endpoint("127.0.0.1", addr),
            ],
            Duration::from_secs(5),
            2,
        );
        assert_eq!(probes.len(), 2);
        for (i, p) in probes.iter().enumerate() {
            assert_eq!(p.endpoint_index, i);
            let chain = p.result.as_ref().expect("probe failed");
            assert_eq!(chain, &vec![id.cert_der.clone()]);
        }
        let mut seen: Vec<Seen> = (0..2)
            .map(|_| seen.recv_timeout(Duration::from_secs(5)).unwrap())
            .collect();
        seen.sort_by(|a, b| a.1.cmp(&b.1));
        let version = versions[0].version;
        assert_eq!(
            seen,
            vec![
                (Some(version), None),
                (Some(version), Some("svc.example.test".to_string()))
            ]
        );
        assert!(!APP_DATA_SEEN.load(Ordering::SeqCst));
    }

    #[test]
    fn gets_the_chain_from_a_tls13_server() {
        check_served(&[&rustls::version::TLS13]);
    }

    #[test]
    fn gets_the_chain_from_a_tls12_server() {
        check_served(&[&rustls::version::TLS12]);
    }

    #[test]
    fn returns_the_whole_chain_leaf_first() {
        let ca_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca_params, &ca_key);
        let leaf_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let leaf = rcgen::CertificateParams::new(vec!["leaf.test".to_string()])
            .unwrap()
            .signed_by(&leaf_key, &issuer)
            .unwrap();
        let chain = vec![leaf.der().to_vec(), ca.der().to_vec()];
        let (addr, _seen) = serve(server_config(
            &chain,
            &leaf_key.serialize_der(),
            &[&rustls::version::TLS13, &rustls::version::TLS12],
        ));
        let probes = probe_all(&[endpoint("leaf.test", addr)], Duration::from_secs(5), 1);
        assert_eq!(probes[0].result.as_ref().unwrap(), &chain);
    }

    #[test]
    fn a_server_without_the_private_key_fails() {
        let shown = self_signed("victim.test");
        let other = self_signed("victim.test");
        for versions in [[&rustls::version::TLS13], [&rustls::version::TLS12]] {
            let (addr, _seen) = serve(server_config(
                std::slice::from_ref(&shown.cert_der),
                &other.key_der,
                &versions,
            ));
            let probes = probe_all(&[endpoint("victim.test", addr)], Duration::from_secs(5), 1);
            match &probes[0].result {
                Err(ProbeError::Handshake(msg)) => {
                    assert!(msg.to_lowercase().contains("signature"), "{msg}")
                }
                other => panic!("{:?}: expected a handshake error, got {other:?}", versions),
            }
        }
    }

    #[test]
    fn many_endpoints_concurrently() {
        let _serial = exclusive();
        let id = self_signed("many.example.test");
        let config = server_config(
            std::slice::from_ref(&id.cert_der),
            &id.key_der,
            &[&rustls::version::TLS13, &rustls::version::TLS12],
        );
        // A few listeners, each endpoint named differently.
        let addrs: Vec<SocketAddr> = (0..4).map(|_| serve(Arc::clone(&config)).0).collect();
        for (count, max_concurrent) in [(200usize, 64usize), (1000, 64)] {
            let endpoints: Vec<Endpoint> = (0..count)
                .map(|i| endpoint(&format!("h{i}.many.example.test"), addrs[i % addrs.len()]))
                .collect();
            let start = Instant::now();
            let probes = probe_all(&endpoints, Duration::from_secs(10), max_concurrent);
            let elapsed = start.elapsed();
            eprintln!("{count} endpoints, max_concurrent {max_concurrent}: {elapsed:?}");
            assert_eq!(probes.len(), count);
            for (i, p) in probes.iter().enumerate() {
                assert_eq!(p.endpoint_index, i);
                assert_eq!(
                    p.result.as_ref().map(|c| c[0].as_slice()),
                    Ok(id.cert_der.as_slice()),
                    "endpoint {i}"
                );
            }
            // Generous bound: debug build on 2 shared cores with other tests running.
            assert!(elapsed < Duration::from_secs(15), "{count}: {elapsed:?}");
        }
    }

    #[test]
    fn concurrency_is_bounded() {
        let _serial = exclusive();
        // Every probe of a silent listener takes the full timeout, so with W workers 20
        // probes take at least ceil(20 / W) timeouts: 5 for W = 4, at most 4 for W >= 5.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (done_tx, done_rx) = mpsc::channel::<()>();
        let holder = std::thread::spawn(move || {
            listener.set_nonblocking(true).unwrap();
            let mut held = Vec::new();
            // Hold every connection until the probes are done.
            while done_rx.try_recv() == Err(mpsc::TryRecvError::Empty) {
                match listener.accept() {
                    Ok((s, _)) => held.push(s),
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
            held.len()
        });
        let endpoints: Vec<Endpoint> = (0..20).map(|_| endpoint("bounded.test", addr)).collect();
        let timeout = Duration::from_millis(200);
        let start = Instant::now();
        let probes = probe_all(&endpoints, timeout, 4);
        let elapsed = start.elapsed();
        done_tx.send(()).unwrap();
        for p in &probes {
            assert_eq!(p.result, Err(ProbeError::Timeout), "{p:?}");
        }
        assert!(elapsed >= Duration::from_millis(950), "{elapsed:?}");
        assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
        assert_eq!(holder.join().unwrap(), 20);
    }
}
