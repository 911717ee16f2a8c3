//! The latest snapshot and health of every target. Pollers write, scrapes read; a scrape holds
//! the lock only long enough to clone a few `Arc`s.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use crate::driver::{PollError, Reason};
use crate::snapshot::{Family, Snapshot, SnapshotBuilder};
use crate::time::unix_seconds;

static UP: Family = Family::gauge(
    "fleet_target_up",
    "1 when the last poll of the target produced a snapshot, 0 otherwise.",
    &["kind"],
);
static POLL_DURATION: Family = Family::gauge(
    "fleet_target_poll_duration_seconds",
    "Wall time of the target's last poll.",
    &["kind"],
);
static LAST_SUCCESS: Family = Family::gauge(
    "fleet_target_last_success_timestamp_seconds",
    "Unix time of the target's last successful poll.",
    &["kind"],
);
static POLLS: Family = Family::counter(
    "fleet_target_polls_total",
    "Polls of the target, successful or not.",
    &["kind"],
);
static POLL_ERRORS: Family = Family::counter(
    "fleet_target_poll_errors_total",
    "Failed polls and failed parts of polls, by reason.",
    &["kind", "reason"],
);
static LOGINS: Family = Family::counter(
    "fleet_target_logins_total",
    "Logins the exporter made to the target.",
    &["kind"],
);
static SERIES: Family = Family::gauge(
    "fleet_target_series",
    "Device series the target's last snapshot holds.",
    &["kind"],
);

/// The health families, for the metrics documentation check.
pub static HEALTH_FAMILIES: [&Family; 7] = [
    &UP,
    &POLL_DURATION,
    &LAST_SUCCESS,
    &POLLS,
    &POLL_ERRORS,
    &LOGINS,
    &SERIES,
];

/// A target's bookkeeping, as the status page shows it.
#[derive(Debug, Clone, Default)]
pub struct Health {
    pub polled: bool,
    pub up: bool,
    pub polls: u64,
    pub errors: [u64; Reason::ALL.len()],
    pub logins: u64,
    pub last_duration: Duration,
    pub last_success: Option<SystemTime>,
    pub last_error: Option<String>,
}

/// The outcome of one poll, as the scheduler reports it.
pub struct PollReport {
    pub duration: Duration,
    pub logins: u32,
    pub result: Result<Snapshot, PollError>,
    pub partial_errors: Vec<PollError>,
}

struct Slot {
    kind: &'static str,
    device: Option<Arc<Snapshot>>,
    health: Health,
    health_series: Arc<Snapshot>,
}

/// One row of [`Store::status`].
#[derive(Debug, Clone)]
pub struct TargetStatus {
    pub name: String,
    pub kind: &'static str,
    pub health: Health,
    pub series: usize,
}

#[derive(Default)]
pub struct Store {
    targets: RwLock<BTreeMap<String, Slot>>,
    exporter: RwLock<Arc<Snapshot>>,
}

impl Store {
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes a target known before its first poll, so its health series exist at once. A target
    /// that is already known keeps its counters (a reload that changes a target is not a reset).
    pub fn register(&self, name: &str, kind: &'static str) {
        let mut targets = self.targets.write().unwrap_or_else(|e| e.into_inner());
        match targets.get_mut(name) {
            // A restarted target may now point elsewhere: its old device series must go.
            Some(slot) if slot.kind == kind => slot.device = None,
            _ => {
                let health = Health::default();
                let health_series = Arc::new(health_snapshot(name, kind, &health, 0));
                targets.insert(
                    name.to_string(),
                    Slot {
                        kind,
                        device: None,
                        health,
                        health_series,
                    },
                );
            }
        }
    }

    pub fn remove(&self, name: &str) {
        self.targets
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name);
    }

    /// Records a poll: swaps in the new snapshot, or withdraws the device series on failure.
    /// Returns the snapshot now served for the target, if any.
    pub fn record(&self, name: &str, report: PollReport) -> Option<Arc<Snapshot>> {
        let mut targets = self.targets.write().unwrap_or_else(|e| e.into_inner());
        let Some(slot) = targets.get_mut(name) else {
            return None; // removed by a reload while the poll ran
        };
        let h = &mut slot.health;
        h.polled = true;
        h.polls += 1;
        h.logins += u64::from(report.logins);
        h.last_duration = report.duration;
        for e in &report.partial_errors {
            h.errors[e.reason().index()] += 1;
        }
        match report.result {
            Ok(snapshot) => {
                h.up = true;
                h.last_success = Some(SystemTime::now());
                h.last_error = report.partial_errors.first().map(|e| e.to_string());
                slot.device = Some(Arc::new(snapshot));
            }
            Err(e) => {
                h.up = false;
                h.errors[e.reason().index()] += 1;
                h.last_error = Some(e.to_string());
                slot.device = None;
            }
        }
        let series = slot.device.as_ref().map_or(0, |d| d.series());
        slot.health_series = Arc::new(health_snapshot(name, slot.kind, &slot.health, series));
        slot.device.clone()
    }

    pub fn set_exporter_series(&self, snapshot: Snapshot) {
        *self.exporter.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(snapshot);
    }

    /// The snapshots a scrape encodes: every target's (or one target's) device and health
    /// series, plus the exporter's own when scraping everything. `None` for an unknown target.
    pub fn sources(&self, only: Option<&str>) -> Option<Vec<Arc<Snapshot>>> {
        let targets = self.targets.read().unwrap_or_else(|e| e.into_inner());
        let mut out = Vec::with_capacity(targets.len() * 2 + 1);
        let mut push = |slot: &Slot| {
            out.push(slot.health_series.clone());
            out.extend(slot.device.clone());
        };
        match only {
            Some(name) => push(targets.get(name)?),
            None => {
                targets.values().for_each(&mut push);
                drop(targets);
                out.push(
                    self.exporter
                        .read()
                        .unwrap_or_else(|e| e.into_inner())
                        .clone(),
                );
            }
        }
        Some(out)
    }

    /// True once every known target has been polled at least once.
    pub fn all_polled(&self) -> bool {
        let targets = self.targets.read().unwrap_or_else(|e| e.into_inner());
        targets.values().all(|s| s.health.polled)
    }

    pub fn status(&self) -> Vec<TargetStatus> {
        let targets = self.targets.read().unwrap_or_else(|e| e.into_inner());
        targets
            .iter()
            .map(|(name, slot)| TargetStatus {
                name: name.clone(),
                kind: slot.kind,
                health: slot.health.clone(),
                series: slot.device.as_ref().map_or(0, |d| d.series()),
            })
            .collect()
    }
}

fn health_snapshot(name: &str, kind: &str, h: &Health, series: usize) -> Snapshot {
    let mut b = SnapshotBuilder::new(Some(name));
    b.add(&UP, &[kind], if h.up { 1.0 } else { 0.0 });
    b.add(&POLLS, &[kind], h.polls as f64);
    for (reason, n) in Reason::ALL.iter().zip(h.errors) {
        b.add(&POLL_ERRORS, &[kind, reason.as_str()], n as f64);
    }
    b.add(&LOGINS, &[kind], h.logins as f64);
    b.add(&SERIES, &[kind], series as f64);
    if h.polled {
        b.add(&POLL_DURATION, &[kind], h.last_duration.as_secs_f64());
    }
    if let Some(t) = h.last_success {
        b.add(&LAST_SUCCESS, &[kind], unix_seconds(t));
    }
    b.finish()
}
