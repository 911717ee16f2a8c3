//! The protected endpoint: optional TLS and basic auth for every HTTP path, configured by an
//! exporter-toolkit web config file (`--web.config.file`), as Prometheus' own exporters are,
//! and the one way the exporter serves, with or without them.
//!
//! Policy: a web config is validated whole when it loads, certificates and hashes included, so
//! a bad file fails at startup; the default protects nothing (plain HTTP, no auth). Basic auth
//! is `auth`'s concern, TLS `tls`'s, response headers and the rate limit `http_server`'s; both
//! auth and TLS notice a changed file by its `Stamp` and pick it up without a restart. Plain
//! and TLS connections, on one listener or many, are served by the same [`serve`] (`serve`'s
//! module keeps the connection cap and the timeouts), through [`Listener`]s.

mod auth;
mod http_server;
mod serve;
mod tls;

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::SystemTime;

use axum::Router;
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::server::TlsStream;
use tracing::{debug, info};

use auth::Users;
use http_server::{HttpSettings, RateLimit, RawHttp, RawRateLimit};
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
    http: HttpSettings,
    rate_limit: Option<RateLimit>,
    /// The file it was loaded from: basic-auth users are re-read from it when it changes.
    file: Option<PathBuf>,
}

/// exporter-toolkit's web config, as written: every key it knows, and no other.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebConfig {
    tls_server_config: Option<RawTls>,
    http_server_config: Option<RawHttp>,
    #[serde(default)]
    basic_auth_users: BTreeMap<String, String>,
    rate_limit: Option<RawRateLimit>,
}

/// A web config holds a few users and certificate paths (or inline PEM): 4 MiB is plenty.
const WEB_CONFIG_MAX_BYTES: u64 = 4 << 20;

impl WebConfig {
    /// Loads and validates a web config file, certificates included; relative paths resolve
    /// against the file's directory.
    pub fn load(path: &Path) -> Result<WebConfig, WebConfigError> {
        // Like the config file: a regular file of sane size, never a pipe that blocks startup.
        let text = fleet_core::config::read_regular_file(path, WEB_CONFIG_MAX_BYTES)
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
        // The path names the key: `tls_server_config: unknown field `certfile`, ...`.
        let raw: RawWebConfig =
            serde_path_to_error::deserialize(tree).map_err(|e| WebConfigError(e.to_string()))?;

        for (user, hash) in &raw.basic_auth_users {
            hash.parse::<bcrypt::HashParts>().map_err(|e| {
                WebConfigError(format!("basic_auth_users.{user}: not a bcrypt hash: {e}"))
            })?;
        }
        let http = HttpSettings::new(raw.http_server_config.unwrap_or_default())?;
        let rate_limit = http_server::rate_limit(raw.rate_limit.unwrap_or_default())?;
        let tls = match raw.tls_server_config {
            Some(t) if t.enabled() => Some(TlsSettings::new(t, base_dir)?),
            Some(_) => {
                info!("tls_server_config names no certificate, key or client auth: serving plain HTTP, as exporter-toolkit does");
                None
            }
            None => None,
        };
        Ok(WebConfig {
            tls,
            users: Users(raw.basic_auth_users),
            http,
            rate_limit,
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

/// `router` as `web` asks: behind its rate limit, with its headers on every response and
/// behind its basic auth, in that order, as exporter-toolkit does (a 429 comes before the
/// credentials are looked at; a 401 carries the headers).
pub fn protect(router: Router, web: &WebConfig) -> Router {
    http_server::apply(auth::protect(router, web), &web.http, web.rate_limit)
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
    fn unknown_keys_are_named_with_their_section() {
        for (yaml, want) in [
            ("http_server_config:\n  http3: true\n", "http_server_config"),
            ("rate_limit:\n  interval: 1s\n  bursts: 2\n", "bursts"),
            (
                "tls_server_config:\n  cert: x\n  ciphers: []\n",
                "tls_server_config",
            ),
        ] {
            let err = parse(yaml).unwrap_err();
            assert!(err.contains(want), "{yaml}: {err}");
        }
    }

    /// Each refusal names the key and the value it cannot honour; none needs a certificate on
    /// disk, so they are checked before any file is read.
    #[test]
    fn what_cannot_be_honoured_is_refused_naming_key_and_value() {
        const T: &str = "tls_server_config:\n  cert_file: a\n  key_file: b\n";
        for (yaml, want) in [
            ("basic_auth_users:\n  bob: plaintext\n".to_string(), &["basic_auth_users.bob"][..]),
            (format!("{T}  client_auth_type: Sometimes\n"), &["client_auth_type", "Sometimes"]),
            (format!("{T}  client_auth_type: RequireAndVerifyClientCert\n"), &["client_ca_file"]),
            (format!("{T}  client_ca_file: ca.pem\n"), &["NoClientCert"]),
            (
                format!("{T}  client_auth_type: VerifyClientCertIfGiven\n  client_ca_file: c\n  client_allowed_sans: [x]\n"),
                &["client_allowed_sans", "VerifyClientCertIfGiven"],
            ),
            (format!("{T}  max_version: TLS11\n"), &["max_version", "TLS11"]),
            (format!("{T}  min_version: TLS14\n"), &["min_version", "TLS14"]),
            (format!("{T}  min_version: TLS13\n  max_version: TLS12\n"), &["min_version TLS13", "max_version TLS12"]),
            (
                format!("{T}  cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA]\n"),
                &["cipher_suites", "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", "CBC"],
            ),
            (format!("{T}  cipher_suites: [TLS_MADE_UP]\n"), &["cipher_suites", "TLS_MADE_UP"]),
            (format!("{T}  curve_preferences: [CurveP521]\n"), &["curve_preferences", "CurveP521"]),
            (format!("{T}  curve_preferences: [Curve25519]\n"), &["curve_preferences", "Curve25519"]),
            ("tls_server_config:\n  cert: x\n  cert_file: a\n  key: y\n".into(), &["cert and cert_file"]),
            ("tls_server_config:\n  key_file: b\n".into(), &["missing one of cert or cert_file"]),
            ("http_server_config:\n  headers:\n    Server: me\n".into(), &["http_server_config.headers.Server"]),
            (
                "http_server_config:\n  headers:\n    X-Frame-Options: allow\n".into(),
                &["http_server_config.headers.X-Frame-Options", "allow", "sameorigin"],
            ),
            ("rate_limit:\n  interval: 1s\n".into(), &["rate_limit.burst"]),
            ("rate_limit:\n  interval: soon\n  burst: 1\n".into(), &["rate_limit.interval", "soon"]),
            ("rate_limit:\n  interval: 5\n  burst: 1\n".into(), &["rate_limit.interval", "unit"]),
        ] {
            let err = parse(&yaml).unwrap_err();
            for w in want {
                assert!(err.contains(w), "{yaml}: {err:?} should name {w:?}");
            }
        }
        let err = parse("tls_server_config:\n  cert_file: /nonexistent.pem\n  key_file: b\n")
            .unwrap_err();
        assert!(err.contains("cert_file /nonexistent.pem"), "{err}");
    }

    #[test]
    fn a_tls_section_without_certificate_or_client_auth_serves_plain_http() {
        let web = parse("tls_server_config:\n  min_version: TLS13\n  cert_file: ''\n").unwrap();
        assert!(!web.tls_enabled());
        let web = parse("rate_limit:\n  interval: 0\n  burst: 0\n").unwrap();
        assert!(web.rate_limit.is_none());
    }

    #[test]
    fn an_inline_key_stays_out_of_error_messages() {
        let err = parse("tls_server_config:\n  cert: not-pem\n  key: SECRET-KEY\n").unwrap_err();
        assert!(!err.contains("SECRET-KEY"), "{err}");
    }

    #[test]
    fn an_empty_file_protects_nothing() {
        let web = parse("").unwrap();
        assert!(!web.auth_enabled() && !web.tls_enabled());
    }
}
