//! The pagination executor: a shard connects to the scenario's database (a host this agent's allowlist covers),
//! checks the table (it exists, the key column exists, is unique and never NULL, the deepest page lies within
//! it), seeds it when the plan asks, then for each depth times the OFFSET and keyset queries on `concurrency`
//! connections, after checking that both return the same keys. Figures go out as interval reports every second.

mod checks;
mod db;
mod figures;
mod probe;
mod seed;
mod timing;

pub use probe::ProbeError;

use crate::Allowlist;
use crate::cutting::Ended;
use crate::shard_io::ShardOutput;
use db::{Pool, Value};
use figures::{Cutter, Figures};
use loadgrade_common::interval::TableFacts;
use loadgrade_common::pagination_sql::{self as sql, Statements};
use loadgrade_common::plan::pagination::{Backend, PaginationSpec};
use loadgrade_common::shard::{PaginationPhase, PaginationShard};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Why a pagination shard is refused before it starts.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("the database URL does not parse: {0}")]
    Url(String),
    #[error("the database host {host} {why}")]
    Host { host: String, why: String },
    #[error(
        "a SQLite database is a file on this agent's host: this agent only runs it when its allowlist covers \
         loopback (--allow-loopback)"
    )]
    LocalFile,
    #[error("the environment variable {0} (password_env) is not set on this agent")]
    NoPassword(String),
    #[error("concurrency {wanted} is above this agent's --max-connections {cap}")]
    Connections { wanted: u64, cap: u64 },
}

/// Why a pagination shard stopped without its figures.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error("cannot connect to {database}: {why}")]
    Connect { database: String, why: String },
    #[error("table {table:?} cannot be read: {why}")]
    NoTable { table: String, why: String },
    #[error("table {table:?} has no column {key:?} (the plan's key): {why}")]
    NoKey {
        table: String,
        key: String,
        why: String,
    },
    #[error("the plan's columns cannot be read from {table:?}: {why}")]
    Columns { table: String, why: String },
    #[error(
        "the key {key:?} is not unique in {table:?}: {rows} rows, {distinct} distinct keys; keyset pages need a unique key"
    )]
    NotUnique {
        table: String,
        key: String,
        rows: u64,
        distinct: u64,
    },
    #[error(
        "the key {key:?} is NULL in {nulls} rows of {table:?}; keyset pages skip them while OFFSET counts them"
    )]
    Nulls {
        table: String,
        key: String,
        nulls: u64,
    },
    #[error("page {page} starts at row {} but {table:?} has {rows} rows{}: choose pages within the table", offset + 1, if *filtered { " matching `where`" } else { "" })]
    PagePastEnd {
        table: String,
        page: u64,
        offset: u64,
        rows: u64,
        filtered: bool,
    },
    #[error(
        "page {page}: the OFFSET query and the keyset query returned different rows ({offset_rows} vs {cursor_rows} \
         rows, first difference at row {first_difference} of the page), so the comparison at this depth is void"
    )]
    RowsDiffer {
        page: u64,
        offset_rows: usize,
        cursor_rows: usize,
        first_difference: usize,
    },
    #[error("{what} failed: {why}")]
    Query { what: String, why: String },
    #[error("seeding {table:?} failed: {why}")]
    Seed { table: String, why: String },
    #[error(
        "table {table:?} exists and is not a scratch table of loadgrade's: {why}; it was not written. Drop it or name \
         another table"
    )]
    NotSeedable { table: String, why: String },
    #[error("table {table:?} has {rows} rows, not the {wanted} seed_rows it was seeded with")]
    SeedMismatch {
        table: String,
        rows: u64,
        wanted: u64,
    },
    #[error(
        "the scenario did not finish within max_duration ({0:?}): raise it, or lower pages, iterations or seed_rows"
    )]
    TooLong(Duration),
    #[error("stopped")]
    Stopped,
}

/// A shard ready to run.
#[derive(Debug)]
pub struct Prepared {
    spec: PaginationSpec,
    phase: PaginationPhase,
    password: Option<String>,
    /// For logs: the database URL without its password.
    pub shown: String,
}

/// Checks the database is one this agent may reach and reads the password.
pub async fn prepare(
    shard: PaginationShard,
    allowlist: &Allowlist,
    max_connections: Option<u64>,
) -> Result<Prepared, Refusal> {
    let spec = shard.spec;
    let allowed = allowlist.resolve().await;
    if spec.backend == Backend::Sqlite {
        let loopback = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
        allowed.check(&[loopback]).map_err(|_| Refusal::LocalFile)?;
    } else {
        let (host, port) = host_port(&spec)?;
        let addrs: Vec<std::net::SocketAddr> = tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|e| Refusal::Host {
                host: host.clone(),
                why: format!("does not resolve: {e}"),
            })?
            .collect();
        allowed.check(&addrs).map_err(|e| Refusal::Host {
            host: host.clone(),
            why: e.to_string(),
        })?;
    }
    if let Some(cap) = max_connections
        && spec.concurrency > cap
    {
        return Err(Refusal::Connections {
            wanted: spec.concurrency,
            cap,
        });
    }
    // The spec was checked on arrival (a password_env outside LOADGRADE_ is refused there too).
    let password = match &spec.password_env {
        Some(var) => Some(std::env::var(var).map_err(|_| Refusal::NoPassword(var.clone()))?),
        None => None,
    };
    Ok(Prepared {
        shown: db::shown(&spec),
        spec,
        phase: shard.phase,
        password,
    })
}

/// The host and port the database URL names (sqlx's defaults: 5432, 3306).
fn host_port(spec: &PaginationSpec) -> Result<(String, u16), Refusal> {
    use std::str::FromStr as _;
    let url = spec.database.replacen("mariadb://", "mysql://", 1);
    let bad = |e: sqlx::Error| Refusal::Url(e.to_string().replace(&spec.database, "(the URL)"));
    match spec.backend {
        Backend::Postgres => {
            let o = sqlx::postgres::PgConnectOptions::from_str(&url).map_err(bad)?;
            if o.get_socket().is_some() {
                return Err(Refusal::Url(
                    "a unix socket is not a host the allowlist can check".into(),
                ));
            }
            Ok((o.get_host().to_owned(), o.get_port()))
        }
        Backend::Mysql => {
            let o = sqlx::mysql::MySqlConnectOptions::from_str(&url).map_err(bad)?;
            if o.get_socket().is_some() {
                return Err(Refusal::Url(
                    "a unix socket is not a host the allowlist can check".into(),
                ));
            }
            Ok((o.get_host().to_owned(), o.get_port()))
        }
        Backend::Sqlite => Err(Refusal::LocalFile),
    }
}

/// Runs the shard from `start`: returns the interval reports sent.
pub async fn run(
    prepared: Arc<Prepared>,
    start: Instant,
    output: ShardOutput,
    stop: CancellationToken,
) -> Result<u64, Failure> {
    let figures = Arc::new(Figures::default());
    let mut cutter = Cutter {
        figures: figures.clone(),
        stamp: crate::cutting::Stamp::new(output.shard, output.seq, start, output.start_unix_ms),
        threads: u32::try_from(prepared.spec.concurrency).unwrap_or(u32::MAX),
    };
    let work = execute(&prepared, &figures, &stop);
    let bound = prepared.spec.max_duration;
    let (ended, sent) = crate::cutting::drive(
        work,
        start,
        bound,
        &output.reports,
        &stop,
        |now| cutter.cut(now),
        || {},
    )
    .await;
    match ended {
        Ended::Done(Ok(()) | Err(Failure::Stopped)) | Ended::Stopped => Ok(sent),
        Ended::Done(Err(e)) => Err(e),
        Ended::TooLong => Err(Failure::TooLong(bound)),
    }
}

/// Checks, seeding, and every depth.
async fn execute(
    p: &Prepared,
    figures: &Arc<Figures>,
    stop: &CancellationToken,
) -> Result<(), Failure> {
    let spec = &p.spec;
    let seeding = spec.seed_rows.is_some() && p.phase != PaginationPhase::Measure;
    let measuring = p.phase != PaginationPhase::Seed;
    let connections = u32::try_from(spec.concurrency.saturating_add(1)).unwrap_or(u32::MAX);
    let pool = Pool::connect(spec, p.password.as_deref(), connections, !seeding)
        .await
        .map_err(|e| Failure::Connect {
            database: p.shown.clone(),
            why: e.to_string(),
        })?;
    let result = async {
        let mut conn = pool.acquire().await.map_err(|e| Failure::Connect {
            database: p.shown.clone(),
            why: e.to_string(),
        })?;
        let query = |what: &str| {
            let what = what.to_owned();
            move |e: db::DbError| Failure::Query {
                what,
                why: e.to_string(),
            }
        };
        let version = conn
            .texts(sql::version_query(spec.backend), &[], 0)
            .await
            .map_err(query("reading the server version"))?
            .into_iter()
            .next()
            .unwrap_or_default();
        if let (true, Some(rows)) = (seeding, spec.seed_rows) {
            seed::ensure(&mut conn, spec, rows, figures, stop).await?;
        }
        let statements = Arc::new(Statements::new(spec));
        let rows = checks::check_table(&mut conn, spec, &statements).await?;
        let mut facts = TableFacts {
            server_version: version.clone(),
            rows,
            seeded: spec.seed_rows.is_some(),
            ..TableFacts::default()
        };
        figures.table(facts.clone());
        if !measuring {
            return Ok(());
        }
        let mut deepest: Option<(Vec<Value>, String, Vec<Value>)> = None;
        for &page in &spec.pages {
            if stop.is_cancelled() {
                return Err(Failure::Stopped);
            }
            let offset = spec.offset_of(page);
            if offset >= rows {
                return Err(Failure::PagePastEnd {
                    table: spec.table.clone(),
                    page,
                    offset,
                    rows,
                    filtered: spec.filter.is_some(),
                });
            }
            let offset_params = vec![Value::Int(i64::try_from(offset).unwrap_or(i64::MAX))];
            let (cursor_sql, cursor_params) = if page == 1 {
                (statements.cursor_first.clone(), Vec::new())
            } else {
                let before = vec![Value::Int(i64::try_from(offset - 1).unwrap_or(i64::MAX))];
                let last = conn
                    .keys(&statements.key_at, &before)
                    .await
                    .map_err(query(&format!("reading the key before page {page}")))?;
                (
                    statements.cursor_next.clone(),
                    last.into_iter().take(1).collect(),
                )
            };
            // The untimed warm run: both queries, and the same keys in the same order, or the depth is void.
            let by_offset = conn
                .keys(&statements.offset, &offset_params)
                .await
                .map_err(query(&format!("the OFFSET query at page {page}")))?;
            let by_cursor = conn
                .keys(&cursor_sql, &cursor_params)
                .await
                .map_err(query(&format!("the keyset query at page {page}")))?;
            if by_offset != by_cursor {
                return Err(Failure::RowsDiffer {
                    page,
                    offset_rows: by_offset.len(),
                    cursor_rows: by_cursor.len(),
                    first_difference: by_offset
                        .iter()
                        .zip(&by_cursor)
                        .position(|(a, b)| a != b)
                        .unwrap_or(by_offset.len().min(by_cursor.len()))
                        + 1,
                });
            }
            figures.rows_per_page(page, u64::try_from(by_offset.len()).unwrap_or(u64::MAX));
            timing::time_depth(
                &pool,
                spec,
                page,
                &statements,
                &offset_params,
                &cursor_sql,
                &cursor_params,
                figures,
                stop,
            )
            .await?;
            deepest = Some((offset_params, cursor_sql, cursor_params));
        }
        if spec.explain
            && let Some((offset_params, cursor_sql, cursor_params)) = deepest
        {
            let (method, offset_explain, column) =
                sql::explain(spec.backend, &version, &statements.offset);
            let (_, cursor_explain, _) = sql::explain(spec.backend, &version, &cursor_sql);
            let text = |lines: Vec<String>| lines.join("\n");
            facts.explain_method = method;
            facts.explain_offset = conn
                .texts(&offset_explain, &offset_params, column)
                .await
                .map(text)
                .unwrap_or_else(|e| format!("EXPLAIN failed: {e}"));
            facts.explain_cursor = conn
                .texts(&cursor_explain, &cursor_params, column)
                .await
                .map(text)
                .unwrap_or_else(|e| format!("EXPLAIN failed: {e}"));
            figures.table(facts);
        }
        Ok(())
    }
    .await;
    pool.close().await;
    result
}
