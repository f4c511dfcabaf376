//! A real Prometheus for one interval: found (the plan's `prometheus`, on PATH or an absolute path to a file named
//! `prometheus`), checked by its `--version`, started with a generated config (one job: the relay, at the
//! interval), a fresh TSDB in a temporary folder and a free loopback port; its own /metrics read; stopped (TERM,
//! then KILL) and its folder removed, also when the shard ends early.

mod binary;
mod error;

use super::exposition::{self, Format};
use super::fetch::Fetcher;
pub use binary::{Binary, BinaryError, locate, prometheus_on_path, trusted_binary};
pub use error::PrometheusError;
use std::net::SocketAddr;
use std::os::unix::fs::DirBuilderExt as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::process::{Child, Command};
use tokio::time::Instant;

/// How long Prometheus gets to say it is ready.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// The only PATH a Prometheus child gets; its environment holds nothing else of the agent's.
const CHILD_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// A command for a Prometheus child: its own process group (so it and anything it starts can be signalled
/// together), an empty environment but a plain PATH, no input, killed if dropped.
fn child_command(binary: &Path) -> Command {
    let mut command = Command::new(binary);
    command
        .env_clear()
        .env("PATH", CHILD_PATH)
        .stdin(Stdio::null())
        .process_group(0)
        .kill_on_drop(true);
    command
}

/// SIGKILL to the process group a child leads.
fn kill_group(leader: Option<u32>) {
    signal_group(leader, rustix::process::Signal::KILL);
}

fn signal_group(leader: Option<u32>, signal: rustix::process::Signal) {
    if let Some(pid) = leader
        .and_then(|id| i32::try_from(id).ok())
        .and_then(rustix::process::Pid::from_raw)
    {
        let _ = rustix::process::kill_process_group(pid, signal);
    }
}

/// Prometheus's own figures at one instant.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Own {
    pub at: Instant,
    pub head_series: f64,
    pub samples_appended: f64,
    pub rss_bytes: f64,
    pub cpu_seconds: f64,
    pub heap_inuse_bytes: f64,
}

/// A running Prometheus; dropped, it is killed and its folder removed.
pub struct Prometheus {
    child: Option<Child>,
    dir: PathBuf,
    web: SocketAddr,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            kill_group(child.id());
            let _ = child.start_kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A duration as Prometheus's config reads it.
fn prom_duration(d: Duration) -> String {
    format!("{}ms", d.as_millis().max(1))
}

impl Prometheus {
    /// Starts `binary` scraping `relay` every `interval` (given up after `timeout`) and waits until it is ready.
    pub async fn start(
        binary: &Binary,
        relay: SocketAddr,
        path: &str,
        token: &str,
        interval: Duration,
        timeout: Duration,
    ) -> Result<Prometheus, PrometheusError> {
        remove_orphaned_folders();
        let dir = std::env::temp_dir().join(format!(
            "{FOLDER_PREFIX}{}-{}",
            std::process::id(),
            rand::random::<u64>()
        ));
        let data = dir.join("data");
        // Only this agent's user reads the config (it names the relay's path) and the TSDB.
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&data)
            .and_then(|()| {
                std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            })
            .map_err(|source| PrometheusError::CreateFolder {
                path: data.clone(),
                source,
            })?;
        let mut prometheus = Prometheus {
            child: None,
            dir: dir.clone(),
            web: free_port().map_err(PrometheusError::NoFreePort)?,
        };
        let config = format!(
            "# Written by loadgrade for one scrape interval; removed when the interval ends.\n\
             global:\n  scrape_interval: {interval}\n  scrape_timeout: {timeout}\n  evaluation_interval: 1m\n\
             scrape_configs:\n  - job_name: loadgrade\n    metrics_path: {path}\n    authorization:\n      \
             type: Bearer\n      credentials: {token}\n    static_configs:\n      - targets: ['{relay}']\n",
            interval = prom_duration(interval),
            timeout = prom_duration(timeout.min(interval)),
        );
        let config_file = dir.join("prometheus.yml");
        std::fs::write(&config_file, config).map_err(|source| PrometheusError::WriteConfig {
            path: config_file.clone(),
            source,
        })?;
        let log = std::fs::File::create(dir.join("prometheus.log"))
            .map_err(PrometheusError::CreateLog)?;
        let log_err = log.try_clone().map_err(PrometheusError::OpenLog)?;
        // Where util-linux's setpriv is, Prometheus dies with this agent even if it is killed outright.
        let mut command = match setpriv() {
            Some(setpriv) => {
                let mut c = child_command(&setpriv);
                c.args(["--pdeathsig", "KILL", "--"]).arg(&binary.path);
                c
            }
            None => child_command(&binary.path),
        };
        let child = command
            .arg(format!("--config.file={}", config_file.display()))
            .arg(format!("--storage.tsdb.path={}", data.display()))
            .arg(format!("--web.listen-address={}", prometheus.web))
            .arg("--log.level=warn")
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .map_err(|source| PrometheusError::Spawn {
                binary: binary.path.clone(),
                source,
            })?;
        prometheus.child = Some(child);
        prometheus.wait_ready().await?;
        Ok(prometheus)
    }

    /// Polls `/-/ready` until it answers 200, Prometheus exits, or [`START_TIMEOUT`].
    async fn wait_ready(&mut self) -> Result<(), PrometheusError> {
        let deadline = Instant::now() + START_TIMEOUT;
        let mut fetcher = Fetcher::new(&format!("http://{}/-/ready", self.web), self.web);
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                return Err(PrometheusError::ExitedAtStart {
                    status,
                    log: self.log_tail(),
                });
            }
            if let Ok(r) = fetcher.fetch(Duration::from_secs(1)).await
                && r.status == 200
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Err(PrometheusError::NotReady {
            within: START_TIMEOUT,
            log: self.log_tail(),
        })
    }

    /// The last lines of its log, for an error.
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().rev().take(3).collect();
        let tail = lines.into_iter().rev().collect::<Vec<_>>().join(" | ");
        if tail.is_empty() {
            "it logged nothing".to_owned()
        } else {
            tail.chars().take(400).collect()
        }
    }

    /// Whether its scrapes of the relay succeed (`/api/v1/targets`): the reason when the last one failed (a
    /// timeout, a value or label it rejected), so no figure is taken from a Prometheus that ingested nothing.
    pub async fn scrape_health(&mut self) -> Result<(), PrometheusError> {
        if let Some(child) = self.child.as_mut()
            && let Ok(Some(status)) = child.try_wait()
        {
            return Err(PrometheusError::Exited {
                status,
                log: self.log_tail(),
            });
        }
        let mut fetcher = Fetcher::new(&format!("http://{}/api/v1/targets", self.web), self.web);
        let response = fetcher
            .fetch(READ_TIMEOUT)
            .await
            .map_err(PrometheusError::Targets)?;
        let json: serde_json::Value =
            serde_json::from_slice(&response.body).map_err(PrometheusError::TargetsJson)?;
        let target = json
            .pointer("/data/activeTargets/0")
            .ok_or(PrometheusError::NoActiveTarget)?;
        let text = |key: &str| target.get(key).and_then(|v| v.as_str()).unwrap_or_default();
        if text("health") == "up" {
            return Ok(());
        }
        let error: String = text("lastError").chars().take(300).collect();
        Err(PrometheusError::ScrapesFail {
            health: text("health").to_owned(),
            error: if error.is_empty() {
                "no error given".to_owned()
            } else {
                error
            },
        })
    }

    /// Reads its own /metrics.
    pub async fn read(&self) -> Result<Own, PrometheusError> {
        let mut fetcher = Fetcher::new(&format!("http://{}/metrics", self.web), self.web);
        let response = fetcher
            .fetch(READ_TIMEOUT)
            .await
            .map_err(PrometheusError::OwnMetrics)?;
        let at = Instant::now();
        let format = Format::of_content_type(&response.content_type).unwrap_or(Format::Text);
        let text =
            std::str::from_utf8(&response.body).map_err(|_| PrometheusError::OwnMetricsNotUtf8)?;
        own_figures(text, format, at)
    }

    /// Stops it (TERM, then KILL after a wait) and removes its folder.
    pub async fn stop(mut self) {
        if let Some(mut child) = self.child.take() {
            let group = child.id();
            signal_group(group, rustix::process::Signal::TERM);
            if tokio::time::timeout(STOP_TIMEOUT, child.wait())
                .await
                .is_err()
            {
                let _ = child.kill().await;
            }
            // Anything it started (a wrapper script's Prometheus) goes with it.
            kill_group(group);
        }
        let _ = tokio::fs::remove_dir_all(&self.dir).await;
    }
}

/// The figures the scenario reads from a Prometheus's own exposition; each must be there.
fn own_figures(text: &str, format: Format, at: Instant) -> Result<Own, PrometheusError> {
    let mut sums = [0.0f64; 5];
    let mut seen = [false; 5];
    const NAMES: [&str; 5] = [
        "prometheus_tsdb_head_series",
        "prometheus_tsdb_head_samples_appended_total",
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
        "go_memstats_heap_inuse_bytes",
    ];
    for sample in exposition::samples_of(text, format) {
        let sample = sample.map_err(PrometheusError::OwnMetricsSyntax)?;
        if let Some(i) = NAMES.iter().position(|n| *n == sample.name) {
            // Newer releases split samples appended by type (float, histogram): the total is their sum.
            sums[i] += sample.value;
            seen[i] = true;
        }
    }
    if let Some(i) = seen.iter().position(|s| !s) {
        return Err(PrometheusError::MissingFigure(NAMES[i]));
    }
    Ok(Own {
        at,
        head_series: sums[0],
        samples_appended: sums[1],
        rss_bytes: sums[2],
        cpu_seconds: sums[3],
        heap_inuse_bytes: sums[4],
    })
}

/// Every Prometheus folder in the temporary directory starts with it, then the agent's process id.
const FOLDER_PREFIX: &str = "loadgrade-prometheus-";

/// Removes the folders of Prometheus runs whose agent process is gone (it was killed before it could).
fn remove_orphaned_folders() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(FOLDER_PREFIX)) else {
            continue;
        };
        let Some((pid, _)) = rest.split_once('-') else {
            continue;
        };
        let ours = entry.metadata().is_ok_and(|m| {
            std::os::unix::fs::MetadataExt::uid(&m) == rustix::process::getuid().as_raw()
        });
        if ours
            && pid.parse::<u32>().is_ok()
            && !std::path::Path::new("/proc").join(pid).exists()
            && entry.path().join("prometheus.yml").is_file()
        {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// util-linux's `setpriv`, where the system keeps it.
fn setpriv() -> Option<PathBuf> {
    ["/usr/bin/setpriv", "/bin/setpriv"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

/// A free loopback port (bound and released: Prometheus binds it next).
fn free_port() -> std::io::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
    listener.local_addr()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_figures_sum_typed_series_and_name_what_is_missing() {
        let text = "prometheus_tsdb_head_series 517\n\
                    prometheus_tsdb_head_samples_appended_total{type=\"float\"} 1000\n\
                    prometheus_tsdb_head_samples_appended_total{type=\"histogram\"} 2\n\
                    process_resident_memory_bytes 8.4e+07\n\
                    process_cpu_seconds_total 1.5\n\
                    go_memstats_heap_inuse_bytes 2e7\n";
        let own = own_figures(text, Format::Text, Instant::now()).expect("figures");
        assert_eq!(own.samples_appended, 1002.0);
        assert_eq!(own.head_series, 517.0);
        let e = own_figures(
            "process_cpu_seconds_total 1\n",
            Format::Text,
            Instant::now(),
        )
        .expect_err("missing");
        assert_eq!(
            e.to_string(),
            "Prometheus's own /metrics has no prometheus_tsdb_head_series: is it Prometheus 2.x or later?"
        );
    }

    #[test]
    fn durations_are_whole_milliseconds() {
        assert_eq!(prom_duration(Duration::from_millis(1500)), "1500ms");
        assert_eq!(prom_duration(Duration::from_secs(15)), "15000ms");
    }
}
