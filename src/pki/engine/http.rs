//! A minimal HTTP/1.1 client for the PKI engine's API: one connection per request
//! (`Connection: close`), TLS through rustls with the aws-lc-rs provider the crate already uses
//! (system roots plus the topology's `ca_bundle`), a deadline on every request and a bounded
//! response. Nothing here logs; the token goes only into the request header.

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

use crate::topology::EngineAddress;

/// The largest response apim-pki reads (a signed certificate with its chain is a few KiB).
pub(super) const MAX_RESPONSE: usize = 1 << 20;

/// Why a request got no HTTP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum HttpError {
    /// No TCP connection (refused, unreachable, name not resolved).
    Connect(String),
    /// The deadline passed before the whole response arrived.
    Timeout,
    /// The TLS handshake failed (untrusted certificate, wrong name, ...).
    Tls(String),
    /// The connection broke, or the response is not HTTP or too large.
    Protocol(String),
}

/// Why no TLS client could be set up for the engine.
#[derive(Debug, thiserror::Error)]
pub(super) enum TlsSetupError {
    /// A `ca_bundle` certificate rustls cannot use as a root.
    #[error("a ca_bundle certificate is not usable: {0}")]
    BadRoot(#[source] rustls::Error),
    /// The crypto provider supports none of the safe protocol versions.
    #[error("{0}")]
    Provider(#[source] rustls::Error),
}

/// A response: its status and body.
pub(super) struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

/// Where requests go and how long each may take.
pub(super) struct Http {
    address: EngineAddress,
    tls: Option<Arc<ClientConfig>>,
    timeout: Duration,
}

impl Http {
    /// A client for `address`; `extra_roots` are trusted besides the system's (https only).
    pub(super) fn new(
        address: &EngineAddress,
        extra_roots: Vec<CertificateDer<'static>>,
        timeout: Duration,
    ) -> Result<Http, TlsSetupError> {
        let tls = if address.tls {
            let mut roots = RootCertStore::empty();
            let native = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(native.certs);
            for cert in extra_roots {
                roots.add(cert).map_err(TlsSetupError::BadRoot)?;
            }
            let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
            let config = ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(TlsSetupError::Provider)?
                .with_root_certificates(roots)
                .with_no_client_auth();
            Some(Arc::new(config))
        } else {
            None
        };
        Ok(Http {
            address: address.clone(),
            tls,
            timeout,
        })
    }

    /// The deadline of each request.
    pub(super) fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Sends one request; `token` goes into `X-Vault-Token`, `body` (JSON) when given.
    pub(super) fn send(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<&[u8]>,
    ) -> Result<Response, HttpError> {
        let deadline = Instant::now() + self.timeout;
        let stream = self.connect(deadline)?;
        let host = if self.address.host.contains(':') {
            format!("[{}]:{}", self.address.host, self.address.port)
        } else {
            format!("{}:{}", self.address.host, self.address.port)
        };
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nAccept: application/json\r\nUser-Agent: apim-pki/{}\r\nX-Vault-Token: {token}\r\n",
            env!("CARGO_PKG_VERSION")
        );
        if let Some(b) = body {
            head += &format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                b.len()
            );
        }
        head += "\r\n";
        let mut request = zeroize::Zeroizing::new(head.into_bytes());
        request.extend_from_slice(body.unwrap_or_default());
        match &self.tls {
            None => exchange(stream, &request, deadline),
            Some(config) => {
                let name = ServerName::try_from(self.address.host.clone())
                    .map_err(|e| HttpError::Tls(e.to_string()))?;
                let conn = ClientConnection::new(config.clone(), name)
                    .map_err(|e| HttpError::Tls(e.to_string()))?;
                exchange(StreamOwned::new(conn, stream), &request, deadline)
            }
        }
    }

    fn connect(&self, deadline: Instant) -> Result<TcpStream, HttpError> {
        let addrs: Vec<_> = (self.address.host.as_str(), self.address.port)
            .to_socket_addrs()
            .map_err(|e| HttpError::Connect(format!("cannot resolve the host: {e}")))?
            .collect();
        let mut last = HttpError::Connect("the host resolves to no address".into());
        for addr in addrs {
            let left = remaining(deadline)?;
            match TcpStream::connect_timeout(&addr, left) {
                Ok(s) => {
                    let _ = s.set_nodelay(true);
                    return Ok(s);
                }
                Err(e) if e.kind() == ErrorKind::TimedOut => last = HttpError::Timeout,
                Err(e) => last = HttpError::Connect(e.to_string()),
            }
        }
        Err(last)
    }
}

fn remaining(deadline: Instant) -> Result<Duration, HttpError> {
    deadline
        .checked_duration_since(Instant::now())
        .filter(|d| !d.is_zero())
        .ok_or(HttpError::Timeout)
}

/// A stream whose socket timeouts can be set before each read and write.
trait Socket: Read + Write {
    fn tcp(&self) -> &TcpStream;
    fn is_tls(&self) -> bool;
}

impl Socket for TcpStream {
    fn tcp(&self) -> &TcpStream {
        self
    }
    fn is_tls(&self) -> bool {
        false
    }
}

impl Socket for StreamOwned<ClientConnection, TcpStream> {
    fn tcp(&self) -> &TcpStream {
        &self.sock
    }
    fn is_tls(&self) -> bool {
        true
    }
}

fn io_error(e: std::io::Error, tls: bool) -> HttpError {
    match e.kind() {
        ErrorKind::TimedOut | ErrorKind::WouldBlock => HttpError::Timeout,
        ErrorKind::InvalidData if tls => HttpError::Tls(e.to_string()),
        _ => HttpError::Protocol(format!("the connection broke: {e}")),
    }
}

fn exchange(
    mut stream: impl Socket,
    request: &[u8],
    deadline: Instant,
) -> Result<Response, HttpError> {
    let tls = stream.is_tls();
    stream
        .tcp()
        .set_write_timeout(Some(remaining(deadline)?))
        .map_err(|e| io_error(e, tls))?;
    stream.write_all(request).map_err(|e| io_error(e, tls))?;
    stream.flush().map_err(|e| io_error(e, tls))?;
    let mut data = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        stream
            .tcp()
            .set_read_timeout(Some(remaining(deadline)?))
            .map_err(|e| io_error(e, tls))?;
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                data.extend_from_slice(&buf[..n]);
                if data.len() > MAX_RESPONSE {
                    return Err(HttpError::Protocol(format!(
                        "the response is larger than {MAX_RESPONSE} bytes"
                    )));
                }
                if complete(&data) {
                    break;
                }
            }
            // A peer that closes without close_notify: the parse below decides.
            Err(e) if e.kind() == ErrorKind::UnexpectedEof => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(io_error(e, tls)),
        }
    }
    parse(&data)
}

/// True once `data` holds a whole response (by Content-Length or the last chunk).
fn complete(data: &[u8]) -> bool {
    parse(data).is_ok()
}

/// Parses a whole HTTP/1.x response.
fn parse(data: &[u8]) -> Result<Response, HttpError> {
    let bad = |why: &str| HttpError::Protocol(why.to_string());
    let end =
        find(data, b"\r\n\r\n").ok_or_else(|| bad("the response ended before its headers did"))?;
    let head =
        std::str::from_utf8(&data[..end]).map_err(|_| bad("the response headers are not text"))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.split(' ');
    let (Some(version), Some(code)) = (parts.next(), parts.next()) else {
        return Err(bad("not an HTTP response"));
    };
    if !version.starts_with("HTTP/1.") {
        return Err(bad("not an HTTP/1.x response"));
    }
    let status: u16 = code
        .parse()
        .map_err(|_| bad("the HTTP status is not a number"))?;
    let mut length = None;
    let mut chunked = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let (name, value) = (name.trim(), value.trim());
        if name.eq_ignore_ascii_case("content-length") {
            length = Some(
                value
                    .parse::<usize>()
                    .map_err(|_| bad("a bad Content-Length"))?,
            );
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.to_ascii_lowercase().contains("chunked");
        }
    }
    let rest = &data[end + 4..];
    let body = if chunked {
        dechunk(rest).ok_or_else(|| bad("the response ended inside its body"))?
    } else if let Some(n) = length {
        rest.get(..n)
            .ok_or_else(|| bad("the response ended inside its body"))?
            .to_vec()
    } else {
        return Err(bad(
            "the response has neither Content-Length nor chunked encoding",
        ));
    };
    Ok(Response { status, body })
}

fn find(data: &[u8], needle: &[u8]) -> Option<usize> {
    data.windows(needle.len()).position(|w| w == needle)
}

/// The body of a chunked transfer encoding; `None` until the last chunk arrived.
fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = find(data, b"\r\n")?;
        let size_text = std::str::from_utf8(&data[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_length_and_chunked_bodies() {
        let r = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}").unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"{}"[..]));
        let r = parse(b"HTTP/1.1 400 Bad Request\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n").unwrap();
        assert_eq!((r.status, r.body.as_slice()), (400, &b"abcde"[..]));
    }

    #[test]
    fn incomplete_or_foreign_responses_are_refused() {
        for data in [
            &b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n{}"[..],
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length",
            b"SSH-2.0-OpenSSH\r\n\r\n",
            b"HTTP/1.1 200 OK\r\n\r\n{}",
        ] {
            assert!(parse(data).is_err(), "{}", String::from_utf8_lossy(data));
        }
    }

    #[test]
    fn a_silent_server_times_out_within_the_deadline() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let address = EngineAddress {
            tls: false,
            host: "127.0.0.1".into(),
            port,
        };
        let http = Http::new(&address, Vec::new(), Duration::from_millis(300)).unwrap();
        let started = Instant::now();
        let held = std::thread::spawn(move || listener.accept().map(|(s, _)| s));
        let r = http.send("GET", "/v1/sys/health", "t", None);
        assert_eq!(r.err(), Some(HttpError::Timeout));
        assert!(started.elapsed() < Duration::from_secs(3));
        drop(held.join());
    }

    #[test]
    fn an_endless_response_is_cut_at_the_bound() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 99999999\r\n\r\n");
            let chunk = vec![b'x'; 64 * 1024];
            for _ in 0..40 {
                if s.write_all(&chunk).is_err() {
                    break;
                }
            }
        });
        let address = EngineAddress {
            tls: false,
            host: "127.0.0.1".into(),
            port,
        };
        let http = Http::new(&address, Vec::new(), Duration::from_secs(10)).unwrap();
        let r = http.send("GET", "/", "t", None);
        assert!(
            matches!(r, Err(HttpError::Protocol(ref m)) if m.contains("larger than")),
            "{:?}",
            r.err()
        );
        drop(server.join());
    }
}
