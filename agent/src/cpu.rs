//! The CPU the generator's own load threads use between successive interval cuts, for its self-diagnosis. Only the
//! load threads count: the process may also hold the session runtime, and in `run`/`demo` the coordinator and the
//! target, whose work is not the generator's.

use crate::procfs::{self, Proc};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::time::Instant;

/// The kernel thread ids of a shard's load threads, as each registers itself, with the CPU seconds each had when
/// it ended (its `/proc` entry goes with it).
#[derive(Debug, Clone, Default)]
pub struct LoadThreads(Arc<Mutex<Vec<Registered>>>);

/// A load thread's id, and its CPU seconds once it has ended.
type Registered = (u32, Option<f64>);

impl LoadThreads {
    /// Registers the calling thread; `false` where its id cannot be read.
    pub fn register_current(&self) -> bool {
        match procfs::current_thread_id() {
            Some(tid) => {
                self.lock().push((tid, None));
                true
            }
            None => false,
        }
    }

    /// The calling (registered) thread is about to end: keeps its final CPU seconds.
    pub fn finish_current(&self) {
        let Some(tid) = procfs::current_thread_id() else {
            return;
        };
        let seconds = procfs::cpu_seconds(Proc::Thread(tid)).ok();
        if let Some(entry) = self.lock().iter_mut().find(|(t, _)| *t == tid) {
            entry.1 = seconds;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Registered>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn snapshot(&self) -> Vec<Registered> {
        self.lock().clone()
    }
}

/// Measures the load threads' CPU between successive calls.
pub struct CpuClock {
    threads: LoadThreads,
    /// Each thread's CPU seconds when last read: a thread that has exited keeps its last reading.
    last_seconds: HashMap<u32, f64>,
    last: Option<(Instant, f64)>,
}

impl CpuClock {
    pub fn start(threads: LoadThreads) -> Self {
        CpuClock {
            threads,
            last_seconds: HashMap::new(),
            last: Some((Instant::now(), 0.0)),
        }
    }

    /// The load threads' CPU seconds so far; `None` where a registered thread could never be read.
    fn total(&mut self) -> Option<f64> {
        for (tid, ended) in self.threads.snapshot() {
            let seconds = ended.or_else(|| procfs::cpu_seconds(Proc::Thread(tid)).ok());
            match seconds {
                Some(s) => {
                    self.last_seconds.insert(tid, s);
                }
                None if !self.last_seconds.contains_key(&tid) => return None,
                None => {}
            }
        }
        Some(self.last_seconds.values().sum())
    }

    /// CPU used since the last call, percent of one core (summed over the load threads); `None` where it cannot be
    /// read.
    pub fn percent_since_last(&mut self) -> Option<f64> {
        let now = Instant::now();
        let cpu = self.total()?;
        let (then, before) = self.last.replace((now, cpu))?;
        let wall = now.duration_since(then).as_secs_f64();
        (wall > 0.0).then(|| 100.0 * (cpu - before).max(0.0) / wall)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_the_registered_threads_only() {
        let threads = LoadThreads::default();
        let mut clock = CpuClock::start(threads.clone());
        let busy = {
            let threads = threads.clone();
            std::thread::spawn(move || {
                assert!(threads.register_current());
                let began = std::time::Instant::now();
                let mut x = 0u64;
                while began.elapsed() < std::time::Duration::from_millis(300) {
                    x = x.wrapping_mul(31).wrapping_add(1);
                }
                threads.finish_current();
                x
            })
        };
        let _ = busy.join();
        let percent = clock.percent_since_last().expect("readable");
        // One thread busy for 300 ms of a little more wall time: most of one core, never two.
        assert!(percent > 30.0 && percent <= 110.0, "{percent}");
    }
}
