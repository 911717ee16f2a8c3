//! The iKuai driver against the iKuai simulator, over real sockets.

mod common;

use std::time::{Duration, Instant};

use common::{count, eventually, ikuai_target, sample, start_exporter, start_exporter_with};
use fleet_core::config::Source;
use fleet_sim::ikuai::{Fault, Firmware, IkuaiSim, IkuaiSimConfig};

const WAIT: Duration = Duration::from_secs(10);
const FAST: &str = "interval = \"500ms\"\ntimeout = \"400ms\"\n";

async fn sim(firmware: Firmware, clients: usize) -> IkuaiSim {
    IkuaiSim::start(IkuaiSimConfig {
        password: "s3cret-pw".into(),
        firmware,
        lan_clients: clients,
        ..IkuaiSimConfig::default()
    })
    .await
    .unwrap()
}

fn up(target: &str) -> impl Fn(&str) -> bool + '_ {
    move |m: &str| sample(m, "fleet_target_up", &[&format!("target=\"{target}\"")]) == Some(1.0)
}

#[tokio::test]
async fn first_poll_of_both_firmware_generations() {
    for (firmware, api) in [(Firmware::V3, "3.x"), (Firmware::V4, "4.x")] {
        let router = sim(firmware, 8).await;
        let exporter = start_exporter(&ikuai_target("r", &router.url(), "s3cret-pw", FAST)).await;
        let m = exporter.wait_for(WAIT, "first poll", up("r")).await;
        let t = "target=\"r\"";

        assert_eq!(
            count(&m, "ikuai_info", &[t, &format!("api=\"{api}\"")]),
            1,
            "{m}"
        );
        let all = sample(&m, "ikuai_cpu_usage_ratio", &[t, "cpu=\"all\""]).expect("cpu all");
        assert!((0.0..=1.0).contains(&all), "cpu ratio {all}");
        assert!(count(&m, "ikuai_cpu_usage_ratio", &[t, "cpu=\"0\""]) == 1);
        let mem = sample(&m, "ikuai_memory_total_bytes", &[t]).unwrap();
        assert!(
            mem > 64.0 * 1024.0 * 1024.0,
            "memory is KiB on the wire, bytes here: {mem}"
        );
        assert!(sample(&m, "ikuai_transmit_bytes_total", &[t]).unwrap() > 0.0);
        assert!(sample(&m, "ikuai_uptime_seconds", &[t]).unwrap() > 0.0);
        for family in [
            "ikuai_interface_up",
            "ikuai_interface_transmit_bytes_total",
            "ikuai_qos_receive_bytes_total",
            "ikuai_dns_requests_total",
            "ikuai_port_info",
            "ikuai_online_clients",
            "ikuai_dhcp_pool_available_addresses",
        ] {
            assert!(count(&m, family, &[t]) > 0, "{family} missing for {api}");
        }
        // Clients: duplicate rows removed, one series per distinct client.
        assert_eq!(
            sample(&m, "ikuai_clients", &[t, "ip_version=\"4\""]),
            Some(8.0)
        );
        for mac in router.client_macs() {
            let labels = [t, &format!("mac=\"{mac}\""), "ip_version=\"4\""];
            assert_eq!(count(&m, "ikuai_client_info", &labels), 1, "{mac}");
        }
        // The WAN line the simulator reports as failing is down, the other up.
        assert_eq!(
            sample(&m, "ikuai_interface_up", &[t, "interface=\"wan1\""]),
            Some(1.0)
        );
        assert_eq!(
            sample(&m, "ikuai_interface_up", &[t, "interface=\"wan2\""]),
            Some(0.0)
        );
        // "--" is unknown, not zero: lan1 has no connection count.
        assert_eq!(
            count(
                &m,
                "ikuai_interface_connections",
                &[t, "interface=\"lan1\""]
            ),
            0
        );
        assert_eq!(router.logins(), 1);
        assert_eq!(router.max_in_flight(), 1, "one call at a time per router");
    }
}

#[tokio::test]
async fn expired_session_is_recovered_with_exactly_one_login() {
    let router = sim(Firmware::V3, 4).await;
    let exporter = start_exporter(&ikuai_target("r", &router.url(), "s3cret-pw", FAST)).await;
    exporter.wait_for(WAIT, "first poll", up("r")).await;
    assert_eq!(router.logins(), 1);
    let polls = |m: &str| sample(m, "fleet_target_polls_total", &["target=\"r\""]).unwrap_or(0.0);
    let before = polls(&exporter.metrics().await);
    router.expire_sessions();
    let m = exporter
        .wait_for(WAIT, "two more polls", |m| polls(m) >= before + 2.0)
        .await;
    assert_eq!(router.logins(), 2);
    assert_eq!(
        sample(&m, "fleet_target_logins_total", &["target=\"r\""]),
        Some(2.0)
    );
    assert_eq!(sample(&m, "fleet_target_up", &["target=\"r\""]), Some(1.0));
    let errors: f64 = ["auth", "api", "decode", "http"]
        .iter()
        .map(|r| {
            sample(
                &m,
                "fleet_target_poll_errors_total",
                &[&format!("reason=\"{r}\"")],
            )
            .unwrap()
        })
        .sum();
    assert_eq!(errors, 0.0, "expiry must not count as an error:\n{m}");
}

#[tokio::test]
async fn wrong_password_is_an_auth_error_with_backoff_not_a_login_storm() {
    let router = sim(Firmware::V4, 4).await;
    let cfg = ikuai_target(
        "r",
        &router.url(),
        "wrong",
        "interval = \"200ms\"\ntimeout = \"150ms\"\nbackoff_max = \"10s\"\n",
    );
    let exporter = start_exporter(&cfg).await;
    let m = exporter
        .wait_for(WAIT, "an auth error", |m| {
            sample(m, "fleet_target_poll_errors_total", &["reason=\"auth\""]).unwrap_or(0.0) >= 1.0
        })
        .await;
    assert_eq!(sample(&m, "fleet_target_up", &["target=\"r\""]), Some(0.0));
    assert_eq!(
        count(&m, "ikuai_info", &[]),
        0,
        "no device series while down"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    // Without backoff 3 s at 200 ms would be ~15 logins; with doubling it is at most 5.
    assert!(
        router.logins() <= 5,
        "login storm: {} logins",
        router.logins()
    );
    let (_, page) = exporter.get("/").await;
    assert!(page.contains("authentication failed"), "{page}");
}

#[tokio::test]
async fn a_hung_router_costs_only_its_own_target() {
    let hung = sim(Firmware::V3, 4).await;
    let healthy = sim(Firmware::V3, 4).await;
    hung.set_fault(Fault::Hang);
    let cfg = format!(
        "{}{}",
        ikuai_target("hung", &hung.url(), "s3cret-pw", FAST),
        ikuai_target("ok", &healthy.url(), "s3cret-pw", FAST)
    );
    let exporter = start_exporter(&cfg).await;
    let m = exporter
        .wait_for(WAIT, "a timeout on the hung router", |m| {
            sample(
                m,
                "fleet_target_poll_errors_total",
                &["target=\"hung\"", "reason=\"timeout\""],
            )
            .unwrap_or(0.0)
                >= 2.0
        })
        .await;
    assert_eq!(
        sample(&m, "fleet_target_up", &["target=\"hung\""]),
        Some(0.0)
    );
    assert_eq!(sample(&m, "fleet_target_up", &["target=\"ok\""]), Some(1.0));
    // The healthy router kept its cadence while the other hung.
    assert!(sample(&m, "fleet_target_polls_total", &["target=\"ok\""]).unwrap() >= 2.0);
    // A scrape never waits for a device.
    let start = Instant::now();
    for _ in 0..20 {
        exporter.metrics().await;
    }
    let per_scrape = start.elapsed() / 20;
    assert!(
        per_scrape < Duration::from_millis(100),
        "scrape took {per_scrape:?}"
    );
    // And it recovers when the router answers again.
    hung.set_fault(Fault::None);
    exporter.wait_for(WAIT, "recovery", up("hung")).await;
}

#[tokio::test]
async fn malformed_answers_are_counted_by_reason() {
    for (fault, reason) in [
        (Fault::Truncated, "decode"),
        (Fault::Html, "decode"),
        (Fault::Status500, "http"),
    ] {
        let router = sim(Firmware::V3, 4).await;
        router.set_fault(fault);
        let exporter = start_exporter(&ikuai_target("r", &router.url(), "s3cret-pw", FAST)).await;
        let labels = ["target=\"r\"", &format!("reason=\"{reason}\"")];
        let m = exporter
            .wait_for(WAIT, reason, |m| {
                sample(m, "fleet_target_poll_errors_total", &labels).unwrap_or(0.0) >= 1.0
            })
            .await;
        assert_eq!(
            sample(&m, "fleet_target_up", &["target=\"r\""]),
            Some(0.0),
            "{reason}"
        );
        assert_eq!(count(&m, "ikuai_info", &[]), 0);
    }
}

#[tokio::test]
async fn a_client_that_leaves_the_router_leaves_metrics() {
    let router = sim(Firmware::V3, 6).await;
    let exporter = start_exporter(&ikuai_target("r", &router.url(), "s3cret-pw", FAST)).await;
    exporter.wait_for(WAIT, "first poll", up("r")).await;
    let macs = router.client_macs();
    let leaving = format!("mac=\"{}\"", macs.last().unwrap());
    assert_eq!(
        count(&exporter.metrics().await, "ikuai_client_info", &[&leaving]),
        1
    );
    router.set_lan_clients(macs.len() - 1);
    let m = exporter
        .wait_for(WAIT, "the client to vanish", |m| {
            count(m, "ikuai_client_info", &[&leaving]) == 0
        })
        .await;
    assert_eq!(
        count(&m, "ikuai_client_transmit_bytes_total", &[&leaving]),
        0
    );
    assert_eq!(
        sample(&m, "ikuai_clients", &["ip_version=\"4\""]),
        Some(5.0)
    );
}

#[tokio::test]
async fn max_clients_caps_per_client_series() {
    let router = sim(Firmware::V3, 30).await;
    let cfg = ikuai_target(
        "r",
        &router.url(),
        "s3cret-pw",
        &format!("{FAST}max_clients = 10\n"),
    );
    let exporter = start_exporter(&cfg).await;
    let m = exporter.wait_for(WAIT, "first poll", up("r")).await;
    assert_eq!(count(&m, "ikuai_client_info", &[]), 10);
    let v6 = sample(&m, "ikuai_clients", &["ip_version=\"6\""]).unwrap();
    assert_eq!(sample(&m, "ikuai_clients_omitted", &[]), Some(20.0 + v6));
}

#[tokio::test]
async fn modules_switch_call_groups_off() {
    let router = sim(Firmware::V3, 5).await;
    let cfg = ikuai_target(
        "r",
        &router.url(),
        "s3cret-pw",
        &format!("{FAST}modules = [\"system\"]\n"),
    );
    let exporter = start_exporter(&cfg).await;
    let m = exporter.wait_for(WAIT, "first poll", up("r")).await;
    assert_eq!(count(&m, "ikuai_info", &[]), 1);
    assert_eq!(count(&m, "ikuai_client_info", &[]), 0);
    assert_eq!(count(&m, "ikuai_interface_info", &[]), 0);
    assert_eq!(
        router.calls(),
        1,
        "one call per poll with only the system module"
    );
}

#[tokio::test]
async fn probe_serves_one_target_and_404s_unknown_names() {
    let (a, b) = (sim(Firmware::V3, 2).await, sim(Firmware::V4, 2).await);
    let cfg = format!(
        "{}{}",
        ikuai_target("a", &a.url(), "s3cret-pw", FAST),
        ikuai_target("b", &b.url(), "s3cret-pw", FAST)
    );
    let exporter = start_exporter(&cfg).await;
    exporter
        .wait_for(WAIT, "both up", |m| up("a")(m) && up("b")(m))
        .await;
    let (status, body) = exporter.get("/probe?target=a").await;
    assert_eq!(status, 200);
    assert!(body.contains("ikuai_info{target=\"a\""));
    assert!(!body.contains("target=\"b\""));
    assert!(body.contains("fleet_target_up{target=\"a\""));
    assert_eq!(exporter.get("/probe?target=nope").await.0, 404);
    assert_eq!(exporter.get("/probe").await.0, 400);
}

#[tokio::test]
async fn reload_adds_and_removes_targets_and_keeps_the_old_config_on_errors() {
    let (a, b) = (sim(Firmware::V3, 2).await, sim(Firmware::V3, 2).await);
    let dir = common::temp_dir("ikuai-reload");
    let path = dir.join("config.toml");
    let only_a = ikuai_target("a", &a.url(), "s3cret-pw", FAST);
    std::fs::write(&path, &only_a).unwrap();
    let exporter = start_exporter_with(&only_a, Source::File(path.clone())).await;
    exporter.wait_for(WAIT, "a up", up("a")).await;
    let a_logins = a.logins();

    std::fs::write(
        &path,
        format!("{only_a}{}", ikuai_target("b", &b.url(), "s3cret-pw", FAST)),
    )
    .unwrap();
    let client = reqwest::Client::new();
    let resp = client
        .post(format!("{}/-/reload", exporter.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp
        .text()
        .await
        .unwrap()
        .contains("1 added, 0 removed, 0 restarted, 1 unchanged"));
    exporter.wait_for(WAIT, "b up", up("b")).await;
    assert_eq!(
        a.logins(),
        a_logins,
        "an unchanged target keeps its poller and session"
    );

    // A broken file is refused; both targets keep running.
    std::fs::write(&path, "[[targets]]\nname = \"a\"\nkind = \"nope\"\n").unwrap();
    let resp = client
        .post(format!("{}/-/reload", exporter.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 500);
    let text = resp.text().await.unwrap();
    assert!(text.contains("target \"a\".kind"), "{text}");
    let m = exporter.metrics().await;
    assert_eq!(
        sample(&m, "fleet_exporter_config_last_reload_successful", &[]),
        Some(0.0)
    );
    assert!(up("a")(&m) && up("b")(&m));

    std::fs::write(&path, ikuai_target("b", &b.url(), "s3cret-pw", FAST)).unwrap();
    let resp = client
        .post(format!("{}/-/reload", exporter.url))
        .send()
        .await
        .unwrap();
    assert!(resp.text().await.unwrap().contains("0 added, 1 removed"));
    let m = exporter.metrics().await;
    assert_eq!(count(&m, "fleet_target_up", &["target=\"a\""]), 0);
    assert_eq!(count(&m, "ikuai_info", &["target=\"a\""]), 0);
    assert_eq!(
        sample(&m, "fleet_exporter_config_last_reload_successful", &[]),
        Some(1.0)
    );
    let a = &a;
    eventually(WAIT, "a's poller to stop", || {
        let before = a.calls();
        async move {
            tokio::time::sleep(Duration::from_millis(700)).await;
            a.calls() == before
        }
    })
    .await;
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn readiness_waits_for_the_first_poll() {
    let router = sim(Firmware::V3, 2).await;
    router.set_latency(Duration::from_millis(300));
    let cfg = ikuai_target(
        "r",
        &router.url(),
        "s3cret-pw",
        "interval = \"5s\"\ntimeout = \"4s\"\n",
    );
    let exporter = start_exporter(&cfg).await;
    assert_eq!(exporter.get("/-/healthy").await.0, 200);
    assert_eq!(exporter.get("/-/ready").await.0, 503);
    exporter.wait_for(WAIT, "first poll", up("r")).await;
    assert_eq!(exporter.get("/-/ready").await.0, 200);
}

#[tokio::test]
async fn client_lists_are_paged_until_the_total_is_reached() {
    let router = sim(Firmware::V4, 25).await;
    let extra = "interval = \"30s\"\ntimeout = \"5s\"\npage_size = 7\nmodules = [\"clients\"]\n";
    let exporter = start_exporter(&ikuai_target("r", &router.url(), "s3cret-pw", extra)).await;
    let m = exporter.wait_for(WAIT, "first poll", up("r")).await;
    assert_eq!(
        sample(&m, "ikuai_clients", &["ip_version=\"4\""]),
        Some(25.0)
    );
    // 26 rows (the router lists one twice) in pages of 7: 4 calls.
    assert_eq!(router.calls(), 4);
    for mac in router.client_macs() {
        assert_eq!(
            count(&m, "ikuai_client_info", &[&format!("mac=\"{mac}\"")]),
            1
        );
    }
}

#[tokio::test]
async fn wan_round_trip_protocol_traffic_versions_and_gwid_over_action_call() {
    let router = IkuaiSim::start(IkuaiSimConfig {
        password: "s3cret-pw".into(),
        update_available: true,
        ..IkuaiSimConfig::default()
    })
    .await
    .unwrap();
    let exporter = start_exporter(&ikuai_target("r", &router.url(), "s3cret-pw", FAST)).await;
    let m = exporter.wait_for(WAIT, "first poll", up("r")).await;
    let t = "target=\"r\"";
    let rtt = sample(&m, "ikuai_wan_rtt_seconds", &[t, "interface=\"wan1\""]).expect("rtt");
    assert!(
        (0.001..1.0).contains(&rtt),
        "ms on the wire, seconds here: {rtt}"
    );
    assert_eq!(
        count(&m, "ikuai_wan_rtt_seconds", &[t, "interface=\"wan2\""]),
        0,
        "the failed line has no round trip:\n{m}"
    );
    assert!(
        count(
            &m,
            "ikuai_app_traffic_window_bytes",
            &[t, "category=\"Video\""]
        ) == 1
    );
    assert_eq!(
        count(
            &m,
            "ikuai_app_traffic_window_bytes",
            &["category=\"Total\""]
        ),
        0
    );
    assert_eq!(
        sample(&m, "ikuai_app_traffic_window_seconds", &[t]),
        Some(3600.0)
    );
    assert_eq!(
        sample(&m, "ikuai_update_available", &[t, "component=\"system\""]),
        Some(1.0)
    );
    assert_eq!(
        count(
            &m,
            "ikuai_version_info",
            &[
                t,
                "component=\"system\"",
                "version=\"3.7.17\"",
                "latest=\"3.7.19\""
            ]
        ),
        1
    );
    let gwid = m
        .lines()
        .find(|l| l.starts_with("ikuai_info{"))
        .and_then(|l| l.split("gwid=\"").nth(1))
        .and_then(|rest| rest.split('"').next())
        .expect("gwid label");
    assert!(
        gwid.len() >= 10 && gwid.bytes().all(|b| b.is_ascii_digit()),
        "{gwid}"
    );
    assert!(
        m.lines()
            .filter(|l| l.starts_with("ikuai_client_info{"))
            .all(|l| !l.contains("interface=")),
        "no client interface label: 3.x rows have none"
    );
}

#[tokio::test]
async fn homepage_modules_share_one_call_and_slow_answers_keep_their_cadence() {
    let router = sim(Firmware::V3, 3).await;
    let extra = format!(
        "{FAST}modules = [\"system\", \"ports\", \"wan\", \"app_flow\", \"firmware\"]\nports_every = 1000\n"
    );
    let exporter = start_exporter(&ikuai_target("r", &router.url(), "s3cret-pw", &extra)).await;
    let polls = |m: &str| sample(m, "fleet_target_polls_total", &["target=\"r\""]).unwrap_or(0.0);
    let before = polls(
        &exporter
            .wait_for(WAIT, "three polls", |m| polls(m) >= 3.0)
            .await,
    );
    let calls = router.calls() as f64;
    let after = polls(&exporter.metrics().await);
    // One homepage call a poll, plus the first poll's addressing and versions.
    assert!(
        before + 2.0 <= calls && calls <= after + 2.0,
        "{calls} calls in {before}..{after} polls"
    );
}

#[tokio::test]
async fn a_port_that_loses_link_shows_at_the_next_poll() {
    let router = sim(Firmware::V3, 2).await;
    let extra = format!("{FAST}ports_every = 1000\n");
    let exporter = start_exporter(&ikuai_target("r", &router.url(), "s3cret-pw", &extra)).await;
    let link = |m: &str| sample(m, "ikuai_port_link_up", &["target=\"r\"", "port=\"veth1\""]);
    let polls = |m: &str| sample(m, "fleet_target_polls_total", &["target=\"r\""]).unwrap_or(0.0);
    let m = exporter.wait_for(WAIT, "first poll", up("r")).await;
    assert_eq!(link(&m), Some(1.0));
    router.set_port_link("veth1", false);
    let pulled = polls(&exporter.metrics().await);
    let m = exporter
        .wait_for(WAIT, "two more polls", |m| polls(m) >= pulled + 2.0)
        .await;
    assert_eq!(
        link(&m),
        Some(0.0),
        "within one poll, not ports_every polls"
    );
    assert_eq!(
        count(&m, "ikuai_interface_address_info", &["interface=\"lan1\""]),
        1,
        "addressing is still served from its slow refresh"
    );
}

#[tokio::test]
async fn a_router_answering_garbage_is_down_between_its_slow_refreshes() {
    let router = sim(Firmware::V3, 2).await;
    let extra = format!("{FAST}ports_every = 1000\n");
    let exporter = start_exporter(&ikuai_target("r", &router.url(), "s3cret-pw", &extra)).await;
    exporter.wait_for(WAIT, "first poll", up("r")).await;
    router.set_fault(Fault::Html);
    let polls = |m: &str| sample(m, "fleet_target_polls_total", &["target=\"r\""]).unwrap_or(0.0);
    let broken = polls(&exporter.metrics().await);
    let m = exporter
        .wait_for(WAIT, "two polls of garbage", |m| polls(m) >= broken + 2.0)
        .await;
    // The kept addressing and versions asked nothing of the router: they are no success.
    assert_eq!(
        sample(&m, "fleet_target_up", &["target=\"r\""]),
        Some(0.0),
        "{m}"
    );
    assert_eq!(count(&m, "ikuai_interface_address_info", &[]), 0);
}
