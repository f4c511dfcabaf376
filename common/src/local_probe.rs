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
        LocalTarget::Name(name) => {
            // A worker that exits (or is a zombie) between listing and reading is skipped, not a failed sample.
            let readings: Vec<(u64, f64)> = pids_named(name)?
                .into_iter()
                .filter_map(|pid| process(&[pid]).ok())
                .collect();
            if readings.is_empty() {
                return Err(format!("no live process named {name:?} could be read"));
            }
            Ok(readings
                .iter()
                .fold((0, 0.0), |(m, c), (pm, pc)| (m + pm, c + pc)))
            .map(|(m, c)| (m, Some(c)))
        }
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
        .filter(|pid| process_is_named(*pid, name))
        .collect();
    if pids.is_empty() {
        return Err(format!("no process named {name:?} is running"));
    }
    Ok(pids)
}

/// Whether process `pid` is `name`: its `comm` (which the kernel cuts to 15 bytes) or the file name of its argv[0].
fn process_is_named(pid: u32, name: &str) -> bool {
    const COMM_MAX: usize = 15;
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    let comm = comm.trim_end_matches('\n');
    if comm == name || (comm.len() == COMM_MAX && name.len() > COMM_MAX && name.starts_with(comm)) {
        return std::fs::read(format!("/proc/{pid}/cmdline"))
            .is_ok_and(|cmdline| comm == name || argv0_name(&cmdline) == name);
    }
    false
}

fn argv0_name(cmdline: &[u8]) -> &str {
    let argv0 = cmdline.split(|&b| b == 0).next().unwrap_or_default();
    let argv0 = std::str::from_utf8(argv0).unwrap_or_default();
    argv0.rsplit('/').next().unwrap_or(argv0)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_names_match_past_the_kernels_15_byte_comm() {
        assert_eq!(
            argv0_name(b"/usr/local/bin/loadgrade-testbed\0--listen\0x"),
            "loadgrade-testbed"
        );
        // This test binary's own name is longer than 15 bytes, so its comm is cut.
        let exe = std::env::current_exe().expect("exe");
        let name = exe
            .file_name()
            .and_then(|n| n.to_str())
            .expect("name")
            .to_owned();
        let pids = pids_named(&name).expect("found by its full name");
        assert!(pids.contains(&std::process::id()), "{name}: {pids:?}");
        assert!(read(&LocalTarget::Name(name)).expect("read").0 > 0);
        assert!(pids_named("no-such-process-name-at-all").is_err());
    }
}
