//! The server's WebSocket half, `GET /api/clients`: upgrades refused with 401 (private site),
//! 403 (no matching `Origin`) or 502 (injected); on an open socket the server never pushes, it
//! answers `get` and `get <uuid>` frames, and closes every socket on `drop_connections` or when
//! the simulator stops. The injected [`WsFault`]s replace replies.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::json;

use super::config::{Fault, WsFault};
use super::hostile;
use super::server::Shared;
use super::world::World;
use crate::util::{html_response, json_response, lock};

/// `GET /api/clients`: the upgrade, refused without a credential on a private site, without a
/// matching `Origin` when required, or by the injected fault.
pub(super) async fn upgrade(
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
    loop {
        let msg = tokio::select! {
            msg = socket.recv() => msg,
            _ = dropped.changed() => {
                let _ = socket.send(close_frame(1012, "service restart")).await;
                return;
            }
            _ = sh.switches.stopped() => return,
        };
        let text = match msg {
            Some(Ok(Message::Text(t))) => t.to_string(),
            Some(Ok(Message::Binary(b))) => String::from_utf8_lossy(&b).into_owned(),
            // Pings are answered by the WebSocket layer; the server never pings on its own.
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
        };
        sh.counters.ws_requests.fetch_add(1, Ordering::SeqCst);
        sh.switches.delay().await;
        let fault = *lock(&sh.ws_fault);
        let reply = match fault {
            WsFault::None | WsFault::RefuseUpgrade => {
                let amplify = sh.switches.fault() == Fault::MillionOnline;
                Message::Text(reply(&sh.world(), &text, amplify).into())
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

/// The answer to a text frame: `get` asks for every node, `get <uuid>` for one; `amplify` pads
/// the answer to `get` with a million online ids.
fn reply(world: &World<'_>, text: &str, amplify: bool) -> String {
    let text = text.trim();
    let only = match text {
        "get" => None,
        _ => match text.strip_prefix("get ").map(str::trim) {
            Some(uuid) => Some(uuid),
            None => return INVALID_MESSAGE.to_owned(),
        },
    };
    let live = world.online_and_reports(only);
    if amplify && only.is_none() {
        return hostile::with_million_online(&live);
    }
    json!({"data": live, "status": "success"}).to_string()
}

const INVALID_MESSAGE: &str = r#"{"status":"error","error":"Invalid message"}"#;

fn close_frame(code: u16, reason: &'static str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: reason.into(),
    }))
}

#[cfg(test)]
mod tests {
    use axum::http::{header, HeaderMap};

    use super::*;

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
