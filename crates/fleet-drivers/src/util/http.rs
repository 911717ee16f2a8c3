//! HTTP plumbing every driver shares: one client setup, bounded body reads, and one mapping from
//! transport failures to poll error reasons.

use std::error::Error as _;
use std::time::Duration;

use fleet_core::driver::PollError;

/// Device answers are small (a 2,000-node Komari live state is well under a megabyte per hundred
/// nodes); anything far larger is a fault, not data worth buffering.
pub const MAX_BODY_BYTES: usize = 8 << 20;

/// A client for one target. `timeout` bounds each request, below the poll's own deadline.
pub fn client(timeout: Duration) -> reqwest::Client {
    builder(timeout).build().unwrap_or_default()
}

/// [`client`]'s settings, for a driver that adds its own (a target's TLS trust).
pub fn builder(timeout: Duration) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .user_agent(concat!("fleet-exporter/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
}

/// Sends a request, with a failure classified by [`transport_error`].
pub async fn send(request: reqwest::RequestBuilder) -> Result<reqwest::Response, PollError> {
    request.send().await.map_err(transport_error)
}

/// Reads a successful answer's body, refusing more than `limit` bytes.
pub async fn read_body(resp: reqwest::Response, limit: usize) -> Result<Vec<u8>, PollError> {
    let status = resp.status();
    if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
        return Err(PollError::auth(format!("HTTP {status}")));
    }
    if !status.is_success() {
        return Err(PollError::http(format!("HTTP {status}")));
    }
    read_limited(resp, limit).await
}

/// Reads any answer's body, whatever its status, refusing more than `limit` bytes.
pub async fn read_limited(mut resp: reqwest::Response, limit: usize) -> Result<Vec<u8>, PollError> {
    if resp.content_length().is_some_and(|n| n > limit as u64) {
        return Err(PollError::decode(format!(
            "answer larger than {limit} bytes"
        )));
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(transport_error)? {
        if body.len() + chunk.len() > limit {
            return Err(PollError::decode(format!(
                "answer larger than {limit} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Classifies a transport error. The URL is dropped from the message (it could carry
/// credentials) and the cause chain is kept, since reqwest's own text alone says little.
pub fn transport_error(e: reqwest::Error) -> PollError {
    let e = e.without_url();
    let mut msg = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    if e.is_timeout() {
        PollError::timeout()
    } else if e.is_connect() {
        PollError::connect(msg)
    } else if e.is_decode() || e.is_body() {
        PollError::decode(msg)
    } else {
        PollError::http(msg)
    }
}
