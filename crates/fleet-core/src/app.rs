//! Owns the running configuration: one poller per target, and safe reloads that validate first
//! and restart only the pollers whose target changed.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::Mutex;
use tracing::{error, info};

use crate::config::{Config, ConfigError, Source, TargetSpec};
use crate::driver::Registry;
use crate::scheduler::Poller;
use crate::snapshot::{Family, SnapshotBuilder};
use crate::store::Store;
use crate::time::unix_seconds;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The source revision, when the build sets `FLEET_EXPORTER_REVISION` (the container build does).
pub const REVISION: &str = match option_env!("FLEET_EXPORTER_REVISION") {
    Some(r) => r,
    None => "unknown",
};

static BUILD_INFO: Family = Family::gauge(
    "fleet_exporter_build_info",
    "The exporter's version and source revision; always 1.",
    &["version", "revision"],
);
static RELOAD_OK: Family = Family::gauge(
    "fleet_exporter_config_last_reload_successful",
    "1 when the last configuration (re)load succeeded.",
    &[],
);
static RELOAD_TIME: Family = Family::gauge(
    "fleet_exporter_config_last_reload_success_timestamp_seconds",
    "Unix time of the last successful configuration (re)load.",
    &[],
);
static TARGETS: Family = Family::gauge(
    "fleet_exporter_targets",
    "Configured targets by kind.",
    &["kind"],
);

/// The exporter's own families, for the metrics documentation check.
pub static EXPORTER_FAMILIES: [&Family; 4] = [&BUILD_INFO, &RELOAD_OK, &RELOAD_TIME, &TARGETS];

/// What a config change did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ApplySummary {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub restarted: Vec<String>,
    pub unchanged: usize,
}

pub struct App {
    store: Arc<Store>,
    source: Source,
    /// The kinds a reloaded config may name.
    kinds: Registry,
    pollers: Mutex<BTreeMap<String, (Arc<TargetSpec>, Poller)>>,
    /// Where pollers run: the caller's runtime, or one of their own (see [`App::with_poll_runtime`]).
    poll_runtime: tokio::runtime::Handle,
    loaded: AtomicBool,
    reload_ok: AtomicBool,
    last_success: std::sync::Mutex<Option<SystemTime>>,
}

impl App {
    /// An app whose pollers share the current tokio runtime with everything else. Panics
    /// outside a runtime.
    pub fn new(source: Source, kinds: Registry) -> Arc<App> {
        App::with_poll_runtime(source, kinds, tokio::runtime::Handle::current())
    }

    /// An app whose pollers run on `poll_runtime`. The binary gives them a runtime of their own,
    /// so that CPU spent answering scrapes (gzip, TLS, many clients at once) can delay a poll
    /// by the operating system's fair share at most, never by a queue of busy tasks.
    pub fn with_poll_runtime(
        source: Source,
        kinds: Registry,
        poll_runtime: tokio::runtime::Handle,
    ) -> Arc<App> {
        Arc::new(App {
            store: Arc::new(Store::new()),
            source,
            kinds,
            pollers: Mutex::new(BTreeMap::new()),
            poll_runtime,
            loaded: AtomicBool::new(false),
            reload_ok: AtomicBool::new(true),
            last_success: std::sync::Mutex::new(None),
        })
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// True once a config is running and every target has been polled once.
    pub fn ready(&self) -> bool {
        self.loaded.load(Ordering::Acquire) && self.store.all_polled()
    }

    /// Starts, stops and restarts pollers so that exactly the config's targets run.
    pub async fn apply(&self, config: &Config) -> ApplySummary {
        let mut pollers = self.pollers.lock().await;
        let mut summary = ApplySummary::default();
        let wanted: BTreeMap<&str, _> = config
            .targets
            .iter()
            .map(|t| (t.spec.name.as_str(), t))
            .collect();
        let names: Vec<String> = pollers.keys().cloned().collect();
        for name in names {
            let keep = wanted
                .get(name.as_str())
                .is_some_and(|t| *t.spec == *pollers[&name].0);
            if !keep {
                let (_, poller) = pollers.remove(&name).expect("key listed above");
                poller.stop().await;
                if wanted.contains_key(name.as_str()) {
                    summary.restarted.push(name);
                } else {
                    self.store.remove(&name);
                    summary.removed.push(name);
                }
            }
        }
        for target in &config.targets {
            let name = &target.spec.name;
            if pollers.contains_key(name) {
                summary.unchanged += 1;
                continue;
            }
            if !summary.restarted.contains(name) {
                summary.added.push(name.clone());
            }
            let poller = Poller::spawn(target.clone(), self.store.clone(), &self.poll_runtime);
            pollers.insert(name.clone(), (target.spec.clone(), poller));
        }
        let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
        for t in &config.targets {
            *kinds.entry(t.spec.kind).or_default() += 1;
        }
        drop(pollers);
        self.loaded.store(true, Ordering::Release);
        self.mark_reload(true, &kinds);
        summary
    }

    /// Re-reads the config source. On failure the running config stays as it is.
    pub async fn reload(&self) -> Result<ApplySummary, ConfigError> {
        let Source::File(path) = &self.source else {
            return Err(ConfigError::from_message(
                "built-in demo config: there is no file to reload",
            ));
        };
        match Config::load(path, self.kinds) {
            Ok(config) => {
                let summary = self.apply(&config).await;
                info!(?summary, "configuration reloaded");
                Ok(summary)
            }
            Err(e) => {
                error!(error = %e, "configuration reload failed; keeping the running config");
                self.mark_reload(false, &self.running_kinds().await);
                Err(e)
            }
        }
    }

    /// Stops every poller.
    pub async fn shutdown(&self) {
        let pollers = std::mem::take(&mut *self.pollers.lock().await);
        for (_, (_, poller)) in pollers {
            poller.stop().await;
        }
    }

    async fn running_kinds(&self) -> BTreeMap<&'static str, usize> {
        let mut kinds = BTreeMap::new();
        for (spec, _) in self.pollers.lock().await.values() {
            *kinds.entry(spec.kind).or_default() += 1;
        }
        kinds
    }

    fn mark_reload(&self, ok: bool, kinds: &BTreeMap<&str, usize>) {
        self.reload_ok.store(ok, Ordering::Release);
        let mut last = self.last_success.lock().unwrap_or_else(|e| e.into_inner());
        if ok {
            *last = Some(SystemTime::now());
        }
        let mut b = SnapshotBuilder::new(None);
        b.add(&BUILD_INFO, &[VERSION, REVISION], 1.0);
        b.add(&RELOAD_OK, &[], if ok { 1.0 } else { 0.0 });
        b.add_opt(&RELOAD_TIME, &[], last.map(unix_seconds));
        for (kind, n) in kinds {
            b.add(&TARGETS, &[kind], *n as f64);
        }
        self.store.set_exporter_series(b.finish());
    }
}
