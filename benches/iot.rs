//! IoT driver at fleet scale: 10,000 devices with two SIM cards each, against the simulator.
//!
//! `cargo bench --bench iot`. The real pace (2 requests/s) would take 5,000 s a round, so the
//! round runs at `RATE` requests/s and the figures are extrapolated; everything else (requests,
//! series, memory, scrape time) does not depend on the pace.

use std::path::Path;
use std::time::{Duration, Instant};

use fleet_core::app::App;
use fleet_core::config::{Config, FileFormat, Source};
use fleet_core::snapshot::SnapshotBuilder;
use fleet_drivers::iot::{metrics, model};
use fleet_exporter::server;
use fleet_sim::iot::{IotSim, IotSimConfig};

mod common;
use common::{mib, process_cpu, rss_bytes};

const DEVICES: usize = 10_000;
const RATE: f64 = 500.0;
const REAL_RATE: f64 = 2.0;

/// This process's RSS, in MiB.
fn rss_mib() -> f64 {
    mib(rss_bytes(std::process::id()))
}

/// Decoding and mapping alone, without sockets or a simulator: the driver's own CPU per device.
fn decode_and_map() {
    let body = include_bytes!("../fixtures/iot/query_device_flow.json");
    let mapping = metrics::Mapping::default();
    let start = Instant::now();
    let mut b = SnapshotBuilder::new(Some("bench"));
    for i in 0..DEVICES {
        let model::Answer::Ok(flow) = model::parse_answer(body).expect("fixture").answer else {
            panic!("fixture is a success");
        };
        metrics::device(&mut b, &format!("{i:015}"), &flow, &mapping);
    }
    let snapshot = b.finish();
    let took = start.elapsed();
    println!(
        "decode+map: {DEVICES} answers in {took:.2?} ({:.1} µs/device), {} series, {:.1} MiB encoded",
        took.as_secs_f64() * 1e6 / DEVICES as f64,
        snapshot.series(),
        snapshot.encoded_bytes() as f64 / 1048576.0
    );
}

#[tokio::main]
async fn main() {
    // The exporter runs in this process: set the allocator up as its binary does.
    fleet_exporter::allocator::pin_large_block_thresholds();
    decode_and_map();

    let platform = IotSim::start(IotSimConfig {
        devices: DEVICES,
        sims_per_device: Some(2),
        rate_limit: None,
        quirks: false,
        ..IotSimConfig::default()
    })
    .await
    .expect("simulator");
    let list: Vec<String> = platform
        .device_nos()
        .iter()
        .map(|d| format!("\"{d}\""))
        .collect();
    let config = format!(
        "[[targets]]\nname = \"fleet\"\nkind = \"iot\"\nurl = \"{}\"\napp_id = \"qwe123\"\n\
         app_secret = \"C55rqUa6AvKyuNMYYvoYCSR1BBfSPWK7\"\ndevices = [{}]\n\
         interval = \"60s\"\ntimeout = \"55s\"\nrate_limit = {RATE}\nconcurrency = 8\n\
         device_interval = \"1h\"\nmax_series = 1000000\n",
        platform.url(),
        list.join(", ")
    );
    let config = Config::parse(
        &config,
        FileFormat::Toml,
        Path::new("."),
        fleet_drivers::KINDS,
    )
    .expect("config");
    let (rss_before, cpu_before) = (rss_mib(), process_cpu());
    let app = App::new(Source::Builtin, fleet_drivers::KINDS);
    let start = Instant::now();
    app.apply(&config).await;
    while !app.store().all_polled() {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let cycle = start.elapsed();
    let cpu = (process_cpu() - cpu_before).as_secs_f64();
    let status = &app.store().status()[0];
    // A round that failed would be measured as one that did nothing.
    assert!(
        status.health.up,
        "the round failed: {:?}",
        status.health.last_error
    );
    println!(
        "round: {} requests for {DEVICES} devices ({} answered) in {cycle:.1?} at {RATE} req/s \
         (poll {:.1?}, start offset included); at {REAL_RATE} req/s: {:.0} s = {:.0} min",
        platform.requests(),
        platform.answered_ok(),
        status.health.last_duration,
        DEVICES as f64 / REAL_RATE,
        DEVICES as f64 / REAL_RATE / 60.0
    );
    println!(
        "process CPU for the round (exporter and simulator together): {cpu:.2} s; \
         RSS {rss_before:.0} → {:.0} MiB; {} series",
        rss_mib(),
        status.series
    );

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/metrics", listener.local_addr().expect("addr"));
    let router = server::router(app.clone());
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    let client = reqwest::Client::new();
    let mut times = Vec::new();
    let mut bytes = 0;
    for _ in 0..10 {
        let t = Instant::now();
        let body = client
            .get(&url)
            .send()
            .await
            .expect("scrape")
            .bytes()
            .await
            .expect("body");
        times.push(t.elapsed());
        bytes = body.len();
    }
    times.sort();
    println!(
        "scrape /metrics: median {:.1?}, max {:.1?}, {:.1} MiB",
        times[times.len() / 2],
        times[times.len() - 1],
        bytes as f64 / 1048576.0
    );
    app.shutdown().await;
}
