//! What the reports show people: the load over time (per-second points that add up to the scenario's totals).

mod support;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_second_points_add_up_to_the_merged_totals() {
    let testbed = support::testbed().await;
    let embedded = support::embedded(2).await;
    let plan = format!(
        "name = \"series\"\n\
         [[scenario]]\nname = \"open\"\nkind = \"http\"\nurl = \"{0}\"\nmodel = \"open\"\nrate = 200\n\
         connections = 8\nduration = \"3s\"\nwarmup = \"1s\"\n\
         [[scenario]]\nname = \"closed\"\nkind = \"http\"\nurl = \"{0}\"\nconnections = 4\nduration = \"2s\"\n",
        testbed.url("/delay?ms=1")
    );
    let finished = support::run_plan(&embedded, &plan).await;
    let report = &finished.report;
    support::assert_schema_valid(&serde_json::to_string(report).expect("json"));
    for name in ["open", "closed"] {
        let m = support::http_metrics(report, name);
        let series = &m.series;
        assert!(series.len() >= 2, "{name}: {series:?}");
        let sum = |f: &dyn Fn(&loadgrade_common::report::series::SeriesPoint) -> u64| {
            series.iter().map(f).sum::<u64>()
        };
        assert_eq!(sum(&|p| p.requests), m.requests, "{name}: requests");
        assert_eq!(sum(&|p| p.ok), m.requests - m.errors, "{name}: successes");
        assert_eq!(sum(&|p| p.errors.total()), m.errors, "{name}: errors");
        assert_eq!(sum(&|p| p.dropped), m.dropped, "{name}: dropped");
        assert!(
            series.windows(2).all(|w| w[0].t_s < w[1].t_s),
            "{name}: points in order"
        );
        for p in series.iter().filter(|p| p.requests > 0) {
            let (p50, p99) = (p.p50_ms.expect("p50"), p.p99_ms.expect("p99"));
            assert!(p50 <= p99 && p50 >= 1.0, "{name}: {p:?}");
        }
    }
    let open = support::http_metrics(report, "open");
    // The warm-up second is not a point; arrivals over the points are what was planned for the window.
    let arrivals: u64 = open.series.iter().map(|p| p.arrivals).sum();
    assert!((590..=610).contains(&arrivals), "{arrivals}");
}
