//! The IoT driver against the IoT platform simulator, over real sockets.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{count, sample, start_exporter, Exporter};
use fleet_core::config::{Config, FileFormat};
use fleet_exporter::demo::iot_card_calls as card_calls;
use fleet_sim::iot::{Fault, IotSim, IotSimConfig};

const WAIT: Duration = Duration::from_secs(15);
const SECRET: &str = "C55rqUa6AvKyuNMYYvoYCSR1BBfSPWK7";
/// Fast polls that ask every device each time, at a rate the tests can afford.
const FAST: &str = "interval = \"1s\"\ntimeout = \"900ms\"\ndevice_interval = \"1s\"\nrate_limit = 100\nconcurrency = 4\n";

async fn sim(devices: usize) -> IotSim {
    IotSim::start(IotSimConfig {
        devices,
        rate_limit: None,
        ..IotSimConfig::default()
    })
    .await
    .unwrap()
}

fn target(name: &str, url: &str, secret: &str, devices: &[String], extra: &str) -> String {
    let list: Vec<String> = devices.iter().map(|d| format!("\"{d}\"")).collect();
    format!(
        "[[targets]]\nname = \"{name}\"\nkind = \"iot\"\nurl = \"{url}\"\napp_id = \"qwe123\"\n\
         app_secret = \"{secret}\"\ndevices = [{}]\n{extra}\n",
        list.join(", ")
    )
}

/// An exporter polling every device of `platform` with the right secret and [`FAST`] pacing.
async fn fast_exporter(platform: &IotSim) -> Exporter {
    let devices = platform.device_nos();
    start_exporter(&target("t", &platform.url(), SECRET, &devices, FAST)).await
}

fn up(m: &str) -> bool {
    sample(m, "fleet_target_up", &["target=\"t\""]) == Some(1.0)
}

fn errors(m: &str, reason: &str) -> f64 {
    sample(
        m,
        "fleet_target_poll_errors_total",
        &["target=\"t\"", &format!("reason=\"{reason}\"")],
    )
    .unwrap_or(0.0)
}

async fn all_devices(exporter: &Exporter, n: usize) -> String {
    exporter
        .wait_for(WAIT, "every device", |m| {
            up(m) && count(m, "iot_device_info", &[]) == n
        })
        .await
}

#[tokio::test]
async fn polls_every_device_and_card_in_base_units() {
    let platform = sim(30).await;
    let devices = platform.device_nos();
    let exporter = start_exporter(&target("t", &platform.url(), SECRET, &devices, FAST)).await;
    let m = all_devices(&exporter, 30).await;

    assert_eq!(sample(&m, "iot_devices", &[]), Some(30.0));
    assert_eq!(
        platform.rejected_auth(),
        0,
        "every request signed correctly"
    );
    assert!(
        sample(&m, "iot_api_requests_total", &["code=\"0\""]).unwrap() >= 30.0,
        "{m}"
    );
    for (i, device) in devices.iter().enumerate() {
        let d = format!("device_no=\"{device}\"");
        assert_eq!(sample(&m, "iot_device_fetch_success", &[&d]), Some(1.0));
        let iccids = platform.iccids(i);
        assert_eq!(count(&m, "iot_sim_info", &[&d]), iccids.len(), "{device}");
        for (slot, iccid) in ["main", "vice1", "vice2"].iter().zip(&iccids) {
            let labels = [
                d.as_str(),
                &format!("iccid=\"{iccid}\""),
                &format!("slot=\"{slot}\""),
            ];
            let limit = sample(&m, "iot_sim_data_limit_bytes", &labels).expect("limit");
            // Plans are 50..200 GiB: KiB on the wire, bytes here.
            assert!((50.0 * 1073741824.0..=200.0 * 1073741824.0).contains(&limit));
            let used = sample(
                &m,
                "iot_sim_data_used_bytes",
                &[&labels[..], &["kind=\"real\""]].concat(),
            )
            .expect("used");
            assert!(used <= limit && used.fract() == 0.0);
            let expiry = sample(&m, "iot_sim_plan_expiry_timestamp_seconds", &labels);
            // The simulator's `null` endAt (every seventh device) is unknown, not zero.
            assert_eq!(expiry.is_none(), i % 7 == 3, "{device}");
        }
        let battery = sample(&m, "iot_device_battery_ratio", &[&d]).expect("battery");
        assert!((0.1..=1.0).contains(&battery), "{battery}");
        // Device 10 is switched off: no signal reading rather than 0 dBm.
        let signal = sample(&m, "iot_device_signal_dbm", &[&d]);
        assert_eq!(signal.is_none(), i % 11 == 10, "{device}: {signal:?}");
        assert_eq!(
            sample(&m, "iot_device_online", &[&d]),
            Some(if i % 11 == 10 { 0.0 } else { 1.0 })
        );
        for secret in platform.passwords(i) {
            assert!(!m.contains(&secret), "password of {device} leaked");
        }
    }
    // Numbers sent as strings (device 1) read like numbers.
    let quirky = format!("device_no=\"{}\"", devices[1]);
    assert!(sample(&m, "iot_device_wifi_clients", &[&quirky, "band=\"2.4GHz\""]).is_some());
    // Unknown status codes go out raw (device 5).
    let odd = format!("device_no=\"{}\"", devices[5]);
    assert_eq!(
        sample(
            &m,
            "iot_device_status_code",
            &[&odd, "field=\"device_status\""]
        ),
        Some(97.0)
    );
    // Device 16 has no cards: described, but no card series.
    assert_eq!(
        count(
            &m,
            "iot_sim_info",
            &[&format!("device_no=\"{}\"", devices[16])]
        ),
        0
    );
    assert_eq!(
        count(&m, "iot_device_latitude_degrees", &[]),
        0,
        "location is opt-in"
    );

    // Usage moves between polls.
    let used = |m: &str| {
        sample(
            m,
            "iot_sim_data_used_bytes",
            &[
                &format!("device_no=\"{}\"", devices[4]),
                "slot=\"vice1\"",
                "kind=\"real\"",
            ],
        )
    };
    let before = used(&m).unwrap();
    exporter
        .wait_for(WAIT, "usage to grow", |m| {
            used(m).is_some_and(|u| u > before)
        })
        .await;
}

#[tokio::test]
async fn a_wrong_secret_is_an_auth_error_without_hammering_the_platform() {
    let platform = sim(20).await;
    let cfg = target(
        "t",
        &platform.url(),
        "not-the-secret",
        &platform.device_nos(),
        "interval = \"300ms\"\ntimeout = \"250ms\"\nrate_limit = 100\nbackoff_max = \"10s\"\n",
    );
    let exporter = start_exporter(&cfg).await;
    let m = exporter
        .wait_for(WAIT, "an auth error", |m| errors(m, "auth") >= 1.0)
        .await;
    assert!(!up(&m));
    assert_eq!(count(&m, "iot_device_info", &[]), 0);
    tokio::time::sleep(Duration::from_secs(2)).await;
    // A refused signature ends the poll: at most the requests already in flight (concurrency 2)
    // are spent, where asking all 20 devices would cost 20 a poll.
    let m = exporter.metrics().await;
    let polls = sample(&m, "fleet_target_polls_total", &["target=\"t\""]).unwrap();
    let requests = platform.requests() as f64;
    assert!(
        requests <= 2.0 * (polls + 1.0),
        "{requests} requests in {polls} polls"
    );
    assert_eq!(platform.answered_ok(), 0);
    let (_, page) = exporter.get("/").await;
    assert!(
        page.contains("authentication failed") && page.contains("签名错误"),
        "{page}"
    );
    assert!(!page.contains("not-the-secret"));
}

#[tokio::test]
async fn clock_skew_is_refused_and_said_so() {
    let platform = sim(3).await;
    platform.set_clock_offset(1200);
    let exporter = fast_exporter(&platform).await;
    exporter
        .wait_for(WAIT, "an auth error", |m| errors(m, "auth") >= 1.0)
        .await;
    let (_, page) = exporter.get("/").await;
    assert!(
        page.contains("the local clock is 20 min behind the platform"),
        "{page}"
    );
    platform.set_clock_offset(0);
    exporter.wait_for(WAIT, "recovery", up).await;
}

#[tokio::test]
async fn an_unknown_device_costs_only_itself() {
    let platform = sim(6).await;
    let mut devices = platform.device_nos();
    let unknown = IotSim::device_no(999);
    devices.insert(2, unknown.clone());
    let exporter = start_exporter(&target("t", &platform.url(), SECRET, &devices, FAST)).await;
    let m = exporter
        .wait_for(WAIT, "an api error", |m| {
            up(m) && count(m, "iot_device_info", &[]) == 6 && errors(m, "api") >= 1.0
        })
        .await;
    let u = format!("device_no=\"{unknown}\"");
    assert_eq!(sample(&m, "iot_device_fetch_success", &[&u]), Some(0.0));
    assert_eq!(count(&m, "iot_device_info", &[&u]), 0);
    assert!(sample(&m, "iot_api_requests_total", &["code=\"2001\""]).unwrap() >= 1.0);
    assert_eq!(sample(&m, "iot_devices", &[]), Some(7.0));
    let (_, page) = exporter.get("/").await;
    assert!(page.contains(&unknown) || errors(&m, "api") >= 1.0);
}

#[tokio::test]
async fn the_rate_limit_is_never_exceeded() {
    let platform = IotSim::start(IotSimConfig {
        devices: 12,
        rate_limit: Some(2),
        ..IotSimConfig::default()
    })
    .await
    .unwrap();
    // Defaults: 2 requests/s, 2 in flight; every device due on every 3 s poll.
    let cfg = target(
        "t",
        &platform.url(),
        SECRET,
        &platform.device_nos(),
        "interval = \"3s\"\ntimeout = \"2900ms\"\ndevice_interval = \"3s\"\n",
    );
    let exporter = start_exporter(&cfg).await;
    // Keep the driver busy until it has sent at least 12 requests (6 s at 2/s, whatever the
    // start offset and the machine's load), then check the simulator never saw more than 2/s.
    let platform_ref = &platform;
    common::eventually(Duration::from_secs(30), "12 requests", || async move {
        platform_ref.requests() >= 12
    })
    .await;
    let m = exporter.metrics().await;
    assert!(
        platform.max_requests_per_second() <= 2,
        "{} requests within one second",
        platform.max_requests_per_second()
    );
    assert_eq!(platform.rate_limited(), 0);
    assert!(platform.max_in_flight() <= 2);
    // A poll asks what fits before its deadline; the rest follow in the next polls.
    assert!(up(&m), "{m}");
    exporter
        .wait_for(WAIT, "the whole fleet", |m| {
            count(m, "iot_device_info", &[]) == 12
        })
        .await;
}

#[tokio::test]
async fn platform_faults_are_counted_by_reason() {
    for (fault, reason) in [
        (Fault::Status429, "http"),
        (Fault::Status500, "http"),
        (Fault::Html, "decode"),
        (Fault::Truncated, "decode"),
    ] {
        let platform = sim(3).await;
        platform.set_fault(fault);
        let exporter = fast_exporter(&platform).await;
        let m = exporter
            .wait_for(WAIT, reason, |m| errors(m, reason) >= 1.0)
            .await;
        assert!(!up(&m), "{fault:?}");
        assert_eq!(count(&m, "iot_device_info", &[]), 0);
        platform.set_fault(Fault::None);
        exporter.wait_for(WAIT, "recovery", up).await;
    }
}

#[tokio::test]
async fn a_hung_platform_times_out_and_recovers() {
    let platform = sim(3).await;
    platform.set_fault(Fault::Hang);
    let exporter = fast_exporter(&platform).await;
    exporter
        .wait_for(WAIT, "a timeout", |m| errors(m, "timeout") >= 1.0)
        .await;
    platform.set_fault(Fault::None);
    exporter.wait_for(WAIT, "recovery", up).await;
}

#[tokio::test]
async fn a_fleet_larger_than_one_poll_is_covered_round_robin() {
    let platform = sim(40).await;
    // ~6 requests fit in each 1 s poll at 10/s: the fleet takes several polls.
    let cfg = target(
        "t",
        &platform.url(),
        SECRET,
        &platform.device_nos(),
        "interval = \"1s\"\ntimeout = \"900ms\"\nrate_limit = 10\n",
    );
    let exporter = start_exporter(&cfg).await;
    let first = exporter.wait_for(WAIT, "first poll", up).await;
    assert!(count(&first, "iot_device_info", &[]) < 40);
    all_devices(&exporter, 40).await;
    // Round-robin: nobody was asked twice before everyone was asked once.
    let asked: Vec<u64> = (0..40).map(|i| platform.device_requests(i)).collect();
    assert!(
        asked.iter().max().unwrap() - asked.iter().min().unwrap() <= 1,
        "{asked:?}"
    );
}

#[tokio::test]
async fn switches_location_on_and_cards_off() {
    let platform = sim(4).await;
    let cfg = target(
        "t",
        &platform.url(),
        SECRET,
        &platform.device_nos(),
        &format!("{FAST}export_location = true\nexport_sims = false\nflow_unit = \"MiB\"\n"),
    );
    let exporter = start_exporter(&cfg).await;
    let m = all_devices(&exporter, 4).await;
    // Device 3 sends `position: null`.
    assert_eq!(count(&m, "iot_device_latitude_degrees", &[]), 3, "{m}");
    let lat = sample(&m, "iot_device_latitude_degrees", &[]).unwrap();
    assert!((22.0..23.0).contains(&lat));
    assert_eq!(count(&m, "iot_sim_info", &[]), 0);
    assert_eq!(count(&m, "iot_sim_data_used_bytes", &[]), 0);
}

#[tokio::test]
async fn devices_file_is_relative_to_the_config_and_followed() {
    let platform = sim(5).await;
    let dir = common::temp_dir("iot-devices");
    let nos = platform.device_nos();
    std::fs::write(
        dir.join("fleet.txt"),
        format!("# two of them\n{}\n{}\n", nos[0], nos[1]),
    )
    .unwrap();
    let cfg = format!(
        "{}devices_file = \"fleet.txt\"\n",
        target("t", &platform.url(), SECRET, &[], FAST)
    );
    let parsed = Config::parse(&cfg, FileFormat::Toml, &dir, fleet_drivers::KINDS)
        .expect("relative devices_file");
    let app = fleet_core::app::App::new(fleet_core::config::Source::Builtin, fleet_drivers::KINDS);
    app.apply(&parsed).await;
    let e = Config::parse(
        &cfg,
        FileFormat::Toml,
        Path::new("/nonexistent"),
        fleet_drivers::KINDS,
    )
    .unwrap_err();
    assert!(e.to_string().contains("devices_file: cannot read"), "{e}");

    common::eventually(WAIT, "two devices", || {
        let app = app.clone();
        async move { series(&app).contains("iot_devices{target=\"t\"} 2\n") }
    })
    .await;
    // An edited file is followed without a config change.
    std::thread::sleep(Duration::from_millis(20));
    std::fs::write(dir.join("fleet.txt"), nos[2..].join("\n")).unwrap();
    let gone = format!("device_no=\"{}\"", nos[0]);
    common::eventually(WAIT, "three other devices", || {
        let (app, gone) = (app.clone(), gone.clone());
        async move {
            let m = series(&app);
            m.contains("iot_devices{target=\"t\"} 3\n") && !m.contains(&gone)
        }
    })
    .await;
    app.shutdown().await;
    std::fs::remove_dir_all(&dir).ok();
}

/// The store's current exposition for every source, without an HTTP server.
fn series(app: &fleet_core::app::App) -> String {
    let sources = app.store().sources(None).unwrap_or_default();
    let refs: Vec<_> = sources.iter().map(|s| s.as_ref()).collect();
    String::from_utf8(fleet_core::exposition::render(
        fleet_core::exposition::Format::Text,
        refs,
    ))
    .unwrap()
}

#[tokio::test]
async fn card_money_dates_serving_card_network_and_warranty_from_the_device_answer() {
    let platform = sim(3).await;
    // Device 2 has three cards; its main card owes money.
    let cards = platform.iccids(2);
    platform.set_card_money(&cards[0], -7.5, 7.5);
    let devices = platform.device_nos();
    let extra =
        format!("{FAST}effective_sim_slots = {{ 1 = \"main\", 2 = \"vice1\", 3 = \"vice2\" }}\n");
    let exporter = start_exporter(&target("t", &platform.url(), SECRET, &devices, &extra)).await;
    let m = all_devices(&exporter, 3).await;

    let card = |k: usize| {
        [
            format!("device_no=\"{}\"", devices[2]),
            format!("iccid=\"{}\"", cards[k]),
        ]
    };
    let [d, c0] = card(0);
    assert_eq!(sample(&m, "iot_sim_balance", &[&d, &c0]), Some(-7.5));
    assert_eq!(sample(&m, "iot_sim_arrears_balance", &[&d, &c0]), Some(7.5));
    let [_, c1] = card(1);
    assert_eq!(sample(&m, "iot_sim_arrears_balance", &[&d, &c1]), Some(0.0));
    // `dockResetDate` 2025-08-01 00:00:00 in UTC+8.
    assert_eq!(
        sample(&m, "iot_sim_carrier_reset_timestamp_seconds", &[&d, &c0]),
        Some(1_753_977_600.0)
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let status_at = sample(&m, "iot_sim_last_status_timestamp_seconds", &[&d, &c0]).unwrap();
    assert!(
        (now - 3600.0..=now + 60.0).contains(&status_at),
        "{status_at}"
    );
    // The platform says card 2 serves; the configured mapping reads it as the vice1 slot.
    assert_eq!(
        sample(
            &m,
            "iot_device_status_code",
            &[&d, "field=\"effective_sim\""]
        ),
        Some(2.0)
    );
    assert_eq!(
        sample(&m, "iot_sim_serving", &[&d, &c1, "slot=\"vice1\""]),
        Some(1.0)
    );
    assert_eq!(
        sample(&m, "iot_sim_serving", &[&d, &c0, "slot=\"main\""]),
        Some(0.0)
    );
    assert_eq!(count(&m, "iot_sim_serving", &[&d]), 3);
    // The operator identity goes out without export_location; the position does not.
    assert_eq!(
        count(
            &m,
            "iot_device_network_info",
            &[&d, "mcc=\"460\"", "mnc=\"0\""]
        ),
        1
    );
    assert_eq!(count(&m, "iot_device_latitude_degrees", &[]), 0);
    // `2000-01-01 00:00:00` is unset: no warranty series at all.
    assert_eq!(
        count(&m, "iot_device_warranty_expiry_timestamp_seconds", &[]),
        0
    );
    assert_eq!(
        count(&m, "iot_card_balance", &[]),
        0,
        "no card calls configured"
    );
    assert_eq!(count(&m, "iot_account_balance", &[]), 0);
}

#[tokio::test]
async fn without_a_mapping_the_serving_card_stays_raw() {
    let platform = sim(3).await;
    let exporter = fast_exporter(&platform).await;
    let m = all_devices(&exporter, 3).await;
    assert_eq!(count(&m, "iot_sim_serving", &[]), 0, "{m}");
    assert_eq!(
        count(&m, "iot_device_status_code", &["field=\"effective_sim\""]),
        3
    );
}

/// A platform of two devices and `n` cards in no device, and those cards' ICCIDs.
async fn platform_with_loose_cards(n: usize) -> (IotSim, Vec<String>) {
    let platform = IotSim::start(IotSimConfig {
        devices: 2,
        loose_cards: n,
        rate_limit: None,
        ..IotSimConfig::default()
    })
    .await
    .unwrap();
    (platform, (0..n).map(IotSim::loose_iccid).collect())
}

#[tokio::test]
async fn configured_batch_card_calls_show_cards_outside_any_device_and_the_account_balance() {
    let (platform, loose) = platform_with_loose_cards(25).await;
    platform.set_card_money(&loose[3], -2.0, 2.0);
    platform.set_account_balance(512.25);
    // One device of two is configured; its card and 25 loose ones are asked by ICCID.
    let devices = &platform.device_nos()[..1];
    let mut cards = loose.clone();
    cards.push(platform.iccids(0)[0].clone());
    let extra = format!("{FAST}device_interval = \"1h\"\n{}", card_calls(&cards));
    let extra = extra.replacen("device_interval = \"1s\"\n", "", 1);
    let exporter = start_exporter(&target("t", &platform.url(), SECRET, devices, &extra)).await;
    let m = exporter
        .wait_for(WAIT, "the card calls", |m| {
            count(m, "iot_card_status_code", &["field=\"onlineStatus\""]) == 26
                && count(m, "iot_account_balance", &[]) == 1
        })
        .await;

    let c = |i: usize| format!("iccid=\"{}\"", loose[i]);
    assert_eq!(count(&m, "iot_card_data_limit_bytes", &[]), 26, "{m}");
    assert_eq!(
        sample(&m, "iot_card_data_limit_bytes", &[&c(0)]),
        Some(20_971_520.0 * 1024.0)
    );
    assert!(sample(&m, "iot_card_data_used_bytes", &[&c(0)]).unwrap() > 0.0);
    assert_eq!(sample(&m, "iot_card_arrears_balance", &[&c(3)]), Some(2.0));
    assert_eq!(sample(&m, "iot_card_balance", &[&c(3)]), Some(-2.0));
    assert_eq!(
        sample(&m, "iot_card_status_code", &[&c(24), "field=\"simStatus\""]),
        Some(4.0)
    );
    assert!(sample(&m, "iot_card_plan_expiry_timestamp_seconds", &[&c(1)]).is_some());
    // The monthly call named this month (`{year}-{month}`), which the platform checks.
    assert_eq!(count(&m, "iot_card_month_data_used_bytes", &[]), 26);
    assert!(sample(&m, "iot_card_month_data_used_bytes", &[&c(0)]).unwrap() > 0.0);
    assert_eq!(sample(&m, "iot_account_balance", &[]), Some(512.25));
    // 26 cards: one info request (100 a call), three status requests (10 a call).
    let ok = |endpoint: &str| {
        sample(
            &m,
            "iot_api_requests_total",
            &[&format!("endpoint=\"{endpoint}\""), "code=\"0\""],
        )
    };
    assert_eq!(ok("cardInfo"), Some(1.0));
    assert_eq!(ok("cardStatus"), Some(3.0));
    assert_eq!(ok("cardMonthFlow"), Some(3.0));
    assert_eq!(ok("account_assets"), Some(1.0));
    assert_eq!(platform.requests_to(fleet_sim::iot::CARD_STATUS_PATH), 3);
    assert_eq!(platform.rejected_auth(), 0, "every call signed");
    // Once per device_interval (an hour here): more polls ask nothing again.
    let polls = sample(&m, "fleet_target_polls_total", &["target=\"t\""]).unwrap();
    exporter
        .wait_for(WAIT, "more polls", |m| {
            sample(m, "fleet_target_polls_total", &["target=\"t\""]).unwrap() >= polls + 2.0
        })
        .await;
    assert_eq!(platform.requests_to(fleet_sim::iot::CARD_INFO_PATH), 1);
    assert_eq!(platform.requests_to(fleet_sim::iot::ACCOUNT_ASSETS_PATH), 1);
    assert_eq!(errors(&m, "decode") + errors(&m, "api"), 0.0);
}

#[tokio::test]
async fn a_card_call_at_a_wrong_path_or_list_costs_only_its_own_series() {
    let (platform, loose) = platform_with_loose_cards(3).await;
    let calls = card_calls(&loose)
        .replace(fleet_sim::iot::CARD_STATUS_PATH, "/openapi/iot/card/nope")
        .replacen("list = \"list\"", "list = \"records\"", 1);
    let extra = format!("{FAST}{calls}");
    let exporter = start_exporter(&target(
        "t",
        &platform.url(),
        SECRET,
        &platform.device_nos(),
        &extra,
    ))
    .await;
    let m = exporter
        .wait_for(WAIT, "the errors", |m| {
            errors(m, "decode") >= 1.0 && errors(m, "http") >= 1.0
        })
        .await;
    assert!(up(&m), "devices and the account are still served");
    assert_eq!(count(&m, "iot_device_info", &[]), 2);
    assert_eq!(count(&m, "iot_card_data_limit_bytes", &[]), 0);
    assert_eq!(sample(&m, "iot_account_balance", &[]), Some(1288.6));
    let (_, page) = exporter.get("/").await;
    assert!(
        page.contains("`records`"),
        "the status page names the missing list"
    );
}

#[test]
fn card_calls_are_checked_and_name_the_key() {
    let base = target("t", "http://127.0.0.1:1", SECRET, &["1".to_string()], "");
    let check = |extra: &str| {
        Config::parse(
            &format!("{base}{extra}"),
            FileFormat::Toml,
            Path::new("."),
            fleet_drivers::KINDS,
        )
        .map(|_| ())
        .map_err(|e| e.to_string())
    };
    assert!(check(&card_calls(&["89860".into()])).is_ok());
    let e =
        check(&card_calls(&["89860".into()]).replacen("batch_size = 10\n", "batch_size = 0\n", 1))
            .unwrap_err();
    assert!(e.contains("card_calls[1].batch_size"), "{e}");
    let e = check(&card_calls(&[])).unwrap_err();
    assert!(e.contains("cards"), "{e}");
    let e = check(&card_calls(&["89860".into()]).replace("month_used", "month_usage")).unwrap_err();
    assert!(e.contains("month_usage"), "{e}");
    let e = check("effective_sim_slots = { one = \"main\" }\n").unwrap_err();
    assert!(
        e.contains("effective_sim_slots") && e.contains("one"),
        "{e}"
    );
}
