//! Turns snapshots into the bytes a scrape returns.
//!
//! Every source keeps its families sorted by name, so merging many targets into one block per
//! family is a walk over already-encoded bytes plus one header per family. The gzip form is the
//! same walk over the blocks' compressed pieces, joined into one gzip member ([`crate::gzip`]).

use std::borrow::Borrow;
use std::sync::{Arc, LazyLock, Mutex, RwLock};

use bytes::Bytes;

use crate::gzip::{self, Deflated, Member};
use crate::snapshot::{ByAddress, Family, Snapshot};

/// The two exposition formats Prometheus understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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

/// One scrape's body: the exposition of some sources, plain or gzip-compressed, cut into frames
/// as it is sent.
///
/// A fleet's exposition is tens of thousands of family blocks (one per family per target), and
/// each frame a server sends costs a poll and a share of a write whatever its size, so blocks
/// are not sent one by one: runs of small pieces are copied into frames of up to [`FRAME`]
/// bytes as the body goes out, and only large blocks go out as they are, their
/// snapshot's own bytes shared. Nothing is copied ahead of the socket, so a scrape holds a frame, not a copy of
/// every snapshot. The gzip form is one member: the family headers are stored blocks written
/// now, the samples were compressed at poll time, and the trailer's CRC is combined from the
/// blocks' ([`crate::gzip`]). Decompressed, it is exactly [`render`]'s bytes.
///
/// A fleet's blocks are scattered over the heap (each snapshot's own array, each piece its own
/// allocation), and both walks of a gzip body over them (the CRC combined as it is laid out,
/// the small pieces copied into frames) would wait on memory once per block, one wait after
/// another: they ask for the blocks a few places ahead instead (`prefetch`).
pub struct Body {
    sources: Vec<Arc<Snapshot>>,
    gzip: bool,
    /// The text the scrape writes itself: family headers and `# EOF`.
    texts: Vec<Arc<Text>>,
    trailer: [u8; 10],
    pieces: Vec<Piece>,
    next: usize,
    remaining: u64,
}

#[derive(Debug, Clone, Copy)]
enum Piece {
    Text(u32),
    Block { source: u32, block: u32 },
    GzipHeader,
    GzipTrailer,
}

/// Text a scrape writes between the blocks, as it is and as a stored deflate block (too few
/// bytes to be worth compressing) for gzip bodies.
#[derive(Debug)]
struct Text {
    plain: Vec<u8>,
    stored: Deflated,
}

impl Text {
    fn new(plain: Vec<u8>) -> Arc<Text> {
        let stored = Deflated::stored(&plain);
        Arc::new(Text { plain, stored })
    }
}

/// Plain blocks this small are copied into frames; larger ones, most of a router's, are sent
/// as they are (copying them all would cost a memory copy of every snapshot per scrape).
const COPY_BELOW_PLAIN: usize = 4 * 1024;
/// gzip blocks are an eighth of the size, so copying most of them is cheap.
const COPY_BELOW_GZIP: usize = 16 * 1024;
/// A frame of copied pieces: below glibc's mmap threshold (the binary's `allocator.rs`), so
/// frames come from the heap rather than from fresh pages mapped and faulted in for each.
pub const FRAME: usize = 64 * 1024;

impl Body {
    /// The exposition as it is.
    pub fn plain(format: Format, sources: Vec<Arc<Snapshot>>) -> Body {
        Body::new(format, sources, false)
    }

    /// The exposition as one gzip member, joined from the pieces compressed at poll time.
    pub fn gzip(format: Format, sources: Vec<Arc<Snapshot>>) -> Body {
        Body::new(format, sources, true)
    }

    fn new(format: Format, sources: Vec<Arc<Snapshot>>, gzip: bool) -> Body {
        let families = layout(&sources);
        let blocks: usize = families.iter().map(|(_, b)| b.len()).sum();
        let mut body = Body {
            gzip,
            texts: Vec::with_capacity(families.len() + 1),
            trailer: [0; 10],
            pieces: Vec::with_capacity(families.len() + blocks + 3),
            next: 0,
            remaining: 0,
            sources: Vec::new(),
        };
        let mut member = Member::new();
        if gzip {
            body.pieces.push(Piece::GzipHeader);
            body.remaining += gzip::HEADER.len() as u64;
        }
        // One visit per block for its place, its length and its CRC: a fleet's blocks are
        // spread over the snapshots' memory, and each extra pass over them costs cache misses.
        // A block's CRC operator is read on the CRC's dependency chain, so each block's miss
        // would wait for the one before: for gzip, the blocks a few places ahead are asked for
        // early (a plain body's lengths have no such chain, and its loop overlaps the misses).
        for (family, blocks) in families {
            body.write(header(family, format), &mut member);
            for (k, &(source, block)) in blocks.iter().enumerate() {
                if let Some(&(s, b)) = blocks.get(k + LOOK_AHEAD).filter(|_| gzip) {
                    prefetch(&sources[s].blocks()[b], BLOCK_LINES);
                }
                let block_data = &sources[source].blocks()[block];
                let len = if gzip {
                    member.push(&block_data.gzip);
                    block_data.gzip.bytes.len()
                } else {
                    block_data.samples.len()
                };
                body.remaining += len as u64;
                body.pieces.push(Piece::Block {
                    source: source as u32,
                    block: block as u32,
                });
            }
        }
        if format == Format::OpenMetrics {
            static END: LazyLock<Arc<Text>> = LazyLock::new(|| Text::new(EOF.to_vec()));
            body.write(END.clone(), &mut member);
        }
        if gzip {
            body.trailer = member.trailer();
            body.pieces.push(Piece::GzipTrailer);
            body.remaining += body.trailer.len() as u64;
        }
        body.sources = sources;
        body
    }

    fn write(&mut self, text: Arc<Text>, member: &mut Member) {
        let sent = if self.gzip {
            member.push(&text.stored);
            text.stored.bytes.len()
        } else {
            text.plain.len()
        };
        self.remaining += sent as u64;
        self.pieces.push(Piece::Text(self.texts.len() as u32));
        self.texts.push(text);
    }

    fn bytes(&self, piece: Piece) -> &[u8] {
        match piece {
            Piece::Text(i) if self.gzip => &self.texts[i as usize].stored.bytes,
            Piece::Text(i) => &self.texts[i as usize].plain,
            Piece::Block { source, block } => self.block(source, block),
            Piece::GzipHeader => &gzip::HEADER,
            Piece::GzipTrailer => &self.trailer,
        }
    }

    /// A block's samples, or their compressed piece in a gzip body.
    fn block(&self, source: u32, block: u32) -> &Bytes {
        let block = &self.sources[source as usize].blocks()[block as usize];
        if self.gzip {
            &block.gzip.bytes
        } else {
            &block.samples
        }
    }

    /// Bytes still to be sent (all of them before the first frame: the `Content-Length`).
    pub fn remaining(&self) -> u64 {
        self.remaining
    }

    /// The next frame: a large block as it is, or the small pieces that follow, copied together.
    pub fn next_frame(&mut self) -> Option<Bytes> {
        let copy_below = if self.gzip {
            COPY_BELOW_GZIP
        } else {
            COPY_BELOW_PLAIN
        };
        let first = *self.pieces.get(self.next)?;
        let frame = match first {
            Piece::Block { source, block } if self.bytes(first).len() >= copy_below => {
                self.next += 1;
                self.block(source, block).clone()
            }
            _ => {
                let mut frame = SpareFrame::take(self.remaining as usize);
                while let Some(&piece) = self.pieces.get(self.next) {
                    if self.gzip {
                        self.prefetch_ahead();
                    }
                    let bytes = self.bytes(piece);
                    let large = matches!(piece, Piece::Block { .. }) && bytes.len() >= copy_below;
                    if !frame.is_empty() && (large || frame.len() + bytes.len() > FRAME) {
                        break;
                    }
                    frame.extend_from_slice(bytes);
                    self.next += 1;
                }
                SpareFrame::send(frame)
            }
        };
        self.remaining -= frame.len() as u64;
        Some(frame)
    }

    /// Asks for what the copy loop reads next before it needs it: the block a few pieces ahead
    /// (where its bytes are) and the first lines of the bytes of the one after the next. Each
    /// block's bytes are an allocation of their own somewhere in the heap, so a copy that starts
    /// on an unrequested line waits for memory once per piece: 17,000 waits per fleet gzip
    /// scrape, most of whose pieces are copied (a plain body copies only its few small blocks).
    fn prefetch_ahead(&self) {
        if let Some(&Piece::Block { source, block }) = self.pieces.get(self.next + LOOK_AHEAD) {
            prefetch(
                &self.sources[source as usize].blocks()[block as usize],
                BLOCK_LINES,
            );
        }
        if let Some(&Piece::Block { source, block }) = self.pieces.get(self.next + 2) {
            let bytes: &[u8] = self.block(source, block);
            prefetch(bytes, DATA_LINES.min(bytes.len().div_ceil(64)));
        }
    }
}

/// A frame's buffer, given back for the next frame once the server has written it. The binary
/// pins glibc's trim threshold at 128 KiB, so freed frames at the top of the heap went back to
/// the system and every scrape faulted its frames' pages in again: a tenth of a small scrape's
/// CPU. At most [`SPARE_FRAMES`] are kept (2 MiB), about what a server has queued at once.
struct SpareFrame(Vec<u8>);

const SPARE_FRAMES: usize = 32;
static SPARE: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

impl SpareFrame {
    /// An empty frame for `remaining` bytes or [`FRAME`], whichever is less: a spare one when
    /// it is a full-sized frame, since small bodies' frames are small allocations anyway.
    fn take(remaining: usize) -> Vec<u8> {
        if remaining < FRAME {
            return Vec::with_capacity(remaining);
        }
        let spare = SPARE.lock().unwrap_or_else(|e| e.into_inner()).pop();
        spare.unwrap_or_else(|| Vec::with_capacity(FRAME))
    }

    fn send(frame: Vec<u8>) -> Bytes {
        if frame.capacity() == FRAME {
            Bytes::from_owner(SpareFrame(frame))
        } else {
            Bytes::from(frame)
        }
    }
}

impl AsRef<[u8]> for SpareFrame {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for SpareFrame {
    fn drop(&mut self) {
        let mut frame = std::mem::take(&mut self.0);
        frame.clear();
        let mut spare = SPARE.lock().unwrap_or_else(|e| e.into_inner());
        if spare.len() < SPARE_FRAMES {
            spare.push(frame);
        }
    }
}

/// How many blocks ahead the walks ask for: enough to cover a memory access.
const LOOK_AHEAD: usize = 6;
/// Cache lines of a block's metadata (a `FamilyBlock` is about 150 bytes).
const BLOCK_LINES: usize = 3;
/// Cache lines of a piece's bytes asked for ahead; the CPU's own prefetcher follows a copy
/// once it has started.
const DATA_LINES: usize = 4;

/// Starts loading the `lines` cache lines from `at` into the cache, without waiting for them.
#[inline(always)]
fn prefetch<T: ?Sized>(at: &T, lines: usize) {
    let start = (at as *const T).cast::<i8>();
    for line in 0..lines {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: a prefetch is a hint: it reads nothing into the program and does not fault,
        // whatever the address (and this one is in or just past a live reference).
        unsafe {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            _mm_prefetch::<_MM_HINT_T0>(start.wrapping_add(line * 64));
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = (start, line);
    }
}

impl Iterator for Body {
    type Item = Bytes;

    fn next(&mut self) -> Option<Bytes> {
        self.next_frame()
    }
}

const EOF: &[u8] = b"# EOF\n";

/// A family and the `(source, block)` positions of its samples.
type FamilyLayout = (&'static Family, Vec<(usize, usize)>);

/// Every family once, in name order, with its samples in source order. Families are statics,
/// so their addresses tell them apart more cheaply than their names for each of a fleet's
/// blocks; names decide the order, and the rare two statics of one name still make one family.
fn layout<S: Borrow<Snapshot>>(sources: &[S]) -> Vec<FamilyLayout> {
    // About as many families as the largest source has, for one driver kind or a few.
    let families_seen = sources.iter().map(|s| s.borrow().blocks().len()).max();
    let mut slots: ByAddress<usize, usize> =
        ByAddress::with_capacity_and_hasher(2 * families_seen.unwrap_or(0), Default::default());
    let mut families: Vec<FamilyLayout> = Vec::new();
    for (s, snapshot) in sources.iter().enumerate() {
        for (b, block) in snapshot.borrow().blocks().iter().enumerate() {
            let address = block.family as *const Family as usize;
            let slot = *slots.entry(address).or_insert_with(|| {
                families.push((block.family, Vec::new()));
                families.len() - 1
            });
            families[slot].1.push((s, b));
        }
    }
    families.sort_by_key(|(family, _)| family.name);
    families.dedup_by(|later, kept| {
        if later.0.name != kept.0.name {
            return false;
        }
        kept.1.append(&mut later.1);
        kept.1.sort_unstable();
        true
    });
    families
}

/// A family's header in one format. Families are statics, so each header is written once for
/// the process's life rather than once per family per scrape, which was a third of a small
/// scrape's CPU (the help text escaped, the stored block's CRC).
fn header(family: &'static Family, format: Format) -> Arc<Text> {
    type Headers = ByAddress<(usize, Format), Arc<Text>>;
    static HEADERS: LazyLock<RwLock<Headers>> = LazyLock::new(Default::default);
    let key = (family as *const Family as usize, format);
    if let Some(text) = HEADERS.read().unwrap_or_else(|e| e.into_inner()).get(&key) {
        return text.clone();
    }
    let mut text = Vec::with_capacity(128);
    write_header(&mut text, format, family);
    let text = Text::new(text);
    HEADERS
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .insert(key, text.clone());
    text
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
            let body: Vec<Bytes> = Body::plain(format, sources.to_vec()).collect();
            assert_eq!(body.concat(), render(format, sources.iter().map(|s| &**s)));
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
            let gz = Body::gzip(format, sources.to_vec())
                .collect::<Vec<_>>()
                .concat();
            let mut text = Vec::new();
            // The single-member reader: the pieces must make one member.
            flate2::read::GzDecoder::new(&gz[..])
                .read_to_end(&mut text)
                .unwrap();
            assert_eq!(text, render(format, sources.iter().map(|s| &**s)));
        }
        let none: [Arc<Snapshot>; 0] = [];
        let gz = Body::gzip(Format::Text, none.to_vec())
            .collect::<Vec<_>>()
            .concat();
        let mut text = Vec::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_end(&mut text)
            .unwrap();
        assert!(text.is_empty());
    }

    static CLIENTS: Family = Family::gauge("a_client_rx_bytes", "Per client.", &["client"]);

    /// Many targets with one small and one large block each, as a fleet of routers has.
    fn fleet(targets: usize, clients: usize) -> Vec<Arc<Snapshot>> {
        (0..targets)
            .map(|t| {
                let mut b = SnapshotBuilder::new(Some(&format!("router-{t}")));
                b.add(&UP, &[], 1.0);
                for c in 0..clients {
                    b.add(&CLIENTS, &[&format!("c{c}")], (t * c) as f64);
                }
                Arc::new(b.finish())
            })
            .collect()
    }

    #[test]
    fn small_blocks_are_copied_into_frames_and_large_ones_sent_as_they_are() {
        let sources = fleet(300, 200);
        let large = sources[0].blocks()[0].samples.len();
        assert!(large >= COPY_BELOW_PLAIN, "the client block is a large one");
        let frames: Vec<Bytes> = Body::plain(Format::Text, sources.clone()).collect();
        // 300 `a_up` blocks of a few dozen bytes make one frame with their header, not 300.
        assert!(frames.len() <= 300 + 3, "{} frames", frames.len());
        for frame in &frames {
            assert!(
                frame.len() <= FRAME || sources.iter().any(|s| s.blocks()[0].samples == *frame),
                "a frame of {} bytes is neither a copied run nor one block",
                frame.len()
            );
        }
        assert_eq!(
            frames.concat(),
            render(Format::Text, sources.iter().map(|s| &**s))
        );
    }

    /// A fleet's gzip body goes out in many frames, large blocks shared and runs of small ones
    /// copied (with the blocks ahead prefetched): still one member whose trailer covers every
    /// piece, which gzip readers check.
    #[test]
    fn a_gzip_body_of_many_frames_is_one_member_whose_trailer_covers_every_piece() {
        use std::io::Read;
        let sources = fleet(300, 200);
        for format in [Format::Text, Format::OpenMetrics] {
            let frames: Vec<Bytes> = Body::gzip(format, sources.clone()).collect();
            assert!(frames.len() > 2, "{} frames", frames.len());
            let mut text = Vec::new();
            flate2::read::GzDecoder::new(&frames.concat()[..])
                .read_to_end(&mut text)
                .unwrap();
            assert_eq!(text, render(format, sources.iter().map(|s| &**s)));
        }
    }

    #[test]
    fn the_announced_length_is_what_is_sent() {
        for format in [Format::Text, Format::OpenMetrics] {
            for body in [
                Body::plain(format, fleet(50, 40)),
                Body::gzip(format, fleet(50, 40)),
            ] {
                let announced = body.remaining();
                let sent: u64 = body.map(|f| f.len() as u64).sum();
                assert_eq!(sent, announced);
            }
        }
    }

    /// The same name declared twice (two drivers' statics): still one family, in source order.
    static UP_AGAIN: Family = Family::gauge("a_up", "Up.", &[]);

    #[test]
    fn two_statics_of_one_name_make_one_family() {
        let a = source("a", 1.0);
        let mut b = SnapshotBuilder::new(Some("b"));
        b.add(&UP_AGAIN, &[], 0.0);
        let b = b.finish();
        let c = source("c", 1.0);
        let text = String::from_utf8(render(Format::Text, [&a, &b, &c])).unwrap();
        assert_eq!(text.matches("# TYPE a_up gauge").count(), 1, "{text}");
        assert!(
            text.ends_with("a_up{target=\"a\"} 1\na_up{target=\"b\"} 0\na_up{target=\"c\"} 1\n"),
            "{text}"
        );
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
