//! `--demo`: simulators of every device kind on loopback, and a config that points at them.

use std::path::Path;
use std::time::Duration;

use fleet_core::config::{Config, ConfigError, FileFormat};
use fleet_sim::ikuai::{Firmware, IkuaiSim, IkuaiSimConfig};
use fleet_sim::iot::{IotSim, IotSimConfig};
use fleet_sim::komari::{KomariSim, KomariSimConfig};
use fleet_sim::openvox::{OpenvoxSim, OpenvoxSimConfig};

/// The running simulators; dropping this stops them.
pub struct Demo {
    ikuai_v3: IkuaiSim,
    ikuai_v4: IkuaiSim,
    ikuai_token: IkuaiSim,
    komari_public: KomariSim,
    komari_private: KomariSim,
    openvox: OpenvoxSim,
    iot: IotSim,
}

const DEMO_PASSWORD: &str = "demo-password";
const DEMO_APP_ID: &str = "demo-app";
/// The token API router's bearer token (32 hex characters, as the web UI makes them).
const DEMO_TOKEN: &str = "0123456789abcdef0123456789abcdef";

impl Demo {
    pub async fn start() -> std::io::Result<Demo> {
        let ikuai_v3 = IkuaiSim::start(IkuaiSimConfig {
            password: DEMO_PASSWORD.into(),
            firmware: Firmware::V3,
            lan_clients: 60,
            lan_clients_v6: 4,
            hostname: "branch-office".into(),
            seed: 3,
            ..IkuaiSimConfig::default()
        })
        .await?;
        let ikuai_v4 = IkuaiSim::start(IkuaiSimConfig {
            password: DEMO_PASSWORD.into(),
            firmware: Firmware::V4,
            lan_clients: 12,
            lan_clients_v6: 0,
            hostname: "hq-gateway".into(),
            seed: 4,
            update_available: true,
            ..IkuaiSimConfig::default()
        })
        .await?;
        // A 4.x router polled over its token API, with its self-signed certificate.
        let ikuai_token = IkuaiSim::start(IkuaiSimConfig {
            password: DEMO_PASSWORD.into(),
            firmware: Firmware::V4,
            lan_clients: 25,
            lan_clients_v6: 3,
            hostname: "warehouse".into(),
            seed: 7,
            token: Some(DEMO_TOKEN.into()),
            tls: true,
            ..IkuaiSimConfig::default()
        })
        .await?;
        // A public status page with GPUs, ping tasks and a lossy node, and a private one that
        // needs the password login.
        // The public one is a current server (JSON-RPC with ping percentiles, an agent
        // reporting an error, a long-term node); the private one predates JSON-RPC.
        let komari_public = KomariSim::start(KomariSimConfig {
            nodes: 12,
            offline: 2,
            ping_tasks: 3,
            lossy_node: Some(2),
            seed: 5,
            version: "1.2.6".into(),
            agent_error_node: Some(1),
            forever_node: Some(4),
            ..KomariSimConfig::default()
        })
        .await?;
        let komari_private = KomariSim::start(KomariSimConfig {
            nodes: 4,
            offline: 1,
            ping_tasks: 1,
            lossy_node: None,
            private: true,
            password: DEMO_PASSWORD.into(),
            seed: 6,
            version: "1.0.6".into(),
            ..KomariSimConfig::default()
        })
        .await?;
        let openvox = OpenvoxSim::start(OpenvoxSimConfig {
            password: DEMO_PASSWORD.into(),
            // The device waits up to 2 s; a shorter wait keeps the first data within seconds.
            login_delay: Duration::from_millis(300),
            cdr_every: Some(Duration::from_secs(4)),
            seed: 5,
            ..OpenvoxSimConfig::default()
        })
        .await?;
        // A few finished calls in the stored log (`openvox_cdr_log_records`); the counters count
        // the calls that end after the first poll, one every 4 s.
        for (disposition, billsec) in [("ANSWERED", 63), ("NO ANSWER", 0), ("BUSY", 0)] {
            openvox.add_cdr(disposition, billsec);
        }
        let iot = IotSim::start(IotSimConfig {
            app_id: DEMO_APP_ID.into(),
            app_secret: DEMO_PASSWORD.into(),
            devices: 12,
            loose_cards: 4,
            rate_limit: Some(20),
            seed: 6,
            ..IotSimConfig::default()
        })
        .await?;
        Ok(Demo {
            ikuai_v3,
            ikuai_v4,
            ikuai_token,
            komari_public,
            komari_private,
            openvox,
            iot,
        })
    }

    /// The demo's config, parsed like any file so demo mode exercises the real loader.
    pub fn config(&self) -> Result<Config, ConfigError> {
        Config::parse(
            &self.config_text(),
            FileFormat::Toml,
            Path::new("."),
            fleet_drivers::KINDS,
        )
    }

    pub fn config_text(&self) -> String {
        let devices: Vec<String> = self
            .iot
            .device_nos()
            .iter()
            .map(|d| format!("\"{d}\""))
            .collect();
        let loose_cards: Vec<String> = (0..4).map(IotSim::loose_iccid).collect();
        format!(
            r#"
[defaults]
interval = "5s"
timeout = "4s"

[[targets]]
name = "demo-ikuai-v3"
kind = "ikuai"
url = "{v3}"
password = "{DEMO_PASSWORD}"

[[targets]]
name = "demo-ikuai-v4"
kind = "ikuai"
url = "{v4}"
password = "{DEMO_PASSWORD}"

# The 4.x token API: no login; the simulator, like a router, has a self-signed certificate.
[[targets]]
name = "demo-ikuai-token"
kind = "ikuai"
url = "{token_api}"
api = "token"
token = "{DEMO_TOKEN}"
tls_insecure_skip_verify = true
page_size = 10

[[targets]]
name = "demo-komari"
kind = "komari"
url = "{komari_public}"
# GPU details and agent messages come only over the WebSocket; percentiles over a day.
websocket_detail = true
ping_stats_hours = 24

[[targets]]
name = "demo-komari-private"
kind = "komari"
url = "{komari_private}"
username = "admin"
password = "{DEMO_PASSWORD}"
# The simulators listen on plain http://; real servers belong behind https://.
allow_insecure_auth = true

[[targets]]
name = "demo-openvox"
kind = "openvox"
url = "{openvox}"
password = "{DEMO_PASSWORD}"
cdr = true

# The platform's default pace (2 requests/s, each device every 5 minutes) is for real fleets;
# the demo asks its twelve devices on every poll so data appears at once.
[[targets]]
name = "demo-iot"
kind = "iot"
url = "{iot}"
app_id = "{DEMO_APP_ID}"
app_secret = "{DEMO_PASSWORD}"
devices = [{devices}]
rate_limit = 10
device_interval = "5s"
export_location = true
# The simulator's reading of effectiveSim; a real platform's is not published.
effective_sim_slots = {{ 1 = "main", 2 = "vice1", 3 = "vice2" }}
# Cards in no device, through the batch card calls at the simulator's (invented) paths.
{card_calls}"#,
            v3 = self.ikuai_v3.url(),
            v4 = self.ikuai_v4.url(),
            token_api = self.ikuai_token.url(),
            komari_public = self.komari_public.url(),
            komari_private = self.komari_private.url(),
            openvox = self.openvox.url(),
            iot = self.iot.url(),
            devices = devices.join(", "),
            card_calls = iot_card_calls(&loose_cards),
        )
    }
}

/// An IoT target's `cards`, batch card calls (information and status) and account-assets
/// call, at the IoT simulator's paths and with its field names: the simulator invents them
/// (the platform does not publish its own), so a config must name them, as for a real one.
pub fn iot_card_calls(cards: &[String]) -> String {
    let list: Vec<String> = cards.iter().map(|c| format!("\"{c}\"")).collect();
    format!(
        r#"cards = [{list}]

[[targets.card_calls]]
name = "cardInfo"
path = "{info}"
batch_size = 100
list = "list"
fields = {{ data_limit = "totalFlow", data_used = "useFlow", balance = "balance", arrears_balance = "arrearsBalance", plan_expiry = "endAt", status = ["simStatus"] }}

[[targets.card_calls]]
name = "cardStatus"
path = "{status}"
batch_size = 10
list = "list"
fields = {{ status = ["onlineStatus"] }}

[[targets.card_calls]]
name = "cardMonthFlow"
path = "{month}"
batch_size = 10
list = "list"
params = {{ month = "{{year}}-{{month}}" }}
fields = {{ month_used = "useFlow" }}

[targets.account_assets]
path = "{assets}"
balance = "balance"
"#,
        list = list.join(", "),
        info = fleet_sim::iot::CARD_INFO_PATH,
        status = fleet_sim::iot::CARD_STATUS_PATH,
        month = fleet_sim::iot::CARD_MONTH_PATH,
        assets = fleet_sim::iot::ACCOUNT_ASSETS_PATH,
    )
}
