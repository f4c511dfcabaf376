//! The results store: runs and their interval reports in SQLite (default: `loadgrade.db` in the working
//! directory) through sqlx, schema by migrations. Queries are checked at run time, so building needs no database.

use loadgrade_proto::v1::IntervalReport;
use sqlx::Row;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use std::str::FromStr;

/// Default database URL: a file in the working directory.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://loadgrade.db";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "unsupported database URL {0:?}: expected sqlite://PATH (PostgreSQL comes in a later release)"
    )]
    UnsupportedUrl(String),
    #[error("database {url}: {source}")]
    Open { url: String, source: sqlx::Error },
    #[error("database migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database query: {0}")]
    Query(#[from] sqlx::Error),
}

#[derive(Debug, Clone)]
pub struct Store {
    pool: SqlitePool,
}

/// A row of `runs` for listings.
#[derive(Debug, Clone)]
pub struct RunRow {
    pub id: String,
    pub plan_name: String,
    pub state: String,
    pub verdict: Option<String>,
    pub started_at: String,
}

/// Stored reports of a finished run.
#[derive(Debug, Clone)]
pub struct StoredReport {
    pub verdict: String,
    pub json: String,
    pub markdown: String,
}

impl Store {
    /// Opens (creating if missing) and migrates the database at `url`.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        if !url.starts_with("sqlite:") {
            return Err(StoreError::UnsupportedUrl(url.to_owned()));
        }
        let open_err = |source| StoreError::Open {
            url: url.to_owned(),
            source,
        };
        let options = SqliteConnectOptions::from_str(url)
            .map_err(open_err)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(open_err)?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        Ok(Store { pool })
    }

    /// A private in-memory database (tests).
    pub async fn in_memory() -> Result<Store, StoreError> {
        let options = SqliteConnectOptions::from_str("sqlite::memory:")?.foreign_keys(true);
        // One connection: every connection to :memory: is a different database.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        Ok(Store { pool })
    }

    pub async fn insert_run(
        &self,
        id: &str,
        plan_name: &str,
        plan_file: &str,
        plan_toml: &str,
        started_at: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO runs (id, plan_name, plan_file, plan_toml, state, started_at) VALUES (?, ?, ?, ?, 'waiting', ?)",
        )
        .bind(id)
        .bind(plan_name)
        .bind(plan_file)
        .bind(plan_toml)
        .bind(started_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn set_state(&self, id: &str, state: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE runs SET state = ? WHERE id = ?")
            .bind(state)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Stores an interval report. Returns false when this (run, agent, epoch, seq) was already stored.
    pub async fn insert_interval(&self, report: &IntervalReport) -> Result<bool, StoreError> {
        let counters = report.counters.unwrap_or_default();
        let health = report.health.clone().unwrap_or_default();
        let errors = counters.errors_connect
            + counters.errors_timeout
            + counters.errors_status_4xx
            + counters.errors_status_5xx
            + counters.errors_other;
        let counters_json = serde_json::json!({
            "requests": counters.requests, "ok": counters.ok,
            "errors_connect": counters.errors_connect, "errors_timeout": counters.errors_timeout,
            "errors_status_4xx": counters.errors_status_4xx, "errors_status_5xx": counters.errors_status_5xx,
            "errors_other": counters.errors_other, "dropped": counters.dropped,
            "bytes_received": counters.bytes_received,
        });
        let health_json = serde_json::json!({
            "cpu_percent": health.cpu_percent, "backlog_max": health.backlog_max,
        });
        let done = sqlx::query(
            "INSERT OR IGNORE INTO intervals (run_id, agent, epoch, seq, scenario, stage, start_unix_ms, duration_ms, \
             warmup, requests, errors, dropped, counters_json, health_json, hdr_corrected, hdr_raw) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&report.run_id)
        .bind(&report.agent)
        // SQLite integers are signed 64-bit: the epoch's bits are stored as they are.
        .bind(report.epoch as i64)
        .bind(report.seq as i64)
        .bind(&report.scenario)
        .bind(i64::from(report.stage))
        .bind(report.start_unix_ms)
        .bind(i64::from(report.duration_ms))
        .bind(report.warmup)
        .bind(counters.requests as i64)
        .bind(errors as i64)
        .bind(counters.dropped as i64)
        .bind(counters_json.to_string())
        .bind(health_json.to_string())
        .bind(&report.hdr_corrected)
        .bind(&report.hdr_raw)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn finish_run(
        &self,
        id: &str,
        state: &str,
        verdict: &str,
        finished_at: &str,
        report_json: &str,
        report_md: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE runs SET state = ?, verdict = ?, finished_at = ?, report_json = ?, report_md = ? WHERE id = ?",
        )
        .bind(state)
        .bind(verdict)
        .bind(finished_at)
        .bind(report_json)
        .bind(report_md)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn report(&self, id: &str) -> Result<Option<StoredReport>, StoreError> {
        let row = sqlx::query("SELECT verdict, report_json, report_md FROM runs WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.and_then(|r| {
            Some(StoredReport {
                verdict: r.try_get::<Option<String>, _>("verdict").ok()??,
                json: r.try_get::<Option<String>, _>("report_json").ok()??,
                markdown: r.try_get::<Option<String>, _>("report_md").ok()??,
            })
        }))
    }

    pub async fn runs(&self, limit: u32) -> Result<Vec<RunRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, plan_name, state, verdict, started_at FROM runs ORDER BY started_at DESC, id DESC LIMIT ?",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(RunRow {
                    id: r.try_get("id")?,
                    plan_name: r.try_get("plan_name")?,
                    state: r.try_get("state")?,
                    verdict: r.try_get("verdict")?,
                    started_at: r.try_get("started_at")?,
                })
            })
            .collect()
    }

    /// Requests per measured interval of one scenario, summed over agents, ordered by start (tests, analysis).
    pub async fn interval_requests(
        &self,
        run_id: &str,
        scenario: &str,
    ) -> Result<Vec<(i64, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT start_unix_ms, SUM(requests) AS requests FROM intervals \
             WHERE run_id = ? AND scenario = ? AND warmup = 0 GROUP BY start_unix_ms ORDER BY start_unix_ms",
        )
        .bind(run_id)
        .bind(scenario)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| Ok((r.try_get("start_unix_ms")?, r.try_get("requests")?)))
            .collect()
    }

    /// Number of stored intervals of a run.
    pub async fn interval_count(&self, run_id: &str) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM intervals WHERE run_id = ?")
            .bind(run_id)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("n")?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn interval_reports_are_stored_once() {
        let store = Store::in_memory().await.expect("store");
        store
            .insert_run(
                "r1",
                "plan",
                "plan.toml",
                "name = 'plan'",
                "2026-11-27T00:00:00Z",
            )
            .await
            .expect("run");
        let report = IntervalReport {
            run_id: "r1".into(),
            agent: "a".into(),
            epoch: u64::MAX,
            seq: 0,
            ..Default::default()
        };
        assert!(store.insert_interval(&report).await.expect("first"));
        assert!(
            !store.insert_interval(&report).await.expect("again"),
            "a re-sent report is ignored"
        );
        assert_eq!(store.interval_count("r1").await.expect("count"), 1);
        store
            .finish_run(
                "r1",
                "finished",
                "PASS",
                "2026-11-27T00:01:00Z",
                "{}",
                "# r",
            )
            .await
            .expect("finish");
        let stored = store.report("r1").await.expect("query").expect("report");
        assert_eq!(stored.verdict, "PASS");
        assert_eq!(store.runs(10).await.expect("runs")[0].id, "r1");
    }

    #[tokio::test]
    async fn rejects_other_databases_clearly() {
        let e = Store::open("mysql://x").await.expect_err("unsupported");
        assert!(e.to_string().contains("expected sqlite://PATH"), "{e}");
    }
}
