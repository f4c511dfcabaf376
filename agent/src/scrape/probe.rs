//! A scrape shard's preflight probe: one scrape of the target, checked as an exposition; no Prometheus is
//! started, but the one the shard would run is named (or why none would be).

use super::Prepared;
use super::fetch::{self, FetchError};
use super::scraper::{self, Problem};
use std::net::SocketAddr;
use std::time::Duration;

/// Why a scrape target failed its preflight probe.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("{addr}: {source}")]
    Fetch {
        addr: SocketAddr,
        #[source]
        source: FetchError,
    },
    #[error("{problem} (HTTP {status})")]
    NotExposition {
        status: u16,
        #[source]
        problem: Problem,
    },
}

impl Prepared {
    /// Preflight: one scrape of the target, checked as an exposition; no Prometheus is started. Returns what
    /// answered, e.g. "HTTP 200, 5,012 series in 3.1 ms".
    pub async fn probe(&self) -> Result<String, ProbeError> {
        let timeout = Duration::from_secs(10).min(self.interval.max(Duration::from_secs(1)));
        let mut fetcher = fetch::Fetcher::new(&self.shard.spec.target, self.addr);
        let fetched = fetcher
            .fetch(timeout)
            .await
            .map_err(|source| ProbeError::Fetch {
                addr: self.addr,
                source,
            })?;
        let counted =
            scraper::check_exposition(fetched.status, &fetched.content_type, &fetched.body)
                .map_err(|problem| ProbeError::NotExposition {
                    status: fetched.status,
                    problem,
                })?;
        let prometheus = match &self.prometheus {
            Ok(binary) => format!("; Prometheus {}", binary.path.display()),
            Err(_) if self.shard.spec.prometheus.is_none() => String::new(),
            Err(why) => format!("; Prometheus not usable: {why}"),
        };
        Ok(format!(
            "HTTP {}, {} series in {:.1} ms{prometheus}",
            fetched.status,
            counted.series,
            fetched.took.as_secs_f64() * 1e3
        ))
    }
}
