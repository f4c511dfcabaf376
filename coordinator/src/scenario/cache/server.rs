//! The cache server's own view, read by the coordinator: Redis INFO (keyspace hits and misses, evictions, memory and
//! its limit) before and after the load, the run's keys deleted at the end. Errors never repeat the URL: it may
//! hold a password.

use crate::run::outbound::Outbound;
use loadgrade_common::plan::RedisCache;
use redis::AsyncCommands as _;
use std::time::Duration;

/// How long one server command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);
/// Keys deleted per command.
const DELETE_BATCH: usize = 1000;

/// Redis INFO figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Info {
    pub keyspace_hits: u64,
    pub keyspace_misses: u64,
    pub evicted_keys: u64,
    pub used_memory: u64,
    /// 0: no limit.
    pub maxmemory: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("environment variable {0} (password_env) is not set for the coordinator")]
    NoPassword(String),
    #[error("the redis server: {0}")]
    Redis(String),
    #[error(transparent)]
    Outside(#[from] crate::run::outbound::OutboundError),
    #[error("redis INFO lacks {0}")]
    Missing(&'static str),
}

fn redis_error(e: redis::RedisError) -> ServerError {
    // The socket's error or the server's own text; redis errors never hold the URL or the password.
    ServerError::Redis(e.to_string())
}

/// A connection to the plan's Redis.
pub struct Server {
    conn: redis::aio::MultiplexedConnection,
}

impl Server {
    /// Connects where `outbound` allows, to the address it has just checked (never the name again; a TLS Redis
    /// by its name for its certificate), every reply bounded ([`loadgrade_agent::redis_conn`]): a hostile Redis can
    /// fill neither the coordinator's memory nor its time.
    pub async fn connect(cache: &RedisCache, outbound: &Outbound) -> Result<Server, ServerError> {
        use redis::IntoConnectionInfo as _;
        let mut info = cache
            .url
            .as_str()
            .into_connection_info()
            .map_err(redis_error)?;
        if let Some(var) = &cache.password_env {
            let password = std::env::var(var).map_err(|_| ServerError::NoPassword(var.clone()))?;
            let settings = info.redis_settings().clone().set_password(password);
            info = info.set_redis_settings(settings);
        }
        let (host, port) = match info.addr() {
            redis::ConnectionAddr::Tcp(host, port)
            | redis::ConnectionAddr::TcpTls { host, port, .. } => (host.clone(), *port),
            _ => {
                return Err(ServerError::Redis(
                    "a unix socket Redis is not supported".to_owned(),
                ));
            }
        };
        let addrs = outbound.resolve("the cache's Redis", &host, port).await?;
        let target = loadgrade_agent::redis_conn::BoundedRedis::new(&info, addrs[0])
            .map_err(|e| ServerError::Redis(e.to_string()))?;
        let conn = target
            .connect(COMMAND_TIMEOUT)
            .await
            .map_err(|e| ServerError::Redis(e.to_string()))?;
        Ok(Server { conn })
    }

    /// INFO stats and memory.
    pub async fn info(&mut self) -> Result<Info, ServerError> {
        let text: String = redis::cmd("INFO")
            .arg("stats")
            .arg("memory")
            .query_async(&mut self.conn)
            .await
            .map_err(redis_error)?;
        parse_info(&text)
    }

    /// Empties the database of the URL (the plan's `flush`, allowed only for a named database other than 0).
    pub async fn flush_database(&mut self) -> Result<(), ServerError> {
        redis::cmd("FLUSHDB")
            .query_async::<()>(&mut self.conn)
            .await
            .map_err(redis_error)
    }

    /// Deletes every key starting with `prefix`; returns how many.
    pub async fn delete_prefix(&mut self, prefix: &str) -> Result<u64, ServerError> {
        let pattern = format!("{}*", glob_escape(prefix));
        let mut deleted = 0u64;
        let mut cursor: u64 = 0;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(DELETE_BATCH)
                .query_async(&mut self.conn)
                .await
                .map_err(redis_error)?;
            if !keys.is_empty() {
                let n: u64 = self.conn.unlink(&keys).await.map_err(redis_error)?;
                deleted += n;
            }
            if next == 0 {
                return Ok(deleted);
            }
            cursor = next;
        }
    }
}

/// A prefix made literal for SCAN MATCH.
fn glob_escape(prefix: &str) -> String {
    let mut out = String::with_capacity(prefix.len());
    for c in prefix.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn parse_info(text: &str) -> Result<Info, ServerError> {
    let field = |name: &'static str| -> Result<u64, ServerError> {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .and_then(|v| v.trim().parse().ok())
            .ok_or(ServerError::Missing(name))
    };
    Ok(Info {
        keyspace_hits: field("keyspace_hits")?,
        keyspace_misses: field("keyspace_misses")?,
        evicted_keys: field("evicted_keys")?,
        used_memory: field("used_memory")?,
        maxmemory: field("maxmemory")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_fields_are_read_by_exact_name() {
        let text = "# Memory\r\nused_memory:1024\r\nused_memory_human:1K\r\nmaxmemory:0\r\n# Stats\r\n\
                    keyspace_hits:5\r\nkeyspace_misses:7\r\nevicted_keys:2\r\n";
        assert_eq!(
            parse_info(text).expect("parses"),
            Info {
                keyspace_hits: 5,
                keyspace_misses: 7,
                evicted_keys: 2,
                used_memory: 1024,
                maxmemory: 0
            }
        );
        assert!(matches!(
            parse_info("used_memory:1\r\n"),
            Err(ServerError::Missing(_))
        ));
        assert_eq!(glob_escape("loadgrade:r*1:"), "loadgrade:r\\*1:");
    }
}
