//! Runs as the run service, the store and the command line see them: one state enum, the events a watcher gets,
//! and the summaries listings show.

use crate::grade::Verdict;
use std::fmt;
use std::str::FromStr;

/// Whether `id` has the form of a run id: UTC time to the second, `Z`, a dash and 4 lower-case hex digits
/// (`20261127T001530Z-3f9a`), optionally after `check-` for a preflight check. A client takes an id from the wire
/// only in this form: it names a folder, and `../x` or `/etc` must never be one.
pub fn is_run_id(id: &str) -> bool {
    let id = id.strip_prefix("check-").unwrap_or(id);
    let b = id.as_bytes();
    b.len() == 21
        && b[..8].iter().all(u8::is_ascii_digit)
        && b[8] == b'T'
        && b[9..15].iter().all(u8::is_ascii_digit)
        && b[15] == b'Z'
        && b[16] == b'-'
        && b[17..]
            .iter()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c))
}

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
    use super::is_run_id;

    /// Regression (issue 20): a fake coordinator's run id `../../PWNED_dir` (or an absolute path) made `submit`
    /// write its reports there.
    #[test]
    fn only_run_ids_of_the_coordinators_form_are_accepted() {
        for good in ["20261127T001530Z-3f9a", "check-20261127T001530Z-0000"] {
            assert!(is_run_id(good), "{good}");
        }
        for bad in [
            "../../PWNED_dir",
            "/etc",
            "20261127T001530Z-3f9a/../x",
            "20261127T001530Z-3F9A",
            "20261127T001530Z-3f9",
            "",
            ".",
            "20261127T001530Z-3f9a\n",
            "check-",
        ] {
            assert!(!is_run_id(bad), "{bad:?}");
        }
    }

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
