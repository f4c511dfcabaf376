//! Field helpers every kind's validation uses: bounded durations, whole numbers, URLs. Each reports a bad value as a
//! located issue and returns `None` for it.

use super::MAX_RUN;
use super::errors::Issues;
pub(crate) use super::raw::Field;
use crate::units::parse_duration;
use std::ops::Range;
use std::time::Duration;
use toml::Spanned;

/// A duration no longer than [`MAX_RUN`].
pub(crate) fn duration(
    issues: &mut Issues<'_>,
    field: Option<&Spanned<String>>,
) -> Option<Duration> {
    let field = field?;
    duration_text(issues, field.get_ref(), field.span())
}

/// A duration from text located at `span`, no longer than [`MAX_RUN`].
pub(crate) fn duration_text(
    issues: &mut Issues<'_>,
    text: &str,
    span: Range<usize>,
) -> Option<Duration> {
    match parse_duration(text) {
        // Durations travel to agents in whole milliseconds: a shorter one would arrive as 0 (no length at all).
        Ok(d) if !d.is_zero() && d < Duration::from_millis(1) => {
            issues.at(
                span,
                format!("{text:?} is shorter than 1ms, the finest step a plan's durations have"),
            );
            None
        }
        Ok(d) if d <= MAX_RUN => Some(d),
        Ok(_) => {
            issues.at(span, too_long(&format!("{text:?}")));
            None
        }
        Err(e) => {
            issues.at(span, e);
            None
        }
    }
}

/// The message for a duration beyond [`MAX_RUN`].
pub(crate) fn too_long(what: &str) -> String {
    format!(
        "{what} is longer than a run may last ({} days at most)",
        MAX_RUN.as_secs() / 86_400
    )
}

/// Sum of durations, `None` on overflow.
pub(crate) fn checked_sum(durations: impl IntoIterator<Item = Duration>) -> Option<Duration> {
    durations
        .into_iter()
        .try_fold(Duration::ZERO, Duration::checked_add)
}

/// A whole number of at least 1.
pub(crate) fn positive(
    issues: &mut Issues<'_>,
    field: Option<&Spanned<i64>>,
    what: &str,
) -> Option<u64> {
    let field = field?;
    match u64::try_from(*field.get_ref()) {
        Ok(v) if v >= 1 => Some(v),
        _ => {
            issues.at(
                field.span(),
                format!(
                    "{what} must be a whole number of at least 1, got {}",
                    field.get_ref()
                ),
            );
            None
        }
    }
}

/// A whole number of at least 1 and at most `max`.
pub(crate) fn positive_at_most(
    issues: &mut Issues<'_>,
    field: Option<&Spanned<i64>>,
    what: &str,
    max: u64,
) -> Option<u64> {
    let value = positive(issues, field, what)?;
    if value > max {
        let span = field.map_or(0..0, Spanned::span);
        issues.at(
            span,
            format!("{what} {value} is more than a scenario may ask for ({max})"),
        );
        return None;
    }
    Some(value)
}

/// A whole number of at least 1 given as any TOML value (a string or float is the same error).
pub(crate) fn whole(
    issues: &mut Issues<'_>,
    field: Option<&Spanned<toml::Value>>,
    what: &str,
) -> Option<u64> {
    let f = field?;
    match f.get_ref().as_integer().and_then(|v| u64::try_from(v).ok()) {
        Some(v) if v >= 1 => Some(v),
        _ => {
            issues.at(
                f.span(),
                format!("{what} must be a whole number of at least 1"),
            );
            None
        }
    }
}

/// An http:// or https:// URL that agents accept ([`super::target_url::TargetUrl::parse`]).
pub(crate) fn check_url(url: &str) -> Result<(), super::Problem> {
    super::target_url::TargetUrl::parse(url)
        .map(drop)
        .map_err(|e| super::Problem(e.to_string()))
}

/// The span of an optional field, or `fallback`.
pub(crate) fn span_or<T>(field: Option<&Spanned<T>>, fallback: &Range<usize>) -> Range<usize> {
    field.map_or_else(|| fallback.clone(), Spanned::span)
}
