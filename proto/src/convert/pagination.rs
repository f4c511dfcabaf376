//! A pagination shard on the wire and back, and a pagination interval's figures.

use super::shard::{bounded_millis, millis};
use super::{ConvertError, known};
use crate::v1;
use loadgrade_common::interval::{DepthFigures, PaginationFigures, TableFacts};
use loadgrade_common::plan::pagination::{Backend, PaginationSpec};
use loadgrade_common::shard::{PaginationPhase, PaginationShard};

/// The most characters of an EXPLAIN text kept (lines kept, other control characters escaped).
pub const MAX_EXPLAIN_TEXT: usize = 16_000;

impl From<PaginationShard> for v1::PaginationShard {
    fn from(s: PaginationShard) -> Self {
        let spec = s.spec;
        v1::PaginationShard {
            database: spec.database,
            password_env: spec.password_env.unwrap_or_default(),
            table: spec.table,
            key: spec.key,
            columns: spec.columns,
            r#where: spec.filter.unwrap_or_default(),
            page_size: spec.page_size,
            pages: spec.pages,
            seed_rows: spec.seed_rows.unwrap_or(0),
            iterations: spec.iterations,
            concurrency: spec.concurrency,
            explain: spec.explain,
            query_timeout_ms: millis(spec.query_timeout),
            max_duration_ms: millis(spec.max_duration),
            phase: match s.phase {
                PaginationPhase::Seed => v1::PaginationPhase::Seed,
                PaginationPhase::Measure => v1::PaginationPhase::Measure,
                PaginationPhase::SeedAndMeasure => v1::PaginationPhase::SeedAndMeasure,
            }
            .into(),
            agents: spec.agents,
        }
    }
}

impl TryFrom<v1::PaginationShard> for PaginationShard {
    type Error = ConvertError;

    fn try_from(s: v1::PaginationShard) -> Result<Self, ConvertError> {
        let invalid = |why: String| ConvertError::Invalid {
            field: "PaginationShard",
            why,
        };
        let backend = Backend::of_url(&s.database).ok_or_else(|| {
            invalid("the database URL's scheme is not one loadgrade pages through".into())
        })?;
        let phase = match known::<v1::PaginationPhase>("PaginationShard.phase", s.phase)? {
            v1::PaginationPhase::Seed => PaginationPhase::Seed,
            v1::PaginationPhase::Measure => PaginationPhase::Measure,
            v1::PaginationPhase::SeedAndMeasure => PaginationPhase::SeedAndMeasure,
            v1::PaginationPhase::Unspecified => {
                return Err(ConvertError::UnknownEnum {
                    field: "PaginationShard.phase",
                    value: s.phase,
                });
            }
        };
        let spec = PaginationSpec {
            database: s.database,
            backend,
            password_env: Some(s.password_env).filter(|p| !p.is_empty()),
            table: s.table,
            key: s.key,
            columns: s.columns,
            filter: Some(s.r#where).filter(|w| !w.is_empty()),
            page_size: s.page_size,
            pages: s.pages,
            seed_rows: Some(s.seed_rows).filter(|r| *r > 0),
            iterations: s.iterations,
            concurrency: s.concurrency,
            agents: s.agents,
            explain: s.explain,
            query_timeout: bounded_millis(
                "PaginationShard.query_timeout_ms",
                s.query_timeout_ms.max(1),
            )?,
            max_duration: bounded_millis(
                "PaginationShard.max_duration_ms",
                s.max_duration_ms.max(1),
            )?,
        };
        spec.check().map_err(|p| invalid(p.to_string()))?;
        Ok(PaginationShard { spec, phase })
    }
}

impl From<PaginationFigures> for v1::PaginationFigures {
    fn from(f: PaginationFigures) -> Self {
        v1::PaginationFigures {
            depths: f
                .depths
                .into_iter()
                .map(|d| v1::DepthFigures {
                    page: d.page,
                    hdr_offset: d.hdr_offset,
                    hdr_cursor: d.hdr_cursor,
                    rows_per_page: d.rows_per_page,
                })
                .collect(),
            seeded_rows: f.seeded_rows,
            table: f.table.map(|t| v1::TableFacts {
                server_version: t.server_version,
                rows: t.rows,
                seeded: t.seeded,
                explain_method: t.explain_method,
                explain_offset: t.explain_offset,
                explain_cursor: t.explain_cursor,
            }),
        }
    }
}

impl From<v1::PaginationFigures> for PaginationFigures {
    fn from(f: v1::PaginationFigures) -> Self {
        PaginationFigures {
            depths: f
                .depths
                .into_iter()
                .map(|d| DepthFigures {
                    page: d.page,
                    hdr_offset: d.hdr_offset,
                    hdr_cursor: d.hdr_cursor,
                    rows_per_page: d.rows_per_page,
                })
                .collect(),
            seeded_rows: f.seeded_rows,
            // Free text from the agent: bounded and made safe to print.
            table: f.table.map(|t| TableFacts {
                server_version: super::agent_text(t.server_version),
                rows: t.rows,
                seeded: t.seeded,
                explain_method: super::agent_text(t.explain_method),
                explain_offset: explain_text(t.explain_offset),
                explain_cursor: explain_text(t.explain_cursor),
            }),
        }
    }
}

/// An EXPLAIN's text: its lines kept, every other control character escaped, at most [`MAX_EXPLAIN_TEXT`]
/// characters.
fn explain_text(text: String) -> String {
    super::bounded_text(&text, MAX_EXPLAIN_TEXT, true)
}
