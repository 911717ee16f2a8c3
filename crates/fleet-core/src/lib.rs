//! fleet-core: everything in fleet-exporter that is the same for every device.
//!
//! It owns the driver contract ([`driver`]: `Driver`, `PollContext`, `PollError`, the kind
//! descriptor; [`target`]: `TargetSpec` and `Secret`), configuration loading and validation
//! ([`config`], with the registry of kinds as a parameter), snapshots and their exposition
//! ([`snapshot`], [`exposition`], joined gzip streams in [`gzip`]), the store of every target's
//! latest answer and health ([`store`]), the per-target pollers ([`scheduler`]), the share of the
//! targets a replica polls ([`shard`]), the running configuration with its safe reloads
//! ([`app`]), the stable hash of a target's name ([`hash`]) and wall-clock helpers ([`time`]).
//!
//! It may not name a device kind, speak HTTP to a device, or serve HTTP: its manifest names no
//! other crate of this workspace and none of `axum`, `reqwest` or `tokio-tungstenite`, and
//! `tests/architecture.rs` at the workspace root fails if any of them creeps in, even
//! indirectly.

pub mod app;
pub mod config;
pub mod driver;
pub mod exposition;
pub mod gzip;
pub mod hash;
pub mod scheduler;
pub mod shard;
pub mod snapshot;
pub mod store;
pub mod target;
pub mod time;
