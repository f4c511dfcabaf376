//! One agent's totals and generator health: whether its figures can be trusted (lag, drops, CPU, file descriptors,
//! ports), judged per part so a fault in one scenario is not diluted by the others.

use crate::run::intake::Decoded;
use loadgrade_common::histogram::{CodecError, LatencyHistogram, merge, new_histogram, us_to_ms};
use loadgrade_common::interval::IntervalReport;
use loadgrade_common::report::{GeneratorReport, or_not_measured};
use std::collections::BTreeMap;

/// Generator lag p99 above which an agent's figures are not trusted: its own timers fired this late, so latency
/// and arrival times include the generator's delay, not only the target's.
pub const LAG_BOUND_MS: f64 = 25.0;
/// Share of arrivals an agent may drop (backlog full) before the run is not a test of the planned load any more.
pub const DROP_BOUND: f64 = 0.01;
/// Mean process CPU, as a share of the load threads the agent ran, from which its CPU counts as pinned.
pub const CPU_PINNED: f64 = 0.95;

/// One agent's totals and health over a part, or over the run (the sum of its parts).
#[derive(Clone)]
pub struct AgentHealth {
    pub requests: u64,
    pub errors: u64,
    pub dropped: u64,
    pub backlog_max: u64,
    pub intervals: u64,
    /// Open-model arrivals and drops over all intervals (warm-up included).
    arrivals_all: u64,
    dropped_all: u64,
    /// What became of arrivals (warm-up included): requests sent, drops, and discards at a stop. Never more than the
    /// arrivals in an honest open-model shard.
    settled_all: u64,
    emfile: u64,
    eaddrnotavail: u64,
    threads: u32,
    /// CPU percent x interval milliseconds, and the milliseconds: the mean is weighted by interval length, so a
    /// few-millisecond final interval (where 10 ms clock ticks make the percentage jump) weighs what it lasted.
    cpu_sum: f64,
    cpu_ms: f64,
    /// Made on the first non-empty merge: an empty histogram costs 16 KiB, three per agent add up at thousands.
    lag: Option<LatencyHistogram>,
    connection_wait: Option<LatencyHistogram>,
    connect: Option<LatencyHistogram>,
}

impl Default for AgentHealth {
    fn default() -> Self {
        AgentHealth {
            requests: 0,
            errors: 0,
            dropped: 0,
            backlog_max: 0,
            intervals: 0,
            arrivals_all: 0,
            settled_all: 0,
            dropped_all: 0,
            emfile: 0,
            eaddrnotavail: 0,
            threads: 0,
            cpu_sum: 0.0,
            cpu_ms: 0.0,
            lag: None,
            connection_wait: None,
            connect: None,
        }
    }
}

fn p99_ms(h: &Option<LatencyHistogram>) -> Option<f64> {
    h.as_ref()
        .filter(|h| !h.is_empty())
        .map(|h| us_to_ms(h.value_at_quantile(0.99)))
}

/// Merges `from` into `into`, making `into` only when `from` holds something.
fn merge_some(
    into: &mut Option<LatencyHistogram>,
    from: &LatencyHistogram,
) -> Result<(), CodecError> {
    if from.is_empty() {
        return Ok(());
    }
    merge(into.get_or_insert_with(new_histogram), from)
}

impl AgentHealth {
    /// Counts any interval (warm-up included) for health; requests only from measured ones.
    pub fn add(&mut self, report: &IntervalReport, decoded: &Decoded) -> Result<(), CodecError> {
        self.intervals += 1;
        let health = &report.health;
        if let Some(cpu) = health.cpu_percent {
            let ms = f64::from(report.duration_ms);
            self.cpu_sum += cpu * ms;
            self.cpu_ms += ms;
        }
        merge_some(&mut self.lag, &decoded.lag)?;
        merge_some(&mut self.connection_wait, &decoded.connection_wait)?;
        merge_some(&mut self.connect, &decoded.connect)?;
        self.backlog_max = self.backlog_max.max(health.backlog_max);
        self.emfile += health.emfile;
        self.eaddrnotavail += health.eaddrnotavail;
        self.arrivals_all += health.arrivals;
        self.threads = self.threads.max(health.threads);
        let c = &report.counters;
        self.dropped_all += c.dropped;
        self.settled_all = self
            .settled_all
            .saturating_add(c.requests + c.dropped + c.discarded_at_stop);
        if !report.warmup {
            self.requests += c.requests;
            self.errors += c.errors.total();
            self.dropped += c.dropped;
        }
        Ok(())
    }

    /// Adds another aggregate of the same agent (a finished scenario or ramp step) into this one.
    pub fn absorb(&mut self, other: &AgentHealth) -> Result<(), CodecError> {
        self.requests += other.requests;
        self.errors += other.errors;
        self.dropped += other.dropped;
        self.backlog_max = self.backlog_max.max(other.backlog_max);
        self.intervals += other.intervals;
        self.arrivals_all += other.arrivals_all;
        self.dropped_all += other.dropped_all;
        self.settled_all = self.settled_all.saturating_add(other.settled_all);
        self.emfile += other.emfile;
        self.eaddrnotavail += other.eaddrnotavail;
        self.threads = self.threads.max(other.threads);
        self.cpu_sum += other.cpu_sum;
        self.cpu_ms += other.cpu_ms;
        for (into, from) in [
            (&mut self.lag, &other.lag),
            (&mut self.connection_wait, &other.connection_wait),
            (&mut self.connect, &other.connect),
        ] {
            if let Some(from) = from {
                merge_some(into, from)?;
            }
        }
        Ok(())
    }

    pub fn generator(&self, open_model_used: bool) -> GeneratorReport {
        let mut not_measured = BTreeMap::new();
        let mut note = |figure: &str, value: Option<f64>, why: &str| {
            or_not_measured(&mut not_measured, figure, value, || why.to_owned())
        };
        let cpu_percent = note(
            "cpu_percent",
            (self.cpu_ms > 0.0).then(|| self.cpu_sum / self.cpu_ms),
            "the agent could not read /proc/self/stat",
        );
        let lag_ms_p99 = note(
            "lag_ms_p99",
            p99_ms(&self.lag),
            "no lag samples arrived from this agent",
        );
        let connection_wait_ms_p99 = if open_model_used {
            note(
                "connection_wait_ms_p99",
                p99_ms(&self.connection_wait),
                "no open-model arrivals were sent",
            )
        } else {
            note(
                "connection_wait_ms_p99",
                None,
                "closed model only: requests never wait for a connection",
            )
        };
        let connect_ms_p99 = note(
            "connect_ms_p99",
            p99_ms(&self.connect),
            "no connection was set up",
        );
        GeneratorReport {
            cpu_percent,
            lag_ms_p99,
            connection_wait_ms_p99,
            connect_ms_p99,
            // Like `arrivals`, warm-up included: the generator's view of everything it offered.
            dropped: self.dropped_all,
            arrivals: self.arrivals_all,
            backlog_max: self.backlog_max,
            emfile: self.emfile,
            eaddrnotavail: self.eaddrnotavail,
            threads: self.threads,
            not_measured,
        }
    }

    /// Why this agent's figures cannot be trusted (empty when they can). The CPU bound is per load thread the agent
    /// ran (a thread is one core's worth of work), `cores` only when no interval said how many.
    pub fn faults(&self, agent: &str, cores: u32) -> Vec<String> {
        let mut faults = Vec::new();
        if self.arrivals_all > 0 && self.settled_all > self.arrivals_all {
            faults.push(format!(
                "agent {agent:?} accounts for {} requests, drops and discards but generated {} arrivals: an open-model \
                 agent cannot send more than it was offered, so its counters are not trustworthy",
                self.settled_all, self.arrivals_all
            ));
        }
        if self.arrivals_all > 0 {
            let share = self.dropped_all as f64 / self.arrivals_all as f64;
            if share > DROP_BOUND {
                faults.push(format!(
                    "agent {agent:?} dropped {} of {} arrivals ({:.1} %, bound {:.0} %): every connection was busy \
                     and the backlog was full, so the planned rate was not offered; allow more connections or a \
                     larger max_backlog",
                    self.dropped_all,
                    self.arrivals_all,
                    share * 100.0,
                    DROP_BOUND * 100.0
                ));
            }
        }
        if let Some(lag) = p99_ms(&self.lag).filter(|&l| l > LAG_BOUND_MS) {
            faults.push(format!(
                "agent {agent:?} fell behind: its event-loop lag p99 was {lag:.1} ms (bound {LAG_BOUND_MS} ms), so \
                 its timings include its own delays"
            ));
        }
        if self.emfile > 0 {
            faults.push(format!(
                "agent {agent:?} ran out of file descriptors {} times (EMFILE): raise its open-file limit",
                self.emfile
            ));
        }
        if self.eaddrnotavail > 0 {
            faults.push(format!(
                "agent {agent:?} ran out of local ports {} times (EADDRNOTAVAIL): use fewer connections per agent \
                 or more agents",
                self.eaddrnotavail
            ));
        }
        // Judged only over a second or more: shorter spans are clock-tick noise.
        if self.cpu_ms >= 1000.0 {
            let mean = self.cpu_sum / self.cpu_ms;
            let threads = if self.threads > 0 {
                self.threads
            } else {
                cores.max(1)
            };
            if mean >= CPU_PINNED * 100.0 * f64::from(threads) {
                faults.push(format!(
                    "agent {agent:?} had its CPU pinned ({mean:.0} % with {threads} load threads): the generator \
                     itself was the bottleneck"
                ));
            }
        }
        faults
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::intake::check;
    use loadgrade_common::histogram::{encode, new_histogram};

    fn open_interval(arrivals: u64, requests: u64) -> IntervalReport {
        let mut h = new_histogram();
        h.record_n(500, requests).expect("record");
        let mut r = IntervalReport {
            hdr_corrected: encode(&h).expect("encode"),
            duration_ms: 1000,
            ..IntervalReport::default()
        };
        r.counters.requests = requests;
        r.counters.ok = requests;
        r.health.arrivals = arrivals;
        r
    }

    /// Regression (issue 9): an open-model agent's requests are checked against its own arrivals.
    #[test]
    fn more_requests_than_arrivals_is_a_fault() {
        let mut honest = AgentHealth::default();
        // A request may complete an interval after it arrived: only the totals must add up.
        for (arrivals, requests) in [(10, 4), (10, 12), (0, 4)] {
            let r = open_interval(arrivals, requests);
            honest.add(&r, &check(&r).expect("valid")).expect("add");
        }
        assert!(honest.faults("a", 1).iter().all(|f| !f.contains("offered")));
        let mut forged = AgentHealth::default();
        let r = open_interval(10, 500);
        forged.add(&r, &check(&r).expect("valid")).expect("add");
        let faults = forged.faults("a", 1);
        assert!(
            faults
                .iter()
                .any(|f| f.contains("cannot send more than it was offered")),
            "{faults:?}"
        );
    }
}
