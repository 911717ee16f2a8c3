//! The server's JSON-RPC 2.0 endpoint, `POST /api/rpc2` (servers 1.0.7 and later), from the
//! project's notes: a single request or a batch (answered with an array, in order), qualified
//! method names, guests allowed `common:*` and `public:*` (a private site's middleware answers
//! 401 first), `-32601` for a method the server's version does not have, `-32700` for a body
//! that is not JSON and `-32600` for a request that is not one. The notes' methods:
//! `common:getVersion`, `common:getNodes` (`{uuid: node}`), `common:getNodesLatestStatus`
//! (`{uuid: status}`: flat, `connections` is TCP+UDP, `net_in` the download rate, `gpu` and
//! `temp` 0, `uptime` and one hour of ping statistics per task from 1.0.8),
//! `public:getPublicPingTasks` (1.2.5) and `public:getPingMetricStats` (1.2.6).
//!
//! Servers before 1.0.7 have no such route (404). Injected errors (`rpc_errors`) replace a
//! method's result; the HTTP faults apply as to every API answer. The WebSocket form of the
//! endpoint is not simulated.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{json, Map, Value};

use super::server::Shared;
use super::world::{node_uuid, World};

/// The first release with JSON-RPC.
pub(super) const SINCE: (u32, u32, u32) = (1, 0, 7);

/// A release as `(major, minor, patch)`; source builds (`dev`) have everything.
pub(super) fn release(version: &str) -> (u32, u32, u32) {
    let mut parts = version
        .trim_start_matches('v')
        .split(['.', '-'])
        .map(|p| p.parse::<u32>().ok());
    match (parts.next().flatten(), parts.next().flatten()) {
        (Some(a), Some(b)) => (a, b, parts.next().flatten().unwrap_or(0)),
        _ => (u32::MAX, 0, 0),
    }
}

/// `POST /api/rpc2`.
pub(super) async fn call(
    State(sh): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    sh.counters.rpc.fetch_add(1, Ordering::SeqCst);
    if !sh.authorized(&headers) {
        return sh.unauthorized();
    }
    let answer = match serde_json::from_slice::<Value>(&body) {
        Err(_) => error(Value::Null, -32700, "Parse error"),
        Ok(Value::Array(batch)) if batch.is_empty() => {
            error(Value::Null, -32600, "Invalid Request")
        }
        Ok(Value::Array(batch)) => {
            let world = sh.world();
            Value::Array(batch.iter().map(|r| one(&sh, &world, r)).collect())
        }
        Ok(request) => one(&sh, &sh.world(), &request),
    };
    sh.answer(answer.to_string()).await
}

fn error(id: Value, code: i64, message: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
}

/// The reply to one request object.
fn one(sh: &Shared, world: &World<'_>, request: &Value) -> Value {
    let id = request.get("id").cloned().unwrap_or(Value::Null);
    let Some(method) = request.get("method").and_then(Value::as_str) else {
        return error(id, -32600, "Invalid Request");
    };
    if let Some((_, code)) = sh.cfg.rpc_errors.iter().find(|(m, _)| *m == method) {
        let message = match code {
            -32601 => "Method not found",
            -32041 => "Permission denied",
            -32603 => "Internal error",
            _ => "error",
        };
        return error(id, *code, message);
    }
    let version = release(&sh.cfg.version);
    let since = |v: (u32, u32, u32)| version >= v;
    let params = request.get("params").cloned().unwrap_or(Value::Null);
    let result = match method {
        "common:getVersion" => sh.version_data(),
        "common:getNodes" => nodes_by_uuid(world),
        "common:getNodesLatestStatus" => latest_status(world, since((1, 0, 8))),
        "public:getPublicPingTasks" if since((1, 2, 5)) => ping_tasks(world),
        "public:getPingMetricStats" if since((1, 2, 6)) => {
            let hours = params
                .get("hours")
                .and_then(Value::as_f64)
                .filter(|h| h.is_finite() && *h > 0.0)
                .unwrap_or(1.0)
                .min(24.0);
            ping_metric_stats(world, hours)
        }
        _ => return error(id, -32601, "Method not found"),
    };
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

fn nodes_by_uuid(world: &World<'_>) -> Value {
    let Value::Array(rows) = world.node_list() else {
        return Value::Object(Map::new());
    };
    let mut out = Map::new();
    for row in rows {
        let uuid = row["uuid"].as_str().unwrap_or_default().to_owned();
        out.insert(uuid, row);
    }
    Value::Object(out)
}

/// Every node's latest status, flattened from its report; from 1.0.8 with `uptime` and ping
/// statistics.
fn latest_status(world: &World<'_>, newer: bool) -> Value {
    let mut out = Map::new();
    for i in 0..world.node_count() {
        let Some(r) = world.report(i) else { continue };
        let uuid = node_uuid(world.seed(), i);
        // The server's records are typed: a field the agent left out is 0 there.
        let n = |section: &str, field: &str| match &r[section][field] {
            Value::Null => json!(0),
            v => v.clone(),
        };
        let tcp = r["connections"]["tcp"].as_u64();
        let udp = r["connections"]["udp"].as_u64();
        let mut status = json!({
            "client": uuid,
            "time": r["updated_at"],
            "cpu": n("cpu", "usage"),
            "gpu": 0,
            "ram": n("ram", "used"),
            "ram_total": n("ram", "total"),
            "swap": n("swap", "used"),
            "swap_total": n("swap", "total"),
            "load": n("load", "load1"),
            "load5": n("load", "load5"),
            "load15": n("load", "load15"),
            "temp": 0,
            "disk": n("disk", "used"),
            "disk_total": n("disk", "total"),
            "net_in": n("network", "down"),
            "net_out": n("network", "up"),
            "net_total_up": n("network", "totalUp"),
            "net_total_down": n("network", "totalDown"),
            "process": r["process"],
            "connections": tcp.map_or(0, |t| t + udp.unwrap_or(0)),
            "connections_udp": udp.unwrap_or(0),
            "online": world.online(i),
        });
        if newer {
            status["uptime"] = r["uptime"].clone();
            status["ping"] = ping_statistics(world, i);
        }
        out.insert(uuid, status);
    }
    Value::Object(out)
}

/// Statistics per task over the last hour: `latest` is the newest probe that came back (-1
/// when none did), `loss` a percent.
fn ping_statistics(world: &World<'_>, idx: usize) -> Value {
    let probes = world.probes(idx, 1.0);
    let mut out = Map::new();
    for (id, name, _, _) in world.ping_tasks() {
        let of_task: Vec<Option<i64>> = probes.iter().filter(|p| p.0 == id).map(|p| p.2).collect();
        if of_task.is_empty() {
            continue;
        }
        let s = Stats::of(&of_task);
        out.insert(
            id.to_string(),
            json!({"name": name, "latest": s.latest, "avg": s.avg, "tail": 0,
                   "loss": s.loss, "min": s.min, "max": s.max}),
        );
    }
    Value::Object(out)
}

fn ping_tasks(world: &World<'_>) -> Value {
    let tasks: Vec<Value> = world
        .ping_tasks()
        .iter()
        .map(|(id, name, ty, interval)| json!({"id": id, "name": name, "type": ty, "interval": interval}))
        .collect();
    Value::Array(tasks)
}

/// Per (node, task) over the last `hours`, with percentiles by nearest rank.
fn ping_metric_stats(world: &World<'_>, hours: f64) -> Value {
    let mut rows = Vec::new();
    for i in 0..world.node_count() {
        let probes = world.probes(i, hours);
        if probes.is_empty() {
            continue;
        }
        for (id, name, ty, interval) in world.ping_tasks() {
            let of_task: Vec<Option<i64>> =
                probes.iter().filter(|p| p.0 == id).map(|p| p.2).collect();
            let s = Stats::of(&of_task);
            let mut valid: Vec<i64> = of_task.iter().flatten().copied().collect();
            valid.sort_unstable();
            let rank = |q: f64| {
                let k = ((q * valid.len() as f64).ceil() as usize).clamp(1, valid.len().max(1));
                valid.get(k - 1).copied().unwrap_or(0)
            };
            let (p50, p99) = (rank(0.5), rank(0.99));
            rows.push(json!({
                "entity_id": node_uuid(world.seed(), i), "task_id": id, "name": name,
                "type": ty, "interval": interval, "total": of_task.len(), "valid": valid.len(),
                "loss": s.loss, "min": s.min, "max": s.max, "avg": s.avg, "latest": s.latest,
                "p50": p50, "p99": p99, "stddev": 0,
                "p99_p50_ratio": if p50 > 0 { p99 as f64 / p50 as f64 } else { 0.0 },
            }));
        }
    }
    Value::Array(rows)
}

/// What the server reports of a task's probes (oldest first; `None` is lost).
struct Stats {
    latest: i64,
    avg: f64,
    min: i64,
    max: i64,
    loss: f64,
}

impl Stats {
    fn of(probes: &[Option<i64>]) -> Stats {
        let valid: Vec<i64> = probes.iter().flatten().copied().collect();
        let lost = probes.len() - valid.len();
        let loss = if probes.is_empty() {
            0.0
        } else {
            (lost as f64 * 10_000.0 / probes.len() as f64).round() / 100.0
        };
        if valid.is_empty() {
            return Stats {
                latest: -1,
                avg: 0.0,
                min: 0,
                max: 0,
                loss,
            };
        }
        let sum: i64 = valid.iter().sum();
        Stats {
            latest: *valid.last().unwrap_or(&-1),
            avg: (sum as f64 / valid.len() as f64 * 100.0).round() / 100.0,
            min: *valid.iter().min().unwrap_or(&0),
            max: *valid.iter().max().unwrap_or(&0),
            loss,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_and_source_builds() {
        assert_eq!(release("1.0.7"), (1, 0, 7));
        assert_eq!(release("v1.2.6"), (1, 2, 6));
        assert!(release("1.0.6") < SINCE);
        assert!(
            release("dev") > (9, 9, 9),
            "a source build has every method"
        );
    }

    #[test]
    fn statistics_say_latest_minus_one_only_when_every_probe_was_lost() {
        let s = Stats::of(&[Some(20), None, Some(30), None]);
        assert_eq!(
            (s.latest, s.min, s.max, s.avg, s.loss),
            (30, 20, 30, 25.0, 50.0)
        );
        let s = Stats::of(&[None, None, None]);
        assert_eq!((s.latest, s.loss), (-1, 100.0));
    }
}
