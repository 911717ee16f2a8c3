//! `http_server_config` and `rate_limit`: the headers added to every response and the
//! server-wide request rate.
//!
//! Policy: as exporter-toolkit, only its five security headers may be set (two of them only to
//! their well-defined values), so every exporter of a site answers alike; they are on every
//! response, 401s included. The rate limit is one token bucket for the whole server, checked
//! before anything else (basic auth included), that answers 429 past it. HTTP/2 is not served:
//! `http2: true`, the toolkit's default, is accepted and TLS clients are offered HTTP/1.1 by
//! ALPN, which every HTTP/2 client falls back to. (A graceful shutdown would otherwise wait
//! for each HTTP/2 client to answer its GOAWAY ping, where idle HTTP/1.1 connections are
//! simply closed.)

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde::Deserialize;
use tracing::info;

use super::WebConfigError;

/// exporter-toolkit's headers and, where it restricts them, their allowed values.
const HEADERS: &[(&str, &[&str])] = &[
    ("Strict-Transport-Security", &[]),
    ("X-Content-Type-Options", &["nosniff"]),
    ("X-Frame-Options", &["deny", "sameorigin"]),
    ("X-XSS-Protection", &[]),
    ("Content-Security-Policy", &[]),
];

/// `http_server_config` as written.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHttp {
    /// The toolkit's default is on; accepted either way, HTTP/1.1 is served.
    http2: Option<bool>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
}

/// `rate_limit` as written.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRateLimit {
    interval: Option<serde_json::Value>,
    burst: Option<u64>,
}

/// `http_server_config` checked.
#[derive(Debug, Clone, Default)]
pub(super) struct HttpSettings {
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl HttpSettings {
    pub(super) fn new(raw: RawHttp) -> Result<Self, WebConfigError> {
        let mut headers = Vec::new();
        for (name, value) in raw.headers {
            let key = format!("http_server_config.headers.{name}");
            let Some((_, allowed)) = HEADERS.iter().find(|(h, _)| *h == name) else {
                let names: Vec<_> = HEADERS.iter().map(|(h, _)| *h).collect();
                return Err(WebConfigError(format!(
                    "{key}: this header can not be configured; the ones that can are {}",
                    names.join(", ")
                )));
            };
            // Blank means unset, as in exporter-toolkit.
            if value.is_empty() {
                continue;
            }
            if !allowed.is_empty() && !allowed.contains(&value.as_str()) {
                return Err(WebConfigError(format!(
                    "{key}: {value:?} is not one of {}",
                    allowed.join(", ")
                )));
            }
            let value =
                HeaderValue::from_str(&value).map_err(|e| WebConfigError(format!("{key}: {e}")))?;
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| WebConfigError(format!("{key}: {e}")))?;
            headers.push((name, value));
        }
        if raw.http2 == Some(true) {
            info!(
                "http_server_config.http2: serving HTTP/1.1 only; HTTP/2 clients fall back to it"
            );
        }
        Ok(HttpSettings { headers })
    }
}

/// `rate_limit` checked: `None` when there is none (no key, or `interval: 0`).
pub(super) fn rate_limit(raw: RawRateLimit) -> Result<Option<RateLimit>, WebConfigError> {
    let interval = match raw.interval {
        None | Some(serde_json::Value::Null) => Duration::ZERO,
        Some(serde_json::Value::Number(n)) if n.as_f64() == Some(0.0) => Duration::ZERO,
        Some(serde_json::Value::String(s)) if s.trim() == "0" => Duration::ZERO,
        Some(serde_json::Value::String(s)) => humantime::parse_duration(s.trim()).map_err(|e| {
            WebConfigError(format!(
                "rate_limit.interval: {s:?} is not a duration like \"1s\" or \"100ms\": {e}"
            ))
        })?,
        Some(other) => {
            return Err(WebConfigError(format!(
                "rate_limit.interval: {other} is not a duration; write one with its unit, like \
                 \"1s\" or \"100ms\""
            )))
        }
    };
    if interval.is_zero() {
        return Ok(None);
    }
    let burst =
        match raw.burst {
            Some(b) if b >= 1 => u32::try_from(b).unwrap_or(u32::MAX),
            // A bucket that holds nothing refuses every request.
            _ => return Err(WebConfigError(
                "rate_limit.burst: must be at least 1 when rate_limit.interval is set, or every \
                 request would be refused"
                    .into(),
            )),
        };
    Ok(Some(RateLimit { interval, burst }))
}

/// One request per `interval` on average, up to `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct RateLimit {
    interval: Duration,
    burst: u32,
}

/// A token bucket: full at the start, one token back per `interval`, `burst` at most.
struct Bucket {
    limit: RateLimit,
    /// Tokens left and when they were counted.
    state: Mutex<(f64, Instant)>,
}

impl Bucket {
    fn take(&self) -> bool {
        let now = Instant::now();
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let refill = now.duration_since(state.1).as_secs_f64() / self.limit.interval.as_secs_f64();
        state.0 = (state.0 + refill).min(f64::from(self.limit.burst));
        state.1 = now;
        if state.0 >= 1.0 {
            state.0 -= 1.0;
            true
        } else {
            false
        }
    }
}

/// `router` with `http`'s headers on every response, behind `limit`.
pub(super) fn apply(router: Router, http: &HttpSettings, limit: Option<RateLimit>) -> Router {
    let router = if http.headers.is_empty() {
        router
    } else {
        router.layer(middleware::from_fn_with_state(
            Arc::new(http.headers.clone()),
            add_headers,
        ))
    };
    match limit {
        None => router,
        Some(limit) => router.layer(middleware::from_fn_with_state(
            Arc::new(Bucket {
                limit,
                state: Mutex::new((f64::from(limit.burst), Instant::now())),
            }),
            rate_limited,
        )),
    }
}

async fn add_headers(
    State(headers): State<Arc<Vec<(HeaderName, HeaderValue)>>>,
    req: Request,
    next: Next,
) -> Response {
    let mut resp = next.run(req).await;
    for (name, value) in headers.iter() {
        resp.headers_mut().insert(name.clone(), value.clone());
    }
    resp
}

async fn rate_limited(State(bucket): State<Arc<Bucket>>, req: Request, next: Next) -> Response {
    if bucket.take() {
        next.run(req).await
    } else {
        (StatusCode::TOO_MANY_REQUESTS, "Too Many Requests\n").into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_holds_burst_and_refills_one_per_interval() {
        let limit = RateLimit {
            interval: Duration::from_millis(50),
            burst: 3,
        };
        let bucket = Bucket {
            limit,
            state: Mutex::new((3.0, Instant::now())),
        };
        assert!((0..3).all(|_| bucket.take()));
        assert!(!bucket.take());
        std::thread::sleep(Duration::from_millis(60));
        assert!(bucket.take());
        assert!(!bucket.take());
    }
}
