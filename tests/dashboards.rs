//! Structural checks of the Grafana dashboards, in the spirit of Grafana's dashboard-linter (the
//! end-to-end check in .ci/e2e runs their queries against a real Prometheus with two exporter
//! replicas and both job shapes): data source variable instead of `__inputs`, job, instance and
//! target variables that every query uses, a unit and a description (naming the query's metrics,
//! as docs/metrics.md describes them) on every panel, `$__rate_interval` in every range
//! function, every query aggregated by the device's labels, unique panel ids, mappings and
//! thresholds on every state panel, tidy table columns, links between the dashboards that keep
//! the time range and variables, fixed and unique uids, provisioning that points at them, and
//! the panels docs/runbook.md sends operators to.

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
        assert_eq!(
            vars,
            ["datasource", "job", "instance", "target"],
            "{file}: variables, in the order they depend on each other"
        );
        let var = |name: &str| {
            board["templating"]["list"]
                .as_array()
                .unwrap()
                .iter()
                .find(|v| v["name"] == name)
                .unwrap()
        };
        for v in ["job", "instance", "target"] {
            let v = var(v);
            assert_eq!(v["includeAll"], true, "{file}: {} has All", v["name"]);
            assert_eq!(v["multi"], true, "{file}: {} is multi-value", v["name"]);
        }
        let instance = var("instance")["definition"].as_str().unwrap();
        assert!(instance.contains("$job"), "{file}: instance follows job");
        let target = var("target")["definition"].as_str().unwrap();
        assert!(
            target.contains("$job") && target.contains("$instance"),
            "{file}: target follows job and instance"
        );
        let datasource_var = &board["templating"]["list"][0];
        assert_eq!(datasource_var["type"], "datasource", "{file}");
        assert_eq!(datasource_var["query"], "prometheus", "{file}");

        let mut ids = HashSet::new();
        for p in panels(board) {
            let title = p["title"].as_str().unwrap_or_default();
            let id = p["id"].as_u64().unwrap();
            assert!(ids.insert(id), "{file}: panel id {id} used twice");
            if p["type"] == "row" {
                continue;
            }
            let description = p["description"].as_str().unwrap_or_default();
            assert!(
                !description.is_empty(),
                "{file}: panel {title:?} has no description"
            );
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
                for v in ["$job", "$instance"] {
                    assert!(
                        expr.contains(&format!("=~\"{v}\"")),
                        "{file}: {title:?} ignores the {v} variable: {expr}"
                    );
                }
                assert!(
                    aggregated(expr),
                    "{file}: {title:?} must merge the copies of two replicas and two jobs \
                     (max/min/sum by the device's labels): {expr}"
                );
                for metric in metrics(expr) {
                    assert!(
                        description.contains(&format!("`{metric}`")),
                        "{file}: {title:?}: the description does not say what {metric} is"
                    );
                }
            }
            check_state_panel(file, p, title);
            if p["type"] == "table" {
                check_table(file, p, title);
            }
        }
        check_links(file, board);
    }
    let provisioning = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/dashboards/provisioning/dashboards/fleet-exporter.yml"
    ))
    .unwrap();
    assert!(provisioning.contains("path: /var/lib/grafana/dashboards"));
}

/// Families whose value is a state (0/1, or a status code): a stat or table showing them needs
/// value mappings and thresholds in which down is red.
const STATE_FAMILIES: &[&str] = &[
    "up",
    "fleet_target_up",
    "ikuai_interface_up",
    "komari_node_online",
    "openvox_port_alarm",
    "openvox_sip_registration_status",
    "iot_device_online",
    "iot_device_fetch_success",
];

/// The metric names a query selects (a name followed by its `{` matchers).
fn metrics(expr: &str) -> Vec<&str> {
    let mut out = Vec::new();
    for (i, _) in expr.match_indices('{') {
        let head = &expr[..i];
        let start = head
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .map_or(0, |p| p + 1);
        if start < i && !out.contains(&&head[start..]) {
            out.push(&head[start..]);
        }
    }
    out
}

/// The query's outermost operation merges series (an aggregation, or time() minus one).
fn aggregated(expr: &str) -> bool {
    let e = expr.trim_start_matches('-');
    let e = e.strip_prefix("time() - ").unwrap_or(e);
    [
        "max by", "min by", "sum by", "sum(", "count(", "count by", "topk(", "bottomk(",
    ]
    .iter()
    .any(|a| e.starts_with(a))
}

fn check_state_panel(file: &str, p: &Value, title: &str) {
    let exprs: Vec<&str> = p["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["expr"].as_str().unwrap())
        .collect();
    let shows_state = exprs
        .iter()
        .any(|e| metrics(e).iter().any(|m| STATE_FAMILIES.contains(m)));
    let defaults = &p["fieldConfig"]["defaults"];
    let steps: Vec<&str> = defaults["thresholds"]["steps"]
        .as_array()
        .map(|s| s.iter().map(|s| s["color"].as_str().unwrap()).collect())
        .unwrap_or_default();
    if p["type"] == "stat" {
        assert!(
            !steps.is_empty() && defaults["color"]["mode"] == "thresholds",
            "{file}: stat {title:?} keeps Grafana's default colours"
        );
    }
    if shows_state && (p["type"] == "stat" || p["type"] == "table") {
        let mappings = defaults["mappings"].as_array().map_or(0, Vec::len);
        assert!(
            mappings > 0,
            "{file}: state panel {title:?} has no value mappings"
        );
        // Colours come from the mappings (Down, Offline, an alarm word) or the thresholds
        // (counts of bad things: red from 1).
        let colours = format!("{} {steps:?}", defaults["mappings"]);
        assert!(
            !steps.is_empty() && colours.contains("\"red\"") && colours.contains("\"green\""),
            "{file}: state panel {title:?}: a bad state must be red, a good one green"
        );
        if p["type"] == "table" {
            let overrides = p["fieldConfig"]["overrides"].to_string();
            assert!(
                overrides.contains("color-background"),
                "{file}: state table {title:?} does not colour its state column"
            );
        }
    }
}

fn check_table(file: &str, p: &Value, title: &str) {
    let organize = p["transformations"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|t| t["id"] == "organize")
        .unwrap_or_else(|| panic!("{file}: table {title:?} has no organize transformation"));
    let hidden = &organize["options"]["excludeByName"];
    let about_replicas = p["targets"][0]["expr"]
        .as_str()
        .unwrap()
        .starts_with("max by (instance)");
    for column in ["Time", "__name__", "job", "instance"] {
        if column == "instance" && about_replicas {
            continue;
        }
        assert_eq!(
            hidden[column], true,
            "{file}: table {title:?} shows the {column} column"
        );
    }
    for t in p["targets"].as_array().unwrap() {
        assert_eq!(t["format"], "table", "{file}: {title:?}");
        assert_eq!(t["instant"], true, "{file}: {title:?}");
    }
}

fn check_links(file: &str, board: &Value) {
    let links = board["links"].as_array().unwrap();
    let dropdown = links
        .iter()
        .find(|l| l["type"] == "dashboards")
        .unwrap_or_else(|| panic!("{file}: no links to the other dashboards"));
    assert_eq!(dropdown["tags"][0], "fleet-exporter", "{file}");
    for l in links {
        assert_eq!(
            l["keepTime"], true,
            "{file}: link {} keeps the time",
            l["title"]
        );
        assert_eq!(
            l["includeVars"], true,
            "{file}: link {} keeps variables",
            l["title"]
        );
    }
    if board["uid"] == "fleet-overview" {
        // Every table that lists targets drills down into the target's own dashboard.
        let mut drilldowns = 0;
        for p in panels(board).into_iter().filter(|p| p["type"] == "table") {
            let overrides = p["fieldConfig"]["overrides"].to_string();
            if !overrides.contains("\"links\"") {
                assert!(
                    p["title"] == "Exporter replicas",
                    "{file}: table {} does not link to its target's dashboard",
                    p["title"]
                );
                continue;
            }
            drilldowns += 1;
            for part in [
                "/d/fleet-",
                "${__url_time_range}",
                "${datasource:queryparam}",
                "${job:queryparam}",
                "${instance:queryparam}",
                "var-target=${__data.fields.target}",
            ] {
                assert!(
                    overrides.contains(part),
                    "{file}: table {}'s link lacks {part}",
                    p["title"]
                );
            }
        }
        assert!(drilldowns >= 5, "{file}: {drilldowns} drill-down tables");
    } else {
        assert!(
            links.iter().any(|l| l["url"] == "/d/fleet-overview"),
            "{file}: no link back to the overview"
        );
    }
}

#[test]
fn drill_down_links_name_dashboards_that_exist() {
    let boards = dashboards();
    let uids: HashSet<&str> = boards
        .iter()
        .map(|(_, b)| b["uid"].as_str().unwrap())
        .collect();
    let (_, overview) = boards
        .iter()
        .find(|(_, b)| b["uid"] == "fleet-overview")
        .unwrap();
    let text = overview.to_string();
    let mut found = 0;
    for (i, _) in text.match_indices("/d/") {
        let uid: String = text[i + 3..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        found += 1;
        if uid == "fleet-" {
            // /d/fleet-${__data.fields.kind}: one per kind the targets have
            for kind in ["ikuai", "komari", "openvox", "iot"] {
                assert!(uids.contains(format!("fleet-{kind}").as_str()), "{kind}");
            }
        } else {
            assert!(
                uids.contains(uid.as_str()),
                "link to unknown dashboard {uid}"
            );
        }
    }
    assert!(found >= 5, "{found} links");
}

/// The runbook sends an operator to dashboard panels by their titles, in double quotes
/// ("WAN line state" on the iKuai dashboard): each is the title of a panel or row of some
/// dashboard, so a renamed panel fails here instead of leaving a dead pointer in a page read
/// during an incident. Quotes inside backticks are PromQL or config, not titles.
#[test]
fn every_panel_the_runbook_names_is_on_a_dashboard() {
    let runbook =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/runbook.md")).unwrap();
    let boards = dashboards();
    let titles: HashSet<&str> = boards
        .iter()
        .flat_map(|(_, b)| panels(b))
        .filter_map(|p| p["title"].as_str())
        .collect();
    let prose: String = runbook
        .split("```")
        .step_by(2)
        .flat_map(|text| text.split('`').step_by(2))
        .collect();
    let named: Vec<&str> = prose.split('"').skip(1).step_by(2).collect();
    assert!(named.len() >= 15, "{} panels named: {named:?}", named.len());
    let missing: Vec<&&str> = named.iter().filter(|t| !titles.contains(**t)).collect();
    assert!(
        missing.is_empty(),
        "docs/runbook.md names panels no dashboard has: {missing:?}"
    );
}
