//! The binary as users run it: config checks, demo mode, signals, and secrets that never leak.

use std::io::Read;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use fleet_exporter::sim::ikuai::{Fault, Firmware, IkuaiSim, IkuaiSimConfig};
use md5::{Digest, Md5};

const BIN: &str = env!("CARGO_BIN_EXE_fleet-exporter");

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("fleet-cli-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Running {
    child: Child,
    url: String,
}

impl Running {
    fn start(args: &[&str]) -> Running {
        let port = free_port();
        let child = Command::new(BIN)
            .args(args)
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        Running {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }

    async fn get(&self, path: &str) -> Option<String> {
        let resp = reqwest::get(format!("{}{path}", self.url)).await.ok()?;
        resp.text().await.ok()
    }

    async fn wait_for(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            if let Some(m) = self.get("/metrics").await {
                if pred(&m) {
                    return m;
                }
            }
            assert!(
                start.elapsed() < Duration::from_secs(15),
                "timed out waiting for {what}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{sig}");
    }

    /// Sends SIGTERM and returns (exit success, seconds to exit, stderr).
    fn terminate(mut self) -> (bool, f64, String) {
        self.signal("TERM");
        let start = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if start.elapsed() > Duration::from_secs(10) {
                self.child.kill().unwrap();
                panic!("no exit 10 s after SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut stderr = String::new();
        self.child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        (status.success(), start.elapsed().as_secs_f64(), stderr)
    }
}

#[test]
fn config_check_reports_the_target_and_key() {
    let dir = temp_dir("check");
    let good = dir.join("good.toml");
    std::fs::write(&good, "[[targets]]\nname = \"hq\"\nkind = \"ikuai\"\nurl = \"http://192.0.2.1\"\npassword = \"x\"\n").unwrap();
    let out = Command::new(BIN)
        .args(["--config.check", "--config.file"])
        .arg(&good)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("ok, 1 target"));

    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "[[targets]]\nname = \"hq\"\nkind = \"ikuai\"\nurl = \"http://192.0.2.1\"\npassword = \"x\"\nmax_client = 5\n").unwrap();
    let out = Command::new(BIN)
        .args(["--config.check", "--config.file"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("target \"hq\"") && err.contains("max_client"),
        "{err}"
    );

    let out = Command::new(BIN).output().unwrap();
    assert!(!out.status.success(), "no config and no --demo is an error");
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test]
async fn demo_serves_every_router_within_seconds_and_exits_on_sigterm() {
    let started = Instant::now();
    let exporter = Running::start(&["--demo"]);
    let m = exporter
        .wait_for("both demo routers", |m| {
            m.contains("ikuai_info{target=\"demo-ikuai-v3\"")
                && m.contains("ikuai_info{target=\"demo-ikuai-v4\"")
        })
        .await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "demo took {:?}",
        started.elapsed()
    );
    assert!(
        m.matches("ikuai_client_info{target=\"demo-ikuai-v3\"")
            .count()
            >= 60
    );
    assert!(exporter.get("/").await.unwrap().contains("demo-ikuai-v4"));
    let (ok, secs, _) = exporter.terminate();
    assert!(ok, "clean exit");
    assert!(secs < 5.0, "exit took {secs} s");
}

#[tokio::test]
async fn secrets_never_appear_in_logs_metrics_or_pages() {
    let password = "Pw-7d1f0c3e-never-show";
    let md5: String = Md5::digest(password)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let salted = base64::engine::general_purpose::STANDARD.encode(format!("salt_11{password}"));
    let sim = |fault| async move {
        let s = IkuaiSim::start(IkuaiSimConfig {
            password: password.into(),
            firmware: Firmware::V4,
            lan_clients: 3,
            ..IkuaiSimConfig::default()
        })
        .await
        .unwrap();
        s.set_fault(fault);
        s
    };
    let (good, broken, hung) = (
        sim(Fault::None).await,
        sim(Fault::Truncated).await,
        sim(Fault::Hang).await,
    );
    let wrong = sim(Fault::None).await;

    let dir = temp_dir("secrets");
    std::fs::write(dir.join("pw"), format!("{password}\n")).unwrap();
    let target = |name: &str, url: &str, secret: &str| {
        format!("[[targets]]\nname = \"{name}\"\nkind = \"ikuai\"\nurl = \"{url}\"\n{secret}\ninterval = \"400ms\"\ntimeout = \"300ms\"\n")
    };
    let config = [
        target("good", &good.url(), "password_file = \"pw\""),
        target(
            "broken",
            &broken.url(),
            &format!("password = \"{password}\""),
        ),
        target("hung", &hung.url(), "password_file = \"pw\""),
        // A wrong password that contains the real one must not show either.
        target(
            "wrong",
            &wrong.url(),
            &format!("password = \"x{password}\""),
        ),
    ]
    .concat();
    let path = dir.join("config.toml");
    std::fs::write(&path, config).unwrap();

    for format in ["text", "json"] {
        let exporter = Running::start(&[
            &format!("--config.file={}", path.display()),
            "--log.level=trace",
            &format!("--log.format={format}"),
        ]);
        good.expire_sessions();
        let m = exporter
            .wait_for("every error path", |m| {
                let errs = |t: &str, r: &str| {
                    m.lines().any(|l| {
                        l.starts_with("fleet_target_poll_errors_total")
                            && l.contains(&format!("target=\"{t}\""))
                            && l.contains(&format!("reason=\"{r}\""))
                            && !l.ends_with(" 0")
                    })
                };
                errs("broken", "decode")
                    && errs("hung", "timeout")
                    && errs("wrong", "auth")
                    && m.contains("ikuai_info{target=\"good\"")
            })
            .await;
        let page = exporter.get("/").await.unwrap();
        let probe = exporter.get("/probe?target=wrong").await.unwrap();
        let (ok, _, stderr) = exporter.terminate();
        assert!(ok);
        assert!(
            stderr.contains("poll failed"),
            "the error paths were logged"
        );
        for (what, text) in [
            ("logs", &stderr),
            ("/metrics", &m),
            ("/", &page),
            ("/probe", &probe),
        ] {
            for secret in [password, md5.as_str(), salted.as_str(), "sess_key="] {
                assert!(
                    !text.contains(secret),
                    "{secret:?} leaked into {what} ({format})"
                );
            }
        }
    }
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test]
async fn sighup_reloads_the_config_file() {
    let (a, b) = (
        IkuaiSim::start(IkuaiSimConfig::default()).await.unwrap(),
        IkuaiSim::start(IkuaiSimConfig::default()).await.unwrap(),
    );
    let dir = temp_dir("hup");
    let path = dir.join("config.toml");
    let target = |name: &str, url: &str| {
        format!("[[targets]]\nname = \"{name}\"\nkind = \"ikuai\"\nurl = \"{url}\"\npassword = \"admin\"\ninterval = \"500ms\"\ntimeout = \"400ms\"\n")
    };
    std::fs::write(&path, target("a", &a.url())).unwrap();
    let exporter = Running::start(&[&format!("--config.file={}", path.display())]);
    exporter
        .wait_for("a", |m| m.contains("ikuai_info{target=\"a\""))
        .await;
    std::fs::write(&path, target("b", &b.url())).unwrap();
    exporter.signal("HUP");
    let m = exporter
        .wait_for("b", |m| m.contains("ikuai_info{target=\"b\""))
        .await;
    assert!(!m.contains("target=\"a\""));
    let (ok, _, _) = exporter.terminate();
    assert!(ok);
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn the_example_config_is_valid() {
    let example = include_str!("../config/fleet-exporter.example.toml");
    // Its secrets live under /run/secrets/: point them at files of our own.
    let dir = temp_dir("example");
    for name in example
        .split("\"/run/secrets/")
        .skip(1)
        .filter_map(|s| s.split('"').next())
    {
        std::fs::write(dir.join(name), "secret\n").unwrap();
    }
    let path = dir.join("example.toml");
    let text = example.replace("/run/secrets/", &format!("{}/", dir.display()));
    std::fs::write(&path, text).unwrap();
    let out = Command::new(BIN)
        .args(["--config.check", "--config.file"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test]
async fn healthcheck_flag_asks_the_running_exporter() {
    let exporter = Running::start(&["--demo"]);
    let addr = exporter.url.trim_start_matches("http://").to_string();
    exporter.wait_for("the server", |_| true).await;
    let check = |addr: &str| {
        Command::new(BIN)
            .args(["--healthcheck", &format!("--web.listen-address={addr}")])
            .output()
            .unwrap()
            .status
            .success()
    };
    assert!(check(&addr));
    let (ok, _, _) = exporter.terminate();
    assert!(ok);
    assert!(!check(&addr), "nothing listens any more");
}

#[tokio::test]
async fn the_example_web_config_protects_the_demo_and_the_healthcheck_speaks_it() {
    let example = include_str!("../config/web-config.example.yml");
    let dir = temp_dir("web");
    let ck = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap();
    std::fs::write(dir.join("cert.pem"), ck.cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), ck.signing_key.serialize_pem()).unwrap();
    let web = dir.join("web.yml");
    let text = example.replace("/etc/fleet-exporter/tls/", &format!("{}/", dir.display()));
    std::fs::write(&web, text).unwrap();
    let web_flag = format!("--web.config.file={}", web.display());

    let exporter = Running::start(&["--demo", &web_flag]);
    let addr = exporter.url.trim_start_matches("http://").to_string();
    let check = |extra: &[&str]| {
        Command::new(BIN)
            .args(["--healthcheck", &format!("--web.listen-address={addr}")])
            .args(extra)
            .output()
            .unwrap()
            .status
            .success()
    };
    let start = Instant::now();
    while !check(&[&web_flag]) {
        assert!(start.elapsed() < Duration::from_secs(15), "never healthy");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!check(&[]), "plain HTTP gets no answer from a TLS port");

    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ck.cert.pem().as_bytes()).unwrap())
        .build()
        .unwrap();
    let url = format!("https://{addr}/metrics");
    let denied = client.get(&url).send().await.unwrap();
    assert_eq!(denied.status(), 401);
    let allowed = client
        .get(&url)
        .basic_auth("prometheus", Some("changeme"))
        .send()
        .await
        .unwrap();
    assert_eq!(allowed.status(), 200);
    assert!(allowed
        .text()
        .await
        .unwrap()
        .contains("fleet_exporter_build_info{"));

    let (ok, _, stderr) = exporter.terminate();
    assert!(ok, "{stderr}");
    std::fs::remove_dir_all(dir).ok();
}

/// One iKuai target block that polls only `homepage`: one `/Action/call` per poll, so a
/// simulator's call count is the number of polls it saw.
fn one_call_target(name: &str, url: &str, interval: &str) -> String {
    format!(
        "[[targets]]\nname = \"{name}\"\nkind = \"ikuai\"\nurl = \"{url}\"\npassword = \"admin\"\n\
         interval = \"{interval}\"\ntimeout = \"400ms\"\nmodules = [\"system\"]\n"
    )
}

#[tokio::test]
async fn sigterm_with_polls_and_scrapes_in_flight_exits_cleanly() {
    let sim = IkuaiSim::start(IkuaiSimConfig::default()).await.unwrap();
    let dir = temp_dir("term");
    let path = dir.join("config.toml");
    let target =
        "[[targets]]\nname = \"slow\"\nkind = \"ikuai\"\nurl = \"URL\"\npassword = \"admin\"\n\
                  interval = \"10s\"\ntimeout = \"9s\"\n";
    std::fs::write(&path, target.replace("URL", &sim.url())).unwrap();
    // Every poll hangs in the device for longer than the whole shutdown may take.
    sim.set_latency(Duration::from_secs(8));
    let exporter = Running::start(&[&format!("--config.file={}", path.display())]);
    let start = Instant::now();
    while sim.calls() == 0 {
        assert!(start.elapsed() < Duration::from_secs(10), "no poll started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let scrapers: Vec<_> = (0..16)
        .map(|_| {
            let url = format!("{}/metrics", exporter.url);
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                let mut complete = 0;
                while let Ok(resp) = client.get(&url).send().await {
                    match resp.text().await {
                        Ok(body) if body.contains("fleet_exporter_build_info") => complete += 1,
                        Ok(body) => panic!("truncated scrape: {} bytes", body.len()),
                        Err(_) => break,
                    }
                }
                complete
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (ok, secs, stderr) = exporter.terminate();
    assert!(ok, "clean exit; stderr:\n{stderr}");
    assert!(secs < 5.0, "exit took {secs} s");
    let mut scrapes = 0;
    for s in scrapers {
        scrapes += s.await.expect("scraper saw only whole answers");
    }
    assert!(
        scrapes >= 16,
        "only {scrapes} scrapes answered before SIGTERM"
    );
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test]
async fn reload_storm_leaves_one_poller_per_target() {
    let (a, b) = (
        IkuaiSim::start(IkuaiSimConfig::default()).await.unwrap(),
        IkuaiSim::start(IkuaiSimConfig::default()).await.unwrap(),
    );
    // Two valid configs that differ in `b`'s interval, so every reload restarts its poller.
    let config = |b_interval: &str| {
        one_call_target("a", &a.url(), "500ms") + &one_call_target("b", &b.url(), b_interval)
    };
    let dir = temp_dir("storm");
    let path = dir.join("config.toml");
    let write = |text: String| {
        // Renamed into place, so a reload never reads half a file.
        let tmp = dir.join("config.tmp");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, &path).unwrap();
    };
    write(config("500ms"));
    let exporter = Running::start(&[&format!("--config.file={}", path.display())]);
    exporter
        .wait_for("both targets", |m| {
            m.contains("ikuai_info{target=\"a\"") && m.contains("ikuai_info{target=\"b\"")
        })
        .await;

    let client = reqwest::Client::new();
    let mut reloads = Vec::new();
    for i in 0..50 {
        write(config(if i % 2 == 0 { "600ms" } else { "500ms" }));
        let post = client.post(format!("{}/-/reload", exporter.url)).send();
        reloads.push(tokio::spawn(post));
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    for r in reloads {
        let resp = r.await.unwrap().expect("reload answered");
        assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    }

    // One poller per target polls about window / interval times; a leaked second one doubles it.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (a0, b0) = (a.calls(), b.calls());
    let window = Duration::from_secs(4);
    tokio::time::sleep(window).await;
    let (a_polls, b_polls) = (a.calls() - a0, b.calls() - b0);
    assert!(
        (6..=10).contains(&a_polls),
        "a polled {a_polls} times in {window:?}"
    );
    assert!(
        (6..=10).contains(&b_polls),
        "b polled {b_polls} times in {window:?}"
    );

    let m = exporter.get("/metrics").await.unwrap();
    assert!(
        has_line(&m, "fleet_exporter_config_last_reload_successful 1"),
        "{m}"
    );
    assert_eq!(m.matches("\nfleet_target_up{").count(), 2, "{m}");
    let (ok, _, _) = exporter.terminate();
    assert!(ok);
    std::fs::remove_dir_all(dir).ok();
}

fn has_line(text: &str, line: &str) -> bool {
    text.lines().any(|l| l == line)
}
