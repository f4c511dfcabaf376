//! Runs as the run service, the store and the command line see them: one state enum, the events a watcher gets,
//! and the summaries listings show.

use crate::grade::Verdict;
use std::fmt;
use std::str::FromStr;

/// Where a run is. [`RunState::Queued`], [`RunState::Waiting`] and [`RunState::Running`] are in progress; the
/// others are final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RunState {
    /// Accepted; waiting for an earlier run on the same agents to end.
    Queued,
    /// Accepted; waiting for min_agents.
    Waiting,
    Running,
    /// Ended and graded; the report is stored.
    Finished,
    /// Cancelled; the report of what was measured is stored (verdict INVALID).
    Cancelled,
    /// The run task failed; its agents were stopped.
    Error,
    /// The coordinator stopped (a restart or a crash) while the run was in progress; its report holds what was
    /// stored until then.
    Interrupted,
}

impl RunState {
    pub const ALL: [RunState; 7] = [
        RunState::Queued,
        RunState::Waiting,
        RunState::Running,
        RunState::Finished,
        RunState::Cancelled,
        RunState::Error,
        RunState::Interrupted,
    ];

    /// The name the store and listings use.
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Queued => "queued",
            RunState::Waiting => "waiting",
            RunState::Running => "running",
            RunState::Finished => "finished",
            RunState::Cancelled => "cancelled",
            RunState::Error => "error",
            RunState::Interrupted => "interrupted",
        }
    }

    /// The run will not change any more.
    pub fn is_final(self) -> bool {
        !matches!(
            self,
            RunState::Queued | RunState::Waiting | RunState::Running
        )
    }
}

impl fmt::Display for RunState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown run state {0:?}")]
pub struct UnknownState(pub String);

impl FromStr for RunState {
    type Err = UnknownState;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RunState::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| UnknownState(s.to_owned()))
    }
}

/// The latest news of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunEvent {
    pub run_id: String,
    pub state: RunState,
    pub message: String,
    /// Set once the run is graded.
    pub verdict: Option<Verdict>,
    /// A progress line the next one supersedes (a live view may overwrite it in place).
    pub progress: bool,
}

/// A run in a listing.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSummary {
    pub id: String,
    pub plan_name: String,
    pub state: RunState,
    pub verdict: Option<Verdict>,
    /// RFC 3339.
    pub started_at: String,
}

/// A connected agent in a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentSummary {
    pub name: String,
    pub version: String,
    pub cores: u32,
    pub epoch: u64,
    pub busy: bool,
    pub labels: std::collections::BTreeMap<String, String>,
    pub probe_only: bool,
}

/// A finished run's reports as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredReport {
    pub verdict: Verdict,
    pub json: String,
    pub markdown: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_through_their_names() {
        for state in RunState::ALL {
            assert_eq!(state.as_str().parse::<RunState>(), Ok(state));
        }
        assert!("progress".parse::<RunState>().is_err());
        assert!(RunState::Cancelled.is_final() && !RunState::Running.is_final());
    }
}
