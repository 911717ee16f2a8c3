//! The Komari client: HTTP API calls with the target's credential, and the one WebSocket to
//! `/api/clients` kept open across polls.
//!
//! Each password login notifies the server's owner, so it logs in only when it has no session
//! or the server answered 401. The WebSocket is taken out of the client for the length of a
//! request: a poll cancelled mid-read drops the socket with it, so a late reply can never be
//! read as the next poll's answer.

use std::time::Duration;

use futures_util::{FutureExt, SinkExt, StreamExt};
use reqwest::header::{HeaderValue, AUTHORIZATION, COOKIE, ORIGIN, SET_COOKIE, USER_AGENT};
use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use serde_json::json;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use url::Url;

use super::model::{parse_envelope, Envelope, Live};
use crate::util::http::{self, MAX_BODY_BYTES};
use fleet_core::config::Secret;
use fleet_core::driver::{PollContext, PollError, Reason};

/// How the client proves who it is.
#[derive(Debug, Clone)]
pub(super) enum Auth {
    /// Public sites.
    Anonymous,
    /// `Authorization: Bearer <key>`.
    ApiKey(Secret),
    /// `POST /api/login`, then the `session_token` cookie.
    Login { username: String, password: Secret },
}

/// Why a WebSocket was replaced, the label of the reconnect counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reconnect {
    /// Closed by the server or the network, or failed mid-request.
    Dropped,
    /// Closed by us after `ws_max_age`, so proxies and load balancers never see a stale socket.
    Refresh,
}

impl Reconnect {
    pub const ALL: [Reconnect; 2] = [Reconnect::Dropped, Reconnect::Refresh];

    pub fn label(self) -> &'static str {
        match self {
            Reconnect::Dropped => "dropped",
            Reconnect::Refresh => "refresh",
        }
    }
}

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

struct Connection {
    socket: Socket,
    opened: Instant,
}

pub(super) struct KomariClient {
    http: reqwest::Client,
    /// The target URL with a trailing slash, so API paths join below any path prefix.
    base: Url,
    ws_url: Url,
    origin: HeaderValue,
    auth: Auth,
    session: Option<Secret>,
    connect_timeout: Duration,
    ws_max_age: Duration,
    ws: Option<Connection>,
    /// Set while a socket is lost and not yet replaced.
    pending_reconnect: Option<Reconnect>,
    /// Replacement connections opened, by [`Reconnect::ALL`] index.
    reconnects: [u64; 2],
}

impl KomariClient {
    pub(super) fn new(url: &Url, auth: Auth, timeout: Duration, ws_max_age: Duration) -> Self {
        let mut base = url.clone();
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        let mut ws_url = base.join("api/clients").unwrap_or_else(|_| base.clone());
        let scheme = if url.scheme() == "https" { "wss" } else { "ws" };
        // http→ws and https→wss are both allowed scheme changes for `Url`.
        let _ = ws_url.set_scheme(scheme);
        // Servers since 1.0.5 refuse upgrades without an Origin naming the server itself.
        let origin = HeaderValue::from_str(&url.origin().ascii_serialization())
            .unwrap_or_else(|_| HeaderValue::from_static("null"));
        KomariClient {
            http: http::client(timeout),
            base,
            ws_url,
            origin,
            auth,
            session: None,
            connect_timeout: timeout.min(Duration::from_secs(5)),
            ws_max_age,
            ws: None,
            pending_reconnect: None,
            reconnects: [0; 2],
        }
    }

    /// Replacement WebSocket connections opened so far, per reason.
    pub(super) fn reconnects(&self) -> impl Iterator<Item = (Reconnect, u64)> + '_ {
        Reconnect::ALL.into_iter().zip(self.reconnects)
    }

    /// `GET <path>` and its envelope's `data`, logging in again once after a 401.
    pub(super) async fn get<T: DeserializeOwned + Default>(
        &mut self,
        ctx: &mut PollContext,
        path: &str,
    ) -> Result<T, PollError> {
        let fresh = self.ensure_session(ctx).await?;
        match self.fetch(path).await {
            Err(e) if e.reason() == Reason::Auth && self.can_relogin(fresh) => {
                self.session = None;
                self.ensure_session(ctx).await?;
                self.fetch(path).await
            }
            result => result,
        }
    }

    /// `GET <path>` with the current credential, never logging in: safe to run concurrently.
    pub(super) async fn fetch<T: DeserializeOwned + Default>(
        &self,
        path: &str,
    ) -> Result<T, PollError> {
        let url = self
            .base
            .join(path)
            .map_err(|e| PollError::http(format!("bad path {path:?}: {e}")))?;
        let mut request = self.http.get(url);
        if let Some(auth) = self.auth_header() {
            request = request.header(auth.0, auth.1);
        }
        let resp = http::send(request).await?;
        let status = resp.status();
        let body = http::read_limited(resp, MAX_BODY_BYTES).await?;
        if !status.is_success() {
            return Err(refused(path, status, &body));
        }
        decode(path, &body)
    }

    /// One `get` over the WebSocket: every node's latest report and the online list.
    pub(super) async fn live(&mut self, ctx: &mut PollContext) -> Result<Live, PollError> {
        let mut conn = match self.ws.take() {
            Some(conn) if conn.opened.elapsed() >= self.ws_max_age => {
                close(conn).await;
                self.pending_reconnect = Some(Reconnect::Refresh);
                self.connect(ctx).await?
            }
            Some(mut conn) => {
                if is_open(&mut conn.socket) {
                    conn
                } else {
                    self.pending_reconnect = Some(Reconnect::Dropped);
                    self.connect(ctx).await?
                }
            }
            None => self.connect(ctx).await?,
        };
        // Until this request completes, the socket counts as lost (also if the poll is cancelled).
        self.pending_reconnect = Some(Reconnect::Dropped);
        let text = request(&mut conn.socket).await?;
        let parsed = parse_envelope::<Live>(text.as_bytes());
        if matches!(parsed, Err(Envelope::NotJson | Envelope::BadData(_))) {
            // A socket that answered garbage (a confused proxy, a half-restarted server) is not
            // trusted with the next request: the next poll opens a fresh one.
            close(conn).await;
        } else {
            self.pending_reconnect = None;
            self.ws = Some(conn);
        }
        parsed.map_err(|e| match e {
            Envelope::NotJson => PollError::decode("WebSocket reply is not JSON"),
            Envelope::Failed(m) => PollError::api(format!("WebSocket reply: {m}")),
            Envelope::BadData(m) => PollError::decode(format!("WebSocket reply: {m}")),
        })
    }

    /// Opens the WebSocket, logging in again once when the upgrade is answered 401. At most one
    /// attempt a poll: the scheduler's backoff paces a failing server, and a server that comes
    /// back is reconnected to at the next poll.
    async fn connect(&mut self, ctx: &mut PollContext) -> Result<Connection, PollError> {
        let fresh = self.ensure_session(ctx).await?;
        let result = match self.open().await {
            Err(e) if e.reason() == Reason::Auth && self.can_relogin(fresh) => {
                self.session = None;
                self.ensure_session(ctx).await?;
                self.open().await
            }
            result => result,
        };
        let socket = result?;
        if let Some(reason) = self.pending_reconnect.take() {
            self.reconnects[reason as usize] += 1;
        }
        Ok(Connection {
            socket,
            opened: Instant::now(),
        })
    }

    async fn open(&self) -> Result<Socket, PollError> {
        let mut request = self
            .ws_url
            .as_str()
            .into_client_request()
            .map_err(|e| PollError::connect(format!("WebSocket: {e}")))?;
        let headers = request.headers_mut();
        headers.insert(ORIGIN, self.origin.clone());
        headers.insert(
            USER_AGENT,
            HeaderValue::from_static(concat!("fleet-exporter/", env!("CARGO_PKG_VERSION"))),
        );
        if let Some((name, value)) = self.auth_header() {
            headers.insert(name, value);
        }
        let config = WebSocketConfig::default()
            .max_message_size(Some(MAX_BODY_BYTES))
            .max_frame_size(Some(MAX_BODY_BYTES));
        let connect = tokio_tungstenite::connect_async_with_config(request, Some(config), true);
        match tokio::time::timeout(self.connect_timeout, connect).await {
            Err(_) => Err(PollError::timeout()),
            Ok(Ok((socket, _))) => Ok(socket),
            Ok(Err(e)) => Err(upgrade_error(e)),
        }
    }

    /// Logs in when the target uses a password and there is no session. True when it did.
    async fn ensure_session(&mut self, ctx: &mut PollContext) -> Result<bool, PollError> {
        let Auth::Login { username, password } = &self.auth else {
            return Ok(false);
        };
        if self.session.is_some() {
            return Ok(false);
        }
        ctx.logins += 1;
        let url = self
            .base
            .join("api/login")
            .map_err(|e| PollError::http(e.to_string()))?;
        let body = json!({"username": username, "password": password.expose()});
        let resp = http::send(self.http.post(url).json(&body)).await?;
        let status = resp.status();
        let cookie = resp
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(session_token_of);
        let body = http::read_limited(resp, MAX_BODY_BYTES).await?;
        if !status.is_success() {
            let e = refused("api/login", status, &body);
            return Err(match e.reason() {
                Reason::Auth | Reason::Http => {
                    PollError::auth(format!("login refused: {}", e.detail()))
                }
                _ => e,
            });
        }
        #[derive(serde::Deserialize, Default)]
        struct LoginData {
            #[serde(rename = "set-cookie", default)]
            set_cookie: std::collections::HashMap<String, String>,
        }
        let from_body = parse_envelope::<LoginData>(&body)
            .ok()
            .and_then(|d| d.set_cookie.get("session_token").cloned());
        let token = cookie
            .or(from_body)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| PollError::auth("login answered without a session_token"))?;
        self.session = Some(Secret::new(token));
        Ok(true)
    }

    /// A 401 may mean the session expired: worth one more login, unless this poll just made one.
    fn can_relogin(&self, just_logged_in: bool) -> bool {
        matches!(self.auth, Auth::Login { .. }) && !just_logged_in
    }

    fn auth_header(&self) -> Option<(reqwest::header::HeaderName, HeaderValue)> {
        let (name, value) = match (&self.auth, &self.session) {
            (Auth::ApiKey(key), _) => (AUTHORIZATION, format!("Bearer {}", key.expose())),
            (Auth::Login { .. }, Some(token)) => {
                (COOKIE, format!("session_token={}", token.expose()))
            }
            _ => return None,
        };
        let mut value = HeaderValue::from_str(&value).ok()?;
        value.set_sensitive(true);
        Some((name, value))
    }
}

/// A non-success answer as an error, with the server's own message when it sent one.
fn refused(path: &str, status: StatusCode, body: &[u8]) -> PollError {
    let message = match parse_envelope::<serde_json::Value>(body) {
        Err(Envelope::Failed(m)) => format!("HTTP {status}: {m}"),
        _ => format!("HTTP {status}"),
    };
    if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
        PollError::auth(format!("{path}: {message}"))
    } else {
        PollError::http(format!("{path}: {message}"))
    }
}

fn decode<T: DeserializeOwned + Default>(path: &str, body: &[u8]) -> Result<T, PollError> {
    parse_envelope(body).map_err(|e| match e {
        Envelope::NotJson => PollError::decode(format!("{path}: answer is not JSON")),
        Envelope::Failed(m) => PollError::api(format!("{path}: {m}")),
        Envelope::BadData(m) => PollError::decode(format!("{path}: {m}")),
    })
}

/// The value of `session_token` in one `Set-Cookie` header.
fn session_token_of(set_cookie: &str) -> Option<String> {
    let pair = set_cookie.split(';').next()?.trim();
    let value = pair.strip_prefix("session_token=")?;
    (!value.is_empty()).then(|| value.to_string())
}

fn upgrade_error(e: tungstenite::Error) -> PollError {
    match e {
        tungstenite::Error::Http(resp) => {
            let status = resp.status();
            let body = resp.body().as_deref().unwrap_or_default();
            let err = refused("WebSocket upgrade", status, body);
            if err.reason() == Reason::Auth && status == StatusCode::FORBIDDEN {
                return PollError::auth(format!(
                    "{} (servers refuse an Origin that does not match their address)",
                    err.detail()
                ));
            }
            err
        }
        tungstenite::Error::Io(e) => PollError::connect(format!("WebSocket: {e}")),
        tungstenite::Error::Tls(e) => PollError::connect(format!("WebSocket TLS: {e}")),
        e @ (tungstenite::Error::Url(_) | tungstenite::Error::HttpFormat(_)) => {
            PollError::connect(format!("WebSocket: {e}"))
        }
        e => PollError::http(format!("WebSocket upgrade: {e}")),
    }
}

/// True unless the server has closed the socket while it sat idle (proxies close idle sockets
/// after about a minute). Reads only what has already arrived; never waits.
fn is_open(socket: &mut Socket) -> bool {
    loop {
        match socket.next().now_or_never() {
            None => return true,
            // The server never pushes: anything else waiting is noise from before, skipped.
            Some(Some(Ok(Message::Text(_) | Message::Binary(_) | Message::Ping(_))))
            | Some(Some(Ok(Message::Pong(_) | Message::Frame(_)))) => continue,
            Some(Some(Ok(Message::Close(_)))) | Some(Some(Err(_))) | Some(None) => return false,
        }
    }
}

/// Sends `get` and reads the reply: the first text frame.
async fn request(socket: &mut Socket) -> Result<String, PollError> {
    socket
        .send(Message::text("get"))
        .await
        .map_err(|e| PollError::connect(format!("WebSocket send: {e}")))?;
    loop {
        match socket.next().await {
            Some(Ok(Message::Text(text))) => return Ok(text.to_string()),
            Some(Ok(Message::Binary(bytes))) => {
                return String::from_utf8(bytes.to_vec())
                    .map_err(|_| PollError::decode("WebSocket reply is not UTF-8"))
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
            Some(Ok(Message::Close(frame))) => {
                let why = frame.map_or_else(String::new, |f| format!(" ({})", f.code));
                return Err(PollError::connect(format!(
                    "WebSocket closed by the server mid-request{why}"
                )));
            }
            // An oversized reply is a bad answer, not a lost connection.
            Some(Err(e @ tungstenite::Error::Capacity(_))) => {
                return Err(PollError::decode(format!("WebSocket reply: {e}")))
            }
            Some(Err(e)) => return Err(PollError::connect(format!("WebSocket: {e}"))),
            None => {
                return Err(PollError::connect(
                    "WebSocket closed by the server mid-request",
                ))
            }
        }
    }
}

/// A polite close that never holds up the poll.
async fn close(mut conn: Connection) {
    let _ = tokio::time::timeout(Duration::from_millis(200), conn.socket.close(None)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_origin_and_subpaths() {
        let auth = Auth::Anonymous;
        let t = Duration::from_secs(5);
        let c = KomariClient::new(
            &Url::parse("https://status.example.com").unwrap(),
            auth.clone(),
            t,
            t,
        );
        assert_eq!(c.ws_url.as_str(), "wss://status.example.com/api/clients");
        assert_eq!(c.origin, "https://status.example.com");
        let c = KomariClient::new(
            &Url::parse("http://10.0.0.5:25774/komari").unwrap(),
            auth,
            t,
            t,
        );
        assert_eq!(c.ws_url.as_str(), "ws://10.0.0.5:25774/komari/api/clients");
        assert_eq!(c.origin, "http://10.0.0.5:25774");
        assert_eq!(
            c.base.join("api/nodes").unwrap().as_str(),
            "http://10.0.0.5:25774/komari/api/nodes"
        );
    }

    #[test]
    fn finds_the_session_cookie() {
        assert_eq!(
            session_token_of("session_token=abcd1234; Path=/; Max-Age=2592000; HttpOnly"),
            Some("abcd1234".into())
        );
        assert_eq!(session_token_of("other=1; Path=/"), None);
        assert_eq!(session_token_of("session_token=; Path=/"), None);
    }

    #[test]
    fn private_site_answer_is_an_auth_error_with_the_servers_words() {
        let body = include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../fixtures/komari/private_site_401.json"
        ));
        let e = refused("api/nodes", StatusCode::UNAUTHORIZED, body);
        assert_eq!(
            e,
            PollError::auth(
                "api/nodes: HTTP 401 Unauthorized: Private site is enabled, please login first."
            )
        );
        assert_eq!(
            refused("api/nodes", StatusCode::BAD_GATEWAY, b"<html>"),
            PollError::http("api/nodes: HTTP 502 Bad Gateway")
        );
    }
}
