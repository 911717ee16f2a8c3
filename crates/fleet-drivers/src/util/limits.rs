//! The bounds every driver applies to what a device sends: entries per list in one answer
//! (`max_rows`), series per snapshot (`max_series`), and distinct device-chosen values per label
//! (folded into `other` past a cap). A device can send anything within the 8 MiB body limit; what
//! the exporter builds, keeps and exports from it is bounded by these, whatever it declares.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::lenient;
use fleet_core::driver::{PollContext, PollError};
use fleet_core::snapshot::{Family, Snapshot, SnapshotBuilder};

/// Series a target's snapshot may hold unless its `max_series` says otherwise: far above a
/// 2,000-node Komari site, far below what makes a scrape slow.
pub(crate) const DEFAULT_MAX_SERIES: usize = 100_000;

/// The `max_series` option's default.
pub(crate) fn default_max_series() -> usize {
    DEFAULT_MAX_SERIES
}

/// `max_rows` must let something through.
pub(crate) fn check_max_rows(max_rows: usize) -> Result<(), String> {
    if max_rows == 0 {
        return Err("max_rows: must be at least 1".into());
    }
    Ok(())
}

/// Answers at least this large are decoded off the async runtime (a 1,000-client iKuai page is
/// about a third of this).
const OFF_RUNTIME_BYTES: usize = 1 << 20;

/// Entries cut from the lists of one poll's answers (answers may be decoded concurrently, so
/// the tally is atomic).
#[derive(Debug, Default)]
pub(crate) struct RowCut(AtomicUsize);

impl RowCut {
    /// Runs the synchronous `decode` with every list cut at `cap` entries, tallying the cut.
    pub(crate) fn decode<R>(&self, cap: usize, decode: impl FnOnce() -> R) -> R {
        let (out, cut) = lenient::with_row_cap(cap, decode);
        self.add(cut);
        out
    }

    /// [`RowCut::decode`] of `body`, on a blocking thread when the body is large, so decoding a
    /// multi-megabyte answer holds up neither other targets' polls nor the HTTP side; a poll
    /// cancelled at its deadline abandons the result.
    pub(crate) async fn decode_body<R: Send + 'static>(
        &self,
        cap: usize,
        body: Vec<u8>,
        decode: impl FnOnce(&[u8]) -> R + Send + 'static,
    ) -> Result<R, PollError> {
        if body.len() < OFF_RUNTIME_BYTES {
            return Ok(self.decode(cap, || decode(&body)));
        }
        let (out, cut) =
            tokio::task::spawn_blocking(move || lenient::with_row_cap(cap, || decode(&body)))
                .await
                .map_err(|e| PollError::decode(format!("decoding stopped: {e}")))?;
        self.add(cut);
        Ok(out)
    }

    /// Tallies `n` entries left out.
    pub(crate) fn add(&self, n: usize) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// Ends a poll's tally: past the cap, one `limit` partial error saying how much was left out.
    /// `caps` names the options and their values, e.g. `max_rows = 10000`.
    pub(crate) fn finish(&self, ctx: &mut PollContext, caps: &str) {
        let cut = self.0.swap(0, Ordering::Relaxed);
        if cut > 0 {
            ctx.partial_errors.push(PollError::limit(format!(
                "answers listed more entries than {caps} allows: {cut} left out unread"
            )));
        }
    }
}

/// A snapshot within `max_series` (0 turns the bound off); past it, the poll fails with
/// `limit` and the target's device series are withdrawn, as with any failed poll.
pub(crate) fn check_series(snapshot: Snapshot, max_series: usize) -> Result<Snapshot, PollError> {
    let n = snapshot.series();
    if max_series > 0 && n > max_series {
        return Err(PollError::limit(format!(
            "the snapshot holds {n} series, more than max_series = {max_series}"
        )));
    }
    Ok(snapshot)
}

/// The label value device values past a [`LabelFold`]'s cap become.
pub(crate) const OTHER: &str = "other";

/// Distinct device-chosen values a label keeps per target before new ones fold into `other`.
pub(crate) const DEFAULT_MAX_LABEL_VALUES: usize = 32;

pub(crate) static FOLDED: Family = Family::counter(
    "fleet_device_label_values_folded_total",
    "Device-chosen label values counted as `other` because the label had reached its cap of distinct values.",
    &["family", "label"],
);

/// The distinct values one label has taken, up to a cap; later new values read as `other` and
/// are counted. The state lives as long as the driver, like the counters it labels.
#[derive(Debug)]
pub(crate) struct LabelFold {
    family: &'static str,
    label: &'static str,
    cap: usize,
    /// Values that are always themselves and do not count against the cap (ours, not the
    /// device's: success, our failure reasons).
    reserved: &'static [&'static str],
    seen: BTreeSet<String>,
    folded: u64,
}

impl LabelFold {
    pub(crate) fn new(
        family: &'static str,
        label: &'static str,
        cap: usize,
        reserved: &'static [&'static str],
    ) -> Self {
        LabelFold {
            family,
            label,
            cap,
            reserved,
            seen: BTreeSet::new(),
            folded: 0,
        }
    }

    /// `value` when it is known or there is room for it, else `other` (counted).
    pub(crate) fn fold<'v>(&mut self, value: &'v str) -> &'v str {
        if self.reserved.contains(&value) || self.seen.contains(value) {
            return value;
        }
        if self.seen.len() < self.cap {
            self.seen.insert(value.to_string());
            return value;
        }
        self.folded += 1;
        OTHER
    }

    /// `fleet_device_label_values_folded_total` for this label (0 until a value folds).
    pub(crate) fn export(&self, b: &mut SnapshotBuilder) {
        b.add(&FOLDED, &[self.family, self.label], self.folded as f64);
    }
}

/// Adds `n` to `counts[key]`, with `key` folded by `fold`.
pub(crate) fn count_folded(
    counts: &mut BTreeMap<String, u64>,
    fold: &mut LabelFold,
    key: &str,
    n: u64,
) {
    let key = fold.fold(key);
    match counts.get_mut(key) {
        Some(c) => *c += n,
        None => {
            counts.insert(key.to_string(), n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_past_the_cap_fold_into_other_and_are_counted() {
        let mut fold = LabelFold::new("f", "code", 2, &["0"]);
        let mut counts = BTreeMap::new();
        for code in ["a", "0", "b", "c", "a", "d", "b", "0"] {
            count_folded(&mut counts, &mut fold, code, 1);
        }
        let got: Vec<_> = counts.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        assert_eq!(got, [("0", 2), ("a", 2), ("b", 2), ("other", 2)]);
        assert_eq!(fold.folded, 2);
    }

    #[test]
    fn a_snapshot_past_max_series_fails_with_limit() {
        let mut b = SnapshotBuilder::new(Some("t"));
        for i in 0..3 {
            b.add(&FOLDED, &["f", &i.to_string()], 0.0);
        }
        let s = b.finish();
        let e = check_series(s, 2).unwrap_err();
        assert_eq!(e.reason(), fleet_core::driver::Reason::Limit);
        let mut b = SnapshotBuilder::new(Some("t"));
        b.add(&FOLDED, &["f", "x"], 0.0);
        assert!(check_series(b.finish(), 0).is_ok(), "0 turns the bound off");
    }
}
