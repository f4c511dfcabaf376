//! Raw plan to typed plan: every bad value is reported with its location before failing.

use super::errors::{Issues, PlanError};
use super::raw::{RawPlan, RawScenario, RawStage};
use super::{Arrivals, HttpSpec, LoadModel, Plan, Scenario, ScenarioSpec};
use crate::grade::Grade;
use crate::profile::Stage;
use crate::report::metric_paths;
use crate::threshold::Threshold;
use crate::units::{parse_duration, parse_size};
use std::collections::BTreeSet;
use std::time::Duration;
use toml::Spanned;

/// Kinds this build runs. Others in DESIGN.md are recognised and refused with a clear message.
const SUPPORTED_KINDS: &[&str] = &["http", "ramp"];
const PLANNED_KINDS: &[&str] = &["cache", "pagination", "scrape"];

const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_CLOSED_CONNECTIONS: u64 = 10;
const DEFAULT_OPEN_CONNECTIONS: u64 = 100;
/// Seconds of arrivals the open-model backlog holds by default.
const DEFAULT_BACKLOG_SECONDS: u64 = 5;

pub(super) fn parse(file: &str, text: &str) -> Result<Plan, PlanError> {
    let fail = |issues| PlanError {
        file: file.to_owned(),
        issues,
    };
    let raw: RawPlan = toml::from_str(text).map_err(|e| {
        let mut issues = Issues::new(text);
        issues.at(e.span().unwrap_or(0..0), e.message().trim().to_owned());
        fail(issues.found)
    })?;
    let mut issues = Issues::new(text);
    let base_dir = std::path::Path::new(file)
        .parent()
        .unwrap_or(std::path::Path::new(""));
    let plan = validate(raw, base_dir, &mut issues);
    if issues.found.is_empty() {
        Ok(plan)
    } else {
        issues.found.sort_by_key(|i| (i.line, i.column));
        Err(fail(issues.found))
    }
}

fn validate(raw: RawPlan, base_dir: &std::path::Path, issues: &mut Issues<'_>) -> Plan {
    let name = match raw.name {
        Some(n) if !n.get_ref().trim().is_empty() => n.into_inner(),
        Some(n) => {
            issues.at(n.span(), "plan name is empty");
            String::new()
        }
        None => {
            issues.at(0..0, "missing `name`: every plan needs a name");
            String::new()
        }
    };
    let min_agents = match raw.min_agents {
        None => 1,
        Some(n) => match u32::try_from(*n.get_ref()) {
            Ok(v) if v >= 1 => v,
            _ => {
                issues.at(
                    n.span(),
                    format!("min_agents must be at least 1, got {}", n.get_ref()),
                );
                1
            }
        },
    };
    let ready_timeout =
        duration_field(issues, raw.ready_timeout.as_ref()).unwrap_or(DEFAULT_READY_TIMEOUT);
    let memory_budget =
        raw.budget
            .and_then(|b| b.memory)
            .and_then(|m| match parse_size(m.get_ref()) {
                Ok(0) => {
                    issues.at(m.span(), "the memory budget must be more than 0");
                    None
                }
                Ok(bytes) => Some(bytes),
                Err(e) => {
                    issues.at(m.span(), e);
                    None
                }
            });
    let fail_below = raw
        .grading
        .and_then(|g| g.fail_below)
        .and_then(|g| {
            g.get_ref()
                .parse::<Grade>()
                .map_err(|e| issues.at(g.span(), e))
                .ok()
        })
        .unwrap_or(Grade::A);

    if raw.scenarios.is_empty() {
        issues.at(0..0, "no scenarios: add at least one [[scenario]] table");
    }
    let mut names = BTreeSet::new();
    let mut scenarios = Vec::new();
    for spanned in raw.scenarios {
        let span = spanned.span();
        if let Some(scenario) = scenario(base_dir, spanned.into_inner(), span.clone(), issues) {
            if !names.insert(scenario.name.clone()) {
                issues.at(
                    span,
                    format!("scenario name {:?} is used twice", scenario.name),
                );
            }
            scenarios.push(scenario);
        }
    }
    Plan {
        name,
        min_agents,
        ready_timeout,
        memory_budget,
        fail_below,
        scenarios,
    }
}

fn scenario(
    base_dir: &std::path::Path,
    raw: RawScenario,
    span: std::ops::Range<usize>,
    issues: &mut Issues<'_>,
) -> Option<Scenario> {
    let name = match &raw.name {
        Some(n) if !n.get_ref().trim().is_empty() => n.get_ref().clone(),
        Some(n) => {
            issues.at(n.span(), "scenario name is empty");
            return None;
        }
        None => {
            issues.at(span, "scenario without `name`");
            return None;
        }
    };
    let Some(kind) = &raw.kind else {
        issues.at(
            span,
            format!(
                "scenario {name:?} has no `kind` (supported: {})",
                SUPPORTED_KINDS.join(", ")
            ),
        );
        return None;
    };
    let kind_name = kind.get_ref().as_str();
    if !SUPPORTED_KINDS.contains(&kind_name) {
        let message = if PLANNED_KINDS.contains(&kind_name) {
            format!(
                "kind {kind_name:?} is not supported by this build yet (supported: {})",
                SUPPORTED_KINDS.join(", ")
            )
        } else {
            format!(
                "unknown kind {kind_name:?}: expected one of {}",
                SUPPORTED_KINDS.join(", ")
            )
        };
        issues.at(kind.span(), message);
        return None;
    }

    let known = metric_paths(kind_name);
    let mut thresholds = Vec::new();
    for t in &raw.thresholds {
        match Threshold::parse(t.get_ref()) {
            Ok(parsed) if known.contains(&parsed.metric) => thresholds.push(parsed),
            Ok(parsed) => issues.at(
                t.span(),
                format!(
                    "threshold {:?} names unknown metric {:?} for kind {kind_name:?} (known: {})",
                    parsed.expr,
                    parsed.metric,
                    known.join(", ")
                ),
            ),
            Err(e) => issues.at(t.span(), e),
        }
    }

    let spec = if kind_name == "ramp" {
        ScenarioSpec::Ramp(super::ramp::ramp(&name, raw, issues, base_dir)?)
    } else {
        ScenarioSpec::Http(http(&name, raw, issues, base_dir)?)
    };
    Some(Scenario {
        name,
        thresholds,
        spec,
    })
}

fn http(
    name: &str,
    raw: RawScenario,
    issues: &mut Issues<'_>,
    base_dir: &std::path::Path,
) -> Option<HttpSpec> {
    reject_foreign_fields(&raw, "http", issues);
    let request = request_part(name, &raw, issues, base_dir);
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
    let rate = positive(issues, raw.rate.as_ref(), "rate");
    if model == LoadModel::Open && raw.rate.is_none() && raw.stages.is_none() {
        issues.at(
            raw.model.as_ref().map_or(0..0, Spanned::span),
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
    let connections =
        positive(issues, raw.connections.as_ref(), "connections").unwrap_or(match model {
            LoadModel::Closed if stages.is_some() => 1,
            LoadModel::Closed => DEFAULT_CLOSED_CONNECTIONS,
            LoadModel::Open => DEFAULT_OPEN_CONNECTIONS,
        });
    let mut duration = duration_field(issues, raw.duration.as_ref());
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
        duration = Some(stages.iter().map(|s| s.duration).sum());
    }
    let requests = positive(issues, raw.requests.as_ref(), "requests");
    if raw.duration.is_none() && raw.requests.is_none() && raw.stages.is_none() {
        issues.at(
            raw.kind.as_ref().map_or(0..0, Spanned::span),
            format!(
                "scenario {name:?}: set `duration`, `stages` or `requests` so the load ends by itself"
            ),
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
    let warmup = duration_field(issues, raw.warmup.as_ref()).unwrap_or(Duration::ZERO);
    let rate_value = rate.unwrap_or(0);
    let stages = stages.unwrap_or_default();
    let peak_rate = match model {
        LoadModel::Open => stages.iter().map(|s| s.target).fold(rate_value, u64::max),
        LoadModel::Closed => 0,
    };
    let max_backlog = positive(issues, raw.max_backlog.as_ref(), "max_backlog")
        .unwrap_or_else(|| peak_rate.saturating_mul(DEFAULT_BACKLOG_SECONDS).max(1));
    let request = request?;
    Some(HttpSpec {
        url: request.url,
        method: request.method,
        headers: request.headers,
        body: request.body,
        model,
        rate: rate_value,
        connections,
        duration,
        stages,
        arrivals,
        http2: request.http2,
        ca_pem: request.ca_pem,
        requests,
        warmup,
        max_backlog,
        timeout: request.timeout,
    })
}

/// What every kind that sends HTTP requests shares: where, how, and with what.
pub(super) struct RequestPart {
    pub url: String,
    pub method: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub timeout: Duration,
    pub http2: bool,
    pub ca_pem: Vec<u8>,
}

pub(super) fn request_part(
    name: &str,
    raw: &RawScenario,
    issues: &mut Issues<'_>,
    base_dir: &std::path::Path,
) -> Option<RequestPart> {
    let url = match &raw.url {
        None => {
            issues.at(
                raw.kind.as_ref().map_or(0..0, Spanned::span),
                format!("scenario {name:?}: `url` is required"),
            );
            None
        }
        Some(u) => match check_url(u.get_ref()) {
            Ok(()) => Some(u.get_ref().clone()),
            Err(e) => {
                issues.at(u.span(), e);
                None
            }
        },
    };
    let method = match &raw.method {
        None => "GET".to_owned(),
        Some(m)
            if !m.get_ref().is_empty() && m.get_ref().chars().all(|c| c.is_ascii_uppercase()) =>
        {
            m.get_ref().clone()
        }
        Some(m) => {
            issues.at(
                m.span(),
                format!(
                    "invalid method {:?}: expected an upper-case token such as GET or POST",
                    m.get_ref()
                ),
            );
            "GET".to_owned()
        }
    };
    let timeout = duration_field(issues, raw.timeout.as_ref()).unwrap_or(DEFAULT_TIMEOUT);
    if timeout.is_zero() {
        issues.at(
            raw.timeout.as_ref().map_or(0..0, Spanned::span),
            "timeout must be longer than 0",
        );
    }
    let http2 = match &raw.http {
        None => false,
        Some(v) => match v.get_ref().as_str() {
            "1.1" => false,
            "2" => true,
            other => {
                issues.at(
                    v.span(),
                    format!("invalid http {other:?}: expected \"1.1\" or \"2\""),
                );
                false
            }
        },
    };
    let ca_pem = match &raw.ca_file {
        None => Vec::new(),
        Some(f) => {
            let path = base_dir.join(f.get_ref());
            match std::fs::read(&path) {
                Ok(pem) if pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") => pem,
                Ok(_) => {
                    issues.at(
                        f.span(),
                        format!("ca_file {} holds no PEM certificate", path.display()),
                    );
                    Vec::new()
                }
                Err(e) => {
                    issues.at(
                        f.span(),
                        format!("cannot read ca_file {}: {e}", path.display()),
                    );
                    Vec::new()
                }
            }
        }
    };
    let headers = raw
        .headers
        .clone()
        .map(|h| h.into_inner().into_iter().collect())
        .unwrap_or_default();
    let body = raw
        .body
        .clone()
        .map(|b| b.into_inner().into_bytes())
        .unwrap_or_default();
    Some(RequestPart {
        url: url?,
        method,
        headers,
        body,
        timeout,
        http2,
        ca_pem,
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
            Some(t) => match u64::try_from(*t.get_ref()) {
                Ok(v) if model == LoadModel::Open || v >= 1 => Some(v),
                _ => {
                    issues.at(t.span(), format!("invalid stage {wanted} {}", t.get_ref()));
                    None
                }
            },
        };
        let duration = match &stage.duration {
            None => {
                issues.at(spanned.span(), "stage without `duration`");
                None
            }
            Some(d) => match parse_duration(d.get_ref()) {
                Ok(v) if !v.is_zero() => Some(v),
                Ok(_) => {
                    issues.at(d.span(), "a stage's duration must be longer than 0");
                    None
                }
                Err(e) => {
                    issues.at(d.span(), e);
                    None
                }
            },
        };
        if let (Some(target), Some(duration)) = (target, duration) {
            out.push(Stage { target, duration });
        }
    }
    out
}

fn check_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| format!("invalid url {url:?}: expected http(s)://HOST[:PORT]/PATH"))?;
    let authority = rest.split('/').next().unwrap_or("");
    if authority.is_empty() {
        return Err(format!("invalid url {url:?}: no host"));
    }
    Ok(())
}

pub(super) fn duration_field(
    issues: &mut Issues<'_>,
    field: Option<&Spanned<String>>,
) -> Option<Duration> {
    let field = field?;
    parse_duration(field.get_ref())
        .map_err(|e| issues.at(field.span(), e))
        .ok()
}

pub(super) fn positive(
    issues: &mut Issues<'_>,
    field: Option<&Spanned<i64>>,
    what: &str,
) -> Option<u64> {
    let field = field?;
    match u64::try_from(*field.get_ref()) {
        Ok(v) if v >= 1 => Some(v),
        _ => {
            issues.at(
                field.span(),
                format!(
                    "{what} must be a whole number of at least 1, got {}",
                    field.get_ref()
                ),
            );
            None
        }
    }
}

pub(super) fn reject_foreign_fields(raw: &RawScenario, kind: &str, issues: &mut Issues<'_>) {
    const REQUEST: &[&str] = &[
        "url", "method", "headers", "body", "timeout", "http", "ca_file",
    ];
    const HTTP: &[&str] = &[
        "model",
        "rate",
        "connections",
        "duration",
        "requests",
        "warmup",
        "max_backlog",
        "stages",
        "arrivals",
    ];
    const RAMP: &[&str] = &[
        "start",
        "stop",
        "step",
        "hold",
        "cliff",
        "probe",
        "stop_at_cliff",
        "autoscale_at",
    ];
    let span = |f: &Option<Spanned<toml::Value>>| f.as_ref().map(Spanned::span);
    let present: Vec<(&str, Option<std::ops::Range<usize>>)> = vec![
        ("url", raw.url.as_ref().map(Spanned::span)),
        ("method", raw.method.as_ref().map(Spanned::span)),
        ("headers", raw.headers.as_ref().map(Spanned::span)),
        ("body", raw.body.as_ref().map(Spanned::span)),
        ("timeout", raw.timeout.as_ref().map(Spanned::span)),
        ("http", raw.http.as_ref().map(Spanned::span)),
        ("ca_file", raw.ca_file.as_ref().map(Spanned::span)),
        ("model", raw.model.as_ref().map(Spanned::span)),
        ("rate", raw.rate.as_ref().map(Spanned::span)),
        ("connections", raw.connections.as_ref().map(Spanned::span)),
        ("duration", raw.duration.as_ref().map(Spanned::span)),
        ("requests", raw.requests.as_ref().map(Spanned::span)),
        ("warmup", raw.warmup.as_ref().map(Spanned::span)),
        ("max_backlog", raw.max_backlog.as_ref().map(Spanned::span)),
        (
            "stages",
            raw.stages
                .as_ref()
                .and_then(|s| s.first())
                .map(Spanned::span),
        ),
        ("arrivals", raw.arrivals.as_ref().map(Spanned::span)),
        ("start", span(&raw.start)),
        ("stop", span(&raw.stop)),
        ("step", span(&raw.step)),
        ("hold", span(&raw.hold)),
        ("cliff", span(&raw.cliff)),
        ("probe", span(&raw.probe)),
        (
            "stop_at_cliff",
            raw.stop_at_cliff.as_ref().map(Spanned::span),
        ),
        ("autoscale_at", raw.autoscale_at.as_ref().map(Spanned::span)),
        ("mode", span(&raw.mode)),
        ("redis", span(&raw.redis)),
        ("origin", span(&raw.origin)),
        ("key_space", span(&raw.key_space)),
        ("zipf", span(&raw.zipf)),
        ("ttl", span(&raw.ttl)),
        ("database", span(&raw.database)),
        ("table", span(&raw.table)),
        ("key", span(&raw.key)),
        ("page_size", span(&raw.page_size)),
        ("pages", span(&raw.pages)),
        ("seed_rows", span(&raw.seed_rows)),
        ("iterations", span(&raw.iterations)),
        ("target", span(&raw.target)),
        ("intervals", span(&raw.intervals)),
        ("prometheus", span(&raw.prometheus)),
    ];
    let allowed: Vec<&str> = match kind {
        "http" => REQUEST.iter().chain(HTTP).copied().collect(),
        "ramp" => REQUEST.iter().chain(RAMP).copied().collect(),
        _ => Vec::new(),
    };
    for (field, span) in present {
        if let Some(span) = span
            && !allowed.contains(&field)
        {
            issues.at(
                span,
                format!("field `{field}` does not apply to kind {kind:?}"),
            );
        }
    }
}
