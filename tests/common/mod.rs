//! Shared test harness: a real exporter on 127.0.0.1 with real pollers, scraped over HTTP.
#![allow(dead_code)]

pub(crate) mod binary;
pub(crate) mod exposition;
pub(crate) mod namespace;

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fleet_core::app::App;
use fleet_core::config::{Config, FileFormat, Source};
use fleet_exporter::server;
use fleet_exporter::web::{self, WebConfig};

pub(crate) struct Exporter {
    pub app: Arc<App>,
    pub url: String,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Exporter {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Starts an exporter serving `config` (TOML), or the file `source` names when it is one.
pub(crate) async fn start_exporter_with(config: &str, source: Source) -> Exporter {
    start_exporter_web(config, source, WebConfig::default()).await
}

/// Starts an exporter behind `web`'s TLS and basic auth; `url` is `https://` when it has TLS.
pub(crate) async fn start_exporter_web(config: &str, source: Source, web: WebConfig) -> Exporter {
    start_exporter_full(config, source, web, &server::Options::default()).await
}

/// Starts an exporter without its own process and HTTP series: every scrape between two polls
/// serves the same bytes.
pub(crate) async fn start_exporter_without_self_metrics(config: &str) -> Exporter {
    let options = server::Options {
        exporter_metrics: false,
        ..server::Options::default()
    };
    start_exporter_full(config, Source::Builtin, WebConfig::default(), &options).await
}

pub(crate) async fn start_exporter_full(
    config: &str,
    source: Source,
    web: WebConfig,
    options: &server::Options,
) -> Exporter {
    let config = match &source {
        Source::File(path) => Config::load(path, fleet_drivers::KINDS),
        Source::Builtin => Config::parse(
            config,
            FileFormat::Toml,
            Path::new("."),
            fleet_drivers::KINDS,
        ),
    }
    .expect("test config");
    let app = App::new(source, fleet_drivers::KINDS);
    app.apply(&config).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let scheme = if web.tls_enabled() { "https" } else { "http" };
    let url = format!("{scheme}://{}", listener.local_addr().unwrap());
    let listener = web::Listener::new(listener, &web).unwrap();
    let router = web::protect(server::router_with(app.clone(), options), &web);
    let server = tokio::spawn(async move {
        let _ = web::serve(listener, router, std::future::pending()).await;
    });
    Exporter { app, url, server }
}

pub(crate) async fn start_exporter(config: &str) -> Exporter {
    start_exporter_with(config, Source::Builtin).await
}

impl Exporter {
    pub(crate) async fn get(&self, path: &str) -> (u16, String) {
        let resp = reqwest::get(format!("{}{path}", self.url)).await.unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    }

    pub(crate) async fn metrics(&self) -> String {
        self.get("/metrics").await.1
    }

    /// Scrapes until `pred` holds for the exposition, or panics after `timeout`.
    pub(crate) async fn wait_for(
        &self,
        timeout: Duration,
        what: &str,
        pred: impl Fn(&str) -> bool,
    ) -> String {
        let start = Instant::now();
        loop {
            let text = self.metrics().await;
            if pred(&text) {
                return text;
            }
            assert!(
                start.elapsed() < timeout,
                "timed out waiting for {what}; last scrape:\n{text}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The value of the first sample whose name matches and whose labels contain every `labels`
/// fragment (`target="r1"`).
pub(crate) fn sample(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.split(['{', ' ']).next() == Some(name))
        .find(|l| labels.iter().all(|f| l.contains(f)))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

pub(crate) fn count(text: &str, name: &str, labels: &[&str]) -> usize {
    text.lines()
        .filter(|l| l.split(['{', ' ']).next() == Some(name))
        .filter(|l| labels.iter().all(|f| l.contains(f)))
        .count()
}

pub(crate) async fn eventually<F, Fut>(timeout: Duration, what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    while !f().await {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A config target block for a device of `kind` that logs in with a password.
pub(crate) fn target(kind: &str, name: &str, url: &str, password: &str, extra: &str) -> String {
    format!(
        "[[targets]]\nname = \"{name}\"\nkind = \"{kind}\"\nurl = \"{url}\"\npassword = \"{password}\"\n{extra}\n"
    )
}

/// A config target block for an iKuai router.
pub(crate) fn ikuai_target(name: &str, url: &str, password: &str, extra: &str) -> String {
    target("ikuai", name, url, password, extra)
}

/// A fresh, empty scratch directory for one test (names include the test binary's pid, so
/// parallel test binaries never share one).
pub(crate) fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("fleet-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `VmHWM` (peak) and `VmRSS` of this process in KiB.
pub(crate) fn memory_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}
