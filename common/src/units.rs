//! Humane units in plans: durations ("250ms", "30s", "2m") and byte sizes ("256MiB", "4GiB").

use std::time::Duration;

/// A duration or size a plan or flag spells in a way that does not parse.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum UnitError {
    #[error(
        "invalid duration {text:?} ({why}): expected a number with a unit, such as \"250ms\", \"30s\", \"2m\""
    )]
    Duration {
        text: String,
        #[source]
        why: humantime::DurationError,
    },
    #[error(
        "invalid size {0:?}: expected a number with a unit, such as \"512MiB\", \"4GiB\", \"100MB\""
    )]
    Size(String),
}

/// Parses "250ms", "30s", "2m", "1h 30m". A bare number is rejected: the unit is part of the meaning.
pub fn parse_duration(text: &str) -> Result<Duration, UnitError> {
    humantime::parse_duration(text.trim()).map_err(|why| UnitError::Duration {
        text: text.to_owned(),
        why,
    })
}

/// Parses a byte size: a number and one of B, KB, MB, GB, TB (powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024).
pub fn parse_size(text: &str) -> Result<u64, UnitError> {
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let expected = || UnitError::Size(text.to_owned());
    let value: f64 = number.parse().map_err(|_| expected())?;
    let factor: f64 = match unit.trim() {
        "B" => 1.0,
        "KB" | "kB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        "TB" => 1e12,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        "TiB" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return Err(expected()),
    };
    Ok((value * factor).round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("30").is_err());
        assert!(parse_duration("5x").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4GiB"), Ok(4 * 1024 * 1024 * 1024));
        assert_eq!(parse_size("256MiB"), Ok(256 * 1024 * 1024));
        assert_eq!(parse_size("1.5KB"), Ok(1500));
        assert!(parse_size("4 gigs").is_err());
        assert!(parse_size("GiB").is_err());
    }
}
