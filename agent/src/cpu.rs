//! The generator's own CPU use between successive interval cuts, for its self-diagnosis.

use crate::procfs::{self, Proc};
use tokio::time::Instant;

/// Measures process CPU between successive calls.
pub struct CpuClock {
    last: Option<(Instant, f64)>,
}

impl CpuClock {
    pub fn start() -> Self {
        CpuClock {
            last: procfs::cpu_seconds(Proc::Me)
                .ok()
                .map(|cpu| (Instant::now(), cpu)),
        }
    }

    /// CPU used since the last call, percent of one core; `None` where it cannot be read.
    pub fn percent_since_last(&mut self) -> Option<f64> {
        let now = Instant::now();
        let cpu = procfs::cpu_seconds(Proc::Me).ok()?;
        let (then, before) = self.last.replace((now, cpu))?;
        let wall = now.duration_since(then).as_secs_f64();
        (wall > 0.0).then(|| 100.0 * (cpu - before) / wall)
    }
}
