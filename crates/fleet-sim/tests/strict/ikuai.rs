//! Strict decoders of iKuai answers, written from the API document (`ikuai-router-api.md`), the
//! notes on real routers and the published 4.x OpenAPI specs, never from the driver's lenient
//! types: every field has the one type real routers send it in, unknown fields are refused, and
//! the few places where real routers send two forms say which.
#![allow(dead_code)]

use std::collections::BTreeMap;

use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer};

/// `{"Result":30000,"ErrMsg":"Success","Data":{..}}` (3.x).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct V3<T> {
    #[serde(rename = "Result")]
    pub(crate) result: i64,
    #[serde(rename = "ErrMsg")]
    pub(crate) err_msg: String,
    #[serde(rename = "Data")]
    pub(crate) data: T,
}

/// `{"code":0,"message":"Success","results":{..}}` (4.x `/Action/call`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct V4<T> {
    pub(crate) code: i64,
    pub(crate) message: String,
    pub(crate) results: T,
}

/// Decodes `body` as `T` in the envelope of `v4` firmware or 3.x, failing on any other shape.
pub(crate) fn payload<T: DeserializeOwned>(v4: bool, body: &str) -> Result<T, String> {
    if v4 {
        let e: V4<T> = serde_json::from_str(body).map_err(|e| format!("{e}: {body}"))?;
        (e.code == 0).then_some(e.results).ok_or(body.to_owned())
    } else {
        let e: V3<T> = serde_json::from_str(body).map_err(|e| format!("{e}: {body}"))?;
        (e.result == 30000).then_some(e.data).ok_or(body.to_owned())
    }
}

/// A byte total: an integer, or (Lua's `%.14g`) an exponent float, which real routers print only
/// from about 1e14 on. A float below that is a shape no router sends.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Total(pub(crate) f64);

impl<'de> Deserialize<'de> for Total {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = serde_json::Number::deserialize(d)?;
        if let Some(u) = n.as_u64() {
            return Ok(Total(u as f64));
        }
        match n.as_f64() {
            Some(f) if f >= 1e14 => Ok(Total(f)),
            _ => Err(D::Error::custom(format!(
                "byte total {n}: a float below 1e14"
            ))),
        }
    }
}

/// A number the router's schema types as a string of digits (`"1736296104"`, `"320"`).
#[derive(Debug, Clone)]
pub(crate) struct Digits(pub(crate) String);

impl<'de> Deserialize<'de> for Digits {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let digits = s.strip_prefix('-').unwrap_or(&s);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(D::Error::custom(format!("{s:?} is not a string of digits")));
        }
        Ok(Digits(s))
    }
}

/// A WAN or LAN row's `connect_num`: digits, or `"--"` (unknown). Never a bare number.
#[derive(Debug, Clone)]
pub(crate) struct ConnectNum(pub(crate) Option<u64>);

impl<'de> Deserialize<'de> for ConnectNum {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s == "--" {
            return Ok(ConnectNum(None));
        }
        s.parse()
            .map(|n| ConnectNum(Some(n)))
            .map_err(|_| D::Error::custom(format!("connect_num {s:?}")))
    }
}

/// A percent string such as `"9.45%"`.
#[derive(Debug, Clone)]
pub(crate) struct Percent(pub(crate) f64);

impl<'de> Deserialize<'de> for Percent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.strip_suffix('%')
            .and_then(|n| n.parse().ok())
            .map(Percent)
            .ok_or_else(|| D::Error::custom(format!("{s:?} is not a percent")))
    }
}

/// A client's `signal`: a string (`"-48"`, `""`) on 3.x; 4.x may also send a bare `0`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(crate) enum Signal {
    Text(String),
    Number(i64),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Sysstat {
    pub(crate) cpu: Vec<Percent>,
    pub(crate) cputemp: Vec<f64>,
    pub(crate) freq: Vec<String>,
    pub(crate) gwid: String,
    pub(crate) hostname: String,
    pub(crate) link_status: u8,
    pub(crate) memory: Memory,
    pub(crate) online_user: OnlineUser,
    pub(crate) stream: Stream,
    pub(crate) uptime: u64,
    pub(crate) verinfo: VerInfo,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Memory {
    pub(crate) total: u64,
    pub(crate) available: u64,
    pub(crate) free: u64,
    pub(crate) cached: u64,
    pub(crate) buffers: u64,
    pub(crate) used: Percent,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct OnlineUser {
    pub(crate) count: u64,
    pub count_2g: u64,
    pub count_5g: u64,
    pub(crate) count_wired: u64,
    pub(crate) count_wireless: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Stream {
    pub(crate) connect_num: u64,
    pub(crate) upload: u64,
    pub(crate) download: u64,
    pub(crate) total_up: Total,
    pub(crate) total_down: Total,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct VerInfo {
    pub(crate) modelname: String,
    pub(crate) verstring: String,
    pub(crate) version: String,
    pub(crate) build_date: u64,
    pub(crate) arch: String,
    pub(crate) sysbit: String,
    pub(crate) verflags: String,
    pub(crate) is_enterprise: u8,
    pub support_i18n: u8,
    pub(crate) support_dingtalk: u8,
    pub(crate) support_lcd: u8,
    pub(crate) bootguide: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Homepage {
    pub(crate) sysstat: Sysstat,
    pub(crate) ac_status: AcStatus,
    pub(crate) dhcp_addrpool_num: DhcpPool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AcStatus {
    pub(crate) ap_count: u64,
    pub(crate) ap_online: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DhcpPool {
    pub(crate) available_num: u64,
}

/// `func_name: "sysstat"` with `TYPE: "verinfo,cpu,memory,stream,cputemp"`: no wrapper.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SysstatAlone {
    pub(crate) verinfo: VerInfo,
    pub(crate) cpu: Vec<Percent>,
    pub(crate) memory: Memory,
    pub(crate) stream: Stream,
    pub(crate) cputemp: Vec<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Ports {
    pub(crate) ether_info: BTreeMap<String, EtherPort>,
    pub(crate) snapshoot_lan: Vec<LanSnapshot>,
    pub(crate) snapshoot_wan: Vec<WanSnapshot>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EtherPort {
    pub(crate) driver: String,
    #[serde(rename = "type")]
    pub(crate) kind: String,
    pub(crate) mac: String,
    pub(crate) link: u8,
    pub(crate) speed: u64,
    pub(crate) duplex: u8,
    pub(crate) model: String,
    pub(crate) interface: String,
    pub(crate) lock: u8,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LanSnapshot {
    pub(crate) id: u64,
    pub(crate) comment: String,
    pub(crate) interface: String,
    pub(crate) bandmode: u8,
    pub(crate) linkmode: u8,
    pub(crate) mac: String,
    pub(crate) member: Vec<String>,
    pub(crate) ip_addr: String,
    pub(crate) netmask: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WanSnapshot {
    pub(crate) id: u64,
    pub(crate) comment: String,
    pub(crate) interface: String,
    pub(crate) mac: String,
    pub(crate) member: Vec<String>,
    pub(crate) bandmode: u8,
    pub(crate) default_route: u8,
    pub(crate) internet: u8,
    pub(crate) ip_addr: String,
    pub(crate) netmask: String,
    pub(crate) gateway: String,
    pub dns1: String,
    pub dns2: String,
    pub(crate) count_static: u64,
    pub(crate) count_dhcp: u64,
    pub(crate) count_pppoe: u64,
    pub(crate) count_check_fail: u64,
    pub(crate) updatetime: u64,
    pub(crate) check_res: u8,
    pub(crate) errmsg: String,
    pub(crate) power: String,
    pub(crate) isp: String,
    pub(crate) imei: String,
    pub(crate) qnw: String,
    pub(crate) ccid: String,
    pub(crate) isnr: String,
    pub(crate) pcid: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MonitorIface {
    pub(crate) iface_check: Vec<IfaceCheck>,
    pub(crate) iface_stream: Vec<IfaceStream>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct IfaceCheck {
    pub(crate) id: u64,
    pub(crate) interface: String,
    pub(crate) parent_interface: String,
    pub(crate) ip_addr: String,
    pub(crate) gateway: String,
    pub(crate) internet: String,
    pub(crate) updatetime: Digits,
    pub(crate) auto_switch: String,
    pub(crate) result: String,
    pub(crate) errmsg: String,
    pub(crate) comment: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct IfaceStream {
    pub(crate) interface: String,
    pub(crate) comment: String,
    pub(crate) ip_addr: String,
    pub(crate) connect_num: ConnectNum,
    pub(crate) upload: u64,
    pub(crate) download: u64,
    pub(crate) total_up: Total,
    pub(crate) total_down: Total,
    pub(crate) updropped: u64,
    pub(crate) downdropped: u64,
    pub(crate) uppacked: u64,
    pub(crate) downpacked: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ClientPage {
    pub(crate) data: Vec<LanClient>,
    pub(crate) total: u64,
}

/// A `monitor_lanip` / `monitor_lanipv6` row as the document lists it; 4.x adds `termname`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LanClient {
    pub(crate) mac: String,
    pub(crate) auth_type: u64,
    pub(crate) client_type: String,
    pub(crate) client_device: String,
    pub(crate) apname: String,
    pub(crate) ac_gid: u64,
    pub(crate) link_addr: String,
    pub(crate) bssid: String,
    pub(crate) uprate: String,
    pub(crate) downrate: String,
    #[serde(default)]
    pub(crate) reject: u8,
    pub(crate) id: u64,
    pub(crate) hostname: String,
    pub(crate) total_up: Total,
    pub(crate) total_down: Total,
    pub(crate) timestamp: u64,
    pub(crate) download: u64,
    pub(crate) upload: u64,
    pub(crate) client_model: String,
    pub(crate) client_typeid: u64,
    pub(crate) signal: Signal,
    pub(crate) frequencies: String,
    pub(crate) username: String,
    pub(crate) ppptype: String,
    pub(crate) comment: String,
    pub(crate) ssid: String,
    pub(crate) apmac: String,
    pub(crate) dtalk_name: String,
    pub(crate) uptime: String,
    pub(crate) webid: u64,
    pub(crate) connect_num: u64,
    pub(crate) ip_addr: String,
    pub(crate) ip_addr_int: u64,
    pub(crate) termname: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Rows<T> {
    pub(crate) data: Vec<T>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DnsCacheRow {
    pub(crate) request: u64,
    pub(crate) hit: u64,
    pub(crate) date: DnsDate,
    pub(crate) save_time: u64,
    pub(crate) id: u64,
    pub(crate) miss: u64,
}

/// A day (`"2025-01-17"`), or `0` for the cumulative row.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum DnsDate {
    Day(String),
    Cumulative(u8),
}

/// `monitor_l7qos` rows: figures as strings, except the `ALL` row's rates (numbers, no `prio`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct QosRow {
    pub(crate) download: StrOrNum,
    pub(crate) total_down: Digits,
    pub(crate) total_up: Digits,
    pub(crate) name: String,
    pub(crate) prio: Option<Digits>,
    pub(crate) ipgroup: String,
    pub(crate) upload: StrOrNum,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum StrOrNum {
    Digits(Digits),
    Number(u64),
}

/// `homepage` TYPE `wan_stat`: `rtt` a string in ms (`"--"` when the line is down), rates KB/s
/// floats, `isp` a carrier code.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WanStat {
    pub(crate) interface: String,
    pub(crate) rtt: String,
    pub(crate) upload: f64,
    pub(crate) download: f64,
    pub(crate) isp: String,
}

/// `app_flow`: `{"app_flow":[{category: bytes, ..., "Total": bytes}]}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AppFlow {
    pub(crate) app_flow: Vec<BTreeMap<String, u64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FlowRow {
    pub(crate) id: u64,
    pub(crate) name: String,
    pub(crate) total: u64,
}

/// `upgrade` TYPE `data`: running and newest versions; `*_new` is `""` when nothing is newer.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Upgrade {
    pub(crate) system_ver: String,
    pub(crate) system_ver_new: String,
    pub(crate) protocol_ver: String,
    pub(crate) protocol_ver_new: String,
    pub(crate) audit_ver: String,
    pub(crate) audit_ver_new: String,
    pub(crate) domain_ver: String,
    pub(crate) domain_ver_new: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Register {
    pub(crate) data: RegisterData,
    pub(crate) gwid: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RegisterData {
    pub(crate) gwid: String,
    pub(crate) status: u8,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WebUsers {
    pub(crate) data: Vec<WebUser>,
    pub(crate) total: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WebUser {
    pub(crate) username: String,
}

// The 4.x token API, from the published OpenAPI specs (`additionalProperties: false` there, so
// unknown fields are refused here too).

/// `{"code"?: 0, "message": "Success", "results": {..}}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Token<T> {
    pub(crate) code: Option<i64>,
    pub(crate) message: String,
    pub(crate) results: T,
}

/// An error answer: `{"code": 3007, "message": ..}` (401), `{"code": 3001, ..}` (400).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TokenError {
    pub(crate) code: Option<i64>,
    pub(crate) message: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SystemResults {
    pub(crate) sysinfo: SysInfo,
}

/// `SysInfo`: sysstat's fields plus `ip_addr`; `SysStream` adds connections by protocol.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SysInfo {
    pub(crate) cpu: Vec<Percent>,
    pub(crate) cputemp: Vec<f64>,
    pub(crate) freq: Vec<String>,
    pub(crate) gwid: String,
    pub(crate) hostname: String,
    pub(crate) ip_addr: String,
    pub(crate) link_status: u8,
    pub(crate) memory: Memory,
    pub(crate) online_user: OnlineUser,
    pub(crate) stream: SysStream,
    pub(crate) uptime: u64,
    pub(crate) verinfo: SysVerinfo,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SysStream {
    pub(crate) connect_num: u64,
    pub(crate) tcp_connect_num: u64,
    pub(crate) udp_connect_num: u64,
    pub(crate) icmp_connect_num: u64,
    pub(crate) upload: u64,
    pub(crate) download: u64,
    pub(crate) total_up: Total,
    pub(crate) total_down: Total,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SysVerinfo {
    pub(crate) modelname: String,
    pub(crate) verstring: String,
    pub(crate) version: String,
    pub(crate) build_date: u64,
    pub(crate) arch: String,
    pub(crate) sysbit: String,
}

/// `InterfaceStatusResults`; a check's `result` is `success` or `failed`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct InterfaceStatus {
    pub(crate) iface_check: Vec<IfaceCheck>,
    pub(crate) iface_stream: Vec<IfaceStream>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct InterfacesTraffic {
    pub(crate) wans_stat_history: Vec<WanStatHistory>,
}

/// Round trips are numbers (ms); rates and `drop_rate` are decimal strings.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WanStatHistory {
    pub(crate) id: u64,
    pub(crate) timestamp: u64,
    pub(crate) interface: String,
    pub(crate) avg_upload: Decimal,
    pub(crate) max_upload: Decimal,
    pub(crate) avg_download: Decimal,
    pub(crate) max_download: Decimal,
    pub(crate) drop_rate: Decimal,
    pub(crate) avg_rtt: f64,
    pub(crate) min_rtt: f64,
    pub(crate) max_rtt: f64,
}

/// The spec's `^[0-9]+(\.[0-9]+)?$` string.
#[derive(Debug, Clone)]
pub(crate) struct Decimal(pub(crate) f64);

impl<'de> Deserialize<'de> for Decimal {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let (int, frac) = s.split_once('.').unwrap_or((&s, "0"));
        let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
        if !digits(int) || !digits(frac) {
            return Err(D::Error::custom(format!("{s:?} is not a decimal string")));
        }
        s.parse().map(Decimal).map_err(D::Error::custom)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Physical {
    pub(crate) ether_info: BTreeMap<String, EtherInfo>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EtherInfo {
    pub(crate) driver: String,
    #[serde(rename = "type")]
    pub(crate) kind: String,
    pub(crate) mac: String,
    pub(crate) link: u8,
    pub(crate) speed: u64,
    pub(crate) duplex: u8,
    pub(crate) model: String,
    pub(crate) interface: String,
    pub(crate) lock: u8,
    pub(crate) bindmod: u8,
}

/// `InterfacesConfigResults`: the spec's WAN rows have no modem fields.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct InterfacesConfig {
    pub(crate) snapshoot_lan: Vec<LanSnapshot>,
    pub(crate) snapshoot_wan: Vec<WanConfig>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WanConfig {
    pub(crate) id: u64,
    pub(crate) comment: String,
    pub(crate) interface: String,
    pub(crate) mac: String,
    pub(crate) member: Vec<String>,
    pub(crate) bandmode: u8,
    pub(crate) linkmode: Option<u8>,
    pub(crate) default_route: u8,
    pub(crate) internet: u8,
    pub(crate) ip_addr: String,
    pub(crate) netmask: String,
    pub(crate) gateway: String,
    pub(crate) dns1: String,
    pub(crate) dns2: String,
    pub(crate) count_static: u64,
    pub(crate) count_dhcp: u64,
    pub(crate) count_pppoe: u64,
    pub(crate) count_check_fail: u64,
    pub(crate) updatetime: u64,
    pub(crate) check_res: u8,
    pub(crate) errmsg: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct OnlineClients {
    pub(crate) total: u64,
    pub(crate) data: Vec<OnlineClient>,
}

/// `OnlineClient` and `Ip6OnlineClient` (the latter adds `device_type` and `channel`, and its
/// `signal` is a number).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct OnlineClient {
    pub(crate) id: u64,
    pub(crate) mac: String,
    pub(crate) ssid: String,
    pub(crate) ip_addr_int: Option<u64>,
    pub(crate) ip_addr: String,
    pub(crate) timestamp: u64,
    pub(crate) total_up: Total,
    pub(crate) total_down: Total,
    pub(crate) connect_num: u64,
    pub(crate) upload: u64,
    pub(crate) download: u64,
    pub(crate) uplink_dev: String,
    pub(crate) uplink_addr: String,
    pub(crate) apname: String,
    pub(crate) bssid: String,
    pub(crate) termname: String,
    pub(crate) comment: String,
    pub(crate) static_status: u8,
    pub(crate) client_type: String,
    pub(crate) client_typeid: u64,
    pub(crate) interface: String,
    pub(crate) signal: Signal,
    pub(crate) channel: Option<String>,
    pub(crate) device_type: Option<String>,
    pub(crate) auth_type: u64,
    pub(crate) vlan_id: u64,
    pub(crate) uptime: String,
    pub(crate) username: String,
    pub(crate) ppptype: String,
    pub(crate) apmac: String,
    pub(crate) today_total: u64,
    pub(crate) client_vendor: String,
    pub(crate) client_model: String,
    pub(crate) reject: u8,
    pub(crate) frequencies: String,
    pub(crate) uprate: String,
    pub(crate) downrate: String,
    pub(crate) enc: String,
    pub(crate) ipv4_gnames: String,
    pub(crate) ipv6_gnames: String,
    pub(crate) mac_gnames: String,
    pub(crate) dtalk_name: String,
    pub(crate) link_addr: String,
    pub(crate) webid: u64,
    pub(crate) device_icon: String,
    pub(crate) vendor_icon: String,
    pub(crate) ac_gid: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DnsStats {
    pub(crate) total: u64,
    pub(crate) data: Vec<DnsStatsRow>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DnsStatsRow {
    pub(crate) id: u64,
    pub(crate) request: u64,
    pub(crate) hit: u64,
    pub(crate) miss: u64,
    pub(crate) date: DnsDate,
    pub(crate) save_time: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Protocols {
    pub(crate) data: Vec<ProtocolTraffic>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProtocolTraffic {
    pub(crate) proto: String,
    pub(crate) proto_name: String,
    pub(crate) total: u64,
}

/// `SystemDiskListResponse`: unlike the other token answers its spec requires `code` (always 0).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DisksResponse {
    pub(crate) code: i64,
    pub(crate) message: String,
    pub(crate) results: DisksResults,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DisksResults {
    pub(crate) data: Vec<SystemDisk>,
}

/// `SystemDiskDevice`: sizes in bytes as integers.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SystemDisk {
    #[serde(rename = "type")]
    pub(crate) table: String,
    pub(crate) disk: String,
    pub(crate) system: Flag,
    pub(crate) block_size: u64,
    pub(crate) creating: Flag,
    pub(crate) partition: Vec<DiskPartition>,
    pub(crate) model: String,
    pub(crate) size: u64,
}

/// `SystemDiskPartition`: `type` 0 primary, 1 extended, 2 logical.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DiskPartition {
    pub(crate) name: String,
    #[serde(rename = "type")]
    pub(crate) kind: PartitionKind,
    pub(crate) filesys: DiskFilesystem,
    pub(crate) size: u64,
    pub(crate) mounted: DiskMount,
    pub(crate) formating: Flag,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DiskFilesystem {
    pub(crate) fs_uuid: String,
    pub(crate) fs_type: String,
}

/// `SystemDiskMountInfo`: every field a string, the byte counts and `mt_uses` digits.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DiskMount {
    pub(crate) mt_purpose: MountPurpose,
    pub(crate) mt_total: Digits,
    pub(crate) mt_name: String,
    pub(crate) mt_used: Digits,
    pub(crate) mt_uses: Digits,
    pub(crate) mt_avail: Digits,
}

/// An integer the spec allows only as 0 or 1.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Flag(pub(crate) bool);

impl<'de> Deserialize<'de> for Flag {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match u8::deserialize(d)? {
            0 => Ok(Flag(false)),
            1 => Ok(Flag(true)),
            n => Err(D::Error::custom(format!("flag {n}: not 0 or 1"))),
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct PartitionKind(pub(crate) u8);

impl<'de> Deserialize<'de> for PartitionKind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match u8::deserialize(d)? {
            n @ 0..=2 => Ok(PartitionKind(n)),
            n => Err(D::Error::custom(format!(
                "partition type {n}: not 0, 1 or 2"
            ))),
        }
    }
}

/// `mt_purpose`: the spec's enum `"0"`..`"4"`, a string.
#[derive(Debug, Clone)]
pub(crate) struct MountPurpose(pub(crate) String);

impl<'de> Deserialize<'de> for MountPurpose {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if ["0", "1", "2", "3", "4"].contains(&s.as_str()) {
            Ok(MountPurpose(s))
        } else {
            Err(D::Error::custom(format!("mt_purpose {s:?}")))
        }
    }
}

/// `WirelessStatisticsResponse`: `message` and `results` only (its spec has no `code`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WirelessResponse {
    pub(crate) message: String,
    pub(crate) results: WirelessStatistics,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WirelessStatistics {
    pub(crate) ap_status: ApStatus,
    pub(crate) clt_status: CltStatus,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ApStatus {
    pub(crate) ap_count: u64,
    pub(crate) ap_online: u64,
    pub(crate) ap_offline: u64,
    pub(crate) ap_perfer_5g: u64,
    pub(crate) ap_roaming: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CltStatus {
    pub(crate) clt_count: u64,
    pub(crate) clt_count_2g: u64,
    pub(crate) clt_count_5g: u64,
    pub(crate) clt_max_online: u64,
    pub(crate) clt_active: u64,
    pub(crate) clt_inactive: u64,
}

/// The wireless spec's `ErrorResponse` (404 `NotFound` among them): `message` only.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MessageOnly {
    pub(crate) message: String,
}
