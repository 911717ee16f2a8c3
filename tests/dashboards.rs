//! Structural checks of the Grafana dashboards (the end-to-end check in .ci/e2e runs their
//! queries against a real Prometheus): data source variable instead of `__inputs`, job and
//! target variables, a unit on every panel, `$__rate_interval` in every range function, fixed
//! and unique uids, and provisioning that points at them.

use std::collections::HashSet;

use serde_json::Value;

fn dashboards() -> Vec<(String, Value)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/dashboards");
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| {
            let board = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
            (p.file_name().unwrap().to_string_lossy().into_owned(), board)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn panels(board: &Value) -> Vec<&Value> {
    fn walk<'a>(panels: &'a Value, out: &mut Vec<&'a Value>) {
        for p in panels.as_array().into_iter().flatten() {
            walk(&p["panels"], out);
            out.push(p);
        }
    }
    let mut out = Vec::new();
    walk(&board["panels"], &mut out);
    out
}

#[test]
fn every_dashboard_is_portable_and_complete() {
    let boards = dashboards();
    assert!(
        boards.len() >= 2,
        "overview and at least one device dashboard"
    );
    let mut uids = HashSet::new();
    for (file, board) in &boards {
        assert!(
            board.get("__inputs").is_none(),
            "{file}: file provisioning does not resolve __inputs"
        );
        assert!(
            board["schemaVersion"].as_u64().unwrap() >= 39,
            "{file}: schemaVersion"
        );
        let uid = board["uid"].as_str().unwrap_or_default();
        assert!(
            !uid.is_empty() && uids.insert(uid.to_string()),
            "{file}: fixed, unique uid"
        );
        let vars: Vec<&str> = board["templating"]["list"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["name"].as_str().unwrap())
            .collect();
        for v in ["datasource", "job", "target"] {
            assert!(vars.contains(&v), "{file}: variable {v}");
        }
        let datasource_var = &board["templating"]["list"][0];
        assert_eq!(datasource_var["type"], "datasource", "{file}");
        assert_eq!(datasource_var["query"], "prometheus", "{file}");

        for p in panels(board) {
            let title = p["title"].as_str().unwrap_or_default();
            if p["type"] == "row" {
                continue;
            }
            let unit = p["fieldConfig"]["defaults"]["unit"]
                .as_str()
                .unwrap_or_default();
            assert!(!unit.is_empty(), "{file}: panel {title:?} has no unit");
            assert_eq!(
                p["datasource"]["uid"], "${datasource}",
                "{file}: panel {title:?} data source"
            );
            let targets = p["targets"].as_array().unwrap();
            assert!(!targets.is_empty(), "{file}: panel {title:?} has no query");
            for t in targets {
                assert_eq!(
                    t["datasource"]["uid"], "${datasource}",
                    "{file}: {title:?} query data source"
                );
                let expr = t["expr"].as_str().unwrap();
                for f in ["rate(", "increase(", "irate("] {
                    if expr.contains(f) {
                        assert!(
                            expr.contains("[$__rate_interval]"),
                            "{file}: {title:?}: {expr}"
                        );
                    }
                }
                assert!(
                    expr.contains("$job"),
                    "{file}: {title:?} ignores the job variable: {expr}"
                );
            }
        }
    }
    let provisioning = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/dashboards/provisioning/dashboards/fleet-exporter.yml"
    ))
    .unwrap();
    assert!(provisioning.contains("path: /var/lib/grafana/dashboards"));
}
