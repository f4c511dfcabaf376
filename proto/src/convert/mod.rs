//! Wire ↔ domain: every conversion between the generated `v1` types and `loadgrade-common`'s domain types, as
//! `From` (domain to wire, which cannot fail) and `TryFrom` (wire to domain, which checks what it takes in).
//! Services, the runner, the store and the agent use domain types only.

/// `From` both ways between a domain struct and a wire struct with the same fields of the same types.
macro_rules! mirror {
    ($domain:path, $wire:path { $($field:ident),* $(,)? }) => {
        impl From<$domain> for $wire {
            fn from(v: $domain) -> Self {
                Self { $($field: v.$field),* }
            }
        }

        impl From<$wire> for $domain {
            fn from(v: $wire) -> Self {
                Self { $($field: v.$field),* }
            }
        }
    };
}

mod cache;
mod pagination;
mod run;
mod scrape;
mod session;
mod shard;

/// A wire message that does not make a domain value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConvertError {
    #[error("{0} is missing")]
    Missing(&'static str),
    #[error("{field} has an unknown value {value}")]
    UnknownEnum { field: &'static str, value: i32 },
    #[error("{field}: {why}")]
    Invalid { field: &'static str, why: String },
}

/// A required enum value: unknown or unspecified values are errors.
/// The most characters of an agent's free text (a refusal's reason, a failure) kept.
pub const MAX_AGENT_TEXT: usize = 500;

/// An agent's free text made safe to print, log and render: at most [`MAX_AGENT_TEXT`] characters, every control
/// character (a newline, an escape sequence) written as its escape, so no text can forge a line.
fn agent_text(text: String) -> String {
    bounded_text(&text, MAX_AGENT_TEXT, false)
}

/// At most `max` characters of `text`, control characters escaped (newlines kept when `lines`).
fn bounded_text(text: &str, max: usize, lines: bool) -> String {
    let mut out = String::with_capacity(text.len().min(max));
    for (i, c) in text.chars().enumerate() {
        if i == max {
            out.push_str("… (cut)");
            break;
        }
        if c.is_control() && !(lines && c == '\n') {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

fn known<E: TryFrom<i32>>(field: &'static str, value: i32) -> Result<E, ConvertError> {
    E::try_from(value).map_err(|_| ConvertError::UnknownEnum { field, value })
}

#[cfg(test)]
mod text_tests {
    use super::*;

    #[test]
    fn agent_text_cannot_forge_lines_or_grow_without_bound() {
        assert_eq!(
            agent_text("a\n  - PASS\u{1b}[2J".into()),
            "a\\n  - PASS\\u{1b}[2J"
        );
        let long = agent_text("x".repeat(1_000_000));
        assert!(long.chars().count() <= MAX_AGENT_TEXT + 10);
    }
}
