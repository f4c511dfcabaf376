//! The plan as written, every value kept with its span for error locations. The top-level table becomes a
//! [`RawPlan`]; each `[[scenario]]` table stays a [`ScenarioTable`] from which the kind's own module deserializes
//! the fields it declares (vector's habit: a component owns its config struct). Only validation reads these; the
//! typed [`super::Plan`] is what travels on.

use super::errors::Issues;
use serde::Deserialize;
use serde::de::{DeserializeOwned, IntoDeserializer as _};
use std::cell::Cell;
use std::ops::Range;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// An optional field with its location.
pub(crate) type Field<T> = Option<Spanned<T>>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPlan {
    pub name: Field<String>,
    pub min_agents: Field<i64>,
    /// Which agents may run it: labels each must carry (`agents = { zone = "a" }`).
    pub agents: Field<std::collections::BTreeMap<String, String>>,
    pub ready_timeout: Field<String>,
    pub preflight: Field<String>,
    pub orphan_timeout: Field<String>,
    pub budget: Option<RawBudget>,
    pub grading: Option<RawGrading>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBudget {
    pub memory: Field<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawGrading {
    pub fail_below: Field<String>,
}

/// What every scenario has, whatever its kind.
#[derive(Debug, Deserialize)]
pub(crate) struct RawCommon {
    pub name: Field<String>,
    pub kind: Field<String>,
    #[serde(default)]
    pub thresholds: Vec<Spanned<String>>,
}

/// A parsed plan document: the top-level fields and the scenario tables.
pub(crate) struct RawDocument<'i> {
    pub plan: RawPlan,
    pub scenarios: Vec<ScenarioTable<'i>>,
}

/// One `[[scenario]]` table, its keys and values located.
pub(crate) struct ScenarioTable<'i> {
    pub span: Range<usize>,
    table: DeTable<'i>,
}

/// Parses the document. A syntax error or a bad top-level field is one located issue.
pub(crate) fn parse_document<'i>(
    text: &'i str,
    issues: &mut Issues<'_>,
) -> Option<RawDocument<'i>> {
    let document = DeTable::parse(text)
        .map_err(|e| issues.at(e.span().unwrap_or(0..0), e.message().trim()))
        .ok()?;
    let span = document.span();
    let mut table = document.into_inner();
    let mut scenarios = Vec::new();
    let scenario_key = table
        .keys()
        .find(|k| k.get_ref().as_ref() == "scenario")
        .cloned();
    if let Some(key) = scenario_key {
        let value = table.remove(&key)?;
        match value.into_inner() {
            DeValue::Array(items) => {
                for item in items {
                    let item_span = item.span();
                    match item.into_inner() {
                        DeValue::Table(table) => scenarios.push(ScenarioTable {
                            span: item_span,
                            table,
                        }),
                        _ => issues.at(item_span, "each scenario must be a [[scenario]] table"),
                    }
                }
            }
            _ => issues.at(key.span(), "`scenario` must be [[scenario]] tables"),
        }
    }
    let value = Spanned::new(span.clone(), DeValue::Table(table));
    let plan = RawPlan::deserialize(value.into_deserializer())
        .map_err(|e| issues.at(e.span().unwrap_or(span), e.message().trim()))
        .ok()?;
    Some(RawDocument { plan, scenarios })
}

impl ScenarioTable<'_> {
    /// The fields `T` declares, deserialized from this table; other keys are left to [`Self::unknown_keys`]. A value
    /// of the wrong type is a located issue and gives `None`.
    pub(crate) fn part<T: DeserializeOwned>(&self, issues: &mut Issues<'_>) -> Option<T> {
        let fields = field_names::<T>();
        let part: DeTable<'_> = self
            .table
            .iter()
            .filter(|(k, _)| fields.contains(&k.get_ref().as_ref()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let value = Spanned::new(self.span.clone(), DeValue::Table(part));
        T::deserialize(value.into_deserializer())
            .map_err(|e| {
                issues.at(
                    e.span().unwrap_or_else(|| self.span.clone()),
                    e.message().trim(),
                )
            })
            .ok()
    }

    /// Keys not in `known`, with their locations, in the order written.
    pub(crate) fn unknown_keys(&self, known: &[&str]) -> Vec<(String, Range<usize>)> {
        let mut unknown: Vec<(String, Range<usize>)> = self
            .table
            .keys()
            .filter(|k| !known.contains(&k.get_ref().as_ref()))
            .map(|k| (k.get_ref().to_string(), k.span()))
            .collect();
        unknown.sort_by_key(|(_, span)| span.start);
        unknown
    }
}

/// The field names `T`'s derived `Deserialize` declares (serde hands them to `deserialize_struct`), so every kind's
/// list of accepted keys is its raw struct itself, never a second hand-written list.
pub(crate) fn field_names<T: DeserializeOwned>() -> &'static [&'static str] {
    let names = Cell::new(&[][..]);
    let _ = T::deserialize(introspect::Introspect(&names));
    names.get()
}

mod introspect {
    //! A deserializer that records the field list of the struct asked for, then stops.

    use serde::de::{Deserializer, Visitor};
    use std::cell::Cell;
    use std::fmt;

    pub(super) struct Introspect<'a>(pub &'a Cell<&'static [&'static str]>);

    #[derive(Debug)]
    pub(super) struct Stop;

    impl fmt::Display for Stop {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("field names recorded")
        }
    }

    impl std::error::Error for Stop {}

    impl serde::de::Error for Stop {
        fn custom<T: fmt::Display>(_: T) -> Self {
            Stop
        }
    }

    impl<'de> Deserializer<'de> for Introspect<'_> {
        type Error = Stop;

        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
            Err(Stop)
        }

        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            fields: &'static [&'static str],
            _visitor: V,
        ) -> Result<V::Value, Stop> {
            self.0.set(fields);
            Err(Stop)
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option unit
            unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_names_come_from_the_struct() {
        assert_eq!(field_names::<RawCommon>(), ["name", "kind", "thresholds"]);
        assert_eq!(field_names::<RawBudget>(), ["memory"]);
    }
}
