//! The timed runs at one depth: `concurrency` connections, each warmed once, each running both statements
//! `iterations` times in alternating order, every query recorded (a timeout at the time given up).

use super::Failure;
use super::db::{self, Pool, Value};
use super::figures::{Ended, Figures, Query};
use loadgrade_common::pagination_sql::Statements;
use loadgrade_common::plan::pagination::PaginationSpec;
use std::sync::Arc;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// `iterations` timed runs of each query at one depth on each of `concurrency` connections (each warmed by one
/// untimed run), alternating which goes first so neither always meets a cache the other warmed.
#[allow(clippy::too_many_arguments)]
pub(super) async fn time_depth(
    pool: &Pool,
    spec: &PaginationSpec,
    page: u64,
    statements: &Arc<Statements>,
    offset_params: &[Value],
    cursor_sql: &str,
    cursor_params: &[Value],
    figures: &Arc<Figures>,
    stop: &CancellationToken,
) -> Result<(), Failure> {
    let mut tasks = JoinSet::new();
    for _ in 0..spec.concurrency {
        let pool = pool.clone();
        let statements = statements.clone();
        let offset_params = offset_params.to_vec();
        let cursor_sql = cursor_sql.to_owned();
        let cursor_params = cursor_params.to_vec();
        let figures = figures.clone();
        let stop = stop.clone();
        let (iterations, timeout) = (spec.iterations, spec.query_timeout);
        tasks.spawn(async move {
            let mut conn = pool.acquire().await?;
            let _ = conn.fetch(&statements.offset, &offset_params).await;
            let _ = conn.fetch(&cursor_sql, &cursor_params).await;
            for i in 0..iterations {
                if stop.is_cancelled() {
                    break;
                }
                let order = if i % 2 == 0 {
                    [Query::Offset, Query::Cursor]
                } else {
                    [Query::Cursor, Query::Offset]
                };
                for q in order {
                    let (sql, params) = match q {
                        Query::Offset => (statements.offset.as_str(), offset_params.as_slice()),
                        Query::Cursor => (cursor_sql.as_str(), cursor_params.as_slice()),
                    };
                    let began = Instant::now();
                    let ended = match tokio::time::timeout(timeout, conn.fetch(sql, params)).await {
                        Ok(Ok(_)) => Ended::Rows(began.elapsed()),
                        Ok(Err(_)) => Ended::Failed,
                        Err(_) => {
                            let took = began.elapsed();
                            // A connection given up mid-query is not reused.
                            drop(conn);
                            conn = pool.acquire().await?;
                            Ended::Timeout(took)
                        }
                    };
                    figures.record(page, q, ended);
                }
            }
            Ok::<(), db::DbError>(())
        });
    }
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                // The first connection worked, so a later one failing is most often the server's limit.
                return Err(Failure::Connect {
                    database: db::shown(spec),
                    why: format!(
                        "{} (while opening {} connections: concurrency {} and one for the checks; does the server's \
                         max_connections allow them?)",
                        e,
                        spec.concurrency + 1,
                        spec.concurrency
                    ),
                });
            }
            Err(e) => {
                return Err(Failure::Query {
                    what: format!("timing page {page}"),
                    why: e.to_string(),
                });
            }
        }
    }
    Ok(())
}
