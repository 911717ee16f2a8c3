//! The encode benchmark: `cargo bench --bench encode [-- --quick]`. The same ~100k series
//! (15 routers x 1,000 LAN clients, the families and labels of the iKuai driver's per-client
//! series) encoded by `prometheus-client` and by the exporter's own path, in one run,
//! alternating which goes first. BENCHMARKS.md says what each figure means.
//!
//! - **scrape**: what a scrape costs once the values are in memory. `prometheus-client`: one
//!   `encode` of the registry (OpenMetrics, and its text 0.0.4 encoder); the exporter:
//!   `Body::plain` (what `/metrics` sends, cut into its frames) and `render` (one contiguous copy) of pre-encoded
//!   snapshots.
//! - **poll + scrape**: a poll replacing every router's series, then one scrape. For
//!   `prometheus-client` the families are cleared and every series set again; for the exporter
//!   every snapshot is built again (`SnapshotBuilder`), then rendered.

mod common;

use std::fmt::Write as _;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fleet_core::exposition::{render, Body, Format};
use fleet_core::snapshot::{Family, Snapshot, SnapshotBuilder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family as PcFamily;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

const ROUTERS: usize = 15;
const CLIENTS: usize = 1000;

static INFO: Family = Family::gauge(
    "ikuai_client_info",
    "LAN client description; always 1.",
    &[
        "mac",
        "ip",
        "name",
        "client_type",
        "ssid",
        "interface",
        "ip_version",
    ],
);
static TX_TOTAL: Family = Family::counter(
    "ikuai_client_transmit_bytes_total",
    "Bytes the client uploaded.",
    &["mac", "ip"],
);
static RX_TOTAL: Family = Family::counter(
    "ikuai_client_receive_bytes_total",
    "Bytes the client downloaded.",
    &["mac", "ip"],
);
static TX_RATE: Family = Family::gauge(
    "ikuai_client_transmit_bytes_per_second",
    "Current upload rate of the client.",
    &["mac", "ip"],
);
static RX_RATE: Family = Family::gauge(
    "ikuai_client_receive_bytes_per_second",
    "Current download rate of the client.",
    &["mac", "ip"],
);
static CONNECTIONS: Family = Family::gauge(
    "ikuai_client_connections",
    "Connections of the client.",
    &["mac", "ip"],
);
static SIGNAL: Family = Family::gauge(
    "ikuai_client_signal_dbm",
    "Wireless signal strength of the client.",
    &["mac", "ip"],
);

/// One LAN client as a poll leaves it: label values and the six numbers.
struct Client {
    mac: String,
    ip: String,
    name: String,
    ssid: &'static str,
    interface: &'static str,
    values: [f64; 6],
}

fn clients(router: usize, poll: u64) -> Vec<Client> {
    (0..CLIENTS)
        .map(|c| {
            let n = (router * CLIENTS + c) as u64;
            let wifi = c % 3 != 0;
            Client {
                mac: format!(
                    "02:00:{:02x}:{:02x}:{:02x}:{:02x}",
                    router,
                    c >> 8,
                    c & 0xff,
                    7
                ),
                ip: format!("10.{router}.{}.{}", c / 250, c % 250 + 2),
                name: format!("host-{router}-{c}"),
                ssid: if wifi { "office" } else { "" },
                interface: if wifi { "wlan0" } else { "lan1" },
                values: [
                    (n * 7_919 + poll * 1_000_003) as f64,
                    (n * 104_729 + poll * 9_999_991) as f64,
                    (n % 977 * 1_024) as f64,
                    (n % 1_913 * 512) as f64,
                    (n % 61) as f64,
                    if wifi { -40.0 - (n % 50) as f64 } else { 0.0 },
                ],
            }
        })
        .collect()
}

/// The exporter's path: one snapshot per router, samples encoded as they are added.
fn snapshots(fleet: &[Vec<Client>]) -> Vec<Arc<Snapshot>> {
    let numbered = [
        &TX_TOTAL,
        &RX_TOTAL,
        &TX_RATE,
        &RX_RATE,
        &CONNECTIONS,
        &SIGNAL,
    ];
    fleet
        .iter()
        .enumerate()
        .map(|(r, clients)| {
            let mut b = SnapshotBuilder::new(Some(&format!("router-{r:02}")));
            for c in clients {
                let kind = if c.ssid.is_empty() {
                    "wired"
                } else {
                    "wireless"
                };
                b.add(
                    &INFO,
                    &[&c.mac, &c.ip, &c.name, kind, c.ssid, c.interface, "4"],
                    1.0,
                );
                for (family, value) in numbered.iter().zip(c.values) {
                    if family.name == SIGNAL.name && value == 0.0 {
                        continue;
                    }
                    b.add(family, &[&c.mac, &c.ip], value);
                }
            }
            Arc::new(b.finish())
        })
        .collect()
}

type Labels = Vec<(String, String)>;
type GaugeFamily = PcFamily<Labels, Gauge<f64, AtomicU64>>;
type CounterFamily = PcFamily<Labels, Counter<f64, AtomicU64>>;

/// The same series in a `prometheus-client` registry, as an exporter built on it would keep
/// them: one family per metric, label sets as owned strings.
struct PcRegistry {
    registry: Registry,
    info: GaugeFamily,
    counters: [CounterFamily; 2],
    gauges: [GaugeFamily; 4],
}

impl PcRegistry {
    fn new() -> PcRegistry {
        let mut registry = Registry::default();
        let info = GaugeFamily::default();
        registry.register(INFO.name, INFO.help, info.clone());
        let counters: [CounterFamily; 2] = Default::default();
        for (f, family) in [&TX_TOTAL, &RX_TOTAL].iter().zip(&counters) {
            // prometheus-client appends `_total` to a counter's name itself.
            let name = f.name.strip_suffix("_total").unwrap();
            registry.register(name, f.help, family.clone());
        }
        let gauges: [GaugeFamily; 4] = Default::default();
        for (f, family) in [&TX_RATE, &RX_RATE, &CONNECTIONS, &SIGNAL]
            .iter()
            .zip(&gauges)
        {
            registry.register(f.name, f.help, family.clone());
        }
        PcRegistry {
            registry,
            info,
            counters,
            gauges,
        }
    }

    /// Replaces every series with this poll's, as a snapshot swap does.
    fn update(&self, fleet: &[Vec<Client>]) {
        self.info.clear();
        self.counters.iter().for_each(PcFamily::clear);
        self.gauges.iter().for_each(PcFamily::clear);
        for (r, clients) in fleet.iter().enumerate() {
            let target = format!("router-{r:02}");
            for c in clients {
                let kind = if c.ssid.is_empty() {
                    "wired"
                } else {
                    "wireless"
                };
                let info: Labels = [
                    ("target", target.as_str()),
                    ("mac", &c.mac),
                    ("ip", &c.ip),
                    ("name", &c.name),
                    ("client_type", kind),
                    ("ssid", c.ssid),
                    ("interface", c.interface),
                    ("ip_version", "4"),
                ]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
                self.info.get_or_create(&info).set(1.0);
                let ids: Labels = vec![
                    ("target".into(), target.clone()),
                    ("mac".into(), c.mac.clone()),
                    ("ip".into(), c.ip.clone()),
                ];
                for (family, value) in self.counters.iter().zip(&c.values[..2]) {
                    family.get_or_create(&ids).inc_by(*value);
                }
                for (i, (family, value)) in self.gauges.iter().zip(&c.values[2..]).enumerate() {
                    if i == 3 && *value == 0.0 {
                        continue;
                    }
                    family.get_or_create(&ids).set(*value);
                }
            }
        }
    }

    fn openmetrics(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry).unwrap();
        out
    }

    fn text(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry).unwrap();
        out
    }
}

fn series(exposition: &[u8]) -> usize {
    exposition
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty() && !l.starts_with(b"#"))
        .count()
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let runs = if quick { 11 } else { 41 };
    let fleet: Vec<Vec<Client>> = (0..ROUTERS).map(|r| clients(r, 1)).collect();

    let pc = PcRegistry::new();
    pc.update(&fleet);
    let sources = snapshots(&fleet);
    // Same series both ways, in both formats.
    let pc_om = pc.openmetrics();
    let own_om = render(Format::OpenMetrics, sources.iter().map(|s| &**s));
    let own_text = render(Format::Text, sources.iter().map(|s| &**s));
    let n = series(&own_text);
    assert_eq!(
        series(pc_om.as_bytes()),
        n,
        "prometheus-client encodes the same series"
    );
    assert_eq!(series(pc.text().as_bytes()), n);
    assert_eq!(series(&own_om), n);

    let mut t: [Vec<Duration>; 6] = Default::default();
    let time = |f: &mut dyn FnMut() -> usize| {
        let start = Instant::now();
        std::hint::black_box(f());
        start.elapsed()
    };
    for i in 0..runs {
        let mut order: Vec<usize> = (0..6).collect();
        order.rotate_left(i % 6);
        for which in order {
            let took = match which {
                0 => time(&mut || pc.openmetrics().len()),
                1 => time(&mut || pc.text().len()),
                2 => time(&mut || sent(Body::plain(Format::OpenMetrics, sources.clone()))),
                3 => time(&mut || render(Format::OpenMetrics, sources.iter().map(|s| &**s)).len()),
                4 => time(&mut || {
                    pc.update(&fleet);
                    pc.openmetrics().len()
                }),
                _ => time(&mut || {
                    let fresh = snapshots(&fleet);
                    sent(Body::plain(Format::OpenMetrics, fresh))
                }),
            };
            // The first round warms caches and the allocator.
            if i > 0 {
                t[which].push(took);
            }
        }
    }
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let m: Vec<Duration> = t.iter_mut().map(median).collect();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let cpu = common::cpu_model();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mut out = String::new();
    let _ = writeln!(out, "fleet-exporter encode benchmark: {cores} cores, {cpu}");
    let _ = writeln!(
        out,
        "== {ROUTERS} routers x {CLIENTS} clients = {n} series; OpenMetrics {} bytes \
         (prometheus-client {} bytes), medians of {} runs",
        own_om.len(),
        pc_om.len(),
        runs - 1
    );
    let rows = [
        ("scrape: prometheus-client encode, OpenMetrics", m[0]),
        ("scrape: prometheus-client encode, text 0.0.4", m[1]),
        ("scrape: exporter Body::plain (what /metrics sends)", m[2]),
        ("scrape: exporter render (one contiguous copy)", m[3]),
        ("poll + scrape: prometheus-client clear, set, encode", m[4]),
        ("poll + scrape: exporter build snapshots, Body::plain", m[5]),
    ];
    for (what, d) in rows {
        let _ = writeln!(out, "   {what:<56}{:>9.2} ms", ms(d));
    }
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
    let _ = writeln!(
        out,
        "   scrape, prometheus-client / Body::plain         {:>8.0}x",
        ratio(m[0], m[2])
    );
    let _ = writeln!(
        out,
        "   scrape, prometheus-client / render (a copy)     {:>8.1}x",
        ratio(m[0], m[3])
    );
    let _ = writeln!(
        out,
        "   poll + scrape, prometheus-client / exporter     {:>8.1}x",
        ratio(m[4], m[5])
    );
    print!("{out}");
}

/// A scrape's body cut into the frames `/metrics` sends, as its byte count.
fn sent(body: Body) -> usize {
    body.map(|frame| frame.len()).sum()
}
