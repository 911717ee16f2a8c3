//! The server's HTTP side: `/api/version` (public even on private sites), `/api/public`,
//! `/api/me`, `POST /api/login` with its `session_token` cookie, `/api/nodes` and
//! `/api/records/ping`; the private-site check (Bearer API key or session) and the injected
//! HTTP faults. Sessions are bounded. The WebSocket half is in `socket`, which shares this
//! state; the handle joins the two routers.

use crate::util::SimClock;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};
use tokio::sync::watch;

use super::config::{Fault, KomariSimConfig, WsFault};
use super::hostile;
use super::wire::success;
use super::world::{node_uuid, World};
use crate::handle::Switches;
use crate::util::{first_half, json_response, lock, mix, proxy_page, server_error_page};

/// Sessions kept at most, so a client logging in on every poll cannot grow the simulator.
const MAX_SESSIONS: usize = 256;
/// What a private site answers without a valid credential (notes).
const PRIVATE_BODY: &str =
    r#"{"status":"error","message":"Private site is enabled, please login first."}"#;
/// The server checks API keys for this length before comparing them (notes).
const MIN_API_KEY_LEN: usize = 12;

/// What the handle reports of the traffic received.
#[derive(Default)]
pub(super) struct Counters {
    pub(super) logins: AtomicU64,
    pub(super) ws_connects: AtomicU64,
    pub(super) ws_refused: AtomicU64,
    pub(super) ws_requests: AtomicU64,
    pub(super) ws_open: AtomicUsize,
    pub(super) nodes: AtomicU64,
    pub(super) ping: AtomicU64,
    pub(super) unauthorized: AtomicU64,
    pub(super) rpc: AtomicU64,
    pub(super) not_found: AtomicU64,
}

/// The server's state, shared by the handlers, the sockets and the handle.
pub(super) struct Shared {
    pub(super) cfg: KomariSimConfig,
    pub(super) nodes: AtomicUsize,
    pub(super) offline: AtomicUsize,
    pub(super) clock: SimClock,
    pub(super) sessions: Mutex<VecDeque<String>>,
    pub(super) counters: Counters,
    pub(super) switches: Arc<Switches<Fault>>,
    pub(super) ws_fault: Mutex<WsFault>,
    /// Bumped by `drop_connections`; every socket task watches it.
    pub(super) drop_tx: watch::Sender<u64>,
}

impl Shared {
    pub(super) fn new(cfg: KomariSimConfig, switches: Arc<Switches<Fault>>) -> Shared {
        Shared {
            nodes: AtomicUsize::new(cfg.nodes),
            offline: AtomicUsize::new(cfg.offline),
            cfg,
            clock: SimClock::new(),
            sessions: Mutex::new(VecDeque::new()),
            counters: Counters::default(),
            switches,
            ws_fault: Mutex::new(WsFault::None),
            drop_tx: watch::channel(0).0,
        }
    }

    pub(super) fn authorized(&self, headers: &HeaderMap) -> bool {
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

    pub(super) fn unauthorized(&self) -> Response {
        self.counters.unauthorized.fetch_add(1, Ordering::SeqCst);
        json_response(StatusCode::UNAUTHORIZED, PRIVATE_BODY)
    }

    /// Applies the HTTP fault to a ready JSON answer.
    pub(super) async fn answer(&self, body: String) -> Response {
        self.switches.delay().await;
        let fault = self.switches.fault();
        match fault {
            Fault::None | Fault::MillionOnline | Fault::HugeNodeList => {
                json_response(StatusCode::OK, body)
            }
            Fault::Hang => {
                self.switches.stopped().await;
                StatusCode::SERVICE_UNAVAILABLE.into_response()
            }
            Fault::Truncated => json_response(StatusCode::OK, first_half(&body)),
            Fault::Html => proxy_page(),
            Fault::Status500 => server_error_page(),
        }
    }

    /// `{hash, version}`, as `/api/version` and `common:getVersion` answer.
    pub(super) fn version_data(&self) -> Value {
        let hash = format!("{:016x}{:016x}", mix(self.cfg.seed), mix(self.cfg.seed ^ 1));
        json!({"hash": format!("{hash}{:08x}", mix(7) as u32), "version": self.cfg.version})
    }

    pub(super) fn world(&self) -> World<'_> {
        World::new(
            &self.cfg,
            &self.clock,
            self.nodes.load(Ordering::SeqCst),
            self.offline.load(Ordering::SeqCst),
        )
    }
}

/// The HTTP routes; the handle adds the WebSocket one and the state.
pub(super) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/api/version", get(version))
        .route("/api/public", get(public))
        .route("/api/me", get(me))
        .route("/api/login", post(login))
        .route("/api/nodes", get(nodes))
        .route("/api/records/ping", get(ping_records))
}

/// Any other path: Go's router's plain 404.
pub(super) async fn not_found(State(sh): State<Arc<Shared>>) -> Response {
    sh.counters.not_found.fetch_add(1, Ordering::SeqCst);
    (StatusCode::NOT_FOUND, "404 page not found").into_response()
}

/// Public even on private sites (notes).
async fn version(State(sh): State<Arc<Shared>>) -> Response {
    sh.switches.delay().await;
    json_response(StatusCode::OK, success(sh.version_data()))
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
    let body = match sh.switches.fault() {
        Fault::HugeNodeList => hostile::huge_node_list().to_owned(),
        _ => success(sh.world().node_list()),
    };
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
