//! OpenVox IAD analog VoIP gateways (iAG800 and siblings): `POST /controller/...` with a token
//! in the JSON body.
//!
//! Calls per poll, one at a time: `sys_info/performance`, `sys_info/interface` for each slot,
//! `sys_info/device_info` (no token needed, delayed 0–2 s by the device), and `sys_info/cdr` for
//! each slot when `cdr = true`; `sys_info/oem` after each login and hourly. A failed section
//! costs only its own series.

mod client;
pub mod metrics;
pub mod model;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{json, Map, Value};

use self::client::OpenvoxClient;
use self::metrics::{CallCounters, CpuSampler, Unrecognized};
use self::model::{cdr_records, data_object, DeviceInfo, Interface, Oem, Performance};
use crate::util::Sections;
use fleet_core::config::{Secret, TargetSpec};
use fleet_core::driver::{factory, Driver, DriverFactory, Kind, PollContext, PollError};
use fleet_core::snapshot::{Snapshot, SnapshotBuilder};

pub const KIND: Kind = Kind {
    name: "openvox",
    secret_keys: &["password"],
    families: metrics::FAMILIES,
    configure,
};

/// `sys_info/oem` changes only with firmware; the document says to read it once after login.
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
    let opts = Arc::new(opts);
    let (url, timeout) = (spec.url.clone(), spec.timeout);
    Ok(factory(move || {
        let client = OpenvoxClient::new(
            &url,
            opts.username.clone(),
            opts.password.clone(),
            timeout,
            opts.token_ttl,
        );
        OpenvoxDriver {
            client,
            cdr: opts.cdr,
            oem: None,
            cpu: CpuSampler::default(),
            calls: CallCounters::default(),
        }
    }))
}

/// The last `sys_info/oem` answer and when it was read.
struct CachedOem {
    oem: Oem,
    read: Instant,
    /// The client's login count at the time: a new login (maybe a rebooted, upgraded device)
    /// makes it due again.
    logins: u64,
}

struct OpenvoxDriver {
    client: OpenvoxClient,
    cdr: bool,
    oem: Option<CachedOem>,
    cpu: CpuSampler,
    calls: CallCounters,
}

impl Driver for OpenvoxDriver {
    async fn poll(&mut self, ctx: &mut PollContext) -> Result<Snapshot, PollError> {
        self.poll_gateway(ctx).await
    }
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
    async fn poll_gateway(&mut self, ctx: &mut PollContext) -> Result<Snapshot, PollError> {
        self.client.begin_poll();
        let mut b = ctx.snapshot_builder();
        let mut unrecognized = Unrecognized::default();
        let mut sections = Sections::default();

        sections.record(self.performance(ctx, &mut b).await)?;
        // A cached OEM answer is not a section that succeeded: a gateway answering nothing but
        // garbage must fail the poll rather than serve the cache.
        if self.oem_due() {
            sections.record(self.refresh_oem(ctx).await)?;
        }
        if let Some(cached) = &self.oem {
            metrics::info(&mut b, &cached.oem);
        }
        let slots = self.slots();
        for slot in 0..slots {
            let r = self.interface(ctx, &mut b, slot, &mut unrecognized).await;
            sections.record(r)?;
        }
        sections.record(self.device_info(&mut b).await)?;
        if self.cdr {
            for slot in 0..slots {
                let r = self.cdr(ctx, slot, &mut unrecognized).await;
                sections.record(r)?;
            }
            self.calls.export(&mut b);
        }
        unrecognized.export(&mut b);

        sections.finish(ctx)?;
        Ok(b.finish())
    }

    /// Slots to read: `maxslots` from `sys_info/oem`, or slot 0 until it is known.
    fn slots(&self) -> u64 {
        let max = self.oem.as_ref().and_then(|c| c.oem.maxslots);
        max.map_or(1, |n| (n.max(1.0) as u64).min(MAX_SLOTS))
    }

    async fn performance(
        &mut self,
        ctx: &mut PollContext,
        b: &mut SnapshotBuilder,
    ) -> Result<(), PollError> {
        const PATH: &str = "sys_info/performance";
        let data = self.client.call(ctx, PATH, Map::new()).await?;
        let perf: Performance = data_object(data).map_err(decode(PATH))?;
        metrics::performance(b, &perf, &mut self.cpu);
        Ok(())
    }

    /// Whether to read the OEM answer: after every login, as the document says, and hourly.
    fn oem_due(&self) -> bool {
        let logins = self.client.logins();
        self.oem
            .as_ref()
            .is_none_or(|c| c.logins != logins || c.read.elapsed() >= OEM_EVERY)
    }

    async fn refresh_oem(&mut self, ctx: &mut PollContext) -> Result<(), PollError> {
        const PATH: &str = "sys_info/oem";
        let data = self.client.call(ctx, PATH, Map::new()).await?;
        let oem: Oem = data_object(data).map_err(decode(PATH))?;
        self.oem = Some(CachedOem {
            oem,
            read: Instant::now(),
            logins: self.client.logins(),
        });
        Ok(())
    }

    async fn interface(
        &mut self,
        ctx: &mut PollContext,
        b: &mut SnapshotBuilder,
        slot: u64,
        unrecognized: &mut Unrecognized,
    ) -> Result<(), PollError> {
        const PATH: &str = "sys_info/interface";
        let data = self.client.call(ctx, PATH, slot_params(slot)).await?;
        let iface: Interface = data_object(data).map_err(decode(PATH))?;
        if iface.interface.is_empty() {
            return Err(PollError::decode(format!(
                "{PATH}: slot {slot} lists no interface board"
            )));
        }
        let mut problems = Vec::new();
        for board in &iface.interface {
            let label = board.slotnum.map_or(slot, |s| s as u64).to_string();
            metrics::board(b, iface.uptime, &label, board, unrecognized, &mut problems);
        }
        let problems = problems.into_iter().map(decode(PATH));
        ctx.partial_errors.extend(problems);
        Ok(())
    }

    async fn device_info(&mut self, b: &mut SnapshotBuilder) -> Result<(), PollError> {
        const PATH: &str = "sys_info/device_info";
        let data = self.client.call_anonymous(PATH).await?;
        let info: DeviceInfo = data_object(data).map_err(decode(PATH))?;
        metrics::storage(b, info.use_storage);
        Ok(())
    }

    async fn cdr(
        &mut self,
        ctx: &mut PollContext,
        slot: u64,
        unrecognized: &mut Unrecognized,
    ) -> Result<(), PollError> {
        const PATH: &str = "sys_info/cdr";
        let mut params = slot_params(slot);
        for key in ["limit", "source_tpl", "source"] {
            params.insert(key.into(), "".into());
        }
        let data = self.client.call(ctx, PATH, params).await?;
        let records = cdr_records(data).map_err(decode(PATH))?;
        self.calls.count(slot, &records, unrecognized);
        Ok(())
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
