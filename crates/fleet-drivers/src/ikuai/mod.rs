//! iKuai routers: `POST /Action/call` behind a cookie login.
//!
//! A poll fetches every enabled section's answer, one call at a time (small routers time out
//! under concurrent calls) in a fixed order, then maps the answers; a failed section costs only
//! its own series. The `homepage` TYPEs of every enabled module (system status, port link
//! state, WAN quality, protocol traffic) travel in one call, so a module costs a TYPE, not a
//! call. Interface addressing and firmware versions change rarely and are refreshed every
//! `ports_every` polls; a port's link state is read every poll.

mod client;
pub mod metrics;
pub mod model;
mod token;
pub mod token_model;

use std::sync::Arc;

use serde::Deserialize;
use serde_json::json;

use self::client::IkuaiClient;
use self::metrics::WanQuality;
use self::model::{Api, ClientPage, Homepage, LanClient, MonitorIface, Snapshoot, UpgradeAnswer};
use crate::util::lenient::BoundedValue;
use crate::util::{check_series, Cached, Policy, RowCut, Sections};
use fleet_core::config::{Secret, TargetSpec};
use fleet_core::driver::{Driver, DriverFactory, DynDriver, Kind, PollContext, PollError};
use fleet_core::snapshot::{Snapshot, SnapshotBuilder};

pub(crate) const KIND: Kind = Kind {
    name: "ikuai",
    secret_keys: &["password", "token"],
    families: metrics::FAMILIES,
    configure,
};

/// A router lists at most this many pages of clients per poll (a guard against a router that
/// keeps answering with the same page).
const MAX_PAGES: usize = 100;

/// Groups of calls a target can switch off with `modules = [...]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Module {
    System,
    Interfaces,
    Clients,
    ClientsV6,
    Dns,
    Qos,
    Ports,
    /// WAN round trip (`homepage` TYPE `wan_stat`, in the homepage call).
    Wan,
    /// Bytes per protocol category (`homepage` TYPE `app_flow`, in the homepage call).
    AppFlow,
    /// Firmware and library versions (`upgrade`, on the `ports_every` cadence).
    Firmware,
    /// Disks, partitions and file system usage (token API `/system/disks`, on the
    /// `ports_every` cadence).
    Disks,
    /// Access points and wireless clients (token API `/monitoring/wireless-statistics`).
    Wireless,
}

const ALL_MODULES: [Module; 12] = [
    Module::System,
    Module::Interfaces,
    Module::Clients,
    Module::ClientsV6,
    Module::Dns,
    Module::Qos,
    Module::Ports,
    Module::Wan,
    Module::AppFlow,
    Module::Firmware,
    Module::Disks,
    Module::Wireless,
];

/// Which of the router's APIs a target polls.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Transport {
    /// `/Action/call` behind a cookie login (3.x and 4.x).
    Cookie,
    /// The 4.x REST API with a bearer token made in the web UI: no login.
    Token,
    /// The token API when a token is configured, otherwise the cookie login.
    #[default]
    Auto,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Options {
    #[serde(default)]
    api: Transport,
    #[serde(default = "default_username")]
    username: String,
    password: Option<Secret>,
    /// The token API's bearer token (`token_file` to read it from a file).
    token: Option<Secret>,
    /// Accept any certificate (routers ship a self-signed one). Off by default.
    #[serde(default)]
    tls_insecure_skip_verify: bool,
    /// A PEM file of the certificates to trust for this target (e.g. the router's own).
    ca_file: Option<std::path::PathBuf>,
    #[serde(default = "default_modules")]
    modules: Vec<Module>,
    /// Per-client series for at most this many clients; 0 turns them off.
    #[serde(default = "default_max_clients")]
    max_clients: usize,
    /// Interface addressing, firmware versions and (token API) disks change rarely: fetched
    /// every this many polls; an optional endpoint the router lacks is asked again as often.
    #[serde(default = "default_ports_every")]
    ports_every: u64,
    /// The window of the protocol traffic figures, in minutes (the router's `minute`).
    #[serde(default = "default_app_flow_minutes")]
    app_flow_minutes: u64,
    /// Client rows asked for per call.
    #[serde(default = "default_page_size")]
    page_size: usize,
    /// Entries read per list of one answer (interfaces, DNS and QoS rows, ports) and client rows
    /// read per poll over all pages; the rest are skipped unread and counted as `limit`.
    #[serde(default = "default_max_rows")]
    max_rows: usize,
    /// Series the target's snapshot may hold; past it the poll fails with `limit`. 0: no bound.
    #[serde(default = "crate::util::default_max_series")]
    max_series: usize,
}

fn default_max_rows() -> usize {
    10_000
}

fn default_username() -> String {
    "admin".into()
}
fn default_modules() -> Vec<Module> {
    ALL_MODULES.to_vec()
}
fn default_max_clients() -> usize {
    256
}
fn default_ports_every() -> u64 {
    10
}
fn default_page_size() -> usize {
    1000
}
fn default_app_flow_minutes() -> u64 {
    60
}

fn configure(spec: &TargetSpec) -> Result<DriverFactory, String> {
    let opts: Options = spec.driver_options()?;
    if opts.ports_every == 0 {
        return Err("ports_every: must be at least 1".into());
    }
    if opts.page_size == 0 {
        return Err("page_size: must be at least 1".into());
    }
    if !(1..=1440).contains(&opts.app_flow_minutes) {
        return Err("app_flow_minutes: must be 1 to 1440 (a day)".into());
    }
    crate::util::check_max_rows(opts.max_rows)?;
    let ca = match &opts.ca_file {
        Some(path) => Some(read_ca(&spec.config_dir.join(path))?),
        None => None,
    };
    let transport = match (opts.api, &opts.token, &opts.password) {
        (Transport::Token, None, _) => {
            return Err("token: required with api = \"token\" (or token_file)".into())
        }
        (Transport::Token, Some(_), _) | (Transport::Auto, Some(_), _) => Transport::Token,
        (_, _, None) => {
            return Err(
                "password: required for the cookie login (or set token for the 4.x token API)"
                    .into(),
            )
        }
        (_, _, Some(_)) => Transport::Cookie,
    };
    let opts = Arc::new(opts);
    let (url, timeout) = (spec.url.clone(), spec.timeout);
    let make = move || -> Box<dyn DynDriver> {
        let mut http = crate::util::http::builder(timeout)
            .danger_accept_invalid_certs(opts.tls_insecure_skip_verify);
        if let Some(ca) = &ca {
            http = http.add_root_certificate(ca.clone());
        }
        let http = http.build().unwrap_or_default();
        let (token, password) = (opts.token.clone(), opts.password.clone());
        match (transport, token, password) {
            (Transport::Token, Some(token), _) => {
                let client = token::TokenClient::new(http, &url, &token, opts.max_rows);
                Box::new(token::TokenDriver::new(client, opts.clone()))
            }
            (_, _, password) => {
                let password = password.unwrap_or_else(|| Secret::new(String::new()));
                let client =
                    IkuaiClient::new(http, &url, opts.username.clone(), password, opts.max_rows);
                Box::new(IkuaiDriver {
                    client,
                    addressing: Cached::new(opts.ports_every),
                    upgrade: Cached::new(opts.ports_every),
                    opts: opts.clone(),
                })
            }
        }
    };
    Ok(Arc::new(make))
}

/// The certificates of `ca_file`, checked at load so a bad file is a config error.
fn read_ca(path: &std::path::Path) -> Result<reqwest::Certificate, String> {
    const MAX_CA_BYTES: u64 = 1 << 20;
    let pem = fleet_core::config::read_regular_file(path, MAX_CA_BYTES)
        .map_err(|e| format!("ca_file: {e}"))?;
    reqwest::Certificate::from_pem(pem.as_bytes())
        .map_err(|e| format!("ca_file: {}: not a PEM certificate: {e}", path.display()))
}

struct IkuaiDriver {
    client: IkuaiClient,
    opts: Arc<Options>,
    /// The addressing answer, re-exported between its slow refreshes.
    addressing: Cached<Snapshoot>,
    /// The versions answer, likewise.
    upgrade: Cached<UpgradeAnswer>,
}

/// The typed answers of one poll's enabled sections; a section that is off or failed has none.
/// Both transports fill it: `/Action/call` from its homepage call, the token API endpoint by
/// endpoint.
#[derive(Default)]
struct Answers {
    /// With the envelope generation it came in.
    home: Option<(Homepage, Option<Api>)>,
    /// `home`'s system status is served (its section did not fail).
    system: bool,
    /// `home`'s AP and DHCP pool counts are served (`/Action/call` only).
    pools: bool,
    /// `home`'s ports (`ether_info`) are served.
    ether: bool,
    wan: Option<Vec<WanQuality>>,
    /// (category, bytes over the `app_flow_minutes` window).
    apps: Option<Vec<(String, f64)>>,
    iface: Option<MonitorIface>,
    /// Client rows by IP version, `"4"` before `"6"`.
    clients: Vec<(&'static str, Vec<LanClient>)>,
    dns: Option<BoundedValue>,
    qos: Option<BoundedValue>,
    /// The addressing answer (fresh or cached) is served: its section did not fail.
    addressing: bool,
    /// The versions answer (fresh or cached) is served.
    upgrade: bool,
    /// The token API's wireless statistics, when the router has them.
    wireless: Option<token_model::WirelessAnswer>,
}

impl Driver for IkuaiDriver {
    async fn poll(&mut self, ctx: &mut PollContext) -> Result<Snapshot, PollError> {
        self.client.begin_poll();
        let mut sections = Sections::new(Policy::DEVICE);
        let answers = self.fetch(ctx, &mut sections).await?;
        let slow = Slow {
            addressing: answers.addressing.then(|| self.addressing.get()).flatten(),
            upgrade: answers.upgrade.then(|| self.upgrade.get()).flatten(),
            disks: None,
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

impl IkuaiDriver {
    /// Every enabled section's answer, one call at a time in a fixed order.
    async fn fetch(
        &mut self,
        ctx: &mut PollContext,
        sections: &mut Sections,
    ) -> Result<Answers, PollError> {
        let mut a = Answers::default();
        for module in ALL_MODULES {
            if !self.opts.modules.contains(&module) {
                continue;
            }
            match module {
                // Every module's homepage TYPE in one call, made where the system status is.
                Module::System | Module::Ports | Module::Wan | Module::AppFlow => {
                    if module == self.first_homepage_module() {
                        let param = self.homepage_param();
                        let home = self.client.call(ctx, "homepage", param).await;
                        if let Some(home) = sections.record(home)? {
                            self.split_homepage(&mut a, home);
                        }
                    }
                }
                // A kept answer is served without a request, and a poll that asked nothing of
                // the router has not heard from it: only a refresh counts as a section.
                Module::Firmware if self.upgrade.due() => {
                    a.upgrade = sections.record(self.refresh_upgrade(ctx).await)?.is_some();
                }
                Module::Firmware => a.upgrade = true,
                Module::Interfaces => {
                    let param = json!({"TYPE": "iface_check,iface_stream"});
                    a.iface =
                        sections.record(self.client.call(ctx, "monitor_iface", param).await)?;
                }
                Module::Clients | Module::ClientsV6 => {
                    let (func_name, ip_version) = if module == Module::Clients {
                        ("monitor_lanip", "4")
                    } else {
                        ("monitor_lanipv6", "6")
                    };
                    if let Some(rows) = sections.record(self.clients(ctx, func_name).await)? {
                        a.clients.push((ip_version, rows));
                    }
                }
                Module::Dns => {
                    let param = json!({"TYPE": "dns_cache"});
                    a.dns = sections.record(self.client.call(ctx, "dns", param).await)?;
                }
                Module::Qos => {
                    let param = json!({"TYPE": "data"});
                    a.qos = sections.record(self.client.call(ctx, "monitor_l7qos", param).await)?;
                }
                // Token API endpoints; `/Action/call` has its AP counts in `ac_status`.
                Module::Disks | Module::Wireless => {}
            }
            if module == Module::Ports {
                a.addressing = !self.addressing.due()
                    || sections
                        .record(self.refresh_addressing(ctx).await)?
                        .is_some();
            }
        }
        self.addressing.tick();
        self.upgrade.tick();
        Ok(a)
    }

    fn enabled(&self, module: Module) -> bool {
        self.opts.modules.contains(&module)
    }

    /// The one homepage answer, shared out to the sections of the modules that asked for it.
    fn split_homepage(&self, a: &mut Answers, mut home: Homepage) {
        a.system = self.enabled(Module::System);
        a.pools = a.system;
        a.ether = self.enabled(Module::Ports);
        if self.enabled(Module::Wan) {
            a.wan = Some(metrics::wan_stat_quality(&std::mem::take(
                &mut home.wan_stat,
            )));
        }
        if self.enabled(Module::AppFlow) {
            a.apps = Some(home.app_flow.categories());
        }
        a.home = Some((home, self.client.api()));
    }

    /// The first enabled module whose data comes with the homepage call.
    fn first_homepage_module(&self) -> Module {
        ALL_MODULES
            .into_iter()
            .find(|m| HOMEPAGE_TYPES.iter().any(|(hm, _)| hm == m) && self.enabled(*m))
            .unwrap_or(Module::System)
    }

    /// The homepage call's `param`: the TYPEs of the enabled modules, and `app_flow`'s window.
    fn homepage_param(&self) -> serde_json::Value {
        let types: Vec<&str> = HOMEPAGE_TYPES
            .iter()
            .filter(|(m, _)| self.enabled(*m))
            .map(|(_, t)| *t)
            .collect();
        let mut param = json!({"TYPE": types.join(",")});
        if self.enabled(Module::AppFlow) {
            param["minute"] = json!(self.opts.app_flow_minutes.to_string());
        }
        param
    }

    /// Pages through a client list until the router's `total` is reached, reading at most
    /// `max_rows` rows in all (a router's `total` is a claim, not a size to allocate).
    async fn clients(
        &mut self,
        ctx: &mut PollContext,
        func_name: &str,
    ) -> Result<Vec<LanClient>, PollError> {
        let max_rows = self.opts.max_rows;
        let mut rows: Vec<LanClient> = Vec::new();
        let mut offset = 0;
        for _ in 0..MAX_PAGES {
            let room = max_rows - rows.len();
            let param = json!({
                "TYPE": "data,total",
                "limit": format!("{offset},{}", self.opts.page_size.min(room)),
                "ORDER_BY": "ip_addr_int",
                "ORDER": "",
            });
            let page: ClientPage = self.client.call_capped(ctx, func_name, param, room).await?;
            let n = page.data.len();
            let total = page.total.unwrap_or(0.0) as usize;
            rows.extend(page.data);
            offset += n;
            if n == 0 || offset >= total {
                break;
            }
            if rows.len() >= max_rows {
                // The router says there is more than we read: counted, not fetched.
                self.client
                    .rows_cut
                    .add(total.saturating_sub(offset).max(1));
                break;
            }
        }
        Ok(rows)
    }

    /// Refreshes the addressing answer (due every `ports_every` polls).
    async fn refresh_addressing(&mut self, ctx: &mut PollContext) -> Result<(), PollError> {
        let param = json!({"TYPE": "snapshoot"});
        self.addressing
            .store(self.client.call(ctx, "homepage", param).await?);
        Ok(())
    }

    /// Refreshes the versions answer (due every `ports_every` polls).
    async fn refresh_upgrade(&mut self, ctx: &mut PollContext) -> Result<(), PollError> {
        let param = json!({"TYPE": "data"});
        self.upgrade
            .store(self.client.call(ctx, "upgrade", param).await?);
        Ok(())
    }
}

/// The homepage TYPE each module adds to the one homepage call of a poll.
const HOMEPAGE_TYPES: [(Module, &str); 4] = [
    (Module::System, "sysstat,ac_status,dhcp_addrpool_num"),
    (Module::Ports, "ether_info"),
    (Module::Wan, "wan_stat"),
    (Module::AppFlow, "app_flow"),
];

/// The slow answers served this poll (fresh or kept from an earlier poll).
struct Slow<'a> {
    addressing: Option<&'a Snapshoot>,
    upgrade: Option<&'a UpgradeAnswer>,
    /// The token API's disks, when the router has the endpoint.
    disks: Option<&'a [token_model::Disk]>,
}

/// Maps a poll's answers and ends the poll, whichever transport fetched them: the rows cut and
/// the failed sections are counted, and the snapshot is held to `max_series`.
fn snapshot(
    ctx: &mut PollContext,
    answers: Answers,
    slow: &Slow<'_>,
    opts: &Options,
    rows_cut: &RowCut,
    sections: Sections,
) -> Result<Snapshot, PollError> {
    let mut b = ctx.snapshot_builder();
    map(&mut b, &answers, slow, opts);
    drop(answers);
    rows_cut.finish(ctx, &format!("max_rows = {}", opts.max_rows));
    sections.finish(ctx, false)?;
    check_series(b.finish(), opts.max_series)
}

/// One poll's answers → samples, in the order the sections are fetched (clients last, both IP
/// versions together, for their shared `max_clients` budget).
fn map(b: &mut SnapshotBuilder, a: &Answers, slow: &Slow<'_>, opts: &Options) {
    if let Some((home, api)) = &a.home {
        if a.system {
            metrics::system(b, &home.sysstat, *api);
        }
        if a.pools {
            metrics::access_points_and_pool(b, home);
        }
        if a.ether {
            metrics::ports(b, &home.ether_info);
        }
    }
    if let Some(lines) = &a.wan {
        metrics::wan_quality(b, lines);
    }
    if let Some(apps) = &a.apps {
        metrics::app_traffic(b, apps, (opts.app_flow_minutes * 60) as f64);
    }
    if let Some(iface) = &a.iface {
        metrics::interfaces(b, iface);
    }
    if let Some(BoundedValue(payload)) = &a.dns {
        metrics::dns(b, &model::dns_cache_rows(payload));
    }
    if let Some(BoundedValue(payload)) = &a.qos {
        metrics::qos(b, &model::qos_rows(payload));
    }
    if let Some(snap) = slow.addressing {
        metrics::addressing(b, snap);
    }
    if let Some(upgrade) = slow.upgrade {
        metrics::versions(b, &upgrade.data);
    }
    if let Some(w) = &a.wireless {
        let online = a.home.as_ref().filter(|_| a.system);
        metrics::wireless(b, w, online.map(|(home, _)| &home.sysstat.online_user));
    }
    if let Some(disks) = slow.disks {
        metrics::disks(b, disks);
    }
    let pages: Vec<(&str, &[LanClient])> = a
        .clients
        .iter()
        .map(|(v, rows)| (*v, rows.as_slice()))
        .collect();
    if !pages.is_empty() {
        metrics::clients(b, &pages, opts.max_clients);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn debug_redacts_secrets() {
        let (config, spec) =
            crate::util::testing::config_debug("ikuai", "password = \"Ik-debug-secret\"");
        let opts: super::Options = spec.driver_options().unwrap();
        let shown = format!("{config} {spec:?} {opts:?}");
        crate::util::testing::assert_redacted(&shown, "Ik-debug-secret");
        let (config, spec) = crate::util::testing::config_debug(
            "ikuai",
            "api = \"token\"\ntoken = \"Ik-token-secret\"",
        );
        let opts: super::Options = spec.driver_options().unwrap();
        let shown = format!("{config} {spec:?} {opts:?}");
        crate::util::testing::assert_redacted(&shown, "Ik-token-secret");
    }

    #[test]
    fn each_transport_names_the_credential_it_lacks() {
        let error = |options: &str| {
            let text = format!(
                "[[targets]]\nname = \"t\"\nkind = \"ikuai\"\nurl = \"https://r.example\"\n{options}\n"
            );
            let path = std::path::Path::new(".");
            fleet_core::config::Config::parse(
                &text,
                fleet_core::config::FileFormat::Toml,
                path,
                crate::KINDS,
            )
            .map(|_| ())
            .unwrap_err()
            .to_string()
        };
        assert!(error("api = \"token\"").contains("token: required"));
        assert!(error("").contains("password: required"));
        assert!(error("api = \"cookie\"\ntoken = \"x\"").contains("password: required"));
        assert!(error("token = \"x\"\nca_file = \"/nonexistent/ca.pem\"").contains("ca_file"));
        assert!(error("password = \"p\"\napp_flow_minutes = 0").contains("app_flow_minutes"));
    }
}
