//! Hostile files and hostile clients of the binary: secrets and configs that are not small
//! regular files, label strings of megabytes, reload storms against a large config, and
//! wrong-password floods. Every test runs the real binary over real sockets.

mod common;

use std::io::Read;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use fleet_sim::ikuai::{IkuaiSim, IkuaiSimConfig};

use common::temp_dir;

const BIN: &str = env!("CARGO_BIN_EXE_fleet-exporter");

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The binary, serving on a free loopback port, its stderr drained as it comes.
struct Running {
    child: Child,
    url: String,
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl Running {
    fn start(args: &[&str]) -> Running {
        let port = free_port();
        let mut child = Command::new(BIN)
            .args(args)
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut pipe = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        });
        Running {
            child,
            url: format!("http://127.0.0.1:{port}"),
            stderr: Some(stderr),
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    async fn get(&self, path: &str) -> Option<(u16, String)> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        let resp = client
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .ok()?;
        let status = resp.status().as_u16();
        Some((status, resp.text().await.ok()?))
    }

    async fn wait_for(&self, what: &str, timeout: Duration, pred: impl Fn(&str) -> bool) {
        let start = Instant::now();
        loop {
            if let Some((_, m)) = self.get("/metrics").await {
                if pred(&m) {
                    return;
                }
            }
            assert!(start.elapsed() < timeout, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Sends SIGTERM; returns (clean exit, seconds to exit, stderr).
    fn terminate(mut self) -> (bool, f64, String) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
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
        let stderr = self.stderr.take().unwrap().join().unwrap();
        (status.success(), start.elapsed().as_secs_f64(), stderr)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

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
        .wait_for("r polled", Duration::from_secs(15), |m| {
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
        let (status, _) = exporter.get(path).await.expect("answered");
        assert_eq!(status, 200, "{path}");
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "{path} took {:?}",
            start.elapsed()
        );
    }
    let calls = sim.calls();
    exporter
        .wait_for(
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
