//! The one serve loop: every listener, plain or TLS, with one router, under the limits that keep
//! the exporter answering when clients misbehave.
//!
//! Policy:
//! - **Connections are capped** (`--web.max-connections`). At the cap, a new connection takes
//!   the place of the connection that has been idle longest (no request in flight: one that has
//!   sent nothing, half a request head, or is between keep-alive requests), so a flood of idle
//!   or slow connections holds its share but cannot lock out a scraper. When every connection
//!   has a request in flight the newcomer is closed at once.
//! - **Every phase has a deadline**, kept by [`Timed`] around the connection: the first request
//!   head within `header_timeout` of the accept, every later one within `header_timeout` of its
//!   first byte, at most `idle_timeout` between keep-alive requests, and no more than
//!   `write_timeout` without the client taking any of its response. A connection past its
//!   deadline is dropped, and the response body it held with it.
//!   hyper's own `header_read_timeout` is not used: its clock starts when hyper begins waiting
//!   for a head, so it also bounds keep-alive idleness and cannot give the two different
//!   budgets; hyper has no write timeout at all.
//! - **Shutdown has a deadline**: listeners close at once, idle connections are closed, requests
//!   in flight get `drain_timeout` to finish, then every connection is dropped.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use axum::Router;
use http_body::{Frame, SizeHint};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch, Notify};
use tokio::task::JoinSet;
use tokio::time::{Instant, Sleep};
use tower::ServiceExt;
use tracing::debug;

use super::{Connection, Listener};

/// What bounds the HTTP side. The defaults are what the flags default to.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Open connections at most (`--web.max-connections`).
    pub max_connections: usize,
    /// For a request head to arrive: from the accept for the first, from its first byte after.
    pub header_timeout: Duration,
    /// Between two requests on a keep-alive connection.
    pub idle_timeout: Duration,
    /// Without the client taking any byte of a response it is sent.
    pub write_timeout: Duration,
    /// For requests in flight to finish once shutdown begins.
    pub drain_timeout: Duration,
}

/// `--web.max-connections`' default: far more than any fleet's scrapers, far below the
/// open-files limit Go-style raising gives.
pub const DEFAULT_MAX_CONNECTIONS: usize = 512;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            header_timeout: Duration::from_secs(10),
            // Longer than Prometheus' usual scrape intervals, so a scraper keeps its connection.
            idle_timeout: Duration::from_secs(120),
            // Past Prometheus' default scrape timeout (10 s): nobody legitimate is still waiting.
            write_timeout: Duration::from_secs(15),
            // With the pollers' own 3 s, SIGTERM ends the process within 5 s.
            drain_timeout: Duration::from_millis(1500),
        }
    }
}

/// Every listener the exporter serves on; all get the same router.
pub struct Listeners(Vec<Listener>);

impl Listeners {
    pub fn new(listeners: Vec<Listener>) -> Listeners {
        Listeners(listeners)
    }
}

impl From<Listener> for Listeners {
    fn from(listener: Listener) -> Listeners {
        Listeners(vec![listener])
    }
}

impl From<TcpListener> for Listeners {
    fn from(tcp: TcpListener) -> Listeners {
        Listeners(vec![tcp.into()])
    }
}

/// Serves `router` on `listeners` with the default [`Limits`] until `shutdown` completes.
/// Put [`super::protect`] around `router` for the web config's basic auth.
pub async fn serve(
    listeners: impl Into<Listeners>,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    serve_with(listeners, router, &Limits::default(), shutdown).await
}

/// Serves `router` on every listener under `limits` until `shutdown` completes, then drains
/// requests in flight for at most `limits.drain_timeout`.
pub async fn serve_with(
    listeners: impl Into<Listeners>,
    router: Router,
    limits: &Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let Listeners(listeners) = listeners.into();
    if listeners.is_empty() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "no listener"));
    }
    let (accepted, mut incoming) = mpsc::channel::<(Connection, SocketAddr)>(64);
    let mut acceptors = JoinSet::new();
    for mut listener in listeners {
        let accepted = accepted.clone();
        acceptors.spawn(async move {
            loop {
                let conn = axum::serve::Listener::accept(&mut listener).await;
                if accepted.send(conn).await.is_err() {
                    return;
                }
            }
        });
    }
    drop(accepted);

    let registry = Arc::new(Registry::default());
    let (stop, stopping) = watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            Some((conn, peer)) = incoming.recv() => {
                let Some(state) = registry.admit(limits.max_connections) else {
                    debug!(%peer, "every connection is busy: refusing one more");
                    continue;
                };
                connections.spawn(serve_connection(
                    conn,
                    state,
                    registry.clone(),
                    router.clone(),
                    limits.clone(),
                    stopping.clone(),
                ));
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    // Listeners close here: nobody new gets in.
    acceptors.abort_all();
    drop(incoming);
    let _ = stop.send(true);
    let drained = tokio::time::timeout(limits.drain_timeout, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        debug!(
            left = connections.len(),
            "requests still in flight at the shutdown deadline: dropping them"
        );
        connections.abort_all();
    }
    Ok(())
}

async fn serve_connection(
    conn: Connection,
    state: Arc<ConnState>,
    registry: Arc<Registry>,
    router: Router,
    limits: Limits,
    mut stopping: watch::Receiver<bool>,
) {
    let _registered = Registered {
        registry,
        id: state.id,
    };
    let io = Timed::new(conn, state.clone(), limits);
    let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        let busy = Busy::begin(&state);
        let router = router.clone();
        async move {
            let resp = router.oneshot(req.map(Body::new)).await?;
            Ok::<_, Infallible>(resp.map(|body| hold(body, busy)))
        }
    });
    let kill = io.state.clone();
    let conn = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(e) = result {
                debug!(error = %e, "connection ended");
            }
        }
        () = kill.evicted.notified() => debug!("idle connection closed to admit a new one"),
        _ = async { stopping.wait_for(|stop| *stop).await.is_ok() } => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

/// The open connections, for the cap and for choosing whom to close at it.
#[derive(Default)]
struct Registry {
    inner: Mutex<RegistryInner>,
}

#[derive(Default)]
struct RegistryInner {
    next_id: u64,
    open: HashMap<u64, Arc<ConnState>>,
}

impl Registry {
    /// A new connection's state, making room at the cap by closing the connection idle
    /// longest; `None` when every open connection has a request in flight.
    fn admit(&self, max: usize) -> Option<Arc<ConnState>> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        while inner.open.len() >= max.max(1) {
            let victim = inner
                .open
                .values()
                .filter_map(|c| c.idle_since().map(|since| (since, c.id)))
                .min()?
                .1;
            if let Some(c) = inner.open.remove(&victim) {
                c.evicted.notify_one();
            }
        }
        inner.next_id += 1;
        let state = Arc::new(ConnState::new(inner.next_id));
        inner.open.insert(state.id, state.clone());
        Some(state)
    }

    fn remove(&self, id: u64) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.open.remove(&id);
    }
}

/// Takes a connection off the registry however its task ends, aborted included.
struct Registered {
    registry: Arc<Registry>,
    id: u64,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.registry.remove(self.id);
    }
}

/// What one connection is doing, shared by its IO (which keeps the deadlines) and its requests
/// (which say when one is in flight).
struct ConnState {
    id: u64,
    phase: Mutex<Phase>,
    evicted: Notify,
}

struct Phase {
    /// Requests whose response has not been fully handed over yet.
    in_flight: u32,
    /// Requests answered so far.
    served: u64,
    /// When the connection last had nothing in flight (the accept, or the end of a response).
    idle_since: Instant,
    /// When the first byte of the next request head arrived.
    head_started: Option<Instant>,
    /// When a response in flight last made progress (its start, or the client taking bytes).
    progress: Instant,
}

impl ConnState {
    fn new(id: u64) -> Self {
        let now = Instant::now();
        ConnState {
            id,
            phase: Mutex::new(Phase {
                in_flight: 0,
                served: 0,
                idle_since: now,
                head_started: None,
                progress: now,
            }),
            evicted: Notify::new(),
        }
    }

    fn phase(&self) -> MutexGuard<'_, Phase> {
        self.phase.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// When it went idle, or `None` while a request is in flight.
    fn idle_since(&self) -> Option<Instant> {
        let phase = self.phase();
        (phase.in_flight == 0).then_some(phase.idle_since)
    }

    fn deadline(&self, limits: &Limits) -> Instant {
        let phase = self.phase();
        if phase.in_flight > 0 {
            phase.progress + limits.write_timeout
        } else if let Some(started) = phase.head_started {
            started + limits.header_timeout
        } else if phase.served == 0 {
            phase.idle_since + limits.header_timeout
        } else {
            phase.idle_since + limits.idle_timeout
        }
    }

    fn read_some(&self) {
        let mut phase = self.phase();
        if phase.in_flight == 0 && phase.head_started.is_none() {
            phase.head_started = Some(Instant::now());
        }
    }

    fn wrote_some(&self) {
        self.phase().progress = Instant::now();
    }
}

/// One request in flight on its connection, from its head until its response body is dropped
/// (sent whole, or abandoned with the connection).
struct Busy(Arc<ConnState>);

impl Busy {
    fn begin(state: &Arc<ConnState>) -> Busy {
        let mut phase = state.phase();
        phase.in_flight += 1;
        phase.head_started = None;
        phase.progress = Instant::now();
        drop(phase);
        Busy(state.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        let mut phase = self.0.phase();
        phase.in_flight -= 1;
        if phase.in_flight == 0 {
            phase.served += 1;
            phase.idle_since = Instant::now();
        }
    }
}

/// `body`, keeping `guard` alive until the body is dropped: what ties a scrape slot or a
/// connection's busy state to the bytes still to send.
pub(crate) fn hold<G: Send + 'static>(body: Body, guard: G) -> Body {
    Body::new(Held {
        inner: body,
        _guard: guard,
    })
}

struct Held<G> {
    inner: Body,
    _guard: G,
}

impl<G: Send + 'static> HttpBody for Held<G> {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        // `Body` is `Unpin` and the guard is never pinned, so `Held` is `Unpin` too.
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<G> Unpin for Held<G> {}

/// A connection whose reads and writes fail with `TimedOut` once its phase's deadline passes
/// with the client still owing bytes or not taking them.
struct Timed {
    io: Connection,
    state: Arc<ConnState>,
    limits: Limits,
    timer: Pin<Box<Sleep>>,
}

impl Timed {
    fn new(io: Connection, state: Arc<ConnState>, limits: Limits) -> Self {
        let deadline = state.deadline(&limits);
        Timed {
            io,
            state,
            limits,
            timer: Box::pin(tokio::time::sleep_until(deadline)),
        }
    }

    /// Called when the connection would wait: an error once the deadline has passed, else the
    /// timer is armed to wake the connection at the deadline.
    fn poll_deadline<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        let deadline = self.state.deadline(&self.limits);
        if self.timer.deadline() != deadline {
            self.timer.as_mut().reset(deadline);
        }
        match self.timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "client too slow: connection deadline passed",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncRead for Timed {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.state.read_some();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending => this.poll_deadline(cx),
            ready => ready,
        }
    }
}

impl AsyncWrite for Timed {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.io).poll_write(cx, buf) {
            Poll::Ready(Ok(n)) => {
                this.state.wrote_some();
                Poll::Ready(Ok(n))
            }
            Poll::Pending => this.poll_deadline(cx),
            ready => ready,
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.io).poll_write_vectored(cx, bufs) {
            Poll::Ready(Ok(n)) => {
                this.state.wrote_some();
                Poll::Ready(Ok(n))
            }
            Poll::Pending => this.poll_deadline(cx),
            ready => ready,
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.io).poll_flush(cx) {
            Poll::Pending => this.poll_deadline(cx),
            ready => ready,
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.io).poll_shutdown(cx) {
            Poll::Pending => this.poll_deadline(cx),
            ready => ready,
        }
    }
}

/// One `--web.listen-address`: `host:port` or `[v6]:port` as given, or `:PORT` for every
/// interface, IPv4 and IPv6.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenAddr {
    AllInterfaces(u16),
    Addr(SocketAddr),
}

impl FromStr for ListenAddr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if let Some(port) = s.strip_prefix(':') {
            return port
                .parse()
                .map(ListenAddr::AllInterfaces)
                .map_err(|e| format!("{s:?}: bad port: {e}"));
        }
        s.parse().map(ListenAddr::Addr).map_err(|e| {
            format!("{s:?}: {e} (give host:port, [v6]:port, or :PORT for every interface)")
        })
    }
}

impl std::fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ListenAddr::AllInterfaces(port) => write!(f, ":{port}"),
            ListenAddr::Addr(addr) => addr.fmt(f),
        }
    }
}

impl From<SocketAddr> for ListenAddr {
    fn from(addr: SocketAddr) -> Self {
        ListenAddr::Addr(addr)
    }
}

impl ListenAddr {
    /// Where a client on this host reaches it: loopback for the unspecified addresses.
    pub fn local(self) -> SocketAddr {
        match self {
            ListenAddr::AllInterfaces(port) => (Ipv4Addr::LOCALHOST, port).into(),
            ListenAddr::Addr(SocketAddr::V4(a)) if a.ip().is_unspecified() => {
                (Ipv4Addr::LOCALHOST, a.port()).into()
            }
            ListenAddr::Addr(SocketAddr::V6(a)) if a.ip().is_unspecified() => {
                (Ipv6Addr::LOCALHOST, a.port()).into()
            }
            ListenAddr::Addr(a) => a,
        }
    }

    /// The sockets it takes: one, or for `:PORT` a dual-stack `[::]` socket, or `[::]` and
    /// `0.0.0.0` where the system will not make dual-stack sockets, or `0.0.0.0` alone where it
    /// has no IPv6.
    pub fn bind(self) -> io::Result<Vec<TcpListener>> {
        match self {
            ListenAddr::Addr(addr) => Ok(vec![bind(addr, None)?]),
            ListenAddr::AllInterfaces(port) => {
                let v6 = (Ipv6Addr::UNSPECIFIED, port).into();
                let v4 = (Ipv4Addr::UNSPECIFIED, port).into();
                match bind(v6, Some(false)) {
                    Ok(dual) => Ok(vec![dual]),
                    Err(e) if e.kind() == io::ErrorKind::AddrInUse => Err(e),
                    Err(e) => match bind(v6, Some(true)) {
                        Ok(only_v6) => Ok(vec![only_v6, bind(v4, None)?]),
                        Err(_) => {
                            debug!(error = %e, "no IPv6 socket: listening on IPv4 only");
                            Ok(vec![bind(v4, None)?])
                        }
                    },
                }
            }
        }
    }
}

fn bind(addr: SocketAddr, only_v6: Option<bool>) -> io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if let Some(only_v6) = only_v6 {
        socket.set_only_v6(only_v6)?;
    }
    // As tokio's and Go's listeners: a restart need not wait out TIME_WAIT.
    #[cfg(unix)]
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    TcpListener::from_std(socket.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses_as_exporter_toolkit_spells_them() {
        assert_eq!(":9877".parse(), Ok(ListenAddr::AllInterfaces(9877)));
        assert_eq!(
            "127.0.0.1:1".parse(),
            Ok(ListenAddr::Addr("127.0.0.1:1".parse().unwrap()))
        );
        assert_eq!(
            "[::1]:2".parse(),
            Ok(ListenAddr::Addr("[::1]:2".parse().unwrap()))
        );
        assert!(":x".parse::<ListenAddr>().unwrap_err().contains("bad port"));
        assert!("9877".parse::<ListenAddr>().unwrap_err().contains(":PORT"));
        assert_eq!(
            ListenAddr::AllInterfaces(5).local(),
            "127.0.0.1:5".parse().unwrap()
        );
        assert_eq!(
            "[::]:6".parse::<ListenAddr>().unwrap().local(),
            "[::1]:6".parse().unwrap()
        );
    }

    #[tokio::test]
    async fn all_interfaces_answers_on_ipv4_and_ipv6_loopback() {
        let listeners = ListenAddr::AllInterfaces(0).bind().unwrap();
        for listener in &listeners {
            let local = listener.local_addr().unwrap();
            let mut loopbacks = vec![SocketAddr::from((Ipv4Addr::LOCALHOST, local.port()))];
            if local.is_ipv6() {
                loopbacks.push((Ipv6Addr::LOCALHOST, local.port()).into());
            }
            if listeners.len() > 1 {
                // Separate sockets: each answers its own family.
                loopbacks.retain(|a| a.is_ipv6() == local.is_ipv6());
            }
            for addr in loopbacks {
                let (c, a) = tokio::join!(tokio::net::TcpStream::connect(addr), listener.accept());
                c.unwrap_or_else(|e| panic!("{addr}: {e}"));
                a.unwrap();
            }
        }
    }
}
