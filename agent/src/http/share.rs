//! One load thread's part of a shard's profile: the plan total for the second, split by agent weight, then over
//! this agent's load threads by their weights (open model: their connections). Both splits are exact, so parts sum
//! to the total in every second.

use loadgrade_common::profile::part;
use loadgrade_common::shard::ShardProfile;
use std::time::Duration;
use tokio::time::Instant;

#[derive(Debug, Clone)]
pub struct ThreadShare {
    pub shard: ShardProfile,
    /// Every load thread's weight (open model: its connections).
    pub thread_weights: Vec<u64>,
    pub thread_index: usize,
}

/// A stretch of time with one value: a whole second, or a shorter piece at the ends of warm-up and the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    pub begin: Instant,
    pub end: Instant,
    /// This thread's value (arrivals per second, or connections) during the slot.
    pub value: u64,
}

impl ThreadShare {
    fn of_total(&self, total: u64) -> u64 {
        let agent = self.shard.part_of(total);
        part(agent, &self.thread_weights, self.thread_index)
    }

    /// This thread's value in measured second `second`.
    pub fn in_second(&self, second: u64) -> u64 {
        self.of_total(self.shard.profile.total_in_second(second))
    }

    /// This thread's value during warm-up.
    pub fn in_warmup(&self) -> u64 {
        self.of_total(self.shard.profile.start)
    }

    /// Largest value over the whole profile (warm-up included). Splits are computed once per distinct plan total,
    /// so a long constant profile costs one split, not one per second.
    pub fn max(&self) -> u64 {
        let profile = &self.shard.profile;
        let seconds = profile.length.map_or(1, |l| l.as_secs().saturating_add(1));
        let mut best = self.in_warmup();
        let mut last_total = None;
        for second in 0..seconds {
            let total = profile.total_in_second(second);
            if last_total != Some(total) {
                best = best.max(self.of_total(total));
                last_total = Some(total);
            }
        }
        best
    }

    /// The slot holding `at`: warm-up seconds from `start`, then measured seconds from `warmup_end`.
    pub fn slot_at(&self, start: Instant, warmup_end: Instant, at: Instant) -> Slot {
        if at < warmup_end {
            let k = at.saturating_duration_since(start).as_secs();
            let begin = start + Duration::from_secs(k);
            Slot {
                begin,
                end: (begin + Duration::from_secs(1)).min(warmup_end),
                value: self.in_warmup(),
            }
        } else {
            let s = at.duration_since(warmup_end).as_secs();
            let begin = warmup_end + Duration::from_secs(s);
            let mut end = begin + Duration::from_secs(1);
            if let Some(length) = self.shard.profile.length {
                end = end.min(warmup_end + length).max(begin);
            }
            Slot {
                begin,
                end,
                value: self.in_second(s),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use loadgrade_common::profile::{Profile, Stage};

    fn share(
        profile: Profile,
        weights: Vec<u64>,
        index: usize,
        threads: usize,
        thread_index: usize,
    ) -> ThreadShare {
        ThreadShare {
            shard: ShardProfile {
                profile,
                weights: weights.into(),
                index,
            },
            thread_weights: vec![1; threads],
            thread_index,
        }
    }

    #[test]
    fn threads_of_agents_sum_to_the_plan_total() {
        let profile = Profile::ramp(
            50,
            vec![Stage {
                target: 500,
                duration: Duration::from_secs(10),
            }],
        );
        let weights = vec![2, 1, 1];
        for second in 0..10 {
            let mut sum = 0;
            for agent in 0..3 {
                for thread in 0..2 {
                    sum +=
                        share(profile.clone(), weights.clone(), agent, 2, thread).in_second(second);
                }
            }
            assert_eq!(sum, profile.total_in_second(second));
        }
    }

    /// Regression (issue 8, item 7): 3 connections on 2 threads are pools of 2 and 1, and an even rate split sent
    /// half the arrivals to the one-connection pool. Rate now follows the connections.
    #[test]
    fn a_threads_rate_follows_its_connections() {
        let connections = vec![2, 1];
        let rates: Vec<u64> = (0..2)
            .map(|t| {
                ThreadShare {
                    shard: ShardProfile {
                        profile: Profile::constant(300, None),
                        weights: vec![1].into(),
                        index: 0,
                    },
                    thread_weights: connections.clone(),
                    thread_index: t,
                }
                .in_second(0)
            })
            .collect();
        assert_eq!(rates, vec![200, 100]);
    }

    #[test]
    fn slots_cut_at_warmup_and_at_the_end() {
        let share = share(
            Profile::constant(10, Some(Duration::from_millis(1500))),
            vec![1],
            0,
            1,
            0,
        );
        let start = Instant::now();
        let warmup_end = start + Duration::from_millis(1200);
        let first = share.slot_at(start, warmup_end, start + Duration::from_millis(1100));
        assert_eq!(
            (first.begin, first.end),
            (start + Duration::from_secs(1), warmup_end)
        );
        let last = share.slot_at(start, warmup_end, warmup_end + Duration::from_millis(1200));
        assert_eq!(last.end, warmup_end + Duration::from_millis(1500));
        assert_eq!(last.value, 10);
    }

    /// Regression (issue 7): a closed model with `duration = "20y"` made the agent spin at 100 % CPU here. Plans are
    /// now bounded to 7 days, and the
    /// longest of those costs one split per distinct total.
    #[test]
    fn the_maximum_of_a_week_long_profile_is_quick() {
        let week = Duration::from_secs(7 * 24 * 3600);
        let constant = share(Profile::constant(64, Some(week)), vec![3, 2], 1, 4, 3);
        assert_eq!(constant.max(), 6);
        let ramp = share(
            Profile::ramp(
                1,
                vec![Stage {
                    target: 1000,
                    duration: week,
                }],
            ),
            vec![1],
            0,
            1,
            0,
        );
        assert_eq!(ramp.max(), 1000);
    }
}
