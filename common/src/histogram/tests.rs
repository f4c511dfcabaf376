//! Property: splitting values over several histograms, shipping each through the codec and merging them in any
//! order gives exactly the histogram of all values.

use super::*;
use proptest::prelude::*;

fn histogram_of(values: &[u64]) -> LatencyHistogram {
    let mut h = new_histogram();
    for &v in values {
        h.record(v).expect("auto-resize records any value");
    }
    h
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn merge_of_parts_equals_whole(
        values in prop::collection::vec(
            prop_oneof![0u64..1_000, 1_000u64..100_000, 100_000u64..60_000_000], 1..2_000),
        parts in 1usize..=8,
        assignment_seed in any::<u64>(),
        order_seed in any::<u64>(),
    ) {
        let whole = histogram_of(&values);

        let mut split: Vec<Vec<u64>> = vec![Vec::new(); parts];
        let mut state = assignment_seed | 1;
        for &v in &values {
            state ^= state << 13; state ^= state >> 7; state ^= state << 17;
            split[(state % parts as u64) as usize].push(v);
        }
        let mut encoded: Vec<Vec<u8>> = split.iter().map(|p| encode(&histogram_of(p)).expect("encode")).collect();
        let mut state = order_seed | 1;
        for i in (1..encoded.len()).rev() {
            state ^= state << 13; state ^= state >> 7; state ^= state << 17;
            encoded.swap(i, (state % (i as u64 + 1)) as usize);
        }
        let mut merged = new_histogram();
        for bytes in &encoded {
            merge_encoded(&mut merged, bytes).expect("merge");
        }

        prop_assert_eq!(merged.len(), whole.len());
        prop_assert_eq!(merged.min(), whole.min());
        prop_assert_eq!(merged.max(), whole.max());
        let buckets = |h: &LatencyHistogram| h.iter_recorded().map(|v| (v.value_iterated_to(), v.count_at_value())).collect::<Vec<_>>();
        prop_assert_eq!(buckets(&merged), buckets(&whole));
        for q in [0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 0.9999, 1.0] {
            prop_assert_eq!(merged.value_at_quantile(q), whole.value_at_quantile(q), "quantile {}", q);
        }
    }
}

#[test]
fn empty_bytes_decode_to_empty_histogram() {
    assert_eq!(decode(&[]).expect("decode").len(), 0);
}

#[test]
fn garbage_bytes_are_an_error() {
    assert!(decode(b"not a histogram").is_err());
}
