//! What the gateway says of its own settings: configuration saved but not applied
//! (`general/apply_get`), its clock against the exporter's (`sys_info/device_info.os_time`, and
//! `sys_option/datetime_get` with the time zone and NTP), and the optional packages installed
//! (`sys_info/package`, asked by name).
//!
//! These change with an operator's hand, not by the second, so they are read on a slow cadence:
//! pending configuration and the clock settings every five minutes' worth of polls, packages
//! hourly and after each login (a rebooted gateway may have been upgraded). Each is read on its
//! schedule only, not again on every poll while it fails, so a firmware without one of these
//! calls costs one failed request per period. Between reads the last answer is exported.
//!
//! The clock offset is measured every poll from `os_time`, which the poll reads anyway: the
//! device's whole seconds (plus half a second, since it truncates) minus the exporter's time
//! when the answer arrived. The device delays that answer 0–2 s on purpose before it answers,
//! so the arrival, not the request, is the instant `os_time` was read. Without `os_time` the
//! offset comes from `datetime_get`'s `timestamp`, measured the same way when it was read.

use std::time::{Duration, SystemTime};

use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::client::OpenvoxClient;
use super::model::data_object;
use crate::util::{lenient, Cached, Sections};
use fleet_core::driver::{PollContext, PollError};
use fleet_core::snapshot::{Family, SnapshotBuilder};
use fleet_core::time::unix_seconds;

pub(super) static UNAPPLIED: Family = Family::gauge(
    "openvox_config_unapplied",
    "1 when the gateway's configuration of the scope was changed and not applied.",
    &["scope"],
);
pub(super) static CLOCK_OFFSET: Family = Family::gauge(
    "openvox_clock_offset_seconds",
    "The gateway's clock minus the exporter's; positive when the gateway is ahead.",
    &[],
);
pub(super) static NTP_ENABLED: Family = Family::gauge(
    "openvox_ntp_enabled",
    "1 when the gateway synchronises its clock by NTP.",
    &[],
);
pub(super) static CLOCK_INFO: Family = Family::gauge(
    "openvox_clock_info",
    "The gateway's time zone and NTP servers as it writes them; always 1.",
    &["timezone", "ntp_servers"],
);
pub(super) static PACKAGE_INFO: Family = Family::gauge(
    "openvox_package_info",
    "Optional package installed on the gateway, with its version; always 1.",
    &["package", "version"],
);

/// Pending configuration and clock settings are read this often.
const SETTINGS_EVERY: Duration = Duration::from_secs(300);
/// Packages change with firmware and plug-ins: hourly, and after each login.
const PACKAGES_EVERY: Duration = Duration::from_secs(3600);
/// Scopes `general/apply_get` may list; the device's are `network` and `voip`.
const MAX_SCOPES: usize = 8;
/// Device text in labels stays short.
const MAX_LABEL_CHARS: usize = 128;

/// The optional packages asked for by default: the two the document names.
pub(super) fn default_packages() -> Vec<String> {
    vec!["icvp-snmp".into(), "ocloudclient".into()]
}

/// Polls in `period` at `interval`, at least 1.
pub(super) fn polls_in(period: Duration, interval: Duration) -> u64 {
    ((period.as_secs_f64() / interval.as_secs_f64().max(1e-3)).ceil() as u64).max(1)
}

/// `sys_option/datetime_get`, as read.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub(super) struct DateTime {
    #[serde(deserialize_with = "lenient::string")]
    timezone: String,
    #[serde(deserialize_with = "lenient::opt_f64")]
    ntp_enable: Option<f64>,
    #[serde(deserialize_with = "lenient::string")]
    ntp_server_list: String,
    #[serde(deserialize_with = "lenient::opt_f64")]
    timestamp: Option<f64>,
}

/// `sys_info/package` for one name: an empty `name` means not installed.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub(super) struct Package {
    #[serde(deserialize_with = "lenient::string")]
    name: String,
    #[serde(deserialize_with = "lenient::string")]
    version: String,
}

/// The gateway's clock offset from a device time in whole seconds read when the answer
/// arrived at `arrived` (Unix seconds).
pub(super) fn clock_offset(device_secs: f64, arrived: f64) -> f64 {
    device_secs.floor() + 0.5 - arrived
}

/// `general/apply_get` → (scope, pending) for the numeric entries, sorted, at most
/// [`MAX_SCOPES`].
fn unapplied_scopes(data: Value) -> Result<Vec<(String, bool)>, String> {
    let Value::Object(map) = data else {
        return data_object::<Map<String, Value>>(data).map(|_| Vec::new());
    };
    let mut scopes: Vec<(String, bool)> = map
        .iter()
        .filter_map(|(k, v)| Some((clip(k), lenient::number(v)? != 0.0)))
        .collect();
    scopes.truncate(MAX_SCOPES);
    if scopes.is_empty() {
        return Err("no scope has a numeric state".into());
    }
    Ok(scopes)
}

/// A package answer: one object, or (some firmware) a list of them.
fn packages(data: Value) -> Result<Vec<Package>, String> {
    let rows = match data {
        Value::Array(rows) => rows,
        other => vec![other],
    };
    let mut found = Vec::new();
    for row in rows {
        if let Ok(p) = data_object::<Package>(row) {
            let name = p.name.trim();
            if !name.is_empty() {
                found.push(Package {
                    name: clip(name),
                    version: clip(p.version.trim()),
                });
            }
        }
    }
    Ok(found)
}

fn clip(s: &str) -> String {
    s.chars().take(MAX_LABEL_CHARS).collect()
}

/// The settings of one gateway as last read, and when to read them again.
pub(super) struct DeviceSettings {
    apply: Cached<Vec<(String, bool)>>,
    /// The answer and the offset measured when it arrived.
    datetime: Cached<(DateTime, Option<f64>)>,
    packages: Cached<Vec<Package>>,
    names: Vec<String>,
    /// The client's login count when packages were last read.
    package_logins: u64,
}

impl DeviceSettings {
    pub(super) fn new(interval: Duration, names: Vec<String>) -> Self {
        let settings_every = polls_in(SETTINGS_EVERY, interval);
        DeviceSettings {
            apply: Cached::new(settings_every),
            datetime: Cached::new(settings_every),
            packages: Cached::new(polls_in(PACKAGES_EVERY, interval)),
            names,
            package_logins: 0,
        }
    }

    /// Reads what is due this poll; a failed call is that section's error only.
    pub(super) async fn refresh(
        &mut self,
        client: &mut OpenvoxClient,
        ctx: &mut PollContext,
        sections: &mut Sections,
    ) -> Result<(), PollError> {
        if self.apply.scheduled() {
            const PATH: &str = "general/apply_get";
            let read = client.call(ctx, PATH, Map::new()).await;
            let read = read.and_then(|d| unapplied_scopes(d).map_err(decode(PATH)));
            if let Some(scopes) = sections.record(read)? {
                self.apply.store(scopes);
            }
        }
        if self.datetime.scheduled() {
            const PATH: &str = "sys_option/datetime_get";
            let read = client.call(ctx, PATH, Map::new()).await;
            let arrived = unix_seconds(SystemTime::now());
            let read = read.and_then(|d| data_object::<DateTime>(d).map_err(decode(PATH)));
            if let Some(dt) = sections.record(read)? {
                let offset = dt.timestamp.map(|t| clock_offset(t, arrived));
                self.datetime.store((dt, offset));
            }
        }
        let relogged = client.logins() != self.package_logins;
        if !self.names.is_empty() && (self.packages.scheduled() || relogged) {
            let mut found = Vec::new();
            let mut failed = false;
            for name in self.names.clone() {
                const PATH: &str = "sys_info/package";
                let read = client.call(ctx, PATH, package_params(&name)).await;
                match sections.record(read.and_then(|d| packages(d).map_err(decode(PATH))))? {
                    Some(p) => found.extend(p),
                    None => failed = true,
                }
            }
            // A half-read list would drop a package that is there: keep the last whole one.
            if !failed {
                found.sort_by(|a, b| a.name.cmp(&b.name));
                found.dedup_by(|a, b| a.name == b.name);
                self.packages.store(found);
                self.package_logins = client.logins();
            }
        }
        self.apply.tick();
        self.datetime.tick();
        self.packages.tick();
        Ok(())
    }

    /// The settings' series; `os_time_offset` is this poll's offset from `os_time`, if read.
    pub(super) fn export(&self, b: &mut SnapshotBuilder, os_time_offset: Option<f64>) {
        for (scope, pending) in self.apply.get().into_iter().flatten() {
            b.add(&UNAPPLIED, &[scope], f64::from(*pending));
        }
        let datetime = self.datetime.get();
        let offset = os_time_offset.or_else(|| datetime.and_then(|(_, o)| *o));
        b.add_opt(&CLOCK_OFFSET, &[], offset);
        if let Some((dt, _)) = datetime {
            b.add_opt(
                &NTP_ENABLED,
                &[],
                dt.ntp_enable.map(|n| f64::from(n != 0.0)),
            );
            let servers = clip(dt.ntp_server_list.trim());
            b.add(&CLOCK_INFO, &[&clip(dt.timezone.trim()), &servers], 1.0);
        }
        for p in self.packages.get().into_iter().flatten() {
            b.add(&PACKAGE_INFO, &[&p.name, &p.version], 1.0);
        }
    }
}

fn package_params(name: &str) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("name".into(), json!(name));
    m
}

fn decode(path: &str) -> impl Fn(String) -> PollError + '_ {
    move |e| PollError::decode(format!("{path}: {e}"))
}

#[cfg(test)]
mod tests {
    //! The document's and the notes' example answers through the readers and the mapping.
    use super::*;
    use crate::util::testing::{exposition, fixture, has};

    fn data(name: &str) -> Value {
        let body: Value = serde_json::from_slice(&fixture("openvox", name)).unwrap();
        body["data"].clone()
    }

    #[test]
    fn datetime_answer_gives_zone_ntp_and_an_offset_from_whole_seconds() {
        let dt: DateTime = data_object(data("datetime_get.json")).unwrap();
        assert_eq!(dt.timezone, "UTC-8:00");
        assert_eq!(dt.ntp_enable, Some(1.0));
        assert_eq!(dt.ntp_server_list, "pool.ntp.org time.nist.gov");
        assert_eq!(dt.timestamp, Some(1_721_120_250.0));
        // The device truncates: read at .9 of its second, it is half a second from the middle.
        assert!((clock_offset(1_721_120_250.0, 1_721_120_250.9) + 0.4).abs() < 1e-6);
        assert_eq!(clock_offset(1_721_120_310.0, 1_721_120_250.5), 60.0);
    }

    #[test]
    fn apply_state_is_per_scope_and_a_php_empty_array_is_an_error() {
        let scopes = unapplied_scopes(data("apply_get.json")).unwrap();
        assert_eq!(
            scopes,
            [("network".to_string(), false), ("voip".to_string(), true)]
        );
        assert!(unapplied_scopes(json!([])).is_err());
        assert!(unapplied_scopes(json!({"network": "x"})).is_err());
        assert_eq!(
            unapplied_scopes(json!({"network": "1", "voip": 0})).unwrap(),
            [("network".to_string(), true), ("voip".to_string(), false)]
        );
    }

    #[test]
    fn package_versions_lose_their_newline_and_a_missing_package_is_none() {
        let found = packages(data("package.json")).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(
            (found[0].name.as_str(), found[0].version.as_str()),
            ("icvp-snmp", "1.0-1")
        );
        assert!(packages(json!({"name": "", "version": ""}))
            .unwrap()
            .is_empty());
        let listed = packages(json!([{"name": "a", "version": "1"}, "junk", {"name": "b"}]));
        assert_eq!(listed.unwrap().len(), 2);
    }

    #[test]
    fn the_offset_comes_from_os_time_else_from_the_datetime_read() {
        let mut s = DeviceSettings::new(Duration::from_secs(30), default_packages());
        s.datetime
            .store((data_object(data("datetime_get.json")).unwrap(), Some(-75.0)));
        s.apply.store(vec![("voip".into(), true)]);
        let m = exposition("gw", |b| s.export(b, Some(2.5)));
        assert!(
            has(&m, r#"openvox_clock_offset_seconds{target="gw"} 2.5"#),
            "{m}"
        );
        assert!(has(&m, r#"openvox_ntp_enabled{target="gw"} 1"#), "{m}");
        assert!(
            has(
                &m,
                r#"openvox_config_unapplied{target="gw",scope="voip"} 1"#
            ),
            "{m}"
        );
        assert!(
            has(
                &m,
                r#"openvox_clock_info{target="gw",timezone="UTC-8:00",ntp_servers="pool.ntp.org time.nist.gov"} 1"#
            ),
            "{m}"
        );
        let m = exposition("gw", |b| s.export(b, None));
        assert!(
            has(&m, r#"openvox_clock_offset_seconds{target="gw"} -75"#),
            "{m}"
        );
    }

    #[test]
    fn reads_are_on_a_slow_cadence() {
        assert_eq!(polls_in(SETTINGS_EVERY, Duration::from_secs(30)), 10);
        assert_eq!(polls_in(PACKAGES_EVERY, Duration::from_secs(7200)), 1);
    }
}
