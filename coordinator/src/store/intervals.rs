//! Interval reports in the store: written once per (run, agent, epoch, seq), read back whole to rebuild the report of
//! a run the coordinator did not see to its end, and the runs left unfinished by a coordinator that stopped.

use super::{Store, StoreError};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use loadgrade_common::interval::{
    CacheFigures, DepthFigures, PaginationFigures, PrometheusFigures, ScrapeFigures, TableFacts,
};
use loadgrade_common::interval::{Counters, IntervalReport};
use loadgrade_common::report::ErrorCounts;
use loadgrade_common::shard::PartId;
use sqlx::Row;
use sqlx::any::AnyRow;

/// A run the store says is in progress: after a coordinator restart, one it never finished.
#[derive(Debug, Clone)]
pub struct UnfinishedRun {
    pub id: String,
    pub plan_file: String,
    pub plan_toml: String,
    pub started_at: String,
}

fn count(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl Store {
    /// Stores an interval report. Returns false when this (run, agent, epoch, seq) was already stored.
    pub async fn insert_interval(&self, report: &IntervalReport) -> Result<bool, StoreError> {
        Ok(self
            .insert_intervals(&[report])
            .await?
            .first()
            .copied()
            .unwrap_or(false))
    }

    /// Stores interval reports in one transaction (all or none). Returns, for each, whether it was new.
    pub async fn insert_intervals(
        &self,
        reports: &[&IntervalReport],
    ) -> Result<Vec<bool>, StoreError> {
        self.insert_intervals_marked(reports, false).await
    }

    /// [`Self::insert_intervals`], each marked `late` when it arrived after a coordinator restart.
    pub async fn insert_intervals_marked(
        &self,
        reports: &[&IntervalReport],
        late: bool,
    ) -> Result<Vec<bool>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let mut stored = Vec::with_capacity(reports.len());
        for report in reports {
            stored.push(self.insert_in(&mut tx, report, late).await?);
        }
        tx.commit().await?;
        Ok(stored)
    }

    async fn insert_in(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        report: &IntervalReport,
        late: bool,
    ) -> Result<bool, StoreError> {
        let c = &report.counters;
        let mut counters_json = serde_json::json!({
            "requests": c.requests, "ok": c.ok,
            "errors_connect": c.errors.connect, "errors_timeout": c.errors.timeout,
            "errors_status_4xx": c.errors.status_4xx, "errors_status_5xx": c.errors.status_5xx,
            "errors_other": c.errors.other, "errors_response_too_large": c.errors.response_too_large,
            "dropped": c.dropped,
            "bytes_received": c.bytes_received, "resent": c.resent, "discarded_at_stop": c.discarded_at_stop,
        });
        if let Some(cache) = &report.cache {
            // A cache interval's figures ride along (histograms as base64): a report can be rebuilt from the store.
            counters_json["cache"] = serde_json::json!({
                "hits": cache.hits, "misses": cache.misses,
                "hdr_hit": BASE64.encode(&cache.hdr_hit), "hdr_miss": BASE64.encode(&cache.hdr_miss),
                "hdr_lookup": BASE64.encode(&cache.hdr_lookup),
            });
        }
        if let Some(p) = &report.pagination {
            counters_json["pagination"] = serde_json::json!({
                "seeded_rows": p.seeded_rows,
                "depths": p.depths.iter().map(|d| serde_json::json!({
                    "page": d.page, "rows_per_page": d.rows_per_page,
                    "hdr_offset": BASE64.encode(&d.hdr_offset), "hdr_cursor": BASE64.encode(&d.hdr_cursor),
                })).collect::<Vec<_>>(),
                "table": p.table.as_ref().map(|t| serde_json::json!({
                    "server_version": t.server_version, "rows": t.rows, "seeded": t.seeded,
                    "explain_method": t.explain_method, "explain_offset": t.explain_offset,
                    "explain_cursor": t.explain_cursor,
                })),
            });
        }
        if let Some(f) = &report.scrape {
            counters_json["scrape"] = serde_json::json!({
                "target_series": f.target_series, "series": f.series, "samples": f.samples,
                "prometheus_not_measured": f.prometheus_not_measured, "window_ms": f.window_ms,
                "prometheus": f.prometheus.as_ref().map(|p| serde_json::json!({
                    "version": p.version, "window_ms": p.window_ms, "head_series": p.head_series,
                    "samples_appended_per_s": p.samples_appended_per_s, "rss_bytes": p.rss_bytes,
                    "cpu_seconds": p.cpu_seconds, "heap_inuse_bytes": p.heap_inuse_bytes,
                })),
            });
        }
        let health_json = serde_json::json!({
            "cpu_percent": report.health.cpu_percent, "backlog_max": report.health.backlog_max,
        });
        let done = sqlx::query(&self.sql(
            "INSERT INTO intervals (run_id, agent, epoch, seq, scenario, stage, start_unix_ms, duration_ms, \
             warmup, requests, errors, dropped, counters_json, health_json, hdr_corrected, hdr_raw, after_window, \
             late) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        ))
        .bind(&report.run_id)
        .bind(&report.agent)
        // SQLite integers are signed 64-bit: the epoch's bits are stored as they are.
        .bind(report.epoch as i64)
        .bind(report.seq as i64)
        .bind(&report.part.scenario)
        .bind(i64::from(report.part.stage))
        .bind(report.start_unix_ms)
        .bind(i64::from(report.duration_ms))
        .bind(i64::from(report.warmup))
        .bind(count(c.requests))
        .bind(count(c.errors.total()))
        .bind(count(c.dropped))
        .bind(counters_json.to_string())
        .bind(health_json.to_string())
        .bind(&report.hdr_corrected)
        .bind(&report.hdr_raw)
        .bind(i64::from(report.after_window))
        .bind(i64::from(late))
        .execute(&mut **tx)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Every stored interval of a run, ordered by part and start.
    pub async fn intervals_of(&self, run_id: &str) -> Result<Vec<IntervalReport>, StoreError> {
        let rows = sqlx::query(&self.sql(
            "SELECT run_id, agent, epoch, seq, scenario, stage, start_unix_ms, duration_ms, warmup, after_window, \
             counters_json, hdr_corrected, hdr_raw FROM intervals WHERE run_id = ? \
             ORDER BY scenario, stage, start_unix_ms, agent, seq",
        ))
        .bind(run_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|row| interval(run_id, row)).collect()
    }

    /// Runs the store holds as waiting or running.
    pub async fn unfinished_runs(&self) -> Result<Vec<UnfinishedRun>, StoreError> {
        let rows = sqlx::query(&self.sql(
            "SELECT id, plan_file, plan_toml, started_at FROM runs WHERE state IN ('queued', 'waiting', 'running') \
             ORDER BY started_at",
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(UnfinishedRun {
                    id: r.try_get("id")?,
                    plan_file: r.try_get("plan_file")?,
                    plan_toml: r.try_get("plan_toml")?,
                    started_at: r.try_get("started_at")?,
                })
            })
            .collect()
    }

    /// Requests per measured interval of one scenario, summed over agents, ordered by start (tests, analysis).
    pub async fn interval_requests(
        &self,
        run_id: &str,
        scenario: &str,
    ) -> Result<Vec<(i64, i64)>, StoreError> {
        let rows = sqlx::query(&self.sql(
            "SELECT start_unix_ms, CAST(SUM(requests) AS BIGINT) AS requests FROM intervals \
             WHERE run_id = ? AND scenario = ? AND warmup = 0 GROUP BY start_unix_ms ORDER BY start_unix_ms",
        ))
        .bind(run_id)
        .bind(scenario)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| Ok((r.try_get("start_unix_ms")?, r.try_get("requests")?)))
            .collect()
    }

    /// Number of stored intervals of a run.
    pub async fn interval_count(&self, run_id: &str) -> Result<i64, StoreError> {
        let row = sqlx::query(&self.sql("SELECT COUNT(*) AS n FROM intervals WHERE run_id = ?"))
            .bind(run_id)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("n")?)
    }
}

/// A stored row as an interval report (health beyond CPU and backlog is not kept).
fn interval(run_id: &str, row: &AnyRow) -> Result<IntervalReport, StoreError> {
    let corrupt = |what: String| StoreError::CorruptInterval {
        run: run_id.to_owned(),
        what,
    };
    let json: String = row.try_get("counters_json")?;
    let counters: serde_json::Value =
        serde_json::from_str(&json).map_err(|e| corrupt(format!("counters: {e}")))?;
    let n = |key: &str| {
        counters
            .get(key)
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0)
    };
    let unsigned = |v: i64| u64::try_from(v).map_err(|_| corrupt(format!("negative value {v}")));
    Ok(IntervalReport {
        run_id: row.try_get("run_id")?,
        agent: row.try_get("agent")?,
        // Stored as the bits of a signed integer (see insert_interval).
        epoch: row.try_get::<i64, _>("epoch")? as u64,
        seq: row.try_get::<i64, _>("seq")? as u64,
        part: PartId {
            scenario: row.try_get("scenario")?,
            stage: u32::try_from(row.try_get::<i64, _>("stage")?)
                .map_err(|e| corrupt(format!("stage: {e}")))?,
        },
        start_unix_ms: row.try_get("start_unix_ms")?,
        duration_ms: u32::try_from(unsigned(row.try_get("duration_ms")?)?).unwrap_or(u32::MAX),
        warmup: row.try_get::<i64, _>("warmup")? != 0,
        after_window: row.try_get::<i64, _>("after_window")? != 0,
        hdr_corrected: row.try_get("hdr_corrected")?,
        hdr_raw: row.try_get("hdr_raw")?,
        counters: Counters {
            requests: n("requests"),
            ok: n("ok"),
            errors: ErrorCounts {
                connect: n("errors_connect"),
                timeout: n("errors_timeout"),
                status_4xx: n("errors_status_4xx"),
                status_5xx: n("errors_status_5xx"),
                other: n("errors_other"),
                // Absent in intervals stored before the class existed: none were counted then.
                response_too_large: n("errors_response_too_large"),
            },
            dropped: n("dropped"),
            bytes_received: n("bytes_received"),
            resent: n("resent"),
            discarded_at_stop: n("discarded_at_stop"),
        },
        cache: match counters.get("cache") {
            None => None,
            Some(cache) => {
                let blob = |key: &str| -> Result<Vec<u8>, StoreError> {
                    let text = cache
                        .get(key)
                        .and_then(serde_json::Value::as_str)
                        .unwrap_or_default();
                    BASE64
                        .decode(text)
                        .map_err(|e| corrupt(format!("cache {key}: {e}")))
                };
                let number = |key: &str| {
                    cache
                        .get(key)
                        .and_then(serde_json::Value::as_u64)
                        .unwrap_or(0)
                };
                Some(CacheFigures {
                    hits: number("hits"),
                    misses: number("misses"),
                    hdr_hit: blob("hdr_hit")?,
                    hdr_miss: blob("hdr_miss")?,
                    hdr_lookup: blob("hdr_lookup")?,
                })
            }
        },
        pagination: match counters.get("pagination") {
            None => None,
            Some(p) => Some(pagination(p).map_err(|e| corrupt(format!("pagination: {e}")))?),
        },
        scrape: match counters.get("scrape") {
            None => None,
            Some(f) => Some(scrape(f).map_err(|e| corrupt(format!("scrape: {e}")))?),
        },
        health: Default::default(),
    })
}

/// A figure `insert_interval` always writes, missing from a stored interval: the store was damaged or written by
/// something else. Read back as an error, never as a default.
#[derive(Debug, thiserror::Error)]
#[error("{0} is missing or not of its type")]
struct MissingField(&'static str);

/// A scrape interval's figures as `insert_interval` wrote them; every field must be there.
fn scrape(f: &serde_json::Value) -> Result<ScrapeFigures, MissingField> {
    let number = |v: &serde_json::Value, key: &'static str| {
        v.get(key)
            .and_then(serde_json::Value::as_u64)
            .ok_or(MissingField(key))
    };
    let real = |v: &serde_json::Value, key: &'static str| {
        v.get(key)
            .and_then(serde_json::Value::as_f64)
            .ok_or(MissingField(key))
    };
    let text = |v: &serde_json::Value, key: &'static str| {
        v.get(key)
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
            .ok_or(MissingField(key))
    };
    let prometheus = match f.get("prometheus").filter(|p| !p.is_null()) {
        None => None,
        Some(p) => Some(PrometheusFigures {
            version: text(p, "version")?,
            window_ms: number(p, "window_ms")?,
            head_series: number(p, "head_series")?,
            samples_appended_per_s: real(p, "samples_appended_per_s")?,
            rss_bytes: number(p, "rss_bytes")?,
            cpu_seconds: real(p, "cpu_seconds")?,
            heap_inuse_bytes: number(p, "heap_inuse_bytes")?,
        }),
    };
    Ok(ScrapeFigures {
        target_series: number(f, "target_series")?,
        series: number(f, "series")?,
        samples: number(f, "samples")?,
        prometheus_not_measured: text(f, "prometheus_not_measured")?,
        window_ms: number(f, "window_ms")?,
        prometheus,
    })
}

/// A stored histogram that is not base64.
#[derive(Debug, thiserror::Error)]
#[error("{key}: {source}")]
struct BlobError {
    key: String,
    #[source]
    source: base64::DecodeError,
}

/// A pagination interval's figures as `insert_interval` wrote them.
fn pagination(p: &serde_json::Value) -> Result<PaginationFigures, BlobError> {
    let number = |v: &serde_json::Value, key: &str| {
        v.get(key).and_then(serde_json::Value::as_u64).unwrap_or(0)
    };
    let text = |v: &serde_json::Value, key: &str| {
        v.get(key)
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let blob = |v: &serde_json::Value, key: &str| {
        BASE64.decode(text(v, key)).map_err(|source| BlobError {
            key: key.to_owned(),
            source,
        })
    };
    let depths = p
        .get("depths")
        .and_then(serde_json::Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|d| {
            Ok(DepthFigures {
                page: number(d, "page"),
                rows_per_page: number(d, "rows_per_page"),
                hdr_offset: blob(d, "hdr_offset")?,
                hdr_cursor: blob(d, "hdr_cursor")?,
            })
        })
        .collect::<Result<Vec<_>, BlobError>>()?;
    let table = p
        .get("table")
        .filter(|t| t.is_object())
        .map(|t| TableFacts {
            server_version: text(t, "server_version"),
            rows: number(t, "rows"),
            seeded: t
                .get("seeded")
                .and_then(serde_json::Value::as_bool)
                .unwrap_or(false),
            explain_method: text(t, "explain_method"),
            explain_offset: text(t, "explain_offset"),
            explain_cursor: text(t, "explain_cursor"),
        });
    Ok(PaginationFigures {
        depths,
        seeded_rows: number(p, "seeded_rows"),
        table,
    })
}
