//! JSON parsing that refuses duplicate object keys at every level (§2.3.1): serde_json keeps
//! the last value of a repeated key silently, so a second `"pinned": false` could unpin an
//! addon unseen.

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::fmt;

struct Strict(Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Strict;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Strict, E> {
        Ok(Strict(Value::Bool(v)))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Strict, E> {
        Ok(Strict(Value::from(v)))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Strict, E> {
        Ok(Strict(Value::from(v)))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Strict, E> {
        Ok(Strict(Value::from(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Strict, E> {
        Ok(Strict(Value::String(v.to_string())))
    }
    fn visit_string<E>(self, v: String) -> Result<Strict, E> {
        Ok(Strict(Value::String(v)))
    }
    fn visit_unit<E>(self) -> Result<Strict, E> {
        Ok(Strict(Value::Null))
    }
    fn visit_none<E>(self) -> Result<Strict, E> {
        Ok(Strict(Value::Null))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Strict, A::Error> {
        let mut out = Vec::new();
        while let Some(Strict(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(Strict(Value::Array(out)))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Strict, A::Error> {
        let mut out = Map::new();
        while let Some(k) = map.next_key::<String>()? {
            if out.contains_key(&k) {
                return Err(de::Error::custom(format!("duplicate key {k:?}")));
            }
            let Strict(v) = map.next_value()?;
            out.insert(k, v);
        }
        Ok(Strict(Value::Object(out)))
    }
}

/// Parse `text` as JSON, refusing duplicate keys; the error names line and column.
pub fn parse(text: &str) -> Result<Value, String> {
    let mut de = serde_json::Deserializer::from_str(text);
    let Strict(v) = Strict::deserialize(&mut de).map_err(|e| e.to_string())?;
    de.end().map_err(|e| e.to_string())?;
    Ok(v)
}

#[cfg(test)]
mod tests {
    #[test]
    fn duplicates_refused_at_every_level() {
        assert!(super::parse(r#"{"a":1,"b":{"c":[1,{"d":2}]}}"#).is_ok());
        let e = super::parse(r#"{"a":1,"a":2}"#).unwrap_err();
        assert!(e.contains("duplicate key \"a\""), "{e}");
        let e = super::parse("{\"a\":{\"x\":1,\n\"x\":2}}").unwrap_err();
        assert!(
            e.contains("duplicate key \"x\"") && e.contains("line 2"),
            "{e}"
        );
        assert!(super::parse("{} x").is_err());
        assert!(super::parse("").is_err());
    }
}

#[cfg(test)]
pub(crate) mod props {
    use proptest::prelude::*;
    use serde_json::Value;

    /// Any JSON value without duplicate keys (floats left out: their text is not canonical).
    pub(crate) fn any_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            "\\PC{0,12}|[\\x00-\\x1f\"\\\\]{0,4}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::btree_map("\\PC{0,8}", inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Arbitrary text never panics; whatever it accepts, serde_json accepts too.
        #[test]
        fn never_panics(s in "\\PC{0,64}|[\\[\\]{}\",:0-9a-z \\n]{0,64}") {
            if let Ok(v) = super::parse(&s) {
                prop_assert_eq!(Some(v), serde_json::from_str::<Value>(&s).ok());
            }
        }

        /// Serialized (compact or pretty) documents without duplicates parse back unchanged.
        #[test]
        fn round_trip(v in any_json(), pretty in any::<bool>()) {
            let text = if pretty { serde_json::to_string_pretty(&v) } else { serde_json::to_string(&v) }.unwrap();
            prop_assert_eq!(super::parse(&text).unwrap(), v);
        }

    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// A key repeated in any object at any depth is refused, naming the key.
        #[test]
        fn duplicate_keys_refused_at_any_depth(
            key in "[a-z_]{1,8}",
            a in any_json(),
            b in any_json(),
            other in any_json(),
            depth in 0usize..5,
        ) {
            let mut text = format!(
                "{{{k}:{a},\"{key}_other\":{other},{k}:{b}}}",
                k = serde_json::to_string(&key).unwrap(),
            );
            for d in 0..depth {
                text = if d % 2 == 0 { format!("[1,{text},null]") } else { format!("{{\"w{d}\":{text}}}") };
            }
            let e = super::parse(&text).unwrap_err();
            let want = format!("duplicate key {key:?}");
            prop_assert!(e.contains(&want), "{}", e);
        }
    }
}
