//! loadgrade's wire protocol, `loadgrade.v1`: messages and gRPC stubs generated from `proto/loadgrade/v1/*.proto`.
//!
//! The generated code is checked in under `src/gen/` so that building needs no `protoc`;
//! `tests/bootstrap.rs` regenerates it and fails when the checked-in copy differs.

/// Protocol revision spoken by this build; sent in `Hello` and `Welcome`.
pub const PROTOCOL_VERSION: u32 = 1;

/// Generated types of package `loadgrade.v1`.
pub mod v1 {
    #![allow(clippy::all, clippy::pedantic, missing_docs, unreachable_pub)]
    include!("gen/loadgrade.v1.rs");
}

// === impl Counters ===

impl v1::Counters {
    /// Adds every counter of `other` (merging intervals, or load threads, is a plain sum).
    pub fn add(&mut self, other: &v1::Counters) {
        self.requests += other.requests;
        self.ok += other.ok;
        self.errors_connect += other.errors_connect;
        self.errors_timeout += other.errors_timeout;
        self.errors_status_4xx += other.errors_status_4xx;
        self.errors_status_5xx += other.errors_status_5xx;
        self.errors_other += other.errors_other;
        self.dropped += other.dropped;
        self.bytes_received += other.bytes_received;
    }
}
