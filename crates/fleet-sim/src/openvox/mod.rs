//! A simulated OpenVox IAD analog VoIP gateway (iAG800 family): `POST /controller/<class>/<fn>`
//! with a JSON body, a token from `auth/login` inside every later body, and the envelope
//! `{"uri":..,"msg":..,"code":200,"data":..}`.
//!
//! Written only from the published API document and the project's notes on real gateways, never
//! from the exporter's driver. What the device does, the simulator does: logins (and the
//! whitelisted `device_info`/`oem_web` calls) wait a random delay, tokens expire, `dahdi_*`,
//! `sip_register` and `voltage` are JSON documents inside strings, numbers come as strings in
//! `device_info`, and an empty `data` is `[]`. The code the device sends for an expired token is
//! not published; this one answers 401 (any code but 200 must make a client log in again).
//!
//! Ports: channels `1..=fxo_ports` are FXO ports (PSTN lines, `FXS..` signalling), the next
//! `fxs_ports` are FXS ports (phones, `FXO..` signalling), like the document's iAG800 V2-4S4O.
//! The first FXO and the first two FXS ports are in use, the third FXO port is in RED alarm and
//! the first FXS port is off-hook. Values (CPU, memory, voltages, SIP expiry) move with time; CDR
//! records arrive every `cdr_every` and on [`OpenvoxSim::add_cdr`]. `sys_option/datetime_get`,
//! `general/apply_get` and `sys_info/package` report the clock (which a test can run off the
//! host's), NTP, configuration not yet applied and installed packages. With `spans > 1` every
//! span numbers its ports from 1, so port numbers repeat across spans.
//!
//! This module holds the handle; `config` the knobs, `server` the HTTP side, `wire` the
//! envelope, `world` the gateway's ports and values, `settings` its clock, pending
//! configuration and packages, and `cdr` its call log.

mod cdr;
mod config;
mod server;
mod settings;
mod wire;
mod world;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

pub use cdr::CdrTotals;
pub use config::{Fault, OpenvoxSimConfig, DISPOSITIONS};

use crate::handle::{SimHandle, Switches};
use crate::util::lock;
use server::Shared;

/// Handle on a running simulator; dropping it stops the server.
pub struct OpenvoxSim {
    handle: SimHandle<Fault>,
    shared: Arc<Shared>,
}

impl OpenvoxSim {
    /// Binds `127.0.0.1:0` and serves in a spawned tokio task.
    pub async fn start(cfg: OpenvoxSimConfig) -> std::io::Result<OpenvoxSim> {
        let switches = Switches::new(Fault::None);
        let shared = Arc::new(Shared::new(cfg, Arc::clone(&switches)));
        let handle =
            SimHandle::serve(server::router(Arc::clone(&shared)), "openvox", switches).await?;
        Ok(OpenvoxSim { handle, shared })
    }

    pub fn addr(&self) -> SocketAddr {
        self.handle.addr()
    }

    pub fn url(&self) -> String {
        self.handle.url()
    }

    /// `auth/login` requests received, successful or not.
    pub fn logins(&self) -> u64 {
        self.shared.logins.load(Ordering::SeqCst)
    }

    /// Every `/controller/...` request received, logins included.
    pub fn requests(&self) -> u64 {
        self.shared.requests.load(Ordering::SeqCst)
    }

    /// Requests received for one path (`sys_info/cdr`).
    pub fn requests_to(&self, path: &str) -> u64 {
        lock(&self.shared.per_path).get(path).copied().unwrap_or(0)
    }

    /// Highest number of requests served at once.
    pub fn max_in_flight(&self) -> usize {
        self.shared.in_flight.max()
    }

    /// Every token issued so far stops working now.
    pub fn expire_tokens(&self) {
        lock(&self.shared.tokens).clear();
    }

    /// Added to every answer but logins'.
    pub fn set_latency(&self, d: Duration) {
        self.handle.set_latency(d);
    }

    pub fn set_login_delay(&self, d: Duration) {
        *lock(&self.shared.login_delay) = d;
    }

    /// A fault for every call but `auth/login`.
    pub fn set_fault(&self, f: Fault) {
        self.handle.set_fault(f);
    }

    /// A fault for one path only (`sys_info/cdr`); [`Fault::None`] clears it.
    pub fn set_path_fault(&self, path: &str, f: Fault) {
        let mut faults = lock(&self.shared.path_faults);
        if f == Fault::None {
            faults.remove(path);
        } else {
            faults.insert(path.to_owned(), f);
        }
    }

    /// Logins answer `code` 200 without a token.
    pub fn set_login_without_token(&self, on: bool) {
        self.shared.login_without_token.store(on, Ordering::SeqCst);
    }

    /// The interface board stops updating its uptime, which marks it absent.
    pub fn set_board_stale(&self, on: bool) {
        self.shared.gateway.board_stale.store(on, Ordering::SeqCst);
    }

    /// Hook state of a port (`channel` counts from 1 across FXO then FXS ports).
    pub fn set_offhook(&self, channel: usize, offhook: bool) {
        if let Some(p) = lock(&self.shared.gateway.ports).get_mut(channel.wrapping_sub(1)) {
            p.offhook = offhook;
        }
    }

    /// Alarm word of a port (`RED`, ...), or none.
    pub fn set_alarm(&self, channel: usize, alarm: Option<&str>) {
        if let Some(p) = lock(&self.shared.gateway.ports).get_mut(channel.wrapping_sub(1)) {
            p.alarm = alarm.map(str::to_owned);
        }
    }

    /// Replaces the moving text of a SIP registration with a fixed one (`"Auth. Sent"`), or adds
    /// an account.
    pub fn set_sip_state(&self, account: &str, raw: &str) {
        lock(&self.shared.gateway.sip).insert(account.to_owned(), raw.to_owned());
    }

    /// Changes how often CDR records arrive, counting from now.
    pub fn set_cdr_every(&self, every: Option<Duration>) {
        lock(&self.shared.cdr).reschedule(self.shared.cfg.seed, every);
    }

    /// Appends a finished call ending now; `billsec` counts only for `ANSWERED`.
    pub fn add_cdr(&self, disposition: &str, billsec: u64) {
        lock(&self.shared.cdr).add(self.shared.cfg.seed, disposition, billsec);
    }

    /// Every CDR record created so far (including ones the device log has dropped).
    pub fn cdr_totals(&self) -> CdrTotals {
        lock(&self.shared.cdr).totals(self.shared.cfg.seed)
    }

    /// Runs the gateway's clock this many seconds ahead of the host's (negative: behind).
    pub fn set_clock_ahead(&self, secs: i64) {
        *lock(&self.shared.gateway.settings.clock_ahead) = secs;
    }

    /// NTP synchronisation on or off, as `sys_option/datetime_get` reports it.
    pub fn set_ntp(&self, enabled: bool) {
        *lock(&self.shared.gateway.settings.ntp_enabled) = enabled;
    }

    /// Configuration saved but not applied, per scope (`network`, `voip`); other scopes are
    /// not the device's and change nothing.
    pub fn set_unapplied(&self, scope: &str, pending: bool) {
        let mut scopes = lock(&self.shared.gateway.settings.unapplied);
        for known in ["network", "voip"] {
            if known == scope {
                scopes.insert(known, pending);
            }
        }
    }

    /// Installs (or, with `None`, removes) an optional package.
    pub fn set_package(&self, name: &str, version: Option<&str>) {
        let mut packages = lock(&self.shared.gateway.settings.packages);
        match version {
            Some(v) => packages.insert(name.to_owned(), v.to_owned()),
            None => packages.remove(name),
        };
    }

    /// The serial number `sys_info/oem` reports.
    pub fn serial(&self) -> String {
        world::serial(self.shared.cfg.seed)
    }
}
