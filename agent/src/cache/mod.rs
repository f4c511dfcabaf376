//! The cache executor: a cache scenario's shard runs on the HTTP executor's load threads (closed or open model,
//! limits, intervals, health), each unit a lookup of a key instead of a fixed request. In redis mode a lookup is
//! cache-aside against Redis: GET, and on a miss the origin (through the lean HTTP/1.1 client) and SET with a TTL.
//! In http mode it asks the application and reads the hit from a response header. Hits and misses go to their own
//! histograms beside the request's own figures.

mod keys;
mod lookup;

pub use keys::KeySampler;
pub use lookup::lookup;

use crate::allowlist::Allowlist;
use crate::shard_io::{CacheLookup, HttpShardSpec, Mode};
use crate::{Caps, executor};
use loadgrade_common::shard::{CacheShard, CacheShardTarget};
use std::sync::Arc;
use std::time::Duration;

/// Put in place of `{key}` while the request is built, then cut out.
const MARKER: &str = "LOADGRADEKEYMARKER";

/// Why a cache shard is refused.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("cache lookups run over HTTP/1.1 (http = \"2\" is not supported for cache scenarios)")]
    Http2,
    #[error("the request holds no {{key}} place")]
    NoKey,
    #[error("the redis URL is not usable: {0}")]
    RedisUrl(String),
    #[error("environment variable {0} (password_env) is not set on this agent")]
    NoPassword(String),
    #[error("{0}")]
    PasswordEnv(String),
    #[error("redis over a unix socket is not supported: give a host")]
    Unix,
    #[error("redis host {host}: {why}")]
    RedisHost { host: String, why: String },
    #[error("cannot use the cache at {url}: {why}")]
    RedisConnect { url: String, why: String },
}

/// Checks a cache shard can run here: its HTTP side as an http shard is checked (allowlist, caps, files), its
/// Redis host against the allowlist, its password where the plan says it is.
pub async fn prepare(
    shard: CacheShard,
    allowlist: &Allowlist,
    caps: &Caps,
    cores: u32,
) -> Result<HttpShardSpec, executor::Refusal> {
    let mut load = shard.load;
    if load.request.http2 {
        return Err(Refusal::Http2.into());
    }
    if !load.request.url.contains("{key}") {
        return Err(Refusal::NoKey.into());
    }
    load.request.url = load.request.url.replace("{key}", MARKER);
    let mut spec = HttpShardSpec::prepare(load, allowlist, caps, cores).await?;
    let request = spec.target.request.clone();
    let at = request
        .windows(MARKER.len())
        .position(|w| w == MARKER.as_bytes())
        .ok_or(Refusal::NoKey)?;
    let mode = match shard.target {
        CacheShardTarget::Redis {
            url,
            password_env,
            ttl,
        } => Mode::Redis {
            client: {
                let client = redis_client(&url, password_env.as_deref(), allowlist).await?;
                check_redis(&client, &url, spec.timeout).await?;
                client
            },
            ttl_s: ttl.as_secs().max(1),
        },
        CacheShardTarget::Http {
            hit_header,
            hit_value,
        } => Mode::Http {
            watch: (
                hit_header.to_ascii_lowercase().into_bytes(),
                hit_value.into_bytes(),
            ),
        },
    };
    spec.cache = Some(Arc::new(CacheLookup {
        request_prefix: request[..at].to_vec(),
        request_suffix: request[at + MARKER.len()..].to_vec(),
        key_prefix: shard.key_prefix,
        key_space: shard.key_space,
        zipf: shard.zipf,
        seed: shard.seed,
        agent_index: spec.profile.index as u64,
        mode,
    }));
    Ok(spec)
}

/// A Redis client for `url` (its password, or the one in `password_env`), its host checked against the allowlist
/// and connected at the address checked, every reply bounded. Errors never repeat the URL: it may hold a password.
async fn redis_client(
    url: &str,
    password_env: Option<&str>,
    allowlist: &Allowlist,
) -> Result<crate::redis_conn::BoundedRedis, Refusal> {
    use redis::IntoConnectionInfo as _;
    let mut info = url
        .into_connection_info()
        .map_err(|e| Refusal::RedisUrl(format!("{:?}", e.kind())))?;
    if let Some(var) = password_env {
        // Checked again here: an agent reads no variable a plan could not name.
        if let Some(problem) = loadgrade_common::plan::password_env_problem(var) {
            return Err(Refusal::PasswordEnv(problem));
        }
        let password = std::env::var(var).map_err(|_| Refusal::NoPassword(var.to_owned()))?;
        let settings = info.redis_settings().clone().set_password(password);
        info = info.set_redis_settings(settings);
    }
    let (host, port) = match info.addr() {
        redis::ConnectionAddr::Tcp(host, port)
        | redis::ConnectionAddr::TcpTls { host, port, .. } => (host.clone(), *port),
        // A unix socket, or an address kind this build does not know.
        _ => return Err(Refusal::Unix),
    };
    let addrs: Vec<std::net::SocketAddr> = tokio::net::lookup_host((host.as_str(), port))
        .await
        .map_err(|e| Refusal::RedisHost {
            host: host.clone(),
            why: format!("does not resolve: {e}"),
        })?
        .collect();
    allowlist
        .resolve()
        .await
        .check(&addrs)
        .map_err(|e| Refusal::RedisHost {
            host: host.clone(),
            why: e.to_string(),
        })?;
    let addr = *addrs.first().ok_or_else(|| Refusal::RedisHost {
        host: host.clone(),
        why: "resolves to no address".to_owned(),
    })?;
    crate::redis_conn::BoundedRedis::new(&info, addr).map_err(|e| Refusal::RedisUrl(e.to_string()))
}

/// Connects once and sends PING, so a wrong address or password refuses the shard with its reason instead of
/// failing every lookup.
async fn check_redis(
    client: &crate::redis_conn::BoundedRedis,
    url: &str,
    timeout: Duration,
) -> Result<(), Refusal> {
    let fail = |why: String| Refusal::RedisConnect {
        url: loadgrade_common::plan::cache::redacted_url(url),
        why,
    };
    // The error's own text (the socket's error, or the server's reply such as WRONGPASS); redis errors never hold
    // the URL or the password.
    let mut conn = client
        .connect(timeout)
        .await
        .map_err(|e| fail(e.to_string()))?;
    redis::cmd("PING")
        .query_async::<String>(&mut conn)
        .await
        .map_err(|e| fail(e.to_string()))?;
    Ok(())
}

impl From<Refusal> for executor::Refusal {
    fn from(r: Refusal) -> Self {
        executor::Refusal::Cache(r)
    }
}
