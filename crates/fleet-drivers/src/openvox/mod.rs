//! OpenVox IAD analog VoIP gateways (iAG800 and siblings): `POST /controller/...` with a token
//! in the JSON body.
//!
//! Calls per poll, one at a time: `sys_info/performance`, `sys_info/interface` for each slot,
//! `sys_info/device_info` (no token needed, delayed 0–2 s by the device), and `sys_info/cdr` for
//! each slot when `cdr = true`; `sys_info/oem` after each login and about hourly (every
//! hour's worth of polls); the gateway's settings (pending configuration, clock, packages) on
//! their own slow cadence (`settings.rs`). A poll fetches every section's answer, then maps
//! them; a failed section costs only its own series.

mod calls;
mod client;
mod cpu;
pub mod metrics;
pub mod model;
mod settings;
mod unrecognized;
mod words;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Map, Value};

use self::client::OpenvoxClient;
use self::metrics::{CallCounters, CpuSampler, DeviceWords, Unrecognized};
use self::model::{cdr_records, data_object, DeviceInfo, Interface, Oem, Performance};
use self::settings::{clock_offset, DeviceSettings};
use crate::util::{check_series, Cached, Policy, Sections};
use fleet_core::config::{Secret, TargetSpec};
use fleet_core::driver::{factory, Driver, DriverFactory, Kind, PollContext, PollError};
use fleet_core::snapshot::{Snapshot, SnapshotBuilder};

pub(crate) const KIND: Kind = Kind {
    name: "openvox",
    secret_keys: &["password"],
    families: metrics::FAMILIES,
    configure,
};

/// `sys_info/oem` changes only with firmware; the document says to read it once after login.
/// It is read again after this long's worth of polls all the same.
const OEM_EVERY: Duration = Duration::from_secs(3600);
/// A guard against a `maxslots` no gateway has: every slot costs a call per poll.
const MAX_SLOTS: u64 = 16;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Options {
    #[serde(default = "default_username")]
    username: String,
    password: Secret,
    /// How long the device keeps a token (its `session_user` setting; 600 s by default).
    #[serde(
        default = "default_token_ttl",
        deserialize_with = "fleet_core::config::deserialize_duration"
    )]
    token_ttl: Duration,
    /// Count calls from the CDR log (the device's CDR function must be on).
    #[serde(default)]
    cdr: bool,
    /// Entries read per list of one answer (interface boards, ports); the rest are skipped
    /// unread and counted as `limit`.
    #[serde(default = "default_max_rows")]
    max_rows: usize,
    /// CDR records read per answer (the device's log window); the rest are skipped unread.
    #[serde(default = "default_max_cdr_records")]
    max_cdr_records: usize,
    /// Distinct values each label of the gateway's own words keeps (port signalling and echo
    /// canceller, alarm words, SIP registration states); later new words count as `other`.
    #[serde(default = "default_max_label_values")]
    max_label_values: usize,
    /// Series the target's snapshot may hold; past it the poll fails with `limit`. 0: no bound.
    #[serde(default = "crate::util::default_max_series")]
    max_series: usize,
    /// Optional packages whose version is exported (`sys_info/package`, one call per name,
    /// hourly); empty asks none.
    #[serde(default = "settings::default_packages")]
    packages: Vec<String>,
}

fn default_max_rows() -> usize {
    10_000
}
fn default_max_cdr_records() -> usize {
    50_000
}
fn default_max_label_values() -> usize {
    crate::util::DEFAULT_MAX_LABEL_VALUES
}

fn default_username() -> String {
    "admin".into()
}
fn default_token_ttl() -> Duration {
    Duration::from_secs(600)
}

fn configure(spec: &TargetSpec) -> Result<DriverFactory, String> {
    let opts: Options = spec.driver_options()?;
    if opts.token_ttl < Duration::from_secs(10) {
        return Err("token_ttl: must be at least 10s".into());
    }
    crate::util::check_max_rows(opts.max_rows)?;
    if opts.max_cdr_records == 0 {
        return Err("max_cdr_records: must be at least 1".into());
    }
    if let Some(bad) = opts.packages.iter().find(|p| !(1..=64).contains(&p.len())) {
        return Err(format!(
            "packages: {bad:?} is not a package name (1 to 64 bytes)"
        ));
    }
    let oem_every = (OEM_EVERY.as_secs_f64() / spec.interval.as_secs_f64().max(1e-3)).ceil();
    let oem_every = (oem_every as u64).max(1);
    let opts = Arc::new(opts);
    let (url, timeout, interval) = (spec.url.clone(), spec.timeout, spec.interval);
    Ok(factory(move || {
        let client = OpenvoxClient::new(
            &url,
            opts.username.clone(),
            opts.password.clone(),
            timeout,
            opts.token_ttl,
            (opts.max_rows, opts.max_cdr_records),
        );
        OpenvoxDriver {
            client,
            cdr: opts.cdr,
            oem: Cached::new(oem_every),
            oem_logins: 0,
            cpu: CpuSampler::default(),
            calls: Arc::default(),
            words: DeviceWords::new(opts.max_label_values),
            max_series: opts.max_series,
            settings: DeviceSettings::new(interval, opts.packages.clone()),
        }
    }))
}

struct OpenvoxDriver {
    client: OpenvoxClient,
    cdr: bool,
    /// The last `sys_info/oem` answer, read about hourly and after every login.
    oem: Cached<Oem>,
    /// The client's login count when the OEM answer was read: a new login (maybe a rebooted,
    /// upgraded device) makes it due again.
    oem_logins: u64,
    cpu: CpuSampler,
    /// Shared with the blocking thread that counts a CDR answer.
    calls: Arc<Mutex<CallCounters>>,
    /// The gateway's words seen in labels so far, each label capped.
    words: DeviceWords,
    max_series: usize,
    settings: DeviceSettings,
}

/// The typed answers of one poll; a failed section has none.
#[derive(Default)]
struct Answers {
    performance: Option<Performance>,
    /// By slot number.
    interfaces: Vec<(u64, Interface)>,
    device_info: Option<DeviceInfo>,
    /// The clock offset from `device_info.os_time`, measured when its answer arrived.
    os_time_offset: Option<f64>,
    /// CDR records without a readable time or disposition, over the slots read; `Some` once a
    /// CDR answer was read (and counted). Only with `cdr = true`.
    cdr: Option<u32>,
}

impl Driver for OpenvoxDriver {
    async fn poll(&mut self, ctx: &mut PollContext) -> Result<Snapshot, PollError> {
        self.client.begin_poll();
        let mut sections = Sections::new(Policy::DEVICE);
        let answers = self.fetch(ctx, &mut sections).await?;
        let mut b = ctx.snapshot_builder();
        self.map(&mut b, &answers, ctx);
        drop(answers);
        self.client.rows_cut.finish(ctx, &self.client.caps());
        sections.finish(ctx, false)?;
        check_series(b.finish(), self.max_series)
    }
}

fn lock(calls: &Mutex<CallCounters>) -> std::sync::MutexGuard<'_, CallCounters> {
    calls.lock().unwrap_or_else(|e| e.into_inner())
}

fn decode(path: &str) -> impl Fn(String) -> PollError + '_ {
    move |e| PollError::decode(format!("{path}: {e}"))
}

fn slot_params(slot: u64) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("slotnum".into(), json!(slot));
    m
}

impl OpenvoxDriver {
    /// Every section's answer, one call at a time.
    async fn fetch(
        &mut self,
        ctx: &mut PollContext,
        sections: &mut Sections,
    ) -> Result<Answers, PollError> {
        let mut a = Answers {
            performance: sections.record(self.performance(ctx).await)?,
            ..Answers::default()
        };
        // A cached OEM answer is not a section that succeeded: a gateway answering nothing but
        // garbage must fail the poll rather than serve the cache.
        if self.client.logins() != self.oem_logins {
            self.oem.expire();
        }
        if self.oem.due() {
            sections.record(self.refresh_oem(ctx).await)?;
        }
        self.oem.tick();
        let slots = self.slots();
        for slot in 0..slots {
            if let Some(iface) = sections.record(self.interface(ctx, slot).await)? {
                a.interfaces.push((slot, iface));
            }
        }
        let info = self.device_info().await;
        let arrived = fleet_core::time::unix_seconds(std::time::SystemTime::now());
        a.device_info = sections.record(info)?;
        a.os_time_offset = a
            .device_info
            .as_ref()
            .and_then(|i| i.os_time)
            .map(|t| clock_offset(t, arrived));
        self.settings
            .refresh(&mut self.client, ctx, sections)
            .await?;
        if self.cdr {
            for slot in 0..slots {
                if let Some(unread) = sections.record(self.cdr(ctx, slot).await)? {
                    *a.cdr.get_or_insert(0) += unread;
                }
            }
        }
        Ok(a)
    }

    /// One poll's answers → samples. Nested fields of a board that cannot be read cost only
    /// their own series and become partial errors.
    fn map(&mut self, b: &mut SnapshotBuilder, a: &Answers, ctx: &mut PollContext) {
        let mut unrecognized = Unrecognized::default();
        if let Some(perf) = &a.performance {
            metrics::performance(b, perf, &mut self.cpu);
        }
        if let Some(oem) = self.oem.get() {
            metrics::info(b, oem);
        }
        for (slot, iface) in &a.interfaces {
            let mut problems = Vec::new();
            for board in &iface.interface {
                let label = board.slotnum.map_or(*slot, |s| s as u64).to_string();
                metrics::board(
                    b,
                    iface.uptime,
                    &label,
                    board,
                    &mut self.words,
                    &mut unrecognized,
                    &mut problems,
                );
            }
            ctx.partial_errors
                .extend(problems.into_iter().map(decode("sys_info/interface")));
        }
        if let Some(info) = &a.device_info {
            metrics::storage(b, info.use_storage);
        }
        self.settings.export(b, a.os_time_offset);
        if self.cdr {
            unrecognized.cdr += a.cdr.unwrap_or(0);
            lock(&self.calls).export(b);
        }
        unrecognized.export(b);
        self.words.export(b);
    }

    /// Slots to read: `maxslots` from `sys_info/oem`, or slot 0 until it is known.
    fn slots(&self) -> u64 {
        let max = self.oem.get().and_then(|oem| oem.maxslots);
        max.map_or(1, |n| (n.max(1.0) as u64).min(MAX_SLOTS))
    }

    async fn performance(&mut self, ctx: &mut PollContext) -> Result<Performance, PollError> {
        const PATH: &str = "sys_info/performance";
        let data = self.client.call(ctx, PATH, Map::new()).await?;
        data_object(data).map_err(decode(PATH))
    }

    async fn refresh_oem(&mut self, ctx: &mut PollContext) -> Result<(), PollError> {
        const PATH: &str = "sys_info/oem";
        let data = self.client.call(ctx, PATH, Map::new()).await?;
        self.oem.store(data_object(data).map_err(decode(PATH))?);
        self.oem_logins = self.client.logins();
        Ok(())
    }

    async fn interface(
        &mut self,
        ctx: &mut PollContext,
        slot: u64,
    ) -> Result<Interface, PollError> {
        const PATH: &str = "sys_info/interface";
        let data = self.client.call(ctx, PATH, slot_params(slot)).await?;
        let iface: Interface = data_object(data).map_err(decode(PATH))?;
        if iface.interface.is_empty() {
            return Err(PollError::decode(format!(
                "{PATH}: slot {slot} lists no interface board"
            )));
        }
        Ok(iface)
    }

    async fn device_info(&mut self) -> Result<DeviceInfo, PollError> {
        const PATH: &str = "sys_info/device_info";
        let data = self.client.call_anonymous(PATH).await?;
        data_object(data).map_err(decode(PATH))
    }

    /// Reads and counts one slot's CDR answer, off the async runtime (tens of thousands of
    /// records are real work); returns how many records were not recognised. A poll cancelled
    /// meanwhile abandons the wait, not the count: the records are counted once either way.
    async fn cdr(&mut self, ctx: &mut PollContext, slot: u64) -> Result<u32, PollError> {
        const PATH: &str = "sys_info/cdr";
        let mut params = slot_params(slot);
        for key in ["limit", "source_tpl", "source"] {
            params.insert(key.into(), "".into());
        }
        let data = self.client.call(ctx, PATH, params).await?;
        let calls = self.calls.clone();
        let counted = tokio::task::spawn_blocking(move || {
            let records = cdr_records(data)?;
            let mut unrecognized = Unrecognized::default();
            lock(&calls).count(slot, &records, &mut unrecognized);
            Ok(unrecognized.cdr)
        });
        counted
            .await
            .map_err(|e| PollError::decode(format!("{PATH}: {e}")))?
            .map_err(decode(PATH))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fleet_core::config::{Config, FileFormat};

    fn parse(extra: &str) -> Result<Config, String> {
        let text = format!(
            "[[targets]]\nname = \"gw\"\nkind = \"openvox\"\nurl = \"http://192.0.2.9\"\npassword = \"pw\"\n{extra}"
        );
        Config::parse(
            &text,
            FileFormat::Toml,
            std::path::Path::new("."),
            crate::KINDS,
        )
        .map_err(|e| e.to_string())
    }

    #[test]
    fn options_are_checked_and_secrets_stay_hidden() {
        assert!(parse("cdr = true\ntoken_ttl = \"5m\"\n").is_ok());
        let e = parse("token_tll = \"5m\"\n").unwrap_err();
        assert!(
            e.contains("target \"gw\"") && e.contains("token_tll"),
            "{e}"
        );
        let e = parse("token_ttl = \"1s\"\n").unwrap_err();
        assert!(e.contains("token_ttl"), "{e}");
        let e = parse("token_ttl = \"soon\"\n").unwrap_err();
        assert!(e.contains("duration"), "{e}");
        let opts: Options = serde_json::from_value(json!({"password": "hunter2"})).unwrap();
        assert!(!format!("{opts:?}").contains("hunter2"));
        assert_eq!(opts.token_ttl, Duration::from_secs(600));
        assert!(!opts.cdr);
    }

    #[test]
    fn debug_redacts_secrets() {
        let (config, spec) =
            crate::util::testing::config_debug("openvox", "password = \"Ov-debug-secret\"");
        let opts: super::Options = spec.driver_options().unwrap();
        let shown = format!("{config} {spec:?} {opts:?}");
        crate::util::testing::assert_redacted(&shown, "Ov-debug-secret");
    }
}
