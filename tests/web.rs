//! The protected endpoint over real sockets: basic auth, TLS, client certificates, rotation,
//! and every other key of exporter-toolkit's web config.

mod common;

use std::fs;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fleet_core::config::Source;
use fleet_exporter::web::WebConfig;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use tokio_rustls::rustls;

use common::{start_exporter_web, temp_dir, Exporter};

async fn exporter(dir: &Path, web_yaml: &str) -> Exporter {
    let path = dir.join("web.yml");
    fs::write(&path, web_yaml).unwrap();
    let web = WebConfig::load(&path).unwrap();
    start_exporter_web("", Source::Builtin, web).await
}

/// Writes a self-signed certificate for 127.0.0.1 and its key into `dir`; returns the PEM.
fn write_server_cert(dir: &Path) -> String {
    let ck = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap();
    fs::write(dir.join("key.pem"), ck.signing_key.serialize_pem()).unwrap();
    fs::write(dir.join("cert.pem"), ck.cert.pem()).unwrap();
    ck.cert.pem()
}

const TLS: &str = "tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\n";

/// A fresh connection per request, so each one sees the server's current certificate.
fn client(root_pem: &str, identity_pem: Option<String>) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(root_pem.as_bytes()).unwrap())
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(5));
    if let Some(pem) = identity_pem {
        builder = builder.identity(reqwest::Identity::from_pem(pem.as_bytes()).unwrap());
    }
    builder.build().unwrap()
}

async fn status(
    client: &reqwest::Client,
    url: &str,
    auth: Option<(&str, &str)>,
) -> reqwest::Result<reqwest::Response> {
    let mut req = client.get(url);
    if let Some((user, password)) = auth {
        req = req.basic_auth(user, Some(password));
    }
    req.send().await
}

#[tokio::test]
async fn basic_auth_guards_every_path() {
    let dir = temp_dir("web-auth");
    let hash = bcrypt::hash("s3cret", 4).unwrap();
    let exp = exporter(&dir, &format!("basic_auth_users:\n  alice: '{hash}'\n")).await;
    let http = reqwest::Client::new();

    for path in [
        "/metrics",
        "/-/healthy",
        "/",
        "/probe?target=x",
        "/nonexistent",
    ] {
        let url = format!("{}{path}", exp.url);
        for auth in [None, Some(("alice", "wrong")), Some(("bob", "s3cret"))] {
            let resp = status(&http, &url, auth).await.unwrap();
            assert_eq!(resp.status(), 401, "{path} with {auth:?}");
            assert_eq!(resp.headers()["www-authenticate"], "Basic", "{path}");
        }
    }
    let resp = status(
        &http,
        &format!("{}/metrics", exp.url),
        Some(("alice", "s3cret")),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp
        .text()
        .await
        .unwrap()
        .contains("fleet_exporter_build_info{"));
}

#[tokio::test]
async fn a_repeated_password_costs_one_bcrypt() {
    let dir = temp_dir("web-cache");
    // Cost 10 is what htpasswd and exporter-toolkit's docs use.
    let hash = bcrypt::hash("s3cret", 10).unwrap();
    let exp = exporter(&dir, &format!("basic_auth_users:\n  alice: '{hash}'\n")).await;
    let http = reqwest::Client::new();
    let url = format!("{}/-/healthy", exp.url);
    // Open the connection first so only the password check is timed.
    status(&http, &url, None).await.unwrap();

    for (password, want) in [("wrong", 401), ("s3cret", 200)] {
        let mut took = Vec::new();
        for _ in 0..2 {
            let start = Instant::now();
            let resp = status(&http, &url, Some(("alice", password)))
                .await
                .unwrap();
            took.push(start.elapsed());
            assert_eq!(resp.status(), want);
        }
        eprintln!(
            "password {password:?}: first {:?}, repeated {:?}",
            took[0], took[1]
        );
        assert!(
            took[1] * 10 < took[0],
            "a repeated {password:?} should be answered from the cache: {took:?}"
        );
    }
}

#[tokio::test]
async fn tls_serves_with_a_generated_certificate() {
    let dir = temp_dir("web-tls");
    let cert = write_server_cert(&dir);
    let hash = bcrypt::hash("s3cret", 4).unwrap();
    let exp = exporter(
        &dir,
        &format!("{TLS}basic_auth_users:\n  alice: '{hash}'\n"),
    )
    .await;
    assert!(exp.url.starts_with("https://"), "{}", exp.url);
    let url = format!("{}/metrics", exp.url);

    let resp = status(&client(&cert, None), &url, Some(("alice", "s3cret")))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp
        .text()
        .await
        .unwrap()
        .contains("fleet_exporter_build_info{"));
    // Auth still applies over TLS.
    let resp = status(&client(&cert, None), &url, None).await.unwrap();
    assert_eq!(resp.status(), 401);

    // Plain HTTP gets no answer, and a client that does not trust the certificate refuses it.
    let plain = url.replacen("https://", "http://", 1);
    assert!(status(&reqwest::Client::new(), &plain, None).await.is_err());
    let other = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap();
    assert!(status(&client(&other.cert.pem(), None), &url, None)
        .await
        .is_err());
}

#[tokio::test]
async fn client_certificates_are_required_and_verified() {
    let dir = temp_dir("web-mtls");
    let server_cert = write_server_cert(&dir);
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    fs::write(dir.join("ca.pem"), ca.pem()).unwrap();

    let client_key = KeyPair::generate().unwrap();
    let client_cert = CertificateParams::new(vec!["scraper".to_string()])
        .unwrap()
        .signed_by(&client_key, &ca)
        .unwrap();
    let trusted = format!("{}{}", client_cert.pem(), client_key.serialize_pem());
    let stranger = rcgen::generate_simple_self_signed(vec!["scraper".into()]).unwrap();
    let stranger = format!(
        "{}{}",
        stranger.cert.pem(),
        stranger.signing_key.serialize_pem()
    );

    let exp = exporter(
        &dir,
        &format!("{TLS}  client_ca_file: ca.pem\n  client_auth_type: RequireAndVerifyClientCert\n"),
    )
    .await;
    let url = format!("{}/metrics", exp.url);

    let resp = status(&client(&server_cert, Some(trusted)), &url, None)
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    for identity in [None, Some(stranger)] {
        let refused = identity.is_none();
        let result = status(&client(&server_cert, identity), &url, None).await;
        assert!(result.is_err(), "no certificate: {refused}, got {result:?}");
    }
}

#[tokio::test]
async fn a_rotated_certificate_is_served_without_restart() {
    let dir = temp_dir("web-rotate");
    let old = write_server_cert(&dir);
    let exp = exporter(&dir, TLS).await;
    let url = format!("{}/-/healthy", exp.url);
    assert_eq!(
        status(&client(&old, None), &url, None)
            .await
            .unwrap()
            .status(),
        200
    );

    let new = write_server_cert(&dir);
    let resp = status(&client(&new, None), &url, None).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        status(&client(&old, None), &url, None).await.is_err(),
        "the old certificate is no longer served"
    );
}

#[tokio::test]
async fn changed_users_apply_without_a_restart() {
    let dir = temp_dir("web-users");
    let users = |password: &str| {
        let hash = bcrypt::hash(password, 4).unwrap();
        format!("basic_auth_users:\n  alice: '{hash}'\n")
    };
    let exp = exporter(&dir, &users("old-pw")).await;
    let http = reqwest::Client::new();
    let url = format!("{}/metrics", exp.url);
    let code = |auth| {
        let (http, url) = (&http, &url);
        async move {
            status(http, url, Some(auth))
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(code(("alice", "old-pw")).await, 200);
    assert_eq!(code(("alice", "new-pw")).await, 401);

    // A different length guarantees a new stamp even on coarse file times.
    fs::write(
        dir.join("web.yml"),
        format!("{}# rotated\n", users("new-pw")),
    )
    .unwrap();
    assert_eq!(code(("alice", "new-pw")).await, 200);
    assert_eq!(
        code(("alice", "old-pw")).await,
        401,
        "cached verdicts are dropped"
    );

    // A broken file keeps the users in force.
    fs::write(
        dir.join("web.yml"),
        "basic_auth_users:\n  alice: not-a-hash\n",
    )
    .unwrap();
    assert_eq!(code(("alice", "new-pw")).await, 200);
}

// ---- exporter-toolkit's whole schema ----

/// A CA in `dir/ca.pem`, and client identities (certificate and key PEM) it signs for `sans`.
struct ClientCa(CertifiedIssuer<'static, KeyPair>);

impl ClientCa {
    fn new(dir: &Path) -> ClientCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
        ClientCa(ca)
    }

    fn identity(&self, sans: &[&str]) -> String {
        let key = KeyPair::generate().unwrap();
        let sans = sans.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let cert = CertificateParams::new(sans)
            .unwrap()
            .signed_by(&key, &self.0)
            .unwrap();
        format!("{}{}", cert.pem(), key.serialize_pem())
    }
}

/// What a rustls client offering only `suites`, `versions` and `groups` (all when empty)
/// negotiated with the server at `url`, or why the handshake failed.
#[derive(Debug)]
struct Negotiated {
    version: rustls::ProtocolVersion,
    suite: rustls::CipherSuite,
    group: rustls::NamedGroup,
}

async fn handshake(
    url: &str,
    root_pem: &str,
    suites: &[rustls::CipherSuite],
    versions: &[&'static rustls::SupportedProtocolVersion],
    groups: &[rustls::NamedGroup],
) -> std::io::Result<Negotiated> {
    use rustls::pki_types::{pem::PemObject, CertificateDer, ServerName};
    let mut provider = rustls::crypto::ring::default_provider();
    if !suites.is_empty() {
        provider
            .cipher_suites
            .retain(|s| suites.contains(&s.suite()));
    }
    if !groups.is_empty() {
        provider.kx_groups.retain(|g| groups.contains(&g.name()));
    }
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(root_pem.as_bytes()).unwrap())
        .unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let addr = url.trim_start_matches("https://");
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
        .await?;
    let (_, conn) = tls.get_ref();
    Ok(Negotiated {
        version: conn.protocol_version().unwrap(),
        suite: conn.negotiated_cipher_suite().unwrap().suite(),
        group: conn.negotiated_key_exchange_group().unwrap().name(),
    })
}

const BOTH: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];
const TLS12_ONLY: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS12];
const TLS13_ONLY: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13];

#[tokio::test]
async fn a_web_config_with_every_toolkit_key_is_accepted_and_each_has_its_effect() {
    let dir = temp_dir("web-every-key");
    let server = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap();
    let ca = ClientCa::new(&dir);
    let ca_pem = fs::read_to_string(dir.join("ca.pem")).unwrap();
    let hash = bcrypt::hash("s3cret", 4).unwrap();
    let indent = |pem: &str| {
        pem.lines()
            .map(|l| format!("    {l}\n"))
            .collect::<String>()
    };
    let yaml = format!(
        "tls_server_config:
  cert: |
{cert}  key: |
{key}  client_ca: |
{ca}  client_auth_type: RequireAndVerifyClientCert
  client_allowed_sans: [scraper.example, 10.0.0.9]
  min_version: TLS12
  max_version: TLS13
  cipher_suites: [TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, TLS_AES_128_GCM_SHA256]
  curve_preferences: [CurveP384, X25519]
  prefer_server_cipher_suites: true
http_server_config:
  http2: true
  headers:
    Content-Security-Policy: default-src 'none'
    X-Frame-Options: deny
    X-Content-Type-Options: nosniff
    X-XSS-Protection: '1; mode=block'
    Strict-Transport-Security: max-age=31536000
basic_auth_users:
  alice: '{hash}'
rate_limit:
  interval: 10ms
  burst: 100
",
        cert = indent(&server.cert.pem()),
        key = indent(&server.signing_key.serialize_pem()),
        ca = indent(&ca_pem),
    );
    let exp = exporter(&dir, &yaml).await;
    let url = format!("{}/metrics", exp.url);
    let scraper = client(&server.cert.pem(), Some(ca.identity(&["scraper.example"])));

    // Basic auth, and the headers on its 401 as on every answer.
    for (auth, want) in [(None, 401), (Some(("alice", "s3cret")), 200)] {
        let resp = status(&scraper, &url, auth).await.unwrap();
        assert_eq!(resp.status(), want);
        // http2: true is accepted; an HTTP/2-capable client is served HTTP/1.1.
        assert_eq!(resp.version(), reqwest::Version::HTTP_11);
        let h = resp.headers();
        assert_eq!(h["content-security-policy"], "default-src 'none'");
        assert_eq!(h["x-frame-options"], "deny");
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["x-xss-protection"], "1; mode=block");
        assert_eq!(h["strict-transport-security"], "max-age=31536000");
    }
    // client_allowed_sans, over a verified certificate: an IP SAN matches too.
    let by_ip = client(&server.cert.pem(), Some(ca.identity(&["10.0.0.9"])));
    assert_eq!(
        status(&by_ip, &url, Some(("alice", "s3cret")))
            .await
            .unwrap()
            .status(),
        200
    );
    let other = client(&server.cert.pem(), Some(ca.identity(&["other.example"])));
    assert!(status(&other, &url, None).await.is_err());
    assert!(status(&client(&server.cert.pem(), None), &url, None)
        .await
        .is_err());
}

#[tokio::test]
async fn cipher_suites_restrict_tls12_and_the_server_order_wins_when_preferred() {
    use rustls::CipherSuite::{
        TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 as AES128,
        TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 as AES256,
        TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256 as CHACHA,
    };
    let dir = temp_dir("web-ciphers");
    let cert = write_server_cert(&dir);
    let suites = "  cipher_suites:\n    - TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256\n    - TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256\n";
    let exp = exporter(&dir, &format!("{TLS}{suites}")).await;

    let refused = handshake(&exp.url, &cert, &[AES256], TLS12_ONLY, &[]).await;
    assert!(refused.is_err(), "a suite not listed: {refused:?}");
    // The client prefers AES-128; the server's order (prefer_server_cipher_suites defaults to
    // true) puts ChaCha20 first.
    let got = handshake(&exp.url, &cert, &[AES128, CHACHA], TLS12_ONLY, &[])
        .await
        .unwrap();
    assert_eq!(
        (got.version, got.suite),
        (rustls::ProtocolVersion::TLSv1_2, CHACHA)
    );
    // TLS 1.3 suites are not configurable, as in Go: a TLS 1.3 client still gets in.
    let got = handshake(&exp.url, &cert, &[], TLS13_ONLY, &[])
        .await
        .unwrap();
    assert_eq!(got.version, rustls::ProtocolVersion::TLSv1_3);

    let dir = temp_dir("web-ciphers-client-order");
    let cert = write_server_cert(&dir);
    let exp = exporter(
        &dir,
        &format!("{TLS}{suites}  prefer_server_cipher_suites: false\n"),
    )
    .await;
    let got = handshake(&exp.url, &cert, &[AES128, CHACHA], TLS12_ONLY, &[])
        .await
        .unwrap();
    assert_eq!(got.suite, AES128, "the client's order");
}

#[tokio::test]
async fn max_version_tls12_refuses_a_tls13_only_client_and_min_version_tls13_a_tls12_one() {
    let dir = temp_dir("web-max-version");
    let cert = write_server_cert(&dir);
    let exp = exporter(&dir, &format!("{TLS}  max_version: TLS12\n")).await;
    assert!(handshake(&exp.url, &cert, &[], TLS13_ONLY, &[])
        .await
        .is_err());
    let got = handshake(&exp.url, &cert, &[], BOTH, &[]).await.unwrap();
    assert_eq!(got.version, rustls::ProtocolVersion::TLSv1_2);

    let dir = temp_dir("web-min-version");
    let cert = write_server_cert(&dir);
    let exp = exporter(&dir, &format!("{TLS}  min_version: TLS13\n")).await;
    assert!(handshake(&exp.url, &cert, &[], TLS12_ONLY, &[])
        .await
        .is_err());
    let got = handshake(&exp.url, &cert, &[], BOTH, &[]).await.unwrap();
    assert_eq!(got.version, rustls::ProtocolVersion::TLSv1_3);

    // A floor below TLS 1.2 is kept by serving 1.2 and up.
    let dir = temp_dir("web-min-version-10");
    let cert = write_server_cert(&dir);
    let exp = exporter(&dir, &format!("{TLS}  min_version: TLS10\n")).await;
    let got = handshake(&exp.url, &cert, &[], TLS12_ONLY, &[])
        .await
        .unwrap();
    assert_eq!(got.version, rustls::ProtocolVersion::TLSv1_2);
}

#[tokio::test]
async fn curve_preferences_restrict_the_key_exchange() {
    use rustls::NamedGroup::{secp384r1, X25519};
    let dir = temp_dir("web-curves");
    let cert = write_server_cert(&dir);
    let exp = exporter(&dir, &format!("{TLS}  curve_preferences: [CurveP384]\n")).await;
    for versions in [TLS12_ONLY, TLS13_ONLY] {
        let refused = handshake(&exp.url, &cert, &[], versions, &[X25519]).await;
        assert!(refused.is_err(), "X25519 only: {refused:?}");
        let got = handshake(&exp.url, &cert, &[], versions, &[X25519, secp384r1])
            .await
            .unwrap();
        assert_eq!(got.group, secp384r1);
    }
}

#[tokio::test]
async fn client_allowed_sans_refuses_a_verified_certificate_without_the_san() {
    let dir = temp_dir("web-sans");
    let server_cert = write_server_cert(&dir);
    let ca = ClientCa::new(&dir);
    let exp = exporter(
        &dir,
        &format!(
            "{TLS}  client_ca_file: ca.pem\n  client_auth_type: RequireAndVerifyClientCert\n  \
             client_allowed_sans: [scraper.example, 'spiffe://site/prometheus']\n"
        ),
    )
    .await;
    let url = format!("{}/-/healthy", exp.url);
    for (sans, allowed) in [
        (&["scraper.example"][..], true),
        (&["spiffe://site/prometheus"], true),
        (&["other.example", "scraper.example.evil"], false),
        (&["Scraper.Example"], false),
    ] {
        let got = status(&client(&server_cert, Some(ca.identity(sans))), &url, None).await;
        assert_eq!(got.is_ok(), allowed, "{sans:?}: {got:?}");
    }
}

#[tokio::test]
async fn require_any_client_cert_takes_an_unverified_certificate_but_not_none() {
    let dir = temp_dir("web-any-cert");
    let server_cert = write_server_cert(&dir);
    let exp = exporter(
        &dir,
        &format!("{TLS}  client_auth_type: RequireAnyClientCert\n"),
    )
    .await;
    let url = format!("{}/-/healthy", exp.url);
    let stranger = rcgen::generate_simple_self_signed(vec!["anyone".into()]).unwrap();
    let stranger = format!(
        "{}{}",
        stranger.cert.pem(),
        stranger.signing_key.serialize_pem()
    );
    let resp = status(&client(&server_cert, Some(stranger)), &url, None)
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(status(&client(&server_cert, None), &url, None)
        .await
        .is_err());
}

#[tokio::test]
async fn http2_true_and_false_are_accepted_and_served_as_http11() {
    let dir = temp_dir("web-http2-off");
    let cert = write_server_cert(&dir);
    for http2 in [false, true] {
        let exp = exporter(
            &dir,
            &format!("{TLS}http_server_config:\n  http2: {http2}\n"),
        )
        .await;
        let resp = status(
            &client(&cert, None),
            &format!("{}/-/healthy", exp.url),
            None,
        )
        .await
        .unwrap();
        assert_eq!(resp.version(), reqwest::Version::HTTP_11, "http2: {http2}");
    }
}

#[tokio::test]
async fn rate_limit_answers_429_past_the_burst_before_asking_for_credentials() {
    let dir = temp_dir("web-rate");
    let hash = bcrypt::hash("s3cret", 4).unwrap();
    let exp = exporter(
        &dir,
        &format!("basic_auth_users:\n  alice: '{hash}'\nrate_limit:\n  interval: 1m\n  burst: 3\nhttp_server_config:\n  headers:\n    X-Frame-Options: sameorigin\n"),
    )
    .await;
    let http = reqwest::Client::new();
    let url = format!("{}/metrics", exp.url);
    let mut codes = Vec::new();
    for auth in [
        Some(("alice", "s3cret")),
        None,
        Some(("alice", "s3cret")),
        Some(("alice", "s3cret")),
        None,
    ] {
        let resp = status(&http, &url, auth).await.unwrap();
        if resp.status() == 401 {
            assert_eq!(resp.headers()["x-frame-options"], "sameorigin");
        }
        codes.push(resp.status().as_u16());
    }
    // Across the server, credentials or not: one token a minute, three at once.
    assert_eq!(codes, [200, 401, 200, 429, 429]);
    let (code, _) = exp.get("/-/healthy").await;
    assert_eq!(code, 429);
}

#[tokio::test]
async fn refusals_name_the_file_the_key_and_the_value() {
    let dir = temp_dir("web-refusals");
    write_server_cert(&dir);
    for (extra, want) in [
        (
            "  curve_preferences: [CurveP521]\n",
            "curve_preferences: CurveP521",
        ),
        ("  max_version: TLS10\n", "max_version TLS10"),
        (
            "  cipher_suites: [TLS_RSA_WITH_AES_128_GCM_SHA256]\n",
            "TLS_RSA_WITH_AES_128_GCM_SHA256",
        ),
        ("  cipher_suite: []\n", "cipher_suite"),
    ] {
        let path = dir.join("web.yml");
        fs::write(&path, format!("{TLS}{extra}")).unwrap();
        let err = WebConfig::load(&path).unwrap_err().to_string();
        assert!(
            err.contains("web.yml") && err.contains(want),
            "{extra}: {err}"
        );
    }
}
