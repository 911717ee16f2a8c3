//! A simulated IoT agent platform open API (`POST /openapi/iot/queryDeviceFlow`).
//!
//! Written only from the published API document (`iot-platform-api.md`) and the project's notes
//! on the platform, never from the exporter's driver. What it checks, like the platform:
//! every request carries `appID`, `apiVersion` (`2.0.0`), `traceID` (32 lowercase hex, never
//! reused), `timestamp` (10-digit Unix seconds, at most 10 minutes off the platform's clock) and
//! `sign = md5(appID + apiVersion + traceID + timestamp + secret)` as headers; the body is
//! form-urlencoded `deviceNo=...`. Answers are `{"code","message","data","timestamp","traceID"}`
//! with `code == 0` on success.
//!
//! The platform's error codes are not published; these are invented and only their being
//! non-zero matters: 1001 unknown `appID`, 1002 bad signature, 1003 timestamp out of range,
//! 1004 bad or reused `traceID`, 1005 unsupported `apiVersion`, 1000 missing parameter,
//! 2001 unknown device. Over the rate limit the answer is HTTP 429.
//!
//! With `quirks` on (the default) some devices carry the oddities an exporter must survive:
//! numbers as strings, `null` in place of objects, no SIM cards at all, and status codes no
//! document lists. Values move with wall time: usage grows, signal and battery wander.

use std::collections::{HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};
use tokio::sync::watch;

use super::util::{
    datetime, first_half, hang, json_response, lock, md5_hex, mix, proxy_page, serve,
    server_error_page, unit, unix_now, InFlight,
};

pub const DEVICE_FLOW_PATH: &str = "/openapi/iot/queryDeviceFlow";
const API_VERSION: &str = "2.0.0";
/// The platform accepts timestamps at most this far from its own clock.
const MAX_SKEW_SECS: i64 = 600;
/// `traceID`s remembered for the replay check; enough for any test or benchmark cycle.
const MAX_TRACES: usize = 100_000;
/// Device numbers are this prefix and a 7-digit index: 15 digits, like the IMEIs they are.
const DEVICE_PREFIX: &str = "86521407";

/// A failure injected into answers (after the rate limit, before the signature check).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    None,
    /// Accept the request and never answer (until the simulator is dropped).
    Hang,
    /// Cut the JSON body in half (the HTTP framing stays valid).
    Truncated,
    /// An HTML error page with status 200, as a proxy in front of the platform sends.
    Html,
    /// HTTP 500 with an HTML page.
    Status500,
    /// HTTP 429 on every request, as when another client of the same app uses up the limit.
    Status429,
}

#[derive(Clone, Debug)]
pub struct IotSimConfig {
    pub app_id: String,
    pub app_secret: String,
    /// Devices the account holds, numbered by [`IotSim::device_no`].
    pub devices: usize,
    /// SIM cards per device (1..=3); `None` gives device `i` `1 + i % 3` cards.
    pub sims_per_device: Option<usize>,
    /// Requests per rolling second the platform answers; more get HTTP 429. `None`: no limit.
    pub rate_limit: Option<usize>,
    /// Emit the real-world quirks (see the module documentation).
    pub quirks: bool,
    /// Seeds values, so two runs show the same fleet.
    pub seed: u64,
}

impl Default for IotSimConfig {
    fn default() -> Self {
        IotSimConfig {
            app_id: "qwe123".into(),
            app_secret: "C55rqUa6AvKyuNMYYvoYCSR1BBfSPWK7".into(),
            devices: 5,
            sims_per_device: None,
            rate_limit: Some(5),
            quirks: true,
            seed: 1,
        }
    }
}

/// Handle on a running simulator; dropping it stops the server.
pub struct IotSim {
    addr: SocketAddr,
    shared: Arc<Shared>,
    _stop: watch::Sender<bool>,
}

struct Shared {
    cfg: IotSimConfig,
    started: Instant,
    started_unix: u64,
    /// Seconds the platform's clock is ahead of this machine's.
    clock_offset: AtomicI64,
    requests: AtomicU64,
    answered_ok: AtomicU64,
    rejected_auth: AtomicU64,
    rate_limited: AtomicU64,
    per_device: Vec<AtomicU64>,
    /// Arrival times within the last second, for the rate limit and its measurement.
    arrivals: Mutex<VecDeque<Instant>>,
    max_per_second: AtomicUsize,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    traces: Mutex<(HashSet<String>, VecDeque<String>)>,
    latency: Mutex<Duration>,
    fault: Mutex<Fault>,
    stop: watch::Receiver<bool>,
}

/// The platform writes dates in China Standard Time (UTC+8).
const TZ_OFFSET: u64 = 8 * 3600;

fn local_datetime(unix: u64) -> String {
    datetime(unix, TZ_OFFSET)
}

impl IotSim {
    /// Binds `127.0.0.1:0` and serves in a spawned tokio task.
    pub async fn start(cfg: IotSimConfig) -> std::io::Result<IotSim> {
        let (stop, stop_rx) = watch::channel(false);
        let shared = Arc::new(Shared {
            per_device: (0..cfg.devices).map(|_| AtomicU64::new(0)).collect(),
            cfg,
            started: Instant::now(),
            started_unix: unix_now(),
            clock_offset: AtomicI64::new(0),
            requests: AtomicU64::new(0),
            answered_ok: AtomicU64::new(0),
            rejected_auth: AtomicU64::new(0),
            rate_limited: AtomicU64::new(0),
            arrivals: Mutex::new(VecDeque::new()),
            max_per_second: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
            traces: Mutex::new((HashSet::new(), VecDeque::new())),
            latency: Mutex::new(Duration::ZERO),
            fault: Mutex::new(Fault::None),
            stop: stop_rx.clone(),
        });
        let app = Router::new()
            .route(DEVICE_FLOW_PATH, post(device_flow))
            .with_state(Arc::clone(&shared));
        let addr = serve(app, "iot", stop_rx).await?;
        Ok(IotSim {
            addr,
            shared,
            _stop: stop,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The number of device `i` (any `i`, also beyond the fleet: an unknown device).
    pub fn device_no(i: usize) -> String {
        format!("{DEVICE_PREFIX}{i:07}")
    }

    /// Every device number the account holds.
    pub fn device_nos(&self) -> Vec<String> {
        (0..self.shared.cfg.devices).map(Self::device_no).collect()
    }

    /// The ICCIDs of device `i`'s cards, main slot first (empty for a device without cards).
    pub fn iccids(&self, i: usize) -> Vec<String> {
        (0..sim_count(&self.shared.cfg, i))
            .map(|k| iccid(i, k))
            .collect()
    }

    /// The clear-text Wi-Fi and web admin passwords of device `i`, which the platform sends and
    /// an exporter must never show.
    pub fn passwords(&self, i: usize) -> [String; 2] {
        [wifi_password(self.shared.cfg.seed, i), web_password(i)]
    }

    /// Requests received on the API path, whatever became of them.
    pub fn requests(&self) -> u64 {
        self.shared.requests.load(Ordering::SeqCst)
    }

    /// Requests answered with `code == 0`.
    pub fn answered_ok(&self) -> u64 {
        self.shared.answered_ok.load(Ordering::SeqCst)
    }

    /// Requests refused for their signature headers (app ID, sign, timestamp, traceID, version).
    pub fn rejected_auth(&self) -> u64 {
        self.shared.rejected_auth.load(Ordering::SeqCst)
    }

    /// Requests answered with HTTP 429 because they exceeded the rate limit.
    pub fn rate_limited(&self) -> u64 {
        self.shared.rate_limited.load(Ordering::SeqCst)
    }

    /// Requests that asked for device `i`.
    pub fn device_requests(&self, i: usize) -> u64 {
        self.shared
            .per_device
            .get(i)
            .map_or(0, |n| n.load(Ordering::SeqCst))
    }

    /// The most requests that arrived within any one second, as measured here.
    pub fn max_requests_per_second(&self) -> usize {
        self.shared.max_per_second.load(Ordering::SeqCst)
    }

    /// Highest number of requests served at once.
    pub fn max_in_flight(&self) -> usize {
        self.shared.max_in_flight.load(Ordering::SeqCst)
    }

    /// Added to every answer.
    pub fn set_latency(&self, d: Duration) {
        *lock(&self.shared.latency) = d;
    }

    pub fn set_fault(&self, f: Fault) {
        *lock(&self.shared.fault) = f;
    }

    /// Moves the platform's clock `secs` ahead of this machine's (negative: behind), as when
    /// the exporter's host clock is off.
    pub fn set_clock_offset(&self, secs: i64) {
        self.shared.clock_offset.store(secs, Ordering::SeqCst);
    }
}

// ---------------------------------------------------------------------------
// HTTP handler
// ---------------------------------------------------------------------------

async fn device_flow(State(sh): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    sh.requests.fetch_add(1, Ordering::SeqCst);
    let _in_flight = InFlight::enter(&sh.in_flight, &sh.max_in_flight);
    let over_limit = sh.count_arrival();

    let latency = *lock(&sh.latency);
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let fault = *lock(&sh.fault);
    match fault {
        Fault::Hang => {
            hang(&sh.stop).await;
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
        Fault::Status500 => return server_error_page(),
        Fault::Status429 => return too_many_requests(&sh),
        _ if over_limit => return too_many_requests(&sh),
        _ => {}
    }

    let now = sh.platform_now();
    let (trace_id, answer) = match sh.check_signature(&headers, now) {
        Err((trace_id, code, message)) => {
            sh.rejected_auth.fetch_add(1, Ordering::SeqCst);
            (trace_id, Err((code, message)))
        }
        Ok(trace_id) => (trace_id, sh.answer(&body, now)),
    };
    let envelope = match answer {
        Ok(data) => {
            sh.answered_ok.fetch_add(1, Ordering::SeqCst);
            json!({"code": 0, "message": "操作成功", "data": data,
                   "timestamp": now, "traceID": trace_id})
        }
        Err((code, message)) => json!({"code": code, "message": message, "data": null,
                                       "timestamp": now, "traceID": trace_id}),
    };
    let text = envelope.to_string();
    match fault {
        Fault::Truncated => json_response(StatusCode::OK, first_half(&text)),
        Fault::Html => proxy_page(),
        _ => json_response(StatusCode::OK, text),
    }
}

fn too_many_requests(sh: &Shared) -> Response {
    sh.rate_limited.fetch_add(1, Ordering::SeqCst);
    json_response(
        StatusCode::TOO_MANY_REQUESTS,
        r#"{"code":429,"message":"请求过于频繁,请稍后再试"}"#,
    )
}

type Refusal = (i64, &'static str);

impl Shared {
    /// Records an arrival; says whether it exceeds the rate limit.
    fn count_arrival(&self) -> bool {
        let now = Instant::now();
        let mut arrivals = lock(&self.arrivals);
        while arrivals
            .front()
            .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(1))
        {
            arrivals.pop_front();
        }
        arrivals.push_back(now);
        self.max_per_second
            .fetch_max(arrivals.len(), Ordering::SeqCst);
        self.cfg
            .rate_limit
            .is_some_and(|limit| arrivals.len() > limit)
    }

    fn platform_now(&self) -> i64 {
        unix_now() as i64 + self.clock_offset.load(Ordering::SeqCst)
    }

    /// Checks the signing headers as the platform does; returns the request's traceID.
    fn check_signature(
        &self,
        headers: &HeaderMap,
        now: i64,
    ) -> Result<String, (String, i64, &'static str)> {
        let h = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned()
        };
        let (app_id, version, trace_id, timestamp, sign) = (
            h("appID"),
            h("apiVersion"),
            h("traceID"),
            h("timestamp"),
            h("sign"),
        );
        let refuse = |code, msg| Err((trace_id.clone(), code, msg));
        if app_id != self.cfg.app_id {
            return refuse(1001, "appID不存在");
        }
        if version != API_VERSION {
            return refuse(1005, "apiVersion不支持");
        }
        let is_hex = |s: &str| {
            s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        };
        if trace_id.len() != 32 || !is_hex(&trace_id) {
            return refuse(1004, "traceID格式错误");
        }
        let ts = (timestamp.len() == 10)
            .then(|| timestamp.parse::<i64>().ok())
            .flatten();
        match ts {
            Some(ts) if (ts - now).abs() <= MAX_SKEW_SECS => {}
            _ => return refuse(1003, "请求时间戳已过期,请校准时间"),
        }
        let expected = md5_hex(&format!(
            "{app_id}{version}{trace_id}{timestamp}{}",
            self.cfg.app_secret
        ));
        if sign != expected {
            return refuse(1002, "签名错误");
        }
        let mut traces = lock(&self.traces);
        let (seen, order) = &mut *traces;
        if !seen.insert(trace_id.clone()) {
            return refuse(1004, "traceID重复,请勿重放请求");
        }
        order.push_back(trace_id.clone());
        if order.len() > MAX_TRACES {
            if let Some(old) = order.pop_front() {
                seen.remove(&old);
            }
        }
        Ok(trace_id)
    }

    fn answer(&self, body: &[u8], now: i64) -> Result<Value, Refusal> {
        let device_no = url::form_urlencoded::parse(body)
            .find(|(k, _)| k == "deviceNo")
            .map(|(_, v)| v.trim().to_owned())
            .filter(|v| !v.is_empty())
            .ok_or((1000, "参数错误:deviceNo不能为空"))?;
        let index = device_no
            .strip_prefix(DEVICE_PREFIX)
            .filter(|rest| rest.len() == 7)
            .and_then(|rest| rest.parse::<usize>().ok())
            .filter(|i| *i < self.cfg.devices)
            .ok_or((2001, "设备不存在"))?;
        self.per_device[index].fetch_add(1, Ordering::SeqCst);
        let t = self.started.elapsed().as_secs_f64();
        Ok(device_data(
            &self.cfg,
            index,
            now.max(0) as u64,
            self.started_unix,
            t,
        ))
    }
}

// ---------------------------------------------------------------------------
// The simulated fleet
// ---------------------------------------------------------------------------

const T_RSSI: u64 = 1;
const T_BATTERY: u64 = 2;
const T_CLIENTS: u64 = 3;
const T_USAGE: u64 = 4;
const T_WIFI: u64 = 5;
const T_PLACE: u64 = 6;

/// Plan sizes in the platform's flow unit (KiB: 100, 200 and 50 GiB).
const PLANS: [u64; 3] = [104_857_600, 209_715_200, 52_428_800];

/// Quirky devices, by index, when quirks are on.
fn strings_for_numbers(cfg: &IotSimConfig, i: usize) -> bool {
    cfg.quirks && i % 5 == 1
}
fn null_objects(cfg: &IotSimConfig, i: usize) -> bool {
    cfg.quirks && i % 7 == 3
}
fn no_cards(cfg: &IotSimConfig, i: usize) -> bool {
    cfg.quirks && i % 17 == 16
}
fn odd_status(cfg: &IotSimConfig, i: usize) -> bool {
    cfg.quirks && i % 6 == 5
}

fn sim_count(cfg: &IotSimConfig, i: usize) -> usize {
    if no_cards(cfg, i) {
        0
    } else {
        cfg.sims_per_device.unwrap_or(1 + i % 3).clamp(1, 3)
    }
}

/// ICCIDs by slot: China Mobile (`898608`, 20 characters with a letter, as in the document),
/// China Telecom (`898603`, 19 digits), China Unicom (`898601`, 20 digits).
fn iccid(i: usize, slot: usize) -> String {
    match slot {
        0 => format!("898608841925D{i:07}"),
        1 => format!("8986032142{i:09}"),
        _ => format!("89860121800{i:09}"),
    }
}

fn sim_no(i: usize, slot: usize) -> String {
    match slot {
        0 => format!("106493{i:07}"),
        1 => format!("144254{i:07}"),
        _ => format!("146880{i:07}"),
    }
}

fn wifi_password(seed: u64, i: usize) -> String {
    format!(
        "{:010}",
        mix(seed ^ mix(T_WIFI ^ i as u64)) % 10_000_000_000
    )
}

fn web_password(i: usize) -> String {
    format!("adm!n{i:04}")
}

/// A number as the device usually sends it, or as a string on quirky devices.
fn num(quirky: bool, v: i64) -> Value {
    if quirky {
        Value::String(v.to_string())
    } else {
        json!(v)
    }
}

fn device_data(cfg: &IotSimConfig, i: usize, now: u64, started_unix: u64, t: f64) -> Value {
    let seed = cfg.seed;
    let idx = i as u64;
    let u = |tag, k| unit(seed, tag, idx * 8 + k);
    let strings = strings_for_numbers(cfg, i);
    let cards = sim_count(cfg, i);
    // Every eleventh device is switched off: no signal, no clients, stale status time.
    let online = i % 11 != 10;
    let device_no = IotSim::device_no(i);
    let mac = format!(
        "3C:68:01:{:02X}:{:02X}:{:02X}",
        (i >> 16) & 0xff,
        (i >> 8) & 0xff,
        i & 0xff
    );
    let wifi_name = format!("MIFI-{:02X}{:02X}", (i >> 8) & 0xff, i & 0xff);
    let wave = |tag, k, period: f64| (std::f64::consts::TAU * (t / period + u(tag, k))).sin();
    let rssi = (-70.0 - 15.0 * u(T_RSSI, 0) + 8.0 * wave(T_RSSI, 1, 300.0)).round() as i64;
    // Battery drains over ~3 h and recharges, each device at its own phase.
    let phase = (t / 10_800.0 + u(T_BATTERY, 0)).fract();
    let electric = (100.0 - 85.0 * phase).round() as i64;
    let max_conn = 10;
    let conn = if online {
        ((max_conn as f64 / 2.0) * (1.0 + wave(T_CLIENTS, 0, 600.0))).round() as i64
    } else {
        0
    };
    let has_5g = i % 4 == 0;
    let conn_5g = if online && has_5g {
        (4.0 * (1.0 + wave(T_CLIENTS, 1, 420.0))).round() as i64
    } else {
        0
    };
    let status_at = if online {
        now - (idx % 60)
    } else {
        started_unix.saturating_sub(86_400 + idx)
    };
    let iccid_of = |k: usize| {
        if k < cards {
            iccid(i, k)
        } else {
            String::new()
        }
    };
    let sim_no_of = |k: usize| {
        if k < cards {
            sim_no(i, k)
        } else {
            String::new()
        }
    };
    // The card the device uses now: slot 1 of two-card devices, else the main card.
    let effective = if cards >= 2 { 2 } else { 1 };
    let position = if null_objects(cfg, i) {
        Value::Null
    } else {
        json!({
            "cellId": format!("{}", 151_007_000 + idx),
            "cityCode": "441900",
            "lac": "9083",
            "lat": 22.7617255 + 0.05 * u(T_PLACE, 0),
            "lng": 114.1027542 + 0.05 * u(T_PLACE, 1),
            "mcc": "460",
            "mnc": "0",
            "provinceCode": "440000",
            "regionName": "广东省 东莞市 高园路 靠近石鼓广场",
            "updateAt": null
        })
    };
    let device_status = if odd_status(cfg, i) { 97 } else { 3 };
    let mut device = json!({
        "id": 967 + idx,
        "memberId": 1,
        "deviceNo": device_no,
        "imei": device_no,
        "mainSimNo": sim_no_of(0),
        "mainIccid": iccid_of(0),
        "vice1SimNo": sim_no_of(1),
        "vice1Iccid": iccid_of(1),
        "vice2SimNo": sim_no_of(2),
        "vice2Iccid": iccid_of(2),
        "usimIccid": "",
        "usimNo": "",
        "effectiveSim": effective,
        "wisdomNetwork": 0,
        "deviceNetwork": "1,4",
        "customDeviceNetwork": "",
        "rssi": if online { num(strings, rssi) } else { json!(0) },
        "electric": num(strings, electric),
        "onlineStatus": i64::from(online),
        "openAt": null,
        "wifiName": wifi_name,
        "wifiPass": wifi_password(seed, i),
        "showWifi": 1,
        "connCount": num(strings, conn),
        "switchWifi": 1,
        "maxConnCount": max_conn,
        "wifiEncrypt": "WPA2PSK"
    });
    let rest = json!({
        "wifiName5G": if has_5g { format!("{wifi_name}-5G") } else { String::new() },
        "wifiPass5G": if has_5g { wifi_password(seed, i + 1) } else { String::new() },
        "showWifi5G": i64::from(has_5g),
        "connCount5G": conn_5g,
        "switchWifi5G": i64::from(has_5g),
        "maxConnCount5G": if has_5g { 16 } else { 0 },
        "wifiEncrypt5G": if has_5g { "WPA2PSK" } else { "" },
        "mac": mac,
        "lastTerminalMac": "",
        "webPassword": web_password(i),
        "position": position,
        "softVersion": if i % 2 == 0 {
            "UZ901LD1.0_KSBC_JINANZHENGYI_SL_V2.01.01.02P42U28P1_02-250730"
        } else {
            "UZ801V3.2_KSBC_SL_V2.01.01.02P40U26_01-250312"
        },
        "deviceStatus": device_status,
        "conned": null,
        "history": null,
        "controlResponse": [{
            "controlAt": local_datetime(started_unix.saturating_sub(3600)),
            "eventType": 251,
            "eventValue1": "1",
            "eventValue2": ""
        }],
        "lastDeviceStatusAt": local_datetime(status_at),
        "lastDeviceFlowAt": local_datetime(status_at.saturating_sub(30)),
        "warrantyExpire": "2000-01-01 00:00:00",
        "status": 1,
        "remark": "",
        "createdAt": "2025-07-30 21:58:48",
        "updatedAt": local_datetime(status_at)
    });
    // Split in two only because one `json!` this large exceeds the macro recursion limit.
    if let (Value::Object(d), Value::Object(r)) = (&mut device, rest) {
        d.extend(r);
    }
    let sims: Vec<Value> = (0..cards)
        .map(|k| card(cfg, i, k, k + 1 == effective, now, t))
        .collect();
    json!({"device": device, "sims": sims})
}

fn card(cfg: &IotSimConfig, i: usize, k: usize, in_use: bool, now: u64, t: f64) -> Value {
    let idx = (i * 3 + k) as u64;
    let u = |tag, n| unit(cfg.seed, tag, idx * 8 + n);
    let strings = strings_for_numbers(cfg, i);
    let total = PLANS[(i + k) % PLANS.len()];
    // Usage grows from a seeded start at ~0.5..1.5 KiB/s on the card in use, never past the plan.
    let rate = if in_use { 0.5 + u(T_USAGE, 1) } else { 0.0 };
    let used = ((total as f64 * 0.6 * u(T_USAGE, 0) + rate * t) as u64).min(total);
    let carrier = used / 4;
    let plan_end = now - now % 86_400 + 86_400 * (20 + idx % 60) - 8 * 3600;
    let (sim_status, online_status) = match (odd_status(cfg, i), in_use) {
        (true, _) => (12, 9),
        (false, true) => (4, 2),
        (false, false) => (4, 3),
    };
    json!({
        "id": 182_717 + idx,
        "memberId": 1,
        "gatewayId": 270,
        "gatewaySchemeId": 269,
        "poolId": 0,
        "packageGroupId": 63,
        "breakAt": null,
        "breakRemoveAt": null,
        "simNo": sim_no(i, k),
        "dockNo": sim_no(i, k),
        "iccid": iccid(i, k),
        "imsi": "",
        "imei": IotSim::device_no(i),
        "deviceNo": IotSim::device_no(i),
        "sourceType": 2,
        "vice": k + 1,
        "mobile": "",
        "balance": 0,
        "payPassword": "",
        "simStatus": num(strings, sim_status),
        "activateStatus": 2,
        "authStatus": if k == 1 { 1 } else { 2 },
        "authPlatformStatus": 1,
        "internetStatus": if in_use { 2 } else { 1 },
        "onlineStatus": online_status,
        "cancelStatus": 1,
        "activateAt": "2025-08-12 15:18:42",
        "authAt": null,
        "totalFlow": num(strings, total as i64),
        "useFlow": num(strings, used as i64),
        "realUseFlow": used,
        "dockUserFlow": carrier,
        "dockResetDate": "2025-08-01 00:00:00",
        "endAt": if null_objects(cfg, i) { Value::Null } else { json!(local_datetime(plan_end)) },
        "lastSimStatusAt": local_datetime(now.saturating_sub(idx % 90)),
        "lastActiveAt": local_datetime(now.saturating_sub(if in_use { 5 } else { 86_400 })),
        "status": 1,
        "updatedAt": local_datetime(now),
        "createdAt": "2025-07-30 21:58:48"
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_numbers_round_trip_and_cards_follow_the_quirks() {
        let cfg = IotSimConfig::default();
        assert_eq!(IotSim::device_no(3), "865214070000003");
        assert_eq!(sim_count(&cfg, 0), 1);
        assert_eq!(sim_count(&cfg, 2), 3);
        assert_eq!(sim_count(&cfg, 16), 0);
        assert_eq!(iccid(5, 0).len(), 20);
        assert_eq!(iccid(5, 1).len(), 19);
        let d = device_data(&cfg, 2, 1_758_192_050, 1_758_192_000, 10.0);
        assert_eq!(d["sims"].as_array().map(Vec::len), Some(3));
        assert_eq!(d["device"]["vice2Iccid"], iccid(2, 2));
        assert_eq!(d["sims"][1]["vice"], 2);
        let quirky = device_data(&cfg, 1, 1_758_192_050, 1_758_192_000, 10.0);
        assert!(quirky["sims"][0]["totalFlow"].is_string());
    }

    #[test]
    fn usage_grows_and_stays_within_the_plan() {
        let cfg = IotSimConfig::default();
        let used = |t| {
            device_data(&cfg, 4, 1_758_192_050, 1_758_192_000, t)["sims"][1]["realUseFlow"]
                .as_u64()
                .unwrap()
        };
        assert!(used(1000.0) > used(0.0));
        assert!(used(1e12) <= PLANS[(4 + 1) % 3]);
    }
}
