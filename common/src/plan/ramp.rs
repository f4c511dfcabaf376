//! The `ramp` kind in a plan: closed-model concurrency steps, each held, with the target's memory probed; the cliff
//! rule and the probe.

use super::errors::Issues;
use super::fields::{self, Field};
use super::http::{Arrivals, HttpSpec, LoadModel};
use super::request;
use super::{MAX_RUN, ScenarioInput};
use serde::Deserialize;
use std::time::Duration;
use toml::Spanned;

const DEFAULT_HOLD: Duration = Duration::from_secs(10);
/// Default settle time per step (or 20 % of hold, whichever is less).
const DEFAULT_SETTLE: Duration = Duration::from_secs(1);
const DEFAULT_AUTOSCALE_AT: f64 = 0.75;
/// More steps than this is a typo, not a plan.
const MAX_STEPS: u64 = 1000;

#[derive(Debug, Deserialize)]
pub(crate) struct RawRamp {
    pub start: Field<toml::Value>,
    pub stop: Field<toml::Value>,
    pub step: Field<toml::Value>,
    pub hold: Field<toml::Value>,
    pub cliff: Field<toml::Value>,
    pub probe: Field<toml::Value>,
    pub stop_at_cliff: Field<bool>,
    pub autoscale_at: Field<f64>,
    pub settle: Field<String>,
}

/// A `ramp` scenario: closed-model concurrency steps, each held, with the target's memory probed.
#[derive(Debug, Clone, PartialEq)]
pub struct RampSpec {
    /// The request, as a closed-model HTTP scenario lasting one hold (connections are set per step).
    pub base: HttpSpec,
    /// Concurrency of each step: start, start+step, .., stop.
    pub steps: Vec<u64>,
    /// How long each step runs. Default: 10 s.
    pub hold: Duration,
    /// The first part of each step, run but excluded from the step's figures (the new connections' handshakes, the
    /// target adjusting). Default: 1 s or 20 % of `hold`, whichever is less.
    pub settle: Duration,
    pub cliff: CliffRule,
    /// What measures the target's memory; `None`: memory figures are not measured.
    pub probe: Option<ProbeSpec>,
    /// End the ramp at the first step past the cliff. Default: false.
    pub stop_at_cliff: bool,
    /// Share of max_concurrency where autoscaling should trigger. Default: 0.75.
    pub autoscale_at: f64,
}

impl RampSpec {
    /// The HTTP scenario of step `index`: `settle` as warm-up, then the rest of `hold` measured.
    pub fn step(&self, index: usize) -> HttpSpec {
        let mut spec = self.base.clone();
        spec.connections = self.steps.get(index).copied().unwrap_or(1);
        spec.warmup = self.settle;
        spec.duration = Some(self.hold.saturating_sub(self.settle));
        spec
    }

    /// Every step held once.
    pub fn planned_length(&self) -> Option<Duration> {
        self.hold.checked_mul(u32::try_from(self.steps.len()).ok()?)
    }
}

/// When a step is past the cliff (any rule).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CliffRule {
    /// p95 above this times the first step's p95 (and above it by `min_increase_ms`). Default: 4.0.
    pub latency_factor: f64,
    /// How much p95 must rise above the first step's before the factor counts: on a target answering in 0.04 ms,
    /// 0.12 ms is 3x but noise. Milliseconds. Default: 1.
    pub min_increase_ms: f64,
    /// An absolute p95 bound (an SLO), milliseconds: a step above it is past the cliff whatever the factor.
    pub p95_ms: Option<f64>,
    /// Error rate above this. Default: 0.01.
    pub error_rate: f64,
    /// Goodput (successful responses per second) more than this share below the best earlier step. Default: 0.10.
    pub throughput_drop: f64,
}

impl Default for CliffRule {
    fn default() -> Self {
        CliffRule {
            latency_factor: 4.0,
            min_increase_ms: 1.0,
            p95_ms: None,
            error_rate: 0.01,
            throughput_drop: 0.10,
        }
    }
}

/// A measurement of the system under test.
#[derive(Debug, Clone, PartialEq)]
pub enum ProbeSpec {
    /// RSS and CPU of a process on the coordinator's host, by PID or by name (`/proc/PID/comm`).
    Process {
        pid: Option<u32>,
        name: Option<String>,
    },
    /// `memory.current`/`memory.peak` and `cpu.stat` of a cgroup v2 directory on the coordinator's host.
    Cgroup { path: String },
    /// An instant query (its first value, bytes) against a Prometheus HTTP API.
    Prometheus { url: String, query: String },
    /// A `loadgrade-agent --probe-only` on the target host reads a process or cgroup there.
    Agent { agent: String, target: LocalTarget },
}

/// A target on one host: what a probe agent (or the coordinator, for `process` and `cgroup` probes) reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocalTarget {
    Pid(u32),
    /// Every process with this name (`comm`, or argv[0] past the kernel's 15 bytes), summed: a server's master and
    /// workers are one service.
    Name(String),
    /// A cgroup v2 directory, absolute or relative to /sys/fs/cgroup.
    Cgroup(String),
}

/// Why this ramp can never produce the figure at `metric`, if it cannot.
pub(crate) fn never_produced(
    spec: &RampSpec,
    metric: &str,
    memory_budget: Option<u64>,
) -> Option<String> {
    if metric.starts_with("usl.") && spec.steps.len() < 3 {
        return Some(format!(
            "the USL fit needs at least 3 steps and this ramp has {}",
            spec.steps.len()
        ));
    }
    if matches!(metric, "memory_headroom" | "memory_budget_bytes") && memory_budget.is_none() {
        return Some("the plan has no [budget] memory".to_owned());
    }
    if matches!(metric, "memory_at_90pct_bytes" | "memory_headroom") && spec.probe.is_none() {
        return Some("no probe in the scenario measures the target's memory".to_owned());
    }
    None
}

/// Validates a `ramp` scenario.
pub(crate) fn validate(input: &ScenarioInput<'_, '_>, issues: &mut Issues<'_>) -> Option<RampSpec> {
    let raw: RawRamp = input.table.part(issues)?;
    let request = request::validate(input, issues);
    let (name, kind_span) = (input.name, &input.kind_span);
    let start = fields::whole(issues, raw.start.as_ref(), "start");
    let stop = fields::whole(issues, raw.stop.as_ref(), "stop");
    let step = fields::whole(issues, raw.step.as_ref(), "step");
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
        (Some(_), Some(b)) if b > super::http::MAX_CONNECTIONS => {
            issues.at(
                raw.stop.as_ref().map_or(0..0, Spanned::span),
                format!(
                    "stop ({b}) is more connections than a scenario may hold ({})",
                    super::http::MAX_CONNECTIONS
                ),
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
            Some(text) => fields::duration_text(issues, text, h.span()).unwrap_or(DEFAULT_HOLD),
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
    if hold.is_zero() {
        issues.at(
            fields::span_or(raw.hold.as_ref(), kind_span),
            "hold must be longer than 0",
        );
    }
    let settle = match fields::duration(issues, raw.settle.as_ref()) {
        None => DEFAULT_SETTLE.min(hold / 5),
        Some(s) if s < hold => s,
        Some(s) => {
            issues.at(
                fields::span_or(raw.settle.as_ref(), kind_span),
                format!("settle ({s:?}) must be shorter than hold ({hold:?}): the rest of each step is measured"),
            );
            s
        }
    };
    let request = request?;
    let steps = steps?;
    let total = hold
        .checked_mul(u32::try_from(steps.len()).unwrap_or(u32::MAX))
        .filter(|t| *t <= MAX_RUN);
    if total.is_none() {
        issues.at(
            fields::span_or(raw.hold.as_ref(), kind_span),
            fields::too_long(&format!("{} steps of {hold:?}", steps.len())),
        );
        return None;
    }
    Some(RampSpec {
        base: HttpSpec {
            request,
            model: LoadModel::Closed,
            rate: 0,
            connections: steps[0],
            duration: Some(hold),
            stages: Vec::new(),
            arrivals: Arrivals::Even,
            requests: None,
            warmup: Duration::ZERO,
            max_backlog: 1,
        },
        steps,
        hold,
        settle,
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
        // latency_factor above 1 (a step slower than the baseline); the rates are shares in (0, 1); the
        // milliseconds positive (min_increase_ms may be 0).
        let share = |n: f64| n > 0.0 && n < 1.0;
        let (valid, expected): (fn(f64) -> bool, &str) = match key.as_str() {
            "latency_factor" => (|n| n > 1.0 && n.is_finite(), "a number above 1"),
            "min_increase_ms" => (
                |n| n >= 0.0 && n.is_finite(),
                "a number of milliseconds, 0 or more",
            ),
            "p95_ms" => (
                |n| n > 0.0 && n.is_finite(),
                "a number of milliseconds above 0",
            ),
            "error_rate" | "throughput_drop" => (share, "a share between 0 and 1"),
            other => {
                issues.at(
                    value.span(),
                    format!(
                        "unknown cliff rule `{other}`: expected latency_factor, min_increase_ms, p95_ms, error_rate, \
                         throughput_drop"
                    ),
                );
                continue;
            }
        };
        let Some(n) = number.filter(|n| valid(*n)) else {
            issues.at(value.span(), format!("cliff.{key} must be {expected}"));
            continue;
        };
        match key.as_str() {
            "latency_factor" => rule.latency_factor = n,
            "min_increase_ms" => rule.min_increase_ms = n,
            "p95_ms" => rule.p95_ms = Some(n),
            "error_rate" => rule.error_rate = n,
            _ => rule.throughput_drop = n,
        }
    }
    rule
}

pub(super) fn probe(value: &Spanned<toml::Value>, issues: &mut Issues<'_>) -> Option<ProbeSpec> {
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
            // One URL parser for all (attack round 2 on issue 20: `http://h:9091@h2:9093` validated and failed
            // at run time); a query or fragment has no place in a base URL the API path is added to.
            (Some(url), Some(query))
                if super::target_url::TargetUrl::parse(&url).is_ok_and(|u| !u.https)
                    && !url.contains(['?', '#']) =>
            {
                ProbeSpec::Prometheus { url, query }
            }
            _ => {
                issues.at(
                    value.span(),
                    "a prometheus probe needs `url` (http://HOST[:PORT][/PREFIX], no credentials, query or fragment; \
                     https is not supported) and `query`",
                );
                return None;
            }
        },
        Some("agent") => {
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
