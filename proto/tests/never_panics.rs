//! Messages of the agent protocol from outside never panic their decoding or their conversion to domain types:
//! arbitrary bytes, and valid messages with bytes flipped (so decoding gets past the first field). The same inputs
//! are fuzzed in fuzz/ (agent_messages).

use loadgrade_common::protocol::{FromAgent, ToAgent};
use loadgrade_proto::v1;
use proptest::prelude::*;
use prost::Message as _;

fn interval() -> Vec<u8> {
    v1::AgentMessage {
        kind: Some(v1::agent_message::Kind::Interval(v1::IntervalReport {
            run_id: "r".into(),
            agent: "a".into(),
            epoch: 3,
            seq: 9,
            scenario: "s".into(),
            stage: 2,
            start_unix_ms: 1_700_000_000_000,
            duration_ms: 1000,
            hdr_corrected: vec![0x1c, 0x84, 0x93, 0x14, 0, 0, 0, 1, 2, 3],
            counters: Some(v1::Counters {
                requests: 10,
                ok: 9,
                errors_timeout: 1,
                ..Default::default()
            }),
            ..Default::default()
        })),
    }
    .encode_to_vec()
}

fn assignment() -> Vec<u8> {
    use loadgrade_common::plan::{Arrivals, HttpRequest, LoadModel};
    use loadgrade_common::profile::Profile;
    use loadgrade_common::shard::{Assignment, HttpShard, PartId, ShardProfile, Work};
    use std::time::Duration;
    let shard = HttpShard {
        request: HttpRequest {
            url: "http://127.0.0.1:1/".into(),
            method: "GET".into(),
            headers: vec![("authorization".into(), "Bearer x".into())],
            body: Vec::new(),
            http2: false,
            ca_file: None,
            timeout: Duration::from_secs(1),
            idempotent: true,
            max_response_header_bytes: 4096,
        },
        model: LoadModel::Closed,
        arrivals: Arrivals::Even,
        profile: ShardProfile {
            profile: Profile::constant(4, Some(Duration::from_secs(5))),
            weights: vec![1].into(),
            index: 0,
        },
        connections: 4,
        warmup: Duration::ZERO,
        max_backlog: 0,
        max_requests: None,
    };
    v1::CoordinatorMessage::from(ToAgent::Assign(Box::new(Assignment {
        run_id: "r".into(),
        part: PartId {
            scenario: "s".into(),
            stage: 0,
        },
        start_at_unix_ms: 1_700_000_000_000,
        orphan_timeout: Duration::from_secs(10),
        work: Work::Http(shard),
    })))
    .encode_to_vec()
}

fn both_ways(bytes: &[u8]) {
    if let Ok(wire) = v1::AgentMessage::decode(bytes)
        && let Ok(FromAgent::Interval(report)) = FromAgent::try_from(wire)
    {
        let _ = loadgrade_common::histogram::decode(&report.hdr_corrected);
    }
    if let Ok(wire) = v1::CoordinatorMessage::decode(bytes) {
        let _ = ToAgent::try_from(wire);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        both_ways(&bytes);
    }

    #[test]
    fn valid_messages_with_bytes_changed(
        which in 0..2usize,
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let mut bytes = if which == 0 { interval() } else { assignment() };
        for (at, value) in flips {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        both_ways(&bytes);
    }
}

#[test]
fn the_seeds_are_valid() {
    assert!(matches!(
        FromAgent::try_from(v1::AgentMessage::decode(interval().as_slice()).expect("decodes")),
        Ok(FromAgent::Interval(_))
    ));
    assert!(matches!(
        ToAgent::try_from(
            v1::CoordinatorMessage::decode(assignment().as_slice()).expect("decodes")
        ),
        Ok(ToAgent::Assign(_))
    ));
}
