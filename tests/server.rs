//! What `/metrics` and `/probe` send over the wire: content negotiation and compression.

mod common;

use std::io::Read;
use std::time::Duration;

use common::{ikuai_target, sample, start_exporter_without_self_metrics, Exporter};
use fleet_sim::ikuai::{IkuaiSim, IkuaiSimConfig};
use reqwest::header::{ACCEPT, ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_LENGTH, VARY};

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0";

/// A router with 200 clients polled once an hour, served without the exporter's own (live)
/// series: every scrape serves the same snapshot.
async fn exporter_with_one_poll() -> (IkuaiSim, Exporter) {
    let sim = IkuaiSim::start(IkuaiSimConfig {
        password: "pw".into(),
        lan_clients: 200,
        ..IkuaiSimConfig::default()
    })
    .await
    .unwrap();
    let cfg = ikuai_target(
        "r1",
        &sim.url(),
        "pw",
        "interval = \"1h\"\nmax_clients = 1000\n",
    );
    let exporter = start_exporter_without_self_metrics(&cfg).await;
    exporter
        .wait_for(Duration::from_secs(10), "r1 up", |m| {
            sample(m, "fleet_target_up", &["target=\"r1\""]) == Some(1.0)
        })
        .await;
    (sim, exporter)
}

/// GET `path` with the given headers; the body as sent, and the response headers.
async fn get(url: &str, headers: &[(reqwest::header::HeaderName, &str)]) -> reqwest::Response {
    // reqwest is built without decompression: it sends no Accept-Encoding of its own and hands
    // back the bytes as they came.
    let mut req = reqwest::Client::new().get(url);
    for (name, value) in headers {
        req = req.header(name, *value);
    }
    let resp = req.send().await.unwrap();
    assert_eq!(resp.status(), 200, "{url}");
    resp
}

fn gunzip(bytes: &[u8]) -> String {
    let mut text = String::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_string(&mut text)
        .expect("a valid gzip stream");
    text
}

#[tokio::test]
async fn gzip_is_sent_when_asked_and_only_then() {
    let (_sim, exporter) = exporter_with_one_poll().await;
    for path in ["/metrics", "/probe?target=r1"] {
        let url = format!("{}{path}", exporter.url);
        for accept in [None, Some(OPENMETRICS)] {
            let accept: Vec<_> = accept.map(|a| (ACCEPT, a)).into_iter().collect();
            let plain = get(&url, &accept).await;
            // Not asked: the zero-copy body, whole length announced, nothing encoded.
            assert!(plain.headers().get(CONTENT_ENCODING).is_none(), "{path}");
            assert!(plain.headers().get(CONTENT_LENGTH).is_some(), "{path}");
            let content_type = plain.headers()[reqwest::header::CONTENT_TYPE].clone();
            let plain = plain.text().await.unwrap();

            // What Prometheus sends.
            let mut asked = accept.clone();
            asked.push((ACCEPT_ENCODING, "gzip"));
            let gzipped = get(&url, &asked).await;
            assert_eq!(gzipped.headers()[CONTENT_ENCODING], "gzip", "{path}");
            assert_eq!(
                gzipped.headers()[reqwest::header::CONTENT_TYPE],
                content_type
            );
            assert!(
                gzipped.headers().get_all(VARY).iter().any(|v| v
                    .to_str()
                    .unwrap()
                    .to_ascii_lowercase()
                    .contains("accept-encoding")),
                "{path}: caches must know the body depends on Accept-Encoding"
            );
            let bytes = gzipped.bytes().await.unwrap();
            assert_eq!(
                gunzip(&bytes),
                plain,
                "{path}: gzip holds exactly the plain body"
            );
            assert!(
                bytes.len() * 4 < plain.len(),
                "{path}: {} of {} bytes",
                bytes.len(),
                plain.len()
            );

            // A client that refuses gzip gets the plain body.
            let mut refused = accept.clone();
            refused.push((ACCEPT_ENCODING, "gzip;q=0, identity"));
            let resp = get(&url, &refused).await;
            assert!(resp.headers().get(CONTENT_ENCODING).is_none(), "{path}");
            assert_eq!(resp.text().await.unwrap(), plain);
        }
    }
}

/// `gzip -d`, the reader every shell has: it fails on a corrupt stream or a wrong CRC.
fn gzip_d(bytes: &[u8]) -> String {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new("gzip")
        .args(["-d", "-c"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("gzip(1) on PATH");
    let mut stdin = child.stdin.take().unwrap();
    let input = bytes.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(
        out.status.success(),
        "gzip -d: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test]
async fn gzip_bodies_are_one_stream_that_gzip_d_reads_after_polls_replace_snapshots() {
    let sim = IkuaiSim::start(IkuaiSimConfig {
        password: "pw".into(),
        lan_clients: 300,
        ..IkuaiSimConfig::default()
    })
    .await
    .unwrap();
    // Two targets on one router, so every family joins blocks from two snapshots, each polled
    // every second: bodies are joined from snapshots built at different times.
    let extra = "interval = \"1s\"\ntimeout = \"900ms\"\nmax_clients = 1000\n";
    let cfg =
        ikuai_target("r1", &sim.url(), "pw", extra) + &ikuai_target("r2", &sim.url(), "pw", extra);
    let exporter = start_exporter_without_self_metrics(&cfg).await;
    exporter
        .wait_for(Duration::from_secs(20), "r1 and r2 polled twice", |m| {
            ["r1", "r2"].iter().all(|t| {
                sample(m, "fleet_target_polls_total", &[&format!("target=\"{t}\"")])
                    .is_some_and(|n| n >= 2.0)
            })
        })
        .await;
    let url = format!("{}/metrics", exporter.url);
    for accept in [None, Some(OPENMETRICS)] {
        let mut headers: Vec<_> = accept.map(|a| (ACCEPT, a)).into_iter().collect();
        headers.push((ACCEPT_ENCODING, "gzip"));
        for _ in 0..3 {
            let resp = get(&url, &headers).await;
            let announced: usize = resp.headers()[CONTENT_LENGTH]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            let bytes = resp.bytes().await.unwrap();
            assert_eq!(bytes.len(), announced, "the exact length is announced");
            let text = gzip_d(&bytes);
            // flate2's single-member reader reads all of it too: one member, not several.
            assert_eq!(gunzip(&bytes), text);
            for target in ["r1", "r2"] {
                assert!(
                    sample(&text, "fleet_target_up", &[&format!("target=\"{target}\"")])
                        == Some(1.0),
                    "{target} in the gzip body"
                );
            }
            let types: Vec<&str> = text.lines().filter(|l| l.starts_with("# TYPE ")).collect();
            let mut unique = types.clone();
            unique.sort_unstable();
            unique.dedup();
            assert_eq!(unique.len(), types.len(), "each family once");
            assert_eq!(
                text.ends_with("# EOF\n"),
                accept.is_some(),
                "OpenMetrics ends with EOF"
            );
            tokio::time::sleep(Duration::from_millis(700)).await;
        }
    }
}

#[tokio::test]
async fn accept_encoding_gets_gzip_only_for_gzip_with_a_positive_q() {
    let (_sim, exporter) = exporter_with_one_poll().await;
    let url = format!("{}/metrics", exporter.url);
    for (accept_encoding, gzipped) in [
        ("gzip", true),
        ("x-gzip", true),
        ("GZIP;q=0.5", true),
        ("br, deflate;q=0.9, gzip;q=0.1", true),
        ("identity", false),
        ("br, deflate", false),
        ("gzip;q=0", false),
        ("gzip;q=0.000", false),
        ("gzip;q=abc", false),
        ("*", false),
    ] {
        let resp = get(&url, &[(ACCEPT_ENCODING, accept_encoding)]).await;
        let encoding = resp
            .headers()
            .get(CONTENT_ENCODING)
            .map(|v| v.to_str().unwrap().to_string());
        assert_eq!(
            encoding.as_deref(),
            gzipped.then_some("gzip"),
            "Accept-Encoding: {accept_encoding}"
        );
    }
}

#[tokio::test]
async fn process_and_http_series_are_on_metrics_only() {
    let sim = IkuaiSim::start(IkuaiSimConfig::default()).await.unwrap();
    let exporter = common::start_exporter(&ikuai_target("r1", &sim.url(), "admin", "")).await;
    exporter
        .wait_for(Duration::from_secs(10), "r1 up", |m| {
            sample(m, "fleet_target_up", &["target=\"r1\""]) == Some(1.0)
        })
        .await;
    let (_, first) = exporter.get("/metrics").await;
    let (_, metrics) = exporter.get("/metrics").await;
    for family in [
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_virtual_memory_bytes",
        "process_open_fds",
        "process_max_fds",
        "process_start_time_seconds",
    ] {
        let value = sample(&metrics, family, &[]).unwrap_or_else(|| panic!("{family} missing"));
        assert!(value > 0.0, "{family} = {value}");
    }
    let rss = sample(&metrics, "process_resident_memory_bytes", &[]).unwrap();
    assert!(rss > 1e6 && rss < 4e9, "resident memory {rss}");
    let start = sample(&metrics, "process_start_time_seconds", &[]).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(
        start <= now && start > now - 3600.0,
        "start time {start} vs now {now}"
    );
    let served = |text: &str| {
        sample(
            text,
            "fleet_exporter_http_requests_total",
            &["handler=\"/metrics\"", "code=\"200\""],
        )
        .unwrap_or(0.0)
    };
    assert!(
        served(&metrics) >= served(&first) + 1.0,
        "the first scrape was counted"
    );
    let (status, probe) = exporter.get("/probe?target=r1").await;
    assert_eq!(status, 200);
    assert!(probe.contains("fleet_target_up{"));
    assert!(
        !probe.contains("process_") && !probe.contains("fleet_exporter_http_requests_total"),
        "/probe carries the target's series only"
    );
}
