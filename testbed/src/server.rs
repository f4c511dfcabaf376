//! The running testbed: listener, accept loop, per-connection tasks and graceful shutdown.

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use crate::TestbedConfig;
use crate::routes::{self, AppState};

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
        let state = Arc::new(AppState::new());
        let (shutdown, shutdown_rx) = watch::channel(false);
        let accept_task = tokio::spawn(accept_loop(listener, Arc::clone(&state), shutdown_rx));
        tracing::info!(%addr, "testbed started");
        Ok(Testbed {
            addr,
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
        format!("http://{addr}{path}")
    }

    /// Total counted requests (everything except `/_testbed/...` and `/metrics`).
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

async fn accept_loop(
    listener: TcpListener,
    state: Arc<AppState>,
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
    mut shutdown_rx: watch::Receiver<bool>,
) {
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(%peer, error = %e, "set_nodelay failed");
    }
    let service = service_fn(move |req| {
        let state = Arc::clone(&state);
        async move { Ok::<_, Infallible>(routes::handle(req, &state).await) }
    });
    let conn = http1::Builder::new()
        .keep_alive(true)
        .timer(TokioTimer::new())
        .serve_connection(TokioIo::new(stream), service);
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
