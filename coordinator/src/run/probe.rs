//! Target probes: real measurements of the system under test, sampled during every ramp step.
//!
//! - `process`: RSS (`VmRSS`) and CPU (utime + stime) from `/proc` on the coordinator's host, by PID or by name;
//!   by name, every process with that `comm` is summed (a server's master and workers are one service).
//! - `cgroup`: `memory.current` (and `memory.peak` where the kernel has it) and `cpu.stat` `usage_usec` of a
//!   cgroup v2 directory (absolute, or relative to /sys/fs/cgroup).
//! - `prometheus`: the first value of an instant query against a Prometheus HTTP API (http:// only), as bytes.
//! - `agent`: a `loadgrade-agent --probe-only` on the target host reads a process or cgroup there and answers over
//!   its session.

use crate::run::outbound::Outbound;
use crate::server::registry::{AgentProbeError, Registry};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use loadgrade_agent::probe as local_probe;
use loadgrade_common::plan::{LocalTarget, ProbeSpec};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Time between samples (the issue asks for at least one a second).
pub const PROBE_PERIOD: Duration = Duration::from_millis(500);
const HTTP_TIMEOUT: Duration = Duration::from_secs(2);

/// One reading of the target.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub memory_bytes: u64,
    /// Cumulative CPU seconds, where the probe has them.
    pub cpu_seconds: Option<f64>,
    pub at: tokio::time::Instant,
}

/// How long a probe agent has to answer.
pub const AGENT_PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Why a sample could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error(transparent)]
    Local(#[from] local_probe::ProbeError),
    #[error(transparent)]
    Agent(#[from] AgentProbeError),
    #[error("process probe without pid or name")]
    NoProcess,
    #[error(transparent)]
    Prometheus(#[from] PrometheusError),
}

/// Why a Prometheus instant query gave no byte count.
#[derive(Debug, thiserror::Error)]
pub enum PrometheusError {
    #[error(transparent)]
    Outside(#[from] crate::run::outbound::OutboundError),
    #[error("prometheus probe url {0:?}: only http:// is supported")]
    Url(String),
    #[error("prometheus at {authority}: {source}")]
    Connect {
        authority: String,
        source: std::io::Error,
    },
    #[error("prometheus at {authority}: {source}")]
    Http {
        authority: String,
        source: hyper::Error,
    },
    #[error("prometheus request: {0}")]
    Request(hyper::http::Error),
    #[error("prometheus at {authority} did not answer within {HTTP_TIMEOUT:?}")]
    Timeout { authority: String },
    #[error("prometheus answered {status}: {body}")]
    Status {
        status: hyper::StatusCode,
        body: String,
    },
    #[error("prometheus response is not JSON: {0}")]
    NotJson(serde_json::Error),
    #[error("prometheus query {0:?} returned no sample")]
    NoSample(String),
    #[error("prometheus query {query:?} returned {value}, not a byte count")]
    NotBytes { query: String, value: f64 },
    #[error("prometheus value {0:?} is not a number")]
    NotNumber(String),
    #[error("prometheus's answer could not be read: {0}")]
    Body(String),
}

/// Reads the target once. `registry` reaches probe agents; a Prometheus is reached where `outbound` allows.
pub async fn sample(
    spec: &ProbeSpec,
    registry: &Registry,
    outbound: &Outbound,
) -> Result<Sample, ProbeError> {
    let at = tokio::time::Instant::now();
    let local = |target: LocalTarget| {
        let reading = local_probe::read(&target)?;
        Ok(Sample {
            memory_bytes: reading.memory_bytes,
            cpu_seconds: reading.cpu_seconds,
            at,
        })
    };
    match spec {
        ProbeSpec::Process { pid: Some(pid), .. } => local(LocalTarget::Pid(*pid)),
        ProbeSpec::Process {
            name: Some(name), ..
        } => local(LocalTarget::Name(name.clone())),
        ProbeSpec::Process { .. } => Err(ProbeError::NoProcess),
        ProbeSpec::Cgroup { path } => local(LocalTarget::Cgroup(path.clone())),
        ProbeSpec::Prometheus { url, query } => {
            let value = prometheus(url, query, outbound).await?;
            Ok(Sample {
                memory_bytes: value as u64,
                cpu_seconds: None,
                at,
            })
        }
        ProbeSpec::Agent { agent, target } => {
            let reading = registry.probe(agent, target, AGENT_PROBE_TIMEOUT).await?;
            Ok(Sample {
                memory_bytes: reading.memory_bytes,
                cpu_seconds: reading.cpu_seconds,
                at,
            })
        }
    }
}

/// Percent-encodes a query string value.
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn prometheus(base: &str, query: &str, outbound: &Outbound) -> Result<f64, PrometheusError> {
    // The plan's one URL parser: the Host header and the prefix are what it read, never the raw text.
    let parsed = loadgrade_common::plan::target_url::TargetUrl::parse(base)
        .ok()
        .filter(|u| !u.https)
        .ok_or_else(|| PrometheusError::Url(base.to_owned()))?;
    let authority = parsed.authority.clone();
    let prefix = parsed
        .path_and_query
        .split(['?', '#'])
        .next()
        .unwrap_or("/")
        .trim_matches('/');
    let path = format!(
        "/{}api/v1/query?query={}",
        if prefix.is_empty() {
            String::new()
        } else {
            format!("{prefix}/")
        },
        encode(query)
    );
    let http = |source| PrometheusError::Http {
        authority: authority.clone(),
        source,
    };
    let fetch = async {
        // Connected to an address the coordinator's allowlist admitted just now, never to the name itself.
        let (host, port) = crate::run::outbound::http_host_port(base)
            .ok_or_else(|| PrometheusError::Url(base.to_owned()))?;
        let addrs = outbound
            .resolve("the Prometheus probe", &host, port)
            .await?;
        let stream =
            TcpStream::connect(&addrs[..])
                .await
                .map_err(|source| PrometheusError::Connect {
                    authority: authority.clone(),
                    source,
                })?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(http)?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let request = hyper::Request::get(&path)
            .header(hyper::header::HOST, &authority)
            .body(Empty::<Bytes>::new())
            .map_err(PrometheusError::Request)?;
        let response = sender.send_request(request).await.map_err(http)?;
        let status = response.status();
        // An instant query's answer is small; anything past 1 MiB is not one.
        let body = http_body_util::Limited::new(response.into_body(), 1 << 20)
            .collect()
            .await
            .map_err(|e| PrometheusError::Body(e.to_string()))?
            .to_bytes();
        if !status.is_success() {
            // Only a Prometheus API error's own message is shown: a plan can point a probe anywhere, and
            // whatever else answered stays out of the report.
            let said = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|j| j.get("error").and_then(|e| e.as_str()).map(str::to_owned))
                .map_or_else(
                    || "(not a Prometheus API error; body not shown)".to_owned(),
                    |e| e.chars().take(200).collect(),
                );
            return Err(PrometheusError::Status { status, body: said });
        }
        Ok(body)
    };
    let body = tokio::time::timeout(HTTP_TIMEOUT, fetch)
        .await
        .map_err(|_| PrometheusError::Timeout {
            authority: authority.clone(),
        })??;
    let json: serde_json::Value =
        serde_json::from_slice(&body).map_err(PrometheusError::NotJson)?;
    let value = json
        .pointer("/data/result/0/value/1")
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| PrometheusError::NoSample(query.to_owned()))?;
    match value.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        Ok(v) => Err(PrometheusError::NotBytes {
            query: query.to_owned(),
            value: v,
        }),
        Err(_) => Err(PrometheusError::NotNumber(value.chars().take(40).collect())),
    }
}

/// What a step's sampling found.
#[derive(Debug, Clone, Default)]
pub struct StepProbe {
    pub samples: Vec<Sample>,
    /// The first failure, when any sample failed.
    pub error: Option<String>,
}

impl StepProbe {
    pub fn memory_max(&self) -> Option<u64> {
        self.samples.iter().map(|s| s.memory_bytes).max()
    }

    pub fn memory_mean(&self) -> Option<u64> {
        (!self.samples.is_empty()).then(|| {
            self.samples.iter().map(|s| s.memory_bytes).sum::<u64>() / self.samples.len() as u64
        })
    }

    /// CPU between the first and last sample, percent of one core.
    pub fn cpu_percent(&self) -> Option<f64> {
        let with_cpu: Vec<&Sample> = self
            .samples
            .iter()
            .filter(|s| s.cpu_seconds.is_some())
            .collect();
        let (first, last) = (with_cpu.first()?, with_cpu.last()?);
        let wall = last.at.duration_since(first.at).as_secs_f64();
        let used = last.cpu_seconds? - first.cpu_seconds?;
        (wall > 0.0).then(|| 100.0 * used / wall)
    }
}

/// Samples `spec` every [`PROBE_PERIOD`] until `finish`.
pub struct Sampler {
    stop: CancellationToken,
    task: JoinHandle<StepProbe>,
}

impl Sampler {
    pub fn start(spec: ProbeSpec, registry: Arc<Registry>, outbound: Arc<Outbound>) -> Self {
        let stop = CancellationToken::new();
        let token = stop.clone();
        let task = tokio::spawn(async move {
            let mut found = StepProbe::default();
            loop {
                match sample(&spec, &registry, &outbound).await {
                    Ok(s) => found.samples.push(s),
                    Err(e) => {
                        found.error.get_or_insert(e.to_string());
                    }
                }
                tokio::select! {
                    () = tokio::time::sleep(PROBE_PERIOD) => {}
                    () = token.cancelled() => break,
                }
            }
            found
        });
        Sampler { stop, task }
    }

    pub async fn finish(self) -> StepProbe {
        self.stop.cancel();
        self.task.await.unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_process_probe_reads_this_process() {
        let registry = Registry::default();
        let spec = ProbeSpec::Process {
            pid: Some(std::process::id()),
            name: None,
        };
        let s = sample(&spec, &registry, &Outbound::default())
            .await
            .expect("sample");
        assert!(s.memory_bytes > 1 << 20, "{s:?}");
        assert!(s.cpu_seconds.is_some());
    }

    #[tokio::test]
    async fn missing_targets_are_errors_with_reasons() {
        let registry = Registry::default();
        let cases = [
            (
                ProbeSpec::Process {
                    pid: Some(u32::MAX - 1),
                    name: None,
                },
                "no such process",
            ),
            (
                ProbeSpec::Process {
                    pid: None,
                    name: Some("no-such-loadgrade-process".into()),
                },
                "no process named",
            ),
            (
                ProbeSpec::Cgroup {
                    path: "/nonexistent/loadgrade".into(),
                },
                "memory.current",
            ),
            // Port 9 on loopback: nothing listens.
            (
                ProbeSpec::Prometheus {
                    url: "http://127.0.0.1:9".into(),
                    query: "up".into(),
                },
                "prometheus at 127.0.0.1:9",
            ),
            (
                ProbeSpec::Agent {
                    agent: "nobody".into(),
                    target: LocalTarget::Pid(1),
                },
                "no probe agent named \"nobody\"",
            ),
        ];
        for (spec, expected) in cases {
            let e = sample(&spec, &registry, &Outbound::default())
                .await
                .expect_err("cannot be measured")
                .to_string();
            assert!(e.contains(expected), "{spec:?}: {e}");
        }
    }

    #[test]
    fn queries_are_percent_encoded() {
        assert_eq!(encode("sum(rate(x[1m]))"), "sum%28rate%28x%5B1m%5D%29%29");
    }
}
