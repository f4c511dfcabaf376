//! Simulated agents, for loading the coordinator and nothing else (issue 14, "Coordinator scale"): N gRPC sessions
//! that each behave as a real agent on the wire (hello with a unique name, heartbeats that refresh the clock
//! estimate, the shard they are assigned accepted, one interval report a second with real HDR histograms, the
//! acknowledgements handled, then `ShardDone`), built from the agent's own library (`Recorder`, `IntervalCutter`,
//! the protocol's domain types and their wire conversions) rather than copied.
//!
//! They send no load. The figures they report are SIMULATED: latencies drawn from a log-normal distribution and
//! recorded into the agent's real recorder, so the coordinator decodes, checks, stores and merges histograms of the
//! real shape and size. Such figures must never be read as measured: the plan this module writes says so in its
//! name, its scenario and its target (`http://simulated.invalid/...`, a name that never resolves, RFC 6761), the
//! agents register as version `<version>-simulated` with names `sim-NNNNN`, and the run goes to a throwaway store.
//!
//! Shared by `examples/scale_agents` (the benchmark's harness, its own process) and `tests/scale.rs`.

#![allow(dead_code)]

use hdrhistogram::Histogram;
use loadgrade_agent::cpu::LoadThreads;
use loadgrade_agent::recorder::{IntervalCutter, Outcome, Recorder, ShardId};
use loadgrade_common::clock::unix_ms;
use loadgrade_common::interval::IntervalReport;
use loadgrade_common::plan::LoadModel;
use loadgrade_common::preflight::CheckRow;
use loadgrade_common::protocol::{
    ClockEstimate, FromAgent, Heartbeat, PreflightReply, ShardDone, ShardOutcome, ShardRefused,
    ToAgent,
};
use loadgrade_common::run::{RunEvent, RunState};
use loadgrade_common::shard::{Assignment, PartId, Work};
use loadgrade_proto::v1;
use loadgrade_proto::v1::agent_service_client::AgentServiceClient;
use loadgrade_proto::v1::run_service_client::RunServiceClient;
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};
use tokio_stream::StreamExt as _;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::transport::Endpoint;

/// Where simulated figures point: a host under `.invalid`, which never resolves, so no agent could load it.
pub const SIMULATED_URL: &str = "http://simulated.invalid/coordinator-benchmark-no-load-sent";
/// The scenario's name in the plan and in the throwaway report.
pub const SCENARIO: &str = "simulated-figures-not-measured";

/// The simulated latency distribution and volume of one agent.
#[derive(Debug, Clone)]
pub struct Load {
    /// Mean responses a second per agent (each interval draws within ±20 % of it). Default: 1,000.
    pub rate: u64,
    /// Median latency, milliseconds. Default: 3.
    pub median_ms: f64,
    /// Log-normal sigma (spread) of latency. Default: 0.6 (p99 about 4x the median).
    pub sigma: f64,
    /// Share of responses that are 503s. Default: 0.001.
    pub error_share: f64,
    /// Connections per agent in the plan (the closed model's). Default: 4.
    pub connections: u64,
    /// Distinct interval templates recorded at start (each a real recording of `rate` draws); agents cycle through
    /// them, so the harness spends its CPU on the wire, not on recording. Default: 256.
    pub distinct: usize,
    pub seed: u64,
}

impl Default for Load {
    fn default() -> Self {
        Load {
            rate: 1_000,
            median_ms: 3.0,
            sigma: 0.6,
            error_share: 0.001,
            connections: 4,
            distinct: 256,
            seed: 14,
        }
    }
}

/// The plan a run of `agents` simulated agents for `seconds` is started with: every connected simulated agent
/// (`min_agents`), a closed model of `connections` per agent against [`SIMULATED_URL`].
pub fn plan(agents: usize, seconds: u64, load: &Load) -> String {
    format!(
        "# Coordinator benchmark with SIMULATED agents: no load is sent and no figure of this run is measured.\n\
         name = \"coordinator-benchmark-simulated-agents\"\n\
         min_agents = {agents}\n\
         ready_timeout = \"120s\"\n\
         orphan_timeout = \"10s\"\n\
         # Simulated agents check nothing: each says so as a preflight warning, which must not stop the run.\n\
         preflight = \"warn\"\n\
         [[scenario]]\n\
         name = \"{SCENARIO}\"\n\
         kind = \"http\"\n\
         url = \"{SIMULATED_URL}\"\n\
         model = \"closed\"\n\
         connections = {connections}\n\
         duration = \"{seconds}s\"\n",
        connections = load.connections.max(1) * agents as u64,
    )
}

// === templates ===

/// Interval reports recorded once through the agent's own recorder and cutter; each simulated second takes one and
/// stamps its identity, time and sequence number on it.
pub struct Templates {
    /// A shard's first second: its connections' connect times too.
    first: Vec<IntervalReport>,
    steady: Vec<IntervalReport>,
    /// The closed model's wind-down after the window: the requests in flight completing, a few milliseconds.
    last: Vec<IntervalReport>,
}

/// One draw of a log-normal latency (Box-Muller), microseconds, at least 1.
fn lognormal_us(rng: &mut StdRng, median_ms: f64, sigma: f64) -> u64 {
    let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.random();
    let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
    let us = median_ms * 1000.0 * (sigma * z).exp();
    (us.round() as u64).clamp(1, 60_000_000)
}

impl Templates {
    pub fn record(load: &Load) -> Templates {
        let mut rng = StdRng::seed_from_u64(load.seed);
        let recorder = Recorder::new(false);
        let identity = ShardId {
            run_id: String::new(),
            agent: String::new(),
            epoch: 0,
            part: PartId::default(),
        };
        let t0 = Instant::now();
        let mut cutter = IntervalCutter::new(
            vec![recorder.clone()],
            identity,
            Arc::default(),
            t0,
            0,
            LoadThreads::default(),
        );
        let mut at = t0;
        let mut cut = |recorder: &Recorder,
                       rng: &mut StdRng,
                       responses: u64,
                       connects: u64,
                       lasts: Duration,
                       after_window: bool| {
            for _ in 0..responses {
                let latency = Duration::from_micros(lognormal_us(rng, load.median_ms, load.sigma));
                let status = if rng.random::<f64>() < load.error_share {
                    503
                } else {
                    200
                };
                recorder.request(Outcome::Status(status), latency, latency, 612);
            }
            for _ in 0..connects {
                recorder.connected(Duration::from_micros(lognormal_us(rng, 0.12, 0.4)));
            }
            // The load threads' lag probe: a 5 ms timer, most firings tens of microseconds late.
            let probes = (lasts.as_millis() / 5).max(1) as u64;
            for _ in 0..probes {
                let late = Duration::from_micros(lognormal_us(rng, 0.04, 0.8));
                recorder.lag(late, Duration::from_millis(5));
            }
            at += lasts;
            cutter.cut(at, false, after_window)
        };
        let second = Duration::from_secs(1);
        let jittered = |rng: &mut StdRng| {
            let spread = load.rate / 5;
            load.rate - spread + rng.random_range(0..=2 * spread)
        };
        let n = load.distinct.max(1);
        let first = (0..n.div_ceil(8))
            .map(|_| {
                let r = jittered(&mut rng);
                cut(&recorder, &mut rng, r, load.connections, second, false)
            })
            .collect();
        let steady = (0..n)
            .map(|_| {
                let r = jittered(&mut rng);
                cut(&recorder, &mut rng, r, 0, second, false)
            })
            .collect();
        let wind_down = Duration::from_micros(lognormal_us(&mut rng, load.median_ms, 0.0) * 2);
        let last = (0..n.div_ceil(8))
            .map(|_| cut(&recorder, &mut rng, load.connections, 0, wind_down, true))
            .collect();
        Templates {
            first,
            steady,
            last,
        }
    }
}

// === stats ===

/// What the simulated agents did, shared by all of them.
pub struct Stats {
    pub connected: AtomicU64,
    pub connect_failures: AtomicU64,
    /// Sessions that ended before the harness stopped them.
    pub sessions_broken: AtomicU64,
    pub shards: AtomicU64,
    pub shards_done: AtomicU64,
    pub refused: AtomicU64,
    pub intervals_sent: AtomicU64,
    pub intervals_acked: AtomicU64,
    /// Requests in the measured intervals sent (what the report's `requests` must come to).
    pub requests_sent: AtomicU64,
    pub heartbeats: AtomicU64,
    pub heartbeat_acks: AtomicU64,
    /// From an interval's send to its acknowledgement (checked, stored, acknowledged; merged right after), µs.
    pub ack_latency_us: Mutex<Histogram<u64>>,
    /// (when, requests sent so far) at each interval sent: when WatchRun's count reached a figure.
    pub timeline: Mutex<Vec<(Instant, u64)>>,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            connected: AtomicU64::new(0),
            connect_failures: AtomicU64::new(0),
            sessions_broken: AtomicU64::new(0),
            shards: AtomicU64::new(0),
            shards_done: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            intervals_sent: AtomicU64::new(0),
            intervals_acked: AtomicU64::new(0),
            requests_sent: AtomicU64::new(0),
            heartbeats: AtomicU64::new(0),
            heartbeat_acks: AtomicU64::new(0),
            ack_latency_us: Mutex::new(
                Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid bounds"),
            ),
            timeline: Mutex::new(Vec::new()),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Stats {
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// p50, p99 and max of the send-to-acknowledgement latency, milliseconds.
    pub fn ack_latency_ms(&self) -> Option<(f64, f64, f64)> {
        let h = lock(&self.ack_latency_us);
        (!h.is_empty()).then(|| {
            let ms = |v: u64| v as f64 / 1000.0;
            (
                ms(h.value_at_quantile(0.5)),
                ms(h.value_at_quantile(0.99)),
                ms(h.max()),
            )
        })
    }
}

// === fleet ===

/// The simulated agents, connected.
pub struct Fleet {
    pub stats: Arc<Stats>,
    shutdown: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("coordinator URL: {0}")]
    Url(tonic::transport::Error),
    #[error("connect: {0}")]
    Connect(tonic::transport::Error),
    #[error("session refused: {0}")]
    Refused(tonic::Status),
    #[error("no welcome")]
    NoWelcome,
    #[error("only {connected} of {wanted} simulated agents connected within {within:?}")]
    TooFew {
        connected: u64,
        wanted: usize,
        within: Duration,
    },
    #[error("run service: {0}")]
    Rpc(#[from] tonic::Status),
    #[error("run service: {0}")]
    Dial(#[from] tonic::transport::Error),
}

impl Fleet {
    /// Connects `agents` simulated agents named `{prefix}-00001`.. to `coordinator`, at most `parallel` dialing at
    /// once, and waits up to `within` for every one to be welcomed.
    pub async fn connect(
        coordinator: &str,
        agents: usize,
        prefix: &str,
        load: &Load,
        parallel: usize,
        within: Duration,
    ) -> Result<Fleet, SimError> {
        let templates = Arc::new(Templates::record(load));
        let stats = Arc::new(Stats::default());
        let shutdown = CancellationToken::new();
        let gate = Arc::new(tokio::sync::Semaphore::new(parallel.max(1)));
        let mut tasks = Vec::with_capacity(agents);
        for i in 1..=agents {
            let agent = SimAgent {
                coordinator: coordinator.to_owned(),
                name: format!("{prefix}-{i:05}"),
                index: i,
                templates: templates.clone(),
                stats: stats.clone(),
                shutdown: shutdown.clone(),
            };
            let gate = gate.clone();
            tasks.push(tokio::spawn(async move {
                let permit = gate.acquire_owned().await.ok();
                agent.session(permit).await;
            }));
        }
        let deadline = Instant::now() + within;
        while Stats::get(&stats.connected) < agents as u64 {
            if Instant::now() > deadline {
                shutdown.cancel();
                return Err(SimError::TooFew {
                    connected: Stats::get(&stats.connected),
                    wanted: agents,
                    within,
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(Fleet {
            stats,
            shutdown,
            tasks,
        })
    }

    /// Ends every session and waits for the agents' tasks.
    pub async fn stop(self) {
        self.shutdown.cancel();
        for task in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
    }
}

/// One simulated agent.
struct SimAgent {
    coordinator: String,
    name: String,
    index: usize,
    templates: Arc<Templates>,
    stats: Arc<Stats>,
    shutdown: CancellationToken,
}

/// Sequence numbers of intervals sent and not yet acknowledged, with when they were sent.
type Pending = Arc<Mutex<HashMap<(String, u64), Instant>>>;

impl SimAgent {
    async fn session(self, permit: Option<tokio::sync::OwnedSemaphorePermit>) {
        let stats = self.stats.clone();
        let shutdown = self.shutdown.clone();
        match self.open(permit).await {
            Ok(()) => {}
            Err(e) => {
                stats.connect_failures.fetch_add(1, Ordering::Relaxed);
                if !shutdown.is_cancelled() {
                    eprintln!("simulated agent: {e}");
                }
            }
        }
    }

    async fn open(self, permit: Option<tokio::sync::OwnedSemaphorePermit>) -> Result<(), SimError> {
        // As the real agent dials (agent/src/session.rs).
        let channel = Endpoint::from_shared(self.coordinator.clone())
            .map_err(SimError::Url)?
            .connect_timeout(Duration::from_secs(5))
            .tcp_nodelay(true)
            .connect()
            .await
            .map_err(SimError::Connect)?;
        let mut client = AgentServiceClient::new(channel)
            .max_decoding_message_size(8 << 20)
            .max_encoding_message_size(8 << 20);
        let (tx, rx) = mpsc::channel::<v1::AgentMessage>(1024);
        let hello_sent_ms = unix_ms();
        let epoch = rand::random::<u64>();
        let hello = v1::Hello {
            name: self.name.clone(),
            version: format!("{}-simulated", env!("CARGO_PKG_VERSION")),
            cores: 1,
            epoch,
            protocol: loadgrade_proto::PROTOCOL_VERSION,
            probe_only: false,
            ..Default::default()
        };
        let _ = tx
            .send(v1::AgentMessage {
                kind: Some(v1::agent_message::Kind::Hello(hello)),
            })
            .await;
        let mut inbound = client
            .session(ReceiverStream::new(rx))
            .await
            .map_err(SimError::Refused)?
            .into_inner();
        let welcome = match inbound.message().await.map_err(SimError::Refused)? {
            Some(m) => match ToAgent::try_from(m) {
                Ok(ToAgent::Welcome(w)) => w,
                _ => return Err(SimError::NoWelcome),
            },
            None => return Err(SimError::NoWelcome),
        };
        drop(permit);
        let clock = Arc::new(Mutex::new(ClockEstimate::from_round_trip(
            hello_sent_ms,
            welcome.server_time_unix_ms,
            unix_ms(),
        )));
        self.stats.connected.fetch_add(1, Ordering::Relaxed);
        let heartbeat = {
            let (tx, clock, stats) = (tx.clone(), clock.clone(), self.stats.clone());
            let every = Duration::from_millis(u64::from(welcome.heartbeat_interval_ms.max(100)));
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(every).await;
                    let beat = Heartbeat {
                        sent_at_unix_ms: unix_ms(),
                        clock: Some(*lock(&clock)),
                    };
                    stats.heartbeats.fetch_add(1, Ordering::Relaxed);
                    if tx.send(FromAgent::Heartbeat(beat).into()).await.is_err() {
                        break;
                    }
                }
            })
        };
        let pending: Pending = Arc::default();
        let mut stops: Vec<CancellationToken> = Vec::new();
        loop {
            let next = tokio::select! {
                () = self.shutdown.cancelled() => break,
                next = inbound.message() => next,
            };
            let wire = match next {
                Ok(Some(wire)) => wire,
                Ok(None) | Err(_) => {
                    if !self.shutdown.is_cancelled() {
                        self.stats.sessions_broken.fetch_add(1, Ordering::Relaxed);
                    }
                    break;
                }
            };
            let Ok(message) = ToAgent::try_from(wire) else {
                continue;
            };
            match message {
                ToAgent::HeartbeatAck(ack) => {
                    self.stats.heartbeat_acks.fetch_add(1, Ordering::Relaxed);
                    *lock(&clock) = ClockEstimate::from_round_trip(
                        ack.agent_sent_at_unix_ms,
                        ack.server_time_unix_ms,
                        unix_ms(),
                    );
                }
                ToAgent::Assign(assignment) => {
                    let stop = CancellationToken::new();
                    stops.push(stop.clone());
                    self.stats.shards.fetch_add(1, Ordering::Relaxed);
                    let shard = Shard {
                        name: self.name.clone(),
                        index: self.index,
                        epoch,
                        offset_ms: lock(&clock).offset_ms.round() as i64,
                        tx: tx.clone(),
                        templates: self.templates.clone(),
                        stats: self.stats.clone(),
                        pending: pending.clone(),
                        stop,
                    };
                    tokio::spawn(shard.run(*assignment));
                }
                ToAgent::Preflight(request) => {
                    // Nothing here can be checked: say so, as a warning per item (the plan lets warnings pass).
                    let rows = request
                        .items
                        .iter()
                        .map(|item| {
                            CheckRow::warn(
                                loadgrade_common::preflight::CheckKind::Accepted,
                                "a simulated agent (coordinator benchmark): nothing checked, no load is sent",
                                "never give a real plan to simulated agents",
                            )
                            .on_agent(&self.name)
                            .for_scenario(&item.part.scenario)
                        })
                        .collect();
                    let reply = PreflightReply {
                        request_id: request.request_id,
                        rows,
                    };
                    let _ = tx.send(FromAgent::PreflightReply(reply).into()).await;
                }
                ToAgent::Stop { .. } => stops.drain(..).for_each(|s| s.cancel()),
                ToAgent::Ack { run_id, seq, .. } => {
                    if let Some(sent) = lock(&pending).remove(&(run_id, seq)) {
                        let us = sent.elapsed().as_micros().max(1) as u64;
                        let _ = lock(&self.stats.ack_latency_us).record(us);
                        self.stats.intervals_acked.fetch_add(1, Ordering::Relaxed);
                    }
                }
                // A simulated agent is no probe agent: the coordinator asks it nothing else.
                _ => {}
            }
        }
        stops.iter().for_each(CancellationToken::cancel);
        heartbeat.abort();
        Ok(())
    }
}

/// One assigned shard, simulated.
struct Shard {
    name: String,
    index: usize,
    epoch: u64,
    offset_ms: i64,
    tx: mpsc::Sender<v1::AgentMessage>,
    templates: Arc<Templates>,
    stats: Arc<Stats>,
    pending: Pending,
    stop: CancellationToken,
}

impl Shard {
    async fn run(self, assignment: Assignment) {
        let Assignment {
            run_id,
            part,
            start_at_unix_ms,
            work,
            ..
        } = assignment;
        let shard = match work {
            Work::Http(shard) if shard.model == LoadModel::Closed => shard,
            _ => {
                self.stats.refused.fetch_add(1, Ordering::Relaxed);
                let refused = ShardRefused {
                    run_id,
                    part,
                    reason: "a simulated agent runs closed-model http shards only".to_owned(),
                };
                let _ = self.tx.send(FromAgent::ShardRefused(refused).into()).await;
                return;
            }
        };
        let Some(length) = shard.profile.profile.length else {
            self.stats.refused.fetch_add(1, Ordering::Relaxed);
            let refused = ShardRefused {
                run_id,
                part,
                reason: "a simulated agent needs a duration".to_owned(),
            };
            let _ = self.tx.send(FromAgent::ShardRefused(refused).into()).await;
            return;
        };
        // As the real agent starts: the coordinator's instant on this agent's clock.
        let local_start_ms = start_at_unix_ms.saturating_add(self.offset_ms);
        let delay = u64::try_from(local_start_ms.saturating_sub(unix_ms())).unwrap_or(0);
        let start = Instant::now() + Duration::from_millis(delay);
        let warmup_end = start + shard.warmup;
        let end = warmup_end + length;
        let mut seq = 0u64;
        let mut last = start;
        let mut stopped = false;
        let mut k = 0usize;
        while last < end {
            // Whole seconds from the start, cut at the end of warm-up and of the window, as the real agent cuts.
            let mut next = last + Duration::from_secs(1);
            if last < warmup_end {
                next = next.min(warmup_end);
            }
            let next = next.min(end);
            tokio::select! {
                () = sleep_until(next) => {}
                () = self.stop.cancelled() => { stopped = true; break; }
            }
            let template = if k == 0 {
                &self.templates.first[self.index % self.templates.first.len()]
            } else {
                let steady = &self.templates.steady;
                &steady[(self.index * 7 + k) % steady.len()]
            };
            let warmup = next <= warmup_end && warmup_end > start;
            self.send(
                template,
                &run_id,
                &part,
                start_at_unix_ms,
                start,
                last,
                next,
                warmup,
                false,
                &mut seq,
            )
            .await;
            last = next;
            k += 1;
        }
        if !stopped {
            // The closed model's wind-down: the requests in flight at the window's end complete after it.
            let template = &self.templates.last[self.index % self.templates.last.len()];
            let next = last + Duration::from_millis(u64::from(template.duration_ms));
            sleep_until(next).await;
            self.send(
                template,
                &run_id,
                &part,
                start_at_unix_ms,
                start,
                last,
                next,
                false,
                true,
                &mut seq,
            )
            .await;
        }
        let done = ShardDone {
            run_id,
            part,
            intervals: seq,
            outcome: if stopped {
                ShardOutcome::Stopped
            } else {
                ShardOutcome::Completed
            },
        };
        let _ = self.tx.send(FromAgent::ShardDone(done).into()).await;
        self.stats.shards_done.fetch_add(1, Ordering::Relaxed);
    }

    /// Sends `template` as this agent's interval from `begin` to `end`.
    #[allow(clippy::too_many_arguments)]
    async fn send(
        &self,
        template: &IntervalReport,
        run_id: &str,
        part: &PartId,
        start_unix_ms: i64,
        start: Instant,
        begin: Instant,
        end: Instant,
        warmup: bool,
        after_window: bool,
        seq: &mut u64,
    ) {
        let mut report = template.clone();
        report.run_id = run_id.to_owned();
        report.agent = self.name.clone();
        report.epoch = self.epoch;
        report.seq = *seq;
        report.part = part.clone();
        report.start_unix_ms =
            start_unix_ms.saturating_add(begin.duration_since(start).as_millis() as i64);
        report.duration_ms = end.duration_since(begin).as_millis() as u32;
        report.warmup = warmup;
        report.after_window = after_window;
        *seq += 1;
        let requests = report.counters.requests;
        let key = (report.run_id.clone(), report.seq);
        let now = Instant::now();
        lock(&self.pending).insert(key, now);
        if !warmup {
            let so_far = self
                .stats
                .requests_sent
                .fetch_add(requests, Ordering::Relaxed)
                + requests;
            lock(&self.stats.timeline).push((now, so_far));
        }
        self.stats.intervals_sent.fetch_add(1, Ordering::Relaxed);
        let _ = self
            .tx
            .send(FromAgent::Interval(Box::new(report)).into())
            .await;
    }
}

// === a run ===

/// What a watched run showed.
#[derive(Debug)]
pub struct Watched {
    pub run_id: String,
    /// Every event with when it arrived.
    pub events: Vec<(Instant, RunEvent)>,
    /// The stored report.json.
    pub report_json: String,
}

impl Watched {
    /// The final state.
    pub fn final_state(&self) -> Option<RunState> {
        self.events
            .last()
            .map(|(_, e)| e.state)
            .filter(|s| s.is_final())
    }

    /// Longest time without an event while the run was running (from its first running event to its end), s.
    pub fn max_gap_running_s(&self) -> Option<f64> {
        let first = self
            .events
            .iter()
            .position(|(_, e)| e.state == RunState::Running)?;
        self.events[first..]
            .windows(2)
            .map(|w| w[1].0.duration_since(w[0].0).as_secs_f64())
            .fold(None, |m: Option<f64>, g| Some(m.map_or(g, |m| m.max(g))))
    }

    /// Events while running.
    pub fn running_events(&self) -> usize {
        self.events
            .iter()
            .filter(|(_, e)| e.state == RunState::Running)
            .count()
    }

    /// From each interval's send to the first progress event whose request count covers the requests sent up to
    /// and with it, seconds: p50, p99, max, and how many sends no progress event covered (those at the end, after
    /// the last progress line). Read from the progress text ("N requests"), which is for people: a benchmark's
    /// reading, nothing else may rely on it.
    pub fn reflect_latency_s(&self, stats: &Stats) -> Option<(f64, f64, f64, usize)> {
        let mut sends = lock(&stats.timeline).clone();
        sends.sort_by_key(|(_, n)| *n);
        let progress: Vec<(Instant, u64)> = self
            .events
            .iter()
            .filter(|(_, e)| e.progress)
            .filter_map(|(t, e)| progress_requests(&e.message).map(|n| (*t, n)))
            .collect();
        let mut latencies = Vec::with_capacity(sends.len());
        let mut uncovered = 0;
        let mut p = 0;
        for (sent, so_far) in sends {
            while p < progress.len() && (progress[p].1 < so_far || progress[p].0 < sent) {
                p += 1;
            }
            match progress.get(p) {
                Some((seen, _)) => latencies.push(seen.duration_since(sent).as_secs_f64()),
                None => uncovered += 1,
            }
        }
        if latencies.is_empty() {
            return None;
        }
        latencies.sort_by(f64::total_cmp);
        let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
        Some((at(0.5), at(0.99), at(1.0), uncovered))
    }
}

/// The request count of a progress line ("scenario X: 1234 requests, ...").
fn progress_requests(message: &str) -> Option<u64> {
    let (_, rest) = message.split_once(": ")?;
    let (number, tail) = rest.split_once(' ')?;
    tail.starts_with("requests").then(|| number.parse().ok())?
}

/// Starts `plan` on the coordinator at `url` (RunService.StartRun), watches it (WatchRun) to its end, and fetches its
/// report. `on_start` runs once the run is started (the harness samples the coordinator's CPU there).
pub async fn start_and_watch(
    url: &str,
    plan: &str,
    on_start: impl FnOnce(),
) -> Result<Watched, SimError> {
    let channel = Endpoint::from_shared(url.to_owned())?.connect().await?;
    let mut runs = RunServiceClient::new(channel).max_decoding_message_size(256 << 20);
    let run_id = runs
        .start_run(v1::StartRunRequest {
            plan_toml: plan.to_owned(),
            plan_file: "simulated-agents.toml".to_owned(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .run_id;
    on_start();
    let mut stream = runs
        .watch_run(v1::WatchRunRequest {
            run_id: run_id.clone(),
        })
        .await?
        .into_inner();
    let mut events = Vec::new();
    while let Some(event) = stream.next().await {
        let Ok(event) = RunEvent::try_from(event?) else {
            continue;
        };
        let done = event.state.is_final();
        events.push((Instant::now(), event));
        if done {
            break;
        }
    }
    let report_json = runs
        .get_report(v1::GetReportRequest {
            run_id: run_id.clone(),
        })
        .await
        .map(|r| r.into_inner().report_json)
        .unwrap_or_default();
    Ok(Watched {
        run_id,
        events,
        report_json,
    })
}

/// What the report says was counted: the scenario's requests and the intervals of every agent.
pub fn report_counts(report_json: &str) -> Option<(u64, u64)> {
    let report: serde_json::Value = serde_json::from_str(report_json).ok()?;
    let requests = report["scenarios"]
        .as_array()?
        .iter()
        .find(|s| s["name"] == SCENARIO)?["metrics"]["requests"]
        .as_u64()?;
    let intervals = report["agents"]
        .as_array()?
        .iter()
        .filter_map(|a| a["intervals"].as_u64())
        .sum();
    Some((requests, intervals))
}
