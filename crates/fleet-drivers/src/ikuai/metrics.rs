//! iKuai answers → metric families. Units become base units (KiB → bytes, % → ratio, Mbit/s →
//! bytes/s); descriptions go into `*_info` series; unknown values are left out, never zeroed.

use std::collections::HashSet;

use super::model::{
    Api, DnsCacheRow, EtherInfo, Homepage, LanClient, MonitorIface, OnlineUser, QosRow, Snapshoot,
    Sysstat, Upgrade, WanStat,
};
use super::token_model::{Disk, WirelessAnswer};
use crate::util::lenient::{percent_to_ratio, url_decoded};
use fleet_core::snapshot::{Family, SnapshotBuilder};

static INFO: Family = Family::gauge(
    "ikuai_info",
    "Router model and firmware; always 1.",
    &[
        "model",
        "version",
        "verstring",
        "arch",
        "hostname",
        "gwid",
        "api",
    ],
);
static UPTIME: Family = Family::gauge("ikuai_uptime_seconds", "Time since the router booted.", &[]);
static CPU: Family = Family::gauge(
    "ikuai_cpu_usage_ratio",
    "CPU usage, 0..1; cpu=all is the all-core total.",
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
static PROTOCOL_CONNECTIONS: Family = Family::gauge(
    "ikuai_protocol_connections",
    "Connections the router tracks, by protocol (token API).",
    &["protocol"],
);
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
    &["mac", "ip", "name", "client_type", "ssid", "ip_version"],
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

static WAN_RTT: Family = Family::gauge(
    "ikuai_wan_rtt_seconds",
    "Round-trip time of the WAN line's quality probe (absent while the line is down).",
    &["interface"],
);
static WAN_LOSS: Family = Family::gauge(
    "ikuai_wan_loss_ratio",
    "Share of the WAN line's quality probes lost, 0..1, over the router's last sample.",
    &["interface"],
);
static APP_TRAFFIC: Family = Family::gauge(
    "ikuai_app_traffic_window_bytes",
    "Bytes of a protocol category over the trailing window of ikuai_app_traffic_window_seconds.",
    &["category"],
);
static APP_WINDOW: Family = Family::gauge(
    "ikuai_app_traffic_window_seconds",
    "The window ikuai_app_traffic_window_bytes covers (the app_flow_minutes option).",
    &[],
);
static VERSION_INFO: Family = Family::gauge(
    "ikuai_version_info",
    "Running and newest offered version of the firmware and its libraries; always 1.",
    &["component", "version", "latest"],
);
static UPDATE_AVAILABLE: Family = Family::gauge(
    "ikuai_update_available",
    "1 when the router offers a newer version of the component.",
    &["component"],
);

static WIRELESS_CLIENTS: Family = Family::gauge(
    "ikuai_wireless_clients",
    "Wireless clients of the managed access points by activity (active, inactive).",
    &["state"],
);
static WIRELESS_CLIENTS_PEAK: Family = Family::gauge(
    "ikuai_wireless_clients_peak_24h",
    "Most wireless clients online at once over the last 24 hours, as the router counts them.",
    &[],
);
static AP_FEATURE: Family = Family::gauge(
    "ikuai_access_points_feature",
    "Managed access points with a feature on (prefer_5g, roaming).",
    &["feature"],
);
static DISK_INFO: Family = Family::gauge(
    "ikuai_disk_info",
    "Disk description; always 1.",
    &["disk", "model", "partition_table", "role"],
);
static DISK_SIZE: Family = Family::gauge("ikuai_disk_size_bytes", "Size of the disk.", &["disk"]);
static PARTITION_INFO: Family = Family::gauge(
    "ikuai_disk_partition_info",
    "Disk partition description; always 1.",
    &["partition", "disk", "filesystem", "purpose", "mount_name"],
);
static PARTITION_SIZE: Family = Family::gauge(
    "ikuai_disk_partition_size_bytes",
    "Size of the disk partition.",
    &["partition"],
);
static FS_SIZE: Family = Family::gauge(
    "ikuai_filesystem_size_bytes",
    "Size of the file system mounted on the partition.",
    &["partition"],
);
static FS_USED: Family = Family::gauge(
    "ikuai_filesystem_used_bytes",
    "Bytes used in the file system mounted on the partition.",
    &["partition"],
);
static FS_AVAILABLE: Family = Family::gauge(
    "ikuai_filesystem_available_bytes",
    "Bytes left for use in the file system mounted on the partition.",
    &["partition"],
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
    &PROTOCOL_CONNECTIONS,
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
    &WAN_RTT,
    &WAN_LOSS,
    &APP_TRAFFIC,
    &APP_WINDOW,
    &VERSION_INFO,
    &UPDATE_AVAILABLE,
    &WIRELESS_CLIENTS,
    &WIRELESS_CLIENTS_PEAK,
    &AP_FEATURE,
    &DISK_INFO,
    &DISK_SIZE,
    &PARTITION_INFO,
    &PARTITION_SIZE,
    &FS_SIZE,
    &FS_USED,
    &FS_AVAILABLE,
];

const KIB: f64 = 1024.0;

/// One WAN line's quality, as either transport reports it.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct WanQuality {
    pub interface: String,
    pub rtt_ms: Option<f64>,
    /// Probes lost, in percent (the token API's `drop_rate`; `/Action/call` has none).
    pub loss_percent: Option<f64>,
}

/// The system status (`sysstat` on `/Action/call`, `sysinfo` on the token API) and, where the
/// transport has them, the AP and DHCP pool counts.
pub fn system(b: &mut SnapshotBuilder, s: &Sysstat, api: Option<Api>) {
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
            &s.gwid,
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
        b.add_opt(&CPU, &[&cpu], usage.map(percent_to_ratio));
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
    for (protocol, n) in [
        ("tcp", st.tcp_connect_num),
        ("udp", st.udp_connect_num),
        ("icmp", st.icmp_connect_num),
    ] {
        b.add_opt(&PROTOCOL_CONNECTIONS, &[protocol], n);
    }
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
}

/// `homepage`'s AP and DHCP pool counts.
pub fn access_points_and_pool(b: &mut SnapshotBuilder, home: &Homepage) {
    b.add_opt(&AP_TOTAL, &[], home.ac_status.ap_count);
    b.add_opt(&AP_ONLINE, &[], home.ac_status.ap_online);
    b.add_opt(&DHCP_AVAILABLE, &[], home.dhcp_addrpool_num.available_num);
}

/// `/Action/call`'s `wan_stat` rows as line quality: a round trip, no loss figure.
pub fn wan_stat_quality(rows: &[WanStat]) -> Vec<WanQuality> {
    rows.iter()
        .map(|w| WanQuality {
            interface: w.interface.clone(),
            rtt_ms: w.rtt,
            loss_percent: None,
        })
        .collect()
}

/// WAN line quality: round trip in ms → seconds, loss in percent → ratio. Lines are named
/// once; `all` (the token API's sum of the lines) is not a line.
pub fn wan_quality(b: &mut SnapshotBuilder, lines: &[WanQuality]) {
    let mut seen = HashSet::new();
    for l in lines {
        if l.interface.is_empty() || l.interface == "all" || !seen.insert(&l.interface) {
            continue;
        }
        let labels = [l.interface.as_str()];
        b.add_opt(
            &WAN_RTT,
            &labels,
            l.rtt_ms.filter(|ms| *ms >= 0.0).map(|ms| ms / 1e3),
        );
        b.add_opt(
            &WAN_LOSS,
            &labels,
            l.loss_percent
                .filter(|p| (0.0..=100.0).contains(p))
                .map(percent_to_ratio),
        );
    }
}

/// Bytes per protocol category over the trailing `window_secs`.
pub fn app_traffic(b: &mut SnapshotBuilder, categories: &[(String, f64)], window_secs: f64) {
    let mut seen = HashSet::new();
    for (category, bytes) in categories {
        if seen.insert(category) {
            b.add(&APP_TRAFFIC, &[category], *bytes);
        }
    }
    b.add(&APP_WINDOW, &[], window_secs);
}

/// Versions of the firmware and its libraries and whether a newer one is offered.
pub fn versions(b: &mut SnapshotBuilder, upgrade: &Upgrade) {
    for (component, running, newest) in upgrade.components() {
        if running.is_empty() {
            continue;
        }
        let offered = !newest.is_empty() && newest != running;
        let latest = if offered { newest } else { running };
        b.add(&VERSION_INFO, &[component, running, latest], 1.0);
        b.add(
            &UPDATE_AVAILABLE,
            &[component],
            f64::from(u8::from(offered)),
        );
    }
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

/// Physical ports: read every poll, so a port that loses link shows at the next poll.
pub fn ports(b: &mut SnapshotBuilder, ether_info: &EtherInfo) {
    for (port, p) in ether_info {
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
}

/// Interface addressing (`snapshoot`), refreshed on the slow cadence.
pub fn addressing(b: &mut SnapshotBuilder, snap: &Snapshoot) {
    let mut seen = HashSet::new();
    for (role, rows) in [("lan", &snap.snapshoot_lan), ("wan", &snap.snapshoot_wan)] {
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
        let mut seen = HashSet::with_capacity(rows.len());
        let mut count = 0usize;
        for c in rows.iter() {
            if c.mac().is_empty() && c.ip_addr().is_empty() || !seen.insert((c.mac(), c.ip_addr()))
            {
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
    let ids = [c.mac(), c.ip_addr()];
    let name = url_decoded(c.name());
    b.add(
        &CLIENT_INFO,
        &[ids[0], ids[1], &name, c.client_type(), c.ssid(), ip_version],
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

/// The token API's wireless statistics: the access point counts `/Action/call` gives as
/// `ac_status`, and wireless clients by band under `ikuai_online_clients` for the bands the
/// system status (`online`, when it was served) did not already count.
pub fn wireless(b: &mut SnapshotBuilder, w: &WirelessAnswer, online: Option<&OnlineUser>) {
    if let Some(ap) = &w.ap_status {
        b.add_opt(&AP_TOTAL, &[], ap.ap_count);
        b.add_opt(&AP_ONLINE, &[], ap.ap_online);
        b.add_opt(&AP_FEATURE, &["prefer_5g"], ap.ap_perfer_5g);
        b.add_opt(&AP_FEATURE, &["roaming"], ap.ap_roaming);
    }
    if let Some(c) = &w.clt_status {
        let counted = |band: fn(&OnlineUser) -> Option<f64>| online.and_then(band).is_some();
        for (medium, n, already) in [
            ("wireless", c.clt_count, counted(|u| u.count_wireless)),
            ("2g", c.clt_count_2g, counted(|u| u.count_2g)),
            ("5g", c.clt_count_5g, counted(|u| u.count_5g)),
        ] {
            if !already {
                b.add_opt(&ONLINE, &[medium], n);
            }
        }
        b.add_opt(&WIRELESS_CLIENTS, &["active"], c.clt_active);
        b.add_opt(&WIRELESS_CLIENTS, &["inactive"], c.clt_inactive);
        b.add_opt(&WIRELESS_CLIENTS_PEAK, &[], c.clt_max_online);
    }
}

/// Disks, their partitions and the file systems on them, named by device (`sda`, `sda1`); a
/// name seen twice is kept once. A partition with no mounted size (0 or missing: not mounted)
/// has no file system series.
pub fn disks(b: &mut SnapshotBuilder, disks: &[Disk]) {
    let (mut seen_disks, mut seen_parts) = (HashSet::new(), HashSet::new());
    for d in disks {
        if d.disk.is_empty() || !seen_disks.insert(d.disk.as_str()) {
            continue;
        }
        let role = match d.system {
            Some(true) => "system",
            Some(false) => "data",
            None => "",
        };
        b.add(&DISK_INFO, &[&d.disk, d.model.trim(), &d.table, role], 1.0);
        b.add_opt(&DISK_SIZE, &[&d.disk], d.size);
        for p in &d.partition {
            if p.name.is_empty() || !seen_parts.insert(p.name.as_str()) {
                continue;
            }
            let m = &p.mounted;
            let info = [
                p.name.as_str(),
                &d.disk,
                &p.filesys.fs_type,
                m.purpose(),
                &m.mt_name,
            ];
            b.add(&PARTITION_INFO, &info, 1.0);
            let labels = [p.name.as_str()];
            b.add_opt(&PARTITION_SIZE, &labels, p.size);
            if m.mt_total.is_some_and(|t| t > 0.0) {
                b.add_opt(&FS_SIZE, &labels, m.mt_total);
                b.add_opt(&FS_USED, &labels, m.mt_used);
                b.add_opt(&FS_AVAILABLE, &labels, m.mt_avail);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    //! Real router answers (fixtures/ikuai) through the wire types and the mapping.
    use super::super::model::{self, parse_answer, Answer, ClientPage};
    use super::*;
    use crate::util::testing::has;

    fn fixture(name: &str) -> Vec<u8> {
        crate::util::testing::fixture("ikuai", name)
    }

    fn payload<T>(body: &[u8]) -> (Option<Api>, T)
    where
        T: serde::de::DeserializeOwned + Default + std::fmt::Debug,
    {
        match parse_answer(body).expect("envelope") {
            (api, Answer::Ok(data)) => (Some(api), data),
            (_, answer) => panic!("not ok: {answer:?}"),
        }
    }

    fn exposition(fill: impl FnOnce(&mut SnapshotBuilder)) -> String {
        crate::util::testing::exposition("r", fill)
    }

    #[test]
    fn sysstat_v3_first_cpu_is_the_total_memory_is_kib_percent_strings_empty_cputemp() {
        let (api, home): (_, Homepage) = payload(&fixture("homepage_sysstat_v3.json"));
        let m = exposition(|b| {
            system(b, &home.sysstat, api);
            access_points_and_pool(b, &home);
        });
        assert!(
            has(&m, r#"ikuai_cpu_usage_ratio{target="r",cpu="all"} 0.0945"#),
            "{m}"
        );
        assert!(has(&m, r#"ikuai_cpu_usage_ratio{target="r",cpu="0"} 0.09"#));
        assert!(has(&m, r#"ikuai_cpu_usage_ratio{target="r",cpu="1"} 0.09"#));
        assert!(!m.contains(r#"cpu="2""#));
        assert!(has(&m, r#"ikuai_memory_total_bytes{target="r"} 508948480"#)); // 497020 KiB
        assert!(has(&m, r#"ikuai_memory_buffers_bytes{target="r"} 0"#));
        assert!(
            !m.contains("ikuai_cpu_temperature_celsius"),
            "cputemp: [] is no sensor"
        );
        assert!(
            !m.contains("ikuai_cpu_frequency_hertz"),
            "freq \"\" is unknown"
        );
        assert!(
            has(
                &m,
                r#"ikuai_info{target="r",model="IK-Q3000",version="3.7.17",verstring="3.7.17 x64 Build202412271043",arch="arm",hostname="iKuai",gwid="2341245213",api="3.x"} 1"#
            ),
            "{m}"
        );
        assert!(has(
            &m,
            r#"ikuai_receive_bytes_total{target="r"} 114653745795"#
        ));
        assert!(has(&m, r#"ikuai_online_clients{target="r",medium="5g"} 3"#));
        assert!(has(
            &m,
            r#"ikuai_dhcp_pool_available_addresses{target="r"} 290"#
        ));
    }

    #[test]
    fn sysstat_v4_envelope_and_decimal_temperatures() {
        let (api, home): (_, Homepage) = payload(&fixture("homepage_sysstat_v4.json"));
        let m = exposition(|b| system(b, &home.sysstat, api));
        assert!(m.contains(r#"api="4.x""#));
        assert!(
            has(
                &m,
                r#"ikuai_cpu_temperature_celsius{target="r",sensor="0"} 48.5"#
            ),
            "{m}"
        );
        assert!(has(
            &m,
            r#"ikuai_cpu_temperature_celsius{target="r",sensor="1"} 47"#
        ));
    }

    #[test]
    fn interfaces_with_string_numbers_exponent_floats_and_unknown_connections() {
        let (_, iface): (_, MonitorIface) = payload(&fixture("monitor_iface.json"));
        let m = exposition(|b| interfaces(b, &iface));
        assert!(
            has(
                &m,
                r#"ikuai_interface_last_check_timestamp_seconds{target="r",interface="wan1"} 1736296104"#
            ),
            "{m}"
        );
        assert!(has(
            &m,
            r#"ikuai_interface_receive_bytes_total{target="r",interface="wan1"} 101188467069740"#
        ));
        assert!(has(
            &m,
            r#"ikuai_interface_up{target="r",interface="wan1"} 1"#
        ));
        assert!(has(
            &m,
            r#"ikuai_interface_connections{target="r",interface="wan1"} 158"#
        ));
        assert!(
            !m.contains(r#"ikuai_interface_connections{target="r",interface="lan1"}"#),
            "\"--\" is unknown"
        );
        assert!(has(
            &m,
            r#"ikuai_interface_info{target="r",interface="wan1",parent_interface="wan1",internet="PPPOE",ip_addr="10.4.71.74",comment=""} 1"#
        ));
        assert!(has(
            &m,
            r#"ikuai_interface_info{target="r",interface="lan1",parent_interface="",internet="",ip_addr="192.168.9.1",comment=""} 1"#
        ));
    }

    #[test]
    fn clients_deduplicated_url_decoded_and_capped() {
        let (_, v4): (_, ClientPage) = payload(&fixture("monitor_lanip.json"));
        let (_, v6): (_, ClientPage) = payload(&fixture("monitor_lanipv6.json"));
        let m = exposition(|b| clients(b, &[("4", &v4.data), ("6", &v6.data)], 256));
        assert!(
            has(&m, r#"ikuai_clients{target="r",ip_version="4"} 2"#),
            "duplicate row: {m}"
        );
        assert!(has(&m, r#"ikuai_clients_omitted{target="r"} 0"#));
        assert!(m.contains(r#"mac="36:6e:24:13:ba:6e",ip="192.168.9.11",name="红米Note 11T Pro",client_type="Android",ssid="2G:TP-LINK_FD1C""#), "{m}");
        assert!(m.contains(r#"name="客厅电视""#));
        assert!(has(
            &m,
            r#"ikuai_client_signal_dbm{target="r",mac="36:6e:24:13:ba:6e",ip="192.168.9.11"} -48"#
        ));
        assert!(m.contains(r#"ip="2409:8a04:5633:2171:627e:a4ff:fe77:9ff9",name="院内监控",client_type="Unknown",ssid="",ip_version="6""#));
        assert!(
            !m.contains(r#"ikuai_client_signal_dbm{target="r",mac="60:7e:a4:77:9f:f9""#),
            "\"\" is no signal"
        );
        assert_eq!(m.matches("ikuai_client_info{").count(), 3);

        let capped = exposition(|b| clients(b, &[("4", &v4.data), ("6", &v6.data)], 1));
        assert_eq!(capped.matches("ikuai_client_info{").count(), 1);
        assert!(has(&capped, r#"ikuai_clients_omitted{target="r"} 2"#));
    }

    #[test]
    fn bare_timeout_and_text_before_the_json_are_repaired() {
        let (_, page): (_, ClientPage) = payload(&fixture("monitor_lanipv6_timeout.txt"));
        assert!(page.data.is_empty());
        assert_eq!(page.total, Some(0.0));
        let (_, page): (_, ClientPage) = payload(&fixture("monitor_lanip_text_prefix.txt"));
        assert!(!page.data.is_empty());
    }

    #[test]
    fn dns_uses_the_cumulative_row() {
        let (_, data): (_, serde_json::Value) = payload(&fixture("dns_cache.json"));
        let m = exposition(|b| dns(b, &model::dns_cache_rows(&data)));
        assert!(
            has(&m, r#"ikuai_dns_requests_total{target="r"} 9326799"#),
            "{m}"
        );
        assert!(has(&m, r#"ikuai_dns_cache_hits_total{target="r"} 4202621"#));
        assert!(has(
            &m,
            r#"ikuai_dns_cache_misses_total{target="r"} 5124178"#
        ));
    }

    #[test]
    fn qos_numbers_as_strings_without_the_all_row() {
        let (_, data): (_, serde_json::Value) = payload(&fixture("monitor_l7qos.json"));
        let m = exposition(|b| qos(b, &model::qos_rows(&data)));
        assert!(
            has(
                &m,
                r#"ikuai_qos_transmit_bytes_per_second{target="r",interface="wan1",policy="小包数据",priority="0"} 320"#
            ),
            "{m}"
        );
        assert!(has(
            &m,
            r#"ikuai_qos_receive_bytes_total{target="r",interface="wan1",policy="网络视频",priority="5"} 34888707473"#
        ));
        assert!(!m.contains(r#"policy="ALL""#));
        assert_eq!(m.matches("ikuai_qos_transmit_bytes_total{").count(), 12);
    }

    #[test]
    fn ports_and_addressing() {
        let (_, home): (_, Homepage) = payload(&fixture("homepage_ether_snapshoot.json"));
        let (_, snap): (_, Snapshoot) = payload(&fixture("homepage_ether_snapshoot.json"));
        let m = exposition(|b| {
            super::ports(b, &home.ether_info);
            addressing(b, &snap);
        });
        assert!(m.contains(r#"ikuai_port_info{target="r",port="veth1",interface="lan1",driver="mt7531",model="MediaTek MT7531 Gigabit Ethernet Controller",mac="08:9b:4b:12:2b:54"} 1"#), "{m}");
        assert!(has(&m, r#"ikuai_port_link_up{target="r",port="veth1"} 0"#));
        assert!(!m.contains("ikuai_port_speed_bytes_per_second{target=\"r\",port=\"veth1\"}"));
        assert!(m.contains(r#"ikuai_interface_address_info{target="r",interface="wan1",role="wan",mac="08:9e:4b:12:2b:54",ip_addr="10.4.71.74",netmask="255.255.255.255",gateway="10.4.64.1"} 1"#));
    }

    #[test]
    fn wan_round_trip_in_seconds_and_a_down_line_without_one() {
        let (_, home): (_, Homepage) = payload(&fixture("homepage_wan_stat_app_flow.json"));
        let m = exposition(|b| wan_quality(b, &wan_stat_quality(&home.wan_stat)));
        assert!(
            has(
                &m,
                r#"ikuai_wan_rtt_seconds{target="r",interface="wan1"} 0.012"#
            ),
            "{m}"
        );
        assert!(
            !m.contains(r#"interface="wan2""#),
            "\"--\" is no round trip: {m}"
        );
        assert!(
            !m.contains("ikuai_wan_loss_ratio{"),
            "/Action/call has no loss"
        );
    }

    #[test]
    fn wan_loss_percent_is_a_ratio_and_the_all_row_is_not_a_line() {
        let line = |interface: &str, rtt: f64, loss: f64| WanQuality {
            interface: interface.into(),
            rtt_ms: Some(rtt),
            loss_percent: Some(loss),
        };
        let m = exposition(|b| {
            wan_quality(b, &[line("all", 6.64, 0.0), line("wan1", 6.35, 2.5)]);
        });
        assert!(
            has(
                &m,
                r#"ikuai_wan_loss_ratio{target="r",interface="wan1"} 0.025"#
            ),
            "{m}"
        );
        assert!(has(
            &m,
            r#"ikuai_wan_rtt_seconds{target="r",interface="wan1"} 0.00635"#
        ));
        assert!(!m.contains(r#"interface="all""#));
    }

    #[test]
    fn app_flow_categories_over_the_window_without_the_total() {
        let (_, home): (_, Homepage) = payload(&fixture("homepage_wan_stat_app_flow.json"));
        let m = exposition(|b| app_traffic(b, &home.app_flow.categories(), 3600.0));
        assert!(
            has(
                &m,
                r#"ikuai_app_traffic_window_bytes{target="r",category="Video"} 1059765666"#
            ),
            "{m}"
        );
        assert!(has(
            &m,
            r#"ikuai_app_traffic_window_seconds{target="r"} 3600"#
        ));
        assert_eq!(m.matches("ikuai_app_traffic_window_bytes{").count(), 10);
        assert!(!m.contains(r#"category="Total""#));
    }

    #[test]
    fn versions_and_whether_a_newer_one_is_offered() {
        let (_, up): (_, model::UpgradeAnswer) = payload(&fixture("upgrade_data.json"));
        let m = exposition(|b| versions(b, &up.data));
        assert!(
            has(
                &m,
                r#"ikuai_version_info{target="r",component="system",version="3.7.17",latest="3.7.19"} 1"#
            ),
            "{m}"
        );
        assert!(has(
            &m,
            r#"ikuai_update_available{target="r",component="system"} 1"#
        ));
        assert!(has(
            &m,
            r#"ikuai_update_available{target="r",component="audit_library"} 0"#
        ));
        assert!(
            has(
                &m,
                r#"ikuai_update_available{target="r",component="domain_library"} 0"#
            ),
            "the same version again is not an update"
        );
    }

    #[test]
    fn login_and_expiry_fixtures() {
        let (_, a) = parse_answer::<serde_json::Value>(&fixture("login_ok.json")).unwrap();
        assert!(matches!(a, Answer::Ok(_)));
        let (_, a) =
            parse_answer::<serde_json::Value>(&fixture("login_wrong_password.json")).unwrap();
        assert!(matches!(a, Answer::Failed { code: 10001, .. }));
        for f in ["session_expired_v3.json", "session_expired_v4.json"] {
            assert_eq!(
                parse_answer::<serde_json::Value>(&fixture(f)).unwrap().1,
                Answer::SessionExpired
            );
        }
    }

    #[test]
    fn mistyped_answers_degrade_to_unknown_not_failure() {
        let body = br#"{"Result":30000,"Data":{"sysstat":{"cpu":"high","memory":[],"stream":{"total_up":null,"upload":"--"},"uptime":"12"},"ac_status":7}}"#;
        let (api, home): (_, Homepage) = payload(body);
        let m = exposition(|b| system(b, &home.sysstat, api));
        assert!(has(&m, r#"ikuai_uptime_seconds{target="r"} 12"#), "{m}");
        assert!(!m.contains("ikuai_cpu_usage_ratio"));
        assert!(!m.contains("ikuai_transmit_bytes"));
    }
}
