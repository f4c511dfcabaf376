//! One load thread's part of a shard's profile: the plan total for the second, split by agent weight, then
//! evenly over this agent's load threads. Both splits are exact, so parts sum to the total in every second.

use loadgrade_common::profile::{Profile, part};
use std::time::Duration;
use tokio::time::Instant;

#[derive(Debug, Clone)]
pub struct ThreadShare {
    pub profile: Profile,
    pub agent_weights: Vec<u64>,
    pub agent_index: usize,
    pub threads: usize,
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
        let agent = part(total, &self.agent_weights, self.agent_index);
        part(agent, &vec![1; self.threads], self.thread_index)
    }

    /// This thread's value in measured second `second`.
    pub fn in_second(&self, second: u64) -> u64 {
        self.of_total(self.profile.total_in_second(second))
    }

    /// This thread's value during warm-up.
    pub fn in_warmup(&self) -> u64 {
        self.of_total(self.profile.start)
    }

    /// Largest value over the whole profile (warm-up included).
    pub fn max(&self) -> u64 {
        let seconds = self.profile.length.map_or(1, |l| l.as_secs() + 1);
        (0..seconds)
            .map(|s| self.in_second(s))
            .fold(self.in_warmup(), u64::max)
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
            if let Some(length) = self.profile.length {
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
    use loadgrade_common::profile::Stage;

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
                    let share = ThreadShare {
                        profile: profile.clone(),
                        agent_weights: weights.clone(),
                        agent_index: agent,
                        threads: 2,
                        thread_index: thread,
                    };
                    sum += share.in_second(second);
                }
            }
            assert_eq!(sum, profile.total_in_second(second));
        }
    }

    #[test]
    fn slots_cut_at_warmup_and_at_the_end() {
        let share = ThreadShare {
            profile: Profile::constant(10, Some(Duration::from_millis(1500))),
            agent_weights: vec![1],
            agent_index: 0,
            threads: 1,
            thread_index: 0,
        };
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
}
