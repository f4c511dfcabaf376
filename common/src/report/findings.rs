//! Findings: what a run found wrong with its own measurement. Each has a kind (what the runner, the grader and
//! `compare` match on) and a message (for people). Their severity makes the verdict INVALID or DEGRADED.

use serde::{Deserialize, Serialize};

/// How much a finding costs the result's trust.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The result can be partly trusted: verdict DEGRADED.
    Degraded,
    /// The result cannot be trusted: verdict INVALID.
    Invalid,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// Too few agents were ready; no load was sent.
    NoAgents,
    /// The run was cancelled before it finished.
    Cancelled,
    /// The run task itself failed; its agents were stopped.
    RunFailed,
    /// The coordinator stopped while the run was in progress.
    Interrupted,
    /// An agent was gone before a part it was given could start.
    AgentGone,
    /// An agent refused its shard (allowlist, limits, bad target).
    AgentRefused,
    /// An agent's shard failed; its figures are incomplete.
    AgentFailed,
    /// An agent assigned work sent no interval for it.
    AgentNeverReported,
    /// An agent did not finish after being stopped.
    AgentUnresponsive,
    /// An agent was lost mid-part; its intervals up to then are included.
    AgentLost,
    /// No agent was left to run a part.
    NoAgentLeft,
    /// A part ran past its time bound and was stopped.
    Overran,
    /// The generator fell behind (lag, drops, CPU, file descriptors, ports).
    GeneratorFault,
    /// An interval could not be stored or did not decode.
    BadInterval,
    /// No response arrived from the target, so nothing about it was measured.
    NoResponse,
    /// A thresholded figure was not measured.
    NotMeasured,
    /// The cache server could not be prepared as the plan asks (flush).
    CacheServer,
    /// A preflight check failed before any load (a target that does not answer, a limit too low); nothing ran.
    PreflightFailed,
}

impl FindingKind {
    pub fn severity(self) -> Severity {
        match self {
            FindingKind::AgentLost | FindingKind::Overran => Severity::Degraded,
            _ => Severity::Invalid,
        }
    }
}

/// One thing wrong with the measurement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub kind: FindingKind,
    pub message: String,
}

impl Finding {
    pub fn new(kind: FindingKind, message: impl Into<String>) -> Self {
        Finding {
            kind,
            message: message.into(),
        }
    }

    pub fn severity(&self) -> Severity {
        self.kind.severity()
    }
}
