//! Device simulators: demo mode, tests and benchmarks share them. Each is written from the API
//! documents alone and never imports the driver it stands in for.
//!
//! What every simulator needs besides its own API lives here: the HTTP server's lifetime,
//! deterministic noise for moving values, and wall-clock helpers.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use md5::{Digest, Md5};
use tokio::net::TcpListener;
use tokio::sync::watch;

pub mod ikuai;
pub mod iot;

/// Serves `app` on `listener` in a spawned task until `stop` says so or its sender is dropped,
/// so a server never outlives the handle that owns the sender.
fn spawn_server(listener: TcpListener, app: Router, mut stop: watch::Receiver<bool>, name: &str) {
    let name = name.to_owned();
    tokio::spawn(async move {
        let shutdown = async move {
            let _ = stop.wait_for(|stopped| *stopped).await;
        };
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::warn!(error = %e, "{name} simulator stopped with an error");
        }
    });
}

/// A poisoned lock only means another handler panicked mid-update of plain
/// data; the data is still usable, and the simulator must keep answering.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Counts a request as in flight until dropped, however the handler ends (including when hyper
/// drops it because the client went away), and records the highest count seen.
struct InFlight<'a>(&'a AtomicUsize);

impl<'a> InFlight<'a> {
    fn enter(now: &'a AtomicUsize, max: &AtomicUsize) -> Self {
        let serving = now.fetch_add(1, Ordering::SeqCst) + 1;
        max.fetch_max(serving, Ordering::SeqCst);
        InFlight(now)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn json_response(status: StatusCode, body: impl Into<String>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.into(),
    )
        .into_response()
}

/// The error page a reverse proxy in front of a device sends.
fn html_response(status: StatusCode, title: &str) -> Response {
    let page = format!(
        "<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n\
         <center><h1>{title}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
    );
    (status, [(header::CONTENT_TYPE, "text/html")], page).into_response()
}

fn mix(mut x: u64) -> u64 {
    // splitmix64: cheap, stateless, good enough to look random.
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A value in `[0, 1)` fixed by seed, a tag naming the quantity, and an index.
fn unit(seed: u64, tag: u64, i: u64) -> f64 {
    (mix(seed ^ mix(tag ^ mix(i))) >> 11) as f64 / (1u64 << 53) as f64
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Devices of this kind show China Standard Time (UTC+8) in their date strings.
const TZ_OFFSET: u64 = 8 * 3600;

/// `2025-01-18`, in China Standard Time.
fn local_date(unix: u64) -> String {
    let (y, m, d) = civil_from_days(((unix + TZ_OFFSET) / 86_400) as i64);
    format!("{y:04}-{m:02}-{d:02}")
}

/// `2025-01-18 20:01:35`, in China Standard Time.
fn local_datetime(unix: u64) -> String {
    let s = (unix + TZ_OFFSET) % 86_400;
    format!(
        "{} {:02}:{:02}:{:02}",
        local_date(unix),
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

fn md5_hex(s: &str) -> String {
    Md5::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
