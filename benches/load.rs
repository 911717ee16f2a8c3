//! The load test: `cargo bench --bench load [-- --quick | --secs N] [--gzip]`. TESTING.md says
//! what it measures.
//!
//! The exporter runs as the real binary against 15 simulated iKuai routers with 1,000 LAN clients
//! each (~100k series), polling them every 15 s while 100 scrapers fetch `/metrics` back to back
//! for a minute (10 s with `--quick`, N seconds with `--secs N`, the soak), asking for gzip as
//! Prometheus does with `--gzip`. The simulators and scrapers run in this process, so the
//! exporter's memory and CPU figures (read from /proc) are its own.

use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use fleet_sim::ikuai::{IkuaiSim, IkuaiSimConfig};

mod common;
use common::{cpu_seconds, mib, rss_bytes, values, Process};

const BIN: &str = env!("CARGO_BIN_EXE_fleet-exporter");
const ROUTERS: usize = 15;
const CLIENTS: usize = 1000;
const SCRAPERS: usize = 100;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let secs = match args.iter().position(|a| a == "--secs") {
        Some(i) => match args.get(i + 1).and_then(|n| n.parse().ok()) {
            Some(n) => n,
            None => {
                eprintln!("--secs needs a number of seconds");
                return ExitCode::FAILURE;
            }
        },
        None if args.iter().any(|a| a == "--quick") => 10,
        None => 60,
    };
    let run_for = Duration::from_secs(secs);
    let gzip = args.iter().any(|a| a == "--gzip");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    if rt.block_on(run(run_for, gzip)) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

async fn run(run_for: Duration, gzip: bool) -> bool {
    let mut sims = Vec::new();
    for i in 0..ROUTERS {
        let cfg = IkuaiSimConfig::fleet_router(i, CLIENTS);
        sims.push(IkuaiSim::start(cfg).await.expect("start simulator"));
    }
    let mut config = String::from("[defaults]\ninterval = \"15s\"\ntimeout = \"10s\"\n");
    for (i, sim) in sims.iter().enumerate() {
        config.push_str(&format!(
            "\n[[targets]]\nname = \"router-{i:02}\"\nkind = \"ikuai\"\nurl = \"{}\"\n\
             password = \"admin\"\nmax_clients = 100000\n",
            sim.url()
        ));
    }
    let dir = std::env::temp_dir().join(format!("fleet-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("config.toml");
    std::fs::write(&path, config).expect("write config");

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let exporter = Process(
        Command::new(BIN)
            .arg(format!("--config.file={}", path.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn")
            // Every scraper at once: the default 40 would answer the rest 503.
            .arg(format!("--web.max-requests={SCRAPERS}"))
            .stdout(Stdio::null())
            .spawn()
            .expect("start the exporter"),
    );
    let pid = exporter.0.id();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let start = Instant::now();
    while !client
        .get(format!("{base}/-/ready"))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        assert!(start.elapsed() < Duration::from_secs(60), "not ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut size = 0;
    for _ in 0..3 {
        size = scrape(&client, &base, gzip)
            .await
            .expect("warm-up scrape")
            .1;
    }
    let series = count_series(&client, &base).await;
    let rss_before = rss_bytes(pid);
    let cpu_before = cpu_seconds(pid);

    println!(
        "load: {SCRAPERS} scrapers for {run_for:?} against {ROUTERS} routers x {CLIENTS} clients = \
         {series} series, {size} bytes per response{}",
        if gzip { " (gzip)" } else { "" }
    );
    let began = Instant::now();
    let deadline = began + run_for;
    let scrapers: Vec<_> = (0..SCRAPERS)
        .map(|_| {
            let base = base.clone();
            tokio::spawn(async move {
                // One client each: every scraper has its own connection, as Prometheus replicas do.
                let client = reqwest::Client::new();
                let (mut times, mut errors) = (Vec::new(), 0usize);
                while Instant::now() < deadline {
                    match scrape(&client, &base, gzip).await {
                        // Polls change values, not the set of series: a body far off the
                        // warm-up size is a broken answer.
                        Ok((took, len)) if len.abs_diff(size) < size / 10 => times.push(took),
                        _ => errors += 1,
                    }
                }
                (times, errors)
            })
        })
        .collect();
    // RSS is sampled every second; a line per tenth of the run (at most one a minute) shows
    // whether it levels off or keeps climbing.
    let report_every = (run_for / 10).clamp(Duration::from_secs(1), Duration::from_secs(60));
    let (mut rss_max, mut next_report) = (rss_before, began + report_every);
    let mut timeline = Vec::new();
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let rss = rss_bytes(pid);
        rss_max = rss_max.max(rss);
        if Instant::now() >= next_report {
            next_report += report_every;
            timeline.push(format!("{:.1}", mib(rss)));
        }
    }
    let (mut times, mut errors) = (Vec::new(), 0);
    for s in scrapers {
        let (t, e) = s.await.expect("scraper");
        times.extend(t);
        errors += e;
    }
    let cpu = cpu_seconds(pid) - cpu_before;
    let rss_after = rss_bytes(pid);
    tokio::time::sleep(Duration::from_secs(5)).await;
    let rss_idle = rss_bytes(pid);
    // Failed polls (a poll starved by the load would show here), and how long each router's
    // last poll took: every router was polled at least once under load.
    let health = metrics_text(&client, &base).await;
    let poll_errors: f64 = values(&health, "fleet_target_poll_errors_total").sum();
    let mut poll_times: Vec<f64> = values(&health, "fleet_target_poll_duration_seconds").collect();
    poll_times.sort_by(f64::total_cmp);
    drop(exporter);
    std::fs::remove_dir_all(dir).ok();

    times.sort();
    let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
    let secs = run_for.as_secs_f64();
    println!(
        "   scrapes {} ok, {errors} errors ({:.1}/s, {:.0} MiB/s)",
        times.len(),
        times.len() as f64 / secs,
        (times.len() * size) as f64 / secs / (1 << 20) as f64
    );
    println!(
        "   latency p50 {} p90 {} p99 {} max {}",
        ms(at(0.5)),
        ms(at(0.9)),
        ms(at(0.99)),
        ms(at(1.0))
    );
    println!(
        "   exporter RSS {:.1} MiB before, {:.1} MiB peak, {:.1} MiB at the end, {:.1} MiB 5 s later",
        mib(rss_before),
        mib(rss_max),
        mib(rss_after),
        mib(rss_idle)
    );
    println!(
        "   exporter RSS every {:?}: {} MiB",
        report_every,
        timeline.join(" ")
    );
    println!(
        "   exporter CPU {cpu:.1} s in {secs:.0} s ({:.0}% of one core); poll errors {poll_errors}",
        cpu / secs * 100.0
    );
    println!(
        "   last poll of each router: median {:.0} ms, max {:.0} ms",
        poll_times[poll_times.len() / 2] * 1e3,
        poll_times.last().copied().unwrap_or(f64::NAN) * 1e3
    );
    errors == 0 && poll_errors == 0.0
}

/// One GET of `/metrics`, timed until the last body byte; the body is counted as sent, not
/// kept (reqwest is built without decompression).
async fn scrape(
    client: &reqwest::Client,
    base: &str,
    gzip: bool,
) -> Result<(Duration, usize), String> {
    let start = Instant::now();
    let mut req = client.get(format!("{base}/metrics"));
    if gzip {
        req = req.header(reqwest::header::ACCEPT_ENCODING, "gzip");
    }
    let mut resp = req.send().await.map_err(|e| e.to_string())?;
    if !resp.status().is_success() {
        return Err(resp.status().to_string());
    }
    let mut len = 0;
    while let Some(chunk) = resp.chunk().await.map_err(|e| e.to_string())? {
        len += chunk.len();
    }
    Ok((start.elapsed(), len))
}

async fn metrics_text(client: &reqwest::Client, base: &str) -> String {
    let resp = client.get(format!("{base}/metrics")).send().await;
    resp.expect("scrape").text().await.expect("body")
}

async fn count_series(client: &reqwest::Client, base: &str) -> usize {
    let text = metrics_text(client, base).await;
    text.lines().filter(|l| !l.starts_with('#')).count()
}

fn ms(d: Duration) -> String {
    format!("{:.1}ms", d.as_secs_f64() * 1e3)
}
