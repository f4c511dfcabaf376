//! The report page, once for both formats: the verdict and its reasons, every scenario (its kind's section, then its
//! thresholds) and the agents with their generator health.

use super::doc::{Block, Inline, count, figure, text};
use super::{cache, http, pagination, ramp, scrape};
use loadgrade_common::report::{Report, ScenarioMetrics, ScenarioReport};

pub fn blocks(report: &Report) -> Vec<Block> {
    let mut blocks = vec![
        Block::Heading(
            1,
            vec![text(format!("loadgrade report: {}", report.plan_name))],
        ),
        Block::Verdict {
            verdict: report.verdict,
            grade: report.grade,
            reason: report.grade_reason.clone(),
        },
    ];
    if !report.verdict_reasons.is_empty() {
        blocks.push(Block::List(
            report
                .verdict_reasons
                .iter()
                .map(|r| vec![text(r.as_str())])
                .collect(),
        ));
    }
    blocks.push(Block::Paragraph(vec![
        text("Run "),
        Inline::Code(report.run_id.clone()),
        text(format!(
            ", {} to {}{} · loadgrade {}.",
            report.started_at,
            report.finished_at,
            super::junit::run_seconds(report)
                .filter(|s| *s > 0.0)
                .map_or_else(String::new, |s| format!(" ({s:.1} s)")),
            if report.tool_version.is_empty() {
                "(version not recorded)"
            } else {
                report.tool_version.as_str()
            }
        )),
    ]));
    blocks.push(overview(report));
    for scenario in &report.scenarios {
        self::scenario(&mut blocks, scenario);
    }
    blocks.push(Block::Heading(2, vec![text("Agents")]));
    blocks.push(agents(report));
    blocks
}

fn scenario(blocks: &mut Vec<Block>, s: &ScenarioReport) {
    blocks.push(Block::Heading(
        2,
        vec![
            text("Scenario "),
            Inline::Code(s.name.clone()),
            text(format!(" ({})", s.kind)),
        ],
    ));
    if !s.setup.is_empty() {
        blocks.push(Block::Table {
            headers: vec!["setup", "as planned"],
            rows: s
                .setup
                .iter()
                .map(|(k, v)| vec![text(k.as_str()), text(v.as_str())])
                .collect(),
        });
    }
    match &s.metrics {
        None => blocks.push(Block::Paragraph(vec![text(
            "Not run: no figures were measured.",
        )])),
        Some(ScenarioMetrics::Http(m)) => http::section(blocks, m),
        Some(ScenarioMetrics::Ramp(m)) => ramp::section(blocks, m),
        Some(ScenarioMetrics::Cache(m)) => cache::section(blocks, m),
        Some(ScenarioMetrics::Pagination(m)) => pagination::section(blocks, m),
        Some(ScenarioMetrics::Scrape(m)) => scrape::section(blocks, m),
    }
    if !s.thresholds.is_empty() {
        blocks.push(Block::Table {
            headers: vec!["threshold", "actual", "result"],
            rows: s
                .thresholds
                .iter()
                .map(|t| {
                    vec![
                        Inline::Code(t.expr.clone()),
                        figure(t.actual),
                        if t.passed {
                            text("pass")
                        } else if t.not_measured {
                            Inline::Bad("not measured".into())
                        } else {
                            Inline::Bad("FAIL".into())
                        },
                    ]
                })
                .collect(),
        });
    }
}

/// One row per scenario: its kind, whether its thresholds held, and its headline figures.
fn overview(report: &Report) -> Block {
    Block::Table {
        headers: vec!["scenario", "kind", "thresholds", "result", "headline"],
        rows: report
            .scenarios
            .iter()
            .map(|s| {
                let passed = s.thresholds.iter().filter(|t| t.passed).count();
                vec![
                    Inline::Code(s.name.clone()),
                    text(s.kind.as_str()),
                    text(format!("{passed} of {} passed", s.thresholds.len())),
                    match (&s.metrics, s.passed) {
                        (None, _) => Inline::Bad("not run".into()),
                        (Some(_), true) => text("pass"),
                        (Some(_), false) => Inline::Bad("FAIL".into()),
                    },
                    text(s.metrics.as_ref().map_or_else(String::new, headline)),
                ]
            })
            .collect(),
    }
}

/// A scenario's few figures that say the most, with their units.
fn headline(m: &ScenarioMetrics) -> String {
    let ms = |v: Option<f64>| v.map_or_else(|| "not measured".to_owned(), |v| format!("{v:.1} ms"));
    let x = |v: Option<f64>| v.map_or_else(|| "not measured".to_owned(), |v| format!("{v:.1}x"));
    let pct = |v: Option<f64>| {
        v.map_or_else(
            || "not measured".to_owned(),
            |v| format!("{:.1} %", 100.0 * v),
        )
    };
    let rate =
        |v: Option<f64>| v.map_or_else(|| "not measured".to_owned(), |v| format!("{v:.0} req/s"));
    match m {
        ScenarioMetrics::Http(h) => format!(
            "{} requests · p95 {} · {} · success {}",
            h.requests,
            ms(h.latency_ms.map(|l| l.p95)),
            rate(h.throughput_rps),
            pct(h.success_rate)
        ),
        ScenarioMetrics::Ramp(r) => format!(
            "max concurrency {} · peak {} · cliff {}",
            r.max_concurrency
                .map_or_else(|| "none held".to_owned(), |c| c.to_string()),
            rate(r.peak_throughput_rps),
            r.cliff_concurrency
                .map_or_else(|| "not found".to_owned(), |c| format!("at {c}"))
        ),
        ScenarioMetrics::Cache(c) => format!(
            "hit rate {} · speedup {} · hit p95 {}",
            pct(c.hit_rate),
            x(c.speedup),
            ms(c.hit_latency_ms.map(|l| l.p95))
        ),
        ScenarioMetrics::Pagination(p) => format!(
            "speedup at the deepest page {} · OFFSET p50 {} · keyset p50 {}",
            x(p.speedup_at_deepest),
            ms(p.offset_at_deepest_ms.map(|l| l.p50)),
            ms(p.cursor_at_deepest_ms.map(|l| l.p50))
        ),
        ScenarioMetrics::Scrape(s) => {
            let saved = s
                .savings
                .get("prometheus_samples_per_s")
                .or_else(|| s.savings.get("samples_per_s"))
                .map_or_else(
                    || "not measured".to_owned(),
                    |v| format!("{:.1} %", 100.0 * v.saved),
                );
            format!(
                "{} series · samples saved from first to last interval {saved}{}",
                s.intervals
                    .first()
                    .and_then(|i| i.series)
                    .map_or_else(|| "not measured".to_owned(), |n| n.to_string()),
                if s.scaled { " · SCALED" } else { "" }
            )
        }
    }
}

fn agents(report: &Report) -> Block {
    Block::Table {
        headers: vec![
            "agent",
            "weight",
            "requests",
            "errors",
            "intervals",
            "lost",
            "clock offset (ms)",
            "threads",
            "CPU %",
            "lag p99, whole run (ms)",
            "connect p99, whole run (ms)",
            "connection wait p99, whole run (ms)",
            "arrivals",
            "dropped",
            "EMFILE",
            "EADDRNOTAVAIL",
        ],
        rows: report
            .agents
            .iter()
            .map(|a| {
                let g = &a.generator;
                vec![
                    text(a.name.as_str()),
                    a.cores.map_or_else(|| text("not recorded"), count),
                    count(a.requests),
                    count(a.errors),
                    count(a.intervals),
                    if a.lost {
                        Inline::Bad("yes".into())
                    } else {
                        text("no")
                    },
                    text(format!("{:.1}", a.clock_offset_ms)),
                    count(g.threads),
                    figure(g.cpu_percent),
                    figure(g.lag_ms_p99),
                    figure(g.connect_ms_p99),
                    figure(g.connection_wait_ms_p99),
                    count(g.arrivals),
                    count(g.dropped),
                    count(g.emfile),
                    count(g.eaddrnotavail),
                ]
            })
            .collect(),
    }
}
