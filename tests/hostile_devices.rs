//! Hostile devices (issue 12, the device half): answers built to amplify, flood or stall, served
//! over real sockets by the simulators' fault knobs. Each test puts one or more hostile targets
//! and a healthy one on one exporter and asserts the bound: what is read is cut at the target's
//! caps (counted as `reason="limit"`), memory stays under a stated figure, device-chosen label
//! values fold into `other`, the healthy target keeps its cadence and `/metrics` stays fast.
//!
//! Memory is this test process's (`/proc/self/status`): the simulators run here too and build
//! their 7 MB answers, so the figures are generous; unbounded, the same answers took gigabytes.

mod common;

use std::time::{Duration, Instant};

use common::{count, ikuai_target, sample, start_exporter, target, Exporter};
use fleet_sim::{ikuai, iot, komari, openvox};

const PASSWORD: &str = "hostile-Pa55word";
/// A scrape only encodes what the store holds (the fault suite's 250 ms, with room for a
/// simulator in the same process writing 7 MB answers on a shared 2-core machine).
const SCRAPE_BUDGET: Duration = Duration::from_millis(500);

/// The tests with 7 MB answers run one at a time: each measures this process's memory and the
/// healthy target's cadence, which the others' simulators would disturb.
static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
/// Peak memory growth allowed while hostile answers are decoded (unbounded: 4 GiB and an abort).
const PEAK_GROWTH_KIB: u64 = 600 << 10;

fn polls(m: &str, name: &str) -> f64 {
    sample(
        m,
        "fleet_target_polls_total",
        &[&format!("target=\"{name}\"")],
    )
    .unwrap_or(0.0)
}

fn errors(m: &str, name: &str, reason: &str) -> f64 {
    let labels = [
        &format!("target=\"{name}\"") as &str,
        &format!("reason=\"{reason}\""),
    ];
    sample(m, "fleet_target_poll_errors_total", &labels).unwrap_or(0.0)
}

/// Scrapes `/metrics`, asserting it answers within [`SCRAPE_BUDGET`].
async fn timed_scrape(exporter: &Exporter) -> String {
    let started = Instant::now();
    let text = exporter.metrics().await;
    let took = started.elapsed();
    assert!(took < SCRAPE_BUDGET, "/metrics took {took:?}");
    text
}

/// Scrapes for `run`, returning the last exposition and how many polls `healthy` made.
async fn watch(exporter: &Exporter, healthy: &str, run: Duration) -> (String, f64) {
    let (text, made, _) = watch_until(exporter, healthy, run, |_| false).await;
    (text, made)
}

/// Scrapes every 300 ms until `done` holds for an exposition or `at_most` has passed, returning
/// the last exposition, how many polls `healthy` made meanwhile and how long it took.
async fn watch_until(
    exporter: &Exporter,
    healthy: &str,
    at_most: Duration,
    done: impl Fn(&str) -> bool,
) -> (String, f64, Duration) {
    let start = Instant::now();
    let first = polls(&exporter.metrics().await, healthy);
    let mut text = String::new();
    while start.elapsed() < at_most {
        tokio::time::sleep(Duration::from_millis(300)).await;
        text = timed_scrape(exporter).await;
        if done(&text) {
            break;
        }
    }
    let made = polls(&text, healthy) - first;
    (text, made, start.elapsed())
}

async fn ikuai_sim() -> ikuai::IkuaiSim {
    ikuai::IkuaiSim::start(ikuai::IkuaiSimConfig {
        password: PASSWORD.into(),
        ..ikuai::IkuaiSimConfig::default()
    })
    .await
    .unwrap()
}

const FAST: &str = "interval = \"1s\"\ntimeout = \"900ms\"\nbackoff_max = \"1s\"\n";
/// Hostile answers are 7 MB: sent, read and decoded (in a debug build, on a shared machine)
/// they need more than a second.
const SLOW: &str = "interval = \"3s\"\ntimeout = \"2900ms\"\nbackoff_max = \"3s\"\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ikuai_pages_of_empty_rows_with_a_huge_total_are_cut_at_max_rows() {
    let _one_at_a_time = HEAVY.lock().await;
    let hostile = ikuai_sim().await;
    hostile.set_fault(ikuai::Fault::HugeClientPages);
    let healthy = ikuai_sim().await;
    let config = format!(
        "{}{}",
        ikuai_target("hostile", &hostile.url(), PASSWORD, SLOW),
        ikuai_target("healthy", &healthy.url(), PASSWORD, FAST)
    );
    let (peak_before, _) = common::memory_kib();
    let exporter = start_exporter(&config).await;
    let (m, made) = watch(&exporter, "healthy", Duration::from_secs(7)).await;
    let (peak_after, rss_after) = common::memory_kib();
    let growth = peak_after.saturating_sub(peak_before);
    eprintln!("ikuai: peak growth {growth} KiB, resident {rss_after} KiB, healthy polls {made}");
    assert!(growth < PEAK_GROWTH_KIB, "peak grew {growth} KiB");
    assert!(
        made >= 3.0,
        "the healthy router kept its cadence: {made} polls in 6 s"
    );
    // The rows are cut (one page of max_rows, the trillion not fetched), the poll still serves
    // what it read, and the cut is counted.
    assert!(errors(&m, "hostile", "limit") >= 1.0, "{m}");
    assert_eq!(
        sample(&m, "fleet_target_up", &["target=\"hostile\""]),
        Some(1.0)
    );
    let hostile_calls = hostile.calls();
    assert!(
        hostile_calls < 60,
        "one page per poll, not a trillion rows: {hostile_calls}"
    );
    assert_eq!(errors(&m, "healthy", "limit"), 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_over_max_series_fails_with_limit_and_nothing_else_does() {
    let sim = ikuai_sim().await;
    let config = format!(
        "{}{}",
        ikuai_target(
            "small",
            &sim.url(),
            PASSWORD,
            &format!("{FAST}max_series = 10\n")
        ),
        ikuai_target("normal", &sim.url(), PASSWORD, FAST)
    );
    let exporter = start_exporter(&config).await;
    let m = exporter
        .wait_for(Duration::from_secs(10), "both polled", |m| {
            polls(m, "small") >= 2.0 && polls(m, "normal") >= 2.0
        })
        .await;
    assert_eq!(
        sample(&m, "fleet_target_up", &["target=\"small\""]),
        Some(0.0)
    );
    assert_eq!(
        sample(&m, "fleet_target_series", &["target=\"small\""]),
        Some(0.0)
    );
    assert!(errors(&m, "small", "limit") >= 2.0, "{m}");
    assert_eq!(
        sample(&m, "fleet_target_up", &["target=\"normal\""]),
        Some(1.0)
    );
    assert!(sample(&m, "fleet_target_series", &["target=\"normal\""]).unwrap() > 10.0);
    assert_eq!(errors(&m, "normal", "limit"), 0.0);
    let (_, status) = exporter.get("/").await;
    assert!(status.contains("max_series"), "the status page says why");
}

async fn openvox_sim() -> openvox::OpenvoxSim {
    openvox::OpenvoxSim::start(openvox::OpenvoxSimConfig {
        password: PASSWORD.into(),
        login_delay: Duration::from_millis(20),
        cdr_every: None,
        ..openvox::OpenvoxSimConfig::default()
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openvox_floods_of_cdr_records_are_cut_and_counted_in_linear_time() {
    let _one_at_a_time = HEAVY.lock().await;
    // About 4.5 MB, within the body limit: every record is read, 30,000 are checked (quadratic,
    // that alone was minutes of one core).
    const RECORDS: usize = 60_000;
    const CAP: usize = 30_000;
    let (a, b, healthy) = (
        openvox_sim().await,
        openvox_sim().await,
        openvox_sim().await,
    );
    // A debug build decodes slowly: the deadline is generous, and must not be reached.
    let pacing = format!(
        "interval = \"6s\"\ntimeout = \"5900ms\"\nbackoff_max = \"6s\"\ncdr = true\nmax_cdr_records = {CAP}\n"
    );
    let config = format!(
        "{}{}{}",
        target("openvox", "flood-a", &a.url(), PASSWORD, &pacing),
        target("openvox", "flood-b", &b.url(), PASSWORD, &pacing),
        target("openvox", "healthy", &healthy.url(), PASSWORD, &pacing),
    );
    let (peak_before, _) = common::memory_kib();
    let exporter = start_exporter(&config).await;
    // The first CDR answer is the baseline the counters start from: the flood comes after it,
    // as new calls to count.
    exporter
        .wait_for(Duration::from_secs(20), "the CDR baselines", |m| {
            ["flood-a", "flood-b"].iter().all(|gw| {
                let t = format!("target=\"{gw}\"");
                sample(m, "openvox_cdr_log_records", &[&t]) == Some(0.0)
            })
        })
        .await;
    for gw in [&a, &b] {
        gw.set_path_fault("sys_info/cdr", openvox::Fault::FloodedCdr(RECORDS));
    }
    let (m, made) = watch(&exporter, "healthy", Duration::from_secs(13)).await;
    let (peak_after, _) = common::memory_kib();
    let growth = peak_after.saturating_sub(peak_before);
    eprintln!("openvox: peak growth {growth} KiB, healthy polls {made}");
    assert!(growth < PEAK_GROWTH_KIB, "peak grew {growth} KiB");
    assert!(
        made >= 2.0,
        "the healthy gateway kept its cadence: {made} polls in 13 s"
    );
    for gw in ["flood-a", "flood-b"] {
        let t = format!("target=\"{gw}\"");
        assert_eq!(sample(&m, "fleet_target_up", &[&t]), Some(1.0), "{m}");
        assert_eq!(
            errors(&m, gw, "timeout"),
            0.0,
            "{gw} decoded within its deadline"
        );
        assert!(errors(&m, gw, "limit") >= 1.0);
        // Every distinct record read is counted once, however many polls see it again.
        let answered = sample(&m, "openvox_calls_total", &[&t, "disposition=\"answered\""]);
        assert_eq!(answered, Some(CAP as f64), "{gw}");
        let took = sample(&m, "fleet_target_poll_duration_seconds", &[&t]).unwrap();
        eprintln!("{gw}: a poll of {RECORDS} records took {took} s");
        assert!(took < 5.9, "{gw}: a poll took {took} s");
    }
}

async fn iot_sim() -> iot::IotSim {
    iot::IotSim::start(iot::IotSimConfig {
        devices: 4,
        rate_limit: None,
        ..iot::IotSimConfig::default()
    })
    .await
    .unwrap()
}

fn iot_target(name: &str, sim: &iot::IotSim, extra: &str) -> String {
    let list: Vec<String> = sim
        .device_nos()
        .iter()
        .map(|d| format!("\"{d}\""))
        .collect();
    format!(
        "[[targets]]\nname = \"{name}\"\nkind = \"iot\"\nurl = \"{}\"\napp_id = \"qwe123\"\n\
         app_secret = \"C55rqUa6AvKyuNMYYvoYCSR1BBfSPWK7\"\ndevices = [{}]\n\
         device_interval = \"1s\"\nrate_limit = 100\n{extra}\n",
        sim.url(),
        list.join(", ")
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iot_random_error_codes_fold_into_other_past_max_label_values() {
    let sim = iot_sim().await;
    sim.set_fault(iot::Fault::RandomCodes);
    let exporter = start_exporter(&iot_target(
        "t",
        &sim,
        &format!("{FAST}max_label_values = 5\n"),
    ))
    .await;
    let m = exporter
        .wait_for(Duration::from_secs(15), "codes folded", |m| {
            sample(m, "iot_api_requests_total", &["code=\"other\""]).unwrap_or(0.0) >= 5.0
        })
        .await;
    let codes = count(&m, "iot_api_requests_total", &["target=\"t\""]);
    assert!(
        codes <= 7,
        "success, five codes and `other`: {codes} series\n{m}"
    );
    let folded = sample(
        &m,
        "fleet_device_label_values_folded_total",
        &["family=\"iot_api_requests_total\"", "label=\"code\""],
    );
    assert!(folded.unwrap_or(0.0) >= 5.0, "{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iot_answers_of_millions_of_empty_cards_keep_max_rows_cards() {
    let _one_at_a_time = HEAVY.lock().await;
    let hostile = iot_sim().await;
    hostile.set_fault(iot::Fault::HugeSimList);
    let healthy = iot_sim().await;
    let config = format!(
        "{}{}",
        iot_target("hostile", &hostile, SLOW),
        iot_target("healthy", &healthy, FAST)
    );
    let (peak_before, _) = common::memory_kib();
    let exporter = start_exporter(&config).await;
    let (m, made) = watch(&exporter, "healthy", Duration::from_secs(7)).await;
    let (peak_after, rss_after) = common::memory_kib();
    let growth = peak_after.saturating_sub(peak_before);
    eprintln!("iot: peak growth {growth} KiB, resident {rss_after} KiB, healthy polls {made}");
    assert!(growth < PEAK_GROWTH_KIB, "peak grew {growth} KiB");
    assert!(
        made >= 3.0,
        "the healthy platform kept its cadence: {made} polls"
    );
    assert!(errors(&m, "hostile", "limit") >= 1.0, "{m}");
    assert_eq!(
        sample(&m, "fleet_target_up", &["target=\"hostile\""]),
        Some(1.0)
    );
}

async fn komari_sim() -> komari::KomariSim {
    komari::KomariSim::start(komari::KomariSimConfig::default())
        .await
        .unwrap()
}

/// A Komari target on the WebSocket and REST path, where the amplifying answers are played.
fn komari_target(name: &str, sim: &komari::KomariSim, extra: &str) -> String {
    format!(
        "[[targets]]\nname = \"{name}\"\nkind = \"komari\"\nurl = \"{}\"\nsource = \"ws\"\n{extra}\n",
        sim.url()
    )
}

/// What a target's last snapshot holds (`fleet_target_series`).
fn series(m: &str, name: &str) -> f64 {
    sample(m, "fleet_target_series", &[&format!("target=\"{name}\"")]).unwrap_or(-1.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn komari_a_million_online_ids_and_8_mb_node_lists_are_cut_at_max_rows() {
    let _one_at_a_time = HEAVY.lock().await;
    // The default `max_rows`: what an operator who never heard of it gets.
    const MAX_ROWS: f64 = 10_000.0;
    let (online, listed, healthy) = (komari_sim().await, komari_sim().await, komari_sim().await);
    online.set_fault(komari::Fault::MillionOnline);
    listed.set_fault(komari::Fault::HugeNodeList);
    // Two 7-8 MB answers decoded at once by a debug build on a shared machine: the deadline is
    // generous, and must not be reached.
    const SLOWER: &str = "interval = \"12s\"\ntimeout = \"11900ms\"\nbackoff_max = \"12s\"\n";
    let config = format!(
        "{}{}{}",
        komari_target("million-online", &online, SLOWER),
        komari_target("huge-node-list", &listed, SLOWER),
        komari_target("healthy", &healthy, FAST)
    );
    let (peak_before, _) = common::memory_kib();
    let exporter = start_exporter(&config).await;
    // Until both hostile servers have been polled twice (the second reads the padded reply over
    // the kept socket, and serves the node list kept from the first), every scrape within its
    // budget.
    let both_twice =
        |m: &str| polls(m, "million-online") >= 2.0 && polls(m, "huge-node-list") >= 2.0;
    let (m, made, took) =
        watch_until(&exporter, "healthy", Duration::from_secs(60), both_twice).await;
    let (peak_after, rss_after) = common::memory_kib();
    let growth = peak_after.saturating_sub(peak_before);
    eprintln!(
        "komari: peak growth {growth} KiB, resident {rss_after} KiB, healthy polls {made} in \
         {took:?}, /metrics {} bytes, series {} (million-online) {} (huge-node-list)",
        m.len(),
        series(&m, "million-online"),
        series(&m, "huge-node-list"),
    );
    assert!(
        both_twice(&m),
        "both hostile servers polled twice in 60 s\n{m}"
    );
    assert!(growth < PEAK_GROWTH_KIB, "peak grew {growth} KiB");
    // A poll a second, less a third for the load of decoding beside it.
    let cadence = took.as_secs_f64() * 2.0 / 3.0 - 1.0;
    assert!(
        made >= cadence,
        "the healthy server kept its cadence: {made} polls in {took:?}"
    );
    for name in ["million-online", "huge-node-list"] {
        let t = format!("target=\"{name}\"");
        assert_eq!(
            sample(&m, "fleet_target_up", &[&t]),
            Some(1.0),
            "{name}\n{m}"
        );
        assert!(
            errors(&m, name, "limit") >= 1.0,
            "{name}: the cut is counted\n{m}"
        );
        assert_eq!(
            errors(&m, name, "timeout"),
            0.0,
            "{name} within its deadline"
        );
        let took = sample(&m, "fleet_target_poll_duration_seconds", &[&t]);
        eprintln!("{name}: the last poll took {took:?} s");
    }
    // A million ids become at most `max_rows` online nodes (unbounded: 1,001,016 series).
    let t = "target=\"million-online\"";
    assert_eq!(sample(&m, "komari_nodes_online", &[t]), Some(MAX_ROWS));
    assert!(count(&m, "komari_node_online", &[t]) as f64 <= MAX_ROWS + 6.0);
    assert!(
        series(&m, "million-online") < MAX_ROWS + 1_000.0,
        "{}",
        series(&m, "million-online")
    );
    // Empty entries describe no node: the list adds no series, the real reports still do.
    let t = "target=\"huge-node-list\"";
    assert_eq!(count(&m, "komari_node_info", &[t]), 0);
    assert_eq!(sample(&m, "komari_nodes", &[t]), Some(6.0));
    // Every scrape in `watch_until` was within the budget; the body stays small (unbounded: 48 MB).
    assert!(m.len() < 2 << 20, "/metrics is {} bytes", m.len());
    assert_eq!(errors(&m, "healthy", "limit"), 0.0);
}

/// The distinct values `label` takes in `family`'s samples for target `t`.
fn label_values(m: &str, family: &str, label: &str) -> std::collections::BTreeSet<String> {
    let key = format!("{label}=\"");
    m.lines()
        .filter(|l| l.split(['{', ' ']).next() == Some(family) && l.contains("target=\"t\""))
        .filter_map(|l| {
            let (_, rest) = l.split_once(&format!(",{key}"))?;
            Some(rest.split('"').next()?.to_string())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openvox_invented_words_fold_into_other_past_max_label_values() {
    let gw = openvox_sim().await;
    gw.set_fault(openvox::Fault::InventedWords);
    let extra = format!("{FAST}max_label_values = 5\n");
    let exporter = start_exporter(&target("openvox", "t", &gw.url(), PASSWORD, &extra)).await;
    let folded = |m: &str, label: &str| {
        let label = format!("label=\"{label}\"");
        let labels = ["target=\"t\"", label.as_str()];
        sample(m, "fleet_device_label_values_folded_total", &labels).unwrap_or(0.0)
    };
    // Each answer names 8 ports and 2 SIP accounts with new words: past the cap of 5 from the
    // first poll on.
    let m = exporter
        .wait_for(Duration::from_secs(20), "three polls of new words", |m| {
            polls(m, "t") >= 3.0 && folded(m, "state") > 0.0
        })
        .await;
    assert_eq!(sample(&m, "fleet_target_up", &["target=\"t\""]), Some(1.0));
    for (family, label, known) in [
        ("openvox_port_info", "signalling", 0),
        ("openvox_port_info", "echo_canceller", 0),
        ("openvox_port_alarm", "alarm", 6),
        ("openvox_sip_registration_info", "state", 0),
    ] {
        let values = label_values(&m, family, label);
        assert!(
            values.len() <= known + 5 + 1,
            "{family} {label}: the known words, five of the gateway's and `other`: {values:?}"
        );
        assert!(values.contains("other"), "{family} {label}: {values:?}");
        assert!(folded(&m, label) >= 1.0, "{label} folds are counted\n{m}");
    }
    // Invented words are still unrecognised words, counted as before.
    let unrecognized = ["target=\"t\"", "field=\"port_state\""];
    assert!(sample(&m, "openvox_unrecognized_values", &unrecognized).unwrap_or(0.0) > 0.0);
}
