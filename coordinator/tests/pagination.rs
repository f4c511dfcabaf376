//! The pagination kind against the real PostgreSQL and MariaDB of this machine (LOADGRADE_TEST_POSTGRES_URL,
//! LOADGRADE_TEST_MYSQL_URL) and SQLite: OFFSET grows with depth while keyset stays flat, both return the same rows,
//! a bad table, key or database is a clear error while the rest of the plan runs, and read-only mode needs only
//! SELECT.

mod support;

use loadgrade_common::grade::Verdict;
use loadgrade_common::report::pagination::PaginationMetrics;
use loadgrade_common::report::{FindingKind, Report, ScenarioMetrics};

fn pagination_metrics(report: &Report, scenario: &str) -> PaginationMetrics {
    match report
        .scenarios
        .iter()
        .find(|s| s.name == scenario)
        .and_then(|s| s.metrics.clone())
    {
        Some(ScenarioMetrics::Pagination(m)) => m,
        other => panic!(
            "{scenario}: no pagination metrics: {other:?}\n{:?}",
            report.findings
        ),
    }
}

fn plan(scenarios: &str) -> String {
    format!("name = \"pagination\"\n{scenarios}")
}

/// A plan that studies failing databases on purpose: its preflight warns instead of stopping the run.
fn plan_past_preflight(scenarios: &str) -> String {
    format!("name = \"pagination\"\npreflight = \"warn\"\n{scenarios}")
}

fn scenario(name: &str, database: &str, table: &str, extra: &str) -> String {
    format!(
        "[[scenario]]\nname = \"{name}\"\nkind = \"pagination\"\ndatabase = \"{database}\"\ntable = \"{table}\"\n\
         key = \"id\"\n{extra}\n"
    )
}

/// The shape every backend must show with 200,000 rows: OFFSET at the deepest page (row 179,981) more than 10x
/// its first page, the keyset query within 3x of itself at every depth past the first, speedup at the deepest page
/// above 10.
fn assert_offset_grows_and_keyset_stays_flat(m: &PaginationMetrics) {
    let p50 = |s: Option<loadgrade_common::report::LatencyStats>| s.expect("measured").p50;
    let offsets: Vec<f64> = m.depths.iter().map(|d| p50(d.offset_ms)).collect();
    // Page 1's keyset query has no lower bound (another statement, faster still): flatness is judged past it.
    let cursors: Vec<f64> = m
        .depths
        .iter()
        .filter(|d| d.page > 1)
        .map(|d| p50(d.cursor_ms))
        .collect();
    let (first, deepest) = (offsets[0], offsets[offsets.len() - 1]);
    assert!(
        deepest > 10.0 * first,
        "OFFSET p50 by depth {offsets:?}: the deepest is not 10x the first"
    );
    let (lo, hi) = cursors
        .iter()
        .fold((f64::MAX, 0.0f64), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
    assert!(
        hi <= 3.0 * lo,
        "keyset p50 by depth {cursors:?}: not within 3x"
    );
    let speedup = m.speedup_at_deepest.expect("speedup");
    assert!(speedup > 10.0, "speedup at the deepest page {speedup}");
    assert_eq!(m.rows, Some(200_000));
    for d in &m.depths {
        assert_eq!(d.rows_per_page, 20, "page {}", d.page);
        assert_eq!(
            (d.offset_queries, d.cursor_queries),
            (10, 10),
            "page {}",
            d.page
        );
    }
}

const DEPTH_PLAN: &str =
    "seed_rows = 200000\npage_size = 20\npages = [1, 100, 1000, 9000]\niterations = 10";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_offset_grows_with_depth_and_keyset_does_not() {
    let Some(url) = support::service_url("POSTGRES") else {
        return;
    };
    let embedded = support::embedded(1).await;
    let finished = support::run_plan(
        &embedded,
        &plan(&scenario(
            "pg",
            &url,
            "loadgrade_pages_pg",
            &format!("{DEPTH_PLAN}\nexplain = true"),
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
    let m = pagination_metrics(&finished.report, "pg");
    assert_offset_grows_and_keyset_stays_flat(&m);
    assert_eq!(m.backend, "postgres");
    assert!(m.seeded);
    assert!(m.server_version.as_deref().is_some_and(|v| !v.is_empty()));
    let explain = m.explain.expect("explain = true");
    assert!(explain.offset.contains("actual time"), "{}", explain.offset);
    assert!(explain.cursor.contains("Index"), "{}", explain.cursor);
    embedded.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_mariadb_offset_grows_with_depth_and_keyset_does_not() {
    let Some(url) = support::service_url("MYSQL") else {
        return;
    };
    let embedded = support::embedded(1).await;
    let finished = support::run_plan(
        &embedded,
        &plan(&scenario(
            "maria",
            &url,
            "loadgrade_pages_maria",
            DEPTH_PLAN,
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
    let m = pagination_metrics(&finished.report, "maria");
    assert_offset_grows_and_keyset_stays_flat(&m);
    assert_eq!(m.backend, "mysql");
    embedded.stop().await;
}

/// Two agents, two connections each: one agent seeds first, then every query of both is merged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_sqlite_two_agents_merge_every_query() {
    let dir = tempdir("sqlite-agents");
    let db = format!("sqlite://{}/pages.db", dir.display());
    let embedded = support::embedded(2).await;
    let finished = support::run_plan(
        &embedded,
        &plan(&scenario(
            "lite",
            &db,
            "items",
            "seed_rows = 50000\npages = [1, 500, 2400]\niterations = 5\nconcurrency = 2\nagents = 2",
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
    let m = pagination_metrics(&finished.report, "lite");
    assert_eq!(m.agents, 2);
    for d in &m.depths {
        assert_eq!(
            (d.offset_queries, d.cursor_queries),
            (2 * 2 * 5, 2 * 2 * 5),
            "agents x connections x iterations at page {}",
            d.page
        );
    }
    assert_eq!(m.queries, 3 * 2 * 20);
    let speedup = m.speedup_at_deepest.expect("speedup");
    assert!(speedup > 2.0, "SQLite at row 47,981: speedup {speedup}");
    embedded.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

fn tempdir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "loadgrade-pagination-{name}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// A PostgreSQL table of the test's own, written with plain SQL.
async fn postgres(url: &str, statements: &[&str]) {
    let pool = sqlx::PgPool::connect(url).await.expect("postgres");
    for s in statements {
        sqlx::query(s)
            .execute(&pool)
            .await
            .unwrap_or_else(|e| panic!("{s}: {e}"));
    }
    pool.close().await;
}

/// A missing key column and a non-unique key are errors naming the problem; a table whose key has NULLs too; the
/// plan's other scenario still runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_or_non_unique_key_is_an_error_naming_it() {
    let Some(url) = support::service_url("POSTGRES") else {
        return;
    };
    postgres(
        &url,
        &[
            "DROP TABLE IF EXISTS loadgrade_dupes",
            "CREATE TABLE loadgrade_dupes (id INTEGER, code INTEGER, label TEXT)",
            "INSERT INTO loadgrade_dupes SELECT g, g % 100, 'x' FROM generate_series(1, 1000) g",
            "INSERT INTO loadgrade_dupes VALUES (NULL, 1, 'null key')",
        ],
    )
    .await;
    let testbed = support::testbed().await;
    let embedded = support::embedded(1).await;
    let pages = "pages = [1, 10]\niterations = 2";
    let finished = support::run_plan(
        &embedded,
        &plan_past_preflight(&format!(
            "{}{}{}{}[[scenario]]\nname = \"items\"\nkind = \"http\"\nurl = \"{}\"\nrequests = 20\n",
            scenario("nokey", &url, "loadgrade_dupes", &format!("{pages}\nkey = \"nope\"")).replace("key = \"id\"\n", ""),
            scenario("dupes", &url, "loadgrade_dupes", &format!("{pages}\nkey = \"code\"")).replace("key = \"id\"\n", ""),
            scenario("nulls", &url, "loadgrade_dupes", pages),
            scenario("notable", &url, "loadgrade_no_such_table", pages),
            testbed.url("/api/items"),
        )),
    )
    .await;
    support::assert_schema_valid(&finished.json);
    assert_eq!(finished.report.verdict, Verdict::Invalid);
    let failed = |scenario: &str| {
        support::finding_about(&finished.report, scenario, Some(FindingKind::AgentFailed))
    };
    let nokey = failed("nokey");
    assert!(nokey.contains("has no column \"nope\""), "{nokey}");
    let dupes = failed("dupes");
    assert!(
        dupes.contains("not unique") && dupes.contains("1001 rows, 100 distinct"),
        "{dupes}"
    );
    let nulls = failed("nulls");
    assert!(nulls.contains("NULL in 1 rows"), "{nulls}");
    let notable = failed("notable");
    assert!(
        notable.contains("\"loadgrade_no_such_table\" cannot be read")
            && notable.contains("does not exist"),
        "{notable}"
    );
    assert_eq!(
        support::http_metrics(&finished.report, "items").requests,
        20,
        "the http scenario ran"
    );
    embedded.stop().await;
    testbed.shutdown().await;
}

/// Seeding writes only into a scratch table of its own: a table with other columns, a view, or one whose keys
/// are not 1..M is refused and left as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeding_never_writes_into_a_table_that_is_not_its_own() {
    let Some(url) = support::service_url("POSTGRES") else {
        return;
    };
    postgres(
        &url,
        &[
            "DROP VIEW IF EXISTS loadgrade_foreign_view",
            "DROP TABLE IF EXISTS loadgrade_foreign",
            "DROP TABLE IF EXISTS loadgrade_sparse",
            "CREATE TABLE loadgrade_foreign (id BIGINT PRIMARY KEY, name TEXT, score INTEGER, payload TEXT, \
             tenant TEXT NOT NULL DEFAULT 'x')",
            "CREATE VIEW loadgrade_foreign_view AS SELECT id, name, score, payload FROM loadgrade_foreign",
            "CREATE TABLE loadgrade_sparse (id BIGINT PRIMARY KEY, name TEXT NOT NULL, score INTEGER NOT NULL, \
             payload TEXT NOT NULL)",
            "INSERT INTO loadgrade_sparse VALUES (1, 'a', 1, 'p'), (5, 'b', 2, 'p')",
            "DROP TABLE IF EXISTS loadgrade_domain",
            "DROP DOMAIN IF EXISTS loadgrade_text",
            "CREATE DOMAIN loadgrade_text AS TEXT CHECK (length(VALUE) < 1000)",
            "CREATE TABLE loadgrade_domain (id BIGINT PRIMARY KEY, name TEXT NOT NULL, score INTEGER NOT NULL, \
             payload loadgrade_text NOT NULL)",
            "DROP TABLE IF EXISTS loadgrade_checked",
            "CREATE TABLE loadgrade_checked (id BIGINT PRIMARY KEY, name TEXT NOT NULL, score INTEGER NOT NULL \
             CHECK (score >= 0), payload TEXT NOT NULL)",
            "DROP TABLE IF EXISTS loadgrade_trig",
            "CREATE TABLE loadgrade_trig (id BIGINT PRIMARY KEY, name TEXT NOT NULL, score INTEGER NOT NULL, \
             payload TEXT NOT NULL)",
            "CREATE OR REPLACE FUNCTION loadgrade_trig_fn() RETURNS trigger LANGUAGE plpgsql AS \
             'BEGIN RETURN NEW; END'",
            "CREATE TRIGGER loadgrade_trig_t BEFORE INSERT ON loadgrade_trig FOR EACH ROW \
             EXECUTE FUNCTION loadgrade_trig_fn()",
        ],
    )
    .await;
    let embedded = support::embedded(1).await;
    let seed = "seed_rows = 100\npages = [1]\niterations = 1";
    let finished = support::run_plan(
        &embedded,
        &plan(&format!(
            "{}{}{}{}{}{}",
            scenario("columns", &url, "loadgrade_foreign", seed),
            scenario("domain", &url, "loadgrade_domain", seed),
            scenario("checked", &url, "loadgrade_checked", seed),
            scenario("trigger", &url, "loadgrade_trig", seed),
            scenario("view", &url, "loadgrade_foreign_view", seed),
            scenario(
                "sparse",
                &url,
                "loadgrade_sparse",
                "seed_rows = 2\npages = [1]\niterations = 1"
            ),
        )),
    )
    .await;
    for (scenario, why) in [
        (
            "columns",
            "its columns are (id, name, score, payload, tenant)",
        ),
        ("view", "it is a view"),
        ("sparse", "keys 1..=5"),
        ("trigger", "1 trigger(s)"),
        ("checked", "CHECK constraint"),
        ("domain", "domain-typed"),
    ] {
        let message = support::finding_about(&finished.report, scenario, None);
        assert!(
            message.contains("is not a scratch table") && message.contains(why),
            "{message}"
        );
    }
    let pool = sqlx::PgPool::connect(&url).await.expect("postgres");
    for (table, rows) in [
        ("loadgrade_foreign", 0i64),
        ("loadgrade_sparse", 2),
        ("loadgrade_trig", 0),
        ("loadgrade_checked", 0),
        ("loadgrade_domain", 0),
    ] {
        let (n,): (i64,) = sqlx::query_as(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(&pool)
            .await
            .expect("count");
        assert_eq!(n, rows, "{table} untouched");
    }
    pool.close().await;
    embedded.stop().await;
}

/// Without seed_rows the table is only read: a role that may only SELECT runs it, and a seeding plan with that
/// role fails on the CREATE it is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_mode_needs_only_select() {
    let Some(url) = support::service_url("POSTGRES") else {
        return;
    };
    postgres(
        &url,
        &[
            "DROP TABLE IF EXISTS loadgrade_readonly",
            "CREATE TABLE loadgrade_readonly (id BIGINT PRIMARY KEY, body TEXT NOT NULL)",
            "INSERT INTO loadgrade_readonly SELECT g, md5(g::text) FROM generate_series(1, 20000) g",
            "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'loadgrade_reader') THEN \
             CREATE ROLE loadgrade_reader LOGIN; END IF; END $$",
            "REVOKE ALL ON loadgrade_readonly FROM loadgrade_reader",
            "REVOKE CREATE ON SCHEMA public FROM loadgrade_reader",
            "GRANT SELECT ON loadgrade_readonly TO loadgrade_reader",
        ],
    )
    .await;
    let reader = reader_url(&url);
    let embedded = support::embedded(1).await;
    let finished = support::run_plan(
        &embedded,
        &plan(&format!(
            "{}{}",
            scenario(
                "read",
                &reader,
                "loadgrade_readonly",
                "pages = [1, 50, 900]\niterations = 5"
            ),
            scenario(
                "write",
                &reader,
                "loadgrade_reader_scratch",
                "seed_rows = 100\npages = [1]\niterations = 1"
            ),
        )),
    )
    .await;
    support::assert_schema_valid(&finished.json);
    let m = pagination_metrics(&finished.report, "read");
    assert!(!m.seeded);
    assert_eq!(m.rows, Some(20_000));
    assert_eq!(m.errors, 0);
    assert!(m.speedup_at_deepest.is_some());
    let refused_write = support::finding_about(&finished.report, "write", None);
    assert!(
        refused_write.contains("seeding \"loadgrade_reader_scratch\" failed")
            && refused_write.contains("permission denied"),
        "{refused_write}"
    );
    embedded.stop().await;
}

/// The test URL with the reader role as its user.
fn reader_url(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a URL");
    let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    format!("{scheme}://loadgrade_reader@{host}")
}

/// An unreachable database, bad credentials and a missing table: clear errors, the password never printed, exit
/// code 4 (INVALID), no panic, the plan's other scenario reported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_and_refused_databases_are_clear_errors_without_the_password() {
    let (Some(pg), Some(maria)) = (
        support::service_url("POSTGRES"),
        support::service_url("MYSQL"),
    ) else {
        return;
    };
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("port")
        .local_addr()
        .expect("addr")
        .port();
    let testbed = support::testbed().await;
    let dir = tempdir("refused");
    let with_password = |url: &str, password: &str| {
        let (scheme, rest) = url.split_once("://").expect("a URL");
        let (user, host) = rest.rsplit_once('@').expect("user@host");
        let user = user.split(':').next().unwrap_or(user);
        format!("{scheme}://{user}:{password}@{host}")
    };
    let pages = "pages = [1, 2]\niterations = 1";
    let text = plan_past_preflight(&format!(
        "{}{}{}{}[[scenario]]\nname = \"items\"\nkind = \"http\"\nurl = \"{}\"\nrequests = 20\n",
        scenario(
            "unreachable",
            &format!("postgres://u:Unreach4ble-pw@127.0.0.1:{closed}/test"),
            "t",
            pages
        ),
        scenario(
            "badpass",
            &with_password(&maria, "Wr0ng-maria-pw"),
            "t",
            pages
        ),
        scenario(
            "nouser",
            &with_password(&pg.replace("postgres@", "loadgrade_nobody@"), "N0body-pw"),
            "t",
            pages
        ),
        scenario("notable", &pg, "loadgrade_missing_table", pages),
        testbed.url("/api/items"),
    ));
    std::fs::write(dir.join("plan.toml"), text).expect("plan");
    let out = support::run_plan_file(&dir).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "INVALID\n{stdout}\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let json = std::fs::read_to_string(dir.join("report/report.json")).expect("report");
    let markdown = std::fs::read_to_string(dir.join("report/report.md")).expect("report");
    for secret in ["Unreach4ble-pw", "Wr0ng-maria-pw", "N0body-pw"] {
        for (what, text) in [
            ("stdout", stdout.to_string()),
            ("stderr", stderr.to_string()),
            ("report.json", json.clone()),
            ("report.md", markdown.clone()),
        ] {
            assert!(!text.contains(secret), "{secret} in {what}");
        }
    }
    let report: Report = serde_json::from_str(&json).expect("parses");
    let message = |scenario: &str| support::finding_about(&report, scenario, None);
    let unreachable = message("unreachable");
    assert!(
        unreachable.contains(&format!(
            "cannot connect to postgres://u:***@127.0.0.1:{closed}/test"
        )) && unreachable.to_lowercase().contains("refused"),
        "{unreachable}"
    );
    let badpass = message("badpass");
    assert!(
        badpass.contains("cannot connect to mysql://root:***@")
            && badpass.contains("Access denied"),
        "{badpass}"
    );
    let nouser = message("nouser");
    assert!(
        nouser.contains("cannot connect to postgres://loadgrade_nobody:***@"),
        "{nouser}"
    );
    let notable = message("notable");
    assert!(
        notable.contains("\"loadgrade_missing_table\" cannot be read"),
        "{notable}"
    );
    assert_eq!(
        support::http_metrics(&report, "items").requests,
        20,
        "the http scenario ran"
    );
    testbed.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}
