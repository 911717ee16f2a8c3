//! The exposition as a strict OpenMetrics 1.0 reader sees it: every demo family, scraped over a
//! real socket with the `Accept` headers Prometheus sends, must parse under the rules below
//! (stricter than Prometheus' own parser, which the e2e runs), and the text 0.0.4 answer to the
//! same exporter must keep the types text knows.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use fleet_exporter::demo::Demo;
use reqwest::header::{ACCEPT, CONTENT_TYPE};

use common::exposition::{read_escaped, valid_name};

/// Prometheus 2.42 (the e2e's Debian package) and anything before 2.49.
const PROM_2_OLD: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
/// Prometheus 3.x, default `scrape_protocols`.
const PROM_3: &str = "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2";
/// Prometheus 3.x with `scrape_protocols: [PrometheusText0.0.4, OpenMetricsText1.0.0]`.
const PROM_3_TEXT_FIRST: &str = "text/plain;version=0.0.4;q=0.6,application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,*/*;q=0.4";

/// OpenMetrics' base units, written here independently of the exporter's own list.
const UNITS: &[&str] = &[
    "seconds", "bytes", "ratio", "celsius", "volts", "amperes", "joules", "grams", "meters",
];

/// What the strict reader keeps of a family.
#[derive(Debug, Default)]
struct ParsedFamily {
    kind: String,
    unit: Option<String>,
    help: bool,
    samples: Vec<(String, Labels, f64)>,
}

/// Parses an OpenMetrics 1.0 exposition, failing on anything the spec (or this exporter's
/// promise) rules out: a family's metadata after its samples or twice, a family split in two,
/// a `UNIT` that is not the name's suffix or a name ending in a base unit without one, counter
/// samples not named `_total`/`_created`, info samples not named `_info` or not 1, a stateset
/// sample without its state label or not 0/1, a gauge sample named other than its family, a
/// sample name shared by two families, a duplicate series or label, bad escapes, text after
/// `# EOF` or no `# EOF`.
fn parse_openmetrics(text: &str) -> Result<BTreeMap<String, ParsedFamily>, String> {
    let mut families: BTreeMap<String, ParsedFamily> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    let mut sample_names: HashMap<String, String> = HashMap::new();
    let mut series = HashSet::new();
    let body = text
        .strip_suffix("# EOF\n")
        .ok_or("the exposition does not end with `# EOF\\n`")?;
    for line in body.split_terminator('\n') {
        if line.is_empty() {
            return Err("empty line".into());
        }
        if let Some(rest) = line.strip_prefix("# ") {
            let (keyword, rest) = rest.split_once(' ').ok_or(format!("bad {line:?}"))?;
            let (name, value) = rest.split_once(' ').ok_or(format!("bad {line:?}"))?;
            if !valid_name(name) {
                return Err(format!("bad family name in {line:?}"));
            }
            if order.last().map(String::as_str) != Some(name) {
                if families.contains_key(name) {
                    return Err(format!("family {name} appears twice"));
                }
                order.push(name.to_string());
            }
            let family = families.entry(name.to_string()).or_default();
            if !family.samples.is_empty() {
                return Err(format!("metadata after samples: {line:?}"));
            }
            match keyword {
                "HELP" if !family.help => {
                    check_help(value).map_err(|e| format!("{e} in {line:?}"))?;
                    family.help = true;
                }
                "TYPE" if family.kind.is_empty() => {
                    if !["counter", "gauge", "info", "stateset"].contains(&value) {
                        return Err(format!("type this exporter never emits: {line:?}"));
                    }
                    family.kind = value.to_string();
                }
                "UNIT" if family.unit.is_none() => {
                    let suffix = name.strip_suffix(value).and_then(|n| n.strip_suffix('_'));
                    if suffix.is_none_or(str::is_empty) {
                        return Err(format!("UNIT is not the name's suffix: {line:?}"));
                    }
                    if !UNITS.contains(&value) {
                        return Err(format!("not an OpenMetrics base unit: {line:?}"));
                    }
                    family.unit = Some(value.to_string());
                }
                _ => return Err(format!("unexpected or repeated metadata {line:?}")),
            }
            continue;
        }
        let family_name = order
            .last()
            .ok_or(format!("sample before any family: {line:?}"))?;
        let family = families.get_mut(family_name).unwrap();
        if family.kind.is_empty() || !family.help {
            return Err(format!("{family_name}: samples before its TYPE and HELP"));
        }
        let (name, labels, value) = parse_sample(line)?;
        let allowed: Vec<String> = match family.kind.as_str() {
            "counter" => vec![
                format!("{family_name}_total"),
                format!("{family_name}_created"),
            ],
            "info" => vec![format!("{family_name}_info")],
            _ => vec![family_name.clone()],
        };
        if !allowed.contains(&name) {
            return Err(format!(
                "{} family {family_name}: sample {name} (allowed: {allowed:?})",
                family.kind
            ));
        }
        match family.kind.as_str() {
            "counter" if value.is_nan() || value < 0.0 => {
                return Err(format!("counter below 0: {line:?}"))
            }
            "info" if value != 1.0 => return Err(format!("info value not 1: {line:?}")),
            "stateset" if !(value == 0.0 || value == 1.0) => {
                return Err(format!("stateset value not 0 or 1: {line:?}"))
            }
            "stateset" if !labels.iter().any(|(l, _)| l == family_name) => {
                return Err(format!("stateset sample without its state label: {line:?}"))
            }
            _ => {}
        }
        if let Some(other) = sample_names.insert(name.clone(), family_name.clone()) {
            if &other != family_name {
                return Err(format!(
                    "sample name {name} in families {other} and {family_name}"
                ));
            }
        }
        if !series.insert((name.clone(), labels.clone())) {
            return Err(format!("duplicate series {line:?}"));
        }
        family.samples.push((name, labels, value));
    }
    for (name, family) in &families {
        if family.kind.is_empty() || !family.help {
            return Err(format!("{name}: no TYPE or no HELP"));
        }
        let named_unit = UNITS
            .iter()
            .find(|u| name.strip_suffix(*u).is_some_and(|n| n.ends_with('_')));
        if family.unit.as_deref() != named_unit.copied() {
            return Err(format!(
                "{name}: UNIT {:?}, but the name ends in {named_unit:?}",
                family.unit
            ));
        }
        let suffix = match family.kind.as_str() {
            "counter" => "_total",
            "info" => "_info",
            _ => continue,
        };
        if name.ends_with(suffix) {
            return Err(format!(
                "{} family named with its sample suffix: {name}",
                family.kind
            ));
        }
    }
    Ok(families)
}

fn check_help(help: &str) -> Result<(), String> {
    let mut chars = help.chars();
    while let Some(c) = chars.next() {
        if c == '\\' && !matches!(chars.next(), Some('\\' | 'n' | '"')) {
            return Err("bad escape in HELP".into());
        }
    }
    Ok(())
}

type Labels = Vec<(String, String)>;

fn parse_sample(line: &str) -> Result<(String, Labels, f64), String> {
    let end = line.find(['{', ' ']).ok_or(format!("no value: {line:?}"))?;
    let name = &line[..end];
    if !valid_name(name) {
        return Err(format!("bad metric name: {line:?}"));
    }
    let mut rest = &line[end..];
    let mut labels: Labels = Vec::new();
    if let Some(mut body) = rest.strip_prefix('{') {
        loop {
            if let Some(r) = body.strip_prefix('}') {
                rest = r;
                break;
            }
            let (label, r) = body
                .split_once("=\"")
                .ok_or(format!("bad label: {line:?}"))?;
            if !valid_name(label) || labels.iter().any(|(l, _)| l == label) {
                return Err(format!("bad or repeated label {label:?}: {line:?}"));
            }
            let (value, r) = read_escaped(r).ok_or(format!("bad label value: {line:?}"))?;
            labels.push((label.to_string(), value));
            body = match r.strip_prefix(',') {
                Some(r) if !r.starts_with('}') => r,
                Some(_) => return Err(format!("trailing comma: {line:?}")),
                None => r,
            };
        }
    }
    let value = rest
        .strip_prefix(' ')
        .ok_or(format!("no single space before the value: {line:?}"))?;
    if value.contains(' ') {
        return Err(format!(
            "a timestamp or exemplar, which the exporter never sends: {line:?}"
        ));
    }
    let value = match value {
        "NaN" => f64::NAN,
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v if v.chars().all(|c| c.is_ascii_digit() || "+-.eE".contains(c)) => {
            v.parse().map_err(|_| format!("bad value: {line:?}"))?
        }
        _ => return Err(format!("bad value: {line:?}")),
    };
    Ok((name.to_string(), labels, value))
}

/// The demo fleet (every device kind), every target polled once, and the exporter's own series.
async fn demo_exporter() -> (Demo, common::Exporter) {
    let demo = Demo::start().await.unwrap();
    let exporter = common::start_exporter(&demo.config_text()).await;
    let targets = demo.config().unwrap().targets.len();
    exporter
        .wait_for(Duration::from_secs(20), "every demo target up", |m| {
            let up: Vec<_> = m
                .lines()
                .filter(|l| l.starts_with("fleet_target_up{"))
                .collect();
            up.len() == targets && up.iter().all(|l| l.ends_with(" 1"))
        })
        .await;
    (demo, exporter)
}

async fn scrape(exporter: &common::Exporter, accept: Option<&str>) -> (String, String) {
    let mut req = reqwest::Client::new().get(format!("{}/metrics", exporter.url));
    if let Some(a) = accept {
        req = req.header(ACCEPT, a);
    }
    let resp = req.send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let content_type = resp.headers()[CONTENT_TYPE].to_str().unwrap().to_string();
    (content_type, resp.text().await.unwrap())
}

#[tokio::test]
async fn prometheus_gets_openmetrics_that_a_strict_reader_accepts() {
    let (_demo, exporter) = demo_exporter().await;
    for accept in [PROM_2_OLD, PROM_3] {
        let (content_type, text) = scrape(&exporter, Some(accept)).await;
        assert_eq!(
            content_type, "application/openmetrics-text; version=1.0.0; charset=utf-8",
            "{accept}"
        );
        let families = parse_openmetrics(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));

        // What the rules above mean for this exporter's names.
        let kind = |name: &str| families[name].kind.as_str();
        let unit = |name: &str| families[name].unit.as_deref();
        assert_eq!(kind("ikuai"), "info", "ikuai_info is an info family");
        assert_eq!(kind("fleet_exporter_build"), "info");
        assert_eq!(kind("komari_node"), "info");
        assert_eq!(kind("fleet_target_polls"), "counter");
        assert_eq!(
            unit("ikuai_receive_bytes"),
            Some("bytes"),
            "unit before _total"
        );
        assert_eq!(unit("process_cpu_seconds"), Some("seconds"));
        assert_eq!(unit("fleet_target_poll_duration_seconds"), Some("seconds"));
        assert_eq!(unit("ikuai_cpu_usage_ratio"), Some("ratio"));
        assert_eq!(
            unit("ikuai_receive_bytes_per_second"),
            None,
            "a rate is no base unit"
        );
        assert_eq!(
            unit("ikuai_cpu_frequency_hertz"),
            None,
            "hertz is no base unit"
        );
        assert!(families
            .values()
            .any(|f| f.unit.as_deref() == Some("celsius")));
        assert!(families
            .values()
            .any(|f| f.unit.as_deref() == Some("volts")));
        // No family of this exporter is a state set today: the status families are codes
        // (openvox_sip_registration_status 0/1/2, iot_*_status_code), not one 0/1 series per
        // state, so none is typed stateset.
        assert!(families.values().all(|f| f.kind != "stateset"));
    }
}

#[tokio::test]
async fn text_answers_keep_gauges_and_have_no_unit_lines() {
    let (_demo, exporter) = demo_exporter().await;
    for accept in [None, Some(PROM_3_TEXT_FIRST), Some("*/*")] {
        let (content_type, text) = scrape(&exporter, accept).await;
        assert_eq!(
            content_type, "text/plain; version=0.0.4; charset=utf-8",
            "{accept:?}"
        );
        assert!(!text.contains("# UNIT"), "text 0.0.4 has no UNIT lines");
        assert!(!text.contains("# EOF"));
        assert!(
            text.contains("# TYPE ikuai_info gauge\n"),
            "info is a gauge in text"
        );
        assert!(text.contains("# TYPE fleet_target_polls_total counter\n"));
    }
}

#[test]
fn the_strict_reader_refuses_what_openmetrics_forbids() {
    let bad = [
        ("# HELP a A.\n# TYPE a gauge\na 1\n", "no EOF"),
        ("# HELP a A.\n# TYPE a gauge\na 1\n# EOF\nx 1\n# EOF\n", "after EOF"),
        ("# HELP a_seconds A.\n# TYPE a_seconds gauge\na_seconds 1\n# EOF\n", "missing UNIT"),
        ("# HELP a A.\n# TYPE a gauge\n# UNIT a seconds\na 1\n# EOF\n", "UNIT not suffix"),
        ("# HELP a_hertz A.\n# TYPE a_hertz gauge\n# UNIT a_hertz hertz\na_hertz 1\n# EOF\n", "no base unit"),
        ("# HELP a A.\n# TYPE a counter\na 1\n# EOF\n", "counter sample without _total"),
        ("# HELP a_total A.\n# TYPE a_total counter\na_total_total 1\n# EOF\n", "counter family with _total"),
        ("# HELP a A.\n# TYPE a info\na_info 2\n# EOF\n", "info not 1"),
        ("# HELP a A.\n# TYPE a info\na 1\n# EOF\n", "info sample without _info"),
        ("# HELP a A.\n# TYPE a stateset\na{b=\"x\"} 1\n# EOF\n", "stateset without state label"),
        ("# HELP a A.\n# TYPE a gauge\na 1\n# HELP b B.\n# TYPE b gauge\nb 1\n# HELP a A.\n# TYPE a gauge\n# EOF\n", "family twice"),
        ("# HELP a A.\n# TYPE a gauge\na 1\n# TYPE a gauge\n# EOF\n", "metadata after samples"),
        ("# HELP a A.\n# TYPE a gauge\na{x=\"1\",x=\"2\"} 1\n# EOF\n", "repeated label"),
        ("# HELP a A.\n# TYPE a gauge\na{x=\"\\t\"} 1\n# EOF\n", "bad escape"),
        ("# HELP a A.\n# TYPE a gauge\na 1\na 2\n# EOF\n", "duplicate series"),
        ("# HELP a A.\n# TYPE a counter\na_total 1\n# HELP a_total B.\n# TYPE a_total gauge\na_total 1\n# EOF\n", "clashing sample names"),
    ];
    for (text, why) in bad {
        assert!(
            parse_openmetrics(text).is_err(),
            "accepted ({why}):\n{text}"
        );
    }
    let good = "# HELP a_bytes A.\n# TYPE a_bytes counter\n# UNIT a_bytes bytes\na_bytes_total{x=\"\\\"\"} 1\n\
                # HELP b B.\n# TYPE b info\nb_info{v=\"1\"} 1\n\
                # HELP c C.\n# TYPE c stateset\nc{c=\"on\"} 1\nc{c=\"off\"} 0\n# EOF\n";
    let families = parse_openmetrics(good).unwrap();
    assert_eq!(families.len(), 3);
}
