//! Frames made of pieces that are not copied: bytes in memory (`Bytes`) and ranges of files
//! (sent from the page cache with `sendfile`).
//!
//! [`Pieces`] is such a run of bytes, with the points where it may be cut (the ends of whole
//! units: record batches). [`ScatterBuf`] is a response buffer an encoder writes into as into
//! any buffer; where the encoder puts one of the slices the buffer was told of, the buffer
//! takes the pieces that slice stands for instead of copying it. It recognises a slice by
//! address and length, in the order it was told of them, so the encoder needs no change:
//! kafka-protocol writes a `Bytes` field with one `put_slice` of the whole value. Pieces that
//! live in files are written as a placeholder of that length from [`placeholder`], which
//! the buffer then replaces.

use std::io;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use bytes::{buf::UninitSlice, BufMut, Bytes, BytesMut};
use kafka_protocol::protocol::buf::ByteBufMut;

/// One piece of a frame.
#[derive(Clone, Debug)]
pub enum Part {
    Memory(Bytes),
    /// `len` bytes of `file` from `pos`; the file is never rewritten below what was read, so
    /// the range holds the same bytes until it is sent (an unlinked or renamed file stays
    /// readable through the open descriptor).
    File {
        file: Arc<std::fs::File>,
        pos: u64,
        len: u32,
    },
}

impl Part {
    pub fn len(&self) -> usize {
        match self {
            Part::Memory(b) => b.len(),
            Part::File { len, .. } => *len as usize,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A run of bytes in pieces, and where it may be cut.
#[derive(Clone, Debug, Default)]
pub struct Pieces {
    parts: Vec<Part>,
    len: usize,
    /// The ends of the whole units in it, ascending; the last is `len`.
    ends: Vec<u32>,
}

impl Pieces {
    /// Bytes in memory, cut at `ends` (ascending, the last equal to the length).
    pub fn memory(bytes: Bytes, ends: Vec<u32>) -> Pieces {
        debug_assert!(ends
            .last()
            .map_or(bytes.is_empty(), |&e| e as usize == bytes.len()));
        let len = bytes.len();
        let parts = if bytes.is_empty() {
            Vec::new()
        } else {
            vec![Part::Memory(bytes)]
        };
        Pieces { parts, len, ends }
    }

    /// Appends `part`, a whole number of units that end at `ends` (relative to the part).
    pub fn push(&mut self, part: Part, ends: impl IntoIterator<Item = u32>) {
        if part.is_empty() {
            return;
        }
        let at = self.len as u32;
        self.ends.extend(ends.into_iter().map(|e| at + e));
        self.len += part.len();
        debug_assert_eq!(self.ends.last().map(|&e| e as usize), Some(self.len));
        // A file range that goes on where the last one ended is one range.
        if let (
            Some(Part::File { file, pos, len }),
            Part::File {
                file: f2,
                pos: p2,
                len: l2,
            },
        ) = (self.parts.last_mut(), &part)
        {
            if Arc::ptr_eq(file, f2) && *pos + u64::from(*len) == *p2 {
                *len += l2;
                return;
            }
        }
        self.parts.push(part);
    }

    /// Appends one unit made of several parts (a batch whose first bytes are kept apart).
    pub fn push_unit(&mut self, parts: impl IntoIterator<Item = Part>) {
        let before = self.len;
        for part in parts.into_iter().filter(|p| !p.is_empty()) {
            self.len += part.len();
            self.parts.push(part);
        }
        if self.len > before {
            self.ends.push(self.len as u32);
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn parts(&self) -> &[Part] {
        &self.parts
    }

    /// The longest prefix of whole units within `limit` bytes (0 when the first is larger).
    pub fn whole_within(&self, limit: usize) -> usize {
        let n = self.ends.partition_point(|&e| e as usize <= limit);
        n.checked_sub(1).map_or(0, |i| self.ends[i] as usize)
    }

    /// The length of the first unit (0 when empty).
    pub fn first_unit(&self) -> usize {
        self.ends.first().map_or(0, |&e| e as usize)
    }

    /// Keeps the first `n` bytes (`n` is one of the ends, or 0).
    pub fn truncate(&mut self, n: usize) {
        if n >= self.len {
            return;
        }
        debug_assert!(n == 0 || self.ends.binary_search(&(n as u32)).is_ok());
        self.ends.retain(|&e| e as usize <= n);
        let mut left = n;
        let mut keep = 0;
        for p in &mut self.parts {
            if left == 0 {
                break;
            }
            keep += 1;
            if p.len() > left {
                match p {
                    Part::Memory(b) => b.truncate(left),
                    Part::File { len, .. } => *len = left as u32,
                }
            }
            left -= p.len().min(left);
        }
        self.parts.truncate(keep);
        self.len = n;
    }

    /// The bytes, in memory: file ranges are read (blocking: for tests, and for what must see
    /// the bytes rather than send them).
    pub fn to_bytes(&self) -> io::Result<Bytes> {
        if let [Part::Memory(b)] = &self.parts[..] {
            return Ok(b.clone());
        }
        let mut out = BytesMut::with_capacity(self.len);
        for p in &self.parts {
            match p {
                Part::Memory(b) => out.extend_from_slice(b),
                Part::File { file, pos, len } => {
                    let at = out.len();
                    out.resize(at + *len as usize, 0);
                    file.read_exact_at(&mut out[at..], *pos)?;
                }
            }
        }
        Ok(out.freeze())
    }

    /// What an encoder writes for these bytes: the bytes themselves when they are one piece in
    /// memory, else a placeholder of their length (`None` when longer than a placeholder can
    /// be).
    pub fn stand_in(&self) -> Option<Bytes> {
        match &self.parts[..] {
            [] => Some(Bytes::new()),
            [Part::Memory(b)] => Some(b.clone()),
            parts
                if self.len < SCATTER_REF_BYTES_MIN
                    && parts.iter().all(|p| matches!(p, Part::Memory(_))) =>
            {
                // Small, in memory: the bytes themselves, copied into the frame like any
                // small slice (a placeholder below the size that is referenced would be
                // copied as zeros).
                self.to_bytes().ok()
            }
            _ => placeholder(self.len),
        }
    }
}

/// The longest placeholder: the largest record set a fetch answers for one partition is
/// bounded by the request's max_bytes (librdkafka's default fetch.max.bytes is 50 MiB); a
/// longer one is read into memory instead.
pub const PLACEHOLDER_BYTES_MAX: usize = 64 << 20;

/// Zeros that are never touched (so never resident): placeholders are slices of them.
static ZEROS: [u8; PLACEHOLDER_BYTES_MAX] = [0; PLACEHOLDER_BYTES_MAX];

/// A stand-in of `len` bytes for a piece an encoder writes but a [`ScatterBuf`] replaces.
pub fn placeholder(len: usize) -> Option<Bytes> {
    ZEROS.get(..len).map(Bytes::from_static)
}

/// Whether `b` is a placeholder (which must be replaced, never copied).
fn is_placeholder(b: &Bytes) -> bool {
    !b.is_empty() && ZEROS.as_ptr_range().contains(&b.as_ptr())
}

/// Slices shorter than this are copied: below it, a copy costs less than another part
/// (another iovec, another `Bytes` clone). Sized to a page.
pub const SCATTER_REF_BYTES_MIN: usize = 4096;

pub struct ScatterBuf {
    /// Finished parts, in order.
    parts: Vec<Part>,
    /// Bytes in `parts`.
    parts_len: usize,
    /// Where the encoder writes now.
    head: BytesMut,
    /// The slices to replace, in the order the encoder writes them, each with the pieces it
    /// stands for; `next` is the first not met yet.
    refs: Vec<(Bytes, Pieces)>,
    next: usize,
    /// A file range could not be read back by `merge`: the frame is wrong.
    poisoned: bool,
}

impl ScatterBuf {
    /// A buffer that takes the pieces of each of `refs` (a slice the encoder writes and the
    /// pieces it stands for, in the order the encoder writes them) instead of copying the
    /// slice; small pieces in memory are copied. `owned_capacity`: the bytes expected besides.
    pub fn new(
        refs: impl IntoIterator<Item = (Bytes, Pieces)>,
        owned_capacity: usize,
    ) -> ScatterBuf {
        ScatterBuf {
            parts: Vec::new(),
            parts_len: 0,
            head: BytesMut::with_capacity(owned_capacity),
            refs: refs
                .into_iter()
                .filter(|(stand_in, _)| {
                    stand_in.len() >= SCATTER_REF_BYTES_MIN || is_placeholder(stand_in)
                })
                .collect(),
            next: 0,
            poisoned: false,
        }
    }

    /// A buffer that takes each of `refs` by reference (those of at least
    /// `SCATTER_REF_BYTES_MIN` bytes), in this order.
    pub fn referencing(refs: impl IntoIterator<Item = Bytes>, owned_capacity: usize) -> ScatterBuf {
        ScatterBuf::new(
            refs.into_iter().map(|b| {
                let len = b.len() as u32;
                (b.clone(), Pieces::memory(b, vec![len]))
            }),
            owned_capacity,
        )
    }

    /// Whether the frame is right: every slice it was told of was met (else a placeholder may
    /// have been copied into the frame) and nothing failed. A frame that is not must not be
    /// sent.
    pub fn is_complete(&self) -> bool {
        self.next == self.refs.len() && !self.poisoned
    }

    /// The bytes written so far.
    pub fn len(&self) -> usize {
        self.parts_len + self.head.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes written, as parts in order (no empty part).
    pub fn finish(mut self) -> Vec<Part> {
        self.seal_head();
        self.parts
    }

    fn seal_head(&mut self) {
        if !self.head.is_empty() {
            let head = self.head.split().freeze();
            self.parts_len += head.len();
            self.parts.push(Part::Memory(head));
        }
    }

    /// Makes everything written one owned part again, so that it can be changed in place
    /// (`ByteBufMut::range`/`seek` below the current part). No encoder of a message does
    /// this (only record batch encoders, which write into their own buffers): it keeps the
    /// buffer correct, not fast.
    fn merge(&mut self) {
        if self.parts.is_empty() {
            return;
        }
        let mut all = BytesMut::with_capacity(self.len() + self.head.capacity());
        for p in self.parts.drain(..) {
            match p {
                Part::Memory(b) => all.extend_from_slice(&b),
                // Read back (blocking) to be changed in place: see the doc above.
                Part::File { .. } => {
                    let len = p.len();
                    let bytes = Pieces {
                        len: p.len(),
                        ends: vec![p.len() as u32],
                        parts: vec![p],
                    }
                    .to_bytes();
                    match bytes {
                        Ok(b) => all.extend_from_slice(&b),
                        Err(_) => {
                            self.poisoned = true;
                            all.resize(all.len() + len, 0);
                        }
                    }
                }
            }
        }
        all.extend_from_slice(&self.head);
        self.parts_len = 0;
        self.head = all;
    }
}

// SAFETY: every method hands on to `head`, a `BytesMut`, whose `BufMut` is sound; `put_slice`
// either does the same or records a part, writing no memory.
unsafe impl BufMut for ScatterBuf {
    fn remaining_mut(&self) -> usize {
        self.head.remaining_mut()
    }

    unsafe fn advance_mut(&mut self, cnt: usize) {
        // SAFETY: the caller's promise (`cnt` bytes of `chunk_mut` initialised) is `head`'s.
        unsafe { self.head.advance_mut(cnt) }
    }

    fn chunk_mut(&mut self) -> &mut UninitSlice {
        self.head.chunk_mut()
    }

    fn put_slice(&mut self, src: &[u8]) {
        if let Some((stand_in, pieces)) = self.refs.get(self.next) {
            if stand_in.as_ptr() == src.as_ptr() && stand_in.len() == src.len() {
                let parts = pieces.parts.clone();
                self.next += 1;
                self.seal_head();
                for p in parts {
                    self.parts_len += p.len();
                    self.parts.push(p);
                }
                return;
            }
        }
        self.head.extend_from_slice(src);
    }
}

impl ByteBufMut for ScatterBuf {
    fn offset(&self) -> usize {
        self.len()
    }

    fn seek(&mut self, offset: usize) {
        if offset < self.parts_len {
            self.merge();
        }
        self.head.resize(offset - self.parts_len, 0);
    }

    fn range(&mut self, r: std::ops::Range<usize>) -> &mut [u8] {
        if r.start < self.parts_len {
            self.merge();
        }
        let at = self.parts_len;
        &mut self.head[r.start - at..r.end - at]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
    use kafka_protocol::messages::{FetchResponse, TopicName};
    use kafka_protocol::protocol::{Encodable, StrBytes};

    fn response(records: &[Bytes]) -> FetchResponse {
        let partitions = records
            .iter()
            .enumerate()
            .map(|(i, r)| {
                PartitionData::default()
                    .with_partition_index(i as i32)
                    .with_high_watermark(7)
                    .with_records(Some(r.clone()))
            })
            .collect();
        FetchResponse::default().with_responses(vec![FetchableTopicResponse::default()
            .with_topic(TopicName(StrBytes::from_static_str("t")))
            .with_partitions(partitions)])
    }

    fn flat(parts: &[Part]) -> Vec<u8> {
        let mut p = Pieces::default();
        for part in parts {
            p.push(part.clone(), [part.len() as u32]);
        }
        p.to_bytes().unwrap().to_vec()
    }

    /// Encoded through the scatter buffer, a fetch response has the same bytes as encoded into
    /// one buffer, in every version, and the large record slices are the log's own memory
    /// (the same address), not copies.
    #[test]
    fn same_bytes_and_records_by_reference() {
        let records: Vec<Bytes> = [10_000usize, 100, 0, 5000]
            .iter()
            .map(|&n| Bytes::from((0..n).map(|i| i as u8).collect::<Vec<_>>()))
            .collect();
        let resp = response(&records);
        for version in 4..=12 {
            let mut one = BytesMut::new();
            resp.encode(&mut one, version).unwrap();
            let mut buf = ScatterBuf::referencing(records.iter().cloned(), 64);
            resp.encode(&mut buf, version).unwrap();
            assert!(buf.is_complete());
            assert_eq!(buf.len(), one.len());
            let parts = buf.finish();
            assert_eq!(flat(&parts), one.to_vec(), "version {version}");
            for big in [&records[0], &records[3]] {
                assert!(
                    parts
                        .iter()
                        .any(|p| matches!(p, Part::Memory(b) if b.as_ptr() == big.as_ptr())),
                    "version {version}: a large record slice was copied"
                );
            }
            assert!(parts.iter().all(|p| !p.is_empty()));
        }
    }

    /// Records that live partly in a file are written as a placeholder the buffer replaces by
    /// the file range: the frame's bytes are those of the response with the records in it.
    #[test]
    fn file_ranges_replace_their_placeholder() {
        let content: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
        let mut tmp = tempfile::tempfile().unwrap();
        std::io::Write::write_all(&mut tmp, &content).unwrap();
        let file = Arc::new(tmp);
        let mut pieces = Pieces::default();
        pieces.push(
            Part::File {
                file: file.clone(),
                pos: 100,
                len: 6000,
            },
            [2000, 6000],
        );
        pieces.push(
            Part::File {
                file: file.clone(),
                pos: 6100,
                len: 4000,
            },
            [4000],
        );
        let tail = Bytes::from_static(b"tail bytes");
        pieces.push(Part::Memory(tail.clone()), [tail.len() as u32]);
        assert_eq!(pieces.parts().len(), 2, "adjacent file ranges join");
        let real = pieces.to_bytes().unwrap();
        assert_eq!(&real[..10_000], &content[100..10_100]);

        let resp = response(std::slice::from_ref(&real));
        let stand_in = pieces.stand_in().unwrap();
        let with_stand_in = response(std::slice::from_ref(&stand_in));
        let mut one = BytesMut::new();
        resp.encode(&mut one, 12).unwrap();
        let mut buf = ScatterBuf::new([(stand_in, pieces.clone())], 64);
        with_stand_in.encode(&mut buf, 12).unwrap();
        assert!(buf.is_complete());
        let parts = buf.finish();
        assert!(parts.iter().any(|p| matches!(p, Part::File { .. })));
        assert_eq!(flat(&parts), one.to_vec());

        // Cut at whole units only.
        assert_eq!(pieces.whole_within(5999), 2000);
        assert_eq!(pieces.whole_within(10_000), 10_000);
        assert_eq!(pieces.first_unit(), 2000);
        let mut cut = pieces.clone();
        cut.truncate(6000);
        assert_eq!(cut.to_bytes().unwrap(), real.slice(..6000));
        cut.truncate(0);
        assert!(cut.is_empty() && cut.parts().is_empty());
    }

    /// Records in several pieces in memory (a tail-cache read of two writes) reach the frame
    /// with their own bytes, whether small (copied) or large (referenced): never as zeros.
    #[test]
    fn memory_pieces_reach_the_frame() {
        for sizes in [[300usize, 200], [3000, 5000]] {
            let mut pieces = Pieces::default();
            for (i, &n) in sizes.iter().enumerate() {
                let b = Bytes::from(vec![i as u8 + 1; n]);
                pieces.push(Part::Memory(b), [n as u32]);
            }
            let real = pieces.to_bytes().unwrap();
            let mut one = BytesMut::new();
            response(std::slice::from_ref(&real))
                .encode(&mut one, 12)
                .unwrap();
            let stand_in = pieces.stand_in().unwrap();
            let mut buf = ScatterBuf::new([(stand_in.clone(), pieces.clone())], 64);
            response(std::slice::from_ref(&stand_in))
                .encode(&mut buf, 12)
                .unwrap();
            assert!(buf.is_complete(), "{sizes:?}");
            assert_eq!(flat(&buf.finish()), one.to_vec(), "{sizes:?}");
        }
    }

    /// A slice met out of order, or not at all, leaves the frame incomplete (never sent with a
    /// placeholder in it); slices equal in content but elsewhere in memory are copied.
    #[test]
    fn only_the_named_slices_are_referenced() {
        let a = Bytes::from(vec![1u8; 8192]);
        let twin = Bytes::from(vec![1u8; 8192]);
        let mut buf = ScatterBuf::referencing([a.clone()], 0);
        buf.put_slice(&twin);
        assert!(!buf.is_complete());
        buf.put_slice(&a);
        assert!(buf.is_complete());
        let parts = buf.finish();
        assert_eq!(parts.len(), 2);
        assert!(matches!(&parts[0], Part::Memory(b) if b.as_ptr() != twin.as_ptr()));
        assert!(matches!(&parts[1], Part::Memory(b) if b.as_ptr() == a.as_ptr()));
    }

    /// Changing bytes already written (what a length back-patch does) works across parts.
    #[test]
    fn range_and_seek_reach_back_across_parts() {
        let a = Bytes::from(vec![9u8; 8192]);
        let mut buf = ScatterBuf::referencing([a.clone()], 0);
        buf.put_i32(0);
        buf.put_slice(&a);
        buf.put_u8(5);
        buf.range(0..4).copy_from_slice(&7i32.to_be_bytes());
        let end = buf.offset();
        buf.seek(end + 2);
        let out = flat(&buf.finish());
        assert_eq!(&out[..4], &7i32.to_be_bytes());
        assert_eq!(out.len(), 4 + 8192 + 1 + 2);
        assert_eq!(out[4 + 8192], 5);
    }
}
