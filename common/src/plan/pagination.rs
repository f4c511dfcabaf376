//! The `pagination` kind in a plan: what does OFFSET cost against keyset (cursor) pagination as pages get deep?
//! For each page depth an agent times the OFFSET query and the keyset query on a real database (PostgreSQL,
//! MySQL/MariaDB or SQLite), on an existing table used read-only or on a scratch table it seeds.

use super::ScenarioInput;
pub use super::condition::{WHERE_FUNCTIONS, where_problem};
use super::errors::Issues;
use super::fields::{self, Field};
use serde::Deserialize;
use std::time::Duration;

const DEFAULT_PAGE_SIZE: u64 = 20;
const MAX_PAGE_SIZE: u64 = 10_000;
const DEFAULT_ITERATIONS: u64 = 10;
const MAX_ITERATIONS: u64 = 100_000;
const MAX_DEPTHS: usize = 64;
const MAX_CONCURRENCY: u64 = 256;
const MAX_AGENTS: u64 = 64;
/// The most rows `seed_rows` may ask for.
pub const MAX_SEED_ROWS: u64 = 50_000_000;
/// The deepest row a page may start at.
const MAX_OFFSET: u64 = 1 << 40;
const DEFAULT_QUERY_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_MAX_DURATION: Duration = Duration::from_secs(600);

#[derive(Debug, Deserialize)]
pub(crate) struct RawPagination {
    pub database: Field<String>,
    pub password_env: Field<String>,
    pub table: Field<String>,
    pub key: Field<String>,
    pub columns: Option<Vec<toml::Spanned<String>>>,
    #[serde(rename = "where")]
    pub filter: Field<String>,
    pub page_size: Field<i64>,
    pub pages: Option<toml::Spanned<Vec<toml::Spanned<i64>>>>,
    pub seed_rows: Field<i64>,
    pub iterations: Field<i64>,
    pub concurrency: Field<i64>,
    pub agents: Field<i64>,
    pub explain: Field<bool>,
    pub query_timeout: Field<String>,
    pub max_duration: Field<String>,
}

/// The database server kind, from the URL's scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    /// MySQL or MariaDB.
    Mysql,
    Sqlite,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Postgres => "postgres",
            Backend::Mysql => "mysql",
            Backend::Sqlite => "sqlite",
        }
    }

    /// The backend a database URL names, by its scheme.
    pub fn of_url(url: &str) -> Option<Backend> {
        let scheme = url.split_once(':')?.0;
        match scheme {
            "postgres" | "postgresql" => Some(Backend::Postgres),
            "mysql" | "mariadb" => Some(Backend::Mysql),
            "sqlite" => Some(Backend::Sqlite),
            _ => None,
        }
    }
}

/// A `pagination` scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct PaginationSpec {
    /// `postgres://`, `mysql://` (or `mariadb://`) or `sqlite://PATH`. May hold a password: kept out of the store,
    /// logs and messages.
    pub database: String,
    pub backend: Backend,
    /// An environment variable, read on each agent, that holds the password.
    pub password_env: Option<String>,
    /// `name` or `schema.name`.
    pub table: String,
    /// The unique column pages are ordered by.
    pub key: String,
    /// Columns each page returns beside the key; empty: every column (`*`).
    pub columns: Vec<String>,
    /// A condition every page keeps (SQL, one expression, no `;`).
    pub filter: Option<String>,
    pub page_size: u64,
    /// Page numbers (from 1), ascending.
    pub pages: Vec<u64>,
    /// Create and fill the table with this many rows when it is missing; reuse it when it has them.
    pub seed_rows: Option<u64>,
    /// Timed runs of each query at each depth, per agent (after one untimed warm run).
    pub iterations: u64,
    /// Connections per agent running the same page mix.
    pub concurrency: u64,
    /// Agents that run it. Default: 1.
    pub agents: u64,
    /// Capture the plan of the deepest OFFSET and keyset query.
    pub explain: bool,
    /// A query taking longer is given up and counted as a timeout.
    pub query_timeout: Duration,
    /// The whole scenario (checks, seeding, every depth) stops after this.
    pub max_duration: Duration,
}

impl PaginationSpec {
    /// Checks again what validation checked, for a spec that came over the wire.
    pub fn check(&self) -> Result<(), super::Problem> {
        check_database_url(&self.database)?;
        if !is_plain_name(&self.table, true) || !is_plain_name(&self.key, false) {
            return Err(super::Problem::from(
                "the table and key must be plain names".to_owned(),
            ));
        }
        if !self.columns.iter().all(|c| is_plain_name(c, false)) || self.columns.len() > 256 {
            return Err(super::Problem::from(
                "columns must be plain names".to_owned(),
            ));
        }
        if let Some(problem) = self.filter.as_deref().and_then(where_problem) {
            return Err(super::Problem::from(problem));
        }
        let ascending = self.pages.windows(2).all(|w| w[0] < w[1]);
        let deepest_ok = self
            .pages
            .last()
            .is_some_and(|p| p.saturating_sub(1).saturating_mul(self.page_size) <= MAX_OFFSET);
        if self.pages.is_empty()
            || self.pages.len() > MAX_DEPTHS
            || !ascending
            || self.pages[0] < 1
            || !deepest_ok
        {
            return Err(super::Problem::from(format!(
                "pages must be 1 to {MAX_DEPTHS} ascending page numbers from 1"
            )));
        }
        for (what, value, max) in [
            ("page_size", self.page_size, MAX_PAGE_SIZE),
            ("iterations", self.iterations, MAX_ITERATIONS),
            ("concurrency", self.concurrency, MAX_CONCURRENCY),
            ("agents", self.agents, MAX_AGENTS),
            ("seed_rows", self.seed_rows.unwrap_or(1), MAX_SEED_ROWS),
        ] {
            if !(1..=max).contains(&value) {
                return Err(super::Problem::from(format!(
                    "{what} must be 1 to {max}, got {value}"
                )));
            }
        }
        if let Some(problem) = self
            .password_env
            .as_deref()
            .and_then(super::password_env_problem)
        {
            return Err(super::Problem::from(problem));
        }
        if self.seed_rows.is_some() && self.backend == Backend::Sqlite && self.table.contains('.') {
            return Err(super::Problem::from(
                "a SQLite scratch table is named without a schema".to_owned(),
            ));
        }
        Ok(())
    }

    /// Without `seed_rows` the table is only read: connections are opened read-only.
    pub fn read_only(&self) -> bool {
        self.seed_rows.is_none()
    }

    /// The first row of page `page` (from 0).
    pub fn offset_of(&self, page: u64) -> u64 {
        page.saturating_sub(1).saturating_mul(self.page_size)
    }
}

/// Validates a `pagination` scenario.
pub(crate) fn validate(
    input: &ScenarioInput<'_, '_>,
    issues: &mut Issues<'_>,
) -> Option<PaginationSpec> {
    let raw: RawPagination = input.table.part(issues)?;
    let (name, kind_span) = (input.name, &input.kind_span);
    let required = |issues: &mut Issues<'_>, field: &str, what: &str| {
        issues.at(
            kind_span.clone(),
            format!("scenario {name:?}: `{field}` ({what}) is required"),
        );
    };
    let database = match &raw.database {
        None => {
            required(issues, "database", "postgres://, mysql:// or sqlite:// URL");
            None
        }
        Some(d) => match check_database_url(d.get_ref()) {
            Ok(backend) => Some((d.get_ref().clone(), backend)),
            Err(e) => {
                issues.at(d.span(), e);
                None
            }
        },
    };
    let table = match &raw.table {
        None => {
            required(issues, "table", "the table to page through");
            None
        }
        Some(t) => identifier(issues, t, true),
    };
    let key = match &raw.key {
        None => {
            required(issues, "key", "the unique column pages are ordered by");
            None
        }
        Some(k) => identifier(issues, k, false),
    };
    let columns: Vec<String> = raw
        .columns
        .iter()
        .flatten()
        .filter_map(|c| identifier(issues, c, false))
        .collect();
    let filter = raw.filter.as_ref().and_then(|w| {
        let text = w.get_ref().trim();
        match where_problem(text) {
            Some(p) => {
                issues.at(w.span(), p);
                None
            }
            None => Some(text.to_owned()),
        }
    });
    let page_size = match &raw.page_size {
        None => Some(DEFAULT_PAGE_SIZE),
        Some(p) => match u64::try_from(*p.get_ref()) {
            Ok(v) if (1..=MAX_PAGE_SIZE).contains(&v) => Some(v),
            _ => {
                issues.at(p.span(), format!("page_size must be 1 to {MAX_PAGE_SIZE}"));
                None
            }
        },
    };
    let pages = match &raw.pages {
        None => {
            required(
                issues,
                "pages",
                "the page numbers to time, e.g. [1, 100, 1000]",
            );
            None
        }
        Some(list) => pages(issues, list, page_size.unwrap_or(DEFAULT_PAGE_SIZE)),
    };
    let seed_rows = raw
        .seed_rows
        .as_ref()
        .and_then(|s| match u64::try_from(*s.get_ref()) {
            Ok(v) if (1..=MAX_SEED_ROWS).contains(&v) => Some(v),
            _ => {
                issues.at(s.span(), format!("seed_rows must be 1 to {MAX_SEED_ROWS}"));
                None
            }
        });
    if let (Some(rows), Some(pages), Some(size), Some(span)) = (
        seed_rows,
        pages.as_ref(),
        page_size,
        raw.pages.as_ref().map(toml::Spanned::span),
    ) && let Some(deepest) = pages.last()
        && deepest.saturating_sub(1).saturating_mul(size) >= rows
    {
        issues.at(
            span,
            format!(
                "page {deepest} starts at row {} but seed_rows is {rows}: the deepest page must lie within the table",
                deepest.saturating_sub(1).saturating_mul(size) + 1
            ),
        );
    }
    if seed_rows.is_some() && filter.is_some() {
        issues.at(
            fields::span_or(raw.filter.as_ref(), kind_span),
            "`where` is for an existing table; a seeded table is paged whole",
        );
    }
    let bounded =
        |issues: &mut Issues<'_>, field: &Field<i64>, what: &str, default: u64, max: u64| {
            match field {
                None => Some(default),
                Some(f) => match u64::try_from(*f.get_ref()) {
                    Ok(v) if (1..=max).contains(&v) => Some(v),
                    _ => {
                        issues.at(f.span(), format!("{what} must be 1 to {max}"));
                        None
                    }
                },
            }
        };
    let iterations = bounded(
        issues,
        &raw.iterations,
        "iterations",
        DEFAULT_ITERATIONS,
        MAX_ITERATIONS,
    );
    let concurrency = bounded(issues, &raw.concurrency, "concurrency", 1, MAX_CONCURRENCY);
    let agents = bounded(issues, &raw.agents, "agents", 1, MAX_AGENTS);
    let query_timeout =
        fields::duration(issues, raw.query_timeout.as_ref()).unwrap_or(DEFAULT_QUERY_TIMEOUT);
    let max_duration =
        fields::duration(issues, raw.max_duration.as_ref()).unwrap_or(DEFAULT_MAX_DURATION);
    for (field, value) in [
        ("query_timeout", query_timeout),
        ("max_duration", max_duration),
    ] {
        if value < Duration::from_millis(1) {
            issues.at(
                kind_span.clone(),
                format!("scenario {name:?}: {field} must be at least 1ms"),
            );
        }
    }
    let password_env = raw.password_env.as_ref().and_then(|p| {
        let problem = super::password_env_problem(p.get_ref());
        if let Some(problem) = &problem {
            issues.at(p.span(), problem.clone());
        }
        problem.is_none().then(|| p.get_ref().clone())
    });
    let (database, backend) = database?;
    if backend == Backend::Sqlite && password_env.is_some() {
        issues.at(
            fields::span_or(raw.password_env.as_ref(), kind_span),
            "SQLite has no password",
        );
    }
    Some(PaginationSpec {
        database,
        backend,
        password_env,
        table: table?,
        key: key?,
        columns,
        filter,
        page_size: page_size?,
        pages: pages?,
        seed_rows,
        iterations: iterations?,
        concurrency: concurrency?,
        agents: agents?,
        explain: raw.explain.as_ref().is_some_and(|e| *e.get_ref()),
        query_timeout,
        max_duration,
    })
}

/// Page numbers: at least one, each from 1, strictly ascending, at most [`MAX_DEPTHS`].
fn pages(
    issues: &mut Issues<'_>,
    list: &toml::Spanned<Vec<toml::Spanned<i64>>>,
    page_size: u64,
) -> Option<Vec<u64>> {
    if list.get_ref().is_empty() || list.get_ref().len() > MAX_DEPTHS {
        issues.at(
            list.span(),
            format!("pages must list 1 to {MAX_DEPTHS} page numbers"),
        );
        return None;
    }
    let mut out: Vec<u64> = Vec::new();
    for p in list.get_ref() {
        match u64::try_from(*p.get_ref()) {
            Ok(v) if v >= 1 && v.saturating_sub(1).saturating_mul(page_size) <= MAX_OFFSET => {
                if out.last().is_some_and(|last| *last >= v) {
                    issues.at(p.span(), "pages must be in ascending order, each once");
                    return None;
                }
                out.push(v);
            }
            _ => {
                issues.at(
                    p.span(),
                    format!("a page number is a whole number from 1 (its first row at most {MAX_OFFSET})"),
                );
                return None;
            }
        }
    }
    Some(out)
}

/// A table or column name: letters, digits and `_`, not starting with a digit, at most 63 bytes; a table may be
/// `schema.name`. Kept this plain so a name can never change a query's meaning.
pub fn is_plain_name(text: &str, qualified: bool) -> bool {
    let plain = |part: &str| {
        !part.is_empty()
            && part.len() <= 63
            && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !part.starts_with(|c: char| c.is_ascii_digit())
    };
    match text.split_once('.') {
        Some((schema, name)) => qualified && plain(schema) && plain(name),
        None => plain(text),
    }
}

fn identifier(
    issues: &mut Issues<'_>,
    field: &toml::Spanned<String>,
    qualified: bool,
) -> Option<String> {
    let text = field.get_ref();
    if is_plain_name(text, qualified) {
        Some(text.clone())
    } else {
        issues.at(
            field.span(),
            format!(
                "{text:?} is not a plain name: letters, digits and _, not starting with a digit, at most 63{}",
                if qualified { " (schema.table allowed)" } else { "" }
            ),
        );
        None
    }
}

/// Query parameters a database URL may carry (each backend ignores the others').
/// (MySQL's `timezone`, `charset` and `collation` are not among them: sqlx writes them into a statement unescaped.)
const URL_PARAMETERS: &[&str] = &["sslmode", "ssl-mode", "application_name", "connect_timeout"];

/// A URL's parts after `scheme://`: the user part (up to the last `@`, so a password holding `/`, `?` or `#`
/// stays in it) and the rest (host, port, path, query).
pub fn split_user_part(rest: &str) -> (Option<&str>, &str) {
    match rest.rfind('@') {
        Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
        None => (None, rest),
    }
}

/// A database URL loadgrade can page through. Errors never repeat the URL: it may hold a password.
pub fn check_database_url(url: &str) -> Result<Backend, super::Problem> {
    let backend = Backend::of_url(url).ok_or(
        "the database URL must start with postgres://, mysql:// (mariadb://) or sqlite://",
    )?;
    // Parsed as sqlx parses it (the url crate), so what is checked is what the driver will read.
    let parsed = url::Url::parse(url).map_err(|_| {
        "the database URL does not parse (percent-encode any `@ : / ? #` in the user name or password)".to_owned()
    })?;
    if backend == Backend::Sqlite && url.contains('?') {
        return Err(super::Problem::from(
            "a SQLite URL takes no parameters".to_owned(),
        ));
    }
    if backend != Backend::Sqlite {
        for (name, value) in parsed.query_pairs() {
            let plain = value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
            if !URL_PARAMETERS.contains(&name.as_ref()) || !plain {
                // Neither name nor value is echoed: either may be a password.
                return Err(super::Problem::from(format!(
                    "the database URL may only carry the parameters {} with plain values (letters, digits, _ - .): \
                     a password goes in the URL's user part or in password_env",
                    URL_PARAMETERS.join(", ")
                )));
            }
        }
    }
    match backend {
        Backend::Sqlite => {
            let path = url
                .strip_prefix("sqlite://")
                .or_else(|| url.strip_prefix("sqlite:"))
                .unwrap_or("");
            let path = path.split('?').next().unwrap_or("");
            if path.is_empty() || path == ":memory:" {
                return Err(
                    super::Problem::from("a SQLite database must be a file (sqlite://PATH): an in-memory one is private to one connection"
                        .to_owned()),
                );
            }
            if path.starts_with("file:") || path.contains('%') {
                // sqlx opens SQLite in URI mode: a file: URI or an encoded `?` would carry parameters.
                return Err(super::Problem::from(
                    "a SQLite URL is a plain path (no file: URI, no %-encoding): sqlite://PATH"
                        .to_owned(),
                ));
            }
            if path
                .split('/')
                .next()
                .is_some_and(|first| first.contains('@'))
            {
                return Err(super::Problem::from(
                    "a SQLite URL has no user or password: sqlite://PATH".to_owned(),
                ));
            }
            if ![".db", ".sqlite", ".sqlite3"]
                .iter()
                .any(|ext| path.ends_with(ext))
            {
                return Err(super::Problem::from(
                    "a SQLite database file's name must end in .db, .sqlite or .sqlite3".to_owned(),
                ));
            }
        }
        Backend::Postgres | Backend::Mysql => {
            if parsed.host_str().is_none_or(str::is_empty) {
                return Err(super::Problem::from(
                    "the database URL has no host".to_owned(),
                ));
            }
            if parsed.fragment().is_some() {
                return Err(super::Problem::from(
                    "the database URL has a `#` part: percent-encode it in a password".to_owned(),
                ));
            }
        }
    }
    Ok(backend)
}

/// The database URL for messages: its password replaced by `***`.
pub fn redacted_database_url(url: &str) -> String {
    if url.starts_with("sqlite:") {
        return url.to_owned();
    }
    let Some((scheme, rest)) = url.split_once("://") else {
        return "(a database URL)".to_owned();
    };
    // As the driver reads it, when it parses; else everything up to the last '@' is taken for the user part.
    if let Ok(parsed) = url::Url::parse(url)
        && let Some(host) = parsed.host_str()
    {
        let user = match (parsed.username(), parsed.password()) {
            ("", None) => String::new(),
            (name, None) => format!("{name}@"),
            (name, Some(_)) => format!("{name}:***@"),
        };
        let port = parsed.port().map(|p| format!(":{p}")).unwrap_or_default();
        return format!("{scheme}://{user}{host}{port}{}", parsed.path());
    }
    let (user, after) = split_user_part(rest);
    // The query may carry a password too (?password=..): left out.
    let host_path = after.split(['?', '#']).next().unwrap_or_default();
    match user.map(|u| u.split_once(':').map_or(u, |(name, _password)| name)) {
        Some(name) if user.is_some_and(|u| u.contains(':')) => {
            format!("{scheme}://{name}:***@{host_path}")
        }
        Some(name) => format!("{scheme}://{name}@{host_path}"),
        None => format!("{scheme}://{host_path}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// Any text, however odd, gets an answer from the `where` check and the URL checks: no panic, no endless
        /// loop (the lexer always moves forward).
        #[test]
        fn the_checks_answer_any_text(text in "[ -~\\t\\n\\u{a0}é\"'`()]{0,80}") {
            let _ = check_database_url(&format!("postgres://{text}"));
            let _ = redacted_database_url(&format!("mysql://{text}"));
        }
    }

    #[test]
    fn database_urls_are_redacted_and_checked() {
        assert_eq!(
            redacted_database_url("postgres://app:s3cret@db:5432/shop?sslmode=disable"),
            "postgres://app:***@db:5432/shop"
        );
        assert_eq!(
            redacted_database_url("mysql://root@127.0.0.1:3306/test"),
            "mysql://root@127.0.0.1:3306/test"
        );
        assert_eq!(
            redacted_database_url("sqlite://pages.db"),
            "sqlite://pages.db"
        );
        assert_eq!(
            redacted_database_url("postgres://u:SEC@127.0.0.1:5432/test@x"),
            "postgres://u:***@127.0.0.1:5432/test@x"
        );
        for odd in [
            "postgres://u:SEC/RET@h/db",
            "postgres://u:SEC#RET@h/db",
            "postgres://u:SEC?RET@h/db",
        ] {
            assert_eq!(redacted_database_url(odd), "postgres://u:***@h/db", "{odd}");
            if let Err(e) = check_database_url(odd) {
                assert!(!e.0.contains("RET") && !e.0.contains("SEC"), "{e}");
            }
        }
        assert_eq!(
            check_database_url("postgresql://h/db"),
            Ok(Backend::Postgres)
        );
        assert_eq!(check_database_url("mariadb://h/db"), Ok(Backend::Mysql));
        assert_eq!(
            check_database_url("postgres://h/db?sslmode=disable"),
            Ok(Backend::Postgres)
        );
        for bad in [
            "postgres://h/db?password=pw",
            "postgres://h/db?sslmode=disable&PASSWORD=pw",
            "postgres://h/db?sslmode=disable;password=pw",
            "mysql://h/db?timezone=%2B00%3A00'%3B",
            "mysql://root@h:3306/test?timezone=%2B00%3A00'%3B&z=@y",
            "postgres://h/db?options=-c%20x%3Dy&z=@y",
            "sqlite://u:pw@/tmp/x.db",
            "sqlite:///etc/passwd",
            "sqlite://file:/tmp/s.db%3Fvfs%3Dbogus%26x%3D.db",
            "sqlite:///tmp/a%3Fmode%3Dmemory.db",
            "http://h",
            "sqlite::memory:",
            "sqlite://",
            "postgres:///db",
            "postgres://u:pw@/db",
        ] {
            let e = check_database_url(bad).expect_err(bad);
            assert!(!e.0.contains("pw"), "{e}");
        }
    }
}
