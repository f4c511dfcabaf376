//! One session with the coordinator: dial out, hello/welcome, heartbeats, and shard assignments run until the
//! stream ends. Shards still running when the session ends are stopped: load never outlives its coordinator.

use crate::AgentConfig;
use crate::http::{self, HttpShardSpec};
use crate::recorder::ShardId;
use anyhow::{Context, bail};
use loadgrade_proto::v1::agent_message::Kind as Out;
use loadgrade_proto::v1::agent_service_client::AgentServiceClient;
use loadgrade_proto::v1::assign_shard::Work;
use loadgrade_proto::v1::coordinator_message::Kind as In;
use loadgrade_proto::v1::{
    AgentMessage, AssignShard, Heartbeat, Hello, ProbeReply, ProbeRequest, ShardDone, ShardRefused,
};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::transport::Endpoint;

/// Wall clock, Unix epoch milliseconds.
pub fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn message(kind: Out) -> AgentMessage {
    AgentMessage { kind: Some(kind) }
}

/// Per-run state on this agent.
#[derive(Default)]
struct RunState {
    seq: Arc<AtomicU64>,
    stops: Vec<CancellationToken>,
}

/// Runs one session to its end. `Ok` when the coordinator closed the stream or `shutdown` fired.
pub async fn run_once(
    config: &AgentConfig,
    epoch: u64,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    let channel = Endpoint::from_shared(config.coordinator.clone())
        .with_context(|| format!("invalid coordinator URL {:?}", config.coordinator))?
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true)
        .connect()
        .await
        .with_context(|| format!("cannot reach coordinator {}", config.coordinator))?;
    let mut client = AgentServiceClient::new(channel);
    let (tx, rx) = mpsc::channel::<AgentMessage>(1024);
    let hello_sent_ms = unix_ms();
    tx.send(message(Out::Hello(Hello {
        name: config.name.clone(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        cores: config.cores,
        epoch,
        protocol: loadgrade_proto::PROTOCOL_VERSION,
        probe_only: config.probe_only,
    })))
    .await
    .context("session closed before hello")?;
    let mut inbound = client
        .session(ReceiverStream::new(rx))
        .await
        .context("coordinator refused the session")?
        .into_inner();

    let welcome = match inbound
        .message()
        .await
        .context("no welcome from coordinator")?
    {
        Some(m) => match m.kind {
            Some(In::Welcome(w)) => w,
            other => bail!("expected welcome, got {other:?}"),
        },
        None => bail!("coordinator closed the session before welcome"),
    };
    // Welcome was stamped somewhere between our hello and its arrival: take the midpoint (error <= RTT / 2).
    let clock_offset_ms = (hello_sent_ms + unix_ms()) / 2 - welcome.server_time_unix_ms;
    tracing::info!(coordinator = %config.coordinator, name = %config.name, clock_offset_ms, "session open");

    let heartbeat = {
        let tx = tx.clone();
        let every = Duration::from_millis(u64::from(welcome.heartbeat_interval_ms.max(100)));
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                if tx
                    .send(message(Out::Heartbeat(Heartbeat {
                        sent_at_unix_ms: unix_ms(),
                    })))
                    .await
                    .is_err()
                {
                    break;
                }
            }
        })
    };

    let mut runs: HashMap<String, RunState> = HashMap::new();
    let result = loop {
        tokio::select! {
            () = shutdown.cancelled() => break Ok(()),
            next = inbound.message() => match next {
                Err(status) => break Err(anyhow::anyhow!("session broken: {status}")),
                Ok(None) => break Ok(()),
                Ok(Some(m)) => match m.kind {
                    Some(In::Assign(assign)) if config.probe_only => {
                        let refused = ShardRefused {
                            run_id: assign.run_id,
                            scenario: assign.scenario,
                            stage: assign.stage,
                            reason: "this is a probe agent (--probe-only): it runs no load".to_owned(),
                        };
                        let _ = tx.send(message(Out::ShardRefused(refused))).await;
                    }
                    Some(In::Probe(request)) => {
                        let _ = tx.send(message(Out::ProbeReply(answer_probe(&request)))).await;
                    }
                    Some(In::Assign(assign)) => {
                        let run = runs.entry(assign.run_id.clone()).or_default();
                        let stop = CancellationToken::new();
                        run.stops.push(stop.clone());
                        let ctx = ShardContext {
                            config: config.clone(),
                            epoch,
                            clock_offset_ms,
                            seq: run.seq.clone(),
                            tx: tx.clone(),
                            stop,
                        };
                        tokio::spawn(run_shard(ctx, assign));
                    }
                    Some(In::Stop(stop)) => {
                        tracing::info!(run = %stop.run_id, reason = %stop.reason, "stop");
                        // Keep the run's sequence numbers: a later part of the same run continues them.
                        if let Some(run) = runs.get_mut(&stop.run_id) {
                            run.stops.drain(..).for_each(|t| t.cancel());
                        }
                    }
                    Some(In::Ack(_)) | Some(In::Welcome(_)) | None => {}
                },
            },
        }
    };
    for run in runs.values() {
        run.stops.iter().for_each(CancellationToken::cancel);
    }
    heartbeat.abort();
    result
}

/// Reads the requested target on this host.
fn answer_probe(request: &ProbeRequest) -> ProbeReply {
    use loadgrade_common::local_probe::{LocalTarget, read};
    use loadgrade_proto::v1::probe_request::Target;
    let target = match &request.target {
        Some(Target::Pid(pid)) => LocalTarget::Pid(*pid),
        Some(Target::ProcessName(name)) => LocalTarget::Name(name.clone()),
        Some(Target::Cgroup(path)) => LocalTarget::Cgroup(path.clone()),
        None => {
            return ProbeReply {
                request_id: request.request_id,
                error: "no target in the request".into(),
                ..Default::default()
            };
        }
    };
    match read(&target) {
        Ok((memory_bytes, cpu)) => ProbeReply {
            request_id: request.request_id,
            memory_bytes,
            cpu_seconds: cpu.unwrap_or(0.0),
            has_cpu: cpu.is_some(),
            error: String::new(),
        },
        Err(error) => ProbeReply {
            request_id: request.request_id,
            error,
            ..Default::default()
        },
    }
}

struct ShardContext {
    config: AgentConfig,
    epoch: u64,
    clock_offset_ms: i64,
    seq: Arc<AtomicU64>,
    tx: mpsc::Sender<AgentMessage>,
    stop: CancellationToken,
}

async fn run_shard(ctx: ShardContext, assign: AssignShard) {
    let refuse = |reason: String| {
        message(Out::ShardRefused(ShardRefused {
            run_id: assign.run_id.clone(),
            scenario: assign.scenario.clone(),
            stage: assign.stage,
            reason,
        }))
    };
    let spec = match &assign.work {
        Some(Work::Http(shard)) => {
            HttpShardSpec::from_proto(shard, &ctx.config.allowlist, ctx.config.cores).await
        }
        None => Err("assignment carries no work this agent knows".to_owned()),
    };
    let spec = match spec {
        Ok(spec) => Arc::new(spec),
        Err(reason) => {
            tracing::warn!(run = %assign.run_id, scenario = %assign.scenario, %reason, "shard refused");
            let _ = ctx.tx.send(refuse(reason)).await;
            return;
        }
    };
    let local_start_ms = assign.start_at_unix_ms + ctx.clock_offset_ms;
    let delay_ms = u64::try_from(local_start_ms - unix_ms()).unwrap_or(0);
    let start = tokio::time::Instant::now() + Duration::from_millis(delay_ms);
    tracing::info!(run = %assign.run_id, scenario = %assign.scenario, url = %spec.target.url, delay_ms, "shard accepted");

    let shard_id = ShardId {
        run_id: assign.run_id.clone(),
        agent: ctx.config.name.clone(),
        epoch: ctx.epoch,
        scenario: assign.scenario.clone(),
        stage: assign.stage,
    };
    let (reports, mut report_rx) = mpsc::channel(64);
    let forward = {
        let tx = ctx.tx.clone();
        tokio::spawn(async move {
            while let Some(report) = report_rx.recv().await {
                if tx.send(message(Out::Interval(report))).await.is_err() {
                    break;
                }
            }
        })
    };
    let output = http::ShardOutput {
        shard: shard_id,
        seq: ctx.seq.clone(),
        start_unix_ms: assign.start_at_unix_ms,
        reports,
    };
    let result = http::run(spec, start, output, ctx.stop.clone()).await;
    let _ = forward.await;
    let (intervals, error) = match result {
        Ok(n) if ctx.stop.is_cancelled() => (n, "stopped".to_owned()),
        Ok(n) => (n, String::new()),
        Err(e) => (0, e),
    };
    let _ = ctx
        .tx
        .send(message(Out::ShardDone(ShardDone {
            run_id: assign.run_id.clone(),
            scenario: assign.scenario.clone(),
            stage: assign.stage,
            intervals,
            error,
        })))
        .await;
}
