//! What each agent was assigned, kept so that a restarted coordinator can judge the intervals that agents send late
//! from their spools, and which intervals arrived that way.

use super::{Store, StoreError};
use loadgrade_common::shard::PartId;
use sqlx::Row;

/// One agent's shard of one part, as assigned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredShard {
    pub agent: String,
    pub part: PartId,
    /// The common start instant, coordinator clock, Unix ms.
    pub start_unix_ms: i64,
    /// The longest the shard may last from its start, ms.
    pub bound_ms: i64,
    /// The part's connections (no agent's share is more).
    pub connections: u64,
    /// The epoch of the session the shard was assigned in: every interval of the shard carries it.
    pub epoch: u64,
}

/// The intervals one agent sent after a coordinator restart, for the report's finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LateIntervals {
    pub agent: String,
    pub count: u64,
    pub requests: u64,
}

impl Store {
    /// Records the shards of a part before they are sent (one transaction); a shard recorded twice keeps its first
    /// row.
    pub async fn insert_shards(
        &self,
        run_id: &str,
        shards: &[StoredShard],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for s in shards {
            sqlx::query(&self.sql(
                "INSERT INTO shards (run_id, agent, scenario, stage, start_unix_ms, bound_ms, connections, epoch) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            ))
            .bind(run_id)
            .bind(&s.agent)
            .bind(&s.part.scenario)
            .bind(i64::from(s.part.stage))
            .bind(s.start_unix_ms)
            .bind(s.bound_ms)
            .bind(i64::try_from(s.connections).unwrap_or(i64::MAX))
            // Stored as its bit pattern: an epoch is any u64.
            .bind(s.epoch as i64)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Every shard the run assigned, in part then agent order.
    pub async fn shards_of(&self, run_id: &str) -> Result<Vec<StoredShard>, StoreError> {
        let rows = sqlx::query(&self.sql(
            "SELECT agent, scenario, stage, start_unix_ms, bound_ms, connections, epoch FROM shards WHERE run_id = ? \
             ORDER BY scenario, stage, agent",
        ))
        .bind(run_id)
        .fetch_all(&self.pool)
        .await?;
        let corrupt = |what: String| StoreError::CorruptInterval {
            run: run_id.to_owned(),
            what,
        };
        rows.iter()
            .map(|r| {
                Ok(StoredShard {
                    agent: r.try_get("agent")?,
                    part: PartId {
                        scenario: r.try_get("scenario")?,
                        stage: u32::try_from(r.try_get::<i64, _>("stage")?)
                            .map_err(|e| corrupt(format!("shard stage: {e}")))?,
                    },
                    start_unix_ms: r.try_get("start_unix_ms")?,
                    bound_ms: r.try_get("bound_ms")?,
                    connections: u64::try_from(r.try_get::<i64, _>("connections")?)
                        .map_err(|e| corrupt(format!("shard connections: {e}")))?,
                    epoch: r.try_get::<i64, _>("epoch")? as u64,
                })
            })
            .collect()
    }

    /// Per agent: the intervals of the run stored after a coordinator restart (late, from its spool).
    pub async fn late_intervals(&self, run_id: &str) -> Result<Vec<LateIntervals>, StoreError> {
        let rows = sqlx::query(&self.sql(
            "SELECT agent, CAST(COUNT(*) AS BIGINT) AS n, CAST(SUM(requests) AS BIGINT) AS requests \
             FROM intervals WHERE run_id = ? AND late = 1 GROUP BY agent ORDER BY agent",
        ))
        .bind(run_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(LateIntervals {
                    agent: r.try_get("agent")?,
                    count: u64::try_from(r.try_get::<i64, _>("n")?).unwrap_or(0),
                    requests: u64::try_from(r.try_get::<i64, _>("requests")?).unwrap_or(0),
                })
            })
            .collect()
    }
}
