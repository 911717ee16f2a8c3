//! What the benchmarks share: reading another process's memory and CPU from /proc, the latency
//! summary, and one timed GET.
#![allow(dead_code)]

use std::process::Child;
use std::time::{Duration, Instant};

/// A child process (the exporter, the simulators), killed when dropped, also on a panic, with
/// every process it started: a profiler the exporter runs under (`FLEET_BENCH_WRAP`) would
/// leave the exporter running if only the profiler were killed. The profiler is given a few
/// seconds to write its report once the exporter is gone.
pub(crate) struct Process(pub(crate) Child);

impl Process {
    pub(crate) fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if kill_descendants(self.0.id()) > 0 {
            let wrote = Instant::now();
            while wrote.elapsed() < Duration::from_secs(10)
                && self.0.try_wait().is_ok_and(|s| s.is_none())
            {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Kills the children of `pid`, theirs first, as `/proc/PID/task/*/children` lists them; how
/// many it killed.
fn kill_descendants(pid: u32) -> usize {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    let mut children = Vec::new();
    for task in tasks.flatten() {
        if let Ok(list) = std::fs::read_to_string(task.path().join("children")) {
            children.extend(
                list.split_whitespace()
                    .filter_map(|p| p.parse::<u32>().ok()),
            );
        }
    }
    for &child in &children {
        kill_descendants(child);
        // SAFETY: kill(2) only sends a signal; a pid that has exited meanwhile gets ESRCH.
        unsafe { libc::kill(child as libc::pid_t, libc::SIGKILL) };
    }
    children.len()
}

/// `VmRSS` of `pid`, in bytes.
pub(crate) fn rss_bytes(pid: u32) -> usize {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<usize>().ok())
        .expect("VmRSS");
    kib * 1024
}

/// User plus system CPU time of `pid`, from /proc/PID/stat (fields 14 and 15, in clock ticks).
pub(crate) fn cpu_seconds(pid: u32) -> f64 {
    // SAFETY: sysconf only reads a system constant.
    let ticks_per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    // The command name may hold spaces; the fields after it are plain numbers.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .expect("stat format")
        .1
        .split_whitespace()
        .collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / ticks_per_second
}

/// CPU time of one of clock_gettime(2)'s CPU clocks, to the nanosecond. `/proc/PID/stat` counts
/// in 10 ms ticks, too coarse for a poll, and a running thread's `schedstat` is only brought up
/// to date at the scheduler's next tick (4 ms here), where this clock reads the time so far.
fn cpu_clock(clock: libc::clockid_t) -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the call's duration.
    let rc = unsafe { libc::clock_gettime(clock, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// This process's CPU time, user and system, all threads.
pub(crate) fn process_cpu() -> Duration {
    cpu_clock(libc::CLOCK_PROCESS_CPUTIME_ID)
}

/// The calling thread's CPU time.
pub(crate) fn thread_cpu() -> Duration {
    cpu_clock(libc::CLOCK_THREAD_CPUTIME_ID)
}

pub(crate) fn mib(bytes: usize) -> f64 {
    bytes as f64 / (1 << 20) as f64
}

pub(crate) fn ms(d: Duration) -> String {
    format!("{:.2}ms", d.as_secs_f64() * 1e3)
}

pub(crate) fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64()
}

/// Order statistics of a set of timings.
pub(crate) struct Stats {
    pub(crate) n: usize,
    pub(crate) min: Duration,
    pub(crate) p50: Duration,
    pub(crate) p90: Duration,
    pub(crate) p99: Duration,
    pub(crate) mean: Duration,
}

impl Stats {
    pub(crate) fn of(mut times: Vec<Duration>) -> Stats {
        times.sort();
        let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
        Stats {
            n: times.len(),
            min: times[0],
            p50: at(0.5),
            p90: at(0.9),
            p99: at(0.99),
            mean: times.iter().sum::<Duration>() / times.len() as u32,
        }
    }

    pub(crate) fn row(&self, name: &str) {
        println!(
            "   {name:<24}{:>6}{:>10}{:>10}{:>10}{:>10}",
            self.n,
            ms(self.p50),
            ms(self.p90),
            ms(self.p99),
            ms(self.mean)
        );
    }
}

/// One keep-alive GET with an optional `Accept-Encoding`, timed until the last body byte
/// arrived; the length is of the bytes as sent (reqwest is built without decompression). The
/// body is counted, not kept: Prometheus runs elsewhere, so its buffers must not weigh on a
/// memory figure.
pub(crate) async fn fetch_encoded(
    client: &reqwest::Client,
    base: &str,
    path: &str,
    encoding: Option<&str>,
) -> (Duration, usize) {
    let start = Instant::now();
    let mut req = client.get(format!("{base}{path}"));
    if let Some(encoding) = encoding {
        req = req.header(reqwest::header::ACCEPT_ENCODING, encoding);
    }
    let mut resp = req.send().await.unwrap();
    assert!(resp.status().is_success(), "{path}: {}", resp.status());
    let sent = resp.headers().get(reqwest::header::CONTENT_ENCODING);
    assert_eq!(
        sent.and_then(|v| v.to_str().ok()),
        encoding,
        "{path}: encoding"
    );
    let mut len = 0;
    while let Some(chunk) = resp.chunk().await.unwrap() {
        len += chunk.len();
    }
    (start.elapsed(), len)
}

/// The values of every series of `family` (labelled) in `text`.
pub(crate) fn values<'a>(text: &'a str, family: &'a str) -> impl Iterator<Item = f64> + 'a {
    text.lines()
        .filter(move |l| {
            l.strip_prefix(family)
                .is_some_and(|rest| rest.starts_with('{'))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
}

/// The CPU's model name from /proc/cpuinfo, for the figures' heading.
pub(crate) fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("model name"))?;
            Some(line.split_once(':')?.1.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

/// The blocks of `last` that a poll compressed: those it did not share with `previous`, the
/// snapshot before it (`SnapshotBuilder::after`).
pub(crate) fn changed_blocks<'a>(
    last: &'a fleet_core::snapshot::Snapshot,
    previous: &fleet_core::snapshot::Snapshot,
) -> Vec<&'a [u8]> {
    let shared = |b: &fleet_core::snapshot::FamilyBlock| {
        previous
            .blocks()
            .iter()
            .any(|p| p.samples.as_ptr() == b.samples.as_ptr())
    };
    last.blocks()
        .iter()
        .filter(|b| !shared(b))
        .map(|b| &b.samples[..])
        .collect()
}
