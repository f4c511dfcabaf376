//! Load profiles: how much load (a rate or a connection count, as a plan total) in each second of the measured
//! phase, and each agent's exact integer part of it.
//!
//! A profile starts at `start` and ramps linearly through its stages. The value for measured second `s` is the
//! profile at the middle of that second, rounded, so a ramp's per-second values integrate to the ramp. Parts come
//! from [`split_by_weight`], so the agents' parts sum to the total in every second.

use crate::shares::split_by_weight;
use std::time::Duration;

/// One stage: ramp linearly from the previous value to `target` over `duration`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stage {
    pub target: u64,
    pub duration: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// Value during warm-up and at the start of the first stage.
    pub start: u64,
    pub stages: Vec<Stage>,
    /// Measured phase: the stages' total, or the plan's `duration`; `None` when a request budget alone ends it.
    pub length: Option<Duration>,
}

impl Profile {
    /// `value` for the whole measured phase.
    pub fn constant(value: u64, length: Option<Duration>) -> Self {
        Profile {
            start: value,
            stages: Vec::new(),
            length,
        }
    }

    /// Ramps from `start` through `stages`; the measured phase lasts as long as they do.
    pub fn ramp(start: u64, stages: Vec<Stage>) -> Self {
        let length = stages.iter().map(|s| s.duration).sum();
        Profile {
            start,
            stages,
            length: Some(length),
        }
    }

    /// The profile's value at `at` after the start of the measured phase (not rounded).
    pub fn value_at(&self, at: Duration) -> f64 {
        let mut from = self.start as f64;
        let mut elapsed = Duration::ZERO;
        for stage in &self.stages {
            if at < elapsed + stage.duration {
                let progress = (at - elapsed).as_secs_f64() / stage.duration.as_secs_f64();
                return from + (stage.target as f64 - from) * progress;
            }
            from = stage.target as f64;
            elapsed += stage.duration;
        }
        from
    }

    /// Plan total for measured second `second` (from 0): the value at the middle of that second (or of the
    /// partial last second), rounded.
    pub fn total_in_second(&self, second: u64) -> u64 {
        let begin = Duration::from_secs(second);
        let end = match self.length {
            Some(length) => (begin + Duration::from_secs(1)).min(length).max(begin),
            None => begin + Duration::from_secs(1),
        };
        let middle = begin + (end - begin) / 2;
        self.value_at(middle).round().max(0.0) as u64
    }

    /// The largest value the profile reaches.
    pub fn max_total(&self) -> u64 {
        self.stages
            .iter()
            .map(|s| s.target)
            .fold(self.start, u64::max)
    }
}

/// Part `index` of `total` when split over `weights` (largest remainder); 0 for an index out of range.
pub fn part(total: u64, weights: &[u64], index: usize) -> u64 {
    split_by_weight(total, weights)
        .get(index)
        .copied()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn a_ramp_takes_the_middle_of_each_second() {
        let p = Profile::ramp(
            50,
            vec![Stage {
                target: 500,
                duration: secs(10),
            }],
        );
        assert_eq!(p.length, Some(secs(10)));
        assert_eq!(p.total_in_second(0), 73); // 50 + 450 * 0.05 = 72.5, rounded half away from zero
        assert_eq!(p.total_in_second(9), 478);
        let sum: u64 = (0..10).map(|s| p.total_in_second(s)).sum();
        assert!(sum.abs_diff(2750) <= 5, "the ramp's integral: {sum}");
        assert_eq!(p.max_total(), 500);
    }

    #[test]
    fn stages_hold_and_step() {
        let p = Profile::ramp(
            10,
            vec![
                Stage {
                    target: 10,
                    duration: secs(2),
                },
                Stage {
                    target: 30,
                    duration: secs(2),
                },
            ],
        );
        let per_second: Vec<u64> = (0..4).map(|s| p.total_in_second(s)).collect();
        assert_eq!(per_second, vec![10, 10, 15, 25]);
        assert_eq!(
            p.total_in_second(10),
            30,
            "after the last stage: its target"
        );
    }

    proptest! {
        /// Shares of a ramp across agents sum to the plan's total in every second.
        #[test]
        fn parts_sum_to_the_total_every_second(
            start in 0u64..2_000,
            targets in prop::collection::vec((0u64..5_000, 1u64..20), 1..4),
            weights in prop::collection::vec(1u64..16, 1..6),
        ) {
            let stages = targets.iter().map(|&(t, d)| Stage { target: t, duration: secs(d) }).collect();
            let p = Profile::ramp(start, stages);
            let seconds = p.length.expect("ramp length").as_secs();
            for s in 0..seconds {
                let total = p.total_in_second(s);
                let sum: u64 = (0..weights.len()).map(|i| part(total, &weights, i)).sum();
                prop_assert_eq!(sum, total, "second {}", s);
            }
        }
    }
}
