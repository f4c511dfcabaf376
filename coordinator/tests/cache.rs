//! The cache kind against a real Redis (LOADGRADE_TEST_REDIS_URL; a second redis-server the test starts for
//! evictions) and against the testbed's application cache: hit rates as arithmetic predicts and as the server
//! counts them, Zipf popularity, evictions and memory as INFO says, hit vs miss latency, and clear refusals.

mod support;

use loadgrade_common::grade::Verdict;
use loadgrade_common::report::FindingKind;
use std::process::Stdio;
use std::time::Duration;

/// Tests that read the shared Redis's INFO run one at a time (they would count each other's lookups).
static SHARED_REDIS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn plan(scenario: &str) -> String {
    format!("name = \"cache\"\n[[scenario]]\nname = \"c\"\nkind = \"cache\"\n{scenario}")
}

/// Regression-proof arithmetic: with uniform keys, every key misses once (its first lookup, give or take two
/// connections missing it at the same time) and hits afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uniform_keys_hit_as_arithmetic_predicts_and_as_the_server_counts() {
    let Some(redis) = support::service_url("REDIS") else {
        return;
    };
    let _one_at_a_time = SHARED_REDIS.lock().await;
    let testbed = support::testbed().await;
    let embedded = support::embedded(2).await;
    let (key_space, requests) = (100u64, 5000u64);
    let finished = support::run_plan(
        &embedded,
        &plan(&format!(
            "redis = \"{redis}\"\norigin = \"{}\"\nkey_space = {key_space}\nconnections = 4\nrequests = {requests}\n",
            testbed.url("/api/complete?key={key}&ms=1&capacity=100000")
        )),
    )
    .await;
    support::assert_schema_valid(&finished.json);
    assert_eq!(
        finished.report.verdict,
        Verdict::Pass,
        "{:?}",
        finished.report.findings
    );
    let m = support::cache_metrics(&finished.report, "c");
    assert_eq!(m.requests, requests);
    assert_eq!(
        m.hits + m.misses,
        requests,
        "every lookup is a hit or a miss"
    );
    let expected = 1.0 - key_space as f64 / requests as f64;
    let hit_rate = m.hit_rate.expect("hit rate");
    assert!(
        (hit_rate - expected).abs() <= 0.02,
        "hit rate {hit_rate} vs {expected}"
    );
    let server = m.server_hit_rate.expect("server hit rate");
    assert!(
        (server - hit_rate).abs() <= 0.01,
        "server {server} vs client {hit_rate}"
    );
    assert_eq!(
        m.keys_deleted,
        Some(key_space),
        "every key of the run, and only those, deleted"
    );
    assert!(m.lookup_latency_ms.is_some());
    embedded.stop().await;
    testbed.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_higher_zipf_exponent_hits_more() {
    let Some(redis) = support::service_url("REDIS") else {
        return;
    };
    let _one_at_a_time = SHARED_REDIS.lock().await;
    let testbed = support::testbed().await;
    let embedded = support::embedded(1).await;
    let mut rates = Vec::new();
    for zipf in [0.0, 0.8, 1.4] {
        let finished = support::run_plan(
            &embedded,
            &plan(&format!(
                "redis = \"{redis}\"\norigin = \"{}\"\nkey_space = 2000\nzipf = {zipf}\nseed = 11\nconnections = 4\n\
                 requests = 3000\n",
                testbed.url("/api/complete?key={key}&ms=0&capacity=100000")
            )),
        )
        .await;
        let m = support::cache_metrics(&finished.report, "c");
        rates.push(m.hit_rate.expect("hit rate"));
        assert_eq!(m.seed, 11);
    }
    assert!(
        rates[0] < rates[1] && rates[1] < rates[2],
        "hit rates by zipf 0, 0.8, 1.4: {rates:?}"
    );
    embedded.stop().await;
    testbed.shutdown().await;
}

/// A redis-server of the test's own: small memory, LRU eviction.
struct OwnRedis {
    child: tokio::process::Child,
    url: String,
}

async fn own_redis(args: &[&str]) -> Option<OwnRedis> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .ok()?
        .local_addr()
        .ok()?
        .port();
    let spawned = tokio::process::Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn();
    let child = match spawned {
        Ok(c) => c,
        Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("redis-server does not start: {e}")
        }
        Err(e) => {
            eprintln!("skipped: redis-server does not start: {e}");
            return None;
        }
    };
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Some(OwnRedis {
                child,
                url: format!("redis://127.0.0.1:{port}/0"),
            });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("redis-server on port {port} did not answer");
}

async fn info(url: &str) -> String {
    let client = redis::Client::open(url).expect("url");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    redis::cmd("INFO")
        .query_async(&mut conn)
        .await
        .expect("INFO")
}

fn info_field(info: &str, name: &str) -> u64 {
    info.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} in INFO"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evictions_and_memory_are_the_servers_own() {
    let Some(mut own) =
        own_redis(&["--maxmemory", "2mb", "--maxmemory-policy", "allkeys-lru"]).await
    else {
        return;
    };
    let testbed = support::testbed().await;
    let embedded = support::embedded(1).await;
    let finished = support::run_plan(
        &embedded,
        &plan(&format!(
            "redis = \"{}\"\norigin = \"{}\"\nkey_space = 20000\nconnections = 4\nrequests = 6000\nkeep_keys = true\n",
            own.url,
            testbed.url("/api/complete?key={key}&ms=0&size=2048&capacity=1")
        )),
    )
    .await;
    let m = support::cache_metrics(&finished.report, "c");
    let after = info(&own.url).await;
    assert!(
        m.evictions.expect("evictions") > 0,
        "a 2 MB cache of 2 KB answers evicts"
    );
    assert_eq!(m.evictions, Some(info_field(&after, "evicted_keys")));
    assert_eq!(m.cache_memory_limit_bytes, Some(2 * 1024 * 1024));
    assert_eq!(
        m.cache_memory_limit_bytes,
        Some(info_field(&after, "maxmemory"))
    );
    let used = info_field(&after, "used_memory") as f64;
    let reported = m.cache_memory_bytes.expect("memory") as f64;
    assert!(
        (used - reported).abs() / used < 0.05,
        "INFO used_memory {used} vs reported {reported}"
    );
    assert!(m.memory_utilization.expect("utilization") > 0.5);
    assert_eq!(m.keys_deleted, None, "keep_keys");
    embedded.stop().await;
    testbed.shutdown().await;
    let _ = own.child.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_application_cache_is_read_by_its_header() {
    let testbed = support::testbed().await;
    let embedded = support::embedded(1).await;
    let finished = support::run_plan(
        &embedded,
        &plan(&format!(
            "mode = \"http\"\nurl = \"{}\"\nkey_space = 20\nconnections = 4\nrequests = 400\n",
            testbed.url("/api/complete?key={key}&ms=200&capacity=1000")
        )),
    )
    .await;
    support::assert_schema_valid(&finished.json);
    let m = support::cache_metrics(&finished.report, "c");
    let (hit, miss) = (
        m.hit_latency_ms.expect("hits"),
        m.miss_latency_ms.expect("misses"),
    );
    assert!(miss.p50 >= 200.0, "miss p50 {}", miss.p50);
    assert!(hit.p50 < 10.0, "hit p50 {}", hit.p50);
    assert!(m.speedup.expect("speedup") > 20.0);
    assert!(m.server_hit_rate.is_none() && m.not_measured.contains_key("server_hit_rate"));
    embedded.stop().await;
    testbed.shutdown().await;
}

/// A wrong password refuses the cache scenario with a reason naming the URL without the password; the run's other
/// scenario still runs and is reported; the exit code is INVALID's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_is_a_clear_refusal_and_the_rest_of_the_plan_runs() {
    let Some(mut own) = own_redis(&["--requirepass", "right-password-42"]).await else {
        return;
    };
    let testbed = support::testbed().await;
    let dir = std::env::temp_dir().join(format!("loadgrade-cache-refusal-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let wrong = own.url.replace("redis://", "redis://:wrong-s3cret@");
    std::fs::write(
        dir.join("plan.toml"),
        format!(
            "name = \"refused\"\npreflight = \"warn\"\n[[scenario]]\nname = \"cache\"\nkind = \"cache\"\nredis = \"{wrong}\"\n\
             origin = \"{}\"\nkey_space = 10\nrequests = 50\n\n[[scenario]]\nname = \"items\"\nkind = \"http\"\n\
             url = \"{}\"\nrequests = 50\n",
            testbed.url("/api/complete?key={key}&ms=0"),
            testbed.url("/api/items")
        ),
    )
    .expect("plan");
    let out = support::run_plan_file(&dir).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "INVALID\n{stdout}\n{stderr}");
    assert!(!stdout.contains("wrong-s3cret") && !stderr.contains("wrong-s3cret"));
    let json = std::fs::read_to_string(dir.join("report/report.json")).expect("report");
    assert!(!json.contains("wrong-s3cret"));
    let report: loadgrade_common::report::Report = serde_json::from_str(&json).expect("parses");
    let refusal = report
        .findings
        .iter()
        .find(|f| f.kind == FindingKind::AgentRefused)
        .expect("the cache shard was refused");
    assert!(
        refusal
            .message
            .contains("cannot use the cache at redis://***@127.0.0.1")
            && refusal.message.to_lowercase().contains("auth"),
        "{}",
        refusal.message
    );
    assert_eq!(
        support::http_metrics(&report, "items").requests,
        50,
        "the other scenario ran"
    );
    let _ = own.child.kill().await;
    testbed.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}
