//! Seeding a scratch table: `key BIGINT PRIMARY KEY, name, score, payload` (about 130 bytes a row), keys 1..=N,
//! filled by COPY on PostgreSQL and multi-row INSERTs elsewhere, its progress reported every interval. A table
//! that already has exactly N such rows is reused; one that does not look like ours is never touched.

use super::Failure;
use super::db::{Conn, DbError, Value};
use super::figures::Figures;
use loadgrade_common::pagination_sql::quote;
use loadgrade_common::plan::pagination::{Backend, PaginationSpec};
use tokio_util::sync::CancellationToken;

/// Rows per COPY (PostgreSQL) or per INSERT statement (elsewhere).
const COPY_ROWS: u64 = 20_000;
const INSERT_ROWS: u64 = 2_000;
/// SQLite: INSERTs per transaction.
const SQLITE_BATCHES_PER_COMMIT: u64 = 10;
const PAYLOAD_CHARS: usize = 100;

/// The columns of a row `n`, as the seeded table holds them.
fn row(n: u64) -> (u64, String, u64, String) {
    let mut payload = format!("payload {n} ");
    while payload.len() < PAYLOAD_CHARS {
        payload.push(char::from(
            b'a' + u8::try_from(payload.len() % 26).unwrap_or(0),
        ));
    }
    (n, format!("item {n}"), n.wrapping_mul(7919) % 1000, payload)
}

/// Makes `spec.table` hold exactly `wanted` seeded rows. Returns the rows it inserted.
pub async fn ensure(
    conn: &mut Conn,
    spec: &PaginationSpec,
    wanted: u64,
    figures: &Figures,
    stop: &CancellationToken,
) -> Result<u64, Failure> {
    let b = spec.backend;
    let table = quote(b, &spec.table);
    let key = quote(b, &spec.key);
    let (name, score, payload) = (quote(b, "name"), quote(b, "score"), quote(b, "payload"));
    let text = match b {
        Backend::Mysql => "VARCHAR(200)",
        Backend::Postgres | Backend::Sqlite => "TEXT",
    };
    let key_type = match b {
        // SQLite: the rowid itself.
        Backend::Sqlite => "INTEGER",
        Backend::Postgres | Backend::Mysql => "BIGINT",
    };
    let seed = |why: DbError| Failure::Seed {
        table: spec.table.clone(),
        why: why.to_string(),
    };
    match existing(conn, spec).await.map_err(seed)? {
        None => conn
            .execute(&format!(
                "CREATE TABLE {table} ({key} {key_type} PRIMARY KEY, {name} {text} NOT NULL, \
                 {score} INTEGER NOT NULL, {payload} {text} NOT NULL)"
            ))
            .await
            .map_err(seed)?,
        Some(found) => {
            let ours = [spec.key.as_str(), "name", "score", "payload"];
            let why = if !found.base_table {
                Some("it is a view, not a table".to_owned())
            } else if !found.owned {
                Some("it belongs to another role".to_owned())
            } else if found.triggers > 0 {
                Some(format!(
                    "it has {} trigger(s), rule(s), CHECK constraint(s), partition(s), inheritance, domain-typed \
                     column(s), expression or partial index(es) or extended statistics, which a seeding could set off",
                    found.triggers
                ))
            } else if found.columns != ours {
                Some(format!(
                    "its columns are ({}), not the scratch table's ({})",
                    found.columns.join(", "),
                    ours.join(", ")
                ))
            } else {
                None
            };
            if let Some(why) = why {
                return Err(Failure::NotSeedable {
                    table: spec.table.clone(),
                    why,
                });
            }
        }
    }
    let counts = conn
        .integers(
            &format!(
                "SELECT COUNT(*), COALESCE(MIN({key}), 0), COALESCE(MAX({key}), 0) FROM {table}"
            ),
            &[],
        )
        .await
        .map_err(seed)?;
    let (rows, min_key, max_key) = match counts[..] {
        [rows, min, max] => (u64::try_from(rows).unwrap_or(0), min, max),
        _ => return Err(seed(DbError::NoRowCount)),
    };
    // Ours holds keys 1..=rows: reused when that is 1..=wanted, filled up when it is fewer.
    let dense = rows == 0 || (min_key == 1 && i64::try_from(rows).ok() == Some(max_key));
    if rows == wanted && dense {
        return Ok(0);
    }
    if rows > wanted || !dense {
        return Err(Failure::NotSeedable {
            table: spec.table.clone(),
            why: format!(
                "it holds {rows} rows with keys {min_key}..={max_key}, not {wanted} seeded rows (keys 1..={wanted})"
            ),
        });
    }
    let columns = format!("{key}, {name}, {score}, {payload}");
    let mut next = rows + 1;
    let mut batches = 0u64;
    if b == Backend::Sqlite {
        conn.execute("BEGIN").await.map_err(seed)?;
    }
    while next <= wanted {
        if stop.is_cancelled() {
            break;
        }
        let per = if b == Backend::Postgres {
            COPY_ROWS
        } else {
            INSERT_ROWS
        };
        let last = next.saturating_add(per - 1).min(wanted);
        match b {
            Backend::Postgres => {
                let mut data =
                    Vec::with_capacity(usize::try_from((last - next + 1) * 140).unwrap_or(0));
                for n in next..=last {
                    let (k, name, score, payload) = row(n);
                    data.extend_from_slice(format!("{k}\t{name}\t{score}\t{payload}\n").as_bytes());
                }
                conn.copy_in(&format!("COPY {table} ({columns}) FROM STDIN"), data)
                    .await
                    .map_err(seed)?;
            }
            Backend::Mysql | Backend::Sqlite => {
                let values: Vec<String> = (next..=last)
                    .map(|n| {
                        let (k, name, score, payload) = row(n);
                        format!("({k}, '{name}', {score}, '{payload}')")
                    })
                    .collect();
                conn.execute(&format!(
                    "INSERT INTO {table} ({columns}) VALUES {}",
                    values.join(", ")
                ))
                .await
                .map_err(seed)?;
                batches += 1;
                if b == Backend::Sqlite && batches.is_multiple_of(SQLITE_BATCHES_PER_COMMIT) {
                    conn.execute("COMMIT").await.map_err(seed)?;
                    conn.execute("BEGIN").await.map_err(seed)?;
                }
            }
        }
        figures.seeded(last - rows);
        next = last + 1;
    }
    if b == Backend::Sqlite {
        conn.execute("COMMIT").await.map_err(seed)?;
    }
    if stop.is_cancelled() {
        return Err(Failure::Stopped);
    }
    // Fresh statistics, so the planner knows the table's size.
    let analyze = match b {
        Backend::Postgres => format!("ANALYZE {table}"),
        Backend::Mysql => format!("ANALYZE TABLE {table}"),
        Backend::Sqlite => "ANALYZE".to_owned(),
    };
    conn.execute(&analyze).await.map_err(seed)?;
    Ok(wanted - rows)
}

/// A table that exists: whether it is a base table, and its columns in order.
struct Existing {
    base_table: bool,
    columns: Vec<String>,
    /// PostgreSQL: owned by the connected role (elsewhere: true).
    owned: bool,
    /// What an INSERT (or the ANALYZE after it) could set off besides the insert: triggers; on PostgreSQL also
    /// rules, CHECK constraints, partitions and inheritance, columns of a domain (its CHECK), expression or partial
    /// indexes and extended statistics (each may call any function).
    triggers: u64,
}

/// What the database says `spec.table` is, if it exists.
async fn existing(conn: &mut Conn, spec: &PaginationSpec) -> Result<Option<Existing>, DbError> {
    let (schema, name) = match spec.table.split_once('.') {
        Some((schema, name)) => (Some(schema.to_owned()), name.to_owned()),
        None => (None, spec.table.clone()),
    };
    let mut params = vec![Value::Text(name)];
    let (kind_sql, columns_sql) = match spec.backend {
        Backend::Postgres | Backend::Mysql => {
            let (p1, p2, current, text) = if spec.backend == Backend::Postgres {
                ("$1", "$2", "current_schema()", "TEXT")
            } else {
                ("?", "?", "DATABASE()", "CHAR(64)")
            };
            let schema_is = match schema {
                Some(s) => {
                    params.push(Value::Text(s));
                    p2.to_owned()
                }
                None => current.to_owned(),
            };
            (
                format!(
                    "SELECT CAST(table_type AS {text}) FROM information_schema.tables \
                     WHERE table_name = {p1} AND table_schema = {schema_is}"
                ),
                format!(
                    "SELECT CAST(column_name AS {text}) FROM information_schema.columns \
                     WHERE table_name = {p1} AND table_schema = {schema_is} ORDER BY ordinal_position"
                ),
            )
        }
        Backend::Sqlite => (
            "SELECT type FROM sqlite_master WHERE name = ?".to_owned(),
            "SELECT name FROM pragma_table_info(?)".to_owned(),
        ),
    };
    let Some(kind) = conn.texts(&kind_sql, &params, 0).await?.into_iter().next() else {
        return Ok(None);
    };
    let (owned, triggers) = match spec.backend {
        Backend::Postgres => {
            let regclass = vec![Value::Text(quote(Backend::Postgres, &spec.table))];
            let found = conn
                .integers(
                    "SELECT CASE WHEN (SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = to_regclass($1)) \
                     = current_user THEN 1 ELSE 0 END, \
                     (SELECT COUNT(*) FROM pg_trigger WHERE tgrelid = to_regclass($1) AND NOT tgisinternal) + \
                     (SELECT COUNT(*) FROM pg_rewrite WHERE ev_class = to_regclass($1) AND rulename <> '_RETURN') + \
                     (SELECT COUNT(*) FROM pg_constraint WHERE conrelid = to_regclass($1) AND contype IN ('c', 't')) + \
                     (SELECT COUNT(*) FROM pg_class WHERE oid = to_regclass($1) AND relkind <> 'r') + \
                     (SELECT COUNT(*) FROM pg_inherits WHERE inhparent = to_regclass($1) OR inhrelid = to_regclass($1)) + \
                     (SELECT COUNT(*) FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid \
                      WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped AND t.typtype <> 'b') + \
                     (SELECT COUNT(*) FROM pg_index WHERE indrelid = to_regclass($1) \
                      AND (indexprs IS NOT NULL OR indpred IS NOT NULL)) + \
                     (SELECT COUNT(*) FROM pg_statistic_ext WHERE stxrelid = to_regclass($1))",
                    &regclass,
                )
                .await?;
            (
                found.first() == Some(&1),
                found.get(1).copied().unwrap_or(1),
            )
        }
        Backend::Mysql => {
            let sql = if params.len() > 1 {
                "SELECT COUNT(*) FROM information_schema.triggers WHERE event_object_table = ? \
                 AND event_object_schema = ?"
            } else {
                "SELECT COUNT(*) FROM information_schema.triggers WHERE event_object_table = ? \
                 AND event_object_schema = DATABASE()"
            };
            (
                true,
                conn.integers(sql, &params)
                    .await?
                    .first()
                    .copied()
                    .unwrap_or(1),
            )
        }
        Backend::Sqlite => {
            let sql = "SELECT COUNT(*) FROM sqlite_master WHERE type = 'trigger' AND lower(tbl_name) = lower(?)";
            (
                true,
                conn.integers(sql, &params)
                    .await?
                    .first()
                    .copied()
                    .unwrap_or(1),
            )
        }
    };
    Ok(Some(Existing {
        owned,
        triggers: u64::try_from(triggers).unwrap_or(1),
        base_table: matches!(kind.trim(), "BASE TABLE" | "table"),
        columns: conn
            .texts(&columns_sql, &params, 0)
            .await?
            .into_iter()
            .map(|c| c.trim().to_owned())
            .collect(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_plain_and_the_same_width() {
        let (k, name, _, payload) = row(123_456);
        assert_eq!((k, name.as_str()), (123_456, "item 123456"));
        assert_eq!(payload.len(), PAYLOAD_CHARS);
        assert!(
            payload
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == ' ')
        );
    }
}
