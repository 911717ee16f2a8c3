//! A simulated fleet in a process of its own, for tests that run exporter processes against
//! it (`.ci/e2e-shards`): one simulator per target on loopback, of every kind in turn (iKuai,
//! Komari, OpenVox, IoT), and a config file naming them all.
//!
//! ```sh
//! cargo run --example simulated_fleet -- 30 /tmp/fleet.toml
//! ```
//!
//! It writes the config (renamed into place, so a reader never sees half of it) once every
//! simulator listens, then serves until it is killed.

use std::fmt::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use fleet_sim::ikuai::{IkuaiSim, IkuaiSimConfig};
use fleet_sim::iot::{IotSim, IotSimConfig};
use fleet_sim::komari::{KomariSim, KomariSimConfig};
use fleet_sim::openvox::{OpenvoxSim, OpenvoxSimConfig};

const PASSWORD: &str = "fleet-password";
const APP_ID: &str = "fleet-app";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: simulated_fleet TARGETS CONFIG_FILE";
    let targets: usize = args.next().context(usage)?.parse().context(usage)?;
    let path = PathBuf::from(args.next().context(usage)?);

    let mut config = String::from(
        "# Written by examples/simulated_fleet.rs: one simulator per target.\n\
         [defaults]\ninterval = \"5s\"\ntimeout = \"4s\"\n",
    );
    // What keeps each simulator running: dropping a handle stops its server.
    let mut running: Vec<Box<dyn std::any::Any>> = Vec::with_capacity(targets);
    for i in 0..targets {
        let seed = i as u64 + 1;
        match i % 4 {
            0 => {
                let sim = IkuaiSim::start(IkuaiSimConfig {
                    password: PASSWORD.into(),
                    ..IkuaiSimConfig::fleet_router(i, 4)
                })
                .await?;
                let _ = write!(
                    config,
                    "\n[[targets]]\nname = \"ikuai-{i:02}\"\nkind = \"ikuai\"\nurl = \"{}\"\n\
                     password = \"{PASSWORD}\"\n",
                    sim.url()
                );
                running.push(Box::new(sim));
            }
            1 => {
                let sim = KomariSim::start(KomariSimConfig {
                    nodes: 3,
                    seed,
                    ..KomariSimConfig::default()
                })
                .await?;
                let _ = write!(
                    config,
                    "\n[[targets]]\nname = \"komari-{i:02}\"\nkind = \"komari\"\nurl = \"{}\"\n",
                    sim.url()
                );
                running.push(Box::new(sim));
            }
            2 => {
                let sim = OpenvoxSim::start(OpenvoxSimConfig {
                    password: PASSWORD.into(),
                    // The device waits up to 2 s on purpose; a short wait keeps startup quick.
                    login_delay: Duration::from_millis(100),
                    seed,
                    ..OpenvoxSimConfig::default()
                })
                .await?;
                let _ = write!(
                    config,
                    "\n[[targets]]\nname = \"openvox-{i:02}\"\nkind = \"openvox\"\nurl = \"{}\"\n\
                     password = \"{PASSWORD}\"\n",
                    sim.url()
                );
                running.push(Box::new(sim));
            }
            _ => {
                let sim = IotSim::start(IotSimConfig {
                    app_id: APP_ID.into(),
                    app_secret: PASSWORD.into(),
                    devices: 2,
                    rate_limit: Some(20),
                    seed,
                    ..IotSimConfig::default()
                })
                .await?;
                let devices: Vec<String> = sim
                    .device_nos()
                    .iter()
                    .map(|d| format!("\"{d}\""))
                    .collect();
                let _ = write!(
                    config,
                    "\n[[targets]]\nname = \"iot-{i:02}\"\nkind = \"iot\"\nurl = \"{}\"\n\
                     app_id = \"{APP_ID}\"\napp_secret = \"{PASSWORD}\"\ndevices = [{}]\n\
                     rate_limit = 10\ndevice_interval = \"5s\"\n",
                    sim.url(),
                    devices.join(", ")
                );
                running.push(Box::new(sim));
            }
        }
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, config).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
    eprintln!("{targets} simulators running; config in {}", path.display());
    tokio::signal::ctrl_c().await?;
    drop(running);
    Ok(())
}
