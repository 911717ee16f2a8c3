//! Property tests over everything that reads bytes from outside: each driver's answer decoding
//! and metric mapping, the lenient readers, the label escaping, and config parsing. None may
//! panic, and every exposition they lead to must parse.
//!
//! CI runs proptest's default 256 cases per property; the long run is
//! `PROPTEST_CASES=1000000 cargo test --release --test fuzz` (see TESTING.md).

mod common;

use std::collections::HashSet;
use std::path::Path;
use std::sync::LazyLock;

use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{json, Value};

use fleet_core::config::{Config, FileFormat};
use fleet_core::exposition::{render, Format};
use fleet_core::snapshot::{escape_label_value, Family, Snapshot, SnapshotBuilder};
use fleet_drivers::util::lenient;
use fleet_drivers::{ikuai, iot, komari, openvox};

use common::exposition::{read_escaped, valid_name};

// ---------------------------------------------------------------------------------------------
// Inputs: real answers from fixtures, mutated where it matters, and raw bytes.

type Bodies = Vec<Vec<u8>>;

/// Every saved answer of `kind` that is JSON (the text-prefixed ones are kept as bytes).
fn fixtures(kind: &str) -> Bodies {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(kind);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json" || x == "txt"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| std::fs::read(p).unwrap())
        .collect()
}

/// Saved answers by device kind.
static FIXTURES: LazyLock<[(&str, Bodies); 4]> =
    LazyLock::new(|| ["ikuai", "komari", "openvox", "iot"].map(|k| (k, fixtures(k))));

fn fixtures_of(kind: &str) -> &'static [Vec<u8>] {
    &FIXTURES.iter().find(|(k, _)| *k == kind).unwrap().1
}

/// Text in the shapes devices send where a number, a time, a state word or nested JSON belongs.
fn device_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[-+ ]?[0-9]{0,20}(\\.[0-9]{0,6})?([eE][-+]?[0-9]{1,4})?%? ?",
        Just("--".to_string()),
        "[0-9]{0,20}-[0-9]{0,3}-[0-9]{0,3}([ Tt][0-9]{0,3}:[0-9]{0,3}(:[0-9]{0,3})?)?(\\.[0-9]{0,12})?( ?[-+][0-9:]{0,6}|Z)?",
        "((FX[SO](LS|KS|GS)?|RED|YELLOW|BLUE|In use|EC:|SWEC:| - |ACTIVE|INACTIVE|OK|\\(|\\)| )){0,10}",
        "((Registered|Unregistered|Rejected|Request Sent|\\(|\\)|exp\\.| |[0-9]{1,25}|s|ago|-)){0,8}",
        "(%[0-9A-Fa-f]{0,2}|[a-z ]|红|%E5|%FF){0,12}",
        any::<String>(),
    ]
}

/// Any JSON leaf or small structure, biased towards what lenient readers must tell apart.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        device_text().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_0-9]{0,8}", inner.clone(), 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            // JSON inside a string, as OpenVox nests it.
            inner.prop_map(|v| Value::String(v.to_string())),
        ]
    })
}

/// Replaces the `at`-th node (pre-order) of `v`. With `deep`, a string that holds a JSON
/// document is mutated inside and written back, so nested JSON is fuzzed by structure too.
fn mutate(v: &mut Value, at: &mut usize, new: &Value, deep: bool) -> bool {
    if *at == 0 {
        if let (true, Value::String(s)) = (deep, &*v) {
            if let Ok(mut inner @ (Value::Object(_) | Value::Array(_))) = serde_json::from_str(s) {
                let mut inner_at = s.len() % 7;
                mutate(&mut inner, &mut inner_at, new, false);
                *v = Value::String(inner.to_string());
                return true;
            }
        }
        *v = new.clone();
        return true;
    }
    *at -= 1;
    match v {
        Value::Array(items) => items.iter_mut().any(|i| mutate(i, at, new, deep)),
        Value::Object(map) => map.values_mut().any(|i| mutate(i, at, new, deep)),
        _ => false,
    }
}

fn nodes(v: &Value) -> usize {
    1 + match v {
        Value::Array(items) => items.iter().map(nodes).sum(),
        Value::Object(map) => map.values().map(nodes).sum(),
        _ => 0,
    }
}

/// A device answer of `kind`: a fixture with some values replaced, or its bytes cut or flipped,
/// or bytes with no relation to it at all.
fn answer(kind: &'static str) -> impl Strategy<Value = Vec<u8>> {
    let mutations = prop::collection::vec((any::<Index>(), json_value(), any::<bool>()), 1..6);
    let structured = (any::<Index>(), mutations).prop_map(move |(f, mutations)| {
        let bytes = f.get(fixtures_of(kind));
        let Ok(mut doc) = ikuai::model::decode_json::<Value>(bytes) else {
            return bytes.clone();
        };
        for (at, new, deep) in mutations {
            let mut at = at.index(nodes(&doc));
            mutate(&mut doc, &mut at, &new, deep);
        }
        serde_json::to_vec(&doc).unwrap()
    });
    let damaged = (
        any::<Index>(),
        prop::collection::vec((any::<Index>(), any::<u8>()), 0..4),
        any::<Index>(),
    )
        .prop_map(move |(f, flips, cut)| {
            let mut bytes = f.get(fixtures_of(kind)).clone();
            for (at, b) in flips {
                let i = at.index(bytes.len());
                bytes[i] = b;
            }
            bytes.truncate(cut.index(bytes.len() + 1));
            bytes
        });
    prop_oneof![
        6 => structured,
        3 => damaged,
        1 => prop::collection::vec(any::<u8>(), 0..512),
    ]
}

// ---------------------------------------------------------------------------------------------
// A small exposition parser: enough to prove a scrape reads back as what was put in.

/// A metric name, its labels in order, and its value.
type Sample = (String, Vec<(String, String)>, f64);

/// Parses a text (0.0.4) or OpenMetrics exposition into (name, labels, value) samples. Fails on
/// anything a strict reader would refuse: unknown comment lines, bad escapes, a family split in
/// two, a duplicate series, a missing `# EOF` in OpenMetrics.
fn parse_exposition(text: &str, format: Format) -> Result<Vec<Sample>, String> {
    let mut samples = Vec::new();
    let mut families_seen = HashSet::new();
    let mut series_seen = HashSet::new();
    let mut current_family = String::new();
    let mut eof = false;
    for line in text.lines() {
        if eof {
            return Err(format!("line after # EOF: {line:?}"));
        }
        if line == "# EOF" {
            eof = true;
            continue;
        }
        if let Some(rest) = line.strip_prefix("# ") {
            let (kw, rest) = rest
                .split_once(' ')
                .ok_or(format!("bad comment {line:?}"))?;
            let name = rest.split(' ').next().unwrap_or("");
            match kw {
                "HELP" => {
                    if !families_seen.insert(name.to_string()) {
                        return Err(format!("family {name} appears twice"));
                    }
                    current_family = name.to_string();
                }
                "TYPE" if name == current_family => {}
                "UNIT" if format == Format::OpenMetrics && name == current_family => {}
                _ => return Err(format!("unexpected comment {line:?}")),
            }
            continue;
        }
        let name_end = line
            .find(['{', ' '])
            .ok_or(format!("no value in {line:?}"))?;
        let name = &line[..name_end];
        if !name.starts_with(current_family.as_str()) || !valid_name(name) {
            return Err(format!(
                "sample {name:?} outside its family {current_family:?}"
            ));
        }
        let mut rest = &line[name_end..];
        let mut labels = Vec::new();
        if let Some(body) = rest.strip_prefix('{') {
            rest = body;
            loop {
                if let Some(r) = rest.strip_prefix('}') {
                    rest = r;
                    break;
                }
                let (label, r) = rest
                    .split_once("=\"")
                    .ok_or(format!("bad label in {line:?}"))?;
                if !valid_name(label) {
                    return Err(format!("bad label name {label:?}"));
                }
                let (value, r) = read_escaped(r).ok_or(format!("bad label value in {line:?}"))?;
                labels.push((label.to_string(), value));
                rest = r.strip_prefix(',').unwrap_or(r);
            }
        }
        let value = rest
            .strip_prefix(' ')
            .ok_or(format!("no space before value: {line:?}"))?;
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().map_err(|_| format!("bad value in {line:?}"))?,
        };
        if !series_seen.insert((name.to_string(), labels.clone())) {
            return Err(format!("duplicate series {line:?}"));
        }
        samples.push((name.to_string(), labels, value));
    }
    if format == Format::OpenMetrics && !eof {
        return Err("no # EOF".into());
    }
    Ok(samples)
}

/// Renders `snapshot` both ways and checks both parse; returns the text format's samples.
fn check_exposition(snapshot: &Snapshot) -> Vec<Sample> {
    let mut text_samples = Vec::new();
    for format in [Format::Text, Format::OpenMetrics] {
        let bytes = render(format, [snapshot]);
        let text = String::from_utf8(bytes).expect("exposition is UTF-8");
        match parse_exposition(&text, format) {
            Ok(s) if format == Format::Text => text_samples = s,
            Ok(_) => {}
            Err(e) => panic!("{format:?} exposition does not parse: {e}\n{text}"),
        }
    }
    text_samples
}

// ---------------------------------------------------------------------------------------------
// Each driver: answer bytes → wire types → metric mapping → exposition.

fn ikuai_answer(body: &[u8]) -> Snapshot {
    use ikuai::metrics;
    use ikuai::model::{
        parse_answer, Answer, ClientPage, Homepage, MonitorIface, Snapshoot, UpgradeAnswer,
    };
    fn ok<T: serde::de::DeserializeOwned + Default>(body: &[u8]) -> Option<(ikuai::model::Api, T)> {
        match parse_answer::<T>(body) {
            Ok((api, Answer::Ok(t))) => Some((api, t)),
            _ => None,
        }
    }
    let mut b = SnapshotBuilder::new(Some("fuzz"));
    if let Some((api, home)) = ok::<Homepage>(body) {
        metrics::system(&mut b, &home.sysstat, Some(api));
        metrics::access_points_and_pool(&mut b, &home);
        metrics::ports(&mut b, &home.ether_info);
        let mut lines = metrics::wan_stat_quality(&home.wan_stat);
        for line in &mut lines {
            // The same device number through the loss path too (its bounds checks).
            line.loss_percent = line.rtt_ms;
        }
        metrics::wan_quality(&mut b, &lines);
        metrics::app_traffic(&mut b, &home.app_flow.categories(), 3600.0);
    }
    if let Some((_, upgrade)) = ok::<UpgradeAnswer>(body) {
        metrics::versions(&mut b, &upgrade.data);
    }
    if let Some((_, iface)) = ok::<MonitorIface>(body) {
        metrics::interfaces(&mut b, &iface);
    }
    if let Some((_, page)) = ok::<ClientPage>(body) {
        metrics::clients(&mut b, &[("4", &page.data)], 1000);
    }
    if let Some((_, payload)) = ok::<Value>(body) {
        metrics::dns(&mut b, &ikuai::model::dns_cache_rows(&payload));
        metrics::qos(&mut b, &ikuai::model::qos_rows(&payload));
    }
    if let Some((_, snap)) = ok::<Snapshoot>(body) {
        metrics::addressing(&mut b, &snap);
    }
    b.finish()
}

/// The token API's optional answers (`{code?, message, results}`), in a snapshot of their own:
/// on a real target the AP counts come from either `ac_status` or these, never both.
fn ikuai_token_answer(body: &[u8]) -> Snapshot {
    use ikuai::token_model::{DisksAnswer, WirelessAnswer};
    #[derive(serde::Deserialize)]
    struct Token<T> {
        results: Option<T>,
    }
    fn results<T: serde::de::DeserializeOwned>(body: &[u8]) -> Option<T> {
        ikuai::model::decode_json::<Token<T>>(body).ok()?.results
    }
    let mut b = SnapshotBuilder::new(Some("fuzz"));
    if let Some(w) = results::<WirelessAnswer>(body) {
        ikuai::metrics::wireless(&mut b, &w, None);
    }
    if let Some(d) = results::<DisksAnswer>(body) {
        ikuai::metrics::disks(&mut b, &d.data);
    }
    b.finish()
}

fn komari_answer(body: &[u8]) -> Snapshot {
    use komari::metrics;
    use komari::model::{parse_envelope, Live, Node, PingRecords, Version};
    if let Ok(serde_json::Value::Object(mut reply)) = serde_json::from_slice(body) {
        if let Some(result) = reply.remove("result") {
            return komari_rpc_result(result);
        }
    }
    let mut b = SnapshotBuilder::new(Some("fuzz"));
    let list: Vec<Node> = parse_envelope(body).unwrap_or_default();
    let live: Option<Live> = parse_envelope(body).ok();
    metrics::nodes(
        &mut b,
        &list,
        live.as_ref(),
        &mut metrics::NodeWords::default(),
    );
    if let Ok(v) = parse_envelope::<Version>(body) {
        metrics::build_info(&mut b, &v);
    }
    if let Ok(records) = parse_envelope::<PingRecords>(body) {
        let by_node = [("n".to_string(), records.summarize())].into();
        let tasks = records
            .tasks
            .iter()
            .map(|t| (t.id.clone(), t.clone()))
            .collect();
        metrics::pings(&mut b, &by_node, &tasks, 0);
    }
    b.finish()
}

/// A JSON-RPC result read as each result the driver reads: a latest status, a node list or
/// ping percentiles.
fn komari_rpc_result(result: serde_json::Value) -> Snapshot {
    use komari::metrics;
    use komari::rpc_model::{LatestStatus, Nodes, PingMetricStats};
    let mut b = SnapshotBuilder::new(Some("fuzz"));
    let (live, pings) = serde_json::from_value::<LatestStatus>(result.clone())
        .unwrap_or_default()
        .into_live();
    let list = serde_json::from_value::<Nodes>(result.clone())
        .unwrap_or_default()
        .into_list();
    metrics::nodes(
        &mut b,
        &list,
        Some(&live),
        &mut metrics::NodeWords::default(),
    );
    metrics::rpc_pings(&mut b, &pings);
    let stats = serde_json::from_value::<PingMetricStats>(result).unwrap_or_default();
    let online = live.online.iter().map(String::as_str).collect();
    metrics::ping_percentiles(&mut b, &stats.0, &online);
    b.finish()
}

fn openvox_answer(body: &[u8]) -> Snapshot {
    use openvox::metrics::{self, CallCounters, CpuSampler, Unrecognized};
    use openvox::model::{cdr_records, data_object, parse_answer, Answer};
    let mut b = SnapshotBuilder::new(Some("fuzz"));
    let Ok(Answer::Ok(data)) = parse_answer(body) else {
        return b.finish();
    };
    let mut unrecognized = Unrecognized::default();
    if let Ok(oem) = data_object(data.clone()) {
        metrics::info(&mut b, &oem);
    }
    if let Ok(perf) = data_object(data.clone()) {
        metrics::performance(&mut b, &perf, &mut CpuSampler::default());
    }
    if let Ok(info) = data_object::<openvox::model::DeviceInfo>(data.clone()) {
        metrics::storage(&mut b, info.use_storage);
    }
    if let Ok(iface) = data_object::<openvox::model::Interface>(data.clone()) {
        let mut problems = Vec::new();
        for (slot, board) in iface.interface.iter().enumerate() {
            let slot = slot.to_string();
            metrics::board(
                &mut b,
                iface.uptime,
                &slot,
                board,
                &mut metrics::DeviceWords::default(),
                &mut unrecognized,
                &mut problems,
            );
        }
    }
    if let Ok(records) = cdr_records(data) {
        let mut calls = CallCounters::default();
        calls.count(0, &records, &mut unrecognized);
        calls.export(&mut b);
    }
    unrecognized.export(&mut b);
    b.finish()
}

fn iot_answer(body: &[u8]) -> Snapshot {
    use iot::model::{parse_answer, Answer};
    let mut b = SnapshotBuilder::new(Some("fuzz"));
    if let Ok(envelope) = parse_answer(body) {
        if let Answer::Ok(flow) = envelope.answer {
            let mapping = iot::metrics::Mapping::default();
            iot::metrics::device(&mut b, "865214078636124", &flow, &mapping);
        }
    }
    b.finish()
}

proptest! {
    #[test]
    fn ikuai_answers_never_panic_and_expose_cleanly(body in answer("ikuai")) {
        check_exposition(&ikuai_answer(&body));
        check_exposition(&ikuai_token_answer(&body));
    }

    #[test]
    fn komari_answers_never_panic_and_expose_cleanly(body in answer("komari")) {
        check_exposition(&komari_answer(&body));
    }

    #[test]
    fn openvox_answers_never_panic_and_expose_cleanly(body in answer("openvox")) {
        check_exposition(&openvox_answer(&body));
    }

    #[test]
    fn iot_answers_never_panic_and_expose_cleanly(body in answer("iot")) {
        check_exposition(&iot_answer(&body));
    }

    #[test]
    fn openvox_words_never_panic(text in device_text()) {
        let port = openvox::model::parse_port_state(&text);
        prop_assert!(!port.signalling.contains(' '));
        let sip = openvox::model::parse_sip_state(&text);
        prop_assert!(sip.expiry.is_none_or(f64::is_finite));
        let _ = openvox::model::time_key(&text);
        let _ = openvox::model::nested("f", &text);
    }

    #[test]
    fn lenient_readers_never_panic(v in json_value(), text in device_text(), offset in -50_000i64..50_000) {
        if let Some(n) = lenient::number(&v) {
            prop_assert!(n.is_finite());
        }
        let _ = lenient::text(&v);
        let _ = lenient::timestamp(&v);
        let _ = lenient::timestamp(&Value::String(text.clone()));
        let _ = lenient::local_datetime(&text, offset);
        let _ = lenient::url_decoded(&text);
    }

    /// A valid document behind text the router put first reads as the document itself: the
    /// repair only drops the prefix and never touches strings, numbers or structure.
    #[test]
    fn json_repair_keeps_valid_json(v in json_value(), prefix in "[^\\[{]{0,24}", pretty in any::<bool>()) {
        let doc = Value::Array(vec![v]);
        let text = if pretty { serde_json::to_string_pretty(&doc) } else { serde_json::to_string(&doc) }.unwrap();
        let plain: Value = serde_json::from_str(&text).unwrap();
        let body = format!("{prefix}{text}");
        let repaired: Value = ikuai::model::decode_json(body.as_bytes()).unwrap();
        prop_assert_eq!(repaired, plain);
    }

    /// Bare words where values belong (`timeout`, `nil`) read as `null`, the rest unchanged.
    #[test]
    fn json_repair_reads_bare_words_as_null(
        fields in prop::collection::btree_map("[a-z]{1,6}", prop::option::of(json_value()), 1..6),
        word in "[a-zA-Z][a-zA-Z0-9_]{0,8}",
    ) {
        prop_assume!(!["true", "false", "null"].contains(&word.as_str()));
        // Compared with the same text with `null` written in: serde_json's float parsing is
        // not exact, so a number must be read from the same digits on both sides.
        let with = |bare: &str| {
            let fields: Vec<String> = fields
                .iter()
                .map(|(k, v)| match v {
                    Some(v) => format!("\"{k}\":{v}"),
                    None => format!("\"{k}\":{bare}"),
                })
                .collect();
            format!("{{{}}}", fields.join(","))
        };
        let expected: Value = serde_json::from_str(&with("null")).unwrap();
        let got: Value = ikuai::model::decode_json(with(&word).as_bytes()).unwrap();
        prop_assert_eq!(got, expected);
    }

    #[test]
    fn label_escaping_round_trips(s in any::<String>()) {
        let mut escaped = String::new();
        escape_label_value(&s, &mut escaped);
        prop_assert!(!escaped.contains('\n'));
        escaped.push('"');
        let (back, rest) = read_escaped(&escaped).expect("readable escape");
        prop_assert_eq!(back, s);
        prop_assert_eq!(rest, "");
    }

    /// Any target name and label values come back out of both exposition formats unchanged.
    #[test]
    fn exposition_of_any_label_values_parses(
        target in any::<String>(),
        rows in prop::collection::vec((any::<String>(), any::<String>(), any::<f64>()), 1..6),
    ) {
        static FAMILY: Family = Family::gauge("fuzz_value_ratio", "A help text with \\ and \n.", &["a", "b"]);
        let mut unique = HashSet::new();
        let rows: Vec<_> = rows.into_iter().filter(|(a, b, _)| unique.insert((a.clone(), b.clone()))).collect();
        let mut builder = SnapshotBuilder::new(Some(&target));
        for (a, b, v) in &rows {
            builder.add(&FAMILY, &[a, b], *v);
        }
        let samples = check_exposition(&builder.finish());
        prop_assert_eq!(samples.len(), rows.len());
        for ((name, labels, value), (a, b, v)) in samples.iter().zip(&rows) {
            prop_assert_eq!(name, "fuzz_value_ratio");
            let want = [("target", &target), ("a", a), ("b", b)].map(|(k, v)| (k.to_string(), v.clone()));
            prop_assert_eq!(labels.as_slice(), want.as_slice());
            prop_assert!(value == v || (value.is_nan() && v.is_nan()));
        }
    }

    /// Config text never panics the loader, whether TOML-shaped or not.
    #[test]
    fn config_parse_never_panics(text in config_text(), yaml in any::<bool>()) {
        let format = if yaml { FileFormat::Yaml } else { FileFormat::Toml };
        let _ = Config::parse(&text, format, Path::new("/nonexistent"), fleet_drivers::KINDS);
    }
}

/// Config-like text: TOML lines built from the real keys and value shapes, plus arbitrary text.
fn config_text() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        Just("name"),
        Just("kind"),
        Just("url"),
        Just("interval"),
        Just("timeout"),
        Just("backoff_max"),
        Just("username"),
        Just("password"),
        Just("password_file"),
        Just("listen"),
        Just("devices"),
        Just("app_id"),
        Just("app_secret"),
        Just("max_clients"),
        Just("modules"),
        Just("ping"),
        Just("api_key"),
        Just("bogus"),
    ];
    let value = prop_oneof![
        "\"[0-9]{0,22}(\\.[0-9]{0,3})?(ms|s|m|h|d){0,1}([0-9]{0,22}(ms|s|m|h|d))?\"",
        Just("\"ikuai\"".to_string()),
        Just("\"komari\"".to_string()),
        Just("\"openvox\"".to_string()),
        Just("\"iot\"".to_string()),
        "\"(https?|ftp)://[a-z0-9.:\\[\\]@%]{0,20}/?\"",
        "\"[$]\\{[A-Z_]{0,8}\\}?[a-z]{0,4}\"",
        "-?[0-9]{1,25}(\\.[0-9]{1,4})?",
        Just("true".to_string()),
        Just("[]".to_string()),
        Just("{}".to_string()),
        Just("[\"1\", 2]".to_string()),
        "\"[^\"\\\\\n]{0,16}\"",
    ];
    let line = prop_oneof![
        6 => (key, value).prop_map(|(k, v)| format!("{k} = {v}")),
        2 => prop_oneof![
            Just("[[targets]]".to_string()), Just("[server]".to_string()),
            Just("[defaults]".to_string()),
        ],
        1 => any::<String>(),
    ];
    prop::collection::vec(line, 0..16).prop_map(|lines| lines.join("\n"))
}
