//! fleet-exporter: polls iKuai routers, Komari monitors, OpenVox VoIP gateways and IoT SIM
//! devices on schedules, and serves what they report to Prometheus.
//!
//! The core (`config`, `scheduler`, `store`, `snapshot`, `exposition`, `server`, `app`) knows
//! no device; each device kind lives in `drivers/<kind>/` with a simulator in `sim/`. `web` puts
//! optional TLS and basic auth in front of `server`.

pub mod allocator;
pub mod app;
pub mod config;
pub mod demo;
pub mod drivers;
pub mod exposition;
pub mod scheduler;
pub mod server;
pub mod sim;
pub mod snapshot;
pub mod store;
pub mod web;
