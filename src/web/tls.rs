//! TLS: the settings of `tls_server_config`, the certificates in force, and the listener that
//! completes handshakes before axum sees a connection.
//!
//! Policy: exporter-toolkit's whole `tls_server_config`, mapped onto rustls, and refused where
//! rustls cannot do what it asks (TLS 1.0/1.1 as a maximum, CBC and RSA-key-exchange suites,
//! P-521): a server quietly weaker or stronger than its file says is worse than one that does
//! not start. Everything is checked when the web config loads, so a bad file fails at startup,
//! not on the first connection. Certificate files are re-read on the first connection after
//! any of them changes, so a renewed certificate is served without a restart; files that do not
//! make a usable config keep the previous ones. A handshake runs in a task of its own, with a
//! deadline, so one slow or hostile client cannot hold up the others.

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_rustls::rustls::client::danger::HandshakeSignatureValid;
use tokio_rustls::rustls::crypto::ring as provider;
use tokio_rustls::rustls::crypto::{CryptoProvider, SupportedKxGroup};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use tokio_rustls::rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{
    self, CertificateError, DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig,
    SignatureScheme, SupportedCipherSuite,
};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tracing::{debug, info, warn};

use super::{stamp, Stamps, WebConfigError};

/// A handshake that has not finished by then is a stalled or hostile client.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// `tls_server_config` as written. Empty strings count as unset, as in exporter-toolkit.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTls {
    cert: Option<String>,
    key: Option<String>,
    client_ca: Option<String>,
    cert_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
    client_ca_file: Option<PathBuf>,
    client_auth_type: Option<String>,
    client_allowed_sans: Option<Vec<String>>,
    min_version: Option<String>,
    max_version: Option<String>,
    #[serde(default)]
    cipher_suites: Vec<String>,
    #[serde(default)]
    curve_preferences: Vec<String>,
    prefer_server_cipher_suites: Option<bool>,
}

fn set<T: AsRef<std::ffi::OsStr>>(v: &Option<T>) -> bool {
    v.as_ref().is_some_and(|v| !v.as_ref().is_empty())
}

impl RawTls {
    /// exporter-toolkit serves TLS when any certificate, key, CA or client auth key is set;
    /// a `tls_server_config` with only, say, `min_version` leaves the server on plain HTTP.
    pub(super) fn enabled(&self) -> bool {
        set(&self.cert)
            || set(&self.key)
            || set(&self.client_ca)
            || set(&self.cert_file)
            || set(&self.key_file)
            || set(&self.client_ca_file)
            || set(&self.client_auth_type)
    }
}

/// PEM read from a file (re-read when it changes) or written inline in the web config.
#[derive(Clone)]
enum Pem {
    File(PathBuf),
    Inline(String),
}

/// Inline PEM may be a private key: `Debug` never shows it.
impl fmt::Debug for Pem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pem::File(path) => write!(f, "{}", path.display()),
            Pem::Inline(_) => f.write_str("<inline>"),
        }
    }
}

impl Pem {
    /// The one of `inline` (key `inline_key`) and `file` (key `file_key`) that is set.
    fn pick(
        inline: Option<String>,
        file: Option<PathBuf>,
        base_dir: &Path,
        (inline_key, file_key): (&str, &str),
    ) -> Result<Option<Pem>, WebConfigError> {
        let inline = inline.filter(|s| !s.is_empty());
        let file = file.filter(|p| !p.as_os_str().is_empty());
        match (inline, file) {
            (Some(_), Some(_)) => Err(WebConfigError(format!(
                "tls_server_config: {inline_key} and {file_key} are both set; use one"
            ))),
            (Some(pem), None) => Ok(Some(Pem::Inline(pem))),
            (None, Some(path)) => Ok(Some(Pem::File(base_dir.join(path)))),
            (None, None) => Ok(None),
        }
    }

    fn path(&self) -> Option<&Path> {
        match self {
            Pem::File(path) => Some(path),
            Pem::Inline(_) => None,
        }
    }

    /// What error messages call it: `cert_file /etc/x.pem` or `cert`.
    fn describe(&self, inline_key: &str, file_key: &str) -> String {
        match self {
            Pem::File(path) => format!("tls_server_config.{file_key} {}", path.display()),
            Pem::Inline(_) => format!("tls_server_config.{inline_key}"),
        }
    }

    fn certs(&self, keys: (&str, &str)) -> Result<Vec<CertificateDer<'static>>, WebConfigError> {
        let fail = |e: &dyn fmt::Display| {
            WebConfigError(format!("{}: {e}", self.describe(keys.0, keys.1)))
        };
        let certs = match self {
            Pem::File(path) => {
                CertificateDer::pem_file_iter(path).and_then(|it| it.collect::<Result<Vec<_>, _>>())
            }
            Pem::Inline(pem) => CertificateDer::pem_slice_iter(pem.as_bytes()).collect(),
        }
        .map_err(|e| fail(&e))?;
        if certs.is_empty() {
            return Err(fail(&"no certificate in it"));
        }
        Ok(certs)
    }

    fn key(&self) -> Result<PrivateKeyDer<'static>, WebConfigError> {
        match self {
            Pem::File(path) => PrivateKeyDer::from_pem_file(path),
            Pem::Inline(pem) => PrivateKeyDer::from_pem_slice(pem.as_bytes()),
        }
        .map_err(|e| WebConfigError(format!("{}: {e}", self.describe("key", "key_file"))))
    }
}

/// exporter-toolkit's `client_auth_type` values (Go's `tls.ClientAuthType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientAuth {
    NoClientCert,
    /// Asks for a certificate, accepts any or none: nothing is verified.
    RequestClientCert,
    /// Requires a certificate, accepts any: only possession of its key is checked.
    RequireAnyClientCert,
    VerifyClientCertIfGiven,
    RequireAndVerifyClientCert,
}

impl ClientAuth {
    fn parse(s: &str) -> Result<Self, WebConfigError> {
        Ok(match s {
            "" | "NoClientCert" => ClientAuth::NoClientCert,
            "RequestClientCert" => ClientAuth::RequestClientCert,
            // The toolkit keeps the old spelling for backwards compatibility.
            "RequireAnyClientCert" | "RequireClientCert" => ClientAuth::RequireAnyClientCert,
            "VerifyClientCertIfGiven" => ClientAuth::VerifyClientCertIfGiven,
            "RequireAndVerifyClientCert" => ClientAuth::RequireAndVerifyClientCert,
            other => {
                return Err(WebConfigError(format!(
                    "tls_server_config.client_auth_type: unknown value {other:?}; expected \
                     NoClientCert, RequestClientCert, RequireAnyClientCert, \
                     VerifyClientCertIfGiven or RequireAndVerifyClientCert"
                )))
            }
        })
    }

    fn verifies(self) -> bool {
        matches!(
            self,
            ClientAuth::VerifyClientCertIfGiven | ClientAuth::RequireAndVerifyClientCert
        )
    }

    fn mandatory(self) -> bool {
        matches!(
            self,
            ClientAuth::RequireAnyClientCert | ClientAuth::RequireAndVerifyClientCert
        )
    }
}

/// exporter-toolkit's TLS version names, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Version {
    TLS10,
    TLS11,
    TLS12,
    TLS13,
}

impl Version {
    fn parse(key: &str, s: Option<&str>, default: Version) -> Result<Self, WebConfigError> {
        Ok(match s {
            None | Some("") => default,
            Some("TLS10") => Version::TLS10,
            Some("TLS11") => Version::TLS11,
            Some("TLS12") => Version::TLS12,
            Some("TLS13") => Version::TLS13,
            Some(other) => {
                return Err(WebConfigError(format!(
                    "tls_server_config.{key}: unknown TLS version {other:?}; expected TLS10, \
                     TLS11, TLS12 or TLS13"
                )))
            }
        })
    }
}

/// The TLS 1.2 suites in Go's `tls.CipherSuites()` that rustls does not implement (CBC modes
/// and RSA key exchange): known names, refused as unsupported rather than unknown.
const GO_SUITES_RUSTLS_LACKS: &[&str] = &[
    "TLS_RSA_WITH_AES_128_CBC_SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA",
    "TLS_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
];

/// Go's curve names and the rustls (ring) key exchange groups they are.
fn kx_group(name: &str) -> Result<&'static dyn SupportedKxGroup, WebConfigError> {
    match name {
        "X25519" => Ok(provider::kx_group::X25519),
        "CurveP256" => Ok(provider::kx_group::SECP256R1),
        "CurveP384" => Ok(provider::kx_group::SECP384R1),
        "CurveP521" | "X25519MLKEM768" | "SecP256r1MLKEM768" | "SecP384r1MLKEM1024" => {
            Err(WebConfigError(format!(
                "tls_server_config.curve_preferences: {name} is not offered by this server's \
                 TLS library (rustls with ring); use X25519, CurveP256 or CurveP384"
            )))
        }
        other => Err(WebConfigError(format!(
            "tls_server_config.curve_preferences: unknown curve {other:?}; expected X25519, \
             CurveP256 or CurveP384"
        ))),
    }
}

/// `cipher_suites` as rustls suites: the TLS 1.2 ones listed, in their order, then every
/// TLS 1.3 suite. Go does not let TLS 1.3 suites be configured; TLS 1.3 names are accepted and
/// change nothing, as there.
fn cipher_suites(
    names: &[String],
    all: &[SupportedCipherSuite],
) -> Result<Vec<SupportedCipherSuite>, WebConfigError> {
    let tls13 = all.iter().filter(|s| s.tls13().is_some()).copied();
    if names.is_empty() {
        return Ok(all.to_vec());
    }
    let tls12_names = || {
        all.iter()
            .filter(|s| s.tls13().is_none())
            .filter_map(|s| s.suite().as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut tls12 = Vec::new();
    for name in names {
        // Go and IANA write TLS 1.3 suites without rustls' `TLS13_` prefix.
        let tls13_name = name
            .strip_prefix("TLS_")
            .map(|rest| format!("TLS13_{rest}"));
        let found = all.iter().find(|s| {
            let ours = s.suite().as_str();
            ours == Some(name) || (s.tls13().is_some() && ours == tls13_name.as_deref())
        });
        match found {
            Some(s) if s.tls13().is_some() => {}
            Some(s) => {
                if !tls12.contains(s) {
                    tls12.push(*s)
                }
            }
            None if GO_SUITES_RUSTLS_LACKS.contains(&name.as_str()) => {
                return Err(WebConfigError(format!(
                    "tls_server_config.cipher_suites: {name} is not offered by this server's \
                     TLS library (rustls has no CBC or RSA key exchange suites); it has {}",
                    tls12_names()
                )))
            }
            None => {
                return Err(WebConfigError(format!(
                    "tls_server_config.cipher_suites: unknown cipher suite {name:?}; the TLS 1.2 \
                     suites on offer are {}",
                    tls12_names()
                )))
            }
        }
    }
    Ok(tls13.chain(tls12).collect())
}

/// `tls_server_config` resolved: paths against the config's directory, names to rustls values.
#[derive(Debug, Clone)]
pub(super) struct TlsSettings {
    cert: Pem,
    key: Pem,
    client_ca: Option<Pem>,
    client_auth: ClientAuth,
    allowed_sans: Option<Vec<String>>,
    versions: Vec<&'static rustls::SupportedProtocolVersion>,
    /// The suites and groups on offer, in the server's order of preference.
    provider: Arc<CryptoProvider>,
    prefer_server_order: bool,
}

impl TlsSettings {
    /// Resolves `raw` against `base_dir` and checks that it makes a usable config.
    pub(super) fn new(raw: RawTls, base_dir: &Path) -> Result<Self, WebConfigError> {
        let cert = Pem::pick(raw.cert, raw.cert_file, base_dir, ("cert", "cert_file"))?
            .ok_or_else(|| {
                WebConfigError("tls_server_config: missing one of cert or cert_file".into())
            })?;
        let key =
            Pem::pick(raw.key, raw.key_file, base_dir, ("key", "key_file"))?.ok_or_else(|| {
                WebConfigError("tls_server_config: missing one of key or key_file".into())
            })?;
        let client_ca = Pem::pick(
            raw.client_ca,
            raw.client_ca_file,
            base_dir,
            ("client_ca", "client_ca_file"),
        )?;
        let client_auth = ClientAuth::parse(raw.client_auth_type.as_deref().unwrap_or(""))?;
        match (client_auth, &client_ca) {
            (ClientAuth::NoClientCert, Some(_)) => {
                return Err(WebConfigError(
                    "tls_server_config: a client CA is set but client_auth_type is NoClientCert"
                        .into(),
                ))
            }
            (auth, None) if auth.verifies() => {
                return Err(WebConfigError(format!(
                    "tls_server_config: client_auth_type {auth:?} needs client_ca_file or client_ca"
                )))
            }
            (ClientAuth::RequestClientCert | ClientAuth::RequireAnyClientCert, _) => warn!(
                client_auth_type = ?client_auth,
                "client certificates are accepted without verification: any certificate will do"
            ),
            _ => {}
        }
        if raw.client_allowed_sans.is_some() && !client_auth.mandatory() {
            return Err(WebConfigError(format!(
                "tls_server_config.client_allowed_sans needs client_auth_type \
                 RequireAndVerifyClientCert or RequireAnyClientCert, not {client_auth:?}: other \
                 types let a client in without a certificate to match"
            )));
        }

        let min = Version::parse("min_version", raw.min_version.as_deref(), Version::TLS12)?;
        let max = Version::parse("max_version", raw.max_version.as_deref(), Version::TLS13)?;
        if min > max {
            return Err(WebConfigError(format!(
                "tls_server_config: min_version {min:?} is above max_version {max:?}"
            )));
        }
        if max < Version::TLS12 {
            return Err(WebConfigError(format!(
                "tls_server_config.max_version {max:?}: this server speaks TLS 1.2 and 1.3 only \
                 (rustls), so it cannot keep connections at or below {max:?}"
            )));
        }
        if min < Version::TLS12 {
            // A floor below what rustls speaks is kept by every connection it makes.
            info!(
                "tls_server_config.min_version {min:?}: serving TLS 1.2 and above, all rustls speaks"
            );
        }
        let versions = [
            (Version::TLS12, &rustls::version::TLS12),
            (Version::TLS13, &rustls::version::TLS13),
        ]
        .into_iter()
        .filter(|(v, _)| (min..=max).contains(v))
        .map(|(_, p)| p)
        .collect();

        let mut provider = provider::default_provider();
        provider.cipher_suites = cipher_suites(&raw.cipher_suites, &provider.cipher_suites)?;
        if !raw.curve_preferences.is_empty() {
            let mut groups: Vec<&'static dyn SupportedKxGroup> = Vec::new();
            for name in &raw.curve_preferences {
                let group = kx_group(name)?;
                if !groups.iter().any(|g| g.name() == group.name()) {
                    groups.push(group);
                }
            }
            provider.kx_groups = groups;
        }

        let settings = TlsSettings {
            cert,
            key,
            client_ca,
            client_auth,
            allowed_sans: raw.client_allowed_sans,
            versions,
            provider: Arc::new(provider),
            prefer_server_order: raw.prefer_server_cipher_suites.unwrap_or(true),
        };
        // Fail at startup, not on the first connection.
        settings.build()?;
        Ok(settings)
    }

    fn files(&self) -> impl Iterator<Item = &Path> {
        [Some(&self.cert), Some(&self.key), self.client_ca.as_ref()]
            .into_iter()
            .flatten()
            .filter_map(Pem::path)
    }

    /// What tells a changed file from an unchanged one without reading it.
    fn stamps(&self) -> Stamps {
        self.files().map(stamp).collect()
    }

    fn client_verifier(&self) -> Result<Arc<dyn ClientCertVerifier>, WebConfigError> {
        let mut roots = RootCertStore::empty();
        if let Some(ca) = &self.client_ca {
            let keys = ("client_ca", "client_ca_file");
            for cert in ca.certs(keys)? {
                roots
                    .add(cert)
                    .map_err(|e| WebConfigError(format!("{}: {e}", ca.describe(keys.0, keys.1))))?;
            }
        }
        let verifier: Arc<dyn ClientCertVerifier> = match self.client_auth {
            ClientAuth::NoClientCert => return Ok(WebPkiClientVerifier::no_client_auth()),
            ClientAuth::RequestClientCert | ClientAuth::RequireAnyClientCert => {
                Arc::new(AnyClientCert {
                    mandatory: self.client_auth.mandatory(),
                    hints: roots.subjects(),
                    provider: self.provider.clone(),
                })
            }
            auth => {
                let builder = WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots),
                    self.provider.clone(),
                );
                let builder = if auth.mandatory() {
                    builder
                } else {
                    builder.allow_unauthenticated()
                };
                builder
                    .build()
                    .map_err(|e| WebConfigError(format!("tls_server_config: client CA: {e}")))?
            }
        };
        Ok(match &self.allowed_sans {
            Some(allowed) => Arc::new(AllowedSans {
                inner: verifier,
                allowed: allowed.clone(),
            }),
            None => verifier,
        })
    }

    fn build(&self) -> Result<ServerConfig, WebConfigError> {
        let certs = self.cert.certs(("cert", "cert_file"))?;
        let key = self.key.key()?;
        let mut config = ServerConfig::builder_with_provider(self.provider.clone())
            .with_protocol_versions(&self.versions)
            .map_err(|e| {
                WebConfigError(format!(
                    "tls_server_config: cipher_suites and curve_preferences leave nothing for \
                     the TLS versions from min_version to max_version: {e}"
                ))
            })?
            .with_client_cert_verifier(self.client_verifier()?)
            .with_single_cert(certs, key)
            .map_err(|e| WebConfigError(format!("tls_server_config: {e}")))?;
        config.ignore_client_order = self.prefer_server_order;
        // The server speaks HTTP/1.1 only: see `http_server_config.http2`.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(config)
    }
}

/// `RequestClientCert` and `RequireAnyClientCert`: any certificate is accepted, nobody vouches
/// for it; the handshake still proves the client holds its key.
#[derive(Debug)]
struct AnyClientCert {
    mandatory: bool,
    hints: Vec<DistinguishedName>,
    provider: Arc<CryptoProvider>,
}

impl ClientCertVerifier for AnyClientCert {
    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.hints
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        // As Go does, it must at least be a certificate.
        x509_parser::parse_x509_certificate(end_entity)
            .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadEncoding))?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// `client_allowed_sans`: after `inner` accepts the certificate, one of its subject alternative
/// names (DNS, e-mail, IP or URI) must equal an entry of `allowed` exactly, as exporter-toolkit
/// checks.
#[derive(Debug)]
struct AllowedSans {
    inner: Arc<dyn ClientCertVerifier>,
    allowed: Vec<String>,
}

fn subject_alt_names(der: &[u8]) -> Option<Vec<String>> {
    use x509_parser::extensions::GeneralName;
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let san = cert.subject_alternative_name().ok()??;
    Some(
        san.value
            .general_names
            .iter()
            .filter_map(|name| match name {
                GeneralName::DNSName(s) | GeneralName::RFC822Name(s) | GeneralName::URI(s) => {
                    Some(s.to_string())
                }
                GeneralName::IPAddress(b) => match b.len() {
                    4 => Some(
                        IpAddr::from(Ipv4Addr::from(<[u8; 4]>::try_from(*b).ok()?)).to_string(),
                    ),
                    16 => Some(
                        IpAddr::from(Ipv6Addr::from(<[u8; 16]>::try_from(*b).ok()?)).to_string(),
                    ),
                    _ => None,
                },
                _ => None,
            })
            .collect(),
    )
}

impl ClientCertVerifier for AllowedSans {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        let names = subject_alt_names(end_entity).unwrap_or_default();
        if names.iter().any(|n| self.allowed.contains(n)) {
            Ok(verified)
        } else {
            debug!(?names, "client certificate has none of client_allowed_sans");
            Err(rustls::Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
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
