//! docs/metrics.md is the metric reference users read: it must list exactly the families the
//! exporter emits in demo mode, with the same types and labels, and every family the code declares.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use fleet_core::app::EXPORTER_FAMILIES;
use fleet_core::snapshot::{Family, MetricType};
use fleet_core::store::HEALTH_FAMILIES;
use fleet_drivers::KINDS;
use fleet_exporter::demo::Demo;
use fleet_exporter::self_metrics::SELF_FAMILIES;

type Families = BTreeMap<String, (String, Vec<String>)>;

/// Families in the doc's tables: `| `name` | type | labels | ...`, labels comma-separated.
fn documented() -> Families {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/metrics.md")).unwrap();
    let mut out = Families::new();
    for line in doc.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let name = cells[1].trim_matches('`').to_string();
        let labels = cells[3]
            .split(',')
            .map(|l| l.trim().trim_matches('`').to_string())
            .filter(|l| !l.is_empty() && l != "—")
            .collect();
        assert!(
            out.insert(name.clone(), (cells[2].to_string(), labels))
                .is_none(),
            "{name} twice"
        );
    }
    out
}

/// Families in an exposition (text format): type from `# TYPE`, labels from the samples.
fn emitted(text: &str) -> Families {
    let mut out = Families::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            out.insert(name.to_string(), (kind.to_string(), Vec::new()));
        } else if !line.starts_with('#') {
            let name = line.split(['{', ' ']).next().unwrap();
            let labels = out.get_mut(name).map(|f| &mut f.1).unwrap();
            if labels.is_empty() {
                if let Some(set) = line.split_once('{').and_then(|(_, r)| r.rsplit_once('}')) {
                    *labels = label_names(set.0);
                }
            }
        }
    }
    out
}

fn label_names(set: &str) -> Vec<String> {
    // Label values may contain commas and escaped quotes: walk the quoted strings.
    let mut names = Vec::new();
    let mut rest = set;
    while let Some((name, after)) = rest.split_once("=\"") {
        names.push(name.trim_start_matches(',').to_string());
        let mut escaped = false;
        let end = after
            .char_indices()
            .find(|&(_, c)| {
                let close = c == '"' && !escaped;
                escaped = c == '\\' && !escaped;
                close
            })
            .map(|(i, _)| i)
            .unwrap();
        rest = &after[end + 1..];
    }
    names
}

fn declared(f: &Family) -> (String, (String, Vec<String>)) {
    let kind = match f.metric_type {
        MetricType::Gauge => "gauge",
        MetricType::Counter => "counter",
    };
    let labels = std::iter::once("target")
        .chain(f.labels.iter().copied())
        .map(String::from)
        .collect();
    (f.name.to_string(), (kind.to_string(), labels))
}

#[tokio::test]
async fn docs_match_the_demo_output_and_the_code() {
    let demo = Demo::start().await.unwrap();
    let exporter = common::start_exporter(&demo.config_text()).await;
    let targets = demo.config().unwrap().targets.len();
    let text = exporter
        .wait_for(Duration::from_secs(20), "every demo target up", |m| {
            let up: Vec<_> = m
                .lines()
                .filter(|l| l.starts_with("fleet_target_up{"))
                .collect();
            up.len() == targets && up.iter().all(|l| l.ends_with(" 1"))
        })
        .await;
    let doc = documented();
    let out = emitted(&text);
    let missing: Vec<_> = out.keys().filter(|k| !doc.contains_key(*k)).collect();
    let extra: Vec<_> = doc.keys().filter(|k| !out.contains_key(*k)).collect();
    assert!(
        missing.is_empty(),
        "emitted in demo mode but not in docs/metrics.md: {missing:?}"
    );
    assert!(
        extra.is_empty(),
        "in docs/metrics.md but not emitted in demo mode: {extra:?}"
    );
    for (name, (kind, labels)) in &out {
        let (doc_kind, doc_labels) = &doc[name];
        assert_eq!(kind, doc_kind, "type of {name}");
        assert_eq!(labels, doc_labels, "labels of {name}");
    }
    let families = KINDS
        .iter()
        .flat_map(|k| k.families.iter())
        .chain(HEALTH_FAMILIES.iter())
        .copied();
    for f in families {
        let (name, (kind, labels)) = declared(f);
        assert_eq!(
            doc.get(&name),
            Some(&(kind, labels)),
            "declared family {name} vs docs"
        );
    }
    for f in EXPORTER_FAMILIES.iter().chain(SELF_FAMILIES.iter()) {
        assert!(doc.contains_key(f.name), "{} missing from docs", f.name);
    }
}
