//! loadgrade's shared model: plans and their validation, the scenario kinds, the work and results that travel
//! between coordinator and agents (in domain terms; `loadgrade-proto` converts them), histogram codec and merge,
//! shard arithmetic, thresholds, grading and the report. No I/O lives here.

pub mod clock;
pub mod config_file;
pub mod grade;
pub mod histogram;
pub mod interval;
pub mod kind;
pub mod pagination_sql;
pub mod plan;
pub mod preflight;
pub mod profile;
pub mod protocol;
pub mod report;
pub mod run;
#[cfg(feature = "schema")]
pub mod schema;
pub mod shard;
pub mod shares;
pub mod text;
pub mod threshold;
pub mod units;
