//! fleet-sim: device simulators for demo mode, tests and benchmarks.
//!
//! Each simulator is written from the device's API documents alone: it shares no code with the
//! driver it stands in for and depends on no crate of this workspace, so a field the driver
//! misreads cannot pass a test by being misread twice (`tests/architecture.rs` at the workspace
//! root checks it).

mod handle;
pub mod ikuai;
pub mod iot;
pub mod komari;
pub mod openvox;
mod util;
