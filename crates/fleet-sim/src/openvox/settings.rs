//! The gateway's settings that `sys_option/datetime_get`, `general/apply_get` and
//! `sys_info/package` report: its clock (which can run off the host's, as a gateway without NTP
//! drifts), time zone and NTP servers, configuration changed but not applied per scope, and the
//! optional packages installed. Tests change them through the handle.
//!
//! From the document (4.4.2, 4.1.4) and the notes: `timestamp` is Unix seconds as a number,
//! `datetime_str` the local time of the zone without an offset, and the zone is written the
//! device's way, `UTC-8:00` for eight hours east (the document's example pairs it with a local
//! time eight hours ahead of UTC). A package not installed answers an empty `name`.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde_json::{json, Value};

use crate::util::{datetime_with, lock, unix_now};

/// The zone of the document's examples: eight hours east of UTC.
const TZ_EAST_SECS: i64 = 8 * 3600;

pub(super) struct Settings {
    /// Seconds the gateway's clock is ahead of the host's (negative: behind).
    pub(super) clock_ahead: Mutex<i64>,
    pub(super) ntp_enabled: Mutex<bool>,
    /// Scopes (`network`, `voip`) whose changes are saved but not applied.
    pub(super) unapplied: Mutex<BTreeMap<&'static str, bool>>,
    /// Installed optional packages by name, with their version as `opkg` writes it.
    pub(super) packages: Mutex<BTreeMap<String, String>>,
}

impl Settings {
    pub(super) fn new() -> Settings {
        let packages = [("icvp-snmp", "1.0-1"), ("ocloudclient", "1.2-3")]
            .into_iter()
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
            .collect();
        Settings {
            clock_ahead: Mutex::new(0),
            ntp_enabled: Mutex::new(true),
            unapplied: Mutex::new([("network", false), ("voip", false)].into()),
            packages: Mutex::new(packages),
        }
    }

    /// The gateway's clock now, in Unix seconds.
    pub(super) fn device_time(&self) -> u64 {
        (unix_now() as i64 + *lock(&self.clock_ahead)).max(0) as u64
    }

    pub(super) fn datetime(&self) -> Value {
        let ts = self.device_time();
        let ntp = *lock(&self.ntp_enabled);
        json!({
            "timezone": "UTC-8:00",
            "ntp_enable": i32::from(ntp),
            "ntp_server_list": if ntp { "pool.ntp.org time.nist.gov" } else { "" },
            "timestamp": ts,
            "datetime_str": datetime_with((ts as i64 + TZ_EAST_SECS) as u64, 'T'),
        })
    }

    pub(super) fn apply_state(&self) -> Value {
        let scopes = lock(&self.unapplied);
        let flag = |scope: &str| i32::from(scopes.get(scope).copied().unwrap_or(false));
        json!({"network": flag("network"), "voip": flag("voip")})
    }

    /// One package by name; `opkg` ends the version with a newline, as the document shows.
    pub(super) fn package(&self, name: &str) -> Value {
        match lock(&self.packages).get(name) {
            Some(version) => json!({"name": name, "version": format!("{version}\n")}),
            None => json!({"name": "", "version": ""}),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_zone_and_flags_read_as_the_document_writes_them() {
        let s = Settings::new();
        *lock(&s.clock_ahead) = -90;
        let d = s.datetime();
        let ts = d["timestamp"].as_u64().unwrap();
        assert!((unix_now() as i64 - 90 - ts as i64).abs() <= 1);
        assert_eq!(d["timezone"], "UTC-8:00");
        assert_eq!(d["ntp_enable"], 1);
        let local = d["datetime_str"].as_str().unwrap();
        assert_eq!(local, datetime_with(ts + 8 * 3600, 'T'));
        assert_eq!(s.apply_state(), json!({"network": 0, "voip": 0}));
        lock(&s.unapplied).insert("voip", true);
        assert_eq!(s.apply_state(), json!({"network": 0, "voip": 1}));
        assert_eq!(s.package("icvp-snmp")["version"], "1.0-1\n");
        assert_eq!(s.package("nope")["name"], "");
    }
}
