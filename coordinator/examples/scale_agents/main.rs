//! The coordinator benchmark's harness (issue 14, "Coordinator scale"; `bench/coordinator.sh` runs it): connects N
//! simulated agents to a running `loadgrade serve`, starts one run on all of them, watches it to its end, and prints
//! what it saw as one JSON line on stdout: the coordinator's CPU and memory (from `/proc/PID` with `--watch-pid`),
//! intervals sent and acknowledged, send-to-acknowledgement latency, WatchRun gaps, and the report's counts.
//!
//! The agents send no load and their figures are simulated (see `simulated.rs`): the run exists only to load the
//! coordinator, and its report must be thrown away with its store.

mod simulated;

use clap::Parser;
use loadgrade_agent::procfs::{Proc, cpu_seconds, rss_bytes};
use simulated::{Fleet, Load, Stats};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
#[command(
    about = "Simulated agents for a coordinator benchmark: no load is sent, every figure is simulated"
)]
struct Args {
    /// The coordinator, e.g. http://127.0.0.1:7700 (loopback, no TLS).
    #[arg(long, default_value = "http://127.0.0.1:7700")]
    coordinator: String,
    /// Simulated agents (the run's min_agents).
    #[arg(long, default_value_t = 100)]
    agents: usize,
    /// The run's duration, seconds.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Mean responses a second per agent in the simulated histograms.
    #[arg(long, default_value_t = 1000)]
    rate: u64,
    /// Sessions dialing at once.
    #[arg(long, default_value_t = 64)]
    parallel: usize,
    /// The coordinator's process id: its CPU and RSS are read from /proc.
    #[arg(long)]
    watch_pid: Option<u32>,
    /// Agent name prefix.
    #[arg(long, default_value = "sim")]
    prefix: String,
}

/// When the run started, with the coordinator's and the harness's CPU seconds then.
type StartSample = (Instant, Option<f64>, Option<f64>);

/// A process's CPU seconds and RSS bytes, when it can be read.
fn sample(pid: Option<u32>) -> (Option<f64>, Option<u64>) {
    match pid {
        Some(pid) => (
            cpu_seconds(Proc::Pid(pid)).ok(),
            rss_bytes(Proc::Pid(pid)).ok(),
        ),
        None => (None, None),
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let load = Load {
        rate: args.rate,
        ..Load::default()
    };
    let pid = args.watch_pid;
    let (_, rss_before) = sample(pid);
    let t_connect = Instant::now();
    let fleet = match Fleet::connect(
        &args.coordinator,
        args.agents,
        &args.prefix,
        &load,
        args.parallel,
        Duration::from_secs(120),
    )
    .await
    {
        Ok(f) => f,
        Err(e) => {
            eprintln!("scale_agents: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let connect_s = t_connect.elapsed().as_secs_f64();
    // Let the sessions settle (heartbeats flowing) before the idle figure.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (_, rss_connected) = sample(pid);
    eprintln!(
        "scale_agents: {} simulated agents connected in {connect_s:.1} s",
        args.agents
    );

    // The coordinator's RSS, sampled every 250 ms from the run's start to its end.
    let peak = Arc::new(AtomicU64::new(0));
    let sampling = tokio_util::sync::CancellationToken::new();
    let sampler = pid.map(|pid| {
        let (peak, sampling) = (peak.clone(), sampling.clone());
        tokio::spawn(async move {
            while !sampling.is_cancelled() {
                if let Ok(rss) = rss_bytes(Proc::Pid(pid)) {
                    peak.fetch_max(rss, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        })
    });
    let at_start: Arc<Mutex<Option<StartSample>>> = Arc::default();
    let plan = simulated::plan(args.agents, args.seconds, &load);
    let watched = {
        let at_start = at_start.clone();
        simulated::start_and_watch(&args.coordinator, &plan, move || {
            let (cpu, _) = sample(pid);
            *at_start.lock().expect("not poisoned") =
                Some((Instant::now(), cpu, cpu_seconds(Proc::Me).ok()));
        })
        .await
    };
    let t_end = Instant::now();
    let (cpu_end, rss_end) = sample(pid);
    let me_cpu_end = cpu_seconds(Proc::Me).ok();
    sampling.cancel();
    if let Some(s) = sampler {
        let _ = s.await;
    }
    let stats = fleet.stats.clone();
    let watched = match watched {
        Ok(w) => w,
        Err(e) => {
            eprintln!("scale_agents: {e}");
            fleet.stop().await;
            return std::process::ExitCode::FAILURE;
        }
    };
    // Acknowledgements of the last intervals may still be on their way.
    let settle = Instant::now() + Duration::from_secs(5);
    while Stats::get(&stats.intervals_acked) < Stats::get(&stats.intervals_sent)
        && Instant::now() < settle
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let start = *at_start.lock().expect("not poisoned");
    let run_s = start.map(|(t, _, _)| t_end.duration_since(t).as_secs_f64());
    let cpu_percent = match (start, cpu_end, run_s) {
        (Some((_, Some(a), _)), Some(b), Some(s)) if s > 0.0 => Some(100.0 * (b - a) / s),
        _ => None,
    };
    let harness_cpu_percent = match (start, me_cpu_end, run_s) {
        (Some((_, _, Some(a))), Some(b), Some(s)) if s > 0.0 => Some(100.0 * (b - a) / s),
        _ => None,
    };
    let n = args.agents as f64;
    let peak = peak.load(Ordering::Relaxed);
    let per_agent = |rss: Option<u64>| match (rss, rss_before) {
        (Some(r), Some(b)) => Some((r.saturating_sub(b)) as f64 / n / 1024.0),
        _ => None,
    };
    let (report_requests, report_intervals) =
        simulated::report_counts(&watched.report_json).unwrap_or((0, 0));
    let ack = stats.ack_latency_ms();
    let reflect = watched.reflect_latency_s(&stats);
    let mib = |b: Option<u64>| b.map(|b| b as f64 / (1 << 20) as f64);
    let summary = serde_json::json!({
        "simulated": true,
        "agents": args.agents,
        "seconds": args.seconds,
        "run_id": watched.run_id,
        "final_state": watched.final_state().map(|s| s.as_str()),
        "connect_s": connect_s,
        "run_s": run_s,
        "coordinator_cpu_percent": cpu_percent,
        "harness_cpu_percent": harness_cpu_percent,
        "rss_before_mib": mib(rss_before),
        "rss_connected_mib": mib(rss_connected),
        "rss_peak_mib": mib((peak > 0).then_some(peak)),
        "rss_end_mib": mib(rss_end),
        "kib_per_agent_connected": per_agent(rss_connected),
        "kib_per_agent_peak": per_agent((peak > 0).then_some(peak)),
        "kib_per_agent_end": per_agent(rss_end),
        "intervals_sent": Stats::get(&stats.intervals_sent),
        "intervals_acked": Stats::get(&stats.intervals_acked),
        "requests_sent": Stats::get(&stats.requests_sent),
        "report_requests": report_requests,
        "report_intervals": report_intervals,
        "ack_ms_p50": ack.map(|a| a.0),
        "ack_ms_p99": ack.map(|a| a.1),
        "ack_ms_max": ack.map(|a| a.2),
        "watch_reflect_s_p50": reflect.map(|r| r.0),
        "watch_reflect_s_p99": reflect.map(|r| r.1),
        "watch_reflect_s_max": reflect.map(|r| r.2),
        "watch_events_running": watched.running_events(),
        "watch_max_gap_s": watched.max_gap_running_s(),
        "sessions_broken": Stats::get(&stats.sessions_broken),
        "connect_failures": Stats::get(&stats.connect_failures),
        "shards": Stats::get(&stats.shards),
        "shards_done": Stats::get(&stats.shards_done),
        "refused": Stats::get(&stats.refused),
        "heartbeats": Stats::get(&stats.heartbeats),
        "heartbeat_acks": Stats::get(&stats.heartbeat_acks),
    });
    println!("{summary}");
    fleet.stop().await;
    std::process::ExitCode::SUCCESS
}
