//! The OpenVox driver against the OpenVox simulator, over real sockets.

mod common;

use std::time::Duration;

use common::binary::Running;
use common::{count, sample, start_exporter, target, temp_dir, Exporter};
use fleet_sim::openvox::{Fault, OpenvoxSim, OpenvoxSimConfig};

const WAIT: Duration = Duration::from_secs(10);
const PASSWORD: &str = "v0ice-s3cret";
const FAST: &str = "interval = \"300ms\"\ntimeout = \"250ms\"\n";
const T: &str = "target=\"gw\"";

async fn sim(cfg: OpenvoxSimConfig) -> OpenvoxSim {
    OpenvoxSim::start(OpenvoxSimConfig {
        password: PASSWORD.into(),
        login_delay: Duration::from_millis(40),
        cdr_every: None,
        ..cfg
    })
    .await
    .unwrap()
}

async fn exporter(gw: &OpenvoxSim, password: &str, extra: &str) -> Exporter {
    let extra = format!("{FAST}{extra}");
    start_exporter(&target("openvox", "gw", &gw.url(), password, &extra)).await
}

fn up(m: &str) -> bool {
    sample(m, "fleet_target_up", &[T]) == Some(1.0)
}

fn polls(m: &str) -> f64 {
    sample(m, "fleet_target_polls_total", &[T]).unwrap_or(0.0)
}

fn errors(m: &str, reason: &str) -> f64 {
    let r = format!("reason=\"{reason}\"");
    sample(m, "fleet_target_poll_errors_total", &[T, &r]).unwrap_or(0.0)
}

fn port(n: u8) -> String {
    format!("port=\"{n}\"")
}

/// Waits until the exporter has made `n` more polls than it had.
async fn more_polls(exporter: &Exporter, n: f64) -> String {
    let before = polls(&exporter.metrics().await);
    exporter
        .wait_for(WAIT, "more polls", |m| polls(m) >= before + n)
        .await
}

#[tokio::test]
async fn a_gateway_with_four_fxs_and_four_fxo_ports() {
    let gw = sim(OpenvoxSimConfig::default()).await;
    let exporter = exporter(&gw, PASSWORD, "cdr = true").await;
    exporter.wait_for(WAIT, "first poll", up).await;
    let m = more_polls(&exporter, 3.0).await;

    let serial = format!("serial=\"{}\"", gw.serial());
    assert_eq!(
        count(
            &m,
            "openvox_info",
            &[
                T,
                &serial,
                "model=\"iAG800 V2-4S4O\"",
                "platform=\"combined\""
            ]
        ),
        1,
        "{m}"
    );
    assert_eq!(sample(&m, "openvox_channels_max", &[T]), Some(8.0));
    assert!(sample(&m, "openvox_uptime_seconds", &[T]).unwrap() >= 180_000.0);
    let cpu = sample(&m, "openvox_cpu_usage_ratio", &[T]).unwrap();
    assert!((0.02..=0.14).contains(&cpu), "cpu {cpu}");
    assert_eq!(
        sample(&m, "openvox_memory_total_bytes", &[T]),
        Some(120_608.0 * 1024.0)
    );
    assert!(sample(&m, "openvox_memory_free_bytes", &[T]).unwrap() > 30_000.0 * 1024.0);
    assert_eq!(sample(&m, "openvox_storage_used_ratio", &[T]), Some(0.04));
    assert_eq!(sample(&m, "openvox_slot_up", &[T, "slot=\"0\""]), Some(1.0));

    // Channels 1-4 take PSTN lines (FXS signalling), 5-8 feed phones (FXO signalling).
    for n in 1..=4 {
        assert_eq!(
            count(&m, "openvox_port_info", &[T, &port(n), "kind=\"fxo\""]),
            1
        );
    }
    for n in 5..=8 {
        assert_eq!(
            count(&m, "openvox_port_info", &[T, &port(n), "kind=\"fxs\""]),
            1
        );
    }
    let in_use: Vec<u8> = (1..=8)
        .filter(|n| sample(&m, "openvox_port_in_use", &[T, &port(*n)]) == Some(1.0))
        .collect();
    assert_eq!(in_use, [1, 5, 6]);
    let alarm = |n: u8, word: &str| {
        sample(
            &m,
            "openvox_port_alarm",
            &[T, &port(n), &format!("alarm=\"{word}\"")],
        )
    };
    assert_eq!(alarm(3, "red"), Some(1.0));
    assert_eq!(alarm(3, "ok"), Some(0.0));
    assert_eq!(alarm(1, "ok"), Some(1.0));
    assert_eq!(count(&m, "openvox_port_alarm", &[T, "alarm=\"ok\""]), 8);
    let offhook: Vec<u8> = (1..=8)
        .filter(|n| sample(&m, "openvox_port_offhook", &[T, &port(*n)]) == Some(1.0))
        .collect();
    assert_eq!(offhook, [5]);
    assert_eq!(count(&m, "openvox_port_offhook", &[T]), 4, "FXS ports only");
    let volts = sample(&m, "openvox_port_line_voltage_volts", &[T, &port(7)]).unwrap();
    assert!((45.0..=50.0).contains(&volts), "{volts}");
    assert!(sample(&m, "openvox_port_line_voltage_volts", &[T, &port(3)]).unwrap() <= 3.0);

    let sip = |account: &str| {
        sample(
            &m,
            "openvox_sip_registration_status",
            &[T, &format!("account=\"{account}\"")],
        )
    };
    assert_eq!(sip("6reg"), Some(2.0));
    assert_eq!(sip("1reg"), Some(1.0));
    assert_eq!(
        count(
            &m,
            "openvox_sip_registration_info",
            &[T, "account=\"6reg\"", "state=\"Rejected\""]
        ),
        1
    );
    assert!(
        sample(
            &m,
            "openvox_sip_registration_expiry_seconds",
            &[T, "account=\"6reg\""]
        )
        .unwrap()
            <= -11_597.0
    );
    assert_eq!(
        sample(&m, "openvox_calls_total", &[T, "disposition=\"answered\""]),
        Some(0.0)
    );
    assert_eq!(
        sample(
            &m,
            "openvox_unrecognized_values",
            &[T, "field=\"port_state\""]
        ),
        Some(0.0)
    );

    // One login and one oem read for many polls, one call at a time.
    assert_eq!(gw.logins(), 1);
    assert_eq!(sample(&m, "fleet_target_logins_total", &[T]), Some(1.0));
    assert_eq!(gw.requests_to("sys_info/oem"), 1);
    assert!(gw.requests_to("sys_info/performance") >= 4);
    assert_eq!(gw.max_in_flight(), 1);
    for reason in ["auth", "api", "decode", "http"] {
        assert_eq!(errors(&m, reason), 0.0, "{reason}: {m}");
    }
}

#[tokio::test]
async fn expired_token_is_recovered_with_one_login() {
    let gw = sim(OpenvoxSimConfig::default()).await;
    let exporter = exporter(&gw, PASSWORD, "cdr = true").await;
    exporter.wait_for(WAIT, "first poll", up).await;
    more_polls(&exporter, 1.0).await;
    assert_eq!(gw.logins(), 1);
    gw.expire_tokens();
    let m = more_polls(&exporter, 3.0).await;
    assert_eq!(gw.logins(), 2);
    assert_eq!(sample(&m, "fleet_target_logins_total", &[T]), Some(2.0));
    assert!(up(&m));
    for reason in ["auth", "api", "decode", "http", "timeout"] {
        assert_eq!(errors(&m, reason), 0.0, "expiry is not an error ({reason})");
    }
    // The new login brought a fresh oem read (a device that rebooted may have new firmware).
    assert_eq!(gw.requests_to("sys_info/oem"), 2);
}

#[tokio::test]
async fn tokens_that_expire_by_calls_or_seconds_cost_one_login_each() {
    for cfg in [
        OpenvoxSimConfig {
            token_max_calls: Some(9),
            ..OpenvoxSimConfig::default()
        },
        OpenvoxSimConfig {
            token_ttl: Duration::from_millis(1200),
            ..OpenvoxSimConfig::default()
        },
    ] {
        let gw = sim(cfg).await;
        let exporter = exporter(&gw, PASSWORD, "").await;
        exporter.wait_for(WAIT, "first poll", up).await;
        let m = more_polls(&exporter, 10.0).await;
        let logins = sample(&m, "fleet_target_logins_total", &[T]).unwrap();
        // 3 calls a poll against 9 a token, or 1.2 s against 0.3 s polls: a login every 3-4
        // polls, never one per poll, never a second one for the same expiry.
        assert!((2.0..=polls(&m) / 2.0).contains(&logins), "{logins} logins");
        for reason in ["auth", "api", "decode", "http", "timeout"] {
            assert_eq!(errors(&m, reason), 0.0, "{reason}");
        }
        assert!(up(&m));
    }
}

#[tokio::test]
async fn wrong_password_is_an_auth_error_with_backoff() {
    let gw = sim(OpenvoxSimConfig::default()).await;
    let cfg = target(
        "openvox",
        "gw",
        &gw.url(),
        "wrong-password",
        "interval = \"200ms\"\ntimeout = \"150ms\"\nbackoff_max = \"10s\"\n",
    );
    let exporter = start_exporter(&cfg).await;
    let m = exporter
        .wait_for(WAIT, "an auth error", |m| errors(m, "auth") >= 1.0)
        .await;
    assert_eq!(sample(&m, "fleet_target_up", &[T]), Some(0.0));
    assert_eq!(
        count(&m, "openvox_info", &[]),
        0,
        "no device series while down"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    // Without backoff 3 s at 200 ms would be ~15 logins; with doubling it is at most 5.
    assert!(gw.logins() <= 5, "login storm: {} logins", gw.logins());
    let (_, page) = exporter.get("/").await;
    assert!(page.contains("authentication failed"), "{page}");
    let m = exporter.metrics().await;
    for text in [&page, &m] {
        assert!(!text.contains("wrong-password"), "password leaked");
    }
}

#[tokio::test]
async fn a_login_without_a_token_is_an_auth_error() {
    let gw = sim(OpenvoxSimConfig::default()).await;
    gw.set_login_without_token(true);
    let exporter = exporter(&gw, PASSWORD, "").await;
    let m = exporter
        .wait_for(WAIT, "an auth error", |m| errors(m, "auth") >= 1.0)
        .await;
    assert_eq!(sample(&m, "fleet_target_up", &[T]), Some(0.0));
    let (_, page) = exporter.get("/").await;
    assert!(page.contains("without a token"), "{page}");
    gw.set_login_without_token(false);
    exporter.wait_for(WAIT, "recovery", up).await;
}

#[tokio::test]
async fn cdr_records_are_counted_once_across_polls_and_logins() {
    let gw = sim(OpenvoxSimConfig::default()).await;
    // In the log before the exporter's first read: the baseline, never counted.
    gw.add_cdr("CONGESTION", 0);
    let before = gw.cdr_totals();
    let exporter = exporter(&gw, PASSWORD, "cdr = true").await;
    exporter.wait_for(WAIT, "first poll", up).await;
    gw.add_cdr("ANSWERED", 42);
    gw.add_cdr("BUSY", 0);
    let answered = |m: &str| {
        sample(m, "openvox_calls_total", &[T, "disposition=\"answered\""]).unwrap_or(-1.0)
    };
    let m = exporter
        .wait_for(WAIT, "the first records", |m| answered(m) == 1.0)
        .await;
    assert_eq!(
        sample(
            &m,
            "openvox_calls_total",
            &[T, "disposition=\"congestion\""]
        ),
        Some(0.0)
    );
    assert_eq!(
        sample(&m, "openvox_calls_total", &[T, "disposition=\"busy\""]),
        Some(1.0)
    );
    assert_eq!(
        sample(&m, "openvox_call_billable_seconds_total", &[T]),
        Some(42.0)
    );

    // Records keep arriving (some in the same second) while tokens expire under the exporter.
    gw.set_cdr_every(Some(Duration::from_millis(170)));
    for round in 0..4 {
        gw.add_cdr("NO ANSWER", 0);
        gw.add_cdr("ANSWERED", 10 + round);
        gw.expire_tokens();
        more_polls(&exporter, 2.0).await;
    }
    gw.set_cdr_every(None);
    let totals = gw.cdr_totals();
    assert!(totals.records >= 15, "{totals:?}");
    let m = exporter
        .wait_for(WAIT, "every record counted", |m| {
            let counted: f64 = ["answered", "no_answer", "busy", "failed", "congestion"]
                .iter()
                .map(|d| {
                    sample(
                        m,
                        "openvox_calls_total",
                        &[T, &format!("disposition=\"{d}\"")],
                    )
                    .unwrap_or(0.0)
                })
                .sum();
            counted >= (totals.records - before.records) as f64
        })
        .await;
    // Exactly, per disposition, after more polls that saw every record again.
    let m2 = more_polls(&exporter, 3.0).await;
    for m in [&m, &m2] {
        for (word, label) in [
            ("ANSWERED", "answered"),
            ("NO ANSWER", "no_answer"),
            ("BUSY", "busy"),
            ("FAILED", "failed"),
            ("CONGESTION", "congestion"),
        ] {
            let had = before.by_disposition.get(word).copied().unwrap_or(0);
            let want = (totals.by_disposition.get(word).copied().unwrap_or(0) - had) as f64;
            let l = format!("disposition=\"{label}\"");
            assert_eq!(
                sample(m, "openvox_calls_total", &[T, &l]),
                Some(want),
                "{label}"
            );
        }
        assert_eq!(
            sample(m, "openvox_call_billable_seconds_total", &[T]),
            Some((totals.billsec - before.billsec) as f64)
        );
        assert_eq!(
            sample(m, "openvox_cdr_log_records", &[T]),
            Some(totals.records as f64),
            "the whole stored log"
        );
    }
    assert!(gw.logins() >= 5, "tokens were renewed: {}", gw.logins());
    assert!(gw.requests_to("sys_info/cdr") >= 10);
}

#[tokio::test]
async fn a_failing_section_is_a_partial_error_and_never_a_login_per_poll() {
    let gw = sim(OpenvoxSimConfig::default()).await;
    gw.set_path_fault("sys_info/cdr", Fault::Code(500));
    gw.set_path_fault("sys_info/interface", Fault::GarbledNested);
    let exporter = exporter(&gw, PASSWORD, "cdr = true").await;
    exporter.wait_for(WAIT, "first poll", up).await;
    let m = more_polls(&exporter, 4.0).await;
    assert!(up(&m));
    assert!(errors(&m, "api") >= 4.0, "cdr failures counted: {m}");
    assert!(errors(&m, "decode") >= 4.0, "nested failures counted: {m}");
    assert_eq!(
        gw.logins(),
        1,
        "a call that always fails must not cause logins"
    );
    // The rest is exported: system, ports from the readable nested fields, storage.
    assert!(sample(&m, "openvox_uptime_seconds", &[T]).is_some());
    assert_eq!(count(&m, "openvox_port_offhook", &[T]), 4);
    assert_eq!(
        count(&m, "openvox_port_info", &[T]),
        0,
        "dahdi_port was empty"
    );
    assert_eq!(count(&m, "openvox_sip_registration_status", &[T]), 0);
    assert!(sample(&m, "openvox_storage_used_ratio", &[T]).is_some());
    assert_eq!(
        count(&m, "openvox_calls_total", &[T]),
        0,
        "no CDR answer yet"
    );

    // `data: []` where an object belongs costs that section only.
    gw.set_path_fault("sys_info/interface", Fault::None);
    gw.set_path_fault("sys_info/performance", Fault::EmptyData);
    let m = more_polls(&exporter, 2.0).await;
    assert!(up(&m));
    assert_eq!(count(&m, "openvox_uptime_seconds", &[T]), 0);
    assert_eq!(count(&m, "openvox_port_info", &[T]), 8);
}

#[tokio::test]
async fn broken_answers_are_counted_by_reason() {
    for (fault, reason) in [
        (Fault::Truncated, "decode"),
        (Fault::Html, "decode"),
        (Fault::Status500, "http"),
        (Fault::Hang, "timeout"),
    ] {
        let gw = sim(OpenvoxSimConfig::default()).await;
        gw.set_fault(fault);
        let exporter = exporter(&gw, PASSWORD, "").await;
        let m = exporter
            .wait_for(WAIT, reason, |m| errors(m, reason) >= 1.0)
            .await;
        assert_eq!(sample(&m, "fleet_target_up", &[T]), Some(0.0), "{reason}");
        assert_eq!(count(&m, "openvox_info", &[]), 0);
        gw.set_fault(Fault::None);
        exporter.wait_for(WAIT, "recovery", up).await;
    }
}

#[tokio::test]
async fn string_codes_and_state_changes() {
    let gw = sim(OpenvoxSimConfig {
        code_as_string: true,
        ..OpenvoxSimConfig::default()
    })
    .await;
    let exporter = exporter(&gw, PASSWORD, "").await;
    exporter.wait_for(WAIT, "first poll", up).await;
    gw.set_offhook(6, true);
    gw.set_alarm(2, Some("YELLOW"));
    gw.set_sip_state("9reg", "Lost (exp. 5s)");
    gw.set_board_stale(true);
    let m = exporter
        .wait_for(WAIT, "the changes", |m| {
            sample(m, "openvox_port_offhook", &[T, &port(6)]) == Some(1.0)
        })
        .await;
    let m = if sample(&m, "openvox_slot_up", &[T]) == Some(0.0) {
        m
    } else {
        more_polls(&exporter, 1.0).await
    };
    assert_eq!(
        sample(&m, "openvox_port_alarm", &[T, &port(2), "alarm=\"yellow\""]),
        Some(1.0)
    );
    assert_eq!(sample(&m, "openvox_slot_up", &[T]), Some(0.0));
    assert_eq!(
        count(
            &m,
            "openvox_sip_registration_info",
            &[T, "account=\"9reg\"", "state=\"Lost\""]
        ),
        1
    );
    assert_eq!(
        count(
            &m,
            "openvox_sip_registration_status",
            &[T, "account=\"9reg\""]
        ),
        0
    );
    assert_eq!(
        sample(
            &m,
            "openvox_unrecognized_values",
            &[T, "field=\"sip_state\""]
        ),
        Some(1.0)
    );
}

#[tokio::test]
async fn pending_configuration_clock_offset_ntp_and_packages_on_a_slow_cadence() {
    let gw = sim(OpenvoxSimConfig::default()).await;
    gw.set_clock_ahead(-300);
    gw.set_ntp(false);
    gw.set_unapplied("voip", true);
    gw.set_package("ocloudclient", None);
    let exporter = exporter(&gw, PASSWORD, "").await;
    exporter.wait_for(WAIT, "first poll", up).await;
    let m = more_polls(&exporter, 4.0).await;

    let scope = |s: &str| {
        sample(
            &m,
            "openvox_config_unapplied",
            &[T, &format!("scope=\"{s}\"")],
        )
    };
    assert_eq!(scope("voip"), Some(1.0));
    assert_eq!(scope("network"), Some(0.0));
    // Whole seconds, a delayed answer and a loaded machine: within a few seconds of -300.
    let offset = sample(&m, "openvox_clock_offset_seconds", &[T]).unwrap();
    assert!((-304.0..=-296.0).contains(&offset), "offset {offset}");
    assert_eq!(sample(&m, "openvox_ntp_enabled", &[T]), Some(0.0));
    assert_eq!(
        count(
            &m,
            "openvox_clock_info",
            &[T, "timezone=\"UTC-8:00\"", "ntp_servers=\"\""]
        ),
        1,
        "{m}"
    );
    assert_eq!(
        count(
            &m,
            "openvox_package_info",
            &[T, "package=\"icvp-snmp\"", "version=\"1.0-1\""]
        ),
        1,
        "{m}"
    );
    assert_eq!(
        count(&m, "openvox_package_info", &[T]),
        1,
        "ocloudclient is not installed"
    );

    // Read once for many polls: the settings hourly or five-minutely, never each poll.
    assert_eq!(gw.requests_to("general/apply_get"), 1);
    assert_eq!(gw.requests_to("sys_option/datetime_get"), 1);
    assert_eq!(
        gw.requests_to("sys_info/package"),
        2,
        "one call per configured name"
    );

    // A new login may be a rebooted, upgraded gateway: packages are read again.
    gw.set_package("ocloudclient", Some("2.0-1"));
    gw.expire_tokens();
    exporter
        .wait_for(WAIT, "the new package", |m| {
            count(m, "openvox_package_info", &[T, "package=\"ocloudclient\""]) == 1
        })
        .await;
    assert_eq!(gw.requests_to("sys_info/package"), 4);
    assert_eq!(gw.requests_to("general/apply_get"), 1);
    // The offset is measured every poll, from `os_time`.
    gw.set_clock_ahead(45);
    let m = exporter
        .wait_for(WAIT, "the clock to move", |m| {
            sample(m, "openvox_clock_offset_seconds", &[T]).is_some_and(|o| o > 40.0)
        })
        .await;
    assert!(sample(&m, "openvox_clock_offset_seconds", &[T]).unwrap() <= 49.0);
    for reason in ["auth", "api", "decode", "http"] {
        assert_eq!(errors(&m, reason), 0.0, "{reason}");
    }
}

#[tokio::test]
async fn a_board_with_two_spans_keeps_their_ports_apart() {
    let gw = sim(OpenvoxSimConfig {
        spans: 2,
        ..OpenvoxSimConfig::default()
    })
    .await;
    let exporter = exporter(&gw, PASSWORD, "").await;
    let m = exporter
        .wait_for(WAIT, "ports", |m| count(m, "openvox_port_info", &[T]) > 0)
        .await;
    assert_eq!(count(&m, "openvox_port_info", &[T]), 16, "{m}");
    for span in 1..=2 {
        for ch in 1..=8 {
            let p = format!("port=\"{span}/{ch}\"");
            assert_eq!(count(&m, "openvox_port_info", &[T, &p]), 1, "{p}");
            assert_eq!(count(&m, "openvox_port_alarm", &[T, &p, "alarm=\"ok\""]), 1);
        }
    }
    assert_eq!(
        sample(
            &m,
            "openvox_port_alarm",
            &[T, "port=\"2/3\"", "alarm=\"red\""]
        ),
        Some(1.0)
    );
    assert_eq!(sample(&m, "openvox_channels_max", &[T]), Some(16.0));
    assert_eq!(errors(&m, "decode"), 0.0);
}

/// The exporter binary polling `gw` with call counting on, from a config file in `dir`.
fn exporter_process(gw: &OpenvoxSim, dir: &std::path::Path) -> Running {
    let config = dir.join("fleet-exporter.toml");
    let text = target(
        "openvox",
        "gw",
        &gw.url(),
        PASSWORD,
        &format!("{FAST}cdr = true"),
    );
    std::fs::write(&config, text).unwrap();
    Running::start(&[&format!("--config.file={}", config.display())])
}

fn calls(m: &str, disposition: &str) -> Option<f64> {
    let d = format!("disposition=\"{disposition}\"");
    sample(m, "openvox_calls_total", &[T, &d])
}

#[tokio::test]
async fn call_counters_do_not_count_the_stored_log_again_after_an_exporter_restart() {
    let gw = sim(OpenvoxSimConfig::default()).await;
    for _ in 0..5 {
        gw.add_cdr("ANSWERED", 60);
    }
    let dir = temp_dir("openvox-restart");

    // The first exporter: the stored log is its baseline, then two calls end while it runs.
    let first = exporter_process(&gw, &dir);
    first
        .wait_for("the baseline", |m| calls(m, "answered") == Some(0.0))
        .await;
    gw.add_cdr("ANSWERED", 30);
    gw.add_cdr("BUSY", 0);
    let m = first
        .wait_for("two new calls", |m| calls(m, "busy") == Some(1.0))
        .await;
    assert_eq!(calls(&m, "answered"), Some(1.0));
    assert_eq!(
        sample(&m, "openvox_call_billable_seconds_total", &[T]),
        Some(30.0)
    );
    assert_eq!(sample(&m, "openvox_cdr_log_records", &[T]), Some(7.0));
    let (ok, ..) = first.terminate();
    assert!(ok, "the first exporter exits cleanly");

    // The second exporter sees the same seven records: none is a new call.
    let second = exporter_process(&gw, &dir);
    let m = second
        .wait_for("the new baseline", |m| {
            sample(m, "openvox_cdr_log_records", &[T]) == Some(7.0)
        })
        .await;
    let polled = sample(&m, "fleet_target_polls_total", &[T]).unwrap();
    let m = second
        .wait_for("more polls", |m| {
            sample(m, "fleet_target_polls_total", &[T]).unwrap() >= polled + 3.0
        })
        .await;
    for d in [
        "answered",
        "busy",
        "no_answer",
        "failed",
        "congestion",
        "unknown",
    ] {
        assert_eq!(calls(&m, d), Some(0.0), "{d} after the restart");
    }
    assert_eq!(
        sample(&m, "openvox_call_billable_seconds_total", &[T]),
        Some(0.0)
    );
    // A call that ends after the restart counts once.
    gw.add_cdr("NO ANSWER", 0);
    let m = second
        .wait_for("the call after the restart", |m| {
            calls(m, "no_answer") == Some(1.0)
        })
        .await;
    assert_eq!(calls(&m, "answered"), Some(0.0));
    assert_eq!(sample(&m, "openvox_cdr_log_records", &[T]), Some(8.0));
    let (ok, ..) = second.terminate();
    assert!(ok);
}
