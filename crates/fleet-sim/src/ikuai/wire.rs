//! How the router writes values on the wire, quirks included: numbers as strings, byte totals
//! in Lua's exponent form, bare tokens that are not JSON, URL-encoded text, MACs and local
//! times. With `quirks` off the irregular forms (exponents, bare tokens, URL-encoding) give way
//! to plain JSON; values the router's own schema types as strings stay strings. What the
//! values are is the world's business; this module only spells them.

use serde_json::{json, Value};

use crate::util::datetime;

/// The router shows local (China) time.
const TZ_OFFSET: u64 = 8 * 3600;

// serde_json cannot emit `1.0118846706974e+14` or a bare `timeout`, so such
// values travel as marked strings and lose their quotes after serialisation.
// The markers are plain ASCII that serde_json never escapes and that no
// simulated text contains.
const RAW_OPEN: &str = "@@ikuai-raw<";
const RAW_CLOSE: &str = ">ikuai-raw@@";

pub(super) fn raw(token: &str) -> Value {
    Value::String(format!("{RAW_OPEN}{token}{RAW_CLOSE}"))
}

pub(super) fn render(v: &Value) -> String {
    v.to_string()
        .replace(&format!("\"{RAW_OPEN}"), "")
        .replace(&format!("{RAW_CLOSE}\""), "")
}

/// C's `%.14g` (what the router's Lua prints) for values of 1e14 and more.
fn lua_g14(x: f64) -> String {
    let s = format!("{x:.13e}");
    let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let mantissa = if mantissa.contains('.') {
        mantissa.trim_end_matches('0').trim_end_matches('.')
    } else {
        mantissa
    };
    let exp: i32 = exp.parse().unwrap_or(0);
    let sign = if exp < 0 { '-' } else { '+' };
    format!("{mantissa}e{sign}{:02}", exp.abs())
}

/// A number the router's own schema types as a string (`updatetime`, WAN `connect_num`, QoS
/// figures, 3.x client `signal`): a string in every mode, since that is the real type, not a
/// quirk.
pub(super) fn num_str(n: i64) -> Value {
    json!(n.to_string())
}

/// A byte total; Lua prints 1e14 and more in exponent form (only such totals, and only with
/// quirks on: off, the router is a plain one that prints integers).
pub(super) fn bytes_total(quirks: bool, x: f64) -> Value {
    let x = x.floor().max(0.0);
    if quirks && x >= 1e14 {
        raw(&lua_g14(x))
    } else {
        json!(x as u64)
    }
}

/// Text the router URL-encodes (quirk) or plain text.
pub(super) fn maybe_encoded(quirks: bool, plain: &str, enc: Option<&str>) -> String {
    match enc {
        Some(e) if quirks => e.to_owned(),
        _ => plain.to_owned(),
    }
}

pub(super) fn fmt_mac(m: [u8; 6]) -> String {
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        m[0], m[1], m[2], m[3], m[4], m[5]
    )
}

/// EUI-64 interface id, as SLAAC derives it from the MAC.
pub(super) fn eui64(m: [u8; 6]) -> String {
    let g = [
        u16::from_be_bytes([m[0] ^ 0x02, m[1]]),
        u16::from_be_bytes([m[2], 0xff]),
        u16::from_be_bytes([0xfe, m[3]]),
        u16::from_be_bytes([m[4], m[5]]),
    ];
    format!("{:x}:{:x}:{:x}:{:x}", g[0], g[1], g[2], g[3])
}

pub(super) fn local_date(unix: u64) -> String {
    local_datetime(unix)[..10].to_owned()
}

pub(super) fn local_datetime(unix: u64) -> String {
    datetime(unix, TZ_OFFSET)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lua_exponent_format_matches_printf() {
        assert_eq!(lua_g14(101_188_467_069_740.0), "1.0118846706974e+14");
        assert_eq!(lua_g14(2e15), "2e+15");
    }

    #[test]
    fn raw_tokens_lose_their_quotes() {
        let v = json!({"data": raw("timeout"), "total": 0});
        assert_eq!(render(&v), r#"{"data":timeout,"total":0}"#);
    }

    #[test]
    fn local_dates_are_utc_plus_8() {
        assert_eq!(local_datetime(1_737_201_695), "2025-01-18 20:01:35");
        assert_eq!(local_date(0), "1970-01-01");
    }

    #[test]
    fn eui64_matches_document_row() {
        let mac = [0x60, 0x7e, 0xa4, 0x77, 0x9f, 0xf9];
        assert_eq!(eui64(mac), "627e:a4ff:fe77:9ff9");
    }
}
