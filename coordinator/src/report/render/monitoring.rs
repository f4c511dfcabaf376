//! Monitoring artifacts derived from a measured run, written beside the report: `alerts.yml` (Prometheus alerting
//! rules whose thresholds come from this run's capacity and latency, each commented with the measurement it came
//! from) and `dashboard.json` (a Grafana dashboard of the testbed's metrics, importable as it is).
//!
//! The rules name the testbed's metrics (`loadgrade_testbed_*`) and, for latency, the conventional
//! `http_request_duration_seconds` histogram: for another service, rename the metrics; the thresholds stand.

use loadgrade_common::report::{Report, ScenarioMetrics};
use std::fmt::Write as _;

/// An alert fires when latency exceeds the measured p95 by this factor.
const LATENCY_MARGIN: f64 = 1.5;
/// An alert warns when throughput reaches this share of the measured peak.
const THROUGHPUT_SHARE: f64 = 0.9;
/// An alert fires when the hit rate falls this far below the measured one (a share of it).
const HIT_RATE_SHARE: f64 = 0.9;

/// A YAML string (double-quoted, escaped). Line breaks of every kind YAML knows (CR, LF, NEL, U+2028, U+2029) and
/// other controls become spaces.
fn yaml(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if loadgrade_common::text::is_deceptive(c) => out.push(' '),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A YAML string for an annotation, which Prometheus expands as a Go template: braces are kept apart, so a name
/// such as `{{ with query "up" }}` is shown, never run (attack round 2 on issue 20).
fn annotation(text: &str) -> String {
    yaml(&text.replace("{{", "{ {").replace("}}", "} }"))
}

/// Text for a `#` comment: one line whatever it holds (a hostile coordinator's run id could otherwise start rules of
/// its own on the next line).
fn comment(text: &str) -> String {
    text.chars()
        .map(|c| {
            if loadgrade_common::text::is_deceptive(c) {
                ' '
            } else {
                c
            }
        })
        .collect()
}

/// An alert name from a scenario name: letters and digits, each word capitalised.
fn alert_name(prefix: &str, scenario: &str) -> String {
    let words: String = scenario
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut chars = w.chars();
            chars.next().map_or_else(String::new, |first| {
                first.to_ascii_uppercase().to_string() + chars.as_str()
            })
        })
        .collect();
    format!("{prefix}{words}")
}

/// One rule.
struct Rule {
    alert: String,
    expr: String,
    duration: &'static str,
    severity: &'static str,
    summary: String,
    /// Which measurement of which run the threshold came from.
    source: String,
}

/// `alerts.yml` for `report`: one group; a scenario that measured nothing usable adds no rule (and the file says so).
pub fn alert_rules(report: &Report) -> String {
    let mut rules = Vec::new();
    let mut skipped = Vec::new();
    for s in &report.scenarios {
        let Some(metrics) = &s.metrics else {
            skipped.push(format!("{}: not run", s.name));
            continue;
        };
        match metrics {
            ScenarioMetrics::Http(m) => match m.latency_ms {
                Some(l) if l.p95 > 0.0 => {
                    let limit = l.p95 * LATENCY_MARGIN / 1000.0;
                    rules.push(Rule {
                        alert: alert_name("LatencyP95Above", &s.name),
                        expr: format!(
                            "histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket[5m]))) > {limit:.6}"
                        ),
                        duration: "5m",
                        severity: "warning",
                        summary: format!(
                            "p95 latency above {:.1} ms ({LATENCY_MARGIN} x the {:.1} ms measured)",
                            limit * 1000.0,
                            l.p95
                        ),
                        source: format!("scenario {:?}: latency_ms.p95 = {:.3} ms", s.name, l.p95),
                    });
                }
                _ => skipped.push(format!("{}: no latency measured", s.name)),
            },
            ScenarioMetrics::Ramp(m) => {
                if let Some(trigger) = m.autoscale_trigger {
                    rules.push(Rule {
                        alert: alert_name("AutoscaleTrigger", &s.name),
                        expr: format!("sum(loadgrade_testbed_in_flight) >= {trigger:.1}"),
                        duration: "2m",
                        severity: "warning",
                        summary: format!(
                            "{trigger:.1} requests in flight: the measured autoscale point (scale out now)"
                        ),
                        source: format!(
                            "scenario {:?}: autoscale_trigger = {trigger:.1} (autoscale_at x max_concurrency {})",
                            s.name,
                            m.max_concurrency.map_or_else(|| "-".to_owned(), |c| c.to_string())
                        ),
                    });
                }
                if let Some(max) = m.max_concurrency.filter(|c| *c > 0) {
                    rules.push(Rule {
                        alert: alert_name("AtMaxConcurrency", &s.name),
                        expr: format!("sum(loadgrade_testbed_in_flight) >= {max}"),
                        duration: "1m",
                        severity: "critical",
                        summary: format!(
                            "{max} requests in flight: the most this service held before its latency cliff"
                        ),
                        source: format!("scenario {:?}: max_concurrency = {max}", s.name),
                    });
                }
                if let Some(peak) = m.peak_throughput_rps {
                    let limit = peak * THROUGHPUT_SHARE;
                    rules.push(Rule {
                        alert: alert_name("ThroughputNearCapacity", &s.name),
                        expr: format!(
                            "sum(rate(loadgrade_testbed_requests_total[1m])) > {limit:.1}"
                        ),
                        duration: "5m",
                        severity: "warning",
                        summary: format!(
                            "above {limit:.0} req/s, {:.0} % of the {peak:.0} req/s peak measured",
                            100.0 * THROUGHPUT_SHARE
                        ),
                        source: format!("scenario {:?}: peak_throughput_rps = {peak:.1}", s.name),
                    });
                }
                if m.autoscale_trigger.is_none() && m.peak_throughput_rps.is_none() {
                    skipped.push(format!("{}: no capacity measured", s.name));
                }
            }
            ScenarioMetrics::Cache(m) => match m.hit_rate {
                Some(rate) if rate > 0.0 => {
                    let limit = rate * HIT_RATE_SHARE;
                    rules.push(Rule {
                        alert: alert_name("CacheHitRateBelow", &s.name),
                        expr: format!(
                            "sum(rate(loadgrade_testbed_cache_hits_total[5m])) / (sum(rate(loadgrade_testbed_cache_hits_total[5m])) + sum(rate(loadgrade_testbed_cache_misses_total[5m]))) < {limit:.4}"
                        ),
                        duration: "10m",
                        severity: "warning",
                        summary: format!(
                            "cache hit rate below {:.1} % ({:.0} % of the {:.1} % measured)",
                            100.0 * limit,
                            100.0 * HIT_RATE_SHARE,
                            100.0 * rate
                        ),
                        source: format!("scenario {:?}: hit_rate = {rate:.4}", s.name),
                    });
                }
                _ => skipped.push(format!("{}: no hit rate measured", s.name)),
            },
            ScenarioMetrics::Pagination(_) | ScenarioMetrics::Scrape(_) => {
                skipped.push(format!("{}: {} figures make no alert", s.name, s.kind));
            }
        }
    }
    let mut out = format!(
        "# Prometheus alerting rules derived from loadgrade run {} (plan {:?}, verdict {}), {}.\n\
         # Thresholds come from figures measured in that run; each rule says which. Metric names are the\n\
         # testbed's (loadgrade_testbed_*) and the conventional http_request_duration_seconds histogram:\n\
         # rename them to your service's. Check with: promtool check rules alerts.yml\n",
        comment(&report.run_id),
        comment(&report.plan_name),
        report.verdict,
        comment(&report.started_at)
    );
    for s in &skipped {
        let _ = writeln!(out, "# no rule: {}", comment(s));
    }
    let _ = writeln!(
        out,
        "groups:\n  - name: {}\n    rules:",
        yaml(&format!("loadgrade-{}", report.plan_name))
    );
    if rules.is_empty() {
        // An empty group is valid; say why it is empty.
        out = out.replace("    rules:", "    rules: []");
    }
    for r in &rules {
        let _ = write!(
            out,
            "      # from {}\n      - alert: {}\n        expr: {}\n        for: {}\n        labels:\n          \
             severity: {}\n        annotations:\n          summary: {}\n          source: {}\n",
            comment(&r.source),
            r.alert,
            yaml(&r.expr),
            r.duration,
            r.severity,
            annotation(&r.summary),
            annotation(&format!("loadgrade run {}: {}", report.run_id, r.source)),
        );
    }
    out
}

/// `dashboard.json`: a Grafana dashboard of the testbed's metrics (requests, in flight, cache, synthetic latency),
/// with the run's measured capacity as threshold lines where it has one; imports with a Prometheus data source.
pub fn dashboard(report: &Report) -> serde_json::Value {
    let ramp = report.scenarios.iter().find_map(|s| match &s.metrics {
        Some(ScenarioMetrics::Ramp(m)) => Some(m),
        _ => None,
    });
    let steps = |value: Option<f64>| {
        let mut steps = vec![serde_json::json!({ "color": "green", "value": null })];
        if let Some(v) = value {
            steps.push(serde_json::json!({ "color": "red", "value": v }));
        }
        serde_json::json!({ "mode": "absolute", "steps": steps })
    };
    let panel = |id: u64, title: &str, expr: &str, unit: &str, threshold: Option<f64>| {
        serde_json::json!({
            "id": id,
            "type": "timeseries",
            "title": title,
            "datasource": { "type": "prometheus", "uid": "${DS_PROMETHEUS}" },
            "gridPos": { "h": 8, "w": 12, "x": ((id - 1) % 2) * 12, "y": ((id - 1) / 2) * 8 },
            "fieldConfig": {
                "defaults": {
                    "unit": unit,
                    "thresholds": steps(threshold),
                    "custom": { "thresholdsStyle": { "mode": if threshold.is_some() { "line" } else { "off" } } }
                },
                "overrides": []
            },
            "options": { "legend": { "displayMode": "list", "placement": "bottom" } },
            "targets": [{ "refId": "A", "expr": expr, "datasource": { "type": "prometheus", "uid": "${DS_PROMETHEUS}" } }]
        })
    };
    serde_json::json!({
        "__inputs": [{
            "name": "DS_PROMETHEUS",
            "label": "Prometheus",
            "type": "datasource",
            "pluginId": "prometheus",
            "pluginName": "Prometheus"
        }],
        "__requires": [
            { "type": "grafana", "id": "grafana", "name": "Grafana", "version": "9.0.0" },
            { "type": "datasource", "id": "prometheus", "name": "Prometheus", "version": "1.0.0" },
            { "type": "panel", "id": "timeseries", "name": "Time series", "version": "" }
        ],
        "uid": format!("loadgrade-{}", report.run_id.to_ascii_lowercase().chars().filter(char::is_ascii_alphanumeric).take(30).collect::<String>()),
        "title": format!("loadgrade: {} (run {})", report.plan_name, report.run_id),
        "description": "The testbed's metrics, with the capacity measured by a loadgrade run as threshold lines.",
        "tags": ["loadgrade"],
        "timezone": "utc",
        "schemaVersion": 38,
        "version": 1,
        "editable": true,
        "time": { "from": "now-1h", "to": "now" },
        "refresh": "10s",
        "templating": { "list": [] },
        "annotations": { "list": [] },
        "panels": [
            panel(1, "Requests per second", "sum(rate(loadgrade_testbed_requests_total[1m]))", "reqps",
                ramp.and_then(|m| m.peak_throughput_rps)),
            panel(2, "Requests in flight", "sum(loadgrade_testbed_in_flight)", "short",
                ramp.and_then(|m| m.autoscale_trigger)),
            panel(3, "Cache hit rate",
                "sum(rate(loadgrade_testbed_cache_hits_total[5m])) / (sum(rate(loadgrade_testbed_cache_hits_total[5m])) + sum(rate(loadgrade_testbed_cache_misses_total[5m])))",
                "percentunit", None),
            panel(4, "Cache memory and evictions", "loadgrade_testbed_cache_bytes", "bytes", None),
            panel(5, "Synthetic request duration p95",
                "histogram_quantile(0.95, sum by (le) (rate(loadgrade_testbed_synthetic_request_duration_seconds_bucket[5m])))",
                "s", None),
            panel(6, "Series exposed", "loadgrade_testbed_exposed_series", "short", None)
        ]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_strings_are_safe() {
        assert_eq!(alert_name("At", "items-ramp 2"), "AtItemsRamp2");
        assert_eq!(yaml("a \"b\"\n\\"), "\"a \\\"b\\\" \\\\\"");
    }

    /// Regression (issue 20, attack round 2): a scenario named with a Go template ran the plan's PromQL in
    /// Prometheus's annotation expansion, and a coordinator's run id with newlines wrote rules of its own.
    #[test]
    fn templates_are_shown_and_comments_stay_one_line() {
        let named =
            annotation("scenario \"api {{ with query `up` }}{{ . | first | value }}{{ end }}\"");
        assert!(!named.contains("{{") && !named.contains("}}"), "{named}");
        assert!(named.contains("{ { with query `up` } }"), "{named}");
        let forged = comment("20261127T001530Z-3f9a\ngroups:\n  - name: injected\r\u{2028}\u{85}x");
        assert!(
            !forged.contains(['\n', '\r', '\u{2028}', '\u{85}']),
            "{forged:?}"
        );
        assert!(!yaml("a\u{2028}b\u{85}c").contains(['\u{2028}', '\u{85}']));
    }
}
