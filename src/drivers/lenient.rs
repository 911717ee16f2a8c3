//! Lenient readers for device JSON. Devices send numbers as strings, percentages as `"9.45%"`,
//! unknowns as `"--"` or `""`, and objects where lists belong. Where the meaning is clear these
//! read the value; where it is not they read "unknown" (`None`) instead of failing the answer.

use serde::de::DeserializeOwned;
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
pub fn rows<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    Ok(match Value::deserialize(d)? {
        Value::Array(items) => items
            .into_iter()
            .filter_map(|v| serde_json::from_value(v).ok())
            .collect(),
        _ => Vec::new(),
    })
}

/// A device's local date and time (`2025-10-18 00:00:00`, or a bare `2025-10-18`) as Unix
/// seconds, given the device's offset from UTC. Anything else, including the all-zero dates some
/// devices send for "never", is unknown.
pub fn local_datetime(s: &str, utc_offset_secs: i64) -> Option<f64> {
    let s = s.trim();
    let (date, time) = s.split_once([' ', 'T']).unwrap_or((s, "00:00:00"));
    let mut d = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let mut t = time.splitn(3, ':').map(|p| p.parse::<i64>().ok());
    let (hh, mm) = (t.next()??, t.next()??);
    let ss = t.next().unwrap_or(Some(0))?;
    let valid = (1..=12).contains(&m)
        && (1..=31).contains(&day)
        && (0..24).contains(&hh)
        && (0..60).contains(&mm)
        && (0..61).contains(&ss)
        && y >= 1970;
    if !valid {
        return None;
    }
    // Howard Hinnant's days_from_civil.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some((days * 86_400 + hh * 3600 + mm * 60 + ss - utc_offset_secs) as f64)
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
    fn local_dates_in_any_offset() {
        let cst = 8 * 3600;
        assert_eq!(
            local_datetime("2025-10-18 00:00:00", cst),
            Some(1_760_716_800.0)
        );
        assert_eq!(local_datetime("2025-10-18", cst), Some(1_760_716_800.0));
        assert_eq!(
            local_datetime("2025-09-18 18:24:10", 0),
            Some(1_758_219_850.0)
        );
        assert_eq!(local_datetime("2024-02-29 12:00", 0), Some(1_709_208_000.0));
        for unknown in ["", "--", "0000-00-00 00:00:00", "2025-13-01", "yesterday"] {
            assert_eq!(local_datetime(unknown, cst), None, "{unknown}");
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
