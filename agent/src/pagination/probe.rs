//! A pagination shard's preflight probe: one read-only connection, `SELECT 1`, and the table, key and columns
//! answering a query that reads no row (a table the run seeds is left to the run). No row is counted, none written.

use super::Prepared;
use super::db::{DbError, Pool};
use loadgrade_common::pagination_sql::Statements;
use loadgrade_common::plan::pagination::Backend;
use std::path::PathBuf;

/// Why a pagination target failed its preflight probe.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("SQLite file {}: its folder {} does not exist", file.display(), folder.display())]
    NoFolder { file: PathBuf, folder: PathBuf },
    #[error("cannot connect to {database}: {source}")]
    Connect {
        database: String,
        #[source]
        source: DbError,
    },
    #[error("SELECT 1 failed: {0}")]
    SelectOne(#[source] DbError),
    #[error("table {table}: the {what} cannot be read: {source}")]
    Unreadable {
        table: String,
        /// The table, its key column or the plan's columns.
        what: &'static str,
        #[source]
        source: DbError,
    },
}

impl Prepared {
    /// Preflight: one read-only connection, `SELECT 1`, and (for a table the plan does not seed) the table, key
    /// and columns answering a query that reads no row. No row is counted, none written.
    pub async fn probe(&self) -> Result<String, ProbeError> {
        let spec = &self.spec;
        let began = tokio::time::Instant::now();
        // A SQLite file the run seeds may not exist yet: opening it read-only would fail, and creating it is the
        // run's business, not the probe's.
        if spec.backend == Backend::Sqlite && spec.seed_rows.is_some() {
            let path = spec
                .database
                .trim_start_matches("sqlite://")
                .trim_start_matches("sqlite:");
            let path = std::path::Path::new(path.split('?').next().unwrap_or(path));
            if !path.exists() {
                let folder = path
                    .parent()
                    .filter(|p| !p.as_os_str().is_empty())
                    .unwrap_or(std::path::Path::new("."));
                return if folder.is_dir() {
                    Ok(format!(
                        "SQLite file {} does not exist yet: the run creates and seeds it",
                        path.display()
                    ))
                } else {
                    Err(ProbeError::NoFolder {
                        file: path.to_path_buf(),
                        folder: folder.to_path_buf(),
                    })
                };
            }
        }
        let connect = |source| ProbeError::Connect {
            database: self.shown.clone(),
            source,
        };
        let pool = Pool::connect(spec, self.password.as_deref(), 1, true)
            .await
            .map_err(connect)?;
        let checked = async {
            let mut conn = pool.acquire().await.map_err(connect)?;
            conn.execute("SELECT 1")
                .await
                .map_err(ProbeError::SelectOne)?;
            if spec.seed_rows.is_some() {
                return Ok(format!(
                    "SELECT 1 answered; table {} is seeded by the run",
                    spec.table
                ));
            }
            let statements = Statements::new(spec);
            for (what, sql) in [
                ("table", &statements.probe_table),
                ("key column", &statements.probe_key),
                ("columns", &statements.probe_columns),
            ] {
                conn.fetch(sql, &[])
                    .await
                    .map_err(|source| ProbeError::Unreadable {
                        table: spec.table.clone(),
                        what,
                        source,
                    })?;
            }
            Ok(format!(
                "SELECT 1 answered; table {} with key {} readable",
                spec.table, spec.key
            ))
        }
        .await;
        pool.close().await;
        checked.map(|ok| format!("{ok} ({:.0} ms)", began.elapsed().as_secs_f64() * 1e3))
    }
}
