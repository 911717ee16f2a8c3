//! Wire types of Komari's JSON-RPC results (`POST /api/rpc2`) and how they become the driver's
//! own model. Every field is optional and lenient, as in the HTTP answers: fields were added
//! over server versions (`uptime` and `ping` from 1.0.8), and a missing or mistyped value is
//! unknown, never a failed answer.
//!
//! The latest status is a flat record, unlike the WebSocket's nested report, and means some
//! things differently: `net_in` is the download rate and `net_out` the upload rate, and
//! `connections` counts TCP and UDP together (TCP is `connections - connections_udp`). It is
//! turned into the WebSocket's [`Report`] shape here so that one mapping serves both sources.

use serde::Deserialize;

use super::model::{Connections, Cpu, Live, Load, Network, Node, Report, Usage};
use crate::util::lenient;

/// `common:getNodes`: node rows by uuid, with the `/api/nodes` fields.
#[derive(Debug, Default, Deserialize)]
#[serde(transparent)]
pub struct Nodes(#[serde(deserialize_with = "lenient::entries")] pub Vec<(String, Node)>);

impl Nodes {
    /// The rows as the node list, each named by its key when the row leaves `uuid` out.
    pub fn into_list(self) -> Vec<Node> {
        self.0
            .into_iter()
            .map(|(uuid, mut node)| {
                if node.uuid.is_empty() {
                    node.uuid = uuid;
                }
                node
            })
            .collect()
    }
}

/// `common:getNodesLatestStatus`: every node's latest status by uuid.
#[derive(Debug, Default, Deserialize)]
#[serde(transparent)]
pub struct LatestStatus(#[serde(deserialize_with = "lenient::entries")] pub Vec<(String, Status)>);

/// One node's latest status (offline nodes keep their last one).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Status {
    /// When the server received the report.
    #[serde(deserialize_with = "lenient::opt_timestamp")]
    pub time: Option<f64>,
    /// Percent.
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub cpu: Option<f64>,
    /// Bytes.
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub ram: Option<f64>,
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub ram_total: Option<f64>,
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub swap: Option<f64>,
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub swap_total: Option<f64>,
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub load: Option<f64>,
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub load5: Option<f64>,
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub load15: Option<f64>,
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub disk: Option<f64>,
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub disk_total: Option<f64>,
    /// Download rate, bytes/s.
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub net_in: Option<f64>,
    /// Upload rate, bytes/s.
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub net_out: Option<f64>,
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub net_total_up: Option<f64>,
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub net_total_down: Option<f64>,
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub process: Option<f64>,
    /// TCP and UDP together.
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub connections: Option<f64>,
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub connections_udp: Option<f64>,
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub uptime: Option<f64>,
    /// The online flag (up to 1.1.7 it counted WebSocket agents only).
    #[serde(deserialize_with = "lenient::opt_bool")]
    pub online: Option<bool>,
    /// The agent's own error text, when a server includes it.
    #[serde(deserialize_with = "lenient::opt_string")]
    pub message: Option<String>,
    /// Ping statistics over the last hour by task id.
    #[serde(deserialize_with = "lenient::entries")]
    pub ping: Vec<(String, PingStat)>,
}

/// One ping task's statistics over the last hour, as the server caches them (60 s).
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct PingStat {
    #[serde(deserialize_with = "lenient::string")]
    pub name: String,
    /// Milliseconds; `-1` when every probe in the window was lost.
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub latest: Option<f64>,
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub avg: Option<f64>,
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub min: Option<f64>,
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub max: Option<f64>,
    /// Percent of probes lost.
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub loss: Option<f64>,
}

/// `public:getPublicPingTasks` (1.2.5+): the ping tasks.
#[derive(Debug, Default, Deserialize)]
#[serde(transparent)]
pub struct PingTasks(#[serde(deserialize_with = "lenient::rows")] pub Vec<RpcPingTask>);

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct RpcPingTask {
    #[serde(deserialize_with = "lenient::string")]
    pub id: String,
    #[serde(deserialize_with = "lenient::string")]
    pub name: String,
    /// Seconds.
    #[serde(deserialize_with = "lenient::string")]
    pub interval: String,
}

/// `public:getPingMetricStats` (1.2.6+): statistics per node and task over the asked window.
#[derive(Debug, Default, Deserialize)]
#[serde(transparent)]
pub struct PingMetricStats(#[serde(deserialize_with = "lenient::rows")] pub Vec<PingMetricStat>);

#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct PingMetricStat {
    /// The node's uuid.
    #[serde(deserialize_with = "lenient::string")]
    pub entity_id: String,
    #[serde(deserialize_with = "lenient::string")]
    pub task_id: String,
    /// Milliseconds.
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub p50: Option<f64>,
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub p99: Option<f64>,
    /// Probes in the window that were not lost.
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub valid: Option<f64>,
}

/// Ping statistics of online nodes, by uuid and task id: each list in key order, a key once.
/// Lists, not maps: a map per node was much of what 2,000 nodes' statistics cost to keep and
/// to drop, and the mapping only walks them in order.
pub type NodePings = Vec<(String, Vec<(String, PingStat)>)>;

/// `entries` in key order, and of a key sent twice the last, as a map built by inserting them
/// would keep (the sort is stable; in the server's key order it is one pass).
fn by_key<T>(mut entries: Vec<(String, T)>) -> Vec<(String, T)> {
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    // `dedup_by` keeps the first of equal neighbours: swapping the later one in keeps the last.
    entries.dedup_by(|later, kept| {
        let same = later.0 == kept.0;
        if same {
            std::mem::swap(later, kept);
        }
        same
    });
    entries
}

impl LatestStatus {
    /// The statuses as the WebSocket's shape (online list and reports), and the ping statistics
    /// of the nodes that are online: an offline node's last hour says nothing current.
    pub fn into_live(self) -> (Live, NodePings) {
        let mut online = Vec::new();
        let mut pings = Vec::new();
        let mut data = Vec::with_capacity(self.0.len());
        for (uuid, mut status) in self.0 {
            if status.online == Some(true) {
                online.push(uuid.clone());
                if !status.ping.is_empty() {
                    pings.push((uuid.clone(), by_key(std::mem::take(&mut status.ping))));
                }
            }
            data.push((uuid, status.into_report()));
        }
        // Collected, not inserted one by one: the map is built in one pass from the sorted
        // entries (servers send them in uuid order), and a uuid sent twice keeps its last entry
        // as an insert would.
        let live = Live {
            online,
            data: data.into_iter().collect(),
        };
        (live, by_key(pings))
    }
}

impl Status {
    fn into_report(self) -> Report {
        // TCP is what is left of the total once UDP is taken out; unknown without both.
        let tcp = self
            .connections
            .zip(self.connections_udp)
            .map(|(all, udp)| (all - udp).max(0.0));
        Report {
            cpu: Cpu { usage: self.cpu },
            ram: Usage {
                total: self.ram_total,
                used: self.ram,
            },
            swap: Usage {
                total: self.swap_total,
                used: self.swap,
            },
            disk: Usage {
                total: self.disk_total,
                used: self.disk,
            },
            load: Load {
                load1: self.load,
                load5: self.load5,
                load15: self.load15,
            },
            network: Network {
                up: self.net_out,
                down: self.net_in,
                total_up: self.net_total_up,
                total_down: self.net_total_down,
            },
            connections: Connections {
                tcp,
                udp: self.connections_udp,
            },
            uptime: self.uptime,
            process: self.process,
            updated_at: self.time,
            // GPU detail comes only over the WebSocket (the status says `gpu: 0`).
            gpu: None,
            message: self.message,
        }
    }
}

/// Whether a ping figure is a latency: `-1` (and anything below 0) is a lost probe.
pub fn latency_ms(v: Option<f64>) -> Option<f64> {
    v.filter(|ms| *ms >= 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_are_tcp_plus_udp_and_rates_swap_sides() {
        let body = br#"{"a":{"net_in":10240,"net_out":2048,"connections":48,"connections_udp":6,"online":true},"b":{"connections":5,"online":false}}"#;
        let statuses: LatestStatus = serde_json::from_slice(body).unwrap();
        let (live, pings) = statuses.into_live();
        assert_eq!(live.online, ["a"]);
        let a = &live.data["a"];
        assert_eq!(a.connections.tcp, Some(42.0));
        assert_eq!(a.connections.udp, Some(6.0));
        assert_eq!(a.network.down, Some(10240.0), "net_in is the download rate");
        assert_eq!(a.network.up, Some(2048.0));
        assert_eq!(
            live.data["b"].connections.tcp, None,
            "no UDP count: TCP unknown"
        );
        assert!(pings.is_empty());
    }

    #[test]
    fn statuses_and_statistics_come_in_uuid_order_and_a_key_sent_twice_keeps_its_last() {
        let body = br#"{
            "b":{"cpu":1,"online":true,"ping":{"2":{"avg":20},"1":{"avg":10},"2":{"avg":22}}},
            "a":{"cpu":2,"online":true,"ping":{"1":{"avg":30}}},
            "b":{"cpu":3,"online":true,"ping":{"1":{"avg":40}}},
            "c":{"cpu":4,"online":false,"ping":{"1":{"avg":50}}}
        }"#;
        let statuses: LatestStatus = serde_json::from_slice(body).unwrap();
        let (live, pings) = statuses.into_live();
        assert_eq!(live.data["b"].cpu.usage, Some(3.0));
        let avg = |uuid: &str| -> Vec<(String, Option<f64>)> {
            let (_, by_task) = pings.iter().find(|(u, _)| u == uuid).unwrap();
            by_task.iter().map(|(t, s)| (t.clone(), s.avg)).collect()
        };
        let uuids: Vec<&str> = pings.iter().map(|(u, _)| u.as_str()).collect();
        assert_eq!(uuids, ["a", "b"], "offline nodes have none");
        assert_eq!(avg("b"), [("1".to_string(), Some(40.0))]);
        let statuses: LatestStatus = serde_json::from_slice(
            br#"{"b":{"online":true,"ping":{"2":{"avg":20},"1":{"avg":10},"2":{"avg":22}}}}"#,
        )
        .unwrap();
        let (_, pings) = statuses.into_live();
        let by_task: Vec<_> = pings[0]
            .1
            .iter()
            .map(|(t, s)| (t.as_str(), s.avg))
            .collect();
        assert_eq!(by_task, [("1", Some(10.0)), ("2", Some(22.0))]);
    }
}
