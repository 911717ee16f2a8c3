//! Owns the running configuration: one poller per target, and safe reloads that validate first
//! and restart only the pollers whose target changed.
//!
//! Reloads run one at a time and coalesce: a request is answered by the first reload that
//! *started* after it (so it read the file as it was when asked, or later), and a burst of
//! requests costs one reload, not one each. The file is read and validated on a blocking thread
//! under a deadline, so neither a slow disk nor a huge file holds a server thread.
//!
//! A reload starts at most once per [`MIN_RELOAD_GAP`]: requests made while one waits for its
//! turn are answered by it, so a client posting `/-/reload` in a loop costs one reload a second,
//! however many loops. A file whose parsed targets equal the running ones leaves every poller
//! and the store as they are; when the file, the environment and the secret files read exactly as
//! they did for the running config, the reload does not even parse (see [`Inputs`]).
//!
//! With a [`Shard`] other than `0/1`, only the targets the shard owns run: the others are
//! remembered by name only, so a `/probe` for one can say which shard has it. The shard is set
//! once at startup ([`App::set_shard`]); a reload filters the new file by the same shard.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::Mutex;
use tracing::{error, info};

use crate::config::{self, Config, ConfigError, Inputs, Source, TargetConfig, TargetSpec};
use crate::driver::Registry;
use crate::scheduler::Poller;
use crate::shard::Shard;
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
    "Configured targets by kind that this replica polls (with --shard, its share).",
    &["kind"],
);
static SHARD_INFO: Family = Family::gauge(
    "fleet_exporter_shard_info",
    "The share of the configured targets this replica polls: shard of shards (0 of 1 when not sharded); always 1.",
    &["shard", "shards"],
);

/// The exporter's own families, for the metrics documentation check.
pub static EXPORTER_FAMILIES: [&Family; 5] =
    [&BUILD_INFO, &SHARD_INFO, &RELOAD_OK, &RELOAD_TIME, &TARGETS];

/// The least time between the starts of two reloads (see the module comment).
pub const MIN_RELOAD_GAP: Duration = Duration::from_secs(1);

/// What a config change did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
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
    /// Reload requests so far; each request's number is its ticket.
    reload_requests: AtomicU64,
    /// Held while a reload runs; holds the outcome of the last one.
    last_reload: Mutex<ReloadOutcome>,
    /// [`MIN_RELOAD_GAP`], unless [`App::set_min_reload_gap`] changed it.
    min_reload_gap: std::sync::Mutex<Duration>,
    /// What the running config was made of, when it came from a file.
    inputs: std::sync::Mutex<Option<Arc<Inputs>>>,
    /// The share of the config's targets that runs here.
    shard: std::sync::Mutex<Shard>,
    /// The running config's targets that other shards own.
    elsewhere: std::sync::Mutex<HashSet<String>>,
}

/// The last reload: which requests it answered (every ticket up to `covers`) and how.
#[derive(Default)]
struct ReloadOutcome {
    covers: u64,
    result: Option<Result<ApplySummary, String>>,
    /// When it started: the next may start [`MIN_RELOAD_GAP`] later.
    started: Option<tokio::time::Instant>,
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
            reload_requests: AtomicU64::new(0),
            last_reload: Mutex::new(ReloadOutcome::default()),
            min_reload_gap: std::sync::Mutex::new(MIN_RELOAD_GAP),
            inputs: std::sync::Mutex::new(None),
            shard: std::sync::Mutex::new(Shard::default()),
            elsewhere: std::sync::Mutex::new(HashSet::new()),
        })
    }

    /// Runs only `shard`'s share of the targets from the next [`App::apply`] on (the binary
    /// sets it before the first). Reloads keep it.
    pub fn set_shard(&self, shard: Shard) {
        *self.shard.lock().unwrap_or_else(|e| e.into_inner()) = shard;
    }

    pub fn shard(&self) -> Shard {
        *self.shard.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The shard that polls `name`, when the running config has such a target and another
    /// shard owns it.
    pub fn served_elsewhere(&self, name: &str) -> Option<Shard> {
        let elsewhere = self.elsewhere.lock().unwrap_or_else(|e| e.into_inner());
        elsewhere.contains(name).then(|| self.shard().owner(name))
    }

    /// Notes the names of `config`'s targets that other shards own; returns how many.
    fn remember_elsewhere(&self, config: &Config) -> usize {
        let shard = self.shard();
        let elsewhere: HashSet<String> = config
            .targets
            .iter()
            .filter(|t| !shard.owns(&t.spec.name))
            .map(|t| t.spec.name.clone())
            .collect();
        let n = elsewhere.len();
        *self.elsewhere.lock().unwrap_or_else(|e| e.into_inner()) = elsewhere;
        n
    }

    /// The config's targets this shard owns.
    fn share<'c>(&self, config: &'c Config) -> Vec<&'c TargetConfig> {
        let shard = self.shard();
        config
            .targets
            .iter()
            .filter(|t| shard.owns(&t.spec.name))
            .collect()
    }

    /// Changes the least time between two reloads' starts (tests that reload in tight loops).
    pub fn set_min_reload_gap(&self, gap: Duration) {
        *self
            .min_reload_gap
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = gap;
    }

    /// The specs of the targets being polled now, by name.
    pub async fn running(&self) -> Vec<Arc<TargetSpec>> {
        let pollers = self.pollers.lock().await;
        pollers.values().map(|(spec, _)| spec.clone()).collect()
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
        let targets = self.share(config);
        let wanted: BTreeMap<&str, _> =
            targets.iter().map(|t| (t.spec.name.as_str(), *t)).collect();
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
        let starting = targets
            .iter()
            .filter(|t| !pollers.contains_key(&t.spec.name))
            .count();
        for target in targets.iter().copied() {
            let name = &target.spec.name;
            if pollers.contains_key(name) {
                summary.unchanged += 1;
                continue;
            }
            if !summary.restarted.contains(name) {
                summary.added.push(name.clone());
            }
            let poller = Poller::spawn(
                target.clone(),
                self.store.clone(),
                &self.poll_runtime,
                starting,
            );
            pollers.insert(name.clone(), (target.spec.clone(), poller));
        }
        let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
        for t in &targets {
            *kinds.entry(t.spec.kind).or_default() += 1;
        }
        if self.remember_elsewhere(config) > 0 {
            info!(
                shard = %self.shard(),
                polled = targets.len(),
                configured = config.targets.len(),
                "polling this shard's share of the targets"
            );
        }
        drop(pollers);
        *self.inputs.lock().unwrap_or_else(|e| e.into_inner()) = config.inputs().cloned();
        self.loaded.store(true, Ordering::Release);
        self.mark_reload(true, &kinds);
        summary
    }

    /// Re-reads the config source. On failure the running config stays as it is. Returns once
    /// a config read after this call is the running one (see the module comment).
    pub async fn reload(&self) -> Result<ApplySummary, ConfigError> {
        let ticket = self.reload_requests.fetch_add(1, Ordering::AcqRel) + 1;
        let mut last = self.last_reload.lock().await;
        if last.covers >= ticket {
            if let Some(result) = &last.result {
                return result.clone().map_err(ConfigError::from_message);
            }
        }
        let gap = *self
            .min_reload_gap
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(previous) = last.started {
            // Requests arriving meanwhile queue on the lock and are answered by this reload.
            tokio::time::sleep_until(previous + gap).await;
        }
        // Every request made so far is answered by this reload: it reads the file after them.
        let covers = self.reload_requests.load(Ordering::Acquire);
        let started = tokio::time::Instant::now();
        let result = self.reload_now().await;
        *last = ReloadOutcome {
            covers,
            result: Some(result.as_ref().cloned().map_err(ToString::to_string)),
            started: Some(started),
        };
        result
    }

    async fn reload_now(&self) -> Result<ApplySummary, ConfigError> {
        let Source::File(path) = &self.source else {
            return Err(ConfigError::from_message(
                "built-in demo config: there is no file to reload",
            ));
        };
        let (path, kinds) = (path.clone(), self.kinds);
        let running = self
            .inputs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let read = tokio::task::spawn_blocking(move || match running {
            Some(running) if running.unchanged() => Ok(None),
            _ => Config::load(&path, kinds).map(Some),
        });
        let loaded = match tokio::time::timeout(config::READ_DEADLINE, read).await {
            Ok(Ok(loaded)) => loaded,
            Ok(Err(e)) => Err(ConfigError::from_message(format!(
                "reading the configuration failed: {e}"
            ))),
            Err(_) => Err(ConfigError::from_message(format!(
                "the configuration: {}",
                config::took_longer(config::READ_DEADLINE)
            ))),
        };
        match loaded {
            Ok(None) => {
                let unchanged = self.pollers.lock().await.len();
                info!(targets = unchanged, "configuration unchanged");
                self.mark_reload(true, &self.running_kinds().await);
                Ok(ApplySummary {
                    unchanged,
                    ..ApplySummary::default()
                })
            }
            Ok(Some(config)) => {
                if let Some(unchanged) = self.unchanged(&config).await {
                    *self.inputs.lock().unwrap_or_else(|e| e.into_inner()) =
                        config.inputs().cloned();
                    // Other shards' targets may have come or gone.
                    self.remember_elsewhere(&config);
                    info!(targets = unchanged, "configuration unchanged");
                    self.mark_reload(true, &self.running_kinds().await);
                    return Ok(ApplySummary {
                        unchanged,
                        ..ApplySummary::default()
                    });
                }
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

    /// The number of targets when `config`'s targets are exactly the running ones.
    async fn unchanged(&self, config: &Config) -> Option<usize> {
        let pollers = self.pollers.lock().await;
        let targets = self.share(config);
        let same = pollers.len() == targets.len()
            && targets.iter().all(|t| {
                pollers
                    .get(&t.spec.name)
                    .is_some_and(|(running, _)| **running == *t.spec)
            });
        same.then_some(pollers.len())
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
        let shard = self.shard();
        b.add(
            &SHARD_INFO,
            &[&shard.index().to_string(), &shard.count().to_string()],
            1.0,
        );
        b.add(&RELOAD_OK, &[], if ok { 1.0 } else { 0.0 });
        b.add_opt(&RELOAD_TIME, &[], last.map(unix_seconds));
        for (kind, n) in kinds {
            b.add(&TARGETS, &[kind], *n as f64);
        }
        self.store.set_exporter_series(b.finish());
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    use super::*;
    use crate::config::TargetSpec;
    use crate::driver::{factory, Driver, DriverFactory, Kind, PollContext, PollError};
    use crate::snapshot::Snapshot;

    /// Config parses so far: the fake kind's `configure` runs once per target per parse.
    static PARSES: AtomicUsize = AtomicUsize::new(0);

    struct Idle;

    impl Driver for Idle {
        async fn poll(&mut self, _: &mut PollContext) -> Result<Snapshot, PollError> {
            Ok(Snapshot::default())
        }
    }

    fn configure(_: &TargetSpec) -> Result<DriverFactory, String> {
        PARSES.fetch_add(1, Ordering::Relaxed);
        Ok(factory(|| Idle))
    }

    static KINDS: &[Kind] = &[Kind {
        name: "idle",
        secret_keys: &[],
        families: &[],
        configure,
    }];

    fn write_config(path: &std::path::Path, version: u64) {
        let text = format!(
            "[[targets]]\nname = \"a\"\nkind = \"idle\"\nurl = \"http://192.0.2.1\"\n\
             interval = \"{}s\"\ntimeout = \"1s\"\n",
            version + 2
        );
        // Renamed into place, so a reload never reads half a file.
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, path).unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn overlapping_reloads_answer_only_once_the_file_they_saw_runs_and_coalesce() {
        let dir = std::env::temp_dir().join(format!("fleet-app-reload-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("config.toml");
        write_config(&path, 0);
        let app = App::new(Source::File(path.clone()), KINDS);
        app.set_min_reload_gap(Duration::ZERO);
        app.apply(&Config::load(&path, KINDS).unwrap()).await;

        let (rounds, per_round) = (40u64, 8);
        let parses_before = PARSES.load(Ordering::Relaxed);
        let spawn_reloads = |n| -> Vec<_> {
            (0..n)
                .map(|_| {
                    let app = app.clone();
                    tokio::spawn(async move { app.reload().await })
                })
                .collect()
        };
        for version in 1..=rounds {
            // Reloads asked for before the change may run the old file or the new one; those
            // asked for after it must not return before the new one runs.
            let before = spawn_reloads(per_round / 2);
            write_config(&path, version);
            let after = spawn_reloads(per_round / 2);
            for r in after {
                r.await.unwrap().expect("reload succeeds");
                let running = app.running().await;
                assert_eq!(running.len(), 1);
                assert_eq!(
                    running[0].interval,
                    Duration::from_secs(version + 2),
                    "round {version}: a reload answered before the file it saw was running"
                );
            }
            for r in before {
                r.await.unwrap().expect("reload succeeds");
            }
            let running = app.running().await;
            assert_eq!(running[0].interval, Duration::from_secs(version + 2));
        }
        let parses = PARSES.load(Ordering::Relaxed) - parses_before;
        assert!(
            parses < (rounds * per_round) as usize,
            "{parses} parses for {} requests: bursts did not coalesce",
            rounds * per_round
        );
        app.shutdown().await;
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Parses by the rate-limit test's kind, apart from [`PARSES`] (tests run at once).
    static GAP_PARSES: AtomicUsize = AtomicUsize::new(0);

    fn configure_counted(_: &TargetSpec) -> Result<DriverFactory, String> {
        GAP_PARSES.fetch_add(1, Ordering::Relaxed);
        Ok(factory(|| Idle))
    }

    static COUNTED: &[Kind] = &[Kind {
        name: "idle",
        secret_keys: &[],
        families: &[],
        configure: configure_counted,
    }];

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reload_loops_start_one_reload_per_gap_and_an_unchanged_file_keeps_every_poller() {
        let dir = std::env::temp_dir().join(format!("fleet-app-gap-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("config.toml");
        write_config(&path, 0);
        let app = App::new(Source::File(path.clone()), COUNTED);
        app.apply(&Config::load(&path, COUNTED).unwrap()).await;
        let before = app.running().await;

        let parses = GAP_PARSES.load(Ordering::Relaxed);
        let summary = app.reload().await.expect("reload succeeds");
        assert_eq!(
            GAP_PARSES.load(Ordering::Relaxed),
            parses,
            "an unchanged file was parsed again"
        );
        assert_eq!(
            summary,
            ApplySummary {
                unchanged: 1,
                ..ApplySummary::default()
            }
        );
        let after = app.running().await;
        assert!(
            Arc::ptr_eq(&before[0], &after[0]),
            "an unchanged target was restarted"
        );

        let parses = GAP_PARSES.load(Ordering::Relaxed);
        let started = tokio::time::Instant::now();
        let window = Duration::from_millis(2500);
        // The file keeps changing, so every reload parses it.
        let writer = {
            let path = path.clone();
            tokio::spawn(async move {
                for version in 1.. {
                    write_config(&path, version % 2);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
        };
        let loops: Vec<_> = (0..8)
            .map(|_| {
                let app = app.clone();
                tokio::spawn(async move {
                    let mut n = 0;
                    while started.elapsed() < window {
                        app.reload().await.expect("reload succeeds");
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        let mut requests = 0;
        for l in loops {
            requests += l.await.unwrap();
        }
        let elapsed = started.elapsed();
        writer.abort();
        let reloads = GAP_PARSES.load(Ordering::Relaxed) - parses;
        // The first waits out the gap after the reload above; then one a second.
        let allowed = elapsed.as_secs_f64().ceil() as usize;
        assert!(
            reloads <= allowed,
            "{reloads} reloads for {requests} requests in {elapsed:?}: more than {allowed}"
        );
        assert!(requests >= 8, "{requests} requests answered");
        app.shutdown().await;
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn configure_plain(_: &TargetSpec) -> Result<DriverFactory, String> {
        Ok(factory(|| Idle))
    }

    static PLAIN: &[Kind] = &[Kind {
        name: "idle",
        secret_keys: &[],
        families: &[],
        configure: configure_plain,
    }];

    fn write_targets(path: &std::path::Path, server: &str, names: impl Iterator<Item = String>) {
        let mut text = format!("[server]\n{server}\n");
        for name in names {
            text.push_str(&format!(
                "[[targets]]\nname = \"{name}\"\nkind = \"idle\"\nurl = \"http://192.0.2.1\"\n"
            ));
        }
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, path).unwrap();
    }

    async fn running_names(app: &App) -> Vec<String> {
        app.running().await.iter().map(|s| s.name.clone()).collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_shard_runs_only_its_share_and_a_reload_keeps_the_shard() {
        let dir = std::env::temp_dir().join(format!("fleet-app-shard-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("config.toml");
        let names = |n| (0..n).map(|i| format!("t{i:02}"));
        write_targets(&path, "", names(30));
        let shard: Shard = "1/3".parse().unwrap();
        let app = App::new(Source::File(path.clone()), PLAIN);
        app.set_min_reload_gap(Duration::ZERO);
        app.set_shard(shard);
        app.apply(&Config::load(&path, PLAIN).unwrap()).await;

        let share: Vec<String> = names(30).filter(|n| shard.owns(n)).collect();
        assert!(!share.is_empty() && share.len() < 30, "{share:?}");
        assert_eq!(running_names(&app).await, share);
        let other = names(30).find(|n| !shard.owns(n)).unwrap();
        let owner = app
            .served_elsewhere(&other)
            .expect("another shard's target");
        assert_ne!(owner, shard);
        assert!(owner.owns(&other));
        assert_eq!(app.served_elsewhere(&share[0]), None);
        assert_eq!(app.served_elsewhere("not-configured"), None);

        // A reloaded file with more targets, naming a shard of its own: the running shard stays.
        write_targets(&path, "shard = \"0/1\"", names(45));
        app.reload().await.expect("reload succeeds");
        let share: Vec<String> = names(45).filter(|n| shard.owns(n)).collect();
        assert_eq!(running_names(&app).await, share);
        assert_eq!(app.shard(), shard);
        let added = names(45).skip(30).find(|n| !shard.owns(n)).unwrap();
        assert!(app.served_elsewhere(&added).is_some());
        app.shutdown().await;
        let _ = std::fs::remove_dir_all(&dir);
    }
}
