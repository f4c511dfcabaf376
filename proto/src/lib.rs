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
