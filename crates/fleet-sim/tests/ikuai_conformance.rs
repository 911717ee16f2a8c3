//! The iKuai simulator over real sockets, checked against the API document
//! and the notes on real routers (not against any driver code).

use std::collections::BTreeMap;
use std::time::Duration;

use fleet_sim::ikuai::{Fault, Firmware, IkuaiSim, IkuaiSimConfig};
use serde_json::{json, Value};

#[path = "strict/ikuai.rs"]
mod strict;

/// md5("admin"), as the web UI sends it in `passwd`.
const ADMIN_MD5: &str = "21232f297a57a5a743894a0e4a801fc3";

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

async fn login_with(sim: &IkuaiSim, passwd: &str) -> reqwest::Response {
    client()
        .post(format!("{}/Action/login", sim.url()))
        .json(&json!({
            "username": "admin",
            "passwd": passwd,
            "pass": "c2FsdF8xMWFkbWlu",
            "remember_password": "",
        }))
        .send()
        .await
        .expect("login request")
}

/// Logs in and returns the cookie header a client sends afterwards.
async fn login(sim: &IkuaiSim) -> String {
    let resp = login_with(sim, ADMIN_MD5).await;
    let set_cookie = resp
        .headers()
        .get("set-cookie")
        .expect("set-cookie")
        .to_str()
        .expect("ascii")
        .to_owned();
    let key = set_cookie
        .strip_prefix("sess_key=")
        .and_then(|s| s.split(';').next())
        .expect("sess_key cookie")
        .to_owned();
    format!("username=admin; login=1; sess_key={key}")
}

async fn call_raw(sim: &IkuaiSim, cookie: Option<&str>, body: Value) -> reqwest::Response {
    let mut req = client()
        .post(format!("{}/Action/call", sim.url()))
        .json(&body);
    if let Some(c) = cookie {
        req = req.header("Cookie", c);
    }
    req.send().await.expect("call request")
}

async fn call(sim: &IkuaiSim, cookie: &str, body: Value) -> Value {
    let text = call_raw(sim, Some(cookie), body)
        .await
        .text()
        .await
        .expect("body");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("invalid JSON ({e}): {text}"))
}

fn show(func: &str, types: &str) -> Value {
    json!({"func_name": func, "action": "show", "param": {"TYPE": types}})
}

async fn sim(cfg: IkuaiSimConfig) -> IkuaiSim {
    IkuaiSim::start(cfg).await.expect("start sim")
}

#[tokio::test]
async fn login_with_md5_passwd_sets_sess_key() {
    let sim = sim(IkuaiSimConfig::default()).await;
    let resp = login_with(&sim, ADMIN_MD5).await;
    let cookie = resp.headers()["set-cookie"].to_str().unwrap().to_owned();
    let key = cookie
        .strip_prefix("sess_key=")
        .and_then(|s| s.strip_suffix("; path=/"))
        .expect("sess_key=<key>; path=/");
    assert_eq!(key.len(), 32);
    assert!(key
        .chars()
        .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)));
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body, json!({"Result": 10000, "ErrMsg": "Success"}));
    assert_eq!(sim.logins(), 1);
}

#[tokio::test]
async fn v4_login_answers_in_4x_form() {
    let sim = sim(IkuaiSimConfig {
        firmware: Firmware::V4,
        ..Default::default()
    })
    .await;
    let body: Value = login_with(&sim, ADMIN_MD5).await.json().await.unwrap();
    assert_eq!(body, json!({"code": 0, "message": "Success"}));
}

#[tokio::test]
async fn wrong_password_and_form_body_are_10001() {
    let sim = sim(IkuaiSimConfig::default()).await;
    let resp = login_with(&sim, "00000000000000000000000000000000").await;
    assert!(resp.headers().get("set-cookie").is_none());
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body, json!({"Result": 10001, "ErrMsg": "用户名或密码错误"}));

    let form: Value = client()
        .post(format!("{}/Action/login", sim.url()))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!("username=admin&passwd={ADMIN_MD5}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(form, json!({"Result": 10001, "ErrMsg": "Post data error"}));
    assert_eq!(sim.logins(), 2);
}

#[tokio::test]
async fn call_without_cookie_is_rejected_per_firmware() {
    let v3 = sim(IkuaiSimConfig::default()).await;
    let body: Value = call_raw(&v3, None, show("homepage", "sysstat"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        body,
        json!({"Result": 10014, "ErrMsg": "no login authentication"})
    );

    let v4 = sim(IkuaiSimConfig {
        firmware: Firmware::V4,
        ..Default::default()
    })
    .await;
    let resp = call_raw(
        &v4,
        Some("username=admin; login=1; sess_key=0123456789abcdef0123456789abcdef"),
        show("homepage", "sysstat"),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body, json!({"code": 1008, "message": "会话已过期"}));
}

#[tokio::test]
async fn homepage_multi_type_answers_each_key() {
    let sim = sim(IkuaiSimConfig::default()).await;
    let cookie = login(&sim).await;
    let body = call(
        &sim,
        &cookie,
        show("homepage", "sysstat,ac_status,dhcp_addrpool_num"),
    )
    .await;
    assert_eq!(body["Result"], 30000);
    let data = body["Data"].as_object().expect("Data object");
    assert_eq!(data.len(), 3);
    let sys = &data["sysstat"];
    let cpu = sys["cpu"].as_array().unwrap();
    assert_eq!(cpu.len(), 5, "total + 4 cores");
    assert!(cpu.iter().all(|c| c.as_str().unwrap().ends_with('%')));
    assert_eq!(sys["cputemp"], json!([]));
    assert_eq!(sys["online_user"]["count"], 8);
    assert!(sys["memory"]["used"].as_str().unwrap().ends_with('%'));
    assert_eq!(data["ac_status"], json!({"ap_count": 0, "ap_online": 0}));
    assert!(data["dhcp_addrpool_num"]["available_num"].is_u64());
    assert_eq!(sim.calls(), 1);
}

#[tokio::test]
async fn v4_answers_in_results_with_termname() {
    let sim = sim(IkuaiSimConfig {
        firmware: Firmware::V4,
        ..Default::default()
    })
    .await;
    let cookie = login(&sim).await;
    let body = call(&sim, &cookie, show("homepage", "sysstat")).await;
    assert_eq!(body["code"], 0);
    let sys = &body["results"]["sysstat"];
    assert!(sys["cputemp"].as_array().unwrap()[0].is_f64());
    assert!(sys["verinfo"]["version"]
        .as_str()
        .unwrap()
        .starts_with("4."));
    let lan = call(&sim, &cookie, show("monitor_lanip", "data,total")).await;
    let row = &lan["results"]["data"][0];
    assert_eq!(row["hostname"], "");
    assert_eq!(row["termname"], "红米Note 11T Pro");
}

#[tokio::test]
async fn lanip_paging_honours_limit_and_total() {
    let sim = sim(IkuaiSimConfig::default()).await;
    let cookie = login(&sim).await;
    let mut req = show("monitor_lanip", "data,total");
    req["param"]["limit"] = json!("0,5");
    let body = call(&sim, &cookie, req.clone()).await;
    // 8 clients plus the duplicated row.
    assert_eq!(body["Data"]["total"], 9);
    assert_eq!(body["Data"]["data"].as_array().unwrap().len(), 5);

    req["param"]["limit"] = json!("5,5");
    let rest = call(&sim, &cookie, req).await;
    assert_eq!(rest["Data"]["data"].as_array().unwrap().len(), 4);

    // Without a limit at most 100 rows come back, with the real total.
    sim.set_lan_clients(150);
    let all = call(&sim, &cookie, show("monitor_lanip", "data,total")).await;
    assert_eq!(all["Data"]["total"], 151);
    assert_eq!(all["Data"]["data"].as_array().unwrap().len(), 100);
    assert_eq!(sim.client_macs().len(), 150);
}

#[tokio::test]
async fn quirks_show_up() {
    let sim = sim(IkuaiSimConfig {
        lan_clients_v6: 0,
        large_totals: true,
        ..Default::default()
    })
    .await;
    let cookie = login(&sim).await;
    let raw = call_raw(&sim, Some(&cookie), show("monitor_lanipv6", "data,total"))
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(
        raw,
        r#"{"Result":30000,"ErrMsg":"Success","Data":{"data":timeout,"total":0}}"#
    );

    let stream = call_raw(&sim, Some(&cookie), show("monitor_iface", "iface_stream"))
        .await
        .text()
        .await
        .unwrap();
    assert!(stream.contains("e+14"), "{stream}");
    assert!(stream.contains(r#""connect_num":"--""#));

    let lan = call(&sim, &cookie, show("monitor_lanip", "data,total")).await;
    let rows = lan["Data"]["data"].as_array().unwrap();
    let macs = sim.client_macs();
    assert_eq!(rows[2]["mac"], rows[3]["mac"]);
    assert_eq!(rows[2]["ip_addr"], rows[3]["ip_addr"]);
    assert_eq!(rows[2]["mac"], macs[2].as_str());
    assert_eq!(rows[0]["client_model"], "红米Note%2011T%20Pro");
    assert!(rows.iter().any(|r| r["comment"]
        .as_str()
        .is_some_and(|c| c.contains('"') && c.contains('\\') && c.contains('\n'))));

    let check = call(&sim, &cookie, show("monitor_iface", "iface_check")).await;
    let lines = check["Data"]["iface_check"].as_array().unwrap();
    assert_eq!(lines.len(), 2);
    assert!(lines[0]["updatetime"].is_string());
    assert_eq!(lines[1]["result"], "fail");
}

#[tokio::test]
async fn clean_mode_is_plain_json() {
    let sim = sim(IkuaiSimConfig {
        quirks: false,
        lan_clients_v6: 0,
        ..Default::default()
    })
    .await;
    let cookie = login(&sim).await;
    for (func, types) in [
        (
            "homepage",
            "sysstat,ac_status,dhcp_addrpool_num,ether_info,snapshoot",
        ),
        ("monitor_iface", "iface_check,iface_stream"),
        ("monitor_lanip", "data,total"),
        ("monitor_lanipv6", "data,total"),
        ("dns", "dns_cache"),
        ("monitor_l7qos", "data"),
    ] {
        let body = call(&sim, &cookie, show(func, types)).await;
        assert_eq!(body["Result"], 30000, "{func}: {body}");
        let text = body.to_string();
        // Only sysstat's percent strings may carry a '%' (no URL-encoding).
        assert!(func == "homepage" || !text.contains('%'), "{func}: {text}");
    }
    let lan = call(&sim, &cookie, show("monitor_lanip", "data,total")).await;
    assert_eq!(lan["Data"]["total"], 8, "no duplicated row");
    // Real strings stay strings: a plain router is still a 3.x router.
    assert!(lan["Data"]["data"][0]["signal"].is_string());
    let check = call(&sim, &cookie, show("monitor_iface", "iface_check")).await;
    assert!(check["Data"]["iface_check"][0]["updatetime"].is_string());
    let qos = call(&sim, &cookie, show("monitor_l7qos", "data")).await;
    assert!(qos["Data"]["data"][0]["wan1"][0]["total_up"].is_string());
    let stream = call(&sim, &cookie, show("monitor_iface", "iface_stream")).await;
    assert_eq!(stream["Data"]["iface_stream"][0]["connect_num"], "--");
    assert!(stream["Data"]["iface_stream"][1]["connect_num"].is_string());
    let v6 = call(&sim, &cookie, show("monitor_lanipv6", "data,total")).await;
    assert_eq!(v6["Data"]["data"], json!([]), "no bare `timeout` token");
}

#[tokio::test]
async fn expire_sessions_invalidates_keys() {
    let sim = sim(IkuaiSimConfig::default()).await;
    let cookie = login(&sim).await;
    assert_eq!(
        call(&sim, &cookie, show("dns", "dns_cache")).await["Result"],
        30000
    );
    sim.expire_sessions();
    assert_eq!(
        call(&sim, &cookie, show("dns", "dns_cache")).await["Result"],
        10014
    );
    let fresh = login(&sim).await;
    assert_eq!(
        call(&sim, &fresh, show("dns", "dns_cache")).await["Result"],
        30000
    );
}

#[tokio::test]
async fn unknown_func_or_type_is_an_error_envelope() {
    let sim = sim(IkuaiSimConfig::default()).await;
    let cookie = login(&sim).await;
    let body = call(&sim, &cookie, show("nosuch", "data")).await;
    assert_eq!(body["Result"], 30001);
    let body = call(&sim, &cookie, show("homepage", "nosuch")).await;
    assert_eq!(body["Result"], 30001);
    let body = call(&sim, &cookie, json!("not an object")).await;
    assert_eq!(body["Result"], 30001);
}

#[tokio::test]
async fn hang_never_answers() {
    let sim = sim(IkuaiSimConfig::default()).await;
    let cookie = login(&sim).await;
    sim.set_fault(Fault::Hang);
    let res = client()
        .post(format!("{}/Action/call", sim.url()))
        .header("Cookie", &cookie)
        .json(&show("homepage", "sysstat"))
        .timeout(Duration::from_millis(500))
        .send()
        .await;
    assert!(res.expect_err("must not answer").is_timeout());
}

#[tokio::test]
async fn other_faults() {
    let sim = sim(IkuaiSimConfig::default()).await;
    let cookie = login(&sim).await;
    sim.set_fault(Fault::Truncated);
    let text = call_raw(&sim, Some(&cookie), show("homepage", "sysstat"))
        .await
        .text()
        .await
        .unwrap();
    assert!(text.starts_with('{') && serde_json::from_str::<Value>(&text).is_err());
    sim.set_fault(Fault::Html);
    let resp = call_raw(&sim, Some(&cookie), show("homepage", "sysstat")).await;
    assert_eq!(resp.status(), 200);
    assert!(resp.text().await.unwrap().starts_with("<html>"));
    sim.set_fault(Fault::Status500);
    let resp = call_raw(&sim, Some(&cookie), show("homepage", "sysstat")).await;
    assert_eq!(resp.status(), 500);
}

#[tokio::test]
async fn max_in_flight_counts_concurrent_calls() {
    let sim = sim(IkuaiSimConfig::default()).await;
    let cookie = login(&sim).await;
    sim.set_latency(Duration::from_millis(200));
    for _ in 0..2 {
        call(&sim, &cookie, show("homepage", "sysstat")).await;
    }
    assert_eq!(sim.max_in_flight(), 1);
    let (a, b, c) = tokio::join!(
        call(&sim, &cookie, show("homepage", "sysstat")),
        call(&sim, &cookie, show("homepage", "ac_status")),
        call(&sim, &cookie, show("dns", "dns_cache")),
    );
    assert!([a, b, c].iter().all(|v| v["Result"] == 30000));
    assert_eq!(sim.max_in_flight(), 3);
    assert_eq!(sim.calls(), 5);
}

#[tokio::test]
async fn counters_grow() {
    let sim = sim(IkuaiSimConfig {
        quirks: false,
        ..Default::default()
    })
    .await;
    let cookie = login(&sim).await;
    let first = call(&sim, &cookie, show("monitor_iface", "iface_stream")).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let second = call(&sim, &cookie, show("monitor_iface", "iface_stream")).await;
    let total = |v: &Value| v["Data"]["iface_stream"][1]["total_down"].as_u64().unwrap();
    assert!(total(&second) > total(&first));
}

/// Where the real-body fixtures live (`fixtures/ikuai` at the workspace root).
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/ikuai");

fn fixture(name: &str) -> Value {
    let text = std::fs::read_to_string(format!("{FIXTURES}/{name}")).expect("fixture");
    serde_json::from_str(&text).expect("fixture is valid JSON")
}

/// Every key path of a JSON value (array elements merged), so that two bodies
/// can be compared by shape rather than by value.
fn shape(v: &Value, prefix: &str, out: &mut std::collections::BTreeSet<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                // `ether_info` is keyed by port name: data, not schema.
                let k = if prefix.ends_with(".ether_info") {
                    "*"
                } else {
                    k
                };
                let p = format!("{prefix}.{k}");
                out.insert(p.clone());
                shape(v, &p, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|v| shape(v, &format!("{prefix}[]"), out)),
        _ => {}
    }
}

fn keys(v: &Value) -> std::collections::BTreeSet<String> {
    let mut out = std::collections::BTreeSet::new();
    shape(v, "", &mut out);
    out
}

#[tokio::test]
async fn sim_bodies_have_the_documented_shape() {
    let sim = sim(IkuaiSimConfig {
        wan_lines: 1,
        ..Default::default()
    })
    .await;
    let cookie = login(&sim).await;
    let cases = [
        (
            "homepage",
            "sysstat,ac_status,dhcp_addrpool_num",
            "homepage_sysstat_v3.json",
        ),
        (
            "homepage",
            "ether_info,snapshoot",
            "homepage_ether_snapshoot.json",
        ),
        (
            "monitor_iface",
            "iface_check,iface_stream",
            "monitor_iface.json",
        ),
        ("monitor_lanip", "data,total", "monitor_lanip.json"),
        ("monitor_lanipv6", "data,total", "monitor_lanipv6.json"),
        ("dns", "dns_cache", "dns_cache.json"),
        ("monitor_l7qos", "data", "monitor_l7qos.json"),
    ];
    for (func, types, file) in cases {
        let got = call(&sim, &cookie, show(func, types)).await;
        assert_eq!(keys(&got), keys(&fixture(file)), "{func} {types} vs {file}");
    }

    let v4 = self::sim(IkuaiSimConfig {
        firmware: Firmware::V4,
        ..Default::default()
    })
    .await;
    let cookie = login(&v4).await;
    let got = call(
        &v4,
        &cookie,
        show("homepage", "sysstat,ac_status,dhcp_addrpool_num"),
    )
    .await;
    assert_eq!(keys(&got), keys(&fixture("homepage_sysstat_v4.json")));
}

/// The text of one `/Action/call` answer.
async fn call_text(sim: &IkuaiSim, cookie: &str, body: Value) -> String {
    call_raw(sim, Some(cookie), body)
        .await
        .text()
        .await
        .expect("body")
}

/// `func_name` with `TYPE` and more `param` keys.
fn show_with(func: &str, types: &str, extra: Value) -> Value {
    let mut req = show(func, types);
    if let (Some(param), Value::Object(extra)) = (req["param"].as_object_mut(), extra) {
        param.extend(extra);
    }
    req
}

/// Every answer of a router of this firmware and quirk setting, decoded strictly.
async fn decode_every_answer_strictly(firmware: Firmware, quirks: bool) {
    let sim = sim(IkuaiSimConfig {
        firmware,
        quirks,
        large_totals: quirks,
        update_available: true,
        ..Default::default()
    })
    .await;
    let v4 = firmware == Firmware::V4;
    let cookie = login(&sim).await;
    let what = format!("{firmware:?}, quirks {quirks}");
    macro_rules! strictly {
        ($ty:ty, $req:expr) => {{
            let req = $req;
            let text = call_text(&sim, &cookie, req.clone()).await;
            strict::payload::<$ty>(v4, &text).unwrap_or_else(|e| panic!("{what}: {req}: {e}"))
        }};
    }
    let home = strictly!(
        strict::Homepage,
        show("homepage", "sysstat,ac_status,dhcp_addrpool_num")
    );
    assert_eq!(home.sysstat.cpu.len(), 5);
    strictly!(strict::Ports, show("homepage", "ether_info,snapshoot"));
    let alone = strictly!(
        strict::SysstatAlone,
        show("sysstat", "verinfo,cpu,memory,stream,cputemp")
    );
    assert_eq!(alone.verinfo.version, home.sysstat.verinfo.version);
    let iface = strictly!(
        strict::MonitorIface,
        show("monitor_iface", "iface_check,iface_stream")
    );
    assert!(iface.iface_stream[0].connect_num.0.is_none(), "lan1 is --");
    assert!(iface.iface_stream[1].connect_num.0.is_some(), "wan1 counts");
    let lan = strictly!(
        strict::ClientPage,
        show_with("monitor_lanip", "data,total", json!({"limit": "0,1000"}))
    );
    assert_eq!(lan.total as usize, lan.data.len());
    for row in &lan.data {
        match (&row.signal, v4) {
            (strict::Signal::Text(s), _) => {
                assert!(s.is_empty() || s.parse::<i64>().is_ok(), "{s:?}")
            }
            (strict::Signal::Number(0), true) => {}
            (other, _) => panic!("{what}: signal {other:?}"),
        }
        assert_eq!(row.termname.is_some(), v4, "termname is a 4.x field");
    }
    strictly!(strict::ClientPage, show("monitor_lanipv6", "data,total"));
    strictly!(strict::Rows<strict::DnsCacheRow>, show("dns", "dns_cache"));
    strictly!(
        strict::Rows<BTreeMap<String, Vec<strict::QosRow>>>,
        show("monitor_l7qos", "data")
    );
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct WanStats {
        wan_stat: Vec<strict::WanStat>,
    }
    let wan = strictly!(WanStats, show("homepage", "wan_stat"));
    assert_eq!(wan.wan_stat.len(), 2);
    assert!(wan.wan_stat[0].rtt.parse::<u64>().is_ok());
    assert_eq!(
        wan.wan_stat[1].rtt, "--",
        "the failed line has no round trip"
    );
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct AppFlows {
        app_flow: strict::AppFlow,
    }
    for func in ["homepage", "monitor_system"] {
        let flow = strictly!(
            AppFlows,
            show_with(func, "app_flow", json!({"minute": "60"}))
        );
        let row = &flow.app_flow.app_flow[0];
        let sum: u64 = row
            .iter()
            .filter(|(k, _)| *k != "Total")
            .map(|(_, v)| v)
            .sum();
        assert_eq!(row["Total"], sum, "{func}: Total sums the categories");
    }
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Flows {
        flow: Vec<strict::FlowRow>,
    }
    let flows = strictly!(Flows, show("monitor_app_flow", "flow"));
    assert!(flows.flow.iter().all(|r| r.name != "Total"));
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Upgrades {
        data: strict::Upgrade,
    }
    let up = strictly!(Upgrades, show("upgrade", "data"));
    assert_eq!(up.data.system_ver, home.sysstat.verinfo.version);
    assert!(!up.data.system_ver_new.is_empty());
    let reg = strictly!(strict::Register, show("register", "data,gwid"));
    assert_eq!(reg.gwid, home.sysstat.gwid, "one gateway id");
    assert_eq!(reg.data.gwid, reg.gwid);
    let users = strictly!(
        strict::WebUsers,
        json!({"func_name": "webuser", "action": "show", "param": {}})
    );
    assert_eq!(users.data[0].username, "admin");
}

#[tokio::test]
async fn every_action_call_answer_decodes_with_the_strict_types_of_the_documents() {
    for firmware in [Firmware::V3, Firmware::V4] {
        for quirks in [true, false] {
            decode_every_answer_strictly(firmware, quirks).await;
        }
    }
}

#[tokio::test]
async fn the_strict_types_refuse_shapes_no_router_sends() {
    // A WAN row with a bare-number connect_num, a small total in exponent form, a numeric
    // 3.x updatetime: each is a simulator bug the strict decoders must catch.
    let stream = |connect: &str, total: &str| {
        format!(
            r#"{{"Result":30000,"ErrMsg":"Success","Data":{{"iface_check":[],"iface_stream":[{{"interface":"wan1","comment":"","ip_addr":"10.4.71.74","connect_num":{connect},"upload":1,"download":2,"total_up":{total},"total_down":3,"updropped":0,"downdropped":0,"uppacked":0,"downpacked":0}}]}}}}"#
        )
    };
    let ok =
        strict::payload::<strict::MonitorIface>(false, &stream(r#""1""#, "1.0118846706974e+14"));
    assert!(ok.is_ok(), "{ok:?}");
    assert!(strict::payload::<strict::MonitorIface>(false, &stream("1", "5")).is_err());
    assert!(strict::payload::<strict::MonitorIface>(false, &stream(r#""1""#, "5.5e+3")).is_err());
    assert!(
        strict::payload::<strict::Rows<strict::DnsCacheRow>>(
            false,
            r#"{"Result":30000,"ErrMsg":"Success","Data":{"data":[],"extra":1}}"#
        )
        .is_err(),
        "unknown fields are refused"
    );
}

#[tokio::test]
async fn exponent_totals_only_on_a_router_with_large_totals() {
    for large_totals in [false, true] {
        let sim = sim(IkuaiSimConfig {
            large_totals,
            ..Default::default()
        })
        .await;
        let cookie = login(&sim).await;
        let text = call_text(&sim, &cookie, show("monitor_iface", "iface_stream")).await;
        assert_eq!(text.contains("e+14"), large_totals, "{text}");
    }
}

#[tokio::test]
async fn webuser_show_is_the_cheap_session_check() {
    let sim = sim(IkuaiSimConfig::default()).await;
    let check = json!({"func_name": "webuser", "action": "show", "param": {}});
    let body: Value = call_raw(&sim, None, check.clone())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["Result"], 10014);
    let cookie = login(&sim).await;
    assert_eq!(call(&sim, &cookie, check).await["Result"], 30000);
}

const TOKEN: &str = "00112233445566778899aabbccddeeff";

async fn token_get(sim: &IkuaiSim, token: Option<&str>, path: &str) -> (u16, String) {
    let mut req = client().get(format!("{}/api/v4.0/{path}", sim.url()));
    if let Some(token) = token {
        req = req.header("Authorization", format!("Bearer {token}"));
    }
    let resp = req.send().await.expect("token request");
    (resp.status().as_u16(), resp.text().await.expect("body"))
}

fn token_results<T: serde::de::DeserializeOwned>(path: &str, (status, body): (u16, String)) -> T {
    assert_eq!(status, 200, "{path}: {body}");
    let envelope: strict::Token<T> =
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"));
    assert_eq!(envelope.code.unwrap_or(0), 0, "{path}");
    assert_eq!(envelope.message, "Success");
    envelope.results
}

#[tokio::test]
async fn every_token_api_answer_decodes_with_the_strict_types_of_the_specs() {
    for quirks in [true, false] {
        let sim = sim(IkuaiSimConfig {
            firmware: Firmware::V4,
            quirks,
            lan_clients: 25,
            lan_clients_v6: 3,
            token: Some(TOKEN.into()),
            ..Default::default()
        })
        .await;
        macro_rules! strictly {
            ($ty:ty, $path:expr) => {{
                let path = $path;
                token_results::<$ty>(path, token_get(&sim, Some(TOKEN), path).await)
            }};
        }
        let sys = strictly!(strict::SystemResults, "monitoring/system");
        let s = &sys.sysinfo.stream;
        assert_eq!(
            s.tcp_connect_num + s.udp_connect_num + s.icmp_connect_num,
            s.connect_num
        );
        let status = strictly!(strict::InterfaceStatus, "monitoring/interfaces-status");
        assert!(status
            .iface_check
            .iter()
            .all(|c| ["success", "failed"].contains(&c.result.as_str())));
        let traffic = strictly!(strict::InterfacesTraffic, "monitoring/interfaces-traffic");
        assert_eq!(traffic.wans_stat_history[0].interface, "all");
        strictly!(strict::Physical, "monitoring/interfaces-physical");
        strictly!(strict::InterfacesConfig, "monitoring/interfaces-config");
        strictly!(strict::DnsStats, "network/dns/stats");
        let now = fleet_now();
        let protocols = strictly!(
            strict::Protocols,
            &format!(
                "monitoring/protocols?starttime={}&stoptime={now}",
                now - 3600
            )
        );
        assert_eq!(protocols.data.len(), 10);
        // The default page is 10 rows; pages go on until `total`.
        let first = strictly!(strict::OnlineClients, "monitoring/clients-online");
        let expected_rows = if quirks { 26 } else { 25 };
        assert_eq!(first.total, expected_rows);
        assert_eq!(first.data.len(), 10);
        let last = strictly!(
            strict::OnlineClients,
            "monitoring/clients-online?page=3&limit=10"
        );
        assert_eq!(last.data.len() as u64, expected_rows - 20);
        let v6 = strictly!(strict::OnlineClients, "monitoring/clients-ip6-online");
        assert!(v6
            .data
            .iter()
            .all(|c| c.channel.is_some() && matches!(c.signal, strict::Signal::Number(_))));
        assert!(first.data.iter().all(|c| c.channel.is_none()));
    }
}

/// Unix seconds now.
fn fleet_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test]
async fn the_token_api_refuses_a_bad_token_and_bad_paging_with_the_documented_bodies() {
    let sim = sim(IkuaiSimConfig {
        firmware: Firmware::V4,
        token: Some(TOKEN.into()),
        ..Default::default()
    })
    .await;
    for token in [None, Some("ffffffffffffffffffffffffffffffff")] {
        let (status, body) = token_get(&sim, token, "monitoring/system").await;
        assert_eq!(status, 401);
        let e: strict::TokenError = serde_json::from_str(&body).unwrap();
        assert_eq!(e.code, Some(3007));
    }
    assert_eq!(sim.token_refusals(), 2);
    let (status, body) = token_get(&sim, Some(TOKEN), "monitoring/clients-online?page=0").await;
    assert_eq!(status, 400, "{body}");
    let e: strict::TokenError = serde_json::from_str(&body).unwrap();
    assert_eq!(e.code, Some(3001));
    let (status, _) = token_get(&sim, Some(TOKEN), "monitoring/nosuch").await;
    assert_eq!(status, 404);
    // 3.x firmware has no token API at all.
    let v3 = self::sim(IkuaiSimConfig {
        token: Some(TOKEN.into()),
        ..Default::default()
    })
    .await;
    assert_eq!(
        token_get(&v3, Some(TOKEN), "monitoring/system").await.0,
        404
    );
}

/// A 4.x router with a token, 8 LAN clients (5 of them wireless) and `change` applied.
async fn token_router(change: impl FnOnce(&mut IkuaiSimConfig)) -> IkuaiSim {
    let mut cfg = IkuaiSimConfig {
        firmware: Firmware::V4,
        token: Some(TOKEN.into()),
        ..Default::default()
    };
    change(&mut cfg);
    sim(cfg).await
}

fn strictly<T: serde::de::DeserializeOwned>(what: &str, body: &str) -> T {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{what}: {e}: {body}"))
}

#[tokio::test]
async fn disks_and_wireless_statistics_decode_with_the_strict_types_of_their_specs() {
    // The specs' own examples first: the strict types are the specs', not the simulator's.
    for name in ["token_system_disks.json", "token_wireless_statistics.json"] {
        let text = std::fs::read_to_string(format!("{FIXTURES}/{name}")).expect("fixture");
        if name.contains("disks") {
            strictly::<strict::DisksResponse>(name, &text);
        } else {
            strictly::<strict::WirelessResponse>(name, &text);
        }
    }
    for quirks in [true, false] {
        let sim = token_router(|c| c.quirks = quirks).await;
        let (status, body) = token_get(&sim, Some(TOKEN), "system/disks").await;
        assert_eq!(status, 200, "{body}");
        let disks: strict::DisksResponse = strictly("system/disks", &body);
        assert_eq!((disks.code, disks.message.as_str()), (0, "Success"));
        let system: Vec<&str> = disks
            .results
            .data
            .iter()
            .filter(|d| d.system.0)
            .map(|d| d.disk.as_str())
            .collect();
        assert_eq!(system, ["sdb"], "one system disk");
        for p in disks.results.data.iter().flat_map(|d| &d.partition) {
            let n = |d: &strict::Digits| d.0.parse::<u64>().unwrap();
            let (total, used, avail) = (
                n(&p.mounted.mt_total),
                n(&p.mounted.mt_used),
                n(&p.mounted.mt_avail),
            );
            assert!(
                used + avail <= total && total <= p.size,
                "{}: {body}",
                p.name
            );
            let uses = (used as f64 * 100.0 / total as f64).round() as u64;
            assert_eq!(
                n(&p.mounted.mt_uses),
                uses,
                "{}: mt_uses is percent used",
                p.name
            );
        }

        let (status, body) = token_get(&sim, Some(TOKEN), "monitoring/wireless-statistics").await;
        assert_eq!(status, 200, "{body}");
        let w: strict::WirelessResponse = strictly("wireless-statistics", &body);
        assert_eq!(w.message, "Success");
        let (ap, clt) = (&w.results.ap_status, &w.results.clt_status);
        assert_eq!(ap.ap_online + ap.ap_offline, ap.ap_count);
        assert_eq!(clt.clt_count_2g + clt.clt_count_5g, clt.clt_count);
        assert_eq!(clt.clt_active + clt.clt_inactive, clt.clt_count);
        assert!(clt.clt_max_online >= clt.clt_count);
        let sys = token_results::<strict::SystemResults>(
            "monitoring/system",
            token_get(&sim, Some(TOKEN), "monitoring/system").await,
        );
        let online = &sys.sysinfo.online_user;
        assert_eq!(
            (online.count_wireless, online.count_2g, online.count_5g),
            (clt.clt_count, clt.clt_count_2g, clt.clt_count_5g),
            "the wireless clients are the ones the system status counts"
        );
    }
}

#[tokio::test]
async fn a_router_without_wireless_or_the_disks_endpoint_answers_not_found() {
    let sim = token_router(|c| {
        c.wireless = false;
        c.system_disks = false;
    })
    .await;
    for path in ["monitoring/wireless-statistics", "system/disks"] {
        let (status, body) = token_get(&sim, Some(TOKEN), path).await;
        assert_eq!(status, 404, "{path}: {body}");
        let e: strict::MessageOnly = strictly(path, &body);
        assert!(!e.message.is_empty());
        assert_eq!(sim.token_path_calls(path), 1);
    }
    let (status, _) = token_get(&sim, Some(TOKEN), "monitoring/system").await;
    assert_eq!(status, 200, "the rest of the API is there");
}

#[test]
fn the_strict_disk_and_wireless_types_refuse_shapes_the_specs_rule_out() {
    let text = std::fs::read_to_string(format!("{FIXTURES}/token_system_disks.json")).unwrap();
    let numeric_total = text.replacen(
        r#""mt_total":"244062085120""#,
        r#""mt_total":244062085120"#,
        1,
    );
    assert_ne!(numeric_total, text);
    assert!(serde_json::from_str::<strict::DisksResponse>(&numeric_total).is_err());
    let no_code = text.replacen(r#""code":0,"#, "", 1);
    assert!(serde_json::from_str::<strict::DisksResponse>(&no_code).is_err());
    let purpose = text.replacen(r#""mt_purpose":"0""#, r#""mt_purpose":"5""#, 1);
    assert!(serde_json::from_str::<strict::DisksResponse>(&purpose).is_err());
    let w = std::fs::read_to_string(format!("{FIXTURES}/token_wireless_statistics.json")).unwrap();
    let with_code = w.replacen('{', r#"{"code":0,"#, 1);
    assert!(serde_json::from_str::<strict::WirelessResponse>(&with_code).is_err());
    let string_count = w.replacen(r#""ap_count":3"#, r#""ap_count":"3""#, 1);
    assert!(serde_json::from_str::<strict::WirelessResponse>(&string_count).is_err());
}
