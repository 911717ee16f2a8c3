//! The Komari client: HTTP API calls with the target's credential, and the one WebSocket to
//! `/api/clients` kept open across polls.
//!
//! Each password login notifies the server's owner, so it logs in only when it has no session
//! or the server answered 401, and then at most once a poll. The WebSocket itself is
//! `socket.rs`; this client opens it with the credential.

use std::time::Duration;

use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, COOKIE, SET_COOKIE};
use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use serde_json::json;
use url::Url;

use super::model::{parse_envelope, refused, Envelope, Live};
use super::socket::{self, Connection, LiveSocket, Reconnect, Socket};
use crate::util::http::{self, MAX_BODY_BYTES};
use crate::util::{envelope_error, ReloginBudget, RowCut};
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

pub(super) struct KomariClient {
    http: reqwest::Client,
    /// The target URL with a trailing slash, so API paths join below any path prefix.
    base: Url,
    ws_url: Url,
    origin: HeaderValue,
    auth: Auth,
    session: Option<Secret>,
    relogin: ReloginBudget,
    connect_timeout: Duration,
    socket: LiveSocket,
    /// Entries read per list of one answer.
    max_rows: usize,
    /// Entries this poll's answers listed past `max_rows`.
    rows_cut: RowCut,
}

impl KomariClient {
    pub(super) fn new(
        url: &Url,
        auth: Auth,
        timeout: Duration,
        ws_max_age: Duration,
        max_rows: usize,
    ) -> Self {
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
            relogin: ReloginBudget::default(),
            connect_timeout: timeout.min(Duration::from_secs(5)),
            socket: LiveSocket::new(ws_max_age),
            max_rows,
            rows_cut: RowCut::default(),
        }
    }

    /// Replacement WebSocket connections opened so far, per reason.
    pub(super) fn reconnects(&self) -> impl Iterator<Item = (Reconnect, u64)> + '_ {
        self.socket.reconnects()
    }

    /// A new poll: a re-login is allowed again.
    pub(super) fn begin_poll(&mut self) {
        self.relogin.new_poll();
    }

    /// Ends a poll: entries its answers listed past `max_rows` become one `limit` error.
    pub(super) fn finish_poll(&self, ctx: &mut PollContext) {
        self.rows_cut
            .finish(ctx, &format!("max_rows = {}", self.max_rows));
    }

    /// `GET <path>` and its envelope's `data`, logging in again after a 401 (once a poll).
    pub(super) async fn get<T: DeserializeOwned + Default + Send + 'static>(
        &mut self,
        ctx: &mut PollContext,
        path: &str,
    ) -> Result<T, PollError> {
        self.ensure_session(ctx).await?;
        match self.fetch(path).await {
            Err(e) if e.reason() == Reason::Auth && self.can_relogin() => {
                self.session = None;
                self.ensure_session(ctx).await?;
                self.fetch(path).await
            }
            result => result,
        }
    }

    /// `GET <path>` with the current credential, never logging in: safe to run concurrently.
    pub(super) async fn fetch<T: DeserializeOwned + Default + Send + 'static>(
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
        let path_owned = path.to_string();
        self.rows_cut
            .decode_body(self.max_rows, body, move |b| decode(&path_owned, b))
            .await?
    }

    /// `POST <path>` with a JSON body and the credential, logging in again after a 401 (once a
    /// poll). Any other answer is handed back with its status, for the caller to judge.
    pub(super) async fn post_json(
        &mut self,
        ctx: &mut PollContext,
        path: &str,
        body: Vec<u8>,
    ) -> Result<(StatusCode, Vec<u8>), PollError> {
        self.ensure_session(ctx).await?;
        let answer = self.send_post(path, body.clone()).await?;
        if answer.0 == StatusCode::UNAUTHORIZED && self.can_relogin() {
            self.session = None;
            self.ensure_session(ctx).await?;
            return self.send_post(path, body).await;
        }
        Ok(answer)
    }

    async fn send_post(
        &self,
        path: &str,
        body: Vec<u8>,
    ) -> Result<(StatusCode, Vec<u8>), PollError> {
        let url = self
            .base
            .join(path)
            .map_err(|e| PollError::http(format!("bad path {path:?}: {e}")))?;
        let mut request = self
            .http
            .post(url)
            .header(CONTENT_TYPE, "application/json")
            .body(body);
        if let Some(auth) = self.auth_header() {
            request = request.header(auth.0, auth.1);
        }
        let resp = http::send(request).await?;
        let status = resp.status();
        Ok((status, http::read_limited(resp, MAX_BODY_BYTES).await?))
    }

    /// Runs `decode` on `body` with every list cut at `max_rows` (the cut counted for this
    /// poll), off the async runtime when the body is large.
    pub(super) async fn decode<R: Send + 'static>(
        &self,
        body: Vec<u8>,
        decode: impl FnOnce(&[u8]) -> R + Send + 'static,
    ) -> Result<R, PollError> {
        self.rows_cut.decode_body(self.max_rows, body, decode).await
    }

    /// One `get` over the WebSocket: every node's latest report and the online list.
    pub(super) async fn live(&mut self, ctx: &mut PollContext) -> Result<Live, PollError> {
        let conn = match self.socket.reusable().await {
            Some(conn) => conn,
            None => self.connect(ctx).await?,
        };
        self.socket.get(conn, self.max_rows, &self.rows_cut).await
    }

    /// Opens the WebSocket, logging in again when the upgrade is answered 401 (once a poll). At
    /// most one attempt a poll: the scheduler's backoff paces a failing server, and a server
    /// that comes back is reconnected to at the next poll.
    async fn connect(&mut self, ctx: &mut PollContext) -> Result<Connection, PollError> {
        self.ensure_session(ctx).await?;
        let result = match self.open().await {
            Err(e) if e.reason() == Reason::Auth && self.can_relogin() => {
                self.session = None;
                self.ensure_session(ctx).await?;
                self.open().await
            }
            result => result,
        };
        Ok(self.socket.opened(result?))
    }

    async fn open(&self) -> Result<Socket, PollError> {
        let (url, origin) = (&self.ws_url, &self.origin);
        socket::open(url, origin, self.auth_header(), self.connect_timeout).await
    }

    /// Logs in when the target uses a password and there is no session.
    async fn ensure_session(&mut self, ctx: &mut PollContext) -> Result<(), PollError> {
        let Auth::Login { username, password } = &self.auth else {
            return Ok(());
        };
        if self.session.is_some() {
            return Ok(());
        }
        self.relogin.logging_in(ctx);
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
        Ok(())
    }

    /// A 401 may mean the session expired: worth one more login, unless this poll made one.
    fn can_relogin(&self) -> bool {
        matches!(self.auth, Auth::Login { .. }) && self.relogin.allows_relogin()
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

fn decode<T: DeserializeOwned + Default + Send + 'static>(
    path: &str,
    body: &[u8],
) -> Result<T, PollError> {
    parse_envelope(body).map_err(|e| match e {
        Envelope::NotJson => PollError::decode(format!("{path}: answer is not JSON")),
        Envelope::Failed(m) => envelope_error(path, &m, None),
        Envelope::BadData(m) => PollError::decode(format!("{path}: {m}")),
    })
}

/// The value of `session_token` in one `Set-Cookie` header.
fn session_token_of(set_cookie: &str) -> Option<String> {
    let pair = set_cookie.split(';').next()?.trim();
    let value = pair.strip_prefix("session_token=")?;
    (!value.is_empty()).then(|| value.to_string())
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
            100,
        );
        assert_eq!(c.ws_url.as_str(), "wss://status.example.com/api/clients");
        assert_eq!(c.origin, "https://status.example.com");
        let c = KomariClient::new(
            &Url::parse("http://10.0.0.5:25774/komari").unwrap(),
            auth,
            t,
            t,
            100,
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
