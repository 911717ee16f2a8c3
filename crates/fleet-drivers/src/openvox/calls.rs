//! Calls counted from CDR records.
//!
//! The device's CDR log is a window of recent records, answered whole on every read: counting
//! what it lists would count a call once per poll. The counters remember, per slot, the newest
//! record time counted (and the records at exactly that time), so each record counts once.
//!
//! The counters count calls that ended while the exporter watched. The first answer of a slot
//! after the driver starts (an exporter start, or a restart of the target) sets the watermark
//! and counts nothing: its records ended before, and counting them would show the whole stored
//! log as a burst of new calls in `increase()` after every restart. The counters start at 0 and
//! grow by the records that appear after that answer. The stored log's size is its own gauge.

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
pub(super) static CDR_LOG: Family = Family::gauge(
    "openvox_cdr_log_records",
    "CDR records the gateway's log listed in its last answer, over its slots.",
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

/// Calls counted from CDR records: each record once, however many polls (and logins) see it,
/// and none that were in the log at the slot's first answer. The state lives as long as the
/// driver, so the counters only reset with the exporter (or the target's restart).
#[derive(Default)]
pub struct CallCounters {
    calls: BTreeMap<&'static str, f64>,
    billsec: f64,
    marks: BTreeMap<u64, Watermark>,
    /// Records each slot's last answer listed.
    listed: BTreeMap<u64, usize>,
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
        self.listed.insert(slot, records.len());
        let Some(mark) = self.marks.get_mut(&slot) else {
            self.marks.insert(slot, baseline(records));
            return;
        };
        let mut newest = mark.time;
        // Records counted in this answer, looked up by hash: the answer can list tens of
        // thousands (`max_cdr_records`), so the duplicate check stays linear.
        let mut counted: HashSet<(i64, RecordKey)> = HashSet::new();
        for r in records {
            let Some(time) = time_key(&r.end).or_else(|| time_key(&r.start)) else {
                unrecognized.cdr += 1;
                continue;
            };
            let key = record_key(r);
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
        b.add(&CDR_LOG, &[], self.listed.values().sum::<usize>() as f64);
    }
}

/// The watermark of a slot's first answer: its newest record time and the records at it, so
/// none of them counts later.
fn baseline(records: &[CdrRecord]) -> Watermark {
    let timed: Vec<(i64, &CdrRecord)> = records
        .iter()
        .filter_map(|r| Some((time_key(&r.end).or_else(|| time_key(&r.start))?, r)))
        .collect();
    let time = timed.iter().map(|(t, _)| *t).max();
    let at_time = timed
        .into_iter()
        .filter(|(t, _)| Some(*t) == time)
        .map(|(_, r)| record_key(r))
        .collect();
    Watermark { time, at_time }
}

fn record_key(r: &CdrRecord) -> RecordKey {
    (
        r.start.clone(),
        r.end.clone(),
        r.from_channel.clone(),
        r.to_channel.clone(),
    )
}
