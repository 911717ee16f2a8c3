//! A simulated IoT agent platform open API (`POST /openapi/iot/queryDeviceFlow`).
//!
//! Written only from the published API document (`iot-platform-api.md`) and the project's notes
//! on the platform, never from the exporter's driver. What it checks, like the platform:
//! every request carries `appID`, `apiVersion` (`2.0.0`), `traceID` (32 lowercase hex, never
//! reused), `timestamp` (10-digit Unix seconds, at most 10 minutes off the platform's clock) and
//! `sign = md5(appID + apiVersion + traceID + timestamp + secret)` as headers; the body is
//! form-urlencoded `deviceNo=...`. Answers are `{"code","message","data","timestamp","traceID"}`
//! with `code == 0` on success.
//!
//! The platform's error codes are not published; these are invented and only their being
//! non-zero matters: 1001 unknown `appID`, 1002 bad signature, 1003 timestamp out of range,
//! 1004 bad or reused `traceID`, 1005 unsupported `apiVersion`, 1000 missing parameter,
//! 2001 unknown device. Over the rate limit the answer is HTTP 429.
//!
//! With `quirks` on (the default) some devices carry the oddities an exporter must survive:
//! numbers as strings, `null` in place of objects, no SIM cards at all, and status codes no
//! document lists. Values move with wall time: usage grows, signal and battery wander.
//!
//! The batch card calls and the account-assets call exist but their paths are not published:
//! `cards` serves them at invented paths (see there), for clients configured with them.
//!
//! This module holds the handle; `config` the knobs, `server` the HTTP side and its checks,
//! `wire` the envelope and encodings, `world` the devices and their cards, `cards` the card
//! and account calls.

mod cards;
mod config;
mod server;
mod wire;
mod world;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

pub use cards::{
    ACCOUNT_ASSETS_PATH, CARD_INFO_PATH, CARD_MONTH_PATH, CARD_STATUS_PATH, CARD_USAGE_PATH,
};
pub use config::{Fault, IotSimConfig};

use crate::handle::{SimHandle, Switches};
use server::Shared;

/// The one API path the platform serves.
pub const DEVICE_FLOW_PATH: &str = "/openapi/iot/queryDeviceFlow";

/// Handle on a running simulator; dropping it stops the server.
pub struct IotSim {
    handle: SimHandle<Fault>,
    shared: Arc<Shared>,
}

impl IotSim {
    /// Binds `127.0.0.1:0` and serves in a spawned tokio task.
    pub async fn start(cfg: IotSimConfig) -> std::io::Result<IotSim> {
        let switches = Switches::new(Fault::None);
        let shared = Arc::new(Shared::new(cfg, Arc::clone(&switches)));
        let handle = SimHandle::serve(server::router(Arc::clone(&shared)), "iot", switches).await?;
        Ok(IotSim { handle, shared })
    }

    pub fn addr(&self) -> SocketAddr {
        self.handle.addr()
    }

    pub fn url(&self) -> String {
        self.handle.url()
    }

    /// The number of device `i` (any `i`, also beyond the fleet: an unknown device).
    pub fn device_no(i: usize) -> String {
        world::device_no(i)
    }

    /// Every device number the account holds.
    pub fn device_nos(&self) -> Vec<String> {
        (0..self.shared.cfg.devices).map(Self::device_no).collect()
    }

    /// The ICCIDs of device `i`'s cards, main slot first (empty for a device without cards).
    pub fn iccids(&self, i: usize) -> Vec<String> {
        (0..world::sim_count(&self.shared.cfg, i))
            .map(|k| world::iccid(i, k))
            .collect()
    }

    /// The clear-text Wi-Fi and web admin passwords of device `i`, which the platform sends and
    /// an exporter must never show.
    pub fn passwords(&self, i: usize) -> [String; 2] {
        [
            world::wifi_password(self.shared.cfg.seed, i),
            world::web_password(i),
        ]
    }

    /// The ICCID of loose card `i` (a card in no device; `loose_cards` of them).
    pub fn loose_iccid(i: usize) -> String {
        cards::loose_iccid(i)
    }

    /// Sets the money on and owed by a card (`balance`, `arrearsBalance`), in every answer.
    pub fn set_card_money(&self, iccid: &str, balance: f64, arrears: f64) {
        crate::util::lock(&self.shared.money).insert(iccid.to_owned(), (balance, arrears));
    }

    /// The balance the account-assets call reports.
    pub fn set_account_balance(&self, balance: f64) {
        *crate::util::lock(&self.shared.account_balance) = balance;
    }

    /// Requests received on one API path (`CARD_INFO_PATH`, ...).
    pub fn requests_to(&self, path: &str) -> u64 {
        crate::util::lock(&self.shared.per_path)
            .get(path)
            .copied()
            .unwrap_or(0)
    }

    /// Requests received on the API paths, whatever became of them.
    pub fn requests(&self) -> u64 {
        self.shared.requests.load(Ordering::SeqCst)
    }

    /// Requests answered with `code == 0`.
    pub fn answered_ok(&self) -> u64 {
        self.shared.answered_ok.load(Ordering::SeqCst)
    }

    /// Requests refused for their signature headers (app ID, sign, timestamp, traceID, version).
    pub fn rejected_auth(&self) -> u64 {
        self.shared.rejected_auth.load(Ordering::SeqCst)
    }

    /// Requests answered with HTTP 429 because they exceeded the rate limit.
    pub fn rate_limited(&self) -> u64 {
        self.shared.rate_limited.load(Ordering::SeqCst)
    }

    /// Requests that asked for device `i`.
    pub fn device_requests(&self, i: usize) -> u64 {
        self.shared
            .per_device
            .get(i)
            .map_or(0, |n| n.load(Ordering::SeqCst))
    }

    /// The most requests that arrived within any one second, as measured here.
    pub fn max_requests_per_second(&self) -> usize {
        self.shared.max_per_second.load(Ordering::SeqCst)
    }

    /// Highest number of requests served at once.
    pub fn max_in_flight(&self) -> usize {
        self.shared.in_flight.max()
    }

    /// Added to every answer.
    pub fn set_latency(&self, d: Duration) {
        self.handle.set_latency(d);
    }

    pub fn set_fault(&self, f: Fault) {
        self.handle.set_fault(f);
    }

    /// Moves the platform's clock `secs` ahead of this machine's (negative: behind), as when
    /// the exporter's host clock is off.
    pub fn set_clock_offset(&self, secs: i64) {
        self.shared.clock_offset.store(secs, Ordering::SeqCst);
    }
}
