//! Turns snapshots into the bytes a scrape returns.
//!
//! Every source keeps its families sorted by name, so merging many targets into one block per
//! family is a walk over already-encoded bytes plus one header per family. The gzip form is the
//! same walk over the blocks' compressed pieces, joined into one gzip member ([`crate::gzip`]).

use std::borrow::Borrow;
use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;

use crate::gzip::{self, Deflated, Member};
use crate::snapshot::{Family, Snapshot};

/// The two exposition formats Prometheus understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `text/plain; version=0.0.4`
    Text,
    /// `application/openmetrics-text; version=1.0.0`
    OpenMetrics,
}

impl Format {
    /// Picks the format from an `Accept` header as RFC 9110 says: each format the exporter
    /// offers gets the q-value of the most specific media range that matches it
    /// (`type/subtype;version=…` over `type/subtype` over `type/*` over `*/*`), and the highest
    /// q above 0 wins. OpenMetrics matches `application/openmetrics-text` with version 1.0.0 or
    /// none, text matches `text/plain` with version 0.0.4 or none; other versions (OpenMetrics
    /// 0.0.1, text 1.0.0) and other types (protobuf) are not offered. On a tie the range the
    /// client listed first wins, and between two formats matched by the same range (`*/*`), text.
    /// No header, nothing acceptable, or only `q=0`: text 0.0.4, as every Prometheus exporter
    /// answers rather than refusing a scrape.
    pub fn negotiate(accept: Option<&str>) -> Format {
        let Some(accept) = accept else {
            return Format::Text;
        };
        // For each offer: (specificity, q, position of the range that gave it).
        let mut best: [Option<(u8, f32, usize)>; 2] = [None, None];
        for (position, range) in accept.split(',').enumerate() {
            let Some(range) = MediaRange::parse(range) else {
                continue;
            };
            for (slot, format) in [Format::Text, Format::OpenMetrics].into_iter().enumerate() {
                let Some(specificity) = range.matches(format) else {
                    continue;
                };
                if best[slot].is_none_or(|(s, _, _)| specificity > s) {
                    best[slot] = Some((specificity, range.q, position));
                }
            }
        }
        let score = |slot: usize| best[slot].filter(|&(_, q, _)| q > 0.0);
        match (score(0), score(1)) {
            (Some((_, tq, tp)), Some((_, oq, op))) if oq > tq || (oq == tq && op < tp) => {
                Format::OpenMetrics
            }
            (None, Some(_)) => Format::OpenMetrics,
            _ => Format::Text,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

/// One media range of an `Accept` header: only what negotiation needs.
struct MediaRange<'a> {
    kind: &'a str,
    subtype: &'a str,
    version: Option<&'a str>,
    q: f32,
}

impl<'a> MediaRange<'a> {
    /// `None` for a range that is not `type/subtype` or whose q-value is not a number in 0..=1:
    /// such a range says nothing usable, so it is skipped rather than guessed at.
    fn parse(text: &'a str) -> Option<MediaRange<'a>> {
        let mut parts = text.split(';');
        let (kind, subtype) = parts.next()?.trim().split_once('/')?;
        let (kind, subtype) = (kind.trim(), subtype.trim());
        if kind.is_empty() || subtype.is_empty() {
            return None;
        }
        let mut range = MediaRange {
            kind,
            subtype,
            version: None,
            q: 1.0,
        };
        for param in parts {
            let Some((name, value)) = param.split_once('=') else {
                continue;
            };
            let value = value.trim().trim_matches('"');
            match name.trim() {
                n if n.eq_ignore_ascii_case("q") => {
                    range.q = value.parse().ok().filter(|q| (0.0..=1.0).contains(q))?;
                }
                n if n.eq_ignore_ascii_case("version") => range.version = Some(value),
                // charset, escaping, …: the exposition is UTF-8 and its names are valid in
                // every escaping scheme, so these never rule a format out.
                _ => {}
            }
        }
        Some(range)
    }

    /// How specifically this range names `format` (3 with a matching version, 2 without one,
    /// 1 for `type/*`, 0 for `*/*`), or `None` when it does not match it.
    fn matches(&self, format: Format) -> Option<u8> {
        let (kind, subtype, version) = match format {
            Format::Text => ("text", "plain", "0.0.4"),
            Format::OpenMetrics => ("application", "openmetrics-text", "1.0.0"),
        };
        match (self.kind, self.subtype) {
            ("*", "*") => Some(0),
            (k, "*") if k.eq_ignore_ascii_case(kind) => Some(1),
            (k, s) if k.eq_ignore_ascii_case(kind) && s.eq_ignore_ascii_case(subtype) => {
                match self.version {
                    None => Some(2),
                    Some(v) if v == version => Some(3),
                    Some(_) => None,
                }
            }
            _ => None,
        }
    }
}

/// Encodes the sources as one exposition: each family once, its samples in source order.
pub fn render<'a, I>(format: Format, sources: I) -> Vec<u8>
where
    I: IntoIterator<Item = &'a Snapshot>,
{
    let sources: Vec<&Snapshot> = sources.into_iter().collect();
    let families = layout(&sources);
    let size: usize = sources.iter().map(|s| s.encoded_bytes()).sum();
    let mut out = Vec::with_capacity(size + families.len() * 96 + 8);
    for (family, blocks) in families {
        write_header(&mut out, format, family);
        for (s, b) in blocks {
            out.extend_from_slice(&sources[s].blocks()[b].samples);
        }
    }
    if format == Format::OpenMetrics {
        out.extend_from_slice(EOF);
    }
    out
}

/// The same exposition as [`render`], as pieces that share the snapshots' memory. A scrape then
/// costs the headers and one reference per block: copying the samples would take as much memory
/// again as every snapshot, and the allocator tends to keep such a large buffer once freed.
pub fn render_shared(format: Format, sources: &[Arc<Snapshot>]) -> Vec<Bytes> {
    let mut out = Vec::new();
    for (family, blocks) in layout(sources) {
        let mut header = Vec::with_capacity(96);
        write_header(&mut header, format, family);
        out.push(Bytes::from(header));
        out.extend(
            blocks
                .into_iter()
                .map(|(s, b)| Bytes::from_owner(SharedBlock(sources[s].clone(), b))),
        );
    }
    if format == Format::OpenMetrics {
        out.push(Bytes::from_static(EOF));
    }
    out
}

/// The exposition of [`render_shared`], gzip-compressed, as pieces that share the snapshots'
/// compressed blocks: one gzip member whose family headers are stored blocks written now, and
/// whose samples were compressed at poll time. Decompressed, it is exactly [`render`]'s bytes.
pub fn render_gzip(format: Format, sources: &[Arc<Snapshot>]) -> Vec<Bytes> {
    let mut member = Member::new();
    let mut out = vec![Bytes::from_static(&gzip::HEADER)];
    let mut header = Vec::with_capacity(96);
    for (family, blocks) in layout(sources) {
        header.clear();
        write_header(&mut header, format, family);
        push_stored(&header, &mut member, &mut out);
        for (s, b) in blocks {
            member.push(&sources[s].blocks()[b].gzip);
            out.push(Bytes::from_owner(SharedDeflated(sources[s].clone(), b)));
        }
    }
    if format == Format::OpenMetrics {
        push_stored(EOF, &mut member, &mut out);
    }
    out.push(Bytes::copy_from_slice(&member.trailer()));
    out
}

/// Bytes written at scrape time (headers, `# EOF`), too few to be worth compressing.
fn push_stored(text: &[u8], member: &mut Member, out: &mut Vec<Bytes>) {
    let piece = Deflated::stored(text);
    member.push(&piece);
    out.push(Bytes::from(piece.bytes));
}

const EOF: &[u8] = b"# EOF\n";

/// A family and the `(source, block)` positions of its samples.
type FamilyLayout = (&'static Family, Vec<(usize, usize)>);

/// Every family once, in name order, with its samples in source order.
fn layout<S: Borrow<Snapshot>>(sources: &[S]) -> Vec<FamilyLayout> {
    let mut families: BTreeMap<&'static str, FamilyLayout> = BTreeMap::new();
    for (s, snapshot) in sources.iter().enumerate() {
        for (b, block) in snapshot.borrow().blocks().iter().enumerate() {
            families
                .entry(block.family.name)
                .or_insert_with(|| (block.family, Vec::new()))
                .1
                .push((s, b));
        }
    }
    families.into_values().collect()
}

/// One block's samples, kept alive by its snapshot.
struct SharedBlock(Arc<Snapshot>, usize);

impl AsRef<[u8]> for SharedBlock {
    fn as_ref(&self) -> &[u8] {
        &self.0.blocks()[self.1].samples
    }
}

/// One block's compressed samples, kept alive by its snapshot.
struct SharedDeflated(Arc<Snapshot>, usize);

impl AsRef<[u8]> for SharedDeflated {
    fn as_ref(&self) -> &[u8] {
        &self.0.blocks()[self.1].gzip.bytes
    }
}

fn write_header(out: &mut Vec<u8>, format: Format, family: &Family) {
    let (name, kind, unit) = match format {
        Format::Text => (family.name, family.metric_type.as_str(), None),
        Format::OpenMetrics => {
            let om = family.openmetrics();
            (om.name, om.kind, om.unit)
        }
    };
    out.extend_from_slice(b"# HELP ");
    out.extend_from_slice(name.as_bytes());
    out.push(b' ');
    escape_help(family.help, out);
    out.extend_from_slice(b"\n# TYPE ");
    out.extend_from_slice(name.as_bytes());
    out.push(b' ');
    out.extend_from_slice(kind.as_bytes());
    out.push(b'\n');
    if let Some(unit) = unit {
        out.extend_from_slice(b"# UNIT ");
        out.extend_from_slice(name.as_bytes());
        out.push(b' ');
        out.extend_from_slice(unit.as_bytes());
        out.push(b'\n');
    }
}

fn escape_help(help: &str, out: &mut Vec<u8>) {
    for c in help.chars() {
        match c {
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            c => {
                let mut buf = [0; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::SnapshotBuilder;

    static UP: Family = Family::gauge("a_up", "Up.", &[]);
    static BYTES: Family = Family::counter("a_bytes_total", "Bytes.", &["dir"]);

    fn source(target: &str, v: f64) -> Snapshot {
        let mut b = SnapshotBuilder::new(Some(target));
        b.add(&BYTES, &["in"], v);
        b.add(&UP, &[], 1.0);
        b.finish()
    }

    #[test]
    fn one_block_per_family_across_sources() {
        let (a, b) = (source("a", 1.0), source("b", 2.0));
        let text = String::from_utf8(render(Format::Text, [&a, &b])).unwrap();
        assert_eq!(
            text,
            "# HELP a_bytes_total Bytes.\n# TYPE a_bytes_total counter\n\
             a_bytes_total{target=\"a\",dir=\"in\"} 1\na_bytes_total{target=\"b\",dir=\"in\"} 2\n\
             # HELP a_up Up.\n# TYPE a_up gauge\na_up{target=\"a\"} 1\na_up{target=\"b\"} 1\n"
        );
    }

    #[test]
    fn openmetrics_names_counters_without_total_and_ends_with_eof() {
        let a = source("a", 1.0);
        let om = String::from_utf8(render(Format::OpenMetrics, [&a])).unwrap();
        assert!(om.starts_with(
            "# HELP a_bytes Bytes.\n# TYPE a_bytes counter\n# UNIT a_bytes bytes\na_bytes_total{"
        ));
        assert!(om.ends_with("a_up{target=\"a\"} 1\n# EOF\n"));
    }

    #[test]
    fn shared_pieces_are_the_same_exposition() {
        let sources = [Arc::new(source("a", 1.0)), Arc::new(source("b", 2.0))];
        for format in [Format::Text, Format::OpenMetrics] {
            let pieces = render_shared(format, &sources);
            assert_eq!(
                pieces.concat(),
                render(format, sources.iter().map(|s| &**s))
            );
        }
    }

    #[test]
    fn gzip_pieces_decompress_to_the_same_exposition() {
        use std::io::Read;
        let sources = [
            Arc::new(source("a", 1.0)),
            Arc::new(source("b", 2.0)),
            Arc::new(SnapshotBuilder::new(None).finish()),
        ];
        for format in [Format::Text, Format::OpenMetrics] {
            let gz = render_gzip(format, &sources).concat();
            let mut text = Vec::new();
            // The single-member reader: the pieces must make one member.
            flate2::read::GzDecoder::new(&gz[..])
                .read_to_end(&mut text)
                .unwrap();
            assert_eq!(text, render(format, sources.iter().map(|s| &**s)));
        }
        let none: [Arc<Snapshot>; 0] = [];
        let gz = render_gzip(Format::Text, &none).concat();
        let mut text = Vec::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_end(&mut text)
            .unwrap();
        assert!(text.is_empty());
    }

    /// Prometheus before 2.49 (and the Debian 2.42 the e2e runs).
    const PROM_2_OLD: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
    /// Prometheus 2.49 to 2.55, default `scrape_protocols`.
    const PROM_2: &str = "application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2";
    /// Prometheus 3.x, default `scrape_protocols`.
    const PROM_3: &str = "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2";
    /// Prometheus with native histograms on: protobuf first, which the exporter does not speak.
    const PROM_PROTO_FIRST: &str = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.6,application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2";

    fn pick(accept: &str) -> Format {
        Format::negotiate(Some(accept))
    }

    #[test]
    fn prometheus_default_accept_headers_get_openmetrics() {
        for accept in [PROM_2_OLD, PROM_2, PROM_3, PROM_PROTO_FIRST] {
            assert_eq!(pick(accept), Format::OpenMetrics, "{accept}");
        }
    }

    #[test]
    fn scrape_protocols_preferring_text_get_text() {
        // scrape_protocols: [PrometheusText0.0.4, OpenMetricsText1.0.0]
        let text_first = "text/plain;version=0.0.4;q=0.6,application/openmetrics-text;version=1.0.0;q=0.5,*/*;q=0.4";
        assert_eq!(pick(text_first), Format::Text);
        // scrape_protocols: [PrometheusText1.0.0, OpenMetricsText1.0.0] (3.x): text 1.0.0 is
        // not offered, so OpenMetrics is the best the exporter has.
        let text1_first = "text/plain;version=1.0.0;escaping=allow-utf-8;q=0.6,application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,*/*;q=0.4";
        assert_eq!(pick(text1_first), Format::OpenMetrics);
    }

    #[test]
    fn formats_the_exporter_does_not_offer_fall_back_to_text_through_the_wildcard() {
        // scrape_protocols: [PrometheusProto]; [OpenMetricsText0.0.1]; [PrometheusText1.0.0].
        for accept in [
            "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.6,*/*;q=0.5",
            "application/openmetrics-text;version=0.0.1;q=0.6,*/*;q=0.5",
            "text/plain;version=1.0.0;escaping=allow-utf-8;q=0.6,*/*;q=0.5",
        ] {
            assert_eq!(pick(accept), Format::Text, "{accept}");
        }
    }

    #[test]
    fn no_header_nothing_acceptable_or_garbage_is_text() {
        assert_eq!(Format::negotiate(None), Format::Text);
        for accept in [
            "",
            "application/json",
            "application/openmetrics-text;version=2.0.0",
            "garbage",
            ",,;",
            "application/openmetrics-text;q=abc",
            "application/openmetrics-text;q=2",
        ] {
            assert_eq!(pick(accept), Format::Text, "{accept:?}");
        }
    }

    #[test]
    fn the_highest_q_wins_whatever_the_order() {
        assert_eq!(
            pick("text/plain;q=0.2, application/openmetrics-text;q=0.9"),
            Format::OpenMetrics
        );
        assert_eq!(
            pick("application/openmetrics-text;q=0.2, text/plain;q=0.9"),
            Format::Text
        );
        assert_eq!(
            pick("application/openmetrics-text;version=1.0.0;q=0.001,text/plain;q=0"),
            Format::OpenMetrics
        );
    }

    #[test]
    fn ties_go_to_the_range_listed_first_and_a_shared_wildcard_to_text() {
        assert_eq!(
            pick("application/openmetrics-text, text/plain"),
            Format::OpenMetrics
        );
        assert_eq!(
            pick("text/plain, application/openmetrics-text"),
            Format::Text
        );
        assert_eq!(pick("*/*"), Format::Text);
        assert_eq!(pick("*/*;q=0.8"), Format::Text);
    }

    #[test]
    fn q_zero_excludes_a_format() {
        assert_eq!(pick("text/plain;q=0, */*"), Format::OpenMetrics);
        assert_eq!(pick("application/openmetrics-text;q=0, */*"), Format::Text);
        // Both excluded: the fallback.
        assert_eq!(
            pick("text/plain;q=0,application/openmetrics-text;q=0.0"),
            Format::Text
        );
    }

    #[test]
    fn the_most_specific_matching_range_sets_a_formats_q() {
        // The versioned range outranks the bare one for the same type, in either order.
        assert_eq!(
            pick("application/openmetrics-text;q=0,application/openmetrics-text;version=1.0.0;q=0.5,text/plain;q=0.4"),
            Format::OpenMetrics
        );
        assert_eq!(
            pick("application/openmetrics-text;version=1.0.0;q=0.1,application/openmetrics-text;q=0.9,text/plain;q=0.5"),
            Format::Text
        );
        // type/* outranks */*.
        assert_eq!(pick("application/*;q=0.9, */*;q=0.1"), Format::OpenMetrics);
        assert_eq!(pick("text/*;q=0, */*"), Format::OpenMetrics);
    }

    #[test]
    fn negotiation_ignores_case_spaces_quotes_and_other_parameters() {
        assert_eq!(
            pick("Application/OpenMetrics-Text ; Version=\"1.0.0\" ; Charset=utf-8 ; Q=0.7 , TEXT/PLAIN ; q=0.3"),
            Format::OpenMetrics
        );
        assert_eq!(
            pick("application/openmetrics-text; version=1.0.0; q=0.3, text/plain; version=0.0.4; charset=utf-8; q=0.7"),
            Format::Text
        );
    }

    static SECONDS: Family = Family::gauge("a_poll_duration_seconds", "Took.", &[]);
    static RATE: Family = Family::gauge("a_receive_bytes_per_second", "Rate.", &[]);
    static INFO: Family = Family::gauge("a_build_info", "Build.", &["version"]);

    #[test]
    fn openmetrics_writes_unit_lines_for_base_units_after_the_counter_suffix() {
        let mut b = SnapshotBuilder::new(Some("a"));
        b.add(&BYTES, &["in"], 1.0);
        b.add(&SECONDS, &[], 0.5);
        b.add(&RATE, &[], 2.0);
        let s = b.finish();
        let om = String::from_utf8(render(Format::OpenMetrics, [&s])).unwrap();
        assert!(om.contains("# HELP a_bytes Bytes.\n# TYPE a_bytes counter\n# UNIT a_bytes bytes\na_bytes_total{"), "{om}");
        assert!(
            om.contains(
                "# TYPE a_poll_duration_seconds gauge\n# UNIT a_poll_duration_seconds seconds\n"
            ),
            "{om}"
        );
        assert!(!om.contains("# UNIT a_receive_bytes_per_second"), "{om}");
        let text = String::from_utf8(render(Format::Text, [&s])).unwrap();
        assert!(
            !text.contains("# UNIT"),
            "text 0.0.4 has no UNIT line: {text}"
        );
    }

    #[test]
    fn info_families_are_info_in_openmetrics_and_gauges_in_text() {
        let mut b = SnapshotBuilder::new(Some("a"));
        b.add(&INFO, &["1.2"], 1.0);
        let s = b.finish();
        assert_eq!(
            String::from_utf8(render(Format::OpenMetrics, [&s])).unwrap(),
            "# HELP a_build Build.\n# TYPE a_build info\na_build_info{target=\"a\",version=\"1.2\"} 1\n# EOF\n"
        );
        assert_eq!(
            String::from_utf8(render(Format::Text, [&s])).unwrap(),
            "# HELP a_build_info Build.\n# TYPE a_build_info gauge\na_build_info{target=\"a\",version=\"1.2\"} 1\n"
        );
    }
}
