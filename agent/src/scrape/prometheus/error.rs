//! Why a Prometheus run for one interval did not start, or why its scrapes or its own figures cannot be trusted:
//! the scrape scenario then records the Prometheus side as not measured, with this text.

use crate::scrape::exposition::ExpositionError;
use crate::scrape::fetch::FetchError;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

/// What failed in starting, asking or reading a running Prometheus.
#[derive(Debug, thiserror::Error)]
pub enum PrometheusError {
    #[error("cannot create {}: {source}", path.display())]
    CreateFolder {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("no free loopback port for Prometheus: {0}")]
    NoFreePort(#[source] std::io::Error),
    #[error("cannot write {}: {source}", path.display())]
    WriteConfig {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot create the log file: {0}")]
    CreateLog(#[source] std::io::Error),
    #[error("cannot open the log file: {0}")]
    OpenLog(#[source] std::io::Error),
    #[error("{} did not start: {source}", binary.display())]
    Spawn {
        binary: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// `log` is the last lines of its log.
    #[error("Prometheus exited at start ({status}): {log}")]
    ExitedAtStart { status: ExitStatus, log: String },
    #[error("Prometheus was not ready within {within:?}: {log}")]
    NotReady { within: Duration, log: String },
    #[error("Prometheus exited ({status}): {log}")]
    Exited { status: ExitStatus, log: String },
    #[error("asking Prometheus for its targets: {0}")]
    Targets(#[source] FetchError),
    #[error("Prometheus's /api/v1/targets: {0}")]
    TargetsJson(#[source] serde_json::Error),
    #[error("Prometheus has no active target")]
    NoActiveTarget,
    /// `error` is Prometheus's `lastError` (at most 300 characters), or "no error given".
    #[error("Prometheus's scrapes of the target fail ({health}): {error}")]
    ScrapesFail { health: String, error: String },
    #[error("reading Prometheus's own /metrics: {0}")]
    OwnMetrics(#[source] FetchError),
    #[error("Prometheus's own /metrics is not UTF-8")]
    OwnMetricsNotUtf8,
    #[error("Prometheus's own /metrics: {0}")]
    OwnMetricsSyntax(#[source] ExpositionError),
    #[error("Prometheus's own /metrics has no {0}: is it Prometheus 2.x or later?")]
    MissingFigure(&'static str),
}
