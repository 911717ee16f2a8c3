//! TLS: the settings of `tls_server_config`, the certificates in force, and the listener that
//! completes handshakes before axum sees a connection.
//!
//! Policy: TLS 1.2 and 1.3 only, HTTP/1.1 only, client certificates verified or not asked for
//! (never accepted unverified). Everything is checked when the web config loads, so a bad file
//! fails at startup, not on the first connection. Certificates are re-read on the first
//! connection after any of their files changes, so a renewed certificate is served without a
//! restart; files that do not make a usable config keep the previous ones. A handshake runs in
//! a task of its own, with a deadline, so one slow or hostile client cannot hold up the others.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

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

use super::{stamp, Stamps, WebConfigError};

/// A handshake that has not finished by then is a stalled or hostile client.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// `tls_server_config` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTls {
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

/// `tls_server_config` with its paths resolved.
#[derive(Debug, Clone)]
pub(super) struct TlsSettings {
    cert_file: PathBuf,
    key_file: PathBuf,
    client_ca_file: Option<PathBuf>,
    client_auth: ClientAuth,
    min_version: MinVersion,
}

impl TlsSettings {
    /// Resolves `raw`'s paths against `base_dir` and checks that they make a usable config.
    pub(super) fn new(raw: RawTls, base_dir: &Path) -> Result<Self, WebConfigError> {
        let settings = TlsSettings {
            cert_file: base_dir.join(raw.cert_file),
            key_file: base_dir.join(raw.key_file),
            client_ca_file: raw.client_ca_file.map(|p| base_dir.join(p)),
            client_auth: raw.client_auth_type,
            min_version: raw.min_version,
        };
        // Fail at startup, not on the first connection.
        settings.build()?;
        Ok(settings)
    }

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
pub(super) struct TlsListener {
    handshaken: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local_addr: SocketAddr,
    acceptor: JoinHandle<()>,
}

impl TlsListener {
    pub(super) fn new(listener: TcpListener, settings: &TlsSettings) -> io::Result<Self> {
        let certs = Arc::new(CertReloader::new(settings.clone()).map_err(io::Error::other)?);
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
