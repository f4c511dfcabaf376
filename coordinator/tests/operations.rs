//! Operating the coordinator (issue 14): gRPC health (NOT_SERVING while draining) and reflection, the /metrics
//! endpoint, idempotent submits and the run queue, and preflight (`loadgrade check`, and before every run):
//! each failing target a named row with a hint, exit 2, the target seeing at most the probe; an agent whose
//! open-file limit is too low for its share named with the numbers.

mod support;

use loadgrade_agent::scrape::exposition::{Format, count};
use loadgrade_common::preflight::CheckStatus;
use loadgrade_coordinator::store::Store;
use loadgrade_coordinator::{Coordinator, ServeOptions, ServerSecurity, spawn_service};
use loadgrade_proto::v1;
use loadgrade_proto::v1::run_service_client::RunServiceClient;
use std::time::Duration;
use tokio_stream::StreamExt as _;
use tokio_util::sync::CancellationToken;

async fn serve(coordinator: &std::sync::Arc<Coordinator>, reflection: bool) -> String {
    let (addr, _) = spawn_service(
        coordinator.clone(),
        ([127, 0, 0, 1], 0).into(),
        ServerSecurity::default(),
        ServeOptions {
            reflection,
            ..Default::default()
        },
        CancellationToken::new(),
    )
    .await
    .expect("serves");
    format!("http://{addr}")
}

async fn channel(url: &str) -> tonic::transport::Channel {
    tonic::transport::Channel::from_shared(url.to_owned())
        .expect("url")
        .connect()
        .await
        .expect("connects")
}

#[tokio::test]
async fn health_turns_not_serving_while_draining_and_reflection_lists_the_services() {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;
    let coordinator = Coordinator::new(Store::in_memory().await.expect("store"));
    let url = serve(&coordinator, true).await;
    let health = HealthClient::new(channel(&url).await);
    let status = |service: &str| {
        let mut health = health.clone();
        let service = service.to_owned();
        async move {
            health
                .check(HealthCheckRequest { service })
                .await
                .expect("health answers")
                .into_inner()
                .status
        }
    };
    for service in ["", "loadgrade.v1.RunService", "loadgrade.v1.AgentService"] {
        assert_eq!(
            status(service).await,
            ServingStatus::Serving as i32,
            "{service:?}"
        );
    }

    // Reflection (on here) lists every service, as grpcurl's `list` asks.
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    let list = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut reflection = ServerReflectionClient::new(channel(&url).await);
    let mut answers = reflection
        .server_reflection_info(tokio_stream::iter([list.clone()]))
        .await
        .expect("reflection answers")
        .into_inner();
    let answer = answers.next().await.expect("one answer").expect("ok");
    let Some(MessageResponse::ListServicesResponse(listed)) = answer.message_response else {
        panic!("not a service list: {answer:?}");
    };
    let names: Vec<String> = listed.service.into_iter().map(|s| s.name).collect();
    for wanted in [
        "loadgrade.v1.RunService",
        "loadgrade.v1.AgentService",
        "grpc.health.v1.Health",
    ] {
        assert!(
            names.iter().any(|n| n == wanted),
            "{wanted} not in {names:?}"
        );
    }

    // Draining: health says NOT_SERVING for the server and each service, and no run starts.
    coordinator.drain();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while status("").await != ServingStatus::NotServing as i32 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "still SERVING 5 s after drain"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        status("loadgrade.v1.RunService").await,
        ServingStatus::NotServing as i32
    );
    let mut runs = RunServiceClient::connect(url).await.expect("connects");
    let refused = runs
        .start_run(v1::StartRunRequest {
            plan_toml: "name = \"x\"\n[[scenario]]\nname = \"s\"\nkind = \"http\"\nurl = \"http://127.0.0.1:1/\"\nrequests = 1\n".into(),
            plan_file: "x.toml".into(),
            idempotency_key: String::new(),
        })
        .await
        .expect_err("a draining coordinator starts no run");
    assert_eq!(refused.code(), tonic::Code::Unavailable, "{refused:?}");

    // Reflection is off by default.
    let quiet = Coordinator::new(Store::in_memory().await.expect("store"));
    let url = serve(&quiet, false).await;
    let mut reflection = ServerReflectionClient::new(channel(&url).await);
    let off = match reflection
        .server_reflection_info(tokio_stream::iter([list]))
        .await
    {
        Err(status) => status.code(),
        Ok(stream) => match stream.into_inner().next().await {
            Some(Err(status)) => status.code(),
            other => panic!("reflection answered while off: {other:?}"),
        },
    };
    assert_eq!(off, tonic::Code::Unimplemented);
}

/// GET `path` on `addr` over plain HTTP/1.1; the status line and the body.
async fn http_get(addr: std::net::SocketAddr, path: &str) -> (String, String) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connects");
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .expect("writes");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("reads");
    let (head, body) = response.split_once("\r\n\r\n").expect("a head");
    (
        head.lines().next().unwrap_or_default().to_owned(),
        body.to_owned(),
    )
}

#[tokio::test]
async fn metrics_parse_as_openmetrics_and_count_a_finished_run() {
    let testbed = support::testbed().await;
    let embedded = support::embedded(1).await;
    let addr = loadgrade_coordinator::metrics::spawn(
        &embedded.coordinator,
        ([127, 0, 0, 1], 0).into(),
        CancellationToken::new(),
    )
    .await
    .expect("metrics listen");
    let plan = format!(
        "name = \"m\"\n[[scenario]]\nname = \"s\"\nkind = \"http\"\nurl = \"{}\"\nconnections = 2\nrequests = 200\n",
        testbed.url("/api/items?limit=3")
    );
    let finished = support::run_plan(&embedded, &plan).await;
    assert_eq!(
        finished.report.verdict,
        loadgrade_common::grade::Verdict::Pass
    );
    let (status, body) = http_get(addr, "/metrics").await;
    assert!(status.contains("200"), "{status}");
    // Our strict exposition reader (the scrape scenario's): every line must parse.
    let counted = count(&body, Format::OpenMetrics).expect("OpenMetrics text");
    assert!(counted.series >= 10, "{counted:?}");
    let value = |series: &str| -> f64 {
        body.lines()
            .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
            .unwrap_or_else(|| panic!("no {series} in\n{body}"))
    };
    assert_eq!(value("loadgrade_runs{state=\"finished\"}"), 1.0);
    assert_eq!(value("loadgrade_runs{state=\"running\"}"), 0.0);
    assert_eq!(value("loadgrade_agents_connected"), 1.0);
    let stored = value("loadgrade_intervals_stored_total");
    assert!(stored >= 1.0, "no interval stored: {stored}");
    assert_eq!(value("loadgrade_intervals_received_total"), stored);
    assert_eq!(value("loadgrade_store_write_seconds_count"), stored);
    let (status, _) = http_get(addr, "/other").await;
    assert!(status.contains("404"), "{status}");
    embedded.stop().await;
}

async fn finish(
    runs: &mut RunServiceClient<tonic::transport::Channel>,
    run_id: &str,
) -> Vec<v1::RunState> {
    let mut events = runs
        .watch_run(v1::WatchRunRequest {
            run_id: run_id.to_owned(),
        })
        .await
        .expect("watch")
        .into_inner();
    let mut states = Vec::new();
    while let Some(event) = tokio::time::timeout(Duration::from_secs(60), events.next())
        .await
        .expect("an event within 60 s")
    {
        let event = event.expect("event");
        states.push(event.state());
        if matches!(
            event.state(),
            v1::RunState::Finished | v1::RunState::Cancelled | v1::RunState::Error
        ) {
            break;
        }
    }
    states
}

#[tokio::test]
async fn one_idempotency_key_starts_one_run_and_submissions_queue_then_all_finish() {
    let testbed = support::testbed().await;
    let embedded = support::embedded(1).await;
    let mut runs = RunServiceClient::connect(format!("http://{}", embedded.addr))
        .await
        .expect("connects");
    let plan = |requests: u32| {
        format!(
            "name = \"q\"\n[[scenario]]\nname = \"s\"\nkind = \"http\"\nurl = \"{}\"\nconnections = 2\nrequests = {requests}\n",
            testbed.url("/delay?ms=5")
        )
    };
    let submit = |text: String, key: &str| v1::StartRunRequest {
        plan_toml: text,
        plan_file: "q.toml".into(),
        idempotency_key: key.to_owned(),
    };
    let first = runs
        .start_run(submit(plan(60), "ci-build-42"))
        .await
        .expect("starts")
        .into_inner();
    let again = runs
        .start_run(submit(plan(60), "ci-build-42"))
        .await
        .expect("answers")
        .into_inner();
    assert!(!first.existing);
    assert!(again.existing, "the second submission is the first run");
    assert_eq!(again.run_id, first.run_id);
    let reused = runs
        .start_run(submit(plan(61), "ci-build-42"))
        .await
        .expect_err("one key, another plan");
    assert_eq!(reused.code(), tonic::Code::AlreadyExists, "{reused:?}");
    let states = finish(&mut runs, &first.run_id).await;
    assert_eq!(states.last(), Some(&v1::RunState::Finished), "{states:?}");
    assert_eq!(
        testbed.requests(),
        60,
        "the target saw one run's load (and the preflight's one uncounted probe)"
    );
    assert_eq!(
        testbed.probes(),
        1,
        "one preflight probe from the one agent"
    );

    // Two submissions on one agent: the second waits QUEUED until the first ends; both finish.
    let a = runs
        .start_run(submit(plan(300), ""))
        .await
        .expect("a")
        .into_inner();
    let b = runs
        .start_run(submit(plan(40), ""))
        .await
        .expect("b")
        .into_inner();
    assert_ne!(a.run_id, b.run_id);
    let (states_a, states_b) = {
        let mut runs_b = runs.clone();
        let b_id = b.run_id.clone();
        let watch_b = tokio::spawn(async move { finish(&mut runs_b, &b_id).await });
        let states_a = finish(&mut runs, &a.run_id).await;
        (states_a, watch_b.await.expect("watch b"))
    };
    assert_eq!(
        states_a.last(),
        Some(&v1::RunState::Finished),
        "{states_a:?}"
    );
    assert_eq!(
        states_b.last(),
        Some(&v1::RunState::Finished),
        "{states_b:?}"
    );
    assert!(
        states_b.contains(&v1::RunState::Queued),
        "the second run was queued behind the first: {states_b:?}"
    );
    assert_eq!(testbed.requests(), 60 + 300 + 40);
    embedded.stop().await;
}

/// `loadgrade check` on `plan` with in-process agents; exit code and stdout.
async fn check(plan: &str, format: &str) -> (i32, String) {
    let dir = tempdir();
    std::fs::write(dir.join("plan.toml"), plan).expect("plan written");
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_loadgrade"))
        .args(["check", "plan.toml", "--format", format])
        .current_dir(&dir)
        .output()
        .await
        .expect("loadgrade runs");
    let _ = std::fs::remove_dir_all(&dir);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn tempdir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "loadgrade-ops-{}-{}",
        std::process::id(),
        rand_suffix()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// The failing rows of a `check --format json` output: (check, value, hint).
fn failing(json: &str) -> Vec<(String, String, String)> {
    let parsed: serde_json::Value = serde_json::from_str(json).expect("json");
    parsed["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter(|r| r["status"] == "fail")
        .map(|r| {
            (
                r["check"].as_str().unwrap_or_default().to_owned(),
                r["value"].as_str().unwrap_or_default().to_owned(),
                r["hint"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn check_names_each_failing_target_with_a_hint_and_exits_2() {
    let testbed = support::testbed().await;
    let http = |name: &str, url: &str| {
        format!(
            "[[scenario]]\nname = \"{name}\"\nkind = \"http\"\nurl = \"{url}\"\nconnections = 2\nduration = \"5s\"\n"
        )
    };
    let pages = |database: &str, table: &str| {
        format!(
            "[[scenario]]\nname = \"pages\"\nkind = \"pagination\"\ndatabase = \"{database}\"\ntable = \"{table}\"\n\
             key = \"id\"\npage_size = 10\npages = [1, 2]\niterations = 2\n"
        )
    };
    // Regression (issue 21): without the services' variables this test panicked instead of skipping.
    let (Some(postgres), Some(mysql)) = (
        support::service_url("POSTGRES"),
        support::service_url("MYSQL"),
    ) else {
        return;
    };
    let host = postgres
        .split_once('@')
        .map_or("127.0.0.1:5432/test", |(_, h)| h);
    let wrong_role = format!("postgres://loadgrade_no_such_role:wrong@{host}");
    let wrong_password = mysql.replacen("mysql://root@", "mysql://root:wrong-password@", 1);
    let cases = [
        ("closed port", http("down", "http://127.0.0.1:1/"), "reachability", "127.0.0.1:1"),
        ("PostgreSQL login", pages(&wrong_role, "loadgrade_items"), "reachability", "cannot connect"),
        ("MariaDB password", pages(&wrong_password, "loadgrade_items"), "reachability", "cannot connect"),
        (
            "Redis down",
            "[[scenario]]\nname = \"cache\"\nkind = \"cache\"\nmode = \"redis\"\nredis = \"redis://127.0.0.1:1/0\"\n\
             origin = \"http://127.0.0.1:1/?key={key}\"\nkey_space = 10\nconnections = 1\nduration = \"2s\"\n"
                .to_owned(),
            "reachability",
            "127.0.0.1:1",
        ),
        (
            "missing table",
            pages(&postgres, "loadgrade_no_such_table"),
            "reachability",
            "loadgrade_no_such_table",
        ),
    ];
    for (what, scenario, check_name, mentions) in cases {
        // Each plan also loads the testbed: it sees the probe and no load.
        let plan = format!(
            "name = \"c\"\n{}\n{scenario}",
            http("api", &testbed.url("/api/items"))
        );
        let (code, out) = check(&plan, "json").await;
        assert_eq!(code, 2, "{what}: exit 2 for a failing check\n{out}");
        let rows = failing(&out);
        assert_eq!(rows.len(), 1, "{what}: one failing row: {rows:?}");
        let (check, value, hint) = &rows[0];
        assert_eq!(check, check_name, "{what}: {value}");
        assert!(
            value.contains(mentions),
            "{what}: {value:?} names {mentions:?}"
        );
        assert!(!hint.is_empty(), "{what}: a hint");
        assert!(
            !value.contains("wrong-password") && !value.contains(":wrong@"),
            "{what}: no password in {value:?}"
        );
    }
    assert_eq!(testbed.requests(), 0, "check sends no load");
    assert_eq!(testbed.probes(), 5, "one probe per check");

    // The table, human-readable: the failing row, its hint, and the tally.
    let (code, out) = check(
        &format!("name = \"c\"\n{}", http("down", "http://127.0.0.1:1/")),
        "table",
    )
    .await;
    assert_eq!(code, 2);
    assert!(
        out.contains("FAIL") && out.contains("reachability") && out.contains("-> "),
        "{out}"
    );
    assert!(out.contains("1 fail"), "{out}");

    // And every run makes the same checks first: a failing one sends no load, INVALID, exit 2.
    let dir = tempdir();
    std::fs::write(
        dir.join("plan.toml"),
        format!(
            "name = \"c\"\n{}\n{}",
            http("api", &testbed.url("/api/items")),
            http("down", "http://127.0.0.1:1/")
        ),
    )
    .expect("plan");
    let out = support::run_plan_file(&dir).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{stdout}");
    assert!(stdout.contains("preflight"), "{stdout}");
    assert_eq!(testbed.requests(), 0, "the run sent no load");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn an_agent_with_too_few_files_for_its_share_fails_check_with_the_numbers() {
    let testbed = support::testbed().await;
    let coordinator = Coordinator::new(Store::in_memory().await.expect("store"));
    let url = serve(&coordinator, false).await;
    let mut agent = tokio::process::Command::new("prlimit")
        .arg("--nofile=256:256")
        .arg(support::agent_binary())
        .args([
            "--coordinator",
            &url,
            "--name",
            "small-box",
            "--allow-loopback",
        ])
        .kill_on_drop(true)
        .spawn()
        .expect("prlimit runs the agent (util-linux)");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while coordinator.registry.agent("small-box").is_none() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the agent did not connect"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let plan = format!(
        "name = \"wide\"\n[[scenario]]\nname = \"api\"\nkind = \"http\"\nurl = \"{}\"\nconnections = 1000\nduration = \"5s\"\n",
        testbed.url("/api/items")
    );
    let rows = coordinator
        .check_plan("wide.toml", &plan)
        .await
        .expect("valid plan");
    let files = rows
        .iter()
        .find(|r| r.check == loadgrade_common::preflight::CheckKind::OpenFiles)
        .expect("an open-files row");
    assert_eq!(files.status, CheckStatus::Fail, "{files:?}");
    assert_eq!(files.agent, "small-box");
    assert!(files.value.contains("limit 256"), "{}", files.value);
    assert!(
        files.value.contains("1000 connection(s)"),
        "{}",
        files.value
    );
    assert!(files.hint.contains("LimitNOFILE="), "{}", files.hint);

    // The same through the command line against the coordinator.
    let dir = tempdir();
    std::fs::write(dir.join("plan.toml"), &plan).expect("plan");
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_loadgrade"))
        .args(["check", "plan.toml", "--coordinator", &url])
        .current_dir(&dir)
        .output()
        .await
        .expect("loadgrade runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{stdout}");
    assert!(
        stdout.contains("small-box") && stdout.contains("limit 256"),
        "{stdout}"
    );
    assert_eq!(testbed.requests(), 0);
    let _ = std::fs::remove_dir_all(&dir);
    let _ = agent.kill().await;
}

/// Regression (black-box attack on issue 14): a plan that goes past a failing preflight (`preflight = "warn"`) made
/// the coordinator itself FLUSHDB and INFO a Redis every agent's allowlist refused. The coordinator has no allowlist
/// of its own: it touches a cache server only when the run's agents accepted it.
#[tokio::test]
async fn the_coordinator_does_not_touch_a_redis_its_agents_refused() {
    let Some(redis_url) = support::service_url("REDIS") else {
        return;
    };
    // A dedicated database for the marker (flush needs one that is not 0).
    let base = redis_url
        .rsplit_once('/')
        .map_or(redis_url.as_str(), |(b, _)| b);
    let url = format!("{base}/9");
    let client = redis::Client::open(url.as_str()).expect("url");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    let marker = format!("loadgrade-test-marker-{}", std::process::id());
    let _: () = redis::cmd("SET")
        .arg(&marker)
        .arg("keep me")
        .query_async(&mut conn)
        .await
        .expect("SET");
    // Agents that may load 127.0.0.2 only: the Redis on 127.0.0.1 is outside their allowlist.
    let embedded = loadgrade_coordinator::embedded::Embedded::start_with(
        Store::in_memory().await.expect("store"),
        1,
        |config| {
            config.allowlist = loadgrade_agent::Allowlist::new(false, &["127.0.0.2".to_owned()])
                .expect("allowlist");
        },
    )
    .await
    .expect("embedded");
    let plan = format!(
        "name = \"refused-redis\"\npreflight = \"warn\"\n[[scenario]]\nname = \"cache\"\nkind = \"cache\"\nmode = \"redis\"\n\
         redis = \"{url}\"\nflush = true\norigin = \"http://127.0.0.2:1/?key={{key}}\"\nkey_space = 10\nconnections = 1\n\
         duration = \"1s\"\n"
    );
    let finished = support::run_plan(&embedded, &plan).await;
    let exists: bool = redis::cmd("EXISTS")
        .arg(&marker)
        .query_async(&mut conn)
        .await
        .expect("EXISTS");
    let _: () = redis::cmd("DEL")
        .arg(&marker)
        .query_async(&mut conn)
        .await
        .expect("DEL");
    assert!(exists, "the coordinator flushed a Redis its agents refused");
    assert!(
        finished
            .json
            .contains("the coordinator does not touch a server its agents may not reach"),
        "the report says why the server's figures are not measured"
    );
    embedded.stop().await;
}

/// Regression (black-box attack on issue 14): when the reader of standard output went away (`| grep -q`, `| head`),
/// a failing command exited 0, and CI took it for a pass.
#[test]
fn a_closed_standard_output_keeps_the_failing_exit_code() {
    let dir = tempdir();
    std::fs::write(
        dir.join("plan.toml"),
        "name = \"dead\"\n[[scenario]]\nname = \"down\"\nkind = \"http\"\nurl = \"http://127.0.0.1:1/\"\nconnections = 1\nduration = \"2s\"\n",
    )
    .expect("plan");
    for args in [
        &["check", "plan.toml"][..],
        &[
            "run",
            "plan.toml",
            "--quiet",
            "--database",
            "sqlite://runs.db",
        ][..],
    ] {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_loadgrade"))
            .args(args)
            .current_dir(&dir)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("loadgrade runs");
        // The reader goes away before anything is written.
        drop(child.stdout.take());
        let status = child.wait().expect("exits");
        assert_eq!(
            status.code(),
            Some(2),
            "{args:?}: the failed preflight's code, not 0"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
