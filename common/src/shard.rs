//! Work handed to one agent: which part of the plan (a scenario, or one step of a ramp), when to start, and its
//! shard of the load. One definition used by both sides; `loadgrade-proto` converts it to and from the wire.

use crate::plan::scrape::ScrapeSpec;
use crate::plan::{Arrivals, HttpRequest, LoadModel, PaginationSpec};
use crate::profile::{Profile, part};
use std::time::Duration;

/// A part of a run: a scenario, or one stage of it (a ramp's step). Intervals and shard outcomes name it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PartId {
    pub scenario: String,
    /// 0 for a scenario run in one part; the step index of a ramp.
    pub stage: u32,
}

/// A shard assigned to an agent.
#[derive(Debug, Clone, PartialEq)]
pub struct Assignment {
    pub run_id: String,
    pub part: PartId,
    /// When to start, coordinator wall clock, Unix epoch milliseconds.
    pub start_at_unix_ms: i64,
    /// An agent that hears nothing from the coordinator this long stops the run's load.
    pub orphan_timeout: Duration,
    pub work: Work,
}

/// What a shard does: one variant per kind of executor.
#[derive(Debug, Clone, PartialEq)]
pub enum Work {
    Http(HttpShard),
    Cache(CacheShard),
    Pagination(PaginationShard),
    Scrape(ScrapeShard),
}

/// One agent's scrape work: the scenario as planned, and which of its intervals this part measures.
#[derive(Debug, Clone, PartialEq)]
pub struct ScrapeShard {
    pub spec: ScrapeSpec,
    /// Index into `spec.intervals`.
    pub interval: usize,
}

impl ScrapeShard {
    /// The interval this part measures.
    pub fn interval(&self) -> Option<Duration> {
        self.spec.intervals.get(self.interval).copied()
    }
}

/// One agent's pagination work: the scenario as planned (every agent times every depth), and which phase.
#[derive(Debug, Clone, PartialEq)]
pub struct PaginationShard {
    pub spec: PaginationSpec,
    pub phase: PaginationPhase,
}

/// What a pagination shard does. With several agents and a seeded table, one agent seeds first (a part of its
/// own) and then all measure; otherwise one shard does both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaginationPhase {
    /// Check the table and seed it if the plan asks; time nothing.
    Seed,
    /// Check the table (seeded with exactly `seed_rows` when the plan asks) and time every depth.
    Measure,
    /// Both.
    SeedAndMeasure,
}

/// One agent's shard of a cache scenario: its part of the load, each unit a lookup of a key.
#[derive(Debug, Clone, PartialEq)]
pub struct CacheShard {
    /// The load, and the request of a lookup (http mode) or of a miss's origin fetch (redis mode); its URL holds
    /// `{key}`.
    pub load: HttpShard,
    pub target: CacheShardTarget,
    pub key_space: u64,
    pub zipf: f64,
    pub seed: u64,
    /// Every key of the run starts with it.
    pub key_prefix: String,
}

/// Where the cache is, as an agent needs it.
#[derive(Debug, Clone, PartialEq)]
pub enum CacheShardTarget {
    Redis {
        url: String,
        password_env: Option<String>,
        ttl: Duration,
    },
    Http {
        hit_header: String,
        hit_value: String,
    },
}

impl CacheShard {
    /// The key a lookup of key number `n` uses.
    pub fn key(&self, n: u64) -> String {
        format!("{}{n}", self.key_prefix)
    }
}

/// One agent's shard of an HTTP load (an `http` scenario or a ramp step).
#[derive(Debug, Clone, PartialEq)]
pub struct HttpShard {
    pub request: HttpRequest,
    pub model: LoadModel,
    pub arrivals: Arrivals,
    /// The plan's load over time and this agent's place in the split.
    pub profile: ShardProfile,
    /// Open model: this agent's cap on connections. Closed model: unused (the profile decides).
    pub connections: u64,
    pub warmup: Duration,
    /// Open model: this agent's arrivals that may wait for a free connection before new ones are dropped.
    pub max_backlog: u64,
    /// This agent's share of the request budget; `None`: the profile's length decides.
    pub max_requests: Option<u64>,
}

/// The plan's load over time (plan totals) and how it is split: this agent's part of a total `T` is
/// `part(T, weights, index)` (largest remainder), so the parts of all agents sum exactly to `T` every second.
#[derive(Debug, Clone, PartialEq)]
pub struct ShardProfile {
    pub profile: Profile,
    /// Every agent's weight, shared by all the part's shards (one copy however many agents).
    pub weights: std::sync::Arc<[u64]>,
    pub index: usize,
}

impl ShardProfile {
    /// This agent's part of a plan total.
    pub fn part_of(&self, total: u64) -> u64 {
        part(total, &self.weights, self.index)
    }
}
