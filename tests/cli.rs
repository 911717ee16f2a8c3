//! The binary as users run it: config checks, demo mode, signals, and secrets that never leak.

mod common;

use std::io::Read;
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use fleet_sim::ikuai::{Fault, Firmware, IkuaiSim, IkuaiSimConfig};
use fleet_sim::{iot, komari, openvox};
use md5::{Digest, Md5};

use common::binary::{free_port, Running, BIN};
use common::temp_dir;

#[test]
fn config_check_reports_the_target_and_key() {
    let dir = temp_dir("cli-check");
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

/// Every way a secret could be shown: as configured, as the device logins derive it (iKuai and
/// OpenVox send its MD5, iKuai also base64 of a salted form), and as it would sit in an
/// `Authorization` header.
fn secret_forms(secret: &str) -> Vec<String> {
    let b64 = |s: String| base64::engine::general_purpose::STANDARD.encode(s);
    let md5: String = Md5::digest(secret)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    vec![
        secret.to_string(),
        md5,
        b64(format!("salt_11{secret}")),
        b64(secret.to_string()),
    ]
}

#[tokio::test]
async fn secrets_of_every_kind_never_appear_in_logs_metrics_or_pages() {
    const IKUAI: &str = "Ik-7d1f0c3e-never-show";
    const KOMARI_KEY: &str = "Km-api-9a8b7c6d-never-show";
    const KOMARI_PW: &str = "Km-pw-31415926-never-show";
    const OPENVOX: &str = "Ov-pw-27182818-never-show";
    const IOT: &str = "Iot-16180339-never-show";

    let ikuai = |fault| async move {
        let s = IkuaiSim::start(IkuaiSimConfig {
            password: IKUAI.into(),
            firmware: Firmware::V4,
            lan_clients: 3,
            ..IkuaiSimConfig::default()
        })
        .await
        .unwrap();
        s.set_fault(fault);
        s
    };
    let komari = |fault| async move {
        let s = komari::KomariSim::start(komari::KomariSimConfig {
            private: true,
            api_key: Some(KOMARI_KEY.into()),
            password: KOMARI_PW.into(),
            ..komari::KomariSimConfig::default()
        })
        .await
        .unwrap();
        s.set_fault(fault);
        s
    };
    let openvox = |fault| async move {
        let s = openvox::OpenvoxSim::start(openvox::OpenvoxSimConfig {
            password: OPENVOX.into(),
            login_delay: Duration::from_millis(20),
            cdr_every: None,
            ..openvox::OpenvoxSimConfig::default()
        })
        .await
        .unwrap();
        s.set_fault(fault);
        s
    };
    let iot = |fault| async move {
        let s = iot::IotSim::start(iot::IotSimConfig {
            app_secret: IOT.into(),
            devices: 1,
            rate_limit: None,
            ..iot::IotSimConfig::default()
        })
        .await
        .unwrap();
        s.set_fault(fault);
        s
    };
    let (ik_good, ik_broken, ik_hung, ik_wrong) = (
        ikuai(Fault::None).await,
        ikuai(Fault::Truncated).await,
        ikuai(Fault::Hang).await,
        ikuai(Fault::None).await,
    );
    let (ko_good, ko_broken) = (
        komari(komari::Fault::None).await,
        komari(komari::Fault::Truncated).await,
    );
    let (ov_good, ov_broken) = (
        openvox(openvox::Fault::None).await,
        openvox(openvox::Fault::Truncated).await,
    );
    let (iot_good, iot_broken) = (
        iot(iot::Fault::None).await,
        iot(iot::Fault::Truncated).await,
    );

    let dir = temp_dir("cli-secrets");
    for (file, secret) in [("ikuai", IKUAI), ("komari", KOMARI_KEY), ("iot", IOT)] {
        std::fs::write(dir.join(file), format!("{secret}\n")).unwrap();
    }
    let target = |name: &str, kind: &str, url: &str, secret: &str| {
        format!(
            "[[targets]]\nname = \"{name}\"\nkind = \"{kind}\"\nurl = \"{url}\"\n{secret}\n\
             interval = \"400ms\"\ntimeout = \"300ms\"\n"
        )
    };
    let iot_auth = |secret: &str| {
        let device = iot::IotSim::device_no(0);
        format!("app_id = \"qwe123\"\n{secret}\ndevices = [\"{device}\"]\nrate_limit = 100")
    };
    let komari_key = |key: &str| format!("{key}\nallow_insecure_auth = true");
    let config = [
        target(
            "ik-good",
            "ikuai",
            &ik_good.url(),
            "password_file = \"ikuai\"",
        ),
        target(
            "ik-broken",
            "ikuai",
            &ik_broken.url(),
            &format!("password = \"{IKUAI}\""),
        ),
        target(
            "ik-hung",
            "ikuai",
            &ik_hung.url(),
            "password_file = \"ikuai\"",
        ),
        // A wrong secret that contains the real one must not show either.
        target(
            "ik-wrong",
            "ikuai",
            &ik_wrong.url(),
            &format!("password = \"x{IKUAI}\""),
        ),
        target(
            "ko-key",
            "komari",
            &ko_good.url(),
            &komari_key("api_key_file = \"komari\""),
        ),
        target(
            "ko-login",
            "komari",
            &ko_good.url(),
            &komari_key(&format!("username = \"admin\"\npassword = \"{KOMARI_PW}\"")),
        ),
        target(
            "ko-wrong",
            "komari",
            &ko_good.url(),
            &komari_key(&format!("api_key = \"x{KOMARI_KEY}\"")),
        ),
        target(
            "ko-broken",
            "komari",
            &ko_broken.url(),
            &komari_key(&format!("api_key = \"{KOMARI_KEY}\"")),
        ),
        target(
            "ov-good",
            "openvox",
            &ov_good.url(),
            &format!("password = \"{OPENVOX}\""),
        ),
        target(
            "ov-wrong",
            "openvox",
            &ov_good.url(),
            &format!("password = \"x{OPENVOX}\""),
        ),
        target(
            "ov-broken",
            "openvox",
            &ov_broken.url(),
            &format!("password = \"{OPENVOX}\""),
        ),
        target(
            "iot-good",
            "iot",
            &iot_good.url(),
            &iot_auth("app_secret_file = \"iot\""),
        ),
        target(
            "iot-wrong",
            "iot",
            &iot_good.url(),
            &iot_auth(&format!("app_secret = \"x{IOT}\"")),
        ),
        target(
            "iot-broken",
            "iot",
            &iot_broken.url(),
            &iot_auth(&format!("app_secret = \"{IOT}\"")),
        ),
    ]
    .concat();
    let path = dir.join("config.toml");
    std::fs::write(&path, config).unwrap();
    let secrets: Vec<String> = [IKUAI, KOMARI_KEY, KOMARI_PW, OPENVOX, IOT]
        .iter()
        .flat_map(|s| secret_forms(s))
        // Session cookies the simulators hand out, whatever their value.
        .chain(["sess_key=".into(), "session_token=".into()])
        .collect();

    for format in ["text", "json"] {
        let exporter = Running::start(&[
            &format!("--config.file={}", path.display()),
            "--log.level=trace",
            &format!("--log.format={format}"),
        ]);
        // Expired sessions and tokens: every login path runs again.
        ik_good.expire_sessions();
        ko_good.expire_sessions();
        ov_good.expire_tokens();
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
                let up = |t: &str| {
                    let series = format!("fleet_target_up{{target=\"{t}\",");
                    m.lines()
                        .any(|l| l.starts_with(&series) && l.ends_with(" 1"))
                };
                ["ik", "ko", "ov", "iot"].iter().all(|k| {
                    errs(&format!("{k}-broken"), "decode") && errs(&format!("{k}-wrong"), "auth")
                }) && errs("ik-hung", "timeout")
                    && ["ik-good", "ko-key", "ko-login", "ov-good", "iot-good"]
                        .iter()
                        .all(|t| up(t))
            })
            .await;
        let page = exporter.get("/").await.unwrap();
        let probes = ["ik-wrong", "ko-wrong", "ov-wrong", "iot-wrong", "ko-login"];
        let mut probe = String::new();
        for t in probes {
            probe.push_str(&exporter.get(&format!("/probe?target={t}")).await.unwrap());
        }
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
            for secret in &secrets {
                let leak = text.lines().find(|l| l.contains(secret.as_str()));
                assert!(
                    leak.is_none(),
                    "{secret:?} leaked into {what} ({format}): {}",
                    leak.unwrap_or_default()
                        .replace(secret.as_str(), "<SECRET>")
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
    let dir = temp_dir("cli-hup");
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
    let dir = temp_dir("cli-web");
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

    // Basic auth from the documented source: a user name and a password file.
    let password = dir.join("healthcheck-password");
    std::fs::write(&password, "changeme\n").unwrap();
    let wrong = dir.join("wrong-password");
    std::fs::write(&wrong, "nope\n").unwrap();
    let listen = format!("--web.listen-address={addr}");
    let with = |file: &std::path::Path| {
        healthcheck(
            &[&listen, &web_flag],
            &[
                ("FLEET_EXPORTER_HEALTHCHECK_USERNAME", "prometheus"),
                (
                    "FLEET_EXPORTER_HEALTHCHECK_PASSWORD_FILE",
                    file.to_str().unwrap(),
                ),
            ],
        )
    };
    let out = with(&password);
    assert!(out.status.success(), "right password: {out:?}");
    let out = with(&wrong);
    assert!(!out.status.success(), "a wrong password is a failed check");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("401"),
        "{out:?}"
    );
    let out = healthcheck(
        &[&listen, &web_flag],
        &[("FLEET_EXPORTER_HEALTHCHECK_USERNAME", "prometheus")],
    );
    assert!(!out.status.success(), "a user name without a password file");

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
    let dir = temp_dir("cli-term");
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
    let dir = temp_dir("cli-storm");
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

/// A device that answers every request with HTTP 500 and `message` in Komari's error envelope.
async fn komari_answering_500(message: &str) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let body = serde_json::json!({"status": "error", "message": message}).to_string();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut conn, _)) = listener.accept().await {
            let body = body.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let answer = format!(
                    "HTTP/1.1 500 Internal Server Error\r\ncontent-type: application/json\r\n\
                     content-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = conn.write_all(answer.as_bytes()).await;
            });
        }
    });
    url
}

/// What a device's message tries to start as a log line of its own.
const FORGED: &str = "2026-01-01T00:00:00.000000Z  INFO fleet_core::app: forged";

/// A config file in `dir` with one Komari target whose every answer is a 500 carrying a message
/// that tries to forge a log line and reach the terminal: a newline, escape sequences (`CSI 2J`
/// clears the screen, `OSC 0` sets its title) and a one-character CSI (U+009B).
async fn forging_device_config(dir: &std::path::Path) -> std::path::PathBuf {
    let message = format!("boom\n{FORGED}\x1b[2J\x1b]0;pwned\x07\u{9b}31m");
    let url = komari_answering_500(&message).await;
    let config = dir.join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[[targets]]\nname = \"k\"\nkind = \"komari\"\nurl = \"{url}\"\n\
             interval = \"1s\"\ntimeout = \"500ms\"\n"
        ),
    )
    .unwrap();
    config
}

async fn wait_for_a_failed_poll(exporter: &Running) {
    exporter
        .wait_for("a failed poll", |m| {
            m.lines()
                .any(|l| l.starts_with("fleet_target_poll_errors_total{") && !l.ends_with(" 0"))
        })
        .await;
}

/// The device's words are in `logs`, and none of its escapes or forged lines.
fn assert_device_words_escaped(what: &str, logs: &str) {
    assert!(
        logs.contains("boom"),
        "{what}: the device's words are logged: {logs}"
    );
    assert!(
        !logs.contains("\x1b[2J") && !logs.contains("\x1b]0;") && !logs.contains('\u{9b}'),
        "{what}: a device's escape sequence reached stderr: {logs:?}"
    );
    assert!(
        !logs.lines().any(|l| l.starts_with(FORGED)),
        "{what}: a device forged a log line: {logs}"
    );
}

#[tokio::test]
async fn device_words_cannot_forge_log_lines_or_reach_the_terminal() {
    let dir = temp_dir("cli-log-injection");
    let config = forging_device_config(&dir).await;
    for format in ["logfmt", "text", "json"] {
        let exporter = Running::start(&[
            &format!("--config.file={}", config.display()),
            &format!("--log.format={format}"),
            "--log.level=warn",
        ]);
        wait_for_a_failed_poll(&exporter).await;
        let (_, _, stderr) = exporter.terminate();
        assert_device_words_escaped(format, &stderr);
        assert!(
            !stderr.contains('\x1b'),
            "{format}: coloured in a pipe: {stderr:?}"
        );
        if format == "json" {
            for line in stderr.lines() {
                let event: Result<serde_json::Value, _> = serde_json::from_str(line);
                assert!(event.is_ok(), "not JSON: {line:?}");
            }
        }
    }
    std::fs::remove_dir_all(dir).ok();
}

/// All a child wrote to its piped stderr, once it closed it.
fn piped_stderr(child: &mut std::process::Child) -> String {
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    stderr
}

#[tokio::test]
async fn the_soft_open_files_limit_is_raised_to_the_hard_limit_at_start() {
    let port = free_port();
    // A service manager's usual soft limit, far below the hard one.
    let mut child = Command::new("sh")
        .args([
            "-c",
            "ulimit -S -n 256 && exec \"$0\" \"$@\"",
            BIN,
            "--demo",
        ])
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/-/healthy");
    let start = Instant::now();
    while reqwest::get(&url).await.is_err() {
        assert!(start.elapsed() < Duration::from_secs(15), "never healthy");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", child.id())).unwrap();
    let open_files: Vec<&str> = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("open files line")
        .split_whitespace()
        .skip(3)
        .take(2)
        .collect();
    child.kill().unwrap();
    let stderr = piped_stderr(&mut child);
    child.wait().unwrap();
    assert_ne!(
        open_files[1], "256",
        "the test's hard limit must be above 256"
    );
    assert_eq!(
        open_files[0], open_files[1],
        "soft limit not raised: {limits}"
    );
    assert!(
        stderr.contains("raised the open-files limit") && stderr.contains("before=256"),
        "the raise is logged: {stderr}"
    );
}

#[test]
fn log_levels_as_operators_spell_them_and_fatal_errors_whatever_the_level() {
    for level in ["warning", "error", "fleet_core=debug"] {
        let out = Command::new(BIN)
            .args([
                "--config.file=/nonexistent",
                &format!("--log.level={level}"),
            ])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{level}: {stderr}");
        assert!(
            stderr.contains("/nonexistent"),
            "{level}: the fatal error is printed: {stderr:?}"
        );
    }
    let out = Command::new(BIN)
        .args(["--demo", "--log.level=loud"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--log.level") && stderr.contains("error, warn, info, debug"),
        "the refusal names the flag and the allowed values: {stderr}"
    );
}

/// `key=value` pairs of one logfmt line, or `None` when it is not one.
fn logfmt_pairs(line: &str) -> Option<Vec<(String, String)>> {
    let mut pairs = Vec::new();
    let mut rest = line;
    while !rest.is_empty() {
        let (key, tail) = rest.split_once('=')?;
        if key.is_empty() || key.contains([' ', '"']) {
            return None;
        }
        let (value, tail) = match tail.strip_prefix('"') {
            Some(quoted) => {
                let mut value = String::new();
                let mut chars = quoted.char_indices();
                let end = loop {
                    match chars.next()? {
                        (i, '"') => break i,
                        (_, '\\') => value.push(chars.next()?.1),
                        (_, c) => value.push(c),
                    }
                };
                (value, &quoted[end + 1..])
            }
            None => {
                let end = tail.find(' ').unwrap_or(tail.len());
                (tail[..end].to_string(), &tail[end..])
            }
        };
        pairs.push((key.to_string(), value));
        rest = tail.strip_prefix(' ').unwrap_or(tail);
        if !tail.is_empty() && !tail.starts_with(' ') {
            return None;
        }
    }
    Some(pairs)
}

#[tokio::test]
async fn logs_are_logfmt_by_default_one_event_a_line() {
    let exporter = Running::start(&["--demo", "--log.level=debug"]);
    exporter
        .wait_for("a poll", |m| m.contains("fleet_target_up{"))
        .await;
    let (_, _, stderr) = exporter.terminate();
    let lines: Vec<&str> = stderr.lines().collect();
    assert!(lines.len() > 5, "{stderr}");
    for line in lines {
        let pairs = logfmt_pairs(line).unwrap_or_else(|| panic!("not logfmt: {line:?}"));
        let keys: Vec<&str> = pairs.iter().take(3).map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["ts", "level", "target"], "{line}");
        assert!(pairs.iter().any(|(k, _)| k == "msg"), "{line}");
    }
}

#[tokio::test]
async fn telemetry_path_and_exporter_metrics_flags_as_exporter_toolkit_defines_them() {
    let exporter = Running::start(&[
        "--demo",
        "--web.telemetry-path=/fleet",
        "--web.disable-exporter-metrics",
    ]);
    let start = Instant::now();
    let body = loop {
        match exporter.get("/fleet").await {
            Some(m) if m.contains("fleet_target_up{") => break m,
            _ => {
                assert!(
                    start.elapsed() < Duration::from_secs(15),
                    "no series on /fleet"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    assert!(!body.contains("process_"), "exporter metrics were disabled");
    let status = reqwest::get(format!("{}/metrics", exporter.url))
        .await
        .unwrap()
        .status();
    assert_eq!(status, 404, "/metrics moved to /fleet");
    let page = exporter.get("/").await.unwrap();
    assert!(
        page.contains("href=\"/fleet\""),
        "the landing page links the path"
    );
    exporter.terminate();

    let out = Command::new(BIN)
        .args(["--demo", "--web.telemetry-path=/probe"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--web.telemetry-path"), "{stderr}");
}

#[test]
fn version_prints_revision_build_date_and_toolchain_like_the_prometheus_binaries() {
    let out = Command::new(BIN).arg("--version").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let first = text.lines().next().unwrap_or_default();
    assert!(
        first.starts_with(&format!(
            "fleet-exporter {} (revision: ",
            env!("CARGO_PKG_VERSION")
        )),
        "{text}"
    );
    for key in ["build date:", "rust version:     rustc ", "platform:"] {
        assert!(text.contains(key), "{key} missing: {text}");
    }
}

fn healthcheck(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    Command::new(BIN)
        .arg("--healthcheck")
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

#[tokio::test]
async fn listen_address_repeats_and_colon_port_means_ipv4_and_ipv6() {
    let (all, one) = (free_port(), free_port());
    let mut cmd = Command::new(BIN);
    cmd.args([
        "--demo".to_string(),
        format!("--web.listen-address=:{all}"),
        format!("--web.listen-address=127.0.0.1:{one}"),
    ]);
    let exporter = Running::launch(cmd, format!("http://127.0.0.1:{one}"));
    exporter.wait_for("the server", |_| true).await;
    for url in [
        format!("http://127.0.0.1:{all}/-/healthy"),
        format!("http://[::1]:{all}/-/healthy"),
        format!("http://127.0.0.1:{one}/-/healthy"),
    ] {
        let resp = reqwest::get(&url)
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        assert_eq!(resp.status(), 200, "{url}");
    }
    assert!(
        reqwest::get(format!("http://[::1]:{one}/-/healthy"))
            .await
            .is_err(),
        "127.0.0.1:PORT is IPv4 loopback only"
    );
    // The health check finds a `:PORT` server on loopback.
    let out = healthcheck(&[&format!("--web.listen-address=:{all}")], &[]);
    assert!(out.status.success(), "{out:?}");
    let (ok, _, stderr) = exporter.terminate();
    assert!(ok, "{stderr}");
    assert_eq!(
        stderr.matches("msg=\"serving /metrics\"").count(),
        2,
        "{stderr}"
    );
}

#[tokio::test]
async fn healthcheck_reads_the_listen_address_from_the_config_file() {
    let port = free_port();
    let dir = temp_dir("cli-hc-config");
    let config = dir.join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\n\n[[targets]]\nname = \"hq\"\nkind = \"ikuai\"\nurl = \"http://127.0.0.1:9\"\npassword = \"x\"\n"
        ),
    )
    .unwrap();
    let config_flag = format!("--config.file={}", config.display());
    let mut cmd = Command::new(BIN);
    cmd.arg(&config_flag);
    let exporter = Running::launch(cmd, format!("http://127.0.0.1:{port}"));
    exporter.wait_for("the server", |_| true).await;
    let out = healthcheck(&[&config_flag], &[]);
    assert!(out.status.success(), "{out:?}");
    let (ok, _, stderr) = exporter.terminate();
    assert!(ok, "{stderr}");
    let out = healthcheck(&[&config_flag], &[]);
    assert!(!out.status.success(), "nothing listens any more");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!("127.0.0.1:{port}")),
        "{out:?}"
    );
    std::fs::remove_dir_all(dir).ok();
}

#[cfg(unix)]
#[tokio::test]
async fn systemd_socket_serves_on_the_socket_it_is_passed() {
    use std::os::unix::io::AsRawFd;
    use std::os::unix::process::CommandExt;

    let socket = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = socket.local_addr().unwrap();
    let fd = socket.as_raw_fd();
    let mut cmd = Command::new("sh");
    // `exec` keeps the shell's pid, so `$$` is the exporter's LISTEN_PID.
    cmd.args([
        "-c",
        "export LISTEN_PID=$$ LISTEN_FDS=1; exec \"$0\" \"$@\"",
        BIN,
        "--demo",
        "--web.systemd-socket",
    ]);
    // SAFETY: dup2 and fcntl are async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            // The first passed socket is fd 3, open across exec.
            let ok = if fd == 3 {
                libc::fcntl(3, libc::F_SETFD, 0) != -1
            } else {
                libc::dup2(fd, 3) != -1
            };
            if ok {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
    let exporter = Running::launch(cmd, format!("http://{addr}"));
    drop(socket);
    let m = exporter
        .wait_for("the demo through the passed socket", |m| {
            m.contains("ikuai_info{target=\"demo-ikuai-v3\"")
        })
        .await;
    assert!(m.contains("fleet_exporter_build_info{"));
    let (ok, _, stderr) = exporter.terminate();
    assert!(ok, "{stderr}");
    assert!(stderr.contains("systemd=true"), "{stderr}");

    let out = Command::new(BIN)
        .args(["--demo", "--web.systemd-socket"])
        .env_remove("LISTEN_FDS")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("systemd passed no socket"), "{err}");

    let out = Command::new(BIN)
        .args(["--demo", "--web.systemd-socket", "--web.listen-address=:1"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "exclusive, as in exporter-toolkit");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot be used with"), "{err}");
}

#[test]
fn a_web_config_that_is_a_named_pipe_is_refused_at_once() {
    let dir = temp_dir("cli-web-fifo");
    let fifo = dir.join("web.yml");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success(), "mkfifo");
    let start = Instant::now();
    let out = Command::new(BIN)
        .args(["--demo", &format!("--web.config.file={}", fifo.display())])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "it waited for a writer"
    );
    assert!(stderr.contains("named pipe"), "{stderr}");
    std::fs::remove_dir_all(dir).ok();
}

/// `unshare` flags that start the exporter as PID 1 of a PID namespace of its own, as a
/// container runtime does; `--kill-child` ends it with the test.
const AS_PID_1: [&str; 6] = [
    "--user",
    "--map-root-user",
    "--pid",
    "--fork",
    "--mount-proc",
    "--kill-child",
];

/// The exporter running as PID 1 of its own PID namespace, in `dir`.
struct Pid1 {
    exporter: Running,
    /// Its pid as this host sees it.
    pid: u32,
}

impl Pid1 {
    fn start(dir: &std::path::Path, args: &[&str], url: String) -> Pid1 {
        let mut cmd = Command::new("unshare");
        cmd.args(AS_PID_1).arg(BIN).args(args).current_dir(dir);
        let exporter = Running::launch(cmd, url);
        let pid = common::namespace::child_of(exporter.child.id());
        Pid1 { exporter, pid }
    }

    /// `fleet-exporter --healthcheck extra...` run inside the namespace, as `podman healthcheck
    /// run` execs it in a container.
    fn healthcheck(&self, extra: &[&str], env: &[(&str, &str)]) -> std::process::Output {
        Command::new("nsenter")
            .args([
                "--target",
                &self.pid.to_string(),
                "--user",
                "--pid",
                "--mount",
            ])
            .args([BIN, "--healthcheck"])
            .args(extra)
            .envs(env.iter().copied())
            .output()
            .unwrap()
    }

    fn terminate(self) -> String {
        let ok = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -TERM {}", self.pid);
        let (ok, _, stderr) = self.exporter.terminate();
        assert!(ok, "{stderr}");
        stderr
    }
}

fn assert_healthy(out: &std::process::Output, what: &str) {
    assert!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn healthcheck_alone_asks_where_the_exporter_running_as_pid_1_listens() {
    if !common::namespace::available(&AS_PID_1, "--healthcheck reading PID 1's flags") {
        return;
    }
    let dir = temp_dir("cli-hc-pid1");
    let port = free_port();
    let pid1 = Pid1::start(
        &dir,
        &["--demo", &format!("--web.listen-address=127.0.0.1:{port}")],
        format!("http://127.0.0.1:{port}"),
    );
    pid1.exporter.wait_for("the server", |_| true).await;
    assert_healthy(&pid1.healthcheck(&[], &[]), "no flags: PID 1's port");
    let elsewhere = format!("--web.listen-address=127.0.0.1:{}", free_port());
    let out = pid1.healthcheck(&[&elsewhere], &[]);
    assert!(!out.status.success(), "given flags win over PID 1's");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("from the flags given"), "{stderr}");
    pid1.terminate();
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test]
async fn healthcheck_alone_speaks_tls_and_basic_auth_of_the_exporter_running_as_pid_1() {
    if !common::namespace::available(&AS_PID_1, "--healthcheck reading PID 1's flags") {
        return;
    }
    let example = include_str!("../config/web-config.example.yml");
    let dir = temp_dir("cli-hc-pid1-tls");
    let ck = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap();
    std::fs::write(dir.join("cert.pem"), ck.cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), ck.signing_key.serialize_pem()).unwrap();
    let web = example.replace("/etc/fleet-exporter/tls/", &format!("{}/", dir.display()));
    std::fs::write(dir.join("web.yml"), web).unwrap();
    let port = free_port();
    std::fs::write(
        dir.join("config.toml"),
        format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\n\n[[targets]]\nname = \"hq\"\n\
             kind = \"ikuai\"\nurl = \"http://127.0.0.1:9\"\npassword = \"x\"\n"
        ),
    )
    .unwrap();
    std::fs::write(dir.join("right"), "changeme\n").unwrap();
    std::fs::write(dir.join("wrong"), "nope\n").unwrap();
    // Relative paths, as PID 1 was given them: the check reads them from PID 1's directory.
    let pid1 = Pid1::start(
        &dir,
        &["--config.file=config.toml", "--web.config.file=web.yml"],
        format!("http://127.0.0.1:{port}"),
    );
    let (right, wrong) = (dir.join("right"), dir.join("wrong"));
    let with = |password_file: &std::path::Path| {
        pid1.healthcheck(
            &[],
            &[
                ("FLEET_EXPORTER_HEALTHCHECK_USERNAME", "prometheus"),
                (
                    "FLEET_EXPORTER_HEALTHCHECK_PASSWORD_FILE",
                    password_file.to_str().unwrap(),
                ),
            ],
        )
    };
    let start = Instant::now();
    while !with(&right).status.success() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "never healthy: {:?}",
            with(&right)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_healthy(
        &pid1.healthcheck(&[], &[]),
        "no credentials: a 401 is alive",
    );
    let out = with(&wrong);
    assert!(!out.status.success(), "a wrong password fails the check");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("401") && stderr.contains(&format!("https://127.0.0.1:{port}/-/healthy")),
        "{stderr}"
    );
    assert!(
        !stderr.contains("nope"),
        "the password is never shown: {stderr}"
    );
    pid1.terminate();
    std::fs::remove_dir_all(dir).ok();
}

/// Quotes `arg` for `sh`.
fn sh_quote(arg: &str) -> String {
    format!("'{}'", arg.replace('\'', r"'\''"))
}

/// `script` (util-linux) running `BIN args` on a pseudo-terminal, its stdin and stdout
/// included; what the terminal shows goes to `typescript`, and the exporter's pid to `pid_file`.
fn on_a_terminal(
    args: &[&str],
    typescript: &std::path::Path,
    pid_file: &std::path::Path,
) -> Command {
    let exec = std::iter::once(BIN)
        .chain(args.iter().copied())
        .map(sh_quote)
        .collect::<Vec<_>>()
        .join(" ");
    let shell = format!(
        "echo $$ > {}; exec {exec}",
        sh_quote(pid_file.to_str().unwrap())
    );
    let mut cmd = Command::new("script");
    cmd.args(["-qec", &shell])
        .arg(typescript)
        .stdin(Stdio::null())
        .env_remove("NO_COLOR");
    cmd
}

/// What `BIN args` wrote to the terminal it ran on; it must end with a fatal error (exit 1).
fn terminal_output(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> String {
    let typescript = dir.join("typescript");
    let out = on_a_terminal(args, &typescript, &dir.join("pid"))
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "script: {out:?}");
    std::fs::read_to_string(&typescript).unwrap()
}

#[test]
fn text_logs_are_coloured_on_a_terminal_only_and_never_with_no_color() {
    let dir = temp_dir("cli-colour");
    // A fatal error: one ERROR line, then exit 1.
    let fatal = ["--config.file=/nonexistent"];
    let text = [fatal[0], "--log.format=text"];
    let shown = terminal_output(&dir, &text, &[]);
    assert!(
        shown.contains("ERROR") && shown.contains("/nonexistent"),
        "{shown:?}"
    );
    assert!(
        shown.contains("\x1b["),
        "text on a terminal is coloured: {shown:?}"
    );
    for (what, shown) in [
        (
            "NO_COLOR",
            terminal_output(&dir, &text, &[("NO_COLOR", "1")]),
        ),
        (
            "logfmt",
            terminal_output(&dir, &[fatal[0], "--log.format=logfmt"], &[]),
        ),
        (
            "json",
            terminal_output(&dir, &[fatal[0], "--log.format=json"], &[]),
        ),
    ] {
        assert!(shown.contains("/nonexistent"), "{what}: {shown:?}");
        assert!(!shown.contains('\x1b'), "{what}: coloured: {shown:?}");
    }
    let piped = Command::new(BIN)
        .args(text)
        .env_remove("NO_COLOR")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&piped.stderr);
    assert!(stderr.contains("ERROR"), "{stderr:?}");
    assert!(
        !stderr.contains('\x1b'),
        "text into a pipe is coloured: {stderr:?}"
    );
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test]
async fn device_words_stay_escaped_in_coloured_terminal_logs() {
    let dir = temp_dir("cli-colour-device");
    let config = forging_device_config(&dir).await;
    let port = free_port();
    let (typescript, pid_file) = (dir.join("typescript"), dir.join("pid"));
    let (config_flag, listen) = (
        format!("--config.file={}", config.display()),
        format!("--web.listen-address=127.0.0.1:{port}"),
    );
    let args = [
        &config_flag,
        "--log.format=text",
        "--log.level=warn",
        &listen,
    ];
    let mut exporter = Running::launch(
        on_a_terminal(&args, &typescript, &pid_file),
        format!("http://127.0.0.1:{port}"),
    );
    wait_for_a_failed_poll(&exporter).await;
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    let ok = Command::new("kill")
        .args(["-TERM", pid.trim()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -TERM {pid}");
    exporter.child.wait().unwrap();
    let shown = std::fs::read_to_string(&typescript).unwrap();
    assert!(shown.contains("\x1b["), "coloured: {shown:?}");
    assert_device_words_escaped("text on a terminal", &shown);
    std::fs::remove_dir_all(dir).ok();
}

const HUNG_FS_ENV: &str = "FLEET_TEST_HUNG_FS";

/// A FUSE filesystem mounted at `at` whose server never answers, not even the kernel's first
/// request: every lookup under it waits, as on a hard-mounted NFS share whose server is gone.
/// It stays hung while the returned file (the connection) is open.
fn never_answering_filesystem(at: &std::path::Path) -> Result<std::fs::File, String> {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::io::AsRawFd;
    let fuse = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/fuse")
        .map_err(|e| format!("/dev/fuse: {e}"))?;
    let target = std::ffi::CString::new(at.as_os_str().as_bytes()).unwrap();
    let options = std::ffi::CString::new(format!(
        "fd={},rootmode=40000,user_id=0,group_id=0",
        fuse.as_raw_fd()
    ))
    .unwrap();
    // SAFETY: every pointer is a NUL-terminated string that outlives the call.
    let mounted = unsafe {
        libc::mount(
            c"fleet-hung".as_ptr(),
            target.as_ptr(),
            c"fuse".as_ptr(),
            libc::MS_NOSUID | libc::MS_NODEV,
            options.as_ptr().cast(),
        )
    };
    if mounted != 0 {
        return Err(format!("mount: {}", std::io::Error::last_os_error()));
    }
    Ok(fuse)
}

/// Startup, `--config.check` and `--healthcheck` read the config, its secret files and the web
/// config under the reload's deadline: a file on a filesystem that never answers ends them with
/// an error naming the file, never hangs them. The test runs itself again in private user and
/// mount namespaces, where it may mount a FUSE filesystem of its own.
#[test]
fn config_reads_on_a_hung_filesystem_give_up_at_the_deadline() {
    const SELF: &str = "config_reads_on_a_hung_filesystem_give_up_at_the_deadline";
    if std::env::var_os(HUNG_FS_ENV).is_none() {
        let args = ["--user", "--map-root-user", "--mount"];
        if common::namespace::available(&args, "reading files on a hung filesystem") {
            common::namespace::rerun_inside(&args, SELF, HUNG_FS_ENV);
        }
        return;
    }
    let dir = temp_dir("cli-hung-fs");
    let hung = dir.join("hung");
    std::fs::create_dir(&hung).unwrap();
    let fuse = match never_answering_filesystem(&hung) {
        Ok(fuse) => fuse,
        Err(why) => {
            // A machine without the FUSE device cannot play this fault at all; one that has it
            // must be able to mount where namespaces are required.
            assert!(
                std::env::var_os(common::namespace::REQUIRE_ENV).is_none()
                    || !std::path::Path::new("/dev/fuse").exists(),
                "no FUSE mount: {why}"
            );
            eprintln!("WARNING: reading files on a hung filesystem is not checked: {why}");
            return;
        }
    };
    let hung_config = hung.join("fleet-exporter.toml").display().to_string();
    let hung_web = hung.join("web.yml").display().to_string();
    let secret_config = dir.join("secret.toml");
    std::fs::write(
        &secret_config,
        "[[targets]]\nname = \"hq\"\nkind = \"ikuai\"\nurl = \"http://127.0.0.1:9\"\n\
         password_file = \"hung/ikuai\"\n",
    )
    .unwrap();
    let secret_config = secret_config.display().to_string();
    let listen = || format!("--web.listen-address=127.0.0.1:{}", free_port());
    let cases: Vec<(&str, Vec<String>, &str)> = vec![
        (
            "--config.check",
            vec![
                "--config.check".into(),
                format!("--config.file={hung_config}"),
            ],
            &hung_config,
        ),
        (
            "startup",
            vec![format!("--config.file={hung_config}"), listen()],
            &hung_config,
        ),
        (
            "a secret file",
            vec![
                "--config.check".into(),
                format!("--config.file={secret_config}"),
            ],
            &secret_config,
        ),
        (
            "the web config",
            vec![
                "--demo".into(),
                format!("--web.config.file={hung_web}"),
                listen(),
            ],
            &hung_web,
        ),
        (
            "--healthcheck",
            vec![
                "--healthcheck".into(),
                format!("--config.file={hung_config}"),
            ],
            &hung_config,
        ),
    ];
    let runs: Vec<_> = cases
        .into_iter()
        .map(|(what, args, names)| {
            let child = Command::new(BIN)
                .args(&args)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            (what, child, names)
        })
        .collect();
    // Without a deadline each would wait for ever; with it, 30 s (a loaded machine: far less
    // than four minutes).
    let start = Instant::now();
    for (what, mut child, names) in runs {
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if start.elapsed() > Duration::from_secs(240) {
                child.kill().unwrap();
                panic!("{what}: still reading after {:?}", start.elapsed());
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        let stderr = piped_stderr(&mut child);
        assert_eq!(status.code(), Some(1), "{what}: {stderr}");
        assert!(
            stderr.contains(names) && stderr.contains("took longer than 30s"),
            "{what}: the error names the file and the deadline: {stderr}"
        );
    }
    // Closing the connection fails every waiting lookup, so the scratch folder can go.
    drop(fuse);
    // SAFETY: a NUL-terminated path that outlives the call.
    let target = std::ffi::CString::new(hung.to_str().unwrap()).unwrap();
    unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) };
    std::fs::remove_dir_all(dir).ok();
}
