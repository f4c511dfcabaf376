//! The `http` kind in a plan: API latency under a closed model (fixed connections) or an open model (an arrival
//! rate), constant or ramping through stages.

use super::errors::Issues;
use super::fields::{self, Field};
use super::request::{self, HttpRequest};
use super::{MAX_RUN, ScenarioInput};
use crate::profile::{Profile, Stage};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use toml::Spanned;

const DEFAULT_CLOSED_CONNECTIONS: u64 = 10;
const DEFAULT_OPEN_CONNECTIONS: u64 = 100;
/// Seconds of arrivals the open-model backlog holds by default.
const DEFAULT_BACKLOG_SECONDS: u64 = 5;
/// Most arrivals per second a scenario may ask for, across agents: 10 million (about 100 agents at their best; a
/// larger figure is a typo, and an agent given it would only drop arrivals).
pub const MAX_RATE: u64 = 10_000_000;
/// Most connections a scenario may hold across agents.
pub const MAX_CONNECTIONS: u64 = 10_000_000;
/// Most arrivals an open-model scenario may keep waiting for a connection, across agents (each waits in memory).
pub const MAX_BACKLOG: u64 = 1 << 20;

#[derive(Debug, Deserialize)]
pub(crate) struct RawHttp {
    pub model: Field<String>,
    pub rate: Field<i64>,
    pub connections: Field<i64>,
    pub duration: Field<String>,
    pub requests: Field<i64>,
    pub warmup: Field<String>,
    pub max_backlog: Field<i64>,
    pub stages: Option<Vec<Spanned<RawStage>>>,
    pub arrivals: Field<String>,
}

/// One entry of `stages = [{ rate = .., duration = ".." }, ..]` (or `connections` for the closed model).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawStage {
    pub rate: Field<i64>,
    pub connections: Field<i64>,
    pub duration: Field<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LoadModel {
    /// Fixed connections, each sending its next request when the last answers.
    Closed,
    /// Constant arrival rate; latency from the intended send time.
    Open,
}

impl LoadModel {
    pub fn as_str(self) -> &'static str {
        match self {
            LoadModel::Closed => "closed",
            LoadModel::Open => "open",
        }
    }
}

/// How open-model arrivals are spaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrivals {
    /// Evenly spaced (default).
    Even,
    /// A Poisson process (exponential gaps) with the profile's mean rate.
    Poisson,
}

/// An `http` scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpSpec {
    pub request: HttpRequest,
    /// Default: open when `rate` is set, else closed.
    pub model: LoadModel,
    /// Open model: total arrivals per second across agents (with stages: where the ramp starts, default 0).
    pub rate: u64,
    /// Closed: total connections (default 10; with stages: where the ramp starts, default 1).
    /// Open: cap on connections (default 100).
    pub connections: u64,
    /// Measured phase. At least one of `duration`, `stages` and `requests` is set; whichever ends first stops
    /// the load. With stages, their total.
    pub duration: Option<Duration>,
    /// Ramping targets (rate for the open model, connections for the closed one), linear between them.
    pub stages: Vec<Stage>,
    /// Open model: arrival spacing. Default: even.
    pub arrivals: Arrivals,
    /// Total request budget across agents.
    pub requests: Option<u64>,
    /// Run before the measured phase, excluded from results. Default: 0.
    pub warmup: Duration,
    /// Open model: arrivals that may wait for a free connection, across agents. Default: 5 s of arrivals.
    pub max_backlog: u64,
}

impl HttpSpec {
    /// Second-by-second load: arrivals per second (open) or connections (closed), as plan totals.
    pub fn profile(&self) -> Profile {
        let start = match self.model {
            LoadModel::Open => self.rate,
            LoadModel::Closed => self.connections,
        };
        if self.stages.is_empty() {
            Profile::constant(start, self.duration)
        } else {
            Profile::ramp(start, self.stages.clone())
        }
    }

    /// Most connections the scenario uses at once, across agents.
    pub fn max_connections(&self) -> u64 {
        match self.model {
            LoadModel::Open => self.connections,
            LoadModel::Closed => self.profile().max_total(),
        }
    }

    /// Warm-up plus the measured phase when the plan fixes it (`None` for a request budget alone).
    pub fn planned_length(&self) -> Option<Duration> {
        self.duration.and_then(|d| d.checked_add(self.warmup))
    }

    /// The longest the load may legitimately take from its start: warm-up, the measured phase (for a request budget
    /// alone, its worst case: closed, every request takes the full timeout; open, requests / rate seconds), and one
    /// timeout for the last requests in flight. Never more than [`MAX_RUN`] plus a timeout.
    pub fn load_bound(&self) -> Duration {
        let load = match (self.duration, self.requests) {
            (Some(d), _) => d,
            (None, Some(r)) => match self.model {
                LoadModel::Closed => self
                    .request
                    .timeout
                    .checked_mul(
                        u32::try_from(r.div_ceil(self.connections.max(1))).unwrap_or(u32::MAX),
                    )
                    .unwrap_or(MAX_RUN),
                LoadModel::Open => Duration::from_secs(r.div_ceil(self.rate.max(1))),
            },
            (None, None) => Duration::ZERO,
        };
        load.min(MAX_RUN)
            .saturating_add(self.warmup)
            .saturating_add(self.request.timeout)
    }
}

/// Why this scenario can never produce the figure at `metric`, if it cannot.
pub(crate) fn never_produced(spec: &HttpSpec, metric: &str) -> Option<String> {
    let open_only = ["latency_raw_ms.", "send_late_ms."];
    (spec.model == LoadModel::Closed && open_only.iter().any(|p| metric.starts_with(p))).then(|| {
        "raw latency and send lateness are figures of the open model; in the closed model latency_ms is measured \
         from the send"
            .to_owned()
    })
}

/// Validates an `http` scenario.
pub(crate) fn validate(input: &ScenarioInput<'_, '_>, issues: &mut Issues<'_>) -> Option<HttpSpec> {
    let request = request::validate(input, issues);
    validate_load(input, issues, request)
}

/// Validates the load of a scenario (model, connections, rate, stages, duration, budget, warm-up) around a request
/// read by the caller: an `http` scenario's, or a `cache` scenario's lookup.
pub(crate) fn validate_load(
    input: &ScenarioInput<'_, '_>,
    issues: &mut Issues<'_>,
    request: Option<HttpRequest>,
) -> Option<HttpSpec> {
    let raw: RawHttp = input.table.part(issues)?;
    let (name, kind_span) = (input.name, &input.kind_span);
    let stages_name_rate = raw
        .stages
        .as_ref()
        .is_some_and(|st| st.iter().any(|s| s.get_ref().rate.is_some()));
    let model = match &raw.model {
        None if raw.rate.is_some() || stages_name_rate => LoadModel::Open,
        None => LoadModel::Closed,
        Some(m) => match m.get_ref().as_str() {
            "open" => LoadModel::Open,
            "closed" => LoadModel::Closed,
            other => {
                issues.at(
                    m.span(),
                    format!("invalid model {other:?}: expected \"open\" or \"closed\""),
                );
                LoadModel::Closed
            }
        },
    };
    let rate = fields::positive_at_most(issues, raw.rate.as_ref(), "rate", MAX_RATE);
    if model == LoadModel::Open && raw.rate.is_none() && raw.stages.is_none() {
        issues.at(
            fields::span_or(raw.model.as_ref(), &(0..0)),
            format!(
                "scenario {name:?}: the open model needs `rate` (requests per second across agents)"
            ),
        );
    }
    if model == LoadModel::Closed {
        if let Some(r) = &raw.rate {
            issues.at(
                r.span(),
                "`rate` applies to the open model only; the closed model is set by `connections`",
            );
        }
        if let Some(a) = &raw.arrivals {
            issues.at(a.span(), "`arrivals` applies to the open model only");
        }
        if let Some(b) = &raw.max_backlog {
            issues.at(b.span(), "`max_backlog` applies to the open model only");
        }
    }
    let stages = raw.stages.as_deref().map(|st| stages(st, model, issues));
    let connections = fields::positive_at_most(
        issues,
        raw.connections.as_ref(),
        "connections",
        MAX_CONNECTIONS,
    )
    .unwrap_or(match model {
        LoadModel::Closed if stages.is_some() => 1,
        LoadModel::Closed => DEFAULT_CLOSED_CONNECTIONS,
        LoadModel::Open => DEFAULT_OPEN_CONNECTIONS,
    });
    let mut duration = fields::duration(issues, raw.duration.as_ref());
    if let (Some(d), Some(_)) = (&raw.duration, &raw.stages) {
        issues.at(
            d.span(),
            "set `duration` or `stages`, not both: with stages, the measured phase is their total",
        );
    }
    if let (Some(d), Some(span)) = (duration, raw.duration.as_ref().map(Spanned::span))
        && d.is_zero()
    {
        issues.at(span, "duration must be longer than 0");
    }
    if let Some(stages) = &stages {
        duration = match fields::checked_sum(stages.iter().map(|s| s.duration)) {
            Some(total) if total <= MAX_RUN => Some(total),
            _ => {
                let span = raw
                    .stages
                    .as_ref()
                    .and_then(|s| s.first())
                    .map_or(0..0, Spanned::span);
                issues.at(span, fields::too_long("the stages' total"));
                None
            }
        };
    }
    let requests = fields::positive(issues, raw.requests.as_ref(), "requests");
    if raw.duration.is_none() && raw.requests.is_none() && raw.stages.is_none() {
        issues.at(
            kind_span.clone(),
            format!("scenario {name:?}: set `duration`, `stages` or `requests` so the load ends by itself"),
        );
    }
    let arrivals = match &raw.arrivals {
        None => Arrivals::Even,
        Some(a) => match a.get_ref().as_str() {
            "even" => Arrivals::Even,
            "poisson" => Arrivals::Poisson,
            other => {
                issues.at(
                    a.span(),
                    format!("invalid arrivals {other:?}: expected \"even\" or \"poisson\""),
                );
                Arrivals::Even
            }
        },
    };
    let warmup = fields::duration(issues, raw.warmup.as_ref()).unwrap_or(Duration::ZERO);
    let rate_value = rate.unwrap_or(0);
    let stages = stages.unwrap_or_default();
    let peak_rate = match model {
        LoadModel::Open => stages.iter().map(|s| s.target).fold(rate_value, u64::max),
        LoadModel::Closed => 0,
    };
    let max_backlog =
        fields::positive_at_most(issues, raw.max_backlog.as_ref(), "max_backlog", MAX_BACKLOG)
            .unwrap_or_else(|| {
                peak_rate
                    .saturating_mul(DEFAULT_BACKLOG_SECONDS)
                    .clamp(1, MAX_BACKLOG)
            });
    Some(HttpSpec {
        request: request?,
        model,
        rate: rate_value,
        connections,
        duration,
        stages,
        arrivals,
        requests,
        warmup,
        max_backlog,
    })
}

/// Checks `stages`: each names the model's target (`rate` open, `connections` closed) and a positive duration.
fn stages(raw: &[Spanned<RawStage>], model: LoadModel, issues: &mut Issues<'_>) -> Vec<Stage> {
    if raw.is_empty() {
        issues.at(
            0..0,
            "`stages` is empty: give at least one { .., duration = \"..\" }",
        );
    }
    let mut out = Vec::new();
    for spanned in raw {
        let stage = spanned.get_ref();
        let max_target = match model {
            LoadModel::Open => MAX_RATE,
            LoadModel::Closed => MAX_CONNECTIONS,
        };
        let (wanted, other, target) = match model {
            LoadModel::Open => ("rate", stage.connections.as_ref(), stage.rate.as_ref()),
            LoadModel::Closed => (
                "connections",
                stage.rate.as_ref(),
                stage.connections.as_ref(),
            ),
        };
        if let Some(o) = other {
            issues.at(
                o.span(),
                format!(
                    "a {} model stage ramps `{wanted}`, not this field",
                    model.as_str()
                ),
            );
        }
        let target = match target {
            None => {
                issues.at(spanned.span(), format!("stage without `{wanted}`"));
                None
            }
            Some(t) => {
                match u64::try_from(*t.get_ref()) {
                    Ok(v) if v > max_target => {
                        issues.at(
                        t.span(),
                        format!("stage {wanted} {v} is more than a scenario may ask for ({max_target})"),
                    );
                        None
                    }
                    Ok(v) if model == LoadModel::Open || v >= 1 => Some(v),
                    _ => {
                        issues.at(t.span(), format!("invalid stage {wanted} {}", t.get_ref()));
                        None
                    }
                }
            }
        };
        let duration = match &stage.duration {
            None => {
                issues.at(spanned.span(), "stage without `duration`");
                None
            }
            Some(d) => match fields::duration(issues, Some(d)) {
                Some(v) if v.is_zero() => {
                    issues.at(d.span(), "a stage's duration must be longer than 0");
                    None
                }
                other => other,
            },
        };
        if let (Some(target), Some(duration)) = (target, duration) {
            out.push(Stage { target, duration });
        }
    }
    out
}
