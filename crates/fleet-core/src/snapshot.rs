//! The device-neutral snapshot a driver fills in during a poll.
//!
//! Samples are encoded into exposition lines as they are added, so a scrape only copies bytes:
//! the work happens once per poll, never once per scrape. The sample lines are identical in the
//! Prometheus text format and in OpenMetrics; only the family headers differ, and those are
//! written by [`crate::exposition`]. Each family block is also compressed once, when the
//! snapshot is finished, so a gzip scrape only joins pieces ([`crate::gzip`]).

use std::collections::HashMap;
use std::io::Write;

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
    pub samples: Vec<u8>,
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

    /// Bytes held by the encoded samples (for benchmarks and the status page).
    pub fn encoded_bytes(&self) -> usize {
        self.blocks.iter().map(|b| b.samples.len()).sum()
    }

    /// Bytes held by the compressed samples.
    pub fn compressed_bytes(&self) -> usize {
        self.blocks.iter().map(|b| b.gzip.bytes.len()).sum()
    }
}

/// Collects samples for one snapshot. Every sample gets the `target` label first (when one is
/// set), then the family's own labels in declaration order.
pub struct SnapshotBuilder {
    /// `target="<escaped name>"` ready to paste into a label set, or empty.
    target_pair: String,
    /// Each family's samples so far, in the order families first appeared.
    blocks: Vec<(&'static Family, Vec<u8>)>,
    index: HashMap<&'static str, usize>,
    series: usize,
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
            index: HashMap::new(),
            series: 0,
        }
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
        let slot = match self.index.get(family.name) {
            Some(&i) => i,
            None => {
                self.blocks.push((family, Vec::new()));
                self.index.insert(family.name, self.blocks.len() - 1);
                self.blocks.len() - 1
            }
        };
        let out = &mut self.blocks[slot].1;
        out.extend_from_slice(family.name.as_bytes());
        let mut first = true;
        if !self.target_pair.is_empty() || !values.is_empty() {
            out.push(b'{');
            if !self.target_pair.is_empty() {
                out.extend_from_slice(self.target_pair.as_bytes());
                first = false;
            }
            for (name, value) in family.labels.iter().zip(values) {
                if !first {
                    out.push(b',');
                }
                first = false;
                out.extend_from_slice(name.as_bytes());
                out.extend_from_slice(b"=\"");
                escape_into(value, out);
                out.push(b'"');
            }
            out.push(b'}');
        }
        out.push(b' ');
        write_value(out, value);
        out.push(b'\n');
        self.series += 1;
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

    /// Sorts the families and compresses each block: the one place a snapshot's samples are
    /// compressed, so every later gzip scrape of it costs no compression.
    pub fn finish(mut self) -> Snapshot {
        self.blocks.sort_unstable_by_key(|(family, _)| family.name);
        let blocks = self
            .blocks
            .into_iter()
            .map(|(family, mut samples)| {
                samples.shrink_to_fit();
                let gzip = Deflated::compress(&samples);
                FamilyBlock {
                    family,
                    samples,
                    gzip,
                }
            })
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
    if !bytes.iter().any(|b| matches!(b, b'\\' | b'"' | b'\n')) {
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
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        // Integral values print without a fraction or exponent, as exporters usually do.
        write_integer(out, v as i64);
    } else {
        let _ = write!(out, "{v}");
    }
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

    static G: Family = Family::gauge("x_ratio", "help", &["name"]);
    static C: Family = Family::counter("x_total", "help", &[]);

    fn text(s: &Snapshot) -> String {
        s.blocks()
            .iter()
            .map(|b| String::from_utf8(b.samples.clone()).unwrap())
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
