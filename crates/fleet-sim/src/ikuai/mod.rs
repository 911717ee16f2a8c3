//! A simulated iKuai router web API (`/Action/login` + `/Action/call`).
//!
//! Written only from the published API document and the project's notes on
//! real routers, never from the exporter's driver: a field the driver
//! misreads must not pass a test by being misread here the same way.
//!
//! With `quirks` on (the default), every answer carries the real-world oddities
//! listed in the notes (exponent floats, numbers as strings, `"--"`, URL-encoded
//! text, a duplicated client row, a bare `timeout` token, hostile label text),
//! so a driver tested against it has to cope with them. With `quirks` off the
//! same data comes back as clean, well-typed JSON.
//!
//! Values move with wall time (counters only grow, rates and CPU wobble) so a
//! dashboard pointed at the simulator looks alive; everything that identifies
//! something (MACs, IPs, names, base counters) comes from `seed` and the index.
//!
//! This module holds the handle; `config` the knobs, `server` the HTTP side, `wire` how values
//! are spelled and `world` what they are.

mod config;
mod server;
mod token;
mod wire;
mod world;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

pub use config::{Fault, Firmware, IkuaiSimConfig};

use crate::handle::{SimHandle, Switches};
use crate::util::lock;
use server::Shared;

/// Handle on a running simulator; dropping it stops the server.
pub struct IkuaiSim {
    handle: SimHandle<Fault>,
    shared: Arc<Shared>,
    /// The self-signed certificate (PEM) when serving TLS.
    cert_pem: Option<String>,
}

impl IkuaiSim {
    /// Binds `127.0.0.1:0` and serves in a spawned tokio task (over TLS with a fresh
    /// self-signed certificate for `127.0.0.1` and `localhost` when `cfg.tls`).
    pub async fn start(cfg: IkuaiSimConfig) -> std::io::Result<IkuaiSim> {
        let tls = cfg.tls;
        let switches = Switches::new(Fault::None);
        let shared = Arc::new(Shared::new(cfg, Arc::clone(&switches)));
        // Only 4.x firmware has the token API.
        let mut app = server::routes();
        if shared.cfg.firmware == Firmware::V4 {
            app = app.merge(token::routes());
        }
        let app = app.with_state(Arc::clone(&shared));
        if !tls {
            let handle = SimHandle::serve(app, "ikuai", switches).await?;
            return Ok(IkuaiSim {
                handle,
                shared,
                cert_pem: None,
            });
        }
        let (cert_pem, config) = crate::util::self_signed_tls()?;
        let handle = SimHandle::serve_tls(app, "ikuai", switches, config).await?;
        Ok(IkuaiSim {
            handle,
            shared,
            cert_pem: Some(cert_pem),
        })
    }

    /// The router's self-signed certificate (PEM), when it serves TLS.
    pub fn cert_pem(&self) -> Option<&str> {
        self.cert_pem.as_deref()
    }

    /// Token API requests received (refused ones included).
    pub fn token_calls(&self) -> u64 {
        self.shared.token_calls.load(Ordering::SeqCst)
    }

    /// Token API requests for `path` (below `/api/v4.0/`, e.g. `system/disks`), refused ones
    /// included.
    pub fn token_path_calls(&self, path: &str) -> u64 {
        lock(&self.shared.token_path_calls)
            .get(path)
            .copied()
            .unwrap_or(0)
    }

    /// The paths the token API was asked for, sorted.
    pub fn token_paths_asked(&self) -> Vec<String> {
        let mut paths: Vec<String> = lock(&self.shared.token_path_calls)
            .keys()
            .cloned()
            .collect();
        paths.sort();
        paths
    }

    /// Token API requests refused with 401 for a missing or wrong token.
    pub fn token_refusals(&self) -> u64 {
        self.shared.token_refusals.load(Ordering::SeqCst)
    }

    /// From now on the token API answers every authorised request with a 302 to `base_url`
    /// (a proxy or a compromised router trying to collect the token elsewhere).
    pub fn redirect_token_api_to(&self, base_url: &str) {
        *lock(&self.shared.redirect) = Some(base_url.trim_end_matches('/').to_owned());
    }

    pub fn addr(&self) -> SocketAddr {
        self.handle.addr()
    }

    pub fn url(&self) -> String {
        self.handle.url()
    }

    /// Login attempts received, successful or not.
    pub fn logins(&self) -> u64 {
        self.shared.logins.load(Ordering::SeqCst)
    }

    /// `/Action/call` requests received.
    pub fn calls(&self) -> u64 {
        self.shared.calls.load(Ordering::SeqCst)
    }

    /// Highest number of `/Action/call` requests served at once.
    pub fn max_in_flight(&self) -> usize {
        self.shared.in_flight.max()
    }

    /// Every existing `sess_key` becomes invalid now.
    pub fn expire_sessions(&self) {
        lock(&self.shared.sessions).clear();
    }

    /// Moves the simulated clock `d` ahead, as if that much time had passed: values, counters
    /// and timestamps answer as they would `d` later. For benchmarks that poll back to back but
    /// must see what a real poll interval apart sees.
    pub fn skip_clock(&self, d: Duration) {
        self.shared.clock.skip(d);
    }

    /// Added to every `/Action/call` answer.
    pub fn set_latency(&self, d: Duration) {
        self.handle.set_latency(d);
    }

    pub fn set_fault(&self, f: Fault) {
        self.handle.set_fault(f);
    }

    /// Pulls (`false`) or plugs back (`true`) the cable of physical port `port` (`veth1` is
    /// lan1's, `veth4` wan1's, `veth<k+3>` wan k's).
    pub fn set_port_link(&self, port: &str, up: bool) {
        let mut unplugged = lock(&self.shared.unplugged);
        unplugged.retain(|p| p != port);
        if !up {
            unplugged.push(port.to_owned());
        }
    }

    /// Clients keep their identity by index, so lowering `n` drops the last ones.
    pub fn set_lan_clients(&self, n: usize) {
        self.shared.lan_clients.store(n, Ordering::SeqCst);
    }

    /// MACs of the current IPv4 clients, in order (without the duplicated row).
    pub fn client_macs(&self) -> Vec<String> {
        let n = self.shared.lan_clients.load(Ordering::SeqCst);
        (0..n)
            .map(|i| wire::fmt_mac(world::client_mac(self.shared.cfg.seed, i)))
            .collect()
    }
}
