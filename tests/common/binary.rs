//! The exporter binary as an operator runs it: started on a free loopback port, its stderr
//! drained as it comes (a full pipe would block the exporter's logging, and with it the
//! exporter), stopped by SIGTERM, killed if a test ends without stopping it.

use std::io::Read;
use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_fleet-exporter");

pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub(crate) struct Running {
    pub(crate) child: Child,
    /// `http://127.0.0.1:PORT`, or what the launcher says the exporter answers on.
    pub(crate) url: String,
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl Running {
    /// The binary with `args`, serving on a free loopback port.
    pub(crate) fn start(args: &[&str]) -> Running {
        let port = free_port();
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .arg(format!("--web.listen-address=127.0.0.1:{port}"));
        Running::launch(cmd, format!("http://127.0.0.1:{port}"))
    }

    /// Starts `cmd` (the binary, however the test wraps it) that will answer on `url`.
    pub(crate) fn launch(mut cmd: Command, url: String) -> Running {
        let mut child = cmd
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
            url,
            stderr: Some(stderr),
        }
    }

    /// The address it listens on.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.url
            .trim_start_matches("http://")
            .parse()
            .expect("a plain http://IP:PORT url")
    }

    /// The URL of `path` on it.
    pub(crate) fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// GET `path`: the body, or `None` when the request failed.
    pub(crate) async fn get(&self, path: &str) -> Option<String> {
        Some(self.get_with_status(path).await?.1)
    }

    /// GET `path` with a 10 s deadline: status and body, or `None` when the request failed.
    pub(crate) async fn get_with_status(&self, path: &str) -> Option<(u16, String)> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        let resp = client.get(self.at(path)).send().await.ok()?;
        let status = resp.status().as_u16();
        Some((status, resp.text().await.ok()?))
    }

    /// Scrapes `/metrics` until it satisfies `pred`, for up to 15 s; returns it.
    pub(crate) async fn wait_for(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        self.wait_for_within(what, Duration::from_secs(15), pred)
            .await
    }

    /// Scrapes `/metrics` until it satisfies `pred`, failing after `timeout` with the health
    /// series last seen; returns it.
    pub(crate) async fn wait_for_within(
        &self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> String {
        let start = Instant::now();
        let mut last = None;
        loop {
            if let Some(m) = self.get("/metrics").await {
                if pred(&m) {
                    return m;
                }
                last = Some(m);
            }
            let health = last.as_deref().unwrap_or_default().lines();
            let health: Vec<&str> = health.filter(|l| l.starts_with("fleet_target_")).collect();
            assert!(
                start.elapsed() < timeout,
                "timed out waiting for {what}; health series:\n{}",
                health.join("\n")
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits for `/-/ready`: every target polled once.
    pub(crate) async fn wait_ready(&self, timeout: Duration) {
        let start = Instant::now();
        while self.get_with_status("/-/ready").await.map(|r| r.0) != Some(200) {
            assert!(start.elapsed() < timeout, "not ready after {timeout:?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub(crate) fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{sig}");
    }

    /// A `/proc/PID/status` figure, e.g. `VmRSS:` in KiB.
    pub(crate) fn proc_status(&self, key: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or_else(|| panic!("{key} in /proc/PID/status"))
    }

    pub(crate) fn rss_mib(&self) -> f64 {
        self.proc_status("VmRSS:") as f64 / 1024.0
    }

    pub(crate) fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id()))
            .unwrap()
            .count()
    }

    /// Sends SIGTERM and returns (exit success, seconds to exit, stderr); fails the test when
    /// the process is still running 15 s later.
    pub(crate) fn terminate(mut self) -> (bool, f64, String) {
        self.signal("TERM");
        let start = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if start.elapsed() > Duration::from_secs(15) {
                self.child.kill().unwrap();
                panic!("still running 15 s after SIGTERM");
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
