//! An HTTP shard checked and ready to run (a cache shard is one too, with its lookups): what the HTTP executor's
//! load threads and the cache's lookups both read. Built by `HttpShardSpec::prepare` in `crate::http`.

use super::CacheLookup;
use crate::allowlist::Resolved;
use crate::http::HttpTarget;
use crate::http::transport::Transport;
use loadgrade_common::plan::{Arrivals, LoadModel};
use loadgrade_common::shard::ShardProfile;
use std::sync::Arc;
use std::time::Duration;

/// A shard checked and ready to run.
#[derive(Debug)]
pub struct HttpShardSpec {
    pub target: HttpTarget,
    pub transport: Transport,
    pub model: LoadModel,
    /// Open model: how arrivals are spaced.
    pub arrivals: Arrivals,
    pub profile: ShardProfile,
    /// Open model: this agent's connection cap.
    pub connections: u64,
    pub warmup: Duration,
    /// Open model: this agent's backlog.
    pub max_backlog: u64,
    pub timeout: Duration,
    pub max_requests: Option<u64>,
    /// Load threads (each its own current-thread runtime).
    pub threads: usize,
    /// How the agent's part is split over its threads: for the open model each thread's connections (so a thread
    /// gets rate and backlog in proportion to the connections it has), else equal weights.
    pub thread_weights: Vec<u64>,
    /// A stale kept-alive connection may be retried once (the request is idempotent).
    pub idempotent: bool,
    /// What connections are checked against when they are made.
    pub allowed: Resolved,
    /// Longest the shard may run (the agent's `--max-duration`).
    pub max_duration: Option<Duration>,
    /// A cache shard: each request is a lookup of a key (crate::cache).
    pub cache: Option<Arc<CacheLookup>>,
    /// Injected fault: block every load thread for `.1` once every `.0`.
    #[cfg(feature = "fault-injection")]
    pub block: Option<(Duration, Duration)>,
}
