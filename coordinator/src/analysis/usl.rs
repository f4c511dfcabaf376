//! Universal Scalability Law fit: X(N) = lambda N / (1 + sigma (N - 1) + kappa N (N - 1)).
//!
//! For fixed sigma and kappa, the best lambda has a closed form (least squares through the origin); sigma and
//! kappa are found by a coarse grid over [0, 1] x [0, 1] (kappa on a log scale) refined around the best point.
//! Written by hand: the fit is twenty lines and no maintained crate does this one regression without pulling in a
//! general optimiser.

use loadgrade_common::report::UslFit;

fn shape(n: f64, sigma: f64, kappa: f64) -> f64 {
    n / (1.0 + sigma * (n - 1.0) + kappa * n * (n - 1.0))
}

/// Sum of squared errors and the best lambda for (sigma, kappa).
fn evaluate(points: &[(f64, f64)], sigma: f64, kappa: f64) -> (f64, f64) {
    let (mut xf, mut ff) = (0.0, 0.0);
    for &(n, x) in points {
        let f = shape(n, sigma, kappa);
        xf += x * f;
        ff += f * f;
    }
    let lambda = if ff > 0.0 { xf / ff } else { 0.0 };
    let sse = points
        .iter()
        .map(|&(n, x)| (x - lambda * shape(n, sigma, kappa)).powi(2))
        .sum();
    (sse, lambda)
}

/// Fits (concurrency, throughput) points; `None` with fewer than 3 points or no throughput.
pub fn fit_usl(points: &[(f64, f64)]) -> Option<UslFit> {
    if points.len() < 3 || points.iter().all(|&(_, x)| x <= 0.0) {
        return None;
    }
    let kappa_at = |k: f64| {
        if k <= 0.0 {
            0.0
        } else {
            10f64.powf(-7.0 + 7.0 * k)
        }
    };
    // Coarse grid: sigma linear, kappa from 1e-7 to 1 on a log scale (and 0).
    let mut best = (f64::INFINITY, 0.0, 0.0);
    for i in 0..=50 {
        for j in 0..=70 {
            let sigma = f64::from(i) / 50.0;
            let kappa = if j == 0 {
                0.0
            } else {
                kappa_at(f64::from(j) / 70.0)
            };
            let (sse, _) = evaluate(points, sigma, kappa);
            if sse < best.0 {
                best = (sse, sigma, kappa);
            }
        }
    }
    // Refine: shrink a box around the best point.
    let (mut sigma, mut kappa) = (best.1, best.2);
    let (mut ds, mut dk) = (0.02, kappa.max(1e-7));
    for _ in 0..60 {
        let mut improved = false;
        for (s, k) in [
            (sigma + ds, kappa),
            (sigma - ds, kappa),
            (sigma, kappa + dk),
            (sigma, kappa - dk),
        ] {
            if !(0.0..=1.0).contains(&s) || !(0.0..=1.0).contains(&k) {
                continue;
            }
            let (sse, _) = evaluate(points, s, k);
            if sse < best.0 {
                best = (sse, s, k);
                sigma = s;
                kappa = k;
                improved = true;
            }
        }
        if !improved {
            ds /= 2.0;
            dk /= 2.0;
        }
    }
    let (sse, lambda) = evaluate(points, sigma, kappa);
    let mean = points.iter().map(|p| p.1).sum::<f64>() / points.len() as f64;
    let sst: f64 = points.iter().map(|p| (p.1 - mean).powi(2)).sum();
    Some(UslFit {
        sigma,
        kappa,
        lambda,
        peak_concurrency: (kappa > 0.0).then(|| ((1.0 - sigma) / kappa).sqrt()),
        r_squared: r_squared(sse, sst, points.len()),
    })
}

/// 1 − SSE/SST. With every point equal (SST 0) there is nothing to explain: a fit without error is 1, any error
/// leaves R² undefined.
fn r_squared(sse: f64, sst: f64, points: usize) -> Option<f64> {
    if sst > 0.0 {
        Some(1.0 - sse / sst)
    } else if sse <= f64::EPSILON * points as f64 {
        Some(1.0)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression (issue 8, item 13): equal goodput at every step left the total sum of squares 0, and R² was
    /// reported 1.0 even where the fit had error.
    #[test]
    fn r_squared_is_undefined_when_nothing_varies_and_the_fit_misses() {
        assert_eq!(r_squared(5.0, 0.0, 4), None);
        assert_eq!(r_squared(0.0, 0.0, 4), Some(1.0));
        assert_eq!(r_squared(1.0, 10.0, 4), Some(0.9));
    }

    #[test]
    fn recovers_known_parameters_within_ten_percent() {
        for (sigma, kappa, lambda) in [
            (0.05, 0.001, 100.0),
            (0.2, 0.0005, 40.0),
            (0.02, 0.0002, 900.0),
        ] {
            let points: Vec<(f64, f64)> = (1..=12)
                .map(|i| f64::from(i * 5))
                .map(|n| (n, lambda * shape(n, sigma, kappa)))
                .collect();
            let fit = fit_usl(&points).expect("fit");
            assert!(
                (fit.sigma - sigma).abs() <= 0.1 * sigma,
                "sigma {} vs {sigma}",
                fit.sigma
            );
            assert!(
                (fit.kappa - kappa).abs() <= 0.1 * kappa,
                "kappa {} vs {kappa}",
                fit.kappa
            );
            assert!(
                (fit.lambda - lambda).abs() <= 0.1 * lambda,
                "lambda {} vs {lambda}",
                fit.lambda
            );
            assert!(fit.r_squared.is_some_and(|r| r > 0.999));
            let peak = ((1.0 - sigma) / kappa).sqrt();
            assert!((fit.peak_concurrency.expect("peak") - peak).abs() <= 0.1 * peak);
        }
    }

    #[test]
    fn too_few_points_give_no_fit() {
        assert!(fit_usl(&[(1.0, 10.0), (2.0, 19.0)]).is_none());
    }
}
