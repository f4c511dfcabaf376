//! Process CPU time from `/proc/self/stat`, for the generator's self-diagnosis.
//!
//! utime and stime are in clock ticks; Linux reports them in USER_HZ, which is 100 on every architecture it
//! exposes to user space, so no `sysconf` call is needed.

use std::time::Instant;

const USER_HZ: f64 = 100.0;

/// Process CPU seconds (user + system), or `None` where `/proc` is not available.
pub fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) may hold spaces; fields after its closing parenthesis are plain.
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // After ')' the fields start at 3 (state); utime is field 14, stime field 15.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / USER_HZ)
}

/// Measures process CPU between successive calls.
pub struct CpuClock {
    last: Option<(Instant, f64)>,
}

impl CpuClock {
    pub fn start() -> Self {
        CpuClock {
            last: process_cpu_seconds().map(|cpu| (Instant::now(), cpu)),
        }
    }

    /// CPU used since the last call, percent of one core; `None` where it cannot be read.
    pub fn percent_since_last(&mut self) -> Option<f64> {
        let now = Instant::now();
        let cpu = process_cpu_seconds()?;
        let (then, before) = self.last.replace((now, cpu))?;
        let wall = now.duration_since(then).as_secs_f64();
        (wall > 0.0).then(|| 100.0 * (cpu - before) / wall)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_cpu_time() {
        let before = process_cpu_seconds().expect("linux /proc");
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        assert!(x != 1);
        let after = process_cpu_seconds().expect("linux /proc");
        assert!(after >= before);
    }
}
