//! The coordinator under a hundred simulated agents (issue 14, "Coordinator scale"): every interval they send is
//! stored, acknowledged and counted in the report, WatchRun keeps updating while the run goes on, and the run
//! finishes. The agents are the benchmark's (`examples/scale_agents`), real on the wire and simulated in their
//! figures: they send no load. `bench/coordinator.sh` runs the same harness at 1,000 to 5,000 agents.

#[path = "../examples/scale_agents/simulated.rs"]
mod simulated;

use loadgrade_common::run::RunState;
use loadgrade_coordinator::store::Store;
use loadgrade_coordinator::{Coordinator, spawn_server};
use simulated::{Fleet, Load, Stats};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const AGENTS: usize = 100;
const SECONDS: u64 = 6;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_agents_every_interval_counted_and_watch_run_updating() {
    let store = Store::in_memory().await.expect("store");
    let coordinator = Coordinator::new(store.clone());
    let shutdown = CancellationToken::new();
    let (addr, server) = spawn_server(
        coordinator.clone(),
        ([127, 0, 0, 1], 0).into(),
        shutdown.clone(),
    )
    .await
    .expect("coordinator listens");
    let url = format!("http://{addr}");
    let load = Load {
        rate: 500,
        ..Load::default()
    };
    let fleet = Fleet::connect(&url, AGENTS, "sim", &load, 32, Duration::from_secs(20))
        .await
        .expect("every simulated agent is welcomed");
    let watched = tokio::time::timeout(
        Duration::from_secs(40),
        simulated::start_and_watch(&url, &simulated::plan(AGENTS, SECONDS, &load), || {}),
    )
    .await
    .expect("the run ends within 40 s")
    .expect("the run service answers");
    let stats = fleet.stats.clone();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while Stats::get(&stats.intervals_acked) < Stats::get(&stats.intervals_sent)
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    assert_eq!(
        watched.final_state(),
        Some(RunState::Finished),
        "events: {:?}",
        watched.events.iter().map(|(_, e)| e).collect::<Vec<_>>()
    );
    let sent = Stats::get(&stats.intervals_sent);
    // Each agent: one interval a second, and the closed model's wind-down after the window.
    assert_eq!(sent, AGENTS as u64 * (SECONDS + 1), "intervals sent");
    assert_eq!(Stats::get(&stats.shards_done), AGENTS as u64);
    assert_eq!(Stats::get(&stats.sessions_broken), 0, "no session broke");
    assert_eq!(
        Stats::get(&stats.intervals_acked),
        sent,
        "every interval acknowledged"
    );
    let stored = store
        .intervals_of(&watched.run_id)
        .await
        .expect("stored intervals read back")
        .len() as u64;
    assert_eq!(stored, sent, "every interval stored, none dropped");
    let (requests, intervals) =
        simulated::report_counts(&watched.report_json).expect("the report counts the scenario");
    assert_eq!(intervals, sent, "the report counts every interval");
    assert_eq!(
        requests,
        Stats::get(&stats.requests_sent),
        "the report's requests are every request the intervals carried"
    );
    // Progress is said at most once a second, when an interval arrives: with intervals cut on whole seconds a
    // line can miss one second, never two.
    let gap = watched.max_gap_running_s().expect("events while running");
    eprintln!(
        "{sent} intervals sent and stored, {requests} requests, {} events while running, longest gap {gap:.2} s, \
         send to acknowledgement p50/p99/max {:?} ms",
        watched.running_events(),
        stats.ack_latency_ms()
    );
    assert!(gap <= 2.5, "WatchRun silent for {gap:.2} s during the run");
    assert!(
        watched.running_events() >= SECONDS as usize / 2,
        "{} events while running",
        watched.running_events()
    );

    fleet.stop().await;
    shutdown.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(10), server).await;
}
