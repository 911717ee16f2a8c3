//! The HTTP endpoints. Nothing here waits for a device: every answer comes from the store.

use std::convert::Infallible;
use std::fmt::Write;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::SystemTime;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{middleware, Extension, Router};
use http_body::{Frame, SizeHint};
use serde::Deserialize;
use tokio::sync::Semaphore;
use tower_http::compression::{CompressionLayer, CompressionLevel};

use fleet_core::app::{App, REVISION, VERSION};
use fleet_core::exposition::{self, Format};
use fleet_core::snapshot::Snapshot;
use fleet_core::time::unix_seconds;

use crate::self_metrics::{self, count_requests, HttpRequests};

/// What the flags choose about the endpoints.
#[derive(Debug, Clone)]
pub struct Options {
    /// Where every target's series are served (`--web.telemetry-path`).
    pub telemetry_path: String,
    /// The exporter's own process and HTTP series on that path (off with
    /// `--web.disable-exporter-metrics`).
    pub exporter_metrics: bool,
    /// Scrapes (telemetry path and `/probe`) in flight at most, bodies still being sent
    /// included; past it they are answered 503 at once (`--web.max-requests`, 0 for no limit).
    pub max_requests: usize,
}

/// `--web.max-requests`' default, node_exporter's.
pub const DEFAULT_MAX_REQUESTS: usize = 40;

impl Default for Options {
    fn default() -> Self {
        Options {
            telemetry_path: "/metrics".into(),
            exporter_metrics: true,
            max_requests: DEFAULT_MAX_REQUESTS,
        }
    }
}

/// The endpoints with the default options.
pub fn router(app: Arc<App>) -> Router {
    router_with(app, &Options::default())
}

pub fn router_with(app: Arc<App>, options: &Options) -> Router {
    let requests = Arc::new(HttpRequests::default());
    let exporter_metrics = options.exporter_metrics.then(|| requests.clone());
    let scrapes = ScrapeSlots::new(options.max_requests);
    let limited = || middleware::from_fn_with_state(scrapes.clone(), limit_scrapes);
    Router::new()
        .route(&options.telemetry_path, get(metrics).layer(limited()))
        .route("/probe", get(probe).layer(limited()))
        .route("/sd", get(crate::sd::sd))
        .route("/-/healthy", get(|| async { "Healthy\n" }))
        .route("/-/ready", get(ready))
        .route("/-/reload", post(reload))
        .route("/", get(index))
        .with_state(app)
        .layer(Extension(Endpoints {
            telemetry_path: options.telemetry_path.clone().into(),
            exporter_metrics,
        }))
        .layer(middleware::from_fn_with_state(requests, count_requests))
        // The other pages, gzip-compressed when asked. `/metrics` and `/probe` compress their
        // own bodies (see `encode`), and the layer passes an encoded body through untouched.
        .layer(CompressionLayer::new().quality(CompressionLevel::Fastest))
}

/// What the handlers know of the options.
#[derive(Clone)]
struct Endpoints {
    telemetry_path: Arc<str>,
    /// The request counts the telemetry path shows, or `None` when the exporter's own series
    /// are off.
    exporter_metrics: Option<Arc<HttpRequests>>,
}

/// Paths the telemetry path may not take.
pub const RESERVED_PATHS: [&str; 6] = ["/", "/probe", "/sd", "/-/healthy", "/-/ready", "/-/reload"];

async fn metrics(
    State(app): State<Arc<App>>,
    Extension(endpoints): Extension<Endpoints>,
    headers: HeaderMap,
) -> Response {
    let mut sources = app.store().sources(None).unwrap_or_default();
    if let Some(requests) = &endpoints.exporter_metrics {
        sources.push(Arc::new(self_metrics::snapshot(requests)));
    }
    encode(&headers, sources)
}

/// The scrape slots of `--web.max-requests`; `None` for no limit.
#[derive(Clone)]
struct ScrapeSlots(Option<Arc<Semaphore>>);

impl ScrapeSlots {
    fn new(max: usize) -> Self {
        ScrapeSlots((max > 0).then(|| Arc::new(Semaphore::new(max))))
    }
}

/// A scrape holds its slot until its body is sent or dropped, so clients that stall reading
/// cannot pin more than `max_requests` bodies; past that, 503 at once, as promhttp answers.
async fn limit_scrapes(State(slots): State<ScrapeSlots>, req: Request, next: Next) -> Response {
    let Some(slots) = slots.0 else {
        return next.run(req).await;
    };
    let Ok(slot) = slots.try_acquire_owned() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "Too many concurrent scrapes (--web.max-requests)\n",
        )
            .into_response();
    };
    next.run(req).await.map(|body| crate::web::hold(body, slot))
}

#[derive(Deserialize)]
struct ProbeQuery {
    target: Option<String>,
}

async fn probe(
    State(app): State<Arc<App>>,
    Query(q): Query<ProbeQuery>,
    headers: HeaderMap,
) -> Response {
    let Some(name) = q.target else {
        return (StatusCode::BAD_REQUEST, "missing ?target=NAME\n").into_response();
    };
    match app.store().sources(Some(&name)) {
        Some(sources) => encode(&headers, sources),
        None => {
            let msg = match app.served_elsewhere(&name) {
                Some(owner) => format!(
                    "target {name:?} is polled by shard {owner}, not by this replica (shard {})\n",
                    app.shard()
                ),
                None => format!("unknown target {name:?}\n"),
            };
            (StatusCode::NOT_FOUND, msg).into_response()
        }
    }
}

/// Prometheus asks for gzip unless its scrape config sets `enable_compression: false`. The
/// samples were compressed at poll time, so a gzip body is joined from those pieces
/// (`exposition::Body::gzip`) and costs about what the plain one does; a client that does not ask gets the
/// uncompressed, zero-copy body.
fn encode(headers: &HeaderMap, sources: Vec<Arc<Snapshot>>) -> Response {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let format = Format::negotiate(accept);
    let content_type = (header::CONTENT_TYPE, format.content_type());
    let vary = (header::VARY, "accept-encoding");
    if accepts_gzip(headers) {
        let body = Frames(exposition::Body::gzip(format, sources));
        let encoding = (header::CONTENT_ENCODING, "gzip");
        ([content_type, vary, encoding], Body::new(body)).into_response()
    } else {
        let body = Frames(exposition::Body::plain(format, sources));
        ([content_type, vary], Body::new(body)).into_response()
    }
}

/// Whether `Accept-Encoding` takes gzip: `gzip` or `x-gzip` with a q-value above 0, as
/// `tower-http` (which compresses the other pages) decides; a q-value that is not a number in
/// 0..=1 makes that entry count for nothing.
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut parts = coding.split(';');
            let name = parts.next().unwrap_or("").trim();
            if !name.eq_ignore_ascii_case("gzip") && !name.eq_ignore_ascii_case("x-gzip") {
                return false;
            }
            match parts.next().map(str::trim) {
                None => true,
                Some(q) => q
                    .strip_prefix("q=")
                    .or_else(|| q.strip_prefix("Q="))
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .is_some_and(|q| q > 0.0 && q <= 1.0),
            }
        })
}

/// The exposition body as hyper sends it: frames cut as they go out, the exact length announced.
struct Frames(exposition::Body);

impl HttpBody for Frames {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.0.next_frame().map(|f| Ok(Frame::data(f))))
    }

    fn is_end_stream(&self) -> bool {
        self.0.remaining() == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.0.remaining())
    }
}

async fn ready(State(app): State<Arc<App>>) -> Response {
    if app.ready() {
        (StatusCode::OK, "Ready\n").into_response()
    } else {
        let waiting = app
            .store()
            .status()
            .iter()
            .filter(|t| !t.health.polled)
            .count();
        let msg = format!("Not ready: {waiting} target(s) not polled yet\n");
        (StatusCode::SERVICE_UNAVAILABLE, msg).into_response()
    }
}

async fn reload(State(app): State<Arc<App>>) -> Response {
    match app.reload().await {
        Ok(s) => format!(
            "Reloaded: {} added, {} removed, {} restarted, {} unchanged\n",
            s.added.len(),
            s.removed.len(),
            s.restarted.len(),
            s.unchanged
        )
        .into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("Reload failed: {e}\n"),
        )
            .into_response(),
    }
}

async fn index(
    State(app): State<Arc<App>>,
    Extension(endpoints): Extension<Endpoints>,
) -> Html<String> {
    let mut page = String::with_capacity(4096);
    let _ = write!(
        page,
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>fleet-exporter</title>\
         <style>body{{font-family:sans-serif;margin:2em}}td,th{{padding:.2em .8em;text-align:left}}\
         .down{{color:#b00}}</style></head><body><h1>fleet-exporter</h1>\
         <p>Version {VERSION} (revision {}), shard {}</p>\
         <p><a href=\"{}\">Metrics</a> · <a href=\"/-/healthy\">Health</a> · \
         <a href=\"/-/ready\">Readiness</a></p><h2>Targets</h2><table><tr><th>Target</th>\
         <th>Kind</th><th>State</th><th>Series</th><th>Last success</th><th>Last error</th></tr>",
        escape_html(REVISION),
        app.shard(),
        escape_html(&endpoints.telemetry_path)
    );
    let now = SystemTime::now();
    for t in app.store().status() {
        let h = &t.health;
        let state = match (h.polled, h.up) {
            (false, _) => "<td>pending</td>",
            (true, true) => "<td>up</td>",
            (true, false) => "<td class=\"down\">down</td>",
        };
        let last_success = h.last_success.map_or("never".to_string(), |s| {
            let ago = unix_seconds(now) - unix_seconds(s);
            format!("{ago:.0} s ago")
        });
        let _ = write!(
            page,
            "<tr><td><a href=\"/probe?target={}\">{}</a></td><td>{}</td>{state}<td>{}</td><td>{}</td><td>{}</td></tr>",
            escape_url_component(&t.name),
            escape_html(&t.name),
            t.kind,
            t.series,
            last_success,
            escape_html(h.last_error.as_deref().unwrap_or("")),
        );
    }
    page.push_str("</table></body></html>\n");
    Html(page)
}

fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn escape_url_component(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
