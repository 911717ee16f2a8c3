//! The one WebSocket to Komari's `/api/clients`, kept open across polls.
//!
//! Every poll sends `get` and reads the reply: every node's latest report and the online list.
//! The socket is taken out of its slot for the length of a request, so a poll cancelled mid-read
//! drops the socket with it and a late reply can never be read as the next poll's answer. A
//! socket is replaced when the server closed it, when it answered garbage, and after
//! `ws_max_age` even when healthy; each replacement is counted by why.

use std::time::Duration;

use futures_util::{FutureExt, SinkExt, StreamExt};
use reqwest::header::{HeaderName, HeaderValue, ORIGIN, USER_AGENT};
use reqwest::StatusCode;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use url::Url;

use super::model::{parse_envelope, refused, Envelope, Live};
use crate::util::http::MAX_BODY_BYTES;
use crate::util::{envelope_error, RowCut};
use fleet_core::driver::{PollError, Reason};

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

/// The open socket between polls, and the count of its replacements.
pub(super) struct LiveSocket {
    conn: Option<Connection>,
    max_age: Duration,
    /// Set while a socket is lost and not yet replaced.
    pending_reconnect: Option<Reconnect>,
    /// Replacement connections opened, by [`Reconnect::ALL`] index.
    reconnects: [u64; 2],
}

impl LiveSocket {
    pub(super) fn new(max_age: Duration) -> Self {
        LiveSocket {
            conn: None,
            max_age,
            pending_reconnect: None,
            reconnects: [0; 2],
        }
    }

    /// Replacement WebSocket connections opened so far, per reason.
    pub(super) fn reconnects(&self) -> impl Iterator<Item = (Reconnect, u64)> + '_ {
        Reconnect::ALL.into_iter().zip(self.reconnects)
    }

    /// The kept socket when it can serve this poll; `None` when there is none, or it was closed
    /// (by the server, or by us for its age) and must be replaced.
    pub(super) async fn reusable(&mut self) -> Option<Connection> {
        match self.conn.take() {
            Some(conn) if conn.opened.elapsed() >= self.max_age => {
                close(conn).await;
                self.pending_reconnect = Some(Reconnect::Refresh);
                None
            }
            Some(mut conn) => {
                if is_open(&mut conn.socket) {
                    Some(conn)
                } else {
                    self.pending_reconnect = Some(Reconnect::Dropped);
                    None
                }
            }
            None => None,
        }
    }

    /// A newly opened socket, counted as a replacement when one was lost.
    pub(super) fn opened(&mut self, socket: Socket) -> Connection {
        if let Some(reason) = self.pending_reconnect.take() {
            self.reconnects[reason as usize] += 1;
        }
        Connection {
            socket,
            opened: Instant::now(),
        }
    }

    /// One `get` over `conn`, which is kept for the next poll unless the request failed or the
    /// reply was garbage.
    pub(super) async fn get(
        &mut self,
        mut conn: Connection,
        max_rows: usize,
        rows_cut: &RowCut,
    ) -> Result<Live, PollError> {
        // Until this request completes, the socket counts as lost (also if the poll is cancelled).
        self.pending_reconnect = Some(Reconnect::Dropped);
        let text = request(&mut conn.socket).await?;
        let parsed = rows_cut
            .decode_body(max_rows, text.into_bytes(), parse_envelope::<Live>)
            .await?;
        if matches!(parsed, Err(Envelope::NotJson | Envelope::BadData(_))) {
            // A socket that answered garbage (a confused proxy, a half-restarted server) is not
            // trusted with the next request: the next poll opens a fresh one.
            close(conn).await;
        } else {
            self.pending_reconnect = None;
            self.conn = Some(conn);
        }
        parsed.map_err(|e| match e {
            Envelope::NotJson => PollError::decode("WebSocket reply is not JSON"),
            Envelope::Failed(m) => envelope_error("WebSocket reply", &m, None),
            Envelope::BadData(m) => PollError::decode(format!("WebSocket reply: {m}")),
        })
    }
}

pub(super) type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub(super) struct Connection {
    socket: Socket,
    opened: Instant,
}

/// Opens a WebSocket to `url` with `origin` and the credential header, within `timeout`.
pub(super) async fn open(
    url: &Url,
    origin: &HeaderValue,
    auth: Option<(HeaderName, HeaderValue)>,
    timeout: Duration,
) -> Result<Socket, PollError> {
    let mut request = url
        .as_str()
        .into_client_request()
        .map_err(|e| PollError::connect(format!("WebSocket: {e}")))?;
    let headers = request.headers_mut();
    headers.insert(ORIGIN, origin.clone());
    headers.insert(
        USER_AGENT,
        HeaderValue::from_static(concat!("fleet-exporter/", env!("CARGO_PKG_VERSION"))),
    );
    if let Some((name, value)) = auth {
        headers.insert(name, value);
    }
    let config = WebSocketConfig::default()
        .max_message_size(Some(MAX_BODY_BYTES))
        .max_frame_size(Some(MAX_BODY_BYTES));
    let connect = tokio_tungstenite::connect_async_with_config(request, Some(config), true);
    match tokio::time::timeout(timeout, connect).await {
        Err(_) => Err(PollError::timeout()),
        Ok(Ok((socket, _))) => Ok(socket),
        Ok(Err(e)) => Err(upgrade_error(e)),
    }
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
