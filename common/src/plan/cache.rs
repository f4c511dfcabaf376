//! The `cache` kind in a plan: is the cache worth it? Lookups pick keys from a shared key space with Zipf
//! popularity; in `redis` mode an agent does cache-aside against a real Redis (GET; on a miss the origin, then SET
//! with a TTL), in `http` mode it asks an application and tells hits from misses by a response header. The load
//! (model, connections, rate, duration or budget, warm-up) is an `http` scenario's.

use super::errors::Issues;
use super::fields::{self, Field};
use super::http::{self, HttpSpec};
use super::{ScenarioInput, request};
use serde::Deserialize;
use std::time::Duration;

const DEFAULT_TTL: Duration = Duration::from_secs(600);
/// The largest key space (keys are named by their index).
pub const MAX_KEY_SPACE: u64 = 1 << 32;
/// Where a lookup's key goes in a URL.
pub const KEY_PLACEHOLDER: &str = "{key}";

#[derive(Debug, Deserialize)]
pub(crate) struct RawCache {
    pub mode: Field<String>,
    pub redis: Field<String>,
    pub password_env: Field<String>,
    pub origin: Field<String>,
    pub key_space: Field<i64>,
    pub zipf: Field<f64>,
    pub seed: Field<i64>,
    pub ttl: Field<String>,
    pub keep_keys: Field<bool>,
    pub flush: Field<bool>,
    pub hit_header: Field<String>,
    pub hit_value: Field<String>,
}

/// Where the cache is and how a hit is told.
#[derive(Debug, Clone, PartialEq)]
pub enum CacheTarget {
    /// Cache-aside against Redis; the spec's request is the origin (its URL has `{key}`).
    Redis(RedisCache),
    /// An application's own cache; the spec's request is the application's (its URL has `{key}`).
    Http {
        hit_header: String,
        hit_value: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct RedisCache {
    /// `redis://[user:password@]host[:port][/db]` or `rediss://` for TLS. Kept out of the store and logs.
    pub url: String,
    /// An environment variable, read on each agent, that holds the password.
    pub password_env: Option<String>,
    /// Time to live of a key set after a miss. Default: 10 minutes.
    pub ttl: Duration,
    /// Leave this run's keys in the cache at the end. Default: false (they are deleted).
    pub keep_keys: bool,
    /// Empty the database named in `url` before the run. Only with an explicit database index other than 0.
    pub flush: bool,
}

/// A `cache` scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct CacheSpec {
    /// The load, and the request of a lookup (http mode) or of a miss's origin fetch (redis mode).
    pub load: HttpSpec,
    pub target: CacheTarget,
    /// Keys `0..key_space`, shared by every agent.
    pub key_space: u64,
    /// Zipf exponent of key popularity; 0 = uniform.
    pub zipf: f64,
    /// The key sampler's seed; `None`: chosen at run time (and reported).
    pub seed: Option<u64>,
}

impl CacheSpec {
    pub fn mode(&self) -> crate::report::cache::CacheMode {
        match self.target {
            CacheTarget::Redis(_) => crate::report::cache::CacheMode::Redis,
            CacheTarget::Http { .. } => crate::report::cache::CacheMode::Http,
        }
    }
}

/// Why this scenario can never produce the figure at `metric`, if it cannot.
pub(crate) fn never_produced(spec: &CacheSpec, metric: &str) -> Option<String> {
    let redis_only = [
        "server_hit_rate",
        "cache_memory_bytes",
        "cache_memory_limit_bytes",
        "memory_utilization",
        "evictions",
        "keys_deleted",
        "lookup_latency_ms.",
    ];
    let redis = matches!(spec.target, CacheTarget::Redis(_));
    (!redis && redis_only.iter().any(|p| metric.starts_with(p))).then(|| {
        "the cache server's own figures and the lookup round trip are measured in redis mode; in http mode the \
         cache is inside the application"
            .to_owned()
    })
}

/// Validates a `cache` scenario.
pub(crate) fn validate(
    input: &ScenarioInput<'_, '_>,
    issues: &mut Issues<'_>,
) -> Option<CacheSpec> {
    let raw: RawCache = input.table.part(issues)?;
    let (name, kind_span) = (input.name, &input.kind_span);
    let redis_mode = match &raw.mode {
        None => raw.redis.is_some(),
        Some(m) => match m.get_ref().as_str() {
            "redis" => true,
            "http" => false,
            other => {
                issues.at(
                    m.span(),
                    format!("invalid mode {other:?}: expected \"redis\" or \"http\""),
                );
                raw.redis.is_some()
            }
        },
    };
    let request = if redis_mode {
        request::validate_with_url(input, issues, Some(("origin", raw.origin.as_ref())), true)
    } else {
        if let Some(o) = &raw.origin {
            issues.at(
                o.span(),
                "`origin` is for redis mode; in http mode the application's `url` is asked",
            );
        }
        request::validate_with_url(input, issues, None, true)
    };
    let request = request.filter(|r| {
        let has_key = r.url.contains(KEY_PLACEHOLDER);
        if !has_key {
            issues.at(
                kind_span.clone(),
                format!("scenario {name:?}: the URL must hold {KEY_PLACEHOLDER}, where each lookup's key goes"),
            );
        }
        has_key
    });
    let load = http::validate_load(input, issues, request);
    let target = if redis_mode {
        redis_target(&raw, input, issues).map(CacheTarget::Redis)
    } else {
        for (field, span) in [
            ("redis", raw.redis.as_ref().map(toml::Spanned::span)),
            (
                "password_env",
                raw.password_env.as_ref().map(toml::Spanned::span),
            ),
            ("ttl", raw.ttl.as_ref().map(toml::Spanned::span)),
            ("keep_keys", raw.keep_keys.as_ref().map(toml::Spanned::span)),
            ("flush", raw.flush.as_ref().map(toml::Spanned::span)),
        ] {
            if let Some(span) = span {
                issues.at(span, format!("`{field}` is for redis mode"));
            }
        }
        Some(CacheTarget::Http {
            hit_header: raw.hit_header.as_ref().map_or_else(
                || "x-cache".to_owned(),
                |h| h.get_ref().to_ascii_lowercase(),
            ),
            hit_value: raw
                .hit_value
                .as_ref()
                .map_or_else(|| "HIT".to_owned(), |v| v.get_ref().clone()),
        })
    };
    if redis_mode {
        for (field, span) in [
            (
                "hit_header",
                raw.hit_header.as_ref().map(toml::Spanned::span),
            ),
            ("hit_value", raw.hit_value.as_ref().map(toml::Spanned::span)),
        ] {
            if let Some(span) = span {
                issues.at(span, format!("`{field}` is for http mode"));
            }
        }
    }
    let key_space = match &raw.key_space {
        None => {
            issues.at(
                kind_span.clone(),
                format!("scenario {name:?}: `key_space` (how many keys) is required"),
            );
            None
        }
        Some(k) => match u64::try_from(*k.get_ref()) {
            Ok(v) if (1..=MAX_KEY_SPACE).contains(&v) => Some(v),
            _ => {
                issues.at(k.span(), format!("key_space must be 1 to {MAX_KEY_SPACE}"));
                None
            }
        },
    };
    let zipf = match &raw.zipf {
        None => 0.0,
        Some(z) if z.get_ref().is_finite() && (0.0..=10.0).contains(z.get_ref()) => *z.get_ref(),
        Some(z) => {
            issues.at(z.span(), "zipf must be a number from 0 (uniform) to 10");
            0.0
        }
    };
    let seed = raw
        .seed
        .as_ref()
        .and_then(|s| match u64::try_from(*s.get_ref()) {
            Ok(v) => Some(v),
            Err(_) => {
                issues.at(s.span(), "seed must be a non-negative integer");
                None
            }
        });
    Some(CacheSpec {
        load: load?,
        target: target?,
        key_space: key_space?,
        zipf,
        seed,
    })
}

fn redis_target(
    raw: &RawCache,
    input: &ScenarioInput<'_, '_>,
    issues: &mut Issues<'_>,
) -> Option<RedisCache> {
    let url = match &raw.redis {
        None => {
            issues.at(
                input.kind_span.clone(),
                format!(
                    "scenario {:?}: redis mode needs `redis` (redis://host:port/db)",
                    input.name
                ),
            );
            None
        }
        Some(u) => match check_redis_url(u.get_ref()) {
            Ok(()) => Some(u.get_ref().clone()),
            Err(e) => {
                issues.at(u.span(), e);
                None
            }
        },
    };
    let ttl = fields::duration(issues, raw.ttl.as_ref()).unwrap_or(DEFAULT_TTL);
    if ttl < Duration::from_secs(1) {
        issues.at(
            fields::span_or(raw.ttl.as_ref(), &input.kind_span),
            "ttl must be at least 1s",
        );
    }
    let flush = raw.flush.as_ref().is_some_and(|f| *f.get_ref());
    if flush && url.as_deref().and_then(database_index).unwrap_or(0) == 0 {
        issues.at(
            fields::span_or(raw.flush.as_ref(), &input.kind_span),
            "flush empties a whole database: name a dedicated one in the redis URL (redis://host:6379/N, N > 0)",
        );
    }
    let password_env = raw.password_env.as_ref().map(|p| p.get_ref().clone());
    if let Some(p) = &raw.password_env
        && let Some(problem) = super::password_env_problem(p.get_ref())
    {
        issues.at(p.span(), problem);
    }
    Some(RedisCache {
        url: url?,
        password_env,
        ttl,
        keep_keys: raw.keep_keys.as_ref().is_some_and(|k| *k.get_ref()),
        flush,
    })
}

/// A `redis://` or `rediss://` URL with a host. Errors never repeat the URL: it may hold a password.
fn check_redis_url(url: &str) -> Result<(), super::Problem> {
    let rest = url
        .strip_prefix("redis://")
        .or_else(|| url.strip_prefix("rediss://"))
        .ok_or("the redis URL must start with redis:// (or rediss:// for TLS)")?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit('@').next().unwrap_or("");
    if host.is_empty() {
        return Err(super::Problem::from("the redis URL has no host".to_owned()));
    }
    // Parsed as agents and the coordinator parse it (the redis crate reads URLs with the url crate), so a port past
    // 65535 is an error here rather than an agent's refusal (attack round 2 on issue 20). url's messages never quote
    // the URL.
    url::Url::parse(url).map_err(|e| format!("the redis URL does not parse: {e}"))?;
    if let Some(db) = rest
        .split_once('/')
        .map(|(_, db)| db.split(['?', '#']).next().unwrap_or(""))
        && !db.is_empty()
        && db.parse::<u32>().is_err()
    {
        return Err(super::Problem::from(
            "the redis URL's database must be a number (redis://host:6379/N)".to_owned(),
        ));
    }
    Ok(())
}

/// A redis URL fit to show: its password (and user) replaced by `***`.
pub fn redacted_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "(a redis URL)".to_owned();
    };
    // The user part ends at the last '@', so a password holding '/', '?' or '#' stays in it.
    match super::pagination::split_user_part(rest) {
        (Some(_), after) => format!("{scheme}://***@{after}"),
        (None, _) => url.to_owned(),
    }
}

/// The database index a redis URL names, if it names one.
pub fn database_index(url: &str) -> Option<u32> {
    let rest = url.split_once("://")?.1;
    let db = rest.split_once('/')?.1.split(['?', '#']).next()?;
    db.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_urls_are_checked_without_echoing_them() {
        assert_eq!(check_redis_url("redis://127.0.0.1:6379/0"), Ok(()));
        assert_eq!(check_redis_url("rediss://:pw@cache.example:6380"), Ok(()));
        for bad in [
            "http://x",
            "redis://",
            "redis://:s3cret@/",
            "redis://h:1/db-s3cret",
            "redis://:s3cret@127.0.0.1:99999/1",
        ] {
            let e = check_redis_url(bad).expect_err(bad);
            assert!(!e.0.contains("s3cret"), "{e}");
        }
        assert_eq!(database_index("redis://h:1/5"), Some(5));
        assert_eq!(redacted_url("redis://:s3cret@h:1/2"), "redis://***@h:1/2");
        assert_eq!(redacted_url("rediss://u:p@h"), "rediss://***@h");
        assert_eq!(redacted_url("redis://h:1/0"), "redis://h:1/0");
        assert_eq!(database_index("redis://h:1"), None);
    }
}
