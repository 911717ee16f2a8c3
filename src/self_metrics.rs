//! The exporter's own series, on `/metrics` only: the process figures every Prometheus client
//! library exports (client_golang's `process_*` names), read from `/proc/self` when scraped,
//! and the HTTP requests the exporter has answered.
//!
//! Reading `/proc/self` costs a few tens of microseconds per scrape, against milliseconds of
//! device series, and is always current; nothing here is sampled in the background. Request
//! counts are keyed by the route that matched (a handful) and the status code, so the label set
//! stays bounded whatever paths clients ask for.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;

use fleet_core::snapshot::{Family, Snapshot, SnapshotBuilder};

static CPU: Family = Family::counter(
    "process_cpu_seconds_total",
    "Total user and system CPU time spent in seconds.",
    &[],
);
static RESIDENT: Family = Family::gauge(
    "process_resident_memory_bytes",
    "Resident memory size in bytes.",
    &[],
);
static VIRTUAL: Family = Family::gauge(
    "process_virtual_memory_bytes",
    "Virtual memory size in bytes.",
    &[],
);
static OPEN_FDS: Family =
    Family::gauge("process_open_fds", "Number of open file descriptors.", &[]);
static MAX_FDS: Family = Family::gauge(
    "process_max_fds",
    "Maximum number of open file descriptors.",
    &[],
);
static START_TIME: Family = Family::gauge(
    "process_start_time_seconds",
    "Start time of the process since unix epoch in seconds.",
    &[],
);
static HTTP_REQUESTS: Family = Family::counter(
    "fleet_exporter_http_requests_total",
    "HTTP requests the exporter answered, by route and status code.",
    &["handler", "code"],
);

/// Every family this module emits, for the metrics documentation check.
pub static SELF_FAMILIES: [&Family; 7] = [
    &CPU,
    &RESIDENT,
    &VIRTUAL,
    &OPEN_FDS,
    &MAX_FDS,
    &START_TIME,
    &HTTP_REQUESTS,
];

/// Requests answered so far, by route and status code.
#[derive(Debug, Default)]
pub struct HttpRequests(Mutex<BTreeMap<(String, u16), u64>>);

impl HttpRequests {
    fn count(&self, handler: &str, code: u16) {
        let mut counts = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match counts.get_mut(&(handler.to_string(), code)) {
            Some(n) => *n += 1,
            None => {
                counts.insert((handler.to_string(), code), 1);
            }
        }
    }
}

/// Middleware counting each answered request under the route that matched it, or `other`.
pub(crate) async fn count_requests(
    State(requests): State<Arc<HttpRequests>>,
    req: Request,
    next: Next,
) -> Response {
    let handler = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "other".to_string(), |p| p.as_str().to_string());
    let resp = next.run(req).await;
    requests.count(&handler, resp.status().as_u16());
    resp
}

/// The exporter's own series as of now.
pub(crate) fn snapshot(requests: &HttpRequests) -> Snapshot {
    let mut b = SnapshotBuilder::new(None);
    if let Some(p) = process::read() {
        b.add(&CPU, &[], p.cpu_seconds);
        b.add(&RESIDENT, &[], p.resident_bytes);
        b.add(&VIRTUAL, &[], p.virtual_bytes);
        b.add_opt(&OPEN_FDS, &[], p.open_fds);
        b.add_opt(&MAX_FDS, &[], p.max_fds);
        b.add_opt(&START_TIME, &[], p.start_time_seconds);
    }
    let counts = requests.0.lock().unwrap_or_else(|e| e.into_inner());
    for ((handler, code), n) in counts.iter() {
        b.add(&HTTP_REQUESTS, &[handler, &code.to_string()], *n as f64);
    }
    b.finish()
}

mod process {
    /// One reading of the process's figures.
    pub(super) struct Process {
        pub(super) cpu_seconds: f64,
        pub(super) resident_bytes: f64,
        pub(super) virtual_bytes: f64,
        pub(super) open_fds: Option<f64>,
        pub(super) max_fds: Option<f64>,
        pub(super) start_time_seconds: Option<f64>,
    }

    /// Reads `/proc/self`; `None` where there is no procfs.
    #[cfg(target_os = "linux")]
    pub(super) fn read() -> Option<Process> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        // The command name (field 2) may hold spaces and parentheses: fields count from the
        // last `)`, where field 3 (`state`) is index 0.
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        let field = |n: usize| fields.get(n - 3)?.parse::<f64>().ok();
        // SAFETY: sysconf only reads a configuration value.
        let (ticks, page) = unsafe {
            (
                libc::sysconf(libc::_SC_CLK_TCK) as f64,
                libc::sysconf(libc::_SC_PAGESIZE) as f64,
            )
        };
        let boot_time = std::fs::read_to_string("/proc/stat").ok().and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("btime "))?;
            line[6..].trim().parse::<f64>().ok()
        });
        Some(Process {
            cpu_seconds: (field(14)? + field(15)?) / ticks,
            virtual_bytes: field(23)?,
            resident_bytes: field(24)? * page,
            open_fds: std::fs::read_dir("/proc/self/fd")
                .ok()
                .map(|d| d.count() as f64),
            max_fds: max_open_files(),
            start_time_seconds: boot_time.zip(field(22)).map(|(b, s)| b + s / ticks),
        })
    }

    #[cfg(not(target_os = "linux"))]
    pub(super) fn read() -> Option<Process> {
        None
    }

    #[cfg(target_os = "linux")]
    fn max_open_files() -> Option<f64> {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes one rlimit struct, which `limit` is.
        (unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0)
            .then_some(limit.rlim_cur as f64)
    }
}
