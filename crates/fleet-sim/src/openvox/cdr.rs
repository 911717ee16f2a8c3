//! The gateway's call log: finished calls (CDR records) that arrive on a schedule and on
//! `add_cdr`, the last `MAX_CDRS` of them kept as the device keeps them, and the totals of every
//! record ever created, which is what an exporter should have counted.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::util::{datetime, unit, unix_now};

/// CDR records the device keeps; older ones drop out of its answers.
const MAX_CDRS: usize = 1000;
/// The gateway's clock is UTC+8, like the document's examples.
const TZ_OFFSET: u64 = 8 * 3600;

/// What the simulator has produced so far: what an exporter should have counted.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CdrTotals {
    pub records: u64,
    pub by_disposition: BTreeMap<String, u64>,
    pub billsec: u64,
}

struct Cdr {
    end_unix: u64,
    duration: u64,
    billsec: u64,
    disposition: String,
    from: String,
    from_channel: String,
    to: String,
    to_channel: String,
}

impl Cdr {
    fn new(end_unix: u64, n: u64, disposition: &str, billsec: u64) -> Cdr {
        let billsec = if disposition == "ANSWERED" {
            billsec
        } else {
            0
        };
        let ring = 3 + n % 15;
        Cdr {
            end_unix,
            duration: billsec + ring,
            billsec,
            disposition: disposition.to_owned(),
            from: format!("80{}", n % 4 + 1),
            from_channel: format!("DAHDI/{}-{}", n % 4 + 5, n % 3 + 1),
            to: format!("1380013{:04}", n % 10_000),
            to_channel: format!("SIP/1reg-{:08x}", n + 1),
        }
    }

    fn to_json(&self, slot: u64) -> Value {
        let start = self.end_unix.saturating_sub(self.duration);
        let answer = if self.disposition == "ANSWERED" {
            datetime(self.end_unix.saturating_sub(self.billsec), TZ_OFFSET)
        } else {
            String::new()
        };
        json!({
            "slotnum": slot,
            "source_tpl": "fxs",
            "source": self.from_channel.split('-').next().unwrap_or_default(),
            "callerid": format!("\"{0}\" <{0}>", self.from),
            "from": self.from,
            "from_channel": self.from_channel,
            "to": self.to,
            "to_channel": self.to_channel,
            "disposition": self.disposition,
            "start": datetime(start, TZ_OFFSET),
            "answer": answer,
            "end": datetime(self.end_unix, TZ_OFFSET),
            "billsec": self.billsec.to_string(),
        })
    }
}

/// The device's CDR log and the schedule that fills it.
pub(super) struct Cdrs {
    log: Vec<Cdr>,
    totals: CdrTotals,
    every: Option<Duration>,
    anchor: Instant,
    /// Unix time of `anchor` with its fraction, so that scheduled records end in the second
    /// they are created in, after every record created before them.
    anchor_unix: f64,
    generated: u64,
}

fn precise_unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

const T_CDR: u64 = 1;
const T_BILL: u64 = 2;

impl Cdrs {
    pub(super) fn new(every: Option<Duration>) -> Cdrs {
        Cdrs {
            log: Vec::new(),
            totals: CdrTotals::default(),
            every,
            anchor: Instant::now(),
            anchor_unix: precise_unix_now(),
            generated: 0,
        }
    }

    /// Adds the records whose time has come, each ending at its own scheduled second.
    fn catch_up(&mut self, seed: u64) {
        let Some(every) = self.every.filter(|e| !e.is_zero()) else {
            return;
        };
        let due = (self.anchor.elapsed().as_nanos() / every.as_nanos()) as u64;
        // A long pause does not flood the log: the device keeps MAX_CDRS anyway.
        let first = self.generated.max(due.saturating_sub(MAX_CDRS as u64));
        for k in first..due {
            let n = self.totals.records;
            let pick = unit(seed, T_CDR, n);
            let disposition = match pick {
                p if p < 0.6 => "ANSWERED",
                p if p < 0.75 => "NO ANSWER",
                p if p < 0.85 => "BUSY",
                p if p < 0.95 => "FAILED",
                _ => "CONGESTION",
            };
            let billsec = 5 + (unit(seed, T_BILL, n) * 300.0) as u64;
            let end = (self.anchor_unix + (k + 1) as f64 * every.as_secs_f64()) as u64;
            self.push(Cdr::new(end, n, disposition, billsec));
        }
        self.generated = due;
    }

    fn push(&mut self, cdr: Cdr) {
        self.totals.records += 1;
        self.totals.billsec += cdr.billsec;
        *self
            .totals
            .by_disposition
            .entry(cdr.disposition.clone())
            .or_default() += 1;
        if self.log.len() >= MAX_CDRS {
            self.log.remove(0);
        }
        self.log.push(cdr);
    }

    /// Changes how often records arrive, counting from now.
    pub(super) fn reschedule(&mut self, seed: u64, every: Option<Duration>) {
        self.catch_up(seed);
        self.every = every;
        self.anchor = Instant::now();
        self.anchor_unix = precise_unix_now();
        self.generated = 0;
    }

    /// Appends a finished call ending now; `billsec` counts only for `ANSWERED`.
    pub(super) fn add(&mut self, seed: u64, disposition: &str, billsec: u64) {
        self.catch_up(seed);
        let n = self.totals.records;
        self.push(Cdr::new(unix_now(), n, disposition, billsec));
    }

    /// Every record created so far (including ones the log has dropped).
    pub(super) fn totals(&mut self, seed: u64) -> CdrTotals {
        self.catch_up(seed);
        self.totals.clone()
    }

    /// What `sys_info/cdr` answers for `slot`: the last `limit` records (all without a limit).
    pub(super) fn answer(&mut self, seed: u64, slot: u64, limit: Option<usize>) -> Value {
        self.catch_up(seed);
        // Records are the first slot's; other slots have taken no calls.
        if slot != 0 {
            return json!([]);
        }
        let skip = limit.map_or(0, |n| self.log.len().saturating_sub(n));
        Value::Array(self.log[skip..].iter().map(|c| c.to_json(slot)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheduled_cdrs_end_at_their_own_seconds_and_never_flood() {
        let mut c = Cdrs::new(Some(Duration::from_secs(10)));
        c.anchor = Instant::now() - Duration::from_secs(35);
        c.catch_up(1);
        assert_eq!(c.totals.records, 3);
        let ends: Vec<u64> = c.log.iter().map(|r| r.end_unix).collect();
        let first = (c.anchor_unix + 10.0) as u64;
        assert_eq!(ends, [first, first + 10, first + 20]);
        c.catch_up(1);
        assert_eq!(c.totals.records, 3);
        c.anchor = Instant::now() - Duration::from_secs(100_000);
        c.generated = 0;
        c.catch_up(1);
        assert_eq!(c.log.len(), MAX_CDRS);
    }
}
