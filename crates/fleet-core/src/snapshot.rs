//! The device-neutral snapshot a driver fills in during a poll.
//!
//! Samples are encoded into exposition lines as they are added, so a scrape only copies bytes:
//! the work happens once per poll, never once per scrape. The sample lines are identical in the
//! Prometheus text format and in OpenMetrics; only the family headers differ, and those are
//! written by [`crate::exposition`]. Each family block is also compressed once, when the
//! snapshot is finished, so a gzip scrape only joins pieces ([`crate::gzip`]).
//!
//! A block whose bytes are the same as in the target's previous snapshot is not compressed
//! again: the new snapshot shares the previous one's bytes and piece. Much of a device's answer
//! stays put from poll to poll (sizes, totals, info series, an hour's ping minimum), and
//! compressing was the largest single cost of a poll: comparing costs a memory compare.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::io::Write;
use std::sync::Arc;

use bytes::Bytes;

use crate::gzip::Deflated;

/// What kind of series a family holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricType {
    Gauge,
    Counter,
}

impl MetricType {
    pub fn as_str(self) -> &'static str {
        match self {
            MetricType::Gauge => "gauge",
            MetricType::Counter => "counter",
        }
    }
}

/// A metric family's static description: drivers declare these as constants, which keeps the
/// names, types and label names in one place (and lets tests compare them with the docs).
#[derive(Debug)]
pub struct Family {
    pub name: &'static str,
    pub help: &'static str,
    pub metric_type: MetricType,
    /// Label names after the implicit `target` label, in the order values are passed.
    pub labels: &'static [&'static str],
}

impl Family {
    pub const fn gauge(
        name: &'static str,
        help: &'static str,
        labels: &'static [&'static str],
    ) -> Self {
        Family {
            name,
            help,
            metric_type: MetricType::Gauge,
            labels,
        }
    }

    pub const fn counter(
        name: &'static str,
        help: &'static str,
        labels: &'static [&'static str],
    ) -> Self {
        Family {
            name,
            help,
            metric_type: MetricType::Counter,
            labels,
        }
    }
}

/// The units OpenMetrics names as base units. A family whose name (without a counter's
/// `_total`) ends in `_<unit>` gets a `# UNIT` line in OpenMetrics; rates such as
/// `_bytes_per_second` and non-base units (`_hertz`, `_dbm`, `_degrees`) get none.
pub const BASE_UNITS: &[&str] = &[
    "seconds", "bytes", "ratio", "celsius", "volts", "amperes", "joules", "grams", "meters",
];

/// A family's header as OpenMetrics spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenMetricsHeader {
    /// The family name: a counter's without `_total`, an info family's without `_info`.
    pub name: &'static str,
    /// `counter`, `gauge` or `info`.
    pub kind: &'static str,
    /// The base unit the name ends in, if any.
    pub unit: Option<&'static str>,
}

impl Family {
    /// Whether the family holds `*_info` series: value 1, the labels the information. Typed
    /// `info` in OpenMetrics; text 0.0.4 has no such type, so there it stays a gauge.
    pub fn is_info(&self) -> bool {
        self.metric_type == MetricType::Gauge
            && self
                .name
                .strip_suffix("_info")
                .is_some_and(|n| !n.is_empty())
    }

    /// The family's OpenMetrics header: the name without the sample suffix the type implies
    /// (`_total` for counters, `_info` for info), the type, and the unit the name ends in.
    pub fn openmetrics(&self) -> OpenMetricsHeader {
        let (name, kind) = match self.metric_type {
            MetricType::Counter => (
                self.name.strip_suffix("_total").unwrap_or(self.name),
                "counter",
            ),
            MetricType::Gauge if self.is_info() => (&self.name[..self.name.len() - 5], "info"),
            MetricType::Gauge => (self.name, "gauge"),
        };
        let unit = BASE_UNITS.iter().copied().find(|unit| {
            name.strip_suffix(unit)
                .and_then(|rest| rest.strip_suffix('_'))
                .is_some_and(|rest| !rest.is_empty())
        });
        OpenMetricsHeader { name, kind, unit }
    }
}

/// One family's encoded sample lines from one source.
#[derive(Debug)]
pub struct FamilyBlock {
    pub family: &'static Family,
    /// Shared: with the next snapshot when its block is unchanged, and with scrapes sending it.
    pub samples: Bytes,
    /// The samples compressed, ready to be placed in any gzip stream.
    pub gzip: Deflated,
}

/// The encoded series of one source (a target's device or health series, or the exporter's own),
/// families sorted by name. Immutable once built; replaced whole.
#[derive(Debug, Default)]
pub struct Snapshot {
    blocks: Vec<FamilyBlock>,
    series: usize,
}

impl Snapshot {
    pub fn blocks(&self) -> &[FamilyBlock] {
        &self.blocks
    }

    pub fn series(&self) -> usize {
        self.series
    }

    /// The block of the family named `name`.
    fn block(&self, name: &str) -> Option<&FamilyBlock> {
        let i = self.blocks.binary_search_by(|b| b.family.name.cmp(name));
        i.ok().map(|i| &self.blocks[i])
    }

    /// Bytes held by the encoded samples (for benchmarks and the status page).
    pub fn encoded_bytes(&self) -> usize {
        self.blocks.iter().map(|b| b.samples.len()).sum()
    }

    /// Bytes held by the compressed samples.
    pub fn compressed_bytes(&self) -> usize {
        self.blocks.iter().map(|b| b.gzip.bytes.len()).sum()
    }
}

/// Lines a family's buffer has room for when its first sample comes, if the previous snapshot
/// had no such family to size it by.
const FIRST_LINES: usize = 32;

/// Collects samples for one snapshot. Every sample gets the `target` label first (when one is
/// set), then the family's own labels in declaration order.
pub struct SnapshotBuilder {
    /// `target="<escaped name>"` ready to paste into a label set, or empty.
    target_pair: String,
    /// Each family's samples so far, in the order families first appeared.
    blocks: Vec<OpenBlock>,
    /// The slot of each family, by the address of its `static`: every sample looks its family
    /// up, and an address hashes in one multiply where the name cost SipHash and a compare.
    /// Two families of the same name share one slot (see [`SnapshotBuilder::slot`]).
    index: ByAddress<usize, usize>,
    series: usize,
    /// The same source's previous snapshot, whose unchanged blocks this one shares.
    previous: Option<Arc<Snapshot>>,
}

/// A family's samples while its snapshot is built, and the text its lines repeat between the
/// label values, written once per family and poll rather than piece by piece for each sample.
struct OpenBlock {
    family: &'static Family,
    samples: Vec<u8>,
    /// The text before each label value (the first piece starts with the name and the `target`
    /// pair), then the text before the sample's value; `cuts` are the ends of all but the last.
    text: Vec<u8>,
    cuts: Vec<usize>,
}

impl OpenBlock {
    fn new(family: &'static Family, target_pair: &str, room: usize) -> OpenBlock {
        let mut text = Vec::with_capacity(family.name.len() + target_pair.len() + 32);
        let mut cuts = Vec::with_capacity(family.labels.len());
        text.extend_from_slice(family.name.as_bytes());
        let braces = !target_pair.is_empty() || !family.labels.is_empty();
        if braces {
            text.push(b'{');
            text.extend_from_slice(target_pair.as_bytes());
        }
        for (i, label) in family.labels.iter().enumerate() {
            if i > 0 {
                text.push(b'"');
            }
            if i > 0 || !target_pair.is_empty() {
                text.push(b',');
            }
            text.extend_from_slice(label.as_bytes());
            text.extend_from_slice(b"=\"");
            cuts.push(text.len());
        }
        if !family.labels.is_empty() {
            text.push(b'"');
        }
        if braces {
            text.push(b'}');
        }
        text.push(b' ');
        OpenBlock {
            family,
            samples: Vec::with_capacity(room),
            text,
            cuts,
        }
    }

    /// One line: the fixed text and the escaped label values in turn, then the value. A missing
    /// value (a caller's bug, caught by a debug assertion) leaves its label empty.
    fn push(&mut self, values: &[&str], value: f64) {
        let out = &mut self.samples;
        let mut start = 0;
        for (label_value, &cut) in values.iter().zip(&self.cuts) {
            out.extend_from_slice(&self.text[start..cut]);
            escape_into(label_value, out);
            start = cut;
        }
        out.extend_from_slice(&self.text[start..]);
        write_value(out, value);
        out.push(b'\n');
    }
}

/// A map keyed by a `&'static Family`'s address (with, for the exposition's headers, a format).
pub(crate) type ByAddress<K, V> = HashMap<K, V, BuildHasherDefault<AddressHasher>>;

/// Hashes a `&'static Family`'s address: one multiply by an odd constant spreads the address's
/// bits, and the high half folded in reaches the low bits the table indexes by. Not for
/// untrusted keys; addresses are chosen by the linker.
#[derive(Default)]
pub(crate) struct AddressHasher(u64);

impl Hasher for AddressHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(self.0 ^ u64::from(b));
        }
    }

    fn write_usize(&mut self, address: usize) {
        self.write_u64(address as u64);
    }

    fn write_u64(&mut self, n: u64) {
        let h = (self.0 ^ n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        self.0 = h ^ (h >> 32);
    }
}

impl SnapshotBuilder {
    pub fn new(target: Option<&str>) -> Self {
        let mut target_pair = String::new();
        if let Some(t) = target {
            target_pair.push_str("target=\"");
            escape_label_value(t, &mut target_pair);
            target_pair.push('"');
        }
        SnapshotBuilder {
            target_pair,
            blocks: Vec::new(),
            index: HashMap::default(),
            series: 0,
            previous: None,
        }
    }

    /// Shares with `previous` (the same source's last snapshot) every block that comes out
    /// byte for byte the same, instead of compressing it again.
    pub fn after(mut self, previous: Option<Arc<Snapshot>>) -> Self {
        self.previous = previous;
        self
    }

    /// Adds one sample. `values` pairs with `family.labels`; a non-finite value is written as
    /// the exposition formats spell it (`NaN`, `+Inf`, `-Inf`).
    pub fn add(&mut self, family: &'static Family, values: &[&str], value: f64) {
        debug_assert_eq!(
            family.labels.len(),
            values.len(),
            "label values for {}",
            family.name
        );
        debug_assert!(
            !family.is_info() || value == 1.0,
            "{} is an info family: its value is always 1",
            family.name
        );
        let slot = self.slot(family);
        self.blocks[slot].push(values, value);
        self.series += 1;
    }

    /// The block `family`'s samples go to. A family is found by its address; the first sample
    /// of an address also looks for a block of the same name, so two `static`s that declare one
    /// name still make one family in the exposition (the first one's help and type).
    fn slot(&mut self, family: &'static Family) -> usize {
        let address = family as *const Family as usize;
        if let Some(&slot) = self.index.get(&address) {
            return slot;
        }
        let slot = match self
            .blocks
            .iter()
            .position(|b| b.family.name == family.name)
        {
            Some(slot) => slot,
            None => {
                // As much room as the family took last time, with a little to grow: a family of
                // thousands of series is written without growing (copying) its buffer, and
                // `finish` gives back what is spared. Otherwise room for a few dozen lines.
                let last = self.previous.as_deref().and_then(|p| p.block(family.name));
                let room = last.map_or(
                    FIRST_LINES * (family.name.len() + self.target_pair.len() + 64),
                    |b| b.samples.len() + b.samples.len() / 16,
                );
                self.blocks
                    .push(OpenBlock::new(family, &self.target_pair, room));
                self.blocks.len() - 1
            }
        };
        self.index.insert(address, slot);
        slot
    }

    /// Adds a sample only when the value is known: devices often report "unknown" (`"--"`,
    /// missing keys), and an absent series says that better than a made-up zero.
    pub fn add_opt(&mut self, family: &'static Family, values: &[&str], value: Option<f64>) {
        if let Some(v) = value {
            self.add(family, values, v);
        }
    }

    pub fn series(&self) -> usize {
        self.series
    }

    /// Sorts the families and compresses each block that changed since the previous snapshot:
    /// the one place a snapshot's samples are compressed, so every later gzip scrape of it costs
    /// no compression.
    pub fn finish(mut self) -> Snapshot {
        self.blocks.sort_unstable_by_key(|b| b.family.name);
        let previous = self.previous.take();
        // Both snapshots' blocks are in name order, one per name: one walk pairs them.
        let mut old = previous.iter().flat_map(|s| s.blocks()).peekable();
        let blocks = self
            .blocks
            .into_iter()
            .map(
                |OpenBlock {
                     family,
                     mut samples,
                     ..
                 }| {
                    while old.next_if(|o| o.family.name < family.name).is_some() {}
                    if let Some(o) = old.next_if(|o| o.family.name == family.name) {
                        if o.samples == samples {
                            return FamilyBlock {
                                family,
                                samples: o.samples.clone(),
                                gzip: o.gzip.clone(),
                            };
                        }
                    }
                    samples.shrink_to_fit();
                    let gzip = Deflated::compress(&samples);
                    FamilyBlock {
                        family,
                        samples: Bytes::from(samples),
                        gzip,
                    }
                },
            )
            .collect();
        Snapshot {
            blocks,
            series: self.series,
        }
    }
}

/// Escapes a label value for both text formats: backslash, double quote and line feed are the
/// only characters that need it; any other UTF-8 passes through.
pub fn escape_label_value(value: &str, out: &mut String) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// [`escape_label_value`] straight into the sample bytes. Most values (ids, names) need no
/// escape and are copied whole; the three escaped characters are ASCII, so escaping bytes keeps
/// any other UTF-8 intact.
fn escape_into(value: &str, out: &mut Vec<u8>) {
    let bytes = value.as_bytes();
    // A fold without an early exit compiles to a vector loop: most values need no escape, and
    // every byte of every label value of a poll passes here.
    let special = |b: &u8| matches!(b, b'\\' | b'"' | b'\n');
    if !bytes.iter().fold(false, |found, b| found | special(b)) {
        out.extend_from_slice(bytes);
        return;
    }
    for &b in bytes {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'"' => out.extend_from_slice(b"\\\""),
            b'\n' => out.extend_from_slice(b"\\n"),
            b => out.push(b),
        }
    }
}

fn write_value(out: &mut Vec<u8>, v: f64) {
    if v.is_nan() {
        out.extend_from_slice(b"NaN");
    } else if v == f64::INFINITY {
        out.extend_from_slice(b"+Inf");
    } else if v == f64::NEG_INFINITY {
        out.extend_from_slice(b"-Inf");
    } else if v.abs() < 1e15 && v == (v as i64) as f64 {
        // Integral values print without a fraction or exponent, as exporters usually do.
        write_integer(out, v as i64);
    } else if v.fract() == 0.0 {
        // Rare (integral and at least 1e15); ryu would add `.0` or an exponent.
        let _ = write!(out, "{v}");
    } else {
        write_fraction(out, v);
    }
}

/// A finite value with a fraction, as `{v}` writes it: the shortest digits that read back as
/// `v`, never an exponent. ryu finds the same shortest digits in fewer instructions than `fmt`,
/// with two differences handled here: it writes tiny values with an exponent (`1e-7`), and those
/// go through `fmt`; and where `v` lies exactly halfway between two shortest candidates (only
/// possible with 16 or more digits, e.g. 911204584602006.25) ryu takes the even one and `fmt`
/// the one further from zero, so that case gets its last digit raised.
fn write_fraction(out: &mut Vec<u8>, v: f64) {
    let mut buffer = ryu::Buffer::new();
    let text = buffer.format_finite(v).as_bytes();
    if text.contains(&b'e') {
        let _ = write!(out, "{v}");
        return;
    }
    let start = out.len();
    out.extend_from_slice(text);
    if below_a_tie(text, v) {
        // The last digit is even (ryu's pick), so raising it carries nowhere.
        let last = out.len() - 1;
        out[last] += 1;
        debug_assert!(out[start..].last().is_some_and(u8::is_ascii_digit));
    }
}

/// Whether `v` is exactly halfway between the decimal `text` (ryu's digits of `v`, no exponent)
/// and the next one of as many digits away from zero. With at most 15 significant digits there
/// is no tie: two candidates both within half an ulp of `v` are 10^-p apart with 10^-p ≤ ulp,
/// which takes 16 digits or more.
fn below_a_tie(text: &[u8], v: f64) -> bool {
    let (mut n, mut significant, mut fraction) = (0u128, 0u32, 0u32);
    let mut in_fraction = false;
    for &b in text {
        match b {
            b'.' => in_fraction = true,
            b'0'..=b'9' => {
                n = n * 10 + u128::from(b - b'0');
                significant += u32::from(n != 0);
                fraction += u32::from(in_fraction);
            }
            _ => {}
        }
    }
    if significant < 16 || (n % 10) % 2 != 0 {
        return false;
    }
    // |v| = m · 2^e exactly; the midpoint is (10n + 5) / 10^(fraction + 1). Equal when
    // m · 5^q = (10n + 5) · 2^(-e - q), with q = fraction + 1: an odd right side needs the
    // shift to be 0 or more.
    let bits = v.to_bits();
    let exponent = ((bits >> 52) & 0x7ff) as i32;
    if exponent == 0 {
        return false; // subnormal: written with an exponent, never here
    }
    let m = u128::from((bits & ((1 << 52) - 1)) | (1 << 52));
    let e = exponent - 1075;
    let q = fraction + 1;
    let Some(left) = 5u128.checked_pow(q).and_then(|p| p.checked_mul(m)) else {
        return false;
    };
    let midpoint = n * 10 + 5;
    let shift = -e - q as i32;
    (0..128).contains(&shift) && left.trailing_zeros() >= shift as u32 && left >> shift == midpoint
}

/// An integer in decimal, without the formatting machinery (most samples are integral).
fn write_integer(out: &mut Vec<u8>, n: i64) {
    if n < 0 {
        out.push(b'-');
    }
    let mut digits = [0u8; 20];
    let mut rest = n.unsigned_abs();
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_are_written_as_format_writes_them() {
        for n in [
            0i64,
            7,
            -7,
            10,
            1_000_000,
            -999_999_999_999_999,
            i64::MIN,
            i64::MAX,
        ] {
            let mut out = Vec::new();
            write_integer(&mut out, n);
            assert_eq!(String::from_utf8(out).unwrap(), n.to_string());
        }
    }

    /// The value as the writer spelled it before it used ryu: `fmt`'s shortest digits, and
    /// integral values under 1e15 as integers.
    fn written_by_fmt(v: f64) -> String {
        if v.fract() == 0.0 && v.abs() < 1e15 {
            (v as i64).to_string()
        } else {
            v.to_string()
        }
    }

    #[test]
    fn finite_values_are_written_as_format_writes_them() {
        // splitmix64: reproducible values without a dependency.
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = || {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        let mut values = vec![
            0.1,
            0.5,
            -0.25,
            1.0 / 3.0,
            0.1 + 0.2,
            1e-5,
            1.5e-5,
            9.99e-6,
            1e-7,
            123_456.789,
            4_503_599_627_370_495.5,
            1e15,
            1e16 + 2.0,
            f64::MIN_POSITIVE,
            5e-324,
            -1e-300,
            f64::MAX,
            -0.0,
        ];
        for _ in 0..100_000 {
            // Any bits; any mantissa at the exponents that have a fraction; device-like decimals.
            values.push(f64::from_bits(next()));
            let exponent = 1023 - 24 + next() % 80;
            values.push(f64::from_bits((next() >> 12) | (exponent << 52)));
            values.push((next() % 100_000_000) as f64 / 1000.0);
            values.push((next() % 1_000_000) as f64 / 100_000_000.0);
            // Few fraction bits under a full mantissa: where two shortest candidates tie.
            let mantissa = ((next() >> 11) | (1 << 52)) >> (next() % 40) << (next() % 40);
            let scaled = mantissa as f64 / (1u64 << (1 + next() % 60)) as f64;
            values.push(if next() % 2 == 0 { scaled } else { -scaled });
        }
        for v in values.into_iter().filter(|v| v.is_finite()) {
            let mut out = Vec::new();
            write_value(&mut out, v);
            assert_eq!(String::from_utf8(out).unwrap(), written_by_fmt(v), "{v:e}");
        }
    }

    static G: Family = Family::gauge("x_ratio", "help", &["name"]);
    static C: Family = Family::counter("x_total", "help", &[]);

    fn text(s: &Snapshot) -> String {
        s.blocks()
            .iter()
            .map(|b| String::from_utf8(b.samples.to_vec()).unwrap())
            .collect()
    }

    #[test]
    fn escapes_any_label_text() {
        let mut b = SnapshotBuilder::new(Some("r\"1"));
        b.add(&G, &["a\\b\"c\nd é 路由"], 0.5);
        assert_eq!(
            text(&b.finish()),
            "x_ratio{target=\"r\\\"1\",name=\"a\\\\b\\\"c\\nd é 路由\"} 0.5\n"
        );
    }

    #[test]
    fn lines_of_every_shape_of_label_set() {
        static TWO: Family = Family::gauge("x_two", "help", &["a", "b"]);
        for (target, want) in [
            (
                Some("t"),
                "x_ratio{target=\"t\",name=\"n\"} 1\nx_total{target=\"t\"} 2\nx_two{target=\"t\",a=\"1\",b=\"\"} 3\n",
            ),
            (
                None,
                "x_ratio{name=\"n\"} 1\nx_total 2\nx_two{a=\"1\",b=\"\"} 3\n",
            ),
        ] {
            let mut b = SnapshotBuilder::new(target);
            b.add(&G, &["n"], 1.0);
            b.add(&C, &[], 2.0);
            b.add(&TWO, &["1", ""], 3.0);
            assert_eq!(text(&b.finish()), want);
        }
    }

    #[test]
    fn families_sorted_and_values_formatted() {
        let mut b = SnapshotBuilder::new(None);
        b.add(&G, &["a"], f64::NAN);
        b.add(&C, &[], 3.0);
        b.add(&G, &["b"], f64::INFINITY);
        b.add(&C, &[], 1e20);
        b.add_opt(&C, &[], None);
        let s = b.finish();
        assert_eq!(s.series(), 4);
        assert_eq!(s.blocks()[0].family.name, "x_ratio");
        assert_eq!(
            text(&s),
            "x_ratio{name=\"a\"} NaN\nx_ratio{name=\"b\"} +Inf\nx_total 3\nx_total 100000000000000000000\n"
        );
    }

    #[test]
    fn two_statics_of_one_name_make_one_family() {
        static AGAIN: Family = Family::gauge("x_ratio", "other help", &["name"]);
        let mut b = SnapshotBuilder::new(None);
        b.add(&G, &["a"], 0.25);
        b.add(&C, &[], 1.0);
        b.add(&AGAIN, &["b"], 0.75);
        b.add(&G, &["c"], 1.0);
        let s = b.finish();
        assert_eq!(s.blocks().len(), 2);
        assert!(
            std::ptr::eq(s.blocks()[0].family, &G),
            "the first one's help"
        );
        assert_eq!(
            text(&s),
            "x_ratio{name=\"a\"} 0.25\nx_ratio{name=\"b\"} 0.75\nx_ratio{name=\"c\"} 1\nx_total 1\n"
        );
    }

    #[test]
    fn blocks_unchanged_since_the_previous_snapshot_share_its_bytes_and_piece() {
        use std::io::Read;
        static GONE: Family = Family::gauge("x_gone", "help", &[]);
        static NEW: Family = Family::gauge("x_new", "help", &[]);
        // Blocks of a few hundred bytes, so each one is really compressed.
        let poll = |previous: Option<Arc<Snapshot>>, value: f64, family: &'static Family| {
            let mut b = SnapshotBuilder::new(Some("t")).after(previous);
            for i in 0..20 {
                b.add(&G, &[&format!("client-{i}")], value);
                b.add(&C, &[], i as f64);
            }
            b.add(family, &[], 1.0);
            Arc::new(b.finish())
        };
        let first = poll(None, 0.5, &GONE);
        let second = poll(Some(first.clone()), 0.75, &NEW);
        fn block<'a>(s: &'a Snapshot, name: &str) -> &'a FamilyBlock {
            s.blocks()
                .iter()
                .find(|b| b.family.name == name)
                .expect(name)
        }
        let (old, new) = (block(&first, "x_total"), block(&second, "x_total"));
        assert_eq!(
            old.samples.as_ptr(),
            new.samples.as_ptr(),
            "unchanged: shared"
        );
        assert_eq!(old.gzip.bytes.as_ptr(), new.gzip.bytes.as_ptr());
        let (old, new) = (block(&first, "x_ratio"), block(&second, "x_ratio"));
        assert_ne!(
            old.samples.as_ptr(),
            new.samples.as_ptr(),
            "changed: its own"
        );
        assert_ne!(old.gzip.bytes, new.gzip.bytes);
        assert!(text(&second).contains("x_ratio{target=\"t\",name=\"client-3\"} 0.75\n"));
        assert!(text(&second).contains("x_new{target=\"t\"} 1\n"));
        assert!(!text(&second).contains("x_gone"));
        // Every piece, shared or new, still stands for its own block's bytes (a piece is
        // non-final blocks: an empty final stored block ends the stream).
        for b in second.blocks() {
            let stream = [&b.gzip.bytes[..], &[1, 0, 0, 0xff, 0xff]].concat();
            let mut deflated = Vec::new();
            flate2::read::DeflateDecoder::new(&stream[..])
                .read_to_end(&mut deflated)
                .unwrap();
            assert_eq!(deflated, b.samples, "{}", b.family.name);
        }
    }

    /// An OpenMetrics header as (name, type, unit).
    type Header = (&'static str, &'static str, Option<&'static str>);

    fn header(f: &'static Family) -> Header {
        let h = f.openmetrics();
        (h.name, h.kind, h.unit)
    }

    #[test]
    fn openmetrics_unit_is_the_base_unit_the_name_ends_in() {
        static CASES: [(Family, Header); 9] = [
            (
                Family::gauge("a_uptime_seconds", "", &[]),
                ("a_uptime_seconds", "gauge", Some("seconds")),
            ),
            (
                Family::gauge("a_last_success_timestamp_seconds", "", &[]),
                ("a_last_success_timestamp_seconds", "gauge", Some("seconds")),
            ),
            (
                Family::counter("a_receive_bytes_total", "", &[]),
                ("a_receive_bytes", "counter", Some("bytes")),
            ),
            (
                Family::counter("a_billable_seconds_total", "", &[]),
                ("a_billable_seconds", "counter", Some("seconds")),
            ),
            (
                Family::gauge("a_cpu_usage_ratio", "", &[]),
                ("a_cpu_usage_ratio", "gauge", Some("ratio")),
            ),
            (
                Family::gauge("a_line_voltage_volts", "", &[]),
                ("a_line_voltage_volts", "gauge", Some("volts")),
            ),
            (
                Family::gauge("a_receive_bytes_per_second", "", &[]),
                ("a_receive_bytes_per_second", "gauge", None),
            ),
            (
                Family::gauge("a_cpu_frequency_hertz", "", &[]),
                ("a_cpu_frequency_hertz", "gauge", None),
            ),
            (
                Family::gauge("seconds", "", &[]),
                ("seconds", "gauge", None),
            ),
        ];
        for (family, want) in &CASES {
            assert_eq!(header(family), *want, "{}", family.name);
        }
    }

    #[test]
    fn info_families_drop_the_info_suffix_in_their_openmetrics_name() {
        static INFO: Family = Family::gauge("a_node_info", "", &["name"]);
        static BARE: Family = Family::gauge("_info", "", &[]);
        static NOT_INFO: Family = Family::gauge("a_information", "", &[]);
        assert!(INFO.is_info());
        assert_eq!(header(&INFO), ("a_node", "info", None));
        assert!(!BARE.is_info());
        assert!(!NOT_INFO.is_info());
        assert_eq!(header(&NOT_INFO), ("a_information", "gauge", None));
    }

    #[test]
    #[should_panic(expected = "info family")]
    #[cfg(debug_assertions)]
    fn an_info_sample_other_than_one_is_a_bug() {
        static INFO: Family = Family::gauge("a_node_info", "", &[]);
        SnapshotBuilder::new(None).add(&INFO, &[], 2.0);
    }
}
