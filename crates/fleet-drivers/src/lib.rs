//! fleet-drivers: one folder per device kind, each turning a device's answers into snapshots.
//!
//! A driver owns its client (the device's API calls and session), its wire types (the answers as
//! the device sends them, read leniently) and its mapping (pure functions from typed answers to
//! samples). [`util`] holds what the drivers share. [`KINDS`] is the registry the binary hands
//! to the core.
//!
//! A driver knows nothing of serving: of this workspace's crates it depends on `fleet-core`
//! only, and never on `axum` or on the simulators, not even for its tests
//! (`tests/architecture.rs` at the workspace root checks it).

use fleet_core::driver::Kind;

pub mod ikuai;
pub mod iot;
pub mod komari;
pub mod openvox;
pub mod util;

/// Every device kind, by the name used in `kind = "..."`.
pub static KINDS: &[Kind] = &[ikuai::KIND, iot::KIND, komari::KIND, openvox::KIND];

/// The kind named `name` in [`KINDS`].
pub fn kind(name: &str) -> Option<&'static Kind> {
    KINDS.iter().find(|k| k.name == name)
}
