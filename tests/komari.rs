//! The Komari driver against the Komari simulator, over real sockets (HTTP, WebSocket and
//! JSON-RPC). The first tests pin the WebSocket source; the RPC source's are at the end.

mod common;

use std::time::Duration;

use common::{count, sample, start_exporter};
use fleet_sim::komari::{Fault, KomariSim, KomariSimConfig, WsFault};

const WAIT: Duration = Duration::from_secs(10);
const FAST: &str = "interval = \"500ms\"\ntimeout = \"400ms\"\n";
const API_KEY: &str = "k0mari-api-key-0123456789";

/// A target on the WebSocket source (`source = "ws"`).
fn target(url: &str, extra: &str) -> String {
    source_target(url, "ws", extra)
}

fn source_target(url: &str, source: &str, extra: &str) -> String {
    format!(
        "[[targets]]\nname = \"k\"\nkind = \"komari\"\nurl = \"{url}\"\nsource = \"{source}\"\n{FAST}{extra}\n"
    )
}

async fn sim(cfg: KomariSimConfig) -> KomariSim {
    KomariSim::start(cfg).await.unwrap()
}

fn up(m: &str) -> bool {
    sample(m, "fleet_target_up", &["target=\"k\""]) == Some(1.0)
}

fn polls(m: &str) -> f64 {
    sample(m, "fleet_target_polls_total", &["target=\"k\""]).unwrap_or(0.0)
}

fn errors(m: &str, reason: &str) -> f64 {
    let labels = ["target=\"k\"", &format!("reason=\"{reason}\"")];
    sample(m, "fleet_target_poll_errors_total", &labels).unwrap_or(0.0)
}

/// At least one WebSocket replaced after the server or network dropped it.
fn reconnected(m: &str) -> bool {
    let labels = ["target=\"k\"", "reason=\"dropped\""];
    sample(m, "komari_websocket_reconnects_total", &labels).unwrap_or(0.0) >= 1.0
}

fn node(uuid: &str) -> String {
    format!("uuid=\"{uuid}\"")
}

#[tokio::test]
async fn normal_polling_over_one_websocket() {
    let server = sim(KomariSimConfig {
        nodes: 6,
        offline: 1,
        ..KomariSimConfig::default()
    })
    .await;
    let exporter = start_exporter(&target(&server.url(), "")).await;
    let m = exporter.wait_for(WAIT, "first poll", up).await;

    assert_eq!(sample(&m, "komari_nodes", &[]), Some(6.0), "{m}");
    assert_eq!(sample(&m, "komari_nodes_online", &[]), Some(5.0));
    assert_eq!(count(&m, "komari_node_info", &[]), 6);
    assert_eq!(count(&m, "komari_build_info", &["version=\"1.0.7\""]), 1);
    let first = node(&server.uuid(0));
    assert_eq!(sample(&m, "komari_node_online", &[&first]), Some(1.0));
    let cpu = sample(&m, "komari_node_cpu_usage_ratio", &[&first]).unwrap();
    assert!(cpu > 0.0 && cpu < 1.0, "percent becomes a ratio: {cpu}");
    let used = sample(&m, "komari_node_memory_used_bytes", &[&first]).unwrap();
    let total = sample(&m, "komari_node_memory_total_bytes", &[&first]).unwrap();
    assert!(used > 0.0 && used < total, "{used} of {total}");
    assert_eq!(total, 479_670_272.0);
    assert_eq!(count(&m, "komari_node_connections", &[&first]), 2);
    assert!(sample(&m, "komari_node_uptime_seconds", &[&first]).unwrap() > 600_000.0);
    let reported = sample(&m, "komari_node_last_report_timestamp_seconds", &[&first]).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(
        (now - reported).abs() < 10.0,
        "fresh report: {reported} vs {now}"
    );
    assert_eq!(
        count(
            &m,
            "komari_node_info",
            &["name=\"lab \\\"gpu\\\" C:\\\\box\\nrack 2\""]
        ),
        1,
        "hostile node name escaped"
    );
    assert_eq!(count(&m, "komari_node_gpu_info", &[]), 1);

    // Traffic counters move forward between polls; the socket stays the same.
    let tx = |m: &str| sample(m, "komari_node_network_transmit_bytes_total", &[&first]).unwrap();
    let before = tx(&m);
    let p = polls(&m);
    let m = exporter
        .wait_for(WAIT, "three more polls", |m| polls(m) >= p + 3.0)
        .await;
    assert!(tx(&m) >= before);
    assert_eq!(server.ws_connects(), 1, "one WebSocket for every poll");
    assert!(server.ws_requests() >= 4);
    assert_eq!(
        server.node_list_requests(),
        1,
        "node list on the slow schedule"
    );
    assert_eq!(server.logins(), 0, "anonymous on a public site");
    assert_eq!(
        sample(
            &m,
            "komari_websocket_reconnects_total",
            &["reason=\"dropped\""]
        ),
        Some(0.0)
    );
    let errs: f64 = ["timeout", "connect", "http", "auth", "api", "decode"]
        .iter()
        .map(|r| errors(&m, r))
        .sum();
    assert_eq!(errs, 0.0, "{m}");
}

#[tokio::test]
async fn a_dropped_websocket_comes_back_and_is_counted() {
    let server = sim(KomariSimConfig::default()).await;
    let exporter = start_exporter(&target(&server.url(), "")).await;
    exporter.wait_for(WAIT, "first poll", up).await;
    assert_eq!(server.ws_connects(), 1);
    server.drop_connections();
    let m = exporter
        .wait_for(WAIT, "a counted reconnect", reconnected)
        .await;
    assert!(up(&m), "metrics resume: {m}");
    assert!(count(&m, "komari_node_cpu_usage_ratio", &[]) > 0);
    assert_eq!(server.ws_connects(), 2);
    assert_eq!(server.ws_open(), 1, "the old socket is gone");

    // A close frame in place of a reply: a counted connect error, no stale data, then recovery.
    server.set_ws_fault(WsFault::Close);
    let m = exporter
        .wait_for(WAIT, "a connect error", |m| errors(m, "connect") >= 1.0)
        .await;
    assert_eq!(sample(&m, "fleet_target_up", &["target=\"k\""]), Some(0.0));
    assert_eq!(count(&m, "komari_node_cpu_usage_ratio", &[]), 0);
    server.set_ws_fault(WsFault::None);
    exporter.wait_for(WAIT, "recovery", up).await;
}

#[tokio::test]
async fn a_silent_socket_is_a_timeout_not_a_hang() {
    let server = sim(KomariSimConfig::default()).await;
    server.set_ws_fault(WsFault::Silent);
    let exporter = start_exporter(&target(&server.url(), "")).await;
    let m = exporter
        .wait_for(WAIT, "a timeout", |m| errors(m, "timeout") >= 2.0)
        .await;
    assert_eq!(count(&m, "komari_node_info", &[]), 0);
    server.set_ws_fault(WsFault::None);
    let m = exporter.wait_for(WAIT, "recovery", up).await;
    assert!(count(&m, "komari_node_online", &[]) > 0);
}

#[tokio::test]
async fn private_site_without_credentials_is_an_auth_error_and_down() {
    let server = sim(KomariSimConfig {
        private: true,
        api_key: Some(API_KEY.into()),
        ..KomariSimConfig::default()
    })
    .await;
    let exporter = start_exporter(&target(&server.url(), "")).await;
    let m = exporter
        .wait_for(WAIT, "an auth error", |m| errors(m, "auth") >= 1.0)
        .await;
    assert_eq!(sample(&m, "fleet_target_up", &["target=\"k\""]), Some(0.0));
    assert_eq!(count(&m, "komari_node_info", &[]), 0);
    assert!(server.ws_refused() >= 1);
    let (_, page) = exporter.get("/").await;
    assert!(page.contains("Private site is enabled"), "{page}");
}

#[tokio::test]
async fn private_site_with_an_api_key_works() {
    let server = sim(KomariSimConfig {
        private: true,
        api_key: Some(API_KEY.into()),
        ..KomariSimConfig::default()
    })
    .await;
    let extra = format!("api_key = \"{API_KEY}\"\nallow_insecure_auth = true\n");
    let exporter = start_exporter(&target(&server.url(), &extra)).await;
    let m = exporter.wait_for(WAIT, "first poll", up).await;
    assert_eq!(sample(&m, "komari_nodes", &[]), Some(6.0));
    assert!(count(&m, "komari_node_ping_loss_ratio", &[]) > 0);
    assert_eq!(server.unauthorized(), 0);
    assert_eq!(server.logins(), 0);
    assert!(!m.contains(API_KEY));
    let (_, page) = exporter.get("/").await;
    assert!(!page.contains(API_KEY));
}

#[tokio::test]
async fn password_login_once_and_again_only_after_a_401() {
    let server = sim(KomariSimConfig {
        private: true,
        username: "admin".into(),
        password: "s3cret-pw".into(),
        ..KomariSimConfig::default()
    })
    .await;
    let extra = "username = \"admin\"\npassword = \"s3cret-pw\"\nallow_insecure_auth = true\n";
    let exporter = start_exporter(&target(&server.url(), extra)).await;
    let m = exporter.wait_for(WAIT, "first poll", up).await;
    assert_eq!(server.logins(), 1);
    let p = polls(&m);
    exporter
        .wait_for(WAIT, "more polls", |m| polls(m) >= p + 3.0)
        .await;
    assert_eq!(server.logins(), 1, "the session is kept");

    // The server forgets the session and the socket: one login brings both back.
    server.expire_sessions();
    server.drop_connections();
    let m = exporter.wait_for(WAIT, "a reconnect", reconnected).await;
    assert!(up(&m));
    assert_eq!(server.logins(), 2);
    assert_eq!(
        sample(&m, "fleet_target_logins_total", &["target=\"k\""]),
        Some(2.0)
    );
    assert!(!m.contains("s3cret-pw"));
}

#[tokio::test]
async fn credentials_are_never_sent_to_plain_http_by_default() {
    let text = target("http://127.0.0.1:9", "api_key = \"0123456789abcdef\"");
    let e = fleet_core::config::Config::parse(
        &text,
        fleet_core::config::FileFormat::Toml,
        std::path::Path::new("."),
        fleet_drivers::KINDS,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("allow_insecure_auth"), "{e}");
}

#[tokio::test]
async fn offline_node_is_down_with_info_and_no_stale_gauges() {
    let server = sim(KomariSimConfig {
        nodes: 5,
        offline: 1,
        ..KomariSimConfig::default()
    })
    .await;
    let exporter = start_exporter(&target(&server.url(), "")).await;
    let m = exporter.wait_for(WAIT, "first poll", up).await;
    let off = node(&server.uuid(4));
    assert_eq!(sample(&m, "komari_node_online", &[&off]), Some(0.0), "{m}");
    assert_eq!(count(&m, "komari_node_info", &[&off]), 1);
    let last = sample(&m, "komari_node_last_report_timestamp_seconds", &[&off]).unwrap();
    let on = sample(
        &m,
        "komari_node_last_report_timestamp_seconds",
        &[&node(&server.uuid(0))],
    )
    .unwrap();
    assert!(on - last > 3.0 * 3600.0, "an old report: {last} vs {on}");
    for stale in [
        "komari_node_cpu_usage_ratio",
        "komari_node_memory_used_bytes",
        "komari_node_load1",
        "komari_node_network_receive_bytes_total",
        "komari_node_uptime_seconds",
        "komari_node_ping_loss_ratio",
    ] {
        assert_eq!(count(&m, stale, &[&off]), 0, "{stale}");
    }
    assert_eq!(sample(&m, "komari_nodes_online", &[]), Some(4.0));

    // A node going offline loses its live gauges at the next poll.
    server.set_offline(2);
    let gone = node(&server.uuid(3));
    let m = exporter
        .wait_for(WAIT, "node 3 offline", |m| {
            sample(m, "komari_node_online", &[&gone]) == Some(0.0)
        })
        .await;
    assert_eq!(count(&m, "komari_node_cpu_usage_ratio", &[&gone]), 0);
}

#[tokio::test]
async fn ping_loss_and_lost_probes_are_never_latency() {
    let server = sim(KomariSimConfig {
        nodes: 6,
        offline: 0,
        ping_tasks: 2,
        lossy_node: Some(2),
        ..KomariSimConfig::default()
    })
    .await;
    let exporter = start_exporter(&target(&server.url(), "")).await;
    let m = exporter.wait_for(WAIT, "first poll", up).await;
    let lossy = node(&server.uuid(2));
    let clean = node(&server.uuid(0));
    assert_eq!(
        sample(
            &m,
            "komari_node_ping_loss_ratio",
            &[&lossy, "task_id=\"1\""]
        ),
        Some(0.25),
        "{m}"
    );
    assert_eq!(
        count(
            &m,
            "komari_node_ping_rtt_seconds",
            &[&lossy, "task_id=\"1\""]
        ),
        0,
        "the newest probe was lost: no latency"
    );
    assert_eq!(
        sample(
            &m,
            "komari_node_ping_loss_ratio",
            &[&clean, "task_id=\"1\""]
        ),
        Some(0.0)
    );
    let rtt = sample(
        &m,
        "komari_node_ping_rtt_seconds",
        &[&clean, "task_id=\"1\""],
    )
    .unwrap();
    assert!(rtt > 0.0 && rtt < 1.0, "ms became seconds: {rtt}");
    assert_eq!(
        count(&m, "komari_node_ping_loss_ratio", &[&node(&server.uuid(1))]),
        0
    );
    assert_eq!(count(&m, "komari_ping_task_info", &[]), 2);
    assert_eq!(
        count(
            &m,
            "komari_ping_task_info",
            &["task_id=\"1\"", "task=\"百度\"", "interval=\"30\""]
        ),
        1
    );
    assert!(server.ping_requests() >= 6, "one call per online node");
}

#[tokio::test]
async fn ping_max_nodes_caps_ping_calls() {
    let server = sim(KomariSimConfig {
        nodes: 10,
        offline: 0,
        ..KomariSimConfig::default()
    })
    .await;
    let extra = "ping_max_nodes = 3\n";
    let exporter = start_exporter(&target(&server.url(), extra)).await;
    let m = exporter.wait_for(WAIT, "first poll", up).await;
    assert_eq!(sample(&m, "komari_ping_nodes_omitted", &[]), Some(7.0));
    // One poll may be in flight while the counters are read.
    let p = polls(&m) as u64;
    let calls = server.ping_requests();
    assert!(
        (3 * p..=3 * (p + 1)).contains(&calls),
        "{calls} ping calls in {p} polls"
    );
}

#[tokio::test]
async fn bad_answers_are_counted_errors_never_stale_data() {
    // WebSocket replies: an error status and text that is not JSON fail the poll, since the
    // live state is required; the node list alone would be stale.
    for (fault, reason) in [(WsFault::Error, "api"), (WsFault::NotJson, "decode")] {
        let server = sim(KomariSimConfig::default()).await;
        let exporter = start_exporter(&target(&server.url(), "")).await;
        exporter.wait_for(WAIT, "first poll", up).await;
        server.set_ws_fault(fault);
        let m = exporter
            .wait_for(WAIT, reason, |m| errors(m, reason) >= 1.0)
            .await;
        assert_eq!(
            count(&m, "komari_node_cpu_usage_ratio", &[]),
            0,
            "{reason}: {m}"
        );
        assert_eq!(
            count(&m, "komari_node_online", &[]),
            0,
            "online state unknown"
        );
        assert_eq!(sample(&m, "fleet_target_up", &["target=\"k\""]), Some(0.0));
        assert_eq!(count(&m, "komari_node_info", &[]), 0, "no stale node list");
    }
    // HTTP answers: a broken node list or ping answer costs only its section.
    for (fault, reason) in [
        (Fault::Html, "decode"),
        (Fault::Truncated, "decode"),
        (Fault::Status500, "http"),
    ] {
        let server = sim(KomariSimConfig::default()).await;
        server.set_fault(fault);
        let exporter = start_exporter(&target(&server.url(), "")).await;
        let m = exporter
            .wait_for(WAIT, reason, |m| errors(m, reason) >= 1.0 && up(m))
            .await;
        assert!(
            count(&m, "komari_node_cpu_usage_ratio", &[]) > 0,
            "{reason}: {m}"
        );
        assert_eq!(count(&m, "komari_node_ping_loss_ratio", &[]), 0);
    }
}

#[tokio::test]
async fn refused_upgrades_follow_the_poll_backoff_and_recover() {
    let server = sim(KomariSimConfig::default()).await;
    server.set_ws_fault(WsFault::RefuseUpgrade);
    let exporter = start_exporter(&target(&server.url(), "")).await;
    let m = exporter
        .wait_for(WAIT, "http errors", |m| errors(m, "http") >= 1.0)
        .await;
    assert_eq!(sample(&m, "fleet_target_up", &["target=\"k\""]), Some(0.0));
    tokio::time::sleep(Duration::from_secs(2)).await;
    // One attempt a poll; polls every 500 ms doubling while failing (no backoff_max here).
    assert!(server.ws_refused() <= 5, "{} attempts", server.ws_refused());
    server.set_ws_fault(WsFault::None);
    exporter
        .wait_for(Duration::from_secs(20), "recovery", up)
        .await;
}

#[tokio::test]
async fn a_new_node_triggers_a_node_list_refresh() {
    let server = sim(KomariSimConfig {
        nodes: 3,
        offline: 0,
        ..KomariSimConfig::default()
    })
    .await;
    let exporter = start_exporter(&target(&server.url(), "")).await;
    exporter.wait_for(WAIT, "first poll", up).await;
    assert_eq!(server.node_list_requests(), 1);
    server.set_nodes(4);
    let new = node(&server.uuid(3));
    let m = exporter
        .wait_for(WAIT, "the new node described", |m| {
            count(m, "komari_node_info", &[&new]) == 1
        })
        .await;
    assert_eq!(sample(&m, "komari_nodes", &[]), Some(4.0));
    assert_eq!(server.node_list_requests(), 2);
    // A deleted node disappears with the next node list.
    server.set_nodes(2);
    exporter
        .wait_for(WAIT, "deleted nodes gone", |m| {
            sample(m, "komari_nodes", &[]) == Some(2.0)
        })
        .await;
}

// The JSON-RPC source (`POST /api/rpc2`, servers 1.0.7 and later).

/// An exporter polling `server` over `source`, and its first scrape with the target up.
async fn polling(server: &KomariSim, source: &str, extra: &str) -> (common::Exporter, String) {
    let exporter = start_exporter(&source_target(&server.url(), source, extra)).await;
    let m = exporter.wait_for(WAIT, "first poll", up).await;
    (exporter, m)
}

/// The default simulated server, as release `version` would be.
fn on_version(version: &str) -> KomariSimConfig {
    KomariSimConfig {
        version: version.into(),
        ..KomariSimConfig::default()
    }
}

fn source_is(m: &str, source: &str) -> bool {
    sample(m, "komari_source_info", &[&format!("source=\"{source}\"")]) == Some(1.0)
}

fn all_errors(m: &str) -> f64 {
    [
        "timeout", "connect", "http", "auth", "api", "decode", "limit",
    ]
    .iter()
    .map(|r| errors(m, r))
    .sum()
}

#[tokio::test]
async fn auto_reads_every_node_and_its_ping_statistics_in_one_batch_per_poll() {
    let server = sim(KomariSimConfig {
        nodes: 6,
        offline: 1,
        ping_tasks: 2,
        lossy_node: Some(2),
        version: "1.2.6".into(),
        ..KomariSimConfig::default()
    })
    .await;
    let extra = "ping_stats_hours = 1\nnodes_every = 3\n";
    let (exporter, m) = polling(&server, "auto", extra).await;
    assert!(source_is(&m, "rpc"), "{m}");
    assert_eq!(sample(&m, "komari_nodes", &[]), Some(6.0));
    assert_eq!(sample(&m, "komari_nodes_online", &[]), Some(5.0));
    assert_eq!(count(&m, "komari_node_info", &[]), 6);
    assert_eq!(count(&m, "komari_build_info", &["version=\"1.2.6\""]), 1);
    let first = node(&server.uuid(0));
    let cpu = sample(&m, "komari_node_cpu_usage_ratio", &[&first]).unwrap();
    assert!(cpu > 0.0 && cpu < 1.0, "{cpu}");
    assert_eq!(
        sample(&m, "komari_node_memory_total_bytes", &[&first]),
        Some(479_670_272.0)
    );
    let tcp = sample(&m, "komari_node_connections", &[&first, "protocol=\"tcp\""]).unwrap();
    let udp = sample(&m, "komari_node_connections", &[&first, "protocol=\"udp\""]).unwrap();
    assert!(
        tcp >= 10.0 && udp >= 2.0,
        "TCP is the total less UDP: {tcp} {udp}"
    );
    assert!(sample(&m, "komari_node_uptime_seconds", &[&first]).unwrap() > 600_000.0);
    let off = node(&server.uuid(5));
    assert_eq!(sample(&m, "komari_node_online", &[&off]), Some(0.0));
    assert_eq!(count(&m, "komari_node_cpu_usage_ratio", &[&off]), 0);

    // Ping statistics for every online node that has tasks, from the status call itself.
    let task1 = "task_id=\"1\"";
    assert_eq!(
        sample(&m, "komari_node_ping_loss_ratio", &[&first, task1]),
        Some(0.0)
    );
    let lossy = node(&server.uuid(2));
    assert_eq!(
        sample(&m, "komari_node_ping_loss_ratio", &[&lossy, task1]),
        Some(0.25)
    );
    let (min, avg, max) = (
        sample(&m, "komari_node_ping_rtt_min_seconds", &[&first, task1]).unwrap(),
        sample(&m, "komari_node_ping_rtt_avg_seconds", &[&first, task1]).unwrap(),
        sample(&m, "komari_node_ping_rtt_max_seconds", &[&first, task1]).unwrap(),
    );
    assert!(
        0.0 < min && min <= avg && avg <= max && max < 1.0,
        "{min} {avg} {max}"
    );
    let p50 = sample(&m, "komari_node_ping_rtt_p50_seconds", &[&first, task1]).unwrap();
    let p99 = sample(&m, "komari_node_ping_rtt_p99_seconds", &[&first, task1]).unwrap();
    assert!(min <= p50 && p50 <= p99 && p99 <= max, "{p50} {p99}");
    assert_eq!(
        count(
            &m,
            "komari_ping_task_info",
            &[task1, "task=\"百度\"", "interval=\"30\""]
        ),
        1,
        "{m}"
    );
    assert_eq!(sample(&m, "komari_ping_nodes_omitted", &[]), Some(0.0));

    let p = polls(&m);
    let m = exporter
        .wait_for(WAIT, "four more polls", |m| polls(m) >= p + 4.0)
        .await;
    assert_eq!(server.ws_connects(), 0, "no WebSocket");
    assert_eq!(server.ping_requests(), 0, "no ping call per node");
    assert_eq!(server.node_list_requests(), 0, "no REST node list");
    // One batch a poll; a poll may be in flight while the counters are read.
    let (polled, batches) = (polls(&m) as u64, server.rpc_requests());
    assert!(
        (polled..=polled + 1).contains(&batches),
        "{batches} batches in {polled} polls"
    );
    assert_eq!(all_errors(&m), 0.0, "{m}");
}

#[tokio::test]
async fn auto_uses_the_websocket_on_a_server_before_1_0_7() {
    let server = sim(on_version("1.0.6")).await;
    let (_exporter, m) = polling(&server, "auto", "").await;
    assert!(source_is(&m, "websocket"), "{m}");
    assert_eq!(server.rpc_requests(), 0, "the version says there is no RPC");
    assert_eq!(server.ws_connects(), 1);
    assert!(count(&m, "komari_node_ping_loss_ratio", &[]) > 0);
    assert_eq!(all_errors(&m), 0.0, "{m}");
}

#[tokio::test]
async fn auto_falls_back_to_the_websocket_on_method_not_found() {
    let server = sim(KomariSimConfig {
        version: "1.2.6".into(),
        rpc_errors: vec![("common:getNodesLatestStatus", -32601)],
        ..KomariSimConfig::default()
    })
    .await;
    let (exporter, m) = polling(&server, "auto", "").await;
    assert!(source_is(&m, "websocket"), "{m}");
    assert_eq!(count(&m, "komari_node_info", &[]), 6);
    let p = polls(&m);
    let m = exporter
        .wait_for(WAIT, "three more polls", |m| polls(m) >= p + 3.0)
        .await;
    assert_eq!(server.rpc_requests(), 1, "asked once, then the WebSocket");
    assert_eq!(all_errors(&m), 0.0, "a fallback is not an error: {m}");
}

#[tokio::test]
async fn auto_falls_back_when_a_source_build_has_no_rpc_endpoint() {
    // Source builds say 0.0.1 whatever their age; this one predates /api/rpc2 (404).
    let server = sim(on_version("0.0.1")).await;
    let exporter = start_exporter(&source_target(&server.url(), "auto", "")).await;
    let m = exporter
        .wait_for(WAIT, "a WebSocket poll", |m| {
            up(m) && source_is(m, "websocket")
        })
        .await;
    assert_eq!(server.not_found(), 1, "/api/rpc2 asked once: {m}");
    assert!(count(&m, "komari_node_cpu_usage_ratio", &[]) > 0);
    assert_eq!(all_errors(&m), 0.0, "a fallback is not an error: {m}");
}

#[tokio::test]
async fn source_rpc_never_falls_back() {
    let server = sim(on_version("1.0.6")).await;
    let exporter = start_exporter(&source_target(&server.url(), "rpc", "")).await;
    let m = exporter
        .wait_for(WAIT, "an http error", |m| errors(m, "http") >= 1.0)
        .await;
    assert_eq!(sample(&m, "fleet_target_up", &["target=\"k\""]), Some(0.0));
    assert_eq!(server.ws_connects(), 0);
    let (_, page) = exporter.get("/").await;
    assert!(page.contains("api/rpc2: HTTP 404"), "{page}");
}

#[tokio::test]
async fn rpc_errors_are_auth_and_api_failures() {
    for (code, reason) in [(-32041, "auth"), (-32603, "api"), (-32601, "api")] {
        let server = sim(KomariSimConfig {
            rpc_errors: vec![("common:getNodesLatestStatus", code)],
            ..KomariSimConfig::default()
        })
        .await;
        // `rpc` turns even MethodNotFound into an error; `auto` would fall back.
        let exporter = start_exporter(&source_target(&server.url(), "rpc", "")).await;
        let m = exporter
            .wait_for(WAIT, reason, |m| errors(m, reason) >= 1.0)
            .await;
        assert_eq!(
            sample(&m, "fleet_target_up", &["target=\"k\""]),
            Some(0.0),
            "{code}"
        );
        assert_eq!(count(&m, "komari_node_info", &[]), 0, "no stale node list");
    }
    // A failing optional method costs its series only; one the server lacks is no error.
    let server = sim(KomariSimConfig {
        version: "1.2.6".into(),
        rpc_errors: vec![
            ("public:getPingMetricStats", -32601),
            ("public:getPublicPingTasks", -32603),
        ],
        ..KomariSimConfig::default()
    })
    .await;
    let extra = "ping_stats_hours = 24\n";
    let exporter = start_exporter(&source_target(&server.url(), "auto", extra)).await;
    let m = exporter
        .wait_for(WAIT, "an api error", |m| up(m) && errors(m, "api") >= 1.0)
        .await;
    assert!(source_is(&m, "rpc"));
    assert_eq!(count(&m, "komari_node_ping_rtt_p50_seconds", &[]), 0);
    assert!(count(&m, "komari_node_ping_loss_ratio", &[]) > 0, "{m}");
    assert_eq!(
        count(&m, "komari_ping_task_info", &["interval=\"\""]),
        2,
        "names from the statistics, no interval without the task list"
    );
}

#[tokio::test]
async fn private_site_over_rpc_anonymous_key_and_login() {
    let server = sim(KomariSimConfig {
        private: true,
        api_key: Some(API_KEY.into()),
        password: "s3cret-pw".into(),
        ..KomariSimConfig::default()
    })
    .await;
    let exporter = start_exporter(&source_target(&server.url(), "auto", "")).await;
    let m = exporter
        .wait_for(WAIT, "an auth error", |m| errors(m, "auth") >= 1.0)
        .await;
    assert_eq!(count(&m, "komari_node_info", &[]), 0);
    let (_, page) = exporter.get("/").await;
    assert!(page.contains("Private site is enabled"), "{page}");
    drop(exporter);

    let extra = format!("api_key = \"{API_KEY}\"\nallow_insecure_auth = true\n");
    let (exporter, m) = polling(&server, "auto", &extra).await;
    assert!(source_is(&m, "rpc"));
    assert_eq!(sample(&m, "komari_nodes", &[]), Some(6.0));
    assert!(!m.contains(API_KEY));
    drop(exporter);

    let extra = "username = \"admin\"\npassword = \"s3cret-pw\"\nallow_insecure_auth = true\n";
    let (exporter, m) = polling(&server, "auto", extra).await;
    assert!(source_is(&m, "rpc"));
    assert_eq!(server.logins(), 1);
    server.expire_sessions();
    let p = polls(&m);
    let m = exporter
        .wait_for(WAIT, "two more polls", |m| polls(m) >= p + 2.0 && up(m))
        .await;
    assert_eq!(server.logins(), 2, "one login after the 401");
    assert_eq!(
        sample(&m, "fleet_target_logins_total", &["target=\"k\""]),
        Some(2.0)
    );
    assert_eq!(server.ws_connects(), 0);
    assert!(!m.contains("s3cret-pw"));
}

#[tokio::test]
async fn agent_messages_are_a_gauge_over_the_websocket_and_with_websocket_detail() {
    let cfg = KomariSimConfig {
        agent_error_node: Some(3),
        ..KomariSimConfig::default()
    };
    let broken = |server: &KomariSim| node(&server.uuid(3));
    let message = "message=\"failed to read disk usage: statfs /data: permission denied\"";

    let server = sim(cfg.clone()).await;
    let exporter = start_exporter(&target(&server.url(), "")).await;
    let m = exporter.wait_for(WAIT, "first poll", up).await;
    let id = broken(&server);
    assert_eq!(
        sample(&m, "komari_node_agent_error", &[&id]),
        Some(1.0),
        "{m}"
    );
    assert_eq!(
        count(&m, "komari_node_agent_message_info", &[&id, message]),
        1
    );
    assert_eq!(
        sample(&m, "komari_node_agent_error", &[&node(&server.uuid(0))]),
        Some(0.0)
    );
    assert_eq!(count(&m, "komari_node_agent_message_info", &[]), 1);
    drop(exporter);

    // The RPC status has neither messages nor GPU details: the WebSocket adds them on request.
    let (exporter, m) = polling(&server, "rpc", "").await;
    assert_eq!(count(&m, "komari_node_agent_error", &[]), 0, "{m}");
    assert_eq!(count(&m, "komari_node_gpu_info", &[]), 0);
    drop(exporter);
    let extra = "websocket_detail = true\n";
    let (_exporter, m) = polling(&server, "rpc", extra).await;
    assert!(source_is(&m, "rpc"));
    assert_eq!(
        sample(&m, "komari_node_agent_error", &[&id]),
        Some(1.0),
        "{m}"
    );
    assert_eq!(
        count(&m, "komari_node_agent_message_info", &[&id, message]),
        1
    );
    assert_eq!(count(&m, "komari_node_gpu_info", &[&id]), 1);
}

#[tokio::test]
async fn an_expiry_centuries_away_is_no_expiry() {
    let server = sim(KomariSimConfig {
        forever_node: Some(0),
        ..KomariSimConfig::default()
    })
    .await;
    for source in ["rpc", "ws"] {
        let exporter = start_exporter(&source_target(&server.url(), source, "")).await;
        let m = exporter.wait_for(WAIT, "first poll", up).await;
        let expiry = "komari_node_expiry_timestamp_seconds";
        assert_eq!(
            count(&m, expiry, &[&node(&server.uuid(0))]),
            0,
            "{source}: {m}"
        );
        assert_eq!(count(&m, "komari_node_info", &[&node(&server.uuid(0))]), 1);
        let dated = sample(&m, expiry, &[&node(&server.uuid(3))]).unwrap();
        assert!(dated > 1.7e9 && dated < 4e9, "{source}: {dated}");
    }
}

#[tokio::test]
async fn a_new_node_over_rpc_is_described_in_the_same_poll() {
    let server = sim(KomariSimConfig {
        nodes: 3,
        offline: 0,
        ..KomariSimConfig::default()
    })
    .await;
    let exporter = start_exporter(&source_target(&server.url(), "rpc", "")).await;
    exporter.wait_for(WAIT, "first poll", up).await;
    server.set_nodes(4);
    let new = node(&server.uuid(3));
    let m = exporter
        .wait_for(WAIT, "the new node", |m| {
            count(m, "komari_node_online", &[&new]) == 1
        })
        .await;
    assert_eq!(
        count(&m, "komari_node_info", &[&new]),
        1,
        "described as soon as it is seen: {m}"
    );
    assert_eq!(sample(&m, "komari_nodes", &[]), Some(4.0));
}
