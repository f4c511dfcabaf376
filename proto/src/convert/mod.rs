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

mod run;
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
fn known<E: TryFrom<i32>>(field: &'static str, value: i32) -> Result<E, ConvertError> {
    E::try_from(value).map_err(|_| ConvertError::UnknownEnum { field, value })
}
