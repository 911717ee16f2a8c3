//! The fleet-exporter binary's library half: what integration tests and benchmarks drive.
//!
//! It serves what the core holds: the HTTP endpoints ([`server`], with service discovery in
//! `sd` and the exporter's own series in [`self_metrics`]), TLS and basic auth in front of them
//! and the one serve path for plain and TLS listeners ([`web`]), demo mode ([`demo`], feature
//! `demo`) and the allocator settings
//! ([`allocator`]). The device-neutral core is `fleet-core`, the drivers are `fleet-drivers`
//! (whose `KINDS` is the registry handed to the core), the simulators are `fleet-sim`.

pub mod allocator;
#[cfg(feature = "demo")]
pub mod demo;
mod sd;
pub mod self_metrics;
pub mod server;
pub mod web;
