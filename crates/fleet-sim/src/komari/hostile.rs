//! Answers built to amplify, for the hostile-device tests: a node list of about 8 MB of empty
//! entries, and a live-state reply whose online list carries a million ids no node list
//! describes. The padding is the same text every time, so it is built once per process: a
//! hostile server does not pay for its answers, and neither should a test measuring the
//! exporter's memory in the same process.

use std::sync::OnceLock;

use serde_json::Value;

use super::config::Fault;
use crate::util::empty_objects;

/// Empty node entries in the huge node list: three bytes each, about 8 MB, just within the
/// 8 MiB a client reads of one answer.
const EMPTY_NODES: usize = 8_000_000 / 3;
/// Online ids added to the live state: four base-36 digits each, about 7 MB quoted.
const EXTRA_ONLINE: usize = 1_000_000;

/// Builds the padding `fault` answers with now, so its first answer costs no more than the
/// next (a debug build takes a second or more for the million ids).
pub(super) fn prepare(fault: Fault) {
    match fault {
        Fault::MillionOnline => {
            extra_ids();
        }
        Fault::HugeNodeList => {
            huge_node_list();
        }
        _ => {}
    }
}

/// `GET /api/nodes`: the success envelope around about 8 MB of `{}`.
pub(super) fn huge_node_list() -> &'static str {
    static BODY: OnceLock<String> = OnceLock::new();
    BODY.get_or_init(|| {
        format!(
            r#"{{"status":"success","message":"","data":[{}]}}"#,
            empty_objects(EMPTY_NODES)
        )
    })
}

/// The WebSocket reply for `live` (the world's `{"online", "data"}`), with a million more
/// online ids after the real ones.
pub(super) fn with_million_online(live: &Value) -> String {
    let ids = extra_ids();
    let online = live
        .get("online")
        .map_or_else(|| "[]".into(), Value::to_string);
    let real = online.strip_suffix(']').unwrap_or("[");
    let sep = if real.len() > 1 { "," } else { "" };
    let reports = live
        .get("data")
        .map_or_else(|| "{}".into(), Value::to_string);
    format!(r#"{{"data":{{"online":{real}{sep}{ids}],"data":{reports}}},"status":"success"}}"#)
}

/// The million online ids, quoted and comma-separated.
fn extra_ids() -> &'static str {
    static IDS: OnceLock<String> = OnceLock::new();
    IDS.get_or_init(|| {
        // Written byte by byte: a debug build formatting a million strings takes seconds, on a
        // runtime thread the exporter under test shares.
        let mut ids = Vec::with_capacity(EXTRA_ONLINE * 7);
        for i in 0..EXTRA_ONLINE {
            if i > 0 {
                ids.push(b',');
            }
            ids.push(b'"');
            ids.extend_from_slice(&base36(i));
            ids.push(b'"');
        }
        String::from_utf8(ids).unwrap_or_default()
    })
}

/// `i` in four base-36 digits (a million fits: 36⁴ is 1,679,616).
fn base36(mut i: usize) -> [u8; 4] {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = [b'0'; 4];
    for d in out.iter_mut().rev() {
        *d = DIGITS[i % 36];
        i /= 36;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_amplifying_answers_are_json_of_the_stated_size_within_8_mib() {
        let nodes: Value = serde_json::from_str(huge_node_list()).unwrap();
        assert_eq!(nodes["data"].as_array().map(Vec::len), Some(EMPTY_NODES));
        assert!(huge_node_list().len() < 8 << 20);
        let live = json!({"online": ["a-1"], "data": {"a-1": {"uptime": 5}}});
        let reply = with_million_online(&live);
        assert!(
            reply.len() > 7_000_000 && reply.len() < 8 << 20,
            "{}",
            reply.len()
        );
        let reply: Value = serde_json::from_str(&reply).unwrap();
        let online = reply["data"]["online"].as_array().unwrap();
        assert_eq!(online.len(), EXTRA_ONLINE + 1);
        assert_eq!(
            (online[0].as_str(), online[1].as_str()),
            (Some("a-1"), Some("0000"))
        );
        assert_eq!(reply["data"]["data"], live["data"]);
        let none = with_million_online(&json!({"online": [], "data": {}}));
        assert!(none.contains(r#""online":["0000","#), "{}", &none[..40]);
    }
}
