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
    /// Served over TLS (`https://` URLs).
    tls: bool,
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
        Ok(SimHandle {
            addr,
            switches,
            tls: false,
        })
    }

    /// [`SimHandle::serve`] over TLS with `tls`'s certificate (a device's self-signed one): each
    /// connection is a TLS handshake, then HTTP/1.1 to `app`, until the handle is dropped.
    pub(crate) async fn serve_tls(
        app: Router,
        name: &'static str,
        switches: Arc<Switches<F>>,
        tls: Arc<tokio_rustls::rustls::ServerConfig>,
    ) -> std::io::Result<SimHandle<F>> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let acceptor = tokio_rustls::TlsAcceptor::from(tls);
        let mut stopped = switches.stop.subscribe();
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    a = listener.accept() => a,
                    _ = stopped.wait_for(|stopped| *stopped) => return,
                };
                let Ok((tcp, _)) = accepted else { continue };
                let (acceptor, app) = (acceptor.clone(), app.clone());
                let mut stopped = stopped.clone();
                tokio::spawn(async move {
                    // A client that refuses the certificate ends its own connection here.
                    let Ok(stream) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = hyper::service::service_fn(move |req| {
                        tower::ServiceExt::oneshot(app.clone(), req)
                    });
                    let conn = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
                    tokio::select! {
                        r = conn => if let Err(e) = r {
                            tracing::debug!(error = %e, "{name} simulator: TLS connection ended");
                        },
                        _ = stopped.wait_for(|stopped| *stopped) => {}
                    }
                });
            }
        });
        Ok(SimHandle {
            addr,
            switches,
            tls: true,
        })
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub(crate) fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
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
