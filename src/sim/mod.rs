//! Device simulators: demo mode, tests and benchmarks share them. Each is written from the API
//! documents alone and never imports the driver it stands in for.

pub mod ikuai;
pub mod iot;
pub mod komari;
pub mod openvox;
mod util;
