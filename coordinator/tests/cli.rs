//! The `loadgrade` binary: bad input exits 2 with a message naming file, line and column; an unreachable target
//! produces a report with connect errors counted (verdict INVALID, exit 4), not a crash; too few agents end the
//! run without load; `submit` drives a coordinator server over gRPC.

mod support;

use std::path::{Path, PathBuf};
use std::process::Output;

fn loadgrade(args: &[&str], cwd: &Path) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_loadgrade"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("loadgrade runs")
}

/// `loadgrade run plan.toml` with one agent, reports in `report/`, history in `runs.db`.
fn run_with_one_agent(dir: &Path) -> Output {
    loadgrade(
        &[
            "run",
            "plan.toml",
            "--agents",
            "1",
            "--out",
            "report",
            "--database",
            "sqlite://runs.db",
        ],
        dir,
    )
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("loadgrade-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

const PLAN: &str = r#"name = "cli"
[[scenario]]
name = "api"
kind = "http"
url = "http://127.0.0.1:9/"
duration = "2s"
thresholds = ["latency_ms.p95 < 300"]
"#;

fn expect_plan_error(name: &str, plan: &str, located: &str) {
    let dir = scratch(name);
    std::fs::write(dir.join("plan.toml"), plan).expect("write plan");
    for command in [
        &["validate", "plan.toml"][..],
        &["run", "plan.toml", "--database", "sqlite://x.db"][..],
    ] {
        let out = loadgrade(command, &dir);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{command:?}: {stderr}");
        assert!(
            stderr.contains(located),
            "{command:?}: expected {located:?} in:\n{stderr}"
        );
    }
    assert!(!dir.join("x.db").exists(), "an invalid plan starts nothing");
}

#[test]
fn unknown_plan_key_exits_2_with_its_location() {
    expect_plan_error(
        "unknown-key",
        &PLAN.replace("duration", "durration"),
        "plan.toml:6:1: unknown field `durration`",
    );
}

#[test]
fn bad_duration_exits_2_with_its_location() {
    expect_plan_error(
        "bad-duration",
        &PLAN.replace("\"2s\"", "\"2 fortnights\""),
        "plan.toml:6:12: invalid duration \"2 fortnights\"",
    );
}

/// Regression (issue 7): two stages of "500000000000y" overflowed a sum and `validate` panicked (exit 101).
#[test]
fn stages_longer_than_a_run_exit_2_with_their_location() {
    expect_plan_error(
        "huge-stages",
        &PLAN.replace(
            "duration = \"2s\"",
            "rate = 5\nstages = [{ rate = 5, duration = \"500000000000y\" }, { rate = 5, duration = \"500000000000y\" }]",
        ),
        "plan.toml:7:34: \"500000000000y\" is longer than a run may last (7 days at most)",
    );
}

/// Regression (issue 7): a duration this long validated and then panicked the run after shards were assigned.
#[test]
fn a_duration_longer_than_a_run_exits_2_with_its_location() {
    expect_plan_error(
        "huge-duration",
        &PLAN.replace("\"2s\"", "\"1000000d\""),
        "plan.toml:6:12: \"1000000d\" is longer than a run may last (7 days at most)",
    );
}

/// Regression (issue 7): `loadgrade runs | head -3` panicked on the closed pipe.
#[test]
fn output_to_a_closed_pipe_ends_quietly() {
    let dir = scratch("pipe");
    let db = dir.join("runs.db");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let store =
            loadgrade_coordinator::store::Store::open(&format!("sqlite://{}", db.display()))
                .await
                .expect("store");
        // More than a pipe buffer (64 KiB) of lines, so the writer outlives the reader.
        for i in 0..2000 {
            store
                .insert_run(
                    &format!("run-{i:04}"),
                    "p",
                    "p.toml",
                    "",
                    "2026-11-27T00:00:00Z",
                    None,
                )
                .await
                .expect("run");
        }
    });
    let out = std::process::Command::new("bash")
        .args([
            "-c",
            &format!(
                "set -o pipefail; {} runs --limit 2000 --database sqlite://{} | head -3",
                env!("CARGO_BIN_EXE_loadgrade"),
                db.display()
            ),
        ])
        .output()
        .expect("bash runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 3);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
}

#[test]
fn threshold_on_unknown_metric_exits_2_with_its_location() {
    expect_plan_error(
        "unknown-metric",
        &PLAN.replace("latency_ms.p95", "latency.p95"),
        "plan.toml:7:15: threshold \"latency.p95 < 300\" names unknown metric \"latency.p95\"",
    );
}

#[test]
fn missing_plan_file_exits_2() {
    let dir = scratch("missing");
    let out = loadgrade(&["validate", "nope.toml"], &dir);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read plan nope.toml"));
}

#[test]
fn valid_plan_validates() {
    let dir = scratch("valid");
    std::fs::write(dir.join("plan.toml"), PLAN).expect("write plan");
    let out = loadgrade(&["validate", "plan.toml"], &dir);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("valid plan \"cli\" with 1 scenario(s)"));
}

#[test]
fn unreachable_target_gives_a_report_with_connect_errors() {
    let dir = scratch("unreachable");
    // Port 9 (discard) on loopback: nothing listens, every connect is refused.
    // A run that studies an unreachable target on purpose: its preflight warns instead of stopping it.
    let plan = PLAN.replacen(
        "name = \"cli\"\n",
        "name = \"cli\"\npreflight = \"warn\"\n",
        1,
    );
    std::fs::write(dir.join("plan.toml"), plan).expect("write plan");
    let out = run_with_one_agent(&dir);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(4),
        "INVALID: nothing was measured\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("verdict: INVALID"), "{stdout}");
    let json =
        std::fs::read_to_string(dir.join("report/report.json")).expect("report.json written");
    support::assert_schema_valid(&json);
    let report: loadgrade_common::report::Report =
        serde_json::from_str(&json).expect("report parses");
    let m = support::http_metrics(&report, "api");
    assert!(
        m.errors_by_class.connect > 0,
        "connect errors counted: {m:?}"
    );
    assert_eq!(m.errors_by_class.connect, m.requests);
    assert!(m.latency_ms.is_none(), "no latency was measured");
    assert_eq!(report.scenarios[0].thresholds[0].actual, None);
    assert!(
        !report.scenarios[0].thresholds[0].passed,
        "a figure not measured never passes"
    );
    assert!(
        std::fs::read_to_string(dir.join("report/report.md"))
            .expect("report.md")
            .contains("not measured")
    );
    assert!(dir.join("runs.db").exists(), "the run was stored");
    let html = std::fs::read_to_string(dir.join("report/report.html")).expect("report.html");
    assert!(
        html.contains("Verdict <b>INVALID</b>") && html.contains("not measured"),
        "{html}"
    );
    let junit = std::fs::read_to_string(dir.join("report/junit.xml")).expect("junit.xml");
    assert!(
        junit.contains(
            "<error message=\"latency_ms.p95 &lt; 300: not measured\" type=\"not_measured\""
        ),
        "{junit}"
    );
    assert!(
        junit.contains("<error message=") && junit.contains("type=\"INVALID\""),
        "{junit}"
    );

    // History: the run is listed, and its report can be written again from the store, with the same exit code.
    let listed = loadgrade(&["runs", "--database", "sqlite://runs.db"], &dir);
    assert_eq!(listed.status.code(), Some(0));
    let listing = String::from_utf8_lossy(&listed.stdout);
    assert!(
        listing.contains(&report.run_id) && listing.contains("INVALID"),
        "{listing}"
    );
    let again = loadgrade(
        &[
            "report",
            &report.run_id,
            "--out",
            "again",
            "--database",
            "sqlite://runs.db",
        ],
        &dir,
    );
    assert_eq!(again.status.code(), Some(4));
    assert_eq!(
        std::fs::read_to_string(dir.join("again/report.json")).expect("rewritten"),
        json
    );
    let missing = loadgrade(
        &["report", "no-such-run", "--database", "sqlite://runs.db"],
        &dir,
    );
    assert_eq!(missing.status.code(), Some(2));
}

#[test]
fn too_few_agents_end_the_run_without_load() {
    let dir = scratch("too-few");
    let plan = PLAN.replace(
        "name = \"cli\"",
        "name = \"cli\"\nmin_agents = 3\nready_timeout = \"1s\"",
    );
    std::fs::write(dir.join("plan.toml"), plan).expect("write plan");
    let out = run_with_one_agent(&dir);
    assert_eq!(out.status.code(), Some(4));
    let json =
        std::fs::read_to_string(dir.join("report/report.json")).expect("report.json written");
    support::assert_schema_valid(&json);
    let report: loadgrade_common::report::Report =
        serde_json::from_str(&json).expect("report parses");
    assert!(
        report.verdict_reasons[0].contains("only 1 of the 3 agents"),
        "{:?}",
        report.verdict_reasons
    );
    assert!(report.agents.is_empty());
    assert!(report.scenarios[0].metrics.is_none(), "no load was sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_runs_on_a_server_and_downloads_the_report() {
    let testbed = support::testbed().await;
    let embedded = support::embedded(2).await;
    let dir = scratch("submit");
    let plan = format!(
        "name = \"submitted\"\nmin_agents = 2\n[[scenario]]\nname = \"items\"\nkind = \"http\"\nurl = \"{}\"\nrequests = 500\nconnections = 4\nthresholds = [\"success_rate == 1\"]\n",
        testbed.url("/api/items")
    );
    std::fs::write(dir.join("plan.toml"), plan).expect("write plan");
    let coordinator = format!("http://{}", embedded.addr);
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_loadgrade"))
        .args([
            "submit",
            "plan.toml",
            "--coordinator",
            &coordinator,
            "--out",
            "report",
        ])
        .current_dir(&dir)
        .output()
        .await
        .expect("submit runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("verdict: PASS"), "{stdout}");
    let json =
        std::fs::read_to_string(dir.join("report/report.json")).expect("report.json downloaded");
    support::assert_schema_valid(&json);
    assert!(dir.join("report/report.md").exists());
    assert_eq!(testbed.requests(), 500);

    // A bad plan is refused by the server with its location, exit 2.
    std::fs::write(dir.join("bad.toml"), "name = \"x\"\nmin_agent = 2\n").expect("write plan");
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_loadgrade"))
        .args(["submit", "bad.toml", "--coordinator", &coordinator])
        .current_dir(&dir)
        .output()
        .await
        .expect("submit runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("bad.toml:2:1: unknown field `min_agent`")
    );
    embedded.stop().await;
    testbed.shutdown().await;
}

/// Regression (issue 9): anyone who reached `serve` could start load. Off loopback it needs TLS and tokens, or
/// `--insecure` (which it warns about); a tokens file that holds none, or gives a token twice, is refused.
#[test]
fn serve_refuses_an_open_network_listener_and_bad_tokens() {
    let dir = scratch("serve-refusals");
    let out = loadgrade(
        &[
            "serve",
            "--listen",
            "0.0.0.0:0",
            "--database",
            "sqlite://s.db",
        ],
        &dir,
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("is not a loopback address") && stderr.contains("--insecure"),
        "{stderr}"
    );
    std::fs::write(dir.join("empty-tokens"), "# nothing\n").expect("write");
    std::fs::write(
        dir.join("twice"),
        "submit aaaaaaaaaaaaaaaaaaaa\nread aaaaaaaaaaaaaaaaaaaa\n",
    )
    .expect("write");
    for file in ["empty-tokens", "twice"] {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(dir.join(file), std::fs::Permissions::from_mode(0o600))
            .expect("chmod");
    }
    for (file, says) in [
        ("empty-tokens", "holds no token"),
        ("twice", "already given"),
    ] {
        let out = loadgrade(
            &[
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--database",
                "sqlite://s.db",
                "--tokens",
                file,
            ],
            &dir,
        );
        assert_eq!(out.status.code(), Some(2), "{file}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(says), "{file}: {stderr}");
    }
}
