//! The platform's calls whose paths and fields are not published: the batch card calls (card
//! information for up to 100 cards a call; latest status, real-time and monthly usage for 10)
//! and the account-assets call. An operator who has the platform's full documentation names
//! each call's path, batch size and the fields to read; nothing is guessed, and all are off
//! until configured.
//!
//! Cards are the ICCIDs in `cards`, whether or not they sit in a configured device: a card the
//! device calls never reach becomes visible this way, as `iot_card_*` series by `iccid`. Each
//! configured call is asked once per `device_interval` (in the poll that finds it due), with
//! every request paced like the device calls and counted in `iot_api_requests_total` under the
//! call's `name`. The ICCIDs go in one form field, comma-separated, beside the call's fixed
//! `params` (where `{year}` and `{month}` become today's in `utc_offset`, for the monthly usage
//! call). Between rounds the last values stay; a failed batch drops its cards' values of that
//! call only.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use crate::util::lenient::{self, local_datetime};
use fleet_core::snapshot::{Family, SnapshotBuilder};

const CARD: &[&str] = &["iccid"];

pub(super) static CARD_LIMIT: Family = Family::gauge(
    "iot_card_data_limit_bytes",
    "Data the card's plan allows, from a configured batch card call.",
    CARD,
);
pub(super) static CARD_USED: Family = Family::gauge(
    "iot_card_data_used_bytes",
    "Data the card used in the plan period, from a configured batch card call.",
    CARD,
);
pub(super) static CARD_MONTH_USED: Family = Family::gauge(
    "iot_card_month_data_used_bytes",
    "Data the card used in the current calendar month, from a configured monthly usage call.",
    CARD,
);
pub(super) static CARD_BALANCE: Family = Family::gauge(
    "iot_card_balance",
    "Money on the card as a configured batch card call reports it (unit not published).",
    CARD,
);
pub(super) static CARD_ARREARS: Family = Family::gauge(
    "iot_card_arrears_balance",
    "Money the card owes as a configured batch card call reports it; above 0 is in arrears.",
    CARD,
);
pub(super) static CARD_EXPIRY: Family = Family::gauge(
    "iot_card_plan_expiry_timestamp_seconds",
    "Unix time the card's plan ends, from a configured batch card call.",
    CARD,
);
pub(super) static CARD_STATUS: Family = Family::gauge(
    "iot_card_status_code",
    "Raw card status codes from a configured batch card call, by the call's field name.",
    &["iccid", "field"],
);
pub(super) static ACCOUNT_BALANCE: Family = Family::gauge(
    "iot_account_balance",
    "The account's balance as the configured account-assets call reports it (unit not published).",
    &[],
);

/// Field names kept from a call's answer, and status fields per call.
const MAX_STATUS_FIELDS: usize = 8;

/// One configured batch card call.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CardCall {
    /// The `endpoint` label of its requests.
    pub name: String,
    /// The API path, e.g. `/openapi/iot/...` from the platform's documentation.
    pub path: String,
    /// ICCIDs per request: the platform's limit for the call (100 for card information, 10
    /// for status and usage).
    pub batch_size: usize,
    /// The form field that carries the comma-separated ICCIDs.
    #[serde(default = "default_iccids_param")]
    pub iccids_param: String,
    /// More form fields, sent as they are but for `{year}` (4 digits) and `{month}` (2).
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    /// Where the list of cards is in `data`: dotted keys (`"list"`, `"page.records"`), or
    /// empty when `data` is the list.
    #[serde(default)]
    pub list: String,
    #[serde(default)]
    pub fields: CardFields,
}

/// Which answer field holds each quantity; unset ones are not read.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CardFields {
    #[serde(default = "default_iccid_field")]
    pub iccid: String,
    pub data_limit: Option<String>,
    pub data_used: Option<String>,
    /// Usage in the month the call's `params` name (the monthly usage call).
    pub month_used: Option<String>,
    pub balance: Option<String>,
    pub arrears_balance: Option<String>,
    /// A date string in `utc_offset`, or Unix seconds.
    pub plan_expiry: Option<String>,
    /// Status code fields, exported raw with their name as `field`.
    #[serde(default)]
    pub status: Vec<String>,
}

impl Default for CardFields {
    fn default() -> Self {
        CardFields {
            iccid: default_iccid_field(),
            data_limit: None,
            data_used: None,
            month_used: None,
            balance: None,
            arrears_balance: None,
            plan_expiry: None,
            status: Vec::new(),
        }
    }
}

/// The configured account-assets call.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AssetsCall {
    pub path: String,
    /// Dotted keys of the balance in `data` (`"balance"`, `"account.balance"`).
    pub balance: String,
}

fn default_iccids_param() -> String {
    "iccids".into()
}
fn default_iccid_field() -> String {
    "iccid".into()
}

/// Checks the configured calls, naming the key of what is wrong.
pub(super) fn check(calls: &[CardCall], assets: Option<&AssetsCall>) -> Result<(), String> {
    let mut names = std::collections::HashSet::new();
    for (i, c) in calls.iter().enumerate() {
        let at = format!("card_calls[{i}]");
        if c.name.is_empty() || c.name.len() > 64 || !names.insert(c.name.as_str()) {
            return Err(format!("{at}.name: must be 1 to 64 bytes and unique"));
        }
        if c.name == super::client::DEVICE_FLOW {
            return Err(format!("{at}.name: {:?} is the device call's", c.name));
        }
        if !c.path.starts_with('/') {
            return Err(format!("{at}.path: must start with `/`"));
        }
        if !(1..=1000).contains(&c.batch_size) {
            return Err(format!("{at}.batch_size: must be 1 to 1000"));
        }
        if c.fields.status.len() > MAX_STATUS_FIELDS {
            return Err(format!(
                "{at}.fields.status: at most {MAX_STATUS_FIELDS} fields"
            ));
        }
    }
    if let Some(a) = assets {
        if !a.path.starts_with('/') {
            return Err("account_assets.path: must start with `/`".into());
        }
        if a.balance.is_empty() {
            return Err("account_assets.balance: names the balance field".into());
        }
    }
    Ok(())
}

/// A call's `params` for the day `unix` falls on in `utc_offset_secs`.
pub(super) fn params(call: &CardCall, unix: f64, utc_offset_secs: i64) -> Vec<(String, String)> {
    let (year, month) = year_month(unix as i64 + utc_offset_secs);
    call.params
        .iter()
        .map(|(k, v)| {
            let v = v
                .replace("{year}", &format!("{year:04}"))
                .replace("{month}", &format!("{month:02}"));
            (k.clone(), v)
        })
        .collect()
}

/// The civil year and month of a Unix time (Howard Hinnant's `civil_from_days`).
fn year_month(unix: i64) -> (i64, i64) {
    let z = unix.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month)
}

/// The value at dotted `keys` in `data` (`""` is `data` itself).
pub(super) fn at<'v>(data: &'v Value, keys: &str) -> Option<&'v Value> {
    keys.split('.')
        .filter(|k| !k.is_empty())
        .try_fold(data, |v, k| v.get(k))
}

/// What configured calls said of one card.
#[derive(Debug, Default, Clone, PartialEq)]
pub(super) struct CardValues {
    pub data_limit: Option<f64>,
    pub data_used: Option<f64>,
    pub month_used: Option<f64>,
    pub balance: Option<f64>,
    pub arrears_balance: Option<f64>,
    pub plan_expiry: Option<f64>,
    pub status: BTreeMap<String, f64>,
}

/// Reads one call's answer `data`: card ICCID → what its fields say. Rows without the ICCID
/// field are skipped; a `data` without the list is an error naming the key.
pub(super) fn read_cards(
    call: &CardCall,
    data: &Value,
    flow_bytes: f64,
    utc_offset_secs: i64,
) -> Result<BTreeMap<String, CardValues>, String> {
    let rows = at(data, &call.list)
        .and_then(Value::as_array)
        .ok_or_else(|| format!("{}: no card list at `{}` in `data`", call.name, call.list))?;
    let f = &call.fields;
    let mut out = BTreeMap::new();
    for row in rows {
        let Some(iccid) = row.get(&f.iccid).and_then(lenient::text) else {
            continue;
        };
        let iccid = iccid.trim();
        if iccid.is_empty() || iccid.len() > 32 {
            continue;
        }
        let num = |field: &Option<String>| {
            field
                .as_ref()
                .and_then(|k| row.get(k))
                .and_then(lenient::number)
        };
        let expiry = f
            .plan_expiry
            .as_ref()
            .and_then(|k| row.get(k))
            .and_then(|v| {
                lenient::text(v)
                    .and_then(|s| local_datetime(&s, utc_offset_secs))
                    .or_else(|| lenient::timestamp(v))
            });
        let status = f
            .status
            .iter()
            .filter_map(|k| Some((k.clone(), lenient::number(row.get(k)?)?)))
            .collect();
        out.insert(
            iccid.to_owned(),
            CardValues {
                data_limit: num(&f.data_limit).map(|v| v * flow_bytes),
                data_used: num(&f.data_used).map(|v| v * flow_bytes),
                month_used: num(&f.month_used).map(|v| v * flow_bytes),
                balance: num(&f.balance),
                arrears_balance: num(&f.arrears_balance),
                plan_expiry: expiry,
                status,
            },
        );
    }
    Ok(out)
}

/// Merges what several calls said of one card: a later call's known values win.
pub(super) fn merge(into: &mut CardValues, from: &CardValues) {
    let pick = |a: &mut Option<f64>, b: Option<f64>| {
        if b.is_some() {
            *a = b;
        }
    };
    pick(&mut into.data_limit, from.data_limit);
    pick(&mut into.data_used, from.data_used);
    pick(&mut into.month_used, from.month_used);
    pick(&mut into.balance, from.balance);
    pick(&mut into.arrears_balance, from.arrears_balance);
    pick(&mut into.plan_expiry, from.plan_expiry);
    into.status
        .extend(from.status.iter().map(|(k, v)| (k.clone(), *v)));
}

/// The account-assets answer's balance.
pub(super) fn read_balance(call: &AssetsCall, data: &Value) -> Result<f64, String> {
    at(data, &call.balance)
        .and_then(lenient::number)
        .ok_or_else(|| format!("account_assets: no number at `{}` in `data`", call.balance))
}

pub(super) fn export_card(b: &mut SnapshotBuilder, iccid: &str, v: &CardValues) {
    let id = [iccid];
    b.add_opt(&CARD_LIMIT, &id, v.data_limit);
    b.add_opt(&CARD_USED, &id, v.data_used);
    b.add_opt(&CARD_MONTH_USED, &id, v.month_used);
    b.add_opt(&CARD_BALANCE, &id, v.balance);
    b.add_opt(&CARD_ARREARS, &id, v.arrears_balance);
    b.add_opt(&CARD_EXPIRY, &id, v.plan_expiry);
    for (field, code) in &v.status {
        b.add(&CARD_STATUS, &[iccid, field], *code);
    }
}

pub(super) fn export_account(b: &mut SnapshotBuilder, balance: Option<f64>) {
    b.add_opt(&ACCOUNT_BALANCE, &[], balance);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::testing::fixture;
    use serde_json::json;

    fn info_call() -> CardCall {
        serde_json::from_value(json!({
            "name": "cardInfo", "path": "/openapi/iot/card/batchInfo", "batch_size": 100,
            "list": "list",
            "fields": {"data_limit": "totalFlow", "data_used": "useFlow", "balance": "balance",
                       "arrears_balance": "arrearsBalance", "plan_expiry": "endAt",
                       "status": ["simStatus"]}
        }))
        .unwrap()
    }

    fn data(name: &str) -> Value {
        let body: Value = serde_json::from_slice(&fixture("iot", name)).unwrap();
        body["data"].clone()
    }

    #[test]
    fn a_configured_card_call_reads_the_fields_it_names() {
        let cards = read_cards(
            &info_call(),
            &data("card_batch_info.json"),
            1024.0,
            8 * 3600,
        );
        let cards = cards.unwrap();
        let c = &cards["898604A1192270000001"];
        assert_eq!(c.data_limit, Some(104_857_600.0 * 1024.0));
        assert_eq!(c.data_used, Some(20_971_520.0 * 1024.0));
        assert_eq!(c.arrears_balance, Some(12.5));
        assert_eq!(c.balance, Some(-12.5));
        // 2025-12-31 23:59:59 in UTC+8.
        assert_eq!(c.plan_expiry, Some(1_767_196_799.0));
        assert_eq!(c.status.get("simStatus"), Some(&4.0));
        assert_eq!(cards.len(), 2, "the row without an ICCID is skipped");
        let mut wrong = info_call();
        wrong.list = "records".into();
        let e = read_cards(&wrong, &data("card_batch_info.json"), 1.0, 0).unwrap_err();
        assert!(e.contains("`records`"), "{e}");
    }

    #[test]
    fn params_name_this_month_in_the_platforms_time_zone() {
        let mut call = info_call();
        call.params = [("month".to_string(), "{year}-{month}".to_string())].into();
        // 2025-08-31 20:00 UTC is already September in UTC+8.
        let p = params(&call, 1_756_670_400.0, 8 * 3600);
        assert_eq!(p, [("month".to_string(), "2025-09".to_string())]);
        assert_eq!(params(&call, 1_756_670_400.0, 0)[0].1, "2025-08");
        assert_eq!(year_month(0), (1970, 1));
        assert_eq!(year_month(951_782_400), (2000, 2), "2000-02-29");
    }

    #[test]
    fn later_calls_fill_in_and_override_what_earlier_ones_said() {
        let mut a = CardValues {
            data_used: Some(1.0),
            balance: Some(5.0),
            ..CardValues::default()
        };
        let b = CardValues {
            data_used: Some(2.0),
            status: [("onlineStatus".to_string(), 2.0)].into(),
            ..CardValues::default()
        };
        merge(&mut a, &b);
        assert_eq!((a.data_used, a.balance), (Some(2.0), Some(5.0)));
        assert_eq!(a.status.len(), 1);
    }

    #[test]
    fn account_balance_and_call_checks_name_the_key() {
        let assets = AssetsCall {
            path: "/openapi/iot/account/assets".into(),
            balance: "balance".into(),
        };
        assert_eq!(
            read_balance(&assets, &data("account_assets.json")),
            Ok(1288.6)
        );
        assert!(read_balance(&assets, &json!({}))
            .unwrap_err()
            .contains("`balance`"));
        let mut bad = info_call();
        bad.batch_size = 0;
        assert!(check(&[bad], None)
            .unwrap_err()
            .contains("card_calls[0].batch_size"));
        let mut bad = info_call();
        bad.path = "openapi".into();
        assert!(check(&[bad], None)
            .unwrap_err()
            .contains("card_calls[0].path"));
        assert!(check(&[info_call(), info_call()], None)
            .unwrap_err()
            .contains("unique"));
        let no_path = AssetsCall {
            path: "x".into(),
            ..assets
        };
        assert!(check(&[], Some(&no_path))
            .unwrap_err()
            .contains("account_assets.path"));
    }
}
