//! loadgrade's reference HTTP target: a small hyper server with fault knobs
//! (delays, arbitrary statuses, periodic stalls) and its own request counters.
//!
//! Routes (anything else: 404, still counted):
//!
//! | route | behaviour |
//! |---|---|
//! | `GET /api/items?limit=N` | JSON array of N items (default 20, max 1000) |
//! | `GET /api/complete?key=K&ms=M&capacity=C&size=S` | K's answer (S bytes, default 256) from an LRU cache of C entries (default 1000) before an origin of M ms (default 200); `X-Cache: HIT` or `MISS`; hits, misses, evictions, bytes on /metrics |
//! | `GET /health` | `ok` |
//! | `GET /delay?ms=N` | sleep N ms (max 60000), then 200 |
//! | `GET /status/CODE` | respond with CODE (200..=599; else 400) |
//! | `GET /stall?period_ms=P&pause_ms=S` | every P ms, hold all responses for S ms |
//! | `GET /work?ms=N&slots=K` | a known capacity: K slots of N ms each, requests beyond K queue |
//! | `GET /slow?every=N&ms=M` | every Nth request (across connections) sleeps M ms, the others answer at once |
//! | `GET` or `POST /hangup?every=N` | the Nth request on each connection is read, counted, and the connection closed unanswered |
//! | `POST /_testbed/allocate?mb=N`, `POST /_testbed/free` | hold (touched) memory, or drop it |
//! | `GET /_testbed/stats` | `{"requests": N}` |
//! | `GET /_testbed/sources` | `{"ADDRESS": N, ...}`: counted requests by source address |
//! | `POST /_testbed/reset` | zero the request counters (total and by source), 204 |
//! | `GET /_testbed/pid` | process id |
//! | `GET /metrics` | Prometheus text exposition: counters, cache figures, `--metrics-series N` synthetic histogram series, and `loadgrade_testbed_exposed_series` (how many series the page holds) |
//!
//! Requests under `/_testbed/` and to `/metrics` are not counted.

mod cache;
pub mod hostile;
mod routes;
mod server;
mod stats;
mod synthetic;

use std::net::{Ipv4Addr, SocketAddr};

pub use server::Testbed;

/// Where the testbed listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestbedConfig {
    /// Address to bind; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Serve HTTPS (HTTP/2 and HTTP/1.1 by ALPN) with this certificate. Default: plain HTTP (HTTP/1.1, and HTTP/2
    /// with prior knowledge).
    pub tls: Option<TlsIdentity>,
    /// Synthetic histogram series on /metrics (whole histograms of 13 series: at least this many, at most
    /// 200,000), for scrape scenarios. Default: 0.
    pub metrics_series: u64,
}

/// A certificate chain and its private key, PEM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsIdentity {
    pub cert_pem: String,
    pub key_pem: String,
}

impl TestbedConfig {
    /// Plain HTTP on `listen`.
    pub fn plain(listen: SocketAddr) -> Self {
        TestbedConfig {
            listen,
            tls: None,
            metrics_series: 0,
        }
    }
}

impl Default for TestbedConfig {
    fn default() -> Self {
        TestbedConfig::plain(SocketAddr::from((Ipv4Addr::LOCALHOST, 8080)))
    }
}

/// Runs a testbed until ctrl-c (or SIGTERM on Unix), then shuts it down.
pub async fn run(config: TestbedConfig) -> anyhow::Result<()> {
    let testbed = Testbed::start(config).await?;
    println!("loadgrade-testbed listening on http://{}", testbed.addr());
    let signal = wait_for_signal().await;
    tracing::info!("shutting down");
    testbed.shutdown().await;
    signal
}

#[cfg(unix)]
async fn wait_for_signal() -> anyhow::Result<()> {
    use anyhow::Context as _;
    use tokio::signal::unix::{SignalKind, signal};

    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    tokio::select! {
        res = tokio::signal::ctrl_c() => res.context("waiting for ctrl-c"),
        _ = term.recv() => Ok(()),
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() -> anyhow::Result<()> {
    use anyhow::Context as _;

    tokio::signal::ctrl_c().await.context("waiting for ctrl-c")
}
