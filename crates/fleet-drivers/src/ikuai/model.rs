//! iKuai wire types: the two answer envelopes, JSON repair, and the payloads the driver reads.
//! Every field is optional and lenient: firmware versions differ, and so do their mistakes.

use std::borrow::Cow;

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;

use crate::util::lenient::{self, BoundedValue};

/// The envelope generation a router answers in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// `{"Result":30000,"ErrMsg":"Success","Data":{..}}`
    V3,
    /// `{"code":0,"message":"Success","results":{..}}`
    V4,
}

impl Api {
    pub fn label(self) -> &'static str {
        match self {
            Api::V3 => "3.x",
            Api::V4 => "4.x",
        }
    }
}

/// What an answer says, once its envelope is read.
#[derive(Debug, PartialEq)]
pub enum Answer<T> {
    Ok(T),
    SessionExpired,
    Failed { code: i64, message: String },
}

const V3_LOGIN_OK: i64 = 10000;
const V3_CALL_OK: i64 = 30000;
const V3_SESSION_EXPIRED: i64 = 10014;
const V4_OK: i64 = 0;
const V4_SESSION_EXPIRED: i64 = 1008;

/// Both envelope generations in one shape; the payload is decoded straight into `T`, so a large
/// answer (a thousand client rows) never exists as a generic JSON tree.
#[derive(Deserialize)]
struct Envelope<T> {
    #[serde(rename = "Result")]
    result: Option<Value>,
    #[serde(rename = "ErrMsg", default, deserialize_with = "lenient::string")]
    err_msg: String,
    #[serde(rename = "Data")]
    data: Option<T>,
    code: Option<Value>,
    #[serde(default, deserialize_with = "lenient::string")]
    message: String,
    results: Option<T>,
}

/// Reads an envelope, detecting its generation from the keys present.
pub fn parse_answer<T: DeserializeOwned + Default>(
    body: &[u8],
) -> Result<(Api, Answer<T>), String> {
    let envelope: Envelope<T> = decode_json(body)?;
    let (api, code, message, payload) = match (envelope.result, envelope.code) {
        (Some(code), _) => (Api::V3, code, envelope.err_msg, envelope.data),
        (None, Some(code)) => (Api::V4, code, envelope.message, envelope.results),
        (None, None) => return Err("answer has neither `Result` nor `code`".into()),
    };
    let code = lenient::number(&code).map(|c| c as i64);
    let answer = match (api, code) {
        (Api::V3, Some(V3_CALL_OK | V3_LOGIN_OK)) | (Api::V4, Some(V4_OK)) => {
            Answer::Ok(payload.unwrap_or_default())
        }
        (Api::V3, Some(V3_SESSION_EXPIRED)) | (Api::V4, Some(V4_SESSION_EXPIRED)) => {
            Answer::SessionExpired
        }
        (_, code) => Answer::Failed {
            code: code.unwrap_or(-1),
            message,
        },
    };
    Ok((api, answer))
}

/// Parses JSON, repairing what routers are known to send wrong: text before the document and
/// bare words such as `timeout` or `nil` where a value belongs (read as `null`).
pub fn decode_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    match serde_json::from_slice(body) {
        Ok(v) => Ok(v),
        Err(first) => serde_json::from_slice(&repair_json(body)).map_err(|_| first.to_string()),
    }
}

fn repair_json(body: &[u8]) -> Vec<u8> {
    let start = body
        .iter()
        .position(|&b| b == b'{' || b == b'[')
        .unwrap_or(0);
    let body = &body[start..];
    let mut out = Vec::with_capacity(body.len() + 16);
    let (mut in_string, mut escaped) = (false, false);
    let mut i = 0;
    while i < body.len() {
        let b = body[i];
        if in_string {
            out.push(b);
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            i += 1;
        } else if b.is_ascii_alphabetic()
            && !(i > 0 && (body[i - 1].is_ascii_digit() || body[i - 1] == b'.'))
        {
            // A word outside a string that is not part of a number (`1.2e+14`) is a bare token.
            let end = body[i..]
                .iter()
                .position(|c| !c.is_ascii_alphanumeric() && *c != b'_')
                .map_or(body.len(), |n| i + n);
            match &body[i..end] {
                w @ (b"true" | b"false" | b"null") => out.extend_from_slice(w),
                _ => out.extend_from_slice(b"null"),
            }
            i = end;
        } else {
            if b == b'"' {
                in_string = true;
            }
            out.push(b);
            i += 1;
        }
    }
    out
}

/// `homepage` with the TYPEs of the enabled modules, in one call: `sysstat,ac_status,
/// dhcp_addrpool_num` (system), `ether_info` (ports), `wan_stat` (wan), `app_flow` (app_flow).
/// A TYPE not asked for reads as empty.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Homepage {
    #[serde(deserialize_with = "lenient::object")]
    pub sysstat: Sysstat,
    #[serde(deserialize_with = "lenient::object")]
    pub ac_status: AcStatus,
    #[serde(deserialize_with = "lenient::object")]
    pub dhcp_addrpool_num: DhcpPool,
    #[serde(deserialize_with = "lenient::object")]
    pub ether_info: EtherInfo,
    #[serde(deserialize_with = "lenient::rows")]
    pub wan_stat: Vec<WanStat>,
    #[serde(deserialize_with = "lenient::object")]
    pub app_flow: AppFlow,
}

/// Physical ports by name (`veth1`, `eth0`).
pub type EtherInfo = std::collections::BTreeMap<String, EtherPort>;

/// A WAN line's quality from `homepage` TYPE `wan_stat`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct WanStat {
    #[serde(deserialize_with = "lenient::string")]
    pub interface: String,
    /// Round trip in ms, a string (`"12"`); `"--"` when the line is down.
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub rtt: Option<f64>,
}

/// `app_flow`: `{"app_flow":[{category: bytes, ..., "Total": bytes}]}`, bytes over the window
/// the request's `minute` asked for.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct AppFlow {
    #[serde(deserialize_with = "lenient::rows")]
    pub app_flow: Vec<BoundedValue>,
}

impl AppFlow {
    /// (category, bytes) pairs of the first row, without the `Total` that sums them.
    pub fn categories(&self) -> Vec<(String, f64)> {
        let Some(Value::Object(row)) = self.app_flow.first().map(|v| &v.0) else {
            return Vec::new();
        };
        row.iter()
            .filter(|(name, _)| !name.is_empty() && name.as_str() != "Total")
            .filter_map(|(name, v)| Some((name.clone(), lenient::number(v)?)))
            .collect()
    }
}

/// `upgrade` TYPE `data`: the running and newest versions of the system and of the protocol,
/// audit and domain libraries; `*_new` is empty when nothing newer is offered.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct UpgradeAnswer {
    #[serde(deserialize_with = "lenient::object")]
    pub data: Upgrade,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct Upgrade {
    #[serde(deserialize_with = "lenient::string")]
    pub system_ver: String,
    #[serde(deserialize_with = "lenient::string")]
    pub system_ver_new: String,
    #[serde(deserialize_with = "lenient::string")]
    pub protocol_ver: String,
    #[serde(deserialize_with = "lenient::string")]
    pub protocol_ver_new: String,
    #[serde(deserialize_with = "lenient::string")]
    pub audit_ver: String,
    #[serde(deserialize_with = "lenient::string")]
    pub audit_ver_new: String,
    #[serde(deserialize_with = "lenient::string")]
    pub domain_ver: String,
    #[serde(deserialize_with = "lenient::string")]
    pub domain_ver_new: String,
}

impl Upgrade {
    /// (component, running, newest offered or `""`) for every component the router names.
    pub fn components(&self) -> [(&'static str, &str, &str); 4] {
        [
            ("system", &self.system_ver, &self.system_ver_new),
            (
                "protocol_library",
                &self.protocol_ver,
                &self.protocol_ver_new,
            ),
            ("audit_library", &self.audit_ver, &self.audit_ver_new),
            ("domain_library", &self.domain_ver, &self.domain_ver_new),
        ]
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Sysstat {
    /// The first element is the all-core total, the rest are cores.
    #[serde(deserialize_with = "lenient::f64_list")]
    pub cpu: Vec<Option<f64>>,
    #[serde(deserialize_with = "lenient::f64_list")]
    pub cputemp: Vec<Option<f64>>,
    /// MHz per core; `""` when unknown.
    #[serde(deserialize_with = "lenient::f64_list")]
    pub freq: Vec<Option<f64>>,
    #[serde(deserialize_with = "lenient::string")]
    pub hostname: String,
    /// The router's gateway id, stable per router.
    #[serde(deserialize_with = "lenient::string")]
    pub gwid: String,
    #[serde(deserialize_with = "lenient::object")]
    pub memory: Memory,
    #[serde(deserialize_with = "lenient::object")]
    pub online_user: OnlineUser,
    #[serde(deserialize_with = "lenient::object")]
    pub stream: Stream,
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub uptime: Option<f64>,
    #[serde(deserialize_with = "lenient::object")]
    pub verinfo: VerInfo,
}

/// KiB, all of them.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Memory {
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub total: Option<f64>,
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub available: Option<f64>,
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub free: Option<f64>,
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub cached: Option<f64>,
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub buffers: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct OnlineUser {
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub count: Option<f64>,
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub count_wired: Option<f64>,
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub count_wireless: Option<f64>,
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub count_2g: Option<f64>,
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub count_5g: Option<f64>,
}

/// Rates in bytes/s, totals in bytes.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Stream {
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub connect_num: Option<f64>,
    /// By protocol: the token API's `sysinfo` only.
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub tcp_connect_num: Option<f64>,
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub udp_connect_num: Option<f64>,
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub icmp_connect_num: Option<f64>,
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub upload: Option<f64>,
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub download: Option<f64>,
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub total_up: Option<f64>,
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub total_down: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct VerInfo {
    #[serde(deserialize_with = "lenient::string")]
    pub modelname: String,
    #[serde(deserialize_with = "lenient::string")]
    pub version: String,
    #[serde(deserialize_with = "lenient::string")]
    pub verstring: String,
    #[serde(deserialize_with = "lenient::string")]
    pub arch: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct AcStatus {
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub ap_count: Option<f64>,
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub ap_online: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct DhcpPool {
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub available_num: Option<f64>,
}

/// `monitor_iface` with `iface_check,iface_stream`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct MonitorIface {
    #[serde(deserialize_with = "lenient::rows")]
    pub iface_check: Vec<IfaceCheck>,
    #[serde(deserialize_with = "lenient::rows")]
    pub iface_stream: Vec<IfaceStream>,
}

/// A WAN line's health check.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct IfaceCheck {
    #[serde(deserialize_with = "lenient::string")]
    pub interface: String,
    #[serde(deserialize_with = "lenient::string")]
    pub parent_interface: String,
    #[serde(deserialize_with = "lenient::string")]
    pub ip_addr: String,
    #[serde(deserialize_with = "lenient::string")]
    pub internet: String,
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub updatetime: Option<f64>,
    /// `"success"` or `"fail"`.
    #[serde(deserialize_with = "lenient::string")]
    pub result: String,
    #[serde(deserialize_with = "lenient::string")]
    pub comment: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct IfaceStream {
    #[serde(deserialize_with = "lenient::string")]
    pub interface: String,
    #[serde(deserialize_with = "lenient::string")]
    pub comment: String,
    #[serde(deserialize_with = "lenient::string")]
    pub ip_addr: String,
    /// `"--"` (unknown) on LAN interfaces.
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub connect_num: Option<f64>,
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub upload: Option<f64>,
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub download: Option<f64>,
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub total_up: Option<f64>,
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub total_down: Option<f64>,
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub updropped: Option<f64>,
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub downdropped: Option<f64>,
}

/// One page of `monitor_lanip` / `monitor_lanipv6` with `data,total`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ClientPage {
    #[serde(deserialize_with = "lenient::rows")]
    pub data: Vec<LanClient>,
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub total: Option<f64>,
}

/// A LAN client row as the driver keeps it. Its texts share one buffer: a thousand-client
/// answer read into a `String` per text was a seventh of its decode in allocator calls, and
/// only the texts the series use are kept (the name already chosen, not its four sources).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct LanClient {
    /// `mac`, `ip_addr`, the name, `client_type` and `ssid`, one after another.
    texts: String,
    /// Where each of those texts ends in `texts`.
    ends: [usize; TEXTS],
    pub upload: Option<f64>,
    pub download: Option<f64>,
    pub total_up: Option<f64>,
    pub total_down: Option<f64>,
    pub connect_num: Option<f64>,
    /// dBm as `"-48"`; `""` or `0` when wired or unknown.
    pub signal: Option<f64>,
}

const TEXTS: usize = 5;
const MAC: usize = 0;
const IP_ADDR: usize = 1;
const NAME: usize = 2;
const CLIENT_TYPE: usize = 3;
const SSID: usize = 4;

impl LanClient {
    fn text(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.texts[start..self.ends[i]]
    }

    pub fn mac(&self) -> &str {
        self.text(MAC)
    }

    pub fn ip_addr(&self) -> &str {
        self.text(IP_ADDR)
    }

    /// The user's comment, else the host name, else (4.x) the terminal name, else the model:
    /// the first that is not empty, as the router sends it (possibly URL-encoded).
    pub fn name(&self) -> &str {
        self.text(NAME)
    }

    pub fn client_type(&self) -> &str {
        self.text(CLIENT_TYPE)
    }

    pub fn ssid(&self) -> &str {
        self.text(SSID)
    }
}

impl<'de> Deserialize<'de> for LanClient {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        LanClientWire::deserialize(d).map(LanClient::from)
    }
}

impl From<LanClientWire<'_>> for LanClient {
    fn from(w: LanClientWire<'_>) -> Self {
        let name = [&w.comment, &w.hostname, &w.termname, &w.client_model]
            .into_iter()
            .find(|s| !s.is_empty())
            .map_or("", |s| s.as_ref());
        let parts = [&*w.mac, &*w.ip_addr, name, &*w.client_type, &*w.ssid];
        let mut texts = String::with_capacity(parts.iter().map(|p| p.len()).sum());
        let mut ends = [0; TEXTS];
        for (end, part) in ends.iter_mut().zip(parts) {
            texts.push_str(part);
            *end = texts.len();
        }
        LanClient {
            texts,
            ends,
            upload: w.upload,
            download: w.download,
            total_up: w.total_up,
            total_down: w.total_down,
            connect_num: w.connect_num,
            signal: w.signal,
        }
    }
}

/// A LAN client row as it comes: texts borrowed from the answer where it has them unescaped.
#[derive(Default, Deserialize)]
#[serde(default)]
struct LanClientWire<'a> {
    #[serde(borrow, deserialize_with = "lenient::text_ref")]
    mac: Cow<'a, str>,
    #[serde(borrow, deserialize_with = "lenient::text_ref")]
    ip_addr: Cow<'a, str>,
    #[serde(borrow, deserialize_with = "lenient::text_ref")]
    hostname: Cow<'a, str>,
    /// 4.x names the device here; `hostname` is often empty there.
    #[serde(borrow, deserialize_with = "lenient::text_ref")]
    termname: Cow<'a, str>,
    /// User-given, possibly URL-encoded.
    #[serde(borrow, deserialize_with = "lenient::text_ref")]
    comment: Cow<'a, str>,
    #[serde(borrow, deserialize_with = "lenient::text_ref")]
    client_model: Cow<'a, str>,
    #[serde(borrow, deserialize_with = "lenient::text_ref")]
    client_type: Cow<'a, str>,
    #[serde(borrow, deserialize_with = "lenient::text_ref")]
    ssid: Cow<'a, str>,
    #[serde(deserialize_with = "lenient::opt_f64")]
    upload: Option<f64>,
    #[serde(deserialize_with = "lenient::opt_f64")]
    download: Option<f64>,
    #[serde(deserialize_with = "lenient::opt_f64")]
    total_up: Option<f64>,
    #[serde(deserialize_with = "lenient::opt_f64")]
    total_down: Option<f64>,
    #[serde(deserialize_with = "lenient::opt_f64")]
    connect_num: Option<f64>,
    #[serde(deserialize_with = "lenient::opt_f64")]
    signal: Option<f64>,
}

/// A `dns_cache` row: one per day, plus the cumulative one whose `date` is `0`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct DnsCacheRow {
    #[serde(deserialize_with = "lenient::string")]
    pub date: String,
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub request: Option<f64>,
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub hit: Option<f64>,
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub miss: Option<f64>,
}

/// The `dns_cache` payload: documented under `data`, keyed by the TYPE on some firmware.
pub fn dns_cache_rows(payload: &Value) -> Vec<DnsCacheRow> {
    let rows = payload.get("dns_cache").or_else(|| payload.get("data"));
    rows.map(read_rows).unwrap_or_default()
}

/// A `monitor_l7qos` policy row; numbers mostly as strings.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct QosRow {
    #[serde(deserialize_with = "lenient::string")]
    pub name: String,
    #[serde(deserialize_with = "lenient::string")]
    pub prio: String,
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub upload: Option<f64>,
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub download: Option<f64>,
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub total_up: Option<f64>,
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub total_down: Option<f64>,
}

/// `monitor_l7qos` answers `data[0] = {"wan1": [rows..]}`: returns (interface, row) pairs.
pub fn qos_rows(payload: &Value) -> Vec<(String, QosRow)> {
    let mut out = Vec::new();
    let groups = payload.get("data").and_then(Value::as_array);
    for group in groups.into_iter().flatten() {
        let Some(map) = group.as_object() else {
            continue;
        };
        for (interface, rows) in map {
            for row in read_rows::<QosRow>(rows) {
                out.push((interface.clone(), row));
            }
        }
    }
    out
}

/// `homepage` with `snapshoot`: interface addressing, which changes only with configuration.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct Snapshoot {
    #[serde(deserialize_with = "lenient::rows")]
    pub snapshoot_lan: Vec<Addressing>,
    #[serde(deserialize_with = "lenient::rows")]
    pub snapshoot_wan: Vec<Addressing>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct EtherPort {
    #[serde(deserialize_with = "lenient::string")]
    pub interface: String,
    #[serde(deserialize_with = "lenient::string")]
    pub driver: String,
    #[serde(deserialize_with = "lenient::string")]
    pub model: String,
    #[serde(deserialize_with = "lenient::string")]
    pub mac: String,
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub link: Option<f64>,
    /// Mbit/s.
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub speed: Option<f64>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct Addressing {
    #[serde(deserialize_with = "lenient::string")]
    pub interface: String,
    #[serde(deserialize_with = "lenient::string")]
    pub mac: String,
    #[serde(deserialize_with = "lenient::string")]
    pub ip_addr: String,
    #[serde(deserialize_with = "lenient::string")]
    pub netmask: String,
    #[serde(deserialize_with = "lenient::string")]
    pub gateway: String,
}

/// Rows read from a kept value in place: a copy of the value first would read the answer twice.
fn read_rows<T: serde::de::DeserializeOwned>(v: &Value) -> Vec<T> {
    lenient::rows(v).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_envelopes_and_their_session_expiry() {
        let (api, a) =
            parse_answer::<Value>(br#"{"Result":30000,"ErrMsg":"Success","Data":{"x":1}}"#)
                .unwrap();
        assert_eq!((api, a), (Api::V3, Answer::Ok(serde_json::json!({"x":1}))));
        let (api, a) =
            parse_answer::<Value>(br#"{"code":0,"message":"Success","results":{"x":1}}"#).unwrap();
        assert_eq!((api, a), (Api::V4, Answer::Ok(serde_json::json!({"x":1}))));
        let (_, a) =
            parse_answer::<Value>(br#"{"Result":10014,"ErrMsg":"no login authentication"}"#)
                .unwrap();
        assert_eq!(a, Answer::SessionExpired);
        let (_, a) =
            parse_answer::<Value>("{\"code\":1008,\"message\":\"会话已过期\"}".as_bytes()).unwrap();
        assert_eq!(a, Answer::SessionExpired);
        let (_, a) = parse_answer::<Value>(br#"{"Result":"10001","ErrMsg":"bad"}"#).unwrap();
        assert_eq!(
            a,
            Answer::Failed {
                code: 10001,
                message: "bad".into()
            }
        );
        assert!(parse_answer::<Value>(b"<html>502 Bad Gateway</html>").is_err());
        assert!(parse_answer::<Value>(b"{\"Result\":30000,\"Data\":{").is_err());
    }

    #[test]
    fn client_rows_keep_the_texts_the_series_use_and_the_first_name_given() {
        let body = br#"{"Result":30000,"Data":{"total":3,"data":[
            {"mac":"aa:bb","ip_addr":"10.0.0.2","comment":"","hostname":"","termname":"tv",
             "client_model":"MiTV","client_type":"TV","ssid":"","upload":"12","signal":"-48"},
            {"mac":"cc:dd","ip_addr":"10.0.0.3","comment":"%E5%AE%A2","hostname":"h",
             "client_type":"PC","ssid":"\u7f51 \"5G\"","total_down":7},
            {"mac":"ee:ff","client_model":12,"ip_addr":null}]}}"#;
        let (_, answer) = parse_answer::<ClientPage>(body).unwrap();
        let Answer::Ok(page) = answer else {
            panic!("{answer:?}")
        };
        let texts: Vec<_> = page
            .data
            .iter()
            .map(|c| (c.mac(), c.ip_addr(), c.name(), c.client_type(), c.ssid()))
            .collect();
        assert_eq!(
            texts,
            [
                ("aa:bb", "10.0.0.2", "tv", "TV", ""),
                ("cc:dd", "10.0.0.3", "%E5%AE%A2", "PC", "网 \"5G\""),
                ("ee:ff", "", "12", "", ""),
            ]
        );
        assert_eq!(
            (page.data[0].upload, page.data[0].signal),
            (Some(12.0), Some(-48.0))
        );
        assert_eq!(page.data[1].total_down, Some(7.0));
        assert_eq!(page.total, Some(3.0));
    }

    #[test]
    fn repairs_bare_words_and_leading_text_but_not_strings() {
        let v: Value = decode_json(
            br#"{"Result":30000,"Data":{"data":timeout,"total":1.0118846706974e+14,"x":nil}}"#,
        )
        .unwrap();
        assert_eq!(v["Data"]["total"], 1.0118846706974e14);
        assert_eq!(v["Data"]["data"], Value::Null);
        assert_eq!(v["Data"]["x"], Value::Null);
        let v: Value =
            decode_json(b"<br />Warning: x\n{\"a\":\"timeout \\\" nil\",\"b\":true}").unwrap();
        assert_eq!(v["a"], "timeout \" nil");
        assert_eq!(v["b"], true);
    }
}
