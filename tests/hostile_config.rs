//! Hostile files and hostile clients of the binary: secrets and configs that are not small
//! regular files, label strings of megabytes, reload storms against a large config, and
//! wrong-password floods. Every test runs the real binary over real sockets.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use fleet_sim::ikuai::{IkuaiSim, IkuaiSimConfig};

use common::binary::{free_port, Running, BIN};
use common::temp_dir;

/// Held by the tests that measure rates, latencies and CPU, so they do not run at once and
/// disturb each other's figures.
static MEASURING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Runs the binary to completion, killing it (and failing) if it takes longer than `limit`.
fn run_within(args: &[&str], limit: Duration) -> (Output, Duration) {
    let start = Instant::now();
    let mut child = Command::new(BIN)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            child.kill().unwrap();
            let _ = child.wait();
            panic!("{args:?} still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    (child.wait_with_output().unwrap(), start.elapsed())
}

fn mkfifo(path: &Path) {
    let ok = Command::new("mkfifo").arg(path).status().unwrap().success();
    assert!(ok, "mkfifo {}", path.display());
}

fn ikuai_target(name: &str, url: &str, secret: &str) -> String {
    format!(
        "[[targets]]\nname = \"{name}\"\nkind = \"ikuai\"\nurl = \"{url}\"\n{secret}\n\
         interval = \"500ms\"\ntimeout = \"400ms\"\nmodules = [\"system\"]\n"
    )
}

fn password_file(path: &Path) -> String {
    format!("password_file = {:?}", path.display().to_string())
}

/// The config must be refused by `--config.check` and at start, fast, naming `key` and `reason`.
fn refused_fast(config: &Path, key: &str, reason: &str) {
    let file = format!("--config.file={}", config.display());
    let port = format!("--web.listen-address=127.0.0.1:{}", free_port());
    for args in [vec!["--config.check", file.as_str()], vec![&file, &port]] {
        let (out, took) = run_within(&args, Duration::from_secs(5));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} was accepted: {err}");
        assert!(
            err.contains(key) && err.contains(reason),
            "{args:?}: the error names neither {key:?} nor {reason:?}:\n{err}"
        );
        assert!(err.len() < 4096, "{args:?}: a {} byte error", err.len());
        assert!(took < Duration::from_secs(3), "{args:?} took {took:?}");
    }
}

#[test]
fn secret_files_that_are_pipes_devices_directories_or_huge_are_refused_fast_naming_the_key() {
    let dir = temp_dir("hostile-secrets");
    let fifo = dir.join("fifo");
    mkfifo(&fifo);
    let huge = dir.join("huge");
    // Sparse: 100 MB long, no disk used; refused on its size before a byte is read.
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(100_000_000)
        .unwrap();
    let key = ".password_file";
    for (secret, reason) in [
        (fifo.as_path(), "a named pipe (FIFO), not a regular file"),
        (
            Path::new("/dev/zero"),
            "a character device, not a regular file",
        ),
        (dir.as_path(), "a directory, not a regular file"),
        (huge.as_path(), "100000000 bytes, over the limit of 64 KiB"),
    ] {
        let config = dir.join("config.toml");
        std::fs::write(
            &config,
            ikuai_target("r", "http://192.0.2.1", &password_file(secret)),
        )
        .unwrap();
        refused_fast(&config, key, reason);
    }
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn config_files_and_label_strings_past_their_caps_are_refused_naming_the_key() {
    let dir = temp_dir("hostile-names");
    let config = dir.join("config.toml");

    // A 50 MB target name makes a config file past the 16 MiB cap.
    let name = "n".repeat(50_000_000);
    std::fs::write(
        &config,
        ikuai_target(&name, "http://192.0.2.1", "password = \"x\""),
    )
    .unwrap();
    refused_fast(&config, "config.toml", "over the limit of 16 MiB");

    // A 1 MB name fits the file cap but not a label value.
    let name = "n".repeat(1_000_000);
    std::fs::write(
        &config,
        ikuai_target(&name, "http://192.0.2.1", "password = \"x\""),
    )
    .unwrap();
    refused_fast(
        &config,
        "targets[0].name",
        "1000000 bytes long; a target name may be at most 256 bytes",
    );

    // Driver option strings become label values or request fields: the same cap.
    let user = format!("password = \"x\"\nusername = \"{}\"", "u".repeat(300));
    std::fs::write(&config, ikuai_target("r", "http://192.0.2.1", &user)).unwrap();
    refused_fast(&config, ".username", "at most 256 bytes");

    // The config file itself as a named pipe.
    let fifo = dir.join("fifo.toml");
    mkfifo(&fifo);
    refused_fast(
        &fifo,
        "fifo.toml",
        "a named pipe (FIFO), not a regular file",
    );
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test]
async fn a_reload_onto_a_fifo_secret_keeps_the_old_config_and_the_http_side_answering() {
    let sim = IkuaiSim::start(IkuaiSimConfig::default()).await.unwrap();
    let dir = temp_dir("hostile-reload-fifo");
    let (secret, fifo, config) = (
        dir.join("secret"),
        dir.join("fifo"),
        dir.join("config.toml"),
    );
    std::fs::write(&secret, "admin\n").unwrap();
    mkfifo(&fifo);
    std::fs::write(
        &config,
        ikuai_target("r", &sim.url(), &password_file(&secret)),
    )
    .unwrap();
    let exporter = Running::start(&[&format!("--config.file={}", config.display())]);
    exporter
        .wait_for_within("r polled", Duration::from_secs(15), |m| {
            m.contains("ikuai_info{target=\"r\"")
        })
        .await;

    std::fs::write(
        &config,
        ikuai_target("r", &sim.url(), &password_file(&fifo)),
    )
    .unwrap();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    // Several at once: none may hold a server thread.
    let reloads: Vec<_> = (0..4)
        .map(|_| {
            let post = client.post(format!("{}/-/reload", exporter.url)).send();
            tokio::spawn(async move {
                let start = Instant::now();
                let resp = post.await.expect("reload answered");
                (
                    resp.status().as_u16(),
                    resp.text().await.unwrap(),
                    start.elapsed(),
                )
            })
        })
        .collect();
    for r in reloads {
        let (status, body, took) = r.await.unwrap();
        assert_eq!(status, 500, "{body}");
        assert!(
            body.contains("password_file") && body.contains("named pipe"),
            "{body}"
        );
        assert!(took < Duration::from_secs(5), "a reload took {took:?}");
    }
    for path in ["/-/healthy", "/metrics"] {
        let start = Instant::now();
        let (status, _) = exporter.get_with_status(path).await.expect("answered");
        assert_eq!(status, 200, "{path}");
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "{path} took {:?}",
            start.elapsed()
        );
    }
    let calls = sim.calls();
    exporter
        .wait_for_within(
            "the old config still polling",
            Duration::from_secs(10),
            |m| {
                m.contains("fleet_exporter_config_last_reload_successful 0")
                    && m.contains("ikuai_info{target=\"r\"")
                    && sim.calls() > calls
            },
        )
        .await;
    let (ok, secs, stderr) = exporter.terminate();
    assert!(ok, "{stderr}");
    assert!(secs < 5.0, "exit took {secs} s");
    std::fs::remove_dir_all(dir).ok();
}

/// `n` targets with hour-long intervals against a closed loopback port: each polls once (a
/// refused connection costs almost nothing), then the exporter only serves and reloads.
fn large_config(n: usize) -> String {
    let mut text = String::from("[defaults]\ninterval = \"1h\"\ntimeout = \"5s\"\n");
    for i in 0..n {
        text.push_str(&format!(
            "[[targets]]\nname = \"t{i:05}\"\nkind = \"ikuai\"\nurl = \"http://127.0.0.1:1\"\n\
             password = \"x\"\nmodules = [\"system\"]\n"
        ));
    }
    text
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Scrapes `/metrics` one after another for `window`; returns each scrape's latency.
async fn scrape_latencies(url: &str, window: Duration) -> Vec<Duration> {
    let client = reqwest::Client::new();
    let mut out = Vec::new();
    let start = Instant::now();
    while start.elapsed() < window {
        let t = Instant::now();
        let resp = client.get(format!("{url}/metrics")).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        resp.bytes().await.unwrap();
        out.push(t.elapsed());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_reload_loops_on_a_large_changing_config_are_rate_limited_and_leave_metrics_fast() {
    let _measuring = MEASURING.lock().await;
    const TARGETS: usize = 10_000;
    let dir = temp_dir("hostile-reload-storm");
    let config = dir.join("config.toml");
    std::fs::write(&config, large_config(TARGETS)).unwrap();
    let exporter = Running::start(&[&format!("--config.file={}", config.display())]);
    exporter.wait_ready(Duration::from_secs(180)).await;
    let client = reqwest::Client::new();
    let reload = |client: reqwest::Client, url: String| async move {
        let t = Instant::now();
        let resp = client.post(format!("{url}/-/reload")).send().await.unwrap();
        let status = resp.status().as_u16();
        let body = resp.text().await.unwrap();
        assert_eq!(status, 200, "{body}");
        t.elapsed()
    };
    // An unchanged file, asked for alone (after the rate limit's second has passed).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let unchanged = reload(client.clone(), exporter.url.clone()).await;

    let quiet = median(scrape_latencies(&exporter.url, Duration::from_secs(3)).await);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let loops: Vec<_> = (0..8)
        .map(|_| {
            let (client, url, stop) = (client.clone(), exporter.url.clone(), stop.clone());
            tokio::spawn(async move {
                let mut n = 0u32;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    reload(client.clone(), url.clone()).await;
                    n += 1;
                }
                n
            })
        })
        .collect();
    // A comment that keeps changing: each reload parses all 10,000 targets, then finds them
    // equal to the running ones.
    let writer = {
        let (config, dir) = (config.clone(), dir.clone());
        let text = large_config(TARGETS);
        tokio::spawn(async move {
            for i in 0.. {
                let tmp = dir.join("config.tmp");
                std::fs::write(&tmp, format!("{text}# edit {i}\n")).unwrap();
                std::fs::rename(&tmp, &config).unwrap();
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    };
    let window = Duration::from_secs(6);
    let started = Instant::now();
    let busy = scrape_latencies(&exporter.url, window).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut requests = 0;
    for l in loops {
        requests += l.await.unwrap();
    }
    let elapsed = started.elapsed();
    writer.abort();
    let busy_median = median(busy.clone());
    let busy_max = busy.iter().max().copied().unwrap_or_default();
    let (ok, _, stderr) = exporter.terminate();
    assert!(ok, "{stderr}");
    let reloads = stderr.matches("msg=\"configuration reloaded\"").count()
        + stderr.matches("msg=\"configuration unchanged\"").count();
    println!(
        "{TARGETS} targets: unchanged reload {unchanged:?}; /metrics median {quiet:?} quiet, \
         {busy_median:?} (max {busy_max:?}) under 8 reload loops; {requests} reload requests, \
         {reloads} reloads run in {elapsed:?}"
    );
    assert!(
        busy_median <= quiet * 3 + Duration::from_millis(50),
        "/metrics median {busy_median:?} under reload loops, {quiet:?} without"
    );
    // One reload started per second at most, plus the one before the loops.
    let allowed = elapsed.as_secs() as usize + 2;
    assert!(
        reloads <= allowed,
        "{reloads} reloads ran in {elapsed:?}: the rate limit allows {allowed}"
    );
    assert!(
        unchanged < Duration::from_millis(1500),
        "an unchanged reload took {unchanged:?}"
    );
    std::fs::remove_dir_all(dir).ok();
}

/// The process's user plus system CPU time so far, from `/proc/<pid>/stat`.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    // SAFETY: sysconf only reads a constant.
    ticks / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_wrong_password_flood_takes_at_most_one_core_and_the_right_password_still_scrapes() {
    let _measuring = MEASURING.lock().await;
    let dir = temp_dir("hostile-bcrypt");
    let (config, web) = (dir.join("config.toml"), dir.join("web.yml"));
    std::fs::write(&config, "").unwrap();
    // The example's user: "prometheus", "changeme", bcrypt cost 10.
    std::fs::write(
        &web,
        "basic_auth_users:\n  prometheus: '$2b$10$3b3Za88.QBj.TSsf96wvZOYK75asjZVVFaoNkUtd7qJQEQuHpyPaC'\n",
    )
    .unwrap();
    let exporter = Running::start(&[
        &format!("--config.file={}", config.display()),
        &format!("--web.config.file={}", web.display()),
    ]);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let metrics = format!("{}/metrics", exporter.url);
    let right = || {
        client
            .get(&metrics)
            .basic_auth("prometheus", Some("changeme"))
    };
    let start = Instant::now();
    while right().send().await.map(|r| r.status().as_u16()).ok() != Some(200) {
        assert!(start.elapsed() < Duration::from_secs(15), "never answered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    const FLOODERS: usize = 200;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flood: Vec<_> = (0..FLOODERS)
        .map(|i| {
            let (client, url, stop) = (client.clone(), metrics.clone(), stop.clone());
            tokio::spawn(async move {
                let mut n = 0u32;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let resp = client
                        .get(&url)
                        .basic_auth("prometheus", Some(format!("wrong-{i}-{n}")))
                        .send()
                        .await
                        .expect("a flood request answered");
                    assert_eq!(resp.status(), 401);
                    n += 1;
                }
                n
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (cpu0, t0) = (cpu_seconds(exporter.child.id()), Instant::now());
    let mut right_latencies = Vec::new();
    while t0.elapsed() < Duration::from_secs(6) {
        let t = Instant::now();
        let resp = right().send().await.unwrap();
        assert_eq!(resp.status(), 200);
        resp.bytes().await.unwrap();
        right_latencies.push(t.elapsed());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let cores = (cpu_seconds(exporter.child.id()) - cpu0) / t0.elapsed().as_secs_f64();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut refused = 0;
    for f in flood {
        refused += f.await.unwrap();
    }
    let worst = right_latencies.iter().max().copied().unwrap();
    println!(
        "{FLOODERS} wrong-password clients: exporter used {cores:.2} cores; {refused} refused; \
         right password: worst /metrics {worst:?} over {} scrapes",
        right_latencies.len()
    );
    let (ok, _, stderr) = exporter.terminate();
    assert!(ok, "{stderr}");
    assert!(cores <= 1.25, "the flood took {cores:.2} cores");
    assert!(
        worst < Duration::from_millis(500),
        "the right password waited {worst:?}"
    );
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_targets_poll_one_device_at_a_steady_rate_from_the_first_seconds() {
    let _measuring = MEASURING.lock().await;
    // 250 targets every 10 s: 25 polls a second once on their phases; the first polls spread
    // over a 5 s start window, 50 a second. (Fewer than the simulator's 256 sessions, so a
    // poll is one `/Action/call`.)
    const TARGETS: usize = 250;
    let sim = IkuaiSim::start(IkuaiSimConfig::default()).await.unwrap();
    let dir = temp_dir("hostile-spread");
    let config = dir.join("config.toml");
    let mut text = String::new();
    for i in 0..TARGETS {
        text.push_str(&format!(
            "[[targets]]\nname = \"router-{i}\"\nkind = \"ikuai\"\nurl = \"{}\"\n\
             password = \"admin\"\ninterval = \"10s\"\ntimeout = \"2s\"\nmodules = [\"system\"]\n",
            sim.url()
        ));
    }
    std::fs::write(&config, text).unwrap();
    let exporter = Running::start(&[&format!("--config.file={}", config.display())]);
    let start = Instant::now();
    let mut per_second = Vec::new();
    let mut last = 0;
    for s in 1..=22u32 {
        tokio::time::sleep_until((start + Duration::from_secs(s.into())).into()).await;
        let now = sim.calls();
        per_second.push(now - last);
        last = now;
    }
    let (ok, _, stderr) = exporter.terminate();
    assert!(ok, "{stderr}");
    println!(
        "/Action/call requests per second: {per_second:?}; {} logins",
        sim.logins()
    );
    let first: u64 = per_second[..6].iter().sum();
    assert!(
        first >= TARGETS as u64 * 9 / 10,
        "only {first} first polls in 6 s: {per_second:?}"
    );
    // The start window: no second above one and a half times the first-poll pace.
    assert!(
        per_second[..5].iter().all(|&n| n <= 75),
        "a burst in the first seconds: {per_second:?}"
    );
    // Steady state (the process's start takes part of the first second, so from the 7th on):
    // about 25 a second, never an idle second or a second of many.
    assert!(
        per_second[6..].iter().all(|&n| (10..=45).contains(&n)),
        "not a steady 25 a second: {per_second:?}"
    );
    std::fs::remove_dir_all(dir).ok();
}
