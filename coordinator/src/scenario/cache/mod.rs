//! The `cache` kind: one part on every live agent, each agent's share a cache shard (lookups of keys from the shared
//! key space); in redis mode the coordinator reads the server's own figures before and after and deletes the run's
//! keys at the end.

mod server;

use crate::report::aggregate::HttpAggregate;
use crate::run::context::RunContext;
use crate::run::part::{Part, run_part_as};
use loadgrade_common::histogram::encode_base64;
use loadgrade_common::interval::IntervalReport;
use loadgrade_common::plan::{CacheSpec, CacheTarget, Scenario};
use loadgrade_common::report::cache::{CacheMetrics, CacheMode};
use loadgrade_common::report::{FindingKind, LatencyStats};
use loadgrade_common::shard::{CacheShard, CacheShardTarget, HttpShard, PartId, Work};
use server::{Info, Server};
use std::collections::BTreeMap;

/// What the server side gave, for the metrics.
#[derive(Default)]
struct ServerView {
    before: Option<Info>,
    after: Option<Info>,
    keys_deleted: Option<u64>,
    /// Why a server figure is missing.
    not_measured: BTreeMap<String, String>,
}

impl ServerView {
    fn note(&mut self, figures: &[&str], why: &str) {
        for f in figures {
            self.not_measured
                .entry((*f).to_owned())
                .or_insert_with(|| why.to_owned());
        }
    }
}

const SERVER_FIGURES: [&str; 5] = [
    "server_hit_rate",
    "cache_memory_bytes",
    "cache_memory_limit_bytes",
    "memory_utilization",
    "evictions",
];

pub async fn run(
    ctx: &mut RunContext,
    scenario: &Scenario,
    spec: &CacheSpec,
) -> Option<CacheMetrics> {
    let seed = spec.seed.unwrap_or_else(rand::random);
    let key_prefix = format!("loadgrade:{}:", ctx.id);
    let mut view = ServerView::default();
    let mut server = None;
    if let CacheTarget::Redis(redis) = &spec.target
        && !ctx.agents_accepted(&scenario.name)
    {
        let why = "not measured: the run's agents did not accept this Redis in preflight (their allowlist, caps or \
                   credentials), and the coordinator does not touch a server its agents may not reach";
        view.note(&SERVER_FIGURES, why);
        view.note(&["keys_deleted"], why);
        // What the plan relies on did not happen: say so (an agent that did accept may still write keys, which then
        // expire after the plan's ttl instead of being deleted).
        let skipped = if redis.flush {
            "the plan asks to flush the database first, and it was not flushed"
        } else {
            "the keys this run writes are not deleted after it (they expire after the plan's ttl)"
        };
        ctx.find(
            FindingKind::CacheServer,
            format!(
                "scenario {:?}: {skipped}: the coordinator touches a Redis only when every agent of the run accepted \
                 it in preflight",
                scenario.name
            ),
        );
    } else if let CacheTarget::Redis(redis) = &spec.target {
        match Server::connect(redis, &ctx.deps.outbound).await {
            Ok(mut s) => {
                if redis.flush
                    && let Err(e) = s.flush_database().await
                {
                    ctx.find(
                        FindingKind::CacheServer,
                        format!("scenario {:?}: the plan asks to flush the database first, and it failed: {e}", scenario.name),
                    );
                }
                match s.info().await {
                    Ok(info) => view.before = Some(info),
                    Err(e) => {
                        view.note(&SERVER_FIGURES, &format!("INFO before the run failed: {e}"))
                    }
                }
                server = Some(s);
            }
            Err(e) => {
                let why = format!(
                    "the coordinator could not use the cache server {}: {e}",
                    loadgrade_common::plan::cache::redacted_url(&redis.url)
                );
                view.note(&SERVER_FIGURES, &why);
                view.note(&["keys_deleted"], &why);
            }
        }
    }
    let target = shard_target(spec);
    let work = |load: HttpShard| {
        Work::Cache(CacheShard {
            load,
            target: target.clone(),
            key_space: spec.key_space,
            zipf: spec.zipf,
            seed,
            key_prefix: key_prefix.clone(),
        })
    };
    let part = Part::new(
        PartId {
            scenario: scenario.name.clone(),
            stage: 0,
        },
        format!("{:?}", scenario.name),
    );
    let aggregate = run_part_as(ctx, &part, &spec.load, &work).await;
    if let Some(a) = &aggregate {
        super::http::only_timeouts(ctx, &part.label, &a.metrics());
    }
    if let (Some(s), CacheTarget::Redis(redis)) = (server.as_mut(), &spec.target) {
        match s.info().await {
            Ok(info) => view.after = Some(info),
            Err(e) => view.note(&SERVER_FIGURES, &format!("INFO after the run failed: {e}")),
        }
        if redis.keep_keys {
            view.note(
                &["keys_deleted"],
                "keep_keys: this run's keys were left in the cache",
            );
        } else {
            match s.delete_prefix(&key_prefix).await {
                Ok(n) => view.keys_deleted = Some(n),
                Err(e) => view.note(
                    &["keys_deleted"],
                    &format!("deleting this run's keys ({key_prefix}*) failed: {e}; they expire with their ttl"),
                ),
            }
        }
    }
    aggregate.map(|a| metrics(spec, &a, view, seed))
}

/// The scenario's metrics from stored intervals alone (the coordinator restarted mid-run): the server was not read
/// after the run.
pub fn replay(
    scenario: &Scenario,
    spec: &CacheSpec,
    intervals: &[IntervalReport],
) -> Option<CacheMetrics> {
    let of_scenario: Vec<&IntervalReport> = intervals
        .iter()
        .filter(|i| i.part.scenario == scenario.name && i.part.stage == 0)
        .collect();
    if of_scenario.is_empty() {
        return None;
    }
    let aggregate = crate::scenario::replayed(spec.load.clone(), of_scenario);
    let mut view = ServerView::default();
    let why = "the coordinator stopped mid-run: the cache server was not read after it";
    view.note(&SERVER_FIGURES, why);
    view.note(&["keys_deleted"], why);
    Some(metrics(spec, &aggregate, view, spec.seed.unwrap_or(0)))
}

/// The metrics of a cache load: the client's merged view beside the server's.
fn metrics(
    spec: &CacheSpec,
    aggregate: &HttpAggregate,
    mut view: ServerView,
    seed: u64,
) -> CacheMetrics {
    let load = aggregate.metrics();
    let c = aggregate.cache();
    let looked_up = c.hits + c.misses;
    let hit = LatencyStats::from_histogram(&c.hit);
    let miss = LatencyStats::from_histogram(&c.miss);
    let mode = spec.mode();
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    };
    let mut not_measured = std::mem::take(&mut view.not_measured);
    let mut why = |figure: &str, reason: &str| {
        not_measured
            .entry(figure.to_owned())
            .or_insert_with(|| reason.to_owned());
    };
    if looked_up == 0 {
        why("hit_rate", "no lookup succeeded");
    }
    if hit.is_none() {
        why("hit_latency_ms", "no lookup was a hit");
    }
    if miss.is_none() {
        why("miss_latency_ms", "no lookup was a miss");
    }
    if hit.is_none() || miss.is_none() {
        why("speedup", "it needs both hits and misses");
        why("speedup_p50", "it needs both hits and misses");
    }
    if mode == CacheMode::Http {
        let inside = "http mode: the cache is inside the application";
        for f in SERVER_FIGURES
            .iter()
            .chain(&["keys_deleted", "lookup_latency_ms"])
        {
            why(f, inside);
        }
    }
    for (figure, reason) in [
        ("throughput_rps", "throughput_rps"),
        ("success_rps", "success_rps"),
    ] {
        if let Some(r) = load.not_measured.get(reason) {
            why(figure, r);
        }
    }
    let server = match (view.before, view.after) {
        (Some(b), Some(a)) => Some((b, a)),
        _ => None,
    };
    let server_hit_rate = server.and_then(|(b, a)| {
        let hits = a.keyspace_hits.saturating_sub(b.keyspace_hits);
        let misses = a.keyspace_misses.saturating_sub(b.keyspace_misses);
        (hits + misses > 0).then(|| hits as f64 / (hits + misses) as f64)
    });
    let limit = view.after.map(|a| a.maxmemory).filter(|m| *m > 0);
    if view.after.is_some() && limit.is_none() {
        why(
            "cache_memory_limit_bytes",
            "the server has no maxmemory limit",
        );
        why("memory_utilization", "the server has no maxmemory limit");
    }
    let memory = view.after.map(|a| a.used_memory);
    CacheMetrics {
        mode,
        requests: load.requests,
        hits: c.hits,
        misses: c.misses,
        errors: load.errors,
        errors_by_class: load.errors_by_class,
        hit_rate: (looked_up > 0).then(|| c.hits as f64 / looked_up as f64),
        server_hit_rate,
        hit_latency_ms: hit,
        miss_latency_ms: miss,
        lookup_latency_ms: (mode == CacheMode::Redis)
            .then(|| LatencyStats::from_histogram(&c.lookup))
            .flatten(),
        speedup: ratio(miss.map(|m| m.mean), hit.map(|h| h.mean)),
        speedup_p50: ratio(miss.map(|m| m.p50), hit.map(|h| h.p50)),
        throughput_rps: load.throughput_rps,
        success_rps: load.success_rps,
        duration_s: load.duration_s,
        cache_memory_bytes: memory,
        cache_memory_limit_bytes: limit,
        memory_utilization: match (memory, limit) {
            (Some(m), Some(l)) => Some(m as f64 / l as f64),
            _ => None,
        },
        evictions: server.map(|(b, a)| a.evicted_keys.saturating_sub(b.evicted_keys)),
        keys_deleted: view.keys_deleted,
        seed,
        key_space: spec.key_space,
        zipf: spec.zipf,
        hdr_hit: encode_base64(&c.hit).unwrap_or_default(),
        hdr_miss: encode_base64(&c.miss).unwrap_or_default(),
        not_measured,
    }
}

/// Where the cache is, as each agent's shard names it.
pub fn shard_target(spec: &CacheSpec) -> CacheShardTarget {
    match &spec.target {
        CacheTarget::Redis(r) => CacheShardTarget::Redis {
            url: r.url.clone(),
            password_env: r.password_env.clone(),
            ttl: r.ttl,
        },
        CacheTarget::Http {
            hit_header,
            hit_value,
        } => CacheShardTarget::Http {
            hit_header: hit_header.clone(),
            hit_value: hit_value.clone(),
        },
    }
}
