//! The 4.x token API (`/api/v4.0/...`), from the published OpenAPI specs and the notes:
//! `Authorization: Bearer <token>` on every request (no login), answers
//! `{"code":0,"message":"Success","results":{..}}` (`/monitoring/wireless-statistics`, whose
//! spec has no `code`, without it), lists paged with `page` (from 1) and `limit` (default 10), a
//! bad or missing token HTTP 401 `{"code":3007,..}`, a bad parameter HTTP 400
//! `{"code":3001,..}`, an unknown path (or one the configured router lacks) HTTP 404. The values
//! are the same world `/Action/call` answers from, so the two transports agree. Routers serve it
//! over TLS with a self-signed certificate (`tls`).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Map, Value};

use super::config::{Fault, IkuaiSimConfig};
use super::server::Shared;
use super::wire::render;
use super::world::World;
use crate::util::{json_response, lock, server_error_page, unix_now};

/// The spec's default page size.
const DEFAULT_LIMIT: usize = 10;
const WIRELESS_STATISTICS: &str = "monitoring/wireless-statistics";
/// Distinct paths whose requests are counted one by one.
const MAX_COUNTED_PATHS: usize = 64;

pub(super) fn routes() -> Router<Arc<Shared>> {
    Router::new().route("/api/v4.0/{*path}", get(answer))
}

async fn answer(
    State(sh): State<Arc<Shared>>,
    Path(path): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    sh.token_calls.fetch_add(1, Ordering::SeqCst);
    {
        // Counted per path for the tests; a client inventing paths cannot grow the table.
        let mut by_path = lock(&sh.token_path_calls);
        if by_path.len() < MAX_COUNTED_PATHS || by_path.contains_key(&path) {
            *by_path.entry(path.clone()).or_default() += 1;
        }
    }
    sh.switches.delay().await;
    match sh.switches.fault() {
        Fault::Hang => {
            sh.switches.stopped().await;
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
        Fault::Status500 => return server_error_page(),
        _ => {}
    }
    if !bearer_valid(&sh, &headers) {
        sh.token_refusals.fetch_add(1, Ordering::SeqCst);
        return json_response(
            StatusCode::UNAUTHORIZED,
            r#"{"code":3007,"message":"未认证或凭证无效（需登录/刷新 token）"}"#,
        );
    }
    if let Some(to) = lock(&sh.redirect).clone() {
        return (
            StatusCode::FOUND,
            [(header::LOCATION, format!("{to}/api/v4.0/{path}"))],
        )
            .into_response();
    }
    let world = sh.world();
    match results(&sh.cfg, &world, &path, &query) {
        Ok(results) => {
            let results = render(&Value::Object(results));
            let code = if path == WIRELESS_STATISTICS {
                ""
            } else {
                r#""code":0,"#
            };
            json_response(
                StatusCode::OK,
                format!(r#"{{{code}"message":"Success","results":{results}}}"#),
            )
        }
        Err(Refusal::NotFound) => json_response(
            StatusCode::NOT_FOUND,
            r#"{"message":"资源不存在（检查 URL、路由、资源是否已删除）"}"#,
        ),
        Err(Refusal::BadParameter(name)) => json_response(
            StatusCode::BAD_REQUEST,
            json!({"code": 3001, "message": format!("参数错误: {name}")}).to_string(),
        ),
    }
}

fn bearer_valid(sh: &Shared, headers: &HeaderMap) -> bool {
    let Some(token) = &sh.cfg.token else {
        return false;
    };
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|given| given == token)
}

enum Refusal {
    NotFound,
    BadParameter(&'static str),
}

fn results(
    cfg: &IkuaiSimConfig,
    world: &World<'_>,
    path: &str,
    query: &HashMap<String, String>,
) -> Result<Map<String, Value>, Refusal> {
    let mut out = Map::new();
    match path {
        "monitoring/system" => {
            out.insert("sysinfo".into(), world.sysinfo());
        }
        "monitoring/interfaces-status" => {
            let mut checks = world.iface_check();
            // The spec's enum for a failed check is "failed" (3.x says "fail").
            for row in checks.as_array_mut().into_iter().flatten() {
                if row["result"] == "fail" {
                    row["result"] = json!("failed");
                }
            }
            out.insert("iface_check".into(), checks);
            out.insert("iface_stream".into(), world.iface_stream());
        }
        "monitoring/interfaces-traffic" => {
            out.insert("wans_stat_history".into(), world.wans_stat_history());
        }
        "monitoring/interfaces-physical" => {
            out.insert("ether_info".into(), world.ether_info_v4());
        }
        "monitoring/interfaces-config" => {
            out.insert("snapshoot_lan".into(), world.snapshoot_lan());
            out.insert("snapshoot_wan".into(), world.snapshoot_wan_v4());
        }
        "monitoring/clients-online" | "monitoring/clients-ip6-online" => {
            let v6 = path.ends_with("ip6-online");
            let rows = if v6 {
                world.lan6_rows()
            } else {
                world.lan_rows()
            };
            let (page, limit) = paging(query)?;
            out.insert("total".into(), json!(rows.len()));
            let shown: Vec<Value> = rows
                .into_iter()
                .skip((page - 1).saturating_mul(limit))
                .take(limit)
                .map(|row| world.online_client(row, v6))
                .collect();
            out.insert("data".into(), Value::Array(shown));
        }
        WIRELESS_STATISTICS if cfg.wireless => {
            if let Value::Object(stats) = world.wireless_statistics() {
                out = stats;
            }
        }
        "system/disks" if cfg.system_disks => {
            if let Value::Object(disks) = world.system_disks() {
                out = disks;
            }
        }
        "network/dns/stats" => {
            let rows = world.dns_stats();
            let total = rows.as_array().map_or(0, Vec::len);
            out.insert("total".into(), json!(total));
            out.insert("data".into(), rows);
        }
        "monitoring/protocols" => {
            let now = unix_now();
            let time = |key: &'static str, default: u64| match query.get(key) {
                None => Ok(default),
                Some(t) => t.parse().map_err(|_| Refusal::BadParameter(key)),
            };
            let (start, stop) = (time("starttime", now - 3600)?, time("stoptime", now)?);
            out.insert("data".into(), world.protocols(start, stop));
        }
        _ => return Err(Refusal::NotFound),
    }
    Ok(out)
}

/// `page` (from 1) and `limit` (at least 1), the spec's defaults when absent.
fn paging(query: &HashMap<String, String>) -> Result<(usize, usize), Refusal> {
    let read = |key: &'static str, default: usize| match query.get(key) {
        None => Ok(default),
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| *n >= 1)
            .ok_or(Refusal::BadParameter(key)),
    };
    Ok((read("page", 1)?, read("limit", DEFAULT_LIMIT)?))
}
