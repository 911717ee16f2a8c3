//! `GET /sd`: Prometheus HTTP service discovery for the `/probe` job.
//!
//! The answer is the `http_sd_configs` format: a JSON list of target groups, one per target this
//! replica polls (with `--shard`, only its share), so the list of devices lives only in the
//! exporter's config. Each group's address is this exporter as the request reached it (its
//! `Host` header), and its labels make Prometheus scrape `/probe?target=NAME` with no relabeling:
//!
//! - `__metrics_path__ = "/probe"` and `__param_target = NAME`: the probe URL.
//! - `target = NAME`: every series the probe returns already carries `target`, so this makes
//!   `up` and the scrape's own series (`scrape_*`) say which device they are about, and keeps
//!   one scrape per (exporter, target) distinct while `instance` stays the exporter's address
//!   in both job shapes. Because the scraped series carry the same `target`, the job sets
//!   `honor_labels: true` (the exporter never exposes `job` or `instance`), otherwise Prometheus
//!   would rename the scraped one to `exported_target`.
//! - `__meta_fleet_exporter_kind = KIND`: for relabel rules (keep or drop kinds, route a kind to
//!   a job of its own); dropped after relabeling. It is not a visible `kind` label because the
//!   health series already carry `kind` and `iot_sim_data_used_bytes` has a `kind` of its own.
//!
//! `__scheme__` is left to the job's `scheme` (TLS and basic auth guard `/sd` as every route).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use fleet_core::app::App;

pub(crate) async fn sd(State(app): State<Arc<App>>, uri: Uri, headers: HeaderMap) -> Response {
    let Some(address) = address(&uri, &headers) else {
        return (
            StatusCode::BAD_REQUEST,
            "/sd needs a Host header: the address Prometheus should scrape\n",
        )
            .into_response();
    };
    let groups: Vec<Value> = app
        .store()
        .status()
        .iter()
        .map(|t| group(&address, &t.name, t.kind))
        .collect();
    Json(groups).into_response()
}

/// The exporter's address as the client reached it: the request's authority (HTTP/2) or its
/// `Host` header, when it is a plain `host[:port]`.
fn address(uri: &Uri, headers: &HeaderMap) -> Option<String> {
    let host = match uri.authority() {
        Some(a) => a.as_str().to_string(),
        None => headers.get(header::HOST)?.to_str().ok()?.to_string(),
    };
    let plain = !host.is_empty()
        && !host.contains('@')
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._:[]".contains(&b));
    plain.then_some(host)
}

fn group(address: &str, name: &str, kind: &str) -> Value {
    json!({
        "targets": [address],
        "labels": {
            "__metrics_path__": "/probe",
            "__param_target": name,
            "target": name,
            "__meta_fleet_exporter_kind": kind,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(host: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, host.parse().unwrap());
        h
    }

    #[test]
    fn the_address_is_the_host_header_when_it_is_plain() {
        let uri: Uri = "/sd".parse().unwrap();
        assert_eq!(
            address(&uri, &headers("exporter:9877")).as_deref(),
            Some("exporter:9877")
        );
        assert_eq!(
            address(&uri, &headers("[::1]:9877")).as_deref(),
            Some("[::1]:9877")
        );
        assert_eq!(address(&uri, &headers("a/b")), None);
        assert_eq!(address(&uri, &headers("user@host")), None);
        assert_eq!(address(&uri, &HeaderMap::new()), None);
        let absolute: Uri = "http://replica-1:9877/sd".parse().unwrap();
        assert_eq!(
            address(&absolute, &headers("other")).as_deref(),
            Some("replica-1:9877")
        );
    }

    #[test]
    fn a_group_is_one_target_with_its_probe_labels() {
        assert_eq!(
            group("e:1", "hq", "ikuai"),
            json!({"targets": ["e:1"], "labels": {"__metrics_path__": "/probe",
                "__param_target": "hq", "target": "hq", "__meta_fleet_exporter_kind": "ikuai"}})
        );
    }
}
