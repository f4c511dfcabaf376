//! The executors: one module per kind of work ([`crate::http`], [`crate::pagination`], [`crate::scrape`]; a cache
//! shard runs on the HTTP executor), tied together here. A shard is prepared (checked against this agent's allowlist and limits, refused with a reason if it cannot run) and then run.

use crate::AgentConfig;
use crate::http;
use crate::shard_io::{HttpShardSpec, ShardOutput};
use loadgrade_common::shard::Work;
use std::sync::Arc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Why a shard is refused before any load.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("this is a probe agent (--probe-only): it runs no load")]
    ProbeOnly,
    #[error(
        "the start instant is {ahead_ms} ms ahead of this agent's clock (at most {max_ms} ms is expected): are the \
         clocks of agent and coordinator far apart?"
    )]
    StartTooFar { ahead_ms: i64, max_ms: i64 },
    #[error("the assignment does not convert: {0}")]
    Wire(#[from] loadgrade_proto::ConvertError),
    #[error(transparent)]
    Http(#[from] http::Refusal),
    #[error(transparent)]
    Cache(crate::cache::Refusal),
    #[error(transparent)]
    Pagination(#[from] crate::pagination::Refusal),
    #[error(transparent)]
    Scrape(#[from] crate::scrape::Refusal),
}

/// Why a running shard ended with incomplete figures.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error(transparent)]
    Http(#[from] http::Failure),
    #[error(transparent)]
    Pagination(#[from] crate::pagination::Failure),
    #[error(transparent)]
    Scrape(#[from] crate::scrape::Failure),
}

/// A shard ready to run.
#[derive(Debug)]
pub enum Prepared {
    Http(Arc<HttpShardSpec>),
    Pagination(Arc<crate::pagination::Prepared>),
    Scrape(Arc<crate::scrape::Prepared>),
}

/// Checks `work` can run on this agent.
pub async fn prepare(work: Work, config: &AgentConfig) -> Result<Prepared, Refusal> {
    if config.probe_only {
        return Err(Refusal::ProbeOnly);
    }
    Ok(match work {
        Work::Http(shard) => {
            #[allow(unused_mut)]
            let mut spec =
                HttpShardSpec::prepare(shard, &config.allowlist, &config.caps, config.cores)
                    .await?;
            #[cfg(feature = "fault-injection")]
            {
                spec.block = config.faults.block_load_threads;
            }
            Prepared::Http(Arc::new(spec))
        }
        // A cache shard runs on the HTTP executor, each request a lookup.
        Work::Cache(shard) => Prepared::Http(Arc::new(
            crate::cache::prepare(shard, &config.allowlist, &config.caps, config.cores).await?,
        )),
        Work::Pagination(shard) => Prepared::Pagination(Arc::new(
            crate::pagination::prepare(shard, &config.allowlist, config.caps.max_connections)
                .await?,
        )),
        Work::Scrape(shard) => Prepared::Scrape(Arc::new(
            crate::scrape::prepare(
                shard,
                &config.allowlist,
                &config.caps,
                config.prometheus.as_deref(),
            )
            .await?,
        )),
    })
}

impl Prepared {
    /// What the shard sends load to, for logs.
    /// The target for logs: scheme, host, port and path; the query is left out (it may carry a key).
    pub fn target(&self) -> &str {
        match self {
            Prepared::Http(spec) => spec.target.url.split(['?', '#']).next().unwrap_or_default(),
            Prepared::Pagination(p) => &p.shown,
            Prepared::Scrape(p) => &p.shown,
        }
    }

    /// Runs the shard from `start` until it ends by itself or `stop` fires. Returns the interval reports sent.
    pub async fn run(
        self,
        start: Instant,
        output: ShardOutput,
        stop: CancellationToken,
    ) -> Result<u64, Failure> {
        match self {
            Prepared::Http(spec) => Ok(http::run(spec, start, output, stop).await?),
            Prepared::Pagination(p) => Ok(crate::pagination::run(p, start, output, stop).await?),
            Prepared::Scrape(p) => Ok(crate::scrape::run(p, start, output, stop).await?),
        }
    }
}
