//! Reading processes from `/proc`: CPU time from `stat`, resident memory from `status`. The one place that parses
//! them, for the generator's own CPU and for probes of a target.

use std::io;

/// Clock ticks per second of `/proc/PID/stat` times. Linux reports utime and stime in USER_HZ, which is 100 on every
/// architecture it exposes to user space, so no `sysconf` call is needed.
const USER_HZ: f64 = 100.0;

/// Which process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proc {
    /// This process.
    Me,
    Pid(u32),
    /// A thread of this process, by its kernel thread id.
    Thread(u32),
}

impl Proc {
    fn path(self, file: &str) -> String {
        match self {
            Proc::Me => format!("/proc/self/{file}"),
            Proc::Pid(pid) => format!("/proc/{pid}/{file}"),
            Proc::Thread(tid) => format!("/proc/self/task/{tid}/{file}"),
        }
    }
}

/// The calling thread's kernel thread id (from `/proc/thread-self`, a link to `PID/task/TID`).
pub fn current_thread_id() -> Option<u32> {
    let link = std::fs::read_link("/proc/thread-self").ok()?;
    link.file_name()?.to_str()?.parse().ok()
}

#[derive(Debug, thiserror::Error)]
pub enum ProcError {
    #[error("cannot read {path} (no such process?): {source}")]
    Read { path: String, source: io::Error },
    #[error("{path} has no VmRSS (a kernel thread or a zombie?)")]
    NoRss { path: String },
    #[error("{path} does not parse")]
    Stat { path: String },
}

fn read(path: String) -> Result<String, ProcError> {
    std::fs::read_to_string(&path).map_err(|source| ProcError::Read { path, source })
}

/// User plus system CPU seconds the process has used.
pub fn cpu_seconds(process: Proc) -> Result<f64, ProcError> {
    let path = process.path("stat");
    let stat = read(path.clone())?;
    parse_cpu_seconds(&stat).ok_or(ProcError::Stat { path })
}

/// utime + stime of a `stat` line, in seconds. The command name (field 2) may hold spaces and parentheses; the
/// fields after its last closing parenthesis are plain: state is field 3, utime field 14, stime field 15.
fn parse_cpu_seconds(stat: &str) -> Option<f64> {
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / USER_HZ)
}

/// Resident memory (`VmRSS`), bytes.
pub fn rss_bytes(process: Proc) -> Result<u64, ProcError> {
    let path = process.path("status");
    let status = read(path.clone())?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map(|kib| kib.saturating_mul(1024))
        .ok_or(ProcError::NoRss { path })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_stat_line_whose_name_holds_spaces_and_parentheses() {
        let line = "42 (a (b) c) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 1 0 100 0 0";
        assert_eq!(parse_cpu_seconds(line), Some(3.0));
        assert_eq!(parse_cpu_seconds("garbage"), None);
    }

    #[test]
    fn reads_this_process() {
        let before = cpu_seconds(Proc::Me).expect("linux /proc");
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        assert!(x != 1);
        assert!(cpu_seconds(Proc::Pid(std::process::id())).expect("by pid") >= before);
        assert!(rss_bytes(Proc::Me).expect("rss") > 1 << 20);
        assert!(matches!(
            rss_bytes(Proc::Pid(u32::MAX - 1)),
            Err(ProcError::Read { .. })
        ));
    }
}
