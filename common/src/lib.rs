//! loadgrade's shared model: plans and their validation, histogram codec and merge, shard arithmetic,
//! thresholds, grading and the report. No network I/O lives here.

pub mod grade;
pub mod histogram;
pub mod local_probe;
pub mod plan;
pub mod profile;
pub mod report;
#[cfg(feature = "schema")]
pub mod schema;
pub mod shares;
pub mod threshold;
pub mod units;
