//! Raw plan to typed plan: the plan's own fields, then each scenario's common fields, its keys against its kind's,
//! its thresholds against its kind's metrics, and its kind's module for the rest. Every bad value is reported with
//! its location before failing.

use super::errors::{Issues, PlanError};
use super::fields;
use super::raw::field_names;
use super::raw::{RawCommon, RawPlan, parse_document};
use super::request::RawRequest;
use super::{
    MAX_PLAN_BYTES, MAX_RUN, MAX_SCENARIOS, Plan, Scenario, ScenarioInput, ScenarioKind,
    ScenarioSpec, ScenarioTable, cache, http, pagination, ramp, scrape,
};
use crate::grade::Grade;
use crate::kind::UnknownKind;
use crate::threshold::Threshold;
use crate::units::parse_size;
use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;
use toml::Spanned;

const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_ORPHAN_TIMEOUT: Duration = Duration::from_secs(10);
/// Shorter than this, a heartbeat or two late (one a second) would stop the load.
const MIN_ORPHAN_TIMEOUT: Duration = Duration::from_secs(2);

/// Keys a scenario of `kind` accepts: the common ones and those of its kind's raw structs.
fn accepted_fields(kind: ScenarioKind) -> Vec<&'static str> {
    let mut keys = field_names::<RawCommon>().to_vec();
    match kind {
        ScenarioKind::Http => {
            keys.extend(field_names::<RawRequest>());
            keys.extend(field_names::<http::RawHttp>());
        }
        ScenarioKind::Ramp => {
            keys.extend(field_names::<RawRequest>());
            keys.extend(field_names::<ramp::RawRamp>());
        }
        ScenarioKind::Cache => {
            keys.extend(field_names::<RawRequest>());
            keys.extend(field_names::<http::RawHttp>());
            keys.extend(field_names::<cache::RawCache>());
        }
        ScenarioKind::Pagination => keys.extend(field_names::<pagination::RawPagination>()),
        ScenarioKind::Scrape => keys.extend(field_names::<scrape::RawScrape>()),
    }
    keys
}

/// Why a scenario with `spec` can never produce the figure at `metric`, if it cannot.
fn never_produced(spec: &ScenarioSpec, metric: &str, memory_budget: Option<u64>) -> Option<String> {
    match spec {
        ScenarioSpec::Http(spec) => http::never_produced(spec, metric),
        ScenarioSpec::Ramp(spec) => ramp::never_produced(spec, metric, memory_budget),
        ScenarioSpec::Cache(spec) => cache::never_produced(spec, metric),
        ScenarioSpec::Pagination(_) => None,
        ScenarioSpec::Scrape(spec) => scrape::never_produced(spec, metric),
    }
}

/// The typed spec of a scenario of `kind`.
fn validate_spec(
    kind: ScenarioKind,
    input: &ScenarioInput<'_, '_>,
    issues: &mut Issues<'_>,
) -> Option<ScenarioSpec> {
    Some(match kind {
        ScenarioKind::Http => ScenarioSpec::Http(http::validate(input, issues)?),
        ScenarioKind::Ramp => ScenarioSpec::Ramp(ramp::validate(input, issues)?),
        ScenarioKind::Cache => ScenarioSpec::Cache(cache::validate(input, issues)?),
        ScenarioKind::Pagination => ScenarioSpec::Pagination(pagination::validate(input, issues)?),
        ScenarioKind::Scrape => ScenarioSpec::Scrape(scrape::validate(input, issues)?),
    })
}

/// Names are printed in reports, logs and terminals: one line of at most 200 characters that reads as it is.
const NAME_RULE: &str = "NAME must be one line of at most 200 characters, without control characters, \
                         bidirectional overrides (U+202E...) or line separators (U+2028, U+2029)";

fn fit_name(name: &str) -> bool {
    name.chars().count() <= 200 && !name.chars().any(crate::text::is_deceptive)
}

pub(super) fn parse(file: &str, text: &str) -> Result<Plan, PlanError> {
    let mut issues = Issues::new(text);
    if text.len() > MAX_PLAN_BYTES {
        issues.at(
            0..0,
            format!(
                "the plan is {} bytes; a plan may be at most {} KiB",
                text.len(),
                MAX_PLAN_BYTES >> 10
            ),
        );
        return Err(PlanError {
            file: file.to_owned(),
            issues: issues.found,
        });
    }
    let base_dir = Path::new(file).parent().unwrap_or(Path::new(""));
    let plan = parse_document(text, &mut issues)
        .map(|doc| validate(doc.plan, doc.scenarios, base_dir, &mut issues));
    match plan {
        Some(plan) if issues.found.is_empty() => Ok(plan),
        _ => {
            issues.found.sort_by_key(|i| (i.line, i.column));
            Err(PlanError {
                file: file.to_owned(),
                issues: issues.found,
            })
        }
    }
}

fn validate(
    raw: RawPlan,
    tables: Vec<ScenarioTable<'_>>,
    base_dir: &Path,
    issues: &mut Issues<'_>,
) -> Plan {
    let name = match raw.name {
        Some(n) if !fit_name(n.get_ref()) => {
            issues.at(n.span(), NAME_RULE.replace("NAME", "plan name"));
            String::new()
        }
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
    let agents = match raw.agents {
        None => std::collections::BTreeMap::new(),
        Some(selector) => {
            let span = selector.span();
            let selector = selector.into_inner();
            if selector.len() > crate::protocol::MAX_LABELS {
                issues.at(
                    span.clone(),
                    format!(
                        "`agents` may name at most {} labels",
                        crate::protocol::MAX_LABELS
                    ),
                );
            }
            for (key, value) in &selector {
                if let Err(e) = crate::protocol::check_label(key, value) {
                    issues.at(span.clone(), format!("`agents`: {e}"));
                }
            }
            selector
        }
    };
    let ready_timeout =
        fields::duration(issues, raw.ready_timeout.as_ref()).unwrap_or(DEFAULT_READY_TIMEOUT);
    let preflight = match raw.preflight {
        None => super::PreflightMode::Enforce,
        Some(mode) => match mode.get_ref().as_str() {
            "enforce" => super::PreflightMode::Enforce,
            "warn" => super::PreflightMode::Warn,
            other => {
                issues.at(
                    mode.span(),
                    format!("preflight must be \"enforce\" or \"warn\", got {other:?}"),
                );
                super::PreflightMode::Enforce
            }
        },
    };
    let orphan_timeout = match fields::duration(issues, raw.orphan_timeout.as_ref()) {
        None => DEFAULT_ORPHAN_TIMEOUT,
        Some(t) if t >= MIN_ORPHAN_TIMEOUT => t,
        Some(t) => {
            let span = raw.orphan_timeout.as_ref().map_or(0..0, Spanned::span);
            issues.at(
                span,
                format!(
                    "orphan_timeout ({t:?}) must be at least {MIN_ORPHAN_TIMEOUT:?}: heartbeats come once a second"
                ),
            );
            DEFAULT_ORPHAN_TIMEOUT
        }
    };
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

    if tables.len() > MAX_SCENARIOS {
        issues.at(
            tables[MAX_SCENARIOS].span.clone(),
            format!(
                "a plan may hold at most {MAX_SCENARIOS} scenarios; this is number {}",
                MAX_SCENARIOS + 1
            ),
        );
    }
    if tables.is_empty() {
        issues.at(0..0, "no scenarios: add at least one [[scenario]] table");
    }
    let mut names = BTreeSet::new();
    let mut scenarios = Vec::new();
    let mut total = Duration::ZERO;
    for table in &tables {
        let Some(scenario) = scenario(base_dir, table, memory_budget, issues) else {
            continue;
        };
        if !names.insert(scenario.name.clone()) {
            issues.at(
                table.span.clone(),
                format!("scenario name {:?} is used twice", scenario.name),
            );
        }
        // The plan as a whole must end within a run's bound, so no instant computed from it can overflow.
        match scenario.planned_length().and_then(|l| total.checked_add(l)) {
            Some(t) if t > MAX_RUN => issues.at(
                table.span.clone(),
                fields::too_long(&format!("the plan up to scenario {:?}", scenario.name)),
            ),
            Some(t) => total = t,
            None => {}
        }
        scenarios.push(scenario);
    }
    Plan {
        name,
        min_agents,
        agents,
        ready_timeout,
        preflight,
        orphan_timeout,
        memory_budget,
        fail_below,
        scenarios,
    }
}

fn scenario(
    base_dir: &Path,
    table: &ScenarioTable<'_>,
    memory_budget: Option<u64>,
    issues: &mut Issues<'_>,
) -> Option<Scenario> {
    let common: RawCommon = table.part(issues)?;
    let name = match &common.name {
        Some(n) if !fit_name(n.get_ref()) => {
            issues.at(n.span(), NAME_RULE.replace("NAME", "scenario name"));
            return None;
        }
        Some(n) if !n.get_ref().trim().is_empty() => n.get_ref().clone(),
        Some(n) => {
            issues.at(n.span(), "scenario name is empty");
            return None;
        }
        None => {
            issues.at(table.span.clone(), "scenario without `name`");
            return None;
        }
    };
    let Some(kind_field) = &common.kind else {
        issues.at(
            table.span.clone(),
            format!(
                "scenario {name:?} has no `kind` (supported: {})",
                ScenarioKind::list()
            ),
        );
        return None;
    };
    let kind = match kind_field.get_ref().parse::<ScenarioKind>() {
        Ok(kind) => kind,
        Err(e @ (UnknownKind::Planned(_) | UnknownKind::Unknown(_))) => {
            issues.at(kind_field.span(), e.to_string());
            return None;
        }
    };
    check_keys(table, kind, issues);
    let thresholds = thresholds(&common.thresholds, kind, issues);
    let input = ScenarioInput {
        name: &name,
        table,
        kind_span: kind_field.span(),
        base_dir,
    };
    let spec = validate_spec(kind, &input, issues)?;
    // A threshold on a figure this scenario can never produce would fail every run for a reason no run can fix.
    let thresholds = thresholds
        .into_iter()
        .filter_map(|(threshold, span)| {
            match never_produced(&spec, &threshold.metric, memory_budget) {
                None => Some(threshold),
                Some(why) => {
                    issues.at(
                        span,
                        format!("threshold {:?} can never be met: {why}", threshold.expr),
                    );
                    None
                }
            }
        })
        .collect();
    Some(Scenario {
        name,
        thresholds,
        spec,
    })
}

/// Every key must belong to the scenario's kind; one that belongs to another kind says so.
fn check_keys(table: &ScenarioTable<'_>, kind: ScenarioKind, issues: &mut Issues<'_>) {
    let accepted = accepted_fields(kind);
    for (key, span) in table.unknown_keys(&accepted) {
        let elsewhere = ScenarioKind::ALL
            .into_iter()
            .any(|other| other != kind && accepted_fields(other).contains(&key.as_str()));
        let message = if elsewhere {
            format!("field `{key}` does not apply to kind {:?}", kind.as_str())
        } else {
            format!(
                "unknown field `{key}`: kind {:?} accepts {}",
                kind.as_str(),
                accepted.join(", ")
            )
        };
        issues.at(span, message);
    }
}

/// The thresholds that name a metric of the kind, each with where it is written.
fn thresholds(
    raw: &[Spanned<String>],
    kind: ScenarioKind,
    issues: &mut Issues<'_>,
) -> Vec<(Threshold, std::ops::Range<usize>)> {
    let known = kind.metric_paths();
    let mut thresholds = Vec::new();
    for t in raw {
        match Threshold::parse(t.get_ref()) {
            Ok(parsed) if known.contains(&parsed.metric) => thresholds.push((parsed, t.span())),
            Ok(parsed) => issues.at(
                t.span(),
                format!(
                    "threshold {:?} names unknown metric {:?} for kind {:?} (known: {})",
                    parsed.expr,
                    parsed.metric,
                    kind.as_str(),
                    known.join(", ")
                ),
            ),
            Err(e) => issues.at(t.span(), e),
        }
    }
    thresholds
}
