//! Helpers the simulators share: deterministic noise, values that move with time, dates, plain
//! HTTP answers and a gauge of requests in flight. Nothing here knows any device.

use std::f64::consts::TAU;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use md5::{Digest, Md5};

/// A poisoned lock only means another handler panicked mid-update of plain
/// data; the data is still usable, and the simulator must keep answering.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Requests being served now, and the most served at once.
#[derive(Default)]
pub(crate) struct InFlightGauge {
    now: AtomicUsize,
    max: AtomicUsize,
}

impl InFlightGauge {
    /// Counts a request as in flight until the guard drops, however the handler ends (including
    /// when hyper drops it because the client went away).
    pub(crate) fn enter(&self) -> InFlight<'_> {
        let now_serving = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.max.fetch_max(now_serving, Ordering::SeqCst);
        InFlight(&self.now)
    }

    /// The highest count seen.
    pub(crate) fn max(&self) -> usize {
        self.max.load(Ordering::SeqCst)
    }
}

/// One request in flight, until dropped.
pub(crate) struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The first half of a body (on a character boundary), as a connection cut mid-answer leaves it.
pub(crate) fn first_half(text: &str) -> String {
    let mut cut = text.len() / 2;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    text[..cut].to_owned()
}

/// `n` empty JSON objects separated by commas (`{},{},{}`), the list a hostile device pads an
/// answer with: three bytes an entry, nothing in it to read.
pub(crate) fn empty_objects(n: usize) -> String {
    let mut list = "{},".repeat(n);
    list.pop();
    list
}

pub(crate) fn mix(mut x: u64) -> u64 {
    // splitmix64: cheap, stateless, good enough to look random.
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A value in `[0, 1)` fixed by seed, a tag naming the quantity, and an index.
pub(crate) fn unit(seed: u64, tag: u64, i: u64) -> f64 {
    (mix(seed ^ mix(tag ^ mix(i))) >> 11) as f64 / (1u64 << 53) as f64
}

/// A byte flow whose rate wobbles around `mean` and whose total is the exact
/// integral of that rate, so totals only grow and agree with the rates.
#[derive(Clone, Copy)]
pub(crate) struct Flow {
    pub base: f64,
    mean: f64,
    amp: f64,
    omega: f64,
    phase: f64,
}

impl Flow {
    pub(crate) fn new(seed: u64, tag: u64, idx: u64, base: f64, mean: f64) -> Flow {
        let period = 60.0 + 540.0 * unit(seed, tag, idx.wrapping_mul(4));
        Flow {
            base,
            mean,
            amp: 0.2 + 0.6 * unit(seed, tag, idx.wrapping_mul(4).wrapping_add(1)),
            omega: TAU / period,
            phase: TAU * unit(seed, tag, idx.wrapping_mul(4).wrapping_add(2)),
        }
    }

    pub(crate) fn smooth_rate(&self, t: f64) -> f64 {
        self.mean * (1.0 + self.amp * (self.omega * t + self.phase).sin())
    }

    pub(crate) fn total(&self, t: f64) -> f64 {
        self.base + self.mean * t
            - self.mean * self.amp / self.omega
                * ((self.omega * t + self.phase).cos() - self.phase.cos())
    }
}

/// A simulator's clock: the time since it started, plus what a benchmark skipped ahead
/// ([`SimClock::skip`]) to see the values a real poll interval apart without waiting for it.
pub(crate) struct SimClock {
    started: std::time::Instant,
    started_unix: u64,
    skipped_ms: std::sync::atomic::AtomicU64,
}

impl SimClock {
    pub(crate) fn new() -> SimClock {
        SimClock {
            started: std::time::Instant::now(),
            started_unix: unix_now(),
            skipped_ms: Default::default(),
        }
    }

    fn skipped(&self) -> std::time::Duration {
        let ms = self.skipped_ms.load(std::sync::atomic::Ordering::SeqCst);
        std::time::Duration::from_millis(ms)
    }

    /// Seconds since the simulator started.
    pub(crate) fn seconds(&self) -> f64 {
        (self.started.elapsed() + self.skipped()).as_secs_f64()
    }

    /// The simulated Unix time, in seconds.
    pub(crate) fn unix_now(&self) -> u64 {
        unix_now() + self.skipped().as_secs()
    }

    pub(crate) fn started_unix(&self) -> u64 {
        self.started_unix
    }

    pub(crate) fn skip(&self, d: std::time::Duration) {
        let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        self.skipped_ms
            .fetch_add(ms, std::sync::atomic::Ordering::SeqCst);
    }
}

pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
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

/// `YYYY-MM-DD HH:MM:SS` of a Unix time shifted by `offset` seconds (the device's time zone).
pub(crate) fn datetime(unix: u64, offset: u64) -> String {
    datetime_with(unix + offset, ' ')
}

/// `YYYY-MM-DD<sep>HH:MM:SS` of a Unix time, with the separator an API's format uses.
pub(crate) fn datetime_with(unix: u64, sep: char) -> String {
    let (y, m, d) = civil_from_days((unix / 86_400) as i64);
    let s = unix % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02}{sep}{:02}:{:02}:{:02}",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

pub(crate) fn md5_hex(s: &str) -> String {
    Md5::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A fresh self-signed certificate for `127.0.0.1` and `localhost` (PEM) and a TLS server
/// config that serves it over HTTP/1.1, as devices with a factory certificate do.
pub(crate) fn self_signed_tls(
) -> std::io::Result<(String, std::sync::Arc<tokio_rustls::rustls::ServerConfig>)> {
    use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    let invalid = |e: &dyn std::fmt::Display| std::io::Error::other(e.to_string());
    let ck = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()])
        .map_err(|e| invalid(&e))?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.signing_key.serialize_der()));
    let provider = std::sync::Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let mut config = tokio_rustls::rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(&e))?
        .with_no_client_auth()
        .with_single_cert(vec![ck.cert.der().clone()], key)
        .map_err(|e| invalid(&e))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((ck.cert.pem(), std::sync::Arc::new(config)))
}

pub(crate) fn json_response(status: StatusCode, body: impl Into<String>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.into(),
    )
        .into_response()
}

/// The error page a web server (or a proxy in front of the device) sends.
pub(crate) fn html_response(status: StatusCode, title: &str) -> Response {
    let page = format!(
        "<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n\
         <center><h1>{title}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
    );
    (status, [(header::CONTENT_TYPE, "text/html")], page).into_response()
}

/// A proxy's 502 page with status 200, where the device's JSON was expected.
pub(crate) fn proxy_page() -> Response {
    html_response(StatusCode::OK, "502 Bad Gateway")
}

/// The device's web server failing: its 500 page.
pub(crate) fn server_error_page() -> Response {
    html_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        "500 Internal Server Error",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(datetime(1_737_201_695, 8 * 3600), "2025-01-18 20:01:35");
        assert_eq!(datetime(0, 0), "1970-01-01 00:00:00");
    }

    #[test]
    fn flows_only_grow() {
        let f = Flow::new(7, 1, 1, 1000.0, 500.0);
        let mut last = f.total(0.0);
        for s in 1..5000 {
            let now = f.total(s as f64 * 0.7);
            assert!(now >= last);
            last = now;
        }
    }

    #[test]
    fn a_skipped_clock_reads_that_much_later_and_keeps_its_start() {
        let clock = SimClock::new();
        let (t, now) = (clock.seconds(), clock.unix_now());
        clock.skip(std::time::Duration::from_secs(90));
        clock.skip(std::time::Duration::from_millis(500));
        let skipped = clock.seconds() - t;
        assert!((90.5..91.5).contains(&skipped), "{skipped}");
        assert!((90..=92).contains(&(clock.unix_now() - now)));
        assert!(clock.started_unix() <= now);
    }

    #[test]
    fn md5_of_admin() {
        assert_eq!(md5_hex("admin"), "21232f297a57a5a743894a0e4a801fc3");
    }
}
