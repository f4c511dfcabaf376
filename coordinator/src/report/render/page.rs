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
            ", {} to {}.",
            report.started_at, report.finished_at
        )),
    ]));
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
                        } else {
                            Inline::Bad("FAIL".into())
                        },
                    ]
                })
                .collect(),
        });
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
            "lag p99 (ms)",
            "connect p99 (ms)",
            "connection wait p99 (ms)",
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
