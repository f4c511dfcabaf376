//! The one place that talks to a pagination scenario's database: a pool per backend (PostgreSQL, MySQL/MariaDB,
//! SQLite through sqlx), connections opened read-only unless the scenario seeds, and the few operations the
//! scenario needs, written once for all three by the `on_conn!` macro.

use loadgrade_common::plan::pagination::{Backend, PaginationSpec, redacted_database_url};
use sqlx::pool::PoolConnection;
use sqlx::{ConnectOptions as _, Executor as _, MySql, Postgres, Row as _, Sqlite};
use std::str::FromStr as _;
use std::time::Duration;

/// A value bound to a statement or read from a key column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Int(i64),
    Text(String),
}

/// Why a database operation failed. Texts are already free of the URL's password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DbError {
    /// What the driver or the server said (the server's own message where there is one), the password replaced
    /// by `***`. Kept as text, not as the sqlx error, so no chain can print the password.
    #[error("{0}")]
    Database(String),
    #[error(
        "the key column is neither an integer nor text: pagination needs one of those to compare pages"
    )]
    KeyType,
    #[error("{0:?} is not a count")]
    NotACount(String),
    #[error("the row count did not come back")]
    NoRowCount,
    #[error("COPY is PostgreSQL's")]
    CopyNotPostgres,
}

/// A pool of connections to the scenario's database.
#[derive(Debug, Clone)]
pub enum Pool {
    Postgres(sqlx::PgPool),
    Mysql(sqlx::MySqlPool),
    Sqlite(sqlx::SqlitePool),
}

/// One connection taken from the pool.
pub enum Conn {
    Postgres(PoolConnection<Postgres>),
    Mysql(PoolConnection<MySql>),
    Sqlite(PoolConnection<Sqlite>),
}

/// Runs `$body` with `$c` bound to the connection of whichever backend `$conn` holds (`&mut *conn` is an
/// executor for all three), so each operation is written once.
macro_rules! on_conn {
    ($conn:expr, $c:ident => $body:expr) => {
        match $conn {
            Conn::Postgres($c) => $body,
            Conn::Mysql($c) => $body,
            Conn::Sqlite($c) => $body,
        }
    };
}

/// Binds `params` to a query of any backend.
macro_rules! bound {
    ($sql:expr, $params:expr) => {{
        let mut q = sqlx::query($sql);
        for p in $params {
            q = match p {
                Value::Int(i) => q.bind(*i),
                Value::Text(s) => q.bind(s.clone()),
            };
        }
        q
    }};
}

/// Column `$i` of a row as a key: an integer of any width, or text.
macro_rules! key_at {
    ($row:expr, $i:expr) => {{
        let row = $row;
        row.try_get::<i64, _>($i)
            .map(Value::Int)
            .or_else(|_| row.try_get::<i32, _>($i).map(|v| Value::Int(i64::from(v))))
            .or_else(|_| row.try_get::<i16, _>($i).map(|v| Value::Int(i64::from(v))))
            .or_else(|_| row.try_get::<String, _>($i).map(Value::Text))
            .map_err(|_| DbError::KeyType)
    }};
}

impl Pool {
    /// Connects `max_connections` at most. Read-only: every session refuses writes (PostgreSQL
    /// `default_transaction_read_only`, MySQL `SET SESSION TRANSACTION READ ONLY`, SQLite opened read-only).
    pub async fn connect(
        spec: &PaginationSpec,
        password: Option<&str>,
        max_connections: u32,
        read_only: bool,
    ) -> Result<Pool, DbError> {
        let url = spec.database.as_str();
        let in_url = url_password(url);
        let secrets: Vec<&str> = password.into_iter().chain(in_url.as_deref()).collect();
        let redact = |e: sqlx::Error| describe(&e, &secrets);
        let acquire = spec
            .query_timeout
            .clamp(Duration::from_secs(1), Duration::from_secs(30));
        Ok(match spec.backend {
            Backend::Postgres => {
                let mut options = sqlx::postgres::PgConnectOptions::from_str(url)
                    .map_err(redact)?
                    .application_name("loadgrade")
                    .disable_statement_logging();
                // The server gives up a second after the agent does, so a slow query is the agent's timeout.
                let timeout_ms = server_timeout(spec).as_millis().to_string();
                let mut settings = vec![("statement_timeout", timeout_ms)];
                if read_only {
                    settings.push(("default_transaction_read_only", "on".to_owned()));
                }
                options = options.options(settings);
                if let Some(p) = password {
                    options = options.password(p);
                }
                first_connection(&options, acquire).await.map_err(redact)?;
                Pool::Postgres(
                    sqlx::postgres::PgPoolOptions::new()
                        .max_connections(max_connections)
                        .acquire_timeout(acquire)
                        .connect_with(options)
                        .await
                        .map_err(redact)?,
                )
            }
            Backend::Mysql => {
                let url = url.replacen("mariadb://", "mysql://", 1);
                let mut options = sqlx::mysql::MySqlConnectOptions::from_str(&url)
                    .map_err(redact)?
                    .disable_statement_logging();
                if let Some(p) = password {
                    options = options.password(p);
                }
                let pool = sqlx::mysql::MySqlPoolOptions::new()
                    .max_connections(max_connections)
                    .acquire_timeout(acquire);
                // The server gives up a second after the agent does: MariaDB's max_statement_time (seconds),
                // MySQL's max_execution_time (ms, SELECTs); each server ignores the other's (the error is let go).
                let server_timeout = server_timeout(spec);
                let pool = pool.after_connect(move |conn, _| {
                    Box::pin(async move {
                        let seconds = server_timeout.as_secs_f64();
                        let millis = server_timeout.as_millis();
                        let _ = conn
                            .execute(
                                format!("SET SESSION max_statement_time = {seconds:.3}").as_str(),
                            )
                            .await;
                        let _ = conn
                            .execute(format!("SET SESSION max_execution_time = {millis}").as_str())
                            .await;
                        if read_only {
                            conn.execute("SET SESSION TRANSACTION READ ONLY").await?;
                        }
                        Ok(())
                    })
                });
                first_connection(&options, acquire).await.map_err(redact)?;
                Pool::Mysql(pool.connect_with(options).await.map_err(redact)?)
            }
            Backend::Sqlite => {
                let options = sqlx::sqlite::SqliteConnectOptions::from_str(url)
                    .map_err(redact)?
                    .read_only(read_only)
                    .create_if_missing(!read_only)
                    .busy_timeout(acquire)
                    .disable_statement_logging();
                first_connection(&options, acquire).await.map_err(redact)?;
                Pool::Sqlite(
                    sqlx::sqlite::SqlitePoolOptions::new()
                        .max_connections(max_connections)
                        .acquire_timeout(acquire)
                        .connect_with(options)
                        .await
                        .map_err(redact)?,
                )
            }
        })
    }

    pub async fn acquire(&self) -> Result<Conn, DbError> {
        let e = |e: sqlx::Error| describe(&e, &[]);
        Ok(match self {
            Pool::Postgres(p) => Conn::Postgres(p.acquire().await.map_err(e)?),
            Pool::Mysql(p) => Conn::Mysql(p.acquire().await.map_err(e)?),
            Pool::Sqlite(p) => Conn::Sqlite(p.acquire().await.map_err(e)?),
        })
    }

    pub async fn close(&self) {
        match self {
            Pool::Postgres(p) => p.close().await,
            Pool::Mysql(p) => p.close().await,
            Pool::Sqlite(p) => p.close().await,
        }
    }
}

impl Conn {
    /// Runs a statement, ignoring any rows (DDL, ANALYZE, INSERT).
    pub async fn execute(&mut self, sql: &str) -> Result<(), DbError> {
        on_conn!(self, c => sqlx::query(sql).execute(&mut **c).await.map(|_| ()))
            .map_err(|e| describe(&e, &[]))
    }

    /// Column 0 of every row, as keys.
    pub async fn keys(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Value>, DbError> {
        on_conn!(self, c => {
            let rows = bound!(sql, params)
                .fetch_all(&mut **c)
                .await
                .map_err(|e| describe(&e, &[]))?;
            rows.iter().map(|r| key_at!(r, 0)).collect()
        })
    }

    /// Every row fetched and dropped: the timed query. Returns the rows' count.
    pub async fn fetch(&mut self, sql: &str, params: &[Value]) -> Result<usize, DbError> {
        on_conn!(self, c => bound!(sql, params).fetch_all(&mut **c).await.map(|rows| rows.len()))
            .map_err(|e| describe(&e, &[]))
    }

    /// The integers of the first row (counts).
    pub async fn integers(&mut self, sql: &str, params: &[Value]) -> Result<Vec<i64>, DbError> {
        on_conn!(self, c => {
            let row = bound!(sql, params)
                .fetch_one(&mut **c)
                .await
                .map_err(|e| describe(&e, &[]))?;
            (0..row.len())
                .map(|i| match key_at!(&row, i)? {
                    Value::Int(v) => Ok(v),
                    Value::Text(t) => t.parse().map_err(|_| DbError::NotACount(t)),
                })
                .collect()
        })
    }

    /// Column `column` of every row as text (a version, an EXPLAIN).
    pub async fn texts(
        &mut self,
        sql: &str,
        params: &[Value],
        column: usize,
    ) -> Result<Vec<String>, DbError> {
        on_conn!(self, c => {
            let rows = bound!(sql, params)
                .fetch_all(&mut **c)
                .await
                .map_err(|e| describe(&e, &[]))?;
            rows.iter()
                .map(|r| {
                    r.try_get::<String, _>(column)
                        .or_else(|_| r.try_get::<Vec<u8>, _>(column).map(|b| String::from_utf8_lossy(&b).into_owned()))
                        .map_err(|e| describe(&e, &[]))
                })
                .collect()
        })
    }

    /// PostgreSQL: rows in COPY text format, sent in one COPY.
    pub async fn copy_in(&mut self, statement: &str, data: Vec<u8>) -> Result<(), DbError> {
        let Conn::Postgres(c) = self else {
            return Err(DbError::CopyNotPostgres);
        };
        let mut copy = c
            .copy_in_raw(statement)
            .await
            .map_err(|e| describe(&e, &[]))?;
        if let Err(e) = copy.send(data).await {
            let _ = copy.abort("loadgrade: sending rows failed").await;
            return Err(describe(&e, &[]));
        }
        copy.finish()
            .await
            .map(|_| ())
            .map_err(|e| describe(&e, &[]))
    }
}

/// How long the server may run one statement: a second past the agent's query timeout, and never past the
/// scenario's `max_duration` (a query the agent gave up on must not outlive the run on the server).
fn server_timeout(spec: &PaginationSpec) -> Duration {
    spec.query_timeout
        .min(spec.max_duration)
        .saturating_add(Duration::from_secs(1))
}

/// One connection opened and closed before the pool is built: a pool reports any failure to connect as its own
/// timeout, this says why (refused, unknown host, bad password).
async fn first_connection<O>(options: &O, timeout: Duration) -> Result<(), sqlx::Error>
where
    O: sqlx::ConnectOptions,
    O::Connection: Sized,
{
    use sqlx::Connection as _;
    match tokio::time::timeout(timeout, options.connect()).await {
        Ok(Ok(conn)) => conn.close().await,
        Ok(Err(e)) => Err(e),
        Err(_) => Err(sqlx::Error::Io(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("no connection within {timeout:?}"),
        ))),
    }
}

/// A sqlx error as text for people: the server's own message where there is one, never the password.
fn describe(e: &sqlx::Error, secrets: &[&str]) -> DbError {
    let mut text = match e {
        sqlx::Error::Database(db) => db.message().to_owned(),
        other => other.to_string(),
    };
    for secret in secrets.iter().filter(|s| s.len() >= 3) {
        text = text.replace(secret, "***");
    }
    DbError::Database(text)
}

/// The password a `scheme://user:password@host` URL holds, percent-decoded as sqlx reads it.
fn url_password(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let user = loadgrade_common::plan::pagination::split_user_part(rest).0?;
    let raw = user.split_once(':')?.1;
    let mut bytes = Vec::with_capacity(raw.len());
    let mut it = raw.bytes();
    while let Some(b) = it.next() {
        let hex = |b: Option<u8>| b.and_then(|b| char::from(b).to_digit(16));
        if b == b'%' {
            match (hex(it.next()), hex(it.next())) {
                (Some(h), Some(l)) => bytes.push(u8::try_from(h * 16 + l).unwrap_or(b'?')),
                _ => bytes.push(b'%'),
            }
        } else {
            bytes.push(b);
        }
    }
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

/// How the database is named in messages.
pub fn shown(spec: &PaginationSpec) -> String {
    redacted_database_url(&spec.database)
}
