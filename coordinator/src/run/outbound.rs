//! Where the coordinator itself may connect for a plan: a ramp's or a scrape's Prometheus probe (its HTTP API) and a
//! cache scenario's Redis (INFO, and the run's keys cleared). Like an agent, the coordinator keeps an allowlist of
//! its own, loopback by default and widened by `serve --allow`; a plan that names a target outside it is a plan
//! error that names the flag, before any run starts, and every connection is made to an address checked just
//! before it (a name that resolves elsewhere later gains nothing).

use loadgrade_agent::Allowlist;
use loadgrade_agent::allowlist::InvalidNetwork;
use loadgrade_common::plan::{CacheTarget, Plan, ProbeSpec, ScenarioSpec};
use std::net::SocketAddr;

/// The coordinator's own allowlist.
#[derive(Debug, Clone)]
pub struct Outbound {
    allow: Allowlist,
}

impl Default for Outbound {
    fn default() -> Self {
        Outbound {
            allow: Allowlist::loopback(),
        }
    }
}

/// Why the coordinator may not reach a target.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutboundError {
    #[error(
        "the coordinator itself would connect to {what} at {host}:{port}, which is outside what it may reach \
         ({allowed}); start `loadgrade serve` with --allow {host} (a network, an address or a host name) to let it"
    )]
    Outside {
        what: &'static str,
        host: String,
        port: u16,
        allowed: String,
    },
    #[error("{what} {host}:{port} does not resolve: {why}")]
    Unresolved {
        what: &'static str,
        host: String,
        port: u16,
        why: String,
    },
}

/// A plan's target the coordinator may not reach, and the scenario that names it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("scenario {scenario:?}: {source}")]
pub struct PlanTargetError {
    pub scenario: String,
    pub source: OutboundError,
}

/// One place a plan makes the coordinator connect to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub scenario: String,
    pub what: &'static str,
    pub host: String,
    pub port: u16,
}

impl Outbound {
    /// Loopback and what `--allow` adds (CIDRs, addresses, host names).
    pub fn new(allow: &[String]) -> Result<Self, InvalidNetwork> {
        Ok(Outbound {
            allow: Allowlist::new(true, allow)?,
        })
    }

    /// Checks every place `plan` would make the coordinator connect to.
    pub async fn check_plan(&self, plan: &Plan) -> Result<(), PlanTargetError> {
        for target in targets(plan) {
            self.resolve(target.what, &target.host, target.port)
                .await
                .map_err(|source| PlanTargetError {
                    scenario: target.scenario.clone(),
                    source,
                })?;
        }
        Ok(())
    }

    /// The addresses of `host:port` (`what` names it in errors), every one of them inside the allowlist: connect
    /// to these, not to the name.
    pub async fn resolve(
        &self,
        what: &'static str,
        host: &str,
        port: u16,
    ) -> Result<Vec<SocketAddr>, OutboundError> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let unresolved = |why: String| OutboundError::Unresolved {
            what,
            host: host.to_owned(),
            port,
            why,
        };
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((bare, port))
            .await
            .map_err(|e| unresolved(e.to_string()))?
            .collect();
        match self.allow.resolve().await.check(&addrs) {
            Ok(()) if !addrs.is_empty() => Ok(addrs),
            Ok(()) => Err(unresolved("no address".to_owned())),
            Err(outside) => Err(OutboundError::Outside {
                what,
                host: host.to_owned(),
                port,
                allowed: outside.allowed,
            }),
        }
    }
}

/// Where `plan` makes the coordinator connect: Prometheus probes (ramp, scrape) and a cache scenario's Redis.
pub fn targets(plan: &Plan) -> Vec<Target> {
    let mut out = Vec::new();
    for scenario in &plan.scenarios {
        let probe = match &scenario.spec {
            ScenarioSpec::Ramp(r) => r.probe.as_ref(),
            ScenarioSpec::Scrape(s) => s.probe.as_ref(),
            _ => None,
        };
        if let Some(ProbeSpec::Prometheus { url, .. }) = probe
            && let Some((host, port)) = http_host_port(url)
        {
            out.push(Target {
                scenario: scenario.name.clone(),
                what: "the Prometheus probe",
                host,
                port,
            });
        }
        if let ScenarioSpec::Cache(c) = &scenario.spec
            && let CacheTarget::Redis(redis) = &c.target
            && let Some((host, port)) = redis_host_port(&redis.url)
        {
            out.push(Target {
                scenario: scenario.name.clone(),
                what: "the cache's Redis",
                host,
                port,
            });
        }
    }
    out
}

/// Host and port of an `http://` URL (the plan checked its form), port 80 when it names none.
pub fn http_host_port(url: &str) -> Option<(String, u16)> {
    let parsed = loadgrade_common::plan::target_url::TargetUrl::parse(url).ok()?;
    Some((parsed.host, parsed.port))
}

/// Host and port of a `redis://` or `rediss://` URL, 6379 when it names none; `None` for a Unix socket.
fn redis_host_port(url: &str) -> Option<(String, u16)> {
    let parsed = url::Url::parse(url).ok()?;
    let host = parsed.host_str()?.to_owned();
    Some((host, parsed.port().unwrap_or(6379)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(text: &str) -> Plan {
        Plan::parse("p.toml", text).expect("valid plan")
    }

    const PROBED: &str = r#"
name = "p"
[[scenario]]
name = "steps"
kind = "ramp"
url = "http://127.0.0.1:8080/"
start = 1
stop = 2
hold = "1s"
probe = { kind = "prometheus", url = "http://HOST:9090", query = "process_resident_memory_bytes" }
"#;

    /// Regression (issue 20): a ramp's Prometheus probe sent requests to any URL a plan named, twice a second.
    #[tokio::test]
    async fn probes_off_loopback_are_refused_naming_the_flag() {
        let outbound = Outbound::default();
        let far = plan(&PROBED.replace("HOST", "10.255.0.1"));
        let e = outbound.check_plan(&far).await.expect_err("refused");
        let text = e.to_string();
        assert!(text.contains("--allow 10.255.0.1"), "{text}");
        assert!(text.contains("scenario \"steps\""), "{text}");
        assert!(
            outbound
                .check_plan(&plan(&PROBED.replace("HOST", "127.0.0.1")))
                .await
                .is_ok()
        );
        let widened = Outbound::new(&["10.255.0.0/16".to_owned()]).expect("valid");
        assert!(widened.check_plan(&far).await.is_ok());
        assert_eq!(
            targets(&far),
            vec![Target {
                scenario: "steps".into(),
                what: "the Prometheus probe",
                host: "10.255.0.1".into(),
                port: 9090
            }]
        );
    }

    #[tokio::test]
    async fn a_cache_redis_off_loopback_is_refused() {
        let text = r#"
name = "c"
[[scenario]]
name = "cache"
kind = "cache"
mode = "redis"
redis = "redis://10.255.0.2:6380/0"
origin = "http://127.0.0.1:8080/item?id={key}"
key_space = 10
requests = 10
"#;
        let e = Outbound::default()
            .check_plan(&plan(text))
            .await
            .expect_err("refused");
        assert!(e.to_string().contains("10.255.0.2:6380"), "{e}");
    }
}
