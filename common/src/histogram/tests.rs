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

/// An uncompressed V2 header with the given payload length, digits and highest value, and `extra` bytes after it.
fn v2_header(payload: u32, digits: u32, highest: u64, extra: usize) -> Vec<u8> {
    let mut bytes = Vec::new();
    bytes.extend(V2_COOKIE.to_be_bytes());
    bytes.extend(payload.to_be_bytes());
    bytes.extend(0u32.to_be_bytes());
    bytes.extend(digits.to_be_bytes());
    bytes.extend(1u64.to_be_bytes());
    bytes.extend(highest.to_be_bytes());
    bytes.extend(1.0f64.to_be_bytes());
    bytes.extend(std::iter::repeat_n(0u8, extra));
    bytes
}

/// Regression (issue 9): 37 bytes whose header claimed a 3.99 GiB payload made the coordinator allocate it (RSS
/// 2.97 GB). Refused from the header, deflated or not.
#[test]
fn a_header_claiming_gigabytes_is_refused_without_allocating() {
    let plain = v2_header(0xEE6B_2800, 3, 1 << 20, 1);
    assert_eq!(plain.len(), 41);
    assert!(
        matches!(decode(&plain), Err(CodecError::OutOfBounds(_))),
        "{:?}",
        decode(&plain)
    );
    let mut deflated = Vec::new();
    {
        use std::io::Write as _;
        let mut z = flate2::write::ZlibEncoder::new(&mut deflated, flate2::Compression::default());
        z.write_all(&plain).expect("deflate");
        z.finish().expect("deflate");
    }
    let mut compressed = Vec::new();
    compressed.extend(V2_COMPRESSED_COOKIE.to_be_bytes());
    compressed.extend((deflated.len() as u32).to_be_bytes());
    compressed.extend(&deflated);
    assert!(matches!(
        decode(&compressed),
        Err(CodecError::OutOfBounds(_))
    ));
    assert!(
        matches!(
            decode(&v2_header(0, 5, 1 << 20, 0)),
            Err(CodecError::OutOfBounds(_))
        ),
        "5 digits"
    );
    assert!(
        matches!(
            decode(&v2_header(0, 3, u64::MAX, 0)),
            Err(CodecError::OutOfBounds(_))
        ),
        "range"
    );
}

/// Regression (issue 9): an interval holding 2^62 values made every percentile of the merged histogram 0.
#[test]
fn a_histogram_with_absurd_counts_is_refused() {
    let mut h = new_histogram();
    h.record_n(1_000, 1 << 62).expect("record");
    let bytes = encode(&h).expect("encode");
    assert!(matches!(decode(&bytes), Err(CodecError::OutOfBounds(_))));
}

proptest! {
    /// Decoding never panics, whatever the bytes (and never allocates by what they claim, see above).
    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = decode(&bytes);
    }

    /// Nor does decoding a real encoding with a few bytes changed.
    #[test]
    fn decoding_a_damaged_encoding_never_panics(
        values in prop::collection::vec(1u64..10_000_000, 1..200),
        damage in prop::collection::vec((any::<usize>(), any::<u8>()), 1..8),
    ) {
        let mut bytes = encode(&histogram_of(&values)).expect("encode");
        for (at, byte) in damage {
            let i = at % bytes.len();
            bytes[i] = byte;
        }
        let _ = decode(&bytes);
    }
}
