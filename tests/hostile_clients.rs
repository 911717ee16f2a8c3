//! Hostile clients against the binary over real sockets: floods of idle connections, a
//! slowloris, half a request head at SIGTERM, and readers that never read their answer. Each
//! test asserts its bound (TESTING.md, "Hostile devices and clients", has them with the figures
//! measured).

mod common;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use fleet_sim::ikuai::{IkuaiSim, IkuaiSimConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use common::binary::Running;
use common::temp_dir;

/// `--web.max-connections`' and `--web.max-requests`' defaults, and the deadlines behind them.
const MAX_CONNECTIONS: usize = 512;
const MAX_REQUESTS: usize = 40;
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
const WRITE_TIMEOUT: Duration = Duration::from_secs(15);

/// A client that opens a new connection for every request, as a scraper after a restart does.
fn fresh_client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

async fn timed_get(client: &reqwest::Client, url: &str) -> (u16, Duration) {
    let start = Instant::now();
    let resp = client
        .get(url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    let status = resp.status().as_u16();
    resp.bytes().await.unwrap();
    (status, start.elapsed())
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::test]
async fn idle_connections_past_the_cap_leave_metrics_and_healthy_answering() {
    let exporter = Running::start(&["--demo"]);
    exporter
        .wait_for_within("the demo", Duration::from_secs(60), |m| {
            m.contains("ikuai_info{target=\"demo-ikuai-v3\"")
        })
        .await;
    let client = fresh_client();
    let metrics = exporter.at("/metrics");
    let healthy = exporter.at("/-/healthy");
    let mut quiet = Vec::new();
    for _ in 0..10 {
        quiet.push(timed_get(&client, &metrics).await.1);
    }

    // More than twice the cap, and more than the 1,024 a service manager's soft limit allows.
    let mut flood = Vec::with_capacity(1100);
    for _ in 0..1100 {
        flood.push(TcpStream::connect(exporter.addr()).await.unwrap());
    }
    let mut loud = Vec::new();
    let mut health = Vec::new();
    for _ in 0..10 {
        let (status, took) = timed_get(&client, &metrics).await;
        assert_eq!(status, 200, "/metrics under the flood");
        loud.push(took);
        let (status, took) = timed_get(&client, &healthy).await;
        assert_eq!(status, 200, "/-/healthy under the flood");
        health.push(took);
    }
    let fds = exporter.open_fds();
    let (quiet, loud, health) = (median(quiet), median(loud), median(health));
    eprintln!(
        "/metrics median {quiet:?} quiet, {loud:?} under 1,100 idle connections \
         (/-/healthy {health:?}); exporter fds {fds}"
    );
    assert!(
        loud < Duration::from_secs(1) && health < Duration::from_secs(1),
        "slow under the flood: /metrics {loud:?}, /-/healthy {health:?}"
    );
    // The flood holds its share, no more: the cap plus the listener, pollers and log.
    assert!(
        fds < MAX_CONNECTIONS + 100,
        "{fds} fds open with a cap of {MAX_CONNECTIONS}"
    );
    drop(flood);
    let (ok, took, stderr) = exporter.terminate();
    let took = Duration::from_secs_f64(took);
    assert!(ok && took < Duration::from_secs(5), "{took:?}: {stderr}");
}

#[tokio::test]
async fn a_slowloris_is_dropped_within_the_header_timeout() {
    let exporter = Running::start(&["--demo"]);
    exporter
        .wait_for_within("the server", Duration::from_secs(60), |_| true)
        .await;
    let mut conn = TcpStream::connect(exporter.addr()).await.unwrap();
    // At one byte a second this head takes over a minute.
    let head =
        b"GET /-/healthy HTTP/1.1\r\nHost: localhost\r\nUser-Agent: one-byte-a-second\r\n\r\n";
    let start = Instant::now();
    let mut buf = [0u8; 256];
    let mut closed = false;
    for byte in head {
        if conn.write_all(&[*byte]).await.is_err() {
            closed = true;
            break;
        }
        match tokio::time::timeout(Duration::from_secs(1), conn.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                closed = true;
                break;
            }
            Ok(Ok(n)) => panic!(
                "answered a head never finished: {}",
                String::from_utf8_lossy(&buf[..n])
            ),
            Err(_) => {}
        }
    }
    let held = start.elapsed();
    eprintln!("slowloris dropped after {held:?}");
    assert!(closed, "a slowloris kept its connection for {held:?}");
    assert!(
        held <= HEADER_TIMEOUT + Duration::from_secs(2),
        "dropped after {held:?}, past the {HEADER_TIMEOUT:?} header timeout"
    );
    // Meanwhile the server answered everyone else.
    let (status, _) = timed_get(&fresh_client(), &exporter.at("/-/healthy")).await;
    assert_eq!(status, 200);
    let (ok, _, stderr) = exporter.terminate();
    assert!(ok, "{stderr}");
}

#[tokio::test]
async fn sigterm_exits_within_5s_while_a_client_holds_half_a_request_head() {
    let exporter = Running::start(&["--demo"]);
    exporter
        .wait_for_within("the demo", Duration::from_secs(60), |m| {
            m.contains("ikuai_info{target=\"demo-ikuai-v3\"")
        })
        .await;
    let mut half = TcpStream::connect(exporter.addr()).await.unwrap();
    half.write_all(b"GET /metrics HTTP/1.1\r\nHost: loc")
        .await
        .unwrap();
    // And one keep-alive connection between requests, as Prometheus holds.
    let mut kept = TcpStream::connect(exporter.addr()).await.unwrap();
    kept.write_all(b"GET /-/healthy HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 512];
    assert!(kept.read(&mut buf).await.unwrap() > 0);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (ok, took, stderr) = exporter.terminate();
    let took = Duration::from_secs_f64(took);
    eprintln!("SIGTERM to exit with half a head held: {took:?}");
    assert!(ok, "clean exit: {stderr}");
    assert!(took < Duration::from_secs(5), "exit took {took:?}");
    drop((half, kept));
}

/// Opens a connection with a tiny receive window, asks for `/metrics` and never reads.
fn stalled_reader(addr: SocketAddr) -> socket2::Socket {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect(&addr.into()).unwrap();
    let mut stream: std::net::TcpStream = socket.try_clone().unwrap().into();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    socket
}

// The simulator gets threads of its own: its pages of clients are not held up by the test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_that_never_read_hold_at_most_max_requests_bodies_and_are_dropped() {
    // A router with thousands of clients: a /metrics of megabytes, more than the kernel's
    // socket buffers hold, so a reader that never reads stalls the server's write.
    let sim = IkuaiSim::start(IkuaiSimConfig {
        lan_clients: 6000,
        ..IkuaiSimConfig::default()
    })
    .await
    .unwrap();
    let dir = temp_dir("hostile-readers");
    let config = dir.join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[[targets]]\nname = \"big\"\nkind = \"ikuai\"\nurl = \"{}\"\npassword = \"admin\"\nmax_clients = 6000\ninterval = \"2m\"\ntimeout = \"50s\"\n",
            sim.url()
        ),
    )
    .unwrap();
    let exporter = Running::start(&[&format!("--config.file={}", config.display())]);
    let body = exporter
        .wait_for_within("the big router's clients", Duration::from_secs(60), |m| {
            m.matches("ikuai_client_info{").count() >= 6000
        })
        .await;
    let body_len = body.len();
    drop(body);
    let client = fresh_client();
    let metrics = exporter.at("/metrics");
    // Settle: a few scrapes, so the allocator holds what serving costs.
    for _ in 0..3 {
        timed_get(&client, &metrics).await;
    }
    let rss_before = exporter.rss_mib();

    let readers: Vec<_> = (0..MAX_REQUESTS)
        .map(|_| stalled_reader(exporter.addr()))
        .collect();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (status, took) = timed_get(&client, &metrics).await;
    assert_eq!(status, 503, "past --web.max-requests");
    assert!(took < Duration::from_secs(1), "503 at once, not {took:?}");
    let (status, _) = timed_get(&client, &exporter.at("/-/healthy")).await;
    assert_eq!(status, 200, "/-/healthy is not a scrape");
    let rss_held = exporter.rss_mib();

    // The write timeout drops them, their bodies with them: the scrape slots come back.
    let start = Instant::now();
    loop {
        if timed_get(&client, &metrics).await.0 == 200 {
            break;
        }
        assert!(
            start.elapsed() < WRITE_TIMEOUT + Duration::from_secs(5),
            "scrape slots still held {:?} after the readers stalled",
            start.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let freed_after = start.elapsed() + Duration::from_secs(1);
    for reader in readers {
        let mut stream: std::net::TcpStream = reader.into();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut got = Vec::new();
        let end = stream.read_to_end(&mut got);
        assert!(
            got.len() < body_len,
            "a stalled reader got its whole body ({} bytes)",
            got.len()
        );
        if let Err(e) = end {
            assert_ne!(
                e.kind(),
                std::io::ErrorKind::WouldBlock,
                "the server kept a stalled reader's connection open"
            );
        }
    }
    eprintln!(
        "/metrics {:.1} MiB; RSS {rss_before:.1} MiB before, {rss_held:.1} MiB with \
         {MAX_REQUESTS} stalled readers; slots back {freed_after:?} after they stalled",
        body_len as f64 / 1048576.0
    );
    assert!(
        rss_held < rss_before + 32.0,
        "{MAX_REQUESTS} stalled readers grew RSS from {rss_before:.1} to {rss_held:.1} MiB"
    );
    let (ok, took, stderr) = exporter.terminate();
    let took = Duration::from_secs_f64(took);
    assert!(ok && took < Duration::from_secs(5), "{took:?}: {stderr}");
    std::fs::remove_dir_all(dir).ok();
}
