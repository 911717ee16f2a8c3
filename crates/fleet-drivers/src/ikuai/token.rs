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
//! - Disks and wireless statistics are optional: firmware without the endpoint (HTTP 404, 405
//!   or 501), a token not allowed it (403), an answer whose code refuses it, or wireless
//!   statistics with neither part (no wireless) give no series and no error. The driver
//!   remembers, logs it once, and asks again only every `ports_every` polls (a firmware update
//!   may add it). Disks change slowly and are read on that cadence anyway.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use reqwest::header::{HeaderValue, AUTHORIZATION};
use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;
use url::Url;

use super::metrics::WanQuality;
use super::model::{
    decode_json, Api, ClientPage, EtherInfo, LanClient, MonitorIface, Snapshoot, Sysstat,
};
use super::token_model::{DisksAnswer, WirelessAnswer};
use super::{snapshot, Answers, Module, Options, Slow, ALL_MODULES, MAX_PAGES};
use crate::util::http::{self, MAX_BODY_BYTES};
use crate::util::lenient::{self, BoundedValue};
use crate::util::{envelope_detail, Cached, Policy, RowCut, Sections};
use fleet_core::config::Secret;
use fleet_core::driver::{Driver, PollContext, PollError};
use fleet_core::snapshot::Snapshot;

/// Codes a token API envelope may carry on success (absent, 0, or 20000 on some firmware).
const OK_CODES: [i64; 2] = [0, 20000];
/// Codes that speak of the token or session, not of the endpoint: never "lacking".
const SESSION_CODES: [i64; 2] = [3007, 1008];

/// A token API answer: the results, or a refusal that says the router lacks the endpoint (an
/// error for a required endpoint, no data for an optional one).
enum Reply<T> {
    Results(T),
    Lacking(PollError),
}

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
        match self.reply(path, query, cap).await? {
            Reply::Results(results) => Ok(results),
            Reply::Lacking(e) => Err(e),
        }
    }

    /// `GET <path>`'s `results`, or what the router said of an endpoint it lacks.
    async fn reply<T: DeserializeOwned + Default + Send + 'static>(
        &self,
        path: &str,
        query: &[(&str, String)],
        cap: usize,
    ) -> Result<Reply<T>, PollError> {
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
            return match status {
                StatusCode::UNAUTHORIZED => Err(PollError::auth(detail)),
                StatusCode::FORBIDDEN
                | StatusCode::NOT_FOUND
                | StatusCode::METHOD_NOT_ALLOWED
                | StatusCode::NOT_IMPLEMENTED => Ok(Reply::Lacking(PollError::http(detail))),
                _ => Err(PollError::http(detail)),
            };
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
            None => Ok(Reply::Results(envelope.results.unwrap_or_default())),
            Some(code) if OK_CODES.contains(&code) => {
                Ok(Reply::Results(envelope.results.unwrap_or_default()))
            }
            Some(code) => {
                let e = PollError::api(envelope_detail(path, &envelope.message, Some(&code)));
                if SESSION_CODES.contains(&code) {
                    Err(e)
                } else {
                    Ok(Reply::Lacking(e))
                }
            }
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

/// Wireless statistics with neither part are a router without wireless: lacking, not data.
fn without_radios(reply: Reply<WirelessAnswer>) -> Reply<WirelessAnswer> {
    match reply {
        Reply::Results(w) if w.is_empty() => Reply::Lacking(PollError::api(format!(
            "{WIRELESS}: neither ap_status nor clt_status"
        ))),
        other => other,
    }
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

const DISKS: &str = "system/disks";
const WIRELESS: &str = "monitoring/wireless-statistics";

pub(super) struct TokenDriver {
    client: TokenClient,
    opts: Arc<Options>,
    addressing: Cached<Snapshoot>,
    /// The disks answer between its slow refreshes; `None` inside: the router lacks it.
    disks: Cached<Option<DisksAnswer>>,
    /// Whether the router gave wireless statistics when last asked (every poll while it does).
    wireless: Cached<bool>,
}

impl TokenDriver {
    pub(super) fn new(client: TokenClient, opts: Arc<Options>) -> Self {
        TokenDriver {
            client,
            addressing: Cached::new(opts.ports_every),
            disks: Cached::new(opts.ports_every),
            wireless: Cached::new(opts.ports_every),
            opts,
        }
    }

    /// An optional endpoint's results, or `None` when the router lacks it: logged when that is
    /// news (`lacked_before` false), never counted as an error.
    fn optional<T>(&self, reply: Reply<T>, lacked_before: bool, target: &str) -> Option<T> {
        match reply {
            Reply::Results(results) => Some(results),
            Reply::Lacking(e) => {
                if !lacked_before {
                    tracing::info!(
                        target = %target,
                        "the router has no such data ({}); asked again every {} polls",
                        e.detail(),
                        self.opts.ports_every
                    );
                }
                None
            }
        }
    }

    /// Every enabled module's endpoints, one request at a time in the modules' order. QoS and
    /// firmware versions have no token endpoint and are left out.
    async fn fetch(&mut self, sections: &mut Sections, target: &str) -> Result<Answers, PollError> {
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
                Module::Disks if self.disks.due() => {
                    let lacked = matches!(self.disks.get(), Some(None));
                    let reply = self.client.reply::<DisksAnswer>(DISKS, &[], cap).await;
                    if let Some(reply) = sections.record(reply)? {
                        let disks = self.optional(reply, lacked, target);
                        self.disks.store(disks);
                    }
                }
                Module::Wireless => {
                    let lacked = self.wireless.get() == Some(&false);
                    if !lacked || self.wireless.scheduled() {
                        let reply = self
                            .client
                            .reply::<WirelessAnswer>(WIRELESS, &[], cap)
                            .await;
                        if let Some(reply) = sections.record(reply)? {
                            let stats = self.optional(without_radios(reply), lacked, target);
                            self.wireless.store(stats.is_some());
                            a.wireless = stats;
                        }
                    }
                }
                Module::Disks | Module::Qos | Module::Firmware => {}
            }
        }
        self.addressing.tick();
        self.disks.tick();
        self.wireless.tick();
        a.home = Some((home, Some(Api::V4)));
        Ok(a)
    }
}

impl Driver for TokenDriver {
    async fn poll(&mut self, ctx: &mut PollContext) -> Result<Snapshot, PollError> {
        let mut sections = Sections::new(Policy::DEVICE);
        let target = ctx.target().to_owned();
        let answers = self.fetch(&mut sections, &target).await?;
        let disks = self.disks.get().and_then(Option::as_ref);
        let slow = Slow {
            addressing: answers.addressing.then(|| self.addressing.get()).flatten(),
            upgrade: None,
            disks: disks.map(|d| d.data.as_slice()),
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
    fn system_disks_map_to_disk_partition_and_file_system_bytes() {
        let envelope: Envelope<DisksAnswer> =
            decode_json(&fixture("ikuai", "token_system_disks.json")).expect("envelope");
        assert_eq!(envelope.code.as_ref().and_then(lenient::number), Some(0.0));
        let disks = envelope.results.expect("results");
        let m = exposition("r", |b| metrics::disks(b, &disks.data));
        for line in [
            r#"ikuai_disk_info{target="r",disk="sda",model="WDC  WDS100T2B0A",partition_table="dos",role="data"} 1"#,
            r#"ikuai_disk_info{target="r",disk="sdb",model="SanDisk SSD P4 4",partition_table="dos",role="system"} 1"#,
            r#"ikuai_disk_size_bytes{target="r",disk="sda"} 1000204886016"#,
            r#"ikuai_disk_partition_info{target="r",partition="sda2",disk="sda",filesystem="ext4",purpose="behavior_log",mount_name=""} 1"#,
            r#"ikuai_disk_partition_info{target="r",partition="sda3",disk="sda",filesystem="ext4",purpose="storage",mount_name="test-001"} 1"#,
            r#"ikuai_disk_partition_size_bytes{target="r",partition="sda4"} 252879527936"#,
            r#"ikuai_filesystem_size_bytes{target="r",partition="sda3"} 244062085120"#,
            r#"ikuai_filesystem_used_bytes{target="r",partition="sdb5"} 123707392"#,
            r#"ikuai_filesystem_available_bytes{target="r",partition="sdb3"} 40215552"#,
        ] {
            assert!(has(&m, line), "{line} missing:\n{m}");
        }
        assert_eq!(m.matches("ikuai_disk_partition_info{").count(), 6);
        assert_eq!(m.matches("ikuai_filesystem_size_bytes{").count(), 6);
    }

    #[test]
    fn an_unmounted_partition_has_no_file_system_series_and_a_repeated_name_counts_once() {
        let body = br#"{"code":0,"message":"Success","results":{"data":[
            {"disk":"sda","system":"1","size":"4011614208","partition":[
                {"name":"sda1","size":52428800,"filesys":{"fs_type":""},"mounted":{"mt_purpose":"0","mt_total":"0","mt_used":"0","mt_avail":"0"}},
                {"name":"sda2","size":"oops","filesys":[],"mounted":{"mt_purpose":"9","mt_total":"","mt_name":"x"}},
                {"name":"sda2","size":1}]},
            {"disk":"sda","size":1}]}}"#;
        let envelope: Envelope<DisksAnswer> = decode_json(body).expect("envelope");
        let m = exposition("r", |b| metrics::disks(b, &envelope.results.unwrap().data));
        assert!(!m.contains("ikuai_filesystem_"), "{m}");
        assert!(has(
            &m,
            r#"ikuai_disk_size_bytes{target="r",disk="sda"} 4011614208"#
        ));
        assert_eq!(m.matches("ikuai_disk_size_bytes{").count(), 1);
        assert!(
            m.contains(r#"partition="sda2",disk="sda",filesystem="",purpose="9",mount_name="x""#),
            "an unknown purpose code is kept as sent: {m}"
        );
        assert_eq!(m.matches("ikuai_disk_partition_info{").count(), 2);
        assert!(!m.contains(r#"ikuai_disk_partition_size_bytes{target="r",partition="sda2"}"#));
    }

    #[test]
    fn wireless_statistics_fill_the_access_point_families_and_bands_the_system_lacks() {
        let w: WirelessAnswer = results("token_wireless_statistics.json");
        let sys: SystemAnswer = results("token_monitoring_system.json");
        let alone = exposition("r", |b| metrics::wireless(b, &w, None));
        for line in [
            r#"ikuai_access_points{target="r"} 3"#,
            r#"ikuai_access_points_online{target="r"} 3"#,
            r#"ikuai_access_points_feature{target="r",feature="prefer_5g"} 3"#,
            r#"ikuai_access_points_feature{target="r",feature="roaming"} 3"#,
            r#"ikuai_online_clients{target="r",medium="wireless"} 1"#,
            r#"ikuai_online_clients{target="r",medium="5g"} 1"#,
            r#"ikuai_wireless_clients{target="r",state="active"} 0"#,
            r#"ikuai_wireless_clients{target="r",state="inactive"} 1"#,
            r#"ikuai_wireless_clients_peak_24h{target="r"} 3"#,
        ] {
            assert!(has(&alone, line), "{line} missing:\n{alone}");
        }
        let both = exposition("r", |b| {
            metrics::system(b, &sys.sysinfo, Some(Api::V4));
            metrics::wireless(b, &w, Some(&sys.sysinfo.online_user));
        });
        assert_eq!(
            both.matches("ikuai_online_clients{").count(),
            5,
            "each medium once, from the system status: {both}"
        );
        assert!(has(
            &both,
            r#"ikuai_online_clients{target="r",medium="5g"} 0"#
        ));
    }

    #[test]
    fn wireless_statistics_with_neither_part_are_a_router_without_wireless() {
        let body = br#"{"message":"Success","results":{"ap_status":"n/a"}}"#;
        let envelope: Envelope<WirelessAnswer> = decode_json(body).expect("envelope");
        let w = envelope.results.unwrap();
        assert!(w.is_empty());
        assert!(matches!(
            without_radios(Reply::Results(w)),
            Reply::Lacking(_)
        ));
        let w: WirelessAnswer = results("token_wireless_statistics.json");
        assert!(matches!(
            without_radios(Reply::Results(w)),
            Reply::Results(_)
        ));
        let r: Refusal = decode_json(&fixture("ikuai", "token_not_found.json")).unwrap();
        assert!(r.code.is_none() && !r.message.is_empty());
    }

    #[test]
    fn the_refusal_body_carries_the_code() {
        let r: Refusal = decode_json(&fixture("ikuai", "token_unauthorized.json")).unwrap();
        assert_eq!(r.code.as_ref().and_then(lenient::number), Some(3007.0));
        assert!(!r.message.is_empty());
    }
}
