//! Lenient readers for device JSON. Devices send numbers as strings, percentages as `"9.45%"`,
//! unknowns as `"--"` or `""`, and objects where lists belong. Where the meaning is clear these
//! read the value; where it is not they read "unknown" (`None`) instead of failing the answer.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{DeserializeOwned, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// A number from a JSON number or a numeric string (`"320"`, `"1.0e+14"`, `"9.45%"`, `" 48 "`).
/// `"--"`, `""`, `null` and anything else non-numeric are unknown.
pub fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => {
            let s = s.trim();
            let s = s.strip_suffix('%').unwrap_or(s).trim_end();
            s.parse::<f64>().ok().filter(|n| n.is_finite())
        }
        _ => None,
    }
}

/// A device percentage as a ratio, rounded to the precision devices report (so `"9.45%"` is
/// 0.0945, not 0.09449999999999999).
pub fn percent_to_ratio(percent: f64) -> f64 {
    (percent * 1e6).round() / 1e8
}

/// A string from a JSON string or number; `null` and structures are unknown.
pub fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A number field read by [`number`]: `Num(None)` when the device sent something unknown. It
/// never fails to deserialize, so one odd field cannot cost a whole answer.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Num(pub Option<f64>);

impl<'de> Deserialize<'de> for Num {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Num(number(&Value::deserialize(d)?)))
    }
}

impl From<Num> for Option<f64> {
    fn from(n: Num) -> Self {
        n.0
    }
}

/// `deserialize_with` for `Option<f64>` fields: never fails.
pub fn opt_f64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    Ok(number(&Value::deserialize(d)?))
}

/// `deserialize_with` for `String` fields: numbers become text, anything else empty.
pub fn string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(text(&Value::deserialize(d)?).unwrap_or_default())
}

/// `deserialize_with` for `Vec<Option<f64>>`: a list of lenient numbers; a non-list is empty.
pub fn f64_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Option<f64>>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Array(items) => items.iter().map(number).collect(),
        _ => Vec::new(),
    })
}

/// `deserialize_with` for nested objects: a value of the wrong shape reads as the default.
pub fn object<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned + Default,
{
    Ok(serde_json::from_value(Value::deserialize(d)?).unwrap_or_default())
}

/// `deserialize_with` for lists of rows: rows that do not read are dropped, a non-list is empty.
/// Rows are decoded one at a time, so a long list never exists as a generic JSON tree.
pub fn rows<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    struct Rows<T>(PhantomData<T>);

    impl<'de, T: DeserializeOwned> Visitor<'de> for Rows<T> {
        type Value = Vec<T>;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a list of rows")
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
            while let Some(row) = seq.next_element::<Value>()? {
                out.extend(serde_json::from_value(row).ok());
            }
            Ok(out)
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Vec<T>, A::Error> {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            Ok(Vec::new())
        }

        fn visit_unit<E>(self) -> Result<Vec<T>, E> {
            Ok(Vec::new())
        }

        fn visit_bool<E>(self, _: bool) -> Result<Vec<T>, E> {
            Ok(Vec::new())
        }

        fn visit_i64<E>(self, _: i64) -> Result<Vec<T>, E> {
            Ok(Vec::new())
        }

        fn visit_u64<E>(self, _: u64) -> Result<Vec<T>, E> {
            Ok(Vec::new())
        }

        fn visit_f64<E>(self, _: f64) -> Result<Vec<T>, E> {
            Ok(Vec::new())
        }

        fn visit_str<E>(self, _: &str) -> Result<Vec<T>, E> {
            Ok(Vec::new())
        }
    }

    d.deserialize_any(Rows(PhantomData))
}

/// Decodes `%XX` escapes (devices URL-encode some user text); text that is not valid
/// percent-encoding, or does not decode to UTF-8, is returned as it came.
pub fn url_decoded(s: &str) -> String {
    if !s.contains('%') {
        return s.to_string();
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok());
            match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                Some(b) => out.push(b),
                None => return s.to_string(),
            }
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap_or_else(|_| s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_in_every_shape_devices_send() {
        assert_eq!(number(&json!(12)), Some(12.0));
        assert_eq!(number(&json!("320")), Some(320.0));
        assert_eq!(number(&json!("9.45%")), Some(9.45));
        assert_eq!(number(&json!(1.0118846706974e+14)), Some(101188467069740.0));
        assert_eq!(
            number(&json!("1.0118846706974e+14")),
            Some(101188467069740.0)
        );
        assert_eq!(number(&json!(" -48 ")), Some(-48.0));
        for unknown in [
            json!("--"),
            json!(""),
            json!(null),
            json!([]),
            json!("NaN"),
            json!("abc"),
        ] {
            assert_eq!(number(&unknown), None, "{unknown}");
        }
    }

    #[test]
    fn rows_keep_what_reads_and_tolerate_any_shape() {
        #[derive(Deserialize, Debug, PartialEq)]
        struct Row {
            #[serde(deserialize_with = "opt_f64")]
            n: Option<f64>,
        }
        let read = |v: Value| rows::<_, Row>(v).unwrap();
        let list = json!([{"n": "1"}, "junk", {"n": 2}, null, {"n": "--"}]);
        assert_eq!(
            read(list),
            [Row { n: Some(1.0) }, Row { n: Some(2.0) }, Row { n: None }]
        );
        for other in [
            json!(null),
            json!({"a": [1]}),
            json!("x"),
            json!(3),
            json!(true),
        ] {
            assert!(read(other).is_empty());
        }
    }

    #[test]
    fn url_decoding_is_best_effort() {
        assert_eq!(url_decoded("红米Note%2011T%20Pro"), "红米Note 11T Pro");
        assert_eq!(url_decoded("%E5%AE%A2%E5%8E%85"), "客厅");
        assert_eq!(url_decoded("100%"), "100%");
        assert_eq!(url_decoded("50%off"), "50%off");
        assert_eq!(url_decoded("%FF%FE"), "%FF%FE");
        assert_eq!(url_decoded("plain"), "plain");
    }
}
