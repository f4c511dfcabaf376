//! A real Prometheus for one interval: found (the plan's `prometheus`, on PATH or an absolute path to a file named
//! `prometheus`), checked by its `--version`, started with a generated config (one job: the relay, at the
//! interval), a fresh TSDB in a temporary folder and a free loopback port; its own /metrics read; stopped (TERM,
//! then KILL) and its folder removed, also when the shard ends early.

use super::exposition::{self, Format};
use super::fetch::Fetcher;
use std::net::SocketAddr;
use std::os::unix::fs::DirBuilderExt as _;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use tokio::process::{Child, Command};
use tokio::time::Instant;

/// How long Prometheus gets to say it is ready.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);
const VERSION_TIMEOUT: Duration = Duration::from_secs(10);
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// A Prometheus binary that said it is one.
#[derive(Debug, Clone)]
pub struct Binary {
    pub path: PathBuf,
    /// The first line of its `--version`.
    pub version: String,
}

/// Finds and checks the binary the plan names; the error says why the Prometheus side is not measured.
pub async fn locate(name: &str) -> Result<Binary, String> {
    if let Some(problem) = loadgrade_common::plan::scrape::prometheus_problem(name) {
        return Err(problem);
    }
    let path = if name.starts_with('/') {
        PathBuf::from(name)
    } else {
        std::env::var_os("PATH")
            .iter()
            .flat_map(std::env::split_paths)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
            .ok_or_else(|| format!("no {name} binary on this agent's PATH"))?
    };
    if !path.is_file() {
        return Err(format!("{} is not a file on this agent", path.display()));
    }
    let output = tokio::time::timeout(
        VERSION_TIMEOUT,
        Command::new(&path)
            .arg("--version")
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .map_err(|_| format!("{} --version did not answer", path.display()))?
    .map_err(|e| format!("{} cannot be run: {e}", path.display()))?;
    // Prometheus prints its version on stdout (older releases on stderr).
    let text = [output.stdout, output.stderr]
        .concat()
        .into_iter()
        .map(char::from)
        .collect::<String>();
    let first = text.lines().next().unwrap_or_default().trim().to_owned();
    if !first.starts_with("prometheus, version ") {
        return Err(format!(
            "{} --version does not say it is Prometheus",
            path.display()
        ));
    }
    Ok(Binary {
        path,
        version: first.chars().take(120).collect(),
    })
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
        interval: Duration,
        timeout: Duration,
    ) -> Result<Prometheus, String> {
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
            .map_err(|e| format!("cannot create {}: {e}", data.display()))?;
        let mut prometheus = Prometheus {
            child: None,
            dir: dir.clone(),
            web: free_port().map_err(|e| format!("no free loopback port for Prometheus: {e}"))?,
        };
        let config = format!(
            "# Written by loadgrade for one scrape interval; removed when the interval ends.\n\
             global:\n  scrape_interval: {interval}\n  scrape_timeout: {timeout}\n  evaluation_interval: 1m\n\
             scrape_configs:\n  - job_name: loadgrade\n    metrics_path: {path}\n    static_configs:\n      \
             - targets: ['{relay}']\n",
            interval = prom_duration(interval),
            timeout = prom_duration(timeout.min(interval)),
        );
        let config_file = dir.join("prometheus.yml");
        std::fs::write(&config_file, config)
            .map_err(|e| format!("cannot write {}: {e}", config_file.display()))?;
        let log = std::fs::File::create(dir.join("prometheus.log"))
            .map_err(|e| format!("cannot create the log file: {e}"))?;
        let log_err = log
            .try_clone()
            .map_err(|e| format!("cannot open the log file: {e}"))?;
        // Where util-linux's setpriv is, Prometheus dies with this agent even if it is killed outright.
        let mut command = match which("setpriv") {
            Some(setpriv) => {
                let mut c = Command::new(setpriv);
                c.args(["--pdeathsig", "KILL", "--"]).arg(&binary.path);
                c
            }
            None => Command::new(&binary.path),
        };
        let child = command
            .arg(format!("--config.file={}", config_file.display()))
            .arg(format!("--storage.tsdb.path={}", data.display()))
            .arg(format!("--web.listen-address={}", prometheus.web))
            .arg("--log.level=warn")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("{} did not start: {e}", binary.path.display()))?;
        prometheus.child = Some(child);
        prometheus.wait_ready().await?;
        Ok(prometheus)
    }

    /// Polls `/-/ready` until it answers 200, Prometheus exits, or [`START_TIMEOUT`].
    async fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + START_TIMEOUT;
        let mut fetcher = Fetcher::new(&format!("http://{}/-/ready", self.web), self.web);
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                return Err(format!(
                    "Prometheus exited at start ({status}): {}",
                    self.log_tail()
                ));
            }
            if let Ok(r) = fetcher.fetch(Duration::from_secs(1)).await
                && r.status == 200
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Err(format!(
            "Prometheus was not ready within {START_TIMEOUT:?}: {}",
            self.log_tail()
        ))
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

    /// Reads its own /metrics.
    pub async fn read(&self) -> Result<Own, String> {
        let mut fetcher = Fetcher::new(&format!("http://{}/metrics", self.web), self.web);
        let response = fetcher
            .fetch(READ_TIMEOUT)
            .await
            .map_err(|e| format!("reading Prometheus's own /metrics: {e}"))?;
        let at = Instant::now();
        let format = Format::of_content_type(&response.content_type).unwrap_or(Format::Text);
        let text = std::str::from_utf8(&response.body)
            .map_err(|_| "Prometheus's own /metrics is not UTF-8".to_owned())?;
        own_figures(text, format, at)
    }

    /// Stops it (TERM, then KILL after a wait) and removes its folder.
    pub async fn stop(mut self) {
        if let Some(mut child) = self.child.take() {
            if let Some(pid) = child
                .id()
                .and_then(|id| rustix::process::Pid::from_raw(i32::try_from(id).ok()?))
            {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
            }
            if tokio::time::timeout(STOP_TIMEOUT, child.wait())
                .await
                .is_err()
            {
                let _ = child.kill().await;
            }
        }
        let _ = tokio::fs::remove_dir_all(&self.dir).await;
    }
}

/// The figures the scenario reads from a Prometheus's own exposition; each must be there.
fn own_figures(text: &str, format: Format, at: Instant) -> Result<Own, String> {
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
        let sample = sample.map_err(|e| format!("Prometheus's own /metrics: {e}"))?;
        if let Some(i) = NAMES.iter().position(|n| *n == sample.name) {
            // Newer releases split samples appended by type (float, histogram): the total is their sum.
            sums[i] += sample.value;
            seen[i] = true;
        }
    }
    if let Some(i) = seen.iter().position(|s| !s) {
        return Err(format!(
            "Prometheus's own /metrics has no {}: is it Prometheus 2.x or later?",
            NAMES[i]
        ));
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

/// A program on PATH.
fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(name))
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
        assert!(e.contains("prometheus_tsdb_head_series"), "{e}");
    }

    #[test]
    fn durations_are_whole_milliseconds() {
        assert_eq!(prom_duration(Duration::from_millis(1500)), "1500ms");
        assert_eq!(prom_duration(Duration::from_secs(15)), "15000ms");
    }
}
