//! The scrape-path benchmark: `cargo bench --bench scrape [-- --quick]`. BENCHMARKS.md says what
//! each figure means.
//!
//! Every scenario runs in a fresh process (this binary re-executed with `--scenario`), so one
//! scenario's heap cannot hide another's memory; the simulated routers run in one more process
//! (`--sims`), so the exporter's memory and CPU figures are its own.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, ExitCode, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::header;
use axum::routing::get;
use fleet_core::app::App;
use fleet_core::config::{Config, FileFormat, Source, DEFAULT_INTERVAL};
use fleet_core::driver::PollContext;
use fleet_core::exposition::{render, Body, Format};
use fleet_core::gzip::Deflated;
use fleet_core::snapshot::Snapshot;
use fleet_exporter::{server, web};

mod common;
use common::{fetch_encoded, mib, ms, process_cpu, ratio, Stats};
use fleet_sim::ikuai::{Firmware, IkuaiSim, IkuaiSimConfig};
use tower_http::compression::{CompressionLayer, CompressionLevel};

/// LAN clients per simulated router.
const CLIENTS: usize = 1000;
/// The simulators' default login: user `admin`, password `admin` (md5 below, for the baseline).
const PASSWORD: &str = "admin";
const PASSWORD_MD5: &str = "21232f297a57a5a743894a0e4a801fc3";
/// The token API runs' bearer token.
const TOKEN: &str = "b3nchb3nchb3nchb3nchb3nchb3nch00";
/// Every wait in the benchmark ends by then: a hung run fails instead of hanging.
const DEADLINE: Duration = Duration::from_secs(60);

fn main() -> ExitCode {
    // The scenarios run the exporter in this process: set the allocator up as its binary does.
    fleet_exporter::allocator::pin_large_block_thresholds();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |name: &str, i: usize| {
        let at = args.iter().position(|a| a == name)?;
        args.get(at + i)?.parse::<usize>().ok()
    };
    if let (Some(routers), Some(clients)) = (arg("--sims", 1), arg("--sims", 2)) {
        serve_sims(routers, clients, args.iter().any(|a| a == "--token-api"));
        return ExitCode::SUCCESS;
    }
    // `cargo bench` passes `--bench`; anything else unknown is ignored the same way.
    let quick = args.iter().any(|a| a == "--quick");
    if let Some(at) = args.iter().position(|a| a == "--scenario") {
        match args.get(at + 1).map(String::as_str) {
            Some("10k") => scrape("10k", 2, 750, if quick { 50 } else { 1000 }),
            Some("100k") => scrape("100k", 15, CLIENTS, if quick { 15 } else { 200 }),
            Some("poll") => poll(CLIENTS, if quick { 10 } else { 50 }, Transport::Cookie),
            Some("poll-token") => poll(CLIENTS, if quick { 10 } else { 50 }, Transport::Token),
            other => panic!("unknown scenario {other:?}"),
        }
        return ExitCode::SUCCESS;
    }
    let cpu = common::cpu_model();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("fleet-exporter scrape benchmark: {cores} cores, {cpu}");
    let mut ok = true;
    for scenario in ["10k", "100k", "poll", "poll-token"] {
        let mut cmd = Command::new(std::env::current_exe().expect("own path"));
        cmd.args(["--scenario", scenario]);
        if quick {
            cmd.arg("--quick");
        }
        ok &= cmd.status().is_ok_and(|s| s.success());
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

// ---------------------------------------------------------------------------
// The simulator process
// ---------------------------------------------------------------------------

/// Serves `routers` simulators until stdin closes. Prints their URLs, one a line; then answers
/// each line read with the total `/Action/call` count, after skipping the simulators' clocks
/// ahead by the milliseconds a `skip <ms>` line asks for.
fn serve_sims(routers: usize, clients: usize, token_api: bool) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let sims: Vec<IkuaiSim> = rt.block_on(async {
        let mut sims = Vec::new();
        for i in 0..routers {
            let mut cfg = IkuaiSimConfig {
                password: PASSWORD.into(),
                ..IkuaiSimConfig::fleet_router(i, clients)
            };
            if token_api {
                // Plain HTTP, as the cookie runs: the two transports compared like for like.
                cfg.firmware = Firmware::V4;
                cfg.token = Some(TOKEN.into());
            }
            sims.push(IkuaiSim::start(cfg).await.expect("start simulator"));
        }
        sims
    });
    let mut out = std::io::stdout().lock();
    for sim in &sims {
        let _ = writeln!(out, "{}", sim.url());
    }
    let _ = out.flush();
    for line in std::io::stdin().lock().lines().map_while(Result::ok) {
        if let Some(ms) = line.strip_prefix("skip ").and_then(|ms| ms.parse().ok()) {
            sims.iter()
                .for_each(|s| s.skip_clock(Duration::from_millis(ms)));
        }
        let calls: u64 = sims.iter().map(|s| s.calls() + s.token_calls()).sum();
        let _ = writeln!(out, "{calls}");
        let _ = out.flush();
    }
}

/// The simulator process, killed when dropped (also on a panic in the benchmark).
struct Sims {
    child: Child,
    stdout: BufReader<ChildStdout>,
    urls: Vec<String>,
}

impl Sims {
    fn spawn(routers: usize, clients: usize) -> Sims {
        Sims::spawn_with(routers, clients, &[])
    }

    fn spawn_with(routers: usize, clients: usize, extra: &[&str]) -> Sims {
        let mut child = Command::new(std::env::current_exe().expect("own path"))
            .args(["--sims", &routers.to_string(), &clients.to_string()])
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn simulators");
        let mut stdout = BufReader::new(child.stdout.take().expect("piped"));
        let urls = (0..routers).map(|_| read_line(&mut stdout)).collect();
        Sims {
            child,
            stdout,
            urls,
        }
    }

    /// `/Action/call` and token API requests the simulators have answered so far.
    fn calls(&mut self) -> u64 {
        self.ask("")
    }

    /// Moves the simulators' clocks `d` ahead (see `IkuaiSim::skip_clock`).
    fn skip_clock(&mut self, d: Duration) {
        self.ask(&format!("skip {}", d.as_millis()));
    }

    fn ask(&mut self, line: &str) -> u64 {
        let stdin = self.child.stdin.as_mut().expect("piped");
        writeln!(stdin, "{line}").expect("ask simulators");
        read_line(&mut self.stdout).parse().expect("call count")
    }
}

impl Drop for Sims {
    fn drop(&mut self) {
        // Closing stdin is the polite stop; the kill covers a child that does not listen.
        drop(self.child.stdin.take());
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(2) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read_line(r: &mut impl BufRead) -> String {
    let mut line = String::new();
    r.read_line(&mut line).expect("read from simulators");
    assert!(!line.is_empty(), "simulator process ended early");
    line.trim().to_string()
}

fn config(urls: &[String]) -> Config {
    config_with(urls, &format!("password = \"{PASSWORD}\""))
}

/// [`config`] with `credentials` (option lines) in every target instead of the password.
fn config_with(urls: &[String], credentials: &str) -> Config {
    // A long interval: every target polls once, then nothing runs while we measure.
    let mut text = String::from("[defaults]\ninterval = \"1h\"\ntimeout = \"50s\"\n");
    for (i, url) in urls.iter().enumerate() {
        text.push_str(&format!(
            "\n[[targets]]\nname = \"router-{i:02}\"\nkind = \"ikuai\"\nurl = \"{url}\"\n\
             {credentials}\nmax_clients = 100000\n"
        ));
    }
    Config::parse(
        &text,
        FileFormat::Toml,
        Path::new("."),
        fleet_drivers::KINDS,
    )
    .expect("benchmark config")
}

// ---------------------------------------------------------------------------
// Scenario: scrape latency and memory
// ---------------------------------------------------------------------------

fn scrape(label: &str, routers: usize, clients: usize, requests: usize) {
    let sims = Sims::spawn(routers, clients);
    let config = config(&sims.urls);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let app = App::new(Source::Builtin, fleet_drivers::KINDS);
        // The floor: the same exposition, rendered once, served by the same server.
        let floor: Arc<OnceLock<Bytes>> = Arc::default();
        let floor_body = floor.clone();
        let floor_route = get(move || async move {
            let body = floor_body.get().cloned().unwrap_or_default();
            ([(header::CONTENT_TYPE, Format::Text.content_type())], body)
        });
        // Without the exporter's own series, which change between scrapes: /metrics then
        // serves exactly the floor's bytes.
        let options = server::Options {
            exporter_metrics: false,
            ..server::Options::default()
        };
        // The gzip baseline: the same bytes compressed whole on every request by the layer
        // `/metrics` used before it joined pieces compressed at poll time.
        let whole_body = floor.clone();
        let whole_gzip_route = get(move || async move {
            let body = whole_body.get().cloned().unwrap_or_default();
            ([(header::CONTENT_TYPE, Format::Text.content_type())], body)
        })
        .layer(CompressionLayer::new().quality(CompressionLevel::Fastest));
        let router = server::router_with(app.clone(), &options)
            .route("/floor", floor_route)
            .route("/floor-gzip-per-scrape", whole_gzip_route);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(web::serve(listener, router, std::future::pending()));
        let client = reqwest::Client::new();

        let rss_before = rss_bytes();
        app.apply(&config).await;
        let start = Instant::now();
        while !app.ready() {
            assert!(start.elapsed() < DEADLINE, "targets not ready");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let up = app.store().status().iter().filter(|t| t.health.up).count();
        assert_eq!(up, routers, "every router polled successfully");
        let rss_ready = rss_bytes();
        for _ in 0..3 {
            fetch(&client, &base, "/metrics").await;
        }
        let rss_after = rss_bytes();

        let sources = app.store().sources(None).expect("all sources");
        let encoded: usize = sources.iter().map(|s| s.encoded_bytes()).sum();
        let body = encode(&sources);
        let series = body
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty() && !l.starts_with(b"#"))
            .count();
        let copy_times = time_100(|| encode(&sources));
        let shared_times = time_100(|| sent(Body::plain(Format::Text, sources.clone())));
        let gzip_join_times = time_100(|| sent(Body::gzip(Format::Text, sources.clone())));
        // What the poll-time compression costs: every block compressed once, as
        // `SnapshotBuilder::finish` does.
        let compress_cpu = {
            let cpu = process_cpu();
            for source in &sources {
                for block in source.blocks() {
                    std::hint::black_box(Deflated::compress(&block.samples));
                }
            }
            process_cpu() - cpu
        };
        let compressed: usize = sources.iter().map(|s| s.compressed_bytes()).sum();
        drop(sources);
        let size = body.len();
        let served = client.get(format!("{base}/metrics")).send().await.unwrap();
        assert!(served.bytes().await.unwrap() == body, "/metrics serves what render encodes");
        floor.set(Bytes::from(body)).expect("floor set once");

        let (mut metrics_times, mut floor_times) = (Vec::new(), Vec::new());
        for i in 0..requests + 5 {
            // Alternate which goes first, so neither always meets a warmer cache.
            let order = if i % 2 == 0 {
                ["/metrics", "/floor"]
            } else {
                ["/floor", "/metrics"]
            };
            for path in order {
                let (took, len) = fetch(&client, &base, path).await;
                assert_eq!(len, size, "{path} serves the whole exposition");
                // The first five rounds are a warm-up.
                if i >= 5 {
                    let times = if path == "/metrics" {
                        &mut metrics_times
                    } else {
                        &mut floor_times
                    };
                    times.push(took);
                }
            }
        }
        // As Prometheus asks: gzip. The CPU is this process's (server and client) per scrape,
        // against the same number of plain scrapes.
        let rounds = (requests / 4).max(5);
        let cpu_per_scrape = |path: &'static str, encoding: Option<&'static str>| {
            let (client, base) = (&client, &base);
            async move {
                let (cpu, mut times, mut len) = (process_cpu(), Vec::new(), 0);
                for _ in 0..rounds {
                    let took;
                    (took, len) = fetch_encoded(client, base, path, encoding).await;
                    times.push(took);
                }
                ((process_cpu() - cpu) / rounds as u32, Stats::of(times), len)
            }
        };
        // Each a median of three runs, interleaved, so a busy spell on the machine cannot
        // land on one of them only.
        let (mut plain_runs, mut gzip_runs, mut whole_runs) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..3 {
            plain_runs.push(cpu_per_scrape("/metrics", None).await);
            gzip_runs.push(cpu_per_scrape("/metrics", Some("gzip")).await);
            whole_runs.push(cpu_per_scrape("/floor-gzip-per-scrape", Some("gzip")).await);
        }
        let median_run = |mut runs: Vec<(Duration, Stats, usize)>| {
            runs.sort_by_key(|r| r.0);
            runs.swap_remove(1)
        };
        let (plain_cpu, plain, _) = median_run(plain_runs);
        let (gzip_cpu, gzip, gzip_size) = median_run(gzip_runs);
        let (whole_cpu, whole, whole_size) = median_run(whole_runs);
        app.shutdown().await;
        server.abort();

        let (m, f) = (Stats::of(metrics_times), Stats::of(floor_times));
        let (copy, shared) = (Stats::of(copy_times), Stats::of(shared_times));
        let per_series = |rss: usize| rss.saturating_sub(rss_before) / series;
        println!();
        println!("== /metrics at {label}: {routers} routers x {clients} clients = {series} series, {size} bytes per response");
        println!("   {:<24}{:>6}{:>10}{:>10}{:>10}{:>10}", "", "n", "p50", "p90", "p99", "mean");
        m.row("GET /metrics");
        f.row("GET /floor (baseline)");
        println!("   p50 /metrics / p50 /floor      {:.2}x", ratio(m.p50, f.p50));
        println!("   encode alone, Body::plain      min {} median {}", ms(shared.min), ms(shared.p50));
        println!("   encode alone, render (a copy)  min {} median {}", ms(copy.min), ms(copy.p50));
        plain.row("GET /metrics, plain");
        gzip.row("GET /metrics, gzip");
        whole.row("GET gzip per scrape");
        println!(
            "   gzip: {gzip_size} bytes ({:.1}% of {size}; compressed per scrape {whole_size})",
            gzip_size as f64 * 100.0 / size as f64,
        );
        println!(
            "   CPU per scrape: plain {}, gzip {} ({:.2}x plain), compressed per scrape {} ({:.2}x plain)",
            ms(plain_cpu),
            ms(gzip_cpu),
            ratio(gzip_cpu, plain_cpu),
            ms(whole_cpu),
            ratio(whole_cpu, plain_cpu)
        );
        println!(
            "   gzip join alone, Body::gzip    median {}; compressing every block once (at poll time) {} CPU, {} bytes held",
            ms(Stats::of(gzip_join_times).p50),
            ms(compress_cpu),
            compressed
        );
        println!(
            "   RSS {:.1} MiB before, {:.1} MiB ready, {:.1} MiB after 3 scrapes",
            mib(rss_before),
            mib(rss_ready),
            mib(rss_after)
        );
        println!(
            "   bytes/series: {} ready, {} after scrapes; encoded samples alone {}",
            per_series(rss_ready),
            per_series(rss_after),
            encoded / series
        );
    });
}

fn time_100<T>(mut f: impl FnMut() -> T) -> Vec<Duration> {
    (0..100)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(f());
            t.elapsed()
        })
        .collect()
}

fn encode(sources: &[Arc<Snapshot>]) -> Vec<u8> {
    render(Format::Text, sources.iter().map(|s| &**s))
}

/// One keep-alive GET, timed until the last body byte arrived. The body is counted, not kept:
/// Prometheus runs elsewhere, so its buffers must not weigh on this process's memory figures.
async fn fetch(client: &reqwest::Client, base: &str, path: &str) -> (Duration, usize) {
    fetch_encoded(client, base, path, None).await
}

/// This process's resident memory: the exporter runs in it.
fn rss_bytes() -> usize {
    common::rss_bytes(std::process::id())
}

// ---------------------------------------------------------------------------
// Scenario: CPU per poll
// ---------------------------------------------------------------------------

/// Which of the router's APIs the poll scenario drives.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Transport {
    Cookie,
    Token,
}

fn poll(clients: usize, polls: usize, transport: Transport) {
    let token_api = transport == Transport::Token;
    let mut sims = Sims::spawn_with(1, clients, if token_api { &["--token-api"] } else { &[] });
    let config = if token_api {
        config_with(&sims.urls, &format!("api = \"token\"\ntoken = \"{TOKEN}\""))
    } else {
        config(&sims.urls)
    };
    let spec = &config.targets[0].spec;
    let kind = fleet_drivers::kind("ikuai").expect("ikuai driver");
    let factory = (kind.configure)(spec).expect("driver options");
    let mut driver = factory();
    // One thread, as a poller's share of a busy exporter would be; and no idle worker threads
    // whose wake-ups would count as the poll's CPU.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let target: Arc<str> = Arc::from(spec.name.as_str());
    // Each poll comes a default interval after the last, as the scheduler runs it: the
    // simulator's clock skips ahead by one (a line on a pipe, a few µs of the measured CPU), and
    // the poll shares the blocks that did not change with the last snapshot.
    let mut last: Option<Arc<Snapshot>> = None;
    let mut poll_once = |sims: &mut Sims| {
        sims.skip_clock(DEFAULT_INTERVAL);
        let mut ctx = PollContext::new(target.clone()).after(last.clone());
        let snapshot = Arc::new(rt.block_on(driver.poll_boxed(&mut ctx)).expect("poll"));
        (last.replace(snapshot.clone()), snapshot)
    };
    poll_once(&mut sims); // logs in, and fetches the slow-changing ports answer

    let calls_before = sims.calls();
    let (cpu, wall) = (process_cpu(), Instant::now());
    let (previous, last) = (0..polls)
        .map(|_| poll_once(&mut sims))
        .last()
        .expect("polls");
    let driver_run = (process_cpu() - cpu, wall.elapsed());
    let calls = sims.calls() - calls_before;
    let series = last.series();
    // The share of the driver's work that is compressing the snapshot for gzip scrapes: the
    // blocks of the last poll that changed since the one before (the others it shared).
    let previous = previous.expect("two polls");
    let changed = common::changed_blocks(&last, &previous);
    let compress = {
        let cpu = process_cpu();
        for _ in 0..polls {
            for samples in &changed {
                std::hint::black_box(Deflated::compress(samples));
            }
        }
        process_cpu() - cpu
    };

    // The baseline: the same requests as the driver sends, the answers read and dropped.
    let requests = if token_api {
        token_requests(clients, polls)
    } else {
        poll_requests(clients, polls)
    };
    assert_eq!(
        requests.len() as u64,
        calls,
        "baseline mirrors the driver's calls"
    );
    let (http_run, bytes) = if token_api {
        rt.block_on(token_baseline(&sims.urls[0], &requests))
    } else {
        rt.block_on(cookie_baseline(&sims.urls[0], &requests))
    };
    drop(sims);
    let compression = (compress, last.encoded_bytes(), last.compressed_bytes());
    report(
        clients,
        polls,
        transport,
        series,
        calls,
        bytes,
        driver_run,
        http_run,
        compression,
    );
}

/// The cookie transport's requests, sent as the driver sends them; (CPU, wall) and bytes read.
async fn cookie_baseline(base: &str, requests: &[String]) -> ((Duration, Duration), usize) {
    {
        let http = fleet_drivers::util::http::client(Duration::from_secs(30));
        let cookie = login(&http, base).await;
        let url = format!("{base}/Action/call");
        let (cpu, wall) = (process_cpu(), Instant::now());
        let mut bytes = 0;
        for body in requests {
            let resp = http
                .post(&url)
                .header(header::COOKIE, &cookie)
                .body(body.clone());
            bytes += resp.send().await.unwrap().bytes().await.unwrap().len();
        }
        ((process_cpu() - cpu, wall.elapsed()), bytes)
    }
}

/// The token transport's GETs (path and query), sent with the bearer token as the driver does.
async fn token_baseline(base: &str, requests: &[String]) -> ((Duration, Duration), usize) {
    let http = fleet_drivers::util::http::client(Duration::from_secs(30));
    let (cpu, wall) = (process_cpu(), Instant::now());
    let mut bytes = 0;
    for path in requests {
        let resp = http
            .get(format!("{base}/api/v4.0/{path}"))
            .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"));
        bytes += resp.send().await.unwrap().bytes().await.unwrap().len();
    }
    ((process_cpu() - cpu, wall.elapsed()), bytes)
}

#[allow(clippy::too_many_arguments)]
fn report(
    clients: usize,
    polls: usize,
    transport: Transport,
    series: usize,
    calls: u64,
    bytes: usize,
    driver_run: (Duration, Duration),
    http_run: (Duration, Duration),
    (compress, encoded_bytes, compressed_bytes): (Duration, usize, usize),
) {
    let per_poll = |d: Duration| d.as_secs_f64() * 1e3 / polls as f64;
    let api = match transport {
        Transport::Cookie => "/Action/call",
        Transport::Token => "token API",
    };
    println!();
    println!(
        "== one poll ({api}) of a router with {clients} clients: {series} series, {:.1} calls, {} KiB of JSON",
        calls as f64 / polls as f64,
        bytes / polls / 1024
    );
    println!(
        "   {:<34}{:>6}{:>14}{:>14}",
        "", "polls", "CPU ms/poll", "wall ms/poll"
    );
    for (name, (cpu, wall)) in [
        ("driver poll", driver_run),
        ("bare HTTP round trips (baseline)", http_run),
    ] {
        println!(
            "   {name:<34}{polls:>6}{:>14.2}{:>14.2}",
            per_poll(cpu),
            per_poll(wall)
        );
    }
    let work = per_poll(driver_run.0.saturating_sub(http_run.0));
    println!(
        "   driver work beyond HTTP (decode, mapping, encoding): {work:.2} ms CPU/poll, {:.2} us/series",
        work * 1e3 / series as f64
    );
    println!(
        "   of which compressing the snapshot for gzip scrapes: {:.2} ms CPU/poll ({} -> {} bytes)",
        per_poll(compress),
        encoded_bytes,
        compressed_bytes
    );
}

/// The bodies of the calls the iKuai driver makes in `polls` polls after its first, in order.
fn poll_requests(clients: usize, polls: usize) -> Vec<String> {
    let call = |func: &str, param: &str| {
        format!(r#"{{"func_name":"{func}","action":"show","param":{param}}}"#)
    };
    let page = |func: &str, offset: usize| {
        let param = format!(
            r#"{{"TYPE":"data,total","limit":"{offset},1000","ORDER_BY":"ip_addr_int","ORDER":""}}"#
        );
        call(func, &param)
    };
    // The simulator lists one client twice; the driver pages 1000 rows at a time.
    let rows = clients + 1;
    let mut out = Vec::new();
    for n in 1..=polls {
        out.push(call(
            "homepage",
            r#"{"TYPE":"sysstat,ac_status,dhcp_addrpool_num,ether_info,wan_stat,app_flow","minute":"60"}"#,
        ));
        out.push(call(
            "monitor_iface",
            r#"{"TYPE":"iface_check,iface_stream"}"#,
        ));
        out.extend(
            (0..rows)
                .step_by(1000)
                .map(|offset| page("monitor_lanip", offset)),
        );
        out.push(page("monitor_lanipv6", 0));
        out.push(call("dns", r#"{"TYPE":"dns_cache"}"#));
        out.push(call("monitor_l7qos", r#"{"TYPE":"data"}"#));
        // Addressing and versions are refreshed every tenth poll (the default `ports_every`).
        if n % 10 == 0 {
            out.push(call("homepage", r#"{"TYPE":"snapshoot"}"#));
            out.push(call("upgrade", r#"{"TYPE":"data"}"#));
        }
    }
    out
}

/// The token API GETs of `polls` polls after the first, in the driver's order.
fn token_requests(clients: usize, polls: usize) -> Vec<String> {
    // The simulator lists one client twice; the driver asks pages of 1000 (`page_size`).
    let rows = clients + 1;
    let mut out = Vec::new();
    for n in 1..=polls {
        out.push("monitoring/system".to_owned());
        out.push("monitoring/interfaces-status".to_owned());
        for page in 1..=rows.div_ceil(1000) {
            out.push(format!("monitoring/clients-online?page={page}&limit=1000"));
        }
        out.push("monitoring/clients-ip6-online?page=1&limit=1000".to_owned());
        out.push("network/dns/stats".to_owned());
        out.push("monitoring/interfaces-physical".to_owned());
        if n % 10 == 0 {
            out.push("monitoring/interfaces-config".to_owned());
        }
        out.push("monitoring/interfaces-traffic".to_owned());
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        out.push(format!(
            "monitoring/protocols?starttime={}&stoptime={now}",
            now - 3600
        ));
        // Disks on the `ports_every` cadence, wireless statistics every poll.
        if n % 10 == 0 {
            out.push("system/disks".to_owned());
        }
        out.push("monitoring/wireless-statistics".to_owned());
    }
    out
}

/// Logs in as the driver does and returns the session cookie.
async fn login(http: &reqwest::Client, base: &str) -> String {
    let body = format!(r#"{{"username":"admin","passwd":"{PASSWORD_MD5}","pass":""}}"#);
    let resp = http
        .post(format!("{base}/Action/login"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let set_cookie = resp.headers()[header::SET_COOKIE].to_str().unwrap();
    let key = set_cookie.split(';').next().unwrap();
    format!("username=admin; login=1; {key}")
}

/// A scrape's body cut into the frames `/metrics` sends, as its byte count.
fn sent(body: Body) -> usize {
    body.map(|frame| frame.len()).sum()
}
