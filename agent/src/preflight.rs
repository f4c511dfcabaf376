//! Preflight on the agent: for each assignment the coordinator would send, without load: does this agent accept it
//! (allowlist, caps, credentials), does the target answer one probe (an HTTP request, a Redis PING, `SELECT 1` and
//! the table, one scrape), do its open-file limit and ephemeral ports hold the connections its share needs; and
//! once, the free disk for its spool. One [`CheckRow`] per check.

use crate::AgentConfig;
use crate::executor::{Prepared, Refusal, prepare};
use crate::file_budget::{FileBudget, SPARE_FILES};
use loadgrade_common::plan::LoadModel;
use loadgrade_common::preflight::{CheckKind, CheckRow, CheckStatus};
use loadgrade_common::shard::{Assignment, CacheShard, CacheShardTarget, HttpShard, Work};
use std::path::Path;

/// What one probe of a target found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probed {
    /// It answered as a target should.
    Answered(String),
    /// It answered, but late, not at all or with an error: the run would measure that (a warning).
    Doubtful(String),
    /// It cannot be reached or used: the run would measure nothing useful.
    Failed(String),
}

/// A probe's answer, or why it failed (its message is the row's value).
impl<E: std::error::Error> From<Result<String, E>> for Probed {
    fn from(r: Result<String, E>) -> Self {
        match r {
            Ok(answer) => Probed::Answered(answer),
            Err(why) => Probed::Failed(why.to_string()),
        }
    }
}

/// The header every preflight HTTP request carries (value `1`).
pub const PREFLIGHT_HEADER: &str = "x-loadgrade-preflight";

/// The hint for an open-file limit that is too low.
const FILES_HINT: &str = "raise this agent's open-file limit: LimitNOFILE= in its systemd unit (deploy/systemd), \
                          `ulimit -n` before starting it, or `--ulimit nofile=` for a container; or spread the load \
                          over more agents (fs.nr_open caps the limit)";
/// The hint for too few ephemeral ports.
const PORTS_HINT: &str = "widen net.ipv4.ip_local_port_range (e.g. \"1024 65535\") and set net.ipv4.tcp_tw_reuse=1 \
                          (deploy/systemd/99-loadgrade-agent.conf), or spread the load over more agents";
/// Spool space below which a run may lose nothing yet but the operator should know.
const SPOOL_WARN_BYTES: u64 = 256 << 20;
/// Spool space below which intervals may not be kept until acknowledged.
const SPOOL_FAIL_BYTES: u64 = 16 << 20;

/// Checks every item, then the spool. Rows carry this agent's name and each item's scenario.
pub async fn check(items: Vec<Assignment>, config: &AgentConfig) -> Vec<CheckRow> {
    let mut rows = Vec::new();
    for item in items {
        let scenario = item.part.scenario.clone();
        for row in check_item(item.work, config).await {
            rows.push(row.on_agent(&config.name).for_scenario(&scenario));
        }
    }
    rows.push(spool_space(config.spool_dir.as_deref()).on_agent(&config.name));
    rows
}

/// Probes of targets this agent sends at most per second when its `--max-rate` is not lower: checks and runs'
/// preflights, however many are asked, do not add up to load.
const MAX_PROBES_PER_SECOND: u64 = 20;

/// Waits for this agent's next probe slot (one clock for the whole process).
async fn pace(config: &AgentConfig) {
    static NEXT: std::sync::Mutex<Option<tokio::time::Instant>> = std::sync::Mutex::new(None);
    let per_second = config
        .caps
        .max_rate
        .unwrap_or(MAX_PROBES_PER_SECOND)
        .clamp(1, MAX_PROBES_PER_SECOND);
    let gap = std::time::Duration::from_secs_f64(1.0 / per_second as f64);
    let at = {
        let mut next = NEXT
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = tokio::time::Instant::now();
        let at = next.map_or(now, |n| n.max(now));
        *next = Some(at + gap);
        at
    };
    tokio::time::sleep_until(at).await;
}

async fn check_item(mut work: Work, config: &AgentConfig) -> Vec<CheckRow> {
    let mut rows = Vec::new();
    // The probe says what it is, so a target can tell it from load (the testbed does not count it).
    if let Work::Http(HttpShard { request, .. })
    | Work::Cache(CacheShard {
        load: HttpShard { request, .. },
        ..
    }) = &mut work
    {
        request
            .headers
            .push((PREFLIGHT_HEADER.to_owned(), "1".to_owned()));
    }
    let connections = needed_connections(&work);
    let files = open_files(connections);
    let files_failed = files.status == CheckStatus::Fail;
    rows.push(files);
    if matches!(work, Work::Http(_) | Work::Cache(_)) {
        rows.push(ephemeral_ports(connections));
    }
    if files_failed {
        // The shard would be refused on the same limit: one row says it.
        return rows;
    }
    let redis = matches!(
        &work,
        Work::Cache(c) if matches!(c.target, CacheShardTarget::Redis { .. })
    );
    // Preparing a Redis shard already sends its PING: the slot is taken before it.
    pace(config).await;
    match prepare(work, config).await {
        Err(refusal) => rows.push(refused(&refusal)),
        Ok(prepared) => {
            rows.push(CheckRow::ok(
                CheckKind::Accepted,
                "allowlist, caps and credentials",
            ));
            let probed = match &prepared {
                Prepared::Http(_) if redis => Probed::Answered("Redis answered PING".to_owned()),
                Prepared::Http(spec) => spec.probe().await,
                Prepared::Pagination(p) => p.probe().await.into(),
                Prepared::Scrape(p) => p.probe().await.into(),
            };
            rows.push(match probed {
                Probed::Answered(answer) => CheckRow::ok(CheckKind::Reachability, answer),
                Probed::Doubtful(why) => CheckRow::warn(
                    CheckKind::Reachability,
                    why,
                    "the run will record these as timeouts or errors: check the target is healthy, or the plan's \
                     timeout",
                ),
                Probed::Failed(why) => CheckRow::fail(
                    CheckKind::Reachability,
                    why,
                    "start the target or fix its address, credentials or table in the plan; check it answers from \
                     this agent's host",
                ),
            });
        }
    }
    rows
}

/// The row of a shard this agent refuses, named by what refused it.
fn refused(refusal: &Refusal) -> CheckRow {
    let text = refusal.to_string();
    let (check, hint) = match refusal {
        Refusal::Http(crate::http::Refusal::Allowlist(_)) => (
            CheckKind::Allowlist,
            "the agent's operator decides what it may load",
        ),
        Refusal::Cache(crate::cache::Refusal::RedisConnect { .. }) => (
            CheckKind::Reachability,
            "start Redis or fix its URL, password_env or password; check it answers from this agent's host",
        ),
        Refusal::Http(crate::http::Refusal::OverCap { .. }) => (
            CheckKind::Caps,
            "lower the plan's load for this agent, add agents, or raise the agent's --max-* cap",
        ),
        _ => (
            CheckKind::Accepted,
            "fix the plan or this agent's flags as the value says",
        ),
    };
    CheckRow::fail(check, text, hint)
}

/// The connections this agent's share opens at most (for a cache in Redis mode, Redis connections beside the
/// origin's).
pub fn needed_connections(work: &Work) -> u64 {
    let http = |s: &HttpShard| match s.model {
        LoadModel::Open => s.connections,
        LoadModel::Closed => s.profile.part_of(s.profile.profile.max_total()),
    };
    match work {
        Work::Http(s) => http(s),
        Work::Cache(c) => match c.target {
            CacheShardTarget::Redis { .. } => http(&c.load).saturating_mul(2),
            CacheShardTarget::Http { .. } => http(&c.load),
        },
        Work::Pagination(p) => p.spec.concurrency.saturating_add(1),
        Work::Scrape(_) => 2,
    }
}

/// The open-file limit against `connections` plus the files open now and a spare.
fn open_files(connections: u64) -> CheckRow {
    let Ok(FileBudget {
        soft,
        hard,
        open_now,
        needed,
    }) = FileBudget::measure(connections)
    else {
        return CheckRow::warn(
            CheckKind::OpenFiles,
            "not measured: the open-file limit cannot be read",
            FILES_HINT,
        );
    };
    let value = format!(
        "limit {soft} (hard {hard}); needs {needed}: {connections} connection(s) + {open_now} open + {SPARE_FILES} spare"
    );
    if needed > soft {
        CheckRow::fail(CheckKind::OpenFiles, value, FILES_HINT)
    } else if needed.saturating_mul(5) > soft.saturating_mul(4) {
        CheckRow::warn(CheckKind::OpenFiles, value, FILES_HINT)
    } else {
        CheckRow::ok(CheckKind::OpenFiles, value)
    }
}

/// Connections to one address each need a local port of the ephemeral range; closed ones hold theirs in
/// TIME_WAIT for a minute unless `tcp_tw_reuse` lets a new connection take it.
fn ephemeral_ports(connections: u64) -> CheckRow {
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok();
    let bounds = range.as_deref().and_then(|r| {
        let mut parts = r.split_whitespace().map(str::parse::<u64>);
        match (parts.next(), parts.next()) {
            (Some(Ok(lo)), Some(Ok(hi))) if hi >= lo => Some((lo, hi)),
            _ => None,
        }
    });
    let Some((lo, hi)) = bounds else {
        return CheckRow::warn(
            CheckKind::EphemeralPorts,
            "not measured: /proc/sys/net/ipv4/ip_local_port_range cannot be read",
            PORTS_HINT,
        );
    };
    let tw_reuse = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_tw_reuse")
        .map_or_else(|_| "unknown".to_owned(), |s| s.trim().to_owned());
    let ports = hi - lo + 1;
    let value = format!(
        "{connections} connection(s) to one address; {ports} ports ({lo}-{hi}); tcp_tw_reuse={tw_reuse}"
    );
    if connections > ports {
        CheckRow::fail(CheckKind::EphemeralPorts, value, PORTS_HINT)
    } else if connections.saturating_mul(2) > ports {
        CheckRow::warn(CheckKind::EphemeralPorts, value, PORTS_HINT)
    } else {
        CheckRow::ok(CheckKind::EphemeralPorts, value)
    }
}

/// Free space where interval reports wait for the coordinator's acknowledgement.
fn spool_space(spool: Option<&Path>) -> CheckRow {
    let Some(dir) = spool else {
        return CheckRow::ok(
            CheckKind::SpoolDisk,
            "no spool: reports wait in memory until acknowledged",
        );
    };
    // The folder may not exist before the first run: its nearest existing parent is on the same disk.
    let existing = dir.ancestors().find(|p| p.exists()).unwrap_or(dir);
    match rustix::fs::statvfs(existing) {
        Ok(stat) => {
            let free = stat.f_bavail.saturating_mul(stat.f_frsize);
            let value = format!("{} MiB free at {}", free >> 20, dir.display());
            let hint =
                "free disk space where the agent's spool is (--spool), or point --spool elsewhere";
            if free < SPOOL_FAIL_BYTES {
                CheckRow::fail(CheckKind::SpoolDisk, value, hint)
            } else if free < SPOOL_WARN_BYTES {
                CheckRow::warn(CheckKind::SpoolDisk, value, hint)
            } else {
                CheckRow::ok(CheckKind::SpoolDisk, value)
            }
        }
        Err(e) => CheckRow::warn(
            CheckKind::SpoolDisk,
            format!("not measured: {}: {e}", dir.display()),
            "check the spool folder (--spool) exists and is readable",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_limit_below_the_need_fails_with_the_numbers() {
        let (soft, _) = rlimit::getrlimit(rlimit::Resource::NOFILE).expect("limit");
        let row = open_files(soft);
        assert_eq!(row.status, CheckStatus::Fail);
        assert!(
            row.value.contains(&format!("limit {soft}")),
            "{}",
            row.value
        );
        assert!(row.hint.contains("LimitNOFILE="));
        assert_eq!(open_files(1).status, CheckStatus::Ok);
    }

    #[test]
    fn more_connections_than_ports_fail() {
        assert_eq!(ephemeral_ports(1_000_000).status, CheckStatus::Fail);
        assert_eq!(ephemeral_ports(10).status, CheckStatus::Ok);
    }
}
