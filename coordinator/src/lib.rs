//! loadgrade's coordinator: takes plans, shards them over agents connected by gRPC, merges their histograms,
//! grades the result and writes the reports. The `loadgrade` command line is the binary beside this library.
//!
//! Rooms by concern (ARCHITECTURE.md has the map): [`server`] (gRPC services, the agent registry, the one mapping
//! of errors to statuses), [`run`] (barrier, parts, shards, probes, the load guard), [`scenario`] (one module per
//! kind), [`analysis`] (pure functions of measured figures), [`report`] (merge, grading, rendering, compare) and
//! [`store`].

pub mod analysis;
pub mod clock;
mod coordinator;
pub mod demo;
pub mod embedded;
#[cfg(feature = "fault-injection")]
pub mod faults;
pub mod metrics;
pub mod report;
pub mod run;
pub mod scenario;
pub mod server;
pub mod store;

pub use coordinator::{
    CancelOutcome, Coordinator, LATE_GRACE, LATE_QUIET, MAX_KEY, Recovered, RunControl, StartError,
    StartedRun, Submitted,
};
pub use server::{
    ServeOptions, ServerSecurity, serve, spawn_secure_server, spawn_server, spawn_service,
};
