//! One gzip stream joined from pieces compressed apart, so a gzip scrape costs no compression.
//!
//! Policy: every family block is compressed once, when its snapshot is built (at poll time), as
//! raw deflate ending in a *full flush*: the flush ends on a byte boundary and forgets the
//! dictionary, so the next piece never refers back into this one, and pieces can be laid end to
//! end in any order (RFC 1951 allows any number of non-final blocks). A scrape then writes the
//! gzip header, the pieces, the family headers as stored blocks, an empty final block and the
//! trailer (RFC 1952): one member, which every gzip reader reads, including those that stop
//! after the first member. The trailer's CRC-32 of the whole body is combined from the pieces'
//! CRCs without reading their bytes again: appending `len` bytes multiplies a CRC by
//! `x^(8·len)` modulo the CRC polynomial, an operator each piece keeps ready (zlib's
//! `crc32_combine_gen`/`crc32_combine_op`), so joining costs one short loop per piece.

use bytes::Bytes;
use flate2::{Compress, Compression, Crc, FlushCompress};
use std::cell::RefCell;

/// A piece of deflate data that can be placed anywhere in a stream, with what the gzip trailer
/// needs to know of the bytes it stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deflated {
    /// Non-final deflate blocks ending on a byte boundary, with no back-reference outside.
    /// Shared: by the next snapshot when its block is unchanged, and by scrapes sending it.
    pub bytes: Bytes,
    /// CRC-32 of the uncompressed bytes.
    crc: u32,
    /// Times `x^(8·len)` mod the polynomial: what appending these bytes does to a running CRC.
    shift: Multiplier,
    /// Uncompressed length.
    len: u64,
}

thread_local! {
    /// A compressor's state is a few hundred KiB: one per thread, reused, rather than one
    /// allocated per snapshot.
    static COMPRESSOR: RefCell<Compress> = RefCell::new(Compress::new(Compression::fast(), false));
}

impl Deflated {
    /// Compresses `data` at the fastest level, as `tower-http` compressed whole bodies before.
    /// A few dozen bytes (a health series) compress to barely less than they are, so they are
    /// stored instead, which spares the flush its cost.
    pub fn compress(data: &[u8]) -> Deflated {
        if data.len() < 128 {
            return Deflated::stored(data);
        }
        // The compressor runs on across pieces: each full flush has already made the next
        // piece independent, so only a failed piece needs a fresh start.
        let compressed = COMPRESSOR.with(|c| {
            let mut c = c.borrow_mut();
            let out = full_flush(&mut c, data);
            if out.is_none() {
                c.reset();
            }
            out
        });
        let Some(bytes) = compressed else {
            return Deflated::stored(data);
        };
        Deflated {
            bytes: Bytes::from(bytes),
            crc: crc32(data),
            shift: Multiplier::of(shift_for(data.len() as u64)),
            len: data.len() as u64,
        }
    }

    /// `data` as stored (uncompressed) blocks: for the few bytes written at scrape time, where
    /// compressing would cost more than the bytes it saves.
    pub fn stored(data: &[u8]) -> Deflated {
        let mut bytes = Vec::with_capacity(data.len() + 5 * (data.len() / 0xffff + 1));
        let mut chunks = data.chunks(0xffff).peekable();
        if chunks.peek().is_none() {
            return Deflated::stored_empty();
        }
        for chunk in chunks {
            let len = chunk.len() as u16;
            // BFINAL 0, BTYPE 00, then padding to the byte boundary we are already on.
            bytes.push(0);
            bytes.extend_from_slice(&len.to_le_bytes());
            bytes.extend_from_slice(&(!len).to_le_bytes());
            bytes.extend_from_slice(chunk);
        }
        Deflated {
            bytes: Bytes::from(bytes),
            crc: crc32(data),
            shift: Multiplier::of(shift_for(data.len() as u64)),
            len: data.len() as u64,
        }
    }

    fn stored_empty() -> Deflated {
        Deflated {
            bytes: Bytes::new(),
            crc: 0,
            shift: Multiplier::of(shift_for(0)),
            len: 0,
        }
    }

    /// Uncompressed length.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Compresses all of `data` and ends with a full flush, growing the output as needed; `None`
/// if the compressor fails.
fn full_flush(c: &mut Compress, data: &[u8]) -> Option<Vec<u8>> {
    // Exposition text compresses to about an eighth; a flush adds a few bytes.
    let mut out = Vec::with_capacity(data.len() / 6 + 64);
    let start = c.total_in();
    loop {
        let consumed = (c.total_in() - start) as usize;
        if out.len() == out.capacity() {
            out.reserve(out.capacity().max(64));
        }
        // Only a finished stream makes this fail, and the stream is never finished here.
        c.compress_vec(&data[consumed..], &mut out, FlushCompress::Full)
            .ok()?;
        // The flush is complete once all input is taken and the output was not filled up.
        if c.total_in() - start == data.len() as u64 && out.len() < out.capacity() {
            // Kept as long as the snapshot: the slack would cost as much as a third more.
            out.shrink_to_fit();
            return Some(out);
        }
    }
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = Crc::new();
    crc.update(data);
    crc.sum()
}

/// The pieces of one gzip member, written in order: the header first, [`Deflated`] pieces in
/// between, the trailer last.
#[derive(Debug, Default)]
pub struct Member {
    crc: u32,
    len: u64,
}

/// The gzip header: deflate, no name or time, fastest level, unknown OS.
pub const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 4, 255];

impl Member {
    pub fn new() -> Self {
        Self::default()
    }

    /// Accounts for a piece placed next in the stream.
    pub fn push(&mut self, piece: &Deflated) {
        self.crc = piece.shift.times(self.crc) ^ piece.crc;
        self.len += piece.len;
    }

    /// The end of the stream: an empty final block (fixed Huffman: BFINAL 1, BTYPE 01, the
    /// end-of-block code), the CRC-32 and the length modulo 2^32.
    pub fn trailer(&self) -> [u8; 10] {
        let mut t = [0; 10];
        t[0] = 0x03;
        t[1] = 0x00;
        t[2..6].copy_from_slice(&self.crc.to_le_bytes());
        t[6..10].copy_from_slice(&(self.len as u32).to_le_bytes());
        t
    }
}

/// The reflected CRC-32 polynomial (gzip's, zlib's).
const POLY: u32 = 0xedb8_8320;

/// `a · b` modulo the polynomial, in the reflected bit order CRC-32 uses (bit 31 is the
/// coefficient of x^0), one bit of `a` at a time: for the tables, and the reference for
/// [`Multiplier`].
const fn multmodp(a: u32, mut b: u32) -> u32 {
    let mut p = 0u32;
    let mut i = 0;
    while i < 32 {
        p ^= b & ((a >> (31 - i)) & 1).wrapping_neg();
        b = times_x(b);
        i += 1;
    }
    p
}

/// `b · x` modulo the polynomial.
const fn times_x(b: u32) -> u32 {
    (b >> 1) ^ (POLY & (b & 1).wrapping_neg())
}

/// `p · x^4` modulo the polynomial is `(p >> 4) ^ X4[p & 15]`: the four low bits are the
/// coefficients shifted past x^31, and this is what they reduce to.
const X4: [u32; 16] = {
    let mut table = [0u32; 16];
    let mut m = 0;
    while m < 16 {
        table[m] = times_x(times_x(times_x(times_x(m as u32))));
        m += 1;
    }
    table
};

/// Multiplying by a fixed `a` modulo the polynomial, as `a` times each 4-bit polynomial: the
/// product with any `b` is then eight lookups, Horner's rule over `b`'s nibbles. A scrape
/// combines one CRC per family block, tens of thousands for a fleet, where the bit-at-a-time
/// product (a serial chain of 32 steps) was most of a gzip body's set-up; the table is made
/// once per block, at poll time.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Multiplier([u32; 16]);

impl Multiplier {
    fn of(a: u32) -> Multiplier {
        // A nibble's top bit is its coefficient of x^0.
        let powers = [
            a,
            times_x(a),
            times_x(times_x(a)),
            times_x(times_x(times_x(a))),
        ];
        let mut table = [0u32; 16];
        for v in 1..16usize {
            let low = v.trailing_zeros() as usize;
            table[v] = table[v & (v - 1)] ^ powers[3 - low];
        }
        Multiplier(table)
    }

    /// `a · b`, from `b`'s coefficients of x^28..x^31 (its low nibble) down to x^0..x^3.
    fn times(&self, b: u32) -> u32 {
        let mut p = 0u32;
        for shift in (0..32).step_by(4) {
            p = (p >> 4) ^ X4[(p & 15) as usize] ^ self.0[((b >> shift) & 15) as usize];
        }
        p
    }
}

/// `x^(2^k)` modulo the polynomial, for k = 0..32 (the powers repeat with period 32 here as in
/// zlib, which is exact for the exponents used).
const X2N: [u32; 32] = {
    let mut table = [0u32; 32];
    let mut p = 1u32 << 30; // x^1
    let mut k = 0;
    while k < 32 {
        table[k] = p;
        p = multmodp(p, p);
        k += 1;
    }
    table
};

/// `x^(8·len)` modulo the polynomial: the operator for appending `len` bytes.
const fn shift_for(len: u64) -> u32 {
    let mut n = len;
    let mut k = 3; // 8 = 2^3 bits per byte
    let mut p = 1u32 << 31; // x^0
    while n != 0 {
        if n & 1 != 0 {
            p = multmodp(X2N[k & 31], p);
        }
        n >>= 1;
        k += 1;
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn join(pieces: &[&Deflated]) -> Vec<u8> {
        let mut member = Member::new();
        let mut out = HEADER.to_vec();
        for p in pieces {
            member.push(p);
            out.extend_from_slice(&p.bytes);
        }
        out.extend_from_slice(&member.trailer());
        out
    }

    /// flate2's single-member reader: it stops after the first member, so it only reads the
    /// whole body if the body is one member.
    fn gunzip_one_member(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut reader = flate2::read::GzDecoder::new(bytes);
        reader.read_to_end(&mut out).expect("valid gzip");
        out
    }

    fn lines(target: &str, n: usize) -> Vec<u8> {
        (0..n)
            .map(|i| format!("a_bytes_total{{target=\"{target}\",client=\"c{i}\"}} {i}\n"))
            .collect::<String>()
            .into_bytes()
    }

    #[test]
    fn nibble_multiply_equals_the_bit_at_a_time_product() {
        let mut x = 0x2545_f491_u32;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x
        };
        for _ in 0..100_000 {
            let (a, b) = (next(), next());
            assert_eq!(
                Multiplier::of(a).times(b),
                multmodp(a, b),
                "{a:#x} * {b:#x}"
            );
        }
        for a in [0, 1, 1 << 31, u32::MAX] {
            assert_eq!(
                Multiplier::of(a).times(0x1234_5678),
                multmodp(a, 0x1234_5678)
            );
        }
    }

    #[test]
    fn combined_crc_equals_the_crc_of_the_concatenation() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
        for cut in [0, 1, 3, 1000, 65_535, 65_536, 199_999, 200_000] {
            let (a, b) = data.split_at(cut);
            let mut m = Member::new();
            m.push(&Deflated::stored(a));
            m.push(&Deflated::stored(b));
            assert_eq!(m.crc, crc32(&data), "cut at {cut}");
        }
    }

    #[test]
    fn pieces_compressed_in_one_order_decode_in_another() {
        // Each piece of `a` repeats text from the one before it: a back-reference across a
        // piece would decode to the wrong bytes once `b`'s pieces sit in between.
        let (a1, a2) = (lines("a", 300), lines("a", 301));
        let (b1, b2) = (lines("b", 200), lines("b", 201));
        let pa1 = Deflated::compress(&a1);
        let pa2 = Deflated::compress(&a2);
        let pb1 = Deflated::compress(&b1);
        let pb2 = Deflated::compress(&b2);
        let header = b"# HELP a_bytes_total Bytes.\n";
        let gz = join(&[&Deflated::stored(header), &pb1, &pa2, &pb2, &pa1]);
        let want = [&header[..], &b1, &a2, &b2, &a1].concat();
        assert_eq!(gunzip_one_member(&gz), want);
        assert!(gz.len() * 4 < want.len(), "{} of {}", gz.len(), want.len());
    }

    #[test]
    fn empty_and_large_stored_pieces_are_valid() {
        let big: Vec<u8> = (0..150_000u32).map(|i| (i % 256) as u8).collect();
        let empty = Deflated::stored(b"");
        let empty_compressed = Deflated::compress(b"");
        let large = Deflated::stored(&big);
        assert_eq!(
            gunzip_one_member(&join(&[&empty, &large, &empty_compressed])),
            big
        );
        assert_eq!(gunzip_one_member(&join(&[])), b"");
    }

    #[test]
    fn gzip_dash_d_reads_the_joined_stream() {
        let body = lines("r1", 1000);
        let gz = join(&[
            &Deflated::compress(&body[..5000]),
            &Deflated::compress(&body[5000..]),
        ]);
        let mut child = std::process::Command::new("gzip")
            .args(["-d", "-c"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("gzip(1) on PATH");
        let mut stdin = child.stdin.take().unwrap();
        let writer = std::thread::spawn(move || {
            use std::io::Write;
            stdin.write_all(&gz).unwrap();
        });
        let out = child.wait_with_output().unwrap();
        writer.join().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.stdout, body);
    }
}
