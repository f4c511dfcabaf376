//! Plans: the typed, validated form of a plan file (format v1, DESIGN.md). Parse with [`Plan::parse`].

mod errors;
mod ramp;
mod raw;
mod validate;

pub use errors::{PlanError, PlanIssue};

use crate::grade::Grade;
use crate::profile::{Profile, Stage};
use crate::threshold::Threshold;
use std::time::Duration;

/// A validated plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub name: String,
    /// Agents the run waits for before any load. Default: 1.
    pub min_agents: u32,
    /// How long to wait for `min_agents`. Default: 30 s.
    pub ready_timeout: Duration,
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

#[derive(Debug, Clone, PartialEq)]
pub enum ScenarioSpec {
    Http(HttpSpec),
    Ramp(RampSpec),
}

impl Scenario {
    /// The plan's `kind` value.
    pub fn kind(&self) -> &'static str {
        match self.spec {
            ScenarioSpec::Http(_) => "http",
            ScenarioSpec::Ramp(_) => "ramp",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
    pub url: String,
    /// Default: GET.
    pub method: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
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
    /// HTTP/2 (`http = "2"`): prior knowledge on http://, ALPN h2 on https://. Default: HTTP/1.1.
    pub http2: bool,
    /// `ca_file`'s certificates (PEM), trusted for https:// besides the system roots. Read when the plan is
    /// validated, relative to the plan file's folder.
    pub ca_pem: Vec<u8>,
    /// Total request budget across agents.
    pub requests: Option<u64>,
    /// Run before the measured phase, excluded from results. Default: 0.
    pub warmup: Duration,
    /// Open model: arrivals that may wait for a free connection, across agents. Default: 5 s of arrivals.
    pub max_backlog: u64,
    /// Per request. Default: 10 s.
    pub timeout: Duration,
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
    pub cliff: CliffRule,
    /// What measures the target's memory; `None`: memory figures are not measured.
    pub probe: Option<ProbeSpec>,
    /// End the ramp at the first step past the cliff. Default: false.
    pub stop_at_cliff: bool,
    /// Share of max_concurrency where autoscaling should trigger. Default: 0.75.
    pub autoscale_at: f64,
}

impl RampSpec {
    /// The HTTP scenario of step `index`.
    pub fn step(&self, index: usize) -> HttpSpec {
        let mut spec = self.base.clone();
        spec.connections = self.steps[index];
        spec
    }
}

/// When a step is past the cliff (any rule).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CliffRule {
    /// p95 above this times the first step's p95. Default: 4.0.
    pub latency_factor: f64,
    /// Error rate above this. Default: 0.01.
    pub error_rate: f64,
    /// Throughput more than this share below the best earlier step. Default: 0.10.
    pub throughput_drop: f64,
}

impl Default for CliffRule {
    fn default() -> Self {
        CliffRule {
            latency_factor: 4.0,
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
    Agent {
        agent: String,
        target: crate::local_probe::LocalTarget,
    },
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
}

impl Plan {
    /// Parses and validates plan text; `file` names it in error locations, and relative `ca_file` paths are read
    /// from its folder.
    pub fn parse(file: &str, text: &str) -> Result<Plan, PlanError> {
        validate::parse(file, text)
    }
}

#[cfg(test)]
mod tests;
