//! Target probes: real measurements of the system under test, sampled during every ramp step.
//!
//! - `process`: RSS (`VmRSS`) and CPU (utime + stime) from `/proc` on the coordinator's host, by PID or by name;
//!   by name, every process with that `comm` is summed (a server's master and workers are one service).
//! - `cgroup`: `memory.current` (and `memory.peak` where the kernel has it) and `cpu.stat` `usage_usec` of a
//!   cgroup v2 directory (absolute, or relative to /sys/fs/cgroup).
//! - `prometheus`: the first value of an instant query against a Prometheus HTTP API (http:// only), as bytes.
//! - `agent`: a `loadgrade-agent --probe-only` on the target host reads a process or cgroup there and answers over
//!   its session.

use crate::registry::Registry;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use loadgrade_common::local_probe::{self, LocalTarget};
use loadgrade_common::plan::ProbeSpec;
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

/// Reads the target once. `registry` reaches probe agents.
pub async fn sample(spec: &ProbeSpec, registry: &Registry) -> Result<Sample, String> {
    let at = tokio::time::Instant::now();
    let local = |target: LocalTarget| {
        local_probe::read(&target).map(|(memory_bytes, cpu_seconds)| Sample {
            memory_bytes,
            cpu_seconds,
            at,
        })
    };
    match spec {
        ProbeSpec::Process { pid: Some(pid), .. } => local(LocalTarget::Pid(*pid)),
        ProbeSpec::Process {
            name: Some(name), ..
        } => local(LocalTarget::Name(name.clone())),
        ProbeSpec::Process { .. } => Err("process probe without pid or name".into()),
        ProbeSpec::Cgroup { path } => local(LocalTarget::Cgroup(path.clone())),
        ProbeSpec::Prometheus { url, query } => prometheus(url, query).await.map(|v| Sample {
            memory_bytes: v.max(0.0) as u64,
            cpu_seconds: None,
            at,
        }),
        ProbeSpec::Agent { agent, target } => {
            let reply = registry.probe(agent, target, AGENT_PROBE_TIMEOUT).await?;
            if !reply.error.is_empty() {
                return Err(format!("probe agent {agent:?}: {}", reply.error));
            }
            Ok(Sample {
                memory_bytes: reply.memory_bytes,
                cpu_seconds: reply.has_cpu.then_some(reply.cpu_seconds),
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

async fn prometheus(base: &str, query: &str) -> Result<f64, String> {
    let rest = base
        .strip_prefix("http://")
        .ok_or_else(|| format!("prometheus probe url {base:?}: only http:// is supported"))?;
    let (authority, prefix) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
    let authority = if authority.contains(':') {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    let authority = authority.as_str();
    let path = format!(
        "/{}api/v1/query?query={}",
        if prefix.is_empty() {
            String::new()
        } else {
            format!("{}/", prefix.trim_end_matches('/'))
        },
        encode(query)
    );
    let fetch = async {
        let stream = TcpStream::connect(authority)
            .await
            .map_err(|e| format!("prometheus at {authority}: {e}"))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("prometheus at {authority}: {e}"))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let request = hyper::Request::get(&path)
            .header(hyper::header::HOST, authority)
            .body(Empty::<Bytes>::new())
            .map_err(|e| format!("prometheus request: {e}"))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("prometheus at {authority}: {e}"))?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("prometheus response: {e}"))?
            .to_bytes();
        if !status.is_success() {
            return Err(format!(
                "prometheus answered {status}: {}",
                String::from_utf8_lossy(&body)
            ));
        }
        Ok(body)
    };
    let body = tokio::time::timeout(HTTP_TIMEOUT, fetch)
        .await
        .map_err(|_| {
            format!("prometheus at {authority} did not answer within {HTTP_TIMEOUT:?}")
        })??;
    let json: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| format!("prometheus response is not JSON: {e}"))?;
    let value = json
        .pointer("/data/result/0/value/1")
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| format!("prometheus query {query:?} returned no sample"))?;
    match value.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        Ok(v) => Err(format!(
            "prometheus query {query:?} returned {v}, not a byte count"
        )),
        Err(e) => Err(format!("prometheus value {value:?} is not a number: {e}")),
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
    pub fn start(spec: ProbeSpec, registry: Arc<Registry>) -> Self {
        let stop = CancellationToken::new();
        let token = stop.clone();
        let task = tokio::spawn(async move {
            let mut found = StepProbe::default();
            loop {
                match sample(&spec, &registry).await {
                    Ok(s) => found.samples.push(s),
                    Err(e) => {
                        found.error.get_or_insert(e);
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
        let s = sample(&spec, &registry).await.expect("sample");
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
            let e = sample(&spec, &registry)
                .await
                .expect_err("cannot be measured");
            assert!(e.contains(expected), "{spec:?}: {e}");
        }
    }

    #[test]
    fn queries_are_percent_encoded() {
        assert_eq!(encode("sum(rate(x[1m]))"), "sum%28rate%28x%5B1m%5D%29%29");
    }
}
