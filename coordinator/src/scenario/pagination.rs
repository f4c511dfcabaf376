//! The `pagination` kind: one part on `agents` agents (one by default), each timing every depth's OFFSET and
//! keyset queries; with several agents and a table to seed, one agent seeds it first in a part of its own. The
//! depths' histograms are merged exactly across agents; the speedup is the ratio of medians.

use crate::report::aggregate::HttpAggregate;
use crate::run::context::RunContext;
use crate::run::part::{Part, run_part_as};
use loadgrade_common::histogram::encode_base64;
use loadgrade_common::interval::IntervalReport;
use loadgrade_common::pagination_sql::Statements;
use loadgrade_common::plan::pagination::{PaginationSpec, redacted_database_url};
use loadgrade_common::plan::{HttpRequest, HttpSpec, LoadModel, Scenario};
use loadgrade_common::report::LatencyStats;
use loadgrade_common::report::pagination::{DepthMetrics, Explain, PaginationMetrics};
use loadgrade_common::shard::{PaginationPhase, PaginationShard, PartId, Work};
use std::collections::BTreeMap;

pub async fn run(
    ctx: &mut RunContext,
    scenario: &Scenario,
    spec: &PaginationSpec,
) -> Option<PaginationMetrics> {
    let live = ctx
        .agents
        .iter()
        .filter(|a| !ctx.lost.contains(&a.name))
        .count();
    let agents = usize::try_from(spec.agents)
        .unwrap_or(usize::MAX)
        .min(live.max(1));
    let what = format!(
        "OFFSET vs keyset on {} table {}, pages {:?}, {} timed runs per query and depth on {} connection(s) each",
        spec.backend.as_str(),
        spec.table,
        spec.pages,
        spec.iterations,
        spec.concurrency
    );
    let part = |stage: u32, label: String, agents: usize, what: String, timed: bool| Part {
        id: PartId {
            scenario: scenario.name.clone(),
            stage,
        },
        label,
        max_agents: Some(agents),
        what: Some(what),
        timed,
    };
    let work = |phase: PaginationPhase| {
        let shard = PaginationShard {
            spec: spec.clone(),
            phase,
        };
        move |_: loadgrade_common::shard::HttpShard| Work::Pagination(shard.clone())
    };
    let label = format!("{:?}", scenario.name);
    let measure_stage = if let (Some(rows), true) = (spec.seed_rows, agents > 1) {
        let seeding = part(
            0,
            format!("{label} (seeding)"),
            1,
            format!("seeding {} to {rows} rows on one agent", spec.table),
            false,
        );
        let seeded =
            run_part_as(ctx, &seeding, &load(spec, 1), &work(PaginationPhase::Seed)).await?;
        // The agent that seeded says what the table holds once it is ready; without that, nothing to measure.
        seeded.pagination().table.as_ref()?;
        1
    } else {
        0
    };
    let phase = if spec.seed_rows.is_some() && agents == 1 {
        PaginationPhase::SeedAndMeasure
    } else {
        PaginationPhase::Measure
    };
    let measuring = part(measure_stage, label, agents, what, true);
    let aggregate = run_part_as(ctx, &measuring, &load(spec, agents), &work(phase)).await?;
    Some(metrics(spec, &aggregate, agents as u64))
}

/// The scenario's metrics from stored intervals alone (the coordinator restarted mid-run).
pub fn replay(
    scenario: &Scenario,
    spec: &PaginationSpec,
    intervals: &[IntervalReport],
) -> Option<PaginationMetrics> {
    let of_scenario: Vec<&IntervalReport> = intervals
        .iter()
        .filter(|i| i.part.scenario == scenario.name)
        .collect();
    if of_scenario.is_empty() {
        return None;
    }
    let agents = of_scenario
        .iter()
        .filter(|i| i.pagination.as_ref().is_some_and(|p| !p.depths.is_empty()))
        .map(|i| i.agent.as_str())
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    let aggregate = super::replayed(load(spec, agents.max(1)), of_scenario);
    Some(metrics(spec, &aggregate, agents as u64))
}

/// The run machinery's view of a pagination part: a closed load of `concurrency` connections per agent, bounded
/// by `max_duration` (the agents stop there themselves), each query given up at `query_timeout`.
fn load(spec: &PaginationSpec, agents: usize) -> HttpSpec {
    let connections = spec.concurrency.saturating_mul(agents as u64).max(1);
    HttpSpec {
        request: HttpRequest {
            url: redacted_database_url(&spec.database),
            method: "SELECT".to_owned(),
            headers: Vec::new(),
            body: Vec::new(),
            http2: false,
            ca_file: None,
            timeout: spec.query_timeout,
            idempotent: true,
            max_response_header_bytes:
                loadgrade_common::plan::request::DEFAULT_RESPONSE_HEADER_BYTES,
        },
        model: LoadModel::Closed,
        rate: 0,
        connections,
        duration: Some(spec.max_duration),
        stages: Vec::new(),
        arrivals: loadgrade_common::plan::Arrivals::Even,
        requests: None,
        warmup: std::time::Duration::ZERO,
        max_backlog: 0,
    }
}

fn metrics(spec: &PaginationSpec, aggregate: &HttpAggregate, agents: u64) -> PaginationMetrics {
    let p = aggregate.pagination();
    let load = aggregate.metrics();
    let mut not_measured = BTreeMap::new();
    let depths: Vec<DepthMetrics> = spec
        .pages
        .iter()
        .map(|&page| {
            let merged = p.depths.get(&page);
            let offset_ms = merged.and_then(|d| LatencyStats::from_histogram(&d.0));
            let cursor_ms = merged.and_then(|d| LatencyStats::from_histogram(&d.1));
            DepthMetrics {
                page,
                offset: spec.offset_of(page),
                offset_ms,
                cursor_ms,
                speedup: ratio(offset_ms.map(|s| s.p50), cursor_ms.map(|s| s.p50)),
                offset_queries: merged.map_or(0, |d| d.0.len()),
                cursor_queries: merged.map_or(0, |d| d.1.len()),
                rows_per_page: merged.map_or(0, |d| d.2),
                hdr_offset: merged
                    .and_then(|d| encode_base64(&d.0).ok())
                    .unwrap_or_default(),
                hdr_cursor: merged
                    .and_then(|d| encode_base64(&d.1).ok())
                    .unwrap_or_default(),
            }
        })
        .collect();
    let deepest = depths.last();
    let speedup_at_deepest = deepest.and_then(|d| d.speedup);
    if speedup_at_deepest.is_none() {
        not_measured.insert(
            "speedup_at_deepest".to_owned(),
            format!(
                "page {} was not timed with both queries (see the findings)",
                spec.pages.last().copied().unwrap_or(0)
            ),
        );
    }
    let table = p.table.as_ref();
    if table.is_none() {
        not_measured.insert(
            "rows".to_owned(),
            "no agent got as far as checking the table (see the findings)".to_owned(),
        );
    }
    let statements = Statements::new(spec);
    PaginationMetrics {
        backend: spec.backend.as_str().to_owned(),
        server_version: table
            .map(|t| t.server_version.clone())
            .filter(|v| !v.is_empty()),
        database: redacted_database_url(&spec.database),
        table: spec.table.clone(),
        key: spec.key.clone(),
        rows: table.map(|t| t.rows),
        seeded: table.is_some_and(|t| t.seeded),
        page_size: spec.page_size,
        iterations: spec.iterations,
        concurrency: spec.concurrency,
        agents,
        queries: load.requests,
        errors: load.errors,
        errors_by_class: load.errors_by_class,
        speedup_at_deepest,
        offset_at_deepest_ms: deepest.and_then(|d| d.offset_ms),
        cursor_at_deepest_ms: deepest.and_then(|d| d.cursor_ms),
        depths,
        explain: table
            .filter(|t| !t.explain_method.is_empty())
            .map(|t| Explain {
                method: t.explain_method.clone(),
                offset: t.explain_offset.clone(),
                cursor: t.explain_cursor.clone(),
            }),
        offset_statement: statements.offset,
        cursor_statement: statements.cursor_next,
        not_measured,
    }
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}
