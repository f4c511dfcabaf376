//! The scrape executor: a shard measures one scrape interval of a `scrape` scenario. It checks the target is an
//! exposition (one untimed scrape: down, garbage or not Prometheus's format fails the shard with the reason),
//! then either scrapes it at the interval for `duration` itself, or, when a Prometheus binary is named and found,
//! runs a real Prometheus that scrapes it through the [`relay`] (each of its scrapes is one scrape of the target,
//! timed here) and reads Prometheus's own figures at the start and end of the window.

pub mod exposition;
mod fetch;
mod figures;
mod probe;
mod prometheus;
mod relay;
mod scraper;

pub use exposition::{Counted, Format, count};
pub use probe::ProbeError;
pub use prometheus::{BinaryError, prometheus_on_path, trusted_binary};

use crate::Allowlist;
use crate::cutting::Ended;
use crate::shard_io::ShardOutput;
use figures::{Cutter, Figures, Phase};
use loadgrade_common::interval::PrometheusFigures;
use loadgrade_common::shard::ScrapeShard;
use scraper::Scraper;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;

/// How long a started Prometheus may take to scrape for the first time.
const FIRST_SCRAPE_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a scrape shard is refused before it starts.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("the target URL has no host and port this agent can read")]
    Url,
    #[error("the target host {host} {why}")]
    Host { host: String, why: String },
    #[error("the shard names no interval of its scenario")]
    NoInterval,
    #[error("the shard asks for {asked} {what}; this agent allows at most {cap} (--max-{flag})")]
    Cap {
        what: &'static str,
        asked: String,
        cap: String,
        flag: &'static str,
    },
}

/// Why a scrape shard stopped without its figures.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error("cannot scrape {target}: {why}")]
    Target { target: String, why: String },
    #[error("stopped")]
    Stopped,
    #[error("the interval did not finish within {0:?}")]
    TooLong(Duration),
}

/// A shard ready to run.
#[derive(Debug)]
pub struct Prepared {
    shard: ScrapeShard,
    interval: Duration,
    addr: SocketAddr,
    /// The Prometheus to run, or why none is run.
    prometheus: Result<prometheus::Binary, BinaryError>,
    /// For logs: the target without its query.
    pub shown: String,
}

/// Checks the target is a host this agent may reach, the shard within this agent's caps, and finds the
/// Prometheus this agent's operator allows.
pub async fn prepare(
    shard: ScrapeShard,
    allowlist: &Allowlist,
    caps: &crate::Caps,
    allowed_prometheus: Option<&std::path::Path>,
) -> Result<Prepared, Refusal> {
    let interval = shard.interval().ok_or(Refusal::NoInterval)?;
    let spec = &shard.spec;
    if let Some(cap) = caps.max_duration
        && spec.part_bound(interval) > cap
    {
        return Err(Refusal::Cap {
            what: "seconds (the interval's part, Prometheus's start and settling included)",
            asked: format!("{:.0}", spec.part_bound(interval).as_secs_f64()),
            cap: format!("{:.0}", cap.as_secs_f64()),
            flag: "duration",
        });
    }
    // A scrape every interval is that many requests a second.
    let per_second = (1.0 / interval.as_secs_f64()).ceil() as u64;
    if let Some(cap) = caps.max_rate
        && per_second > cap
    {
        return Err(Refusal::Cap {
            what: "scrapes per second",
            asked: per_second.to_string(),
            cap: cap.to_string(),
            flag: "rate",
        });
    }
    // The plan's parser, so a shard is refused for exactly what a plan is (port 99999 is an error, not port 80).
    let url = loadgrade_common::plan::target_url::TargetUrl::parse(&spec.target)
        .map_err(|_| Refusal::Url)?;
    if url.https {
        return Err(Refusal::Url);
    }
    let (host, port) = url.host_port();
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| Refusal::Host {
            host: host.to_owned(),
            why: format!("does not resolve: {e}"),
        })?
        .collect();
    let allowed = allowlist.resolve().await;
    allowed.check(&addrs).map_err(|e| Refusal::Host {
        host: host.to_owned(),
        why: e.to_string(),
    })?;
    let addr = *addrs.first().ok_or_else(|| Refusal::Host {
        host: host.to_owned(),
        why: "resolves to no address".to_owned(),
    })?;
    let prometheus = match &spec.prometheus {
        None => Err(BinaryError::NotNamed),
        Some(name) => prometheus::locate(name, allowed_prometheus).await,
    };
    Ok(Prepared {
        shown: spec
            .target
            .split(['?', '#'])
            .next()
            .unwrap_or_default()
            .to_owned(),
        interval,
        addr,
        prometheus,
        shard,
    })
}

/// Runs the shard from `start`: returns the interval reports sent.
pub async fn run(
    prepared: Arc<Prepared>,
    start: Instant,
    output: ShardOutput,
    stop: CancellationToken,
) -> Result<u64, Failure> {
    let figures = Arc::new(Figures::default());
    let mut cutter = Cutter {
        figures: figures.clone(),
        stamp: crate::cutting::Stamp::new(output.shard, output.seq, start, output.start_unix_ms),
    };
    let bound = prepared.shard.spec.part_bound(prepared.interval);
    let work = execute(&prepared, &figures, &stop);
    let (ended, sent) = crate::cutting::drive(
        work,
        start,
        bound,
        &output.reports,
        &stop,
        |now| cutter.cut(now),
        || figures.set_phase(Phase::After),
    )
    .await;
    match ended {
        Ended::Done(Ok(()) | Err(Failure::Stopped)) | Ended::Stopped => Ok(sent),
        Ended::Done(Err(e)) => Err(e),
        Ended::TooLong => Err(Failure::TooLong(bound)),
    }
}

/// The check, then the interval with or without Prometheus.
async fn execute(
    p: &Prepared,
    figures: &Arc<Figures>,
    stop: &CancellationToken,
) -> Result<(), Failure> {
    let spec = &p.shard.spec;
    let timeout = spec.timeout_at(p.interval);
    let mut scraper = Scraper {
        fetcher: fetch::Fetcher::new(&spec.target, p.addr),
        replicas: spec.replicas,
        timeout,
        figures: figures.clone(),
    };
    // The check: one scrape before anything is timed (figures record nothing before the window), scaled as the
    // relay would serve it when a Prometheus is to run.
    scraper
        .scrape(p.prometheus.is_ok())
        .await
        .map_err(|e| Failure::Target {
            target: p.shown.clone(),
            why: e.to_string(),
        })?;
    let scraper = Arc::new(Mutex::new(scraper));
    let binary = match &p.prometheus {
        Ok(binary) => binary.clone(),
        Err(why) => {
            figures.prometheus_not_measured(why.to_string());
            return scrape_alone(&scraper, p, figures, stop).await;
        }
    };
    let relay = relay::Relay::start(scraper.clone())
        .await
        .map_err(|e| Failure::Target {
            target: p.shown.clone(),
            why: format!("the relay for Prometheus cannot listen: {e}"),
        })?;
    let started = prometheus::Prometheus::start(
        &binary,
        relay.addr,
        &relay.path,
        &relay.token,
        p.interval,
        timeout,
    )
    .await;
    let mut prometheus = match started {
        Ok(prometheus) => prometheus,
        Err(why) => {
            drop(relay);
            figures.prometheus_not_measured(why.to_string());
            return scrape_alone(&scraper, p, figures, stop).await;
        }
    };
    let measured = with_prometheus(&mut prometheus, relay, p, &binary, figures, stop).await;
    if measured.is_err() && figures.recording() {
        // Prometheus failed inside the window: it drove the scrapes, so their count says nothing of a rate.
        figures.abort_window();
    }
    figures.set_phase(Phase::After);
    prometheus.stop().await;
    match measured {
        Ok(figures_of_prometheus) => figures.prometheus(figures_of_prometheus),
        Err(Failure::Target { why, .. }) => figures.prometheus_not_measured(why),
        Err(e) => return Err(e),
    }
    Ok(())
}

/// Without Prometheus: one scrape every interval for `duration`, the first at once.
async fn scrape_alone(
    scraper: &Mutex<Scraper>,
    p: &Prepared,
    figures: &Figures,
    stop: &CancellationToken,
) -> Result<(), Failure> {
    let spec = &p.shard.spec;
    let begin = Instant::now();
    let end = begin + spec.duration;
    figures.set_phase(Phase::Window);
    let mut next = begin;
    while next < end {
        tokio::select! {
            () = sleep_until(next) => {}
            () = stop.cancelled() => return Err(Failure::Stopped),
        }
        // A failed scrape is an error in the figures; the interval goes on, as Prometheus would.
        let _ = scraper.lock().await.scrape(false).await;
        next += p.interval;
    }
    // The window is `duration`: its last scrape opens the last interval's slot, which runs to the end.
    tokio::select! {
        () = sleep_until(end) => {}
        () = stop.cancelled() => return Err(Failure::Stopped),
    }
    figures.set_phase(Phase::After);
    Ok(())
}

/// With Prometheus scraping through the relay: settle, then read its own figures half an interval after a scrape
/// at the window's start and again at its end, so the window holds exactly the scrapes between the two reads.
async fn with_prometheus(
    prometheus: &mut prometheus::Prometheus,
    mut relay: relay::Relay,
    p: &Prepared,
    binary: &prometheus::Binary,
    figures: &Figures,
    stop: &CancellationToken,
) -> Result<PrometheusFigures, Failure> {
    let spec = &p.shard.spec;
    let not_measured = |why: String| Failure::Target {
        target: p.shown.clone(),
        why,
    };
    let prometheus_failed = |e: prometheus::PrometheusError| not_measured(e.to_string());
    let pause = |d: Duration| async move {
        tokio::select! {
            () = tokio::time::sleep(d) => Ok(()),
            () = stop.cancelled() => Err(Failure::Stopped),
        }
    };
    let next_scrape = async |relay: &mut relay::Relay, within: Duration| -> Result<(), Failure> {
        relay.served.mark_unchanged();
        tokio::select! {
            changed = tokio::time::timeout(within, relay.served.changed()) => {
                if !matches!(changed, Ok(Ok(()))) {
                    return Err(not_measured(format!("Prometheus did not scrape within {within:?}")));
                }
            }
            () = stop.cancelled() => return Err(Failure::Stopped),
        }
        Ok(())
    };
    // Prometheus hands new targets to its scrapers in batches (every 5 s in 2.x): settling starts at its first
    // scrape, not at its start.
    next_scrape(&mut relay, FIRST_SCRAPE_TIMEOUT + p.interval).await?;
    pause(spec.settle_at(p.interval)).await?;
    let wait_scrape = spec.timeout_at(p.interval) + p.interval.saturating_mul(2);
    let after_scrape = async |relay: &mut relay::Relay| -> Result<(), Failure> {
        next_scrape(relay, wait_scrape).await?;
        pause(p.interval / 2).await
    };
    after_scrape(&mut relay).await?;
    prometheus
        .scrape_health()
        .await
        .map_err(prometheus_failed)?;
    let first = prometheus.read().await.map_err(prometheus_failed)?;
    figures.set_phase(Phase::Window);
    pause(spec.duration.saturating_sub(p.interval / 2)).await?;
    after_scrape(&mut relay).await?;
    figures.set_phase(Phase::After);
    prometheus
        .scrape_health()
        .await
        .map_err(prometheus_failed)?;
    let last = prometheus.read().await.map_err(prometheus_failed)?;
    drop(relay);
    let window = last.at.duration_since(first.at).as_secs_f64();
    if window <= 0.0 {
        return Err(not_measured("the window has no length".to_owned()));
    }
    let whole = |v: f64| {
        if v.is_finite() && v > 0.0 {
            v as u64
        } else {
            0
        }
    };
    Ok(PrometheusFigures {
        version: binary.version.clone(),
        window_ms: (window * 1000.0) as u64,
        head_series: whole(last.head_series),
        samples_appended_per_s: (last.samples_appended - first.samples_appended).max(0.0) / window,
        rss_bytes: whole(last.rss_bytes),
        cpu_seconds: (last.cpu_seconds - first.cpu_seconds).max(0.0),
        heap_inuse_bytes: whole(last.heap_inuse_bytes),
    })
}
