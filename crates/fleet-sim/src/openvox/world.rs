//! The gateway at one instant: its ports (FXO then FXS, hook state, alarms, line voltages), SIP
//! registrations, CPU and memory, and what `sys_info/*` reports of them. Port and SIP state is
//! what tests change; CPU, memory, voltages and SIP expiry move with the seconds since start,
//! the processor counters as exact integrals so they only grow.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use serde_json::{json, Map, Value};

use super::config::OpenvoxSimConfig;
use super::settings::Settings;
use crate::util::{lock, mix, unit};

/// System uptime when the simulator starts.
const BASE_UPTIME: u64 = 180_000;
const MEMORY_TOTAL_KB: u64 = 120_608;

const T_CPU: u64 = 3;
const T_MEM: u64 = 4;
const T_VOLT: u64 = 5;

/// The gateway's state that lives between answers, some of it set by tests.
pub(super) struct Gateway {
    started: Instant,
    pub(super) ports: Mutex<Vec<Port>>,
    /// Fixed SIP texts set by tests, over the moving defaults.
    pub(super) sip: Mutex<BTreeMap<String, String>>,
    /// The interface board stopped updating its uptime.
    pub(super) board_stale: AtomicBool,
    /// Clock, configuration and packages.
    pub(super) settings: Settings,
}

impl Gateway {
    pub(super) fn new(cfg: &OpenvoxSimConfig) -> Gateway {
        Gateway {
            started: Instant::now(),
            ports: Mutex::new(initial_ports(cfg.fxo_ports, cfg.fxs_ports)),
            sip: Mutex::new(BTreeMap::new()),
            board_stale: AtomicBool::new(false),
            settings: Settings::new(),
        }
    }
}

/// How `sys_info/interface` writes its nested strings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Nested {
    /// As the gateway's state is.
    Real,
    /// Empty, or not JSON.
    Garbled,
    /// Every port's signalling, alarm and echo-canceller words and every SIP state replaced by
    /// words never seen before, numbered `n`.
    Invented(u32),
}

#[derive(Clone)]
pub(super) struct Port {
    fxs: bool,
    in_use: bool,
    pub(super) offhook: bool,
    pub(super) alarm: Option<String>,
    ec: &'static str,
}

pub(super) fn initial_ports(fxo: usize, fxs: usize) -> Vec<Port> {
    let fxo_ports = (0..fxo).map(|i| Port {
        fxs: false,
        in_use: i == 0,
        offhook: false,
        alarm: (i == 2).then(|| "RED".to_owned()),
        ec: "G168V2",
    });
    let fxs_ports = (0..fxs).map(|i| Port {
        fxs: true,
        in_use: i < 2,
        offhook: i == 0,
        alarm: None,
        ec: "OSLEC",
    });
    fxo_ports.chain(fxs_ports).collect()
}

pub(super) struct World<'a> {
    cfg: &'a OpenvoxSimConfig,
    gateway: &'a Gateway,
    /// Seconds since the simulator started.
    t: f64,
}

impl<'a> World<'a> {
    pub(super) fn now(cfg: &'a OpenvoxSimConfig, gateway: &'a Gateway) -> World<'a> {
        World {
            cfg,
            gateway,
            t: gateway.started.elapsed().as_secs_f64(),
        }
    }

    fn seed(&self) -> u64 {
        self.cfg.seed
    }

    fn uptime(&self) -> u64 {
        BASE_UPTIME + self.t as u64
    }

    fn model(&self) -> String {
        let cfg = &self.cfg;
        format!(
            "iAG{}00 V2-{}S{}O",
            cfg.fxs_ports + cfg.fxo_ports,
            cfg.fxs_ports,
            cfg.fxo_ports
        )
    }

    fn platform(&self) -> &'static str {
        if self.cfg.slots > 1 {
            "netbus"
        } else {
            "combined"
        }
    }

    fn memory_free_kb(&self) -> u64 {
        let wave = (self.t / 45.0 + unit(self.seed(), T_MEM, 0) * 6.0).sin();
        (37_172.0 + 3_000.0 * wave) as u64
    }

    pub(super) fn oem(&self) -> Value {
        let cfg = &self.cfg;
        json!({
            "vendor": "OpenVox", "website": "www.openvox.cn", "product": "OpenVox IAD Series",
            "region": "zh", "language": "cn", "model2": self.model(), "sn": serial(self.seed()),
            "address": "", "tel": "", "fax": "", "email": "",
            "maxslots": cfg.slots, "interface": "analog", "maxspans": cfg.spans.max(1),
            "maxchannels": cfg.fxs_ports + cfg.fxo_ports,
            "firmware_model": "iac-v14", "firmware_version": "r0-4bdc68d4",
            "platform": self.platform(), "maxprofiles": 4,
            "fxs_enable": if cfg.fxs_ports > 0 { "yes" } else { "no" },
            "fxo_enable": if cfg.fxo_ports > 0 { "yes" } else { "no" },
            "maxacls": 16, "maxlocalswitchlist": 64, "maxdigitmaprule": 64,
            "maxcallrouterule": 64, "maxroutelist": 64, "maxfirewallrules": 64,
            "maxdomainparselist": 0, "fxo_groupstart": 4, "fxo_groupmax": 60,
            "mac_str": "A09AE3000001", "extraface": "", "maxsiptrunk": 6, "product_id": "2",
            "vendor_cn": "深圳市开源通信有限公司", "style": "blue",
        })
    }

    pub(super) fn performance(&self) -> Value {
        let (_, total, idle) = processor(self.seed(), self.t);
        json!({
            "uptime": self.uptime(),
            "processor_total": total as u64,
            "processor_idle": idle as u64,
            "memory_total": MEMORY_TOTAL_KB,
            "memory_idle": self.memory_free_kb(),
        })
    }

    pub(super) fn device_info(&self) -> Value {
        let (load, _, _) = processor(self.seed(), self.t);
        let used = 100 * (MEMORY_TOTAL_KB - self.memory_free_kb()) / MEMORY_TOTAL_KB;
        json!({
            "device_sn": serial(self.seed()), "product": "OpenVox IAD Series", "product_id": "2",
            "vendor": "OpenVox", "website": "www.openvox.cn", "region": "zh", "language": "cn",
            "platform": self.platform(), "device_model": self.model(),
            "firmware_model": "iac-v14", "firmware_version": "r0-4bdc68d4",
            "mac_str": "a09ae3000001", "device_ip": "172.16.6.79", "interface": "analog",
            "os_time": self.gateway.settings.device_time().to_string(), "uptime": self.uptime().to_string(),
            "use_cpu": format!("{}%", (load * 100.0).round()),
            "use_memory": format!("{used}%"), "use_storage": "4%",
        })
    }

    pub(super) fn oem_web(&self) -> Value {
        json!({
            "device_model": self.model(), "vendor": "OpenVox",
            "vendor_cn": "深圳市开源通信有限公司", "style": "blue",
            "i18n_user": "zh en fr pt th ru", "web_name": "",
        })
    }

    /// Line voltage: ~48 V idle, ~8 V while a call holds the loop, ~1 V without a line.
    fn voltage(&self, ch: usize, p: &Port) -> u64 {
        let base = if p.alarm.is_some() {
            1.0
        } else if p.offhook || (!p.fxs && p.in_use) {
            8.0
        } else {
            48.0
        };
        let wobble = (self.t / 30.0 + unit(self.seed(), T_VOLT, ch as u64) * 6.0).sin();
        (base + base / 48.0 * 1.5 * wobble).round().max(0.0) as u64
    }

    fn sip_register(&self) -> Map<String, Value> {
        let mut sip = Map::new();
        let refresh = 3600 - (self.t as u64 % 3600);
        sip.insert(
            "1reg".into(),
            format!("Registered (exp. {refresh}s)").into(),
        );
        let ago = 11_597 + self.t as u64;
        sip.insert("6reg".into(), format!("Rejected (exp. {ago}s ago)").into());
        for (k, v) in lock(&self.gateway.sip).iter() {
            sip.insert(k.clone(), v.clone().into());
        }
        sip
    }

    pub(super) fn interface(&self, slot: u64, nested_as: Nested) -> Value {
        let invented = match nested_as {
            Nested::Invented(n) => Some(n),
            _ => None,
        };
        let ports = lock(&self.gateway.ports).clone();
        let n = ports.len();
        let chans = |f: &dyn Fn(usize, &Port) -> Option<Value>| -> Map<String, Value> {
            ports
                .iter()
                .enumerate()
                .filter_map(|(i, p)| Some(((i + 1).to_string(), f(i + 1, p)?)))
                .collect()
        };
        let spans = self.cfg.spans.max(1);
        // Every span numbers its ports from 1 and mirrors the first span's state.
        let per_span = |v: Value| -> Value {
            (1..=spans)
                .map(|span| (span.to_string(), v.clone()))
                .collect::<Map<String, Value>>()
                .into()
        };
        let scan = per_span(json!({
            "basechan": "1",
            "totchans": n.to_string(),
            "type": "analog",
            "port": chans(&|_, p| Some((if p.fxs { "FXS" } else { "FXO" }).into())),
            "slic": chans(&|_, p| Some((if p.fxs { "S1" } else { "O0" }).into())),
        }));
        let state = chans(&|ch, p| {
            // Signalling names the far end: an FXS port talks FXO signalling.
            let mut s = match invented {
                Some(n) => format!("X{n}C{ch}KS"),
                None => String::from(if p.fxs { "FXOKS" } else { "FXSKS" }),
            };
            if p.in_use {
                s.push_str(" (In use)");
            }
            if let Some(n) = invented {
                s.push_str(&format!(" ALARM{n}C{ch} NOISE{n}C{ch}"));
            } else if let Some(a) = &p.alarm {
                s.push(' ');
                s.push_str(a);
            }
            let active = if p.in_use { "ACTIVE" } else { "INACTIVE" };
            let ec = invented.map_or_else(|| p.ec.to_owned(), |n| format!("EC{n}C{ch}"));
            s.push_str(&format!(" (EC: {ec} - {active})"));
            Some(s.into())
        });
        // Hook state and voltages are keyed by channel alone: a board with several spans (no
        // analog board has) reports none here.
        let analog = spans == 1;
        let hook = chans(&|_, p| {
            (analog && p.fxs).then(|| (if p.offhook { "Offhook" } else { "Onhook" }).into())
        });
        let volts = chans(&|ch, p| analog.then(|| self.voltage(ch, p).to_string().into()));
        let nested = |v: Value| Value::String(v.to_string());
        let mut sip = self.sip_register();
        if let Some(n) = invented {
            for (k, v) in sip.iter_mut() {
                *v = format!("State{n}{k} (exp. 60s)").into();
            }
        }
        let (dahdi_port, sip_register) = match nested_as {
            Nested::Garbled => (Value::from(""), Value::from("Registered (exp. 120s)")),
            _ => (
                nested(per_span(Value::Object(state))),
                nested(Value::Object(sip)),
            ),
        };
        let uptime = self.uptime();
        let board_uptime = if self.gateway.board_stale.load(Ordering::SeqCst) {
            uptime.saturating_sub(120)
        } else {
            uptime.saturating_sub(1)
        };
        json!({
            "uptime": uptime,
            "interface": [{
                "slotnum": slot,
                "uptime": board_uptime,
                "model": "iac-v14",
                "version": "r0-4bdc68d4",
                "product_id": "2",
                "interface": "analog",
                "dahdi_scan": nested(scan),
                "dahdi_port": dahdi_port,
                "sip_register": sip_register,
                "dahdi_analog": nested(Value::Object(hook)),
                "macaddr": "",
                "voltage": nested(Value::Object(volts)),
                "dahdi_digital": [],
            }],
            "voip_port": {
                "sip_start": 30000, "sip_end": 30071, "sip_channel_start": 30000,
                "sip_group_start": 30008, "sip_other_start": 30068, "sip_anonymous": 30068,
                "rtp_start": 10000, "rtp_end": 10023, "udptl_start": 10024, "udptl_end": 10031,
            },
        })
    }
}

/// CPU load in `[0.03, 0.13]` at `t`, and the processor counters (total, idle) with busy time
/// as the load's exact integral, so both counters only grow.
fn processor(seed: u64, t: f64) -> (f64, f64, f64) {
    let omega = std::f64::consts::TAU / (60.0 + 120.0 * unit(seed, T_CPU, 0));
    let load = 0.08 + 0.05 * (omega * t).sin();
    let total = (BASE_UPTIME as f64 + t) * 1.03;
    let busy = BASE_UPTIME as f64 * 0.08 + 0.08 * t + 0.05 / omega * (1.0 - (omega * t).cos());
    (load, total, total - busy)
}

pub(super) fn serial(seed: u64) -> String {
    format!("AG10S{:07}", mix(seed) % 10_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_counters_only_grow() {
        let mut last = (0.0, 0.0);
        for s in 0..2000 {
            let (load, total, idle) = processor(7, s as f64 * 0.9);
            assert!((0.03..=0.13).contains(&load));
            assert!(total >= last.0 && idle >= last.1);
            last = (total, idle);
        }
    }
}
