//! The 4.x token API (`GET /api/v4.0/...` with `Authorization: Bearer <token>`): no login, so
//! nothing in the router's log per session and no password in the config. Policy:
//!
//! - One request at a time, endpoint by endpoint in the modules' order, mapped to the same
//!   families as `/Action/call` wherever the meaning is the same; a failed endpoint costs only
//!   its own series.
//! - The token is sent only to the target's own URL: redirects are never followed (a 3xx is an
//!   `http` error), and it appears in no log, error or label.
//! - HTTP 401 (`{"code":3007,...}`: a bad or expired token) is an `auth` error that fails the
//!   poll, so the scheduler backs off instead of retrying at every interval.
//! - Client lists are paged (`page` from 1, `limit`; the router's default page is 10 rows)
//!   until `total` is reached, reading at most `max_rows` rows; duplicates are removed in the
//!   mapping, per-client series capped by `max_clients`.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use reqwest::header::{HeaderValue, AUTHORIZATION};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;
use url::Url;

use super::metrics::WanQuality;
use super::model::{
    decode_json, Api, ClientPage, EtherInfo, LanClient, MonitorIface, Snapshoot, Sysstat,
};
use super::{snapshot, Answers, Module, Options, Slow, ALL_MODULES, MAX_PAGES};
use crate::util::http::{self, MAX_BODY_BYTES};
use crate::util::lenient::{self, BoundedValue};
use crate::util::{envelope_detail, Cached, Policy, RowCut, Sections};
use fleet_core::config::Secret;
use fleet_core::driver::{Driver, PollContext, PollError};
use fleet_core::snapshot::Snapshot;

/// Codes a token API envelope may carry on success (absent, 0, or 20000 on some firmware).
const OK_CODES: [i64; 2] = [0, 20000];

pub(super) struct TokenClient {
    http: reqwest::Client,
    api: Url,
    /// `Bearer <token>`, marked sensitive so it never shows in a debug print.
    authorization: HeaderValue,
    max_rows: usize,
    rows_cut: RowCut,
}

impl TokenClient {
    pub(super) fn new(http: reqwest::Client, base: &Url, token: &Secret, max_rows: usize) -> Self {
        let mut authorization = HeaderValue::from_str(&format!("Bearer {}", token.expose()))
            .unwrap_or_else(|_| HeaderValue::from_static(""));
        authorization.set_sensitive(true);
        TokenClient {
            http,
            api: base.join("/api/v4.0/").unwrap_or_else(|_| base.clone()),
            authorization,
            max_rows,
            rows_cut: RowCut::default(),
        }
    }

    /// `GET <path>?<query>`'s `results`, its lists cut at `cap` entries.
    async fn get<T: DeserializeOwned + Default + Send + 'static>(
        &self,
        path: &str,
        query: &[(&str, String)],
        cap: usize,
    ) -> Result<T, PollError> {
        let mut url = self
            .api
            .join(path)
            .map_err(|e| PollError::http(e.to_string()))?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        let request = self
            .http
            .get(url)
            .header(AUTHORIZATION, self.authorization.clone());
        let resp = http::send(request).await?;
        let status = resp.status();
        if status.is_redirection() {
            return Err(PollError::http(format!(
                "{path}: HTTP {status}: redirects are not followed, so the token stays with the router"
            )));
        }
        if !status.is_success() {
            let body = http::read_limited(resp, 64 << 10).await.unwrap_or_default();
            let refusal: Refusal = decode_json(&body).unwrap_or_default();
            let code = refusal
                .code
                .as_ref()
                .and_then(lenient::number)
                .map(|c| c as i64);
            let what = format!("{path}: HTTP {}", status.as_u16());
            let detail = envelope_detail(
                &what,
                &refusal.message,
                code.as_ref().map(|c| c as &dyn std::fmt::Display),
            );
            return Err(if status == reqwest::StatusCode::UNAUTHORIZED {
                PollError::auth(detail)
            } else {
                PollError::http(detail)
            });
        }
        let body = http::read_limited(resp, MAX_BODY_BYTES).await?;
        let envelope: Result<Envelope<T>, String> =
            self.rows_cut.decode_body(cap, body, decode_json).await?;
        let envelope = envelope.map_err(PollError::decode)?;
        let code = envelope
            .code
            .as_ref()
            .and_then(lenient::number)
            .map(|c| c as i64);
        match code {
            None => Ok(envelope.results.unwrap_or_default()),
            Some(code) if OK_CODES.contains(&code) => Ok(envelope.results.unwrap_or_default()),
            Some(code) => Err(PollError::api(envelope_detail(
                path,
                &envelope.message,
                Some(&code),
            ))),
        }
    }

    /// Every page of a client list, until `total` or `max_rows` rows.
    async fn clients(&self, path: &str, page_size: usize) -> Result<Vec<LanClient>, PollError> {
        let mut limit = page_size.min(self.max_rows).max(1);
        let mut rows: Vec<LanClient> = Vec::new();
        for page in 1..=MAX_PAGES {
            let room = self.max_rows - rows.len();
            let query = [("page", page.to_string()), ("limit", limit.to_string())];
            let answer: ClientPage = self.get(path, &query, room).await?;
            let n = answer.data.len();
            let total = answer.total.unwrap_or(0.0) as usize;
            rows.extend(answer.data);
            let fetched = (page - 1) * limit + n;
            if n == 0 || fetched >= total {
                break;
            }
            if rows.len() >= self.max_rows {
                self.rows_cut.add(total.saturating_sub(fetched).max(1));
                break;
            }
            if page == 1 && n < limit {
                // The router serves shorter pages than asked: page in its size.
                limit = n;
            }
        }
        Ok(rows)
    }
}

/// `{code?, message, results}`.
#[derive(Deserialize)]
struct Envelope<T> {
    code: Option<Value>,
    #[serde(default, deserialize_with = "lenient::string")]
    message: String,
    results: Option<T>,
}

/// An error answer's body: `{"code":3007,"message":...}`, `code` sometimes absent.
#[derive(Default, Deserialize)]
#[serde(default)]
struct Refusal {
    code: Option<Value>,
    #[serde(deserialize_with = "lenient::string")]
    message: String,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct SystemAnswer {
    #[serde(deserialize_with = "lenient::object")]
    sysinfo: Sysstat,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct PhysicalAnswer {
    #[serde(deserialize_with = "lenient::object")]
    ether_info: EtherInfo,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct TrafficAnswer {
    #[serde(deserialize_with = "lenient::rows")]
    wans_stat_history: Vec<WanSample>,
}

/// One line's (or `all` lines') quality sample: round trips in ms, `drop_rate` a percent.
#[derive(Default, Deserialize)]
#[serde(default)]
struct WanSample {
    #[serde(deserialize_with = "lenient::string")]
    interface: String,
    #[serde(deserialize_with = "lenient::opt_f64")]
    timestamp: Option<f64>,
    #[serde(deserialize_with = "lenient::opt_f64")]
    avg_rtt: Option<f64>,
    #[serde(deserialize_with = "lenient::opt_f64")]
    drop_rate: Option<f64>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct ProtocolsAnswer {
    #[serde(deserialize_with = "lenient::rows")]
    data: Vec<ProtocolRow>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct ProtocolRow {
    #[serde(deserialize_with = "lenient::string")]
    proto_name: String,
    #[serde(deserialize_with = "lenient::opt_f64")]
    total: Option<f64>,
}

/// Each line's latest sample (the history lists several per line).
fn latest_per_line(samples: Vec<WanSample>) -> Vec<WanQuality> {
    let mut latest: Vec<WanSample> = Vec::new();
    for s in samples {
        match latest.iter_mut().find(|l| l.interface == s.interface) {
            Some(l) if s.timestamp > l.timestamp => *l = s,
            Some(_) => {}
            None => latest.push(s),
        }
    }
    latest
        .into_iter()
        .map(|s| WanQuality {
            interface: s.interface,
            // A line that answered no probe reports 0: no round trip, not a zero one.
            rtt_ms: s.avg_rtt.filter(|ms| *ms > 0.0),
            loss_percent: s.drop_rate,
        })
        .collect()
}

pub(super) struct TokenDriver {
    client: TokenClient,
    opts: Arc<Options>,
    addressing: Cached<Snapshoot>,
}

impl TokenDriver {
    pub(super) fn new(client: TokenClient, opts: Arc<Options>) -> Self {
        TokenDriver {
            client,
            addressing: Cached::new(opts.ports_every),
            opts,
        }
    }

    /// Every enabled module's endpoints, one request at a time in the modules' order. QoS and
    /// firmware versions have no token endpoint and are left out.
    async fn fetch(&mut self, sections: &mut Sections) -> Result<Answers, PollError> {
        let mut a = Answers::default();
        let mut home = super::model::Homepage::default();
        let c = &self.client;
        let cap = c.max_rows;
        for module in ALL_MODULES {
            if !self.opts.modules.contains(&module) {
                continue;
            }
            match module {
                Module::System => {
                    let sys = c.get::<SystemAnswer>("monitoring/system", &[], cap).await;
                    if let Some(sys) = sections.record(sys)? {
                        home.sysstat = sys.sysinfo;
                        a.system = true;
                    }
                }
                Module::Interfaces => {
                    let iface = c.get::<MonitorIface>("monitoring/interfaces-status", &[], cap);
                    a.iface = sections.record(iface.await)?;
                }
                Module::Clients | Module::ClientsV6 => {
                    let (path, ip_version) = if module == Module::Clients {
                        ("monitoring/clients-online", "4")
                    } else {
                        ("monitoring/clients-ip6-online", "6")
                    };
                    let rows = c.clients(path, self.opts.page_size).await;
                    if let Some(rows) = sections.record(rows)? {
                        a.clients.push((ip_version, rows));
                    }
                }
                Module::Dns => {
                    let dns = c.get::<BoundedValue>("network/dns/stats", &[], cap).await;
                    a.dns = sections.record(dns)?;
                }
                Module::Ports => {
                    let ports = c.get::<PhysicalAnswer>("monitoring/interfaces-physical", &[], cap);
                    if let Some(p) = sections.record(ports.await)? {
                        home.ether_info = p.ether_info;
                        a.ether = true;
                    }
                    if self.addressing.due() {
                        let snap = c.get::<Snapshoot>("monitoring/interfaces-config", &[], cap);
                        if let Some(snap) = sections.record(snap.await)? {
                            self.addressing.store(snap);
                        }
                    }
                    a.addressing = true;
                }
                Module::Wan => {
                    let traffic = c.get::<TrafficAnswer>("monitoring/interfaces-traffic", &[], cap);
                    a.wan = sections
                        .record(traffic.await)?
                        .map(|t| latest_per_line(t.wans_stat_history));
                }
                Module::AppFlow => {
                    let now = SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .map_or(0, |d| d.as_secs());
                    let window = self.opts.app_flow_minutes * 60;
                    let query = [
                        ("starttime", now.saturating_sub(window).to_string()),
                        ("stoptime", now.to_string()),
                    ];
                    let protocols = c.get::<ProtocolsAnswer>("monitoring/protocols", &query, cap);
                    a.apps = sections.record(protocols.await)?.map(|p| {
                        p.data
                            .into_iter()
                            .filter_map(|r| Some((r.proto_name, r.total?)))
                            .filter(|(name, _)| !name.is_empty())
                            .collect()
                    });
                }
                Module::Qos | Module::Firmware => {}
            }
        }
        self.addressing.tick();
        a.home = Some((home, Some(Api::V4)));
        Ok(a)
    }
}

impl Driver for TokenDriver {
    async fn poll(&mut self, ctx: &mut PollContext) -> Result<Snapshot, PollError> {
        let mut sections = Sections::new(Policy::DEVICE);
        let answers = self.fetch(&mut sections).await?;
        let slow = Slow {
            addressing: answers.addressing.then(|| self.addressing.get()).flatten(),
            upgrade: None,
        };
        snapshot(
            ctx,
            answers,
            &slow,
            &self.opts,
            &self.client.rows_cut,
            sections,
        )
    }
}

#[cfg(test)]
mod tests {
    //! The published token API examples (fixtures/ikuai/token_*) through the wire types and
    //! the shared mapping.
    use super::*;
    use crate::ikuai::metrics;
    use crate::util::testing::{exposition, fixture, has};

    fn results<T: DeserializeOwned>(name: &str) -> T {
        let envelope: Envelope<T> = decode_json(&fixture("ikuai", name)).expect("envelope");
        assert!(envelope.code.is_none(), "the examples carry no code");
        envelope.results.expect("results")
    }

    #[test]
    fn sysinfo_maps_to_the_system_families_with_connections_by_protocol() {
        let sys: SystemAnswer = results("token_monitoring_system.json");
        let m = exposition("r", |b| metrics::system(b, &sys.sysinfo, Some(Api::V4)));
        assert!(
            has(&m, r#"ikuai_cpu_usage_ratio{target="r",cpu="all"} 0.1278"#),
            "{m}"
        );
        assert!(m.contains(r#"gwid="dc345846a78aa2521afe00916af191d7",api="4.x""#));
        assert!(has(
            &m,
            r#"ikuai_protocol_connections{target="r",protocol="tcp"} 48"#
        ));
        assert!(has(
            &m,
            r#"ikuai_protocol_connections{target="r",protocol="icmp"} 2"#
        ));
        assert!(has(
            &m,
            r#"ikuai_memory_total_bytes{target="r"} 1817362432"#
        ));
    }

    #[test]
    fn traffic_history_gives_each_lines_latest_round_trip_and_loss() {
        let t: TrafficAnswer = results("token_interfaces_traffic.json");
        let m = exposition("r", |b| {
            metrics::wan_quality(b, &latest_per_line(t.wans_stat_history))
        });
        assert!(
            has(
                &m,
                r#"ikuai_wan_rtt_seconds{target="r",interface="wan1"} 0.00635"#
            ),
            "{m}"
        );
        assert!(has(
            &m,
            r#"ikuai_wan_loss_ratio{target="r",interface="wan1"} 0"#
        ));
        assert!(!m.contains(r#"interface="all""#));
    }

    #[test]
    fn the_latest_sample_of_a_line_wins_and_a_silent_line_has_no_round_trip() {
        let sample = |interface: &str, timestamp: f64, rtt: f64, loss: f64| WanSample {
            interface: interface.into(),
            timestamp: Some(timestamp),
            avg_rtt: Some(rtt),
            drop_rate: Some(loss),
        };
        let lines = latest_per_line(vec![
            sample("wan1", 100.0, 9.0, 1.0),
            sample("wan1", 400.0, 7.0, 2.0),
            sample("wan1", 200.0, 8.0, 3.0),
            sample("wan2", 400.0, 0.0, 100.0),
        ]);
        assert_eq!(lines[0].rtt_ms, Some(7.0));
        assert_eq!(lines[0].loss_percent, Some(2.0));
        assert_eq!(lines[1].rtt_ms, None);
        assert_eq!(lines[1].loss_percent, Some(100.0));
    }

    #[test]
    fn online_clients_and_protocol_totals_read_as_the_shared_types() {
        let page: ClientPage = results("token_clients_online.json");
        assert_eq!(page.total, Some(1.0));
        let m = exposition("r", |b| metrics::clients(b, &[("4", &page.data)], 10));
        assert!(
            m.contains(r#"mac="08:9b:4b:01:7e:7c",ip="192.168.9.199",name="123""#),
            "{m}"
        );
        let p: ProtocolsAnswer = results("token_protocols.json");
        let names: Vec<&str> = p.data.iter().map(|r| r.proto_name.as_str()).collect();
        assert_eq!(names, ["网络协议", "传输下载", "休闲娱乐", "未知应用"]);
        assert_eq!(p.data[0].total, Some(256_535_748_864.0));
    }

    #[test]
    fn the_refusal_body_carries_the_code() {
        let r: Refusal = decode_json(&fixture("ikuai", "token_unauthorized.json")).unwrap();
        assert_eq!(r.code.as_ref().and_then(lenient::number), Some(3007.0));
        assert!(!r.message.is_empty());
    }
}
