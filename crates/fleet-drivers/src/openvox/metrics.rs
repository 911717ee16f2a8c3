//! OpenVox answers → metric families. KB become bytes, percentages ratios; port and SIP state
//! words become numbers with the raw word kept in `*_info` series; CDR records become counters
//! that count each record once.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

pub use super::calls::CallCounters;
use super::calls::{BILLSEC, CALLS, CDR_LOG};
pub use super::cpu::CpuSampler;
use super::model::{nested, parse_port_state, parse_sip_state, Board, Oem, Performance, PortKind};
use super::settings::{CLOCK_INFO, CLOCK_OFFSET, NTP_ENABLED, PACKAGE_INFO, UNAPPLIED};
pub use super::unrecognized::Unrecognized;
use super::unrecognized::UNRECOGNIZED;
pub use super::words::DeviceWords;
use super::words::ALARMS;
use crate::util::lenient::{self, percent_to_ratio};
use fleet_core::snapshot::{Family, SnapshotBuilder};

static INFO: Family = Family::gauge(
    "openvox_info",
    "Gateway vendor, model, serial and firmware; always 1.",
    &[
        "vendor",
        "product",
        "model",
        "serial",
        "firmware_model",
        "firmware_version",
        "platform",
    ],
);
static CHANNELS_MAX: Family = Family::gauge(
    "openvox_channels_max",
    "Channels the gateway can hold (slots x spans x channels per span).",
    &[],
);
static UPTIME: Family = Family::gauge(
    "openvox_uptime_seconds",
    "Time since the gateway booted.",
    &[],
);
static CPU: Family = Family::gauge(
    "openvox_cpu_usage_ratio",
    "CPU busy share, 0..1, since the previous poll.",
    &[],
);
static MEM_TOTAL: Family = Family::gauge("openvox_memory_total_bytes", "Total memory.", &[]);
static MEM_FREE: Family = Family::gauge("openvox_memory_free_bytes", "Free memory.", &[]);
static STORAGE: Family = Family::gauge(
    "openvox_storage_used_ratio",
    "Share of storage in use, 0..1.",
    &[],
);
static SLOT_UP: Family = Family::gauge(
    "openvox_slot_up",
    "1 when the slot's interface board updated within 30 s of the system uptime.",
    &["slot"],
);
static SLOT_INFO: Family = Family::gauge(
    "openvox_slot_info",
    "Interface board firmware and hardware; always 1.",
    &["slot", "model", "version", "product_id", "interface"],
);
static PORT_INFO: Family = Family::gauge(
    "openvox_port_info",
    "Port kind (fxs feeds a phone, fxo takes a PSTN line), DAHDI signalling and echo canceller; always 1.",
    &["slot", "port", "kind", "signalling", "echo_canceller"],
);
static PORT_IN_USE: Family = Family::gauge(
    "openvox_port_in_use",
    "1 when the port's channel is open (lsdahdi `(In use)`).",
    &["slot", "port"],
);
static PORT_ALARM: Family = Family::gauge(
    "openvox_port_alarm",
    "1 for the port's current alarm word (ok when there is none), 0 for the others.",
    &["slot", "port", "alarm"],
);
static PORT_EC_ACTIVE: Family = Family::gauge(
    "openvox_port_echo_canceller_active",
    "1 when the port's echo canceller is active.",
    &["slot", "port"],
);
static PORT_OFFHOOK: Family = Family::gauge(
    "openvox_port_offhook",
    "1 when the port is off-hook.",
    &["slot", "port"],
);
static PORT_VOLTAGE: Family = Family::gauge(
    "openvox_port_line_voltage_volts",
    "Line voltage of the port.",
    &["slot", "port"],
);
static SIP_STATUS: Family = Family::gauge(
    "openvox_sip_registration_status",
    "SIP registration: 0 unregistered, 1 registered, 2 rejected or failed.",
    &["slot", "account"],
);
static SIP_INFO: Family = Family::gauge(
    "openvox_sip_registration_info",
    "SIP registration state word as the gateway reports it; always 1.",
    &["slot", "account", "state"],
);
static SIP_EXPIRY: Family = Family::gauge(
    "openvox_sip_registration_expiry_seconds",
    "Seconds until the SIP registration expires; negative when it expired that long ago.",
    &["slot", "account"],
);
pub static FAMILIES: &[&Family] = &[
    &INFO,
    &CHANNELS_MAX,
    &UPTIME,
    &CPU,
    &MEM_TOTAL,
    &MEM_FREE,
    &STORAGE,
    &SLOT_UP,
    &SLOT_INFO,
    &PORT_INFO,
    &PORT_IN_USE,
    &PORT_ALARM,
    &PORT_EC_ACTIVE,
    &PORT_OFFHOOK,
    &PORT_VOLTAGE,
    &SIP_STATUS,
    &SIP_INFO,
    &SIP_EXPIRY,
    &CALLS,
    &BILLSEC,
    &CDR_LOG,
    &UNRECOGNIZED,
    &UNAPPLIED,
    &CLOCK_OFFSET,
    &NTP_ENABLED,
    &CLOCK_INFO,
    &PACKAGE_INFO,
    &crate::util::FOLDED,
];

/// How far a board's uptime may lag the system's before the board counts as absent.
const BOARD_STALE_SECS: f64 = 30.0;
const KB: f64 = 1024.0;

pub fn info(b: &mut SnapshotBuilder, oem: &Oem) {
    b.add(
        &INFO,
        &[
            &oem.vendor,
            &oem.product,
            &oem.model2,
            &oem.sn,
            &oem.firmware_model,
            &oem.firmware_version,
            &oem.platform,
        ],
        1.0,
    );
    // An analog gateway has one slot and one span unless it says otherwise.
    let max = oem
        .maxchannels
        .map(|c| c * oem.maxslots.unwrap_or(1.0).max(1.0) * oem.maxspans.unwrap_or(1.0).max(1.0));
    b.add_opt(&CHANNELS_MAX, &[], max);
}

pub fn performance(b: &mut SnapshotBuilder, perf: &Performance, cpu: &mut CpuSampler) {
    b.add_opt(&UPTIME, &[], perf.uptime);
    b.add_opt(
        &CPU,
        &[],
        cpu.ratio(perf.processor_total, perf.processor_idle),
    );
    b.add_opt(&MEM_TOTAL, &[], perf.memory_total.map(|kb| kb * KB));
    b.add_opt(&MEM_FREE, &[], perf.memory_idle.map(|kb| kb * KB));
}

pub fn storage(b: &mut SnapshotBuilder, use_storage: Option<f64>) {
    b.add_opt(&STORAGE, &[], use_storage.map(percent_to_ratio));
}

/// Maps one interface board. Nested fields that cannot be read are reported in `problems` (by
/// field name) and cost only their own series; the gateway's own words in labels pass through
/// `words`, which caps them.
pub fn board(
    b: &mut SnapshotBuilder,
    system_uptime: Option<f64>,
    slot: &str,
    board: &Board,
    words: &mut DeviceWords,
    unrecognized: &mut Unrecognized,
    problems: &mut Vec<String>,
) {
    b.add(
        &SLOT_INFO,
        &[
            slot,
            &board.model,
            &board.version,
            &board.product_id,
            &board.interface,
        ],
        1.0,
    );
    if let (Some(sys), Some(own)) = (system_uptime, board.uptime) {
        b.add(&SLOT_UP, &[slot], f64::from(sys - own <= BOARD_STALE_SECS));
    }
    let read = |field: &str, text: &str, problems: &mut Vec<String>| match nested(field, text) {
        Ok(map) => Some(map),
        Err(e) => {
            problems.push(format!("slot {slot}: {e}"));
            None
        }
    };
    let scan = read("dahdi_scan", &board.dahdi_scan, problems).unwrap_or_default();
    if let Some(spans) = read("dahdi_port", &board.dahdi_port, problems) {
        // Spans number their ports from 1: on a board with several, the span is part of the
        // port's identity (`port="2/1"`), so two spans' port 1 stay two series.
        let multi_span = spans.len() > 1;
        for (span, ports) in &spans {
            let modules = scan.get(span).and_then(|s| s.get("port"));
            let ports = ports.as_object().cloned().unwrap_or_default();
            for (port, state) in numbered(&ports, "dahdi_port", slot, problems) {
                let module = modules.and_then(|m| m.get(port)).and_then(lenient::text);
                let text = lenient::text(state).unwrap_or_default();
                let port = span_port(multi_span, span, port);
                let module = module.as_deref();
                port_state(b, slot, &port, &text, module, words, unrecognized);
            }
        }
    }
    if let Some(hooks) = read("dahdi_analog", &board.dahdi_analog, problems) {
        for (port, word) in numbered(&hooks, "dahdi_analog", slot, problems) {
            let word = lenient::text(word).unwrap_or_default();
            let offhook = match word.trim().to_ascii_lowercase().as_str() {
                "onhook" => Some(0.0),
                "offhook" => Some(1.0),
                _ => {
                    unrecognized.hook_state += 1;
                    None
                }
            };
            b.add_opt(&PORT_OFFHOOK, &[slot, port], offhook);
        }
    }
    if let Some(volts) = read("voltage", &board.voltage, problems) {
        for (port, v) in numbered(&volts, "voltage", slot, problems) {
            b.add_opt(&PORT_VOLTAGE, &[slot, port], lenient::number(v));
        }
    }
    if let Some(accounts) = read("sip_register", &board.sip_register, problems) {
        for (account, text) in &accounts {
            let sip = parse_sip_state(&lenient::text(text).unwrap_or_default());
            if sip.status.is_none() {
                unrecognized.sip_state += 1;
            }
            b.add_opt(&SIP_STATUS, &[slot, account], sip.status);
            let state = words.sip_state.fold(&sip.word);
            b.add(&SIP_INFO, &[slot, account, state], 1.0);
            b.add_opt(&SIP_EXPIRY, &[slot, account], sip.expiry);
        }
    }
}

/// A port's `port` label: its number, prefixed by its span (`2/1`) on a board with several.
fn span_port(multi_span: bool, span: &str, port: &str) -> String {
    if multi_span {
        format!("{}/{port}", span.chars().take(8).collect::<String>())
    } else {
        port.to_owned()
    }
}

/// The entries of a `{channel: ..}` map whose key is a port number; others are a problem.
fn numbered<'m>(
    map: &'m Map<String, Value>,
    field: &str,
    slot: &str,
    problems: &mut Vec<String>,
) -> Vec<(&'m str, &'m Value)> {
    let (ok, bad): (Vec<_>, Vec<_>) = map
        .iter()
        .partition(|(k, _)| !k.is_empty() && k.bytes().all(|c| c.is_ascii_digit()));
    if !bad.is_empty() {
        problems.push(format!(
            "slot {slot}: `{field}` has {} port number(s) that are not numbers",
            bad.len()
        ));
    }
    ok.into_iter().map(|(k, v)| (k.as_str(), v)).collect()
}

fn port_state(
    b: &mut SnapshotBuilder,
    slot: &str,
    port: &str,
    text: &str,
    module: Option<&str>,
    device_words: &mut DeviceWords,
    unrecognized: &mut Unrecognized,
) {
    let state = parse_port_state(text);
    let kind = PortKind::from_signalling(&state.signalling)
        .or_else(|| module.and_then(PortKind::from_module));
    if kind.is_none() {
        unrecognized.port_state += 1;
    }
    let (ec_name, ec_active) = match &state.echo_canceller {
        Some((name, active)) => (name.as_str(), *active),
        None => ("", None),
    };
    let kind = kind.map_or("unknown", PortKind::label);
    let signalling = device_words.signalling.fold(&state.signalling);
    let ec_name = device_words.echo_canceller.fold(ec_name);
    b.add(&PORT_INFO, &[slot, port, kind, signalling, ec_name], 1.0);
    b.add(&PORT_IN_USE, &[slot, port], f64::from(state.in_use));
    b.add_opt(&PORT_EC_ACTIVE, &[slot, port], ec_active.map(f64::from));
    let words: Vec<String> = state
        .alarms
        .iter()
        .map(|a| a.to_ascii_lowercase())
        .collect();
    for alarm in ALARMS {
        let on = if alarm == "ok" {
            words.is_empty()
        } else {
            words.iter().any(|w| w == alarm)
        };
        b.add(&PORT_ALARM, &[slot, port, alarm], f64::from(on));
    }
    // A set: a repeated word, or two long ones cut to the same prefix, is still one series
    // (found by tests/fuzz.rs).
    let unknown_words: BTreeSet<String> = words
        .iter()
        .filter(|w| !ALARMS.contains(&w.as_str()))
        .map(|w| w.chars().take(32).collect())
        .collect();
    unrecognized.port_state += unknown_words.len() as u32;
    // Folded, several invented words are one `other` series.
    let folded: BTreeSet<&str> = unknown_words
        .iter()
        .map(|w| device_words.alarm.fold(w))
        .collect();
    for word in folded {
        b.add(&PORT_ALARM, &[slot, port, word], 1.0);
    }
    unrecognized.port_state += state.unknown.len() as u32;
}

#[cfg(test)]
mod tests {
    //! Real gateway answers (fixtures/openvox) through the wire types and the mapping.
    use super::super::model::{
        data_object, parse_answer, Answer, CdrRecord, DeviceInfo, Interface,
    };
    use super::*;
    use crate::util::testing::fixture;
    use crate::util::testing::has;
    use fleet_core::exposition::{render, Format};

    fn payload<T: serde::de::DeserializeOwned>(body: &[u8]) -> T {
        match parse_answer(body).expect("envelope") {
            Answer::Ok(data) => data_object(data).expect("payload"),
            other => panic!("not ok: {other:?}"),
        }
    }

    fn exposition(fill: impl FnOnce(&mut SnapshotBuilder)) -> String {
        let mut b = SnapshotBuilder::new(Some("gw"));
        fill(&mut b);
        String::from_utf8(render(Format::Text, [&b.finish()])).unwrap()
    }

    #[test]
    fn oem_gives_info_and_channel_capacity() {
        let oem: Oem = payload(&fixture("openvox", "oem.json"));
        let m = exposition(|b| info(b, &oem));
        assert!(
            has(
                &m,
                r#"openvox_info{target="gw",vendor="OpenVox",product="OpenVox IAD Series",model="iAG800 V2-4S4O",serial="AG10S1234596",firmware_model="iac-v14",firmware_version="r0-4bdc68d4",platform="combined"} 1"#
            ),
            "{m}"
        );
        assert!(has(&m, r#"openvox_channels_max{target="gw"} 8"#), "{m}");
    }

    #[test]
    fn performance_memory_is_kb_and_cpu_comes_from_counter_deltas() {
        let perf: Performance = payload(&fixture("openvox", "performance.json"));
        let mut cpu = CpuSampler::default();
        let m = exposition(|b| performance(b, &perf, &mut cpu));
        assert!(has(&m, r#"openvox_uptime_seconds{target="gw"} 380"#), "{m}");
        assert!(
            has(&m, r#"openvox_memory_total_bytes{target="gw"} 123502592"#),
            "{m}"
        );
        assert!(
            has(&m, r#"openvox_memory_free_bytes{target="gw"} 38064128"#),
            "{m}"
        );
        // First poll: since boot, (391 - 389) / 391.
        let first = 1.0 - 389.0 / 391.0;
        assert!(
            has(
                &m,
                &format!(r#"openvox_cpu_usage_ratio{{target="gw"}} {first}"#)
            ),
            "{m}"
        );
        // Next poll: 100 more ticks of which 90 idle.
        let next = cpu.ratio(Some(491.0), Some(479.0)).unwrap();
        assert!((next - 0.1).abs() < 1e-12, "{next}");
        // Too few ticks since then to say anything new: the last ratio stands.
        assert_eq!(cpu.ratio(Some(495.0), Some(479.0)), Some(next));
        let later = cpu.ratio(Some(511.0), Some(498.0)).unwrap();
        assert!((later - 0.05).abs() < 1e-12, "{later}");
        // Counters that went back (a reboot) start over from boot.
        assert_eq!(cpu.ratio(Some(10.0), Some(5.0)), Some(0.5));
        assert_eq!(cpu.ratio(None, Some(5.0)), None);
    }

    #[test]
    fn device_info_percent_strings() {
        let info: DeviceInfo = payload(&fixture("openvox", "device_info.json"));
        let m = exposition(|b| storage(b, info.use_storage));
        assert!(
            has(&m, r#"openvox_storage_used_ratio{target="gw"} 0.04"#),
            "{m}"
        );
    }

    #[test]
    fn a_repeated_unknown_alarm_word_is_one_series() {
        let board = Board {
            dahdi_port: r#"{"1":{"1":"FXSLS FOO foo FOO"}}"#.into(),
            ..Board::default()
        };
        let mut unrec = Unrecognized::default();
        let m = exposition(|b| {
            super::board(
                b,
                None,
                "0",
                &board,
                &mut DeviceWords::default(),
                &mut unrec,
                &mut Vec::new(),
            )
        });
        let line = r#"openvox_port_alarm{target="gw",slot="0",port="1",alarm="foo"} 1"#;
        assert_eq!(m.lines().filter(|l| *l == line).count(), 1, "{m}");
        assert_eq!(unrec.port_state, 1);
    }

    #[test]
    fn invented_words_past_max_label_values_fold_into_other_and_are_counted() {
        let mut words = DeviceWords::new(2);
        let mut unrec = Unrecognized::default();
        let m = exposition(|b| {
            for n in 0..4 {
                let bd = Board {
                    dahdi_port: format!(
                        r#"{{"1":{{"1":"X{n}KS W{n} V{n} RED (EC: E{n} - ACTIVE)"}}}}"#
                    ),
                    sip_register: format!(r#"{{"1reg":"S{n} (exp. 5s)"}}"#),
                    ..Board::default()
                };
                let slot = n.to_string();
                board(b, None, &slot, &bd, &mut words, &mut unrec, &mut Vec::new());
            }
            words.export(b);
        });
        let port =
            |slot: u8, rest: &str| format!(r#"{{target="gw",slot="{slot}",port="1"{rest}}} 1"#);
        // The first two words of each label stay themselves, later ones are `other`.
        for (slot, sig, ec) in [
            (1, "X1KS", "E1"),
            (2, "other", "other"),
            (3, "other", "other"),
        ] {
            let info = port(
                slot,
                &format!(r#",kind="unknown",signalling="{sig}",echo_canceller="{ec}""#),
            );
            assert!(has(&m, &format!("openvox_port_info{info}")), "{m}");
        }
        let alarm = |slot, word: &str| {
            format!(
                "openvox_port_alarm{}",
                port(slot, &format!(r#",alarm="{word}""#))
            )
        };
        assert!(has(&m, &alarm(0, "w0")) && has(&m, &alarm(0, "v0")), "{m}");
        // Two invented words of one port past the cap are one `other` series; known words
        // are never folded.
        assert!(
            has(&m, &alarm(1, "other")) && !m.contains(r#"alarm="w1""#),
            "{m}"
        );
        assert!(has(&m, &alarm(3, "red")), "{m}");
        let sip = |slot, state: &str| {
            format!(
                r#"openvox_sip_registration_info{{target="gw",slot="{slot}",account="1reg",state="{state}"}} 1"#
            )
        };
        assert!(has(&m, &sip(1, "S1")) && has(&m, &sip(2, "other")), "{m}");
        for (family, label, folded) in [
            ("openvox_port_info", "signalling", 2),
            ("openvox_port_info", "echo_canceller", 2),
            ("openvox_port_alarm", "alarm", 6),
            ("openvox_sip_registration_info", "state", 2),
        ] {
            let line = format!(
                r#"fleet_device_label_values_folded_total{{target="gw",family="{family}",label="{label}"}} {folded}"#
            );
            assert!(has(&m, &line), "{line}\n{m}");
        }
        // Unrecognised as before: all four signalling words, the eight invented alarm words, the
        // four SIP states.
        assert_eq!((unrec.port_state, unrec.sip_state), (4 + 8, 4));
    }

    fn map_fixture_board() -> (String, Unrecognized, Vec<String>) {
        let data: Interface = payload(&fixture("openvox", "interface.json"));
        let mut unrec = Unrecognized::default();
        let mut problems = Vec::new();
        let m = exposition(|b| {
            board(
                b,
                data.uptime,
                "0",
                &data.interface[0],
                &mut DeviceWords::default(),
                &mut unrec,
                &mut problems,
            )
        });
        (m, unrec, problems)
    }

    #[test]
    fn fxs_signalling_is_an_fxo_port_and_state_words_are_separate_facts() {
        let (m, unrec, problems) = map_fixture_board();
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(unrec.port_state + unrec.hook_state + unrec.sip_state, 0);
        let l = |port: u8, rest: &str| format!(r#"{{target="gw",slot="0",port="{port}"{rest}}}"#);
        assert!(
            has(
                &m,
                &format!(
                    "openvox_port_info{} 1",
                    l(
                        1,
                        r#",kind="fxo",signalling="FXSLS",echo_canceller="G168V2""#
                    )
                )
            ),
            "{m}"
        );
        assert!(
            has(
                &m,
                &format!(
                    "openvox_port_info{} 1",
                    l(
                        5,
                        r#",kind="fxs",signalling="FXOLS",echo_canceller="G168V2""#
                    )
                )
            ),
            "{m}"
        );
        assert!(has(&m, &format!("openvox_port_in_use{} 1", l(1, ""))));
        assert!(has(&m, &format!("openvox_port_in_use{} 0", l(3, ""))));
        assert!(has(
            &m,
            &format!("openvox_port_alarm{} 1", l(3, r#",alarm="red""#))
        ));
        assert!(has(
            &m,
            &format!("openvox_port_alarm{} 0", l(3, r#",alarm="ok""#))
        ));
        assert!(has(
            &m,
            &format!("openvox_port_alarm{} 1", l(5, r#",alarm="ok""#))
        ));
        assert!(has(
            &m,
            &format!("openvox_port_alarm{} 0", l(5, r#",alarm="red""#))
        ));
        assert!(has(
            &m,
            &format!("openvox_port_echo_canceller_active{} 0", l(8, ""))
        ));
        assert!(has(&m, &format!("openvox_port_offhook{} 0", l(5, ""))));
        assert!(
            !m.contains(&format!("openvox_port_offhook{}", l(1, ""))),
            "FXO ports report no hook state"
        );
        assert!(has(
            &m,
            &format!("openvox_port_line_voltage_volts{} 48", l(5, ""))
        ));
        assert!(has(
            &m,
            &format!("openvox_port_line_voltage_volts{} 1", l(1, ""))
        ));
        assert!(has(&m, r#"openvox_slot_up{target="gw",slot="0"} 1"#), "{m}");
        assert!(
            has(
                &m,
                r#"openvox_slot_info{target="gw",slot="0",model="iac-v14",version="r0-4bdc68d4",product_id="2",interface="analog"} 1"#
            ),
            "{m}"
        );
    }

    #[test]
    fn sip_rejected_with_expiry_ago() {
        let (m, ..) = map_fixture_board();
        let l = r#"{target="gw",slot="0",account="6reg"}"#;
        assert!(
            has(&m, &format!("openvox_sip_registration_status{l} 2")),
            "{m}"
        );
        assert!(
            has(
                &m,
                &format!("openvox_sip_registration_expiry_seconds{l} -11597")
            ),
            "{m}"
        );
        assert!(
            has(
                &m,
                r#"openvox_sip_registration_info{target="gw",slot="0",account="6reg",state="Rejected"} 1"#
            ),
            "{m}"
        );
    }

    #[test]
    fn bad_nested_strings_unknown_words_and_port_numbers_are_counted_not_fatal() {
        let board = Board {
            uptime: Some(10.0),
            dahdi_port: r#"{"1":{"1":"FXSKS PURPLE (EC: X - ACTIVE)","x":"FXOKS","2":"E&M"}}"#
                .into(),
            dahdi_analog: r#"{"1":"Ringing","2":"Offhook"}"#.into(),
            sip_register: r#"{"t1":"Unreachable (exp. 5s)"}"#.into(),
            voltage: "not json".into(),
            dahdi_scan: String::new(),
            ..Board::default()
        };
        let mut unrec = Unrecognized::default();
        let mut problems = Vec::new();
        let m = exposition(|b| board_fn(b, &board, &mut unrec, &mut problems));
        assert_eq!(unrec.port_state, 2, "PURPLE and the E&M signalling");
        assert_eq!((unrec.hook_state, unrec.sip_state), (1, 1));
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems.iter().any(|p| p.contains("`dahdi_scan` is empty")));
        assert!(problems.iter().any(|p| p.contains("`voltage` is not JSON")));
        assert!(problems.iter().any(|p| p.contains("not numbers")));
        assert!(
            !problems.iter().any(|p| p.contains("FXOKS")),
            "no device text in errors"
        );
        assert!(
            has(
                &m,
                r#"openvox_port_alarm{target="gw",slot="0",port="1",alarm="purple"} 1"#
            ),
            "{m}"
        );
        assert!(
            has(
                &m,
                r#"openvox_port_info{target="gw",slot="0",port="2",kind="unknown",signalling="E&M",echo_canceller=""} 1"#
            ),
            "{m}"
        );
        assert!(
            has(
                &m,
                r#"openvox_port_offhook{target="gw",slot="0",port="2"} 1"#
            ),
            "{m}"
        );
        assert!(
            has(
                &m,
                r#"openvox_sip_registration_info{target="gw",slot="0",account="t1",state="Unreachable"} 1"#
            ),
            "{m}"
        );
        assert!(!m.contains("openvox_sip_registration_status"), "{m}");
        assert!(
            !m.contains("openvox_slot_up"),
            "no system uptime, no verdict"
        );
        assert!(!m.contains("openvox_port_line_voltage_volts"));
    }

    #[test]
    fn ports_of_two_spans_with_the_same_number_are_two_series() {
        let port = r#"{"1":"FXSKS (EC: OSLEC - ACTIVE)","2":"FXSKS RED"}"#;
        let board = Board {
            dahdi_port: format!(r#"{{"1":{port},"2":{port}}}"#),
            ..Board::default()
        };
        let mut unrec = Unrecognized::default();
        let m = exposition(|b| board_fn(b, &board, &mut unrec, &mut Vec::new()));
        for p in ["1/1", "1/2", "2/1", "2/2"] {
            let line = format!(r#"openvox_port_in_use{{target="gw",slot="0",port="{p}"}} 0"#);
            assert!(has(&m, &line), "{p}: {m}");
        }
        assert!(
            has(
                &m,
                r#"openvox_port_alarm{target="gw",slot="0",port="2/2",alarm="red"} 1"#
            ),
            "{m}"
        );
        // One span keeps the plain channel number.
        let (single, ..) = map_fixture_board();
        assert!(single.contains(r#"port="8""#) && !single.contains(r#"port="1/"#));
    }

    fn board_fn(
        b: &mut SnapshotBuilder,
        bd: &Board,
        unrec: &mut Unrecognized,
        problems: &mut Vec<String>,
    ) {
        board(
            b,
            None,
            "0",
            bd,
            &mut DeviceWords::default(),
            unrec,
            problems,
        );
    }

    #[test]
    fn a_stale_board_is_down() {
        let bd = Board {
            uptime: Some(100.0),
            ..Board::default()
        };
        let m = exposition(|b| {
            board(
                b,
                Some(131.0),
                "1",
                &bd,
                &mut DeviceWords::default(),
                &mut Unrecognized::default(),
                &mut Vec::new(),
            )
        });
        assert!(has(&m, r#"openvox_slot_up{target="gw",slot="1"} 0"#), "{m}");
    }

    fn record(end: &str, channel: &str, disposition: &str, billsec: f64) -> CdrRecord {
        CdrRecord {
            from_channel: channel.into(),
            to_channel: "SIP/1reg-1".into(),
            disposition: disposition.into(),
            start: "2024-07-19 12:00:00".into(),
            end: end.into(),
            billsec: Some(billsec),
        }
    }

    #[test]
    fn cdr_records_count_once_across_polls_and_same_second_ends() {
        let mut calls = CallCounters::default();
        let mut unrec = Unrecognized::default();
        let a = record("2024-07-19 12:01:00", "DAHDI/5-1", "ANSWERED", 30.0);
        let b1 = record("2024-07-19 12:02:00", "DAHDI/5-1", "NO ANSWER", 0.0);
        let b2 = record("2024-07-19 12:02:00", "DAHDI/6-1", "ANSWERED", 12.0);
        let c = record("2024-07-19 12:03:00", "DAHDI/7-1", "busy", 0.0);
        let d = CdrRecord {
            start: String::new(),
            ..record("--", "DAHDI/8-1", "ANSWERED", 99.0)
        };
        let e = record("2024-07-19 12:04:00", "DAHDI/8-1", "HUNG UP", 0.0);

        // The first answer (an empty log) sets the watermark.
        calls.count(0, &[], &mut unrec);
        calls.count(0, &[a.clone(), b1.clone()], &mut unrec);
        // The same records again, plus one that ended in the same second as the newest.
        calls.count(0, &[a.clone(), b1.clone(), b2.clone()], &mut unrec);
        calls.count(
            0,
            &[a.clone(), b1.clone(), b2.clone(), c.clone(), c.clone()],
            &mut unrec,
        );
        calls.count(0, &[b2, c, d, e], &mut unrec);
        let m = exposition(|b| calls.export(b));
        for (label, n) in [
            ("answered", 2),
            ("no_answer", 1),
            ("busy", 1),
            ("failed", 0),
            ("congestion", 0),
            ("unknown", 1),
        ] {
            assert!(
                has(
                    &m,
                    &format!(r#"openvox_calls_total{{target="gw",disposition="{label}"}} {n}"#)
                ),
                "{label}: {m}"
            );
        }
        assert!(
            has(&m, r#"openvox_call_billable_seconds_total{target="gw"} 42"#),
            "{m}"
        );
        assert_eq!(
            unrec.cdr, 2,
            "one time that does not parse, one unknown disposition"
        );
        // Another slot has its own watermark, from its own first answer.
        calls.count(1, &[], &mut unrec);
        calls.count(1, &[a], &mut unrec);
        let m = exposition(|b| calls.export(b));
        assert!(
            has(
                &m,
                r#"openvox_calls_total{target="gw",disposition="answered"} 3"#
            ),
            "{m}"
        );
    }

    #[test]
    fn records_in_the_log_at_the_first_answer_are_not_counted_as_new_calls() {
        let (mut calls, mut unrec) = (CallCounters::default(), Unrecognized::default());
        let at_one = |ch: &str, d: &str, secs| record("2024-07-19 12:01:00", ch, d, secs);
        // The stored log, then a call that ended in its newest second but after it, and a
        // later one.
        let stored = [
            at_one("DAHDI/5-1", "ANSWERED", 30.0),
            at_one("DAHDI/6-1", "BUSY", 0.0),
        ];
        let new = [
            at_one("DAHDI/7-1", "ANSWERED", 5.0),
            record("2024-07-19 12:05:00", "DAHDI/5-1", "ANSWERED", 7.0),
        ];
        let expect = |calls: &CallCounters, lines: &[&str]| {
            let m = exposition(|b| calls.export(b));
            for line in lines {
                assert!(has(&m, &format!("openvox_{line}")), "{line}: {m}");
            }
        };
        calls.count(0, &stored, &mut unrec);
        expect(
            &calls,
            &[
                r#"calls_total{target="gw",disposition="answered"} 0"#,
                r#"cdr_log_records{target="gw"} 2"#,
            ],
        );
        calls.count(0, &[stored.as_slice(), &new].concat(), &mut unrec);
        expect(
            &calls,
            &[
                r#"calls_total{target="gw",disposition="answered"} 2"#,
                r#"calls_total{target="gw",disposition="busy"} 0"#,
                r#"call_billable_seconds_total{target="gw"} 12"#,
                r#"cdr_log_records{target="gw"} 4"#,
            ],
        );
    }

    #[test]
    fn no_call_counters_before_the_first_cdr_answer() {
        let calls = CallCounters::default();
        assert_eq!(exposition(|b| calls.export(b)), "");
        let mut calls = CallCounters::default();
        calls.count(0, &[], &mut Unrecognized::default());
        let m = exposition(|b| calls.export(b));
        assert!(
            has(
                &m,
                r#"openvox_calls_total{target="gw",disposition="answered"} 0"#
            ),
            "{m}"
        );
    }
}
