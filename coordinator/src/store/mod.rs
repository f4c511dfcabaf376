//! The results store: runs and their interval reports in SQLite (default: `loadgrade.db` in the working
//! directory) or PostgreSQL, through sqlx's `Any` driver, schema by migrations (one set per backend). Queries are
//! checked at run time, so building needs no database. SQL is written once with `?` placeholders and numbered
//! (`$1`, ..) for PostgreSQL.

use loadgrade_common::grade::Verdict;
use loadgrade_common::run::{RunState, RunSummary, StoredReport};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};
use std::borrow::Cow;

mod intervals;
mod shards;

pub use intervals::UnfinishedRun;
pub use shards::{LateIntervals, StoredShard};

/// Default database URL: a file in the working directory.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://loadgrade.db";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("unsupported database URL {0:?}: expected sqlite://PATH or postgres://USER@HOST/DB")]
    UnsupportedUrl(String),
    #[error("database {url}: {source}")]
    Open { url: String, source: sqlx::Error },
    #[error("database migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database query: {0}")]
    Query(#[from] sqlx::Error),
    #[error("stored run {run}: {what}")]
    Corrupt { run: String, what: String },
    #[error("stored interval of run {run}: {what}")]
    CorruptInterval { run: String, what: String },
    #[error("{folder}: {source}")]
    Disk {
        folder: String,
        #[source]
        source: rustix::io::Errno,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// The SQLite file, for its free disk (preflight); `None` in memory or on PostgreSQL.
    file: Option<std::path::PathBuf>,
}

/// A run an idempotency key started before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyedRun {
    pub id: String,
    /// The plan as stored (redacted).
    pub plan_toml: String,
}

impl Store {
    /// Opens and migrates the database at `url`: `sqlite://PATH` (created if missing) or `postgres://..`.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            return Err(StoreError::UnsupportedUrl(
                loadgrade_common::plan::pagination::redacted_database_url(url),
            ));
        };
        let connect_url = match backend {
            // Create the file when missing (readable by its owner only: it holds plans and results, and sqlite
            // gives its -wal and -shm files the same mode); `sqlite::memory:` is left as it is.
            Backend::Sqlite if !url.contains(":memory:") && !url.contains("mode=") => {
                create_private(url);
                format!("{url}{}mode=rwc", if url.contains('?') { '&' } else { '?' })
            }
            _ => url.to_owned(),
        };
        let mut store = Self::connect(&connect_url, backend, 4)
            .await
            .map_err(|e| match e {
                StoreError::Query(source) => StoreError::Open {
                    // Never the password: errors reach logs and terminals.
                    url: loadgrade_common::plan::pagination::redacted_database_url(url),
                    source,
                },
                other => other,
            })?;
        if backend == Backend::Sqlite && !url.contains(":memory:") {
            let path = url
                .trim_start_matches("sqlite://")
                .trim_start_matches("sqlite:");
            store.file = Some(path.split('?').next().unwrap_or(path).into());
        }
        Ok(store)
    }

    /// Free disk where the store's file is: `None` when it has no file here (in memory, PostgreSQL).
    pub fn free_disk(&self) -> Option<Result<(std::path::PathBuf, u64), StoreError>> {
        let file = self.file.as_ref()?;
        let folder = file
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(std::path::Path::new("."));
        Some(
            rustix::fs::statvfs(folder)
                .map(|s| (file.clone(), s.f_bavail.saturating_mul(s.f_frsize)))
                .map_err(|source| StoreError::Disk {
                    folder: folder.display().to_string(),
                    source,
                }),
        )
    }

    /// The run `key` started, if any.
    pub async fn run_by_key(&self, key: &str) -> Result<Option<KeyedRun>, StoreError> {
        let row =
            sqlx::query(&self.sql("SELECT id, plan_toml FROM runs WHERE idempotency_key = ?"))
                .bind(key)
                .fetch_optional(&self.pool)
                .await?;
        Ok(match row {
            Some(row) => Some(KeyedRun {
                id: row.try_get("id")?,
                plan_toml: row.try_get("plan_toml")?,
            }),
            None => None,
        })
    }

    /// A private in-memory SQLite database (tests).
    pub async fn in_memory() -> Result<Store, StoreError> {
        // One connection: every connection to :memory: is a different database.
        Self::connect("sqlite::memory:", Backend::Sqlite, 1).await
    }

    async fn connect(url: &str, backend: Backend, connections: u32) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let mut options = AnyPoolOptions::new().max_connections(connections);
        if backend == Backend::Sqlite && !url.contains(":memory:") {
            // WAL with synchronous = NORMAL (a per-connection setting): a commit survives the coordinator's death
            // and is fsynced at the next checkpoint rather than at every interval. FULL's fsync per stored
            // interval held a run's intake to ~650 intervals/s on a 2-core box (bench/README.md, issue 14): at
            // 1,000 agents acknowledgements fell 12 s behind. What an OS crash or power loss can take is the last
            // commits before a checkpoint, of a run that ends INTERRUPTED anyway.
            options = options.after_connect(|conn, _| {
                Box::pin(async move {
                    sqlx::query("PRAGMA synchronous = NORMAL")
                        .execute(conn)
                        .await
                        .map(|_| ())
                })
            });
        }
        let pool = options.connect(url).await?;
        match backend {
            Backend::Sqlite => {
                if !url.contains(":memory:") {
                    sqlx::query("PRAGMA journal_mode = WAL")
                        .execute(&pool)
                        .await?;
                }
                sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
            }
            Backend::Postgres => sqlx::migrate!("./migrations/postgres").run(&pool).await?,
        }
        Ok(Store {
            pool,
            backend,
            file: None,
        })
    }

    /// `sql` with its `?` placeholders as this backend wants them.
    fn sql(&self, sql: &'static str) -> Cow<'static, str> {
        match self.backend {
            Backend::Sqlite => Cow::Borrowed(sql),
            Backend::Postgres => {
                let mut out = String::with_capacity(sql.len() + 16);
                let mut n = 0;
                for c in sql.chars() {
                    if c == '?' {
                        n += 1;
                        out.push_str(&format!("${n}"));
                    } else {
                        out.push(c);
                    }
                }
                Cow::Owned(out)
            }
        }
    }

    pub async fn insert_run(
        &self,
        id: &str,
        plan_name: &str,
        plan_file: &str,
        plan_toml: &str,
        started_at: &str,
        idempotency_key: Option<&str>,
    ) -> Result<(), StoreError> {
        sqlx::query(&self.sql(
            "INSERT INTO runs (id, plan_name, plan_file, plan_toml, state, started_at, idempotency_key) \
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        ))
        .bind(id)
        .bind(plan_name)
        .bind(plan_file)
        .bind(plan_toml)
        .bind(RunState::Queued.as_str())
        .bind(started_at)
        .bind(idempotency_key)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn set_state(&self, id: &str, state: RunState) -> Result<(), StoreError> {
        sqlx::query(&self.sql("UPDATE runs SET state = ? WHERE id = ?"))
            .bind(state.as_str())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn finish_run(
        &self,
        id: &str,
        state: RunState,
        verdict: Verdict,
        finished_at: &str,
        report_json: &str,
        report_md: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(&self.sql(
            "UPDATE runs SET state = ?, verdict = ?, finished_at = ?, report_json = ?, report_md = ? WHERE id = ?",
        ))
        .bind(state.as_str())
        .bind(verdict.to_string())
        .bind(finished_at)
        .bind(report_json)
        .bind(report_md)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A finished run's reports; `None` for an unknown run or one without a report yet.
    pub async fn report(&self, id: &str) -> Result<Option<StoredReport>, StoreError> {
        let row =
            sqlx::query(&self.sql("SELECT verdict, report_json, report_md FROM runs WHERE id = ?"))
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        let Some(row) = row else { return Ok(None) };
        let (Some(verdict), Some(json), Some(markdown)) = (
            row.try_get::<Option<String>, _>("verdict")?,
            row.try_get::<Option<String>, _>("report_json")?,
            row.try_get::<Option<String>, _>("report_md")?,
        ) else {
            return Ok(None);
        };
        Ok(Some(StoredReport {
            verdict: parse_verdict(id, &verdict)?,
            json,
            markdown,
        }))
    }

    /// One run's summary; `None` when unknown.
    pub async fn run(&self, id: &str) -> Result<Option<RunSummary>, StoreError> {
        let row = sqlx::query(
            &self.sql("SELECT id, plan_name, state, verdict, started_at FROM runs WHERE id = ?"),
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(summary).transpose()
    }

    /// The newest runs first.
    pub async fn runs(&self, limit: u32) -> Result<Vec<RunSummary>, StoreError> {
        let rows = sqlx::query(&self.sql(
            "SELECT id, plan_name, state, verdict, started_at FROM runs ORDER BY started_at DESC, id DESC LIMIT ?",
        ))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(summary).collect()
    }
}

fn parse_verdict(run: &str, text: &str) -> Result<Verdict, StoreError> {
    text.parse().map_err(|e: String| StoreError::Corrupt {
        run: run.to_owned(),
        what: e,
    })
}

fn summary(row: &AnyRow) -> Result<RunSummary, StoreError> {
    let id: String = row.try_get("id")?;
    let state: String = row.try_get("state")?;
    let verdict: Option<String> = row.try_get("verdict")?;
    Ok(RunSummary {
        state: state
            .parse()
            .map_err(
                |e: loadgrade_common::run::UnknownState| StoreError::Corrupt {
                    run: id.clone(),
                    what: e.to_string(),
                },
            )?,
        verdict: verdict.map(|v| parse_verdict(&id, &v)).transpose()?,
        plan_name: row.try_get("plan_name")?,
        started_at: row.try_get("started_at")?,
        id,
    })
}

/// Creates the SQLite file of `url` with mode 0600 when it does not exist yet (an existing file keeps its mode).
fn create_private(url: &str) {
    use std::os::unix::fs::OpenOptionsExt as _;
    let path = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:")
        .split('?')
        .next()
        .unwrap_or_default();
    if path.is_empty() {
        return;
    }
    // A failure here (a missing folder, no permission) is reported by the connection that follows.
    let _ = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn rejects_other_databases_clearly() {
        let e = Store::open("mysql://x").await.expect_err("unsupported");
        assert!(e.to_string().contains("expected sqlite://PATH"), "{e}");
    }
}
