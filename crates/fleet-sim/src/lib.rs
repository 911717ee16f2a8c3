//! fleet-sim: device simulators for demo mode, tests and benchmarks.
//!
//! Each simulator is written from the device's API documents alone: it shares no code with the
//! driver it stands in for and depends on no crate of this workspace, so a field the driver
//! misreads cannot pass a test by being misread twice (`tests/architecture.rs` at the workspace
//! root checks it).
//!
//! Each simulator is a folder split by concern: `mod.rs` the public handle, `config` the knobs
//! and faults, `server` routes, auth and sessions, `wire` how the device spells values, `world`
//! the simulated entities and the values that move. What every handle repeats (address, URL,
//! stop on drop, latency and fault switches) is `handle`; device-free helpers are `util`.

mod handle;
pub mod ikuai;
pub mod iot;
pub mod komari;
pub mod openvox;
mod util;
