//! Grades and verdicts.
//!
//! The grade (this is the simple model; a fuller one comes later): A when every threshold passes, otherwise one
//! letter lower per started quarter of thresholds that fail — up to 25 % failing is B, up to 50 % C, up to 75 % D,
//! more F. The verdict is FAIL when the grade is below the plan's `grading.fail_below` (default "A", so any failed
//! threshold fails the run), INVALID when the result cannot be trusted (an agent assigned work never reported, no
//! agents were ready), DEGRADED when it can be partly trusted, PASS otherwise.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Grade {
    A,
    B,
    C,
    D,
    F,
}

impl Grade {
    /// The grade when `failed` of `total` thresholds fail.
    pub fn from_failures(failed: usize, total: usize) -> Grade {
        if failed == 0 || total == 0 {
            return Grade::A;
        }
        let quarters = (failed * 4).div_ceil(total);
        match quarters {
            0 => Grade::A,
            1 => Grade::B,
            2 => Grade::C,
            3 => Grade::D,
            _ => Grade::F,
        }
    }

    /// Whether this grade is worse than `bar`.
    pub fn is_below(self, bar: Grade) -> bool {
        self > bar
    }
}

impl FromStr for Grade {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "A" => Ok(Grade::A),
            "B" => Ok(Grade::B),
            "C" => Ok(Grade::C),
            "D" => Ok(Grade::D),
            "F" => Ok(Grade::F),
            _ => Err(format!(
                "invalid grade {s:?}: expected one of A, B, C, D, F"
            )),
        }
    }
}

impl fmt::Display for Grade {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Verdict {
    Pass,
    Fail,
    Degraded,
    Invalid,
}

impl Verdict {
    /// The process exit code documented in the README: 0 PASS, 3 FAIL, 4 DEGRADED or INVALID.
    pub fn exit_code(self) -> i32 {
        match self {
            Verdict::Pass => 0,
            Verdict::Fail => 3,
            Verdict::Degraded | Verdict::Invalid => 4,
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
            Verdict::Degraded => "DEGRADED",
            Verdict::Invalid => "INVALID",
        })
    }
}

impl FromStr for Verdict {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "PASS" => Ok(Verdict::Pass),
            "FAIL" => Ok(Verdict::Fail),
            "DEGRADED" => Ok(Verdict::Degraded),
            "INVALID" => Ok(Verdict::Invalid),
            _ => Err(format!("unknown verdict {s:?}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grade_drops_by_quarters_of_failures() {
        assert_eq!(Grade::from_failures(0, 4), Grade::A);
        assert_eq!(Grade::from_failures(1, 4), Grade::B);
        assert_eq!(Grade::from_failures(1, 10), Grade::B);
        assert_eq!(Grade::from_failures(2, 4), Grade::C);
        assert_eq!(Grade::from_failures(3, 4), Grade::D);
        assert_eq!(Grade::from_failures(4, 4), Grade::F);
        assert_eq!(Grade::from_failures(1, 1), Grade::F);
        assert!(Grade::B.is_below(Grade::A));
        assert!(!Grade::C.is_below(Grade::C));
    }
}
