//! The gateway's HTTP side: `POST /controller/<class>/<fn>` with a JSON body; `auth/login` with
//! its md5 password and the device's random anti-DDoS delay, tokens inside every later body
//! that expire by age and (optionally) by calls, the whitelisted calls that need no token, the
//! parameter checks, and the injected faults (for every path or one). Tokens are bounded.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde_json::{json, Map, Value};

use super::cdr::Cdrs;
use super::config::{Fault, OpenvoxSimConfig};
use super::wire::{envelope, Answer};
use super::world::{Gateway, Nested, World};
use crate::handle::Switches;
use crate::util::{
    first_half, json_response, lock, md5_hex, proxy_page, server_error_page, InFlightGauge,
};

/// Tokens kept at most, so a client that logs in on every poll cannot grow the simulator.
const MAX_TOKENS: usize = 64;

/// The gateway's HTTP state, shared by the handlers and the handle.
pub(super) struct Shared {
    pub(super) cfg: OpenvoxSimConfig,
    password_md5: String,
    pub(super) gateway: Gateway,
    pub(super) tokens: Mutex<Vec<Token>>,
    pub(super) cdr: Mutex<Cdrs>,
    pub(super) logins: AtomicU64,
    pub(super) requests: AtomicU64,
    pub(super) per_path: Mutex<HashMap<String, u64>>,
    pub(super) in_flight: InFlightGauge,
    switches: Arc<Switches<Fault>>,
    pub(super) login_delay: Mutex<Duration>,
    pub(super) path_faults: Mutex<HashMap<String, Fault>>,
    pub(super) login_without_token: AtomicBool,
}

impl Shared {
    pub(super) fn new(cfg: OpenvoxSimConfig, switches: Arc<Switches<Fault>>) -> Shared {
        Shared {
            password_md5: md5_hex(&cfg.password),
            gateway: Gateway::new(&cfg),
            tokens: Mutex::new(Vec::new()),
            cdr: Mutex::new(Cdrs::new(cfg.cdr_every)),
            logins: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            per_path: Mutex::new(HashMap::new()),
            in_flight: InFlightGauge::default(),
            switches,
            login_delay: Mutex::new(cfg.login_delay),
            path_faults: Mutex::new(HashMap::new()),
            login_without_token: AtomicBool::new(false),
            cfg,
        }
    }
}

pub(super) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/controller/{*path}", post(handle))
        .with_state(shared)
}

pub(super) struct Token {
    value: String,
    issued: Instant,
    calls: u64,
}

const KNOWN_PATHS: [&str; 11] = [
    "auth/login",
    "auth/logout",
    "sys_info/oem",
    "sys_info/performance",
    "sys_info/interface",
    "sys_info/cdr",
    "sys_info/device_info",
    "sys_info/oem_web",
    "sys_info/package",
    "sys_option/datetime_get",
    "general/apply_get",
];

async fn handle(State(sh): State<Arc<Shared>>, Path(path): Path<String>, body: Bytes) -> Response {
    sh.requests.fetch_add(1, Ordering::SeqCst);
    let path = path.trim_matches('/');
    let known = KNOWN_PATHS.iter().find(|p| **p == path).copied();
    *lock(&sh.per_path)
        .entry(known.unwrap_or("other").to_owned())
        .or_default() += 1;
    let _in_flight = sh.in_flight.enter();

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
    sh.switches.delay().await;
    let fault = lock(&sh.path_faults)
        .get(path)
        .copied()
        .unwrap_or(sh.switches.fault());
    if fault == Fault::Hang {
        sh.switches.stopped().await;
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let answer = match request {
        None => Answer::Error(400, "Parameter error"),
        Some(req) => {
            let nested = match fault {
                Fault::GarbledNested => Nested::Garbled,
                Fault::InventedWords => Nested::Invented(rand::random()),
                _ => Nested::Real,
            };
            answer(&sh, known, &req, nested)
        }
    };
    let answer = match (answer, fault) {
        (Answer::Ok(_), Fault::EmptyData) => Answer::Ok(json!([])),
        (Answer::Ok(_), Fault::Code(code)) => Answer::Error(code, "Operation failed"),
        (a, _) => a,
    };
    let text = match (fault, &answer) {
        (Fault::FloodedCdr(n), Answer::Ok(_)) if path == "sys_info/cdr" => flooded_cdr(uri, n),
        _ => envelope(&sh.cfg, uri, answer),
    };
    match fault {
        Fault::Truncated => json_response(StatusCode::OK, first_half(&text)),
        Fault::Html => proxy_page(),
        Fault::Status500 => server_error_page(),
        _ => json_response(StatusCode::OK, text),
    }
}

/// The `sys_info/cdr` answer of `n` distinct records that all ended in the same second (written
/// as text: a hostile device does not pay for its answers, and neither should the test).
fn flooded_cdr(uri: &str, n: usize) -> String {
    use std::fmt::Write;
    let mut data = String::with_capacity(n * 56);
    for i in 0..n {
        let sep = if i == 0 { "" } else { "," };
        let _ = write!(
            data,
            r#"{sep}{{"disposition":"ANSWERED","end":"2025-01-01 00:01:00","from_channel":"{i}"}}"#
        );
    }
    format!(
        r#"{{"uri":{},"msg":"","code":200,"data":[{data}]}}"#,
        Value::from(uri)
    )
}

/// The device's anti-DDoS delay: a random wait up to the configured maximum.
async fn slow_down(sh: &Shared) {
    let max = *lock(&sh.login_delay);
    if !max.is_zero() {
        tokio::time::sleep(max.mul_f64(rand::random::<f64>())).await;
    }
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

fn answer(sh: &Shared, path: Option<&str>, req: &Map<String, Value>, nested: Nested) -> Answer {
    let world = World::now(&sh.cfg, &sh.gateway);
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
        Some("sys_option/datetime_get") => Answer::Ok(sh.gateway.settings.datetime()),
        Some("general/apply_get") => Answer::Ok(sh.gateway.settings.apply_state()),
        Some("sys_info/package") => match req.get("name").and_then(Value::as_str) {
            Some(name) if (1..=64).contains(&name.len()) => {
                Answer::Ok(sh.gateway.settings.package(name))
            }
            _ => Answer::Error(400, "name error"),
        },
        Some("sys_info/interface") => match slot_of(sh, req) {
            Some(slot) => Answer::Ok(world.interface(slot, nested)),
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
                (Some(slot), Some(limit)) => {
                    Answer::Ok(lock(&sh.cdr).answer(sh.cfg.seed, slot, limit))
                }
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
