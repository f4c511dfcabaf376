//! Plan errors, each with the file, line and column it is about.

use std::fmt;
use std::ops::Range;

/// One problem in a plan, located at a 1-based line and column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanIssue {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// Every problem found in a plan (validation reports them all, not only the first).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct PlanError {
    pub file: String,
    pub issues: Vec<PlanIssue>,
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, issue) in self.issues.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(
                f,
                "{}:{}:{}: {}",
                self.file, issue.line, issue.column, issue.message
            )?;
        }
        Ok(())
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub(crate) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// Collects issues while validating.
pub(crate) struct Issues<'a> {
    text: &'a str,
    pub(crate) found: Vec<PlanIssue>,
}

impl<'a> Issues<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        Issues {
            text,
            found: Vec::new(),
        }
    }

    pub(crate) fn at(&mut self, span: Range<usize>, message: impl std::fmt::Display) {
        let (line, column) = line_column(self.text, span.start);
        self.found.push(PlanIssue {
            line,
            column,
            message: message.to_string(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_are_one_based() {
        let text = "a = 1\nbb = 2\n";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 6), (2, 1));
        assert_eq!(line_column(text, 9), (2, 4));
    }
}

/// What is wrong with one value of a plan (or of a spec that came over the wire), said for its author; the caller
/// adds where it is. Never repeats a URL or a value that may hold a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Problem(pub String);

impl From<&str> for Problem {
    fn from(text: &str) -> Self {
        Problem(text.to_owned())
    }
}

impl From<String> for Problem {
    fn from(text: String) -> Self {
        Problem(text)
    }
}
