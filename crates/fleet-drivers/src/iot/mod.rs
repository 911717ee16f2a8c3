//! IoT agent platform: portable Wi-Fi devices and their SIM cards, one signed
//! `POST /openapi/iot/queryDeviceFlow` per device.
//!
//! A good API citizen: requests are paced at `rate_limit` per second with at most `concurrency`
//! in flight, and each device is asked about once per `device_interval`, so a poll only asks
//! the share of the fleet that is due and the requests spread over time instead of bursting.
//! A poll that cannot ask every due device before its deadline asks the rest next time (a
//! round-robin cursor); between answers a device keeps its last known series. HTTP 429 and 5xx
//! answers pause the pacing for a jittered, growing delay.

mod client;
pub mod metrics;
pub mod model;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::Deserialize;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::warn;

pub use self::client::sign;
use self::client::{IotClient, Outcome, DEVICE_FLOW};
use self::metrics::Mapping;
use self::model::DeviceFlow;
use fleet_core::config::{Secret, TargetSpec};
use fleet_core::driver::{factory, Driver, DriverFactory, Kind, PollContext, PollError, Reason};
use fleet_core::snapshot::Snapshot;
use fleet_core::time::unix_seconds;

pub const KIND: Kind = Kind {
    name: "iot",
    secret_keys: &["app_secret"],
    families: metrics::FAMILIES,
    configure,
};

/// Pacing keeps this much below the limit, so network jitter cannot squeeze two requests into
/// the platform's view of one interval.
const RATE_GUARD: f64 = 1.02;
/// The longest pause after HTTP 429 or 5xx answers.
const MAX_PAUSE: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
enum FlowUnit {
    #[default]
    KiB,
    MiB,
    #[serde(rename = "bytes")]
    Bytes,
}

impl FlowUnit {
    fn bytes(self) -> f64 {
        match self {
            FlowUnit::KiB => 1024.0,
            FlowUnit::MiB => 1024.0 * 1024.0,
            FlowUnit::Bytes => 1.0,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Options {
    app_id: String,
    app_secret: Secret,
    #[serde(default)]
    devices: Vec<String>,
    /// One device number a line; `#` starts a comment. Relative to the config file.
    devices_file: Option<PathBuf>,
    /// Requests per second, at most.
    #[serde(default = "default_rate_limit")]
    rate_limit: f64,
    /// Requests in flight, at most.
    #[serde(default = "default_concurrency")]
    concurrency: usize,
    /// How often each device is asked.
    #[serde(
        default = "default_device_interval",
        deserialize_with = "fleet_core::config::deserialize_duration"
    )]
    device_interval: Duration,
    #[serde(default)]
    flow_unit: FlowUnit,
    /// The offset from UTC of the platform's date strings, `+08:00` (China Standard Time).
    #[serde(default = "default_utc_offset")]
    utc_offset: String,
    #[serde(default)]
    export_location: bool,
    /// Per-card series (up to three cards a device); off leaves only device series.
    #[serde(default = "default_true")]
    export_sims: bool,
    #[serde(default = "default_device_online_codes")]
    device_online_codes: Vec<i64>,
    #[serde(default = "default_sim_codes")]
    sim_online_codes: Vec<i64>,
    #[serde(default = "default_sim_codes")]
    sim_activated_codes: Vec<i64>,
    #[serde(default = "default_sim_codes")]
    sim_realname_codes: Vec<i64>,
}

fn default_rate_limit() -> f64 {
    2.0
}
fn default_concurrency() -> usize {
    2
}
fn default_device_interval() -> Duration {
    Duration::from_secs(300)
}
fn default_utc_offset() -> String {
    "+08:00".into()
}
fn default_true() -> bool {
    true
}
fn default_device_online_codes() -> Vec<i64> {
    Mapping::default().device_online_codes
}
fn default_sim_codes() -> Vec<i64> {
    Mapping::default().sim_online_codes
}

/// `+08:00`, `-05:30`, `+8`, `Z` → seconds east of UTC.
fn parse_utc_offset(s: &str) -> Result<i64, String> {
    let bad = || format!("utc_offset: expected like \"+08:00\", got {s:?}");
    let s = s.trim();
    if s == "Z" || s == "UTC" {
        return Ok(0);
    }
    let (sign, rest) = match s.as_bytes().first() {
        Some(b'+') => (1, &s[1..]),
        Some(b'-') => (-1, &s[1..]),
        _ => return Err(bad()),
    };
    let (h, m) = rest.split_once(':').unwrap_or((rest, "0"));
    let (h, m): (i64, i64) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if h > 14 || m >= 60 {
        return Err(bad());
    }
    Ok(sign * (h * 3600 + m * 60))
}

/// The device list: `devices` then the file's lines, duplicates dropped, order kept.
fn device_list(inline: &[String], file: Option<&Path>) -> Result<Vec<String>, String> {
    let mut all: Vec<String> = inline.iter().map(|d| d.trim().to_string()).collect();
    if let Some(path) = file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("devices_file: cannot read {}: {e}", path.display()))?;
        all.extend(
            text.lines()
                .map(|l| l.split('#').next().unwrap_or_default().trim().to_string()),
        );
    }
    let mut seen = std::collections::HashSet::new();
    all.retain(|d| !d.is_empty() && seen.insert(d.clone()));
    Ok(all)
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// What every driver of one target shares.
struct Settings {
    opts: Options,
    mapping: Mapping,
    devices_file: Option<PathBuf>,
    timeout: Duration,
    request_timeout: Duration,
    spacing: Duration,
}

fn configure(spec: &TargetSpec) -> Result<DriverFactory, String> {
    let opts: Options = spec.driver_options()?;
    if !(opts.rate_limit.is_finite() && opts.rate_limit > 0.0) {
        return Err("rate_limit: must be above 0 (requests per second)".into());
    }
    if opts.concurrency == 0 {
        return Err("concurrency: must be at least 1".into());
    }
    let devices_file = opts.devices_file.as_ref().map(|f| spec.config_dir.join(f));
    let devices = device_list(&opts.devices, devices_file.as_deref())?;
    if devices.is_empty() {
        return Err("no devices: set `devices` or `devices_file`".into());
    }
    let mapping = Mapping {
        flow_bytes: opts.flow_unit.bytes(),
        utc_offset_secs: parse_utc_offset(&opts.utc_offset)?,
        export_location: opts.export_location,
        export_sims: opts.export_sims,
        device_online_codes: opts.device_online_codes.clone(),
        sim_online_codes: opts.sim_online_codes.clone(),
        sim_activated_codes: opts.sim_activated_codes.clone(),
        sim_realname_codes: opts.sim_realname_codes.clone(),
    };
    // One slow request must not eat the poll: a few fit in its deadline.
    let request_timeout = (spec.timeout / 3).min(Duration::from_secs(30));
    let settings = Arc::new(Settings {
        spacing: Duration::from_secs_f64(RATE_GUARD / opts.rate_limit),
        opts,
        mapping,
        devices_file,
        timeout: spec.timeout,
        request_timeout,
    });
    let devices: Arc<[String]> = devices.into();
    let url = spec.url.clone();
    Ok(factory(move || {
        let s = &settings;
        let client = IotClient::new(
            &url,
            s.opts.app_id.clone(),
            s.opts.app_secret.clone(),
            s.request_timeout,
        );
        IotDriver {
            client: Arc::new(client),
            file_modified: s.devices_file.as_deref().and_then(modified),
            settings: s.clone(),
            devices: devices.clone(),
            state: HashMap::new(),
            cursor: 0,
            last_poll: None,
            owed: 0,
            next_slot: Instant::now(),
            pauses: 0,
            requests: BTreeMap::new(),
        }
    }))
}

/// What the exporter knows of one device.
#[derive(Default)]
struct DeviceState {
    /// The last answer, while the last request succeeded.
    data: Option<DeviceFlow>,
    last_success: Option<f64>,
}

struct IotDriver {
    client: Arc<IotClient>,
    settings: Arc<Settings>,
    devices: Arc<[String]>,
    file_modified: Option<SystemTime>,
    state: HashMap<String, DeviceState>,
    /// The next device to ask, round-robin over polls.
    cursor: usize,
    last_poll: Option<Instant>,
    /// Devices due that a poll could not ask before its deadline, carried to the next.
    owed: usize,
    /// The earliest a request may start (pacing, and pauses after 429/5xx).
    next_slot: Instant,
    /// Consecutive pauses, for their growth.
    pauses: u32,
    /// `iot_api_requests_total` by answer code.
    requests: BTreeMap<String, u64>,
}

impl Driver for IotDriver {
    async fn poll(&mut self, ctx: &mut PollContext) -> Result<Snapshot, PollError> {
        self.poll_fleet(ctx).await
    }
}

/// A poll's running tally.
#[derive(Default)]
struct Tally {
    succeeded: usize,
    /// A failure every further request would share (signature refused, platform unreachable).
    fatal: Option<PollError>,
    failed: Vec<PollError>,
}

impl IotDriver {
    async fn poll_fleet(&mut self, ctx: &mut PollContext) -> Result<Snapshot, PollError> {
        self.reread_devices_file(ctx);
        let started = Instant::now();
        let s = self.settings.clone();
        let n = self.devices.len();
        // The share of the fleet due since the last poll (everything on the first), plus what
        // the last poll could not ask before its deadline.
        let due = match self.last_poll {
            None => n,
            Some(prev) => {
                let share = started.duration_since(prev).as_secs_f64()
                    / s.opts.device_interval.as_secs_f64();
                (n as f64 * share).ceil() as usize
            }
        };
        let quota = (due + self.owed).min(n);
        self.last_poll = Some(started);
        // The last moment a request may start and still end before the poll's deadline.
        let cutoff = started + s.timeout.mul_f64(0.9).saturating_sub(s.request_timeout);

        let mut tasks = JoinSet::new();
        let mut tally = Tally::default();
        let mut launched = 0;
        while launched < quota && tally.fatal.is_none() {
            while tasks.len() >= s.opts.concurrency {
                if let Some(Ok((device, outcome))) = tasks.join_next().await {
                    self.record(device, outcome, &mut tally);
                }
            }
            let slot = self.next_slot.max(Instant::now());
            // At least one request a poll, however short its deadline.
            if launched > 0 && slot > cutoff {
                break;
            }
            tokio::time::sleep_until(slot).await;
            self.next_slot = slot + s.spacing;
            let device = self.devices[self.cursor % n].clone();
            self.cursor = (self.cursor + 1) % n;
            let client = self.client.clone();
            tasks.spawn(async move {
                let outcome = client.device_flow(&device).await;
                (device, outcome)
            });
            launched += 1;
            while let Some(Ok((device, outcome))) = tasks.try_join_next() {
                self.record(device, outcome, &mut tally);
            }
        }
        self.owed = quota - launched;
        while let Some(joined) = tasks.join_next().await {
            if let Ok((device, outcome)) = joined {
                self.record(device, outcome, &mut tally);
            }
        }

        let known = self.state.values().any(|d| d.data.is_some());
        match tally.fatal {
            Some(e) if tally.succeeded == 0 => return Err(e),
            Some(e) => tally.failed.insert(0, e),
            None => {}
        }
        if tally.succeeded == 0 && !known && !tally.failed.is_empty() {
            return Err(tally.failed.remove(0));
        }
        ctx.partial_errors.extend(tally.failed);
        Ok(self.snapshot(ctx))
    }

    fn record(&mut self, device: String, outcome: Outcome, tally: &mut Tally) {
        *self.requests.entry(outcome.code.clone()).or_default() += 1;
        let state = self.state.entry(device).or_default();
        match outcome.result {
            Ok(flow) => {
                state.data = Some(flow);
                state.last_success = Some(unix_seconds(SystemTime::now()));
                tally.succeeded += 1;
                self.pauses = 0;
            }
            Err(e) => {
                state.data = None;
                if outcome.code == "http_429" || outcome.code.starts_with("http_5") {
                    self.pause();
                }
                match e.reason() {
                    Reason::Auth | Reason::Connect => {
                        tally.fatal.get_or_insert(e);
                    }
                    _ => tally.failed.push(e),
                }
            }
        }
    }

    /// Holds further requests back for a growing, jittered delay: the platform is overloaded
    /// or limiting us, and many exporters retrying in step would make it worse.
    fn pause(&mut self) {
        self.pauses = (self.pauses + 1).min(16);
        let grown = self.settings.spacing.saturating_mul(1 << self.pauses);
        let jittered = grown.min(MAX_PAUSE).mul_f64(0.5 + rand::random::<f64>());
        self.next_slot = self.next_slot.max(Instant::now() + jittered);
    }

    fn snapshot(&self, ctx: &PollContext) -> Snapshot {
        let mut b = ctx.snapshot_builder();
        let requests = self
            .requests
            .iter()
            .map(|(code, n)| (DEVICE_FLOW, code.as_str(), *n));
        metrics::target(&mut b, self.devices.len(), requests);
        for device in self.devices.iter() {
            let Some(state) = self.state.get(device) else {
                continue;
            };
            metrics::fetch(&mut b, device, state.data.is_some(), state.last_success);
            if let Some(flow) = &state.data {
                metrics::device(&mut b, device, flow, &self.settings.mapping);
            }
        }
        b.finish()
    }

    /// Picks up an edited `devices_file` at the next poll: a reload that leaves the config text
    /// unchanged keeps this driver, so the file's own change is what counts.
    fn reread_devices_file(&mut self, ctx: &PollContext) {
        let Some(path) = self.settings.devices_file.as_deref() else {
            return;
        };
        let now = modified(path);
        if now == self.file_modified {
            return;
        }
        self.file_modified = now;
        match device_list(&self.settings.opts.devices, Some(path)) {
            Ok(list) if !list.is_empty() => {
                self.state.retain(|d, _| list.contains(d));
                self.devices = list.into();
            }
            Ok(_) => warn!(
                target_name = ctx.target(),
                "devices_file lists no devices; keeping the last list"
            ),
            Err(e) => warn!(target_name = ctx.target(), error = %e, "keeping the last device list"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_offsets() {
        assert_eq!(parse_utc_offset("+08:00"), Ok(28_800));
        assert_eq!(parse_utc_offset("-05:30"), Ok(-19_800));
        assert_eq!(parse_utc_offset("+8"), Ok(28_800));
        assert_eq!(parse_utc_offset("Z"), Ok(0));
        assert!(parse_utc_offset("8").is_err());
        assert!(parse_utc_offset("+25:00").is_err());
    }

    #[test]
    fn device_lists_merge_dedupe_and_skip_comments() {
        let dir = std::env::temp_dir().join(format!("iot-devices-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("devices.txt");
        std::fs::write(&file, "# fleet\n111\n\n222  # spare\n111\r\n").unwrap();
        let list = device_list(&["333".into(), "111".into()], Some(&file)).unwrap();
        assert_eq!(list, ["333", "111", "222"]);
        let e = device_list(&[], Some(&dir.join("missing"))).unwrap_err();
        assert!(e.starts_with("devices_file: cannot read"), "{e}");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn debug_redacts_secrets() {
        let (config, spec) = crate::util::testing::config_debug(
            "iot",
            "app_id = \"a\"\napp_secret = \"Iot-debug-secret\"\ndevices = [\"1\"]",
        );
        let opts: super::Options = spec.driver_options().unwrap();
        let shown = format!("{config} {spec:?} {opts:?}");
        crate::util::testing::assert_redacted(&shown, "Iot-debug-secret");
    }
}
