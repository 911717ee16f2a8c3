//! HTTP plumbing every driver shares: one client setup, bounded body reads, and one mapping from
//! transport failures to poll error reasons.
//!
//! A connection serves the requests of one poll and is closed once it has been idle for
//! [`IDLE_CONNECTION`]: within a poll requests follow one another closely, so they share it;
//! between polls an open connection would only hold memory (hyper keeps a read buffer as large as
//! the answers it last read, and a write buffer and channel beside it). A connect per poll is
//! the price: at fleet size 0.6% of a core for 15 MiB (BENCHMARKS.md).

use std::error::Error as _;
use std::time::Duration;

use fleet_core::driver::PollError;

/// Device answers are small (a 2,000-node Komari live state is well under a megabyte per hundred
/// nodes); anything far larger is a fault, not data worth buffering.
pub const MAX_BODY_BYTES: usize = 8 << 20;

/// How long a connection stays open with no request on it. Longer than the gaps between one
/// poll's requests (milliseconds; the IoT platform's pace at its default of 2 a second, 0.5 s),
/// shorter than the gap between polls (the default interval is 30 s). An idle connection held
/// about 90 KB, mostly hyper's read buffer, which grows with the answers read (up to 400 KB) and
/// stays that size while the connection waits: 21.7 MiB for the 238 connections of the fleet
/// benchmark's 225 targets (BENCHMARKS.md, "RSS per series, second round").
pub const IDLE_CONNECTION: Duration = Duration::from_secs(2);

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
        .pool_idle_timeout(IDLE_CONNECTION)
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Connections a loopback HTTP/1.1 server accepted, and how many of them the client closed.
    #[derive(Default)]
    struct Connections {
        accepted: AtomicUsize,
        closed: AtomicUsize,
    }

    /// A keep-alive HTTP/1.1 server on 127.0.0.1 answering every GET with `ok`.
    async fn serve(connections: Arc<Connections>) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                connections.accepted.fetch_add(1, Ordering::SeqCst);
                let connections = connections.clone();
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buf = [0u8; 1024];
                    loop {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => request.extend_from_slice(&buf[..n]),
                        }
                        // GETs have no body: each blank line ends one request.
                        while let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n") {
                            request.drain(..end + 4);
                            let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                            if stream.write_all(answer).await.is_err() {
                                return;
                            }
                        }
                    }
                    connections.closed.fetch_add(1, Ordering::SeqCst);
                });
            }
        });
        url
    }

    #[tokio::test]
    async fn one_polls_requests_share_a_connection_that_is_closed_once_idle() {
        let connections = Arc::new(Connections::default());
        let url = serve(connections.clone()).await;
        let http = client(Duration::from_secs(5));
        for _ in 0..3 {
            let answer = send(http.get(&url)).await.unwrap();
            assert_eq!(read_body(answer, 16).await.unwrap(), b"ok");
        }
        assert_eq!(connections.accepted.load(Ordering::SeqCst), 1);
        // Closed after IDLE_CONNECTION and the pool's next check: well before reqwest's default
        // of 90 s, and while the client is still alive.
        let waited = tokio::time::Instant::now();
        while connections.closed.load(Ordering::SeqCst) == 0 {
            assert!(
                waited.elapsed() < 10 * IDLE_CONNECTION,
                "the idle connection is still open"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(connections.closed.load(Ordering::SeqCst), 1);
        // The next poll connects again.
        let answer = send(http.get(&url)).await.unwrap();
        assert_eq!(read_body(answer, 16).await.unwrap(), b"ok");
        assert_eq!(connections.accepted.load(Ordering::SeqCst), 2);
    }
}
