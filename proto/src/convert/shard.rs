//! Shards and their assignment; interval reports.

use super::{ConvertError, known};
use crate::v1;
use loadgrade_common::interval::{CacheFigures, Counters, Health, IntervalReport};
use loadgrade_common::plan::request::{DEFAULT_RESPONSE_HEADER_BYTES, MAX_RESPONSE_HEADER_BYTES};
use loadgrade_common::plan::{Arrivals, HttpRequest, LoadModel, MAX_RUN};
use loadgrade_common::profile::{Profile, Stage};
use loadgrade_common::report::ErrorCounts;
use loadgrade_common::shard::{Assignment, HttpShard, PartId, ShardProfile, Work};
use std::time::Duration;

pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A duration from the wire, no longer than a run may last.
pub(crate) fn bounded_millis(field: &'static str, ms: u64) -> Result<Duration, ConvertError> {
    let d = Duration::from_millis(ms);
    if d > MAX_RUN {
        return Err(ConvertError::Invalid {
            field,
            why: format!("{ms} ms is longer than a run may last"),
        });
    }
    Ok(d)
}

// === impl Assignment ===

impl From<Assignment> for v1::AssignShard {
    fn from(a: Assignment) -> Self {
        v1::AssignShard {
            run_id: a.run_id,
            scenario: a.part.scenario,
            stage: a.part.stage,
            start_at_unix_ms: a.start_at_unix_ms,
            orphan_timeout_ms: millis(a.orphan_timeout),
            work: Some(match a.work {
                Work::Http(shard) => v1::assign_shard::Work::Http(shard.into()),
                Work::Cache(shard) => v1::assign_shard::Work::Cache(shard.into()),
                Work::Pagination(shard) => v1::assign_shard::Work::Pagination(shard.into()),
                Work::Scrape(shard) => v1::assign_shard::Work::Scrape(shard.into()),
            }),
        }
    }
}

impl TryFrom<v1::AssignShard> for Assignment {
    type Error = ConvertError;

    fn try_from(a: v1::AssignShard) -> Result<Self, ConvertError> {
        let work = match a.work.ok_or(ConvertError::Missing("AssignShard.work"))? {
            v1::assign_shard::Work::Http(shard) => Work::Http(shard.try_into()?),
            v1::assign_shard::Work::Cache(shard) => Work::Cache(shard.try_into()?),
            v1::assign_shard::Work::Pagination(shard) => Work::Pagination(shard.try_into()?),
            v1::assign_shard::Work::Scrape(shard) => Work::Scrape(shard.try_into()?),
        };
        Ok(Assignment {
            run_id: a.run_id,
            part: PartId {
                scenario: a.scenario,
                stage: a.stage,
            },
            start_at_unix_ms: a.start_at_unix_ms,
            orphan_timeout: bounded_millis(
                "AssignShard.orphan_timeout_ms",
                a.orphan_timeout_ms.max(1),
            )?,
            work,
        })
    }
}

// === impl HttpShard ===

impl From<HttpShard> for v1::HttpShard {
    fn from(s: HttpShard) -> Self {
        let HttpShard {
            request,
            model,
            arrivals,
            profile,
            connections,
            warmup,
            max_backlog,
            max_requests,
        } = s;
        v1::HttpShard {
            url: request.url,
            method: request.method,
            headers: request
                .headers
                .into_iter()
                .map(|(name, value)| v1::Header { name, value })
                .collect(),
            body: request.body,
            model: match model {
                LoadModel::Open => v1::LoadModel::Open,
                LoadModel::Closed => v1::LoadModel::Closed,
            } as i32,
            duration_ms: profile.profile.length.map_or(0, millis),
            profile: Some(v1::Profile {
                start: profile.profile.start,
                stages: profile
                    .profile
                    .stages
                    .iter()
                    .map(|s| v1::Stage {
                        target: s.target,
                        duration_ms: millis(s.duration),
                    })
                    .collect(),
                weights: profile.weights.to_vec(),
                index: u32::try_from(profile.index).unwrap_or(u32::MAX),
            }),
            connections,
            warmup_ms: millis(warmup),
            max_backlog,
            request_timeout_ms: millis(request.timeout),
            max_requests: max_requests.unwrap_or(0),
            http_version: if request.http2 { 2 } else { 1 },
            ca_file: request.ca_file.unwrap_or_default(),
            idempotent: request.idempotent,
            max_response_header_bytes: request.max_response_header_bytes,
            arrivals: match arrivals {
                Arrivals::Even => v1::Arrivals::Even,
                Arrivals::Poisson => v1::Arrivals::Poisson,
            } as i32,
        }
    }
}

impl TryFrom<v1::HttpShard> for HttpShard {
    type Error = ConvertError;

    fn try_from(s: v1::HttpShard) -> Result<Self, ConvertError> {
        let model = match known::<v1::LoadModel>("HttpShard.model", s.model)? {
            v1::LoadModel::Open => LoadModel::Open,
            v1::LoadModel::Closed => LoadModel::Closed,
            v1::LoadModel::Unspecified => {
                return Err(ConvertError::UnknownEnum {
                    field: "HttpShard.model",
                    value: s.model,
                });
            }
        };
        let arrivals = match known::<v1::Arrivals>("HttpShard.arrivals", s.arrivals)? {
            v1::Arrivals::Poisson => Arrivals::Poisson,
            v1::Arrivals::Even | v1::Arrivals::Unspecified => Arrivals::Even,
        };
        let http2 = match s.http_version {
            0 | 1 => false,
            2 => true,
            other => {
                return Err(ConvertError::Invalid {
                    field: "HttpShard.http_version",
                    why: format!("unknown HTTP version {other}"),
                });
            }
        };
        let wire = s
            .profile
            .ok_or(ConvertError::Missing("HttpShard.profile"))?;
        let index = usize::try_from(wire.index).unwrap_or(usize::MAX);
        if index >= wire.weights.len() {
            return Err(ConvertError::Invalid {
                field: "Profile.index",
                why: "the shard's profile has no weight for this agent".to_owned(),
            });
        }
        let stages = wire
            .stages
            .iter()
            .map(|st| {
                Ok(Stage {
                    target: st.target,
                    duration: bounded_millis("Stage.duration_ms", st.duration_ms)?,
                })
            })
            .collect::<Result<Vec<Stage>, ConvertError>>()?;
        let profile = if stages.is_empty() {
            let length = (s.duration_ms > 0)
                .then(|| bounded_millis("HttpShard.duration_ms", s.duration_ms))
                .transpose()?;
            Profile::constant(wire.start, length)
        } else {
            Profile::ramp(wire.start, stages)
        };
        if profile.length.is_some_and(|l| l > MAX_RUN) {
            return Err(ConvertError::Invalid {
                field: "Profile.stages",
                why: "the stages last longer than a run may".to_owned(),
            });
        }
        Ok(HttpShard {
            request: HttpRequest {
                url: s.url,
                method: s.method,
                headers: s.headers.into_iter().map(|h| (h.name, h.value)).collect(),
                body: s.body,
                http2,
                ca_file: Some(s.ca_file).filter(|f| !f.is_empty()),
                timeout: bounded_millis(
                    "HttpShard.request_timeout_ms",
                    s.request_timeout_ms.max(1),
                )?,
                idempotent: s.idempotent,
                max_response_header_bytes: match s.max_response_header_bytes {
                    0 => DEFAULT_RESPONSE_HEADER_BYTES,
                    n if u64::from(n) <= MAX_RESPONSE_HEADER_BYTES => n,
                    n => {
                        return Err(ConvertError::Invalid {
                            field: "HttpShard.max_response_header_bytes",
                            why: format!(
                                "{n} bytes is more than a response head may be allowed ({MAX_RESPONSE_HEADER_BYTES})"
                            ),
                        });
                    }
                },
            },
            model,
            arrivals,
            profile: ShardProfile {
                profile,
                weights: wire.weights.into(),
                index,
            },
            connections: s.connections,
            warmup: bounded_millis("HttpShard.warmup_ms", s.warmup_ms)?,
            max_backlog: s.max_backlog,
            max_requests: (s.max_requests > 0).then_some(s.max_requests),
        })
    }
}

// === impl IntervalReport ===

impl From<Counters> for v1::Counters {
    fn from(c: Counters) -> Self {
        let e = c.errors;
        v1::Counters {
            requests: c.requests,
            ok: c.ok,
            errors_connect: e.connect,
            errors_timeout: e.timeout,
            errors_status_4xx: e.status_4xx,
            errors_status_5xx: e.status_5xx,
            errors_other: e.other,
            errors_response_too_large: e.response_too_large,
            dropped: c.dropped,
            bytes_received: c.bytes_received,
            resent: c.resent,
            discarded_at_stop: c.discarded_at_stop,
        }
    }
}

impl From<v1::Counters> for Counters {
    fn from(c: v1::Counters) -> Self {
        let errors = ErrorCounts {
            connect: c.errors_connect,
            timeout: c.errors_timeout,
            status_4xx: c.errors_status_4xx,
            status_5xx: c.errors_status_5xx,
            other: c.errors_other,
            response_too_large: c.errors_response_too_large,
        };
        Counters {
            requests: c.requests,
            ok: c.ok,
            errors,
            dropped: c.dropped,
            bytes_received: c.bytes_received,
            resent: c.resent,
            discarded_at_stop: c.discarded_at_stop,
        }
    }
}

impl From<Health> for v1::Health {
    fn from(h: Health) -> Self {
        v1::Health {
            cpu_percent: h.cpu_percent,
            backlog_max: h.backlog_max,
            hdr_lag: h.hdr_lag,
            hdr_connection_wait: h.hdr_connection_wait,
            hdr_connect: h.hdr_connect,
            hdr_send_late: h.hdr_send_late,
            emfile: h.emfile,
            eaddrnotavail: h.eaddrnotavail,
            arrivals: h.arrivals,
            threads: h.threads,
        }
    }
}

impl From<v1::Health> for Health {
    fn from(h: v1::Health) -> Self {
        Health {
            cpu_percent: h.cpu_percent.filter(|c| c.is_finite() && *c >= 0.0),
            backlog_max: h.backlog_max,
            hdr_lag: h.hdr_lag,
            hdr_connection_wait: h.hdr_connection_wait,
            hdr_connect: h.hdr_connect,
            hdr_send_late: h.hdr_send_late,
            emfile: h.emfile,
            eaddrnotavail: h.eaddrnotavail,
            arrivals: h.arrivals,
            threads: h.threads,
        }
    }
}

impl From<IntervalReport> for v1::IntervalReport {
    fn from(r: IntervalReport) -> Self {
        v1::IntervalReport {
            run_id: r.run_id,
            agent: r.agent,
            epoch: r.epoch,
            seq: r.seq,
            scenario: r.part.scenario,
            stage: r.part.stage,
            start_unix_ms: r.start_unix_ms,
            duration_ms: r.duration_ms,
            warmup: r.warmup,
            after_window: r.after_window,
            hdr_corrected: r.hdr_corrected,
            hdr_raw: r.hdr_raw,
            counters: Some(r.counters.into()),
            health: Some(r.health.into()),
            cache: r.cache.map(|c| v1::CacheFigures {
                hits: c.hits,
                misses: c.misses,
                hdr_hit: c.hdr_hit,
                hdr_miss: c.hdr_miss,
                hdr_lookup: c.hdr_lookup,
            }),
            pagination: r.pagination.map(Into::into),
            scrape: r.scrape.map(Into::into),
        }
    }
}

impl From<v1::IntervalReport> for IntervalReport {
    fn from(r: v1::IntervalReport) -> Self {
        IntervalReport {
            run_id: r.run_id,
            agent: r.agent,
            epoch: r.epoch,
            seq: r.seq,
            part: PartId {
                scenario: r.scenario,
                stage: r.stage,
            },
            start_unix_ms: r.start_unix_ms,
            duration_ms: r.duration_ms,
            warmup: r.warmup,
            after_window: r.after_window,
            hdr_corrected: r.hdr_corrected,
            hdr_raw: r.hdr_raw,
            counters: r.counters.unwrap_or_default().into(),
            health: r.health.unwrap_or_default().into(),
            cache: r.cache.map(|c| CacheFigures {
                hits: c.hits,
                misses: c.misses,
                hdr_hit: c.hdr_hit,
                hdr_miss: c.hdr_miss,
                hdr_lookup: c.hdr_lookup,
            }),
            pagination: r.pagination.map(Into::into),
            scrape: r.scrape.map(Into::into),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shard(stages: Vec<Stage>, length: Option<Duration>) -> HttpShard {
        HttpShard {
            request: HttpRequest {
                url: "http://127.0.0.1:8080/a".into(),
                method: "POST".into(),
                headers: vec![("x-key".into(), "v".into())],
                body: b"{}".to_vec(),
                http2: true,
                ca_file: Some("/etc/loadgrade/ca.pem".into()),
                timeout: Duration::from_millis(2500),
                idempotent: false,
                max_response_header_bytes: 32 << 10,
            },
            model: LoadModel::Open,
            arrivals: Arrivals::Poisson,
            profile: ShardProfile {
                profile: if stages.is_empty() {
                    Profile::constant(50, length)
                } else {
                    Profile::ramp(50, stages)
                },
                weights: vec![2, 1].into(),
                index: 1,
            },
            connections: 7,
            warmup: Duration::from_secs(1),
            max_backlog: 9,
            max_requests: Some(100),
        }
    }

    #[test]
    fn shards_survive_the_wire() {
        let ramping = shard(
            vec![Stage {
                target: 400,
                duration: Duration::from_secs(4),
            }],
            None,
        );
        for original in [
            ramping,
            shard(Vec::new(), Some(Duration::from_secs(3))),
            shard(Vec::new(), None),
        ] {
            let assignment = Assignment {
                run_id: "r".into(),
                part: PartId {
                    scenario: "s".into(),
                    stage: 3,
                },
                start_at_unix_ms: 42,
                orphan_timeout: Duration::from_secs(10),
                work: Work::Http(original),
            };
            let wire = v1::AssignShard::from(assignment.clone());
            assert_eq!(Assignment::try_from(wire), Ok(assignment));
        }
    }

    #[test]
    fn a_bad_shard_is_an_error_not_a_guess() {
        let mut wire = v1::HttpShard::from(shard(Vec::new(), Some(Duration::from_secs(1))));
        wire.model = 0;
        assert!(matches!(
            HttpShard::try_from(wire.clone()),
            Err(ConvertError::UnknownEnum { .. })
        ));
        wire.model = v1::LoadModel::Closed as i32;
        wire.duration_ms = u64::MAX;
        assert!(matches!(
            HttpShard::try_from(wire.clone()),
            Err(ConvertError::Invalid { .. })
        ));
        wire.duration_ms = 1000;
        if let Some(p) = wire.profile.as_mut() {
            p.index = 5;
        }
        assert!(HttpShard::try_from(wire).is_err());
    }
}
