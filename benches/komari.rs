//! One poll of a Komari server with 2,000 nodes: wall time, the poll's CPU time, the snapshot's
//! series and bytes, and the time of a `/metrics` scrape that serves it.
//!
//! `cargo bench --bench komari`. The simulator runs on its own runtime threads, the driver on
//! the main thread, so the main thread's CPU time is the exporter's share.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fleet_core::app::App;
use fleet_core::config::{Config, FileFormat, Source};
use fleet_core::driver::PollContext;
use fleet_core::exposition::{render, Format};
use fleet_core::store::PollReport;
use fleet_exporter::server;
use fleet_sim::komari::{KomariSim, KomariSimConfig};

const NODES: usize = 2_000;
const POLLS: usize = 5;
const SCRAPES: usize = 20;

/// CPU time of the calling thread (Linux), from the scheduler's own accounting.
fn thread_cpu() -> Duration {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .map(Duration::from_nanos)
        .unwrap_or_default()
}

fn main() {
    let sim_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("simulator runtime");
    let sim = sim_rt
        .block_on(KomariSim::start(KomariSimConfig {
            nodes: NODES,
            offline: NODES / 20,
            ping_tasks: 2,
            quirks: false,
            ..KomariSimConfig::default()
        }))
        .expect("simulator");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        for (label, extra) in [
            ("live + node list, no ping", "ping = false\n"),
            ("live + node list + ping (500 nodes)", ""),
        ] {
            let text = format!(
                "[[targets]]\nname = \"k\"\nkind = \"komari\"\nurl = \"{}\"\ninterval = \"60s\"\ntimeout = \"30s\"\nnodes_every = 1\n{extra}",
                sim.url()
            );
            let config = Config::parse(&text, FileFormat::Toml, Path::new("."), fleet_drivers::KINDS).expect("config");
            let mut driver = (config.targets[0].factory)();
            let mut best = (Duration::MAX, Duration::ZERO);
            let mut snapshot = None;
            for _ in 0..POLLS {
                let mut ctx = PollContext::new(Arc::from("k"));
                let (wall, cpu) = (Instant::now(), thread_cpu());
                let s = driver.poll_boxed(&mut ctx).await.expect("poll");
                let took = (wall.elapsed(), thread_cpu() - cpu);
                assert!(ctx.partial_errors.is_empty(), "{:?}", ctx.partial_errors);
                if took.0 < best.0 {
                    best = took;
                }
                snapshot = Some(s);
            }
            let snapshot = snapshot.expect("a snapshot");
            println!(
                "{label}: poll wall {:.1} ms, poll CPU {:.1} ms (best of {POLLS}); {} series, {} KiB encoded",
                best.0.as_secs_f64() * 1e3,
                best.1.as_secs_f64() * 1e3,
                snapshot.series(),
                snapshot.encoded_bytes() / 1024
            );

            let start = Instant::now();
            for _ in 0..SCRAPES {
                std::hint::black_box(render(Format::Text, [&snapshot]));
            }
            let encode = start.elapsed() / SCRAPES as u32;

            let app = App::new(Source::Builtin, fleet_drivers::KINDS);
            app.store().register("k", "komari");
            app.store().record(
                "k",
                PollReport {
                    duration: best.0,
                    logins: 0,
                    result: Ok(snapshot),
                    partial_errors: Vec::new(),
                },
            );
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let url = format!("http://{}/metrics", listener.local_addr().expect("addr"));
            let router = server::router(app);
            let serving = tokio::spawn(async move {
                let _ = axum::serve(listener, router).await;
            });
            let client = reqwest::Client::new();
            let mut bytes = 0;
            let start = Instant::now();
            for _ in 0..SCRAPES {
                bytes = client
                    .get(&url)
                    .send()
                    .await
                    .expect("scrape")
                    .bytes()
                    .await
                    .expect("body")
                    .len();
            }
            let scrape = start.elapsed() / SCRAPES as u32;
            serving.abort();
            println!(
                "{label}: /metrics scrape {:.2} ms over HTTP ({} KiB), render alone {:.2} ms (mean of {SCRAPES})",
                scrape.as_secs_f64() * 1e3,
                bytes / 1024,
                encode.as_secs_f64() * 1e3
            );
        }
    });
}
