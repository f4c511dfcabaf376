//! Any bytes as a message of the agent protocol, both ways: what an agent sends the coordinator (hello, heartbeats,
//! intervals with their histograms, shard ends) and what the coordinator sends an agent (assignments, stops, acks).
//! Decoding and conversion to domain types answer with a value or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use loadgrade_common::histogram::decode;
use loadgrade_common::protocol::{FromAgent, ToAgent};
use loadgrade_proto::v1;
use prost::Message as _;

fuzz_target!(|data: &[u8]| {
    if let Ok(wire) = v1::AgentMessage::decode(data)
        && let Ok(FromAgent::Interval(report)) = FromAgent::try_from(wire)
    {
        let _ = decode(&report.hdr_corrected);
        let _ = decode(&report.hdr_raw);
    }
    if let Ok(wire) = v1::CoordinatorMessage::decode(data) {
        let _ = ToAgent::try_from(wire);
    }
});
