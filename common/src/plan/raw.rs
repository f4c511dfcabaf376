//! The plan as written: serde structs mirroring the TOML, every value kept with its span for error locations.
//! Only [`super::validate`] reads these; the typed [`super::Plan`] is what travels on.

use serde::Deserialize;
use std::collections::BTreeMap;
use toml::Spanned;

type Field<T> = Option<Spanned<T>>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPlan {
    pub name: Field<String>,
    pub min_agents: Field<i64>,
    pub ready_timeout: Field<String>,
    pub budget: Option<RawBudget>,
    pub grading: Option<RawGrading>,
    #[serde(default, rename = "scenario")]
    pub scenarios: Vec<Spanned<RawScenario>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBudget {
    pub memory: Field<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawGrading {
    pub fail_below: Field<String>,
}

/// One `[[scenario]]` table. Fields of every kind are known here, so that a field on the wrong kind gets a
/// precise message rather than "unknown field".
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawScenario {
    pub name: Field<String>,
    pub kind: Field<String>,
    #[serde(default)]
    pub thresholds: Vec<Spanned<String>>,

    // http
    pub url: Field<String>,
    pub method: Field<String>,
    pub headers: Field<BTreeMap<String, String>>,
    pub body: Field<String>,
    pub model: Field<String>,
    pub rate: Field<i64>,
    pub connections: Field<i64>,
    pub duration: Field<String>,
    pub requests: Field<i64>,
    pub warmup: Field<String>,
    pub max_backlog: Field<i64>,
    pub timeout: Field<String>,
    pub stages: Option<Vec<Spanned<RawStage>>>,
    pub arrivals: Field<String>,
    pub http: Field<String>,
    pub ca_file: Field<String>,

    // kinds this build does not run yet: accepted by the parser so the kind check can name them
    pub start: Field<toml::Value>,
    pub stop: Field<toml::Value>,
    pub step: Field<toml::Value>,
    pub hold: Field<toml::Value>,
    pub cliff: Field<toml::Value>,
    pub probe: Field<toml::Value>,
    pub stop_at_cliff: Field<bool>,
    pub autoscale_at: Field<f64>,
    pub mode: Field<toml::Value>,
    pub redis: Field<toml::Value>,
    pub origin: Field<toml::Value>,
    pub key_space: Field<toml::Value>,
    pub zipf: Field<toml::Value>,
    pub ttl: Field<toml::Value>,
    pub database: Field<toml::Value>,
    pub table: Field<toml::Value>,
    pub key: Field<toml::Value>,
    pub page_size: Field<toml::Value>,
    pub pages: Field<toml::Value>,
    pub seed_rows: Field<toml::Value>,
    pub iterations: Field<toml::Value>,
    pub target: Field<toml::Value>,
    pub intervals: Field<toml::Value>,
    pub prometheus: Field<toml::Value>,
}

/// One entry of `stages = [{ rate = .., duration = ".." }, ..]` (or `connections` for the closed model).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawStage {
    pub rate: Field<i64>,
    pub connections: Field<i64>,
    pub duration: Field<String>,
}
