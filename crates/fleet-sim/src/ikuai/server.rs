//! The router's HTTP side: `/Action/login` with its md5 password check and `sess_key` cookie,
//! `/Action/call` with its session check, the injected faults, the firmware's envelope and the
//! mapping of `func_name`/`TYPE` to sections of the world. Sessions are bounded; the simulator
//! is read-only, so every action but `show` is refused.

use crate::util::SimClock;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde_json::{json, Map, Value};

use super::config::{Fault, Firmware, IkuaiSimConfig};
use super::wire::{raw, render};
use super::world::World;
use crate::handle::Switches;
use crate::util::{
    first_half, json_response, lock, md5_hex, proxy_page, server_error_page, InFlightGauge,
};

/// Session keys kept at most; a client that logs in on every poll (the bug the
/// notes warn about) must not grow the simulator without bound.
const MAX_SESSIONS: usize = 256;

/// The router's state, shared by the handlers and the handle.
pub(super) struct Shared {
    pub(super) cfg: IkuaiSimConfig,
    passwd_md5: String,
    pub(super) clock: SimClock,
    pub(super) lan_clients: AtomicUsize,
    pub(super) sessions: Mutex<VecDeque<String>>,
    /// Physical ports whose link is down on purpose (by the handle).
    pub(super) unplugged: Mutex<Vec<String>>,
    pub(super) logins: AtomicU64,
    pub(super) calls: AtomicU64,
    pub(super) in_flight: InFlightGauge,
    /// Token API requests received, and those refused for their token.
    pub(super) token_calls: AtomicU64,
    pub(super) token_refusals: AtomicU64,
    /// Token API requests by path (below `/api/v4.0/`).
    pub(super) token_path_calls: Mutex<HashMap<String, u64>>,
    /// Where the token API sends every request instead (a 302), when set.
    pub(super) redirect: Mutex<Option<String>>,
    pub(super) switches: Arc<Switches<Fault>>,
}

impl Shared {
    pub(super) fn new(cfg: IkuaiSimConfig, switches: Arc<Switches<Fault>>) -> Shared {
        Shared {
            passwd_md5: md5_hex(&cfg.password),
            lan_clients: AtomicUsize::new(cfg.lan_clients),
            cfg,
            clock: SimClock::new(),
            sessions: Mutex::new(VecDeque::new()),
            unplugged: Mutex::new(Vec::new()),
            logins: AtomicU64::new(0),
            calls: AtomicU64::new(0),
            in_flight: InFlightGauge::default(),
            token_calls: AtomicU64::new(0),
            token_refusals: AtomicU64::new(0),
            token_path_calls: Mutex::new(HashMap::new()),
            redirect: Mutex::new(None),
            switches,
        }
    }

    /// The world at this instant.
    pub(super) fn world(&self) -> World<'_> {
        World::new(
            &self.cfg,
            &self.clock,
            self.lan_clients.load(Ordering::SeqCst),
            lock(&self.unplugged).clone(),
        )
    }
}

/// `/Action/login` and `/Action/call`.
pub(super) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/Action/login", post(login))
        .route("/Action/call", post(call))
}

async fn login(State(sh): State<Arc<Shared>>, body: Bytes) -> Response {
    sh.logins.fetch_add(1, Ordering::SeqCst);
    // Routers read a JSON body only; a form body is a "Post data error".
    let creds = serde_json::from_slice::<Value>(&body).ok().and_then(|v| {
        let user = v.get("username")?.as_str()?.to_owned();
        let passwd = v.get("passwd")?.as_str()?.to_owned();
        Some((user, passwd))
    });
    let Some((user, passwd)) = creds else {
        return json_response(
            StatusCode::OK,
            r#"{"Result":10001,"ErrMsg":"Post data error"}"#,
        );
    };
    // Only `passwd` is checked, like the routers; `pass` is what the web UI adds.
    if user != sh.cfg.username || passwd != sh.passwd_md5 {
        tracing::debug!("ikuai sim: login refused");
        return json_response(
            StatusCode::OK,
            r#"{"Result":10001,"ErrMsg":"用户名或密码错误"}"#,
        );
    }
    let key = format!("{:032x}", rand::random::<u128>());
    {
        let mut sessions = lock(&sh.sessions);
        if sessions.len() >= MAX_SESSIONS {
            sessions.pop_front();
        }
        sessions.push_back(key.clone());
    }
    let body = match sh.cfg.firmware {
        Firmware::V3 => r#"{"Result":10000,"ErrMsg":"Success"}"#,
        Firmware::V4 => r#"{"code":0,"message":"Success"}"#,
    };
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/json".to_owned()),
            (header::SET_COOKIE, format!("sess_key={key}; path=/")),
        ],
        body,
    )
        .into_response()
}

async fn call(State(sh): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    sh.calls.fetch_add(1, Ordering::SeqCst);
    let _in_flight = sh.in_flight.enter();

    sh.switches.delay().await;
    let fault = sh.switches.fault();
    if fault == Fault::Hang {
        sh.switches.stopped().await;
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }

    let hostile = fault == Fault::HugeClientPages
        && std::str::from_utf8(&body).is_ok_and(|b| b.contains("monitor_lanip"));
    let answer = if session_valid(&sh, &headers) && hostile {
        huge_client_page(sh.cfg.firmware)
    } else if session_valid(&sh, &headers) {
        answer_call(&sh, &body)
    } else {
        match sh.cfg.firmware {
            Firmware::V3 => r#"{"Result":10014,"ErrMsg":"no login authentication"}"#.to_owned(),
            Firmware::V4 => r#"{"code":1008,"message":"会话已过期"}"#.to_owned(),
        }
    };

    match fault {
        // Hang has already returned above.
        Fault::None | Fault::Hang | Fault::HugeClientPages => json_response(StatusCode::OK, answer),
        Fault::Truncated => json_response(StatusCode::OK, first_half(&answer)),
        Fault::Html => proxy_page(),
        Fault::Status500 => server_error_page(),
    }
}

/// A client page of about 7 MB of empty rows claiming a trillion clients.
fn huge_client_page(firmware: Firmware) -> String {
    const ROWS: usize = 7 << 20 >> 2;
    let mut rows = "{},".repeat(ROWS);
    rows.push_str("{}");
    let data = format!(r#"{{"data":[{rows}],"total":1000000000000}}"#);
    match firmware {
        Firmware::V3 => format!(r#"{{"Result":30000,"ErrMsg":"Success","Data":{data}}}"#),
        Firmware::V4 => format!(r#"{{"code":0,"message":"Success","results":{data}}}"#),
    }
}

fn session_valid(sh: &Shared, headers: &HeaderMap) -> bool {
    let key = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|s| s.split(';'))
        .find_map(|kv| kv.trim().strip_prefix("sess_key="));
    match key {
        Some(key) => lock(&sh.sessions).iter().any(|k| k == key),
        None => false,
    }
}

/// A request we cannot or will not answer; the envelope code depends on firmware.
struct CallError(String);

fn answer_call(sh: &Shared, body: &[u8]) -> String {
    let world = sh.world();
    // The envelope is written by hand because serde_json sorts object keys,
    // and a repair step in a driver may well expect the router's key order.
    match parse_call(body).and_then(|req| dispatch(&world, &req)) {
        Ok(data) => {
            let data = render(&Value::Object(data));
            match sh.cfg.firmware {
                Firmware::V3 => format!(r#"{{"Result":30000,"ErrMsg":"Success","Data":{data}}}"#),
                Firmware::V4 => format!(r#"{{"code":0,"message":"Success","results":{data}}}"#),
            }
        }
        Err(CallError(msg)) => {
            let msg = Value::String(msg);
            match sh.cfg.firmware {
                Firmware::V3 => format!(r#"{{"Result":30001,"ErrMsg":{msg}}}"#),
                Firmware::V4 => format!(r#"{{"code":1,"message":{msg}}}"#),
            }
        }
    }
}

struct CallRequest {
    func_name: String,
    types: Vec<String>,
    /// `(offset, count)` from `"limit":"offset,count"`.
    limit: Option<(usize, usize)>,
    /// `app_flow`'s window in minutes (`"minute":"60"`); the web UI's default is 60.
    minute: u64,
}

/// `app_flow`'s window when the request names none.
const DEFAULT_MINUTE: u64 = 60;

fn parse_call(body: &[u8]) -> Result<CallRequest, CallError> {
    let bad = |msg: &str| CallError(msg.to_owned());
    let v: Value = serde_json::from_slice(body).map_err(|_| bad("Post data error"))?;
    let func_name = v
        .get("func_name")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("func_name missing"))?;
    // The simulator is read-only: the other actions change a router's setup.
    if v.get("action").and_then(Value::as_str) != Some("show") {
        return Err(bad("action not supported"));
    }
    let param = v.get("param").ok_or_else(|| bad("param missing"))?;
    // `webuser` `show` is the web UI's cheap "am I still logged in" call: it needs no TYPE.
    let types: Vec<String> = match param.get("TYPE").and_then(Value::as_str) {
        Some(types) => types
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .collect(),
        None if func_name == "webuser" => vec!["data".to_owned()],
        None => Vec::new(),
    };
    if types.is_empty() {
        return Err(bad("param TYPE missing"));
    }
    let minute = match param.get("minute") {
        None => DEFAULT_MINUTE,
        Some(m) => m
            .as_u64()
            .or_else(|| m.as_str().and_then(|s| s.trim().parse().ok()))
            .filter(|m| *m > 0)
            .ok_or_else(|| bad("param minute error"))?,
    };
    let limit = match param.get("limit") {
        None => None,
        Some(l) => {
            let parsed = l.as_str().and_then(|s| {
                let (off, cnt) = s.split_once(',')?;
                Some((off.trim().parse().ok()?, cnt.trim().parse().ok()?))
            });
            Some(parsed.ok_or_else(|| bad("param limit error"))?)
        }
    };
    Ok(CallRequest {
        func_name: clip(func_name),
        types,
        limit,
        minute,
    })
}

fn dispatch(world: &World<'_>, req: &CallRequest) -> Result<Map<String, Value>, CallError> {
    let mut out = Map::new();
    for ty in &req.types {
        let ty = ty.as_str();
        match (req.func_name.as_str(), ty) {
            ("homepage", "sysstat") => {
                out.insert(ty.into(), world.sysstat());
            }
            ("homepage", "ac_status") => {
                out.insert(ty.into(), world.ac_status());
            }
            ("homepage", "dhcp_addrpool_num") => {
                out.insert(ty.into(), world.dhcp_addrpool_num());
            }
            ("homepage", "wan_stat") => {
                out.insert(ty.into(), world.wan_stat());
            }
            ("homepage" | "monitor_system", "app_flow") => {
                out.insert(ty.into(), world.app_flow(req.minute));
            }
            ("monitor_app_flow", "flow") => {
                out.insert(ty.into(), world.app_flow_rows(req.minute));
            }
            // The sysstat fields straight under the payload, no wrapper.
            ("sysstat", field) => match world.sysstat_field(field) {
                Some(v) => {
                    out.insert(ty.into(), v);
                }
                None => return Err(CallError(format!("unknown TYPE: {}", clip(ty)))),
            },
            ("upgrade", "data") => {
                out.insert("data".into(), world.upgrade());
            }
            ("register", "data") => {
                out.insert("data".into(), json!({"gwid": world.gwid(), "status": 1}));
            }
            ("register", "gwid") => {
                out.insert("gwid".into(), json!(world.gwid()));
            }
            // The web UI's session check: the signed-in account, nothing else.
            ("webuser", "data") => {
                out.insert("data".into(), json!([{"username": world.username()}]));
                out.insert("total".into(), json!(1));
            }
            ("homepage", "ether_info") => {
                out.insert(ty.into(), world.ether_info());
            }
            // One TYPE, two answer keys: that is how the document shows it.
            ("homepage", "snapshoot") => {
                out.insert("snapshoot_lan".into(), world.snapshoot_lan());
                out.insert("snapshoot_wan".into(), world.snapshoot_wan());
            }
            ("monitor_iface", "iface_check") => {
                out.insert(ty.into(), world.iface_check());
            }
            ("monitor_iface", "iface_stream") => {
                out.insert(ty.into(), world.iface_stream());
            }
            ("monitor_lanip", "data" | "total") => {
                list_answer(
                    world.quirks,
                    &mut out,
                    ty,
                    world.lan_rows(),
                    req.limit,
                    false,
                );
            }
            ("monitor_lanipv6", "data" | "total") => {
                list_answer(
                    world.quirks,
                    &mut out,
                    ty,
                    world.lan6_rows(),
                    req.limit,
                    true,
                );
            }
            ("dns", "dns_cache") => {
                out.insert("data".into(), world.dns_cache());
            }
            ("monitor_l7qos", "data") => {
                out.insert("data".into(), world.l7qos());
            }
            ("homepage" | "monitor_iface" | "monitor_lanip" | "monitor_lanipv6", _)
            | ("dns" | "monitor_l7qos" | "monitor_system" | "monitor_app_flow", _)
            | ("upgrade" | "register" | "webuser", _) => {
                return Err(CallError(format!("unknown TYPE: {}", clip(ty))));
            }
            (func, _) => return Err(CallError(format!("unknown func_name: {func}"))),
        }
    }
    Ok(out)
}

fn list_answer(
    quirks: bool,
    out: &mut Map<String, Value>,
    ty: &str,
    rows: Vec<Value>,
    limit: Option<(usize, usize)>,
    v6: bool,
) {
    if ty == "total" {
        out.insert("total".into(), json!(rows.len()));
        return;
    }
    // Real routers answer an empty IPv6 table with an invalid bare token.
    if v6 && rows.is_empty() && quirks {
        out.insert("data".into(), raw("timeout"));
        return;
    }
    let (offset, count) = limit.unwrap_or((0, 100));
    let page: Vec<Value> = rows.into_iter().skip(offset).take(count).collect();
    out.insert("data".into(), Value::Array(page));
}

/// Echoed request text stays short in error messages.
fn clip(s: &str) -> String {
    s.chars().take(64).collect()
}
