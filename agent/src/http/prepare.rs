//! An HTTP shard checked before any request: its target built and resolved, inside the allowlist, within the
//! plan's bounds and this agent's caps, its connections within the open-file limit; and how its load is split over
//! the load threads.

use super::{HttpTarget, MIN_OPEN_POOL, TargetError, ThreadShare, TlsError, transport};
use crate::allowlist::OutsideAllowlist;
use crate::file_budget::{FileBudget, SPARE_FILES};
use crate::shard_io::HttpShardSpec;
use crate::{Allowlist, Caps};
use loadgrade_common::plan::LoadModel;
use loadgrade_common::shard::HttpShard;
use loadgrade_common::shares::split_by_weight;

/// Why an HTTP shard is refused before any request is sent.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error(transparent)]
    Allowlist(#[from] OutsideAllowlist),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("cannot read the open-file limit: {0}")]
    FileLimit(std::io::Error),
    #[error(
        "this agent's open-file limit is {soft}, but the shard needs {connections} connections plus {open_now} files \
         already open and {SPARE_FILES} spare ({needed}); raise it (ulimit -n, or LimitNOFILE= in the systemd unit) \
         or spread the load over more agents"
    )]
    OpenFiles {
        soft: u64,
        connections: u64,
        open_now: u64,
        needed: u64,
    },
    #[error("a shard needs a duration or a request budget to end by itself")]
    Endless,
    #[error("an open-model shard needs a connection cap and a backlog of at least 1")]
    NoOpenCapacity,
    #[error("the shard asks for {asked} {what}; no plan may ask for more than {max}")]
    OverPlanBound {
        what: &'static str,
        asked: u64,
        max: u64,
    },
    #[error("the shard asks for {asked} {what}; this agent allows at most {cap} (--max-{flag})")]
    OverCap {
        what: &'static str,
        flag: &'static str,
        asked: u64,
        cap: u64,
    },
}

impl HttpShardSpec {
    /// Resolves the shard's target, checks it against the allowlist and the agent's caps, and checks this agent can
    /// hold its connections.
    pub async fn prepare(
        shard: HttpShard,
        allowlist: &Allowlist,
        caps: &Caps,
        cores: u32,
    ) -> Result<Self, Refusal> {
        let target = HttpTarget::resolve(&shard.request).await?;
        let allowed = allowlist.resolve().await;
        allowed.check(&target.addrs)?;
        let version = if shard.request.http2 {
            transport::Version::Http2
        } else {
            transport::Version::Http1
        };
        let transport = transport::Transport::new(
            target.https,
            &target.host,
            version,
            shard.request.ca_file.as_deref(),
            shard.request.max_response_header_bytes,
        )?;
        let open_model = shard.model == LoadModel::Open;
        if shard.profile.profile.length.is_none() && shard.max_requests.is_none() {
            return Err(Refusal::Endless);
        }
        let (connections, work) = if open_model {
            if shard.connections == 0 || shard.max_backlog == 0 {
                return Err(Refusal::NoOpenCapacity);
            }
            (shard.connections, shard.connections)
        } else {
            let agent_share = ThreadShare {
                shard: shard.profile.clone(),
                thread_weights: vec![1],
                thread_index: 0,
            };
            let most = agent_share.max();
            (most, most)
        };
        check_caps(&shard, connections, caps)?;
        check_open_files(connections)?;
        let most_threads = if open_model {
            (work / MIN_OPEN_POOL).max(1)
        } else {
            work.max(1)
        };
        let threads = usize::try_from(u64::from(cores.max(1)).min(most_threads)).unwrap_or(1);
        let thread_weights = if open_model {
            split_by_weight(connections, &vec![1; threads])
        } else {
            vec![1; threads]
        };
        Ok(HttpShardSpec {
            target,
            transport,
            model: shard.model,
            arrivals: shard.arrivals,
            profile: shard.profile,
            connections,
            warmup: shard.warmup,
            max_backlog: shard.max_backlog,
            timeout: shard.request.timeout,
            max_requests: shard.max_requests,
            threads,
            thread_weights,
            idempotent: shard.request.idempotent,
            allowed,
            max_duration: caps.max_duration,
            cache: None,
            #[cfg(feature = "fault-injection")]
            block: None,
        })
    }

    pub(super) fn thread_share(&self, thread_index: usize) -> ThreadShare {
        ThreadShare {
            shard: self.profile.clone(),
            thread_weights: self.thread_weights.clone(),
            thread_index,
        }
    }
}

/// Refuses a shard beyond the agent's caps: its rate at its peak, its connections, its planned length.
fn check_caps(shard: &HttpShard, connections: u64, caps: &Caps) -> Result<(), Refusal> {
    use loadgrade_common::plan::http::{MAX_BACKLOG, MAX_CONNECTIONS, MAX_RATE};
    // The plan's own bounds, again: a shard comes from the wire, whatever validated it.
    for (what, asked, max) in [
        (
            "arrivals/s across agents",
            shard.profile.profile.max_total(),
            MAX_RATE,
        ),
        ("connections", connections, MAX_CONNECTIONS),
        ("waiting arrivals", shard.max_backlog, MAX_BACKLOG),
    ] {
        let applies = shard.model == LoadModel::Open || what == "connections";
        if applies && asked > max {
            return Err(Refusal::OverPlanBound { what, asked, max });
        }
    }
    let over = |what, flag, asked: u64, cap: Option<u64>| match cap {
        Some(cap) if asked > cap => Err(Refusal::OverCap {
            what,
            flag,
            asked,
            cap,
        }),
        _ => Ok(()),
    };
    if shard.model == LoadModel::Open {
        let peak = ThreadShare {
            shard: shard.profile.clone(),
            thread_weights: vec![1],
            thread_index: 0,
        }
        .max();
        over("arrivals/s", "rate", peak, caps.max_rate)?;
    }
    over(
        "connections",
        "connections",
        connections,
        caps.max_connections,
    )?;
    if let (Some(length), Some(cap)) = (shard.profile.profile.length, caps.max_duration) {
        let planned = length.saturating_add(shard.warmup);
        over(
            "seconds",
            "duration",
            planned.as_secs(),
            Some(cap.as_secs()),
        )?;
    }
    Ok(())
}

/// Refuses a shard whose connections would not fit under this process's open-file limit.
fn check_open_files(connections: u64) -> Result<(), Refusal> {
    let budget = FileBudget::measure(connections).map_err(Refusal::FileLimit)?;
    if budget.exceeded() {
        return Err(Refusal::OpenFiles {
            soft: budget.soft,
            connections,
            open_now: budget.open_now,
            needed: budget.needed,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use loadgrade_common::plan::{Arrivals, HttpRequest};
    use loadgrade_common::profile::Profile;
    use loadgrade_common::shard::ShardProfile;
    use std::time::Duration;

    fn open_shard(rate: u64, backlog: u64) -> HttpShard {
        HttpShard {
            request: HttpRequest {
                url: "http://127.0.0.1:9/".into(),
                method: "GET".into(),
                headers: Vec::new(),
                body: Vec::new(),
                http2: false,
                ca_file: None,
                timeout: Duration::from_secs(1),
                idempotent: true,
                max_response_header_bytes: 1 << 16,
            },
            model: LoadModel::Open,
            arrivals: Arrivals::Even,
            profile: ShardProfile {
                profile: Profile::constant(rate, Some(Duration::from_secs(1))),
                weights: vec![1].into(),
                index: 0,
            },
            connections: 4,
            warmup: Duration::ZERO,
            max_backlog: backlog,
            max_requests: None,
        }
    }

    /// Regression (issue 20): `rate = 1000000000000` reached an agent, which made 344M arrivals in 23 s, sent
    /// nothing and grew to 857 MB. A shard beyond a plan's bounds is refused even from the wire.
    #[tokio::test]
    async fn shards_beyond_what_a_plan_may_ask_are_refused() {
        let allow = Allowlist::loopback();
        for (shard, says) in [
            (
                open_shard(1_000_000_000_000, 10),
                "arrivals/s across agents",
            ),
            (open_shard(10, 1 << 30), "waiting arrivals"),
        ] {
            let e = HttpShardSpec::prepare(shard, &allow, &Caps::default(), 1)
                .await
                .expect_err("refused");
            assert!(matches!(e, Refusal::OverPlanBound { .. }), "{e}");
            assert!(e.to_string().contains(says), "{e}");
        }
        assert!(
            HttpShardSpec::prepare(open_shard(10, 10), &allow, &Caps::default(), 1)
                .await
                .is_ok()
        );
    }

    #[test]
    fn too_many_connections_for_the_open_file_limit_are_refused() {
        let (soft, _) = rlimit::getrlimit(rlimit::Resource::NOFILE).expect("limit");
        let e = check_open_files(soft).expect_err("cannot fit");
        assert!(e.to_string().contains("open-file limit"), "{e}");
        assert!(check_open_files(1).is_ok());
    }
}
