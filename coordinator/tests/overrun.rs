//! A part whose agent never finishes ends at its stated bound, never later, and says so (issue 20: a 1 s plan took
//! 23.7 s while its progress said "21 of at most 11 s").

use loadgrade_common::protocol::{FromAgent, Heartbeat, Hello, PreflightReply, ToAgent};
use loadgrade_common::report::FindingKind;
use loadgrade_coordinator::store::Store;
use loadgrade_coordinator::{Coordinator, spawn_server};
use loadgrade_proto::v1;
use loadgrade_proto::v1::agent_service_client::AgentServiceClient;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

/// An agent that says hello, keeps its heartbeats and takes every assignment, but never runs one or reports.
async fn silent_agent(addr: std::net::SocketAddr, stop: CancellationToken) {
    let (tx, rx) = mpsc::channel(64);
    let hello = FromAgent::Hello(Hello {
        name: "silent-1".to_owned(),
        version: "test".to_owned(),
        cores: 1,
        epoch: 1,
        protocol: loadgrade_proto::PROTOCOL_VERSION,
        probe_only: false,
        labels: Default::default(),
    });
    tx.send(v1::AgentMessage::from(hello)).await.expect("hello");
    let mut client = AgentServiceClient::connect(format!("http://{addr}"))
        .await
        .expect("connect");
    let mut inbound = client
        .session(ReceiverStream::new(rx))
        .await
        .expect("session")
        .into_inner();
    let replies = tx.clone();
    tokio::spawn(async move {
        // A preflight gets an empty answer (nothing checked, nothing failed); an assignment or a stop is read and left
        // unanswered.
        while let Ok(Some(message)) = inbound.message().await {
            if let Ok(ToAgent::Preflight(p)) = ToAgent::try_from(message) {
                let reply = FromAgent::PreflightReply(PreflightReply {
                    request_id: p.request_id,
                    rows: Vec::new(),
                });
                let _ = replies.send(v1::AgentMessage::from(reply)).await;
            }
        }
    });
    while !stop.is_cancelled() {
        let beat = FromAgent::Heartbeat(Heartbeat {
            sent_at_unix_ms: loadgrade_common::clock::unix_ms(),
            clock: None,
        });
        if tx.send(v1::AgentMessage::from(beat)).await.is_err() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_part_whose_agent_never_finishes_ends_at_its_stated_bound() {
    let coordinator = Coordinator::new(Store::in_memory().await.expect("store"));
    let shutdown = CancellationToken::new();
    let (addr, _server) = spawn_server(
        coordinator.clone(),
        ([127, 0, 0, 1], 0).into(),
        shutdown.clone(),
    )
    .await
    .expect("server");
    let stop = CancellationToken::new();
    tokio::spawn(silent_agent(addr, stop.clone()));
    let deadline = Instant::now() + Duration::from_secs(10);
    while coordinator.registry.agents().is_empty() {
        assert!(Instant::now() < deadline, "the agent registered");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // 1 s planned, a 1 s timeout: agents are told to stop 10 s after (1 s to start + 2 s + 10 s grace), and the part
    // ends 1 s + 5 s after that whatever they do.
    let plan = "name = \"overrun\"\npreflight = \"warn\"\n[[scenario]]\nname = \"s\"\nkind = \"http\"\n\
                url = \"http://127.0.0.1:9/\"\nconnections = 1\nduration = \"1s\"\ntimeout = \"1s\"\n";
    let started = coordinator
        .start_run("overrun.toml", plan)
        .await
        .expect("accepted");
    let control = coordinator.run_control(&started.id).expect("in progress");
    let mut watcher = loadgrade_coordinator::run::events::Watcher::new(control.events);
    let running = tokio::spawn(async move {
        // When the part starts running, and every progress line after it.
        let mut began = None;
        let mut lines = Vec::new();
        while let Some(event) = watcher.next().await {
            if event.message.starts_with("scenario \"s\":") && began.is_none() {
                began = Some(Instant::now());
            }
            lines.push(event.message);
        }
        (began, lines)
    });
    let finished = tokio::time::timeout(Duration::from_secs(60), started.finished)
        .await
        .expect("the run ends by itself")
        .expect("run task")
        .expect("report");
    let ended = Instant::now();
    let (began, lines) = running.await.expect("watcher");
    let took = ended - began.expect("the part started");
    stop.cancel();
    shutdown.cancel();
    let bound = Duration::from_secs(1 + 2 + 10 + 1 + 5);
    assert!(
        took <= bound + Duration::from_secs(2),
        "the part ran {took:?}, bound {bound:?}"
    );
    let overran = finished
        .report
        .findings
        .iter()
        .find(|f| f.kind == FindingKind::Overran)
        .expect("an overrun finding");
    assert!(
        overran.message.contains("2 s planned") || overran.message.contains("1 s planned"),
        "{}",
        overran.message
    );
    assert!(
        finished
            .report
            .findings
            .iter()
            .any(|f| f.kind == FindingKind::AgentUnresponsive),
        "{:?}",
        finished.report.findings
    );
    // The progress line states the bound it keeps: "at most 18 s" (from the start instant).
    let progress = lines
        .iter()
        .find(|l| l.contains("at most"))
        .expect("a progress line");
    assert!(progress.contains("at most 18 s"), "{progress}");
}
