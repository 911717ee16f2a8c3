//! One poll of a Komari server with 2,000 nodes, each a target of the ping tasks: wall time, the
//! poll's CPU time (and the share of it that compresses the snapshot's blocks for gzip scrapes),
//! the snapshot's series and bytes, and the time of a `/metrics` scrape that serves it; over the WebSocket path (with and without ping, capped and for every node) and
//! over JSON-RPC (the steady poll, and one with the node list every poll), in the same run.
//!
//! `cargo bench --bench komari`. The simulator runs on its own named runtime threads; the CPU
//! time is every other thread's (the driver's, and the blocking threads large answers are
//! decoded on), so it is the exporter's share.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

mod common;
use common::thread_cpu;

use fleet_core::app::App;
use fleet_core::config::{Config, FileFormat, Source};
use fleet_core::driver::PollContext;
use fleet_core::exposition::{render, Format};
use fleet_core::gzip::Deflated;
use fleet_core::snapshot::Snapshot;
use fleet_core::store::PollReport;
use fleet_exporter::server;
use fleet_sim::komari::{KomariSim, KomariSimConfig};

const NODES: usize = 2_000;
const POLLS: usize = 7;
/// The targets' poll interval (as configured below), which the simulator's clock skips between
/// polls.
const INTERVAL: Duration = Duration::from_secs(60);
const SCRAPES: usize = 20;

/// The simulator's threads, left out of the CPU time.
const SIM_THREADS: &str = "komari-sim";

/// CPU time of every thread of this process but the simulator's (Linux): the calling thread's
/// from its clock, the others' from the scheduler's accounting, which is up to date for threads
/// that are not running (the driver's blocking threads wait between answers).
fn exporter_cpu() -> Duration {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Duration::ZERO;
    };
    let me = std::fs::read_link("/proc/thread-self").unwrap_or_default();
    let mut total = 0u64;
    for task in tasks.flatten() {
        let path = task.path();
        let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        if comm.trim() == SIM_THREADS || me.file_name() == Some(&task.file_name()) {
            continue;
        }
        total += std::fs::read_to_string(path.join("schedstat"))
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse().ok())
            .unwrap_or(0);
    }
    Duration::from_nanos(total) + thread_cpu()
}

fn median(values: &mut [Duration]) -> Duration {
    values.sort_unstable();
    values[values.len() / 2]
}

fn main() {
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let sim_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(SIM_THREADS)
        .enable_all()
        .build()
        .expect("simulator runtime");
    let sim = sim_rt
        .block_on(KomariSim::start(KomariSimConfig {
            nodes: NODES,
            offline: NODES / 20,
            ping_tasks: 2,
            ping_all_nodes: true,
            quirks: false,
            version: "1.2.6".into(),
            ..KomariSimConfig::default()
        }))
        .expect("simulator");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        for (label, extra) in [
            ("ws: live + node list, no ping", "source = \"ws\"\nnodes_every = 1\nping = false\n"),
            ("ws: live + node list + ping (500 nodes)", "source = \"ws\"\nnodes_every = 1\n"),
            (
                "ws: live + node list + ping (every node)",
                "source = \"ws\"\nnodes_every = 1\nping_max_nodes = 2000\n",
            ),
            ("rpc: status, no ping", "source = \"rpc\"\nnodes_every = 1000\nping = false\n"),
            ("rpc: status + ping (every node)", "source = \"rpc\"\nnodes_every = 1000\n"),
            (
                "rpc: status + ping + node list batch",
                "source = \"rpc\"\nnodes_every = 1\n",
            ),
        ] {
            // `cargo bench --bench komari -- rpc` runs only the scenarios whose label has "rpc".
            if !filter.as_deref().is_none_or(|f| label.contains(f)) {
                continue;
            }
            let text = format!(
                "[[targets]]\nname = \"k\"\nkind = \"komari\"\nurl = \"{}\"\ninterval = \"60s\"\ntimeout = \"30s\"\n{extra}",
                sim.url()
            );
            let config = Config::parse(&text, FileFormat::Toml, Path::new("."), fleet_drivers::KINDS).expect("config");
            let mut driver = (config.targets[0].factory)();
            let (mut walls, mut cpus) = (Vec::new(), Vec::new());
            let (mut snapshot, mut previous): (Option<Arc<Snapshot>>, _) = (None, None);
            for _ in 0..POLLS {
                // Polls a real interval apart: the simulator's clock skips ahead by one, so
                // each poll sees the values move as they would, and the blocks that stay the
                // same from one poll to the next are as many as they would be.
                sim.skip_clock(INTERVAL);
                let mut ctx = PollContext::new(Arc::from("k")).after(snapshot.clone());
                let (wall, cpu) = (Instant::now(), exporter_cpu());
                let s = driver.poll_boxed(&mut ctx).await.expect("poll");
                // A blocking thread that ended during the poll takes its CPU time with it.
                let took = (wall.elapsed(), exporter_cpu().saturating_sub(cpu));
                assert!(ctx.partial_errors.is_empty(), "{:?}", ctx.partial_errors);
                walls.push(took.0);
                cpus.push(took.1);
                previous = snapshot.replace(Arc::new(s));
            }
            let snapshot = Arc::try_unwrap(snapshot.expect("a snapshot")).expect("one owner");
            let previous = previous.expect("two polls");
            let (wall, cpu) = (median(&mut walls), median(&mut cpus));
            println!(
                "{label}: poll wall {:.1} ms, poll CPU {:.1} ms (median of {POLLS}); {} series, {} KiB encoded",
                wall.as_secs_f64() * 1e3,
                cpu.as_secs_f64() * 1e3,
                snapshot.series(),
                snapshot.encoded_bytes() / 1024
            );

            // What `SnapshotBuilder::finish` spent compressing in the last poll, done again on
            // the same blocks: those that changed since the poll before (the others it shared).
            let changed = common::changed_blocks(&snapshot, &previous);
            let mut compress: Vec<Duration> = (0..POLLS)
                .map(|_| {
                    let cpu = thread_cpu();
                    for samples in &changed {
                        std::hint::black_box(Deflated::compress(samples));
                    }
                    thread_cpu().saturating_sub(cpu)
                })
                .collect();
            let compress = median(&mut compress);
            println!(
                "{label}: of which compressing the changed blocks {:.1} ms CPU (median of {POLLS}; {} of {} KiB changed, {} KiB compressed in all)",
                compress.as_secs_f64() * 1e3,
                changed.iter().map(|c| c.len()).sum::<usize>() / 1024,
                snapshot.encoded_bytes() / 1024,
                snapshot.compressed_bytes() / 1024
            );
            // Issue 17's goal read with and without the compressing that gzip scrapes rely on.
            println!(
                "{label}: the poll's own work (decoding, mapping, building) {:.1} ms CPU: poll CPU less compressing",
                cpu.saturating_sub(compress).as_secs_f64() * 1e3
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
                    duration: wall,
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
