//! How far into a part an agent's figures reach: when an agent is lost mid-part, the report states the gap.

use loadgrade_common::interval::IntervalReport;
use std::time::Duration;

/// One agent's reach into a part.
#[derive(Debug, Default, Clone, Copy)]
pub struct Coverage {
    /// The end of its latest interval, coordinator clock, Unix ms.
    last_end_unix_ms: i64,
    /// Intervals that arrived after the agent was taken as lost (kept by the agent until acknowledged).
    late: u64,
}

impl Coverage {
    pub fn add(&mut self, report: &IntervalReport, agent_taken_as_lost: bool) {
        let end = report
            .start_unix_ms
            .saturating_add(i64::from(report.duration_ms));
        self.last_end_unix_ms = self.last_end_unix_ms.max(end);
        if agent_taken_as_lost {
            self.late += 1;
        }
    }

    /// The finding text for an agent lost during part `label`, which started at `start_at_unix_ms`.
    pub fn lost_message(
        &self,
        agent: &str,
        label: &str,
        intervals: u64,
        start_at_unix_ms: i64,
        planned: Option<Duration>,
    ) -> String {
        let covered_s = self
            .last_end_unix_ms
            .saturating_sub(start_at_unix_ms)
            .max(0) as f64
            / 1000.0;
        let planned = planned
            .map(|p| format!(" of the planned {:.1} s", p.as_secs_f64()))
            .unwrap_or_default();
        let late = match self.late {
            0 => String::new(),
            n => format!(
                "; {n} of them arrived after it was taken as lost (kept by the agent until acknowledged)"
            ),
        };
        format!(
            "agent {agent:?} was lost during scenario {label}: its {intervals} intervals cover the first \
             {covered_s:.1} s{planned} (warm-up included){late}; after that the scenario's figures come from the \
             other agents only"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gap_is_stated_in_seconds_with_late_arrivals() {
        let mut c = Coverage::default();
        let report = |start, late| {
            (
                IntervalReport {
                    start_unix_ms: start,
                    duration_ms: 1000,
                    ..IntervalReport::default()
                },
                late,
            )
        };
        for (r, late) in [
            report(10_000, false),
            report(11_000, true),
            report(12_000, true),
        ] {
            c.add(&r, late);
        }
        let m = c.lost_message(
            "box-1",
            "\"items\"",
            3,
            10_000,
            Some(Duration::from_secs(15)),
        );
        assert!(
            m.contains("cover the first 3.0 s of the planned 15.0 s"),
            "{m}"
        );
        assert!(
            m.contains("2 of them arrived after it was taken as lost"),
            "{m}"
        );
    }
}
