//! Device-flow answers → metric families. Flow fields become bytes, `electric` a ratio, local
//! date strings Unix seconds; status codes go out raw, and the 0/1 families read them through
//! configurable code lists (the platform does not publish their meaning).

use super::batch::{
    ACCOUNT_BALANCE, CARD_ARREARS, CARD_BALANCE, CARD_EXPIRY, CARD_LIMIT, CARD_MONTH_USED,
    CARD_STATUS, CARD_USED,
};
use super::details::{
    self, NETWORK_INFO, SIM_ARREARS, SIM_BALANCE, SIM_LAST_STATUS, SIM_RESET, SIM_SERVING, WARRANTY,
};
use super::model::DeviceFlow;
pub use super::reading::Mapping;
use super::reading::{Band, DeviceReading, SimReading};
use fleet_core::snapshot::{Family, SnapshotBuilder};

const DEV: &[&str] = &["device_no"];
const SIM: &[&str] = &["device_no", "iccid", "slot"];

static DEVICE_INFO: Family = Family::gauge(
    "iot_device_info",
    "Portable Wi-Fi device description; always 1.",
    &[
        "device_no",
        "imei",
        "model",
        "soft_version",
        "mac",
        "wifi_name",
        "wifi_encrypt",
        "network",
    ],
);
static DEVICE_ONLINE: Family = Family::gauge(
    "iot_device_online",
    "1 when the platform reports the device online.",
    DEV,
);
static DEVICE_STATUS: Family = Family::gauge(
    "iot_device_status_code",
    "Raw device status codes as the platform sends them, by field.",
    &["device_no", "field"],
);
static BATTERY: Family = Family::gauge("iot_device_battery_ratio", "Battery charge, 0..1.", DEV);
static SIGNAL: Family = Family::gauge(
    "iot_device_signal_dbm",
    "Cellular signal strength (RSSI).",
    DEV,
);
static WIFI_CLIENTS: Family = Family::gauge(
    "iot_device_wifi_clients",
    "Wi-Fi clients connected, by band.",
    &["device_no", "band"],
);
static WIFI_CLIENTS_MAX: Family = Family::gauge(
    "iot_device_wifi_clients_max",
    "Wi-Fi clients the device accepts, by band.",
    &["device_no", "band"],
);
static WIFI_ENABLED: Family = Family::gauge(
    "iot_device_wifi_enabled",
    "1 when the band's Wi-Fi is switched on.",
    &["device_no", "band"],
);
static LAST_STATUS: Family = Family::gauge(
    "iot_device_last_status_timestamp_seconds",
    "Unix time of the device's last status report to the platform.",
    DEV,
);
static LAST_FLOW: Family = Family::gauge(
    "iot_device_last_flow_timestamp_seconds",
    "Unix time of the device's last usage report to the platform.",
    DEV,
);
static LATITUDE: Family = Family::gauge(
    "iot_device_latitude_degrees",
    "Device position from the cell it uses (only with export_location).",
    DEV,
);
static LONGITUDE: Family = Family::gauge(
    "iot_device_longitude_degrees",
    "Device position from the cell it uses (only with export_location).",
    DEV,
);
static FETCH_OK: Family = Family::gauge(
    "iot_device_fetch_success",
    "1 when the exporter's last request for the device succeeded.",
    DEV,
);
static FETCHED_AT: Family = Family::gauge(
    "iot_device_last_fetch_timestamp_seconds",
    "Unix time the exporter last received the device's answer.",
    DEV,
);
static SIM_INFO: Family = Family::gauge(
    "iot_sim_info",
    "SIM card description; always 1.",
    &["device_no", "iccid", "slot", "sim_no", "operator"],
);
static SIM_STATUS: Family = Family::gauge(
    "iot_sim_status_code",
    "Raw SIM card status codes as the platform sends them, by field.",
    &["device_no", "iccid", "slot", "field"],
);
static SIM_ONLINE: Family = Family::gauge(
    "iot_sim_online",
    "1 when the platform reports the card online.",
    SIM,
);
static SIM_ACTIVATED: Family =
    Family::gauge("iot_sim_activated", "1 when the card is activated.", SIM);
static SIM_REALNAME: Family = Family::gauge(
    "iot_sim_realname_verified",
    "1 when the card's real-name verification is done.",
    SIM,
);
static SIM_LIMIT: Family = Family::gauge(
    "iot_sim_data_limit_bytes",
    "Data the card's plan allows.",
    SIM,
);
static SIM_USED: Family = Family::gauge(
    "iot_sim_data_used_bytes",
    "Data used in the plan period: billed, real, or as the carrier counts it.",
    &["device_no", "iccid", "slot", "kind"],
);
static SIM_EXPIRY: Family = Family::gauge(
    "iot_sim_plan_expiry_timestamp_seconds",
    "Unix time the card's plan ends.",
    SIM,
);
static SIM_ACTIVE: Family = Family::gauge(
    "iot_sim_last_active_timestamp_seconds",
    "Unix time the card was last active.",
    SIM,
);
static DEVICES: Family = Family::gauge("iot_devices", "Devices configured for the target.", &[]);
static REQUESTS: Family = Family::counter(
    "iot_api_requests_total",
    "Requests to the platform by endpoint and answer code.",
    &["endpoint", "code"],
);

/// Every IoT family, for the metrics documentation check.
pub static FAMILIES: &[&Family] = &[
    &DEVICE_INFO,
    &DEVICE_ONLINE,
    &DEVICE_STATUS,
    &BATTERY,
    &SIGNAL,
    &WIFI_CLIENTS,
    &WIFI_CLIENTS_MAX,
    &WIFI_ENABLED,
    &LAST_STATUS,
    &LAST_FLOW,
    &LATITUDE,
    &LONGITUDE,
    &FETCH_OK,
    &FETCHED_AT,
    &SIM_INFO,
    &SIM_STATUS,
    &SIM_ONLINE,
    &SIM_ACTIVATED,
    &SIM_REALNAME,
    &SIM_LIMIT,
    &SIM_USED,
    &SIM_EXPIRY,
    &SIM_ACTIVE,
    &DEVICES,
    &REQUESTS,
    &crate::util::FOLDED,
    &SIM_BALANCE,
    &SIM_ARREARS,
    &SIM_RESET,
    &SIM_LAST_STATUS,
    &SIM_SERVING,
    &NETWORK_INFO,
    &WARRANTY,
    &CARD_LIMIT,
    &CARD_USED,
    &CARD_MONTH_USED,
    &CARD_BALANCE,
    &CARD_ARREARS,
    &CARD_EXPIRY,
    &CARD_STATUS,
    &ACCOUNT_BALANCE,
];

/// 1 when a known code is in `codes`, 0 when it is not, absent when the code is unknown.
fn flag(code: Option<f64>, codes: &[i64]) -> Option<f64> {
    code.map(|c| f64::from(u8::from(codes.iter().any(|k| *k as f64 == c))))
}

/// The hardware model: what firmware strings such as `UZ901LD1.0_KSBC_…` start with.
fn model(soft_version: &str) -> &str {
    soft_version.split('_').next().unwrap_or_default()
}

/// The carrier from the ICCID's issuer digits (ITU-T E.118: `89` `86` then the operator).
fn operator(iccid: &str) -> &'static str {
    match iccid.get(..6).and_then(|p| p.strip_prefix("8986")) {
        Some("00" | "02" | "04" | "07" | "08" | "13") => "China Mobile",
        Some("01" | "06" | "09" | "10") => "China Unicom",
        Some("03" | "05" | "11") => "China Telecom",
        Some("15") => "China Broadnet",
        _ => "",
    }
}

/// One device's series from its answer: [`DeviceReading::read`], then [`device_series`].
pub fn device(b: &mut SnapshotBuilder, device_no: &str, flow: &DeviceFlow, m: &Mapping) {
    device_series(b, device_no, &DeviceReading::read(flow, m), m);
}

/// One device's series. `device_no` is the configured number, so a device whose answer lacks
/// it still joins with its fetch series.
pub fn device_series(b: &mut SnapshotBuilder, device_no: &str, d: &DeviceReading, m: &Mapping) {
    let id = [device_no];
    b.add(
        &DEVICE_INFO,
        &[
            device_no,
            &d.imei,
            model(&d.soft_version),
            &d.soft_version,
            &d.mac,
            &d.wifi_name,
            &d.wifi_encrypt,
            &d.network,
        ],
        1.0,
    );
    b.add_opt(
        &DEVICE_ONLINE,
        &id,
        flag(d.online_status.get(), &m.device_online_codes),
    );
    for (field, code) in [
        ("device_status", d.device_status),
        ("online_status", d.online_status),
        ("effective_sim", d.effective_sim),
    ] {
        b.add_opt(&DEVICE_STATUS, &[device_no, field], code.get());
    }
    b.add_opt(&BATTERY, &id, d.battery_ratio.get());
    // 0 dBm is no cellular reading at all (devices send it while off), not a perfect signal.
    b.add_opt(&SIGNAL, &id, d.rssi.get().filter(|r| *r != 0.0));
    for (
        band,
        Band {
            switch,
            clients,
            max,
        },
    ) in ["2.4GHz", "5GHz"].into_iter().zip(d.bands)
    {
        let (switch, clients, max) = (switch.get(), clients.get(), max.get());
        // A band with no capacity is hardware the device does not have.
        if band == "5GHz" && max.unwrap_or(0.0) == 0.0 && switch.unwrap_or(0.0) == 0.0 {
            continue;
        }
        let labels = [device_no, band];
        b.add_opt(&WIFI_ENABLED, &labels, switch.map(|s| f64::from(s == 1.0)));
        b.add_opt(&WIFI_CLIENTS, &labels, clients);
        b.add_opt(&WIFI_CLIENTS_MAX, &labels, max);
    }
    b.add_opt(&LAST_STATUS, &id, d.last_status_at.get());
    b.add_opt(&LAST_FLOW, &id, d.last_flow_at.get());
    let [lat, lng] = d.position;
    b.add_opt(&LATITUDE, &id, lat.get());
    b.add_opt(&LONGITUDE, &id, lng.get());
    details::device(b, device_no, d);
    let serving = details::serving_slot(d, &m.effective_sim_slots);
    for card in &d.sims {
        sim(b, device_no, card, m);
        let id = [device_no, &card.iccid, card.slot];
        details::sim(b, &id, card, serving);
    }
}

fn sim(b: &mut SnapshotBuilder, device_no: &str, c: &SimReading, m: &Mapping) {
    let id = [device_no, &c.iccid, c.slot];
    b.add(
        &SIM_INFO,
        &[device_no, &c.iccid, c.slot, &c.sim_no, operator(&c.iccid)],
        1.0,
    );
    for (field, code) in [
        ("sim_status", c.sim_status),
        ("online_status", c.online_status),
        ("activate_status", c.activate_status),
        ("auth_status", c.auth_status),
        ("internet_status", c.internet_status),
    ] {
        b.add_opt(&SIM_STATUS, &[id[0], id[1], id[2], field], code.get());
    }
    b.add_opt(
        &SIM_ONLINE,
        &id,
        flag(c.online_status.get(), &m.sim_online_codes),
    );
    b.add_opt(
        &SIM_ACTIVATED,
        &id,
        flag(c.activate_status.get(), &m.sim_activated_codes),
    );
    b.add_opt(
        &SIM_REALNAME,
        &id,
        flag(c.auth_status.get(), &m.sim_realname_codes),
    );
    b.add_opt(&SIM_LIMIT, &id, c.limit_bytes.get());
    for (kind, used) in ["billed", "real", "carrier"].into_iter().zip(c.used_bytes) {
        b.add_opt(&SIM_USED, &[id[0], id[1], id[2], kind], used.get());
    }
    b.add_opt(&SIM_EXPIRY, &id, c.expiry.get());
    b.add_opt(&SIM_ACTIVE, &id, c.last_active_at.get());
}

/// Whether the device's last request succeeded, and when one last did.
pub fn fetch(b: &mut SnapshotBuilder, device_no: &str, ok: bool, last_success: Option<f64>) {
    b.add(&FETCH_OK, &[device_no], f64::from(u8::from(ok)));
    b.add_opt(&FETCHED_AT, &[device_no], last_success);
}

/// Target-wide series: the configured fleet and the requests made so far.
pub fn target<'a>(
    b: &mut SnapshotBuilder,
    devices: usize,
    requests: impl IntoIterator<Item = (&'a str, &'a str, u64)>,
) {
    b.add(&DEVICES, &[], devices as f64);
    for (endpoint, code, n) in requests {
        b.add(&REQUESTS, &[endpoint, code], n as f64);
    }
}

#[cfg(test)]
mod tests {
    //! Platform answers (fixtures/iot) through the wire types and the mapping.
    use super::super::model::{parse_answer, Answer};
    use super::*;
    use crate::util::testing::has;

    fn fixture(name: &str) -> Vec<u8> {
        crate::util::testing::fixture("iot", name)
    }

    fn mapping() -> Mapping {
        Mapping::default()
    }

    fn flow(body: &[u8]) -> DeviceFlow {
        match parse_answer(body).expect("envelope").answer {
            Answer::Ok(flow) => *flow,
            other => panic!("not ok: {other:?}"),
        }
    }

    fn exposition(flow: &DeviceFlow, m: &Mapping) -> String {
        crate::util::testing::exposition("t", |b| device(b, "865214078636124", flow, m))
    }

    const DEV: &str = r#"target="t",device_no="865214078636124""#;
    const MAIN: &str =
        r#"target="t",device_no="865214078636124",iccid="898608841925D2210999",slot="main""#;
    const VICE: &str =
        r#"target="t",device_no="865214078636124",iccid="8986032142201828602",slot="vice1""#;

    #[test]
    fn documented_answer_maps_to_base_units() {
        let m = exposition(&flow(&fixture("query_device_flow.json")), &mapping());
        assert!(
            has(
                &m,
                &format!(
                    r#"iot_device_info{{{DEV},imei="865214078636124",model="UZ901LD1.0",soft_version="UZ901LD1.0_KSBC_JINANZHENGYI_SL_V2.01.01.02P42U28P1_02-250730",mac="3C:68:01:97:05:9D",wifi_name="MIFI-059D",wifi_encrypt="WPA2PSK",network="1,4"}} 1"#
                )
            ),
            "{m}"
        );
        assert!(has(&m, &format!("iot_device_battery_ratio{{{DEV}}} 1")));
        assert!(has(&m, &format!("iot_device_signal_dbm{{{DEV}}} -84")));
        assert!(has(&m, &format!("iot_device_online{{{DEV}}} 1")));
        assert!(has(
            &m,
            &format!(r#"iot_device_status_code{{{DEV},field="device_status"}} 3"#)
        ));
        assert!(has(
            &m,
            &format!(r#"iot_device_wifi_clients_max{{{DEV},band="2.4GHz"}} 10"#)
        ));
        assert!(!m.contains("5GHz"), "no 5 GHz radio: {m}");
        // 2025-09-18 18:24:10 in UTC+8.
        assert!(has(
            &m,
            &format!("iot_device_last_status_timestamp_seconds{{{DEV}}} 1758191050")
        ));
        // Flow fields are KiB by default: 104857600 KiB = 100 GiB.
        assert!(has(
            &m,
            &format!("iot_sim_data_limit_bytes{{{MAIN}}} 107374182400")
        ));
        assert!(has(
            &m,
            &format!(r#"iot_sim_data_used_bytes{{{MAIN},kind="billed"}} 21474836480"#)
        ));
        assert!(has(
            &m,
            &format!(r#"iot_sim_data_used_bytes{{{VICE},kind="carrier"}} 2856183808"#)
        ));
        // 2025-10-18 00:00:00 UTC+8.
        assert!(has(
            &m,
            &format!("iot_sim_plan_expiry_timestamp_seconds{{{MAIN}}} 1760716800")
        ));
        assert!(has(
            &m,
            &format!(r#"iot_sim_info{{{MAIN},sim_no="1064939169796",operator="China Mobile"}} 1"#)
        ));
        assert!(m.contains(r#"slot="vice1",sim_no="1442549810999",operator="China Telecom"}"#));
        assert!(has(&m, &format!("iot_sim_online{{{MAIN}}} 1")));
        assert!(has(&m, &format!("iot_sim_online{{{VICE}}} 0")));
        assert!(has(&m, &format!("iot_sim_realname_verified{{{VICE}}} 0")));
        assert!(has(&m, &format!("iot_sim_activated{{{VICE}}} 1")));
    }

    #[test]
    fn passwords_and_location_stay_out() {
        let body = &fixture("query_device_flow.json");
        let m = exposition(&flow(body), &mapping());
        let debug = format!("{:?}", flow(body));
        for text in [&m, &debug] {
            // wifiPass is "1234567890", webPassword "admin": never read into the wire types.
            assert!(!text.contains("1234567890") && !text.contains("admin"));
        }
        assert!(!m.contains("latitude") && !m.contains("22.76"));
        let located = exposition(
            &flow(body),
            &Mapping {
                export_location: true,
                ..mapping()
            },
        );
        assert!(has(
            &located,
            &format!("iot_device_latitude_degrees{{{DEV}}} 22.7617255")
        ));
        assert!(has(
            &located,
            &format!("iot_device_longitude_degrees{{{DEV}}} 114.1027542")
        ));
    }

    #[test]
    fn numbers_as_strings_nulls_and_unknown_codes() {
        let m = exposition(&flow(&fixture("query_device_flow_quirks.json")), &mapping());
        assert!(
            has(&m, &format!("iot_device_signal_dbm{{{DEV}}} -84")),
            "{m}"
        );
        assert!(has(&m, &format!("iot_device_battery_ratio{{{DEV}}} 1")));
        assert!(has(
            &m,
            &format!(r#"iot_device_wifi_clients{{{DEV},band="2.4GHz"}} 3"#)
        ));
        assert!(has(
            &m,
            &format!(r#"iot_device_status_code{{{DEV},field="device_status"}} 97"#)
        ));
        assert!(has(
            &m,
            &format!(r#"iot_sim_status_code{{{MAIN},field="sim_status"}} 12"#)
        ));
        assert!(has(
            &m,
            &format!(r#"iot_sim_status_code{{{MAIN},field="online_status"}} 9"#)
        ));
        assert!(has(&m, &format!("iot_sim_online{{{MAIN}}} 0")));
        assert!(has(
            &m,
            &format!("iot_sim_data_limit_bytes{{{MAIN}}} 107374182400")
        ));
        assert!(!m.contains("iot_sim_plan_expiry"), "null endAt is unknown");
        assert_eq!(m.matches("iot_sim_info{").count(), 1, "null card dropped");
    }

    #[test]
    fn empty_sims_and_null_data_still_describe_the_device() {
        let m = exposition(
            &flow(&fixture("query_device_flow_no_sims.json")),
            &mapping(),
        );
        assert!(m.contains("iot_device_info{"));
        assert!(!m.contains("iot_sim_"));
        let m = exposition(&flow(&fixture("data_null.json")), &mapping());
        assert!(
            has(
                &m,
                &format!(
                    r#"iot_device_info{{{DEV},imei="",model="",soft_version="",mac="",wifi_name="",wifi_encrypt="",network=""}} 1"#
                )
            ),
            "{m}"
        );
        assert!(!m.contains("iot_device_battery_ratio"));
    }

    #[test]
    fn unknown_device_is_a_failed_answer_with_the_platform_message() {
        let e = parse_answer(&fixture("error_unknown_device.json")).unwrap();
        assert_eq!(e.server_time, Some(1_758_192_050.0));
        match e.answer {
            Answer::Failed { code, message } => {
                assert_eq!((code, message.as_str()), (2001, "设备不存在"))
            }
            other => panic!("{other:?}"),
        }
        assert!(parse_answer(b"<html>502</html>").is_err());
        assert!(parse_answer(br#"{"message":"no code"}"#).is_err());
    }

    #[test]
    fn flow_unit_and_time_zone_are_configurable() {
        let m = exposition(
            &flow(&fixture("query_device_flow.json")),
            &Mapping {
                flow_bytes: 1.0,
                utc_offset_secs: 0,
                ..mapping()
            },
        );
        assert!(has(
            &m,
            &format!("iot_sim_data_limit_bytes{{{MAIN}}} 104857600")
        ));
        assert!(has(
            &m,
            &format!("iot_sim_plan_expiry_timestamp_seconds{{{MAIN}}} 1760745600")
        ));
    }

    #[test]
    fn carriers_from_iccid() {
        assert_eq!(operator("898608841925D2210999"), "China Mobile");
        assert_eq!(operator("8986032142201828602"), "China Telecom");
        assert_eq!(operator("89860121800000001"), "China Unicom");
        assert_eq!(operator("8944"), "");
    }
}
