//! OpenVox wire types: the `{"uri","msg","code","data"}` envelope, the payloads the driver reads,
//! and the second-stage readers for the JSON documents and `lsdahdi` words inside strings.
//! Every field is optional and lenient; what cannot be read is unknown, never a panic.

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::util::lenient;

/// What an answer says, once its envelope is read.
#[derive(Debug, PartialEq)]
pub enum Answer {
    Ok(Value),
    /// Any `code` but 200: the device publishes no table of them.
    Failed {
        code: String,
        message: String,
    },
}

/// Reads the envelope. `code` is 200 as a number or, on some firmware, as a string.
pub fn parse_answer(body: &[u8]) -> Result<Answer, String> {
    let lenient::BoundedValue(value) =
        serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let Value::Object(mut map) = value else {
        return Err("answer is not a JSON object".into());
    };
    let Some(code) = map.get("code") else {
        return Err("answer has no `code`".into());
    };
    if lenient::number(code) == Some(200.0) {
        return Ok(Answer::Ok(map.remove("data").unwrap_or(Value::Null)));
    }
    let code = lenient::text(code).unwrap_or_else(|| code.to_string());
    let message = map.get("msg").and_then(lenient::text).unwrap_or_default();
    Ok(Answer::Failed {
        code: clip(&code),
        message: clip(&message),
    })
}

/// Device text that ends up in error messages stays short.
fn clip(s: &str) -> String {
    s.chars().take(80).collect()
}

/// Decodes a `data` that must be an object. The device writes an empty one as `[]` (a PHP empty
/// array), which here is "no data", not an empty answer to export.
pub fn data_object<T: serde::de::DeserializeOwned>(data: Value) -> Result<T, String> {
    match data {
        Value::Object(_) => serde_json::from_value(data).map_err(|e| e.to_string()),
        Value::Array(a) if a.is_empty() => Err("`data` is empty (`[]`)".into()),
        other => Err(format!("`data` is {}, not an object", kind_of(&other))),
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// `auth/login`: `{"level":"admin","token":"<32 hex>"}`.
#[derive(Default, Deserialize)]
#[serde(default)]
pub struct Login {
    #[serde(deserialize_with = "lenient::string")]
    pub token: String,
}

// The token is a secret: no derived Debug that could print it.
impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login").finish_non_exhaustive()
    }
}

/// `sys_info/oem`: what the gateway is, and its limits.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct Oem {
    #[serde(deserialize_with = "lenient::string")]
    pub vendor: String,
    #[serde(deserialize_with = "lenient::string")]
    pub product: String,
    #[serde(deserialize_with = "lenient::string")]
    pub model2: String,
    #[serde(deserialize_with = "lenient::string")]
    pub sn: String,
    #[serde(deserialize_with = "lenient::string")]
    pub firmware_model: String,
    #[serde(deserialize_with = "lenient::string")]
    pub firmware_version: String,
    #[serde(deserialize_with = "lenient::string")]
    pub platform: String,
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub maxslots: Option<f64>,
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub maxspans: Option<f64>,
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub maxchannels: Option<f64>,
}

/// `sys_info/performance`; memory in KB, processor values as counters.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Performance {
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub uptime: Option<f64>,
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub processor_total: Option<f64>,
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub processor_idle: Option<f64>,
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub memory_total: Option<f64>,
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub memory_idle: Option<f64>,
}

/// `sys_info/device_info`: percentages as strings (`"5%"`).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct DeviceInfo {
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub use_storage: Option<f64>,
    /// The device's clock, Unix seconds as a string.
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub os_time: Option<f64>,
}

/// `sys_info/interface` for one slot.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Interface {
    /// System uptime, the reference for each board's `uptime`.
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub uptime: Option<f64>,
    #[serde(deserialize_with = "lenient::rows")]
    pub interface: Vec<Board>,
}

/// One interface board; the `dahdi_*`, `sip_register` and `voltage` fields are JSON in strings.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Board {
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub slotnum: Option<f64>,
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub uptime: Option<f64>,
    #[serde(deserialize_with = "lenient::string")]
    pub model: String,
    #[serde(deserialize_with = "lenient::string")]
    pub version: String,
    #[serde(deserialize_with = "lenient::string")]
    pub product_id: String,
    #[serde(deserialize_with = "lenient::string")]
    pub interface: String,
    #[serde(deserialize_with = "lenient::string")]
    pub dahdi_scan: String,
    #[serde(deserialize_with = "lenient::string")]
    pub dahdi_port: String,
    #[serde(deserialize_with = "lenient::string")]
    pub sip_register: String,
    #[serde(deserialize_with = "lenient::string")]
    pub dahdi_analog: String,
    #[serde(deserialize_with = "lenient::string")]
    pub voltage: String,
}

/// One `sys_info/cdr` record.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct CdrRecord {
    #[serde(deserialize_with = "lenient::string")]
    pub from_channel: String,
    #[serde(deserialize_with = "lenient::string")]
    pub to_channel: String,
    #[serde(deserialize_with = "lenient::string")]
    pub disposition: String,
    #[serde(deserialize_with = "lenient::string")]
    pub start: String,
    #[serde(deserialize_with = "lenient::string")]
    pub end: String,
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub billsec: Option<f64>,
}

/// `sys_info/cdr` data: a list of records (`[]` when there are none).
pub fn cdr_records(data: Value) -> Result<Vec<CdrRecord>, String> {
    match data {
        Value::Array(rows) => Ok(rows
            .into_iter()
            .filter_map(|r| serde_json::from_value(r).ok())
            .collect()),
        other => Err(format!("`data` is {}, not a list", kind_of(&other))),
    }
}

/// Second stage: a JSON object inside a string field. Empty or non-JSON text is an error naming
/// the field, never the text (it is device data of unknown content).
pub fn nested(field: &str, text: &str) -> Result<Map<String, Value>, String> {
    if text.trim().is_empty() {
        return Err(format!("`{field}` is empty"));
    }
    match serde_json::from_str(text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(Value::Array(a)) if a.is_empty() => Ok(Map::new()),
        Ok(other) => Err(format!(
            "`{field}` holds {}, not an object",
            kind_of(&other)
        )),
        Err(_) => Err(format!("`{field}` is not JSON")),
    }
}

/// A port's kind, from the port's own point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortKind {
    /// Feeds a phone.
    Fxs,
    /// Connects to a PSTN line.
    Fxo,
}

impl PortKind {
    pub fn label(self) -> &'static str {
        match self {
            PortKind::Fxs => "fxs",
            PortKind::Fxo => "fxo",
        }
    }

    /// From DAHDI signalling, which names the far end: `FXS..` signalling is an FXO port.
    pub fn from_signalling(sig: &str) -> Option<PortKind> {
        let sig = sig.to_ascii_uppercase();
        if sig.starts_with("FXS") {
            Some(PortKind::Fxo)
        } else if sig.starts_with("FXO") {
            Some(PortKind::Fxs)
        } else {
            None
        }
    }

    /// From `dahdi_scan`'s `port` map, which names the module itself.
    pub fn from_module(module: &str) -> Option<PortKind> {
        match module.trim().to_ascii_uppercase().as_str() {
            "FXS" => Some(PortKind::Fxs),
            "FXO" => Some(PortKind::Fxo),
            _ => None,
        }
    }
}

/// One `dahdi_port` entry in `lsdahdi` wording: `FXSLS (In use) RED (EC: G168V2 - INACTIVE)`.
#[derive(Debug, Default, PartialEq)]
pub struct PortState {
    pub signalling: String,
    pub in_use: bool,
    /// Alarm words, uppercase; empty when the port is healthy.
    pub alarms: Vec<String>,
    /// The echo canceller's name and whether it is active (`None` when neither word is known).
    pub echo_canceller: Option<(String, Option<bool>)>,
    /// Parenthesised notes that are none of the above.
    pub unknown: Vec<String>,
}

pub fn parse_port_state(text: &str) -> PortState {
    let mut state = PortState::default();
    let mut rest = text.trim();
    let mut words = Vec::new();
    while !rest.is_empty() {
        if let Some(inner) = rest.strip_prefix('(') {
            let end = inner.find(')').unwrap_or(inner.len());
            let note = inner[..end].trim();
            rest = inner.get(end + 1..).unwrap_or("").trim_start();
            if note.eq_ignore_ascii_case("in use") {
                state.in_use = true;
            } else if let Some(ec) = note
                .strip_prefix("EC:")
                .or_else(|| note.strip_prefix("SWEC:"))
            {
                let (name, active) = match ec.rsplit_once(" - ") {
                    Some((name, s)) => (name, s.trim()),
                    None => (ec, ""),
                };
                let active = match active.to_ascii_uppercase().as_str() {
                    "ACTIVE" => Some(true),
                    "INACTIVE" => Some(false),
                    _ => None,
                };
                state.echo_canceller = Some((name.trim().to_owned(), active));
            } else {
                state.unknown.push(note.to_owned());
            }
        } else {
            let end = rest.find([' ', '(']).unwrap_or(rest.len());
            words.push(rest[..end].to_owned());
            rest = rest[end..].trim_start();
        }
    }
    let mut words = words.into_iter();
    state.signalling = words.next().unwrap_or_default();
    state.alarms = words.map(|w| w.to_ascii_uppercase()).collect();
    state
}

/// A SIP registration text: `Registered`, `Rejected (exp. 11597s ago)`, `Registered (exp. 3593s)`.
#[derive(Debug, PartialEq)]
pub struct SipState {
    /// The state word(s) without the expiry note, as the device wrote them.
    pub word: String,
    /// 0 unregistered, 1 registered, 2 rejected/failed; `None` for a word not known.
    pub status: Option<f64>,
    /// Seconds until expiry; negative when it expired that long ago.
    pub expiry: Option<f64>,
}

pub fn parse_sip_state(text: &str) -> SipState {
    let text = text.trim();
    let (word, note) = match text.split_once('(') {
        Some((w, n)) => (w.trim(), Some(n.trim_end_matches(')').trim())),
        None => (text, None),
    };
    let status = match word.to_ascii_lowercase().as_str() {
        "registered" => Some(1.0),
        "unregistered" | "request sent" | "auth. sent" => Some(0.0),
        "rejected" | "failed" | "no authentication" | "timeout" => Some(2.0),
        _ => None,
    };
    let expiry = note.and_then(|n| {
        let n = n.strip_prefix("exp.")?.trim();
        let (secs, ago) = match n.strip_suffix("ago") {
            Some(s) => (s.trim(), true),
            None => (n, false),
        };
        let secs: f64 = secs.strip_suffix('s').unwrap_or(secs).trim().parse().ok()?;
        Some(if ago { -secs } else { secs })
    });
    SipState {
        word: word.to_owned(),
        status,
        expiry,
    }
}

/// A CDR time as a number that sorts like the time: `YYYY-MM-DD HH:MM:SS` (any separators) or
/// Unix seconds. The device's time zone does not matter, only the order.
pub fn time_key(text: &str) -> Option<i64> {
    let parts: Vec<i64> = text
        .split(|c: char| !c.is_ascii_digit())
        .filter(|p| !p.is_empty())
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    match parts[..] {
        [unix] => Some(unix),
        // Checked: a record with an absurd year is unreadable, not a reason to panic.
        [y, mo, d, h, mi, s] if (1..=12).contains(&mo) && (1..=31).contains(&d) => {
            [mo, d, h, mi, s]
                .into_iter()
                .try_fold(y, |key, part| key.checked_mul(100)?.checked_add(part))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::testing::fixture;
    use serde_json::json;

    fn ok(body: &[u8]) -> Value {
        match parse_answer(body).unwrap() {
            Answer::Ok(v) => v,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn login_answer_carries_the_token() {
        let login: Login = data_object(ok(&fixture("openvox", "login_ok.json"))).unwrap();
        assert_eq!(login.token, "bb3bcfc8771679d3b80288a7ade46238");
        assert!(!format!("{login:?}").contains("bb3b"));
    }

    #[test]
    fn code_as_int_or_string() {
        assert_eq!(
            parse_answer(br#"{"uri":"x","msg":"","code":"200","data":{"a":1}}"#),
            Ok(Answer::Ok(json!({"a": 1})))
        );
        assert_eq!(
            parse_answer(br#"{"uri":"x","msg":"Token invalid","code":"401","data":[]}"#),
            Ok(Answer::Failed {
                code: "401".into(),
                message: "Token invalid".into()
            })
        );
        assert!(matches!(
            parse_answer(br#"{"code":400.0,"msg":7}"#),
            Ok(Answer::Failed { message, .. }) if message == "7"
        ));
        assert!(parse_answer(b"<html>").is_err());
        assert!(parse_answer(br#"{"msg":""}"#).is_err());
        assert!(parse_answer(b"[]").is_err());
    }

    #[test]
    fn empty_array_where_an_object_belongs_is_a_clear_error() {
        let data = ok(&fixture("openvox", "empty_data_array.json"));
        let e = data_object::<Performance>(data).unwrap_err();
        assert!(e.contains("`data` is empty"), "{e}");
        let e = data_object::<Performance>(json!("x")).unwrap_err();
        assert!(e.contains("a string"), "{e}");
    }

    #[test]
    fn cdr_data_is_a_list_and_empty_is_fine() {
        assert!(cdr_records(ok(&fixture("openvox", "cdr_empty.json")))
            .unwrap()
            .is_empty());
        assert!(cdr_records(json!({"a": 1})).is_err());
        let rows = cdr_records(json!([
            {"disposition":"ANSWERED","start":"2024-07-19 12:34:51","end":"2024-07-19 12:35:51","billsec":"55","from_channel":"DAHDI/5-1"},
            "garbage"
        ]))
        .unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].billsec, Some(55.0));
    }

    #[test]
    fn nested_json_in_strings() {
        let data: Interface = data_object(ok(&fixture("openvox", "interface.json"))).unwrap();
        let board = &data.interface[0];
        let ports = nested("dahdi_port", &board.dahdi_port).unwrap();
        assert_eq!(ports["1"]["8"], "FXOLS (In use) (EC: G168V2 - INACTIVE)");
        let sip = nested("sip_register", &board.sip_register).unwrap();
        assert_eq!(sip["6reg"], "Rejected (exp. 11597s ago)");
        assert_eq!(nested("voltage", &board.voltage).unwrap()["5"], "48");
        assert_eq!(nested("x", "[]").unwrap().len(), 0);
        assert_eq!(nested("x", "").unwrap_err(), "`x` is empty");
        assert_eq!(nested("x", "Registered {").unwrap_err(), "`x` is not JSON");
        assert!(nested("x", "12").unwrap_err().contains("a number"));
    }

    #[test]
    fn lsdahdi_words() {
        let s = parse_port_state("FXSLS (In use) RED (EC: G168V2 - INACTIVE)");
        assert_eq!(
            s,
            PortState {
                signalling: "FXSLS".into(),
                in_use: true,
                alarms: vec!["RED".into()],
                echo_canceller: Some(("G168V2".into(), Some(false))),
                unknown: vec![],
            }
        );
        assert_eq!(
            PortKind::from_signalling(&s.signalling),
            Some(PortKind::Fxo)
        );
        let s = parse_port_state("FXOKS (EC: OSLEC - ACTIVE)");
        assert!(!s.in_use && s.alarms.is_empty());
        assert_eq!(
            PortKind::from_signalling(&s.signalling),
            Some(PortKind::Fxs)
        );
        assert_eq!(s.echo_canceller, Some(("OSLEC".into(), Some(true))));
        let s = parse_port_state("FXSKS YELLOW NOTOPEN (Slaved) (EC: X");
        assert_eq!(s.alarms, ["YELLOW", "NOTOPEN"]);
        assert_eq!(s.unknown, ["Slaved"]);
        assert_eq!(s.echo_canceller, Some(("X".into(), None)));
        assert_eq!(parse_port_state(""), PortState::default());
        assert_eq!(PortKind::from_signalling("E&M"), None);
        assert_eq!(PortKind::from_module(" fxs "), Some(PortKind::Fxs));
    }

    #[test]
    fn sip_words_and_expiry() {
        let s = parse_sip_state("Rejected (exp. 11597s ago)");
        assert_eq!(
            (s.word.as_str(), s.status, s.expiry),
            ("Rejected", Some(2.0), Some(-11597.0))
        );
        let s = parse_sip_state("Registered (exp. 3593s)");
        assert_eq!((s.status, s.expiry), (Some(1.0), Some(3593.0)));
        for (word, status) in [
            ("Registered", 1.0),
            ("Unregistered", 0.0),
            ("Request Sent", 0.0),
            ("Auth. Sent", 0.0),
            ("No Authentication", 2.0),
            ("Failed", 2.0),
        ] {
            assert_eq!(parse_sip_state(word).status, Some(status), "{word}");
        }
        let s = parse_sip_state("Unreachable (exp. soon)");
        assert_eq!(
            (s.word.as_str(), s.status, s.expiry),
            ("Unreachable", None, None)
        );
    }

    #[test]
    fn cdr_times_sort() {
        let a = time_key("2024-07-19 12:34:51").unwrap();
        let b = time_key("2024-07-19 12:35:02").unwrap();
        let c = time_key("2024/12/01T00:00:00").unwrap();
        assert!(a < b && b < c);
        assert_eq!(time_key("1729224724"), Some(1_729_224_724));
        // The 19-digit year once overflowed (found by tests/fuzz.rs).
        for bad in [
            "",
            "--",
            "2024-13-01 00:00:00",
            "yesterday",
            "2024-07-19",
            "9223372036854775807-01-01 00:00:00",
        ] {
            assert_eq!(time_key(bad), None, "{bad}");
        }
    }
}
