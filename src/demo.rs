//! `--demo`: simulators of every device kind on loopback, and a config that points at them.

use std::path::Path;

use crate::config::{Config, ConfigError, FileFormat};
use crate::sim::ikuai::{Firmware, IkuaiSim, IkuaiSimConfig};
use crate::sim::iot::{IotSim, IotSimConfig};

/// The running simulators; dropping this stops them.
pub struct Demo {
    ikuai_v3: IkuaiSim,
    ikuai_v4: IkuaiSim,
    iot: IotSim,
}

const DEMO_PASSWORD: &str = "demo-password";
const DEMO_APP_ID: &str = "demo-app";

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
            ..IkuaiSimConfig::default()
        })
        .await?;
        let iot = IotSim::start(IotSimConfig {
            app_id: DEMO_APP_ID.into(),
            app_secret: DEMO_PASSWORD.into(),
            devices: 12,
            rate_limit: Some(20),
            seed: 6,
            ..IotSimConfig::default()
        })
        .await?;
        Ok(Demo {
            ikuai_v3,
            ikuai_v4,
            iot,
        })
    }

    /// The demo's config, parsed like any file so demo mode exercises the real loader.
    pub fn config(&self) -> Result<Config, ConfigError> {
        Config::parse(&self.config_text(), FileFormat::Toml, Path::new("."))
    }

    pub fn config_text(&self) -> String {
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
"#,
            v3 = self.ikuai_v3.url(),
            v4 = self.ikuai_v4.url(),
            iot = self.iot.url(),
            devices = self
                .iot
                .device_nos()
                .iter()
                .map(|d| format!("\"{d}\""))
                .collect::<Vec<_>>()
                .join(", "),
        )
    }
}
