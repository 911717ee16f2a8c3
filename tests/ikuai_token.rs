//! The iKuai driver's 4.x token API transport against the simulator's token API, over real
//! sockets (plain HTTP and the router's self-signed TLS).

mod common;

use std::time::Duration;

use common::{count, sample, start_exporter, temp_dir};
use fleet_sim::ikuai::{Firmware, IkuaiSim, IkuaiSimConfig};

const WAIT: Duration = Duration::from_secs(10);
const FAST: &str = "interval = \"500ms\"\ntimeout = \"400ms\"\n";
const TOKEN: &str = "5f2b9c0d7e1a4b3c8d6e0f1a2b3c4d5e";

async fn router(clients: usize, tls: bool) -> IkuaiSim {
    router_with(|c| {
        c.lan_clients = clients;
        c.tls = tls;
    })
    .await
}

/// A 4.x router with the test token, two IPv6 clients and `change` applied.
async fn router_with(change: impl FnOnce(&mut IkuaiSimConfig)) -> IkuaiSim {
    let mut cfg = IkuaiSimConfig {
        firmware: Firmware::V4,
        lan_clients_v6: 2,
        token: Some(TOKEN.into()),
        ..IkuaiSimConfig::default()
    };
    change(&mut cfg);
    IkuaiSim::start(cfg).await.unwrap()
}

/// A token-API target block; `extra` adds option lines.
fn target(url: &str, token: &str, extra: &str) -> String {
    format!(
        "[[targets]]\nname = \"r\"\nkind = \"ikuai\"\nurl = \"{url}\"\napi = \"token\"\ntoken = \"{token}\"\n{extra}\n"
    )
}

fn up(m: &str) -> bool {
    sample(m, "fleet_target_up", &["target=\"r\""]) == Some(1.0)
}

fn errors(m: &str, reason: &str) -> f64 {
    sample(
        m,
        "fleet_target_poll_errors_total",
        &[&format!("reason=\"{reason}\"")],
    )
    .unwrap_or(0.0)
}

#[tokio::test]
async fn the_token_api_serves_the_same_families_and_the_new_ones() {
    let sim = router(6, false).await;
    let exporter = start_exporter(&target(&sim.url(), TOKEN, FAST)).await;
    let m = exporter.wait_for(WAIT, "first poll", up).await;
    let t = "target=\"r\"";
    assert_eq!(count(&m, "ikuai_info", &[t, "api=\"4.x\""]), 1, "{m}");
    assert!(!m.contains("gwid=\"\""), "sysinfo carries the gateway id");
    for family in [
        "ikuai_cpu_usage_ratio",
        "ikuai_memory_total_bytes",
        "ikuai_receive_bytes_total",
        "ikuai_interface_up",
        "ikuai_interface_receive_bytes_total",
        "ikuai_port_link_up",
        "ikuai_interface_address_info",
        "ikuai_dns_requests_total",
        "ikuai_client_info",
        "ikuai_app_traffic_window_bytes",
    ] {
        assert!(count(&m, family, &[t]) > 0, "{family} missing:\n{m}");
    }
    let rtt = sample(&m, "ikuai_wan_rtt_seconds", &[t, "interface=\"wan1\""]).expect("rtt");
    assert!((0.001..1.0).contains(&rtt), "{rtt}");
    let loss = sample(&m, "ikuai_wan_loss_ratio", &[t, "interface=\"wan1\""]).expect("loss");
    assert!(
        (0.0..0.01).contains(&loss),
        "percent on the wire, ratio here: {loss}"
    );
    assert_eq!(
        sample(&m, "ikuai_wan_loss_ratio", &[t, "interface=\"wan2\""]),
        Some(1.0),
        "the failed line loses every probe"
    );
    assert_eq!(
        count(&m, "ikuai_wan_rtt_seconds", &["interface=\"wan2\""]),
        0
    );
    assert_eq!(
        count(&m, "ikuai_wan_rtt_seconds", &["interface=\"all\""]),
        0
    );
    let tcp = sample(&m, "ikuai_protocol_connections", &[t, "protocol=\"tcp\""]).unwrap();
    assert!(tcp > 0.0);
    assert_eq!(
        sample(&m, "ikuai_clients", &[t, "ip_version=\"4\""]),
        Some(6.0)
    );
    assert_eq!(
        sample(&m, "ikuai_clients", &[t, "ip_version=\"6\""]),
        Some(2.0)
    );
    assert_eq!(sim.logins(), 0, "no login on the token API");
    assert_eq!(sim.calls(), 0, "no /Action/call either");
    assert_eq!(sim.max_in_flight(), 0);
}

#[tokio::test]
async fn client_pages_past_ten_rows_are_all_read_deduplicated_and_capped() {
    // 25 clients, one listed twice: 26 rows in pages of 10.
    let sim = router(25, false).await;
    let extra = "interval = \"30s\"\ntimeout = \"5s\"\npage_size = 10\nmax_clients = 20\nmodules = [\"clients\"]\n";
    let exporter = start_exporter(&target(&sim.url(), TOKEN, extra)).await;
    let m = exporter.wait_for(WAIT, "first poll", up).await;
    assert_eq!(
        sample(&m, "ikuai_clients", &["ip_version=\"4\""]),
        Some(25.0)
    );
    assert_eq!(count(&m, "ikuai_client_info", &[]), 20, "max_clients");
    assert_eq!(sample(&m, "ikuai_clients_omitted", &[]), Some(5.0));
    assert_eq!(sim.token_calls(), 3, "three pages, one request each");
}

#[tokio::test]
async fn a_refused_token_is_an_auth_error_with_backoff_and_never_shown() {
    let sim = router(2, false).await;
    let wrong = "0000aaaa1111bbbb2222cccc3333dddd";
    let extra = "interval = \"200ms\"\ntimeout = \"150ms\"\nbackoff_max = \"10s\"\n";
    let exporter = start_exporter(&target(&sim.url(), wrong, extra)).await;
    let m = exporter
        .wait_for(WAIT, "an auth error", |m| errors(m, "auth") >= 1.0)
        .await;
    assert_eq!(sample(&m, "fleet_target_up", &["target=\"r\""]), Some(0.0));
    assert_eq!(count(&m, "ikuai_info", &[]), 0);
    tokio::time::sleep(Duration::from_secs(3)).await;
    // One refused request a poll; without backoff 3 s at 200 ms would be ~15.
    assert!(
        sim.token_refusals() <= 5,
        "{} refusals",
        sim.token_refusals()
    );
    let (_, page) = exporter.get("/").await;
    assert!(
        page.contains("3007"),
        "the router's code names the cause: {page}"
    );
    let m = exporter.metrics().await;
    for text in [&page, &m] {
        assert!(!text.contains(wrong), "the token leaked");
    }
}

#[tokio::test]
async fn the_token_is_never_sent_on_a_redirect() {
    let (sim, elsewhere) = (router(2, false).await, router(2, false).await);
    sim.redirect_token_api_to(&elsewhere.url());
    let exporter = start_exporter(&target(&sim.url(), TOKEN, FAST)).await;
    let m = exporter
        .wait_for(WAIT, "an http error", |m| errors(m, "http") >= 1.0)
        .await;
    assert_eq!(sample(&m, "fleet_target_up", &["target=\"r\""]), Some(0.0));
    assert!(sim.token_calls() >= 1);
    assert_eq!(elsewhere.token_calls(), 0, "the redirect was followed");
    let (_, page) = exporter.get("/").await;
    assert!(page.contains("redirects are not followed"), "{page}");
}

#[tokio::test]
async fn a_self_signed_router_needs_the_skip_option_or_its_certificate() {
    let sim = router(2, true).await;
    assert!(sim.url().starts_with("https://"));
    // Verified by default: the self-signed certificate is refused.
    let exporter = start_exporter(&target(&sim.url(), TOKEN, FAST)).await;
    let m = exporter
        .wait_for(WAIT, "a refused certificate", |m| {
            errors(m, "connect") + errors(m, "http") >= 1.0
        })
        .await;
    assert_eq!(sample(&m, "fleet_target_up", &["target=\"r\""]), Some(0.0));
    assert_eq!(
        sim.token_calls(),
        0,
        "no request without a trusted handshake"
    );
    drop(exporter);

    let skip = format!("{FAST}tls_insecure_skip_verify = true\n");
    let exporter = start_exporter(&target(&sim.url(), TOKEN, &skip)).await;
    exporter.wait_for(WAIT, "first poll, unverified", up).await;
    drop(exporter);

    let dir = temp_dir("ikuai-token-ca");
    let ca = dir.join("router.pem");
    std::fs::write(&ca, sim.cert_pem().unwrap()).unwrap();
    let trusted = format!("{FAST}ca_file = \"{}\"\n", ca.display());
    let exporter = start_exporter(&target(&sim.url(), TOKEN, &trusted)).await;
    exporter
        .wait_for(WAIT, "first poll, verified by ca_file", up)
        .await;
}

const DISKS: &str = "system/disks";
const WIRELESS: &str = "monitoring/wireless-statistics";
const REASONS: [&str; 7] = [
    "timeout", "connect", "http", "auth", "api", "decode", "limit",
];

/// Waits until the target has been polled `n` times; the text and the poll count.
async fn polled(exporter: &common::Exporter, n: f64) -> (String, f64) {
    let m = exporter
        .wait_for(WAIT, "enough polls", |m| {
            sample(m, "fleet_target_polls_total", &["target=\"r\""]).unwrap_or(0.0) >= n
        })
        .await;
    let polls = sample(&m, "fleet_target_polls_total", &["target=\"r\""]).unwrap();
    (m, polls)
}

/// Refreshes of an answer read every `every` polls after `polls` polls (the first poll reads).
fn slow_reads(polls: f64, every: f64) -> f64 {
    (polls / every).ceil()
}

#[tokio::test]
async fn disks_and_wireless_statistics_give_file_system_bytes_and_access_point_counts() {
    // Six clients: one on 2.4 GHz, three on 5 GHz, two wired.
    let sim = router(6, false).await;
    let exporter = start_exporter(&target(&sim.url(), TOKEN, FAST)).await;
    let m = exporter.wait_for(WAIT, "first poll", up).await;
    let t = "target=\"r\"";
    let value = |family: &str, label: &str| {
        sample(&m, family, &[t, label]).unwrap_or_else(|| panic!("{family}{{{label}}}:\n{m}"))
    };
    assert_eq!(
        value("ikuai_disk_size_bytes", "disk=\"sda\""),
        1_000_204_886_016.0
    );
    assert_eq!(
        count(&m, "ikuai_disk_info", &["disk=\"sdb\"", "role=\"system\""]),
        1
    );
    assert_eq!(count(&m, "ikuai_disk_partition_info", &[t]), 6);
    assert_eq!(
        count(
            &m,
            "ikuai_disk_partition_info",
            &["partition=\"sda2\"", "purpose=\"behavior_log\""]
        ),
        1
    );
    let sda3 = "partition=\"sda3\"";
    assert_eq!(
        value("ikuai_filesystem_size_bytes", sda3),
        244_062_085_120.0
    );
    assert_eq!(value("ikuai_filesystem_used_bytes", sda3), 36_864.0);
    // The behaviour log fills: what it uses comes out of what is left.
    let sda2 = "partition=\"sda2\"";
    let used = value("ikuai_filesystem_used_bytes", sda2);
    assert!(used >= 98_304.0, "{used}");
    assert_eq!(
        used + value("ikuai_filesystem_available_bytes", sda2),
        98_304.0 + 231_589_806_080.0
    );

    assert_eq!(value("ikuai_access_points", "target=\"r\""), 3.0);
    assert_eq!(value("ikuai_access_points_online", "target=\"r\""), 3.0);
    assert_eq!(
        value("ikuai_access_points_feature", "feature=\"roaming\""),
        3.0
    );
    assert_eq!(
        count(&m, "ikuai_online_clients", &["medium=\"wireless\""]),
        1,
        "once: {m}"
    );
    assert_eq!(value("ikuai_online_clients", "medium=\"wireless\""), 4.0);
    let active = value("ikuai_wireless_clients", "state=\"active\"");
    assert_eq!(
        active + value("ikuai_wireless_clients", "state=\"inactive\""),
        4.0
    );
    assert!(value("ikuai_wireless_clients_peak_24h", t) >= 4.0);
}

#[tokio::test]
async fn disks_are_read_on_the_slow_cadence_and_wireless_statistics_every_poll() {
    let sim = router(2, false).await;
    let extra = "interval = \"200ms\"\ntimeout = \"150ms\"\nports_every = 4\nmodules = [\"disks\", \"wireless\"]\n";
    let exporter = start_exporter(&target(&sim.url(), TOKEN, extra)).await;
    let (m, polls) = polled(&exporter, 9.0).await;
    let (disks, wireless) = (sim.token_path_calls(DISKS), sim.token_path_calls(WIRELESS));
    // A poll may be under way between reading the count and the simulator's counters.
    assert!(
        (polls..=polls + 1.0).contains(&(wireless as f64)),
        "{wireless} wireless calls in {polls} polls"
    );
    let slow = slow_reads(polls, 4.0);
    assert!(
        (slow..=slow + 1.0).contains(&(disks as f64)),
        "{disks} disk calls in {polls} polls"
    );
    assert_eq!(
        sim.token_paths_asked(),
        [WIRELESS, DISKS],
        "nothing else asked"
    );
    assert!(
        count(&m, "ikuai_filesystem_size_bytes", &[]) > 0,
        "served between refreshes"
    );
    for reason in REASONS {
        assert_eq!(errors(&m, reason), 0.0, "{reason}");
    }
}

#[tokio::test]
async fn a_router_without_wireless_or_the_disks_endpoint_stays_up_and_counts_no_error() {
    let sim = router_with(|c| {
        c.wireless = false;
        c.system_disks = false;
    })
    .await;
    let extra = "interval = \"200ms\"\ntimeout = \"150ms\"\nports_every = 4\nmodules = [\"system\", \"disks\", \"wireless\"]\n";
    let exporter = start_exporter(&target(&sim.url(), TOKEN, extra)).await;
    let (m, polls) = polled(&exporter, 9.0).await;
    assert!(up(&m), "{m}");
    for reason in REASONS {
        assert_eq!(errors(&m, reason), 0.0, "{reason}: {m}");
    }
    assert!(
        count(&m, "ikuai_cpu_usage_ratio", &[]) > 0,
        "the rest of the poll is served"
    );
    for family in [
        "ikuai_disk_info",
        "ikuai_filesystem_size_bytes",
        "ikuai_access_points",
        "ikuai_wireless_clients",
    ] {
        assert_eq!(count(&m, family, &[]), 0, "{family}");
    }
    // Remembered: asked again only on the slow cadence, not at every poll.
    let slow = slow_reads(polls, 4.0);
    for path in [DISKS, WIRELESS] {
        let calls = sim.token_path_calls(path) as f64;
        assert!(
            (1.0..=slow + 1.0).contains(&calls),
            "{path}: {calls} calls in {polls} polls"
        );
    }
}

#[tokio::test]
async fn a_lacking_endpoint_is_logged_once_not_at_every_poll() {
    let sim = router_with(|c| {
        c.wireless = false;
        c.system_disks = false;
    })
    .await;
    let dir = temp_dir("ikuai-token-lacking");
    let config = dir.join("config.toml");
    let extra = "interval = \"200ms\"\ntimeout = \"150ms\"\nports_every = 3\nmodules = [\"system\", \"disks\", \"wireless\"]\n";
    std::fs::write(&config, target(&sim.url(), TOKEN, extra)).unwrap();
    let exporter =
        common::binary::Running::start(&[&format!("--config.file={}", config.display())]);
    exporter
        .wait_for_within("nine polls", WAIT, |m| {
            sample(m, "fleet_target_polls_total", &["target=\"r\""]).unwrap_or(0.0) >= 9.0
        })
        .await;
    let (ok, _, log) = exporter.terminate();
    assert!(ok, "{log}");
    assert!(
        sim.token_path_calls(WIRELESS) >= 3,
        "asked again on the slow cadence"
    );
    let said: Vec<&str> = log.lines().filter(|l| l.contains("no such data")).collect();
    assert_eq!(said.len(), 2, "once per endpoint, not per poll: {log}");
    assert!(said.iter().any(|l| l.contains(DISKS)) && said.iter().any(|l| l.contains(WIRELESS)));
    assert!(!log.contains(TOKEN), "the token leaked into the log");
}
