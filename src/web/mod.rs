//! The protected endpoint: optional TLS and basic auth for every HTTP path, configured by an
//! exporter-toolkit web config file (`--web.config.file`), as Prometheus' own exporters are,
//! and the one way the exporter serves, with or without them.
//!
//! Policy: a web config is validated whole when it loads, certificates and hashes included, so
//! a bad file fails at startup; the default protects nothing (plain HTTP, no auth). Basic auth
//! is `auth`'s concern, TLS `tls`'s; both notice a changed file by its `Stamp` and pick it up
//! without a restart. Plain and TLS connections, on one listener or many, are served by the
//! same [`serve`] (`serve`'s module keeps the connection cap and the timeouts), through
//! [`Listener`]s.

mod auth;
mod serve;
mod tls;

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::SystemTime;

use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::server::TlsStream;
use tracing::debug;

pub use auth::protect;
use auth::Users;
pub(crate) use serve::hold;
pub use serve::{serve, serve_with, Limits, ListenAddr, Listeners, DEFAULT_MAX_CONNECTIONS};
use tls::{RawTls, TlsListener, TlsSettings};

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct WebConfigError(String);

/// A parsed web config. The default protects nothing: plain HTTP, no auth.
#[derive(Debug, Default)]
pub struct WebConfig {
    tls: Option<TlsSettings>,
    users: Users,
    /// The file it was loaded from: basic-auth users are re-read from it when it changes.
    file: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebConfig {
    tls_server_config: Option<RawTls>,
    #[serde(default)]
    basic_auth_users: BTreeMap<String, String>,
}

impl WebConfig {
    /// Loads and validates a web config file, certificates included; relative paths resolve
    /// against the file's directory.
    pub fn load(path: &Path) -> Result<WebConfig, WebConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| WebConfigError(format!("cannot read {}: {e}", path.display())))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let mut web = Self::parse(&text, base)
            .map_err(|e| WebConfigError(format!("{}: {e}", path.display())))?;
        web.file = Some(path.to_path_buf());
        Ok(web)
    }

    pub fn parse(text: &str, base_dir: &Path) -> Result<WebConfig, WebConfigError> {
        let tree: serde_json::Value = config::Config::builder()
            .add_source(config::File::from_str(text, config::FileFormat::Yaml))
            .build()
            .and_then(|c| c.try_deserialize())
            .map_err(|e| WebConfigError(e.to_string()))?;
        let raw: RawWebConfig =
            serde_json::from_value(tree).map_err(|e| WebConfigError(e.to_string()))?;

        for (user, hash) in &raw.basic_auth_users {
            hash.parse::<bcrypt::HashParts>().map_err(|e| {
                WebConfigError(format!("basic_auth_users.{user}: not a bcrypt hash: {e}"))
            })?;
        }
        let tls = raw
            .tls_server_config
            .map(|t| TlsSettings::new(t, base_dir))
            .transpose()?;
        Ok(WebConfig {
            tls,
            users: Users(raw.basic_auth_users),
            file: None,
        })
    }

    pub fn tls_enabled(&self) -> bool {
        self.tls.is_some()
    }

    pub fn auth_enabled(&self) -> bool {
        !self.users.0.is_empty()
    }
}

/// Where the exporter accepts connections: a TCP listener, with TLS in front of it when the
/// web config has a certificate. Nagle's algorithm is off on every connection: a scrape is
/// written as many pieces, and the kernel would hold the last small one back until the
/// client's delayed ACK, adding 40 ms to a scrape.
pub struct Listener(Accepting);

enum Accepting {
    Plain(TcpListener),
    Tls(TlsListener),
}

impl Listener {
    /// `tcp` as `web` asks: over TLS when it has a certificate, plain otherwise.
    pub fn new(tcp: TcpListener, web: &WebConfig) -> io::Result<Listener> {
        Ok(match &web.tls {
            None => Listener(Accepting::Plain(tcp)),
            Some(settings) => Listener(Accepting::Tls(TlsListener::new(tcp, settings)?)),
        })
    }
}

/// Plain HTTP.
impl From<TcpListener> for Listener {
    fn from(tcp: TcpListener) -> Listener {
        Listener(Accepting::Plain(tcp))
    }
}

impl axum::serve::Listener for Listener {
    type Io = Connection;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Connection, SocketAddr) {
        match &mut self.0 {
            Accepting::Plain(tcp) => {
                // axum's own accept, which backs off on errors such as running out of files.
                let (stream, peer) = axum::serve::Listener::accept(tcp).await;
                if let Err(e) = stream.set_nodelay(true) {
                    debug!(error = %e, "cannot set TCP_NODELAY");
                }
                (Connection(Stream::Plain(stream)), peer)
            }
            // Its connections come handshaken, with Nagle already off.
            Accepting::Tls(tls) => {
                let (stream, peer) = axum::serve::Listener::accept(tls).await;
                (Connection(Stream::Tls(Box::new(stream))), peer)
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        match &self.0 {
            Accepting::Plain(tcp) => tcp.local_addr(),
            Accepting::Tls(tls) => axum::serve::Listener::local_addr(tls),
        }
    }
}

/// One accepted connection, plain or TLS.
pub struct Connection(Stream);

enum Stream {
    Plain(TcpStream),
    /// Boxed: a TLS session's state is far larger than a socket.
    Tls(Box<TlsStream<TcpStream>>),
}

/// Runs `$body` with `$io` bound to the connection's stream, pinned, whichever kind it is.
macro_rules! with_stream {
    ($conn:expr, $io:ident => $body:expr) => {
        match &mut $conn.get_mut().0 {
            Stream::Plain(s) => {
                let $io = Pin::new(s);
                $body
            }
            Stream::Tls(s) => {
                let $io = Pin::new(s);
                $body
            }
        }
    };
}

impl AsyncRead for Connection {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        with_stream!(self, io => io.poll_read(cx, buf))
    }
}

impl AsyncWrite for Connection {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        with_stream!(self, io => io.poll_write(cx, buf))
    }

    // A scrape body goes out as many pieces: vectored writes send them in one call.
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        with_stream!(self, io => io.poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        match &self.0 {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        with_stream!(self, io => io.poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        with_stream!(self, io => io.poll_shutdown(cx))
    }
}

/// A file's modification time and size, `None` when it cannot be read: what tells a changed
/// file from an unchanged one without reading it.
type Stamp = Option<(SystemTime, u64)>;
type Stamps = Vec<Stamp>;

fn stamp(path: &Path) -> Stamp {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<WebConfig, String> {
        WebConfig::parse(text, Path::new(".")).map_err(|e| e.to_string())
    }

    #[test]
    fn unknown_keys_are_named() {
        let err = parse("basic_auth_user:\n  a: b\n").unwrap_err();
        assert!(err.contains("basic_auth_user"), "{err}");
        let err = parse("tls_server_config:\n  cert_file: a\n  key_file: b\n  certfile: c\n")
            .unwrap_err();
        assert!(err.contains("certfile"), "{err}");
    }

    #[test]
    fn user_names_keep_their_case_and_hashes_stay_out_of_debug() {
        let hash = bcrypt::hash("pw", 4).unwrap();
        let web = parse(&format!("basic_auth_users:\n  Alice: '{hash}'\n")).unwrap();
        assert!(web.auth_enabled() && !web.tls_enabled());
        assert!(web.users.0.contains_key("Alice"));
        let debug = format!("{web:?}");
        assert!(debug.contains("Alice") && !debug.contains(&hash), "{debug}");
    }

    #[test]
    fn bad_hashes_and_unverifiable_client_auth_are_refused() {
        let err = parse("basic_auth_users:\n  bob: plaintext\n").unwrap_err();
        assert!(err.contains("basic_auth_users.bob"), "{err}");
        let err = parse(
            "tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: RequestClientCert\n",
        )
        .unwrap_err();
        assert!(err.contains("RequestClientCert"), "{err}");
        let err = parse("tls_server_config:\n  cert_file: /nonexistent.pem\n  key_file: b\n")
            .unwrap_err();
        assert!(err.contains("/nonexistent.pem"), "{err}");
    }

    #[test]
    fn an_empty_file_protects_nothing() {
        let web = parse("").unwrap();
        assert!(!web.auth_enabled() && !web.tls_enabled());
    }
}
