//! Assertions on a golden prompt's answer, written in the runbook as a list:
//! `expect: [{contains: "Paris"}, {max_length: 200}, valid_json]`.
//!
//! The deserializer is written by hand: serde_norway wants `!contains Paris` tags for enum
//! variants with data, which nobody writes in a runbook. A bare name or a one-key map is read
//! here, and an unknown name (`{contians: ..}`) is refused when the runbook loads, listing the
//! known ones; regexes are compiled at load too.

use serde::Deserialize;
use serde::de::{self, MapAccess, Visitor};

/// One check on an answer.
#[derive(Debug, Clone)]
pub enum Expect {
    /// The answer contains this text (case-sensitive; use `regex` with `(?i)` otherwise).
    Contains(String),
    /// The answer does not contain this text.
    NotContains(String),
    /// The answer matches this regular expression somewhere.
    Regex(AnswerPattern),
    /// The answer has something besides whitespace.
    NonEmpty,
    /// The answer has at most this many characters.
    MaxLength(usize),
    /// The whole answer (trimmed) parses as JSON; a fenced ```json block does not.
    ValidJson,
}

/// A regex compiled when the runbook loads.
#[derive(Debug, Clone)]
pub struct AnswerPattern(pub regex::Regex);

impl<'de> Deserialize<'de> for AnswerPattern {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        regex::Regex::new(&text).map(AnswerPattern).map_err(|e| {
            serde::de::Error::custom(format!(
                "`expect: regex` `{text}` is not a valid regular expression: {e}"
            ))
        })
    }
}

/// Every assertion name, for error messages.
const NAMES: &[&str] = &[
    "contains",
    "not_contains",
    "regex",
    "non_empty",
    "max_length",
    "valid_json",
];

impl<'de> Deserialize<'de> for Expect {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ExpectVisitor)
    }
}

struct ExpectVisitor;

impl<'de> Visitor<'de> for ExpectVisitor {
    type Value = Expect;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an assertion: `non_empty`, `valid_json`, or a one-key map such as `{contains: Paris}`, `{not_contains: ..}`, `{regex: ..}`, `{max_length: 200}`")
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<Expect, E> {
        match name {
            "non_empty" => Ok(Expect::NonEmpty),
            "valid_json" => Ok(Expect::ValidJson),
            "contains" | "not_contains" | "regex" | "max_length" => Err(E::custom(format!(
                "assertion `{name}` needs a value, e.g. `{{{name}: ...}}`"
            ))),
            _ => Err(E::unknown_variant(name, NAMES)),
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Expect, A::Error> {
        let name: String = map.next_key()?.ok_or_else(|| {
            de::Error::custom("empty assertion `{}`; expected e.g. `{contains: Paris}`")
        })?;
        let expect = match name.as_str() {
            "contains" => Expect::Contains(map.next_value()?),
            "not_contains" => Expect::NotContains(map.next_value()?),
            "regex" => Expect::Regex(map.next_value()?),
            "max_length" => Expect::MaxLength(map.next_value()?),
            // Allow `{non_empty: true}` for symmetry with the map form.
            "non_empty" | "valid_json" => {
                if !map.next_value::<bool>()? {
                    return Err(de::Error::custom(format!(
                        "`{name}: false` checks nothing; remove the assertion"
                    )));
                }
                if name == "non_empty" {
                    Expect::NonEmpty
                } else {
                    Expect::ValidJson
                }
            }
            _ => return Err(de::Error::unknown_variant(&name, NAMES)),
        };
        if let Some(extra) = map.next_key::<String>()? {
            return Err(de::Error::custom(format!(
                "one assertion per list item: `{name}` and `{extra}` are in the same map; write `[{{{name}: ..}}, {{{extra}: ..}}]`"
            )));
        }
        Ok(expect)
    }
}

impl Expect {
    /// `Ok` if `answer` satisfies the check, else why not, in one line.
    pub fn check(&self, answer: &str) -> Result<(), String> {
        let ok = match self {
            Expect::Contains(needle) => answer.contains(needle.as_str()),
            Expect::NotContains(needle) => !answer.contains(needle.as_str()),
            Expect::Regex(pattern) => pattern.0.is_match(answer),
            Expect::NonEmpty => !answer.trim().is_empty(),
            Expect::MaxLength(max) => answer.chars().count() <= *max,
            Expect::ValidJson => serde_json::from_str::<serde_json::Value>(answer.trim()).is_ok(),
        };
        if ok {
            return Ok(());
        }
        Err(match self {
            Expect::Contains(needle) => format!("expected to contain `{needle}`"),
            Expect::NotContains(needle) => format!("expected not to contain `{needle}`"),
            Expect::Regex(pattern) => format!("expected to match `{}`", pattern.0.as_str()),
            Expect::NonEmpty => "expected a non-empty answer".to_string(),
            Expect::MaxLength(max) => format!(
                "expected at most {max} characters, got {}",
                answer.chars().count()
            ),
            Expect::ValidJson => match serde_json::from_str::<serde_json::Value>(answer.trim()) {
                Err(e) => format!("expected valid JSON: {e}"),
                Ok(_) => "expected valid JSON".to_string(),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<Vec<Expect>, String> {
        serde_norway::from_str(yaml).map_err(|e| e.to_string())
    }

    #[test]
    fn yaml_form_reads_every_kind() {
        let all = parse(
            "[{contains: Paris}, {not_contains: Lyon}, {regex: '^The'}, non_empty, {max_length: 20}, valid_json]",
        )
        .unwrap();
        assert_eq!(all.len(), 6);
        assert!(all[0].check("Paris!").is_ok());
        assert!(
            all[1]
                .check("Lyon")
                .unwrap_err()
                .contains("not to contain `Lyon`")
        );
        assert!(all[2].check("The end").is_ok() && all[2].check("end").is_err());
        assert!(all[3].check("  \n").is_err());
        assert!(all[4].check(&"é".repeat(20)).is_ok());
        assert_eq!(
            all[4].check(&"é".repeat(21)).unwrap_err(),
            "expected at most 20 characters, got 21"
        );
        assert!(all[5].check(" {\"ok\": true}\n").is_ok());
        assert!(
            all[5]
                .check("```json\n{}\n```")
                .unwrap_err()
                .starts_with("expected valid JSON: ")
        );
    }

    #[test]
    fn typos_and_bad_regexes_fail_at_load() {
        let err = parse("[{contians: Paris}]").unwrap_err();
        assert!(err.contains("unknown variant `contians`"), "{err}");
        let err = parse("[valid_jsn]").unwrap_err();
        assert!(err.contains("unknown variant `valid_jsn`"), "{err}");
        let err = parse("[{regex: 'a(b'}]").unwrap_err();
        assert!(err.contains("is not a valid regular expression"), "{err}");
        let err = parse("[{max_length: -3}]").unwrap_err();
        assert!(!err.is_empty());
        let err = parse("[{contains: a, max_length: 3}]").unwrap_err();
        assert!(err.contains("one assertion per list item"), "{err}");
        let err = parse("[contains]").unwrap_err();
        assert!(err.contains("needs a value"), "{err}");
        assert!(matches!(
            parse("[{valid_json: true}]").unwrap()[..],
            [Expect::ValidJson]
        ));
    }
}
