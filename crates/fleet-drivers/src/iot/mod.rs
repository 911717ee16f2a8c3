//! IoT agent platform: portable Wi-Fi devices and their SIM cards, one signed
//! `POST /openapi/iot/queryDeviceFlow` per device.
//!
//! A good API citizen: requests are paced at `rate_limit` per second with at most `concurrency`
//! in flight, and each device is asked about once per `device_interval`, so a poll only asks
//! the share of the fleet that is due and the requests spread over time instead of bursting
//! (`pacing.rs`). Between answers a device keeps its last known series. The device list can
//! come from a file, re-read when it changes (`devices.rs`). The batch card calls and the
//! account-assets call, whose paths are not published, are asked only when configured
//! (`batch.rs`), once per `device_interval`. A poll asks, then maps every device's last answer,
//! kept as the values its series need (`reading.rs`).

mod batch;
mod client;
mod details;
mod devices;
pub mod metrics;
pub mod model;
mod pacing;
pub mod reading;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::Deserialize;
use tokio::task::JoinSet;
use tokio::time::Instant;

use self::batch::{AssetsCall, CardCall, CardValues};
use self::client::{IotClient, Outcome, DEVICE_FLOW};
use self::devices::{device_list, DeviceList};
use self::metrics::Mapping;
use self::pacing::{Pacer, Rotation};
use self::reading::DeviceReading;
use crate::util::{check_series, count_folded, LabelFold, OnFatal, Policy, Sections};
use fleet_core::config::{Secret, TargetSpec};
use fleet_core::driver::{factory, Driver, DriverFactory, Kind, PollContext, PollError, Reason};
use fleet_core::snapshot::Snapshot;
use fleet_core::time::unix_seconds;

pub(crate) const KIND: Kind = Kind {
    name: "iot",
    secret_keys: &["app_secret"],
    families: metrics::FAMILIES,
    configure,
};

/// Pacing keeps this much below the limit, so network jitter cannot squeeze two requests into
/// the platform's view of one interval.
const RATE_GUARD: f64 = 1.02;
/// A refused signature or an unreachable platform is shared by every further request: no more
/// are sent, but the answers in flight are kept, and devices keep their last known series.
const FLEET: Policy = Policy {
    fatal: &[Reason::Auth, Reason::Connect],
    on_fatal: OnFatal::StopAsking,
};

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
    /// `effectiveSim` code → the slot it names (`main`, `vice1`, `vice2`); the platform does
    /// not publish the codes, so none is assumed.
    #[serde(default)]
    effective_sim_slots: BTreeMap<String, String>,
    /// ICCIDs asked through `card_calls`, whether or not they are in a configured device.
    #[serde(default)]
    cards: Vec<String>,
    /// The platform's batch card calls, as its full documentation names them; none by default.
    #[serde(default)]
    card_calls: Vec<CardCall>,
    /// The platform's account-assets call; off by default.
    account_assets: Option<AssetsCall>,
    /// SIM cards read per device answer (a device has up to three); the rest are skipped
    /// unread and counted as `limit`. Also the cap on entries of any other list in an answer.
    #[serde(default = "default_max_rows")]
    max_rows: usize,
    /// Distinct platform answer codes `iot_api_requests_total` keeps; later new codes count as
    /// `other`.
    #[serde(default = "default_max_label_values")]
    max_label_values: usize,
    /// Series the target's snapshot may hold; past it the poll fails with `limit`. 0: no bound.
    #[serde(default = "crate::util::default_max_series")]
    max_series: usize,
}

fn default_max_rows() -> usize {
    16
}
fn default_max_label_values() -> usize {
    crate::util::DEFAULT_MAX_LABEL_VALUES
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
    crate::util::check_max_rows(opts.max_rows)?;
    batch::check(&opts.card_calls, opts.account_assets.as_ref())?;
    if !opts.card_calls.is_empty() && opts.cards.is_empty() {
        return Err("cards: `card_calls` need the ICCIDs to ask for".into());
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
        effective_sim_slots: details::effective_sim_slots(&opts.effective_sim_slots)?,
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
            s.opts.max_rows,
        );
        IotDriver {
            client: Arc::new(client),
            devices: DeviceList::new(devices.clone(), s.devices_file.clone()),
            settings: s.clone(),
            state: HashMap::new(),
            rotation: Rotation::default(),
            pacer: Pacer::new(s.spacing),
            requests: BTreeMap::new(),
            codes: LabelFold::new(
                "iot_api_requests_total",
                "code",
                s.opts.max_label_values,
                OWN_CODES,
            ),
            extra: Extra::default(),
        }
    }))
}

/// What the exporter knows of one device.
#[derive(Default)]
struct DeviceState {
    /// The last answer's values, while the last request succeeded (boxed: the map holds one
    /// state per device, with room to spare).
    reading: Option<Box<DeviceReading>>,
    last_success: Option<f64>,
}

struct IotDriver {
    client: Arc<IotClient>,
    settings: Arc<Settings>,
    devices: DeviceList,
    state: HashMap<String, DeviceState>,
    rotation: Rotation,
    pacer: Pacer,
    /// `iot_api_requests_total` by answer code.
    requests: BTreeMap<String, u64>,
    /// The platform's codes seen so far, up to `max_label_values`.
    codes: LabelFold,
    extra: Extra,
}

/// What the configured batch card and account-assets calls said, and when to ask again.
#[derive(Default)]
struct Extra {
    cards: BTreeMap<String, CardValues>,
    account_balance: Option<f64>,
    /// When the next round is due; `None` before the first.
    due: Option<Instant>,
    /// `iot_api_requests_total` of these calls: by call name, then code.
    requests: BTreeMap<String, BTreeMap<String, u64>>,
}

/// The `endpoint` label of the account-assets call.
const ACCOUNT_ASSETS: &str = "account_assets";

/// `code` values that are not the platform's choice: success and our own failure reasons.
const OWN_CODES: &[&str] = &[
    "0", "timeout", "connect", "http", "auth", "api", "decode", "limit",
];

impl Driver for IotDriver {
    async fn poll(&mut self, ctx: &mut PollContext) -> Result<Snapshot, PollError> {
        if self
            .devices
            .reread(&self.settings.opts.devices, ctx.target())
        {
            let list = self.devices.devices();
            self.state.retain(|d, _| list.contains(d));
        }
        let mut tally = Sections::new(FLEET);
        let started = Instant::now();
        self.ask_due_devices(&mut tally).await;
        self.ask_extra_calls(started, &mut tally).await;
        let known = self.state.values().any(|d| d.reading.is_some());
        let caps = format!("max_rows = {}", self.settings.opts.max_rows);
        self.client.rows_cut.finish(ctx, &caps);
        tally.finish(ctx, known)?;
        check_series(self.snapshot(ctx), self.settings.opts.max_series)
    }
}

impl IotDriver {
    /// Asks the devices due in this poll, paced, at most `concurrency` at once, and records
    /// every answer.
    async fn ask_due_devices(&mut self, tally: &mut Sections) {
        let started = Instant::now();
        let s = self.settings.clone();
        let n = self.devices.devices().len();
        let quota = self.rotation.quota(started, n, s.opts.device_interval);
        // The last moment a request may start and still end before the poll's deadline.
        let cutoff = started + s.timeout.mul_f64(0.9).saturating_sub(s.request_timeout);

        let mut tasks = JoinSet::new();
        let mut launched = 0;
        while launched < quota && !tally.stopped() {
            while tasks.len() >= s.opts.concurrency {
                if let Some(Ok((device, outcome))) = tasks.join_next().await {
                    self.record(device, outcome, tally);
                }
            }
            if !self.pacer.take_slot(cutoff, launched == 0).await {
                break;
            }
            let device = self.rotation.next(self.devices.devices()).to_string();
            let client = self.client.clone();
            tasks.spawn(async move {
                let outcome = client.device_flow(&device).await;
                (device, outcome)
            });
            launched += 1;
            while let Some(Ok((device, outcome))) = tasks.try_join_next() {
                self.record(device, outcome, tally);
            }
        }
        self.rotation.owe(quota - launched);
        while let Some(joined) = tasks.join_next().await {
            if let Ok((device, outcome)) = joined {
                self.record(device, outcome, tally);
            }
        }
    }

    fn record(&mut self, device: String, outcome: Outcome, tally: &mut Sections) {
        count_folded(&mut self.requests, &mut self.codes, &outcome.code, 1);
        self.pace(&outcome.code, outcome.result.is_ok());
        // Under `OnFatal::StopAsking` the tally keeps a fatal failure rather than returning it.
        let flow = tally.record(outcome.result).unwrap_or_default();
        let reading = flow.map(|f| Box::new(DeviceReading::read(&f, &self.settings.mapping)));
        let state = self.state.entry(device).or_default();
        if reading.is_some() {
            state.last_success = Some(unix_seconds(SystemTime::now()));
        }
        state.reading = reading;
    }

    /// An answer lets requests flow again; 429s and 5xx pause them.
    fn pace(&mut self, code: &str, ok: bool) {
        if ok {
            self.pacer.answered();
        } else if code == "http_429" || code.starts_with("http_5") {
            self.pacer.pause();
        }
    }

    /// Asks the configured batch card and account-assets calls when their round is due, paced
    /// like the device calls. A round that does not fit before the deadline is asked again in
    /// the next poll, and the last round's values stay until one completes.
    async fn ask_extra_calls(&mut self, started: Instant, tally: &mut Sections) {
        let s = self.settings.clone();
        let opts = &s.opts;
        if opts.card_calls.is_empty() && opts.account_assets.is_none() {
            return;
        }
        if self.extra.due.is_some_and(|due| started < due) {
            return;
        }
        let cutoff = started + s.timeout.mul_f64(0.9).saturating_sub(s.request_timeout);
        let (flow_bytes, offset) = (s.mapping.flow_bytes, s.mapping.utc_offset_secs);
        let mut cards: BTreeMap<String, CardValues> = BTreeMap::new();
        for call in &opts.card_calls {
            let Ok(url) = self.client.url_of(&call.path) else {
                continue;
            };
            for chunk in opts.cards.chunks(call.batch_size) {
                if tally.stopped() || !self.pacer.take_slot(cutoff, false).await {
                    return;
                }
                let iccids = chunk.join(",");
                let params = batch::params(call, unix_seconds(SystemTime::now()), offset);
                let mut form = vec![(call.iccids_param.as_str(), iccids.as_str())];
                form.extend(params.iter().map(|(k, v)| (k.as_str(), v.as_str())));
                let cap = call.batch_size.max(opts.max_rows);
                let outcome = self
                    .client
                    .call::<serde_json::Value>(url.clone(), &form, cap, &call.name)
                    .await;
                let read = outcome.result.and_then(|data| {
                    batch::read_cards(call, &data, flow_bytes, offset).map_err(PollError::decode)
                });
                self.count_extra(&call.name, &outcome.code, read.is_ok());
                for (iccid, values) in tally.record(read).ok().flatten().into_iter().flatten() {
                    batch::merge(cards.entry(iccid).or_default(), &values);
                }
            }
        }
        self.extra.cards = cards;
        if let Some(assets) = &opts.account_assets {
            if let Ok(url) = self.client.url_of(&assets.path) {
                if tally.stopped() || !self.pacer.take_slot(cutoff, false).await {
                    return;
                }
                let outcome = self
                    .client
                    .call::<serde_json::Value>(url, &[], opts.max_rows, "account_assets")
                    .await;
                let read = outcome
                    .result
                    .and_then(|data| batch::read_balance(assets, &data).map_err(PollError::decode));
                self.count_extra(ACCOUNT_ASSETS, &outcome.code, read.is_ok());
                self.extra.account_balance = tally.record(read).ok().flatten();
            }
        }
        self.extra.due = Some(started + opts.device_interval);
    }

    fn count_extra(&mut self, endpoint: &str, code: &str, ok: bool) {
        let counts = self.extra.requests.entry(endpoint.to_owned()).or_default();
        count_folded(counts, &mut self.codes, code, 1);
        self.pace(code, ok);
    }

    fn snapshot(&self, ctx: &PollContext) -> Snapshot {
        let mut b = ctx.snapshot_builder();
        let extra = self.extra.requests.iter().flat_map(|(endpoint, codes)| {
            codes
                .iter()
                .map(move |(code, n)| (endpoint.as_str(), code.as_str(), *n))
        });
        let requests = self
            .requests
            .iter()
            .map(|(code, n)| (DEVICE_FLOW, code.as_str(), *n))
            .chain(extra);
        let devices = self.devices.devices();
        metrics::target(&mut b, devices.len(), requests);
        self.codes.export(&mut b);
        for device in devices {
            let Some(state) = self.state.get(device) else {
                continue;
            };
            metrics::fetch(&mut b, device, state.reading.is_some(), state.last_success);
            if let Some(reading) = &state.reading {
                metrics::device_series(&mut b, device, reading, &self.settings.mapping);
            }
        }
        for (iccid, values) in &self.extra.cards {
            batch::export_card(&mut b, iccid, values);
        }
        batch::export_account(&mut b, self.extra.account_balance);
        b.finish()
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
