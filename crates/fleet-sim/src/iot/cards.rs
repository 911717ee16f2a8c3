//! The platform's card calls beyond `queryDeviceFlow`: batch card information (100 cards a
//! call), batch latest status and real-time usage (10 a call), and the account's assets.
//!
//! The document lists these calls (批量查询卡板信息(100张), 批量查询卡板最新状态(10张),
//! 批量查询卡板实时流量(10张), 批量查询卡板指定月流量(10张), 查询账户资产) without their paths or
//! fields, so the paths below
//! are invented and a client must be told them, as it must be told the real ones. The rows reuse
//! the field names of the documented `sims[]` rows (`iccid`, `totalFlow`, `useFlow`, `balance`,
//! `arrearsBalance`, `endAt`, `simStatus`, `onlineStatus`), in a `data.list`. The ICCIDs come as
//! one comma-separated form field `iccids`; more than the call's limit is refused (code 1000).
//! The monthly usage call also takes `month` as `YYYY-MM`, no later than this month in China
//! Standard Time.
//! The platform knows the cards of its devices and `loose_cards` cards in no device.

use std::collections::HashMap;

use serde_json::{json, Value};

use super::config::IotSimConfig;
use super::wire::{local_datetime, Refusal};
use super::world::{iccid, sim_count};

/// The invented paths of the undocumented calls.
pub const CARD_INFO_PATH: &str = "/openapi/iot/card/batchInfo";
pub const CARD_STATUS_PATH: &str = "/openapi/iot/card/batchStatus";
pub const CARD_USAGE_PATH: &str = "/openapi/iot/card/batchRealtimeFlow";
pub const CARD_MONTH_PATH: &str = "/openapi/iot/card/batchMonthFlow";
pub const ACCOUNT_ASSETS_PATH: &str = "/openapi/iot/account/assets";

/// Plan of a loose card, in the platform's flow unit (KiB: 20 GiB).
const LOOSE_PLAN: u64 = 20_971_520;

/// The ICCID of loose card `i` (a China Mobile IoT number, 20 characters).
pub(super) fn loose_iccid(i: usize) -> String {
    format!("898604A119227{i:07}")
}

/// Money on and owed by the cards, as tests set it; others have none.
pub(super) type Money = HashMap<String, (f64, f64)>;

/// The limit of ICCIDs per request of a card call.
fn limit(path: &str) -> Option<usize> {
    match path {
        CARD_INFO_PATH => Some(100),
        CARD_STATUS_PATH | CARD_USAGE_PATH | CARD_MONTH_PATH => Some(10),
        _ => None,
    }
}

/// Whether the platform holds the card: one of a device's or a loose one.
fn known(cfg: &IotSimConfig, id: &str) -> bool {
    (0..cfg.loose_cards).any(|i| loose_iccid(i) == id)
        || (0..cfg.devices).any(|d| (0..sim_count(cfg, d)).any(|k| iccid(d, k) == id))
}

/// A card call's answer to the form body `body`.
pub(super) fn answer(
    cfg: &IotSimConfig,
    path: &str,
    body: &[u8],
    money: &Money,
    now: u64,
    t: f64,
) -> Result<Value, Refusal> {
    let limit = limit(path).ok_or((404, "接口不存在"))?;
    let field = |name: &str| {
        url::form_urlencoded::parse(body)
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    if path == CARD_MONTH_PATH {
        let this_month = local_datetime(now)[..7].to_owned();
        let month = field("month").unwrap_or_default();
        let valid = month.len() == 7 && month.as_bytes()[4] == b'-' && month <= this_month;
        if !valid {
            return Err((1000, "参数错误:month格式为yyyy-MM"));
        }
    }
    let iccids: Vec<String> = field("iccids")
        .map(|v| {
            v.split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    if iccids.is_empty() {
        return Err((1000, "参数错误:iccids不能为空"));
    }
    if iccids.len() > limit {
        return Err((1000, "参数错误:iccids数量超过上限"));
    }
    let list: Vec<Value> = iccids
        .iter()
        .filter(|id| known(cfg, id))
        .enumerate()
        .map(|(n, id)| row(path, id, n, money, now, t))
        .collect();
    Ok(json!({"list": list, "total": list.len()}))
}

fn row(path: &str, id: &str, n: usize, money: &Money, now: u64, t: f64) -> Value {
    let (balance, arrears) = money.get(id).copied().unwrap_or((0.0, 0.0));
    // Usage grows at ~1 KiB/s from a per-card start, within the plan.
    let used = ((LOOSE_PLAN / 10 * (1 + n as u64 % 5)) as f64 + t) as u64;
    match path {
        CARD_INFO_PATH => json!({
            "iccid": id, "totalFlow": LOOSE_PLAN, "useFlow": used.min(LOOSE_PLAN),
            "balance": balance, "arrearsBalance": arrears,
            "endAt": local_datetime(now - now % 86_400 + 86_400 * 30),
            "simStatus": 4,
        }),
        CARD_MONTH_PATH => json!({"iccid": id, "useFlow": used.min(LOOSE_PLAN) / 3}),
        CARD_STATUS_PATH => json!({
            "iccid": id, "simStatus": 4, "onlineStatus": 2,
            "lastSimStatusAt": local_datetime(now),
        }),
        _ => json!({"iccid": id, "useFlow": used.min(LOOSE_PLAN)}),
    }
}

/// The account-assets answer.
pub(super) fn assets(balance: f64) -> Value {
    json!({"balance": balance, "creditLimit": 0, "frozenAmount": 0})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_answer_known_cards_and_refuse_more_than_their_limit() {
        let cfg = IotSimConfig {
            loose_cards: 2,
            ..IotSimConfig::default()
        };
        let body = format!("iccids={},{},nope", loose_iccid(1), iccid(0, 0));
        let money: Money = [(loose_iccid(1), (-3.0, 3.0))].into();
        let data = answer(
            &cfg,
            CARD_INFO_PATH,
            body.as_bytes(),
            &money,
            1_758_192_050,
            0.0,
        );
        let data = data.unwrap();
        assert_eq!(data["total"], 2);
        assert_eq!(data["list"][0]["arrearsBalance"], 3.0);
        let many: Vec<String> = (0..11).map(loose_iccid).collect();
        let body = format!("iccids={}", many.join(","));
        let refused = answer(&cfg, CARD_STATUS_PATH, body.as_bytes(), &money, 0, 0.0);
        assert_eq!(refused.unwrap_err().0, 1000);
        assert!(answer(&cfg, CARD_INFO_PATH, b"", &money, 0, 0.0).is_err());
    }
}
