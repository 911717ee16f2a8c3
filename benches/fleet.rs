//! The fleet benchmark: `cargo bench --bench fleet [-- --quick] [--minutes N]`. BENCHMARKS.md
//! says what each figure means.
//!
//! One exporter process (the real binary, default intervals) against a whole ISP's fleet of
//! simulators: 200 iKuai routers with 256 LAN clients (the default `max_clients`), 5 Komari
//! servers with 1,000 nodes each, 10 OpenVox gateways and 10 IoT accounts of 1,000 devices.
//! The simulators run in a second process (this binary re-executed with `--sims`), so the
//! exporter's memory and CPU, read from /proc, are its own. Scrape latencies are measured
//! against a floor measured in the same run: the same bytes, served from memory by a server in
//! a third process (`--floor DIR`), as the exporter is one. `--quick` is a tenth of the fleet,
//! for CI; `--minutes N` keeps scraping as Prometheus would (gzip, every 15 s) for N minutes and reports the memory at the end.
//! `FLEET_BENCH_EXPORTER` measures another build of the exporter, `FLEET_BENCH_WRAP` runs it
//! under a profiler (`exporter_command`).

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::header;
use axum::routing::get;
use fleet_sim::ikuai::{IkuaiSim, IkuaiSimConfig};
use fleet_sim::iot::{IotSim, IotSimConfig};
use fleet_sim::komari::{KomariSim, KomariSimConfig};
use fleet_sim::openvox::{OpenvoxSim, OpenvoxSimConfig};

mod common;
use common::{cpu_seconds, fetch_encoded, mib, ratio, rss_bytes, values, Process, Stats};

const BIN: &str = env!("CARGO_BIN_EXE_fleet-exporter");
/// The poll interval every target keeps (the config's default).
const INTERVAL: Duration = Duration::from_secs(30);
/// Requests per second each IoT account may take: the platform's default of 2 would need 500 s
/// for a round of 1,000 devices, so the simulated platform allows more and the exporter asks
/// that fast (BENCHMARKS.md, IoT).
const IOT_RATE: usize = 100;
const TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A fleet's size.
#[derive(Clone, Copy)]
struct Fleet {
    routers: usize,
    clients: usize,
    komari_servers: usize,
    komari_nodes: usize,
    gateways: usize,
    iot_accounts: usize,
    iot_devices: usize,
}

const FULL: Fleet = Fleet {
    routers: 200,
    clients: 256,
    komari_servers: 5,
    komari_nodes: 1000,
    gateways: 10,
    iot_accounts: 10,
    iot_devices: 1000,
};

const QUICK: Fleet = Fleet {
    routers: 20,
    clients: 256,
    komari_servers: 1,
    komari_nodes: 500,
    gateways: 2,
    iot_accounts: 1,
    iot_devices: 500,
};

/// How long each phase of a run takes.
struct Phases {
    /// From ready to the CPU window: the IoT accounts' first rounds, owed devices included.
    warm_up: Duration,
    /// The CPU window, with no scrapes: two poll intervals.
    window: Duration,
    /// Rounds of each `/metrics` comparison, and of the `/probe` one.
    metrics_rounds: usize,
    probe_rounds: usize,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let fleet = if quick { QUICK } else { FULL };
    if args.iter().any(|a| a == "--sims") {
        serve_sims(fleet);
        return ExitCode::SUCCESS;
    }
    if let Some(i) = args.iter().position(|a| a == "--floor") {
        serve_floor(Path::new(args.get(i + 1).expect("--floor DIR")));
        return ExitCode::SUCCESS;
    }
    let minutes = match args.iter().position(|a| a == "--minutes") {
        Some(i) => match args.get(i + 1).and_then(|n| n.parse::<u64>().ok()) {
            Some(n) => n,
            None => {
                eprintln!("--minutes needs a number");
                return ExitCode::FAILURE;
            }
        },
        None => 0,
    };
    let phases = if quick {
        Phases {
            warm_up: Duration::from_secs(5),
            window: INTERVAL,
            metrics_rounds: 10,
            probe_rounds: 50,
        }
    } else {
        Phases {
            warm_up: 2 * INTERVAL,
            window: 2 * INTERVAL,
            metrics_rounds: 20,
            probe_rounds: 200,
        }
    };
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    if rt.block_on(run(fleet, quick, &phases, minutes)) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

// ---------------------------------------------------------------------------
// The simulator process
// ---------------------------------------------------------------------------

/// Starts the fleet's simulators, prints `kind url` for each and then `ready`, and serves them
/// until stdin closes.
fn serve_sims(fleet: Fleet) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let mut out = std::io::stdout().lock();
    let sims = rt.block_on(async {
        let mut urls = Vec::new();
        let mut keep = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for i in 0..fleet.routers {
            let sim = IkuaiSim::start(IkuaiSimConfig::fleet_router(i, fleet.clients)).await;
            let sim = sim.expect("start iKuai simulator");
            urls.push(format!("ikuai {}", sim.url()));
            keep.0.push(sim);
        }
        for i in 0..fleet.komari_servers {
            let sim = KomariSim::start(KomariSimConfig {
                nodes: fleet.komari_nodes,
                offline: fleet.komari_nodes / 50,
                lossy_node: None,
                seed: i as u64 + 1,
                ..KomariSimConfig::default()
            })
            .await
            .expect("start Komari simulator");
            urls.push(format!("komari {}", sim.url()));
            keep.1.push(sim);
        }
        for i in 0..fleet.gateways {
            let sim = OpenvoxSim::start(OpenvoxSimConfig {
                seed: i as u64 + 1,
                ..OpenvoxSimConfig::default()
            })
            .await
            .expect("start OpenVox simulator");
            urls.push(format!("openvox {}", sim.url()));
            keep.2.push(sim);
        }
        for i in 0..fleet.iot_accounts {
            let sim = IotSim::start(IotSimConfig {
                devices: fleet.iot_devices,
                rate_limit: Some(2 * IOT_RATE),
                seed: i as u64 + 1,
                ..IotSimConfig::default()
            })
            .await
            .expect("start IoT simulator");
            urls.push(format!("iot {}", sim.url()));
            keep.3.push(sim);
        }
        for url in urls {
            let _ = writeln!(out, "{url}");
        }
        keep
    });
    let _ = writeln!(out, "ready");
    let _ = out.flush();
    for _ in std::io::stdin().lock().lines().map_while(Result::ok) {}
    drop(sims);
}

/// The exporter's config for the simulators' `kind url` lines: every key at its default except
/// the IoT pace.
fn config(lines: &[String], fleet: Fleet) -> String {
    let devices: Vec<String> = (0..fleet.iot_devices)
        .map(|i| format!("\"{}\"", IotSim::device_no(i)))
        .collect();
    let defaults = IotSimConfig::default();
    let mut text = String::new();
    let mut counts = std::collections::BTreeMap::<&str, usize>::new();
    for line in lines {
        let (kind, url) = line.split_once(' ').expect("kind url");
        let n = counts.entry(kind).or_default();
        text.push_str(&format!(
            "[[targets]]\nname = \"{kind}-{n:03}\"\nkind = \"{kind}\"\nurl = \"{url}\"\n"
        ));
        *n += 1;
        match kind {
            "ikuai" | "openvox" => text.push_str("password = \"admin\"\n"),
            "iot" => text.push_str(&format!(
                "app_id = \"{}\"\napp_secret = \"{}\"\nrate_limit = {IOT_RATE}\ndevices = [{}]\n",
                defaults.app_id,
                defaults.app_secret,
                devices.join(", ")
            )),
            _ => {}
        }
        text.push('\n');
    }
    text
}

// ---------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------

async fn run(fleet: Fleet, quick: bool, phases: &Phases, minutes: u64) -> bool {
    let mut sims_cmd = Command::new(std::env::current_exe().expect("own path"));
    sims_cmd.arg("--sims");
    if quick {
        sims_cmd.arg("--quick");
    }
    let mut sims = Process(
        sims_cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn simulators"),
    );
    let mut lines = Vec::new();
    let mut sims_out = BufReader::new(sims.0.stdout.take().expect("piped"));
    loop {
        let mut line = String::new();
        sims_out.read_line(&mut line).expect("read simulators");
        assert!(!line.is_empty(), "simulator process ended early");
        match line.trim() {
            "ready" => break,
            l => lines.push(l.to_string()),
        }
    }
    let targets = lines.len();
    let dir = std::env::temp_dir().join(format!("fleet-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("config.toml");
    std::fs::write(&path, config(&lines, fleet)).expect("write config");
    let log = std::fs::File::create(dir.join("exporter.log")).expect("log file");

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let started = Instant::now();
    let exporter = Process(
        exporter_command()
            .arg(format!("--config.file={}", path.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start the exporter"),
    );
    let pid = exporter.pid();
    while !client
        .get(format!("{base}/-/ready"))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "not ready in 10 min"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ready_after = started.elapsed();
    let rss_ready = rss_bytes(pid);

    tokio::time::sleep(phases.warm_up).await;
    let cpu_before = cpu_seconds(pid);
    tokio::time::sleep(phases.window).await;
    let polling_cpu = cpu_seconds(pid) - cpu_before;
    let rss_steady = rss_bytes(pid);

    // What a scrape serves, kept for the floor: plain text, gzip as sent, one router's /probe.
    let plain = body(&client, &base, "/metrics", None).await;
    let gzip = body(&client, &base, "/metrics", Some("gzip")).await;
    let probe_path = "/probe?target=ikuai-000";
    let probe = body(&client, &base, probe_path, None).await;
    let text = String::from_utf8_lossy(&plain);
    let series = text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .count();
    let up = values(&text, "fleet_target_up")
        .filter(|v| *v == 1.0)
        .count();
    let device_series: f64 = values(&text, "fleet_target_series").sum();
    let (floor_process, floor) = spawn_floor(&dir, &plain, &gzip, &probe);

    let compare = |path: &'static str, floor_path: &'static str, encoding, rounds| {
        let (client, base, floor) = (&client, &base, &floor);
        async move {
            let (mut exporter, mut baseline, mut len) = (Vec::new(), Vec::new(), 0);
            for i in 0..rounds + 2 {
                // Alternate which goes first; the first two rounds are a warm-up.
                let mut pair = [(base, path), (floor, floor_path)];
                if i % 2 == 1 {
                    pair.reverse();
                }
                for (at, p) in pair {
                    let (took, n) = fetch_encoded(client, at, p, encoding).await;
                    if i < 2 {
                        continue;
                    }
                    if at == base {
                        exporter.push(took);
                        len = n;
                    } else {
                        baseline.push(took);
                    }
                }
            }
            (Stats::of(exporter), Stats::of(baseline), len)
        }
    };
    let plain_cmp = compare("/metrics", "/plain", None, phases.metrics_rounds).await;
    let gzip_cmp = compare("/metrics", "/gzip", Some("gzip"), phases.metrics_rounds).await;
    let probe_cmp = compare(probe_path, "/probe", None, phases.probe_rounds).await;
    let rss_scraped = rss_bytes(pid);

    let mut long_run = Vec::new();
    let long_start = Instant::now();
    while long_start.elapsed() < Duration::from_secs(minutes * 60) {
        let minute = Instant::now();
        while minute.elapsed() < Duration::from_secs(60) {
            fetch_encoded(&client, &base, "/metrics", Some("gzip")).await;
            tokio::time::sleep(Duration::from_secs(15)).await;
        }
        long_run.push(format!("{:.0}", mib(rss_bytes(pid))));
    }
    let final_text = String::from_utf8(body(&client, &base, "/metrics", None).await).unwrap();
    let poll_errors: f64 = values(&final_text, "fleet_target_poll_errors_total").sum();
    drop(exporter);
    drop(floor_process);
    drop(sims);
    let log_lines = std::fs::read_to_string(dir.join("exporter.log"))
        .map(|l| l.lines().count())
        .unwrap_or(0);
    std::fs::remove_dir_all(&dir).ok();

    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("fleet-exporter fleet benchmark: {cores} cores");
    println!(
        "== {} iKuai routers x {} clients, {} Komari servers x {} nodes, {} OpenVox gateways, \
         {} IoT accounts x {} devices: {targets} targets, every {:?}",
        fleet.routers,
        fleet.clients,
        fleet.komari_servers,
        fleet.komari_nodes,
        fleet.gateways,
        fleet.iot_accounts,
        fleet.iot_devices,
        INTERVAL
    );
    println!(
        "   series {series} ({device_series} device series); targets up {up} of {targets}; \
         poll errors {poll_errors}; {log_lines} log lines at warn"
    );
    println!(
        "   ready after {:.1} s (goal: within two poll intervals, {} s)",
        ready_after.as_secs_f64(),
        2 * INTERVAL.as_secs()
    );
    let window = phases.window.as_secs_f64();
    println!(
        "   polling CPU {polling_cpu:.2} s in {window:.0} s without scrapes: {:.1}% of one core (goal <= 25%)",
        polling_cpu / window * 100.0
    );
    println!(
        "   RSS {:.1} MiB ready, {:.1} MiB steady = {} bytes/series (goal <= 200), {:.1} MiB after the scrapes",
        mib(rss_ready),
        mib(rss_steady),
        rss_steady / series.max(1),
        mib(rss_scraped)
    );
    println!(
        "   {:<24}{:>6}{:>10}{:>10}{:>10}{:>10}",
        "", "n", "p50", "p90", "p99", "mean"
    );
    for (name, (exporter, floor, len)) in [
        ("/metrics plain", &plain_cmp),
        ("/metrics gzip", &gzip_cmp),
        ("/probe (one router)", &probe_cmp),
    ] {
        exporter.row(&format!("GET {name}"));
        floor.row("  same bytes (floor)");
        println!(
            "   {name}: {len} bytes, p50 {:.2}x the floor (goal <= 1.5x)",
            ratio(exporter.p50, floor.p50)
        );
    }
    println!(
        "   floor bodies: {} bytes plain, {} gzip, {} probe",
        plain.len(),
        gzip.len(),
        probe.len()
    );
    if minutes > 0 {
        println!(
            "   long run, gzip scrapes every 15 s: RSS each minute {} MiB; after {minutes} min {:.1} MiB",
            long_run.join(" "),
            long_run
                .last()
                .and_then(|m| m.parse::<f64>().ok())
                .unwrap_or(f64::NAN)
        );
    }
    up == targets
}

/// The command that starts the exporter: this build's binary, or `FLEET_BENCH_EXPORTER` (another
/// build, to compare two in one session), under `FLEET_BENCH_WRAP` when set (a profiler's
/// command line, e.g. `heaptrack -o /tmp/fleet`; the figures read from /proc are then the
/// wrapper's, so only the profile counts).
fn exporter_command() -> Command {
    let bin = std::env::var("FLEET_BENCH_EXPORTER").unwrap_or_else(|_| BIN.to_string());
    let wrap = std::env::var("FLEET_BENCH_WRAP").unwrap_or_default();
    let mut words = wrap.split_whitespace();
    match words.next() {
        Some(program) => {
            let mut cmd = Command::new(program);
            cmd.args(words).arg(bin);
            cmd
        }
        None => Command::new(bin),
    }
}

/// The whole body of one GET, as sent.
async fn body(client: &reqwest::Client, base: &str, path: &str, encoding: Option<&str>) -> Vec<u8> {
    let mut req = client.get(format!("{base}{path}"));
    if let Some(encoding) = encoding {
        req = req.header(header::ACCEPT_ENCODING, encoding);
    }
    let resp = req.send().await.expect("scrape");
    assert!(resp.status().is_success(), "{path}: {}", resp.status());
    resp.bytes().await.expect("body").to_vec()
}

/// The floor: a server in a process of its own, as the exporter is, that serves the captured
/// bodies from memory with the same headers and the exporter's own HTTP stack
/// (`web::serve`). A server in this process would share the client's runtime and skip the
/// wake-up of another process, which a loaded machine makes the larger part of a small
/// scrape's latency. Prints its base URL, and serves until it is killed.
fn serve_floor(dir: &Path) {
    let read = |name| Bytes::from(std::fs::read(dir.join(name)).expect("captured body"));
    let (plain, gzip, probe) = (read("plain"), read("gzip"), read("probe"));
    let gzip_headers = [
        (header::CONTENT_TYPE, TEXT),
        (header::CONTENT_ENCODING, "gzip"),
    ];
    let router = axum::Router::new()
        .route(
            "/plain",
            get(move || async move { ([(header::CONTENT_TYPE, TEXT)], plain) }),
        )
        .route("/gzip", get(move || async move { (gzip_headers, gzip) }))
        .route(
            "/probe",
            get(move || async move { ([(header::CONTENT_TYPE, TEXT)], probe) }),
        );
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        println!("http://{}", listener.local_addr().unwrap());
        let _ = fleet_exporter::web::serve(listener, router, std::future::pending()).await;
    });
}

/// Starts [`serve_floor`] over bodies written to `dir`; the process and its base URL.
fn spawn_floor(dir: &Path, plain: &[u8], gzip: &[u8], probe: &[u8]) -> (Process, String) {
    for (name, body) in [("plain", plain), ("gzip", gzip), ("probe", probe)] {
        std::fs::write(dir.join(name), body).expect("write captured body");
    }
    let mut floor = Process(
        Command::new(std::env::current_exe().expect("own path"))
            .arg("--floor")
            .arg(dir)
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn the floor server"),
    );
    let mut url = String::new();
    BufReader::new(floor.0.stdout.take().expect("piped"))
        .read_line(&mut url)
        .expect("floor URL");
    assert!(url.starts_with("http://"), "floor server: {url:?}");
    (floor, url.trim().to_string())
}
