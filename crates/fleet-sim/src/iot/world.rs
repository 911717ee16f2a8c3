//! The simulated fleet: MiFi devices, each with up to three SIM cards, as `queryDeviceFlow`
//! reports them. Identities (device numbers, ICCIDs, passwords) come from the index and `seed`;
//! values move with the seconds since start (usage grows within the plan, signal, battery and
//! clients wander). With quirks on some devices carry numbers as strings, `null` objects, no
//! cards or undocumented status codes.

use serde_json::{json, Value};

use super::config::IotSimConfig;
use super::wire::{local_datetime, num};
use crate::util::{mix, unit};

/// Device numbers are this prefix and a 7-digit index: 15 digits, like the IMEIs they are.
const DEVICE_PREFIX: &str = "86521407";

const T_RSSI: u64 = 1;
const T_BATTERY: u64 = 2;
const T_CLIENTS: u64 = 3;
const T_USAGE: u64 = 4;
const T_WIFI: u64 = 5;
const T_PLACE: u64 = 6;

/// Plan sizes in the platform's flow unit (KiB: 100, 200 and 50 GiB).
const PLANS: [u64; 3] = [104_857_600, 209_715_200, 52_428_800];

/// Quirky devices, by index, when quirks are on.
fn strings_for_numbers(cfg: &IotSimConfig, i: usize) -> bool {
    cfg.quirks && i % 5 == 1
}
fn null_objects(cfg: &IotSimConfig, i: usize) -> bool {
    cfg.quirks && i % 7 == 3
}
fn no_cards(cfg: &IotSimConfig, i: usize) -> bool {
    cfg.quirks && i % 17 == 16
}
fn odd_status(cfg: &IotSimConfig, i: usize) -> bool {
    cfg.quirks && i % 6 == 5
}

pub(super) fn sim_count(cfg: &IotSimConfig, i: usize) -> usize {
    if no_cards(cfg, i) {
        0
    } else {
        cfg.sims_per_device.unwrap_or(1 + i % 3).clamp(1, 3)
    }
}

/// ICCIDs by slot: China Mobile (`898608`, 20 characters with a letter, as in the document),
/// China Telecom (`898603`, 19 digits), China Unicom (`898601`, 20 digits).
pub(super) fn iccid(i: usize, slot: usize) -> String {
    match slot {
        0 => format!("898608841925D{i:07}"),
        1 => format!("8986032142{i:09}"),
        _ => format!("89860121800{i:09}"),
    }
}

fn sim_no(i: usize, slot: usize) -> String {
    match slot {
        0 => format!("106493{i:07}"),
        1 => format!("144254{i:07}"),
        _ => format!("146880{i:07}"),
    }
}

pub(super) fn wifi_password(seed: u64, i: usize) -> String {
    format!(
        "{:010}",
        mix(seed ^ mix(T_WIFI ^ i as u64)) % 10_000_000_000
    )
}

pub(super) fn web_password(i: usize) -> String {
    format!("adm!n{i:04}")
}

pub(super) fn device_data(
    cfg: &IotSimConfig,
    i: usize,
    now: u64,
    started_unix: u64,
    t: f64,
) -> Value {
    let seed = cfg.seed;
    let idx = i as u64;
    let u = |tag, k| unit(seed, tag, idx * 8 + k);
    let strings = strings_for_numbers(cfg, i);
    let cards = sim_count(cfg, i);
    // Every eleventh device is switched off: no signal, no clients, stale status time.
    let online = i % 11 != 10;
    let device_no = device_no(i);
    let mac = format!(
        "3C:68:01:{:02X}:{:02X}:{:02X}",
        (i >> 16) & 0xff,
        (i >> 8) & 0xff,
        i & 0xff
    );
    let wifi_name = format!("MIFI-{:02X}{:02X}", (i >> 8) & 0xff, i & 0xff);
    let wave = |tag, k, period: f64| (std::f64::consts::TAU * (t / period + u(tag, k))).sin();
    let rssi = (-70.0 - 15.0 * u(T_RSSI, 0) + 8.0 * wave(T_RSSI, 1, 300.0)).round() as i64;
    // Battery drains over ~3 h and recharges, each device at its own phase.
    let phase = (t / 10_800.0 + u(T_BATTERY, 0)).fract();
    let electric = (100.0 - 85.0 * phase).round() as i64;
    let max_conn = 10;
    let conn = if online {
        ((max_conn as f64 / 2.0) * (1.0 + wave(T_CLIENTS, 0, 600.0))).round() as i64
    } else {
        0
    };
    let has_5g = i.is_multiple_of(4);
    let conn_5g = if online && has_5g {
        (4.0 * (1.0 + wave(T_CLIENTS, 1, 420.0))).round() as i64
    } else {
        0
    };
    let status_at = if online {
        now - (idx % 60)
    } else {
        started_unix.saturating_sub(86_400 + idx)
    };
    let iccid_of = |k: usize| {
        if k < cards {
            iccid(i, k)
        } else {
            String::new()
        }
    };
    let sim_no_of = |k: usize| {
        if k < cards {
            sim_no(i, k)
        } else {
            String::new()
        }
    };
    // The card the device uses now: slot 1 of two-card devices, else the main card.
    let effective = if cards >= 2 { 2 } else { 1 };
    let position = if null_objects(cfg, i) {
        Value::Null
    } else {
        json!({
            "cellId": format!("{}", 151_007_000 + idx),
            "cityCode": "441900",
            "lac": "9083",
            "lat": 22.7617255 + 0.05 * u(T_PLACE, 0),
            "lng": 114.1027542 + 0.05 * u(T_PLACE, 1),
            "mcc": "460",
            "mnc": "0",
            "provinceCode": "440000",
            "regionName": "广东省 东莞市 高园路 靠近石鼓广场",
            "updateAt": null
        })
    };
    let device_status = if odd_status(cfg, i) { 97 } else { 3 };
    let mut device = json!({
        "id": 967 + idx,
        "memberId": 1,
        "deviceNo": device_no,
        "imei": device_no,
        "mainSimNo": sim_no_of(0),
        "mainIccid": iccid_of(0),
        "vice1SimNo": sim_no_of(1),
        "vice1Iccid": iccid_of(1),
        "vice2SimNo": sim_no_of(2),
        "vice2Iccid": iccid_of(2),
        "usimIccid": "",
        "usimNo": "",
        "effectiveSim": effective,
        "wisdomNetwork": 0,
        "deviceNetwork": "1,4",
        "customDeviceNetwork": "",
        "rssi": if online { num(strings, rssi) } else { json!(0) },
        "electric": num(strings, electric),
        "onlineStatus": i64::from(online),
        "openAt": null,
        "wifiName": wifi_name,
        "wifiPass": wifi_password(seed, i),
        "showWifi": 1,
        "connCount": num(strings, conn),
        "switchWifi": 1,
        "maxConnCount": max_conn,
        "wifiEncrypt": "WPA2PSK"
    });
    let rest = json!({
        "wifiName5G": if has_5g { format!("{wifi_name}-5G") } else { String::new() },
        "wifiPass5G": if has_5g { wifi_password(seed, i + 1) } else { String::new() },
        "showWifi5G": i64::from(has_5g),
        "connCount5G": conn_5g,
        "switchWifi5G": i64::from(has_5g),
        "maxConnCount5G": if has_5g { 16 } else { 0 },
        "wifiEncrypt5G": if has_5g { "WPA2PSK" } else { "" },
        "mac": mac,
        "lastTerminalMac": "",
        "webPassword": web_password(i),
        "position": position,
        "softVersion": if i.is_multiple_of(2) {
            "UZ901LD1.0_KSBC_JINANZHENGYI_SL_V2.01.01.02P42U28P1_02-250730"
        } else {
            "UZ801V3.2_KSBC_SL_V2.01.01.02P40U26_01-250312"
        },
        "deviceStatus": device_status,
        "conned": null,
        "history": null,
        "controlResponse": [{
            "controlAt": local_datetime(started_unix.saturating_sub(3600)),
            "eventType": 251,
            "eventValue1": "1",
            "eventValue2": ""
        }],
        "lastDeviceStatusAt": local_datetime(status_at),
        "lastDeviceFlowAt": local_datetime(status_at.saturating_sub(30)),
        // Unset (the document's `2000-01-01 00:00:00`) but on every fourth device.
        "warrantyExpire": if i % 4 == 3 { "2027-06-30 23:59:59" } else { "2000-01-01 00:00:00" },
        "status": 1,
        "remark": "",
        "createdAt": "2025-07-30 21:58:48",
        "updatedAt": local_datetime(status_at)
    });
    // Split in two only because one `json!` this large exceeds the macro recursion limit.
    if let (Value::Object(d), Value::Object(r)) = (&mut device, rest) {
        d.extend(r);
    }
    let sims: Vec<Value> = (0..cards)
        .map(|k| card(cfg, i, k, k + 1 == effective, now, t))
        .collect();
    json!({"device": device, "sims": sims})
}

fn card(cfg: &IotSimConfig, i: usize, k: usize, in_use: bool, now: u64, t: f64) -> Value {
    let idx = (i * 3 + k) as u64;
    let u = |tag, n| unit(cfg.seed, tag, idx * 8 + n);
    let strings = strings_for_numbers(cfg, i);
    let total = PLANS[(i + k) % PLANS.len()];
    // Usage grows from a seeded start at ~0.5..1.5 KiB/s on the card in use, never past the plan.
    let rate = if in_use { 0.5 + u(T_USAGE, 1) } else { 0.0 };
    let used = ((total as f64 * 0.6 * u(T_USAGE, 0) + rate * t) as u64).min(total);
    let carrier = used / 4;
    let plan_end = now - now % 86_400 + 86_400 * (20 + idx % 60) - 8 * 3600;
    let (sim_status, online_status) = match (odd_status(cfg, i), in_use) {
        (true, _) => (12, 9),
        (false, true) => (4, 2),
        (false, false) => (4, 3),
    };
    json!({
        "id": 182_717 + idx,
        "memberId": 1,
        "gatewayId": 270,
        "gatewaySchemeId": 269,
        "poolId": 0,
        "packageGroupId": 63,
        "breakAt": null,
        "breakRemoveAt": null,
        "simNo": sim_no(i, k),
        "dockNo": sim_no(i, k),
        "iccid": iccid(i, k),
        "imsi": "",
        "imei": device_no(i),
        "deviceNo": device_no(i),
        "sourceType": 2,
        "vice": k + 1,
        "mobile": "",
        "balance": 0,
        "arrearsBalance": 0,
        "payPassword": "",
        "simStatus": num(strings, sim_status),
        "activateStatus": 2,
        "authStatus": if k == 1 { 1 } else { 2 },
        "authPlatformStatus": 1,
        "internetStatus": if in_use { 2 } else { 1 },
        "onlineStatus": online_status,
        "cancelStatus": 1,
        "activateAt": "2025-08-12 15:18:42",
        "authAt": null,
        "totalFlow": num(strings, total as i64),
        "useFlow": num(strings, used as i64),
        "realUseFlow": used,
        "dockUserFlow": carrier,
        "dockResetDate": "2025-08-01 00:00:00",
        "endAt": if null_objects(cfg, i) { Value::Null } else { json!(local_datetime(plan_end)) },
        "lastSimStatusAt": local_datetime(now.saturating_sub(idx % 90)),
        "lastActiveAt": local_datetime(now.saturating_sub(if in_use { 5 } else { 86_400 })),
        "status": 1,
        "updatedAt": local_datetime(now),
        "createdAt": "2025-07-30 21:58:48"
    })
}

/// The number of device `i`.
pub(super) fn device_no(i: usize) -> String {
    format!("{DEVICE_PREFIX}{i:07}")
}

/// The index of a device number, if it is one of the `devices` the account holds.
pub(super) fn device_index(device_no: &str, devices: usize) -> Option<usize> {
    device_no
        .strip_prefix(DEVICE_PREFIX)
        .filter(|rest| rest.len() == 7)
        .and_then(|rest| rest.parse::<usize>().ok())
        .filter(|i| *i < devices)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iot::IotSim;

    #[test]
    fn device_numbers_round_trip_and_cards_follow_the_quirks() {
        let cfg = IotSimConfig::default();
        assert_eq!(IotSim::device_no(3), "865214070000003");
        assert_eq!(sim_count(&cfg, 0), 1);
        assert_eq!(sim_count(&cfg, 2), 3);
        assert_eq!(sim_count(&cfg, 16), 0);
        assert_eq!(iccid(5, 0).len(), 20);
        assert_eq!(iccid(5, 1).len(), 19);
        let d = device_data(&cfg, 2, 1_758_192_050, 1_758_192_000, 10.0);
        assert_eq!(d["sims"].as_array().map(Vec::len), Some(3));
        assert_eq!(d["device"]["vice2Iccid"], iccid(2, 2));
        assert_eq!(d["sims"][1]["vice"], 2);
        let quirky = device_data(&cfg, 1, 1_758_192_050, 1_758_192_000, 10.0);
        assert!(quirky["sims"][0]["totalFlow"].is_string());
    }

    #[test]
    fn usage_grows_and_stays_within_the_plan() {
        let cfg = IotSimConfig::default();
        let used = |t| {
            device_data(&cfg, 4, 1_758_192_050, 1_758_192_000, t)["sims"][1]["realUseFlow"]
                .as_u64()
                .unwrap()
        };
        assert!(used(1000.0) > used(0.0));
        assert!(used(1e12) <= PLANS[(4 + 1) % 3]);
    }
}
