//! Validation of a `ramp` scenario: concurrency steps, hold, cliff rule, probe.

use super::errors::Issues;
use super::raw::RawScenario;
use super::validate::{duration_field, reject_foreign_fields, request_part};
use super::{Arrivals, CliffRule, HttpSpec, LoadModel, ProbeSpec, RampSpec};
use std::time::Duration;
use toml::Spanned;

const DEFAULT_HOLD: Duration = Duration::from_secs(10);
const DEFAULT_AUTOSCALE_AT: f64 = 0.75;
/// More steps than this is a typo, not a plan.
const MAX_STEPS: u64 = 1000;

pub(super) fn ramp(
    name: &str,
    raw: RawScenario,
    issues: &mut Issues<'_>,
    base_dir: &std::path::Path,
) -> Option<RampSpec> {
    reject_foreign_fields(&raw, "ramp", issues);
    let request = request_part(name, &raw, issues, base_dir);
    let kind_span = raw.kind.as_ref().map_or(0..0, Spanned::span);
    let whole = |issues: &mut Issues<'_>,
                 field: &Option<Spanned<toml::Value>>,
                 what: &str|
     -> Option<u64> {
        let f = field.as_ref()?;
        match f.get_ref().as_integer().and_then(|v| u64::try_from(v).ok()) {
            Some(v) if v >= 1 => Some(v),
            _ => {
                issues.at(
                    f.span(),
                    format!("{what} must be a whole number of at least 1"),
                );
                None
            }
        }
    };
    let start = whole(issues, &raw.start, "start");
    let stop = whole(issues, &raw.stop, "stop");
    let step = whole(issues, &raw.step, "step");
    if raw.start.is_none() || raw.stop.is_none() {
        issues.at(
            kind_span.clone(),
            format!("scenario {name:?}: a ramp needs `start` and `stop` (concurrency)"),
        );
    }
    let steps = match (start, stop) {
        (Some(a), Some(b)) if b < a => {
            issues.at(
                raw.stop.as_ref().map_or(0..0, Spanned::span),
                format!("stop ({b}) is below start ({a})"),
            );
            None
        }
        (Some(a), Some(b)) => {
            let step = step.unwrap_or(if b > a { b - a } else { 1 });
            if (b - a) / step + 1 > MAX_STEPS {
                issues.at(
                    kind_span.clone(),
                    format!("the ramp has more than {MAX_STEPS} steps"),
                );
                None
            } else {
                let mut steps: Vec<u64> = (0..)
                    .map(|k| a + k * step)
                    .take_while(|&c| c <= b)
                    .collect();
                if steps.last() != Some(&b) {
                    steps.push(b);
                }
                Some(steps)
            }
        }
        _ => None,
    };
    let hold = match &raw.hold {
        None => DEFAULT_HOLD,
        Some(h) => match h.get_ref().as_str() {
            Some(text) => duration_field(issues, Some(&Spanned::new(h.span(), text.to_owned())))
                .unwrap_or(DEFAULT_HOLD),
            None => {
                issues.at(h.span(), "hold must be a duration such as \"20s\"");
                DEFAULT_HOLD
            }
        },
    };
    let cliff = cliff_rule(raw.cliff.as_ref(), issues);
    let probe = raw.probe.as_ref().and_then(|p| probe(p, issues));
    let autoscale_at = match &raw.autoscale_at {
        None => DEFAULT_AUTOSCALE_AT,
        Some(a) if *a.get_ref() > 0.0 && *a.get_ref() <= 1.0 => *a.get_ref(),
        Some(a) => {
            issues.at(
                a.span(),
                "autoscale_at must be a share in (0, 1], such as 0.75",
            );
            DEFAULT_AUTOSCALE_AT
        }
    };
    let request = request?;
    let steps = steps?;
    Some(RampSpec {
        base: HttpSpec {
            url: request.url,
            method: request.method,
            headers: request.headers,
            body: request.body,
            model: LoadModel::Closed,
            rate: 0,
            connections: steps[0],
            duration: Some(hold),
            stages: Vec::new(),
            arrivals: Arrivals::Even,
            http2: request.http2,
            ca_pem: request.ca_pem,
            requests: None,
            warmup: Duration::ZERO,
            max_backlog: 1,
            timeout: request.timeout,
        },
        steps,
        hold,
        cliff,
        probe,
        stop_at_cliff: raw.stop_at_cliff.as_ref().is_some_and(|s| *s.get_ref()),
        autoscale_at,
    })
}

fn cliff_rule(value: Option<&Spanned<toml::Value>>, issues: &mut Issues<'_>) -> CliffRule {
    let mut rule = CliffRule::default();
    let Some(value) = value else { return rule };
    let Some(table) = value.get_ref().as_table() else {
        issues.at(
            value.span(),
            "cliff must be a table such as { latency_factor = 4.0, error_rate = 0.01 }",
        );
        return rule;
    };
    for (key, v) in table {
        let number = v.as_float().or_else(|| v.as_integer().map(|i| i as f64));
        let slot = match key.as_str() {
            "latency_factor" => &mut rule.latency_factor,
            "error_rate" => &mut rule.error_rate,
            "throughput_drop" => &mut rule.throughput_drop,
            other => {
                issues.at(
                    value.span(),
                    format!("unknown cliff rule `{other}`: expected latency_factor, error_rate, throughput_drop"),
                );
                continue;
            }
        };
        // latency_factor above 1 (a step slower than the baseline); the rates are shares in (0, 1).
        let (valid, expected) = match key.as_str() {
            "latency_factor" => (
                number.is_some_and(|n| n > 1.0 && n.is_finite()),
                "a number above 1",
            ),
            _ => (
                number.is_some_and(|n| n > 0.0 && n < 1.0),
                "a share between 0 and 1",
            ),
        };
        match number {
            Some(n) if valid => *slot = n,
            _ => issues.at(value.span(), format!("cliff.{key} must be {expected}")),
        }
    }
    rule
}

fn probe(value: &Spanned<toml::Value>, issues: &mut Issues<'_>) -> Option<ProbeSpec> {
    let expected = "probe must be { kind = \"process\", pid = N } or { kind = \"process\", name = \"..\" }, \
                    { kind = \"cgroup\", path = \"..\" }, { kind = \"prometheus\", url = \"..\", query = \"..\" } \
                    or { kind = \"agent\", agent = \"..\", pid = N | name = \"..\" | cgroup = \"..\" }";
    let Some(table) = value.get_ref().as_table() else {
        issues.at(value.span(), expected);
        return None;
    };
    let text = |key: &str| {
        table
            .get(key)
            .and_then(toml::Value::as_str)
            .map(str::to_owned)
    };
    let known: &[&str] = match table.get("kind").and_then(toml::Value::as_str) {
        Some("process") => &["kind", "pid", "name"],
        Some("cgroup") => &["kind", "path"],
        Some("prometheus") => &["kind", "url", "query"],
        Some("agent") => &["kind", "agent", "pid", "name", "cgroup"],
        _ => {
            issues.at(value.span(), expected);
            return None;
        }
    };
    if let Some(extra) = table.keys().find(|k| !known.contains(&k.as_str())) {
        issues.at(
            value.span(),
            format!("unknown probe field `{extra}`: {expected}"),
        );
        return None;
    }
    let spec = match table.get("kind").and_then(toml::Value::as_str) {
        Some("process") => {
            let pid = match table.get("pid") {
                None => None,
                Some(p) => match p.as_integer().and_then(|v| u32::try_from(v).ok()) {
                    Some(pid) if pid > 0 => Some(pid),
                    _ => {
                        issues.at(value.span(), "probe pid must be a positive process id");
                        return None;
                    }
                },
            };
            let name = text("name");
            if pid.is_some() == name.is_some() {
                issues.at(
                    value.span(),
                    "a process probe needs exactly one of `pid` and `name`",
                );
                return None;
            }
            ProbeSpec::Process { pid, name }
        }
        Some("cgroup") => match text("path") {
            Some(path) => ProbeSpec::Cgroup { path },
            None => {
                issues.at(
                    value.span(),
                    "a cgroup probe needs `path` (a cgroup v2 directory)",
                );
                return None;
            }
        },
        Some("prometheus") => match (text("url"), text("query")) {
            (Some(url), Some(query)) if url.starts_with("http://") => {
                ProbeSpec::Prometheus { url, query }
            }
            _ => {
                issues.at(
                    value.span(),
                    "a prometheus probe needs `url` (http://HOST[:PORT], https is not supported) and `query`",
                );
                return None;
            }
        },
        Some("agent") => {
            use crate::local_probe::LocalTarget;
            let pid = table
                .get("pid")
                .and_then(toml::Value::as_integer)
                .and_then(|p| u32::try_from(p).ok());
            let target = match (pid, text("name"), text("cgroup")) {
                (Some(pid), None, None) if pid > 0 => LocalTarget::Pid(pid),
                (None, Some(name), None) => LocalTarget::Name(name),
                (None, None, Some(path)) => LocalTarget::Cgroup(path),
                _ => {
                    issues.at(
                        value.span(),
                        "an agent probe needs `agent` and exactly one of `pid`, `name`, `cgroup`",
                    );
                    return None;
                }
            };
            let Some(agent) = text("agent") else {
                issues.at(
                    value.span(),
                    "an agent probe needs `agent` (the probe agent's --name)",
                );
                return None;
            };
            ProbeSpec::Agent { agent, target }
        }
        _ => return None,
    };
    Some(spec)
}
