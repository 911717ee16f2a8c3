//! Calls counted from CDR records.
//!
//! The device's CDR log is a window of recent records, answered whole on every read: counting
//! what it lists would count a call once per poll. The counters remember, per slot, the newest
//! record time counted (and the records at exactly that time), so each record counts once.

use std::collections::{BTreeMap, HashSet};

use super::model::{time_key, CdrRecord};
use super::unrecognized::Unrecognized;
use fleet_core::snapshot::{Family, SnapshotBuilder};

pub(super) static CALLS: Family = Family::counter(
    "openvox_calls_total",
    "Finished calls from the gateway's CDR records, by disposition.",
    &["disposition"],
);
pub(super) static BILLSEC: Family = Family::counter(
    "openvox_call_billable_seconds_total",
    "Answered time of finished calls from the gateway's CDR records.",
    &[],
);

/// Dispositions as label values; the device's words are the keys.
const DISPOSITIONS: [(&str, &str); 6] = [
    ("ANSWERED", "answered"),
    ("NO ANSWER", "no_answer"),
    ("BUSY", "busy"),
    ("FAILED", "failed"),
    ("CONGESTION", "congestion"),
    ("UNKNOWN", "unknown"),
];

/// What identifies a CDR record besides its time.
type RecordKey = (String, String, String, String);

/// The newest record time counted in one slot, and the records counted at exactly that time
/// (several calls can end in the same second, and arrive in different polls).
#[derive(Default)]
struct Watermark {
    time: Option<i64>,
    at_time: HashSet<RecordKey>,
}

/// Calls counted from CDR records: each record once, however many polls (and logins) see it.
/// The state lives as long as the driver, so the counters only reset with the exporter.
#[derive(Default)]
pub struct CallCounters {
    calls: BTreeMap<&'static str, f64>,
    billsec: f64,
    marks: BTreeMap<u64, Watermark>,
}

impl CallCounters {
    /// Counts the records of `slot` not counted before. Records without a readable time are
    /// left out and reported in `unrecognized`.
    pub fn count(&mut self, slot: u64, records: &[CdrRecord], unrecognized: &mut Unrecognized) {
        if self.calls.is_empty() {
            for (_, label) in DISPOSITIONS {
                self.calls.insert(label, 0.0);
            }
        }
        let mark = self.marks.entry(slot).or_default();
        let mut newest = mark.time;
        // Records counted in this answer, looked up by hash: the answer can list tens of
        // thousands (`max_cdr_records`), so the duplicate check stays linear.
        let mut counted: HashSet<(i64, RecordKey)> = HashSet::new();
        for r in records {
            let Some(time) = time_key(&r.end).or_else(|| time_key(&r.start)) else {
                unrecognized.cdr += 1;
                continue;
            };
            let key = (
                r.start.clone(),
                r.end.clone(),
                r.from_channel.clone(),
                r.to_channel.clone(),
            );
            let seen = match mark.time {
                Some(t) if time < t => true,
                Some(t) if time == t => mark.at_time.contains(&key),
                _ => false,
            };
            if seen {
                continue;
            }
            let key = (time, key);
            if counted.contains(&key) {
                continue;
            }
            let word = r.disposition.trim().to_ascii_uppercase();
            let label = DISPOSITIONS
                .iter()
                .find(|(w, _)| *w == word)
                .map(|(_, l)| *l)
                .unwrap_or_else(|| {
                    unrecognized.cdr += 1;
                    "unknown"
                });
            *self.calls.entry(label).or_default() += 1.0;
            self.billsec += r.billsec.filter(|s| *s > 0.0).unwrap_or(0.0);
            newest = newest.max(Some(time));
            counted.insert(key);
        }
        if newest != mark.time {
            mark.at_time.clear();
            mark.time = newest;
        }
        mark.at_time.extend(
            counted
                .into_iter()
                .filter(|(t, _)| Some(*t) == newest)
                .map(|(_, k)| k),
        );
    }

    /// Exports the counters once a CDR answer has been read.
    pub fn export(&self, b: &mut SnapshotBuilder) {
        if self.calls.is_empty() {
            return;
        }
        for (label, n) in &self.calls {
            b.add(&CALLS, &[label], *n);
        }
        b.add(&BILLSEC, &[], self.billsec);
    }
}
