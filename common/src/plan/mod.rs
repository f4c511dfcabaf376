//! Plans: the typed, validated form of a plan file (format v1, DESIGN.md). Parse with [`Plan::parse`].
//!
//! One module per scenario kind ([`http`], [`ramp`], [`cache`], [`pagination`]) owns its raw fields, its validation and its typed spec;
//! [`ScenarioSpec`] holds one of them, and [`crate::kind::ScenarioKind`] names it.

pub mod cache;
mod condition;
mod errors;
mod fields;
pub mod http;
pub mod pagination;
pub mod ramp;
mod raw;
pub mod redact;
pub mod request;
pub mod scrape;
pub mod target_url;
mod validate;

pub use crate::kind::ScenarioKind;
pub use cache::{CacheSpec, CacheTarget, RedisCache};
pub use errors::{PlanError, PlanIssue, Problem};
pub use http::{Arrivals, HttpSpec, LoadModel};
pub use pagination::{Backend, PaginationSpec};
pub use ramp::{CliffRule, LocalTarget, ProbeSpec, RampSpec};
pub use request::HttpRequest;
pub use scrape::ScrapeSpec;

use crate::grade::Grade;
use crate::threshold::Threshold;
use raw::ScenarioTable;
use std::ops::Range;
use std::path::Path;
use std::time::Duration;

/// The longest a plan may run, and so the longest any duration in it may be: 7 days. Longer is a plan error, so
/// no time arithmetic at run time can overflow.
pub const MAX_RUN: Duration = Duration::from_secs(7 * 24 * 3600);

/// The largest plan text accepted: 1 MiB. A plan is sent whole to the coordinator and each assignment to an agent,
/// so this bounds every message that carries one.
pub const MAX_PLAN_BYTES: usize = 1 << 20;

/// A plan may name, for a password, only environment variables whose name starts with this: an agent's
/// operator decides what a plan can read (`LOADGRADE_SECRET_PG`), and no plan can make an agent send another
/// variable of its environment (loadgrade's own tokens included) to a server of the plan's choosing.
pub const PASSWORD_ENV_PREFIX: &str = "LOADGRADE_SECRET_";

/// What is wrong with `password_env`'s variable name, if anything.
pub fn password_env_problem(name: &str) -> Option<String> {
    let plain = name.len() > PASSWORD_ENV_PREFIX.len()
        && name.len() <= 128
        && name.starts_with(PASSWORD_ENV_PREFIX)
        && name
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
    (!plain).then(|| {
        format!(
            "password_env must name an environment variable starting with {PASSWORD_ENV_PREFIX} (upper-case \
             letters, digits, _), e.g. {PASSWORD_ENV_PREFIX}DB: agents read no other variable for a plan"
        )
    })
}

/// The most scenarios a plan may hold.
pub const MAX_SCENARIOS: usize = 100;

/// What a kind's validation gets: the scenario's name, its table, where its `kind` is written (to locate a missing
/// field) and the plan file's folder (to read files it names).
pub(crate) struct ScenarioInput<'a, 'i> {
    pub name: &'a str,
    pub table: &'a ScenarioTable<'i>,
    pub kind_span: Range<usize>,
    pub base_dir: &'a Path,
}

/// What a failing preflight check does at the start of a run (`preflight = "enforce" | "warn"` in a plan).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PreflightMode {
    /// A failing check stops the run before any load (verdict INVALID, `loadgrade run`/`submit` exit 2).
    #[default]
    Enforce,
    /// Failing checks are reported as warnings and the run goes on: for runs that study a failing target.
    Warn,
}

/// A validated plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub name: String,
    /// Agents the run waits for before any load. Default: 1.
    pub min_agents: u32,
    /// Labels an agent must carry to run this plan (`agents = { zone = "a" }`); empty: any agent. Runs on
    /// overlapping agents wait for each other (QUEUED).
    pub agents: std::collections::BTreeMap<String, String>,
    /// How long to wait for `min_agents`. Default: 30 s.
    pub ready_timeout: Duration,
    /// What a failing preflight check does at the start of the run. Default: it stops the run before any load.
    pub preflight: PreflightMode,
    /// An agent that hears nothing from the coordinator this long stops its load. Default: 10 s.
    pub orphan_timeout: Duration,
    /// `[budget] memory`, bytes.
    pub memory_budget: Option<u64>,
    /// Grades below this make the verdict FAIL. Default: A.
    pub fail_below: Grade,
    pub scenarios: Vec<Scenario>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    pub name: String,
    pub thresholds: Vec<Threshold>,
    pub spec: ScenarioSpec,
}

/// A scenario's kind-specific part: one variant per [`ScenarioKind`].
#[derive(Debug, Clone, PartialEq)]
pub enum ScenarioSpec {
    Http(HttpSpec),
    Ramp(RampSpec),
    Cache(CacheSpec),
    Pagination(PaginationSpec),
    Scrape(ScrapeSpec),
}

impl Scenario {
    pub fn kind(&self) -> ScenarioKind {
        match self.spec {
            ScenarioSpec::Http(_) => ScenarioKind::Http,
            ScenarioSpec::Ramp(_) => ScenarioKind::Ramp,
            ScenarioSpec::Cache(_) => ScenarioKind::Cache,
            ScenarioSpec::Pagination(_) => ScenarioKind::Pagination,
            ScenarioSpec::Scrape(_) => ScenarioKind::Scrape,
        }
    }

    /// How long the plan says the scenario runs, when it says (a request budget alone does not).
    pub fn planned_length(&self) -> Option<Duration> {
        match &self.spec {
            ScenarioSpec::Http(spec) => spec.planned_length(),
            ScenarioSpec::Ramp(ramp) => ramp.planned_length(),
            ScenarioSpec::Cache(cache) => cache.load.planned_length(),
            // Its length is what the queries take; `max_duration` bounds it.
            ScenarioSpec::Pagination(_) => None,
            ScenarioSpec::Scrape(scrape) => scrape.planned_length(),
        }
    }
}

impl Plan {
    /// Parses and validates plan text; `file` names it in error locations, and relative `ca_file` paths are read
    /// from its folder.
    pub fn parse(file: &str, text: &str) -> Result<Plan, PlanError> {
        validate::parse(file, text)
    }
}

#[cfg(test)]
mod hostile_tests;
#[cfg(test)]
mod tests;
