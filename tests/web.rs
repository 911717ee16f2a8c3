//! The protected endpoint over real sockets: basic auth, TLS, client certificates, rotation.

mod common;

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use fleet_core::config::Source;
use fleet_exporter::web::WebConfig;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};

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
