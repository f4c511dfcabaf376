//! loadgrade's agent: runs on a load box, dials out to the coordinator (it listens on no port), and runs the
//! shards it is assigned against targets inside its own allowlist. It speaks the protocol only: nothing here knows
//! the coordinator's code.

pub mod allowlist;
pub mod cache;
pub mod config_flags;
pub mod cpu;
mod cutting;
pub mod executor;
pub mod file_budget;
pub mod http;
pub mod identity;
pub mod pagination;
pub mod preflight;
pub mod probe;
pub mod procfs;
pub mod recorder;
pub mod redis_conn;
pub mod scrape;
pub mod session;
pub mod shard_io;
pub mod signal;
pub mod spool;

pub use allowlist::Allowlist;
pub use session::SessionError;

use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How an agent runs.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// Coordinator URL, e.g. `https://10.0.0.5:7700`.
    pub coordinator: String,
    /// Mutual TLS with the coordinator (an https:// URL needs it). Default: none (plain HTTP/2 on loopback).
    pub tls: Option<identity::AgentTls>,
    /// Name shown in reports; unique per coordinator.
    pub name: String,
    /// Sharding weight. Default: logical cores.
    pub cores: u32,
    /// Where this agent may send load. Default: nowhere (the binary adds `--allow` and `--allow-loopback`;
    /// in-process agents allow loopback).
    pub allowlist: Allowlist,
    /// Limits no shard may exceed, whatever the plan says.
    pub caps: Caps,
    /// Dial again after a lost session. Default: true.
    pub reconnect: bool,
    /// A probe agent on a target host: answers the coordinator's probe requests (process or cgroup figures of
    /// this host) and runs no load. Default: false.
    pub probe_only: bool,
    /// Where interval reports are kept until acknowledged. `None`: in memory only. Default: none (the binary
    /// sets one).
    pub spool_dir: Option<std::path::PathBuf>,
    /// The one Prometheus binary a scrape scenario may run here (the operator's choice, never the plan's).
    /// Default: none (the binary sets `--prometheus`; in-process agents take `prometheus` from PATH).
    pub prometheus: Option<std::path::PathBuf>,
    /// The operator's labels; a plan's `agents = { .. }` selects agents by them. Default: none.
    pub labels: std::collections::BTreeMap<String, String>,
    /// Faults to inject (tests only).
    #[cfg(feature = "fault-injection")]
    pub faults: Faults,
}

/// Limits of this agent that no plan can exceed: a shard beyond one is refused (the run is INVALID, saying why).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Caps {
    /// Most arrivals per second of an open-model shard on this agent.
    pub max_rate: Option<u64>,
    /// Most connections of a shard on this agent.
    pub max_connections: Option<u64>,
    /// Longest a shard may run (warm-up and measured phase); a request budget alone is stopped there.
    pub max_duration: Option<Duration>,
}

/// Faults an agent can be told to have (feature `fault-injection`, for tests).
#[cfg(feature = "fault-injection")]
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Every load thread blocks (a synchronous sleep on its event loop) for `.1` once every `.0`.
    pub block_load_threads: Option<(Duration, Duration)>,
}

impl AgentConfig {
    pub fn new(coordinator: impl Into<String>, name: impl Into<String>) -> Self {
        AgentConfig {
            coordinator: coordinator.into(),
            tls: None,
            name: name.into(),
            cores: std::thread::available_parallelism()
                .map_or(1, |n| u32::try_from(n.get()).unwrap_or(1)),
            allowlist: Allowlist::default(),
            caps: Caps::default(),
            reconnect: true,
            probe_only: false,
            spool_dir: None,
            prometheus: None,
            labels: std::collections::BTreeMap::new(),
            #[cfg(feature = "fault-injection")]
            faults: Faults::default(),
        }
    }
}

/// Longest pause between reconnect attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    Session(#[from] SessionError),
    #[error(transparent)]
    Spool(#[from] spool::SpoolError),
    #[error(
        "TLS with coordinator {url} failed {times} times with no session between ({why}): check --tls-ca, \
         --tls-cert and their dates on both sides; not dialing again"
    )]
    TlsRefused {
        url: String,
        times: u32,
        why: String,
    },
}

/// TLS refusals, with no session between them, after which the agent stops dialing (a certificate problem does not
/// heal by itself).
pub const MAX_TLS_REFUSALS: u32 = 5;

/// Runs the agent until `shutdown` fires (or, without `reconnect`, until the first session ends).
pub async fn run(config: AgentConfig, shutdown: CancellationToken) -> Result<(), AgentError> {
    let spool = std::sync::Arc::new(match &config.spool_dir {
        Some(dir) => spool::Spool::open(dir)?,
        None => spool::Spool::in_memory(),
    });
    // Connections are file descriptors: take the whole hard limit (shards are still checked against it).
    if let Err(e) = rlimit::increase_nofile_limit(u64::MAX) {
        tracing::warn!("cannot raise the open-file limit: {e}");
    }
    let mut backoff = Duration::from_millis(200);
    // The last TLS refusal and how many times in a row it came.
    let mut refusals: (String, u32) = (String::new(), 0);
    loop {
        // A new epoch for every session: sequence numbers start again at 0 in it, so a later session's intervals
        // never collide with an earlier one's stored (run, agent, epoch, seq).
        let epoch: u64 = rand::random();
        let result = session::run_once(&config, epoch, &spool, &shutdown).await;
        if shutdown.is_cancelled() {
            return Ok(());
        }
        // TLS refusals with no welcomed session between them. A refused client certificate reaches the agent as
        // its alert on some tries and as a bare closed connection on others (whichever layer reads first): those
        // neither count nor reset; a session that got as far as the welcome does.
        let welcomed = result
            .as_ref()
            .map_or_else(SessionError::was_welcomed, |()| true);
        let mut refusal = result.as_ref().err().and_then(SessionError::tls_refusal);
        if let (Some(tls), false, None) = (&config.tls, welcomed, &refusal)
            && result.is_err()
        {
            refusal = session::tls_check::certificate_refused(&config.coordinator, tls).await;
        }
        // A session that was welcomed worked: the next one is tried at once, not after the pauses before it.
        if welcomed {
            backoff = Duration::from_millis(200);
        }
        let refused_now = refusal.is_some();
        match refusal {
            Some(why) => refusals = (why, refusals.1 + 1),
            None if welcomed => refusals = (String::new(), 0),
            None => {}
        }
        if refusals.1 >= MAX_TLS_REFUSALS {
            return Err(AgentError::TlsRefused {
                url: config.coordinator.clone(),
                times: refusals.1,
                why: refusals.0,
            });
        }
        match result {
            Ok(()) => tracing::info!("coordinator closed the session"),
            Err(e) if !config.reconnect || e.is_permanent() => return Err(e.into()),
            // The coordinator's refusal names the agent and the fix; this adds only why it dials again.
            Err(e) if e.is_name_taken() => tracing::error!(
                "{e}; dialing again in {backoff:?} in case the holder is this agent's own previous session, not yet \
                 timed out"
            ),
            Err(_) if refused_now => tracing::warn!(
                "TLS with the coordinator failed: {} ({} of {MAX_TLS_REFUSALS} before this agent gives up); dialing \
                 again in {backoff:?}",
                refusals.0,
                refusals.1
            ),
            Err(e) => tracing::warn!("{e}; dialing again in {backoff:?}"),
        }
        if !config.reconnect {
            return Ok(());
        }
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = shutdown.cancelled() => return Ok(()),
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}
