//! The running testbed: listener, accept loop, per-connection tasks and graceful shutdown.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;

use crate::routes::{self, AppState};
use crate::{TestbedConfig, TlsIdentity};

/// How long shutdown waits for in-flight requests before dropping their connections.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// Back-off after a failed `accept` (e.g. out of file descriptors).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// A running testbed server.
///
/// Dropping it without calling [`Testbed::shutdown`] also stops the server,
/// but without waiting for it.
#[derive(Debug)]
pub struct Testbed {
    addr: SocketAddr,
    tls: bool,
    state: Arc<AppState>,
    shutdown: watch::Sender<bool>,
    accept_task: JoinHandle<()>,
}

impl Testbed {
    /// Binds `config.listen` (port 0 picks a free port), spawns the accept loop
    /// and returns at once.
    pub async fn start(config: TestbedConfig) -> anyhow::Result<Testbed> {
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("binding {}", config.listen))?;
        let addr = listener.local_addr().context("reading the bound address")?;
        let state = Arc::new(AppState::new(crate::synthetic::Synthetic::with_series(
            config.metrics_series,
        )));
        let (shutdown, shutdown_rx) = watch::channel(false);
        let tls = config.tls.as_ref().map(acceptor).transpose()?;
        let accept_task = tokio::spawn(accept_loop(listener, Arc::clone(&state), tls, shutdown_rx));
        tracing::info!(%addr, "testbed started");
        Ok(Testbed {
            addr,
            tls: config.tls.is_some(),
            state,
            shutdown,
            accept_task,
        })
    }

    /// The address actually bound.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR` + `path`; an unspecified bind address (0.0.0.0, ::) is
    /// replaced by loopback so the URL is connectable.
    pub fn url(&self, path: &str) -> String {
        let mut addr = self.addr;
        match addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => addr.set_ip(Ipv4Addr::LOCALHOST.into()),
            IpAddr::V6(ip) if ip.is_unspecified() => addr.set_ip(Ipv6Addr::LOCALHOST.into()),
            _ => {}
        }
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{addr}{path}")
    }

    /// Preflight probes seen (not counted in [`Self::requests`]).
    pub fn probes(&self) -> u64 {
        self.state.stats.probes()
    }

    /// Total counted requests (everything except `/_testbed/...`, `/metrics` and preflight probes).
    pub fn requests(&self) -> u64 {
        self.state.stats.requests()
    }

    /// Zeroes the request counter.
    pub fn reset(&self) {
        self.state.stats.reset();
    }

    /// Stops accepting, lets in-flight requests finish (up to a grace period),
    /// closes all connections and returns.
    pub async fn shutdown(self) {
        self.shutdown.send_replace(true);
        if let Err(e) = self.accept_task.await {
            tracing::error!(error = %e, "testbed accept loop failed");
        }
        tracing::info!(addr = %self.addr, "testbed stopped");
    }
}

/// Resolves once shutdown is requested or the [`Testbed`] handle is dropped.
async fn shutdown_requested(rx: &mut watch::Receiver<bool>) {
    // An error means the sender (the `Testbed`) is gone: stop as well.
    let _ = rx.wait_for(|stop| *stop).await;
}

/// A TLS acceptor offering HTTP/2 and HTTP/1.1 by ALPN.
fn acceptor(identity: &TlsIdentity) -> anyhow::Result<TlsAcceptor> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_slice_iter(identity.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .context("reading the TLS certificate PEM")?;
    let key = PrivateKeyDer::from_pem_slice(identity.key_pem.as_bytes())
        .context("reading the TLS private key PEM")?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("TLS certificate and key")?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

async fn accept_loop(
    listener: TcpListener,
    state: Arc<AppState>,
    tls: Option<TlsAcceptor>,
    mut shutdown_rx: watch::Receiver<bool>,
) {
    let conn_shutdown = shutdown_rx.clone();
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            biased;
            () = shutdown_requested(&mut shutdown_rx) => break,
            Some(done) = conns.join_next(), if !conns.is_empty() => {
                if let Err(e) = done {
                    tracing::error!(error = %e, "connection task failed");
                }
            }
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    conns.spawn(serve_connection(
                        stream,
                        peer,
                        Arc::clone(&state),
                        tls.clone(),
                        conn_shutdown.clone(),
                    ));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
        }
    }
    drop(listener);

    // Every connection saw the same signal and is closing gracefully.
    let drain = async { while conns.join_next().await.is_some() {} };
    if tokio::time::timeout(SHUTDOWN_GRACE, drain).await.is_err() {
        tracing::warn!(
            remaining = conns.len(),
            "grace period over, dropping connections"
        );
        conns.abort_all();
        while conns.join_next().await.is_some() {}
    }
}

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    state: Arc<AppState>,
    tls: Option<TlsAcceptor>,
    shutdown_rx: watch::Receiver<bool>,
) {
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(%peer, error = %e, "set_nodelay failed");
    }
    match tls {
        None => serve_io(stream, peer, state, shutdown_rx).await,
        Some(acceptor) => match acceptor.accept(stream).await {
            Ok(tls_stream) => serve_io(tls_stream, peer, state, shutdown_rx).await,
            Err(e) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
        },
    }
}

/// `/hangup` closing a connection without answering.
#[derive(Debug)]
struct HangUp;

impl std::fmt::Display for HangUp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("hung up on purpose (/hangup)")
    }
}

impl std::error::Error for HangUp {}

/// Serves HTTP/1.1 and HTTP/2 (h2c prior knowledge, or h2 by ALPN over TLS) on one connection.
async fn serve_io<I>(
    io: I,
    peer: SocketAddr,
    state: Arc<AppState>,
    mut shutdown_rx: watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let conn_state = Arc::new(routes::ConnState::from_peer(&state, peer.ip()));
    let service = service_fn(move |req| {
        let state = Arc::clone(&state);
        let conn_state = Arc::clone(&conn_state);
        async move {
            match routes::handle_on(req, &state, &conn_state).await {
                routes::Handled::Respond(response) => Ok(response),
                // An error from the service makes hyper close the connection without a response.
                routes::Handled::HangUp => Err(HangUp),
            }
        }
    });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().keep_alive(true).timer(TokioTimer::new());
    let conn = builder.serve_connection(TokioIo::new(io), service);
    let mut conn = std::pin::pin!(conn);

    let result = tokio::select! {
        result = conn.as_mut() => result,
        () = shutdown_requested(&mut shutdown_rx) => {
            // Finish the request in progress (if any), then close.
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}
