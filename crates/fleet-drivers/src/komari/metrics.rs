//! Komari answers → metric families. Percent becomes ratio, days become seconds, times become
//! Unix seconds; node descriptions go into `komari_node_info`; unknown values are left out.
//! Online state comes only from the WebSocket's `online` list: an offline node keeps its info,
//! totals and last-report time, never its stale resource gauges.

use std::collections::{BTreeMap, HashSet};

use super::model::{Live, Node, PingSummary, PingTask, Report, Version};
use super::rpc_model::{latency_ms, NodePings, PingMetricStat};
use super::socket::Reconnect;
pub use super::words::NodeWords;
use crate::util::lenient::percent_to_ratio;
use fleet_core::snapshot::{Family, SnapshotBuilder};

static INFO: Family = Family::gauge(
    "komari_node_info",
    "Node description; always 1.",
    &[
        "uuid",
        "name",
        "group",
        "region",
        "os",
        "kernel_version",
        "arch",
        "virtualization",
        "cpu_name",
        "gpu_name",
        "tags",
    ],
);
static ONLINE: Family = Family::gauge(
    "komari_node_online",
    "1 when the node's agent is connected to the server.",
    &["uuid"],
);
static CPU: Family = Family::gauge("komari_node_cpu_usage_ratio", "CPU usage, 0..1.", &["uuid"]);
static CORES: Family = Family::gauge("komari_node_cpu_cores", "CPU cores.", &["uuid"]);
static LOAD1: Family = Family::gauge("komari_node_load1", "1-minute load average.", &["uuid"]);
static LOAD5: Family = Family::gauge("komari_node_load5", "5-minute load average.", &["uuid"]);
static LOAD15: Family = Family::gauge("komari_node_load15", "15-minute load average.", &["uuid"]);
static MEM_USED: Family =
    Family::gauge("komari_node_memory_used_bytes", "Memory in use.", &["uuid"]);
static MEM_TOTAL: Family =
    Family::gauge("komari_node_memory_total_bytes", "Total memory.", &["uuid"]);
static SWAP_USED: Family = Family::gauge("komari_node_swap_used_bytes", "Swap in use.", &["uuid"]);
static SWAP_TOTAL: Family = Family::gauge("komari_node_swap_total_bytes", "Total swap.", &["uuid"]);
static DISK_USED: Family = Family::gauge(
    "komari_node_disk_used_bytes",
    "Disk space in use.",
    &["uuid"],
);
static DISK_TOTAL: Family = Family::gauge(
    "komari_node_disk_total_bytes",
    "Total disk space.",
    &["uuid"],
);
static RX_RATE: Family = Family::gauge(
    "komari_node_network_receive_bytes_per_second",
    "Current download rate.",
    &["uuid"],
);
static TX_RATE: Family = Family::gauge(
    "komari_node_network_transmit_bytes_per_second",
    "Current upload rate.",
    &["uuid"],
);
static RX_TOTAL: Family = Family::counter(
    "komari_node_network_receive_bytes_total",
    "Bytes downloaded since the agent started or its month rotated.",
    &["uuid"],
);
static TX_TOTAL: Family = Family::counter(
    "komari_node_network_transmit_bytes_total",
    "Bytes uploaded since the agent started or its month rotated.",
    &["uuid"],
);
static CONNECTIONS: Family = Family::gauge(
    "komari_node_connections",
    "Open connections by protocol.",
    &["uuid", "protocol"],
);
static PROCESSES: Family = Family::gauge("komari_node_processes", "Running processes.", &["uuid"]);
static UPTIME: Family = Family::gauge(
    "komari_node_uptime_seconds",
    "Time since the node booted.",
    &["uuid"],
);
static LAST_REPORT: Family = Family::gauge(
    "komari_node_last_report_timestamp_seconds",
    "Unix time the server received the node's latest report.",
    &["uuid"],
);
static EXPIRY: Family = Family::gauge(
    "komari_node_expiry_timestamp_seconds",
    "Unix time the node's billing expires.",
    &["uuid"],
);
static TRAFFIC_LIMIT: Family = Family::gauge(
    "komari_node_traffic_limit_bytes",
    "Monthly traffic allowance and how it is counted (type: sum, max, min, up, down).",
    &["uuid", "type"],
);
static PRICE: Family = Family::gauge(
    "komari_node_price",
    "Price per billing cycle in the node's currency; 0 when free.",
    &["uuid", "currency"],
);
static BILLING_CYCLE: Family = Family::gauge(
    "komari_node_billing_cycle_seconds",
    "Length of the node's billing cycle.",
    &["uuid"],
);
static GPU_INFO: Family = Family::gauge(
    "komari_node_gpu_info",
    "GPU description; always 1.",
    &["uuid", "gpu", "name"],
);
static GPU_USAGE: Family = Family::gauge(
    "komari_node_gpu_usage_ratio",
    "GPU utilization, 0..1; gpu=all is the average over the node's GPUs.",
    &["uuid", "gpu"],
);
static GPU_MEM_USED: Family = Family::gauge(
    "komari_node_gpu_memory_used_bytes",
    "GPU memory in use.",
    &["uuid", "gpu"],
);
static GPU_MEM_TOTAL: Family = Family::gauge(
    "komari_node_gpu_memory_total_bytes",
    "Total GPU memory.",
    &["uuid", "gpu"],
);
static GPU_TEMP: Family = Family::gauge(
    "komari_node_gpu_temperature_celsius",
    "GPU temperature.",
    &["uuid", "gpu"],
);
static PING_RTT: Family = Family::gauge(
    "komari_node_ping_rtt_seconds",
    "Round trip of the newest probe of a ping task; absent when that probe was lost.",
    &["uuid", "task_id"],
);
static PING_LOSS: Family = Family::gauge(
    "komari_node_ping_loss_ratio",
    "Lost probes of a ping task over the last hour, 0..1.",
    &["uuid", "task_id"],
);
static PING_TASK: Family = Family::gauge(
    "komari_ping_task_info",
    "Ping task description; always 1 (interval in seconds).",
    &["task_id", "task", "interval"],
);
static PING_OMITTED: Family = Family::gauge(
    "komari_ping_nodes_omitted",
    "Online nodes whose ping records were not fetched because of ping_max_nodes.",
    &[],
);
static PING_AVG: Family = Family::gauge(
    "komari_node_ping_rtt_avg_seconds",
    "Mean round trip of a ping task's probes over the last hour (RPC source).",
    &["uuid", "task_id"],
);
static PING_MIN: Family = Family::gauge(
    "komari_node_ping_rtt_min_seconds",
    "Shortest round trip of a ping task over the last hour (RPC source).",
    &["uuid", "task_id"],
);
static PING_MAX: Family = Family::gauge(
    "komari_node_ping_rtt_max_seconds",
    "Longest round trip of a ping task over the last hour (RPC source).",
    &["uuid", "task_id"],
);
static PING_P50: Family = Family::gauge(
    "komari_node_ping_rtt_p50_seconds",
    "Median round trip of a ping task over the last ping_stats_hours (RPC source, servers 1.2.6+).",
    &["uuid", "task_id"],
);
static PING_P99: Family = Family::gauge(
    "komari_node_ping_rtt_p99_seconds",
    "99th percentile round trip of a ping task over the last ping_stats_hours (RPC source, servers 1.2.6+).",
    &["uuid", "task_id"],
);
static AGENT_ERROR: Family = Family::gauge(
    "komari_node_agent_error",
    "1 when the node's agent reports an error message, 0 when its message is empty.",
    &["uuid"],
);
static AGENT_MESSAGE: Family = Family::gauge(
    "komari_node_agent_message_info",
    "The agent's error message, cut to 200 characters; always 1, present while there is one.",
    &["uuid", "message"],
);
static SOURCE: Family = Family::gauge(
    "komari_source_info",
    "Where this poll read node state: rpc (POST /api/rpc2) or websocket (/api/clients); always 1.",
    &["source"],
);
static NODES: Family = Family::gauge("komari_nodes", "Nodes the server monitors.", &[]);
static NODES_ONLINE: Family = Family::gauge(
    "komari_nodes_online",
    "Nodes whose agent is connected.",
    &[],
);
static BUILD_INFO: Family = Family::gauge(
    "komari_build_info",
    "Komari server version and build hash; always 1.",
    &["version", "hash"],
);
static RECONNECTS: Family = Family::counter(
    "komari_websocket_reconnects_total",
    "WebSocket connections opened to replace a lost (dropped) or aged-out (refresh) one.",
    &["reason"],
);

/// Every Komari family, for the metrics documentation check.
pub static FAMILIES: &[&Family] = &[
    &INFO,
    &ONLINE,
    &CPU,
    &CORES,
    &LOAD1,
    &LOAD5,
    &LOAD15,
    &MEM_USED,
    &MEM_TOTAL,
    &SWAP_USED,
    &SWAP_TOTAL,
    &DISK_USED,
    &DISK_TOTAL,
    &RX_RATE,
    &TX_RATE,
    &RX_TOTAL,
    &TX_TOTAL,
    &CONNECTIONS,
    &PROCESSES,
    &UPTIME,
    &LAST_REPORT,
    &EXPIRY,
    &TRAFFIC_LIMIT,
    &PRICE,
    &BILLING_CYCLE,
    &GPU_INFO,
    &GPU_USAGE,
    &GPU_MEM_USED,
    &GPU_MEM_TOTAL,
    &GPU_TEMP,
    &PING_RTT,
    &PING_LOSS,
    &PING_TASK,
    &PING_OMITTED,
    &PING_AVG,
    &PING_MIN,
    &PING_MAX,
    &PING_P50,
    &PING_P99,
    &AGENT_ERROR,
    &AGENT_MESSAGE,
    &SOURCE,
    &NODES,
    &NODES_ONLINE,
    &BUILD_INFO,
    &RECONNECTS,
    &crate::util::FOLDED,
];

const DAY: f64 = 86_400.0;
/// An expiry further away than this is "never": panels set long-term nodes to dates centuries
/// ahead, which are no billing date.
const NO_EXPIRY_AFTER: f64 = 100.0 * 365.25 * DAY;
/// Characters of an agent's message kept in its label.
const MAX_MESSAGE_CHARS: usize = 200;

/// Where a poll read node state, the `source` label of `komari_source_info`.
pub fn source(b: &mut SnapshotBuilder, source: &str) {
    b.add(&SOURCE, &[source], 1.0);
}

pub fn build_info(b: &mut SnapshotBuilder, v: &Version) {
    b.add(&BUILD_INFO, &[&v.version, &v.hash], 1.0);
}

pub fn reconnects(b: &mut SnapshotBuilder, counts: impl Iterator<Item = (Reconnect, u64)>) {
    for (reason, n) in counts {
        b.add(&RECONNECTS, &[reason.label()], n as f64);
    }
}

/// Every node the server knows of: from the node list, the live data or the online list.
/// `live` is `None` when the WebSocket answer failed: then online state is unknown and only
/// the node list's description and inventory are exported. The server's own words in value
/// series' labels pass through `words`, which caps them.
pub fn nodes(b: &mut SnapshotBuilder, list: &[Node], live: Option<&Live>, words: &mut NodeWords) {
    // The node list, the reports and the online ids, each in uuid order (the list's first row of
    // a uuid describes it: the sort is stable): one walk over the three meets every node once,
    // in uuid order, with no lookups. At 2,000 nodes, the sets and maps gathered to look nodes
    // up in were a large share of the mapping.
    let mut listed: Vec<&Node> = list.iter().filter(|n| !n.uuid.is_empty()).collect();
    listed.sort_by(|a, b| a.uuid.cmp(&b.uuid));
    listed.dedup_by(|later, first| later.uuid == first.uuid);
    let mut online: Vec<&str> = live
        .map(|l| l.online.iter().map(String::as_str).collect())
        .unwrap_or_default();
    online.sort_unstable();
    online.dedup();
    let mut listed = listed.into_iter().peekable();
    let mut reports = live.into_iter().flat_map(|l| &l.data).peekable();
    let mut onlines = online.iter().copied().peekable();
    let horizon = fleet_core::time::unix_seconds(std::time::SystemTime::now()) + NO_EXPIRY_AFTER;
    let mut count = 0usize;
    loop {
        let heads = [
            listed.peek().map(|n| n.uuid.as_str()),
            reports.peek().map(|(uuid, _)| uuid.as_str()),
            onlines.peek().copied(),
        ];
        let Some(uuid) = heads.into_iter().flatten().min() else {
            break;
        };
        count += 1;
        let node = listed.next_if(|n| n.uuid == uuid);
        let report = reports.next_if(|(u, _)| *u == uuid).map(|(_, r)| r);
        let is_online = onlines.next_if_eq(&uuid).is_some();
        if let Some(n) = node {
            describe(b, n, words, horizon);
        }
        if live.is_none() {
            inventory(b, uuid, node, None);
            continue;
        }
        b.add(&ONLINE, &[uuid], if is_online { 1.0 } else { 0.0 });
        if let Some(r) = report {
            b.add_opt(&LAST_REPORT, &[uuid], r.updated_at);
        }
        let fresh = report.filter(|_| is_online);
        inventory(b, uuid, node, fresh);
        if let Some(r) = fresh {
            resources(b, uuid, r);
        }
    }
    b.add(&NODES, &[], count as f64);
    if live.is_some() {
        b.add(&NODES_ONLINE, &[], online.len() as f64);
    }
}

/// `horizon`: the Unix time past which an expiry is "never".
fn describe(b: &mut SnapshotBuilder, n: &Node, words: &mut NodeWords, horizon: f64) {
    let uuid = n.uuid.as_str();
    b.add(
        &INFO,
        &[
            uuid,
            &n.name,
            &n.group,
            &n.region,
            &n.os,
            &n.kernel_version,
            &n.arch,
            &n.virtualization,
            &n.cpu_name,
            &n.gpu_name,
            &n.tags,
        ],
        1.0,
    );
    b.add_opt(&CORES, &[uuid], n.cpu_cores);
    b.add_opt(&EXPIRY, &[uuid], n.expired_at.filter(|t| *t < horizon));
    if let Some(limit) = n.traffic_limit.filter(|l| *l > 0.0) {
        let kind = words.limit_type.fold(&n.traffic_limit_type);
        b.add(&TRAFFIC_LIMIT, &[uuid, kind], limit);
    }
    // -1 is "free", 0 "not set".
    let price = n.price.filter(|p| *p != 0.0).map(|p| p.max(0.0));
    if price.is_some() {
        let currency = words.currency.fold(&n.currency);
        b.add_opt(&PRICE, &[uuid, currency], price);
    }
    let cycle = n.billing_cycle.filter(|d| *d > 0.0).map(|d| d * DAY);
    b.add_opt(&BILLING_CYCLE, &[uuid], cycle);
}

/// Totals: the live report's for an online node (the agent measures them), else the node list's.
fn inventory(b: &mut SnapshotBuilder, uuid: &str, node: Option<&Node>, live: Option<&Report>) {
    let pick = |live: Option<f64>, listed: Option<f64>| live.or(listed).filter(|v| *v > 0.0);
    let listed = |f: fn(&Node) -> Option<f64>| node.and_then(f);
    let r = live;
    b.add_opt(
        &MEM_TOTAL,
        &[uuid],
        pick(r.and_then(|r| r.ram.total), listed(|n| n.mem_total)),
    );
    b.add_opt(
        &SWAP_TOTAL,
        &[uuid],
        pick(r.and_then(|r| r.swap.total), listed(|n| n.swap_total)),
    );
    b.add_opt(
        &DISK_TOTAL,
        &[uuid],
        pick(r.and_then(|r| r.disk.total), listed(|n| n.disk_total)),
    );
}

fn resources(b: &mut SnapshotBuilder, uuid: &str, r: &Report) {
    let id = [uuid];
    b.add_opt(&CPU, &id, r.cpu.usage.map(percent_to_ratio));
    b.add_opt(&LOAD1, &id, r.load.load1);
    b.add_opt(&LOAD5, &id, r.load.load5);
    b.add_opt(&LOAD15, &id, r.load.load15);
    b.add_opt(&MEM_USED, &id, r.ram.used);
    b.add_opt(&SWAP_USED, &id, r.swap.used);
    b.add_opt(&DISK_USED, &id, r.disk.used);
    b.add_opt(&RX_RATE, &id, r.network.down);
    b.add_opt(&TX_RATE, &id, r.network.up);
    b.add_opt(&RX_TOTAL, &id, r.network.total_down);
    b.add_opt(&TX_TOTAL, &id, r.network.total_up);
    b.add_opt(&CONNECTIONS, &[uuid, "tcp"], r.connections.tcp);
    b.add_opt(&CONNECTIONS, &[uuid, "udp"], r.connections.udp);
    b.add_opt(&PROCESSES, &id, r.process);
    b.add_opt(&UPTIME, &id, r.uptime);
    if let Some(message) = &r.message {
        let message = message.trim();
        b.add(
            &AGENT_ERROR,
            &id,
            if message.is_empty() { 0.0 } else { 1.0 },
        );
        if !message.is_empty() {
            let clipped: String = message.chars().take(MAX_MESSAGE_CHARS).collect();
            b.add(&AGENT_MESSAGE, &[uuid, &clipped], 1.0);
        }
    }
    let Some(gpu) = &r.gpu else { return };
    if gpu.count.is_some_and(|c| c > 0.0) {
        b.add_opt(
            &GPU_USAGE,
            &[uuid, "all"],
            gpu.average_usage.map(percent_to_ratio),
        );
    }
    for (i, g) in gpu.detailed_info.iter().enumerate() {
        let ids = [uuid, &i.to_string()];
        b.add(&GPU_INFO, &[ids[0], ids[1], &g.name], 1.0);
        b.add_opt(&GPU_USAGE, &ids, g.utilization.map(percent_to_ratio));
        b.add_opt(&GPU_MEM_USED, &ids, g.memory_used);
        b.add_opt(&GPU_MEM_TOTAL, &ids, g.memory_total);
        b.add_opt(&GPU_TEMP, &ids, g.temperature);
    }
}

/// Ping summaries by node uuid and task id, the tasks they name, and how many online nodes
/// were left out by the cap.
pub fn pings(
    b: &mut SnapshotBuilder,
    by_node: &BTreeMap<String, BTreeMap<String, PingSummary>>,
    tasks: &BTreeMap<String, PingTask>,
    omitted: usize,
) {
    for (uuid, by_task) in by_node {
        for (task, s) in by_task {
            let ids = [uuid.as_str(), task.as_str()];
            b.add_opt(&PING_RTT, &ids, s.rtt_ms.map(|ms| ms / 1000.0));
            b.add(&PING_LOSS, &ids, s.loss_ratio);
        }
    }
    ping_tasks(b, tasks, omitted);
}

/// The ping tasks the series name, and how many online nodes the cap left out.
pub fn ping_tasks(b: &mut SnapshotBuilder, tasks: &BTreeMap<String, PingTask>, omitted: usize) {
    for t in tasks.values() {
        b.add(&PING_TASK, &[&t.id, &t.name, &t.interval], 1.0);
    }
    b.add(&PING_OMITTED, &[], omitted as f64);
}

/// Ping statistics of the RPC status (last hour, per online node and task). `latest` is -1
/// only when every probe of the hour was lost: then there is no latency of any kind.
pub fn rpc_pings(b: &mut SnapshotBuilder, pings: &NodePings) {
    let seconds = |ms: Option<f64>| latency_ms(ms).map(|ms| ms / 1000.0);
    for (uuid, by_task) in pings {
        for (task, s) in by_task {
            let ids = [uuid.as_str(), task.as_str()];
            b.add_opt(&PING_LOSS, &ids, s.loss.map(percent_to_ratio));
            let Some(latest) = seconds(s.latest) else {
                continue;
            };
            b.add(&PING_RTT, &ids, latest);
            b.add_opt(&PING_AVG, &ids, seconds(s.avg));
            b.add_opt(&PING_MIN, &ids, seconds(s.min));
            b.add_opt(&PING_MAX, &ids, seconds(s.max));
        }
    }
}

/// p50 and p99 of `public:getPingMetricStats` for the nodes in `online`; a window without a
/// valid probe has no percentiles.
pub fn ping_percentiles(b: &mut SnapshotBuilder, stats: &[PingMetricStat], online: &HashSet<&str>) {
    let seconds = |ms: Option<f64>| latency_ms(ms).map(|ms| ms / 1000.0);
    // One series per node and task, whatever the answer repeats (the first row counts).
    let mut rows = BTreeMap::new();
    for s in stats {
        if online.contains(s.entity_id.as_str()) && s.valid != Some(0.0) {
            rows.entry((s.entity_id.as_str(), s.task_id.as_str()))
                .or_insert(s);
        }
    }
    for (ids, s) in rows {
        let ids = [ids.0, ids.1];
        b.add_opt(&PING_P50, &ids, seconds(s.p50));
        b.add_opt(&PING_P99, &ids, seconds(s.p99));
    }
}

#[cfg(test)]
mod tests {
    //! Documented and noted server answers (fixtures/komari) through the wire types and
    //! the mapping, one test per quirk.
    use super::super::model::{parse_envelope, Envelope, PingRecords};
    use super::*;
    use crate::util::testing::has;
    use fleet_core::exposition::{render, Format};

    fn fixture(name: &str) -> Vec<u8> {
        crate::util::testing::fixture("komari", name)
    }

    fn exposition(fill: impl FnOnce(&mut SnapshotBuilder)) -> String {
        let mut b = SnapshotBuilder::new(Some("k"));
        fill(&mut b);
        String::from_utf8(render(Format::Text, [&b.finish()])).unwrap()
    }

    const DOC_NODE: &str = "4addbaf1-7ffb-474c-98ee-4ffd476755ff";
    const ONLINE: &str = "f3d7a9c3-d85e-4252-8b1d-43e237b093ce";
    const OFFLINE: &str = "0b6f5f34-5a36-4c51-9e0c-6c7f7e0b9d11";

    #[test]
    fn made_up_currencies_and_limit_types_fold_into_other_past_the_cap() {
        let list: Vec<Node> = (0..4)
            .map(|i| Node {
                uuid: format!("n{i}"),
                price: Some(5.0),
                currency: format!("C{i}"),
                traffic_limit: Some(1e9),
                traffic_limit_type: if i == 3 {
                    "sum".into()
                } else {
                    format!("t{i}")
                },
                ..Node::default()
            })
            .collect();
        let mut words = NodeWords::new(2);
        let m = exposition(|b| {
            nodes(b, &list, None, &mut words);
            words.export(b);
        });
        for (uuid, currency, kind) in [
            ("n1", "C1", "t1"),
            ("n2", "other", "other"),
            ("n3", "other", "sum"),
        ] {
            let price =
                format!(r#"komari_node_price{{target="k",uuid="{uuid}",currency="{currency}"}} 5"#);
            let limit = format!(
                r#"komari_node_traffic_limit_bytes{{target="k",uuid="{uuid}",type="{kind}"}} 1000000000"#
            );
            assert!(has(&m, &price) && has(&m, &limit), "{m}");
        }
        let folded = |family: &str, label: &str, n: u8| {
            format!(
                r#"fleet_device_label_values_folded_total{{target="k",family="{family}",label="{label}"}} {n}"#
            )
        };
        assert!(has(&m, &folded("komari_node_price", "currency", 2)), "{m}");
        assert!(
            has(&m, &folded("komari_node_traffic_limit_bytes", "type", 1)),
            "{m}"
        );
    }

    #[test]
    fn documented_node_list_and_version() {
        let list: Vec<Node> = parse_envelope(&fixture("nodes_doc.json")).unwrap();
        let v: Version = parse_envelope(&fixture("version.json")).unwrap();
        let m = exposition(|b| {
            nodes(b, &list, None, &mut NodeWords::default());
            build_info(b, &v);
        });
        assert!(
            has(
                &m,
                r#"komari_build_info{target="k",version="dev",hash="bb43b25e373f9f4c6b1ce096eef95138b3525676"} 1"#
            ),
            "{m}"
        );
        assert!(
            has(
                &m,
                &format!(
                    r#"komari_node_info{{target="k",uuid="{DOC_NODE}",name="Localhost",group="新加坡",region="🇸🇬",os="Debian GNU/Linux 12 (bookworm)",kernel_version="",arch="amd64",virtualization="kvm",cpu_name="DO-Regular",gpu_name="Red Hat, Inc. Virtio 1.0 GPU (rev 01)",tags=""}} 1"#
                )
            ),
            "{m}"
        );
        // 2026-04-13 00:00:00.0000000+00:00
        assert!(has(
            &m,
            &format!(
                r#"komari_node_expiry_timestamp_seconds{{target="k",uuid="{DOC_NODE}"}} 1776038400"#
            )
        ));
        assert!(
            has(
                &m,
                &format!(r#"komari_node_price{{target="k",uuid="{DOC_NODE}",currency="$"}} 0"#)
            ),
            "-1 is free"
        );
        assert!(has(
            &m,
            &format!(
                r#"komari_node_billing_cycle_seconds{{target="k",uuid="{DOC_NODE}"}} 2592000"#
            )
        ));
        assert!(has(
            &m,
            &format!(r#"komari_node_memory_total_bytes{{target="k",uuid="{DOC_NODE}"}} 479670272"#)
        ));
        assert!(
            !m.contains("komari_node_online"),
            "no live data: online state unknown"
        );
        assert!(!m.contains("komari_nodes_online"));
        assert!(
            !m.contains("komari_node_traffic_limit_bytes"),
            "field missing in the doc"
        );
        assert!(has(&m, r#"komari_nodes{target="k"} 1"#));
    }

    #[test]
    fn node_fields_across_versions_null_and_year_one_expiry_missing_fields() {
        let list: Vec<Node> = parse_envelope(&fixture("nodes_versions.json")).unwrap();
        let m = exposition(|b| nodes(b, &list, None, &mut NodeWords::default()));
        assert_eq!(m.matches("komari_node_info{").count(), 3, "{m}");
        assert_eq!(
            m.matches("komari_node_expiry_timestamp_seconds{").count(),
            0,
            "null and year 0001 are unset"
        );
        assert!(
            has(
                &m,
                &format!(
                    r#"komari_node_traffic_limit_bytes{{target="k",uuid="{ONLINE}",type="max"}} 1099511627776"#
                )
            ),
            "{m}"
        );
        assert!(
            !m.contains(&format!(
                r#"komari_node_traffic_limit_bytes{{target="k",uuid="{OFFLINE}""#
            )),
            "0 is no limit"
        );
        assert!(
            !m.contains(&format!(r#"komari_node_price{{target="k",uuid="{ONLINE}""#)),
            "0 is not set"
        );
        assert!(has(
            &m,
            &format!(r#"komari_node_price{{target="k",uuid="{OFFLINE}",currency="€"}} 5.99"#)
        ));
        assert!(m.contains(r#"name="old-server-node",group="",region="""#));
        assert!(has(
            &m,
            &format!(r#"komari_node_cpu_cores{{target="k",uuid="{ONLINE}"}} 4"#)
        ));
    }

    #[test]
    fn documented_websocket_reply() {
        let live: Live = parse_envelope(&fixture("clients_doc.json")).unwrap();
        let m = exposition(|b| nodes(b, &[], Some(&live), &mut NodeWords::default()));
        let id = format!(r#"target="k",uuid="{ONLINE}""#);
        assert!(has(&m, &format!("komari_node_online{{{id}}} 1")), "{m}");
        assert!(has(
            &m,
            &format!("komari_node_cpu_usage_ratio{{{id}}} 0.02941176")
        ));
        assert!(has(
            &m,
            &format!("komari_node_memory_used_bytes{{{id}}} 141033472")
        ));
        assert!(has(
            &m,
            &format!("komari_node_network_receive_bytes_per_second{{{id}}} 3026")
        ));
        assert!(has(
            &m,
            &format!("komari_node_network_transmit_bytes_total{{{id}}} 259755642")
        ));
        assert!(has(
            &m,
            &format!("komari_node_network_receive_bytes_total{{{id}}} 2378066480")
        ));
        assert!(has(
            &m,
            &format!(r#"komari_node_connections{{{id},protocol="udp"}} 7"#)
        ));
        assert!(has(&m, &format!("komari_node_processes{{{id}}} 104")));
        assert!(has(
            &m,
            &format!("komari_node_uptime_seconds{{{id}}} 609849")
        ));
        assert!(has(&m, &format!("komari_node_load15{{{id}}} 0")));
        assert!(
            !m.contains("komari_node_swap_total_bytes"),
            "0 swap is no swap"
        );
        // 2025-07-15T07:37:33.70221251Z
        assert!(
            has(
                &m,
                &format!("komari_node_last_report_timestamp_seconds{{{id}}} 1752565053.7022126")
            ),
            "{m}"
        );
        assert!(has(&m, r#"komari_nodes_online{target="k"} 1"#));
        assert!(!m.contains("komari_node_info"), "no node list: no info");
    }

    #[test]
    fn offline_node_keeps_info_and_last_report_but_no_stale_gauges() {
        let list: Vec<Node> = parse_envelope(&fixture("nodes_versions.json")).unwrap();
        let live: Live = parse_envelope(&fixture("clients_offline_gpu.json")).unwrap();
        let m = exposition(|b| nodes(b, &list, Some(&live), &mut NodeWords::default()));
        let off = format!(r#"target="k",uuid="{OFFLINE}""#);
        assert!(has(&m, &format!("komari_node_online{{{off}}} 0")), "{m}");
        // 2025-07-15T04:15:00+08:00 (RFC 3339 local time)
        assert!(has(
            &m,
            &format!("komari_node_last_report_timestamp_seconds{{{off}}} 1752524100")
        ));
        assert!(m.contains(&format!("komari_node_info{{{off},")));
        assert!(
            has(
                &m,
                &format!("komari_node_memory_total_bytes{{{off}}} 25183010816")
            ),
            "inventory from the node list"
        );
        for stale in [
            "komari_node_cpu_usage_ratio",
            "komari_node_memory_used_bytes",
            "komari_node_load1",
            "komari_node_network_transmit_bytes_total",
            "komari_node_uptime_seconds",
        ] {
            assert!(!m.contains(&format!("{stale}{{{off}}}")), "{stale}: {m}");
        }
        assert!(has(&m, r#"komari_nodes{target="k"} 3"#));
        assert!(has(&m, r#"komari_nodes_online{target="k"} 1"#));
    }

    #[test]
    fn cpu_floor_gpu_details_and_null_details() {
        let live: Live = parse_envelope(&fixture("clients_offline_gpu.json")).unwrap();
        let m = exposition(|b| nodes(b, &[], Some(&live), &mut NodeWords::default()));
        let on = format!(r#"target="k",uuid="{ONLINE}""#);
        assert!(
            has(&m, &format!("komari_node_cpu_usage_ratio{{{on}}} 0.0001")),
            "0 % arrives as 0.01 %: {m}"
        );
        assert!(has(
            &m,
            &format!(r#"komari_node_gpu_usage_ratio{{{on},gpu="all"}} 0.375"#)
        ));
        assert!(has(
            &m,
            &format!(r#"komari_node_gpu_usage_ratio{{{on},gpu="0"}} 0.375"#)
        ));
        assert!(has(
            &m,
            &format!(r#"komari_node_gpu_info{{{on},gpu="0",name="NVIDIA GeForce RTX 3060"}} 1"#)
        ));
        assert!(has(
            &m,
            &format!(r#"komari_node_gpu_memory_total_bytes{{{on},gpu="0"}} 12884901888"#)
        ));
        assert!(has(
            &m,
            &format!(r#"komari_node_gpu_temperature_celsius{{{on},gpu="0"}} 54"#)
        ));
        assert_eq!(
            m.matches("komari_node_gpu_info{").count(),
            1,
            "detailed_info: null is no GPU"
        );
    }

    #[test]
    fn string_numbers_null_sections_and_unknown_fields_in_reports() {
        let mut live: Live = parse_envelope(&fixture("clients_offline_gpu.json")).unwrap();
        live.online.push(OFFLINE.into());
        let m = exposition(|b| nodes(b, &[], Some(&live), &mut NodeWords::default()));
        let id = format!(r#"target="k",uuid="{OFFLINE}""#);
        assert!(
            has(
                &m,
                &format!("komari_node_network_transmit_bytes_total{{{id}}} 123456789")
            ),
            "{m}"
        );
        assert!(
            !m.contains(&format!("komari_node_swap_used_bytes{{{id}}}")),
            "swap: null"
        );
        assert!(has(
            &m,
            &format!(r#"komari_node_connections{{{id},protocol="tcp"}} 120"#)
        ));
        assert!(!m.contains(&format!(
            r#"komari_node_connections{{{id},protocol="udp"}}"#
        )));
        assert!(has(
            &m,
            &format!("komari_node_cpu_usage_ratio{{{id}}} 0.125")
        ));
    }

    #[test]
    fn websocket_error_reply_is_an_api_error() {
        let e = parse_envelope::<Live>(&fixture("clients_error.json")).unwrap_err();
        assert_eq!(e, Envelope::Failed("Invalid message".into()));
        let e = parse_envelope::<Live>(b"websocket: internal error").unwrap_err();
        assert_eq!(e, Envelope::NotJson);
    }

    #[test]
    fn lost_probes_are_loss_never_latency() {
        let records: PingRecords = parse_envelope(&fixture("ping_lost.json")).unwrap();
        let summary = records.summarize();
        assert_eq!(
            summary["1"],
            PingSummary {
                rtt_ms: Some(29.0),
                loss_ratio: 0.5
            }
        );
        assert_eq!(
            summary["2"],
            PingSummary {
                rtt_ms: None,
                loss_ratio: 1.0
            }
        );
        let by_node = BTreeMap::from([(ONLINE.to_string(), summary)]);
        let tasks = records
            .tasks
            .iter()
            .map(|t| (t.id.clone(), t.clone()))
            .collect();
        let m = exposition(|b| pings(b, &by_node, &tasks, 0));
        let id = format!(r#"target="k",uuid="{ONLINE}""#);
        assert!(
            has(
                &m,
                &format!(r#"komari_node_ping_rtt_seconds{{{id},task_id="1"}} 0.029"#)
            ),
            "{m}"
        );
        assert!(!m.contains(r#"komari_node_ping_rtt_seconds{target="k",uuid="f3d7a9c3-d85e-4252-8b1d-43e237b093ce",task_id="2"}"#));
        assert!(!m.contains("-0.001"), "-1 ms must never be a latency");
        assert!(has(
            &m,
            &format!(r#"komari_node_ping_loss_ratio{{{id},task_id="2"}} 1"#)
        ));
        assert!(has(
            &m,
            r#"komari_ping_task_info{target="k",task_id="1",task="百度",interval="30"} 1"#
        ));
        assert!(has(&m, r#"komari_ping_nodes_omitted{target="k"} 0"#));
    }

    #[test]
    fn documented_ping_answer_with_a_float_value() {
        let records: PingRecords = parse_envelope(&fixture("ping_doc.json")).unwrap();
        assert_eq!(
            records.summarize()["1"],
            PingSummary {
                rtt_ms: Some(25.5),
                loss_ratio: 0.0
            }
        );
        assert_eq!(records.tasks[0].interval, "30");
    }

    fn rpc_result<T: serde::de::DeserializeOwned>(name: &str) -> T {
        let mut reply: serde_json::Value = serde_json::from_slice(&fixture(name)).unwrap();
        serde_json::from_value(reply["result"].take()).unwrap()
    }

    #[test]
    fn rpc_status_maps_to_the_websocket_families_with_tcp_from_the_total() {
        use super::super::rpc_model::LatestStatus;
        let (live, pings) = rpc_result::<LatestStatus>("rpc_latest_status.json").into_live();
        let m = exposition(|b| {
            nodes(b, &[], Some(&live), &mut NodeWords::default());
            rpc_pings(b, &pings);
        });
        let id = format!(r#"target="k",uuid="{DOC_NODE}""#);
        assert!(has(&m, &format!("komari_node_online{{{id}}} 1")), "{m}");
        assert!(has(
            &m,
            &format!("komari_node_cpu_usage_ratio{{{id}}} 0.0396")
        ));
        assert!(has(
            &m,
            &format!("komari_node_memory_used_bytes{{{id}}} 812343296")
        ));
        assert!(has(
            &m,
            &format!("komari_node_memory_total_bytes{{{id}}} 2062561280")
        ));
        assert!(has(
            &m,
            &format!(r#"komari_node_connections{{{id},protocol="tcp"}} 42"#)
        ));
        assert!(has(
            &m,
            &format!(r#"komari_node_connections{{{id},protocol="udp"}} 6"#)
        ));
        assert!(
            has(
                &m,
                &format!("komari_node_network_receive_bytes_per_second{{{id}}} 10240")
            ),
            "net_in is the download rate"
        );
        assert!(has(
            &m,
            &format!("komari_node_network_transmit_bytes_per_second{{{id}}} 2048")
        ));
        assert!(has(
            &m,
            &format!("komari_node_network_transmit_bytes_total{{{id}}} 123456789012")
        ));
        assert!(has(
            &m,
            &format!("komari_node_uptime_seconds{{{id}}} 1234567")
        ));
        assert!(!m.contains("komari_node_gpu"), "gpu: 0 is no GPU detail");
        assert!(
            !m.contains("komari_node_agent_error"),
            "the status has no message"
        );
        let task1 = format!(r#"{id},task_id="1""#);
        assert!(has(
            &m,
            &format!("komari_node_ping_rtt_seconds{{{task1}}} 0.023")
        ));
        assert!(has(
            &m,
            &format!("komari_node_ping_rtt_avg_seconds{{{task1}}} 0.025")
        ));
        assert!(has(
            &m,
            &format!("komari_node_ping_rtt_min_seconds{{{task1}}} 0.021")
        ));
        assert!(has(
            &m,
            &format!("komari_node_ping_rtt_max_seconds{{{task1}}} 0.061")
        ));
        assert!(has(
            &m,
            &format!("komari_node_ping_loss_ratio{{{task1}}} 0.0167")
        ));
        let task2 = format!(r#"{id},task_id="2""#);
        assert!(has(
            &m,
            &format!("komari_node_ping_loss_ratio{{{task2}}} 1")
        ));
        for family in ["rtt", "rtt_avg", "rtt_min", "rtt_max"] {
            assert!(
                !m.contains(&format!("komari_node_ping_{family}_seconds{{{task2}}}")),
                "every probe lost: no {family}: {m}"
            );
        }
        let off = format!(r#"target="k",uuid="{OFFLINE}""#);
        assert!(has(&m, &format!("komari_node_online{{{off}}} 0")));
        assert!(!m.contains(&format!("komari_node_cpu_usage_ratio{{{off}}}")));
        assert!(
            !m.contains(&format!("komari_node_ping_loss_ratio{{{off},")),
            "offline: no ping"
        );
        assert!(has(&m, r#"komari_nodes_online{target="k"} 1"#));
    }

    #[test]
    fn rpc_node_rows_are_keyed_and_a_far_expiry_is_no_expiry() {
        use super::super::rpc_model::Nodes;
        let list = rpc_result::<Nodes>("rpc_nodes.json").into_list();
        let m = exposition(|b| nodes(b, &list, None, &mut NodeWords::default()));
        assert!(has(
            &m,
            &format!(
                r#"komari_node_expiry_timestamp_seconds{{target="k",uuid="{DOC_NODE}"}} 1776038400"#
            )
        ));
        assert!(
            m.contains(&format!(
                r#"komari_node_info{{target="k",uuid="{OFFLINE}",name="forever-box""#
            )),
            "{m}"
        );
        assert!(
            !m.contains(&format!(
                r#"komari_node_expiry_timestamp_seconds{{target="k",uuid="{OFFLINE}"}}"#
            )),
            "two centuries away is no expiry: {m}"
        );
    }

    #[test]
    fn percentiles_for_online_nodes_with_valid_probes() {
        use super::super::rpc_model::PingMetricStats;
        let stats = rpc_result::<PingMetricStats>("rpc_ping_metric_stats.json").0;
        let online = HashSet::from([DOC_NODE]);
        let m = exposition(|b| ping_percentiles(b, &stats, &online));
        let id = format!(r#"target="k",uuid="{DOC_NODE}",task_id="1""#);
        assert!(
            has(
                &m,
                &format!("komari_node_ping_rtt_p50_seconds{{{id}}} 0.024")
            ),
            "{m}"
        );
        assert!(has(
            &m,
            &format!("komari_node_ping_rtt_p99_seconds{{{id}}} 0.058")
        ));
        assert!(
            !m.contains(r#"task_id="2""#),
            "no valid probe: no percentile"
        );
        let m = exposition(|b| ping_percentiles(b, &stats, &HashSet::new()));
        assert!(!m.contains("p50"), "offline nodes have none");
    }

    #[test]
    fn agent_message_is_a_gauge_and_a_clipped_info_series() {
        let mut live: Live = parse_envelope(&fixture("clients_offline_gpu.json")).unwrap();
        live.online.push(OFFLINE.into());
        let long = "x".repeat(500);
        live.data.get_mut(ONLINE).unwrap().message = Some(long.clone());
        let m = exposition(|b| nodes(b, &[], Some(&live), &mut NodeWords::default()));
        let off = format!(r#"target="k",uuid="{OFFLINE}""#);
        assert!(
            has(&m, &format!("komari_node_agent_error{{{off}}} 1")),
            "{m}"
        );
        assert!(has(
            &m,
            &format!(
                r#"komari_node_agent_message_info{{{off},message="read /proc/stat: permission denied"}} 1"#
            )
        ));
        assert_eq!(
            m.matches(&format!("komari_node_agent_message_info{{{off},message="))
                .count(),
            1
        );
        let on = format!(r#"target="k",uuid="{ONLINE}""#);
        assert!(has(&m, &format!("komari_node_agent_error{{{on}}} 1")));
        assert!(has(
            &m,
            &format!(
                r#"komari_node_agent_message_info{{{on},message="{}"}} 1"#,
                &long[..200]
            )
        ));
        live.data.get_mut(ONLINE).unwrap().message = Some(String::new());
        let m = exposition(|b| nodes(b, &[], Some(&live), &mut NodeWords::default()));
        assert!(has(&m, &format!("komari_node_agent_error{{{on}}} 0")));
        assert!(!m.contains(&format!("komari_node_agent_message_info{{{on}")));
    }
}
