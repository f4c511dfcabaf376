//! One session with the coordinator: dial out, hello/welcome, heartbeats (which refresh the clock offset), and shard
//! assignments run until the stream ends. Shards still running when the session ends are stopped, and so are they
//! when nothing at all is heard from the coordinator for the run's `orphan_timeout` (a link cut silently ends no
//! stream): load never outlives its coordinator. Interval reports go through the [`Spool`] and are sent again by
//! the next session until acknowledged. Wire messages are converted at the stream's two ends; everything between
//! speaks domain types.

use crate::AgentConfig;
use crate::executor::Refusal;
use crate::spool::Spool;
use loadgrade_common::clock::unix_ms;
use loadgrade_common::protocol::{
    ClockEstimate, FromAgent, Heartbeat, Hello, ProbeOutcome, ProbeReply, ProbeRequest, ToAgent,
};
use loadgrade_common::shard::PartId;
use loadgrade_proto::v1;
use loadgrade_proto::v1::agent_service_client::AgentServiceClient;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_stream::StreamExt as _;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::transport::Endpoint;

mod error;
mod shard;
pub mod tls_check;

pub use error::SessionError;
use shard::{ShardContext, refuse, run_shard};

/// Furthest ahead of now a shard's start may be: the coordinator starts shards a second after assigning them.
const MAX_START_AHEAD_MS: i64 = 60_000;
/// With no load running, how long a silent coordinator is waited for before dialing again.
const IDLE_SILENCE: Duration = Duration::from_secs(30);

/// Per-run state on this agent.
struct RunState {
    seq: Arc<AtomicU64>,
    stops: Vec<CancellationToken>,
    /// Shards of the run still running.
    active: Arc<AtomicUsize>,
    /// Silence from the coordinator after which the run's load stops.
    orphan_timeout: Duration,
}

impl RunState {
    fn new(orphan_timeout: Duration) -> Self {
        RunState {
            seq: Arc::default(),
            stops: Vec::new(),
            active: Arc::default(),
            orphan_timeout,
        }
    }
}

/// The agent's latest clock estimate, shared by the heartbeat task and the assignment handler.
type Clock = Arc<Mutex<ClockEstimate>>;

fn read_clock(clock: &Clock) -> ClockEstimate {
    *clock.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Runs one session to its end. `Ok` when the coordinator closed the stream or `shutdown` fired.
pub async fn run_once(
    config: &AgentConfig,
    epoch: u64,
    spool: &Arc<Spool>,
    shutdown: &CancellationToken,
) -> Result<(), SessionError> {
    let mut endpoint = Endpoint::from_shared(config.coordinator.clone())
        .map_err(|source| SessionError::Url {
            url: config.coordinator.clone(),
            source,
        })?
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true);
    if let Some(tls) = &config.tls {
        endpoint =
            endpoint
                .tls_config(tls.client_config())
                .map_err(|source| SessionError::Url {
                    url: config.coordinator.clone(),
                    source,
                })?;
    }
    let channel = endpoint
        .connect()
        .await
        .map_err(|source| SessionError::Connect {
            url: config.coordinator.clone(),
            source,
        })?;
    // An assignment carries at most a plan (1 MiB); an interval at most two 1 MiB histograms.
    let mut client = AgentServiceClient::new(channel)
        .max_decoding_message_size(8 << 20)
        .max_encoding_message_size(8 << 20);
    let (tx, rx) = mpsc::channel::<FromAgent>(1024);
    let hello_sent_ms = unix_ms();
    tx.send(FromAgent::Hello(Hello {
        name: config.name.clone(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        cores: config.cores,
        epoch,
        protocol: loadgrade_proto::PROTOCOL_VERSION,
        probe_only: config.probe_only,
        labels: config.labels.clone(),
    }))
    .await
    .map_err(|_| SessionError::ClosedBeforeHello)?;
    let outbound = ReceiverStream::new(rx).map(v1::AgentMessage::from);
    let mut inbound = client
        .session(outbound)
        .await
        .map_err(SessionError::Refused)?
        .into_inner();

    let welcome = match inbound
        .message()
        .await
        .map_err(SessionError::BrokenBeforeWelcome)?
    {
        None => return Err(SessionError::NoWelcome),
        Some(m) => match ToAgent::try_from(m) {
            Ok(ToAgent::Welcome(w)) => w,
            _ => return Err(SessionError::NotWelcome),
        },
    };
    // Welcome was stamped somewhere between our hello and its arrival: the midpoint (error <= RTT / 2). Heartbeat
    // round trips refresh it.
    let clock: Clock = Arc::new(Mutex::new(ClockEstimate::from_round_trip(
        hello_sent_ms,
        welcome.server_time_unix_ms,
        unix_ms(),
    )));
    // The opening exchange includes the stream's setup, so this first estimate can be off by up to half its round
    // trip: it is said with that bound, and the heartbeats' round trips refine it.
    let first = read_clock(&clock);
    tracing::info!(
        coordinator = %config.coordinator, name = %config.name,
        "session open; clock offset {:.1} ms ± {:.1} ms (first estimate, from the opening exchange; heartbeats \
         refine it)",
        first.offset_ms, first.rtt_ms / 2.0
    );
    let heartbeat = spawn_heartbeat(
        tx.clone(),
        clock.clone(),
        Duration::from_millis(u64::from(welcome.heartbeat_interval_ms.max(100))),
    );
    let feeder = spawn_feeder(tx.clone(), spool);

    let mut runs: HashMap<String, RunState> = HashMap::new();
    // Preflights run one at a time (see ToAgent::Preflight below).
    let preflights = std::sync::Arc::new(tokio::sync::Semaphore::new(1));
    let mut last_heard = tokio::time::Instant::now();
    let result = loop {
        let silence_limit = runs
            .values()
            .filter(|r| r.active.load(Ordering::Relaxed) > 0)
            .map(|r| r.orphan_timeout)
            .min()
            .unwrap_or(IDLE_SILENCE);
        let next = tokio::select! {
            () = shutdown.cancelled() => break Ok(()),
            () = tokio::time::sleep_until(last_heard + silence_limit) => {
                tracing::error!(
                    "no word from the coordinator for {silence_limit:?}: stopping this agent's load (orphan_timeout)"
                );
                break Err(SessionError::Silent(silence_limit));
            }
            next = inbound.message() => next,
        };
        last_heard = tokio::time::Instant::now();
        let wire = match next {
            Err(status) => break Err(SessionError::Broken(status)),
            Ok(None) => break Ok(()),
            Ok(Some(wire)) => wire,
        };
        // An assignment that does not convert is still refused by name, so the run learns why.
        let assign_ids = match &wire.kind {
            Some(v1::coordinator_message::Kind::Assign(a)) => Some((
                a.run_id.clone(),
                PartId {
                    scenario: a.scenario.clone(),
                    stage: a.stage,
                },
            )),
            _ => None,
        };
        let message = match ToAgent::try_from(wire) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!("coordinator message does not convert: {e}");
                if let Some((run_id, part)) = assign_ids {
                    refuse(&tx, run_id, part, &Refusal::Wire(e)).await;
                }
                continue;
            }
        };
        match message {
            ToAgent::Probe(request) => {
                let _ = tx.send(FromAgent::ProbeReply(answer_probe(&request))).await;
            }
            ToAgent::Preflight(request) => {
                // Probes take up to their timeouts: off the session's loop, so heartbeats and acks go on. One
                // preflight at a time on this agent: checks asked in parallel queue here, so they cannot add up
                // to load on a target.
                let (tx, config, one_at_a_time) = (tx.clone(), config.clone(), preflights.clone());
                tokio::spawn(async move {
                    let Ok(_turn) = one_at_a_time.acquire().await else {
                        return;
                    };
                    let rows = crate::preflight::check(request.items, &config).await;
                    let _ = tx
                        .send(FromAgent::PreflightReply(
                            loadgrade_common::protocol::PreflightReply {
                                request_id: request.request_id,
                                rows,
                            },
                        ))
                        .await;
                });
            }
            ToAgent::Assign(assignment) => {
                let run = runs
                    .entry(assignment.run_id.clone())
                    .or_insert_with(|| RunState::new(assignment.orphan_timeout));
                run.orphan_timeout = assignment.orphan_timeout;
                let stop = CancellationToken::new();
                run.stops.push(stop.clone());
                run.active.fetch_add(1, Ordering::Relaxed);
                let ctx = ShardContext {
                    config: config.clone(),
                    epoch,
                    clock_offset_ms: read_clock(&clock).offset_ms.round() as i64,
                    seq: run.seq.clone(),
                    active: run.active.clone(),
                    tx: tx.clone(),
                    spool: spool.clone(),
                    stop,
                };
                tokio::spawn(run_shard(ctx, *assignment));
            }
            ToAgent::Stop { run_id, reason } => {
                tracing::info!(run = %run_id, %reason, "stop");
                // Keep the run's sequence numbers: a later part of the same run continues them.
                if let Some(run) = runs.get_mut(&run_id) {
                    run.stops.drain(..).for_each(|t| t.cancel());
                }
            }
            ToAgent::HeartbeatAck(ack) => {
                let estimate = ClockEstimate::from_round_trip(
                    ack.agent_sent_at_unix_ms,
                    ack.server_time_unix_ms,
                    unix_ms(),
                );
                *clock.lock().unwrap_or_else(PoisonError::into_inner) = estimate;
            }
            ToAgent::Ack { run_id, epoch, seq } => spool.acked(&run_id, epoch, seq),
            ToAgent::Welcome(_) => {}
        }
    };
    for run in runs.values() {
        run.stops.iter().for_each(CancellationToken::cancel);
    }
    heartbeat.abort();
    feeder.abort();
    result
}

/// Sends the spool's unacknowledged reports, then each new one, on this session.
fn spawn_feeder(tx: mpsc::Sender<FromAgent>, spool: &Spool) -> tokio::task::JoinHandle<()> {
    let (backlog, mut fresh) = spool.subscribe();
    tokio::spawn(async move {
        if !backlog.is_empty() {
            tracing::info!(
                reports = backlog.len(),
                "sending unacknowledged interval reports again"
            );
        }
        for report in backlog {
            if tx
                .send(FromAgent::Interval(Box::new(report)))
                .await
                .is_err()
            {
                return;
            }
        }
        while let Some(message) = fresh.recv().await {
            if tx.send(message).await.is_err() {
                return;
            }
        }
    })
}

fn spawn_heartbeat(
    tx: mpsc::Sender<FromAgent>,
    clock: Clock,
    every: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            let beat = Heartbeat {
                sent_at_unix_ms: unix_ms(),
                clock: Some(read_clock(&clock)),
            };
            if tx.send(FromAgent::Heartbeat(beat)).await.is_err() {
                break;
            }
        }
    })
}

/// Reads the requested target on this host.
fn answer_probe(request: &ProbeRequest) -> ProbeReply {
    ProbeReply {
        request_id: request.request_id,
        outcome: match crate::probe::read(&request.target) {
            Ok(reading) => ProbeOutcome::Reading(reading),
            Err(e) => ProbeOutcome::Failed(e.to_string()),
        },
    }
}
