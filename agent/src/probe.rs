//! Reading a target's memory and CPU on this host: a process (or every process of a name) from `/proc`, or a cgroup
//! v2 directory. Probe agents answer the coordinator's probe requests with it, and the coordinator uses it for
//! `process` and `cgroup` probes on its own host.

use crate::procfs::{self, Proc, ProcError};
use loadgrade_common::plan::LocalTarget;
use loadgrade_common::protocol::ProbeReading;
use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error(transparent)]
    Process(#[from] ProcError),
    #[error("cannot list /proc: {0}")]
    ListProc(io::Error),
    #[error("no process named {0:?} is running")]
    NoneNamed(String),
    #[error("no live process named {0:?} could be read")]
    NoneReadable(String),
    #[error("cannot read {path}/memory.current (not a cgroup v2 directory?): {source}")]
    Cgroup { path: String, source: io::Error },
    #[error("{path}/memory.current does not parse: {text:?}")]
    CgroupValue { path: String, text: String },
}

/// Memory in bytes and cumulative CPU seconds (where the target has them).
pub fn read(target: &LocalTarget) -> Result<ProbeReading, ProbeError> {
    match target {
        LocalTarget::Pid(pid) => process(*pid).map_err(ProbeError::from),
        LocalTarget::Name(name) => {
            // A worker that exits (or is a zombie) between listing and reading is skipped, not a failed sample.
            let readings: Vec<ProbeReading> = pids_named(name)?
                .into_iter()
                .filter_map(|pid| process(pid).ok())
                .collect();
            if readings.is_empty() {
                return Err(ProbeError::NoneReadable(name.clone()));
            }
            Ok(ProbeReading {
                memory_bytes: readings.iter().map(|r| r.memory_bytes).sum(),
                cpu_seconds: Some(readings.iter().filter_map(|r| r.cpu_seconds).sum()),
            })
        }
        LocalTarget::Cgroup(path) => cgroup(path),
    }
}

fn process(pid: u32) -> Result<ProbeReading, ProcError> {
    Ok(ProbeReading {
        memory_bytes: procfs::rss_bytes(Proc::Pid(pid))?,
        cpu_seconds: Some(procfs::cpu_seconds(Proc::Pid(pid))?),
    })
}

/// Processes whose name is `name`.
pub fn pids_named(name: &str) -> Result<Vec<u32>, ProbeError> {
    let entries = std::fs::read_dir("/proc").map_err(ProbeError::ListProc)?;
    let pids: Vec<u32> = entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| process_is_named(*pid, name))
        .collect();
    if pids.is_empty() {
        return Err(ProbeError::NoneNamed(name.to_owned()));
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

fn cgroup(path: &str) -> Result<ProbeReading, ProbeError> {
    let dir: PathBuf = if Path::new(path).is_absolute() {
        path.into()
    } else {
        Path::new("/sys/fs/cgroup").join(path)
    };
    let shown = dir.display().to_string();
    let text =
        read_cgroup_file(&dir.join("memory.current")).map_err(|source| ProbeError::Cgroup {
            path: shown.clone(),
            source,
        })?;
    let memory_bytes = text.trim().parse().map_err(|_| ProbeError::CgroupValue {
        path: shown,
        text: text.trim().to_owned(),
    })?;
    let cpu_seconds = read_cgroup_file(&dir.join("cpu.stat")).ok().and_then(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("usage_usec "))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .map(|us| us / 1e6)
    });
    Ok(ProbeReading {
        memory_bytes,
        cpu_seconds,
    })
}

/// The most of a cgroup file read: `cpu.stat` is a few hundred bytes.
const MAX_CGROUP_FILE: u64 = 64 << 10;

/// A cgroup file's text: a regular file only (cgroupfs files are), opened without blocking and checked again once
/// open, at most [`MAX_CGROUP_FILE`] bytes. The path comes from a plan: a FIFO there must not hang the reader (the
/// coordinator reads ramp probes on its own host), nor /dev/zero fill its memory.
fn read_cgroup_file(path: &Path) -> io::Result<String> {
    use std::io::Read as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let refuse = || io::Error::new(io::ErrorKind::InvalidInput, "not a regular file");
    if !std::fs::metadata(path)?.is_file() {
        return Err(refuse());
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(refuse());
    }
    let mut text = String::new();
    file.take(MAX_CGROUP_FILE).read_to_string(&mut text)?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression (issue 20, attack round 2): a ramp's cgroup probe whose files were FIFOs hung the coordinator,
    /// and symlinks to /dev/zero took it past 2 GB.
    #[test]
    fn a_cgroup_of_fifos_or_devices_is_refused_at_once() {
        let dir = std::env::temp_dir().join(format!("loadgrade-cgroup-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let fifo = dir.join("memory.current");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo");
        assert!(made.success());
        std::os::unix::fs::symlink("/dev/zero", dir.join("cpu.stat")).expect("symlink");
        let began = std::time::Instant::now();
        let e = cgroup(&dir.display().to_string()).expect_err("refused");
        assert!(e.to_string().contains("not a regular file"), "{e}");
        assert!(read_cgroup_file(&dir.join("cpu.stat")).is_err());
        assert!(began.elapsed() < std::time::Duration::from_secs(1));
        std::fs::remove_file(&fifo).expect("rm");
        std::fs::write(&fifo, "4096\n").expect("write");
        assert_eq!(
            cgroup(&dir.display().to_string())
                .expect("read")
                .memory_bytes,
            4096
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

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
        assert!(read(&LocalTarget::Name(name)).expect("read").memory_bytes > 0);
        assert!(pids_named("no-such-process-name-at-all").is_err());
    }

    #[test]
    fn missing_targets_say_why() {
        let e = read(&LocalTarget::Pid(u32::MAX - 1)).expect_err("no such pid");
        assert!(e.to_string().contains("no such process"), "{e}");
        let e = read(&LocalTarget::Cgroup("/nonexistent/loadgrade".into())).expect_err("no cgroup");
        assert!(e.to_string().contains("memory.current"), "{e}");
    }
}
