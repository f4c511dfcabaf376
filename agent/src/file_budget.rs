//! The open-file budget: the files a shard's connections need beside those open now and a spare, against this
//! process's open-file limit. One computation for the shard's own check and for preflight's.

/// File descriptors kept free beyond the shard's connections (logs, the coordinator session, DNS).
pub const SPARE_FILES: u64 = 64;

/// This process's open-file limit and what `connections` more would need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileBudget {
    /// The soft limit (`ulimit -n`).
    pub soft: u64,
    pub hard: u64,
    /// Files open now (0 when `/proc/self/fd` cannot be read).
    pub open_now: u64,
    /// `connections` plus the files open now plus [`SPARE_FILES`].
    pub needed: u64,
}

impl FileBudget {
    /// Reads the limit and the files open now; an error when the limit cannot be read.
    pub fn measure(connections: u64) -> std::io::Result<Self> {
        let (soft, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE)?;
        let open_now = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as u64);
        let needed = connections
            .saturating_add(open_now)
            .saturating_add(SPARE_FILES);
        Ok(FileBudget {
            soft,
            hard,
            open_now,
            needed,
        })
    }

    /// The connections do not fit under the soft limit.
    pub fn exceeded(&self) -> bool {
        self.needed > self.soft
    }
}
