//! iKuai answers → metric families. Units become base units (KiB → bytes, % → ratio, Mbit/s →
//! bytes/s); descriptions go into `*_info` series; unknown values are left out, never zeroed.

use std::collections::HashSet;

use super::model::{Api, DnsCacheRow, Homepage, LanClient, MonitorIface, Ports, QosRow};
use crate::drivers::lenient::url_decoded;
use crate::snapshot::{Family, SnapshotBuilder};

static INFO: Family = Family::gauge(
    "ikuai_info",
    "Router model and firmware; always 1.",
    &["model", "version", "verstring", "arch", "hostname", "api"],
);
static UPTIME: Family = Family::gauge("ikuai_uptime_seconds", "Time since the router booted.", &[]);
static CPU: Family = Family::gauge(
    "ikuai_cpu_usage_ratio",
    "CPU usage, 0..1; cpu=\"all\" is the all-core total.",
    &["cpu"],
);
static CPU_FREQ: Family = Family::gauge(
    "ikuai_cpu_frequency_hertz",
    "Current CPU core frequency.",
    &["cpu"],
);
static CPU_TEMP: Family = Family::gauge(
    "ikuai_cpu_temperature_celsius",
    "CPU temperature per sensor.",
    &["sensor"],
);
static MEM_TOTAL: Family = Family::gauge("ikuai_memory_total_bytes", "Total memory.", &[]);
static MEM_AVAILABLE: Family = Family::gauge(
    "ikuai_memory_available_bytes",
    "Memory available for new work.",
    &[],
);
static MEM_FREE: Family = Family::gauge("ikuai_memory_free_bytes", "Unused memory.", &[]);
static MEM_CACHED: Family = Family::gauge(
    "ikuai_memory_cached_bytes",
    "Memory used by the page cache.",
    &[],
);
static MEM_BUFFERS: Family =
    Family::gauge("ikuai_memory_buffers_bytes", "Memory used by buffers.", &[]);
static CONNECTIONS: Family =
    Family::gauge("ikuai_connections", "Connections the router tracks.", &[]);
static ONLINE: Family = Family::gauge(
    "ikuai_online_clients",
    "Online users by medium (all, wired, wireless, 2g, 5g).",
    &["medium"],
);
static TX_TOTAL: Family = Family::counter(
    "ikuai_transmit_bytes_total",
    "Bytes uploaded through the router since boot.",
    &[],
);
static RX_TOTAL: Family = Family::counter(
    "ikuai_receive_bytes_total",
    "Bytes downloaded through the router since boot.",
    &[],
);
static TX_RATE: Family = Family::gauge(
    "ikuai_transmit_bytes_per_second",
    "Current upload rate.",
    &[],
);
static RX_RATE: Family = Family::gauge(
    "ikuai_receive_bytes_per_second",
    "Current download rate.",
    &[],
);
static AP_TOTAL: Family = Family::gauge(
    "ikuai_access_points",
    "Access points managed by the router.",
    &[],
);
static AP_ONLINE: Family = Family::gauge(
    "ikuai_access_points_online",
    "Managed access points online.",
    &[],
);
static DHCP_AVAILABLE: Family = Family::gauge(
    "ikuai_dhcp_pool_available_addresses",
    "Addresses left in the DHCP pools.",
    &[],
);

static IF_INFO: Family = Family::gauge(
    "ikuai_interface_info",
    "Interface description; always 1.",
    &[
        "interface",
        "parent_interface",
        "internet",
        "ip_addr",
        "comment",
    ],
);
static IF_UP: Family = Family::gauge(
    "ikuai_interface_up",
    "1 when the WAN line's last check succeeded.",
    &["interface"],
);
static IF_CHECKED: Family = Family::gauge(
    "ikuai_interface_last_check_timestamp_seconds",
    "Unix time of the WAN line's last check.",
    &["interface"],
);
static IF_TX_TOTAL: Family = Family::counter(
    "ikuai_interface_transmit_bytes_total",
    "Bytes uploaded through the interface.",
    &["interface"],
);
static IF_RX_TOTAL: Family = Family::counter(
    "ikuai_interface_receive_bytes_total",
    "Bytes downloaded through the interface.",
    &["interface"],
);
static IF_TX_RATE: Family = Family::gauge(
    "ikuai_interface_transmit_bytes_per_second",
    "Current upload rate of the interface.",
    &["interface"],
);
static IF_RX_RATE: Family = Family::gauge(
    "ikuai_interface_receive_bytes_per_second",
    "Current download rate of the interface.",
    &["interface"],
);
static IF_CONNECTIONS: Family = Family::gauge(
    "ikuai_interface_connections",
    "Connections through the interface (absent when the router says unknown).",
    &["interface"],
);
static IF_DROPPED: Family = Family::gauge(
    "ikuai_interface_dropped_packets",
    "Packets dropped today (the router resets it daily).",
    &["interface", "direction"],
);
static IF_ADDRESS: Family = Family::gauge(
    "ikuai_interface_address_info",
    "Interface addressing from the router's snapshot; always 1.",
    &["interface", "role", "mac", "ip_addr", "netmask", "gateway"],
);

static PORT_INFO: Family = Family::gauge(
    "ikuai_port_info",
    "Physical port description; always 1.",
    &["port", "interface", "driver", "model", "mac"],
);
static PORT_LINK: Family = Family::gauge(
    "ikuai_port_link_up",
    "1 when the physical port has link.",
    &["port"],
);
static PORT_SPEED: Family = Family::gauge(
    "ikuai_port_speed_bytes_per_second",
    "Negotiated speed of the physical port.",
    &["port"],
);

static CLIENT_INFO: Family = Family::gauge(
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
static CLIENT_TX_TOTAL: Family = Family::counter(
    "ikuai_client_transmit_bytes_total",
    "Bytes the client uploaded.",
    &["mac", "ip"],
);
static CLIENT_RX_TOTAL: Family = Family::counter(
    "ikuai_client_receive_bytes_total",
    "Bytes the client downloaded.",
    &["mac", "ip"],
);
static CLIENT_TX_RATE: Family = Family::gauge(
    "ikuai_client_transmit_bytes_per_second",
    "Current upload rate of the client.",
    &["mac", "ip"],
);
static CLIENT_RX_RATE: Family = Family::gauge(
    "ikuai_client_receive_bytes_per_second",
    "Current download rate of the client.",
    &["mac", "ip"],
);
static CLIENT_CONNECTIONS: Family = Family::gauge(
    "ikuai_client_connections",
    "Connections of the client.",
    &["mac", "ip"],
);
static CLIENT_SIGNAL: Family = Family::gauge(
    "ikuai_client_signal_dbm",
    "Wireless signal strength of the client.",
    &["mac", "ip"],
);
static CLIENTS: Family = Family::gauge(
    "ikuai_clients",
    "LAN clients the router lists, after removing duplicate rows.",
    &["ip_version"],
);
static CLIENTS_OMITTED: Family = Family::gauge(
    "ikuai_clients_omitted",
    "LAN clients left out of the per-client series by max_clients.",
    &[],
);

static DNS_REQUESTS: Family = Family::counter(
    "ikuai_dns_requests_total",
    "DNS requests the router's cache answered or forwarded.",
    &[],
);
static DNS_HITS: Family = Family::counter(
    "ikuai_dns_cache_hits_total",
    "DNS requests answered from the cache.",
    &[],
);
static DNS_MISSES: Family = Family::counter(
    "ikuai_dns_cache_misses_total",
    "DNS requests not in the cache.",
    &[],
);

static QOS_TX_TOTAL: Family = Family::counter(
    "ikuai_qos_transmit_bytes_total",
    "Bytes uploaded under a QoS policy.",
    &["interface", "policy", "priority"],
);
static QOS_RX_TOTAL: Family = Family::counter(
    "ikuai_qos_receive_bytes_total",
    "Bytes downloaded under a QoS policy.",
    &["interface", "policy", "priority"],
);
static QOS_TX_RATE: Family = Family::gauge(
    "ikuai_qos_transmit_bytes_per_second",
    "Current upload rate under a QoS policy.",
    &["interface", "policy", "priority"],
);
static QOS_RX_RATE: Family = Family::gauge(
    "ikuai_qos_receive_bytes_per_second",
    "Current download rate under a QoS policy.",
    &["interface", "policy", "priority"],
);

/// Every iKuai family, for the metrics documentation check.
pub static FAMILIES: &[&Family] = &[
    &INFO,
    &UPTIME,
    &CPU,
    &CPU_FREQ,
    &CPU_TEMP,
    &MEM_TOTAL,
    &MEM_AVAILABLE,
    &MEM_FREE,
    &MEM_CACHED,
    &MEM_BUFFERS,
    &CONNECTIONS,
    &ONLINE,
    &TX_TOTAL,
    &RX_TOTAL,
    &TX_RATE,
    &RX_RATE,
    &AP_TOTAL,
    &AP_ONLINE,
    &DHCP_AVAILABLE,
    &IF_INFO,
    &IF_UP,
    &IF_CHECKED,
    &IF_TX_TOTAL,
    &IF_RX_TOTAL,
    &IF_TX_RATE,
    &IF_RX_RATE,
    &IF_CONNECTIONS,
    &IF_DROPPED,
    &IF_ADDRESS,
    &PORT_INFO,
    &PORT_LINK,
    &PORT_SPEED,
    &CLIENT_INFO,
    &CLIENT_TX_TOTAL,
    &CLIENT_RX_TOTAL,
    &CLIENT_TX_RATE,
    &CLIENT_RX_RATE,
    &CLIENT_CONNECTIONS,
    &CLIENT_SIGNAL,
    &CLIENTS,
    &CLIENTS_OMITTED,
    &DNS_REQUESTS,
    &DNS_HITS,
    &DNS_MISSES,
    &QOS_TX_TOTAL,
    &QOS_RX_TOTAL,
    &QOS_TX_RATE,
    &QOS_RX_RATE,
];

const KIB: f64 = 1024.0;

pub fn system(b: &mut SnapshotBuilder, home: &Homepage, api: Option<Api>) {
    let s = &home.sysstat;
    let v = &s.verinfo;
    let api = api.map_or("", Api::label);
    b.add(
        &INFO,
        &[
            &v.modelname,
            &v.version,
            &v.verstring,
            &v.arch,
            &s.hostname,
            api,
        ],
        1.0,
    );
    b.add_opt(&UPTIME, &[], s.uptime);
    for (i, usage) in s.cpu.iter().enumerate() {
        let cpu = if i == 0 {
            "all".to_string()
        } else {
            (i - 1).to_string()
        };
        b.add_opt(&CPU, &[&cpu], usage.map(|p| p / 100.0));
    }
    for (i, mhz) in s.freq.iter().enumerate() {
        b.add_opt(&CPU_FREQ, &[&i.to_string()], mhz.map(|m| m * 1e6));
    }
    for (i, t) in s.cputemp.iter().enumerate() {
        b.add_opt(&CPU_TEMP, &[&i.to_string()], *t);
    }
    let m = &s.memory;
    let kib = |v: Option<f64>| v.map(|v| v * KIB);
    b.add_opt(&MEM_TOTAL, &[], kib(m.total));
    b.add_opt(&MEM_AVAILABLE, &[], kib(m.available));
    b.add_opt(&MEM_FREE, &[], kib(m.free));
    b.add_opt(&MEM_CACHED, &[], kib(m.cached));
    b.add_opt(&MEM_BUFFERS, &[], kib(m.buffers));
    let st = &s.stream;
    b.add_opt(&CONNECTIONS, &[], st.connect_num);
    b.add_opt(&TX_TOTAL, &[], st.total_up);
    b.add_opt(&RX_TOTAL, &[], st.total_down);
    b.add_opt(&TX_RATE, &[], st.upload);
    b.add_opt(&RX_RATE, &[], st.download);
    let u = &s.online_user;
    for (medium, n) in [
        ("all", u.count),
        ("wired", u.count_wired),
        ("wireless", u.count_wireless),
        ("2g", u.count_2g),
        ("5g", u.count_5g),
    ] {
        b.add_opt(&ONLINE, &[medium], n);
    }
    b.add_opt(&AP_TOTAL, &[], home.ac_status.ap_count);
    b.add_opt(&AP_ONLINE, &[], home.ac_status.ap_online);
    b.add_opt(&DHCP_AVAILABLE, &[], home.dhcp_addrpool_num.available_num);
}

pub fn interfaces(b: &mut SnapshotBuilder, iface: &MonitorIface) {
    let mut seen = HashSet::new();
    for c in &iface.iface_check {
        if c.interface.is_empty() || !seen.insert(c.interface.as_str()) {
            continue;
        }
        let comment = url_decoded(&c.comment);
        b.add(
            &IF_INFO,
            &[
                &c.interface,
                &c.parent_interface,
                &c.internet,
                &c.ip_addr,
                &comment,
            ],
            1.0,
        );
        b.add(
            &IF_UP,
            &[&c.interface],
            if c.result == "success" { 1.0 } else { 0.0 },
        );
        b.add_opt(&IF_CHECKED, &[&c.interface], c.updatetime);
    }
    let mut streamed = HashSet::new();
    for s in &iface.iface_stream {
        let name = s.interface.as_str();
        if name.is_empty() || !streamed.insert(name) {
            continue;
        }
        if seen.insert(name) {
            // No line check for it (a LAN interface): describe it from the stream row.
            let comment = url_decoded(&s.comment);
            b.add(&IF_INFO, &[name, "", "", &s.ip_addr, &comment], 1.0);
        }
        b.add_opt(&IF_TX_TOTAL, &[name], s.total_up);
        b.add_opt(&IF_RX_TOTAL, &[name], s.total_down);
        b.add_opt(&IF_TX_RATE, &[name], s.upload);
        b.add_opt(&IF_RX_RATE, &[name], s.download);
        b.add_opt(&IF_CONNECTIONS, &[name], s.connect_num);
        b.add_opt(&IF_DROPPED, &[name, "transmit"], s.updropped);
        b.add_opt(&IF_DROPPED, &[name, "receive"], s.downdropped);
    }
}

pub fn ports(b: &mut SnapshotBuilder, ports: &Ports) {
    for (port, p) in &ports.ether_info {
        b.add(
            &PORT_INFO,
            &[port, &p.interface, &p.driver, &p.model, &p.mac],
            1.0,
        );
        b.add_opt(
            &PORT_LINK,
            &[port],
            p.link.map(|l| if l > 0.0 { 1.0 } else { 0.0 }),
        );
        // Mbit/s → bytes/s; 0 means no link, not a speed.
        b.add_opt(
            &PORT_SPEED,
            &[port],
            p.speed.filter(|s| *s > 0.0).map(|s| s * 1e6 / 8.0),
        );
    }
    let mut seen = HashSet::new();
    for (role, rows) in [("lan", &ports.snapshoot_lan), ("wan", &ports.snapshoot_wan)] {
        for a in rows.iter().filter(|a| !a.interface.is_empty()) {
            if seen.insert(&a.interface) {
                b.add(
                    &IF_ADDRESS,
                    &[
                        &a.interface,
                        role,
                        &a.mac,
                        &a.ip_addr,
                        &a.netmask,
                        &a.gateway,
                    ],
                    1.0,
                );
            }
        }
    }
}

/// LAN clients of both IP versions, duplicates removed, at most `max_clients` of them with
/// per-client series (IPv4 first, in the router's order, so the same clients stay in).
pub fn clients(b: &mut SnapshotBuilder, pages: &[(&str, &[LanClient])], max_clients: usize) {
    let mut budget = max_clients;
    let mut omitted = 0usize;
    let mut any = false;
    for (ip_version, rows) in pages {
        any = true;
        let mut seen = HashSet::new();
        let mut count = 0usize;
        for c in rows.iter() {
            if c.mac.is_empty() && c.ip_addr.is_empty() || !seen.insert((&c.mac, &c.ip_addr)) {
                continue;
            }
            count += 1;
            if budget == 0 {
                omitted += 1;
                continue;
            }
            budget -= 1;
            client(b, c, ip_version);
        }
        b.add(&CLIENTS, &[ip_version], count as f64);
    }
    if any {
        b.add(&CLIENTS_OMITTED, &[], omitted as f64);
    }
}

fn client(b: &mut SnapshotBuilder, c: &LanClient, ip_version: &str) {
    let ids = [c.mac.as_str(), c.ip_addr.as_str()];
    let name = [&c.comment, &c.hostname, &c.termname, &c.client_model]
        .into_iter()
        .find(|s| !s.is_empty())
        .map(|s| url_decoded(s))
        .unwrap_or_default();
    b.add(
        &CLIENT_INFO,
        &[
            ids[0],
            ids[1],
            &name,
            &c.client_type,
            &c.ssid,
            &c.interface,
            ip_version,
        ],
        1.0,
    );
    b.add_opt(&CLIENT_TX_TOTAL, &ids, c.total_up);
    b.add_opt(&CLIENT_RX_TOTAL, &ids, c.total_down);
    b.add_opt(&CLIENT_TX_RATE, &ids, c.upload);
    b.add_opt(&CLIENT_RX_RATE, &ids, c.download);
    b.add_opt(&CLIENT_CONNECTIONS, &ids, c.connect_num);
    // 0 is what routers send for wired clients: no signal, not a perfect one.
    b.add_opt(&CLIENT_SIGNAL, &ids, c.signal.filter(|s| *s != 0.0));
}

pub fn dns(b: &mut SnapshotBuilder, rows: &[DnsCacheRow]) {
    // The cumulative row has date 0; the others are per day.
    if let Some(total) = rows.iter().find(|r| r.date == "0") {
        b.add_opt(&DNS_REQUESTS, &[], total.request);
        b.add_opt(&DNS_HITS, &[], total.hit);
        b.add_opt(&DNS_MISSES, &[], total.miss);
    }
}

pub fn qos(b: &mut SnapshotBuilder, rows: &[(String, QosRow)]) {
    let mut seen = HashSet::new();
    for (interface, r) in rows {
        // "ALL" sums the other rows; exporting it would double every sum over policies.
        if r.name == "ALL" || !seen.insert((interface, &r.name, &r.prio)) {
            continue;
        }
        let labels = [interface.as_str(), &r.name, &r.prio];
        b.add_opt(&QOS_TX_TOTAL, &labels, r.total_up);
        b.add_opt(&QOS_RX_TOTAL, &labels, r.total_down);
        b.add_opt(&QOS_TX_RATE, &labels, r.upload);
        b.add_opt(&QOS_RX_RATE, &labels, r.download);
    }
}
