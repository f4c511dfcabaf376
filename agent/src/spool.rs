//! Interval reports kept until the coordinator acknowledges them (after it stored them), so that none is lost when
//! the link or the coordinator goes away: each session first sends what is still unacknowledged, then what comes.
//! With a directory the spool survives the agent too (one file per report); it is bounded, and a report that does
//! not fit is counted and logged, never silently dropped.

use loadgrade_common::interval::IntervalReport;
use loadgrade_common::protocol::FromAgent;
use loadgrade_proto::v1;
use prost::Message as _;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use tokio::sync::mpsc;

/// Most bytes of unacknowledged reports kept (a second of one shard is a few KiB).
pub const MAX_BYTES: usize = 64 << 20;

/// (run, epoch, seq): what an acknowledgement names.
type Key = (String, u64, u64);

struct Entry {
    report: IntervalReport,
    bytes: usize,
}

#[derive(Default)]
struct Inner {
    pending: BTreeMap<Key, Entry>,
    bytes: usize,
    /// The current session's sender of new reports (and of the messages that must follow them in order).
    live: Option<mpsc::UnboundedSender<FromAgent>>,
    /// Reports that did not fit.
    overflowed: u64,
}

pub struct Spool {
    dir: Option<PathBuf>,
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for Spool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spool").field("dir", &self.dir).finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("cannot use spool directory {dir}: {source}")]
    Dir { dir: String, source: std::io::Error },
}

impl Spool {
    /// A spool in memory only (an agent inside the coordinator's process dies with it anyway).
    pub fn in_memory() -> Self {
        Spool {
            dir: None,
            inner: Mutex::default(),
        }
    }

    /// A spool in `dir` (created if missing); reports left there by an earlier run of the agent are loaded, to be
    /// sent again.
    pub fn open(dir: &Path) -> Result<Self, SpoolError> {
        let fail = |source| SpoolError::Dir {
            dir: dir.display().to_string(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(fail)?;
        let spool = Spool {
            dir: Some(dir.to_owned()),
            inner: Mutex::default(),
        };
        for entry in std::fs::read_dir(dir).map_err(fail)? {
            let Ok(entry) = entry else { continue };
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) != Some("pb") {
                continue;
            }
            let loaded = std::fs::read(&path)
                .ok()
                .and_then(|bytes| v1::IntervalReport::decode(bytes.as_slice()).ok());
            match loaded {
                Some(wire) => {
                    let report = IntervalReport::from(wire);
                    let bytes = entry.metadata().map_or(0, |m| m.len() as usize);
                    let mut inner = spool.lock();
                    inner.bytes += bytes;
                    inner.pending.insert(key(&report), Entry { report, bytes });
                }
                None => {
                    tracing::warn!(file = %path.display(), "unreadable spooled report removed");
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
        let loaded = spool.lock().pending.len();
        if loaded > 0 {
            tracing::info!(reports = loaded, dir = %dir.display(), "unacknowledged reports from an earlier run will be sent");
        }
        Ok(spool)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn path(&self, key: &Key) -> Option<PathBuf> {
        // The run id comes from the coordinator: hex keeps it a plain file name.
        let run: String = key.0.bytes().map(|b| format!("{b:02x}")).collect();
        self.dir
            .as_ref()
            .map(|d| d.join(format!("{run}.{:016x}.{:020}.pb", key.1, key.2)))
    }

    /// Keeps `report` until acknowledged and hands it to the current session, if any.
    pub fn push(&self, report: IntervalReport) {
        let encoded = v1::IntervalReport::from(report.clone()).encode_to_vec();
        let key = key(&report);
        let mut inner = self.lock();
        if inner.bytes + encoded.len() > MAX_BYTES {
            inner.overflowed += 1;
            tracing::error!(
                run = %key.0, seq = key.2, overflowed = inner.overflowed,
                "the spool is full ({MAX_BYTES} bytes unacknowledged): this report is sent once, not kept"
            );
        } else {
            if let Some(path) = self.path(&key)
                && let Err(e) = std::fs::write(&path, &encoded)
            {
                tracing::warn!(file = %path.display(), "cannot write a spooled report ({e}); kept in memory only");
            }
            inner.bytes += encoded.len();
            inner.pending.insert(
                key,
                Entry {
                    report: report.clone(),
                    bytes: encoded.len(),
                },
            );
        }
        if let Some(live) = &inner.live {
            let _ = live.send(FromAgent::Interval(Box::new(report)));
        }
    }

    /// Sends `message` on the current session after every report pushed before it (a shard's end must not overtake
    /// its last intervals). Not kept: without a session it is dropped.
    pub fn pass(&self, message: FromAgent) {
        if let Some(live) = &self.lock().live {
            let _ = live.send(message);
        }
    }

    /// The coordinator stored this report: forget it.
    pub fn acked(&self, run_id: &str, epoch: u64, seq: u64) {
        let key = (run_id.to_owned(), epoch, seq);
        let mut inner = self.lock();
        if let Some(entry) = inner.pending.remove(&key) {
            inner.bytes -= entry.bytes;
            drop(inner);
            if let Some(path) = self.path(&key) {
                let _ = std::fs::remove_file(path);
            }
        }
    }

    /// Starts a session's feed: every unacknowledged report so far, in order, then each new message as it comes.
    pub fn subscribe(&self) -> (Vec<IntervalReport>, mpsc::UnboundedReceiver<FromAgent>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut inner = self.lock();
        inner.live = Some(tx);
        let backlog = inner.pending.values().map(|e| e.report.clone()).collect();
        (backlog, rx)
    }

    /// Reports not yet acknowledged.
    pub fn pending(&self) -> usize {
        self.lock().pending.len()
    }
}

fn key(report: &IntervalReport) -> Key {
    (report.run_id.clone(), report.epoch, report.seq)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(run: &str, seq: u64) -> IntervalReport {
        IntervalReport {
            run_id: run.into(),
            epoch: 7,
            seq,
            ..IntervalReport::default()
        }
    }

    #[test]
    fn reports_survive_until_acknowledged_and_across_restarts() {
        let dir = std::env::temp_dir().join(format!("loadgrade-spool-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        {
            let spool = Spool::open(&dir).expect("spool");
            spool.push(report("../../etc/passwd", 0));
            spool.push(report("r", 1));
            spool.acked("r", 7, 1);
            assert_eq!(spool.pending(), 1);
        }
        let reopened = Spool::open(&dir).expect("reopen");
        let (backlog, _rx) = reopened.subscribe();
        assert_eq!(
            backlog.len(),
            1,
            "the unacknowledged report survived the agent"
        );
        assert_eq!(
            backlog[0].run_id, "../../etc/passwd",
            "and its odd run id stayed a file name"
        );
        assert_eq!(std::fs::read_dir(&dir).expect("dir").count(), 1);
        reopened.acked("../../etc/passwd", 7, 0);
        assert_eq!(std::fs::read_dir(&dir).expect("dir").count(), 0);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_session_gets_the_backlog_then_new_reports() {
        let spool = Spool::in_memory();
        spool.push(report("r", 0));
        let (backlog, mut rx) = spool.subscribe();
        spool.push(report("r", 1));
        assert_eq!(backlog.len(), 1);
        assert!(matches!(rx.recv().await, Some(FromAgent::Interval(r)) if r.seq == 1));
    }
}
