//! Thresholds: `"<metric path> <op> <number>"`, e.g. `"latency_ms.p95 < 300"`, evaluated on a scenario's metrics.

use std::fmt;

/// Comparison of a threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
}

impl Op {
    fn parse(text: &str) -> Option<Op> {
        Some(match text {
            "<" => Op::Lt,
            "<=" => Op::Le,
            ">" => Op::Gt,
            ">=" => Op::Ge,
            "==" => Op::Eq,
            _ => return None,
        })
    }

    fn holds(self, actual: f64, limit: f64) -> bool {
        match self {
            Op::Lt => actual < limit,
            Op::Le => actual <= limit,
            Op::Gt => actual > limit,
            Op::Ge => actual >= limit,
            Op::Eq => actual == limit,
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Eq => "==",
        })
    }
}

/// A parsed threshold. Whether its metric exists for the scenario's kind is checked by plan validation.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    /// The text as written in the plan.
    pub expr: String,
    /// Dotted path into the scenario's `metrics`, e.g. `latency_ms.p95`.
    pub metric: String,
    pub op: Op,
    pub limit: f64,
}

/// A threshold expression that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid threshold {0:?}: expected \"<metric path> <op> <number>\" with op one of < <= > >= ==, such as \
     \"latency_ms.p95 < 300\""
)]
pub struct ThresholdError(pub String);

impl Threshold {
    /// Parses `"<metric path> <op> <number>"`.
    pub fn parse(expr: &str) -> Result<Threshold, ThresholdError> {
        let expected = || ThresholdError(expr.to_owned());
        let parts: Vec<&str> = expr.split_whitespace().collect();
        let [metric, op, limit] = parts.as_slice() else {
            return Err(expected());
        };
        let op = Op::parse(op).ok_or_else(expected)?;
        let limit: f64 = limit.parse().map_err(|_| expected())?;
        if !limit.is_finite()
            || !metric
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        {
            return Err(expected());
        }
        Ok(Threshold {
            expr: expr.to_owned(),
            metric: (*metric).to_owned(),
            op,
            limit,
        })
    }

    /// Whether `actual` meets the threshold. A figure that was not measured never passes.
    pub fn holds(&self, actual: Option<f64>) -> bool {
        actual.is_some_and(|a| a.is_finite() && self.op.holds(a, self.limit))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_evaluates() {
        let t = Threshold::parse("latency_ms.p95 < 300").expect("valid");
        assert_eq!(t.metric, "latency_ms.p95");
        assert!(t.holds(Some(299.9)));
        assert!(!t.holds(Some(300.0)));
        assert!(!t.holds(None), "not measured never passes");
        assert!(
            Threshold::parse("success_rate >= 0.99")
                .expect("valid")
                .holds(Some(1.0))
        );
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "latency_ms.p95 <300",
            "p95 ~ 3",
            "p95 < x",
            "a b < 3",
            "p95 < NaN",
        ] {
            assert!(Threshold::parse(bad).is_err(), "{bad}");
        }
    }
}
