//! fleet-core: everything in fleet-exporter that is the same for every device.
//!
//! It owns the driver contract ([`driver`]: `Driver`, `PollContext`, `PollError`, the kind
//! descriptor), configuration loading and validation ([`config`], with the registry of kinds as
//! a parameter), snapshots and their exposition ([`snapshot`], [`exposition`]), the store of
//! every target's latest answer and health ([`store`]), the per-target pollers ([`scheduler`])
//! and the running configuration with its safe reloads ([`app`]).
//!
//! It may not name a device kind, speak HTTP to a device, or serve HTTP: it depends on no other
//! crate of this workspace and on none of `axum`, `reqwest` or `tokio-tungstenite`. Cargo
//! enforces that; `tests/architecture.rs` at the workspace root checks it.

pub mod app;
pub mod config;
pub mod driver;
pub mod exposition;
pub mod scheduler;
pub mod snapshot;
pub mod store;
pub mod time;
