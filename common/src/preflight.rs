//! Preflight checks as both sides and the command line see them: one row per check (and agent), ok / warn / fail,
//! the measured value and what to do about it. `loadgrade check` prints them; every run makes them before any load
//! and does not start when one fails.

use std::fmt;

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CheckStatus {
    Ok,
    /// Runs, but a figure may suffer (close to a limit, a clock far off).
    Warn,
    /// The run would fail or measure nothing useful: it does not start.
    Fail,
}

impl CheckStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckStatus::Ok => "ok",
            CheckStatus::Warn => "warn",
            CheckStatus::Fail => "fail",
        }
    }
}

impl fmt::Display for CheckStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a row checked. Decisions are taken on the kind (the coordinator touches a cache's Redis only when every
/// agent's `Accepted` row is ok and no `Accepted`, `Allowlist`, `Caps` or `Reachability` row failed), never on text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CheckKind {
    /// The plan parses and validates (coordinator).
    Plan,
    /// Enough agents are connected (coordinator).
    Agents,
    /// An agent's version against the coordinator's.
    AgentVersion,
    /// An agent's clock against the coordinator's.
    ClockOffset,
    /// An agent answered the preflight at all.
    AgentAnswer,
    /// Free disk for the coordinator's store.
    StoreDisk,
    /// Free disk for an agent's spool.
    SpoolDisk,
    /// An agent's open-file limit against its share.
    OpenFiles,
    /// An agent's ephemeral ports against its share.
    EphemeralPorts,
    /// The agent accepted the scenario's target: allowlist, caps and credentials passed.
    Accepted,
    /// The target is outside the agent's allowlist.
    Allowlist,
    /// The share is over the agent's caps.
    Caps,
    /// The target answered a probe from the agent.
    Reachability,
}

impl CheckKind {
    pub const ALL: [CheckKind; 13] = [
        CheckKind::Plan,
        CheckKind::Agents,
        CheckKind::AgentVersion,
        CheckKind::ClockOffset,
        CheckKind::AgentAnswer,
        CheckKind::StoreDisk,
        CheckKind::SpoolDisk,
        CheckKind::OpenFiles,
        CheckKind::EphemeralPorts,
        CheckKind::Accepted,
        CheckKind::Allowlist,
        CheckKind::Caps,
        CheckKind::Reachability,
    ];

    /// The name `loadgrade check` prints.
    pub fn as_str(self) -> &'static str {
        match self {
            CheckKind::Plan => "plan",
            CheckKind::Agents => "agents",
            CheckKind::AgentVersion => "agent version",
            CheckKind::ClockOffset => "clock offset",
            CheckKind::AgentAnswer => "agent answer",
            CheckKind::StoreDisk => "store disk",
            CheckKind::SpoolDisk => "spool disk",
            CheckKind::OpenFiles => "open files",
            CheckKind::EphemeralPorts => "ephemeral ports",
            CheckKind::Accepted => "accepted",
            CheckKind::Allowlist => "allowlist",
            CheckKind::Caps => "caps",
            CheckKind::Reachability => "reachability",
        }
    }

    /// Whether a failed row of this kind means an agent refused the scenario's target.
    pub fn refuses_target(self) -> bool {
        matches!(
            self,
            CheckKind::Accepted | CheckKind::Allowlist | CheckKind::Caps | CheckKind::Reachability
        )
    }
}

impl fmt::Display for CheckKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// One check's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckRow {
    /// What was checked.
    pub check: CheckKind,
    /// The agent it ran on; empty: the coordinator.
    pub agent: String,
    /// The scenario it is about; empty: the whole run.
    pub scenario: String,
    pub status: CheckStatus,
    /// What was measured or found.
    pub value: String,
    /// What to do about a warn or a fail; empty for ok.
    pub hint: String,
}

impl CheckRow {
    pub fn new(check: CheckKind, status: CheckStatus, value: impl Into<String>) -> CheckRow {
        CheckRow {
            check,
            agent: String::new(),
            scenario: String::new(),
            status,
            value: value.into(),
            hint: String::new(),
        }
    }

    pub fn ok(check: CheckKind, value: impl Into<String>) -> CheckRow {
        CheckRow::new(check, CheckStatus::Ok, value)
    }

    pub fn warn(check: CheckKind, value: impl Into<String>, hint: impl Into<String>) -> CheckRow {
        CheckRow::new(check, CheckStatus::Warn, value).hint(hint)
    }

    pub fn fail(check: CheckKind, value: impl Into<String>, hint: impl Into<String>) -> CheckRow {
        CheckRow::new(check, CheckStatus::Fail, value).hint(hint)
    }

    pub fn hint(mut self, hint: impl Into<String>) -> CheckRow {
        self.hint = hint.into();
        self
    }

    pub fn on_agent(mut self, agent: &str) -> CheckRow {
        agent.clone_into(&mut self.agent);
        self
    }

    pub fn for_scenario(mut self, scenario: &str) -> CheckRow {
        scenario.clone_into(&mut self.scenario);
        self
    }
}

/// The worst status among `rows` (ok when there are none).
pub fn worst(rows: &[CheckRow]) -> CheckStatus {
    rows.iter()
        .map(|r| r.status)
        .max()
        .unwrap_or(CheckStatus::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worst_row_decides() {
        let rows = vec![
            CheckRow::ok(CheckKind::Plan, "1"),
            CheckRow::warn(CheckKind::ClockOffset, "2", "do x"),
        ];
        assert_eq!(worst(&rows), CheckStatus::Warn);
        assert_eq!(worst(&[]), CheckStatus::Ok);
        let failing = CheckRow::fail(CheckKind::Caps, "3", "do y").on_agent("box-1");
        assert_eq!(worst(std::slice::from_ref(&failing)), CheckStatus::Fail);
        assert_eq!(failing.agent, "box-1");
    }
}
