//! The scenario kinds: the one enum that ties a kind's plan module, report metrics, agent executor, coordinator
//! module and renderer section together (ARCHITECTURE.md has the recipe for adding one).

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScenarioKind {
    /// API latency: closed or open model, constant or staged.
    Http,
    /// Concurrent capacity: closed-model steps, the target probed, cliff and capacity analysis.
    Ramp,
    /// Cache effectiveness: hit rate, hit vs miss latency, speedup, the cache server's own figures.
    Cache,
    /// OFFSET vs keyset pagination by page depth on a real database.
    Pagination,
    /// Monitoring cost: scrape interval A vs B at the target and on a real Prometheus.
    Scrape,
}

/// Kinds named in DESIGN.md that this build does not run yet: recognised so a plan gets a clear message.
pub const PLANNED_KINDS: &[&str] = &[];

impl ScenarioKind {
    /// Every kind this build runs.
    pub const ALL: [ScenarioKind; 5] = [
        ScenarioKind::Http,
        ScenarioKind::Ramp,
        ScenarioKind::Cache,
        ScenarioKind::Pagination,
        ScenarioKind::Scrape,
    ];

    /// The plan's `kind` value.
    pub fn as_str(self) -> &'static str {
        match self {
            ScenarioKind::Http => "http",
            ScenarioKind::Ramp => "ramp",
            ScenarioKind::Cache => "cache",
            ScenarioKind::Pagination => "pagination",
            ScenarioKind::Scrape => "scrape",
        }
    }

    /// Metric paths a threshold may name for this kind; anything else is a plan error.
    pub fn metric_paths(self) -> Vec<String> {
        match self {
            ScenarioKind::Http => crate::report::http::metric_paths(),
            ScenarioKind::Ramp => crate::report::ramp::metric_paths(),
            ScenarioKind::Cache => crate::report::cache::metric_paths(),
            ScenarioKind::Pagination => crate::report::pagination::metric_paths(),
            ScenarioKind::Scrape => crate::report::scrape::metric_paths(),
        }
    }

    /// The supported kinds as a list for messages: "http, ramp".
    pub fn list() -> String {
        ScenarioKind::ALL.map(ScenarioKind::as_str).join(", ")
    }
}

impl fmt::Display for ScenarioKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A `kind` this build does not run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnknownKind {
    #[error("kind {0:?} is not supported by this build yet (supported: {list})", list = ScenarioKind::list())]
    Planned(String),
    #[error("unknown kind {0:?}: expected one of {list}", list = ScenarioKind::list())]
    Unknown(String),
}

impl FromStr for ScenarioKind {
    type Err = UnknownKind;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match ScenarioKind::ALL.iter().find(|k| k.as_str() == s) {
            Some(kind) => Ok(*kind),
            None if PLANNED_KINDS.contains(&s) => Err(UnknownKind::Planned(s.to_owned())),
            None => Err(UnknownKind::Unknown(s.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_and_planned_ones_are_named() {
        for kind in ScenarioKind::ALL {
            assert_eq!(kind.as_str().parse::<ScenarioKind>(), Ok(kind));
        }
        assert!(
            "nope"
                .parse::<ScenarioKind>()
                .expect_err("unknown")
                .to_string()
                .contains("expected one of http, ramp")
        );
    }
}
