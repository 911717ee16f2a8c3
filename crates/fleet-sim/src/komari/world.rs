//! The simulated fleet at one instant: nodes with their hardware and place, their latest reports
//! (offline nodes keep the last one they sent) and their ping records. Identities (uuids, names,
//! regions) come from `seed` and the index; values move with the seconds since start, traffic
//! totals as exact integrals of their rates so they only grow.

use crate::util::SimClock;
use std::f64::consts::TAU;

use serde_json::{json, Map, Value};

use super::config::KomariSimConfig;
use super::wire::{fmt_go_db, fmt_local, fmt_utc_nanos};
use crate::util::{mix, unit, Flow};

const T_CPU: u64 = 1;
const T_RAM: u64 = 2;
const T_UP: u64 = 3;
const T_DOWN: u64 = 4;
const T_CONN: u64 = 5;
const T_PING: u64 = 6;
const T_DISK: u64 = 7;
const T_UUID: u64 = 8;

struct Place {
    flag: &'static str,
    group: &'static str,
    city: &'static str,
    /// The server's local UTC offset in hours, for the "RFC 3339 in local time" format.
    tz: i64,
}

const PLACES: &[Place] = &[
    Place {
        flag: "🇸🇬",
        group: "新加坡",
        city: "sg",
        tz: 8,
    },
    Place {
        flag: "🇯🇵",
        group: "日本",
        city: "tyo",
        tz: 9,
    },
    Place {
        flag: "🇺🇸",
        group: "美国",
        city: "lax",
        tz: -7,
    },
    Place {
        flag: "🇩🇪",
        group: "Europe",
        city: "fra",
        tz: 2,
    },
    Place {
        flag: "🇭🇰",
        group: "香港",
        city: "hkg",
        tz: 8,
    },
];

struct Hardware {
    cpu_name: &'static str,
    cores: u64,
    virt: &'static str,
    arch: &'static str,
    os: &'static str,
    kernel: &'static str,
    mem: u64,
    swap: u64,
    disk: u64,
}

const HARDWARE: &[Hardware] = &[
    // The node of the API document.
    Hardware {
        cpu_name: "DO-Regular",
        cores: 1,
        virt: "kvm",
        arch: "amd64",
        os: "Debian GNU/Linux 12 (bookworm)",
        kernel: "6.1.0-37-amd64",
        mem: 479_670_272,
        swap: 2_147_479_552,
        disk: 10_524_137_472,
    },
    Hardware {
        cpu_name: "AMD EPYC 7B13",
        cores: 4,
        virt: "kvm",
        arch: "amd64",
        os: "Ubuntu 24.04.2 LTS",
        kernel: "6.8.0-60-generic",
        mem: 8_323_088_384,
        swap: 0,
        disk: 84_014_878_720,
    },
    Hardware {
        cpu_name: "Neoverse-N1",
        cores: 4,
        virt: "kvm",
        arch: "arm64",
        os: "Oracle Linux Server 9.5",
        kernel: "5.15.0-307.178.5.el9uek.aarch64",
        mem: 25_183_010_816,
        swap: 4_294_963_200,
        disk: 200_987_033_600,
    },
    Hardware {
        cpu_name: "Intel(R) Xeon(R) E-2236 CPU @ 3.40GHz",
        cores: 12,
        virt: "none",
        arch: "amd64",
        os: "Proxmox VE 8.3",
        kernel: "6.8.12-4-pve",
        mem: 67_280_158_720,
        swap: 8_589_930_496,
        disk: 1_967_317_549_056,
    },
    Hardware {
        cpu_name: "Intel Xeon Processor (Skylake, IBRS)",
        cores: 2,
        virt: "lxc",
        arch: "amd64",
        os: "Alpine Linux v3.21",
        kernel: "5.10.0-33-amd64",
        mem: 1_073_741_824,
        swap: 0,
        disk: 21_474_836_480,
    },
];

/// The node that reports a GPU (with details), when there are enough nodes.
const GPU_NODE: usize = 3;
/// The node whose name carries `"`, `\` and a newline (quirk).
const HOSTILE_NODE: usize = 4;
const HOSTILE_NAME: &str = "lab \"gpu\" C:\\box\nrack 2";
/// What the agent of `agent_error_node` reports in its `message`.
const AGENT_ERROR: &str = "failed to read disk usage: statfs /data: permission denied";
/// How long an offline node has been silent, in seconds.
const OFFLINE_FOR: u64 = 3 * 3600 + 17 * 60;

pub(super) fn node_uuid(seed: u64, i: usize) -> String {
    let a = mix(seed ^ mix(T_UUID ^ mix(i as u64)));
    let b = mix(a ^ 0x5eed);
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        (a >> 32) as u32,
        (a >> 16) as u16,
        a & 0xfff,
        0x8000 | (b >> 48) as u16 & 0x3fff,
        b & 0xffff_ffff_ffff
    )
}

pub(super) struct World<'a> {
    cfg: &'a KomariSimConfig,
    /// Seconds since the simulator started.
    t: f64,
    now: u64,
    started_unix: u64,
    nodes: usize,
    offline: usize,
}

impl<'a> World<'a> {
    pub(super) fn new(
        cfg: &'a KomariSimConfig,
        clock: &SimClock,
        nodes: usize,
        offline: usize,
    ) -> World<'a> {
        World {
            cfg,
            t: clock.seconds(),
            now: clock.unix_now(),
            started_unix: clock.started_unix(),
            nodes,
            offline,
        }
    }

    pub(super) fn seed(&self) -> u64 {
        self.cfg.seed
    }

    pub(super) fn online(&self, i: usize) -> bool {
        i < self.nodes.saturating_sub(self.offline)
    }

    pub(super) fn index_of(&self, uuid: &str) -> Option<usize> {
        (0..self.nodes).find(|&i| node_uuid(self.seed(), i) == uuid)
    }

    fn has_ping(&self, i: usize) -> bool {
        self.cfg.ping_tasks > 0 && (self.cfg.ping_all_nodes || i.is_multiple_of(2))
    }

    /// The nodes there are now.
    pub(super) fn node_count(&self) -> usize {
        self.nodes
    }

    pub(super) fn node_list(&self) -> Value {
        Value::Array((0..self.nodes).map(|i| self.node_row(i)).collect())
    }

    fn node_row(&self, i: usize) -> Value {
        let seed = self.seed();
        let place = &PLACES[i % PLACES.len()];
        let hw = &HARDWARE[i % HARDWARE.len()];
        let name = if self.cfg.quirks && i == HOSTILE_NODE {
            HOSTILE_NAME.to_owned()
        } else {
            format!("{}-{:02}", place.city, i + 1)
        };
        let created = self.started_unix - 86_400 * (30 + (mix(seed ^ i as u64) % 300));
        let updated = self.started_unix - 3600 * (1 + i as u64 % 48);
        // Format 1 for most, RFC 3339 local for every third (a server with TZ set).
        let stamp = |unix: u64| {
            if self.cfg.quirks && i % 3 == 1 {
                Value::String(fmt_local(unix, place.tz))
            } else {
                Value::String(fmt_go_db(unix))
            }
        };
        // Expiry: a date for most, null (never set) or year 0001 (zero time) for others.
        let expired_at = match i % 4 {
            // A long-term node: panels set "never" as a date centuries away.
            _ if self.cfg.forever_node == Some(i) => stamp(self.started_unix + 200 * 365 * 86_400),
            1 if self.cfg.quirks => Value::Null,
            2 if self.cfg.quirks => json!("0001-01-01 00:00:00+00:00"),
            _ => stamp(self.started_unix + 86_400 * (10 + i as u64 * 7)),
        };
        let (price, cycle) = match i % 5 {
            0 => (json!(-1), 30),
            1 => (json!(0), 0),
            2 => (json!(5.99), 30),
            3 => (json!(49.0), 365),
            _ => (json!(2.5), 30),
        };
        let mut row = json!({
            "uuid": node_uuid(seed, i),
            "name": name,
            "cpu_name": hw.cpu_name,
            "virtualization": hw.virt,
            "arch": hw.arch,
            "cpu_cores": hw.cores,
            "os": hw.os,
            "kernel_version": hw.kernel,
            "gpu_name": if i == GPU_NODE { "NVIDIA GeForce RTX 3060" } else { "None" },
            "region": place.flag,
            "mem_total": hw.mem,
            "swap_total": hw.swap,
            "disk_total": hw.disk,
            "weight": i,
            "price": price,
            "billing_cycle": cycle,
            "auto_renewal": i.is_multiple_of(2),
            "currency": if i.is_multiple_of(2) { "$" } else { "¥" },
            "expired_at": expired_at,
            "group": place.group,
            "tags": if i.is_multiple_of(2) { "NVMe;IPv6" } else { "" },
            "hidden": false,
            "traffic_limit": if i.is_multiple_of(3) { 1_099_511_627_776u64 } else { 0 },
            "traffic_limit_type": if i.is_multiple_of(3) { "max" } else { "sum" },
            "created_at": stamp(created),
            "updated_at": stamp(updated),
        });
        // Fields added in later versions are missing on nodes an old server still serves.
        if self.cfg.quirks && i % 5 == 4 {
            if let Value::Object(map) = &mut row {
                for key in [
                    "kernel_version",
                    "traffic_limit",
                    "traffic_limit_type",
                    "auto_renewal",
                    "hidden",
                ] {
                    map.remove(key);
                }
            }
        }
        row
    }

    /// What the WebSocket answers to `get` (every node) or `get <uuid>` (`only` that one): which
    /// nodes are online, and the latest report of each.
    pub(super) fn online_and_reports(&self, only: Option<&str>) -> Value {
        let mut online = Vec::new();
        let mut data = Map::new();
        for i in 0..self.nodes {
            let uuid = node_uuid(self.seed(), i);
            if only.is_some_and(|u| u != uuid) {
                continue;
            }
            if self.online(i) {
                online.push(Value::String(uuid.clone()));
            }
            if let Some(report) = self.report(i) {
                data.insert(uuid, report);
            }
        }
        json!({"online": online, "data": data})
    }

    /// A node's latest report; offline nodes keep the one they sent last.
    pub(super) fn report(&self, i: usize) -> Option<Value> {
        // A freshly added node that never reported (quirk: the last node when offline).
        if self.cfg.quirks && !self.online(i) && i + 1 == self.nodes && self.offline >= 2 {
            return None;
        }
        let (t, at) = if self.online(i) {
            (self.t, self.now as f64 + self.t.fract())
        } else {
            let at = self.now.saturating_sub(OFFLINE_FOR) as f64;
            (at - self.started_unix as f64, at)
        };
        let seed = self.seed();
        let k = i as u64;
        let hw = &HARDWARE[i % HARDWARE.len()];
        let wave = |tag: u64, period: f64| (t / period + unit(seed, tag, k) * TAU).sin();
        // The agent reports 0 % as 0.01 (notes).
        let cpu = (3.0 + 40.0 * unit(seed, T_CPU, k) + 8.0 * wave(T_CPU, 37.0)).max(0.01);
        let ram = hw.mem as f64 * (0.35 + 0.3 * unit(seed, T_RAM, k) + 0.05 * wave(T_RAM, 90.0));
        let up = Flow::new(
            seed,
            T_UP,
            k,
            2.5e11 * (1.0 + unit(seed, T_UP, k)),
            20_000.0 + 300_000.0 * unit(seed, T_UP, k + 50),
        );
        let down = Flow::new(
            seed,
            T_DOWN,
            k,
            3.2e10 * (1.0 + unit(seed, T_DOWN, k)),
            5_000.0 + 90_000.0 * unit(seed, T_DOWN, k + 50),
        );
        let load1 = (cpu / 100.0 * hw.cores as f64 * 1.3 * 100.0).round() / 100.0;
        let mut report = json!({
            "cpu": {"usage": cpu},
            "ram": {"total": hw.mem, "used": ram as u64},
            "swap": {"total": hw.swap, "used": hw.swap / 7},
            "load": {"load1": load1, "load5": (load1 * 0.8 * 100.0).round() / 100.0, "load15": (load1 * 0.6 * 100.0).round() / 100.0},
            // Logs and caches: a disk fills by a few KiB a second.
            "disk": {"total": hw.disk, "used": (hw.disk as f64 * (0.2 + 0.6 * unit(seed, T_DISK, k)) + 4096.0 * t.max(0.0)) as u64},
            "network": {
                "up": up.smooth_rate(t) as u64,
                "down": down.smooth_rate(t) as u64,
                "totalUp": up.total(t.max(0.0)) as u64,
                "totalDown": down.total(t.max(0.0)) as u64,
            },
            // Connections and processes come and go from one report to the next.
            "connections": {
                "tcp": 10 + (200.0 * unit(seed, T_CONN, k) + 15.0 * (wave(T_CONN, 45.0) + 1.0)) as u64,
                "udp": 2 + (20.0 * unit(seed, T_CONN, k + 50) + 2.0 * (wave(T_CONN, 29.0) + 1.0)) as u64,
            },
            "uptime": 609_849 + mix(seed ^ k) % 2_000_000 + t.max(0.0) as u64,
            "process": 80 + (unit(seed, T_CONN, k + 99) * 120.0 + 4.0 * (wave(T_CONN, 70.0) + 1.0)) as u64,
            "message": if self.cfg.agent_error_node == Some(i) { AGENT_ERROR } else { "" },
            "updated_at": fmt_utc_nanos(at),
        });
        if let Value::Object(map) = &mut report {
            if i == GPU_NODE {
                let util = 20.0 + 30.0 * (wave(T_CPU, 50.0) + 1.0);
                map.insert(
                    "gpu".into(),
                    json!({
                        "count": 1,
                        "average_usage": util,
                        "detailed_info": [{
                            "name": "NVIDIA GeForce RTX 3060",
                            "memory_total": 12_884_901_888u64,
                            "memory_used": 3_221_225_472u64,
                            "utilization": util,
                            "temperature": 54,
                        }],
                    }),
                );
            } else if self.cfg.quirks && i % 4 == 1 {
                map.insert(
                    "gpu".into(),
                    json!({"count": 0, "average_usage": 0, "detailed_info": null}),
                );
            }
            if self.cfg.quirks && i % 5 == 4 {
                // An old agent: no swap section, connections unknown.
                map.remove("swap");
                map.insert("connections".into(), Value::Null);
            }
        }
        Some(report)
    }

    /// The ping tasks: id, name, type, interval in seconds.
    pub(super) fn ping_tasks(&self) -> Vec<(u64, &'static str, &'static str, u64)> {
        [
            (1, "百度", "icmp", 30),
            (2, "Cloudflare DNS", "tcp", 60),
            (3, "Google", "http", 120),
        ]
        .into_iter()
        .take(self.cfg.ping_tasks)
        .collect()
    }

    /// Node `idx`'s probes of the last `hours` by task: (task id, unix time, round trip in ms
    /// or `None` when lost), oldest first within a task. Only online nodes that are a target
    /// of the tasks have any.
    pub(super) fn probes(&self, idx: usize, hours: f64) -> Vec<(u64, u64, Option<i64>)> {
        let mut probes = Vec::new();
        if !(self.has_ping(idx) && self.online(idx)) {
            return probes;
        }
        for (id, _, _, interval) in self.ping_tasks() {
            let n = (hours * 3600.0 / interval as f64) as u64;
            let newest = self.now / interval * interval;
            for j in 0..n {
                let age = n - 1 - j;
                let at = newest - age * interval;
                // One probe in four lost, the newest among them.
                let lost = self.cfg.lossy_node == Some(idx) && age.is_multiple_of(4);
                let base = 20.0 + 150.0 * unit(self.seed(), T_PING, idx as u64 * 8 + id);
                let ms = (base * (1.0 + 0.2 * unit(self.seed(), T_PING, at))).round() as i64;
                probes.push((id, at, (!lost).then_some(ms)));
            }
        }
        probes
    }

    /// Ping records of node `idx` for the last `hours`, oldest first, and the tasks.
    pub(super) fn ping(&self, idx: usize, hours: f64) -> Value {
        let uuid = node_uuid(self.seed(), idx);
        let mut records: Vec<(u64, Value)> = self
            .probes(idx, hours)
            .into_iter()
            .map(|(id, at, ms)| {
                let record = json!({
                    "client": uuid,
                    "task_id": id,
                    "time": fmt_utc_nanos(at as f64),
                    "value": ms.unwrap_or(-1),
                });
                (at, record)
            })
            .collect();
        records.sort_by_key(|(at, _)| *at);
        let tasks: Vec<Value> = self
            .ping_tasks()
            .iter()
            .map(|(id, name, ty, interval)| json!({"id": id, "name": name, "type": ty, "interval": interval}))
            .collect();
        json!({
            "count": records.len(),
            "records": records.into_iter().map(|(_, r)| r).collect::<Vec<_>>(),
            "tasks": tasks,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_look_like_uuids_and_are_stable() {
        let u = node_uuid(1, 0);
        assert_eq!(u.len(), 36);
        assert_eq!(u.as_bytes()[14], b'4');
        assert_eq!(u, node_uuid(1, 0));
        assert_ne!(u, node_uuid(1, 1));
    }
}
