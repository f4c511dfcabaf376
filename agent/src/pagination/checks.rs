//! Before any query is timed: the table, its key and the plan's columns exist, and the key is unique and never
//! NULL (keyset pages skip NULLs while OFFSET counts them, and duplicates make the two disagree).

use super::Failure;
use super::db::Conn;
use loadgrade_common::pagination_sql::Statements;
use loadgrade_common::plan::pagination::PaginationSpec;

/// The table, key and columns exist, the key is unique and never NULL. Returns the rows pages run through.
pub(super) async fn check_table(
    conn: &mut Conn,
    spec: &PaginationSpec,
    s: &Statements,
) -> Result<u64, Failure> {
    conn.fetch(&s.probe_table, &[])
        .await
        .map_err(|e| Failure::NoTable {
            table: spec.table.clone(),
            why: e.to_string(),
        })?;
    conn.fetch(&s.probe_key, &[])
        .await
        .map_err(|e| Failure::NoKey {
            table: spec.table.clone(),
            key: spec.key.clone(),
            why: e.to_string(),
        })?;
    conn.fetch(&s.probe_columns, &[])
        .await
        .map_err(|e| Failure::Columns {
            table: spec.table.clone(),
            why: e.to_string(),
        })?;
    let counts = conn
        .integers(&s.count, &[])
        .await
        .map_err(|e| Failure::Query {
            what: "counting the rows".to_owned(),
            why: e.to_string(),
        })?;
    let [rows, keyed, distinct] = counts[..] else {
        return Err(Failure::Query {
            what: "counting the rows".to_owned(),
            why: "three counts did not come back".to_owned(),
        });
    };
    let (rows, keyed, distinct) = (
        u64::try_from(rows).unwrap_or(0),
        u64::try_from(keyed).unwrap_or(0),
        u64::try_from(distinct).unwrap_or(0),
    );
    if keyed != rows {
        return Err(Failure::Nulls {
            table: spec.table.clone(),
            key: spec.key.clone(),
            nulls: rows - keyed.min(rows),
        });
    }
    if distinct != rows {
        return Err(Failure::NotUnique {
            table: spec.table.clone(),
            key: spec.key.clone(),
            rows,
            distinct,
        });
    }
    if let Some(wanted) = spec.seed_rows
        && rows != wanted
    {
        return Err(Failure::SeedMismatch {
            table: spec.table.clone(),
            rows,
            wanted,
        });
    }
    Ok(rows)
}
