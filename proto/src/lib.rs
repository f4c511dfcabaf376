//! loadgrade's wire protocol, `loadgrade.v1`: messages and gRPC stubs generated from `proto/loadgrade/v1/*.proto`,
//! and the one place where wire types and domain types (`loadgrade-common`) convert into each other ([`convert`]).
//!
//! The generated code is checked in under `src/gen/` so that building needs no `protoc`;
//! `tests/bootstrap.rs` regenerates it and fails when the checked-in copy differs.

pub mod convert;

pub use convert::ConvertError;

/// Protocol revision spoken by this build; sent in `Hello` and `Welcome`.
/// Revision 2: heartbeats carry the agent's clock estimate and are acknowledged; shard outcomes, run states and
/// verdicts are enums.
/// Revision 3: shards bound a response's head (`max_response_header_bytes`) and intervals count
/// `errors_response_too_large`; an older agent would read neither.
/// Revision 4: a preflight row names what it checked as an enum (`CheckRow.kind`), no longer as text.
pub const PROTOCOL_VERSION: u32 = 4;

/// The `loadgrade.v1` file descriptor set: what gRPC reflection serves (`loadgrade serve --reflection`).
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!("gen/loadgrade.v1.bin");

/// Generated types of package `loadgrade.v1`.
pub mod v1 {
    #![allow(clippy::all, clippy::pedantic, missing_docs, unreachable_pub)]
    include!("gen/loadgrade.v1.rs");
}
