//! IoT platform wire types: the answer envelope and the device-flow payload. Every field is
//! optional and lenient (numbers as strings, `null` objects, missing keys).
//!
//! The payload also carries the Wi-Fi password, the web admin password and more; fields the
//! exporter does not use are never read, so secrets never enter these types.

use serde::Deserialize;

use crate::util::lenient;

/// What an answer says, once its envelope is read; `T` is the `data` of a success (the
/// device-flow payload unless a caller reads another call's).
#[derive(Debug)]
pub enum Answer<T = DeviceFlow> {
    Ok(Box<T>),
    Failed { code: i64, message: String },
}

/// An envelope read: the answer and the platform's clock (`timestamp`), when it sent one.
#[derive(Debug)]
pub struct Envelope<T = DeviceFlow> {
    pub answer: Answer<T>,
    pub server_time: Option<f64>,
}

#[derive(Deserialize)]
struct RawEnvelope {
    #[serde(default, deserialize_with = "lenient::opt_f64")]
    code: Option<f64>,
    #[serde(default, deserialize_with = "lenient::string")]
    message: String,
    #[serde(default)]
    data: lenient::BoundedValue,
    #[serde(default, deserialize_with = "lenient::opt_f64")]
    timestamp: Option<f64>,
}

/// Reads `{"code","message","data","timestamp","traceID"}` of `queryDeviceFlow`; success is
/// `code == 0`.
pub fn parse_answer(body: &[u8]) -> Result<Envelope, String> {
    parse_envelope(body)
}

/// Reads any call's envelope, its `data` as `T` (its default when `data` does not fit).
pub fn parse_envelope<T: serde::de::DeserializeOwned + Default>(
    body: &[u8],
) -> Result<Envelope<T>, String> {
    let raw: RawEnvelope =
        serde_json::from_slice(body).map_err(|e| format!("not a platform answer: {e}"))?;
    let answer = match raw.code {
        Some(0.0) => Answer::Ok(Box::new(
            serde_json::from_value(raw.data.0).unwrap_or_default(),
        )),
        Some(c) => Answer::Failed {
            code: c as i64,
            message: raw.message,
        },
        None => return Err("answer has no `code`".into()),
    };
    Ok(Envelope {
        answer,
        server_time: raw.timestamp,
    })
}

/// `data` of `queryDeviceFlow`: the device and its SIM cards.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct DeviceFlow {
    #[serde(deserialize_with = "lenient::object")]
    pub device: Device,
    #[serde(deserialize_with = "lenient::rows")]
    pub sims: Vec<Card>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Device {
    #[serde(deserialize_with = "lenient::string")]
    pub imei: String,
    #[serde(deserialize_with = "lenient::string")]
    pub main_iccid: String,
    #[serde(deserialize_with = "lenient::string")]
    pub vice1_iccid: String,
    #[serde(deserialize_with = "lenient::string")]
    pub vice2_iccid: String,
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub rssi: Option<f64>,
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub electric: Option<f64>,
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub online_status: Option<f64>,
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub device_status: Option<f64>,
    #[serde(deserialize_with = "lenient::string")]
    pub wifi_name: String,
    #[serde(deserialize_with = "lenient::string")]
    pub wifi_encrypt: String,
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub switch_wifi: Option<f64>,
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub conn_count: Option<f64>,
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub max_conn_count: Option<f64>,
    #[serde(rename = "switchWifi5G", deserialize_with = "lenient::opt_f64")]
    pub switch_wifi_5g: Option<f64>,
    #[serde(rename = "connCount5G", deserialize_with = "lenient::opt_f64")]
    pub conn_count_5g: Option<f64>,
    #[serde(rename = "maxConnCount5G", deserialize_with = "lenient::opt_f64")]
    pub max_conn_count_5g: Option<f64>,
    #[serde(deserialize_with = "lenient::string")]
    pub mac: String,
    #[serde(deserialize_with = "lenient::string")]
    pub soft_version: String,
    #[serde(deserialize_with = "lenient::string")]
    pub device_network: String,
    #[serde(deserialize_with = "lenient::object")]
    pub position: Position,
    #[serde(deserialize_with = "lenient::string")]
    pub last_device_status_at: String,
    #[serde(deserialize_with = "lenient::string")]
    pub last_device_flow_at: String,
    /// Which card serves, as a code whose meaning is not published.
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub effective_sim: Option<f64>,
    /// `2000-01-01 00:00:00` when unset.
    #[serde(deserialize_with = "lenient::string")]
    pub warranty_expire: String,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct Position {
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub lat: Option<f64>,
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub lng: Option<f64>,
    /// The serving network's country and operator codes (an identity, not a place).
    #[serde(deserialize_with = "lenient::string")]
    pub mcc: String,
    #[serde(deserialize_with = "lenient::string")]
    pub mnc: String,
}

/// One SIM card of `sims[]`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Card {
    #[serde(deserialize_with = "lenient::string")]
    pub iccid: String,
    #[serde(deserialize_with = "lenient::string")]
    pub sim_no: String,
    #[serde(deserialize_with = "lenient::string")]
    pub imsi: String,
    /// 1 for the main slot, 2 and 3 for the vice slots (as in the document's example).
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub vice: Option<f64>,
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub sim_status: Option<f64>,
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub online_status: Option<f64>,
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub activate_status: Option<f64>,
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub auth_status: Option<f64>,
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub internet_status: Option<f64>,
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub total_flow: Option<f64>,
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub use_flow: Option<f64>,
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub real_use_flow: Option<f64>,
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub dock_user_flow: Option<f64>,
    #[serde(deserialize_with = "lenient::string")]
    pub end_at: String,
    #[serde(deserialize_with = "lenient::string")]
    pub last_active_at: String,
    /// Money on the card and owed by it, in a unit the platform does not publish.
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub balance: Option<f64>,
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub arrears_balance: Option<f64>,
    /// Where the carrier's usage count (`dockUserFlow`) starts.
    #[serde(deserialize_with = "lenient::string")]
    pub dock_reset_date: String,
    #[serde(deserialize_with = "lenient::string")]
    pub last_sim_status_at: String,
}
