//! Analysis of a capacity ramp: the cliff, saturation, capacity and autoscale point, memory at 90 % of capacity,
//! and a Universal Scalability Law fit. Pure functions of the measured steps.

pub mod capacity;
mod usl;

pub use usl::fit_usl;

use loadgrade_common::plan::CliffRule;

/// What the cliff analysis needs of one step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepFigures {
    pub concurrency: u64,
    /// Goodput: successful responses per second in the step's window.
    pub goodput: Option<f64>,
    pub p95_ms: Option<f64>,
    pub error_rate: Option<f64>,
}

/// The first step past the cliff and which rule it broke. Baseline = the first step. A step is past the cliff when
/// its error rate exceeds the rule's; or its p95 exceeds `p95_ms` (when the plan gives an SLO); or its p95 exceeds
/// `latency_factor` x the baseline's AND the baseline by `min_increase_ms` (a 3x rise from 0.04 ms is noise, not a
/// cliff); or its goodput falls more than `throughput_drop` below the best earlier step's.
pub fn find_cliff(steps: &[StepFigures], rule: &CliffRule) -> Option<(usize, String)> {
    let baseline_p95 = steps.first().and_then(|s| s.p95_ms);
    let mut best_goodput: Option<f64> = None;
    for (i, step) in steps.iter().enumerate() {
        let c = step.concurrency;
        if let Some(rate) = step.error_rate
            && rate > rule.error_rate
        {
            return Some((
                i,
                format!(
                    "error rate {rate:.4} above {} at {c} connections",
                    rule.error_rate
                ),
            ));
        }
        if let (Some(bound), Some(p95)) = (rule.p95_ms, step.p95_ms)
            && p95 > bound
        {
            return Some((
                i,
                format!("p95 {p95:.2} ms above the bound of {bound} ms at {c} connections"),
            ));
        }
        if i > 0 {
            if let (Some(base), Some(p95)) = (baseline_p95, step.p95_ms)
                && p95 > rule.latency_factor * base
                && p95 > base + rule.min_increase_ms
            {
                return Some((
                    i,
                    format!(
                        "p95 {p95:.2} ms above {} x the first step's {base:.2} ms (and more than {} ms above it) at \
                         {c} connections",
                        rule.latency_factor, rule.min_increase_ms
                    ),
                ));
            }
            if let (Some(best), Some(x)) = (best_goodput, step.goodput)
                && x < (1.0 - rule.throughput_drop) * best
            {
                return Some((
                    i,
                    format!(
                        "goodput {x:.1} req/s more than {:.0} % below the best earlier {best:.1} req/s at {c} \
                         connections",
                        rule.throughput_drop * 100.0
                    ),
                ));
            }
        }
        if let Some(x) = step.goodput {
            best_goodput = Some(best_goodput.map_or(x, |b: f64| b.max(x)));
        }
    }
    None
}

/// Growth below this share no longer counts as goodput growing.
pub const SATURATION_GROWTH: f64 = 0.05;

/// Lowest concurrency after which no step raises goodput by more than [`SATURATION_GROWTH`]; `None` when goodput
/// was still growing at the last step (saturation not reached) or fewer than two steps were measured.
pub fn saturation(steps: &[StepFigures]) -> Option<u64> {
    let measured: Vec<(u64, f64)> = steps
        .iter()
        .filter_map(|s| Some((s.concurrency, s.goodput?)))
        .collect();
    let found = measured.iter().enumerate().find(|(i, (_, x))| {
        measured[i + 1..]
            .iter()
            .all(|(_, later)| *later <= x * (1.0 + SATURATION_GROWTH))
    })?;
    (found.0 + 1 < measured.len()).then_some(found.1.0)
}

/// Linear interpolation of `points` (concurrency, value) at `at`, clamped to the measured range.
pub fn interpolate(points: &[(u64, f64)], at: f64) -> Option<f64> {
    let first = points.first()?;
    if at <= first.0 as f64 {
        return Some(first.1);
    }
    for pair in points.windows(2) {
        let ((c0, v0), (c1, v1)) = (pair[0], pair[1]);
        if at <= c1 as f64 {
            let t = (at - c0 as f64) / (c1 - c0).max(1) as f64;
            return Some(v0 + t * (v1 - v0));
        }
    }
    points.last().map(|p| p.1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(c: u64, x: f64, p95: f64, err: f64) -> StepFigures {
        StepFigures {
            concurrency: c,
            goodput: Some(x),
            p95_ms: Some(p95),
            error_rate: Some(err),
        }
    }

    #[test]
    fn the_cliff_is_the_first_step_breaking_a_rule() {
        let rule = CliffRule {
            latency_factor: 2.0,
            error_rate: 0.01,
            throughput_drop: 0.1,
            ..CliffRule::default()
        };
        let steps = [
            step(4, 100.0, 10.0, 0.0),
            step(8, 200.0, 12.0, 0.0),
            step(12, 210.0, 19.0, 0.0),
            step(16, 212.0, 25.0, 0.0),
        ];
        assert_eq!(find_cliff(&steps, &rule).map(|c| c.0), Some(3), "latency");
        let errors = [step(4, 100.0, 10.0, 0.0), step(8, 200.0, 10.0, 0.02)];
        assert!(
            find_cliff(&errors, &rule)
                .expect("cliff")
                .1
                .contains("error rate")
        );
        let drop = [
            step(4, 100.0, 10.0, 0.0),
            step(8, 200.0, 10.0, 0.0),
            step(12, 170.0, 10.0, 0.0),
        ];
        assert!(
            find_cliff(&drop, &rule)
                .expect("cliff")
                .1
                .contains("goodput")
        );
        let plateau = [
            step(4, 100.0, 10.0, 0.0),
            step(8, 200.0, 15.0, 0.0),
            step(12, 195.0, 19.0, 0.0),
        ];
        assert_eq!(
            find_cliff(&plateau, &rule),
            None,
            "a plateau within the drop bound is not a cliff"
        );
    }

    /// Regression (issue 8, item 5): a ramp against a target answering in 0.04 ms declared a cliff at 6
    /// connections because p95 went to 0.12 ms (3x). The rise must also exceed `min_increase_ms`.
    #[test]
    fn a_latency_rise_within_the_floor_is_noise() {
        let rule = CliffRule::default();
        let fast = [
            step(2, 5000.0, 0.04, 0.0),
            step(6, 9000.0, 0.12, 0.0),
            step(10, 9500.0, 0.9, 0.0),
        ];
        assert_eq!(find_cliff(&fast, &rule), None);
        let slo = CliffRule {
            p95_ms: Some(0.5),
            ..CliffRule::default()
        };
        let (at, why) = find_cliff(&fast, &slo).expect("the SLO bound");
        assert_eq!(at, 2);
        assert!(why.contains("above the bound of 0.5 ms"), "{why}");
    }

    #[test]
    fn saturation_is_where_growth_stops() {
        let steps = [
            step(4, 100.0, 1.0, 0.0),
            step(8, 190.0, 1.0, 0.0),
            step(12, 196.0, 1.0, 0.0),
            step(16, 199.0, 1.0, 0.0),
        ];
        assert_eq!(saturation(&steps), Some(8));
        assert_eq!(saturation(&steps[..1]), None, "one step shows no plateau");
        let growing = [
            step(4, 100.0, 1.0, 0.0),
            step(8, 200.0, 1.0, 0.0),
            step(12, 300.0, 1.0, 0.0),
        ];
        assert_eq!(saturation(&growing), None, "still growing at the last step");
    }

    #[test]
    fn interpolation_is_linear_and_clamped() {
        let points = [(10, 100.0), (20, 200.0)];
        assert_eq!(interpolate(&points, 15.0), Some(150.0));
        assert_eq!(interpolate(&points, 5.0), Some(100.0));
        assert_eq!(interpolate(&points, 30.0), Some(200.0));
        assert_eq!(interpolate(&[], 1.0), None);
    }
}
