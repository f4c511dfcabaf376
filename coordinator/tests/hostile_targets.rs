//! Runs against targets that answer with what no parser should buffer (issue 20): an endless header, a header
//! trickled a byte at a time, an endless chunk extension, 20,000 header lines. Each run ends on time with the
//! responses counted as `response_too_large` (or timeouts, for the trickle), and the process's memory stays flat.
//! One test, run alone in this binary, so the memory it measures is its own.

mod support;

use loadgrade_testbed::hostile::{HostileTarget, Hostility};
use std::time::{Duration, Instant};

/// This process's resident memory now, bytes.
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb << 10)
}

/// Regression (issue 20): an endless header took `loadgrade run` to 685 MB with one connection and a 2 s timeout;
/// an endless chunk-extension line to 127 MB.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_responses_are_bounded_counted_and_cost_no_memory() {
    let embedded = support::embedded(1).await;
    let before = rss();
    let sampling = tokio_util::sync::CancellationToken::new();
    let sampler = {
        let sampling = sampling.clone();
        tokio::spawn(async move {
            let mut peak = 0;
            while !sampling.is_cancelled() {
                peak = peak.max(rss());
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            peak
        })
    };
    for hostility in [
        Hostility::HeaderBomb,
        Hostility::ChunkExtensionBomb,
        Hostility::ManyHeaders,
        Hostility::SlowHeader,
    ] {
        let target = HostileTarget::start(([127, 0, 0, 1], 0).into(), hostility)
            .await
            .expect("hostile target");
        let plan = format!(
            "name = \"hostile\"\npreflight = \"warn\"\n[[scenario]]\nname = \"h\"\nkind = \"http\"\n\
             url = \"http://{}/\"\nconnections = 8\nduration = \"3s\"\ntimeout = \"2s\"\n",
            target.addr
        );
        let began = Instant::now();
        let finished = support::run_plan(&embedded, &plan).await;
        let took = began.elapsed();
        support::assert_schema_valid(&finished.json);
        let m = support::http_metrics(&finished.report, "h");
        let e = m.errors_by_class;
        eprintln!(
            "{hostility:?}: {} requests, {e:?}, the target offered {} MiB to its sockets, run took {took:?}",
            m.requests,
            target.written() >> 20
        );
        assert!(
            took < Duration::from_secs(30),
            "{hostility:?}: the run took {took:?}"
        );
        match hostility {
            Hostility::SlowHeader => {
                assert!(e.timeout > 0, "{hostility:?}: {e:?}");
                assert_eq!(e.response_too_large, 0, "{hostility:?}");
            }
            _ => {
                assert!(e.response_too_large > 0, "{hostility:?}: {e:?}");
                assert_eq!(
                    e.response_too_large, m.requests,
                    "{hostility:?}: every request"
                );
            }
        }
        assert_eq!(m.success_rate, Some(0.0), "{hostility:?}");
    }
    sampling.cancel();
    let peak = sampler.await.expect("sampler");
    let grew = peak.saturating_sub(before);
    eprintln!(
        "resident memory {} MiB before, {} MiB at the peak",
        before >> 20,
        peak >> 20
    );
    assert!(grew < 64 << 20, "memory grew by {} MiB", grew >> 20);
    embedded.stop().await;
}
