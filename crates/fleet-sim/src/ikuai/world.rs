//! The simulated router and its LAN at one instant: WAN lines, LAN clients (IPv4 and IPv6), CPU,
//! memory, DNS cache, QoS policies, access points and (`disks`) the disks. Identities (MACs,
//! IPs, names, base counters) come from `seed` and the index, so clients keep them when the count
//! changes; values move with the seconds since start, totals as exact integrals of their rates so
//! they only grow. Every section is computed from one frozen [`World`], so the TYPEs of one call
//! agree with each other.

mod disks;

use crate::util::SimClock;
use std::f64::consts::TAU;

use serde_json::{json, Map, Value};

use super::config::{Firmware, IkuaiSimConfig};
use super::wire::{
    bytes_total, eui64, fmt_mac, local_date, local_datetime, maybe_encoded, num_str,
};
use crate::util::{mix, unit, Flow};

// Tags keep the noise of unrelated quantities apart.
const T_CPU: u64 = 1;
const T_FREQ: u64 = 2;
const T_TEMP: u64 = 3;
const T_MEM: u64 = 4;
const T_WAN_UP: u64 = 5;
const T_WAN_DOWN: u64 = 6;
const T_LAN_UP: u64 = 7;
const T_LAN_DOWN: u64 = 8;
const T_CLIENT_UP: u64 = 9;
const T_CLIENT_DOWN: u64 = 10;
const T_CLIENT: u64 = 11;
const T_V6_UP: u64 = 12;
const T_V6_DOWN: u64 = 13;
const T_QOS_UP: u64 = 14;
const T_QOS_DOWN: u64 = 15;
const T_JITTER: u64 = 16;
const T_MAC: u64 = 17;
const T_DNS: u64 = 18;
const T_DROP: u64 = 19;
const T_RTT: u64 = 20;
const T_APP: u64 = 21;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Link {
    Wired,
    Band2g,
    Band5g,
}

/// A kind of LAN device; client `i` is `DEVICES[i % len]`, so identities are
/// stable when the client count changes.
struct Device {
    host: &'static str,
    /// What 4.x shows in `termname`.
    term: &'static str,
    kind: &'static str,
    vendor: &'static str,
    model: &'static str,
    /// How the router URL-encodes `model` (quirk), if it does.
    model_enc: Option<&'static str>,
    comment: &'static str,
    comment_enc: Option<&'static str>,
    typeid: u64,
    link: Link,
    oui: [u8; 3],
    /// Some radios report a bare numeric `0` signal.
    signal_zero: bool,
}

const DEVICES: &[Device] = &[
    // The client row of the API document.
    Device {
        host: "Redmi-Note-11T-Pro",
        term: "红米Note 11T Pro",
        kind: "Android",
        vendor: "Redmi",
        model: "红米Note 11T Pro",
        model_enc: Some("红米Note%2011T%20Pro"),
        comment: "红米Note 11T Pro",
        comment_enc: Some("红米Note%2011T%20Pro"),
        typeid: 101003103,
        link: Link::Band2g,
        oui: [0x36, 0x6e, 0x24],
        signal_zero: false,
    },
    Device {
        host: "MiTV-EA70",
        term: "小米电视EA70",
        kind: "TV",
        vendor: "Xiaomi",
        model: "小米电视EA70",
        model_enc: None,
        comment: "客厅电视",
        comment_enc: Some("%E5%AE%A2%E5%8E%85%E7%94%B5%E8%A7%86"),
        typeid: 104002001,
        link: Link::Band5g,
        oui: [0x64, 0xcc, 0x2e],
        signal_zero: false,
    },
    Device {
        host: "DESKTOP-7H2K1LQ",
        term: "DESKTOP-7H2K1LQ",
        kind: "Windows",
        vendor: "Lenovo",
        model: "",
        model_enc: None,
        comment: "",
        comment_enc: None,
        typeid: 102001001,
        link: Link::Wired,
        oui: [0x54, 0xee, 0x75],
        signal_zero: false,
    },
    Device {
        host: "DS920",
        term: "Synology DS920+",
        kind: "Linux",
        vendor: "Synology",
        model: "DS920+",
        model_enc: None,
        comment: "书房NAS",
        comment_enc: None,
        typeid: 103001001,
        link: Link::Wired,
        oui: [0x00, 0x11, 0x32],
        signal_zero: false,
    },
    Device {
        host: "iPhone",
        term: "iPhone 13",
        kind: "iOS",
        vendor: "Apple",
        model: "iPhone 13",
        model_enc: None,
        comment: "",
        comment_enc: None,
        typeid: 101001013,
        link: Link::Band5g,
        oui: [0xf0, 0x18, 0x98],
        signal_zero: false,
    },
    Device {
        host: "MacBook-Pro",
        term: "MacBook Pro",
        kind: "macOS",
        vendor: "Apple",
        model: "MacBook Pro",
        model_enc: None,
        comment: "",
        comment_enc: None,
        typeid: 102002001,
        link: Link::Band5g,
        oui: [0xa4, 0x83, 0xe7],
        signal_zero: false,
    },
    Device {
        host: "ESP_3A1F2C",
        term: "ESP_3A1F2C",
        kind: "Unknown",
        vendor: "Espressif",
        model: "",
        model_enc: None,
        comment: "",
        comment_enc: None,
        typeid: 0,
        link: Link::Band2g,
        oui: [0x24, 0x0a, 0xc4],
        signal_zero: true,
    },
    Device {
        host: "HUAWEI_P40",
        term: "华为P40",
        kind: "Android",
        vendor: "HUAWEI",
        model: "华为P40",
        model_enc: None,
        comment: "",
        comment_enc: None,
        typeid: 101002040,
        link: Link::Band2g,
        oui: [0x48, 0x43, 0x5a],
        signal_zero: false,
    },
];

/// Client index whose row is sent twice (quirk; needs 3 clients).
const DUPLICATED_CLIENT: usize = 2;
/// Client index whose hostname/comment carries `"`, `\` and a newline (quirk).
const HOSTILE_CLIENT: usize = 3;
const HOSTILE_TEXT: &str = "Lab \"NAS\" D:\\backup\nrack 2";

const LAN_IP: &str = "192.168.9.1";
const LAN_MAC: &str = "08:9b:4b:12:2b:54";
const V6_PREFIX: &str = "2409:8a04:5633:2171";
const SSID_2G: &str = "2G:TP-LINK_FD1C";
const SSID_5G: &str = "5G:TP-LINK_FD1C_5G";
const CPU_CORES: usize = 4;
const DHCP_POOL: usize = 300;

pub(super) fn client_mac(seed: u64, idx: usize) -> [u8; 6] {
    let dev = &DEVICES[idx % DEVICES.len()];
    // Index added to a seeded base keeps MACs unique for any realistic count.
    let low = (mix(seed ^ T_MAC) as u32).wrapping_add(idx as u32) & 0x00FF_FFFF;
    [
        dev.oui[0],
        dev.oui[1],
        dev.oui[2],
        (low >> 16) as u8,
        (low >> 8) as u8,
        low as u8,
    ]
}

/// Client `idx` gets `192.168.9.11 + idx`, skipping .0 and .255 host numbers.
fn client_ip(idx: usize) -> (String, u64) {
    let h = idx as u64 + 10;
    let third = 9 + h / 254;
    let fourth = 1 + h % 254;
    let int = (192 << 24) | (168 << 16) | ((third & 0xff) << 8) | fourth;
    (format!("192.168.{}.{}", third & 0xff, fourth), int)
}

/// Per-second wobble on displayed rates, in `[0.85, 1.15)`.
fn jitter(seed: u64, tag: u64, idx: u64, t: f64) -> f64 {
    0.85 + 0.3 * unit(seed ^ T_JITTER, tag.wrapping_mul(1_000_003) ^ idx, t as u64)
}

/// One WAN line's traffic and state.
struct Wan {
    k: usize,
    up: Flow,
    down: Flow,
    failed: bool,
}

/// Everything an answer needs, frozen at one instant so that the TYPEs of one
/// call agree with each other (sysstat totals = sum of WAN totals, etc.).
pub(super) struct World<'a> {
    cfg: &'a IkuaiSimConfig,
    seed: u64,
    pub(super) quirks: bool,
    v4: bool,
    /// Seconds since the simulator started.
    t: f64,
    now: u64,
    started_unix: u64,
    clients: usize,
    /// Physical ports whose cable is pulled.
    unplugged: Vec<String>,
}

impl<'a> World<'a> {
    pub(super) fn new(
        cfg: &'a IkuaiSimConfig,
        clock: &SimClock,
        clients: usize,
        unplugged: Vec<String>,
    ) -> World<'a> {
        World {
            cfg,
            seed: cfg.seed,
            quirks: cfg.quirks,
            v4: cfg.firmware == Firmware::V4,
            t: clock.seconds(),
            now: clock.unix_now(),
            started_unix: clock.started_unix(),
            clients,
            unplugged,
        }
    }

    fn rate(&self, flow: &Flow, tag: u64, idx: u64) -> u64 {
        (flow.smooth_rate(self.t) * jitter(self.seed, tag, idx, self.t)) as u64
    }

    fn wans(&self) -> Vec<Wan> {
        let n = self.cfg.wan_lines;
        (1..=n)
            .map(|k| {
                let failed = n >= 2 && k == n;
                let kk = k as u64;
                let spread = 1.0 + 0.01 * unit(self.seed, T_WAN_DOWN, kk);
                // On a router configured with `large_totals`, wan1's download total is past
                // 1e14, where Lua prints it in exponent form; other routers' totals stay small.
                let down_base = if k == 1 && self.cfg.large_totals {
                    1.011_884_670_697_4e14 * spread
                } else {
                    8.627_298_357_9e12 * spread / k as f64
                };
                let up_base = 7.229_501_240_1e10 * spread / k as f64;
                let (up_mean, down_mean) = if failed {
                    (0.0, 0.0)
                } else {
                    (
                        20_000.0 + 40_000.0 * unit(self.seed, T_WAN_UP, kk + 100),
                        200_000.0 + 600_000.0 * unit(self.seed, T_WAN_DOWN, kk + 100),
                    )
                };
                Wan {
                    k,
                    up: Flow::new(self.seed, T_WAN_UP, kk, up_base, up_mean),
                    down: Flow::new(self.seed, T_WAN_DOWN, kk, down_base, down_mean),
                    failed,
                }
            })
            .collect()
    }

    fn wan_ip(k: usize) -> (String, String) {
        let b = 3 + k;
        (format!("10.{b}.71.74"), format!("10.{b}.64.1"))
    }

    fn wan_internet(k: usize) -> (&'static str, u32) {
        match (k - 1) % 3 {
            0 => ("PPPOE", 2),
            1 => ("DHCP", 1),
            _ => ("STATIC", 0),
        }
    }

    fn wan_connections(&self, wan: &Wan) -> u64 {
        if wan.failed {
            0
        } else {
            let share = 0.5_f64.powi(wan.k as i32 - 1);
            ((self.client_connections() as f64 + 20.0) * share) as u64
        }
    }

    fn client_connections(&self) -> u64 {
        (0..self.clients).map(|i| self.client_conn(i)).sum()
    }

    fn client_conn(&self, idx: usize) -> u64 {
        let base = 5.0 + 60.0 * unit(self.seed, T_CLIENT, idx as u64);
        (base * jitter(self.seed, T_CLIENT, idx as u64, self.t)) as u64
    }

    /// The access points the router manages: none on the 3.x router, three on 4.x.
    fn access_points(&self) -> u64 {
        if self.v4 {
            3
        } else {
            0
        }
    }

    pub(super) fn ac_status(&self) -> Value {
        let aps = self.access_points();
        json!({"ap_count": aps, "ap_online": aps})
    }

    /// Wireless clients on 2.4 and 5 GHz.
    fn wireless_clients(&self) -> (u64, u64) {
        let (mut c2g, mut c5g) = (0, 0);
        for i in 0..self.clients {
            match DEVICES[i % DEVICES.len()].link {
                Link::Wired => {}
                Link::Band2g => c2g += 1,
                Link::Band5g => c5g += 1,
            }
        }
        (c2g, c5g)
    }

    /// The token API's `/monitoring/wireless-statistics` `results`: the managed access points
    /// (all online, all with 5 GHz preference and roaming on, as in the spec's example) and
    /// their clients, the same ones `online_user` counts; about a third of them idle.
    pub(super) fn wireless_statistics(&self) -> Value {
        let aps = self.access_points();
        let (c2g, c5g) = self.wireless_clients();
        let count = c2g + c5g;
        let inactive = count / 3;
        json!({
            "ap_status": {
                "ap_count": aps,
                "ap_online": aps,
                "ap_offline": 0,
                "ap_perfer_5g": aps,
                "ap_roaming": aps,
            },
            "clt_status": {
                "clt_count": count,
                "clt_count_2g": c2g,
                "clt_count_5g": c5g,
                "clt_max_online": count + 2,
                "clt_active": count - inactive,
                "clt_inactive": inactive,
            },
        })
    }

    pub(super) fn dhcp_addrpool_num(&self) -> Value {
        json!({ "available_num": DHCP_POOL.saturating_sub(self.clients) })
    }

    pub(super) fn sysstat(&self) -> Value {
        let seed = self.seed;
        let t = self.t;
        let cores: Vec<f64> = (0..CPU_CORES as u64)
            .map(|c| {
                let base = 3.0 + 30.0 * unit(seed, T_CPU, c);
                let wave = 10.0 * (t / (20.0 + 40.0 * unit(seed, T_CPU, c + 50))).sin();
                (base + wave) * jitter(seed, T_CPU, c, t)
            })
            .map(|v| v.clamp(0.5, 100.0))
            .collect();
        let total = cores.iter().sum::<f64>() / cores.len() as f64;
        let cpu: Vec<String> = std::iter::once(total)
            .chain(cores)
            .map(|v| format!("{v:.2}%"))
            .collect();
        let freq: Vec<String> = (0..CPU_CORES)
            .map(|c| {
                // Some kernels have no cpufreq node for a core: the router sends "".
                if self.quirks && c == CPU_CORES - 1 {
                    return String::new();
                }
                let steps = [1200, 1500, 1800, 2000];
                let pick = (unit(seed, T_FREQ, c as u64 + ((t / 5.0) as u64) * 8) * 4.0) as usize;
                steps[pick.min(3)].to_string()
            })
            .collect();
        let cputemp: Vec<f64> = if self.v4 {
            (0..2u64)
                .map(|s| {
                    let v = 45.0 + 4.0 * (t / 90.0 + s as f64).sin() + 2.0 * unit(seed, T_TEMP, s);
                    (v * 2.0).round() / 2.0
                })
                .collect()
        } else {
            Vec::new()
        };

        let mem_total: u64 = 497_020;
        let free =
            (195_948.0 * (1.0 + 0.15 * (t / 120.0 + unit(seed, T_MEM, 0) * TAU).sin())) as u64;
        let cached: u64 = 76_604;
        let available = (free + cached).min(mem_total);
        let used_pct = (mem_total - available) * 100 / mem_total;

        let (c2g, c5g) = self.wireless_clients();
        let wired = self.clients as u64 - c2g - c5g;

        let wans = self.wans();
        let sum_rate = |f: fn(&Wan) -> &Flow, tag: u64| -> u64 {
            wans.iter().map(|w| self.rate(f(w), tag, w.k as u64)).sum()
        };
        let sum_total = |f: fn(&Wan) -> &Flow| -> f64 { wans.iter().map(|w| f(w).total(t)).sum() };
        let connect_num: u64 = wans.iter().map(|w| self.wan_connections(w)).sum();

        let (version, verstring, build_date) = if self.v4 {
            (
                "4.0.101",
                "4.0.101 x64 Build202503201530",
                202_503_201_530_u64,
            )
        } else {
            (
                "3.7.17",
                "3.7.17 x64 Build202412271043",
                202_412_271_043_u64,
            )
        };

        json!({
            "cpu": cpu,
            "cputemp": cputemp,
            "freq": freq,
            "gwid": self.gwid(),
            "hostname": self.cfg.hostname,
            "link_status": 0,
            "memory": {
                "total": mem_total,
                "available": available,
                "free": free,
                "cached": cached,
                "buffers": 0,
                "used": format!("{used_pct}%"),
            },
            "online_user": {
                "count": self.clients,
                "count_2g": c2g,
                "count_5g": c5g,
                "count_wired": wired,
                "count_wireless": c2g + c5g,
            },
            "stream": {
                "connect_num": connect_num,
                "upload": sum_rate(|w| &w.up, T_WAN_UP),
                "download": sum_rate(|w| &w.down, T_WAN_DOWN),
                "total_up": bytes_total(self.quirks, sum_total(|w| &w.up)),
                "total_down": bytes_total(self.quirks, sum_total(|w| &w.down)),
            },
            "uptime": 828_418 + mix(seed ^ 0x55) % 86_400 + t as u64,
            "verinfo": {
                "modelname": "IK-Q3000",
                "verstring": verstring,
                "version": version,
                "build_date": build_date,
                "arch": "arm",
                "sysbit": "x64",
                "verflags": "",
                "is_enterprise": 0,
                "support_i18n": 1,
                "support_dingtalk": 1,
                "support_lcd": 0,
                "bootguide": "flash",
            },
        })
    }

    pub(super) fn ether_info(&self) -> Value {
        let mut ports = Map::new();
        let port = |name: &str, iface: &str, mac: String, up: bool| {
            let up = up && !self.unplugged.iter().any(|p| p == name);
            json!({
                "driver": "mt7531",
                "type": "TP",
                "mac": mac,
                "link": u8::from(up),
                "speed": if up { 1000 } else { 0 },
                "duplex": u8::from(up),
                "model": "MediaTek MT7531 Gigabit Ethernet Controller",
                "interface": iface,
                "lock": 0,
            })
        };
        ports.insert("veth1".into(), port("veth1", "lan1", LAN_MAC.into(), true));
        for w in self.wans() {
            let name = format!("veth{}", w.k + 3);
            let entry = port(&name, &format!("wan{}", w.k), wan_mac(w.k), !w.failed);
            ports.insert(name, entry);
        }
        Value::Object(ports)
    }

    pub(super) fn snapshoot_lan(&self) -> Value {
        json!([{
            "id": 1,
            "comment": "",
            "interface": "lan1",
            "bandmode": 0,
            "linkmode": 4,
            "mac": LAN_MAC,
            "member": ["ra0", "veth1"],
            "ip_addr": LAN_IP,
            "netmask": "255.255.255.0",
        }])
    }

    fn check_time(&self) -> u64 {
        // Line checks run every 10 s.
        self.now - self.now % 10
    }

    pub(super) fn snapshoot_wan(&self) -> Value {
        let rows: Vec<Value> = self
            .wans()
            .iter()
            .map(|w| {
                let (ip, gw) = Self::wan_ip(w.k);
                let (_, internet) = Self::wan_internet(w.k);
                json!({
                    "id": w.k,
                    "comment": "",
                    "interface": format!("wan{}", w.k),
                    "mac": wan_mac(w.k),
                    "member": [format!("veth{}", w.k + 3)],
                    "bandmode": 0,
                    "default_route": u8::from(w.k == 1),
                    "internet": internet,
                    "ip_addr": ip,
                    "netmask": "255.255.255.255",
                    "gateway": gw,
                    "dns1": "111.11.1.1",
                    "dns2": "111.11.11.1",
                    "count_static": 0,
                    "count_dhcp": 0,
                    "count_pppoe": 0,
                    "count_check_fail": if w.failed { 1 + (self.t / 10.0) as u64 } else { 0 },
                    "updatetime": self.check_time(),
                    "check_res": u8::from(w.failed),
                    "errmsg": if w.failed { "线路检测失败" } else { "线路检测成功" },
                    "power": "",
                    "isp": "",
                    "imei": "",
                    "qnw": "",
                    "ccid": "",
                    "isnr": "",
                    "pcid": "",
                })
            })
            .collect();
        Value::Array(rows)
    }

    pub(super) fn iface_check(&self) -> Value {
        let rows: Vec<Value> = self
            .wans()
            .iter()
            .map(|w| {
                let (ip, gw) = Self::wan_ip(w.k);
                let (internet, _) = Self::wan_internet(w.k);
                json!({
                    "id": w.k,
                    "interface": format!("wan{}", w.k),
                    "parent_interface": format!("wan{}", w.k),
                    "ip_addr": ip,
                    "gateway": gw,
                    "internet": internet,
                    "updatetime": num_str(self.check_time() as i64),
                    "auto_switch": "自动",
                    "result": if w.failed { "fail" } else { "success" },
                    "errmsg": if w.failed { "线路检测失败" } else { "线路检测成功" },
                    "comment": "",
                })
            })
            .collect();
        Value::Array(rows)
    }

    pub(super) fn iface_stream(&self) -> Value {
        let seed = self.seed;
        let t = self.t;
        let lan_up = Flow::new(seed, T_LAN_UP, 0, 7.663_584_346_6e10, 50_000.0);
        let lan_down = Flow::new(seed, T_LAN_DOWN, 0, 8.627_298_357_9e10, 30_000.0);
        // LAN rows have no connection count: the router's schema says "--" there, in any mode.
        let lan_conn = json!("--");
        let mut rows = vec![json!({
            "interface": "lan1",
            "comment": "",
            "ip_addr": LAN_IP,
            "connect_num": lan_conn,
            "upload": self.rate(&lan_up, T_LAN_UP, 0),
            "download": self.rate(&lan_down, T_LAN_DOWN, 0),
            "total_up": bytes_total(self.quirks, lan_up.total(t)),
            "total_down": bytes_total(self.quirks, lan_down.total(t)),
            "updropped": 0,
            "downdropped": 0,
            "uppacked": 0,
            "downpacked": 0,
        })];
        for w in self.wans() {
            let (ip, _) = Self::wan_ip(w.k);
            let kk = w.k as u64;
            // Drops and packets follow the traffic so they only ever grow.
            let drop_ratio = 1e-6 * (1.0 + unit(seed, T_DROP, kk));
            rows.push(json!({
                "interface": format!("wan{}", w.k),
                "comment": "",
                "ip_addr": ip,
                // A string on the wire (`"1"`), as the router's schema and captures have it.
                "connect_num": num_str(self.wan_connections(&w) as i64),
                "upload": self.rate(&w.up, T_WAN_UP, kk),
                "download": self.rate(&w.down, T_WAN_DOWN, kk),
                "total_up": bytes_total(self.quirks, w.up.total(t)),
                "total_down": bytes_total(self.quirks, w.down.total(t)),
                "updropped": ((w.up.total(t) - w.up.base) * drop_ratio) as u64,
                "downdropped": ((w.down.total(t) - w.down.base) * drop_ratio) as u64,
                "uppacked": ((w.up.total(t) - w.up.base) / 600.0) as u64,
                "downpacked": ((w.down.total(t) - w.down.base) / 1200.0) as u64,
            }));
        }
        Value::Array(rows)
    }

    pub(super) fn lan_rows(&self) -> Vec<Value> {
        let mut rows = Vec::with_capacity(self.clients + 1);
        for idx in 0..self.clients {
            let row = self.client_row(idx);
            // The same client (MAC+IP) listed twice, as real routers sometimes do.
            if self.quirks && idx == DUPLICATED_CLIENT {
                rows.push(row.clone());
            }
            rows.push(row);
        }
        // `id` is the row number, so the duplicate gets its own.
        for (n, row) in rows.iter_mut().enumerate() {
            if let Some(obj) = row.as_object_mut() {
                obj.insert("id".into(), json!(n + 1));
            }
        }
        rows
    }

    fn client_row(&self, idx: usize) -> Value {
        let seed = self.seed;
        let t = self.t;
        let i = idx as u64;
        let dev = &DEVICES[idx % DEVICES.len()];
        let first_round = idx < DEVICES.len();
        let suffix = |s: &str| {
            if first_round {
                s.to_owned()
            } else {
                format!("{s}-{idx}")
            }
        };
        let hostile = self.quirks && idx == HOSTILE_CLIENT;
        let mut host = suffix(dev.host);
        let mut term = suffix(dev.term);
        let mut comment = if first_round {
            maybe_encoded(self.quirks, dev.comment, dev.comment_enc)
        } else {
            String::new()
        };
        if hostile {
            host = HOSTILE_TEXT.to_owned();
            term = HOSTILE_TEXT.to_owned();
            comment = HOSTILE_TEXT.to_owned();
        }
        // 4.x names the device in `termname` and often leaves `hostname` empty.
        if self.v4 && self.quirks && !hostile {
            host = String::new();
        }

        let (ip, ip_int) = client_ip(idx);
        let up = Flow::new(
            seed,
            T_CLIENT_UP,
            i,
            1e6 + 1e10 * unit(seed, T_CLIENT_UP, i + 7_000_000),
            200.0 + 20_000.0 * unit(seed, T_CLIENT_UP, i + 8_000_000),
        );
        let down = Flow::new(
            seed,
            T_CLIENT_DOWN,
            i,
            1e7 + 5e10 * unit(seed, T_CLIENT_DOWN, i + 7_000_000),
            1_000.0 + 300_000.0 * unit(seed, T_CLIENT_DOWN, i + 8_000_000),
        );
        let online_for = 600 + (unit(seed, T_CLIENT, i + 9_000_000) * 259_200.0) as u64;
        let since = self.started_unix.saturating_sub(online_for);

        let dbm = -40 - (35.0 * unit(seed, T_CLIENT, i + 5_000_000)) as i64
            + (2.0 * (t / 15.0 + i as f64).sin()).round() as i64;
        // A string on 3.x ("-48", "" when wired); a bare 0 from some radios is a 4.x trait.
        let signal = match dev.link {
            Link::Wired => json!(""),
            _ if dev.signal_zero && self.v4 && self.quirks => json!(0),
            _ => num_str(dbm),
        };
        let (freq, ssid, rate, apmac) = match dev.link {
            Link::Wired => ("", "", "", ""),
            Link::Band2g => ("2g", SSID_2G, "286M", LAN_MAC),
            Link::Band5g => ("5g", SSID_5G, "1201M", LAN_MAC),
        };

        let mut row = json!({
            "mac": fmt_mac(client_mac(seed, idx)),
            "auth_type": 0,
            "client_type": dev.kind,
            "client_device": dev.vendor,
            "apname": "",
            "ac_gid": 0,
            "link_addr": "",
            "bssid": "",
            "uprate": rate,
            "downrate": rate,
            "reject": 0,
            "id": idx + 1,
            "hostname": host,
            "total_up": bytes_total(self.quirks, up.total(t)),
            "total_down": bytes_total(self.quirks, down.total(t)),
            "timestamp": since,
            "download": self.rate(&down, T_CLIENT_DOWN, i),
            "upload": self.rate(&up, T_CLIENT_UP, i),
            "client_model": if first_round {
                maybe_encoded(self.quirks, dev.model, dev.model_enc)
            } else {
                dev.model.to_owned()
            },
            "client_typeid": dev.typeid,
            "signal": signal,
            "frequencies": freq,
            "username": "",
            "ppptype": "",
            "comment": comment,
            "ssid": ssid,
            "apmac": apmac,
            "dtalk_name": "",
            "uptime": local_datetime(since),
            "webid": 0,
            "connect_num": self.client_conn(idx),
            "ip_addr": ip,
            "ip_addr_int": ip_int,
        });
        if self.v4 {
            if let Some(obj) = row.as_object_mut() {
                obj.insert("termname".into(), json!(term));
            }
        }
        row
    }

    pub(super) fn lan6_rows(&self) -> Vec<Value> {
        let seed = self.seed;
        let t = self.t;
        (0..self.cfg.lan_clients_v6)
            .map(|idx| {
                let i = idx as u64;
                // Same MAC as IPv4 client `idx`: the same device, seen over IPv6.
                let mac = client_mac(seed, idx);
                let iid = eui64(mac);
                let up = Flow::new(
                    seed,
                    T_V6_UP,
                    i,
                    1_664.0,
                    50.0 + 2_000.0 * unit(seed, T_V6_UP, i + 99),
                );
                let down = Flow::new(
                    seed,
                    T_V6_DOWN,
                    i,
                    0.0,
                    100.0 + 8_000.0 * unit(seed, T_V6_DOWN, i + 99),
                );
                let online_for = 300 + (unit(seed, T_V6_UP, i + 9_000_000) * 86_400.0) as u64;
                let since = self.started_unix.saturating_sub(online_for);
                let mut row = json!({
                    "mac": fmt_mac(mac),
                    // 3.x sends "" (the document's row); 4.x a number, 0 for no signal.
                    "signal": if self.v4 { json!(0) } else { json!("") },
                    "link_addr": format!("fe80::{iid}"),
                    "bssid": "",
                    "uprate": "",
                    "downrate": "",
                    "id": idx + 1,
                    "hostname": "",
                    "total_up": bytes_total(self.quirks, up.total(t)),
                    "total_down": bytes_total(self.quirks, down.total(t)),
                    "timestamp": since,
                    "download": self.rate(&down, T_V6_DOWN, i),
                    "upload": self.rate(&up, T_V6_UP, i),
                    "client_model": "",
                    "client_typeid": 0,
                    "ip_addr_int": 0,
                    "connect_num": 1 + (4.0 * jitter(seed, T_V6_UP, i, t)) as u64,
                    "auth_type": 0,
                    "client_type": "Unknown",
                    "client_device": "Unknown",
                    "apname": "",
                    "ac_gid": 0,
                    "username": "",
                    "ppptype": "",
                    "ssid": "",
                    "apmac": "",
                    "frequencies": "",
                    "uptime": local_datetime(since),
                    "webid": 0,
                    "dtalk_name": "",
                    "ip_addr": format!("{V6_PREFIX}:{iid}"),
                    "comment": if idx == 0 { "院内监控" } else { "" },
                });
                if self.v4 {
                    if let Some(obj) = row.as_object_mut() {
                        obj.insert("termname".into(), json!(""));
                    }
                }
                row
            })
            .collect()
    }

    pub(super) fn dns_cache(&self) -> Value {
        let seed = self.seed;
        // Queries keep arriving at ~1-3/s; hits and misses split them at a fixed ratio.
        let per_sec = 1.0 + 2.0 * unit(seed, T_DNS, 0);
        let grown = (per_sec * self.t) as u64;
        let row = |id: u32, date: Value, request: u64, ratio: f64| {
            let hit = (request as f64 * ratio) as u64;
            json!({
                "request": request,
                "hit": hit,
                "date": date,
                "save_time": 0,
                "id": id,
                "miss": request - hit,
            })
        };
        let yesterday = row(
            1,
            json!(local_date(self.now.saturating_sub(86_400))),
            100_000 + mix(seed ^ T_DNS) % 20_000,
            0.31,
        );
        let today = row(
            2,
            json!(local_date(self.now)),
            90_000 + mix(seed ^ (T_DNS + 1)) % 10_000 + grown,
            0.38,
        );
        let cumulative = row(
            3,
            json!(0),
            9_326_799 + mix(seed ^ (T_DNS + 2)) % 100_000 + grown,
            0.45,
        );
        json!([yesterday, today, cumulative])
    }

    /// The router's gateway id: stable per router (from the seed), as `sysstat` and `register`
    /// report it.
    pub(super) fn gwid(&self) -> String {
        (1_000_000_000 + mix(self.seed) % 9_000_000_000).to_string()
    }

    /// The account the web UI is signed in with.
    pub(super) fn username(&self) -> &str {
        &self.cfg.username
    }

    /// One sysstat field on its own, for `func_name: "sysstat"` (the fields straight under
    /// `Data`, no `sysstat` wrapper).
    pub(super) fn sysstat_field(&self, key: &str) -> Option<Value> {
        match self.sysstat() {
            Value::Object(mut fields) => fields.remove(key),
            _ => None,
        }
    }

    /// Round-trip time of line `k` in ms, or `None` when the line is down.
    fn wan_rtt_ms(&self, w: &Wan) -> Option<f64> {
        if w.failed {
            return None;
        }
        let kk = w.k as u64;
        let base = 4.0 + 20.0 * unit(self.seed, T_RTT, kk);
        let wave = 1.5 * (self.t / 30.0 + kk as f64).sin();
        Some(((base + wave) * jitter(self.seed, T_RTT, kk, self.t) * 100.0).round() / 100.0)
    }

    /// `homepage` TYPE `wan_stat`: per line `rtt` as a string in whole ms, rates as KB/s floats
    /// and the carrier's code.
    pub(super) fn wan_stat(&self) -> Value {
        const ISPS: [&str; 3] = ["CTCC", "CUCC", "CMCC"];
        let rows: Vec<Value> = self
            .wans()
            .iter()
            .map(|w| {
                let kk = w.k as u64;
                let kb = |flow: &Flow, tag: u64| {
                    (self.rate(flow, tag, kk) as f64 / 1024.0 * 100.0).round() / 100.0
                };
                json!({
                    "interface": format!("wan{}", w.k),
                    // A line that is down has no round trip: "--", the router's "unknown".
                    "rtt": self.wan_rtt_ms(w).map_or("--".to_owned(), |ms| format!("{ms:.0}")),
                    "upload": kb(&w.up, T_WAN_UP),
                    "download": kb(&w.down, T_WAN_DOWN),
                    "isp": ISPS[(w.k - 1) % ISPS.len()],
                })
            })
            .collect();
        Value::Array(rows)
    }

    /// Bytes per protocol category over the last `minute` minutes (`app_flow`), with their
    /// `Total`: the lines' mean traffic over the window, shared out in fixed proportions.
    fn app_categories(&self, minute: u64) -> Vec<(&'static str, u64)> {
        const SHARES: [(&str, f64); 10] = [
            ("HTTP", 0.12),
            ("Download", 0.03),
            ("Transport", 0.0),
            ("IM", 0.014),
            ("Video", 0.59),
            ("Common", 0.17),
            ("Game", 0.001),
            ("Others", 0.032),
            ("Test", 0.0),
            ("Unknown", 0.043),
        ];
        let window = (minute.max(1) * 60) as f64;
        let per_sec: f64 = self
            .wans()
            .iter()
            .map(|w| w.up.smooth_rate(self.t) + w.down.smooth_rate(self.t))
            .sum();
        let mut out: Vec<(&str, u64)> = SHARES
            .iter()
            .enumerate()
            .map(|(i, (name, share))| {
                let wobble = jitter(self.seed, T_APP, i as u64, self.t);
                (*name, (per_sec * window * share * wobble) as u64)
            })
            .collect();
        let total = out.iter().map(|(_, n)| n).sum();
        out.push(("Total", total));
        out
    }

    /// `homepage` / `monitor_system` TYPE `app_flow`: `{"app_flow": [{category: bytes, ...}]}`.
    pub(super) fn app_flow(&self, minute: u64) -> Value {
        let row: Map<String, Value> = self
            .app_categories(minute)
            .into_iter()
            .map(|(name, n)| (name.to_owned(), json!(n)))
            .collect();
        json!({ "app_flow": [row] })
    }

    /// `monitor_app_flow` TYPE `flow`: one row per protocol category over the same window.
    pub(super) fn app_flow_rows(&self, minute: u64) -> Value {
        let rows: Vec<Value> = self
            .app_categories(minute)
            .into_iter()
            .filter(|(name, _)| *name != "Total")
            .enumerate()
            .map(|(i, (name, n))| json!({"id": i + 1, "name": name, "total": n}))
            .collect();
        Value::Array(rows)
    }

    /// `upgrade` TYPE `data`: the running and the newest available version of the system and
    /// of the protocol, audit and domain libraries (`*_new` is `""` when nothing is newer).
    pub(super) fn upgrade(&self) -> Value {
        let (system, system_new) = if self.v4 {
            ("4.0.101", "4.0.110")
        } else {
            ("3.7.17", "3.7.19")
        };
        let offer = |new: &'static str| if self.cfg.update_available { new } else { "" };
        json!({
            "system_ver": system,
            "system_ver_new": offer(system_new),
            "protocol_ver": "2024121801",
            "protocol_ver_new": offer("2025011502"),
            "audit_ver": "2024110601",
            "audit_ver_new": "",
            "domain_ver": "2024122003",
            "domain_ver_new": "",
        })
    }

    /// The token API's `sysinfo`: sysstat's fields, the LAN address, connections by protocol,
    /// and the spec's shorter `verinfo`.
    pub(super) fn sysinfo(&self) -> Value {
        let mut sys = self.sysstat();
        if let Some(obj) = sys.as_object_mut() {
            obj.insert("ip_addr".into(), json!(LAN_IP));
            if let Some(stream) = obj.get_mut("stream").and_then(Value::as_object_mut) {
                let all = stream
                    .get("connect_num")
                    .and_then(Value::as_u64)
                    .unwrap_or(0);
                let (tcp, udp) = (all * 6 / 10, all * 35 / 100);
                stream.insert("tcp_connect_num".into(), json!(tcp));
                stream.insert("udp_connect_num".into(), json!(udp));
                stream.insert("icmp_connect_num".into(), json!(all - tcp - udp));
            }
            if let Some(Value::Object(ver)) = obj.get_mut("verinfo") {
                let keep = [
                    "modelname",
                    "verstring",
                    "version",
                    "build_date",
                    "arch",
                    "sysbit",
                ];
                ver.retain(|k, _| keep.contains(&k.as_str()));
            }
        }
        sys
    }

    /// The token API's `wans_stat_history`: the last 5-minute sample per line and for `all`,
    /// round trips in ms (numbers), `drop_rate` a percent string, rates KB/s strings.
    pub(super) fn wans_stat_history(&self) -> Value {
        let sample = self.now - self.now % 300;
        let wans = self.wans();
        let mut rows = Vec::with_capacity(wans.len() + 1);
        let (mut rtts, mut up_sum, mut down_sum) = (Vec::new(), 0.0, 0.0);
        for w in &wans {
            let kk = w.k as u64;
            let up = self.rate(&w.up, T_WAN_UP, kk) as f64 / 1024.0;
            let down = self.rate(&w.down, T_WAN_DOWN, kk) as f64 / 1024.0;
            up_sum += up;
            down_sum += down;
            // A line that is down answers no probe: every probe lost, no round trip.
            let (avg, loss) = match self.wan_rtt_ms(w) {
                Some(ms) => {
                    rtts.push(ms);
                    (ms, 0.5 * unit(self.seed, T_RTT, kk + 50))
                }
                None => (0.0, 100.0),
            };
            rows.push(Self::wan_stat_row(
                &format!("wan{}", w.k),
                1000 + kk,
                sample,
                (up, down),
                avg,
                loss,
            ));
        }
        let avg = rtts.iter().sum::<f64>() / rtts.len().max(1) as f64;
        let loss = if rtts.is_empty() { 100.0 } else { 0.0 };
        rows.insert(
            0,
            Self::wan_stat_row("all", 1000, sample, (up_sum, down_sum), avg, loss),
        );
        Value::Array(rows)
    }

    fn wan_stat_row(
        interface: &str,
        id: u64,
        timestamp: u64,
        (up, down): (f64, f64),
        avg_rtt: f64,
        loss: f64,
    ) -> Value {
        let ms = |x: f64| (x * 100.0).round() / 100.0;
        json!({
            "max_upload": format!("{:.2}", up * 1.3),
            "max_download": format!("{:.2}", down * 1.3),
            "drop_rate": format!("{loss:.2}"),
            "avg_rtt": ms(avg_rtt),
            "max_rtt": ms(avg_rtt * 1.3),
            "id": id,
            "timestamp": timestamp,
            "interface": interface,
            "avg_upload": format!("{up:.2}"),
            "min_rtt": ms(avg_rtt * 0.9),
            "avg_download": format!("{down:.2}"),
        })
    }

    /// The token API's `ether_info`: the `/Action/call` ports plus their `bindmod`.
    pub(super) fn ether_info_v4(&self) -> Value {
        let mut ports = self.ether_info();
        for port in ports
            .as_object_mut()
            .into_iter()
            .flat_map(|m| m.values_mut())
        {
            if let Some(p) = port.as_object_mut() {
                p.insert("bindmod".into(), json!(0));
            }
        }
        ports
    }

    /// An online client as the token API lists it: the `/Action/call` row's values under the
    /// spec's field set (`uplink_dev`, `interface`, `client_vendor`, ...; no `hostname`).
    pub(super) fn online_client(&self, row: Value, v6: bool) -> Value {
        let Value::Object(mut row) = row else {
            return row;
        };
        let vendor = row.remove("client_device").unwrap_or(json!(""));
        row.remove("hostname");
        let total = row.get("total_down").and_then(Value::as_u64).unwrap_or(0);
        let wired = row
            .get("ssid")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty);
        for (key, value) in [
            ("client_vendor", vendor),
            ("uplink_dev", json!(self.cfg.hostname)),
            ("uplink_addr", json!(LAN_MAC)),
            ("interface", json!("lan1")),
            ("static_status", json!(0)),
            ("vlan_id", json!(0)),
            ("today_total", json!(total / 10)),
            ("enc", json!(if wired { "" } else { "WPA2" })),
            ("ipv4_gnames", json!("")),
            ("ipv6_gnames", json!("")),
            ("mac_gnames", json!("")),
            ("device_icon", json!("")),
            ("vendor_icon", json!("")),
            ("reject", json!(0)),
        ] {
            row.insert(key.into(), value);
        }
        if v6 {
            row.insert("device_type".into(), json!(""));
            row.insert("channel".into(), json!(if wired { "--" } else { "6" }));
            row.insert("signal".into(), json!(0));
        }
        Value::Object(row)
    }

    /// The token API's DNS statistics: the `dns_cache` rows with `save_time` as a local time.
    pub(super) fn dns_stats(&self) -> Value {
        let saved = local_datetime(self.now - self.now % 1800);
        let mut rows = self.dns_cache();
        for row in rows.as_array_mut().into_iter().flatten() {
            if let Some(r) = row.as_object_mut() {
                r.insert("save_time".into(), json!(saved));
            }
        }
        rows
    }

    /// The token API's per-category totals over `[start, stop]`: the `app_flow` categories,
    /// with the router's Chinese names and id ranges.
    pub(super) fn protocols(&self, start: u64, stop: u64) -> Value {
        const NAMES: [(&str, &str, &str); 10] = [
            ("HTTP", "网络协议", "1000000:1499999"),
            ("Download", "传输下载", "2500000:2999999"),
            ("Transport", "文件传输", "2000000:2499999"),
            ("IM", "网络通讯", "1500000:1999999"),
            ("Video", "网络视频", "3500000:3999999"),
            ("Common", "常用协议", "5000000:5499999"),
            ("Game", "网络游戏", "4000000:4499999"),
            ("Others", "其它应用", "6000000:6499999"),
            ("Test", "测速软件", "4500000:4999999"),
            ("Unknown", "未知应用", "4:7"),
        ];
        let minutes = (stop.saturating_sub(start) / 60).max(1);
        let by_name: Map<String, Value> = self
            .app_categories(minutes)
            .into_iter()
            .map(|(n, v)| (n.to_owned(), json!(v)))
            .collect();
        let rows: Vec<Value> = NAMES
            .iter()
            .map(|(en, zh, range)| {
                json!({"proto": range, "proto_name": zh, "total": by_name.get(*en).cloned().unwrap_or(json!(0))})
            })
            .collect();
        Value::Array(rows)
    }

    /// The token API's `snapshoot_wan`: the spec's field set (no modem fields).
    pub(super) fn snapshoot_wan_v4(&self) -> Value {
        let mut rows = self.snapshoot_wan();
        for row in rows.as_array_mut().into_iter().flatten() {
            if let Some(r) = row.as_object_mut() {
                for modem in ["power", "isp", "imei", "qnw", "ccid", "isnr", "pcid"] {
                    r.remove(modem);
                }
            }
        }
        rows
    }

    pub(super) fn l7qos(&self) -> Value {
        // (name, prio, mean up B/s, mean down B/s, base up, base down) after the document.
        const POLICIES: &[(&str, i64, f64, f64, f64, f64)] = &[
            ("小包数据", 0, 320.0, 592.0, 41_748_652.0, 16_663_664.0),
            ("自定义域名优先", 0, 0.0, 0.0, 0.0, 0.0),
            ("HTTP协议", 1, 440.0, 872.0, 829_101_300.0, 7_746_798_907.0),
            (
                "常用协议",
                2,
                475_656.0,
                21_776.0,
                71_036_043_855.0,
                9_619_081_158.0,
            ),
            (
                "网络通讯",
                2,
                1_472.0,
                3_256.0,
                644_498_160.0,
                3_809_369_083.0,
            ),
            (
                "未知应用",
                3,
                11_392.0,
                373_896.0,
                398_679_639.0,
                6_764_225_501.0,
            ),
            (
                "其它应用",
                4,
                8_680.0,
                62_728.0,
                942_113_286.0,
                10_737_413_612.0,
            ),
            ("网络游戏", 4, 24.0, 24.0, 5_236_387.0, 43_797_736.0),
            ("测速软件", 5, 0.0, 0.0, 1_643_234.0, 59_750_348.0),
            (
                "网络视频",
                5,
                12_184.0,
                292_824.0,
                1_817_228_332.0,
                34_888_707_473.0,
            ),
            ("文件传输", 6, 0.0, 0.0, 28_805_146.0, 1_679_025_668.0),
            (
                "网络下载",
                7,
                1_032.0,
                1_320.0,
                296_805_980.0,
                6_216_638_702.0,
            ),
        ];
        let t = self.t;
        let mut per_wan = Map::new();
        for w in self.wans() {
            let scale = if w.failed { 0.0 } else { 1.0 / w.k as f64 };
            let (mut up_sum, mut down_sum, mut tup_sum, mut tdown_sum) = (0u64, 0u64, 0u64, 0u64);
            let mut rows = Vec::with_capacity(POLICIES.len() + 1);
            for (p, &(name, prio, up_mean, down_mean, up_base, down_base)) in
                POLICIES.iter().enumerate()
            {
                let idx = (w.k * 100 + p) as u64;
                let up = Flow::new(
                    self.seed,
                    T_QOS_UP,
                    idx,
                    up_base / w.k as f64,
                    up_mean * scale,
                );
                let down = Flow::new(
                    self.seed,
                    T_QOS_DOWN,
                    idx,
                    down_base / w.k as f64,
                    down_mean * scale,
                );
                let (u, d) = (
                    self.rate(&up, T_QOS_UP, idx),
                    self.rate(&down, T_QOS_DOWN, idx),
                );
                let (tu, td) = (up.total(t) as u64, down.total(t) as u64);
                up_sum += u;
                down_sum += d;
                tup_sum += tu;
                tdown_sum += td;
                rows.push(json!({
                    "download": num_str(d as i64),
                    "total_down": num_str(td as i64),
                    "total_up": num_str(tu as i64),
                    "name": name,
                    "prio": num_str(prio),
                    "ipgroup": "所有内网地址",
                    "upload": num_str(u as i64),
                }));
            }
            // The document's ALL row mixes numeric rates with string totals and has no prio.
            rows.push(json!({
                "download": down_sum,
                "total_down": num_str(tdown_sum as i64),
                "name": "ALL",
                "total_up": num_str(tup_sum as i64),
                "ipgroup": "ALL",
                "upload": up_sum,
            }));
            per_wan.insert(format!("wan{}", w.k), Value::Array(rows));
        }
        json!([per_wan])
    }
}

fn wan_mac(k: usize) -> String {
    format!("08:9e:4b:12:2b:{:02x}", (0x54 + k) & 0xff)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ips_skip_network_and_broadcast() {
        assert_eq!(client_ip(0).0, "192.168.9.11");
        assert_eq!(client_ip(0).1, 3_232_237_835);
        for i in 0..2000 {
            let ip = client_ip(i).0;
            assert!(!ip.ends_with(".0") && !ip.ends_with(".255"), "{ip}");
        }
    }
}
