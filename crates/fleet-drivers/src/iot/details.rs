//! What else the device answer says of a device and its cards, beyond usage and state: money
//! on and owed by each card, the carrier's reset date and the card's last status report, which
//! card serves, the serving network's identity and the warranty.
//!
//! Units and meanings the platform does not publish are not guessed: `balance` and
//! `arrearsBalance` go out as the platform writes them (0 in the document's example), and
//! `effectiveSim` goes out raw (in `iot_device_status_code`), read as a slot only through the
//! operator's `effective_sim_slots` mapping. `mcc`/`mnc` name an operator, not a place, so they
//! need no `export_location`. A `warrantyExpire` of `2000-01-01 00:00:00` is the platform's
//! "unset" (the document's example), not a warranty that ended in 2000.

use super::reading::{DeviceReading, SimReading};
use fleet_core::snapshot::{Family, SnapshotBuilder};

const DEV: &[&str] = &["device_no"];
const SIM: &[&str] = &["device_no", "iccid", "slot"];

pub(super) static SIM_BALANCE: Family = Family::gauge(
    "iot_sim_balance",
    "Money on the card as the platform reports it (unit not published).",
    SIM,
);
pub(super) static SIM_ARREARS: Family = Family::gauge(
    "iot_sim_arrears_balance",
    "Money the card owes as the platform reports it (unit not published); above 0 is in arrears.",
    SIM,
);
pub(super) static SIM_RESET: Family = Family::gauge(
    "iot_sim_carrier_reset_timestamp_seconds",
    "Unix time the carrier's usage count of the card starts from.",
    SIM,
);
pub(super) static SIM_LAST_STATUS: Family = Family::gauge(
    "iot_sim_last_status_timestamp_seconds",
    "Unix time of the card's last status report to the platform.",
    SIM,
);
pub(super) static SIM_SERVING: Family = Family::gauge(
    "iot_sim_serving",
    "1 for the card the device uses now, 0 for its others (through effective_sim_slots).",
    SIM,
);
pub(super) static NETWORK_INFO: Family = Family::gauge(
    "iot_device_network_info",
    "The serving cellular network's country and operator codes; always 1.",
    &["device_no", "mcc", "mnc"],
);
pub(super) static WARRANTY: Family = Family::gauge(
    "iot_device_warranty_expiry_timestamp_seconds",
    "Unix time the device's warranty ends; absent when the platform has none set.",
    DEV,
);

/// Network codes are 3 digits; anything longer is not one.
const MAX_CODE_CHARS: usize = 3;

/// A configured `effectiveSim` code and the slot it names.
pub(super) type EffectiveSimSlots = [(i64, String)];

/// Reads `effective_sim_slots`: code → `main`, `vice1` or `vice2`.
pub(super) fn effective_sim_slots(
    configured: &std::collections::BTreeMap<String, String>,
) -> Result<Vec<(i64, String)>, String> {
    configured
        .iter()
        .map(|(code, slot)| {
            let code = code.trim().parse::<i64>().map_err(|_| {
                format!("effective_sim_slots: key {code:?} is not an effectiveSim code (a number)")
            })?;
            if !["main", "vice1", "vice2"].contains(&slot.as_str()) {
                return Err(format!(
                    "effective_sim_slots: {slot:?} is not a slot (main, vice1 or vice2)"
                ));
            }
            Ok((code, slot.clone()))
        })
        .collect()
}

/// The slot the device's `effectiveSim` names, when the operator mapped its code.
pub(super) fn serving_slot<'m>(d: &DeviceReading, slots: &'m EffectiveSimSlots) -> Option<&'m str> {
    let code = d.effective_sim.get()?;
    slots
        .iter()
        .find(|(c, _)| *c as f64 == code)
        .map(|(_, s)| s.as_str())
}

pub(super) fn device(b: &mut SnapshotBuilder, device_no: &str, d: &DeviceReading) {
    let (mcc, mnc) = (&*d.mcc, &*d.mnc);
    let code = |c: &str| {
        !c.is_empty() && c.len() <= MAX_CODE_CHARS && c.bytes().all(|b| b.is_ascii_digit())
    };
    if code(mcc) && code(mnc) {
        b.add(&NETWORK_INFO, &[device_no, mcc, mnc], 1.0);
    }
    b.add_opt(&WARRANTY, &[device_no], d.warranty_expiry.get());
}

/// One card's details; `id` is its `device_no`, `iccid`, `slot`; `serving` the slot that
/// serves, when known.
pub(super) fn sim(b: &mut SnapshotBuilder, id: &[&str; 3], c: &SimReading, serving: Option<&str>) {
    b.add_opt(&SIM_BALANCE, id, c.balance.get());
    b.add_opt(&SIM_ARREARS, id, c.arrears_balance.get());
    b.add_opt(&SIM_RESET, id, c.carrier_reset_at.get());
    b.add_opt(&SIM_LAST_STATUS, id, c.last_status_at.get());
    b.add_opt(&SIM_SERVING, id, serving.map(|s| f64::from(s == id[2])));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    use super::super::model::{parse_answer, Answer, Device, DeviceFlow};
    use super::super::reading::Mapping;
    use crate::util::testing::{exposition, fixture, has};

    /// A device without cards, read with the defaults but UTC dates.
    fn read_device(device: Device) -> DeviceReading {
        let flow = DeviceFlow {
            device,
            sims: Vec::new(),
        };
        let utc = Mapping {
            utc_offset_secs: 0,
            ..Mapping::default()
        };
        DeviceReading::read(&flow, &utc)
    }

    #[test]
    fn the_documented_answer_gives_money_dates_network_and_no_unset_warranty() {
        let Answer::Ok(flow) = parse_answer(&fixture("iot", "query_device_flow.json"))
            .unwrap()
            .answer
        else {
            panic!("not ok")
        };
        let reading = DeviceReading::read(&flow, &Mapping::default());
        let slots = vec![(2, "vice1".to_string())];
        let serving = serving_slot(&reading, &slots);
        let m = exposition("t", |b| {
            device(b, "d", &reading);
            sim(b, &["d", "c1", "main"], &reading.sims[0], serving);
            sim(b, &["d", "c2", "vice1"], &reading.sims[1], serving);
        });
        let main = r#"target="t",device_no="d",iccid="c1",slot="main""#;
        let vice = r#"target="t",device_no="d",iccid="c2",slot="vice1""#;
        assert!(
            has(
                &m,
                r#"iot_device_network_info{target="t",device_no="d",mcc="460",mnc="0"} 1"#
            ),
            "{m}"
        );
        assert!(!m.contains("warranty"), "2000-01-01 is unset: {m}");
        assert!(has(&m, &format!("iot_sim_balance{{{main}}} 0")), "{m}");
        assert!(
            has(&m, &format!("iot_sim_arrears_balance{{{main}}} 0")),
            "{m}"
        );
        // 2025-08-01 00:00:00 and 2025-09-18 18:24:09 in UTC+8.
        assert!(
            has(
                &m,
                &format!("iot_sim_carrier_reset_timestamp_seconds{{{main}}} 1753977600")
            ),
            "{m}"
        );
        assert!(
            has(
                &m,
                &format!("iot_sim_last_status_timestamp_seconds{{{main}}} 1758191049")
            ),
            "{m}"
        );
        assert!(has(&m, &format!("iot_sim_serving{{{main}}} 0")), "{m}");
        assert!(has(&m, &format!("iot_sim_serving{{{vice}}} 1")), "{m}");
        let set = read_device(Device {
            warranty_expire: "2027-01-01 00:00:00".into(),
            ..Device::default()
        });
        let m = exposition("t", |b| device(b, "d", &set));
        assert!(
            has(
                &m,
                r#"iot_device_warranty_expiry_timestamp_seconds{target="t",device_no="d"} 1798761600"#
            ),
            "{m}"
        );
        assert!(!m.contains("network_info"), "no codes, no series");
    }

    #[test]
    fn effective_sim_codes_map_to_slots_and_bad_entries_name_the_key() {
        let cfg: BTreeMap<String, String> =
            [("1".into(), "main".into()), ("2".into(), "vice1".into())].into();
        let slots = effective_sim_slots(&cfg).unwrap();
        let device = |code| {
            read_device(Device {
                effective_sim: code,
                ..Device::default()
            })
        };
        assert_eq!(serving_slot(&device(Some(2.0)), &slots), Some("vice1"));
        assert_eq!(serving_slot(&device(Some(3.0)), &slots), None);
        assert_eq!(serving_slot(&device(None), &slots), None);
        let bad: BTreeMap<String, String> = [("x".into(), "main".into())].into();
        assert!(effective_sim_slots(&bad).unwrap_err().contains("\"x\""));
        let bad: BTreeMap<String, String> = [("1".into(), "sim2".into())].into();
        assert!(effective_sim_slots(&bad).unwrap_err().contains("sim2"));
    }
}
