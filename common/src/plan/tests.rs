//! Plan parsing: defaults, and errors that name file, line and column.

use super::*;

const GOOD: &str = r#"
name = "release-check"
min_agents = 2
ready_timeout = "10s"

[budget]
memory = "4GiB"

[[scenario]]
name = "api"
kind = "http"
url = "http://127.0.0.1:8080/api/items"
model = "open"
rate = 200
connections = 64
duration = "30s"
warmup = "5s"
thresholds = ["latency_ms.p50 < 100", "success_rate >= 0.99"]

[[scenario]]
name = "closed"
kind = "http"
url = "http://127.0.0.1:8080/health"
requests = 1000
"#;

#[test]
fn parses_a_good_plan_with_defaults() {
    let plan = Plan::parse("good.toml", GOOD).expect("valid plan");
    assert_eq!(plan.min_agents, 2);
    assert_eq!(plan.memory_budget, Some(4 << 30));
    assert_eq!(plan.fail_below, Grade::A);
    let ScenarioSpec::Http(api) = &plan.scenarios[0].spec else {
        panic!("an http scenario")
    };
    assert_eq!(api.model, LoadModel::Open);
    assert_eq!(api.max_backlog, 1000, "5 s of arrivals at 200/s");
    assert_eq!(api.warmup, Duration::from_secs(5));
    let ScenarioSpec::Http(closed) = &plan.scenarios[1].spec else {
        panic!("an http scenario")
    };
    assert_eq!(closed.model, LoadModel::Closed);
    assert_eq!(closed.connections, 10);
    assert_eq!(closed.requests, Some(1000));
    assert_eq!(closed.request.method, "GET");
}

fn errors_of(text: &str) -> String {
    Plan::parse("plan.toml", text)
        .expect_err("plan must be rejected")
        .to_string()
}

#[test]
fn unknown_key_is_located() {
    let text = GOOD.replace("warmup = \"5s\"", "warmpu = \"5s\"");
    let e = errors_of(&text);
    assert!(
        e.starts_with("plan.toml:17:1: unknown field `warmpu`"),
        "{e}"
    );
}

#[test]
fn bad_duration_is_located() {
    let e = errors_of(&GOOD.replace("\"30s\"", "\"30 parsecs\""));
    assert!(
        e.starts_with("plan.toml:16:12: invalid duration \"30 parsecs\""),
        "{e}"
    );
}

#[test]
fn unknown_metric_is_located() {
    let e = errors_of(&GOOD.replace("latency_ms.p50", "latency_ms.p42"));
    assert!(
        e.contains("plan.toml:18:15: threshold \"latency_ms.p42 < 100\" names unknown metric"),
        "{e}"
    );
}

#[test]
fn every_problem_is_reported() {
    let text = GOOD
        .replace("\"30s\"", "\"soon\"")
        .replace("rate = 200", "rate = -3")
        .replace(
            "kind = \"http\"\nurl = \"http://127.0.0.1:8080/health\"",
            "kind = \"sonar\"",
        );
    let e = errors_of(&text);
    assert_eq!(e.lines().count(), 3, "{e}");
    assert!(
        e.contains("rate must be a whole number of at least 1, got -3"),
        "{e}"
    );
    assert!(e.contains("unknown kind \"sonar\""), "{e}");
}

#[test]
fn load_must_end_by_itself() {
    let e = errors_of(
        "name = \"x\"\n[[scenario]]\nname = \"a\"\nkind = \"http\"\nurl = \"http://127.0.0.1:1/\"\n",
    );
    assert!(e.contains("set `duration`, `stages` or `requests`"), "{e}");
}

#[test]
fn open_model_needs_a_rate() {
    let e = errors_of(
        "name = \"x\"\n[[scenario]]\nname = \"a\"\nkind = \"http\"\nmodel = \"open\"\nurl = \"http://127.0.0.1:1/\"\nduration = \"1s\"\n",
    );
    assert!(
        e.contains("plan.toml:5:9: scenario \"a\": the open model needs `rate`"),
        "{e}"
    );
}

#[test]
fn toml_syntax_errors_are_located() {
    let e = errors_of("name = \"x\"\n[[scenario]\n");
    assert!(e.starts_with("plan.toml:2:"), "{e}");
}

#[test]
fn stages_ramp_the_model_target() {
    let plan = Plan::parse(
        "ramp.toml",
        "name = \"r\"\n[[scenario]]\nname = \"a\"\nkind = \"http\"\nurl = \"http://127.0.0.1:1/\"\nrate = 50\narrivals = \"poisson\"\nstages = [{ rate = 500, duration = \"10s\" }, { rate = 500, duration = \"5s\" }]\n",
    )
    .expect("valid");
    let ScenarioSpec::Http(spec) = &plan.scenarios[0].spec else {
        panic!("an http scenario")
    };
    assert_eq!(spec.model, LoadModel::Open);
    assert_eq!(spec.arrivals, Arrivals::Poisson);
    assert_eq!(spec.duration, Some(Duration::from_secs(15)));
    assert_eq!(spec.max_backlog, 2500, "5 s at the peak rate");
    assert_eq!(spec.profile().total_in_second(14), 500);
}

#[test]
fn bad_stages_are_located() {
    let e = errors_of(
        "name = \"r\"\n[[scenario]]\nname = \"a\"\nkind = \"http\"\nurl = \"http://127.0.0.1:1/\"\nmodel = \"closed\"\nduration = \"3s\"\nstages = [{ rate = 5, duration = \"1s\" }, { connections = 3, duration = \"0s\" }]\n",
    );
    assert!(
        e.contains("plan.toml:7:12: set `duration` or `stages`, not both"),
        "{e}"
    );
    assert!(
        e.contains("plan.toml:8:11: stage without `connections`"),
        "{e}"
    );
    assert!(e.contains("closed model stage ramps `connections`"), "{e}");
    assert!(
        e.contains("a stage's duration must be longer than 0"),
        "{e}"
    );
}

const RAMP: &str = r#"
name = "capacity"
[budget]
memory = "4GiB"
[[scenario]]
name = "cap"
kind = "ramp"
url = "http://127.0.0.1:8080/api/items"
start = 50
stop = 175
step = 50
hold = "20s"
cliff = { latency_factor = 3.0, error_rate = 0.02 }
probe = { kind = "process", pid = 1234 }
stop_at_cliff = true
thresholds = ["max_concurrency >= 100", "memory_headroom >= 0.2"]
"#;

#[test]
fn a_ramp_plan_has_steps_cliff_and_probe() {
    let plan = Plan::parse("ramp.toml", RAMP).expect("valid");
    let ScenarioSpec::Ramp(ramp) = &plan.scenarios[0].spec else {
        panic!("a ramp scenario")
    };
    assert_eq!(
        ramp.steps,
        vec![50, 100, 150, 175],
        "stop is always the last step"
    );
    assert_eq!(ramp.hold, Duration::from_secs(20));
    assert_eq!(ramp.cliff.latency_factor, 3.0);
    assert_eq!(ramp.cliff.throughput_drop, 0.10, "default");
    assert_eq!(
        ramp.probe,
        Some(ProbeSpec::Process {
            pid: Some(1234),
            name: None
        })
    );
    assert!(ramp.stop_at_cliff);
    assert_eq!(ramp.step(2).connections, 150);
    assert_eq!(ramp.step(2).model, LoadModel::Closed);
    assert_eq!(
        ramp.settle,
        Duration::from_secs(1),
        "default: 1 s or 20 % of hold"
    );
    assert_eq!(
        (ramp.step(2).warmup, ramp.step(2).duration),
        (Duration::from_secs(1), Some(Duration::from_secs(19))),
        "each step settles, then the rest of hold is measured"
    );
}

#[test]
fn bad_ramps_are_located() {
    let e = errors_of(
        &RAMP
            .replace("stop = 175", "stop = 10\nrate = 5")
            .replace(
                "{ kind = \"process\", pid = 1234 }",
                "{ kind = \"process\" }",
            )
            .replace("max_concurrency", "max_concurency"),
    );
    assert!(e.contains("stop (10) is below start (50)"), "{e}");
    assert!(
        e.contains("field `rate` does not apply to kind \"ramp\""),
        "{e}"
    );
    assert!(
        e.contains("a process probe needs exactly one of `pid` and `name`"),
        "{e}"
    );
    assert!(e.contains("unknown metric \"max_concurency\""), "{e}");
}

#[test]
fn ramp_rules_and_budgets_out_of_range_are_errors() {
    let e = errors_of(
        &RAMP
            .replace(
                "latency_factor = 3.0, error_rate = 0.02",
                "latency_factor = 0.5, error_rate = 2",
            )
            .replace("memory = \"4GiB\"", "memory = \"0B\"")
            .replace(
                "{ kind = \"process\", pid = 1234 }",
                "{ kind = \"prometheus\", url = \"https://p\", query = \"q\" }",
            ),
    );
    assert!(
        e.contains("cliff.latency_factor must be a number above 1"),
        "{e}"
    );
    assert!(
        e.contains("cliff.error_rate must be a share between 0 and 1"),
        "{e}"
    );
    assert!(e.contains("the memory budget must be more than 0"), "{e}");
    assert!(e.contains("https is not supported"), "{e}");
    let e = errors_of(&RAMP.replace(
        "{ kind = \"process\", pid = 1234 }",
        "{ kind = \"cgroup\" }",
    ));
    assert!(e.contains("a cgroup probe needs `path`"), "{e}");
}

/// Regression (issue 7): two stages of "500000000000y" overflowed `Duration` in a sum and `validate` exited 101;
/// the same value as one duration validated and then panicked the run after its shards were assigned.
#[test]
fn durations_beyond_a_run_are_located_errors() {
    let e = errors_of(
        "name = \"x\"\n[[scenario]]\nname = \"a\"\nkind = \"http\"\nurl = \"http://127.0.0.1:1/\"\nrate = 5\nstages = [{ rate = 5, duration = \"500000000000y\" }, { rate = 5, duration = \"500000000000y\" }]\n",
    );
    assert!(
        e.contains(
            "plan.toml:7:34: \"500000000000y\" is longer than a run may last (7 days at most)"
        ),
        "{e}"
    );
    for field in ["duration", "warmup", "timeout"] {
        let e = errors_of(&format!(
            "name = \"x\"\n[[scenario]]\nname = \"a\"\nkind = \"http\"\nurl = \"http://127.0.0.1:1/\"\nrequests = 5\n{field} = \"1000000d\"\n"
        ));
        assert!(
            e.contains(&format!(
                "plan.toml:7:{}: \"1000000d\" is longer than a run may last",
                field.len() + 4
            )),
            "{field}: {e}"
        );
    }
    let e = errors_of(&GOOD.replace("ready_timeout = \"10s\"", "ready_timeout = \"1000000d\""));
    assert!(e.contains("plan.toml:4:17: \"1000000d\" is longer"), "{e}");
    let e = errors_of(&RAMP.replace("hold = \"20s\"", "hold = \"3d\""));
    assert!(
        e.contains("4 steps of 259200s is longer than a run may last"),
        "{e}"
    );
}

#[test]
fn a_plan_longer_than_a_run_is_an_error() {
    let scenario = |n: u32| {
        format!(
            "[[scenario]]\nname = \"s{n}\"\nkind = \"http\"\nurl = \"http://127.0.0.1:1/\"\nduration = \"3d\"\n"
        )
    };
    let text = format!(
        "name = \"x\"\n{}{}{}",
        scenario(1),
        scenario(2),
        scenario(3)
    );
    let e = errors_of(&text);
    assert_eq!(e.lines().count(), 1, "{e}");
    assert!(
        e.contains("the plan up to scenario \"s3\" is longer than a run may last"),
        "{e}"
    );
}

#[test]
fn a_field_of_no_kind_lists_what_the_kind_accepts() {
    let e = errors_of(&GOOD.replace("warmup = \"5s\"", "colour = \"blue\""));
    assert!(
        e.starts_with("plan.toml:17:1: unknown field `colour`: kind \"http\" accepts name, kind, thresholds, url"),
        "{e}"
    );
}

/// Regression (issue 8, item 3): a threshold on a figure the plan can never produce is a plan error, not a run
/// that ends INVALID.
#[test]
fn thresholds_on_figures_the_plan_never_produces_are_errors() {
    let closed = errors_of(
        &GOOD
            .replace(
                "thresholds = [\"latency_ms.p50 < 100\", \"success_rate >= 0.99\"]",
                "",
            )
            .replace(
                "requests = 1000",
                "requests = 1000\nthresholds = [\"latency_raw_ms.p99 < 5\"]",
            ),
    );
    assert!(
        closed.contains("threshold \"latency_raw_ms.p99 < 5\" can never be met: raw latency"),
        "{closed}"
    );
    let no_budget = errors_of(&RAMP.replace("[budget]\nmemory = \"4GiB\"\n", ""));
    assert!(
        no_budget.contains(
            "threshold \"memory_headroom >= 0.2\" can never be met: the plan has no [budget] memory"
        ),
        "{no_budget}"
    );
    let two_steps = errors_of(
        &RAMP
            .replace("stop = 175", "stop = 100")
            .replace("\"max_concurrency >= 100\"", "\"usl.kappa < 0.1\""),
    );
    assert!(
        two_steps.contains("the USL fit needs at least 3 steps and this ramp has 2"),
        "{two_steps}"
    );
    let no_probe = errors_of(&RAMP.replace("probe = { kind = \"process\", pid = 1234 }\n", ""));
    assert!(
        no_probe.contains("no probe in the scenario measures the target's memory"),
        "{no_probe}"
    );
}

#[test]
fn cliff_rules_and_settle_are_read_and_checked() {
    let plan = Plan::parse(
        "ramp.toml",
        &RAMP.replace(
            "cliff = { latency_factor = 3.0, error_rate = 0.02 }",
            "cliff = { latency_factor = 3.0, min_increase_ms = 5, p95_ms = 200 }\nsettle = \"2s\"",
        ),
    )
    .expect("valid");
    let ScenarioSpec::Ramp(ramp) = &plan.scenarios[0].spec else {
        panic!("a ramp scenario")
    };
    assert_eq!(
        (ramp.cliff.min_increase_ms, ramp.cliff.p95_ms),
        (5.0, Some(200.0))
    );
    assert_eq!(ramp.settle, Duration::from_secs(2));
    let e = errors_of(&RAMP.replace("hold = \"20s\"", "hold = \"20s\"\nsettle = \"20s\""));
    assert!(
        e.contains("settle (20s) must be shorter than hold (20s)"),
        "{e}"
    );
    let e = errors_of(&RAMP.replace("error_rate = 0.02", "p95_ms = -1"));
    assert!(
        e.contains("cliff.p95_ms must be a number of milliseconds above 0"),
        "{e}"
    );
}

#[test]
fn credentials_in_a_url_are_refused_without_echoing_them() {
    let text = GOOD.replacen("http://", "http://admin:hunter2@", 1);
    let errors = errors_of(&text);
    assert!(errors.contains("credentials in a url"), "{errors}");
    assert!(
        !errors.contains("hunter2"),
        "the password is echoed: {errors}"
    );
}

#[test]
fn plans_beyond_the_size_and_scenario_bounds_are_plan_errors() {
    let huge = format!("{GOOD}\n#{}\n", "x".repeat(super::MAX_PLAN_BYTES));
    assert!(errors_of(&huge).contains("a plan may be at most 1024 KiB"));
    let scenario = GOOD
        .split("[[scenario]]")
        .nth(1)
        .expect("GOOD has a scenario")
        .split("\n[[")
        .next()
        .expect("its table")
        .to_owned();
    let mut many = String::from("name = \"many\"\n");
    for i in 0..=super::MAX_SCENARIOS {
        many.push_str(&format!(
            "[[scenario]]{}\n",
            scenario.replacen("name = \"", &format!("name = \"s{i}-"), 1)
        ));
    }
    assert!(
        errors_of(&many).contains("at most 100 scenarios"),
        "{}",
        errors_of(&many)
    );
}

/// Plan text from outside never panics validation: arbitrary text, and the demo plan with random edits (so the
/// parser gets deep into valid structure before meeting the damage). The same inputs are fuzzed in fuzz/.
mod never_panics {
    use super::super::Plan;
    use proptest::prelude::*;

    const DEMO: &str = include_str!("../../../examples/demo.toml");

    /// Replacements likely to reach edge cases: huge and negative numbers, odd durations, wrong types.
    const TOKENS: [&str; 14] = [
        "0",
        "-1",
        "18446744073709551616",
        "\"500000000000y\"",
        "\"0s\"",
        "\"1ns\"",
        "[]",
        "{}",
        "\"\"",
        "1e308",
        "true",
        "\"1000000d\"",
        "[[scenario]]",
        "\"\\u0000\"",
    ];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn arbitrary_text(text in "\\PC{0,400}") {
            let _ = Plan::parse("p.toml", &text);
        }

        #[test]
        fn the_demo_plan_with_values_replaced(edits in proptest::collection::vec((any::<prop::sample::Index>(), 0..TOKENS.len()), 1..6)) {
            let mut text = DEMO.to_owned();
            for (at, token) in edits {
                // Replace the value after a random `=`.
                let equals: Vec<usize> = text.match_indices(" = ").map(|(i, _)| i).collect();
                if equals.is_empty() {
                    break;
                }
                let start = equals[at.index(equals.len())] + 3;
                let end = text[start..].find('\n').map_or(text.len(), |e| start + e);
                text.replace_range(start..end, TOKENS[token]);
            }
            let _ = Plan::parse("p.toml", &text);
        }

        #[test]
        fn the_demo_plan_cut_anywhere(cut in any::<prop::sample::Index>()) {
            let boundaries: Vec<usize> = DEMO.char_indices().map(|(i, _)| i).collect();
            let _ = Plan::parse("p.toml", &DEMO[..boundaries[cut.index(boundaries.len())]]);
        }
    }
}

#[test]
fn bad_header_names_and_values_are_refused_without_echoing_the_value() {
    let text = GOOD.replacen(
        "kind = \"http\"",
        "kind = \"http\"\nheaders = { \"bad name\" = \"x\", authorization = \"Bearer top\\nsecret-1\" }",
        1,
    );
    let errors = errors_of(&text);
    assert!(
        errors.contains("\"bad name\" is not a valid HTTP field name"),
        "{errors}"
    );
    assert!(
        errors.contains("header \"authorization\" has a control character"),
        "{errors}"
    );
    assert!(!errors.contains("secret-1"), "{errors}");
}

#[test]
fn names_are_one_printable_line() {
    let text = GOOD.replacen("name = \"", "name = \"forged\\n  - PASS ", 1);
    assert!(
        errors_of(&text).contains("plan name must be one line"),
        "{}",
        errors_of(&text)
    );
}

const PAGES: &str = r#"
name = "pages"
[[scenario]]
name = "p"
kind = "pagination"
database = "postgres://app:s3cret@127.0.0.1:5432/shop"
table = "shop.orders"
key = "id"
pages = [1, 100, 1000]
"#;

#[test]
fn a_pagination_scenario_has_defaults_and_is_read_only_without_seed_rows() {
    let plan = Plan::parse("pages.toml", PAGES).expect("valid");
    let ScenarioSpec::Pagination(p) = &plan.scenarios[0].spec else {
        panic!("a pagination scenario")
    };
    assert_eq!(p.backend, Backend::Postgres);
    assert_eq!(
        (p.page_size, p.iterations, p.concurrency, p.agents),
        (20, 10, 1, 1)
    );
    assert!(p.read_only());
    assert_eq!(p.offset_of(1000), 19_980);
    assert_eq!(p.check(), Ok(()));
}

#[test]
fn pagination_names_pages_and_conditions_are_checked_without_echoing_the_password() {
    for (from, to, expected) in [
        (
            "table = \"shop.orders\"",
            "table = \"orders; DROP TABLE x\"",
            "is not a plain name",
        ),
        ("key = \"id\"", "key = \"a.b\"", "is not a plain name"),
        ("pages = [1, 100, 1000]", "pages = [100, 1]", "ascending"),
        (
            "pages = [1, 100, 1000]",
            "pages = [0]",
            "whole number from 1",
        ),
        (
            "pages = [1, 100, 1000]",
            "pages = []",
            "1 to 64 page numbers",
        ),
        (
            "key = \"id\"",
            "key = \"id\"\nwhere = \"1=1; DELETE FROM orders\"",
            "no `;`",
        ),
        (
            "key = \"id\"",
            "key = \"id\"\nwhere = \"x = 1 -- \"",
            "no comments",
        ),
        (
            "key = \"id\"",
            "key = \"id\"\nseed_rows = 10000",
            "page 1000 starts at row 19981",
        ),
        (
            "key = \"id\"",
            "key = \"id\"\nconcurrency = 0",
            "concurrency must be 1 to 256",
        ),
        (
            "postgres://app:s3cret@127.0.0.1:5432/shop",
            "redis://app:s3cret@h",
            "must start with postgres://",
        ),
        (
            "postgres://app:s3cret@127.0.0.1:5432/shop",
            "sqlite::memory:",
            "must be a file",
        ),
    ] {
        let e = errors_of(&PAGES.replace(from, to));
        assert!(e.contains(expected), "{to}: {e}");
        assert!(!e.contains("s3cret"), "{e}");
    }
    let e = errors_of(&PAGES.replace("pages = [1, 100, 1000]\n", ""));
    assert!(e.contains("`pages`"), "{e}");
}

#[test]
fn a_stored_pagination_plan_keeps_no_database_password() {
    let stored = redact::redact_plan_text(PAGES);
    assert!(!stored.contains("s3cret"), "{stored}");
    assert!(
        stored.contains("postgres://app:***@127.0.0.1:5432/shop"),
        "{stored}"
    );
}

#[test]
fn password_env_names_only_loadgrade_variables() {
    for name in [
        "PATH",
        "AWS_SECRET_ACCESS_KEY",
        "LOADGRADE_SECRET_",
        "LOADGRADE_SUBMIT_TOKEN",
        "LOADGRADE_TOKEN",
        "loadgrade_secret_pw",
        "LOADGRADE_SECRET_A-B",
    ] {
        let e = errors_of(&PAGES.replace(
            "key = \"id\"",
            &format!("key = \"id\"\npassword_env = \"{name}\""),
        ));
        assert!(e.contains("starting with LOADGRADE_SECRET_"), "{name}: {e}");
    }
    let ok = PAGES.replace(
        "key = \"id\"",
        "key = \"id\"\npassword_env = \"LOADGRADE_SECRET_SHOP\"",
    );
    Plan::parse("pages.toml", &ok).expect("a LOADGRADE_SECRET_ variable is fine");
}

const SCRAPE: &str = r#"
name = "monitoring"
[[scenario]]
name = "scrape"
kind = "scrape"
target = "http://127.0.0.1:8080/metrics"
intervals = ["15s", "30s"]
duration = "2m"
prometheus = "prometheus"
thresholds = ["savings.prometheus_rss_bytes.saved > 0.1", "intervals.1.scrape_ms.p95 < 100"]
"#;

#[test]
fn a_scrape_scenario_has_defaults_and_bounds_each_part() {
    let plan = Plan::parse("scrape.toml", SCRAPE).expect("valid");
    let ScenarioSpec::Scrape(s) = &plan.scenarios[0].spec else {
        panic!("a scrape scenario")
    };
    let fifteen = std::time::Duration::from_secs(15);
    assert_eq!(s.intervals, vec![fifteen, fifteen * 2]);
    assert_eq!(
        (s.replicas, s.prometheus.as_deref()),
        (1, Some("prometheus"))
    );
    assert_eq!(s.timeout_at(fifteen), std::time::Duration::from_secs(10));
    assert_eq!(s.settle_at(fifteen), std::time::Duration::from_secs(45));
    assert!(s.part_bound(fifteen) > s.duration + s.settle_at(fifteen));
    assert_eq!(
        plan.scenarios[0].planned_length(),
        Some(std::time::Duration::from_secs(240))
    );
    assert_eq!(s.check(), Ok(()));
}

#[test]
fn scrape_targets_intervals_binaries_and_thresholds_are_checked() {
    for (from, to, expected) in [
        (
            "http://127.0.0.1:8080/metrics",
            "https://127.0.0.1:8080/metrics",
            "scraping over https is not supported",
        ),
        ("[\"15s\", \"30s\"]", "[]", "intervals must hold 1 to 8"),
        (
            "[\"15s\", \"30s\"]",
            "[\"15s\", \"15s\"]",
            "each interval once",
        ),
        ("[\"15s\", \"30s\"]", "[\"10ms\"]", "within 100ms to 10m"),
        (
            "duration = \"2m\"",
            "duration = \"60s\"",
            "at least three scrapes",
        ),
        (
            "prometheus = \"prometheus\"",
            "prometheus = \"/usr/bin/python3\"",
            "an agent runs no other program",
        ),
        (
            "prometheus = \"prometheus\"",
            "prometheus = \"/opt/../tmp/prometheus\"",
            "an agent runs no other program",
        ),
        (
            "prometheus = \"prometheus\"",
            "prometheus = \"prometheus\"\nreplicas = 0",
            "replicas must be 1 to 1000",
        ),
        (
            "\"intervals.1.scrape_ms.p95 < 100\"",
            "\"intervals.2.scrape_ms.p95 < 100\"",
            "intervals.2 does not exist",
        ),
        (
            "\"intervals.1.scrape_ms.p95 < 100\"",
            "\"intervals.0.target_cpu_percent < 50\"",
            "no probe in the scenario",
        ),
        (
            "prometheus = \"prometheus\"",
            "settle = \"5s\"",
            "settle is the time a Prometheus runs",
        ),
    ] {
        let errors = errors_of(&SCRAPE.replace(from, to));
        assert!(errors.contains(expected), "{to}: {errors}");
    }
    let one = errors_of(&SCRAPE.replace("[\"15s\", \"30s\"]", "[\"15s\"]"));
    assert!(
        one.contains("savings compare two intervals and the scenario has one"),
        "{one}"
    );
    let no_target = errors_of(&SCRAPE.replace("target = \"http://127.0.0.1:8080/metrics\"\n", ""));
    assert!(no_target.contains("`target`"), "{no_target}");
}

#[test]
fn a_stored_scrape_plan_keeps_no_query_value() {
    let text = SCRAPE.replace(
        "http://127.0.0.1:8080/metrics",
        "http://127.0.0.1:8080/metrics?k=SECRETQ2&token=SECRETQ1",
    );
    Plan::parse("scrape.toml", &text).expect("valid");
    let stored = super::redact::redact_plan_text(&text);
    assert!(
        !stored.contains("SECRETQ") && stored.contains("k=redacted&token=redacted"),
        "{stored}"
    );
}
