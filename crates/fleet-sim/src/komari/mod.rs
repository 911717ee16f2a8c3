//! A simulated Komari server: `GET /api/version`, `/api/public`, `/api/me`, `/api/nodes`,
//! `/api/records/ping`, `POST /api/login`, and the request/reply WebSocket `GET /api/clients`.
//!
//! Written only from the Komari API document and the project's notes on real servers, never from
//! the exporter's driver. What it models from the notes: the WebSocket never pushes and answers
//! `get` / `get <uuid>`; the last report of offline nodes is kept and online state comes only
//! from the `online` list; upgrades without an `Origin` header are refused with 403; a private
//! site answers 401 to everything but `/api/version` unless given a Bearer API key or a
//! `session_token` cookie from `POST /api/login`; ping records use `-1` for a lost probe; node
//! fields come in three time formats, and older servers leave newer fields out. From 1.0.7 on
//! (`version`) it also answers JSON-RPC 2.0 at `POST /api/rpc2` (`rpc`).
//!
//! Values move with wall time (traffic totals only grow, CPU and rates wobble); identities
//! (uuids, names, regions) come from `seed` and the node's index.

//!
//! This module holds the handle; `config` the knobs, `server` the HTTP side, `socket` the
//! WebSocket half, `wire` how values are spelled, `world` what they are and `hostile` the
//! answers built to amplify.

mod config;
mod hostile;
mod rpc;
mod server;
mod socket;
mod wire;
mod world;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

pub use config::{Fault, KomariSimConfig, WsFault};

use axum::routing::{get, post};

use crate::handle::{SimHandle, Switches};
use crate::util::lock;
use server::Shared;

/// Handle on a running simulator; dropping it stops the server and its WebSocket connections.
pub struct KomariSim {
    handle: SimHandle<Fault>,
    shared: Arc<Shared>,
}

impl KomariSim {
    /// Binds `127.0.0.1:0` and serves in a spawned tokio task.
    pub async fn start(cfg: KomariSimConfig) -> std::io::Result<KomariSim> {
        let switches = Switches::new(Fault::None);
        let shared = Arc::new(Shared::new(cfg, Arc::clone(&switches)));
        let mut routes = server::routes().route("/api/clients", get(socket::upgrade));
        if rpc::release(&shared.cfg.version) >= rpc::SINCE {
            routes = routes.route("/api/rpc2", post(rpc::call));
        }
        let routes = routes.fallback(server::not_found);
        let handle =
            SimHandle::serve(routes.with_state(Arc::clone(&shared)), "komari", switches).await?;
        Ok(KomariSim { handle, shared })
    }

    pub fn addr(&self) -> SocketAddr {
        self.handle.addr()
    }

    /// Moves the simulated clock `d` ahead, as if that much time had passed: values, counters
    /// and timestamps answer as they would `d` later. For benchmarks that poll back to back but
    /// must see what a real poll interval apart sees.
    pub fn skip_clock(&self, d: Duration) {
        self.shared.clock.skip(d);
    }

    pub fn url(&self) -> String {
        self.handle.url()
    }

    /// `POST /api/login` requests, successful or not.
    pub fn logins(&self) -> u64 {
        self.shared.counters.logins.load(Ordering::SeqCst)
    }

    /// WebSocket upgrades accepted.
    pub fn ws_connects(&self) -> u64 {
        self.shared.counters.ws_connects.load(Ordering::SeqCst)
    }

    /// WebSocket upgrades refused (401, 403, 502).
    pub fn ws_refused(&self) -> u64 {
        self.shared.counters.ws_refused.load(Ordering::SeqCst)
    }

    /// Text frames received on WebSockets (`get` and anything else).
    pub fn ws_requests(&self) -> u64 {
        self.shared.counters.ws_requests.load(Ordering::SeqCst)
    }

    /// WebSocket connections open now.
    pub fn ws_open(&self) -> usize {
        self.shared.counters.ws_open.load(Ordering::SeqCst)
    }

    /// `GET /api/nodes` requests.
    pub fn node_list_requests(&self) -> u64 {
        self.shared.counters.nodes.load(Ordering::SeqCst)
    }

    /// `GET /api/records/ping` requests.
    pub fn ping_requests(&self) -> u64 {
        self.shared.counters.ping.load(Ordering::SeqCst)
    }

    /// Requests for paths the server does not have (answered 404), such as `/api/rpc2` before
    /// 1.0.7.
    pub fn not_found(&self) -> u64 {
        self.shared.counters.not_found.load(Ordering::SeqCst)
    }

    /// `POST /api/rpc2` requests (a batch is one).
    pub fn rpc_requests(&self) -> u64 {
        self.shared.counters.rpc.load(Ordering::SeqCst)
    }

    /// Requests answered 401 because the site is private and no credential was valid.
    pub fn unauthorized(&self) -> u64 {
        self.shared.counters.unauthorized.load(Ordering::SeqCst)
    }

    /// Every existing `session_token` becomes invalid now.
    pub fn expire_sessions(&self) {
        lock(&self.shared.sessions).clear();
    }

    /// Closes every open WebSocket with a close frame, as a restarting server or proxy does.
    pub fn drop_connections(&self) {
        self.shared.drop_tx.send_modify(|g| *g += 1);
    }

    /// Added to every HTTP answer and WebSocket reply.
    pub fn set_latency(&self, d: Duration) {
        self.handle.set_latency(d);
    }

    pub fn set_fault(&self, f: Fault) {
        hostile::prepare(f);
        self.handle.set_fault(f);
    }

    pub fn set_ws_fault(&self, f: WsFault) {
        *lock(&self.shared.ws_fault) = f;
    }

    /// Nodes keep their identity by index, so lowering `n` deletes the last ones.
    pub fn set_nodes(&self, n: usize) {
        self.shared.nodes.store(n, Ordering::SeqCst);
    }

    /// The last `n` nodes are offline from now on.
    pub fn set_offline(&self, n: usize) {
        self.shared.offline.store(n, Ordering::SeqCst);
    }

    /// The uuid of node `i`.
    pub fn uuid(&self, i: usize) -> String {
        world::node_uuid(self.shared.cfg.seed, i)
    }
}
