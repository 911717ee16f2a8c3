//! The fault suite: every driver kind against devices that misbehave in the ways real networks
//! do, over real sockets. Each faulty target sits behind a [`FaultyDevice`], a raw TCP server
//! that plays one fault for any path (WebSocket upgrades included) and, once healed, forwards
//! bytes to a healthy simulator. Per kind, one exporter polls ten faulty targets (nine outside
//! the namespace) and one healthy one; the checks are those of issue 7: the right `reason`, no
//! device series while failing, the healthy target's cadence, fast scrapes, recovery within
//! about one interval, and bounded memory under a 10 MB answer.
//!
//! The test runs itself again in private user, network and mount namespaces (`unshare`), where
//! `/etc/hosts` is a file it writes and the DNS server is its own, so a name can fail to resolve,
//! or its DNS server can fall silent, and then heal. See [`every_kind_survives_every_fault`].

mod common;

use std::any::Any;
use std::net::SocketAddr;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{eventually, sample, start_exporter, Exporter};
use fleet_core::driver::Reason;
use fleet_sim::{ikuai, iot, komari, openvox};
use futures_util::SinkExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::task::AbortHandle;
use tokio_tungstenite::tungstenite::Message;

const INTERVAL: Duration = Duration::from_secs(2);
/// One interval, one poll's deadline and no backoff: a healed device is polled on schedule.
/// The deadline leaves a debug build on a loaded machine time to refuse a 10 MB answer as too
/// big, or to read a truncated one (`decode`), before it is cut short as `timeout`.
const PACING: &str = "interval = \"2s\"\ntimeout = \"1600ms\"\nbackoff_max = \"2s\"\n";
const WAIT: Duration = Duration::from_secs(24);
/// A scrape only encodes what the store holds: one that waited on a hanging device would take
/// the poll's whole deadline (1.6 s), so slower than this means it did.
const SCRAPE_BUDGET: Duration = Duration::from_millis(1000);
const HUGE_BYTES: usize = 10 << 20;
const PASSWORD: &str = "faulty-Pa55word";

#[derive(Clone, Copy, Debug, PartialEq)]
enum Fault {
    /// Nobody listens on the port.
    Refused,
    /// Accepts and never answers.
    Hang,
    /// Sends a 200's headers, then stalls the body (for a WebSocket: accepts, never replies).
    StallBody,
    ServerError,
    /// Every request answered 401.
    Unauthorized,
    /// Half a JSON body, then the connection closes.
    Truncated,
    /// 10 MB of one JSON string, chunked so no length announces it.
    Huge,
    /// A proxy's HTML page where JSON was expected.
    Html,
    /// A host name the DNS server says does not exist (NXDOMAIN), until healed. Without the
    /// namespace (see [`every_kind_survives_every_fault`]) it is a `.invalid` name that never
    /// heals.
    Dns,
    /// A host name whose DNS server never answers, until healed. Only in the namespace.
    SilentDns,
}

const FAULTS: [Fault; 10] = [
    Fault::Refused,
    Fault::Hang,
    Fault::StallBody,
    Fault::ServerError,
    Fault::Unauthorized,
    Fault::Truncated,
    Fault::Huge,
    Fault::Html,
    Fault::Dns,
    Fault::SilentDns,
];

/// The faults this run can play: all of them in the namespace, all but [`Fault::SilentDns`]
/// outside it.
fn faults() -> &'static [Fault] {
    if in_namespace() {
        &FAULTS
    } else {
        &FAULTS[..FAULTS.len() - 1]
    }
}

impl Fault {
    /// The `reason` a poll against this fault must fail with, whatever the driver.
    fn reason(self) -> &'static str {
        match self {
            Fault::Refused | Fault::Dns => "connect",
            Fault::Hang | Fault::StallBody | Fault::SilentDns => "timeout",
            Fault::ServerError => "http",
            Fault::Unauthorized => "auth",
            Fault::Truncated | Fault::Huge | Fault::Html => "decode",
        }
    }

    fn target(self) -> String {
        format!("{self:?}").to_lowercase()
    }
}

/// Where the resolver of a test run in its namespace reads names: the child's environment
/// carries the path of the file bind-mounted on `/etc/hosts`.
const HOSTS_ENV: &str = "FLEET_TEST_HOSTS_FILE";

fn in_namespace() -> bool {
    std::env::var_os(HOSTS_ENV).is_some()
}

/// The first label of a [`Fault::SilentDns`] device's name; the namespace's DNS server never
/// answers for such names.
const SILENT: &str = "silent-";

/// A name in the private hosts file, switched on and off by rewriting the first byte of its line
/// in place (`127.0.0.1 name` or `#27.0.0.1 name`): a resolver reading the file concurrently
/// sees either state, never a truncated file.
struct HostName {
    name: String,
    file: PathBuf,
    line_offset: u64,
}

impl HostName {
    /// Appends a commented-out line for `name`, or `None` outside the namespace.
    fn add(name: String) -> Option<HostName> {
        static APPEND: Mutex<()> = Mutex::new(());
        let file = PathBuf::from(std::env::var_os(HOSTS_ENV)?);
        let _one_at_a_time = APPEND.lock().unwrap();
        let mut hosts = std::fs::OpenOptions::new()
            .append(true)
            .open(&file)
            .unwrap();
        let line_offset = hosts.metadata().unwrap().len();
        std::io::Write::write_all(&mut hosts, format!("#27.0.0.1 {name}\n").as_bytes()).unwrap();
        Some(HostName {
            name,
            file,
            line_offset,
        })
    }

    fn resolvable(&self, on: bool) {
        let hosts = std::fs::OpenOptions::new()
            .write(true)
            .open(&self.file)
            .unwrap();
        let first = if on { b"1" } else { b"#" };
        hosts.write_all_at(first, self.line_offset).unwrap();
    }
}

/// A device that plays `fault` until healed, then forwards every connection to `upstream`.
struct FaultyDevice {
    addr: SocketAddr,
    fault: Fault,
    upstream: SocketAddr,
    /// A DNS fault's name, when this run can make it resolvable.
    host: Option<HostName>,
    healed: Arc<AtomicBool>,
    /// The accept loop and every forwarded connection, aborted when the device breaks again.
    tasks: Mutex<Vec<AbortHandle>>,
    /// A refusing device's port, bound but not listening while it refuses: a connection to it is
    /// refused, and no other socket can take the port meanwhile. A freed port could be bound
    /// by another server of the test, or be the source port the kernel picks for the exporter's
    /// own connection to it, which then connects to itself and reads its request back as the
    /// answer: either way the poll fails as `http`, not `connect` (seen once in CI).
    reserved: Mutex<Option<TcpSocket>>,
}

/// A socket bound to `addr` (port 0 for any), not listening.
fn reserve(addr: SocketAddr) -> std::io::Result<TcpSocket> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    Ok(socket)
}

impl FaultyDevice {
    async fn start(fault: Fault, upstream: SocketAddr) -> Arc<FaultyDevice> {
        let socket = reserve("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = socket.local_addr().unwrap();
        let host = match fault {
            Fault::Dns => HostName::add(format!("fault-{}.fleet.test", addr.port())),
            Fault::SilentDns => HostName::add(format!("{SILENT}{}.fleet.test", addr.port())),
            _ => None,
        };
        let device = Arc::new(FaultyDevice {
            addr,
            fault,
            upstream,
            host,
            healed: Arc::new(AtomicBool::new(false)),
            tasks: Mutex::new(Vec::new()),
            reserved: Mutex::new(None),
        });
        if fault == Fault::Refused {
            *device.reserved.lock().unwrap() = Some(socket);
        } else {
            device.listen(socket.listen(1024).unwrap());
        }
        device
    }

    fn url(&self) -> String {
        match (&self.host, self.fault) {
            (Some(host), _) => format!("http://{}:{}", host.name, self.addr.port()),
            (None, Fault::Dns) => "http://fleet-exporter-fault.invalid/".into(),
            (None, _) => format!("http://{}", self.addr),
        }
    }

    /// False for a DNS fault outside the namespace: nothing can make `.invalid` resolve.
    fn can_heal(&self) -> bool {
        self.fault != Fault::Dns || self.host.is_some()
    }

    fn is_dns(&self) -> bool {
        matches!(self.fault, Fault::Dns | Fault::SilentDns)
    }

    fn listen(self: &Arc<Self>, listener: TcpListener) {
        let device = self.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let d = device.clone();
                let conn = tokio::spawn(async move { d.serve(stream).await });
                device.tasks.lock().unwrap().push(conn.abort_handle());
            }
        });
        self.tasks.lock().unwrap().push(task.abort_handle());
    }

    async fn heal(self: &Arc<Self>) {
        self.healed.store(true, Ordering::SeqCst);
        if let Some(host) = &self.host {
            host.resolvable(true);
        }
        if let Some(socket) = self.reserved.lock().unwrap().take() {
            self.listen(socket.listen(1024).unwrap());
        }
    }

    /// Plays the fault again, cutting every forwarded connection (a WebSocket included).
    async fn r#break(&self) {
        self.healed.store(false, Ordering::SeqCst);
        if let Some(host) = &self.host {
            // Its pooled connections are cut below, so the next poll must resolve the name.
            host.resolvable(false);
        }
        if self.fault != Fault::Refused {
            // Keep the accept loop (the first task); cut the rest.
            self.tasks
                .lock()
                .unwrap()
                .drain(1..)
                .for_each(|t| t.abort());
            return;
        }
        let tasks: Vec<AbortHandle> = self.tasks.lock().unwrap().drain(..).collect();
        tasks.iter().for_each(AbortHandle::abort);
        // The port is free once the aborted accept loop has dropped its listener.
        let mut socket = None;
        eventually(
            Duration::from_secs(5),
            "the refusing port to be free",
            || {
                socket = reserve(self.addr).ok();
                std::future::ready(socket.is_some())
            },
        )
        .await;
        *self.reserved.lock().unwrap() = socket;
    }

    async fn serve(&self, mut stream: TcpStream) {
        // A connection to a DNS fault means its name resolved: the fault is in the resolver.
        if self.healed.load(Ordering::SeqCst) || self.is_dns() {
            if let Ok(mut up) = TcpStream::connect(self.upstream).await {
                let _ = tokio::io::copy_bidirectional(&mut stream, &mut up).await;
            }
            return;
        }
        let Some(head) = peek_head(&stream).await else {
            return;
        };
        if head.to_ascii_lowercase().contains("upgrade: websocket")
            && matches!(
                self.fault,
                Fault::StallBody | Fault::Truncated | Fault::Huge | Fault::Html
            )
        {
            return play_websocket(stream, self.fault).await;
        }
        consume_request(&mut stream, &head).await;
        let json = "application/json";
        let _ = match self.fault {
            Fault::Hang => return std::future::pending().await,
            Fault::StallBody => {
                let _ = respond(&mut stream, "200 OK", json, Some(4096), "{\"da").await;
                return std::future::pending().await;
            }
            Fault::ServerError => {
                respond(&mut stream, "503 Service Unavailable", json, None, "{}").await
            }
            Fault::Unauthorized => {
                let body = "{\"status\":\"error\",\"message\":\"Unauthorized\"}";
                respond(&mut stream, "401 Unauthorized", json, None, body).await
            }
            Fault::Truncated => {
                let body = "{\"Result\":30000,\"ErrMsg\":\"Success\",\"Data\":{\"sysst";
                respond(&mut stream, "200 OK", json, Some(4096), body).await
            }
            Fault::Html => respond(&mut stream, "200 OK", "text/html", None, HTML).await,
            Fault::Huge => send_huge(&mut stream).await,
            Fault::Refused | Fault::Dns | Fault::SilentDns => {
                unreachable!("forwarded or never connected")
            }
        };
    }
}

const HTML: &str = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n\
    <center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n";

/// The request head, read without consuming it, so a WebSocket handshake can still read it.
async fn peek_head(stream: &TcpStream) -> Option<String> {
    let mut buf = vec![0; 16 << 10];
    loop {
        let n = stream.peek(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        let text = String::from_utf8_lossy(&buf[..n]);
        if let Some(end) = text.find("\r\n\r\n") {
            return Some(text[..end + 4].to_string());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Reads the head and the body it announces, so closing does not reset the connection.
async fn consume_request(stream: &mut TcpStream, head: &str) {
    let body_len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    let mut rest = vec![0; head.len() + body_len];
    let _ = stream.read_exact(&mut rest).await;
}

/// Writes an answer; `length` announces more than `body` when the body is to be cut short.
async fn respond(
    stream: &mut TcpStream,
    status: &str,
    content_type: &str,
    length: Option<usize>,
    body: &str,
) -> std::io::Result<()> {
    let length = length.unwrap_or(body.len());
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {length}\r\n\
         Connection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.flush().await
}

async fn send_huge(stream: &mut TcpStream) -> std::io::Result<()> {
    let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    stream.write_all(head.as_bytes()).await?;
    const CHUNK: usize = 1 << 20;
    let chunk = format!("{CHUNK:x}\r\n{}\r\n", "x".repeat(CHUNK));
    stream.write_all(b"9\r\n{\"data\":\"\r\n").await?;
    for _ in 0..HUGE_BYTES / CHUNK {
        stream.write_all(chunk.as_bytes()).await?;
    }
    stream.write_all(b"0\r\n\r\n").await
}

/// Accepts the upgrade, then plays the fault on the first request.
async fn play_websocket(stream: TcpStream, fault: Fault) {
    let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
        return;
    };
    let reply = match fault {
        Fault::StallBody => return std::future::pending().await,
        Fault::Truncated => "{\"status\":\"success\",\"data\":{\"online\":[\"a".to_string(),
        Fault::Html => HTML.to_string(),
        _ => format!("{{\"data\":\"{}\"}}", "x".repeat(HUGE_BYTES)),
    };
    use futures_util::StreamExt;
    while let Some(Ok(msg)) = ws.next().await {
        if msg.is_text() && ws.send(Message::text(reply.clone())).await.is_err() {
            return;
        }
    }
}

/// A running simulator (kept alive by holding it) and its address.
type Sim = (Box<dyn Any + Send>, SocketAddr);

/// A device kind under test: how to start a healthy simulator and name a target of it.
struct Kind {
    name: &'static str,
    start: fn() -> futures_util::future::BoxFuture<'static, Sim>,
    target: fn(name: &str, url: &str) -> String,
}

const KINDS: [Kind; 4] = [
    Kind {
        name: "ikuai",
        start: || {
            Box::pin(async {
                let cfg = ikuai::IkuaiSimConfig {
                    password: PASSWORD.into(),
                    ..Default::default()
                };
                let sim = ikuai::IkuaiSim::start(cfg).await.unwrap();
                let addr = sim.addr();
                (Box::new(sim) as Box<dyn Any + Send>, addr)
            })
        },
        target: |name, url| common::target("ikuai", name, url, PASSWORD, PACING),
    },
    Kind {
        name: "komari",
        start: || {
            Box::pin(async {
                // The upgrade's Origin names the faulty device, not the simulator.
                let cfg = komari::KomariSimConfig {
                    require_origin: false,
                    ..Default::default()
                };
                let sim = komari::KomariSim::start(cfg).await.unwrap();
                let addr = sim.addr();
                (Box::new(sim) as Box<dyn Any + Send>, addr)
            })
        },
        target: |name, url| {
            format!(
                "[[targets]]\nname = \"{name}\"\nkind = \"komari\"\nurl = \"{url}\"\n{PACING}\n"
            )
        },
    },
    Kind {
        name: "openvox",
        start: || {
            Box::pin(async {
                let cfg = openvox::OpenvoxSimConfig {
                    password: PASSWORD.into(),
                    login_delay: Duration::from_millis(20),
                    cdr_every: None,
                    ..Default::default()
                };
                let sim = openvox::OpenvoxSim::start(cfg).await.unwrap();
                let addr = sim.addr();
                (Box::new(sim) as Box<dyn Any + Send>, addr)
            })
        },
        target: |name, url| common::target("openvox", name, url, PASSWORD, PACING),
    },
    Kind {
        name: "iot",
        start: || {
            Box::pin(async {
                let cfg = iot::IotSimConfig {
                    app_secret: PASSWORD.into(),
                    devices: 1,
                    rate_limit: None,
                    ..Default::default()
                };
                let sim = iot::IotSim::start(cfg).await.unwrap();
                let addr = sim.addr();
                (Box::new(sim) as Box<dyn Any + Send>, addr)
            })
        },
        target: |name, url| {
            format!(
                "[[targets]]\nname = \"{name}\"\nkind = \"iot\"\nurl = \"{url}\"\napp_id = \"qwe123\"\n\
                 app_secret = \"{PASSWORD}\"\ndevices = [\"{}\"]\nrate_limit = 100\n\
                 device_interval = \"2s\"\n{PACING}\n",
                iot::IotSim::device_no(0)
            )
        },
    },
];

/// Scrapes, failing when a scrape takes longer than [`SCRAPE_BUDGET`].
async fn scrape(exporter: &Exporter) -> String {
    let started = Instant::now();
    let text = exporter.metrics().await;
    let took = started.elapsed();
    assert!(took < SCRAPE_BUDGET, "a scrape took {took:?}");
    text
}

/// Scrapes until `pred` holds, or panics after [`WAIT`] with `what` and the last scrape.
async fn scrape_until(exporter: &Exporter, what: &str, pred: impl Fn(&str) -> bool) -> String {
    scrape_within(exporter, what, WAIT, pred).await
}

async fn scrape_within(
    exporter: &Exporter,
    what: &str,
    wait: Duration,
    pred: impl Fn(&str) -> bool,
) -> String {
    let started = Instant::now();
    loop {
        let text = scrape(exporter).await;
        if pred(&text) {
            return text;
        }
        assert!(
            started.elapsed() < wait,
            "timed out waiting for {what}:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn health(text: &str, name: &str, target: &str) -> f64 {
    sample(text, name, &[&format!("target=\"{target}\"")]).unwrap_or(-1.0)
}

fn errors(text: &str, target: &str, reason: &str) -> f64 {
    let labels = [
        &format!("target=\"{target}\"") as &str,
        &format!("reason=\"{reason}\""),
    ];
    sample(text, "fleet_target_poll_errors_total", &labels).unwrap_or(0.0)
}

/// Device series (anything but the `fleet_` health series) carrying `target`.
fn device_series(text: &str, kind: &str, target: &str) -> usize {
    let label = format!("target=\"{target}\"");
    text.lines()
        .filter(|l| l.starts_with(kind) && l.contains(&label))
        .count()
}

/// True when every faulty target failed (again) with exactly its own reason and serves nothing.
fn all_failing(text: &str, kind: &str, before: &[f64]) -> bool {
    faults().iter().zip(before).all(|(f, seen)| {
        let t = f.target();
        health(text, "fleet_target_up", &t) == 0.0
            && errors(text, &t, f.reason()) > *seen
            && device_series(text, kind, &t) == 0
    })
}

fn assert_right_reasons(text: &str, kind: &str) {
    for f in faults() {
        let t = f.target();
        for reason in Reason::ALL.map(Reason::as_str) {
            let n = errors(text, &t, reason);
            if reason != f.reason() {
                assert_eq!(
                    n,
                    0.0,
                    "{kind}/{t}: counted under {reason:?}, want {:?}",
                    f.reason()
                );
            }
        }
    }
}

/// Runs the fault suite for one kind.
async fn faults_of(kind: &Kind) {
    let (_healthy_sim, healthy_addr) = (kind.start)().await;
    let mut sims = Vec::new();
    let mut devices = Vec::new();
    let mut config = (kind.target)("healthy", &format!("http://{healthy_addr}"));
    for &fault in faults() {
        let (sim, addr) = (kind.start)().await;
        sims.push(sim);
        let device = FaultyDevice::start(fault, addr).await;
        config.push_str(&(kind.target)(&fault.target(), &device.url()));
        devices.push(device);
    }
    let exporter = start_exporter(&config).await;
    let k = kind.name;

    // Faulty from the start: each fails with its own reason and serves no device series,
    // while the healthy target keeps polling once an interval.
    let text = scrape_until(&exporter, "the healthy target", |m| {
        health(m, "fleet_target_up", "healthy") == 1.0
    })
    .await;
    let polls_before = health(&text, "fleet_target_polls_total", "healthy");
    let since = Instant::now();
    let zero = vec![0.0; faults().len()];
    let text = scrape_until(&exporter, &format!("{k}: every fault"), |m| {
        all_failing(m, k, &zero)
    })
    .await;
    assert_right_reasons(&text, k);
    assert!(
        device_series(&text, k, "healthy") > 0,
        "{k}: healthy target lost its series"
    );
    tokio::time::sleep(INTERVAL * 2).await;
    let text = scrape(&exporter).await;
    let polls = health(&text, "fleet_target_polls_total", "healthy") - polls_before;
    let expected = since.elapsed().as_secs_f64() / INTERVAL.as_secs_f64();
    assert!(
        polls >= expected.floor() - 1.0,
        "{k}: healthy target polled {polls} times in {:?}",
        since.elapsed()
    );
    assert_right_reasons(&text, k);

    // Healed: every target is up again by its second poll after the heal (the first may be the
    // one in flight when it healed), so within about one interval and the poll's deadline.
    // Counted in polls, not seconds: a loaded machine delays the polls, never the count.
    let healable: Vec<_> = devices.iter().filter(|d| d.can_heal()).collect();
    let before = scrape(&exporter).await;
    let polls_at_heal: Vec<f64> = healable
        .iter()
        .map(|d| health(&before, "fleet_target_polls_total", &d.fault.target()))
        .collect();
    for d in &healable {
        d.heal().await;
    }
    let healed_at = Instant::now();
    let text = scrape_until(&exporter, &format!("{k}: recovery"), |m| {
        healable
            .iter()
            .all(|d| health(m, "fleet_target_up", &d.fault.target()) == 1.0)
    })
    .await;
    let recovery = healed_at.elapsed();
    for (d, at_heal) in healable.iter().zip(&polls_at_heal) {
        let t = d.fault.target();
        let polls = health(&text, "fleet_target_polls_total", &t) - at_heal;
        // Two polls, and a third the 50 ms between scrapes may have let finish.
        assert!(
            polls <= 3.0,
            "{k}/{t}: up only after {polls} polls since the heal ({recovery:?})"
        );
    }
    assert!(
        recovery <= INTERVAL * 4,
        "{k}: recovered in {recovery:?}, want about one interval"
    );

    // Broken again: the series they served are withdrawn, not left stale.
    let text = scrape(&exporter).await;
    for d in &healable {
        let t = d.fault.target();
        assert!(
            device_series(&text, k, &t) > 0,
            "{k}/{t}: no series when up"
        );
    }
    let seen: Vec<f64> = faults()
        .iter()
        .map(|f| errors(&text, &f.target(), f.reason()))
        .collect();
    for d in &devices {
        d.r#break().await;
    }
    let text = scrape_until(&exporter, &format!("{k}: failing again"), |m| {
        all_failing(m, k, &seen)
    })
    .await;
    assert_eq!(health(&text, "fleet_target_up", "healthy"), 1.0);
    eprintln!("{k}: every fault classified; recovery in {recovery:?}");
}

/// Several targets refusing 10 MB answers at once, alone in the process so the memory figures
/// are theirs.
async fn huge_answers_cost_bounded_memory() {
    const TARGETS: usize = 4;
    let kind = &KINDS[0];
    let (_sim, upstream) = (kind.start)().await;
    let mut config = String::new();
    let mut devices = Vec::new();
    for i in 0..TARGETS {
        let device = FaultyDevice::start(Fault::Huge, upstream).await;
        config.push_str(&(kind.target)(&format!("huge{i}"), &device.url()));
        devices.push(device);
    }
    let (peak_before, rss_before) = common::memory_kib();
    let exporter = start_exporter(&config).await;
    scrape_within(&exporter, "three refusals each", WAIT * 2, |m| {
        (0..TARGETS).all(|i| errors(m, &format!("huge{i}"), "decode") >= 3.0)
    })
    .await;
    let (peak_after, rss_after) = common::memory_kib();
    exporter.app.shutdown().await;
    eprintln!(
        "memory with {TARGETS} targets refusing 10 MB answers: peak {peak_before} -> {peak_after} \
         KiB, resident {rss_before} -> {rss_after} KiB"
    );
    // Reading whole answers would take 16 MiB per poll (10 MB in a doubled buffer) plus the
    // copy while doubling: about 96 MiB for four at once. The bound reads at most 8 MiB each
    // (12 MiB with the copy), plus the exporter itself.
    let peak_growth_mib = peak_after.saturating_sub(peak_before) / 1024;
    assert!(
        peak_growth_mib < 72,
        "peak memory grew by {peak_growth_mib} MiB"
    );
}

/// Runs the suite in private namespaces (`unshare --map-root-user --net --mount`, so no root is
/// needed where user namespaces are allowed) with its own `/etc/hosts` and its own DNS server,
/// so DNS faults can heal. Where no namespace can be made, the suite runs here without the silent
/// DNS server and with an unhealable NXDOMAIN, with a warning, unless
/// `FLEET_TEST_REQUIRE_NAMESPACE` is set.
#[test]
fn every_kind_survives_every_fault() {
    if std::env::var_os(HOSTS_ENV).is_none() && run_in_namespace("every_kind_survives_every_fault")
    {
        return;
    }
    // The allocator as the binary sets it up, so the memory figures are the shipped ones.
    fleet_exporter::allocator::pin_large_block_thresholds();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        if in_namespace() {
            tokio::spawn(serve_dns());
        }
        huge_answers_cost_bounded_memory().await;
        futures_util::future::join_all(KINDS.iter().map(faults_of)).await;
    });
}

/// Runs this test binary's `test` in new user, network and mount namespaces: loopback only,
/// `/etc/hosts` a scratch file, the resolver reading that file and then the DNS server at
/// 127.0.0.1 (see [`serve_dns`]). `false` (after a warning) when no such namespaces can be made
/// and they are not required; a failure of the test inside panics here with its output.
fn run_in_namespace(test: &str) -> bool {
    const SETUP: &str = "ip link set lo up && mount --bind \"$1\" /etc/hosts \
                         && mount --bind \"$2\" /etc/nsswitch.conf \
                         && mount --bind \"$3\" /etc/resolv.conf && shift 3 && exec \"$@\"";
    let dir = common::temp_dir("faults-dns");
    let files = [
        (dir.join("hosts"), "127.0.0.1 localhost\n"),
        (dir.join("nsswitch.conf"), "hosts: files dns\n"),
        (dir.join("resolv.conf"), "nameserver 127.0.0.1\n"),
    ];
    for (path, text) in &files {
        std::fs::write(path, text).unwrap();
    }
    let paths: Vec<String> = files.iter().map(|(p, _)| p.display().to_string()).collect();
    let mut args = vec![
        "--map-root-user",
        "--net",
        "--mount",
        "sh",
        "-c",
        SETUP,
        "sh",
    ];
    args.extend(paths.iter().map(String::as_str));
    if !common::namespace::available(&args, "DNS recovery") {
        return false;
    }
    common::namespace::rerun_inside_with(&args, test, HOSTS_ENV, &files[0].0);
    std::fs::remove_dir_all(dir).ok();
    true
}

/// The namespace's DNS server: no answer at all for [`Fault::SilentDns`] names, NXDOMAIN for
/// any other. Names it is asked for are those not (or not yet) in the hosts file.
async fn serve_dns() {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:53")
        .await
        .expect("port 53 in the test's own network namespace");
    let mut buf = [0u8; 512];
    loop {
        let Ok((n, peer)) = socket.recv_from(&mut buf).await else {
            continue;
        };
        if let Some(reply) = nxdomain(&buf[..n]) {
            let _ = socket.send_to(&reply, peer).await;
        }
    }
}

/// The NXDOMAIN answer to a DNS `query` (RFC 1035 §4.1), or `None` for a silent name or a
/// query too short to answer.
fn nxdomain(query: &[u8]) -> Option<Vec<u8>> {
    const HEADER: usize = 12;
    let first_label = query.get(HEADER + 1..HEADER + 1 + *query.get(HEADER)? as usize)?;
    if first_label.starts_with(SILENT.as_bytes()) {
        return None;
    }
    let mut end = HEADER;
    loop {
        let len = *query.get(end)? as usize;
        end += 1 + len;
        if len == 0 {
            break;
        }
    }
    let question = query.get(HEADER..end + 4)?; // the name, then QTYPE and QCLASS
    let asked = u16::from_be_bytes([query[2], query[3]]);
    // QR (an answer), the query's opcode and RD, RA, and RCODE 3: no such name.
    let flags = 0x8000 | (asked & 0x7900) | 0x0080 | 3;
    let mut reply = query[..2].to_vec(); // the query's ID
    reply.extend_from_slice(&flags.to_be_bytes());
    reply.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]); // one question, no records
    reply.extend_from_slice(question);
    Some(reply)
}
