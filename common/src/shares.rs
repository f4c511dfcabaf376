//! Splits a plan's total (rate, connections, request budget) over agents by weight into integer shares that
//! sum exactly to the total (largest-remainder method).

/// Shares of `total` proportional to `weights`. Each share differs from its ideal `total * w / sum(w)` by less
/// than 1, and the shares sum to `total`. All-zero weights count as equal weights; no weights give no shares.
pub fn split_by_weight(total: u64, weights: &[u64]) -> Vec<u64> {
    if weights.is_empty() {
        return Vec::new();
    }
    let weights: Vec<u128> = if weights.iter().all(|&w| w == 0) {
        vec![1; weights.len()]
    } else {
        weights.iter().map(|&w| u128::from(w)).collect()
    };
    let sum: u128 = weights.iter().sum();
    let total = u128::from(total);
    let mut shares: Vec<u128> = weights.iter().map(|w| total * w / sum).collect();
    let assigned: u128 = shares.iter().sum();
    // Hand the remaining units to the largest remainders; ties go to the earlier agent so the split is stable.
    let mut by_remainder: Vec<usize> = (0..weights.len()).collect();
    by_remainder.sort_by_key(|&i| std::cmp::Reverse(total * weights[i] % sum));
    for &i in by_remainder.iter().take((total - assigned) as usize) {
        shares[i] += 1;
    }
    shares.into_iter().map(|s| s as u64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn shares_sum_to_total_and_stay_within_one_of_ideal(
            total in prop_oneof![0u64..1_000, any::<u64>()],
            weights in prop::collection::vec(prop_oneof![0u64..64, any::<u64>()], 1..16),
        ) {
            let shares = split_by_weight(total, &weights);
            prop_assert_eq!(shares.len(), weights.len());
            prop_assert_eq!(shares.iter().map(|&s| u128::from(s)).sum::<u128>(), u128::from(total));
            let effective: Vec<u128> = if weights.iter().all(|&w| w == 0) {
                vec![1; weights.len()]
            } else {
                weights.iter().map(|&w| u128::from(w)).collect()
            };
            let sum: u128 = effective.iter().sum();
            for (share, w) in shares.iter().zip(&effective) {
                // |share - total*w/sum| < 1  <=>  |share*sum - total*w| < sum
                let scaled = u128::from(*share) * sum;
                let ideal = u128::from(total) * w;
                prop_assert!(scaled.abs_diff(ideal) < sum, "share {} weight {} sum {}", share, w, sum);
            }
        }
    }

    #[test]
    fn equal_weights_split_evenly_with_remainder_first() {
        assert_eq!(split_by_weight(10, &[1, 1, 1]), vec![4, 3, 3]);
        assert_eq!(split_by_weight(0, &[2, 1]), vec![0, 0]);
        assert_eq!(split_by_weight(7, &[0, 0]), vec![4, 3]);
        assert!(split_by_weight(5, &[]).is_empty());
    }
}
