//! Turns snapshots into the bytes a scrape returns.
//!
//! Every source keeps its families sorted by name, so merging many targets into one block per
//! family is a walk over already-encoded bytes plus one header per family.

use std::borrow::Borrow;
use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;

use crate::snapshot::{Family, MetricType, Snapshot};

/// The two exposition formats Prometheus understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `text/plain; version=0.0.4`
    Text,
    /// `application/openmetrics-text; version=1.0.0`
    OpenMetrics,
}

impl Format {
    /// Picks OpenMetrics only when the client asks for it, as Prometheus does.
    pub fn negotiate(accept: Option<&str>) -> Format {
        match accept {
            Some(a) if a.contains("application/openmetrics-text") => Format::OpenMetrics,
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

fn write_header(out: &mut Vec<u8>, format: Format, family: &Family) {
    // OpenMetrics names a counter family without its `_total` sample suffix.
    let name = match (format, family.metric_type) {
        (Format::OpenMetrics, MetricType::Counter) => {
            family.name.strip_suffix("_total").unwrap_or(family.name)
        }
        _ => family.name,
    };
    out.extend_from_slice(b"# HELP ");
    out.extend_from_slice(name.as_bytes());
    out.push(b' ');
    escape_help(family.help, out);
    out.extend_from_slice(b"\n# TYPE ");
    out.extend_from_slice(name.as_bytes());
    out.push(b' ');
    out.extend_from_slice(family.metric_type.as_str().as_bytes());
    out.push(b'\n');
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
        assert!(om.starts_with("# HELP a_bytes Bytes.\n# TYPE a_bytes counter\na_bytes_total{"));
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
    fn negotiation() {
        assert_eq!(Format::negotiate(None), Format::Text);
        let prom = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(Format::negotiate(Some(prom)), Format::OpenMetrics);
        assert_eq!(Format::negotiate(Some("text/plain")), Format::Text);
    }
}
