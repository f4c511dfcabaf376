//! What the executors share, kept apart so none imports another for it: where a shard's interval reports go
//! ([`ShardOutput`], one every [`INTERVAL`]), the checked HTTP shard ([`HttpShardSpec`]) and the cache state the
//! HTTP executor carries for a cache shard ([`CacheLookup`], [`ThreadCache`]).

mod cache_state;
mod http_spec;

pub use cache_state::{CacheLookup, Mode, ThreadCache};
pub use http_spec::HttpShardSpec;

use crate::recorder::ShardId;
use loadgrade_common::interval::IntervalReport;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;
use tokio::sync::mpsc;

/// Length of one interval report.
pub const INTERVAL: Duration = Duration::from_secs(1);

/// Where a shard's reports go and who it is.
pub struct ShardOutput {
    pub shard: ShardId,
    pub seq: Arc<AtomicU64>,
    /// Coordinator wall clock (Unix ms) of the start instant.
    pub start_unix_ms: i64,
    pub reports: mpsc::Sender<IntervalReport>,
}
