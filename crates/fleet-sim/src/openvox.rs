//! A simulated OpenVox IAD analog VoIP gateway (iAG800 family): `POST /controller/<class>/<fn>`
//! with a JSON body, a token from `auth/login` inside every later body, and the envelope
//! `{"uri":..,"msg":..,"code":200,"data":..}`.
//!
//! Written only from the published API document and the project's notes on real gateways, never
//! from the exporter's driver. What the device does, the simulator does: logins (and the
//! whitelisted `device_info`/`oem_web` calls) wait a random delay, tokens expire, `dahdi_*`,
//! `sip_register` and `voltage` are JSON documents inside strings, numbers come as strings in
//! `device_info`, and an empty `data` is `[]`. The code the device sends for an expired token is
//! not published; this one answers 401 (any code but 200 must make a client log in again).
//!
//! Ports: channels `1..=fxo_ports` are FXO ports (PSTN lines, `FXS..` signalling), the next
//! `fxs_ports` are FXS ports (phones, `FXO..` signalling), like the document's iAG800 V2-4S4O.
//! The first FXO and the first two FXS ports are in use, the third FXO port is in RED alarm and
//! the first FXS port is off-hook. Values (CPU, memory, voltages, SIP expiry) move with time; CDR
//! records arrive every `cdr_every` and on [`OpenvoxSim::add_cdr`].

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde_json::{json, Map, Value};
use tokio::sync::watch;

use super::util::{
    datetime, first_half, hang, json_response, lock, md5_hex, mix, proxy_page, serve,
    server_error_page, unit, unix_now, InFlight,
};

/// A failure injected into answers other than `auth/login`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    None,
    /// Accept the request and never answer (until the simulator is dropped).
    Hang,
    /// Cut the JSON body in half.
    Truncated,
    /// An HTML error page with status 200.
    Html,
    /// HTTP 500.
    Status500,
    /// `code` 200 with `data: []`, as the device writes an empty PHP array.
    EmptyData,
    /// This `code` (not 200) with `data: []`.
    Code(i64),
    /// `sys_info/interface` with nested strings that are empty or not JSON.
    GarbledNested,
}

/// CDR dispositions, as the device spells them.
pub const DISPOSITIONS: [&str; 5] = ["ANSWERED", "NO ANSWER", "BUSY", "FAILED", "CONGESTION"];

#[derive(Clone, Debug)]
pub struct OpenvoxSimConfig {
    pub username: String,
    pub password: String,
    pub fxs_ports: usize,
    pub fxo_ports: usize,
    /// Interface board slots (`maxslots`); more than one makes a `netbus` platform.
    pub slots: usize,
    /// Logins and whitelisted calls wait a random time up to this (the device: 2 s).
    pub login_delay: Duration,
    /// A token stops working this long after its login (the device default: 600 s).
    pub token_ttl: Duration,
    /// A token also stops working after this many calls, when set.
    pub token_max_calls: Option<u64>,
    /// A new CDR record this often, when set.
    pub cdr_every: Option<Duration>,
    /// `"code":"200"` instead of `"code":200` (some firmware).
    pub code_as_string: bool,
    /// Seeds serial numbers and the values that move.
    pub seed: u64,
}

impl Default for OpenvoxSimConfig {
    fn default() -> Self {
        OpenvoxSimConfig {
            username: "admin".into(),
            password: "admin".into(),
            fxs_ports: 4,
            fxo_ports: 4,
            slots: 1,
            login_delay: Duration::from_secs(2),
            token_ttl: Duration::from_secs(600),
            token_max_calls: None,
            cdr_every: Some(Duration::from_secs(30)),
            code_as_string: false,
            seed: 1,
        }
    }
}

/// What the simulator has produced so far: what an exporter should have counted.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CdrTotals {
    pub records: u64,
    pub by_disposition: BTreeMap<String, u64>,
    pub billsec: u64,
}

/// Handle on a running simulator; dropping it stops the server.
pub struct OpenvoxSim {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
}

impl OpenvoxSim {
    /// Binds `127.0.0.1:0` and serves in a spawned tokio task.
    pub async fn start(cfg: OpenvoxSimConfig) -> std::io::Result<OpenvoxSim> {
        let (stop, stop_rx) = watch::channel(false);
        let ports = initial_ports(cfg.fxo_ports, cfg.fxs_ports);
        let shared = Arc::new(Shared {
            password_md5: md5_hex(&cfg.password),
            started: Instant::now(),
            ports: Mutex::new(ports),
            sip: Mutex::new(BTreeMap::new()),
            tokens: Mutex::new(Vec::new()),
            cdr: Mutex::new(Cdrs::new(cfg.cdr_every)),
            logins: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            per_path: Mutex::new(HashMap::new()),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
            latency: Mutex::new(Duration::ZERO),
            login_delay: Mutex::new(cfg.login_delay),
            fault: Mutex::new(Fault::None),
            path_faults: Mutex::new(HashMap::new()),
            login_without_token: AtomicBool::new(false),
            board_stale: AtomicBool::new(false),
            stop: stop_rx.clone(),
            cfg,
        });
        let app = Router::new()
            .route("/controller/{*path}", post(handle))
            .with_state(Arc::clone(&shared));
        let addr = serve(app, "openvox", stop_rx).await?;
        Ok(OpenvoxSim { addr, shared, stop })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `auth/login` requests received, successful or not.
    pub fn logins(&self) -> u64 {
        self.shared.logins.load(Ordering::SeqCst)
    }

    /// Every `/controller/...` request received, logins included.
    pub fn requests(&self) -> u64 {
        self.shared.requests.load(Ordering::SeqCst)
    }

    /// Requests received for one path (`sys_info/cdr`).
    pub fn requests_to(&self, path: &str) -> u64 {
        lock(&self.shared.per_path).get(path).copied().unwrap_or(0)
    }

    /// Highest number of requests served at once.
    pub fn max_in_flight(&self) -> usize {
        self.shared.max_in_flight.load(Ordering::SeqCst)
    }

    /// Every token issued so far stops working now.
    pub fn expire_tokens(&self) {
        lock(&self.shared.tokens).clear();
    }

    /// Added to every answer but logins'.
    pub fn set_latency(&self, d: Duration) {
        *lock(&self.shared.latency) = d;
    }

    pub fn set_login_delay(&self, d: Duration) {
        *lock(&self.shared.login_delay) = d;
    }

    /// A fault for every call but `auth/login`.
    pub fn set_fault(&self, f: Fault) {
        *lock(&self.shared.fault) = f;
    }

    /// A fault for one path only (`sys_info/cdr`); [`Fault::None`] clears it.
    pub fn set_path_fault(&self, path: &str, f: Fault) {
        let mut faults = lock(&self.shared.path_faults);
        if f == Fault::None {
            faults.remove(path);
        } else {
            faults.insert(path.to_owned(), f);
        }
    }

    /// Logins answer `code` 200 without a token.
    pub fn set_login_without_token(&self, on: bool) {
        self.shared.login_without_token.store(on, Ordering::SeqCst);
    }

    /// The interface board stops updating its uptime, which marks it absent.
    pub fn set_board_stale(&self, on: bool) {
        self.shared.board_stale.store(on, Ordering::SeqCst);
    }

    /// Hook state of a port (`channel` counts from 1 across FXO then FXS ports).
    pub fn set_offhook(&self, channel: usize, offhook: bool) {
        if let Some(p) = lock(&self.shared.ports).get_mut(channel.wrapping_sub(1)) {
            p.offhook = offhook;
        }
    }

    /// Alarm word of a port (`RED`, ...), or none.
    pub fn set_alarm(&self, channel: usize, alarm: Option<&str>) {
        if let Some(p) = lock(&self.shared.ports).get_mut(channel.wrapping_sub(1)) {
            p.alarm = alarm.map(str::to_owned);
        }
    }

    /// Replaces the moving text of a SIP registration with a fixed one (`"Auth. Sent"`), or adds
    /// an account.
    pub fn set_sip_state(&self, account: &str, raw: &str) {
        lock(&self.shared.sip).insert(account.to_owned(), raw.to_owned());
    }

    /// Changes how often CDR records arrive, counting from now.
    pub fn set_cdr_every(&self, every: Option<Duration>) {
        let mut cdr = lock(&self.shared.cdr);
        cdr.catch_up(self.shared.cfg.seed);
        cdr.every = every;
        cdr.anchor = Instant::now();
        cdr.anchor_unix = precise_unix_now();
        cdr.generated = 0;
    }

    /// Appends a finished call ending now; `billsec` counts only for `ANSWERED`.
    pub fn add_cdr(&self, disposition: &str, billsec: u64) {
        let mut cdr = lock(&self.shared.cdr);
        cdr.catch_up(self.shared.cfg.seed);
        let n = cdr.totals.records;
        cdr.push(Cdr::new(unix_now(), n, disposition, billsec));
    }

    /// Every CDR record created so far (including ones the device log has dropped).
    pub fn cdr_totals(&self) -> CdrTotals {
        let mut cdr = lock(&self.shared.cdr);
        cdr.catch_up(self.shared.cfg.seed);
        cdr.totals.clone()
    }

    /// The serial number `sys_info/oem` reports.
    pub fn serial(&self) -> String {
        serial(self.shared.cfg.seed)
    }
}

impl Drop for OpenvoxSim {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

// ---------------------------------------------------------------------------
// State
// ---------------------------------------------------------------------------

/// Tokens kept at most, so a client that logs in on every poll cannot grow the simulator.
const MAX_TOKENS: usize = 64;
/// CDR records the device keeps; older ones drop out of its answers.
const MAX_CDRS: usize = 1000;
/// The gateway's clock is UTC+8, like the document's examples.
const TZ_OFFSET: u64 = 8 * 3600;
/// System uptime when the simulator starts.
const BASE_UPTIME: u64 = 180_000;
const MEMORY_TOTAL_KB: u64 = 120_608;

struct Shared {
    cfg: OpenvoxSimConfig,
    password_md5: String,
    started: Instant,
    ports: Mutex<Vec<Port>>,
    /// Fixed SIP texts set by tests, over the moving defaults.
    sip: Mutex<BTreeMap<String, String>>,
    tokens: Mutex<Vec<Token>>,
    cdr: Mutex<Cdrs>,
    logins: AtomicU64,
    requests: AtomicU64,
    per_path: Mutex<HashMap<String, u64>>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    latency: Mutex<Duration>,
    login_delay: Mutex<Duration>,
    fault: Mutex<Fault>,
    path_faults: Mutex<HashMap<String, Fault>>,
    login_without_token: AtomicBool,
    board_stale: AtomicBool,
    stop: watch::Receiver<bool>,
}

struct Token {
    value: String,
    issued: Instant,
    calls: u64,
}

#[derive(Clone)]
struct Port {
    fxs: bool,
    in_use: bool,
    offhook: bool,
    alarm: Option<String>,
    ec: &'static str,
}

fn initial_ports(fxo: usize, fxs: usize) -> Vec<Port> {
    let fxo_ports = (0..fxo).map(|i| Port {
        fxs: false,
        in_use: i == 0,
        offhook: false,
        alarm: (i == 2).then(|| "RED".to_owned()),
        ec: "G168V2",
    });
    let fxs_ports = (0..fxs).map(|i| Port {
        fxs: true,
        in_use: i < 2,
        offhook: i == 0,
        alarm: None,
        ec: "OSLEC",
    });
    fxo_ports.chain(fxs_ports).collect()
}

struct Cdr {
    end_unix: u64,
    duration: u64,
    billsec: u64,
    disposition: String,
    from: String,
    from_channel: String,
    to: String,
    to_channel: String,
}

impl Cdr {
    fn new(end_unix: u64, n: u64, disposition: &str, billsec: u64) -> Cdr {
        let billsec = if disposition == "ANSWERED" {
            billsec
        } else {
            0
        };
        let ring = 3 + n % 15;
        Cdr {
            end_unix,
            duration: billsec + ring,
            billsec,
            disposition: disposition.to_owned(),
            from: format!("80{}", n % 4 + 1),
            from_channel: format!("DAHDI/{}-{}", n % 4 + 5, n % 3 + 1),
            to: format!("1380013{:04}", n % 10_000),
            to_channel: format!("SIP/1reg-{:08x}", n + 1),
        }
    }

    fn to_json(&self, slot: u64) -> Value {
        let start = self.end_unix.saturating_sub(self.duration);
        let answer = if self.disposition == "ANSWERED" {
            datetime(self.end_unix.saturating_sub(self.billsec), TZ_OFFSET)
        } else {
            String::new()
        };
        json!({
            "slotnum": slot,
            "source_tpl": "fxs",
            "source": self.from_channel.split('-').next().unwrap_or_default(),
            "callerid": format!("\"{0}\" <{0}>", self.from),
            "from": self.from,
            "from_channel": self.from_channel,
            "to": self.to,
            "to_channel": self.to_channel,
            "disposition": self.disposition,
            "start": datetime(start, TZ_OFFSET),
            "answer": answer,
            "end": datetime(self.end_unix, TZ_OFFSET),
            "billsec": self.billsec.to_string(),
        })
    }
}

/// The device's CDR log and the schedule that fills it.
struct Cdrs {
    log: Vec<Cdr>,
    totals: CdrTotals,
    every: Option<Duration>,
    anchor: Instant,
    /// Unix time of `anchor` with its fraction, so that scheduled records end in the second
    /// they are created in, after every record created before them.
    anchor_unix: f64,
    generated: u64,
}

fn precise_unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

const T_CDR: u64 = 1;
const T_BILL: u64 = 2;
const T_CPU: u64 = 3;
const T_MEM: u64 = 4;
const T_VOLT: u64 = 5;

impl Cdrs {
    fn new(every: Option<Duration>) -> Cdrs {
        Cdrs {
            log: Vec::new(),
            totals: CdrTotals::default(),
            every,
            anchor: Instant::now(),
            anchor_unix: precise_unix_now(),
            generated: 0,
        }
    }

    /// Adds the records whose time has come, each ending at its own scheduled second.
    fn catch_up(&mut self, seed: u64) {
        let Some(every) = self.every.filter(|e| !e.is_zero()) else {
            return;
        };
        let due = (self.anchor.elapsed().as_nanos() / every.as_nanos()) as u64;
        // A long pause does not flood the log: the device keeps MAX_CDRS anyway.
        let first = self.generated.max(due.saturating_sub(MAX_CDRS as u64));
        for k in first..due {
            let n = self.totals.records;
            let pick = unit(seed, T_CDR, n);
            let disposition = match pick {
                p if p < 0.6 => "ANSWERED",
                p if p < 0.75 => "NO ANSWER",
                p if p < 0.85 => "BUSY",
                p if p < 0.95 => "FAILED",
                _ => "CONGESTION",
            };
            let billsec = 5 + (unit(seed, T_BILL, n) * 300.0) as u64;
            let end = (self.anchor_unix + (k + 1) as f64 * every.as_secs_f64()) as u64;
            self.push(Cdr::new(end, n, disposition, billsec));
        }
        self.generated = due;
    }

    fn push(&mut self, cdr: Cdr) {
        self.totals.records += 1;
        self.totals.billsec += cdr.billsec;
        *self
            .totals
            .by_disposition
            .entry(cdr.disposition.clone())
            .or_default() += 1;
        if self.log.len() >= MAX_CDRS {
            self.log.remove(0);
        }
        self.log.push(cdr);
    }
}

/// CPU load in `[0.03, 0.13]` at `t`, and the processor counters (total, idle) with busy time
/// as the load's exact integral, so both counters only grow.
fn processor(seed: u64, t: f64) -> (f64, f64, f64) {
    let omega = std::f64::consts::TAU / (60.0 + 120.0 * unit(seed, T_CPU, 0));
    let load = 0.08 + 0.05 * (omega * t).sin();
    let total = (BASE_UPTIME as f64 + t) * 1.03;
    let busy = BASE_UPTIME as f64 * 0.08 + 0.08 * t + 0.05 / omega * (1.0 - (omega * t).cos());
    (load, total, total - busy)
}

fn serial(seed: u64) -> String {
    format!("AG10S{:07}", mix(seed) % 10_000_000)
}

// ---------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------

/// What an answer carries inside the envelope.
enum Answer {
    Ok(Value),
    Error(i64, &'static str),
}

const KNOWN_PATHS: [&str; 8] = [
    "auth/login",
    "auth/logout",
    "sys_info/oem",
    "sys_info/performance",
    "sys_info/interface",
    "sys_info/cdr",
    "sys_info/device_info",
    "sys_info/oem_web",
];

async fn handle(State(sh): State<Arc<Shared>>, Path(path): Path<String>, body: Bytes) -> Response {
    sh.requests.fetch_add(1, Ordering::SeqCst);
    let path = path.trim_matches('/');
    let known = KNOWN_PATHS.iter().find(|p| **p == path).copied();
    *lock(&sh.per_path)
        .entry(known.unwrap_or("other").to_owned())
        .or_default() += 1;
    let _in_flight = InFlight::enter(&sh.in_flight, &sh.max_in_flight);

    let request = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| match v {
            Value::Object(m) => Some(m),
            _ => None,
        });
    let uri = known.unwrap_or("unknown");
    if path == "auth/login" {
        return login(&sh, request.as_ref()).await;
    }
    if matches!(path, "sys_info/device_info" | "sys_info/oem_web") {
        slow_down(&sh).await;
    }
    let latency = *lock(&sh.latency);
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let fault = lock(&sh.path_faults)
        .get(path)
        .copied()
        .unwrap_or(*lock(&sh.fault));
    if fault == Fault::Hang {
        hang(&sh.stop).await;
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let answer = match request {
        None => Answer::Error(400, "Parameter error"),
        Some(req) => answer(&sh, known, &req, fault == Fault::GarbledNested),
    };
    let answer = match (answer, fault) {
        (Answer::Ok(_), Fault::EmptyData) => Answer::Ok(json!([])),
        (Answer::Ok(_), Fault::Code(code)) => Answer::Error(code, "Operation failed"),
        (a, _) => a,
    };
    let text = envelope(&sh.cfg, uri, answer);
    match fault {
        Fault::Truncated => json_response(StatusCode::OK, first_half(&text)),
        Fault::Html => proxy_page(),
        Fault::Status500 => server_error_page(),
        _ => json_response(StatusCode::OK, text),
    }
}

/// The device's anti-DDoS delay: a random wait up to the configured maximum.
async fn slow_down(sh: &Shared) {
    let max = *lock(&sh.login_delay);
    if !max.is_zero() {
        tokio::time::sleep(max.mul_f64(rand::random::<f64>())).await;
    }
}

/// The envelope, written by hand to keep the device's key order.
fn envelope(cfg: &OpenvoxSimConfig, uri: &str, answer: Answer) -> String {
    let (code, msg, data) = match answer {
        Answer::Ok(data) => (200, "", data),
        Answer::Error(code, msg) => (code, msg, json!([])),
    };
    let code = if cfg.code_as_string {
        format!("\"{code}\"")
    } else {
        code.to_string()
    };
    format!(
        r#"{{"uri":{},"msg":{},"code":{code},"data":{data}}}"#,
        Value::from(uri),
        Value::from(msg)
    )
}

async fn login(sh: &Shared, request: Option<&Map<String, Value>>) -> Response {
    sh.logins.fetch_add(1, Ordering::SeqCst);
    slow_down(sh).await;
    let field = |k: &str| request.and_then(|r| r.get(k)).and_then(Value::as_str);
    let answer = match (field("username"), field("password")) {
        (Some(user), Some(pw)) if user == sh.cfg.username && pw == sh.password_md5 => {
            if sh.login_without_token.load(Ordering::SeqCst) {
                Answer::Ok(json!({"level": "admin"}))
            } else {
                let token = format!("{:032x}", rand::random::<u128>());
                let mut tokens = lock(&sh.tokens);
                if tokens.len() >= MAX_TOKENS {
                    tokens.remove(0);
                }
                tokens.push(Token {
                    value: token.clone(),
                    issued: Instant::now(),
                    calls: 0,
                });
                Answer::Ok(json!({"level": "admin", "token": token}))
            }
        }
        (Some(_), Some(_)) => Answer::Error(400, "Incorrect username or password"),
        _ => Answer::Error(400, "Parameter error"),
    };
    json_response(StatusCode::OK, envelope(&sh.cfg, "auth/login", answer))
}

/// Checks a token and counts the call against it.
fn token_valid(sh: &Shared, req: &Map<String, Value>) -> bool {
    let Some(value) = req.get("token").and_then(Value::as_str) else {
        return false;
    };
    let mut tokens = lock(&sh.tokens);
    let Some(t) = tokens.iter_mut().find(|t| t.value == value) else {
        return false;
    };
    let fresh = t.issued.elapsed() < sh.cfg.token_ttl
        && sh.cfg.token_max_calls.is_none_or(|max| t.calls < max);
    t.calls += 1;
    fresh
}

fn answer(sh: &Shared, path: Option<&str>, req: &Map<String, Value>, garbled: bool) -> Answer {
    let world = World::now(sh);
    match path {
        Some("sys_info/device_info") => Answer::Ok(world.device_info()),
        Some("sys_info/oem_web") => Answer::Ok(world.oem_web()),
        _ if !token_valid(sh, req) => Answer::Error(401, "Token invalid, please login again"),
        Some("auth/logout") => {
            if let Some(value) = req.get("token").and_then(Value::as_str) {
                lock(&sh.tokens).retain(|t| t.value != value);
            }
            Answer::Ok(json!([]))
        }
        Some("sys_info/oem") => Answer::Ok(world.oem()),
        Some("sys_info/performance") => Answer::Ok(world.performance()),
        Some("sys_info/interface") => match slot_of(sh, req) {
            Some(slot) => Answer::Ok(world.interface(slot, garbled)),
            None => Answer::Error(400, "slotnum error"),
        },
        Some("sys_info/cdr") => {
            let limit = match req.get("limit") {
                None | Some(Value::Null) => Some(None),
                Some(Value::String(s)) if s.is_empty() => Some(None),
                Some(Value::String(s)) if s.len() <= 8 => s.parse().ok().map(Some),
                _ => None,
            };
            match (slot_of(sh, req), limit) {
                (Some(slot), Some(limit)) => Answer::Ok(cdr(sh, slot, limit)),
                (None, _) => Answer::Error(400, "slotnum error"),
                (_, None) => Answer::Error(400, "limit error"),
            }
        }
        _ => Answer::Error(404, "Interface does not exist"),
    }
}

/// `slotnum` must be an integer below `maxslots`.
fn slot_of(sh: &Shared, req: &Map<String, Value>) -> Option<u64> {
    req.get("slotnum")
        .and_then(Value::as_u64)
        .filter(|s| *s < sh.cfg.slots as u64)
}

fn cdr(sh: &Shared, slot: u64, limit: Option<usize>) -> Value {
    let mut cdrs = lock(&sh.cdr);
    cdrs.catch_up(sh.cfg.seed);
    // Records are the first slot's; other slots have taken no calls.
    if slot != 0 {
        return json!([]);
    }
    let skip = limit.map_or(0, |n| cdrs.log.len().saturating_sub(n));
    Value::Array(cdrs.log[skip..].iter().map(|c| c.to_json(slot)).collect())
}

// ---------------------------------------------------------------------------
// The gateway at one instant
// ---------------------------------------------------------------------------

struct World<'a> {
    sh: &'a Shared,
    /// Seconds since the simulator started.
    t: f64,
}

impl<'a> World<'a> {
    fn now(sh: &'a Shared) -> World<'a> {
        World {
            sh,
            t: sh.started.elapsed().as_secs_f64(),
        }
    }

    fn seed(&self) -> u64 {
        self.sh.cfg.seed
    }

    fn uptime(&self) -> u64 {
        BASE_UPTIME + self.t as u64
    }

    fn model(&self) -> String {
        let cfg = &self.sh.cfg;
        format!(
            "iAG{}00 V2-{}S{}O",
            cfg.fxs_ports + cfg.fxo_ports,
            cfg.fxs_ports,
            cfg.fxo_ports
        )
    }

    fn platform(&self) -> &'static str {
        if self.sh.cfg.slots > 1 {
            "netbus"
        } else {
            "combined"
        }
    }

    fn memory_free_kb(&self) -> u64 {
        let wave = (self.t / 45.0 + unit(self.seed(), T_MEM, 0) * 6.0).sin();
        (37_172.0 + 3_000.0 * wave) as u64
    }

    fn oem(&self) -> Value {
        let cfg = &self.sh.cfg;
        json!({
            "vendor": "OpenVox", "website": "www.openvox.cn", "product": "OpenVox IAD Series",
            "region": "zh", "language": "cn", "model2": self.model(), "sn": serial(self.seed()),
            "address": "", "tel": "", "fax": "", "email": "",
            "maxslots": cfg.slots, "interface": "analog", "maxspans": 1,
            "maxchannels": cfg.fxs_ports + cfg.fxo_ports,
            "firmware_model": "iac-v14", "firmware_version": "r0-4bdc68d4",
            "platform": self.platform(), "maxprofiles": 4,
            "fxs_enable": if cfg.fxs_ports > 0 { "yes" } else { "no" },
            "fxo_enable": if cfg.fxo_ports > 0 { "yes" } else { "no" },
            "maxacls": 16, "maxlocalswitchlist": 64, "maxdigitmaprule": 64,
            "maxcallrouterule": 64, "maxroutelist": 64, "maxfirewallrules": 64,
            "maxdomainparselist": 0, "fxo_groupstart": 4, "fxo_groupmax": 60,
            "mac_str": "A09AE3000001", "extraface": "", "maxsiptrunk": 6, "product_id": "2",
            "vendor_cn": "深圳市开源通信有限公司", "style": "blue",
        })
    }

    fn performance(&self) -> Value {
        let (_, total, idle) = processor(self.seed(), self.t);
        json!({
            "uptime": self.uptime(),
            "processor_total": total as u64,
            "processor_idle": idle as u64,
            "memory_total": MEMORY_TOTAL_KB,
            "memory_idle": self.memory_free_kb(),
        })
    }

    fn device_info(&self) -> Value {
        let (load, _, _) = processor(self.seed(), self.t);
        let used = 100 * (MEMORY_TOTAL_KB - self.memory_free_kb()) / MEMORY_TOTAL_KB;
        json!({
            "device_sn": serial(self.seed()), "product": "OpenVox IAD Series", "product_id": "2",
            "vendor": "OpenVox", "website": "www.openvox.cn", "region": "zh", "language": "cn",
            "platform": self.platform(), "device_model": self.model(),
            "firmware_model": "iac-v14", "firmware_version": "r0-4bdc68d4",
            "mac_str": "a09ae3000001", "device_ip": "172.16.6.79", "interface": "analog",
            "os_time": unix_now().to_string(), "uptime": self.uptime().to_string(),
            "use_cpu": format!("{}%", (load * 100.0).round()),
            "use_memory": format!("{used}%"), "use_storage": "4%",
        })
    }

    fn oem_web(&self) -> Value {
        json!({
            "device_model": self.model(), "vendor": "OpenVox",
            "vendor_cn": "深圳市开源通信有限公司", "style": "blue",
            "i18n_user": "zh en fr pt th ru", "web_name": "",
        })
    }

    /// Line voltage: ~48 V idle, ~8 V while a call holds the loop, ~1 V without a line.
    fn voltage(&self, ch: usize, p: &Port) -> u64 {
        let base = if p.alarm.is_some() {
            1.0
        } else if p.offhook || (!p.fxs && p.in_use) {
            8.0
        } else {
            48.0
        };
        let wobble = (self.t / 30.0 + unit(self.seed(), T_VOLT, ch as u64) * 6.0).sin();
        (base + base / 48.0 * 1.5 * wobble).round().max(0.0) as u64
    }

    fn sip_register(&self) -> Map<String, Value> {
        let mut sip = Map::new();
        let refresh = 3600 - (self.t as u64 % 3600);
        sip.insert(
            "1reg".into(),
            format!("Registered (exp. {refresh}s)").into(),
        );
        let ago = 11_597 + self.t as u64;
        sip.insert("6reg".into(), format!("Rejected (exp. {ago}s ago)").into());
        for (k, v) in lock(&self.sh.sip).iter() {
            sip.insert(k.clone(), v.clone().into());
        }
        sip
    }

    fn interface(&self, slot: u64, garbled: bool) -> Value {
        let ports = lock(&self.sh.ports).clone();
        let n = ports.len();
        let chans = |f: &dyn Fn(usize, &Port) -> Option<Value>| -> Map<String, Value> {
            ports
                .iter()
                .enumerate()
                .filter_map(|(i, p)| Some(((i + 1).to_string(), f(i + 1, p)?)))
                .collect()
        };
        let scan = json!({"1": {
            "basechan": "1",
            "totchans": n.to_string(),
            "type": "analog",
            "port": chans(&|_, p| Some((if p.fxs { "FXS" } else { "FXO" }).into())),
            "slic": chans(&|_, p| Some((if p.fxs { "S1" } else { "O0" }).into())),
        }});
        let state = chans(&|_, p| {
            // Signalling names the far end: an FXS port talks FXO signalling.
            let mut s = String::from(if p.fxs { "FXOKS" } else { "FXSKS" });
            if p.in_use {
                s.push_str(" (In use)");
            }
            if let Some(a) = &p.alarm {
                s.push(' ');
                s.push_str(a);
            }
            let active = if p.in_use { "ACTIVE" } else { "INACTIVE" };
            s.push_str(&format!(" (EC: {} - {active})", p.ec));
            Some(s.into())
        });
        let hook = chans(&|_, p| {
            p.fxs
                .then(|| (if p.offhook { "Offhook" } else { "Onhook" }).into())
        });
        let volts = chans(&|ch, p| Some(self.voltage(ch, p).to_string().into()));
        let nested = |v: Value| Value::String(v.to_string());
        let (dahdi_port, sip_register) = if garbled {
            (Value::from(""), Value::from("Registered (exp. 120s)"))
        } else {
            (
                nested(json!({"1": state})),
                nested(Value::Object(self.sip_register())),
            )
        };
        let uptime = self.uptime();
        let board_uptime = if self.sh.board_stale.load(Ordering::SeqCst) {
            uptime.saturating_sub(120)
        } else {
            uptime.saturating_sub(1)
        };
        json!({
            "uptime": uptime,
            "interface": [{
                "slotnum": slot,
                "uptime": board_uptime,
                "model": "iac-v14",
                "version": "r0-4bdc68d4",
                "product_id": "2",
                "interface": "analog",
                "dahdi_scan": nested(scan),
                "dahdi_port": dahdi_port,
                "sip_register": sip_register,
                "dahdi_analog": nested(Value::Object(hook)),
                "macaddr": "",
                "voltage": nested(Value::Object(volts)),
                "dahdi_digital": [],
            }],
            "voip_port": {
                "sip_start": 30000, "sip_end": 30071, "sip_channel_start": 30000,
                "sip_group_start": 30008, "sip_other_start": 30068, "sip_anonymous": 30068,
                "rtp_start": 10000, "rtp_end": 10023, "udptl_start": 10024, "udptl_end": 10031,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_keeps_the_device_key_order_and_code_type() {
        let mut cfg = OpenvoxSimConfig::default();
        let ok = envelope(&cfg, "sys_info/cdr", Answer::Ok(json!([])));
        assert_eq!(
            ok,
            r#"{"uri":"sys_info/cdr","msg":"","code":200,"data":[]}"#
        );
        cfg.code_as_string = true;
        let err = envelope(&cfg, "x", Answer::Error(401, "no"));
        assert_eq!(err, r#"{"uri":"x","msg":"no","code":"401","data":[]}"#);
    }

    #[test]
    fn scheduled_cdrs_end_at_their_own_seconds_and_never_flood() {
        let mut c = Cdrs::new(Some(Duration::from_secs(10)));
        c.anchor = Instant::now() - Duration::from_secs(35);
        c.catch_up(1);
        assert_eq!(c.totals.records, 3);
        let ends: Vec<u64> = c.log.iter().map(|r| r.end_unix).collect();
        let first = (c.anchor_unix + 10.0) as u64;
        assert_eq!(ends, [first, first + 10, first + 20]);
        c.catch_up(1);
        assert_eq!(c.totals.records, 3);
        c.anchor = Instant::now() - Duration::from_secs(100_000);
        c.generated = 0;
        c.catch_up(1);
        assert_eq!(c.log.len(), MAX_CDRS);
    }

    #[test]
    fn cpu_counters_only_grow() {
        let mut last = (0.0, 0.0);
        for s in 0..2000 {
            let (load, total, idle) = processor(7, s as f64 * 0.9);
            assert!((0.03..=0.13).contains(&load));
            assert!(total >= last.0 && idle >= last.1);
            last = (total, idle);
        }
    }
}
