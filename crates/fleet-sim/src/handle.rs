//! What every simulator's handle repeats: the bound address and its URL, the stop that ends the
//! server when the handle is dropped, and the two switches every simulator has, latency and
//! fault. Nothing here knows a device; each simulator's `Fault` enum is the type parameter.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use tokio::sync::watch;

use crate::util::lock;

/// The switches a test flips while the simulator runs, shared with its handlers.
pub(crate) struct Switches<F> {
    latency: Mutex<Duration>,
    fault: Mutex<F>,
    /// Turns true when the handle is dropped; hung handlers and open sockets watch it.
    stop: watch::Sender<bool>,
}

impl<F: Copy> Switches<F> {
    /// No latency, `no_fault` in force, not stopped.
    pub(crate) fn new(no_fault: F) -> Arc<Switches<F>> {
        Arc::new(Switches {
            latency: Mutex::new(Duration::ZERO),
            fault: Mutex::new(no_fault),
            stop: watch::channel(false).0,
        })
    }

    pub(crate) fn fault(&self) -> F {
        *lock(&self.fault)
    }

    /// Waits the latency set by [`SimHandle::set_latency`], if any.
    pub(crate) async fn delay(&self) {
        let latency = *lock(&self.latency);
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
    }

    /// Resolves once the simulator stops. A hung device waits for this rather than forever, so
    /// connection tasks do not outlive the simulator.
    pub(crate) async fn stopped(&self) {
        let _ = self.stop.subscribe().wait_for(|stopped| *stopped).await;
    }
}

/// A running simulator's server; dropping it stops the server.
pub(crate) struct SimHandle<F> {
    addr: SocketAddr,
    switches: Arc<Switches<F>>,
}

impl<F: Copy> SimHandle<F> {
    /// Binds `127.0.0.1:0` and serves `app` in a spawned tokio task until the handle is dropped,
    /// so a simulator never outlives its handle.
    pub(crate) async fn serve(
        app: Router,
        name: &'static str,
        switches: Arc<Switches<F>>,
    ) -> std::io::Result<SimHandle<F>> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let mut stopped = switches.stop.subscribe();
        tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.wait_for(|stopped| *stopped).await;
            };
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
            {
                tracing::warn!(error = %e, "{name} simulator stopped with an error");
            }
        });
        Ok(SimHandle { addr, switches })
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub(crate) fn set_latency(&self, d: Duration) {
        *lock(&self.switches.latency) = d;
    }

    pub(crate) fn set_fault(&self, f: F) {
        *lock(&self.switches.fault) = f;
    }
}

impl<F> Drop for SimHandle<F> {
    fn drop(&mut self) {
        // `send_replace`, not `send`: the value must turn true even with no receiver left.
        self.switches.stop.send_replace(true);
    }
}
