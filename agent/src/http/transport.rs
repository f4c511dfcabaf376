//! How a connection is made and spoken: HTTP/1.1 on TCP (the lean path), HTTP/1.1 over TLS, or HTTP/2 (prior
//! knowledge on http://, ALPN `h2` on https://, via hyper). TLS is rustls with the system roots plus the plan's CA.

use super::HttpTarget;
use super::h1::{ConnectFailure, H1Conn, tcp_connect};
use crate::recorder::Outcome;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// Why TLS cannot be set up for a shard.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// One text for every reason (missing, unreadable, not PEM, not a usable certificate): the plan's author
    /// learns nothing else about this host's files.
    #[error("ca_file {0} is not a readable file of PEM CA certificates on this agent")]
    CaFile(String),
    #[error("no trusted root certificates: the system has none and the plan gives no ca_file")]
    NoRoots,
    #[error("TLS setup: {0}")]
    Setup(rustls::Error),
    #[error("invalid TLS server name {host:?}: {source}")]
    ServerName {
        host: String,
        source: rustls_pki_types::InvalidDnsNameError,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    Http1,
    Http2,
}

pub struct Transport {
    tls: Option<(TlsConnector, ServerName<'static>)>,
    version: Version,
    /// Most bytes of a response head: HTTP/1.1 status line and headers, HTTP/2 header list.
    max_head: u32,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("tls", &self.tls.is_some())
            .field("version", &self.version)
            .field("max_head", &self.max_head)
            .finish()
    }
}

/// The largest CA file read: a bundle of every public root is about 250 KiB.
const MAX_CA_FILE: u64 = 4 << 20;

/// The certificates of a PEM file, or `None` whatever went wrong (the caller gives one text for all of it).
/// Only a regular file is read: a FIFO or a device could block the agent or never end. It is opened without
/// blocking (a FIFO swapped in after the check cannot hang the open) and checked again once open.
fn read_ca_file(path: &str) -> Option<Vec<CertificateDer<'static>>> {
    use std::io::Read as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    if !std::fs::metadata(path).ok()?.is_file() {
        return None;
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(path)
        .ok()?;
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    let mut pem = Vec::new();
    file.take(MAX_CA_FILE + 1).read_to_end(&mut pem).ok()?;
    if pem.len() as u64 > MAX_CA_FILE {
        return None;
    }
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<_, _>>()
        .ok()?;
    (!certs.is_empty()).then_some(certs)
}

impl Transport {
    /// `max_head`: the most bytes a response head may take (the plan's `max_response_header_bytes`).
    pub fn new(
        https: bool,
        host: &str,
        version: Version,
        ca_file: Option<&str>,
        max_head: u32,
    ) -> Result<Self, TlsError> {
        if !https {
            return Ok(Transport {
                tls: None,
                version,
                max_head,
            });
        }
        let mut roots = rustls::RootCertStore::empty();
        let native = rustls_native_certs::load_native_certs();
        for cert in native.certs {
            let _ = roots.add(cert);
        }
        if let Some(path) = ca_file {
            for cert in read_ca_file(path).ok_or_else(|| TlsError::CaFile(path.to_owned()))? {
                roots
                    .add(cert)
                    .map_err(|_| TlsError::CaFile(path.to_owned()))?;
            }
        }
        if roots.is_empty() {
            return Err(TlsError::NoRoots);
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Setup)?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = match version {
            Version::Http1 => vec![b"http/1.1".to_vec()],
            Version::Http2 => vec![b"h2".to_vec()],
        };
        let name =
            ServerName::try_from(host.to_owned()).map_err(|source| TlsError::ServerName {
                host: host.to_owned(),
                source,
            })?;
        Ok(Transport {
            tls: Some((TlsConnector::from(Arc::new(config)), name)),
            version,
            max_head,
        })
    }

    /// Opens a connection: TCP, then TLS and HTTP/2 handshakes where the target needs them.
    pub async fn connect(&self, addr: SocketAddr) -> Result<Conn, ConnectFailure> {
        let tcp = tcp_connect(addr).await?;
        let max_head = usize::try_from(self.max_head).unwrap_or(usize::MAX);
        match (&self.tls, self.version) {
            (None, Version::Http1) => Ok(Conn::Plain(H1Conn::new(tcp).with_head_limit(max_head))),
            (None, Version::Http2) => h2_handshake(tcp, self.max_head).await,
            (Some((connector, name)), version) => {
                let tls = connector
                    .connect(name.clone(), tcp)
                    .await
                    .map_err(|e| ConnectFailure::of(&e))?;
                match version {
                    Version::Http1 => Ok(Conn::Tls(Box::new(
                        H1Conn::new(tls).with_head_limit(max_head),
                    ))),
                    Version::Http2 => {
                        if tls.get_ref().1.alpn_protocol() != Some(b"h2") {
                            // The server does not speak HTTP/2: a failed setup, not a silent downgrade.
                            return Err(ConnectFailure::Connect);
                        }
                        h2_handshake(tls, self.max_head).await
                    }
                }
            }
        }
    }
}

/// An HTTP/2 connection whose peer may send header lists of at most `max_head` bytes (h2 refuses larger ones and
/// fails the stream, so they never reach memory whole), and at most `max_head` bytes in all between a request and
/// its final response head ([`super::h2_budget`]: endless 1xx responses grew hyper's memory without bound).
async fn h2_handshake<S>(io: S, max_head: u32) -> Result<Conn, ConnectFailure>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let budget = super::h2_budget::HeadBudget::new(usize::try_from(max_head).unwrap_or(usize::MAX));
    let (sender, connection) = http2::Builder::new(TokioExecutor::new())
        .max_header_list_size(max_head)
        .handshake(TokioIo::new(budget.wrap(io)))
        .await
        .map_err(|_| ConnectFailure::Connect)?;
    tokio::spawn(async move {
        // Ends when the sender is dropped or the peer goes away; either is normal here.
        let _ = connection.await;
    });
    Ok(Conn::H2(sender, budget))
}

/// How a failed HTTP/2 request is classified: a response head over `max_header_list_size` is refused by h2 itself
/// (a reset of the stream by this side, REFUSED_STREAM), which is `TooLarge`; anything else is `Other`.
fn h2_outcome(e: &hyper::Error) -> Outcome {
    let h2 = std::error::Error::source(e).and_then(|s| s.downcast_ref::<h2::Error>());
    match h2 {
        Some(h2)
            if h2.is_reset()
                && !h2.is_remote()
                && h2.reason() == Some(h2::Reason::REFUSED_STREAM) =>
        {
            Outcome::TooLarge
        }
        _ => Outcome::Other,
    }
}

/// What [`Conn::exchange_bytes`] got.
#[derive(Debug)]
pub struct Exchanged {
    pub status: u16,
    pub bytes: u64,
    /// The watched header had its value.
    pub watched: bool,
    /// The body, when captured.
    pub body: Option<Vec<u8>>,
}

pub enum Conn {
    Plain(H1Conn<TcpStream>),
    Tls(Box<H1Conn<TlsStream<TcpStream>>>),
    H2(
        http2::SendRequest<Full<Bytes>>,
        super::h2_budget::HeadBudget,
    ),
}

impl Conn {
    /// Sends the target's request and reads the whole response: status and bytes received (HTTP/1.1: head and
    /// body as on the wire; HTTP/2: body bytes).
    pub async fn exchange(&mut self, target: &HttpTarget) -> Result<(u16, u64), Outcome> {
        match self {
            Conn::Plain(c) => c.exchange(&target.request, target.head).await,
            Conn::Tls(c) => c.exchange(&target.request, target.head).await,
            Conn::H2(sender, budget) => {
                sender.ready().await.map_err(|_| Outcome::Other)?;
                budget.arm();
                let response = sender.send_request(target.h2_request()).await;
                budget.disarm();
                let response = response.map_err(|e| {
                    if budget.tripped() {
                        Outcome::TooLarge
                    } else {
                        h2_outcome(&e)
                    }
                })?;
                let status = response.status().as_u16();
                let mut body = response.into_body();
                let mut bytes = 0u64;
                while let Some(frame) = body.frame().await {
                    let frame = frame.map_err(|_| Outcome::Other)?;
                    if let Some(data) = frame.data_ref() {
                        bytes += data.len() as u64;
                    }
                }
                Ok((status, bytes))
            }
        }
    }

    /// Sends prebuilt HTTP/1.1 request bytes (a cache lookup's, whose key changes per request). `watch`: a response
    /// header (lower-case name, value) whose presence is returned; `capture`: keep the body (returned).
    pub async fn exchange_bytes(
        &mut self,
        request: &[u8],
        watch: Option<&(Vec<u8>, Vec<u8>)>,
        capture: bool,
    ) -> Result<Exchanged, Outcome> {
        fn on<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
            c: &mut H1Conn<S>,
            watch: Option<&(Vec<u8>, Vec<u8>)>,
            capture: bool,
        ) {
            if c.watch.is_none()
                && let Some(w) = watch
            {
                c.watch = Some(Box::new(w.clone()));
            }
            c.capture = capture.then(|| c.capture.take().unwrap_or_default());
        }
        macro_rules! exchange {
            ($c:expr) => {{
                on($c, watch, capture);
                let (status, bytes) = $c.exchange(request, false).await?;
                Ok(Exchanged {
                    status,
                    bytes,
                    watched: $c.watched,
                    body: $c.capture.take(),
                })
            }};
        }
        match self {
            Conn::Plain(c) => exchange!(c),
            Conn::Tls(c) => exchange!(c.as_mut()),
            // Cache lookups are refused over HTTP/2 when the shard is prepared.
            Conn::H2(..) => Err(Outcome::Other),
        }
    }

    /// Whether another request may be sent on this connection.
    pub fn is_reusable(&self) -> bool {
        match self {
            Conn::Plain(c) => c.is_reusable(),
            Conn::Tls(c) => c.is_reusable(),
            Conn::H2(sender, _) => !sender.is_closed(),
        }
    }
}

#[cfg(test)]
mod tests;
