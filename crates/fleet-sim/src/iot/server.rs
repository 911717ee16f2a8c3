//! The platform's HTTP side, `POST /openapi/iot/queryDeviceFlow` and the card calls
//! (`cards.rs`), each checked alike: the rate limit (HTTP 429 over
//! it), the injected faults, the signing headers checked as the platform does (app ID, version,
//! traceID format and replay, timestamp skew, md5 sign) and the form body's `deviceNo`. The
//! replay memory is bounded.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{post, MethodRouter};
use axum::Router;
use serde_json::Value;

use super::cards::{
    self, Money, ACCOUNT_ASSETS_PATH, CARD_INFO_PATH, CARD_MONTH_PATH, CARD_STATUS_PATH,
    CARD_USAGE_PATH,
};
use super::config::{Fault, IotSimConfig};
use super::wire::{envelope, Refusal};
use super::world::{device_data, device_index};
use super::DEVICE_FLOW_PATH;
use crate::handle::Switches;
use crate::util::{
    first_half, json_response, lock, md5_hex, proxy_page, server_error_page, unix_now,
    InFlightGauge,
};

const API_VERSION: &str = "2.0.0";
/// The platform accepts timestamps at most this far from its own clock.
const MAX_SKEW_SECS: i64 = 600;
/// `traceID`s remembered for the replay check; enough for any test or benchmark cycle.
const MAX_TRACES: usize = 100_000;

/// The platform's state, shared by the handler and the handle.
pub(super) struct Shared {
    pub(super) cfg: IotSimConfig,
    started: Instant,
    started_unix: u64,
    /// Seconds the platform's clock is ahead of this machine's.
    pub(super) clock_offset: AtomicI64,
    pub(super) requests: AtomicU64,
    pub(super) answered_ok: AtomicU64,
    pub(super) rejected_auth: AtomicU64,
    pub(super) rate_limited: AtomicU64,
    pub(super) per_device: Vec<AtomicU64>,
    /// Arrival times within the last second, for the rate limit and its measurement.
    arrivals: Mutex<VecDeque<Instant>>,
    pub(super) max_per_second: AtomicUsize,
    pub(super) in_flight: InFlightGauge,
    traces: Mutex<(HashSet<String>, VecDeque<String>)>,
    switches: Arc<Switches<Fault>>,
    /// Money on and owed by cards, as tests set it.
    pub(super) money: Mutex<Money>,
    pub(super) account_balance: Mutex<f64>,
    /// Requests by API path.
    pub(super) per_path: Mutex<HashMap<&'static str, u64>>,
}

impl Shared {
    pub(super) fn new(cfg: IotSimConfig, switches: Arc<Switches<Fault>>) -> Shared {
        Shared {
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
            in_flight: InFlightGauge::default(),
            traces: Mutex::new((HashSet::new(), VecDeque::new())),
            switches,
            money: Mutex::new(Money::new()),
            account_balance: Mutex::new(1288.6),
            per_path: Mutex::new(HashMap::new()),
        }
    }
}

pub(super) fn router(shared: Arc<Shared>) -> Router {
    let mut router = Router::new();
    for path in [
        DEVICE_FLOW_PATH,
        CARD_INFO_PATH,
        CARD_STATUS_PATH,
        CARD_USAGE_PATH,
        CARD_MONTH_PATH,
        ACCOUNT_ASSETS_PATH,
    ] {
        router = router.route(path, api_route(path));
    }
    router.with_state(shared)
}

fn api_route(path: &'static str) -> MethodRouter<Arc<Shared>> {
    post(
        move |State(sh): State<Arc<Shared>>, headers: HeaderMap, body: Bytes| {
            api(sh, path, headers, body)
        },
    )
}

async fn api(sh: Arc<Shared>, path: &'static str, headers: HeaderMap, body: Bytes) -> Response {
    sh.requests.fetch_add(1, Ordering::SeqCst);
    *lock(&sh.per_path).entry(path).or_default() += 1;
    let _in_flight = sh.in_flight.enter();
    let over_limit = sh.count_arrival();

    sh.switches.delay().await;
    let fault = sh.switches.fault();
    match fault {
        Fault::Hang => {
            sh.switches.stopped().await;
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
        Ok(trace_id) => (trace_id, sh.answer(path, &body, now)),
    };
    if answer.is_ok() {
        sh.answered_ok.fetch_add(1, Ordering::SeqCst);
    }
    let text = match fault {
        Fault::HugeSimList => huge_sim_list(now),
        Fault::RandomCodes if rand::random::<bool>() => {
            let code = 100_000 + rand::random::<u32>() % 900_000;
            envelope(Err((i64::from(code), "系统繁忙")), now, &trace_id)
        }
        _ => envelope(answer, now, &trace_id),
    };
    match fault {
        Fault::Truncated => json_response(StatusCode::OK, first_half(&text)),
        Fault::Html => proxy_page(),
        _ => json_response(StatusCode::OK, text),
    }
}

/// A device answer of about 7 MB of empty SIM cards.
fn huge_sim_list(now: i64) -> String {
    let mut sims = "{},".repeat(7 << 20 >> 2);
    sims.push_str("{}");
    format!(
        r#"{{"code":0,"message":"ok","data":{{"device":{{"deviceNo":"x"}},"sims":[{sims}]}},"timestamp":{now}}}"#
    )
}

fn too_many_requests(sh: &Shared) -> Response {
    sh.rate_limited.fetch_add(1, Ordering::SeqCst);
    json_response(
        StatusCode::TOO_MANY_REQUESTS,
        r#"{"code":429,"message":"请求过于频繁,请稍后再试"}"#,
    )
}

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

    fn answer(&self, path: &str, body: &[u8], now: i64) -> Result<Value, Refusal> {
        let t = self.started.elapsed().as_secs_f64();
        let money = lock(&self.money).clone();
        match path {
            DEVICE_FLOW_PATH => {}
            ACCOUNT_ASSETS_PATH => return Ok(cards::assets(*lock(&self.account_balance))),
            _ => return cards::answer(&self.cfg, path, body, &money, now.max(0) as u64, t),
        }
        let device_no = url::form_urlencoded::parse(body)
            .find(|(k, _)| k == "deviceNo")
            .map(|(_, v)| v.trim().to_owned())
            .filter(|v| !v.is_empty())
            .ok_or((1000, "参数错误:deviceNo不能为空"))?;
        let index = device_index(&device_no, self.cfg.devices).ok_or((2001, "设备不存在"))?;
        self.per_device[index].fetch_add(1, Ordering::SeqCst);
        let mut data = device_data(&self.cfg, index, now.max(0) as u64, self.started_unix, t);
        for card in data["sims"].as_array_mut().into_iter().flatten() {
            let id = card["iccid"].as_str().unwrap_or_default();
            if let Some((balance, arrears)) = money.get(id).copied() {
                card["balance"] = balance.into();
                card["arrearsBalance"] = arrears.into();
            }
        }
        Ok(data)
    }
}
