//! The statements a pagination scenario sends (agents send them; reports show them), per backend: names quoted (they are plain names, checked twice),
//! values always bound as parameters, so one prepared statement serves every depth.

use crate::plan::pagination::{Backend, PaginationSpec};

/// Every statement of one scenario.
#[derive(Debug, Clone)]
pub struct Statements {
    /// `... ORDER BY key LIMIT n OFFSET $1`.
    pub offset: String,
    /// Page 1 by keyset: no lower bound yet.
    pub cursor_first: String,
    /// `... WHERE key > $1 ORDER BY key LIMIT n`.
    pub cursor_next: String,
    /// The key at a position: `SELECT key ... ORDER BY key LIMIT 1 OFFSET $1`.
    pub key_at: String,
    /// The table exists: `SELECT * ... WHERE 1 = 0`.
    pub probe_table: String,
    /// The key column exists.
    pub probe_key: String,
    /// The selected columns exist.
    pub probe_columns: String,
    /// `COUNT(*)`, `COUNT(key)`, `COUNT(DISTINCT key)` over the rows pages run through.
    pub count: String,
}

/// A name quoted for `backend`; a `schema.table` name part by part.
pub fn quote(backend: Backend, name: &str) -> String {
    let q = match backend {
        Backend::Mysql => '`',
        Backend::Postgres | Backend::Sqlite => '"',
    };
    name.split('.')
        .map(|part| format!("{q}{part}{q}"))
        .collect::<Vec<_>>()
        .join(".")
}

/// The placeholder of parameter 1.
fn param(backend: Backend) -> &'static str {
    match backend {
        Backend::Postgres => "$1",
        Backend::Mysql | Backend::Sqlite => "?",
    }
}

impl Statements {
    pub fn new(spec: &PaginationSpec) -> Statements {
        let b = spec.backend;
        let table = format!("{} AS t0", quote(b, &spec.table));
        let key = format!("t0.{}", quote(b, &spec.key));
        let columns = if spec.columns.is_empty() {
            "t0.*".to_owned()
        } else {
            spec.columns
                .iter()
                .map(|c| format!("t0.{}", quote(b, c)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let select = format!("SELECT {key}, {columns} FROM {table}");
        let filter = spec.filter.as_deref().map(|f| format!("({f})"));
        let where_only = filter
            .as_deref()
            .map(|f| format!(" WHERE {f}"))
            .unwrap_or_default();
        let after = match &filter {
            Some(f) => format!(" WHERE {f} AND {key} > {}", param(b)),
            None => format!(" WHERE {key} > {}", param(b)),
        };
        let n = spec.page_size;
        let p = param(b);
        Statements {
            offset: format!("{select}{where_only} ORDER BY {key} LIMIT {n} OFFSET {p}"),
            cursor_first: format!("{select}{where_only} ORDER BY {key} LIMIT {n}"),
            cursor_next: format!("{select}{after} ORDER BY {key} LIMIT {n}"),
            key_at: format!(
                "SELECT {key} FROM {table}{where_only} ORDER BY {key} LIMIT 1 OFFSET {p}"
            ),
            probe_table: format!("SELECT * FROM {table} WHERE 1 = 0"),
            probe_key: format!("SELECT {key} FROM {table} WHERE 1 = 0"),
            probe_columns: format!("{select} WHERE 1 = 0"),
            count: format!(
                "SELECT COUNT(*), COUNT({key}), COUNT(DISTINCT {key}) FROM {table}{where_only}"
            ),
        }
    }
}

/// How to ask `backend` for its plan of a statement, and which column holds the text. MariaDB's `ANALYZE`
/// runs the statement like PostgreSQL's `EXPLAIN ANALYZE`; MySQL 8's `EXPLAIN ANALYZE` too; SQLite only plans.
pub fn explain(backend: Backend, server_version: &str, statement: &str) -> (String, String, usize) {
    match backend {
        Backend::Postgres => (
            "EXPLAIN (ANALYZE, BUFFERS)".to_owned(),
            format!("EXPLAIN (ANALYZE, BUFFERS) {statement}"),
            0,
        ),
        Backend::Mysql if server_version.contains("MariaDB") => (
            "ANALYZE FORMAT=JSON".to_owned(),
            format!("ANALYZE FORMAT=JSON {statement}"),
            0,
        ),
        Backend::Mysql => (
            "EXPLAIN ANALYZE".to_owned(),
            format!("EXPLAIN ANALYZE {statement}"),
            0,
        ),
        Backend::Sqlite => (
            "EXPLAIN QUERY PLAN (a plan; SQLite does not time it)".to_owned(),
            format!("EXPLAIN QUERY PLAN {statement}"),
            3,
        ),
    }
}

/// The server's version.
pub fn version_query(backend: Backend) -> &'static str {
    match backend {
        Backend::Postgres => "SHOW server_version",
        Backend::Mysql => "SELECT VERSION()",
        Backend::Sqlite => "SELECT sqlite_version()",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_quote_names_and_bind_values() {
        let spec = PaginationSpec {
            database: "postgres://h/db".into(),
            backend: Backend::Postgres,
            password_env: None,
            table: "shop.items".into(),
            key: "id".into(),
            columns: vec!["name".into()],
            filter: Some("active".into()),
            page_size: 20,
            pages: vec![1, 10],
            seed_rows: None,
            iterations: 1,
            concurrency: 1,
            agents: 1,
            explain: false,
            query_timeout: std::time::Duration::from_secs(1),
            max_duration: std::time::Duration::from_secs(60),
        };
        let s = Statements::new(&spec);
        assert_eq!(
            s.offset,
            r#"SELECT t0."id", t0."name" FROM "shop"."items" AS t0 WHERE (active) ORDER BY t0."id" LIMIT 20 OFFSET $1"#
        );
        assert_eq!(
            s.cursor_next,
            r#"SELECT t0."id", t0."name" FROM "shop"."items" AS t0 WHERE (active) AND t0."id" > $1 ORDER BY t0."id" LIMIT 20"#
        );
        let mysql = Statements::new(&PaginationSpec {
            backend: Backend::Mysql,
            columns: Vec::new(),
            filter: None,
            ..spec
        });
        assert_eq!(
            mysql.cursor_next,
            "SELECT t0.`id`, t0.* FROM `shop`.`items` AS t0 WHERE t0.`id` > ? ORDER BY t0.`id` LIMIT 20"
        );
    }
}
