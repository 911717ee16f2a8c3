//! iKuai routers: `POST /Action/call` behind a cookie login.
//!
//! One call at a time (small routers time out under concurrent calls), sections in a fixed
//! order, and a failed section costs only its own series.

mod client;
pub mod metrics;
pub mod model;

use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use self::client::IkuaiClient;
use self::model::{ClientPage, Homepage, LanClient, MonitorIface, Ports};
use crate::util::Sections;
use fleet_core::config::{Secret, TargetSpec};
use fleet_core::driver::{factory, Driver, DriverFactory, Kind, PollContext, PollError};
use fleet_core::snapshot::Snapshot;

pub const KIND: Kind = Kind {
    name: "ikuai",
    secret_keys: &["password"],
    families: metrics::FAMILIES,
    configure,
};

/// A router lists at most this many pages of clients per poll (a guard against a router that
/// keeps answering with the same page).
const MAX_PAGES: usize = 100;

/// Groups of calls a target can switch off with `modules = [...]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Module {
    System,
    Interfaces,
    Clients,
    ClientsV6,
    Dns,
    Qos,
    Ports,
}

const ALL_MODULES: [Module; 7] = [
    Module::System,
    Module::Interfaces,
    Module::Clients,
    Module::ClientsV6,
    Module::Dns,
    Module::Qos,
    Module::Ports,
];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Options {
    #[serde(default = "default_username")]
    username: String,
    password: Secret,
    #[serde(default = "default_modules")]
    modules: Vec<Module>,
    /// Per-client series for at most this many clients; 0 turns them off.
    #[serde(default = "default_max_clients")]
    max_clients: usize,
    /// Physical ports and addressing change rarely: fetched every this many polls.
    #[serde(default = "default_ports_every")]
    ports_every: u64,
    /// Client rows asked for per call.
    #[serde(default = "default_page_size")]
    page_size: usize,
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

fn configure(spec: &TargetSpec) -> Result<DriverFactory, String> {
    let opts: Options = spec.driver_options()?;
    if opts.ports_every == 0 {
        return Err("ports_every: must be at least 1".into());
    }
    if opts.page_size == 0 {
        return Err("page_size: must be at least 1".into());
    }
    let opts = Arc::new(opts);
    let (url, timeout) = (spec.url.clone(), spec.timeout);
    Ok(factory(move || {
        let client = IkuaiClient::new(&url, opts.username.clone(), opts.password.clone(), timeout);
        IkuaiDriver {
            client,
            opts: opts.clone(),
            polls: 0,
            ports: None,
        }
    }))
}

struct IkuaiDriver {
    client: IkuaiClient,
    opts: Arc<Options>,
    polls: u64,
    /// The last port and addressing answer, re-exported between its slow refreshes.
    ports: Option<Ports>,
}

impl Driver for IkuaiDriver {
    async fn poll(&mut self, ctx: &mut PollContext) -> Result<Snapshot, PollError> {
        self.poll_router(ctx).await
    }
}

impl IkuaiDriver {
    async fn poll_router(&mut self, ctx: &mut PollContext) -> Result<Snapshot, PollError> {
        let mut b = ctx.snapshot_builder();
        let mut sections = Sections::default();
        let mut clients: Vec<(&'static str, Vec<LanClient>)> = Vec::new();
        for module in ALL_MODULES {
            if !self.opts.modules.contains(&module) {
                continue;
            }
            let result = match module {
                Module::System => {
                    let param = json!({"TYPE": "sysstat,ac_status,dhcp_addrpool_num"});
                    let home = self.call(ctx, "homepage", param).await;
                    home.map(|h: Homepage| metrics::system(&mut b, &h, self.client.api()))
                }
                Module::Interfaces => {
                    let param = json!({"TYPE": "iface_check,iface_stream"});
                    let iface = self.call(ctx, "monitor_iface", param).await;
                    iface.map(|i: MonitorIface| metrics::interfaces(&mut b, &i))
                }
                Module::Clients => self
                    .clients(ctx, "monitor_lanip")
                    .await
                    .map(|rows| clients.push(("4", rows))),
                Module::ClientsV6 => self
                    .clients(ctx, "monitor_lanipv6")
                    .await
                    .map(|rows| clients.push(("6", rows))),
                Module::Dns => {
                    let payload = self.call(ctx, "dns", json!({"TYPE": "dns_cache"})).await;
                    payload.map(|p: Value| metrics::dns(&mut b, &model::dns_cache_rows(&p)))
                }
                Module::Qos => {
                    let payload = self
                        .call(ctx, "monitor_l7qos", json!({"TYPE": "data"}))
                        .await;
                    payload.map(|p: Value| metrics::qos(&mut b, &model::qos_rows(&p)))
                }
                Module::Ports => self.ports(ctx).await.map(|p| metrics::ports(&mut b, p)),
            };
            sections.record(result)?;
        }
        self.polls += 1;
        let pages: Vec<(&str, &[LanClient])> = clients
            .iter()
            .map(|(v, rows)| (*v, rows.as_slice()))
            .collect();
        if !pages.is_empty() {
            metrics::clients(&mut b, &pages, self.opts.max_clients);
        }
        sections.finish(ctx)?;
        Ok(b.finish())
    }

    async fn call<T: DeserializeOwned + Default>(
        &mut self,
        ctx: &mut PollContext,
        func_name: &str,
        param: Value,
    ) -> Result<T, PollError> {
        self.client.call(ctx, func_name, param).await
    }

    /// Pages through a client list until the router's `total` is reached.
    async fn clients(
        &mut self,
        ctx: &mut PollContext,
        func_name: &str,
    ) -> Result<Vec<LanClient>, PollError> {
        let mut rows = Vec::new();
        let mut offset = 0;
        for _ in 0..MAX_PAGES {
            let param = json!({
                "TYPE": "data,total",
                "limit": format!("{offset},{}", self.opts.page_size),
                "ORDER_BY": "ip_addr_int",
                "ORDER": "",
            });
            let page: ClientPage = self.call(ctx, func_name, param).await?;
            let n = page.data.len();
            let total = page.total.unwrap_or(0.0) as usize;
            rows.extend(page.data);
            offset += n;
            if n == 0 || offset >= total {
                break;
            }
        }
        Ok(rows)
    }

    /// The port and addressing answer, refreshed every `ports_every` polls.
    async fn ports(&mut self, ctx: &mut PollContext) -> Result<&Ports, PollError> {
        if self.ports.is_none() || self.polls % self.opts.ports_every == 0 {
            let param = json!({"TYPE": "ether_info,snapshoot"});
            self.ports = Some(self.call(ctx, "homepage", param).await?);
        }
        Ok(self.ports.get_or_insert_with(Ports::default))
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
    }
}
