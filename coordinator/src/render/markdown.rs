//! report.md: the verdict first, then per-scenario figures and thresholds, then the agents and their health.

use loadgrade_common::report::{HttpMetrics, LatencyStats, RampMetrics, Report};
use std::fmt::Write as _;

fn figure(value: Option<f64>) -> String {
    value.map_or_else(|| "not measured".to_owned(), |v| format!("{v:.3}"))
}

fn latency_row(label: &str, stats: Option<&LatencyStats>) -> String {
    match stats {
        None => format!("| {label} | not measured | | | | | | | |\n"),
        Some(s) => format!(
            "| {label} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} |\n",
            s.min, s.mean, s.p50, s.p90, s.p95, s.p99, s.p999, s.max
        ),
    }
}

pub fn markdown(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# loadgrade report: {}\n", report.plan_name);
    let _ = writeln!(
        out,
        "**Verdict: {}** · grade **{}** · {}\n",
        report.verdict, report.grade, report.grade_reason
    );
    for reason in &report.verdict_reasons {
        let _ = writeln!(out, "- {reason}");
    }
    if !report.verdict_reasons.is_empty() {
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "Run `{}`, {} to {}.\n",
        report.run_id, report.started_at, report.finished_at
    );

    for scenario in &report.scenarios {
        let _ = writeln!(out, "## Scenario `{}` ({})\n", scenario.name, scenario.kind);
        if scenario.kind == "ramp" && !scenario.metrics.is_null() {
            if let Ok(m) = serde_json::from_value::<RampMetrics>(scenario.metrics.clone()) {
                ramp(&mut out, &m);
            }
        } else {
            http(&mut out, &scenario.metrics);
        }
        if !scenario.thresholds.is_empty() {
            out.push_str("| threshold | actual | result |\n|---|---|---|\n");
            for t in &scenario.thresholds {
                let _ = writeln!(
                    out,
                    "| `{}` | {} | {} |",
                    t.expr,
                    figure(t.actual),
                    if t.passed { "pass" } else { "**FAIL**" }
                );
            }
            out.push('\n');
        }
    }

    out.push_str("## Agents\n\n");
    out.push_str(
        "| agent | requests | errors | intervals | lost | clock offset (ms) | threads | CPU % | lag p99 (ms) | connect p99 (ms) | connection wait p99 (ms) | arrivals | dropped | EMFILE | EADDRNOTAVAIL |\n",
    );
    out.push_str("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for a in &report.agents {
        let g = &a.generator;
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {:.1} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            a.name,
            a.requests,
            a.errors,
            a.intervals,
            if a.lost { "**yes**" } else { "no" },
            a.clock_offset_ms,
            g.threads,
            figure(g.cpu_percent),
            figure(g.lag_ms_p99),
            figure(g.connect_ms_p99),
            figure(g.connection_wait_ms_p99),
            g.arrivals,
            g.dropped,
            g.emfile,
            g.eaddrnotavail
        );
    }
    out
}

fn http(out: &mut String, metrics: &serde_json::Value) {
    match serde_json::from_value::<HttpMetrics>(metrics.clone()) {
        Err(_) => {
            let _ = writeln!(out, "Not run: no figures were measured.\n");
        }
        Ok(m) => {
            let _ = writeln!(
                out,
                "{} model · {} requests · {} errors · {} dropped · success rate {} · {} req/s over {:.1} s\n",
                m.model,
                m.requests,
                m.errors,
                m.dropped,
                figure(m.success_rate),
                figure(m.throughput_rps),
                m.duration_s
            );
            let e = &m.errors_by_class;
            let _ = writeln!(
                out,
                "Errors by class: connect {}, timeout {}, 4xx {}, 5xx {}, other {}\n",
                e.connect, e.timeout, e.status_4xx, e.status_5xx, e.other
            );
            out.push_str("| latency (ms) | min | mean | p50 | p90 | p95 | p99 | p99.9 | max |\n");
            out.push_str("|---|---|---|---|---|---|---|---|---|\n");
            let corrected_label = if m.model == "open" {
                "corrected (from intended send)"
            } else {
                "measured"
            };
            out.push_str(&latency_row(corrected_label, m.latency_ms.as_ref()));
            if m.model == "open" {
                out.push_str(&latency_row(
                    "raw (from actual send)",
                    m.latency_raw_ms.as_ref(),
                ));
            }
            out.push('\n');
        }
    }
}

fn bytes(value: Option<u64>) -> String {
    value.map_or_else(
        || "not measured".to_owned(),
        |b| format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0)),
    )
}

fn ramp(out: &mut String, m: &RampMetrics) {
    let _ = writeln!(
        out,
        "{} requests · {} errors · max concurrency **{}** · cliff {} · saturation {} · autoscale at {} · \
         peak {} req/s\n",
        m.requests,
        m.errors,
        m.max_concurrency
            .map_or("none before the cliff".to_owned(), |c| c.to_string()),
        m.cliff_concurrency
            .map_or("not reached".to_owned(), |c| c.to_string()),
        m.saturation_concurrency
            .map_or("-".to_owned(), |c| c.to_string()),
        m.autoscale_trigger
            .map_or("-".to_owned(), |c| format!("{c:.0}")),
        figure(m.peak_throughput_rps),
    );
    if let Some(reason) = &m.cliff_reason {
        let _ = writeln!(out, "Cliff: {reason}.\n");
    }
    out.push_str("| connections | req/s | p50 (ms) | p95 (ms) | p99 (ms) | error rate | target memory (max) | target CPU % | samples | |\n");
    out.push_str("|---|---|---|---|---|---|---|---|---|---|\n");
    for s in &m.steps {
        let l = s.latency_ms;
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            s.concurrency,
            figure(s.throughput_rps),
            figure(l.map(|l| l.p50)),
            figure(l.map(|l| l.p95)),
            figure(l.map(|l| l.p99)),
            figure(s.error_rate),
            bytes(s.target_memory_bytes),
            figure(s.target_cpu_percent),
            s.probe_samples,
            if s.past_cliff {
                "**past the cliff**"
            } else {
                ""
            }
        );
    }
    let _ = writeln!(
        out,
        "\nMemory at 90 % of capacity: {} of budget {} · headroom {}",
        bytes(m.memory_at_90pct_bytes),
        bytes(m.memory_budget_bytes),
        figure(m.memory_headroom)
    );
    match &m.usl {
        Some(u) => {
            let _ = writeln!(
                out,
                "\nUSL fit: sigma {:.4}, kappa {:.6}, lambda {:.1} req/s per connection, peak at {} connections, R² {:.3}\n",
                u.sigma,
                u.kappa,
                u.lambda,
                u.peak_concurrency
                    .map_or("-".to_owned(), |p| format!("{p:.0}")),
                u.r_squared
            );
        }
        None => out.push('\n'),
    }
    for (field, reason) in &m.not_measured {
        let _ = writeln!(out, "- {field}: not measured ({reason})");
    }
    if !m.not_measured.is_empty() {
        out.push('\n');
    }
}
