//! What the driver keeps of a device's answer between its visits: the values its series are
//! written from, and nothing else.
//!
//! A device is asked once per `device_interval` (5 minutes by default) but its series are
//! written at every poll, so every device's last answer stays in memory: 10,000 devices at fleet
//! scale. The parsed answer is the wire shape (every field a `String` or `Option<f64>`, dates
//! as text, the cards in a growable list); a reading is what the mapping reads from it, done
//! once per answer: dates as Unix seconds, each card's slot resolved, flows in bytes, label text
//! in exact-size boxes, and nothing the target's `Mapping` leaves out (cards without
//! `export_sims`, the position without `export_location`). Turning an answer into a reading and
//! then into series gives the same lines as mapping the answer directly did (the tests in
//! `metrics.rs` and `details.rs` go through it), at less than half the memory per device
//! (BENCHMARKS.md, Fleet scale). The target's `Mapping` (units, time zone, code lists, what to
//! export) lives here too, since a reading is made by it; `metrics.rs` re-exports it.

use super::model::{Card, DeviceFlow};
use crate::util::lenient::{local_datetime, percent_to_ratio};

/// The platform's "no date set" for `warrantyExpire` (`details.rs` says why).
const UNSET_DATE: &str = "2000-01-01 00:00:00";

/// How a target reads the platform's values.
#[derive(Debug, Clone)]
pub struct Mapping {
    /// Bytes per unit of the flow fields.
    pub flow_bytes: f64,
    /// The offset from UTC of the platform's date strings.
    pub utc_offset_secs: i64,
    pub export_location: bool,
    pub export_sims: bool,
    pub device_online_codes: Vec<i64>,
    pub sim_online_codes: Vec<i64>,
    pub sim_activated_codes: Vec<i64>,
    pub sim_realname_codes: Vec<i64>,
    /// `effectiveSim` codes and the slots they name; none by default (not published).
    pub effective_sim_slots: Vec<(i64, String)>,
}

impl Default for Mapping {
    /// The documented defaults: KiB, China Standard Time, codes read from the document's example.
    fn default() -> Self {
        Mapping {
            flow_bytes: 1024.0,
            utc_offset_secs: 8 * 3600,
            export_location: false,
            export_sims: true,
            device_online_codes: vec![1],
            sim_online_codes: vec![2],
            sim_activated_codes: vec![2],
            sim_realname_codes: vec![2],
            effective_sim_slots: Vec::new(),
        }
    }
}

/// One device's values, as its series need them.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceReading {
    pub imei: Box<str>,
    pub soft_version: Box<str>,
    pub mac: Box<str>,
    pub wifi_name: Box<str>,
    pub wifi_encrypt: Box<str>,
    pub network: Box<str>,
    /// The serving network's codes, trimmed (`details.rs` decides whether they are codes).
    pub mcc: Box<str>,
    pub mnc: Box<str>,
    pub online_status: Num,
    pub device_status: Num,
    pub effective_sim: Num,
    pub battery_ratio: Num,
    pub rssi: Num,
    /// 2.4 GHz, then 5 GHz.
    pub bands: [Band; 2],
    pub last_status_at: Num,
    pub last_flow_at: Num,
    /// `None` also when the platform has no date set.
    pub warranty_expiry: Num,
    /// Latitude and longitude, unknown unless `export_location`.
    pub position: [Num; 2],
    /// Cards with an ICCID, read only with `export_sims`.
    pub sims: Box<[SimReading]>,
}

/// One Wi-Fi band's switch, clients and capacity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Band {
    pub switch: Num,
    pub clients: Num,
    pub max: Num,
}

/// One SIM card's values.
#[derive(Debug, Clone, PartialEq)]
pub struct SimReading {
    pub iccid: Box<str>,
    pub sim_no: Box<str>,
    pub slot: &'static str,
    pub sim_status: Num,
    pub online_status: Num,
    pub activate_status: Num,
    pub auth_status: Num,
    pub internet_status: Num,
    /// Flows in bytes: the plan's limit, then used as billed, real and as the carrier counts.
    pub limit_bytes: Num,
    pub used_bytes: [Num; 3],
    pub expiry: Num,
    pub last_active_at: Num,
    pub balance: Num,
    pub arrears_balance: Num,
    pub carrier_reset_at: Num,
    pub last_status_at: Num,
}

impl DeviceReading {
    /// Reads an answer the way `m` maps it.
    pub fn read(flow: &DeviceFlow, m: &Mapping) -> DeviceReading {
        let d = &flow.device;
        let time = |s: &str| Num::from(local_datetime(s, m.utc_offset_secs));
        let sims = if m.export_sims {
            flow.sims
                .iter()
                .filter(|c| !c.iccid.is_empty())
                .map(|c| SimReading::read(c, slot(flow, c), m))
                .collect()
        } else {
            Box::default()
        };
        DeviceReading {
            imei: d.imei.as_str().into(),
            soft_version: d.soft_version.as_str().into(),
            mac: d.mac.as_str().into(),
            wifi_name: d.wifi_name.as_str().into(),
            wifi_encrypt: d.wifi_encrypt.as_str().into(),
            network: d.device_network.as_str().into(),
            mcc: d.position.mcc.trim().into(),
            mnc: d.position.mnc.trim().into(),
            online_status: d.online_status.into(),
            device_status: d.device_status.into(),
            effective_sim: d.effective_sim.into(),
            battery_ratio: d.electric.map(percent_to_ratio).into(),
            rssi: d.rssi.into(),
            bands: [
                Band {
                    switch: d.switch_wifi.into(),
                    clients: d.conn_count.into(),
                    max: d.max_conn_count.into(),
                },
                Band {
                    switch: d.switch_wifi_5g.into(),
                    clients: d.conn_count_5g.into(),
                    max: d.max_conn_count_5g.into(),
                },
            ],
            last_status_at: time(&d.last_device_status_at),
            last_flow_at: time(&d.last_device_flow_at),
            warranty_expiry: (d.warranty_expire.trim() != UNSET_DATE)
                .then(|| local_datetime(&d.warranty_expire, m.utc_offset_secs))
                .flatten()
                .into(),
            position: match m.export_location {
                true => [d.position.lat.into(), d.position.lng.into()],
                false => [Num::UNKNOWN; 2],
            },
            sims,
        }
    }
}

impl SimReading {
    fn read(c: &Card, slot: &'static str, m: &Mapping) -> SimReading {
        let time = |s: &str| Num::from(local_datetime(s, m.utc_offset_secs));
        let bytes = |v: Option<f64>| Num::from(v.map(|v| v * m.flow_bytes));
        SimReading {
            iccid: c.iccid.as_str().into(),
            sim_no: c.sim_no.as_str().into(),
            slot,
            sim_status: c.sim_status.into(),
            online_status: c.online_status.into(),
            activate_status: c.activate_status.into(),
            auth_status: c.auth_status.into(),
            internet_status: c.internet_status.into(),
            limit_bytes: bytes(c.total_flow),
            used_bytes: [
                bytes(c.use_flow),
                bytes(c.real_use_flow),
                bytes(c.dock_user_flow),
            ],
            expiry: time(&c.end_at),
            last_active_at: time(&c.last_active_at),
            balance: c.balance.into(),
            arrears_balance: c.arrears_balance.into(),
            carrier_reset_at: time(&c.dock_reset_date),
            last_status_at: time(&c.last_sim_status_at),
        }
    }
}

/// A number that may be unknown, in 8 bytes where `Option<f64>` takes 16: a reading holds a few
/// dozen, for each of thousands of devices. Unknown is one NaN bit pattern; a known NaN is kept
/// as the standard NaN, so it never reads back as unknown (the exposition writes every NaN as
/// `NaN`, and no comparison the mapping makes holds for any NaN).
#[derive(Clone, Copy, PartialEq)]
pub struct Num(u64);

impl Num {
    /// A quiet NaN with a payload no arithmetic or parser here produces.
    pub const UNKNOWN: Num = Num(0x7ff8_dead_beef_0001);

    pub fn get(self) -> Option<f64> {
        (self != Num::UNKNOWN).then(|| f64::from_bits(self.0))
    }
}

impl From<Option<f64>> for Num {
    fn from(v: Option<f64>) -> Num {
        match v {
            None => Num::UNKNOWN,
            Some(v) if v.is_nan() => Num(f64::NAN.to_bits()),
            Some(v) => Num(v.to_bits()),
        }
    }
}

impl std::fmt::Debug for Num {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.get().fmt(f)
    }
}

/// The card's slot: by its ICCID in the device's slot fields, else by the card's `vice` number.
fn slot(flow: &DeviceFlow, card: &Card) -> &'static str {
    let d = &flow.device;
    let by_iccid = [
        (&d.main_iccid, "main"),
        (&d.vice1_iccid, "vice1"),
        (&d.vice2_iccid, "vice2"),
    ]
    .into_iter()
    .find(|(iccid, _)| !iccid.is_empty() && **iccid == card.iccid)
    .map(|(_, slot)| slot);
    by_iccid.unwrap_or(match card.vice {
        Some(1.0) => "main",
        Some(2.0) => "vice1",
        Some(3.0) => "vice2",
        _ => "unknown",
    })
}

#[cfg(test)]
mod tests {
    use super::super::model::{parse_answer, Answer};
    use super::*;
    use crate::util::testing::fixture;

    fn documented() -> DeviceFlow {
        match parse_answer(&fixture("iot", "query_device_flow.json"))
            .expect("envelope")
            .answer
        {
            Answer::Ok(flow) => *flow,
            other => panic!("not ok: {other:?}"),
        }
    }

    #[test]
    fn a_reading_holds_dates_as_unix_seconds_flows_in_bytes_and_resolved_slots() {
        let r = DeviceReading::read(&documented(), &Mapping::default());
        // 2025-09-18 18:24:10 in UTC+8.
        assert_eq!(r.last_status_at.get(), Some(1_758_191_050.0));
        assert_eq!(
            r.warranty_expiry.get(),
            None,
            "2000-01-01 is the platform's unset"
        );
        assert_eq!(r.battery_ratio.get(), Some(1.0));
        let slots: Vec<&str> = r.sims.iter().map(|s| s.slot).collect();
        assert_eq!(slots, ["main", "vice1"]);
        // 104857600 KiB = 100 GiB.
        assert_eq!(r.sims[0].limit_bytes.get(), Some(107_374_182_400.0));
        assert_eq!(&*r.sims[0].iccid, "898608841925D2210999");
    }

    #[test]
    fn an_unknown_number_stays_unknown_and_a_known_nan_stays_known() {
        for v in [
            None,
            Some(0.0),
            Some(-84.0),
            Some(f64::INFINITY),
            Some(1e300),
        ] {
            assert_eq!(Num::from(v).get(), v);
        }
        assert!(Num::from(Some(f64::NAN)).get().is_some_and(f64::is_nan));
        let odd_nan = f64::from_bits(Num::UNKNOWN.0);
        assert!(Num::from(Some(odd_nan)).get().is_some_and(f64::is_nan));
    }

    #[test]
    fn a_reading_keeps_no_cards_without_export_sims_and_no_position_without_export_location() {
        let flow = documented();
        let defaults = DeviceReading::read(&flow, &Mapping::default());
        assert_eq!(defaults.position, [Num::UNKNOWN; 2]);
        let without_sims = Mapping {
            export_sims: false,
            export_location: true,
            ..Mapping::default()
        };
        let r = DeviceReading::read(&flow, &without_sims);
        assert!(r.sims.is_empty());
        assert_eq!(
            r.position.map(Num::get),
            [Some(22.7617255), Some(114.1027542)]
        );
    }
}
