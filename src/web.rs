//! The protected endpoint: optional TLS and basic auth for every HTTP path, configured by an
//! exporter-toolkit web config file (`--web.config.file`), as Prometheus' own exporters are.
//!
//! Certificates are re-read on the first connection after any of their files changes, so a
//! renewed certificate is served without a restart. Basic-auth passwords are bcrypt hashes;
//! each verdict is cached under a digest of the presented credentials, so a client repeating a
//! password (right or wrong) costs one bcrypt, not one per request.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use base64::Engine as _;
use serde::Deserialize;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_rustls::rustls::crypto::ring as provider;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{self, RootCertStore, ServerConfig};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tracing::{debug, info, warn};

use crate::server;

/// A handshake that has not finished by then is a stalled or hostile client.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Enough for every distinct credential a fleet's scrapers use, small enough that a flood of
/// random passwords cannot grow memory.
const AUTH_CACHE_ENTRIES: usize = 1024;

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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert_file: PathBuf,
    key_file: PathBuf,
    client_ca_file: Option<PathBuf>,
    #[serde(default)]
    client_auth_type: ClientAuth,
    #[serde(default)]
    min_version: MinVersion,
}

/// exporter-toolkit's names. `RequestClientCert` and `RequireAnyClientCert` accept certificates
/// nobody verified, which rustls deliberately does not offer; they are rejected as unknown.
#[derive(Deserialize, Debug, Default, Clone, Copy, PartialEq, Eq)]
enum ClientAuth {
    #[default]
    NoClientCert,
    VerifyClientCertIfGiven,
    RequireAndVerifyClientCert,
}

/// rustls speaks TLS 1.2 and 1.3 only, so the older exporter-toolkit values are unknown here.
#[derive(Deserialize, Debug, Default, Clone, Copy)]
enum MinVersion {
    #[default]
    TLS12,
    TLS13,
}

#[derive(Debug, Clone)]
struct TlsSettings {
    cert_file: PathBuf,
    key_file: PathBuf,
    client_ca_file: Option<PathBuf>,
    client_auth: ClientAuth,
    min_version: MinVersion,
}

/// User names to bcrypt hashes; `Debug` shows the names only.
#[derive(Default)]
struct Users(BTreeMap<String, String>);

impl fmt::Debug for Users {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
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
            .map(|t| {
                let settings = TlsSettings {
                    cert_file: base_dir.join(t.cert_file),
                    key_file: base_dir.join(t.key_file),
                    client_ca_file: t.client_ca_file.map(|p| base_dir.join(p)),
                    client_auth: t.client_auth_type,
                    min_version: t.min_version,
                };
                // Fail at startup, not on the first connection.
                settings.build()?;
                Ok::<_, WebConfigError>(settings)
            })
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

/// Serves `router` on `listener` as `web` asks: behind basic auth when it names users, over TLS
/// when it has a certificate, until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    web: &WebConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let router = protect(router, web);
    match &web.tls {
        None => server::serve(listener, router, shutdown).await,
        Some(settings) => {
            let certs = Arc::new(CertReloader::new(settings.clone()).map_err(io::Error::other)?);
            axum::serve(TlsListener::new(listener, certs)?, router)
                .with_graceful_shutdown(shutdown)
                .await
        }
    }
}

/// `router` behind basic auth when `web` names users; every path, as exporter-toolkit does.
pub fn protect(router: Router, web: &WebConfig) -> Router {
    if !web.auth_enabled() {
        return router;
    }
    let mut auth = BasicAuth::new(web.users.0.clone());
    auth.file = web.file.clone().map(|path| {
        let stamp = stamp(&path);
        (path, Mutex::new(stamp))
    });
    router.layer(middleware::from_fn_with_state(Arc::new(auth), require_auth))
}

async fn require_auth(State(auth): State<Arc<BasicAuth>>, req: Request, next: Next) -> Response {
    let allowed = match credentials(req.headers()) {
        Some((user, password)) => auth.check(user, password).await,
        None => false,
    };
    if allowed {
        next.run(req).await
    } else {
        (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Basic")],
            "Unauthorized\n",
        )
            .into_response()
    }
}

fn credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let (user, password) = std::str::from_utf8(&decoded).ok()?.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

/// Checks basic-auth credentials against bcrypt hashes, remembering verdicts.
struct BasicAuth {
    users: Mutex<Arc<BTreeMap<String, String>>>,
    verdicts: Mutex<HashMap<[u8; 32], bool>>,
    capacity: usize,
    /// The web config file and its last seen stamp, as exporter-toolkit re-reads users.
    file: Option<(PathBuf, Mutex<Stamp>)>,
}

impl BasicAuth {
    fn new(users: BTreeMap<String, String>) -> Self {
        Self::with_capacity(users, AUTH_CACHE_ENTRIES)
    }

    fn with_capacity(users: BTreeMap<String, String>, capacity: usize) -> Self {
        BasicAuth {
            users: Mutex::new(Arc::new(users)),
            verdicts: Mutex::new(HashMap::new()),
            capacity,
            file: None,
        }
    }

    async fn check(&self, user: String, password: String) -> bool {
        self.reload_users_if_changed();
        let key = cache_key(&user, &password);
        if let Some(&verdict) = self.lock().get(&key) {
            return verdict;
        }
        let users = self.users.lock().unwrap_or_else(|e| e.into_inner()).clone();
        // bcrypt is deliberately slow: keep it off the threads that serve scrapes.
        let verdict = tokio::task::spawn_blocking(move || verify(&users, &user, &password))
            .await
            .unwrap_or(false);
        let mut verdicts = self.lock();
        if verdicts.len() >= self.capacity {
            // Any entry will do: the map's hashing is randomly keyed, so no client can choose
            // which one goes.
            if let Some(victim) = verdicts.keys().next().copied() {
                verdicts.remove(&victim);
            }
        }
        verdicts.insert(key, verdict);
        verdict
    }

    /// One `stat` per request buys password changes without a restart. A file that no longer
    /// validates keeps the old users (and is reported once per change, not per request).
    fn reload_users_if_changed(&self) {
        let Some((path, seen)) = &self.file else {
            return;
        };
        let now = stamp(path);
        let mut seen = seen.lock().unwrap_or_else(|e| e.into_inner());
        if now == *seen {
            return;
        }
        *seen = now;
        match WebConfig::load(path) {
            Ok(web) => {
                *self.users.lock().unwrap_or_else(|e| e.into_inner()) = Arc::new(web.users.0);
                // Verdicts were for the old hashes.
                self.lock().clear();
                info!("web config changed: basic-auth users reloaded");
            }
            Err(e) => {
                warn!(error = %e, "web config changed but is invalid; keeping the previous users")
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], bool>> {
        self.verdicts.lock().unwrap_or_else(|e| e.into_inner())
    }

    #[cfg(test)]
    fn cached(&self) -> usize {
        self.lock().len()
    }
}

fn verify(users: &BTreeMap<String, String>, user: &str, password: &str) -> bool {
    match users.get(user) {
        Some(hash) => bcrypt::verify(password, hash).unwrap_or(false),
        None => {
            // An unknown user costs the same bcrypt as a known one, so timing does not tell
            // which user names exist.
            if let Some(any) = users.values().next() {
                let _ = bcrypt::verify(password, any);
            }
            false
        }
    }
}

/// A digest, not the password itself, is what stays in memory; the user name is length-prefixed
/// so `("ab", "c")` and `("a", "bc")` differ.
fn cache_key(user: &str, password: &str) -> [u8; 32] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(&(user.len() as u64).to_le_bytes());
    ctx.update(user.as_bytes());
    ctx.update(password.as_bytes());
    let mut key = [0; 32];
    key.copy_from_slice(ctx.finish().as_ref());
    key
}

impl TlsSettings {
    fn files(&self) -> impl Iterator<Item = &Path> {
        [
            Some(&self.cert_file),
            Some(&self.key_file),
            self.client_ca_file.as_ref(),
        ]
        .into_iter()
        .flatten()
        .map(PathBuf::as_path)
    }

    /// What tells a changed file from an unchanged one without reading it.
    fn stamps(&self) -> Stamps {
        self.files().map(stamp).collect()
    }

    fn build(&self) -> Result<ServerConfig, WebConfigError> {
        let provider = Arc::new(provider::default_provider());
        let versions: &[&rustls::SupportedProtocolVersion] = match self.min_version {
            MinVersion::TLS12 => &[&rustls::version::TLS12, &rustls::version::TLS13],
            MinVersion::TLS13 => &[&rustls::version::TLS13],
        };
        let certs = read_pem_certs(&self.cert_file)?;
        let key = PrivateKeyDer::from_pem_file(&self.key_file).map_err(|e| {
            WebConfigError(format!(
                "tls_server_config.key_file {}: {e}",
                self.key_file.display()
            ))
        })?;
        let verifier = match (self.client_auth, &self.client_ca_file) {
            (ClientAuth::NoClientCert, None) => WebPkiClientVerifier::no_client_auth(),
            (ClientAuth::NoClientCert, Some(_)) => {
                return Err(WebConfigError(
                    "tls_server_config: client_ca_file is set but client_auth_type is \
                     NoClientCert"
                        .into(),
                ))
            }
            (_, None) => {
                return Err(WebConfigError(format!(
                    "tls_server_config: client_auth_type {:?} needs a client_ca_file",
                    self.client_auth
                )))
            }
            (auth, Some(ca_file)) => {
                let mut roots = RootCertStore::empty();
                for ca in read_pem_certs(ca_file)? {
                    roots.add(ca).map_err(|e| {
                        WebConfigError(format!("client_ca_file {}: {e}", ca_file.display()))
                    })?;
                }
                let builder =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
                let builder = if auth == ClientAuth::VerifyClientCertIfGiven {
                    builder.allow_unauthenticated()
                } else {
                    builder
                };
                builder.build().map_err(|e| {
                    WebConfigError(format!("client_ca_file {}: {e}", ca_file.display()))
                })?
            }
        };
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .map_err(|e| WebConfigError(format!("tls_server_config.min_version: {e}")))?
            .with_client_cert_verifier(verifier)
            .with_single_cert(certs, key)
            .map_err(|e| WebConfigError(format!("tls_server_config: {e}")))?;
        // The server speaks HTTP/1.1 only.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(config)
    }
}

fn read_pem_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, WebConfigError> {
    let fail = |e: &dyn fmt::Display| WebConfigError(format!("{}: {e}", path.display()));
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| fail(&e))?;
    if certs.is_empty() {
        return Err(fail(&"no certificate in the file"));
    }
    Ok(certs)
}

/// A file's modification time and size, `None` when it cannot be read.
type Stamp = Option<(SystemTime, u64)>;
type Stamps = Vec<Stamp>;

fn stamp(path: &Path) -> Stamp {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

/// The TLS config in force, rebuilt when a certificate, key or CA file has changed.
struct CertReloader {
    settings: TlsSettings,
    current: Mutex<(Stamps, Arc<ServerConfig>)>,
}

impl CertReloader {
    fn new(settings: TlsSettings) -> Result<Self, WebConfigError> {
        let stamps = settings.stamps();
        let config = Arc::new(settings.build()?);
        Ok(CertReloader {
            settings,
            current: Mutex::new((stamps, config)),
        })
    }

    /// A few `stat`s per connection buy rotation without a restart or a signal.
    fn config(&self) -> Arc<ServerConfig> {
        let stamps = self.settings.stamps();
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if stamps != current.0 {
            // A half-written pair fails here and is retried when the next file lands; the
            // stamps are taken either way so a broken file is reported once, not per connection.
            match self.settings.build() {
                Ok(config) => {
                    info!("TLS certificate files changed: reloaded");
                    current.1 = Arc::new(config);
                }
                Err(e) => {
                    warn!(error = %e, "TLS certificate files changed but cannot be used; keeping the previous ones")
                }
            }
            current.0 = stamps;
        }
        current.1.clone()
    }
}

/// Accepts TCP connections and hands axum only those whose TLS handshake completed. Handshakes
/// run in their own tasks so one slow client cannot hold up the others.
struct TlsListener {
    handshaken: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local_addr: SocketAddr,
    acceptor: JoinHandle<()>,
}

impl TlsListener {
    fn new(listener: TcpListener, certs: Arc<CertReloader>) -> io::Result<Self> {
        let local_addr = listener.local_addr()?;
        let (tx, handshaken) = mpsc::channel(64);
        let acceptor = tokio::spawn(async move {
            loop {
                let (tcp, peer) = match listener.accept().await {
                    Ok(conn) => conn,
                    Err(e) => {
                        // Out of file descriptors and the like: back off as axum's own
                        // listener does rather than spin.
                        debug!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                };
                if let Err(e) = tcp.set_nodelay(true) {
                    debug!(error = %e, "cannot set TCP_NODELAY");
                }
                let acceptor = TlsAcceptor::from(certs.config());
                let tx = tx.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(tls)) => {
                            let _ = tx.send((tls, peer)).await;
                        }
                        Ok(Err(e)) => debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(TlsListener {
            handshaken,
            local_addr,
            acceptor,
        })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.acceptor.abort();
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.handshaken.recv().await {
            Some(conn) => conn,
            // Only when the acceptor task is gone, which dropping `self` alone does.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local_addr)
    }
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

    #[test]
    fn credentials_decode_and_other_schemes_are_ignored() {
        let mut headers = HeaderMap::new();
        // "alice:pa:ss" — the password may itself contain colons.
        headers.insert(
            header::AUTHORIZATION,
            "basic YWxpY2U6cGE6c3M=".parse().unwrap(),
        );
        assert_eq!(
            credentials(&headers),
            Some(("alice".into(), "pa:ss".into()))
        );
        headers.insert(
            header::AUTHORIZATION,
            "Bearer YWxpY2U6cGE6c3M=".parse().unwrap(),
        );
        assert_eq!(credentials(&headers), None);
    }

    #[tokio::test]
    async fn the_verdict_cache_is_bounded() {
        let hash = bcrypt::hash("right", 4).unwrap();
        let auth = BasicAuth::with_capacity(BTreeMap::from([("u".to_string(), hash)]), 16);
        assert!(auth.check("u".into(), "right".into()).await);
        assert!(!auth.check("nobody".into(), "right".into()).await);
        for i in 0..20 {
            assert!(!auth.check("u".into(), format!("wrong{i}")).await);
        }
        assert_eq!(auth.cached(), 16);
    }
}
