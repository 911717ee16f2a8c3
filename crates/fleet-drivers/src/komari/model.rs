//! Komari wire types. Fields were added over server versions and agents differ, so every field
//! is optional and lenient: a missing or mistyped value is unknown, never a failed answer.

use std::collections::BTreeMap;

use fleet_core::driver::PollError;
use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;

use crate::util::lenient;

/// Reads the `{"status","message","data"}` envelope of the HTTP API (and the WebSocket reply,
/// whose errors say `error` instead of `message`) and decodes `data`.
pub fn parse_envelope<T: DeserializeOwned + Default>(body: &[u8]) -> Result<T, Envelope> {
    let Ok(lenient::BoundedValue(Value::Object(mut map))) = serde_json::from_slice(body) else {
        return Err(Envelope::NotJson);
    };
    let status = map.get("status").and_then(Value::as_str).unwrap_or("");
    if status != "success" && !(status.is_empty() && map.contains_key("data")) {
        let message = ["message", "error"]
            .iter()
            .filter_map(|k| map.get(*k).and_then(lenient::text))
            .find(|m| !m.is_empty())
            .unwrap_or_else(|| format!("status {status:?}"));
        return Err(Envelope::Failed(clip(&message)));
    }
    match map.remove("data") {
        None | Some(Value::Null) => Ok(T::default()),
        Some(data) => serde_json::from_value(data).map_err(|e| Envelope::BadData(e.to_string())),
    }
}

/// Why an answer carried no data.
#[derive(Debug, PartialEq)]
pub enum Envelope {
    NotJson,
    /// The server said `"status":"error"` with this message.
    Failed(String),
    BadData(String),
}

/// Server text shown in errors is cut short: it is not ours to flood logs with.
fn clip(s: &str) -> String {
    const MAX: usize = 120;
    match s.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// `GET /api/version`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct Version {
    #[serde(deserialize_with = "lenient::string")]
    pub version: String,
    #[serde(deserialize_with = "lenient::string")]
    pub hash: String,
}

/// One row of `GET /api/nodes`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct Node {
    #[serde(deserialize_with = "lenient::string")]
    pub uuid: String,
    #[serde(deserialize_with = "lenient::string")]
    pub name: String,
    #[serde(deserialize_with = "lenient::string")]
    pub cpu_name: String,
    #[serde(deserialize_with = "lenient::string")]
    pub virtualization: String,
    #[serde(deserialize_with = "lenient::string")]
    pub arch: String,
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub cpu_cores: Option<f64>,
    #[serde(deserialize_with = "lenient::string")]
    pub os: String,
    #[serde(deserialize_with = "lenient::string")]
    pub kernel_version: String,
    /// `"None"` when the node has no GPU.
    #[serde(deserialize_with = "lenient::string")]
    pub gpu_name: String,
    #[serde(deserialize_with = "lenient::string")]
    pub region: String,
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub mem_total: Option<f64>,
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub swap_total: Option<f64>,
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub disk_total: Option<f64>,
    /// -1 free, 0 not set.
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub price: Option<f64>,
    /// Days.
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub billing_cycle: Option<f64>,
    #[serde(deserialize_with = "lenient::string")]
    pub currency: String,
    #[serde(deserialize_with = "lenient::opt_timestamp")]
    pub expired_at: Option<f64>,
    #[serde(deserialize_with = "lenient::string")]
    pub group: String,
    /// `;`-separated.
    #[serde(deserialize_with = "lenient::string")]
    pub tags: String,
    /// Bytes; 0 means no limit.
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub traffic_limit: Option<f64>,
    /// `sum`, `max`, `min`, `up` or `down`.
    #[serde(deserialize_with = "lenient::string")]
    pub traffic_limit_type: String,
}

/// The data of a WebSocket `get` reply.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Live {
    /// The only source of online state: `data` keeps offline nodes' last reports forever.
    #[serde(deserialize_with = "lenient::strings")]
    pub online: Vec<String>,
    #[serde(deserialize_with = "reports")]
    pub data: BTreeMap<String, Report>,
}

/// Reports by uuid; a report that does not read is dropped, a non-object is empty.
fn reports<'de, D: serde::Deserializer<'de>>(d: D) -> Result<BTreeMap<String, Report>, D::Error> {
    Ok(match lenient::bounded(d)? {
        Value::Object(map) => map
            .into_iter()
            .filter_map(|(k, v)| Some((k, serde_json::from_value(v).ok()?)))
            .collect(),
        _ => BTreeMap::new(),
    })
}

/// A node's latest report (the nested shape; records use a flat one).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Report {
    #[serde(deserialize_with = "lenient::object")]
    pub cpu: Cpu,
    #[serde(deserialize_with = "lenient::object")]
    pub ram: Usage,
    #[serde(deserialize_with = "lenient::object")]
    pub swap: Usage,
    #[serde(deserialize_with = "lenient::object")]
    pub disk: Usage,
    #[serde(deserialize_with = "lenient::object")]
    pub load: Load,
    #[serde(deserialize_with = "lenient::object")]
    pub network: Network,
    #[serde(deserialize_with = "lenient::object")]
    pub connections: Connections,
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub uptime: Option<f64>,
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub process: Option<f64>,
    /// When the server received the report.
    #[serde(deserialize_with = "lenient::opt_timestamp")]
    pub updated_at: Option<f64>,
    #[serde(deserialize_with = "lenient::object")]
    pub gpu: Option<Gpu>,
    /// The agent's own error text; `""` when all is well.
    #[serde(deserialize_with = "lenient::opt_string")]
    pub message: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Cpu {
    /// Percent; the agent reports 0 as 0.01.
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub usage: Option<f64>,
}

/// Bytes.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Usage {
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub total: Option<f64>,
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub used: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Load {
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub load1: Option<f64>,
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub load5: Option<f64>,
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub load15: Option<f64>,
}

/// Rates in bytes/s; totals in bytes since the agent started or the month rotated.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Network {
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub up: Option<f64>,
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub down: Option<f64>,
    #[serde(rename = "totalUp", deserialize_with = "lenient::opt_f64")]
    pub total_up: Option<f64>,
    #[serde(rename = "totalDown", deserialize_with = "lenient::opt_f64")]
    pub total_down: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Connections {
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub tcp: Option<f64>,
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub udp: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Gpu {
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub count: Option<f64>,
    /// Percent.
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub average_usage: Option<f64>,
    /// `null` on agents that cannot read details.
    #[serde(deserialize_with = "lenient::rows")]
    pub detailed_info: Vec<GpuDetail>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct GpuDetail {
    #[serde(deserialize_with = "lenient::string")]
    pub name: String,
    /// Bytes.
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub memory_total: Option<f64>,
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub memory_used: Option<f64>,
    /// Percent.
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub utilization: Option<f64>,
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub temperature: Option<f64>,
}

/// `GET /api/records/ping?uuid=..&hours=..`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct PingRecords {
    #[serde(deserialize_with = "lenient::rows")]
    pub records: Vec<PingRecord>,
    #[serde(deserialize_with = "lenient::rows")]
    pub tasks: Vec<PingTask>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct PingRecord {
    #[serde(deserialize_with = "lenient::string")]
    pub task_id: String,
    #[serde(deserialize_with = "lenient::opt_timestamp")]
    pub time: Option<f64>,
    /// Milliseconds; `-1` is a lost probe.
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub value: Option<f64>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct PingTask {
    #[serde(deserialize_with = "lenient::string")]
    pub id: String,
    #[serde(deserialize_with = "lenient::string")]
    pub name: String,
    /// Seconds.
    #[serde(deserialize_with = "lenient::string")]
    pub interval: String,
}

/// Probes, lost probes, and the newest probe so far: (time, record index, round trip if not lost).
type TaskTally = (usize, usize, Option<(f64, usize, Option<f64>)>);

/// What one node's ping records say per task.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct PingSummary {
    /// The newest probe's round trip in ms; `None` when the newest probe was lost.
    pub rtt_ms: Option<f64>,
    /// Lost probes over all probes in the window.
    pub loss_ratio: f64,
}

impl PingRecords {
    /// Per task id: the newest probe and the loss over the window. Records come in no promised
    /// order, so "newest" is by time (records without a readable time count as oldest).
    pub fn summarize(&self) -> BTreeMap<String, PingSummary> {
        let mut by_task: BTreeMap<&str, TaskTally> = BTreeMap::new();
        for (i, r) in self.records.iter().enumerate() {
            let Some(value) = r.value else { continue };
            let lost = value < 0.0;
            let entry = by_task.entry(r.task_id.as_str()).or_default();
            entry.0 += 1;
            entry.1 += usize::from(lost);
            let key = (r.time.unwrap_or(f64::MIN), i);
            if entry.2.is_none_or(|(t, j, _)| (t, j) < key) {
                entry.2 = Some((key.0, key.1, (!lost).then_some(value)));
            }
        }
        by_task
            .into_iter()
            .map(|(task, (total, lost, newest))| {
                let summary = PingSummary {
                    rtt_ms: newest.and_then(|n| n.2),
                    loss_ratio: lost as f64 / total as f64,
                };
                (task.to_string(), summary)
            })
            .collect()
    }
}

/// A non-success answer as an error, with the server's own message when it sent one.
pub(super) fn refused(path: &str, status: StatusCode, body: &[u8]) -> PollError {
    let message = match parse_envelope::<serde_json::Value>(body) {
        Err(Envelope::Failed(m)) => format!("HTTP {status}: {m}"),
        _ => format!("HTTP {status}"),
    };
    if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
        PollError::auth(format!("{path}: {message}"))
    } else {
        PollError::http(format!("{path}: {message}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_errors_say_why() {
        let r: Result<Version, _> = parse_envelope(b"<html>502</html>");
        assert_eq!(r.unwrap_err(), Envelope::NotJson);
        let r: Result<Version, _> =
            parse_envelope(br#"{"status":"error","error":"Invalid message"}"#);
        assert_eq!(r.unwrap_err(), Envelope::Failed("Invalid message".into()));
        let r: Result<Version, _> = parse_envelope(br#"{"status":"error","message":""}"#);
        assert_eq!(r.unwrap_err(), Envelope::Failed("status \"error\"".into()));
        let r: Result<Vec<Node>, _> = parse_envelope(br#"{"status":"success","data":{"x":1}}"#);
        assert!(matches!(r.unwrap_err(), Envelope::BadData(_)));
        let long = format!(r#"{{"status":"error","message":"{}"}}"#, "x".repeat(500));
        let Err(Envelope::Failed(m)) = parse_envelope::<Version>(long.as_bytes()) else {
            panic!()
        };
        assert!(m.chars().count() <= 121);
    }
}
