//! A simulated Komari server: `GET /api/version`, `/api/public`, `/api/me`, `/api/nodes`,
//! `/api/records/ping`, `POST /api/login`, and the request/reply WebSocket `GET /api/clients`.
//!
//! Written only from the Komari API document and the project's notes on real servers, never from
//! the exporter's driver. What it models from the notes: the WebSocket never pushes and answers
//! `get` / `get <uuid>`; the last report of offline nodes is kept and online state comes only
//! from the `online` list; upgrades without an `Origin` header are refused with 403; a private
//! site answers 401 to everything but `/api/version` unless given a Bearer API key or a
//! `session_token` cookie from `POST /api/login`; ping records use `-1` for a lost probe; node
//! fields come in three time formats, and older servers leave newer fields out.
//!
//! Values move with wall time (traffic totals only grow, CPU and rates wobble); identities
//! (uuids, names, regions) come from `seed` and the node's index.

use std::collections::VecDeque;
use std::f64::consts::TAU;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Map, Value};
use tokio::sync::watch;

use super::util::{
    datetime_with, first_half, hang, html_response, json_response, lock, mix, proxy_page, serve,
    server_error_page, unit, unix_now, Flow,
};

/// A failure injected into the HTTP API answers (`/api/login` and `/api/version` excepted).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    None,
    /// Accept the request and never answer (until the simulator is dropped).
    Hang,
    /// Cut the JSON body in half.
    Truncated,
    /// An HTML error page with status 200, as a reverse proxy sends.
    Html,
    /// HTTP 500.
    Status500,
}

/// A failure injected into WebSocket replies to `get`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WsFault {
    None,
    /// Read `get` and never answer: a silent socket.
    Silent,
    /// Answer with a close frame instead of the data.
    Close,
    /// Answer `{"status":"error","error":"Invalid message"}`.
    Error,
    /// Answer with a text frame that is not JSON.
    NotJson,
    /// Refuse upgrades with HTTP 502 (a proxy whose backend is down).
    RefuseUpgrade,
}

#[derive(Clone, Debug)]
pub struct KomariSimConfig {
    /// Monitored nodes.
    pub nodes: usize,
    /// The last this many nodes are offline (their last report stays in the data).
    pub offline: usize,
    /// Ping tasks; every other node (even indices) is a target of all of them.
    pub ping_tasks: usize,
    /// A node whose probes lose one in four, the newest among them, if any.
    pub lossy_node: Option<usize>,
    /// Private site: everything but `/api/version` needs an API key or a session.
    pub private: bool,
    /// Accepted as `Authorization: Bearer <key>` (a full admin credential).
    pub api_key: Option<String>,
    pub username: String,
    pub password: String,
    /// Refuse WebSocket upgrades without a matching `Origin` (servers since 1.0.5).
    pub require_origin: bool,
    pub version: String,
    /// Older-server shapes: missing fields, nulls, the three time formats, `detailed_info:
    /// null`, a hostile node name. Off gives clean, complete JSON.
    pub quirks: bool,
    pub seed: u64,
}

impl Default for KomariSimConfig {
    fn default() -> Self {
        KomariSimConfig {
            nodes: 6,
            offline: 1,
            ping_tasks: 2,
            lossy_node: Some(2),
            private: false,
            api_key: None,
            username: "admin".into(),
            password: "admin".into(),
            require_origin: true,
            version: "1.0.7".into(),
            quirks: true,
            seed: 1,
        }
    }
}

/// Handle on a running simulator; dropping it stops the server and its WebSocket connections.
pub struct KomariSim {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
}

impl KomariSim {
    /// Binds `127.0.0.1:0` and serves in a spawned tokio task.
    pub async fn start(cfg: KomariSimConfig) -> std::io::Result<KomariSim> {
        let (stop, stop_rx) = watch::channel(false);
        let (drop_tx, _) = watch::channel(0u64);
        let shared = Arc::new(Shared {
            nodes: AtomicUsize::new(cfg.nodes),
            offline: AtomicUsize::new(cfg.offline),
            cfg,
            started: Instant::now(),
            started_unix: unix_now(),
            sessions: Mutex::new(VecDeque::new()),
            counters: Counters::default(),
            latency: Mutex::new(Duration::ZERO),
            fault: Mutex::new(Fault::None),
            ws_fault: Mutex::new(WsFault::None),
            drop_tx,
            stop: stop_rx.clone(),
        });
        let app = Router::new()
            .route("/api/version", get(version))
            .route("/api/public", get(public))
            .route("/api/me", get(me))
            .route("/api/login", post(login))
            .route("/api/nodes", get(nodes))
            .route("/api/records/ping", get(ping_records))
            .route("/api/clients", get(clients))
            .with_state(Arc::clone(&shared));
        let addr = serve(app, "komari", stop_rx).await?;
        Ok(KomariSim { addr, shared, stop })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `POST /api/login` requests, successful or not.
    pub fn logins(&self) -> u64 {
        self.shared.counters.logins.load(Ordering::SeqCst)
    }

    /// WebSocket upgrades accepted.
    pub fn ws_connects(&self) -> u64 {
        self.shared.counters.ws_connects.load(Ordering::SeqCst)
    }

    /// WebSocket upgrades refused (401, 403, 502).
    pub fn ws_refused(&self) -> u64 {
        self.shared.counters.ws_refused.load(Ordering::SeqCst)
    }

    /// Text frames received on WebSockets (`get` and anything else).
    pub fn ws_requests(&self) -> u64 {
        self.shared.counters.ws_requests.load(Ordering::SeqCst)
    }

    /// WebSocket connections open now.
    pub fn ws_open(&self) -> usize {
        self.shared.counters.ws_open.load(Ordering::SeqCst)
    }

    /// `GET /api/nodes` requests.
    pub fn node_list_requests(&self) -> u64 {
        self.shared.counters.nodes.load(Ordering::SeqCst)
    }

    /// `GET /api/records/ping` requests.
    pub fn ping_requests(&self) -> u64 {
        self.shared.counters.ping.load(Ordering::SeqCst)
    }

    /// Requests answered 401 because the site is private and no credential was valid.
    pub fn unauthorized(&self) -> u64 {
        self.shared.counters.unauthorized.load(Ordering::SeqCst)
    }

    /// Every existing `session_token` becomes invalid now.
    pub fn expire_sessions(&self) {
        lock(&self.shared.sessions).clear();
    }

    /// Closes every open WebSocket with a close frame, as a restarting server or proxy does.
    pub fn drop_connections(&self) {
        self.shared.drop_tx.send_modify(|g| *g += 1);
    }

    /// Added to every HTTP answer and WebSocket reply.
    pub fn set_latency(&self, d: Duration) {
        *lock(&self.shared.latency) = d;
    }

    pub fn set_fault(&self, f: Fault) {
        *lock(&self.shared.fault) = f;
    }

    pub fn set_ws_fault(&self, f: WsFault) {
        *lock(&self.shared.ws_fault) = f;
    }

    /// Nodes keep their identity by index, so lowering `n` deletes the last ones.
    pub fn set_nodes(&self, n: usize) {
        self.shared.nodes.store(n, Ordering::SeqCst);
    }

    /// The last `n` nodes are offline from now on.
    pub fn set_offline(&self, n: usize) {
        self.shared.offline.store(n, Ordering::SeqCst);
    }

    /// The uuid of node `i`.
    pub fn uuid(&self, i: usize) -> String {
        node_uuid(self.shared.cfg.seed, i)
    }
}

impl Drop for KomariSim {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

// ---------------------------------------------------------------------------
// Server state, auth, faults
// ---------------------------------------------------------------------------

/// Sessions kept at most, so a client logging in on every poll cannot grow the simulator.
const MAX_SESSIONS: usize = 256;
/// What a private site answers without a valid credential (notes).
const PRIVATE_BODY: &str =
    r#"{"status":"error","message":"Private site is enabled, please login first."}"#;
/// The server checks API keys for this length before comparing them (notes).
const MIN_API_KEY_LEN: usize = 12;

#[derive(Default)]
struct Counters {
    logins: AtomicU64,
    ws_connects: AtomicU64,
    ws_refused: AtomicU64,
    ws_requests: AtomicU64,
    ws_open: AtomicUsize,
    nodes: AtomicU64,
    ping: AtomicU64,
    unauthorized: AtomicU64,
}

struct Shared {
    cfg: KomariSimConfig,
    nodes: AtomicUsize,
    offline: AtomicUsize,
    started: Instant,
    started_unix: u64,
    sessions: Mutex<VecDeque<String>>,
    counters: Counters,
    latency: Mutex<Duration>,
    fault: Mutex<Fault>,
    ws_fault: Mutex<WsFault>,
    /// Bumped by `drop_connections`; every socket task watches it.
    drop_tx: watch::Sender<u64>,
    stop: watch::Receiver<bool>,
}

impl Shared {
    fn authorized(&self, headers: &HeaderMap) -> bool {
        if !self.cfg.private {
            return true;
        }
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if let (Some(given), Some(key)) = (bearer, &self.cfg.api_key) {
            if key.len() >= MIN_API_KEY_LEN && given == key {
                return true;
            }
        }
        let token = headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|s| s.split(';'))
            .find_map(|kv| kv.trim().strip_prefix("session_token="));
        token.is_some_and(|t| lock(&self.sessions).iter().any(|s| s == t))
    }

    fn unauthorized(&self) -> Response {
        self.counters.unauthorized.fetch_add(1, Ordering::SeqCst);
        json_response(StatusCode::UNAUTHORIZED, PRIVATE_BODY)
    }

    async fn delay(&self) {
        let latency = *lock(&self.latency);
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
    }

    /// Applies the HTTP fault to a ready JSON answer.
    async fn answer(&self, body: String) -> Response {
        self.delay().await;
        let fault = *lock(&self.fault);
        match fault {
            Fault::None => json_response(StatusCode::OK, body),
            Fault::Hang => {
                hang(&self.stop).await;
                StatusCode::SERVICE_UNAVAILABLE.into_response()
            }
            Fault::Truncated => json_response(StatusCode::OK, first_half(&body)),
            Fault::Html => proxy_page(),
            Fault::Status500 => server_error_page(),
        }
    }

    fn world(&self) -> World<'_> {
        World {
            cfg: &self.cfg,
            t: self.started.elapsed().as_secs_f64(),
            now: unix_now(),
            started_unix: self.started_unix,
            nodes: self.nodes.load(Ordering::SeqCst),
            offline: self.offline.load(Ordering::SeqCst),
        }
    }
}

fn success(data: Value) -> String {
    json!({"status": "success", "message": "", "data": data}).to_string()
}

// ---------------------------------------------------------------------------
// HTTP handlers
// ---------------------------------------------------------------------------

/// Public even on private sites (notes).
async fn version(State(sh): State<Arc<Shared>>) -> Response {
    sh.delay().await;
    let hash = format!("{:016x}{:016x}", mix(sh.cfg.seed), mix(sh.cfg.seed ^ 1));
    let body =
        success(json!({"hash": format!("{hash}{:08x}", mix(7) as u32), "version": sh.cfg.version}));
    json_response(StatusCode::OK, body)
}

async fn public(State(sh): State<Arc<Shared>>) -> Response {
    let body = success(json!({
        "allow_cors": false,
        "custom_body": "",
        "custom_head": "",
        "description": "A simple server monitor tool.",
        "disable_password_login": false,
        "oauth_enable": false,
        "ping_record_preserve_time": 24,
        "private_site": sh.cfg.private,
        "record_enabled": true,
        "record_preserve_time": 720,
        "sitename": "Komari Monitor",
    }));
    json_response(StatusCode::OK, body)
}

async fn me(State(sh): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let logged_in = sh.cfg.private && sh.authorized(&headers);
    let body = if logged_in {
        json!({"2fa_enabled": false, "logged_in": true, "sso_id": "", "sso_type": "",
               "username": sh.cfg.username, "uuid": node_uuid(sh.cfg.seed ^ 0xadd, 0)})
    } else {
        json!({"logged_in": false, "username": "Guest"})
    };
    json_response(StatusCode::OK, body.to_string())
}

async fn login(State(sh): State<Arc<Shared>>, body: Bytes) -> Response {
    sh.counters.logins.fetch_add(1, Ordering::SeqCst);
    let creds = serde_json::from_slice::<Value>(&body).ok().and_then(|v| {
        let user = v.get("username")?.as_str()?.to_owned();
        let pass = v.get("password")?.as_str()?.to_owned();
        Some((user, pass))
    });
    let Some((user, pass)) = creds else {
        return json_response(
            StatusCode::BAD_REQUEST,
            r#"{"status":"error","message":"Invalid request body"}"#,
        );
    };
    if user != sh.cfg.username || pass != sh.cfg.password {
        return json_response(
            StatusCode::UNAUTHORIZED,
            r#"{"status":"error","message":"Invalid credentials"}"#,
        );
    }
    let token = format!("{:032x}", rand::random::<u128>());
    {
        let mut sessions = lock(&sh.sessions);
        if sessions.len() >= MAX_SESSIONS {
            sessions.pop_front();
        }
        sessions.push_back(token.clone());
    }
    let body = json!({"status": "success", "message": "",
                      "data": {"set-cookie": {"session_token": token}}});
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/json".to_owned()),
            (
                header::SET_COOKIE,
                format!("session_token={token}; Path=/; Max-Age=2592000; HttpOnly"),
            ),
        ],
        body.to_string(),
    )
        .into_response()
}

async fn nodes(State(sh): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    sh.counters.nodes.fetch_add(1, Ordering::SeqCst);
    if !sh.authorized(&headers) {
        return sh.unauthorized();
    }
    let body = success(sh.world().node_list());
    sh.answer(body).await
}

async fn ping_records(
    State(sh): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(q): Query<Vec<(String, String)>>,
) -> Response {
    sh.counters.ping.fetch_add(1, Ordering::SeqCst);
    if !sh.authorized(&headers) {
        return sh.unauthorized();
    }
    let param = |k: &str| {
        q.iter()
            .find(|(name, _)| name == k)
            .map(|(_, v)| v.as_str())
    };
    let world = sh.world();
    let Some(idx) = param("uuid").and_then(|u| world.index_of(u)) else {
        return json_response(
            StatusCode::BAD_REQUEST,
            r#"{"status":"error","message":"Invalid or missing uuid"}"#,
        );
    };
    // The server keeps `ping_record_preserve_time` hours at most.
    let hours = param("hours")
        .and_then(|h| h.parse::<f64>().ok())
        .filter(|h| h.is_finite() && *h > 0.0)
        .unwrap_or(1.0)
        .min(24.0);
    let body = success(world.ping(idx, hours));
    sh.answer(body).await
}

async fn clients(
    State(sh): State<Arc<Shared>>,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    let refuse = |status: StatusCode, body: &'static str| {
        sh.counters.ws_refused.fetch_add(1, Ordering::SeqCst);
        json_response(status, body)
    };
    let ws = match ws {
        Ok(ws) => ws,
        Err(_) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                r#"{"status":"error","message":"WebSocket upgrade expected"}"#,
            )
        }
    };
    if *lock(&sh.ws_fault) == WsFault::RefuseUpgrade {
        sh.counters.ws_refused.fetch_add(1, Ordering::SeqCst);
        return html_response(StatusCode::BAD_GATEWAY, "502 Bad Gateway");
    }
    if !sh.authorized(&headers) {
        sh.counters.ws_refused.fetch_add(1, Ordering::SeqCst);
        return sh.unauthorized();
    }
    if sh.cfg.require_origin && !origin_matches_host(&headers) {
        return refuse(
            StatusCode::FORBIDDEN,
            r#"{"status":"error","message":"Forbidden"}"#,
        );
    }
    sh.counters.ws_connects.fetch_add(1, Ordering::SeqCst);
    ws.on_upgrade(move |socket| serve_socket(socket, sh))
}

/// The Origin's host[:port] must be the Host the client asked for.
fn origin_matches_host(headers: &HeaderMap) -> bool {
    let text = |h| {
        headers
            .get(h)
            .and_then(|v: &header::HeaderValue| v.to_str().ok())
    };
    let (Some(origin), Some(host)) = (text(header::ORIGIN), text(header::HOST)) else {
        return false;
    };
    origin
        .split_once("://")
        .is_some_and(|(_, rest)| rest.trim_end_matches('/') == host)
}

/// Counts an open socket for as long as its task runs.
struct OpenSocket<'a>(&'a AtomicUsize);

impl Drop for OpenSocket<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn serve_socket(mut socket: WebSocket, sh: Arc<Shared>) {
    sh.counters.ws_open.fetch_add(1, Ordering::SeqCst);
    let _open = OpenSocket(&sh.counters.ws_open);
    let mut dropped = sh.drop_tx.subscribe();
    let mut stop = sh.stop.clone();
    loop {
        let msg = tokio::select! {
            msg = socket.recv() => msg,
            _ = dropped.changed() => {
                let _ = socket.send(close_frame(1012, "service restart")).await;
                return;
            }
            _ = stop.changed() => return,
        };
        let text = match msg {
            Some(Ok(Message::Text(t))) => t.to_string(),
            Some(Ok(Message::Binary(b))) => String::from_utf8_lossy(&b).into_owned(),
            // Pings are answered by the WebSocket layer; the server never pings on its own.
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
        };
        sh.counters.ws_requests.fetch_add(1, Ordering::SeqCst);
        sh.delay().await;
        let fault = *lock(&sh.ws_fault);
        let reply = match fault {
            WsFault::None | WsFault::RefuseUpgrade => {
                Message::Text(sh.world().ws_reply(&text).into())
            }
            WsFault::Silent => continue,
            WsFault::Close => {
                let _ = socket.send(close_frame(1011, "internal error")).await;
                return;
            }
            WsFault::Error => Message::Text(INVALID_MESSAGE.into()),
            WsFault::NotJson => Message::Text("websocket: internal server error".into()),
        };
        if socket.send(reply).await.is_err() {
            return;
        }
    }
}

const INVALID_MESSAGE: &str = r#"{"status":"error","error":"Invalid message"}"#;

fn close_frame(code: u16, reason: &'static str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: reason.into(),
    }))
}

// ---------------------------------------------------------------------------
// The simulated fleet at one instant
// ---------------------------------------------------------------------------

const T_CPU: u64 = 1;
const T_RAM: u64 = 2;
const T_UP: u64 = 3;
const T_DOWN: u64 = 4;
const T_CONN: u64 = 5;
const T_PING: u64 = 6;
const T_DISK: u64 = 7;
const T_UUID: u64 = 8;

struct Place {
    flag: &'static str,
    group: &'static str,
    city: &'static str,
    /// The server's local UTC offset in hours, for the "RFC 3339 in local time" format.
    tz: i64,
}

const PLACES: &[Place] = &[
    Place {
        flag: "🇸🇬",
        group: "新加坡",
        city: "sg",
        tz: 8,
    },
    Place {
        flag: "🇯🇵",
        group: "日本",
        city: "tyo",
        tz: 9,
    },
    Place {
        flag: "🇺🇸",
        group: "美国",
        city: "lax",
        tz: -7,
    },
    Place {
        flag: "🇩🇪",
        group: "Europe",
        city: "fra",
        tz: 2,
    },
    Place {
        flag: "🇭🇰",
        group: "香港",
        city: "hkg",
        tz: 8,
    },
];

struct Hardware {
    cpu_name: &'static str,
    cores: u64,
    virt: &'static str,
    arch: &'static str,
    os: &'static str,
    kernel: &'static str,
    mem: u64,
    swap: u64,
    disk: u64,
}

const HARDWARE: &[Hardware] = &[
    // The node of the API document.
    Hardware {
        cpu_name: "DO-Regular",
        cores: 1,
        virt: "kvm",
        arch: "amd64",
        os: "Debian GNU/Linux 12 (bookworm)",
        kernel: "6.1.0-37-amd64",
        mem: 479_670_272,
        swap: 2_147_479_552,
        disk: 10_524_137_472,
    },
    Hardware {
        cpu_name: "AMD EPYC 7B13",
        cores: 4,
        virt: "kvm",
        arch: "amd64",
        os: "Ubuntu 24.04.2 LTS",
        kernel: "6.8.0-60-generic",
        mem: 8_323_088_384,
        swap: 0,
        disk: 84_014_878_720,
    },
    Hardware {
        cpu_name: "Neoverse-N1",
        cores: 4,
        virt: "kvm",
        arch: "arm64",
        os: "Oracle Linux Server 9.5",
        kernel: "5.15.0-307.178.5.el9uek.aarch64",
        mem: 25_183_010_816,
        swap: 4_294_963_200,
        disk: 200_987_033_600,
    },
    Hardware {
        cpu_name: "Intel(R) Xeon(R) E-2236 CPU @ 3.40GHz",
        cores: 12,
        virt: "none",
        arch: "amd64",
        os: "Proxmox VE 8.3",
        kernel: "6.8.12-4-pve",
        mem: 67_280_158_720,
        swap: 8_589_930_496,
        disk: 1_967_317_549_056,
    },
    Hardware {
        cpu_name: "Intel Xeon Processor (Skylake, IBRS)",
        cores: 2,
        virt: "lxc",
        arch: "amd64",
        os: "Alpine Linux v3.21",
        kernel: "5.10.0-33-amd64",
        mem: 1_073_741_824,
        swap: 0,
        disk: 21_474_836_480,
    },
];

/// The node that reports a GPU (with details), when there are enough nodes.
const GPU_NODE: usize = 3;
/// The node whose name carries `"`, `\` and a newline (quirk).
const HOSTILE_NODE: usize = 4;
const HOSTILE_NAME: &str = "lab \"gpu\" C:\\box\nrack 2";
/// How long an offline node has been silent, in seconds.
const OFFLINE_FOR: u64 = 3 * 3600 + 17 * 60;

fn node_uuid(seed: u64, i: usize) -> String {
    let a = mix(seed ^ mix(T_UUID ^ mix(i as u64)));
    let b = mix(a ^ 0x5eed);
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        (a >> 32) as u32,
        (a >> 16) as u16,
        a & 0xfff,
        0x8000 | (b >> 48) as u16 & 0x3fff,
        b & 0xffff_ffff_ffff
    )
}

/// `2025-05-30 09:10:19.1305505+00:00`: what the node list uses (format 1 of the notes).
fn fmt_go_db(unix: u64) -> String {
    format!("{}.{:07}+00:00", datetime_with(unix, ' '), unix % 9_999_991)
}

/// RFC 3339 in the server's local time (format 2 of the notes).
fn fmt_local(unix: u64, tz_hours: i64) -> String {
    let local = (unix as i64 + tz_hours * 3600).max(0) as u64;
    let sign = if tz_hours < 0 { '-' } else { '+' };
    format!(
        "{}{sign}{:02}:00",
        datetime_with(local, 'T'),
        tz_hours.abs()
    )
}

/// RFC 3339 with nanoseconds in UTC (format 3; what reports carry).
fn fmt_utc_nanos(unix: f64) -> String {
    let secs = unix.floor();
    let nanos = ((unix - secs) * 1e9) as u64;
    format!("{}.{nanos:09}Z", datetime_with(secs as u64, 'T'))
}

struct World<'a> {
    cfg: &'a KomariSimConfig,
    /// Seconds since the simulator started.
    t: f64,
    now: u64,
    started_unix: u64,
    nodes: usize,
    offline: usize,
}

impl World<'_> {
    fn seed(&self) -> u64 {
        self.cfg.seed
    }

    fn online(&self, i: usize) -> bool {
        i < self.nodes.saturating_sub(self.offline)
    }

    fn index_of(&self, uuid: &str) -> Option<usize> {
        (0..self.nodes).find(|&i| node_uuid(self.seed(), i) == uuid)
    }

    fn has_ping(&self, i: usize) -> bool {
        self.cfg.ping_tasks > 0 && i % 2 == 0
    }

    fn node_list(&self) -> Value {
        Value::Array((0..self.nodes).map(|i| self.node_row(i)).collect())
    }

    fn node_row(&self, i: usize) -> Value {
        let seed = self.seed();
        let place = &PLACES[i % PLACES.len()];
        let hw = &HARDWARE[i % HARDWARE.len()];
        let name = if self.cfg.quirks && i == HOSTILE_NODE {
            HOSTILE_NAME.to_owned()
        } else {
            format!("{}-{:02}", place.city, i + 1)
        };
        let created = self.started_unix - 86_400 * (30 + (mix(seed ^ i as u64) % 300));
        let updated = self.started_unix - 3600 * (1 + i as u64 % 48);
        // Format 1 for most, RFC 3339 local for every third (a server with TZ set).
        let stamp = |unix: u64| {
            if self.cfg.quirks && i % 3 == 1 {
                Value::String(fmt_local(unix, place.tz))
            } else {
                Value::String(fmt_go_db(unix))
            }
        };
        // Expiry: a date for most, null (never set) or year 0001 (zero time) for others.
        let expired_at = match i % 4 {
            1 if self.cfg.quirks => Value::Null,
            2 if self.cfg.quirks => json!("0001-01-01 00:00:00+00:00"),
            _ => stamp(self.started_unix + 86_400 * (10 + i as u64 * 7)),
        };
        let (price, cycle) = match i % 5 {
            0 => (json!(-1), 30),
            1 => (json!(0), 0),
            2 => (json!(5.99), 30),
            3 => (json!(49.0), 365),
            _ => (json!(2.5), 30),
        };
        let mut row = json!({
            "uuid": node_uuid(seed, i),
            "name": name,
            "cpu_name": hw.cpu_name,
            "virtualization": hw.virt,
            "arch": hw.arch,
            "cpu_cores": hw.cores,
            "os": hw.os,
            "kernel_version": hw.kernel,
            "gpu_name": if i == GPU_NODE { "NVIDIA GeForce RTX 3060" } else { "None" },
            "region": place.flag,
            "mem_total": hw.mem,
            "swap_total": hw.swap,
            "disk_total": hw.disk,
            "weight": i,
            "price": price,
            "billing_cycle": cycle,
            "auto_renewal": i % 2 == 0,
            "currency": if i % 2 == 0 { "$" } else { "¥" },
            "expired_at": expired_at,
            "group": place.group,
            "tags": if i % 2 == 0 { "NVMe;IPv6" } else { "" },
            "hidden": false,
            "traffic_limit": if i % 3 == 0 { 1_099_511_627_776u64 } else { 0 },
            "traffic_limit_type": if i % 3 == 0 { "max" } else { "sum" },
            "created_at": stamp(created),
            "updated_at": stamp(updated),
        });
        // Fields added in later versions are missing on nodes an old server still serves.
        if self.cfg.quirks && i % 5 == 4 {
            if let Value::Object(map) = &mut row {
                for key in [
                    "kernel_version",
                    "traffic_limit",
                    "traffic_limit_type",
                    "auto_renewal",
                    "hidden",
                ] {
                    map.remove(key);
                }
            }
        }
        row
    }

    fn ws_reply(&self, text: &str) -> String {
        let text = text.trim();
        let only = match text {
            "get" => None,
            _ => match text.strip_prefix("get ").map(str::trim) {
                Some(uuid) => Some(uuid),
                None => return INVALID_MESSAGE.to_owned(),
            },
        };
        let mut online = Vec::new();
        let mut data = Map::new();
        for i in 0..self.nodes {
            let uuid = node_uuid(self.seed(), i);
            if only.is_some_and(|u| u != uuid) {
                continue;
            }
            if self.online(i) {
                online.push(Value::String(uuid.clone()));
            }
            if let Some(report) = self.report(i) {
                data.insert(uuid, report);
            }
        }
        json!({"data": {"online": online, "data": data}, "status": "success"}).to_string()
    }

    /// A node's latest report; offline nodes keep the one they sent last.
    fn report(&self, i: usize) -> Option<Value> {
        // A freshly added node that never reported (quirk: the last node when offline).
        if self.cfg.quirks && !self.online(i) && i + 1 == self.nodes && self.offline >= 2 {
            return None;
        }
        let (t, at) = if self.online(i) {
            (self.t, self.now as f64 + self.t.fract())
        } else {
            let at = self.now.saturating_sub(OFFLINE_FOR) as f64;
            (at - self.started_unix as f64, at)
        };
        let seed = self.seed();
        let k = i as u64;
        let hw = &HARDWARE[i % HARDWARE.len()];
        let wave = |tag: u64, period: f64| (t / period + unit(seed, tag, k) * TAU).sin();
        // The agent reports 0 % as 0.01 (notes).
        let cpu = (3.0 + 40.0 * unit(seed, T_CPU, k) + 8.0 * wave(T_CPU, 37.0)).max(0.01);
        let ram = hw.mem as f64 * (0.35 + 0.3 * unit(seed, T_RAM, k) + 0.05 * wave(T_RAM, 90.0));
        let up = Flow::new(
            seed,
            T_UP,
            k,
            2.5e11 * (1.0 + unit(seed, T_UP, k)),
            20_000.0 + 300_000.0 * unit(seed, T_UP, k + 50),
        );
        let down = Flow::new(
            seed,
            T_DOWN,
            k,
            3.2e10 * (1.0 + unit(seed, T_DOWN, k)),
            5_000.0 + 90_000.0 * unit(seed, T_DOWN, k + 50),
        );
        let load1 = (cpu / 100.0 * hw.cores as f64 * 1.3 * 100.0).round() / 100.0;
        let mut report = json!({
            "cpu": {"usage": cpu},
            "ram": {"total": hw.mem, "used": ram as u64},
            "swap": {"total": hw.swap, "used": hw.swap / 7},
            "load": {"load1": load1, "load5": (load1 * 0.8 * 100.0).round() / 100.0, "load15": (load1 * 0.6 * 100.0).round() / 100.0},
            "disk": {"total": hw.disk, "used": (hw.disk as f64 * (0.2 + 0.6 * unit(seed, T_DISK, k))) as u64},
            "network": {
                "up": up.smooth_rate(t) as u64,
                "down": down.smooth_rate(t) as u64,
                "totalUp": up.total(t.max(0.0)) as u64,
                "totalDown": down.total(t.max(0.0)) as u64,
            },
            "connections": {
                "tcp": 10 + (200.0 * unit(seed, T_CONN, k)) as u64,
                "udp": 2 + (20.0 * unit(seed, T_CONN, k + 50)) as u64,
            },
            "uptime": 609_849 + mix(seed ^ k) % 2_000_000 + t.max(0.0) as u64,
            "process": 80 + (unit(seed, T_CONN, k + 99) * 120.0) as u64,
            "message": "",
            "updated_at": fmt_utc_nanos(at),
        });
        if let Value::Object(map) = &mut report {
            if i == GPU_NODE {
                let util = 20.0 + 30.0 * (wave(T_CPU, 50.0) + 1.0);
                map.insert(
                    "gpu".into(),
                    json!({
                        "count": 1,
                        "average_usage": util,
                        "detailed_info": [{
                            "name": "NVIDIA GeForce RTX 3060",
                            "memory_total": 12_884_901_888u64,
                            "memory_used": 3_221_225_472u64,
                            "utilization": util,
                            "temperature": 54,
                        }],
                    }),
                );
            } else if self.cfg.quirks && i % 4 == 1 {
                map.insert(
                    "gpu".into(),
                    json!({"count": 0, "average_usage": 0, "detailed_info": null}),
                );
            }
            if self.cfg.quirks && i % 5 == 4 {
                // An old agent: no swap section, connections unknown.
                map.remove("swap");
                map.insert("connections".into(), Value::Null);
            }
        }
        Some(report)
    }

    /// Ping records of node `idx` for the last `hours`, oldest first, and the tasks.
    fn ping(&self, idx: usize, hours: f64) -> Value {
        let tasks: Vec<(u64, &str, &str, u64)> = [
            (1, "百度", "icmp", 30),
            (2, "Cloudflare DNS", "tcp", 60),
            (3, "Google", "http", 120),
        ]
        .into_iter()
        .take(self.cfg.ping_tasks)
        .collect();
        let mut records = Vec::new();
        if self.has_ping(idx) && self.online(idx) {
            let uuid = node_uuid(self.seed(), idx);
            for &(id, _, _, interval) in &tasks {
                let n = (hours * 3600.0 / interval as f64) as u64;
                let newest = self.now / interval * interval;
                for j in 0..n {
                    let age = n - 1 - j;
                    let at = newest - age * interval;
                    // One probe in four lost, the newest among them.
                    let lost = self.cfg.lossy_node == Some(idx) && age % 4 == 0;
                    let base = 20.0 + 150.0 * unit(self.seed(), T_PING, idx as u64 * 8 + id);
                    let ms = (base * (1.0 + 0.2 * unit(self.seed(), T_PING, at))).round() as i64;
                    records.push((
                        at,
                        json!({
                            "client": uuid,
                            "task_id": id,
                            "time": fmt_utc_nanos(at as f64),
                            "value": if lost { -1 } else { ms },
                        }),
                    ));
                }
            }
        }
        records.sort_by_key(|(at, _)| *at);
        let tasks: Vec<Value> = tasks
            .iter()
            .map(|(id, name, ty, interval)| json!({"id": id, "name": name, "type": ty, "interval": interval}))
            .collect();
        json!({
            "count": records.len(),
            "records": records.into_iter().map(|(_, r)| r).collect::<Vec<_>>(),
            "tasks": tasks,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_look_like_uuids_and_are_stable() {
        let u = node_uuid(1, 0);
        assert_eq!(u.len(), 36);
        assert_eq!(u.as_bytes()[14], b'4');
        assert_eq!(u, node_uuid(1, 0));
        assert_ne!(u, node_uuid(1, 1));
    }

    #[test]
    fn the_three_time_formats() {
        assert_eq!(
            fmt_go_db(1_752_564_619),
            format!(
                "2025-07-15 07:30:19.{:07}+00:00",
                1_752_564_619u64 % 9_999_991
            )
        );
        assert_eq!(fmt_local(1_752_564_619, 8), "2025-07-15T15:30:19+08:00");
        assert_eq!(fmt_local(1_752_564_619, -7), "2025-07-15T00:30:19-07:00");
        assert_eq!(
            fmt_utc_nanos(1_752_564_619.5),
            "2025-07-15T07:30:19.500000000Z"
        );
    }

    #[test]
    fn origin_must_match_host() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, "127.0.0.1:8080".parse().unwrap());
        assert!(!origin_matches_host(&h));
        h.insert(header::ORIGIN, "http://127.0.0.1:8080".parse().unwrap());
        assert!(origin_matches_host(&h));
        h.insert(header::ORIGIN, "http://evil.example".parse().unwrap());
        assert!(!origin_matches_host(&h));
    }
}
