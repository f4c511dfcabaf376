//! Reading a target's memory and CPU on this host: a process (or every process of a name) from `/proc`, or a
//! cgroup v2 directory. Used by the coordinator's probes and by probe agents on target hosts.

use std::path::{Path, PathBuf};

/// Clock ticks per second of `/proc/PID/stat` times (USER_HZ, 100 on every Linux architecture).
const USER_HZ: f64 = 100.0;

/// A local target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocalTarget {
    Pid(u32),
    /// Every process with this `comm`, summed (a server's master and workers are one service).
    Name(String),
    /// A cgroup v2 directory, absolute or relative to /sys/fs/cgroup.
    Cgroup(String),
}

/// Memory in bytes and cumulative CPU seconds (where the target has them).
pub fn read(target: &LocalTarget) -> Result<(u64, Option<f64>), String> {
    match target {
        LocalTarget::Pid(pid) => process(&[*pid]).map(|(m, c)| (m, Some(c))),
        LocalTarget::Name(name) => process(&pids_named(name)?).map(|(m, c)| (m, Some(c))),
        LocalTarget::Cgroup(path) => cgroup(path),
    }
}

pub fn process(pids: &[u32]) -> Result<(u64, f64), String> {
    let (mut memory, mut cpu) = (0u64, 0.0);
    for pid in pids {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .map_err(|e| format!("cannot read /proc/{pid}/status (no such process?): {e}"))?;
        let rss_kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .ok_or_else(|| {
                format!("/proc/{pid}/status has no VmRSS (a kernel thread or a zombie?)")
            })?;
        memory += rss_kib * 1024;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map_err(|e| format!("cannot read /proc/{pid}/stat: {e}"))?;
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.split_whitespace().collect())
            .unwrap_or_default();
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        cpu += (ticks(11) + ticks(12)) / USER_HZ;
    }
    Ok((memory, cpu))
}

pub fn pids_named(name: &str) -> Result<Vec<u32>, String> {
    let entries = std::fs::read_dir("/proc").map_err(|e| format!("cannot list /proc: {e}"))?;
    let pids: Vec<u32> = entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == name)
        })
        .collect();
    if pids.is_empty() {
        return Err(format!("no process named {name:?} is running"));
    }
    Ok(pids)
}

pub fn cgroup(path: &str) -> Result<(u64, Option<f64>), String> {
    let dir: PathBuf = if Path::new(path).is_absolute() {
        path.into()
    } else {
        Path::new("/sys/fs/cgroup").join(path)
    };
    let read = |file: &str| std::fs::read_to_string(dir.join(file));
    let current: u64 = read("memory.current")
        .map_err(|e| {
            format!(
                "cannot read {}/memory.current (not a cgroup v2 directory?): {e}",
                dir.display()
            )
        })?
        .trim()
        .parse()
        .map_err(|e| format!("{}/memory.current does not parse: {e}", dir.display()))?;
    let cpu = read("cpu.stat").ok().and_then(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("usage_usec "))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .map(|us| us / 1e6)
    });
    Ok((current, cpu))
}
