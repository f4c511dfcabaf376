//! One scrape of the target, checked and recorded: the response must be a 2xx exposition (text or OpenMetrics)
//! with at least one series; its series and samples are counted, and with `replicas` the body is served scaled.

use super::exposition::{self, ExpositionError, Format};
use super::fetch::{FetchError, Fetcher};
use super::figures::{Figures, Outcome};
use bytes::Bytes;
use std::sync::Arc;
use std::time::Duration;

/// Why a scrape did not give an exposition.
#[derive(Debug, thiserror::Error)]
pub enum Problem {
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error("it answered HTTP {0}")]
    Status(u16),
    #[error(
        "it is not a Prometheus exposition: its content type is {0:?} (expected text/plain or application/openmetrics-text)"
    )]
    ContentType(String),
    #[error("it is not a Prometheus exposition: the body is not UTF-8")]
    NotUtf8,
    #[error("it is not a Prometheus exposition: {0}")]
    NotExposition(ExpositionError),
    #[error("it exposes no series")]
    Empty,
    #[error(
        "its series already have a label named {} (the label replicas add): replicas cannot be served",
        exposition::REPLICA_LABEL
    )]
    ReplicaLabel,
    #[error(
        "{replicas} copies of its {bytes} bytes would be more than the relay serves ({} MiB): lower replicas",
        MAX_SERVED >> 20
    )]
    TooLargeScaled { replicas: u64, bytes: usize },
}

/// The largest body the relay builds from `replicas` copies.
pub const MAX_SERVED: usize = 1 << 30;

/// A scrape as the relay serves it.
pub struct Served {
    pub content_type: String,
    pub body: Bytes,
}

/// Scrapes one target, recording each scrape in `figures`.
pub struct Scraper {
    pub fetcher: Fetcher,
    pub replicas: u64,
    pub timeout: Duration,
    pub figures: Arc<Figures>,
}

impl Scraper {
    /// One scrape; with `serve`, the body as the relay serves it (replicated).
    pub async fn scrape(&mut self, serve: bool) -> Result<Served, Problem> {
        let fetched = match self.fetcher.fetch(self.timeout).await {
            Ok(f) => f,
            Err(e) => {
                let (outcome, took) = match &e {
                    FetchError::Timeout(t) => (Outcome::Timeout, *t),
                    FetchError::Connect(_) => (Outcome::Connect, Duration::ZERO),
                    _ => (Outcome::Failed, Duration::ZERO),
                };
                self.figures.record(outcome, took, 0);
                return Err(e.into());
            }
        };
        let bytes = fetched.body.len() as u64;
        let checked = check_exposition(fetched.status, &fetched.content_type, &fetched.body);
        let outcome = match &checked {
            Ok(counted) => Outcome::Good {
                target_series: counted.series,
                series: counted.series.saturating_mul(self.replicas),
                samples: counted.samples.saturating_mul(self.replicas),
            },
            Err(Problem::Status(status)) => Outcome::Status(*status),
            Err(_) => Outcome::NotExposition,
        };
        self.figures.record(outcome, fetched.took, bytes);
        checked?;
        if self.replicas > 1
            && exposition::has_label(
                std::str::from_utf8(&fetched.body).unwrap_or_default(),
                exposition::REPLICA_LABEL,
            )
        {
            return Err(Problem::ReplicaLabel);
        }
        let body = if serve && self.replicas > 1 {
            let scaled = fetched.body.len().saturating_mul(self.replicas as usize);
            if scaled > MAX_SERVED {
                return Err(Problem::TooLargeScaled {
                    replicas: self.replicas,
                    bytes: fetched.body.len(),
                });
            }
            // Checked above: UTF-8.
            let text = std::str::from_utf8(&fetched.body).unwrap_or_default();
            Bytes::from(exposition::replicate(text, self.replicas))
        } else {
            fetched.body
        };
        Ok(Served {
            content_type: fetched.content_type,
            body,
        })
    }
}

/// The response is a 2xx exposition with at least one series: its counts (the preflight's check too).
pub fn check_exposition(
    status: u16,
    content_type: &str,
    body: &[u8],
) -> Result<exposition::Counted, Problem> {
    if !(200..300).contains(&status) {
        return Err(Problem::Status(status));
    }
    let format = Format::of_content_type(content_type)
        .ok_or_else(|| Problem::ContentType(content_type.chars().take(80).collect()))?;
    let text = std::str::from_utf8(body).map_err(|_| Problem::NotUtf8)?;
    let counted = exposition::count(text, format).map_err(Problem::NotExposition)?;
    if counted.series == 0 {
        return Err(Problem::Empty);
    }
    Ok(counted)
}
