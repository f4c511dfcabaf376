//! The run service's types: run states, verdicts, events and listings.

use super::{ConvertError, agent_text, known};
use crate::v1;
use loadgrade_common::grade::Verdict;
use loadgrade_common::preflight::{CheckKind, CheckRow, CheckStatus};
use loadgrade_common::run::{AgentSummary, RunEvent, RunState, RunSummary, StoredReport};

impl From<RunState> for v1::RunState {
    fn from(s: RunState) -> Self {
        match s {
            RunState::Queued => v1::RunState::Queued,
            RunState::Waiting => v1::RunState::Waiting,
            RunState::Running => v1::RunState::Running,
            RunState::Finished => v1::RunState::Finished,
            RunState::Cancelled => v1::RunState::Cancelled,
            RunState::Error => v1::RunState::Error,
            RunState::Interrupted => v1::RunState::Interrupted,
        }
    }
}

fn run_state(value: i32) -> Result<RunState, ConvertError> {
    Ok(match known::<v1::RunState>("RunState", value)? {
        v1::RunState::Queued => RunState::Queued,
        v1::RunState::Waiting => RunState::Waiting,
        v1::RunState::Running => RunState::Running,
        v1::RunState::Finished => RunState::Finished,
        v1::RunState::Cancelled => RunState::Cancelled,
        v1::RunState::Error => RunState::Error,
        v1::RunState::Interrupted => RunState::Interrupted,
        v1::RunState::Unspecified => {
            return Err(ConvertError::UnknownEnum {
                field: "RunState",
                value,
            });
        }
    })
}

fn verdict_to_wire(v: Option<Verdict>) -> i32 {
    (match v {
        None => v1::Verdict::Unspecified,
        Some(Verdict::Pass) => v1::Verdict::Pass,
        Some(Verdict::Fail) => v1::Verdict::Fail,
        Some(Verdict::Degraded) => v1::Verdict::Degraded,
        Some(Verdict::Invalid) => v1::Verdict::Invalid,
    }) as i32
}

/// A verdict from the wire; unspecified is `None` (not graded yet).
fn verdict(value: i32) -> Result<Option<Verdict>, ConvertError> {
    Ok(match known::<v1::Verdict>("Verdict", value)? {
        v1::Verdict::Unspecified => None,
        v1::Verdict::Pass => Some(Verdict::Pass),
        v1::Verdict::Fail => Some(Verdict::Fail),
        v1::Verdict::Degraded => Some(Verdict::Degraded),
        v1::Verdict::Invalid => Some(Verdict::Invalid),
    })
}

impl From<RunEvent> for v1::RunEvent {
    fn from(e: RunEvent) -> Self {
        v1::RunEvent {
            run_id: e.run_id,
            message: e.message,
            state: v1::RunState::from(e.state) as i32,
            verdict: verdict_to_wire(e.verdict),
            progress: e.progress,
        }
    }
}

impl TryFrom<v1::RunEvent> for RunEvent {
    type Error = ConvertError;

    fn try_from(e: v1::RunEvent) -> Result<Self, ConvertError> {
        Ok(RunEvent {
            run_id: e.run_id,
            state: run_state(e.state)?,
            message: e.message,
            verdict: verdict(e.verdict)?,
            progress: e.progress,
        })
    }
}

impl From<RunSummary> for v1::RunSummary {
    fn from(r: RunSummary) -> Self {
        v1::RunSummary {
            run_id: r.id,
            plan_name: r.plan_name,
            started_at: r.started_at,
            state: v1::RunState::from(r.state) as i32,
            verdict: verdict_to_wire(r.verdict),
        }
    }
}

impl TryFrom<v1::RunSummary> for RunSummary {
    type Error = ConvertError;

    fn try_from(r: v1::RunSummary) -> Result<Self, ConvertError> {
        Ok(RunSummary {
            id: r.run_id,
            plan_name: r.plan_name,
            state: run_state(r.state)?,
            verdict: verdict(r.verdict)?,
            started_at: r.started_at,
        })
    }
}

mirror!(
    AgentSummary,
    v1::AgentSummary {
        name,
        version,
        cores,
        epoch,
        busy,
        labels,
        probe_only
    }
);

// === impl CheckRow ===

impl From<CheckRow> for v1::CheckRow {
    fn from(r: CheckRow) -> Self {
        v1::CheckRow {
            kind: check_kind_to_wire(r.check) as i32,
            agent: r.agent,
            scenario: r.scenario,
            status: match r.status {
                CheckStatus::Ok => v1::CheckStatus::Ok,
                CheckStatus::Warn => v1::CheckStatus::Warn,
                CheckStatus::Fail => v1::CheckStatus::Fail,
            } as i32,
            value: r.value,
            hint: r.hint,
        }
    }
}

impl TryFrom<v1::CheckRow> for CheckRow {
    type Error = ConvertError;

    fn try_from(r: v1::CheckRow) -> Result<Self, ConvertError> {
        let status = match known::<v1::CheckStatus>("CheckRow.status", r.status)? {
            v1::CheckStatus::Ok => CheckStatus::Ok,
            v1::CheckStatus::Warn => CheckStatus::Warn,
            v1::CheckStatus::Fail => CheckStatus::Fail,
            v1::CheckStatus::Unspecified => {
                return Err(ConvertError::UnknownEnum {
                    field: "CheckRow.status",
                    value: r.status,
                });
            }
        };
        let kind = known::<v1::CheckKind>("CheckRow.kind", r.kind)?;
        let check = check_kind_from_wire(kind).ok_or(ConvertError::UnknownEnum {
            field: "CheckRow.kind",
            value: r.kind,
        })?;
        Ok(CheckRow {
            check,
            agent: agent_text(r.agent),
            scenario: agent_text(r.scenario),
            status,
            value: agent_text(r.value),
            hint: agent_text(r.hint),
        })
    }
}

fn check_kind_to_wire(kind: CheckKind) -> v1::CheckKind {
    match kind {
        CheckKind::Plan => v1::CheckKind::Plan,
        CheckKind::Agents => v1::CheckKind::Agents,
        CheckKind::AgentVersion => v1::CheckKind::AgentVersion,
        CheckKind::ClockOffset => v1::CheckKind::ClockOffset,
        CheckKind::AgentAnswer => v1::CheckKind::AgentAnswer,
        CheckKind::StoreDisk => v1::CheckKind::StoreDisk,
        CheckKind::SpoolDisk => v1::CheckKind::SpoolDisk,
        CheckKind::OpenFiles => v1::CheckKind::OpenFiles,
        CheckKind::EphemeralPorts => v1::CheckKind::EphemeralPorts,
        CheckKind::Accepted => v1::CheckKind::Accepted,
        CheckKind::Allowlist => v1::CheckKind::Allowlist,
        CheckKind::Caps => v1::CheckKind::Caps,
        CheckKind::Reachability => v1::CheckKind::Reachability,
    }
}

/// `None` for the unspecified kind: a row must say what it checked.
fn check_kind_from_wire(kind: v1::CheckKind) -> Option<CheckKind> {
    Some(match kind {
        v1::CheckKind::Unspecified => return None,
        v1::CheckKind::Plan => CheckKind::Plan,
        v1::CheckKind::Agents => CheckKind::Agents,
        v1::CheckKind::AgentVersion => CheckKind::AgentVersion,
        v1::CheckKind::ClockOffset => CheckKind::ClockOffset,
        v1::CheckKind::AgentAnswer => CheckKind::AgentAnswer,
        v1::CheckKind::StoreDisk => CheckKind::StoreDisk,
        v1::CheckKind::SpoolDisk => CheckKind::SpoolDisk,
        v1::CheckKind::OpenFiles => CheckKind::OpenFiles,
        v1::CheckKind::EphemeralPorts => CheckKind::EphemeralPorts,
        v1::CheckKind::Accepted => CheckKind::Accepted,
        v1::CheckKind::Allowlist => CheckKind::Allowlist,
        v1::CheckKind::Caps => CheckKind::Caps,
        v1::CheckKind::Reachability => CheckKind::Reachability,
    })
}

impl From<StoredReport> for v1::GetReportResponse {
    fn from(r: StoredReport) -> Self {
        v1::GetReportResponse {
            report_json: r.json,
            report_md: r.markdown,
            verdict: verdict_to_wire(Some(r.verdict)),
        }
    }
}

impl TryFrom<v1::GetReportResponse> for StoredReport {
    type Error = ConvertError;

    fn try_from(r: v1::GetReportResponse) -> Result<Self, ConvertError> {
        Ok(StoredReport {
            verdict: verdict(r.verdict)?
                .ok_or(ConvertError::Missing("GetReportResponse.verdict"))?,
            json: r.report_json,
            markdown: r.report_md,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_and_verdicts_survive_the_wire() {
        for state in RunState::ALL {
            for verdict in [None, Some(Verdict::Pass), Some(Verdict::Invalid)] {
                let event = RunEvent {
                    run_id: "r".into(),
                    state,
                    message: "m".into(),
                    verdict,
                    progress: verdict.is_none(),
                };
                assert_eq!(
                    RunEvent::try_from(v1::RunEvent::from(event.clone())),
                    Ok(event)
                );
            }
        }
        assert!(
            RunEvent::try_from(v1::RunEvent::default()).is_err(),
            "no state"
        );
    }

    #[test]
    fn every_check_kind_survives_the_wire_and_a_row_must_name_one() {
        for kind in CheckKind::ALL {
            let row = CheckRow::fail(kind, "v", "h").on_agent("box-1");
            assert_eq!(CheckRow::try_from(v1::CheckRow::from(row.clone())), Ok(row));
        }
        let unnamed = v1::CheckRow {
            status: v1::CheckStatus::Ok as i32,
            ..v1::CheckRow::default()
        };
        assert!(
            CheckRow::try_from(unnamed).is_err(),
            "a row without a kind is refused, never read as some check"
        );
        let unknown = v1::CheckRow {
            kind: 999,
            status: v1::CheckStatus::Ok as i32,
            ..v1::CheckRow::default()
        };
        assert!(CheckRow::try_from(unknown).is_err());
    }
}
