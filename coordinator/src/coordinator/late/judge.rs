//! How a late interval is judged after a coordinator restart: against the shard recorded when it was assigned (the
//! epoch of the session it was assigned in, which stamps every interval of it; time not covered already; then the
//! bounds and plausibility any interval meets), with what was stored before the stop booked first.

use crate::run::intake::{self, IntakeError, Ledger, ShardBounds};
use crate::store::StoredShard;
use loadgrade_common::clock::unix_ms;
use loadgrade_common::interval::IntervalReport;
use loadgrade_common::shard::PartId;
use std::collections::{HashMap, HashSet};

/// Why a late interval was refused.
#[derive(Debug, thiserror::Error)]
pub(super) enum LateRefusal {
    #[error(transparent)]
    Intake(#[from] IntakeError),
    #[error(
        "it carries epoch {epoch}, not the one of the session its shard was assigned in: no interval of the shard \
         can"
    )]
    OtherEpoch { epoch: u64 },
    #[error(
        "it covers time ({start_ms} ms into the part) that an interval of the same shard already covers"
    )]
    Overlaps { start_ms: i64 },
}

/// Slack for the overlap of two consecutive intervals of one shard (the agent cuts them on its own clock).
const OVERLAP_SLACK_MS: i64 = 5;

/// One recorded shard: its bounds, what its accepted intervals add up to, its session's epoch, and the time its
/// accepted intervals cover.
struct Judged {
    bounds: ShardBounds,
    ledger: Ledger,
    epoch: u64,
    spans: Vec<(i64, i64)>,
}

/// Late intervals judged against the recorded shards, with what was stored before the stop booked.
pub(super) struct Judge {
    shards: HashMap<(String, PartId), Judged>,
    pub(super) stored: HashSet<(String, u64, u64)>,
}

pub(super) fn span(report: &IntervalReport) -> (i64, i64) {
    let start = report.start_unix_ms;
    (start, start.saturating_add(i64::from(report.duration_ms)))
}

impl Judge {
    pub(super) fn new(shards: &[StoredShard], stored: &[IntervalReport]) -> Judge {
        let mut judged: HashMap<(String, PartId), Judged> = shards
            .iter()
            .map(|s| {
                let bounds = ShardBounds {
                    start_unix_ms: s.start_unix_ms,
                    bound_ms: s.bound_ms,
                    connections: s.connections,
                };
                let judged = Judged {
                    bounds,
                    ledger: Ledger::default(),
                    epoch: s.epoch,
                    spans: Vec::new(),
                };
                ((s.agent.clone(), s.part.clone()), judged)
            })
            .collect();
        for report in stored {
            if let Some(j) = judged.get_mut(&(report.agent.clone(), report.part.clone())) {
                j.ledger.book(report);
                j.spans.push(span(report));
            }
        }
        Judge {
            shards: judged,
            stored: stored
                .iter()
                .map(|r| (r.agent.clone(), r.epoch, r.seq))
                .collect(),
        }
    }

    /// Judges `report`: of the shard's own session (its epoch), over no time already covered, then as any interval
    /// (bounds, plausibility); booked when it passes.
    pub(super) fn check(&mut self, report: &IntervalReport) -> Result<(), LateRefusal> {
        let Some(j) = self
            .shards
            .get_mut(&(report.agent.clone(), report.part.clone()))
        else {
            return Err(IntakeError::NotAssigned.into());
        };
        if report.epoch != j.epoch {
            return Err(LateRefusal::OtherEpoch {
                epoch: report.epoch,
            });
        }
        let (start, end) = span(report);
        if j.spans
            .iter()
            .any(|&(s, e)| start < e - OVERLAP_SLACK_MS && s < end - OVERLAP_SLACK_MS)
        {
            return Err(LateRefusal::Overlaps {
                start_ms: start - j.bounds.start_unix_ms,
            });
        }
        let decoded = intake::check(report)?;
        intake::check_plausible(report, &decoded, &j.bounds, unix_ms(), &mut j.ledger)?;
        j.spans.push((start, end));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shard(epoch: u64) -> StoredShard {
        StoredShard {
            agent: "a".into(),
            part: PartId {
                scenario: "s".into(),
                stage: 0,
            },
            start_unix_ms: 1_000,
            bound_ms: 60_000,
            connections: 2,
            epoch,
        }
    }

    fn interval(epoch: u64, seq: u64, start_unix_ms: i64) -> IntervalReport {
        IntervalReport {
            run_id: "r".into(),
            agent: "a".into(),
            epoch,
            seq,
            part: shard(epoch).part,
            start_unix_ms,
            duration_ms: 1_000,
            ..IntervalReport::default()
        }
    }

    #[test]
    fn a_late_interval_of_another_session_or_over_covered_time_is_refused() {
        let stored = interval(7, 0, 1_000);
        let mut judge = Judge::new(&[shard(7)], std::slice::from_ref(&stored));
        // A forger that does not know the shard's epoch (or replays under a new one).
        let other = interval(8, 0, 2_000);
        assert!(matches!(
            judge.check(&other),
            Err(LateRefusal::OtherEpoch { epoch: 8 })
        ));
        // The same time again under a new sequence number.
        let again = interval(7, 5, 1_400);
        assert!(matches!(
            judge.check(&again),
            Err(LateRefusal::Overlaps { start_ms: 400 })
        ));
        // Another part is not this agent's.
        let elsewhere = IntervalReport {
            part: PartId {
                scenario: "other".into(),
                stage: 0,
            },
            ..interval(7, 6, 2_000)
        };
        assert!(matches!(
            judge.check(&elsewhere),
            Err(LateRefusal::Intake(IntakeError::NotAssigned))
        ));
        // The next second of the shard's own session passes these checks and is judged as any interval.
        let next = interval(7, 1, 2_000);
        assert!(
            !matches!(
                judge.check(&next),
                Err(LateRefusal::OtherEpoch { .. } | LateRefusal::Overlaps { .. })
            ),
            "the next second is not refused for its epoch or its time"
        );
    }
}
