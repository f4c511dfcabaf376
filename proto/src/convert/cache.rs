//! A cache shard on the wire and back.

use super::ConvertError;
use super::shard::bounded_millis;
use crate::v1;
use loadgrade_common::plan::cache::MAX_KEY_SPACE;
use loadgrade_common::shard::{CacheShard, CacheShardTarget};

impl From<CacheShard> for v1::CacheShard {
    fn from(s: CacheShard) -> Self {
        v1::CacheShard {
            load: Some(s.load.into()),
            target: Some(match s.target {
                CacheShardTarget::Redis {
                    url,
                    password_env,
                    ttl,
                } => v1::cache_shard::Target::Redis(v1::RedisTarget {
                    url,
                    password_env: password_env.unwrap_or_default(),
                    ttl_ms: super::shard::millis(ttl),
                }),
                CacheShardTarget::Http {
                    hit_header,
                    hit_value,
                } => v1::cache_shard::Target::Http(v1::HttpCacheTarget {
                    hit_header,
                    hit_value,
                }),
            }),
            key_space: s.key_space,
            zipf: s.zipf,
            seed: s.seed,
            key_prefix: s.key_prefix,
        }
    }
}

impl TryFrom<v1::CacheShard> for CacheShard {
    type Error = ConvertError;

    fn try_from(s: v1::CacheShard) -> Result<Self, ConvertError> {
        let load = s
            .load
            .ok_or(ConvertError::Missing("CacheShard.load"))?
            .try_into()?;
        let target = match s.target.ok_or(ConvertError::Missing("CacheShard.target"))? {
            v1::cache_shard::Target::Redis(r) => CacheShardTarget::Redis {
                url: r.url,
                password_env: Some(r.password_env).filter(|p| !p.is_empty()),
                ttl: bounded_millis("RedisTarget.ttl_ms", r.ttl_ms.max(1))?,
            },
            v1::cache_shard::Target::Http(h) => CacheShardTarget::Http {
                hit_header: h.hit_header,
                hit_value: h.hit_value,
            },
        };
        if !(1..=MAX_KEY_SPACE).contains(&s.key_space) {
            return Err(ConvertError::Invalid {
                field: "CacheShard.key_space",
                why: format!("{} keys (1 to {MAX_KEY_SPACE})", s.key_space),
            });
        }
        if !(s.zipf.is_finite() && (0.0..=10.0).contains(&s.zipf)) {
            return Err(ConvertError::Invalid {
                field: "CacheShard.zipf",
                why: format!("{} (0 to 10)", s.zipf),
            });
        }
        Ok(CacheShard {
            load,
            target,
            key_space: s.key_space,
            zipf: s.zipf,
            seed: s.seed,
            key_prefix: s.key_prefix,
        })
    }
}
